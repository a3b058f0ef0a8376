//! The kernel's `BPF_BTF_LOAD` checks (`btf_parse` in kernel/bpf/btf.c), the cheap part:
//! the header (`btf_parse_hdr`, `btf_check_sec_info`), the string section
//! (`btf_parse_str_sec`), every type's `check_meta` (kinds, `info` bits, names, vlen,
//! kind_flag, sizes, member and variable offsets) and a resolve pass (`btf_check_all_types`:
//! referenced ids exist and have the right kinds, sizes are known where the kernel needs them,
//! members and section variables fit, no loops through modifiers or embedded structs).
//!
//! Errors carry the errno the kernel returns and a log line in the kernel's wording
//! (`[5] STRUCT foo Invalid name`); kernel-only checks that need kernel state (kfunc sets,
//! special fields like `bpf_spin_lock`) are not done.

use std::fmt;

/// `BTF_KIND_MAX`.
const KIND_MAX: u32 = 19;
/// `BTF_MAX_TYPE`.
const MAX_TYPE: u32 = 0x000f_ffff;
/// `BTF_MAX_NAME_OFFSET`.
const MAX_NAME_OFFSET: u32 = 0x00ff_ffff;
/// `BTF_MAX_SIZE` (the kernel's limit on a loaded blob).
pub const MAX_SIZE: usize = 16 * 1024 * 1024;
/// `KSYM_NAME_LEN`.
const KSYM_NAME_LEN: usize = 512;
/// `MAX_RESOLVE_DEPTH` of the kernel's resolver.
const MAX_DEPTH: usize = 32;

use kbpf_uapi::errno::{E2BIG, EINVAL, ENOTSUPP};

/// Why the kernel would refuse a BTF blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The errno `BPF_BTF_LOAD` returns (EINVAL, E2BIG, ENOTSUPP).
    pub errno: i32,
    /// The log line (the kernel's wording).
    pub log: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = match self.errno {
            EINVAL => "EINVAL",
            E2BIG => "E2BIG",
            ENOTSUPP => "ENOTSUPP",
            _ => "error",
        };
        write!(f, "BTF rejected ({e}): {}", self.log)
    }
}

impl std::error::Error for LoadError {}

fn fail<T>(errno: i32, log: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError {
        errno,
        log: log.into(),
    })
}

/// One type record as the checks see it.
struct Ty {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kflag: bool,
    size_or_type: u32,
    /// Offset of the kind-specific data in the type section.
    extra: usize,
}

struct V<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    tys: Vec<Ty>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

const KIND_NAMES: [&str; 20] = [
    "UNKNOWN",
    "INT",
    "PTR",
    "ARRAY",
    "STRUCT",
    "UNION",
    "ENUM",
    "FWD",
    "TYPEDEF",
    "VOLATILE",
    "CONST",
    "RESTRICT",
    "FUNC",
    "FUNC_PROTO",
    "VAR",
    "DATASEC",
    "FLOAT",
    "DECL_TAG",
    "TYPE_TAG",
    "ENUM64",
];

/// Validates a blob as `BPF_BTF_LOAD` does (base BTF only: split BTF is not loadable here).
pub fn validate(blob: &[u8]) -> Result<(), LoadError> {
    if blob.len() > MAX_SIZE {
        return fail(E2BIG, "BTF too big");
    }
    if blob.len() < 8 {
        return fail(EINVAL, "hdr_len not found");
    }
    let hdr_len = u32_at(blob, 4) as usize;
    if blob.len() < hdr_len {
        return fail(EINVAL, "btf_header not found");
    }
    if hdr_len > 24 && blob[24..hdr_len].iter().any(|b| *b != 0) {
        return fail(E2BIG, "Unsupported btf_header");
    }
    let mut hdr = [0u8; 24];
    let n = hdr_len.min(24);
    hdr[..n].copy_from_slice(&blob[..n]);
    if u16::from_le_bytes([hdr[0], hdr[1]]) != crate::BTF_MAGIC {
        return fail(EINVAL, "Invalid magic");
    }
    if hdr[2] != 1 {
        return fail(ENOTSUPP, "Unsupported version");
    }
    if hdr[3] != 0 {
        return fail(ENOTSUPP, "Unsupported flags");
    }
    if blob.len() == hdr_len {
        return fail(EINVAL, "No data");
    }
    let (type_off, type_len) = (u32_at(&hdr, 8), u32_at(&hdr, 12));
    let (str_off, str_len) = (u32_at(&hdr, 16), u32_at(&hdr, 20));
    check_sec_info(
        (blob.len() - hdr_len) as u32,
        &mut [(type_off, type_len), (str_off, str_len)],
    )?;
    let data = &blob[hdr_len..];
    let strings = &data[str_off as usize..(str_off + str_len) as usize];
    // btf_parse_str_sec
    if (str_off + str_len) as usize != data.len() {
        return fail(EINVAL, "String section is not at the end");
    }
    if str_len == 0 || str_len - 1 > MAX_NAME_OFFSET || strings[strings.len() - 1] != 0 {
        return fail(EINVAL, "Invalid string section");
    }
    if strings[0] != 0 {
        return fail(EINVAL, "Invalid string section");
    }
    // btf_parse_type_sec
    if type_off % 4 != 0 {
        return fail(EINVAL, "Unaligned type_off");
    }
    if type_len == 0 {
        return fail(EINVAL, "No type found");
    }
    let types = &data[type_off as usize..(type_off + type_len) as usize];
    let mut v = V {
        types,
        strings,
        tys: Vec::new(),
    };
    v.check_all_metas()?;
    v.check_all_types()
}

/// `btf_check_sec_info`: sections sorted by offset must tile the data without gaps,
/// overlaps or trailing bytes.
fn check_sec_info(total_len: u32, secs: &mut [(u32, u32)]) -> Result<(), LoadError> {
    secs.sort();
    let mut total: u32 = 0;
    for &(off, len) in secs.iter() {
        if total_len < off {
            return fail(EINVAL, "Invalid section offset");
        }
        if total < off {
            return fail(EINVAL, "Unsupported section found");
        }
        if total > off {
            return fail(EINVAL, "Section overlap found");
        }
        if total_len - total < len {
            return fail(EINVAL, "Total section length too long");
        }
        total += len;
    }
    if total != total_len {
        return fail(EINVAL, "Unsupported section found");
    }
    Ok(())
}

fn name_char_ok(c: u8, first: bool) -> bool {
    (if first {
        c.is_ascii_alphabetic()
    } else {
        c.is_ascii_alphanumeric()
    }) || c == b'_'
        || c == b'.'
}

impl V<'_> {
    fn str_at(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    fn name_off_valid(&self, off: u32) -> bool {
        (off as usize) < self.strings.len()
    }

    /// `btf_name_valid_identifier`.
    fn ident_ok(&self, off: u32) -> bool {
        let s = self.str_at(off);
        !s.is_empty()
            && s.len() < KSYM_NAME_LEN
            && s.iter().enumerate().all(|(i, c)| name_char_ok(*c, i == 0))
    }

    /// `btf_name_valid_section`.
    fn section_ok(&self, off: u32) -> bool {
        let s = self.str_at(off);
        !s.is_empty() && s.len() < KSYM_NAME_LEN && s.iter().all(|c| (0x20..0x7f).contains(c))
    }

    /// `[id] KIND name msg`, the kernel's `btf_verifier_log_type` line (without details).
    fn err_type<T>(&self, id: u32, errno: i32, msg: &str) -> Result<T, LoadError> {
        let t = &self.tys[id as usize - 1];
        let kind = KIND_NAMES.get(t.kind as usize).unwrap_or(&"UNKNOWN");
        let name = String::from_utf8_lossy(self.str_at(t.name_off));
        fail(errno, format!("[{id}] {kind} {name} {msg}"))
    }

    fn check_all_metas(&mut self) -> Result<(), LoadError> {
        let mut off = 0usize;
        let end = self.types.len();
        while off < end {
            let id = self.tys.len() as u32 + 1;
            if id > MAX_TYPE {
                return fail(E2BIG, format!("[{id}] Exceeded max num of types"));
            }
            let left = end - off;
            if left < 12 {
                return fail(EINVAL, format!("[{id}] meta_left:{left} meta_needed:12"));
            }
            let name_off = u32_at(self.types, off);
            let info = u32_at(self.types, off + 4);
            let size_or_type = u32_at(self.types, off + 8);
            // BTF_INFO_MASK: kind_flag, 5 kind bits, 16 vlen bits.
            if info & !0x9f00_ffff != 0 {
                return fail(EINVAL, format!("[{id}] Invalid btf_info:{info:x}"));
            }
            let kind = (info >> 24) & 0x1f;
            if kind > KIND_MAX || kind == 0 {
                return fail(EINVAL, format!("[{id}] Invalid kind:{kind}"));
            }
            if !self.name_off_valid(name_off) {
                return fail(EINVAL, format!("[{id}] Invalid name_offset:{name_off}"));
            }
            self.tys.push(Ty {
                name_off,
                kind,
                vlen: info & 0xffff,
                kflag: info >> 31 != 0,
                size_or_type,
                extra: off + 12,
            });
            let extra = self.check_meta(id, left - 12)?;
            off += 12 + extra;
        }
        Ok(())
    }

    /// One kind's `check_meta`; returns the size of the kind-specific data.
    fn check_meta(&self, id: u32, left: usize) -> Result<usize, LoadError> {
        let t = &self.tys[id as usize - 1];
        let (vlen, kflag) = (t.vlen as usize, t.kflag);
        let need = |n: usize| -> Result<usize, LoadError> {
            if left < n {
                fail(EINVAL, format!("[{id}] meta_left:{left} meta_needed:{n}"))
            } else {
                Ok(n)
            }
        };
        let no_vlen = || {
            if vlen != 0 {
                return self.err_type(id, EINVAL, "vlen != 0");
            }
            Ok(())
        };
        let no_kflag = || {
            if kflag {
                return self.err_type(id, EINVAL, "Invalid btf_info kind_flag");
            }
            Ok(())
        };
        let type_id_ok = |ty: u32| ty <= MAX_TYPE;
        use crate::kind as k;
        match t.kind {
            k::INT => {
                let n = need(4)?;
                no_vlen()?;
                no_kflag()?;
                let data = u32_at(self.types, t.extra);
                if data & !0x0fff_00ff != 0 {
                    return fail(EINVAL, format!("[{id}] Invalid int_data:{data:x}"));
                }
                let bits = (data & 0xff) + ((data >> 16) & 0xff);
                if bits > 128 {
                    return self.err_type(id, EINVAL, "nr_bits exceeds 128");
                }
                if bits.div_ceil(8) > t.size_or_type {
                    return self.err_type(id, EINVAL, "nr_bits exceeds type_size");
                }
                let enc = (data >> 24) & 0x0f;
                if enc != 0 && enc != 1 && enc != 2 && enc != 4 {
                    return self.err_type(id, ENOTSUPP, "Unsupported encoding");
                }
                Ok(n)
            }
            k::PTR | k::TYPEDEF | k::VOLATILE | k::CONST | k::RESTRICT | k::TYPE_TAG => {
                no_vlen()?;
                // Linux 6.13+: kind_flag on a type tag marks an attribute tag.
                if t.kind != k::TYPE_TAG {
                    no_kflag()?;
                }
                if !type_id_ok(t.size_or_type) {
                    return self.err_type(id, EINVAL, "Invalid type_id");
                }
                let bad = match t.kind {
                    k::TYPEDEF => t.name_off == 0 || !self.ident_ok(t.name_off),
                    k::TYPE_TAG => self.str_at(t.name_off).is_empty(),
                    _ => t.name_off != 0,
                };
                if bad {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                Ok(0)
            }
            k::ARRAY => {
                let n = need(12)?;
                if t.name_off != 0 {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                no_vlen()?;
                no_kflag()?;
                if t.size_or_type != 0 {
                    return self.err_type(id, EINVAL, "size != 0");
                }
                let elem = u32_at(self.types, t.extra);
                let index = u32_at(self.types, t.extra + 4);
                if elem == 0 || !type_id_ok(elem) {
                    return self.err_type(id, EINVAL, "Invalid elem");
                }
                if index == 0 || !type_id_ok(index) {
                    return self.err_type(id, EINVAL, "Invalid index");
                }
                Ok(n)
            }
            k::STRUCT | k::UNION => {
                let n = need(vlen * 12)?;
                if t.name_off != 0 && !self.ident_ok(t.name_off) {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                let mut last = 0u32;
                for i in 0..vlen {
                    let at = t.extra + i * 12;
                    let (mname, mty, moff) = (
                        u32_at(self.types, at),
                        u32_at(self.types, at + 4),
                        u32_at(self.types, at + 8),
                    );
                    let member = |msg: &str| {
                        self.err_type::<usize>(id, EINVAL, &format!("member {i}: {msg}"))
                    };
                    if !self.name_off_valid(mname) {
                        return member(&format!("Invalid member name_offset:{mname}"));
                    }
                    if mname != 0 && !self.ident_ok(mname) {
                        return member("Invalid name");
                    }
                    if mty == 0 || !type_id_ok(mty) {
                        return member("Invalid type_id");
                    }
                    let bit_off = if kflag { moff & 0x00ff_ffff } else { moff };
                    if (t.kind == k::UNION && bit_off != 0) || last > bit_off {
                        return member("Invalid member bits_offset");
                    }
                    if bit_off.div_ceil(8) > t.size_or_type {
                        return member("Member bits_offset exceeds its struct size");
                    }
                    last = bit_off;
                }
                Ok(n)
            }
            k::ENUM | k::ENUM64 => {
                let rec = if t.kind == k::ENUM { 8 } else { 12 };
                let n = need(vlen * rec)?;
                let size = t.size_or_type;
                if size > 8 || !size.is_power_of_two() {
                    return self.err_type(id, EINVAL, "Unexpected size");
                }
                if t.name_off != 0 && !self.ident_ok(t.name_off) {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                for i in 0..vlen {
                    let ename = u32_at(self.types, t.extra + i * rec);
                    if !self.name_off_valid(ename) {
                        return fail(EINVAL, format!("\tInvalid name_offset:{ename}"));
                    }
                    if ename == 0 || !self.ident_ok(ename) {
                        return self.err_type(id, EINVAL, "Invalid name");
                    }
                }
                Ok(n)
            }
            k::FWD => {
                no_vlen()?;
                if t.size_or_type != 0 {
                    return self.err_type(id, EINVAL, "type != 0");
                }
                if t.name_off == 0 || !self.ident_ok(t.name_off) {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                Ok(0)
            }
            k::FUNC => {
                if t.name_off == 0 || !self.ident_ok(t.name_off) {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                if vlen > 1 {
                    return self.err_type(id, EINVAL, "Invalid func linkage");
                }
                no_kflag()?;
                Ok(0)
            }
            k::FUNC_PROTO => {
                let n = need(vlen * 8)?;
                if t.name_off != 0 {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                no_kflag()?;
                Ok(n)
            }
            k::VAR => {
                let n = need(4)?;
                no_vlen()?;
                no_kflag()?;
                if t.name_off == 0 || !self.ident_ok(t.name_off) {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                if t.size_or_type == 0 || !type_id_ok(t.size_or_type) {
                    return self.err_type(id, EINVAL, "Invalid type_id");
                }
                if u32_at(self.types, t.extra) > 1 {
                    return self.err_type(id, EINVAL, "Linkage not supported");
                }
                Ok(n)
            }
            k::DATASEC => {
                let n = need(vlen * 12)?;
                let size = u64::from(t.size_or_type);
                if size == 0 {
                    return self.err_type(id, EINVAL, "size == 0");
                }
                no_kflag()?;
                if t.name_off == 0 || !self.section_ok(t.name_off) {
                    return self.err_type(id, EINVAL, "Invalid name");
                }
                let (mut last_end, mut sum) = (0u64, 0u64);
                for i in 0..vlen {
                    let at = t.extra + i * 12;
                    let (vty, voff, vsz) = (
                        u32_at(self.types, at),
                        u64::from(u32_at(self.types, at + 4)),
                        u64::from(u32_at(self.types, at + 8)),
                    );
                    let vsi = |msg: &str| {
                        self.err_type::<usize>(
                            id,
                            EINVAL,
                            &format!("type_id={vty} offset={voff} size={vsz} {msg}"),
                        )
                    };
                    if vty == 0 || !type_id_ok(vty) {
                        return vsi("Invalid type_id");
                    }
                    if voff < last_end || voff >= size {
                        return vsi("Invalid offset");
                    }
                    if vsz == 0 || vsz > size {
                        return vsi("Invalid size");
                    }
                    last_end = voff + vsz;
                    if last_end > size {
                        return vsi("Invalid offset+size");
                    }
                    sum += vsz;
                }
                if size < sum {
                    return self.err_type(id, EINVAL, "Invalid btf_info size");
                }
                Ok(n)
            }
            k::FLOAT => {
                no_vlen()?;
                no_kflag()?;
                if ![2, 4, 8, 12, 16].contains(&t.size_or_type) {
                    return self.err_type(id, EINVAL, "Invalid type_size");
                }
                Ok(0)
            }
            k::DECL_TAG => {
                let n = need(4)?;
                if self.str_at(t.name_off).is_empty() {
                    return self.err_type(id, EINVAL, "Invalid value");
                }
                no_vlen()?;
                // Linux 6.13+: an attribute decl tag (kind_flag) applies to the whole type.
                let idx = u32_at(self.types, t.extra) as i32;
                if idx < -1 || (kflag && idx != -1) {
                    return self.err_type(id, EINVAL, "Invalid component_idx");
                }
                Ok(n)
            }
            _ => fail(EINVAL, format!("[{id}] Invalid kind:{}", t.kind)),
        }
    }
}

mod resolve;

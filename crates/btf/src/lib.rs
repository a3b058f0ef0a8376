//! kbpf-btf: BTF (`.BTF` section, `/sys/kernel/btf/vmlinux`): header, string table and every type
//! kind, with size resolution, type-name text, function prototypes as bpftool prints them
//! and a value formatter shaped like `bpftool map dump`'s `formatted` output.
//!
//! The wire format is the kernel's `include/uapi/linux/btf.h`: a header, then a type
//! section of `struct btf_type` records (each followed by kind-specific data), then a
//! string section. Type id 0 is `void`; ids count from 1 in section order. Everything is
//! bounds-checked: malformed input gives a [`BtfError`] naming the type id or offset.
//!
//! Beyond parsing: [`validate`](mod@validate) (the kernel's `BPF_BTF_LOAD` checks, with its errnos and log
//! wording), [`dumper`] (bpftool's BTF value dumper behind `map dump`/`lookup`, plain text and
//! JSON tokens), [`raw`] (`bpftool btf dump … format raw`, text and JSON) and [`c_dump`]
//! (libbpf's `btf_dump`: BTF as compilable C, what `format c` prints); [`split`] reads split BTF
//! (module BTF on top of vmlinux, libbpf's `btf__parse_split`).
#![deny(missing_docs)]

use std::fmt::Write as _;

use serde_json::{Map as JsonMap, Value as JsonValue};

pub mod c_dump;
pub mod dumper;
mod ksyms;
pub mod raw;
pub mod split;
pub mod validate;

pub use c_dump::CDump;
pub use dumper::Node;
pub use validate::{LoadError, validate};

/// `BTF_MAGIC`.
pub const BTF_MAGIC: u16 = 0xeb9f;

/// `BTF_KIND_*` numbers.
pub mod kind {
    #![allow(missing_docs)]
    pub const UNKN: u32 = 0;
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// `BTF_INT_SIGNED` encoding bit.
pub const BTF_INT_SIGNED: u8 = 1 << 0;
/// `BTF_INT_CHAR` encoding bit.
pub const BTF_INT_CHAR: u8 = 1 << 1;
/// `BTF_INT_BOOL` encoding bit.
pub const BTF_INT_BOOL: u8 = 1 << 2;

/// How deep typedef/modifier chains may go before we call them cyclic
/// (libbpf's `MAX_RESOLVE_DEPTH`).
const MAX_RESOLVE_DEPTH: usize = 32;
/// Most type nodes one `type_name` call may visit.
const NAME_BUDGET: usize = 4096;
/// Most value nodes one `format_value` call may produce.
const FORMAT_BUDGET: usize = 1 << 20;

/// Errors while parsing or interpreting BTF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// The blob is shorter than the header or a section it declares.
    #[error("BTF: {what} out of bounds (offset {offset}, length {len}, blob size {size})")]
    OutOfBounds {
        /// What was being read.
        what: &'static str,
        /// Its offset.
        offset: usize,
        /// Its length.
        len: usize,
        /// Size of the enclosing blob.
        size: usize,
    },
    /// Wrong magic number.
    #[error("BTF: bad magic {0:#06x} (expected 0xeb9f; big-endian BTF is not supported)")]
    BadMagic(u16),
    /// Unsupported version.
    #[error("BTF: unsupported version {0}")]
    BadVersion(u8),
    /// Header length is too small.
    #[error("BTF: header length {0} is smaller than the 24-byte btf_header")]
    BadHeaderLen(u32),
    /// A kind number we do not know.
    #[error("BTF: type [{id}] has unknown kind {kind}")]
    UnknownKind {
        /// Type id.
        id: u32,
        /// Raw kind number.
        kind: u32,
    },
    /// A string offset outside the string section or not NUL-terminated.
    #[error("BTF: string offset {0} is invalid")]
    BadString(u32),
    /// A type id that does not exist.
    #[error("BTF: type id {0} does not exist")]
    BadTypeId(u32),
    /// A chain of typedefs/modifiers too deep or cyclic.
    #[error("BTF: type [{0}] has a typedef/modifier chain that is too deep or cyclic")]
    TooDeep(u32),
    /// A type whose size cannot be known (void, FWD, FUNC…).
    #[error("BTF: can't determine size of type [{id}] ({kind})")]
    NoSize {
        /// Type id.
        id: u32,
        /// Kind name.
        kind: &'static str,
    },
    /// Arithmetic overflow computing a size.
    #[error("BTF: size of type [{0}] overflows")]
    SizeOverflow(u32),
    /// Value bytes too short for its type.
    #[error("BTF: value of type [{id}] needs {need} bytes, have {have}")]
    ValueTooShort {
        /// Type id.
        id: u32,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// A struct/union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member name (empty for anonymous members).
    pub name: String,
    /// Member type id.
    pub ty: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits (0 for a normal member).
    pub bitfield_size: u32,
}

/// A function parameter of a `FUNC_PROTO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name (may be empty).
    pub name: String,
    /// Parameter type id (0 for a trailing `...`).
    pub ty: u32,
}

/// One variable of a `DATASEC` (`struct btf_var_secinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSecinfo {
    /// The `VAR` (or `FUNC` for externs) type id.
    pub ty: u32,
    /// Offset within the section.
    pub offset: u32,
    /// Size in the section.
    pub size: u32,
}

/// One enumerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumerator {
    /// Name.
    pub name: String,
    /// Value, sign- or zero-extended to 64 bits as the enum's signedness says.
    pub value: i64,
}

/// The kind-specific part of a BTF type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfKind {
    /// Type id 0.
    Void,
    /// `BTF_KIND_INT`.
    Int {
        /// Storage size in bytes.
        size: u32,
        /// `BTF_INT_SIGNED` / `CHAR` / `BOOL` bits.
        encoding: u8,
        /// Bit offset of the value inside the storage.
        offset: u8,
        /// Number of value bits.
        bits: u8,
    },
    /// `BTF_KIND_PTR`.
    Ptr(u32),
    /// `BTF_KIND_ARRAY`.
    Array {
        /// Element type.
        elem: u32,
        /// Index type.
        index: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// `BTF_KIND_STRUCT`.
    Struct {
        /// Size in bytes.
        size: u32,
        /// Members.
        members: Vec<Member>,
    },
    /// `BTF_KIND_UNION`.
    Union {
        /// Size in bytes.
        size: u32,
        /// Members.
        members: Vec<Member>,
    },
    /// `BTF_KIND_ENUM` (32-bit enumerators).
    Enum {
        /// Size in bytes.
        size: u32,
        /// `kind_flag`: values are signed.
        signed: bool,
        /// Enumerators.
        values: Vec<Enumerator>,
    },
    /// `BTF_KIND_FWD`.
    Fwd {
        /// `kind_flag`: a union forward declaration.
        is_union: bool,
    },
    /// `BTF_KIND_TYPEDEF`.
    Typedef(u32),
    /// `BTF_KIND_VOLATILE`.
    Volatile(u32),
    /// `BTF_KIND_CONST`.
    Const(u32),
    /// `BTF_KIND_RESTRICT`.
    Restrict(u32),
    /// `BTF_KIND_FUNC`.
    Func {
        /// The `FUNC_PROTO` type id.
        proto: u32,
        /// `BTF_FUNC_STATIC` 0, `GLOBAL` 1, `EXTERN` 2.
        linkage: u32,
    },
    /// `BTF_KIND_FUNC_PROTO`.
    FuncProto {
        /// Return type id.
        ret: u32,
        /// Parameters.
        params: Vec<Param>,
    },
    /// `BTF_KIND_VAR`.
    Var {
        /// Variable type.
        ty: u32,
        /// `BTF_VAR_STATIC` 0, `GLOBAL_ALLOCATED` 1, `GLOBAL_EXTERN` 2.
        linkage: u32,
    },
    /// `BTF_KIND_DATASEC`.
    Datasec {
        /// Section size (0 in clang's output; libbpf fixes it up from the ELF).
        size: u32,
        /// Variables.
        vars: Vec<VarSecinfo>,
    },
    /// `BTF_KIND_FLOAT`.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `BTF_KIND_DECL_TAG`.
    DeclTag {
        /// Tagged type.
        ty: u32,
        /// -1 for the type itself, else member/parameter index.
        component_idx: i32,
    },
    /// `BTF_KIND_TYPE_TAG`.
    TypeTag(u32),
    /// `BTF_KIND_ENUM64`.
    Enum64 {
        /// Size in bytes.
        size: u32,
        /// `kind_flag`: values are signed.
        signed: bool,
        /// Enumerators.
        values: Vec<Enumerator>,
    },
}

impl BtfKind {
    /// The kernel's name for this kind (`"STRUCT"`, …) as bpftool prints it.
    pub fn name(&self) -> &'static str {
        match self {
            BtfKind::Void => "VOID",
            BtfKind::Int { .. } => "INT",
            BtfKind::Ptr(_) => "PTR",
            BtfKind::Array { .. } => "ARRAY",
            BtfKind::Struct { .. } => "STRUCT",
            BtfKind::Union { .. } => "UNION",
            BtfKind::Enum { .. } => "ENUM",
            BtfKind::Fwd { .. } => "FWD",
            BtfKind::Typedef(_) => "TYPEDEF",
            BtfKind::Volatile(_) => "VOLATILE",
            BtfKind::Const(_) => "CONST",
            BtfKind::Restrict(_) => "RESTRICT",
            BtfKind::Func { .. } => "FUNC",
            BtfKind::FuncProto { .. } => "FUNC_PROTO",
            BtfKind::Var { .. } => "VAR",
            BtfKind::Datasec { .. } => "DATASEC",
            BtfKind::Float { .. } => "FLOAT",
            BtfKind::DeclTag { .. } => "DECL_TAG",
            BtfKind::TypeTag(_) => "TYPE_TAG",
            BtfKind::Enum64 { .. } => "ENUM64",
        }
    }
}

/// One BTF type: its name and kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfType {
    /// Name (empty for anonymous types).
    pub name: String,
    /// Kind and its data.
    pub kind: BtfKind,
}

/// A parsed BTF blob.
#[derive(Debug, Clone)]
pub struct Btf {
    /// Types by id; index 0 is `void`.
    types: Vec<BtfType>,
    /// The raw string section.
    strings: Vec<u8>,
    /// The raw type section (kept so the blob can be handed to a kernel, with fix-ups
    /// applied in place).
    types_raw: Vec<u8>,
    /// Byte offset of each type's record in `types_raw` (index = id; 0 for void).
    type_offsets: Vec<usize>,
    /// The first id of this blob's own types: 1, or a split BTF's base type count
    /// ([`split`]: the base's types and strings come first in the fields above).
    start_id: u32,
}

/// Little-endian reader with bounds checks over one blob.
#[doc(hidden)]
pub struct Reader<'a> {
    /// The blob.
    pub data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A little-endian `u32` at `off`.
    pub fn u32_at(&self, off: usize, what: &'static str) -> Result<u32, BtfError> {
        let b = self.bytes(off, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `len` bytes at `off`.
    pub fn bytes(&self, off: usize, len: usize, what: &'static str) -> Result<&'a [u8], BtfError> {
        off.checked_add(len)
            .and_then(|end| self.data.get(off..end))
            .ok_or(BtfError::OutOfBounds {
                what,
                offset: off,
                len,
                size: self.data.len(),
            })
    }
}

fn cstr_at(strings: &[u8], off: u32) -> Result<&str, BtfError> {
    let start = off as usize;
    let rest = strings.get(start..).ok_or(BtfError::BadString(off))?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(BtfError::BadString(off))?;
    std::str::from_utf8(&rest[..end]).map_err(|_| BtfError::BadString(off))
}

impl Btf {
    /// Parses a BTF blob (the contents of a `.BTF` section or `/sys/kernel/btf/vmlinux`).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let mut btf = Btf::parse_header(data)?;
        let raw = std::mem::take(&mut btf.types_raw);
        btf.parse_types(&raw)?;
        btf.types_raw = raw;
        Ok(btf)
    }

    /// The header checks and the two sections of a blob, no type parsed yet.
    fn parse_header(data: &[u8]) -> Result<Btf, BtfError> {
        let r = Reader { data };
        let hdr = r.bytes(0, 8, "btf_header")?;
        let magic = u16::from_le_bytes([hdr[0], hdr[1]]);
        if magic != BTF_MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        if hdr[2] != 1 {
            return Err(BtfError::BadVersion(hdr[2]));
        }
        let hdr_len = r.u32_at(4, "btf_header")?;
        if hdr_len < 24 {
            return Err(BtfError::BadHeaderLen(hdr_len));
        }
        let type_off = r.u32_at(8, "btf_header")? as usize;
        let type_len = r.u32_at(12, "btf_header")? as usize;
        let str_off = r.u32_at(16, "btf_header")? as usize;
        let str_len = r.u32_at(20, "btf_header")? as usize;
        let base = hdr_len as usize;
        let types_raw = r.bytes(base.saturating_add(type_off), type_len, "type section")?;
        let strings = r
            .bytes(base.saturating_add(str_off), str_len, "string section")?
            .to_vec();
        let btf = Btf {
            types: vec![BtfType {
                name: String::new(),
                kind: BtfKind::Void,
            }],
            strings,
            types_raw: types_raw.to_vec(),
            type_offsets: vec![0],
            start_id: 1,
        };
        Ok(btf)
    }

    fn parse_types(&mut self, raw: &[u8]) -> Result<(), BtfError> {
        let r = Reader { data: raw };
        let mut off = 0usize;
        while off < raw.len() {
            let id = self.types.len() as u32;
            let rec_off = off;
            let name_off = r.u32_at(off, "btf_type")?;
            let info = r.u32_at(off + 4, "btf_type")?;
            let size_or_type = r.u32_at(off + 8, "btf_type")?;
            off += 12;
            let vlen = (info & 0xffff) as usize;
            let k = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 != 0;
            let name = cstr_at(&self.strings, name_off)?.to_string();
            // Every multi-record kind is bounded by the remaining bytes before allocating,
            // so a hostile vlen cannot make us allocate much more than the input size.
            let need = |rec: usize| -> Result<(), BtfError> {
                let len = vlen.saturating_mul(rec);
                r.bytes(off, len, "btf_type members").map(|_| ())
            };
            let kind = match k {
                kind::INT => {
                    let v = r.u32_at(off, "btf_type int")?;
                    off += 4;
                    BtfKind::Int {
                        size: size_or_type,
                        encoding: ((v >> 24) & 0x0f) as u8,
                        offset: ((v >> 16) & 0xff) as u8,
                        bits: (v & 0xff) as u8,
                    }
                }
                kind::PTR => BtfKind::Ptr(size_or_type),
                kind::ARRAY => {
                    let elem = r.u32_at(off, "btf_array")?;
                    let index = r.u32_at(off + 4, "btf_array")?;
                    let nelems = r.u32_at(off + 8, "btf_array")?;
                    off += 12;
                    BtfKind::Array {
                        elem,
                        index,
                        nelems,
                    }
                }
                kind::STRUCT | kind::UNION => {
                    need(12)?;
                    let mut members = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let mname = r.u32_at(off, "btf_member")?;
                        let ty = r.u32_at(off + 4, "btf_member")?;
                        let moff = r.u32_at(off + 8, "btf_member")?;
                        off += 12;
                        let (bit_offset, bitfield_size) = if kind_flag {
                            (moff & 0x00ff_ffff, moff >> 24)
                        } else {
                            (moff, 0)
                        };
                        members.push(Member {
                            name: cstr_at(&self.strings, mname)?.to_string(),
                            ty,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    if k == kind::STRUCT {
                        BtfKind::Struct {
                            size: size_or_type,
                            members,
                        }
                    } else {
                        BtfKind::Union {
                            size: size_or_type,
                            members,
                        }
                    }
                }
                kind::ENUM => {
                    need(8)?;
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let ename = r.u32_at(off, "btf_enum")?;
                        let raw = r.u32_at(off + 4, "btf_enum")?;
                        off += 8;
                        let value = if kind_flag {
                            i64::from(raw as i32)
                        } else {
                            i64::from(raw)
                        };
                        values.push(Enumerator {
                            name: cstr_at(&self.strings, ename)?.to_string(),
                            value,
                        });
                    }
                    BtfKind::Enum {
                        size: size_or_type,
                        signed: kind_flag,
                        values,
                    }
                }
                kind::FWD => BtfKind::Fwd {
                    is_union: kind_flag,
                },
                kind::TYPEDEF => BtfKind::Typedef(size_or_type),
                kind::VOLATILE => BtfKind::Volatile(size_or_type),
                kind::CONST => BtfKind::Const(size_or_type),
                kind::RESTRICT => BtfKind::Restrict(size_or_type),
                kind::FUNC => BtfKind::Func {
                    proto: size_or_type,
                    linkage: vlen as u32,
                },
                kind::FUNC_PROTO => {
                    need(8)?;
                    let mut params = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let pname = r.u32_at(off, "btf_param")?;
                        let ty = r.u32_at(off + 4, "btf_param")?;
                        off += 8;
                        params.push(Param {
                            name: cstr_at(&self.strings, pname)?.to_string(),
                            ty,
                        });
                    }
                    BtfKind::FuncProto {
                        ret: size_or_type,
                        params,
                    }
                }
                kind::VAR => {
                    let linkage = r.u32_at(off, "btf_var")?;
                    off += 4;
                    BtfKind::Var {
                        ty: size_or_type,
                        linkage,
                    }
                }
                kind::DATASEC => {
                    need(12)?;
                    let mut vars = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        vars.push(VarSecinfo {
                            ty: r.u32_at(off, "btf_var_secinfo")?,
                            offset: r.u32_at(off + 4, "btf_var_secinfo")?,
                            size: r.u32_at(off + 8, "btf_var_secinfo")?,
                        });
                        off += 12;
                    }
                    BtfKind::Datasec {
                        size: size_or_type,
                        vars,
                    }
                }
                kind::FLOAT => BtfKind::Float { size: size_or_type },
                kind::DECL_TAG => {
                    let idx = r.u32_at(off, "btf_decl_tag")? as i32;
                    off += 4;
                    BtfKind::DeclTag {
                        ty: size_or_type,
                        component_idx: idx,
                    }
                }
                kind::TYPE_TAG => BtfKind::TypeTag(size_or_type),
                kind::ENUM64 => {
                    need(12)?;
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let ename = r.u32_at(off, "btf_enum64")?;
                        let lo = r.u32_at(off + 4, "btf_enum64")?;
                        let hi = r.u32_at(off + 8, "btf_enum64")?;
                        off += 12;
                        values.push(Enumerator {
                            name: cstr_at(&self.strings, ename)?.to_string(),
                            value: ((u64::from(hi) << 32) | u64::from(lo)) as i64,
                        });
                    }
                    BtfKind::Enum64 {
                        size: size_or_type,
                        signed: kind_flag,
                        values,
                    }
                }
                other => return Err(BtfError::UnknownKind { id, kind: other }),
            };
            self.types.push(BtfType { name, kind });
            self.type_offsets.push(rec_off);
        }
        Ok(())
    }

    /// Number of type ids including `void` (valid ids are `0..len()`).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when only `void` exists.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// The type with this id.
    pub fn type_by_id(&self, id: u32) -> Result<&BtfType, BtfError> {
        self.types.get(id as usize).ok_or(BtfError::BadTypeId(id))
    }

    /// All types, index = id.
    pub fn types(&self) -> &[BtfType] {
        &self.types
    }

    /// Sets a DATASEC's size and its variables' offsets, in the parsed view and in the
    /// raw blob (libbpf's `btf_fixup_datasec`: clang leaves them 0 in objects).
    #[doc(hidden)]
    pub fn fixup_datasec(&mut self, id: u32, new_size: u32, offsets: &[Option<u32>]) {
        let Some(rec) = self.type_offsets.get(id as usize).copied() else {
            return;
        };
        let Some(BtfType {
            kind: BtfKind::Datasec { size, vars },
            ..
        }) = self.types.get_mut(id as usize)
        else {
            return;
        };
        *size = new_size;
        patch_u32(&mut self.types_raw, rec + 8, new_size);
        for (v, off) in vars.iter_mut().zip(offsets) {
            if let Some(off) = off {
                v.offset = *off;
            }
        }
        // libbpf sorts the variables by offset (the kernel requires increasing offsets).
        vars.sort_by_key(|v| v.offset);
        for (i, v) in vars.iter().enumerate() {
            let at = rec + 12 + i * 12;
            patch_u32(&mut self.types_raw, at, v.ty);
            patch_u32(&mut self.types_raw, at + 4, v.offset);
            patch_u32(&mut self.types_raw, at + 8, v.size);
        }
    }

    /// The blob in kernel format (`BPF_BTF_LOAD`): a 24-byte header, the type section (with
    /// any fix-ups applied), the string section.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24 + self.types_raw.len() + self.strings.len());
        v.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        v.push(1); // version
        v.push(0); // flags
        v.extend_from_slice(&24u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(self.types_raw.len() as u32).to_le_bytes());
        v.extend_from_slice(&(self.types_raw.len() as u32).to_le_bytes());
        v.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        v.extend_from_slice(&self.types_raw);
        v.extend_from_slice(&self.strings);
        v
    }

    /// The raw `name_off` of type `id` (0 for void and for anonymous types).
    pub fn name_off(&self, id: u32) -> u32 {
        match self.type_offsets.get(id as usize) {
            Some(&off) if id != 0 => self
                .types_raw
                .get(off..off + 4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => 0,
        }
    }

    /// Size of the blob [`Btf::to_bytes`] writes (bpftool's `btf_size`).
    pub fn blob_size(&self) -> usize {
        24 + self.types_raw.len() + self.strings.len()
    }

    /// The string at `off` in the string section.
    pub fn string_at(&self, off: u32) -> Result<&str, BtfError> {
        cstr_at(&self.strings, off)
    }

    /// First type id with this name and kind number (`kind::STRUCT`, …).
    pub fn find_by_name_kind(&self, name: &str, k: u32) -> Option<u32> {
        self.types
            .iter()
            .position(|t| t.name == name && kind_number(&t.kind) == k)
            .map(|i| i as u32)
    }

    /// Follows typedefs and modifiers (const/volatile/restrict/type tags) to the
    /// underlying type id (libbpf's `btf__resolve_type` without the size step).
    pub fn skip_mods_and_typedefs(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            match &self.type_by_id(id)?.kind {
                BtfKind::Typedef(t)
                | BtfKind::Volatile(t)
                | BtfKind::Const(t)
                | BtfKind::Restrict(t)
                | BtfKind::TypeTag(t) => id = *t,
                _ => return Ok(id),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// Size in bytes of a type, through typedef/modifier chains and arrays
    /// (libbpf's `btf__resolve_size`).
    pub fn resolve_size(&self, id: u32) -> Result<u64, BtfError> {
        let mut cur = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(cur)?;
            let size = match &t.kind {
                BtfKind::Int { size, .. }
                | BtfKind::Struct { size, .. }
                | BtfKind::Union { size, .. }
                | BtfKind::Enum { size, .. }
                | BtfKind::Enum64 { size, .. }
                | BtfKind::Datasec { size, .. }
                | BtfKind::Float { size } => Some(u64::from(*size)),
                BtfKind::Ptr(_) => Some(8),
                BtfKind::Typedef(t)
                | BtfKind::Volatile(t)
                | BtfKind::Const(t)
                | BtfKind::Restrict(t)
                | BtfKind::TypeTag(t)
                | BtfKind::Var { ty: t, .. }
                | BtfKind::DeclTag { ty: t, .. } => {
                    cur = *t;
                    None
                }
                BtfKind::Array { elem, nelems, .. } => {
                    mult = mult
                        .checked_mul(u64::from(*nelems))
                        .ok_or(BtfError::SizeOverflow(id))?;
                    cur = *elem;
                    None
                }
                BtfKind::Void
                | BtfKind::Fwd { .. }
                | BtfKind::Func { .. }
                | BtfKind::FuncProto { .. } => {
                    return Err(BtfError::NoSize {
                        id: cur,
                        kind: t.kind.name(),
                    });
                }
            };
            if let Some(s) = size {
                return s.checked_mul(mult).ok_or(BtfError::SizeOverflow(id));
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// Byte offset and type id of a member of struct `id`, by a dotted path
    /// (`"rxq.queue_index"` is not followed through pointers, only nested aggregates).
    /// Anonymous struct/union members are searched as C does: `value` finds
    /// `bpf_array`'s `union { char value[]; … }` member. Bitfields have no byte offset.
    pub fn member_offset(&self, id: u32, path: &str) -> Result<Option<(u32, u32)>, BtfError> {
        let mut cur = id;
        let mut total = 0u32;
        for name in path.split('.') {
            match self.find_member(cur, name, 0)? {
                Some((bits, ty)) if bits % 8 == 0 => {
                    total = total.saturating_add(bits / 8);
                    cur = ty;
                }
                _ => return Ok(None),
            }
        }
        Ok(Some((total, cur)))
    }

    /// A named member of an aggregate, looking inside anonymous members; its bit offset.
    fn find_member(
        &self,
        id: u32,
        name: &str,
        depth: usize,
    ) -> Result<Option<(u32, u32)>, BtfError> {
        if depth > MAX_RESOLVE_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        for m in self.members(id)? {
            if m.bitfield_size != 0 {
                if m.name == name {
                    return Ok(None);
                }
                continue;
            }
            if m.name == name {
                return Ok(Some((m.bit_offset, m.ty)));
            }
            if m.name.is_empty()
                && let Some((bits, ty)) = self.find_member(m.ty, name, depth + 1)?
            {
                return Ok(Some((m.bit_offset + bits, ty)));
            }
        }
        Ok(None)
    }

    /// Size of the named struct (`sizeof(struct NAME)`), if the BTF has it.
    pub fn struct_size(&self, name: &str) -> Option<u64> {
        let id = self.find_by_name_kind(name, kind::STRUCT)?;
        self.resolve_size(id).ok()
    }

    /// Members of a struct/union (after skipping typedefs/modifiers).
    pub fn members(&self, id: u32) -> Result<&[Member], BtfError> {
        let id = self.skip_mods_and_typedefs(id)?;
        match &self.type_by_id(id)?.kind {
            BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => Ok(members),
            _ => Ok(&[]),
        }
    }

    /// The C spelling of a type as bpftool's `btf_dumper_type_only` writes it:
    /// `struct xdp_md *`, `const char`, `__u64`, `void`.
    pub fn type_name(&self, id: u32) -> Result<String, BtfError> {
        let mut budget = NAME_BUDGET;
        self.type_name_depth(id, 0, &mut budget)
    }

    fn type_name_depth(
        &self,
        id: u32,
        depth: usize,
        budget: &mut usize,
    ) -> Result<String, BtfError> {
        // Depth bounds cycles; the budget bounds the fan-out of function prototypes whose
        // parameters are themselves prototypes (hostile BTF could make that exponential).
        if depth > MAX_RESOLVE_DEPTH || *budget == 0 {
            return Err(BtfError::TooDeep(id));
        }
        *budget -= 1;
        let t = self.type_by_id(id)?;
        let anon = |s: &str| {
            if s.is_empty() {
                "(anon)".to_string()
            } else {
                s.to_string()
            }
        };
        Ok(match &t.kind {
            BtfKind::Void => "void".to_string(),
            BtfKind::Int { .. } | BtfKind::Float { .. } | BtfKind::Typedef(_) => t.name.clone(),
            BtfKind::Struct { .. } => format!("struct {}", anon(&t.name)),
            BtfKind::Union { .. } => format!("union {}", anon(&t.name)),
            BtfKind::Enum { .. } | BtfKind::Enum64 { .. } => format!("enum {}", anon(&t.name)),
            BtfKind::Fwd { is_union } => {
                format!("{} {}", if *is_union { "union" } else { "struct" }, t.name)
            }
            BtfKind::Ptr(inner) => {
                format!("{} *", self.type_name_depth(*inner, depth + 1, budget)?)
            }
            BtfKind::Const(inner) => {
                format!("const {}", self.type_name_depth(*inner, depth + 1, budget)?)
            }
            BtfKind::Volatile(inner) => {
                format!(
                    "volatile {}",
                    self.type_name_depth(*inner, depth + 1, budget)?
                )
            }
            BtfKind::Restrict(inner) => {
                format!(
                    "restrict {}",
                    self.type_name_depth(*inner, depth + 1, budget)?
                )
            }
            BtfKind::TypeTag(inner) => self.type_name_depth(*inner, depth + 1, budget)?,
            BtfKind::Array { elem, nelems, .. } => {
                // C order: the outermost dimension first (`__u8[2][3]`).
                let mut dims = format!("[{nelems}]");
                let mut inner = *elem;
                let mut hops = 0;
                while let BtfKind::Array { elem, nelems, .. } = &self.type_by_id(inner)?.kind {
                    hops += 1;
                    if hops > MAX_RESOLVE_DEPTH {
                        return Err(BtfError::TooDeep(id));
                    }
                    dims.push_str(&format!("[{nelems}]"));
                    inner = *elem;
                }
                format!("{}{dims}", self.type_name_depth(inner, depth + 1, budget)?)
            }
            BtfKind::FuncProto { ret, params } => {
                let mut s = format!("{} (*)(", self.type_name_depth(*ret, depth + 1, budget)?);
                for (i, p) in params.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    if p.ty == 0 {
                        s.push_str("...");
                    } else {
                        s.push_str(&self.type_name_depth(p.ty, depth + 1, budget)?);
                    }
                }
                s.push(')');
                s
            }
            BtfKind::Func { .. }
            | BtfKind::Var { .. }
            | BtfKind::Datasec { .. }
            | BtfKind::DeclTag { .. } => t.name.clone(),
        })
    }

    /// The prototype line bpftool prints above each function in `prog dump xlated`
    /// (`btf_dump_func`): `int xdp_prog(struct xdp_md * ctx)`. `func_id` is a `FUNC` type.
    pub fn func_prototype(&self, func_id: u32) -> Result<String, BtfError> {
        let t = self.type_by_id(func_id)?;
        let proto = match &t.kind {
            BtfKind::Func { proto, .. } => *proto,
            _ => return Err(BtfError::BadTypeId(func_id)),
        };
        let (ret, params) = match &self.type_by_id(proto)?.kind {
            BtfKind::FuncProto { ret, params } => (*ret, params),
            _ => return Err(BtfError::BadTypeId(proto)),
        };
        let mut s = format!("{} {}(", self.type_name(ret)?, t.name);
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            if p.ty == 0 {
                s.push_str("...");
                continue;
            }
            let tn = self.type_name(p.ty)?;
            if p.name.is_empty() {
                s.push_str(&tn);
            } else {
                let _ = write!(s, "{} {}", tn, p.name);
            }
        }
        s.push(')');
        Ok(s)
    }

    /// Formats a value of type `id` the way bpftool's BTF dumper does in JSON mode
    /// (`btf_dumper_type`): integers as numbers (`bool` as true/false), bitfields as a
    /// hex string (`"0x5"`), structs and unions as objects by member name, arrays as
    /// lists, `char` arrays holding a printable C string as a JSON string, enums by
    /// enumerator name when one matches, DATASECs as `{"<sec>": [{"<var>": …}]}`.
    /// Anonymous members are flattened here; bpftool prints them under an empty name, as
    /// [`Btf::dump_data`] does (use that for bpftool's exact output).
    /// Pointers are numbers (bpftool 7.1 writes a bare `0x…`, which is not JSON);
    /// FLOAT values are numbers (bpftool 7.1 cannot print them).
    pub fn format_value(&self, id: u32, data: &[u8]) -> Result<JsonValue, BtfError> {
        let mut budget = FORMAT_BUDGET;
        self.format_at(id, data, 0, 0, &mut budget)
    }

    /// `{"key": …, "value": …}` as in the `formatted` object of `bpftool map dump -j`.
    /// A `key_type` of 0 (global data maps) omits the key, as bpftool does.
    pub fn format_entry(
        &self,
        key_type: u32,
        key: &[u8],
        value_type: u32,
        value: &[u8],
    ) -> Result<JsonValue, BtfError> {
        let mut m = JsonMap::new();
        if key_type != 0 {
            m.insert("key".into(), self.format_value(key_type, key)?);
        }
        m.insert("value".into(), self.format_value(value_type, value)?);
        Ok(JsonValue::Object(m))
    }

    fn format_at(
        &self,
        id: u32,
        data: &[u8],
        bit_off: u32,
        depth: usize,
        budget: &mut usize,
    ) -> Result<JsonValue, BtfError> {
        // The budget bounds the number of nodes printed: overlapping members or zero-sized
        // elements in hostile BTF could otherwise make the output explode.
        if depth > MAX_RESOLVE_DEPTH || *budget == 0 {
            return Err(BtfError::TooDeep(id));
        }
        *budget -= 1;
        let t = self.type_by_id(id)?;
        let too_short = |need: usize| BtfError::ValueTooShort {
            id,
            need,
            have: data.len(),
        };
        match &t.kind {
            BtfKind::Typedef(i)
            | BtfKind::Volatile(i)
            | BtfKind::Const(i)
            | BtfKind::Restrict(i)
            | BtfKind::TypeTag(i)
            | BtfKind::Var { ty: i, .. }
            | BtfKind::DeclTag { ty: i, .. } => {
                self.format_at(*i, data, bit_off, depth + 1, budget)
            }
            BtfKind::Int {
                size,
                encoding,
                offset,
                bits,
            } => {
                let size = *size as usize;
                let total_bits = u32::from(*offset) + bit_off;
                if total_bits != 0 || u64::from(*bits) != size as u64 * 8 {
                    let v = read_bits(data, total_bits, u32::from(*bits))
                        .ok_or_else(|| too_short(size))?;
                    return Ok(bitfield_json(v));
                }
                let b = data.get(..size).ok_or_else(|| too_short(size))?;
                if size > 8 {
                    // bpftool prints 128-bit ints as hex.
                    let mut s = String::from("0x");
                    for byte in b.iter().rev() {
                        let _ = write!(s, "{byte:02x}");
                    }
                    return Ok(JsonValue::from(s));
                }
                let raw = le_u64(b);
                if encoding & BTF_INT_BOOL != 0 {
                    return Ok(JsonValue::from(raw != 0));
                }
                if encoding & BTF_INT_SIGNED != 0 {
                    return Ok(JsonValue::from(sign_extend(raw, size * 8)));
                }
                Ok(JsonValue::from(raw))
            }
            BtfKind::Enum { size, values, .. } | BtfKind::Enum64 { size, values, .. } => {
                // bpftool (btf_dumper_enum/enum64) compares the value's bits with each
                // enumerator and otherwise prints the value as a signed integer.
                let size = *size as usize;
                let b = data.get(..size).ok_or_else(|| too_short(size))?;
                let raw = le_u64(b);
                match values.iter().find(|e| (e.value as u64 & mask(size)) == raw) {
                    Some(e) => Ok(JsonValue::from(e.name.clone())),
                    None => Ok(JsonValue::from(sign_extend(raw, size * 8))),
                }
            }
            BtfKind::Float { size } => {
                let size = *size as usize;
                let b = data.get(..size).ok_or_else(|| too_short(size))?;
                Ok(match size {
                    4 => JsonValue::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    8 => JsonValue::from(f64::from_bits(le_u64(b))),
                    _ => JsonValue::from(le_u64(b)),
                })
            }
            BtfKind::Ptr(_) => {
                let b = data.get(..8).ok_or_else(|| too_short(8))?;
                Ok(JsonValue::from(le_u64(b)))
            }
            BtfKind::Struct { members, size } | BtfKind::Union { members, size } => {
                let need = *size as usize;
                if data.len() < need {
                    return Err(too_short(need));
                }
                let mut m = JsonMap::new();
                for mem in members {
                    let byte = (mem.bit_offset / 8) as usize;
                    let sub = data.get(byte..).ok_or_else(|| too_short(byte))?;
                    let v = if mem.bitfield_size != 0 {
                        let v = read_bits(sub, mem.bit_offset % 8, mem.bitfield_size)
                            .ok_or_else(|| too_short(byte + 8))?;
                        bitfield_json(v)
                    } else {
                        self.format_at(mem.ty, sub, mem.bit_offset % 8, depth + 1, budget)?
                    };
                    if mem.name.is_empty() {
                        // Flattened (bpftool prints them under "", as dump_data does).
                        if let JsonValue::Object(inner) = v {
                            m.extend(inner);
                            continue;
                        }
                    }
                    m.insert(mem.name.clone(), v);
                }
                Ok(JsonValue::Object(m))
            }
            BtfKind::Array { elem, nelems, .. } => {
                let esize = self.resolve_size(*elem)? as usize;
                let n = *nelems as usize;
                let need = esize.checked_mul(n).ok_or(BtfError::SizeOverflow(id))?;
                let bytes = data.get(..need).ok_or_else(|| too_short(need))?;
                if self.is_char(*elem)?
                    && let Some(s) = c_string(bytes)
                {
                    return Ok(JsonValue::from(s));
                }
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(self.format_at(*elem, &bytes[i * esize..], 0, depth + 1, budget)?);
                }
                Ok(JsonValue::Array(out))
            }
            BtfKind::Datasec { vars, .. } => {
                // bpftool's btf_dumper_datasec: {"<section>": [{"<var>": value}, …]}.
                let mut out = Vec::with_capacity(vars.len());
                for v in vars {
                    let name = self.type_by_id(v.ty)?.name.clone();
                    let off = v.offset as usize;
                    let sub = data.get(off..).ok_or_else(|| too_short(off))?;
                    let mut m = JsonMap::new();
                    m.insert(name, self.format_at(v.ty, sub, 0, depth + 1, budget)?);
                    out.push(JsonValue::Object(m));
                }
                let mut sec = JsonMap::new();
                sec.insert(t.name.clone(), JsonValue::Array(out));
                Ok(JsonValue::Object(sec))
            }
            BtfKind::Void
            | BtfKind::Fwd { .. }
            | BtfKind::Func { .. }
            | BtfKind::FuncProto { .. } => Err(BtfError::NoSize {
                id,
                kind: t.kind.name(),
            }),
        }
    }

    /// bpftool's `is_str_array` element test: after modifiers (not typedefs — a typedef
    /// to char does not count), a 1-byte INT named `char` or with `BTF_INT_CHAR`.
    fn is_char(&self, mut id: u32) -> Result<bool, BtfError> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(id)?;
            match &t.kind {
                BtfKind::Volatile(i)
                | BtfKind::Const(i)
                | BtfKind::Restrict(i)
                | BtfKind::TypeTag(i) => id = *i,
                BtfKind::Int {
                    size: 1, encoding, ..
                } => return Ok(encoding & BTF_INT_CHAR != 0 || t.name == "char"),
                _ => return Ok(false),
            }
        }
        Err(BtfError::TooDeep(id))
    }
}

/// The `BTF_KIND_*` number of a parsed kind.
pub fn kind_number(k: &BtfKind) -> u32 {
    match k {
        BtfKind::Void => kind::UNKN,
        BtfKind::Int { .. } => kind::INT,
        BtfKind::Ptr(_) => kind::PTR,
        BtfKind::Array { .. } => kind::ARRAY,
        BtfKind::Struct { .. } => kind::STRUCT,
        BtfKind::Union { .. } => kind::UNION,
        BtfKind::Enum { .. } => kind::ENUM,
        BtfKind::Fwd { .. } => kind::FWD,
        BtfKind::Typedef(_) => kind::TYPEDEF,
        BtfKind::Volatile(_) => kind::VOLATILE,
        BtfKind::Const(_) => kind::CONST,
        BtfKind::Restrict(_) => kind::RESTRICT,
        BtfKind::Func { .. } => kind::FUNC,
        BtfKind::FuncProto { .. } => kind::FUNC_PROTO,
        BtfKind::Var { .. } => kind::VAR,
        BtfKind::Datasec { .. } => kind::DATASEC,
        BtfKind::Float { .. } => kind::FLOAT,
        BtfKind::DeclTag { .. } => kind::DECL_TAG,
        BtfKind::TypeTag(_) => kind::TYPE_TAG,
        BtfKind::Enum64 { .. } => kind::ENUM64,
    }
}

/// bpftool prints bitfields in JSON as a quoted hex string (`"0x5"`).
fn bitfield_json(v: u64) -> JsonValue {
    JsonValue::from(format!("{v:#x}"))
}

fn patch_u32(buf: &mut [u8], off: usize, v: u32) {
    if let Some(b) = buf.get_mut(off..off + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = b.len().min(8);
    buf[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(buf)
}

fn mask(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

fn sign_extend(raw: u64, bits: usize) -> i64 {
    if bits == 0 || bits >= 64 {
        return raw as i64;
    }
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// Reads `bits` bits starting `bit_off` bits into `data` (little-endian bit order).
fn read_bits(data: &[u8], bit_off: u32, bits: u32) -> Option<u64> {
    if bits == 0 || bits > 64 {
        return Some(0);
    }
    let first = (bit_off / 8) as usize;
    let last = (u64::from(bit_off) + u64::from(bits)).div_ceil(8) as usize;
    let bytes = data.get(first..last)?;
    let mut v: u128 = 0;
    for (i, b) in bytes.iter().enumerate() {
        v |= u128::from(*b) << (8 * i);
    }
    v >>= bit_off % 8;
    let m: u128 = if bits == 64 {
        u128::from(u64::MAX)
    } else {
        (1u128 << bits) - 1
    };
    Some((v & m) as u64)
}

/// bpftool's `is_str_array` contents test: printable characters up to a NUL inside the
/// array (whatever follows the NUL is ignored); no NUL means not a string.
fn c_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0)?;
    let s = &bytes[..end];
    if s.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        Some(String::from_utf8_lossy(s).into_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob from raw type records and a string table.
    pub(crate) fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        v.push(1);
        v.push(0);
        v.extend_from_slice(&24u32.to_le_bytes());
        let tlen = (types.len() * 4) as u32;
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&tlen.to_le_bytes());
        v.extend_from_slice(&tlen.to_le_bytes());
        v.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        for t in types {
            v.extend_from_slice(&t.to_le_bytes());
        }
        v.extend_from_slice(strings);
        v
    }

    fn info(k: u32, vlen: u32, kf: bool) -> u32 {
        (k << 24) | vlen | if kf { 1 << 31 } else { 0 }
    }

    #[test]
    fn sizes_names_and_values() {
        // strings: 0 "", 1 "int", 5 "s", 7 "a", 9 "b", 11 "char", 16 "u32t"
        let strings = b"\0int\0s\0a\0b\0char\0u32t\0";
        let types = [
            // [1] int
            1,
            info(kind::INT, 0, false),
            4,
            (1 << 24) | 32,
            // [2] char
            11,
            info(kind::INT, 0, false),
            1,
            (1 << 24) | 8,
            // [3] char[4]
            0,
            info(kind::ARRAY, 0, false),
            0,
            2,
            1,
            4,
            // [4] typedef u32t -> const int
            16,
            info(kind::TYPEDEF, 0, false),
            5,
            // [5] const int
            0,
            info(kind::CONST, 0, false),
            1,
            // [6] struct s { u32t a; char b[4]; }
            5,
            info(kind::STRUCT, 2, false),
            8,
            7,
            4,
            0,
            9,
            3,
            32,
            // [7] ptr to struct s
            0,
            info(kind::PTR, 0, false),
            6,
        ];
        let btf = Btf::parse(&blob(&types, strings)).unwrap();
        assert_eq!(btf.len(), 8);
        assert_eq!(btf.resolve_size(4).unwrap(), 4);
        assert_eq!(btf.resolve_size(3).unwrap(), 4);
        assert_eq!(btf.resolve_size(6).unwrap(), 8);
        assert_eq!(btf.type_name(7).unwrap(), "struct s *");
        assert_eq!(btf.type_name(5).unwrap(), "const int");
        let mut val = (-3i32).to_le_bytes().to_vec();
        val.extend_from_slice(b"hi\0\0");
        let v = btf.format_value(6, &val).unwrap();
        assert_eq!(v, serde_json::json!({"a": -3, "b": "hi"}));
        let v = btf.format_value(6, &[1, 0, 0, 0, 1, 2, 3, 4]).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": [1, 2, 3, 4]}));
        assert!(matches!(
            btf.format_value(6, &[0; 4]),
            Err(BtfError::ValueTooShort { .. })
        ));
    }

    #[test]
    fn cyclic_typedef_is_an_error() {
        let strings = b"\0t\0";
        let types = [1, info(kind::TYPEDEF, 0, false), 1];
        let btf = Btf::parse(&blob(&types, strings)).unwrap();
        assert_eq!(btf.resolve_size(1), Err(BtfError::TooDeep(1)));
        assert!(btf.type_name(1).is_ok());
    }

    #[test]
    fn header_errors() {
        assert!(matches!(
            Btf::parse(&[0x9f, 0xeb]),
            Err(BtfError::OutOfBounds { .. })
        ));
        let mut b = blob(&[], b"\0");
        b[0] = 0;
        assert!(matches!(Btf::parse(&b), Err(BtfError::BadMagic(_))));
        let mut b = blob(&[1, info(kind::INT, 0, false), 4], b"\0");
        // Type section claims more bytes than exist.
        b[12] = 200;
        assert!(matches!(Btf::parse(&b), Err(BtfError::OutOfBounds { .. })));
        let b = blob(&[0, info(25, 0, false), 0], b"\0");
        assert_eq!(
            Btf::parse(&b).unwrap_err(),
            BtfError::UnknownKind { id: 1, kind: 25 }
        );
        // A huge vlen must not allocate or panic.
        let b = blob(&[0, info(kind::STRUCT, 0xffff, false), 0], b"\0");
        assert!(matches!(Btf::parse(&b), Err(BtfError::OutOfBounds { .. })));
    }

    #[test]
    fn bits() {
        assert_eq!(read_bits(&[0b1011_0000], 4, 4), Some(0b1011));
        assert_eq!(read_bits(&[0xff, 0x01], 7, 2), Some(0b11));
        assert_eq!(sign_extend(0xff, 8), -1);
    }
}

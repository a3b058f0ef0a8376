//! `.BTF.ext`: per-section `func_info`, `line_info` and `core_relo` records, as the kernel's
//! `struct btf_ext_header` lays them out (libbpf's `btf_ext__new`).
//!
//! Each info block is `u32 rec_size` followed by groups `{ u32 sec_name_off; u32 num_info;
//! rec[num_info] }`. Instruction offsets in the file are byte offsets within the ELF
//! section; this module keeps them as bytes and the object layer turns them into
//! instruction indexes when it links programs.

use crate::btf::{Btf, BtfError, Reader};

/// `bpf_func_info` as stored in `.BTF.ext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfoRec {
    /// Byte offset within the section.
    pub insn_off: u32,
    /// `FUNC` type id.
    pub type_id: u32,
}

/// `bpf_line_info` as stored in `.BTF.ext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfoRec {
    /// Byte offset within the section.
    pub insn_off: u32,
    /// BTF string offset of the file name.
    pub file_name_off: u32,
    /// BTF string offset of the source line.
    pub line_off: u32,
    /// `line << 10 | column`.
    pub line_col: u32,
}

/// `bpf_core_relo` as stored in `.BTF.ext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreReloRec {
    /// Byte offset within the section.
    pub insn_off: u32,
    /// Local (program BTF) root type id.
    pub type_id: u32,
    /// BTF string offset of the access spec (`"0:1:2"`).
    pub access_str_off: u32,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// Records of one ELF section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecInfo<T> {
    /// Section name (`"xdp"`, `".text"`, …).
    pub sec_name: String,
    /// Records in file order.
    pub recs: Vec<T>,
}

/// Parsed `.BTF.ext`.
#[derive(Debug, Clone, Default)]
pub struct BtfExt {
    /// `func_info` per section.
    pub func_info: Vec<SecInfo<FuncInfoRec>>,
    /// `line_info` per section.
    pub line_info: Vec<SecInfo<LineInfoRec>>,
    /// `core_relo` per section.
    pub core_relo: Vec<SecInfo<CoreReloRec>>,
}

/// Errors parsing `.BTF.ext`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfExtError {
    /// Low-level read error.
    #[error(".BTF.ext: {0}")]
    Btf(#[from] BtfError),
    /// Bad magic.
    #[error(".BTF.ext: bad magic {0:#06x}")]
    BadMagic(u16),
    /// A record size smaller than the structure we read.
    #[error(".BTF.ext: {what} record size {size} is smaller than {min}")]
    BadRecSize {
        /// Which info.
        what: &'static str,
        /// Declared size.
        size: u32,
        /// Minimum.
        min: u32,
    },
}

impl BtfExt {
    /// Parses `.BTF.ext`; section names are looked up in `btf`'s string table.
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfExtError> {
        let r = Reader { data };
        let hdr = r.bytes(0, 8, "btf_ext_header")?;
        let magic = u16::from_le_bytes([hdr[0], hdr[1]]);
        if magic != crate::btf::BTF_MAGIC {
            return Err(BtfExtError::BadMagic(magic));
        }
        let hdr_len = r.u32_at(4, "btf_ext_header")? as usize;
        let field = |off: usize| -> Result<u32, BtfExtError> {
            if off + 4 > hdr_len {
                return Ok(0);
            }
            Ok(r.u32_at(off, "btf_ext_header")?)
        };
        let block = |off: u32, len: u32, what: &'static str| -> Result<&[u8], BtfExtError> {
            let start = hdr_len.saturating_add(off as usize);
            Ok(r.bytes(start, len as usize, what)?)
        };
        let mut ext = BtfExt::default();
        let (fo, fl) = (field(8)?, field(12)?);
        if fl > 0 {
            ext.func_info =
                parse_block(block(fo, fl, "func_info")?, btf, "func_info", 8, |r, o| {
                    Ok(FuncInfoRec {
                        insn_off: r.u32_at(o, "func_info")?,
                        type_id: r.u32_at(o + 4, "func_info")?,
                    })
                })?;
        }
        let (lo, ll) = (field(16)?, field(20)?);
        if ll > 0 {
            ext.line_info =
                parse_block(block(lo, ll, "line_info")?, btf, "line_info", 16, |r, o| {
                    Ok(LineInfoRec {
                        insn_off: r.u32_at(o, "line_info")?,
                        file_name_off: r.u32_at(o + 4, "line_info")?,
                        line_off: r.u32_at(o + 8, "line_info")?,
                        line_col: r.u32_at(o + 12, "line_info")?,
                    })
                })?;
        }
        let (co, cl) = (field(24)?, field(28)?);
        if cl > 0 {
            ext.core_relo =
                parse_block(block(co, cl, "core_relo")?, btf, "core_relo", 16, |r, o| {
                    Ok(CoreReloRec {
                        insn_off: r.u32_at(o, "core_relo")?,
                        type_id: r.u32_at(o + 4, "core_relo")?,
                        access_str_off: r.u32_at(o + 8, "core_relo")?,
                        kind: r.u32_at(o + 12, "core_relo")?,
                    })
                })?;
        }
        Ok(ext)
    }
}

fn parse_block<T>(
    data: &[u8],
    btf: &Btf,
    what: &'static str,
    min: u32,
    rec: impl Fn(&Reader<'_>, usize) -> Result<T, BtfError>,
) -> Result<Vec<SecInfo<T>>, BtfExtError> {
    let r = Reader { data };
    let rec_size = r.u32_at(0, what)?;
    if rec_size < min {
        return Err(BtfExtError::BadRecSize {
            what,
            size: rec_size,
            min,
        });
    }
    let mut off = 4usize;
    let mut out = Vec::new();
    while off < data.len() {
        let name_off = r.u32_at(off, what)?;
        let num = r.u32_at(off + 4, what)? as usize;
        off += 8;
        // Bound the count by the bytes present before allocating.
        let total = num.saturating_mul(rec_size as usize);
        r.bytes(off, total, what)?;
        let mut recs = Vec::with_capacity(num);
        for _ in 0..num {
            recs.push(rec(&r, off)?);
            off += rec_size as usize;
        }
        out.push(SecInfo {
            sec_name: btf.string_at(name_off)?.to_string(),
            recs,
        });
    }
    Ok(out)
}

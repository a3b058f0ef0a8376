//! `bpf_convert_ctx_access` for `struct __sk_buff` (socket filters and `tc` programs): the
//! fields kbpf's `sk_buff` mirrors, at the offsets of Linux 6.18 x86-64 (read from the
//! kernel's own translated programs).

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::RewriteError;

/// `offsetof(struct sk_buff, len)`.
pub const SKB_LEN: i16 = 112;
/// `offsetof(struct sk_buff, mark)`.
pub const SKB_MARK: i16 = 164;
/// `offsetof(struct sk_buff, data)`.
pub const SKB_DATA: i16 = 200;
/// `offsetof(struct sk_buff, cb) + offsetof(struct qdisc_skb_cb, data)`: `__sk_buff.cb[0]`.
pub const SKB_CB_DATA: i16 = 48;
/// `offsetof(struct sk_buff, cb) + offsetof(struct bpf_skb_data_end, data_end)`.
pub const SKB_DATA_END: i16 = 80;
/// `offsetof(struct __sk_buff, cb[0])`.
const UAPI_CB0: i16 = 48;

/// Converts one `__sk_buff` access (`insn` already widened for narrow loads).
pub fn convert(
    insn: &Insn,
    field: &str,
    write: bool,
    at: usize,
) -> Result<Vec<Insn>, RewriteError> {
    let (d, s) = (insn.dst(), insn.src());
    let size = insn.code & 0x18;
    let load = |off: i16, sz: u8| Insn::new(BPF_LDX | sz | BPF_MEM, d, s, off, 0);
    let store = |off: i16| Insn::new(insn.class() | size | BPF_MEM, d, s, off, insn.imm);
    let unsupported = || RewriteError::Unsupported {
        insn: at,
        what: format!(
            "__sk_buff field {field}{}",
            if write { " (store)" } else { "" }
        ),
    };
    Ok(match (field, write) {
        ("len", false) => vec![load(SKB_LEN, BPF_W)],
        ("mark", false) => vec![load(SKB_MARK, BPF_W)],
        ("mark", true) => vec![store(SKB_MARK)],
        ("data", false) => vec![load(SKB_DATA, BPF_DW)],
        ("data_end", false) => vec![load(SKB_DATA_END, BPF_DW)],
        (f, w) if f.starts_with("cb[") => {
            // Any size, at the same relative offset inside qdisc_skb_cb.data.
            let off = insn.off - UAPI_CB0 + SKB_CB_DATA;
            if w {
                vec![store(off)]
            } else {
                vec![load(off, size)]
            }
        }
        _ => return Err(unsupported()),
    })
}

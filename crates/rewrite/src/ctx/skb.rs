//! `bpf_convert_ctx_access` for `struct __sk_buff` (socket filters, `tc`, cgroup_skb and
//! lwt programs): the fields kbpf's `sk_buff` mirrors, at the offsets of Linux 6.18 x86-64
//! (read from the kernel's own translated programs), and the `sock_common` fields
//! cgroup_skb reads through `skb->sk`.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::RewriteError;
use crate::ctx::sock::{
    SKC_DADDR, SKC_DPORT, SKC_FAMILY, SKC_NUM, SKC_RCV_SADDR, SKC_V6_DADDR, SKC_V6_RCV_SADDR,
};
use crate::fixups::BPF_REG_AX;
use kbpf_uapi::net::TC_ACT_SHOT;

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
/// `offsetof(struct sk_buff, dev)`.
pub const SKB_DEV: i16 = 16;
/// `offsetof(struct sk_buff, queue_mapping)`.
pub const SKB_QUEUE_MAPPING: i16 = 124;
/// The byte holding `pkt_type` (a 3-bit field) in `struct sk_buff`.
pub const SKB_PKT_TYPE: i16 = 128;
/// `PKT_TYPE_MAX`: the mask of the `pkt_type` bits.
pub const PKT_TYPE_MAX: i32 = 7;
/// `CLONED_OFFSET`: the byte of `struct sk_buff` holding the `cloned` bit.
pub const SKB_CLONED_OFFSET: i16 = 126;
/// `CLONED_MASK`: the `cloned` bit in that byte.
pub const SKB_CLONED_MASK: i32 = 1;
/// `offsetof(struct sk_buff, tc_index)`.
pub const SKB_TC_INDEX: i16 = 132;
/// `offsetof(struct sk_buff, priority)`.
pub const SKB_PRIORITY: i16 = 140;
/// `offsetof(struct sk_buff, skb_iif)`.
pub const SKB_IIF: i16 = 144;
/// `offsetof(struct sk_buff, hash)`.
pub const SKB_HASH: i16 = 148;
/// `offsetof(struct sk_buff, protocol)`.
pub const SKB_PROTOCOL: i16 = 176;
/// `offsetof(struct sk_buff, cb) + offsetof(struct qdisc_skb_cb, tc_classid)`.
pub const SKB_TC_CLASSID: i16 = 46;
/// `offsetof(struct sk_buff, sk)`.
pub const SKB_SK: i16 = 24;
/// `offsetof(struct sk_buff, tstamp)`.
pub const SKB_TSTAMP: i16 = 32;
/// The byte of `struct sk_buff` holding `tstamp_type` (bits 0-1) and `tc_at_ingress`
/// (`SKB_BF_MONO_TC_OFFSET`).
pub const SKB_TSTAMP_TYPE_OFFSET: i16 = 129;
/// `TC_AT_INGRESS_MASK` in that byte.
const TC_AT_INGRESS_MASK: i32 = 0x4;
/// `SKB_TSTAMP_TYPE_MASK` in that byte.
const SKB_TSTAMP_TYPE_MASK: i32 = 0x3;
/// `offsetof(struct sk_buff, vlan_all)` (`vlan_proto` is its first half).
pub const SKB_VLAN_ALL: i16 = 152;
/// `offsetof(struct sk_buff, vlan_tci)`.
pub const SKB_VLAN_TCI: i16 = 154;
/// `offsetof(struct sk_buff, napi_id)`.
pub const SKB_NAPI_ID: i16 = 156;
/// `MIN_NAPI_ID` (`NR_CPUS + 1`) of the kernel build the offsets were read from: lower ids
/// are sender CPUs, not NAPI ids, and read as 0.
const MIN_NAPI_ID: i32 = 0x101;
/// `offsetof(struct __sk_buff, cb[0])`.
const UAPI_CB0: i16 = 48;
/// `offsetof(struct __sk_buff, remote_ip6[0])`.
const UAPI_REMOTE_IP6: i16 = 100;
/// `offsetof(struct __sk_buff, local_ip6[0])`.
const UAPI_LOCAL_IP6: i16 = 116;

/// A jump of the rewrite's own sequences (`BPF_JMP`/`BPF_JMP32` with an immediate).
fn jmp(code: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code | BPF_K, dst, 0, off, imm)
}

/// The start of both tstamp sequences: the byte with `tstamp_type` and `tc_at_ingress` of
/// the skb at `base` into `BPF_REG_AX`, then a jump over the next instruction when the skb
/// is at tc ingress.
fn at_ingress(base: u8) -> [Insn; 2] {
    [
        Insn::new(
            BPF_LDX | BPF_B | BPF_MEM,
            BPF_REG_AX,
            base,
            SKB_TSTAMP_TYPE_OFFSET,
            0,
        ),
        jmp(BPF_JMP32 | BPF_JSET, BPF_REG_AX, 1, TC_AT_INGRESS_MASK),
    ]
}

/// `bpf_convert_tstamp_read` (for a program that does not read `tstamp_type`): a delivery
/// time stamped at tc ingress reads as 0.
fn tstamp_read(d: u8, s: u8) -> Vec<Insn> {
    let mut v = at_ingress(s).to_vec();
    v.extend([
        jmp(BPF_JMP | BPF_JA, 0, 4, 0),
        jmp(BPF_JMP32 | BPF_JSET, BPF_REG_AX, 1, SKB_TSTAMP_TYPE_MASK),
        jmp(BPF_JMP | BPF_JA, 0, 2, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, 0),
        jmp(BPF_JMP | BPF_JA, 0, 1, 0),
        Insn::new(BPF_LDX | BPF_DW | BPF_MEM, d, s, SKB_TSTAMP, 0),
    ]);
    v
}

/// `bpf_convert_tstamp_write`: a write at tc ingress clears the stamp's type first.
fn tstamp_write(store: Insn) -> Vec<Insn> {
    let d = store.dst();
    let mut v = at_ingress(d).to_vec();
    v.extend([
        jmp(BPF_JMP | BPF_JA, 0, 2, 0),
        Insn::new(
            BPF_ALU | BPF_AND | BPF_K,
            BPF_REG_AX,
            0,
            0,
            !SKB_TSTAMP_TYPE_MASK,
        ),
        Insn::new(
            BPF_STX | BPF_B | BPF_MEM,
            d,
            BPF_REG_AX,
            SKB_TSTAMP_TYPE_OFFSET,
            0,
        ),
        store,
    ]);
    v
}

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
    let sk_load = |off: i16, sz: u8| {
        vec![
            load(SKB_SK, BPF_DW),
            Insn::new(BPF_LDX | sz | BPF_MEM, d, d, off, 0),
        ]
    };
    let unsupported = || RewriteError::Unsupported {
        insn: at,
        what: format!(
            "__sk_buff field {field}{}",
            if write { " (store)" } else { "" }
        ),
    };
    Ok(match (field, write) {
        ("len", false) => vec![load(SKB_LEN, BPF_W)],
        ("pkt_type", false) => vec![
            load(SKB_PKT_TYPE, BPF_B),
            Insn::new(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, PKT_TYPE_MAX),
        ],
        ("queue_mapping", false) => vec![load(SKB_QUEUE_MAPPING, BPF_H)],
        ("protocol", false) => vec![load(SKB_PROTOCOL, BPF_H)],
        ("priority", false) => vec![load(SKB_PRIORITY, BPF_W)],
        ("priority", true) => vec![store(SKB_PRIORITY)],
        ("ingress_ifindex", false) => vec![load(SKB_IIF, BPF_W)],
        ("ifindex", false) => vec![
            load(SKB_DEV, BPF_DW),
            Insn::new(
                BPF_LDX | BPF_W | BPF_MEM,
                d,
                d,
                crate::ctx::NET_DEVICE_IFINDEX,
                0,
            ),
        ],
        ("tc_index", false) => vec![load(SKB_TC_INDEX, BPF_H)],
        ("hash", false) => vec![load(SKB_HASH, BPF_W)],
        ("tc_classid", false) => vec![load(SKB_TC_CLASSID, BPF_H)],
        ("mark", false) => vec![load(SKB_MARK, BPF_W)],
        ("mark", true) => vec![store(SKB_MARK)],
        ("data", false) => vec![load(SKB_DATA, BPF_DW)],
        ("data_end", false) => vec![load(SKB_DATA_END, BPF_DW)],
        ("sk", false) => vec![load(SKB_SK, BPF_DW)],
        ("vlan_present", false) => vec![
            load(SKB_VLAN_ALL, BPF_W),
            jmp(BPF_JMP | BPF_JEQ, d, 1, 0),
            Insn::new(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, 1),
        ],
        ("vlan_tci", false) => vec![load(SKB_VLAN_TCI, BPF_H)],
        ("vlan_proto", false) => vec![load(SKB_VLAN_ALL, BPF_H)],
        ("napi_id", false) => vec![
            load(SKB_NAPI_ID, BPF_W),
            jmp(BPF_JMP | BPF_JGE, d, 1, MIN_NAPI_ID),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, 0),
        ],
        ("tstamp", false) => tstamp_read(d, s),
        ("tstamp", true) => tstamp_write(Insn::new(
            insn.class() | BPF_DW | BPF_MEM,
            d,
            s,
            SKB_TSTAMP,
            insn.imm,
        )),
        // The socket's fields through `skb->sk` (cgroup_skb only: its skb always has one).
        ("family", false) => sk_load(SKC_FAMILY, BPF_H),
        ("remote_ip4", false) => sk_load(SKC_DADDR, BPF_W),
        ("local_ip4", false) => sk_load(SKC_RCV_SADDR, BPF_W),
        ("remote_port", false) => {
            let mut v = sk_load(SKC_DPORT, BPF_H);
            v.push(Insn::new(BPF_ALU | BPF_LSH | BPF_K, d, 0, 0, 16));
            v
        }
        ("local_port", false) => sk_load(SKC_NUM, BPF_H),
        (f, false) if f.starts_with("remote_ip6[") => {
            sk_load(SKC_V6_DADDR + insn.off - UAPI_REMOTE_IP6, BPF_W)
        }
        (f, false) if f.starts_with("local_ip6[") => {
            sk_load(SKC_V6_RCV_SADDR + insn.off - UAPI_LOCAL_IP6, BPF_W)
        }
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

use kbpf_uapi::bpf::BPF_FUNC_SKB_PULL_DATA;

/// `tc_cls_act_prologue` (`bpf_unclone_prologue`) of a program that writes packet data
/// directly: a cloned skb is made writable with `bpf_skb_pull_data(skb, 0)` (the program
/// returns `TC_ACT_SHOT` when that fails) before the program's first instruction `first`,
/// which ends the sequence.
pub fn unclone_prologue(first: Insn) -> Vec<Insn> {
    vec![
        Insn::new(BPF_LDX | BPF_MEM | BPF_B, 6, 1, SKB_CLONED_OFFSET, 0),
        Insn::new(BPF_ALU | BPF_AND | BPF_K, 6, 0, 0, SKB_CLONED_MASK),
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 7, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
        Insn::new(BPF_ALU64 | BPF_XOR | BPF_X, 2, 2, 0, 0),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_SKB_PULL_DATA),
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0),
        Insn::new(BPF_ALU | BPF_MOV | BPF_K, 0, 0, 0, TC_ACT_SHOT),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
        first,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ja(off: i16) -> Insn {
        jmp(BPF_JMP | BPF_JA, 0, off, 0)
    }

    /// The sequences Linux 6.18's xlated dump of a cgroup_skb program shows.
    #[test]
    fn tstamp_and_vlan_as_the_kernel_translates() {
        let ax_byte = Insn::new(BPF_LDX | BPF_B | BPF_MEM, BPF_REG_AX, 1, 129, 0);
        let ingress = jmp(BPF_JMP32 | BPF_JSET, BPF_REG_AX, 1, 4);
        let read = Insn::new(BPF_LDX | BPF_DW | BPF_MEM, 2, 1, 152, 0);
        assert_eq!(
            convert(&read, "tstamp", false, 0).unwrap(),
            vec![
                ax_byte,
                ingress,
                ja(4),
                jmp(BPF_JMP32 | BPF_JSET, BPF_REG_AX, 1, 3),
                ja(2),
                Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0),
                ja(1),
                Insn::new(BPF_LDX | BPF_DW | BPF_MEM, 2, 1, 32, 0),
            ]
        );
        let write = Insn::new(BPF_STX | BPF_DW | BPF_MEM, 1, 2, 152, 0);
        assert_eq!(
            convert(&write, "tstamp", true, 0).unwrap(),
            vec![
                ax_byte,
                ingress,
                ja(2),
                Insn::new(BPF_ALU | BPF_AND | BPF_K, BPF_REG_AX, 0, 0, -4),
                Insn::new(BPF_STX | BPF_B | BPF_MEM, 1, BPF_REG_AX, 129, 0),
                Insn::new(BPF_STX | BPF_DW | BPF_MEM, 1, 2, 32, 0),
            ]
        );
        let vlan = Insn::new(BPF_LDX | BPF_W | BPF_MEM, 2, 1, 20, 0);
        assert_eq!(
            convert(&vlan, "vlan_present", false, 0).unwrap(),
            vec![
                Insn::new(BPF_LDX | BPF_W | BPF_MEM, 2, 1, 152, 0),
                jmp(BPF_JMP | BPF_JEQ, 2, 1, 0),
                Insn::new(BPF_ALU | BPF_MOV | BPF_K, 2, 0, 0, 1),
            ]
        );
    }
}

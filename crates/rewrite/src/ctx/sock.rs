//! `bpf_sock_convert_ctx_access` and `bpf_tcp_sock_convert_ctx_access`: loads through a
//! socket pointer (`struct bpf_sock` / `struct bpf_tcp_sock` in uapi) become loads from the
//! kernel's `struct sock` / `struct tcp_sock`, at the offsets of Linux 6.18 x86-64 (read from
//! the kernel's own translated programs). kbpf's only socket is the one a test run hangs on
//! its skb (`kbpf_run::ctx::SkBuff::attach_test_sock`), laid out at these offsets.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::RewriteError;

/// `offsetof(struct sock_common, skc_daddr)`.
pub const SKC_DADDR: i16 = 0;
/// `offsetof(struct sock_common, skc_rcv_saddr)`.
pub const SKC_RCV_SADDR: i16 = 4;
/// `offsetof(struct sock_common, skc_dport)`.
pub const SKC_DPORT: i16 = 12;
/// `offsetof(struct sock_common, skc_num)`.
pub const SKC_NUM: i16 = 14;
/// `offsetof(struct sock_common, skc_family)`.
pub const SKC_FAMILY: i16 = 16;
/// `offsetof(struct sock_common, skc_state)`.
pub const SKC_STATE: i16 = 18;
/// `offsetof(struct sock_common, skc_bound_dev_if)`.
pub const SKC_BOUND_DEV_IF: i16 = 20;
/// `offsetof(struct sock_common, skc_v6_daddr)`.
pub const SKC_V6_DADDR: i16 = 56;
/// `offsetof(struct sock_common, skc_v6_rcv_saddr)`.
pub const SKC_V6_RCV_SADDR: i16 = 72;
/// `offsetof(struct sock, sk_rx_queue_mapping)`.
pub const SK_RX_QUEUE_MAPPING: i16 = 122;
/// `offsetof(struct sock, sk_priority)`.
pub const SK_PRIORITY: i16 = 520;
/// `offsetof(struct sock, sk_mark)`.
pub const SK_MARK: i16 = 524;
/// `offsetof(struct sock, sk_protocol)`.
pub const SK_PROTOCOL: i16 = 532;
/// `offsetof(struct sock, sk_type)`.
pub const SK_TYPE: i16 = 534;
/// The bytes of `struct sock` up to and with `sk_type`.
pub const SOCK_SIZE: usize = 536;
/// `NO_QUEUE_MAPPING`: `sk_rx_queue_mapping` of a socket that has none (reads as -1).
pub const NO_QUEUE_MAPPING: i32 = 0xffff;
/// `offsetof(struct tcp_sock, snd_cwnd)`.
const TCP_SND_CWND: i16 = 1444;
/// `offsetof(struct tcp_sock, bytes_acked)`.
const TCP_BYTES_ACKED: i16 = 1824;

/// `bpf_sock_convert_ctx_access` for `field` of `struct bpf_sock` (`off` its uapi offset;
/// `insn` already widened to the field for a narrow load). Returns the sequence and the size
/// of the kernel field it loads (`target_size`).
pub fn convert(insn: &Insn, field: &str, at: usize) -> Result<(Vec<Insn>, u32), RewriteError> {
    let (d, s) = (insn.dst(), insn.src());
    let load = |off: i16, sz: u8| Insn::new(BPF_LDX | sz | BPF_MEM, d, s, off, 0);
    Ok(match field {
        "bound_dev_if" => (vec![load(SKC_BOUND_DEV_IF, BPF_W)], 4),
        "family" => (vec![load(SKC_FAMILY, BPF_H)], 2),
        "type" => (vec![load(SK_TYPE, BPF_H)], 2),
        "protocol" => (vec![load(SK_PROTOCOL, BPF_H)], 2),
        "mark" => (vec![load(SK_MARK, BPF_W)], 4),
        "priority" => (vec![load(SK_PRIORITY, BPF_W)], 4),
        "src_ip4" => (vec![load(SKC_RCV_SADDR, BPF_W)], 4),
        "dst_ip4" => (vec![load(SKC_DADDR, BPF_W)], 4),
        f if f.starts_with("src_ip6[") => (vec![load(SKC_V6_RCV_SADDR + insn.off - 28, BPF_W)], 4),
        f if f.starts_with("dst_ip6[") => (vec![load(SKC_V6_DADDR + insn.off - 56, BPF_W)], 4),
        "src_port" => (vec![load(SKC_NUM, BPF_H)], 2),
        "dst_port" => (vec![load(SKC_DPORT, BPF_H)], 2),
        "state" => (vec![load(SKC_STATE, BPF_B)], 1),
        "rx_queue_mapping" => (
            vec![
                load(SK_RX_QUEUE_MAPPING, BPF_H),
                Insn::new(BPF_JMP | BPF_JNE | BPF_K, d, 0, 1, NO_QUEUE_MAPPING),
                Insn::new(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, -1),
                Insn::new(BPF_ALU64 | BPF_LSH | BPF_K, d, 0, 0, 32),
                Insn::new(BPF_ALU64 | BPF_ARSH | BPF_K, d, 0, 0, 32),
            ],
            4,
        ),
        other => {
            return Err(RewriteError::Unsupported {
                insn: at,
                what: format!("bpf_sock field {other}"),
            });
        }
    })
}

/// `bpf_tcp_sock_convert_ctx_access` for the fields kbpf knows the offset of.
pub fn convert_tcp(insn: &Insn, at: usize) -> Result<Vec<Insn>, RewriteError> {
    let (d, s) = (insn.dst(), insn.src());
    let load = |off: i16, sz: u8| Insn::new(BPF_LDX | sz | BPF_MEM, d, s, off, 0);
    Ok(match insn.off {
        // struct bpf_tcp_sock: snd_cwnd at 0, bytes_acked at 88.
        0 => vec![load(TCP_SND_CWND, BPF_W)],
        88 => vec![load(TCP_BYTES_ACKED, BPF_DW)],
        off => {
            return Err(RewriteError::Unsupported {
                insn: at,
                what: format!("bpf_tcp_sock field at offset {off}"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | size | BPF_MEM, dst, src, off, 0)
    }

    /// The sequences Linux 6.18's `bpf_prog_dump xlated` shows for the same loads.
    #[test]
    fn converts_as_the_kernel_translates() {
        let conv = |size: u8, off: i16| crate::ctx::convert_sock(&ldx(size, 1, 6, off), 0).unwrap();
        // family (4 bytes) → skc_family (u16).
        assert_eq!(conv(BPF_W, 4), vec![ldx(BPF_H, 1, 6, SKC_FAMILY)]);
        // dst_port as a word (backward compatibility) and its second byte.
        assert_eq!(conv(BPF_W, 48), vec![ldx(BPF_H, 1, 6, SKC_DPORT)]);
        assert_eq!(
            conv(BPF_B, 49),
            vec![
                ldx(BPF_H, 1, 6, SKC_DPORT),
                Insn::new(BPF_ALU | BPF_RSH | BPF_K, 1, 0, 0, 8),
                Insn::new(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, 255),
            ]
        );
        // A narrow load of state is the whole u8: no shift, no mask.
        assert_eq!(conv(BPF_B, 72), vec![ldx(BPF_B, 1, 6, SKC_STATE)]);
        // A narrow load of type masks the u16.
        assert_eq!(
            conv(BPF_B, 8),
            vec![
                ldx(BPF_H, 1, 6, SK_TYPE),
                Insn::new(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, 255),
            ]
        );
        // Padding after dst_port is not a field.
        assert!(crate::ctx::convert_sock(&ldx(BPF_H, 1, 6, 50), 0).is_err());
    }
}

//! The whole `struct __sk_buff` as `bpf_skb_is_valid_access` (net/core/filter.c) checks it,
//! for the `__sk_buff` program types beyond socket filters and TC (whose older, narrower
//! model lives in [`crate::ctx`] next to the rewrite that converts it):
//!
//! - `BPF_PROG_TYPE_CGROUP_SKB` (`cg_skb_is_valid_access`): no `tc_classid`, `data_meta`
//!   or `wire_len`; read-only packet; writes to `mark`, `priority`, `cb[]` and `tstamp`;
//! - `BPF_PROG_TYPE_LWT_IN`/`_OUT`/`_XMIT` (`lwt_is_valid_access`): no `tc_classid`, socket
//!   fields, `data_meta`, `tstamp`, `wire_len` or `hwtstamp`; writes to `mark`, `priority`
//!   and `cb[]`; only LWT_XMIT may write the packet;
//! - `BPF_PROG_TYPE_SK_SKB` (`sk_skb_is_valid_access`): no `tc_classid`, `data_meta`,
//!   `tstamp`, `wire_len`, `hwtstamp` or `mark`; writes to `tc_index` and `priority`;
//! - `BPF_PROG_TYPE_SK_MSG` (`sk_msg_is_valid_access`): `struct sk_msg_md`, read-only, the
//!   packet pointers as 8-byte loads, the socket fields and `size` as 4-byte loads;
//! - `BPF_PROG_TYPE_SK_REUSEPORT` (`sk_reuseport_is_valid_access`): `struct sk_reuseport_md`,
//!   read-only, the packet pointers and the sockets (`sk` never NULL, `migrating_sk` maybe)
//!   as 8-byte loads;
//! - `BPF_PROG_TYPE_SOCK_OPS` (`sock_ops_is_valid_access`): `struct bpf_sock_ops`, writes to
//!   `reply` and `sk_txhash` only, 8-byte counters, socket and packet pointers.
//!
//! The `sk` field loads as a maybe-NULL `PTR_TO_SOCK_COMMON`.

use super::{CtxField, CtxLoad, ProgType};
use crate::types::RegType;

const fn f(name: &'static str, off: u32, size: u32) -> CtxField {
    CtxField { name, off, size }
}

/// `sizeof(struct __sk_buff)`.
const SIZEOF_SK_BUFF: u32 = 192;

/// Every field of `struct __sk_buff` (Linux 6.12), in offset order.
pub(crate) const FIELDS: &[CtxField] = &[
    f("len", 0, 4),
    f("pkt_type", 4, 4),
    f("mark", 8, 4),
    f("queue_mapping", 12, 4),
    f("protocol", 16, 4),
    f("vlan_present", 20, 4),
    f("vlan_tci", 24, 4),
    f("vlan_proto", 28, 4),
    f("priority", 32, 4),
    f("ingress_ifindex", 36, 4),
    f("ifindex", 40, 4),
    f("tc_index", 44, 4),
    f("cb[0]", 48, 4),
    f("cb[1]", 52, 4),
    f("cb[2]", 56, 4),
    f("cb[3]", 60, 4),
    f("cb[4]", 64, 4),
    f("hash", 68, 4),
    f("tc_classid", 72, 4),
    f("data", 76, 4),
    f("data_end", 80, 4),
    f("napi_id", 84, 4),
    f("family", 88, 4),
    f("remote_ip4", 92, 4),
    f("local_ip4", 96, 4),
    f("remote_ip6[0]", 100, 4),
    f("remote_ip6[1]", 104, 4),
    f("remote_ip6[2]", 108, 4),
    f("remote_ip6[3]", 112, 4),
    f("local_ip6[0]", 116, 4),
    f("local_ip6[1]", 120, 4),
    f("local_ip6[2]", 124, 4),
    f("local_ip6[3]", 128, 4),
    f("remote_port", 132, 4),
    f("local_port", 136, 4),
    f("data_meta", 140, 4),
    f("flow_keys", 144, 8),
    f("tstamp", 152, 8),
    f("wire_len", 160, 4),
    f("gso_segs", 164, 4),
    f("sk", 168, 8),
    f("gso_size", 176, 4),
    f("tstamp_type", 180, 1),
    f("(padding)", 181, 3),
    f("hwtstamp", 184, 8),
];

/// `bpf_skb_is_valid_access`: the checks common to every `__sk_buff` program type.
fn skb_is_valid_access(field: CtxField, off: u32, size: u32, write: bool) -> bool {
    if off >= SIZEOF_SK_BUFF || !off.is_multiple_of(size) {
        return false;
    }
    match field.name {
        n if n.starts_with("cb[") => off + size <= 68,
        "data" | "data_meta" | "data_end" => size == 4,
        n if n.starts_with("remote_ip") || n.starts_with("local_ip") => size == 4,
        "flow_keys" | "tstamp_type" | "(padding)" => false,
        "hwtstamp" => !write && size == 8,
        "tstamp" => size == 8,
        // PTR_TO_SOCK_COMMON_OR_NULL.
        "sk" => !write && size == 8,
        _ => {
            if write {
                size == 4
            } else {
                // bpf_ctx_narrow_access_ok with the default size 4.
                size <= 4 && size.is_power_of_two()
            }
        }
    }
}

/// The context access check of the `__sk_buff` program types of this module. `None` is
/// the kernel's `invalid bpf_context access`.
pub(crate) fn skb_access(prog: ProgType, off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    let field = *FIELDS
        .iter()
        .find(|fl| fl.off <= off && off < fl.off + fl.size)?;
    let name = field.name;
    let (excluded, writable) = match prog {
        ProgType::CgroupSkb => (
            matches!(name, "tc_classid" | "data_meta" | "wire_len"),
            name.starts_with("cb[") || matches!(name, "mark" | "priority" | "tstamp"),
        ),
        ProgType::LwtIn | ProgType::LwtOut | ProgType::LwtXmit => (
            matches!(
                name,
                "tc_classid" | "data_meta" | "tstamp" | "wire_len" | "hwtstamp"
            ) || (88..140).contains(&field.off),
            name.starts_with("cb[") || matches!(name, "mark" | "priority"),
        ),
        // The fields socket filters and TC reach past the older model in `crate::ctx`.
        ProgType::SocketFilter => (
            matches!(
                name,
                "tc_classid"
                    | "data"
                    | "data_meta"
                    | "data_end"
                    | "tstamp"
                    | "wire_len"
                    | "hwtstamp"
            ) || (88..140).contains(&field.off),
            name.starts_with("cb["),
        ),
        ProgType::SchedCls => (
            (88..140).contains(&field.off),
            name.starts_with("cb[")
                || matches!(
                    name,
                    "mark" | "tc_index" | "priority" | "tc_classid" | "tstamp" | "queue_mapping"
                ),
        ),
        ProgType::SkSkb => (
            matches!(
                name,
                "tc_classid" | "data_meta" | "tstamp" | "wire_len" | "hwtstamp" | "mark"
            ),
            matches!(name, "tc_index" | "priority"),
        ),
        _ => return None,
    };
    if excluded || (write && !writable) || !skb_is_valid_access(field, off, size, write) {
        return None;
    }
    let reg_type = match name {
        "data" => RegType::PtrToPacket,
        "data_end" => RegType::PtrToPacketEnd,
        "data_meta" => RegType::PtrToPacketMeta,
        "sk" => RegType::PtrToSockCommon,
        _ => RegType::Scalar,
    };
    Some(CtxLoad { field, reg_type })
}

/// `struct sk_msg_md` (80 bytes).
const SK_MSG_FIELDS: &[CtxField] = &[
    f("data", 0, 8),
    f("data_end", 8, 8),
    f("family", 16, 4),
    f("remote_ip4", 20, 4),
    f("local_ip4", 24, 4),
    f("remote_ip6[0]", 28, 4),
    f("remote_ip6[1]", 32, 4),
    f("remote_ip6[2]", 36, 4),
    f("remote_ip6[3]", 40, 4),
    f("local_ip6[0]", 44, 4),
    f("local_ip6[1]", 48, 4),
    f("local_ip6[2]", 52, 4),
    f("local_ip6[3]", 56, 4),
    f("remote_port", 60, 4),
    f("local_port", 64, 4),
    f("size", 68, 4),
    f("sk", 72, 8),
];

/// `sk_msg_is_valid_access`.
pub(crate) fn sk_msg_access(off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    if write || size == 0 || !off.is_multiple_of(size) {
        return None;
    }
    let field = *SK_MSG_FIELDS
        .iter()
        .find(|fl| fl.off <= off && off < fl.off + fl.size)?;
    let reg_type = match field.name {
        "data" => RegType::PtrToPacket,
        "data_end" => RegType::PtrToPacketEnd,
        // PTR_TO_SOCKET: not modelled by kbpf.
        "sk" => return None,
        _ => RegType::Scalar,
    };
    (size == field.size).then_some(CtxLoad { field, reg_type })
}

/// `struct sk_reuseport_md` (56 bytes).
const SK_REUSEPORT_FIELDS: &[CtxField] = &[
    f("data", 0, 8),
    f("data_end", 8, 8),
    f("len", 16, 4),
    f("eth_protocol", 20, 4),
    f("ip_protocol", 24, 4),
    f("bind_inany", 28, 4),
    f("hash", 32, 4),
    f("(padding)", 36, 4),
    f("sk", 40, 8),
    f("migrating_sk", 48, 8),
];

/// `sk_reuseport_is_valid_access`. A maybe-NULL socket is `PtrToSockCommon` (the verifier
/// gives `migrating_sk` its NULL-ness).
pub(crate) fn sk_reuseport_access(off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    if write || size == 0 || off >= 56 || !off.is_multiple_of(size) {
        return None;
    }
    let field = *SK_REUSEPORT_FIELDS
        .iter()
        .find(|fl| fl.off <= off && off < fl.off + fl.size)?;
    let narrow = size <= 4 && size.is_power_of_two();
    let (ok, reg_type) = match field.name {
        "data" => (off == 0 && size == 8, RegType::PtrToPacket),
        "data_end" => (off == 8 && size == 8, RegType::PtrToPacketEnd),
        "hash" => (off == 32 && size == 4, RegType::Scalar),
        "sk" => (off == 40 && size == 8, RegType::PtrToSocket),
        "migrating_sk" => (off == 48 && size == 8, RegType::PtrToSockCommon),
        // At least sizeof(skb->protocol).
        "eth_protocol" => (narrow && size >= 2, RegType::Scalar),
        "len" | "ip_protocol" | "bind_inany" => (narrow, RegType::Scalar),
        _ => (false, RegType::Scalar),
    };
    ok.then_some(CtxLoad { field, reg_type })
}

/// `sock_ops_is_valid_access` on `struct bpf_sock_ops` (224 bytes). Its `sk` loads as
/// `PtrToSocket`; the verifier makes it maybe-NULL for this program type.
pub(crate) fn sock_ops_access(off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    if size == 0 || off >= 224 || !off.is_multiple_of(size) {
        return None;
    }
    let (name, foff, fsize, reg_type, ok) = if write {
        match off {
            4 => ("reply", 4, 4, RegType::Scalar, size == 4),
            164 => ("sk_txhash", 164, 4, RegType::Scalar, size == 4),
            _ => return None,
        }
    } else {
        match off {
            168..=183 => ("bytes", off & !7, 8, RegType::Scalar, size == 8),
            184..=191 => ("sk", 184, 8, RegType::PtrToSocket, size == 8),
            192..=199 => ("skb_data", 192, 8, RegType::PtrToPacket, size == 8),
            200..=207 => ("skb_data_end", 200, 8, RegType::PtrToPacketEnd, size == 8),
            212 => (
                "skb_tcp_flags",
                212,
                4,
                RegType::Scalar,
                size <= 4 && size.is_power_of_two(),
            ),
            216..=223 => ("skb_hwtstamp", 216, 8, RegType::Scalar, size == 8),
            _ => ("sock_ops", off & !3, 4, RegType::Scalar, size == 4),
        }
    };
    ok.then_some(CtxLoad {
        field: f(name, foff, fsize),
        reg_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_skb() {
        let a = |off, size, w| skb_access(ProgType::CgroupSkb, off, size, w).map(|l| l.reg_type);
        assert_eq!(a(76, 4, false), Some(RegType::PtrToPacket));
        assert_eq!(a(80, 4, false), Some(RegType::PtrToPacketEnd));
        // tc_classid, data_meta, flow_keys, napi_id writes, sk are refused.
        assert_eq!(a(72, 4, false), None);
        assert_eq!(a(140, 4, false), None);
        assert_eq!(a(144, 4, false), None);
        assert_eq!(a(84, 4, true), None);
        assert_eq!(a(168, 8, false), Some(RegType::PtrToSockCommon));
        assert_eq!(a(168, 4, false), None);
        // Socket fields, narrow reads, tstamp (8 bytes, read and write), cb writes.
        assert_eq!(a(92, 4, false), Some(RegType::Scalar));
        assert_eq!(a(92, 2, false), None);
        assert_eq!(a(2, 2, false), Some(RegType::Scalar));
        assert_eq!(a(152, 8, true), Some(RegType::Scalar));
        assert_eq!(a(152, 4, false), None);
        assert_eq!(a(64, 4, true), Some(RegType::Scalar));
        assert_eq!(a(64, 8, true), None);
        assert_eq!(a(188, 4, false), None);
    }

    #[test]
    fn sk_skb_and_sk_msg() {
        let a = |off, size, w| skb_access(ProgType::SkSkb, off, size, w).map(|l| l.reg_type);
        assert_eq!(a(8, 4, false), None);
        assert_eq!(a(44, 4, true), Some(RegType::Scalar));
        assert_eq!(a(32, 4, true), Some(RegType::Scalar));
        assert_eq!(a(48, 4, true), None);
        assert_eq!(a(88, 4, false), Some(RegType::Scalar));
        let m = |off, size, w| sk_msg_access(off, size, w).map(|l| l.reg_type);
        assert_eq!(m(0, 8, false), Some(RegType::PtrToPacket));
        assert_eq!(m(8, 8, false), Some(RegType::PtrToPacketEnd));
        assert_eq!(m(0, 4, false), None);
        assert_eq!(m(68, 4, false), Some(RegType::Scalar));
        assert_eq!(m(68, 2, false), None);
        assert_eq!(m(16, 4, true), None);
        assert_eq!(m(72, 8, false), None);
        assert_eq!(m(80, 4, false), None);
    }

    #[test]
    fn sk_reuseport() {
        let a = |off, size| sk_reuseport_access(off, size, false).map(|l| l.reg_type);
        assert_eq!(a(0, 8), Some(RegType::PtrToPacket));
        assert_eq!(a(40, 8), Some(RegType::PtrToSocket));
        assert_eq!(a(48, 8), Some(RegType::PtrToSockCommon));
        assert_eq!(a(20, 1), None);
        assert_eq!(a(20, 2), Some(RegType::Scalar));
        assert_eq!(a(34, 2), None);
        assert_eq!(a(16, 1), Some(RegType::Scalar));
        assert!(sk_reuseport_access(16, 4, true).is_none());
    }

    #[test]
    fn sock_ops() {
        let a = |off, size, w| sock_ops_access(off, size, w).map(|l| l.reg_type);
        assert_eq!(a(4, 4, true), Some(RegType::Scalar));
        assert_eq!(a(8, 4, true), None);
        assert_eq!(a(184, 8, false), Some(RegType::PtrToSocket));
        assert_eq!(a(184, 4, false), None);
        assert_eq!(a(168, 8, false), Some(RegType::Scalar));
        assert_eq!(a(212, 1, false), Some(RegType::Scalar));
        assert_eq!(a(213, 1, false), None);
        assert_eq!(a(20, 2, false), None);
    }

    #[test]
    fn lwt() {
        let a = |off, size, w| skb_access(ProgType::LwtIn, off, size, w).map(|l| l.reg_type);
        assert_eq!(a(76, 4, false), Some(RegType::PtrToPacket));
        assert_eq!(a(72, 2, false), None);
        assert_eq!(a(88, 4, false), None);
        assert_eq!(a(136, 4, false), None);
        assert_eq!(a(152, 8, false), None);
        assert_eq!(a(8, 4, true), Some(RegType::Scalar));
        assert_eq!(a(0, 4, true), None);
    }
}

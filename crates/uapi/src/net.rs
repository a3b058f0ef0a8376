//! Packet program verdicts and the networking constants programs and their runners share.

/// `XDP_ABORTED`.
pub const XDP_ABORTED: u32 = 0;
/// `XDP_DROP`.
pub const XDP_DROP: u32 = 1;
/// `XDP_PASS`.
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`.
pub const XDP_TX: u32 = 3;
/// `XDP_REDIRECT`.
pub const XDP_REDIRECT: u32 = 4;

/// `TC_ACT_UNSPEC`: tcx reads it as "next".
pub const TC_ACT_UNSPEC: i32 = -1;
/// `TC_ACT_OK`.
pub const TC_ACT_OK: i32 = 0;
/// `TC_ACT_SHOT`.
pub const TC_ACT_SHOT: i32 = 2;
/// `TC_ACT_REDIRECT`.
pub const TC_ACT_REDIRECT: i32 = 7;
/// `TCX_NEXT`.
pub const TCX_NEXT: i32 = -1;
/// `TCX_PASS`.
pub const TCX_PASS: i32 = 0;
/// `TCX_DROP`.
pub const TCX_DROP: i32 = 2;
/// `TCX_REDIRECT`.
pub const TCX_REDIRECT: i32 = 7;

/// `BPF_F_INGRESS`: `bpf_redirect`'s flag for the device's ingress path.
pub const BPF_F_INGRESS: u64 = 1 << 0;

/// `ETH_HLEN`: an Ethernet header without VLAN tags.
pub const ETH_HLEN: usize = 14;
/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86dd;

//! The cgroup program types kbpf verifies, and the return-value ranges of every program type
//! (`check_return_code`).
//!
//! - `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`: `struct bpf_sock_addr` as `sock_addr_is_valid_access`
//!   (net/core/filter.c) allows it: which address fields exist depends on the expected
//!   attach type, the address and port fields may be written (4 bytes, or 8 bytes aligned
//!   inside the IPv6 arrays) and read narrowly, the others are 4-byte reads. The `sk` field
//!   (a `PTR_TO_SOCKET`) is not modelled: kbpf refuses its load.
//! - `BPF_PROG_TYPE_CGROUP_SOCK`: `struct bpf_sock` as `sock_filter_is_valid_access` allows
//!   it (`bpf_sock_is_valid_access` and the attach type's fields: `bound_dev_if`, `mark`,
//!   `priority` read-write at socket create/release only, the source address and port
//!   read-only after bind only, the rest read-only).
//! - Return values: [`return_range`] is the range `check_return_code` enforces on `R0` at
//!   the main program's exit, by program type and expected attach type.

use super::{CtxField, CtxLoad, ProgType};
use crate::types::RegType;

/// `enum bpf_attach_type` values used here.
pub mod attach {
    /// `BPF_CGROUP_GETSOCKOPT`.
    pub const CGROUP_GETSOCKOPT: u32 = 21;
    /// `BPF_CGROUP_SETSOCKOPT`.
    pub const CGROUP_SETSOCKOPT: u32 = 22;
    /// `BPF_CGROUP_INET_EGRESS`.
    pub const INET_EGRESS: u32 = 1;
    /// `BPF_CGROUP_INET_SOCK_CREATE`.
    pub const INET_SOCK_CREATE: u32 = 2;
    /// `BPF_CGROUP_INET4_POST_BIND`.
    pub const INET4_POST_BIND: u32 = 12;
    /// `BPF_CGROUP_INET6_POST_BIND`.
    pub const INET6_POST_BIND: u32 = 13;
    /// `BPF_CGROUP_INET_SOCK_RELEASE`.
    pub const INET_SOCK_RELEASE: u32 = 34;
    /// `BPF_CGROUP_INET4_BIND`.
    pub const INET4_BIND: u32 = 8;
    /// `BPF_CGROUP_INET6_BIND`.
    pub const INET6_BIND: u32 = 9;
    /// `BPF_CGROUP_INET4_CONNECT`.
    pub const INET4_CONNECT: u32 = 10;
    /// `BPF_CGROUP_INET6_CONNECT`.
    pub const INET6_CONNECT: u32 = 11;
    /// `BPF_CGROUP_UDP4_SENDMSG`.
    pub const UDP4_SENDMSG: u32 = 14;
    /// `BPF_CGROUP_UDP6_SENDMSG`.
    pub const UDP6_SENDMSG: u32 = 15;
    /// `BPF_CGROUP_UDP4_RECVMSG`.
    pub const UDP4_RECVMSG: u32 = 19;
    /// `BPF_CGROUP_UDP6_RECVMSG`.
    pub const UDP6_RECVMSG: u32 = 20;
    /// `BPF_CGROUP_INET4_GETPEERNAME`.
    pub const INET4_GETPEERNAME: u32 = 29;
    /// `BPF_CGROUP_INET6_GETPEERNAME`.
    pub const INET6_GETPEERNAME: u32 = 30;
    /// `BPF_CGROUP_INET4_GETSOCKNAME`.
    pub const INET4_GETSOCKNAME: u32 = 31;
    /// `BPF_CGROUP_INET6_GETSOCKNAME`.
    pub const INET6_GETSOCKNAME: u32 = 32;
    /// `BPF_CGROUP_UNIX_RECVMSG`.
    pub const UNIX_RECVMSG: u32 = 51;
    /// `BPF_CGROUP_UNIX_GETPEERNAME`.
    pub const UNIX_GETPEERNAME: u32 = 52;
    /// `BPF_CGROUP_UNIX_GETSOCKNAME`.
    pub const UNIX_GETSOCKNAME: u32 = 53;
}

const fn f(name: &'static str, off: u32, size: u32) -> CtxField {
    CtxField { name, off, size }
}

/// `struct bpf_sock_addr` (72 bytes; 60..64 is padding before the `sk` pointer).
const SOCK_ADDR_FIELDS: &[CtxField] = &[
    f("user_family", 0, 4),
    f("user_ip4", 4, 4),
    f("user_ip6[0]", 8, 4),
    f("user_ip6[1]", 12, 4),
    f("user_ip6[2]", 16, 4),
    f("user_ip6[3]", 20, 4),
    f("user_port", 24, 4),
    f("family", 28, 4),
    f("type", 32, 4),
    f("protocol", 36, 4),
    f("msg_src_ip4", 40, 4),
    f("msg_src_ip6[0]", 44, 4),
    f("msg_src_ip6[1]", 48, 4),
    f("msg_src_ip6[2]", 52, 4),
    f("msg_src_ip6[3]", 56, 4),
    f("sk", 64, 8),
];

/// `bpf_ctx_wide_access_ok`: an aligned 8-byte access inside `[start, end)`.
fn wide_ok(off: u32, size: u32, start: u32, end: u32) -> bool {
    size == 8 && off >= start && off + 8 <= end && off.is_multiple_of(8)
}

/// `sock_addr_is_valid_access` for expected attach type `attach`.
pub(crate) fn sock_addr_access(attach: u32, off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    use attach::*;
    if off >= 72 || size == 0 || !off.is_multiple_of(size) {
        return None;
    }
    let field = *SOCK_ADDR_FIELDS
        .iter()
        .find(|fl| fl.off <= off && off < fl.off + fl.size)?;
    // Fields that exist only for some attach types (the address family's).
    let family_ok = match field.off {
        4 => matches!(
            attach,
            INET4_BIND
                | INET4_CONNECT
                | INET4_GETPEERNAME
                | INET4_GETSOCKNAME
                | UDP4_SENDMSG
                | UDP4_RECVMSG
        ),
        8..=20 => matches!(
            attach,
            INET6_BIND
                | INET6_CONNECT
                | INET6_GETPEERNAME
                | INET6_GETSOCKNAME
                | UDP6_SENDMSG
                | UDP6_RECVMSG
        ),
        40 => attach == UDP4_SENDMSG,
        44..=56 => attach == UDP6_SENDMSG,
        _ => true,
    };
    if !family_ok {
        return None;
    }
    let load = |reg_type| Some(CtxLoad { field, reg_type });
    match field.off {
        // The address and port fields.
        4..=27 | 40..=59 => {
            if wide_ok(off, size, 8, 24) || wide_ok(off, size, 44, 60) {
                return load(RegType::Scalar);
            }
            let ok = if write {
                size == 4
            } else {
                size != 8 && size <= 4 && size.is_power_of_two()
            };
            if ok { load(RegType::Scalar) } else { None }
        }
        // `sk`: an 8-byte read giving a PTR_TO_SOCKET, which kbpf does not model.
        64 => None,
        // user_family, family, type, protocol: 4-byte reads.
        _ => {
            if write || size != 4 {
                None
            } else {
                load(RegType::Scalar)
            }
        }
    }
}

/// `struct bpf_sock` (80 bytes).
const SOCK_FIELDS: &[CtxField] = &[
    f("bound_dev_if", 0, 4),
    f("family", 4, 4),
    f("type", 8, 4),
    f("protocol", 12, 4),
    f("mark", 16, 4),
    f("priority", 20, 4),
    f("src_ip4", 24, 4),
    f("src_ip6[0]", 28, 4),
    f("src_ip6[1]", 32, 4),
    f("src_ip6[2]", 36, 4),
    f("src_ip6[3]", 40, 4),
    f("src_port", 44, 4),
    f("dst_port", 48, 2),
    f("(padding)", 50, 2),
    f("dst_ip4", 52, 4),
    f("dst_ip6[0]", 56, 4),
    f("dst_ip6[1]", 60, 4),
    f("dst_ip6[2]", 64, 4),
    f("dst_ip6[3]", 68, 4),
    f("state", 72, 4),
    f("rx_queue_mapping", 76, 4),
];

/// `bpf_sock_is_valid_access`: narrow reads of the addresses, exact offsets of the other
/// scalars, `dst_port` as 2 bytes (or 4 at its start), no padding, 4 bytes otherwise.
pub fn bpf_sock_valid(off: u32, size: u32) -> Option<CtxField> {
    if off >= 80 || size == 0 || !off.is_multiple_of(size) {
        return None;
    }
    let field = *SOCK_FIELDS
        .iter()
        .find(|fl| fl.off <= off && off < fl.off + fl.size)?;
    let narrow = |fsize: u32| size <= fsize && size.is_power_of_two();
    let size_ok = match field.name {
        n if n.starts_with("src_ip") || n.starts_with("dst_ip") => narrow(4),
        "state" | "family" | "type" | "protocol" | "src_port" | "rx_queue_mapping"
            if off == field.off =>
        {
            narrow(4)
        }
        "dst_port" => narrow(if size == 4 { 4 } else { 2 }),
        "(padding)" => false,
        _ => size == 4,
    };
    size_ok.then_some(field)
}

/// `bpf_tcp_sock_is_valid_access`: `struct bpf_tcp_sock` up to `icsk_retransmits`, 8-byte
/// loads of the two byte counters, 4-byte loads of the rest.
pub(crate) fn bpf_tcp_sock_valid(off: u32, size: u32) -> bool {
    if off >= 112 || size == 0 || !off.is_multiple_of(size) {
        return false;
    }
    match off {
        80 | 88 => size == 8,
        _ => size == 4,
    }
}

/// `sock_filter_is_valid_access` for expected attach type `attach`.
pub(crate) fn sock_access(attach: u32, off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    use attach::*;
    let field = bpf_sock_valid(off, size)?;
    // __sock_filter_check_attach_type.
    let allowed = match field.name {
        "bound_dev_if" | "mark" | "priority" => {
            matches!(attach, INET_SOCK_CREATE | INET_SOCK_RELEASE)
        }
        "src_ip4" => attach == INET4_POST_BIND && !write,
        n if n.starts_with("src_ip6") => attach == INET6_POST_BIND && !write,
        "src_port" => matches!(attach, INET4_POST_BIND | INET6_POST_BIND) && !write,
        _ => !write,
    };
    allowed.then_some(CtxLoad {
        field,
        reg_type: RegType::Scalar,
    })
}

/// `sizeof(struct bpf_sockopt)`: `sk`, `optval`, `optval_end` (8 bytes each), then
/// `level`, `optname`, `optlen`, `retval` (`s32`).
const SIZEOF_BPF_SOCKOPT: u32 = 40;

/// `cg_sockopt_is_valid_access`: the pointers read whole (`sk` a socket, `optval` ..
/// `optval_end` the option's buffer as packet data), the numbers as whole `u32`s; `retval`
/// only for getsockopt, `level` and `optname` written only by setsockopt, `optlen` by both.
pub fn sockopt_access(attach: u32, off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    if size == 0 || off >= SIZEOF_BPF_SOCKOPT || !off.is_multiple_of(size) {
        return None;
    }
    let (name, foff, fsize, reg_type) = match off {
        0..8 => ("sk", 0, 8, RegType::PtrToSocket),
        8..16 => ("optval", 8, 8, RegType::PtrToPacket),
        16..24 => ("optval_end", 16, 8, RegType::PtrToPacketEnd),
        24..28 => ("level", 24, 4, RegType::Scalar),
        28..32 => ("optname", 28, 4, RegType::Scalar),
        32..36 => ("optlen", 32, 4, RegType::Scalar),
        _ => ("retval", 36, 4, RegType::Scalar),
    };
    let allowed = size == fsize
        && if write {
            match name {
                "retval" => attach == attach::CGROUP_GETSOCKOPT,
                "level" | "optname" => attach == attach::CGROUP_SETSOCKOPT,
                "optlen" => true,
                _ => false,
            }
        } else {
            name != "retval" || attach == attach::CGROUP_GETSOCKOPT
        };
    allowed.then_some(CtxLoad {
        field: CtxField {
            name,
            off: foff,
            size: fsize,
        },
        reg_type,
    })
}

/// The range `check_return_code` enforces on `R0` at the main program's exit for `prog`
/// with expected attach type `attach`; `None` when any value may be returned.
pub fn return_range(prog: ProgType, attach: u32) -> Option<(i64, i64)> {
    use attach::*;
    match prog {
        ProgType::CgroupSockAddr => Some(match attach {
            UDP4_RECVMSG | UDP6_RECVMSG | UNIX_RECVMSG | INET4_GETPEERNAME | INET6_GETPEERNAME
            | UNIX_GETPEERNAME | INET4_GETSOCKNAME | INET6_GETSOCKNAME | UNIX_GETSOCKNAME => (1, 1),
            INET4_BIND | INET6_BIND => (0, 3),
            _ => (0, 1),
        }),
        ProgType::CgroupSkb if attach == INET_EGRESS => Some((0, 3)),
        // NF_DROP .. NF_ACCEPT.
        ProgType::Netfilter => Some((0, 1)),
        ProgType::CgroupSkb
        | ProgType::CgroupSock
        | ProgType::SockOps
        | ProgType::CgroupSysctl
        | ProgType::CgroupSockopt
        | ProgType::SkLookup => Some((0, 1)),
        ProgType::Syscall => None,
        ProgType::LwtIn
        | ProgType::LwtOut
        | ProgType::LwtXmit
        | ProgType::SkSkb
        | ProgType::SkMsg
        | ProgType::SkReuseport
        | ProgType::FlowDissector => None,
        ProgType::SocketFilter
        | ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::Xdp
        | ProgType::RawTracepoint
        | ProgType::RawTracepointWritable
        | ProgType::Kprobe
        | ProgType::PerfEvent
        | ProgType::Tracepoint => None,
    }
}

/// `verbose_invalid_scalar`'s text for a return value with signed bounds `smin..=smax`
/// outside `range`.
pub fn invalid_return_msg(smin: i64, smax: i64, range: (i64, i64)) -> String {
    invalid_scalar_msg("At program exit", smin, smax, range)
}

/// `verbose_invalid_scalar` for r0 at `ctx` ("At program exit", "At callback return").
pub fn invalid_scalar_msg(ctx: &str, smin: i64, smax: i64, range: (i64, i64)) -> String {
    let mut s = format!("{ctx} the register R0 has");
    if smin > i64::MIN {
        s.push_str(&format!(" smin={smin}"));
    }
    if smax < i64::MAX {
        s.push_str(&format!(" smax={smax}"));
    }
    if smin == i64::MIN && smax == i64::MAX {
        s.push_str(" unknown scalar value");
    }
    s.push_str(&format!(" should have been in [{}, {}]", range.0, range.1));
    s
}

#[cfg(test)]
mod tests {
    use super::attach::*;
    use super::*;

    #[test]
    fn sock_addr_fields_follow_the_attach_type() {
        // user_ip4 only for IPv4 attach types; user_ip6 only for IPv6 ones.
        assert!(sock_addr_access(INET4_CONNECT, 4, 4, false).is_some());
        assert!(sock_addr_access(INET6_CONNECT, 4, 4, false).is_none());
        assert!(sock_addr_access(INET6_CONNECT, 8, 4, true).is_some());
        assert!(sock_addr_access(INET4_CONNECT, 8, 4, false).is_none());
        // msg_src_ip4 only for sendmsg4.
        assert!(sock_addr_access(UDP4_SENDMSG, 40, 4, true).is_some());
        assert!(sock_addr_access(INET4_CONNECT, 40, 4, false).is_none());
    }

    #[test]
    fn sock_addr_sizes() {
        // Narrow reads of the port, but only whole-word writes.
        assert!(sock_addr_access(INET4_BIND, 24, 2, false).is_some());
        assert!(sock_addr_access(INET4_BIND, 24, 2, true).is_none());
        // Aligned 8-byte accesses inside user_ip6, not across its end.
        assert!(sock_addr_access(INET6_BIND, 16, 8, true).is_some());
        assert!(sock_addr_access(INET6_BIND, 24, 8, false).is_none());
        // The read-only fields: 4-byte reads only.
        assert!(sock_addr_access(INET4_BIND, 0, 4, false).is_some());
        assert!(sock_addr_access(INET4_BIND, 0, 4, true).is_none());
        assert!(sock_addr_access(INET4_BIND, 28, 2, false).is_none());
        // sk (not modelled), its upper half, the padding and past the end.
        assert!(sock_addr_access(INET4_BIND, 64, 8, false).is_none());
        assert!(sock_addr_access(INET4_BIND, 68, 4, false).is_none());
        assert!(sock_addr_access(INET4_BIND, 60, 4, false).is_none());
        assert!(sock_addr_access(INET4_BIND, 72, 4, false).is_none());
    }

    #[test]
    fn sock_fields_follow_the_attach_type() {
        // bound_dev_if/mark/priority: read-write at create, nothing at post_bind.
        assert!(sock_access(INET_SOCK_CREATE, 16, 4, true).is_some());
        assert!(sock_access(INET4_POST_BIND, 16, 4, false).is_none());
        // src_ip4 read-only at post_bind4 only; family read-only everywhere.
        assert!(sock_access(INET4_POST_BIND, 24, 4, false).is_some());
        assert!(sock_access(INET4_POST_BIND, 24, 4, true).is_none());
        assert!(sock_access(INET_SOCK_CREATE, 24, 4, false).is_none());
        assert!(sock_access(INET_SOCK_CREATE, 4, 4, false).is_some());
        assert!(sock_access(INET_SOCK_CREATE, 4, 4, true).is_none());
        // dst_port: 2 bytes, or 4 at its start; the padding after it never.
        assert!(sock_access(INET_SOCK_CREATE, 48, 2, false).is_some());
        assert!(sock_access(INET_SOCK_CREATE, 48, 4, false).is_some());
        assert!(sock_access(INET_SOCK_CREATE, 50, 2, false).is_none());
        // Narrow reads of a scalar field only at its start... not at all for `state`+2.
        assert!(sock_access(INET_SOCK_CREATE, 74, 2, false).is_none());
    }

    #[test]
    fn return_ranges() {
        let r = |a| return_range(ProgType::CgroupSockAddr, a);
        assert_eq!(r(UDP4_RECVMSG), Some((1, 1)));
        assert_eq!(r(INET6_BIND), Some((0, 3)));
        assert_eq!(r(INET4_CONNECT), Some((0, 1)));
        assert_eq!(return_range(ProgType::Xdp, 0), None);
        assert_eq!(return_range(ProgType::CgroupSkb, INET_EGRESS), Some((0, 3)));
        assert_eq!(
            return_range(ProgType::CgroupSock, INET_SOCK_CREATE),
            Some((0, 1))
        );
        assert_eq!(
            invalid_return_msg(0, 0, (1, 1)),
            "At program exit the register R0 has smin=0 smax=0 should have been in [1, 1]"
        );
        assert_eq!(
            invalid_return_msg(i64::MIN, i64::MAX, (0, 1)),
            "At program exit the register R0 has unknown scalar value should have been in [0, 1]"
        );
    }

    #[test]
    fn sockopt_fields() {
        use attach::{CGROUP_GETSOCKOPT as GET, CGROUP_SETSOCKOPT as SET};
        let ty = |a, off, size, w| sockopt_access(a, off, size, w).map(|l| l.reg_type);
        assert_eq!(ty(GET, 0, 8, false), Some(RegType::PtrToSocket));
        assert_eq!(ty(GET, 8, 8, false), Some(RegType::PtrToPacket));
        assert_eq!(ty(GET, 16, 8, false), Some(RegType::PtrToPacketEnd));
        // verifier_ctx.c's invalid_narrow_load tests: the pointers are read whole only.
        for off in [0, 4, 8, 12, 16, 20] {
            assert_eq!(ty(GET, off, 4, false), None, "narrow load at {off}");
        }
        assert_eq!(ty(GET, 36, 4, false), Some(RegType::Scalar));
        assert_eq!(ty(SET, 36, 4, false), None, "retval is getsockopt's");
        assert_eq!(ty(GET, 36, 4, true), Some(RegType::Scalar));
        assert_eq!(ty(SET, 24, 4, true), Some(RegType::Scalar));
        assert_eq!(
            ty(GET, 24, 4, true),
            None,
            "level is written by setsockopt only"
        );
        assert_eq!(ty(GET, 32, 4, true), Some(RegType::Scalar));
        assert_eq!(ty(GET, 8, 8, true), None);
        assert_eq!(ty(GET, 40, 4, false), None, "past the struct");
        assert_eq!(return_range(ProgType::CgroupSockopt, GET), Some((0, 1)));
    }
}

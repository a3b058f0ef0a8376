//! Program section names → (program type, expected attach type, load flags), mirroring
//! libbpf's `section_defs[]` table and its matching rule (`sec_def_matches`):
//! a definition ending in `+` matches the bare name or `name/anything`; one ending in `/`
//! matches any name with that prefix; any other definition must match exactly.
//! The first matching row wins, so more specific rows come first (as in libbpf).

/// `enum bpf_prog_type` values used by the table.
#[allow(missing_docs)]
pub mod prog_type {
    pub const SOCKET_FILTER: u32 = 1;
    pub const KPROBE: u32 = 2;
    pub const SCHED_CLS: u32 = 3;
    pub const SCHED_ACT: u32 = 4;
    pub const TRACEPOINT: u32 = 5;
    pub const XDP: u32 = 6;
    pub const PERF_EVENT: u32 = 7;
    pub const CGROUP_SKB: u32 = 8;
    pub const CGROUP_SOCK: u32 = 9;
    pub const LWT_IN: u32 = 10;
    pub const LWT_OUT: u32 = 11;
    pub const LWT_XMIT: u32 = 12;
    pub const SOCK_OPS: u32 = 13;
    pub const SK_SKB: u32 = 14;
    pub const CGROUP_DEVICE: u32 = 15;
    pub const SK_MSG: u32 = 16;
    pub const RAW_TRACEPOINT: u32 = 17;
    pub const CGROUP_SOCK_ADDR: u32 = 18;
    pub const LWT_SEG6LOCAL: u32 = 19;
    pub const LIRC_MODE2: u32 = 20;
    pub const SK_REUSEPORT: u32 = 21;
    pub const FLOW_DISSECTOR: u32 = 22;
    pub const CGROUP_SYSCTL: u32 = 23;
    pub const RAW_TRACEPOINT_WRITABLE: u32 = 24;
    pub const CGROUP_SOCKOPT: u32 = 25;
    pub const TRACING: u32 = 26;
    pub const STRUCT_OPS: u32 = 27;
    pub const EXT: u32 = 28;
    pub const LSM: u32 = 29;
    pub const SK_LOOKUP: u32 = 30;
    pub const SYSCALL: u32 = 31;
    pub const NETFILTER: u32 = 32;
}

/// `enum bpf_attach_type` values used by the table.
#[allow(missing_docs)]
pub mod attach_type {
    pub const CGROUP_INET_INGRESS: u32 = 0;
    pub const CGROUP_INET_EGRESS: u32 = 1;
    pub const CGROUP_INET_SOCK_CREATE: u32 = 2;
    pub const CGROUP_SOCK_OPS: u32 = 3;
    pub const SK_SKB_STREAM_PARSER: u32 = 4;
    pub const SK_SKB_STREAM_VERDICT: u32 = 5;
    pub const CGROUP_DEVICE: u32 = 6;
    pub const SK_MSG_VERDICT: u32 = 7;
    pub const CGROUP_INET4_BIND: u32 = 8;
    pub const CGROUP_INET6_BIND: u32 = 9;
    pub const CGROUP_INET4_CONNECT: u32 = 10;
    pub const CGROUP_INET6_CONNECT: u32 = 11;
    pub const CGROUP_INET4_POST_BIND: u32 = 12;
    pub const CGROUP_INET6_POST_BIND: u32 = 13;
    pub const CGROUP_UDP4_SENDMSG: u32 = 14;
    pub const CGROUP_UDP6_SENDMSG: u32 = 15;
    pub const LIRC_MODE2: u32 = 16;
    pub const FLOW_DISSECTOR: u32 = 17;
    pub const CGROUP_SYSCTL: u32 = 18;
    pub const CGROUP_UDP4_RECVMSG: u32 = 19;
    pub const CGROUP_UDP6_RECVMSG: u32 = 20;
    pub const CGROUP_GETSOCKOPT: u32 = 21;
    pub const CGROUP_SETSOCKOPT: u32 = 22;
    pub const TRACE_RAW_TP: u32 = 23;
    pub const TRACE_FENTRY: u32 = 24;
    pub const TRACE_FEXIT: u32 = 25;
    pub const MODIFY_RETURN: u32 = 26;
    pub const LSM_MAC: u32 = 27;
    pub const TRACE_ITER: u32 = 28;
    pub const CGROUP_INET4_GETPEERNAME: u32 = 29;
    pub const CGROUP_INET6_GETPEERNAME: u32 = 30;
    pub const CGROUP_INET4_GETSOCKNAME: u32 = 31;
    pub const CGROUP_INET6_GETSOCKNAME: u32 = 32;
    pub const XDP_DEVMAP: u32 = 33;
    pub const CGROUP_INET_SOCK_RELEASE: u32 = 34;
    pub const XDP_CPUMAP: u32 = 35;
    pub const SK_LOOKUP: u32 = 36;
    pub const XDP: u32 = 37;
    pub const SK_SKB_VERDICT: u32 = 38;
    pub const SK_REUSEPORT_SELECT: u32 = 39;
    pub const SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;
    pub const TRACE_KPROBE_MULTI: u32 = 42;
    pub const LSM_CGROUP: u32 = 43;
    pub const NETFILTER: u32 = 45;
    pub const TCX_INGRESS: u32 = 46;
    pub const TCX_EGRESS: u32 = 47;
    pub const TRACE_UPROBE_MULTI: u32 = 48;
    pub const CGROUP_UNIX_CONNECT: u32 = 49;
    pub const CGROUP_UNIX_SENDMSG: u32 = 50;
    pub const CGROUP_UNIX_RECVMSG: u32 = 51;
    pub const CGROUP_UNIX_GETPEERNAME: u32 = 52;
    pub const CGROUP_UNIX_GETSOCKNAME: u32 = 53;
    pub const NETKIT_PRIMARY: u32 = 54;
    pub const NETKIT_PEER: u32 = 55;
}

/// `BPF_F_SLEEPABLE` program load flag.
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS` program load flag.
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecDef {
    /// The pattern as libbpf writes it (`"kprobe+"`, `"xdp"`, `"sk_skb/"`…).
    pub sec: &'static str,
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type` the program is loaded with (0 when libbpf passes none).
    pub expected_attach_type: u32,
    /// Program load flags (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`).
    pub prog_flags: u32,
}

const fn d(
    sec: &'static str,
    prog_type: u32,
    expected_attach_type: u32,
    prog_flags: u32,
) -> SecDef {
    SecDef {
        sec,
        prog_type,
        expected_attach_type,
        prog_flags,
    }
}

use attach_type as a;
use prog_type as p;
const S: u32 = BPF_F_SLEEPABLE;
const FR: u32 = BPF_F_XDP_HAS_FRAGS;

/// libbpf's `section_defs[]`, in its order.
pub const SECTION_DEFS: &[SecDef] = &[
    d("socket", p::SOCKET_FILTER, 0, 0),
    d(
        "sk_reuseport/migrate",
        p::SK_REUSEPORT,
        a::SK_REUSEPORT_SELECT_OR_MIGRATE,
        0,
    ),
    d("sk_reuseport", p::SK_REUSEPORT, a::SK_REUSEPORT_SELECT, 0),
    d("kprobe+", p::KPROBE, 0, 0),
    d("uprobe+", p::KPROBE, 0, 0),
    d("uprobe.s+", p::KPROBE, 0, S),
    d("kretprobe+", p::KPROBE, 0, 0),
    d("uretprobe+", p::KPROBE, 0, 0),
    d("uretprobe.s+", p::KPROBE, 0, S),
    d("kprobe.multi+", p::KPROBE, a::TRACE_KPROBE_MULTI, 0),
    d("kretprobe.multi+", p::KPROBE, a::TRACE_KPROBE_MULTI, 0),
    d("uprobe.multi+", p::KPROBE, a::TRACE_UPROBE_MULTI, 0),
    d("uretprobe.multi+", p::KPROBE, a::TRACE_UPROBE_MULTI, 0),
    d("uprobe.multi.s+", p::KPROBE, a::TRACE_UPROBE_MULTI, S),
    d("uretprobe.multi.s+", p::KPROBE, a::TRACE_UPROBE_MULTI, S),
    d("ksyscall+", p::KPROBE, 0, 0),
    d("kretsyscall+", p::KPROBE, 0, 0),
    d("usdt+", p::KPROBE, 0, 0),
    d("usdt.s+", p::KPROBE, 0, S),
    d("tc/ingress", p::SCHED_CLS, a::TCX_INGRESS, 0),
    d("tc/egress", p::SCHED_CLS, a::TCX_EGRESS, 0),
    d("tcx/ingress", p::SCHED_CLS, a::TCX_INGRESS, 0),
    d("tcx/egress", p::SCHED_CLS, a::TCX_EGRESS, 0),
    d("netkit/primary", p::SCHED_CLS, a::NETKIT_PRIMARY, 0),
    d("netkit/peer", p::SCHED_CLS, a::NETKIT_PEER, 0),
    d("tc", p::SCHED_CLS, 0, 0),
    d("classifier", p::SCHED_CLS, 0, 0),
    d("action", p::SCHED_ACT, 0, 0),
    d("tracepoint+", p::TRACEPOINT, 0, 0),
    d("tp+", p::TRACEPOINT, 0, 0),
    d("raw_tracepoint+", p::RAW_TRACEPOINT, 0, 0),
    d("raw_tp+", p::RAW_TRACEPOINT, 0, 0),
    d("raw_tracepoint.w+", p::RAW_TRACEPOINT_WRITABLE, 0, 0),
    d("raw_tp.w+", p::RAW_TRACEPOINT_WRITABLE, 0, 0),
    d("tp_btf+", p::TRACING, a::TRACE_RAW_TP, 0),
    d("fentry+", p::TRACING, a::TRACE_FENTRY, 0),
    d("fmod_ret+", p::TRACING, a::MODIFY_RETURN, 0),
    d("fexit+", p::TRACING, a::TRACE_FEXIT, 0),
    d("fentry.s+", p::TRACING, a::TRACE_FENTRY, S),
    d("fmod_ret.s+", p::TRACING, a::MODIFY_RETURN, S),
    d("fexit.s+", p::TRACING, a::TRACE_FEXIT, S),
    d("freplace+", p::EXT, 0, 0),
    d("lsm+", p::LSM, a::LSM_MAC, 0),
    d("lsm.s+", p::LSM, a::LSM_MAC, S),
    d("lsm_cgroup+", p::LSM, a::LSM_CGROUP, 0),
    d("iter+", p::TRACING, a::TRACE_ITER, 0),
    d("iter.s+", p::TRACING, a::TRACE_ITER, S),
    d("syscall", p::SYSCALL, 0, S),
    d("xdp.frags/devmap", p::XDP, a::XDP_DEVMAP, FR),
    d("xdp/devmap", p::XDP, a::XDP_DEVMAP, 0),
    d("xdp.frags/cpumap", p::XDP, a::XDP_CPUMAP, FR),
    d("xdp/cpumap", p::XDP, a::XDP_CPUMAP, 0),
    d("xdp.frags", p::XDP, a::XDP, FR),
    d("xdp", p::XDP, a::XDP, 0),
    d("perf_event", p::PERF_EVENT, 0, 0),
    d("lwt_in", p::LWT_IN, 0, 0),
    d("lwt_out", p::LWT_OUT, 0, 0),
    d("lwt_xmit", p::LWT_XMIT, 0, 0),
    d("lwt_seg6local", p::LWT_SEG6LOCAL, 0, 0),
    d("sockops", p::SOCK_OPS, a::CGROUP_SOCK_OPS, 0),
    d(
        "sk_skb/stream_parser",
        p::SK_SKB,
        a::SK_SKB_STREAM_PARSER,
        0,
    ),
    d(
        "sk_skb/stream_verdict",
        p::SK_SKB,
        a::SK_SKB_STREAM_VERDICT,
        0,
    ),
    d("sk_skb/verdict", p::SK_SKB, a::SK_SKB_VERDICT, 0),
    d("sk_skb", p::SK_SKB, 0, 0),
    d("sk_msg", p::SK_MSG, a::SK_MSG_VERDICT, 0),
    d("lirc_mode2", p::LIRC_MODE2, a::LIRC_MODE2, 0),
    d("flow_dissector", p::FLOW_DISSECTOR, a::FLOW_DISSECTOR, 0),
    d(
        "cgroup_skb/ingress",
        p::CGROUP_SKB,
        a::CGROUP_INET_INGRESS,
        0,
    ),
    d("cgroup_skb/egress", p::CGROUP_SKB, a::CGROUP_INET_EGRESS, 0),
    d("cgroup/skb", p::CGROUP_SKB, 0, 0),
    d(
        "cgroup/sock_create",
        p::CGROUP_SOCK,
        a::CGROUP_INET_SOCK_CREATE,
        0,
    ),
    d(
        "cgroup/sock_release",
        p::CGROUP_SOCK,
        a::CGROUP_INET_SOCK_RELEASE,
        0,
    ),
    d("cgroup/sock", p::CGROUP_SOCK, a::CGROUP_INET_SOCK_CREATE, 0),
    d(
        "cgroup/post_bind4",
        p::CGROUP_SOCK,
        a::CGROUP_INET4_POST_BIND,
        0,
    ),
    d(
        "cgroup/post_bind6",
        p::CGROUP_SOCK,
        a::CGROUP_INET6_POST_BIND,
        0,
    ),
    d("cgroup/bind4", p::CGROUP_SOCK_ADDR, a::CGROUP_INET4_BIND, 0),
    d("cgroup/bind6", p::CGROUP_SOCK_ADDR, a::CGROUP_INET6_BIND, 0),
    d(
        "cgroup/connect4",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_INET4_CONNECT,
        0,
    ),
    d(
        "cgroup/connect6",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_INET6_CONNECT,
        0,
    ),
    d(
        "cgroup/connect_unix",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UNIX_CONNECT,
        0,
    ),
    d(
        "cgroup/sendmsg4",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UDP4_SENDMSG,
        0,
    ),
    d(
        "cgroup/sendmsg6",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UDP6_SENDMSG,
        0,
    ),
    d(
        "cgroup/sendmsg_unix",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UNIX_SENDMSG,
        0,
    ),
    d(
        "cgroup/recvmsg4",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UDP4_RECVMSG,
        0,
    ),
    d(
        "cgroup/recvmsg6",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UDP6_RECVMSG,
        0,
    ),
    d(
        "cgroup/recvmsg_unix",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UNIX_RECVMSG,
        0,
    ),
    d(
        "cgroup/getpeername4",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_INET4_GETPEERNAME,
        0,
    ),
    d(
        "cgroup/getpeername6",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_INET6_GETPEERNAME,
        0,
    ),
    d(
        "cgroup/getpeername_unix",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UNIX_GETPEERNAME,
        0,
    ),
    d(
        "cgroup/getsockname4",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_INET4_GETSOCKNAME,
        0,
    ),
    d(
        "cgroup/getsockname6",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_INET6_GETSOCKNAME,
        0,
    ),
    d(
        "cgroup/getsockname_unix",
        p::CGROUP_SOCK_ADDR,
        a::CGROUP_UNIX_GETSOCKNAME,
        0,
    ),
    d("cgroup/sysctl", p::CGROUP_SYSCTL, a::CGROUP_SYSCTL, 0),
    d(
        "cgroup/getsockopt",
        p::CGROUP_SOCKOPT,
        a::CGROUP_GETSOCKOPT,
        0,
    ),
    d(
        "cgroup/setsockopt",
        p::CGROUP_SOCKOPT,
        a::CGROUP_SETSOCKOPT,
        0,
    ),
    d("cgroup/dev", p::CGROUP_DEVICE, a::CGROUP_DEVICE, 0),
    d("struct_ops+", p::STRUCT_OPS, 0, 0),
    d("struct_ops.s+", p::STRUCT_OPS, 0, S),
    d("sk_lookup", p::SK_LOOKUP, a::SK_LOOKUP, 0),
    d("netfilter", p::NETFILTER, a::NETFILTER, 0),
];

/// libbpf's `sec_def_matches`.
fn matches(def: &str, name: &str) -> bool {
    if let Some(prefix) = def.strip_suffix('+') {
        match name.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    } else if def.ends_with('/') {
        name.starts_with(def)
    } else {
        def == name
    }
}

/// The table row for a program section name, or `None` when libbpf would not know the
/// section as a program.
pub fn find_sec_def(sec_name: &str) -> Option<&'static SecDef> {
    SECTION_DEFS.iter().find(|d| matches(d.sec, sec_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_matching_rules() {
        let t =
            |n: &str| find_sec_def(n).map(|d| (d.prog_type, d.expected_attach_type, d.prog_flags));
        assert_eq!(t("xdp"), Some((p::XDP, a::XDP, 0)));
        assert_eq!(t("xdp.frags"), Some((p::XDP, a::XDP, FR)));
        assert_eq!(t("xdp/devmap"), Some((p::XDP, a::XDP_DEVMAP, 0)));
        assert_eq!(t("xdp/foo"), None);
        assert_eq!(t("tc"), Some((p::SCHED_CLS, 0, 0)));
        assert_eq!(t("classifier"), Some((p::SCHED_CLS, 0, 0)));
        assert_eq!(t("tcx/ingress"), Some((p::SCHED_CLS, a::TCX_INGRESS, 0)));
        assert_eq!(t("socket"), Some((p::SOCKET_FILTER, 0, 0)));
        assert_eq!(t("kprobe/do_sys_open"), Some((p::KPROBE, 0, 0)));
        assert_eq!(t("kprobe"), Some((p::KPROBE, 0, 0)));
        assert_eq!(t("kprobex"), None);
        assert_eq!(t("kretprobe/x"), Some((p::KPROBE, 0, 0)));
        assert_eq!(
            t("tracepoint/syscalls/sys_enter_write"),
            Some((p::TRACEPOINT, 0, 0))
        );
        assert_eq!(t("tp/a/b"), Some((p::TRACEPOINT, 0, 0)));
        assert_eq!(t("raw_tp/sched_switch"), Some((p::RAW_TRACEPOINT, 0, 0)));
        assert_eq!(t("raw_tracepoint/x"), Some((p::RAW_TRACEPOINT, 0, 0)));
        assert_eq!(
            t("cgroup_skb/ingress"),
            Some((p::CGROUP_SKB, a::CGROUP_INET_INGRESS, 0))
        );
        assert_eq!(
            t("sk_skb/stream_parser"),
            Some((p::SK_SKB, a::SK_SKB_STREAM_PARSER, 0))
        );
        assert_eq!(t("sk_skb/other"), None);
        assert_eq!(
            t("fentry/tcp_v4_connect"),
            Some((p::TRACING, a::TRACE_FENTRY, 0))
        );
        assert_eq!(t("fentry.s/x"), Some((p::TRACING, a::TRACE_FENTRY, S)));
        assert_eq!(t("perf_event"), Some((p::PERF_EVENT, 0, 0)));
        assert_eq!(t(".text"), None);
        assert_eq!(t("license"), None);
    }
}

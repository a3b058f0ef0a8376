//! `bpf_fib_lookup`'s routing decision on the host: the kernel's `bpf_ipv4_fib_lookup` and
//! `bpf_ipv6_fib_lookup` (net/core/filter.c), computed in user space from the routing state
//! of the calling thread's network namespace (`rtnl`: rules, routes of every table, links,
//! neighbours, addresses over rtnetlink, and per-device sysctls), kept per thread by `cache`
//! until rtnetlink notifies a change.
//!
//! The FIB walk mirrors `fib_rules_lookup` (rule order, `goto`, `nop`, the reject actions,
//! `suppress_prefixlen`, invert), `fib_table_lookup` (longest prefix first, aliases in the
//! kernel's order, DSCP, dead and link-down nexthops, the `oif` restriction, the reject route
//! types' errors, `throw`) and, for IPv6, `fib6_table_lookup`'s choice among routes of one
//! prefix (lowest metric, the output device preferred). The fields written back and the
//! return codes are the kernel's.
//!
//! Limits (the differential tests avoid them; docs/status.md names them):
//! - ECMP: a multipath route uses its first usable nexthop; the kernel picks one by the
//!   flow's hash (`fib_select_path`).
//! - No VRF/l3mdev, tunnel-id or interface-group rule selectors (such a rule never matches);
//!   no nexthop-object-only routes (`nexthop_compat_mode=0`).
//! - PMTU exceptions (`find_exception`, `rt6_find_cached_rt`) are not consulted: the MTU is
//!   the locked route MTU (or any route MTU under `ip_forward_use_pmtu`), else the device's.
//! - LWT: any encapsulation gives `UNSUPP_LWT`; its headroom is not subtracted first.
//! - IPv6: neighbour reachability scoring (all.forwarding off) and round robin among equal
//!   routes are not mirrored; `SRC` without a preferred source picks a non-tentative
//!   address of sufficient scope, the output device's first, then the longest common
//!   prefix (a subset of RFC 6724's rules in `ipv6_dev_get_saddr`).
//! - Neighbours on loopback and point-to-point devices are looked up by the nexthop's
//!   address (the kernel uses key 0 there).
//! - VLAN: `h_vlan_proto`/`h_vlan_TCI` are always 0, as the kernel's are today.

mod cache;
mod rtnl;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::AddressFamily;

use cache::{State, with_state};
pub use rtnl::Link;
use rtnl::{IfAddr, Route, Rule, in_prefix, v4};

/// `BPF_FIB_LOOKUP_DIRECT`: one table, no rules.
pub const BPF_FIB_LOOKUP_DIRECT: u32 = 1 << 0;
/// `BPF_FIB_LOOKUP_OUTPUT`: an egress lookup (`oif` = `ifindex`).
pub const BPF_FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
/// `BPF_FIB_LOOKUP_SKIP_NEIGH`: no neighbour lookup, no MACs.
pub const BPF_FIB_LOOKUP_SKIP_NEIGH: u32 = 1 << 2;
/// `BPF_FIB_LOOKUP_TBID`: with `DIRECT`, the table is `params->tbid`.
pub const BPF_FIB_LOOKUP_TBID: u32 = 1 << 3;
/// `BPF_FIB_LOOKUP_SRC`: fill in the source address.
pub const BPF_FIB_LOOKUP_SRC: u32 = 1 << 4;
/// `BPF_FIB_LOOKUP_MARK`: rules see `params->mark`.
pub const BPF_FIB_LOOKUP_MARK: u32 = 1 << 5;
/// `BPF_FIB_LOOKUP_MASK`: every flag 6.12 knows.
pub const BPF_FIB_LOOKUP_MASK: u32 = BPF_FIB_LOOKUP_DIRECT
    | BPF_FIB_LOOKUP_OUTPUT
    | BPF_FIB_LOOKUP_SKIP_NEIGH
    | BPF_FIB_LOOKUP_TBID
    | BPF_FIB_LOOKUP_SRC
    | BPF_FIB_LOOKUP_MARK;

/// `BPF_FIB_LKUP_RET_SUCCESS`.
pub const BPF_FIB_LKUP_RET_SUCCESS: i64 = 0;
/// `BPF_FIB_LKUP_RET_BLACKHOLE`.
pub const BPF_FIB_LKUP_RET_BLACKHOLE: i64 = 1;
/// `BPF_FIB_LKUP_RET_UNREACHABLE`.
pub const BPF_FIB_LKUP_RET_UNREACHABLE: i64 = 2;
/// `BPF_FIB_LKUP_RET_PROHIBIT`.
pub const BPF_FIB_LKUP_RET_PROHIBIT: i64 = 3;
/// `BPF_FIB_LKUP_RET_NOT_FWDED`.
pub const BPF_FIB_LKUP_RET_NOT_FWDED: i64 = 4;
/// `BPF_FIB_LKUP_RET_FWD_DISABLED`.
pub const BPF_FIB_LKUP_RET_FWD_DISABLED: i64 = 5;
/// `BPF_FIB_LKUP_RET_UNSUPP_LWT`.
pub const BPF_FIB_LKUP_RET_UNSUPP_LWT: i64 = 6;
/// `BPF_FIB_LKUP_RET_NO_NEIGH`.
pub const BPF_FIB_LKUP_RET_NO_NEIGH: i64 = 7;
/// `BPF_FIB_LKUP_RET_FRAG_NEEDED`.
pub const BPF_FIB_LKUP_RET_FRAG_NEEDED: i64 = 8;
/// `BPF_FIB_LKUP_RET_NO_SRC_ADDR`.
pub const BPF_FIB_LKUP_RET_NO_SRC_ADDR: i64 = 9;

/// `sizeof(struct bpf_fib_lookup)`.
pub const BPF_FIB_LOOKUP_SIZE: usize = 64;

// rtnetlink values the libc crate does not name.
const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_GOTO: u8 = 2;
const FR_ACT_NOP: u8 = 3;
const FR_ACT_BLACKHOLE: u8 = 6;
const FR_ACT_UNREACHABLE: u8 = 7;
const FR_ACT_PROHIBIT: u8 = 8;
const RTNH_F_DEAD: u32 = 1;
const RTNH_F_LINKDOWN: u32 = 16;
const LOOPBACK_IFINDEX: u32 = 1;
const IP_MAX_MTU: u32 = 0xffff;
const IPV6_MIN_MTU: u32 = 1280;
/// `NUD_VALID`.
const NUD_VALID: u16 = libc::NUD_PERMANENT
    | libc::NUD_NOARP
    | libc::NUD_REACHABLE
    | libc::NUD_PROBE
    | libc::NUD_STALE
    | libc::NUD_DELAY;

/// Field offsets of `struct bpf_fib_lookup` (include/uapi/linux/bpf.h).
mod off {
    pub const FAMILY: usize = 0;
    pub const L4_PROTOCOL: usize = 1;
    pub const SPORT: usize = 2;
    pub const DPORT: usize = 4;
    pub const TOT_LEN: usize = 6;
    pub const IFINDEX: usize = 8;
    pub const TOS: usize = 12;
    pub const SRC: usize = 16;
    pub const DST: usize = 32;
    pub const VLAN_PROTO: usize = 48;
    pub const TBID: usize = 48;
    pub const MARK: usize = 52;
    pub const SMAC: usize = 52;
    pub const DMAC: usize = 58;
}

/// A `struct bpf_fib_lookup`, as the bytes the program handed in (host byte order for the
/// `__u16`/`__u32` fields, network order for the `__be` ones, as in the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibParams(pub [u8; BPF_FIB_LOOKUP_SIZE]);

impl FibParams {
    fn u16(&self, at: usize) -> u16 {
        u16::from_ne_bytes([self.0[at], self.0[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.0[at..at + 4].try_into().unwrap_or([0; 4]))
    }
    fn set_u16(&mut self, at: usize, v: u16) {
        self.0[at..at + 2].copy_from_slice(&v.to_ne_bytes());
    }
    fn set_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    /// `family`.
    pub fn family(&self) -> u8 {
        self.0[off::FAMILY]
    }
    /// `tot_len` (in) / `mtu_result` (out).
    pub fn tot_len(&self) -> u16 {
        self.u16(off::TOT_LEN)
    }
    /// Sets `mtu_result`.
    pub fn set_mtu_result(&mut self, mtu: u16) {
        self.set_u16(off::TOT_LEN, mtu);
    }
    /// `ifindex`.
    pub fn ifindex(&self) -> u32 {
        self.u32(off::IFINDEX)
    }
    fn ipv4(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.0[at..at + 4].try_into().unwrap_or([0; 4]))
    }
    fn set_ipv4(&mut self, at: usize, a: u32) {
        self.0[at..at + 4].copy_from_slice(&a.to_be_bytes());
    }
    fn ipv6(&self, at: usize) -> u128 {
        u128::from_be_bytes(self.0[at..at + 16].try_into().unwrap_or([0; 16]))
    }
    fn set_ipv6(&mut self, at: usize, a: u128) {
        self.0[at..at + 16].copy_from_slice(&a.to_be_bytes());
    }
    fn ports(&self) -> (u16, u16) {
        let be = |at: usize| u16::from_be_bytes([self.0[at], self.0[at + 1]]);
        (be(off::SPORT), be(off::DPORT))
    }
    /// `bpf_fib_set_fwd_params`: VLAN fields cleared, `mtu_result` set when known.
    fn set_fwd_params(&mut self, mtu: u32) -> i64 {
        self.set_u32(off::VLAN_PROTO, 0);
        if mtu != 0 {
            self.set_mtu_result(mtu as u16);
        }
        BPF_FIB_LKUP_RET_SUCCESS
    }
}

/// The flow a lookup matches rules and routes against (`struct flowi4` / `flowi6`).
#[derive(Clone, Copy, Debug, Default)]
struct Flow {
    iif: u32,
    oif: u32,
    mark: u32,
    /// IPv4: the DSCP bits of `tos`; IPv6: the traffic class of `flowinfo`.
    dscp: u8,
    proto: u8,
    sport: u16,
    dport: u16,
    src: u128,
    dst: u128,
}

/// Errors of the lookup itself: the negative errno `bpf_fib_lookup` returns, or an
/// rtnetlink failure (reported as `-errno` too, so that a program sees an error and never a
/// made-up route).
fn io_errno(e: std::io::Error) -> i64 {
    -i64::from(e.raw_os_error().unwrap_or(libc::EIO))
}

/// `bpf_{xdp,skb}_fib_lookup` after the argument checks: the lookup of `params` (whose
/// family is `AF_INET` or `AF_INET6`; others give `-EAFNOSUPPORT`) with `flags`, in the
/// calling thread's network namespace. `check_mtu` is the MTU check against `tot_len`.
pub fn fib_lookup(params: &mut FibParams, flags: u32, check_mtu: bool) -> i64 {
    let lookup = match i32::from(params.family()) {
        libc::AF_INET => ipv4_lookup,
        libc::AF_INET6 => ipv6_lookup,
        _ => return -i64::from(libc::EAFNOSUPPORT),
    };
    match with_state(|nl| lookup(nl, params, flags, check_mtu)) {
        Ok(rc) => rc.unwrap_or_else(|rc| rc),
        Err(e) => io_errno(e),
    }
}

/// The device with this index in the calling thread's namespace (for the skb variant's
/// `is_skb_forwardable` check).
pub fn link(ifindex: u32) -> std::io::Result<Option<Link>> {
    with_state(|nl| Ok(nl.links()?.iter().find(|l| l.ifindex == ifindex).cloned()))?
}

/// A lookup step's early return: `Err(rc)` is the helper's return value.
type Step<T> = Result<T, i64>;

fn step<T>(r: std::io::Result<T>) -> Step<T> {
    r.map_err(io_errno)
}

/// The route and nexthop a FIB walk chose (`struct fib_result`'s `fi`, `nhc`, `type`).
struct FibResult<'a> {
    route: &'a Route,
    nh: usize,
}

/// `fib_props[type].error` for IPv4.
fn type_error(kind: u8) -> Option<i32> {
    match kind {
        libc::RTN_BLACKHOLE | libc::RTN_NAT | libc::RTN_XRESOLVE => Some(-libc::EINVAL),
        libc::RTN_UNREACHABLE => Some(-libc::EHOSTUNREACH),
        libc::RTN_PROHIBIT => Some(-libc::EACCES),
        libc::RTN_THROW => Some(-libc::EAGAIN),
        _ => None,
    }
}

/// Whether a nexthop may carry the flow (`fib_lookup_good_nhc` / `find_match`): not dead,
/// not link-down where `ignore_routes_with_linkdown` is set, on `oif` when one is given.
fn good_nh(nh: &rtnl::NextHop, oif: u32, links: &[Link], family: &str) -> bool {
    if nh.flags & RTNH_F_DEAD != 0 {
        return false;
    }
    if nh.flags & RTNH_F_LINKDOWN != 0 {
        // ip_ignore_linkdown / ip6_ignore_linkdown: the device's setting or `all`'s.
        let name = links
            .iter()
            .find(|l| l.ifindex == nh.ifindex)
            .map_or("", |l| l.name.as_str());
        let set =
            |dev: &str| rtnl::dev_sysctl(family, dev, "ignore_routes_with_linkdown") == Some(1);
        if set(name) || set("all") {
            return false;
        }
    }
    oif == 0 || oif == nh.ifindex
}

/// `fib_table_lookup`: longest prefix first, then the aliases of one prefix in the kernel's
/// list order (the dump's), the first usable one winning; a reject type ends the lookup
/// with its error; `-EAGAIN` when nothing matches.
fn fib4_table_lookup<'a>(
    routes: &'a [Route],
    table: u32,
    flow: &Flow,
    links: &[Link],
) -> Result<FibResult<'a>, i32> {
    let mut cands: Vec<&Route> = routes
        .iter()
        .filter(|r| r.table == table && in_prefix(flow.dst, r.dst, r.dst_len))
        .collect();
    cands.sort_by_key(|r| std::cmp::Reverse(r.dst_len));
    for r in cands {
        if r.tos != 0 && r.tos != flow.dscp {
            continue;
        }
        if let Some(e) = type_error(r.kind) {
            return Err(e);
        }
        if r.nexthops.iter().all(|nh| nh.flags & RTNH_F_DEAD != 0) {
            continue;
        }
        if let Some(nh) = r
            .nexthops
            .iter()
            .position(|nh| good_nh(nh, flow.oif, links, "ipv4"))
        {
            return Ok(FibResult { route: r, nh });
        }
    }
    Err(-libc::EAGAIN)
}

/// `fib6_table_lookup`: the longest prefix (then source prefix) whose routes have a usable
/// one; among a prefix's routes the lowest metric group first, and in a group the one on
/// `oif` (score 2) before the others, the first of equal scores winning.
fn fib6_table_lookup<'a>(
    routes: &'a [Route],
    table: u32,
    oif: u32,
    flow: &Flow,
    links: &[Link],
) -> Option<FibResult<'a>> {
    let mut cands: Vec<&Route> = routes
        .iter()
        .filter(|r| {
            r.table == table
                && in_prefix(flow.dst, r.dst, r.dst_len)
                && in_prefix(flow.src, r.src, r.src_len)
        })
        .collect();
    cands.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.dst_len),
            std::cmp::Reverse(r.src_len),
            r.priority,
        )
    });
    let mut i = 0;
    while i < cands.len() {
        let (dst_len, src_len) = (cands[i].dst_len, cands[i].src_len);
        let node: Vec<&Route> = cands[i..]
            .iter()
            .take_while(|r| r.dst_len == dst_len && r.src_len == src_len)
            .copied()
            .collect();
        i += node.len();
        let mut j = 0;
        while j < node.len() {
            let metric = node[j].priority;
            let mut best: Option<(i32, FibResult<'a>)> = None;
            for r in node[j..].iter().take_while(|r| r.priority == metric) {
                j += 1;
                let Some(nh) = r
                    .nexthops
                    .iter()
                    .position(|nh| good_nh(nh, 0, links, "ipv6"))
                else {
                    continue;
                };
                let score = if oif == 0 || r.nexthops[nh].ifindex == oif {
                    2
                } else {
                    0
                };
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, FibResult { route: r, nh }));
                }
            }
            if let Some((_, res)) = best {
                return Some(res);
            }
        }
    }
    None
}

/// Whether `rule` selects `flow` (`fib_rule_match` with the family's `match`).
fn rule_matches(rule: &Rule, flow: &Flow, links: &[Link], v6: bool) -> bool {
    let name_of = |i: u32| {
        links
            .iter()
            .find(|l| l.ifindex == i)
            .map(|l| l.name.as_str())
    };
    let ok = (|| {
        if rule.unsupported {
            return false;
        }
        if let Some(n) = &rule.iifname
            && name_of(flow.iif) != Some(n.as_str())
        {
            return false;
        }
        if let Some(n) = &rule.oifname
            && name_of(flow.oif) != Some(n.as_str())
        {
            return false;
        }
        if (rule.mark ^ flow.mark) & rule.mark_mask != 0 {
            return false;
        }
        // sock_net_uid(net, NULL): uid 0 of the namespace's user namespace.
        if rule.uid.0 > 0 {
            return false;
        }
        if !in_prefix(flow.src, rule.src, rule.src_len)
            || !in_prefix(flow.dst, rule.dst, rule.dst_len)
        {
            return false;
        }
        let dscp = if v6 { flow.dscp & 0xfc } else { flow.dscp };
        if rule.tos != 0 && rule.tos != dscp {
            return false;
        }
        if rule.ip_proto != 0 && rule.ip_proto != flow.proto {
            return false;
        }
        let in_range = |r: Option<(u16, u16)>, p: u16| r.is_none_or(|(a, b)| (a..=b).contains(&p));
        in_range(rule.sport, flow.sport) && in_range(rule.dport, flow.dport)
    })();
    ok != rule.invert
}

/// `fib_rules_lookup`: each matching rule's action in order; `-EAGAIN` goes on to the next
/// rule; nothing found is `-ESRCH`. `table` runs one table lookup (the family's).
fn rules_lookup<'a>(
    rules: &[Rule],
    flow: &Flow,
    links: &[Link],
    v6: bool,
    mut table: impl FnMut(u32) -> Result<FibResult<'a>, i32>,
) -> Result<FibResult<'a>, i32> {
    let mut i = 0;
    let mut jumps = 0;
    while i < rules.len() {
        let rule = &rules[i];
        i += 1;
        if !rule_matches(rule, flow, links, v6) {
            continue;
        }
        let err = match rule.action {
            FR_ACT_GOTO => {
                // A goto only ever jumps forward (the kernel refuses others), so this ends.
                if let Some(t) = rule
                    .goto
                    .and_then(|g| rules.iter().position(|r| r.priority == g))
                    && t >= i
                    && jumps < rules.len()
                {
                    jumps += 1;
                    i = t;
                }
                continue;
            }
            FR_ACT_NOP => continue,
            FR_ACT_TO_TBL => match table(rule.table) {
                Ok(res) => {
                    // fib4_rule_suppress / fib6_rule_suppress: too short a prefix.
                    if i64::from(res.route.dst_len) <= rule.suppress_prefixlen {
                        continue;
                    }
                    return Ok(res);
                }
                Err(e) => e,
            },
            FR_ACT_UNREACHABLE => -libc::ENETUNREACH,
            FR_ACT_PROHIBIT => -libc::EACCES,
            FR_ACT_BLACKHOLE => -libc::EINVAL,
            _ => -libc::EINVAL,
        };
        if err != -libc::EAGAIN {
            return Err(err);
        }
    }
    Err(-libc::ESRCH)
}

/// The table of a `DIRECT` lookup: `params->tbid` under `TBID` (then zeroed, as the kernel
/// does for the VLAN fields sharing its bytes), else the main table; table 0 is the main
/// table (`fib_get_table`); `None` when the table does not exist (no route in it).
fn direct_table(params: &mut FibParams, flags: u32, routes: &[Route]) -> Option<u32> {
    let mut tbid = u32::from(libc::RT_TABLE_MAIN);
    if flags & BPF_FIB_LOOKUP_TBID != 0 {
        tbid = match params.u32(off::TBID) {
            0 => tbid,
            t => t,
        };
        params.set_u32(off::TBID, 0);
    }
    routes.iter().any(|r| r.table == tbid).then_some(tbid)
}

/// The ingress device and its forwarding switch: `-ENODEV` without the device,
/// `FWD_DISABLED` without forwarding on it.
fn ingress(nl: &mut State, links: &[Link], ifindex: u32, family: &'static str) -> Step<Link> {
    let dev = links
        .iter()
        .find(|l| l.ifindex == ifindex)
        .ok_or(-i64::from(libc::ENODEV))?;
    if nl.forwarding(family, &dev.name).unwrap_or(0) == 0 {
        return Err(BPF_FIB_LKUP_RET_FWD_DISABLED);
    }
    Ok(dev.clone())
}

/// The neighbour entry for `dst` on `ifindex`, if valid: `(dmac)`.
fn neighbour(nl: &mut State, ifindex: u32, dst: IpAddr) -> Step<Option<Vec<u8>>> {
    let family = if dst.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let neighs = step(nl.neighbours(family))?;
    Ok(neighs
        .iter()
        .find(|n| n.ifindex == ifindex && n.dst == dst && n.state & NUD_VALID != 0)
        .map(|n| n.lladdr.clone()))
}

/// Fills `smac`/`dmac` from the neighbour of the nexthop, or `NO_NEIGH`.
fn set_macs(
    nl: &mut State,
    params: &mut FibParams,
    links: &[Link],
    ifindex: u32,
    nh: IpAddr,
) -> Step<()> {
    let Some(dmac) = neighbour(nl, ifindex, nh)? else {
        return Err(BPF_FIB_LKUP_RET_NO_NEIGH);
    };
    let smac = links
        .iter()
        .find(|l| l.ifindex == ifindex)
        .map(|l| l.mac.clone())
        .unwrap_or_default();
    let mut put = |at: usize, mac: &[u8]| {
        let mut m = [0u8; 6];
        let n = mac.len().min(6);
        m[..n].copy_from_slice(&mac[..n]);
        params.0[at..at + 6].copy_from_slice(&m);
    };
    put(off::DMAC, &dmac);
    put(off::SMAC, &smac);
    Ok(())
}

/// `bpf_ipv4_fib_lookup`.
fn ipv4_lookup(nl: &mut State, params: &mut FibParams, flags: u32, check_mtu: bool) -> Step<i64> {
    let links = step(nl.links())?;
    let dev = ingress(nl, &links, params.ifindex(), "ipv4")?;
    let (sport, dport) = params.ports();
    let mut flow = Flow {
        dscp: params.0[off::TOS] & 0xfc,
        proto: params.0[off::L4_PROTOCOL],
        sport,
        dport,
        src: v4(params.ipv4(off::SRC)),
        dst: v4(params.ipv4(off::DST)),
        ..Flow::default()
    };
    if flags & BPF_FIB_LOOKUP_OUTPUT != 0 {
        (flow.iif, flow.oif) = (LOOPBACK_IFINDEX, dev.ifindex);
    } else {
        (flow.iif, flow.oif) = (dev.ifindex, 0);
    }
    let routes = step(nl.routes(AddressFamily::Inet))?;
    let found = if flags & BPF_FIB_LOOKUP_DIRECT != 0 {
        let Some(tbid) = direct_table(params, flags, &routes) else {
            return Ok(BPF_FIB_LKUP_RET_NOT_FWDED);
        };
        fib4_table_lookup(&routes, tbid, &flow, &links)
    } else {
        if flags & BPF_FIB_LOOKUP_MARK != 0 {
            flow.mark = params.u32(off::MARK);
        }
        let rules = step(nl.rules(AddressFamily::Inet))?;
        let r = rules_lookup(&rules, &flow, &links, false, |t| {
            fib4_table_lookup(&routes, t, &flow, &links)
        });
        r.map_err(|e| {
            if e == -libc::ESRCH {
                -libc::ENETUNREACH
            } else {
                e
            }
        })
    };
    let res = match found {
        Ok(res) => res,
        Err(e) if e == -libc::EINVAL => return Ok(BPF_FIB_LKUP_RET_BLACKHOLE),
        Err(e) if e == -libc::EHOSTUNREACH => return Ok(BPF_FIB_LKUP_RET_UNREACHABLE),
        Err(e) if e == -libc::EACCES => return Ok(BPF_FIB_LKUP_RET_PROHIBIT),
        Err(_) => return Ok(BPF_FIB_LKUP_RET_NOT_FWDED),
    };
    if res.route.kind != libc::RTN_UNICAST {
        return Ok(BPF_FIB_LKUP_RET_NOT_FWDED);
    }
    let nh = &res.route.nexthops[res.nh];
    let out = links.iter().find(|l| l.ifindex == nh.ifindex);
    let mut mtu = 0;
    if check_mtu {
        // ip_mtu_from_fib_result: the route's MTU when locked or under
        // ip_forward_use_pmtu, else the device's (the sysctl only matters with a route MTU).
        if res.route.mtu != 0
            && (res.route.mtu_locked || rtnl::net_sysctl("ipv4/ip_forward_use_pmtu") == Some(1))
        {
            mtu = res.route.mtu;
        }
        if mtu == 0 {
            mtu = out.map_or(0, |l| l.mtu).min(IP_MAX_MTU);
        }
        if u32::from(params.tot_len()) > mtu {
            params.set_mtu_result(mtu as u16);
            return Ok(BPF_FIB_LKUP_RET_FRAG_NEEDED);
        }
    }
    if nh.lwt {
        return Ok(BPF_FIB_LKUP_RET_UNSUPP_LWT);
    }
    params.set_u32(off::TOS, res.route.priority);
    params.set_u32(off::IFINDEX, nh.ifindex);
    if flags & BPF_FIB_LOOKUP_SRC != 0 {
        let src = ipv4_prefsrc(nl, res.route, nh)?;
        params.set_ipv4(off::SRC, src);
    }
    let gw = match nh.gateway {
        Some(IpAddr::V4(g)) => {
            params.set_ipv4(off::DST, u32::from(g));
            IpAddr::V4(g)
        }
        Some(IpAddr::V6(g)) => {
            params.0[off::FAMILY] = libc::AF_INET6 as u8;
            params.set_ipv6(off::DST, u128::from(g));
            IpAddr::V6(g)
        }
        None => IpAddr::V4(Ipv4Addr::from(params.ipv4(off::DST))),
    };
    if flags & BPF_FIB_LOOKUP_SKIP_NEIGH == 0 {
        set_macs(nl, params, &links, nh.ifindex, gw)?;
    }
    Ok(params.set_fwd_params(mtu))
}

/// `fib_result_prefsrc`: the route's preferred source, else `inet_select_addr` on the
/// nexthop's device (a primary address within the route's scope, one on the gateway's
/// subnet first), else the first fitting address of any device; 0 when there is none.
fn ipv4_prefsrc(nl: &mut State, route: &Route, nh: &rtnl::NextHop) -> Step<u32> {
    if let Some(IpAddr::V4(p)) = route.prefsrc {
        return Ok(u32::from(p));
    }
    let addrs = step(nl.addresses(AddressFamily::Inet))?;
    let bits = |a: &IfAddr| match a.addr {
        IpAddr::V4(x) => u32::from(x),
        IpAddr::V6(_) => 0,
    };
    let gw = match nh.gateway {
        Some(IpAddr::V4(g)) => Some(v4(u32::from(g))),
        _ => None,
    };
    let mut first = None;
    for a in addrs.iter().filter(|a| a.ifindex == nh.ifindex) {
        if a.flags & libc::IFA_F_SECONDARY != 0 || a.scope.min(libc::RT_SCOPE_HOST) > route.scope {
            continue;
        }
        if gw.is_none_or(|g| in_prefix(g, v4(bits(a)), a.prefix_len)) {
            return Ok(bits(a));
        }
        first.get_or_insert(bits(a));
    }
    if let Some(a) = first {
        return Ok(a);
    }
    Ok(addrs
        .iter()
        .find(|a| {
            a.flags & libc::IFA_F_SECONDARY == 0
                && a.scope != libc::RT_SCOPE_LINK
                && a.scope <= route.scope
        })
        .map_or(0, bits))
}

/// `rt6_need_strict`: multicast, link-local or loopback.
fn ipv6_need_strict(a: u128) -> bool {
    a >> 120 == 0xff || a >> 118 == 0xfe80 >> 6 || a == 1
}

/// `bpf_ipv6_fib_lookup`.
fn ipv6_lookup(nl: &mut State, params: &mut FibParams, flags: u32, check_mtu: bool) -> Step<i64> {
    let (src, dst) = (params.ipv6(off::SRC), params.ipv6(off::DST));
    if ipv6_need_strict(dst) || ipv6_need_strict(src) {
        return Ok(BPF_FIB_LKUP_RET_NOT_FWDED);
    }
    let links = step(nl.links())?;
    let dev = ingress(nl, &links, params.ifindex(), "ipv6")?;
    let (sport, dport) = params.ports();
    let flowinfo = u32::from_be_bytes(
        params.0[off::TOS..off::TOS + 4]
            .try_into()
            .unwrap_or([0; 4]),
    );
    let mut flow = Flow {
        dscp: (flowinfo >> 20) as u8,
        proto: params.0[off::L4_PROTOCOL],
        sport,
        dport,
        src,
        dst,
        ..Flow::default()
    };
    let oif = dev.ifindex;
    if flags & BPF_FIB_LOOKUP_OUTPUT != 0 {
        (flow.iif, flow.oif) = (LOOPBACK_IFINDEX, dev.ifindex);
    } else {
        (flow.iif, flow.oif) = (dev.ifindex, 0);
    }
    let routes = step(nl.routes(AddressFamily::Inet6))?;
    let found = if flags & BPF_FIB_LOOKUP_DIRECT != 0 {
        let Some(tbid) = direct_table(params, flags, &routes) else {
            return Ok(BPF_FIB_LKUP_RET_NOT_FWDED);
        };
        fib6_table_lookup(&routes, tbid, oif, &flow, &links).ok_or(-libc::EAGAIN)
    } else {
        if flags & BPF_FIB_LOOKUP_MARK != 0 {
            flow.mark = params.u32(off::MARK);
        }
        let rules = step(nl.rules(AddressFamily::Inet6))?;
        rules_lookup(&rules, &flow, &links, true, |t| {
            fib6_table_lookup(&routes, t, oif, &flow, &links).ok_or(-libc::EAGAIN)
        })
    };
    let Ok(res) = found else {
        return Ok(BPF_FIB_LKUP_RET_NOT_FWDED);
    };
    match res.route.kind {
        libc::RTN_UNICAST => {}
        libc::RTN_BLACKHOLE => return Ok(BPF_FIB_LKUP_RET_BLACKHOLE),
        libc::RTN_UNREACHABLE => return Ok(BPF_FIB_LKUP_RET_UNREACHABLE),
        libc::RTN_PROHIBIT => return Ok(BPF_FIB_LKUP_RET_PROHIBIT),
        _ => return Ok(BPF_FIB_LKUP_RET_NOT_FWDED),
    }
    let nh = &res.route.nexthops[res.nh];
    let out = links.iter().find(|l| l.ifindex == nh.ifindex);
    let mut mtu = 0;
    if check_mtu {
        // ip6_mtu_from_fib6: a locked route MTU, else the device's mtu6.
        if res.route.mtu_locked {
            mtu = res.route.mtu;
        }
        if mtu == 0 {
            let mtu6 = out
                .and_then(|l| rtnl::dev_sysctl("ipv6", &l.name, "mtu"))
                .and_then(|m| u32::try_from(m).ok());
            mtu = mtu6.map_or(IPV6_MIN_MTU, |m| m.max(IPV6_MIN_MTU));
        }
        mtu = mtu.min(IP_MAX_MTU);
        if u32::from(params.tot_len()) > mtu {
            params.set_mtu_result(mtu as u16);
            return Ok(BPF_FIB_LKUP_RET_FRAG_NEEDED);
        }
    }
    if nh.lwt {
        return Ok(BPF_FIB_LKUP_RET_UNSUPP_LWT);
    }
    let mut nh_addr = dst;
    if let Some(IpAddr::V6(g)) = nh.gateway {
        nh_addr = u128::from(g);
        params.set_ipv6(off::DST, nh_addr);
    }
    params.set_u32(off::TOS, res.route.priority);
    params.set_u32(off::IFINDEX, nh.ifindex);
    if flags & BPF_FIB_LOOKUP_SRC != 0 {
        let src = match res.route.prefsrc {
            Some(IpAddr::V6(p)) => u128::from(p),
            _ => ipv6_select_saddr(nl, nh.ifindex, dst)?.ok_or(BPF_FIB_LKUP_RET_NO_SRC_ADDR)?,
        };
        params.set_ipv6(off::SRC, src);
    }
    if flags & BPF_FIB_LOOKUP_SKIP_NEIGH == 0 {
        set_macs(
            nl,
            params,
            &links,
            nh.ifindex,
            IpAddr::V6(Ipv6Addr::from(nh_addr)),
        )?;
    }
    Ok(params.set_fwd_params(mtu))
}

/// The scope of an IPv6 address for source selection: 1 loopback, 2 link, 14 global.
fn ipv6_scope(a: u128) -> u8 {
    if a == 1 {
        1
    } else if a >> 118 == 0xfe80 >> 6 {
        2
    } else if a >> 120 == 0xff {
        ((a >> 112) & 0xf) as u8
    } else {
        14
    }
}

/// A subset of `ipv6_dev_get_saddr`: among usable addresses (not tentative) whose scope
/// reaches `dst`'s, the non-deprecated ones first, then those on `ifindex`, then the
/// longest prefix in common with `dst`.
fn ipv6_select_saddr(nl: &mut State, ifindex: u32, dst: u128) -> Step<Option<u128>> {
    let addrs = step(nl.addresses(AddressFamily::Inet6))?;
    let want = ipv6_scope(dst);
    // `rev`: of equally good addresses the first listed wins, as in the kernel's walk.
    Ok(addrs
        .iter()
        .rev()
        .filter_map(|a| match a.addr {
            IpAddr::V6(x) if a.flags & libc::IFA_F_TENTATIVE == 0 => Some((a, u128::from(x))),
            _ => None,
        })
        .filter(|(_, x)| ipv6_scope(*x) >= want)
        .max_by_key(|(a, x)| {
            (
                *x == dst,
                a.flags & libc::IFA_F_DEPRECATED == 0,
                a.ifindex == ifindex,
                (x ^ dst).leading_zeros(),
            )
        })
        .map(|(_, x)| x))
}

#[cfg(test)]
mod tests;

//! The host's routing state as `bpf_fib_lookup` reads it, fetched over rtnetlink in the
//! calling thread's network namespace: links (`RTM_GETLINK`), FIB rules (`RTM_GETRULE`),
//! routes of every table (`RTM_GETROUTE`), neighbours (`RTM_GETNEIGH`) and addresses
//! (`RTM_GETADDR`), plus the per-device sysctls under `/proc/sys/net` (which resolve in the
//! opening thread's namespace too). Caching the dumps is `cache`'s business.
//!
//! Addresses of both families are `u128`s, IPv4 ones in the top 32 bits, so that one prefix
//! match serves both (see [`v4`]).

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteNextHop, RouteVia,
};
use netlink_packet_route::rule::{RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// `RTAX_MTU`, the route metric's index (a bit in the `RTAX_LOCK` mask).
const RTAX_MTU: u32 = 2;

/// An IPv4 address in the `u128` form: its 32 bits on top.
pub(crate) fn v4(a: u32) -> u128 {
    u128::from(a) << 96
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => v4(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Whether `a` lies in `prefix/len` (both in the `u128` form, `len` in bits from the top).
pub(crate) fn in_prefix(a: u128, prefix: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    (a ^ prefix) & mask == 0
}

/// A network device (`struct net_device`'s fields the lookup reads).
#[derive(Clone, Debug)]
pub struct Link {
    /// `dev->ifindex`.
    pub ifindex: u32,
    /// `dev->name`.
    pub name: String,
    /// `dev->mtu`.
    pub mtu: u32,
    /// `dev->dev_addr` (empty for devices without one).
    pub mac: Vec<u8>,
    /// `IFF_UP`.
    pub up: bool,
}

/// One nexthop of a route (`struct fib_nh_common`).
#[derive(Clone, Debug, Default)]
pub(crate) struct NextHop {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
    /// `RTNH_F_*`.
    pub flags: u32,
    /// A lightweight tunnel encapsulation (`nhc_lwtstate`).
    pub lwt: bool,
}

/// A route (`fib_alias` + `fib_info`, or a `fib6_info`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Route {
    pub table: u32,
    pub dst: u128,
    pub dst_len: u8,
    pub src: u128,
    pub src_len: u8,
    /// `rtm_tos` (the alias' DSCP, IPv4).
    pub tos: u8,
    /// `rtm_scope` (`fib_info->fib_scope`).
    pub scope: u8,
    /// `RTN_*`.
    pub kind: u8,
    pub priority: u32,
    pub prefsrc: Option<IpAddr>,
    /// `RTAX_MTU`, 0 when unset.
    pub mtu: u32,
    /// `RTAX_MTU` is locked (`mtu lock N`).
    pub mtu_locked: bool,
    pub nexthops: Vec<NextHop>,
}

/// A FIB rule (`struct fib_rule` and the family's match fields).
#[derive(Clone, Debug, Default)]
pub(crate) struct Rule {
    pub priority: u32,
    /// `FR_ACT_*`.
    pub action: u8,
    pub table: u32,
    pub goto: Option<u32>,
    pub iifname: Option<String>,
    pub oifname: Option<String>,
    pub mark: u32,
    pub mark_mask: u32,
    pub src: u128,
    pub src_len: u8,
    pub dst: u128,
    pub dst_len: u8,
    pub tos: u8,
    pub ip_proto: u8,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    pub uid: (u32, u32),
    pub invert: bool,
    pub suppress_prefixlen: i64,
    /// Selectors kbpf does not evaluate (l3mdev, tunnel id, interface group): such a rule
    /// never matches (see the module's limits).
    pub unsupported: bool,
}

/// A neighbour entry.
#[derive(Clone, Debug)]
pub(crate) struct Neigh {
    pub ifindex: u32,
    pub dst: IpAddr,
    /// `NUD_*`.
    pub state: u16,
    pub lladdr: Vec<u8>,
}

/// An interface address (`in_ifaddr` / `inet6_ifaddr`).
#[derive(Clone, Debug)]
pub(crate) struct IfAddr {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub scope: u8,
    /// `IFA_F_*`.
    pub flags: u32,
}

/// An rtnetlink socket in the calling thread's network namespace.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one dump request and collects the answers up to `NLMSG_DONE`.
    fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
        hdr.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(out),
                        NetlinkPayload::Error(e) => {
                            if let Some(code) = e.code {
                                return Err(io::Error::from_raw_os_error(-code.get()));
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => out.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .map(|l| {
                let mut link = Link {
                    ifindex: l.header.index,
                    name: String::new(),
                    mtu: 0,
                    mac: Vec::new(),
                    up: l.header.flags.contains(LinkFlags::Up),
                };
                for a in l.attributes {
                    match a {
                        LinkAttribute::IfName(n) => link.name = n,
                        LinkAttribute::Mtu(m) => link.mtu = m,
                        LinkAttribute::Address(a) => link.mac = a,
                        _ => {}
                    }
                }
                link
            })
            .collect())
    }

    pub fn rules(&mut self, family: AddressFamily) -> io::Result<Vec<Rule>> {
        let mut req = RuleMessage::default();
        req.header.family = family;
        let msgs = self.dump(RouteNetlinkMessage::GetRule(req))?;
        let mut rules: Vec<Rule> = msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(r),
                _ => None,
            })
            .map(|r| {
                let mut rule = Rule {
                    action: u8::from(r.header.action),
                    table: u32::from(r.header.table),
                    src_len: r.header.src_len,
                    dst_len: r.header.dst_len,
                    tos: r.header.tos,
                    invert: r.header.flags.contains(RuleFlags::Invert),
                    uid: (0, u32::MAX),
                    suppress_prefixlen: -1,
                    ..Rule::default()
                };
                let mut mark_mask = None;
                for a in r.attributes {
                    match a {
                        RuleAttribute::Priority(p) => rule.priority = p,
                        RuleAttribute::Table(t) => rule.table = t,
                        RuleAttribute::Goto(g) => rule.goto = Some(g),
                        RuleAttribute::Iifname(n) => rule.iifname = Some(n),
                        RuleAttribute::Oifname(n) => rule.oifname = Some(n),
                        RuleAttribute::FwMark(m) => rule.mark = m,
                        RuleAttribute::FwMask(m) => mark_mask = Some(m),
                        RuleAttribute::Source(a) => rule.src = addr_bits(a),
                        RuleAttribute::Destination(a) => rule.dst = addr_bits(a),
                        RuleAttribute::IpProtocol(p) => rule.ip_proto = u8::from(p),
                        RuleAttribute::SourcePortRange(p) => rule.sport = Some((p.start, p.end)),
                        RuleAttribute::DestinationPortRange(p) => {
                            rule.dport = Some((p.start, p.end))
                        }
                        RuleAttribute::UidRange(u) => rule.uid = (u.start, u.end),
                        RuleAttribute::SuppressPrefixLen(l) => {
                            // The kernel stores it as an int: u32::MAX is its -1.
                            rule.suppress_prefixlen = i64::from(l as i32)
                        }
                        RuleAttribute::SuppressIfGroup(g) => {
                            rule.unsupported |= g != u32::MAX;
                        }
                        RuleAttribute::L3MDev(on) => rule.unsupported |= on,
                        RuleAttribute::TunId(id) => rule.unsupported |= id != 0,
                        _ => {}
                    }
                }
                // fib_nl2rule: a mark without a mask matches all 32 bits.
                rule.mark_mask = mark_mask.unwrap_or(if rule.mark != 0 { u32::MAX } else { 0 });
                rule
            })
            .collect();
        // The kernel keeps rules sorted by priority; the dump follows that list already,
        // but sort stably so that the order never depends on it.
        rules.sort_by_key(|r| r.priority);
        Ok(rules)
    }

    pub fn routes(&mut self, family: AddressFamily) -> io::Result<Vec<Route>> {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(req))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .map(route_of)
            .collect())
    }

    pub fn neighbours(&mut self, family: AddressFamily) -> io::Result<Vec<Neigh>> {
        let mut req = NeighbourMessage::default();
        req.header.family = family;
        let msgs = self.dump(RouteNetlinkMessage::GetNeighbour(req))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .filter_map(|n| {
                let mut dst = None;
                let mut lladdr = Vec::new();
                for a in n.attributes {
                    match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                            dst = Some(IpAddr::V4(a))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                            dst = Some(IpAddr::V6(a))
                        }
                        NeighbourAttribute::LinkLayerAddress(l) => lladdr = l,
                        _ => {}
                    }
                }
                Some(Neigh {
                    ifindex: n.header.ifindex,
                    dst: dst?,
                    state: u16::from(n.header.state),
                    lladdr,
                })
            })
            .collect())
    }

    pub fn addresses(&mut self, family: AddressFamily) -> io::Result<Vec<IfAddr>> {
        let mut req = AddressMessage::default();
        req.header.family = family;
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(req))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .filter_map(|a| {
                let mut local = None;
                let mut address = None;
                let mut flags = u32::from(a.header.flags.bits());
                for attr in a.attributes {
                    match attr {
                        AddressAttribute::Local(l) => local = Some(l),
                        AddressAttribute::Address(l) => address = Some(l),
                        AddressAttribute::Flags(f) => flags = f.bits(),
                        _ => {}
                    }
                }
                Some(IfAddr {
                    ifindex: a.header.index,
                    addr: local.or(address)?,
                    prefix_len: a.header.prefix_len,
                    scope: u8::from(a.header.scope),
                    flags,
                })
            })
            .collect())
    }
}

fn nexthop_of(nh: RouteNextHop) -> NextHop {
    let mut out = NextHop {
        ifindex: nh.interface_index,
        flags: u32::from(nh.flags.bits()),
        ..NextHop::default()
    };
    for a in nh.attributes {
        match a {
            RouteAttribute::Gateway(g) => out.gateway = route_addr(&g),
            RouteAttribute::Via(RouteVia::Inet6(g)) => out.gateway = Some(IpAddr::V6(g)),
            RouteAttribute::Via(RouteVia::Inet(g)) => out.gateway = Some(IpAddr::V4(g)),
            RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => out.lwt = true,
            _ => {}
        }
    }
    out
}

fn route_of(r: RouteMessage) -> Route {
    let mut route = Route {
        table: u32::from(r.header.table),
        dst_len: r.header.destination_prefix_length,
        src_len: r.header.source_prefix_length,
        tos: r.header.tos,
        scope: u8::from(r.header.scope),
        kind: u8::from(r.header.kind),
        ..Route::default()
    };
    let mut single = NextHop {
        flags: r.header.flags.bits() & 0xff,
        ..NextHop::default()
    };
    let mut multipath = None;
    for a in r.attributes {
        match a {
            RouteAttribute::Table(t) => route.table = t,
            RouteAttribute::Destination(d) => {
                route.dst = route_addr(&d).map(addr_bits).unwrap_or(0)
            }
            RouteAttribute::Source(s) => route.src = route_addr(&s).map(addr_bits).unwrap_or(0),
            RouteAttribute::Priority(p) => route.priority = p,
            RouteAttribute::PrefSource(p) => route.prefsrc = route_addr(&p),
            RouteAttribute::Oif(i) => single.ifindex = i,
            RouteAttribute::Gateway(g) => single.gateway = route_addr(&g),
            RouteAttribute::Via(RouteVia::Inet6(g)) => single.gateway = Some(IpAddr::V6(g)),
            RouteAttribute::Via(RouteVia::Inet(g)) => single.gateway = Some(IpAddr::V4(g)),
            RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => single.lwt = true,
            RouteAttribute::MultiPath(hops) => {
                multipath = Some(hops.into_iter().map(nexthop_of).collect())
            }
            RouteAttribute::Metrics(ms) => {
                for m in ms {
                    match m {
                        RouteMetric::Mtu(v) => route.mtu = v,
                        RouteMetric::Lock(l) => {
                            route.mtu_locked = l & (1 << RTAX_MTU) != 0;
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    route.nexthops = multipath.unwrap_or_else(|| vec![single]);
    route
}

/// A per-device sysctl, `/proc/sys/net/{ipv4,ipv6}/conf/DEV/NAME`, or `None` when the file
/// is absent (no `in_device`/`inet6_dev`).
pub(crate) fn dev_sysctl(family: &str, dev: &str, name: &str) -> Option<i64> {
    if dev.is_empty() || dev.contains('/') || dev.contains("..") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/sys/net/{family}/conf/{dev}/{name}")).ok()?;
    text.trim().parse().ok()
}

/// A namespace-wide sysctl under `/proc/sys/net/`.
pub(crate) fn net_sysctl(path: &str) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/sys/net/{path}")).ok()?;
    text.trim().parse().ok()
}

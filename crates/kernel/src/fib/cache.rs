//! The routing state of one thread's network namespace, kept between lookups and thrown away
//! as soon as rtnetlink reports a change: a per-thread [`State`] holds the dumps
//! ([`super::rtnl`]) and a second socket subscribed to every group whose messages can change
//! a lookup's answer (links, addresses, routes, rules, neighbours, netconf). Each lookup first
//! drains that socket; any message (or a lost one, `ENOBUFS`) drops the dumps it concerns, so
//! a change made before the lookup is always seen — the kernel queues the notification before
//! the change's own request returns. A thread that moves to another namespace starts over.
//!
//! Cached too: a device's `forwarding` sysctl (a change sends `RTM_NEWNETCONF`). Not cached:
//! IPv6's per-device `mtu`, `ip_forward_use_pmtu` (no notification for either) and
//! `ignore_routes_with_linkdown` (read only for a link-down nexthop); they are read when used.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;

use netlink_packet_core::NetlinkBuffer;
use netlink_packet_route::AddressFamily;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use super::rtnl::{IfAddr, Link, Neigh, Route, Rtnl, Rule};

/// The rtnetlink groups whose notifications invalidate a dump.
const GROUPS: [u32; 10] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_NEIGH,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV4_RULE,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV6_ROUTE,
    libc::RTNLGRP_IPV6_RULE,
    libc::RTNLGRP_IPV4_NETCONF,
    libc::RTNLGRP_IPV6_NETCONF,
];

/// Dumps of one family.
#[derive(Default)]
struct Family {
    rules: Option<Rc<Vec<Rule>>>,
    routes: Option<Rc<Vec<Route>>>,
    neighbours: Option<Rc<Vec<Neigh>>>,
    addresses: Option<Rc<Vec<IfAddr>>>,
}

/// What has been dumped since the last change.
#[derive(Default)]
struct Dumps {
    links: Option<Rc<Vec<Link>>>,
    /// `forwarding` by (family directory, device name).
    forwarding: HashMap<(&'static str, String), Option<i64>>,
    v4: Family,
    v6: Family,
}

/// The cached routing state of the calling thread's namespace, with its sockets.
pub(crate) struct State {
    /// `(st_dev, st_ino)` of the namespace the sockets belong to.
    netns: (u64, u64),
    monitor: Socket,
    /// The notification buffer, kept so that a lookup allocates nothing.
    buf: Vec<u8>,
    rtnl: Rtnl,
    dumps: Dumps,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn current_netns() -> io::Result<(u64, u64)> {
    let m = std::fs::metadata("/proc/thread-self/ns/net")?;
    Ok((m.dev(), m.ino()))
}

impl State {
    fn open(netns: (u64, u64)) -> io::Result<State> {
        // Subscribe before the first dump, so that no change can fall between the two.
        let mut monitor = Socket::new(NETLINK_ROUTE)?;
        monitor.bind_auto()?;
        for g in GROUPS {
            monitor.add_membership(g)?;
        }
        monitor.set_non_blocking(true)?;
        Ok(State {
            netns,
            monitor,
            buf: vec![0; 64 * 1024],
            rtnl: Rtnl::open()?,
            dumps: Dumps::default(),
        })
    }

    /// Drops whatever the notifications received since the last call invalidate: a
    /// neighbour message only the neighbour dumps, anything else (or lost messages) all.
    fn refresh(&mut self) {
        let buf = &mut self.buf;
        // Bounded, so that a flood of notifications cannot hold a lookup forever: past the
        // bound everything is dropped anyway.
        for _ in 0..64 {
            match self.monitor.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
                Ok(n) => {
                    let mut data = &buf[..n.min(buf.len())];
                    while let Ok(msg) = NetlinkBuffer::new_checked(data) {
                        let len = (msg.length() as usize + 3) & !3;
                        match msg.message_type() {
                            libc::RTM_NEWNEIGH | libc::RTM_DELNEIGH => {
                                self.dumps.v4.neighbours = None;
                                self.dumps.v6.neighbours = None;
                            }
                            _ => self.dumps = Dumps::default(),
                        }
                        if len == 0 || len >= data.len() {
                            break;
                        }
                        data = &data[len..];
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ENOBUFS: notifications were lost.
                Err(_) => self.dumps = Dumps::default(),
            }
        }
        self.dumps = Dumps::default();
    }

    /// The family's dumps and the socket to fill them from, borrowed apart.
    fn family(&mut self, f: AddressFamily) -> (&mut Family, &mut Rtnl) {
        let family = if f == AddressFamily::Inet6 {
            &mut self.dumps.v6
        } else {
            &mut self.dumps.v4
        };
        (family, &mut self.rtnl)
    }

    /// The device's `forwarding` sysctl (`IN_DEV_FORWARD`, `idev->cnf.forwarding`).
    pub fn forwarding(&mut self, family: &'static str, dev: &str) -> Option<i64> {
        let key = (family, dev.to_owned());
        if let Some(v) = self.dumps.forwarding.get(&key) {
            return *v;
        }
        let v = super::rtnl::dev_sysctl(family, dev, "forwarding");
        self.dumps.forwarding.insert(key, v);
        v
    }

    pub fn links(&mut self) -> io::Result<Rc<Vec<Link>>> {
        cached(&mut self.dumps.links, || self.rtnl.links())
    }

    pub fn rules(&mut self, f: AddressFamily) -> io::Result<Rc<Vec<Rule>>> {
        let (dumps, rtnl) = self.family(f);
        cached(&mut dumps.rules, || rtnl.rules(f))
    }

    pub fn routes(&mut self, f: AddressFamily) -> io::Result<Rc<Vec<Route>>> {
        let (dumps, rtnl) = self.family(f);
        cached(&mut dumps.routes, || rtnl.routes(f))
    }

    pub fn neighbours(&mut self, f: AddressFamily) -> io::Result<Rc<Vec<Neigh>>> {
        let (dumps, rtnl) = self.family(f);
        cached(&mut dumps.neighbours, || rtnl.neighbours(f))
    }

    pub fn addresses(&mut self, f: AddressFamily) -> io::Result<Rc<Vec<IfAddr>>> {
        let (dumps, rtnl) = self.family(f);
        cached(&mut dumps.addresses, || rtnl.addresses(f))
    }
}

/// The dump in `slot`, fetched first when there is none since the last change.
fn cached<T>(
    slot: &mut Option<Rc<Vec<T>>>,
    fetch: impl FnOnce() -> io::Result<Vec<T>>,
) -> io::Result<Rc<Vec<T>>> {
    if let Some(v) = slot {
        return Ok(v.clone());
    }
    let v = Rc::new(fetch()?);
    *slot = Some(v.clone());
    Ok(v)
}

/// Runs `f` on the calling thread's [`State`], (re)opened when the thread has none or has
/// changed namespace, and refreshed from the notifications first.
pub(crate) fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> io::Result<T> {
    let netns = current_netns()?;
    // try_with: a helper called while the thread's locals are being destroyed gets an error.
    STATE
        .try_with(|cell| {
            let mut slot = cell
                .try_borrow_mut()
                .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
            if slot.as_ref().is_none_or(|s| s.netns != netns) {
                *slot = None;
                *slot = Some(State::open(netns)?);
            }
            let state = slot
                .as_mut()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))?;
            state.refresh();
            Ok(f(state))
        })
        .map_err(|_| io::Error::from_raw_os_error(libc::EIO))?
}

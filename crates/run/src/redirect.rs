//! Where a run sends its packet: the per-run state the kernel keeps in `struct
//! bpf_redirect_info` (filled by `bpf_redirect`, `bpf_xdp_redirect` and the maps'
//! `map_redirect`), and the tunnel metadata `bpf_skb_set_tunnel_key` attaches to an skb.
//!
//! The state is per thread (the kernel's is per CPU inside the `bpf_net_context` of the
//! running softirq) and reset before each packet, so a result never shows an earlier
//! packet's target. A run reports it ([`crate::PacketResult::redirect`],
//! [`crate::TestRunOutput::redirect`]) only when the program's verdict is the redirect
//! (`XDP_REDIRECT`, `TC_ACT_REDIRECT`): the kernel reads it for no other verdict.

use std::cell::Cell;

use kbpf_verifier::ProgType;

/// `BPF_F_INGRESS`: `bpf_redirect` to the device's ingress instead of its egress.
pub use kbpf_uapi::net::BPF_F_INGRESS;
/// `BPF_F_BROADCAST`: `bpf_redirect_map` on a devmap sends to every device in it.
pub const BPF_F_BROADCAST: u64 = 1 << 3;
/// `BPF_F_EXCLUDE_INGRESS`: with `BPF_F_BROADCAST`, not to the ingress device.
pub const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// `XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX`: the low bits of `bpf_redirect_map`'s flags,
/// the verdict on a missing key.
pub const XDP_ACTION_MASK: u64 = 3;

/// `XDP_ABORTED`.
pub const XDP_ABORTED: u64 = kbpf_uapi::net::XDP_ABORTED as u64;
/// `XDP_REDIRECT`.
pub const XDP_REDIRECT: u64 = kbpf_uapi::net::XDP_REDIRECT as u64;
/// `TC_ACT_SHOT`.
pub const TC_ACT_SHOT: u64 = kbpf_uapi::net::TC_ACT_SHOT as u64;
/// `TC_ACT_REDIRECT`.
pub const TC_ACT_REDIRECT: u64 = kbpf_uapi::net::TC_ACT_REDIRECT as u64;

/// What a redirect designates (`ri->map_type` with `ri->tgt_index` / `ri->tgt_value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RedirectTarget {
    /// `bpf_redirect` / `bpf_xdp_redirect`: an interface by index.
    Ifindex {
        /// `ri->tgt_index`.
        ifindex: u32,
    },
    /// A `DEVMAP` / `DEVMAP_HASH` entry: its key and the device it holds.
    DevMap {
        /// The map's id.
        map_id: u32,
        /// The key `bpf_redirect_map` was given.
        key: u32,
        /// `struct bpf_devmap_val.ifindex` of the entry.
        ifindex: u32,
    },
    /// `BPF_F_BROADCAST` over a devmap: every device in it (`BPF_F_EXCLUDE_INGRESS` in the
    /// flags: but the ingress one).
    DevMapBroadcast {
        /// The map's id.
        map_id: u32,
    },
    /// A `CPUMAP` entry: the CPU whose kthread gets the frame.
    CpuMap {
        /// The map's id.
        map_id: u32,
        /// The key, a CPU number.
        cpu: u32,
    },
    /// An `XSKMAP` entry: the AF_XDP socket bound to this queue.
    XskMap {
        /// The map's id.
        map_id: u32,
        /// The key, a queue index.
        queue: u32,
    },
}

/// A run's redirect: its target and the flags the kernel keeps (`ri->flags`: `BPF_F_INGRESS`
/// for `bpf_redirect`, `BPF_F_BROADCAST`/`BPF_F_EXCLUDE_INGRESS` for a devmap broadcast, 0
/// otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Redirect {
    /// Where to.
    pub target: RedirectTarget,
    /// `ri->flags`.
    pub flags: u64,
}

impl std::fmt::Display for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target {
            RedirectTarget::Ifindex { ifindex } => write!(f, "ifindex {ifindex}")?,
            RedirectTarget::DevMap {
                map_id,
                key,
                ifindex,
            } => write!(f, "devmap id {map_id} key {key} (ifindex {ifindex})")?,
            RedirectTarget::DevMapBroadcast { map_id } => {
                write!(f, "devmap id {map_id} broadcast")?
            }
            RedirectTarget::CpuMap { map_id, cpu } => write!(f, "cpumap id {map_id} cpu {cpu}")?,
            RedirectTarget::XskMap { map_id, queue } => {
                write!(f, "xskmap id {map_id} queue {queue}")?
            }
        }
        if self.flags & BPF_F_INGRESS != 0 && matches!(self.target, RedirectTarget::Ifindex { .. })
        {
            write!(f, " ingress")?;
        }
        if self.flags & BPF_F_EXCLUDE_INGRESS != 0 {
            write!(f, " exclude_ingress")?;
        }
        Ok(())
    }
}

/// The tunnel metadata of an skb (`struct ip_tunnel_info` as `bpf_skb_set_tunnel_key`
/// fills it, in the terms of `struct bpf_tunnel_key`). Metadata only: no packet byte
/// changes; the kernel's test run drops it with the skb, kbpf's reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TunnelKey {
    /// `tunnel_id` (the VNI of VXLAN/Geneve).
    pub tunnel_id: u32,
    /// Remote address: an IPv4 address in the first word (network byte order as the
    /// program stored it), or the IPv6 address when `ipv6`.
    pub remote: [u32; 4],
    /// Local address, the same way.
    pub local: [u32; 4],
    /// `BPF_F_TUNINFO_IPV6`.
    pub ipv6: bool,
    /// `tunnel_tos`.
    pub tos: u8,
    /// `tunnel_ttl`.
    pub ttl: u8,
    /// `tunnel_label` (IPv6 flow label, masked to 20 bits).
    pub label: u32,
    /// The helper's flags (`BPF_F_ZERO_CSUM_TX`, `BPF_F_DONT_FRAGMENT`, `BPF_F_SEQ_NUMBER`,
    /// `BPF_F_NO_TUNNEL_KEY`, `BPF_F_TUNINFO_IPV6`).
    pub flags: u64,
}

thread_local! {
    /// This thread's `bpf_redirect_info`.
    static RI: Cell<Option<Redirect>> = const { Cell::new(None) };
}

/// Starts a packet: no redirect recorded.
pub(crate) fn reset() {
    RI.with(|r| r.set(None));
}

/// Takes what the run recorded.
pub(crate) fn take() -> Option<Redirect> {
    RI.with(|r| r.take())
}

/// Records a redirect (`None`: a `bpf_redirect_map` miss clears it).
pub(crate) fn set(r: Option<Redirect>) {
    RI.with(|c| c.set(r));
}

/// The redirect a run of a `prog_type` program reports: what it recorded, if its verdict
/// `retval` is the redirect.
pub(crate) fn for_verdict(
    prog_type: ProgType,
    retval: u32,
    ri: Option<Redirect>,
) -> Option<Redirect> {
    let redirect = match prog_type {
        ProgType::Xdp => XDP_REDIRECT,
        ProgType::SchedCls | ProgType::SchedAct => TC_ACT_REDIRECT,
        _ => return None,
    };
    (retval as u64 == redirect).then_some(ri).flatten()
}

/// `bpf_redirect(ifindex, flags)` of tc programs: only `BPF_F_INGRESS` may be set (else
/// `TC_ACT_SHOT`); records the interface, returns `TC_ACT_REDIRECT`.
pub(crate) unsafe extern "C" fn bpf_redirect(
    ifindex: u64,
    flags: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    if flags & !BPF_F_INGRESS != 0 {
        return TC_ACT_SHOT;
    }
    set(Some(Redirect {
        target: RedirectTarget::Ifindex {
            ifindex: ifindex as u32,
        },
        flags,
    }));
    TC_ACT_REDIRECT
}

/// `bpf_xdp_redirect(ifindex, flags)`, XDP's `bpf_redirect`: no flags (else `XDP_ABORTED`);
/// records the interface, returns `XDP_REDIRECT`.
pub(crate) unsafe extern "C" fn bpf_xdp_redirect(
    ifindex: u64,
    flags: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    if flags != 0 {
        return XDP_ABORTED;
    }
    set(Some(Redirect {
        target: RedirectTarget::Ifindex {
            ifindex: ifindex as u32,
        },
        flags: 0,
    }));
    XDP_REDIRECT
}

/// `__bpf_xdp_redirect_map` on a redirect map: flags outside the verdict bits and
/// `flag_mask` abort; a missing key (without `BPF_F_BROADCAST`) clears the state and returns
/// the verdict in the low bits of `flags`; a found entry (or a devmap broadcast) is recorded
/// and the verdict is `XDP_REDIRECT`.
///
/// # Safety
/// `map` is the raw pointer of a live DEVMAP, DEVMAP_HASH or CPUMAP (verifier-checked).
unsafe fn redirect_map(map: u64, key: u64, flags: u64, flag_mask: u64) -> u64 {
    use kbpf_maps::devmap::RedirectEntry;
    use kbpf_maps::raw::redirect_lookup;
    if flags & !(XDP_ACTION_MASK | flag_mask) != 0 {
        return XDP_ABORTED;
    }
    let ptr = map as *mut std::ffi::c_void;
    // SAFETY: the caller's contract.
    let (map_id, entry) = unsafe {
        (
            (*(ptr as *const kbpf_maps::layout::BpfMap)).id,
            redirect_lookup(ptr, key),
        )
    };
    let broadcast = flags & BPF_F_BROADCAST != 0;
    let target = match entry {
        _ if broadcast => RedirectTarget::DevMapBroadcast { map_id },
        None => {
            set(None);
            return flags & XDP_ACTION_MASK;
        }
        Some(RedirectEntry::Dev { ifindex }) => RedirectTarget::DevMap {
            map_id,
            key: key as u32,
            ifindex,
        },
        Some(RedirectEntry::Cpu) => RedirectTarget::CpuMap {
            map_id,
            cpu: key as u32,
        },
    };
    set(Some(Redirect {
        target,
        flags: if broadcast { flags & flag_mask } else { 0 },
    }));
    XDP_REDIRECT
}

/// `dev_map_redirect`: `bpf_redirect_map` on a DEVMAP (`BPF_F_BROADCAST`,
/// `BPF_F_EXCLUDE_INGRESS` allowed).
pub(crate) unsafe extern "C" fn dev_map_redirect(
    map: u64,
    key: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the rewrite calls it only for a DEVMAP (verifier-checked).
    unsafe { redirect_map(map, key, flags, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) }
}

/// `dev_hash_map_redirect`: the same on a DEVMAP_HASH.
pub(crate) unsafe extern "C" fn dev_hash_map_redirect(
    map: u64,
    key: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    std::hint::black_box("dev_hash_map_redirect");
    // SAFETY: the rewrite calls it only for a DEVMAP_HASH (verifier-checked).
    unsafe { redirect_map(map, key, flags, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) }
}

/// `cpu_map_redirect`: on a CPUMAP (no flags but the verdict bits).
pub(crate) unsafe extern "C" fn cpu_map_redirect(
    map: u64,
    key: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the rewrite calls it only for a CPUMAP (verifier-checked).
    unsafe { redirect_map(map, key, flags, 0) }
}

/// `xsk_map_redirect`: on an XSKMAP, whose slots hold no socket in kbpf: every key misses
/// (no flags but the verdict bits).
pub(crate) unsafe extern "C" fn xsk_map_redirect(
    _map: u64,
    _key: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    if flags & !XDP_ACTION_MASK != 0 {
        return XDP_ABORTED;
    }
    set(None);
    flags & XDP_ACTION_MASK
}

/// `bpf_xdp_redirect_map`, the generic helper a call site reached by several maps keeps:
/// `map->ops->map_redirect` by the map's type. An XSKMAP has no sockets in kbpf: every key
/// misses.
pub(crate) unsafe extern "C" fn bpf_xdp_redirect_map(
    map: u64,
    key: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    use kbpf_maps::devmap::{BPF_MAP_TYPE_CPUMAP, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH};
    // SAFETY: the verifier checked `map` as a redirect map (DEVMAP, DEVMAP_HASH, CPUMAP or
    // XSKMAP).
    let t = unsafe { (*(map as *const kbpf_maps::layout::BpfMap)).map_type };
    match t {
        // SAFETY: as above, by type.
        BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH => unsafe {
            redirect_map(map, key, flags, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS)
        },
        // SAFETY: as above.
        BPF_MAP_TYPE_CPUMAP => unsafe { redirect_map(map, key, flags, 0) },
        // SAFETY: no pointer is read.
        _ => unsafe { xsk_map_redirect(map, key, flags, 0, 0) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_redirect_takes_only_the_ingress_flag() {
        reset();
        // SAFETY: plain integer arguments.
        assert_eq!(unsafe { bpf_redirect(5, 2, 0, 0, 0) }, TC_ACT_SHOT);
        assert_eq!(take(), None);
        // SAFETY: as above.
        assert_eq!(
            unsafe { bpf_redirect(5, BPF_F_INGRESS, 0, 0, 0) },
            TC_ACT_REDIRECT
        );
        let r = take().expect("recorded");
        assert_eq!(r.target, RedirectTarget::Ifindex { ifindex: 5 });
        assert_eq!(r.to_string(), "ifindex 5 ingress");
    }

    #[test]
    fn redirect_map_records_hits_and_answers_misses_with_the_low_flag_bits() {
        use kbpf_maps::{Map, MapAttr, MapType};
        let d = Map::create(
            &MapAttr::new(MapType::from_raw(14), 4, 4, 4).name("d"),
            None,
        )
        .unwrap();
        d.update_elem(&2u32.to_ne_bytes(), &1u32.to_ne_bytes(), 0)
            .unwrap();
        let p = d.as_ptr() as u64;
        reset();
        // SAFETY: a live devmap.
        unsafe {
            assert_eq!(dev_map_redirect(p, 2, 0, 0, 0), XDP_REDIRECT);
            let r = take().expect("hit recorded");
            assert_eq!(
                r.target,
                RedirectTarget::DevMap {
                    map_id: d.id(),
                    key: 2,
                    ifindex: 1
                }
            );
            assert_eq!(
                dev_map_redirect(p, 3, 2, 0, 0),
                2,
                "miss: XDP_PASS from the flags"
            );
            assert_eq!(take(), None);
            assert_eq!(
                dev_map_redirect(p, 2, 1 << 5, 0, 0),
                XDP_ABORTED,
                "unknown flag"
            );
            assert_eq!(
                dev_map_redirect(p, 3, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS, 0, 0),
                XDP_REDIRECT
            );
            assert_eq!(
                take().map(|r| r.target),
                Some(RedirectTarget::DevMapBroadcast { map_id: d.id() })
            );
            assert_eq!(bpf_xdp_redirect_map(p, 2, 0, 0, 0), XDP_REDIRECT);
        }
    }

    #[test]
    fn xdp_redirect_refuses_every_flag() {
        reset();
        // SAFETY: plain integer arguments.
        assert_eq!(unsafe { bpf_xdp_redirect(3, 1, 0, 0, 0) }, XDP_ABORTED);
        assert_eq!(take(), None);
        // SAFETY: as above.
        assert_eq!(unsafe { bpf_xdp_redirect(3, 0, 0, 0, 0) }, XDP_REDIRECT);
        let r = take();
        assert_eq!(for_verdict(ProgType::Xdp, 4, r), r);
        assert_eq!(for_verdict(ProgType::Xdp, 2, r), None);
    }
}

//! The control plane of Katran's tester: `KatranLb` as `KatranTestProvision` drives it
//! (VIP and real numbering, flags, Maglev rings written as deltas, QUIC server ids, the
//! default MAC). [`Lb`] records its map writes as [`Op`]s, which [`apply`] replays on a
//! [`Sink`] (kbpf's maps or the kernel's), so one control-plane history provisions every
//! datapath identically, phase after phase.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::hash::{Endpoint, folly_ip_hash, maglev_ring};

/// `RING_SIZE` (and `kLbDefaultChRingSize`).
pub const RING_SIZE: u32 = 65537;
/// `kDefaultMac` of the tester.
pub const DEFAULT_MAC: [u8; 6] = [0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xAF];
/// `kLocalMac` of the tester.
pub const LOCAL_MAC: [u8; 6] = [0x00, 0xFF, 0xDE, 0xAD, 0xBE, 0xAF];
/// `F_IPV6` of `real_definition.flags`.
pub const F_IPV6: u8 = 1;
/// Protocols.
pub const UDP: u8 = 17;
/// TCP.
pub const TCP: u8 = 6;
/// VIP flags (`KatranTestProvision.h`).
pub const K_BYPASS_LRU: u32 = 2;
/// `kQuicVip`.
pub const K_QUIC_VIP: u32 = 4;
/// `kDportHash`.
pub const K_DPORT_HASH: u32 = 8;
/// `kSrcRouting`.
pub const K_SRC_ROUTING: u32 = 16;
/// `kLocalVip`.
pub const K_LOCAL_VIP: u32 = 32;
/// `kUdpStableRouting`.
pub const K_UDP_STABLE_ROUTING: u32 = 256;
/// `kUdpFlowMigration`.
pub const K_UDP_FLOW_MIGRATION: u32 = 512;

/// Where map writes go.
pub trait Sink {
    /// `BPF_MAP_UPDATE_ELEM` on the object's map `map`.
    fn update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String>;
    /// Marks real `real` down for the VIP `vip_key` in `vip_to_down_reals_map` (a
    /// `HASH_OF_MAPS`: an inner hash map is created for the VIP if it has none).
    fn down_real(&mut self, vip_key: &[u8], real: u32) -> Result<(), String>;
    /// Puts the balancer program into its own `subprograms[0]` (a `PROG_ARRAY`).
    fn set_recirculation(&mut self) -> Result<(), String>;
}

/// One map write of the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `BPF_MAP_UPDATE_ELEM(map, key, value)`.
    Update {
        /// Map name in the object.
        map: &'static str,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// [`Sink::set_recirculation`].
    Recirculation,
    /// [`Sink::down_real`].
    DownReal {
        /// `struct vip_definition`.
        vip: Vec<u8>,
        /// Real index.
        real: u32,
    },
}

/// Replays `ops` on `sink`.
pub fn apply<S: Sink + ?Sized>(sink: &mut S, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        match op {
            Op::Update { map, key, value } => sink.update(map, key, value)?,
            Op::DownReal { vip, real } => sink.down_real(vip, *real)?,
            Op::Recirculation => sink.set_recirculation()?,
        }
    }
    Ok(())
}

/// `struct vip_definition` (20 bytes).
pub fn vip_key(addr: IpAddr, port: u16, proto: u8) -> Vec<u8> {
    let mut k = vec![0u8; 20];
    match addr {
        IpAddr::V4(a) => k[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => k[..16].copy_from_slice(&a.octets()),
    }
    k[16..18].copy_from_slice(&port.to_be_bytes());
    k[18] = proto;
    k
}

/// `struct vip_lpm_key` of a CIDR VIP: the prefix length counts the 32 bits of port,
/// proto and pad before the address.
fn cidr_key(addr: &str, prefix: u32, port: u16, proto: u8) -> Result<Vec<u8>, String> {
    let IpAddr::V6(a) = ip(addr) else {
        return Err(format!("CIDR VIP {addr}: IPv6 only"));
    };
    let mut k = (32 + prefix).to_ne_bytes().to_vec();
    k.extend_from_slice(&port.to_be_bytes());
    k.extend_from_slice(&[proto, 0]);
    k.extend_from_slice(&a.octets());
    Ok(k)
}

/// `struct real_definition` (20 bytes).
pub fn real_value(addr: IpAddr, flags: u8) -> Vec<u8> {
    let mut v = vec![0u8; 20];
    match addr {
        IpAddr::V4(a) => v[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => v[..16].copy_from_slice(&a.octets()),
    }
    v[16] = flags;
    v
}

struct Vip {
    num: u32,
    flags: u32,
    /// real num → (weight, hash)
    reals: BTreeMap<u32, (u32, u64)>,
    ring: Vec<i64>,
}

struct Real {
    num: u32,
    flags: u8,
    refs: u32,
}

/// `KatranLb`'s bookkeeping, enough for the tester's provisioning.
pub struct Lb {
    ops: Vec<Op>,
    vips: HashMap<Vec<u8>, Vip>,
    next_vip: u32,
    reals: HashMap<IpAddr, Real>,
    next_real: u32,
    /// Numbers freed by `decreaseRefCountForReal`, reused after the never-used ones
    /// (`realNums_` is a deque: freed numbers go to its back).
    free_reals: Vec<u32>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("address {s}: {e}"))
}

impl Lb {
    /// A fresh control plane; writes the default MAC into `ctl_array`.
    pub fn new() -> Result<Lb, String> {
        let mut mac = vec![0u8; 8];
        mac[..6].copy_from_slice(&DEFAULT_MAC);
        Ok(Lb {
            ops: vec![Op::Update {
                map: "ctl_array",
                key: 0u32.to_ne_bytes().to_vec(),
                value: mac,
            }],
            vips: HashMap::new(),
            next_vip: 0,
            reals: HashMap::new(),
            next_real: 1,
            free_reals: Vec::new(),
        })
    }

    /// The writes recorded since the last call.
    pub fn take_ops(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.ops)
    }

    fn put(&mut self, map: &'static str, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.ops.push(Op::Update {
            map,
            key: key.to_vec(),
            value: value.to_vec(),
        });
        Ok(())
    }

    fn write_vip(&mut self, key: &[u8]) -> Result<(), String> {
        let v = &self.vips[key];
        let mut meta = Vec::with_capacity(8);
        meta.extend_from_slice(&v.flags.to_ne_bytes());
        meta.extend_from_slice(&v.num.to_ne_bytes());
        self.put("vip_map", key, &meta)
    }

    /// `addVip`.
    pub fn add_vip(&mut self, addr: &str, port: u16, proto: u8) -> Result<(), String> {
        let key = vip_key(ip(addr), port, proto);
        if self.vips.contains_key(&key) {
            return Ok(());
        }
        let num = self.next_vip;
        self.next_vip += 1;
        self.vips.insert(
            key.clone(),
            Vip {
                num,
                flags: 0,
                reals: BTreeMap::new(),
                ring: vec![-1; RING_SIZE as usize],
            },
        );
        self.write_vip(&key)
    }

    /// `modifyVip(vip, flag)` (set).
    pub fn modify_vip(
        &mut self,
        addr: &str,
        port: u16,
        proto: u8,
        flag: u32,
    ) -> Result<(), String> {
        let key = vip_key(ip(addr), port, proto);
        self.vips.get_mut(&key).ok_or("no such VIP")?.flags |= flag;
        self.write_vip(&key)
    }

    /// `increaseRefCountForReal`: the real's number, allocated (and `reals` written) on
    /// first use.
    fn real_num(&mut self, addr: IpAddr) -> Result<u32, String> {
        if let Some(r) = self.reals.get_mut(&addr) {
            r.refs += 1;
            return Ok(r.num);
        }
        let num = if self.free_reals.is_empty() {
            let n = self.next_real;
            self.next_real += 1;
            n
        } else {
            self.free_reals.remove(0)
        };
        let flags = if addr.is_ipv6() { F_IPV6 } else { 0 };
        self.reals.insert(
            addr,
            Real {
                num,
                flags,
                refs: 1,
            },
        );
        self.put("reals", &num.to_ne_bytes(), &real_value(addr, flags))?;
        Ok(num)
    }

    /// `addVip` of a CIDR VIP (`cidrVipPrefixLen`, IPv6): `vip_lpm_map[{prefix + 32,
    /// port, proto, addr}] = vip_meta`, a VIP number and ring as any VIP.
    pub fn add_cidr_vip(
        &mut self,
        addr: &str,
        prefix: u32,
        port: u16,
        proto: u8,
    ) -> Result<(), String> {
        let key = cidr_key(addr, prefix, port, proto)?;
        let num = self.next_vip;
        self.next_vip += 1;
        self.vips.insert(
            key.clone(),
            Vip {
                num,
                flags: 0,
                reals: BTreeMap::new(),
                ring: vec![-1; RING_SIZE as usize],
            },
        );
        let mut meta = Vec::with_capacity(8);
        meta.extend_from_slice(&0u32.to_ne_bytes());
        meta.extend_from_slice(&num.to_ne_bytes());
        self.put("vip_lpm_map", &key, &meta)
    }

    /// `addRealForVip` on a CIDR VIP.
    pub fn add_cidr_real(
        &mut self,
        addr: &str,
        prefix: u32,
        port: u16,
        proto: u8,
        real: &str,
    ) -> Result<(), String> {
        let key = cidr_key(addr, prefix, port, proto)?;
        self.add_real_key(key, real)
    }

    /// `addRealForVip` with weight 1 (`kDefaultWeight`): the ring delta is written.
    pub fn add_real(&mut self, addr: &str, port: u16, proto: u8, real: &str) -> Result<(), String> {
        self.add_real_key(vip_key(ip(addr), port, proto), real)
    }

    fn add_real_key(&mut self, key: Vec<u8>, real: &str) -> Result<(), String> {
        let raddr = ip(real);
        if !self.vips.contains_key(&key) {
            return Err(format!("no VIP with key {key:02x?}"));
        }
        let num = match self.reals.get(&raddr) {
            Some(r) if self.vips[&key].reals.contains_key(&r.num) => r.num,
            _ => self.real_num(raddr)?,
        };
        let vip = self.vips.get_mut(&key).ok_or("no such VIP")?;
        vip.reals.insert(num, (1, folly_ip_hash(raddr)));
        self.program_ring(&key)
    }

    /// `delRealForVip`: the ring is recomputed (unless no real is left, as Katran) and the
    /// real's reference dropped.
    pub fn del_real(&mut self, addr: &str, port: u16, proto: u8, real: &str) -> Result<(), String> {
        let key = vip_key(ip(addr), port, proto);
        let raddr = ip(real);
        let num = self.reals.get(&raddr).ok_or("no such real")?.num;
        let vip = self.vips.get_mut(&key).ok_or("no such VIP")?;
        if vip.reals.remove(&num).is_none() {
            return Ok(());
        }
        self.program_ring(&key)?;
        let r = self.reals.get_mut(&raddr).expect("real");
        r.refs -= 1;
        if r.refs == 0 {
            self.reals.remove(&raddr);
            self.free_reals.push(num);
        }
        Ok(())
    }

    fn program_ring(&mut self, key: &[u8]) -> Result<(), String> {
        let vip = self.vips.get_mut(key).ok_or("no such VIP")?;
        let mut eps: Vec<Endpoint> = vip
            .reals
            .iter()
            .filter(|(_, (w, _))| *w != 0)
            .map(|(&num, &(weight, hash))| Endpoint { num, weight, hash })
            .collect();
        if eps.is_empty() {
            return Ok(());
        }
        // std::sort by hash (no equal hashes among distinct addresses here).
        eps.sort_by_key(|e| e.hash);
        let ring = maglev_ring(&eps, RING_SIZE);
        let base = vip.num * RING_SIZE;
        let mut writes = Vec::new();
        for (i, (&new, old)) in ring.iter().zip(vip.ring.iter_mut()).enumerate() {
            if new != *old {
                *old = new;
                writes.push((base + i as u32, new as u32));
            }
        }
        for (k, v) in writes {
            self.ops.push(Op::Update {
                map: "ch_rings",
                key: k.to_ne_bytes().to_vec(),
                value: v.to_ne_bytes().to_vec(),
            });
        }
        Ok(())
    }

    /// `modifyReal(addr, flag)` (set).
    pub fn modify_real(&mut self, real: &str, flag: u8) -> Result<(), String> {
        let addr = ip(real);
        let r = self.reals.get_mut(&addr).ok_or("no such real")?;
        r.flags |= flag;
        let (num, flags) = (r.num, r.flags);
        self.put("reals", &num.to_ne_bytes(), &real_value(addr, flags))
    }

    /// One `modifyQuicRealsMapping(ADD)` entry: `server_id_map[id] = real`.
    pub fn add_quic_mapping(&mut self, real: &str, id: u32) -> Result<(), String> {
        let num = self.real_num(ip(real))?;
        self.put("server_id_map", &id.to_ne_bytes(), &num.to_ne_bytes())
    }

    /// `setupGueEnvironment`: `pckt_srcs` gets the tester's `katranSrcV4`/`katranSrcV6`.
    pub fn setup_gue_environment(&mut self) -> Result<(), String> {
        self.put(
            "pckt_srcs",
            &0u32.to_ne_bytes(),
            &real_value(ip("10.0.13.37"), 0),
        )?;
        self.put(
            "pckt_srcs",
            &1u32.to_ne_bytes(),
            &real_value(ip("fc00:2307::1337"), F_IPV6),
        )
    }

    /// `addSrcRoutingRule({src}, dst)`: `lpm_src_v4`/`_v6[src] = real(dst)`.
    pub fn add_src_routing_rule(&mut self, src: &str, dst: &str) -> Result<(), String> {
        let num = self.real_num(ip(dst))?;
        let (net, len) = src.split_once('/').ok_or("not a CIDR")?;
        let len: u32 = len.parse().map_err(|e| format!("{src}: {e}"))?;
        let mut key = len.to_ne_bytes().to_vec();
        let map = match ip(net) {
            IpAddr::V4(a) => {
                key.extend_from_slice(&a.octets());
                "lpm_src_v4"
            }
            IpAddr::V6(a) => {
                key.extend_from_slice(&a.octets());
                "lpm_src_v6"
            }
        };
        self.put(map, &key, &num.to_ne_bytes())
    }

    /// `addInlineDecapDst` (flags 0) or `addEgressDecapDst` (`DECAP_EGRESS`).
    pub fn add_decap_dst(&mut self, dst: &str, flags: u32) -> Result<(), String> {
        let mut key = vec![0u8; 16];
        match ip(dst) {
            IpAddr::V4(a) => key[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => key.copy_from_slice(&a.octets()),
        }
        self.put("decap_dst", &key, &flags.to_ne_bytes())
    }

    /// The healthchecker's maps as `KatranLb` sets them with `enableHc` (`hc_ctrl_map`'s main
    /// interface = `lo`, `hc_pckt_macs` = local and default MAC, `hc_pckt_srcs_map` = the
    /// tester's sources) and `addHealthcheckerDst(somark, dst)` for the tester's three.
    pub fn setup_hc(&mut self) -> Result<(), String> {
        self.put("hc_ctrl_map", &3u32.to_ne_bytes(), &1u32.to_ne_bytes())?;
        let mut local = LOCAL_MAC.to_vec();
        local.truncate(6);
        self.put("hc_pckt_macs", &0u32.to_ne_bytes(), &local)?;
        self.put("hc_pckt_macs", &1u32.to_ne_bytes(), &DEFAULT_MAC)?;
        self.put(
            "hc_pckt_srcs_map",
            &0u32.to_ne_bytes(),
            &real_value(ip("10.0.13.37"), 0),
        )?;
        self.put(
            "hc_pckt_srcs_map",
            &1u32.to_ne_bytes(),
            &real_value(ip("fc00:2307::1337"), F_IPV6),
        )?;
        for (mark, dst) in [(1u32, "10.0.0.1"), (2, "10.0.0.2"), (3, "fc00::1")] {
            let a = ip(dst);
            self.put(
                "hc_reals_map",
                &mark.to_ne_bytes(),
                &real_value(a, if a.is_ipv6() { F_IPV6 } else { 0 }),
            )?;
        }
        Ok(())
    }

    /// `enableRecirculation`: the balancer itself in `subprograms[RECIRCULATION_INDEX]`
    /// (inline-decap builds), so decapsulated packets run through it again.
    pub fn enable_recirculation(&mut self) {
        self.ops.push(Op::Recirculation);
    }

    /// `addDownRealToVipToDownRealsMap`.
    pub fn add_down_real(
        &mut self,
        addr: &str,
        port: u16,
        proto: u8,
        real: u32,
    ) -> Result<(), String> {
        let key = vip_key(ip(addr), port, proto);
        self.ops.push(Op::DownReal { vip: key, real });
        Ok(())
    }
}

const REALS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const REALS6: [&str; 3] = ["fc00::1", "fc00::2", "fc00::3"];
const K_REALS: [&str; 6] = [
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "fc00::1", "fc00::2", "fc00::3",
];

fn add_reals(lb: &mut Lb, vip: (&str, u16, u8), reals: &[&str]) -> Result<(), String> {
    for r in reals {
        lb.add_real(vip.0, vip.1, vip.2, r)?;
    }
    Ok(())
}

/// `addQuicMappings`.
pub fn add_quic_mappings(lb: &mut Lb) -> Result<(), String> {
    let ids = [1022u32, 1023, 1025, 1024, 1026, 1027];
    for (r, id) in K_REALS.iter().zip(ids) {
        lb.add_quic_mapping(r, id)?;
        lb.add_quic_mapping(r, 0x030000 | id)?;
    }
    Ok(())
}

/// `prepareLbData(lb, skipLru = false)`.
pub fn prepare_lb_data(lb: &mut Lb) -> Result<(), String> {
    let mut vip = ("10.200.1.1", 80u16, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    vip.2 = TCP;
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    vip = ("10.200.1.2", 0, TCP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    vip.0 = "10.200.1.4";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_DPORT_HASH)?;
    vip = ("10.200.1.3", 80, TCP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    vip.0 = "fc00:1::1";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    add_quic_mappings(lb)?;
    vip = ("10.200.1.5", 443, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_QUIC_VIP)?;
    add_reals(lb, vip, &REALS)?;
    vip.0 = "fc00:1::2";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_QUIC_VIP)?;
    add_reals(lb, vip, &REALS6)?;
    vip = ("10.200.1.6", 80, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_UDP_FLOW_MIGRATION)?;
    add_reals(lb, vip, &REALS)?;
    lb.add_down_real(vip.0, vip.1, vip.2, 1)?;
    // addHealthcheckerDst: hc_reals_map belongs to the healthchecking program.
    Ok(())
}

/// `prepareVipUninitializedLbData`.
pub fn prepare_vip_uninitialized_lb_data(lb: &mut Lb) -> Result<(), String> {
    lb.add_vip("10.200.1.99", 80, TCP)?;
    lb.add_vip("fc00:1::11", 80, UDP)
}

/// `prepareOptionalLbData`.
pub fn prepare_optional_lb_data(lb: &mut Lb) -> Result<(), String> {
    lb.modify_vip("10.200.1.1", 80, UDP, K_SRC_ROUTING)?;
    lb.modify_vip("fc00:1::1", 80, TCP, K_SRC_ROUTING)?;
    lb.add_src_routing_rule("192.168.0.0/17", "fc00::2307:1")?;
    lb.add_src_routing_rule("192.168.100.0/24", "fc00::2307:2")?;
    lb.add_src_routing_rule("fc00:2307::/32", "fc00::2307:3")?;
    lb.add_src_routing_rule("fc00:2307::/64", "fc00::2307:4")?;
    lb.add_src_routing_rule("fc00:2::/64", "fc00::2307:10")?;
    lb.add_decap_dst("fc00:1404::1", 0)?;
    let vip = ("10.200.1.6", 80, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_LOCAL_VIP)?;
    add_reals(lb, vip, &["10.0.0.6"])?;
    lb.modify_real("10.0.0.6", 2)
}

/// `prepareLbDataStableRt`.
pub fn prepare_lb_data_stable_rt(lb: &mut Lb) -> Result<(), String> {
    let mut vip = ("fc00:1::9", 80u16, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_UDP_STABLE_ROUTING)?;
    vip.0 = "10.200.1.90";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_UDP_STABLE_ROUTING)?;
    vip = ("10.200.1.2", 0, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    vip.0 = "10.200.1.4";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_DPORT_HASH)?;
    vip = ("10.200.1.3", 80, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    vip.0 = "fc00:1::1";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    add_quic_mappings(lb)?;
    vip = ("10.200.1.5", 443, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_QUIC_VIP)?;
    add_reals(lb, vip, &REALS)?;
    vip.0 = "fc00:1::2";
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_QUIC_VIP)?;
    add_reals(lb, vip, &REALS6)
}

/// `prepareLbDataXpopDecap`.
pub fn prepare_lb_data_xpop_decap(lb: &mut Lb) -> Result<(), String> {
    let mut vip = ("10.200.1.1", 80u16, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS)?;
    vip = ("fc00:1::1", 80, TCP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    vip = ("10.200.1.2", 80, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &REALS6)?;
    add_quic_mappings(lb)?;
    lb.add_decap_dst("fc00:1404::1", 0)
}

/// `prepareLbDataEgressDecap` (`DECAP_EGRESS`).
pub fn prepare_lb_data_egress_decap(lb: &mut Lb) -> Result<(), String> {
    lb.add_decap_dst("fc00:1405::1", 2)
}

/// `prepareUdpFlowMigrationTestData`.
pub fn prepare_udp_flow_migration_test_data(lb: &mut Lb) -> Result<(), String> {
    let vip = ("10.200.1.1", 80u16, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(vip.0, vip.1, vip.2, K_UDP_FLOW_MIGRATION)?;
    add_reals(lb, vip, &K_REALS)?;
    let vip = ("10.200.1.2", 80u16, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    lb.modify_vip(
        vip.0,
        vip.1,
        vip.2,
        K_UDP_FLOW_MIGRATION | K_UDP_STABLE_ROUTING,
    )?;
    add_reals(lb, vip, &K_REALS)?;
    add_quic_mappings(lb)?;
    let vip = ("10.200.1.3", 80u16, UDP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &K_REALS)?;
    let vip = ("10.200.1.4", 80u16, TCP);
    lb.add_vip(vip.0, vip.1, vip.2)?;
    add_reals(lb, vip, &K_REALS)
}

/// `setDownHostForUdpFlowMigration`.
pub fn set_down_host_for_udp_flow_migration(lb: &mut Lb) -> Result<(), String> {
    for vip in ["10.200.1.1", "10.200.1.2"] {
        lb.add_down_real(vip, 80, UDP, 2)?;
        lb.del_real(vip, 80, UDP, "10.0.0.2")?;
    }
    Ok(())
}

/// `prepareCidrVipLbData`.
pub fn prepare_cidr_vip_lb_data(lb: &mut Lb) -> Result<(), String> {
    for (addr, port, proto, reals) in [
        ("fc00:1::", 0u16, TCP, ["fc00::1", "fc00::2"]),
        ("fc00:2::", 443, TCP, ["fc00::3", "fc00::4"]),
        ("fc00:3::", 0, UDP, ["fc00::5", "fc00::6"]),
        ("fc00:4::", 443, UDP, ["fc00::7", "fc00::8"]),
    ] {
        lb.add_cidr_vip(addr, 96, port, proto)?;
        for r in reals {
            lb.add_cidr_real(addr, 96, port, proto, r)?;
        }
    }
    Ok(())
}

//! The XDP datapath `bpf/maglev.bpf.o` on the live kernel, checked against this crate's
//! tables: every rewritten packet must go to exactly the backend the Rust-built Maglev
//! table names for the flow's hash.
//!
//! Needs root, a working `bpf()`, bpffs at /sys/fs/bpf and `bpftool` (to load the ELF
//! object: kbpf has no loader yet). Otherwise the test prints `SKIP: <reason>` and
//! passes. Maps are then driven through the raw `bpf()` wrapper of `kbpf-kernel`.
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_kernel::consts::{BPF_ANY, BPF_F_INNER_MAP, BPF_MAP_TYPE_ARRAY};
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr};
use kbpf_maglev::abi::{
    BackendValue, BackendValue6, Config, CtKey, CtKey6, CtValue, ServiceKey, ServiceKey6, Stat,
    XDP_DROP, XDP_PASS, XDP_TX,
};
use kbpf_maglev::layout::{
    INNER_VALUE_SIZE, PackedTable, array_map_memory, cilium_blob_memory, u32_per_element_memory,
};
use kbpf_maglev::packet::{Flow, Flow6, IPPROTO_TCP, IPPROTO_UDP, with_ipv4_options};
use kbpf_maglev::{Backend, HashSeed, MaglevTable, OBJECT_PATH, build, flow_hash_v4, flow_hash_v6};

const HASH_SEED: u32 = 0x5eed_1234;

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if let Err(e) = kbpf_kernel::bpf_available() {
        return Some(format!("bpf() unavailable: {e}"));
    }
    match Command::new("bpftool").arg("version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "`bpftool version` failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return Some(format!("bpftool not runnable: {e}")),
    }
    let bpffs = std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[1] == "/sys/fs/bpf" && f[2] == "bpf"
            })
        })
        .unwrap_or(false);
    if !bpffs {
        return Some("no bpffs mounted at /sys/fs/bpf".into());
    }
    if !Path::new(OBJECT_PATH).is_file() {
        return Some(format!(
            "{OBJECT_PATH} missing (run crates/maglev/bpf/build.sh)"
        ));
    }
    None
}

/// The pin directories of one load; removed on drop, also when the test fails.
struct Pins {
    progs: PathBuf,
    maps: PathBuf,
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.progs);
        let _ = std::fs::remove_dir_all(&self.maps);
    }
}

struct Datapath {
    prog: KernelProg,
    services: KernelMap,
    backends: KernelMap,
    conntrack: KernelMap,
    services6: KernelMap,
    backends6: KernelMap,
    conntrack6: KernelMap,
    config: KernelMap,
    stats: KernelMap,
    _pins: Pins,
}

/// The key of a service in its outer map.
trait OuterKey: std::fmt::Debug {
    fn bytes(&self) -> Vec<u8>;
    /// `maglev_services` or `maglev_services6`.
    fn outer<'a>(&self, dp: &'a Datapath) -> &'a KernelMap;
}

impl OuterKey for ServiceKey {
    fn bytes(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }
    fn outer<'a>(&self, dp: &'a Datapath) -> &'a KernelMap {
        &dp.services
    }
}

impl OuterKey for ServiceKey6 {
    fn bytes(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }
    fn outer<'a>(&self, dp: &'a Datapath) -> &'a KernelMap {
        &dp.services6
    }
}

fn load() -> Datapath {
    // pid + a per-process counter: unique across concurrent test processes and threads.
    static LOADS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let unique = format!("{}_{n}", std::process::id());
    let pins = Pins {
        progs: PathBuf::from(format!("/sys/fs/bpf/kbpf_maglev_{unique}")),
        maps: PathBuf::from(format!("/sys/fs/bpf/kbpf_maglev_{unique}_maps")),
    };
    let out = Command::new("bpftool")
        .args(["prog", "loadall", OBJECT_PATH])
        .arg(&pins.progs)
        .arg("pinmaps")
        .arg(&pins.maps)
        .output()
        .expect("run bpftool");
    assert!(
        out.status.success(),
        "bpftool prog loadall {OBJECT_PATH} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let map = |name: &str| {
        KernelMap::from_pinned(pins.maps.join(name))
            .unwrap_or_else(|e| panic!("open pinned map {name}: {e}"))
    };
    Datapath {
        prog: KernelProg::from_pinned(pins.progs.join("maglev_xdp"))
            .expect("open pinned program maglev_xdp"),
        services: map("maglev_services"),
        backends: map("maglev_backends"),
        conntrack: map("maglev_conntrack"),
        services6: map("maglev_services6"),
        backends6: map("maglev_backends6"),
        conntrack6: map("maglev_conntrack6"),
        config: map("maglev_config"),
        stats: map("maglev_stats"),
        _pins: pins,
    }
}

/// `memlock:` of a map fd, from /proc/self/fdinfo.
fn fdinfo_memlock(fd: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).expect("read fdinfo");
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("memlock line in fdinfo")
}

/// A service: its key, its backends' global ids and the Rust-side tables.
struct Service<K> {
    key: K,
    ids: Vec<u32>,
    table: MaglevTable,
    packed: PackedTable,
}

impl<K: OuterKey> Service<K> {
    fn new(key: K, backends: Vec<Backend>, ids: Vec<u32>, m: u32) -> Service<K> {
        let table = build(&backends, m, HashSeed::default()).expect("build table");
        let packed = PackedTable::pack(&table, &ids).expect("pack table");
        Service {
            key,
            ids,
            table,
            packed,
        }
    }

    /// A fresh inner array holding the packed table; checks the kernel's memlock.
    fn inner_map(&self, name: &str) -> KernelMap {
        let attr = MapCreateAttr::new(
            BPF_MAP_TYPE_ARRAY,
            4,
            INNER_VALUE_SIZE,
            self.packed.max_entries(),
        )
        .flags(BPF_F_INNER_MAP)
        .name(name);
        let inner =
            KernelMap::create(&attr).unwrap_or_else(|e| panic!("create inner map {name}: {e}"));
        for (i, e) in self.packed.elements().iter().enumerate() {
            inner
                .update(&(i as u32).to_ne_bytes(), e, BPF_ANY)
                .unwrap_or_else(|err| panic!("{name}[{i}]: {err}"));
        }
        assert_eq!(
            fdinfo_memlock(inner.as_raw_fd()),
            self.packed.memory_bytes(),
            "kernel memlock of {name} (max_entries {}) vs layout::array_map_memory",
            self.packed.max_entries()
        );
        inner
    }

    fn install(&self, dp: &Datapath, name: &str) {
        let inner = self.inner_map(name);
        self.key
            .outer(dp)
            .update_fd(&self.key.bytes(), inner.as_fd(), BPF_ANY)
            .unwrap_or_else(|e| panic!("insert {name} into maglev_services: {e}"));
        // Our fd closes here; the outer map keeps the inner map alive.
    }

    /// The backend id the Rust table picks for `flow`.
    fn expected_id(&self, flow: &Flow) -> u32 {
        self.id_for_hash(flow_hash_v4(
            flow.saddr,
            flow.sport,
            flow.dport,
            flow.protocol,
            HASH_SEED,
        ))
    }

    /// The backend id the Rust table picks for a flow hash.
    fn id_for_hash(&self, hash: u32) -> u32 {
        let idx = self.table.lookup(hash).expect("table has backends");
        let id = self.ids[idx as usize];
        assert_eq!(
            self.packed.backend_for_hash(hash),
            Some(id),
            "packed table agrees with table"
        );
        id
    }
}

fn run(dp: &Datapath, frame: &[u8]) -> (u32, Vec<u8>) {
    let r = dp
        .prog
        .test_run(frame, frame.len() + 256, None, 1)
        .expect("BPF_PROG_TEST_RUN");
    (r.retval, r.data_out)
}

fn ct_entry(dp: &Datapath, flow: &Flow) -> Option<CtValue> {
    let key = CtKey {
        saddr: flow.saddr,
        daddr: flow.daddr,
        sport: flow.sport,
        dport: flow.dport,
        protocol: flow.protocol,
    };
    let v = dp.conntrack.lookup(&key.to_bytes()).ok()?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&v);
    Some(CtValue::from_bytes(b))
}

fn stat(dp: &Datapath, s: Stat) -> u64 {
    let v = dp
        .stats
        .lookup(&(s as u32).to_ne_bytes())
        .expect("stats lookup");
    let mut b = [0u8; 8];
    b.copy_from_slice(&v);
    u64::from_ne_bytes(b)
}

/// Sends `flow` and checks the rewrite towards the expected backend.
fn check_flow(
    dp: &Datapath,
    flow: &Flow,
    id: u32,
    backend: BackendValue,
    payload: &[u8],
    udp_no_csum: bool,
) {
    let (retval, out) = run(dp, &flow.frame_with(payload, udp_no_csum));
    assert_eq!(retval, XDP_TX, "{flow:?}: verdict");
    let want = flow.dnat_frame(payload, udp_no_csum, backend.addr, backend.port);
    assert_eq!(
        out, want,
        "{flow:?}: rewritten frame for backend {id} {backend:?}"
    );
    let ct = ct_entry(dp, flow).unwrap_or_else(|| panic!("{flow:?}: no conntrack entry"));
    assert_eq!(ct.backend_id, id, "{flow:?}: conntrack backend");
    assert_eq!(
        ct.flow_hash,
        flow_hash_v4(flow.saddr, flow.sport, flow.dport, flow.protocol, HASH_SEED),
        "{flow:?}: the program's jhash equals kbpf_maglev::flow_hash_v4"
    );
}

#[test]
fn xdp_maglev_datapath_matches_rust_tables() {
    if let Some(reason) = skip_reason() {
        println!("SKIP: kernel_datapath: {reason}");
        return;
    }
    let dp = load();
    dp.config
        .update(
            &0u32.to_ne_bytes(),
            &Config {
                hash_seed: HASH_SEED,
            }
            .to_bytes(),
            BPF_ANY,
        )
        .expect("set hash seed");

    // Backends: global ids 1..=12; even ids keep the service port, odd ones map to 8080.
    let mut backend_values = BTreeMap::new();
    for id in 1u32..=12 {
        let v = BackendValue {
            addr: [192, 168, 1, id as u8],
            port: if id % 2 == 1 { 8080 } else { 0 },
        };
        dp.backends
            .update(&id.to_ne_bytes(), &v.to_bytes(), BPF_ANY)
            .expect("backend");
        backend_values.insert(id, v);
    }
    let names = |ids: &[u32]| -> Vec<Backend> {
        ids.iter()
            .map(|id| Backend::unweighted(format!("192.168.1.{id}")))
            .collect()
    };

    // Three services with three different inner-array sizes.
    let web = Service::new(
        ServiceKey {
            vip: [10, 0, 0, 1],
            port: 80,
            protocol: IPPROTO_TCP,
        },
        names(&[1, 2, 3]),
        vec![1, 2, 3],
        251,
    );
    let mut dns_backends = names(&[4, 5, 6, 7, 8]);
    for (i, b) in dns_backends.iter_mut().enumerate() {
        b.weight = 1 + i as u32; // 1..5
    }
    let dns = Service::new(
        ServiceKey {
            vip: [10, 0, 0, 2],
            port: 53,
            protocol: IPPROTO_UDP,
        },
        dns_backends,
        vec![4, 5, 6, 7, 8],
        1021,
    );
    let tls = Service::new(
        ServiceKey {
            vip: [10, 0, 0, 3],
            port: 443,
            protocol: IPPROTO_TCP,
        },
        names(&[9, 10, 11, 12]),
        vec![9, 10, 11, 12],
        2039,
    );
    let sizes: BTreeSet<u32> = [&web, &dns, &tls]
        .iter()
        .map(|s| s.packed.max_entries())
        .collect();
    assert_eq!(sizes.len(), 3, "inner arrays of three different sizes");
    web.install(&dp, "mg_web");
    dns.install(&dp, "mg_dns");
    tls.install(&dp, "mg_tls");

    // New flows: each lands on exactly the Rust table's backend.
    let client = |i: u32| [172, 16, (i >> 8) as u8, i as u8];
    let mut flows_by_service: Vec<(&Service<ServiceKey>, Vec<Flow>)> = Vec::new();
    for (si, svc) in [&web, &dns, &tls].into_iter().enumerate() {
        let mut flows = Vec::new();
        let mut hit = BTreeSet::new();
        for i in 0..80u32 {
            let flow = Flow {
                saddr: client(i * 7 + si as u32),
                daddr: svc.key.vip,
                sport: 10000 + (i as u16) * 13,
                dport: svc.key.port,
                protocol: svc.key.protocol,
            };
            let id = svc.expected_id(&flow);
            // Every fourth UDP flow without a checksum: it must stay 0.
            let no_csum = flow.protocol == IPPROTO_UDP && i % 4 == 0;
            check_flow(&dp, &flow, id, backend_values[&id], b"payload!", no_csum);
            hit.insert(id);
            flows.push(flow);
        }
        assert_eq!(
            hit.len(),
            svc.ids.len(),
            "80 flows reach every backend of {:?}",
            svc.key
        );
        flows_by_service.push((svc, flows));
    }
    let tx_after_new = stat(&dp, Stat::Tx);
    assert_eq!(tx_after_new, 240);
    assert_eq!(stat(&dp, Stat::CtMiss), 240);
    assert_eq!(stat(&dp, Stat::CtHit), 0);

    // IPv4 options move the L4 header: 4 and 40 bytes of options (NOPs + EOL).
    for (svc, flows) in &flows_by_service {
        for (k, opt_len) in [4usize, 40].into_iter().enumerate() {
            // New flows (a port no other flow uses), so the Maglev path runs too.
            let flow = Flow {
                sport: flows[k].sport + 1,
                ..flows[k]
            };
            let id = svc.expected_id(&flow);
            let v = backend_values[&id];
            let mut options = vec![1u8; opt_len];
            options[opt_len - 1] = 0;
            let (retval, out) = run(&dp, &with_ipv4_options(&flow.frame(b"opt"), &options));
            assert_eq!(
                retval, XDP_TX,
                "{flow:?} with {opt_len} bytes of IP options"
            );
            let want = with_ipv4_options(&flow.dnat_frame(b"opt", false, v.addr, v.port), &options);
            assert_eq!(out, want, "{flow:?} with {opt_len} bytes of IP options");
        }
    }
    let tx_with_options = stat(&dp, Stat::Tx);
    assert_eq!(tx_with_options, 246);

    // Traffic for no service passes untouched.
    let unknown = [
        Flow {
            saddr: [172, 16, 0, 1],
            daddr: [10, 0, 0, 9],
            sport: 1000,
            dport: 80,
            protocol: IPPROTO_TCP,
        },
        Flow {
            saddr: [172, 16, 0, 1],
            daddr: [10, 0, 0, 1],
            sport: 1000,
            dport: 81,
            protocol: IPPROTO_TCP,
        },
        Flow {
            saddr: [172, 16, 0, 1],
            daddr: [10, 0, 0, 1],
            sport: 1000,
            dport: 80,
            protocol: IPPROTO_UDP,
        },
        Flow {
            saddr: [172, 16, 0, 1],
            daddr: [10, 0, 0, 1],
            sport: 0,
            dport: 0,
            protocol: 1,
        },
    ];
    for flow in &unknown {
        let frame = flow.frame(b"xyz");
        let (retval, out) = run(&dp, &frame);
        assert_eq!(retval, XDP_PASS, "{flow:?}");
        assert_eq!(out, frame, "{flow:?}: untouched");
    }
    let mut arp = web.key.vip.to_vec();
    arp.resize(60, 0);
    let mut arp_frame = vec![0xffu8; 12];
    arp_frame.extend_from_slice(&0x0806u16.to_be_bytes());
    arp_frame.extend_from_slice(&arp);
    assert_eq!(run(&dp, &arp_frame).0, XDP_PASS, "ARP");
    // Truncated TCP header for a known service: pass, do not read past the end.
    let full = flows_by_service[0].1[0].frame(b"");
    assert_eq!(
        run(&dp, &full[..full.len() - 4]).0,
        XDP_PASS,
        "truncated TCP"
    );
    // A fragment of a known service: pass.
    let mut frag = full.clone();
    frag[20] |= 0x20; // MF
    assert_eq!(run(&dp, &frag).0, XDP_PASS, "fragment");

    // Conntrack stickiness: swap in a new web table without backend `moved` (still
    // alive in maglev_backends); the flows that were on it keep it.
    let (_, web_flows) = &flows_by_service[0];
    let moved = web.expected_id(&web_flows[0]);
    let survivors: Vec<u32> = web.ids.iter().copied().filter(|&id| id != moved).collect();
    let web2 = Service::new(web.key, names(&survivors), survivors.clone(), 509);
    web2.install(&dp, "mg_web2");
    let mut sticky = 0;
    for flow in web_flows {
        let before = web.expected_id(flow);
        check_flow(&dp, flow, before, backend_values[&before], b"again", false);
        if before == moved {
            sticky += 1;
        }
    }
    assert!(sticky > 0, "some flows were on the removed backend");
    assert_eq!(stat(&dp, Stat::CtHit), web_flows.len() as u64);
    // New flows follow the new table and never reach the removed backend.
    for i in 0..60u32 {
        let flow = Flow {
            saddr: [172, 17, 0, i as u8],
            daddr: web.key.vip,
            sport: 20000 + i as u16,
            dport: 80,
            protocol: IPPROTO_TCP,
        };
        let id = web2.expected_id(&flow);
        assert_ne!(id, moved);
        check_flow(&dp, &flow, id, backend_values[&id], b"new", false);
    }

    // The backend goes away: conntrack entries naming it are re-chosen by the new table.
    dp.backends
        .update(
            &moved.to_ne_bytes(),
            &BackendValue {
                addr: [0; 4],
                port: 0,
            }
            .to_bytes(),
            BPF_ANY,
        )
        .expect("remove backend");
    for flow in web_flows.iter().filter(|f| web.expected_id(f) == moved) {
        let id = web2.expected_id(flow);
        check_flow(&dp, flow, id, backend_values[&id], b"moved", false);
    }

    // A service whose backends are all drained drops.
    let drained = Service::new(
        ServiceKey {
            vip: [10, 0, 0, 4],
            port: 80,
            protocol: IPPROTO_TCP,
        },
        vec![Backend::new("gone", 0)],
        vec![1],
        251,
    );
    assert_eq!(drained.packed.max_entries(), 1);
    drained.install(&dp, "mg_drained");
    let flow = Flow {
        saddr: [172, 16, 9, 9],
        daddr: [10, 0, 0, 4],
        sport: 5,
        dport: 80,
        protocol: IPPROTO_TCP,
    };
    assert_eq!(run(&dp, &flow.frame(b"")).0, XDP_DROP, "no backend: drop");
    assert!(stat(&dp, Stat::Drop) >= 1);
    assert!(stat(&dp, Stat::Pass) >= 7);
}

#[test]
fn xdp_maglev_datapath_ipv6() {
    if let Some(reason) = skip_reason() {
        println!("SKIP: kernel_datapath (IPv6): {reason}");
        return;
    }
    let dp = load();
    dp.config
        .update(
            &0u32.to_ne_bytes(),
            &Config {
                hash_seed: HASH_SEED,
            }
            .to_bytes(),
            BPF_ANY,
        )
        .expect("set hash seed");
    let addr6 = |last: u16| {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[1] = 0x10;
        a[14..16].copy_from_slice(&last.to_be_bytes());
        a
    };
    let mut values = BTreeMap::new();
    for id in 1u32..=6 {
        let v = BackendValue6 {
            addr: addr6(0x100 + id as u16),
            port: if id % 2 == 0 { 8443 } else { 0 },
        };
        dp.backends6
            .update(&id.to_ne_bytes(), &v.to_bytes(), BPF_ANY)
            .expect("backend6");
        values.insert(id, v);
    }
    let names = |ids: &[u32]| -> Vec<Backend> {
        ids.iter()
            .map(|id| Backend::unweighted(format!("[fd10::{:x}]", 0x100 + id)))
            .collect()
    };
    let tcp = Service::new(
        ServiceKey6 {
            vip: addr6(1),
            port: 443,
            protocol: IPPROTO_TCP,
        },
        names(&[1, 2, 3, 4]),
        vec![1, 2, 3, 4],
        509,
    );
    let udp = Service::new(
        ServiceKey6 {
            vip: addr6(2),
            port: 53,
            protocol: IPPROTO_UDP,
        },
        names(&[5, 6]),
        vec![5, 6],
        4093,
    );
    tcp.install(&dp, "mg6_tcp");
    udp.install(&dp, "mg6_udp");

    for svc in [&tcp, &udp] {
        let mut hit = BTreeSet::new();
        for i in 0..60u16 {
            let mut saddr = [0u8; 16];
            saddr[0] = 0x20;
            saddr[1] = 0x01;
            saddr[12..14].copy_from_slice(&i.to_be_bytes());
            saddr[15] = (i * 7) as u8;
            let flow = Flow6 {
                saddr,
                daddr: svc.key.vip,
                sport: 30000 + i * 3,
                dport: svc.key.port,
                protocol: svc.key.protocol,
            };
            let hash = flow_hash_v6(flow.saddr, flow.sport, flow.dport, flow.protocol, HASH_SEED);
            let id = svc.id_for_hash(hash);
            let v = values[&id];
            let (retval, out) = run(&dp, &flow.frame(b"v6 payload"));
            assert_eq!(retval, XDP_TX, "{flow:?}");
            assert_eq!(
                out,
                flow.dnat_frame(b"v6 payload", v.addr, v.port),
                "{flow:?} → backend {id}"
            );
            let key = CtKey6 {
                saddr: flow.saddr,
                daddr: flow.daddr,
                sport: flow.sport,
                dport: flow.dport,
                protocol: flow.protocol,
            };
            let ct = dp
                .conntrack6
                .lookup(&key.to_bytes())
                .expect("conntrack6 entry");
            let mut b = [0u8; 8];
            b.copy_from_slice(&ct);
            assert_eq!(
                CtValue::from_bytes(b),
                CtValue {
                    backend_id: id,
                    flow_hash: hash
                },
                "{flow:?}"
            );
            hit.insert(id);
        }
        assert_eq!(hit.len(), svc.ids.len(), "{:?}", svc.key);
    }
    // Unknown IPv6 service: pass untouched.
    let other = Flow6 {
        saddr: addr6(0x999),
        daddr: addr6(3),
        sport: 1,
        dport: 443,
        protocol: IPPROTO_TCP,
    };
    let frame = other.frame(b"");
    assert_eq!(run(&dp, &frame), (XDP_PASS, frame.clone()));
    assert_eq!(stat(&dp, Stat::Tx), 120);
}

/// The memory formulas of `layout` against the kernel's own accounting (fdinfo
/// `memlock`), and the outer map's refusal of an inner array with another value size
/// (why the packed layout keeps value_size 8 for every service).
#[test]
fn kernel_memory_accounting_and_inner_map_meta() {
    if let Some(reason) = skip_reason() {
        println!("SKIP: kernel_datapath (memory): {reason}");
        return;
    }
    let check = |value_size: u32, max_entries: u32, flags: u32, want: u64| {
        let attr = MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, value_size, max_entries)
            .flags(flags)
            .name("mg_mem");
        let m = KernelMap::create(&attr).expect("create array");
        assert_eq!(
            fdinfo_memlock(m.as_raw_fd()),
            want,
            "array value {value_size} x {max_entries}"
        );
    };
    check(4, 65537, 0, u32_per_element_memory(65537));
    check(4, 16381, BPF_F_INNER_MAP, u32_per_element_memory(16381));
    check(4 * 16381, 1, 0, cilium_blob_memory(16381));
    check(8, 4147, BPF_F_INNER_MAP, array_map_memory(8, 4147));
    check(12, 1000, 0, array_map_memory(12, 1000));

    let dp = load();
    let wrong = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 4, 509)
            .flags(BPF_F_INNER_MAP)
            .name("mg_wrong"),
    )
    .expect("create array");
    let key = ServiceKey {
        vip: [10, 9, 9, 9],
        port: 1,
        protocol: IPPROTO_TCP,
    };
    let err = dp
        .services
        .update_fd(&key.to_bytes(), wrong.as_fd(), BPF_ANY)
        .expect_err("value_size 4 inner map must be refused");
    assert_eq!(err.errno(), Some(kbpf_kernel::Errno::EINVAL), "{err}");
    let no_flag = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, INNER_VALUE_SIZE, 509).name("mg_noflag"),
    )
    .expect("create array");
    let err = dp
        .services
        .update_fd(&key.to_bytes(), no_flag.as_fd(), BPF_ANY)
        .expect_err("inner map without BPF_F_INNER_MAP must be refused");
    assert_eq!(err.errno(), Some(kbpf_kernel::Errno::EINVAL), "{err}");
}

/// Per-packet cost on this kernel (BPF_PROG_TEST_RUN average, informational): the
/// conntrack-hit path and unknown traffic.
#[test]
fn kernel_datapath_timing() {
    if let Some(reason) = skip_reason() {
        println!("SKIP: kernel_datapath (timing): {reason}");
        return;
    }
    let dp = load();
    let svc = Service::new(
        ServiceKey {
            vip: [10, 0, 0, 1],
            port: 80,
            protocol: IPPROTO_TCP,
        },
        vec![Backend::unweighted("a"), Backend::unweighted("b")],
        vec![1, 2],
        4093,
    );
    for id in 1u32..=2 {
        let v = BackendValue {
            addr: [192, 168, 2, id as u8],
            port: 0,
        };
        dp.backends
            .update(&id.to_ne_bytes(), &v.to_bytes(), BPF_ANY)
            .expect("backend");
    }
    svc.install(&dp, "mg_time");
    let flow = Flow {
        saddr: [172, 16, 0, 1],
        daddr: [10, 0, 0, 1],
        sport: 1234,
        dport: 80,
        protocol: IPPROTO_TCP,
    };
    let frame = flow.frame(b"");
    let first = dp.prog.test_run(&frame, frame.len(), None, 1).expect("run");
    assert_eq!(first.retval, XDP_TX);
    // A repeated test run works on the same buffer, so a rewritten packet would meet
    // itself again (and pass): time single runs and take the median.
    let median_ns = |frame: &[u8], want: u32| {
        let mut ns: Vec<u32> = (0..5000)
            .map(|_| {
                let r = dp.prog.test_run(frame, frame.len(), None, 1).expect("run");
                assert_eq!(r.retval, want);
                r.duration_ns
            })
            .collect();
        ns.sort_unstable();
        ns[ns.len() / 2]
    };
    let hit = median_ns(&frame, XDP_TX);
    let other = Flow {
        daddr: [10, 0, 0, 99],
        ..flow
    }
    .frame(b"");
    let pass = median_ns(&other, XDP_PASS);
    assert!(stat(&dp, Stat::CtHit) >= 5000);
    // Unknown traffic is not rewritten, so a repeated run measures it without the
    // per-call timer overhead that the single runs above include.
    let pass_repeat = dp
        .prog
        .test_run(&other, other.len(), None, 200_000)
        .expect("run");
    assert_eq!(pass_repeat.retval, XDP_PASS);
    // New flows: the Maglev path (header, table and backend-list lookups in the inner
    // array, conntrack insert).
    let mut ns: Vec<u32> = (0..5000u16)
        .map(|i| {
            let f = Flow {
                sport: 20000 + i,
                ..flow
            }
            .frame(b"");
            let r = dp.prog.test_run(&f, f.len(), None, 1).expect("run");
            assert_eq!(r.retval, XDP_TX);
            r.duration_ns
        })
        .collect();
    ns.sort_unstable();
    let miss = ns[ns.len() / 2];
    println!(
        "maglev_xdp on this kernel (median of single runs, incl. timer overhead): new flow {miss} ns, \
         conntrack hit {hit} ns, unknown VIP {pass} ns; unknown VIP averaged over 200000 repeats: {} ns",
        pass_repeat.duration_ns
    );
}

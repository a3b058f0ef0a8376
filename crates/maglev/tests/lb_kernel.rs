//! The control plane on the kernel backend, checked packet by packet on the live
//! kernel's datapath: services built with the `LoadBalancer` API, frames through
//! `maglev_xdp` with `BPF_PROG_TEST_RUN`, every flow to exactly the backend the Rust
//! table names; then a removal (disruption and conntrack stickiness) and a drain.
//! Prints `SKIP: …` and passes where bpf()/bpftool/bpffs are unavailable.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use kbpf_kernel::KernelMap;
use kbpf_maglev::OBJECT_PATH;
use kbpf_maglev::abi::XDP_TX;
use kbpf_maglev::control::kernel::{self, KernelOps};
use kbpf_maglev::control::{BackendSpec, LbConfig, LoadBalancer, ServiceAddr, ServiceId};
use kbpf_maglev::flow_hash_v4;
use kbpf_maglev::packet::{Flow, IPPROTO_TCP, IPPROTO_UDP};

fn svc(i: u8, protocol: u8) -> ServiceAddr {
    ServiceAddr {
        vip: IpAddr::V4(Ipv4Addr::new(172, 20, 0, i)),
        port: 443,
        protocol,
    }
}

/// Sends one packet of `flow`; returns the backend address it was rewritten to.
fn send(prog: &kbpf_kernel::KernelProg, flow: &Flow) -> Option<([u8; 4], u16)> {
    let frame = flow.frame(b"x");
    let r = prog
        .test_run(&frame, frame.len() + 256, None, 1)
        .expect("BPF_PROG_TEST_RUN");
    if r.retval != XDP_TX {
        return None;
    }
    let d = &r.data_out;
    Some((
        [d[30], d[31], d[32], d[33]],
        u16::from_be_bytes([d[36], d[37]]),
    ))
}

fn expected(lb: &LoadBalancer<KernelOps>, sid: ServiceId, flow: &Flow) -> ([u8; 4], u16) {
    let h = flow_hash_v4(
        flow.saddr,
        flow.sport,
        flow.dport,
        flow.protocol,
        lb.config().flow_seed,
    );
    let b = lb.service(sid).unwrap().pick(h).expect("a backend");
    let IpAddr::V4(a) = b.spec.addr else {
        unreachable!()
    };
    (
        a.octets(),
        if b.spec.port == 0 {
            flow.dport
        } else {
            b.spec.port
        },
    )
}

#[test]
fn control_plane_drives_the_kernel_datapath() {
    if let Some(why) = kernel::unavailable() {
        println!("SKIP: {why}");
        return;
    }
    let (load, mut lb) = kernel::load(Path::new(OBJECT_PATH), LbConfig::default()).expect("load");
    let sizes = [1usize, 3, 17, 60, 250];
    let mut sids = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let proto = if i % 2 == 0 { IPPROTO_TCP } else { IPPROTO_UDP };
        let bs: Vec<BackendSpec> = (0..n)
            .map(|j| {
                BackendSpec::new(
                    Ipv4Addr::new(10, 30 + i as u8, (j / 250) as u8, 1 + (j % 250) as u8),
                    if j % 2 == 0 { 8080 } else { 0 },
                )
            })
            .collect();
        sids.push(lb.add_service(svc(i as u8 + 1, proto), &bs).unwrap());
    }
    // Every inner map in the kernel has exactly the packed layout's size and memlock.
    assert_eq!(lb.memlock_checked(), sizes.len() as u64);
    for &sid in &sids {
        let s = lb.service(sid).unwrap();
        let v = lb.maps().services.lookup(&s.addr.key_bytes()).unwrap();
        let inner = KernelMap::from_id(u32::from_ne_bytes(v.try_into().unwrap())).unwrap();
        assert_eq!(inner.info().unwrap().max_entries, s.packed.max_entries());
    }

    // 400 flows per service: each to exactly the backend the Rust table names.
    let flows: Vec<(ServiceId, Flow)> = sids
        .iter()
        .enumerate()
        .flat_map(|(i, &sid)| {
            let a = lb.service(sid).unwrap().addr;
            (0..400u32).map(move |f| {
                let IpAddr::V4(vip) = a.vip else {
                    unreachable!()
                };
                (
                    sid,
                    Flow {
                        saddr: [192, 168, (f >> 8) as u8, f as u8],
                        daddr: vip.octets(),
                        sport: 20_000 + (f as u16) * 7 + i as u16,
                        dport: 443,
                        protocol: a.protocol,
                    },
                )
            })
        })
        .collect();
    let mut first: HashMap<usize, ([u8; 4], u16)> = HashMap::new();
    for (k, (sid, flow)) in flows.iter().enumerate() {
        let got = send(&load.prog, flow).expect("XDP_TX");
        assert_eq!(got, expected(&lb, *sid, flow), "flow {flow:?}");
        first.insert(k, got);
    }
    // Unknown service → XDP_PASS.
    let mut stray = flows[0].1;
    stray.dport = 444;
    assert_eq!(send(&load.prog, &stray), None);

    // Remove one backend of the 250-backend service.
    let big = *sids.last().unwrap();
    let victim = lb.service(big).unwrap().backends[7].clone();
    let old = lb.service(big).unwrap().packed.clone();
    lb.remove_backend(big, victim.spec.addr, victim.spec.port)
        .unwrap();
    let IpAddr::V4(victim_addr) = victim.spec.addr else {
        unreachable!()
    };
    let (mut moved_table, mut n, mut kept, mut on_victim) = (0, 0, 0, 0);
    for (k, (sid, flow)) in flows.iter().enumerate() {
        let got = send(&load.prog, flow).expect("XDP_TX");
        assert_ne!(
            got.0,
            victim_addr.octets(),
            "a removed backend got a packet"
        );
        if *sid != big {
            assert_eq!(got, first[&k], "other services unchanged");
            continue;
        }
        n += 1;
        let h = flow_hash_v4(
            flow.saddr,
            flow.sport,
            flow.dport,
            flow.protocol,
            lb.config().flow_seed,
        );
        moved_table += usize::from(
            old.backend_for_hash(h) != lb.service(big).unwrap().packed.backend_for_hash(h),
        );
        if first[&k].0 == victim_addr.octets() {
            on_victim += 1;
            // Its conntrack entry names a zeroed backend: re-selected by the new table.
            assert_eq!(got, expected(&lb, big, flow));
        } else {
            // Conntrack keeps every other flow where it was, whatever the new table says.
            assert_eq!(got, first[&k]);
            kept += 1;
        }
    }
    assert_eq!(kept + on_victim, n);
    // Maglev's disruption stays a few times the ideal 1/N (here N = 250, 1/N = 0.4%).
    assert!(
        moved_table * 100 < n * 5,
        "{moved_table} of {n} flows would move without conntrack"
    );

    // Drain one backend of the 60-backend service: its flows stay (conntrack, entry
    // kept), new flows never reach it.
    let mid = sids[3];
    let drained = lb.service(mid).unwrap().backends[0].clone();
    let IpAddr::V4(drained_addr) = drained.spec.addr else {
        unreachable!()
    };
    lb.drain_backend(mid, drained.spec.addr, drained.spec.port)
        .unwrap();
    for (k, (sid, flow)) in flows.iter().enumerate() {
        if *sid == mid {
            assert_eq!(send(&load.prog, flow).unwrap(), first[&k]);
        }
    }
    let a = lb.service(mid).unwrap().addr;
    let IpAddr::V4(vip) = a.vip else {
        unreachable!()
    };
    for f in 0..2000u32 {
        let flow = Flow {
            saddr: [198, 51, (f >> 8) as u8, f as u8],
            daddr: vip.octets(),
            sport: 40_000,
            dport: 443,
            protocol: a.protocol,
        };
        let got = send(&load.prog, &flow).unwrap();
        assert_ne!(
            got.0,
            drained_addr.octets(),
            "a new flow reached a drained backend"
        );
        assert_eq!(got, expected(&lb, mid, &flow));
    }

    // Removing a service: its traffic passes.
    lb.remove_service(sids[0]).unwrap();
    assert_eq!(send(&load.prog, &flows[0].1), None);
}

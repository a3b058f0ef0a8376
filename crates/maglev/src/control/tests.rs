use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kbpf_maps::Map;

use super::*;
use crate::abi::CtKey;
use crate::hash::flow_hash_v4;
use crate::layout::datapath_pick;

/// A load balancer over the maps kbpf-loader creates for the committed `maglev.bpf.o`.
pub(crate) fn kbpf_lb(config: LbConfig) -> LoadBalancer<KbpfOps> {
    let data = std::fs::read(crate::OBJECT_PATH).expect("read maglev.bpf.o");
    let obj = kbpf_object::BpfObject::parse(&data, "maglev").expect("parse maglev.bpf.o");
    let reg = kbpf_maps::Registry::new();
    let loaded = kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default())
        .expect("load maglev.bpf.o maps");
    let maps =
        DatapathMaps::from_named(loaded.maps.iter().map(|m| (m.name.clone(), m.map.clone())))
            .expect("datapath maps");
    LoadBalancer::new(KbpfOps, maps, config).expect("load balancer")
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn svc(last: u8) -> ServiceAddr {
    ServiceAddr {
        vip: v4(172, 16, 0, last),
        port: 80,
        protocol: 6,
    }
}

fn backend_value(lb: &LoadBalancer<KbpfOps>, id: u32) -> [u8; 8] {
    let v = lb.maps().backends.lookup_elem(&id.to_ne_bytes()).unwrap();
    v.try_into().unwrap()
}

#[test]
fn add_service_writes_config_backends_and_a_right_sized_inner_map() {
    let mut lb = kbpf_lb(LbConfig::default());
    let cfg = lb.maps().config.lookup_elem(&0u32.to_ne_bytes()).unwrap();
    assert_eq!(&cfg[..4], &0x5eed_1234u32.to_ne_bytes());
    let backends: Vec<BackendSpec> = (1..=5)
        .map(|i| BackendSpec::new(v4(10, 0, 0, i), 8080))
        .collect();
    // (Inner-map counts are checked by tests/soak.rs, alone in its process.)
    let id = lb.add_service(svc(1), &backends).unwrap();
    let s = lb.service(id).unwrap();
    assert_eq!(s.packed.header().table_size, 4093);
    assert_eq!(s.packed.max_entries(), 1 + 3 + 1024);
    assert_eq!(lb.memlock_checked(), 1);
    // The outer map holds an inner map of exactly that size.
    let inner_id = lb.maps().services.lookup_elem(&svc(1).key_bytes()).unwrap();
    let inner_id = u32::from_ne_bytes(inner_id.try_into().unwrap());
    let _run = kbpf_maps::pin();
    // SAFETY: live outer map, 8-byte key, guard held.
    let inner = unsafe {
        kbpf_maps::raw::bpf_map_lookup_elem(
            lb.maps().services.as_ptr(),
            svc(1).key_bytes().as_ptr().cast(),
        )
    };
    assert!(!inner.is_null());
    // SAFETY: the pointer is a live map (guard held).
    let inner = unsafe { Map::from_raw_ptr(inner) };
    assert_eq!(inner.id(), inner_id);
    assert_eq!(inner.max_entries(), s.packed.max_entries());
    assert_eq!(inner.value_size(), INNER_VALUE_SIZE);
    assert_ne!(inner.map_flags() & kbpf_maps::uapi::BPF_F_INNER_MAP, 0);
    let elems: Vec<[u8; 8]> = (0..inner.max_entries())
        .map(|i| {
            inner
                .lookup_elem(&i.to_ne_bytes())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    assert_eq!(elems, s.packed.elements());
    for b in &s.backends {
        let v = crate::abi::BackendValue::from_bytes(backend_value(&lb, b.id));
        assert_eq!(IpAddr::V4(v.addr.into()), b.spec.addr);
        assert_eq!(v.port, 8080);
    }
}

#[test]
fn changes_swap_tables_and_follow_the_datapath_rules() {
    let mut lb = kbpf_lb(LbConfig::default());
    let backends: Vec<BackendSpec> = (1..=10)
        .map(|i| BackendSpec::new(v4(10, 0, 1, i), 0))
        .collect();
    let id = lb.add_service(svc(2), &backends).unwrap();
    let old = lb.service(id).unwrap().packed.clone();

    // Drain backend 3: out of the table, entry kept (conntrack keeps its flows).
    lb.drain_backend(id, v4(10, 0, 1, 3), 0).unwrap();
    let s = lb.service(id).unwrap();
    let drained_id = s.backends[2].id;
    assert!(s.backends[2].drained);
    assert_eq!(s.packed.header().backend_count, 9);
    assert_eq!(s.generation, 2);
    assert!(
        (0..20_000u32)
            .all(|h| s.packed.backend_for_hash(h.wrapping_mul(2_654_435_761)) != Some(drained_id))
    );
    assert_ne!(
        backend_value(&lb, drained_id),
        [0; 8],
        "a drained backend keeps its entry"
    );
    // The drained backend's flows all moved; few of the others did (Maglev's small
    // collateral disruption).
    let (mut collateral, mut n) = (0, 0);
    for h in (0..20_000u32).map(|h| h.wrapping_mul(2_654_435_761)) {
        let (a, b) = (
            old.backend_for_hash(h).unwrap(),
            s.packed.backend_for_hash(h).unwrap(),
        );
        assert!(a != drained_id || b != drained_id);
        n += 1;
        collateral += usize::from(a != b && a != drained_id);
    }
    assert!(
        collateral * 100 < n * 3,
        "{collateral} of {n} flows of surviving backends moved"
    );

    // Remove backend 5: table without it, entry zeroed (conntrack re-selects).
    let removed_id = s.backends[4].id;
    lb.remove_backend(id, v4(10, 0, 1, 5), 0).unwrap();
    assert_eq!(backend_value(&lb, removed_id), [0; 8]);
    assert_eq!(lb.service(id).unwrap().backends.len(), 9);

    // Re-weight backend 1 to 3: about three shares.
    lb.set_backend_weight(id, v4(10, 0, 1, 1), 0, 3).unwrap();
    let s = lb.service(id).unwrap();
    let (_, ids, slots) = PackedTable::unpack(s.packed.elements()).unwrap();
    let heavy = ids.iter().position(|&i| i == s.backends[0].id).unwrap() as u16;
    let share = slots.iter().filter(|&&l| l == heavy).count() as f64 / slots.len() as f64;
    // 8 active backends of weight 1 (one drained, one removed) + one of weight 3.
    assert!((share - 3.0 / 10.0).abs() < 0.01, "share {share}");

    // Add a backend, undrain.
    let new_id = lb
        .add_backend(id, BackendSpec::new(v4(10, 0, 1, 99), 0))
        .unwrap();
    lb.undrain_backend(id, v4(10, 0, 1, 3), 0).unwrap();
    let s = lb.service(id).unwrap();
    assert_eq!(s.packed.header().backend_count, 10);
    assert!(s.backends.iter().any(|b| b.id == new_id));

    // Errors.
    assert!(matches!(
        lb.add_service(svc(2), &[]),
        Err(ControlError::ServiceExists(_))
    ));
    assert!(matches!(
        lb.add_backend(id, BackendSpec::new(v4(10, 0, 1, 99), 0)),
        Err(ControlError::BackendExists { .. })
    ));
    assert!(matches!(
        lb.remove_backend(id, v4(9, 9, 9, 9), 0),
        Err(ControlError::NoSuchBackend { .. })
    ));
    assert!(matches!(
        lb.add_backend(id, BackendSpec::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0)),
        Err(ControlError::FamilyMismatch(_))
    ));
    assert!(matches!(
        lb.add_backend(id, BackendSpec::new(v4(0, 0, 0, 0), 0)),
        Err(ControlError::ReservedAddress(_))
    ));
    assert!(matches!(
        lb.remove_service(999),
        Err(ControlError::NoSuchService(999))
    ));

    // Remove the service: outer entry gone, backends zeroed.
    let ids: Vec<u32> = lb
        .service(id)
        .unwrap()
        .backends
        .iter()
        .map(|b| b.id)
        .collect();
    lb.remove_service(id).unwrap();
    assert!(lb.maps().services.lookup_elem(&svc(2).key_bytes()).is_err());
    assert!(ids.iter().all(|&i| backend_value(&lb, i) == [0; 8]));
}

#[test]
fn empty_services_ipv6_and_bulk_add() {
    let mut lb = kbpf_lb(LbConfig::default());
    let id = lb.add_service(svc(3), &[]).unwrap();
    assert_eq!(lb.service(id).unwrap().packed.max_entries(), 1);
    assert_eq!(lb.service(id).unwrap().pick(7), None);
    let six = ServiceAddr {
        vip: "2001:db8::1".parse().unwrap(),
        port: 443,
        protocol: 17,
    };
    let b6: Vec<BackendSpec> = (1..=3)
        .map(|i| {
            BackendSpec::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)),
                0,
            )
        })
        .collect();
    let id6 = lb.add_service(six, &b6).unwrap();
    assert!(lb.maps().services6.lookup_elem(&six.key_bytes()).is_ok());
    let bid = lb.service(id6).unwrap().backends[0].id;
    let v = lb.maps().backends6.lookup_elem(&bid.to_ne_bytes()).unwrap();
    assert_eq!(
        &v[..16],
        &Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1).octets()
    );

    // Bulk add on two threads, with progress.
    let specs: Vec<(ServiceAddr, Vec<BackendSpec>)> = (10..200u8)
        .map(|i| {
            let n = 1 + (i as usize * 7) % 40;
            (
                svc(i),
                (0..n)
                    .map(|j| BackendSpec::new(v4(10, 2, i, j as u8), 0))
                    .collect(),
            )
        })
        .collect();
    let mut last = None;
    let mut phases = std::collections::BTreeSet::new();
    let ids = lb
        .add_services(specs.clone(), 2, &mut |p| {
            phases.insert(p.phase);
            last = Some(p);
        })
        .unwrap();
    assert_eq!(ids.len(), 190);
    let p = last.unwrap();
    assert_eq!((p.done, p.total), (190, 190));
    assert_eq!(phases.len(), 2);
    // Same tables as one-by-one building.
    for (sid, (addr, bs)) in ids.iter().zip(&specs) {
        let s = lb.service(*sid).unwrap();
        assert_eq!(s.addr, *addr);
        let tb: Vec<crate::Backend> = bs
            .iter()
            .map(|b| crate::Backend::unweighted(b.maglev_name()))
            .collect();
        let ids: Vec<u32> = s.backends.iter().map(|b| b.id).collect();
        let want = build_service(&tb, &ids, &lb.config().policy, lb.config().seed).unwrap();
        assert_eq!(s.packed, want.packed);
    }
    assert_eq!(lb.service_count(), 192);
    lb.clear().unwrap();
    assert_eq!(lb.service_count(), 0);
}

#[test]
fn purge_conntrack_drops_entries_of_removed_backends() {
    let mut lb = kbpf_lb(LbConfig::default());
    let backends: Vec<BackendSpec> = (1..=4)
        .map(|i| BackendSpec::new(v4(10, 0, 3, i), 0))
        .collect();
    let id = lb.add_service(svc(4), &backends).unwrap();
    let s = lb.service(id).unwrap();
    let (gone, kept) = (s.backends[0].id, s.backends[1].id);
    for (port, bid) in [(1000u16, gone), (1001, kept)] {
        let k = CtKey {
            saddr: [1, 1, 1, 1],
            daddr: [172, 16, 0, 4],
            sport: port,
            dport: 80,
            protocol: 6,
        };
        let v = crate::abi::CtValue {
            backend_id: bid,
            flow_hash: 0,
        };
        lb.maps()
            .conntrack
            .update_elem(&k.to_bytes(), &v.to_bytes(), 0)
            .unwrap();
    }
    lb.remove_backend(id, v4(10, 0, 3, 1), 0).unwrap();
    assert_eq!(lb.purge_conntrack().unwrap(), 1);
    assert_eq!(lb.maps().conntrack.keys().len(), 1);
    // The datapath's pick and the Rust one agree on raw elements.
    let s = lb.service(id).unwrap();
    let h = flow_hash_v4([1, 1, 1, 1], 5, 80, 6, lb.config().flow_seed);
    assert_eq!(
        datapath_pick(s.packed.elements(), h),
        s.pick(h).map(|b| b.id)
    );
}

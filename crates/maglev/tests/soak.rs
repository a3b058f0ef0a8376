//! Soak test on the kbpf backend: a writer churns backends (each change builds a new
//! table and swaps a new inner map into the outer `HASH_OF_MAPS`) while reader threads
//! do the datapath's two-level lookup through kbpf-maps' raw functions under
//! `kbpf_maps::pin()`: outer lookup → inner header → table element → backend list →
//! `maglev_backends` entry.
//!
//! The property: once `remove_backend` has returned (the swap without the backend is
//! done), no lookup that *starts* afterwards yields that backend id from a table. The
//! writer publishes a removed id only after the call returns; a reader holds the read
//! side of the published set while it does one lookup, so every id it sees in the set
//! was removed before that lookup began. Ids are never reused in the run (the allocator
//! hands out fresh ids first). At the end the number of live maps is back to the fixed
//! maps plus one inner map per service.
//!
//! Alone in its file: `kbpf_maps::live_maps()` is process-wide.
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kbpf_maglev::control::{
    BackendSpec, DatapathMaps, KbpfOps, LbConfig, LoadBalancer, ServiceAddr,
};
use kbpf_maglev::layout::Header;
use kbpf_maps::raw::bpf_map_lookup_elem;

const SERVICES: u8 = 4;
const READERS: usize = 3;
const SECONDS: u64 = 4;

fn svc(i: u8) -> ServiceAddr {
    ServiceAddr {
        vip: IpAddr::V4(Ipv4Addr::new(172, 30, 0, i)),
        port: 80,
        protocol: 6,
    }
}

/// The datapath's pick, through raw pointers (as a program run does). Returns the
/// backend id and whether its `maglev_backends` entry was non-zero.
///
/// # Safety
/// `outer` and `backends` are live maps of the right types; a `pin()` guard is held.
unsafe fn datapath_pick(
    outer: usize,
    backends: usize,
    key: &[u8; 8],
    hash: u32,
) -> Option<(u32, bool)> {
    // SAFETY: per the function's contract.
    unsafe {
        let inner = bpf_map_lookup_elem(outer as *mut _, key.as_ptr().cast());
        if inner.is_null() {
            return None;
        }
        let zero = 0u32;
        let hdr = bpf_map_lookup_elem(inner, (&zero as *const u32).cast()) as *const [u8; 8];
        if hdr.is_null() {
            return None;
        }
        let h = Header::from_bytes(std::ptr::read(hdr));
        if h.table_size == 0 || h.backend_count == 0 {
            return None;
        }
        let slot = hash % h.table_size;
        let k = u32::from(h.table_base) + slot / 4;
        let lanes = bpf_map_lookup_elem(inner, (&k as *const u32).cast()) as *const [u16; 4];
        assert!(
            !lanes.is_null(),
            "table element {k} out of range: torn table"
        );
        let local = u32::from((*lanes)[(slot & 3) as usize]);
        assert!(
            local < u32::from(h.backend_count),
            "local index past the list: torn table"
        );
        let k = 1 + local / 2;
        let ids = bpf_map_lookup_elem(inner, (&k as *const u32).cast()) as *const [u32; 2];
        assert!(!ids.is_null());
        let id = (*ids)[(local & 1) as usize];
        let be =
            bpf_map_lookup_elem(backends as *mut _, (&id as *const u32).cast()) as *const [u8; 8];
        assert!(!be.is_null(), "backend id {id} out of the backends map");
        let be = std::ptr::read(be);
        Some((id, be[..4] != [0; 4]))
    }
}

#[test]
fn backends_churn_under_concurrent_lookups() {
    let baseline = kbpf_maps::live_maps();
    let data = std::fs::read(kbpf_maglev::OBJECT_PATH).unwrap();
    let obj = kbpf_object::BpfObject::parse(&data, "maglev").unwrap();
    let reg = kbpf_maps::Registry::new();
    let loaded =
        kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default()).unwrap();
    let maps =
        DatapathMaps::from_named(loaded.maps.iter().map(|m| (m.name.clone(), m.map.clone())))
            .unwrap();
    let mut lb = LoadBalancer::new(KbpfOps, maps, LbConfig::default()).unwrap();
    drop(loaded);
    drop(reg);
    kbpf_maps::flush_deferred();
    let fixed = kbpf_maps::live_maps() - baseline;

    let mut next = 1u32;
    let mut fresh = || {
        next += 1;
        BackendSpec::new(Ipv4Addr::from(0x0a00_0000 + next), 8080)
    };
    let mut sids = Vec::new();
    for i in 0..SERVICES {
        let bs: Vec<BackendSpec> = (0..5 + 10 * usize::from(i)).map(|_| fresh()).collect();
        sids.push(lb.add_service(svc(i), &bs).unwrap());
    }

    let outer = lb.maps().services.as_ptr() as usize;
    let backends = lb.maps().backends.as_ptr() as usize;
    let gone: Arc<RwLock<HashSet<u32>>> = Arc::new(RwLock::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let zeroed = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|t| {
            let (gone, stop, lookups, zeroed) =
                (gone.clone(), stop.clone(), lookups.clone(), zeroed.clone());
            std::thread::spawn(move || {
                let mut h = 0x1234_5678u32.wrapping_add(t as u32);
                while !stop.load(Ordering::Relaxed) {
                    let g = gone.read().unwrap();
                    let _run = kbpf_maps::pin();
                    for i in 0..SERVICES {
                        h = h.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let key: [u8; 8] = svc(i).key_bytes().try_into().unwrap();
                        // SAFETY: the maps outlive the readers (joined before the LB drops),
                        // keys are 8 bytes, the guard is held.
                        if let Some((id, live)) = unsafe { datapath_pick(outer, backends, &key, h) }
                        {
                            assert!(
                                !g.contains(&id),
                                "backend {id} picked after its removal returned"
                            );
                            // A table read before a removal swap may name an id whose entry is
                            // zeroed meanwhile: the datapath then drops or re-selects.
                            zeroed.fetch_add(u64::from(!live), Ordering::Relaxed);
                        }
                        lookups.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // The writer: remove a random backend, add a fresh one, sometimes drain/undrain or
    // re-weight, for SECONDS.
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut rng = 0x9e37_79b9u64;
    let mut rand = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut changes = 0u64;
    while Instant::now() < deadline {
        let sid = sids[rand(sids.len())];
        let s = lb.service(sid).unwrap();
        let b = s.backends[rand(s.backends.len())].clone();
        match rand(8) {
            0 => lb.drain_backend(sid, b.spec.addr, b.spec.port).unwrap(),
            1 => lb
                .set_backend_weight(sid, b.spec.addr, b.spec.port, 1 + rand(3) as u32)
                .unwrap(),
            _ => {
                lb.remove_backend(sid, b.spec.addr, b.spec.port).unwrap();
                gone.write().unwrap().insert(b.id);
                lb.add_backend(sid, fresh()).unwrap();
            }
        }
        changes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader panicked");
    }
    let total = lookups.load(Ordering::Relaxed);
    println!(
        "{changes} changes ({} swaps), {total} lookups, {} ids removed, {} picks of an id zeroed meanwhile",
        lb.swaps(),
        gone.read().unwrap().len(),
        zeroed.load(Ordering::Relaxed)
    );
    assert!(
        changes > 100 && total > 10_000,
        "too little work: {changes} changes, {total} lookups"
    );

    // Every swapped-out inner map is freed: fixed maps + one inner map per service.
    for _ in 0..100 {
        kbpf_maps::flush_deferred();
        if kbpf_maps::live_maps() == baseline + fixed + usize::from(SERVICES) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        kbpf_maps::live_maps(),
        baseline + fixed + usize::from(SERVICES)
    );
    lb.clear().unwrap();
    for _ in 0..100 {
        kbpf_maps::flush_deferred();
        if kbpf_maps::live_maps() == baseline + fixed {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(kbpf_maps::live_maps(), baseline + fixed);
}

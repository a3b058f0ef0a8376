//! Random operation sequences replayed on kbpf's maps and on the live kernel (where `bpf()`
//! works), comparing every outcome: errno, looked-up bytes, `get_next_key` order (ZERO_SEED
//! hashes, so bucket placement is deterministic), map-of-maps ids (translated to "which inner
//! map"), queue/stack push/peek results, and `memlock` as the kernel reports it in
//! `/proc/self/fdinfo`.
//!
//! LRU maps are left out: kbpf's LRU approximates the kernel's per-CPU free lists (see
//! `kbpf_maps::htab`), so eviction choices legitimately differ.

mod common;

use std::os::fd::{AsFd, AsRawFd};

use kbpf_kernel::{KernelMap, MapCreateAttr, bpf_available_or_skip};
use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType};

use common::Rng;

#[derive(Clone, Copy)]
struct Spec {
    t: MapType,
    k: u32,
    v: u32,
    n: u32,
    flags: u32,
}

const fn spec(t: MapType, k: u32, v: u32, n: u32, flags: u32) -> Spec {
    Spec { t, k, v, n, flags }
}

const SPECS: &[Spec] = &[
    spec(MapType::Array, 4, 8, 5, 0),
    spec(MapType::Array, 4, 12, 3, BPF_F_INNER_MAP),
    spec(MapType::PercpuArray, 4, 4, 3, 0),
    spec(MapType::Hash, 4, 8, 6, BPF_F_ZERO_SEED),
    spec(MapType::Hash, 3, 5, 4, BPF_F_ZERO_SEED),
    spec(MapType::Hash, 8, 16, 5, BPF_F_ZERO_SEED | BPF_F_NO_PREALLOC),
    spec(MapType::PercpuHash, 4, 4, 4, BPF_F_ZERO_SEED),
    spec(MapType::Queue, 0, 4, 3, 0),
    spec(MapType::Stack, 0, 8, 3, 0),
    spec(MapType::ArrayOfMaps, 4, 4, 4, 0),
    spec(MapType::HashOfMaps, 4, 4, 3, BPF_F_ZERO_SEED),
    spec(
        MapType::HashOfMaps,
        8,
        4,
        3,
        BPF_F_ZERO_SEED | BPF_F_NO_PREALLOC,
    ),
];

fn fdinfo_memlock(m: &KernelMap) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", m.as_raw_fd())).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("memlock line in fdinfo")
}

fn kres<T>(r: Result<T, kbpf_kernel::Error>) -> Result<T, i32> {
    r.map_err(|e| e.errno().map_or(-1, |e| e.0))
}

fn ores<T>(r: Result<T, kbpf_maps::MapError>) -> Result<T, i32> {
    r.map_err(|e| e.errno.code())
}

/// Translates an inner-map id read back from an outer into the index of that inner map.
fn which(r: Result<Vec<u8>, i32>, ids: &[u32]) -> Result<Option<usize>, i32> {
    r.map(|b| {
        let id = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        ids.iter().position(|&i| i == id)
    })
}

#[test]
fn random_operations_match_the_kernel() {
    if !bpf_available_or_skip("kernel_differential") {
        return;
    }
    // kbpf's maps follow the live kernel's profile (memlock: sizeof(struct bpf_htab) differs
    // between builds), so memlock is compared exactly on any build.
    let Some(host) = kbpf_kernel::host_profile_or_skip("kernel_differential") else {
        return;
    };
    let cpus = kbpf_kernel::num_possible_cpus().expect("possible cpus") as u32;
    let seeds = if cfg!(debug_assertions) { 12 } else { 60 };
    let mut compared = 0usize;
    for (si, s) in SPECS.iter().enumerate() {
        // Inner maps: three that fit the template (array k4 v4 n3) and one that does not.
        let inner_specs = [(3u32, 0u32), (3, 0), (3, 0), (5, 0)];
        let k_inner: Vec<KernelMap> = inner_specs
            .iter()
            .map(|&(n, f)| {
                KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 4, n).flags(f))
                    .unwrap()
            })
            .collect();
        let o_inner: Vec<Map> = inner_specs
            .iter()
            .map(|&(n, f)| {
                Map::create(
                    &MapAttr::new(MapType::Array, 4, 4, n)
                        .flags(f)
                        .profile(host.maps),
                    None,
                )
                .unwrap()
            })
            .collect();
        let k_ids: Vec<u32> = k_inner.iter().map(|m| m.id()).collect();
        let o_ids: Vec<u32> = o_inner.iter().map(|m| m.id()).collect();
        let mim = s.t.is_map_in_map();
        for seed in 0..seeds {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((si as u64) << 32 | seed as u64));
            let mut ka = MapCreateAttr::new(s.t.raw(), s.k, s.v, s.n)
                .flags(s.flags)
                .name("kdiff");
            if mim {
                ka = ka.inner(k_inner[0].as_fd());
            }
            let km = KernelMap::create(&ka).unwrap();
            let om = Map::create(
                &MapAttr::new(s.t, s.k, s.v, s.n)
                    .flags(s.flags)
                    .name("kdiff")
                    .nr_cpus(cpus)
                    .profile(host.maps),
                mim.then(|| &o_inner[0]),
            )
            .unwrap();
            assert_eq!(km.user_value_len(), om.user_value_size(), "{}", s.t);
            let ctx = |step: usize, what: &str| format!("{} seed {seed} step {step}: {what}", s.t);
            for step in 0..80 {
                let mut key = vec![0u8; s.k as usize];
                if let Some(k0) = key.first_mut() {
                    *k0 = rng.below(s.n as u64 + 2) as u8;
                }
                if s.k > 4 && rng.below(4) == 0 {
                    key[s.k as usize - 1] = 1;
                }
                match rng.below(5) {
                    0 | 1 => {
                        let flags = [BPF_ANY, BPF_ANY, BPF_NOEXIST, BPF_EXIST, 3, BPF_F_LOCK]
                            [rng.below(6) as usize];
                        let (kr, or) = if mim {
                            let i = rng.below(4) as usize;
                            (
                                kres(km.update_fd(&key, k_inner[i].as_fd(), flags)),
                                ores(om.update_inner_map(&key, &o_inner[i], flags)),
                            )
                        } else {
                            let value: Vec<u8> = (0..om.user_value_size())
                                .map(|_| rng.next() as u8)
                                .collect();
                            (
                                kres(km.update(&key, &value, flags)),
                                ores(om.update_elem(&key, &value, flags)),
                            )
                        };
                        assert_eq!(
                            kr,
                            or,
                            "{}",
                            ctx(step, &format!("update {key:?} flags {flags}"))
                        );
                    }
                    2 => {
                        let (kr, or) = (kres(km.lookup(&key)), ores(om.lookup_elem(&key)));
                        if mim {
                            assert_eq!(
                                which(kr, &k_ids),
                                which(or, &o_ids),
                                "{}",
                                ctx(step, "lookup")
                            );
                        } else {
                            assert_eq!(kr, or, "{}", ctx(step, &format!("lookup {key:?}")));
                        }
                    }
                    3 => {
                        let (kr, or) = (kres(km.delete(&key)), ores(om.delete_elem(&key)));
                        assert_eq!(kr, or, "{}", ctx(step, &format!("delete {key:?}")));
                    }
                    _ => {
                        let from = (rng.below(3) != 0).then_some(key.as_slice());
                        let (kr, or) = (kres(km.get_next_key(from)), ores(om.get_next_key(from)));
                        assert_eq!(kr, or, "{}", ctx(step, &format!("get_next_key {from:?}")));
                    }
                }
                compared += 1;
            }
            assert_eq!(
                kres(km.keys()),
                collect_keys(&om),
                "{} seed {seed}: iteration order",
                s.t
            );
            assert_eq!(
                fdinfo_memlock(&km),
                om.memlock(),
                "{} seed {seed}: memlock",
                s.t
            );
        }
    }
    println!("{compared} operations compared against the kernel");
}

fn collect_keys(m: &Map) -> Result<Vec<Vec<u8>>, i32> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    loop {
        match m.get_next_key(out.last().map(|k| k.as_slice())) {
            Ok(k) => out.push(k),
            Err(e) if e.errno == kbpf_maps::Errno::ENOENT => return Ok(out),
            Err(e) => return Err(e.errno.code()),
        }
    }
}

/// The socket maps' `memlock` (their `map_mem_usage`: the kernel struct and one pointer or
/// bucket per entry), created empty on both sides with the live kernel's profile: SOCKMAP
/// (`struct bpf_stab`), SOCKHASH (`struct bpf_shtab` and its buckets), XSKMAP
/// (`struct xsk_map`) and REUSEPORT_SOCKARRAY (`struct reuseport_array`).
#[test]
fn socket_maps_memlock_matches_the_kernel() {
    use kbpf_maps::sock_maps::*;
    if !bpf_available_or_skip("kernel_differential (socket maps)") {
        return;
    }
    let Some(host) = kbpf_kernel::host_profile_or_skip("kernel_differential (socket maps)") else {
        return;
    };
    let mut compared = 0;
    for (t, k, v) in [
        (BPF_MAP_TYPE_SOCKMAP, 4, 8),
        (BPF_MAP_TYPE_SOCKHASH, 4, 8),
        (BPF_MAP_TYPE_XSKMAP, 4, 4),
        (BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8),
    ] {
        for n in [1u32, 7, 64, 1000] {
            let km = KernelMap::create(&MapCreateAttr::new(t, k, v, n).name("kmem")).unwrap();
            let om = Map::create(
                &MapAttr::new(MapType::from_raw(t), k, v, n)
                    .name("kmem")
                    .profile(host.maps),
                None,
            )
            .unwrap();
            assert_eq!(
                om.memlock(),
                fdinfo_memlock(&km),
                "type {t} max_entries {n}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 16);
}

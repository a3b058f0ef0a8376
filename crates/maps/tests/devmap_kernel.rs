//! DEVMAP, DEVMAP_HASH and CPUMAP against the live kernel:
//!
//! * creation: key sizes × value sizes × max_entries × flags, errno compared, and the flags
//!   the created map reports (`BPF_F_RDONLY_PROG` added to devmaps);
//! * seeded random element sequences (updates with every flag, existing and missing
//!   devices, program fds of 0/-1, cpumap `qsize` in and past the limit, keys past
//!   `max_entries` and past the possible CPUs; lookups, deletes, single `get_next_key`
//!   steps and full walks with each key's value, and `memlock` after each walk), outcome by
//!   outcome.
//!
//! `KBPF_DEVMAP_SEED` reseeds.

mod common;

use kbpf_kernel::{KernelMap, MapCreateAttr, bpf_available_or_skip};
use kbpf_maps::{Map, MapAttr, MapType};

use common::Rng;

const DEVMAP: u32 = kbpf_maps::devmap::BPF_MAP_TYPE_DEVMAP;
const DEVMAP_HASH: u32 = kbpf_maps::devmap::BPF_MAP_TYPE_DEVMAP_HASH;
const CPUMAP: u32 = kbpf_maps::devmap::BPF_MAP_TYPE_CPUMAP;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Unit,
    Bytes(Vec<u8>),
    Err(i32),
}

fn fdinfo_memlock(m: &KernelMap) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", m.as_fd().as_raw_fd()))
        .expect("fdinfo");
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .map(|v| v.trim().parse().expect("memlock number"))
        .expect("memlock line in fdinfo")
}

fn kerr(e: kbpf_kernel::Error) -> i32 {
    e.errno().map_or(-1, |e| e.0)
}

fn oerr(e: kbpf_maps::MapError) -> i32 {
    e.errno.code()
}

fn out_unit<E>(r: Result<(), E>, f: impl Fn(E) -> i32) -> Out {
    r.map_or_else(|e| Out::Err(f(e)), |()| Out::Unit)
}

fn out_bytes<E>(r: Result<Vec<u8>, E>, f: impl Fn(E) -> i32) -> Out {
    r.map_or_else(|e| Out::Err(f(e)), Out::Bytes)
}

fn create_both(
    t: u32,
    key: u32,
    value: u32,
    max: u32,
    flags: u32,
) -> (Result<KernelMap, i32>, Result<Map, i32>) {
    let k = KernelMap::create(
        &MapCreateAttr::new(t, key, value, max)
            .flags(flags)
            .name("dm"),
    )
    .map_err(kerr);
    let b = Map::create(
        &MapAttr::new(MapType::from_raw(t), key, value, max)
            .flags(flags)
            .name("dm"),
        None,
    )
    .map_err(|e| e.errno.code());
    (k, b)
}

#[test]
fn redirect_map_creation_matches_the_kernel() {
    if !bpf_available_or_skip("devmap_kernel") {
        return;
    }
    let mut compared = 0;
    for t in [DEVMAP, DEVMAP_HASH, CPUMAP] {
        for key in [4, 8] {
            for value in [0, 4, 6, 8, 12] {
                // (Not 2^31 + 1 for DEVMAP: the kernel's ENOMEM for its slot array is not
                // modelled; DEVMAP_HASH refuses it with EINVAL, CPUMAP with E2BIG.)
                for max in [0, 1, 4, 300, (1 << 31) + 1] {
                    if t == DEVMAP && max > 1 << 31 {
                        continue;
                    }
                    for flags in [0, 1, 1 << 3, 1 << 4, 1 << 7, 1 << 12] {
                        let (k, b) = create_both(t, key, value, max, flags);
                        let what =
                            format!("type {t} key {key} value {value} max {max} flags {flags:#x}");
                        assert_eq!(
                            k.as_ref().map(|_| ()).map_err(|e| *e),
                            b.as_ref().map(|_| ()).map_err(|e| *e),
                            "{what}"
                        );
                        if let (Ok(k), Ok(b)) = (&k, &b) {
                            assert_eq!(
                                k.info().unwrap().map_flags,
                                b.map_flags(),
                                "{what}: map_flags"
                            );
                        }
                        compared += 1;
                    }
                }
            }
        }
    }
    assert_eq!(compared, 3 * 2 * 5 * 5 * 6 - 2 * 5 * 6);
}

#[test]
fn redirect_map_elements_match_the_kernel() {
    if !bpf_available_or_skip("devmap_kernel") {
        return;
    }
    let seed = std::env::var("KBPF_DEVMAP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x05ee_dd3f);
    let mut rng = Rng::new(seed);
    let mut ops = 0;
    for (t, value_size, max) in [
        (DEVMAP, 4, 6),
        (DEVMAP, 8, 6),
        (DEVMAP_HASH, 4, 5),
        (DEVMAP_HASH, 8, 3),
        (CPUMAP, 4, 6),
        (CPUMAP, 8, 200),
    ] {
        let (k, b) = create_both(t, 4, value_size, max, 0);
        let (k, b) = (k.expect("kernel map"), b.expect("kbpf map"));
        for step in 0..600 {
            let key = if rng.chance(80) {
                rng.below(8) as u32
            } else {
                rng.below(1 << 16) as u32 * 17
            };
            let kb = key.to_ne_bytes();
            let what = format!("seed {seed:#x} type {t}/{value_size} step {step} key {key}");
            match rng.below(10) {
                0..=3 => {
                    let first: u32 = match (t, rng.below(6)) {
                        (CPUMAP, 0) => 0,
                        (CPUMAP, 1) => 16385,
                        (CPUMAP, _) => 64 + rng.below(512) as u32,
                        (_, 0) => 0,
                        (_, 1) => 999_999,
                        _ => 1,
                    };
                    let second: i32 = if rng.chance(10) { -1 } else { 0 };
                    let mut v = first.to_ne_bytes().to_vec();
                    v.extend_from_slice(&second.to_ne_bytes());
                    v.truncate(value_size as usize);
                    let flags = rng.below(5);
                    let ko = out_unit(k.update(&kb, &v, flags), kerr);
                    let bo = out_unit(b.update_elem(&kb, &v, flags), oerr);
                    assert_eq!(bo, ko, "{what}: update {v:?} flags {flags}");
                }
                4..=5 => {
                    let ko = out_bytes(k.lookup(&kb), kerr);
                    let bo = out_bytes(b.lookup_elem(&kb), oerr);
                    assert_eq!(bo, ko, "{what}: lookup");
                }
                6 => {
                    let ko = out_unit(k.delete(&kb), kerr);
                    let bo = out_unit(b.delete_elem(&kb), oerr);
                    assert_eq!(bo, ko, "{what}: delete");
                }
                7 => {
                    let from = rng.chance(30).then_some(kb.as_slice());
                    let ko = out_bytes(k.get_next_key(from), kerr);
                    let bo = out_bytes(b.get_next_key(from), oerr);
                    assert_eq!(bo, ko, "{what}: get_next_key from {from:?}");
                }
                _ => {
                    // A full walk, each key with its value (bpftool's map dump).
                    let mut kw = Vec::new();
                    let mut cur: Option<Vec<u8>> = None;
                    while kw.len() <= max as usize + 1 {
                        match k.get_next_key(cur.as_deref()) {
                            Ok(n) => {
                                kw.push((n.clone(), out_bytes(k.lookup(&n), kerr)));
                                cur = Some(n);
                            }
                            Err(_) => break,
                        }
                    }
                    let bw: Vec<_> = b
                        .keys()
                        .into_iter()
                        .map(|n| {
                            let v = out_bytes(b.lookup_elem(&n), oerr);
                            (n, v)
                        })
                        .collect();
                    assert_eq!(bw, kw, "{what}: walk");
                    assert_eq!(b.memlock(), fdinfo_memlock(&k), "{what}: memlock");
                }
            }
            ops += 1;
        }
    }
    assert_eq!(ops, 6 * 600);
}

//! Concurrency stress: readers look up inner arrays through a HASH_OF_MAPS (outer lookup →
//! inner lookup → read a whole value) while a writer keeps swapping BPF_F_INNER_MAP arrays of
//! different sizes into it. Readers must never see a torn value or a freed map, and every
//! swapped-out inner map must eventually be freed (no leak).
//!
//! `KBPF_STRESS_SWAPS` overrides the number of swaps per outer map type.
//!
//! This file holds a single test so the process-wide live-map counter is not disturbed by
//! other tests running in parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kbpf_maps::layout::BpfMap;
use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType, live_maps, raw};

const WORDS: usize = 8;
const OUTER_KEYS: u32 = 4;

/// Iteration count: `KBPF_STRESS_SWAPS` when set (scripts/valgrind-stress.sh lowers it, since
/// memcheck runs ~50x slower), `default` otherwise.
fn stress_count(default: u64) -> u64 {
    match std::env::var("KBPF_STRESS_SWAPS") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => panic!("KBPF_STRESS_SWAPS={v:?}: expected a positive integer"),
        },
        Err(_) => default,
    }
}

fn inner_for(generation: u64) -> Map {
    let n = 1 + (generation % 17) as u32;
    let m = Map::create(
        &MapAttr::new(MapType::Array, 4, (WORDS * 8) as u32, n).flags(BPF_F_INNER_MAP),
        None,
    )
    .unwrap();
    let value: Vec<u8> = (0..WORDS).flat_map(|_| generation.to_ne_bytes()).collect();
    for i in 0..n {
        m.update_elem(&i.to_ne_bytes(), &value, BPF_ANY).unwrap();
    }
    m
}

#[test]
fn map_of_maps_swaps_under_concurrent_lookups() {
    // HASH_OF_MAPS replaces elements (old element and its inner freed through the epoch);
    // ARRAY_OF_MAPS swaps the slot pointer (old inner released through the epoch).
    swap_inner_maps(MapType::HashOfMaps);
    swap_inner_maps(MapType::ArrayOfMaps);
}

fn swap_inner_maps(outer_type: MapType) {
    let swaps = stress_count(if cfg!(debug_assertions) {
        5_000
    } else {
        100_000
    });
    let baseline = live_maps();
    let template = Map::create(
        &MapAttr::new(MapType::Array, 4, (WORDS * 8) as u32, 1).flags(BPF_F_INNER_MAP),
        None,
    )
    .unwrap();
    let outer = Map::create(
        &MapAttr::new(outer_type, 4, 4, OUTER_KEYS).name("outer"),
        Some(&template),
    )
    .unwrap();
    drop(template);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let outer_ptr = outer.as_ptr() as usize;

    let readers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            let reads = reads.clone();
            std::thread::spawn(move || {
                let outer = outer_ptr as *mut std::ffi::c_void;
                let mut seen = 0u64;
                let mut i = t as u32;
                while !stop.load(Ordering::Relaxed) {
                    // One "program run": everything below stays valid while the guard lives.
                    let _run = kbpf_maps::pin();
                    i = i.wrapping_add(1);
                    let key = (i % OUTER_KEYS).to_ne_bytes();
                    // SAFETY: the outer map outlives the readers (joined before it is dropped);
                    // keys are 4 bytes; the guard is held.
                    let inner = unsafe { raw::bpf_map_lookup_elem(outer, key.as_ptr().cast()) };
                    if inner.is_null() {
                        continue;
                    }
                    // SAFETY: a non-null result is a live inner map while the guard is held.
                    let max = unsafe { (*(inner as *const BpfMap)).max_entries };
                    let mut generation = None;
                    for idx in [0, max / 2, max - 1, max] {
                        let k = idx.to_ne_bytes();
                        // SAFETY: as above; inner is a plain ARRAY.
                        let v = unsafe { raw::array_map_lookup_elem(inner, k.as_ptr().cast()) };
                        if idx == max {
                            assert!(
                                v.is_null(),
                                "index {idx} of a {max}-entry array is out of range"
                            );
                            continue;
                        }
                        assert!(!v.is_null());
                        // SAFETY: v points at WORDS u64 words of this inner's value.
                        let words = unsafe { std::slice::from_raw_parts(v as *const u64, WORDS) };
                        let g = words[0];
                        assert!(words.iter().all(|w| *w == g), "torn value {words:?}");
                        assert_eq!(
                            1 + (g % 17) as u32,
                            max,
                            "value {g} does not belong to a {max}-entry map"
                        );
                        assert_eq!(
                            *generation.get_or_insert(g),
                            g,
                            "entries of one map disagree"
                        );
                        // Widen the window in which a prematurely freed map would be reused.
                        for _ in 0..(i % 64) {
                            std::hint::spin_loop();
                        }
                    }
                    // SAFETY: as above.
                    let max_after = unsafe { (*(inner as *const BpfMap)).max_entries };
                    assert_eq!(max, max_after, "inner map header changed under a reader");
                    seen += 1;
                }
                reads.fetch_add(seen, Ordering::Relaxed);
            })
        })
        .collect();

    let started = Instant::now();
    for generation in 1..=swaps {
        let key = ((generation % OUTER_KEYS as u64) as u32).to_ne_bytes();
        let inner = inner_for(generation);
        outer.update_inner_map(&key, &inner, BPF_ANY).unwrap();
        drop(inner);
        if generation % 1000 == 0 {
            // Deletes and re-inserts go through the same deferred release.
            let _ = outer.delete_elem(&key);
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let total_reads = reads.load(Ordering::Relaxed);
    assert!(total_reads > 0, "readers made progress");
    eprintln!(
        "{outer_type}: {swaps} swaps in {elapsed:?} ({:.0} ns/swap incl. inner creation), {total_reads} reader runs",
        elapsed.as_nanos() as f64 / swaps as f64
    );

    // Only the outer and at most OUTER_KEYS inners (plus not-yet-collected garbage) are alive.
    drop(outer);
    let deadline = Instant::now() + Duration::from_secs(30);
    while live_maps() != baseline && Instant::now() < deadline {
        kbpf_maps::flush_deferred();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        live_maps(),
        baseline,
        "{outer_type}: every inner map was freed"
    );
}

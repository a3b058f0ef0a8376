//! Concurrency stress on a plain hash: program-style readers see either the old or the new
//! value of a key being replaced, deleted and re-inserted, never a torn or freed one.
//! `KBPF_STRESS_SWAPS` overrides the number of replace rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType, raw};

const WORDS: usize = 6;

/// Replace rounds: `KBPF_STRESS_SWAPS` when set (scripts/valgrind-stress.sh lowers it, since
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

#[test]
fn hash_replace_is_never_torn() {
    let rounds = stress_count(if cfg!(debug_assertions) {
        20_000
    } else {
        300_000
    });
    let m = Map::create(&MapAttr::new(MapType::Hash, 4, (WORDS * 8) as u32, 8), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ptr = m.as_ptr() as usize;
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut hits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _run = kbpf_maps::pin();
                    for key in 0..8u32 {
                        let k = key.to_ne_bytes();
                        // SAFETY: the map outlives the readers; guard held; 4-byte key.
                        let v =
                            unsafe { raw::bpf_map_lookup_elem(ptr as *mut _, k.as_ptr().cast()) };
                        if v.is_null() {
                            continue;
                        }
                        // SAFETY: v points at the element's WORDS-word value.
                        let w = unsafe { std::slice::from_raw_parts(v as *const u64, WORDS) };
                        assert!(w.iter().all(|x| *x == w[0]), "torn {w:?}");
                        assert_eq!(w[0] % 8, key as u64, "value of another key");
                        hits += 1;
                    }
                }
                hits
            })
        })
        .collect();
    for i in 0..rounds {
        let key = (i % 8) as u32;
        let val = i - i % 8 + key as u64;
        let v: Vec<u8> = (0..WORDS).flat_map(|_| val.to_ne_bytes()).collect();
        m.update_elem(&key.to_ne_bytes(), &v, BPF_ANY).unwrap();
        if i % 7 == 0 {
            m.delete_elem(&key.to_ne_bytes()).unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let hits: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(hits > 0);
}

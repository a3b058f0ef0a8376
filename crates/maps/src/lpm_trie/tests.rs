//! Unit tests of the LPM trie: creation checks, the kernel's worked example, flag and errno
//! semantics, the intermediate-node rules, `get_next_key`'s post-order, `memlock`, the
//! program-side functions, a model-based random test and concurrent readers.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Errno;
use crate::gen_lookup::{GenLookup, lookup_fn, raw_function_addr, raw_function_name};
use crate::raw::{bpf_map_delete_elem, bpf_map_lookup_elem, bpf_map_update_elem, pin};
use crate::uapi::*;
use crate::{Map, MapAttr};

fn trie(data: u32, value: u32, n: u32) -> Map {
    Map::create(
        &MapAttr::new(MapType::LpmTrie, 4 + data, value, n).flags(BPF_F_NO_PREALLOC),
        None,
    )
    .unwrap()
}

fn key(pl: u32, data: &[u8]) -> Vec<u8> {
    let mut k = pl.to_ne_bytes().to_vec();
    k.extend_from_slice(data);
    k
}

fn v4(pl: u32, a: [u8; 4]) -> Vec<u8> {
    key(pl, &a)
}

fn errno<T: std::fmt::Debug>(r: Result<T, crate::MapError>) -> Errno {
    r.unwrap_err().errno
}

#[test]
fn creation_checks() {
    let c = |k, v, n, f| {
        Map::create(&MapAttr::new(MapType::LpmTrie, k, v, n).flags(f), None).map(|_| ())
    };
    let np = BPF_F_NO_PREALLOC;
    assert!(c(8, 8, 1, np).is_ok());
    assert!(c(5, 1, 1, np).is_ok());
    assert!(
        c(
            260,
            LPM_VAL_SIZE_MAX,
            1,
            np | BPF_F_RDONLY_PROG | BPF_F_NUMA_NODE
        )
        .is_ok()
    );
    for (k, v, n, f) in [
        (8, 8, 1, 0),
        (8, 8, 0, np),
        (4, 8, 1, np),
        (261, 8, 1, np),
        (8, 0, 1, np),
        (8, LPM_VAL_SIZE_MAX + 1, 1, np),
        (8, 8, 1, np | BPF_F_ZERO_SEED),
        (8, 8, 1, np | BPF_F_INNER_MAP),
        (8, 8, 1, np | BPF_F_MMAPABLE),
        (8, 8, 1, np | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG),
        (8, 8, 1, np | BPF_F_RDONLY | BPF_F_WRONLY),
    ] {
        assert_eq!(
            errno(c(k, v, n, f)),
            Errno::EINVAL,
            "k{k} v{v} n{n} f{f:#x}"
        );
    }
    let m = trie(4, 8, 3);
    assert_eq!(m.gen_lookup(), GenLookup::NotSupported);
    assert_eq!(m.memlock(), 0);
    assert_eq!(m.info().map_type, MapType::LpmTrie);
}

/// The four-node example at the top of the kernel's lpm_trie.c.
#[test]
fn kernel_example_and_post_order() {
    let m = trie(4, 4, 16);
    let put = |pl, a, v: u32| {
        m.update_elem(&v4(pl, a), &v.to_ne_bytes(), BPF_ANY)
            .unwrap()
    };
    put(16, [192, 168, 0, 0], 1);
    put(24, [192, 168, 0, 0], 2);
    put(24, [192, 168, 128, 0], 3);
    put(24, [192, 168, 1, 0], 5);
    let keys = m.keys();
    assert_eq!(
        keys,
        vec![
            v4(24, [192, 168, 0, 0]),
            v4(24, [192, 168, 1, 0]),
            v4(24, [192, 168, 128, 0]),
            v4(16, [192, 168, 0, 0]),
        ]
    );
    let get = |pl, a| m.lookup_elem(&v4(pl, a)).map(|v| v[0]);
    assert_eq!(get(32, [192, 168, 1, 77]), Ok(5));
    assert_eq!(get(32, [192, 168, 2, 1]), Ok(1));
    assert_eq!(get(32, [192, 168, 128, 9]), Ok(3));
    // Only prefixes no longer than the key's take part.
    assert_eq!(get(20, [192, 168, 1, 77]), Ok(1));
    assert_eq!(errno(get(8, [192, 168, 1, 77])), Errno::ENOENT);
    assert_eq!(errno(get(32, [10, 0, 0, 1])), Errno::ENOENT);
    assert_eq!(errno(get(33, [192, 168, 1, 1])), Errno::ENOENT);
    // The intermediate node 192.168.0.0/23 is neither a key nor deletable.
    assert_eq!(
        errno(m.delete_elem(&v4(23, [192, 168, 0, 0]))),
        Errno::ENOENT
    );
    assert_eq!(m.elem_count(), 4);
    // It becomes a real node on demand (ANY counts a new element; EXIST does not find it).
    assert_eq!(
        errno(m.update_elem(&v4(23, [192, 168, 0, 0]), &[9, 0, 0, 0], BPF_EXIST)),
        Errno::ENOENT
    );
    m.update_elem(&v4(23, [192, 168, 0, 0]), &[9, 0, 0, 0], BPF_NOEXIST)
        .unwrap();
    assert_eq!(m.elem_count(), 5);
    assert_eq!(m.keys()[2], v4(23, [192, 168, 0, 0]));
}

#[test]
fn flags_full_trie_and_errnos() {
    let m = trie(4, 8, 2);
    let v = [7u8; 8];
    assert_eq!(
        errno(m.update_elem(&v4(8, [10, 0, 0, 0]), &v, 3)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(m.update_elem(&v4(8, [10, 0, 0, 0]), &v, BPF_F_LOCK)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(m.update_elem(&v4(33, [10, 0, 0, 0]), &v, 0)),
        Errno::EINVAL
    );
    assert_eq!(errno(m.delete_elem(&v4(33, [10, 0, 0, 0]))), Errno::EINVAL);
    assert_eq!(
        errno(m.update_elem(&v4(8, [10, 0, 0, 0]), &v, BPF_EXIST)),
        Errno::ENOENT
    );
    m.update_elem(&v4(8, [10, 0, 0, 0]), &v, BPF_NOEXIST)
        .unwrap();
    // Bits past the prefix do not make another key.
    assert_eq!(
        errno(m.update_elem(&v4(8, [10, 1, 2, 3]), &v, BPF_NOEXIST)),
        Errno::EEXIST
    );
    m.update_elem(&v4(16, [10, 1, 0, 0]), &v, BPF_ANY).unwrap();
    // Full: insertions are ENOSPC, replacements still work (and keep the new data bits).
    assert_eq!(
        errno(m.update_elem(&v4(24, [10, 1, 1, 0]), &v, BPF_ANY)),
        Errno::ENOSPC
    );
    assert_eq!(
        errno(m.update_elem(&v4(0, [0; 4]), &v, BPF_NOEXIST)),
        Errno::ENOSPC
    );
    m.update_elem(&v4(8, [10, 9, 9, 9]), &[1; 8], BPF_EXIST)
        .unwrap();
    assert_eq!(m.keys(), vec![v4(16, [10, 1, 0, 0]), v4(8, [10, 9, 9, 9])]);
    assert_eq!(m.lookup_elem(&v4(32, [10, 2, 3, 4])).unwrap(), vec![1; 8]);
    assert_eq!(m.memlock(), 2 * (24 + 4 + 8));
    assert_eq!(errno(m.delete_elem(&v4(24, [10, 1, 0, 0]))), Errno::ENOENT);
    m.delete_elem(&v4(16, [10, 1, 99, 99])).unwrap();
    assert_eq!(m.memlock(), 24 + 4 + 8);
    assert_eq!(
        errno(m.lookup_and_delete_elem(&v4(8, [10, 0, 0, 0]), 0)),
        Errno::ENOTSUPP
    );
}

#[test]
fn delete_keeps_the_kernel_shape() {
    let m = trie(1, 1, 10);
    let put = |pl, b: u8| m.update_elem(&key(pl, &[b]), &[b], BPF_ANY).unwrap();
    // 0b1000_0000/1 with children /2 0b10.. and 0b11..
    put(1, 0x80);
    put(2, 0x80);
    put(2, 0xc0);
    // Deleting a node with two children leaves it as an intermediate node.
    m.delete_elem(&key(1, &[0x80])).unwrap();
    assert_eq!(m.keys(), vec![key(2, &[0x80]), key(2, &[0xc0])]);
    assert_eq!(errno(m.lookup_elem(&key(1, &[0x80]))), Errno::ENOENT);
    // Its leaf child goes, and the intermediate node with it (the sibling moves up).
    m.delete_elem(&key(2, &[0x80])).unwrap();
    assert_eq!(m.keys(), vec![key(2, &[0xc0])]);
    m.delete_elem(&key(2, &[0xc0])).unwrap();
    assert_eq!(errno(m.get_next_key(None)), Errno::ENOENT);
    assert_eq!(m.elem_count(), 0);
}

#[test]
fn get_next_key_edges() {
    let m = trie(2, 1, 10);
    assert_eq!(errno(m.get_next_key(None)), Errno::ENOENT);
    assert_eq!(errno(m.get_next_key(Some(&key(3, &[1, 2])))), Errno::ENOENT);
    m.update_elem(&key(4, &[0x12, 0x34]), &[1], 0).unwrap();
    m.update_elem(&key(12, &[0x10, 0xff]), &[2], 0).unwrap();
    let first = key(12, &[0x10, 0xff]);
    // Trailing data bits come back as they were written.
    assert_eq!(m.get_next_key(None).unwrap(), first);
    assert_eq!(m.get_next_key(Some(&key(17, &[0; 2]))).unwrap(), first);
    assert_eq!(m.get_next_key(Some(&key(5, &[0x12, 0]))).unwrap(), first);
    assert_eq!(m.get_next_key(Some(&first)).unwrap(), key(4, &[0x12, 0x34]));
    // Matching prefix bits are enough to find a node, trailing bits are ignored.
    assert_eq!(
        m.get_next_key(Some(&key(12, &[0x10, 0xf0]))).unwrap(),
        key(4, &[0x12, 0x34])
    );
    assert_eq!(
        errno(m.get_next_key(Some(&key(4, &[0x10, 0])))),
        Errno::ENOENT
    );
}

#[test]
fn program_side_functions() {
    let m = trie(4, 8, 4);
    let _run = pin();
    let p = m.as_ptr();
    let k = v4(24, [10, 0, 0, 0]);
    let probe = v4(32, [10, 0, 0, 7]);
    let v = 0x1122_3344_5566_7788u64.to_ne_bytes();
    // SAFETY: a live LPM trie, keys of key_size bytes, values of value_size bytes, pinned.
    unsafe {
        assert!(bpf_map_lookup_elem(p, probe.as_ptr().cast()).is_null());
        let r = bpf_map_update_elem(p, k.as_ptr().cast(), v.as_ptr().cast(), BPF_NOEXIST);
        assert_eq!(r, 0);
        let r = bpf_map_update_elem(p, k.as_ptr().cast(), v.as_ptr().cast(), BPF_NOEXIST);
        assert_eq!(r, -17);
        let r = bpf_map_update_elem(p, k.as_ptr().cast(), v.as_ptr().cast(), 4);
        assert_eq!(r, -22);
        let val = bpf_map_lookup_elem(p, probe.as_ptr().cast()) as *const u8;
        assert!(!val.is_null());
        // The kernel's node layout: value after the 24-byte header and the data.
        let node_val = std::slice::from_raw_parts(val, 8);
        assert_eq!(node_val, v);
        // A replaced or deleted node stays readable while the run's guard is held.
        m.update_elem(&k, &[0; 8], BPF_ANY).unwrap();
        m.delete_elem(&k).unwrap();
        assert_eq!(std::slice::from_raw_parts(val, 8), v);
        assert_eq!(bpf_map_delete_elem(p, k.as_ptr().cast()), -2);
        let too_long = v4(33, [10, 0, 0, 0]);
        assert_eq!(bpf_map_delete_elem(p, too_long.as_ptr().cast()), -22);
    }
    let f = lookup_fn(MapType::LpmTrie);
    assert_eq!(raw_function_name(f), Some("trie_lookup_elem"));
    for name in ["trie_lookup_elem", "trie_update_elem", "trie_delete_elem"] {
        assert_eq!(
            raw_function_name(raw_function_addr(name).unwrap()),
            Some(name)
        );
    }
}

/// A prefix as (length, data with the bits past the length cleared).
type Prefix = (u32, Vec<u8>);

/// Post-order as an order on prefixes: a longer prefix of the same bits comes first,
/// otherwise the first differing bit decides (0 before 1).
fn post_order(a: &Prefix, b: &Prefix) -> CmpOrdering {
    let bit = |d: &[u8], i: u32| (d[i as usize / 8] >> (7 - i % 8)) & 1;
    for i in 0..a.0.min(b.0) {
        let (x, y) = (bit(&a.1, i), bit(&b.1, i));
        if x != y {
            return x.cmp(&y);
        }
    }
    b.0.cmp(&a.0)
}

fn masked(pl: u32, d: &[u8]) -> Vec<u8> {
    d.iter()
        .enumerate()
        .map(|(i, b)| {
            let keep = pl.saturating_sub(i as u32 * 8).min(8);
            if keep == 0 {
                0
            } else {
                b & (0xffu8 << (8 - keep))
            }
        })
        .collect()
}

/// Random operations against a reference model: lookups are the longest stored prefix, the
/// dump is the post-order, errnos follow the kernel's rules.
#[test]
fn random_against_model() {
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for ds in [1usize, 2, 3, 16] {
        let max = 24u32;
        let m = trie(ds as u32, 2, max);
        // (prefixlen, masked data) → (data as written, value)
        let mut model: BTreeMap<Prefix, (Vec<u8>, [u8; 2])> = BTreeMap::new();
        for i in 0..3000u32 {
            let pl = rnd(ds as u64 * 8 + 2) as u32;
            let mut data: Vec<u8> = (0..ds).map(|_| rnd(4) as u8 * 0x41).collect();
            if rnd(2) == 0 {
                data[0] = 0x80;
            }
            let k = key(pl, &data);
            let mk = (pl, masked(pl, &data));
            let bits = ds as u32 * 8;
            match rnd(10) {
                0..=4 => {
                    let flags = rnd(4);
                    let v = (i as u16).to_ne_bytes();
                    let exists = model.contains_key(&mk);
                    let want = if flags > BPF_EXIST || pl > bits {
                        Err(Errno::EINVAL)
                    } else if exists && flags == BPF_NOEXIST {
                        Err(Errno::EEXIST)
                    } else if !exists && flags == BPF_EXIST {
                        Err(Errno::ENOENT)
                    } else if !exists && model.len() == max as usize {
                        Err(Errno::ENOSPC)
                    } else {
                        Ok(())
                    };
                    assert_eq!(m.update_elem(&k, &v, flags).map_err(|e| e.errno), want);
                    if want.is_ok() {
                        model.insert(mk, (data.clone(), v));
                    }
                }
                5 | 6 => {
                    let want = if pl > bits {
                        Err(Errno::EINVAL)
                    } else if model.remove(&mk).is_some() {
                        Ok(())
                    } else {
                        Err(Errno::ENOENT)
                    };
                    assert_eq!(m.delete_elem(&k).map_err(|e| e.errno), want);
                }
                _ => {
                    let want = model
                        .iter()
                        .filter(|((p, d), _)| *p <= pl && pl <= bits && masked(*p, &data) == *d)
                        .max_by_key(|((p, _), _)| *p)
                        .map(|(_, (_, v))| v.to_vec())
                        .ok_or(Errno::ENOENT);
                    assert_eq!(m.lookup_elem(&k).map_err(|e| e.errno), want);
                }
            }
            if i % 97 == 0 || i > 2990 {
                let mut want: Vec<Prefix> = model.keys().cloned().collect();
                want.sort_by(post_order);
                let got: Vec<Vec<u8>> = m.keys();
                let want: Vec<Vec<u8>> = want.iter().map(|mk| key(mk.0, &model[mk].0)).collect();
                assert_eq!(got, want, "data size {ds}, op {i}");
                assert_eq!(m.memlock(), (24 + ds as u64 + 2) * model.len() as u64);
            }
        }
    }
}

/// Program-style readers keep looking up while a writer replaces and deletes prefixes; every
/// value read must be one the writer wrote for a prefix of the probe (debug builds poison
/// freed nodes, so a use after free shows as a wrong value).
#[test]
fn concurrent_readers() {
    let m = trie(4, 8, 64);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (m, stop) = (m.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _run = pin();
                    let probe = v4(32, [10, r as u8, 7, 1]);
                    // SAFETY: live trie, 8-byte key, pinned while the value is read.
                    let v = unsafe { bpf_map_lookup_elem(m.as_ptr(), probe.as_ptr().cast()) };
                    if v.is_null() {
                        continue;
                    }
                    std::thread::yield_now();
                    // SAFETY: still pinned; values are 8 bytes.
                    let x = unsafe { (v as *const u64).read_unaligned() };
                    let pl = (x >> 32) as u32;
                    assert!(
                        pl == 8 || pl == 16 || pl == 24 || pl == 32,
                        "bad value {x:#x}"
                    );
                    assert_eq!(x as u32 & 0xffff, 0xbeef);
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for round in 0..4000u32 {
        for pl in [8u32, 16, 24, 32] {
            for r in 0..3u8 {
                let k = v4(pl, [10, r, 7, 1]);
                let v = ((pl as u64) << 32) | (round as u64 & 0xffff) << 16 | 0xbeef;
                if (round + pl) % 3 == 0 {
                    let _ = m.delete_elem(&k);
                } else {
                    m.update_elem(&k, &v.to_ne_bytes(), BPF_ANY).unwrap();
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(seen > 0);
    crate::raw::flush_deferred();
}

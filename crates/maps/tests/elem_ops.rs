//! User-space element operations and their errnos (kernel-semantics §5 and §11).

use kbpf_maps::uapi::*;
use kbpf_maps::{Errno, Map, MapAttr, MapType, ProgRef, Registry};

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn errno<T: std::fmt::Debug>(r: Result<T, kbpf_maps::MapError>) -> Errno {
    r.unwrap_err().errno
}

#[test]
fn array_ops() {
    let m = Map::create(&MapAttr::new(MapType::Array, 4, 8, 4), None).unwrap();
    assert_eq!(
        m.lookup_elem(&k(0)).unwrap(),
        vec![0; 8],
        "never-written slot reads zeros"
    );
    assert_eq!(errno(m.lookup_elem(&k(4))), Errno::ENOENT);
    m.update_elem(&k(1), &7u64.to_ne_bytes(), BPF_ANY).unwrap();
    m.update_elem(&k(1), &8u64.to_ne_bytes(), BPF_EXIST)
        .unwrap();
    assert_eq!(m.lookup_elem(&k(1)).unwrap(), 8u64.to_ne_bytes());
    assert_eq!(
        errno(m.update_elem(&k(1), &[0; 8], BPF_NOEXIST)),
        Errno::EEXIST
    );
    assert_eq!(errno(m.update_elem(&k(4), &[0; 8], BPF_ANY)), Errno::E2BIG);
    for f in [3, 4, 8] {
        assert_eq!(
            errno(m.update_elem(&k(1), &[0; 8], f)),
            Errno::EINVAL,
            "flags {f}"
        );
    }
    assert_eq!(
        m.lookup_elem(&k(1)).unwrap(),
        8u64.to_ne_bytes(),
        "no partial update"
    );
    assert_eq!(errno(m.delete_elem(&k(0))), Errno::EINVAL);
    assert_eq!(errno(m.delete_elem(&k(100))), Errno::EINVAL);
    assert_eq!(m.get_next_key(None).unwrap(), k(0));
    assert_eq!(m.get_next_key(Some(&k(100))).unwrap(), k(0));
    assert_eq!(m.get_next_key(Some(&k(2))).unwrap(), k(3));
    assert_eq!(errno(m.get_next_key(Some(&k(3)))), Errno::ENOENT);
    // API misuse: wrong sizes are EINVAL, never a panic.
    assert_eq!(errno(m.lookup_elem(&[0; 3])), Errno::EINVAL);
    assert_eq!(errno(m.update_elem(&k(0), &[0; 7], BPF_ANY)), Errno::EINVAL);
    assert_eq!(errno(m.lookup_elem_flags(&k(0), BPF_F_LOCK)), Errno::EINVAL);
    assert_eq!(errno(m.lookup_elem_flags(&k(0), 8)), Errno::EINVAL);
}

#[test]
fn percpu_array_values_are_per_cpu_concatenated() {
    let m = Map::create(
        &MapAttr::new(MapType::PercpuArray, 4, 4, 2).nr_cpus(3),
        None,
    )
    .unwrap();
    assert_eq!(m.user_value_size(), 24);
    let mut v = vec![0u8; 24];
    for cpu in 0..3 {
        v[cpu * 8..cpu * 8 + 4].copy_from_slice(&(10 + cpu as u32).to_ne_bytes());
    }
    m.update_elem(&k(1), &v, BPF_ANY).unwrap();
    assert_eq!(m.lookup_elem(&k(1)).unwrap(), v);
    assert_eq!(errno(m.update_elem(&k(1), &[0; 8], BPF_ANY)), Errno::EINVAL);
    assert_eq!(errno(m.update_elem(&k(2), &v, BPF_ANY)), Errno::E2BIG);
    assert_eq!(errno(m.update_elem(&k(0), &v, BPF_NOEXIST)), Errno::EEXIST);
    assert_eq!(errno(m.delete_elem(&k(0))), Errno::EINVAL);
}

/// Regression: user-space access found element `i`'s per-CPU pointer at `i * value_size`
/// instead of `i * 8`, so every per-CPU array with values wider than 8 bytes read and wrote
/// the wrong memory (`kbpf map create … type percpu_array value 16` died with SIGSEGV; so did
/// `prog loadall` of Katran's balancer). Every element of every width keeps its own bytes on
/// every CPU, through update, lookup, iteration and a program-side lookup.
#[test]
fn percpu_array_wide_values_stay_in_their_own_slots() {
    for value_size in [1u32, 3, 8, 12, 16, 24, 64, 256] {
        for max_entries in [1u32, 2, 3, 100] {
            let cpus = 3usize;
            let m = Map::create(
                &MapAttr::new(MapType::PercpuArray, 4, value_size, max_entries)
                    .nr_cpus(cpus as u32),
                None,
            )
            .unwrap();
            let stride = (value_size as usize).div_ceil(8) * 8;
            let value_of = |i: u32| -> Vec<u8> {
                let mut v = vec![0u8; stride * cpus];
                for cpu in 0..cpus {
                    for b in 0..value_size as usize {
                        v[cpu * stride + b] = (i as usize * 31 + cpu * 7 + b) as u8 | 1;
                    }
                }
                v
            };
            for i in 0..max_entries {
                m.update_elem(&k(i), &value_of(i), BPF_ANY).unwrap();
            }
            for i in 0..max_entries {
                assert_eq!(
                    m.lookup_elem(&k(i)).unwrap(),
                    value_of(i),
                    "value {value_size} entries {max_entries} index {i}"
                );
            }
            let mut next = m.get_next_key(None).unwrap();
            let mut seen = 1;
            while let Ok(n) = m.get_next_key(Some(&next)) {
                next = n;
                seen += 1;
            }
            assert_eq!(seen, max_entries);
            // A program on CPU 0 sees CPU 0's copy of the last element.
            let last = max_entries - 1;
            let p = unsafe {
                kbpf_maps::raw::percpu_array_map_lookup_elem(
                    m.as_ptr(),
                    k(last).as_ptr() as *const std::ffi::c_void,
                )
            };
            assert!(!p.is_null());
            let got = unsafe { std::slice::from_raw_parts(p as *const u8, value_size as usize) };
            assert_eq!(got, &value_of(last)[..value_size as usize]);
        }
    }
}

#[test]
fn hash_ops() {
    let m = Map::create(&MapAttr::new(MapType::Hash, 4, 8, 2), None).unwrap();
    assert_eq!(errno(m.lookup_elem(&k(1))), Errno::ENOENT);
    assert_eq!(errno(m.delete_elem(&k(1))), Errno::ENOENT);
    assert_eq!(
        errno(m.update_elem(&k(1), &[1; 8], BPF_EXIST)),
        Errno::ENOENT
    );
    m.update_elem(&k(1), &[1; 8], BPF_NOEXIST).unwrap();
    assert_eq!(
        errno(m.update_elem(&k(1), &[2; 8], BPF_NOEXIST)),
        Errno::EEXIST
    );
    m.update_elem(&k(2), &[2; 8], BPF_ANY).unwrap();
    // Full: new keys fail, replacing works.
    assert_eq!(errno(m.update_elem(&k(3), &[3; 8], BPF_ANY)), Errno::E2BIG);
    assert_eq!(
        errno(m.update_elem(&k(3), &[3; 8], BPF_NOEXIST)),
        Errno::E2BIG
    );
    assert_eq!(
        errno(m.update_elem(&k(3), &[3; 8], BPF_EXIST)),
        Errno::ENOENT,
        "EXIST on missing even when full"
    );
    m.update_elem(&k(2), &[9; 8], BPF_ANY).unwrap();
    m.update_elem(&k(2), &[8; 8], BPF_EXIST).unwrap();
    assert_eq!(m.lookup_elem(&k(2)).unwrap(), vec![8; 8]);
    for f in [3, 8] {
        assert_eq!(errno(m.update_elem(&k(2), &[0; 8], f)), Errno::EINVAL);
    }
    assert_eq!(
        errno(m.update_elem(&k(2), &[0; 8], BPF_F_LOCK)),
        Errno::EINVAL
    );
    assert_eq!(m.elem_count(), 2);
    // get_next_key: walk all, missing key restarts from the first.
    let first = m.get_next_key(None).unwrap();
    let second = m.get_next_key(Some(&first)).unwrap();
    assert_ne!(first, second);
    assert_eq!(errno(m.get_next_key(Some(&second))), Errno::ENOENT);
    assert_eq!(m.get_next_key(Some(&k(77))).unwrap(), first);
    assert_eq!(m.keys(), vec![first.clone(), second.clone()]);
    m.delete_elem(&k(1)).unwrap();
    m.update_elem(&k(3), &[3; 8], BPF_ANY).unwrap();
    assert_eq!(m.elem_count(), 2);
    // NO_PREALLOC behaves the same for E2BIG.
    let d = Map::create(
        &MapAttr::new(MapType::Hash, 4, 8, 1).flags(BPF_F_NO_PREALLOC),
        None,
    )
    .unwrap();
    d.update_elem(&k(1), &[1; 8], BPF_ANY).unwrap();
    assert_eq!(errno(d.update_elem(&k(2), &[1; 8], BPF_ANY)), Errno::E2BIG);
    d.update_elem(&k(1), &[2; 8], BPF_ANY).unwrap();
}

#[test]
fn hash_odd_key_sizes() {
    let m = Map::create(&MapAttr::new(MapType::Hash, 3, 5, 64), None).unwrap();
    for i in 0..64u8 {
        m.update_elem(&[i, 1, 2], &[i; 5], BPF_NOEXIST).unwrap();
    }
    for i in 0..64u8 {
        assert_eq!(m.lookup_elem(&[i, 1, 2]).unwrap(), vec![i; 5]);
    }
    let mut n = 0;
    let mut key = None;
    while let Ok(next) = m.get_next_key(key.as_deref()) {
        n += 1;
        key = Some(next);
    }
    assert_eq!(n, 64, "get_next_key visits every key once");
}

#[test]
fn zero_seed_iteration_order_matches_the_kernel() {
    // Orders dumped by bpftool on Linux 6.18 for ZERO_SEED hashes (jhash2 for 4/16-byte keys,
    // jhash for 3-byte keys).
    let order = |ks: u32, n: u32, keys: &[Vec<u8>]| {
        let m = Map::create(
            &MapAttr::new(MapType::Hash, ks, 4, n).flags(BPF_F_ZERO_SEED),
            None,
        )
        .unwrap();
        for key in keys {
            m.update_elem(key, &[0; 4], BPF_ANY).unwrap();
        }
        let mut out = vec![];
        let mut key: Option<Vec<u8>> = None;
        while let Ok(next) = m.get_next_key(key.as_deref()) {
            out.push(next[0]);
            key = Some(next);
        }
        out
    };
    let keys4: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i, 0, 0, 0]).collect();
    assert_eq!(order(4, 8, &keys4), [0, 4, 7, 2, 1, 6, 5, 3]);
    let keys3: Vec<Vec<u8>> = (1..=10u8).map(|i| vec![i, 0, 7]).collect();
    assert_eq!(order(3, 16, &keys3), [8, 4, 1, 6, 7, 2, 10, 9, 3, 5]);
    let keys16: Vec<Vec<u8>> = (1..=10u8)
        .map(|i| vec![i, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, i])
        .collect();
    assert_eq!(order(16, 32, &keys16), [6, 5, 8, 7, 2, 4, 9, 10, 3, 1]);
}

#[test]
fn percpu_hash_ops() {
    let m = Map::create(&MapAttr::new(MapType::PercpuHash, 4, 4, 2).nr_cpus(2), None).unwrap();
    let v: Vec<u8> = [1u32, 0, 2, 0]
        .iter()
        .flat_map(|x| x.to_ne_bytes())
        .collect();
    m.update_elem(&k(5), &v, BPF_NOEXIST).unwrap();
    assert_eq!(m.lookup_elem(&k(5)).unwrap(), v);
    let v2: Vec<u8> = [3u32, 0, 4, 0]
        .iter()
        .flat_map(|x| x.to_ne_bytes())
        .collect();
    m.update_elem(&k(5), &v2, BPF_EXIST).unwrap();
    assert_eq!(m.lookup_elem(&k(5)).unwrap(), v2);
    assert_eq!(errno(m.update_elem(&k(5), &v2, BPF_F_LOCK)), Errno::EINVAL);
    m.delete_elem(&k(5)).unwrap();
    assert_eq!(errno(m.lookup_elem(&k(5))), Errno::ENOENT);
}

#[test]
fn lru_hash_evicts_instead_of_e2big() {
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        let m = Map::create(&MapAttr::new(t, 4, 8, 4).nr_cpus(1), None).unwrap();
        for i in 0..100u32 {
            m.update_elem(&k(i), &(i as u64).to_ne_bytes(), BPF_ANY)
                .unwrap();
            assert!(m.elem_count() <= 4);
        }
        assert_eq!(m.elem_count(), 4);
        // The most recent keys survive.
        for i in 96..100u32 {
            assert_eq!(
                m.lookup_elem(&k(i)).unwrap(),
                (i as u64).to_ne_bytes(),
                "{t}"
            );
        }
        assert_eq!(errno(m.lookup_elem(&k(0))), Errno::ENOENT);
        assert_eq!(
            errno(m.update_elem(&k(1000), &[0; 8], BPF_EXIST)),
            Errno::ENOENT
        );
        assert_eq!(
            errno(m.update_elem(&k(99), &[0; 8], BPF_NOEXIST)),
            Errno::EEXIST
        );
        // Like the kernel's prealloc_lru_pop, an update takes (evicting) a free element before
        // the flag check: the first failed update above evicted the oldest key (96) and gave
        // its element back to the free pool, which the second one then used.
        assert_eq!(m.elem_count(), 3, "{t}");
        assert_eq!(errno(m.lookup_elem(&k(96))), Errno::ENOENT);
        m.delete_elem(&k(99)).unwrap();
        assert_eq!(m.elem_count(), 2);
    }
}

#[test]
fn lru_reference_bit_gives_a_second_chance() {
    let m = Map::create(&MapAttr::new(MapType::LruHash, 4, 8, 2), None).unwrap();
    m.update_elem(&k(1), &[1; 8], BPF_ANY).unwrap();
    m.update_elem(&k(2), &[2; 8], BPF_ANY).unwrap();
    // A program lookup of key 1 sets its ref bit.
    let _g = kbpf_maps::pin();
    // SAFETY: live LRU map, 4-byte key, guard held.
    let p = unsafe { kbpf_maps::raw::bpf_map_lookup_elem(m.as_ptr(), k(1).as_ptr().cast()) };
    assert!(!p.is_null());
    m.update_elem(&k(3), &[3; 8], BPF_ANY).unwrap();
    assert!(m.lookup_elem(&k(1)).is_ok(), "referenced key 1 survived");
    assert_eq!(
        errno(m.lookup_elem(&k(2))),
        Errno::ENOENT,
        "key 2 was evicted"
    );
}

#[test]
fn array_of_maps_ops() {
    let r = Registry::new();
    let tmpl = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 3).name("tmpl"), 0)
        .unwrap();
    let outer = r
        .map_create(
            &MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2).name("outer"),
            tmpl,
        )
        .unwrap();
    let inner = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 3).name("inner"), 0)
        .unwrap();
    let inner_id = r.map(inner).unwrap().id();
    let v = |fd: u32| fd.to_ne_bytes();
    assert_eq!(
        errno(r.map_update_elem(outer, &k(0), &v(inner), BPF_NOEXIST)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.map_update_elem(outer, &k(0), &v(inner), BPF_EXIST)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.map_update_elem(outer, &k(2), &v(inner), BPF_ANY)),
        Errno::E2BIG
    );
    assert_eq!(
        errno(r.map_update_elem(outer, &k(0), &v(outer), BPF_ANY)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.map_update_elem(outer, &k(0), &v(0), BPF_ANY)),
        Errno::EINVAL,
        "stdin"
    );
    assert_eq!(
        errno(r.map_update_elem(outer, &k(0), &v(555), BPF_ANY)),
        Errno::EBADF
    );
    assert_eq!(
        errno(r.map_update_elem(outer, &k(0), &v(inner), BPF_F_LOCK)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.map_lookup_elem(outer, &k(0), 0)),
        Errno::ENOENT,
        "empty slot"
    );
    r.map_update_elem(outer, &k(0), &v(inner), BPF_ANY).unwrap();
    r.map_update_elem(outer, &k(1), &v(tmpl), BPF_ANY).unwrap();
    assert_eq!(
        r.map_lookup_elem(outer, &k(0), 0).unwrap(),
        inner_id.to_ne_bytes()
    );
    assert_eq!(errno(r.map_lookup_elem(outer, &k(2), 0)), Errno::ENOENT);
    // The outer keeps the inner alive after its fd is closed.
    r.close(inner).unwrap();
    assert!(r.map_by_id(inner_id).is_some());
    r.map_delete_elem(outer, &k(0)).unwrap();
    assert_eq!(errno(r.map_delete_elem(outer, &k(0))), Errno::ENOENT);
    assert_eq!(errno(r.map_delete_elem(outer, &k(2))), Errno::E2BIG);
    assert_eq!(r.map_get_next_key(outer, None).unwrap(), k(0));
    assert_eq!(errno(r.map_get_next_key(outer, Some(&k(1)))), Errno::ENOENT);
    kbpf_maps::flush_deferred();
    // Freed once the deferred release ran (other tests may pin concurrently: retry a bit).
    for _ in 0..1000 {
        if r.map_by_id(inner_id).is_none() {
            break;
        }
        kbpf_maps::flush_deferred();
        std::thread::yield_now();
    }
    assert!(
        r.map_by_id(inner_id).is_none(),
        "inner map freed after delete"
    );
}

#[test]
fn hash_of_maps_ops() {
    let r = Registry::new();
    let tmpl = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 3), 0)
        .unwrap();
    let hom = r
        .map_create(
            &MapAttr::new(MapType::HashOfMaps, 4, 4, 1).name("hom"),
            tmpl,
        )
        .unwrap();
    let a = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 3), 0)
        .unwrap();
    let b = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 3), 0)
        .unwrap();
    let v = |fd: u32| fd.to_ne_bytes();
    assert_eq!(
        errno(r.map_update_elem(hom, &k(1), &v(a), BPF_EXIST)),
        Errno::ENOENT
    );
    r.map_update_elem(hom, &k(1), &v(a), BPF_NOEXIST).unwrap();
    assert_eq!(
        errno(r.map_update_elem(hom, &k(1), &v(b), BPF_NOEXIST)),
        Errno::EEXIST
    );
    assert_eq!(
        errno(r.map_update_elem(hom, &k(2), &v(b), BPF_ANY)),
        Errno::E2BIG,
        "full"
    );
    assert_eq!(
        errno(r.map_update_elem(hom, &k(1), &v(b), BPF_F_LOCK)),
        Errno::EINVAL
    );
    // fd resolution happens before the flag checks for HASH_OF_MAPS.
    assert_eq!(
        errno(r.map_update_elem(hom, &k(1), &v(999), BPF_NOEXIST)),
        Errno::EBADF
    );
    r.map_update_elem(hom, &k(1), &v(b), BPF_EXIST).unwrap();
    assert_eq!(
        r.map_lookup_elem(hom, &k(1), 0).unwrap(),
        r.map(b).unwrap().id().to_ne_bytes()
    );
    assert_eq!(errno(r.map_lookup_elem(hom, &k(2), 0)), Errno::ENOENT);
    r.map_delete_elem(hom, &k(1)).unwrap();
    assert_eq!(errno(r.map_delete_elem(hom, &k(1))), Errno::ENOENT);
    // Map-level API refuses byte values for fd maps.
    assert_eq!(
        errno(r.map(hom).unwrap().update_elem(&k(1), &[0; 4], BPF_ANY)),
        Errno::EINVAL
    );
}

#[test]
fn prog_array_ops() {
    let r = Registry::new();
    let pa = r
        .map_create(&MapAttr::new(MapType::ProgArray, 4, 4, 2), 0)
        .unwrap();
    let prog = r.add_prog(ProgRef {
        id: 42,
        prog_type: 6, // BPF_PROG_TYPE_XDP
        ptr: 0x1000,
        keep_alive: None,
    });
    let other_type = r.add_prog(ProgRef {
        id: 43,
        prog_type: 1,
        ptr: 0x2000,
        keep_alive: None,
    });
    let map = r.add_map(&Map::create(&MapAttr::new(MapType::Array, 4, 4, 1), None).unwrap());
    assert_eq!(
        errno(r.map_update_elem(pa, &k(0), &map.to_ne_bytes(), BPF_ANY)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.map_update_elem(pa, &k(0), &prog.to_ne_bytes(), BPF_NOEXIST)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.map_update_elem(pa, &k(2), &prog.to_ne_bytes(), BPF_ANY)),
        Errno::E2BIG
    );
    assert_eq!(errno(r.map_lookup_elem(pa, &k(0), 0)), Errno::ENOENT);
    r.map_update_elem(pa, &k(0), &prog.to_ne_bytes(), BPF_ANY)
        .unwrap();
    assert_eq!(
        r.map_lookup_elem(pa, &k(0), 0).unwrap(),
        42u32.to_ne_bytes()
    );
    // The slot holds the program pointer where tail calls read it.
    let m = r.map(pa).unwrap();
    // SAFETY: slot 0 of a live 2-entry prog array lies inside the map allocation.
    let slot =
        unsafe { ((m.as_ptr() as *const u8).add(m.value_off() as usize) as *const u64).read() };
    assert_eq!(slot, 0x1000);
    // SAFETY: live prog array.
    unsafe {
        assert_eq!(
            kbpf_maps::raw::prog_array_get(m.as_ptr(), 0) as usize,
            0x1000
        );
        assert!(kbpf_maps::raw::prog_array_get(m.as_ptr(), 1).is_null());
        assert!(kbpf_maps::raw::prog_array_get(m.as_ptr(), 2).is_null());
    }
    // The owner type is XDP now: another type is refused, as bpf_prog_map_compatible does.
    assert_eq!(
        errno(r.map_update_elem(pa, &k(1), &other_type.to_ne_bytes(), BPF_ANY)),
        Errno::EINVAL
    );
    assert!(m.prog_array_compatible(6));
    assert!(!m.prog_array_compatible(1));
    r.map_delete_elem(pa, &k(0)).unwrap();
    assert_eq!(errno(r.map_delete_elem(pa, &k(0))), Errno::ENOENT);
    assert_eq!(errno(r.map_delete_elem(pa, &k(5))), Errno::E2BIG);
}

#[test]
fn fd_access_modes() {
    let r = Registry::new();
    let ro = r
        .map_create(
            &MapAttr::new(MapType::Array, 4, 4, 1).flags(BPF_F_RDONLY),
            0,
        )
        .unwrap();
    let wo = r
        .map_create(
            &MapAttr::new(MapType::Array, 4, 4, 1).flags(BPF_F_WRONLY),
            0,
        )
        .unwrap();
    r.map_lookup_elem(ro, &k(0), 0).unwrap();
    assert_eq!(
        errno(r.map_update_elem(ro, &k(0), &[0; 4], BPF_ANY)),
        Errno::EPERM
    );
    assert_eq!(errno(r.map_delete_elem(ro, &k(0))), Errno::EPERM);
    assert_eq!(errno(r.map_lookup_elem(wo, &k(0), 0)), Errno::EPERM);
    assert_eq!(errno(r.map_get_next_key(wo, None)), Errno::EPERM);
    r.map_update_elem(wo, &k(0), &[0; 4], BPF_ANY).unwrap();
    assert_eq!(errno(r.map_lookup_elem(77, &k(0), 0)), Errno::EBADF);
    assert_eq!(errno(r.map_lookup_elem(1, &k(0), 0)), Errno::EINVAL);
    assert_eq!(r.close(77), Err(Errno::EBADF));
}

#[test]
fn fd_maps_without_user_lookup() {
    let m = Map::create(&MapAttr::new(MapType::PerfEventArray, 4, 4, 2), None).unwrap();
    assert_eq!(errno(m.lookup_elem(&k(0))), Errno::ENOTSUPP);
    assert_eq!(errno(m.delete_elem(&k(0))), Errno::ENOENT);
    assert_eq!(errno(m.delete_elem(&k(2))), Errno::E2BIG);
}

#[test]
fn queue_and_stack_ops() {
    for t in [MapType::Queue, MapType::Stack] {
        let m = Map::create(&MapAttr::new(t, 0, 4, 2), None).unwrap();
        assert_eq!(errno(m.lookup_elem(&[])), Errno::ENOENT, "{t} peek empty");
        assert_eq!(errno(m.lookup_and_delete_elem(&[], 0)), Errno::ENOENT);
        m.update_elem(&[], &k(1), BPF_ANY).unwrap();
        m.update_elem(&[], &k(2), BPF_ANY).unwrap();
        assert_eq!(
            errno(m.update_elem(&[], &k(3), BPF_ANY)),
            Errno::E2BIG,
            "{t} full"
        );
        assert_eq!(errno(m.update_elem(&[], &k(3), BPF_NOEXIST)), Errno::EINVAL);
        assert_eq!(errno(m.update_elem(&[], &k(3), 3)), Errno::EINVAL);
        assert_eq!(errno(m.update_elem(&[], &k(3), BPF_F_LOCK)), Errno::EINVAL);
        // BPF_EXIST overwrites the oldest element.
        m.update_elem(&[], &k(3), BPF_EXIST).unwrap();
        let (first, second) = if t == MapType::Queue { (2, 3) } else { (3, 2) };
        assert_eq!(m.lookup_elem(&[]).unwrap(), k(first), "{t} peek");
        assert_eq!(errno(m.lookup_and_delete_elem(&[], 1)), Errno::EINVAL);
        assert_eq!(m.lookup_and_delete_elem(&[], 0).unwrap(), k(first));
        assert_eq!(m.lookup_and_delete_elem(&[], 0).unwrap(), k(second));
        assert_eq!(errno(m.delete_elem(&[])), Errno::EINVAL);
        assert_eq!(errno(m.get_next_key(None)), Errno::EINVAL);
        assert_eq!(errno(m.lookup_elem(&[0])), Errno::EINVAL, "keys are empty");
    }
}

#[test]
fn queue_program_helpers() {
    let m = Map::create(&MapAttr::new(MapType::Queue, 0, 8, 4), None).unwrap();
    let v = 77u64.to_ne_bytes();
    let mut out = [0xffu8; 8];
    // SAFETY: live queue, 8-byte value buffers.
    unsafe {
        let p = m.as_ptr();
        assert_eq!(
            kbpf_maps::raw::bpf_map_peek_elem(p, out.as_mut_ptr().cast()),
            -2
        );
        assert_eq!(out, [0; 8], "empty peek zeroes the value");
        assert_eq!(
            kbpf_maps::raw::bpf_map_push_elem(p, v.as_ptr().cast(), BPF_ANY),
            0
        );
        assert_eq!(
            kbpf_maps::raw::bpf_map_push_elem(p, v.as_ptr().cast(), BPF_NOEXIST),
            -22
        );
        assert_eq!(
            kbpf_maps::raw::bpf_map_pop_elem(p, out.as_mut_ptr().cast()),
            0
        );
        assert_eq!(out, v);
        assert!(kbpf_maps::raw::bpf_map_lookup_elem(p, std::ptr::null()).is_null());
        assert_eq!(
            kbpf_maps::raw::bpf_map_update_elem(p, std::ptr::null(), v.as_ptr().cast(), 0),
            -22
        );
    }
}

#[test]
fn hash_lookup_and_delete() {
    let m = Map::create(&MapAttr::new(MapType::Hash, 4, 8, 4), None).unwrap();
    m.update_elem(&k(1), &[5; 8], BPF_ANY).unwrap();
    assert_eq!(m.lookup_and_delete_elem(&k(1), 0).unwrap(), vec![5; 8]);
    assert_eq!(errno(m.lookup_and_delete_elem(&k(1), 0)), Errno::ENOENT);
    assert_eq!(m.elem_count(), 0);
    let a = Map::create(&MapAttr::new(MapType::Array, 4, 8, 4), None).unwrap();
    assert_eq!(errno(a.lookup_and_delete_elem(&k(1), 0)), Errno::ENOTSUPP);
}

#[test]
fn batch_update_stops_at_first_error() {
    let m = Map::create(&MapAttr::new(MapType::Array, 4, 4, 3), None).unwrap();
    let keys = [k(0), k(1), k(7), k(2)];
    let vals = [k(10), k(11), k(17), k(12)];
    let kr: Vec<&[u8]> = keys.iter().map(|x| &x[..]).collect();
    let vr: Vec<&[u8]> = vals.iter().map(|x| &x[..]).collect();
    let (n, r) = m.update_batch(&kr, &vr, BPF_ANY);
    assert_eq!((n, r.unwrap_err().errno), (2, Errno::E2BIG));
    assert_eq!(m.lookup_elem(&k(1)).unwrap(), k(11));
    assert_eq!(m.lookup_elem(&k(2)).unwrap(), k(0), "not reached");
    let (n, r) = m.update_batch(&kr[..2], &vr[..2], BPF_ANY);
    assert_eq!((n, r), (2, Ok(())));
    // generic_map_update_batch accepts no element flags but BPF_F_LOCK; it fails before its
    // loop, so the count stays what user space passed.
    let (n, r) = m.update_batch(&kr[..2], &vr[..2], BPF_EXIST);
    assert_eq!((n, r.unwrap_err().errno), (2, Errno::EINVAL));
    let (n, r) = m.update_batch(&kr, &vr, BPF_F_LOCK);
    assert_eq!((n, r.unwrap_err().errno), (4, Errno::EINVAL));
    // A frozen map refuses before the flags are looked at.
    let f = Map::create(&MapAttr::new(MapType::Array, 4, 4, 3), None).unwrap();
    f.freeze().unwrap();
    let (n, r) = f.update_batch(&kr, &vr, BPF_EXIST);
    assert_eq!((n, r.unwrap_err().errno), (4, Errno::EPERM));
    assert_eq!(
        f.freeze().unwrap_err().errno,
        Errno::EPERM,
        "freezing twice"
    );
    // Map-of-maps have the generic batch update; their values are fds, resolved per element.
    let reg = Registry::new();
    let t = reg
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 1), 0)
        .unwrap();
    let aom = reg
        .map_create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2), t)
        .unwrap();
    let inner = reg
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 1), 0)
        .unwrap();
    let fd = inner.to_ne_bytes();
    let closed = 999u32.to_ne_bytes();
    let (n, r) = reg.map_update_batch(aom, &[&k(0), &k(1)], &[&fd, &closed], BPF_ANY);
    assert_eq!((n, r.unwrap_err().errno), (1, Errno::EBADF));
    let inner_id = reg.map(inner).unwrap().id();
    assert_eq!(
        reg.map_lookup_elem(aom, &k(0), 0).unwrap(),
        inner_id.to_ne_bytes()
    );
    // Fd arrays other than map-of-maps have none.
    let pa = Map::create(&MapAttr::new(MapType::ProgArray, 4, 4, 1), None).unwrap();
    assert_eq!(
        pa.update_batch(&kr, &vr, BPF_ANY).1.unwrap_err().errno,
        Errno::ENOTSUPP
    );
}

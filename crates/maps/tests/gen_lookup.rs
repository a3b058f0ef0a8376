//! `gen_lookup` sequences (kernel-semantics §8), compared instruction by instruction with
//! hand-built expectations, then executed by a tiny interpreter on real maps to check that the
//! offsets agree with the memory layout and with the out-of-line lookup functions.

use std::ffi::c_void;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_maps::layout::MapLookupFn;
use kbpf_maps::uapi::*;
use kbpf_maps::{
    GenLookup, Map, MapAttr, MapType, call_imm, call_target, raw, raw_function_addr,
    raw_function_name,
};

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

fn inline(g: GenLookup) -> Vec<Insn> {
    match g {
        GenLookup::Inline(v) => v,
        GenLookup::NotSupported => panic!("expected an inline sequence"),
    }
}

/// The address kbpf names a kernel function by. Taking `raw::f as usize` here instead can give
/// this crate's own copy of a small function in release builds (cross-crate inlining), which
/// is not the address kbpf's programs call.
fn kernel_fn(name: &str) -> usize {
    raw_function_addr(name).expect("a kbpf kernel function")
}

fn htab_call() -> Insn {
    let imm = call_imm(kernel_fn("__htab_map_lookup_elem")).unwrap();
    ins(BPF_JMP | BPF_CALL, 0, 0, 0, imm)
}

fn map(t: MapType, k: u32, v: u32, n: u32, f: u32) -> Map {
    Map::create(&MapAttr::new(t, k, v, n).flags(f).nr_cpus(2), None).unwrap()
}

#[test]
fn array_sequence() {
    let m = map(MapType::Array, 4, 8, 4, 0);
    let expect = vec![
        ins(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 312), // r1 += 312
        ins(BPF_LDX | BPF_W | BPF_MEM, 0, 2, 0, 0),     // r0 = *(u32 *)(r2 +0)
        ins(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 3, 4),     // if r0 >= 0x4 goto pc+3
        ins(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 3),   // r0 <<= 3
        ins(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0),   // r0 += r1
        ins(BPF_JMP | BPF_JA, 0, 0, 1, 0),              // goto pc+1
        ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),   // r0 = 0
    ];
    assert_eq!(inline(m.gen_lookup()), expect);
    // value_size 24: not a power of two → r0 *= 24.
    let m24 = map(MapType::Array, 4, 24, 5, 0);
    let s = inline(m24.gen_lookup());
    assert_eq!(s.len(), 7);
    assert_eq!(s[2], ins(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 3, 5));
    assert_eq!(s[3], ins(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 24));
}

#[test]
fn array_sequence_with_spectre_mask() {
    let mut a = MapAttr::new(MapType::Array, 4, 8, 5);
    a.bypass_spec_v1 = false;
    let m = Map::create(&a, None).unwrap();
    let s = inline(m.gen_lookup());
    assert_eq!(s.len(), 8);
    assert_eq!(s[2], ins(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 4, 5));
    assert_eq!(s[3], ins(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0, 7));
    // Unprivileged arrays are allocated up to the mask (8 entries), as the kernel does.
    assert_eq!(m.info().memlock, 312 + 8 * 8);
}

#[test]
fn inner_map_array_is_not_inlined() {
    let m = map(MapType::Array, 4, 8, 4, BPF_F_INNER_MAP);
    assert_eq!(m.gen_lookup(), GenLookup::NotSupported);
    assert_eq!(
        kbpf_maps::lookup_fn(MapType::Array),
        kernel_fn("array_map_lookup_elem")
    );
    assert_eq!(
        raw_function_name(kbpf_maps::lookup_fn(MapType::Array)),
        Some("array_map_lookup_elem")
    );
    // Through an outer map's meta, too.
    let o = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2), Some(&m)).unwrap();
    assert_eq!(
        o.inner_map_meta().unwrap().gen_lookup(),
        GenLookup::NotSupported
    );
    let o2 = Map::create(
        &MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2),
        Some(&map(MapType::Array, 4, 4, 3, 0)),
    )
    .unwrap();
    let s = inline(o2.inner_map_meta().unwrap().gen_lookup());
    assert_eq!(
        s[2],
        ins(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 3, 3),
        "template's bound"
    );
}

#[test]
fn array_of_maps_sequence() {
    let t = map(MapType::Array, 4, 4, 3, 0);
    let o = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 4), Some(&t)).unwrap();
    let expect = vec![
        ins(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 312),
        ins(BPF_LDX | BPF_W | BPF_MEM, 0, 2, 0, 0),
        ins(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 5, 4),
        ins(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 3),
        ins(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0),
        ins(BPF_LDX | BPF_DW | BPF_MEM, 0, 0, 0, 0),
        ins(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0),
        ins(BPF_JMP | BPF_JA, 0, 0, 1, 0),
        ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
    ];
    assert_eq!(inline(o.gen_lookup()), expect);
}

#[test]
fn percpu_array_sequence() {
    let m = map(MapType::PercpuArray, 4, 8, 8, 0);
    let expect = vec![
        ins(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 312),
        ins(BPF_LDX | BPF_W | BPF_MEM, 0, 2, 0, 0),
        ins(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 5, 8),
        ins(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 3),
        ins(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0),
        ins(BPF_LDX | BPF_DW | BPF_MEM, 0, 0, 0, 0),
        ins(BPF_ALU64 | BPF_MOV | BPF_X, 0, 0, -1, 0), // r0 = this_cpu_ptr(r0)
        ins(BPF_JMP | BPF_JA, 0, 0, 1, 0),
        ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
    ];
    assert_eq!(inline(m.gen_lookup()), expect);
}

#[test]
fn hash_family_sequences() {
    let h = map(MapType::Hash, 4, 8, 4, 0);
    assert_eq!(
        inline(h.gen_lookup()),
        vec![
            htab_call(),
            ins(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0),
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 56),
        ]
    );
    let h12 = map(MapType::Hash, 12, 8, 4, 0);
    assert_eq!(
        inline(h12.gen_lookup())[2],
        ins(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 64)
    );
    let lru = map(MapType::LruHash, 4, 8, 4, 0);
    assert_eq!(
        inline(lru.gen_lookup()),
        vec![
            htab_call(),
            ins(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4, 0),
            ins(BPF_LDX | BPF_B | BPF_MEM, 1, 0, 35, 0),
            ins(BPF_JMP | BPF_JNE | BPF_K, 1, 0, 1, 0),
            ins(BPF_ST | BPF_B | BPF_MEM, 0, 0, 35, 1),
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 56),
        ]
    );
    let t = map(MapType::Array, 4, 4, 3, 0);
    let hom = Map::create(&MapAttr::new(MapType::HashOfMaps, 4, 4, 4), Some(&t)).unwrap();
    assert_eq!(
        inline(hom.gen_lookup()),
        vec![
            htab_call(),
            ins(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0),
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 56),
            ins(BPF_LDX | BPF_DW | BPF_MEM, 0, 0, 0, 0),
        ]
    );
    let ph = map(MapType::PercpuHash, 4, 8, 4, 0);
    assert_eq!(
        inline(ph.gen_lookup()),
        vec![
            htab_call(),
            ins(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3, 0),
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 56),
            ins(BPF_LDX | BPF_DW | BPF_MEM, 0, 0, 0, 0),
            ins(BPF_ALU64 | BPF_MOV | BPF_X, 0, 0, -1, 0),
        ]
    );
    assert_eq!(
        map(MapType::LruPercpuHash, 4, 8, 4, 0).gen_lookup(),
        GenLookup::NotSupported
    );
    // Hash inners are looked up through the meta with the same call form.
    let o = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2), Some(&h)).unwrap();
    assert_eq!(
        inline(o.inner_map_meta().unwrap().gen_lookup())[0],
        htab_call()
    );
}

#[test]
fn call_immediates_resolve_back() {
    let f = kernel_fn("__htab_map_lookup_elem");
    let imm = call_imm(f).unwrap();
    assert_eq!(call_target(imm), f);
    assert_eq!(
        raw_function_name(call_target(imm)),
        Some("__htab_map_lookup_elem")
    );
    assert!(call_imm(kbpf_maps::call_base().wrapping_add(1 << 40)).is_err());
}

/// Executes an inline lookup sequence with r1 = map, r2 = key, as a VM would.
fn run(seq: &[Insn], map: *mut c_void, key: *const c_void) -> u64 {
    let mut r = [0u64; 11];
    r[1] = map as u64;
    r[2] = key as u64;
    let mut pc = 0usize;
    while pc < seq.len() {
        let i = seq[pc];
        let (d, s) = (i.dst() as usize, i.src() as usize);
        pc += 1;
        match i.code {
            c if c == BPF_ALU64 | BPF_ADD | BPF_K => r[d] = r[d].wrapping_add(i.imm as i64 as u64),
            c if c == BPF_ALU64 | BPF_ADD | BPF_X => r[d] = r[d].wrapping_add(r[s]),
            c if c == BPF_ALU64 | BPF_LSH | BPF_K => r[d] <<= i.imm,
            c if c == BPF_ALU64 | BPF_MUL | BPF_K => r[d] = r[d].wrapping_mul(i.imm as i64 as u64),
            c if c == BPF_ALU | BPF_AND | BPF_K => r[d] = (r[d] as u32 & i.imm as u32) as u64,
            c if c == BPF_ALU64 | BPF_MOV | BPF_K => r[d] = i.imm as i64 as u64,
            c if c == BPF_ALU64 | BPF_MOV | BPF_X => {
                assert_eq!(i.off, -1, "only the percpu form occurs");
                // SAFETY: r[s] is a per-CPU pointer loaded from a live map (or NULL).
                r[d] = unsafe { kbpf_maps::layout::bpf_this_cpu_ptr(r[s] as *mut c_void) } as u64;
            }
            // SAFETY (loads/stores): the sequences only touch map memory the map owns.
            c if c == BPF_LDX | BPF_W | BPF_MEM => {
                r[d] =
                    unsafe { ((r[s] as i64 + i.off as i64) as *const u32).read_unaligned() } as u64
            }
            c if c == BPF_LDX | BPF_DW | BPF_MEM => {
                r[d] = unsafe { ((r[s] as i64 + i.off as i64) as *const u64).read_unaligned() }
            }
            c if c == BPF_LDX | BPF_B | BPF_MEM => {
                r[d] = unsafe { ((r[s] as i64 + i.off as i64) as *const u8).read() } as u64
            }
            c if c == BPF_ST | BPF_B | BPF_MEM => unsafe {
                ((r[d] as i64 + i.off as i64) as *mut u8).write(i.imm as u8)
            },
            c if c == BPF_JMP | BPF_JGE | BPF_K => {
                if r[d] >= i.imm as i64 as u64 {
                    pc += i.off as usize
                }
            }
            c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                if r[d] == i.imm as i64 as u64 {
                    pc += i.off as usize
                }
            }
            c if c == BPF_JMP | BPF_JNE | BPF_K => {
                if r[d] != i.imm as i64 as u64 {
                    pc += i.off as usize
                }
            }
            c if c == BPF_JMP | BPF_JA => pc += i.off as usize,
            c if c == BPF_JMP | BPF_CALL => {
                let target = call_target(i.imm);
                // SAFETY: the target is one of this crate's MapLookupFn functions.
                let f: MapLookupFn = unsafe { std::mem::transmute(target) };
                r[0] = unsafe { f(r[1] as *mut c_void, r[2] as *const c_void) } as u64;
            }
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
    r[0]
}

fn check_inline_equals_call(m: &Map, keys: &[Vec<u8>]) {
    let seq = inline(m.gen_lookup());
    let _g = kbpf_maps::pin();
    for key in keys {
        let via_inline = run(&seq, m.as_ptr(), key.as_ptr().cast());
        // SAFETY: live map, key of key_size bytes, guard held.
        let via_call = unsafe { raw::bpf_map_lookup_elem(m.as_ptr(), key.as_ptr().cast()) } as u64;
        assert_eq!(via_inline, via_call, "{:?} key {key:?}", m.map_type());
    }
}

#[test]
fn inline_sequences_agree_with_lookup_functions() {
    let keys: Vec<Vec<u8>> = (0..6u32).map(|i| i.to_ne_bytes().to_vec()).collect();
    let a = map(MapType::Array, 4, 24, 5, 0);
    a.update_elem(&3u32.to_ne_bytes(), &[7; 24], BPF_ANY)
        .unwrap();
    check_inline_equals_call(&a, &keys);
    let _g = kbpf_maps::pin();
    let p = run(&inline(a.gen_lookup()), a.as_ptr(), keys[3].as_ptr().cast());
    // SAFETY: p points at the 24-byte value of slot 3.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(p as *const u8, 24) },
        &[7; 24]
    );
    assert_eq!(p - a.as_ptr() as u64, 312 + 3 * 24);

    let pa = map(MapType::PercpuArray, 4, 4, 4, 0);
    let v: Vec<u8> = [5u32, 0, 9, 0]
        .iter()
        .flat_map(|x| x.to_ne_bytes())
        .collect();
    pa.update_elem(&1u32.to_ne_bytes(), &v, BPF_ANY).unwrap();
    for cpu in 0..2 {
        kbpf_maps::set_current_cpu(cpu);
        check_inline_equals_call(&pa, &keys);
        let p = run(
            &inline(pa.gen_lookup()),
            pa.as_ptr(),
            keys[1].as_ptr().cast(),
        );
        // SAFETY: p points at this CPU's 4-byte value.
        assert_eq!(unsafe { (p as *const u32).read() }, [5, 9][cpu as usize]);
    }
    kbpf_maps::set_current_cpu(0);

    for t in [MapType::Hash, MapType::LruHash, MapType::PercpuHash] {
        let h = map(t, 4, 8, 8, 0);
        let uv = vec![3u8; h.user_value_size()];
        h.update_elem(&2u32.to_ne_bytes(), &uv, BPF_ANY).unwrap();
        check_inline_equals_call(&h, &keys);
        let p = run(&inline(h.gen_lookup()), h.as_ptr(), keys[2].as_ptr().cast());
        // SAFETY: p points at the 8-byte value.
        assert_eq!(
            unsafe { (p as *const u64).read() },
            u64::from_ne_bytes([3; 8]),
            "{t}"
        );
    }

    let tmpl = map(MapType::Array, 4, 4, 3, BPF_F_INNER_MAP);
    let inner = map(MapType::Array, 4, 4, 7, BPF_F_INNER_MAP);
    for t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let o = Map::create(&MapAttr::new(t, 4, 4, 4), Some(&tmpl)).unwrap();
        o.update_inner_map(&2u32.to_ne_bytes(), &inner, BPF_ANY)
            .unwrap();
        check_inline_equals_call(&o, &keys);
        let p = run(&inline(o.gen_lookup()), o.as_ptr(), keys[2].as_ptr().cast());
        assert_eq!(p, inner.as_ptr() as u64, "{t} yields the inner map pointer");
    }
}

/// `__htab_map_lookup_elem` picks a copy specialised to the key's word count for keys of 4..=64
/// bytes in steps of 4, and the general byte path otherwise. Every key size, across chains of
/// several elements (64 keys in 64 buckets), finds exactly the keys the user-side path stored,
/// and no key differing from a stored one in a single byte.
#[test]
fn htab_lookup_every_key_size() {
    let _guard = kbpf_maps::pin();
    let mut x = 0x9e37_79b9u32;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for key_size in 1..=72u32 {
        for flags in [0, BPF_F_ZERO_SEED] {
            let m = map(MapType::Hash, key_size, 8, 64, flags);
            let keys: Vec<Vec<u8>> = (0..64)
                .map(|_| (0..key_size).map(|_| rnd() as u8).collect())
                .collect();
            for (i, k) in keys.iter().enumerate() {
                m.update_elem(k, &(i as u64).to_ne_bytes(), BPF_ANY)
                    .unwrap();
            }
            let value_off = 48 + key_size.div_ceil(8) as usize * 8;
            for k in &keys {
                let expect = m.lookup_elem(k).unwrap();
                // SAFETY: a live HASH map and a key of its key_size; the guard is held.
                let e = unsafe { raw::__htab_map_lookup_elem(m.as_ptr(), k.as_ptr() as _) };
                assert!(!e.is_null(), "key_size {key_size}: stored key not found");
                // SAFETY: e is a live element with an 8-byte value at value_off.
                let v = unsafe { ((e as *const u8).add(value_off) as *const u64).read() };
                assert_eq!(v.to_ne_bytes().as_slice(), expect.as_slice());
                for at in 0..key_size as usize {
                    let mut other = k.clone();
                    other[at] ^= 0x40;
                    if keys.contains(&other) {
                        continue;
                    }
                    // SAFETY: as above.
                    let e = unsafe { raw::__htab_map_lookup_elem(m.as_ptr(), other.as_ptr() as _) };
                    assert!(e.is_null(), "key_size {key_size}: byte {at} ignored");
                }
            }
        }
    }
}

/// Two different keys with the same hash land in the same bucket with the same `hash` field:
/// only the key comparison tells them apart. With `BPF_F_ZERO_SEED` the hash is known, so a
/// birthday search finds such pairs for specialised sizes (8, 16, 20, 64 bytes) and general
/// ones (6, 66).
#[test]
fn htab_lookup_tells_colliding_keys_apart() {
    let _guard = kbpf_maps::pin();
    for key_size in [8u32, 16, 20, 64, 6, 66] {
        let mut seen = std::collections::HashMap::new();
        let key = |i: u32| {
            let mut k = vec![0u8; key_size as usize];
            k[..4].copy_from_slice(&i.to_le_bytes());
            let last = k.len() - 1;
            k[last] = (i >> 8) as u8;
            k
        };
        let (a, b) = (0u32..)
            .find_map(|i| {
                let h = kbpf_maps::jhash::htab_map_hash(&key(i), 0);
                seen.insert(h, i).map(|j| (key(j), key(i)))
            })
            .unwrap();
        let m = map(MapType::Hash, key_size, 8, 4, BPF_F_ZERO_SEED);
        m.update_elem(&a, &1u64.to_ne_bytes(), BPF_ANY).unwrap();
        let value_off = 48 + key_size.div_ceil(8) as usize * 8;
        let look = |k: &[u8]| {
            // SAFETY: a live HASH map and a key of its key_size; the guard is held.
            let e = unsafe { raw::__htab_map_lookup_elem(m.as_ptr(), k.as_ptr() as _) };
            // SAFETY: e is null or a live element with an 8-byte value at value_off.
            (!e.is_null())
                .then(|| unsafe { ((e as *const u8).add(value_off) as *const u64).read() })
        };
        assert_eq!(look(&a), Some(1), "key_size {key_size}");
        assert_eq!(
            look(&b),
            None,
            "key_size {key_size}: a colliding key matched"
        );
        m.update_elem(&b, &2u64.to_ne_bytes(), BPF_ANY).unwrap();
        assert_eq!(
            (look(&a), look(&b)),
            (Some(1), Some(2)),
            "key_size {key_size}"
        );
    }
}

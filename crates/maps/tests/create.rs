//! Map creation errno rules (kernel-semantics §2 and the creation rows of §11).

use kbpf_maps::uapi::*;
use kbpf_maps::{Errno, Map, MapAttr, MapType, Registry};

fn create(t: MapType, k: u32, v: u32, n: u32, flags: u32) -> Result<Map, Errno> {
    Map::create(&MapAttr::new(t, k, v, n).flags(flags), None).map_err(|e| e.errno)
}

fn ok(r: Result<Map, Errno>) -> Map {
    match r {
        Ok(m) => m,
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

#[test]
fn array_family_shared_checks() {
    for t in [MapType::Array, MapType::PercpuArray] {
        ok(create(t, 4, 8, 4, 0));
        assert_eq!(
            create(t, 8, 8, 4, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} key 8"
        );
        assert_eq!(
            create(t, 4, 0, 4, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} value 0"
        );
        assert_eq!(
            create(t, 4, 8, 0, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} max 0"
        );
        assert_eq!(
            create(t, 4, 8, 4, BPF_F_NO_PREALLOC).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            create(t, 4, 8, 4, BPF_F_ZERO_SEED).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            create(t, 4, 8, 4, BPF_F_PRESERVE_ELEMS).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            create(t, 4, 8, 4, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG).unwrap_err(),
            Errno::EINVAL
        );
        ok(create(t, 4, 8, 4, BPF_F_RDONLY_PROG));
    }
    assert_eq!(
        create(MapType::PercpuArray, 4, 32769, 4, 0).unwrap_err(),
        Errno::E2BIG
    );
    ok(create(MapType::PercpuArray, 4, 32768, 1, 0));
}

#[test]
fn inner_map_and_mmapable_only_on_plain_array() {
    ok(create(MapType::Array, 4, 8, 4, BPF_F_INNER_MAP));
    ok(create(
        MapType::Array,
        4,
        8,
        4,
        BPF_F_INNER_MAP | BPF_F_MMAPABLE,
    ));
    assert_eq!(
        create(
            MapType::Array,
            4,
            8,
            4,
            BPF_F_INNER_MAP | BPF_F_PRESERVE_ELEMS
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        create(MapType::Array, 4, 8, 4, BPF_F_INNER_MAP | BPF_F_NO_PREALLOC).unwrap_err(),
        Errno::EINVAL
    );
    for t in [
        MapType::PercpuArray,
        MapType::ProgArray,
        MapType::PerfEventArray,
    ] {
        let v = if t == MapType::PercpuArray { 8 } else { 4 };
        assert_eq!(
            create(t, 4, v, 4, BPF_F_INNER_MAP).unwrap_err(),
            Errno::EINVAL,
            "{t}"
        );
        assert_eq!(
            create(t, 4, v, 4, BPF_F_MMAPABLE).unwrap_err(),
            Errno::EINVAL,
            "{t}"
        );
    }
    for t in [MapType::Hash, MapType::LruHash, MapType::PercpuHash] {
        assert_eq!(
            create(t, 4, 8, 4, BPF_F_INNER_MAP).unwrap_err(),
            Errno::EINVAL,
            "{t}"
        );
        assert_eq!(
            create(t, 4, 8, 4, BPF_F_MMAPABLE).unwrap_err(),
            Errno::EINVAL,
            "{t}"
        );
    }
    ok(create(
        MapType::PerfEventArray,
        4,
        4,
        4,
        BPF_F_PRESERVE_ELEMS,
    ));
}

#[test]
fn fd_arrays_need_value_4_and_no_prog_access_flags() {
    for t in [
        MapType::ProgArray,
        MapType::PerfEventArray,
        MapType::CgroupArray,
    ] {
        ok(create(t, 4, 4, 4, 0));
        assert_eq!(
            create(t, 4, 8, 4, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} value 8"
        );
        assert_eq!(
            create(t, 4, 4, 4, BPF_F_RDONLY_PROG).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            create(t, 4, 4, 4, BPF_F_WRONLY_PROG).unwrap_err(),
            Errno::EINVAL
        );
    }
}

#[test]
fn hash_family_checks() {
    for t in [
        MapType::Hash,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        ok(create(t, 1, 1, 1, 0));
        ok(create(t, 64, 3, 100, BPF_F_ZERO_SEED));
        assert_eq!(
            create(t, 0, 8, 4, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} key 0"
        );
        assert_eq!(
            create(t, 4, 0, 4, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} value 0"
        );
        assert_eq!(
            create(t, 4, 8, 0, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} max 0"
        );
    }
    ok(create(MapType::Hash, 4, 8, 4, BPF_F_NO_PREALLOC));
    assert_eq!(
        create(MapType::LruHash, 4, 8, 4, BPF_F_NO_PREALLOC).unwrap_err(),
        Errno::ENOTSUPP
    );
    assert_eq!(
        create(MapType::Hash, 4, 8, 4, BPF_F_NO_COMMON_LRU).unwrap_err(),
        Errno::EINVAL
    );
    ok(create(MapType::LruHash, 4, 8, 4, BPF_F_NO_COMMON_LRU));
    assert_eq!(
        create(MapType::Hash, 4, 1 << 22, 4, 0).unwrap_err(),
        Errno::E2BIG
    );
    assert_eq!(
        create(MapType::PercpuHash, 4, 40000, 4, 0).unwrap_err(),
        Errno::E2BIG
    );
    assert_eq!(
        create(MapType::Hash, 4, 8, (1 << 31) + 1, 0).unwrap_err(),
        Errno::E2BIG
    );
    // n_buckets > U32_MAX / sizeof(struct bucket)
    assert_eq!(
        create(MapType::Hash, 4, 8, (1 << 28) + 1, 0).unwrap_err(),
        Errno::E2BIG
    );
}

#[test]
fn per_cpu_lru_rounds_max_entries_to_cpus() {
    let m = ok(Map::create(
        &MapAttr::new(MapType::LruHash, 4, 8, 5)
            .flags(BPF_F_NO_COMMON_LRU)
            .nr_cpus(4),
        None,
    )
    .map_err(|e| e.errno));
    assert_eq!(m.max_entries(), 8);
}

#[test]
fn general_syscall_checks() {
    assert_eq!(
        create(MapType::Array, 4, 8, 4, BPF_F_RDONLY | BPF_F_WRONLY).unwrap_err(),
        Errno::EINVAL
    );
    let m = ok(create(MapType::Array, 4, 8, 4, BPF_F_RDONLY));
    assert_eq!(m.map_flags(), 0, "RDONLY is stripped from the stored flags");
    let m = ok(create(
        MapType::Hash,
        4,
        8,
        4,
        BPF_F_WRONLY | BPF_F_ZERO_SEED,
    ));
    assert_eq!(m.map_flags(), BPF_F_ZERO_SEED);
    // A type kbpf does not create (TASK_STORAGE): EINVAL, as for a type no kernel has.
    assert_eq!(
        create(MapType::Other(29), 4, 8, 4, 0).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        create(MapType::Other(99), 4, 8, 4, 0).unwrap_err(),
        Errno::EINVAL
    );
    let long = MapAttr::new(MapType::Array, 4, 8, 4).name("a_name_of_16_chr");
    assert_eq!(Map::create(&long, None).unwrap_err().errno, Errno::EINVAL);
    let bad = MapAttr::new(MapType::Array, 4, 8, 4).name("bad-name");
    assert_eq!(Map::create(&bad, None).unwrap_err().errno, Errno::EINVAL);
    let good = MapAttr::new(MapType::Array, 4, 8, 4).name("ok.name_15chars");
    assert_eq!(Map::create(&good, None).unwrap().name(), "ok.name_15chars");
    let mut numa = MapAttr::new(MapType::Array, 4, 8, 4).flags(BPF_F_NUMA_NODE);
    ok(Map::create(&numa, None).map_err(|e| e.errno));
    numa.numa_node = 3;
    assert_eq!(Map::create(&numa, None).unwrap_err().errno, Errno::EINVAL);
}

#[test]
fn error_message_names_the_map() {
    let e = Map::create(&MapAttr::new(MapType::Array, 8, 4, 4).name("inner_a"), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "map 'inner_a': key size 8 != 4: Invalid argument"
    );
}

#[test]
fn map_of_maps_outer_checks() {
    let r = Registry::new();
    let tmpl = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 3).name("tmpl"), 0)
        .unwrap();
    let aom = |k, v, n, f| {
        r.map_create(&MapAttr::new(MapType::ArrayOfMaps, k, v, n).flags(f), tmpl)
            .map_err(|e| e.errno)
    };
    aom(4, 4, 4, 0).unwrap();
    assert_eq!(aom(4, 8, 4, 0).unwrap_err(), Errno::EINVAL, "AoM value 8");
    assert_eq!(aom(8, 4, 4, 0).unwrap_err(), Errno::EINVAL, "AoM key 8");
    assert_eq!(aom(4, 4, 0, 0).unwrap_err(), Errno::EINVAL, "AoM max 0");
    assert_eq!(aom(4, 4, 4, BPF_F_RDONLY_PROG).unwrap_err(), Errno::EINVAL);
    assert_eq!(aom(4, 4, 4, BPF_F_MMAPABLE).unwrap_err(), Errno::EINVAL);
    assert_eq!(aom(4, 4, 4, BPF_F_INNER_MAP).unwrap_err(), Errno::EINVAL);
    let hom = |k, v, n, f| {
        r.map_create(&MapAttr::new(MapType::HashOfMaps, k, v, n).flags(f), tmpl)
            .map_err(|e| e.errno)
    };
    hom(4, 4, 4, 0).unwrap();
    assert_eq!(hom(4, 8, 4, 0).unwrap_err(), Errno::EINVAL, "HoM value 8");
    hom(8, 4, 4, 0).unwrap();
    hom(4, 4, 4, BPF_F_NO_PREALLOC).unwrap();
    assert_eq!(hom(4, 4, 4, BPF_F_INNER_MAP).unwrap_err(), Errno::EINVAL);
}

#[test]
fn inner_map_fd_resolution_and_template_rules() {
    let r = Registry::new();
    let outer = |fd| {
        r.map_create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 4), fd)
            .map_err(|e| e.errno)
    };
    // fd 0 is an open non-BPF file, /dev/null likewise, a closed fd is EBADF.
    assert_eq!(outer(0).unwrap_err(), Errno::EINVAL);
    let devnull = r.add_other();
    assert_eq!(outer(devnull).unwrap_err(), Errno::EINVAL);
    assert_eq!(outer(999).unwrap_err(), Errno::EBADF);
    // Attribute errors come before template resolution.
    assert_eq!(
        r.map_create(&MapAttr::new(MapType::ArrayOfMaps, 4, 8, 4), 999)
            .unwrap_err()
            .errno,
        Errno::EINVAL
    );
    // Nested map-of-maps templates are refused.
    let arr = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 1), 0)
        .unwrap();
    let aom = outer(arr).unwrap();
    assert_eq!(outer(aom).unwrap_err(), Errno::EINVAL);
    // PROG_ARRAY has no map_meta_equal.
    let pa = r
        .map_create(&MapAttr::new(MapType::ProgArray, 4, 4, 4), 0)
        .unwrap();
    assert_eq!(outer(pa).unwrap_err(), Errno::ENOTSUPP);
    // Accepted template types.
    for (t, v) in [
        (MapType::Hash, 8),
        (MapType::PercpuHash, 8),
        (MapType::LruHash, 8),
        (MapType::PercpuArray, 8),
        (MapType::PerfEventArray, 4),
        (MapType::CgroupArray, 4),
    ] {
        let tfd = r.map_create(&MapAttr::new(t, 4, v, 4), 0).unwrap();
        outer(tfd).unwrap_or_else(|e| panic!("template {t}: {e:?}"));
    }
    let flagged = r
        .map_create(
            &MapAttr::new(MapType::Array, 4, 4, 4).flags(BPF_F_INNER_MAP | BPF_F_MMAPABLE),
            0,
        )
        .unwrap();
    outer(flagged).unwrap();
    // The template may be closed afterwards; the outer keeps only the meta.
    let t2 = r
        .map_create(&MapAttr::new(MapType::Array, 4, 4, 2).name("gone"), 0)
        .unwrap();
    let o2 = outer(t2).unwrap();
    r.close(t2).unwrap();
    let meta = *r.map(o2).unwrap().inner_map_meta().unwrap().desc();
    assert_eq!(
        (meta.max_entries, meta.value_size, meta.elem_size),
        (2, 4, 8)
    );
    // ARRAY and HASH ignore inner_map_fd (even a bad one).
    r.map_create(&MapAttr::new(MapType::Array, 4, 4, 4), 999)
        .unwrap();
    r.map_create(&MapAttr::new(MapType::Hash, 4, 4, 4), arr)
        .unwrap();
}

#[test]
fn queue_stack_checks() {
    for t in [MapType::Queue, MapType::Stack] {
        ok(create(t, 0, 4, 16, 0));
        assert_eq!(
            create(t, 4, 4, 16, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} key 4"
        );
        assert_eq!(
            create(t, 0, 0, 16, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} value 0"
        );
        assert_eq!(
            create(t, 0, 4, 0, 0).unwrap_err(),
            Errno::EINVAL,
            "{t} max 0"
        );
        assert_eq!(
            create(t, 0, 4, 16, BPF_F_NO_PREALLOC).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            create(t, 0, 4, 16, BPF_F_INNER_MAP).unwrap_err(),
            Errno::EINVAL
        );
        ok(create(t, 0, 4, 16, BPF_F_RDONLY_PROG));
    }
    // A queue template accepts any max_entries (generic meta rule).
    let tmpl = ok(create(MapType::Queue, 0, 4, 16, 0));
    let outer = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 1), Some(&tmpl)).unwrap();
    let big = ok(create(MapType::Queue, 0, 4, 32, 0));
    outer
        .update_inner_map(&0u32.to_ne_bytes(), &big, BPF_ANY)
        .unwrap();
    let stack = ok(create(MapType::Stack, 0, 4, 16, 0));
    assert_eq!(
        outer
            .update_inner_map(&0u32.to_ne_bytes(), &stack, BPF_ANY)
            .unwrap_err()
            .errno,
        Errno::EINVAL
    );
}

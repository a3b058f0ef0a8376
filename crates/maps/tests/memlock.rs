//! `memlock` figures and `map show` text, against numbers bpftool printed on Linux 6.18 (2
//! possible CPUs) for the same maps (hash family: on 6.18.44-fc-v1098, whose `struct bpf_htab`
//! is 64 bytes larger than the first build's; `tests/kernel_differential.rs` compares with
//! whatever kernel runs the tests).

use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType, Registry};

fn memlock(t: MapType, k: u32, v: u32, n: u32, f: u32) -> u64 {
    Map::create(&MapAttr::new(t, k, v, n).flags(f).nr_cpus(2), None)
        .unwrap()
        .memlock()
}

#[test]
fn matches_kernel_6_18() {
    assert_eq!(memlock(MapType::Array, 4, 8, 4, 0), 344);
    assert_eq!(memlock(MapType::Array, 4, 8, 1000, 0), 8312);
    assert_eq!(memlock(MapType::Array, 4, 8, 4, BPF_F_MMAPABLE), 8192);
    assert_eq!(memlock(MapType::Array, 4, 8, 4, BPF_F_INNER_MAP), 344);
    assert_eq!(memlock(MapType::PercpuArray, 4, 8, 4, 0), 408);
    assert_eq!(memlock(MapType::Hash, 4, 8, 4, 0), 1424);
    assert_eq!(memlock(MapType::Hash, 4, 8, 1000, 0), 81488);
    assert_eq!(memlock(MapType::Hash, 8, 24, 16, 0), 2672);
    assert_eq!(memlock(MapType::LruHash, 4, 8, 16, 0), 2240);
    assert_eq!(memlock(MapType::PercpuHash, 4, 8, 16, 0), 2496);
    assert_eq!(memlock(MapType::LruPercpuHash, 4, 8, 16, 0), 2496);
    assert_eq!(memlock(MapType::Hash, 4, 8, 16, BPF_F_NO_PREALLOC), 1216);
    assert_eq!(memlock(MapType::Queue, 0, 4, 16, 0), 380);
    assert_eq!(memlock(MapType::Stack, 0, 12, 10, 0), 444);
    // Socket maps, empty (bpftool on 6.18.44-fc-v1300, 64 entries).
    use kbpf_maps::sock_maps::*;
    let sock = |t: u32, v: u32| memlock(MapType::from_raw(t), 4, v, 64, 0);
    assert_eq!(sock(BPF_MAP_TYPE_XSKMAP, 4), 816);
    assert_eq!(sock(BPF_MAP_TYPE_SOCKMAP, 8), 888);
    assert_eq!(sock(BPF_MAP_TYPE_SOCKHASH, 8), 1408);
    assert_eq!(sock(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 8), 808);

    let inner = Map::create(&MapAttr::new(MapType::Array, 4, 8, 4), None).unwrap();
    let outer =
        |t, n, f| Map::create(&MapAttr::new(t, 4, 4, n).flags(f).nr_cpus(2), Some(&inner)).unwrap();
    assert_eq!(outer(MapType::ArrayOfMaps, 10, 0).memlock(), 392);
    assert_eq!(outer(MapType::HashOfMaps, 16, 0).memlock(), 2256);
    let dynamic = outer(MapType::HashOfMaps, 16, BPF_F_NO_PREALLOC);
    assert_eq!(dynamic.memlock(), 1216);
    dynamic
        .update_inner_map(&1u32.to_ne_bytes(), &inner, BPF_ANY)
        .unwrap();
    dynamic
        .update_inner_map(&2u32.to_ne_bytes(), &inner, BPF_ANY)
        .unwrap();
    assert_eq!(dynamic.memlock(), 1360);
}

#[test]
fn inner_map_flag_lets_inners_be_sized_to_need() {
    // Without BPF_F_INNER_MAP every inner must have the template's size; with it, small inners
    // cost only what they hold.
    let big = memlock(MapType::Array, 4, 8, 4096, 0);
    let small = memlock(MapType::Array, 4, 8, 16, BPF_F_INNER_MAP);
    assert_eq!(big, 312 + 4096 * 8);
    assert_eq!(small, 312 + 16 * 8);
}

#[test]
fn map_show_format() {
    let r = Registry::new();
    let fd = r
        .map_create(
            &MapAttr::new(MapType::Array, 4, 8, 4)
                .flags(BPF_F_INNER_MAP)
                .name("inner2"),
            0,
        )
        .unwrap();
    let m = r.map(fd).unwrap();
    let text = m.info().to_string();
    assert_eq!(
        text,
        format!(
            "{}: array  name inner2  flags 0x1000\n\tkey 4B  value 8B  max_entries 4  memlock 344B",
            m.id()
        )
    );
    assert!(r.maps().iter().any(|i| i.id == m.id()));
}

/// Each recorded kernel build's profile (`tests/profiles/`) gives that build's `memlock`, as
/// bpftool printed it there: `sizeof(struct bpf_htab)` is 896 on -fc-v1098 and 832 on
/// -fc-v1300, so the same hash map counts 64 bytes less on the newer build.
#[test]
fn memlock_follows_each_recorded_kernel_profile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/profiles");
    // (build, HASH k4 v8 n4, ARRAY k4 v8 n4) as bpftool printed them on that build.
    let observed = [
        ("6.18.44-fc-v1098", 1424u64, 344u64),
        ("6.18.44-fc-v1300", 1360, 344),
    ];
    for (build, hash, array) in observed {
        let p = kbpf_profile::KernelProfile::from_json_file(&format!("{dir}/{build}.json"))
            .unwrap_or_else(|e| panic!("{build}: {e}"));
        let create = |t: MapType| {
            Map::create(&MapAttr::new(t, 4, 8, 4).nr_cpus(2).profile(p.maps), None)
                .unwrap()
                .memlock()
        };
        assert_eq!(create(MapType::Hash), hash, "{build} hash");
        assert_eq!(create(MapType::Array), array, "{build} array");
    }
}

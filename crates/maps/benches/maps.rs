//! User-space and program-side lookup/update cost per operation for array, hash and
//! map-of-maps (`cargo bench -p kbpf-maps`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType, raw};

fn bench(c: &mut Criterion) {
    let array = Map::create(&MapAttr::new(MapType::Array, 4, 8, 1024), None).unwrap();
    let hash = Map::create(&MapAttr::new(MapType::Hash, 4, 8, 1024), None).unwrap();
    for i in 0..1024u32 {
        hash.update_elem(&i.to_ne_bytes(), &[1; 8], BPF_ANY)
            .unwrap();
    }
    let tmpl = Map::create(
        &MapAttr::new(MapType::Array, 4, 8, 1).flags(BPF_F_INNER_MAP),
        None,
    )
    .unwrap();
    let inner = Map::create(
        &MapAttr::new(MapType::Array, 4, 8, 64).flags(BPF_F_INNER_MAP),
        None,
    )
    .unwrap();
    let aom = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 16), Some(&tmpl)).unwrap();
    let hom = Map::create(&MapAttr::new(MapType::HashOfMaps, 4, 4, 16), Some(&tmpl)).unwrap();
    for i in 0..16u32 {
        aom.update_inner_map(&i.to_ne_bytes(), &inner, BPF_ANY)
            .unwrap();
        hom.update_inner_map(&i.to_ne_bytes(), &inner, BPF_ANY)
            .unwrap();
    }
    let key = 7u32.to_ne_bytes();

    let mut g = c.benchmark_group("user");
    g.bench_function("array_lookup", |b| {
        b.iter(|| array.lookup_elem(black_box(&key)).unwrap())
    });
    g.bench_function("array_update", |b| {
        b.iter(|| {
            array
                .update_elem(black_box(&key), &[2; 8], BPF_ANY)
                .unwrap()
        })
    });
    g.bench_function("hash_lookup", |b| {
        b.iter(|| hash.lookup_elem(black_box(&key)).unwrap())
    });
    g.bench_function("hash_update_existing", |b| {
        b.iter(|| hash.update_elem(black_box(&key), &[2; 8], BPF_ANY).unwrap())
    });
    g.bench_function("aom_lookup_id", |b| {
        b.iter(|| aom.lookup_elem(black_box(&key)).unwrap())
    });
    g.bench_function("aom_update_inner", |b| {
        b.iter(|| {
            aom.update_inner_map(black_box(&key), &inner, BPF_ANY)
                .unwrap()
        })
    });
    g.bench_function("hom_lookup_id", |b| {
        b.iter(|| hom.lookup_elem(black_box(&key)).unwrap())
    });
    g.bench_function("hom_update_inner", |b| {
        b.iter(|| {
            hom.update_inner_map(black_box(&key), &inner, BPF_ANY)
                .unwrap()
        })
    });
    g.finish();

    // Program-side: the out-of-line functions a run calls, inside one guard.
    let mut g = c.benchmark_group("prog");
    let guard = kbpf_maps::pin();
    g.bench_function("array_map_lookup_elem", |b| {
        // SAFETY: live array, 4-byte key, guard held.
        b.iter(|| unsafe {
            raw::array_map_lookup_elem(black_box(array.as_ptr()), key.as_ptr().cast())
        })
    });
    g.bench_function("htab_map_lookup_elem", |b| {
        // SAFETY: live hash, 4-byte key, guard held.
        b.iter(|| unsafe {
            raw::bpf_map_lookup_elem(black_box(hash.as_ptr()), key.as_ptr().cast())
        })
    });
    g.bench_function("hom_then_inner_lookup", |b| {
        // SAFETY: live maps, 4-byte keys, guard held.
        b.iter(|| unsafe {
            let i = raw::bpf_map_lookup_elem(black_box(hom.as_ptr()), key.as_ptr().cast());
            raw::bpf_map_lookup_elem(i, key.as_ptr().cast())
        })
    });
    drop(guard);
    g.bench_function("pin_unpin", |b| {
        b.iter(|| drop(black_box(kbpf_maps::pin())))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

//! User-space and program-side lookup/update cost per operation for array, hash and
//! map-of-maps (`cargo bench -p kbpf-maps`). Each user-space operation also runs on the same
//! map in the live kernel through the `bpf()` syscall (`kbpf_kernel::KernelMap`), named
//! `<op>/kernel` next to `<op>/kbpf`; without a usable `bpf()` those are skipped with a note.

use std::hint::black_box;
use std::os::fd::AsFd;

use criterion::{Criterion, criterion_group, criterion_main};
use kbpf_kernel::consts::{BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS};
use kbpf_kernel::{KernelMap, MapCreateAttr};
use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType, raw};

/// The kernel twins of the benchmarked maps (same types, sizes, flags and contents).
struct KernelMaps {
    array: KernelMap,
    hash: KernelMap,
    inner: KernelMap,
    aom: KernelMap,
    hom: KernelMap,
}

impl KernelMaps {
    fn new() -> KernelMaps {
        let create = |t: MapType, k, v, n, f| {
            KernelMap::create(&MapCreateAttr::new(t.raw(), k, v, n).flags(f)).unwrap()
        };
        let array = create(MapType::Array, 4, 8, 1024, 0);
        let hash = create(MapType::Hash, 4, 8, 1024, 0);
        for i in 0..1024u32 {
            hash.update(&i.to_ne_bytes(), &[1; 8], BPF_ANY).unwrap();
        }
        let tmpl = create(MapType::Array, 4, 8, 1, BPF_F_INNER_MAP);
        let inner = create(MapType::Array, 4, 8, 64, BPF_F_INNER_MAP);
        let outer =
            |t| KernelMap::create(&MapCreateAttr::new(t, 4, 4, 16).inner(tmpl.as_fd())).unwrap();
        let aom = outer(BPF_MAP_TYPE_ARRAY_OF_MAPS);
        let hom = outer(BPF_MAP_TYPE_HASH_OF_MAPS);
        for i in 0..16u32 {
            aom.update_fd(&i.to_ne_bytes(), inner.as_fd(), BPF_ANY)
                .unwrap();
            hom.update_fd(&i.to_ne_bytes(), inner.as_fd(), BPF_ANY)
                .unwrap();
        }
        KernelMaps {
            array,
            hash,
            inner,
            aom,
            hom,
        }
    }
}

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

    // The same maps in the kernel, to time the bpf() syscall path next to kbpf's.
    let kernel = match kbpf_kernel::bpf_available() {
        Ok(()) => Some(KernelMaps::new()),
        Err(why) => {
            println!("note: kernel side skipped, bpf() unavailable: {why}");
            None
        }
    };

    // User-space operations, each as kbpf then kernel, so they print side by side.
    let mut g = c.benchmark_group("user");
    g.bench_function("array_lookup/kbpf", |b| {
        b.iter(|| array.lookup_elem(black_box(&key)).unwrap())
    });
    if let Some(k) = &kernel {
        g.bench_function("array_lookup/kernel", |b| {
            b.iter(|| k.array.lookup(black_box(&key)).unwrap())
        });
    }
    g.bench_function("array_update/kbpf", |b| {
        b.iter(|| {
            array
                .update_elem(black_box(&key), &[2; 8], BPF_ANY)
                .unwrap()
        })
    });
    if let Some(k) = &kernel {
        g.bench_function("array_update/kernel", |b| {
            b.iter(|| k.array.update(black_box(&key), &[2; 8], BPF_ANY).unwrap())
        });
    }
    g.bench_function("hash_lookup/kbpf", |b| {
        b.iter(|| hash.lookup_elem(black_box(&key)).unwrap())
    });
    if let Some(k) = &kernel {
        g.bench_function("hash_lookup/kernel", |b| {
            b.iter(|| k.hash.lookup(black_box(&key)).unwrap())
        });
    }
    g.bench_function("hash_update_existing/kbpf", |b| {
        b.iter(|| hash.update_elem(black_box(&key), &[2; 8], BPF_ANY).unwrap())
    });
    if let Some(k) = &kernel {
        g.bench_function("hash_update_existing/kernel", |b| {
            b.iter(|| k.hash.update(black_box(&key), &[2; 8], BPF_ANY).unwrap())
        });
    }
    g.bench_function("aom_lookup_id/kbpf", |b| {
        b.iter(|| aom.lookup_elem(black_box(&key)).unwrap())
    });
    if let Some(k) = &kernel {
        g.bench_function("aom_lookup_id/kernel", |b| {
            b.iter(|| k.aom.lookup(black_box(&key)).unwrap())
        });
    }
    g.bench_function("aom_update_inner/kbpf", |b| {
        b.iter(|| {
            aom.update_inner_map(black_box(&key), &inner, BPF_ANY)
                .unwrap()
        })
    });
    if let Some(k) = &kernel {
        g.bench_function("aom_update_inner/kernel", |b| {
            b.iter(|| {
                k.aom
                    .update_fd(black_box(&key), k.inner.as_fd(), BPF_ANY)
                    .unwrap()
            })
        });
    }
    g.bench_function("hom_lookup_id/kbpf", |b| {
        b.iter(|| hom.lookup_elem(black_box(&key)).unwrap())
    });
    if let Some(k) = &kernel {
        g.bench_function("hom_lookup_id/kernel", |b| {
            b.iter(|| k.hom.lookup(black_box(&key)).unwrap())
        });
    }
    g.bench_function("hom_update_inner/kbpf", |b| {
        b.iter(|| {
            hom.update_inner_map(black_box(&key), &inner, BPF_ANY)
                .unwrap()
        })
    });
    if let Some(k) = &kernel {
        g.bench_function("hom_update_inner/kernel", |b| {
            b.iter(|| {
                k.hom
                    .update_fd(black_box(&key), k.inner.as_fd(), BPF_ANY)
                    .unwrap()
            })
        });
    }
    g.finish();
    // Inner maps replaced above are freed through the epoch collector; let it catch up.
    kbpf_maps::flush_deferred();

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

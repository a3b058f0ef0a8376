//! Table build time (paper §5.3: 1.8 ms for N=1000, M=65537 on one core).
//!
//! `cargo bench -p kbpf-maglev --bench build`
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kbpf_maglev::{Backend, HashSeed, build};

fn backends(n: usize, weighted: bool) -> Vec<Backend> {
    (0..n)
        .map(|i| {
            let w = if weighted { 1 + (i as u32 * 7) % 10 } else { 1 };
            Backend::new(
                format!("10.{}.{}.{}:8080", i / 65536, (i / 256) % 256, i % 256),
                w,
            )
        })
        .collect()
}

fn bench_build(c: &mut Criterion) {
    let seed = HashSeed::default();
    let mut g = c.benchmark_group("maglev_build");
    for &(n, m) in &[
        (1000usize, 65537u32),
        (1000, 16381),
        (1000, 655_373),
        (100, 16381),
        (10, 1021),
        (3, 1021),
    ] {
        let b = backends(n, false);
        g.bench_with_input(
            BenchmarkId::new("unweighted", format!("N{n}_M{m}")),
            &b,
            |bench, b| bench.iter(|| build(b, m, seed).map(|t| t.size())),
        );
    }
    let b = backends(1000, true);
    g.bench_with_input(
        BenchmarkId::new("weighted_1to10", "N1000_M65537"),
        &b,
        |bench, b| bench.iter(|| build(b, 65537, seed).map(|t| t.size())),
    );
    // One heavy backend forces the heap schedule.
    let mut skew = backends(1000, false);
    skew[0].weight = 5000;
    g.bench_with_input(
        BenchmarkId::new("skewed_heap", "N1000_M65537"),
        &skew,
        |bench, b| bench.iter(|| build(b, 65537, seed).map(|t| t.size())),
    );
    g.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);

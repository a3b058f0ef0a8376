//! Verification time (issue #5): kbpf's `verify` alone and `Program::load` (verify + rewrite)
//! on the whole verifier corpus (accepted and rejected programs) and on each clang-built
//! object program of `tests/objects_xlated.rs`. The kernel's load time for the same programs
//! is measured by `cargo run --release -p kbpf-run --example verify_vs_kernel`; the numbers
//! and method are in `docs/performance.md` ("Verification time").
//!
//! `cargo bench -p kbpf-run --bench verify` (filter: `-- maglev`).

#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// Programs that run into the 1M-instruction complexity limit take seconds; they are
/// measured on their own (10 samples) so the rest of the corpus is not drowned.
const SLOW: usize = 100_000;

fn corpus(c: &mut Criterion) {
    let items = workload::corpus();
    // Sanity: the corpus verdicts hold (a benchmark of a broken verifier measures nothing).
    let mut fast = Vec::new();
    let mut slow = Vec::new();
    for it in &items {
        let v = it.verify();
        assert_eq!(
            v.result.is_ok(),
            !it.expect_reject(),
            "{}: unexpected verdict",
            it.name
        );
        if v.stats.insn_processed > SLOW {
            slow.push(it);
        } else {
            fast.push(it);
        }
    }
    let n = fast.len();
    let mut g = c.benchmark_group("corpus");
    g.bench_function(format!("verify/all {n}"), |b| {
        b.iter(|| {
            for it in &fast {
                black_box(it.verify());
            }
        })
    });
    // Rejected programs stop in the verifier, so `load` of them is their verification.
    g.bench_function(format!("load/all {n}"), |b| {
        b.iter(|| {
            for it in &fast {
                let _ = black_box(it.load());
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("corpus-limit");
    g.sample_size(10).warm_up_time(Duration::from_millis(1));
    for it in slow {
        g.bench_function(format!("verify/{}", it.name), |b| {
            b.iter(|| black_box(it.verify()))
        });
    }
    g.finish();
}

fn objects(c: &mut Criterion) {
    let items = workload::objects();
    let mut g = c.benchmark_group("object");
    for it in &items {
        if let Err(e) = it.load() {
            panic!("{}: {e}\n{}", it.name, e.log().unwrap_or(""));
        }
        g.bench_function(format!("verify/{}", it.name), |b| {
            b.iter(|| black_box(it.verify()))
        });
        g.bench_function(format!("load/{}", it.name), |b| {
            b.iter(|| black_box(it.load().ok()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = corpus, objects
}
criterion_main!(benches);

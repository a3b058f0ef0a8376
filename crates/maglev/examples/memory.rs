//! Kernel memory of the Maglev tables of 10,000 services whose backend counts follow a
//! truncated power law P(N = n) ∝ n^-α, n ≤ 5000 (maglev.md §5: α = 1.6 gives a mean
//! near the Alibaba 2022 trace's 28 instances per microservice), under several layouts.
//! `cargo run --release -p kbpf-maglev --example memory`
use kbpf_maglev::demo::backend_counts as sample;
use kbpf_maglev::{SizePolicy, compare_memory};

fn main() {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "| α | mean N | per-service packed (default policy) | per-service packed (no floor) | per-service u32/elem | flat 65537 u32/elem | global 16381 blob | global 16381 packed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &alpha in &[1.3, 1.6, 2.0] {
        let counts = sample(alpha, 5000, 10_000, 7);
        let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
        let c = compare_memory(&counts, &SizePolicy::default());
        let no_floor = compare_memory(
            &counts,
            &SizePolicy {
                min_size: 0,
                ..SizePolicy::default()
            },
        );
        let floor_1021 = compare_memory(
            &counts,
            &SizePolicy {
                min_size: 1021,
                ..SizePolicy::default()
            },
        );
        println!(
            "| {alpha} | {mean:.1} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
            mib(c.per_service_packed),
            mib(floor_1021.per_service_packed),
            mib(no_floor.per_service_packed),
            mib(c.per_service_u32),
            mib(c.flat_65537_u32),
            mib(c.global_16381_blob),
            mib(c.global_16381_packed),
        );
    }
}

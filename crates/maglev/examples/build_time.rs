//! Quick single-core table build timing (minimum and median of repeated builds; the
//! minimum is robust to other load on the machine). The criterion benchmark is
//! `benches/build.rs`. `cargo run --release -p kbpf-maglev --example build_time`
use std::time::Instant;

use kbpf_maglev::{Backend, HashSeed, build};

fn main() {
    let seed = HashSeed::default();
    for &(n, m, reps) in &[
        (1000usize, 65537u32, 300usize),
        (1000, 655_373, 30),
        (100, 16381, 1000),
        (10, 1021, 5000),
    ] {
        let backends: Vec<Backend> = (0..n)
            .map(|i| {
                Backend::unweighted(format!(
                    "10.{}.{}.{}:8080",
                    i / 65536,
                    (i / 256) % 256,
                    i % 256
                ))
            })
            .collect();
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let table = build(&backends, m, seed).map(|t| t.size());
                let dt = t.elapsed().as_secs_f64();
                assert_eq!(table, Ok(m));
                dt
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "N={n:5} M={m:7}: min {:8.1} µs, median {:8.1} µs",
            times[0] * 1e6,
            times[reps / 2] * 1e6
        );
    }
}

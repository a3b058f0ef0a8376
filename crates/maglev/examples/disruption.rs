//! Measures Maglev disruption: remove `k` random backends of `N` and count the slots
//! that change owner, split into those of the removed backends (unavoidable) and those
//! moved between *surviving* backends ("extra", the collateral disruption), as % of M.
//! Reproduces the paper's Fig. 12 setting and the per-service sizing table of
//! maglev.md §6. `cargo run --release -p kbpf-maglev --example disruption`
use kbpf_maglev::{Backend, HashSeed, SizePolicy, build};

/// splitmix64, for reproducible random choices.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// (changed %, extra %, max extra %) over `trials` random removals of `k` of `n`.
fn measure(n: usize, k: usize, m: u32, trials: usize, rng: &mut u64) -> (f64, f64, f64) {
    let mut changed_sum = 0.0;
    let mut extra_sum = 0.0;
    let mut extra_max: f64 = 0.0;
    for t in 0..trials {
        let seed = HashSeed {
            k0: splitmix(rng),
            k1: t as u64,
        };
        let names: Vec<String> = (0..n).map(|i| format!("backend-{i}")).collect();
        let all: Vec<Backend> = names
            .iter()
            .map(|s| Backend::unweighted(s.clone()))
            .collect();
        let before = build(&all, m, seed).expect("build");
        let mut removed = vec![false; n];
        let mut left = k;
        while left > 0 {
            let i = (splitmix(rng) % n as u64) as usize;
            if !removed[i] {
                removed[i] = true;
                left -= 1;
            }
        }
        let kept: Vec<usize> = (0..n).filter(|&i| !removed[i]).collect();
        let survivors: Vec<Backend> = kept.iter().map(|&i| all[i].clone()).collect();
        let after = build(&survivors, m, seed).expect("build");
        let (mut changed, mut extra) = (0usize, 0usize);
        for (old, new) in before.entries().iter().zip(after.entries()) {
            let new = kept[*new as usize];
            if *old as usize != new {
                changed += 1;
                if !removed[*old as usize] {
                    extra += 1;
                }
            }
        }
        let mf = f64::from(m);
        changed_sum += changed as f64 / mf;
        extra_sum += extra as f64 / mf;
        extra_max = extra_max.max(extra as f64 / mf);
    }
    (
        100.0 * changed_sum / trials as f64,
        100.0 * extra_sum / trials as f64,
        100.0 * extra_max,
    )
}

fn main() {
    let mut rng = 42u64;
    println!("Fig. 12 setting: N=1000, k removed (mean over trials)");
    println!("| k | M | changed % | extra % | max extra % |");
    for &m in &[65537u32, 655_373] {
        for &k in &[1usize, 10, 50, 100] {
            let trials = if m > 100_000 { 5 } else { 20 };
            let (c, e, x) = measure(1000, k, m, trials, &mut rng);
            println!("| {k} | {m} | {c:.2} | {e:.2} | {x:.2} |");
        }
    }
    println!();
    println!("One backend removed; extra % (mean / max over 200 trials)");
    println!(
        "| N | M (policy) | extra @policy | extra @509 | extra @1021 | extra @4093 | extra @16381 |"
    );
    let policy = SizePolicy::default();
    for &n in &[2usize, 3, 5, 10, 20, 50, 100, 160, 300, 600] {
        let mp = policy.table_size(n);
        let mut row = format!("| {n} | {mp} |");
        for &m in &[mp, 509, 1021, 4093, 16381] {
            if (m as usize) < n * 10 {
                row.push_str(" — |");
                continue;
            }
            let trials = if m > 20000 { 50 } else { 200 };
            let (_, e, x) = measure(n, 1, m, trials, &mut rng);
            row.push_str(&format!(" {e:.2} / {x:.2} |"));
        }
        println!("{row}");
    }
}

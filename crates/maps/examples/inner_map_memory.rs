//! Memory of 10,000 load-balanced services, each an inner array of a HASH_OF_MAPS (the
//! Maglev layout: outer key = service id, inner array = the service's lookup table of backend
//! indexes), with inner arrays sized per service (`BPF_F_INNER_MAP` template) versus one
//! fixed size for all (a plain template forces every inner to its `max_entries`).
//!
//! Backend counts come from a seeded, skewed distribution: 90% of services have 2–10
//! backends, 9.8% have 11–200, 0.2% have 1,000–5,000. A service's table has the smallest prime
//! ≥ 100 × backends slots, capped at 65,537 (Maglev wants a prime well above the backend
//! count); values are 4-byte backend indexes.
//!
//! The per-service variant really creates all 10,000 inner arrays with kbpf-maps and sums
//! `memlock()` over the outer map, the template and every inner. The fixed-size variant would
//! need 10,000 × 65,537 × 8 bytes ≈ 5.2 GB, so it creates one real 65,537-entry inner array and
//! multiplies its `memlock()` (`312 + 65,537 × 8`, `array_map_mem_usage`) by 10,000.
//!
//! Run: `cargo run --release -p kbpf-maps --example inner_map_memory`

use kbpf_maps::uapi::{BPF_ANY, BPF_F_INNER_MAP};
use kbpf_maps::{Map, MapAttr, MapError, MapType};

const SERVICES: u32 = 10_000;
const SEED: u64 = 0x6b62_7066_5f6d_6170; // "kbpf_map"
const MAX_TABLE: u32 = 65_537;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % (hi - lo + 1) as u64) as u32
    }
}

fn is_prime(n: u32) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// Table slots for a service: the smallest prime ≥ 100 × backends, capped at 65,537.
fn table_size(backends: u32) -> u32 {
    let want = backends.saturating_mul(100);
    if want >= MAX_TABLE {
        return MAX_TABLE;
    }
    (want..MAX_TABLE)
        .find(|&n| is_prime(n))
        .unwrap_or(MAX_TABLE)
}

fn backends(rng: &mut Rng) -> u32 {
    match rng.next() % 1000 {
        0..900 => rng.range(2, 10),
        900..998 => rng.range(11, 200),
        _ => rng.range(1_000, 5_000),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> Result<(), MapError> {
    let mut rng = Rng(SEED);
    let counts: Vec<u32> = (0..SERVICES).map(|_| backends(&mut rng)).collect();
    let sizes: Vec<u32> = counts.iter().map(|&b| table_size(b)).collect();

    let template = Map::create(
        &MapAttr::new(MapType::Array, 4, 4, 1)
            .flags(BPF_F_INNER_MAP)
            .name("svc_tmpl"),
        None,
    )?;
    let outer = Map::create(
        &MapAttr::new(MapType::HashOfMaps, 4, 4, SERVICES).name("services"),
        Some(&template),
    )?;
    let mut inner_total = 0u64;
    for (svc, &slots) in sizes.iter().enumerate() {
        let inner = Map::create(
            &MapAttr::new(MapType::Array, 4, 4, slots).flags(BPF_F_INNER_MAP),
            None,
        )?;
        inner_total += inner.memlock();
        outer.update_inner_map(&(svc as u32).to_ne_bytes(), &inner, BPF_ANY)?;
        // The outer map now holds the only reference the service needs.
    }
    if outer.elem_count() != SERVICES {
        eprintln!(
            "expected {SERVICES} services in the outer map, found {}",
            outer.elem_count()
        );
        std::process::exit(1);
    }
    let fixed_one = Map::create(&MapAttr::new(MapType::Array, 4, 4, MAX_TABLE), None)?.memlock();
    let common = outer.memlock() + template.memlock();
    let per_service = common + inner_total;
    let fixed = common + fixed_one * SERVICES as u64;

    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let pct = |p: usize| sorted[(sorted.len() - 1) * p / 100];
    let big = counts.iter().filter(|&&b| b >= 1000).count();
    let capped = sizes.iter().filter(|&&s| s == MAX_TABLE).count();
    let slots: u64 = sizes.iter().map(|&s| s as u64).sum();
    println!("services: {SERVICES} (seed {SEED:#x})");
    println!(
        "backends per service: p50 {}  p90 {}  p99 {}  max {}  ({big} services with >= 1000)",
        pct(50),
        pct(90),
        pct(99),
        sorted[sorted.len() - 1]
    );
    println!(
        "table slots: total {slots}, mean {:.0}, {capped} capped at {MAX_TABLE}",
        slots as f64 / SERVICES as f64
    );
    println!(
        "outer hash_of_maps + template memlock: {common} B ({:.2} MiB)",
        mib(common)
    );
    println!();
    println!("| variant | inner arrays | memlock total |");
    println!("|---|---|---|");
    println!(
        "| per-service size (BPF_F_INNER_MAP), created | {} B ({:.1} MiB) | {} B ({:.1} MiB) |",
        inner_total,
        mib(inner_total),
        per_service,
        mib(per_service)
    );
    println!(
        "| fixed {MAX_TABLE} entries, computed ({fixed_one} B each) | {} B ({:.1} MiB) | {} B ({:.1} MiB) |",
        fixed_one * SERVICES as u64,
        mib(fixed_one * SERVICES as u64),
        fixed,
        mib(fixed)
    );
    println!();
    println!(
        "fixed / per-service = {:.1}x",
        fixed as f64 / per_service as f64
    );
    Ok(())
}

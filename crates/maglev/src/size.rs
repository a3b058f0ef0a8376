//! Per-service table size selection.
//!
//! The table size `M` of a service is the smallest prime of [`ALLOWED_TABLE_SIZES`] that
//! is at least `max(k·N, min_size)` (`N` = backends with a positive weight, `k` =
//! [`SizePolicy::slots_per_backend`], 100 by default: the paper's `M ≥ 100·N` bound for
//! ≤ 1% imbalance), capped at [`SizePolicy::max_size`].
//!
//! # The allowed sizes
//! Cilium's list: the largest prime below each power of two from 2^8 to 2^17 (251 …
//! 131071; 65521 rather than the paper's 65537). Primes just *below* a power of two suit
//! the packed layout ([`crate::layout`], four 2-byte slots per 8-byte element): the
//! table of 16381 slots is 4096 elements, 131071 slots 32768, i.e. no size wastes an
//! almost-empty next power of two. Doubling steps keep the over-allocation at most 2x.
//!
//! # The floor: 4093
//! Balance needs only `M ≥ 100·N`; disruption wants more for small services. Measured
//! collateral disruption (slots moved between *surviving* backends when one of `N`
//! backends is removed, % of `M`, mean over 200 random removals; `cargo run --release -p
//! kbpf-maglev --example disruption`; the same numbers as maglev.md §6):
//!
//! | N | M = 100·N-sized | extra @ that M | extra @ 1021 | extra @ 4093 | extra @ 16381 |
//! |---|---|---|---|---|---|
//! | 3 | 509 | 0.71% | 0.48% | 0.19% | 0.09% |
//! | 5 | 509 | 2.03% | 1.32% | 0.54% | 0.28% |
//! | 10 | 1021 | 2.49% | 2.49% | 1.09% | 0.56% |
//! | 20 | 2039 | 2.43% | 3.61% | 1.61% | 0.73% |
//! | 50 | 8191 | 1.54% | 5.00% | 2.35% | 1.03% |
//! | 100 | 16381 | 1.33% | 3.52% | 2.93% | 1.33% |
//! | 600 | 65521 | 0.81% | — | — | 0.89% |
//!
//! Pure `M ≥ 100·N` sizing peaks at ~2.5% for `N = 10…20`; a floor of 4093 brings every
//! `N ≤ 40` to ≤ 1.6% and keeps the default policy's mean collateral disruption ≤ 1.7%
//! for all `N` (the paper's 65537-slot default gives 0.58% at N=1000). The cost: a
//! 4093-slot table is 8.5 KiB of kernel memory in the packed layout (1021: 2.4 KiB).
//! For 10,000 services with a power-law backend count (α = 1.6, mean N = 32,
//! `--example memory`) the packed tables take 130 MiB with this floor, 79 MiB with a
//! floor of 1021 and 69 MiB with none, against 5,003 MiB for one 65,537-slot u32 table
//! per service and 628 MiB for Cilium's global 16381. Deployments that prefer memory
//! over the last percent of disruption set `min_size: 1021`.
//!
//! # The cap: 131071
//! 256 KiB packed; serves up to 1310 backends at `k = 100`. Larger services get 131071
//! and stay within ±1 entry per backend, with a share error a little above 1%.

/// The table sizes a service may get (all prime), ascending.
pub const ALLOWED_TABLE_SIZES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

/// Default `k` in `M ≥ k·N` (paper §3.4: "larger than 100 × N").
pub const DEFAULT_SLOTS_PER_BACKEND: u32 = 100;
/// Default smallest table (see the module docs).
pub const DEFAULT_MIN_TABLE_SIZE: u32 = 4093;
/// Default largest table.
pub const DEFAULT_MAX_TABLE_SIZE: u32 = 131071;

/// How services' table sizes are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizePolicy {
    /// `k`: at least this many slots per active backend.
    pub slots_per_backend: u32,
    /// No table smaller than this (rounded up to an allowed size).
    pub min_size: u32,
    /// No table larger than this (rounded down to an allowed size, at least 251).
    pub max_size: u32,
}

impl Default for SizePolicy {
    fn default() -> Self {
        SizePolicy {
            slots_per_backend: DEFAULT_SLOTS_PER_BACKEND,
            min_size: DEFAULT_MIN_TABLE_SIZE,
            max_size: DEFAULT_MAX_TABLE_SIZE,
        }
    }
}

impl SizePolicy {
    /// One fixed size for every service (e.g. Cilium's global 16381): the allowed size
    /// nearest below or at `size`.
    pub fn fixed(size: u32) -> SizePolicy {
        SizePolicy {
            slots_per_backend: 0,
            min_size: size,
            max_size: size,
        }
    }

    /// The table size for a service with `active_backends` backends of positive weight.
    pub fn table_size(&self, active_backends: usize) -> u32 {
        let cap = ALLOWED_TABLE_SIZES
            .iter()
            .copied()
            .rfind(|&s| s <= self.max_size)
            .unwrap_or(ALLOWED_TABLE_SIZES[0]);
        let need = (u64::from(self.slots_per_backend) * active_backends as u64)
            .max(u64::from(self.min_size));
        ALLOWED_TABLE_SIZES
            .iter()
            .copied()
            .find(|&s| u64::from(s) >= need)
            .map_or(cap, |s| s.min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::is_prime;

    #[test]
    fn allowed_sizes_are_primes_below_powers_of_two() {
        for (i, &s) in ALLOWED_TABLE_SIZES.iter().enumerate() {
            assert!(is_prime(s), "{s}");
            let pow = 1u32 << (8 + i);
            assert!(
                s < pow && ((s + 1)..pow).all(|p| !is_prime(p)),
                "{s} is the largest prime below {pow}"
            );
        }
    }

    #[test]
    fn default_policy() {
        let p = SizePolicy::default();
        for (n, m) in [
            (0, 4093),
            (1, 4093),
            (10, 4093),
            (40, 4093),
            (41, 8191),
            (81, 8191),
            (82, 16381),
            (163, 16381),
            (164, 32749),
            (327, 32749),
            (328, 65521),
            (655, 65521),
            (656, 131071),
            (1310, 131071),
            (5000, 131071), // capped
        ] {
            assert_eq!(p.table_size(n), m, "N={n}");
        }
        for n in 0..2000 {
            let m = p.table_size(n);
            assert!(ALLOWED_TABLE_SIZES.contains(&m));
            assert!(m >= 4093);
            if n <= 1310 {
                assert!(m as usize >= 100 * n, "N={n} M={m}");
                // Smallest such size: the next smaller allowed one is too small.
                let i = ALLOWED_TABLE_SIZES.iter().position(|&s| s == m).unwrap();
                let prev = ALLOWED_TABLE_SIZES[i - 1];
                assert!(prev < 4093 || (prev as usize) < 100 * n, "N={n} M={m}");
            }
        }
    }

    #[test]
    fn custom_policies() {
        assert_eq!(SizePolicy::fixed(16381).table_size(1), 16381);
        assert_eq!(SizePolicy::fixed(16381).table_size(1000), 16381);
        assert_eq!(SizePolicy::fixed(20000).table_size(3), 16381);
        let small = SizePolicy {
            slots_per_backend: 100,
            min_size: 0,
            max_size: 65537,
        };
        assert_eq!(small.table_size(1), 251);
        assert_eq!(small.table_size(3), 509);
        assert_eq!(small.table_size(1000), 65521);
        let tiny_cap = SizePolicy {
            slots_per_backend: 100,
            min_size: 0,
            max_size: 100,
        };
        assert_eq!(tiny_cap.table_size(50), 251);
    }
}

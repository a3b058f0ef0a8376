//! Maglev lookup-table generation (Eisenbud et al., NSDI '16, §3.4), weighted.
//!
//! # Algorithm
//! Each backend `i` gets, from its name, `offset = h1(name) mod M` and
//! `skip = h2(name) mod (M-1) + 1` ([`HashSeed::name_hashes`], SipHash-1-3); its
//! preference list is the permutation `(offset + j·skip) mod M`, which visits every slot
//! once because `M` is prime. Backends then take turns; on its turn a backend claims the
//! next slot of its own permutation that is still empty. After exactly `M` turns every
//! slot is taken.
//!
//! No `N × M` permutation matrix is built (Cilium precomputes one: 131 MB for
//! N=1000, M=16381 with u64 entries). Each backend keeps only its current position and
//! `skip`, and advances with one add and a conditional subtract of `M` (no `%` in the
//! inner loop), as Katran and Envoy do.
//!
//! # Determinism
//! Backends are sorted by name (bytes) before anything else, so the table depends only
//! on the *set* of `(name, weight)` pairs, the seed and `M`: never on input order, the
//! process, the platform or the Rust version. Names must be unique.
//! [`MaglevTable::entries`] still refers to the caller's slice positions.
//!
//! # Weights: exact quotas, spread by a credit schedule
//! The paper leaves weighting open ("altering the relative frequency of the backends'
//! turns"). Here:
//! 1. **Quotas** by largest remainder (Hamilton apportionment): backend `i` with weight
//!    `w_i > 0` gets `⌊M·w_i/W⌋` slots (`W = Σw`), and the `M − Σ⌊…⌋` leftover slots go
//!    one each to the backends with the largest remainders `(M·w_i) mod W`, ties to the
//!    earlier name. So every count is within ±1 (strictly: `|c_i − M·w_i/W| < 1`) of
//!    the exact share. Weight 0 = drained: no slot.
//! 2. **Turn schedule**: `Q = max quota` rounds; in round `r` (1-based, names in
//!    order) backend `i` takes a turn if `⌈r·q_i/Q⌉` exceeds the turns it has had. So its
//!    turns are spread evenly over the build (a credit accumulator, no division), the
//!    heaviest backend moves every round, and after round `Q` each backend has had
//!    exactly `q_i` turns, i.e. owns exactly `q_i` slots.
//!
//! With equal weights this is *exactly* the paper's Pseudocode 1: the quotas are
//! `⌈M/N⌉` for the first `M mod N` names and `⌊M/N⌋` for the rest, and the
//! shorter-quota backends sit out only the last round, where the paper's loop stops at
//! `n = M` (tested against a literal implementation of Pseudocode 1).
//!
//! Share accuracy: since `|c_i − M·w_i/W| < 1`, the relative error of backend `i`'s
//! share is below `W/(M·w_i)`; it is within 1% when every active backend's exact share
//! `M·w_i/W` is ≥ 100 slots, which for equal weights is the paper's `M ≥ 100·N`.
//!
//! # Speed
//! When the schedule is dense (`Q·N ≤ 4·M`, always true for equal weights) the rounds
//! are scanned directly; for very skewed weights (one backend far heavier than the
//! others) the same turns are replayed in the same order from a binary heap keyed by
//! `(round, name order)`, so the cost stays `O(M log N)` plus the claims. The claims
//! dominate: the expected number of probes is `M·H(M) ≈ M ln M` (paper §3.4).
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::hash::HashSeed;

/// The table value of a slot with no backend (only when no backend has weight > 0).
pub const NO_BACKEND: u32 = u32::MAX;

/// Largest accepted table size: positions and `pos + skip` must fit a `u32`.
pub const MAX_TABLE_SIZE: u32 = (1 << 31) - 1;

/// One backend of a service: a unique, stable name (its identity for hashing: e.g.
/// `"10.0.0.7:8080"`; all load balancers must use the same names) and a weight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Unique name, hashed with the seed to place the backend.
    pub name: String,
    /// Relative weight; 0 = drained (keeps no slot).
    pub weight: u32,
}

impl Backend {
    /// A backend with the given name and weight.
    pub fn new(name: impl Into<String>, weight: u32) -> Backend {
        Backend {
            name: name.into(),
            weight,
        }
    }

    /// A backend of weight 1.
    pub fn unweighted(name: impl Into<String>) -> Backend {
        Backend::new(name, 1)
    }
}

/// Why a table cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// `M` must be a prime ≥ 2 so every `skip` is coprime with it.
    #[error("Maglev table size {0} is not a prime >= 2")]
    NotPrime(u32),
    /// `M` above [`MAX_TABLE_SIZE`].
    #[error("Maglev table size {size} exceeds the maximum {max}")]
    TooLarge {
        /// Requested size.
        size: u32,
        /// [`MAX_TABLE_SIZE`].
        max: u32,
    },
    /// Two backends share a name, so they would share a permutation.
    #[error("duplicate Maglev backend name {0:?}")]
    DuplicateName(String),
    /// More backends than a table entry can index.
    #[error("{0} Maglev backends: at most {max} can be indexed", max = NO_BACKEND - 1)]
    TooManyBackends(usize),
}

/// A built lookup table: `M` slots, each the index (into the backend slice given to
/// [`build`]) of the backend owning it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    entries: Vec<u32>,
}

impl MaglevTable {
    /// `M`, the number of slots.
    pub fn size(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The slots: backend indices into the slice given to [`build`], or [`NO_BACKEND`]
    /// everywhere when no backend had a positive weight.
    pub fn entries(&self) -> &[u32] {
        &self.entries
    }

    /// The backend for a flow hash: `entries[hash mod M]`, `None` for an empty table.
    pub fn lookup(&self, hash: u32) -> Option<u32> {
        let slot = hash % self.size();
        match self.entries[slot as usize] {
            NO_BACKEND => None,
            idx => Some(idx),
        }
    }

    /// Slots per backend, for `backend_count` backends (the length of the slice given
    /// to [`build`]).
    pub fn counts(&self, backend_count: usize) -> Vec<u32> {
        let mut counts = vec![0u32; backend_count];
        for &e in &self.entries {
            if let Some(c) = counts.get_mut(e as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// A portable 64-bit fingerprint for golden tests: FNV-1a 64 over `M` and then every
    /// entry, each as 4 little-endian bytes.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |word: u32| {
            for b in word.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(self.size());
        for &e in &self.entries {
            feed(e);
        }
        h
    }
}

/// Whether `n` is prime (trial division; `n < 2^32` needs at most 65,536 divisions).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// A backend taking turns: its place in its permutation and its schedule state.
struct Walker {
    /// Index into the caller's slice (what goes into the table).
    who: u32,
    /// Next slot of the permutation to try.
    pos: u32,
    skip: u32,
    /// Slots this backend will own.
    quota: u32,
    /// Credit of the turn schedule: `turns(r)·Q − r·quota` after `r` rounds, in `[0, Q)`.
    credit: u32,
}

/// The slots being filled: owners plus a bitmap of taken slots. Probing tests the
/// bitmap (8 KiB for M=65537, so it stays in L1) instead of the 256 KiB owner array.
struct Fill {
    entries: Vec<u32>,
    taken: Vec<u64>,
}

impl Fill {
    fn new(m: u32) -> Fill {
        Fill {
            entries: vec![NO_BACKEND; m as usize],
            taken: vec![0u64; (m as usize).div_ceil(64)],
        }
    }

    /// Claims the next empty slot of `w`'s permutation. The caller guarantees one exists.
    #[inline(always)]
    fn claim(&mut self, w: &mut Walker, m: u32) {
        loop {
            let p = w.pos;
            // pos < M and skip < M, so the sum fits and one subtract reduces it.
            w.pos += w.skip;
            if w.pos >= m {
                w.pos -= m;
            }
            let word = &mut self.taken[(p >> 6) as usize];
            let bit = 1u64 << (p & 63);
            if *word & bit == 0 {
                *word |= bit;
                self.entries[p as usize] = w.who;
                return;
            }
        }
    }
}

/// Builds the Maglev table of size `size` (a prime) for `backends` under `seed`.
///
/// Errors: a size that is not a prime ≥ 2 or above [`MAX_TABLE_SIZE`], duplicate names,
/// or more than `u32::MAX − 1` backends. No backend with a positive weight gives a table
/// of [`NO_BACKEND`].
pub fn build(backends: &[Backend], size: u32, seed: HashSeed) -> Result<MaglevTable, TableError> {
    if size > MAX_TABLE_SIZE {
        return Err(TableError::TooLarge {
            size,
            max: MAX_TABLE_SIZE,
        });
    }
    if !is_prime(size) {
        return Err(TableError::NotPrime(size));
    }
    if backends.len() >= NO_BACKEND as usize {
        return Err(TableError::TooManyBackends(backends.len()));
    }
    let m = size;

    // Name order makes the table independent of the caller's order.
    let mut order: Vec<u32> = (0..backends.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        backends[a as usize]
            .name
            .as_bytes()
            .cmp(backends[b as usize].name.as_bytes())
    });
    for pair in order.windows(2) {
        if backends[pair[0] as usize].name == backends[pair[1] as usize].name {
            return Err(TableError::DuplicateName(
                backends[pair[0] as usize].name.clone(),
            ));
        }
    }

    let quotas = quotas(backends, &order, m);
    let mut walkers: Vec<Walker> = order
        .iter()
        .zip(&quotas)
        .filter(|&(_, &q)| q > 0)
        .map(|(&who, &quota)| {
            let (h1, h2) = seed.name_hashes(backends[who as usize].name.as_bytes());
            Walker {
                who,
                pos: (h1 % u64::from(m)) as u32,
                skip: (h2 % u64::from(m - 1)) as u32 + 1,
                quota,
                credit: 0,
            }
        })
        .collect();

    let mut fill = Fill::new(m);
    let Some(q_max) = walkers.iter().map(|w| w.quota).max() else {
        return Ok(MaglevTable {
            entries: fill.entries,
        });
    };
    if u64::from(q_max) * walkers.len() as u64 <= 4 * u64::from(m) {
        fill_by_rounds(&mut fill, &mut walkers, q_max, m);
    } else {
        fill_by_heap(&mut fill, &mut walkers, q_max, m);
    }
    Ok(MaglevTable {
        entries: fill.entries,
    })
}

/// Largest-remainder quotas, in name order (`order`); they sum to `m` unless every
/// weight is 0.
fn quotas(backends: &[Backend], order: &[u32], m: u32) -> Vec<u32> {
    let total: u64 = order
        .iter()
        .map(|&i| u64::from(backends[i as usize].weight))
        .sum();
    let mut quotas = vec![0u32; order.len()];
    if total == 0 {
        return quotas;
    }
    let mut remainders: Vec<(u64, usize)> = Vec::with_capacity(order.len());
    let mut assigned: u64 = 0;
    for (pos, &i) in order.iter().enumerate() {
        let w = backends[i as usize].weight;
        if w == 0 {
            continue;
        }
        let num = u128::from(m) * u128::from(w);
        let floor = (num / u128::from(total)) as u64;
        let rem = (num % u128::from(total)) as u64;
        quotas[pos] = floor as u32;
        assigned += floor;
        remainders.push((rem, pos));
    }
    // Largest remainder first; equal remainders in name order.
    remainders.sort_unstable_by_key(|&(rem, pos)| (Reverse(rem), pos));
    let leftover = (u64::from(m) - assigned) as usize;
    for &(_, pos) in remainders.iter().take(leftover) {
        quotas[pos] += 1;
    }
    quotas
}

/// Round by round, every walker in name order, each taking a turn when its credit says.
fn fill_by_rounds(fill: &mut Fill, walkers: &mut [Walker], q_max: u32, m: u32) {
    for _round in 0..q_max {
        for w in walkers.iter_mut() {
            if w.credit >= w.quota {
                w.credit -= w.quota;
                continue;
            }
            w.credit += q_max - w.quota;
            fill.claim(w, m);
        }
    }
}

/// The same turns in the same order as [`fill_by_rounds`], from a heap: walker `i`'s
/// `k`-th turn (1-based) falls in round `⌊(k−1)·Q/q_i⌋` (0-based), and turns within a
/// round go in name order.
fn fill_by_heap(fill: &mut Fill, walkers: &mut [Walker], q_max: u32, m: u32) {
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = walkers
        .iter()
        .enumerate()
        .map(|(order, _)| Reverse((0u64, order)))
        .collect();
    let mut taken = vec![0u32; walkers.len()];
    while let Some(Reverse((_, order))) = heap.pop() {
        let w = &mut walkers[order];
        fill.claim(w, m);
        taken[order] += 1;
        let k = taken[order];
        if k < w.quota {
            let round = u64::from(k) * u64::from(q_max) / u64::from(w.quota);
            heap.push(Reverse((round, order)));
        }
    }
}

/// The literal Pseudocode 1 of the paper with a full permutation matrix; equal weights
/// only. Slow (`O(N·M)` memory); kept to check [`build`] against.
#[doc(hidden)]
pub fn build_reference_unweighted(names: &[&str], m: u32, seed: HashSeed) -> Vec<u32> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].as_bytes().cmp(names[b].as_bytes()));
    let mm = m as u64;
    let permutation: Vec<Vec<u32>> = order
        .iter()
        .map(|&i| {
            let (h1, h2) = seed.name_hashes(names[i].as_bytes());
            let offset = h1 % mm;
            let skip = h2 % (mm - 1) + 1;
            (0..mm).map(|j| ((offset + j * skip) % mm) as u32).collect()
        })
        .collect();
    let mut next = vec![0usize; names.len()];
    let mut entry = vec![NO_BACKEND; m as usize];
    let mut n = 0u32;
    if names.is_empty() {
        return entry;
    }
    loop {
        for (k, &i) in order.iter().enumerate() {
            let mut c = permutation[k][next[k]];
            while entry[c as usize] != NO_BACKEND {
                next[k] += 1;
                c = permutation[k][next[k]];
            }
            entry[c as usize] = i as u32;
            next[k] += 1;
            n += 1;
            if n == m {
                return entry;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend::unweighted(format!("backend-{i}")))
            .collect()
    }

    #[test]
    fn primes() {
        let small: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        for p in [
            251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071, 655373,
        ] {
            assert!(is_prime(p), "{p}");
        }
        assert!(!is_prime(65535) && !is_prime(1) && !is_prime(0) && !is_prime(4_294_967_295));
        assert!(is_prime(4_294_967_291));
    }

    #[test]
    fn rejects_bad_sizes_and_duplicates() {
        let seed = HashSeed::default();
        assert_eq!(
            build(&names(3), 1000, seed),
            Err(TableError::NotPrime(1000))
        );
        assert_eq!(build(&names(3), 1, seed), Err(TableError::NotPrime(1)));
        assert_eq!(
            build(&names(3), 4_294_967_291, seed),
            Err(TableError::TooLarge {
                size: 4_294_967_291,
                max: MAX_TABLE_SIZE
            })
        );
        let dup = vec![
            Backend::unweighted("a"),
            Backend::unweighted("b"),
            Backend::unweighted("a"),
        ];
        assert_eq!(
            build(&dup, 251, seed),
            Err(TableError::DuplicateName("a".into()))
        );
    }

    #[test]
    fn empty_and_drained() {
        let seed = HashSeed::default();
        let t = build(&[], 251, seed).unwrap();
        assert!(t.entries().iter().all(|&e| e == NO_BACKEND));
        assert_eq!(t.lookup(7), None);
        let drained = vec![Backend::new("a", 0), Backend::new("b", 0)];
        let t = build(&drained, 251, seed).unwrap();
        assert!(t.entries().iter().all(|&e| e == NO_BACKEND));
        let one_live = vec![
            Backend::new("a", 0),
            Backend::new("b", 5),
            Backend::new("c", 0),
        ];
        let t = build(&one_live, 251, seed).unwrap();
        assert_eq!(t.counts(3), [0, 251, 0]);
    }

    #[test]
    fn paper_pseudocode_equivalence() {
        let seed = HashSeed::from_bytes(*b"0123456789abcdef");
        for &(n, m) in &[
            (1usize, 7u32),
            (3, 7),
            (7, 7),
            (10, 251),
            (33, 1021),
            (100, 2039),
            (250, 251),
        ] {
            let backends = names(n);
            let refs: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
            let fast = build(&backends, m, seed).unwrap();
            assert_eq!(
                fast.entries(),
                &build_reference_unweighted(&refs, m, seed)[..],
                "N={n} M={m}"
            );
        }
    }

    #[test]
    fn heap_and_rounds_agree() {
        // Skewed weights force the heap; rebuild with the rounds scan and compare.
        let backends: Vec<Backend> = (0..50)
            .map(|i| Backend::new(format!("b{i}"), if i == 7 { 1000 } else { 1 + i % 3 }))
            .collect();
        let seed = HashSeed::default();
        let m = 4093;
        let t = build(&backends, m, seed).unwrap();
        let order: Vec<u32> = {
            let mut o: Vec<u32> = (0..50).collect();
            o.sort_by(|&a, &b| backends[a as usize].name.cmp(&backends[b as usize].name));
            o
        };
        let q = quotas(&backends, &order, m);
        let mk = || -> Vec<Walker> {
            order
                .iter()
                .zip(&q)
                .filter(|&(_, &q)| q > 0)
                .map(|(&who, &quota)| {
                    let (h1, h2) = seed.name_hashes(backends[who as usize].name.as_bytes());
                    Walker {
                        who,
                        pos: (h1 % u64::from(m)) as u32,
                        skip: (h2 % u64::from(m - 1)) as u32 + 1,
                        quota,
                        credit: 0,
                    }
                })
                .collect()
        };
        let q_max = *q.iter().max().unwrap();
        let mut a = Fill::new(m);
        fill_by_rounds(&mut a, &mut mk(), q_max, m);
        let mut b = Fill::new(m);
        fill_by_heap(&mut b, &mut mk(), q_max, m);
        assert_eq!(a.entries, b.entries);
        assert_eq!(t.entries(), &a.entries[..]);
    }

    #[test]
    fn weighted_quotas_exact() {
        // Cilium's weighted example sizes: weights 2/13/111/10 at M=1021.
        let backends = vec![
            Backend::new("a", 2),
            Backend::new("b", 13),
            Backend::new("c", 111),
            Backend::new("d", 10),
        ];
        let t = build(&backends, 1021, HashSeed::default()).unwrap();
        let counts = t.counts(4);
        assert_eq!(counts.iter().sum::<u32>(), 1021);
        // 1021·w/136 = 15.01, 97.60, 833.32, 75.07 → 15, 98, 833, 75.
        assert_eq!(counts, [15, 98, 833, 75]);
        // Katran's MaglevV2 example: weights 2:1 at M=7 → 5:2 there; exact shares are
        // 4.67 and 2.33, so the largest remainder gives 5 and 2.
        let t = build(
            &[Backend::new("x", 2), Backend::new("y", 1)],
            7,
            HashSeed::default(),
        )
        .unwrap();
        assert_eq!(t.counts(2), [5, 2]);
    }

    #[test]
    fn independent_of_input_order() {
        let mut backends = names(20);
        let seed = HashSeed::default();
        let a = build(&backends, 1021, seed).unwrap();
        backends.reverse();
        let b = build(&backends, 1021, seed).unwrap();
        // Same owner names slot by slot.
        for (x, y) in a.entries().iter().zip(b.entries()) {
            assert_eq!(format!("backend-{x}"), backends[*y as usize].name);
        }
    }
}

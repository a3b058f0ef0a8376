//! kbpf-maglev: Maglev consistent hashing (Eisenbud et al., NSDI '16) for an XDP load
//! balancer whose services have individually sized lookup tables.
//!
//! - [`table`]: deterministic, weighted table generation (`build`), no `N×M` scratch;
//! - [`hash`]: SipHash-1-3 for backend names (control plane), the kernel's
//!   `jhash_3words` flow hashes of the datapath ([`flow_hash_v4`], [`flow_hash_v6`]);
//! - [`size`]: per-service table size selection (`SizePolicy`);
//! - [`layout`]: the inner-array layout (header + u32 backend list + four u16 slots per
//!   8-byte element), packing/unpacking, and the kernel's array-map memory accounting;
//! - [`abi`]: the byte encodings of the XDP program's map keys and values (IPv4 and
//!   IPv6 services, backends, conntrack, config, stats);
//! - [`packet`]: IPv4/IPv6 test frames and the expected rewritten frames;
//! - [`compare_memory`]: kernel memory of per-service sizing vs a flat 65,537-slot table
//!   per service vs one global 16,381 size.
//!
//! The datapath itself is `bpf/maglev.bpf.c` (object `bpf/maglev.bpf.o`, built by
//! `bpf/build.sh`); [`OBJECT_PATH`] locates it. `tests/kernel_datapath.rs` checks it on
//! the live kernel against this crate's tables.
//!
//! ```
//! use kbpf_maglev::{Backend, HashSeed, PackedTable, SizePolicy, build};
//!
//! let backends: Vec<Backend> = (1..=4).map(|i| Backend::unweighted(format!("10.0.0.{i}:80"))).collect();
//! let m = SizePolicy::default().table_size(backends.len());
//! let table = build(&backends, m, HashSeed::default())?;
//! assert_eq!(table.size(), 4093);
//! // Every backend owns ⌊M/N⌋ or ⌈M/N⌉ slots.
//! assert!(table.counts(4).iter().all(|&c| c == 1023 || c == 1024));
//! let packed = PackedTable::pack(&table, &[11, 12, 13, 14])?;
//! assert_eq!(packed.max_entries(), 1 + 2 + 1024);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod abi;
pub mod control;
pub mod demo;
pub mod hash;
pub mod kbpf_datapath;
pub mod layout;
pub mod live;
pub mod packet;
pub mod plot;
pub mod size;
pub mod table;

pub use hash::{HashSeed, flow_hash_v4, flow_hash_v6, jhash_3words};
pub use layout::{PackedTable, array_map_memory, packed_memory};
pub use size::{ALLOWED_TABLE_SIZES, SizePolicy};
pub use table::{Backend, MaglevTable, NO_BACKEND, TableError, build};

/// Path of the committed XDP object, `crates/maglev/bpf/maglev.bpf.o`, in the source tree
/// this crate was built from.
pub const OBJECT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/maglev.bpf.o");

/// Why a service's tables cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The Maglev table.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The packed layout.
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    /// `backend_ids` must give one id per backend.
    #[error("{backends} backends but {ids} backend ids")]
    IdCount {
        /// Backends given.
        backends: usize,
        /// Ids given.
        ids: usize,
    },
}

/// Everything the control plane writes for one service: the Maglev table (backend
/// indices into the given slice) and its packed inner-array form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTable {
    /// The table, `M` = the policy's size for the service's active backends.
    pub table: MaglevTable,
    /// The inner array: create `BPF_MAP_TYPE_ARRAY`, key 4, value
    /// [`layout::INNER_VALUE_SIZE`], `max_entries = packed.max_entries()`, flags
    /// `BPF_F_INNER_MAP`; write `packed.elements()[i]` at key `i`; then swap it into the
    /// outer map under the service key.
    pub packed: PackedTable,
}

/// Builds a service's table with the size `policy` picks for its active (weight > 0)
/// backends, and packs it; `backend_ids[i]` is backend `i`'s key in the datapath's
/// backends map.
pub fn build_service(
    backends: &[Backend],
    backend_ids: &[u32],
    policy: &SizePolicy,
    seed: HashSeed,
) -> Result<ServiceTable, ServiceError> {
    if backends.len() != backend_ids.len() {
        return Err(ServiceError::IdCount {
            backends: backends.len(),
            ids: backend_ids.len(),
        });
    }
    let active = backends.iter().filter(|b| b.weight > 0).count();
    let table = build(backends, policy.table_size(active), seed)?;
    let packed = PackedTable::pack(&table, backend_ids)?;
    Ok(ServiceTable { table, packed })
}

/// Memory of a population of services under different table layouts, in bytes of
/// kernel array-map memory ([`array_map_memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryComparison {
    /// Services counted.
    pub services: usize,
    /// Per-service sizes from the policy, packed layout (this crate's datapath).
    pub per_service_packed: u64,
    /// Per-service sizes, one `u32` id per element (8 B/slot).
    pub per_service_u32: u64,
    /// One 65,537-slot table per service, one `u32` id per element (Katran's flat ring).
    pub flat_65537_u32: u64,
    /// One global size 16,381, Cilium's one-element blob (4 B/slot).
    pub global_16381_blob: u64,
    /// One global size 16,381, packed layout.
    pub global_16381_packed: u64,
}

/// Compares layouts for services with the given numbers of active backends.
pub fn compare_memory(backend_counts: &[usize], policy: &SizePolicy) -> MemoryComparison {
    let mut c = MemoryComparison {
        services: backend_counts.len(),
        per_service_packed: 0,
        per_service_u32: 0,
        flat_65537_u32: 0,
        global_16381_blob: 0,
        global_16381_packed: 0,
    };
    for &n in backend_counts {
        let m = policy.table_size(n);
        let listed = n.min(m as usize);
        c.per_service_packed += layout::packed_memory(listed, m);
        c.per_service_u32 += layout::u32_per_element_memory(m);
        c.flat_65537_u32 += layout::u32_per_element_memory(65537);
        c.global_16381_blob += layout::cilium_blob_memory(16381);
        c.global_16381_packed += layout::packed_memory(n.min(16381), 16381);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_tables() {
        let backends: Vec<Backend> = (0..50)
            .map(|i| Backend::new(format!("b{i}"), u32::from(i % 10 != 0)))
            .collect();
        let ids: Vec<u32> = (100..150).collect();
        let s = build_service(&backends, &ids, &SizePolicy::default(), HashSeed::default())
            .expect("build service");
        // 45 active backends → 100·45 = 4500 → 8191.
        assert_eq!(s.table.size(), 8191);
        assert_eq!(s.packed.header().backend_count, 45);
        for h in [0u32, 1, 77, 123_456_789, u32::MAX] {
            let want = s.table.lookup(h).map(|i| ids[i as usize]);
            assert_eq!(s.packed.backend_for_hash(h), want);
        }
        assert_eq!(
            build_service(
                &backends,
                &ids[..3],
                &SizePolicy::default(),
                HashSeed::default()
            ),
            Err(ServiceError::IdCount {
                backends: 50,
                ids: 3
            })
        );
    }

    #[test]
    fn memory_comparison() {
        // One big service honouring M >= 100·N costs more than a global 16381 (which
        // cannot balance it); many small ones cost much less.
        let big = compare_memory(&[1000], &SizePolicy::default());
        assert!(big.per_service_packed > big.global_16381_packed);
        let counts = [1usize, 2, 2, 3, 5, 10, 50, 160];
        let c = compare_memory(&counts, &SizePolicy::default());
        assert_eq!(c.services, 8);
        assert_eq!(c.flat_65537_u32, 8 * (312 + 65537 * 8));
        assert_eq!(c.global_16381_blob, 8 * (312 + 65_528));
        assert!(c.per_service_packed * 3 < c.per_service_u32);
        assert!(c.per_service_packed < c.global_16381_packed);
        assert!(c.per_service_packed * 10 < c.flat_65537_u32);
    }
}

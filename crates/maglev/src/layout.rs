//! The inner-array layout of a service's table in the XDP datapath, packing and
//! unpacking, and the kernel's memory accounting of array maps.
//!
//! # Constraints
//! - Per-service sizes need `BPF_MAP_TYPE_HASH_OF_MAPS` with an `ARRAY` template flagged
//!   `BPF_F_INNER_MAP`: inner maps may then differ in `max_entries` but **not** in
//!   `value_size` (`bpf_map_meta_equal`). So Cilium's trick of one element holding the
//!   whole table (`value_size = 4·M`) is out: the value size is fixed, the table spans
//!   many elements.
//! - `arraymap.c` stores each element in `elem_size = round_up(value_size, 8)` bytes.
//!   A 4-byte backend id per element (Katran's `ch_rings`) therefore costs **8 B per
//!   slot**: half of it padding.
//! - The datapath must know `M` to compute `hash mod M`, and `M` must change atomically
//!   with the table (a new `M` over an old table would pick wrong or absent slots).
//!
//! # The layout (value_size 8, key u32)
//! | elements | content |
//! |---|---|
//! | `0` | [`Header`]: `table_size: u32` (M), `backend_count: u16`, `table_base: u16` |
//! | `1 .. table_base` | backend list: two `u32` global backend ids per element (local index `l` at element `1 + l/2`, lane `l % 2`) |
//! | `table_base ..` | the table: four `u16` local indices per element (slot `s` at element `table_base + s/4`, lane `s % 4`) |
//!
//! `max_entries = 1 + ⌈N/2⌉ + ⌈M/4⌉`. All lanes are native-endian (the BPF program
//! and this crate run on the same host); unused lanes are 0.
//!
//! # Byte math (kernel memory = 312-byte `struct bpf_array` + `max_entries · 8`)
//! | layout | bytes per slot | M=16381, N=100 | M=65521, N=600 | M=1021, N=3 |
//! |---|---|---|---|---|
//! | u32 id per element (value 4) | 8 | 131,360 | 524,480 | 8,480 |
//! | two u32 ids per element | 4 | 65,840 | 262,400 | 4,400 |
//! | **four u16 locals + u32 list (this)** | ≈ 2 | 33,488 | 133,768 | 2,384 |
//!
//! (e.g. M=16381, N=100: `312 + 8·(1 + 50 + 4096)` = 33,488 B: see [`packed_memory`]).
//! Four u16 lanes quarter the per-slot cost of the naive layout; the backend list adds
//! `4·N` bytes, which is ≤ 4% of the table when `M ≥ 100·N` (2 B/slot · 100 slots per
//! backend = 200 B per backend vs 4 B). u16 local indices limit a service to 65,535
//! backends with slots, far above what `M ≤ 131071` at 100 slots per backend can balance.
//! u8 lanes (8 per element) would cap services at 255 backends: not worth the limit.
//!
//! Keeping the header and the backend list *inside* the inner array makes one
//! outer-map update (Cilium's inner-map swap) replace M, the list and the table
//! together: the datapath never mixes old and new. The price is three helper calls per
//! new flow (header, table element, backend-list element): a `BPF_F_INNER_MAP` array is
//! never inlined anyway (kernel-semantics.md §8), and conntrack serves established
//! flows without any of them.
use crate::table::{MaglevTable, NO_BACKEND};

/// `value_size` of the inner arrays (and their template).
pub const INNER_VALUE_SIZE: u32 = 8;
/// Element index of the [`Header`].
pub const HEADER_ELEMENT: u32 = 0;
/// Element index where the backend list starts.
pub const BACKEND_LIST_BASE: u32 = 1;
/// Backend ids per backend-list element.
pub const IDS_PER_ELEMENT: u32 = 2;
/// Table slots per table element.
pub const SLOTS_PER_ELEMENT: u32 = 4;
/// Most backends with slots a packed table can index (u16 local indices).
pub const MAX_LOCAL_BACKENDS: usize = u16::MAX as usize;

/// `sizeof(struct bpf_array)` on Linux 6.18 x86-64: the offset of the element storage
/// (`VOFF`, kernel-semantics.md §8), charged by `array_map_mem_usage`.
pub const BPF_ARRAY_HEADER_BYTES: u64 = 312;

/// What the kernel charges for a plain (not per-CPU, not mmapable) `BPF_MAP_TYPE_ARRAY`
/// and reports as `memlock` in fdinfo and bpftool: `arraymap.c`'s
/// `array_map_mem_usage` = `sizeof(struct bpf_array) + max_entries ·
/// round_up(value_size, 8)`. (Privileged creators get no power-of-two rounding of
/// `max_entries`; unprivileged ones do, but `mem_usage` reports `max_entries` as given.)
pub fn array_map_memory(value_size: u32, max_entries: u32) -> u64 {
    let elem_size = u64::from(value_size).div_ceil(8) * 8;
    BPF_ARRAY_HEADER_BYTES + u64::from(max_entries) * elem_size
}

/// `max_entries` of a packed inner array for `backend_count` listed backends and
/// `table_size` slots (1 when the table is empty).
pub fn packed_max_entries(backend_count: usize, table_size: u32) -> u32 {
    if table_size == 0 || backend_count == 0 {
        return 1;
    }
    1 + (backend_count as u32).div_ceil(IDS_PER_ELEMENT) + table_size.div_ceil(SLOTS_PER_ELEMENT)
}

/// Kernel memory of a packed inner array (see the module's byte math).
pub fn packed_memory(backend_count: usize, table_size: u32) -> u64 {
    array_map_memory(
        INNER_VALUE_SIZE,
        packed_max_entries(backend_count, table_size),
    )
}

/// Kernel memory of the naive layout: one `u32` backend id per element (8 B per slot).
pub fn u32_per_element_memory(table_size: u32) -> u64 {
    array_map_memory(4, table_size)
}

/// Kernel memory of Cilium's layout: one element holding the whole table of `u32` ids.
pub fn cilium_blob_memory(table_size: u32) -> u64 {
    array_map_memory(4 * table_size, 1)
}

/// Element 0 of an inner array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `M`; 0 when the service has no backend with slots.
    pub table_size: u32,
    /// Number of backend ids in the list.
    pub backend_count: u16,
    /// Element index of the first table element (`1 + ⌈backend_count/2⌉`).
    pub table_base: u16,
}

impl Header {
    /// The 8 value bytes (native-endian fields, as `struct maglev_header` in C).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.table_size.to_ne_bytes());
        b[4..6].copy_from_slice(&self.backend_count.to_ne_bytes());
        b[6..8].copy_from_slice(&self.table_base.to_ne_bytes());
        b
    }

    /// Decodes element 0.
    pub fn from_bytes(b: [u8; 8]) -> Header {
        Header {
            table_size: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            backend_count: u16::from_ne_bytes([b[4], b[5]]),
            table_base: u16::from_ne_bytes([b[6], b[7]]),
        }
    }
}

/// Why a table cannot be packed or unpacked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `backend_ids` must give one global id per backend of the table.
    #[error("the table indexes backend {index} but only {given} backend ids were given")]
    MissingBackendId {
        /// Backend index found in the table.
        index: u32,
        /// Length of the id slice.
        given: usize,
    },
    /// More backends own slots than u16 local indices can name.
    #[error("{0} backends own slots; a packed Maglev table holds at most {MAX_LOCAL_BACKENDS}")]
    TooManyBackends(usize),
    /// The elements do not describe a consistent packed table.
    #[error("malformed packed Maglev table: {0}")]
    Malformed(String),
}

/// A service's table in the inner-array layout, ready to be written element by element
/// (key = element index as a native-endian `u32`, value = 8 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedTable {
    elements: Vec<[u8; 8]>,
}

impl PackedTable {
    /// Packs `table`, where `backend_ids[i]` is the global backend id (key of the
    /// datapath's `maglev_backends` map) of the table's backend `i`. The backend list
    /// holds, in index order, only the backends that own slots.
    pub fn pack(table: &MaglevTable, backend_ids: &[u32]) -> Result<PackedTable, LayoutError> {
        // local[i] = local index of table backend i (u32::MAX: owns no slot).
        let mut local = vec![u32::MAX; backend_ids.len()];
        let mut seen = vec![false; backend_ids.len()];
        for &e in table.entries() {
            if e == NO_BACKEND {
                continue;
            }
            match seen.get_mut(e as usize) {
                Some(s) => *s = true,
                None => {
                    return Err(LayoutError::MissingBackendId {
                        index: e,
                        given: backend_ids.len(),
                    });
                }
            }
        }
        let mut list = Vec::new();
        for (i, &s) in seen.iter().enumerate() {
            if s {
                local[i] = list.len() as u32;
                list.push(backend_ids[i]);
            }
        }
        if list.len() > MAX_LOCAL_BACKENDS {
            return Err(LayoutError::TooManyBackends(list.len()));
        }
        if list.is_empty() {
            let header = Header {
                table_size: 0,
                backend_count: 0,
                table_base: 1,
            };
            return Ok(PackedTable {
                elements: vec![header.to_bytes()],
            });
        }
        let m = table.size();
        let table_base = BACKEND_LIST_BASE + (list.len() as u32).div_ceil(IDS_PER_ELEMENT);
        let header = Header {
            table_size: m,
            backend_count: list.len() as u16,
            table_base: table_base as u16,
        };
        let mut elements = Vec::with_capacity(packed_max_entries(list.len(), m) as usize);
        elements.push(header.to_bytes());
        for pair in list.chunks(IDS_PER_ELEMENT as usize) {
            let mut e = [0u8; 8];
            for (lane, id) in pair.iter().enumerate() {
                e[lane * 4..lane * 4 + 4].copy_from_slice(&id.to_ne_bytes());
            }
            elements.push(e);
        }
        for quad in table.entries().chunks(SLOTS_PER_ELEMENT as usize) {
            let mut e = [0u8; 8];
            for (lane, &owner) in quad.iter().enumerate() {
                // Every slot has an owner here: the list is non-empty only when the
                // table has no NO_BACKEND slot (a table is all-or-nothing).
                let l = local.get(owner as usize).copied().unwrap_or(0) as u16;
                e[lane * 2..lane * 2 + 2].copy_from_slice(&l.to_ne_bytes());
            }
            elements.push(e);
        }
        Ok(PackedTable { elements })
    }

    /// The elements, index = map key.
    pub fn elements(&self) -> &[[u8; 8]] {
        &self.elements
    }

    /// `max_entries` the inner array needs.
    pub fn max_entries(&self) -> u32 {
        self.elements.len() as u32
    }

    /// Element 0.
    pub fn header(&self) -> Header {
        Header::from_bytes(self.elements[0])
    }

    /// Kernel memory of the inner array ([`array_map_memory`]).
    pub fn memory_bytes(&self) -> u64 {
        array_map_memory(INNER_VALUE_SIZE, self.max_entries())
    }

    /// The backend id the datapath picks for `hash`, by the same steps as
    /// `maglev_pick` in `maglev.bpf.c` (`None` where the program drops).
    pub fn backend_for_hash(&self, hash: u32) -> Option<u32> {
        datapath_pick(&self.elements, hash)
    }

    /// Decodes elements (e.g. read back from a kernel map): header, backend list and
    /// the `M` local indices. Checks the structure the datapath relies on.
    pub fn unpack(elements: &[[u8; 8]]) -> Result<(Header, Vec<u32>, Vec<u16>), LayoutError> {
        let first = elements
            .first()
            .ok_or_else(|| LayoutError::Malformed("no header element".into()))?;
        let h = Header::from_bytes(*first);
        if h.table_size == 0 {
            return Ok((h, Vec::new(), Vec::new()));
        }
        let want_base = BACKEND_LIST_BASE + u32::from(h.backend_count).div_ceil(IDS_PER_ELEMENT);
        if u32::from(h.table_base) != want_base {
            return Err(LayoutError::Malformed(format!(
                "table_base {} for {} backends (expected {want_base})",
                h.table_base, h.backend_count
            )));
        }
        let need = packed_max_entries(h.backend_count.into(), h.table_size) as usize;
        if elements.len() < need {
            return Err(LayoutError::Malformed(format!(
                "{} elements, M={} with {} backends needs {need}",
                elements.len(),
                h.table_size,
                h.backend_count
            )));
        }
        let ids: Vec<u32> = (0..u32::from(h.backend_count))
            .map(|l| {
                let e = &elements[(BACKEND_LIST_BASE + l / 2) as usize];
                let o = (l % 2) as usize * 4;
                u32::from_ne_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]])
            })
            .collect();
        let mut slots = Vec::with_capacity(h.table_size as usize);
        for s in 0..h.table_size {
            let e = &elements[(u32::from(h.table_base) + s / 4) as usize];
            let o = (s % 4) as usize * 2;
            let l = u16::from_ne_bytes([e[o], e[o + 1]]);
            if l >= h.backend_count {
                return Err(LayoutError::Malformed(format!(
                    "slot {s} names local backend {l} of {}",
                    h.backend_count
                )));
            }
            slots.push(l);
        }
        Ok((h, ids, slots))
    }
}

/// `maglev_pick` of the BPF program over raw elements: header, `hash % M`, table lane,
/// backend-list lane; `None` wherever the program would drop.
pub fn datapath_pick(elements: &[[u8; 8]], hash: u32) -> Option<u32> {
    let h = Header::from_bytes(*elements.first()?);
    if h.table_size == 0 || h.backend_count == 0 {
        return None;
    }
    let slot = hash % h.table_size;
    let e = elements.get((u32::from(h.table_base) + slot / 4) as usize)?;
    let o = (slot & 3) as usize * 2;
    let local = u32::from(u16::from_ne_bytes([e[o], e[o + 1]]));
    if local >= u32::from(h.backend_count) {
        return None;
    }
    let e = elements.get((BACKEND_LIST_BASE + local / 2) as usize)?;
    let o = (local & 1) as usize * 4;
    Some(u32::from_ne_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashSeed;
    use crate::table::{Backend, build};

    #[test]
    fn memory_formula() {
        // bpftool's memlock for key 4 / value 4 / 65536 entries was 524,608 with the
        // 320-byte header of 6.4; 6.18's header is 312.
        assert_eq!(array_map_memory(4, 65536), 312 + 65536 * 8);
        assert_eq!(array_map_memory(8, 1), 320);
        assert_eq!(array_map_memory(9, 2), 312 + 32);
        assert_eq!(u32_per_element_memory(16381), 131_360);
        assert_eq!(cilium_blob_memory(16381), 312 + 65_528);
        assert_eq!(packed_max_entries(100, 16381), 1 + 50 + 4096);
        assert_eq!(packed_memory(100, 16381), 312 + 8 * 4147);
        assert_eq!(packed_max_entries(0, 16381), 1);
        assert_eq!(packed_max_entries(3, 1021), 1 + 2 + 256);
    }

    #[test]
    fn pack_round_trip_and_pick() {
        let backends: Vec<Backend> = (0..7)
            .map(|i| Backend::new(format!("10.1.0.{i}:80"), if i == 3 { 0 } else { 1 + i }))
            .collect();
        let ids: Vec<u32> = (0..7).map(|i| 1000 + i).collect();
        let t = build(&backends, 1021, HashSeed::default()).unwrap();
        let p = PackedTable::pack(&t, &ids).unwrap();
        let h = p.header();
        // Backend 3 is drained, so six are listed.
        assert_eq!(
            h,
            Header {
                table_size: 1021,
                backend_count: 6,
                table_base: 4
            }
        );
        assert_eq!(p.max_entries(), 4 + 256);
        assert_eq!(p.memory_bytes(), 312 + 8 * 260);
        let (h2, list, slots) = PackedTable::unpack(p.elements()).unwrap();
        assert_eq!(h2, h);
        assert_eq!(list, [1000, 1001, 1002, 1004, 1005, 1006]);
        for (s, &l) in slots.iter().enumerate() {
            assert_eq!(list[l as usize], ids[t.entries()[s] as usize]);
        }
        for hash in (0..5000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            let want = t.lookup(hash).map(|i| ids[i as usize]);
            assert_eq!(p.backend_for_hash(hash), want);
        }
    }

    #[test]
    fn empty_and_errors() {
        let t = build(&[Backend::new("a", 0)], 251, HashSeed::default()).unwrap();
        let p = PackedTable::pack(&t, &[9]).unwrap();
        assert_eq!(p.max_entries(), 1);
        assert_eq!(p.backend_for_hash(5), None);
        assert_eq!(PackedTable::unpack(p.elements()).unwrap().0.table_size, 0);

        let t = build(
            &[Backend::unweighted("a"), Backend::unweighted("b")],
            251,
            HashSeed::default(),
        )
        .unwrap();
        assert!(matches!(
            PackedTable::pack(&t, &[1]),
            Err(LayoutError::MissingBackendId { given: 1, .. })
        ));
        let p = PackedTable::pack(&t, &[1, 2]).unwrap();
        let mut bad = p.elements().to_vec();
        bad.pop();
        assert!(matches!(
            PackedTable::unpack(&bad),
            Err(LayoutError::Malformed(_))
        ));
        let mut bad = p.elements().to_vec();
        bad[2][0..2].copy_from_slice(&7u16.to_ne_bytes());
        assert!(matches!(
            PackedTable::unpack(&bad),
            Err(LayoutError::Malformed(_))
        ));
        assert!(PackedTable::unpack(&[]).is_err());
    }
}

//! Map-related constants of the kernel's uapi (`include/uapi/linux/bpf.h`), under the kernel's
//! names: map types, `map_flags` bits, element-update flags.

use std::fmt;

// The numbers, from their one definition; this module adds the typed view and the masks.
pub use kbpf_uapi::bpf::{
    BPF_ANY, BPF_EXIST, BPF_F_CLONE, BPF_F_INNER_MAP, BPF_F_LOCK, BPF_F_MMAPABLE,
    BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_PRESERVE_ELEMS, BPF_F_RDONLY,
    BPF_F_RDONLY_PROG, BPF_F_STACK_BUILD_ID, BPF_F_WRONLY, BPF_F_WRONLY_PROG, BPF_F_ZERO_SEED,
    BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_CGROUP_ARRAY, BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_LRU_HASH,
    BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_QUEUE,
    BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_STACK, BPF_NOEXIST, BPF_OBJ_NAME_LEN,
};
pub use kbpf_uapi::bpf::{
    BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE, BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ,
};

/// A BPF map type, numbered as the kernel's `enum bpf_map_type`.
///
/// Only the types this crate implements plus the ones the creation checks must recognise are
/// listed; any other number is kept as [`MapType::Other`] so it can be rejected with the kernel's
/// errno rather than failing to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH` (1).
    Hash,
    /// `BPF_MAP_TYPE_ARRAY` (2).
    Array,
    /// `BPF_MAP_TYPE_PROG_ARRAY` (3).
    ProgArray,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (4).
    PerfEventArray,
    /// `BPF_MAP_TYPE_PERCPU_HASH` (5).
    PercpuHash,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (6).
    PercpuArray,
    /// `BPF_MAP_TYPE_CGROUP_ARRAY` (8).
    CgroupArray,
    /// `BPF_MAP_TYPE_LRU_HASH` (9).
    LruHash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH` (10).
    LruPercpuHash,
    /// `BPF_MAP_TYPE_LPM_TRIE` (11): longest-prefix match on `struct bpf_lpm_trie_key_u8` keys.
    LpmTrie,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (12).
    ArrayOfMaps,
    /// `BPF_MAP_TYPE_HASH_OF_MAPS` (13).
    HashOfMaps,
    /// `BPF_MAP_TYPE_QUEUE` (22).
    Queue,
    /// `BPF_MAP_TYPE_STACK` (23).
    Stack,
    /// `BPF_MAP_TYPE_RINGBUF` (27).
    Ringbuf,
    /// Any other kernel map type number (not implemented here).
    Other(u32),
}

impl MapType {
    /// The type for a kernel map-type number.
    pub const fn from_raw(raw: u32) -> MapType {
        match raw {
            BPF_MAP_TYPE_HASH => MapType::Hash,
            BPF_MAP_TYPE_ARRAY => MapType::Array,
            BPF_MAP_TYPE_PROG_ARRAY => MapType::ProgArray,
            BPF_MAP_TYPE_PERF_EVENT_ARRAY => MapType::PerfEventArray,
            BPF_MAP_TYPE_PERCPU_HASH => MapType::PercpuHash,
            BPF_MAP_TYPE_PERCPU_ARRAY => MapType::PercpuArray,
            BPF_MAP_TYPE_CGROUP_ARRAY => MapType::CgroupArray,
            BPF_MAP_TYPE_LRU_HASH => MapType::LruHash,
            BPF_MAP_TYPE_LRU_PERCPU_HASH => MapType::LruPercpuHash,
            BPF_MAP_TYPE_LPM_TRIE => MapType::LpmTrie,
            BPF_MAP_TYPE_ARRAY_OF_MAPS => MapType::ArrayOfMaps,
            BPF_MAP_TYPE_HASH_OF_MAPS => MapType::HashOfMaps,
            BPF_MAP_TYPE_QUEUE => MapType::Queue,
            BPF_MAP_TYPE_STACK => MapType::Stack,
            BPF_MAP_TYPE_RINGBUF => MapType::Ringbuf,
            other => MapType::Other(other),
        }
    }

    /// The kernel's number for this type.
    pub const fn raw(self) -> u32 {
        match self {
            MapType::Hash => BPF_MAP_TYPE_HASH,
            MapType::Array => BPF_MAP_TYPE_ARRAY,
            MapType::ProgArray => BPF_MAP_TYPE_PROG_ARRAY,
            MapType::PerfEventArray => BPF_MAP_TYPE_PERF_EVENT_ARRAY,
            MapType::PercpuHash => BPF_MAP_TYPE_PERCPU_HASH,
            MapType::PercpuArray => BPF_MAP_TYPE_PERCPU_ARRAY,
            MapType::CgroupArray => BPF_MAP_TYPE_CGROUP_ARRAY,
            MapType::LruHash => BPF_MAP_TYPE_LRU_HASH,
            MapType::LruPercpuHash => BPF_MAP_TYPE_LRU_PERCPU_HASH,
            MapType::LpmTrie => BPF_MAP_TYPE_LPM_TRIE,
            MapType::ArrayOfMaps => BPF_MAP_TYPE_ARRAY_OF_MAPS,
            MapType::HashOfMaps => BPF_MAP_TYPE_HASH_OF_MAPS,
            MapType::Queue => BPF_MAP_TYPE_QUEUE,
            MapType::Stack => BPF_MAP_TYPE_STACK,
            MapType::Ringbuf => BPF_MAP_TYPE_RINGBUF,
            MapType::Other(raw) => raw,
        }
    }

    /// bpftool's name for the type (`array_of_maps`, `lru_hash`, …).
    pub const fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerfEventArray => "perf_event_array",
            MapType::PercpuHash => "percpu_hash",
            MapType::PercpuArray => "percpu_array",
            MapType::CgroupArray => "cgroup_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPercpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::Ringbuf => "ringbuf",
            MapType::Other(14) => "devmap",
            MapType::Other(16) => "cpumap",
            MapType::Other(25) => "devmap_hash",
            MapType::Other(_) => "unknown",
        }
    }

    /// Types that share `array_map_alloc_check` (the kernel's array family).
    pub const fn is_array_family(self) -> bool {
        matches!(
            self,
            MapType::Array
                | MapType::PercpuArray
                | MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::CgroupArray
                | MapType::ArrayOfMaps
        )
    }

    /// Arrays whose values are file descriptors on write (`fd_array_map_alloc_check`).
    pub const fn is_fd_array(self) -> bool {
        matches!(
            self,
            MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::CgroupArray
                | MapType::ArrayOfMaps
        )
    }

    /// Types that share `htab_map_alloc_check` (the kernel's hash family).
    pub const fn is_hash_family(self) -> bool {
        matches!(
            self,
            MapType::Hash
                | MapType::PercpuHash
                | MapType::LruHash
                | MapType::LruPercpuHash
                | MapType::HashOfMaps
        )
    }

    /// `ARRAY_OF_MAPS` and `HASH_OF_MAPS`: maps with an `inner_map_meta`.
    pub const fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }

    /// Per-CPU value storage (`htab_is_percpu` / `PERCPU_ARRAY`).
    pub const fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
        )
    }

    /// QUEUE and STACK (`queue_stack_maps.c`): no keys, values pushed and popped.
    pub const fn is_queue_stack(self) -> bool {
        matches!(self, MapType::Queue | MapType::Stack)
    }

    /// `BPF_MAP_TYPE_LPM_TRIE` (`lpm_trie.c`): its own family — not a hash (no buckets, no
    /// `map_gen_lookup`, no lookup_and_delete), keys are a host-order `prefixlen` followed by
    /// big-endian data bits.
    pub const fn is_lpm_trie(self) -> bool {
        matches!(self, MapType::LpmTrie)
    }

    /// LRU hash types (`htab_is_lru`).
    pub const fn is_lru(self) -> bool {
        matches!(self, MapType::LruHash | MapType::LruPercpuHash)
    }

    /// Whether the kernel's ops table for this type has `map_meta_equal`, i.e. whether a map of
    /// this type may serve as an inner-map template (`bpf_map_meta_alloc` returns ENOTSUPP
    /// otherwise). PROG_ARRAY has none (observed ENOTSUPP on 6.18).
    pub const fn has_map_meta_equal(self) -> bool {
        !matches!(self, MapType::ProgArray | MapType::Other(_))
    }
}

/// Whether [`MapType::name`] has no name for this number.
const fn t_name_unknown(raw: u32) -> bool {
    matches!(MapType::Other(raw).name().as_bytes(), b"unknown")
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapType::Other(raw) if t_name_unknown(*raw) => write!(f, "type {raw}"),
            t => f.write_str(t.name()),
        }
    }
}

// ---- map_flags ----

/// `BPF_F_ACCESS_MASK`: the four access flags.
pub const BPF_F_ACCESS_MASK: u32 =
    BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;
/// `ARRAY_CREATE_FLAG_MASK` of arraymap.c.
pub const ARRAY_CREATE_FLAG_MASK: u32 =
    BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
/// `QUEUE_STACK_CREATE_FLAG_MASK` of queue_stack_maps.c.
pub const QUEUE_STACK_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
/// `RINGBUF_CREATE_FLAG_MASK` of ringbuf.c: only a NUMA node may be asked for.
pub const RINGBUF_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE;
/// `LPM_CREATE_FLAG_MASK` of lpm_trie.c (`BPF_F_NO_PREALLOC` is also *required*).
pub const LPM_CREATE_FLAG_MASK: u32 = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
/// `HTAB_CREATE_FLAG_MASK` of hashtab.c.
pub const HTAB_CREATE_FLAG_MASK: u32 =
    BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;

// ---- element update flags ----

/// `offsetof(struct htab_elem, key)` in kbpf's hash elements: the built-in profile's, which
/// kbpf's `HtabElem` mirrors (a profile with another value is reported by
/// `KernelProfile::unsupported`). Where array values start is per map (the profile's
/// `bpf_array_value_off`, in each array's header).
pub const HTAB_ELEM_KEY_OFF: usize = kbpf_profile::MapsProfile::BUILTIN.htab_elem_key_off as usize;
/// `offsetof(struct htab_elem, lru_node) + offsetof(struct bpf_lru_node, ref)` in kbpf's hash
/// elements (the built-in profile's).
pub const HTAB_ELEM_LRU_REF_OFF: usize =
    kbpf_profile::MapsProfile::BUILTIN.htab_elem_lru_ref_off as usize;
/// `offsetof(struct bpf_lpm_trie_key_u8, data)`: an LPM trie key is a host-order `u32`
/// prefix length followed by the data bytes.
pub const LPM_KEY_DATA_OFF: u32 = 4;
/// `LPM_DATA_SIZE_MIN`: at least one data byte.
pub const LPM_DATA_SIZE_MIN: u32 = 1;
/// `LPM_DATA_SIZE_MAX`: at most 256 data bytes (2048-bit prefixes).
pub const LPM_DATA_SIZE_MAX: u32 = 256;
/// `sizeof(struct lpm_trie_node)` on Linux 6.18 (two child pointers, `prefixlen`, `flags`;
/// nodes come from `bpf_mem_alloc`, so the `rcu_head` of 6.12's node is gone): the node part
/// of an LPM trie's `memlock` and of `LPM_VAL_SIZE_MAX`. Node data starts at this offset in
/// kbpf's nodes too.
pub const LPM_TRIE_NODE_SIZE: u32 = 24;
/// `LPM_VAL_SIZE_MAX`: `KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - sizeof(struct lpm_trie_node)`.
pub const LPM_VAL_SIZE_MAX: u32 = KMALLOC_MAX_SIZE as u32 - LPM_DATA_SIZE_MAX - LPM_TRIE_NODE_SIZE;
/// `PAGE_SIZE` of the reference kernel (x86_64).
pub const PAGE_SIZE: u64 = 4096;
/// `PCPU_MIN_UNIT_SIZE`: upper bound of a per-CPU value (32 KiB).
pub const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// `KMALLOC_MAX_SIZE` on x86_64 (`1 << (PAGE_SHIFT + MAX_PAGE_ORDER)` = 4 MiB).
pub const KMALLOC_MAX_SIZE: u64 = 1 << 22;

/// `RINGBUF_NR_META_PAGES`: the non-mmapable header page plus the consumer and producer
/// position pages that precede a ring buffer's data pages.
pub const RINGBUF_NR_META_PAGES: u64 = 3;
/// `RINGBUF_MAX_DATA_SZ` (64-bit): the record header's 32-bit page offset, minus 8 reserved bits
/// and the meta pages, bounds the data area.
pub const RINGBUF_MAX_DATA_SZ: u64 = ((1 << 24) - RINGBUF_NR_META_PAGES) * PAGE_SIZE;
/// `RINGBUF_MAX_RECORD_SZ`: largest record a ring buffer accepts (`UINT_MAX / 4`).
pub const RINGBUF_MAX_RECORD_SZ: u64 = u32::MAX as u64 / 4;
/// `round_up(x, 8)` in 64-bit arithmetic (never wraps for 32-bit sizes).
pub const fn round_up8(x: u32) -> u64 {
    (x as u64).div_ceil(8) * 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_numbers_round_trip() {
        for raw in 0..40 {
            assert_eq!(MapType::from_raw(raw).raw(), raw);
        }
        assert_eq!(MapType::from_raw(12), MapType::ArrayOfMaps);
        assert_eq!(MapType::from_raw(13), MapType::HashOfMaps);
        assert_eq!(BPF_F_INNER_MAP, 0x1000);
        assert_eq!(MapType::HashOfMaps.to_string(), "hash_of_maps");
        let lpm = MapType::from_raw(11);
        assert_eq!(lpm, MapType::LpmTrie);
        assert_eq!(lpm.to_string(), "lpm_trie");
        assert!(lpm.is_lpm_trie() && lpm.has_map_meta_equal());
        assert!(!lpm.is_hash_family() && !lpm.is_array_family() && !lpm.is_percpu());
        assert!(!lpm.is_map_in_map() && !lpm.is_queue_stack() && !lpm.is_fd_array());
    }

    #[test]
    fn masks_match_kernel_values() {
        assert_eq!(BPF_F_ACCESS_MASK, 0x198);
        assert_eq!(ARRAY_CREATE_FLAG_MASK, 0x1d9c);
        assert_eq!(HTAB_CREATE_FLAG_MASK, 0x1df);
        assert_eq!(LPM_CREATE_FLAG_MASK, 0x19d);
        assert_eq!(LPM_VAL_SIZE_MAX, 4_194_024);
        assert_eq!(round_up8(0), 0);
        assert_eq!(round_up8(1), 8);
        assert_eq!(round_up8(u32::MAX), 4294967296);
    }
}

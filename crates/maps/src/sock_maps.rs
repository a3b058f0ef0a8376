//! Maps of kernel objects kbpf does not have: `BPF_MAP_TYPE_SOCKMAP` (15), `XSKMAP` (17),
//! `SOCKHASH` (18), `REUSEPORT_SOCKARRAY` (20), `SK_STORAGE` (24) and the cgroup storages
//! `CGROUP_STORAGE` (19) and `PERCPU_CGROUP_STORAGE` (21); and `USER_RINGBUF` (31), whose
//! producer is user space (kbpf has no user-space side for it yet).
//!
//! They are created with the kernel's checks (`sock_map_alloc`, `xsk_map_alloc`,
//! `sock_hash_alloc`, `reuseport_array_alloc_check`, `bpf_local_storage_map_alloc_check`,
//! `cgroup_storage_map_alloc`), so
//! that objects using them load and the verifier can type programs that use them (socket
//! pointers from lookups, socket-local storage); they hold no elements (there are no sockets
//! in kbpf), and user space cannot read or write them.

use crate::attr::{MapAttr, array_map_alloc_check, err, ringbuf_map_alloc_check};
use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::uapi::{
    BPF_F_ACCESS_MASK, BPF_F_CLONE, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY,
    MapType,
};
pub use kbpf_uapi::bpf::{
    BPF_MAP_TYPE_CGROUP_STORAGE, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, BPF_MAP_TYPE_SK_STORAGE, BPF_MAP_TYPE_SOCKHASH,
    BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_USER_RINGBUF, BPF_MAP_TYPE_XSKMAP,
};

/// `PCPU_MIN_UNIT_SIZE`: the per-CPU cgroup storage's value limit.
const PCPU_MIN_UNIT_SIZE: u32 = 32 << 10;
/// `sizeof(struct bpf_cgroup_storage_key)`.
const CGROUP_STORAGE_KEY_SIZE: u32 = 16;

/// `SOCK_CREATE_FLAG_MASK` (sockmap, sockhash; xskmap has the same).
const SOCK_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;
/// `BPF_LOCAL_STORAGE_CREATE_FLAG_MASK`.
const LOCAL_STORAGE_CREATE_FLAG_MASK: u32 = BPF_F_NO_PREALLOC | BPF_F_CLONE;
/// `BPF_LOCAL_STORAGE_MAX_VALUE_SIZE` on x86-64: `U16_MAX` less the 128-byte
/// `struct bpf_local_storage_elem` (its data is cache-line aligned).
const LOCAL_STORAGE_MAX_VALUE_SIZE: u32 = 65535 - 128;

/// Whether `t` is one of this module's map types.
pub fn is_sock_map(t: MapType) -> bool {
    matches!(
        t,
        MapType::Other(
            BPF_MAP_TYPE_SOCKMAP
                | BPF_MAP_TYPE_XSKMAP
                | BPF_MAP_TYPE_SOCKHASH
                | BPF_MAP_TYPE_REUSEPORT_SOCKARRAY
                | BPF_MAP_TYPE_SK_STORAGE
                | BPF_MAP_TYPE_CGROUP_STORAGE
                | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
                | BPF_MAP_TYPE_USER_RINGBUF
        )
    )
}

/// The map type's allocation checks.
pub(crate) fn alloc_check(a: &MapAttr, t: MapType) -> Result<(), MapError> {
    let n = a.name.as_str();
    let inval = |why: String| Err(err(n, Errno::EINVAL, why));
    let value_u32_or_u64 = a.value_size == 4 || a.value_size == 8;
    match t.raw() {
        BPF_MAP_TYPE_SOCKMAP => {
            if a.max_entries == 0
                || a.max_entries > i32::MAX as u32
                || a.key_size != 4
                || !value_u32_or_u64
                || a.map_flags & !SOCK_CREATE_FLAG_MASK != 0
            {
                return inval(format!(
                    "sockmap needs max_entries > 0, key_size 4, value_size 4 or 8 and flags within {SOCK_CREATE_FLAG_MASK:#x}"
                ));
            }
        }
        BPF_MAP_TYPE_SOCKHASH => {
            if a.max_entries == 0
                || a.key_size == 0
                || !value_u32_or_u64
                || a.map_flags & !SOCK_CREATE_FLAG_MASK != 0
            {
                return inval(format!(
                    "sockhash needs max_entries > 0, a key, value_size 4 or 8 and flags within {SOCK_CREATE_FLAG_MASK:#x}"
                ));
            }
            if a.key_size > 512 {
                return Err(err(
                    n,
                    Errno::E2BIG,
                    "sockhash key larger than MAX_BPF_STACK",
                ));
            }
        }
        BPF_MAP_TYPE_XSKMAP => {
            if a.max_entries == 0
                || a.key_size != 4
                || a.value_size != 4
                || a.map_flags & !SOCK_CREATE_FLAG_MASK != 0
            {
                return inval(format!(
                    "xskmap needs max_entries > 0, key_size 4, value_size 4 and flags within {SOCK_CREATE_FLAG_MASK:#x}"
                ));
            }
        }
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY => {
            if !value_u32_or_u64 {
                return inval("reuseport array value_size must be 4 or 8".into());
            }
            return array_map_alloc_check(a, t, 1);
        }
        BPF_MAP_TYPE_SK_STORAGE => {
            if a.map_flags & !LOCAL_STORAGE_CREATE_FLAG_MASK != 0
                || a.map_flags & BPF_F_NO_PREALLOC == 0
                || a.max_entries != 0
                || a.key_size != 4
                || a.value_size == 0
                || a.btf_key_type_id == 0
                || a.btf_value_type_id == 0
            {
                return inval(
                    "sk_storage needs BPF_F_NO_PREALLOC, max_entries 0, key_size 4, a value and BTF type ids"
                        .into(),
                );
            }
            if a.value_size > LOCAL_STORAGE_MAX_VALUE_SIZE {
                return Err(err(n, Errno::E2BIG, "sk_storage value too large"));
            }
        }
        BPF_MAP_TYPE_CGROUP_STORAGE | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE => {
            let max = if t.raw() == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE {
                LOCAL_STORAGE_MAX_VALUE_SIZE.min(PCPU_MIN_UNIT_SIZE)
            } else {
                LOCAL_STORAGE_MAX_VALUE_SIZE
            };
            if a.key_size != CGROUP_STORAGE_KEY_SIZE && a.key_size != 8 {
                return inval("cgroup storage key is struct bpf_cgroup_storage_key or u64".into());
            }
            if a.value_size == 0 {
                return inval("cgroup storage needs a value".into());
            }
            if a.value_size > max {
                return Err(err(n, Errno::E2BIG, "cgroup storage value too large"));
            }
            if a.map_flags & !(BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK) != 0 {
                return inval(format!("cgroup storage flags {:#x}", a.map_flags));
            }
            if a.max_entries != 0 {
                return inval("cgroup storage max_entries must be 0 (it is per cgroup)".into());
            }
        }
        // ringbuf_map_alloc: the ring buffer's checks.
        BPF_MAP_TYPE_USER_RINGBUF => return ringbuf_map_alloc_check(a),
        other => return inval(format!("map type {other} is not a socket map")),
    }
    Ok(())
}

/// Memory accounted to the map: its slots (kbpf approximates the kernel's structure sizes:
/// a pointer per sockmap/xskmap/reuseport slot, a bucket per sockhash entry, nothing per
/// socket-local storage map).
pub(crate) fn mem_usage(m: &MapDef) -> u64 {
    let p = &m.profile;
    let ptrs = m.max_entries as u64 * 8;
    match m.map_type.raw() {
        BPF_MAP_TYPE_SK_STORAGE
        | BPF_MAP_TYPE_CGROUP_STORAGE
        | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE => 0,
        // sock_map_mem_usage, xsk_map_mem_usage, reuseport_array_mem_usage: the struct and
        // one pointer per entry (and no sockets, so no xsk_map_node).
        BPF_MAP_TYPE_SOCKMAP => p.sizeof_bpf_stab as u64 + ptrs,
        BPF_MAP_TYPE_XSKMAP => p.xsk_map_ptrs_off as u64 + ptrs,
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY => p.sizeof_reuseport_array as u64 + ptrs,
        // sock_hash_mem_usage: the struct and roundup_pow_of_two(max_entries) buckets (and
        // no elements).
        BPF_MAP_TYPE_SOCKHASH => {
            p.sizeof_bpf_shtab as u64
                + m.max_entries.next_power_of_two() as u64 * p.sizeof_bpf_shtab_bucket as u64
        }
        _ => ptrs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Map;

    fn attr(map_type: u32, key: u32, value: u32, max: u32, flags: u32) -> MapAttr {
        let mut a = MapAttr::new(MapType::from_raw(map_type), key, value, max);
        a.map_flags = flags;
        a.name = "m".into();
        a
    }

    #[test]
    fn creation_follows_the_kernels_checks() {
        assert!(Map::create(&attr(BPF_MAP_TYPE_SOCKMAP, 4, 8, 2, 0), None).is_ok());
        assert!(Map::create(&attr(BPF_MAP_TYPE_SOCKMAP, 8, 8, 2, 0), None).is_err());
        assert!(Map::create(&attr(BPF_MAP_TYPE_SOCKMAP, 4, 8, 0, 0), None).is_err());
        assert!(Map::create(&attr(BPF_MAP_TYPE_SOCKHASH, 12, 4, 2, 0), None).is_ok());
        assert!(Map::create(&attr(BPF_MAP_TYPE_SOCKHASH, 4, 2, 2, 0), None).is_err());
        assert!(Map::create(&attr(BPF_MAP_TYPE_XSKMAP, 4, 4, 2, 0), None).is_ok());
        assert!(Map::create(&attr(BPF_MAP_TYPE_XSKMAP, 4, 8, 2, 0), None).is_err());
        assert!(Map::create(&attr(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, 2, 0), None).is_ok());
        // Socket-local storage needs BTF type ids, no entries and BPF_F_NO_PREALLOC.
        let sk = attr(BPF_MAP_TYPE_SK_STORAGE, 4, 8, 0, BPF_F_NO_PREALLOC);
        let e = Map::create(&sk, None).expect_err("no BTF");
        assert_eq!(e.errno, Errno::EINVAL);
        assert!(
            Map::create(
                &attr(BPF_MAP_TYPE_SK_STORAGE, 4, 8, 1, BPF_F_NO_PREALLOC),
                None
            )
            .is_err()
        );
    }
}

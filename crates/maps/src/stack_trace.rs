//! `BPF_MAP_TYPE_STACK_TRACE`: the stack traces `bpf_get_stackid` collects, after
//! `kernel/bpf/stackmap.c`.
//!
//! kbpf runs programs in user space, where there is no kernel (or traced user) stack to
//! collect, so such a map never holds an entry: it is created with the kernel's checks and
//! accounted as the kernel accounts it (its buckets and preallocated elements), so that
//! objects using one load, verify and show as on the kernel; user space finds nothing in
//! it, and the helper fails to collect a stack (see kbpf-run).

use crate::attr::{MapAttr, err};
use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::uapi::{BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_STACK_BUILD_ID, BPF_F_WRONLY, MapType};
pub use kbpf_uapi::bpf::BPF_MAP_TYPE_STACK_TRACE;

/// `STACK_CREATE_FLAG_MASK`.
const STACK_CREATE_FLAG_MASK: u32 =
    BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_STACK_BUILD_ID;
/// `sizeof(struct bpf_stack_build_id)`.
const STACK_BUILD_ID_SIZE: u32 = 32;
/// `sysctl_perf_event_max_stack`'s default (`PERF_MAX_STACK_DEPTH`): the deepest stack a
/// value may hold.
pub const PERF_MAX_STACK_DEPTH: u32 = 127;

/// Whether `t` is a STACK_TRACE map.
pub fn is_stack_trace(t: MapType) -> bool {
    t.raw() == BPF_MAP_TYPE_STACK_TRACE
}

/// `stack_map_alloc`'s checks.
pub(crate) fn alloc_check(a: &MapAttr) -> Result<(), MapError> {
    let n = a.name.as_str();
    let inval = |why: String| Err(err(n, Errno::EINVAL, why));
    if a.map_flags & !STACK_CREATE_FLAG_MASK != 0 {
        return inval(format!(
            "flags {:#x} outside {STACK_CREATE_FLAG_MASK:#x}",
            a.map_flags
        ));
    }
    if a.max_entries == 0 || a.key_size != 4 || a.value_size < 8 || !a.value_size.is_multiple_of(8)
    {
        return inval(
            "stack trace map needs max_entries > 0, key_size 4 and a value_size \
                      that is a multiple of 8"
                .into(),
        );
    }
    let (unit, what) = if a.map_flags & BPF_F_STACK_BUILD_ID != 0 {
        (STACK_BUILD_ID_SIZE, "struct bpf_stack_build_id")
    } else {
        (8, "u64")
    };
    if !a.value_size.is_multiple_of(unit) || a.value_size / unit > PERF_MAX_STACK_DEPTH {
        return inval(format!(
            "value_size {} is not at most {PERF_MAX_STACK_DEPTH} {what}s",
            a.value_size
        ));
    }
    if a.max_entries > 1 << 31 {
        return Err(err(n, Errno::E2BIG, "max_entries > 2^31"));
    }
    Ok(())
}

/// `stack_map_mem_usage`: the map struct, a bucket pointer per power-of-two slot, and a
/// preallocated element (bucket header and value) per entry.
pub(crate) fn mem_usage(m: &MapDef) -> u64 {
    let p = &m.profile;
    let n_buckets = m.max_entries.next_power_of_two() as u64;
    p.sizeof_bpf_stack_map as u64
        + n_buckets * 8
        + m.max_entries as u64 * (p.sizeof_stack_map_bucket as u64 + m.value_size as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Map;

    fn create(k: u32, v: u32, n: u32, flags: u32) -> Result<Map, MapError> {
        let mut a = MapAttr::new(MapType::from_raw(BPF_MAP_TYPE_STACK_TRACE), k, v, n);
        a.map_flags = flags;
        a.name = "st".into();
        Map::create(&a, None)
    }

    #[test]
    fn creation_follows_stack_map_alloc() {
        assert!(create(4, 8, 1, 0).is_ok());
        assert!(create(4, 127 * 8, 100, 0).is_ok());
        assert_eq!(create(4, 128 * 8, 100, 0).unwrap_err().errno, Errno::EINVAL);
        assert_eq!(create(8, 8, 1, 0).unwrap_err().errno, Errno::EINVAL);
        assert_eq!(create(4, 12, 1, 0).unwrap_err().errno, Errno::EINVAL);
        assert_eq!(create(4, 8, 0, 0).unwrap_err().errno, Errno::EINVAL);
        assert!(create(4, 64, 1, BPF_F_STACK_BUILD_ID).is_ok());
        assert_eq!(
            create(4, 40, 1, BPF_F_STACK_BUILD_ID).unwrap_err().errno,
            Errno::EINVAL
        );
        assert_eq!(create(4, 8, 1, 1 << 7).unwrap_err().errno, Errno::EINVAL);
    }

    #[test]
    fn memlock_is_stack_map_mem_usage() {
        // bpftool on 6.18.44-fc-v1300: key 4, value 1016, 100 entries: 104544 bytes.
        assert_eq!(create(4, 1016, 100, 0).unwrap().memlock(), 104_544);
    }
}

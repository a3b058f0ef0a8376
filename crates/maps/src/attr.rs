//! `BPF_MAP_CREATE`'s attributes and the creation checks each map type shares with others
//! (`array_map_alloc_check`, `htab_map_alloc_check`, …), with the kernel's errno. The
//! per-type checks of the other families live with their type; [`crate::create`] runs them
//! in the kernel's order.

use kbpf_profile::MapsProfile;

use crate::btf::BtfObject;
use crate::error::{Errno, MapError};
use crate::uapi::*;

/// Attributes of `BPF_MAP_CREATE` (the map part of `union bpf_attr`), plus kbpf's knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapAttr {
    /// `BPF_MAP_TYPE_*` number (unknown numbers are rejected with EINVAL).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// Map name (at most 15 characters of `[A-Za-z0-9_.]`).
    pub name: String,
    /// NUMA node, meaningful only with `BPF_F_NUMA_NODE`; this runtime has one node (0).
    pub numa_node: u32,
    /// CPUs per-CPU storage is sized for; 0 means [`crate::possible_cpus`].
    pub nr_cpus: u32,
    /// The kernel's `bypass_spec_v1` (true for root): false adds the Spectre v1 index mask to
    /// array inline lookups and rounds array storage up to a power of two, as for
    /// unprivileged users.
    pub bypass_spec_v1: bool,
    /// The kernel profile's map facts: where array values start, the sizes `memlock`
    /// counts, which map types exist.
    pub profile: MapsProfile,
    /// `btf_fd`: the BTF object the key and value types are in (held by the map while either
    /// type id is non-zero, ignored otherwise, as in the kernel).
    pub btf: Option<BtfObject>,
    /// `btf_key_type_id` (0: none; global data maps have only a value type).
    pub btf_key_type_id: u32,
    /// `btf_value_type_id` (0: the map has no BTF).
    pub btf_value_type_id: u32,
}

impl MapAttr {
    /// Attributes for a map of `map_type` with no flags and no name.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapAttr {
        MapAttr {
            map_type: map_type.raw(),
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
            name: String::new(),
            numa_node: 0,
            nr_cpus: 0,
            bypass_spec_v1: true,
            profile: MapsProfile::BUILTIN,
            btf: None,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
        }
    }

    /// Sets `btf_fd`, `btf_key_type_id` and `btf_value_type_id`.
    pub fn btf(mut self, btf: BtfObject, key_type_id: u32, value_type_id: u32) -> MapAttr {
        self.btf = Some(btf);
        self.btf_key_type_id = key_type_id;
        self.btf_value_type_id = value_type_id;
        self
    }

    /// Sets the kernel profile's map facts.
    pub fn profile(mut self, profile: MapsProfile) -> MapAttr {
        self.profile = profile;
        self
    }

    /// Sets `map_flags`.
    pub fn flags(mut self, map_flags: u32) -> MapAttr {
        self.map_flags = map_flags;
        self
    }

    /// Sets the name.
    pub fn name(mut self, name: &str) -> MapAttr {
        self.name = name.to_string();
        self
    }

    /// Sets the CPU count of per-CPU storage.
    pub fn nr_cpus(mut self, nr_cpus: u32) -> MapAttr {
        self.nr_cpus = nr_cpus;
        self
    }
}

pub(crate) fn err(name: &str, errno: Errno, detail: impl Into<String>) -> MapError {
    MapError::new(name, errno, detail)
}

/// `bpf_obj_name_cpy`: up to 15 characters from `[A-Za-z0-9_.]`.
pub(crate) fn check_name(name: &str) -> Result<(), MapError> {
    if name.len() >= BPF_OBJ_NAME_LEN {
        return Err(err(
            name,
            Errno::EINVAL,
            format!(
                "name is {} bytes, at most {} allowed",
                name.len(),
                BPF_OBJ_NAME_LEN - 1
            ),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
    {
        return Err(err(
            name,
            Errno::EINVAL,
            format!("invalid character {c:?} in name"),
        ));
    }
    Ok(())
}

/// `array_map_alloc_check` (+ `fd_array_map_alloc_check` for fd arrays).
pub(crate) fn array_map_alloc_check(a: &MapAttr, t: MapType, nr_cpus: u32) -> Result<(), MapError> {
    let n = a.name.as_str();
    let f = a.map_flags;
    if t.is_fd_array() {
        if a.value_size != 4 {
            return Err(err(
                n,
                Errno::EINVAL,
                format!("{t} value size {} != 4", a.value_size),
            ));
        }
        if f & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG) != 0 {
            return Err(err(
                n,
                Errno::EINVAL,
                format!("{t} does not support RDONLY_PROG/WRONLY_PROG"),
            ));
        }
    }
    if a.max_entries == 0 {
        return Err(err(n, Errno::EINVAL, "max_entries is 0"));
    }
    if a.key_size != 4 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("key size {} != 4", a.key_size),
        ));
    }
    if a.value_size == 0 {
        return Err(err(n, Errno::EINVAL, "value size is 0"));
    }
    if f & !ARRAY_CREATE_FLAG_MASK != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "flags {:#x} not accepted by {t}",
                f & !ARRAY_CREATE_FLAG_MASK
            ),
        ));
    }
    if f & BPF_F_RDONLY_PROG != 0 && f & BPF_F_WRONLY_PROG != 0 {
        return Err(err(n, Errno::EINVAL, "both RDONLY_PROG and WRONLY_PROG"));
    }
    if t == MapType::PercpuArray && f & BPF_F_NUMA_NODE != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            "percpu_array cannot be bound to a NUMA node",
        ));
    }
    if t != MapType::Array && f & (BPF_F_MMAPABLE | BPF_F_INNER_MAP) != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("BPF_F_MMAPABLE/BPF_F_INNER_MAP only allowed on array, not {t}"),
        ));
    }
    if t != MapType::PerfEventArray && f & BPF_F_PRESERVE_ELEMS != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("BPF_F_PRESERVE_ELEMS not allowed on {t}"),
        ));
    }
    if a.value_size > i32::MAX as u32 {
        return Err(err(
            n,
            Errno::E2BIG,
            format!("value size {} too big", a.value_size),
        ));
    }
    if t == MapType::PercpuArray && round_up8(a.value_size) > PCPU_MIN_UNIT_SIZE {
        return Err(err(
            n,
            Errno::E2BIG,
            format!("per-CPU value size {} > 32768", a.value_size),
        ));
    }
    let _ = nr_cpus;
    Ok(())
}

/// `htab_map_alloc_check` (+ `fd_htab_map_alloc_check` for HASH_OF_MAPS).
pub(crate) fn htab_map_alloc_check(a: &MapAttr, t: MapType) -> Result<(), MapError> {
    let n = a.name.as_str();
    let f = a.map_flags;
    if t == MapType::HashOfMaps && a.value_size != 4 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("{t} value size {} != 4", a.value_size),
        ));
    }
    // BPF_F_ZERO_SEED needs CAP_SYS_ADMIN in the kernel (EPERM); this runtime acts as root.
    if f & !HTAB_CREATE_FLAG_MASK != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "flags {:#x} not accepted by {t}",
                f & !HTAB_CREATE_FLAG_MASK
            ),
        ));
    }
    if f & BPF_F_RDONLY_PROG != 0 && f & BPF_F_WRONLY_PROG != 0 {
        return Err(err(n, Errno::EINVAL, "both RDONLY_PROG and WRONLY_PROG"));
    }
    let lru = t.is_lru();
    if !lru && f & BPF_F_NO_COMMON_LRU != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("BPF_F_NO_COMMON_LRU on non-LRU {t}"),
        ));
    }
    if lru && f & BPF_F_NO_PREALLOC != 0 {
        return Err(err(n, Errno::ENOTSUPP, format!("{t} must be preallocated")));
    }
    if f & BPF_F_NUMA_NODE != 0 && (t.is_percpu() || f & BPF_F_NO_COMMON_LRU != 0) {
        return Err(err(
            n,
            Errno::EINVAL,
            "per-CPU hash cannot be bound to a NUMA node",
        ));
    }
    if a.max_entries == 0 {
        return Err(err(n, Errno::EINVAL, "max_entries is 0"));
    }
    if a.key_size == 0 {
        return Err(err(n, Errno::EINVAL, "key size is 0"));
    }
    if a.value_size == 0 {
        return Err(err(n, Errno::EINVAL, "value size is 0"));
    }
    if a.key_size as u64 + a.value_size as u64 >= KMALLOC_MAX_SIZE - HTAB_ELEM_KEY_OFF as u64 {
        return Err(err(
            n,
            Errno::E2BIG,
            format!(
                "key size {} + value size {} too big",
                a.key_size, a.value_size
            ),
        ));
    }
    if t.is_percpu() && round_up8(a.value_size) > PCPU_MIN_UNIT_SIZE {
        return Err(err(
            n,
            Errno::E2BIG,
            format!("per-CPU value size {} > 32768", a.value_size),
        ));
    }
    Ok(())
}

/// `queue_stack_map_alloc_check`.
pub(crate) fn queue_stack_map_alloc_check(a: &MapAttr, t: MapType) -> Result<(), MapError> {
    let n = a.name.as_str();
    let f = a.map_flags;
    if a.max_entries == 0 {
        return Err(err(n, Errno::EINVAL, "max_entries is 0"));
    }
    if a.key_size != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("{t} key size {} != 0", a.key_size),
        ));
    }
    if a.value_size == 0 {
        return Err(err(n, Errno::EINVAL, "value size is 0"));
    }
    if f & !QUEUE_STACK_CREATE_FLAG_MASK != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "flags {:#x} not accepted by {t}",
                f & !QUEUE_STACK_CREATE_FLAG_MASK
            ),
        ));
    }
    if f & BPF_F_RDONLY_PROG != 0 && f & BPF_F_WRONLY_PROG != 0 {
        return Err(err(n, Errno::EINVAL, "both RDONLY_PROG and WRONLY_PROG"));
    }
    if a.value_size as u64 > KMALLOC_MAX_SIZE {
        return Err(err(
            n,
            Errno::E2BIG,
            format!("value size {} too big", a.value_size),
        ));
    }
    Ok(())
}

/// `ringbuf_map_alloc`'s checks (ring buffers have no `map_alloc_check`): flags, then zero key
/// and value sizes and a page-aligned power-of-two size, then the 64-bit size limit.
pub(crate) fn ringbuf_map_alloc_check(a: &MapAttr) -> Result<(), MapError> {
    let n = a.name.as_str();
    let f = a.map_flags;
    if f & !RINGBUF_CREATE_FLAG_MASK != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "flags {:#x} not accepted by ringbuf (only BPF_F_NUMA_NODE)",
                f & !RINGBUF_CREATE_FLAG_MASK
            ),
        ));
    }
    if a.key_size != 0 || a.value_size != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "ringbuf key size {} and value size {} must both be 0",
                a.key_size, a.value_size
            ),
        ));
    }
    let size = a.max_entries as u64;
    if !size.is_power_of_two() || !size.is_multiple_of(PAGE_SIZE) {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "ringbuf size {} is not a power of two multiple of the page size {PAGE_SIZE}",
                a.max_entries
            ),
        ));
    }
    if size > RINGBUF_MAX_DATA_SZ {
        return Err(err(
            n,
            Errno::E2BIG,
            format!("ringbuf size {size} > {RINGBUF_MAX_DATA_SZ}"),
        ));
    }
    Ok(())
}

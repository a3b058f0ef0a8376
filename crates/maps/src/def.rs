//! What every map is, whatever its type: the attributes fixed at creation that the element
//! operations of each type read ([`MapDef`]). The map object ([`crate::map::MapInner`])
//! holds one and dereferences to it, so the per-type modules work on a `MapDef` and never
//! need the object that owns them.

use kbpf_profile::MapsProfile;

use crate::uapi::MapType;

/// The attributes of a created map.
pub struct MapDef {
    pub(crate) name: String,
    pub(crate) map_type: MapType,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    /// As allocated (per-CPU LRU lists round it to a multiple of the CPUs).
    pub(crate) max_entries: u32,
    /// Permanent flags (`BPF_F_RDONLY`/`WRONLY` stripped).
    pub(crate) map_flags: u32,
    pub(crate) nr_cpus: u32,
    pub(crate) bypass_spec_v1: bool,
    pub(crate) profile: MapsProfile,
    /// Arrays: `round_up(value_size, 8)` (0 for the other types).
    pub(crate) elem_size: u32,
    /// Arrays: the Spectre v1 index mask (0 for the other types).
    pub(crate) index_mask: u32,
    pub(crate) id: u32,
}

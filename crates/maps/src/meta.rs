//! `inner_map_meta` and `map_meta_equal` (kernel/bpf/map_in_map.c, arraymap.c).
//!
//! A map-of-maps keeps a detached copy of its template map ([`InnerMapMeta`]): the fields the
//! verifier checks inner lookups against and `gen_lookup` inlines with. Writing an inner map into
//! the outer map is allowed only when the candidate is "meta-equal" to that copy.
//!
//! Rules (Linux 6.18):
//! * generic (`bpf_map_meta_equal`): same map_type, key_size, value_size and map_flags;
//!   max_entries is not compared (commit 134fede4eecf) because hash lookups never inline it;
//! * plain ARRAY (`array_map_meta_equal`): additionally equal max_entries, unless the template
//!   has `BPF_F_INNER_MAP` — such arrays are never inlined (their `gen_lookup` answers
//!   "not supported"), so the bound is read from the actual inner map at run time;
//! * **PERCPU_ARRAY — stricter than the kernel.** 6.18 uses the generic rule for per-CPU arrays
//!   but still inlines their lookups with the template's `max_entries` (observed: an 8-entry
//!   template accepts a 2-entry inner, and the inline sequence bounds the index by 8). A lookup
//!   of index 5 on that inner would read past its pointer array. kbpf inlines per-CPU array
//!   lookups the same way, so it requires equal `max_entries` for PERCPU_ARRAY inners and
//!   refuses others with EINVAL.

use crate::error::{Errno, MapError};
use crate::uapi::{BPF_F_INNER_MAP, MapType};

/// The parts of a map that program verification and lookup inlining depend on. Both real maps
/// ([`crate::Map::desc`]) and inner-map metas provide one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapDesc {
    /// Map type.
    pub map_type: MapType,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Permanent map flags.
    pub map_flags: u32,
    /// Array element stride (0 for non-array templates, which the kernel does not copy).
    pub elem_size: u32,
    /// Array Spectre v1 index mask (0 for non-array templates).
    pub index_mask: u32,
    /// True: no index masking in inline array lookups (privileged).
    pub bypass_spec_v1: bool,
    /// Where an array's values start (the kernel profile's `offsetof(struct bpf_array,
    /// value)`), which inlined array lookups add to the map address; for an XSKMAP, where
    /// its socket pointers start (`offsetof(struct xsk_map, xsk_map)`).
    pub value_off: u32,
}

/// The detached template copy of a map-of-maps (`map->inner_map_meta`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InnerMapMeta {
    desc: MapDesc,
}

impl InnerMapMeta {
    /// `bpf_map_meta_alloc`: checks the template and copies what the meta keeps. The template
    /// itself is not retained.
    pub fn alloc(name: &str, template: &MapDesc) -> Result<InnerMapMeta, MapError> {
        let t = template.map_type;
        if t.is_map_in_map() {
            return Err(MapError::new(
                name,
                Errno::EINVAL,
                format!("inner map template '{name}' is itself a {t}: only one level of nesting"),
            ));
        }
        if !t.has_map_meta_equal() {
            return Err(MapError::new(
                name,
                Errno::ENOTSUPP,
                format!("{t} cannot be an inner map template (no map_meta_equal)"),
            ));
        }
        let mut desc = *template;
        if !matches!(t, MapType::Array | MapType::PercpuArray) {
            // Only array metas are allocated with the array header and get these fields.
            desc.elem_size = 0;
            desc.index_mask = 0;
        }
        Ok(InnerMapMeta { desc })
    }

    /// The template's fields.
    pub fn desc(&self) -> &MapDesc {
        &self.desc
    }

    /// `meta->ops->map_meta_equal(meta, candidate)`: Ok when `candidate` may be stored in the
    /// outer map, EINVAL naming the first differing field otherwise.
    pub fn map_meta_equal(&self, name: &str, candidate: &MapDesc) -> Result<(), MapError> {
        let m = &self.desc;
        let c = candidate;
        let mismatch = |what: &str, a: String, b: String| {
            Err(MapError::new(
                name,
                Errno::EINVAL,
                format!("inner map {what} {b} != template {what} {a}"),
            ))
        };
        if m.map_type != c.map_type {
            return mismatch("type", m.map_type.to_string(), c.map_type.to_string());
        }
        if m.key_size != c.key_size {
            return mismatch("key size", m.key_size.to_string(), c.key_size.to_string());
        }
        if m.value_size != c.value_size {
            return mismatch(
                "value size",
                m.value_size.to_string(),
                c.value_size.to_string(),
            );
        }
        if m.map_flags != c.map_flags {
            return mismatch(
                "flags",
                format!("{:#x}", m.map_flags),
                format!("{:#x}", c.map_flags),
            );
        }
        let bound_matters = match m.map_type {
            MapType::Array => m.map_flags & BPF_F_INNER_MAP == 0,
            // Stricter than 6.18: see the module documentation.
            MapType::PercpuArray => true,
            _ => false,
        };
        if m.value_off != c.value_off {
            // Only maps made under different kernel profiles differ here.
            return mismatch(
                "value offset (kernel profile)",
                m.value_off.to_string(),
                c.value_off.to_string(),
            );
        }
        if bound_matters && m.max_entries != c.max_entries {
            return mismatch(
                "max_entries",
                m.max_entries.to_string(),
                c.max_entries.to_string(),
            );
        }
        Ok(())
    }
}

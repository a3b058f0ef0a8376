//! Map definitions found in an object, as plain data ([`MapDef`]): BTF-defined maps in
//! `.maps` (libbpf's `parse_btf_map_def`), legacy `struct bpf_map_def` in `maps`, and the
//! one-entry ARRAY maps libbpf makes for global data sections (`.data`, `.bss`,
//! `.rodata`, `.data.*`, `.rodata.*`; `bpf_object__init_internal_map`).
//!
//! Nothing here creates a map: the maps crate checks and creates them from a [`MapDef`].

use crate::btf::{Btf, BtfError, BtfKind};
pub use kbpf_uapi::bpf::{
    BPF_F_INNER_MAP, BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY_PROG,
    BPF_OBJ_NAME_LEN,
};

/// `BPF_MAP_TYPE_*` numbers used here, by short names.
pub mod map_type {
    pub use kbpf_uapi::bpf::{
        BPF_MAP_TYPE_ARRAY as ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS as ARRAY_OF_MAPS,
        BPF_MAP_TYPE_HASH as HASH, BPF_MAP_TYPE_HASH_OF_MAPS as HASH_OF_MAPS,
        BPF_MAP_TYPE_LRU_HASH as LRU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY as PERCPU_ARRAY,
        BPF_MAP_TYPE_PROG_ARRAY as PROG_ARRAY, BPF_MAP_TYPE_RINGBUF as RINGBUF,
    };
    /// The last map type this crate knows (`BPF_MAP_TYPE_ARENA` on Linux 6.18).
    pub const MAX_KNOWN: u32 = kbpf_uapi::bpf::BPF_MAP_TYPE_ARENA;
}

/// `LIBBPF_PIN_NONE`.
pub const LIBBPF_PIN_NONE: u32 = 0;
/// `LIBBPF_PIN_BY_NAME`.
pub const LIBBPF_PIN_BY_NAME: u32 = 1;

/// Where a map definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    BtfMaps,
    /// A legacy `struct bpf_map_def` in the `maps` section.
    LegacyMaps,
    /// A global data section (`.data`, `.rodata.cfg`, …).
    GlobalData(GlobalDataKind),
    /// The inner-map template of a map-of-maps (`__array(values, …)`).
    InnerTemplate,
}

/// The kinds of global data maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalDataKind {
    /// `.data`, `.data.*`.
    Data,
    /// `.rodata`, `.rodata.*`. libbpf writes the initial contents and then freezes the
    /// map (`BPF_MAP_FREEZE`), so the verifier may treat reads as constants.
    Rodata,
    /// `.bss`, `.bss.*`.
    Bss,
    /// `.kconfig`: the `__kconfig` externs' values (no ELF section; see [`crate::kconfig`]),
    /// read-only for programs and frozen like `.rodata`.
    Kconfig,
}

/// A map described by the object, as libbpf would create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// libbpf's name for the map: the variable name for `.maps`/`maps`, the internal name
    /// (`<obj prefix>.data`, `.rodata.cfg`) for global data, `<outer>.inner` for templates.
    pub name: String,
    /// The ELF section the definition lives in (`.maps`, `.data`, …).
    pub section: String,
    /// Where it came from.
    pub origin: MapOrigin,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (4 for a map-of-maps outer).
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
    /// `LIBBPF_PIN_*`.
    pub pinning: u32,
    /// NUMA node (meaningful with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address).
    pub map_extra: u64,
    /// Inner-map template for map-of-maps declared with `__array(values, …)`.
    pub inner: Option<Box<MapDef>>,
    /// Initial slots from `.rel.maps`: (index, name of the inner map — or program for a
    /// prog array), in relocation order.
    pub initial_slots: Vec<(u32, String)>,
    /// Initial contents of a global data map (`None` for `.bss` and ordinary maps; `.bss`
    /// starts zeroed).
    pub data: Option<Vec<u8>>,
    /// BTF type id of the key (0 if none).
    pub btf_key_type_id: u32,
    /// BTF type id of the value (0 if none; the DATASEC for global data).
    pub btf_value_type_id: u32,
    /// Offset of the definition in its section (symbol value / DATASEC offset).
    pub sec_offset: u64,
}

impl MapDef {
    /// A global data map as `bpf_object__init_internal_map` makes it: a one-element ARRAY of
    /// the section's size. libbpf 1.1 (the bpftool here, checked against the kernel):
    /// `.rodata` and `.kconfig` are read-only for programs and every global data map is
    /// mmapable (newer libbpf drops MMAPABLE when a section holds only static variables).
    pub fn global_data(
        name: String,
        section: &str,
        kind: GlobalDataKind,
        value_size: u32,
        data: Option<Vec<u8>>,
        btf_value_type_id: u32,
    ) -> MapDef {
        MapDef {
            name,
            section: section.to_string(),
            origin: MapOrigin::GlobalData(kind),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size,
            max_entries: 1,
            map_flags: match kind {
                GlobalDataKind::Rodata | GlobalDataKind::Kconfig => {
                    BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
                }
                GlobalDataKind::Data | GlobalDataKind::Bss => BPF_F_MMAPABLE,
            },
            pinning: 0,
            numa_node: 0,
            map_extra: 0,
            inner: None,
            initial_slots: Vec::new(),
            data,
            btf_key_type_id: 0,
            btf_value_type_id,
            sec_offset: 0,
        }
    }

    /// The name the kernel stores (`bpf_map_info.name`): at most 15 characters.
    pub fn kernel_name(&self) -> &str {
        truncate(&self.name, BPF_OBJ_NAME_LEN - 1)
    }

    /// True for ARRAY_OF_MAPS / HASH_OF_MAPS.
    pub fn is_map_in_map(&self) -> bool {
        is_map_in_map(self.map_type)
    }
}

/// True for ARRAY_OF_MAPS / HASH_OF_MAPS.
pub fn is_map_in_map(t: u32) -> bool {
    t == map_type::ARRAY_OF_MAPS || t == map_type::HASH_OF_MAPS
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Errors about map definitions; each names the map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// BTF problem while reading the definition.
    #[error("map '{map}': {source}")]
    Btf {
        /// Map name.
        map: String,
        /// Underlying error.
        source: BtfError,
    },
    /// The definition is not shaped like libbpf expects.
    #[error("map '{map}': {reason}")]
    Invalid {
        /// Map name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// A map type number this crate (and Linux 6.18) does not know.
    #[error("map '{map}': unsupported map type {map_type}")]
    UnsupportedType {
        /// Map name.
        map: String,
        /// The number found.
        map_type: u32,
    },
    /// An inner template that is itself a map-of-maps (the kernel allows one level).
    #[error("map '{map}': multi-level inner maps not supported (inner template type {inner_type})")]
    NestedMapInMap {
        /// Outer map name.
        map: String,
        /// Type of the template.
        inner_type: u32,
    },
}

fn invalid(map: &str, reason: impl Into<String>) -> MapError {
    MapError::Invalid {
        map: map.to_string(),
        reason: reason.into(),
    }
}

/// Parses one BTF-defined map: `var_type` is the type of the `.maps` variable (a struct
/// whose members are `__uint`/`__type`/`__array` encodings). Mirrors libbpf's
/// `parse_btf_map_def`, strict mode (unknown members are errors).
pub fn parse_btf_map_def(
    btf: &Btf,
    name: &str,
    var_type: u32,
    is_inner: bool,
) -> Result<MapDef, MapError> {
    let bt = |e: BtfError| MapError::Btf {
        map: name.to_string(),
        source: e,
    };
    let sid = btf.skip_mods_and_typedefs(var_type).map_err(bt)?;
    let st = btf.type_by_id(sid).map_err(bt)?;
    let members = match &st.kind {
        BtfKind::Struct { members, .. } => members.clone(),
        other => {
            return Err(invalid(
                name,
                format!("unexpected def kind {}", other.name()),
            ));
        }
    };
    let mut def = MapDef {
        name: name.to_string(),
        section: ".maps".to_string(),
        origin: if is_inner {
            MapOrigin::InnerTemplate
        } else {
            MapOrigin::BtfMaps
        },
        map_type: 0,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        map_flags: 0,
        pinning: 0,
        numa_node: 0,
        map_extra: 0,
        inner: None,
        initial_slots: Vec::new(),
        data: None,
        btf_key_type_id: 0,
        btf_value_type_id: 0,
        sec_offset: 0,
    };
    let mut key_size_set = false;
    let mut value_size_set = false;
    let n = members.len();
    for (i, m) in members.iter().enumerate() {
        let field = m.name.as_str();
        match field {
            "type" => def.map_type = uint_field(btf, name, m.ty, field)?,
            "max_entries" => def.max_entries = uint_field(btf, name, m.ty, field)?,
            "map_flags" => def.map_flags = uint_field(btf, name, m.ty, field)?,
            "numa_node" => def.numa_node = uint_field(btf, name, m.ty, field)?,
            "pinning" => {
                def.pinning = uint_field(btf, name, m.ty, field)?;
                if is_inner {
                    return Err(invalid(name, "inner map can't be pinned"));
                }
                if def.pinning > LIBBPF_PIN_BY_NAME {
                    return Err(invalid(
                        name,
                        format!("invalid pinning value {}", def.pinning),
                    ));
                }
            }
            "map_extra" => def.map_extra = u64::from(uint_field(btf, name, m.ty, field)?),
            "key_size" | "value_size" => {
                let sz = uint_field(btf, name, m.ty, field)?;
                let (cur, set) = if field == "key_size" {
                    (&mut def.key_size, &mut key_size_set)
                } else {
                    (&mut def.value_size, &mut value_size_set)
                };
                if *set && *cur != sz {
                    return Err(invalid(
                        name,
                        format!("conflicting {field} {} != {sz}", *cur),
                    ));
                }
                *cur = sz;
                *set = true;
            }
            "key" | "value" => {
                let pt = btf.type_by_id(m.ty).map_err(bt)?;
                let target = match pt.kind {
                    BtfKind::Ptr(t) => t,
                    _ => {
                        return Err(invalid(
                            name,
                            format!("{field} spec is not PTR: {}", pt.kind.name()),
                        ));
                    }
                };
                let sz = btf.resolve_size(target).map_err(|e| {
                    invalid(
                        name,
                        format!("can't determine {field} size for type [{target}]: {e}"),
                    )
                })?;
                let sz = u32::try_from(sz)
                    .map_err(|_| invalid(name, format!("{field} size {sz} too big")))?;
                let (cur, set, tid) = if field == "key" {
                    (
                        &mut def.key_size,
                        &mut key_size_set,
                        &mut def.btf_key_type_id,
                    )
                } else {
                    (
                        &mut def.value_size,
                        &mut value_size_set,
                        &mut def.btf_value_type_id,
                    )
                };
                if *set && *cur != sz {
                    return Err(invalid(
                        name,
                        format!("conflicting {field} size {} != {sz}", *cur),
                    ));
                }
                *cur = sz;
                *set = true;
                *tid = target;
            }
            "values" => {
                if is_inner {
                    return Err(MapError::NestedMapInMap {
                        map: name.trim_end_matches(".inner").to_string(),
                        inner_type: def.map_type,
                    });
                }
                if i != n - 1 {
                    return Err(invalid(name, "'values' member should be last"));
                }
                let is_prog_array = def.map_type == map_type::PROG_ARRAY;
                if !is_map_in_map(def.map_type) && !is_prog_array {
                    return Err(invalid(name, "should be map-in-map or prog-array"));
                }
                if value_size_set && def.value_size != 4 {
                    return Err(invalid(
                        name,
                        format!("conflicting value size {} != 4", def.value_size),
                    ));
                }
                def.value_size = 4;
                value_size_set = true;
                let at = btf.type_by_id(m.ty).map_err(bt)?;
                let elem = match at.kind {
                    BtfKind::Array {
                        elem, nelems: 0, ..
                    } => elem,
                    _ => return Err(invalid(name, "values spec is not a zero-sized array")),
                };
                let pid = btf.skip_mods_and_typedefs(elem).map_err(bt)?;
                let inner_ty = match btf.type_by_id(pid).map_err(bt)?.kind {
                    BtfKind::Ptr(t) => btf.skip_mods_and_typedefs(t).map_err(bt)?,
                    ref k => {
                        return Err(invalid(
                            name,
                            format!("values def is of unexpected kind {}", k.name()),
                        ));
                    }
                };
                if is_prog_array {
                    continue;
                }
                let inner = parse_btf_map_def(btf, &format!("{name}.inner"), inner_ty, true)?;
                if is_map_in_map(inner.map_type) {
                    return Err(MapError::NestedMapInMap {
                        map: name.to_string(),
                        inner_type: inner.map_type,
                    });
                }
                def.inner = Some(Box::new(inner));
            }
            other => return Err(invalid(name, format!("unknown field '{other}'"))),
        }
    }
    if def.map_type == 0 || def.map_type > map_type::MAX_KNOWN {
        return Err(MapError::UnsupportedType {
            map: name.to_string(),
            map_type: def.map_type,
        });
    }
    if is_map_in_map(def.map_type) && def.inner.is_none() {
        // libbpf accepts this and expects the user to supply an inner map fd later; we
        // record the outer alone and let the loader complain if it needs a template.
        if !value_size_set {
            def.value_size = 4;
        }
    }
    Ok(def)
}

/// `__uint(name, val)` is encoded as `int (*name)[val]`: a pointer to an array whose
/// element count is the value (libbpf's `get_map_field_int`).
fn uint_field(btf: &Btf, map: &str, ty: u32, field: &str) -> Result<u32, MapError> {
    let t = btf.type_by_id(ty).map_err(|e| MapError::Btf {
        map: map.to_string(),
        source: e,
    })?;
    let target = match t.kind {
        BtfKind::Ptr(t) => t,
        _ => {
            return Err(invalid(
                map,
                format!("attr '{field}': expected PTR, got {}", t.kind.name()),
            ));
        }
    };
    let at = btf.type_by_id(target).map_err(|e| MapError::Btf {
        map: map.to_string(),
        source: e,
    })?;
    match at.kind {
        BtfKind::Array { nelems, .. } => Ok(nelems),
        _ => Err(invalid(
            map,
            format!("attr '{field}': type [{target}] is not an array"),
        )),
    }
}

/// libbpf's `internal_map_name`: `<first 8 chars of object name><section>` for the
/// standard sections (`global_d.data`), the section name itself for `.data.*` /
/// `.rodata.*` (`.data.tuning`), truncated to 15 characters and with characters the kernel
/// rejects replaced by `_`.
pub fn internal_map_name(obj_name: &str, sec_name: &str) -> String {
    let sfx_len = sec_name.len().max(7);
    let pfx_len = if sec_name.len() > 1 && sec_name[1..].contains('.') {
        0
    } else {
        BPF_OBJ_NAME_LEN
            .saturating_sub(sfx_len + 1)
            .min(obj_name.len())
    };
    let mut s = String::new();
    s.push_str(truncate(obj_name, pfx_len));
    s.push_str(truncate(sec_name, sfx_len));
    let s = truncate(&s, BPF_OBJ_NAME_LEN - 1).to_string();
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// libbpf's object name for a file path: the base name up to its first `.`
/// (`/x/global_data.bpf.o` → `global_data`).
pub fn object_name_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or(base).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_match_libbpf() {
        assert_eq!(internal_map_name("global_data", ".data"), "global_d.data");
        assert_eq!(
            internal_map_name("global_data", ".rodata"),
            "global_d.rodata"
        );
        assert_eq!(internal_map_name("global_data", ".bss"), "global_d.bss");
        assert_eq!(internal_map_name("ab", ".bss"), "ab.bss");
        assert_eq!(
            internal_map_name("global_data", ".data.tuning"),
            ".data.tuning"
        );
        assert_eq!(
            internal_map_name("x", ".rodata.very_long_name"),
            ".rodata.very_lo"
        );
        assert_eq!(internal_map_name("a-b", ".data"), "a_b.data");
        assert_eq!(
            object_name_from_path("/tmp/global_data.bpf.o"),
            "global_data"
        );
    }
}

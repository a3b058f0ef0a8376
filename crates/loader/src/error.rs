//! [`LoadError`]: every way loading an object can fail, each naming the map, section,
//! program or symbol involved. Failures the maps crate reports keep its [`MapError`] (and
//! so the errno the kernel would have returned), reachable through [`LoadError::errno`].

use kbpf_maps::{Errno, MapError};

/// Why [`crate::load_object`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// `BPF_MAP_CREATE` refused the map (bad sizes, flags, type, name…).
    #[error("map '{map}' (section {section}): create failed: {} ({})", .source.detail, .source.errno)]
    MapCreate {
        /// libbpf's name of the map.
        map: String,
        /// ELF section the definition came from.
        section: String,
        /// The maps crate's error, with the kernel errno.
        source: MapError,
    },
    /// The inner-map template of a map-of-maps could not be created.
    #[error("map '{map}': inner map template '{template}' create failed: {} ({})", .source.detail, .source.errno)]
    InnerTemplate {
        /// The outer map.
        map: String,
        /// The template's name (`<outer>.inner`).
        template: String,
        /// The maps crate's error.
        source: MapError,
    },
    /// A map-of-maps with neither an `__array(values, …)` template in the object nor an
    /// inner map supplied in [`crate::LoadOptions`] (libbpf: "inner map fd not set").
    #[error(
        "map '{map}': map-in-map without an inner map template; declare __array(values, ...) or supply one with LoadOptions::inner_map"
    )]
    MissingInnerMap {
        /// The outer map.
        map: String,
    },
    /// [`crate::LoadOptions::inner_map`] names a map that is not a map-of-maps (libbpf's
    /// `bpf_map__set_inner_map_fd` refuses it the same way).
    #[error("map '{map}': an inner map was supplied, but the map is not a map-in-map")]
    NotMapInMap {
        /// The map.
        map: String,
    },
    /// A reuse / inner-map option names a map the object does not define.
    #[error("load option names map {selector}, which the object does not define")]
    UnknownMap {
        /// The selector as given (`'name'` or `#index`).
        selector: String,
    },
    /// An existing map offered for reuse differs from the object's definition (libbpf's
    /// `map_is_reuse_compat`).
    #[error(
        "map '{map}': can't reuse existing map '{existing_name}' (id {existing_id}): {field} {existing} != {wanted} in the object"
    )]
    ReuseIncompatible {
        /// libbpf's name of the map.
        map: String,
        /// Name of the existing map.
        existing_name: String,
        /// Id of the existing map.
        existing_id: u32,
        /// The first attribute that differs (`map type`, `key size`, `value size`,
        /// `max_entries`, `map flags`).
        field: &'static str,
        /// The existing map's value.
        existing: u64,
        /// The object's value.
        wanted: u64,
    },
    /// Writing the initial contents of a global data map failed.
    #[error("map '{map}' (section {section}): writing initial contents failed: {} ({})", .source.detail, .source.errno)]
    GlobalData {
        /// libbpf's name of the map.
        map: String,
        /// The data section.
        section: String,
        /// The maps crate's error.
        source: MapError,
    },
    /// An initial slot (`.values = { [i] = &inner }`) names no map of the object.
    #[error(
        "map '{map}': initial slot [{slot}] refers to '{target}', which is not a map of the object"
    )]
    SlotTarget {
        /// The outer map.
        map: String,
        /// Slot index.
        slot: u32,
        /// The symbol the slot names.
        target: String,
    },
    /// Writing an initial slot into its outer map failed (e.g. the inner map does not
    /// match the template).
    #[error("map '{map}': initial slot [{slot}] = '{target}' failed: {} ({})", .source.detail, .source.errno)]
    Slot {
        /// The outer map.
        map: String,
        /// Slot index.
        slot: u32,
        /// The inner map.
        target: String,
        /// The maps crate's error.
        source: MapError,
    },
    /// A CO-RE relocation that cannot be applied (a missing kernel BTF, an ambiguous or
    /// unsupported relocation; a field or type the kernel lacks poisons the instruction
    /// instead, as libbpf does).
    #[error("{0}")]
    Core(#[from] kbpf_object::CoreError),
    /// A relocation that cannot be applied.
    #[error("program '{program}' (section {section}): insn {insn_idx} ({symbol}): {reason}")]
    Relocation {
        /// Program name.
        program: String,
        /// Program section.
        section: String,
        /// Instruction index of the relocation.
        insn_idx: usize,
        /// Symbol the relocation names.
        symbol: String,
        /// What is wrong.
        reason: String,
    },
    /// A `__kconfig` extern could not be resolved (libbpf's `bpf_object__resolve_externs`):
    /// no kernel config to read, a value that does not fit the extern's type, an unknown
    /// `LINUX_*` extern, or a strong extern the config does not have.
    /// (bpftool reports every one as "failed to load object file", status −1.)
    #[error("{reason}")]
    Kconfig {
        /// libbpf's message.
        reason: String,
    },
}

impl LoadError {
    /// The kernel errno behind the failure, when the maps crate reported one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            LoadError::MapCreate { source, .. }
            | LoadError::InnerTemplate { source, .. }
            | LoadError::GlobalData { source, .. }
            | LoadError::Slot { source, .. } => Some(source.errno),
            LoadError::MissingInnerMap { .. } | LoadError::SlotTarget { .. } => Some(Errno::EINVAL),
            LoadError::Kconfig { .. } => Some(Errno::EINVAL),
            _ => None,
        }
    }

    /// The map the error is about, if any.
    pub fn map(&self) -> Option<&str> {
        match self {
            LoadError::MapCreate { map, .. }
            | LoadError::InnerTemplate { map, .. }
            | LoadError::MissingInnerMap { map }
            | LoadError::NotMapInMap { map }
            | LoadError::ReuseIncompatible { map, .. }
            | LoadError::GlobalData { map, .. }
            | LoadError::SlotTarget { map, .. }
            | LoadError::Slot { map, .. } => Some(map),
            LoadError::UnknownMap { .. }
            | LoadError::Relocation { .. }
            | LoadError::Core(_)
            | LoadError::Kconfig { .. } => None,
        }
    }
}

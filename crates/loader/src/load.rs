//! Creating an object's maps in libbpf's order (see the crate docs for the order and why),
//! map reuse, global data contents, initial inner-map slots, then relocating every program.
//!
//! Mirrors libbpf's `bpf_object__create_maps` / `bpf_object__create_map` /
//! `bpf_object__populate_internal_map` / `init_map_in_map_slots` / `map_is_reuse_compat`,
//! speaking to kbpf's [`Registry`] the way libbpf speaks to `bpf()`: by descriptor.

use kbpf_maps::uapi::{BPF_ANY, BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_PROG_ARRAY};
use kbpf_maps::{Map, MapAttr, Registry, possible_cpus};
use kbpf_object::maps::{GlobalDataKind, map_type};
use kbpf_object::{BpfObject, MapDef, MapOrigin};

use crate::error::LoadError;
use crate::reloc::{LoadedProgram, relocate_program};

/// `BPF_MAP_TYPE_USER_RINGBUF`.
const BPF_MAP_TYPE_USER_RINGBUF: u32 = 31;
/// Page size ring buffer sizes are multiples of (x86-64).
const PAGE_SIZE: u32 = 4096;

/// Which map of the object an option applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapSelector {
    /// By libbpf's map name (`outer`, `global_d.data`) or the kernel's 15-character name.
    Name(String),
    /// By index into [`BpfObject::maps`].
    Index(usize),
}

impl MapSelector {
    fn resolve(&self, obj: &BpfObject) -> Result<usize, LoadError> {
        let found = match self {
            MapSelector::Name(n) => obj
                .maps
                .iter()
                .position(|m| m.name == *n)
                .or_else(|| obj.maps.iter().position(|m| m.kernel_name() == n)),
            MapSelector::Index(i) => (*i < obj.maps.len()).then_some(*i),
        };
        found.ok_or_else(|| LoadError::UnknownMap {
            selector: self.to_string(),
        })
    }
}

impl std::fmt::Display for MapSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapSelector::Name(n) => write!(f, "'{n}'"),
            MapSelector::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// Options of [`load_object`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Existing maps to use instead of creating the object's (libbpf's
    /// `bpf_map__reuse_fd`, bpftool's `map name NAME pinned PATH`).
    pub reuse: Vec<(MapSelector, Map)>,
    /// Inner maps for map-of-maps outers declared without an `__array(values, …)` template
    /// (libbpf's `bpf_map__set_inner_map_fd`); also overrides an object's template.
    pub inner_maps: Vec<(MapSelector, Map)>,
    /// The kernel profile's map facts the object's maps are created with.
    pub maps_profile: kbpf_maps::MapsProfile,
    /// The kernel BTF CO-RE relocations resolve against (libbpf's `btf_custom_path`); by
    /// default `/sys/kernel/btf/vmlinux`, read only when a program has CO-RE relocations.
    pub core_target: Option<std::sync::Arc<kbpf_object::Btf>>,
}

impl LoadOptions {
    /// Reuse `map` for the object's map named `name`.
    pub fn reuse_map(mut self, name: &str, map: Map) -> LoadOptions {
        self.reuse.push((MapSelector::Name(name.to_string()), map));
        self
    }

    /// Reuse `map` for the object's map number `index`.
    pub fn reuse_map_index(mut self, index: usize, map: Map) -> LoadOptions {
        self.reuse.push((MapSelector::Index(index), map));
        self
    }

    /// Use `inner` as the inner map template of the outer map named `outer`.
    pub fn inner_map(mut self, outer: &str, inner: Map) -> LoadOptions {
        self.inner_maps
            .push((MapSelector::Name(outer.to_string()), inner));
        self
    }
}

/// One map of a loaded object.
#[derive(Debug, Clone)]
pub struct LoadedMap {
    /// libbpf's name (`outer`, `global_d.rodata`).
    pub name: String,
    /// The name the map carries (at most 15 characters; the existing map's own name when
    /// reused).
    pub kernel_name: String,
    /// ELF section of the definition.
    pub section: String,
    /// Index into [`BpfObject::maps`].
    pub index: usize,
    /// The registry descriptor the loader holds (and programs' `ld_imm64` carry).
    pub fd: u32,
    /// The map.
    pub map: Map,
    /// True when the map came from [`LoadOptions::reuse`] instead of being created.
    pub reused: bool,
    /// True for `.rodata*` maps, which libbpf freezes after writing their contents: user
    /// space may no longer write them and the verifier may treat loads as constants.
    pub frozen: bool,
}

/// A PROG_ARRAY initial slot, to be filled once the named program is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgSlot {
    /// The PROG_ARRAY's name.
    pub map: String,
    /// Slot index.
    pub slot: u32,
    /// The program's name.
    pub program: String,
}

/// An object whose maps exist and whose programs are relocated.
#[derive(Debug, Clone)]
pub struct LoadedObject {
    /// libbpf's object name.
    pub name: String,
    /// The `license` section.
    pub license: String,
    /// The `version` section.
    pub kern_version: Option<u32>,
    /// One per [`BpfObject::maps`] entry, same order.
    pub maps: Vec<LoadedMap>,
    /// One per [`BpfObject::programs`] entry, same order.
    pub programs: Vec<LoadedProgram>,
    /// PROG_ARRAY initial slots, which need loaded programs.
    pub pending_prog_slots: Vec<ProgSlot>,
    /// The object's BTF as loaded (`BPF_BTF_LOAD`): the maps created with BTF hold it, and
    /// it is the BTF of programs with func info. `None` without `.BTF` or when the kernel
    /// would refuse it (see [`LoadedObject::btf_warning`]).
    pub btf: Option<kbpf_maps::BtfObject>,
    /// libbpf's warning when the object's BTF was dropped as the kernel would refuse it.
    pub btf_warning: Option<String>,
}

impl LoadedObject {
    /// The map with this libbpf name (or kernel name).
    pub fn map(&self, name: &str) -> Option<&LoadedMap> {
        self.maps
            .iter()
            .find(|m| m.name == name)
            .or_else(|| self.maps.iter().find(|m| m.kernel_name == name))
    }

    /// The map behind one of the loader's descriptors.
    pub fn map_by_fd(&self, fd: u32) -> Option<&LoadedMap> {
        self.maps.iter().find(|m| m.fd == fd)
    }

    /// The program with this name.
    pub fn program(&self, name: &str) -> Option<&LoadedProgram> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// Closes the loader's descriptors in `registry`; the maps live on while other
    /// handles (programs, outer maps, [`LoadedMap::map`] clones) hold them.
    pub fn close(self, registry: &Registry) {
        for m in &self.maps {
            // Already closed by the caller is fine: the goal is only that none stays open.
            let _ = registry.close(m.fd);
        }
    }
}

/// Descriptors opened during a load, closed again unless the load succeeds.
struct FdGuard<'r> {
    registry: &'r Registry,
    fds: Vec<u32>,
}

impl FdGuard<'_> {
    fn disarm(mut self) {
        self.fds.clear();
    }
}

impl Drop for FdGuard<'_> {
    fn drop(&mut self) {
        for &fd in &self.fds {
            let _ = self.registry.close(fd);
        }
    }
}

/// libbpf's `adjust_ringbuf_sz`: ring buffer sizes must be a power-of-2 number of pages;
/// round a size that is not up to the next one (0 stays 0 so the kernel reports it).
fn adjust_ringbuf_sz(sz: u32) -> u32 {
    if sz == 0 || (sz.is_multiple_of(PAGE_SIZE) && (sz / PAGE_SIZE).is_power_of_two()) {
        return sz;
    }
    let mut mul: u32 = 1;
    while mul <= u32::MAX / PAGE_SIZE {
        if mul * PAGE_SIZE >= sz {
            return mul * PAGE_SIZE;
        }
        mul <<= 1;
    }
    sz
}

/// `max_entries` as libbpf passes it: PERF_EVENT_ARRAY defaults to one slot per possible
/// CPU (`map_set_def_max_entries`); ring buffer sizes are page-rounded.
fn effective_max_entries(def: &MapDef) -> u32 {
    match def.map_type {
        BPF_MAP_TYPE_PERF_EVENT_ARRAY if def.max_entries == 0 => possible_cpus(),
        map_type::RINGBUF | BPF_MAP_TYPE_USER_RINGBUF => adjust_ringbuf_sz(def.max_entries),
        _ => def.max_entries,
    }
}

/// `BPF_MAP_CREATE` attributes for a definition, as libbpf's `bpf_object__create_map` fills
/// them (the name truncated to what the kernel stores).
fn create_attr(def: &MapDef) -> MapAttr {
    let mut attr = MapAttr::new(
        kbpf_maps::MapType::from_raw(def.map_type),
        def.key_size,
        def.value_size,
        effective_max_entries(def),
    )
    .flags(def.map_flags)
    .name(def.kernel_name());
    // MapType::from_raw keeps unknown numbers as Other(n), but set the raw number directly
    // so the maps crate sees exactly what the object says.
    attr.map_type = def.map_type;
    attr.numa_node = def.numa_node;
    attr
}

/// libbpf's `map_is_reuse_compat`: type, key/value size, max_entries and flags must match.
fn check_reuse(def: &MapDef, map: &Map) -> Result<(), LoadError> {
    let checks: [(&'static str, u64, u64); 5] = [
        (
            "map type",
            u64::from(map.map_type().raw()),
            u64::from(def.map_type),
        ),
        (
            "key size",
            u64::from(map.key_size()),
            u64::from(def.key_size),
        ),
        (
            "value size",
            u64::from(map.value_size()),
            u64::from(def.value_size),
        ),
        (
            "max_entries",
            u64::from(map.max_entries()),
            u64::from(effective_max_entries(def)),
        ),
        (
            "map flags",
            u64::from(map.map_flags()),
            u64::from(def.map_flags),
        ),
    ];
    match checks.into_iter().find(|(_, have, want)| have != want) {
        None => Ok(()),
        Some((field, existing, wanted)) => Err(LoadError::ReuseIncompatible {
            map: def.name.clone(),
            existing_name: map.name().to_string(),
            existing_id: map.id(),
            field,
            existing,
            wanted,
        }),
    }
}

fn option_for<'o>(
    obj: &BpfObject,
    opts: &'o [(MapSelector, Map)],
) -> Result<Vec<Option<&'o Map>>, LoadError> {
    let mut per_map = vec![None; obj.maps.len()];
    for (sel, map) in opts {
        per_map[sel.resolve(obj)?] = Some(map);
    }
    Ok(per_map)
}

/// The object's BTF as the maps get it: the loaded object and the parsed types.
type ObjBtf<'a> = Option<(&'a kbpf_maps::BtfObject, &'a kbpf_object::Btf)>;

/// Creates `def` (an outer map-of-maps when `inner` is given) and returns its fd.
fn create_map(
    registry: &Registry,
    guard: &mut FdGuard<'_>,
    def: &MapDef,
    supplied_inner: Option<&Map>,
    profile: kbpf_maps::MapsProfile,
    btf: ObjBtf<'_>,
) -> Result<u32, LoadError> {
    let create_attr = |def: &MapDef| {
        let attr = create_attr(def).profile(profile);
        match btf.and_then(|(o, b)| Some((o, crate::btf::map_type_ids(b, def)?))) {
            Some((o, (key, value))) => attr.btf(o.clone(), key, value),
            None => attr,
        }
    };
    let create_err = |source| LoadError::MapCreate {
        map: def.name.clone(),
        section: def.section.clone(),
        source,
    };
    if !def.is_map_in_map() {
        let fd = registry
            .map_create(&create_attr(def), 0)
            .map_err(create_err)?;
        guard.fds.push(fd);
        return Ok(fd);
    }
    // The template lives only as long as it takes to build the outer's inner_map_meta.
    let template_fd =
        match (supplied_inner, &def.inner) {
            (Some(m), _) => registry.add_map(m),
            (None, Some(t)) => registry.map_create(&create_attr(t), 0).map_err(|source| {
                LoadError::InnerTemplate {
                    map: def.name.clone(),
                    template: t.name.clone(),
                    source,
                }
            })?,
            (None, None) => {
                return Err(LoadError::MissingInnerMap {
                    map: def.name.clone(),
                });
            }
        };
    let outer = registry.map_create(&create_attr(def), template_fd);
    // Closing our descriptor frees a template nobody else holds, as libbpf's
    // `close(map->inner_map->fd)`; a failure here would only mean it is already closed.
    let _ = registry.close(template_fd);
    let fd = outer.map_err(create_err)?;
    guard.fds.push(fd);
    Ok(fd)
}

/// Creates the object's maps in libbpf's order, writes global data and initial inner
/// slots, and relocates every program against the new descriptors.
pub fn load_object(
    obj: &BpfObject,
    registry: &Registry,
    opts: &LoadOptions,
) -> Result<LoadedObject, LoadError> {
    let reuse = option_for(obj, &opts.reuse)?;
    let inner = option_for(obj, &opts.inner_maps)?;
    // bpf_object__load_btf comes before the maps: they are created with its fd.
    let (btf, btf_warning) = crate::btf::load_btf(obj);
    let obj_btf = btf.as_ref().zip(obj.btf.as_ref());
    let mut guard = FdGuard {
        registry,
        fds: Vec::new(),
    };
    let mut maps: Vec<LoadedMap> = Vec::with_capacity(obj.maps.len());
    if let Some(def) = obj
        .maps
        .iter()
        .zip(&inner)
        .find_map(|(def, m)| (m.is_some() && !def.is_map_in_map()).then_some(def))
    {
        return Err(LoadError::NotMapInMap {
            map: def.name.clone(),
        });
    }
    for (i, def) in obj.maps.iter().enumerate() {
        let kconfig = def.origin == MapOrigin::GlobalData(GlobalDataKind::Kconfig);
        // libbpf freezes `.kconfig` like `.rodata` (but binds only `.rodata` to programs).
        let rodata = kconfig || def.origin == MapOrigin::GlobalData(GlobalDataKind::Rodata);
        if let Some(existing) = reuse[i] {
            check_reuse(def, existing)?;
            let fd = registry.add_map(existing);
            guard.fds.push(fd);
            maps.push(LoadedMap {
                name: def.name.clone(),
                kernel_name: existing.name().to_string(),
                section: def.section.clone(),
                index: i,
                fd,
                map: existing.clone(),
                reused: true,
                // Whatever state the existing map is in is the owner's business; libbpf
                // does not freeze a reused map either.
                frozen: false,
            });
            continue;
        }
        let fd = create_map(
            registry,
            &mut guard,
            def,
            inner[i],
            opts.maps_profile,
            obj_btf,
        )?;
        let map = registry.map(fd).map_err(|source| LoadError::MapCreate {
            map: def.name.clone(),
            section: def.section.clone(),
            source,
        })?;
        // bpf_object__populate_internal_map: one element at key 0 holding the section
        // image. `.bss` has no image; a fresh array is already zero-filled.
        let kconfig_data = if kconfig {
            Some(crate::kconfig::resolve_host(&obj.kconfig, def.value_size)?)
        } else {
            None
        };
        if let Some(data) = kconfig_data.as_ref().or(def.data.as_ref()) {
            let mut value = data.clone();
            value.resize(def.value_size as usize, 0);
            registry
                .map_update_elem(fd, &0u32.to_ne_bytes(), &value, BPF_ANY)
                .map_err(|source| LoadError::GlobalData {
                    map: def.name.clone(),
                    section: def.section.clone(),
                    source,
                })?;
        }
        if rodata {
            // libbpf freezes `.rodata*` after populating it (BPF_MAP_FREEZE), which is what
            // lets the verifier read `const volatile` values as constants.
            map.freeze().map_err(|source| LoadError::GlobalData {
                map: def.name.clone(),
                section: def.section.clone(),
                source,
            })?;
        }
        maps.push(LoadedMap {
            name: def.name.clone(),
            kernel_name: map.name().to_string(),
            section: def.section.clone(),
            index: i,
            fd,
            map,
            reused: false,
            frozen: rodata,
        });
    }

    // Initial slots, once every map exists (see the crate docs).
    let mut pending_prog_slots = Vec::new();
    for (def, lm) in obj.maps.iter().zip(&maps) {
        if lm.reused || def.initial_slots.is_empty() {
            continue;
        }
        if def.map_type == BPF_MAP_TYPE_PROG_ARRAY {
            pending_prog_slots.extend(def.initial_slots.iter().map(|(slot, p)| ProgSlot {
                map: def.name.clone(),
                slot: *slot,
                program: p.clone(),
            }));
            continue;
        }
        for (slot, target) in &def.initial_slots {
            let Some(tm) = maps.iter().find(|m| m.name == *target) else {
                return Err(LoadError::SlotTarget {
                    map: def.name.clone(),
                    slot: *slot,
                    target: target.clone(),
                });
            };
            // init_map_in_map_slots: bpf_map_update_elem(outer_fd, &slot, &inner_fd, 0).
            registry
                .map_update_elem(lm.fd, &slot.to_ne_bytes(), &tm.fd.to_ne_bytes(), BPF_ANY)
                .map_err(|source| LoadError::Slot {
                    map: def.name.clone(),
                    slot: *slot,
                    target: target.clone(),
                    source,
                })?;
        }
    }

    // libbpf binds every `.rodata*` map to every program after loading it
    // (bpf_object_load_prog: `BPF_PROG_BIND_MAP` for each LIBBPF_MAP_RODATA map).
    let rodata_fds: Vec<u32> = obj
        .maps
        .iter()
        .zip(&maps)
        .filter(|(def, _)| def.origin == MapOrigin::GlobalData(GlobalDataKind::Rodata))
        .map(|(_, lm)| lm.fd)
        .collect();
    let mut programs = Vec::with_capacity(obj.programs.len());
    let mut core_target = opts.core_target.clone();
    for p in &obj.programs {
        let mut lp = relocate_program(p, |i| maps.get(i).map(|m| m.fd))?;
        lp.gpl_compatible = kbpf_verifier::license_is_gpl_compatible(&obj.license);
        // Without the object's BTF in the kernel (libbpf's fallback), every function is
        // static to the verifier.
        if let (Some(btf), Some(_)) = (&obj.btf, &btf) {
            lp.global_funcs = crate::global_funcs::global_funcs(btf, p, lp.prog_type);
            lp.btf_func_info = !p.func_info.is_empty();
            lp.non_scalar_return = crate::global_funcs::non_scalar_returns(btf, p);
        }
        if crate::kfunc::has_kfunc_calls(p) {
            let target = match &core_target {
                Some(t) => t.clone(),
                None => {
                    let t = std::sync::Arc::new(kbpf_object::core::load_vmlinux_btf()?);
                    core_target = Some(t.clone());
                    t
                }
            };
            let names = crate::kfunc::extern_names(&obj.programs);
            lp.kfuncs = crate::kfunc::resolve_kfuncs(p, &mut lp.insns, &target, |n| {
                names.iter().position(|x| x == n).unwrap_or(0)
            })?;
            if lp.kfuncs.iter().any(|(_, n)| n == "bpf_rdonly_cast") {
                lp.kernel_structs = crate::kfunc::struct_ids(&target);
            }
        }
        if !p.core_relos.is_empty()
            && let Some(local) = &obj.btf
        {
            // bpf_object__relocate_core: against the kernel's BTF, loaded on first need.
            let target = match &core_target {
                Some(t) => t.clone(),
                None => {
                    let t = std::sync::Arc::new(kbpf_object::core::load_vmlinux_btf()?);
                    core_target = Some(t.clone());
                    t
                }
            };
            kbpf_object::core::apply_core_relos(
                &p.name,
                &mut lp.insns,
                &p.core_relos,
                local,
                &target,
            )?;
        }
        lp.bound_map_fds = rodata_fds
            .iter()
            .copied()
            .filter(|fd| !lp.map_fds_used.contains(fd))
            .collect();
        lp.bound_map_fds.sort_unstable();
        programs.push(lp);
    }
    guard.disarm();
    Ok(LoadedObject {
        name: obj.name.clone(),
        license: obj.license.clone(),
        kern_version: obj.kern_version,
        maps,
        programs,
        pending_prog_slots,
        btf,
        btf_warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ringbuf_sizes_round_like_libbpf() {
        assert_eq!(adjust_ringbuf_sz(0), 0);
        assert_eq!(adjust_ringbuf_sz(4096), 4096);
        assert_eq!(adjust_ringbuf_sz(1), 4096);
        assert_eq!(adjust_ringbuf_sz(4097), 8192);
        assert_eq!(adjust_ringbuf_sz(3 * 4096), 4 * 4096);
        assert_eq!(adjust_ringbuf_sz(1 << 20), 1 << 20);
    }
}

//! The maps a program is loaded against, seen from both sides: as live [`kbpf_maps::Map`]s
//! (for addresses, ids and `map_gen_lookup`) and as the verifier's [`MapDesc`]s (what the
//! kernel's verifier reads from `struct bpf_map`: type, sizes, flags, the inner-map meta).

use std::collections::BTreeMap;

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};
use kbpf_maps::Map;
use kbpf_verifier::{MapDesc, MapEnv};

/// The verifier's description of a live map (the outer's `inner_map_meta` included). A
/// frozen `BPF_F_RDONLY_PROG` single-element array comes with its contents, which the
/// verifier reads as constants (`bpf_map_is_rdonly` + `bpf_map_direct_read`).
pub fn verifier_desc(map: &Map) -> MapDesc {
    let frozen_value = (map.is_frozen()
        && map.map_flags() & kbpf_maps::uapi::BPF_F_RDONLY_PROG != 0
        && map.map_type() == kbpf_maps::MapType::Array
        && map.max_entries() == 1)
        .then(|| map.lookup_elem(&0u32.to_ne_bytes()).ok())
        .flatten();
    let inner_meta = map.inner_map_meta().map(|meta| {
        let d = meta.desc();
        Box::new(MapDesc {
            id: 0,
            name: String::new(),
            map_type: d.map_type.raw(),
            key_size: d.key_size,
            value_size: d.value_size,
            max_entries: d.max_entries,
            map_flags: d.map_flags,
            inner_meta: None,
            frozen_value: None,
            spin_lock_off: None,
            timer_off: None,
        })
    });
    let (spin_lock_off, timer_off) = btf_fields(map);
    MapDesc {
        id: map.id(),
        name: map.name().to_owned(),
        map_type: map.map_type().raw(),
        key_size: map.key_size(),
        value_size: map.value_size(),
        max_entries: map.max_entries(),
        map_flags: map.map_flags(),
        inner_meta,
        frozen_value,
        spin_lock_off,
        timer_off,
    }
}

/// The special fields of a map's value type (`btf_parse_fields` for `map->record`): the
/// offsets of a top-level `struct bpf_spin_lock` and `struct bpf_timer`.
fn btf_fields(map: &Map) -> (Option<u32>, Option<u32>) {
    let Some((obj, _, value)) = map.btf() else {
        return (None, None);
    };
    let Ok(btf) = kbpf_object::Btf::parse(obj.data()) else {
        return (None, None);
    };
    let Ok(members) = btf
        .skip_mods_and_typedefs(value)
        .and_then(|t| btf.members(t).map(<[_]>::to_vec))
    else {
        return (None, None);
    };
    let (mut lock, mut timer) = (None, None);
    for m in members {
        let name = btf
            .skip_mods_and_typedefs(m.ty)
            .and_then(|t| btf.type_by_id(t))
            .map(|t| t.name.clone())
            .unwrap_or_default();
        match name.as_str() {
            "bpf_spin_lock" => lock = Some(m.bit_offset / 8),
            "bpf_timer" => timer = Some(m.bit_offset / 8),
            _ => {}
        }
    }
    (lock, timer)
}

/// Maps by the fd a program's `ld_imm64` names them with.
#[derive(Clone, Default)]
pub struct MapsEnv {
    maps: BTreeMap<i32, (Map, MapDesc)>,
}

impl std::fmt::Debug for MapsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.maps.iter().map(|(fd, (_, d))| (fd, &d.name)))
            .finish()
    }
}

impl MapsEnv {
    /// An empty environment.
    pub fn new() -> MapsEnv {
        MapsEnv::default()
    }

    /// Adds (or replaces) the map behind `fd`.
    pub fn insert(&mut self, fd: i32, map: Map) {
        let desc = verifier_desc(&map);
        self.maps.insert(fd, (map, desc));
    }

    /// The live map behind `fd`.
    pub fn map(&self, fd: i32) -> Option<&Map> {
        self.maps.get(&fd).map(|(m, _)| m)
    }

    /// The maps the program's `ld_imm64`s reference, ascending by fd, without duplicates
    /// (the kernel's `used_maps`).
    pub fn used_maps(&self, insns: &[Insn]) -> Vec<Map> {
        let mut fds: Vec<i32> = Vec::new();
        let mut i = 0;
        while i < insns.len() {
            let insn = insns[i];
            if insn.is_ld_imm64() {
                if matches!(insn.src(), BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_VALUE) {
                    fds.push(insn.imm);
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        fds.sort_unstable();
        fds.dedup();
        fds.iter().filter_map(|fd| self.map(*fd).cloned()).collect()
    }
}

impl MapEnv for MapsEnv {
    fn map_by_fd(&self, fd: i32) -> Option<&MapDesc> {
        self.maps.get(&fd).map(|(_, d)| d)
    }
}

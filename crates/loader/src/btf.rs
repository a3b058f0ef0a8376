//! The object's BTF as a kernel object: libbpf's `bpf_object__load_btf` (`BPF_BTF_LOAD` of
//! the `.BTF` section with its DATASEC fix-ups, checked as the kernel's `btf_parse` checks it)
//! and the BTF half of `bpf_object__create_map` (which type ids a map is created with).
//!
//! As in libbpf, BTF is optional: a blob the kernel would refuse is dropped with libbpf's
//! warning (`Error loading .BTF into kernel: -22. BTF is optional, ignoring.`) and the maps
//! are created without it; a map whose types the kernel's `map_check_btf` would refuse is
//! created without BTF too (libbpf's "Retrying without BTF").

use kbpf_maps::{BtfObject, MapType};
use kbpf_object::btf::{Btf, BtfKind};
use kbpf_object::{BpfObject, MapDef};

/// `BPF_BTF_LOAD` of the object's BTF: the object, or libbpf's warning when the kernel would
/// refuse the blob (`None, None` without `.BTF`).
pub(crate) fn load_btf(obj: &BpfObject) -> (Option<BtfObject>, Option<String>) {
    let Some(btf) = &obj.btf else {
        return (None, None);
    };
    let blob = btf.to_bytes();
    match kbpf_object::btf::validate(&blob) {
        Ok(()) => (Some(BtfObject::new(blob)), None),
        Err(e) => (
            None,
            Some(format!(
                "Error loading .BTF into kernel: -{}. BTF is optional, ignoring. ({})",
                e.errno, e.log
            )),
        ),
    }
}

/// The map types libbpf creates without BTF type ids (`bpf_object__create_map`):
/// PERF_EVENT_ARRAY 4, STACK_TRACE 7, CGROUP_ARRAY 8, ARRAY_OF_MAPS 12, HASH_OF_MAPS 13,
/// DEVMAP 14, SOCKMAP 15, CPUMAP 16, XSKMAP 17, SOCKHASH 18, QUEUE 22, STACK 23,
/// DEVMAP_HASH 25.
fn libbpf_clears_btf(map_type: u32) -> bool {
    matches!(map_type, 4 | 7 | 8 | 12..=18 | 22 | 23 | 25)
}

/// `(btf_key_type_id, btf_value_type_id)` the map is created with, or `None` for no BTF.
pub(crate) fn map_type_ids(btf: &Btf, def: &MapDef) -> Option<(u32, u32)> {
    let (key, value) = (def.btf_key_type_id, def.btf_value_type_id);
    if (key == 0 && value == 0) || libbpf_clears_btf(def.map_type) {
        return None;
    }
    // The kernel checks the types only when there is a value type (map_check_btf).
    if value != 0 && !map_check_btf(btf, def, key, value) {
        return None;
    }
    Some((key, value))
}

/// The kernel's `map_check_btf` (sizes against the map's) and `array_map_check_btf`.
fn map_check_btf(btf: &Btf, def: &MapDef, key: u32, value: u32) -> bool {
    let size_is = |id: u32, want: u32| btf.resolve_size(id).ok() == Some(u64::from(want));
    if !size_is(value, def.value_size) {
        return false;
    }
    let t = MapType::from_raw(def.map_type);
    let resolved = |id| {
        btf.skip_mods_and_typedefs(id)
            .ok()
            .and_then(|i| btf.type_by_id(i).ok())
            .map(|t| &t.kind)
    };
    if key == 0 {
        // Keyless BTF: only the one-element ARRAY of a global data section.
        return t == MapType::Array
            && def.max_entries == 1
            && matches!(resolved(value), Some(BtfKind::Datasec { .. }));
    }
    if !size_is(key, def.key_size) {
        return false;
    }
    if t.is_array_family() {
        // Array keys are a 32-bit INT without a bit offset.
        return matches!(
            resolved(key),
            Some(BtfKind::Int {
                bits: 32,
                offset: 0,
                ..
            })
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str) -> BpfObject {
        let p = format!(
            "{}/../../tests/objects/{name}.bpf.o",
            env!("CARGO_MANIFEST_DIR")
        );
        BpfObject::open(p).unwrap()
    }

    #[test]
    fn object_btf_passes_the_kernel_checks() {
        for name in [
            "btf_kinds",
            "global_data",
            "aom_inner_map",
            "map_types",
            "multi_prog",
        ] {
            let o = obj(name);
            let (b, warn) = load_btf(&o);
            assert!(warn.is_none(), "{name}: {warn:?}");
            assert_eq!(b.unwrap().data(), o.btf.as_ref().unwrap().to_bytes());
        }
    }

    #[test]
    fn type_ids_follow_libbpf_and_the_kernel() {
        let o = obj("aom_inner_map");
        let btf = o.btf.as_ref().unwrap();
        for def in &o.maps {
            let ids = map_type_ids(btf, def);
            if def.is_map_in_map() {
                assert_eq!(ids, None, "{}", def.name);
            }
        }
        let o = obj("global_data");
        let btf = o.btf.as_ref().unwrap();
        let data = o.maps.iter().find(|m| m.section == ".data").unwrap();
        assert_eq!(map_type_ids(btf, data), Some((0, data.btf_value_type_id)));
        // A value type whose size is not the map's: no BTF (libbpf retries without).
        let mut bad = data.clone();
        bad.value_size += 4;
        assert_eq!(map_type_ids(btf, &bad), None);
    }

    #[test]
    fn loaded_maps_hold_the_objects_btf() {
        let o = obj("aom_inner_map");
        let reg = kbpf_maps::Registry::new();
        let loaded = crate::load_object(&o, &reg, &crate::LoadOptions::default()).unwrap();
        let btf = loaded.btf.clone().expect("object BTF loaded");
        assert!(loaded.btf_warning.is_none());
        let inner = loaded.map("inner_a").unwrap().map.info();
        assert_eq!(inner.btf_id, btf.id());
        assert_ne!(inner.btf_value_type_id, 0);
        // libbpf creates maps of maps without BTF.
        assert_eq!(loaded.map("outer").unwrap().map.info().btf_id, 0);
    }
}

//! [`MapOps`] over kbpf's own maps (`kbpf_maps::Map`).
use kbpf_maps::uapi::{BPF_ANY, BPF_F_INNER_MAP};
use kbpf_maps::{Errno, Map, MapAttr, MapError, MapType};

use super::{ControlError, MapOps};

/// kbpf's maps: handles are `kbpf_maps::Map` (for a loaded object, the `map` of each
/// `kbpf_loader::LoadedMap`). Dropping the last handle of a map swapped out of an outer
/// map leaves it to the epoch collector, which frees it once no program run
/// (`kbpf_maps::pin()`) can still see it.
#[derive(Clone, Copy, Debug, Default)]
pub struct KbpfOps;

fn err(op: &'static str, e: MapError) -> ControlError {
    ControlError::Map {
        op,
        map: e.map.clone(),
        msg: e.to_string(),
    }
}

impl MapOps for KbpfOps {
    type Map = Map;

    fn create_inner(
        &self,
        name: &str,
        value_size: u32,
        max_entries: u32,
    ) -> Result<Map, ControlError> {
        Map::create(
            &MapAttr::new(MapType::Array, 4, value_size, max_entries)
                .flags(BPF_F_INNER_MAP)
                .name(name),
            None,
        )
        .map_err(|e| err("BPF_MAP_CREATE", e))
    }

    fn update(&self, map: &Map, key: &[u8], value: &[u8]) -> Result<(), ControlError> {
        map.update_elem(key, value, BPF_ANY)
            .map_err(|e| err("BPF_MAP_UPDATE_ELEM", e))
    }

    fn lookup(&self, map: &Map, key: &[u8]) -> Result<Option<Vec<u8>>, ControlError> {
        match map.lookup_elem(key) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.errno == Errno::ENOENT => Ok(None),
            Err(e) => Err(err("BPF_MAP_LOOKUP_ELEM", e)),
        }
    }

    fn delete(&self, map: &Map, key: &[u8]) -> Result<bool, ControlError> {
        match map.delete_elem(key) {
            Ok(()) => Ok(true),
            Err(e) if e.errno == Errno::ENOENT => Ok(false),
            Err(e) => Err(err("BPF_MAP_DELETE_ELEM", e)),
        }
    }

    fn keys(&self, map: &Map) -> Result<Vec<Vec<u8>>, ControlError> {
        Ok(map.keys())
    }

    fn set_inner(&self, outer: &Map, key: &[u8], inner: &Map) -> Result<(), ControlError> {
        outer
            .update_inner_map(key, inner, BPF_ANY)
            .map_err(|e| err("BPF_MAP_UPDATE_ELEM (inner map)", e))
    }

    fn memlock(&self, map: &Map) -> Option<u64> {
        Some(map.memlock())
    }
}

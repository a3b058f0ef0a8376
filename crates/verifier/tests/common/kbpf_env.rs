//! kbpf's maps for a corpus case, for the crates that have kbpf-maps (kbpf-run's xlated
//! goldens and benchmarks, kbpf-bench's engine comparison). Include it with `#[path]` next to
//! `common/mod.rs` (as a sibling module named `common`); the verifier's own tests, which have
//! no kbpf-maps, do not.

#![allow(dead_code)] // each includer uses a different part

use kbpf_maps::{Map, MapAttr, MapType};

use super::common::Case;

/// The case's maps created as kbpf maps, in order, each template passed as `inner_map_fd`,
/// with their corpus names.
pub fn kbpf_maps(case: &Case) -> Vec<(String, Map)> {
    let mut maps: Vec<(String, Map)> = Vec::new();
    for m in &case.maps {
        let attr = MapAttr::new(
            MapType::from_raw(m.map_type),
            m.key_size,
            m.value_size,
            m.max_entries,
        )
        .flags(m.map_flags)
        .name(&m.name.chars().take(15).collect::<String>());
        let map = Map::create(&attr, m.inner.map(|t| &maps[t].1))
            .unwrap_or_else(|e| panic!("{}: map {}: {e}", case.name, m.name));
        maps.push((m.name.clone(), map));
    }
    maps
}

/// The same maps as the verifier's environment: fd = index in the case.
pub fn kbpf_env(case: &Case) -> kbpf_rewrite::MapsEnv {
    let mut env = kbpf_rewrite::MapsEnv::new();
    for (i, (_, m)) in kbpf_maps(case).into_iter().enumerate() {
        env.insert(i as i32, m);
    }
    env
}

//! The session's live programs: what a program is while it lives ([`LiveProg`]), how a
//! pinned one is rebuilt in another process ([`Origin`]), and its record in the pinned
//! state. The `prog` commands build, pin and show them ([`crate::prog`]); the session only
//! keeps them, because pins, garbage collection and the BTF table must see every program
//! without depending on the commands that make them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kbpf_maps::Registry;
use kbpf_run::Program;
use serde_json::json;

/// A live program of the session.
pub struct LiveProg {
    /// The verified, translated program.
    pub program: Arc<Program>,
    /// Pin paths relative to the bpffs directory.
    pub pins: Vec<String>,
    /// The kbpf ids of the maps the program is bound to (`map_ids`), ascending.
    pub map_ids: Vec<u32>,
    /// `BPF_PROG_TYPE_*` as loaded.
    pub prog_type: u32,
    /// Unix time of the (first) load.
    pub loaded_at: i64,
    /// Loader's uid.
    pub uid: u32,
    /// GPL-compatible license.
    pub gpl: bool,
    /// What rebuilds the program in another process.
    pub origin: Origin,
    /// The fd table the object was loaded with, held while the program lives.
    pub(crate) _registry: Arc<Registry>,
}

/// How a pinned program is rebuilt: the object and program, the `type` override, and the
/// object's maps the program is bound to (libbpf name → kbpf map id).
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// Absolute path of the object file.
    pub object: PathBuf,
    /// The program's (function) name in the object.
    pub prog: String,
    /// `type TYPE` given at load.
    pub type_override: Option<u32>,
    /// Bound maps by the object's map names.
    pub maps: BTreeMap<String, u32>,
    /// The tag when first loaded.
    pub tag: String,
}

impl LiveProg {
    /// The program's record in the pinned state (what [`origin_from_record`] reads back).
    pub(crate) fn record(&self, id: u32) -> serde_json::Value {
        json!({
            "id": id,
            "pins": self.pins,
            "map_ids": self.map_ids,
            "object": self.origin.object.display().to_string(),
            "prog": self.origin.prog,
            "type": self.origin.type_override,
            "maps": self.origin.maps,
            "tag": self.origin.tag,
            "prog_type": self.prog_type,
            "loaded_at": self.loaded_at,
            "uid": self.uid,
            "gpl": self.gpl,
        })
    }
}

/// A pinned program's record read back: id, origin, pins, load time, uid.
pub(crate) fn origin_from_record(
    r: &serde_json::Value,
) -> Result<(u32, Origin, Vec<String>, i64, u32), String> {
    let id = r
        .get("id")
        .and_then(|v| v.as_u64())
        .ok_or("program record without id")? as u32;
    let object = r
        .get("object")
        .and_then(|v| v.as_str())
        .ok_or(format!("program {id}: no object path"))?;
    let prog = r
        .get("prog")
        .and_then(|v| v.as_str())
        .ok_or(format!("program {id}: no program name"))?;
    let type_override = r.get("type").and_then(|v| v.as_u64()).map(|t| t as u32);
    let maps = r
        .get("maps")
        .and_then(|v| v.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u32)))
                .collect()
        })
        .unwrap_or_default();
    let tag = r
        .get("tag")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let pins = r
        .get("pins")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let loaded_at = r.get("loaded_at").and_then(|v| v.as_i64()).unwrap_or(0);
    let uid = r.get("uid").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    Ok((
        id,
        Origin {
            object: PathBuf::from(object),
            prog: prog.to_string(),
            type_override,
            maps,
            tag,
        },
        pins,
        loaded_at,
        uid,
    ))
}

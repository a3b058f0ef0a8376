//! [`MapOps`] over kbpf's daemon (`kbpf_client`): the control plane in its own process,
//! working on the live maps the daemon owns while a datapath runs there. Handles are kbpf
//! map ids; a map this connection created stays alive while the connection holds it
//! ([`MapOps::close`] lets go of it, as closing an fd does).

use std::sync::Mutex;

use kbpf_client::{Client, ClientError, MapCreateAttr};

use super::{ControlError, DatapathMaps, MAP_NAMES, MapOps};

/// `BPF_MAP_TYPE_ARRAY`.
const ARRAY: u32 = 2;
/// `BPF_F_INNER_MAP`.
const INNER_MAP: u32 = 1 << 12;

/// The daemon's maps through one client connection.
pub struct DaemonOps {
    client: Mutex<Client>,
}

fn err(op: &'static str, map: impl ToString, e: ClientError) -> ControlError {
    ControlError::Map {
        op,
        map: map.to_string(),
        msg: e.to_string(),
    }
}

fn is_enoent(e: &ClientError) -> bool {
    e.errno() == Some(libc_enoent())
}

const fn libc_enoent() -> i32 {
    2
}

impl DaemonOps {
    /// Ops over `client`.
    pub fn new(client: Client) -> DaemonOps {
        DaemonOps {
            client: Mutex::new(client),
        }
    }

    fn c(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The datapath's maps pinned under `dir` (`prog loadall … pinmaps DIR` pins each map
    /// under its name).
    pub fn open_pinned(&self, dir: &str) -> Result<DatapathMaps<u32>, ControlError> {
        let mut named = Vec::new();
        for name in MAP_NAMES {
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let (_, id) = self
                .c()
                .obj_get(&path)
                .map_err(|e| err("BPF_OBJ_GET", &path, e))?;
            named.push((name.to_string(), id));
        }
        DatapathMaps::from_named(named)
    }
}

impl MapOps for DaemonOps {
    type Map = u32;

    fn create_inner(
        &self,
        name: &str,
        value_size: u32,
        max_entries: u32,
    ) -> Result<u32, ControlError> {
        self.c()
            .map_create(
                MapCreateAttr {
                    map_type: ARRAY,
                    key_size: 4,
                    value_size,
                    max_entries,
                    map_flags: INNER_MAP,
                    name: name.chars().take(15).collect(),
                    inner_map_id: None,
                },
                None,
            )
            .map_err(|e| err("BPF_MAP_CREATE", name, e))
    }

    fn update(&self, map: &u32, key: &[u8], value: &[u8]) -> Result<(), ControlError> {
        self.c()
            .map_update(*map, key, value, 0)
            .map_err(|e| err("BPF_MAP_UPDATE_ELEM", map, e))
    }

    fn fill_array(&self, map: &u32, values: &[[u8; 8]]) -> Result<(), ControlError> {
        let elems: Vec<(Vec<u8>, Vec<u8>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| ((i as u32).to_ne_bytes().to_vec(), v.to_vec()))
            .collect();
        self.c()
            .map_update_batch(*map, &elems, 0)
            .map(|_| ())
            .map_err(|e| err("BPF_MAP_UPDATE_BATCH", map, e))
    }

    fn lookup(&self, map: &u32, key: &[u8]) -> Result<Option<Vec<u8>>, ControlError> {
        match self.c().map_lookup(*map, key) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_enoent(&e) => Ok(None),
            Err(e) => Err(err("BPF_MAP_LOOKUP_ELEM", map, e)),
        }
    }

    fn delete(&self, map: &u32, key: &[u8]) -> Result<bool, ControlError> {
        match self.c().map_delete(*map, key) {
            Ok(()) => Ok(true),
            Err(e) if is_enoent(&e) => Ok(false),
            Err(e) => Err(err("BPF_MAP_DELETE_ELEM", map, e)),
        }
    }

    fn keys(&self, map: &u32) -> Result<Vec<Vec<u8>>, ControlError> {
        let mut c = self.c();
        let mut out: Vec<Vec<u8>> = Vec::new();
        loop {
            match c.map_get_next_key(*map, out.last().map(|k| k.as_slice())) {
                Ok(k) => out.push(k),
                Err(e) if is_enoent(&e) => return Ok(out),
                Err(e) => return Err(err("BPF_MAP_GET_NEXT_KEY", map, e)),
            }
        }
    }

    fn set_inner(&self, outer: &u32, key: &[u8], inner: &u32) -> Result<(), ControlError> {
        self.c()
            .map_update_inner(*outer, key, *inner, 0)
            .map_err(|e| err("BPF_MAP_UPDATE_ELEM (inner map)", outer, e))
    }

    fn set_inner_many(&self, outer: &u32, items: &[(&[u8], &u32)]) -> Result<(), ControlError> {
        let elems: Vec<(Vec<u8>, Vec<u8>)> = items
            .iter()
            .map(|(k, m)| (k.to_vec(), m.to_ne_bytes().to_vec()))
            .collect();
        self.c()
            .map_update_batch(*outer, &elems, 0)
            .map(|_| ())
            .map_err(|e| err("BPF_MAP_UPDATE_BATCH (inner maps)", outer, e))
    }

    fn close(&self, map: u32) {
        // A map the connection did not create (a pinned one) has nothing to let go of.
        let _ = self.c().close(map);
    }

    fn memlock(&self, _map: &u32) -> Option<u64> {
        None
    }
}

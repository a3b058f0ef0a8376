//! The daemon's `bpf()`-shaped requests on the session's live objects: map create, element
//! operations and their batch forms, freeze, info, obj pin/get. Each answers with the kernel's
//! errno where the kernel would fail, and records what it changed for the journal.

use kbpf_client::proto::{Bytes, MapCreateAttr, MapInfo, ObjKind, Payload, Response};
use kbpf_maps::{Errno, FdObject, Map, MapAttr, MapError, MapType};

use crate::pinned::TemplateRecord;
use crate::session::{Change, Reply, Session};

/// A refusal with errno `e`.
pub fn refuse(e: Errno, message: impl Into<String>) -> Response {
    Response::Err {
        errno: e.code(),
        message: message.into(),
    }
}

fn map_err(e: MapError) -> Response {
    Response::Err {
        errno: e.errno.code(),
        message: e.to_string(),
    }
}

/// A bpftool-style failure (`Reply`) as a refusal: its errno when it carries one, else EINVAL.
fn reply_err(r: Reply) -> Response {
    let errno = if r.status < -1 {
        -r.status
    } else {
        Errno::EINVAL.code()
    };
    Response::Err {
        errno,
        message: r.stderr.trim().trim_start_matches("Error: ").to_string(),
    }
}

fn map(s: &Session, id: u32) -> Result<Map, Response> {
    s.map(id)
        .map(|e| e.map.clone())
        .ok_or_else(|| refuse(Errno::ENOENT, format!("no map with id {id}")))
}

/// `BPF_MAP_CREATE`; the connection holds the new map (`held`) until it ends.
pub fn map_create(
    s: &mut Session,
    a: &MapCreateAttr,
    pin: Option<&str>,
    held: &mut Vec<u32>,
) -> Response {
    let t = MapType::from_raw(a.map_type);
    let attr = MapAttr::new(t, a.key_size, a.value_size, a.max_entries)
        .flags(a.map_flags)
        .name(&a.name)
        .profile(s.opts.profile.maps);
    let template = match a.inner_map_id {
        Some(id) => match map(s, id) {
            Ok(m) => Some(m),
            Err(r) => return r,
        },
        None => None,
    };
    let resolved = match &template {
        Some(m) => FdObject::Map(m.clone()),
        None => FdObject::Other,
    };
    let created = match Map::create_with(&attr, || Ok(resolved)) {
        Ok(m) => m,
        Err(e) => return map_err(e),
    };
    let trec = template
        .filter(|_| t.is_map_in_map())
        .map(|tm| TemplateRecord {
            map_type: tm.map_type().raw(),
            key_size: tm.key_size(),
            value_size: tm.value_size(),
            max_entries: tm.max_entries(),
            map_flags: tm.map_flags(),
        });
    let id = s.add_map(created, trec);
    *s.held.entry(id).or_insert(0) += 1;
    held.push(id);
    if let Some(p) = pin
        && let Err(r) = s.pin_map(id, p)
    {
        return reply_err(r);
    }
    Response::Ok(Payload::MapId { id })
}

/// Releases the maps a connection held (its "fds"); the next commit frees what nothing else
/// holds.
pub fn release(s: &mut Session, held: &[u32]) {
    for id in held {
        if let Some(n) = s.held.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                s.held.remove(id);
            }
        }
    }
    if !held.is_empty() {
        s.touch();
    }
}

/// `BPF_MAP_LOOKUP_ELEM`. Map-of-maps answer the inner map's id, as the kernel answers its.
pub fn lookup(s: &Session, id: u32, key: &[u8]) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match m.lookup_elem(key) {
        Ok(v) if m.map_type().is_map_in_map() => {
            let kid = v
                .get(..4)
                .map(|b| u32::from_ne_bytes(b.try_into().unwrap()));
            match kid.and_then(|k| s.id_of_kid(k)) {
                Some(inner) => Response::Ok(Payload::Value {
                    value: Bytes(inner.to_ne_bytes().to_vec()),
                }),
                None => refuse(Errno::ENOENT, "inner map is gone"),
            }
        }
        Ok(v) => Response::Ok(Payload::Value { value: Bytes(v) }),
        Err(e) => map_err(e),
    }
}

/// `BPF_MAP_UPDATE_ELEM`: data maps take the value; map-of-maps and PROG_ARRAY take an
/// inner map's or program's id (4 bytes) where the kernel takes an fd.
pub fn update(s: &mut Session, id: u32, key: &[u8], value: &[u8], flags: u64) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let t = m.map_type();
    let res = if t.is_map_in_map() || t == MapType::ProgArray {
        let Some(obj) = value
            .get(..4)
            .filter(|_| value.len() == 4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        else {
            return refuse(Errno::EINVAL, "value must be a 4-byte id");
        };
        if t.is_map_in_map() {
            match s.map(obj) {
                Some(inner) => m.update_inner_map(key, &inner.map, flags),
                None => return refuse(Errno::EBADF, format!("no map with id {obj}")),
            }
        } else {
            if let Err(r) = crate::prog::restore_all(s) {
                return reply_err(r);
            }
            match crate::prog::prog_ref(s, obj) {
                Some(p) => m.update_prog(key, p, flags),
                None => return refuse(Errno::EBADF, format!("no program with id {obj}")),
            }
        }
    } else {
        m.update_elem(key, value, flags)
    };
    changed(s, id, key, res)
}

/// The reply of an element operation; a success is recorded for the journal.
fn changed(s: &mut Session, id: u32, key: &[u8], res: Result<(), MapError>) -> Response {
    match res {
        Ok(()) => {
            s.record_change(Change::Elem {
                map: id,
                key: key.to_vec(),
            });
            Response::Ok(Payload::Done)
        }
        Err(e) => map_err(e),
    }
}

/// `BPF_MAP_DELETE_ELEM`.
pub fn delete(s: &mut Session, id: u32, key: &[u8]) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let res = m.delete_elem(key);
    changed(s, id, key, res)
}

/// `BPF_MAP_GET_NEXT_KEY`.
pub fn get_next_key(s: &Session, id: u32, key: Option<&[u8]>) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match m.get_next_key(key) {
        Ok(k) => Response::Ok(Payload::Key { key: Bytes(k) }),
        Err(e) => map_err(e),
    }
}

/// `BPF_MAP_LOOKUP_BATCH` as a walk of `get_next_key` from the cursor.
pub fn lookup_batch(s: &Session, id: u32, in_batch: Option<&[u8]>, count: u32) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if count == 0 {
        return refuse(Errno::EINVAL, "count is 0");
    }
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    let mut cur: Option<Vec<u8>> = in_batch.map(<[u8]>::to_vec);
    while keys.len() < count as usize {
        let next = match m.get_next_key(cur.as_deref()) {
            Ok(k) => k,
            Err(e) if e.errno == Errno::ENOENT => {
                cur = None;
                break;
            }
            Err(e) => return map_err(e),
        };
        if let Ok(v) = m.lookup_elem(&next) {
            keys.push(Bytes(next.clone()));
            values.push(Bytes(v));
        }
        cur = Some(next);
    }
    if keys.is_empty() && cur.is_none() {
        return refuse(Errno::ENOENT, "no more elements");
    }
    Response::Ok(Payload::Batch {
        keys,
        values,
        out_batch: cur.map(Bytes),
    })
}

/// `BPF_MAP_UPDATE_BATCH`: element by element, stopping at the first failure (which is the
/// reply, as the kernel reports the error and `count` of the done ones).
pub fn update_batch(
    s: &mut Session,
    id: u32,
    keys: &[Bytes],
    values: &[Bytes],
    flags: u64,
) -> Response {
    if keys.len() != values.len() {
        return refuse(Errno::EINVAL, "keys and values differ in number");
    }
    for (k, v) in keys.iter().zip(values) {
        if let r @ Response::Err { .. } = update(s, id, &k.0, &v.0, flags) {
            return r;
        }
    }
    Response::Ok(Payload::Count {
        count: keys.len() as u32,
    })
}

/// `BPF_MAP_DELETE_BATCH`.
pub fn delete_batch(s: &mut Session, id: u32, keys: &[Bytes]) -> Response {
    for k in keys {
        if let r @ Response::Err { .. } = delete(s, id, &k.0) {
            return r;
        }
    }
    Response::Ok(Payload::Count {
        count: keys.len() as u32,
    })
}

/// `BPF_MAP_FREEZE`.
pub fn freeze(s: &mut Session, id: u32) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match m.freeze() {
        Ok(()) => {
            s.touch();
            Response::Ok(Payload::Done)
        }
        Err(e) => map_err(e),
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map.
pub fn info(s: &Session, id: u32) -> Response {
    let m = match map(s, id) {
        Ok(m) => m,
        Err(r) => return r,
    };
    Response::Ok(Payload::MapInfo(MapInfo {
        id,
        map_type: m.map_type().raw(),
        key_size: m.key_size(),
        value_size: m.value_size(),
        max_entries: m.max_entries(),
        map_flags: m.map_flags(),
        name: m.name().to_string(),
        frozen: m.is_frozen(),
    }))
}

/// `BPF_OBJ_PIN`.
pub fn pin(s: &mut Session, kind: ObjKind, id: u32, path: &str) -> Response {
    let r = match kind {
        ObjKind::Map => {
            if s.map(id).is_none() {
                return refuse(Errno::EBADF, format!("no map with id {id}"));
            }
            s.pin_map(id, path)
        }
        ObjKind::Prog => {
            if let Err(r) = crate::prog::restore_all(s) {
                return reply_err(r);
            }
            crate::prog::pin_prog(s, id, path)
        }
    };
    match r {
        Ok(()) => Response::Ok(Payload::Done),
        Err(r) => reply_err(r),
    }
}

/// `BPF_OBJ_GET`.
pub fn obj_get(s: &mut Session, path: &str) -> Response {
    if let Ok(id) = s.pinned_map(path) {
        return Response::Ok(Payload::Obj {
            obj: ObjKind::Map,
            id,
        });
    }
    if let Err(r) = crate::prog::restore_all(s) {
        return reply_err(r);
    }
    match crate::prog::pinned_prog(s, path) {
        Ok(id) => Response::Ok(Payload::Obj {
            obj: ObjKind::Prog,
            id,
        }),
        Err(_) => refuse(Errno::ENOENT, format!("nothing is pinned at {path}")),
    }
}

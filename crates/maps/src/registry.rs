//! A process-like object table: file descriptors for maps and programs (what user space passes
//! to `bpf()`), lookup of maps by id, and `map show` listings with kernel-equal `memlock`.
//!
//! The `*_elem` methods mirror the syscall layer: fd resolution (EBADF for a closed fd, EINVAL
//! for an fd that is not a map), fd access modes (EPERM), and for fd maps the resolution of the
//! written value as another fd. Descriptors 0–2 are taken by "stdin/stdout/stderr" so that an
//! `inner_map_fd` of 0 is an open non-map file (EINVAL), as in a real process.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use crate::attr::MapAttr;
use crate::error::{Errno, MapError};
use crate::map::{FdObject, Map, MapInfo, MapInner, ProgRef};
use crate::uapi::{BPF_F_RDONLY, BPF_F_WRONLY};

#[derive(Clone)]
struct FdEntry {
    obj: FdObject,
    /// BPF_F_RDONLY / BPF_F_WRONLY of the descriptor.
    access: u32,
}

struct RegState {
    fds: BTreeMap<u32, FdEntry>,
    maps: BTreeMap<u32, Weak<MapInner>>,
}

/// The fd table and map index.
pub struct Registry {
    st: parking_lot::Mutex<RegState>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

fn fd_err(fd: u32, errno: Errno, detail: &str) -> MapError {
    MapError::new(&format!("fd {fd}"), errno, detail)
}

impl Registry {
    /// An empty table with descriptors 0, 1, 2 open on non-BPF files.
    pub fn new() -> Registry {
        let mut fds = BTreeMap::new();
        for fd in 0..3 {
            fds.insert(
                fd,
                FdEntry {
                    obj: FdObject::Other,
                    access: 0,
                },
            );
        }
        Registry {
            st: parking_lot::Mutex::new(RegState {
                fds,
                maps: BTreeMap::new(),
            }),
        }
    }

    fn install(&self, obj: FdObject, access: u32) -> u32 {
        let mut st = self.st.lock();
        // Lowest free descriptor, as the kernel's fd allocator.
        let mut fd = 0;
        while st.fds.contains_key(&fd) {
            fd += 1;
        }
        if let FdObject::Map(m) = &obj {
            st.maps.insert(m.id(), Arc::downgrade(&m.0));
        }
        st.fds.insert(fd, FdEntry { obj, access });
        fd
    }

    /// `BPF_MAP_CREATE`: returns the new map's fd. `inner_map_fd` is consulted only for
    /// map-of-maps types.
    pub fn map_create(&self, attr: &MapAttr, inner_map_fd: u32) -> Result<u32, MapError> {
        let map = Map::create_with(attr, || self.object(inner_map_fd))?;
        Ok(self.install(
            FdObject::Map(map),
            attr.map_flags & (BPF_F_RDONLY | BPF_F_WRONLY),
        ))
    }

    /// Opens a descriptor on an existing map (like `BPF_MAP_GET_FD_BY_ID`).
    pub fn add_map(&self, map: &Map) -> u32 {
        self.install(FdObject::Map(map.clone()), 0)
    }

    /// Opens a descriptor on a program handle (for PROG_ARRAY values and fd-type tests).
    pub fn add_prog(&self, prog: ProgRef) -> u32 {
        self.install(FdObject::Prog(prog), 0)
    }

    /// Opens a descriptor on a non-BPF file (e.g. `/dev/null`).
    pub fn add_other(&self) -> u32 {
        self.install(FdObject::Other, 0)
    }

    /// `close(fd)`: EBADF when not open.
    pub fn close(&self, fd: u32) -> Result<(), Errno> {
        self.st
            .lock()
            .fds
            .remove(&fd)
            .map(|_| ())
            .ok_or(Errno::EBADF)
    }

    /// What `fd` refers to (EBADF when closed).
    pub fn object(&self, fd: u32) -> Result<FdObject, Errno> {
        self.st
            .lock()
            .fds
            .get(&fd)
            .map(|e| e.obj.clone())
            .ok_or(Errno::EBADF)
    }

    fn map_entry(&self, fd: u32) -> Result<(Map, u32), MapError> {
        let st = self.st.lock();
        match st.fds.get(&fd) {
            None => Err(fd_err(fd, Errno::EBADF, "not an open file descriptor")),
            Some(FdEntry {
                obj: FdObject::Map(m),
                access,
            }) => Ok((m.clone(), *access)),
            Some(_) => Err(fd_err(fd, Errno::EINVAL, "not a BPF map")),
        }
    }

    /// The map behind `fd` (EBADF closed, EINVAL not a map).
    pub fn map(&self, fd: u32) -> Result<Map, MapError> {
        self.map_entry(fd).map(|(m, _)| m)
    }

    /// A live map by id.
    pub fn map_by_id(&self, id: u32) -> Option<Map> {
        self.st
            .lock()
            .maps
            .get(&id)
            .and_then(|w| w.upgrade())
            .map(Map)
    }

    /// `BPF_MAP_GET_FD_BY_ID` (ENOENT for an unknown or freed id).
    pub fn map_get_fd_by_id(&self, id: u32) -> Result<u32, Errno> {
        let m = self.map_by_id(id).ok_or(Errno::ENOENT)?;
        Ok(self.add_map(&m))
    }

    /// `BPF_MAP_LOOKUP_ELEM`.
    pub fn map_lookup_elem(&self, fd: u32, key: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        if flags & !crate::uapi::BPF_F_LOCK != 0 {
            return Err(fd_err(fd, Errno::EINVAL, "unknown lookup flags"));
        }
        let (m, access) = self.map_entry(fd)?;
        if access & BPF_F_WRONLY != 0 {
            return Err(MapError::new(m.name(), Errno::EPERM, "fd is write-only"));
        }
        m.lookup_elem_flags(key, flags)
    }

    /// `BPF_MAP_UPDATE_ELEM`; for fd maps the 4-byte value is a descriptor in this table.
    pub fn map_update_elem(
        &self,
        fd: u32,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let (m, access) = self.map_entry(fd)?;
        if access & BPF_F_RDONLY != 0 {
            return Err(MapError::new(m.name(), Errno::EPERM, "fd is read-only"));
        }
        let t = m.map_type();
        if t.is_fd_array() || t == crate::uapi::MapType::HashOfMaps {
            let Ok(bytes) = <[u8; 4]>::try_from(value) else {
                return Err(MapError::new(
                    m.name(),
                    Errno::EINVAL,
                    format!("value is {} bytes, expected 4", value.len()),
                ));
            };
            let ufd = u32::from_ne_bytes(bytes);
            m.update_elem_fd(key, flags, || self.object(ufd))
        } else {
            m.update_elem(key, value, flags)
        }
    }

    /// `BPF_MAP_UPDATE_BATCH` through a descriptor: its access mode first (a read-only fd is
    /// EPERM), then [`Map::update_batch_with`], map-of-maps values resolved in this table.
    /// Returns the kernel's `batch.count` out-value with the result.
    pub fn map_update_batch(
        &self,
        fd: u32,
        keys: &[&[u8]],
        values: &[&[u8]],
        elem_flags: u64,
    ) -> (usize, Result<(), MapError>) {
        let (m, access) = match self.map_entry(fd) {
            Ok(v) => v,
            Err(e) => return (keys.len(), Err(e)),
        };
        if access & BPF_F_RDONLY != 0 {
            return (
                keys.len(),
                Err(MapError::new(m.name(), Errno::EPERM, "fd is read-only")),
            );
        }
        m.update_batch_with(keys, values, elem_flags, |ufd| self.object(ufd))
    }

    /// `BPF_MAP_FREEZE` through a descriptor: a read-only fd may not freeze (EPERM).
    pub fn map_freeze(&self, fd: u32) -> Result<(), MapError> {
        let (m, access) = self.map_entry(fd)?;
        if access & BPF_F_RDONLY != 0 {
            return Err(MapError::new(m.name(), Errno::EPERM, "fd is read-only"));
        }
        m.freeze()
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn map_delete_elem(&self, fd: u32, key: &[u8]) -> Result<(), MapError> {
        let (m, access) = self.map_entry(fd)?;
        if access & BPF_F_RDONLY != 0 {
            return Err(MapError::new(m.name(), Errno::EPERM, "fd is read-only"));
        }
        m.delete_elem(key)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
    pub fn map_lookup_and_delete_elem(
        &self,
        fd: u32,
        key: &[u8],
        flags: u64,
    ) -> Result<Vec<u8>, MapError> {
        // Unknown flags are refused before the descriptor is looked at.
        if flags & !crate::uapi::BPF_F_LOCK != 0 {
            return Err(fd_err(fd, Errno::EINVAL, "unknown flags"));
        }
        let (m, access) = self.map_entry(fd)?;
        if access & (BPF_F_RDONLY | BPF_F_WRONLY) != 0 {
            return Err(MapError::new(
                m.name(),
                Errno::EPERM,
                "fd is not read-write",
            ));
        }
        m.lookup_and_delete_elem(key, flags)
    }

    /// `BPF_MAP_GET_NEXT_KEY`.
    pub fn map_get_next_key(&self, fd: u32, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let (m, access) = self.map_entry(fd)?;
        if access & BPF_F_WRONLY != 0 {
            return Err(MapError::new(m.name(), Errno::EPERM, "fd is write-only"));
        }
        m.get_next_key(key)
    }

    /// `bpftool map show`: every live map this table has seen, by id.
    pub fn maps(&self) -> Vec<MapInfo> {
        let live: Vec<Map> = {
            let mut st = self.st.lock();
            st.maps.retain(|_, w| w.strong_count() > 0);
            st.maps
                .values()
                .filter_map(|w| w.upgrade())
                .map(Map)
                .collect()
        };
        live.iter().map(Map::info).collect()
    }
}

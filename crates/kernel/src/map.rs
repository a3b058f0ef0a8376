//! Kernel maps through `bpf()`: [`KernelMap`] owns a map fd and offers the element
//! commands with the kernel's errno, plus pinning and id lookups.
//!
//! Keys and values are byte slices exactly as user space exchanges them with the kernel:
//! a key has `key_size` bytes; a value has `value_size` bytes, except per-cpu maps (one
//! 8-byte-aligned slot per possible CPU) and fd maps such as `ARRAY_OF_MAPS` (a 4-byte map
//! fd on update, the inner map's id on lookup) — see [`KernelMap::user_value_len`].

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use crate::consts::{BPF_MAP_GET_FD_BY_ID, BPF_OBJ_NAME_LEN, map_type_name};
use crate::sys::{self, MapCreateArgs, MapFd, bpf_map_info};
use crate::{Errno, Error};

/// The attributes of `BPF_MAP_CREATE` that kbpf cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapCreateAttr {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
    /// `inner_map_fd`: the template for map-of-maps. Any number may be given (a closed
    /// number or a non-map fd provokes `EBADF`/`EINVAL`); `None` passes 0, as C callers do.
    pub inner_map_fd: Option<RawFd>,
    /// Map name, at most 15 bytes of `[A-Za-z0-9_.]` (the kernel checks the characters).
    pub name: String,
    /// `numa_node`, used with `BPF_F_NUMA_NODE`.
    pub numa_node: u32,
    /// `map_extra` (bloom filter hash count, arena address…).
    pub map_extra: u64,
}

impl MapCreateAttr {
    /// A map of the given type and geometry with no flags, no template and no name.
    pub fn new(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            ..Default::default()
        }
    }

    /// Sets `map_flags`.
    pub fn flags(mut self, map_flags: u32) -> Self {
        self.map_flags = map_flags;
        self
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Uses `inner` as the inner-map template.
    pub fn inner(mut self, inner: BorrowedFd<'_>) -> Self {
        self.inner_map_fd = Some(inner.as_raw_fd());
        self
    }

    /// Passes an arbitrary number as `inner_map_fd`.
    pub fn inner_raw(mut self, fd: RawFd) -> Self {
        self.inner_map_fd = Some(fd);
        self
    }
}

/// Encodes an object name into the kernel's fixed 16-byte field.
pub(crate) fn obj_name(name: &str) -> Result<[u8; BPF_OBJ_NAME_LEN], Error> {
    let bytes = name.as_bytes();
    if bytes.len() >= BPF_OBJ_NAME_LEN || bytes.contains(&0) {
        return Err(Error::Arg(format!(
            "object name {name:?}: at most {} bytes without NUL",
            BPF_OBJ_NAME_LEN - 1
        )));
    }
    let mut out = [0u8; BPF_OBJ_NAME_LEN];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// Decodes a NUL-padded kernel name.
pub(crate) fn name_from_kernel(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

pub(crate) fn path_cstring(path: &Path) -> Result<CString, Error> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Arg(format!("path {}: contains a NUL byte", path.display())))
}

/// `struct bpf_map_info`, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Global map id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (4 for map-of-maps).
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// Permanent flags (the kernel strips `BPF_F_RDONLY`/`BPF_F_WRONLY`).
    pub map_flags: u32,
    /// Map name.
    pub name: String,
    /// BTF object id (0 without BTF).
    pub btf_id: u32,
    /// `map_extra`.
    pub map_extra: u64,
}

impl From<&bpf_map_info> for MapInfo {
    fn from(i: &bpf_map_info) -> Self {
        MapInfo {
            map_type: i.type_,
            id: i.id,
            key_size: i.key_size,
            value_size: i.value_size,
            max_entries: i.max_entries,
            map_flags: i.map_flags,
            name: name_from_kernel(&i.name),
            btf_id: i.btf_id,
            map_extra: i.map_extra,
        }
    }
}

/// A kernel BPF map, owned through its fd (closed on drop; the map lives on while pinned
/// or referenced by a program or an outer map).
#[derive(Debug)]
pub struct KernelMap {
    fd: MapFd,
}

impl KernelMap {
    /// `BPF_MAP_CREATE`.
    pub fn create(attr: &MapCreateAttr) -> Result<KernelMap, Error> {
        let args = MapCreateArgs {
            map_type: attr.map_type,
            key_size: attr.key_size,
            value_size: attr.value_size,
            max_entries: attr.max_entries,
            map_flags: attr.map_flags,
            // The kernel reads inner_map_fd as a u32; negative numbers keep their bits.
            inner_map_fd: attr.inner_map_fd.map_or(0, |fd| fd as u32),
            numa_node: attr.numa_node,
            map_name: obj_name(&attr.name)?,
            map_extra: attr.map_extra,
        };
        let fd = sys::map_create(&args).map_err(|errno| Error::Sys {
            op: "BPF_MAP_CREATE",
            object: format!(
                "map {:?} ({} k{} v{} n{} flags {:#x})",
                attr.name,
                map_type_name(attr.map_type).unwrap_or("unknown type"),
                attr.key_size,
                attr.value_size,
                attr.max_entries,
                attr.map_flags
            ),
            errno,
        })?;
        Ok(KernelMap { fd })
    }

    /// Adopts an fd that refers to a map (`EINVAL` if it does not).
    pub fn from_fd(fd: OwnedFd) -> Result<KernelMap, Error> {
        let fd = MapFd::from_owned(fd).map_err(|errno| Error::Sys {
            op: "BPF_OBJ_GET_INFO_BY_FD",
            object: "adopted fd".into(),
            errno,
        })?;
        Ok(KernelMap { fd })
    }

    /// `BPF_OBJ_GET`: opens the map pinned at `path`.
    pub fn from_pinned(path: impl AsRef<Path>) -> Result<KernelMap, Error> {
        let path = path.as_ref();
        let c = path_cstring(path)?;
        let fd = sys::obj_get(&c, 0).map_err(|errno| Error::Sys {
            op: "BPF_OBJ_GET",
            object: path.display().to_string(),
            errno,
        })?;
        Self::from_fd(fd)
    }

    /// `BPF_MAP_GET_FD_BY_ID`.
    pub fn from_id(id: u32) -> Result<KernelMap, Error> {
        let fd = sys::get_fd_by_id(BPF_MAP_GET_FD_BY_ID, id).map_err(|errno| Error::Sys {
            op: "BPF_MAP_GET_FD_BY_ID",
            object: format!("map id {id}"),
            errno,
        })?;
        Self::from_fd(fd)
    }

    /// `BPF_OBJ_PIN` at `path` (inside a bpffs such as `/sys/fs/bpf`).
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let c = path_cstring(path)?;
        sys::obj_pin(self.fd.as_fd(), &c).map_err(|errno| self.sys_err("BPF_OBJ_PIN", errno))
    }

    /// `BPF_OBJ_GET_INFO_BY_FD`, queried now.
    pub fn info(&self) -> Result<MapInfo, Error> {
        sys::map_info(self.fd.as_fd())
            .map(|i| MapInfo::from(&i))
            .map_err(|errno| self.sys_err("BPF_OBJ_GET_INFO_BY_FD", errno))
    }

    /// The map's id (recorded when the fd was opened; ids never change).
    pub fn id(&self) -> u32 {
        self.fd.geometry().info.id
    }

    /// `BPF_MAP_TYPE_*`.
    pub fn map_type(&self) -> u32 {
        self.fd.geometry().info.type_
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.fd.geometry().info.key_size as usize
    }

    /// The map's `value_size` attribute.
    pub fn value_size(&self) -> usize {
        self.fd.geometry().info.value_size as usize
    }

    /// Bytes of one value as exchanged with user space (`bpf_map_value_size()`).
    pub fn user_value_len(&self) -> usize {
        self.fd.geometry().user_value_len
    }

    /// The map's name as the kernel stored it.
    pub fn name(&self) -> String {
        name_from_kernel(&self.fd.geometry().info.name)
    }

    fn describe(&self) -> String {
        let g = &self.fd.geometry().info;
        format!("map {:?} (id {})", name_from_kernel(&g.name), g.id)
    }

    fn sys_err(&self, op: &'static str, errno: Errno) -> Error {
        Error::Sys {
            op,
            object: self.describe(),
            errno,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.len() != self.key_size() {
            return Err(Error::Size {
                object: self.describe(),
                what: "key",
                got: key.len(),
                expected: self.key_size(),
            });
        }
        Ok(())
    }

    /// `BPF_MAP_LOOKUP_ELEM`; returns [`user_value_len`](Self::user_value_len) bytes.
    pub fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, Error> {
        self.lookup_with_flags(key, 0)
    }

    /// `BPF_MAP_LOOKUP_ELEM` with an explicit `flags` member (e.g. `BPF_F_LOCK`).
    pub fn lookup_with_flags(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Error> {
        self.check_key(key)?;
        self.fd
            .lookup(key, flags)
            .map_err(|errno| self.sys_err("BPF_MAP_LOOKUP_ELEM", errno))
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST`/… in `flags` (any
    /// value is passed through, so invalid flags reach the kernel).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Error> {
        self.check_key(key)?;
        if value.len() != self.user_value_len() {
            return Err(Error::Size {
                object: self.describe(),
                what: "value",
                got: value.len(),
                expected: self.user_value_len(),
            });
        }
        self.fd
            .update(key, value, flags)
            .map_err(|errno| self.sys_err("BPF_MAP_UPDATE_ELEM", errno))
    }

    /// Map-of-maps update: writes `inner`'s fd number as the value.
    pub fn update_fd(&self, key: &[u8], inner: BorrowedFd<'_>, flags: u64) -> Result<(), Error> {
        self.update(key, &(inner.as_raw_fd() as u32).to_ne_bytes(), flags)
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn delete(&self, key: &[u8]) -> Result<(), Error> {
        self.delete_with_fields(key, 0, 0)
    }

    /// `BPF_MAP_DELETE_ELEM` with arbitrary values in the unused `value` and `flags`
    /// members of the attribute (the kernel answers `EINVAL` if either is non-zero).
    pub fn delete_with_fields(
        &self,
        key: &[u8],
        value_field: u64,
        flags_field: u64,
    ) -> Result<(), Error> {
        self.check_key(key)?;
        self.fd
            .delete(key, value_field, flags_field)
            .map_err(|errno| self.sys_err("BPF_MAP_DELETE_ELEM", errno))
    }

    /// `BPF_MAP_GET_NEXT_KEY`; `None` asks for the first key.
    pub fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        self.fd
            .get_next_key(key)
            .map_err(|errno| self.sys_err("BPF_MAP_GET_NEXT_KEY", errno))
    }

    /// All keys in the kernel's iteration order (get_next_key from `None` until `ENOENT`).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        loop {
            match self.get_next_key(out.last().map(|k| k.as_slice())) {
                Ok(k) => out.push(k),
                Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for KernelMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for KernelMap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

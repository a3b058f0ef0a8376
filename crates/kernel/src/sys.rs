//! The `bpf()` system call: `#[repr(C)]` attribute blocks laid out like the members of
//! `union bpf_attr` (`include/uapi/linux/bpf.h`), and the only `unsafe` code of this crate.
//!
//! How soundness is kept here. `bpf()` reads and writes user memory through addresses in
//! the attribute block; the amounts depend on the command and, for element commands, on the
//! map behind the fd (`key_size` bytes of key, `bpf_map_value_size()` bytes of value). So:
//! * every attribute block is built inside this module from Rust slices, from a zeroed
//!   value (the kernel's `CHECK_ATTR` rejects non-zero unused tails with `EINVAL`, and
//!   the explicit `_pad` fields keep the blocks free of uninitialised padding);
//! * element operations go through [`MapFd`], which owns the map fd together with the
//!   geometry the *kernel* reported for it (`BPF_OBJ_GET_INFO_BY_FD`), and always hands
//!   the kernel buffers of exactly that geometry; since an owned fd cannot be closed and
//!   reused behind our back, the geometry stays true for the fd's lifetime;
//! * the `*_raw` functions, which take arbitrary fd numbers so tests can provoke `EBADF`
//!   and `EINVAL`, are `unsafe fn`s whose contract states the buffer sizes required.
//!
//! We pass `size_of` of our block as the attribute size. The kernel copies that prefix and
//! zero-fills the rest of its own (bigger) union, so a block only needs to reach the last
//! field a command uses.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use kbpf_isa::Insn;

use crate::Errno;
use crate::consts::*;

/// Marker for attribute blocks handed to [`sys_bpf`].
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain only integer fields (addresses travel as `u64`)
/// with explicit padding, so every byte is initialised and any bit pattern the kernel writes
/// back is a valid value.
unsafe trait BpfAttr: Sized {}

/// Issues `bpf(cmd, attr, sizeof(attr))`.
///
/// # Safety
/// Every address stored in `attr` must point to memory that is valid, for the duration of
/// the call, for the reads and writes `cmd` performs through it (sizes as the kernel
/// computes them for this command and the objects named by the fds in `attr`).
unsafe fn sys_bpf<A: BpfAttr>(cmd: u32, attr: &mut A) -> Result<i64, Errno> {
    let size = std::mem::size_of::<A>() as libc::c_uint;
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` block of `size` bytes
    // (BpfAttr contract), so the kernel may read and write it; the memory reachable through
    // the addresses inside it is the caller's obligation (this function's contract).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut A,
            size as libc::c_long,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as i64)
    }
}

/// Wraps a new fd returned by the kernel.
fn owned_fd(ret: i64) -> Result<OwnedFd, Errno> {
    let raw = RawFd::try_from(ret).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the kernel has just installed `raw` in our fd table for this call's result;
    // nothing else in the process knows the number yet, so we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn addr<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// Address of a buffer the kernel only reads (0 for an empty one).
fn slice_addr(s: &[u8]) -> u64 {
    if s.is_empty() { 0 } else { addr(s.as_ptr()) }
}

/// Address of a buffer the kernel writes (0 for an empty one); derived from a unique
/// borrow so that writes through it are permitted.
fn mut_addr<T>(s: &mut [T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        addr(s.as_mut_ptr().cast_const())
    }
}

// ------------------------------------------------------------------------------------------
// Attribute blocks.

/// `union bpf_attr` for `BPF_MAP_CREATE`, up to `map_extra`.
#[repr(C)]
#[derive(Default)]
struct MapCreateBlock {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; BPF_OBJ_NAME_LEN],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}
// SAFETY: repr(C), integers only, no implicit padding (size asserted below).
unsafe impl BpfAttr for MapCreateBlock {}
const _: () = assert!(std::mem::size_of::<MapCreateBlock>() == 72);

/// `union bpf_attr` for the `BPF_MAP_*_ELEM` commands and `BPF_MAP_GET_NEXT_KEY`.
#[repr(C)]
#[derive(Default)]
struct MapElemBlock {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` or `next_key`.
    value: u64,
    flags: u64,
}
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl BpfAttr for MapElemBlock {}
const _: () = assert!(std::mem::size_of::<MapElemBlock>() == 32);

/// `union bpf_attr` for `BPF_OBJ_PIN` / `BPF_OBJ_GET`.
#[repr(C)]
#[derive(Default)]
struct ObjBlock {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl BpfAttr for ObjBlock {}
const _: () = assert!(std::mem::size_of::<ObjBlock>() == 24);

/// `union bpf_attr` for `BPF_*_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetIdBlock {
    id: u32,
    next_id: u32,
    open_flags: u32,
}
// SAFETY: repr(C), u32 fields only.
unsafe impl BpfAttr for GetIdBlock {}

/// `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct InfoBlock {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}
// SAFETY: repr(C), integers only, no implicit padding.
unsafe impl BpfAttr for InfoBlock {}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `log_true_size`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadBlock {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; BPF_OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
    core_relos: u64,
    core_relo_rec_size: u32,
    log_true_size: u32,
}
// SAFETY: repr(C), integers only, no implicit padding (size asserted below).
unsafe impl BpfAttr for ProgLoadBlock {}
const _: () = assert!(std::mem::size_of::<ProgLoadBlock>() == 144);

/// `union bpf_attr` for `BPF_PROG_TEST_RUN` (the `test` member).
#[repr(C)]
#[derive(Default)]
struct TestRunBlock {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}
// SAFETY: repr(C), integers only, explicit padding (size asserted below).
unsafe impl BpfAttr for TestRunBlock {}
const _: () = assert!(std::mem::size_of::<TestRunBlock>() == 80);

/// `struct bpf_map_info`, as filled by `BPF_OBJ_GET_INFO_BY_FD` on a map fd.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct bpf_map_info {
    /// Map type.
    pub type_: u32,
    /// Map id (global, stable while the map lives).
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-cpu maps; 4 for map-of-maps).
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// Permanent map flags (`BPF_F_RDONLY`/`BPF_F_WRONLY` are not stored).
    pub map_flags: u32,
    /// Name, NUL-padded.
    pub name: [u8; BPF_OBJ_NAME_LEN],
    /// Offload device.
    pub ifindex: u32,
    /// `btf_vmlinux_value_type_id`.
    pub btf_vmlinux_value_type_id: u32,
    /// Offload netns device.
    pub netns_dev: u64,
    /// Offload netns inode.
    pub netns_ino: u64,
    /// BTF object id (0 without BTF).
    pub btf_id: u32,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
    /// `btf_vmlinux_id`.
    pub btf_vmlinux_id: u32,
    /// `map_extra` (e.g. bloom filter hash count).
    pub map_extra: u64,
}
// SAFETY: repr(C), integers only, no implicit padding (size asserted below).
unsafe impl BpfAttr for bpf_map_info {}
const _: () = assert!(std::mem::size_of::<bpf_map_info>() == 88);

/// `struct bpf_prog_info`, as filled by `BPF_OBJ_GET_INFO_BY_FD` on a program fd.
/// Buffer addresses are always zero outside this module except for the ones
/// [`prog_info`] sets from its own slices.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct bpf_prog_info {
    /// Program type.
    pub type_: u32,
    /// Program id.
    pub id: u32,
    /// SHA-1 based tag of the program as loaded (map fds zeroed).
    pub tag: [u8; BPF_TAG_SIZE],
    /// Bytes of JITed machine code.
    pub jited_prog_len: u32,
    /// Bytes of xlated (post-fixup) instructions.
    pub xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    /// Load time, ns since boot.
    pub load_time: u64,
    /// Uid of the loader.
    pub created_by_uid: u32,
    /// Number of maps the program uses.
    pub nr_map_ids: u32,
    map_ids: u64,
    /// Name, NUL-padded.
    pub name: [u8; BPF_OBJ_NAME_LEN],
    /// Offload device.
    pub ifindex: u32,
    /// Bit 0: `gpl_compatible`.
    pub gpl_compatible: u32,
    /// Offload netns device.
    pub netns_dev: u64,
    /// Offload netns inode.
    pub netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    /// BTF object id.
    pub btf_id: u32,
    func_info_rec_size: u32,
    func_info: u64,
    nr_func_info: u32,
    nr_line_info: u32,
    line_info: u64,
    jited_line_info: u64,
    nr_jited_line_info: u32,
    line_info_rec_size: u32,
    jited_line_info_rec_size: u32,
    nr_prog_tags: u32,
    prog_tags: u64,
    /// Cumulative run time (with `kernel.bpf_stats_enabled`).
    pub run_time_ns: u64,
    /// Run count (with `kernel.bpf_stats_enabled`).
    pub run_cnt: u64,
    /// Recursion misses.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// `attach_btf_obj_id`.
    pub attach_btf_obj_id: u32,
    /// `attach_btf_id`.
    pub attach_btf_id: u32,
    _pad: u32,
}
// SAFETY: repr(C), integers only, explicit padding (size asserted below).
unsafe impl BpfAttr for bpf_prog_info {}
const _: () = assert!(std::mem::size_of::<bpf_prog_info>() == 232);

// ------------------------------------------------------------------------------------------
// Maps.

/// Arguments of `BPF_MAP_CREATE` (plain data, no addresses).
#[derive(Clone, Debug, Default)]
pub struct MapCreateArgs {
    /// `map_type`
    pub map_type: u32,
    /// `key_size`
    pub key_size: u32,
    /// `value_size`
    pub value_size: u32,
    /// `max_entries`
    pub max_entries: u32,
    /// `map_flags`
    pub map_flags: u32,
    /// `inner_map_fd` (any number; the kernel validates it)
    pub inner_map_fd: u32,
    /// `numa_node` (used with `BPF_F_NUMA_NODE`)
    pub numa_node: u32,
    /// `map_name`, NUL-padded (the last byte must stay NUL)
    pub map_name: [u8; BPF_OBJ_NAME_LEN],
    /// `map_extra`
    pub map_extra: u64,
}

/// The shape of a map as the kernel reported it, i.e. the sizes `bpf()` will use for
/// element commands on its fd.
#[derive(Clone, Debug)]
pub struct MapGeometry {
    /// The kernel's `struct bpf_map_info` at the time the fd was opened.
    pub info: bpf_map_info,
    /// Bytes the kernel copies for one value from/to user space
    /// (`bpf_map_value_size()`: per-cpu maps carry one 8-byte-aligned slot per possible
    /// CPU, fd maps a 4-byte fd/id).
    pub user_value_len: usize,
}

/// An owned map fd together with the geometry the kernel reported for it.
#[derive(Debug)]
pub struct MapFd {
    fd: OwnedFd,
    geometry: MapGeometry,
}

/// Number of possible CPUs (`num_possible_cpus()`), from
/// `/sys/devices/system/cpu/possible` (a list like `0-3` or `0,2-5`).
pub fn num_possible_cpus() -> Result<usize, String> {
    let path = "/sys/devices/system/cpu/possible";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut count = 0usize;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("{path}: cannot parse {part:?}");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.parse::<usize>().map_err(|_| bad())?,
                b.parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(bad());
        }
        count += hi - lo + 1;
    }
    if count == 0 {
        return Err(format!("{path}: no CPUs listed"));
    }
    Ok(count)
}

fn user_value_len(info: &bpf_map_info) -> Result<usize, Errno> {
    let vs = info.value_size as usize;
    if is_percpu_map_type(info.type_) {
        // A failure to read the CPU list must not turn into a short buffer; refuse instead.
        let cpus = num_possible_cpus().map_err(|_| Errno::ENOSYS)?;
        Ok(vs.div_ceil(8) * 8 * cpus)
    } else if is_fd_map_type(info.type_) {
        Ok(4)
    } else {
        Ok(vs)
    }
}

impl MapFd {
    /// Adopts an fd that should refer to a map, asking the kernel for its geometry.
    /// Fails with the kernel's errno if it is not a map (`EINVAL`).
    pub fn from_owned(fd: OwnedFd) -> Result<MapFd, Errno> {
        let info = map_info(fd.as_fd())?;
        let user_value_len = user_value_len(&info)?;
        Ok(MapFd {
            fd,
            geometry: MapGeometry {
                info,
                user_value_len,
            },
        })
    }

    /// The geometry recorded when the fd was adopted.
    pub fn geometry(&self) -> &MapGeometry {
        &self.geometry
    }

    fn key_buf(&self, key: &[u8]) -> Vec<u8> {
        // Always exactly key_size bytes so the kernel never reads past our buffer; the
        // public layer rejects keys of another length before getting here.
        let mut k = vec![0u8; self.geometry.info.key_size as usize];
        let n = k.len().min(key.len());
        k[..n].copy_from_slice(&key[..n]);
        k
    }

    fn elem(&self, key: &[u8], value: u64, flags: u64) -> MapElemBlock {
        MapElemBlock {
            map_fd: self.fd.as_raw_fd() as u32,
            key: slice_addr(key),
            value,
            flags,
            ..Default::default()
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM`; returns `user_value_len` bytes.
    pub fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        let k = self.key_buf(key);
        let mut v = vec![0u8; self.geometry.user_value_len];
        let mut attr = self.elem(&k, mut_addr(&mut v), flags);
        // SAFETY: the fd is owned and refers to the map whose geometry we hold; the kernel
        // reads key_size bytes from `k` and writes at most user_value_len bytes to `v`,
        // both sized exactly so and alive across the call.
        unsafe { sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) }?;
        Ok(v)
    }

    /// `BPF_MAP_UPDATE_ELEM`; `value` is copied into a `user_value_len` buffer.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        let k = self.key_buf(key);
        let mut v = vec![0u8; self.geometry.user_value_len];
        let n = v.len().min(value.len());
        v[..n].copy_from_slice(&value[..n]);
        let mut attr = self.elem(&k, slice_addr(&v), flags);
        // SAFETY: as in `lookup`; the kernel only reads key_size + user_value_len bytes.
        unsafe { sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }?;
        Ok(())
    }

    /// `BPF_MAP_DELETE_ELEM`. `value_field` and `flags_field` are stored verbatim in the
    /// (unused) `value` and `flags` members: any non-zero value makes the kernel's
    /// `CHECK_ATTR` fail with `EINVAL`; the kernel never dereferences them.
    pub fn delete(&self, key: &[u8], value_field: u64, flags_field: u64) -> Result<(), Errno> {
        let k = self.key_buf(key);
        let mut attr = self.elem(&k, value_field, flags_field);
        // SAFETY: the kernel reads key_size bytes from `k`; `value` and `flags` are not used
        // as addresses by BPF_MAP_DELETE_ELEM (they are only checked to be zero).
        unsafe { sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr) }?;
        Ok(())
    }

    /// `BPF_MAP_GET_NEXT_KEY`; `None` asks for the first key.
    pub fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        let k = key.map(|k| self.key_buf(k));
        let mut next = vec![0u8; self.geometry.info.key_size as usize];
        let kaddr = match &k {
            Some(k) => slice_addr(k),
            None => 0,
        };
        let mut attr = MapElemBlock {
            map_fd: self.fd.as_raw_fd() as u32,
            key: kaddr,
            value: mut_addr(&mut next),
            ..Default::default()
        };
        // SAFETY: the kernel reads key_size bytes from `k` (or nothing for a NULL key) and
        // writes key_size bytes to `next`, which is exactly that long.
        unsafe { sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) }?;
        Ok(next)
    }
}

impl AsFd for MapFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<MapFd> for OwnedFd {
    fn from(m: MapFd) -> OwnedFd {
        m.fd
    }
}

/// `BPF_MAP_CREATE`.
pub fn map_create(args: &MapCreateArgs) -> Result<MapFd, Errno> {
    let mut attr = MapCreateBlock {
        map_type: args.map_type,
        key_size: args.key_size,
        value_size: args.value_size,
        max_entries: args.max_entries,
        map_flags: args.map_flags,
        inner_map_fd: args.inner_map_fd,
        numa_node: args.numa_node,
        map_name: args.map_name,
        map_extra: args.map_extra,
        ..Default::default()
    };
    // The name must stay NUL-terminated for the kernel's bpf_obj_name_cpy().
    attr.map_name[BPF_OBJ_NAME_LEN - 1] = 0;
    // SAFETY: MAP_CREATE carries no user addresses in the fields we set (btf_fd etc. are 0).
    let ret = unsafe { sys_bpf(BPF_MAP_CREATE, &mut attr) }?;
    MapFd::from_owned(owned_fd(ret)?)
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a map.
pub fn map_info(fd: BorrowedFd<'_>) -> Result<bpf_map_info, Errno> {
    let mut info = bpf_map_info::default();
    let mut attr = InfoBlock {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_map_info>() as u32,
        info: addr((&mut info as *mut bpf_map_info).cast_const()),
    };
    // SAFETY: the kernel writes at most info_len bytes into `info`, which lives across the
    // call; `bpf_map_info` accepts any bit pattern.
    unsafe { sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(info)
}

/// `BPF_MAP_LOOKUP_ELEM` on an arbitrary fd number.
///
/// # Safety
/// If `fd` refers to a BPF map, `key` must be at least its `key_size` long and `value` at
/// least `bpf_map_value_size()` long (see [`crate::KernelMap::user_value_len`]). For fds that
/// are closed or not maps the kernel fails before touching either buffer.
pub unsafe fn map_lookup_elem_raw(
    fd: RawFd,
    key: &[u8],
    value: &mut [u8],
    flags: u64,
) -> Result<(), Errno> {
    let mut attr = MapElemBlock {
        map_fd: fd as u32,
        key: slice_addr(key),
        value: mut_addr(value),
        flags,
        ..Default::default()
    };
    // SAFETY: forwarded to the caller (this function's contract).
    unsafe { sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) }.map(|_| ())
}

/// `BPF_MAP_UPDATE_ELEM` on an arbitrary fd number.
///
/// # Safety
/// If `fd` refers to a BPF map, `key` and `value` must be at least as long as the kernel
/// reads for it (`key_size`, `bpf_map_value_size()`).
pub unsafe fn map_update_elem_raw(
    fd: RawFd,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> Result<(), Errno> {
    let mut attr = MapElemBlock {
        map_fd: fd as u32,
        key: slice_addr(key),
        value: slice_addr(value),
        flags,
        ..Default::default()
    };
    // SAFETY: forwarded to the caller (this function's contract).
    unsafe { sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(|_| ())
}

/// `BPF_MAP_DELETE_ELEM` on an arbitrary fd number, with arbitrary `value`/`flags` members.
///
/// # Safety
/// If `fd` refers to a BPF map, `key` must be at least its `key_size` long.
pub unsafe fn map_delete_elem_raw(
    fd: RawFd,
    key: &[u8],
    value_field: u64,
    flags_field: u64,
) -> Result<(), Errno> {
    let mut attr = MapElemBlock {
        map_fd: fd as u32,
        key: slice_addr(key),
        value: value_field,
        flags: flags_field,
        ..Default::default()
    };
    // SAFETY: forwarded to the caller; `value`/`flags` are never dereferenced by DELETE.
    unsafe { sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr) }.map(|_| ())
}

/// `BPF_MAP_GET_NEXT_KEY` on an arbitrary fd number.
///
/// # Safety
/// If `fd` refers to a BPF map, `key` (when given) and `next_key` must be at least its
/// `key_size` long.
pub unsafe fn map_get_next_key_raw(
    fd: RawFd,
    key: Option<&[u8]>,
    next_key: &mut [u8],
) -> Result<(), Errno> {
    let mut attr = MapElemBlock {
        map_fd: fd as u32,
        key: key.map_or(0, slice_addr),
        value: mut_addr(next_key),
        ..Default::default()
    };
    // SAFETY: forwarded to the caller (this function's contract).
    unsafe { sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) }.map(|_| ())
}

// ------------------------------------------------------------------------------------------
// Objects: pinning and ids.

/// `BPF_OBJ_PIN`: pins `fd` at `path` (in a bpffs).
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> Result<(), Errno> {
    let mut attr = ObjBlock {
        pathname: addr(path.as_ptr()),
        bpf_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: the kernel reads a NUL-terminated string from `path`, which is one.
    unsafe { sys_bpf(BPF_OBJ_PIN, &mut attr) }.map(|_| ())
}

/// `BPF_OBJ_GET`: opens the object pinned at `path`.
pub fn obj_get(path: &CStr, file_flags: u32) -> Result<OwnedFd, Errno> {
    let mut attr = ObjBlock {
        pathname: addr(path.as_ptr()),
        file_flags,
        ..Default::default()
    };
    // SAFETY: the kernel reads a NUL-terminated string from `path`, which is one.
    let ret = unsafe { sys_bpf(BPF_OBJ_GET, &mut attr) }?;
    owned_fd(ret)
}

/// `BPF_MAP_GET_FD_BY_ID` (`cmd = BPF_MAP_GET_FD_BY_ID`) or `BPF_PROG_GET_FD_BY_ID`.
pub fn get_fd_by_id(cmd: u32, id: u32) -> Result<OwnedFd, Errno> {
    if cmd != BPF_MAP_GET_FD_BY_ID && cmd != BPF_PROG_GET_FD_BY_ID {
        return Err(Errno::EINVAL);
    }
    let mut attr = GetIdBlock {
        id,
        ..Default::default()
    };
    // SAFETY: no addresses in this block.
    let ret = unsafe { sys_bpf(cmd, &mut attr) }?;
    owned_fd(ret)
}

// ------------------------------------------------------------------------------------------
// Programs.

/// Arguments of `BPF_PROG_LOAD` that are plain data.
#[derive(Clone, Debug, Default)]
pub struct ProgLoadArgs {
    /// `prog_type`
    pub prog_type: u32,
    /// `expected_attach_type`
    pub expected_attach_type: u32,
    /// `prog_flags`
    pub prog_flags: u32,
    /// `prog_name`, NUL-padded (the last byte must stay NUL)
    pub prog_name: [u8; BPF_OBJ_NAME_LEN],
    /// `log_level` (ignored when the log buffer is empty)
    pub log_level: u32,
}

/// `BPF_PROG_LOAD`. With a non-empty `log`, the verifier writes its NUL-terminated log
/// there. Returns the fd, or the errno plus `log_true_size` (the buffer size the full log
/// would need; 0 on kernels before 6.4).
pub fn prog_load(
    args: &ProgLoadArgs,
    insns: &[Insn],
    license: &CStr,
    log: &mut [u8],
) -> Result<OwnedFd, (Errno, u32)> {
    let code = kbpf_isa::insn::insns_to_bytes(insns);
    let log_size = u32::try_from(log.len()).map_err(|_| (Errno::EINVAL, 0))?;
    let mut attr = ProgLoadBlock {
        prog_type: args.prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| (Errno::E2BIG, 0))?,
        insns: slice_addr(&code),
        license: addr(license.as_ptr()),
        prog_flags: args.prog_flags,
        prog_name: args.prog_name,
        expected_attach_type: args.expected_attach_type,
        ..Default::default()
    };
    attr.prog_name[BPF_OBJ_NAME_LEN - 1] = 0;
    if !log.is_empty() {
        attr.log_level = args.log_level;
        attr.log_size = log_size;
        attr.log_buf = mut_addr(log);
    }
    // SAFETY: the kernel reads insn_cnt * 8 bytes from `code` (exactly its length), a
    // NUL-terminated license, and writes at most log_size bytes into `log`; all three
    // outlive the call. It may write `log_true_size` back into `attr`, which is ours.
    match unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(ret) => owned_fd(ret).map_err(|e| (e, 0)),
        Err(e) => Err((e, attr.log_true_size)),
    }
}

/// What [`prog_info`] fetched.
#[derive(Clone, Debug, Default)]
pub struct ProgInfoOut {
    /// The fixed part of `struct bpf_prog_info`.
    pub info: bpf_prog_info,
    /// Xlated instructions (bytes), when asked for.
    pub xlated: Vec<u8>,
    /// JITed machine code, when asked for.
    pub jited: Vec<u8>,
    /// Ids of the maps the program uses, when asked for.
    pub map_ids: Vec<u32>,
}

fn prog_info_once(
    fd: BorrowedFd<'_>,
    xlated: &mut [u8],
    jited: &mut [u8],
    map_ids: &mut [u32],
) -> Result<bpf_prog_info, Errno> {
    let mut info = bpf_prog_info {
        xlated_prog_len: xlated.len() as u32,
        xlated_prog_insns: mut_addr(xlated),
        jited_prog_len: jited.len() as u32,
        jited_prog_insns: mut_addr(jited),
        nr_map_ids: map_ids.len() as u32,
        map_ids: mut_addr(map_ids),
        ..Default::default()
    };
    let mut attr = InfoBlock {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: addr((&mut info as *mut bpf_prog_info).cast_const()),
    };
    // SAFETY: the kernel writes at most info_len bytes into `info`, and through the three
    // buffer addresses at most the lengths we put beside them (it copies
    // min(user length, actual length)); every other buffer field is zero with a zero count.
    unsafe { sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(info)
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a program, optionally with its xlated code, JITed code and
/// map ids (fetched with a second call sized from the first).
pub fn prog_info(
    fd: BorrowedFd<'_>,
    want_xlated: bool,
    want_jited: bool,
    want_map_ids: bool,
) -> Result<ProgInfoOut, Errno> {
    let first = prog_info_once(fd, &mut [], &mut [], &mut [])?;
    if !(want_xlated || want_jited || want_map_ids) {
        return Ok(ProgInfoOut {
            info: first,
            ..Default::default()
        });
    }
    let mut xlated = vec![
        0u8;
        if want_xlated {
            first.xlated_prog_len as usize
        } else {
            0
        }
    ];
    let mut jited = vec![
        0u8;
        if want_jited {
            first.jited_prog_len as usize
        } else {
            0
        }
    ];
    let mut map_ids = vec![
        0u32;
        if want_map_ids {
            first.nr_map_ids as usize
        } else {
            0
        }
    ];
    let info = prog_info_once(fd, &mut xlated, &mut jited, &mut map_ids)?;
    // A program never changes after load, so the second answer has the same lengths; trim
    // defensively in case the kernel reported less.
    xlated.truncate(info.xlated_prog_len as usize);
    jited.truncate(info.jited_prog_len as usize);
    map_ids.truncate(info.nr_map_ids as usize);
    Ok(ProgInfoOut {
        info,
        xlated,
        jited,
        map_ids,
    })
}

/// Inputs of `BPF_PROG_TEST_RUN`.
#[derive(Debug, Default)]
pub struct TestRunArgs<'a> {
    /// Packet (or other) input data.
    pub data_in: &'a [u8],
    /// Room for output data (0: do not copy data out).
    pub data_out_len: usize,
    /// Context input (e.g. `struct xdp_md`), if any.
    pub ctx_in: Option<&'a [u8]>,
    /// Room for the output context (0: do not copy it out).
    pub ctx_out_len: usize,
    /// Number of runs (0 is treated as 1 by the kernel).
    pub repeat: u32,
    /// `BPF_F_TEST_RUN_ON_CPU` etc.
    pub flags: u32,
    /// CPU for `BPF_F_TEST_RUN_ON_CPU`.
    pub cpu: u32,
}

/// Results of `BPF_PROG_TEST_RUN`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestRunOut {
    /// The program's return value (`retval`).
    pub retval: u32,
    /// Average run time in ns (`duration`).
    pub duration_ns: u32,
    /// Output data, trimmed to `data_size_out`.
    pub data_out: Vec<u8>,
    /// Output context, trimmed to `ctx_size_out`.
    pub ctx_out: Vec<u8>,
}

/// `BPF_PROG_TEST_RUN`.
pub fn prog_test_run(fd: BorrowedFd<'_>, args: &TestRunArgs<'_>) -> Result<TestRunOut, Errno> {
    let mut data_out = vec![0u8; args.data_out_len];
    let mut ctx_out = vec![0u8; args.ctx_out_len];
    let ctx_in = args.ctx_in.unwrap_or(&[]);
    let mut attr = TestRunBlock {
        prog_fd: fd.as_raw_fd() as u32,
        data_size_in: u32::try_from(args.data_in.len()).map_err(|_| Errno::E2BIG)?,
        data_size_out: data_out.len() as u32,
        data_in: slice_addr(args.data_in),
        data_out: mut_addr(&mut data_out),
        repeat: args.repeat,
        ctx_size_in: u32::try_from(ctx_in.len()).map_err(|_| Errno::E2BIG)?,
        ctx_size_out: ctx_out.len() as u32,
        ctx_in: slice_addr(ctx_in),
        ctx_out: mut_addr(&mut ctx_out),
        flags: args.flags,
        cpu: args.cpu,
        ..Default::default()
    };
    // SAFETY: the kernel reads data_size_in/ctx_size_in bytes from the input slices and
    // writes at most data_size_out/ctx_size_out bytes into the output vectors, all of
    // exactly those lengths and alive across the call.
    unsafe { sys_bpf(BPF_PROG_TEST_RUN, &mut attr) }?;
    data_out.truncate(attr.data_size_out as usize);
    ctx_out.truncate(attr.ctx_size_out as usize);
    Ok(TestRunOut {
        retval: attr.retval,
        duration_ns: attr.duration,
        data_out,
        ctx_out,
    })
}

/// `union bpf_attr` for `BPF_LINK_CREATE` of a device hook (tcx, XDP): the `tcx` member
/// (its relative fd and expected revision stay zero, which XDP links also require).
#[repr(C)]
#[derive(Default)]
struct LinkCreateDevBlock {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}
// SAFETY: repr(C), integers only, explicit padding (size asserted below).
unsafe impl BpfAttr for LinkCreateDevBlock {}
const _: () = assert!(std::mem::size_of::<LinkCreateDevBlock>() == 32);

/// `BPF_LINK_CREATE` attaching `prog` to device `ifindex` (in the calling thread's network
/// namespace) at `attach_type` (`BPF_TCX_INGRESS`, `BPF_TCX_EGRESS`, `BPF_XDP`) with
/// `flags` (`BPF_F_BEFORE` for tcx; `XDP_FLAGS_*` for XDP). The link (and the attachment)
/// lives as long as the returned fd or a pin of it.
pub fn link_create_dev(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> Result<OwnedFd, Errno> {
    let mut attr = LinkCreateDevBlock {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type,
        flags,
        ..Default::default()
    };
    // SAFETY: the block carries no addresses.
    let ret = unsafe { sys_bpf(BPF_LINK_CREATE, &mut attr) }?;
    owned_fd(ret)
}

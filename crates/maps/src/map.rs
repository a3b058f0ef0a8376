//! The map object: the user-space element operations (the `BPF_MAP_*_ELEM` commands) with
//! their exact errno semantics — lookups, deletes and key walks here, updates in `update`;
//! the `bpftool map show` summary and memory accounting in `info`. Creation is
//! [`Map::create`].
//!
//! A [`Map`] is a reference-counted handle (`Arc`) on a [`MapInner`], which owns the raw
//! allocation programs see (see [`crate::layout`]). Map-of-maps slots hold raw inner map
//! pointers and one strong reference each; a reference dropped by a swap or delete is released
//! through the epoch collector, so an inner map outlives every program run that could still
//! hold its pointer.

use std::alloc::Layout;
use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

mod info;
mod lpm_trie;
mod perf_event;
mod update;
mod walk;

pub use info::MapInfo;

use crate::attr::err;
use crate::btf::BtfObject;
use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::htab::Htab;
use crate::layout::{
    BpfMap, copy_percpu_out, free_percpu, release_inner_deferred, release_inner_now,
};
use crate::lpm_trie::LpmTrie;
use crate::meta::{InnerMapMeta, MapDesc};
use crate::queue::QueueStack;
use crate::ringbuf::Ringbuf;
use crate::uapi::*;

static LIVE_MAPS: AtomicUsize = AtomicUsize::new(0);

/// Counts a map object from its creation; [`MapInner`]'s `Drop` un-counts it.
pub(crate) fn count_live_map() {
    LIVE_MAPS.fetch_add(1, Ordering::SeqCst);
}

/// Number of map objects currently allocated in this process (created and not yet freed).
/// Inner maps dropped from an outer map are counted until the epoch collector frees them.
pub fn live_maps() -> usize {
    LIVE_MAPS.load(Ordering::SeqCst)
}

/// A program handle stored in a PROG_ARRAY slot: the caller's id and the pointer programs'
/// tail calls will read from the slot, plus an optional keep-alive object.
#[derive(Clone)]
pub struct ProgRef {
    /// Program id, returned by user-space lookups.
    pub id: u32,
    /// `BPF_PROG_TYPE_*`: a PROG_ARRAY only holds programs of one type (its owner's).
    pub prog_type: u32,
    /// Opaque pointer stored in the slot (what `bpf_tail_call` reads); must be non-null.
    pub ptr: usize,
    /// Dropped (through the epoch collector) when the slot is cleared or replaced.
    pub keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for ProgRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgRef")
            .field("id", &self.id)
            .field("prog_type", &self.prog_type)
            .field("ptr", &format_args!("{:#x}", self.ptr))
            .finish()
    }
}

/// What a file descriptor resolves to, for values written into fd maps.
#[derive(Clone, Debug)]
pub enum FdObject {
    /// A BPF map.
    Map(Map),
    /// A BPF program.
    Prog(ProgRef),
    /// Any other open file (stdin, /dev/null, …): not a map → EINVAL.
    Other,
}

/// Type-specific storage.
pub(crate) enum Storage {
    /// Array family: one allocation of header + `slots * elem_size`.
    Array {
        layout: Layout,
        /// Entries allocated (max_entries, or the power of two above it without bypass_spec_v1).
        slots: u32,
        /// PROG_ARRAY: the handles behind the slot pointers.
        progs: Option<parking_lot::Mutex<Vec<Option<ProgRef>>>>,
    },
    /// Hash family.
    Htab(Htab),
    /// QUEUE / STACK; the raw allocation is a bare `BpfMap` header from a `Box`.
    QueueStack(QueueStack),
    /// RINGBUF; the raw allocation is a bare `BpfMap` header from a `Box`.
    Ringbuf(Ringbuf),
    /// LPM_TRIE; the raw allocation is the trie's `BpfLpmTrie` header.
    LpmTrie(LpmTrie),
    /// Maps of kernel objects kbpf does not have (sockets, AF_XDP sockets, socket-local
    /// storage: [`crate::sock_maps`]; kernel stacks: [`crate::stack_trace`]): created with
    /// the kernel's checks, typed by the verifier, no elements. The raw allocation is a bare `BpfMap` header from a `Box`, or,
    /// with a `layout` (XSKMAP), the header and the map's NULL socket pointers.
    Sockets {
        /// The XSKMAP's allocation.
        layout: Option<Layout>,
    },
    /// DEVMAP, DEVMAP_HASH, CPUMAP ([`crate::devmap`]); the raw allocation is a bare `BpfMap`
    /// header from a `Box`.
    Redirect(crate::devmap::RedirectMap),
}

/// The object behind a [`Map`] handle.
pub struct MapInner {
    /// The attributes every type shares (the object dereferences to them).
    pub(crate) def: MapDef,
    pub(crate) raw: NonNull<BpfMap>,
    pub(crate) storage: Storage,
    pub(crate) meta: Option<InnerMapMeta>,
    /// PROG_ARRAY owner program type (0 until the first program is stored or checked).
    pub(crate) prog_owner_type: AtomicU32,
    /// PERF_EVENT_ARRAY: the events readers installed ([`crate::perf_event`]).
    pub(crate) perf: Option<crate::perf_event::PerfSlots>,
    /// `BPF_MAP_FREEZE` was done: user space may no longer write.
    pub(crate) frozen: std::sync::atomic::AtomicBool,
    /// The BTF object and type ids (`map->btf`, `btf_key_type_id`, `btf_value_type_id`).
    pub(crate) btf: Option<(BtfObject, u32, u32)>,
}

impl std::ops::Deref for MapInner {
    type Target = MapDef;
    fn deref(&self) -> &MapDef {
        &self.def
    }
}

// SAFETY: the raw allocation is only mutated through atomics, bucket locks, or byte copies that
// BPF semantics allow to race (program-visible values, as in the kernel); all Rust-side state is
// immutable after creation or behind locks.
unsafe impl Send for MapInner {}
// SAFETY: see the Send impl.
unsafe impl Sync for MapInner {}

/// A reference-counted handle on a BPF map.
#[derive(Clone)]
pub struct Map(pub(crate) Arc<MapInner>);

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Map {{ id: {}, name: {:?}, type: {}, key: {}, value: {}, max_entries: {}, flags: {:#x} }}",
            self.0.id,
            self.0.name,
            self.0.map_type,
            self.0.key_size,
            self.0.value_size,
            self.0.max_entries,
            self.0.map_flags
        )
    }
}

impl Map {
    /// Reconstructs a handle from a raw map pointer (taking a new strong reference).
    ///
    /// # Safety
    /// `ptr` must be the raw pointer of a map that is alive for the duration of the call, e.g.
    /// one read from an outer map slot under an epoch guard.
    pub unsafe fn from_raw_ptr(ptr: *const c_void) -> Map {
        // SAFETY: per the contract `ptr` is a live BpfMap whose owner was set at creation from
        // Arc::as_ptr and is kept alive by some strong reference.
        unsafe {
            let owner = (*(ptr as *const BpfMap)).owner as *const MapInner;
            Arc::increment_strong_count(owner);
            Map(Arc::from_raw(owner))
        }
    }

    /// Where this array's values start from [`Map::as_ptr`] (the kernel profile's
    /// `offsetof(struct bpf_array, value)`): `BPF_PSEUDO_MAP_VALUE` addresses and inlined
    /// lookups add it.
    pub fn value_off(&self) -> u32 {
        self.0.profile.bpf_array_value_off
    }

    /// The raw map pointer programs use (`ld_imm64` of this map yields it).
    pub fn as_ptr(&self) -> *mut c_void {
        self.0.raw.as_ptr() as *mut c_void
    }
    /// Map id (global, monotonic, starting at 1).
    pub fn id(&self) -> u32 {
        self.0.id
    }
    /// Map name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// Map type.
    pub fn map_type(&self) -> MapType {
        self.0.map_type
    }
    /// Key size.
    pub fn key_size(&self) -> u32 {
        self.0.key_size
    }
    /// Value size as created (4 for fd maps).
    pub fn value_size(&self) -> u32 {
        self.0.value_size
    }
    /// Max entries (rounded for per-CPU LRU lists, as the kernel does).
    pub fn max_entries(&self) -> u32 {
        self.0.max_entries
    }
    /// Permanent flags (RDONLY/WRONLY stripped).
    pub fn map_flags(&self) -> u32 {
        self.0.map_flags
    }
    /// CPU count of per-CPU storage.
    pub fn nr_cpus(&self) -> u32 {
        self.0.nr_cpus
    }
    /// The `inner_map_meta` of a map-of-maps.
    pub fn inner_map_meta(&self) -> Option<&InnerMapMeta> {
        self.0.meta.as_ref()
    }
    /// Two handles on the same map object.
    pub fn ptr_eq(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The fields the verifier and `gen_lookup` need.
    pub fn desc(&self) -> MapDesc {
        let m = &self.0;
        MapDesc {
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            elem_size: m.elem_size,
            index_mask: m.index_mask,
            bypass_spec_v1: m.bypass_spec_v1,
            value_off: if m.map_type.raw() == crate::sock_maps::BPF_MAP_TYPE_XSKMAP {
                m.profile.xsk_map_ptrs_off
            } else {
                m.profile.bpf_array_value_off
            },
        }
    }

    /// Byte count of a value as user space reads/writes it: `round_up(value_size, 8) * nr_cpus`
    /// for per-CPU maps, 4 for fd maps, `value_size` otherwise.
    pub fn user_value_size(&self) -> usize {
        let m = &self.0;
        if m.map_type.is_percpu() {
            (round_up8(m.value_size) * m.nr_cpus as u64) as usize
        } else {
            m.value_size as usize
        }
    }

    /// The map's BTF object with its key and value type ids, if it was created with BTF.
    pub fn btf(&self) -> Option<(&BtfObject, u32, u32)> {
        self.0.btf.as_ref().map(|(b, k, v)| (b, *k, *v))
    }

    fn e(&self, errno: Errno, detail: impl Into<String>) -> MapError {
        err(&self.0.name, errno, detail)
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.0.key_size as usize {
            return Err(self.e(
                Errno::EINVAL,
                format!(
                    "key is {} bytes, key size is {}",
                    key.len(),
                    self.0.key_size
                ),
            ));
        }
        Ok(())
    }

    fn array_index(&self, key: &[u8]) -> Result<u32, MapError> {
        self.check_key(key)?;
        Ok(u32::from_ne_bytes([key[0], key[1], key[2], key[3]]))
    }

    /// Address of the value of plain array slot `idx` (caller checks `idx < slots`). Pointer
    /// slots (per-CPU, fd arrays) go through [`Self::slot_ptr`].
    fn array_slot(&self, idx: u32) -> *mut u8 {
        // SAFETY: callers bound idx by the allocated slot count, so the offset stays inside the
        // allocation made in alloc_array.
        unsafe {
            (self.0.raw.as_ptr() as *mut u8).add(
                self.0.profile.bpf_array_value_off as usize
                    + idx as usize * self.0.elem_size as usize,
            )
        }
    }

    /// The 8-byte pointer slot `idx` of a per-CPU array (`bpf_array::pptrs`) or an fd array
    /// (`bpf_array::ptrs`). Its stride is always 8: a per-CPU array's `elem_size` is the
    /// rounded *value* size, the size of each CPU's copy, not of the slot that points at them.
    fn slot_ptr(&self, idx: u32) -> &AtomicPtr<c_void> {
        // SAFETY: callers bound idx by the slot count; the pointer area holds slots * 8 bytes
        // after the header (alloc_array), 8-aligned (the header size is a multiple of 8), and
        // slots are only ever accessed atomically.
        unsafe {
            &*((self.0.raw.as_ptr() as *mut u8)
                .add(self.0.profile.bpf_array_value_off as usize + idx as usize * 8)
                as *const AtomicPtr<c_void>)
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM` with no flags.
    pub fn lookup_elem(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        self.lookup_elem_flags(key, 0)
    }

    /// `BPF_MAP_LOOKUP_ELEM`: the value bytes ([`Map::user_value_size`] of them). Map-of-maps
    /// return the inner map's id, PROG_ARRAY the program's id (4 bytes, native endian).
    pub fn lookup_elem_flags(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        if flags & !BPF_F_LOCK != 0 {
            return Err(self.e(Errno::EINVAL, format!("lookup flags {flags:#x}")));
        }
        if flags & BPF_F_LOCK != 0 {
            return Err(self.e(Errno::EINVAL, "BPF_F_LOCK on a map without bpf_spin_lock"));
        }
        let m = &self.0;
        if let Some(r) = m.redirect_map() {
            self.check_key(key)?;
            return r
                .lookup_user(m, key_u32(key))
                .map_err(|(e, w)| self.e(e, w));
        }
        match m.map_type {
            MapType::Queue | MapType::Stack => {
                self.check_key(key)?;
                self.queue()?.get(&m.name, false)
            }
            MapType::Ringbuf => {
                self.check_key(key)?;
                Err(self.ringbuf_unsupported("lookup"))
            }
            MapType::LpmTrie => {
                self.check_key(key)?;
                self.0.lpm_trie()?.lookup_user(m, key)
            }
            MapType::Array => {
                let idx = self.array_index(key)?;
                if idx >= m.max_entries {
                    return Err(self.e(
                        Errno::ENOENT,
                        format!("index {idx} >= max_entries {}", m.max_entries),
                    ));
                }
                let mut v = vec![0u8; m.value_size as usize];
                // SAFETY: idx < max_entries <= slots; the slot holds value_size readable bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(self.array_slot(idx), v.as_mut_ptr(), v.len())
                };
                Ok(v)
            }
            MapType::PercpuArray => {
                let idx = self.array_index(key)?;
                if idx >= m.max_entries {
                    return Err(self.e(
                        Errno::ENOENT,
                        format!("index {idx} >= max_entries {}", m.max_entries),
                    ));
                }
                let p = self.slot_ptr(idx).load(Ordering::Acquire);
                Ok(copy_percpu_out(p, m.nr_cpus, m.value_size))
            }
            MapType::ArrayOfMaps
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::CgroupArray => {
                if matches!(m.map_type, MapType::PerfEventArray | MapType::CgroupArray) {
                    return Err(self.e(
                        Errno::ENOTSUPP,
                        format!("{} has no user-space lookup", m.map_type),
                    ));
                }
                let idx = self.array_index(key)?;
                if idx >= m.max_entries {
                    return Err(self.e(
                        Errno::ENOENT,
                        format!("index {idx} >= max_entries {}", m.max_entries),
                    ));
                }
                let _guard = crossbeam_epoch::pin();
                let p = self.slot_ptr(idx).load(Ordering::Acquire);
                if p.is_null() {
                    return Err(self.e(Errno::ENOENT, format!("slot {idx} is empty")));
                }
                let id = if m.map_type == MapType::ArrayOfMaps {
                    // SAFETY: a non-null AoM slot holds a live map (its reference is dropped only
                    // through the epoch, and we are pinned).
                    unsafe { (*(p as *const BpfMap)).id }
                } else {
                    self.prog_slots()
                        .and_then(|v| v.lock().get(idx as usize).cloned().flatten())
                        .map(|p| p.id)
                        .ok_or_else(|| self.e(Errno::ENOENT, format!("slot {idx} is empty")))?
                };
                Ok(id.to_ne_bytes().to_vec())
            }
            _ => {
                self.check_key(key)?;
                self.htab()?.lookup_user(&self.0, key)
            }
        }
    }

    fn htab(&self) -> Result<&Htab, MapError> {
        self.0
            .htab()
            .ok_or_else(|| self.e(Errno::EINVAL, "hash operation on an array map"))
    }

    fn queue(&self) -> Result<&QueueStack, MapError> {
        self.0
            .queue()
            .ok_or_else(|| self.e(Errno::EINVAL, "queue operation on another map type"))
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pops QUEUE/STACK (key empty, flags 0), or removes a
    /// hash element returning its value; ENOTSUPP for the other types, as the kernel.
    pub fn lookup_and_delete_elem(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        // map_lookup_and_delete_elem's order: unknown flags, then access, then the rest.
        if flags & !BPF_F_LOCK != 0 {
            return Err(self.e(Errno::EINVAL, format!("flags {flags:#x}")));
        }
        self.check_writable()?;
        let m = &self.0;
        if flags != 0 && m.map_type.is_queue_stack() {
            return Err(self.e(Errno::EINVAL, format!("flags {flags:#x} on {}", m.map_type)));
        }
        if flags & BPF_F_LOCK != 0 {
            return Err(self.e(Errno::EINVAL, "BPF_F_LOCK on a map without bpf_spin_lock"));
        }
        self.check_key(key)?;
        match m.map_type {
            MapType::Queue | MapType::Stack => self.queue()?.get(&m.name, true),
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
                if flags != 0 {
                    return Err(self.e(Errno::EINVAL, format!("flags {flags:#x}")));
                }
                self.htab()?.lookup_and_delete(m, key)
            }
            t => Err(self.e(Errno::ENOTSUPP, format!("{t} has no lookup_and_delete"))),
        }
    }

    fn prog_slots(&self) -> Option<&parking_lot::Mutex<Vec<Option<ProgRef>>>> {
        match &self.0.storage {
            Storage::Array { progs, .. } => progs.as_ref(),
            Storage::Htab(_)
            | Storage::QueueStack(_)
            | Storage::Ringbuf(_)
            | Storage::LpmTrie(_)
            | Storage::Sockets { .. }
            | Storage::Redirect(_) => None,
        }
    }

    /// `ringbuf_map_*_elem`: ring buffers have no elements user space can address.
    fn ringbuf_unsupported(&self, op: &str) -> MapError {
        self.e(
            Errno::ENOTSUPP,
            format!("ringbuf has no {op} (records are consumed from the ring)"),
        )
    }

    /// The ring of a RINGBUF map.
    fn ringbuf(&self) -> Result<&Ringbuf, MapError> {
        match &self.0.storage {
            Storage::Ringbuf(r) => Ok(r),
            _ => Err(self.e(
                Errno::EINVAL,
                format!("{} is not a ringbuf", self.0.map_type),
            )),
        }
    }

    /// `bpf_ringbuf_output` on a RINGBUF map: appends one record. EINVAL for flags other
    /// than `BPF_RB_NO_WAKEUP`/`BPF_RB_FORCE_WAKEUP` (or another map type), EAGAIN when the
    /// ring has no room for it.
    pub fn ringbuf_output(&self, data: &[u8], flags: u64) -> Result<(), MapError> {
        self.ringbuf()?
            .output(data, flags)
            .map_err(|errno| self.e(errno, format!("cannot output a {}-byte record", data.len())))
    }

    /// Consumes all committed records of a RINGBUF map in order (what a user-space consumer
    /// of the mmap-ed ring does), passing each payload to `f`; returns how many.
    pub fn ringbuf_consume(&self, f: impl FnMut(&[u8])) -> Result<usize, MapError> {
        Ok(self.ringbuf()?.consume(f))
    }

    /// Bytes produced and not yet consumed in a RINGBUF map (`BPF_RB_AVAIL_DATA`).
    pub fn ringbuf_avail_data(&self) -> Result<u64, MapError> {
        Ok(self.ringbuf()?.avail_data_sz())
    }

    /// `BPF_MAP_FREEZE`: from now on user space may only read (`EPERM` on writes), which is
    /// what lets the verifier treat a read-only map's contents as constants. Freezing a frozen
    /// map is `EPERM` too: `map_get_sys_perms` already strips write access from its fd, and
    /// that check comes before the `EBUSY` one (which only a racing freeze can reach).
    pub fn freeze(&self) -> Result<(), MapError> {
        self.check_writable()?;
        if self
            .0
            .frozen
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(self.e(Errno::EBUSY, "map already frozen"));
        }
        Ok(())
    }

    /// Whether [`Map::freeze`] was done.
    pub fn is_frozen(&self) -> bool {
        self.0.frozen.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn check_writable(&self) -> Result<(), MapError> {
        if self.is_frozen() {
            return Err(self.e(Errno::EPERM, "map is frozen"));
        }
        Ok(())
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn delete_elem(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_writable()?;
        let m = &self.0;
        if let Some(r) = m.redirect_map() {
            self.check_key(key)?;
            return r.delete(m, key_u32(key)).map_err(|(e, w)| self.e(e, w));
        }
        match m.map_type {
            MapType::Array | MapType::PercpuArray => {
                self.check_key(key)?;
                Err(self.e(Errno::EINVAL, "array elements cannot be deleted"))
            }
            MapType::Queue | MapType::Stack => {
                self.check_key(key)?;
                Err(self.e(
                    Errno::EINVAL,
                    format!("{} elements are popped, not deleted", m.map_type),
                ))
            }
            MapType::Ringbuf => {
                self.check_key(key)?;
                Err(self.ringbuf_unsupported("delete"))
            }
            MapType::LpmTrie => {
                self.check_key(key)?;
                self.0.lpm_trie()?.delete_user(m, key)
            }
            MapType::ArrayOfMaps
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::CgroupArray => {
                let idx = self.array_index(key)?;
                if idx >= m.max_entries {
                    return Err(self.e(
                        Errno::E2BIG,
                        format!("index {idx} >= max_entries {}", m.max_entries),
                    ));
                }
                if m.map_type == MapType::PerfEventArray {
                    return self.perf_event_delete(idx);
                }
                if m.map_type == MapType::ProgArray {
                    let Some(slots) = self.prog_slots() else {
                        return Err(self.e(Errno::ENOENT, format!("slot {idx} is empty")));
                    };
                    let mut slots = slots.lock();
                    self.slot_ptr(idx)
                        .store(std::ptr::null_mut(), Ordering::Release);
                    let old = slots[idx as usize].take();
                    drop(slots);
                    return match old {
                        Some(p) => {
                            drop_deferred(Some(p));
                            Ok(())
                        }
                        None => Err(self.e(Errno::ENOENT, format!("slot {idx} is empty"))),
                    };
                }
                let old = self
                    .slot_ptr(idx)
                    .swap(std::ptr::null_mut(), Ordering::AcqRel);
                if old.is_null() {
                    return Err(self.e(Errno::ENOENT, format!("slot {idx} is empty")));
                }
                release_inner_deferred(old);
                Ok(())
            }
            _ => {
                self.check_key(key)?;
                self.htab()?.delete(&self.0, key)
            }
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key`, or the first key when `key` is None or
    /// not in the map; ENOENT after the last.
    pub fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let m = &self.0;
        if let Some(k) = key {
            self.check_key(k)?;
        }
        if m.map_type.is_queue_stack() {
            return Err(self.e(Errno::EINVAL, format!("{} has no keys", m.map_type)));
        }
        if m.map_type == MapType::Ringbuf {
            return Err(self.ringbuf_unsupported("get_next_key"));
        }
        if m.map_type == MapType::LpmTrie {
            return self.0.lpm_trie()?.get_next_key_user(m, key);
        }
        if let Some(r) = m.redirect_map() {
            return r
                .get_next_key(m, key.map(key_u32))
                .map(|k| k.to_ne_bytes().to_vec())
                .map_err(|(e, w)| self.e(e, w));
        }
        if m.map_type.is_array_family() {
            // array_map_get_next_key: a NULL key counts as U32_MAX.
            let idx = key.map_or(u32::MAX, |k| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]));
            if idx >= m.max_entries {
                return Ok(0u32.to_ne_bytes().to_vec());
            }
            if idx == m.max_entries - 1 {
                return Err(self.e(Errno::ENOENT, "no key after the last index"));
            }
            return Ok((idx + 1).to_ne_bytes().to_vec());
        }
        self.htab()?.get_next_key(&self.0, key)
    }

    /// All keys in `get_next_key` order (what `bpftool map dump` walks); empty for maps
    /// without keys (queue, stack).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        if self.0.map_type.is_queue_stack() || self.0.map_type == MapType::Ringbuf {
            return out;
        }
        // Bounded: a concurrent writer could otherwise keep the walk going forever.
        let limit = self.0.max_entries as usize;
        while out.len() < limit {
            match self.get_next_key(out.last().map(|k| k.as_slice())) {
                Ok(k) => out.push(k),
                Err(_) => break,
            }
        }
        out
    }

    /// Number of elements of a hash map, LPM trie, queue or stack (0 for arrays).
    pub fn elem_count(&self) -> u32 {
        match &self.0.storage {
            Storage::Htab(h) => h.count(),
            Storage::QueueStack(q) => q.len() as u32,
            Storage::LpmTrie(t) => t.count(),
            Storage::Redirect(r) => r.count(),
            Storage::Array { .. } | Storage::Ringbuf(_) | Storage::Sockets { .. } => 0,
        }
    }
}

fn drop_deferred<T: Send + 'static>(v: Option<T>) {
    if let Some(v) = v {
        crossbeam_epoch::pin().defer(move || drop(v));
    }
}

/// A 4-byte key (checked by `check_key` first) as the u32 the redirect maps index by.
fn key_u32(k: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&k[..4]);
    u32::from_ne_bytes(w)
}

impl MapInner {
    /// The entries of a DEVMAP, DEVMAP_HASH or CPUMAP.
    pub(crate) fn redirect_map(&self) -> Option<&crate::devmap::RedirectMap> {
        match &self.storage {
            Storage::Redirect(r) => Some(r),
            _ => None,
        }
    }

    /// The hash table of a hash-family map.
    pub(crate) fn htab(&self) -> Option<&Htab> {
        match &self.storage {
            Storage::Htab(h) => Some(h),
            Storage::Array { .. }
            | Storage::QueueStack(_)
            | Storage::Ringbuf(_)
            | Storage::LpmTrie(_)
            | Storage::Sockets { .. }
            | Storage::Redirect(_) => None,
        }
    }

    /// The element store of a QUEUE or STACK.
    pub(crate) fn queue(&self) -> Option<&QueueStack> {
        match &self.storage {
            Storage::QueueStack(q) => Some(q),
            _ => None,
        }
    }
}

impl Drop for MapInner {
    fn drop(&mut self) {
        match &self.storage {
            Storage::Array { layout, slots, .. } => {
                let base = self.raw.as_ptr() as *mut u8;
                let value_off = self.profile.bpf_array_value_off as usize;
                if layout.size() < value_off {
                    // Creation failed before the array was allocated.
                    LIVE_MAPS.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                if matches!(self.map_type, MapType::PercpuArray | MapType::ArrayOfMaps) {
                    for i in 0..*slots as usize {
                        // SAFETY: slot i lies inside the allocation; pointer slots are 8 bytes.
                        let p =
                            unsafe { (base.add(value_off + i * 8) as *const *mut c_void).read() };
                        if p.is_null() {
                            continue;
                        }
                        if self.map_type == MapType::PercpuArray {
                            // SAFETY: the block came from alloc_percpu and is freed once.
                            unsafe { free_percpu(p as *mut u8) }
                        } else {
                            // SAFETY: the slot owns one reference; the outer map is being freed,
                            // so no program can read the slot any more.
                            unsafe { release_inner_now(p) }
                        }
                    }
                }
                // SAFETY: base was allocated with this layout in alloc_array. Debug builds
                // poison freed maps so a reader that wrongly outlived one sees garbage (the
                // stress tests check every value they read).
                unsafe {
                    if cfg!(debug_assertions) {
                        std::ptr::write_bytes(base, 0xa5, layout.size());
                    }
                    std::alloc::dealloc(base, *layout)
                };
            }
            Storage::Htab(h) => h.free_all(self.map_type),
            Storage::LpmTrie(t) => t.free_all(),
            // SAFETY: the XSKMAP's block came from alloc_zeroed with this layout in
            // alloc_xsk_map and is freed once; it holds no references (all NULL).
            Storage::Sockets {
                layout: Some(layout),
            } => unsafe { std::alloc::dealloc(self.raw.as_ptr() as *mut u8, *layout) },
            // SAFETY: the header came from Box::leak in create_with and is freed once.
            Storage::QueueStack(_)
            | Storage::Ringbuf(_)
            | Storage::Sockets { layout: None }
            | Storage::Redirect(_) => unsafe { drop(Box::from_raw(self.raw.as_ptr())) },
        }
        LIVE_MAPS.fetch_sub(1, Ordering::SeqCst);
    }
}

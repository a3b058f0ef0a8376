//! The hash family (HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, HASH_OF_MAPS), after
//! `kernel/bpf/hashtab.c`.
//!
//! A fixed array of `roundup_pow_of_two(max_entries)` buckets, each a singly linked chain with
//! its own lock. Readers (program lookups, user lookups) walk chains without locks inside an
//! epoch guard; writers take the bucket lock. Elements never move: an update of an existing key
//! allocates a new element, links it at the head of the bucket and unlinks the old one, which
//! is freed only when no guard that could have seen it remains — so a reader sees the old or
//! the new value, never a torn one (the kernel's prealloc path does the same with RCU).
//! Per-CPU hashes update values in place, as the kernel's `pcpu_copy_value` does, and
//! HASH_OF_MAPS swaps the inner map pointer in place (`htab_map_update_elem_in_place`); both
//! keep the element's position in its bucket, which `get_next_key` order reveals.
//!
//! **LRU approximation.** The kernel keeps active/inactive lists (global, or per CPU with
//! `BPF_F_NO_COMMON_LRU`) and rotates elements whose `ref` bit programs set on lookup. Here one
//! FIFO queue in insertion order is scanned with second-chance: an element with `ref` set is
//! given its bit back cleared and re-queued, the first element without it is evicted. Like the
//! kernel, an update that needs a fresh element evicts before looking the key up, so an update
//! of a full LRU map may evict another key even when it replaces, and never fails with E2BIG.

use std::alloc::Layout;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::jhash::htab_map_hash;
use crate::layout::{
    BpfHtab, BpfMap, Bucket, HtabElem, alloc_percpu, current_cpu, free_percpu, per_cpu_ptr,
};
use crate::layout::{copy_percpu_in, copy_percpu_out, release_inner_deferred, release_inner_now};
use crate::uapi::*;

mod lookup;
pub use lookup::MAX_SPECIALISED_WORDS;
pub(crate) use lookup::htab_lookup_raw;

/// `HASHTAB_MAP_LOCK_COUNT`.
pub const HASHTAB_MAP_LOCK_COUNT: u64 = 8;
/// `sizeof(struct llist_node)`.
pub const LLIST_NODE_SZ: u64 = 8;

/// Where a written value comes from.
pub(crate) enum ValueSrc<'a> {
    /// User space: for per-CPU maps, all CPUs' values (each rounded up to 8 bytes).
    User(&'a [u8]),
    /// A program: for per-CPU maps, only the current CPU's value.
    Prog(&'a [u8]),
    /// HASH_OF_MAPS: an inner map pointer carrying one strong reference.
    Inner(*mut c_void),
}

#[derive(Clone, Copy)]
enum ElemKind {
    Plain,
    Percpu,
    Inner,
}

/// What freeing an element needs, copied into deferred closures (they never touch the map).
#[derive(Clone, Copy)]
struct ElemFree {
    layout: Layout,
    value_off: usize,
    kind: ElemKind,
}

struct SendElem(*mut HtabElem);
// SAFETY: an unlinked element is owned by its deferred free alone.
unsafe impl Send for SendElem {}

struct LruEntry {
    hash: u32,
    seq: u64,
    key: Box<[u8]>,
}

/// Rust-side state of a hash map.
pub(crate) struct Htab {
    hdr: NonNull<BpfHtab>,
    buckets: Box<[Bucket]>,
    count: AtomicU32,
    seq: AtomicU64,
    lru: Option<parking_lot::Mutex<VecDeque<LruEntry>>>,
    free: ElemFree,
    elem_size: u32,
    n_buckets: u32,
    hashrnd: u32,
}

fn seed() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// Lock-free chain walk: the element with `hash` and `key`, or null (`lookup_elem_raw`).
///
/// # Safety
/// The caller must hold an epoch guard (or the bucket lock) for as long as it uses the result,
/// and `bucket` must belong to a live map with `key_size == key.len()`.
pub(super) unsafe fn lookup_elem_raw(bucket: &Bucket, hash: u32, key: &[u8]) -> *mut HtabElem {
    let mut e = bucket.head.load(Ordering::Acquire);
    while !e.is_null() {
        // SAFETY: e is a linked element, alive while the guard is held; its key has key.len()
        // bytes at offset 48.
        unsafe {
            if (*e).hash == hash {
                let k =
                    std::slice::from_raw_parts((e as *const u8).add(HTAB_ELEM_KEY_OFF), key.len());
                if k == key {
                    return e;
                }
            }
            e = (*e).next.load(Ordering::Acquire);
        }
    }
    std::ptr::null_mut()
}

/// Frees an unlinked element and what its value owns.
///
/// # Safety
/// `e` must be unlinked and unreachable by any reader; it is freed exactly once.
unsafe fn free_elem(e: *mut HtabElem, f: ElemFree) {
    // SAFETY: per the contract we own e; its value slot holds what `kind` says.
    unsafe {
        let v = (e as *mut u8).add(f.value_off) as *mut *mut c_void;
        match f.kind {
            ElemKind::Plain => {}
            ElemKind::Percpu => {
                let p = v.read();
                if !p.is_null() {
                    free_percpu(p as *mut u8);
                }
            }
            ElemKind::Inner => {
                let p = v.read();
                if !p.is_null() {
                    release_inner_now(p);
                }
            }
        }
        if cfg!(debug_assertions) {
            // Poison: a reader that outlived the element would see a torn value.
            std::ptr::write_bytes(e as *mut u8, 0xa5, f.layout.size());
        }
        std::alloc::dealloc(e as *mut u8, f.layout);
    }
}

fn err(m: &MapDef, errno: Errno, detail: impl Into<String>) -> MapError {
    MapError::new(&m.name, errno, detail)
}

impl Htab {
    /// `htab_map_alloc`: header, bucket array, seed.
    pub(crate) fn alloc(m: &MapDef, header: BpfMap) -> Result<Htab, MapError> {
        let t = m.map_type;
        if m.max_entries > 1 << 31 {
            return Err(err(
                m,
                Errno::E2BIG,
                format!("max_entries {} > 2^31", m.max_entries),
            ));
        }
        let n_buckets = m.max_entries.next_power_of_two();
        if n_buckets as u64 > u32::MAX as u64 / m.profile.sizeof_htab_bucket.max(1) as u64 {
            return Err(err(
                m,
                Errno::E2BIG,
                format!("{n_buckets} buckets overflow u32"),
            ));
        }
        let rk = round_up8(m.key_size);
        let value_part = if t.is_percpu() || t == MapType::HashOfMaps {
            8
        } else {
            round_up8(m.value_size)
        };
        // The kernel's elem_size for HASH_OF_MAPS is round_up(4, 8) = 8: the pointer fits.
        let elem_size = HTAB_ELEM_KEY_OFF as u64 + rk + value_part;
        let layout = usize::try_from(elem_size)
            .ok()
            .and_then(|s| Layout::from_size_align(s, 8).ok())
            .ok_or_else(|| err(m, Errno::E2BIG, "element too large"))?;
        let mut buckets = Vec::new();
        buckets.try_reserve_exact(n_buckets as usize).map_err(|_| {
            err(
                m,
                Errno::ENOMEM,
                format!("cannot allocate {n_buckets} buckets"),
            )
        })?;
        buckets.extend((0..n_buckets).map(|_| Bucket {
            head: AtomicPtr::new(std::ptr::null_mut()),
            lock: parking_lot::Mutex::new(()),
        }));
        let buckets = buckets.into_boxed_slice();
        let hashrnd = if m.map_flags & BPF_F_ZERO_SEED != 0 {
            0
        } else {
            seed()
        };
        let hdr = Box::new(BpfHtab {
            map: header,
            buckets: buckets.as_ptr(),
            n_buckets,
            hashrnd,
            elem_size: elem_size as u32,
            _pad: 0,
        });
        let kind = if t.is_percpu() {
            ElemKind::Percpu
        } else if t == MapType::HashOfMaps {
            ElemKind::Inner
        } else {
            ElemKind::Plain
        };
        Ok(Htab {
            hdr: NonNull::from(Box::leak(hdr)),
            buckets,
            count: AtomicU32::new(0),
            seq: AtomicU64::new(1),
            lru: t.is_lru().then(|| parking_lot::Mutex::new(VecDeque::new())),
            free: ElemFree {
                layout,
                value_off: HTAB_ELEM_KEY_OFF + rk as usize,
                kind,
            },
            elem_size: elem_size as u32,
            n_buckets,
            hashrnd,
        })
    }

    /// The raw map pointer (the header starts with `BpfMap`).
    pub(crate) fn header_ptr(&self) -> NonNull<BpfMap> {
        self.hdr.cast()
    }

    pub(crate) fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    fn bucket(&self, hash: u32) -> &Bucket {
        &self.buckets[(hash & (self.n_buckets - 1)) as usize]
    }

    fn value_ptr(&self, e: *mut HtabElem) -> *mut u8 {
        // SAFETY: every element allocation is elem_size bytes, value_off < elem_size.
        unsafe { (e as *mut u8).add(self.free.value_off) }
    }

    fn key_of(&self, e: *mut HtabElem, key_size: u32) -> Vec<u8> {
        // SAFETY: the element is alive (caller is pinned) and holds key_size key bytes at 48.
        unsafe {
            std::slice::from_raw_parts((e as *const u8).add(HTAB_ELEM_KEY_OFF), key_size as usize)
                .to_vec()
        }
    }

    /// `htab_map_mem_usage`.
    pub(crate) fn mem_usage(&self, m: &MapDef) -> u64 {
        let t = m.map_type;
        let cpus = m.nr_cpus as u64;
        let value_size = round_up8(m.value_size);
        let percpu = t.is_percpu();
        let lru = t.is_lru();
        let prealloc = m.map_flags & BPF_F_NO_PREALLOC == 0;
        let elem_size = self.elem_size as u64;
        // sizeof(struct bpf_htab) depends on the build's config (832 and 896 on two 6.18.44
        // builds): the map's kernel profile says which.
        let mut usage = m.profile.sizeof_bpf_htab as u64;
        usage += m.profile.sizeof_htab_bucket as u64 * self.n_buckets as u64;
        usage += 4 * cpus * HASHTAB_MAP_LOCK_COUNT;
        if prealloc {
            let mut n = m.max_entries as u64;
            // htab_has_extra_elems: one spare element per CPU for plain hashes.
            if !percpu && !lru && t != MapType::HashOfMaps {
                n += cpus;
            }
            usage += elem_size * n;
            if percpu {
                usage += value_size * cpus * n;
            } else if !lru {
                usage += 8 * cpus;
            }
        } else {
            let n = self.count() as u64;
            usage += (elem_size + LLIST_NODE_SZ) * n;
            if percpu {
                usage += (LLIST_NODE_SZ + 8) * n;
                usage += value_size * cpus * n;
            }
        }
        usage
    }

    /// User-space lookup: the value bytes (per-CPU: all CPUs; HASH_OF_MAPS: the inner id).
    pub(crate) fn lookup_user(&self, m: &MapDef, key: &[u8]) -> Result<Vec<u8>, MapError> {
        let _guard = crossbeam_epoch::pin();
        let hash = htab_map_hash(key, self.hashrnd);
        // SAFETY: pinned; key has key_size bytes (checked by the caller).
        let e = unsafe { lookup_elem_raw(self.bucket(hash), hash, key) };
        if e.is_null() {
            return Err(err(m, Errno::ENOENT, "no such key"));
        }
        let v = self.value_ptr(e);
        // SAFETY: e stays alive while pinned; the value slot has the layout its kind says.
        unsafe {
            match self.free.kind {
                ElemKind::Plain => {
                    Ok(std::slice::from_raw_parts(v, m.value_size as usize).to_vec())
                }
                ElemKind::Percpu => {
                    let p = (v as *const *mut c_void).read();
                    Ok(copy_percpu_out(p, m.nr_cpus, m.value_size))
                }
                ElemKind::Inner => {
                    let p = (v as *const *const BpfMap).read();
                    Ok((*p).id.to_ne_bytes().to_vec())
                }
            }
        }
    }

    /// Allocates an element for `key` holding `src`.
    fn alloc_elem(
        &self,
        m: &MapDef,
        hash: u32,
        key: &[u8],
        src: &ValueSrc<'_>,
    ) -> Result<*mut HtabElem, MapError> {
        // SAFETY: the layout is non-zero sized (>= 56 bytes).
        let e = unsafe { std::alloc::alloc_zeroed(self.free.layout) } as *mut HtabElem;
        if e.is_null() {
            return Err(err(m, Errno::ENOMEM, "cannot allocate element"));
        }
        let v = self.value_ptr(e);
        // SAFETY: e is a fresh zeroed allocation of elem_size bytes; key and value slots lie
        // inside it.
        unsafe {
            (*e).hash = hash;
            (*e).lru_seq = self.seq.fetch_add(1, Ordering::Relaxed);
            std::ptr::copy_nonoverlapping(
                key.as_ptr(),
                (e as *mut u8).add(HTAB_ELEM_KEY_OFF),
                key.len(),
            );
            match (self.free.kind, src) {
                (ElemKind::Plain, ValueSrc::User(b) | ValueSrc::Prog(b)) => {
                    std::ptr::copy_nonoverlapping(
                        b.as_ptr(),
                        v,
                        (m.value_size as usize).min(b.len()),
                    );
                }
                (ElemKind::Percpu, ValueSrc::User(b) | ValueSrc::Prog(b)) => {
                    let Some(p) = alloc_percpu(m.nr_cpus, round_up8(m.value_size)) else {
                        std::alloc::dealloc(e as *mut u8, self.free.layout);
                        return Err(err(m, Errno::ENOMEM, "cannot allocate per-CPU value"));
                    };
                    self.write_percpu(m, p as *mut c_void, src, b);
                    (v as *mut *mut u8).write(p);
                }
                (ElemKind::Inner, ValueSrc::Inner(p)) => {
                    (v as *mut *mut c_void).write(*p);
                }
                _ => {
                    std::alloc::dealloc(e as *mut u8, self.free.layout);
                    return Err(err(
                        m,
                        Errno::EINVAL,
                        "value kind does not match the map type",
                    ));
                }
            }
        }
        Ok(e)
    }

    /// `pcpu_copy_value`: all CPUs from user space, the current CPU from a program.
    fn write_percpu(&self, m: &MapDef, p: *mut c_void, src: &ValueSrc<'_>, b: &[u8]) {
        match src {
            ValueSrc::User(_) => copy_percpu_in(p, m.nr_cpus, m.value_size, b),
            _ => {
                // SAFETY: p is a live per-CPU block with value_size bytes per CPU.
                unsafe {
                    let dst = per_cpu_ptr(p, current_cpu()) as *mut u8;
                    std::ptr::copy_nonoverlapping(
                        b.as_ptr(),
                        dst,
                        (m.value_size as usize).min(b.len()),
                    );
                }
            }
        }
    }

    fn defer_free(&self, e: *mut HtabElem) {
        let f = self.free;
        let token = SendElem(e);
        crossbeam_epoch::pin().defer(move || {
            let token = token;
            // SAFETY: the element was unlinked under the bucket lock before this was deferred;
            // the epoch guarantees no reader still holds it.
            unsafe { free_elem(token.0, f) }
        });
    }

    /// Finds the link pointing at `key`'s element (caller holds the bucket lock).
    fn find_link<'b>(
        &self,
        b: &'b Bucket,
        hash: u32,
        key: &[u8],
    ) -> Option<(&'b AtomicPtr<HtabElem>, *mut HtabElem)> {
        let mut link = &b.head;
        loop {
            let e = link.load(Ordering::Acquire);
            if e.is_null() {
                return None;
            }
            // SAFETY: the bucket lock keeps linked elements from being unlinked/freed.
            unsafe {
                if (*e).hash == hash {
                    let k = std::slice::from_raw_parts(
                        (e as *const u8).add(HTAB_ELEM_KEY_OFF),
                        key.len(),
                    );
                    if k == key {
                        return Some((link, e));
                    }
                }
                link = &*(&(*e).next as *const AtomicPtr<HtabElem>);
            }
        }
    }

    /// Links `new` at the head of `b` and, if `old` (reached through `link`) is given, unlinks
    /// it — the kernel's `hlist_nulls_add_head_rcu` + `hlist_nulls_del_rcu`. Readers walking
    /// the chain concurrently see either element; the old one keeps its `next`.
    fn publish(
        &self,
        b: &Bucket,
        new: *mut HtabElem,
        old: Option<(&AtomicPtr<HtabElem>, *mut HtabElem)>,
    ) {
        let head = b.head.load(Ordering::Acquire);
        // SAFETY: new is ours until published; old is linked and we hold the bucket lock.
        unsafe {
            (*new).next.store(head, Ordering::Relaxed);
            b.head.store(new, Ordering::Release);
            if let Some((link, old)) = old {
                let link = if std::ptr::eq(link, &b.head) {
                    &(*new).next
                } else {
                    link
                };
                link.store((*old).next.load(Ordering::Acquire), Ordering::Release);
                self.defer_free(old);
            }
        }
    }

    fn check_flags(m: &MapDef, exists: bool, flags: u64) -> Result<(), MapError> {
        let f = flags & !BPF_F_LOCK;
        if exists && f == BPF_NOEXIST {
            return Err(err(m, Errno::EEXIST, "key exists (BPF_NOEXIST)"));
        }
        if !exists && f == BPF_EXIST {
            return Err(err(m, Errno::ENOENT, "no such key (BPF_EXIST)"));
        }
        Ok(())
    }

    /// `htab_map_update_elem` and its LRU / per-CPU / fd variants.
    pub(crate) fn update(
        &self,
        m: &MapDef,
        key: &[u8],
        src: ValueSrc<'_>,
        flags: u64,
    ) -> Result<(), MapError> {
        if flags & !BPF_F_LOCK > BPF_EXIST {
            return Err(err(m, Errno::EINVAL, format!("update flags {flags:#x}")));
        }
        if flags & BPF_F_LOCK != 0 {
            return Err(err(
                m,
                Errno::EINVAL,
                "BPF_F_LOCK on a map without bpf_spin_lock",
            ));
        }
        let hash = htab_map_hash(key, self.hashrnd);
        if self.lru.is_some() {
            return self.update_lru(m, key, hash, src, flags);
        }
        let b = self.bucket(hash);
        let _lock = b.lock.lock();
        let old = self.find_link(b, hash, key);
        Self::check_flags(m, old.is_some(), flags)?;
        if let (Some((_, e)), ElemKind::Percpu, ValueSrc::User(v) | ValueSrc::Prog(v)) =
            (old, self.free.kind, &src)
        {
            // Per-CPU hashes update in place.
            // SAFETY: e is linked and locked; its value slot holds a per-CPU block pointer.
            let p = unsafe { (self.value_ptr(e) as *const *mut c_void).read() };
            self.write_percpu(m, p, &src, v);
            return Ok(());
        }
        if let (Some((_, e)), ValueSrc::Inner(p)) = (old, &src) {
            // HASH_OF_MAPS updates in place (htab_map_update_elem_in_place): the element keeps
            // its position in the bucket, only the inner map pointer is swapped.
            // SAFETY: e is linked and locked; its value slot is an 8-byte aligned pointer only
            // accessed atomically or by aligned 8-byte reads.
            let slot = unsafe { &*(self.value_ptr(e) as *const AtomicPtr<c_void>) };
            let old_inner = slot.swap(*p, Ordering::AcqRel);
            release_inner_deferred(old_inner);
            return Ok(());
        }
        if old.is_none() {
            // Both the preallocated freelist and the counted allocator fail with E2BIG when
            // full; replacing never needs a new slot.
            if self
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                    (c < m.max_entries).then_some(c + 1)
                })
                .is_err()
            {
                return Err(err(
                    m,
                    Errno::E2BIG,
                    format!("map is full ({} entries)", m.max_entries),
                ));
            }
        }
        let new = match self.alloc_elem(m, hash, key, &src) {
            Ok(e) => e,
            Err(e) => {
                if old.is_none() {
                    self.count.fetch_sub(1, Ordering::AcqRel);
                }
                return Err(e);
            }
        };
        self.publish(b, new, old);
        Ok(())
    }

    fn update_lru(
        &self,
        m: &MapDef,
        key: &[u8],
        hash: u32,
        src: ValueSrc<'_>,
        flags: u64,
    ) -> Result<(), MapError> {
        // prealloc_lru_pop: take a free element (evicting if needed) before the lookup --
        // except for BPF_EXIST on a per-CPU LRU hash: __htab_lru_percpu_map_update_elem
        // updates an existing element in place and takes no node then, so it never evicts.
        let percpu = matches!(self.free.kind, ElemKind::Percpu);
        let reserve = !(percpu && flags & !BPF_F_LOCK == BPF_EXIST);
        if reserve {
            self.reserve_lru(m)?;
        }
        let release = || {
            if reserve {
                self.count.fetch_sub(1, Ordering::AcqRel);
            }
        };
        let b = self.bucket(hash);
        let lock = b.lock.lock();
        let old = self.find_link(b, hash, key);
        if let Err(e) = Self::check_flags(m, old.is_some(), flags) {
            release();
            return Err(e);
        }
        if let (Some((_, e)), ElemKind::Percpu, ValueSrc::User(v) | ValueSrc::Prog(v)) =
            (old, self.free.kind, &src)
        {
            // SAFETY: e is linked and locked; set its ref bit and update the values in place.
            unsafe {
                (*e).lru_ref.store(1, Ordering::Relaxed);
                let p = (self.value_ptr(e) as *const *mut c_void).read();
                self.write_percpu(m, p, &src, v);
            }
            release();
            return Ok(());
        }
        // Only BPF_ANY/BPF_NOEXIST get here on a per-CPU LRU (BPF_EXIST either updated in
        // place above or failed with ENOENT), so a node is reserved.
        let new = match self.alloc_elem(m, hash, key, &src) {
            Ok(e) => e,
            Err(e) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        // SAFETY: new is not yet published.
        let seq = unsafe {
            if old.is_some() {
                (*new).lru_ref.store(1, Ordering::Relaxed);
            }
            (*new).lru_seq
        };
        let replaced = old.is_some();
        self.publish(b, new, old);
        drop(lock);
        if replaced {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(lru) = &self.lru {
            let mut q = lru.lock();
            q.push_back(LruEntry {
                hash,
                seq,
                key: key.into(),
            });
            if q.len() > 2 * m.max_entries as usize + 64 {
                // Drop queue entries of deleted or replaced elements.
                q.retain(|ent| self.entry_live(ent));
            }
        }
        Ok(())
    }

    fn entry_live(&self, ent: &LruEntry) -> bool {
        let b = self.bucket(ent.hash);
        let _l = b.lock.lock();
        // SAFETY: the elements found are linked and protected by the bucket lock.
        self.find_link(b, ent.hash, &ent.key)
            .is_some_and(|(_, e)| unsafe { (*e).lru_seq } == ent.seq)
    }

    fn reserve_lru(&self, m: &MapDef) -> Result<(), MapError> {
        for attempt in 0..10_000u32 {
            if self
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                    (c < m.max_entries).then_some(c + 1)
                })
                .is_ok()
            {
                return Ok(());
            }
            if !self.evict_one() && attempt > 100 {
                // Every element is being inserted right now by other threads.
                std::thread::yield_now();
            }
        }
        Err(err(m, Errno::ENOMEM, "no LRU element could be evicted"))
    }

    /// Evicts the oldest element whose `ref` bit is clear (second chance for the others).
    fn evict_one(&self) -> bool {
        let Some(lru) = &self.lru else { return false };
        let mut q = lru.lock();
        let mut budget = 2 * q.len() + 1;
        while budget > 0 {
            budget -= 1;
            let Some(ent) = q.pop_front() else {
                return false;
            };
            let b = self.bucket(ent.hash);
            let lock = b.lock.lock();
            let Some((link, e)) = self.find_link(b, ent.hash, &ent.key) else {
                continue;
            };
            // SAFETY: e is linked and we hold its bucket lock.
            unsafe {
                if (*e).lru_seq != ent.seq {
                    continue;
                }
                if (*e).lru_ref.swap(0, Ordering::Relaxed) != 0 {
                    drop(lock);
                    q.push_back(ent);
                    continue;
                }
                link.store((*e).next.load(Ordering::Acquire), Ordering::Release);
            }
            self.count.fetch_sub(1, Ordering::AcqRel);
            self.defer_free(e);
            return true;
        }
        false
    }

    /// `htab_map_delete_elem`.
    pub(crate) fn delete(&self, m: &MapDef, key: &[u8]) -> Result<(), MapError> {
        let hash = htab_map_hash(key, self.hashrnd);
        let b = self.bucket(hash);
        let _lock = b.lock.lock();
        let Some((link, e)) = self.find_link(b, hash, key) else {
            return Err(err(m, Errno::ENOENT, "no such key"));
        };
        // SAFETY: e is linked and we hold the bucket lock.
        unsafe { link.store((*e).next.load(Ordering::Acquire), Ordering::Release) };
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.defer_free(e);
        Ok(())
    }

    /// `htab_map_lookup_and_delete_elem`: the value (as a user lookup returns it), and the
    /// element unlinked in the same critical section.
    pub(crate) fn lookup_and_delete(&self, m: &MapDef, key: &[u8]) -> Result<Vec<u8>, MapError> {
        let hash = htab_map_hash(key, self.hashrnd);
        let b = self.bucket(hash);
        let _lock = b.lock.lock();
        let Some((link, e)) = self.find_link(b, hash, key) else {
            return Err(err(m, Errno::ENOENT, "no such key"));
        };
        let v = self.value_ptr(e);
        // SAFETY: e is linked and we hold the bucket lock; its value slot matches the kind.
        let value = unsafe {
            match self.free.kind {
                ElemKind::Plain => std::slice::from_raw_parts(v, m.value_size as usize).to_vec(),
                ElemKind::Percpu => {
                    copy_percpu_out((v as *const *mut c_void).read(), m.nr_cpus, m.value_size)
                }
                ElemKind::Inner => {
                    return Err(err(
                        m,
                        Errno::ENOTSUPP,
                        "hash_of_maps has no lookup_and_delete",
                    ));
                }
            }
        };
        // SAFETY: as above.
        unsafe { link.store((*e).next.load(Ordering::Acquire), Ordering::Release) };
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.defer_free(e);
        Ok(value)
    }

    /// `htab_map_get_next_key`.
    pub(crate) fn get_next_key(&self, m: &MapDef, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let _guard = crossbeam_epoch::pin();
        let mut start = 0usize;
        if let Some(key) = key {
            let hash = htab_map_hash(key, self.hashrnd);
            // SAFETY: pinned.
            let e = unsafe { lookup_elem_raw(self.bucket(hash), hash, key) };
            if !e.is_null() {
                // SAFETY: e is alive while pinned.
                let next = unsafe { (*e).next.load(Ordering::Acquire) };
                if !next.is_null() {
                    return Ok(self.key_of(next, m.key_size));
                }
                start = (hash & (self.n_buckets - 1)) as usize + 1;
            }
        }
        for b in &self.buckets[start.min(self.buckets.len())..] {
            let e = b.head.load(Ordering::Acquire);
            if !e.is_null() {
                return Ok(self.key_of(e, m.key_size));
            }
        }
        Err(err(m, Errno::ENOENT, "no more keys"))
    }

    /// Frees every element now and the header (the map is being dropped).
    pub(crate) fn free_all(&self, _t: MapType) {
        for b in self.buckets.iter() {
            let mut e = b.head.swap(std::ptr::null_mut(), Ordering::AcqRel);
            while !e.is_null() {
                // SAFETY: the map is unreachable; every linked element is freed once.
                unsafe {
                    let next = (*e).next.load(Ordering::Acquire);
                    free_elem(e, self.free);
                    e = next;
                }
            }
        }
        // SAFETY: hdr came from Box::leak in alloc and is freed once, here.
        unsafe { drop(Box::from_raw(self.hdr.as_ptr())) };
    }

    /// Program-side update (`bpf_map_update_elem` helper on a hash map).
    pub(crate) fn update_from_prog(
        &self,
        m: &MapDef,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if matches!(self.free.kind, ElemKind::Inner) {
            return Err(err(
                m,
                Errno::EOPNOTSUPP,
                "programs cannot update a map-of-maps",
            ));
        }
        self.update(m, key, ValueSrc::Prog(value), flags)
    }
}

//! The raw memory layouts programs see, mirroring the kernel's offsets.
//!
//! Every map object starts with [`BpfMap`], a `#[repr(C)]` prefix holding the map type and a
//! pointer to its [`BpfMapOps`] table, so a raw map pointer (what `ld_imm64 map` yields, or what an
//! outer lookup returns) is enough to dispatch `bpf_map_lookup_elem` on it.
//!
//! * Arrays ([`BpfArray`]): one allocation, a header as long as the kernel profile's
//!   `offsetof(struct bpf_array, value)` (312 on the built-in profile) followed by `max_entries * elem_size` value bytes, `elem_size =
//!   round_up(value_size, 8)`. ARRAY_OF_MAPS and PROG_ARRAY slots are 8-byte pointers in that
//!   area; PERCPU_ARRAY's area holds 8-byte pointers to per-CPU blocks (the kernel's `pptrs`).
//! * Hash maps ([`BpfHtab`]): a header with a pointer to a fixed bucket array; elements
//!   ([`HtabElem`]) are allocated one by one with the key at offset 48 and the value at
//!   `48 + round_up(key_size, 8)`, the LRU reference byte at offset 35, as `struct htab_elem`.
//! * Per-CPU blocks: `[nr_cpus: u64][stride: u64][cpu 0 value][cpu 1 value]…`; the pointer stored
//!   in the map points at CPU 0's value, so `this_cpu_ptr(p) = p + cpu * stride` can be computed
//!   from the pointer alone (the kernel's percpu pointers are just as opaque to programs).

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicPtr, AtomicU8};

use crate::uapi::{HTAB_ELEM_KEY_OFF, HTAB_ELEM_LRU_REF_OFF, round_up8};

/// Signature of a map's lookup function (`ops->map_lookup_elem`): returns a pointer to the value
/// (for map-of-maps: the inner map pointer) or NULL.
pub type MapLookupFn = unsafe extern "C" fn(map: *mut c_void, key: *const c_void) -> *mut c_void;
/// Signature of `ops->map_update_elem`: 0 or a negative errno.
pub type MapUpdateFn = unsafe extern "C" fn(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64;
/// Signature of `ops->map_delete_elem`: 0 or a negative errno.
pub type MapDeleteFn = unsafe extern "C" fn(map: *mut c_void, key: *const c_void) -> i64;
/// Signature of `ops->map_push_elem`: 0 or a negative errno.
pub type MapPushFn =
    unsafe extern "C" fn(map: *mut c_void, value: *const c_void, flags: u64) -> i64;
/// Signature of `bpf_map_put(owner)`: drops one strong reference on a map object.
pub type MapPutFn = unsafe extern "C" fn(owner: *const c_void);
/// Signature of `ops->map_pop_elem` / `map_peek_elem`: fills `value`; 0 or a negative errno.
pub type MapPopFn = unsafe extern "C" fn(map: *mut c_void, value: *mut c_void) -> i64;

/// A map type's operations as seen from programs (`struct bpf_map_ops`, the part programs use).
#[repr(C)]
pub struct BpfMapOps {
    /// `map_lookup_elem`.
    pub map_lookup_elem: MapLookupFn,
    /// `map_update_elem` (program side: per-CPU maps write only the current CPU's value).
    pub map_update_elem: MapUpdateFn,
    /// `map_delete_elem`.
    pub map_delete_elem: MapDeleteFn,
    /// `map_push_elem` (QUEUE/STACK; -EOPNOTSUPP elsewhere).
    pub map_push_elem: MapPushFn,
    /// `map_pop_elem` (QUEUE/STACK; -EOPNOTSUPP elsewhere).
    pub map_pop_elem: MapPopFn,
    /// `map_peek_elem` (QUEUE/STACK; -EOPNOTSUPP elsewhere).
    pub map_peek_elem: MapPopFn,
    /// `bpf_map_put`: drops one strong reference on the map whose header `owner` names
    /// (an outer map releasing an inner one).
    pub map_put: MapPutFn,
}

/// The common prefix of every map object (the part of `struct bpf_map` we need).
#[repr(C)]
pub struct BpfMap {
    /// The type's ops table (never null).
    pub ops: *const BpfMapOps,
    /// Back pointer to the owning Rust object (`MapInner`), for the out-of-line operations.
    pub owner: *const c_void,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (as created; 4 for fd maps).
    pub value_size: u32,
    /// Number of entries the map was created with.
    pub max_entries: u32,
    /// Permanent map flags (RDONLY/WRONLY stripped).
    pub map_flags: u32,
    /// Map id.
    pub id: u32,
    /// Number of CPUs the per-CPU storage is sized for.
    pub nr_cpus: u32,
    /// Padding (keeps the prefix a multiple of 8).
    pub _pad: u32,
}

/// Size of the [`BpfMap`] prefix.
pub const BPF_MAP_SIZE: usize = 48;
const _: () = assert!(size_of::<BpfMap>() == BPF_MAP_SIZE);
const _: () = assert!(offset_of!(BpfMap, ops) == 0);

/// An array map's header: kbpf's own fields. Values follow at `value_off`, the kernel
/// profile's `offsetof(struct bpf_array, value)` (312 on the built-in profile), so inlined
/// lookups add the same constant as the kernel's; the bytes between are zero.
#[repr(C)]
pub struct BpfArray {
    /// Common prefix.
    pub map: BpfMap,
    /// `round_up(value_size, 8)` (8 for fd arrays and per-CPU pointer slots).
    pub elem_size: u32,
    /// `roundup_pow_of_two(max_entries) - 1`, for the Spectre v1 masked form.
    pub index_mask: u32,
    /// Where values (or per-CPU/fd pointer slots) start, from the map's start.
    pub value_off: u32,
    /// Padding.
    pub _pad: u32,
}

// A profile's value offset is accepted only when the header fits before it.
const _: () = assert!(size_of::<BpfArray>() <= kbpf_profile::MIN_ARRAY_VALUE_OFF as usize);
const _: () = assert!(size_of::<BpfArray>().is_multiple_of(8));

/// A hash map's header (`struct bpf_htab`, the part programs need).
#[repr(C)]
pub struct BpfHtab {
    /// Common prefix.
    pub map: BpfMap,
    /// The bucket array (`n_buckets` entries, never reallocated).
    pub buckets: *const Bucket,
    /// Number of buckets, a power of two.
    pub n_buckets: u32,
    /// Hash seed (0 with `BPF_F_ZERO_SEED`).
    pub hashrnd: u32,
    /// Size of one element allocation.
    pub elem_size: u32,
    /// Padding.
    pub _pad: u32,
}

/// One hash bucket: a singly linked chain readers walk without locking (under an epoch guard),
/// writers change under `lock`.
pub struct Bucket {
    /// First element of the chain, or null.
    pub head: AtomicPtr<HtabElem>,
    /// Taken by every writer of this chain.
    pub lock: parking_lot::Mutex<()>,
}

/// Header of one hash element (`struct htab_elem` up to `key`); the key follows at offset 48,
/// the value at `48 + round_up(key_size, 8)`.
#[repr(C)]
pub struct HtabElem {
    /// Next element in the bucket chain.
    pub next: AtomicPtr<HtabElem>,
    /// Insertion sequence number (identifies this element in the LRU queue).
    pub lru_seq: u64,
    /// Unused (the kernel's `lru_node.list`).
    pub _reserved: [u64; 2],
    /// `lru_node.cpu`.
    pub lru_cpu: u16,
    /// `lru_node.type`.
    pub lru_type: u8,
    /// `lru_node.ref`: set by program lookups on LRU maps (inline `*(u8 *)(r0 + 35) = 1`).
    pub lru_ref: AtomicU8,
    /// Padding.
    pub _pad0: u32,
    /// The key's hash.
    pub hash: u32,
    /// Padding up to the key.
    pub _pad1: u32,
}

const _: () = assert!(size_of::<HtabElem>() == HTAB_ELEM_KEY_OFF);
const _: () = assert!(offset_of!(HtabElem, lru_ref) == HTAB_ELEM_LRU_REF_OFF);
const _: () = assert!(offset_of!(HtabElem, hash) == 40);

/// Size of the per-CPU block header in front of CPU 0's value.
pub const PERCPU_HDR: usize = 16;

thread_local! {
    static CURRENT_CPU: Cell<u32> = const { Cell::new(0) };
}

/// The CPU the calling thread is "running on" for per-CPU maps (default 0). The VM sets this
/// before a run, as the kernel's `smp_processor_id()`.
pub fn current_cpu() -> u32 {
    CURRENT_CPU.with(|c| c.get())
}

/// Sets the calling thread's CPU number for per-CPU maps. A number beyond a map's CPU count is
/// taken modulo that count, so a stray value can never address outside a per-CPU block.
pub fn set_current_cpu(cpu: u32) {
    CURRENT_CPU.with(|c| c.set(cpu));
}

fn percpu_layout(nr_cpus: u64, stride: u64) -> Option<Layout> {
    let size = nr_cpus
        .checked_mul(stride)?
        .checked_add(PERCPU_HDR as u64)?;
    Layout::from_size_align(usize::try_from(size).ok()?, 8).ok()
}

/// Allocates a zeroed per-CPU block of `nr_cpus` values of `stride` bytes; returns the pointer
/// to CPU 0's value, or None when out of memory.
pub(crate) fn alloc_percpu(nr_cpus: u32, stride: u64) -> Option<*mut u8> {
    let layout = percpu_layout(nr_cpus as u64, stride)?;
    // SAFETY: the layout has non-zero size (at least the 16-byte header).
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    if base.is_null() {
        return None;
    }
    // SAFETY: the block is at least 16 bytes, 8-aligned; we write the two header words.
    unsafe {
        (base as *mut u64).write(nr_cpus as u64);
        (base as *mut u64).add(1).write(stride);
        Some(base.add(PERCPU_HDR))
    }
}

/// Frees a block from [`alloc_percpu`].
///
/// # Safety
/// `p` must come from [`alloc_percpu`] and not have been freed; nothing may use it afterwards.
pub(crate) unsafe fn free_percpu(p: *mut u8) {
    // SAFETY: per the contract the header sits 16 bytes before `p`.
    unsafe {
        let base = p.sub(PERCPU_HDR);
        let nr = (base as *const u64).read();
        let stride = (base as *const u64).add(1).read();
        if let Some(layout) = percpu_layout(nr, stride) {
            std::alloc::dealloc(base, layout);
        }
    }
}

/// Pointer to `cpu`'s value inside a per-CPU block (`per_cpu_ptr`).
///
/// # Safety
/// `p` must point at CPU 0's value of a live block from this crate.
pub unsafe fn per_cpu_ptr(p: *mut c_void, cpu: u32) -> *mut c_void {
    // SAFETY: per the contract the header is readable at p - 16.
    unsafe {
        let base = (p as *mut u8).sub(PERCPU_HDR);
        let nr = (base as *const u64).read().max(1);
        let stride = (base as *const u64).add(1).read();
        (p as *mut u8).add(((cpu as u64 % nr) * stride) as usize) as *mut c_void
    }
}

/// `this_cpu_ptr(p)`: the value of the calling thread's [`current_cpu`]. This is what the
/// `r0 = this_cpu_ptr(r0)` instruction (`BPF_MOV64_PERCPU_REG`, MOV64_X with off = −1) means in
/// the per-CPU inline sequences; a NULL pointer stays NULL.
///
/// # Safety
/// `p` must be NULL or point at CPU 0's value of a live per-CPU block from this crate.
pub unsafe extern "C" fn bpf_this_cpu_ptr(p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        return p;
    }
    // SAFETY: forwarded contract.
    unsafe { per_cpu_ptr(p, current_cpu()) }
}

/// The per-CPU `cpu_number` variable that the kernel's inlined `bpf_get_smp_processor_id`
/// reads (`r0 = &cpu_number; r0 = this_cpu_ptr(r0); r0 = *(u32 *)(r0 +0)`): a per-CPU block
/// of `u32`s where CPU *i*'s value is *i*. Its address must fit the sign-extended 32-bit
/// immediate of `BPF_MOV64_IMM`, as the kernel's per-CPU offsets do, so the block lives in
/// the low 2 GiB (`mmap` with `MAP_32BIT`); `None` where no such mapping can be had (the
/// rewrite then keeps the helper call).
pub fn cpu_number_addr() -> Option<u32> {
    static ADDR: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *ADDR.get_or_init(|| {
        let nr = crate::possible_cpus().max(1) as usize;
        let len = PERCPU_HDR + 4 * nr;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let base = base as *mut u8;
        // SAFETY: the mapping is `len` bytes, page-aligned and writable: header words first
        // (the layout `per_cpu_ptr` reads), then one u32 per CPU. It is never unmapped.
        unsafe {
            (base as *mut u64).write(nr as u64);
            (base as *mut u64).add(1).write(4);
            let values = base.add(PERCPU_HDR) as *mut u32;
            for cpu in 0..nr {
                values.add(cpu).write(cpu as u32);
            }
        }
        let addr = base as usize + PERCPU_HDR;
        u32::try_from(addr).ok().filter(|a| *a <= i32::MAX as u32)
    })
}

/// Copies all CPUs' values out of a per-CPU block, each rounded up to 8 bytes.
pub(crate) fn copy_percpu_out(p: *mut c_void, nr_cpus: u32, value_size: u32) -> Vec<u8> {
    let stride = round_up8(value_size) as usize;
    let mut v = vec![0u8; stride * nr_cpus as usize];
    for cpu in 0..nr_cpus {
        // SAFETY: p is a live per-CPU block of nr_cpus values of `stride` bytes (the map keeps
        // it until drop, or the epoch keeps it for hash elements).
        unsafe {
            let src = per_cpu_ptr(p, cpu) as *const u8;
            std::ptr::copy_nonoverlapping(src, v.as_mut_ptr().add(cpu as usize * stride), stride);
        }
    }
    v
}

/// Copies user-supplied values (one per CPU, each rounded up to 8 bytes) into a per-CPU block.
pub(crate) fn copy_percpu_in(p: *mut c_void, nr_cpus: u32, value_size: u32, value: &[u8]) {
    let stride = round_up8(value_size) as usize;
    for cpu in 0..nr_cpus as usize {
        if (cpu + 1) * stride > value.len() {
            break;
        }
        // SAFETY: as in copy_percpu_out; value holds nr_cpus * stride bytes (checked by callers
        // and by the bound above).
        unsafe {
            let dst = per_cpu_ptr(p, cpu as u32) as *mut u8;
            std::ptr::copy_nonoverlapping(value.as_ptr().add(cpu * stride), dst, stride);
        }
    }
}

/// A strong map reference moved into a deferred drop.
struct SendPtr(*mut c_void);
// SAFETY: the pointer is only a token for a strong reference to a Send + Sync map object.
unsafe impl Send for SendPtr {}

/// Drops the slot's strong reference on the inner map at `p` once no epoch guard that could
/// have read `p` is alive (null is ignored).
pub(crate) fn release_inner_deferred(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    let token = SendPtr(p);
    let guard = crossbeam_epoch::pin();
    guard.defer(move || {
        let token = token;
        // SAFETY: the slot owned one strong reference taken when the map was stored; the slot
        // no longer holds p, and the epoch guarantees no reader still uses it.
        unsafe { release_inner_now(token.0) }
    });
}

/// Drops a slot's strong reference on the inner map at `p` immediately, through the map's
/// own `map_put` (`bpf_map_put`): the map types that store maps need not know the owner.
///
/// # Safety
/// `p` must be a live map's header carrying a strong reference that nothing else will
/// release, and no reader may still use `p` after the map is freed.
pub(crate) unsafe fn release_inner_now(p: *mut c_void) {
    // SAFETY: per the contract `p` is a live header whose ops and owner were set at creation.
    unsafe {
        let header = &*(p as *const BpfMap);
        ((*header.ops).map_put)(header.owner);
    }
}

//! Raw map functions callable from programs (interpreter helpers, JIT direct calls), named
//! after the kernel functions they mirror, the per-type ops tables, and the epoch guard a
//! program run holds.
//!
//! # Safety contract shared by every function here
//! * `map` is a raw map pointer obtained from a live [`crate::Map`] ([`crate::Map::as_ptr`]) or
//!   read from an outer map's slot, and the type matches the function (the generic
//!   `bpf_map_*` entry points dispatch on the header, so they accept any map);
//! * `key` points at `key_size` readable bytes, `value` at `value_size` readable bytes;
//! * the calling thread holds a [`RunGuard`] (from [`pin`]) for as long as it uses a returned
//!   pointer: elements and inner maps removed concurrently are freed only after every guard
//!   that could have seen them is dropped. The verifier guarantees the pointer/size parts for
//!   programs, as in the kernel.

mod devmap;
mod lpm_trie;
mod perf_event;
mod ringbuf;

pub use devmap::{dev_map_hash_lookup_elem, dev_map_lookup_elem, redirect_lookup};
pub use lpm_trie::{trie_delete_elem, trie_update_elem};
pub use perf_event::perf_event_output;
pub use ringbuf::{bpf_ringbuf_commit, bpf_ringbuf_output, bpf_ringbuf_query, bpf_ringbuf_reserve};

use std::ffi::c_void;

use kbpf_uapi::errno;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::htab::htab_lookup_raw;
use crate::layout::{BpfArray, BpfHtab, BpfMap, BpfMapOps, bpf_this_cpu_ptr};
pub use crate::lpm_trie::trie_lookup_elem;
use crate::map::MapInner;
use crate::uapi::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, HTAB_ELEM_KEY_OFF, MapType, round_up8};

/// An epoch guard held for the duration of a program run (the kernel's `rcu_read_lock()` around
/// a BPF program). While it lives, no element or inner map a lookup returned is freed.
pub struct RunGuard(#[allow(dead_code)] crossbeam_epoch::Guard);

/// Enters a read-side critical section (`rcu_read_lock`).
pub fn pin() -> RunGuard {
    RunGuard(crossbeam_epoch::pin())
}

/// Runs deferred frees that are due: pins and flushes the epoch collector a few times. Useful
/// before asserting that memory was released (tests, `map show`).
pub fn flush_deferred() {
    for _ in 0..128 {
        crossbeam_epoch::pin().flush();
    }
}

const EINVAL: i64 = -(errno::EINVAL as i64);
const E2BIG: i64 = -(errno::E2BIG as i64);
const EEXIST: i64 = -(errno::EEXIST as i64);
const EOPNOTSUPP: i64 = -(errno::EOPNOTSUPP as i64);
const ENOTSUPP: i64 = -(errno::ENOTSUPP as i64);

/// # Safety
/// `map` must be a live map pointer.
pub(crate) unsafe fn owner<'a>(map: *mut c_void) -> &'a MapInner {
    // SAFETY: per the contract, owner was set at creation and the map is alive.
    unsafe { &*((*(map as *const BpfMap)).owner as *const MapInner) }
}

/// `array_map_lookup_elem`: `&value[idx]` or NULL when `idx >= max_entries` (read from the
/// map itself, so it is correct for BPF_F_INNER_MAP arrays of any size).
///
/// # Safety
/// See the module contract; `map` must be a plain ARRAY.
pub unsafe extern "C" fn array_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract: header readable, key holds a u32, values follow the header.
    unsafe {
        let a = &*(map as *const BpfArray);
        let idx = (key as *const u32).read_unaligned();
        if idx >= a.map.max_entries {
            return std::ptr::null_mut();
        }
        // The mask is the identity after the bound check (index_mask >= max_entries - 1).
        let idx = idx & a.index_mask;
        (map as *mut u8).add(a.value_off as usize + a.elem_size as usize * idx as usize)
            as *mut c_void
    }
}

/// `percpu_array_map_lookup_elem`: this CPU's value of `pptrs[idx]`.
///
/// # Safety
/// See the module contract; `map` must be a PERCPU_ARRAY.
pub unsafe extern "C" fn percpu_array_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract; pointer slots are 8 bytes after the header.
    unsafe {
        let a = &*(map as *const BpfArray);
        let idx = (key as *const u32).read_unaligned();
        if idx >= a.map.max_entries {
            return std::ptr::null_mut();
        }
        let slot =
            (map as *mut u8).add(a.value_off as usize + 8 * idx as usize) as *const *mut c_void;
        bpf_this_cpu_ptr(slot.read())
    }
}

/// `array_of_map_lookup_elem`: the inner map pointer in slot `idx`, or NULL.
///
/// # Safety
/// See the module contract; `map` must be an ARRAY_OF_MAPS.
pub unsafe extern "C" fn array_of_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract; slots are 8-byte atomics after the header.
    unsafe {
        let a = &*(map as *const BpfArray);
        let idx = (key as *const u32).read_unaligned();
        if idx >= a.map.max_entries {
            return std::ptr::null_mut();
        }
        let slot = (map as *mut u8).add(a.value_off as usize + 8 * idx as usize)
            as *const AtomicPtr<c_void>;
        (*slot).load(Ordering::Acquire)
    }
}

/// The program pointer in PROG_ARRAY slot `index`, or NULL when out of range or empty: what
/// `bpf_tail_call` reads (`array->ptrs[index]` after the bound check).
///
/// # Safety
/// See the module contract; `map` must be a PROG_ARRAY.
pub unsafe extern "C" fn prog_array_get(map: *mut c_void, index: u32) -> *mut c_void {
    // SAFETY: module contract; slots are 8-byte atomics after the header.
    unsafe {
        let a = &*(map as *const BpfArray);
        if index >= a.map.max_entries {
            return std::ptr::null_mut();
        }
        let slot = (map as *mut u8).add(a.value_off as usize + 8 * index as usize)
            as *const AtomicPtr<c_void>;
        (*slot).load(Ordering::Acquire)
    }
}

/// `fd_array_map_lookup_elem` (PROG_ARRAY, PERF_EVENT_ARRAY, CGROUP_ARRAY): programs cannot
/// look these up (the verifier refuses); returns NULL.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn fd_array_map_lookup_elem(
    _map: *mut c_void,
    _key: *const c_void,
) -> *mut c_void {
    own_address("fd_array_map_lookup_elem");
    std::ptr::null_mut()
}

/// `__htab_map_lookup_elem`: the **element** pointer (not the value) or NULL; inline sequences
/// add `48 + round_up(key_size, 8)` themselves.
///
/// # Safety
/// See the module contract; `map` must be a hash-family map.
pub unsafe extern "C" fn __htab_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract.
    unsafe { htab_lookup_raw(map as *const BpfHtab, key as *const u8) as *mut c_void }
}

fn value_off(map: *mut c_void) -> usize {
    // SAFETY: called on live hash maps only (see callers).
    let ks = unsafe { (*(map as *const BpfMap)).key_size };
    HTAB_ELEM_KEY_OFF + round_up8(ks) as usize
}

/// `htab_map_lookup_elem`: the value pointer or NULL.
///
/// # Safety
/// See the module contract; `map` must be a HASH.
pub unsafe extern "C" fn htab_map_lookup_elem(map: *mut c_void, key: *const c_void) -> *mut c_void {
    // SAFETY: module contract.
    let e = unsafe { __htab_map_lookup_elem(map, key) };
    if e.is_null() {
        return e;
    }
    // SAFETY: elements are elem_size bytes; the value follows the key.
    unsafe { (e as *mut u8).add(value_off(map)) as *mut c_void }
}

/// `htab_lru_map_lookup_elem`: like [`htab_map_lookup_elem`], and sets the element's LRU
/// reference bit.
///
/// # Safety
/// See the module contract; `map` must be an LRU_HASH.
pub unsafe extern "C" fn htab_lru_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract.
    let e = unsafe { __htab_map_lookup_elem(map, key) } as *mut crate::layout::HtabElem;
    if e.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: e is a live element (epoch guard held by the caller).
    unsafe {
        if (*e).lru_ref.load(Ordering::Relaxed) == 0 {
            (*e).lru_ref.store(1, Ordering::Relaxed);
        }
        (e as *mut u8).add(value_off(map)) as *mut c_void
    }
}

/// `htab_percpu_map_lookup_elem`: this CPU's value or NULL.
///
/// # Safety
/// See the module contract; `map` must be a PERCPU_HASH.
pub unsafe extern "C" fn htab_percpu_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract; the value slot holds a per-CPU block pointer.
    unsafe {
        let e = __htab_map_lookup_elem(map, key);
        if e.is_null() {
            return e;
        }
        bpf_this_cpu_ptr(((e as *mut u8).add(value_off(map)) as *const *mut c_void).read())
    }
}

/// `htab_lru_percpu_map_lookup_elem`: this CPU's value, setting the LRU reference bit.
///
/// # Safety
/// See the module contract; `map` must be an LRU_PERCPU_HASH.
pub unsafe extern "C" fn htab_lru_percpu_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract.
    unsafe {
        let e = __htab_map_lookup_elem(map, key) as *mut crate::layout::HtabElem;
        if e.is_null() {
            return std::ptr::null_mut();
        }
        (*e).lru_ref.store(1, Ordering::Relaxed);
        bpf_this_cpu_ptr(((e as *mut u8).add(value_off(map)) as *const *mut c_void).read())
    }
}

/// `htab_of_map_lookup_elem`: the inner map pointer or NULL.
///
/// # Safety
/// See the module contract; `map` must be a HASH_OF_MAPS.
pub unsafe extern "C" fn htab_of_map_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: module contract; the value slot holds the inner map pointer.
    unsafe {
        let e = __htab_map_lookup_elem(map, key);
        if e.is_null() {
            return e;
        }
        ((e as *mut u8).add(value_off(map)) as *const *mut c_void).read()
    }
}

/// `array_map_update_elem` from a program (in place; no element can be created or removed).
/// As in the kernel, the same function serves PERCPU_ARRAY (this CPU's value).
///
/// # Safety
/// See the module contract; `map` must be an ARRAY or PERCPU_ARRAY.
pub unsafe extern "C" fn array_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract.
    unsafe {
        let a = &*(map as *const BpfArray);
        if a.map.map_type == MapType::PercpuArray.raw() {
            return percpu_array_map_update_elem(map, key, value, flags);
        }
        if flags & !BPF_F_LOCK > BPF_EXIST || flags & BPF_F_LOCK != 0 {
            return EINVAL;
        }
        let idx = (key as *const u32).read_unaligned();
        if idx >= a.map.max_entries {
            return E2BIG;
        }
        if flags == BPF_NOEXIST {
            return EEXIST;
        }
        let dst = (map as *mut u8).add(a.value_off as usize + a.elem_size as usize * idx as usize);
        std::ptr::copy(value as *const u8, dst, a.map.value_size as usize);
        0
    }
}

/// Program-side update of a PERCPU_ARRAY: writes this CPU's value.
///
/// # Safety
/// See the module contract; `map` must be a PERCPU_ARRAY.
pub unsafe extern "C" fn percpu_array_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract.
    unsafe {
        let a = &*(map as *const BpfArray);
        if flags & !BPF_F_LOCK > BPF_EXIST || flags & BPF_F_LOCK != 0 {
            return EINVAL;
        }
        let idx = (key as *const u32).read_unaligned();
        if idx >= a.map.max_entries {
            return E2BIG;
        }
        if flags == BPF_NOEXIST {
            return EEXIST;
        }
        let dst = percpu_array_map_lookup_elem(map, key);
        std::ptr::copy(
            value as *const u8,
            dst as *mut u8,
            a.map.value_size as usize,
        );
        0
    }
}

/// Program-side update of a hash-family map (per-CPU: this CPU's value; HASH_OF_MAPS:
/// -EOPNOTSUPP, which the verifier never lets happen).
///
/// # Safety
/// See the module contract; `map` must be a hash-family map.
pub unsafe extern "C" fn htab_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract.
    unsafe {
        let m = owner(map);
        let key = std::slice::from_raw_parts(key as *const u8, m.key_size as usize);
        let value = std::slice::from_raw_parts(value as *const u8, m.value_size as usize);
        match m.htab().map(|h| h.update_from_prog(m, key, value, flags)) {
            Some(Ok(())) => 0,
            Some(Err(e)) => -(e.errno.code() as i64),
            None => EINVAL,
        }
    }
}

/// `map_update_elem` of types programs cannot update (fd arrays): -EOPNOTSUPP.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn map_update_elem_unsupported(
    _m: *mut c_void,
    _k: *const c_void,
    _v: *const c_void,
    _f: u64,
) -> i64 {
    EOPNOTSUPP
}

/// `array_map_delete_elem`: arrays cannot delete (-EINVAL).
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn array_map_delete_elem(_map: *mut c_void, _key: *const c_void) -> i64 {
    own_address("array_map_delete_elem");
    EINVAL
}

/// `map_delete_elem` of types programs cannot delete from (fd arrays): -EOPNOTSUPP.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn map_delete_elem_unsupported(
    _map: *mut c_void,
    _key: *const c_void,
) -> i64 {
    own_address("map_delete_elem_unsupported");
    EOPNOTSUPP
}

/// `htab_lru_map_update_elem`: the LRU flavours' update (`htab_lru_percpu_map_update_elem`
/// shares it here; kbpf's LRU hash evicts inside the common update path).
///
/// # Safety
/// See the module contract; `map` must be an LRU hash.
pub unsafe extern "C" fn htab_lru_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    own_address("htab_lru_map_update_elem");
    // SAFETY: forwarded contract.
    unsafe { htab_map_update_elem(map, key, value, flags) }
}

/// `htab_percpu_map_update_elem`: this CPU's value of a PERCPU_HASH.
///
/// # Safety
/// See the module contract; `map` must be a PERCPU_HASH.
pub unsafe extern "C" fn htab_percpu_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    own_address("htab_percpu_map_update_elem");
    // SAFETY: forwarded contract.
    unsafe { htab_map_update_elem(map, key, value, flags) }
}

/// `htab_lru_percpu_map_update_elem`.
///
/// # Safety
/// See the module contract; `map` must be an LRU_PERCPU_HASH.
pub unsafe extern "C" fn htab_lru_percpu_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    own_address("htab_lru_percpu_map_update_elem");
    // SAFETY: forwarded contract.
    unsafe { htab_map_update_elem(map, key, value, flags) }
}

/// `htab_lru_map_delete_elem`: delete from an LRU hash (both LRU flavours).
///
/// # Safety
/// See the module contract; `map` must be an LRU hash.
pub unsafe extern "C" fn htab_lru_map_delete_elem(map: *mut c_void, key: *const c_void) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { htab_map_delete_elem(map, key) }
}

/// `htab_map_delete_elem` from a program.
///
/// # Safety
/// See the module contract; `map` must be a hash-family map.
pub unsafe extern "C" fn htab_map_delete_elem(map: *mut c_void, key: *const c_void) -> i64 {
    // SAFETY: module contract.
    unsafe {
        let m = owner(map);
        let key = std::slice::from_raw_parts(key as *const u8, m.key_size as usize);
        match m.htab().map(|h| h.delete(m, key)) {
            Some(Ok(())) => 0,
            Some(Err(e)) => -(e.errno.code() as i64),
            None => EINVAL,
        }
    }
}

/// `map_push_elem` of maps that are not queues or stacks: -EOPNOTSUPP (the verifier refuses
/// such calls).
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn map_push_elem_unsupported(
    _m: *mut c_void,
    _v: *const c_void,
    _f: u64,
) -> i64 {
    EOPNOTSUPP
}

/// `map_pop_elem` / `map_peek_elem` of maps that are not queues or stacks: -EOPNOTSUPP.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn map_pop_elem_unsupported(_m: *mut c_void, _v: *mut c_void) -> i64 {
    own_address("map_pop_elem_unsupported");
    EOPNOTSUPP
}

/// `queue_stack_map_lookup_elem`: programs must use peek; NULL.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn queue_stack_map_lookup_elem(
    _m: *mut c_void,
    _k: *const c_void,
) -> *mut c_void {
    own_address("queue_stack_map_lookup_elem");
    std::ptr::null_mut()
}

/// `queue_stack_map_update_elem`: -EINVAL (programs push instead).
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn queue_stack_map_update_elem(
    _m: *mut c_void,
    _k: *const c_void,
    _v: *const c_void,
    _f: u64,
) -> i64 {
    EINVAL
}

/// `queue_stack_map_delete_elem`: -EINVAL (programs pop instead).
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn queue_stack_map_delete_elem(_m: *mut c_void, _k: *const c_void) -> i64 {
    own_address("queue_stack_map_delete_elem");
    EINVAL
}

/// `queue_stack_map_push_elem` (the `bpf_map_push_elem` helper).
///
/// # Safety
/// See the module contract; `map` must be a QUEUE or STACK, `value` `value_size` bytes.
pub unsafe extern "C" fn queue_stack_map_push_elem(
    map: *mut c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract.
    unsafe {
        let m = owner(map);
        let value = std::slice::from_raw_parts(value as *const u8, m.value_size as usize);
        match m.queue().map(|q| q.push(&m.name, value, flags)) {
            Some(Ok(())) => 0,
            Some(Err(e)) => -(e.errno.code() as i64),
            None => EINVAL,
        }
    }
}

/// # Safety
/// See the module contract; `map` must be a QUEUE or STACK, `value` writable `value_size` bytes.
unsafe fn queue_stack_get(map: *mut c_void, value: *mut c_void, delete: bool) -> i64 {
    // SAFETY: module contract.
    unsafe {
        let m = owner(map);
        let dst = std::slice::from_raw_parts_mut(value as *mut u8, m.value_size as usize);
        match m.queue().map(|q| q.get(&m.name, delete)) {
            Some(Ok(v)) => {
                dst.copy_from_slice(&v);
                0
            }
            Some(Err(e)) => {
                // The kernel zeroes the value when the map is empty.
                dst.fill(0);
                -(e.errno.code() as i64)
            }
            None => EINVAL,
        }
    }
}

/// `queue_map_pop_elem` / `stack_map_pop_elem` (the `bpf_map_pop_elem` helper).
///
/// # Safety
/// See [`queue_stack_map_push_elem`]; `value` must be writable.
pub unsafe extern "C" fn queue_stack_map_pop_elem(map: *mut c_void, value: *mut c_void) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { queue_stack_get(map, value, true) }
}

/// `queue_map_peek_elem` / `stack_map_peek_elem` (the `bpf_map_peek_elem` helper).
///
/// # Safety
/// See [`queue_stack_map_push_elem`]; `value` must be writable.
pub unsafe extern "C" fn queue_stack_map_peek_elem(map: *mut c_void, value: *mut c_void) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { queue_stack_get(map, value, false) }
}

/// The `bpf_map_push_elem` helper: dispatches on the map's ops table.
///
/// # Safety
/// See the module contract.
pub unsafe extern "C" fn bpf_map_push_elem(
    map: *mut c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract.
    unsafe { ((*(*(map as *const BpfMap)).ops).map_push_elem)(map, value, flags) }
}

/// The `bpf_map_pop_elem` helper: dispatches on the map's ops table.
///
/// # Safety
/// See the module contract.
pub unsafe extern "C" fn bpf_map_pop_elem(map: *mut c_void, value: *mut c_void) -> i64 {
    // SAFETY: module contract.
    unsafe { ((*(*(map as *const BpfMap)).ops).map_pop_elem)(map, value) }
}

/// The `bpf_map_peek_elem` helper: dispatches on the map's ops table.
///
/// # Safety
/// See the module contract.
pub unsafe extern "C" fn bpf_map_peek_elem(map: *mut c_void, value: *mut c_void) -> i64 {
    // SAFETY: module contract.
    unsafe { ((*(*(map as *const BpfMap)).ops).map_peek_elem)(map, value) }
}

/// The `bpf_map_lookup_elem` helper: dispatches on the map's ops table.
///
/// # Safety
/// See the module contract.
pub unsafe extern "C" fn bpf_map_lookup_elem(map: *mut c_void, key: *const c_void) -> *mut c_void {
    // SAFETY: module contract; every header has a valid ops pointer.
    unsafe { ((*(*(map as *const BpfMap)).ops).map_lookup_elem)(map, key) }
}

/// The `bpf_map_update_elem` helper: dispatches on the map's ops table.
///
/// # Safety
/// See the module contract.
pub unsafe extern "C" fn bpf_map_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract.
    unsafe { ((*(*(map as *const BpfMap)).ops).map_update_elem)(map, key, value, flags) }
}

/// The `bpf_map_delete_elem` helper: dispatches on the map's ops table.
///
/// # Safety
/// See the module contract.
pub unsafe extern "C" fn bpf_map_delete_elem(map: *mut c_void, key: *const c_void) -> i64 {
    // SAFETY: module contract.
    unsafe { ((*(*(map as *const BpfMap)).ops).map_delete_elem)(map, key) }
}

/// `bpf_map_put` of every map type: `owner` is the `Arc`'d [`MapInner`] a header names.
///
/// # Safety
/// `owner` must carry a strong reference that nothing else will release.
unsafe extern "C" fn bpf_map_put(owner: *const c_void) {
    // SAFETY: per the contract, owner points at the Arc'd MapInner with a reference to drop.
    unsafe { std::sync::Arc::decrement_strong_count(owner as *const MapInner) }
}

static ARRAY_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: array_map_lookup_elem,
    map_update_elem: array_map_update_elem,
    map_delete_elem: array_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static PERCPU_ARRAY_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: percpu_array_map_lookup_elem,
    map_update_elem: array_map_update_elem,
    map_delete_elem: array_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static ARRAY_OF_MAPS_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: array_of_map_lookup_elem,
    map_update_elem: map_update_elem_unsupported,
    map_delete_elem: map_delete_elem_unsupported,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static FD_ARRAY_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: fd_array_map_lookup_elem,
    map_update_elem: map_update_elem_unsupported,
    map_delete_elem: map_delete_elem_unsupported,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static HTAB_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: htab_map_lookup_elem,
    map_update_elem: htab_map_update_elem,
    map_delete_elem: htab_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static HTAB_LRU_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: htab_lru_map_lookup_elem,
    map_update_elem: htab_lru_map_update_elem,
    map_delete_elem: htab_lru_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static HTAB_PERCPU_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: htab_percpu_map_lookup_elem,
    map_update_elem: htab_percpu_map_update_elem,
    map_delete_elem: htab_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static HTAB_LRU_PERCPU_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: htab_lru_percpu_map_lookup_elem,
    map_update_elem: htab_lru_percpu_map_update_elem,
    map_delete_elem: htab_lru_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static HTAB_OF_MAPS_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: htab_of_map_lookup_elem,
    map_update_elem: htab_map_update_elem,
    map_delete_elem: htab_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static QUEUE_STACK_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: queue_stack_map_lookup_elem,
    map_update_elem: queue_stack_map_update_elem,
    map_delete_elem: queue_stack_map_delete_elem,
    map_push_elem: queue_stack_map_push_elem,
    map_pop_elem: queue_stack_map_pop_elem,
    map_peek_elem: queue_stack_map_peek_elem,
    map_put: bpf_map_put,
};

/// `ringbuf_map_lookup_elem`: ring buffers have no elements. The kernel returns
/// `ERR_PTR(-ENOTSUPP)`, which only user space sees (the verifier rejects lookups on a ringbuf);
/// a program-side caller gets NULL, "no element".
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn ringbuf_map_lookup_elem(
    _m: *mut c_void,
    _k: *const c_void,
) -> *mut c_void {
    own_address("ringbuf_map_lookup_elem");
    std::ptr::null_mut()
}

/// `ringbuf_map_update_elem`: -ENOTSUPP.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn ringbuf_map_update_elem(
    _m: *mut c_void,
    _k: *const c_void,
    _v: *const c_void,
    _f: u64,
) -> i64 {
    ENOTSUPP
}

/// `ringbuf_map_delete_elem`: -ENOTSUPP.
///
/// # Safety
/// Never dereferences its arguments.
pub unsafe extern "C" fn ringbuf_map_delete_elem(_m: *mut c_void, _k: *const c_void) -> i64 {
    ENOTSUPP
}

static RINGBUF_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: ringbuf_map_lookup_elem,
    map_update_elem: ringbuf_map_update_elem,
    map_delete_elem: ringbuf_map_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};

/// `trie_map_ops`: LPM tries have no `map_gen_lookup`, so programs call
/// `trie_lookup_elem` itself.
/// Devmaps: programs only look them up (the verifier allows no other map helper on them).
static DEVMAP_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: dev_map_lookup_elem,
    map_update_elem: map_update_elem_unsupported,
    map_delete_elem: map_delete_elem_unsupported,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};
static DEVMAP_HASH_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: dev_map_hash_lookup_elem,
    ..DEVMAP_OPS
};
static LPM_TRIE_OPS: BpfMapOps = BpfMapOps {
    map_lookup_elem: trie_lookup_elem,
    map_update_elem: trie_update_elem,
    map_delete_elem: trie_delete_elem,
    map_push_elem: map_push_elem_unsupported,
    map_pop_elem: map_pop_elem_unsupported,
    map_peek_elem: map_pop_elem_unsupported,
    map_put: bpf_map_put,
};

/// The ops table of a map type.
pub fn ops_for(t: MapType) -> &'static BpfMapOps {
    use crate::devmap::{BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH};
    match t {
        MapType::Other(BPF_MAP_TYPE_DEVMAP) => &DEVMAP_OPS,
        MapType::Other(BPF_MAP_TYPE_DEVMAP_HASH) => &DEVMAP_HASH_OPS,
        MapType::Array => &ARRAY_OPS,
        MapType::PercpuArray => &PERCPU_ARRAY_OPS,
        MapType::ArrayOfMaps => &ARRAY_OF_MAPS_OPS,
        MapType::Hash => &HTAB_OPS,
        MapType::LruHash => &HTAB_LRU_OPS,
        MapType::PercpuHash => &HTAB_PERCPU_OPS,
        MapType::LruPercpuHash => &HTAB_LRU_PERCPU_OPS,
        MapType::HashOfMaps => &HTAB_OF_MAPS_OPS,
        MapType::Queue | MapType::Stack => &QUEUE_STACK_OPS,
        MapType::Ringbuf => &RINGBUF_OPS,
        MapType::LpmTrie => &LPM_TRIE_OPS,
        _ => &FD_ARRAY_OPS,
    }
}

/// Returns the address of one raw function.
pub(crate) type RawFnAddr = fn() -> usize;

/// Raw functions by kernel name (for `call <name>#<imm>` in dumps and call resolution).
pub(crate) static RAW_FUNCTIONS: &[(&str, RawFnAddr)] = &[
    ("array_map_lookup_elem", || {
        array_map_lookup_elem as *const () as usize
    }),
    ("percpu_array_map_lookup_elem", || {
        percpu_array_map_lookup_elem as *const () as usize
    }),
    ("array_of_map_lookup_elem", || {
        array_of_map_lookup_elem as *const () as usize
    }),
    ("fd_array_map_lookup_elem", || {
        fd_array_map_lookup_elem as *const () as usize
    }),
    ("__htab_map_lookup_elem", || {
        __htab_map_lookup_elem as *const () as usize
    }),
    ("htab_map_lookup_elem", || {
        htab_map_lookup_elem as *const () as usize
    }),
    ("htab_lru_map_lookup_elem", || {
        htab_lru_map_lookup_elem as *const () as usize
    }),
    ("htab_percpu_map_lookup_elem", || {
        htab_percpu_map_lookup_elem as *const () as usize
    }),
    ("htab_lru_percpu_map_lookup_elem", || {
        htab_lru_percpu_map_lookup_elem as *const () as usize
    }),
    ("htab_of_map_lookup_elem", || {
        htab_of_map_lookup_elem as *const () as usize
    }),
    ("array_map_update_elem", || {
        array_map_update_elem as *const () as usize
    }),
    ("percpu_array_map_update_elem", || {
        percpu_array_map_update_elem as *const () as usize
    }),
    ("htab_map_update_elem", || {
        htab_map_update_elem as *const () as usize
    }),
    ("array_map_delete_elem", || {
        array_map_delete_elem as *const () as usize
    }),
    ("htab_map_delete_elem", || {
        htab_map_delete_elem as *const () as usize
    }),
    ("htab_lru_map_update_elem", || {
        htab_lru_map_update_elem as *const () as usize
    }),
    ("htab_percpu_map_update_elem", || {
        htab_percpu_map_update_elem as *const () as usize
    }),
    ("htab_lru_percpu_map_update_elem", || {
        htab_lru_percpu_map_update_elem as *const () as usize
    }),
    ("htab_lru_map_delete_elem", || {
        htab_lru_map_delete_elem as *const () as usize
    }),
    ("bpf_this_cpu_ptr", || {
        bpf_this_cpu_ptr as *const () as usize
    }),
    ("prog_array_get", || prog_array_get as *const () as usize),
    ("queue_stack_map_push_elem", || {
        queue_stack_map_push_elem as *const () as usize
    }),
    ("queue_stack_map_pop_elem", || {
        queue_stack_map_pop_elem as *const () as usize
    }),
    ("queue_stack_map_peek_elem", || {
        queue_stack_map_peek_elem as *const () as usize
    }),
    ("bpf_map_lookup_elem", || {
        bpf_map_lookup_elem as *const () as usize
    }),
    ("bpf_map_update_elem", || {
        bpf_map_update_elem as *const () as usize
    }),
    ("bpf_map_delete_elem", || {
        bpf_map_delete_elem as *const () as usize
    }),
    ("bpf_map_peek_elem", || {
        bpf_map_peek_elem as *const () as usize
    }),
    ("bpf_map_pop_elem", || {
        bpf_map_pop_elem as *const () as usize
    }),
    ("bpf_map_push_elem", || {
        bpf_map_push_elem as *const () as usize
    }),
    ("map_delete_elem_unsupported", || {
        map_delete_elem_unsupported as *const () as usize
    }),
    ("map_pop_elem_unsupported", || {
        map_pop_elem_unsupported as *const () as usize
    }),
    ("map_push_elem_unsupported", || {
        map_push_elem_unsupported as *const () as usize
    }),
    ("map_update_elem_unsupported", || {
        map_update_elem_unsupported as *const () as usize
    }),
    ("queue_stack_map_delete_elem", || {
        queue_stack_map_delete_elem as *const () as usize
    }),
    ("queue_stack_map_lookup_elem", || {
        queue_stack_map_lookup_elem as *const () as usize
    }),
    ("queue_stack_map_update_elem", || {
        queue_stack_map_update_elem as *const () as usize
    }),
    ("ringbuf_map_delete_elem", || {
        ringbuf_map_delete_elem as *const () as usize
    }),
    ("ringbuf_map_lookup_elem", || {
        ringbuf_map_lookup_elem as *const () as usize
    }),
    ("ringbuf_map_update_elem", || {
        ringbuf_map_update_elem as *const () as usize
    }),
    ("trie_lookup_elem", || {
        trie_lookup_elem as *const () as usize
    }),
    ("trie_update_elem", || {
        trie_update_elem as *const () as usize
    }),
    ("trie_delete_elem", || {
        trie_delete_elem as *const () as usize
    }),
    ("dev_map_lookup_elem", || {
        dev_map_lookup_elem as *const () as usize
    }),
    ("dev_map_hash_lookup_elem", || {
        dev_map_hash_lookup_elem as *const () as usize
    }),
];

/// Keeps a kernel function's address its own. Release builds merge functions whose bodies are
/// identical (rustc's function merging), and calls are named by address (`prog dump xlated`,
/// the JIT's helper table), so two kernel functions kbpf implements alike would print under
/// one name. The name, kept alive by `black_box`, makes each body distinct for one store.
#[inline(always)]
fn own_address(name: &'static str) {
    std::hint::black_box(name);
}

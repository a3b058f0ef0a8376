//! DEVMAP, DEVMAP_HASH and CPUMAP from programs: the lookups the kernel's ops table has, and
//! the target `bpf_redirect_map` finds.

use std::ffi::c_void;

use crate::devmap::{BPF_MAP_TYPE_CPUMAP, RedirectEntry, RedirectMap};
use crate::layout::BpfMap;
use crate::map::MapInner;

/// The redirect map behind a raw map pointer.
///
/// # Safety
/// `map` must be the raw pointer of a live map of one of this module's types.
unsafe fn redirect_map<'a>(map: *mut c_void) -> Option<&'a RedirectMap> {
    // SAFETY: per the contract, `owner` is the live MapInner of this map.
    let inner = unsafe { &*((*(map as *const BpfMap)).owner as *const MapInner) };
    inner.redirect_map()
}

/// `dev_map_lookup_elem` for programs: `&entry->val` or NULL.
///
/// # Safety
/// `map` is a live DEVMAP, `key` points at 4 readable bytes (verifier-checked).
pub unsafe extern "C" fn dev_map_lookup_elem(map: *mut c_void, key: *const c_void) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe {
        let k = (key as *const u32).read_unaligned();
        redirect_map(map).map_or(std::ptr::null_mut(), |r| r.lookup_raw(k))
    }
}

/// `dev_map_hash_lookup_elem` for programs (a function of its own: the kernel's name shows in
/// `prog dump xlated`).
///
/// # Safety
/// `map` is a live DEVMAP_HASH, `key` points at 4 readable bytes (verifier-checked).
pub unsafe extern "C" fn dev_map_hash_lookup_elem(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    std::hint::black_box("dev_map_hash_lookup_elem");
    // SAFETY: the caller's contract.
    unsafe {
        let k = (key as *const u32).read_unaligned();
        redirect_map(map).map_or(std::ptr::null_mut(), |r| r.lookup_raw(k))
    }
}

/// The target `bpf_redirect_map(map, key, …)` finds in a redirect map (the lookup of
/// `__bpf_xdp_redirect_map`), `None` when the key has no entry.
///
/// # Safety
/// `map` must be the raw pointer of a live DEVMAP, DEVMAP_HASH or CPUMAP.
pub unsafe fn redirect_lookup(map: *mut c_void, key: u64) -> Option<RedirectEntry> {
    // SAFETY: the caller's contract.
    let r = unsafe { redirect_map(map) }?;
    // The helper's key is a u64; the maps' keys are u32 (a larger one finds nothing).
    let key = u32::try_from(key).ok()?;
    let (_, v) = r.entry(key)?;
    Some(match r.map_type {
        BPF_MAP_TYPE_CPUMAP => RedirectEntry::Cpu,
        _ => RedirectEntry::Dev { ifindex: v as u32 },
    })
}

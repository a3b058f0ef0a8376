//! `trie_update_elem` and `trie_delete_elem` from programs (the lookup needs only the trie's
//! header and lives with the trie).

use std::ffi::c_void;

use crate::error::Errno;
use crate::layout::BpfMap;
use crate::lpm_trie::LpmTrie;
use crate::map::Storage;

/// # Safety
/// `map` must be a live map pointer.
unsafe fn trie_of<'a>(map: *mut c_void) -> Option<&'a LpmTrie> {
    // SAFETY: forwarded contract.
    match unsafe { &crate::raw::owner(map).storage } {
        Storage::LpmTrie(t) => Some(t),
        _ => None,
    }
}

/// `trie_update_elem` from a program: 0 or a negative errno.
///
/// # Safety
/// See the contract of [`crate::raw`]; `map` must be an LPM_TRIE.
pub unsafe extern "C" fn trie_update_elem(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: module contract: key and value hold key_size and value_size bytes.
    unsafe {
        let m = &*(map as *const BpfMap);
        let Some(t) = trie_of(map) else {
            return -(Errno::EINVAL.code() as i64);
        };
        let key = std::slice::from_raw_parts(key as *const u8, m.key_size as usize);
        let value = std::slice::from_raw_parts(value as *const u8, m.value_size as usize);
        match t.update(key, value, flags) {
            Ok(()) => 0,
            Err(e) => -(e.code() as i64),
        }
    }
}

/// `trie_delete_elem` from a program: 0 or a negative errno.
///
/// # Safety
/// See the contract of [`crate::raw`]; `map` must be an LPM_TRIE.
pub unsafe extern "C" fn trie_delete_elem(map: *mut c_void, key: *const c_void) -> i64 {
    // SAFETY: module contract: key holds key_size bytes.
    unsafe {
        let m = &*(map as *const BpfMap);
        let Some(t) = trie_of(map) else {
            return -(Errno::EINVAL.code() as i64);
        };
        let key = std::slice::from_raw_parts(key as *const u8, m.key_size as usize);
        match t.delete(key) {
            Ok(()) => 0,
            Err(e) => -(e.code() as i64),
        }
    }
}

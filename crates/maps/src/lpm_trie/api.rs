//! The LPM trie's interfaces: `trie_alloc`'s creation checks, the user-space element
//! commands with the map's name and a reason in their errors, and the `extern "C"` functions
//! programs call (`trie_lookup_elem`, `trie_update_elem`, `trie_delete_elem`, registered in
//! [`crate::raw`]'s ops table under the kernel's names).

use std::ffi::c_void;

use super::{BpfLpmTrie, Key, LpmTrie, lookup_raw};
use crate::attr::MapAttr;
use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::uapi::*;

/// `trie_alloc`'s attribute checks (the kernel answers EINVAL to all of them; LPM tries have
/// no `map_alloc_check`).
pub(crate) fn trie_alloc_check(a: &MapAttr) -> Result<(), MapError> {
    let e = |detail: String| Err(MapError::new(&a.name, Errno::EINVAL, detail));
    let f = a.map_flags;
    if a.max_entries == 0 {
        return e("max_entries is 0".into());
    }
    if f & BPF_F_NO_PREALLOC == 0 {
        return e("lpm_trie requires BPF_F_NO_PREALLOC".into());
    }
    if f & !LPM_CREATE_FLAG_MASK != 0 {
        return e(format!(
            "flags {:#x} not accepted by lpm_trie",
            f & !LPM_CREATE_FLAG_MASK
        ));
    }
    if f & BPF_F_RDONLY_PROG != 0 && f & BPF_F_WRONLY_PROG != 0 {
        return e("both RDONLY_PROG and WRONLY_PROG".into());
    }
    let (kmin, kmax) = (
        LPM_KEY_DATA_OFF + LPM_DATA_SIZE_MIN,
        LPM_KEY_DATA_OFF + LPM_DATA_SIZE_MAX,
    );
    if !(kmin..=kmax).contains(&a.key_size) {
        return e(format!(
            "key size {} outside {kmin}..={kmax} (4-byte prefixlen + 1..=256 data bytes)",
            a.key_size
        ));
    }
    if !(1..=LPM_VAL_SIZE_MAX).contains(&a.value_size) {
        return e(format!(
            "value size {} outside 1..={LPM_VAL_SIZE_MAX}",
            a.value_size
        ));
    }
    Ok(())
}

impl LpmTrie {
    /// Words for an errno of this trie's element operations (user-space errors).
    fn why(&self, e: Errno, op: &str, key: &[u8], flags: u64) -> String {
        let pl = Key::parse(key).map_or(0, |k| k.prefixlen);
        let max = self.max_prefixlen();
        match e {
            Errno::EINVAL if op == "update" && flags > BPF_EXIST => {
                format!("update flags {flags:#x}")
            }
            Errno::EINVAL => format!("prefixlen {pl} > max_prefixlen {max}"),
            Errno::ENOENT if op == "update" => "no such prefix (BPF_EXIST)".into(),
            Errno::ENOENT => format!("no element for prefixlen {pl}"),
            Errno::EEXIST => "prefix exists (BPF_NOEXIST)".into(),
            Errno::ENOSPC => format!("trie is full ({} elements)", self.max_entries),
            e => format!("{op} failed ({})", e.name()),
        }
    }

    /// [`LpmTrie::lookup`] with the map's name in the error.
    pub(crate) fn lookup_user(&self, m: &MapDef, key: &[u8]) -> Result<Vec<u8>, MapError> {
        self.lookup(key)
            .map_err(|e| MapError::new(&m.name, e, self.why(e, "lookup", key, 0)))
    }

    /// [`LpmTrie::update`] with the map's name in the error.
    pub(crate) fn update_user(
        &self,
        m: &MapDef,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        self.update(key, value, flags)
            .map_err(|e| MapError::new(&m.name, e, self.why(e, "update", key, flags)))
    }

    /// [`LpmTrie::delete`] with the map's name in the error.
    pub(crate) fn delete_user(&self, m: &MapDef, key: &[u8]) -> Result<(), MapError> {
        self.delete(key)
            .map_err(|e| MapError::new(&m.name, e, self.why(e, "delete", key, 0)))
    }

    /// [`LpmTrie::get_next_key`] with the map's name in the error.
    pub(crate) fn get_next_key_user(
        &self,
        m: &MapDef,
        key: Option<&[u8]>,
    ) -> Result<Vec<u8>, MapError> {
        self.get_next_key(key).map_err(|e| {
            let detail = match e {
                Errno::ENOENT if key.is_some() => "no key after the last one".to_string(),
                Errno::ENOENT => "the trie is empty".to_string(),
                e => format!("get_next_key failed ({})", e.name()),
            };
            MapError::new(&m.name, e, detail)
        })
    }
}

/// `trie_lookup_elem` for programs: the value pointer of the longest stored prefix of the
/// key, or NULL (the kernel has no `map_gen_lookup` for LPM tries, so programs call this).
///
/// # Safety
/// See the contract of [`crate::raw`]; `map` must be an LPM_TRIE.
pub unsafe extern "C" fn trie_lookup_elem(map: *mut c_void, key: *const c_void) -> *mut c_void {
    // SAFETY: module contract: the header is live, key holds key_size = 4 + data_size bytes.
    unsafe {
        let t = &*(map as *const BpfLpmTrie);
        let k = Key {
            prefixlen: (key as *const u32).read_unaligned(),
            data: std::slice::from_raw_parts((key as *const u8).add(4), t.data_size as usize),
        };
        lookup_raw(t, k) as *mut c_void
    }
}

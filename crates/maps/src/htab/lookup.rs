//! The program-side hash lookup (`__htab_map_lookup_elem`), specialised to the key size.
//!
//! Every program lookup of a hash-family map ends here: the rewrite's inline sequences and the
//! direct calls both call `__htab_map_lookup_elem`. The general path hashes a `&[u8]` of run-time
//! length (`htab_map_hash` copies the key into a word buffer, `jhash2` loops, the chain walk
//! compares with `memcmp`). For keys of a whole number of 32-bit words up to
//! [`MAX_SPECIALISED_WORDS`] — every flow, service and address key real programs use — the
//! key size picks a copy of the same algorithm with the word count as a constant: the key is
//! read once into registers, `jhash2`'s loop is unrolled, and the chain walk compares words.
//! The hash is the kernel's `jhash2` bit for bit either way, so buckets and iteration order do
//! not change (`tests/gen_lookup.rs` looks up every key size from 1 to 72 bytes, and pairs of
//! keys with equal hashes, against what the user-side path stored).

use std::sync::atomic::Ordering;

use crate::jhash::{htab_map_hash, jhash2};
use crate::layout::{BpfHtab, HtabElem};
use crate::uapi::HTAB_ELEM_KEY_OFF;

/// The largest key, in 32-bit words, with a specialised lookup (64 bytes).
pub const MAX_SPECIALISED_WORDS: u32 = 16;

/// `__htab_map_lookup_elem` on a raw header: the element for `key`, or null.
///
/// # Safety
/// `htab` must be a live hash map header; `key` must point at `key_size` readable bytes; the
/// caller must be inside an epoch guard while it uses the element.
#[inline]
pub(crate) unsafe fn htab_lookup_raw(htab: *const BpfHtab, key: *const u8) -> *mut HtabElem {
    // SAFETY: forwarded contract.
    unsafe {
        let h = &*htab;
        match h.map.key_size {
            4 => lookup_words::<1>(h, key),
            8 => lookup_words::<2>(h, key),
            12 => lookup_words::<3>(h, key),
            16 => lookup_words::<4>(h, key),
            20 => lookup_words::<5>(h, key),
            24 => lookup_words::<6>(h, key),
            28 => lookup_words::<7>(h, key),
            32 => lookup_words::<8>(h, key),
            36 => lookup_words::<9>(h, key),
            40 => lookup_words::<10>(h, key),
            44 => lookup_words::<11>(h, key),
            48 => lookup_words::<12>(h, key),
            52 => lookup_words::<13>(h, key),
            56 => lookup_words::<14>(h, key),
            60 => lookup_words::<15>(h, key),
            64 => lookup_words::<16>(h, key),
            _ => lookup_bytes(h, key),
        }
    }
}

/// The specialised lookup for keys of `W` 32-bit words.
///
/// # Safety
/// As [`htab_lookup_raw`], with `key_size == 4 * W`.
#[inline(always)]
unsafe fn lookup_words<const W: usize>(h: &BpfHtab, key: *const u8) -> *mut HtabElem {
    // SAFETY: forwarded contract: key has 4 * W readable bytes (no alignment promised, as the
    // kernel reads it through `u32 *` on architectures that allow unaligned loads); buckets has
    // n_buckets entries; linked elements stay alive under the caller's guard and hold their key
    // at HTAB_ELEM_KEY_OFF (8-byte aligned, so their words are aligned).
    unsafe {
        let mut words = [0u32; W];
        for (i, w) in words.iter_mut().enumerate() {
            *w = (key as *const u32).add(i).read_unaligned();
        }
        let hash = jhash2(&words, h.hashrnd);
        let bucket = &*h.buckets.add((hash & (h.n_buckets - 1)) as usize);
        let mut e = bucket.head.load(Ordering::Acquire);
        while !e.is_null() {
            if (*e).hash == hash
                && *((e as *const u8).add(HTAB_ELEM_KEY_OFF) as *const [u32; W]) == words
            {
                return e;
            }
            e = (*e).next.load(Ordering::Acquire);
        }
        std::ptr::null_mut()
    }
}

/// The general lookup: any key size.
///
/// # Safety
/// As [`htab_lookup_raw`].
unsafe fn lookup_bytes(h: &BpfHtab, key: *const u8) -> *mut HtabElem {
    // SAFETY: forwarded contract.
    unsafe {
        let key = std::slice::from_raw_parts(key, h.map.key_size as usize);
        let hash = htab_map_hash(key, h.hashrnd);
        let bucket = &*h.buckets.add((hash & (h.n_buckets - 1)) as usize);
        super::lookup_elem_raw(bucket, hash, key)
    }
}

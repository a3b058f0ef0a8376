//! The ring buffer helpers' entry points on map pointers (`bpf_ringbuf_output`, `_reserve`,
//! `_submit`/`_discard`, `_query`); the ring itself is [`crate::ringbuf`]'s.

use std::ffi::c_void;

use crate::error::Errno;
use crate::map::Storage;
use crate::ringbuf::{Ringbuf, commit};

/// # Safety
/// `map` is a live map's `BpfMap` (verifier-checked `ARG_CONST_MAP_PTR`).
unsafe fn ring_of<'a>(map: *mut c_void) -> Option<&'a Ringbuf> {
    // SAFETY: per the contract.
    match &unsafe { super::owner(map) }.storage {
        Storage::Ringbuf(r) => Some(r),
        _ => None,
    }
}

/// `bpf_ringbuf_output(map, data, size, flags)`: 0, -EINVAL for unknown flags, -EAGAIN when
/// the record does not fit.
///
/// # Safety
/// `map` is a live RINGBUF map, `data` `size` readable bytes (the verifier's checks).
pub unsafe fn bpf_ringbuf_output(map: *mut c_void, data: *const u8, size: u64, flags: u64) -> i64 {
    // SAFETY: per the contract.
    let (rb, data) = unsafe {
        (
            ring_of(map),
            std::slice::from_raw_parts(data, size as usize),
        )
    };
    match rb.map(|rb| rb.output(data, flags)) {
        Some(Ok(())) => 0,
        Some(Err(e)) => -(e.code() as i64),
        None => -(Errno::EINVAL.code() as i64),
    }
}

/// `bpf_ringbuf_reserve(map, size, flags)`: the payload of a new BUSY record, or NULL for
/// non-zero flags or no room.
///
/// # Safety
/// `map` is a live RINGBUF map.
pub unsafe fn bpf_ringbuf_reserve(map: *mut c_void, size: u64, flags: u64) -> *mut u8 {
    if flags != 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: per the contract.
    match unsafe { ring_of(map) } {
        Some(rb) => rb.reserve(size),
        None => std::ptr::null_mut(),
    }
}

/// `bpf_ringbuf_submit(sample, flags)` (`discard` false) and `bpf_ringbuf_discard(sample,
/// flags)` (`discard` true).
///
/// # Safety
/// `sample` is a reservation not yet committed (the verifier's reference tracking of
/// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE` guarantees exactly one commit).
pub unsafe fn bpf_ringbuf_commit(sample: *mut u8, flags: u64, discard: bool) {
    // SAFETY: per the contract.
    unsafe { commit(sample, flags, discard) }
}

/// `bpf_ringbuf_query(map, flags)`.
///
/// # Safety
/// `map` is a live RINGBUF map.
pub unsafe fn bpf_ringbuf_query(map: *mut c_void, flags: u64) -> u64 {
    // SAFETY: per the contract.
    unsafe { ring_of(map) }.map_or(0, |rb| rb.query(flags))
}

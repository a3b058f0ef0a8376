//! The ring buffer helpers translated programs call (`bpf_ringbuf_output`, `_reserve`,
//! `_submit`, `_discard`, `_query`): shims of the helper calling convention over
//! kbpf-maps' ring buffer (`kbpf_maps::raw`'s entry points), which owns the ring's records
//! and positions.

use std::ffi::c_void;

use kbpf_maps::raw as rb;

/// `bpf_ringbuf_output(map, data, size, flags)`.
pub(crate) unsafe extern "C" fn bpf_ringbuf_output(
    map: u64,
    data: u64,
    size: u64,
    flags: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked `map` (a RINGBUF, ARG_CONST_MAP_PTR) and that `data` holds
    // `size` readable bytes (ARG_PTR_TO_MEM | MEM_RDONLY, ARG_CONST_SIZE_OR_ZERO).
    unsafe { rb::bpf_ringbuf_output(map as *mut c_void, data as *const u8, size, flags) as u64 }
}

/// `bpf_ringbuf_reserve(map, size, flags)`.
pub(crate) unsafe extern "C" fn bpf_ringbuf_reserve(
    map: u64,
    size: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked that `map` is a RINGBUF (ARG_CONST_MAP_PTR).
    unsafe { rb::bpf_ringbuf_reserve(map as *mut c_void, size, flags) as u64 }
}

/// `bpf_ringbuf_submit(sample, flags)`.
pub(crate) unsafe extern "C" fn bpf_ringbuf_submit(
    sample: u64,
    flags: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier's reference tracking (ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE): a
    // reservation of this program, released exactly once.
    unsafe { rb::bpf_ringbuf_commit(sample as *mut u8, flags, false) };
    0
}

/// `bpf_ringbuf_discard(sample, flags)`.
pub(crate) unsafe extern "C" fn bpf_ringbuf_discard(
    sample: u64,
    flags: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: as `bpf_ringbuf_submit`.
    unsafe { rb::bpf_ringbuf_commit(sample as *mut u8, flags, true) };
    0
}

/// `bpf_ringbuf_query(map, flags)`.
pub(crate) unsafe extern "C" fn bpf_ringbuf_query(
    map: u64,
    flags: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked that `map` is a RINGBUF (ARG_CONST_MAP_PTR).
    unsafe { rb::bpf_ringbuf_query(map as *mut c_void, flags) }
}

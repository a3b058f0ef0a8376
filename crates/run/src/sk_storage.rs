//! Socket-local storage (`BPF_MAP_TYPE_SK_STORAGE`): `bpf_sk_storage_get` and
//! `bpf_sk_storage_delete`, after `net/core/bpf_sk_storage.c`.
//!
//! The only socket a kbpf program can hold is the one a skb test run hangs on its packet
//! (`SkBuff::attach_test_sock`, as `bpf_prog_test_run_skb` allocates one), so storage lives
//! here, per thread, keyed by socket and map, and goes with its socket: when the test run's
//! skb is dropped, [`forget_socket`] frees what the run created — the kernel frees a
//! socket's storage with the socket (`bpf_sk_storage_free`), at the end of the run.

use std::cell::RefCell;
use std::collections::HashMap;

/// `BPF_SK_STORAGE_GET_F_CREATE`.
const BPF_SK_STORAGE_GET_F_CREATE: u64 = 1;
/// `-ENOENT` / `-EINVAL` as a helper's return register.
const ENOENT: u64 = (-(kbpf_uapi::errno::ENOENT as i64)) as u64;
const EINVAL: u64 = (-(kbpf_uapi::errno::EINVAL as i64)) as u64;

/// `(socket, map) -> value` (8-byte words, so a value is 8-aligned as the kernel's
/// cache-aligned storage data is at least).
type Storages = HashMap<(u64, u64), Box<[u64]>>;

thread_local! {
    static STORAGE: RefCell<Storages> = RefCell::new(HashMap::new());
}

/// Frees the storage of the socket at `sk` (the socket is going away).
pub(crate) fn forget_socket(sk: u64) {
    STORAGE.with(|s| s.borrow_mut().retain(|&(owner, _), _| owner != sk));
    GRAVEYARD.with(|g| g.borrow_mut().retain(|&(owner, _)| owner != sk));
}

/// `value_size` of the SK_STORAGE map at `map`.
///
/// # Safety
/// `map` must be a live map's raw pointer (verifier-checked: `CONST_PTR_TO_MAP` of type
/// SK_STORAGE).
unsafe fn value_size(map: u64) -> usize {
    // SAFETY: the caller's contract.
    unsafe { (*(map as *const kbpf_maps::layout::BpfMap)).value_size as usize }
}

/// `bpf_sk_storage_get(map, sk, value, flags)`: the socket's storage in `map`; with
/// `BPF_SK_STORAGE_GET_F_CREATE`, created first if missing — a copy of `value`, or zeroes
/// when `value` is NULL. NULL when there is none and none may be created, for unknown
/// flags, and for a socket that is not a full one.
pub(crate) unsafe extern "C" fn bpf_sk_storage_get(
    map: u64,
    sk: u64,
    value: u64,
    flags: u64,
    _: u64,
) -> u64 {
    if sk == 0 || flags > BPF_SK_STORAGE_GET_F_CREATE {
        return 0;
    }
    // SAFETY: `sk` is a socket pointer (ARG_PTR_TO_BTF_ID_SOCK_COMMON, non-NULL above).
    if unsafe { crate::sock_helpers::bpf_sk_fullsock(sk, 0, 0, 0, 0) } == 0 {
        return 0;
    }
    STORAGE.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(v) = s.get_mut(&(sk, map)) {
            return v.as_mut_ptr() as u64;
        }
        if flags & BPF_SK_STORAGE_GET_F_CREATE == 0 {
            return 0;
        }
        // SAFETY: `map` is the helper's CONST_PTR_TO_MAP of type SK_STORAGE.
        let size = unsafe { value_size(map) };
        let mut data = vec![0u64; size.div_ceil(8)].into_boxed_slice();
        if value != 0 {
            // SAFETY: `value` points at `value_size` readable bytes
            // (ARG_PTR_TO_MAP_VALUE_OR_NULL, checked against this map by the verifier);
            // `data` has at least that many.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    value as *const u8,
                    data.as_mut_ptr() as *mut u8,
                    size,
                )
            };
        }
        let p = data.as_mut_ptr() as u64;
        s.insert((sk, map), data);
        p
    })
}

/// `bpf_sk_storage_delete(map, sk)`: 0, or `-ENOENT` when the socket has no storage in
/// `map`; `-EINVAL` for a socket that is not a full one.
pub(crate) unsafe extern "C" fn bpf_sk_storage_delete(
    map: u64,
    sk: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: `sk` is a non-NULL socket pointer (ARG_PTR_TO_BTF_ID_SOCK_COMMON).
    if unsafe { crate::sock_helpers::bpf_sk_fullsock(sk, 0, 0, 0, 0) } == 0 {
        return EINVAL;
    }
    // Not freed at once: the kernel frees storage through RCU, so a value pointer the
    // program got earlier in the run stays readable until the run ends. kbpf keeps it with
    // its socket, and forget_socket frees both.
    STORAGE.with(|s| match s.borrow_mut().remove(&(sk, map)) {
        Some(v) => {
            GRAVEYARD.with(|g| g.borrow_mut().push((sk, v)));
            0
        }
        None => ENOENT,
    })
}

thread_local! {
    /// Deleted values, kept until their socket goes (see `bpf_sk_storage_delete`).
    static GRAVEYARD: RefCell<Vec<(u64, Box<[u64]>)>> = const { RefCell::new(Vec::new()) };
}

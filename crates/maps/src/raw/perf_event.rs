//! `bpf_perf_event_output` from programs: the sample goes to the event of the slot the flags
//! name.

use std::ffi::c_void;

use crate::error::Errno;
use crate::layout::BpfMap;
use crate::map::MapInner;
use crate::perf_event::{BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK};

/// `__bpf_perf_event_output`: writes `parts` (the helper's data, then any packet bytes) as one
/// sample to the event `flags` designates: `-E2BIG` for an index past `max_entries`,
/// `-ENOENT` for an empty slot, `-EOPNOTSUPP` for an event of another CPU than the running
/// one, `-ENOSPC` when the event's buffer is full; 0 on success. The callers check the
/// helper-specific flags first.
///
/// # Safety
/// `map` must be the raw pointer of a live PERF_EVENT_ARRAY (verifier-checked).
pub unsafe fn perf_event_output(map: *mut c_void, flags: u64, parts: &[&[u8]]) -> i64 {
    // SAFETY: the caller's contract: `owner` is the live MapInner.
    let inner = unsafe { &*((*(map as *const BpfMap)).owner as *const MapInner) };
    let cpu = crate::current_cpu();
    let mut index = flags & BPF_F_INDEX_MASK;
    if index == BPF_F_CURRENT_CPU {
        index = u64::from(cpu);
    }
    if index >= u64::from(inner.max_entries) {
        return -(Errno::E2BIG.code() as i64);
    }
    let Some(ev) = inner
        .perf_slots()
        .and_then(|s| s.0.lock().get(index as usize).cloned().flatten())
    else {
        return -(Errno::ENOENT.code() as i64);
    };
    if ev.cpu() != cpu {
        return -(Errno::EOPNOTSUPP.code() as i64);
    }
    ev.push(parts)
}

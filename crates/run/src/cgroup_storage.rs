//! Cgroup-local storage (`BPF_MAP_TYPE_CGROUP_STORAGE`, `PERCPU_CGROUP_STORAGE`) during
//! test runs: `bpf_get_local_storage`, after `kernel/bpf/local_storage.c` and `net/bpf/
//! test_run.c`.
//!
//! A program attached to a cgroup finds the storage of its (cgroup, attach type) there. A
//! `BPF_PROG_TEST_RUN` has no cgroup: `bpf_test_run` allocates a fresh, zeroed storage for
//! each storage map the program uses (`bpf_cgroup_storages_alloc`), the runs of its repeat
//! loop share it, and it is freed when the test run ends. kbpf does the same per thread:
//! [`start_test_run`] drops the previous run's storage, and the first `bpf_get_local_storage`
//! of a run allocates the map's (for a per-CPU map, this CPU's copy).

use std::cell::RefCell;
use std::collections::HashMap;

/// `(map, cpu) -> value` (8-byte words: values are 8-aligned, as the kernel's are at least).
type Storages = HashMap<(u64, u32), Box<[u64]>>;

thread_local! {
    static STORAGE: RefCell<Storages> = RefCell::new(HashMap::new());
}

/// A test run starts: no storage yet (the previous run's is freed).
pub(crate) fn start_test_run() {
    STORAGE.with(|s| s.borrow_mut().clear());
}

/// `bpf_get_local_storage(map, flags)`: the run's storage of `map` (zeroed when the run
/// began), this CPU's copy for a per-CPU map. `flags` must be 0 (the verifier checks that).
pub(crate) unsafe extern "C" fn bpf_get_local_storage(
    map: u64,
    _flags: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: `map` is the helper's CONST_PTR_TO_MAP of a cgroup storage type (verifier).
    let (value_size, map_type) = unsafe {
        let m = &*(map as *const kbpf_maps::layout::BpfMap);
        (m.value_size as usize, m.map_type)
    };
    let cpu = if map_type == kbpf_maps::sock_maps::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE {
        kbpf_maps::layout::current_cpu()
    } else {
        0
    };
    STORAGE.with(|s| {
        s.borrow_mut()
            .entry((map, cpu))
            .or_insert_with(|| vec![0u64; value_size.div_ceil(8)].into_boxed_slice())
            .as_mut_ptr() as u64
    })
}

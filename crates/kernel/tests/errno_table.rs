//! The errno table of `kernel-semantics.md` (§5, §11) replayed against the live kernel,
//! plus the kernel-only rows that the backend-neutral scenarios cannot express (fd 0 as
//! the template, flags as stored by the kernel, raw map-fd arguments).
//!
//! Every test skips (printing `SKIP: bpf() unavailable: …`) where `bpf()` does not work.

use std::os::fd::AsFd;

use kbpf_kernel::consts::*;
use kbpf_kernel::scenario::{self, Backend, CLOSED_FD, FdArg, KernelBackend, MapSpec};
use kbpf_kernel::{Errno, KernelMap, MapCreateAttr, bpf_available_or_skip, raw};

#[test]
fn every_errno_table_row_matches_the_kernel() {
    if !bpf_available_or_skip("errno_table") {
        return;
    }
    let mut backend = KernelBackend::new().expect("open /dev/null");
    let table = scenario::errno_table();
    let mut failures = Vec::new();
    for sc in &table {
        if let Err(f) = scenario::run(&mut backend, sc) {
            failures.push(f.to_string());
        }
    }
    println!(
        "{} scenarios, {} steps, {} mismatches against {}",
        table.len(),
        table.iter().map(|s| s.steps.len()).sum::<usize>(),
        failures.len(),
        backend.describe()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn template_fd_zero_is_not_a_map() {
    if !bpf_available_or_skip("template_fd_zero") {
        return;
    }
    // The spec row "AoM inner_map_fd = 0: EINVAL" holds when fd 0 is open and is not a
    // BPF map (a terminal or /dev/null); under a harness that closed stdin it would be
    // EBADF, and if fd 0 happened to be a map it would be accepted — so check first.
    let target = std::fs::read_link("/proc/self/fd/0");
    let expected = match &target {
        Err(_) => Errno::EBADF,
        Ok(p) if p.to_string_lossy().contains("bpf-map") => {
            println!("SKIP: fd 0 is a BPF map here");
            return;
        }
        Ok(_) => Errno::EINVAL,
    };
    let attr = MapCreateAttr::new(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 4)
        .inner_raw(0)
        .name("kt_fd0");
    let err = KernelMap::create(&attr).expect_err("fd 0 is not a map");
    assert_eq!(err.errno(), Some(expected), "{err} (fd 0 -> {target:?})");
}

#[test]
fn rdonly_wronly_are_stripped_from_stored_flags() {
    if !bpf_available_or_skip("rdonly_stripped") {
        return;
    }
    let ro = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 4, 3)
            .flags(BPF_F_RDONLY)
            .name("kt_ro"),
    )
    .expect("create RDONLY array");
    let info = ro.info().expect("info");
    assert_eq!(
        info.map_flags, 0,
        "RDONLY is a property of the fd, not the map"
    );
    // The fd itself is read-only for user space.
    let err = ro
        .update(&0u32.to_ne_bytes(), &1u32.to_ne_bytes(), BPF_ANY)
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EPERM), "{err}");
    assert_eq!(ro.lookup(&0u32.to_ne_bytes()).expect("lookup"), vec![0; 4]);

    let flagged = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 4, 3)
            .flags(BPF_F_INNER_MAP | BPF_F_MMAPABLE)
            .name("kt_flagged"),
    )
    .expect("create flagged array");
    assert_eq!(
        flagged.info().expect("info").map_flags,
        BPF_F_INNER_MAP | BPF_F_MMAPABLE
    );
}

#[test]
fn raw_map_fd_arguments() {
    if !bpf_available_or_skip("raw_map_fd") {
        return;
    }
    let devnull = std::fs::File::open("/dev/null").expect("open /dev/null");
    let key = [0u8; 4];
    let mut value = [0u8; 4];
    let mut next = [0u8; 4];
    use std::os::fd::AsRawFd;
    for (fd, want) in [
        (CLOSED_FD, Errno::EBADF),
        (devnull.as_raw_fd(), Errno::EINVAL),
    ] {
        // SAFETY: `fd` is not a map (closed number or /dev/null), so the kernel fails
        // before touching the buffers.
        unsafe {
            assert_eq!(raw::map_lookup_elem_raw(fd, &key, &mut value, 0), Err(want));
            assert_eq!(raw::map_update_elem_raw(fd, &key, &value, 0), Err(want));
            assert_eq!(raw::map_delete_elem_raw(fd, &key, 0, 0), Err(want));
            assert_eq!(raw::map_get_next_key_raw(fd, None, &mut next), Err(want));
        }
    }
}

#[test]
fn delete_flags_field_is_checked_too() {
    if !bpf_available_or_skip("delete_flags_field") {
        return;
    }
    let h = KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_HASH, 4, 4, 4).name("kt_delflags"))
        .expect("create hash");
    h.update(&1u32.to_ne_bytes(), &2u32.to_ne_bytes(), BPF_ANY)
        .expect("update");
    let err = h.delete_with_fields(&1u32.to_ne_bytes(), 0, 1).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EINVAL), "{err}");
    h.delete(&1u32.to_ne_bytes()).expect("plain delete");
}

#[test]
fn map_of_maps_lookup_returns_info_id() {
    if !bpf_available_or_skip("mom_lookup_id") {
        return;
    }
    let tmpl = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 8, 4)
            .flags(BPF_F_INNER_MAP)
            .name("kt_tmpl"),
    )
    .expect("template");
    let outer = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 2)
            .inner(tmpl.as_fd())
            .name("kt_outer"),
    )
    .expect("outer");
    let inner = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 8, 9)
            .flags(BPF_F_INNER_MAP)
            .name("kt_inner"),
    )
    .expect("inner");
    outer
        .update_fd(&1u32.to_ne_bytes(), inner.as_fd(), BPF_ANY)
        .expect("insert");
    let id = u32::from_ne_bytes(
        outer
            .lookup(&1u32.to_ne_bytes())
            .expect("lookup")
            .try_into()
            .expect("4 bytes"),
    );
    assert_eq!(id, inner.info().expect("info").id);
    assert_eq!(id, inner.id());
    // The inner map can be reopened by that id and sees the same data.
    inner
        .update(&8u32.to_ne_bytes(), &77u64.to_ne_bytes(), BPF_ANY)
        .expect("write inner");
    let again = KernelMap::from_id(id).expect("from_id");
    assert_eq!(
        again.lookup(&8u32.to_ne_bytes()).expect("lookup"),
        77u64.to_ne_bytes()
    );
    let info = again.info().expect("info");
    assert_eq!(
        (
            info.map_type,
            info.key_size,
            info.value_size,
            info.max_entries,
            info.name.as_str()
        ),
        (BPF_MAP_TYPE_ARRAY, 4, 8, 9, "kt_inner")
    );
}

#[test]
fn pin_and_reopen() {
    if !bpf_available_or_skip("pin_and_reopen") {
        return;
    }
    let dir = std::path::Path::new("/sys/fs/bpf");
    if !dir.is_dir() {
        println!("SKIP: no bpffs at /sys/fs/bpf");
        return;
    }
    let path = dir.join(format!("kbpf_kernel_test_{}", std::process::id()));
    let m = KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_HASH, 4, 4, 4).name("kt_pinned"))
        .expect("create");
    m.update(&3u32.to_ne_bytes(), &33u32.to_ne_bytes(), BPF_ANY)
        .expect("update");
    m.pin(&path).expect("pin");
    let reopened = KernelMap::from_pinned(&path);
    let _ = std::fs::remove_file(&path);
    let reopened = reopened.expect("from_pinned");
    assert_eq!(reopened.id(), m.id());
    assert_eq!(
        reopened.lookup(&3u32.to_ne_bytes()).expect("lookup"),
        33u32.to_ne_bytes()
    );
    assert_eq!(
        reopened.keys().expect("keys"),
        vec![3u32.to_ne_bytes().to_vec()]
    );
    // Pinning where a file already exists fails with EEXIST; a missing pin with ENOENT.
    let err = KernelMap::from_pinned(&path).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
}

#[test]
fn percpu_values_have_one_slot_per_possible_cpu() {
    if !bpf_available_or_skip("percpu_values") {
        return;
    }
    let cpus = kbpf_kernel::num_possible_cpus().expect("possible cpus");
    let m = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2).name("kt_percpu"),
    )
    .expect("create");
    assert_eq!(m.user_value_len(), 8 * cpus);
    let mut v = vec![0u8; 8 * cpus];
    for c in 0..cpus {
        v[c * 8] = c as u8 + 1;
    }
    m.update(&1u32.to_ne_bytes(), &v, BPF_ANY).expect("update");
    assert_eq!(m.lookup(&1u32.to_ne_bytes()).expect("lookup"), v);
    // A value of the plain value_size is refused before reaching the kernel.
    assert!(m.update(&1u32.to_ne_bytes(), &[0; 4], BPF_ANY).is_err());
}

#[test]
fn kernel_backend_create_uses_closed_and_not_a_map() {
    if !bpf_available_or_skip("backend_fd_args") {
        return;
    }
    let mut b = KernelBackend::new().expect("backend");
    let spec = MapSpec::new(BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 2);
    assert_eq!(
        b.create("kt_c", &spec, Some(FdArg::Closed)).unwrap_err(),
        Errno::EBADF
    );
    assert_eq!(
        b.create("kt_n", &spec, Some(FdArg::NotAMap)).unwrap_err(),
        Errno::EINVAL
    );
}

/// The table is not vacuous: changing any single expectation makes the replay fail at
/// exactly that step.
#[test]
fn every_expectation_is_checked() {
    use kbpf_kernel::scenario::{Expect, Failure, Step};
    if !bpf_available_or_skip("every_expectation_is_checked") {
        return;
    }
    let mut backend = KernelBackend::new().expect("open /dev/null");
    let mut mutated_steps = 0;
    for sc in scenario::errno_table() {
        for i in 0..sc.steps.len() {
            let mut m = sc.clone();
            let expect = match &mut m.steps[i] {
                Step::Create { expect, .. }
                | Step::Update { expect, .. }
                | Step::Lookup { expect, .. }
                | Step::Delete { expect, .. }
                | Step::DeleteWithValueField { expect, .. }
                | Step::GetNextKey { expect, .. } => expect,
                Step::Close { .. } => continue,
            };
            *expect = match expect.clone() {
                Expect::Ok | Expect::Bytes(_) | Expect::IdOf(_) => Expect::Err(Errno::EPERM),
                Expect::Err(_) => Expect::Bytes(vec![0xa5; 3]),
            };
            mutated_steps += 1;
            match scenario::run(&mut backend, &m).map_err(|f| *f) {
                Err(Failure::Mismatch { index, .. }) => {
                    assert_eq!(
                        index, i,
                        "{}: mutation of step {i} caught at {index}",
                        sc.name
                    )
                }
                other => panic!("{}: mutation of step {i} not caught: {other:?}", sc.name),
            }
        }
    }
    println!("{mutated_steps} mutated expectations, all caught");
}

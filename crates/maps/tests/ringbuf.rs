//! BPF_MAP_TYPE_RINGBUF on kbpf against the live kernel (where `bpf()` works): creation
//! errnos of `ringbuf_map_alloc`, the user-space element commands (all unsupported), use as an
//! inner-map template, and `memlock` as `/proc/self/fdinfo` reports it. Without a kernel the
//! expectations recorded from Linux 6.18 are checked on kbpf alone.

use std::os::fd::{AsFd, AsRawFd};

use kbpf_kernel::{KernelMap, MapCreateAttr, bpf_available};
use kbpf_maps::uapi::*;
use kbpf_maps::{Errno, Map, MapAttr, MapType};

/// (max_entries, key_size, value_size, flags, errno on 6.18 or 0 for success)
const CREATE_CASES: &[(u32, u32, u32, u32, i32)] = &[
    (4096, 0, 0, 0, 0),
    (8192, 0, 0, 0, 0),
    (1 << 20, 0, 0, 0, 0),
    (4096, 0, 0, BPF_F_NUMA_NODE, 0),
    // Not a power of two / not page-aligned / too small.
    (12288, 0, 0, 0, 22),
    (2048, 0, 0, 0, 22),
    (1, 0, 0, 0, 22),
    (0, 0, 0, 0, 22),
    (4097, 0, 0, 0, 22),
    // Keys and values are not allowed.
    (4096, 4, 0, 0, 22),
    (4096, 0, 4, 0, 22),
    // Flags other than NUMA_NODE.
    (4096, 0, 0, BPF_F_NO_PREALLOC, 22),
    (4096, 0, 0, BPF_F_RDONLY_PROG, 22),
    (4096, 0, 0, BPF_F_INNER_MAP, 22),
    (4096, 0, 0, BPF_F_MMAPABLE, 22),
    (4096, 0, 0, BPF_F_ZERO_SEED, 22),
];

fn kbpf_create(n: u32, k: u32, v: u32, f: u32) -> Result<Map, i32> {
    Map::create(&MapAttr::new(MapType::Ringbuf, k, v, n).flags(f), None).map_err(|e| e.errno.code())
}

fn kernel_create(n: u32, k: u32, v: u32, f: u32) -> Result<KernelMap, i32> {
    KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_RINGBUF, k, v, n).flags(f))
        .map_err(|e| e.errno().map_or(-1, |e| e.0))
}

fn kres<T>(r: Result<T, kbpf_kernel::Error>) -> Result<(), i32> {
    r.map(|_| ()).map_err(|e| e.errno().map_or(-1, |e| e.0))
}

fn ores<T>(r: Result<T, kbpf_maps::MapError>) -> Result<(), i32> {
    r.map(|_| ()).map_err(|e| e.errno.code())
}

fn fdinfo_memlock(m: &KernelMap) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", m.as_raw_fd()))
        .expect("fdinfo of a map fd");
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("memlock line in fdinfo")
}

#[test]
fn create_checks_match_ringbuf_map_alloc() {
    let kernel = bpf_available().is_ok();
    for &(n, k, v, f, want) in CREATE_CASES {
        let ours = kbpf_create(n, k, v, f).map(|_| ());
        let expect = if want == 0 { Ok(()) } else { Err(want) };
        assert_eq!(ours, expect, "kbpf ringbuf n={n} k={k} v={v} flags={f:#x}");
        if kernel {
            let theirs = kernel_create(n, k, v, f).map(|_| ());
            assert_eq!(
                theirs, expect,
                "kernel ringbuf n={n} k={k} v={v} flags={f:#x}"
            );
        }
    }
    // A rejected ringbuf names the map and the reason.
    let e = Map::create(
        &MapAttr::new(MapType::Ringbuf, 0, 0, 12288).name("events"),
        None,
    )
    .unwrap_err();
    assert_eq!(e.errno, Errno::EINVAL);
    assert!(e.to_string().starts_with("map 'events': "), "{e}");
    assert!(e.to_string().contains("12288"), "{e}");
}

#[test]
fn element_commands_are_unsupported() {
    let ours = kbpf_create(4096, 0, 0, 0).expect("kbpf ringbuf");
    let theirs = bpf_available()
        .is_ok()
        .then(|| kernel_create(4096, 0, 0, 0).expect("kernel ringbuf"));
    let enotsupp = Err(524);
    // kbpf alone: every element command says ENOTSUPP.
    assert_eq!(ores(ours.lookup_elem(&[])), enotsupp);
    assert_eq!(ores(ours.update_elem(&[], &[], BPF_ANY)), enotsupp);
    assert_eq!(ores(ours.delete_elem(&[])), enotsupp);
    assert_eq!(ores(ours.get_next_key(None)), enotsupp);
    // A key on a key_size-0 map is refused before the map is asked (EINVAL).
    assert_eq!(ores(ours.lookup_elem(&[0; 4])), Err(22));
    // BPF_F_LOCK needs a spin lock the ringbuf does not have.
    assert_eq!(ores(ours.lookup_elem_flags(&[], BPF_F_LOCK)), Err(22));
    assert_eq!(ores(ours.update_elem(&[], &[], BPF_F_LOCK)), Err(22));
    assert_eq!(ores(ours.lookup_and_delete_elem(&[], 0)), enotsupp);
    assert_eq!(ores(ours.update_batch(&[&[]], &[&[]], 0).1), enotsupp);
    assert!(ours.keys().is_empty());
    if let Some(k) = theirs {
        assert_eq!(kres(k.lookup(&[])), enotsupp, "kernel lookup");
        assert_eq!(kres(k.update(&[], &[], BPF_ANY)), enotsupp, "kernel update");
        assert_eq!(kres(k.delete(&[])), enotsupp, "kernel delete");
        assert_eq!(kres(k.get_next_key(None)), enotsupp, "kernel get_next_key");
        assert_eq!(
            kres(k.lookup_with_flags(&[], BPF_F_LOCK)),
            Err(22),
            "kernel lookup BPF_F_LOCK"
        );
        assert_eq!(
            kres(k.update(&[], &[], BPF_F_LOCK)),
            Err(22),
            "kernel update BPF_F_LOCK"
        );
    }
}

#[test]
fn ringbuf_as_inner_map_template() {
    // Generic map_meta_equal: type, key/value size and flags compared, max_entries not.
    let tmpl = kbpf_create(4096, 0, 0, 0).expect("template");
    let outer = Map::create(
        &MapAttr::new(MapType::ArrayOfMaps, 4, 4, 4).name("rb_outer"),
        Some(&tmpl),
    )
    .expect("outer with a ringbuf template");
    let big = kbpf_create(8192, 0, 0, 0).expect("8192");
    let numa = kbpf_create(4096, 0, 0, BPF_F_NUMA_NODE).expect("numa");
    let arr = Map::create(&MapAttr::new(MapType::Array, 4, 4, 4), None).expect("array");
    assert_eq!(
        ores(outer.update_inner_map(&0u32.to_ne_bytes(), &big, BPF_ANY)),
        Ok(())
    );
    assert_eq!(
        ores(outer.update_inner_map(&1u32.to_ne_bytes(), &tmpl, BPF_ANY)),
        Ok(())
    );
    assert_eq!(
        ores(outer.update_inner_map(&2u32.to_ne_bytes(), &numa, BPF_ANY)),
        Err(22)
    );
    assert_eq!(
        ores(outer.update_inner_map(&2u32.to_ne_bytes(), &arr, BPF_ANY)),
        Err(22)
    );
    assert_eq!(
        outer.lookup_elem(&0u32.to_ne_bytes()).expect("slot 0"),
        big.id().to_ne_bytes()
    );
    let hom = Map::create(&MapAttr::new(MapType::HashOfMaps, 4, 4, 4), Some(&tmpl))
        .expect("hash of ringbufs");
    assert_eq!(
        ores(hom.update_inner_map(&9u32.to_ne_bytes(), &big, BPF_ANY)),
        Ok(())
    );

    if bpf_available().is_err() {
        return;
    }
    let ktmpl = kernel_create(4096, 0, 0, 0).expect("kernel template");
    let kouter = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 4).inner(ktmpl.as_fd()),
    )
    .expect("kernel outer");
    let kbig = kernel_create(8192, 0, 0, 0).expect("kernel 8192");
    let knuma = kernel_create(4096, 0, 0, BPF_F_NUMA_NODE).expect("kernel numa");
    assert_eq!(
        kres(kouter.update_fd(&0u32.to_ne_bytes(), kbig.as_fd(), BPF_ANY)),
        Ok(())
    );
    assert_eq!(
        kres(kouter.update_fd(&2u32.to_ne_bytes(), knuma.as_fd(), BPF_ANY)),
        Err(22)
    );
}

#[test]
fn memlock_matches_the_kernel() {
    // ringbuf_map_mem_usage on 6.18 x86_64: sizeof(struct bpf_ringbuf_map), all pages (3 meta
    // pages + data pages), and the page-pointer array with the data pages listed twice.
    let host = kbpf_kernel::host_profile_or_skip("ringbuf memlock");
    for n in [4096u32, 8192, 1 << 16, 1 << 20] {
        let ours = kbpf_create(n, 0, 0, 0).expect("kbpf ringbuf");
        let pages = n as u64 / 4096;
        assert_eq!(
            ours.memlock(),
            kbpf_maps::MapsProfile::BUILTIN.sizeof_bpf_ringbuf_map as u64
                + (3 + pages) * 4096
                + (3 + 2 * pages) * 8,
            "ringbuf {n}"
        );
        if let Some(host) = &host {
            // The kernel's figure, against kbpf under the kernel's own profile.
            let ours = Map::create(
                &MapAttr::new(MapType::Ringbuf, 0, 0, n).profile(host.maps),
                None,
            )
            .expect("kbpf ringbuf (host profile)");
            let theirs = kernel_create(n, 0, 0, 0).expect("kernel ringbuf");
            assert_eq!(
                ours.memlock(),
                fdinfo_memlock(&theirs),
                "ringbuf {n} vs kernel"
            );
        }
    }
    let m = Map::create(
        &MapAttr::new(MapType::Ringbuf, 0, 0, 4096).name("events"),
        None,
    )
    .expect("named ringbuf");
    assert_eq!(m.info().map_type.to_string(), "ringbuf");
}

#[test]
fn records_through_the_map_handle() {
    let rb = kbpf_create(4096, 0, 0, 0).expect("ringbuf");
    rb.ringbuf_output(b"hello", 0).expect("output");
    rb.ringbuf_output(b"world!", BPF_RB_FORCE_WAKEUP)
        .expect("output");
    // 5 + 8 -> 16 bytes, 6 + 8 -> 16 bytes.
    assert_eq!(rb.ringbuf_avail_data().expect("avail"), 32);
    let mut got = Vec::new();
    assert_eq!(
        rb.ringbuf_consume(|r| got.push(r.to_vec()))
            .expect("consume"),
        2
    );
    assert_eq!(got, vec![b"hello".to_vec(), b"world!".to_vec()]);
    let e = rb.ringbuf_output(&[0; 5000], 0).unwrap_err();
    assert_eq!(e.errno, Errno::EAGAIN);
    let arr = Map::create(&MapAttr::new(MapType::Array, 4, 4, 1).name("arr"), None).expect("array");
    let e = arr.ringbuf_output(b"x", 0).unwrap_err();
    assert_eq!(e.errno, Errno::EINVAL);
    assert!(e.to_string().contains("not a ringbuf"), "{e}");
}

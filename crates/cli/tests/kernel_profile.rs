//! `kbpf kernel profile` and the profile choice end to end: the same commands under the
//! built-in profile and under the live kernel's give each profile's `memlock`, and the host
//! profile's figures are the kernel's own (bpftool's `map show` on the same map).

mod common;
use common::{kbpf, scratch_dir};

fn hash_memlock(dir: &std::path::Path, kernel: &[&str]) -> u64 {
    let mut args: Vec<&str> = kernel.to_vec();
    args.extend([
        "map",
        "create",
        "/sys/fs/bpf/h",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "4",
        "name",
        "h",
    ]);
    let (st, _, err) = kbpf(dir, &args);
    assert_eq!(st, 0, "{err}");
    let mut args: Vec<&str> = kernel.to_vec();
    args.extend(["-j", "map", "show", "pinned", "/sys/fs/bpf/h"]);
    let (st, out, err) = kbpf(dir, &args);
    assert_eq!(st, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    std::fs::remove_file(dir.join("h")).unwrap();
    v["bytes_memlock"].as_u64().unwrap()
}

#[test]
fn builtin_profile_is_shown_with_its_origins() {
    let dir = scratch_dir("kprof-show");
    let (st, out, err) = kbpf(&dir, &["kernel", "profile"]);
    assert_eq!(st, 0, "{err}");
    assert!(out.starts_with("profile: built-in"), "{out}");
    assert!(out.contains("maps.sizeof_bpf_htab          896"), "{out}");
    assert!(!out.contains("differs from built-in"));
    let (st, out, _) = kbpf(&dir, &["-j", "kernel", "profile"]);
    assert_eq!(st, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["maps"]["sizeof_bpf_htab"], 896);
    assert_eq!(v["origins"]["maps.sizeof_bpf_htab"]["source"], "builtin");
    // What -j prints, --kernel FILE.json reads back.
    let file = dir.join("p.json");
    std::fs::write(&file, &out).unwrap();
    let (st, out2, err) = kbpf(
        &dir,
        &[
            "-j",
            "--kernel",
            file.to_str().unwrap(),
            "kernel",
            "profile",
        ],
    );
    assert_eq!(st, 0, "{err}");
    assert_eq!(out, out2);
    let (st, _, err) = kbpf(&dir, &["--kernel", "nonsense", "kernel", "profile"]);
    assert_ne!(st, 0);
    assert!(err.contains("unknown kernel 'nonsense'"), "{err}");
    let (st, _, err) = kbpf(
        &dir,
        &["--kernel-btf", "/nonexistent/vmlinux", "kernel", "profile"],
    );
    assert_ne!(st, 0);
    assert!(err.contains("/nonexistent/vmlinux"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Both recorded 6.18.44 builds are honoured end to end: each profile's hash-map memlock is
/// what bpftool printed on that build.
#[test]
fn recorded_profiles_give_their_builds_memlock() {
    let dir = scratch_dir("kprof-rec");
    let profiles = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/profiles");
    for (build, want) in [("6.18.44-fc-v1098", 1424), ("6.18.44-fc-v1300", 1360)] {
        let file = format!("{profiles}/{build}.json");
        assert_eq!(hash_memlock(&dir, &["--kernel", &file]), want, "{build}");
    }
    assert_eq!(hash_memlock(&dir, &[]), 1424, "built-in");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--kernel host` gives the live kernel's memlock, whatever build it is, and the profile
/// names where each value came from.
#[test]
fn host_profile_matches_the_live_kernel() {
    if kbpf_kernel::host_profile_or_skip("kernel_profile host").is_none() {
        return;
    }
    let dir = scratch_dir("kprof-host");
    let (st, out, err) = kbpf(&dir, &["--kernel", "host", "kernel", "profile"]);
    assert_eq!(st, 0, "{err}");
    assert!(
        out.contains("btf /sys/kernel/btf/vmlinux: sizeof(struct bpf_htab)"),
        "{out}"
    );
    assert!(out.contains("probe: verifier says"), "{out}");
    let ours = hash_memlock(&dir, &["--kernel", "host"]);
    let k = kbpf_kernel::KernelMap::create(
        &kbpf_kernel::MapCreateAttr::new(kbpf_kernel::consts::BPF_MAP_TYPE_HASH, 4, 8, 4)
            .name("kprof"),
    )
    .unwrap();
    let fdinfo = std::fs::read_to_string(format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&k))
    ))
    .unwrap();
    let theirs: u64 = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(ours, theirs);
    let _ = std::fs::remove_dir_all(&dir);
}

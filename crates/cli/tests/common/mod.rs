//! What the CLI's process-level tests share: running the built `kbpf` binary against a private
//! bpffs directory, a fresh scratch directory per test process, and the map updates the BTF
//! tests make on `tests/btf/btf_maps.bpf.o`.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `kbpf --bpffs DIR ARGS…` and returns (exit code, stdout, stderr). `KBPF_KERNEL` is
/// removed so a developer's environment cannot change which profile a test sees.
pub fn kbpf(dir: &Path, args: &[&str]) -> (i32, String, String) {
    kbpf_without(dir, args, &[])
}

/// [`kbpf`] with these environment variables removed too (`KBPF_DAEMON` for a test whose
/// objects must live in the daemon).
pub fn kbpf_without(dir: &Path, args: &[&str], env: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kbpf"));
    for v in env {
        cmd.env_remove(v);
    }
    let o = cmd
        .arg("--bpffs")
        .arg(dir)
        .args(args)
        .env_remove("KBPF_KERNEL")
        .output()
        .expect("the kbpf binary runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// An empty directory unique to this test process and `tag`.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kbpf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// The updates run on `tests/btf/btf_maps.bpf.o`'s pinned maps before BTF-formatted output is
/// compared or recorded (`@M@` is the map pin directory).
pub fn btf_maps_updates() -> Vec<String> {
    let bytes = |b: &[u8]| {
        b.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let pattern: Vec<u8> = (0..128u32).map(|i| ((i * 37 + 11) & 0xff) as u8).collect();
    let mut named = vec![0u8; 128];
    named[0] = 0x80;
    named[2..4].copy_from_slice(&[0, 0x80]);
    named[32] = 1;
    named[33..39].copy_from_slice(b"hello\0");
    named[39..42].copy_from_slice(&[1, 2, 0x80]);
    named[60..64].copy_from_slice(&1u32.to_le_bytes());
    named[64..68].copy_from_slice(&(-3i32).to_le_bytes());
    named[72..80].copy_from_slice(&0x1_2345_6789u64.to_le_bytes());
    vec![
        format!(
            "map update pinned @M@/values key 0 0 0 0 value {}",
            bytes(&pattern)
        ),
        format!(
            "map update pinned @M@/values key 1 0 0 0 value {}",
            bytes(&named)
        ),
        "map update pinned @M@/flows key 1 2 3 4 5 6 7 8 value 9 10 11 12".into(),
        "map update pinned @M@/per_cpu key 0 0 0 0 value 1 2 3 0x84".into(),
        "map update pinned @M@/per_cpu_hash key 1 0 0 0 0 0 0 0 value 0xfb 0xff 0xff 0xff".into(),
        format!(
            "map update pinned @M@/pads key 0 0 0 0 value {}",
            bytes(&pattern[..32])
        ),
        "map update pinned @M@/leaf key 1 0 0 0 value 1 2 3 4 5 6 7 8".into(),
        "map update pinned @M@/btf_maps_data key 0 0 0 0 value 9 0 0 0".into(),
    ]
}

/// Katran's objects with its default features (`kbpf_katran::default_objects`): `None` (a
/// `SKIP:` line) where they cannot be built here — a failure under `CI=true` — and a panic on a
/// build error.
pub fn katran_objects() -> Option<PathBuf> {
    match kbpf_katran::default_objects() {
        Ok(dir) => Some(dir),
        Err(e @ kbpf_katran::BuildError::Missing(_)) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: {e}");
            println!("SKIP: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

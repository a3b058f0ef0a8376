//! What the CLI's process-level tests share: running the built `kbpf` binary against a private
//! bpffs directory, and a fresh scratch directory per test process.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `kbpf --bpffs DIR ARGS…` and returns (exit code, stdout, stderr). `KBPF_KERNEL` is
/// removed so a developer's environment cannot change which profile a test sees.
pub fn kbpf(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kbpf"))
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
#[allow(dead_code)]
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kbpf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

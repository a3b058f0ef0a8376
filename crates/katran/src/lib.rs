//! Katran's own fixture suite on kbpf.
//!
//! Katran (GPL-2.0) is read at run time from `../shared/third_party/katran` (or
//! `$KBPF_KATRAN_SRC`); nothing of it is copied here. This crate holds what it takes to run
//! its fixtures:
//! - [`fixture`]: a reader of the fixture headers' C++ initialiser lists;
//! - [`packet`]: a packet builder with the semantics of Katran's `PacketBuilder`;
//! - [`hash`]: folly's `IPAddress::hash()`, Katran's MurmurHash3 and Maglev ring;
//! - [`provision`]: the control plane of Katran's tester (`KatranLb` as
//!   `KatranTestProvision` drives it), writing `balancer.bpf.o`'s maps;
//! - [`runner`]: `balancer.bpf.o` on kbpf (interpreter, JIT) and on the live kernel.

pub mod cpp_expr;
pub mod fixture;
pub mod hash;
pub mod packet;
pub mod provision;
pub mod runner;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Katran's source tree: `$KBPF_KATRAN_SRC`, else `../shared/third_party/katran` beside the
/// repository.
pub fn katran_src() -> PathBuf {
    std::env::var_os("KBPF_KATRAN_SRC").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/third_party/katran"
            ))
        },
        PathBuf::from,
    )
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Why Katran's objects were not built.
#[derive(Debug)]
pub enum BuildError {
    /// A prerequisite is missing here (clang-19, Katran's sources, bash): the script's exit
    /// status 3. Tests skip on it (and fail under `CI=true`).
    Missing(String),
    /// The build itself failed.
    Failed(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Missing(w) => write!(f, "Katran objects cannot be built here: {w}"),
            BuildError::Failed(w) => write!(f, "scripts/katran-build.sh failed: {w}"),
        }
    }
}

/// Builds Katran's objects with `scripts/katran-build.sh` (compile-time features `defines`,
/// as `KBPF_KATRAN_DEFINES`) into `out`; returns the directory holding `balancer.bpf.o` and
/// the others.
pub fn build_objects(defines: &str, out: &Path) -> Result<PathBuf, BuildError> {
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/katran-build.sh"))
        .env("KBPF_KATRAN_SRC", katran_src())
        .env("KBPF_KATRAN_DEFINES", defines)
        .env("KBPF_KATRAN_OUT", out)
        .output()
        .map_err(|e| BuildError::Missing(format!("bash: {e}")))?;
    if !o.status.success() {
        let why = format!(
            "{}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
        return Err(if o.status.code() == Some(3) {
            BuildError::Missing(why)
        } else {
            BuildError::Failed(why)
        });
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// [`build_objects`] with Katran's default features, into `target/katran`.
pub fn default_objects() -> Result<PathBuf, BuildError> {
    build_objects("", &repo_root().join("target/katran"))
}

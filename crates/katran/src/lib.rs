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

pub mod fixture;
pub mod hash;
pub mod packet;
pub mod provision;
pub mod runner;

use std::path::PathBuf;

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

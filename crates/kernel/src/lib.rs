//! The live Linux kernel as kbpf's oracle, through the raw `bpf()` system call.
//!
//! kbpf aims to behave like the kernel: the same errno for the same map operation, the
//! same verdict and xlated code for the same program, the same result from a test run.
//! This crate asks the kernel the same questions so tests can compare:
//! - [`KernelMap`]: create maps (including map-of-maps with an `inner_map_fd` template),
//!   lookup/update/delete/get_next_key with the kernel's errno, `BPF_OBJ_GET_INFO_BY_FD`,
//!   pinning, opening by id or pin;
//! - [`KernelProg`]: load a program of [`kbpf_isa::Insn`]s and get the verifier log back,
//!   `BPF_PROG_TEST_RUN`, program info and the xlated instructions;
//! - [`scenario`]: map-operation scenarios written as data (steps + expected errno) and a
//!   small [`scenario::Backend`] trait; [`scenario::KernelBackend`] runs them here, and
//!   kbpf's own map subsystem implements the same trait, so one table
//!   ([`scenario::errno_table`], the errno table of `kernel-semantics.md` §5/§11) checks
//!   both engines;
//! - [`profile`]: the running kernel's [`kbpf_profile::KernelProfile`] (vmlinux BTF plus
//!   `bpf()` probes), which kernel-differential tests hand to kbpf;
//! - [`KernelLink`]: `BPF_LINK_CREATE` for tcx, which `kbpf net attach` uses to take a
//!   device's frames from the stack (and is the oracle's way to attach a TC program);
//! - [`fib`]: the host's routing decision for `bpf_fib_lookup` (rules, routes, neighbours
//!   over rtnetlink, in the calling thread's network namespace);
//! - [`KernelRingbuf`]: a consumer of a kernel ring buffer's mmap-ed records (libbpf's
//!   `ring_buffer__consume`), the oracle for kbpf's ring buffer helpers;
//! - [`raw`]: `unsafe` element commands on arbitrary fd numbers, for tests that need a
//!   closed or non-map fd as the map argument.
//!
//! Using it as an oracle: call [`bpf_available`] first. Where `bpf()` does not work
//! (no privileges, seccomp, `CONFIG_BPF_SYSCALL=n`, another OS) it explains why, and the
//! tests of this workspace print `SKIP: bpf() unavailable: <reason>` and pass, so the
//! suite stays green on machines without a usable kernel. Everything is synchronous and
//! owns its fds: dropping a [`KernelMap`] or [`KernelProg`] closes the fd (the object lives
//! on while pinned or referenced).
//!
//! ```
//! use kbpf_kernel::consts::*;
//! use kbpf_kernel::{Errno, KernelMap, MapCreateAttr};
//!
//! if kbpf_kernel::bpf_available_or_skip("doc example") {
//!     let arr = KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 8, 4).name("doc_arr"))?;
//!     arr.update(&1u32.to_ne_bytes(), &7u64.to_ne_bytes(), BPF_ANY)?;
//!     assert_eq!(arr.lookup(&1u32.to_ne_bytes())?, 7u64.to_ne_bytes());
//!     // Array elements cannot be deleted: the kernel says EINVAL.
//!     let err = arr.delete(&1u32.to_ne_bytes()).unwrap_err();
//!     assert_eq!(err.errno(), Some(Errno::EINVAL));
//! }
//! # Ok::<(), kbpf_kernel::Error>(())
//! ```
//!
//! All `unsafe` code lives in the private `sys` module, next to the `#[repr(C)]` copies of
//! `union bpf_attr`'s members.
#![deny(missing_docs)]

pub mod bpftool;
pub mod consts;
mod errno;
pub mod fib;
mod link;
mod map;
pub mod profile;
mod prog;
mod ringbuf;
pub mod scenario;
mod sys;

use std::sync::OnceLock;

pub use errno::Errno;
pub use link::KernelLink;
pub use map::{KernelMap, MapCreateAttr, MapInfo};
pub use profile::{host_profile, host_profile_or_skip};
pub use prog::{KernelProg, ProgInfo, ProgLoadAttr, ProgLoadError, TestRun};
pub use ringbuf::KernelRingbuf;
pub use sys::{TestRunArgs, num_possible_cpus};

/// Element commands on arbitrary fd numbers (`unsafe`: see each function's contract).
pub mod raw {
    pub use crate::sys::{
        map_delete_elem_raw, map_get_next_key_raw, map_lookup_elem_raw, map_update_elem_raw,
    };
}

/// An error from a `bpf()` command or from arguments that cannot be expressed to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel answered with an errno.
    #[error("{op} on {object}: {errno} ({name})", name = errno.name())]
    Sys {
        /// The command, e.g. `"BPF_MAP_UPDATE_ELEM"`.
        op: &'static str,
        /// The map or program concerned.
        object: String,
        /// The kernel's errno.
        errno: Errno,
    },
    /// A key or value of the wrong length (the syscall always moves the map's sizes, so a
    /// wrong-length buffer cannot be passed on).
    #[error("{object}: {what} is {got} bytes, the map uses {expected}")]
    Size {
        /// The map concerned.
        object: String,
        /// `"key"` or `"value"`.
        what: &'static str,
        /// Length given.
        got: usize,
        /// Length the map uses.
        expected: usize,
    },
    /// Any other argument that cannot be passed to the kernel (name too long, NUL in a path).
    #[error("{0}")]
    Arg(String),
}

impl Error {
    /// The kernel's errno, if the kernel was asked.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Whether `bpf()` works here: creates and closes a one-entry array map (once per
/// process; the answer is cached). `Err` explains why not, e.g.
/// `"BPF_MAP_CREATE failed with EPERM (Operation not permitted): needs CAP_BPF or root"`.
pub fn bpf_available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let attr = MapCreateAttr::new(consts::BPF_MAP_TYPE_ARRAY, 4, 4, 1).name("kbpf_probe");
            match KernelMap::create(&attr) {
                Ok(_map) => Ok(()),
                Err(Error::Sys { errno, .. }) => {
                    let why = match errno {
                        Errno::EPERM => {
                            "needs CAP_BPF (or root); unprivileged bpf() may be disabled by \
                             kernel.unprivileged_bpf_disabled"
                        }
                        Errno::ENOSYS => {
                            "the kernel has no bpf() (CONFIG_BPF_SYSCALL=n) or a seccomp \
                             filter blocks it"
                        }
                        Errno::ENOMEM => "memlock limit too low (RLIMIT_MEMLOCK) on an old kernel",
                        _ => "unexpected error",
                    };
                    Err(format!(
                        "BPF_MAP_CREATE failed with {} ({errno}): {why}",
                        errno.name()
                    ))
                }
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
}

/// For tests: returns `true` if `bpf()` works, otherwise prints
/// `SKIP: bpf() unavailable: <reason>` and returns `false`. Under `CI=true` (where
/// `.ci/run` installs and sets up everything) a skip is a failure: it panics instead.
pub fn bpf_available_or_skip(test: &str) -> bool {
    match bpf_available() {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: bpf() unavailable under CI=true: {reason}");
            }
            println!("SKIP: bpf() unavailable: {reason} ({test})");
            false
        }
    }
}

//! The kbpf interpreter: runs a validated eBPF program with the kernel's semantics
//! (`kernel/bpf/core.c` `___bpf_prog_run`, RFC 9669).
//!
//! This crate owns *execution*: turning a validated program into a compact pre-decoded form
//! once ([`Interpreter::new`]) and running it many times ([`Interpreter::run`],
//! [`Interpreter::run_mem`]), the helper-call interface ([`HelperRegistry`]) and the
//! bpf-to-bpf call frames. It does not parse ELF, verify programs or rewrite them.
//!
//! Memory model: programs see real host addresses (their stack frames, the memory they are
//! given, and later map values). In [`Mode::Unchecked`] a load or store is a raw pointer access,
//! exactly as in the kernel, and safety rests on the verifier that accepted the program. In
//! [`Mode::Checked`] every access is bounds-checked against the live stack frames and the
//! caller's [`MemoryRegion`]s, and an optional instruction budget stops runaway programs.
//!
//! ```
//! use kbpf_isa::Insn;
//! use kbpf_isa::insn::*;
//! use kbpf_vm::{HelperRegistry, Interpreter, Mode};
//!
//! let prog = [
//!     Insn::new(BPF_LDX | BPF_MEM | BPF_B, 0, 1, 0, 0), // r0 = *(u8 *)(r1 + 0)
//!     Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 2, 0, 0), // r0 += r2 (the length)
//!     Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
//! ];
//! let helpers = HelperRegistry::new();
//! let vm = Interpreter::new(&prog, &helpers)?;
//! assert_eq!(vm.run_mem(&mut [40, 1, 1], Mode::Checked)?, 43);
//! // an access outside the memory is caught in Checked mode
//! assert!(vm.run_mem(&mut [], Mode::Checked).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules:
//! - [`helpers`] owns [`HelperFn`], [`Helper`] and [`HelperRegistry`];
//! - [`error`] owns [`RunError`];
//! - `program` (private): the pre-decoded instruction form;
//! - `raw` (private): the only `unsafe` code — raw memory accesses, atomics and helper calls;
//! - `interp` (private): [`Interpreter`] and its execution loop.
#![deny(missing_docs)]

pub mod error;
pub mod helpers;
mod interp;
mod program;
mod raw;

pub use error::RunError;
pub use helpers::{Helper, HelperFn, HelperInline, HelperRegistry};
pub use interp::{Interpreter, MemoryRegion, Mode};
pub use kbpf_isa::insn::{MAX_BPF_STACK, MAX_CALL_FRAMES};

#[cfg(test)]
mod tests;

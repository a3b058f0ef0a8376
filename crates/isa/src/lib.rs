//! The eBPF instruction set (RFC 9669 plus everything clang emits with `-mcpu=v4`).
//!
//! This crate owns how instructions are encoded and named, and nothing about maps or
//! programs:
//! - [`insn`]: the raw 8-byte [`Insn`] exactly as the kernel's `struct bpf_insn`, and the
//!   opcode constants under the kernel's names (`BPF_ALU64`, `BPF_JMP32`, `BPF_PSEUDO_MAP_FD`, …);
//! - [`decode`]: a typed view ([`Instruction`]) with decode/encode that round-trip, and
//!   whole-program validation that names the offending instruction index;
//! - [`disasm`]: the kernel/bpftool text form (`(61) r0 = *(u32 *)(r2 +0)`);
//! - [`asm`]: an assembler for the uBPF-style syntax used by the bpf_conformance suite.
#![deny(missing_docs)]

pub mod asm;
pub mod decode;
pub mod disasm;
pub mod insn;

pub use decode::{DecodeError, Instruction};
pub use insn::Insn;

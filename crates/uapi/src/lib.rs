//! The Linux constants kbpf mirrors, each defined once, under the kernel's names:
//! - [`bpf`]: `include/uapi/linux/bpf.h` — `bpf()` commands, map types and flags, element
//!   update flags, program types, log levels, and bpftool's names for the types;
//! - [`errno`]: the errno values (positive), `ENOTSUPP` included;
//! - [`net`]: XDP and tc verdicts, `BPF_F_INGRESS`, Ethernet header facts.
//!
//! Plain integers rather than enums on purpose: the oracle must be able to hand the kernel
//! values it does not know (an unknown map type, a reserved flag bit) and observe the errno;
//! typed views (`kbpf_maps::MapType`, `kbpf_verifier::ProgType`) are built on these.
#![deny(missing_docs)]
#![no_std]

pub mod bpf;
pub mod errno;
pub mod net;

//! The uapi constants (`include/uapi/linux/bpf.h`) the oracle hands the kernel, from their
//! one definition in [`kbpf_uapi::bpf`].

pub use kbpf_uapi::bpf::*;

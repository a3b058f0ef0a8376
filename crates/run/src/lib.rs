//! kbpf-run: the end of kbpf's pipeline. A program relocated by `kbpf-loader` is verified
//! (`kbpf-verifier`), translated (`kbpf-rewrite`) and wired to the kernel functions it calls,
//! then run on the interpreter (`kbpf-vm`) in a test-run context built like the kernel's
//! `BPF_PROG_TEST_RUN` does.
//!
//! - [`program`]: [`Program::load`], the xlated dump, the program tag;
//! - [`kernel`]: kbpf's helper implementations and the map operations translated programs
//!   call directly, with their kernel names;
//! - [`ctx`]: `xdp_buff` and `sk_buff` laid out at the kernel's offsets;
//! - `fib`: `bpf_fib_lookup` for XDP and tc over the host's routing ([`kbpf_kernel::fib`]);
//! - [`redirect`]: the per-run redirect state (`bpf_redirect_info`) and tunnel metadata;
//! - `ringbuf`: the ring buffer helpers (over `kbpf_maps::ringbuf`);
//! - [`test_run`]: `BPF_PROG_TEST_RUN` for XDP, `tc` and socket-filter programs.
#![deny(missing_docs)]

mod cgroup_storage;
pub mod ctx;
pub mod each;
mod fib;
pub mod kernel;
pub mod packets;
pub mod program;
pub mod redirect;
mod ringbuf;
mod sk_storage;
mod skb_helpers;
mod sock_helpers;
mod str_helpers;
mod tail_call;
pub mod test_run;
mod tracing;

pub use each::{EachError, ProgVerification, verify_each};
pub use packets::{PacketResult, SkbMeta, SkbStream, XdpStream, run_packets};
pub use program::{LoadOptions, ProgLoadError, Program, funcs_btf, maps_env, prog_ref};
pub use redirect::{Redirect, RedirectTarget, TunnelKey};
pub use test_run::{Engine, Runner, TestRunError, TestRunInput, TestRunOutput};

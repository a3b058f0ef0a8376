//! The two in-kernel programs that let a user-space XDP program own a device's receive
//! path, on tcx links (which end with the process):
//! - the **bypass**, first on the device's tcx ingress: a frame without [`PASS_MARK`] is
//!   dropped there (packet sockets, kbpf's capture among them, have already seen it); a
//!   marked one has its mark cleared and goes on to the stack;
//! - the **return path**, on the tap's tcx ingress: marks the frame and redirects it into
//!   the device's ingress (`bpf_redirect(ifindex, BPF_F_INGRESS)`), so an `XDP_PASS` frame
//!   reaches the stack as arriving on the device itself.
//!
//! Both are a handful of instructions built here (no object file), loaded as
//! `BPF_PROG_TYPE_SCHED_CLS`.

use kbpf_isa::Insn;
use kbpf_kernel::consts::BPF_PROG_TYPE_SCHED_CLS;
use kbpf_kernel::{KernelLink, KernelProg};

/// The `skb->mark` that tells a frame kbpf passed back from one it has not seen: "kbpf"
/// in ASCII, below 2^31 so the 32-bit immediate compares equal to the zero-extended load.
pub const PASS_MARK: u32 = 0x6b62_7066;

/// `offsetof(struct __sk_buff, mark)`.
const SKB_MARK: i16 = 8;
/// `TCX_NEXT`, `TCX_DROP`.
const TCX_NEXT: i32 = -1;
const TCX_DROP: i32 = 2;
/// `BPF_FUNC_redirect` and `BPF_F_INGRESS`.
const BPF_FUNC_REDIRECT: i32 = 23;
const BPF_F_INGRESS: i32 = 1;

/// The bypass program's instructions.
pub fn bypass_insns() -> Vec<Insn> {
    vec![
        Insn::new(0x61, 2, 1, SKB_MARK, 0),         // r2 = skb->mark
        Insn::new(0x55, 2, 0, 4, PASS_MARK as i32), // if r2 != PASS_MARK goto drop
        Insn::new(0xb7, 2, 0, 0, 0),                // r2 = 0
        Insn::new(0x63, 1, 2, SKB_MARK, 0),         // skb->mark = r2
        Insn::new(0xb7, 0, 0, 0, TCX_NEXT),         // r0 = TCX_NEXT
        Insn::new(0x95, 0, 0, 0, 0),                // exit
        Insn::new(0xb7, 0, 0, 0, TCX_DROP),         // drop: r0 = TCX_DROP
        Insn::new(0x95, 0, 0, 0, 0),                // exit
    ]
}

/// The return path's instructions for device `ifindex`.
pub fn return_path_insns(ifindex: u32) -> Vec<Insn> {
    vec![
        Insn::new(0xb7, 2, 0, 0, PASS_MARK as i32), // r2 = PASS_MARK
        Insn::new(0x63, 1, 2, SKB_MARK, 0),         // skb->mark = r2
        Insn::new(0xb7, 1, 0, 0, ifindex as i32),   // r1 = ifindex
        Insn::new(0xb7, 2, 0, 0, BPF_F_INGRESS),    // r2 = BPF_F_INGRESS
        Insn::new(0x85, 0, 0, 0, BPF_FUNC_REDIRECT), // call bpf_redirect
        Insn::new(0x95, 0, 0, 0, 0),                // exit
    ]
}

/// A program attached on a tcx link; detached when dropped.
#[derive(Debug)]
pub struct TcxAttachment {
    _link: KernelLink,
    _prog: KernelProg,
}

fn attach(name: &str, insns: &[Insn], ifindex: u32) -> Result<TcxAttachment, String> {
    let mut attr = kbpf_kernel::ProgLoadAttr::new(BPF_PROG_TYPE_SCHED_CLS, insns, "GPL");
    attr.name = name;
    let (prog, _) = KernelProg::load_with(&attr).map_err(|e| format!("loading {name}: {e}"))?;
    let link = KernelLink::tcx(&prog, ifindex, true, true)
        .map_err(|e| format!("attaching {name}: {e}"))?;
    Ok(TcxAttachment {
        _link: link,
        _prog: prog,
    })
}

/// Attaches the bypass to device `ifindex` (in the calling thread's namespace).
pub fn attach_bypass(ifindex: u32) -> Result<TcxAttachment, String> {
    attach("kbpf_bypass", &bypass_insns(), ifindex)
}

/// Attaches the return path to the tap `tap_ifindex`, towards device `ifindex`.
pub fn attach_return_path(tap_ifindex: u32, ifindex: u32) -> Result<TcxAttachment, String> {
    attach("kbpf_pass", &return_path_insns(ifindex), tap_ifindex)
}

//! The two in-kernel programs that let a user-space XDP program own a device's receive
//! path, on tcx links (which end with the process):
//! - the **bypass**, first on the device's tcx ingress: a frame without [`PASS_MARK`] is
//!   dropped there (packet sockets, kbpf's capture among them, have already seen it); a
//!   marked one carries an 8-byte trailer (the `skb->mark` and `skb->priority` the program
//!   left: what a tc program may set), which the bypass strips (`bpf_skb_change_tail`) and
//!   restores before the frame goes on to the stack;
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
use kbpf_uapi::bpf::{BPF_FUNC_REDIRECT, BPF_FUNC_SKB_CHANGE_TAIL, BPF_FUNC_SKB_LOAD_BYTES};
use kbpf_uapi::net::{TCX_DROP, TCX_NEXT};
/// `BPF_F_INGRESS` as the program's 32-bit immediate.
const BPF_F_INGRESS: i32 = kbpf_uapi::net::BPF_F_INGRESS as i32;

/// `offsetof(struct __sk_buff, len)`, `priority`.
const SKB_LEN: i16 = 0;
const SKB_PRIORITY: i16 = 32;

/// The bypass program's instructions.
pub fn bypass_insns() -> Vec<Insn> {
    vec![
        Insn::new(0xbf, 6, 1, 0, 0),                 // r6 = skb
        Insn::new(0x61, 2, 6, SKB_MARK, 0),          // r2 = skb->mark
        Insn::new(0x55, 2, 0, 20, PASS_MARK as i32), // if r2 != PASS_MARK goto drop
        Insn::new(0x61, 2, 6, SKB_LEN, 0),           // r2 = skb->len
        Insn::new(0x07, 2, 0, 0, -8),                // r2 -= 8: the trailer
        Insn::new(0xbf, 3, 10, 0, 0),                // r3 = fp
        Insn::new(0x07, 3, 0, 0, -8),                // r3 -= 8
        Insn::new(0xb7, 4, 0, 0, 8),                 // r4 = 8
        Insn::new(0xbf, 1, 6, 0, 0),                 // r1 = skb
        Insn::new(0x85, 0, 0, 0, BPF_FUNC_SKB_LOAD_BYTES),
        Insn::new(0x55, 0, 0, 12, 0),      // if r0 != 0 goto drop
        Insn::new(0x61, 2, 6, SKB_LEN, 0), // r2 = skb->len
        Insn::new(0x07, 2, 0, 0, -8),      // r2 -= 8
        Insn::new(0xbf, 1, 6, 0, 0),       // r1 = skb
        Insn::new(0xb7, 3, 0, 0, 0),       // r3 = 0
        Insn::new(0x85, 0, 0, 0, BPF_FUNC_SKB_CHANGE_TAIL),
        Insn::new(0x55, 0, 0, 6, 0),            // if r0 != 0 goto drop
        Insn::new(0x61, 2, 10, -8, 0),          // r2 = trailer.mark
        Insn::new(0x63, 6, 2, SKB_MARK, 0),     // skb->mark = r2
        Insn::new(0x61, 2, 10, -4, 0),          // r2 = trailer.priority
        Insn::new(0x63, 6, 2, SKB_PRIORITY, 0), // skb->priority = r2
        Insn::new(0xb7, 0, 0, 0, TCX_NEXT),     // r0 = TCX_NEXT
        Insn::new(0x95, 0, 0, 0, 0),            // exit
        Insn::new(0xb7, 0, 0, 0, TCX_DROP),     // drop: r0 = TCX_DROP
        Insn::new(0x95, 0, 0, 0, 0),            // exit
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

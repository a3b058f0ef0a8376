//! The static call-graph walk after exploration (`check_max_stack_depth`,
//! `check/stack_depth.rs`), against the live kernel: each program is judged by both, and
//! kbpf must give the kernel's verdict, message and errno. The expected message is asserted
//! too, so the cases still check kbpf where `bpf()` is unavailable.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::consts::{BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_TRACEPOINT};
use kbpf_kernel::{Errno, KernelProg, ProgLoadError};
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

fn mov(dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}
fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}
/// `call pc+1+off` (bpf-to-bpf).
fn call_local(off: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
}
/// `*(u64 *)(r10 + off) = 0`: the function's stack depth becomes `-off`.
fn st(off: i16) -> Insn {
    Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, off, 0)
}
fn jeq(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm)
}

/// main stores at `-main` and calls sub, which stores at `-sub`.
fn two_frames(main: i16, sub: i16) -> Vec<Insn> {
    vec![
        st(-main),
        call_local(2),
        mov(0, 0),
        exit(),
        st(-sub),
        mov(0, 0),
        exit(),
    ]
}

/// main stores at `-main` and calls sub, which holds a tail call.
fn tail_call_under(main: i16) -> Vec<Insn> {
    vec![
        st(-main),
        call_local(2),
        mov(0, 0),
        exit(),
        mov(0, 0),
        jeq(0, 0, 1),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 12),
        mov(0, 0),
        exit(),
    ]
}

/// Nine functions, each calling the next, behind a branch exploration never takes.
fn unreached_chain() -> Vec<Insn> {
    let mut p = vec![mov(1, 0), jeq(1, 0, 1), call_local(2), mov(0, 0), exit()];
    for _ in 0..8 {
        p.extend([call_local(1), exit()]);
    }
    p.extend([mov(0, 0), exit()]);
    p
}

struct Case {
    name: &'static str,
    prog_type: (ProgType, u32),
    insns: Vec<Insn>,
    /// `None`: accepted; else the last line before `processed` and the errno.
    expect: Option<(&'static str, i32)>,
}

fn cases() -> Vec<Case> {
    let sf = (ProgType::SocketFilter, BPF_PROG_TYPE_SOCKET_FILTER);
    let tp = (ProgType::Tracepoint, BPF_PROG_TYPE_TRACEPOINT);
    vec![
        // Frames count rounded up to 16 bytes: 488 + 8 → 496 + 16 fits.
        Case {
            name: "rounded_fits",
            prog_type: sf,
            insns: two_frames(488, 8),
            expect: None,
        },
        Case {
            name: "combined_too_large",
            prog_type: sf,
            insns: two_frames(264, 248),
            expect: Some((
                "combined stack size of 2 calls is 528. Too large",
                Errno::EACCES.0,
            )),
        },
        // 6.12's source gives tracing programs a private stack for such functions; the
        // 6.18 kernels met here do not for tracepoints.
        Case {
            name: "tracepoint_combined",
            prog_type: tp,
            insns: two_frames(512, 256),
            expect: Some((
                "combined stack size of 2 calls is 768. Too large",
                Errno::EACCES.0,
            )),
        },
        Case {
            name: "no_private_stack",
            prog_type: sf,
            insns: two_frames(512, 256),
            expect: Some((
                "combined stack size of 2 calls is 768. Too large",
                Errno::EACCES.0,
            )),
        },
        // Without BTF function info a tail call may only be in the entry
        // (`check_abnormal_return`); the depth rule for tail calls is a unit test of
        // check/stack_depth.rs, with function info.
        Case {
            name: "tail_call_without_btf",
            prog_type: sf,
            insns: tail_call_under(240),
            expect: Some((
                "tail_call is not allowed in subprogs without BTF",
                Errno::EINVAL.0,
            )),
        },
        Case {
            name: "unreached_chain",
            prog_type: sf,
            insns: unreached_chain(),
            expect: Some(("the call stack of 8 frames is too deep !", Errno::E2BIG.0)),
        },
    ]
}

/// The kernel log's last line before the statistics.
fn last_line(log: &str) -> String {
    log.lines()
        .rev()
        .find(|l| {
            !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time")
        })
        .unwrap_or("")
        .to_owned()
}

#[test]
fn static_walk_matches_the_kernel() {
    let env: Vec<MapDesc> = Vec::new();
    let kernel = kbpf_kernel::bpf_available_or_skip("verifier stack_depth_kernel");
    let mut failures = Vec::new();
    for c in cases() {
        let mut o = Options::new(c.prog_type.0);
        o.log_level = 1;
        let v = verify(&c.insns, &env, &o);
        let got = v
            .result
            .as_ref()
            .err()
            .map(|e| (e.message.clone(), e.errno));
        let want = c.expect.map(|(m, e)| (m.to_owned(), e));
        if got != want {
            failures.push(format!(
                "{}: kbpf {got:?}, expected {want:?}\n{}",
                c.name, v.log
            ));
        }
        if !kernel {
            continue;
        }
        let k = match KernelProg::load(c.prog_type.1, &c.insns, "GPL", 1) {
            Ok(_) => None,
            Err(ProgLoadError::Rejected { errno, log }) => Some((last_line(&log), errno.0)),
            Err(e) => panic!("{}: {e}", c.name),
        };
        if k != got {
            failures.push(format!("{}: kbpf {got:?}, kernel {k:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

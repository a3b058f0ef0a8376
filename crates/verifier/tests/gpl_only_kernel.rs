//! GPL-only helpers (`fn->gpl_only` in `check_helper_call`), against the live kernel: a
//! program whose license is not GPL-compatible may not call them. Each helper is called by a
//! program of a type that may use it, under licenses the kernel does and does not count as
//! GPL-compatible; kbpf must give the kernel's verdict, message and errno. The expected
//! verdicts are asserted too, so the cases still check kbpf where `bpf()` is unavailable.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::consts::{BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_TRACEPOINT};
use kbpf_kernel::{Errno, KernelProg, ProgLoadError};
use kbpf_verifier::{MapDesc, Options, ProgType, license_is_gpl_compatible, verify};

fn mov(dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}
fn call(id: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
}
fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// `bpf_probe_read_kernel(fp - 8, 8, 0)`-shaped: r1 = fp - 8, r2 = 8, r3 = 0.
fn read_into_stack(id: i32) -> Vec<Insn> {
    vec![
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 10, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, -8),
        mov(2, 8),
        mov(3, 0),
        call(id),
        mov(0, 0),
        exit(),
    ]
}

/// A helper without arguments that matter.
fn bare(id: i32) -> Vec<Insn> {
    vec![call(id), mov(0, 0), exit()]
}

/// The last line of a log before the statistics.
fn last_line(log: &str) -> String {
    log.lines()
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification"))
        .unwrap_or("")
        .to_owned()
}

/// (name, program type for kbpf and the kernel, program, GPL-only?)
type Case = (&'static str, (ProgType, u32), Vec<Insn>, bool);

#[test]
fn gpl_only_helpers_match_the_kernel() {
    const REFUSED: &str = "cannot call GPL-restricted function from non-GPL compatible program";
    let sf = (ProgType::SocketFilter, BPF_PROG_TYPE_SOCKET_FILTER);
    let tp = (ProgType::Tracepoint, BPF_PROG_TYPE_TRACEPOINT);
    let cases: Vec<Case> = vec![
        ("probe_read_kernel", tp, read_into_stack(113), true),
        ("probe_read_user_str", tp, read_into_stack(114), true),
        ("get_current_task", tp, bare(35), true),
        ("get_current_comm", tp, read_into_stack(16), false),
        ("ktime_get_ns", sf, bare(5), false),
        ("get_prandom_u32", sf, bare(7), false),
        ("get_smp_processor_id", sf, bare(8), false),
        ("get_current_pid_tgid", tp, bare(14), false),
    ];
    let env: Vec<MapDesc> = Vec::new();
    let kernel = kbpf_kernel::bpf_available_or_skip("verifier gpl_only_kernel");
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, (ty, kty), insns, gpl_only) in &cases {
        for license in ["GPL", "Dual MIT/GPL", "MIT", "Proprietary", ""] {
            let gpl = license_is_gpl_compatible(license);
            let o = Options::new(*ty).gpl_compatible(gpl);
            let v = verify(insns, &env, &o);
            let got = v
                .result
                .as_ref()
                .err()
                .map(|e| (e.message.clone(), e.errno));
            let want = (*gpl_only && !gpl).then(|| (REFUSED.to_owned(), Errno::EINVAL.0));
            if got != want {
                failures.push(format!(
                    "{name} under {license:?}: kbpf {got:?}, expected {want:?}"
                ));
            }
            if !kernel {
                continue;
            }
            let k = match KernelProg::load(*kty, insns, license, 1) {
                Ok(_) => None,
                Err(ProgLoadError::Rejected { errno, log }) => Some((last_line(&log), errno.0)),
                Err(e) => panic!("{name}: {e}"),
            };
            if k != got {
                failures.push(format!(
                    "{name} under {license:?}: kbpf {got:?}, kernel {k:?}"
                ));
            }
            compared += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if kernel {
        assert_eq!(compared, cases.len() * 5);
    }
}

//! `r0` after a `bpf_tail_call` that does not jump (issue #17's tail-call fidelity item).
//!
//! The kernel's verifier makes `r0` unreadable after the call (`bpf_tail_call_proto` returns
//! `RET_VOID`), so no verified program can see it: `tests/progs/tail_r0.bpf.c`, which
//! returns `r0` right after a tail call, is refused by the live kernel and by kbpf alike
//! (`R0 !read_ok`, `EACCES`). Underneath, the engines must still do what the kernel's
//! interpreter does — a failed tail call falls through and leaves `r0` alone — for the
//! programs nobody verified: run with kbpf-run's own `bpf_tail_call` helper, both engines
//! keep `r0` for an empty slot and for an index past `max_entries`, and unwind with 0 for a
//! filled one. The kernel half skips (with a `SKIP:` line) where bpftool or `bpf()` is
//! unavailable; under `CI=true` that is a failure.

use std::path::PathBuf;
use std::sync::Arc;

use kbpf_isa::Insn;
use kbpf_isa::insn::{
    BPF_ALU64, BPF_CALL, BPF_DW, BPF_EXIT, BPF_IMM, BPF_JMP, BPF_K, BPF_LD, BPF_MOV,
};
use kbpf_kernel::bpftool::{Pins, loadall, unavailable};
use kbpf_maps::uapi::BPF_ANY;
use kbpf_run::ctx::XdpFrame;
use kbpf_run::{ProgLoadError, Program};
use kbpf_verifier::helpers::BPF_FUNC_TAIL_CALL;
use kbpf_vm::{Interpreter, Mode};

mod common;

fn object() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/tail_r0.bpf.o")
}

fn u32s(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// An object's maps and programs on kbpf.
type Loaded = (kbpf_loader::LoadedObject, Vec<Arc<Program>>);

/// Loads every program of `obj` into kbpf (the first refusal's errno and message, if any).
fn load(obj: &str) -> Result<Loaded, (i32, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(obj);
    let (loaded, progs) = common::load_programs(&path);
    let progs = progs
        .into_iter()
        .map(|p| {
            p.map(Arc::new)
                .map_err(|e: ProgLoadError| (e.errno(), e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok((loaded, progs))
}

#[test]
fn reading_r0_after_a_tail_call_is_refused_as_by_the_kernel() {
    match load("tests/progs/tail_r0.bpf.o") {
        Err((errno, e)) => {
            assert_eq!(errno, 13, "{e}");
            assert!(e.contains("R0 !read_ok"), "{e}");
        }
        Ok(_) => panic!("kbpf accepted a read of r0 after bpf_tail_call"),
    }
    if !kbpf_kernel::bpf_available_or_skip("tail_call_r0") {
        return;
    }
    // The probe must be an object the kernel accepts: tail.bpf.o.
    let probe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/tail.bpf.o");
    if let Some(why) = unavailable(&probe) {
        // Under CI=true a skip is a failure, as in `bpf_available_or_skip`.
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "tail_call_r0: bpftool unavailable under CI=true: {why}"
        );
        println!("SKIP: run tail_call_r0 (kernel): {why}");
        return;
    }
    let pins = Pins::new("kbpftailr0", "tail_r0");
    match loadall(&object(), &pins) {
        Err(log) => assert!(log.contains("R0 !read_ok"), "{log}"),
        Ok(()) => panic!("the kernel accepted a read of r0 after bpf_tail_call"),
    }
}

/// `r2 = <the prog array>; r3 = slot; r0 = 77; call bpf_tail_call; exit` on both engines,
/// with the helpers and the `jump` array of `tail.bpf.o`'s `xdp_entry` (slot 0: `xdp_leaf`).
#[test]
fn a_failed_tail_call_keeps_r0_on_both_engines() {
    let (loaded, progs) = load("tests/progs/tail.bpf.o").expect("tail.bpf.o loads");
    let by_name = |n: &str| progs.iter().find(|p| p.name == n).unwrap().clone();
    loaded
        .map("jump")
        .unwrap()
        .map
        .update_prog(
            &u32s(0),
            kbpf_run::prog_ref(&by_name("xdp_leaf"), 100),
            BPF_ANY,
        )
        .unwrap();
    let entry = by_name("xdp_entry");
    let xl = &entry.xlated.insns;
    // The array's address, as the rewrite put it into the `ld_imm64` before the call.
    let call = xl
        .iter()
        .position(|i| i.code == BPF_JMP | BPF_CALL && i.imm == BPF_FUNC_TAIL_CALL)
        .expect("xdp_entry calls bpf_tail_call");
    let ld = (0..call)
        .rev()
        .find(|&i| xl[i].code == BPF_LD | BPF_IMM | BPF_DW && xl[i].dst() == 2)
        .expect("the array is loaded into r2");
    let pkt = [0u8; 64];
    let mut frame = XdpFrame::new(&pkt, 1, 0).unwrap();
    let ctx = frame.ctx_ptr();
    // Slot 0 holds `xdp_leaf`: the tail call runs it, and the calling function (here the
    // whole program) ends with its 42.
    for (slot, want) in [(0, 42), (2, 77), (3, 77), (4, 77), (200, 77)] {
        let prog = [
            xl[ld],
            xl[ld + 1],
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, slot),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 77),
            Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_TAIL_CALL),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let vm = Interpreter::new_translated(&prog, entry.helpers()).unwrap();
        let got = vm.run([ctx, 0, 0, 0, 0], &[], Mode::Unchecked);
        assert_eq!(got, Ok(want), "slot {slot} on the interpreter");
        let jit = kbpf_jit::JitProgram::compile_translated(&prog, entry.helpers()).unwrap();
        // SAFETY: the program only passes the live frame's context and the live array to
        // bpf_tail_call, which is what the verifier checks for that helper.
        let got = unsafe { jit.run(ctx, 0) };
        assert_eq!(got, Ok(want), "slot {slot} on the JIT");
    }
}

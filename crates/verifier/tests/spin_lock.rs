//! `bpf_spin_lock`: a map whose value has a `struct bpf_spin_lock` at offset 4.

use kbpf_isa::Insn;
use kbpf_isa::asm::assemble;
use kbpf_isa::insn::BPF_PSEUDO_MAP_FD;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

/// The value at r0 (lookup of key 0 in map fd 0), NULL-checked; `body` runs with it in r6.
fn verdict(prog: ProgType, body: &str) -> Result<(), String> {
    let src = format!(
        "mov %r1, 0\nstxw [%r10-4], %r1\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\ncall 1\n\
         jeq %r0, 0, +1\nja +2\nmov %r0, 0\nexit\nmov %r6, %r0\n{body}"
    );
    let mut insns = assemble(&src).expect("assembles");
    let at = insns.iter().position(Insn::is_ld_imm64).unwrap();
    insns[at] = Insn::new(insns[at].code, 1, BPF_PSEUDO_MAP_FD, 0, 0);
    let env = vec![MapDesc {
        id: 1,
        name: "locked".into(),
        map_type: 1,
        key_size: 4,
        value_size: 16,
        max_entries: 4,
        spin_lock_off: Some(4),
        ..Default::default()
    }];
    verify(&insns, &env, &Options::new(prog))
        .result
        .map_err(|e| e.message)
}

const LOCK: &str = "mov %r1, %r6\nadd %r1, 4\ncall 93\n";
const UNLOCK: &str = "mov %r1, %r6\nadd %r1, 4\ncall 94\n";

#[test]
fn lock_then_unlock() {
    let ok = format!("{LOCK}ldxw %r0, [%r6+8]\n{UNLOCK}mov %r0, 0\nexit");
    verdict(ProgType::SchedCls, &ok).expect("balanced");
    let err = verdict(ProgType::SchedCls, &format!("{UNLOCK}mov %r0, 0\nexit")).unwrap_err();
    assert_eq!(err, "bpf_spin_unlock without taking a lock");
    let err = verdict(ProgType::SchedCls, &format!("{LOCK}mov %r0, 0\nexit")).unwrap_err();
    assert_eq!(
        err,
        "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"
    );
    let err = verdict(
        ProgType::SchedCls,
        &format!("{LOCK}call 7\n{UNLOCK}mov %r0, 0\nexit"),
    )
    .unwrap_err();
    assert_eq!(err, "function calls are not allowed while holding a lock");
    let err = verdict(
        ProgType::SchedCls,
        "mov %r1, %r6\nadd %r1, 8\ncall 93\nmov %r0, 0\nexit",
    )
    .unwrap_err();
    assert_eq!(
        err,
        "off 8 doesn't point to 'struct bpf_spin_lock' that is at 4"
    );
}

#[test]
fn the_lock_is_not_memory() {
    let err = verdict(ProgType::SchedCls, "ldxdw %r0, [%r6+0]\nmov %r0, 0\nexit").unwrap_err();
    assert_eq!(
        err,
        "bpf_spin_lock cannot be accessed directly by load/store"
    );
    verdict(ProgType::SchedCls, "ldxw %r0, [%r6+0]\nmov %r0, 0\nexit").expect("next to it");
}

#[test]
fn tracing_programs_cannot_use_locked_maps() {
    let err = verdict(ProgType::Kprobe, "mov %r0, 0\nexit").unwrap_err();
    assert_eq!(err, "tracing progs cannot use bpf_spin_lock yet");
}

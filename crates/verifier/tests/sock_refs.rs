//! Socket references: acquired by the lookups, dropped on the NULL branch, released by
//! `bpf_sk_release` (the rejections are in the corpus, checked against the kernel too).

use kbpf_isa::asm::assemble;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

const LOOKUP: &str = "mov %r2, 0\nstxdw [%r10-16], %r2\nstxdw [%r10-8], %r2\nmov %r2, %r10\n\
                      add %r2, -16\nmov %r3, 12\nmov %r4, 0\nmov %r5, 0\ncall 84\n";

fn verdict(body: &str) -> Result<(), String> {
    let insns = assemble(&format!("{LOOKUP}{body}")).expect("assembles");
    let env: Vec<MapDesc> = Vec::new();
    verify(&insns, &env, &Options::new(ProgType::SchedCls))
        .result
        .map_err(|e| e.message)
}

#[test]
fn released_or_null_is_no_leak() {
    verdict("jeq %r0, 0, +3\nldxw %r2, [%r0+4]\nmov %r1, %r0\ncall 86\nmov %r0, 0\nexit")
        .expect("released on the non-NULL branch, nothing held on the NULL one");
    // The non-NULL branch of `r6 != 0` knows the pointer is not 0 afterwards.
    verdict(
        "mov %r6, %r0\nmov %r3, 1\njne %r6, 0, +1\nmov %r3, 0\njeq %r6, 0, +2\nmov %r1, %r6\n\
         call 86\nmov %r0, 0\nexit",
    )
    .expect("branch tracking");
}

#[test]
fn casts_hold_the_reference() {
    // bpf_tcp_sock's result holds the socket's reference: once the socket is released, the
    // tcp_sock pointer is a scalar.
    let err = verdict(
        "jeq %r0, 0, +8\nmov %r6, %r0\nmov %r1, %r0\ncall 96\nmov %r7, %r0\nmov %r1, %r6\n\
         call 86\njeq %r7, 0, +1\nldxw %r0, [%r7+0]\nmov %r0, 0\nexit",
    )
    .unwrap_err();
    assert_eq!(err, "R7 invalid mem access 'scalar'");
}

#[test]
fn legacy_loads_may_not_hold_references() {
    // `mov %r9, 7` stands for the legacy packet load, spliced in below.
    let mut insns = assemble(&format!(
        "mov %r6, %r1\n{LOOKUP}jeq %r0, 0, +4\nmov %r7, %r0\nmov %r9, 7\nmov %r1, %r7\n\
         call 86\nmov %r0, 0\nexit"
    ))
    .expect("assembles");
    let at = insns
        .iter()
        .position(|i| i.code == 0xb7 && i.dst() == 9 && i.imm == 7)
        .expect("placeholder");
    // BPF_LD | BPF_ABS | BPF_B, offset 0.
    insns[at] = kbpf_isa::Insn::new(0x30, 0, 0, 0, 0);
    let env: Vec<MapDesc> = Vec::new();
    let v = verify(&insns, &env, &Options::new(ProgType::SchedCls));
    assert_eq!(
        v.result.map_err(|e| e.message),
        Err("BPF_LD_[ABS|IND] would lead to reference leak".into())
    );
}

#[test]
fn skc_to_casts_hold_the_reference_and_may_be_null() {
    // verifier_ref_tracking.c's to_tcp_sock_after_release: bpf_skc_to_tcp_sock's result
    // dies with the socket's reference.
    let err = verdict(
        "jne %r0, 0, +1\nexit\nmov %r6, %r0\nmov %r1, %r0\ncall 137\njne %r0, 0, +3\n\
         mov %r1, %r6\ncall 86\nexit\nmov %r7, %r0\nmov %r1, %r6\ncall 86\nldxb %r0, [%r7+0]\nexit",
    )
    .unwrap_err();
    assert_eq!(err, "R7 invalid mem access 'scalar'");
    // Before its NULL check it may not be read.
    let err = verdict(
        "jne %r0, 0, +1\nexit\nmov %r6, %r0\nmov %r1, %r0\ncall 139\nmov %r7, %r0\nmov %r1, %r6\n\
         call 86\nldxb %r0, [%r7+0]\nexit",
    )
    .unwrap_err();
    assert_eq!(err, "R7 invalid mem access 'scalar'");
    let err = verdict(
        "jne %r0, 0, +1\nexit\nmov %r6, %r0\nmov %r1, %r0\ncall 139\nldxb %r2, [%r0+0]\n\
         mov %r1, %r6\ncall 86\nmov %r0, 0\nexit",
    )
    .unwrap_err();
    assert_eq!(err, "R0 invalid mem access 'trusted_ptr_or_null_'");
}

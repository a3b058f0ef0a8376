//! The level-2 log of stack state and pruning: a narrow spill printed after the bytes above
//! it, and `BPF_F_TEST_STATE_FREQ`'s checkpoints showing as `N: safe`.

use kbpf_isa::asm::assemble;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

fn opts() -> Options {
    Options::new(ProgType::SocketFilter).log_level(2)
}

#[test]
fn narrow_spill_prints_the_bytes_above_it() {
    // verifier_spill_fill.c's spill_subregs_preserve_stack_zero, first slot.
    let p = assemble(
        "call 7
         stb [%r10-1], 0
         stxb [%r10-2], %r0
         stxw [%r10-8], %r0
         mov %r0, 0
         exit",
    )
    .unwrap();
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts());
    assert!(v.accepted(), "{}", v.log);
    assert!(v.log.contains(" fp-8=0m??scalar()"), "{}", v.log);
}

/// verifier_spill_fill.c's old_stack_misc_vs_cur_scalar: the second path reaches insn 8,
/// where only a forced checkpoint of the first path lets it be pruned.
fn old_misc_vs_cur_scalar() -> Vec<kbpf_isa::Insn> {
    assemble(
        "call 5
         jeq %r0, 0, +4
         call 5
         stxh [%r10-8], %r0
         stxh [%r10-4], %r0
         ja +2
         mov %r0, 42
         stxdw [%r10-8], %r0
         ldxdw %r0, [%r10-8]
         exit",
    )
    .unwrap()
}

#[test]
fn test_state_freq_checkpoints_every_prune_point() {
    let p = old_misc_vs_cur_scalar();
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts().test_state_freq(true));
    assert!(v.accepted(), "{}", v.log);
    assert!(v.log.contains("\n8: safe\n"), "{}", v.log);
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts());
    assert!(v.accepted(), "{}", v.log);
    assert!(!v.log.contains("8: safe"), "{}", v.log);
}

/// verifier_spill_fill.c's old_stack_misc_vs_cur_ctx_ptr: the first path leaves fp-8 as
/// unknown bytes, the second spills the context there; a loader that may read uninitialised
/// stack prunes the second at insn 8, an unprivileged one does not.
#[test]
fn old_unknown_bytes_cover_a_spilled_pointer_for_a_privileged_loader() {
    let p = assemble(
        "mov %r9, %r1
         call 5
         jeq %r0, 0, +4
         call 5
         stxdw [%r10-8], %r0
         stxw [%r10-4], %r0
         ja +1
         stxdw [%r10-8], %r9
         ldxdw %r1, [%r10-8]
         exit",
    )
    .unwrap();
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts().test_state_freq(true));
    assert!(v.accepted(), "{}", v.log);
    assert!(v.log.contains("\n8: safe\n"), "{}", v.log);
    let unpriv = opts().test_state_freq(true).perfmon(false);
    let v = verify(&p, &Vec::<MapDesc>::new(), &unpriv);
    assert!(v.accepted(), "{}", v.log);
    assert!(!v.log.contains("8: safe"), "{}", v.log);
}

//! Networking helpers the verifier knows but kbpf's engines do not run yet (so they stay out
//! of the shared corpus, which every engine runs): `bpf_fib_lookup`, whose params the helper
//! reads and writes, and LWT_XMIT's `bpf_skb_change_head`.

use kbpf_isa::asm::assemble;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

fn verdict(prog: ProgType, src: &str) -> Result<(), String> {
    let insns = assemble(src).expect("assembles");
    let env: Vec<MapDesc> = Vec::new();
    verify(&insns, &env, &Options::new(prog))
        .result
        .map_err(|e| e.message)
}

/// 64 bytes of params on the stack, initialised, then `bpf_fib_lookup(ctx, fp-64, 64, 0)`
/// followed by `tail`.
fn fib(init: bool, size: i32, tail: &str) -> String {
    let mut s = String::from("mov %r6, %r1\n");
    if init {
        for off in (8..=64).step_by(8) {
            s.push_str(&format!("stdw [%r10-{off}], 0\n"));
        }
    }
    s.push_str(&format!(
        "mov %r1, %r6\nmov %r2, %r10\nadd %r2, -64\nmov %r3, {size}\nmov %r4, 0\ncall 69\n{tail}"
    ));
    s
}

#[test]
fn fib_lookup_params_must_be_initialised_and_sized() {
    verdict(ProgType::Xdp, &fib(true, 64, "mov %r0, 0\nexit")).expect("initialised params");
    verdict(ProgType::SchedCls, &fib(true, 64, "mov %r0, 0\nexit")).expect("tc too");
    let err = verdict(ProgType::Xdp, &fib(true, 0, "mov %r0, 0\nexit")).unwrap_err();
    assert_eq!(err, "R3 invalid zero-sized read: u64=[0,0]");
    let err = verdict(ProgType::SocketFilter, &fib(true, 64, "mov %r0, 0\nexit")).unwrap_err();
    assert_eq!(
        err,
        "program of this type cannot use helper bpf_fib_lookup#69"
    );
}

/// The helper writes the params: a constant stored there before the call is unknown after
/// it, so it cannot serve as a known-safe stack offset.
#[test]
fn fib_lookup_forgets_what_the_stack_held() {
    let tail = "ldxdw %r1, [%r10-64]\nmov %r2, %r10\nadd %r2, %r1\nldxb %r0, [%r2-1]\nexit";
    let err = verdict(ProgType::Xdp, &fib(true, 64, tail)).unwrap_err();
    assert_eq!(
        err,
        "math between fp pointer and register with unbounded min value is not allowed"
    );
    // Without the call the slot still holds 0 and the same access is fine.
    let src = "stdw [%r10-64], 0\nldxdw %r1, [%r10-64]\nmov %r2, %r10\nadd %r2, %r1\n\
               ldxb %r0, [%r2-1]\nexit";
    verdict(ProgType::Xdp, src).expect("known zero offset");
}

#[test]
fn skb_change_head_is_an_lwt_xmit_helper() {
    let src = "mov %r6, %r1\nmov %r2, 34\nmov %r3, 0\ncall 43\nmov %r1, %r6\nmov %r2, 42\n\
               mov %r3, 0\ncall 43\nmov %r0, 0\nexit";
    verdict(ProgType::LwtXmit, src).expect("lwt_xmit");
    let err = verdict(ProgType::LwtIn, src).unwrap_err();
    assert_eq!(
        err,
        "program of this type cannot use helper bpf_skb_change_head#43"
    );
}

/// `bpf_check_mtu(skb, 0, fp + off, 0, 0)` after `prelude`.
fn check_mtu(prelude: &str, off: i32) -> String {
    format!(
        "mov %r6, %r1\n{prelude}mov %r1, %r6\nmov %r2, 0\nmov %r3, %r10\nadd %r3, {off}\n\
         mov %r4, 0\nmov %r5, 0\ncall 163\nmov %r0, 0\nexit"
    )
}

#[test]
fn check_mtu_len_is_read_written_and_aligned() {
    verdict(ProgType::SchedCls, &check_mtu("stw [%r10-4], 1500\n", -4)).expect("set mtu_len");
    let err = verdict(ProgType::SchedCls, &check_mtu("stdw [%r10-8], 0\n", -6)).unwrap_err();
    assert!(err.starts_with("misaligned stack access"), "{err}");
    // Uninitialised: only a CAP_PERFMON loader may pass it (verifier_mtu/tc_uninit_mtu).
    verdict(ProgType::SchedCls, &check_mtu("", -4)).expect("root may");
    let insns = assemble(&check_mtu("", -4)).unwrap();
    let env: Vec<MapDesc> = Vec::new();
    let v = verify(
        &insns,
        &env,
        &Options::new(ProgType::SchedCls).perfmon(false),
    );
    assert_eq!(
        v.result.unwrap_err().message,
        "invalid read from stack R3 off -4+0 size 4"
    );
}

//! A flow dissector's `__sk_buff->flow_keys` (`PTR_TO_FLOW_KEYS`): constant offsets only,
//! accesses inside `struct bpf_flow_keys`, no atomics.

use kbpf_isa::asm::assemble;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

fn run(body: &str) -> Result<(), String> {
    let src = format!("ldxdw %r7, [%r1+144]\n{body}\nmov %r0, 0\nexit");
    let p = assemble(&src).unwrap();
    let v = verify(
        &p,
        &Vec::<MapDesc>::new(),
        &Options::new(ProgType::FlowDissector),
    );
    v.result.map_err(|e| e.message)
}

#[test]
fn constant_offsets_inside_the_keys_are_fine() {
    assert_eq!(
        run("add %r7, 8\nstxw [%r7+44], %r1\nldxb %r2, [%r7+47]"),
        Ok(())
    );
}

#[test]
fn a_variable_offset_is_refused() {
    // verifier_value_illegal_alu.c's flow_keys_illegal_variable_offset_alu.
    let e = run("mov %r8, 8\ndiv %r8, 1\nand %r8, 8\nadd %r7, %r8\nstxdw [%r7+0], %r8");
    assert_eq!(
        e,
        Err("R7 pointer arithmetic on flow_keys prohibited".into())
    );
}

#[test]
fn accesses_past_the_keys_are_refused() {
    assert_eq!(
        run("ldxb %r2, [%r7+56]"),
        Err("invalid access to flow keys off=56 size=1".into())
    );
    assert_eq!(
        run("add %r7, -8\nldxdw %r2, [%r7+0]"),
        Err("invalid access to flow keys off=-8 size=8".into())
    );
}

#[test]
fn atomics_on_the_keys_are_refused() {
    let e = run("mov %r2, 1\nlock add [%r7+0], %r2");
    assert_eq!(
        e,
        Err("BPF_ATOMIC stores into R7 flow_keys is not allowed".into())
    );
}

//! A writable raw tracepoint's buffer (`PTR_TO_TP_BUFFER`, the context's first word):
//! constant, non-negative offsets only.

use kbpf_isa::asm::assemble;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

fn run(body: &str) -> Result<(), String> {
    let src = format!("ldxdw %r6, [%r1+0]\n{body}\nmov %r0, 0\nexit");
    let p = assemble(&src).unwrap();
    let opts = Options::new(ProgType::RawTracepointWritable);
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts);
    v.result.map_err(|e| e.message)
}

#[test]
fn constant_offsets_may_be_read_and_written() {
    assert_eq!(
        run("add %r6, 16\nstxdw [%r6+8], %r1\nldxw %r2, [%r6+4]"),
        Ok(())
    );
}

#[test]
fn a_variable_offset_is_refused() {
    assert_eq!(
        run("call 7\nmov32 %r0, %r0\nadd %r6, %r0\nstdw [%r6+0], 1"),
        Err("R6 invalid variable buffer offset: off=0, var_off=(0x0; 0xffffffff)".into())
    );
}

#[test]
fn a_negative_offset_is_refused() {
    assert_eq!(
        run("ldxb %r2, [%r6-1]"),
        Err("R6 invalid tracepoint buffer access: off=-1, size=1".into())
    );
}

#[test]
fn the_buffer_is_read_whole_only() {
    let p = assemble("ldxw %r6, [%r1+0]\nmov %r0, 0\nexit").unwrap();
    let opts = Options::new(ProgType::RawTracepointWritable);
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts);
    assert_eq!(
        v.result.map_err(|e| e.message),
        Err("invalid bpf_context access off=0 size=4".into())
    );
}

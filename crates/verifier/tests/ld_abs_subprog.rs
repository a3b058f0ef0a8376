//! Legacy packet loads in subprograms (verifier_ld_ind's subprog tests): the hidden exit of a
//! failed load returns 0 to the caller, a path the verifier explores; the subprogram must
//! return an int; callbacks may not use them.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}
fn mov(dst: u8, imm: i32) -> Insn {
    i(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}
fn movx(dst: u8, src: u8) -> Insn {
    i(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
}
fn exit() -> Insn {
    i(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}
const LD_ABS_W0: u8 = BPF_LD | BPF_ABS | BPF_W;

/// main (`main` then) + the subprogram `r6 = r1; r0 = ld_abs[0]; r0 = 1; exit`.
fn prog(main: &[Insn]) -> (Vec<Insn>, usize) {
    let mut p = vec![i(
        BPF_JMP | BPF_CALL,
        0,
        BPF_PSEUDO_CALL,
        0,
        main.len() as i32,
    )];
    p.extend_from_slice(main);
    let sub = p.len();
    p.extend([movx(6, 1), i(LD_ABS_W0, 0, 0, 0, 0), mov(0, 1), exit()]);
    (p, sub)
}

fn run(insns: &[Insn], opts: Options) -> Result<(), String> {
    let env: Vec<MapDesc> = Vec::new();
    verify(insns, &env, &opts).result.map_err(|e| e.message)
}

#[test]
fn failed_load_returns_zero_to_the_caller() {
    // if r0 != 0 goto exit; r0 = r9 (never written): only the hidden exit's r0 = 0 gets there
    let (p, _) = prog(&[
        i(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 1, 0),
        movx(0, 9),
        mov(0, 0),
        exit(),
    ]);
    let with_btf = || Options::new(ProgType::SocketFilter).func_info(true);
    let err = run(&p, with_btf()).unwrap_err();
    assert_eq!(err, "R9 !read_ok");
    let (p, _) = prog(&[mov(0, 0), exit()]);
    run(&p, with_btf()).expect("both paths safe");
    // Without BTF function info the kernel refuses the subprogram's load before exploring
    // (`check_abnormal_return`).
    assert_eq!(
        run(&p, Options::new(ProgType::SocketFilter)).unwrap_err(),
        "LD_ABS is not allowed in subprogs without BTF"
    );
}

#[test]
fn subprogram_must_return_an_int() {
    let (p, sub) = prog(&[mov(0, 0), exit()]);
    let opts = Options::new(ProgType::SocketFilter)
        .func_info(true)
        .non_scalar_return(vec![sub]);
    assert_eq!(
        run(&p, opts).unwrap_err(),
        "LD_ABS is only allowed in functions that return 'int'."
    );
}

#[test]
fn not_in_a_callback() {
    // bpf_loop(1, cb, NULL, 0) with cb = the ld_abs subprogram
    let mut p = vec![
        movx(6, 1),
        mov(1, 1),
        i(BPF_LD | BPF_IMM | BPF_DW, 2, BPF_PSEUDO_FUNC, 0, 0),
        i(0, 0, 0, 0, 0),
        mov(3, 0),
        mov(4, 0),
        i(BPF_JMP | BPF_CALL, 0, 0, 0, 181),
        mov(0, 0),
        exit(),
    ];
    let cb = p.len();
    p[2].imm = (cb - 3) as i32;
    p.extend([i(LD_ABS_W0, 0, 0, 0, 0), mov(0, 0), exit()]);
    let opts = Options::new(ProgType::SocketFilter).func_info(true);
    assert_eq!(
        run(&p, opts).unwrap_err(),
        "cannot use BPF_LD_[ABS|IND] within callback"
    );
}

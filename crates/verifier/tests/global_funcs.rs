//! Global functions: checked once on their own against their prototype, their callers only
//! against the arguments (the cases of the kernel's `verifier_global_subprogs.c` and
//! `verifier_global_ptr_args.c`, in kbpf's assembler).

use kbpf_isa::asm::assemble;
use kbpf_verifier::{GlobalArg, GlobalFunc, MapDesc, Options, ProgType, verify};

fn run(src: &str, args: Result<Vec<GlobalArg>, String>) -> Result<String, String> {
    let insns = assemble(src).expect("assembles");
    // The global function is the second subprogram: the target of the first local call.
    let start = insns
        .iter()
        .enumerate()
        .find(|(_, i)| i.code == 0x85 && i.src() == 1)
        .map(|(at, i)| (at as i64 + 1 + i64::from(i.imm)) as usize)
        .expect("a local call");
    let opts = Options::new(ProgType::Xdp).global_funcs(vec![GlobalFunc {
        start,
        name: "sub".into(),
        args,
    }]);
    let env: Vec<MapDesc> = Vec::new();
    let v = verify(&insns, &env, &opts);
    match v.result {
        Ok(()) => Ok(v.log),
        Err(e) => Err(format!("{}\n{}", e.message, v.log)),
    }
}

const MEM4: GlobalArg = GlobalArg::Mem {
    size: 4,
    nullable: true,
};

#[test]
fn nullable_memory_must_be_checked_by_the_callee() {
    // The caller passes a valid pointer; the function alone must still check for NULL.
    let src = "mov %r1, 42\nstxw [%r10-4], %r1\nmov %r1, %r10\nadd %r1, -4\ncall local sub\nexit\n\
               sub:\nldxw %r0, [%r1+0]\nexit";
    let err = run(src, Ok(vec![MEM4])).unwrap_err();
    assert!(
        err.starts_with("R1 invalid mem access 'mem_or_null'"),
        "{err}"
    );
    let src = "mov %r1, 42\nstxw [%r10-4], %r1\nmov %r1, %r10\nadd %r1, -4\ncall local sub\nexit\n\
               sub:\nmov %r0, 0\njeq %r1, 0, +1\nldxw %r0, [%r1+0]\nexit";
    run(src, Ok(vec![MEM4])).expect("NULL-checked access");
}

#[test]
fn callee_accesses_stay_inside_the_prototypes_size() {
    let src = "mov %r1, 0\nstxdw [%r10-8], %r1\nmov %r1, %r10\nadd %r1, -8\ncall local sub\nexit\n\
               sub:\nmov %r0, 0\njeq %r1, 0, +1\nldxdw %r0, [%r1+0]\nexit";
    let err = run(src, Ok(vec![MEM4])).unwrap_err();
    assert!(
        err.contains("invalid access to memory, mem_size=4 off=0 size=8"),
        "{err}"
    );
}

#[test]
fn caller_arguments_are_checked() {
    // A pointer where the prototype wants a scalar.
    let src = "mov %r1, %r10\nadd %r1, -8\ncall local sub\nexit\nsub:\nmov %r0, %r1\nexit";
    let err = run(src, Ok(vec![GlobalArg::Scalar])).unwrap_err();
    assert!(
        err.starts_with("Caller passes invalid args into func#1 ('sub')"),
        "{err}"
    );
    assert!(err.contains("R1 is not a scalar"), "{err}");
    // Too little stack behind a memory argument.
    let src = "mov %r1, %r10\nadd %r1, -2\ncall local sub\nexit\nsub:\nmov %r0, 0\nexit";
    let err = run(src, Ok(vec![MEM4])).unwrap_err();
    assert!(err.starts_with("Caller passes invalid args"), "{err}");
    // NULL is always a valid memory argument, the context a valid context argument.
    run(
        "mov %r1, 0\ncall local sub\nexit\nsub:\nmov %r0, 0\nexit",
        Ok(vec![MEM4]),
    )
    .unwrap();
    run(
        "call local sub\nexit\nsub:\nldxw %r0, [%r1+12]\nexit",
        Ok(vec![GlobalArg::Ctx]),
    )
    .unwrap();
}

#[test]
fn the_caller_knows_nothing_of_the_result_and_the_memory() {
    // R0 is an unknown scalar after the call, so it cannot index a 1-byte stack buffer...
    let src = "call local sub\nmov %r1, %r10\nadd %r1, -8\nadd %r1, %r0\nldxb %r0, [%r1+0]\nexit\n\
               sub:\nmov %r0, 0\nexit";
    assert!(run(src, Ok(vec![])).is_err());
    // ...and a stack slot handed to the function is unknown data afterwards (it was 0).
    let src = "mov %r1, 0\nstxdw [%r10-8], %r1\nmov %r1, %r10\nadd %r1, -8\ncall local sub\n\
               ldxdw %r1, [%r10-8]\nmov %r0, %r10\nadd %r0, %r1\nmov %r0, 0\nexit\n\
               sub:\nmov %r0, 0\nexit";
    let err = run(
        src,
        Ok(vec![GlobalArg::Mem {
            size: 8,
            nullable: true,
        }]),
    )
    .unwrap_err();
    assert!(err.contains("fp pointer"), "{err}");
}

#[test]
fn unusable_prototypes_refuse_the_call() {
    let src = "call local sub\nexit\nsub:\nmov %r0, 0\nexit";
    let err = run(
        src,
        Err("Global function sub() doesn't return scalar. Only those are supported.".into()),
    )
    .unwrap_err();
    assert!(
        err.starts_with("Caller passes invalid args into func#1 ('sub')"),
        "{err}"
    );
    let err = run(
        src,
        Err("kbpf: arg#0: __arg_trusted is not supported by kbpf".into()),
    )
    .unwrap_err();
    assert!(err.starts_with("kbpf: arg#0"), "{err}");
    // The function must return a scalar.
    let err = run(
        "call local sub\nexit\nsub:\nmov %r0, %r10\nexit",
        Ok(vec![]),
    )
    .unwrap_err();
    assert!(
        err.starts_with("At subprogram exit the register R0 is not a scalar value (fp)"),
        "{err}"
    );
}

/// verifier_global_subprogs.c's anon_user_mem_invalid: a tracepoint's context is not
/// rewritten, so as a global function's 4-byte memory argument it is checked as a byte
/// access at offset 3, which tp_prog_is_valid_access refuses.
#[test]
fn tracepoint_ctx_as_memory_is_checked_as_a_context_access() {
    let src = "call local sub\nexit\nsub:\nmov32 %r0, 0\njeq %r1, 0, +1\nldxw %r0, [%r1+0]\nexit";
    let p = assemble(src).unwrap();
    let opts = Options::new(ProgType::Tracepoint).global_funcs(vec![GlobalFunc {
        start: 2,
        name: "subprog_user_anon_mem".into(),
        args: Ok(vec![MEM4]),
    }]);
    let v = verify(&p, &Vec::<MapDesc>::new(), &opts);
    assert_eq!(
        v.result.map_err(|e| e.message),
        Err("Caller passes invalid args into func#1 ('subprog_user_anon_mem')".into())
    );
    assert!(
        v.log.contains("invalid bpf_context access off=3 size=1\n"),
        "{}",
        v.log
    );
}

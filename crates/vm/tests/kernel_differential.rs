//! Differential test against the live kernel: random verifier-friendly programs (every ALU
//! operation incl. the v4 ones, byte swaps, 64/32-bit conditional jumps, stack loads, stores
//! and atomics, bpf-to-bpf calls) must leave the same `r0` in kbpf's interpreter as in the kernel
//! (`BPF_PROG_TEST_RUN` of an XDP program; its 32-bit `retval` is compared twice, once for each
//! half of `r0`). Skips with a message where `bpf()` is unavailable.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::consts::BPF_PROG_TYPE_XDP;
use kbpf_kernel::{KernelProg, bpf_available_or_skip};
use kbpf_vm::{HelperRegistry, Interpreter, Mode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn reg() -> impl Strategy<Value = u8> {
    0u8..=9
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(i64::MIN as u64),
        Just(0x8000_0000),
        Just(0xffff_ffff),
        Just(0x7fff_ffff),
        (0u64..64),
        any::<u64>(),
    ]
}

/// One body instruction (or an ld_imm64 pair) the kernel's verifier accepts when every
/// register holds a known constant: no constant division by zero, shift immediates in range,
/// stack accesses aligned inside the frame. Jumps are forward; offsets are clamped later.
fn arb_insn() -> impl Strategy<Value = Vec<Insn>> {
    let alu_op = proptest::sample::select(vec![
        (BPF_ADD, 0i16),
        (BPF_SUB, 0),
        (BPF_MUL, 0),
        (BPF_DIV, 0),
        (BPF_DIV, 1),
        (BPF_OR, 0),
        (BPF_AND, 0),
        (BPF_LSH, 0),
        (BPF_RSH, 0),
        (BPF_MOD, 0),
        (BPF_MOD, 1),
        (BPF_XOR, 0),
        (BPF_MOV, 0),
        (BPF_ARSH, 0),
    ]);
    let jmp_op = proptest::sample::select(vec![
        BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE, BPF_JLT, BPF_JLE,
        BPF_JSLT, BPF_JSLE,
    ]);
    let imm = prop_oneof![-3i32..=3, Just(i32::MIN), Just(i32::MAX), any::<i32>()];
    let size = proptest::sample::select(vec![(BPF_B, 1i16), (BPF_H, 2), (BPF_W, 4), (BPF_DW, 8)]);
    prop_oneof![
        // register-register ALU
        4 => (alu_op.clone(), any::<bool>(), reg(), reg()).prop_map(|((op, off), w64, d, s)| {
            let class = if w64 { BPF_ALU64 } else { BPF_ALU };
            vec![Insn::new(class | op | BPF_X, d, s, off, 0)]
        }),
        // register-immediate ALU (shift amounts in range, no division by zero)
        3 => (alu_op, any::<bool>(), reg(), imm.clone()).prop_map(|((op, off), w64, d, i)| {
            let class = if w64 { BPF_ALU64 } else { BPF_ALU };
            let bits = if w64 { 64 } else { 32 };
            let i = match op {
                BPF_LSH | BPF_RSH | BPF_ARSH => i.rem_euclid(bits),
                BPF_DIV | BPF_MOD if i == 0 => 7,
                _ => i,
            };
            vec![Insn::new(class | op | BPF_K, d, 0, off, i)]
        }),
        1 => (any::<bool>(), reg()).prop_map(|(w64, d)| {
            let class = if w64 { BPF_ALU64 } else { BPF_ALU };
            vec![Insn::new(class | BPF_NEG, d, 0, 0, 0)]
        }),
        // movsx
        1 => (proptest::sample::select(vec![(BPF_ALU64, 8i16), (BPF_ALU64, 16), (BPF_ALU64, 32), (BPF_ALU, 8), (BPF_ALU, 16)]), reg(), reg())
            .prop_map(|((class, bits), d, s)| vec![Insn::new(class | BPF_MOV | BPF_X, d, s, bits, 0)]),
        // le / be / bswap
        1 => (proptest::sample::select(vec![BPF_ALU | BPF_TO_LE, BPF_ALU | BPF_TO_BE, BPF_ALU64 | BPF_TO_LE]), proptest::sample::select(vec![16, 32, 64]), reg())
            .prop_map(|(code, bits, d)| vec![Insn::new(code | BPF_END, d, 0, 0, bits)]),
        1 => (reg(), value()).prop_map(|(d, v)| vec![
            Insn::new(BPF_LD | BPF_IMM | BPF_DW, d, 0, 0, v as u32 as i32),
            Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
        ]),
        // conditional jumps
        2 => (jmp_op, any::<bool>(), any::<bool>(), reg(), reg(), imm, 0i16..=5).prop_map(
            |(op, j64, x, d, s, i, off)| {
                let class = if j64 { BPF_JMP } else { BPF_JMP32 };
                vec![if x {
                    Insn::new(class | op | BPF_X, d, s, off, 0)
                } else {
                    Insn::new(class | op | BPF_K, d, 0, off, i)
                }]
            }
        ),
        // stack: the prologue initialises [r10 - 64, r10); accesses stay there, aligned
        2 => (size.clone(), reg(), 1i16..=8).prop_map(|((sz, n), d, slot)| {
            vec![Insn::new(BPF_LDX | BPF_MEM | sz, d, 10, -slot * 8 + (8 - n) * (slot % 2), 0)]
        }),
        1 => (size.clone(), reg(), 1i16..=8).prop_map(|((sz, n), d, slot)| {
            vec![Insn::new(BPF_LDX | BPF_MEMSX | sz, d, 10, -slot * 8 + (8 - n) * (slot % 2), 0)]
        }).prop_filter("no ldsx dw", |v| v[0].code & 0x18 != BPF_DW),
        2 => (size, reg(), 1i16..=8).prop_map(|((sz, n), s, slot)| {
            vec![Insn::new(BPF_STX | BPF_MEM | sz, 10, s, -slot * 8 + (8 - n) * (slot % 2), 0)]
        }),
        // bpf-to-bpf call of the subprogram `program` appends (it clobbers r6-r9 and its own
        // stack, which the caller must not see); the verifier treats r1-r5 as clobbered after
        // a call, so they are reloaded
        1 => proptest::collection::vec(value(), 5).prop_map(|args| {
            let mut v = vec![Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0)];
            for (r, a) in args.iter().enumerate() {
                v.push(Insn::new(BPF_LD | BPF_IMM | BPF_DW, r as u8 + 1, 0, 0, *a as u32 as i32));
                v.push(Insn::new(0, 0, 0, 0, (*a >> 32) as u32 as i32));
            }
            v
        }),
        // atomics on the stack
        1 => (
            proptest::sample::select(vec![
                BPF_ADD as i32, BPF_OR as i32, BPF_AND as i32, BPF_XOR as i32,
                BPF_ADD as i32 | BPF_FETCH, BPF_OR as i32 | BPF_FETCH,
                BPF_AND as i32 | BPF_FETCH, BPF_XOR as i32 | BPF_FETCH, BPF_XCHG, BPF_CMPXCHG,
            ]),
            any::<bool>(),
            reg(),
            1i16..=8,
        )
            .prop_map(|(op, dw, s, slot)| {
                let (sz, off) = if dw { (BPF_DW, -slot * 8) } else { (BPF_W, -slot * 8 + 4 * (slot % 2)) };
                vec![Insn::new(BPF_STX | BPF_ATOMIC | sz, 10, s, off, op)]
            }),
    ]
}

/// Prologue (registers r0..r9 = `init`, stack words = `stack`), body, then `exit`, then a
/// subprogram for the body's calls; forward jumps are clamped to land at or before the main
/// function's epilogue. `high` appends `r0 >>= 32` to the main function.
fn program(init: &[u64], stack: &[u64], body: &[Vec<Insn>], high: bool) -> Vec<Insn> {
    let mut insns = Vec::new();
    for (i, &w) in stack.iter().enumerate() {
        insns.push(Insn::new(
            BPF_LD | BPF_IMM | BPF_DW,
            0,
            0,
            0,
            w as u32 as i32,
        ));
        insns.push(Insn::new(0, 0, 0, 0, (w >> 32) as u32 as i32));
        insns.push(Insn::new(
            BPF_STX | BPF_MEM | BPF_DW,
            10,
            0,
            -8 * (i as i16 + 1),
            0,
        ));
    }
    for (r, &v) in init.iter().enumerate() {
        insns.push(Insn::new(
            BPF_LD | BPF_IMM | BPF_DW,
            r as u8,
            0,
            0,
            v as u32 as i32,
        ));
        insns.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
    }
    let body_start = insns.len();
    insns.extend(body.iter().flatten().copied());
    let end = insns.len(); // index of the epilogue's first instruction
    if high {
        insns.push(Insn::new(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 32));
    } else {
        insns.push(Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 0));
    }
    insns.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    // the subprogram: r0 = ((r1 + r2) * r3 ^ r4) - r5 through its own stack, clobbering r6-r9
    // (only when something calls it: the verifier refuses unreachable code)
    let sub = insns.len();
    let calls = insns[body_start..end]
        .iter()
        .any(|i| i.code == BPF_JMP | BPF_CALL);
    let subprogram = [
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 0, 1, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 2, 0, 0),
        Insn::new(BPF_ALU64 | BPF_MUL | BPF_X, 0, 3, 0, 0),
        Insn::new(BPF_ALU64 | BPF_XOR | BPF_X, 0, 4, 0, 0),
        Insn::new(BPF_ALU64 | BPF_SUB | BPF_X, 0, 5, 0, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 6, 0, 0, -1),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 7, 0, 0, -1),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 8, 0, 0, -1),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 9, 0, 0, -1),
        Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0),
        Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -16, 0x5a5a),
        Insn::new(BPF_LDX | BPF_MEM | BPF_DW, 0, 10, -8, 0),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    if calls {
        insns.extend(subprogram);
    }
    for (i, insn) in insns.iter_mut().enumerate().take(end).skip(body_start) {
        let class = insn.class();
        if insn.code == BPF_JMP | BPF_CALL {
            insn.imm = (sub - i - 1) as i32;
        } else if class == BPF_JMP || class == BPF_JMP32 {
            let target = (i + 1 + insn.off as usize).min(end);
            insn.off = (target - i - 1) as i16;
        }
    }
    insns
}

#[test]
fn kbpf_agrees_with_the_kernel_on_random_programs() {
    if !bpf_available_or_skip("kbpf_agrees_with_the_kernel_on_random_programs") {
        return;
    }
    let helpers = HelperRegistry::new();
    // the runner takes an `Fn` closure: count through cells
    let loaded = std::cell::Cell::new(0usize);
    let rejected = std::cell::RefCell::new(Vec::<String>::new());
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(value(), 10),
        proptest::collection::vec(value(), 8),
        proptest::collection::vec(arb_insn(), 1..40),
    );
    let result = runner.run(&strategy, |(init, stack, body)| {
        for high in [false, true] {
            let insns = program(&init, &stack, &body, high);
            // a jump into the middle of an ld_imm64 is malformed for both; nothing to compare
            let Ok(vm) = Interpreter::new(&insns, &helpers) else {
                return Ok(());
            };
            let ours = vm
                .run_mem(&mut [], Mode::Checked)
                .map_err(|e| TestCaseError::fail(format!("kbpf run: {e}")))?;
            let prog = match KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0) {
                Ok((prog, _)) => prog,
                Err(e) => {
                    // keep going, but remember: too many rejections make the test vacuous
                    rejected.borrow_mut().push(
                        e.to_string()
                            .lines()
                            .rev()
                            .take(3)
                            .collect::<Vec<_>>()
                            .join(" | "),
                    );
                    return Ok(());
                }
            };
            loaded.set(loaded.get() + 1);
            let run = prog
                .test_run(&[0u8; 64], 0, None, 1)
                .map_err(|e| TestCaseError::fail(format!("test_run: {e}")))?;
            prop_assert_eq!(
                ours as u32,
                run.retval,
                "r0 {} half: kbpf {:#x}, kernel {:#x}",
                if high { "high" } else { "low" },
                ours as u32,
                run.retval
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (loaded, rejected) = (loaded.get(), rejected.into_inner());
    println!(
        "kernel differential: {loaded} programs loaded, {} rejected",
        rejected.len()
    );
    for r in rejected.iter().take(5) {
        println!("  rejected: {r}");
    }
    assert!(
        rejected.len() * 10 <= loaded,
        "the kernel rejected too many generated programs ({} of {}): {:?}",
        rejected.len(),
        loaded + rejected.len(),
        &rejected[..rejected.len().min(5)]
    );
}

//! Differential testing of *translated* programs (what kbpf-rewrite hands the engines): random
//! programs that use the hidden register `BPF_REG_AX` (r11) anywhere a register may appear,
//! divide and take the modulo by registers through the kernel's division guards (the exact
//! sequences `do_misc_fixups()` emits, which run on AX), move per-CPU addresses
//! (`BPF_MOV64_PERCPU_REG`, through the registry's `THIS_CPU_PTR_ID` hook) and call kernel
//! functions directly (`call imm`). The interpreter (`Interpreter::new_translated`) and the JIT
//! (`JitProgram::compile_translated`) must agree on `r0`, every register (AX included), the
//! memory block and the final stack.
#![cfg(all(target_arch = "x86_64", unix))]

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_jit::{JitError, JitProgram};
use kbpf_vm::helpers::THIS_CPU_PTR_ID;
use kbpf_vm::{Helper, HelperRegistry, Interpreter, Mode};
use proptest::prelude::*;

const AX: u8 = 11;
/// Data the program may access through `r9`, then the stack copy, then `r0`–`r8` and AX.
const DATA: usize = 256;
const STACK_COPY: usize = DATA;
const REG_DUMP: usize = STACK_COPY + MAX_BPF_STACK;
const MEM: usize = REG_DUMP + 10 * 8;
/// Registers the random instructions read and write (r9 is the block, r10 the frame).
const REGS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, AX];
const IMMS: [i32; 10] = [0, 1, -1, 2, 7, -7, 63, 64, i32::MIN, i32::MAX];
/// The immediate of the kernel-function call the generator emits.
const CALL_IMM: i32 = 0x1234;

/// Overwrites every SysV caller-saved register but `rax`, as a real callee may, so that a JIT
/// that forgets to preserve one is caught.
fn clobber_caller_saved() {
    // SAFETY: writes only registers declared as clobbered; touches no memory.
    unsafe {
        std::arch::asm!(
            "mov rdi, -1", "mov rsi, -1", "mov rdx, -1", "mov rcx, -1",
            "mov r8, -1", "mov r9, -1", "mov r10, -1", "mov r11, -1",
            out("rdi") _, out("rsi") _, out("rdx") _, out("rcx") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
}

/// A stand-in for `this_cpu_ptr`: any pure function of its argument will do.
unsafe extern "C" fn this_cpu_ptr(p: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    clobber_caller_saved();
    p.wrapping_mul(0x9e37_79b9).wrapping_add(0x1000) ^ 0x55
}

/// A stand-in for a kernel function called directly: mixes all five arguments.
unsafe extern "C" fn kernel_fn(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    let r = a.wrapping_mul(3) ^ b.rotate_left(7) ^ c.wrapping_add(d) ^ e.wrapping_sub(0x77);
    clobber_caller_saved();
    r
}

fn registry() -> HelperRegistry {
    let mut reg = HelperRegistry::new();
    reg.register(
        THIS_CPU_PTR_ID,
        Helper {
            name: "this_cpu_ptr",
            func: this_cpu_ptr,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    reg.register(
        CALL_IMM,
        Helper {
            name: "kernel_fn",
            func: kernel_fn,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    reg
}

fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

/// The kernel's guard around a division or modulo by a register (`do_misc_fixups()`; the
/// same sequences as kbpf-rewrite's `div_guard`).
fn div_guard(insn: Insn) -> Vec<Insn> {
    let class = insn.class();
    let is64 = class == BPF_ALU64;
    let alu = if is64 { BPF_ALU64 } else { BPF_ALU };
    let jmp = if is64 { BPF_JMP } else { BPF_JMP32 };
    let isdiv = insn.code & 0xf0 == BPF_DIV;
    let signed = insn.off == 1;
    let (d, s) = (insn.dst(), insn.src());
    let mut p = Vec::new();
    if signed && isdiv {
        p.push(raw(BPF_ALU64 | BPF_MOV | BPF_X, AX, s, 0, 0));
        p.push(raw(alu | BPF_ADD | BPF_K, AX, 0, 0, 1));
        p.push(raw(jmp | BPF_JGT | BPF_K, AX, 0, 4, 1));
        p.push(raw(jmp | BPF_JEQ | BPF_K, AX, 0, 1, 0));
        p.push(raw(alu | BPF_MOV | BPF_K, d, 0, 0, 0));
        p.push(raw(alu | BPF_NEG | BPF_K, d, 0, 0, 0));
        p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
        p.push(insn);
    } else if signed {
        p.push(raw(BPF_ALU64 | BPF_MOV | BPF_X, AX, s, 0, 0));
        p.push(raw(alu | BPF_ADD | BPF_K, AX, 0, 0, 1));
        p.push(raw(jmp | BPF_JGT | BPF_K, AX, 0, 3, 1));
        p.push(raw(
            jmp | BPF_JEQ | BPF_K,
            AX,
            0,
            3 + if is64 { 0 } else { 1 },
            1,
        ));
        p.push(raw(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, 0));
        p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
        p.push(insn);
        if !is64 {
            p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
            p.push(raw(BPF_ALU | BPF_MOV | BPF_X, d, d, 0, 0));
        }
    } else if isdiv {
        p.push(raw(jmp | BPF_JNE | BPF_K, s, 0, 2, 0));
        p.push(raw(BPF_ALU | BPF_XOR | BPF_X, d, d, 0, 0));
        p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
        p.push(insn);
    } else {
        p.push(raw(
            jmp | BPF_JEQ | BPF_K,
            s,
            0,
            1 + if is64 { 0 } else { 1 },
            0,
        ));
        p.push(insn);
        if !is64 {
            p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
            p.push(raw(BPF_ALU | BPF_MOV | BPF_X, d, d, 0, 0));
        }
    }
    p
}

type Raw = (u8, u8, u8, i32, u16);

enum Item {
    Plain(Vec<Insn>),
    Jump { insn: Insn, skip: usize },
}

fn imm(sel: u8, k: i32) -> i32 {
    if sel.is_multiple_of(3) {
        IMMS[(k as u32 as usize) % IMMS.len()]
    } else {
        k
    }
}

fn item(r: Raw, jump_room: usize) -> Item {
    let (kind, a, b, k, sel) = r;
    let dst = REGS[a as usize % REGS.len()];
    let src = REGS[b as usize % REGS.len()];
    let class = if a & 0x80 != 0 { BPF_ALU64 } else { BPF_ALU };
    match kind % 8 {
        0 | 1 => {
            let ops = [
                BPF_ADD, BPF_SUB, BPF_MUL, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, BPF_XOR,
                BPF_MOV, BPF_ARSH, BPF_DIV, BPF_MOD,
            ];
            let op = ops[(b as usize >> 4) % ops.len()];
            let insn = if op == BPF_NEG {
                raw(class | op, dst, 0, 0, 0)
            } else if sel & 2 == 0 && !matches!(op, BPF_DIV | BPF_MOD) {
                raw(class | op | BPF_X, dst, src, 0, 0)
            } else {
                let off = i16::from(matches!(op, BPF_DIV | BPF_MOD) && sel & 1 == 1);
                let k = imm(a, k);
                // A signed op by the constant -1 is rewritten to neg/mov by the kernel.
                let k = if off == 1 && k == -1 { 3 } else { k };
                raw(class | op | BPF_K, dst, 0, off, k)
            };
            Item::Plain(vec![insn])
        }
        2 => {
            // Division and modulo by a register, guarded as the kernel does (AX inside).
            // The guard clobbers AX, so neither operand may be AX (the rewrite never sees
            // AX in loader input).
            let ops = [BPF_DIV, BPF_MOD];
            let op = ops[(b as usize >> 4) % 2];
            let (d, s) = (a % 9, b % 9);
            let off = i16::from(sel & 1 == 1);
            Item::Plain(div_guard(raw(class | op | BPF_X, d, s, off, 0)))
        }
        3 => Item::Plain(vec![raw(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, -1, 0)]),
        4 => {
            // A direct kernel-function call: r1–r5 and AX are clobbered after it (scratch in
            // BPF and in the kernel's JIT), so they get fresh values.
            let mut v = vec![raw(BPF_JMP | BPF_CALL, 0, 0, 0, CALL_IMM)];
            for r in [1u8, 2, 3, 4, 5, AX] {
                v.push(raw(
                    BPF_ALU64 | BPF_MOV | BPF_K,
                    r,
                    0,
                    0,
                    k.wrapping_add(r as i32),
                ));
            }
            Item::Plain(v)
        }
        5 => {
            // Loads and stores of the data block through r9, AX as value register.
            let (size, len) = [(BPF_B, 1), (BPF_H, 2), (BPF_W, 4), (BPF_DW, 8)][b as usize % 4];
            let off = (sel as i32 % (DATA as i32 - len + 1)) as i16;
            if a & 0x40 != 0 {
                Item::Plain(vec![raw(BPF_LDX | BPF_MEM | size, dst, 9, off, 0)])
            } else {
                Item::Plain(vec![raw(BPF_STX | BPF_MEM | size, 9, src, off, 0)])
            }
        }
        6 => {
            // Atomics with AX and r0 as source (the cmpxchg loops juggle rax and scratch).
            let (size, len) = if b & 1 == 0 { (BPF_W, 4) } else { (BPF_DW, 8) };
            let off = ((sel as i32 % (DATA as i32 / len)) * len) as i16;
            let ops = [
                BPF_ADD as i32,
                BPF_OR as i32 | BPF_FETCH,
                BPF_AND as i32 | BPF_FETCH,
                BPF_XOR as i32 | BPF_FETCH,
                BPF_ADD as i32 | BPF_FETCH,
                BPF_XCHG,
                BPF_CMPXCHG,
            ];
            let op = ops[(b as usize >> 1) % ops.len()];
            Item::Plain(vec![raw(BPF_STX | BPF_ATOMIC | size, 9, src, off, op)])
        }
        _ => {
            let conds = [
                BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSLT, BPF_JLE,
            ];
            let c = conds[(b as usize >> 4) % conds.len()];
            let skip = if jump_room == 0 {
                0
            } else {
                sel as usize % (jump_room + 1)
            };
            let jclass = if a & 0x80 != 0 { BPF_JMP } else { BPF_JMP32 };
            let insn = if sel & 0x8000 != 0 {
                raw(jclass | c | BPF_X, dst, src, 0, 0)
            } else {
                raw(jclass | c | BPF_K, dst, 0, 0, imm(a, k))
            };
            Item::Jump { insn, skip }
        }
    }
}

fn program(init: &[u64; 10], raws: &[Raw]) -> Vec<Insn> {
    let mut p = vec![raw(BPF_ALU64 | BPF_MOV | BPF_X, 9, 1, 0, 0)];
    for (i, v) in init.iter().enumerate() {
        p.push(raw(
            BPF_LD | BPF_IMM | BPF_DW,
            REGS[i],
            0,
            0,
            *v as u32 as i32,
        ));
        p.push(raw(0, 0, 0, 0, (*v >> 32) as u32 as i32));
    }
    let items: Vec<Item> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| item(*r, raws.len() - i - 1))
        .collect();
    let slots: Vec<usize> = items
        .iter()
        .map(|it| match it {
            Item::Plain(v) => v.len(),
            Item::Jump { .. } => 1,
        })
        .collect();
    for (i, it) in items.into_iter().enumerate() {
        match it {
            Item::Plain(v) => p.extend(v),
            Item::Jump { mut insn, skip } => {
                insn.off = slots[i + 1..i + 1 + skip].iter().sum::<usize>() as i16;
                p.push(insn);
            }
        }
    }
    for (i, r) in REGS.iter().enumerate() {
        p.push(raw(
            BPF_STX | BPF_MEM | BPF_DW,
            9,
            *r,
            (REG_DUMP + 8 * i) as i16,
            0,
        ));
    }
    for k in 0..(MAX_BPF_STACK / 8) {
        let off = -(MAX_BPF_STACK as i16) + 8 * k as i16;
        p.push(raw(BPF_LDX | BPF_MEM | BPF_DW, 1, 10, off, 0));
        p.push(raw(
            BPF_STX | BPF_MEM | BPF_DW,
            9,
            1,
            (STACK_COPY + 8 * k) as i16,
            0,
        ));
    }
    p.push(raw(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0));
    p.push(raw(BPF_ALU64 | BPF_MOV | BPF_K, 9, 0, 0, 0));
    p.push(raw(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn translated_programs_agree(
        init in any::<[u64; 10]>(),
        raws in proptest::collection::vec(any::<Raw>(), 1..40),
        seed in any::<u8>(),
    ) {
        let prog = program(&init, &raws);
        let helpers = registry();
        let vm = Interpreter::new_translated(&prog, &helpers).expect("valid translated program");
        let jit = JitProgram::compile_translated(&prog, &helpers).expect("the JIT accepts it");
        let mem: Vec<u8> = (0..MEM).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let (mut m1, mut m2) = (mem.clone(), mem);
        let want = vm.run_mem(&mut m1, Mode::Checked);
        prop_assert!(want.is_ok(), "{want:?}");
        let got = jit.run_mem(&mut m2);
        prop_assert_eq!(want, got);
        prop_assert!(m1 == m2, "registers, memory block or stack differ");
    }
}

/// Every division guard shape, by every register pair, on edge values: both engines, and
/// the native expectation of BPF's rules.
#[test]
fn division_guards_on_edge_values() {
    let helpers = registry();
    let vals: [u64; 6] = [0, 1, u64::MAX, 7, i64::MIN as u64, 0xffff_ffff];
    for class in [BPF_ALU, BPF_ALU64] {
        for op in [BPF_DIV, BPF_MOD] {
            for off in [0i16, 1] {
                for &x in &vals {
                    for &y in &vals {
                        let mut p = vec![
                            raw(BPF_LD | BPF_IMM | BPF_DW, 3, 0, 0, x as u32 as i32),
                            raw(0, 0, 0, 0, (x >> 32) as u32 as i32),
                            raw(BPF_LD | BPF_IMM | BPF_DW, 4, 0, 0, y as u32 as i32),
                            raw(0, 0, 0, 0, (y >> 32) as u32 as i32),
                        ];
                        p.extend(div_guard(raw(class | op | BPF_X, 3, 4, off, 0)));
                        p.push(raw(BPF_ALU64 | BPF_MOV | BPF_X, 0, 3, 0, 0));
                        p.push(raw(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
                        let vm = Interpreter::new_translated(&p, &helpers).unwrap();
                        let jit = JitProgram::compile_translated(&p, &helpers).unwrap();
                        let want = vm.run_mem(&mut [], Mode::Checked).unwrap();
                        assert_eq!(
                            jit.run_mem(&mut []).unwrap(),
                            want,
                            "class {class:#x} op {op:#x} off {off}: {x:#x}, {y:#x}"
                        );
                    }
                }
            }
        }
    }
}

/// AX and the per-CPU move are refused without `compile_translated`, and the per-CPU move
/// without a hook is a compile error, never a wrong program.
#[test]
fn translated_forms_need_the_option_and_the_hook() {
    let ax = [
        raw(BPF_ALU64 | BPF_MOV | BPF_K, AX, 0, 0, 5),
        raw(BPF_ALU64 | BPF_MOV | BPF_X, 0, AX, 0, 0),
        raw(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    assert!(matches!(
        JitProgram::compile(&ax, &registry()),
        Err(JitError::Invalid(_))
    ));
    let jit = JitProgram::compile_translated(&ax, &registry()).unwrap();
    assert_eq!(jit.run_mem(&mut []).unwrap(), 5);
    let percpu = [
        raw(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 8),
        raw(BPF_ALU64 | BPF_MOV | BPF_X, 0, 1, -1, 0),
        raw(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    assert!(JitProgram::compile(&percpu, &registry()).is_err());
    assert!(matches!(
        JitProgram::compile_translated(&percpu, &HelperRegistry::new()),
        Err(JitError::Unsupported { .. })
    ));
    let jit = JitProgram::compile_translated(&percpu, &registry()).unwrap();
    // SAFETY: the hook is a pure function.
    assert_eq!(jit.run_mem(&mut []).unwrap(), unsafe {
        this_cpu_ptr(8, 0, 0, 0, 0)
    });
}

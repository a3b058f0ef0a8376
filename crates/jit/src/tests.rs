//! Per-family tests: every program runs on the interpreter (`Mode::Checked`) and on the JIT,
//! and r0 (or the run error) and the memory block must be identical. Most programs end by
//! dumping `r0`–`r9` into the memory block, so every register is compared, not just `r0`.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_vm::{Helper, HelperRegistry, Interpreter, Mode, RunError};

use crate::{JitError, JitProgram};

fn ld_imm64(dst: u8, v: u64) -> [Insn; 2] {
    [
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, 0, 0, v as u32 as i32),
        Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}
fn mov64(dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}
fn alu64_k(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0)
}
fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_STX | BPF_MEM | size, dst, src, off, 0)
}
fn call_local(rel: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, rel)
}
fn call_helper(id: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
}

/// Values that stress sign, width and division edge cases.
const EDGE: [u64; 13] = [
    0,
    1,
    u64::MAX, // -1
    i64::MIN as u64,
    0x8000_0000, // i32::MIN as u32
    0xffff_ffff, // -1 as u32
    0xffff_ffff_0000_0000,
    7,
    (-7i64) as u64,
    5,
    64,
    33,
    0x1234_5678_9abc_def0,
];

/// Offset of the register dump in the memory block; the area before it is free for tests.
const DUMP: i16 = 128;
/// Size of the memory block.
const MEM: usize = DUMP as usize + 80;

/// `[r10-8] = r1 (the memory block); r0..r9 = vals; body; dump r0..r9 to mem[DUMP..]; r0 = 0`.
fn with_dump(vals: [u64; 10], body: &[Insn]) -> Vec<Insn> {
    let mut p = vec![stx(BPF_DW, 10, 1, -8)];
    for (i, v) in vals.iter().enumerate() {
        p.extend(ld_imm64(i as u8, *v));
    }
    p.extend_from_slice(body);
    p.push(stx(BPF_DW, 10, 0, -16));
    p.push(ldx(BPF_DW, 0, 10, -8));
    for i in 1..10 {
        p.push(stx(BPF_DW, 0, i, DUMP + 8 * i as i16));
    }
    p.push(ldx(BPF_DW, 1, 10, -16));
    p.push(stx(BPF_DW, 0, 1, DUMP));
    p.push(mov64(0, 0));
    p.push(exit());
    p
}

/// Runs `prog` on both engines with a copy of `mem`; asserts identical results and memory.
fn check_with(prog: &[Insn], helpers: &HelperRegistry, mem: &[u8]) -> Result<u64, RunError> {
    let vm = Interpreter::new(prog, helpers).expect("valid program");
    let mut m1 = mem.to_vec();
    let want = vm.run_mem(&mut m1, Mode::Checked);
    let jit = JitProgram::compile(prog, helpers).unwrap_or_else(|e| panic!("{e}: {prog:?}"));
    let mut m2 = mem.to_vec();
    let got = jit.run_mem(&mut m2);
    assert_eq!(want, got, "r0 differs for {prog:?}");
    assert_eq!(m1, m2, "memory differs for {prog:?}");
    got
}

fn check(prog: &[Insn]) -> Result<u64, RunError> {
    let mem: Vec<u8> = (0..MEM).map(|i| (i * 37 + 11) as u8).collect();
    check_with(prog, &HelperRegistry::new(), &mem)
}

fn vals_for(seed: usize) -> [u64; 10] {
    std::array::from_fn(|i| EDGE[(i * 5 + seed * 3) % EDGE.len()])
}

const BINARY_OPS: [(u8, i16); 15] = [
    (BPF_ADD, 0),
    (BPF_SUB, 0),
    (BPF_MUL, 0),
    (BPF_DIV, 0),
    (BPF_DIV, 1),
    (BPF_MOD, 0),
    (BPF_MOD, 1),
    (BPF_OR, 0),
    (BPF_AND, 0),
    (BPF_XOR, 0),
    (BPF_LSH, 0),
    (BPF_RSH, 0),
    (BPF_ARSH, 0),
    (BPF_MOV, 0),
    (BPF_MOV, 0),
];

#[test]
fn alu_register_forms_every_register_pair() {
    for class in [BPF_ALU64, BPF_ALU] {
        for (k, &(op, off)) in BINARY_OPS.iter().enumerate() {
            for dst in 0..10u8 {
                for src in 0..10u8 {
                    let insn = Insn::new(class | op | BPF_X, dst, src, off, 0);
                    check(&with_dump(vals_for(k + dst as usize), &[insn])).expect("runs");
                }
            }
        }
    }
}

#[test]
fn alu_edge_values_on_the_juggled_registers() {
    // rax/rdx (r0/r3) are implicit in div, rcx (r4) in shifts: pair them with edge values.
    let pairs = [
        (0, 1),
        (0, 3),
        (3, 0),
        (4, 0),
        (1, 4),
        (4, 4),
        (3, 3),
        (0, 0),
        (6, 2),
        (5, 4),
    ];
    for class in [BPF_ALU64, BPF_ALU] {
        for &(op, off) in &BINARY_OPS[2..13] {
            for &(dst, src) in &pairs {
                for &a in &EDGE {
                    for &b in &EDGE {
                        let mut vals = vals_for(1);
                        vals[dst as usize] = a;
                        vals[src as usize] = b;
                        let insn = Insn::new(class | op | BPF_X, dst, src, off, 0);
                        check(&with_dump(vals, &[insn])).expect("runs");
                    }
                }
            }
        }
    }
}

#[test]
fn alu_immediate_forms() {
    let imms = [
        0,
        1,
        -1,
        2,
        7,
        -7,
        31,
        32,
        63,
        64,
        0x7f,
        0x80,
        -0x80,
        -0x81,
        i32::MIN,
        i32::MAX,
    ];
    for class in [BPF_ALU64, BPF_ALU] {
        for &(op, off) in &BINARY_OPS {
            for dst in 0..10u8 {
                for &imm in &imms {
                    for seed in 0..2 {
                        let insn = Insn::new(class | op | BPF_K, dst, 0, off, imm);
                        check(&with_dump(vals_for(seed + dst as usize), &[insn])).expect("runs");
                    }
                }
            }
        }
    }
}

#[test]
fn division_edge_cases_match_the_kernel() {
    // Explicit expectations, not only agreement with the interpreter.
    let run = |class: u8, op: u8, off: i16, a: u64, b: u64| -> u64 {
        let mut p = ld_imm64(0, a).to_vec();
        p.extend(ld_imm64(3, b));
        p.push(Insn::new(class | op | BPF_X, 0, 3, off, 0));
        p.push(exit());
        check(&p).expect("runs")
    };
    let (a64, a32) = (BPF_ALU64, BPF_ALU);
    assert_eq!(run(a64, BPF_DIV, 0, 10, 0), 0);
    assert_eq!(run(a64, BPF_MOD, 0, 10, 0), 10);
    assert_eq!(run(a32, BPF_MOD, 0, 0xffff_ffff_0000_000a, 0), 10);
    assert_eq!(run(a32, BPF_DIV, 0, 10, 0xffff_ffff_0000_0000), 0);
    assert_eq!(
        run(a64, BPF_DIV, 1, i64::MIN as u64, u64::MAX),
        i64::MIN as u64
    );
    assert_eq!(run(a64, BPF_MOD, 1, i64::MIN as u64, u64::MAX), 0);
    assert_eq!(run(a32, BPF_DIV, 1, 0x8000_0000, 0xffff_ffff), 0x8000_0000);
    assert_eq!(run(a32, BPF_MOD, 1, 0x8000_0000, 0xffff_ffff), 0);
    assert_eq!(run(a64, BPF_DIV, 1, (-7i64) as u64, 2), (-3i64) as u64);
    assert_eq!(run(a64, BPF_MOD, 1, (-7i64) as u64, 2), (-1i64) as u64);
    assert_eq!(
        run(a32, BPF_MOD, 1, (-7i32) as u32 as u64, 0),
        (-7i32) as u32 as u64
    );
    // A 32-bit shift by a register holding 0 still zero-extends.
    let mut p = ld_imm64(0, u64::MAX).to_vec();
    p.extend(ld_imm64(2, 0xffff_ffff_0000_0000));
    p.push(Insn::new(BPF_ALU | BPF_LSH | BPF_X, 0, 2, 0, 0));
    p.push(exit());
    assert_eq!(check(&p), Ok(0xffff_ffff));
}

#[test]
fn unary_alu_movsx_and_endian() {
    let mut insns = Vec::new();
    for dst in 0..10u8 {
        insns.push(Insn::new(BPF_ALU64 | BPF_NEG, dst, 0, 0, 0));
        insns.push(Insn::new(BPF_ALU | BPF_NEG, dst, 0, 0, 0));
        for src in [0u8, 1, 2, 4, 6, 9] {
            for (class, bits) in [
                (BPF_ALU64, 8),
                (BPF_ALU64, 16),
                (BPF_ALU64, 32),
                (BPF_ALU, 8),
                (BPF_ALU, 16),
            ] {
                insns.push(Insn::new(class | BPF_MOV | BPF_X, dst, src, bits, 0));
            }
        }
        for bits in [16, 32, 64] {
            insns.push(Insn::new(BPF_ALU | BPF_END | BPF_TO_LE, dst, 0, 0, bits));
            insns.push(Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits));
            insns.push(Insn::new(BPF_ALU64 | BPF_END, dst, 0, 0, bits));
        }
    }
    for (k, insn) in insns.iter().enumerate() {
        for seed in 0..4 {
            check(&with_dump(vals_for(seed * 7 + k), &[*insn])).expect("runs");
        }
    }
}

#[test]
fn loads_and_stores_every_size_and_base() {
    for base in 0..10u8 {
        for reg in 0..10u8 {
            for off in [0i16, 3, 8, 64, -8] {
                for size in [BPF_B, BPF_H, BPF_W, BPF_DW] {
                    // base = mem + 32 so that negative offsets stay inside the block.
                    let setup = [ldx(BPF_DW, base, 10, -8), alu64_k(BPF_ADD, base, 32)];
                    let clear = |written: u8| {
                        if written == base {
                            vec![]
                        } else {
                            vec![mov64(base, 0)]
                        }
                    };
                    let mut bodies = Vec::new();
                    let mut b = setup.to_vec();
                    b.push(ldx(size, reg, base, off));
                    b.extend(clear(reg));
                    bodies.push(b);
                    let mut b = setup.to_vec();
                    b.push(Insn::new(BPF_LDX | BPF_MEMSX | size, reg, base, off, 0));
                    b.extend(clear(reg));
                    if size != BPF_DW {
                        bodies.push(b);
                    }
                    if reg != base {
                        let mut b = setup.to_vec();
                        b.push(stx(size, base, reg, off));
                        b.extend(clear(255));
                        bodies.push(b);
                    }
                    let mut b = setup.to_vec();
                    b.push(Insn::new(
                        BPF_ST | BPF_MEM | size,
                        base,
                        0,
                        off,
                        -0x1234_5678,
                    ));
                    b.extend(clear(255));
                    bodies.push(b);
                    for body in bodies {
                        check(&with_dump(vals_for(reg as usize), &body)).expect("runs");
                    }
                }
            }
        }
    }
}

#[test]
fn stack_accesses_through_r10() {
    for reg in 0..10u8 {
        for size in [BPF_B, BPF_H, BPF_W, BPF_DW] {
            let mut body = vec![
                stx(size, 10, reg, -40),
                st_imm(size, -48, -2),
                ldx(size, reg, 10, -40),
            ];
            if size != BPF_DW {
                body.push(Insn::new(
                    BPF_LDX | BPF_MEMSX | size,
                    (reg + 1) % 10,
                    10,
                    -48,
                    0,
                ));
            }
            check(&with_dump(vals_for(reg as usize), &body)).expect("runs");
        }
    }
}

fn st_imm(size: u8, off: i16, imm: i32) -> Insn {
    Insn::new(BPF_ST | BPF_MEM | size, 10, 0, off, imm)
}

#[test]
fn atomics_every_operation_and_register() {
    let ops = [
        BPF_ADD as i32,
        BPF_OR as i32,
        BPF_AND as i32,
        BPF_XOR as i32,
        BPF_ADD as i32 | BPF_FETCH,
        BPF_OR as i32 | BPF_FETCH,
        BPF_AND as i32 | BPF_FETCH,
        BPF_XOR as i32 | BPF_FETCH,
        BPF_XCHG,
        BPF_CMPXCHG,
    ];
    for size in [BPF_W, BPF_DW] {
        for &imm in &ops {
            for base in 0..11u8 {
                for src in 0..10u8 {
                    if src == base {
                        continue;
                    }
                    let written = if imm == BPF_CMPXCHG {
                        0
                    } else if imm & BPF_FETCH != 0 {
                        src
                    } else {
                        255
                    };
                    let mut body = Vec::new();
                    let off = if base == 10 {
                        // On the stack: seed the slot first.
                        body.push(stx(BPF_DW, 10, (src + 3) % 10, -24));
                        -24
                    } else {
                        body.push(ldx(BPF_DW, base, 10, -8));
                        8
                    };
                    body.push(Insn::new(BPF_STX | BPF_ATOMIC | size, base, src, off, imm));
                    if base == 10 {
                        body.push(ldx(BPF_DW, 9, 10, -24));
                    } else if written != base {
                        body.push(mov64(base, 0));
                    }
                    check(&with_dump(vals_for(src as usize + base as usize), &body)).expect("runs");
                }
            }
        }
    }
}

#[test]
fn cmpxchg_success_and_failure() {
    for (size, cmp, expect_swap) in [
        (BPF_DW, 0x1122_3344_5566_7788u64, true),
        (BPF_DW, 5, false),
        (BPF_W, 0xdead_beef_5566_7788, true),
        (BPF_W, 0x5566_7789, false),
    ] {
        let mut p = vec![ldx(BPF_DW, 2, 1, 0)];
        p.extend(ld_imm64(0, cmp));
        p.extend(ld_imm64(3, 0xaaaa_bbbb_cccc_dddd));
        p.push(Insn::new(BPF_STX | BPF_ATOMIC | size, 1, 3, 0, BPF_CMPXCHG));
        p.push(exit());
        let mut mem = 0x1122_3344_5566_7788u64.to_le_bytes().to_vec();
        let old = if size == BPF_DW {
            0x1122_3344_5566_7788
        } else {
            0x5566_7788
        };
        assert_eq!(check_with(&p, &HelperRegistry::new(), &mem), Ok(old));
        let jit = JitProgram::compile(&p, &HelperRegistry::new()).expect("compiles");
        jit.run_mem(&mut mem).expect("runs");
        let now = u64::from_le_bytes(mem[..8].try_into().expect("8 bytes"));
        let swapped = match size {
            BPF_DW => now == 0xaaaa_bbbb_cccc_dddd,
            _ => now == 0x1122_3344_cccc_dddd,
        };
        assert_eq!(swapped, expect_swap, "{now:#x}");
    }
}

#[test]
fn conditional_jumps_all_conditions() {
    let conds = [
        BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE, BPF_JSGT, BPF_JSGE, BPF_JSLT,
        BPF_JSLE, BPF_JSET,
    ];
    for class in [BPF_JMP, BPF_JMP32] {
        for &c in &conds {
            for &a in &EDGE {
                for &b in &EDGE {
                    let mut vals = vals_for(0);
                    vals[4] = a;
                    vals[0] = b;
                    let body = [Insn::new(class | c | BPF_X, 4, 0, 1, 0), mov64(9, 0x55)];
                    check(&with_dump(vals, &body)).expect("runs");
                }
                for imm in [0, 1, -1, 7, -7, i32::MIN, 0x7fff_ffff] {
                    let mut vals = vals_for(0);
                    vals[1] = a;
                    let body = [Insn::new(class | c | BPF_K, 1, 0, 1, imm), mov64(9, 0x55)];
                    check(&with_dump(vals, &body)).expect("runs");
                }
            }
        }
    }
}

#[test]
fn long_and_backward_jumps() {
    // A loop whose body is longer than a rel8 can span, plus a forward jump over it.
    let mut p = vec![mov64(0, 0), mov64(6, 0)];
    let filler = 60;
    // insn 2: loop top
    for _ in 0..filler {
        p.push(alu64_k(BPF_ADD, 0, 3));
    }
    p.push(alu64_k(BPF_ADD, 6, 1));
    let back = -(filler as i16 + 2);
    p.push(Insn::new(BPF_JMP | BPF_JLT | BPF_K, 6, 0, back, 10));
    p.push(Insn::new(BPF_JMP | BPF_JA, 0, 0, filler as i16, 0));
    for _ in 0..filler {
        p.push(alu64_k(BPF_ADD, 0, 1000));
    }
    p.push(exit());
    assert_eq!(check(&p), Ok(10 * 3 * filler as u64));
    // gotol: the 32-bit-offset unconditional jump
    let p = [
        Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, 1),
        mov64(0, 1),
        mov64(0, 2),
        exit(),
    ];
    assert_eq!(check(&p), Ok(2));
}

#[test]
fn short_jumps_are_chosen_when_they_fit() {
    // jeq r1, 0, +1 → `test rdi, rdi; je rel8` = 3 + 2 bytes.
    let p = [
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1, 0),
        mov64(0, 1),
        exit(),
    ];
    let jit = JitProgram::compile(&p, &HelperRegistry::new()).expect("compiles");
    let a = jit.insn_offset(0).expect("offset");
    let b = jit.insn_offset(1).expect("offset");
    assert_eq!(b - a, 5);
    assert_eq!(jit.image()[a + 3], 0x74, "je rel8");
    assert!(jit.passes() >= 2);
    // Far away: the 6-byte rel32 form.
    let mut p = vec![Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 100, 0)];
    p.extend(std::iter::repeat_n(alu64_k(BPF_ADD, 0, 1000), 100));
    p.push(exit());
    let jit = JitProgram::compile(&p, &HelperRegistry::new()).expect("compiles");
    let (a, b) = (jit.insn_offset(0).unwrap(), jit.insn_offset(1).unwrap());
    assert_eq!(b - a, 3 + 6);
    assert_eq!(jit.image()[a + 3..a + 5], [0x0f, 0x84], "je rel32");
}

#[test]
fn ld_imm64_values() {
    for v in [
        0,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        u64::MAX,
        0x8000_0000,
        i64::MIN as u64,
    ] {
        for dst in 0..10u8 {
            let mut body = ld_imm64(dst, v).to_vec();
            body.push(alu64_k(BPF_ADD, dst, 1));
            check(&with_dump(vals_for(dst as usize), &body)).expect("runs");
        }
    }
}

unsafe extern "C" fn mix(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    a.wrapping_add(b.wrapping_mul(2))
        .wrapping_add(c.wrapping_mul(3))
        .wrapping_add(d.wrapping_mul(4))
        .wrapping_add(e.wrapping_mul(5))
}

unsafe extern "C" fn identity(a: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    a
}

fn test_helpers() -> HelperRegistry {
    let mut h = HelperRegistry::new();
    h.register(
        1,
        Helper {
            name: "mix",
            func: mix,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    h.register(
        5,
        Helper {
            name: "unwind",
            func: identity,
            unwind_on_zero: true,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    h.register(
        12,
        Helper {
            name: "tail_call_like",
            func: identity,
            unwind_on_zero: true,
            keep_r0_on_failure: true,
            frame_result: None,
            inline: None,
        },
    );
    h.register(
        13,
        Helper {
            name: "tail_call_frame",
            func: identity,
            unwind_on_zero: true,
            keep_r0_on_failure: true,
            frame_result: Some(forty),
            inline: None,
        },
    );
    h
}

unsafe extern "C" fn forty() -> u64 {
    40
}

/// A helper with a frame result (`bpf_tail_call` in kbpf-run): on 0 only the calling
/// function ends, returning the frame result to its caller, which goes on with its own
/// registers; from the main function that ends the program. Otherwise r0 is kept and the
/// function goes on.
#[test]
fn frame_result_helper_ends_only_the_calling_function() {
    let h = test_helpers();
    // main: r6 = 5; call sub; r0 += r6; exit.  sub: r6 = 9; r0 = 1; call 13; r0 += 900; exit
    let prog = |r1: i32| {
        vec![
            mov64(6, 5),
            mov64(1, r1),
            call_local(2),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 6, 0, 0),
            exit(),
            mov64(6, 9),
            mov64(0, 1),
            call_helper(13),
            alu64_k(BPF_ADD, 0, 900),
            exit(),
        ]
    };
    assert_eq!(
        check_with(&prog(0), &h, &[]),
        Ok(40 + 5),
        "ends the subprogram"
    );
    assert_eq!(check_with(&prog(3), &h, &[]), Ok(1 + 900 + 5), "goes on");
    // From the main function: the program ends with the frame result.
    let main = vec![
        mov64(1, 0),
        mov64(0, 7),
        call_helper(13),
        mov64(0, 3),
        exit(),
    ];
    assert_eq!(check_with(&main, &h, &[]), Ok(40));
}

/// A `bpf_tail_call`-like helper: 0 unwinds, anything else is no result and r0 keeps its
/// value (the kernel's tail call is a jump that leaves r0 alone when it fails).
#[test]
fn keep_r0_on_failure_helper_leaves_r0_alone() {
    let h = test_helpers();
    let prog = |r1: i32| {
        vec![
            mov64(0, 77),
            mov64(6, 5),
            mov64(1, r1),
            call_helper(12),
            alu64_k(BPF_ADD, 0, 1),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 6, 0, 0),
            exit(),
        ]
    };
    assert_eq!(check_with(&prog(-2), &h, &[]), Ok(77 + 1 + 5));
    assert_eq!(check_with(&prog(0), &h, &[]), Ok(0), "unwinds");
}

#[test]
fn helper_calls_pass_five_arguments_and_keep_r6_to_r9() {
    let h = test_helpers();
    let mut p = Vec::new();
    for (r, v) in [(1, 1), (2, 10), (3, 100), (4, 1000), (5, 10000)] {
        p.push(mov64(r, v));
    }
    for r in 6..10 {
        p.extend(ld_imm64(r, 0x0111_1111_1111_1111 * r as u64));
    }
    p.push(call_helper(1));
    // r0 = mix + r6 + r7 + r8 + r9
    for r in 6..10 {
        p.push(Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, r, 0, 0));
    }
    p.push(exit());
    let want = 1u64 + 20 + 300 + 4000 + 50000 + 0x0111_1111_1111_1111 * (6 + 7 + 8 + 9);
    assert_eq!(check_with(&p, &h, &[]), Ok(want));
}

#[test]
fn callx_dispatches_at_run_time() {
    let h = test_helpers();
    let prog = |id: i32, r1: i32| {
        vec![
            mov64(1, r1),
            mov64(2, 2),
            mov64(3, 3),
            mov64(4, 4),
            mov64(5, 5),
            mov64(7, id),
            Insn::new(BPF_JMP | BPF_CALL | BPF_X, 7, 0, 0, 0),
            alu64_k(BPF_ADD, 0, 1),
            exit(),
        ]
    };
    assert_eq!(
        check_with(&prog(1, 1), &h, &[]),
        Ok(1 + 4 + 9 + 16 + 25 + 1)
    );
    assert_eq!(check_with(&prog(5, 9), &h, &[]), Ok(10));
    assert_eq!(check_with(&prog(5, 0), &h, &[]), Ok(0), "unwinds");
    assert_eq!(
        check_with(&prog(99, 0), &h, &[]),
        Err(RunError::UnknownHelper { pc: 6, id: 99 })
    );
    // `call imm` of an unregistered helper fails when (and only when) executed.
    let p = [
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1, 0),
        call_helper(42),
        mov64(0, 3),
        exit(),
    ];
    assert_eq!(check_with(&p, &h, &[]), Ok(3));
    assert_eq!(
        check_with(&p, &h, &[1]),
        Err(RunError::UnknownHelper { pc: 1, id: 42 })
    );
}

#[test]
fn bpf_to_bpf_calls_have_own_frames_and_preserve_r6_to_r9() {
    let h = test_helpers();
    // main: r6..r9 = 6..9; [r10-8] = 77; call f(r1 = r10 - 8); r0 += r6+r7+r8+r9 + [r10-8]
    // f:    clobbers r6..r9 and its own stack, writes 5 through r1 into the caller's frame,
    //       calls g and returns r0 = g() * 2
    // g:    returns [r10-8] of its own (zeroed) frame + 21
    let p = vec![
        mov64(6, 6),
        mov64(7, 7),
        mov64(8, 8),
        mov64(9, 9),
        Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 77),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 10, 0, 0),
        alu64_k(BPF_ADD, 1, -16),
        call_local(9), // → pc 17 (f)
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 6, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 7, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 8, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 9, 0, 0),
        ldx(BPF_DW, 1, 10, -8),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0),
        ldx(BPF_DW, 1, 10, -16),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0),
        exit(),
        // f (pc 17)
        mov64(6, 100),
        mov64(9, 100),
        Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 1),
        Insn::new(BPF_ST | BPF_MEM | BPF_DW, 1, 0, 0, 5),
        call_local(2), // → pc 24 (g)
        alu64_k(BPF_MUL, 0, 2),
        exit(),
        // g (pc 24)
        ldx(BPF_DW, 0, 10, -8),
        alu64_k(BPF_ADD, 0, 21),
        exit(),
    ];
    let r = check_with(&p, &h, &[]);
    assert_eq!(r, Ok(42 + 6 + 7 + 8 + 9 + 77 + 5));
    let jit = JitProgram::compile(&p, &h).expect("compiles");
    assert_eq!(
        jit.functions().map(|(pc, _)| pc).collect::<Vec<_>>(),
        [0, 17, 24]
    );
}

#[test]
fn unwind_and_depth_errors_unwind_the_native_stack() {
    let h = test_helpers();
    // main calls f, f calls the unwind helper with r1 = 0 two frames deep.
    let p = [
        mov64(6, 1),
        call_local(2),
        mov64(0, 9),
        exit(),
        call_local(1),
        exit(),
        mov64(1, 0),
        call_helper(5),
        mov64(0, 4),
        exit(),
    ];
    assert_eq!(check_with(&p, &h, &[]), Ok(0));
    // Unbounded recursion stops at MAX_CALL_FRAMES with the interpreter's error.
    let rec = [call_local(1), exit(), call_local(-1), exit()];
    assert_eq!(
        check_with(&rec, &h, &[]),
        Err(RunError::CallDepth { pc: 2 })
    );
    // The program (and the process) stays usable after unwinding, also on other threads.
    let jit = JitProgram::compile(&p, &h).expect("compiles");
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..1000 {
                    assert_eq!(jit.run_mem(&mut []), Ok(0));
                }
            });
        }
    });
    // depth 7 (MAX_CALL_FRAMES - 1 calls) is allowed
    let mut deep = Vec::new();
    for _ in 0..7 {
        deep.push(call_local(1));
        deep.push(exit());
    }
    deep.push(mov64(0, 7));
    deep.push(exit());
    assert_eq!(check_with(&deep, &h, &[]), Ok(7));
}

#[test]
fn function_addresses_from_ld_imm64() {
    // r0 = &g - &f: the distance between the two JIT-ed functions.
    let p = [
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 0, BPF_PSEUDO_FUNC, 0, 5), // → pc 7
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_FUNC, 0, 2), // → pc 5
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_ALU64 | BPF_SUB | BPF_X, 0, 1, 0, 0),
        exit(), // pc 5: f... (the main function's exit)
        exit(),
        exit(),
    ];
    // pc 5 is a function start too, so main is [0, 5): its last insn must be an exit/ja.
    assert!(matches!(
        JitProgram::compile(&p, &HelperRegistry::new()),
        Err(JitError::FallsIntoNextFunction { pc: 4 })
    ));
    let p = [
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 0, BPF_PSEUDO_FUNC, 0, 7), // → pc 8
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_FUNC, 0, 3), // → pc 6
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_ALU64 | BPF_SUB | BPF_X, 0, 1, 0, 0),
        exit(),
        mov64(0, 1), // pc 6
        exit(),
        exit(), // pc 8
    ];
    let jit = JitProgram::compile(&p, &HelperRegistry::new()).expect("compiles");
    let offs: Vec<_> = jit.functions().collect();
    assert_eq!(offs.iter().map(|f| f.0).collect::<Vec<_>>(), [0, 6, 8]);
    let want = (offs[2].1 - offs[1].1) as u64;
    assert_eq!(jit.run_mem(&mut []), Ok(want));
}

#[test]
fn refusals_are_errors_not_code() {
    let h = HelperRegistry::new();
    let ld_abs = [Insn::new(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, 0), exit()];
    assert!(matches!(
        JitProgram::compile(&ld_abs, &h),
        Err(JitError::Unsupported { pc: 0, .. })
    ));
    let kfunc = [
        Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 7),
        exit(),
    ];
    assert!(matches!(
        JitProgram::compile(&kfunc, &h),
        Err(JitError::Unsupported { pc: 0, .. })
    ));
    let fp = [mov64(10, 0), exit()];
    assert!(matches!(
        JitProgram::compile(&fp, &h),
        Err(JitError::WritesFramePointer { pc: 0 })
    ));
    // main jumps into the subprogram's body
    let across = [
        call_local(2),
        Insn::new(BPF_JMP | BPF_JA, 0, 0, 2, 0),
        exit(),
        mov64(0, 1),
        exit(),
    ];
    assert!(matches!(
        JitProgram::compile(&across, &h),
        Err(JitError::JumpOutOfFunction { pc: 1, target: 4 })
    ));
    let recurse_main = [mov64(0, 1), call_local(-2), exit()];
    assert!(matches!(
        JitProgram::compile(&recurse_main, &h),
        Err(JitError::Unsupported { pc: 1, .. })
    ));
    assert!(matches!(
        JitProgram::compile(&[mov64(0, 0)], &h),
        Err(JitError::Invalid(_))
    ));
}

#[test]
fn acquire_and_release() {
    for size in [BPF_B, BPF_H, BPF_W, BPF_DW] {
        let p = [
            mov64(2, -3),
            Insn::new(BPF_STX | BPF_ATOMIC | size, 1, 2, 8, BPF_STORE_REL),
            Insn::new(BPF_STX | BPF_ATOMIC | size, 0, 1, 8, BPF_LOAD_ACQ),
            exit(),
        ];
        check_with(&p, &HelperRegistry::new(), &[0x5a; 16]).expect("runs");
    }
}

/// Returns how far a 16-byte-aligned local lands from 16-byte alignment: non-zero if the
/// helper was entered with a misaligned stack (the compiler places the local assuming the
/// SysV alignment of `rsp` at the call).
unsafe extern "C" fn stack_misalignment(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    #[repr(align(16))]
    struct Aligned([u8; 16]);
    let x = std::hint::black_box(Aligned([0; 16]));
    let addr = std::hint::black_box(&x) as *const Aligned as usize;
    (addr % 16) as u64 + 100 + u64::from(x.0[15])
}

#[test]
fn helpers_see_an_aligned_stack_at_every_depth() {
    let mut h = HelperRegistry::new();
    h.register(
        2,
        Helper {
            name: "stack_misalignment",
            func: stack_misalignment,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    // main: helper; f (depth 1): helper via callx; g (depth 2): helper; sum of all results
    let p = [
        call_helper(2),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 6, 0, 0, 0),
        call_local(2), // f at pc 5
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 6, 0, 0),
        exit(),
        mov64(1, 2), // f
        Insn::new(BPF_JMP | BPF_CALL | BPF_X, 1, 0, 0, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 6, 0, 0, 0),
        call_local(2), // g at pc 11
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 6, 0, 0),
        exit(),
        call_helper(2), // g
        exit(),
    ];
    assert_eq!(check_with(&p, &h, &[]), Ok(300));
}

#[test]
fn prologue_zeroes_only_the_verifiers_stack_depth() {
    // r0 = *(u64 *)(r10 - 16) after writing r10 - 8: a 16-byte frame.
    let p = [
        mov64(1, 7),
        stx(BPF_DW, 10, 1, -8),
        ldx(BPF_DW, 0, 10, -16),
        exit(),
    ];
    let has_rep_stos = |code: &[u8]| code.windows(3).any(|w| w == [0xf3, 0x48, 0xab]);
    let full = JitProgram::compile_translated(&p, &HelperRegistry::new()).expect("compiles");
    assert!(
        has_rep_stos(full.image()),
        "no depth: the whole frame is zeroed"
    );
    let sized = JitProgram::compile_translated_with_stack(&p, &HelperRegistry::new(), &[16])
        .expect("compiles");
    assert!(
        !has_rep_stos(sized.image()),
        "16 bytes: two stores, no rep stosq"
    );
    assert!(sized.image().len() < full.image().len());
    // The slot the program reads without writing is zero on both (as in the interpreter).
    let mut mem = [0u8; 8];
    assert_eq!(full.run_mem(&mut mem), Ok(0));
    assert_eq!(sized.run_mem(&mut mem), Ok(0));
    // A large depth still zeroes everything it may read.
    let big = JitProgram::compile_translated_with_stack(&p, &HelperRegistry::new(), &[300])
        .expect("compiles");
    assert!(has_rep_stos(big.image()));
}

/// The interpreter's view of [`HelperInline::ArrayLookup`] with the layout of
/// [`inline_lookup_matches_the_call`]: max_entries at 0, elem_size at 4, value offset at 8.
unsafe extern "C" fn test_array_lookup(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: the test passes its own header and a 4-byte key.
    unsafe {
        let h = map as *const u32;
        let idx = (key as *const u32).read_unaligned();
        if idx >= h.read_unaligned() {
            return 0;
        }
        map + h.add(2).read_unaligned() as u64 + idx as u64 * h.add(1).read_unaligned() as u64
    }
}

/// The JIT's inline array lookup gives what the call gives: the element's address for an
/// index below the bound read from the header, NULL at and past it (results as offsets from
/// the header, so both engines' memory copies compare).
#[test]
fn inline_lookup_matches_the_call() {
    let mut h = HelperRegistry::new();
    h.register(
        40,
        Helper {
            name: "array_map_lookup_elem",
            func: test_array_lookup,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: Some(kbpf_vm::HelperInline::ArrayLookup {
                max_entries: 0,
                elem_size: 4,
                value_off: 8,
            }),
        },
    );
    let mut mem = vec![0u8; 64];
    mem[0..4].copy_from_slice(&5u32.to_ne_bytes()); // max_entries
    mem[4..8].copy_from_slice(&12u32.to_ne_bytes()); // elem_size
    mem[8..12].copy_from_slice(&16u32.to_ne_bytes()); // value offset
    for idx in [0i32, 1, 4, 5, 6, -1] {
        let p = vec![
            mov64(6, 0),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
            Insn::new(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, idx),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
            alu64_k(BPF_ADD, 2, -4),
            call_helper(40),
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0),
            Insn::new(BPF_ALU64 | BPF_SUB | BPF_X, 0, 6, 0, 0),
            exit(),
            mov64(0, 0xffff),
            exit(),
        ];
        let want = if (0..5).contains(&idx) {
            16 + idx as u64 * 12
        } else {
            0xffff
        };
        assert_eq!(check_with(&p, &h, &mem), Ok(want), "index {idx}");
    }
}

fn alu64_x(op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
}

/// `X = Y; X <<= k; Y += X` is fused into `mov; shl; lea` (see `Emitter::fused`): every
/// register pair, every scale, edge values — and the same shape left alone where it must be
/// (k outside 1..=3, a jump into its middle, 32-bit forms, X == Y), all against the interpreter.
#[test]
fn shift_add_fusion_keeps_every_register() {
    for x in 0..10u8 {
        for y in 0..10u8 {
            for k in 0..=5 {
                let body = [
                    alu64_x(BPF_MOV, x, y),
                    alu64_k(BPF_LSH, x, k),
                    alu64_x(BPF_ADD, y, x),
                ];
                check(&with_dump(
                    vals_for((x * 10 + y) as usize + k as usize),
                    &body,
                ))
                .expect("runs");
            }
        }
    }
    // The 32-bit forms, and a jump landing on the shift and on the add.
    let thirty_two = [
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, 3, 4, 0, 0),
        Insn::new(BPF_ALU | BPF_LSH | BPF_K, 3, 0, 0, 2),
        Insn::new(BPF_ALU | BPF_ADD | BPF_X, 4, 3, 0, 0),
    ];
    check(&with_dump(vals_for(7), &thirty_two)).expect("runs");
    for (jump_to, cond) in [(1i16, 0i32), (2, 0), (1, 1), (2, 1)] {
        // if r5 == cond goto (mov + jump_to)
        let body = [
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, jump_to, cond),
            alu64_x(BPF_MOV, 6, 7),
            alu64_k(BPF_LSH, 6, 3),
            alu64_x(BPF_ADD, 7, 6),
        ];
        let mut vals = vals_for(3);
        vals[5] = 0;
        check(&with_dump(vals, &body)).expect("runs");
    }
}

#[test]
fn shift_add_fusion_emits_lea() {
    // r0 = r1; r0 <<= 3; r1 += r0; r0 = r1; exit
    let prog = [
        alu64_x(BPF_MOV, 0, 1),
        alu64_k(BPF_LSH, 0, 3),
        alu64_x(BPF_ADD, 1, 0),
        alu64_x(BPF_MOV, 0, 1),
        exit(),
    ];
    let jit = JitProgram::compile(&prog, &HelperRegistry::new()).expect("compiles");
    let code = jit.image();
    // lea rdi, [rdi + rdi*8] (BPF r1 is rdi, as in the kernel's JIT)
    assert!(
        code.windows(4).any(|w| w == [0x48, 0x8d, 0x3c, 0xff]),
        "no lea in {code:02x?}"
    );
}

fn jmp_k(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}
fn ja(off: i16) -> Insn {
    Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
}

/// The kernel's inlined array lookup followed by a null check (`array_map_gen_lookup`'s
/// shape over the memory block as the "array" of 16 8-byte values), for keys in and out of
/// range, masked and not; and the near misses the peephole must leave alone (the null target
/// reads r0, a jump lands inside the run).
#[test]
fn array_lookup_null_check_fusion() {
    let lookup = |key: i32, masked: bool, target: [Insn; 2], extra_jump: bool| {
        let mut p = vec![alu64_x(BPF_MOV, 6, 1), mov64(0, key)];
        if extra_jump {
            // if r6 == 0 goto Z (never taken, but lands on the `r0 = 0`)
            p.push(jmp_k(BPF_JEQ, 6, 0, if masked { 5 } else { 4 }));
        }
        p.push(jmp_k(BPF_JGE, 0, 16, if masked { 4 } else { 3 }));
        if masked {
            p.push(Insn::new(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0, 15));
        }
        p.extend([
            alu64_k(BPF_LSH, 0, 3),
            alu64_x(BPF_ADD, 0, 6),
            ja(1),
            mov64(0, 0),
            jmp_k(BPF_JEQ, 0, 0, 2),
            ldx(BPF_DW, 0, 0, 0),
            exit(),
        ]);
        p.extend(target);
        p.push(exit());
        p
    };
    let overwrite = [
        mov64(0, 77),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 1),
    ];
    let reads = [
        alu64_k(BPF_ADD, 0, 5),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 1),
    ];
    for key in [0, 1, 15, 16, 17, -1, 1 << 20] {
        for masked in [false, true] {
            for extra in [false, true] {
                for target in [overwrite, reads] {
                    let r = check(&lookup(key, masked, target, extra)).expect("runs");
                    if (0..16).contains(&key) {
                        assert_ne!(r, 77, "key {key} found nothing");
                    }
                }
            }
        }
    }
    // The fused form is what the JIT emits for the plain shape: no `test rax, rax`.
    let jit = JitProgram::compile(&lookup(3, false, overwrite, false), &HelperRegistry::new())
        .expect("compiles");
    assert!(
        !jit.image().windows(3).any(|w| w == [0x48, 0x85, 0xc0]),
        "test rax, rax left in {:02x?}",
        jit.image()
    );
}

/// `if A goto +1; goto L` becomes `if !A goto L`: a counted loop with every condition and
/// width, JSET included, run against the interpreter (r2 counts the iterations).
#[test]
fn branch_over_goto_inversion() {
    let conds = [
        BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE, BPF_JSGT, BPF_JSGE, BPF_JSLT,
        BPF_JSLE, BPF_JSET,
    ];
    for class in [BPF_JMP, BPF_JMP32] {
        for op in conds {
            for limit in [0, 1, 7, -3] {
                // r1 = 0; r2 = 0; loop: r1 += 1; r2 += 1; if r2 > 40 goto out;
                // if r1 OP limit goto +1; goto loop; out: r0 = r2; exit
                let prog = [
                    mov64(1, -5),
                    mov64(2, 0),
                    alu64_k(BPF_ADD, 1, 1),
                    alu64_k(BPF_ADD, 2, 1),
                    jmp_k(BPF_JGT, 2, 40, 2),
                    Insn::new(class | op | BPF_K, 1, 0, 1, limit),
                    ja(-5),
                    alu64_x(BPF_MOV, 0, 2),
                    exit(),
                ];
                check(&prog).expect("runs");
            }
        }
    }
}

/// `X = Y; X += K` and `X = imm64; X += K` (as `lea` and one `mov`), on every register and
/// edge constants, against the interpreter; and left alone when a jump lands on the add.
#[test]
fn set_then_add_fusion() {
    for x in 0..10u8 {
        for y in 0..10u8 {
            for k in [0, 1, -4, i32::MIN, i32::MAX] {
                let body = [alu64_x(BPF_MOV, x, y), alu64_k(BPF_ADD, x, k)];
                check(&with_dump(vals_for((x + y) as usize), &body)).expect("runs");
            }
        }
        for v in [0u64, u64::MAX, 0x7fff_ffff, 0x1234_5678_9abc_def0] {
            let mut body = ld_imm64(x, v).to_vec();
            body.push(alu64_k(BPF_ADD, x, -8));
            check(&with_dump(vals_for(x as usize), &body)).expect("runs");
        }
    }
    // A jump onto the add: `if r3 == 0 goto +1` skips the move but not the add.
    for r3 in [0u64, 1] {
        let mut vals = vals_for(2);
        vals[3] = r3;
        let body = [
            jmp_k(BPF_JEQ, 3, 0, 1),
            alu64_x(BPF_MOV, 4, 5),
            alu64_k(BPF_ADD, 4, 100),
        ];
        check(&with_dump(vals, &body)).expect("runs");
    }
}

/// clang's 32-bit rotate (`wA = wX; wA >>= 32-k; wB = wX; wB <<= k; wB |= wA`, and the
/// halves swapped) on every register triple and several k, against the interpreter; the
/// near misses (64-bit halves, shifts not adding to 32, A == X) left alone.
#[test]
fn rotate32_fusion() {
    let alu32_x = |op: u8, d: u8, s: u8| Insn::new(BPF_ALU | op | BPF_X, d, s, 0, 0);
    let alu32_k = |op: u8, d: u8, k: i32| Insn::new(BPF_ALU | op | BPF_K, d, 0, 0, k);
    for a in 0..10u8 {
        for b in 0..10u8 {
            for x in [0u8, 3, 9] {
                for (k, r) in [(4, 28), (1, 31), (31, 1), (16, 16), (4, 27)] {
                    let rsh = [alu32_x(BPF_MOV, a, x), alu32_k(BPF_RSH, a, r)];
                    let lsh = [alu32_x(BPF_MOV, b, x), alu32_k(BPF_LSH, b, k)];
                    for first_rsh in [true, false] {
                        let mut body = Vec::new();
                        if first_rsh {
                            body.extend(rsh);
                            body.extend(lsh);
                        } else {
                            body.extend(lsh);
                            body.extend(rsh);
                        }
                        body.push(alu32_x(BPF_OR, b, a));
                        check(&with_dump(vals_for((a * 7 + b) as usize), &body)).expect("runs");
                    }
                }
            }
        }
    }
    // 64-bit halves are not a 32-bit rotate.
    let body = [
        alu64_x(BPF_MOV, 2, 3),
        alu64_k(BPF_RSH, 2, 28),
        alu64_x(BPF_MOV, 4, 3),
        alu64_k(BPF_LSH, 4, 4),
        alu64_x(BPF_OR, 4, 2),
    ];
    check(&with_dump(vals_for(5), &body)).expect("runs");
}

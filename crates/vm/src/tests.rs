//! Semantics tests: hand-encoded programs with expected results, run in both modes.

use kbpf_isa::Instruction;
use kbpf_isa::insn::*;
use proptest::prelude::*;

use crate::{Helper, HelperRegistry, Interpreter, MemoryRegion, Mode, RunError};

// ---- a few encoders, so the programs below read like the kernel's BPF_* macros ----

fn alu64_k(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
}
fn alu64_x(op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
}
fn mov64(dst: u8, imm: i32) -> Insn {
    alu64_k(BPF_MOV, dst, imm)
}
fn ld_imm64(dst: u8, v: u64) -> [Insn; 2] {
    [
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, 0, 0, v as u32 as i32),
        Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0)
}
fn ldxs(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | BPF_MEMSX | size, dst, src, off, 0)
}
fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_STX | BPF_MEM | size, dst, src, off, 0)
}
fn st(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(BPF_ST | BPF_MEM | size, dst, 0, off, imm)
}
fn atomic(size: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(BPF_STX | BPF_ATOMIC | size, dst, src, off, imm)
}
fn jmp_k(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}
fn call_helper(id: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
}
fn call_local(rel: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, rel)
}
fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// Runs `prog` with `mem` in both modes and checks they agree; returns r0.
fn run_both_with(prog: &[Insn], helpers: &HelperRegistry, mem: &[u8]) -> Result<u64, RunError> {
    let vm = Interpreter::new(prog, helpers).expect("valid program");
    let mut m1 = mem.to_vec();
    let checked = vm.run_mem(&mut m1, Mode::Checked);
    if checked.is_ok() {
        let mut m2 = mem.to_vec();
        let unchecked = vm.run_mem(&mut m2, Mode::Unchecked);
        assert_eq!(checked, unchecked, "checked and unchecked runs differ");
        assert_eq!(m1, m2);
    }
    checked
}

fn run(prog: &[Insn]) -> u64 {
    run_both_with(prog, &HelperRegistry::new(), &[]).expect("program runs")
}

/// r0 = a; r1 = b; <op> r0, r1 (or imm b); exit — for 64 and 32-bit ALU checks.
fn alu(code: u8, a: u64, b: u64, off: i16) -> u64 {
    let mut p = ld_imm64(0, a).to_vec();
    p.extend(ld_imm64(1, b));
    p.push(Insn::new(code, 0, 1, off, 0));
    p.push(exit());
    run(&p)
}
fn alu_imm(code: u8, a: u64, imm: i32, off: i16) -> u64 {
    let mut p = ld_imm64(0, a).to_vec();
    p.push(Insn::new(code, 0, 0, off, imm));
    p.push(exit());
    run(&p)
}

const A64X: u8 = BPF_ALU64 | BPF_X;
const A32X: u8 = BPF_ALU | BPF_X;
const A64K: u8 = BPF_ALU64 | BPF_K;
const A32K: u8 = BPF_ALU | BPF_K;

#[test]
fn alu64_arithmetic_wraps() {
    assert_eq!(alu(A64X | BPF_ADD, u64::MAX, 2, 0), 1);
    assert_eq!(alu(A64X | BPF_SUB, 1, 2, 0), u64::MAX);
    assert_eq!(alu(A64X | BPF_MUL, 1 << 63, 2, 0), 0);
    assert_eq!(alu(A64X | BPF_OR, 0xf0, 0x0f, 0), 0xff);
    assert_eq!(alu(A64X | BPF_AND, 0xf0, 0x3c, 0), 0x30);
    assert_eq!(alu(A64X | BPF_XOR, 0xff, 0x0f, 0), 0xf0);
    assert_eq!(alu(A64X | BPF_MOV, 5, 7, 0), 7);
    // 64-bit immediates are sign-extended
    assert_eq!(alu_imm(A64K | BPF_ADD, 0, -1, 0), u64::MAX);
    assert_eq!(alu_imm(A64K | BPF_AND, u64::MAX, -2, 0), u64::MAX - 1);
    assert_eq!(alu_imm(A64K | BPF_MOV, 0, -1, 0), u64::MAX);
    let neg = [mov64(0, 5), alu64_k(BPF_NEG, 0, 0), exit()];
    assert_eq!(run(&neg), (-5i64) as u64);
}

#[test]
fn alu32_zero_extends() {
    assert_eq!(alu(A32X | BPF_ADD, u64::MAX, 1, 0), 0);
    assert_eq!(alu(A32X | BPF_ADD, 0xdead_beef_0000_0001, 1, 0), 2);
    assert_eq!(alu(A32X | BPF_SUB, 0, 1, 0), 0xffff_ffff);
    assert_eq!(alu(A32X | BPF_MUL, 0x1_0000_0003, 0x1_0000_0005, 0), 15);
    assert_eq!(alu(A32X | BPF_MOV, 0, u64::MAX, 0), 0xffff_ffff);
    assert_eq!(alu(A32X | BPF_OR, 0xffff_0000_0000_0000, 1, 0), 1);
    assert_eq!(alu(A32X | BPF_XOR, u64::MAX, 0, 0), 0xffff_ffff);
    // 32-bit immediates: low half, zero-extended result
    assert_eq!(alu_imm(A32K | BPF_MOV, u64::MAX, -1, 0), 0xffff_ffff);
    assert_eq!(alu_imm(A32K | BPF_ADD, 0xffff_ffff, 1, 0), 0);
    assert_eq!(alu_imm(A32K | BPF_NEG, 1, 0, 0), 0xffff_ffff);
    // even a no-op 32-bit ALU op clears the upper half
    assert_eq!(alu_imm(A32K | BPF_AND, u64::MAX, -1, 0), 0xffff_ffff);
}

#[test]
fn division_edge_cases() {
    // unsigned: by zero -> 0 (div) / dst unchanged (mod)
    assert_eq!(alu(A64X | BPF_DIV, 10, 0, 0), 0);
    assert_eq!(alu(A64X | BPF_MOD, 10, 0, 0), 10);
    assert_eq!(alu(A64X | BPF_DIV, 10, 3, 0), 3);
    assert_eq!(alu(A64X | BPF_MOD, 10, 3, 0), 1);
    assert_eq!(alu_imm(A64K | BPF_DIV, 10, 0, 0), 0);
    assert_eq!(alu_imm(A64K | BPF_MOD, 10, 0, 0), 10);
    // the imm is sign-extended: 10 / 0xffff_ffff_ffff_ffff = 0
    assert_eq!(alu_imm(A64K | BPF_DIV, 10, -1, 0), 0);
    assert_eq!(alu_imm(A64K | BPF_MOD, 10, -1, 0), 10);
    // 32-bit: by zero -> 0 / low half zero-extended
    assert_eq!(alu(A32X | BPF_DIV, 0x1_0000_000a, 0, 0), 0);
    assert_eq!(alu(A32X | BPF_MOD, 0x1_0000_000a, 0, 0), 0xa);
    assert_eq!(alu(A32X | BPF_MOD, 0x1_0000_000a, 0x1_0000_0000, 0), 0xa);
    assert_eq!(alu(A32X | BPF_DIV, 0x1_0000_000a, 0x2_0000_0002, 0), 5);
    assert_eq!(alu_imm(A32K | BPF_DIV, 0xffff_fffe, -1, 0), 0);
    // signed (off = 1)
    let min64 = i64::MIN as u64;
    let m1 = u64::MAX;
    assert_eq!(alu(A64X | BPF_DIV, (-7i64) as u64, 2, 1), (-3i64) as u64);
    assert_eq!(alu(A64X | BPF_MOD, (-7i64) as u64, 2, 1), (-1i64) as u64);
    assert_eq!(alu(A64X | BPF_MOD, 7, (-2i64) as u64, 1), 1);
    assert_eq!(alu(A64X | BPF_DIV, min64, m1, 1), min64);
    assert_eq!(alu(A64X | BPF_MOD, min64, m1, 1), 0);
    assert_eq!(alu(A64X | BPF_DIV, (-7i64) as u64, 0, 1), 0);
    assert_eq!(alu(A64X | BPF_MOD, (-7i64) as u64, 0, 1), (-7i64) as u64);
    assert_eq!(alu_imm(A64K | BPF_DIV, (-8i64) as u64, -2, 1), 4);
    let min32 = 0x8000_0000u64;
    assert_eq!(alu(A32X | BPF_DIV, min32, m1, 1), min32);
    assert_eq!(alu(A32X | BPF_MOD, min32, m1, 1), 0);
    assert_eq!(alu(A32X | BPF_DIV, 0xffff_fff9, 2, 1), 0xffff_fffd); // -7 / 2 = -3
    assert_eq!(alu(A32X | BPF_MOD, 0xffff_fff9, 2, 1), 0xffff_ffff); // -7 % 2 = -1
    assert_eq!(alu(A32X | BPF_DIV, 0x5_ffff_fff9, 0, 1), 0);
    assert_eq!(alu(A32X | BPF_MOD, 0x5_ffff_fff9, 0, 1), 0xffff_fff9);
    assert_eq!(alu_imm(A32K | BPF_MOD, 0x5_ffff_fff9, 0, 1), 0xffff_fff9);
}

#[test]
fn shifts_mask_the_amount() {
    assert_eq!(alu(A64X | BPF_LSH, 1, 65, 0), 2);
    assert_eq!(alu(A64X | BPF_RSH, 4, 64 + 2, 0), 1);
    assert_eq!(alu(A64X | BPF_ARSH, 1 << 63, 63 + 64, 0), u64::MAX);
    assert_eq!(alu(A32X | BPF_LSH, 1, 33, 0), 2);
    assert_eq!(alu(A32X | BPF_LSH, 0x8000_0000, 1, 0), 0);
    assert_eq!(alu(A32X | BPF_RSH, 0xffff_ffff_0000_0010, 36, 0), 1);
    assert_eq!(alu(A32X | BPF_ARSH, 0x8000_0000, 4, 0), 0xf800_0000);
    assert_eq!(
        alu(A32X | BPF_ARSH, 0xffff_ffff_7000_0000, 4, 0),
        0x0700_0000
    );
    assert_eq!(
        alu_imm(A64K | BPF_ARSH, (-16i64) as u64, 2, 0),
        (-4i64) as u64
    );
    assert_eq!(alu_imm(A64K | BPF_LSH, 1, 63, 0), 1 << 63);
    assert_eq!(alu_imm(A32K | BPF_RSH, u64::MAX, 28, 0), 0xf);
}

#[test]
fn movsx_sign_extends() {
    let movsx = |class: u8, bits: i16, v: u64| {
        let mut p = ld_imm64(1, v).to_vec();
        p.push(ld_imm64(0, 0xdead_beef_dead_beef)[0]);
        p.push(ld_imm64(0, 0xdead_beef_dead_beef)[1]);
        p.push(Insn::new(class | BPF_MOV | BPF_X, 0, 1, bits, 0));
        p.push(exit());
        run(&p)
    };
    assert_eq!(movsx(BPF_ALU64, 8, 0x80), 0xffff_ffff_ffff_ff80);
    assert_eq!(movsx(BPF_ALU64, 8, 0x17f), 0x7f);
    assert_eq!(movsx(BPF_ALU64, 16, 0x8000), 0xffff_ffff_ffff_8000);
    assert_eq!(movsx(BPF_ALU64, 32, 0x8000_0000), 0xffff_ffff_8000_0000);
    assert_eq!(movsx(BPF_ALU64, 32, 0x1_7fff_ffff), 0x7fff_ffff);
    assert_eq!(movsx(BPF_ALU, 8, 0x80), 0xffff_ff80);
    assert_eq!(movsx(BPF_ALU, 16, 0xffff_8001), 0xffff_8001);
}

#[test]
fn byte_swaps() {
    let v = 0x1122_3344_5566_7788u64;
    let end = |code: u8, bits: i32| {
        let mut p = ld_imm64(0, v).to_vec();
        p.push(Insn::new(code | BPF_END, 0, 0, 0, bits));
        p.push(exit());
        run(&p)
    };
    // le on a little-endian host truncates (zero-extends); be and bswap swap
    assert_eq!(end(BPF_ALU | BPF_TO_LE, 16), 0x7788);
    assert_eq!(end(BPF_ALU | BPF_TO_LE, 32), 0x5566_7788);
    assert_eq!(end(BPF_ALU | BPF_TO_LE, 64), v);
    assert_eq!(end(BPF_ALU | BPF_TO_BE, 16), 0x8877);
    assert_eq!(end(BPF_ALU | BPF_TO_BE, 32), 0x8877_6655);
    assert_eq!(end(BPF_ALU | BPF_TO_BE, 64), 0x8877_6655_4433_2211);
    assert_eq!(end(BPF_ALU64, 16), 0x8877);
    assert_eq!(end(BPF_ALU64, 32), 0x8877_6655);
    assert_eq!(end(BPF_ALU64, 64), 0x8877_6655_4433_2211);
}

/// `if r1 <op> r2 goto +1; r0 = 0; exit; r0 = 1; exit` → whether the jump was taken.
fn taken(class: u8, op: u8, a: u64, b: u64, imm: Option<i32>) -> bool {
    let mut p = ld_imm64(1, a).to_vec();
    p.extend(ld_imm64(2, b));
    p.push(match imm {
        Some(i) => Insn::new(class | op | BPF_K, 1, 0, 2, i),
        None => Insn::new(class | op | BPF_X, 1, 2, 2, 0),
    });
    p.extend([mov64(0, 0), exit(), mov64(0, 1), exit()]);
    run(&p) == 1
}

#[test]
fn jump_conditions() {
    let neg = |x: i64| x as u64;
    // (op, a, b, taken64)
    let cases: &[(u8, u64, u64, bool)] = &[
        (BPF_JEQ, 5, 5, true),
        (BPF_JEQ, 5, 6, false),
        (BPF_JNE, 5, 6, true),
        (BPF_JNE, 5, 5, false),
        (BPF_JGT, neg(-1), 1, true),
        (BPF_JGT, 1, 1, false),
        (BPF_JGE, 1, 1, true),
        (BPF_JGE, 0, 1, false),
        (BPF_JLT, 1, neg(-1), true),
        (BPF_JLT, 1, 1, false),
        (BPF_JLE, 1, 1, true),
        (BPF_JLE, 2, 1, false),
        (BPF_JSGT, 1, neg(-1), true),
        (BPF_JSGT, neg(-1), 1, false),
        (BPF_JSGE, neg(-1), neg(-1), true),
        (BPF_JSGE, neg(-2), neg(-1), false),
        (BPF_JSLT, neg(-1), 1, true),
        (BPF_JSLT, 1, neg(-1), false),
        (BPF_JSLE, neg(-1), neg(-1), true),
        (BPF_JSLE, 0, neg(-1), false),
        (BPF_JSET, 0b1010, 0b0010, true),
        (BPF_JSET, 0b1010, 0b0101, false),
    ];
    for &(op, a, b, want) in cases {
        assert_eq!(
            taken(BPF_JMP, op, a, b, None),
            want,
            "jmp op {op:#x} {a:#x} {b:#x}"
        );
        assert_eq!(taken(BPF_JMP32, op, a, b, None), want, "jmp32 op {op:#x}");
        if let Ok(i) = i32::try_from(b as i64) {
            assert_eq!(
                taken(BPF_JMP, op, a, b, Some(i)),
                want,
                "jmp imm op {op:#x}"
            );
            assert_eq!(
                taken(BPF_JMP32, op, a, b, Some(i)),
                want,
                "jmp32 imm {op:#x}"
            );
        }
    }
    // JMP32 only looks at the low halves
    assert!(taken(BPF_JMP32, BPF_JEQ, 0x1_0000_0005, 5, Some(5)));
    assert!(!taken(BPF_JMP, BPF_JEQ, 0x1_0000_0005, 5, Some(5)));
    assert!(taken(BPF_JMP32, BPF_JSLT, 0x0_8000_0000, 0, Some(0)));
    assert!(!taken(BPF_JMP, BPF_JSLT, 0x0_8000_0000, 0, Some(0)));
    // the 64-bit imm is sign-extended, the 32-bit one compared as 32 bits
    assert!(taken(BPF_JMP, BPF_JEQ, u64::MAX, 0, Some(-1)));
    assert!(taken(BPF_JMP32, BPF_JEQ, 0xffff_ffff, 0, Some(-1)));
    assert!(!taken(BPF_JMP, BPF_JEQ, 0xffff_ffff, 0, Some(-1)));
}

#[test]
fn fused_mov_alu_pairs_keep_their_semantics() {
    // every fusable pair, plus a jump into the middle of a pair (its second slot)
    let p = [
        mov64(1, 10),
        mov64(2, 0),
        alu64_x(BPF_MOV, 3, 1), // r3 = r1 + 5       (fused)
        alu64_k(BPF_ADD, 3, 5),
        alu64_x(BPF_MOV, 4, 1), // r4 = r1 * -3      (fused, sign-extended imm)
        alu64_k(BPF_MUL, 4, -3),
        alu64_x(BPF_MOV, 5, 4), // r5 = r4 & 0xff    (fused)
        alu64_k(BPF_AND, 5, 0xff),
        alu64_x(BPF_MOV, 6, 1), // r6 = r1 << 1     (fused)
        alu64_k(BPF_LSH, 6, 1),
        alu64_x(BPF_MOV, 7, 4), // r7 = r4 >> 60
        alu64_k(BPF_RSH, 7, 60),
        alu64_x(BPF_MOV, 0, 3), // r0 = r3 + ... (not fused: different dst)
        alu64_k(BPF_ADD, 8, 0),
        alu64_x(BPF_ADD, 0, 5),
        alu64_x(BPF_ADD, 0, 6),
        alu64_x(BPF_ADD, 0, 7),
        // second pass: jump into the second half of the pair at 2/3 with r3 = 100
        jmp_k(BPF_JNE, 2, 0, 4),
        mov64(2, 1),
        mov64(3, 100),
        alu64_x(BPF_MOV, 9, 0), // keep the first result in r9
        Insn::new(BPF_JMP | BPF_JA, 0, 0, -19, 0), // -> slot 3: r3 += 5
        alu64_x(BPF_ADD, 0, 9),
        exit(),
    ];
    let r4 = (10i64 * -3) as u64;
    let first = 15 + (r4 & 0xff) + 20 + (r4 >> 60);
    // the second pass skips `r3 = r1` (r3 = 100 + 5) and recomputes the rest
    let second = 105 + (r4 & 0xff) + 20 + (r4 >> 60);
    assert_eq!(run(&p), first + second);
    // the instruction budget counts both halves of a fused pair in Checked mode
    let p = [
        mov64(1, 1),
        alu64_x(BPF_MOV, 0, 1),
        alu64_k(BPF_ADD, 0, 1),
        exit(),
    ];
    let reg = HelperRegistry::new();
    let vm = Interpreter::new(&p, &reg)
        .unwrap()
        .with_instruction_limit(3);
    assert_eq!(
        vm.run_mem(&mut [], Mode::Checked),
        Err(RunError::InstructionLimit { pc: 3, limit: 3 })
    );
    let vm = Interpreter::new(&p, &reg)
        .unwrap()
        .with_instruction_limit(4);
    assert_eq!(vm.run_mem(&mut [], Mode::Checked), Ok(2));
    assert_eq!(vm.run_mem(&mut [], Mode::Unchecked), Ok(2));
}

#[test]
fn ja_and_gotol() {
    let p = [
        mov64(0, 1),
        Insn::new(BPF_JMP | BPF_JA, 0, 0, 1, 0),
        mov64(0, 2),
        Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, 1),
        mov64(0, 3),
        exit(),
    ];
    assert_eq!(run(&p), 1);
    // backwards gotol: loop three times
    let p = [
        mov64(0, 0),
        alu64_k(BPF_ADD, 0, 1),
        jmp_k(BPF_JGE, 0, 3, 1),
        Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, -3),
        exit(),
    ];
    assert_eq!(run(&p), 3);
}

#[test]
fn ld_imm64_combines_both_halves() {
    let mut p = ld_imm64(0, 0x8765_4321_dead_beef).to_vec();
    p.push(exit());
    assert_eq!(run(&p), 0x8765_4321_dead_beef);
    // a pseudo source (already rewritten to an address) still loads imm | next_imm << 32
    let p = [
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 0, BPF_PSEUDO_MAP_VALUE, 0, 0x10),
        Insn::new(0, 0, 0, 0, 0x7),
        exit(),
    ];
    assert_eq!(run(&p), 0x7_0000_0010);
}

#[test]
fn stack_loads_and_stores() {
    let p = [
        mov64(1, -2),
        stx(BPF_DW, 10, 1, -8),
        ldx(BPF_B, 0, 10, -8), // 0xfe
        ldx(BPF_H, 2, 10, -8), // 0xfffe
        alu64_x(BPF_ADD, 0, 2),
        ldx(BPF_W, 2, 10, -8), // 0xffff_fffe
        alu64_x(BPF_ADD, 0, 2),
        ldx(BPF_DW, 2, 10, -8), // -2
        alu64_x(BPF_ADD, 0, 2),
        exit(),
    ];
    assert_eq!(run(&p), 0xfe + 0xfffe + 0xffff_fffe - 2);
    let p = [
        st(BPF_DW, 10, -8, -1), // imm sign-extended to 64 bits
        ldx(BPF_DW, 0, 10, -8),
        exit(),
    ];
    assert_eq!(run(&p), u64::MAX);
    let p = [
        st(BPF_W, 10, -8, 0x80),
        st(BPF_H, 10, -4, 0x8000),
        st(BPF_B, 10, -2, 0x80),
        ldxs(BPF_B, 0, 10, -8),
        ldxs(BPF_H, 1, 10, -4),
        ldxs(BPF_W, 2, 10, -2), // bytes 0x80 0x00 + 2 bytes past -> within frame: -2..+2 crosses top
        exit(),
    ];
    // the last load reads past r10: out of the frame
    assert!(matches!(
        run_both_with(&p, &HelperRegistry::new(), &[]),
        Err(RunError::OutOfBounds {
            pc: 5,
            write: false,
            len: 4,
            ..
        })
    ));
    let p = [
        st(BPF_W, 10, -8, 0x80),
        st(BPF_H, 10, -4, 0x8000),
        st(BPF_B, 10, -2, 0x80),
        ldxs(BPF_B, 0, 10, -8),
        ldxs(BPF_H, 1, 10, -4),
        alu64_x(BPF_ADD, 0, 1),
        ldxs(BPF_B, 1, 10, -2),
        alu64_x(BPF_ADD, 0, 1),
        ldxs(BPF_W, 1, 10, -8),
        alu64_x(BPF_ADD, 0, 1),
        exit(),
    ];
    assert_eq!(run(&p), (-128i64 - 32768 - 128 + 0x80) as u64);
}

#[test]
fn memory_argument_and_bounds() {
    // r1 = mem, r2 = len: sum the bytes
    let p = [
        mov64(0, 0),
        jmp_k(BPF_JEQ, 2, 0, 5),
        ldx(BPF_B, 3, 1, 0),
        alu64_x(BPF_ADD, 0, 3),
        alu64_k(BPF_ADD, 1, 1),
        alu64_k(BPF_SUB, 2, 1),
        Insn::new(BPF_JMP | BPF_JA, 0, 0, -6, 0),
        exit(),
    ];
    let reg = HelperRegistry::new();
    assert_eq!(run_both_with(&p, &reg, &[1, 2, 3, 250]), Ok(256));
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(0));
    // writes land in the caller's memory
    let p = [st(BPF_H, 1, 2, 0x1234), mov64(0, 0), exit()];
    let vm = Interpreter::new(&p, &reg).unwrap();
    let mut mem = [0u8; 4];
    assert_eq!(vm.run_mem(&mut mem, Mode::Checked), Ok(0));
    assert_eq!(mem, [0, 0, 0x34, 0x12]);
    let mut mem = [0u8; 3];
    let err = vm.run_mem(&mut mem, Mode::Checked).unwrap_err();
    let base = mem.as_ptr() as u64;
    assert_eq!(
        err,
        RunError::OutOfBounds {
            pc: 0,
            addr: base + 2,
            len: 2,
            write: true
        }
    );
    assert!(err.to_string().contains("insn 0: invalid write of 2 bytes"));
}

#[test]
fn checked_mode_catches_out_of_bounds() {
    let reg = HelperRegistry::new();
    let check = |p: &[Insn], mem: &[u8]| run_both_with(p, &reg, mem);
    // read one past the end
    let p = [ldx(BPF_B, 0, 1, 4), exit()];
    assert!(matches!(
        check(&p, &[0; 4]),
        Err(RunError::OutOfBounds {
            pc: 0,
            len: 1,
            write: false,
            ..
        })
    ));
    // read before the start
    let p = [ldx(BPF_W, 0, 1, -1), exit()];
    assert!(matches!(
        check(&p, &[0; 4]),
        Err(RunError::OutOfBounds { .. })
    ));
    // null pointer with empty memory
    let p = [ldx(BPF_DW, 0, 1, 0), exit()];
    assert!(matches!(
        check(&p, &[]),
        Err(RunError::OutOfBounds { addr: 0, .. })
    ));
    // the stack frame is [r10 - 512, r10)
    let p = [ldx(BPF_DW, 0, 10, -512), exit()];
    assert_eq!(check(&p, &[]), Ok(0));
    let p = [ldx(BPF_DW, 0, 10, -513), exit()];
    assert!(matches!(check(&p, &[]), Err(RunError::OutOfBounds { .. })));
    let p = [stx(BPF_B, 10, 1, 0), exit()];
    assert!(matches!(
        check(&p, &[]),
        Err(RunError::OutOfBounds { write: true, .. })
    ));
    // address arithmetic that wraps around does not fool the check
    let mut p = ld_imm64(1, u64::MAX - 2).to_vec();
    p.extend([ldx(BPF_DW, 0, 1, 0), exit()]);
    assert!(matches!(check(&p, &[]), Err(RunError::OutOfBounds { .. })));

    // read-only regions accept loads and refuse stores
    let ro = [7u8; 8];
    let region = [MemoryRegion::from_slice(&ro)];
    let load = [ldx(BPF_B, 0, 1, 7), exit()];
    let vm = Interpreter::new(&load, &reg).unwrap();
    assert_eq!(
        vm.run([ro.as_ptr() as u64, 0, 0, 0, 0], &region, Mode::Checked),
        Ok(7)
    );
    let store = [st(BPF_B, 1, 0, 1), exit()];
    let vm = Interpreter::new(&store, &reg).unwrap();
    assert_eq!(
        vm.run([ro.as_ptr() as u64, 0, 0, 0, 0], &region, Mode::Checked),
        Err(RunError::OutOfBounds {
            pc: 0,
            addr: ro.as_ptr() as u64,
            len: 1,
            write: true
        })
    );
    assert_eq!(ro, [7; 8]);
}

#[test]
fn atomics() {
    // *(u64 *)(r10 - 8) = 10, then each op, return the memory and the fetched value combined
    let rmw = |size: u8, imm: i32, init: u64, operand: u64, r0: u64| -> (u64, u64, u64) {
        let mut p = ld_imm64(1, init).to_vec();
        p.push(stx(BPF_DW, 10, 1, -8));
        p.extend(ld_imm64(2, operand));
        p.extend(ld_imm64(0, r0));
        p.push(atomic(size, 10, 2, -8, imm));
        // stash r0 and r2 so both survive: r0 -> -16, r2 -> -24
        p.push(stx(BPF_DW, 10, 0, -16));
        p.push(stx(BPF_DW, 10, 2, -24));
        // return memory; the test reads the other two through separate programs below
        p.push(ldx(BPF_DW, 0, 10, -8));
        p.push(exit());
        let mem = run(&p);
        let l = p.len();
        p[l - 2] = ldx(BPF_DW, 0, 10, -16);
        let r0_after = run(&p);
        p[l - 2] = ldx(BPF_DW, 0, 10, -24);
        let src_after = run(&p);
        (mem, r0_after, src_after)
    };
    let fetch = BPF_FETCH;
    let add = BPF_ADD as i32;
    let or = BPF_OR as i32;
    let and = BPF_AND as i32;
    let xor = BPF_XOR as i32;
    // 64-bit
    assert_eq!(rmw(BPF_DW, add, 10, 5, 0), (15, 0, 5));
    assert_eq!(rmw(BPF_DW, add | fetch, 10, 5, 0), (15, 0, 10));
    assert_eq!(rmw(BPF_DW, or | fetch, 0b1000, 1, 0), (0b1001, 0, 0b1000));
    assert_eq!(
        rmw(BPF_DW, and | fetch, 0b1100, 0b0110, 0),
        (0b0100, 0, 0b1100)
    );
    assert_eq!(rmw(BPF_DW, xor, 0b1100, 0b0110, 0), (0b1010, 0, 0b0110));
    assert_eq!(rmw(BPF_DW, BPF_XCHG, 1, 2, 0), (2, 0, 1));
    assert_eq!(rmw(BPF_DW, BPF_CMPXCHG, 7, 9, 7), (9, 7, 9)); // success: r0 = old
    assert_eq!(rmw(BPF_DW, BPF_CMPXCHG, 7, 9, 8), (7, 7, 9)); // failure: unchanged
    // 32-bit: only the low word changes, fetched values are zero-extended
    let hi = 0xaaaa_aaaa_0000_0000u64;
    assert_eq!(rmw(BPF_W, add, hi | 0xffff_ffff, 1, 0), (hi, 0, 1));
    assert_eq!(
        rmw(BPF_W, add | fetch, hi | 0xffff_fffe, u64::MAX, 0),
        (hi | 0xffff_fffd, 0, 0xffff_fffe)
    );
    assert_eq!(
        rmw(BPF_W, BPF_XCHG, hi | 5, 0x1_0000_0006, 0),
        (hi | 6, 0, 5)
    );
    assert_eq!(
        rmw(BPF_W, BPF_CMPXCHG, hi | 5, 6, 0xffff_0000_0000_0005),
        (hi | 6, 5, 6)
    );
    assert_eq!(rmw(BPF_W, BPF_CMPXCHG, hi | 5, 6, 4), (hi | 5, 5, 6));
    assert_eq!(rmw(BPF_W, xor | fetch, hi | 3, 1, 0), (hi | 2, 0, 3));
    assert_eq!(rmw(BPF_W, and, hi | 3, 1, 0), (hi | 1, 0, 1));
    assert_eq!(rmw(BPF_W, or, hi | 3, 4, 0), (hi | 7, 0, 4));
}

#[test]
fn misaligned_atomics_are_errors_in_both_modes() {
    let p = [
        mov64(1, 1),
        atomic(BPF_DW, 10, 1, -12, BPF_ADD as i32),
        exit(),
    ];
    let reg = HelperRegistry::new();
    let vm = Interpreter::new(&p, &reg).unwrap();
    for mode in [Mode::Checked, Mode::Unchecked] {
        assert!(matches!(
            vm.run_mem(&mut [], mode),
            Err(RunError::Misaligned { pc: 1, len: 8, .. })
        ));
    }
}

#[test]
fn load_acquire_store_release() {
    let p = [
        mov64(1, 0x1234),
        atomic(BPF_W, 10, 1, -8, BPF_STORE_REL),
        atomic(BPF_H, 0, 10, -8, BPF_LOAD_ACQ), // r0 = load_acquire((u16 *)(r10 - 8))
        exit(),
    ];
    assert_eq!(run(&p), 0x1234);
}

#[test]
fn atomics_are_atomic_across_threads() {
    // 10000 × lock *(u64 *)(r1 + 0) += 1, in four threads on the same memory
    let p = [
        mov64(2, 0),
        mov64(3, 1),
        atomic(BPF_DW, 1, 3, 0, BPF_ADD as i32),
        alu64_k(BPF_ADD, 2, 1),
        jmp_k(BPF_JLT, 2, 10_000, -3),
        mov64(0, 0),
        exit(),
    ];
    let reg = HelperRegistry::new();
    let vm = Interpreter::new(&p, &reg).unwrap();
    let counter = std::sync::atomic::AtomicU64::new(0);
    let addr = counter.as_ptr() as u64;
    let region = [MemoryRegion {
        start: addr,
        len: 8,
        writable: true,
    }];
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| vm.run([addr, 0, 0, 0, 0], &region, Mode::Checked));
        }
    });
    assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 40_000);
}

#[test]
fn bpf_to_bpf_calls_preserve_callee_saved_registers_and_get_a_frame() {
    let p = [
        // main: r6..r9 = 6..9, store 42 on its stack, call f(5), r0 += r6+r7+r8+r9 + stack
        mov64(6, 6),
        mov64(7, 7),
        mov64(8, 8),
        mov64(9, 9),
        st(BPF_DW, 10, -8, 42),
        mov64(1, 5),
        call_local(9), // -> 16
        alu64_x(BPF_ADD, 0, 6),
        alu64_x(BPF_ADD, 0, 7),
        alu64_x(BPF_ADD, 0, 8),
        alu64_x(BPF_ADD, 0, 9),
        ldx(BPF_DW, 1, 10, -8),
        alu64_x(BPF_ADD, 0, 1),
        exit(),
        // padding, never reached
        mov64(0, 99),
        exit(),
        // f(x): clobber r6..r9, its own stack slot is zeroed, return x * 100 + frame distance
        mov64(6, 0), // 16
        mov64(7, 0),
        mov64(8, 0),
        mov64(9, 0),
        ldx(BPF_DW, 0, 10, -8), // fresh frame: 0
        alu64_x(BPF_ADD, 0, 1),
        alu64_k(BPF_MUL, 0, 100),
        st(BPF_DW, 10, -8, 1000),
        exit(),
    ];
    assert_eq!(run(&p), 500 + 6 + 7 + 8 + 9 + 42);
}

#[test]
fn callee_frames_are_distinct_and_caller_stack_is_reachable() {
    // main passes a pointer to its stack to f; f reads through it and returns r10 distance
    let p = [
        st(BPF_DW, 10, -8, 77),
        alu64_x(BPF_MOV, 1, 10),
        alu64_k(BPF_ADD, 1, -8),
        alu64_x(BPF_MOV, 6, 10),
        call_local(2),
        alu64_x(BPF_SUB, 0, 6),
        exit(),
        // f: r0 = r10 + *(u64*)r1 (77)
        ldx(BPF_DW, 2, 1, 0),
        alu64_x(BPF_MOV, 0, 10),
        alu64_x(BPF_ADD, 0, 2),
        exit(),
    ];
    assert_eq!(run(&p), 512 + 77);
}

#[test]
fn call_depth_is_limited_to_max_call_frames() {
    // f(n): if n == 0 return 0; return f(n - 1) + 1
    let prog = |n: i32| {
        vec![
            mov64(1, n),
            call_local(1),
            exit(),
            jmp_k(BPF_JEQ, 1, 0, 4),
            alu64_k(BPF_SUB, 1, 1),
            call_local(-3),
            alu64_k(BPF_ADD, 0, 1),
            exit(),
            mov64(0, 0),
            exit(),
        ]
    };
    // main + f(6)..f(0) = 8 frames: allowed
    assert_eq!(run(&prog(6)), 6);
    let reg = HelperRegistry::new();
    assert_eq!(
        run_both_with(&prog(7), &reg, &[]),
        Err(RunError::CallDepth { pc: 5 })
    );
}

unsafe extern "C" fn helper_sum(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    a.wrapping_add(b.wrapping_mul(10))
        .wrapping_add(c.wrapping_mul(100))
        .wrapping_add(d.wrapping_mul(1000))
        .wrapping_add(e.wrapping_mul(10000))
}
unsafe extern "C" fn helper_unwind(a: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    a
}

fn registry() -> HelperRegistry {
    let mut reg = HelperRegistry::new();
    reg.register(
        1,
        Helper {
            name: "sum",
            func: helper_sum,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    reg.register(
        5,
        Helper {
            name: "unwind",
            func: helper_unwind,
            unwind_on_zero: true,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    reg
}

#[test]
fn helper_calls() {
    let reg = registry();
    let p = [
        mov64(1, 1),
        mov64(2, 2),
        mov64(3, 3),
        mov64(4, 4),
        mov64(5, 5),
        call_helper(1),
        exit(),
    ];
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(54321));
    // callx: the id is in the register
    let p = [
        mov64(1, 1),
        mov64(7, 1),
        Insn::new(BPF_JMP | BPF_CALL | BPF_X, 7, 0, 0, 0),
        exit(),
    ];
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(1));
    // unknown helper, by imm and by register
    let p = [mov64(0, 0), call_helper(99), exit()];
    assert_eq!(
        run_both_with(&p, &reg, &[]),
        Err(RunError::UnknownHelper { pc: 1, id: 99 })
    );
    let p = [
        mov64(3, -4),
        Insn::new(BPF_JMP | BPF_CALL | BPF_X, 3, 0, 0, 0),
        exit(),
    ];
    assert_eq!(
        run_both_with(&p, &reg, &[]),
        Err(RunError::UnknownHelper { pc: 1, id: -4 })
    );
    // an unknown helper that is never called is fine
    let p = [mov64(0, 3), exit(), call_helper(99), exit()];
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(3));
}

#[test]
fn unwind_helper_stops_the_program_on_zero() {
    let reg = registry();
    // conformance call_unwind_fail: r1 = -1 (non-zero) -> continues, r0 = 2
    let p = [mov64(1, -1), call_helper(5), mov64(0, 2), exit()];
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(2));
    let p = [mov64(1, 0), call_helper(5), mov64(0, 2), exit()];
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(0));
    // conformance callx
    let p = [
        mov64(1, -1),
        mov64(2, 5),
        Insn::new(BPF_JMP | BPF_CALL | BPF_X, 2, 0, 0, 0),
        mov64(0, 2),
        exit(),
    ];
    assert_eq!(run_both_with(&p, &reg, &[]), Ok(2));
}

#[test]
fn instruction_limit_stops_runaway_programs() {
    let p = [
        mov64(0, 0),
        Insn::new(BPF_JMP | BPF_JA, 0, 0, -1, 0),
        exit(),
    ];
    let reg = HelperRegistry::new();
    let vm = Interpreter::new(&p, &reg)
        .unwrap()
        .with_instruction_limit(1000);
    assert_eq!(vm.instruction_limit(), Some(1000));
    assert_eq!(
        vm.run_mem(&mut [], Mode::Checked),
        Err(RunError::InstructionLimit { pc: 1, limit: 1000 })
    );
    // a program using exactly the budget completes
    let p = [mov64(0, 1), exit()];
    let vm = Interpreter::new(&p, &reg)
        .unwrap()
        .with_instruction_limit(2);
    assert_eq!(vm.run_mem(&mut [], Mode::Checked), Ok(1));
    let vm = Interpreter::new(&p, &reg)
        .unwrap()
        .with_instruction_limit(1);
    assert!(vm.run_mem(&mut [], Mode::Checked).is_err());
}

#[test]
fn unsupported_instructions_name_the_pc() {
    let p = [
        mov64(0, 0),
        Insn::new(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 3),
        exit(),
    ];
    let reg = HelperRegistry::new();
    let err = run_both_with(&p, &reg, &[1, 2, 3, 4]).unwrap_err();
    assert!(matches!(err, RunError::Unsupported { pc: 1, .. }));
    assert!(err.to_string().contains("ld_abs"));
    let p = [
        Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 1234),
        exit(),
    ];
    assert!(matches!(
        run_both_with(&p, &reg, &[]),
        Err(RunError::Unsupported {
            pc: 0,
            what: "kfunc call"
        })
    ));
}

#[test]
fn invalid_programs_are_rejected_at_new() {
    let reg = HelperRegistry::new();
    assert!(Interpreter::new(&[], &reg).is_err());
    assert!(Interpreter::new(&[mov64(0, 0)], &reg).is_err());
    assert!(Interpreter::new(&[Insn::new(0xff, 0, 0, 0, 0), exit()], &reg).is_err());
}

#[test]
fn interpreter_is_shareable_across_threads() {
    fn assert_sync<T: Sync + Send>() {}
    assert_sync::<Interpreter<'static>>();
}

fn arb_instruction() -> impl Strategy<Value = Instruction> {
    use kbpf_isa::decode::{
        AluOp, AtomicOp, CallTarget, Endian, Imm64Source, JmpCond, Size, Source, Width,
    };
    let reg = 0u8..=10;
    let width = prop_oneof![Just(Width::W32), Just(Width::W64)];
    let size = prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W), Just(Size::DW)];
    let imm = prop_oneof![
        -4i32..=4,
        Just(i32::MIN),
        Just(i32::MAX),
        Just(31),
        Just(32),
        Just(63),
        Just(64),
        any::<i32>()
    ];
    let source = prop_oneof![
        (0u8..=10).prop_map(Source::Reg),
        imm.clone().prop_map(Source::Imm)
    ];
    let alu_op = proptest::sample::select(vec![
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Sdiv,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::Smod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Movsx(8),
        AluOp::Movsx(16),
        AluOp::Movsx(32),
        AluOp::Arsh,
    ]);
    let cond = proptest::sample::select(vec![
        JmpCond::Eq,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Set,
        JmpCond::Ne,
        JmpCond::Sgt,
        JmpCond::Sge,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::Slt,
        JmpCond::Sle,
    ]);
    let atomic_op = proptest::sample::select(vec![
        AtomicOp::Add { fetch: false },
        AtomicOp::Add { fetch: true },
        AtomicOp::Or { fetch: true },
        AtomicOp::And { fetch: false },
        AtomicOp::Xor { fetch: true },
        AtomicOp::Xchg,
        AtomicOp::Cmpxchg,
        AtomicOp::LoadAcquire,
        AtomicOp::StoreRelease,
    ]);
    // memory offsets mostly near r10 (negative) or r1 (small positive)
    let mem_off = prop_oneof![-520i16..=-1, 0i16..=72];
    let jump_off = -4i16..=4;
    prop_oneof![
        4 => (width.clone(), alu_op, reg.clone(), source.clone())
            .prop_map(|(width, op, dst, src)| Instruction::Alu { width, op, dst, src }),
        1 => (
            proptest::sample::select(vec![Endian::Le, Endian::Be, Endian::Bswap]),
            proptest::sample::select(vec![16u8, 32, 64]),
            reg.clone()
        )
            .prop_map(|(kind, bits, dst)| Instruction::Endian { kind, bits, dst }),
        2 => (size.clone(), any::<bool>(), reg.clone(), reg.clone(), mem_off.clone()).prop_map(
            |(size, signed, dst, src, off)| Instruction::Load { size, signed, dst, src, off }
        ),
        2 => (size.clone(), reg.clone(), mem_off.clone(), source).prop_map(
            |(size, dst, off, src)| Instruction::Store { size, dst, off, src }
        ),
        1 => (size, atomic_op, reg.clone(), reg.clone(), mem_off).prop_map(
            |(size, op, dst, src, off)| Instruction::Atomic { size, op, dst, src, off }
        ),
        1 => (reg.clone(), any::<u64>()).prop_map(|(dst, v)| Instruction::LdImm64 {
            dst,
            src: Imm64Source::Imm,
            imm: v as i32,
            next_imm: (v >> 32) as i32
        }),
        2 => (width, cond, reg.clone(), prop_oneof![(0u8..=10).prop_map(Source::Reg), imm.prop_map(Source::Imm)], jump_off.clone())
            .prop_map(|(width, cond, dst, src, off)| Instruction::Jmp { width, cond, dst, src, off }),
        1 => (jump_off.clone(), any::<bool>())
            .prop_map(|(off, long)| Instruction::Ja { off: off as i32, long }),
        1 => prop_oneof![
            jump_off.prop_map(|o| CallTarget::Local(o as i32)),
            (0i32..=6).prop_map(CallTarget::Helper),
            reg.prop_map(CallTarget::Reg),
        ]
        .prop_map(Instruction::Call),
        1 => Just(Instruction::Exit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Random well-formed programs never panic in Checked mode (with an instruction budget);
    /// when a checked run succeeds, an unchecked run of the same program does exactly the same
    /// (same r0, same memory).
    #[test]
    fn random_programs_never_panic_in_checked_mode(
        body in proptest::collection::vec(arb_instruction(), 1..24),
        mem in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut insns: Vec<Insn> = body.iter().flat_map(|i| i.encode()).collect();
        insns.push(exit());
        let reg = registry();
        if let Ok(vm) = Interpreter::new(&insns, &reg) {
            let vm = vm.with_instruction_limit(2_000);
            // Both runs use the same buffer (and the same host stack address, being called
            // from the same frame), so even results derived from addresses must agree.
            let mut buf = mem.clone();
            let checked = vm.run_mem(&mut buf, Mode::Checked);
            if let Ok(r0) = checked {
                let after_checked = buf.clone();
                buf.copy_from_slice(&mem);
                prop_assert_eq!(vm.run_mem(&mut buf, Mode::Unchecked), Ok(r0));
                prop_assert_eq!(after_checked, buf);
            }
        }
    }

    /// Fully random words (mostly rejected by validation) never panic either.
    #[test]
    fn random_words_never_panic(words in proptest::collection::vec(any::<u64>(), 1..16)) {
        let insns: Vec<Insn> = words.iter().map(|w| Insn::from_u64(*w)).collect();
        let reg = HelperRegistry::new();
        if let Ok(vm) = Interpreter::new(&insns, &reg) {
            let vm = vm.with_instruction_limit(1_000);
            let _ = vm.run_mem(&mut [0u8; 16], Mode::Checked);
        }
    }
}

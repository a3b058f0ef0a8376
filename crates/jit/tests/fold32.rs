//! Differential testing of the JIT's dataflow-based optimisations (`compile/fold32.rs`,
//! `compile/prologue.rs`): random programs built from exactly the shapes they rewrite — and
//! their near misses — must give the same `r0` and memory on the interpreter and the JIT.
//!
//! - the 64-bit `rol32` shape `X = Y; X <<= k; T = Y; T >>= 32-k; X |= T; w X = w X`, with
//!   every `k`, aliased registers, the halves in either order, `Y` zero-extended or not, and
//!   broken variants (no final `w X = w X`, `k + r != 32`);
//! - every ALU operation of both widths followed by `w X = w X` or `X <<= 32; X >>= 32`;
//! - `R = *(u16 *)(r9 + off); R = be16 R (bswap16, le16); [R &= M;] if R op K goto L` with
//!   every jump operation, JMP and JMP32, immediate and register operands, and constants that
//!   match the half-word in memory (so both outcomes occur);
//! - `X = Y; X <<= k; Y += X` and `X = Y; X *= K`, with either width in each place;
//! - loads of every size followed by byte swaps of every kind and width (`movbe`);
//! - two loaded `be16`s joined as `R <<= 16; R |= S` (a port pair), at adjacent offsets or
//!   not, with either width, the two registers the same or not, `S` live or dead;
//! - leaf programs with and without stack, reading registers they never wrote (the
//!   interpreter starts them at 0), and programs with a helper call (the full entry);
//! - registers proved constant by an (in)equality jump and then read as a source (ALU, store,
//!   compare), and loads of 1, 2 or 4 bytes compared with constants around the loaded value
//!   and the field's limits by every jump (`compile/constprop.rs`, `peephole::load_compare`);
//! - forward jumps landing anywhere, also inside the shapes, and two endings: every
//!   register dumped to memory (all live) or only `r0` returned (most of them dead, so the
//!   liveness-based variants apply).
#![cfg(all(target_arch = "x86_64", unix))]

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_jit::{CompileOptions, JitProgram};
use kbpf_vm::{Helper, HelperRegistry, Interpreter, Mode};
use proptest::prelude::*;

/// Data the program reads and writes through `r9`, then the register dump.
const DATA: usize = 64;
const REG_DUMP: usize = DATA;
const MEM: usize = REG_DUMP + 9 * 8;

/// One random choice, turned into instructions by [`item`].
type Raw = (u8, u8, u8, u8, i32, u16);

fn alu(class: u8, op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(class | op | BPF_X, dst, src, 0, 0)
}
fn alu_k(class: u8, op: u8, dst: u8, k: i32) -> Insn {
    Insn::new(class | op | BPF_K, dst, 0, 0, k)
}
fn zext(r: u8) -> Insn {
    alu(BPF_ALU, BPF_MOV, r, r)
}

const ALU_OPS: [u8; 13] = [
    BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD,
    BPF_XOR, BPF_MOV, BPF_ARSH,
];
const JMP_OPS: [u8; 11] = [
    BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT,
    BPF_JSLE,
];

/// An item: its instructions, and for a jump the choice of its forward target.
enum Item {
    Plain(Vec<Insn>),
    /// Instructions ending with a conditional jump (offset fixed up from `sel`).
    Jump(Vec<Insn>, u16),
}

/// Registers r0–r8 (r9 holds the memory block throughout).
fn reg(x: u8) -> u8 {
    x % 9
}

/// An immediate: mostly small or boundary values, sometimes anything.
fn imm(sel: u8, raw: i32) -> i32 {
    const IMMS: [i32; 10] = [0, 1, -1, 31, 32, 63, 0x800, 0xffff, i32::MIN, i32::MAX];
    if sel.is_multiple_of(3) {
        IMMS[(raw as u32 as usize) % IMMS.len()]
    } else {
        raw
    }
}

fn rotate(r: Raw) -> Vec<Insn> {
    let (_, a, b, c, k, sel) = r;
    let (x, y, t) = (reg(a), reg(b), reg(c));
    // Usually the real shape (k in 1..32, r = 32 - k), sometimes a broken one.
    let k = (k as u32 % 33) as i32;
    let r = if sel & 0x10 != 0 {
        (sel as i32 >> 8) % 33
    } else {
        32 - k
    };
    let mut v = Vec::new();
    if sel & 1 == 0 {
        v.push(zext(y)); // Y known zero-extended
    }
    let left = [
        alu(BPF_ALU64, BPF_MOV, x, y),
        alu_k(BPF_ALU64, BPF_LSH, x, k),
    ];
    let right = [
        alu(BPF_ALU64, BPF_MOV, t, y),
        alu_k(BPF_ALU64, BPF_RSH, t, r),
    ];
    if sel & 2 == 0 {
        v.extend(left);
        v.extend(right);
    } else {
        v.extend(right);
        v.extend(left);
    }
    v.push(alu(BPF_ALU64, BPF_OR, x, t));
    if sel & 4 == 0 {
        v.push(zext(x));
    }
    v
}

fn narrow(r: Raw) -> Vec<Insn> {
    let (_, a, b, c, k, sel) = r;
    let (x, s) = (reg(a), reg(b));
    let class = if sel & 1 == 0 { BPF_ALU64 } else { BPF_ALU };
    let op = ALU_OPS[c as usize % ALU_OPS.len()];
    let mut v = vec![if op == BPF_NEG {
        Insn::new(class | op, x, 0, 0, 0)
    } else if sel & 2 == 0 {
        alu(class, op, x, s)
    } else {
        alu_k(class, op, x, imm(c, k))
    }];
    if sel & 4 == 0 {
        v.push(zext(x));
    } else {
        v.push(alu_k(BPF_ALU64, BPF_LSH, x, 32));
        v.push(alu_k(BPF_ALU64, BPF_RSH, x, 32));
    }
    v
}

fn be16_compare(r: Raw) -> (Vec<Insn>, u16) {
    let (_, a, b, c, k, sel) = r;
    let rr = reg(a);
    let off = (b as usize % (DATA - 1)) as i16;
    let swap = match (sel >> 13) % 4 {
        1 => Insn::new(BPF_ALU | BPF_END | BPF_TO_LE, rr, 0, 0, 16),
        2 => Insn::new(BPF_ALU64 | BPF_END, rr, 0, 0, 16), // bswap16
        _ => Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, rr, 0, 0, 16),
    };
    let mut v = vec![Insn::new(BPF_LDX | BPF_MEM | BPF_H, rr, 9, off, 0), swap];
    if sel & 8 != 0 {
        let class = if sel & 16 != 0 { BPF_ALU64 } else { BPF_ALU };
        v.push(alu_k(class, BPF_AND, rr, imm(c, k)));
    }
    let op = JMP_OPS[c as usize % JMP_OPS.len()];
    let class = if sel & 32 != 0 { BPF_JMP } else { BPF_JMP32 };
    // The constant: often the swapped half-word of the block as `mem` starts it (see
    // `memory`), so that equal compares are taken; sometimes anything.
    let at = off as usize;
    let here = u16::from_be_bytes([byte_at(at), byte_at(at + 1)]) as i32;
    let kk = match (sel >> 6) % 4 {
        0 => here,
        1 => here & 0xff,
        2 => 0,
        _ => imm(c, k),
    };
    v.push(if sel & 0x1000 != 0 {
        Insn::new(class | op | BPF_X, rr, reg(c), 0, 0)
    } else {
        alu_k(class, op, rr, kk)
    });
    (v, sel >> 8)
}

/// The memory block's initial byte at `i` (fixed, so that `be16_compare` can pick
/// constants equal to the half-words).
fn byte_at(i: usize) -> u8 {
    (i as u8).wrapping_mul(37).wrapping_add(11)
}

fn memory() -> Vec<u8> {
    (0..MEM).map(byte_at).collect()
}

fn be16_pair(r: Raw) -> Vec<Insn> {
    let (_, a, b, c, _, sel) = r;
    let (rr, ss) = (reg(a), reg(b));
    let o = (c as usize % (DATA - 5)) as i16;
    let o2 = o + [2, 2, 2, 1, 3][(sel as usize >> 1) % 5];
    let swap = |r: u8| {
        if sel & 0x100 != 0 {
            Insn::new(BPF_ALU | BPF_END | BPF_TO_LE, r, 0, 0, 16)
        } else {
            Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, r, 0, 0, 16)
        }
    };
    // (The base stays r9: a jump may land between an address's set-up and its use.)
    let base = 9;
    let shift_class = if sel & 8 != 0 { BPF_ALU64 } else { BPF_ALU };
    let or_class = if sel & 16 != 0 { BPF_ALU64 } else { BPF_ALU };
    let amount = if sel & 32 != 0 { 8 } else { 16 };
    vec![
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, rr, base, o, 0),
        swap(rr),
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, ss, base, o2, 0),
        swap(ss),
        alu_k(shift_class, BPF_LSH, rr, amount),
        alu(or_class, BPF_OR, rr, ss),
    ]
}

/// A load of any size followed by a byte swap of any kind and width (`movbe` for the
/// matching `be32`/`be64` pairs).
fn loaded_swap(r: Raw) -> Vec<Insn> {
    let (_, a, b, c, _, sel) = r;
    let rr = reg(a);
    let (size, len) = [(BPF_H, 2), (BPF_W, 4), (BPF_DW, 8)][(b as usize + c as usize) % 3];
    let bits = [16, 32, 64][(sel as usize >> 1) % 3];
    let code = [
        BPF_ALU | BPF_END | BPF_TO_BE,
        BPF_ALU64 | BPF_END,
        BPF_ALU | BPF_END | BPF_TO_LE,
    ][(sel as usize >> 3) % 3];
    let off = ((sel as usize >> 5) % (DATA - len)) as i16;
    // (The base stays r9, as in `be16_pair`.)
    vec![
        Insn::new(BPF_LDX | BPF_MEM | size, rr, 9, off, 0),
        Insn::new(code, rr, 0, 0, bits),
    ]
}

/// `X = Y; X <<= k; Y += X` (the `lea` peephole; X is often dead afterwards),
/// `X = Y; X += K; X += Z` (three-component `lea`) and `X = Y; X *= K` (three-operand
/// `imul`), with aliasing and mixed widths.
fn lea_and_imul(r: Raw) -> Vec<Insn> {
    let (_, a, b, c, k, sel) = r;
    let (x, y) = (reg(a), reg(b));
    let class = |bit: u16| if sel & bit != 0 { BPF_ALU64 } else { BPF_ALU };
    if sel & 0x30 == 0x30 {
        // `X = Y; X += K; X += Z` (one `lea` when all 64-bit), Z any register, X included.
        vec![
            alu(class(2), BPF_MOV, x, y),
            alu_k(class(4), BPF_ADD, x, imm(c, k)),
            alu(class(8), BPF_ADD, x, reg(c)),
        ]
    } else if sel & 1 == 0 {
        let shift = i32::from(c % 5);
        vec![
            alu(class(2), BPF_MOV, x, y),
            alu_k(class(4), BPF_LSH, x, shift),
            alu(class(8), BPF_ADD, y, x),
        ]
    } else {
        vec![
            alu(class(2), BPF_MOV, x, y),
            alu_k(class(4), BPF_MUL, x, imm(c, k)),
        ]
    }
}

/// A register loaded from the block, then proved equal to a constant on one edge of a 64- or
/// 32-bit (in)equality jump that skips the next instruction (the constant often the loaded
/// value, so both edges occur), then used by that instruction as the source of an ALU
/// operation, a store or a compare (`constprop`).
fn proved_constant(r: Raw) -> Item {
    let (_, a, b, c, k, sel) = r;
    let (x, y) = (reg(a), reg(b));
    let off = (c as usize % (DATA - 8)) as i16;
    // A byte, or 8 bytes whose upper half is not zero: a 32-bit equality must then prove
    // nothing about the whole register.
    let wide = sel & 0x100 != 0;
    let here = if wide {
        u32::from_le_bytes(std::array::from_fn(|j| byte_at(off as usize + j))) as i32
    } else {
        byte_at(off as usize) as i32
    };
    let kk = if sel & 1 == 0 { here } else { imm(c, k) };
    let op = if sel & 2 == 0 { BPF_JNE } else { BPF_JEQ };
    let class = if sel & 4 == 0 { BPF_JMP } else { BPF_JMP32 };
    let use_op = [BPF_ADD, BPF_XOR, BPF_MOV, BPF_MUL, BPF_LSH, BPF_SUB][(sel as usize >> 3) % 6];
    let use_class = if sel & 0x40 == 0 { BPF_ALU64 } else { BPF_ALU };
    let mut test = alu_k(class, op, x, kk);
    test.off = 1;
    let size = if wide { BPF_DW } else { BPF_B };
    let load = Insn::new(BPF_LDX | BPF_MEM | size, x, 9, off, 0);
    match (sel >> 7) % 3 {
        0 => Item::Plain(vec![load, test, alu(use_class, use_op, y, x)]),
        1 => Item::Plain(vec![
            load,
            test,
            Insn::new(BPF_STX | BPF_MEM | BPF_W, 9, x, off, 0),
        ]),
        _ => Item::Jump(vec![load, test, alu(BPF_JMP, BPF_JGT, y, x)], sel >> 10),
    }
}

/// A load of 1, 2 or 4 bytes compared with a constant by any jump (`load_compare` when the
/// register is dead after it): constants at and around the loaded value and the field's
/// limits, negative ones, 64- and 32-bit jumps.
fn load_then_compare(r: Raw) -> (Vec<Insn>, u16) {
    let (_, a, b, c, k, sel) = r;
    let x = reg(a);
    let (size, len) = [(BPF_B, 1usize), (BPF_H, 2), (BPF_W, 4)][b as usize % 3];
    let off = (c as usize % (DATA - len)) as i16;
    let mut here = [0u8; 4];
    for (j, v) in here.iter_mut().take(len).enumerate() {
        *v = byte_at(off as usize + j);
    }
    let here = u32::from_le_bytes(here) as i64;
    let max = (1i64 << (8 * len)) - 1;
    let kk = [
        here,
        here + 1,
        here - 1,
        0,
        max,
        max + 1,
        -1,
        i64::from(imm(c, k)),
    ][(sel as usize) % 8] as i32;
    let op = JMP_OPS[(sel as usize >> 3) % JMP_OPS.len()];
    let class = if sel & 0x80 == 0 { BPF_JMP } else { BPF_JMP32 };
    (
        vec![
            Insn::new(BPF_LDX | BPF_MEM | size, x, 9, off, 0),
            alu_k(class, op, x, kk),
        ],
        sel >> 8,
    )
}

fn item(r: Raw) -> Item {
    let (kind, a, b, c, k, sel) = r;
    match kind % 13 {
        12 => {
            let (v, s) = load_then_compare(r);
            Item::Jump(v, s)
        }
        11 => proved_constant(r),
        10 => Item::Plain(lea_and_imul(r)),
        9 => Item::Plain(loaded_swap(r)),
        8 => Item::Plain(be16_pair(r)),
        0 | 1 => Item::Plain(rotate(r)),
        2 | 3 => Item::Plain(narrow(r)),
        4 => {
            let (v, s) = be16_compare(r);
            Item::Jump(v, s)
        }
        5 => {
            // A store of a register into the data area (memory is compared too).
            let off = (b as usize % (DATA - 7)) as i16;
            Item::Plain(vec![Insn::new(
                BPF_STX | BPF_MEM | BPF_DW,
                9,
                reg(a),
                off,
                0,
            )])
        }
        6 => {
            // A plain conditional jump of any kind.
            let op = JMP_OPS[c as usize % JMP_OPS.len()];
            let class = if sel & 1 != 0 { BPF_JMP } else { BPF_JMP32 };
            Item::Jump(vec![alu_k(class, op, reg(a), imm(c, k))], sel >> 1)
        }
        _ => Item::Plain(vec![if sel & 1 == 0 {
            alu(BPF_ALU64, BPF_ADD, reg(a), reg(b))
        } else {
            alu_k(BPF_ALU64, BPF_MOV, reg(a), imm(c, k))
        }]),
    }
}

/// How the program begins and ends.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// Registers r0, r2–r8 given a value first (the others start at 0 on both engines).
    init_mask: u16,
    /// Spill and reload two registers through the stack (the leaf entry then has a frame).
    stack: bool,
    /// Call a helper first (the main function then has the full entry).
    call: bool,
    /// Dump every register (else return r0 mixed with one more register).
    dump: bool,
    /// The register mixed into r0 when not dumping.
    mix: u8,
}

fn program(f: Frame, init: &[u64; 9], raws: &[Raw]) -> Vec<Insn> {
    let mut p = vec![alu(BPF_ALU64, BPF_MOV, 9, 1)];
    if f.call {
        p.push(alu_k(BPF_ALU64, BPF_MOV, 1, 3));
        p.push(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1));
    }
    for (r, v) in init.iter().enumerate() {
        // r1 is the memory block's address, which differs between the engines' copies.
        if r == 1 || f.init_mask & (1 << r) != 0 || (f.call && r < 6) {
            p.push(Insn::new(
                BPF_LD | BPF_IMM | BPF_DW,
                r as u8,
                0,
                0,
                *v as u32 as i32,
            ));
            p.push(Insn::new(0, 0, 0, 0, (*v >> 32) as u32 as i32));
        }
    }
    if f.stack {
        p.push(Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, 3, -8, 0));
        p.push(Insn::new(BPF_STX | BPF_MEM | BPF_W, 10, 4, -16, 0));
    }
    let mut body: Vec<Insn> = Vec::new();
    let mut jumps = Vec::new();
    for r in raws {
        match item(*r) {
            Item::Plain(v) => body.extend(v),
            Item::Jump(v, sel) => {
                body.extend(v);
                jumps.push((body.len() - 1, sel));
            }
        }
    }
    // Any later instruction, the epilogue included, is a target.
    for (at, sel) in jumps {
        let room = body.len() - at;
        body[at].off = (sel as usize % room) as i16;
    }
    p.extend(body);
    if f.stack {
        p.push(Insn::new(BPF_LDX | BPF_MEM | BPF_DW, 5, 10, -8, 0));
        p.push(Insn::new(BPF_LDX | BPF_MEM | BPF_W, 6, 10, -16, 0));
        p.push(alu(BPF_ALU64, BPF_XOR, 0, 5));
        p.push(alu(BPF_ALU64, BPF_ADD, 0, 6));
    }
    if f.dump {
        for r in 0..9u8 {
            p.push(Insn::new(
                BPF_STX | BPF_MEM | BPF_DW,
                9,
                r,
                (REG_DUMP + 8 * r as usize) as i16,
                0,
            ));
        }
        p.push(alu_k(BPF_ALU64, BPF_MOV, 0, 0));
    } else {
        p.push(alu(BPF_ALU64, BPF_XOR, 0, reg(f.mix)));
    }
    p.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p
}

unsafe extern "C" fn mix(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    a.wrapping_mul(31) ^ b.rotate_left(7) ^ c ^ d.wrapping_add(e)
}

fn helpers() -> HelperRegistry {
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
    h
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(init_mask, stack, call, dump, mix)| Frame {
            init_mask,
            stack,
            call,
            dump,
            mix,
        })
}

/// Runs `prog` on the interpreter and on the JIT twice: with the host CPU's extensions
/// (`rorx`, `movbe` where present) and with baseline x86-64 only.
fn check(prog: &[Insn]) -> Result<(), TestCaseError> {
    let h = helpers();
    let vm = Interpreter::new(prog, &h).expect("generated programs are valid");
    let mut m1 = memory();
    let want = vm.run_mem(&mut m1, Mode::Checked);
    prop_assert!(want.is_ok(), "{want:?}");
    for baseline_isa in [false, true] {
        let opts = CompileOptions {
            baseline_isa,
            ..CompileOptions::default()
        };
        let jit = JitProgram::compile_with(prog, &h, opts).expect("the JIT accepts them");
        let mut m2 = memory();
        let got = jit.run_mem(&mut m2);
        prop_assert_eq!(
            &want,
            &got,
            "r0 differs (baseline {}): {:?}",
            baseline_isa,
            prog
        );
        prop_assert!(
            m1 == m2,
            "memory differs (baseline {}): {:?}",
            baseline_isa,
            prog
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn folded_shapes_agree_with_the_interpreter(
        f in frame(),
        init in any::<[u64; 9]>(),
        raws in proptest::collection::vec(any::<Raw>(), 1..24),
    ) {
        check(&program(f, &init, &raws))?;
    }
}

/// Every rotate amount, every register aliasing of X, Y, T, both orders of the halves,
/// Y zero-extended or not, T live or dead.
#[test]
fn every_rotate_shape() {
    let init = [
        0x8765_4321_dead_beef,
        0,
        0xffff_ffff,
        0x1_0000_0001,
        5,
        6,
        7,
        8,
        9,
    ];
    for k in 0..=32u32 {
        for regs in 0..27u32 {
            for sel in [0u16, 1, 2, 3, 4] {
                let raw = (
                    0,
                    regs as u8 % 3,
                    (regs / 3) as u8 % 3 + 2,
                    (regs / 9) as u8,
                    k as i32,
                    sel,
                );
                for dump in [false, true] {
                    let f = Frame {
                        init_mask: 0x1ff,
                        stack: false,
                        call: false,
                        dump,
                        mix: 2,
                    };
                    check(&program(f, &init, &[raw])).unwrap();
                }
            }
        }
    }
}

/// Every jump operation after a loaded `be16` (or `bswap16`, `le16`), without a mask and
/// with a 32- or 64-bit one, JMP and JMP32, against the half-word's own value, its low
/// byte, 0, another constant and a register; to the next instruction or past it.
#[test]
fn every_be16_compare() {
    let init = [1, 0, 0x0800, 0x0008, 0xffff, 5, 6, 7, 8];
    for c in 0..JMP_OPS.len() as u8 {
        for swap in [0u16, 1 << 13, 2 << 13] {
            for mask in [0u16, 8, 8 | 16] {
                for class in [0u16, 32] {
                    for konst in 0..4u16 {
                        for src in [0u16, 0x1000] {
                            for target in [0u16, 0x100] {
                                let sel = swap | mask | class | konst << 6 | src | target;
                                for dump in [false, true] {
                                    let raw = (4, 0, 12, c, 0x1fff, sel);
                                    let f = Frame {
                                        init_mask: 0x1ff,
                                        stack: false,
                                        call: false,
                                        dump,
                                        mix: 3,
                                    };
                                    check(&program(f, &init, &[raw, (7, 1, 1, 0, 9, 1)])).unwrap();
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The image's instructions as text (Intel syntax, lower case); `baseline`: without the
/// host's extensions.
fn disasm_with(prog: &[Insn], baseline_isa: bool) -> Vec<String> {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let opts = CompileOptions {
        baseline_isa,
        ..CompileOptions::default()
    };
    let jit = JitProgram::compile_with(prog, &helpers(), opts).expect("compiles");
    let mut d = Decoder::with_ip(64, jit.image(), 0, DecoderOptions::NONE);
    let mut f = IntelFormatter::new();
    let mut out = Vec::new();
    while d.can_decode() {
        let mut s = String::new();
        f.format(&d.decode(), &mut s);
        out.push(s);
    }
    out
}

fn disasm(prog: &[Insn]) -> Vec<String> {
    disasm_with(prog, true)
}

fn has(code: &[String], what: &str) -> bool {
    code.iter().any(|s| s.starts_with(what))
}

/// What the optimisations emit, on one small leaf program: the jhash step
/// `a ^= c; a -= rol32(c, 11); w a = w a` with `c` zero-extended, a `be16` compare and a
/// masked one, a port pair, `add` + `w X = w X`.
#[test]
fn leaf_code_is_what_an_optimising_compiler_emits() {
    let exit = Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    let mut p = vec![
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, 5, 1, 12, 0),
        Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 5, 0, 0, 16),
        alu_k(BPF_JMP, BPF_JNE, 5, 0x0800),
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, 6, 1, 20, 0),
        Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 6, 0, 0, 16),
        alu_k(BPF_ALU64, BPF_AND, 6, 0x1fff),
        alu_k(BPF_JMP, BPF_JNE, 6, 0),
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 8, 1, 26, 0),
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 30, 0),
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, 4, 1, 34, 0),
        Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 4, 0, 0, 16),
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, 3, 1, 36, 0),
        Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 3, 0, 0, 16),
        alu_k(BPF_ALU64, BPF_LSH, 4, 16),
        alu(BPF_ALU64, BPF_OR, 4, 3),
        alu(BPF_ALU64, BPF_XOR, 8, 4),
        alu_k(BPF_ALU64, BPF_ADD, 8, 0xdeadbeefu32 as i32),
        zext(8),
        alu(BPF_ALU64, BPF_XOR, 8, 5),
    ];
    p.extend(rotate((0, 0, 5, 1, 11, 1)));
    p.extend([
        alu(BPF_ALU64, BPF_SUB, 8, 0),
        zext(8),
        alu(BPF_ALU64, BPF_MOV, 0, 8),
        exit,
    ]);
    // The two compares jump to a `r0 = 1; exit` at the end.
    let fail = p.len();
    p.extend([alu_k(BPF_ALU64, BPF_MOV, 0, 1), exit]);
    p[2].off = (fail - 3) as i16;
    p[6].off = (fail - 7) as i16;
    let code = disasm(&p);
    let text = code.join("\n");
    // No frame, no saved registers (r6 shares r1's rdi after its last read, r8 r2's rsi, which
    // the program never reads), no register zeroing.
    assert!(!has(&code, "push") && !has(&code, "sub rsp"), "{text}");
    assert!(!has(&code, "xor eax,eax"), "{text}");
    // be16 compares in memory: 0x0800 swapped is 8, 0x1fff swapped is 0xff1f; the port
    // pair one load and bswap.
    assert!(has(&code, "bswap ecx") && !has(&code, "ror"), "{text}");
    assert!(has(&code, "cmp word ptr [rdi+0Ch],8"), "{text}");
    assert!(has(&code, "test word ptr [rdi+14h],0FF1Fh"), "{text}");
    // add + zero-extension is a 32-bit add; the rotate one rol; the sub 32-bit; no `or`.
    assert!(has(&code, "add esi,0DEADBEEFh"), "{text}");
    assert!(has(&code, "rol eax,0Bh"), "{text}");
    assert!(has(&code, "sub esi,eax"), "{text}");
    assert!(!has(&code, "or "), "{text}");
    // Both exits return in place.
    assert_eq!(code.iter().filter(|s| *s == "ret").count(), 2, "{text}");
    // With BMI2 and movbe (where this CPU has them): `rorx` without a `mov`, and swapped
    // loads.
    let host = disasm_with(&p, false);
    let text = host.join("\n");
    if std::arch::is_x86_feature_detected!("bmi2") {
        assert!(
            has(&host, "rorx eax,r8d,15h") && !has(&host, "rol"),
            "{text}"
        );
    }
    if std::arch::is_x86_feature_detected!("movbe") {
        assert!(
            has(&host, "movbe ecx,[rdi+22h]") && !has(&host, "bswap"),
            "{text}"
        );
    }
    // And it computes what the interpreter computes.
    check(&p).unwrap();
}

/// Near misses keep the general code: a rotate whose Y may have upper bits, a compared
/// `be16` whose register is read after the jump, a leaf whose division needs the JIT's
/// scratch registers (so r7 is saved), and a program with a helper call (full entry: every
/// callee-saved register pushed, a frame).
#[test]
fn near_misses_keep_the_general_code() {
    let exit = Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    // No `w Y = w Y` first (sel bit 0): r5's upper half is unknown at entry.
    let mut p = rotate((0, 0, 5, 1, 11, 1));
    p.push(exit);
    let code = disasm(&p);
    assert!(!has(&code, "rol"), "{}", code.join("\n"));
    check(&p).unwrap();

    let p = vec![
        Insn::new(BPF_LDX | BPF_MEM | BPF_H, 0, 1, 12, 0),
        Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 0, 0, 0, 16),
        alu_k(BPF_JMP, BPF_JNE, 0, 0x0800),
        exit,
    ];
    let code = disasm(&p);
    assert!(!has(&code, "cmp word ptr"), "{}", code.join("\n"));
    check(&p).unwrap();

    let p = vec![
        alu_k(BPF_ALU64, BPF_MOV, 6, 7),
        alu_k(BPF_ALU64, BPF_MOV, 7, 9),
        alu_k(BPF_ALU64, BPF_DIV, 6, 2),
        alu(BPF_ALU64, BPF_ADD, 6, 7),
        alu(BPF_ALU64, BPF_MOV, 0, 6),
        exit,
    ];
    let code = disasm(&p);
    let text = code.join("\n");
    // r6 and r7 share the registers of r1 and r2, which the program never reads: no
    // callee-saved register is pushed (the division saves rax/rdx around itself).
    assert!(has(&code, "mov edi,7") && has(&code, "mov esi,9"), "{text}");
    for r in ["rbp", "rbx", "r13", "r14", "r15"] {
        assert!(!has(&code, &format!("push {r}")), "{text}");
    }
    check(&p).unwrap();

    // The same with r0–r5 all live while r7 is: r7 has no register to share and is saved
    // in its own r13. (Loaded values: constants would be propagated into the adds.)
    let load = |r: u8, off: i16| Insn::new(BPF_LDX | BPF_MEM | BPF_B, r, 1, off, 0);
    let mut p = vec![
        load(0, 0),
        load(2, 2),
        load(3, 3),
        load(4, 4),
        load(5, 5),
        load(1, 1),
        alu_k(BPF_ALU64, BPF_MOV, 6, 7),
        alu_k(BPF_ALU64, BPF_MOV, 7, 9),
        alu_k(BPF_ALU64, BPF_DIV, 6, 2),
        alu(BPF_ALU64, BPF_ADD, 6, 7),
    ];
    for r in [1, 2, 3, 4, 5, 6] {
        p.push(alu(BPF_ALU64, BPF_ADD, 0, r));
    }
    p.push(exit);
    let code = disasm(&p);
    let text = code.join("\n");
    assert!(has(&code, "push r13") && has(&code, "mov r13d,9"), "{text}");
    check(&p).unwrap();

    // (r1 is the memory block's address, which differs between the engines' copies.)
    let p = vec![
        alu_k(BPF_ALU64, BPF_MOV, 1, 3),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1),
        exit,
    ];
    let code = disasm(&p);
    assert!(
        has(&code, "push rbp") && has(&code, "push r12"),
        "{}",
        code.join("\n")
    );
    check(&p).unwrap();
}

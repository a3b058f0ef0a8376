//! Differential testing: random *safe* programs — ALU of every kind, forward jumps, stack and
//! memory-block accesses (plain, sign-extending, atomic) inside their bounds, then `exit` —
//! must give the same `r0`, the same registers, the same memory block and the same final
//! stack on the interpreter and on the JIT.
#![cfg(all(target_arch = "x86_64", unix))]

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_jit::JitProgram;
use kbpf_vm::{HelperRegistry, Interpreter, Mode};
use proptest::prelude::*;

/// The memory block: data area the program may access through `r9`, then the stack copy,
/// then the dump of `r0`–`r8`.
const DATA: usize = 256;
const STACK_COPY: usize = DATA;
const REG_DUMP: usize = STACK_COPY + MAX_BPF_STACK;
const MEM: usize = REG_DUMP + 9 * 8;

const IMMS: [i32; 12] = [0, 1, -1, 2, 7, -7, 31, 32, 63, 64, i32::MIN, i32::MAX];

/// One random choice, turned into instructions by [`item`].
type Raw = (u8, u8, u8, i32, u64, u16);

fn imm(sel: u8, raw: i32) -> i32 {
    if sel.is_multiple_of(3) {
        IMMS[(raw as u32 as usize) % IMMS.len()]
    } else {
        raw
    }
}

fn size_of(s: u8) -> (u8, i32) {
    match s % 4 {
        0 => (BPF_B, 1),
        1 => (BPF_H, 2),
        2 => (BPF_W, 4),
        _ => (BPF_DW, 8),
    }
}

/// A base register and an in-bounds offset for an access of `len` bytes aligned to `align`.
fn place(sel: u16, len: i32, align: i32) -> (u8, i16) {
    let slots_stack = (MAX_BPF_STACK as i32 - len) / align + 1;
    let slots_data = (DATA as i32 - len) / align + 1;
    if sel & 1 == 0 {
        let k = (sel as i32 >> 1) % slots_stack;
        (10, (-(MAX_BPF_STACK as i32) + k * align) as i16)
    } else {
        let k = (sel as i32 >> 1) % slots_data;
        (9, (k * align) as i16)
    }
}

/// Instructions of one item; `jump_room` is how many items follow (forward jumps may skip
/// up to all of them, landing on the epilogue). Jump offsets are fixed up by the caller.
enum Item {
    Plain(Vec<Insn>),
    /// A jump skipping `skip` items (offset resolved once slot counts are known).
    Jump {
        insn: Insn,
        skip: usize,
    },
}

fn item(r: Raw, jump_room: usize) -> Item {
    let (kind, a, b, k, big, sel) = r;
    let dst = a % 9;
    let src = b % 9;
    match kind % 8 {
        0 | 1 => {
            // ALU: every operation, both widths, register or immediate source.
            let class = if a & 0x80 != 0 { BPF_ALU64 } else { BPF_ALU };
            let ops = [
                BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG,
                BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH,
            ];
            let op = ops[(b as usize >> 4) % ops.len()];
            let signed = sel & 1 == 1 && (op == BPF_DIV || op == BPF_MOD);
            let off = i16::from(signed);
            let insn = if op == BPF_NEG {
                Insn::new(class | op, dst, 0, 0, 0)
            } else if sel & 2 == 0 {
                Insn::new(class | op | BPF_X, dst, src, off, 0)
            } else {
                Insn::new(class | op | BPF_K, dst, 0, off, imm(a, k))
            };
            Item::Plain(vec![insn])
        }
        2 => {
            // movsx, byte swaps, ld_imm64
            let v = match sel % 4 {
                0 => {
                    let (class, bits) = [
                        (BPF_ALU64, 8),
                        (BPF_ALU64, 16),
                        (BPF_ALU64, 32),
                        (BPF_ALU, 8),
                        (BPF_ALU, 16),
                    ][(b as usize >> 4) % 5];
                    vec![Insn::new(class | BPF_MOV | BPF_X, dst, src, bits, 0)]
                }
                1 => {
                    let bits = [16, 32, 64][(b as usize >> 4) % 3];
                    let code = [
                        BPF_ALU | BPF_END | BPF_TO_LE,
                        BPF_ALU | BPF_END | BPF_TO_BE,
                        BPF_ALU64 | BPF_END,
                    ][(sel as usize >> 2) % 3];
                    vec![Insn::new(code, dst, 0, 0, bits)]
                }
                _ => vec![
                    Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, 0, 0, big as u32 as i32),
                    Insn::new(0, 0, 0, 0, (big >> 32) as u32 as i32),
                ],
            };
            Item::Plain(v)
        }
        3 => {
            // loads (plain and sign-extending)
            let (size, len) = size_of(b);
            let (base, off) = place(sel, len, 1);
            let signed = a & 0x40 != 0 && size != BPF_DW;
            let mode = if signed { BPF_MEMSX } else { BPF_MEM };
            Item::Plain(vec![Insn::new(BPF_LDX | mode | size, dst, base, off, 0)])
        }
        4 => {
            // stores of a register or an immediate
            let (size, len) = size_of(b);
            let (base, off) = place(sel, len, 1);
            let insn = if a & 0x40 != 0 {
                Insn::new(BPF_ST | BPF_MEM | size, base, 0, off, imm(a, k))
            } else {
                Insn::new(BPF_STX | BPF_MEM | size, base, src, off, 0)
            };
            Item::Plain(vec![insn])
        }
        5 => {
            // atomics, naturally aligned
            let (size, len) = if b & 1 == 0 { (BPF_W, 4) } else { (BPF_DW, 8) };
            let (base, off) = place(sel, len, len);
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
            let op = ops[(b as usize >> 1) % ops.len()];
            Item::Plain(vec![Insn::new(
                BPF_STX | BPF_ATOMIC | size,
                base,
                src,
                off,
                op,
            )])
        }
        _ => {
            // forward conditional jumps (JMP and JMP32, register or immediate) and ja
            let conds = [
                BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE, BPF_JLT, BPF_JLE,
                BPF_JSLT, BPF_JSLE, BPF_JA,
            ];
            let c = conds[(b as usize >> 4) % conds.len()];
            let skip = if jump_room == 0 {
                0
            } else {
                sel as usize % (jump_room + 1)
            };
            let class = if a & 0x80 != 0 { BPF_JMP } else { BPF_JMP32 };
            let insn = if c == BPF_JA {
                Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0)
            } else if sel & 0x8000 != 0 {
                Insn::new(class | c | BPF_X, dst, src, 0, 0)
            } else {
                Insn::new(class | c | BPF_K, dst, 0, 0, imm(a, k))
            };
            Item::Jump { insn, skip }
        }
    }
}

/// Builds the whole program: setup, the random items, the epilogue that dumps registers and
/// the stack into the memory block.
fn program(init: &[u64; 9], raws: &[Raw]) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 9, 1, 0, 0), // r9 = memory block
    ];
    for (r, v) in init.iter().enumerate() {
        p.push(Insn::new(
            BPF_LD | BPF_IMM | BPF_DW,
            r as u8,
            0,
            0,
            *v as u32 as i32,
        ));
        p.push(Insn::new(0, 0, 0, 0, (*v >> 32) as u32 as i32));
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
    for r in 0..9u8 {
        p.push(Insn::new(
            BPF_STX | BPF_MEM | BPF_DW,
            9,
            r,
            (REG_DUMP + 8 * r as usize) as i16,
            0,
        ));
    }
    for k in 0..(MAX_BPF_STACK / 8) {
        let off = -(MAX_BPF_STACK as i16) + 8 * k as i16;
        p.push(Insn::new(BPF_LDX | BPF_MEM | BPF_DW, 1, 10, off, 0));
        p.push(Insn::new(
            BPF_STX | BPF_MEM | BPF_DW,
            9,
            1,
            (STACK_COPY + 8 * k) as i16,
            0,
        ));
    }
    p.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0));
    p.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 9, 0, 0, 0));
    p.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn interpreter_and_jit_agree(
        init in any::<[u64; 9]>(),
        raws in proptest::collection::vec(any::<Raw>(), 1..48),
        seed in any::<u8>(),
    ) {
        let prog = program(&init, &raws);
        let helpers = HelperRegistry::new();
        let vm = Interpreter::new(&prog, &helpers).expect("generated programs are valid");
        let jit = JitProgram::compile(&prog, &helpers).expect("the JIT accepts them");
        let mem: Vec<u8> = (0..MEM).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let (mut m1, mut m2) = (mem.clone(), mem);
        let want = vm.run_mem(&mut m1, Mode::Checked);
        prop_assert!(want.is_ok(), "{want:?}");
        let got = jit.run_mem(&mut m2);
        prop_assert_eq!(want, got);
        prop_assert!(m1 == m2, "registers, memory block or stack differ");
    }
}

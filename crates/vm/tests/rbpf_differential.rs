//! Differential test against rbpf 0.3 on random programs from the instruction subset where
//! rbpf implements the kernel's semantics: 64-bit ALU (incl. division by zero and shift
//! masking), the 32-bit ALU ops rbpf zero-extends (div, or, and, shifts, xor, mov, neg, arsh),
//! byte swaps, 64- and 32-bit conditional jumps, loads and stores. Left out: 32-bit add/sub/mul
//! (rbpf sign-extends the result), 32-bit mod (by zero, rbpf leaves all 64 bits of dst where
//! the kernel zero-extends the low half — found by this test), 64-bit neg (rbpf's `-(x as i64)`
//! panics on `i64::MIN` in debug builds — also found by this test), and the v4, atomic and call
//! instructions rbpf lacks.
//!
//! Jumps only go forward, so every program terminates in rbpf too. Only r1 (the memory block)
//! and r10 hold pointers, and they are only ever used as a memory base: r0 and the memory
//! contents are pointer-free, so the two engines' results are comparable bit for bit.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_vm::{HelperRegistry, Interpreter, MemoryRegion, Mode};
use proptest::prelude::*;

/// Registers that never hold pointers.
const DATA_REGS: &[u8] = &[0, 2, 3, 4, 5, 6, 7, 8, 9];

fn data_reg() -> impl Strategy<Value = u8> {
    proptest::sample::select(DATA_REGS)
}

fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![
        -3i32..=3,
        Just(31),
        Just(32),
        Just(63),
        Just(64),
        Just(i32::MIN),
        Just(i32::MAX),
        any::<i32>()
    ]
}

/// One instruction (or an `ld_imm64` pair) from the shared subset; jump offsets are fixed up
/// later to land inside the program.
fn arb_insn() -> impl Strategy<Value = Vec<Insn>> {
    let alu64_ops = proptest::sample::select(vec![
        BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_MOD, BPF_XOR,
        BPF_MOV, BPF_ARSH,
    ]);
    let alu32_ops = proptest::sample::select(vec![
        BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_XOR, BPF_MOV, BPF_ARSH,
    ]);
    let jmp_ops = proptest::sample::select(vec![
        BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE, BPF_JLT, BPF_JLE,
        BPF_JSLT, BPF_JSLE,
    ]);
    let size = proptest::sample::select(vec![BPF_B, BPF_H, BPF_W, BPF_DW]);
    // memory base: r1 (mem, 64 bytes) with small offsets, or r10 with negative ones
    let base_off = prop_oneof![(Just(1u8), -2i16..=66), (Just(10u8), -514i16..=2),];
    prop_oneof![
        3 => (alu64_ops, data_reg(), data_reg(), imm(), any::<bool>()).prop_map(
            |(op, d, s, i, x)| vec![if x {
                Insn::new(BPF_ALU64 | op | BPF_X, d, s, 0, 0)
            } else {
                Insn::new(BPF_ALU64 | op | BPF_K, d, 0, 0, i)
            }]
        ),
        2 => (alu32_ops, data_reg(), data_reg(), imm(), any::<bool>()).prop_map(
            |(op, d, s, i, x)| vec![if x {
                Insn::new(BPF_ALU | op | BPF_X, d, s, 0, 0)
            } else {
                Insn::new(BPF_ALU | op | BPF_K, d, 0, 0, i)
            }]
        ),
        1 => data_reg().prop_map(|d| vec![Insn::new(BPF_ALU | BPF_NEG, d, 0, 0, 0)]),
        1 => (data_reg(), any::<bool>(), proptest::sample::select(vec![16, 32, 64])).prop_map(
            |(d, be, bits)| {
                let code = BPF_ALU | BPF_END | if be { BPF_TO_BE } else { BPF_TO_LE };
                vec![Insn::new(code, d, 0, 0, bits)]
            }
        ),
        1 => (data_reg(), any::<u64>()).prop_map(|(d, v)| vec![
            Insn::new(BPF_LD | BPF_IMM | BPF_DW, d, 0, 0, v as u32 as i32),
            Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
        ]),
        2 => (size.clone(), data_reg(), base_off.clone()).prop_map(|(sz, d, (b, off))| {
            vec![Insn::new(BPF_LDX | BPF_MEM | sz, d, b, off, 0)]
        }),
        1 => (size.clone(), data_reg(), base_off.clone()).prop_map(|(sz, s, (b, off))| {
            vec![Insn::new(BPF_STX | BPF_MEM | sz, b, s, off, 0)]
        }),
        1 => (size, imm(), base_off).prop_map(|(sz, i, (b, off))| {
            vec![Insn::new(BPF_ST | BPF_MEM | sz, b, 0, off, i)]
        }),
        2 => (jmp_ops, any::<bool>(), data_reg(), data_reg(), imm(), any::<bool>(), 0i16..=6)
            .prop_map(|(op, jmp32, d, s, i, x, off)| {
                let class = if jmp32 { BPF_JMP32 } else { BPF_JMP };
                vec![if x {
                    Insn::new(class | op | BPF_X, d, s, off, 0)
                } else {
                    Insn::new(class | op | BPF_K, d, 0, off, i)
                }]
            }),
        1 => (0i16..=4).prop_map(|off| vec![Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)]),
    ]
}

/// Concatenates the pieces, clamps forward jumps to the final `exit`, and appends it.
fn program(pieces: &[Vec<Insn>]) -> Vec<Insn> {
    let mut insns: Vec<Insn> = pieces.iter().flatten().copied().collect();
    insns.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    let last = insns.len() - 1;
    for (i, insn) in insns.iter_mut().enumerate().take(last) {
        let class = insn.class();
        let is_jump = (class == BPF_JMP || class == BPF_JMP32) && insn.code & 0xf0 != BPF_EXIT;
        if is_jump {
            let target = (i + 1 + insn.off as usize).min(last);
            insn.off = (target - i - 1) as i16;
        }
    }
    insns
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        // integration tests have no lib.rs for proptest's regression files
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn kbpf_agrees_with_rbpf_on_the_shared_subset(
        pieces in proptest::collection::vec(arb_insn(), 1..32),
        mem in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let insns = program(&pieces);
        let helpers = HelperRegistry::new();
        // a jump into the middle of an ld_imm64 is rejected by validation; rbpf would run it
        let Ok(vm) = Interpreter::new(&insns, &helpers) else { return Ok(()) };

        let mut kmem = mem.clone();
        let region = [MemoryRegion::from_mut_slice(&mut kmem)];
        let ours = vm.run([kmem.as_mut_ptr() as u64, 0, 0, 0, 0], &region, Mode::Checked);

        let bytes = insns_to_bytes(&insns);
        let rvm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf accepts the program");
        let mut rmem = mem.clone();
        let theirs = rvm.execute_program(&mut rmem);

        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "kbpf {:?} rbpf {:?}", ours, theirs.as_ref().err());
        if let (Ok(a), Ok(b)) = (ours, theirs) {
            prop_assert_eq!(a, b);
            prop_assert_eq!(kmem, rmem);
            // and the unchecked loop (with fused ops) agrees with the checked one
            let mut umem = mem.clone();
            let region = [MemoryRegion::from_mut_slice(&mut umem)];
            let unchecked = vm.run([umem.as_mut_ptr() as u64, 0, 0, 0, 0], &region, Mode::Unchecked);
            prop_assert_eq!(unchecked, Ok(a));
        }
    }
}

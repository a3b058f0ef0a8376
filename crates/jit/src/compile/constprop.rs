//! Constant operands: a register whose value is the same constant on every path to an
//! instruction is read there as an immediate.
//!
//! A forward dataflow pass over each function tracks registers set by `mov` of an immediate
//! or a plain `ld_imm64`, and the value an equality test proves on the edge it guards: after
//! `if r7 != 6 goto drop`, `r7` is 6 on the fall-through, as after `if r7 == 6 goto l` at
//! `l`. Where such a register is the source of an `add`/`sub`/`and`/`or`/`xor`/`mul`/`mov`, a
//! compare or a store, the instruction is given the immediate form instead — same operation,
//! same result, on every path. The register then often has no reader left, so liveness
//! (`dataflow`, run afterwards) finds it dead, and a load that only fed the proving compare
//! becomes a compare in memory (`peephole::load_compare`). This is what an optimising
//! compiler's constant propagation does for a parser's `protocol == IPPROTO_TCP` check.
//!
//! Only the JIT's decoded copy changes; the translated program (`xlated`) does not. Nothing
//! is folded: an operation on a constant makes its result unknown, so the kernel's constant
//! blinding (`AX = K ^ rnd; AX ^= rnd`) is kept as written. Shifts, division and modulo keep
//! their register form (their register and immediate forms differ on out-of-range values).

use kbpf_isa::decode::{AluOp, Imm64Source, Instruction, JmpCond, Size, Source, Width};

use super::dataflow::{bit, effect, successors};

/// Known values of `r0`–`r10` and AX before an instruction.
type Consts = [Option<i64>; 12];

/// The 64-bit value of a plain `ld_imm64`.
fn imm64(imm: i32, next_imm: i32) -> i64 {
    ((imm as u32 as u64) | ((next_imm as u32 as u64) << 32)) as i64
}

/// What is known after `ins` on its branch edge (`taken`) or its fall-through, given `c`
/// before it.
fn transfer(ins: Instruction, subprog: bool, mut c: Consts, taken: bool) -> Consts {
    let writes = effect(ins, subprog).writes;
    for (r, v) in c.iter_mut().enumerate() {
        if writes & bit(r as u8) != 0 {
            *v = None;
        }
    }
    match ins {
        Instruction::Alu {
            width,
            op: AluOp::Mov,
            dst,
            src: Source::Imm(k),
        } => {
            c[dst as usize] = Some(match width {
                Width::W64 => k as i64,
                Width::W32 => k as u32 as i64,
            })
        }
        Instruction::LdImm64 {
            dst,
            src: Imm64Source::Imm,
            imm,
            next_imm,
        } => c[dst as usize] = Some(imm64(imm, next_imm)),
        // A 64-bit equality proves the whole register on one edge.
        Instruction::Jmp {
            width: Width::W64,
            cond: cond @ (JmpCond::Eq | JmpCond::Ne),
            dst,
            src: Source::Imm(k),
            ..
        } if taken == (cond == JmpCond::Eq) => c[dst as usize] = Some(k as i64),
        _ => {}
    }
    c
}

fn meet(a: &Consts, b: &Consts) -> Consts {
    std::array::from_fn(|r| if a[r] == b[r] { a[r] } else { None })
}

/// The immediate standing for constant `k` in an operation of `width` (whose immediate is
/// sign-extended to 64 bits, or truncated to 32), if one does.
fn as_imm(width: Width, k: i64) -> Option<i32> {
    match width {
        Width::W64 => i32::try_from(k).ok(),
        Width::W32 => Some(k as i32),
    }
}

/// `ins` with a constant source register replaced by its immediate, where that is the same
/// operation.
fn substitute(ins: Instruction, c: &Consts) -> Instruction {
    let known = |s: u8| c.get(s as usize).copied().flatten();
    match ins {
        Instruction::Alu {
            width,
            op,
            dst,
            src: Source::Reg(s),
        } if matches!(
            op,
            AluOp::Add | AluOp::Sub | AluOp::And | AluOp::Or | AluOp::Xor | AluOp::Mul | AluOp::Mov
        ) =>
        {
            match known(s).and_then(|k| as_imm(width, k)) {
                Some(k) => Instruction::Alu {
                    width,
                    op,
                    dst,
                    src: Source::Imm(k),
                },
                None => ins,
            }
        }
        Instruction::Jmp {
            width,
            cond,
            dst,
            src: Source::Reg(s),
            off,
        } => match known(s).and_then(|k| as_imm(width, k)) {
            Some(k) => Instruction::Jmp {
                width,
                cond,
                dst,
                src: Source::Imm(k),
                off,
            },
            None => ins,
        },
        Instruction::Store {
            size,
            dst,
            off,
            src: Source::Reg(s),
        } => {
            let width = if size == Size::DW {
                Width::W64
            } else {
                Width::W32
            };
            match known(s).and_then(|k| as_imm(width, k)) {
                Some(k) => Instruction::Store {
                    size,
                    dst,
                    off,
                    src: Source::Imm(k),
                },
                None => ins,
            }
        }
        _ => ins,
    }
}

/// Rewrites the operands of `prog` (decoded, with its functions `funcs`) in place.
pub(crate) fn propagate(prog: &mut [(usize, Instruction)], funcs: &[(usize, usize)]) {
    for (fi, &(first, end)) in funcs.iter().enumerate() {
        let subprog = fi > 0;
        // None: not reached (yet).
        let mut state: Vec<Option<Consts>> = vec![None; end - first];
        state[0] = Some([None; 12]);
        loop {
            let mut changed = false;
            for i in first..end {
                let Some(c) = state[i - first] else { continue };
                let ins = prog[i].1;
                let [next, target] = successors(prog, i, end);
                // A jump to the next instruction reaches it on both edges; the meet of the
                // two below then keeps only what holds on both.
                for (s, taken) in [(next, false), (target, true)] {
                    let Some(s) = s else { continue };
                    let out = transfer(ins, subprog, c, taken);
                    let slot = &mut state[s - first];
                    let new = match slot {
                        None => out,
                        Some(old) => meet(old, &out),
                    };
                    if *slot != Some(new) {
                        *slot = Some(new);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for i in first..end {
            if let Some(c) = &state[i - first] {
                prog[i].1 = substitute(prog[i].1, c);
            }
        }
    }
}

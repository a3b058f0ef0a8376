//! What the JIT knows about registers at each instruction, from two classic dataflow passes
//! over each BPF function's control-flow graph:
//!
//! - **liveness** (backward): the registers whose value some later instruction may still
//!   read. A register that is dead after a peephole's run need not get the value it would
//!   have had (e.g. the temporary of a rotate).
//! - **zero-extension** (forward): the registers whose upper 32 bits are known to be zero.
//!   A `w X = w X` on such a register changes nothing, and a 64-bit shift-or on one is a
//!   32-bit rotate.
//!
//! Both are computed from the BPF semantics of each instruction alone, for any program the
//! JIT accepts — verified or not — so they hold on every path the program can take.
//! Whatever is not modelled exactly is approximated on the safe side: a call reads every
//! register and may write `r0`–`r5` and AX; an atomic reads and may write all its operands
//! and `r0`. The facts must also hold for the interpreter's semantics, which the JIT must
//! match on unverified programs: after a subprogram returns, the caller sees the callee's
//! `r1`–`r5` too, so a subprogram's `exit` reads them.

use kbpf_isa::decode::{AluOp, CallTarget, Endian, Imm64Source, Instruction, Size, Source, Width};

/// A set of BPF registers: bit `r` is register `r` (`r0`–`r10`, and 11 for `BPF_REG_AX`).
pub(crate) type RegSet = u16;

/// Every register.
pub(crate) const ALL: RegSet = (1 << 12) - 1;

/// The set holding only `r`.
pub(crate) const fn bit(r: u8) -> RegSet {
    1 << r
}

/// `r0`–`r5` and AX: what a call may clobber (the SysV caller-saved registers BPF maps).
const CALL_CLOBBERED: RegSet = 0b11_1111 | bit(11);

/// One instruction's register effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Effect {
    /// Registers it may read.
    pub uses: RegSet,
    /// Registers it always overwrites (without reading them first unless in `uses`).
    pub kills: RegSet,
    /// Registers it may write (a superset of `kills`).
    pub writes: RegSet,
}

impl Effect {
    const fn new(uses: RegSet, defs: RegSet) -> Effect {
        Effect {
            uses,
            kills: defs,
            writes: defs,
        }
    }
}

fn src_set(src: Source) -> RegSet {
    match src {
        Source::Reg(s) => bit(s),
        Source::Imm(_) => 0,
    }
}

/// The register effects of `ins`; `subprog`: it is in a bpf-to-bpf callee (whose `exit`
/// hands `r1`–`r5` and AX back to the caller along with `r0`).
pub(crate) fn effect(ins: Instruction, subprog: bool) -> Effect {
    match ins {
        Instruction::Alu { op, dst, src, .. } => match op {
            AluOp::Mov | AluOp::Movsx(_) | AluOp::MovPercpu => Effect::new(src_set(src), bit(dst)),
            AluOp::Neg => Effect::new(bit(dst), bit(dst)),
            _ => Effect::new(bit(dst) | src_set(src), bit(dst)),
        },
        Instruction::Endian { dst, .. } => Effect::new(bit(dst), bit(dst)),
        Instruction::Load { dst, src, .. } => Effect::new(bit(src), bit(dst)),
        Instruction::Store { dst, src, .. } => Effect::new(bit(dst) | src_set(src), 0),
        Instruction::Atomic { dst, src, .. } => {
            let all = bit(dst) | bit(src) | bit(0);
            Effect {
                uses: all,
                kills: 0,
                writes: all,
            }
        }
        Instruction::LdImm64 { dst, .. } => Effect::new(0, bit(dst)),
        Instruction::Ja { .. } => Effect::new(0, 0),
        Instruction::Jmp { dst, src, .. } => Effect::new(bit(dst) | src_set(src), 0),
        Instruction::Call(_) => Effect {
            uses: ALL,
            kills: 0,
            writes: CALL_CLOBBERED,
        },
        Instruction::Exit if subprog => Effect::new(CALL_CLOBBERED, 0),
        Instruction::Exit => Effect::new(bit(0), 0),
        // Refused before translation; modelled as touching everything.
        Instruction::LdPacket { .. } | Instruction::MayGoto { .. } => Effect {
            uses: ALL,
            kills: 0,
            writes: ALL,
        },
    }
}

/// The registers among `ins`'s writes whose upper 32 bits are zero afterwards, given the
/// registers `zext` known zero-extended before it.
fn zext_after(ins: Instruction, zext: RegSet) -> RegSet {
    let has = |r: u8| zext & bit(r) != 0;
    let src_has = |s: Source| match s {
        Source::Reg(r) => has(r),
        Source::Imm(k) => k >= 0,
    };
    let yes = |r: u8, c: bool| if c { bit(r) } else { 0 };
    match ins {
        // Every 32-bit ALU result is zero-extended.
        Instruction::Alu {
            width: Width::W32,
            dst,
            ..
        } => bit(dst),
        Instruction::Alu { op, dst, src, .. } => match op {
            AluOp::Mov => yes(dst, src_has(src)),
            AluOp::And => yes(dst, has(dst) || src_has(src)),
            AluOp::Or | AluOp::Xor => yes(dst, has(dst) && src_has(src)),
            AluOp::Rsh => yes(
                dst,
                has(dst) || matches!(src, Source::Imm(k) if k & 63 >= 32),
            ),
            // The quotient and the remainder are at most the dividend; a zero divisor
            // gives 0 (div) or keeps the dividend (mod).
            AluOp::Div | AluOp::Mod => yes(dst, has(dst)),
            _ => 0,
        },
        Instruction::Endian {
            kind: Endian::Le,
            bits: 64,
            dst,
        } => yes(dst, has(dst)),
        Instruction::Endian { bits, dst, .. } => yes(dst, bits < 64),
        Instruction::Load {
            size, signed, dst, ..
        } => yes(dst, !signed && size != Size::DW),
        Instruction::LdImm64 {
            dst, src, next_imm, ..
        } => yes(dst, src != Imm64Source::Func && next_imm == 0),
        _ => 0,
    }
}

/// Register facts for every decoded instruction (indexed like the decoded program).
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    /// Registers that may be read after the instruction.
    pub live_out: Vec<RegSet>,
    /// Registers that may be read from the instruction on (its `uses` included).
    pub live_in: Vec<RegSet>,
    /// Registers whose upper 32 bits are zero before the instruction, on every path to it.
    pub zext_in: Vec<RegSet>,
}

/// Index of the instruction at `pc` (jump targets are instruction starts: `validate`).
pub(super) fn index_of(prog: &[(usize, Instruction)], pc: i64) -> Option<usize> {
    let i = prog.partition_point(|&(p, _)| (p as i64) < pc);
    (prog.get(i).map(|&(p, _)| p as i64) == Some(pc)).then_some(i)
}

/// The instructions control can reach from `prog[i]` inside its function `[first, end)`.
pub(super) fn successors(
    prog: &[(usize, Instruction)],
    i: usize,
    end: usize,
) -> [Option<usize>; 2] {
    let (pc, ins) = prog[i];
    let next = (i + 1 < end).then_some(i + 1);
    let target = || ins.branch_target(pc).and_then(|t| index_of(prog, t));
    match ins {
        Instruction::Exit => [None, None],
        Instruction::Ja { .. } => [target(), None],
        Instruction::Jmp { .. } => [next, target()],
        _ => [next, None],
    }
}

/// Computes the facts of the functions `[first, end)` of `prog` (the first one is the main
/// function, entered with nothing known; the others are subprograms).
pub(crate) fn analyse(prog: &[(usize, Instruction)], funcs: &[(usize, usize)]) -> Facts {
    let n = prog.len();
    let mut facts = Facts {
        live_out: vec![0; n],
        live_in: vec![0; n],
        zext_in: vec![ALL; n],
    };
    for (fi, &(first, end)) in funcs.iter().enumerate() {
        let effects: Vec<Effect> = prog[first..end]
            .iter()
            .map(|&(_, ins)| effect(ins, fi > 0))
            .collect();
        let eff = |i: usize| effects[i - first];
        // Liveness: iterate backwards to the least fixed point.
        loop {
            let mut changed = false;
            for i in (first..end).rev() {
                let out = successors(prog, i, end)
                    .into_iter()
                    .flatten()
                    .fold(0, |acc, s| acc | facts.live_in[s]);
                let e = eff(i);
                let inn = e.uses | (out & !e.kills);
                if out != facts.live_out[i] || inn != facts.live_in[i] {
                    facts.live_out[i] = out;
                    facts.live_in[i] = inn;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Zero-extension: iterate forwards down from "everything" to the greatest fixed
        // point; the entry knows nothing.
        facts.zext_in[first] = 0;
        loop {
            let mut changed = false;
            for i in first..end {
                let zin = facts.zext_in[i];
                let out = (zin & !eff(i).writes) | zext_after(prog[i].1, zin);
                for s in successors(prog, i, end).into_iter().flatten() {
                    let meet = facts.zext_in[s] & out;
                    if meet != facts.zext_in[s] {
                        facts.zext_in[s] = meet;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }
    facts
}

/// The registers some instruction of `prog[first..end]` may write or read.
pub(crate) fn touched(prog: &[(usize, Instruction)], first: usize, end: usize) -> RegSet {
    prog[first..end]
        .iter()
        .map(|&(_, ins)| {
            let e = effect(ins, false);
            e.uses | e.writes
        })
        .fold(0, |a, b| a | b)
}

/// Whether `ins` calls out of the function (a helper, kfunc, subprogram or `callx`, or the
/// per-CPU move's hook) or takes a function's address.
pub(crate) fn calls_out(ins: Instruction) -> bool {
    matches!(
        ins,
        Instruction::Call(
            CallTarget::Helper(_)
                | CallTarget::Local(_)
                | CallTarget::Reg(_)
                | CallTarget::Kfunc { .. }
        ) | Instruction::Alu {
            op: AluOp::MovPercpu,
            ..
        } | Instruction::LdImm64 {
            src: Imm64Source::Func,
            ..
        }
    )
}

//! Widening at `may_goto` loops (`widen_imprecise_scalars`), as a second attempt.
//!
//! The kernel widens, on the fall-through it queues at a `may_goto`, every scalar that
//! differs from the loop's previous iteration (`find_prev_entry`) unless precision
//! tracking marked it precise; its `RANGE_WITHIN` comparison then finds the next iteration
//! covered. kbpf tracks no precision: every scalar counts as precise, so a loop whose
//! accumulator grows each iteration (`sum += i` under `can_loop`, `cond_break1`) never
//! converges and hits the complexity limit where the kernel verifies it in a hundred
//! instructions.
//!
//! kbpf's answer: when a program with a `may_goto` fails on a complexity limit, it is
//! verified again with every differing scalar widened at each `may_goto` (as if none were
//! precise). Widening replaces a value by an unknown scalar, an over-approximation: every
//! run of the program is still covered by an explored path, so an acceptance in the second
//! attempt is as sound as one in the first. What it can cost is precision (a loop counter the
//! program needs exact), in which case the second attempt fails and the first attempt's
//! error stands.

use super::Checker;
use crate::state::VerifierState;
use crate::types::{RegState, RegType};

impl Checker<'_> {
    /// `find_prev_entry`: the checkpoint of the previous iteration of the loop whose
    /// `may_goto` at `idx` `st` is at: the nearest ancestor of the current checkpoint stored
    /// at `idx`, in the same call sites, still being explored.
    pub(super) fn prev_loop_entry(&self, st: &VerifierState, idx: usize) -> Option<usize> {
        let list = self.explored.get(&idx)?;
        // The current checkpoint is this iteration's own (a `may_goto` always gets one).
        let mut p = self.cur_parent.and_then(|c| self.arena[c].parent);
        while let Some(e) = p {
            let ex = &self.arena[e];
            if ex.branches > 0 && list.contains(&e) && same_callsites(&ex.state, st) {
                return Some(e);
            }
            p = ex.parent;
        }
        None
    }
}

/// `same_callsites`.
fn same_callsites(a: &VerifierState, b: &VerifierState) -> bool {
    a.frames.len() == b.frames.len()
        && a.frames
            .iter()
            .zip(&b.frames)
            .all(|(x, y)| x.callsite == y.callsite)
}

/// `maybe_widen_reg` with every scalar imprecise: a scalar of `cur` whose value differs from
/// `old`'s becomes unknown.
fn maybe_widen_reg(old: &RegState, cur: &mut RegState) {
    if old.ty != RegType::Scalar || cur.ty != RegType::Scalar {
        return;
    }
    if old.s == cur.s {
        return;
    }
    *cur = RegState::unknown();
}

/// `widen_imprecise_scalars(old, cur)` over the registers and spilled scalars of every frame.
pub(crate) fn widen_scalars(old: &VerifierState, cur: &mut VerifierState) {
    for (fo, fc) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (ro, rc) in fo.regs.iter().zip(fc.regs.iter_mut()) {
            maybe_widen_reg(ro, rc);
        }
        for (so, sc) in fo.stack.iter().zip(fc.stack.iter_mut()) {
            if so.is_spill() && sc.is_spill() {
                maybe_widen_reg(&so.spilled, &mut sc.spilled);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kbpf_isa::Insn;
    use kbpf_isa::insn::*;

    use super::*;
    use crate::bounds::Scalar;
    use crate::state::FuncState;
    use crate::{Options, ProgType, verify};

    fn state_with(r0: RegState, r1: RegState) -> VerifierState {
        let mut f = FuncState::new(0, 0, 0);
        f.regs[0] = r0;
        f.regs[1] = r1;
        VerifierState {
            frames: vec![f],
            refs: Vec::new(),
            lock: None,
            may_goto_depth: 0,
            callback_unroll_depth: 0,
        }
    }

    #[test]
    fn differing_scalars_widen_equal_ones_stay() {
        let old = state_with(
            RegState::scalar(Scalar::constant(0)),
            RegState::scalar(Scalar::constant(7)),
        );
        let mut cur = state_with(
            RegState::scalar(Scalar::constant(5)),
            RegState::scalar(Scalar::constant(7)),
        );
        widen_scalars(&old, &mut cur);
        assert_eq!(cur.frames[0].regs[0].s, Scalar::unknown());
        assert_eq!(cur.frames[0].regs[1].s, Scalar::constant(7));
        // Pointers are never widened.
        let mut cur = state_with(RegState::NOT_INIT, RegState::scalar(Scalar::constant(9)));
        widen_scalars(&old, &mut cur);
        assert_eq!(cur.frames[0].regs[0].ty, RegType::NotInit);
        assert_eq!(cur.frames[0].regs[1].s, Scalar::unknown());
    }

    fn may_goto(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, off, 0)
    }

    /// `r0 = 0; r1 = 0; l: may_goto +3; r0 += r1; r1 += 1; ja l; exit` — an accumulator
    /// and a counter growing forever but for the budget: the kernel widens both and
    /// converges; kbpf does so on its second attempt.
    #[test]
    fn growing_accumulator_under_may_goto_converges() {
        let insns = [
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0),
            may_goto(3),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 1),
            Insn::new(BPF_JMP | BPF_JA, 0, 0, -4, 0),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let env: Vec<crate::MapDesc> = Vec::new();
        let v = verify(&insns, &env, &Options::new(ProgType::SocketFilter));
        assert!(v.accepted(), "{}", v.log);
        assert!(v.stats.insn_processed < 100, "{:?}", v.stats);
    }

    /// A loop whose counter walks off the stack is still refused (`fp-64 + r1` reaches
    /// `fp0` on the 65th iteration).
    #[test]
    fn counter_walking_off_the_stack_is_refused() {
        let insns = [
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
            may_goto(6),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -64),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_X, 2, 1, 0, 0),
            Insn::new(BPF_ST | BPF_MEM | BPF_B, 2, 0, 0, 0),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 1),
            Insn::new(BPF_JMP | BPF_JA, 0, 0, -7, 0),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let env: Vec<crate::MapDesc> = Vec::new();
        let v = verify(&insns, &env, &Options::new(ProgType::SocketFilter));
        assert!(!v.accepted(), "{}", v.log);
    }
}

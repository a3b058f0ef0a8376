//! `may_goto` (`BPF_JMP | BPF_JCOND`, `src_reg == BPF_MAY_GOTO`): a jump the program takes
//! once its function's loop budget (`BPF_MAX_LOOPS` iterations, a counter the rewrite keeps on
//! the stack) is spent, so a loop containing one ends on every run.
//!
//! Exploration (`check_cond_jmp_op`'s `BPF_JCOND` case): the current path takes the jump and
//! the fall-through is queued with `may_goto_depth + 1`. Convergence (`is_state_visited`): at a
//! `may_goto`, a state covered by one of the same instruction that is still being explored
//! (an earlier iteration of the loop) at another depth is pruned, because the loop ends at
//! run time whatever the verifier saw. kbpf compares every scalar as precise (see the crate
//! docs), so its `RANGE_WITHIN` comparison is never looser than the kernel's; widening
//! (`widen_imprecise_scalars`) is a second attempt after a complexity failure
//! (`check/widen.rs`).

use kbpf_isa::decode::Instruction;

use super::{Checker, Flow, Pending, R};
use crate::state::{VerifierState, states_equal};

impl Checker<'_> {
    /// Whether instruction `idx` is a `may_goto` (`is_may_goto_insn_at`); the CFG pass made it
    /// a prune point and `is_state_visited` always checkpoints it (`mark_force_checkpoint`).
    pub(super) fn is_may_goto_insn_at(&self, idx: usize) -> bool {
        matches!(
            self.decoded.get(idx),
            Some(Some(Instruction::MayGoto { .. }))
        )
    }

    /// `may_goto pc+off` at `idx`: queue the fall-through one level deeper and follow the jump.
    pub(super) fn check_may_goto(
        &mut self,
        st: &VerifierState,
        idx: usize,
        off: i16,
        pending: &mut Vec<Pending>,
    ) -> R<Flow> {
        let mut fallthrough = st.clone();
        fallthrough.may_goto_depth += 1;
        if self.widen
            && let Some(prev) = self.prev_loop_entry(st, idx)
        {
            super::widen::widen_scalars(&self.arena[prev].state, &mut fallthrough);
        }
        self.push_branch(pending, fallthrough, idx + 1, idx)?;
        Ok(Flow::Goto((idx as i64 + 1 + off as i64) as usize))
    }

    /// The `may_goto` case of `is_state_visited` for an explored state `old` at `idx` still
    /// being explored: `cur` is a later iteration of the loop `old` started (another depth)
    /// and `old` covers it.
    pub(super) fn may_goto_converged(
        &self,
        old: &VerifierState,
        cur: &VerifierState,
        idx: usize,
    ) -> bool {
        self.is_may_goto_insn_at(idx)
            && old.may_goto_depth != cur.may_goto_depth
            && states_equal(old, cur, self.opts.allow_uninit_stack)
    }
}

#[cfg(test)]
mod tests {
    use kbpf_isa::Insn;
    use kbpf_isa::insn::*;

    use crate::{Options, ProgType, verify};

    fn may_goto(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, off, 0)
    }
    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    fn ja(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
    }

    fn run(insns: &[Insn]) -> crate::Verdict {
        let env: Vec<crate::MapDesc> = Vec::new();
        verify(insns, &env, &Options::new(ProgType::SocketFilter))
    }

    /// `ja_and_may_goto`: `l0: may_goto +1; goto l0; r0 = 0; exit` — an endless loop but for
    /// the budget, accepted because the second iteration's state equals the first one's.
    #[test]
    fn loop_bounded_only_by_may_goto_converges() {
        let v = run(&[may_goto(1), ja(-2), mov(0, 0), exit()]);
        assert!(v.accepted(), "{}", v.log);
        assert!(v.stats.insn_processed < 20, "{:?}", v.stats);
    }

    /// The fall-through of `may_goto` is explored too: an error there rejects the program.
    #[test]
    fn fallthrough_is_explored() {
        // may_goto +2 jumps to a safe exit; the fall-through reads r2, never written.
        let bad = Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 0, 2, 0, 0);
        let v = run(&[may_goto(2), bad, exit(), mov(0, 0), exit()]);
        assert!(!v.accepted());
        assert!(v.log.contains("R2 !read_ok"), "{}", v.log);
    }

    /// The jump side is explored as well.
    #[test]
    fn jump_side_is_explored() {
        let bad = Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 0, 3, 0, 0);
        let v = run(&[may_goto(2), mov(0, 0), exit(), bad, exit()]);
        assert!(!v.accepted());
        assert!(v.log.contains("R3 !read_ok"), "{}", v.log);
    }

    /// A loop that repeats the same state at the same depth without passing a `may_goto` is
    /// still an infinite loop (`may_goto_self` jumps to itself: depth never grows on the jump).
    #[test]
    fn may_goto_to_itself_is_an_infinite_loop() {
        // r0 = *(u32 *)(r10 - 4); l0: may_goto -1 (itself); if r0 > 10 goto l0; r0 = 0; exit
        let ld = Insn::new(BPF_LDX | BPF_MEM | BPF_W, 0, 10, -4, 0);
        let jgt = Insn::new(BPF_JMP | BPF_JGT | BPF_K, 0, 0, -3, 10);
        let v = run(&[ld, may_goto(-1), jgt, mov(0, 0), exit()]);
        assert!(!v.accepted());
        assert!(
            v.log.contains("infinite loop detected at insn 1"),
            "{}",
            v.log
        );
    }

    /// Malformed `may_goto`s are refused at decode: a zero offset, a non-zero imm, `JMP32`.
    #[test]
    fn malformed_may_goto_is_refused() {
        for bad in [
            may_goto(0),
            Insn::new(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, 1, 5),
            Insn::new(BPF_JMP32 | BPF_JCOND, 0, BPF_MAY_GOTO, 1, 0),
            Insn::new(BPF_JMP | BPF_JCOND, 0, 1, 1, 0),
        ] {
            let v = run(&[bad, mov(0, 0), exit()]);
            assert!(!v.accepted(), "{bad:?} accepted");
        }
    }
}

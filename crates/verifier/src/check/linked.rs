//! Linked scalars: registers and spilled slots known to hold the same value, or the same value
//! plus a constant (`BPF_ADD_CONST`), share a scalar id, so that a bound learned on one by a
//! conditional jump is carried to the others (`sync_linked_regs`).
//!
//! A copy links (`assign_scalar_id_before_mov`); `rX += K` (64-bit, `0 <= K <= S32_MAX`) keeps
//! the link of a plainly linked `rX` with the delta `K` in the register's `off` and
//! [`BPF_ADD_CONST`] in its id; any other write breaks it. One delta only: a register that
//! already has one loses its link on a second add, or when it is copied.

use kbpf_isa::decode::AluOp;

use super::Checker;
use crate::bounds::Scalar;
use crate::state::VerifierState;
use crate::types::{BPF_ADD_CONST, RegState, RegType};
use kbpf_isa::decode::Width;

impl Checker<'_> {
    /// `assign_scalar_id_before_mov` on register `r` of the current frame: a scalar about to
    /// be copied gets an id (dropping a delta link, which a copy cannot carry). Returns the
    /// register as it is now.
    pub(super) fn assign_scalar_id_before_mov(
        &mut self,
        st: &mut VerifierState,
        r: u8,
    ) -> RegState {
        let reg = &mut st.cur_mut().regs[r as usize];
        if reg.ty != RegType::Scalar {
            return *reg;
        }
        if reg.id & BPF_ADD_CONST != 0 {
            reg.id = 0;
            reg.off = 0;
        }
        if reg.id == 0 && !reg.s.is_const() {
            self.id_gen += 1;
            st.cur_mut().regs[r as usize].id = self.id_gen;
        }
        st.cur().regs[r as usize]
    }
}

/// The link `out` (the result of scalar `dst op= src`) keeps: `rX += K` of a plainly linked
/// `rX` by a constant `0 <= K <= S32_MAX` (not `rX += rX`) stays linked with delta `K`.
pub(super) fn link_after_alu(
    op: AluOp,
    width: Width,
    dreg: &RegState,
    src: &RegState,
    same_reg: bool,
    out: &mut RegState,
) {
    out.id = 0;
    out.off = 0;
    if op != AluOp::Add || width != Width::W64 || dreg.id == 0 || same_reg || !src.s.is_const() {
        return;
    }
    let val = src.s.var_off.value;
    // A second delta cannot accumulate; a large one could overflow when synced.
    if dreg.id & BPF_ADD_CONST != 0 || val > i32::MAX as u64 {
        return;
    }
    out.id = dreg.id | BPF_ADD_CONST;
    out.off = val as i32;
}

/// `sync_linked_regs`: every scalar linked to `known` (same base id) takes its range, shifted
/// by the difference of their deltas.
pub(super) fn sync_linked_regs(st: &mut VerifierState, known: &RegState) {
    if known.ty != RegType::Scalar || known.id == 0 {
        return;
    }
    let base = known.id & !BPF_ADD_CONST;
    let known_delta = known.id & BPF_ADD_CONST != 0;
    st.for_each_reg(|r| {
        if r.ty != RegType::Scalar || r.id == 0 || r.id & !BPF_ADD_CONST != base {
            return;
        }
        let delta = r.id & BPF_ADD_CONST != 0;
        if (!delta && !known_delta) || r.off == known.off {
            r.s = known.s;
        } else {
            let d = r.off.wrapping_sub(known.off) as i64 as u64;
            let mut s = known.s;
            s.alu(AluOp::Add, Width::W64, &Scalar::constant(d));
            r.s = s;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FuncState;

    fn st(regs: &[(usize, u32, i32, Scalar)]) -> VerifierState {
        let mut f = FuncState::new(0, 0, 0);
        for &(r, id, off, s) in regs {
            f.regs[r] = RegState::scalar(s);
            f.regs[r].id = id;
            f.regs[r].off = off;
        }
        VerifierState {
            frames: vec![f],
            refs: Vec::new(),
            lock: None,
            may_goto_depth: 0,
            callback_unroll_depth: 0,
        }
    }

    #[test]
    fn add_const_keeps_one_delta() {
        let linked = RegState {
            id: 3,
            ..RegState::unknown()
        };
        let k = |v: u64| RegState::known(v);
        let mut out = RegState::unknown();
        link_after_alu(AluOp::Add, Width::W64, &linked, &k(2), false, &mut out);
        assert_eq!((out.id, out.off), (3 | BPF_ADD_CONST, 2));
        // a second add, a negative or huge constant, a 32-bit add, a sub: no link
        let again = out;
        link_after_alu(AluOp::Add, Width::W64, &again, &k(1), false, &mut out);
        assert_eq!(out.id, 0);
        for (op, w, c) in [
            (AluOp::Add, Width::W64, -1i64 as u64),
            (AluOp::Add, Width::W64, 1 << 31),
            (AluOp::Add, Width::W32, 1),
            (AluOp::Sub, Width::W64, 1),
        ] {
            link_after_alu(op, w, &linked, &k(c), false, &mut out);
            assert_eq!(out.id, 0, "{op:?} {w:?} {c:#x}");
        }
        link_after_alu(AluOp::Add, Width::W64, &linked, &linked, true, &mut out);
        assert_eq!(out.id, 0);
    }

    /// `r1 = r0 + 1; r2 = r0 + 2; if r0 <= 8`: r1 in [1, 9], r2 in [2, 10]
    /// (`check_add_const_3regs`).
    #[test]
    fn sync_shifts_by_the_delta() {
        let u = Scalar::unknown();
        let mut s = st(&[
            (0, 5, 0, u),
            (1, 5 | BPF_ADD_CONST, 1, u),
            (2, 5 | BPF_ADD_CONST, 2, u),
            (3, 6, 0, u),
        ]);
        let mut known = s.frames[0].regs[0];
        known.s = Scalar::unsigned_range(0, 8);
        s.frames[0].regs[0] = known;
        sync_linked_regs(&mut s, &known);
        let r = &s.frames[0].regs;
        assert_eq!((r[1].s.umin_value, r[1].s.umax_value), (1, 9));
        assert_eq!((r[2].s.umin_value, r[2].s.umax_value), (2, 10));
        assert_eq!(r[3].s.umax_value, u64::MAX);
        // from a delta register back to the base: r2 in [2, 11] gives r0 [0, 9], r1 [1, 10]
        let mut known = s.frames[0].regs[2];
        known.s = Scalar::unsigned_range(2, 11);
        sync_linked_regs(&mut s, &known);
        let r = &s.frames[0].regs;
        assert_eq!((r[0].s.umin_value, r[0].s.umax_value), (0, 9));
        assert_eq!((r[1].s.umin_value, r[1].s.umax_value), (1, 10));
    }
}

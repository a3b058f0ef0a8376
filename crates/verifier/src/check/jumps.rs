//! Conditional jumps (`check_cond_jmp_op`): branches decided by the bounds, the bounds each
//! side learns, NULL checks of maybe-NULL pointers, packet range checks.

use super::*;

impl Checker<'_> {
    // ---------------------------------------------------------------- jumps

    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_cond_jmp(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        width: Width,
        cond: JmpCond,
        dst: u8,
        src: Source,
        off: i16,
        pending: &mut Vec<Pending>,
    ) -> R<Flow> {
        let target = (idx as i64 + 1 + off as i64) as usize;
        let dreg = self.read_reg(st, dst)?;
        let sreg = match src {
            Source::Reg(r) => self.read_reg(st, r)?,
            Source::Imm(i) => RegState::known(i as i64 as u64),
        };
        let w32 = width == Width::W32;
        let pred = self.branch_taken(&dreg, &sreg, cond, width);
        match pred {
            Taken::Always => return Ok(Flow::Goto(target)),
            Taken::Never => return Ok(Flow::Next),
            Taken::Unknown => {}
        }
        let mut other = st.clone();
        let mut alive_this = true;
        let mut alive_other = true;
        if dreg.ty == RegType::Scalar && sreg.ty == RegType::Scalar {
            // Refine both sides in both branches (`reg_set_min_max`).
            let (mut td, mut ts) = (dreg, sreg);
            let (mut fd, mut fs) = (dreg, sreg);
            alive_other = bounds::refine(&mut td.s, &mut ts.s, cond, width, true);
            alive_this = bounds::refine(&mut fd.s, &mut fs.s, cond, width, false);
            let fr = other.frames.len() - 1;
            other.frames[fr].regs[dst as usize].s = td.s;
            let cur = st.frames.len() - 1;
            st.frames[cur].regs[dst as usize].s = fd.s;
            if let Source::Reg(r) = src {
                other.frames[fr].regs[r as usize].s = ts.s;
                st.frames[cur].regs[r as usize].s = fs.s;
                linked::sync_linked_regs(&mut other, &RegState { s: ts.s, ..sreg });
                linked::sync_linked_regs(st, &RegState { s: fs.s, ..sreg });
            }
            linked::sync_linked_regs(&mut other, &RegState { s: td.s, ..dreg });
            linked::sync_linked_regs(st, &RegState { s: fd.s, ..dreg });
        }
        // A maybe-NULL pointer equal to a pointer that is not NULL is not NULL either (on
        // the branch where they are equal).
        if !w32
            && let Source::Reg(s) = src
            && dreg.is_pointer()
            && sreg.is_pointer()
            && dreg.maybe_null != sreg.maybe_null
            && matches!(cond, JmpCond::Eq | JmpCond::Ne)
        {
            let regno = if sreg.maybe_null { s } else { dst };
            let eq_branch = if cond == JmpCond::Eq {
                &mut other
            } else {
                &mut *st
            };
            let f = eq_branch.frames.len() - 1;
            mark_ptr_not_null_reg(&self.maps, &mut eq_branch.frames[f].regs[regno as usize]);
        }
        // NULL checks: `if rX == 0` on a maybe-null pointer.
        if !w32
            && matches!(src, Source::Imm(0))
            && matches!(cond, JmpCond::Eq | JmpCond::Ne)
            && dreg.maybe_null
        {
            let id = dreg.id;
            let eq = cond == JmpCond::Eq;
            // On the branch where the pointer is NULL it becomes the scalar 0.
            self.mark_ptr_or_null(st, id, !eq);
            self.mark_ptr_or_null(&mut other, id, eq);
        } else if let Source::Reg(s) = src
            && !w32
        {
            self.try_match_pkt_pointers(cond, dst, s, &dreg, &sreg, st, &mut other);
        }
        if self.level() >= 2 {
            self.scratched_regs |= 1 << dst;
        }
        match (alive_this, alive_other) {
            (true, true) => {
                self.push_branch(pending, other, target, idx)?;
                Ok(Flow::Next)
            }
            (true, false) => Ok(Flow::Next),
            (false, true) => {
                *st = other;
                Ok(Flow::Goto(target))
            }
            (false, false) => Ok(Flow::Next),
        }
    }

    /// `is_branch_taken`, including pointer-vs-zero and packet pointer comparisons.
    pub(super) fn branch_taken(
        &self,
        a: &RegState,
        b: &RegState,
        cond: JmpCond,
        width: Width,
    ) -> Taken {
        if a.ty == RegType::Scalar && b.ty == RegType::Scalar {
            return a.s.branch_taken(&b.s, cond, width);
        }
        if a.is_pointer() && b.is_pointer() {
            return Taken::Unknown;
        }
        // One pointer, one scalar: a pointer known not to be NULL is never equal to 0.
        let (p, k, c) = if a.is_pointer() {
            (a, b, cond)
        } else {
            (b, a, bounds::flip(cond))
        };
        let (kconst, kval) = if width == Width::W32 {
            (k.s.is_const32(), k.s.var_off.value as u32 as u64)
        } else {
            (k.s.is_const(), k.s.var_off.value)
        };
        if !kconst || kval != 0 || !reg_not_null(p) {
            return Taken::Unknown;
        }
        match c {
            JmpCond::Eq => Taken::Never,
            JmpCond::Ne => Taken::Always,
            _ => Taken::Unknown,
        }
    }

    /// `mark_ptr_or_null_regs`: every register/spill with `id` becomes NULL (scalar 0) or
    /// the non-NULL pointer; a map-of-maps value becomes the inner map (`CONST_PTR_TO_MAP`
    /// described by the inner meta).
    pub(super) fn mark_ptr_or_null(&mut self, st: &mut VerifierState, id: u32, is_null: bool) {
        if id == 0 {
            return;
        }
        // The NULL branch of a just-acquired pointer holds no reference.
        if is_null {
            st.refs.retain(|r| r.0 != id);
        }
        let maps = &self.maps;
        st.for_each_reg(|r| {
            if r.id != id || !r.maybe_null {
                return;
            }
            if is_null {
                *r = RegState::known(0);
                return;
            }
            mark_ptr_not_null_reg(maps, r);
            // The id only served the NULL check, except on a value with a lock, whose
            // unlock must name the same value (reg_may_point_to_spin_lock).
            let locked = r.ty == RegType::PtrToMapValue
                && maps
                    .get(r.map as usize)
                    .is_some_and(|m| m.desc.spin_lock_off.is_some());
            if !locked {
                r.id = 0;
            }
        });
    }

    /// `try_match_pkt_pointers` + `find_good_pkt_pointers`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn try_match_pkt_pointers(
        &mut self,
        cond: JmpCond,
        _dst: u8,
        _src: u8,
        d: &RegState,
        s: &RegState,
        this: &mut VerifierState,
        other: &mut VerifierState,
    ) {
        use RegType::*;
        let init_pkt = |r: &RegState| {
            r.ty == PtrToPacket && r.off == 0 && r.s.is_const() && r.s.var_off.value == 0
        };
        let fwd = (d.ty == PtrToPacket && s.ty == PtrToPacketEnd)
            || (d.ty == PtrToPacketMeta && init_pkt(s));
        let rev = (d.ty == PtrToPacketEnd && s.ty == PtrToPacket)
            || (init_pkt(d) && s.ty == PtrToPacketMeta);
        // (branch that gets the range: true = fall-through "this", reg, right_open)
        let plan = match (cond, fwd, rev) {
            (JmpCond::Gt, true, _) => Some((true, d, false)),
            (JmpCond::Gt, _, true) => Some((false, s, true)),
            (JmpCond::Lt, true, _) => Some((false, d, true)),
            (JmpCond::Lt, _, true) => Some((true, s, false)),
            (JmpCond::Ge, true, _) => Some((true, d, true)),
            (JmpCond::Ge, _, true) => Some((false, s, false)),
            (JmpCond::Le, true, _) => Some((false, d, false)),
            (JmpCond::Le, _, true) => Some((true, s, true)),
            _ => None,
        };
        if let Some((in_this, reg, open)) = plan {
            let target = if in_this { this } else { other };
            find_good_pkt_pointers(target, reg, open);
        }
    }
}

/// `find_good_pkt_pointers`.
pub(super) fn find_good_pkt_pointers(
    st: &mut VerifierState,
    reg: &RegState,
    range_right_open: bool,
) {
    if reg.off < 0 || (reg.off == 0 && range_right_open) {
        return;
    }
    if reg.s.umax_value > MAX_PACKET_OFF || reg.s.umax_value + reg.off as u64 > MAX_PACKET_OFF {
        return;
    }
    let mut new_range = reg.off;
    if range_right_open {
        new_range += 1;
    }
    let (ty, id) = (reg.ty, reg.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.range = r.range.max(new_range);
        }
    });
}

/// `reg_not_null`: the pointer types whose base is never NULL, with an offset that cannot
/// wrap it to zero. The context, the stack and packet pointers are *not* among them: the
/// kernel explores both sides of `if (ctx == 0)`, and so must kbpf (a loop whose exit depends
/// on it is rejected there).
pub(super) fn reg_not_null(r: &RegState) -> bool {
    let max = BPF_MAX_VAR_OFF as i64;
    !r.maybe_null
        && r.s.smin_value > -max
        && r.s.smax_value < max
        && matches!(
            r.ty,
            RegType::PtrToMapValue
                | RegType::PtrToMapKey
                | RegType::ConstPtrToMap
                | RegType::PtrToSocket
                | RegType::PtrToTcpSock
                | RegType::PtrToSockCommon
                | RegType::PtrToXdpSock
                | RegType::PtrToMem
                | RegType::PtrToRingbufMem
        )
}

/// `mark_ptr_not_null_reg`: `r` is known not to be NULL; a lookup in a socket map gives a
/// socket, one in a map-in-map the inner map.
pub(super) fn mark_ptr_not_null_reg(maps: &[MapSlot], r: &mut RegState) {
    r.maybe_null = false;
    if r.ty != RegType::PtrToMapValue {
        return;
    }
    let Some(m) = maps.get(r.map as usize) else {
        return;
    };
    if matches!(m.desc.map_type, SOCKMAP | SOCKHASH | XSKMAP) {
        r.ty = if m.desc.map_type == XSKMAP {
            RegType::PtrToXdpSock
        } else {
            RegType::PtrToSocket
        };
    } else if let Some(inner) = m.inner {
        r.ty = RegType::ConstPtrToMap;
        r.map = inner;
        r.off = 0;
    }
}

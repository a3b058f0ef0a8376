//! The verifier state of one path: call frames with registers and stack slots
//! (`struct bpf_verifier_state` / `bpf_func_state` / `bpf_stack_state`), and the state
//! comparison that decides pruning (`states_equal` with `regsafe` and `stacksafe`).

use std::collections::HashMap;

use kbpf_isa::insn::MAX_BPF_STACK;

use crate::types::{BPF_ADD_CONST, RegState, RegType};

/// `BPF_REG_SIZE`: bytes per stack slot.
pub const BPF_REG_SIZE: usize = 8;

/// What one byte of a stack slot holds (`enum bpf_stack_slot_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotType {
    /// Never written (`STACK_INVALID`, printed `?`).
    Invalid,
    /// Part of a spilled register (`STACK_SPILL`, `r`).
    Spill,
    /// Some data (`STACK_MISC`, `m`).
    Misc,
    /// Known zero (`STACK_ZERO`, `0`).
    Zero,
}

impl SlotType {
    /// `slot_type_char`.
    pub fn as_char(self) -> char {
        match self {
            SlotType::Invalid => '?',
            SlotType::Spill => 'r',
            SlotType::Misc => 'm',
            SlotType::Zero => '0',
        }
    }
}

/// One 8-byte stack slot. `types[i]` describes the byte at `slot_end - 1 - i`, as in the
/// kernel (`slot_type[7]` is the lowest address of the slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackSlot {
    /// Per-byte contents.
    pub types: [SlotType; BPF_REG_SIZE],
    /// The spilled register when `types[7] == Spill`.
    pub spilled: RegState,
}

impl StackSlot {
    /// A never-written slot.
    pub const INVALID: StackSlot = StackSlot {
        types: [SlotType::Invalid; BPF_REG_SIZE],
        spilled: RegState::NOT_INIT,
    };

    /// `is_spilled_reg`.
    pub fn is_spill(&self) -> bool {
        self.types[BPF_REG_SIZE - 1] == SlotType::Spill
    }

    /// Number of bytes of the spill (`spill_size`).
    pub fn spill_size(&self) -> usize {
        let mut n = 1;
        let mut i = BPF_REG_SIZE - 1;
        while i > 0 && self.types[i - 1] == SlotType::Spill {
            n += 1;
            i -= 1;
        }
        n
    }
}

/// One call frame (`struct bpf_func_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncState {
    /// r0..r10.
    pub regs: [RegState; 11],
    /// Slot `i` covers `fp - 8*(i+1) .. fp - 8*i`.
    pub stack: Vec<StackSlot>,
    /// Instruction index of the call that created this frame (0 for the main program).
    pub callsite: usize,
    /// Frame number (0 = main program).
    pub frameno: u8,
    /// Index of the subprogram this frame runs.
    pub subprog: usize,
    /// This frame is a callback called by a helper (`in_callback_fn`): it returns to the
    /// helper's call instruction, with r0 in the callback's return range.
    pub in_callback_fn: bool,
    /// Callback iterations this frame's helper call has been simulated for on this path
    /// (`callback_depth`); `bpf_loop` stops at its iteration count.
    pub callback_depth: u32,
    /// For a callback frame: the references held when it was entered; it must return with
    /// exactly those (a callback may not leak or release its caller's references).
    pub callback_refs: Vec<(u32, usize)>,
}

impl FuncState {
    /// A frame with `r10` pointing at its own stack and everything else uninitialised.
    pub fn new(frameno: u8, callsite: usize, subprog: usize) -> FuncState {
        let mut regs = [RegState::NOT_INIT; 11];
        let mut fp = RegState::pointer(RegType::PtrToStack);
        fp.frameno = frameno;
        regs[10] = fp;
        FuncState {
            regs,
            stack: Vec::new(),
            callsite,
            frameno,
            subprog,
            in_callback_fn: false,
            callback_depth: 0,
            callback_refs: Vec::new(),
        }
    }

    /// Grows the stack to cover `fp + off` (off negative); returns the slot index.
    pub fn grow_to(&mut self, off: i32) -> usize {
        let slot = ((-off - 1) as usize) / BPF_REG_SIZE;
        if self.stack.len() <= slot {
            self.stack.resize(slot + 1, StackSlot::INVALID);
        }
        slot
    }

    /// Bytes of stack this frame uses (`allocated_stack`), at most `MAX_BPF_STACK`.
    pub fn stack_depth(&self) -> usize {
        (self.stack.len() * BPF_REG_SIZE).min(MAX_BPF_STACK)
    }
}

/// A path's full state (`struct bpf_verifier_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerifierState {
    /// Call frames, innermost last.
    pub frames: Vec<FuncState>,
    /// Acquired references not yet released (`refs`): id and the instruction that
    /// acquired it.
    pub refs: Vec<(u32, usize)>,
    /// The `bpf_spin_lock` held (`active_lock`): the map (verifier map slot) and the map
    /// value's id.
    pub lock: Option<(u32, u32)>,
    /// `may_goto` fall-throughs taken on this path (`may_goto_depth`): a loop iteration
    /// budgeted by `may_goto` differs from the one before by this depth. Not compared by
    /// [`states_equal`]; part of the exact equality that detects infinite loops.
    pub may_goto_depth: u32,
    /// Callback bodies entered on this path (`callback_unroll_depth`); like
    /// `may_goto_depth`, only part of the exact equality that detects infinite loops.
    pub callback_unroll_depth: u32,
}

impl VerifierState {
    /// The innermost frame.
    pub fn cur(&self) -> &FuncState {
        &self.frames[self.frames.len() - 1]
    }

    /// The innermost frame, mutably.
    pub fn cur_mut(&mut self) -> &mut FuncState {
        let n = self.frames.len() - 1;
        &mut self.frames[n]
    }

    /// Calls `f` on every register and spilled register of every frame
    /// (`bpf_for_each_reg_in_vstate`).
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut RegState)) {
        for frame in &mut self.frames {
            for r in frame.regs.iter_mut() {
                f(r);
            }
            for s in frame.stack.iter_mut() {
                if s.is_spill() {
                    f(&mut s.spilled);
                }
            }
        }
    }
}

/// Forgets scalar ids that link nothing: an id only one register or spilled slot of `st`
/// carries (all frames) says no more than no id. A checkpoint stored without them prunes
/// current states whose own links differ (a link in the current state only narrows what it
/// may hold, so the checkpoint still covers it) — as in the kernel, where such ids live on
/// imprecise scalars that pruning ignores.
pub fn clear_singular_scalar_ids(st: &mut VerifierState) {
    // Counted by base id: a delta link (`BPF_ADD_CONST`) shares its base's id.
    let mut count: HashMap<u32, u32> = HashMap::new();
    st.for_each_reg(|r| {
        if r.ty == RegType::Scalar && r.id != 0 {
            *count.entry(r.id & !BPF_ADD_CONST).or_default() += 1;
        }
    });
    if count.values().all(|&n| n > 1) {
        return;
    }
    st.for_each_reg(|r| {
        if r.ty == RegType::Scalar && r.id != 0 && count.get(&(r.id & !BPF_ADD_CONST)) == Some(&1) {
            r.id = 0;
            r.off = 0;
        }
    });
}

/// Id correspondence between an old and a current state (`check_ids`): an old id must always
/// map to the same current id, and vice versa.
#[derive(Default)]
struct IdMap {
    fwd: HashMap<u32, u32>,
    back: HashMap<u32, u32>,
}

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 && cur == 0 {
            return true;
        }
        if old == 0 || cur == 0 {
            return false;
        }
        match (self.fwd.get(&old), self.back.get(&cur)) {
            (Some(&c), Some(&o)) => c == cur && o == old,
            (None, None) => {
                self.fwd.insert(old, cur);
                self.back.insert(cur, old);
                true
            }
            _ => false,
        }
    }
}

/// `regsafe`: whether every concrete value `cur` may hold is one `old` also covers, so that
/// the exploration that already succeeded from `old` covers `cur`. Scalars are compared as if
/// all were precise (we do not track precision), which is sound but prunes less.
fn regsafe(old: &RegState, cur: &RegState, ids: &mut IdMap) -> bool {
    if old.ty == RegType::NotInit {
        // The old path never read it, so its value cannot matter.
        return true;
    }
    if old.ty != cur.ty {
        return false;
    }
    match old.ty {
        RegType::NotInit => true,
        RegType::Scalar => {
            // Scalar ids link registers known equal (or equal plus a constant delta); a link
            // in old must exist in cur, with the same delta. A link only cur has narrows it.
            let links = if old.id == 0 {
                true
            } else if old.id & BPF_ADD_CONST != cur.id & BPF_ADD_CONST {
                false
            } else if old.id & BPF_ADD_CONST != 0 {
                old.off == cur.off
                    && ids.check(old.id, cur.id)
                    && ids.check(old.id & !BPF_ADD_CONST, cur.id & !BPF_ADD_CONST)
            } else {
                ids.check(old.id, cur.id)
            };
            links && old.s.includes(&cur.s)
        }
        RegType::PtrToPacket | RegType::PtrToPacketMeta => {
            // A smaller range in cur is unsafe; offsets must be identical.
            old.range <= cur.range
                && old.off == cur.off
                && old.s.includes(&cur.s)
                && ids.check(old.id, cur.id)
        }
        _ => {
            old.maybe_null == cur.maybe_null
                && old.off == cur.off
                && old.map == cur.map
                && old.frameno == cur.frameno
                && old.mem_size == cur.mem_size
                && old.s.includes(&cur.s)
                && (!(old.maybe_null || old.id != 0) || ids.check(old.id, cur.id))
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
    }
}

/// `stacksafe`; `uninit_stack` is `env->allow_uninit_stack`.
fn stacksafe(old: &FuncState, cur: &FuncState, ids: &mut IdMap, uninit_stack: bool) -> bool {
    for (i, os) in old.stack.iter().enumerate() {
        let cs = cur.stack.get(i).copied().unwrap_or(StackSlot::INVALID);
        for b in 0..BPF_REG_SIZE {
            let ot = os.types[b];
            let ct = cs.types[b];
            match ot {
                // Never read on the old path (or read as unknown data by a loader that may
                // read uninitialised stack): anything is covered. Read as unknown data
                // otherwise: anything but a spilled pointer, which the old path would have
                // leaked as a number.
                SlotType::Invalid => {}
                SlotType::Misc => {
                    if ct == SlotType::Spill && cs.spilled.is_pointer() && !uninit_stack {
                        return false;
                    }
                }
                SlotType::Zero => {
                    let zero_spill = ct == SlotType::Spill
                        && cs.spilled.ty == RegType::Scalar
                        && cs.spilled.s.is_const()
                        && cs.spilled.s.var_off.value == 0;
                    if ct != SlotType::Zero && !zero_spill {
                        return false;
                    }
                }
                SlotType::Spill => {
                    if ct != SlotType::Spill {
                        return false;
                    }
                }
            }
        }
        if os.is_spill() && !regsafe(&os.spilled, &cs.spilled, ids) {
            return false;
        }
    }
    true
}

/// `states_equal`: whether `old` (fully explored and safe) covers `cur`; `uninit_stack` is
/// `env->allow_uninit_stack` (a privileged loader's old unknown stack bytes cover anything).
pub fn states_equal(old: &VerifierState, cur: &VerifierState, uninit_stack: bool) -> bool {
    if old.frames.len() != cur.frames.len() {
        return false;
    }
    let mut ids = IdMap::default();
    // refsafe: the same references, up to renaming.
    if old.refs.len() != cur.refs.len()
        || !old
            .refs
            .iter()
            .zip(&cur.refs)
            .all(|(o, c)| ids.check(o.0, c.0))
    {
        return false;
    }
    // The same lock held, on the same value up to renaming.
    match (old.lock, cur.lock) {
        (None, None) => {}
        (Some((om, oid)), Some((cm, cid))) if om == cm && ids.check(oid, cid) => {}
        _ => return false,
    }
    for (o, c) in old.frames.iter().zip(&cur.frames) {
        // func_states_equal: an old state further into a callback's iterations does not
        // cover one with fewer (the remaining ones are still to be checked).
        if o.callsite != c.callsite || o.callback_depth > c.callback_depth {
            return false;
        }
        for r in 0..11 {
            if !regsafe(&o.regs[r], &c.regs[r], &mut ids) {
                return false;
            }
        }
        if !stacksafe(o, c, &mut ids, uninit_stack) {
            return false;
        }
    }
    true
}

/// `states_maybe_looping` made exact: the same state reached again while it is still being
/// explored means the program loops forever.
/// `old` is a stored checkpoint, whose singular scalar ids were cleared.
pub fn states_identical(old: &VerifierState, cur: &VerifierState) -> bool {
    if old == cur {
        return true;
    }
    let mut cur = cur.clone();
    clear_singular_scalar_ids(&mut cur);
    *old == cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ids: &[(usize, u32)]) -> VerifierState {
        let mut f = FuncState::new(0, 0, 0);
        for &(r, id) in ids {
            f.regs[r] = RegState::unknown();
            f.regs[r].id = id;
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
    fn singular_scalar_ids_are_forgotten_shared_ones_kept() {
        let mut st = state(&[(1, 5), (2, 7), (3, 7)]);
        let slot = st.frames[0].grow_to(-8);
        st.frames[0].stack[slot] = StackSlot {
            types: [SlotType::Spill; BPF_REG_SIZE],
            spilled: st.frames[0].regs[1],
        };
        // r1 and the spill share 5 now: nothing is singular.
        clear_singular_scalar_ids(&mut st);
        assert_eq!(st.frames[0].regs[1].id, 5);
        st.frames[0].stack[slot] = StackSlot::INVALID;
        clear_singular_scalar_ids(&mut st);
        assert_eq!(st.frames[0].regs[1].id, 0);
        assert_eq!((st.frames[0].regs[2].id, st.frames[0].regs[3].id), (7, 7));
    }

    /// A checkpoint whose registers are unlinked covers a state where they are linked, and
    /// not the other way round.
    #[test]
    fn links_only_in_the_current_state_do_not_block_pruning() {
        let mut old = state(&[(1, 5), (2, 6)]);
        clear_singular_scalar_ids(&mut old);
        let cur = state(&[(1, 9), (2, 9)]);
        assert!(states_equal(&old, &cur, true));
        let linked_old = state(&[(1, 9), (2, 9)]);
        let unlinked_cur = state(&[(1, 5), (2, 6)]);
        assert!(!states_equal(&linked_old, &unlinked_cur, true));
    }
}

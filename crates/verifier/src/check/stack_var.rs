//! Variable-offset stack accesses by loads and stores, for a privileged loader:
//! `check_stack_access_within_bounds`, `check_stack_read_var_off` (with
//! `check_stack_range_initialized` and `mark_reg_stack_read`) and `check_stack_write_var_off`
//! of `kernel/bpf/verifier.c`.
//!
//! - The pointer's signed bounds must be within `BPF_MAX_VAR_OFF`, and every byte the access
//!   may touch inside the 512-byte frame.
//! - A read yields `0` when every byte it may read is `STACK_ZERO`, an unknown scalar
//!   otherwise (uninitialised bytes and spills are readable for a privileged loader).
//! - A write turns every byte it may write into `STACK_MISC` (or keeps `STACK_ZERO` when
//!   writing zero), forgets the spilled registers there, but keeps a spilled constant zero
//!   when writing zero.
//!
//! - A helper's memory argument with a variable stack offset
//!   (`check_stack_range_initialized`): the same bounds; memory the helper writes becomes
//!   unknown data over the whole range it may cover (spills there are forgotten).

use super::*;

impl Checker<'_> {
    /// A load or store through a stack pointer with a variable offset; `off` is the
    /// instruction's offset plus the pointer's fixed offset.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_stack_access_var(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
        write: bool,
        value: Option<(RegState, bool)>,
    ) -> R<Option<RegState>> {
        // check_ptr_alignment: stack accesses are always strictly aligned.
        check_strict_alignment_at("stack ", "", 0, reg, off - reg.off, size)?;
        let what = if write { "write to" } else { "read from" };
        let (smin, smax) = (reg.s.smin_value, reg.s.smax_value);
        if smax >= BPF_MAX_VAR_OFF as i64 || smin <= -(BPF_MAX_VAR_OFF as i64) {
            return rej(format!(
                "invalid unbounded variable-offset {what} stack R{regno}"
            ));
        }
        let min_off = smin + off as i64;
        let max_off = smax + off as i64 + size as i64;
        // check_stack_slot_within_bounds (a privileged loader may read below the allocated
        // stack), and nothing at or above the frame pointer.
        if min_off < -(MAX_BPF_STACK as i64) || min_off > -1 || max_off > 0 {
            return rej(format!(
                "invalid variable-offset {what} stack R{regno} var_off={} off={off} size={size}",
                reg.s.var_off
            ));
        }
        let frameno = reg.frameno as usize;
        let allow_uninit = self.opts.allow_uninit_stack;
        let Some(frame) = st.frames.get_mut(frameno) else {
            return rej(format!(
                "R{regno} points to the stack of a returned function"
            ));
        };
        frame.grow_to(min_off as i32);
        self.fastcall_stack_contract(frame.subprog, min_off);
        let byte = |i: i64| {
            let slot = (-i - 1) as usize;
            (slot / BPF_REG_SIZE, slot % BPF_REG_SIZE)
        };
        for i in min_off..max_off {
            let (spi, _) = byte(i);
            if spi < 64 {
                self.scratched_stack |= 1 << spi;
            }
        }
        if write {
            let writing_zero = value.is_some_and(|(v, _)| {
                v.ty == RegType::Scalar && v.s.is_const() && v.s.var_off.value == 0
            });
            for i in min_off..max_off {
                let (spi, idx) = byte(i);
                let slot = &mut frame.stack[spi];
                if writing_zero
                    && slot.types[idx] == SlotType::Spill
                    && slot.is_spill()
                    && slot.spilled.ty == RegType::Scalar
                    && slot.spilled.s.is_const()
                    && slot.spilled.s.var_off.value == 0
                {
                    continue;
                }
                slot.spilled = RegState::NOT_INIT;
                if slot.types[idx] == SlotType::Invalid && !allow_uninit {
                    return rej(format!(
                        "uninit stack in range of var-offset write prohibited for !root; insn {}, off: {i}",
                        self.cur_insn
                    ));
                }
                slot.types[idx] = if writing_zero && slot.types[idx] == SlotType::Zero {
                    SlotType::Zero
                } else {
                    SlotType::Misc
                };
            }
            return self.check_stack_depth(st).map(|_| None);
        }
        let mut zeros = true;
        for i in min_off..max_off {
            let (spi, idx) = byte(i);
            match frame.stack[spi].types[idx] {
                SlotType::Zero => {}
                SlotType::Invalid if !allow_uninit => {
                    return rej(format!(
                        "invalid read from stack R{regno} var_off {}+{} size {size}",
                        reg.s.var_off,
                        i - min_off
                    ));
                }
                _ => zeros = false,
            }
        }
        let s = &mut self.subprog_stack[frame.subprog];
        *s = (*s).max(frame.stack_depth());
        Ok(Some(if zeros {
            RegState::known(0)
        } else {
            RegState::unknown()
        }))
    }

    /// A helper's access of `size` bytes (0 for a zero-sized one) through a stack pointer
    /// with a variable offset.
    pub(super) fn check_helper_stack_var(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        size: i32,
        write: bool,
    ) -> R<()> {
        let what = if write { "write to" } else { "read from" };
        let (smin, smax) = (reg.s.smin_value, reg.s.smax_value);
        if smax >= BPF_MAX_VAR_OFF as i64 || smin <= -(BPF_MAX_VAR_OFF as i64) {
            return rej(format!(
                "invalid unbounded variable-offset {what} stack R{regno}"
            ));
        }
        let off = reg.off as i64;
        let min_off = smin + off;
        let max_off = smax + off + size as i64;
        if min_off < -(MAX_BPF_STACK as i64) || min_off > -1 || max_off > 0 {
            return rej(format!(
                "invalid variable-offset {what} stack R{regno} var_off={} off={off} size={size}",
                reg.s.var_off
            ));
        }
        let allow_uninit = self.opts.allow_uninit_stack;
        let Some(frame) = st.frames.get_mut(reg.frameno as usize) else {
            return rej(format!(
                "R{regno} points to the stack of a returned function"
            ));
        };
        frame.grow_to(min_off as i32);
        self.fastcall_stack_contract(frame.subprog, min_off);
        for i in min_off..max_off {
            let slot = (-i - 1) as usize;
            let (spi, idx) = (slot / BPF_REG_SIZE, slot % BPF_REG_SIZE);
            let s = &mut frame.stack[spi];
            if s.types[idx] == SlotType::Invalid && !allow_uninit && !write {
                return rej(format!(
                    "invalid read from stack R{regno} var_off {}+{} size {size}",
                    reg.s.var_off,
                    i - min_off
                ));
            }
            if write {
                // The helper may write anything there.
                if s.types[idx] == SlotType::Spill {
                    s.spilled = RegState::unknown();
                    for t in s.types.iter_mut() {
                        if *t != SlotType::Invalid {
                            *t = SlotType::Misc;
                        }
                    }
                }
                s.types[idx] = SlotType::Misc;
            }
            if spi < 64 {
                self.scratched_stack |= 1 << spi;
            }
        }
        self.check_stack_depth(st)
    }
}

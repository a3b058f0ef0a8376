//! ALU instructions (`check_alu_op`): scalar arithmetic on the bounds, pointer arithmetic
//! (`adjust_ptr_min_max_vals`) and its sanity limits.

use super::*;

impl Checker<'_> {
    // ---------------------------------------------------------------- ALU

    pub(super) fn check_alu(
        &mut self,
        st: &mut VerifierState,
        width: Width,
        op: AluOp,
        dst: u8,
        src: Source,
    ) -> R<()> {
        let alu32 = width == Width::W32;
        // Operands.
        let src_reg = match src {
            Source::Reg(r) if op != AluOp::Neg => Some(self.read_reg(st, r)?),
            _ => None,
        };
        let src_val = match (src, src_reg) {
            (_, Some(r)) => r,
            (Source::Imm(i), None) => {
                if alu32 {
                    RegState::known(i as u32 as u64)
                } else {
                    RegState::known(i as i64 as u64)
                }
            }
            _ => RegState::known(0),
        };
        if matches!(op, AluOp::Mov | AluOp::Movsx(_)) {
            self.check_dst(dst)?;
            let mut v = src_val;
            match op {
                AluOp::Mov if !alu32 => {
                    if let (Source::Reg(r), RegType::Scalar) = (src, v.ty) {
                        // A copy links the two registers.
                        v = self.assign_scalar_id_before_mov(st, r);
                    }
                }
                _ => {
                    if v.ty == RegType::Scalar {
                        // `w1 = w2` of a value that fits 32 bits and a sign extension that
                        // extends no sign bit copy the value unchanged: the registers are
                        // linked as by a 64-bit move (check_alu_op's `is_src_reg_u32`,
                        // `no_sext`); otherwise the copy is a new value.
                        let unchanged = match op {
                            AluOp::Movsx(bits) => v.s.umax_value < 1u64 << (bits - 1),
                            _ => v.s.umax_value <= u32::MAX as u64,
                        };
                        match src {
                            Source::Reg(r) if unchanged => {
                                v = self.assign_scalar_id_before_mov(st, r);
                            }
                            _ => {
                                v.id = 0;
                                v.off = 0;
                            }
                        }
                        let mut s = v.s;
                        s.alu(op, width, &v.s);
                        v.s = s;
                    } else {
                        // Partial copy or sign-extension of a pointer: an unknown number.
                        v = RegState::unknown();
                        if alu32 {
                            v.s.coerce_to_size(4);
                        }
                    }
                }
            }
            self.set_reg(st, dst, v);
            return Ok(());
        }
        let dreg = self.read_reg(st, dst)?;
        self.check_dst(dst)?;
        if matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod)
            && let Source::Imm(0) = src
        {
            return rej("div by zero");
        }
        if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh)
            && let Source::Imm(i) = src
        {
            let bits = if alu32 { 32 } else { 64 };
            if i < 0 || i >= bits {
                return rej(format!("invalid shift {i}"));
            }
        }
        if op == AluOp::Neg {
            let v = if dreg.ty == RegType::Scalar {
                let mut s = dreg.s;
                s.alu(op, width, &Scalar::constant(0));
                RegState::scalar(s)
            } else {
                RegState::unknown()
            };
            self.set_reg(st, dst, v);
            return Ok(());
        }
        let out = if dreg.ty == RegType::Scalar && src_val.ty == RegType::Scalar {
            let mut s = dreg.s;
            s.alu(op, width, &src_val.s);
            let mut out = RegState::scalar(s);
            let same_reg = src == Source::Reg(dst);
            linked::link_after_alu(op, width, &dreg, &src_val, same_reg, &mut out);
            out
        } else if dreg.is_pointer() && src_val.is_pointer() {
            if op == AluOp::Sub {
                // Pointer difference: allowed for privileged programs, an unknown number.
                RegState::unknown()
            } else {
                return rej(format!("R{dst} pointer {} pointer prohibited", alu_str(op)));
            }
        } else if dreg.is_pointer() {
            self.adjust_ptr(dst, op, alu32, &dreg, &src_val, false)?
        } else {
            // scalar += pointer
            if op == AluOp::Sub {
                if alu32 {
                    RegState::unknown()
                } else {
                    return rej(format!("R{dst} tried to subtract pointer from scalar"));
                }
            } else {
                self.adjust_ptr(dst, op, alu32, &src_val, &dreg, true)?
            }
        };
        self.set_reg(st, dst, out);
        Ok(())
    }

    /// `adjust_ptr_min_max_vals`: pointer ± scalar.
    pub(super) fn adjust_ptr(
        &mut self,
        dst: u8,
        op: AluOp,
        alu32: bool,
        ptr: &RegState,
        off: &RegState,
        _reversed: bool,
    ) -> R<RegState> {
        if alu32 {
            if op == AluOp::Sub {
                return Ok(RegState::unknown());
            }
            return rej(format!("R{dst} 32-bit pointer arithmetic prohibited"));
        }
        if ptr.maybe_null {
            return rej_hint(
                format!(
                    "R{dst} pointer arithmetic on {} prohibited, null-check it first",
                    ptr.type_str()
                ),
                "compare the pointer against NULL before adding offsets to it",
            );
        }
        let known = off.s.is_const();
        let kval = off.s.var_off.value as i64;
        match ptr.ty {
            RegType::PtrToCtx
            | RegType::PtrToMapValue
            | RegType::PtrToMapKey
            | RegType::PtrToStack
            | RegType::PtrToPacket
            | RegType::PtrToPacketMeta
            | RegType::PtrToMem
            | RegType::PtrToRingbufMem
            | RegType::PtrToTpBuffer => {}
            RegType::ConstPtrToMap if known && kval == 0 && op == AluOp::Add => {}
            RegType::PtrToFlowKeys if known => {}
            _ => {
                return rej_hint(
                    format!("R{dst} pointer arithmetic on {} prohibited", ptr.type_str()),
                    "this pointer type cannot be moved; use it unchanged (e.g. pass the map pointer directly to the helper)",
                );
            }
        }
        self.check_sane_offset(dst, *off, ptr.ty)?;
        self.check_sane_offset(dst, *ptr, ptr.ty)?;
        let mut out = *ptr;
        match op {
            AluOp::Add | AluOp::Sub => {
                // Any subtraction, constant or not ("invalid fp arithmetic": JITs might not
                // cope); `r -= 8` must be written `r += -8`.
                if op == AluOp::Sub && ptr.ty == RegType::PtrToStack {
                    return rej(format!("R{dst} subtraction from stack pointer prohibited"));
                }
                let delta = if op == AluOp::Add {
                    Some(kval)
                } else {
                    kval.checked_neg()
                };
                if known && let Some(d) = delta {
                    let n = ptr.off as i64 + d;
                    if n == n as i32 as i64 {
                        out.off = n as i32;
                        return self.check_sane_offset(dst, out, ptr.ty);
                    }
                }
                // A variable offset.
                let mut s = ptr.s;
                s.alu(op, Width::W64, &off.s);
                out.s = s;
                if ptr.ty.is_pkt_pointer() {
                    out.id = self.new_id();
                    if op == AluOp::Add || off.s.smin_value < 0 {
                        out.range = 0;
                    }
                }
                self.check_sane_offset(dst, out, ptr.ty)
            }
            AluOp::And | AluOp::Or | AluOp::Xor => rej(format!(
                "R{dst} bitwise operator {} on pointer prohibited",
                alu_str(op)
            )),
            _ => rej(format!(
                "R{dst} pointer arithmetic with {} operator prohibited",
                alu_str(op)
            )),
        }
    }

    /// `check_reg_sane_offset`: offsets far enough out to overflow are refused.
    pub(super) fn check_sane_offset(&mut self, _dst: u8, r: RegState, ty: RegType) -> R<RegState> {
        let max = BPF_MAX_VAR_OFF as i64;
        let tname = ty.name();
        let val = r.s.var_off.value as i64;
        if r.s.is_const() && (val >= max || val <= -max) {
            return rej(format!(
                "math between {tname} pointer and {val} is not allowed"
            ));
        }
        if r.off as i64 >= max || r.off as i64 <= -max {
            return rej(format!("{tname} pointer offset {} is not allowed", r.off));
        }
        if r.s.smin_value == i64::MIN {
            return rej_hint(
                format!(
                    "math between {tname} pointer and register with unbounded min value is not allowed"
                ),
                "bound the offset first (e.g. if (off > N) return; or off &= MASK)",
            );
        }
        if r.s.smin_value >= max || r.s.smin_value <= -max {
            return rej(format!(
                "value {} makes {tname} pointer be out of bounds",
                r.s.smin_value
            ));
        }
        Ok(r)
    }
}

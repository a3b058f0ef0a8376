//! Scalar value tracking: the numeric part of the kernel's `struct bpf_reg_state` — a [`Tnum`]
//! plus signed/unsigned 64-bit and 32-bit ranges — with the kernel's bound synchronisation
//! (`reg_bounds_sync`), the ALU transfer functions of `adjust_scalar_min_max_vals`, and the
//! branch logic of `is_scalar_branch_taken` / `regs_refine_cond_op`.
//!
//! Soundness is the contract: every function here over-approximates. For any concrete values
//! contained in the inputs, the concrete result is contained in the output (checked by the
//! proptests at the bottom). Where the kernel gives up (division, modulo, variable shifts)
//! so do we, by returning an unknown value.

use kbpf_isa::decode::{AluOp, JmpCond, Width};

use crate::tnum::Tnum;

/// Value ranges of a scalar (or the variable part of a pointer's offset).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Scalar {
    /// Known/unknown bits.
    pub var_off: Tnum,
    /// Signed 64-bit minimum.
    pub smin_value: i64,
    /// Signed 64-bit maximum.
    pub smax_value: i64,
    /// Unsigned 64-bit minimum.
    pub umin_value: u64,
    /// Unsigned 64-bit maximum.
    pub umax_value: u64,
    /// Signed minimum of the low 32 bits.
    pub s32_min_value: i32,
    /// Signed maximum of the low 32 bits.
    pub s32_max_value: i32,
    /// Unsigned minimum of the low 32 bits.
    pub u32_min_value: u32,
    /// Unsigned maximum of the low 32 bits.
    pub u32_max_value: u32,
}

impl Default for Scalar {
    fn default() -> Self {
        Scalar::unknown()
    }
}

/// The outcome of a comparison known before it runs (`is_branch_taken`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Taken {
    /// Always jumps.
    Always,
    /// Never jumps.
    Never,
    /// Either way.
    Unknown,
}

impl Scalar {
    /// Nothing known (`__mark_reg_unknown` numeric part).
    pub const fn unknown() -> Scalar {
        Scalar {
            var_off: Tnum::UNKNOWN,
            smin_value: i64::MIN,
            smax_value: i64::MAX,
            umin_value: 0,
            umax_value: u64::MAX,
            s32_min_value: i32::MIN,
            s32_max_value: i32::MAX,
            u32_min_value: 0,
            u32_max_value: u32::MAX,
        }
    }

    /// A known constant (`__mark_reg_known`).
    pub const fn constant(v: u64) -> Scalar {
        Scalar {
            var_off: Tnum::constant(v),
            smin_value: v as i64,
            smax_value: v as i64,
            umin_value: v,
            umax_value: v,
            s32_min_value: v as u32 as i32,
            s32_max_value: v as u32 as i32,
            u32_min_value: v as u32,
            u32_max_value: v as u32,
        }
    }

    /// A value in `0..=max` (used for loads of `size` bytes and helper results).
    pub fn unsigned_range(min: u64, max: u64) -> Scalar {
        let mut s = Scalar::unknown();
        s.umin_value = min;
        s.umax_value = max;
        s.var_off = Tnum::range(min, max);
        s.sync();
        s
    }

    /// A value known only to fit in `size` bytes, zero-extended (a `size`-byte load).
    pub fn of_size(size: u8) -> Scalar {
        if size >= 8 {
            Scalar::unknown()
        } else {
            Scalar::unsigned_range(0, (1u64 << (size as u32 * 8)) - 1)
        }
    }

    /// Whether the 64-bit value is a known constant (`tnum_is_const(var_off)`).
    pub const fn is_const(&self) -> bool {
        self.var_off.is_const()
    }

    /// Whether the low 32 bits are a known constant.
    pub const fn is_const32(&self) -> bool {
        self.var_off.subreg_is_const()
    }

    /// Whether `v` may be the value (ranges and tnum agree).
    pub fn contains(&self, v: u64) -> bool {
        self.var_off.contains(v)
            && self.umin_value <= v
            && v <= self.umax_value
            && self.smin_value <= v as i64
            && v as i64 <= self.smax_value
            && self.u32_min_value <= v as u32
            && v as u32 <= self.u32_max_value
            && self.s32_min_value <= v as u32 as i32
            && v as u32 as i32 <= self.s32_max_value
    }

    /// Whether every value of `other` is a value of `self` (the range part of `regsafe`'s
    /// `range_within` plus `tnum_in`).
    pub fn includes(&self, other: &Scalar) -> bool {
        self.umin_value <= other.umin_value
            && self.umax_value >= other.umax_value
            && self.smin_value <= other.smin_value
            && self.smax_value >= other.smax_value
            && self.u32_min_value <= other.u32_min_value
            && self.u32_max_value >= other.u32_max_value
            && self.s32_min_value <= other.s32_min_value
            && self.s32_max_value >= other.s32_max_value
            && self.var_off.includes(other.var_off)
    }

    /// Whether the ranges describe no value at all (an impossible state; a branch that
    /// produced it cannot be taken).
    pub fn is_empty(&self) -> bool {
        self.umin_value > self.umax_value
            || self.smin_value > self.smax_value
            || self.u32_min_value > self.u32_max_value
            || self.s32_min_value > self.s32_max_value
            || !self.var_off.contains(self.var_off.value)
            || self.umax_value < self.var_off.umin()
            || self.umin_value > self.var_off.umax()
    }

    fn mark_reg32_unbounded(&mut self) {
        self.s32_min_value = i32::MIN;
        self.s32_max_value = i32::MAX;
        self.u32_min_value = 0;
        self.u32_max_value = u32::MAX;
    }

    fn mark_reg64_unbounded(&mut self) {
        self.smin_value = i64::MIN;
        self.smax_value = i64::MAX;
        self.umin_value = 0;
        self.umax_value = u64::MAX;
    }

    /// `__update_reg32_bounds`: tighten the 32-bit ranges from the tnum.
    fn update_reg32_bounds(&mut self) {
        let v = self.var_off.subreg();
        let (val, mask) = (v.value as u32, v.mask as u32);
        self.s32_min_value = self.s32_min_value.max((val | (mask & 0x8000_0000)) as i32);
        self.s32_max_value = self.s32_max_value.min((val | (mask & 0x7fff_ffff)) as i32);
        self.u32_min_value = self.u32_min_value.max(val);
        self.u32_max_value = self.u32_max_value.min(val | mask);
    }

    /// `__update_reg64_bounds`.
    fn update_reg64_bounds(&mut self) {
        let (val, mask) = (self.var_off.value, self.var_off.mask);
        self.smin_value = self.smin_value.max((val | (mask & (1 << 63))) as i64);
        self.smax_value = self.smax_value.min((val | (mask & !(1 << 63))) as i64);
        self.umin_value = self.umin_value.max(val);
        self.umax_value = self.umax_value.min(val | mask);
    }

    fn update_reg_bounds(&mut self) {
        self.update_reg32_bounds();
        self.update_reg64_bounds();
    }

    /// `__reg32_deduce_bounds`: learn 32-bit ranges from the 64-bit ones and from each other.
    fn reg32_deduce_bounds(&mut self) {
        // The upper halves of the 64-bit range do not change: the lower halves are a range.
        if self.umin_value >> 32 == self.umax_value >> 32 {
            self.u32_min_value = self.u32_min_value.max(self.umin_value as u32);
            self.u32_max_value = self.u32_max_value.min(self.umax_value as u32);
            if (self.umin_value as i32) <= (self.umax_value as i32) {
                self.s32_min_value = self.s32_min_value.max(self.umin_value as i32);
                self.s32_max_value = self.s32_max_value.min(self.umax_value as i32);
            }
        }
        if self.smin_value >> 32 == self.smax_value >> 32 {
            self.u32_min_value = self.u32_min_value.max(self.smin_value as u32);
            self.u32_max_value = self.u32_max_value.min(self.smax_value as u32);
            if (self.smin_value as i32) <= (self.smax_value as i32) {
                self.s32_min_value = self.s32_min_value.max(self.smin_value as i32);
                self.s32_max_value = self.s32_max_value.min(self.smax_value as i32);
            }
        }
        // Upper halves are two consecutive numbers and the low halves wrap from negative to
        // non-negative: the low halves still form one s32 range.
        if ((self.umin_value >> 32) as u32).wrapping_add(1) == (self.umax_value >> 32) as u32
            && (self.umin_value as i32) < 0
            && (self.umax_value as i32) >= 0
        {
            self.s32_min_value = self.s32_min_value.max(self.umin_value as i32);
            self.s32_max_value = self.s32_max_value.min(self.umax_value as i32);
        }
        if ((self.smin_value >> 32) as u32).wrapping_add(1) == (self.smax_value >> 32) as u32
            && (self.smin_value as i32) < 0
            && (self.smax_value as i32) >= 0
        {
            self.s32_min_value = self.s32_min_value.max(self.smin_value as i32);
            self.s32_max_value = self.s32_max_value.min(self.smax_value as i32);
        }
        // A u32 range that does not cross the sign boundary is also an s32 range.
        if (self.u32_min_value as i32) <= (self.u32_max_value as i32) {
            self.s32_min_value = self.s32_min_value.max(self.u32_min_value as i32);
            self.s32_max_value = self.s32_max_value.min(self.u32_max_value as i32);
        }
        if (self.s32_min_value as u32) <= (self.s32_max_value as u32) {
            self.u32_min_value = self.u32_min_value.max(self.s32_min_value as u32);
            self.u32_max_value = self.u32_max_value.min(self.s32_max_value as u32);
        } else if self.u32_max_value < self.s32_min_value as u32 {
            // The s32 range crosses zero and the u32 range lies below its negative part:
            // only the non-negative part remains.
            self.s32_min_value = self.u32_min_value as i32;
            self.u32_max_value = self.u32_max_value.min(self.s32_max_value as u32);
        } else if (self.s32_max_value as u32) < self.u32_min_value {
            // ... or above its non-negative part: only the negative part remains.
            self.s32_max_value = self.u32_max_value as i32;
            self.u32_min_value = self.u32_min_value.max(self.s32_min_value as u32);
        }
    }

    /// `__reg64_deduce_bounds`.
    fn reg64_deduce_bounds(&mut self) {
        if (self.umin_value as i64) <= (self.umax_value as i64) {
            self.smin_value = self.smin_value.max(self.umin_value as i64);
            self.smax_value = self.smax_value.min(self.umax_value as i64);
        }
        if (self.smin_value as u64) <= (self.smax_value as u64) {
            self.umin_value = self.umin_value.max(self.smin_value as u64);
            self.umax_value = self.umax_value.min(self.smax_value as u64);
        } else if self.umax_value < self.smin_value as u64 {
            // The signed range crosses zero, but the unsigned one says "non-negative".
            self.smin_value = self.umin_value as i64;
            self.umax_value = self.umax_value.min(self.smax_value as u64);
        } else if (self.smax_value as u64) < self.umin_value {
            // ... or says "negative".
            self.smax_value = self.umax_value as i64;
            self.umin_value = self.umin_value.max(self.smin_value as u64);
        }
    }

    /// `__reg_deduce_mixed_bounds`: 32-bit knowledge into the 64-bit ranges.
    fn reg_deduce_mixed_bounds(&mut self) {
        let new_umin = (self.umin_value & !0xffff_ffff) | self.u32_min_value as u64;
        let new_umax = (self.umax_value & !0xffff_ffff) | self.u32_max_value as u64;
        self.umin_value = self.umin_value.max(new_umin);
        self.umax_value = self.umax_value.min(new_umax);
        let new_smin = ((self.smin_value as u64 & !0xffff_ffff) | self.u32_min_value as u64) as i64;
        let new_smax = ((self.smax_value as u64 & !0xffff_ffff) | self.u32_max_value as u64) as i64;
        self.smin_value = self.smin_value.max(new_smin);
        self.smax_value = self.smax_value.min(new_smax);
        // After a sign-extending load the upper bits are all 0s or all 1s.
        if self.s32_min_value >= 0
            && self.smin_value >= i32::MIN as i64
            && self.smax_value <= i32::MAX as i64
        {
            self.smin_value = self.s32_min_value as i64;
            self.smax_value = self.s32_max_value as i64;
            self.umin_value = self.s32_min_value as u64;
            self.umax_value = self.s32_max_value as u64;
            self.var_off = self
                .var_off
                .intersect(Tnum::range(self.smin_value as u64, self.smax_value as u64));
        }
    }

    fn reg_deduce_bounds(&mut self) {
        self.reg32_deduce_bounds();
        self.reg64_deduce_bounds();
        self.reg_deduce_mixed_bounds();
    }

    /// `__reg_bound_offset`: learn bits from the ranges.
    fn reg_bound_offset(&mut self) {
        let var64 = self
            .var_off
            .intersect(Tnum::range(self.umin_value, self.umax_value));
        let var32 = var64.subreg().intersect(Tnum::range(
            self.u32_min_value as u64,
            self.u32_max_value as u64,
        ));
        self.var_off = var64.clear_subreg().or(var32);
    }

    /// `reg_bounds_sync`: make the tnum and the four ranges agree as far as possible.
    pub fn sync(&mut self) {
        if self.is_empty() {
            // Nothing to learn from an impossible value; callers check `is_empty` first.
            return;
        }
        self.update_reg_bounds();
        self.reg_deduce_bounds();
        self.reg_deduce_bounds();
        self.reg_bound_offset();
        self.update_reg_bounds();
    }

    /// `zext_32_to_64` / `__reg_assign_32_into_64`: the result of a 32-bit ALU operation.
    pub fn zext_32_to_64(&mut self) {
        self.var_off = self.var_off.subreg();
        self.umin_value = self.u32_min_value as u64;
        self.umax_value = self.u32_max_value as u64;
        if self.s32_min_value >= 0 && self.s32_max_value >= 0 {
            self.smax_value = self.s32_max_value as i64;
        } else {
            self.smax_value = u32::MAX as i64;
        }
        if self.s32_min_value >= 0 {
            self.smin_value = self.s32_min_value as i64;
        } else {
            self.smin_value = 0;
        }
    }

    /// `coerce_reg_to_size`: keep the low `size` bytes, zero-extended.
    pub fn coerce_to_size(&mut self, size: u8) {
        if size >= 8 {
            return;
        }
        let mask = (1u64 << (size as u32 * 8)) - 1;
        self.var_off = self.var_off.cast(size);
        if self.umin_value & !mask == self.umax_value & !mask {
            self.umin_value &= mask;
            self.umax_value &= mask;
        } else {
            self.umin_value = 0;
            self.umax_value = mask;
        }
        self.smin_value = self.umin_value as i64;
        self.smax_value = self.umax_value as i64;
        // The low 32 bits keep their ranges when exactly they are kept.
        if size < 4 {
            self.mark_reg32_unbounded();
        }
        self.sync();
    }

    /// Sign-extension of the low `size` bytes to 64 bits (`coerce_reg_to_size_sx`), for
    /// `movsx` and sign-extending loads.
    pub fn sign_extend_64(&mut self, size: u8) {
        let bits = size as u32 * 8;
        if bits >= 64 {
            return;
        }
        let low = self.var_off.cast(size);
        if low.is_const() {
            let v = sext(low.value, bits);
            *self = Scalar::constant(v as u64);
            return;
        }
        // If the sign bit is known, the tnum extends exactly.
        let sign = 1u64 << (bits - 1);
        let hi = !((1u64 << bits) - 1);
        let mut out = Scalar::unknown();
        if low.mask & sign == 0 {
            out.var_off = if low.value & sign != 0 {
                Tnum::new(low.value | hi, low.mask)
            } else {
                low
            };
        } else {
            // Unknown sign: every upper bit is unknown too.
            out.var_off = Tnum::new(low.value, low.mask | hi);
        }
        // If the low bits' range (as unsigned) stays on one side of the sign bit, map it.
        let (lmin, lmax) = if self.umin_value >> bits == self.umax_value >> bits {
            (
                self.umin_value & ((1u64 << bits) - 1),
                self.umax_value & ((1u64 << bits) - 1),
            )
        } else {
            (0, (1u64 << bits) - 1)
        };
        if (lmin & sign) == (lmax & sign) {
            out.smin_value = sext(lmin, bits);
            out.smax_value = sext(lmax, bits);
        } else {
            out.smin_value = -(sign as i64);
            out.smax_value = (sign - 1) as i64;
        }
        out.sync();
        *self = out;
    }

    /// Sign-extension of the low `size` bytes into the low 32 bits, upper 32 bits zero (the
    /// 32-bit `movsx`).
    pub fn sign_extend_32(&mut self, size: u8) {
        let mut s = *self;
        s.sign_extend_64(size);
        // Keep the low 32 bits of the sign-extended value, zero-extended.
        s.coerce_to_size(4);
        *self = s;
    }

    /// Applies a scalar ALU operation (`adjust_scalar_min_max_vals`). `src` is the second
    /// operand (for `Neg` it is ignored; the caller passes anything).
    pub fn alu(&mut self, op: AluOp, width: Width, src: &Scalar) {
        let alu32 = width == Width::W32;
        let bitness = if alu32 { 32 } else { 64 };
        let src_const = if alu32 {
            src.is_const32()
        } else {
            src.is_const()
        };
        match op {
            // Only translated programs have it; the verifier never decodes them that way.
            AluOp::MovPercpu => {
                *self = Scalar::unknown();
                return;
            }
            AluOp::Mov => {
                *self = *src;
                if alu32 {
                    self.zext_32_to_64();
                    self.sync();
                }
                return;
            }
            AluOp::Movsx(bits) => {
                *self = *src;
                if alu32 {
                    self.sign_extend_32(bits / 8);
                } else {
                    self.sign_extend_64(bits / 8);
                }
                return;
            }
            AluOp::Neg => {
                let zero = Scalar::constant(0);
                let mut r = zero;
                r.alu(AluOp::Sub, width, self);
                *self = r;
                return;
            }
            AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod => {
                // The kernel does not track division at all (is_safe_to_compute_dst_reg_range
                // says no): even `0 % 1` is an unknown scalar, and tracking more than the
                // kernel would accept programs it rejects. A 32-bit one too is a full 64-bit
                // unknown: the kernel returns before its zero-extension step.
                *self = Scalar::unknown();
                return;
            }
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                let shift = if alu32 {
                    src.var_off.value as u32 as u64
                } else {
                    src.var_off.value
                };
                if !src_const || shift >= bitness {
                    // is_safe_to_compute_dst_reg_range says no: a full 64-bit unknown, for a
                    // 32-bit shift too (the kernel returns before zero-extending).
                    *self = Scalar::unknown();
                    return;
                }
                self.shift(op, alu32, shift as u32);
            }
            AluOp::Add => {
                self.var_off = self.var_off.add(src.var_off);
                self.add32(src);
                self.add64(src);
            }
            AluOp::Sub => {
                self.var_off = self.var_off.sub(src.var_off);
                self.sub32(src);
                self.sub64(src);
            }
            AluOp::Mul => {
                self.var_off = self.var_off.mul(src.var_off);
                self.mul32(src);
                self.mul64(src);
            }
            AluOp::And => {
                let both = self.is_const() && src.is_const();
                self.var_off = self.var_off.and(src.var_off);
                if both {
                    *self = Scalar::constant(self.var_off.value);
                } else {
                    self.and_bounds(src);
                }
            }
            AluOp::Or => {
                let both = self.is_const() && src.is_const();
                self.var_off = self.var_off.or(src.var_off);
                if both {
                    *self = Scalar::constant(self.var_off.value);
                } else {
                    self.or_bounds(src);
                }
            }
            AluOp::Xor => {
                self.var_off = self.var_off.xor(src.var_off);
                if self.var_off.is_const() {
                    *self = Scalar::constant(self.var_off.value);
                } else {
                    self.xor_bounds();
                }
            }
        }
        if alu32 {
            self.zext_32_to_64();
        }
        self.sync();
    }

    /// `scalar{,32}_min_max_and` (after the tnum is updated).
    fn and_bounds(&mut self, src: &Scalar) {
        self.u32_min_value = self.var_off.value as u32;
        self.u32_max_value = self.u32_max_value.min(src.u32_max_value);
        self.s32_from_u32();
        self.umin_value = self.var_off.value;
        self.umax_value = self.umax_value.min(src.umax_value);
        self.s64_from_u64();
        self.update_reg_bounds();
    }

    /// `scalar{,32}_min_max_or`.
    fn or_bounds(&mut self, src: &Scalar) {
        let v32 = self.var_off.subreg();
        self.u32_min_value = self.u32_min_value.max(src.u32_min_value);
        self.u32_max_value = (v32.value | v32.mask) as u32;
        self.s32_from_u32();
        self.umin_value = self.umin_value.max(src.umin_value);
        self.umax_value = self.var_off.value | self.var_off.mask;
        self.s64_from_u64();
        self.update_reg_bounds();
    }

    /// `scalar{,32}_min_max_xor`.
    fn xor_bounds(&mut self) {
        let v32 = self.var_off.subreg();
        self.u32_min_value = v32.value as u32;
        self.u32_max_value = (v32.value | v32.mask) as u32;
        self.s32_from_u32();
        self.umin_value = self.var_off.value;
        self.umax_value = self.var_off.value | self.var_off.mask;
        self.s64_from_u64();
        self.update_reg_bounds();
    }

    /// s32 bounds from u32 bounds when the u32 range does not cross the sign boundary.
    fn s32_from_u32(&mut self) {
        if (self.u32_min_value as i32) <= (self.u32_max_value as i32) {
            self.s32_min_value = self.u32_min_value as i32;
            self.s32_max_value = self.u32_max_value as i32;
        } else {
            self.s32_min_value = i32::MIN;
            self.s32_max_value = i32::MAX;
        }
    }

    fn s64_from_u64(&mut self) {
        if (self.umin_value as i64) <= (self.umax_value as i64) {
            self.smin_value = self.umin_value as i64;
            self.smax_value = self.umax_value as i64;
        } else {
            self.smin_value = i64::MIN;
            self.smax_value = i64::MAX;
        }
    }

    /// `scalar32_min_max_add`.
    fn add32(&mut self, src: &Scalar) {
        match (
            self.s32_min_value.checked_add(src.s32_min_value),
            self.s32_max_value.checked_add(src.s32_max_value),
        ) {
            (Some(a), Some(b)) => {
                self.s32_min_value = a;
                self.s32_max_value = b;
            }
            _ => {
                self.s32_min_value = i32::MIN;
                self.s32_max_value = i32::MAX;
            }
        }
        let (lo, lo_of) = self.u32_min_value.overflowing_add(src.u32_min_value);
        let (hi, hi_of) = self.u32_max_value.overflowing_add(src.u32_max_value);
        if lo_of == hi_of {
            self.u32_min_value = lo;
            self.u32_max_value = hi;
        } else {
            self.u32_min_value = 0;
            self.u32_max_value = u32::MAX;
        }
    }

    /// `scalar_min_max_add`.
    fn add64(&mut self, src: &Scalar) {
        match (
            self.smin_value.checked_add(src.smin_value),
            self.smax_value.checked_add(src.smax_value),
        ) {
            (Some(a), Some(b)) => {
                self.smin_value = a;
                self.smax_value = b;
            }
            _ => {
                self.smin_value = i64::MIN;
                self.smax_value = i64::MAX;
            }
        }
        let (lo, lo_of) = self.umin_value.overflowing_add(src.umin_value);
        let (hi, hi_of) = self.umax_value.overflowing_add(src.umax_value);
        if lo_of == hi_of {
            self.umin_value = lo;
            self.umax_value = hi;
        } else {
            self.umin_value = 0;
            self.umax_value = u64::MAX;
        }
    }

    /// `scalar32_min_max_sub`.
    fn sub32(&mut self, src: &Scalar) {
        match (
            self.s32_min_value.checked_sub(src.s32_max_value),
            self.s32_max_value.checked_sub(src.s32_min_value),
        ) {
            (Some(a), Some(b)) => {
                self.s32_min_value = a;
                self.s32_max_value = b;
            }
            _ => {
                self.s32_min_value = i32::MIN;
                self.s32_max_value = i32::MAX;
            }
        }
        let (lo, lo_uf) = self.u32_min_value.overflowing_sub(src.u32_max_value);
        let (hi, hi_uf) = self.u32_max_value.overflowing_sub(src.u32_min_value);
        if lo_uf == hi_uf {
            self.u32_min_value = lo;
            self.u32_max_value = hi;
        } else {
            self.u32_min_value = 0;
            self.u32_max_value = u32::MAX;
        }
    }

    /// `scalar_min_max_sub`.
    fn sub64(&mut self, src: &Scalar) {
        match (
            self.smin_value.checked_sub(src.smax_value),
            self.smax_value.checked_sub(src.smin_value),
        ) {
            (Some(a), Some(b)) => {
                self.smin_value = a;
                self.smax_value = b;
            }
            _ => {
                self.smin_value = i64::MIN;
                self.smax_value = i64::MAX;
            }
        }
        let (lo, lo_uf) = self.umin_value.overflowing_sub(src.umax_value);
        let (hi, hi_uf) = self.umax_value.overflowing_sub(src.umin_value);
        if lo_uf == hi_uf {
            self.umin_value = lo;
            self.umax_value = hi;
        } else {
            self.umin_value = 0;
            self.umax_value = u64::MAX;
        }
    }

    /// `scalar32_min_max_mul`.
    fn mul32(&mut self, src: &Scalar) {
        match (
            self.u32_max_value.checked_mul(src.u32_max_value),
            self.u32_min_value.checked_mul(src.u32_min_value),
        ) {
            (Some(hi), Some(lo)) => {
                self.u32_min_value = lo;
                self.u32_max_value = hi;
            }
            _ => {
                self.u32_min_value = 0;
                self.u32_max_value = u32::MAX;
            }
        }
        let prods = [
            self.s32_min_value.checked_mul(src.s32_min_value),
            self.s32_min_value.checked_mul(src.s32_max_value),
            self.s32_max_value.checked_mul(src.s32_min_value),
            self.s32_max_value.checked_mul(src.s32_max_value),
        ];
        if prods.iter().all(Option::is_some) {
            let p = prods.map(|p| p.unwrap_or(0));
            self.s32_min_value = p.iter().copied().min().unwrap_or(i32::MIN);
            self.s32_max_value = p.iter().copied().max().unwrap_or(i32::MAX);
        } else {
            self.s32_min_value = i32::MIN;
            self.s32_max_value = i32::MAX;
        }
    }

    /// `scalar_min_max_mul`.
    fn mul64(&mut self, src: &Scalar) {
        match (
            self.umax_value.checked_mul(src.umax_value),
            self.umin_value.checked_mul(src.umin_value),
        ) {
            (Some(hi), Some(lo)) => {
                self.umin_value = lo;
                self.umax_value = hi;
            }
            _ => {
                self.umin_value = 0;
                self.umax_value = u64::MAX;
            }
        }
        let prods = [
            self.smin_value.checked_mul(src.smin_value),
            self.smin_value.checked_mul(src.smax_value),
            self.smax_value.checked_mul(src.smin_value),
            self.smax_value.checked_mul(src.smax_value),
        ];
        if prods.iter().all(Option::is_some) {
            let p = prods.map(|p| p.unwrap_or(0));
            self.smin_value = p.iter().copied().min().unwrap_or(i64::MIN);
            self.smax_value = p.iter().copied().max().unwrap_or(i64::MAX);
        } else {
            self.smin_value = i64::MIN;
            self.smax_value = i64::MAX;
        }
    }

    /// Constant shifts (`scalar{,32}_min_max_{lsh,rsh,arsh}`).
    fn shift(&mut self, op: AluOp, alu32: bool, sh: u32) {
        if alu32 {
            let sub = self.var_off.subreg();
            match op {
                AluOp::Lsh => {
                    self.s32_min_value = i32::MIN;
                    self.s32_max_value = i32::MAX;
                    if self.u32_max_value as u64 > 1u64 << (31 - sh) {
                        self.u32_min_value = 0;
                        self.u32_max_value = u32::MAX;
                    } else {
                        self.u32_min_value <<= sh;
                        self.u32_max_value <<= sh;
                    }
                    self.var_off = sub.lshift(sh).subreg();
                }
                AluOp::Rsh => {
                    self.s32_min_value = i32::MIN;
                    self.s32_max_value = i32::MAX;
                    self.u32_min_value >>= sh;
                    self.u32_max_value >>= sh;
                    self.var_off = sub.rshift(sh);
                }
                _ => {
                    self.s32_min_value >>= sh;
                    self.s32_max_value >>= sh;
                    self.u32_min_value = 0;
                    self.u32_max_value = u32::MAX;
                    self.var_off = sub.arshift(sh, 32);
                }
            }
            self.mark_reg64_unbounded();
            self.update_reg32_bounds();
            return;
        }
        match op {
            AluOp::Lsh => {
                // `<<32` of a non-negative s32 range is the common sign-extension idiom.
                self.smax_value = if sh == 32 && self.s32_max_value >= 0 {
                    (self.s32_max_value as i64) << 32
                } else {
                    i64::MAX
                };
                self.smin_value = if sh == 32 && self.s32_min_value >= 0 {
                    (self.s32_min_value as i64) << 32
                } else {
                    i64::MIN
                };
                if self.umax_value > 1u64 << (63 - sh) {
                    self.umin_value = 0;
                    self.umax_value = u64::MAX;
                } else {
                    self.umin_value <<= sh;
                    self.umax_value <<= sh;
                }
                self.var_off = self.var_off.lshift(sh);
                self.mark_reg32_unbounded();
            }
            AluOp::Rsh => {
                self.smin_value = i64::MIN;
                self.smax_value = i64::MAX;
                self.var_off = self.var_off.rshift(sh);
                self.umin_value >>= sh;
                self.umax_value >>= sh;
                self.mark_reg32_unbounded();
            }
            _ => {
                self.smin_value >>= sh;
                self.smax_value >>= sh;
                self.var_off = self.var_off.arshift(sh, 64);
                self.umin_value = 0;
                self.umax_value = u64::MAX;
                self.mark_reg32_unbounded();
            }
        }
        self.update_reg_bounds();
    }

    /// Byte swap of the low `bits` (`le`/`be`/`bswap`): the kernel knows the result only when
    /// the input is a constant, and otherwise keeps only the width.
    pub fn endian(&mut self, swap: bool, bits: u8) {
        let bytes = bits / 8;
        if self.is_const() {
            let v = self.var_off.value;
            let r = match (swap, bits) {
                (true, 16) => (v as u16).swap_bytes() as u64,
                (true, 32) => (v as u32).swap_bytes() as u64,
                (true, _) => v.swap_bytes(),
                (false, 16) => v as u16 as u64,
                (false, 32) => v as u32 as u64,
                (false, _) => v,
            };
            *self = Scalar::constant(r);
            return;
        }
        if swap {
            *self = Scalar::of_size(bytes);
        } else {
            self.coerce_to_size(bytes);
        }
    }

    /// `is_scalar_branch_taken`: whether `self cond other` is decided by the ranges.
    pub fn branch_taken(&self, other: &Scalar, cond: JmpCond, width: Width) -> Taken {
        let w32 = width == Width::W32;
        let (t1, t2) = if w32 {
            (self.var_off.subreg(), other.var_off.subreg())
        } else {
            (self.var_off, other.var_off)
        };
        let (umin1, umax1, umin2, umax2) = if w32 {
            (
                self.u32_min_value as u64,
                self.u32_max_value as u64,
                other.u32_min_value as u64,
                other.u32_max_value as u64,
            )
        } else {
            (
                self.umin_value,
                self.umax_value,
                other.umin_value,
                other.umax_value,
            )
        };
        let (smin1, smax1, smin2, smax2) = if w32 {
            (
                self.s32_min_value as i64,
                self.s32_max_value as i64,
                other.s32_min_value as i64,
                other.s32_max_value as i64,
            )
        } else {
            (
                self.smin_value,
                self.smax_value,
                other.smin_value,
                other.smax_value,
            )
        };
        let yes = |b: bool| if b { Taken::Always } else { Taken::Never };
        match cond {
            JmpCond::Eq | JmpCond::Ne => {
                let eq = if t1.is_const() && t2.is_const() {
                    Some(t1.value == t2.value)
                } else if umin1 > umax2
                    || umax1 < umin2
                    || smin1 > smax2
                    || smax1 < smin2
                    || (t1.value ^ t2.value) & !(t1.mask | t2.mask) != 0
                    || (!w32
                        && (self.u32_min_value > other.u32_max_value
                            || self.u32_max_value < other.u32_min_value
                            || self.s32_min_value > other.s32_max_value
                            || self.s32_max_value < other.s32_min_value))
                {
                    Some(false)
                } else {
                    None
                };
                match eq {
                    Some(e) => yes(e == (cond == JmpCond::Eq)),
                    None => Taken::Unknown,
                }
            }
            JmpCond::Set => {
                let (a, b) = if t2.is_const() {
                    (t1, t2)
                } else if t1.is_const() {
                    (t2, t1)
                } else {
                    return Taken::Unknown;
                };
                if a.value & b.value != 0 {
                    Taken::Always
                } else if (a.value | a.mask) & b.value == 0 {
                    Taken::Never
                } else {
                    Taken::Unknown
                }
            }
            JmpCond::Gt => decide(umin1 > umax2, umax1 <= umin2),
            JmpCond::Ge => decide(umin1 >= umax2, umax1 < umin2),
            JmpCond::Lt => decide(umax1 < umin2, umin1 >= umax2),
            JmpCond::Le => decide(umax1 <= umin2, umin1 > umax2),
            JmpCond::Sgt => decide(smin1 > smax2, smax1 <= smin2),
            JmpCond::Sge => decide(smin1 >= smax2, smax1 < smin2),
            JmpCond::Slt => decide(smax1 < smin2, smin1 >= smax2),
            JmpCond::Sle => decide(smax1 <= smin2, smin1 > smax2),
        }
    }
}

fn decide(always: bool, never: bool) -> Taken {
    if always {
        Taken::Always
    } else if never {
        Taken::Never
    } else {
        Taken::Unknown
    }
}

fn sext(v: u64, bits: u32) -> i64 {
    let sh = 64 - bits;
    ((v << sh) as i64) >> sh
}

/// Division and modulo of constants with the BPF semantics (x/0 = 0, x%0 = x, signed
/// overflow wraps).
fn const_div_mod(op: AluOp, alu32: bool, a: u64, b: u64) -> Option<u64> {
    Some(if alu32 {
        let (a, b) = (a as u32, b as u32);
        (match op {
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::Mod => a.checked_rem(b).unwrap_or(a),
            AluOp::Sdiv => {
                if b == 0 {
                    0
                } else {
                    (a as i32).wrapping_div(b as i32) as u32
                }
            }
            _ => {
                if b == 0 {
                    a
                } else {
                    (a as i32).wrapping_rem(b as i32) as u32
                }
            }
        }) as u64
    } else {
        match op {
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::Mod => a.checked_rem(b).unwrap_or(a),
            AluOp::Sdiv => {
                if b == 0 {
                    0
                } else {
                    (a as i64).wrapping_div(b as i64) as u64
                }
            }
            _ => {
                if b == 0 {
                    a
                } else {
                    (a as i64).wrapping_rem(b as i64) as u64
                }
            }
        }
    })
}

/// The reversed condition (`rev_opcode`): the condition that holds on the fall-through path.
pub fn negate(cond: JmpCond) -> Option<JmpCond> {
    Some(match cond {
        JmpCond::Eq => JmpCond::Ne,
        JmpCond::Ne => JmpCond::Eq,
        JmpCond::Gt => JmpCond::Le,
        JmpCond::Ge => JmpCond::Lt,
        JmpCond::Lt => JmpCond::Ge,
        JmpCond::Le => JmpCond::Gt,
        JmpCond::Sgt => JmpCond::Sle,
        JmpCond::Sge => JmpCond::Slt,
        JmpCond::Slt => JmpCond::Sge,
        JmpCond::Sle => JmpCond::Sgt,
        // "not set" has no opcode; `refine` handles it as `Set` with `negated`.
        JmpCond::Set => return None,
    })
}

/// The condition with its operands swapped (`flip_opcode`).
pub fn flip(cond: JmpCond) -> JmpCond {
    match cond {
        JmpCond::Gt => JmpCond::Lt,
        JmpCond::Ge => JmpCond::Le,
        JmpCond::Lt => JmpCond::Gt,
        JmpCond::Le => JmpCond::Ge,
        JmpCond::Sgt => JmpCond::Slt,
        JmpCond::Sge => JmpCond::Sle,
        JmpCond::Slt => JmpCond::Sgt,
        JmpCond::Sle => JmpCond::Sge,
        c => c,
    }
}

/// `regs_refine_cond_op` + `reg_bounds_sync`: narrows `a` and `b` assuming `a cond b` holds
/// (`holds == true`) or does not hold. Returns `false` if that is impossible (the branch is
/// dead).
pub fn refine(a: &mut Scalar, b: &mut Scalar, cond: JmpCond, width: Width, holds: bool) -> bool {
    let w32 = width == Width::W32;
    if cond == JmpCond::Set {
        refine_jset(a, b, w32, holds);
    } else {
        let c = if holds {
            cond
        } else {
            match negate(cond) {
                Some(c) => c,
                None => return true,
            }
        };
        // GT/GE/SGT/SGE become LT/LE/SLT/SLE with swapped operands.
        match c {
            JmpCond::Gt | JmpCond::Ge | JmpCond::Sgt | JmpCond::Sge => {
                refine_op(b, a, flip(c), w32)
            }
            _ => refine_op(a, b, c, w32),
        }
    }
    if a.is_empty() || b.is_empty() {
        return false;
    }
    a.sync();
    b.sync();
    !(a.is_empty() || b.is_empty())
}

fn refine_jset(a: &mut Scalar, b: &mut Scalar, w32: bool, holds: bool) {
    let (r, k) = if if w32 { b.is_const32() } else { b.is_const() } {
        (a, *b)
    } else if if w32 { a.is_const32() } else { a.is_const() } {
        (b, *a)
    } else {
        return;
    };
    let val = if w32 {
        k.var_off.value as u32 as u64
    } else {
        k.var_off.value
    };
    if holds {
        // Only a single tested bit is learned to be set.
        if val.is_power_of_two() {
            if w32 {
                let t = r.var_off.subreg().or(Tnum::constant(val));
                r.var_off = r.var_off.with_subreg(t);
            } else {
                r.var_off = r.var_off.or(Tnum::constant(val));
            }
        }
    } else if w32 {
        let t = r.var_off.subreg().and(Tnum::constant(!val));
        r.var_off = r.var_off.with_subreg(t);
    } else {
        r.var_off = r.var_off.and(Tnum::constant(!val));
    }
    r.update_reg_bounds();
}

fn refine_op(a: &mut Scalar, b: &mut Scalar, c: JmpCond, w32: bool) {
    match c {
        JmpCond::Eq => {
            if w32 {
                let umin = a.u32_min_value.max(b.u32_min_value);
                let umax = a.u32_max_value.min(b.u32_max_value);
                let smin = a.s32_min_value.max(b.s32_min_value);
                let smax = a.s32_max_value.min(b.s32_max_value);
                let t = a.var_off.subreg().intersect(b.var_off.subreg());
                for r in [&mut *a, &mut *b] {
                    r.u32_min_value = umin;
                    r.u32_max_value = umax;
                    r.s32_min_value = smin;
                    r.s32_max_value = smax;
                    r.var_off = r.var_off.with_subreg(t);
                }
                // Conflicting known bits mean no value satisfies both.
                let (x, y) = (a.var_off.subreg(), b.var_off.subreg());
                if (x.value ^ y.value) & !(x.mask | y.mask) != 0 {
                    a.u32_min_value = 1;
                    a.u32_max_value = 0;
                }
            } else {
                let conflict =
                    (a.var_off.value ^ b.var_off.value) & !(a.var_off.mask | b.var_off.mask) != 0;
                let umin = a.umin_value.max(b.umin_value);
                let umax = a.umax_value.min(b.umax_value);
                let smin = a.smin_value.max(b.smin_value);
                let smax = a.smax_value.min(b.smax_value);
                let t = a.var_off.intersect(b.var_off);
                for r in [&mut *a, &mut *b] {
                    r.umin_value = umin;
                    r.umax_value = umax;
                    r.smin_value = smin;
                    r.smax_value = smax;
                    r.var_off = t;
                }
                if conflict {
                    a.umin_value = 1;
                    a.umax_value = 0;
                }
            }
        }
        JmpCond::Ne => {
            let (r, k) = if if w32 { b.is_const32() } else { b.is_const() } {
                (a, *b)
            } else if if w32 { a.is_const32() } else { a.is_const() } {
                (b, *a)
            } else {
                return;
            };
            // A constant at the edge of the range shrinks the range by one.
            if w32 {
                let v = k.var_off.value as u32;
                if r.u32_min_value == v {
                    r.u32_min_value = r.u32_min_value.wrapping_add(1);
                    if v == u32::MAX {
                        r.u32_max_value = 0;
                    }
                }
                if r.u32_max_value == v {
                    r.u32_max_value = r.u32_max_value.wrapping_sub(1);
                    if v == 0 {
                        r.u32_min_value = 1;
                    }
                }
                if r.s32_min_value == v as i32 {
                    if v as i32 == i32::MAX {
                        r.s32_max_value = i32::MIN;
                    }
                    r.s32_min_value = r.s32_min_value.wrapping_add(1);
                }
                if r.s32_max_value == v as i32 {
                    if v as i32 == i32::MIN {
                        r.s32_min_value = i32::MAX;
                    }
                    r.s32_max_value = r.s32_max_value.wrapping_sub(1);
                }
            } else {
                let v = k.var_off.value;
                if r.umin_value == v {
                    if v == u64::MAX {
                        r.umax_value = 0;
                    }
                    r.umin_value = r.umin_value.wrapping_add(1);
                }
                if r.umax_value == v {
                    if v == 0 {
                        r.umin_value = 1;
                    }
                    r.umax_value = r.umax_value.wrapping_sub(1);
                }
                if r.smin_value == v as i64 {
                    if v as i64 == i64::MAX {
                        r.smax_value = i64::MIN;
                    }
                    r.smin_value = r.smin_value.wrapping_add(1);
                }
                if r.smax_value == v as i64 {
                    if v as i64 == i64::MIN {
                        r.smin_value = i64::MAX;
                    }
                    r.smax_value = r.smax_value.wrapping_sub(1);
                }
            }
        }
        JmpCond::Le | JmpCond::Lt => {
            let strict = c == JmpCond::Lt;
            if w32 {
                let bmax = if strict {
                    b.u32_max_value.checked_sub(1)
                } else {
                    Some(b.u32_max_value)
                };
                let amin = if strict {
                    a.u32_min_value.checked_add(1)
                } else {
                    Some(a.u32_min_value)
                };
                match (bmax, amin) {
                    (Some(bmax), Some(amin)) => {
                        a.u32_max_value = a.u32_max_value.min(bmax);
                        b.u32_min_value = b.u32_min_value.max(amin);
                    }
                    _ => {
                        a.u32_min_value = 1;
                        a.u32_max_value = 0;
                    }
                }
            } else {
                let bmax = if strict {
                    b.umax_value.checked_sub(1)
                } else {
                    Some(b.umax_value)
                };
                let amin = if strict {
                    a.umin_value.checked_add(1)
                } else {
                    Some(a.umin_value)
                };
                match (bmax, amin) {
                    (Some(bmax), Some(amin)) => {
                        a.umax_value = a.umax_value.min(bmax);
                        b.umin_value = b.umin_value.max(amin);
                    }
                    _ => {
                        a.umin_value = 1;
                        a.umax_value = 0;
                    }
                }
            }
        }
        JmpCond::Sle | JmpCond::Slt => {
            let strict = c == JmpCond::Slt;
            if w32 {
                let bmax = if strict {
                    b.s32_max_value.checked_sub(1)
                } else {
                    Some(b.s32_max_value)
                };
                let amin = if strict {
                    a.s32_min_value.checked_add(1)
                } else {
                    Some(a.s32_min_value)
                };
                match (bmax, amin) {
                    (Some(bmax), Some(amin)) => {
                        a.s32_max_value = a.s32_max_value.min(bmax);
                        b.s32_min_value = b.s32_min_value.max(amin);
                    }
                    _ => {
                        a.s32_min_value = 1;
                        a.s32_max_value = 0;
                    }
                }
            } else {
                let bmax = if strict {
                    b.smax_value.checked_sub(1)
                } else {
                    Some(b.smax_value)
                };
                let amin = if strict {
                    a.smin_value.checked_add(1)
                } else {
                    Some(a.smin_value)
                };
                match (bmax, amin) {
                    (Some(bmax), Some(amin)) => {
                        a.smax_value = a.smax_value.min(bmax);
                        b.smin_value = b.smin_value.max(amin);
                    }
                    _ => {
                        a.smin_value = 1;
                        a.smax_value = 0;
                    }
                }
            }
        }
        // GT/GE/SGT/SGE are flipped by the caller; SET is handled separately.
        _ => {}
    }
}

/// Concrete evaluation of a condition, for tests and for constant folding.
pub fn eval_cond(cond: JmpCond, width: Width, a: u64, b: u64) -> bool {
    let (a, b) = if width == Width::W32 {
        (a as u32 as u64, b as u32 as u64)
    } else {
        (a, b)
    };
    let (sa, sb) = if width == Width::W32 {
        (a as u32 as i32 as i64, b as u32 as i32 as i64)
    } else {
        (a as i64, b as i64)
    };
    match cond {
        JmpCond::Eq => a == b,
        JmpCond::Ne => a != b,
        JmpCond::Gt => a > b,
        JmpCond::Ge => a >= b,
        JmpCond::Lt => a < b,
        JmpCond::Le => a <= b,
        JmpCond::Sgt => sa > sb,
        JmpCond::Sge => sa >= sb,
        JmpCond::Slt => sa < sb,
        JmpCond::Sle => sa <= sb,
        JmpCond::Set => a & b != 0,
    }
}

/// Concrete evaluation of an ALU operation with the BPF semantics, for tests.
pub fn eval_alu(op: AluOp, width: Width, a: u64, b: u64) -> u64 {
    let w32 = width == Width::W32;
    let r = match op {
        AluOp::MovPercpu => b,
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod => {
            return const_div_mod(op, w32, a, b).unwrap_or(0);
        }
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => {
            if w32 {
                ((a as u32) << (b & 31)) as u64
            } else {
                a << (b & 63)
            }
        }
        AluOp::Rsh => {
            if w32 {
                ((a as u32) >> (b & 31)) as u64
            } else {
                a >> (b & 63)
            }
        }
        AluOp::Arsh => {
            if w32 {
                ((a as u32 as i32) >> (b & 31)) as u32 as u64
            } else {
                ((a as i64) >> (b & 63)) as u64
            }
        }
        AluOp::Neg => a.wrapping_neg(),
        AluOp::Mov => b,
        AluOp::Movsx(bits) => {
            let v = sext(b, bits as u32) as u64;
            if w32 { v as u32 as u64 } else { v }
        }
    };
    if w32 { r as u32 as u64 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A random scalar built the way the verifier builds them (from constants, ranges and
    /// operations), together with one concrete member.
    fn scalar_and_member() -> impl Strategy<Value = (Scalar, u64)> {
        (any::<u64>(), any::<u64>(), any::<u64>(), 0u8..6).prop_map(|(x, a, b, kind)| {
            let s = match kind {
                0 => Scalar::constant(x),
                1 => Scalar::unknown(),
                2 => {
                    // unsigned range around x
                    let lo = x.saturating_sub(a % 1000);
                    let hi = x.saturating_add(b % 1000);
                    Scalar::unsigned_range(lo, hi)
                }
                3 => {
                    // signed range around x
                    let mut s = Scalar::unknown();
                    s.smin_value = (x as i64).saturating_sub((a % 5000) as i64);
                    s.smax_value = (x as i64).saturating_add((b % 5000) as i64);
                    s.sync();
                    s
                }
                4 => {
                    // a tnum containing x
                    let mut s = Scalar::unknown();
                    s.var_off = Tnum::new(x, a & b);
                    s.sync();
                    s
                }
                _ => {
                    // 32-bit range
                    let mut s = Scalar::unknown();
                    s.u32_min_value = (x as u32).saturating_sub(a as u32 % 300);
                    s.u32_max_value = (x as u32).saturating_add(b as u32 % 300);
                    s.umax_value = u32::MAX as u64 | (x & !0xffff_ffff);
                    s.umin_value = x & !0xffff_ffff;
                    s.sync();
                    s
                }
            };
            (s, x)
        })
    }

    fn alu_op() -> impl Strategy<Value = AluOp> {
        prop_oneof![
            Just(AluOp::Add),
            Just(AluOp::Sub),
            Just(AluOp::Mul),
            Just(AluOp::Div),
            Just(AluOp::Sdiv),
            Just(AluOp::Mod),
            Just(AluOp::Smod),
            Just(AluOp::Or),
            Just(AluOp::And),
            Just(AluOp::Xor),
            Just(AluOp::Lsh),
            Just(AluOp::Rsh),
            Just(AluOp::Arsh),
            Just(AluOp::Neg),
            Just(AluOp::Mov),
            Just(AluOp::Movsx(8)),
            Just(AluOp::Movsx(16)),
            Just(AluOp::Movsx(32)),
        ]
    }

    fn cond() -> impl Strategy<Value = JmpCond> {
        prop_oneof![
            Just(JmpCond::Eq),
            Just(JmpCond::Ne),
            Just(JmpCond::Gt),
            Just(JmpCond::Ge),
            Just(JmpCond::Lt),
            Just(JmpCond::Le),
            Just(JmpCond::Sgt),
            Just(JmpCond::Sge),
            Just(JmpCond::Slt),
            Just(JmpCond::Sle),
            Just(JmpCond::Set),
        ]
    }

    #[test]
    fn constants_fold() {
        let mut a = Scalar::constant(5);
        a.alu(AluOp::Add, Width::W64, &Scalar::constant(7));
        assert_eq!(a, Scalar::constant(12));
        let mut b = Scalar::constant(u64::MAX);
        b.alu(AluOp::Add, Width::W32, &Scalar::constant(1));
        assert_eq!(b, Scalar::constant(0));
        let mut c = Scalar::of_size(1);
        assert_eq!((c.umin_value, c.umax_value), (0, 255));
        c.alu(AluOp::Lsh, Width::W64, &Scalar::constant(2));
        assert_eq!((c.umin_value, c.umax_value), (0, 1020));
        assert_eq!(c.var_off, Tnum::new(0, 0x3fc));
    }

    #[test]
    fn branch_refines_ranges() {
        let mut a = Scalar::unknown();
        let mut k = Scalar::constant(10);
        assert!(refine(&mut a, &mut k, JmpCond::Gt, Width::W64, false));
        assert_eq!((a.umin_value, a.umax_value), (0, 10));
        assert_eq!(
            a.branch_taken(&Scalar::constant(11), JmpCond::Lt, Width::W64),
            Taken::Always
        );
        let mut z = Scalar::constant(0);
        let mut k = Scalar::constant(0);
        assert!(!refine(&mut z, &mut k, JmpCond::Ne, Width::W64, true));
    }

    /// `signed_unsigned_intersection32_case2`: u32 [0, S32_MIN + 3] and s32 [-3, 5] leave
    /// only [0, 5] (the s32 range crosses zero, the u32 one excludes its negative part).
    #[test]
    fn crossing_s32_range_meets_u32_range() {
        let mut w = Scalar::of_size(4);
        let w32 = Width::W32;
        assert!(refine(
            &mut w,
            &mut Scalar::constant(0x8000_0003),
            JmpCond::Gt,
            w32,
            false
        ));
        assert!(refine(
            &mut w,
            &mut Scalar::constant(-3i64 as u64),
            JmpCond::Slt,
            w32,
            false
        ));
        assert!(refine(
            &mut w,
            &mut Scalar::constant(5),
            JmpCond::Sgt,
            w32,
            false
        ));
        assert_eq!((w.u32_min_value, w.u32_max_value), (0, 5));
        assert_eq!((w.s32_min_value, w.s32_max_value), (0, 5));
        assert_eq!(
            w.branch_taken(&Scalar::constant(5), JmpCond::Le, w32),
            Taken::Always
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn alu_is_sound((a, x) in scalar_and_member(), (b, y) in scalar_and_member(),
                        op in alu_op(), w32 in any::<bool>()) {
            let width = if w32 { Width::W32 } else { Width::W64 };
            let mut r = a;
            r.alu(op, width, &b);
            let want = eval_alu(op, width, x, y);
            prop_assert!(r.contains(want), "{:?} {:?} {:?} {:?}: {:#x} {:#x} -> {:#x} not in {:?}",
                op, width, a, b, x, y, want, r);
        }

        #[test]
        fn endian_is_sound((a, x) in scalar_and_member(), swap in any::<bool>(), bits in prop_oneof![Just(16u8), Just(32), Just(64)]) {
            let mut r = a;
            r.endian(swap, bits);
            let want = match (swap, bits) {
                (true, 16) => (x as u16).swap_bytes() as u64,
                (true, 32) => (x as u32).swap_bytes() as u64,
                (true, _) => x.swap_bytes(),
                (false, 16) => x as u16 as u64,
                (false, 32) => x as u32 as u64,
                (false, _) => x,
            };
            prop_assert!(r.contains(want));
        }

        #[test]
        fn branches_are_sound((a, x) in scalar_and_member(), (b, y) in scalar_and_member(),
                              c in cond(), w32 in any::<bool>()) {
            let width = if w32 { Width::W32 } else { Width::W64 };
            let truth = eval_cond(c, width, x, y);
            match a.branch_taken(&b, c, width) {
                Taken::Always => prop_assert!(truth),
                Taken::Never => prop_assert!(!truth),
                Taken::Unknown => {}
            }
            let (mut ra, mut rb) = (a, b);
            let alive = refine(&mut ra, &mut rb, c, width, truth);
            prop_assert!(alive, "branch with {:#x} {:?} {:#x} judged dead: {:?} {:?}", x, c, y, a, b);
            prop_assert!(ra.contains(x), "{:?} {:?}: {:#x} lost from {:?} -> {:?}", c, width, x, a, ra);
            prop_assert!(rb.contains(y), "{:?} {:?}: {:#x} lost from {:?} -> {:?}", c, width, y, b, rb);
        }
    }
}

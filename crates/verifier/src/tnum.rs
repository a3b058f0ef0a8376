//! Tristate numbers (`struct tnum` of the kernel's `kernel/bpf/tnum.c`): a 64-bit value where
//! each bit is known 0, known 1, or unknown.
//!
//! A tnum is `(value, mask)`: bits set in `mask` are unknown, the others equal the bits of
//! `value` (and `value & mask == 0`). The set of concrete numbers a tnum stands for is every
//! `x` with `x & !mask == value`. Every operation here is *sound*: for concrete inputs contained
//! in the abstract inputs, the concrete result is contained in the abstract result (checked by
//! the proptests below).

use std::fmt;

/// A tristate number: `value` holds the known bits, `mask` marks the unknown ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tnum {
    /// Known bit values (zero where unknown).
    pub value: u64,
    /// Unknown bits.
    pub mask: u64,
}

impl fmt::Debug for Tnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(0x{:x}; 0x{:x})", self.value, self.mask)
    }
}

impl Tnum {
    /// Every bit unknown (`tnum_unknown`).
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// A fully known constant (`tnum_const`).
    pub const fn constant(value: u64) -> Tnum {
        Tnum { value, mask: 0 }
    }

    /// A raw constructor; the caller guarantees `value & mask == 0`.
    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum {
            value: value & !mask,
            mask,
        }
    }

    /// The smallest tnum containing every number in `min..=max` (`tnum_range`): the bits above
    /// the highest bit where `min` and `max` differ are known.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum::new(min & !delta, delta)
    }

    /// Whether every bit is known (`tnum_is_const`).
    pub const fn is_const(self) -> bool {
        self.mask == 0
    }

    /// Whether nothing is known (`tnum_is_unknown`).
    pub const fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// Whether the constant `v` is described by this tnum (`tnum_equals_const` when const).
    pub const fn contains(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    /// Whether every number in `b` is also in `self` (`tnum_in(a, b)`).
    pub const fn includes(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        self.value == b.value & !self.mask
    }

    /// Smallest and largest unsigned values.
    pub const fn umin(self) -> u64 {
        self.value
    }

    /// Largest unsigned value.
    pub const fn umax(self) -> u64 {
        self.value | self.mask
    }

    /// Smallest signed value: the sign bit set if it may be.
    pub const fn smin(self) -> i64 {
        if self.mask & (1 << 63) != 0 {
            (self.value | (self.mask & (1 << 63))) as i64
        } else {
            self.value as i64
        }
    }

    /// Largest signed value.
    pub const fn smax(self) -> i64 {
        if self.mask & (1 << 63) != 0 {
            (self.value | (self.mask & !(1 << 63))) as i64
        } else {
            (self.value | self.mask) as i64
        }
    }

    /// `tnum_lshift`.
    pub const fn lshift(self, shift: u32) -> Tnum {
        Tnum::new(self.value << shift, self.mask << shift)
    }

    /// `tnum_rshift` (logical).
    pub const fn rshift(self, shift: u32) -> Tnum {
        Tnum::new(self.value >> shift, self.mask >> shift)
    }

    /// `tnum_arshift`: arithmetic shift at 32 or 64 bits; the 32-bit form sign-extends from
    /// bit 31 and leaves the result in the low half (the caller zero-extends).
    pub const fn arshift(self, shift: u32, bitness: u8) -> Tnum {
        if bitness == 32 {
            Tnum::new(
                (((self.value as u32 as i32) >> shift) as u32) as u64,
                (((self.mask as u32 as i32) >> shift) as u32) as u64,
            )
        } else {
            Tnum::new(
                ((self.value as i64) >> shift) as u64,
                ((self.mask as i64) >> shift) as u64,
            )
        }
    }

    /// `tnum_add`: carries out of unknown bits make the bits they can reach unknown.
    pub const fn add(self, b: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(b.mask);
        let sv = self.value.wrapping_add(b.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | b.mask;
        Tnum::new(sv & !mu, mu)
    }

    /// `tnum_sub`.
    pub const fn sub(self, b: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(b.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(b.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | b.mask;
        Tnum::new(dv & !mu, mu)
    }

    /// `tnum_neg`: `0 - a`.
    pub const fn neg(self) -> Tnum {
        Tnum::constant(0).sub(self)
    }

    /// `tnum_and`.
    pub const fn and(self, b: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = b.value | b.mask;
        let v = self.value & b.value;
        Tnum::new(v, alpha & beta & !v)
    }

    /// `tnum_or`.
    pub const fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask | b.mask;
        Tnum::new(v, mu & !v)
    }

    /// `tnum_xor`.
    pub const fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let mu = self.mask | b.mask;
        Tnum::new(v & !mu, mu)
    }

    /// `tnum_mul`: long multiplication, one bit of `self` at a time; a known 1 adds `b`, an
    /// unknown bit adds "`b` or 0", which is `(0; b.value | b.mask)`.
    pub const fn mul(self, b: Tnum) -> Tnum {
        let mut a = self;
        let mut b = b;
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::constant(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum::new(0, b.mask));
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum::new(0, b.value | b.mask));
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        // acc_v holds the product of the known parts; add the uncertainty accumulated.
        Tnum::constant(acc_v).add(acc_m)
    }

    /// `tnum_intersect`: what both tnums know (they are assumed to describe the same value).
    pub const fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask & b.mask;
        Tnum::new(v & !mu, mu)
    }

    /// The smallest tnum containing both (`tnum_union`).
    pub const fn union(self, b: Tnum) -> Tnum {
        let mu = self.mask | b.mask | (self.value ^ b.value);
        Tnum::new(self.value & !mu, mu)
    }

    /// `tnum_cast`: keep the low `size` bytes.
    pub const fn cast(self, size: u8) -> Tnum {
        if size >= 8 {
            return self;
        }
        let m = (1u64 << (size as u32 * 8)) - 1;
        Tnum::new(self.value & m, self.mask & m)
    }

    /// Whether every value is a multiple of `size` (`tnum_is_aligned`).
    pub const fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }

    /// The low 32 bits (`tnum_subreg`).
    pub const fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The high 32 bits kept, low 32 bits cleared (`tnum_clear_subreg`).
    pub const fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    /// High half of `self` with the low half of `sub` (`tnum_with_subreg`).
    pub const fn with_subreg(self, sub: Tnum) -> Tnum {
        self.clear_subreg().or(sub.subreg())
    }

    /// High half of `self` with the low half the constant `v` (`tnum_const_subreg`).
    pub const fn const_subreg(self, v: u32) -> Tnum {
        self.with_subreg(Tnum::constant(v as u64))
    }

    /// Whether the low 32 bits are known.
    pub const fn subreg_is_const(self) -> bool {
        self.mask as u32 == 0
    }

    /// Whether this tnum may hold exactly the values in `x` where `x` has no unknown bits
    /// outside of `self`'s (used by pruning: `tnum_in`).
    pub const fn is_subset_of(self, outer: Tnum) -> bool {
        outer.includes(self)
    }
}

impl fmt::Display for Tnum {
    /// `tnum_strn`: `(0x1; 0xfe)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(0x{:x}; 0x{:x})", self.value, self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A random tnum and a random member of it.
    fn tnum_and_member() -> impl Strategy<Value = (Tnum, u64)> {
        (any::<u64>(), any::<u64>(), any::<u64>(), 0u8..4).prop_map(|(v, m, pick, density)| {
            // Vary how many bits are unknown: sparse masks exercise carries precisely.
            let m = match density {
                0 => m & (m >> 7) & (m >> 13),
                1 => m & (m >> 3),
                2 => m,
                _ => 0,
            };
            let t = Tnum::new(v, m);
            (t, t.value | (pick & t.mask))
        })
    }

    #[test]
    fn basics() {
        assert_eq!(Tnum::range(0, 7), Tnum::new(0, 7));
        assert_eq!(Tnum::range(4, 5), Tnum::new(4, 1));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
        assert!(Tnum::constant(5).is_const());
        let x = Tnum::constant(3).add(Tnum::constant(4));
        assert_eq!(x, Tnum::constant(7));
        assert_eq!(
            Tnum::new(0, 0xff).and(Tnum::constant(0xf)),
            Tnum::new(0, 0xf)
        );
        assert_eq!(Tnum::new(0, 1).mul(Tnum::constant(4)), Tnum::new(0, 4));
        assert_eq!(Tnum::new(0, 0xff).cast(1), Tnum::new(0, 0xff));
        assert!(Tnum::new(0, 0xf0).is_aligned(16));
        assert!(!Tnum::new(0, 0xf1).is_aligned(2));
        assert!(Tnum::new(0, 0xff).includes(Tnum::constant(3)));
        assert!(!Tnum::constant(3).includes(Tnum::new(0, 0xff)));
        assert_eq!(Tnum::new(8, 7).to_string(), "(0x8; 0x7)");
        assert_eq!(
            Tnum::constant(u64::MAX).arshift(4, 64),
            Tnum::constant(u64::MAX)
        );
        assert_eq!(
            Tnum::constant(0x8000_0000).arshift(4, 32),
            Tnum::constant(0xf800_0000)
        );
    }

    proptest! {
        #[test]
        fn ops_are_sound((a, x) in tnum_and_member(), (b, y) in tnum_and_member(), s in 0u32..64) {
            prop_assert!(a.add(b).contains(x.wrapping_add(y)));
            prop_assert!(a.sub(b).contains(x.wrapping_sub(y)));
            prop_assert!(a.mul(b).contains(x.wrapping_mul(y)));
            prop_assert!(a.and(b).contains(x & y));
            prop_assert!(a.or(b).contains(x | y));
            prop_assert!(a.xor(b).contains(x ^ y));
            prop_assert!(a.neg().contains(x.wrapping_neg()));
            prop_assert!(a.lshift(s).contains(x << s));
            prop_assert!(a.rshift(s).contains(x >> s));
            prop_assert!(a.arshift(s, 64).contains(((x as i64) >> s) as u64));
            let s32 = s % 32;
            prop_assert!(a.arshift(s32, 32).contains((((x as u32 as i32) >> s32) as u32) as u64));
            prop_assert!(a.union(b).contains(x) && a.union(b).contains(y));
            for size in [1u8, 2, 4, 8] {
                let m = if size == 8 { u64::MAX } else { (1u64 << (size * 8)) - 1 };
                prop_assert!(a.cast(size).contains(x & m));
            }
            prop_assert!(a.umin() <= x && x <= a.umax());
            prop_assert!(a.smin() <= x as i64 && x as i64 <= a.smax());
            prop_assert!(a.with_subreg(b).contains((x & !0xffff_ffff) | (y & 0xffff_ffff)));
        }

        #[test]
        fn intersect_is_sound((a, x) in tnum_and_member(), m in any::<u64>()) {
            // Another tnum that also contains x.
            let b = Tnum::new(x, m);
            prop_assert!(a.intersect(b).contains(x));
        }

        #[test]
        fn range_is_sound(a in any::<u64>(), b in any::<u64>(), pick in any::<u64>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let t = Tnum::range(lo, hi);
            let x = if hi - lo == u64::MAX { pick } else { lo + pick % (hi - lo + 1) };
            prop_assert!(t.contains(x));
        }
    }
}

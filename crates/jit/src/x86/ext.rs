//! Instructions beyond the x86-64 baseline, emitted only when the CPU that runs the image has
//! them (see `CompileOptions::baseline_isa` and the JIT's feature detection): BMI2's
//! non-destructive rotate `rorx` and `movbe`, a load that swaps bytes on the way.

use super::{Asm, Enc, Rm};

/// The optional instruction-set extensions the JIT uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// BMI2 (`rorx`).
    pub bmi2: bool,
    /// `movbe`.
    pub movbe: bool,
}

impl Features {
    /// What this CPU has.
    pub fn host() -> Features {
        #[cfg(target_arch = "x86_64")]
        {
            Features {
                bmi2: std::arch::is_x86_feature_detected!("bmi2"),
                movbe: std::arch::is_x86_feature_detected!("movbe"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Features::default()
        }
    }
}

impl Asm {
    /// `rorx dst, src, imm` (BMI2): `dst = src` rotated right by `imm`, flags untouched
    /// (`w`: 64-bit, else 32-bit with zero-extension).
    pub fn rorx(&mut self, w: bool, dst: u8, src: u8, imm: u8) {
        // VEX.LZ.F2.0F3A.W{0,1} F0 /r ib; R and B inverted, no index (X inverted = 1).
        let r = ((dst >> 3) & 1) ^ 1;
        let b = ((src >> 3) & 1) ^ 1;
        self.byte(0xc4);
        self.byte((r << 7) | (1 << 6) | (b << 5) | 0b00011);
        self.byte((u8::from(w) << 7) | (0b1111 << 3) | 0b11);
        self.byte(0xf0);
        self.byte(0xc0 | ((dst & 7) << 3) | (src & 7));
        self.byte(imm);
    }

    /// `movbe dst, [base + disp]`: a 32-bit (zero-extended) or 64-bit load, byte-swapped.
    pub fn movbe_load(&mut self, w: bool, dst: u8, base: u8, disp: i32) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x0f, 0x38, 0xf0], dst, Rm::Mem { base, disp });
    }
}

#[cfg(test)]
mod tests {
    use crate::x86::tests::enc;
    use crate::x86::*;

    // Expected bytes checked with llvm-mc.
    #[test]
    fn extension_forms() {
        assert_eq!(
            enc(|a| a.rorx(false, RSI, RDX, 18)),
            [0xc4, 0xe3, 0x7b, 0xf0, 0xf2, 0x12]
        );
        assert_eq!(
            enc(|a| a.rorx(false, R11, R15, 5)),
            [0xc4, 0x43, 0x7b, 0xf0, 0xdf, 0x05]
        );
        assert_eq!(
            enc(|a| a.rorx(true, RAX, R9, 3)),
            [0xc4, 0xc3, 0xfb, 0xf0, 0xc1, 0x03]
        );
        assert_eq!(
            enc(|a| a.movbe_load(false, R9, RSI, 26)),
            [0x44, 0x0f, 0x38, 0xf0, 0x4e, 0x1a]
        );
        assert_eq!(
            enc(|a| a.movbe_load(false, RAX, R13, 0)),
            [0x41, 0x0f, 0x38, 0xf0, 0x45, 0x00]
        );
        assert_eq!(
            enc(|a| a.movbe_load(true, RCX, R12, 8)),
            [0x49, 0x0f, 0x38, 0xf0, 0x4c, 0x24, 0x08]
        );
    }
}

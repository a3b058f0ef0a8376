//! Compares and tests of 8-, 16- and 32-bit memory operands against an immediate: the forms
//! that let a packet field be compared where it lies instead of loaded into a register first
//! (a big-endian half-word without swapping it, see the JIT's `fold32` peepholes; a byte or
//! word whose register nothing reads afterwards, see `peephole::load_compare`).

use super::{Alu, Asm, Enc, Rm, is_imm8};

impl Asm {
    /// `cmp word [base + disp], imm16` (the sign-extended 8-bit form when it fits).
    pub fn cmp_m16_i(&mut self, base: u8, disp: i32, imm: u16) {
        let e = Enc {
            p66: true,
            ..Enc::default()
        };
        let m = Rm::Mem { base, disp };
        let v = imm as i16;
        if is_imm8(v as i64) {
            self.inst(e, &[0x83], Alu::Cmp.digit(), m);
            self.byte(v as i8 as u8);
        } else {
            self.inst(e, &[0x81], Alu::Cmp.digit(), m);
            self.imm16(v);
        }
    }

    /// `cmp byte [base + disp], imm8`.
    pub fn cmp_m8_i(&mut self, base: u8, disp: i32, imm: u8) {
        self.inst(
            Enc::default(),
            &[0x80],
            Alu::Cmp.digit(),
            Rm::Mem { base, disp },
        );
        self.byte(imm);
    }

    /// `test byte [base + disp], imm8`.
    pub fn test_m8_i(&mut self, base: u8, disp: i32, imm: u8) {
        self.inst(Enc::default(), &[0xf6], 0, Rm::Mem { base, disp });
        self.byte(imm);
    }

    /// `cmp dword [base + disp], imm32` (the sign-extended 8-bit form when it fits).
    pub fn cmp_m32_i(&mut self, base: u8, disp: i32, imm: u32) {
        let m = Rm::Mem { base, disp };
        let v = imm as i32;
        if is_imm8(v as i64) {
            self.inst(Enc::default(), &[0x83], Alu::Cmp.digit(), m);
            self.byte(v as i8 as u8);
        } else {
            self.inst(Enc::default(), &[0x81], Alu::Cmp.digit(), m);
            self.imm32(v);
        }
    }

    /// `test dword [base + disp], imm32`.
    pub fn test_m32_i(&mut self, base: u8, disp: i32, imm: u32) {
        self.inst(Enc::default(), &[0xf7], 0, Rm::Mem { base, disp });
        self.imm32(imm as i32);
    }

    /// `test word [base + disp], imm16`.
    pub fn test_m16_i(&mut self, base: u8, disp: i32, imm: u16) {
        let e = Enc {
            p66: true,
            ..Enc::default()
        };
        self.inst(e, &[0xf7], 0, Rm::Mem { base, disp });
        self.imm16(imm as i16);
    }
}

#[cfg(test)]
mod tests {
    use crate::x86::tests::enc;
    use crate::x86::*;

    // Expected bytes checked with llvm-mc.
    #[test]
    fn word_memory_forms() {
        // cmpw $0x8, 0xc(%rsi)
        assert_eq!(
            enc(|a| a.cmp_m16_i(RSI, 12, 0x0008)),
            [0x66, 0x83, 0x7e, 0x0c, 0x08]
        );
        // cmpw $0x3412, (%r12)
        assert_eq!(
            enc(|a| a.cmp_m16_i(R12, 0, 0x3412)),
            [0x66, 0x41, 0x81, 0x3c, 0x24, 0x12, 0x34]
        );
        // cmpw $0xff80, 0x0(%r13): -128 fits imm8
        assert_eq!(
            enc(|a| a.cmp_m16_i(R13, 0, 0xff80)),
            [0x66, 0x41, 0x83, 0x7d, 0x00, 0x80]
        );
        // testw $0xff1f, 0x14(%rsi)
        assert_eq!(
            enc(|a| a.test_m16_i(RSI, 20, 0xff1f)),
            [0x66, 0xf7, 0x46, 0x14, 0x1f, 0xff]
        );
    }

    // Expected bytes from llvm-mc-19 -show-encoding.
    #[test]
    fn byte_and_dword_memory_forms() {
        assert_eq!(enc(|a| a.cmp_m8_i(RSI, 23, 6)), [0x80, 0x7e, 0x17, 0x06]);
        assert_eq!(
            enc(|a| a.cmp_m8_i(R12, 0, 0x80)),
            [0x41, 0x80, 0x3c, 0x24, 0x80]
        );
        assert_eq!(
            enc(|a| a.test_m8_i(R13, 5, 0x40)),
            [0x41, 0xf6, 0x45, 0x05, 0x40]
        );
        assert_eq!(enc(|a| a.cmp_m32_i(RSI, 23, 6)), [0x83, 0x7e, 0x17, 0x06]);
        assert_eq!(
            enc(|a| a.cmp_m32_i(RDI, 256, 0x12345)),
            [0x81, 0xbf, 0x00, 0x01, 0x00, 0x00, 0x45, 0x23, 0x01, 0x00]
        );
        assert_eq!(
            enc(|a| a.test_m32_i(RDI, 256, 0x12345)),
            [0xf7, 0x87, 0x00, 0x01, 0x00, 0x00, 0x45, 0x23, 0x01, 0x00]
        );
        assert_eq!(
            enc(|a| a.test_m32_i(RSI, 0, 1)),
            [0xf7, 0x06, 0x01, 0x00, 0x00, 0x00]
        );
    }
}

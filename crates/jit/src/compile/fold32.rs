//! Peepholes that rest on the register facts of [`super::dataflow`]: the 32-bit arithmetic
//! BPF programs write in 64-bit instructions, done in x86's 32-bit registers (whose every
//! write zero-extends), and big-endian half-words compared where they lie in memory.
//!
//! - a 64-bit op followed by `w X = w X` is the op's 32-bit form, when the op's low 32 bits
//!   depend only on the low 32 bits of its operands (add, sub, mul, and, or, xor, neg, mov,
//!   left shift by a constant below 32);
//! - `w X = w X` (or `X <<= 32; X >>= 32`) on an X already known zero-extended is nothing;
//! - the 64-bit rotate clang and hand-written hashes use for `rol32`,
//!   `X = Y; X <<= k; T = Y; T >>= 32-k; X |= T; w X = w X` (the halves in either order), is
//!   one 32-bit `rol` when Y's upper half is known zero, and T is only computed if it is
//!   still live;
//! - `R = *(u16 *)(B + off); R = be16 R; [R &= M;] if R op K goto L` (op `==`, `!=` or `&`)
//!   compares the half-word in memory with the byte-swapped constant, when R is dead after
//!   the jump; a `be16` of a loaded half-word that is not compared is `movzx` + `ror`;
//! - `X = Y; X *= K` is one three-operand `imul X, Y, K` (not a 32-bit matter, but the same
//!   kind of pairing);
//! - two adjacent big-endian half-words joined into one 32-bit value (a TCP/UDP port pair:
//!   `R = be16 *(u16 *)(B + o); S = be16 *(u16 *)(B + o + 2); R <<= 16; R |= S`) are one
//!   big-endian word, `mov R32, [B + o]; bswap R32` (and S's own load and swap only if S
//!   is still live);
//! - where the CPU has them (`x86::Features`), a rotate is one `rorx` (no `mov` first) and a
//!   loaded `be32`/`be64` one `movbe`.
//!
//! Like every peephole (see [`super::peephole`]), each run lies inside one basic block, and
//! each leaves every live register and memory exactly as the instruction-by-instruction
//! code would: `tests/fold32.rs` runs every shape, with its near misses, on both engines.

use kbpf_isa::decode::{AluOp, Endian, Instruction, JmpCond, Size, Source, Width};

use super::dataflow::bit;
use super::peephole::alu;
use super::{Emitter, cond};
use crate::x86::Shift;

/// An ALU op whose low 32 result bits depend only on the low 32 bits of its operands.
fn low_half_op(op: AluOp, src: Source) -> bool {
    match op {
        AluOp::Add
        | AluOp::Sub
        | AluOp::Mul
        | AluOp::And
        | AluOp::Or
        | AluOp::Xor
        | AluOp::Neg
        | AluOp::Mov => true,
        AluOp::Lsh => matches!(src, Source::Imm(k) if k & 63 < 32),
        _ => false,
    }
}

impl Emitter<'_> {
    /// Emits one of this module's peepholes at `prog[i]` if one applies; returns how many
    /// instructions it consumed (0: none applies).
    pub(super) fn fold32(&mut self, i: usize, end: usize) -> usize {
        self.rotate64(i, end)
            .or_else(|| self.mov_then_mul(i, end))
            .or_else(|| self.be16_pair(i, end))
            .or_else(|| self.be16_compare(i, end))
            .or_else(|| self.load_be16(i, end))
            .or_else(|| self.load_be32_64(i, end))
            .or_else(|| self.narrow_then_zext(i, end))
            .or_else(|| self.redundant_zext(i, end))
            .unwrap_or(0)
    }

    /// Whether no jump lands on any of `prog[i + 1..i + n]`, and they exist.
    pub(super) fn straight(&self, i: usize, n: usize, end: usize) -> bool {
        i + n <= end
            && self.prog[i + 1..i + n]
                .iter()
                .all(|&(p, _)| self.landings(p) == 0)
    }

    /// `X = Y; X *= K` (either width, the same for both) as one three-operand
    /// `imul X, Y, K`.
    fn mov_then_mul(&mut self, i: usize, end: usize) -> Option<usize> {
        if !self.straight(i, 2, end) {
            return None;
        }
        match (alu(self.prog[i].1)?, alu(self.prog[i + 1].1)?) {
            ((w, AluOp::Mov, x, Source::Reg(y)), (w2, AluOp::Mul, x2, Source::Imm(k)))
                if w == w2 && x == x2 =>
            {
                let (rx, ry) = (self.regs[x as usize], self.regs[y as usize]);
                self.asm.imul_rri(w == Width::W64, rx, ry, k);
                Some(2)
            }
            _ => None,
        }
    }

    /// `op X, S (64-bit); w X = w X` as `op X32, S32`.
    fn narrow_then_zext(&mut self, i: usize, end: usize) -> Option<usize> {
        if !self.straight(i, 2, end) {
            return None;
        }
        let (pc, a) = self.prog[i];
        let (Width::W64, op, x, src) = alu(a)? else {
            return None;
        };
        let (Width::W32, AluOp::Mov, x2, Source::Reg(x3)) = alu(self.prog[i + 1].1)? else {
            return None;
        };
        if x2 != x || x3 != x || !low_half_op(op, src) {
            return None;
        }
        self.alu(pc, false, op, self.regs[x as usize], src).ok()?;
        Some(2)
    }

    /// `w X = w X` (or `X <<= 32; X >>= 32`) where X's upper half is known zero: nothing;
    /// the shift pair on an X not known zero-extended: one `mov X32, X32`.
    fn redundant_zext(&mut self, i: usize, end: usize) -> Option<usize> {
        let x_known = |x: u8| self.facts.zext_in[i] & bit(x) != 0;
        let a = alu(self.prog[i].1)?;
        if let (Width::W32, AluOp::Mov, x, Source::Reg(x2)) = a
            && x == x2
            && x_known(x)
        {
            return Some(1);
        }
        if !self.straight(i, 2, end) {
            return None;
        }
        match (a, alu(self.prog[i + 1].1)?) {
            (
                (Width::W64, AluOp::Lsh, x, Source::Imm(32)),
                (Width::W64, AluOp::Rsh, x2, Source::Imm(32)),
            ) if x == x2 => {
                if !x_known(x) {
                    let r = self.regs[x as usize];
                    self.asm.mov_rr(false, r, r);
                }
                Some(2)
            }
            _ => None,
        }
    }

    /// The 64-bit `rol32` shape (module docs) as `[mov T32, Y32; shr T32, 32-k;]
    /// mov X32, Y32; rol X32, k`.
    fn rotate64(&mut self, i: usize, end: usize) -> Option<usize> {
        if !self.straight(i, 6, end) {
            return None;
        }
        let ops: Vec<_> = self.prog[i..i + 6]
            .iter()
            .map(|&(_, ins)| alu(ins))
            .collect::<Option<_>>()?;
        // `D = Y; D op= n` with D != Y and 0 < n < 32.
        let half = |m: (Width, AluOp, u8, Source), s: (Width, AluOp, u8, Source)| match (m, s) {
            (
                (Width::W64, AluOp::Mov, d, Source::Reg(y)),
                (Width::W64, op @ (AluOp::Lsh | AluOp::Rsh), d2, Source::Imm(n)),
            ) if d == d2 && d != y && (1..32).contains(&n) => Some((op, d, y, n)),
            _ => None,
        };
        let (h1, h2) = (half(ops[0], ops[1])?, half(ops[2], ops[3])?);
        let ((_, x, y, k), (_, t, y2, r)) = match (h1.0, h2.0) {
            (AluOp::Lsh, AluOp::Rsh) => (h1, h2),
            (AluOp::Rsh, AluOp::Lsh) => (h2, h1),
            _ => return None,
        };
        let (Width::W64, AluOp::Or, x4, Source::Reg(t4)) = ops[4] else {
            return None;
        };
        let (Width::W32, AluOp::Mov, x5, Source::Reg(x6)) = ops[5] else {
            return None;
        };
        let y_zext = self.facts.zext_in[i] & bit(y) != 0;
        if x == t || y != y2 || k + r != 32 || (x4, t4, x5, x6) != (x, t, x, x) || !y_zext {
            return None;
        }
        let (rx, ry, rt) = (
            self.regs[x as usize],
            self.regs[y as usize],
            self.regs[t as usize],
        );
        if self.facts.live_out[i + 5] & bit(t) != 0 {
            self.asm.mov_rr(false, rt, ry);
            self.asm.shift_ri(false, Shift::Shr, rt, r as u8);
        }
        self.rol32(rx, ry, k as u8);
        Some(6)
    }

    /// A loaded, byte-swapped half-word compared with a constant (module docs), as
    /// `cmp`/`test word [B + off], swapped` and the jump.
    fn be16_compare(&mut self, i: usize, end: usize) -> Option<usize> {
        let (r, base, off) = self.loaded_be16(i, end)?;
        let mask = match self.prog.get(i + 2).and_then(|&(_, ins)| alu(ins)) {
            Some((_, AluOp::And, r2, Source::Imm(m))) if r2 == r => Some(m as u16),
            _ => None,
        };
        let n = 3 + usize::from(mask.is_some());
        if !self.straight(i, n, end) {
            return None;
        }
        let (pj, jmp) = self.prog[i + n - 1];
        let Instruction::Jmp {
            cond: c,
            dst,
            src: Source::Imm(k),
            ..
        } = jmp
        else {
            return None;
        };
        if dst != r || self.facts.live_out[i + n - 1] & bit(r) != 0 {
            return None;
        }
        let t = usize::try_from(jmp.branch_target(pj)?).ok()?;
        let b = self.regs[base as usize];
        let off = off as i32;
        match (c, mask) {
            // (V & M) & K != 0; V is 16 bits, so only K's low half matters.
            (JmpCond::Set, m) => {
                let bits = m.unwrap_or(u16::MAX) & k as u16;
                self.asm.test_m16_i(b, off, bits.swap_bytes());
            }
            (JmpCond::Eq | JmpCond::Ne, None) if (0..=0xffff).contains(&k) => {
                self.asm.cmp_m16_i(b, off, (k as u16).swap_bytes());
            }
            (JmpCond::Eq | JmpCond::Ne, Some(m)) if k == 0 => {
                self.asm.test_m16_i(b, off, m.swap_bytes());
            }
            _ => return None,
        }
        self.branch(Some(cond(c)), pj, |p| p.insn_start[t]);
        Some(n)
    }

    /// Two adjacent loaded `be16`s joined into one word (module docs) as one load and
    /// `bswap`.
    fn be16_pair(&mut self, i: usize, end: usize) -> Option<usize> {
        if !self.straight(i, 6, end) {
            return None;
        }
        let (r, b, o) = self.loaded_be16(i, end)?;
        let (s, b2, o2) = self.loaded_be16(i + 2, end)?;
        if r == s || r == b || s == b || b2 != b || i32::from(o2) != i32::from(o) + 2 {
            return None;
        }
        match (alu(self.prog[i + 4].1)?, alu(self.prog[i + 5].1)?) {
            ((_, AluOp::Lsh, r2, Source::Imm(16)), (_, AluOp::Or, r3, Source::Reg(s2)))
                if r2 == r && r3 == r && s2 == s => {}
            _ => return None,
        }
        let (rr, rs, rb) = (
            self.regs[r as usize],
            self.regs[s as usize],
            self.regs[b as usize],
        );
        if self.facts.live_out[i + 5] & bit(s) != 0 {
            self.asm
                .load(crate::x86::Width::H, false, rs, rb, i32::from(o2));
            self.asm.ror16_8(rs);
        }
        self.load_swapped(false, rr, rb, i32::from(o));
        Some(6)
    }

    /// `dst32 = rol32(src32, k)`: `rorx` with BMI2, else `mov` + `rol`.
    pub(super) fn rol32(&mut self, dst: u8, src: u8, k: u8) {
        if self.features.bmi2 {
            self.asm.rorx(false, dst, src, 32 - k);
        } else {
            self.asm.mov_rr(false, dst, src);
            self.asm.shift_ri(false, Shift::Rol, dst, k);
        }
    }

    /// `dst = bswap(*(u32 or u64 *)(base + off))` (32-bit: zero-extended): `movbe` where
    /// the CPU has it, else a load and `bswap`.
    fn load_swapped(&mut self, w: bool, dst: u8, base: u8, off: i32) {
        if self.features.movbe {
            self.asm.movbe_load(w, dst, base, off);
        } else {
            let size = if w {
                crate::x86::Width::DW
            } else {
                crate::x86::Width::W
            };
            self.asm.load(size, false, dst, base, off);
            self.asm.bswap(w, dst);
        }
    }

    /// `R = *(u32 *)(B + off); R = be32 R` (or the 64-bit pair) as one `movbe`.
    fn load_be32_64(&mut self, i: usize, end: usize) -> Option<usize> {
        if !self.features.movbe {
            return None;
        }
        let (size, bits, dst, src, off) = self.loaded_swap(i, end)?;
        let w = match (size, bits) {
            (Size::W, 32) => false,
            (Size::DW, 64) => true,
            _ => return None,
        };
        let (rd, rs) = (self.regs[dst as usize], self.regs[src as usize]);
        self.load_swapped(w, rd, rs, i32::from(off));
        Some(2)
    }

    /// `R = *(size *)(B + off); R = be<bits> R` (or `bswap<bits>`) at `prog[i]`:
    /// `(size, bits, R, B, off)`.
    fn loaded_swap(&self, i: usize, end: usize) -> Option<(Size, u8, u8, u8, i16)> {
        if !self.straight(i, 2, end) {
            return None;
        }
        match (self.prog[i].1, self.prog[i + 1].1) {
            (
                Instruction::Load {
                    size,
                    signed: false,
                    dst,
                    src,
                    off,
                },
                Instruction::Endian {
                    kind: Endian::Be | Endian::Bswap,
                    bits,
                    dst: d2,
                },
            ) if d2 == dst => Some((size, bits, dst, src, off)),
            _ => None,
        }
    }

    /// A loaded `be16` (see [`Emitter::loaded_swap`]): `(R, B, off)`.
    fn loaded_be16(&self, i: usize, end: usize) -> Option<(u8, u8, i16)> {
        match self.loaded_swap(i, end)? {
            (Size::H, 16, dst, src, off) => Some((dst, src, off)),
            _ => None,
        }
    }

    /// `R = *(u16 *)(B + off); R = be16 R` as `movzx R32, word [B + off]; ror R16, 8`.
    fn load_be16(&mut self, i: usize, end: usize) -> Option<usize> {
        let (r, base, off) = self.loaded_be16(i, end)?;
        let (rr, rb) = (self.regs[r as usize], self.regs[base as usize]);
        self.asm
            .load(crate::x86::Width::H, false, rr, rb, off as i32);
        self.asm.ror16_8(rr);
        Some(2)
    }
}

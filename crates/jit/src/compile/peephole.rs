//! Peepholes: short runs of BPF instructions emitted as one better x86 sequence with the
//! same effect on every register, memory and control flow. Each applies only inside one
//! basic block — no jump or call lands inside the run except the ones the run itself makes
//! (counted in `Emitter::targets`) — so nothing can observe the difference. The translated
//! program (`xlated`) is unchanged: this is the JIT's business only, as the kernel's JITs
//! have their own (and kbpf's must never change a result: `tests.rs` runs every shape,
//! including the near misses, against the interpreter).

use kbpf_isa::decode::{AluOp, Instruction, JmpCond, Size, Source, Width};

use super::{Emitter, cond};
use crate::JitError;
use crate::x86::{Alu, Cond, Shift};

pub(super) fn alu(ins: Instruction) -> Option<(Width, AluOp, u8, Source)> {
    match ins {
        Instruction::Alu {
            width,
            op,
            dst,
            src,
        } => Some((width, op, dst, src)),
        _ => None,
    }
}

/// Whether `ins` sets r0 without reading it (so r0's value before it is dead).
fn overwrites_r0(ins: Instruction) -> bool {
    match ins {
        Instruction::Alu {
            op: AluOp::Mov,
            dst: 0,
            src,
            ..
        } => !matches!(src, Source::Reg(0)),
        Instruction::LdImm64 { dst: 0, .. } => true,
        _ => false,
    }
}

impl Emitter<'_> {
    /// The number of jumps landing on `pc`.
    pub(super) fn landings(&self, pc: usize) -> u32 {
        self.targets.get(pc).copied().unwrap_or(0)
    }

    /// Emits a peephole starting at `prog[i]` if one applies; returns how many instructions
    /// it consumed (0: none applies).
    pub(super) fn fused(&mut self, i: usize, end: usize) -> Result<usize, JitError> {
        let n = self.fold32(i, end);
        if n != 0 {
            return Ok(n);
        }
        if let Some(n) = self.shift_add(i, end) {
            return Ok(n);
        }
        if let Some(n) = self.set_then_add(i, end) {
            return Ok(n);
        }
        if let Some(n) = self.rotate32(i, end) {
            return Ok(n);
        }
        if let Some(n) = self.array_lookup_null_check(i, end)? {
            return Ok(n);
        }
        if let Some(n) = self.load_compare(i, end) {
            return Ok(n);
        }
        Ok(self.branch_over_goto(i, end))
    }

    /// `X = Y; X <<= k; Y += X` (64-bit, k in 1..=3: how clang multiplies by 3, 5 or 9)
    /// as `mov X, Y; shl X, k; lea Y, [Y + Y * 2^k]`: X gets `Y << k` as before (and not at
    /// all when it is dead), and Y's new value depends on its old one through one `lea`
    /// instead of `shl` + `add` (one cycle off a dependency chain; native -O2 code does the
    /// same).
    fn shift_add(&mut self, i: usize, end: usize) -> Option<usize> {
        if i + 3 > end {
            return None;
        }
        let [(_, a), (p1, b), (p2, c)] = [self.prog[i], self.prog[i + 1], self.prog[i + 2]];
        if self.landings(p1) + self.landings(p2) != 0 {
            return None;
        }
        match (alu(a)?, alu(b)?, alu(c)?) {
            (
                (Width::W64, AluOp::Mov, x, Source::Reg(y)),
                (Width::W64, AluOp::Lsh, x2, Source::Imm(k @ 1..=3)),
                (Width::W64, AluOp::Add, y2, Source::Reg(x3)),
            ) if x != y && x2 == x && x3 == x && y2 == y => {
                let (rx, ry) = (self.regs[x as usize], self.regs[y as usize]);
                // X only if something still reads it (`dataflow` liveness).
                if self.facts.live_out[i + 2] & super::dataflow::bit(x) != 0 {
                    self.asm.mov_rr(true, rx, ry);
                    self.asm.shift_ri(true, Shift::Shl, rx, k as u8);
                }
                self.asm.lea_scaled(ry, ry, ry, k as u8);
                Some(3)
            }
            _ => None,
        }
    }

    /// A register set and then offset by a constant — `X = Y; X += K` (how programs point
    /// at the stack: `r2 = r10; r2 += -4`) and `X = imm64; X += K` (a map address and its
    /// value offset) — as one `lea X, [Y + K]` or one `mov X, imm64 + K`; and
    /// `X = Y; X += K; X += Z` (a header after a variable-length one: `data + 14 + ihl`) as
    /// one `lea X, [Y + Z + K]`.
    fn set_then_add(&mut self, i: usize, end: usize) -> Option<usize> {
        if i + 2 > end {
            return None;
        }
        let [(_, a), (p1, b)] = [self.prog[i], self.prog[i + 1]];
        if self.landings(p1) != 0 {
            return None;
        }
        let (Width::W64, AluOp::Add, x2, Source::Imm(k)) = alu(b)? else {
            return None;
        };
        match a {
            Instruction::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: x,
                src: Source::Reg(y),
            } if x == x2 => {
                let (rx, ry) = (self.regs[x as usize], self.regs[y as usize]);
                // `X += Z` next: the whole address in one three-component `lea`.
                if let Some(&(
                    p2,
                    Instruction::Alu {
                        width: Width::W64,
                        op: AluOp::Add,
                        dst: x3,
                        src: Source::Reg(z),
                    },
                )) = self.prog[..end].get(i + 2)
                    && x3 == x
                    && z != x
                    && self.landings(p2) == 0
                {
                    self.asm.lea_indexed(rx, ry, self.regs[z as usize], k);
                    return Some(3);
                }
                self.asm.lea(rx, ry, k);
                Some(2)
            }
            Instruction::LdImm64 {
                dst: x,
                src,
                imm,
                next_imm,
            } if x == x2 && src != kbpf_isa::decode::Imm64Source::Func => {
                let v = (imm as u32 as u64) | ((next_imm as u32 as u64) << 32);
                self.asm
                    .mov_ri64(self.regs[x as usize], v.wrapping_add(k as i64 as u64));
                Some(2)
            }
            _ => None,
        }
    }

    /// clang's 32-bit rotate, `wA = wX; wA >>= 32-k; wB = wX; wB <<= k; wB |= wA` (jhash's
    /// `rol32`, in either order of the two halves), as `mov; shr` for A and `mov; rol` for
    /// B: both registers end as before, and B's value is one `rol` away from X instead of a
    /// shift and an `or`.
    fn rotate32(&mut self, i: usize, end: usize) -> Option<usize> {
        if i + 5 > end {
            return None;
        }
        let run = &self.prog[i..i + 5];
        if run[1..].iter().any(|&(p, _)| self.landings(p) != 0) {
            return None;
        }
        let ops: Vec<(Width, AluOp, u8, Source)> = run
            .iter()
            .map(|&(_, ins)| alu(ins))
            .collect::<Option<_>>()?;
        if ops.iter().any(|o| o.0 != Width::W32) {
            return None;
        }
        // (A gets X >> (32 - k), B gets X << k) in either order, then B |= A.
        let half = |m: (Width, AluOp, u8, Source), s: (Width, AluOp, u8, Source)| match (m, s) {
            ((_, AluOp::Mov, d, Source::Reg(x)), (_, op, d2, Source::Imm(n)))
                if d == d2 && d != x && (1..32).contains(&n) =>
            {
                Some((op, d, x, n))
            }
            _ => None,
        };
        let (h1, h2) = (half(ops[0], ops[1])?, half(ops[2], ops[3])?);
        let ((_, a, x, r), (_, b, x2, k)) = match (h1.0, h2.0) {
            (AluOp::Rsh, AluOp::Lsh) => (h1, h2),
            (AluOp::Lsh, AluOp::Rsh) => (h2, h1),
            _ => return None,
        };
        let (AluOp::Or, b2, Source::Reg(a2)) = (ops[4].1, ops[4].2, ops[4].3) else {
            return None;
        };
        if x != x2 || a == b || b2 != b || a2 != a || r + k != 32 {
            return None;
        }
        let (ra, rb, rx) = (
            self.regs[a as usize],
            self.regs[b as usize],
            self.regs[x as usize],
        );
        self.asm.mov_rr(false, ra, rx);
        self.asm.shift_ri(false, Shift::Shr, ra, r as u8);
        self.rol32(rb, rx, k as u8);
        Some(5)
    }

    /// `R = *(u8/u16/u32 *)(B + off); if R op K goto L` with `R` read by nothing after the
    /// jump, as `cmp`/`test [B + off], K` and the jump: the field is compared where it lies.
    /// The load zero-extends, so an unsigned compare (or a test) of the narrow field against
    /// `K` is the same as BPF's 64-bit (or 32-bit) one whenever `K` fits the field's width
    /// unsigned; signed compares and other constants keep the general code. (Constant
    /// propagation, `constprop`, is what usually leaves `R` without readers.)
    fn load_compare(&mut self, i: usize, end: usize) -> Option<usize> {
        if !self.straight(i, 2, end) {
            return None;
        }
        let Instruction::Load {
            size,
            signed: false,
            dst: r,
            src: base,
            off,
        } = self.prog[i].1
        else {
            return None;
        };
        let (pj, jmp) = self.prog[i + 1];
        let Instruction::Jmp {
            width,
            cond: c,
            dst,
            src: Source::Imm(k),
            ..
        } = jmp
        else {
            return None;
        };
        if dst != r || self.facts.live_out[i + 1] & super::dataflow::bit(r) != 0 {
            return None;
        }
        let max: u64 = match size {
            Size::B => 0xff,
            Size::H => 0xffff,
            Size::W => 0xffff_ffff,
            Size::DW => return None,
        };
        // K as the compare sees it: sign-extended to 64 bits, or its low 32 bits.
        let k = match width {
            Width::W64 => k as i64 as u64,
            Width::W32 => k as u32 as u64,
        };
        let t = usize::try_from(jmp.branch_target(pj)?).ok()?;
        let b = self.regs[base as usize];
        let off = i32::from(off);
        match c {
            JmpCond::Set => {
                let m = k & max;
                match size {
                    Size::B => self.asm.test_m8_i(b, off, m as u8),
                    Size::H => self.asm.test_m16_i(b, off, m as u16),
                    _ => self.asm.test_m32_i(b, off, m as u32),
                }
            }
            JmpCond::Eq | JmpCond::Ne | JmpCond::Gt | JmpCond::Ge | JmpCond::Lt | JmpCond::Le
                if k <= max =>
            {
                match size {
                    Size::B => self.asm.cmp_m8_i(b, off, k as u8),
                    Size::H => self.asm.cmp_m16_i(b, off, k as u16),
                    _ => self.asm.cmp_m32_i(b, off, k as u32),
                }
            }
            _ => return None,
        }
        self.branch(Some(cond(c)), pj, |p| p.insn_start[t]);
        Some(2)
    }

    /// `if A goto +1; goto L` (the `goto` reached from nowhere else) as one `if !A goto L`:
    /// the shape clang gives a loop's back edge; one taken jump fewer per iteration.
    fn branch_over_goto(&mut self, i: usize, end: usize) -> usize {
        if i + 2 > end {
            return 0;
        }
        let [(p0, a), (p1, b)] = [self.prog[i], self.prog[i + 1]];
        let (
            Instruction::Jmp {
                width,
                cond: c,
                dst,
                src,
                ..
            },
            Instruction::Ja { .. },
        ) = (a, b)
        else {
            return 0;
        };
        if a.branch_target(p0) != Some(p1 as i64 + 1) || self.landings(p1) != 0 {
            return 0;
        }
        let Some(l) = b.branch_target(p1).and_then(|t| usize::try_from(t).ok()) else {
            return 0;
        };
        self.compare(width == Width::W64, c, self.regs[dst as usize], src);
        // The pair's code ends with this jump: `branch` measures from the end of `p1`.
        self.branch(Some(cond(c).negate()), p1, |p| p.insn_start[l]);
        2
    }

    /// The kernel's inlined array lookup (`array_map_gen_lookup`) followed by the program's
    /// null check:
    ///
    /// ```text
    /// if r0 >= N goto Z;  [w0 &= mask;]  r0 <<= k (or *= size);  r0 += rB;  goto C;
    /// Z: r0 = 0;  C: if r0 == 0 goto T
    /// ```
    ///
    /// The non-null path cannot be null (a map value address), so the check folds into the
    /// bound check: `cmp; jae T; [and;] lea r0, [rB + r0 * 2^k]`. Only where `T` sets r0
    /// without reading it (so the 0 it would have seen is dead), and no other jump lands on
    /// `Z` or `C`.
    fn array_lookup_null_check(&mut self, i: usize, end: usize) -> Result<Option<usize>, JitError> {
        let masked = matches!(
            self.prog.get(i + 1).and_then(|&(_, b)| alu(b)),
            Some((_, AluOp::And, 0, Source::Imm(_)))
        );
        let n = if masked { 7 } else { 6 };
        if i + n > end {
            return Ok(None);
        }
        let run: Vec<(usize, Instruction)> = self.prog[i..i + n].to_vec();
        let (p0, bound) = run[0];
        let Instruction::Jmp {
            width: Width::W64,
            cond: JmpCond::Ge,
            dst: 0,
            src: Source::Imm(limit),
            ..
        } = bound
        else {
            return Ok(None);
        };
        let k = usize::from(masked);
        let (pz, zero) = run[k + 4];
        let (pc_null, null) = run[k + 5];
        // The shape, exactly.
        let scale = match alu(run[k + 1].1) {
            Some((Width::W64, AluOp::Lsh, 0, Source::Imm(s @ 0..=3))) => s as u8,
            _ => return Ok(None),
        };
        let Some((Width::W64, AluOp::Add, 0, Source::Reg(base))) = alu(run[k + 2].1) else {
            return Ok(None);
        };
        let (pj, goto) = run[k + 3];
        if base == 0
            || bound.branch_target(p0) != Some(pz as i64)
            || goto.branch_target(pj) != Some(pc_null as i64)
            || !matches!(goto, Instruction::Ja { .. })
            || !matches!(alu(zero), Some((Width::W64, AluOp::Mov, 0, Source::Imm(0))))
        {
            return Ok(None);
        }
        let Instruction::Jmp {
            width: Width::W64,
            cond: JmpCond::Eq,
            dst: 0,
            src: Source::Imm(0),
            ..
        } = null
        else {
            return Ok(None);
        };
        let Some(t) = null
            .branch_target(pc_null)
            .and_then(|t| usize::try_from(t).ok())
        else {
            return Ok(None);
        };
        // Only the run's own jumps land inside it; T forgets r0.
        let inner_ok = run[1..]
            .iter()
            .all(|&(p, _)| self.landings(p) == u32::from(p == pz || p == pc_null));
        let t_ok = self
            .prog
            .iter()
            .find(|&&(p, _)| p == t)
            .is_some_and(|&(_, ins)| overwrites_r0(ins));
        let mask = match (masked, alu(run[1].1)) {
            (false, _) => None,
            (true, Some((w, AluOp::And, 0, Source::Imm(m)))) => Some((w == Width::W64, m)),
            (true, _) => return Ok(None),
        };
        if !inner_ok || !t_ok {
            return Ok(None);
        }
        let (r0, rb) = (self.regs[0], self.regs[base as usize]);
        self.asm.alu_ri(true, Alu::Cmp, r0, limit);
        let rel = self.rel32_to(|p| p.insn_start[t], 6)?;
        self.asm.jcc_rel32(Cond::Ae, rel);
        if let Some((w64, m)) = mask {
            self.asm.alu_ri(w64, Alu::And, r0, m);
        }
        self.asm.lea_scaled(r0, rb, r0, scale);
        Ok(Some(n))
    }
}

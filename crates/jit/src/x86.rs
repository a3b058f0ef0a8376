//! A small x86-64 instruction encoder: exactly the forms the BPF JIT emits, nothing more.
//!
//! Every function appends one machine instruction to an [`Asm`] buffer. Registers are x86
//! register numbers (`RAX` = 0 … `R15` = 15); the encoder adds the REX prefix when a register
//! above 7 is used, when the operation is 64-bit (`REX.W`), or when a byte operation names
//! `spl`/`bpl`/`sil`/`dil` (without REX those encodings would mean `ah`/`ch`/`dh`/`bh`).
//! Memory operands are `[base + disp]`; `rbp`/`r13` bases always carry a displacement (mod 00
//! with their low bits means RIP-relative) and `rsp`/`r12` bases get a SIB byte — the same
//! rules `emit_insn_suffix()` in the kernel's `arch/x86/net/bpf_jit_comp.c` follows.
//!
//! The module is pure byte shuffling: it compiles on every host and is unit-tested against
//! encodings checked with an assembler.

mod ext;
mod word;

pub use ext::Features;

/// `rax`
pub const RAX: u8 = 0;
/// `rcx`
pub const RCX: u8 = 1;
/// `rdx`
pub const RDX: u8 = 2;
/// `rbx`
pub const RBX: u8 = 3;
/// `rsp`
pub const RSP: u8 = 4;
/// `rbp`
pub const RBP: u8 = 5;
/// `rsi`
pub const RSI: u8 = 6;
/// `rdi`
pub const RDI: u8 = 7;
/// `r8`
pub const R8: u8 = 8;
/// `r9`
pub const R9: u8 = 9;
/// `r10`
pub const R10: u8 = 10;
/// `r11`
pub const R11: u8 = 11;
/// `r12`
pub const R12: u8 = 12;
/// `r13`
pub const R13: u8 = 13;
/// `r14`
pub const R14: u8 = 14;
/// `r15`
pub const R15: u8 = 15;

/// Condition codes (the low nibble of `Jcc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cond {
    /// unsigned `<` (`jb`)
    B = 0x2,
    /// unsigned `>=` (`jae`)
    Ae = 0x3,
    /// `==` (`je`)
    E = 0x4,
    /// `!=` (`jne`)
    Ne = 0x5,
    /// unsigned `<=` (`jbe`)
    Be = 0x6,
    /// unsigned `>` (`ja`)
    A = 0x7,
    /// signed `<` (`jl`)
    L = 0xc,
    /// signed `>=` (`jge`)
    Ge = 0xd,
    /// signed `<=` (`jle`)
    Le = 0xe,
    /// signed `>` (`jg`)
    G = 0xf,
}

impl Cond {
    /// The opposite condition (x86 condition codes come in pairs differing in bit 0).
    pub fn negate(self) -> Cond {
        match self {
            Cond::B => Cond::Ae,
            Cond::Ae => Cond::B,
            Cond::E => Cond::Ne,
            Cond::Ne => Cond::E,
            Cond::Be => Cond::A,
            Cond::A => Cond::Be,
            Cond::L => Cond::Ge,
            Cond::Ge => Cond::L,
            Cond::Le => Cond::G,
            Cond::G => Cond::Le,
        }
    }
}

/// Two-operand ALU operations in their `op r/m, reg` form (opcode byte) and `op r/m, imm`
/// form (the `/digit` of opcodes `0x81`/`0x83`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    /// `add`
    Add,
    /// `or`
    Or,
    /// `and`
    And,
    /// `sub`
    Sub,
    /// `xor`
    Xor,
    /// `cmp`
    Cmp,
}

impl Alu {
    const fn rm_reg_opcode(self) -> u8 {
        match self {
            Alu::Add => 0x01,
            Alu::Or => 0x09,
            Alu::And => 0x21,
            Alu::Sub => 0x29,
            Alu::Xor => 0x31,
            Alu::Cmp => 0x39,
        }
    }
    const fn digit(self) -> u8 {
        match self {
            Alu::Add => 0,
            Alu::Or => 1,
            Alu::And => 4,
            Alu::Sub => 5,
            Alu::Xor => 6,
            Alu::Cmp => 7,
        }
    }
}

/// Shift and rotate operations (the `/digit` of opcodes `0xc1`/`0xd1`/`0xd3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Shift {
    /// `rol`
    Rol = 0,
    /// `ror`
    Ror = 1,
    /// `shl`
    Shl = 4,
    /// `shr` (logical)
    Shr = 5,
    /// `sar` (arithmetic)
    Sar = 7,
}

/// Operand sizes of memory accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 1 byte
    B,
    /// 2 bytes
    H,
    /// 4 bytes
    W,
    /// 8 bytes
    DW,
}

/// The r/m operand of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rm {
    Reg(u8),
    Mem {
        base: u8,
        disp: i32,
    },
    /// `[rip + disp32]`
    Rip(i32),
}

/// An instruction-encoding flag set.
#[derive(Clone, Copy, Default)]
struct Enc {
    /// `0x66` operand-size prefix (16-bit operation).
    p66: bool,
    /// `REX.W` (64-bit operation).
    w: bool,
    /// A byte operation whose *register* operands are byte registers: force REX for 4..=7.
    byte_regs: bool,
}

/// A growable machine-code buffer.
#[derive(Clone, Debug, Default)]
pub struct Asm {
    buf: Vec<u8>,
}

/// True if `v` fits a sign-extended 8-bit immediate or displacement.
pub const fn is_imm8(v: i64) -> bool {
    v >= i8::MIN as i64 && v <= i8::MAX as i64
}

/// True if `v` fits a sign-extended 32-bit immediate or displacement.
pub const fn is_imm32(v: i64) -> bool {
    v >= i32::MIN as i64 && v <= i32::MAX as i64
}

impl Asm {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes emitted so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was emitted.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The machine code.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the machine code out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    fn imm16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn imm32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn imm64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Overwrites the 32-bit little-endian value at `pos` (a placeholder emitted earlier).
    pub fn patch_i32(&mut self, pos: usize, v: i32) {
        self.buf[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Overwrites the byte at `pos`.
    pub fn patch_i8(&mut self, pos: usize, v: i8) {
        self.buf[pos] = v as u8;
    }

    /// Prefixes, REX, opcode bytes, ModRM (+SIB, displacement) for `op reg, rm`.
    fn inst(&mut self, e: Enc, opcode: &[u8], reg: u8, rm: Rm) {
        if e.p66 {
            self.byte(0x66);
        }
        let (rm_num, index_ext) = match rm {
            Rm::Reg(r) => (r, 0),
            Rm::Mem { base, .. } => (base, 0),
            Rm::Rip(_) => (0, 0),
        };
        let rex = 0x40
            | (u8::from(e.w) << 3)
            | (((reg >> 3) & 1) << 2)
            | (index_ext << 1)
            | ((rm_num >> 3) & 1);
        let byte_reg_needs_rex = e.byte_regs
            && ((4..8).contains(&reg) || matches!(rm, Rm::Reg(r) if (4..8).contains(&r)));
        if rex != 0x40 || byte_reg_needs_rex {
            self.byte(rex);
        }
        self.buf.extend_from_slice(opcode);
        let reg3 = (reg & 7) << 3;
        match rm {
            Rm::Reg(r) => self.byte(0xc0 | reg3 | (r & 7)),
            Rm::Rip(disp) => {
                self.byte(reg3 | 0b101);
                self.imm32(disp);
            }
            Rm::Mem { base, disp } => {
                let low = base & 7;
                let md = if disp == 0 && low != 5 {
                    0b00
                } else if is_imm8(disp as i64) {
                    0b01
                } else {
                    0b10
                };
                self.byte((md << 6) | reg3 | low);
                if low == 4 {
                    // rsp/r12 as a base need a SIB byte: scale 1, no index, base.
                    self.byte(0x24);
                }
                match md {
                    0b01 => self.byte(disp as i8 as u8),
                    0b10 => self.imm32(disp),
                    _ => {}
                }
            }
        }
    }

    // ---- register moves and ALU ----

    /// `op dst, src` (`w`: 64-bit, else 32-bit with zero-extension).
    pub fn alu_rr(&mut self, w: bool, op: Alu, dst: u8, src: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[op.rm_reg_opcode()], src, Rm::Reg(dst));
    }

    /// `op dst, imm` (imm sign-extended to the operation width; 8-bit form when it fits).
    pub fn alu_ri(&mut self, w: bool, op: Alu, dst: u8, imm: i32) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        if is_imm8(imm as i64) {
            self.inst(e, &[0x83], op.digit(), Rm::Reg(dst));
            self.byte(imm as i8 as u8);
        } else {
            self.inst(e, &[0x81], op.digit(), Rm::Reg(dst));
            self.imm32(imm);
        }
    }

    /// `test dst, src`
    pub fn test_rr(&mut self, w: bool, dst: u8, src: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x85], src, Rm::Reg(dst));
    }

    /// `test dst, imm32` (sign-extended in the 64-bit form).
    pub fn test_ri(&mut self, w: bool, dst: u8, imm: i32) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0xf7], 0, Rm::Reg(dst));
        self.imm32(imm);
    }

    /// `mov dst, src` (`w` false: `mov dst32, src32`, which zero-extends).
    pub fn mov_rr(&mut self, w: bool, dst: u8, src: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x89], src, Rm::Reg(dst));
    }

    /// `mov dst32, imm32` (zero-extends into the 64-bit register).
    pub fn mov_ri32(&mut self, dst: u8, imm: u32) {
        if dst >= 8 {
            self.byte(0x41);
        }
        self.byte(0xb8 + (dst & 7));
        self.imm32(imm as i32);
    }

    /// `dst = imm` for a 64-bit value, in the shortest form: `xor`, `mov r32, imm32`,
    /// sign-extended `mov r/m64, imm32` or `movabs`.
    pub fn mov_ri64(&mut self, dst: u8, imm: u64) {
        if imm == 0 {
            self.alu_rr(false, Alu::Xor, dst, dst);
        } else if imm <= u32::MAX as u64 {
            self.mov_ri32(dst, imm as u32);
        } else if is_imm32(imm as i64) {
            let e = Enc {
                w: true,
                ..Enc::default()
            };
            self.inst(e, &[0xc7], 0, Rm::Reg(dst));
            self.imm32(imm as i32);
        } else {
            self.movabs(dst, imm);
        }
    }

    /// `movabs dst, imm64` (always 10 bytes).
    pub fn movabs(&mut self, dst: u8, imm: u64) {
        self.byte(0x48 | ((dst >> 3) & 1));
        self.byte(0xb8 + (dst & 7));
        self.imm64(imm);
    }

    /// `imul dst, src` (low half of the product; equal for signed and unsigned).
    pub fn imul_rr(&mut self, w: bool, dst: u8, src: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x0f, 0xaf], dst, Rm::Reg(src));
    }

    /// `imul dst, src, imm` (imm sign-extended).
    pub fn imul_rri(&mut self, w: bool, dst: u8, src: u8, imm: i32) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        if is_imm8(imm as i64) {
            self.inst(e, &[0x6b], dst, Rm::Reg(src));
            self.byte(imm as i8 as u8);
        } else {
            self.inst(e, &[0x69], dst, Rm::Reg(src));
            self.imm32(imm);
        }
    }

    /// `neg dst`
    pub fn neg(&mut self, w: bool, dst: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0xf7], 3, Rm::Reg(dst));
    }

    /// `div src` (unsigned `rdx:rax / src`) or `idiv src` (signed).
    pub fn div(&mut self, w: bool, signed: bool, src: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0xf7], if signed { 7 } else { 6 }, Rm::Reg(src));
    }

    /// `cqo` (64-bit) or `cdq` (32-bit): sign-extend `rax` into `rdx`.
    pub fn cqo(&mut self, w: bool) {
        if w {
            self.byte(0x48);
        }
        self.byte(0x99);
    }

    /// `shl/shr/sar/ror dst, imm8`.
    pub fn shift_ri(&mut self, w: bool, op: Shift, dst: u8, imm: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        if imm == 1 {
            self.inst(e, &[0xd1], op as u8, Rm::Reg(dst));
        } else {
            self.inst(e, &[0xc1], op as u8, Rm::Reg(dst));
            self.byte(imm);
        }
    }

    /// `shl/shr/sar dst, cl`.
    pub fn shift_cl(&mut self, w: bool, op: Shift, dst: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0xd3], op as u8, Rm::Reg(dst));
    }

    /// `ror dst16, 8`: swaps the two low bytes.
    pub fn ror16_8(&mut self, dst: u8) {
        let e = Enc {
            p66: true,
            ..Enc::default()
        };
        self.inst(e, &[0xc1], Shift::Ror as u8, Rm::Reg(dst));
        self.byte(8);
    }

    /// `movzx dst32, src16`
    pub fn movzx16_rr(&mut self, dst: u8, src: u8) {
        self.inst(Enc::default(), &[0x0f, 0xb7], dst, Rm::Reg(src));
    }

    /// Sign-extending register move from the low `from_bits` (8, 16, 32) of `src`; `w`
    /// selects a 64-bit destination (else 32-bit, zero-extended above).
    pub fn movsx_rr(&mut self, w: bool, dst: u8, src: u8, from_bits: u8) {
        match from_bits {
            8 => {
                let e = Enc {
                    w,
                    byte_regs: true,
                    ..Enc::default()
                };
                // Only the r/m operand is a byte register; the destination is a full register,
                // but forcing REX when it is 4..=7 is harmless.
                self.inst(e, &[0x0f, 0xbe], dst, Rm::Reg(src));
            }
            16 => {
                let e = Enc {
                    w,
                    ..Enc::default()
                };
                self.inst(e, &[0x0f, 0xbf], dst, Rm::Reg(src));
            }
            _ => {
                let e = Enc {
                    w: true,
                    ..Enc::default()
                };
                self.inst(e, &[0x63], dst, Rm::Reg(src));
            }
        }
    }

    /// `bswap dst` (32- or 64-bit).
    pub fn bswap(&mut self, w: bool, dst: u8) {
        let rex = 0x40 | (u8::from(w) << 3) | ((dst >> 3) & 1);
        if rex != 0x40 {
            self.byte(rex);
        }
        self.byte(0x0f);
        self.byte(0xc8 + (dst & 7));
    }

    /// `lea dst, [base + disp]`
    pub fn lea(&mut self, dst: u8, base: u8, disp: i32) {
        let e = Enc {
            w: true,
            ..Enc::default()
        };
        self.inst(e, &[0x8d], dst, Rm::Mem { base, disp });
    }

    /// `lea dst, [base + index * 2^scale]` (64-bit; `index` must not be `rsp`).
    pub fn lea_scaled(&mut self, dst: u8, base: u8, index: u8, scale: u8) {
        debug_assert!(index != RSP && scale <= 3);
        self.byte(0x48 | ((dst >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1));
        self.byte(0x8d);
        // rbp/r13 as a base have no mod=00 form: mod=01 with a zero disp8.
        let md: u8 = if base & 7 == 5 { 0b01 } else { 0b00 };
        self.byte(md << 6 | (dst & 7) << 3 | 0b100);
        self.byte(scale << 6 | (index & 7) << 3 | (base & 7));
        if md == 0b01 {
            self.byte(0);
        }
    }

    /// `lea dst, [base + index + disp]` (64-bit; `index` must not be `rsp`).
    pub fn lea_indexed(&mut self, dst: u8, base: u8, index: u8, disp: i32) {
        debug_assert!(index != RSP);
        self.byte(0x48 | ((dst >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1));
        self.byte(0x8d);
        // rbp/r13 as a base have no mod=00 form.
        let md: u8 = if disp == 0 && base & 7 != 5 {
            0b00
        } else if is_imm8(disp as i64) {
            0b01
        } else {
            0b10
        };
        self.byte(md << 6 | (dst & 7) << 3 | 0b100);
        self.byte((index & 7) << 3 | (base & 7));
        match md {
            0b01 => self.byte(disp as i8 as u8),
            0b10 => self.imm32(disp),
            _ => {}
        }
    }

    /// `lea dst, [rip + disp]` (7 bytes; `disp` counts from the end of this instruction).
    pub fn lea_rip(&mut self, dst: u8, disp: i32) {
        let e = Enc {
            w: true,
            ..Enc::default()
        };
        self.inst(e, &[0x8d], dst, Rm::Rip(disp));
    }

    // ---- memory ----

    /// `dst = *(width *)(base + disp)`, zero-extended (`signed`: sign-extended to 64 bits).
    pub fn load(&mut self, width: Width, signed: bool, dst: u8, base: u8, disp: i32) {
        let m = Rm::Mem { base, disp };
        let w64 = Enc {
            w: true,
            ..Enc::default()
        };
        match (width, signed) {
            (Width::B, false) => self.inst(Enc::default(), &[0x0f, 0xb6], dst, m),
            (Width::H, false) => self.inst(Enc::default(), &[0x0f, 0xb7], dst, m),
            (Width::W, false) => self.inst(Enc::default(), &[0x8b], dst, m),
            (Width::DW, _) => self.inst(w64, &[0x8b], dst, m),
            (Width::B, true) => self.inst(w64, &[0x0f, 0xbe], dst, m),
            (Width::H, true) => self.inst(w64, &[0x0f, 0xbf], dst, m),
            (Width::W, true) => self.inst(w64, &[0x63], dst, m),
        }
    }

    /// `*(width *)(base + disp) = src` (the low bytes of the register).
    pub fn store_r(&mut self, width: Width, base: u8, disp: i32, src: u8) {
        let m = Rm::Mem { base, disp };
        match width {
            Width::B => {
                let e = Enc {
                    byte_regs: true,
                    ..Enc::default()
                };
                self.inst(e, &[0x88], src, m);
            }
            Width::H => {
                let e = Enc {
                    p66: true,
                    ..Enc::default()
                };
                self.inst(e, &[0x89], src, m);
            }
            Width::W => self.inst(Enc::default(), &[0x89], src, m),
            Width::DW => {
                let e = Enc {
                    w: true,
                    ..Enc::default()
                };
                self.inst(e, &[0x89], src, m);
            }
        }
    }

    /// `*(width *)(base + disp) = imm` (the 64-bit form sign-extends the 32-bit immediate).
    pub fn store_i(&mut self, width: Width, base: u8, disp: i32, imm: i32) {
        let m = Rm::Mem { base, disp };
        match width {
            Width::B => {
                self.inst(Enc::default(), &[0xc6], 0, m);
                self.byte(imm as u8);
            }
            Width::H => {
                let e = Enc {
                    p66: true,
                    ..Enc::default()
                };
                self.inst(e, &[0xc7], 0, m);
                self.imm16(imm as i16);
            }
            Width::W => {
                self.inst(Enc::default(), &[0xc7], 0, m);
                self.imm32(imm);
            }
            Width::DW => {
                let e = Enc {
                    w: true,
                    ..Enc::default()
                };
                self.inst(e, &[0xc7], 0, m);
                self.imm32(imm);
            }
        }
    }

    /// `lock op [base + disp], src` for add/or/and/xor (32- or 64-bit).
    pub fn lock_alu_mr(&mut self, w: bool, op: Alu, base: u8, disp: i32, src: u8) {
        self.byte(0xf0);
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[op.rm_reg_opcode()], src, Rm::Mem { base, disp });
    }

    /// `lock xadd [base + disp], src`: `src` receives the old value.
    pub fn lock_xadd(&mut self, w: bool, base: u8, disp: i32, src: u8) {
        self.byte(0xf0);
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x0f, 0xc1], src, Rm::Mem { base, disp });
    }

    /// `xchg [base + disp], src` (implicitly locked).
    pub fn xchg_mr(&mut self, w: bool, base: u8, disp: i32, src: u8) {
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x87], src, Rm::Mem { base, disp });
    }

    /// `lock cmpxchg [base + disp], src`: compares with `rax`; `rax` receives the old value.
    pub fn lock_cmpxchg(&mut self, w: bool, base: u8, disp: i32, src: u8) {
        self.byte(0xf0);
        let e = Enc {
            w,
            ..Enc::default()
        };
        self.inst(e, &[0x0f, 0xb1], src, Rm::Mem { base, disp });
    }

    /// `rep stosq`: stores `rax` to `[rdi]`, `rcx` times.
    pub fn rep_stosq(&mut self) {
        self.buf.extend_from_slice(&[0xf3, 0x48, 0xab]);
    }

    // ---- stack and control flow ----

    /// `push reg`
    pub fn push(&mut self, reg: u8) {
        if reg >= 8 {
            self.byte(0x41);
        }
        self.byte(0x50 + (reg & 7));
    }

    /// `pop reg`
    pub fn pop(&mut self, reg: u8) {
        if reg >= 8 {
            self.byte(0x41);
        }
        self.byte(0x58 + (reg & 7));
    }

    /// `call reg`
    pub fn call_r(&mut self, reg: u8) {
        self.inst(Enc::default(), &[0xff], 2, Rm::Reg(reg));
    }

    /// `call rel32` (5 bytes; `rel` counts from the end of this instruction).
    pub fn call_rel32(&mut self, rel: i32) {
        self.byte(0xe8);
        self.imm32(rel);
    }

    /// `ret`
    pub fn ret(&mut self) {
        self.byte(0xc3);
    }

    /// `jmp rel8` (2 bytes).
    pub fn jmp_rel8(&mut self, rel: i8) {
        self.byte(0xeb);
        self.byte(rel as u8);
    }

    /// `jmp rel32` (5 bytes).
    pub fn jmp_rel32(&mut self, rel: i32) {
        self.byte(0xe9);
        self.imm32(rel);
    }

    /// `jcc rel8` (2 bytes).
    pub fn jcc_rel8(&mut self, cc: Cond, rel: i8) {
        self.byte(0x70 | cc as u8);
        self.byte(rel as u8);
    }

    /// `jcc rel32` (6 bytes).
    pub fn jcc_rel32(&mut self, cc: Cond, rel: i32) {
        self.byte(0x0f);
        self.byte(0x80 | cc as u8);
        self.imm32(rel);
    }

    /// A `jcc rel8` whose target is bound later with [`Asm::bind_short`]; returns the
    /// position of the displacement byte.
    pub fn jcc_short_fwd(&mut self, cc: Cond) -> usize {
        self.jcc_rel8(cc, 0);
        self.len() - 1
    }

    /// A `jmp rel8` bound later with [`Asm::bind_short`].
    pub fn jmp_short_fwd(&mut self) -> usize {
        self.jmp_rel8(0);
        self.len() - 1
    }

    /// Binds a forward short jump (from [`Asm::jcc_short_fwd`] / [`Asm::jmp_short_fwd`]) to
    /// the current position. Returns false if the distance does not fit 8 bits.
    #[must_use]
    pub fn bind_short(&mut self, disp_pos: usize) -> bool {
        let rel = self.len() as i64 - (disp_pos as i64 + 1);
        if !is_imm8(rel) {
            return false;
        }
        self.patch_i8(disp_pos, rel as i8);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `f` assembles (also used by the tests of `word` and `ext`).
    pub(crate) fn enc(f: impl FnOnce(&mut Asm)) -> Vec<u8> {
        let mut a = Asm::new();
        f(&mut a);
        a.into_bytes()
    }

    // Expected bytes checked with GNU as / llvm-mc.
    #[test]
    fn register_forms() {
        assert_eq!(enc(|a| a.mov_rr(true, RAX, RDI)), [0x48, 0x89, 0xf8]);
        assert_eq!(enc(|a| a.mov_rr(false, R13, R14)), [0x45, 0x89, 0xf5]);
        assert_eq!(
            enc(|a| a.alu_ri(true, Alu::Add, R13, 1)),
            [0x49, 0x83, 0xc5, 0x01]
        );
        assert_eq!(
            enc(|a| a.alu_ri(false, Alu::Sub, RBX, 0x1000)),
            [0x81, 0xeb, 0x00, 0x10, 0x00, 0x00]
        );
        assert_eq!(
            enc(|a| a.alu_rr(true, Alu::Cmp, RDI, RSI)),
            [0x48, 0x39, 0xf7]
        );
        assert_eq!(enc(|a| a.imul_rr(true, R8, RCX)), [0x4c, 0x0f, 0xaf, 0xc1]);
        assert_eq!(enc(|a| a.imul_rri(false, RAX, RAX, 3)), [0x6b, 0xc0, 0x03]);
        assert_eq!(enc(|a| a.neg(true, R15)), [0x49, 0xf7, 0xdf]);
        assert_eq!(
            enc(|a| a.shift_cl(true, Shift::Sar, RDX)),
            [0x48, 0xd3, 0xfa]
        );
        assert_eq!(
            enc(|a| a.shift_ri(false, Shift::Shl, RSI, 4)),
            [0xc1, 0xe6, 0x04]
        );
        assert_eq!(enc(|a| a.ror16_8(R8)), [0x66, 0x41, 0xc1, 0xc8, 0x08]);
        assert_eq!(enc(|a| a.bswap(true, R14)), [0x49, 0x0f, 0xce]);
        assert_eq!(enc(|a| a.bswap(false, RDX)), [0x0f, 0xca]);
        assert_eq!(enc(|a| a.movzx16_rr(RDI, RDI)), [0x0f, 0xb7, 0xff]);
        // movsx from sil needs a REX prefix (without it, 0xf6 would mean dh)
        assert_eq!(
            enc(|a| a.movsx_rr(false, RAX, RSI, 8)),
            [0x40, 0x0f, 0xbe, 0xc6]
        );
        assert_eq!(enc(|a| a.movsx_rr(true, RAX, RSI, 32)), [0x48, 0x63, 0xc6]);
        assert_eq!(enc(|a| a.mov_ri64(RAX, 0)), [0x31, 0xc0]);
        assert_eq!(enc(|a| a.mov_ri64(R9, 5)), [0x41, 0xb9, 5, 0, 0, 0]);
        assert_eq!(
            enc(|a| a.mov_ri64(RAX, u64::MAX)),
            [0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            enc(|a| a.mov_ri64(RCX, 0x1_0000_0000)),
            [0x48, 0xb9, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(enc(|a| a.div(true, true, R11)), [0x49, 0xf7, 0xfb]);
        assert_eq!(enc(|a| a.cqo(true)), [0x48, 0x99]);
        assert_eq!(enc(|a| a.call_r(RAX)), [0xff, 0xd0]);
        assert_eq!(enc(|a| a.push(R15)), [0x41, 0x57]);
        assert_eq!(enc(|a| a.pop(RBX)), [0x5b]);
        assert_eq!(
            enc(|a| a.test_ri(true, RDI, 1)),
            [0x48, 0xf7, 0xc7, 1, 0, 0, 0]
        );
    }

    #[test]
    fn rotates() {
        // Checked with GNU as: rol $4,%ecx / rol $1,%r9d
        assert_eq!(
            enc(|a| a.shift_ri(false, Shift::Rol, RCX, 4)),
            [0xc1, 0xc1, 0x04]
        );
        assert_eq!(
            enc(|a| a.shift_ri(false, Shift::Rol, R9, 1)),
            [0x41, 0xd1, 0xc1]
        );
    }

    #[test]
    fn scaled_lea() {
        // Checked with GNU as.
        assert_eq!(
            enc(|a| a.lea_scaled(RAX, RAX, RAX, 3)),
            [0x48, 0x8d, 0x04, 0xc0]
        );
        assert_eq!(
            enc(|a| a.lea_scaled(RBX, RBX, RBX, 1)),
            [0x48, 0x8d, 0x1c, 0x5b]
        );
        assert_eq!(
            enc(|a| a.lea_scaled(R13, R13, R13, 2)),
            [0x4f, 0x8d, 0x6c, 0xad, 0x00]
        );
        assert_eq!(
            enc(|a| a.lea_scaled(RBP, RBP, RBP, 3)),
            [0x48, 0x8d, 0x6c, 0xed, 0x00]
        );
        assert_eq!(
            enc(|a| a.lea_scaled(R12, R12, R12, 1)),
            [0x4f, 0x8d, 0x24, 0x64]
        );
    }

    #[test]
    fn indexed_lea() {
        // Checked with llvm-mc-19 -show-encoding.
        assert_eq!(
            enc(|a| a.lea_indexed(RCX, RSI, R8, 14)),
            [0x4a, 0x8d, 0x4c, 0x06, 0x0e]
        );
        assert_eq!(
            enc(|a| a.lea_indexed(RDX, R13, RAX, 0)),
            [0x49, 0x8d, 0x54, 0x05, 0x00]
        );
        assert_eq!(
            enc(|a| a.lea_indexed(R15, R12, R12, 512)),
            [0x4f, 0x8d, 0xbc, 0x24, 0x00, 0x02, 0x00, 0x00]
        );
        assert_eq!(
            enc(|a| a.lea_indexed(RAX, RBP, RDI, -8)),
            [0x48, 0x8d, 0x44, 0x3d, 0xf8]
        );
    }

    #[test]
    fn memory_forms() {
        // mov [rbp-8], rdi
        assert_eq!(
            enc(|a| a.store_r(Width::DW, RBP, -8, RDI)),
            [0x48, 0x89, 0x7d, 0xf8]
        );
        // mov byte [rbp-8], sil: REX needed for sil
        assert_eq!(
            enc(|a| a.store_r(Width::B, RBP, -8, RSI)),
            [0x40, 0x88, 0x75, 0xf8]
        );
        // movzx eax, byte [r13+0]: r13 base always takes a displacement
        assert_eq!(
            enc(|a| a.load(Width::B, false, RAX, R13, 0)),
            [0x41, 0x0f, 0xb6, 0x45, 0x00]
        );
        // mov rax, [r12]: SIB for r12
        assert_eq!(
            enc(|a| a.load(Width::DW, false, RAX, R12, 0)),
            [0x49, 0x8b, 0x04, 0x24]
        );
        // mov word [rdi+0x100], 7
        assert_eq!(
            enc(|a| a.store_i(Width::H, RDI, 0x100, 7)),
            [0x66, 0xc7, 0x87, 0x00, 0x01, 0x00, 0x00, 0x07, 0x00]
        );
        // movsxd rax, dword [rsi+4]
        assert_eq!(
            enc(|a| a.load(Width::W, true, RAX, RSI, 4)),
            [0x48, 0x63, 0x46, 0x04]
        );
        // lock xadd [rdi], rsi
        assert_eq!(
            enc(|a| a.lock_xadd(true, RDI, 0, RSI)),
            [0xf0, 0x48, 0x0f, 0xc1, 0x37]
        );
        // lock cmpxchg dword [r10], r11d
        assert_eq!(
            enc(|a| a.lock_cmpxchg(false, R10, 0, R11)),
            [0xf0, 0x45, 0x0f, 0xb1, 0x1a]
        );
        // lea rbp, [rsp+0x200]
        assert_eq!(
            enc(|a| a.lea(RBP, RSP, 0x200)),
            [0x48, 0x8d, 0xac, 0x24, 0x00, 0x02, 0x00, 0x00]
        );
        assert_eq!(
            enc(|a| a.lea_rip(RAX, 0x10)),
            [0x48, 0x8d, 0x05, 0x10, 0, 0, 0]
        );
    }

    #[test]
    fn short_forward_jumps_bind() {
        let mut a = Asm::new();
        let j = a.jcc_short_fwd(Cond::E);
        a.mov_rr(true, RAX, RDI);
        assert!(a.bind_short(j));
        assert_eq!(a.bytes(), [0x74, 0x03, 0x48, 0x89, 0xf8]);
        let mut a = Asm::new();
        let j = a.jmp_short_fwd();
        for _ in 0..200 {
            a.ret();
        }
        assert!(!a.bind_short(j));
    }

    /// Every emitter, over every register (and a spread of displacements and immediates),
    /// decoded back with iced-x86: mnemonic, registers, memory operand and immediate must be
    /// what was asked for. This checks the REX/ModRM/SIB logic exhaustively.
    mod iced_round_trip {
        use super::super::*;
        use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register as R};

        const Q: [R; 16] = [
            R::RAX,
            R::RCX,
            R::RDX,
            R::RBX,
            R::RSP,
            R::RBP,
            R::RSI,
            R::RDI,
            R::R8,
            R::R9,
            R::R10,
            R::R11,
            R::R12,
            R::R13,
            R::R14,
            R::R15,
        ];
        const D: [R; 16] = [
            R::EAX,
            R::ECX,
            R::EDX,
            R::EBX,
            R::ESP,
            R::EBP,
            R::ESI,
            R::EDI,
            R::R8D,
            R::R9D,
            R::R10D,
            R::R11D,
            R::R12D,
            R::R13D,
            R::R14D,
            R::R15D,
        ];
        const W16: [R; 16] = [
            R::AX,
            R::CX,
            R::DX,
            R::BX,
            R::SP,
            R::BP,
            R::SI,
            R::DI,
            R::R8W,
            R::R9W,
            R::R10W,
            R::R11W,
            R::R12W,
            R::R13W,
            R::R14W,
            R::R15W,
        ];
        const B8: [R; 16] = [
            R::AL,
            R::CL,
            R::DL,
            R::BL,
            R::SPL,
            R::BPL,
            R::SIL,
            R::DIL,
            R::R8L,
            R::R9L,
            R::R10L,
            R::R11L,
            R::R12L,
            R::R13L,
            R::R14L,
            R::R15L,
        ];
        const DISPS: [i32; 8] = [0, 1, -8, 127, 128, -128, -129, 0x1000];

        /// Decodes exactly one instruction that must span all of `bytes`.
        fn one(bytes: &[u8]) -> Instruction {
            let mut d = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE);
            let i = d.decode();
            assert!(!i.is_invalid(), "invalid encoding {bytes:02x?}");
            assert_eq!(
                i.len(),
                bytes.len(),
                "{bytes:02x?} decodes as {:?}",
                i.code()
            );
            i
        }

        fn regs(w: bool) -> &'static [R; 16] {
            if w { &Q } else { &D }
        }

        fn check_mem(i: &Instruction, op: u32, base: u8, disp: i32) {
            assert_eq!(i.op_kind(op), OpKind::Memory);
            assert_eq!(i.memory_base(), Q[base as usize]);
            assert_eq!(i.memory_index(), R::None);
            assert_eq!(i.memory_displacement64() as i64, disp as i64);
        }

        #[test]
        fn alu_and_moves() {
            let ops = [
                (Alu::Add, Mnemonic::Add),
                (Alu::Or, Mnemonic::Or),
                (Alu::And, Mnemonic::And),
                (Alu::Sub, Mnemonic::Sub),
                (Alu::Xor, Mnemonic::Xor),
                (Alu::Cmp, Mnemonic::Cmp),
            ];
            for w in [true, false] {
                let r = regs(w);
                for d in 0..16u8 {
                    for s in 0..16u8 {
                        for (op, m) in ops {
                            let mut a = Asm::new();
                            a.alu_rr(w, op, d, s);
                            let i = one(a.bytes());
                            assert_eq!(i.mnemonic(), m);
                            assert_eq!(
                                (i.op0_register(), i.op1_register()),
                                (r[d as usize], r[s as usize])
                            );
                        }
                        let mut a = Asm::new();
                        a.mov_rr(w, d, s);
                        let i = one(a.bytes());
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.op1_register()),
                            (Mnemonic::Mov, r[d as usize], r[s as usize])
                        );
                        let mut a = Asm::new();
                        a.imul_rr(w, d, s);
                        let i = one(a.bytes());
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.op1_register()),
                            (Mnemonic::Imul, r[d as usize], r[s as usize])
                        );
                        let mut a = Asm::new();
                        a.test_rr(w, d, s);
                        let i = one(a.bytes());
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.op1_register()),
                            (Mnemonic::Test, r[d as usize], r[s as usize])
                        );
                        for bits in [8u8, 16, 32] {
                            if bits == 32 && !w {
                                continue;
                            }
                            let mut a = Asm::new();
                            a.movsx_rr(w, d, s, bits);
                            let i = one(a.bytes());
                            let src = match bits {
                                8 => B8[s as usize],
                                16 => W16[s as usize],
                                _ => D[s as usize],
                            };
                            let m = if bits == 32 {
                                Mnemonic::Movsxd
                            } else {
                                Mnemonic::Movsx
                            };
                            assert_eq!(
                                (i.mnemonic(), i.op0_register(), i.op1_register()),
                                (m, r[d as usize], src)
                            );
                        }
                    }
                    for imm in [0, 1, -1, 127, 128, -128, -129, i32::MIN, i32::MAX] {
                        for (op, m) in ops {
                            let mut a = Asm::new();
                            a.alu_ri(w, op, d, imm);
                            let i = one(a.bytes());
                            assert_eq!((i.mnemonic(), i.op0_register()), (m, r[d as usize]));
                            let want = if w {
                                imm as i64 as u64
                            } else {
                                imm as u32 as u64
                            };
                            let got = if w {
                                i.immediate(1)
                            } else {
                                i.immediate(1) as u32 as u64
                            };
                            assert_eq!(got, want, "{op:?} {imm}");
                        }
                        let mut a = Asm::new();
                        a.imul_rri(w, d, d, imm);
                        let i = one(a.bytes());
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.op1_register()),
                            (Mnemonic::Imul, r[d as usize], r[d as usize])
                        );
                    }
                    for (sh, m) in [
                        (Shift::Shl, Mnemonic::Shl),
                        (Shift::Shr, Mnemonic::Shr),
                        (Shift::Sar, Mnemonic::Sar),
                    ] {
                        for n in [1u8, 5, 31] {
                            let mut a = Asm::new();
                            a.shift_ri(w, sh, d, n);
                            let i = one(a.bytes());
                            assert_eq!(
                                (i.mnemonic(), i.op0_register(), i.immediate(1)),
                                (m, r[d as usize], n as u64)
                            );
                        }
                        let mut a = Asm::new();
                        a.shift_cl(w, sh, d);
                        let i = one(a.bytes());
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.op1_register()),
                            (m, r[d as usize], R::CL)
                        );
                    }
                    let mut a = Asm::new();
                    a.bswap(w, d);
                    assert_eq!(one(a.bytes()).op0_register(), r[d as usize]);
                    let mut a = Asm::new();
                    a.neg(w, d);
                    assert_eq!(one(a.bytes()).mnemonic(), Mnemonic::Neg);
                    let mut a = Asm::new();
                    a.div(w, true, d);
                    let i = one(a.bytes());
                    assert_eq!(
                        (i.mnemonic(), i.op0_register()),
                        (Mnemonic::Idiv, r[d as usize])
                    );
                }
            }
            for d in 0..16u8 {
                let mut a = Asm::new();
                a.ror16_8(d);
                let i = one(a.bytes());
                assert_eq!(
                    (i.mnemonic(), i.op0_register(), i.immediate(1)),
                    (Mnemonic::Ror, W16[d as usize], 8)
                );
                let mut a = Asm::new();
                a.movzx16_rr(d, d);
                let i = one(a.bytes());
                assert_eq!(
                    (i.op0_register(), i.op1_register()),
                    (D[d as usize], W16[d as usize])
                );
                for v in [
                    0u64,
                    5,
                    0xffff_ffff,
                    0x1_0000_0000,
                    u64::MAX,
                    0x8000_0000_0000_0000,
                ] {
                    let mut a = Asm::new();
                    a.mov_ri64(d, v);
                    let i = one(a.bytes());
                    if v == 0 {
                        assert_eq!(i.mnemonic(), Mnemonic::Xor);
                    } else {
                        assert_eq!(i.mnemonic(), Mnemonic::Mov);
                        let got = match i.op_kind(1) {
                            OpKind::Immediate32 => i.immediate(1) as u32 as u64,
                            _ => i.immediate(1),
                        };
                        assert_eq!(got, v);
                    }
                }
                for (push, m) in [(true, Mnemonic::Push), (false, Mnemonic::Pop)] {
                    let mut a = Asm::new();
                    if push {
                        a.push(d)
                    } else {
                        a.pop(d)
                    }
                    let i = one(a.bytes());
                    assert_eq!((i.mnemonic(), i.op0_register()), (m, Q[d as usize]));
                }
            }
        }

        #[test]
        fn memory_operands() {
            let widths = [
                (Width::B, 0usize),
                (Width::H, 1),
                (Width::W, 2),
                (Width::DW, 3),
            ];
            for base in 0..16u8 {
                for reg in 0..16u8 {
                    for disp in DISPS {
                        for (wd, k) in widths {
                            let mut a = Asm::new();
                            a.store_r(wd, base, disp, reg);
                            let i = one(a.bytes());
                            check_mem(&i, 0, base, disp);
                            let want = [B8, W16, D, Q][k][reg as usize];
                            assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Mov, want));
                            for signed in [false, true] {
                                let mut a = Asm::new();
                                a.load(wd, signed, reg, base, disp);
                                let i = one(a.bytes());
                                check_mem(&i, 1, base, disp);
                                let (m, dst) = match (k, signed) {
                                    (0 | 1, false) => (Mnemonic::Movzx, D[reg as usize]),
                                    (2, false) => (Mnemonic::Mov, D[reg as usize]),
                                    (3, _) => (Mnemonic::Mov, Q[reg as usize]),
                                    (2, true) => (Mnemonic::Movsxd, Q[reg as usize]),
                                    _ => (Mnemonic::Movsx, Q[reg as usize]),
                                };
                                assert_eq!((i.mnemonic(), i.op0_register()), (m, dst));
                            }
                        }
                        for w in [true, false] {
                            let r = regs(w)[reg as usize];
                            let mut a = Asm::new();
                            a.lock_xadd(w, base, disp, reg);
                            let i = one(a.bytes());
                            check_mem(&i, 0, base, disp);
                            assert!(i.has_lock_prefix());
                            assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Xadd, r));
                            let mut a = Asm::new();
                            a.lock_cmpxchg(w, base, disp, reg);
                            let i = one(a.bytes());
                            check_mem(&i, 0, base, disp);
                            assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Cmpxchg, r));
                            let mut a = Asm::new();
                            a.xchg_mr(w, base, disp, reg);
                            let i = one(a.bytes());
                            check_mem(&i, 0, base, disp);
                            assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Xchg, r));
                            let mut a = Asm::new();
                            a.lock_alu_mr(w, Alu::Xor, base, disp, reg);
                            let i = one(a.bytes());
                            check_mem(&i, 0, base, disp);
                            assert!(i.has_lock_prefix());
                            assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Xor, r));
                        }
                    }
                }
                for disp in DISPS {
                    for (wd, _) in widths {
                        let mut a = Asm::new();
                        a.store_i(wd, base, disp, -2);
                        let i = one(a.bytes());
                        check_mem(&i, 0, base, disp);
                        assert_eq!(i.mnemonic(), Mnemonic::Mov);
                    }
                    let mut a = Asm::new();
                    a.lea(R11, base, disp);
                    let i = one(a.bytes());
                    check_mem(&i, 1, base, disp);
                    assert_eq!((i.mnemonic(), i.op0_register()), (Mnemonic::Lea, R::R11));
                }
            }
        }
    }
}

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
mod tests;

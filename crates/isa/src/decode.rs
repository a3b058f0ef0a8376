//! A typed view of instructions: [`Instruction::decode`] turns raw [`Insn`]s into an enum the
//! rest of kbpf can match on, [`Instruction::encode`] turns it back (round-trip exact for every
//! valid encoding), and [`validate`] checks a whole program's structure (opcodes, registers,
//! `ld_imm64` pairs, jump and call targets) naming the instruction index of the first fault.

use crate::insn::*;

/// Operand width of an ALU or compare operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit (`BPF_ALU`, `BPF_JMP32`): operands are the low halves, results zero-extend.
    W32,
    /// 64-bit (`BPF_ALU64`, `BPF_JMP`).
    W64,
}

/// Memory access size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// 1 byte (`BPF_B`).
    B,
    /// 2 bytes (`BPF_H`).
    H,
    /// 4 bytes (`BPF_W`).
    W,
    /// 8 bytes (`BPF_DW`).
    DW,
}

impl Size {
    /// Size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
    /// The size bits of the opcode.
    pub const fn bits(self) -> u8 {
        match self {
            Size::B => BPF_B,
            Size::H => BPF_H,
            Size::W => BPF_W,
            Size::DW => BPF_DW,
        }
    }
    fn from_code(code: u8) -> Size {
        match code & 0x18 {
            BPF_B => Size::B,
            BPF_H => Size::H,
            BPF_W => Size::W,
            _ => Size::DW,
        }
    }
}

/// The second operand of an ALU, store or jump instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A register.
    Reg(u8),
    /// The sign-extended 32-bit immediate.
    Imm(i32),
}

/// ALU operation, with the v4 signed and sign-extending variants made explicit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// unsigned `/=`
    Div,
    /// signed `s/=` (v4: `BPF_DIV` with `off = 1`)
    Sdiv,
    /// `|=`
    Or,
    /// `&=`
    And,
    /// `<<=`
    Lsh,
    /// logical `>>=`
    Rsh,
    /// `= -dst`
    Neg,
    /// unsigned `%=`
    Mod,
    /// signed `s%=` (v4: `BPF_MOD` with `off = 1`)
    Smod,
    /// `^=`
    Xor,
    /// `=`
    Mov,
    /// `= (sN)src` (v4: `BPF_MOV | BPF_X` with `off` 8, 16 or 32)
    Movsx(u8),
    /// `dst = this_cpu_ptr(src)`: `BPF_MOV64_PERCPU_REG` (`BPF_ALU64 | BPF_MOV | BPF_X` with
    /// `off = BPF_ADDR_PERCPU` (-1)). Only the kernel's rewrites emit it, so only
    /// [`DecodeOptions::translated`] admits it.
    MovPercpu,
    /// arithmetic `s>>=`
    Arsh,
}

/// Byte-swap flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// `le16/32/64`: convert host to little-endian (truncation only on little-endian hosts).
    Le,
    /// `be16/32/64`: convert host to big-endian.
    Be,
    /// `bswap16/32/64`: unconditional swap (v4: `BPF_ALU64 | BPF_END`).
    Bswap,
}

/// Atomic read-modify-write operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// `lock *(size *)(dst + off) += src` (`fetch` returns the old value in `src`).
    Add {
        /// Whether the old value is returned (`BPF_FETCH`).
        fetch: bool,
    },
    /// `|=`
    Or {
        /// Whether the old value is returned.
        fetch: bool,
    },
    /// `&=`
    And {
        /// Whether the old value is returned.
        fetch: bool,
    },
    /// `^=`
    Xor {
        /// Whether the old value is returned.
        fetch: bool,
    },
    /// Exchange: `src = xchg(dst + off, src)`.
    Xchg,
    /// Compare-and-exchange: `r0 = cmpxchg(dst + off, r0, src)`.
    Cmpxchg,
    /// `dst = load_acquire((size *)(src + off))` — encoded in `BPF_STX|BPF_ATOMIC`, but `dst` is the
    /// destination register and `src` the base.
    LoadAcquire,
    /// `store_release((size *)(dst + off), src)`.
    StoreRelease,
}

impl AtomicOp {
    /// The `imm` encoding.
    pub const fn imm(self) -> i32 {
        const fn f(fetch: bool) -> i32 {
            if fetch { BPF_FETCH } else { 0 }
        }
        match self {
            AtomicOp::Add { fetch } => BPF_ADD as i32 | f(fetch),
            AtomicOp::Or { fetch } => BPF_OR as i32 | f(fetch),
            AtomicOp::And { fetch } => BPF_AND as i32 | f(fetch),
            AtomicOp::Xor { fetch } => BPF_XOR as i32 | f(fetch),
            AtomicOp::Xchg => BPF_XCHG,
            AtomicOp::Cmpxchg => BPF_CMPXCHG,
            AtomicOp::LoadAcquire => BPF_LOAD_ACQ,
            AtomicOp::StoreRelease => BPF_STORE_REL,
        }
    }

    fn from_imm(imm: i32) -> Option<AtomicOp> {
        let fetch = imm & BPF_FETCH != 0;
        Some(match imm {
            BPF_XCHG => AtomicOp::Xchg,
            BPF_CMPXCHG => AtomicOp::Cmpxchg,
            BPF_LOAD_ACQ => AtomicOp::LoadAcquire,
            BPF_STORE_REL => AtomicOp::StoreRelease,
            _ if imm & !0xf1 != 0 => return None,
            _ => match (imm & 0xf0) as u8 {
                BPF_ADD => AtomicOp::Add { fetch },
                BPF_OR => AtomicOp::Or { fetch },
                BPF_AND => AtomicOp::And { fetch },
                BPF_XOR => AtomicOp::Xor { fetch },
                _ => return None,
            },
        })
    }
}

/// Condition of a conditional jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpCond {
    /// `==`
    Eq,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// `&` (jump if non-zero)
    Set,
    /// `!=`
    Ne,
    /// signed `s>`
    Sgt,
    /// signed `s>=`
    Sge,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// signed `s<`
    Slt,
    /// signed `s<=`
    Sle,
}

impl JmpCond {
    /// The operation bits of the opcode.
    pub const fn bits(self) -> u8 {
        match self {
            JmpCond::Eq => BPF_JEQ,
            JmpCond::Gt => BPF_JGT,
            JmpCond::Ge => BPF_JGE,
            JmpCond::Set => BPF_JSET,
            JmpCond::Ne => BPF_JNE,
            JmpCond::Sgt => BPF_JSGT,
            JmpCond::Sge => BPF_JSGE,
            JmpCond::Lt => BPF_JLT,
            JmpCond::Le => BPF_JLE,
            JmpCond::Slt => BPF_JSLT,
            JmpCond::Sle => BPF_JSLE,
        }
    }
    fn from_bits(op: u8) -> Option<JmpCond> {
        Some(match op {
            BPF_JEQ => JmpCond::Eq,
            BPF_JGT => JmpCond::Gt,
            BPF_JGE => JmpCond::Ge,
            BPF_JSET => JmpCond::Set,
            BPF_JNE => JmpCond::Ne,
            BPF_JSGT => JmpCond::Sgt,
            BPF_JSGE => JmpCond::Sge,
            BPF_JLT => JmpCond::Lt,
            BPF_JLE => JmpCond::Le,
            BPF_JSLT => JmpCond::Slt,
            BPF_JSLE => JmpCond::Sle,
            _ => return None,
        })
    }
}

/// What a `call` instruction calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// A helper by id (`src = 0`); after the kernel's fixups, `imm` is an address offset.
    Helper(i32),
    /// A bpf-to-bpf call; the callee starts at `pc + 1 + imm` (`src = BPF_PSEUDO_CALL`).
    Local(i32),
    /// A kernel function by BTF id (`src = BPF_PSEUDO_KFUNC_CALL`); `off` selects the module BTF.
    Kfunc {
        /// BTF id.
        btf_id: i32,
        /// fd-array index of the module BTF (0 = vmlinux).
        off: i16,
    },
    /// `callx reg` (`BPF_JMP | BPF_CALL | BPF_X`): call the helper whose id is in a register
    /// (as uBPF and the conformance suite define it; clang emits it for indirect calls).
    Reg(u8),
}

/// The source of a 64-bit immediate load (`ld_imm64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Imm64Source {
    /// A plain 64-bit constant.
    Imm,
    /// `BPF_PSEUDO_MAP_FD`: the first `imm` is a map fd.
    MapFd,
    /// `BPF_PSEUDO_MAP_VALUE`: map fd and an offset into its value.
    MapValue,
    /// `BPF_PSEUDO_BTF_ID`: a kernel variable by BTF id.
    BtfId,
    /// `BPF_PSEUDO_FUNC`: address of a bpf function at `pc + 1 + imm`.
    Func,
    /// `BPF_PSEUDO_MAP_IDX`: index into the fd array.
    MapIdx,
    /// `BPF_PSEUDO_MAP_IDX_VALUE`: fd-array index plus a value offset.
    MapIdxValue,
}

impl Imm64Source {
    /// The `src_reg` encoding.
    pub const fn bits(self) -> u8 {
        match self {
            Imm64Source::Imm => 0,
            Imm64Source::MapFd => BPF_PSEUDO_MAP_FD,
            Imm64Source::MapValue => BPF_PSEUDO_MAP_VALUE,
            Imm64Source::BtfId => BPF_PSEUDO_BTF_ID,
            Imm64Source::Func => BPF_PSEUDO_FUNC,
            Imm64Source::MapIdx => BPF_PSEUDO_MAP_IDX,
            Imm64Source::MapIdxValue => BPF_PSEUDO_MAP_IDX_VALUE,
        }
    }
    fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0 => Imm64Source::Imm,
            BPF_PSEUDO_MAP_FD => Imm64Source::MapFd,
            BPF_PSEUDO_MAP_VALUE => Imm64Source::MapValue,
            BPF_PSEUDO_BTF_ID => Imm64Source::BtfId,
            BPF_PSEUDO_FUNC => Imm64Source::Func,
            BPF_PSEUDO_MAP_IDX => Imm64Source::MapIdx,
            BPF_PSEUDO_MAP_IDX_VALUE => Imm64Source::MapIdxValue,
            _ => return None,
        })
    }
}

/// One decoded instruction. `ld_imm64` is a single [`Instruction::LdImm64`] covering two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// Arithmetic: `dst = dst op src` (or `dst = -dst`, `dst = (sN)src`).
    Alu {
        /// 32- or 64-bit.
        width: Width,
        /// Operation.
        op: AluOp,
        /// Destination register.
        dst: u8,
        /// Second operand (for `Neg`, `Imm(0)` — the kernel requires the unused fields zero).
        src: Source,
    },
    /// `le`/`be`/`bswap` of the low `bits` (16, 32 or 64) of `dst`.
    Endian {
        /// Which swap.
        kind: Endian,
        /// 16, 32 or 64.
        bits: u8,
        /// Register.
        dst: u8,
    },
    /// `dst = *(size *)(src + off)`, zero- or sign-extended.
    Load {
        /// Access size.
        size: Size,
        /// Sign-extend (`BPF_MEMSX`, v4).
        signed: bool,
        /// Destination register.
        dst: u8,
        /// Base register.
        src: u8,
        /// Offset.
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (`BPF_ST` with an immediate or `BPF_STX` with a register).
    Store {
        /// Access size.
        size: Size,
        /// Base register.
        dst: u8,
        /// Offset.
        off: i16,
        /// Value.
        src: Source,
    },
    /// Atomic operation on `*(size *)(dst + off)` (size W or DW).
    Atomic {
        /// Access size.
        size: Size,
        /// Operation.
        op: AtomicOp,
        /// Base register (destination register for `LoadAcquire`).
        dst: u8,
        /// Operand register (base register for `LoadAcquire`).
        src: u8,
        /// Offset.
        off: i16,
    },
    /// `dst = imm64` over two slots; `imm` is the first slot's `imm`, `next_imm` the second's.
    LdImm64 {
        /// Destination register.
        dst: u8,
        /// Pseudo source.
        src: Imm64Source,
        /// First slot's imm (low 32 bits, or map fd / BTF id / func offset).
        imm: i32,
        /// Second slot's imm (high 32 bits, or map value offset).
        next_imm: i32,
    },
    /// Legacy packet load `r0 = ntohX(*(size *)(skb->data + [src +] imm))`.
    LdPacket {
        /// `BPF_ABS` (false) or `BPF_IND` (true).
        indirect: bool,
        /// Access size (B, H or W).
        size: Size,
        /// Index register for `BPF_IND`.
        src: u8,
        /// Constant offset.
        imm: i32,
    },
    /// Unconditional jump to `pc + 1 + off` (`gotol` in `BPF_JMP32` carries a 32-bit offset).
    Ja {
        /// Relative offset.
        off: i32,
        /// Encoded as `gotol` (`BPF_JMP32 | BPF_JA`, offset in `imm`).
        long: bool,
    },
    /// `if dst cond src goto pc + 1 + off`.
    Jmp {
        /// Compare width (JMP32 compares the low 32 bits).
        width: Width,
        /// Condition.
        cond: JmpCond,
        /// Left operand.
        dst: u8,
        /// Right operand.
        src: Source,
        /// Relative offset.
        off: i16,
    },
    /// `may_goto pc + 1 + off` (`BPF_JMP | BPF_JCOND`, `src_reg == BPF_MAY_GOTO`): falls
    /// through while the function's loop budget (`BPF_MAX_LOOPS`) lasts, then jumps. The
    /// verifier explores both; the rewrite turns it into a counter on the stack.
    MayGoto {
        /// Relative offset (never 0).
        off: i16,
    },
    /// A call.
    Call(CallTarget),
    /// Return `r0` from the current function.
    Exit,
}

/// Why a program or instruction is malformed. Every variant names the instruction index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The opcode byte (or its combination with `off`/`imm`/`src`) is not a valid instruction.
    #[error("invalid BPF_{class} opcode {code:#04x} at insn {index}")]
    BadOpcode {
        /// Instruction index.
        index: usize,
        /// Opcode byte.
        code: u8,
        /// Class name.
        class: &'static str,
    },
    /// A register number above 10 (or writing `r10`).
    #[error("insn {index}: invalid register r{reg}")]
    BadRegister {
        /// Instruction index.
        index: usize,
        /// Register number.
        reg: u8,
    },
    /// Reserved fields that must be zero are not.
    #[error("insn {index}: reserved field {field} is not zero")]
    ReservedField {
        /// Instruction index.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// An `ld_imm64` whose second slot is missing or malformed.
    #[error("insn {index}: invalid bpf_ld_imm64 insn (truncated or bad second slot)")]
    BadLdImm64 {
        /// Instruction index of the first slot.
        index: usize,
    },
    /// A jump or call whose target is outside the program or inside an `ld_imm64`.
    #[error("insn {index}: jump out of range from insn {index} to {target}")]
    JumpOutOfRange {
        /// Instruction index.
        index: usize,
        /// Target index.
        target: i64,
    },
    /// The program is empty.
    #[error("empty program")]
    Empty,
    /// The program's last instruction can fall through past the end.
    #[error("insn {index}: last insn is not an exit or jmp")]
    FallsOffEnd {
        /// Index of the last instruction.
        index: usize,
    },
}

fn class_name(code: u8) -> &'static str {
    ["LD", "LDX", "ST", "STX", "ALU", "JMP", "JMP32", "ALU64"][(code & 7) as usize]
}

/// What a decoder admits beyond the instruction set a loader may submit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecodeOptions {
    /// A translated (xlated) program, as the kernel's fixups leave it: the hidden register
    /// `BPF_REG_AX` (r11) of the division guards, and the per-CPU address move
    /// ([`AluOp::MovPercpu`]) of the per-CPU inline lookups.
    pub translated: bool,
}

/// `BPF_REG_AX`: the kernel's scratch register for rewrites (r11), never valid in a program
/// a loader submits.
pub const BPF_REG_AX: u8 = 11;

fn check_reg(index: usize, reg: u8) -> Result<u8, DecodeError> {
    TRANSLATED.with(|t| {
        if reg >= MAX_BPF_REG && !(t.get() && reg == BPF_REG_AX) {
            Err(DecodeError::BadRegister { index, reg })
        } else {
            Ok(reg)
        }
    })
}

thread_local! {
    /// Set while decoding with [`DecodeOptions::translated`]; keeps the many `check_reg`
    /// call sites free of an options parameter.
    static TRANSLATED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Instruction {
    /// Number of 8-byte slots this instruction occupies (2 for `ld_imm64`).
    pub const fn slots(&self) -> usize {
        match self {
            Instruction::LdImm64 { .. } => 2,
            _ => 1,
        }
    }

    /// Decodes the instruction at `insns[index]`. Register numbers are range-checked (0..=10);
    /// whether `r10` may be written is a verifier question, not a decoding one.
    pub fn decode(insns: &[Insn], index: usize) -> Result<Instruction, DecodeError> {
        let insn = *insns.get(index).ok_or(DecodeError::Empty)?;
        let code = insn.code;
        let bad = || DecodeError::BadOpcode {
            index,
            code,
            class: class_name(code),
        };
        let reserved = |field| DecodeError::ReservedField { index, field };
        let dst = check_reg(index, insn.dst())?;
        match insn.class() {
            BPF_ALU | BPF_ALU64 => {
                let width = if insn.class() == BPF_ALU64 {
                    Width::W64
                } else {
                    Width::W32
                };
                let op = code & 0xf0;
                let x = code & BPF_X != 0;
                if op == BPF_END {
                    if insn.src() != 0 || insn.off != 0 {
                        return Err(reserved("src/off"));
                    }
                    let kind = match (width, x) {
                        (Width::W32, false) => Endian::Le,
                        (Width::W32, true) => Endian::Be,
                        (Width::W64, false) => Endian::Bswap,
                        (Width::W64, true) => return Err(bad()),
                    };
                    let bits = match insn.imm {
                        16 | 32 | 64 => insn.imm as u8,
                        _ => return Err(bad()),
                    };
                    return Ok(Instruction::Endian { kind, bits, dst });
                }
                let src = if x {
                    if insn.imm != 0 {
                        return Err(reserved("imm"));
                    }
                    Source::Reg(check_reg(index, insn.src())?)
                } else {
                    if insn.src() != 0 {
                        return Err(reserved("src"));
                    }
                    Source::Imm(insn.imm)
                };
                let signed_off = |unsigned, signed| match insn.off {
                    0 => Ok(unsigned),
                    1 => Ok(signed),
                    _ => Err(bad()),
                };
                let op = match op {
                    BPF_ADD => AluOp::Add,
                    BPF_SUB => AluOp::Sub,
                    BPF_MUL => AluOp::Mul,
                    BPF_DIV => signed_off(AluOp::Div, AluOp::Sdiv)?,
                    BPF_MOD => signed_off(AluOp::Mod, AluOp::Smod)?,
                    BPF_OR => AluOp::Or,
                    BPF_AND => AluOp::And,
                    BPF_LSH => AluOp::Lsh,
                    BPF_RSH => AluOp::Rsh,
                    BPF_XOR => AluOp::Xor,
                    BPF_ARSH => AluOp::Arsh,
                    BPF_NEG => {
                        if x || insn.imm != 0 {
                            return Err(bad());
                        }
                        AluOp::Neg
                    }
                    BPF_MOV => match (insn.off, x, width) {
                        (0, _, _) => AluOp::Mov,
                        (-1, true, Width::W64) if TRANSLATED.with(|t| t.get()) => AluOp::MovPercpu,
                        (8 | 16, true, _) | (32, true, Width::W64) => AluOp::Movsx(insn.off as u8),
                        _ => return Err(bad()),
                    },
                    _ => return Err(bad()),
                };
                let off_ok = matches!(
                    op,
                    AluOp::Sdiv | AluOp::Smod | AluOp::Movsx(_) | AluOp::MovPercpu
                );
                if !off_ok && insn.off != 0 {
                    return Err(reserved("off"));
                }
                Ok(Instruction::Alu {
                    width,
                    op,
                    dst,
                    src,
                })
            }
            BPF_LDX => {
                let size = Size::from_code(code);
                let signed = match code & 0xe0 {
                    BPF_MEM => false,
                    BPF_MEMSX if size != Size::DW => true,
                    _ => return Err(bad()),
                };
                if insn.imm != 0 {
                    return Err(reserved("imm"));
                }
                let src = check_reg(index, insn.src())?;
                Ok(Instruction::Load {
                    size,
                    signed,
                    dst,
                    src,
                    off: insn.off,
                })
            }
            BPF_ST => {
                if code & 0xe0 != BPF_MEM {
                    return Err(bad());
                }
                if insn.src() != 0 {
                    return Err(reserved("src"));
                }
                Ok(Instruction::Store {
                    size: Size::from_code(code),
                    dst,
                    off: insn.off,
                    src: Source::Imm(insn.imm),
                })
            }
            BPF_STX => {
                let size = Size::from_code(code);
                let src = check_reg(index, insn.src())?;
                match code & 0xe0 {
                    BPF_MEM => {
                        if insn.imm != 0 {
                            return Err(reserved("imm"));
                        }
                        Ok(Instruction::Store {
                            size,
                            dst,
                            off: insn.off,
                            src: Source::Reg(src),
                        })
                    }
                    BPF_ATOMIC => {
                        let op = AtomicOp::from_imm(insn.imm).ok_or_else(bad)?;
                        let rmw_size_ok = matches!(size, Size::W | Size::DW);
                        let ok = match op {
                            AtomicOp::LoadAcquire | AtomicOp::StoreRelease => true,
                            _ => rmw_size_ok,
                        };
                        if !ok {
                            return Err(bad());
                        }
                        Ok(Instruction::Atomic {
                            size,
                            op,
                            dst,
                            src,
                            off: insn.off,
                        })
                    }
                    _ => Err(bad()),
                }
            }
            BPF_LD => match code & 0xe0 {
                BPF_IMM if code == BPF_LD | BPF_IMM | BPF_DW => {
                    let next = insns
                        .get(index + 1)
                        .ok_or(DecodeError::BadLdImm64 { index })?;
                    if next.code != 0 || next.regs != 0 || next.off != 0 || insn.off != 0 {
                        return Err(DecodeError::BadLdImm64 { index });
                    }
                    let src = Imm64Source::from_bits(insn.src()).ok_or_else(bad)?;
                    Ok(Instruction::LdImm64 {
                        dst,
                        src,
                        imm: insn.imm,
                        next_imm: next.imm,
                    })
                }
                mode @ (BPF_ABS | BPF_IND) => {
                    let size = Size::from_code(code);
                    if size == Size::DW {
                        return Err(bad());
                    }
                    if insn.off != 0 || dst != 0 {
                        return Err(reserved("dst/off"));
                    }
                    let indirect = mode == BPF_IND;
                    let src = if indirect {
                        check_reg(index, insn.src())?
                    } else {
                        0
                    };
                    if !indirect && insn.src() != 0 {
                        return Err(reserved("src"));
                    }
                    Ok(Instruction::LdPacket {
                        indirect,
                        size,
                        src,
                        imm: insn.imm,
                    })
                }
                _ => Err(bad()),
            },
            _ => {
                // BPF_JMP / BPF_JMP32
                let width = if insn.class() == BPF_JMP {
                    Width::W64
                } else {
                    Width::W32
                };
                let op = code & 0xf0;
                let x = code & BPF_X != 0;
                match op {
                    BPF_JA => {
                        if x || insn.src() != 0 || dst != 0 {
                            return Err(bad());
                        }
                        match width {
                            Width::W64 if insn.imm == 0 => Ok(Instruction::Ja {
                                off: insn.off as i32,
                                long: false,
                            }),
                            Width::W32 if insn.off == 0 => Ok(Instruction::Ja {
                                off: insn.imm,
                                long: true,
                            }),
                            _ => Err(reserved("imm/off")),
                        }
                    }
                    BPF_JCOND => {
                        // check_cond_jmp_op: only `BPF_JMP | BPF_JCOND` with src_reg
                        // BPF_MAY_GOTO and nothing else set.
                        if width != Width::W64 || x || insn.src() != BPF_MAY_GOTO {
                            return Err(bad());
                        }
                        if dst != 0 || insn.imm != 0 || insn.off == 0 {
                            return Err(reserved("dst/off/imm"));
                        }
                        Ok(Instruction::MayGoto { off: insn.off })
                    }
                    BPF_CALL if width == Width::W64 => {
                        if x {
                            // callx (uBPF and the conformance suite): the register is in dst.
                            if insn.src() != 0 || insn.off != 0 || insn.imm != 0 {
                                return Err(reserved("src/off/imm"));
                            }
                            return Ok(Instruction::Call(CallTarget::Reg(dst)));
                        }
                        if dst != 0 {
                            return Err(reserved("dst"));
                        }
                        let target = match insn.src() {
                            0 if insn.off == 0 => CallTarget::Helper(insn.imm),
                            BPF_PSEUDO_CALL if insn.off == 0 => CallTarget::Local(insn.imm),
                            BPF_PSEUDO_KFUNC_CALL => CallTarget::Kfunc {
                                btf_id: insn.imm,
                                off: insn.off,
                            },
                            _ => return Err(bad()),
                        };
                        Ok(Instruction::Call(target))
                    }
                    BPF_EXIT if width == Width::W64 => {
                        if x || insn.regs != 0 || insn.off != 0 || insn.imm != 0 {
                            return Err(bad());
                        }
                        Ok(Instruction::Exit)
                    }
                    _ => {
                        let cond = JmpCond::from_bits(op).ok_or_else(bad)?;
                        let src = if x {
                            if insn.imm != 0 {
                                return Err(reserved("imm"));
                            }
                            Source::Reg(check_reg(index, insn.src())?)
                        } else {
                            if insn.src() != 0 {
                                return Err(reserved("src"));
                            }
                            Source::Imm(insn.imm)
                        };
                        Ok(Instruction::Jmp {
                            width,
                            cond,
                            dst,
                            src,
                            off: insn.off,
                        })
                    }
                }
            }
        }
    }

    /// Encodes back to raw instructions (one, or two for `ld_imm64`).
    pub fn encode(&self) -> Vec<Insn> {
        let src_bits = |s: &Source| match *s {
            Source::Reg(r) => (BPF_X, r, 0),
            Source::Imm(i) => (BPF_K, 0, i),
        };
        match *self {
            Instruction::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let class = if width == Width::W64 {
                    BPF_ALU64
                } else {
                    BPF_ALU
                };
                let (sbit, sreg, imm) = src_bits(&src);
                let (opbits, off) = match op {
                    AluOp::Add => (BPF_ADD, 0),
                    AluOp::Sub => (BPF_SUB, 0),
                    AluOp::Mul => (BPF_MUL, 0),
                    AluOp::Div => (BPF_DIV, 0),
                    AluOp::Sdiv => (BPF_DIV, 1),
                    AluOp::Or => (BPF_OR, 0),
                    AluOp::And => (BPF_AND, 0),
                    AluOp::Lsh => (BPF_LSH, 0),
                    AluOp::Rsh => (BPF_RSH, 0),
                    AluOp::Neg => (BPF_NEG, 0),
                    AluOp::Mod => (BPF_MOD, 0),
                    AluOp::Smod => (BPF_MOD, 1),
                    AluOp::Xor => (BPF_XOR, 0),
                    AluOp::Mov => (BPF_MOV, 0),
                    AluOp::Movsx(bits) => (BPF_MOV, bits as i16),
                    AluOp::MovPercpu => (BPF_MOV, -1),
                    AluOp::Arsh => (BPF_ARSH, 0),
                };
                vec![Insn::new(class | opbits | sbit, dst, sreg, off, imm)]
            }
            Instruction::Endian { kind, bits, dst } => {
                let code = match kind {
                    Endian::Le => BPF_ALU | BPF_END | BPF_TO_LE,
                    Endian::Be => BPF_ALU | BPF_END | BPF_TO_BE,
                    Endian::Bswap => BPF_ALU64 | BPF_END,
                };
                vec![Insn::new(code, dst, 0, 0, bits as i32)]
            }
            Instruction::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                let mode = if signed { BPF_MEMSX } else { BPF_MEM };
                vec![Insn::new(BPF_LDX | mode | size.bits(), dst, src, off, 0)]
            }
            Instruction::Store {
                size,
                dst,
                off,
                src,
            } => match src {
                Source::Imm(imm) => {
                    vec![Insn::new(BPF_ST | BPF_MEM | size.bits(), dst, 0, off, imm)]
                }
                Source::Reg(r) => vec![Insn::new(BPF_STX | BPF_MEM | size.bits(), dst, r, off, 0)],
            },
            Instruction::Atomic {
                size,
                op,
                dst,
                src,
                off,
            } => {
                vec![Insn::new(
                    BPF_STX | BPF_ATOMIC | size.bits(),
                    dst,
                    src,
                    off,
                    op.imm(),
                )]
            }
            Instruction::LdImm64 {
                dst,
                src,
                imm,
                next_imm,
            } => vec![
                Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, src.bits(), 0, imm),
                Insn::new(0, 0, 0, 0, next_imm),
            ],
            Instruction::LdPacket {
                indirect,
                size,
                src,
                imm,
            } => {
                let mode = if indirect { BPF_IND } else { BPF_ABS };
                vec![Insn::new(BPF_LD | mode | size.bits(), 0, src, 0, imm)]
            }
            Instruction::Ja { off, long } => {
                if long {
                    vec![Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, off)]
                } else {
                    vec![Insn::new(BPF_JMP | BPF_JA, 0, 0, off as i16, 0)]
                }
            }
            Instruction::Jmp {
                width,
                cond,
                dst,
                src,
                off,
            } => {
                let class = if width == Width::W64 {
                    BPF_JMP
                } else {
                    BPF_JMP32
                };
                let (sbit, sreg, imm) = src_bits(&src);
                vec![Insn::new(class | cond.bits() | sbit, dst, sreg, off, imm)]
            }
            Instruction::MayGoto { off } => {
                vec![Insn::new(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, off, 0)]
            }
            Instruction::Call(t) => vec![match t {
                CallTarget::Helper(imm) => Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, imm),
                CallTarget::Local(imm) => Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, imm),
                CallTarget::Kfunc { btf_id, off } => {
                    Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, off, btf_id)
                }
                CallTarget::Reg(r) => Insn::new(BPF_JMP | BPF_CALL | BPF_X, r, 0, 0, 0),
            }],
            Instruction::Exit => vec![Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)],
        }
    }

    /// The absolute target of a jump or local call at `index`, if this is one.
    pub fn branch_target(&self, index: usize) -> Option<i64> {
        let rel = match *self {
            Instruction::Ja { off, .. } => off as i64,
            Instruction::Jmp { off, .. } => off as i64,
            Instruction::MayGoto { off } => off as i64,
            Instruction::Call(CallTarget::Local(imm)) => imm as i64,
            Instruction::LdImm64 {
                src: Imm64Source::Func,
                imm,
                ..
            } => imm as i64,
            _ => return None,
        };
        Some(index as i64 + 1 + rel)
    }
}

/// Decodes a whole program into `(index, instruction)` pairs, validating structure: every
/// opcode and register, complete `ld_imm64` pairs, jump and call targets inside the program
/// and not into the middle of an `ld_imm64`, and a last instruction that cannot fall off the end.
pub fn validate(insns: &[Insn]) -> Result<Vec<(usize, Instruction)>, DecodeError> {
    validate_with(insns, DecodeOptions::default())
}

/// [`validate`] with [`DecodeOptions`] (e.g. for a translated program).
pub fn validate_with(
    insns: &[Insn],
    opts: DecodeOptions,
) -> Result<Vec<(usize, Instruction)>, DecodeError> {
    let prev = TRANSLATED.with(|t| t.replace(opts.translated));
    let r = validate_inner(insns);
    TRANSLATED.with(|t| t.set(prev));
    r
}

fn validate_inner(insns: &[Insn]) -> Result<Vec<(usize, Instruction)>, DecodeError> {
    if insns.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut out = Vec::with_capacity(insns.len());
    let mut starts = vec![false; insns.len()];
    let mut i = 0;
    while i < insns.len() {
        let ins = Instruction::decode(insns, i)?;
        starts[i] = true;
        out.push((i, ins));
        i += ins.slots();
    }
    for &(index, ins) in &out {
        if let Some(target) = ins.branch_target(index)
            && (target < 0 || target as usize >= insns.len() || !starts[target as usize])
        {
            return Err(DecodeError::JumpOutOfRange { index, target });
        }
    }
    let &(last_index, last) = out.last().expect("non-empty");
    if !matches!(last, Instruction::Exit | Instruction::Ja { .. }) {
        return Err(DecodeError::FallsOffEnd { index: last_index });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(insns: &[Insn]) {
        let ins = Instruction::decode(insns, 0).unwrap();
        assert_eq!(ins.encode(), insns[..ins.slots()].to_vec(), "{ins:?}");
    }

    #[test]
    fn v4_forms_decode() {
        let sdiv = Insn::new(BPF_ALU64 | BPF_DIV | BPF_X, 1, 2, 1, 0);
        assert!(matches!(
            Instruction::decode(&[sdiv], 0),
            Ok(Instruction::Alu {
                op: AluOp::Sdiv,
                ..
            })
        ));
        let movsx = Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 32, 0);
        assert!(matches!(
            Instruction::decode(&[movsx], 0),
            Ok(Instruction::Alu {
                op: AluOp::Movsx(32),
                ..
            })
        ));
        let movsx32_bad = Insn::new(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 32, 0);
        assert!(Instruction::decode(&[movsx32_bad], 0).is_err());
        let gotol = Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, 70000);
        assert_eq!(
            Instruction::decode(&[gotol], 0),
            Ok(Instruction::Ja {
                off: 70000,
                long: true
            })
        );
        let ldsx = Insn::new(BPF_LDX | BPF_MEMSX | BPF_H, 0, 1, 2, 0);
        assert!(matches!(
            Instruction::decode(&[ldsx], 0),
            Ok(Instruction::Load { signed: true, .. })
        ));
        let bswap = Insn::new(BPF_ALU64 | BPF_END, 3, 0, 0, 64);
        assert_eq!(
            Instruction::decode(&[bswap], 0),
            Ok(Instruction::Endian {
                kind: Endian::Bswap,
                bits: 64,
                dst: 3
            })
        );
        for insn in [sdiv, movsx, gotol, ldsx, bswap] {
            round_trip(&[insn]);
        }
    }

    #[test]
    fn malformed_programs_name_the_index() {
        let exit = Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        let lddw = Insn::new(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 1);
        assert_eq!(
            validate(&[exit, lddw]),
            Err(DecodeError::BadLdImm64 { index: 1 })
        );
        let bad = Insn::new(0xff, 0, 0, 0, 0);
        assert!(matches!(
            validate(&[exit, bad]),
            Err(DecodeError::BadOpcode { index: 1, .. })
        ));
        let ja = Insn::new(BPF_JMP | BPF_JA, 0, 0, 5, 0);
        assert_eq!(
            validate(&[ja, exit]),
            Err(DecodeError::JumpOutOfRange {
                index: 0,
                target: 6
            })
        );
        let badreg = Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 11, 0, 0, 0);
        assert_eq!(
            validate(&[badreg, exit]),
            Err(DecodeError::BadRegister { index: 0, reg: 11 })
        );
        // jump into the middle of an ld_imm64
        let j = Insn::new(BPF_JMP | BPF_JA, 0, 0, 1, 0);
        let hi = Insn::new(0, 0, 0, 0, 0);
        assert!(matches!(
            validate(&[j, lddw, hi, exit]),
            Err(DecodeError::JumpOutOfRange {
                index: 0,
                target: 2
            })
        ));
        let mov = Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
        assert_eq!(validate(&[mov]), Err(DecodeError::FallsOffEnd { index: 0 }));
        assert_eq!(validate(&[]), Err(DecodeError::Empty));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_round_trips(words in proptest::collection::vec(any::<u64>(), 1..8)) {
            let insns: Vec<Insn> = words.iter().map(|w| Insn::from_u64(*w)).collect();
            let _ = validate(&insns);
            if let Ok(ins) = Instruction::decode(&insns, 0) {
                prop_assert_eq!(ins.encode(), insns[..ins.slots()].to_vec());
            }
        }

        #[test]
        fn valid_opcodes_round_trip(code in any::<u8>(), regs in 0u8..=0xaa, off in prop_oneof![Just(0i16), Just(1), Just(8), Just(16), Just(32), any::<i16>()], imm in prop_oneof![Just(0i32), Just(16), Just(32), Just(64), Just(1), any::<i32>()]) {
            let insns = [Insn { code, regs, off, imm }, Insn::new(0, 0, 0, 0, 7)];
            if let Ok(ins) = Instruction::decode(&insns, 0) {
                prop_assert_eq!(ins.encode(), insns[..ins.slots()].to_vec());
            }
        }
    }
}

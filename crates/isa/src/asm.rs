//! An assembler for the uBPF-style text used by the bpf_conformance suite (`-- asm` sections).
//!
//! This module owns the text → [`Insn`] direction only; every instruction is built as a typed
//! [`Instruction`] and encoded with [`Instruction::encode`], so the bytes are exactly the
//! canonical ones the decoder accepts back.
//!
//! # Syntax
//! One instruction per line; `#` starts a comment; `NAME:` defines a label (alone on its line or
//! in front of an instruction). Registers are `%r0`..`%r10` (`r0` without `%` is accepted too;
//! `%r11`..`%r15` assemble so that negative tests can be written — [`crate::decode::validate`]
//! rejects them). Immediates are decimal or `0x` hex, optionally signed; a 32-bit immediate may
//! be written as its unsigned bit pattern (`0xffffffff` is `-1`). Memory operands are
//! `[%rN]`, `[%rN+OFF]` or `[%rN-OFF]`. Jump targets are `+N`/`-N` (relative to the next
//! instruction, as in the encoding) or a label; as in the suite's own assembler, the label
//! `exit` names the first `exit` instruction unless the program defines it.
//!
//! | form | encoding |
//! |---|---|
//! | `add`/`sub`/`mul`/`div`/`sdiv`/`mod`/`smod`/`or`/`and`/`xor`/`lsh`/`rsh`/`arsh`/`mov` `dst, src\|imm` | `BPF_ALU64` (`…32`: `BPF_ALU`; a `…64` suffix is accepted) |
//! | `neg dst`, `neg32 dst` | `BPF_NEG` |
//! | `movsx864`, `movsx1664`, `movsx3264`, `movsx832`, `movsx1632` `dst, src` | `BPF_MOV \| BPF_X` with `off` 8/16/32 |
//! | `le16/32/64`, `be16/32/64` `dst` | `BPF_ALU \| BPF_END` |
//! | `bswap16/32/64` (alias `swap16/32/64`) `dst` | `BPF_ALU64 \| BPF_END` |
//! | `lddw dst, imm64` | `ld_imm64` (two slots) |
//! | `ldxb/h/w/dw dst, [src+off]`; `ldxsb/sh/sw` | `BPF_LDX \| BPF_MEM` / `BPF_MEMSX` |
//! | `stb/h/w/dw [dst+off], imm`; `stxb/h/w/dw [dst+off], src` | `BPF_ST` / `BPF_STX` |
//! | `lock [fetch] add/and/or/xor[32] [dst+off], src`; `lock xchg[32]`, `lock cmpxchg[32]` | `BPF_STX \| BPF_ATOMIC` (DW, or W with `32`) |
//! | `ja target`; `ja32 target` (`gotol`) | `BPF_JMP \| BPF_JA`; `BPF_JMP32 \| BPF_JA` with the offset in `imm` |
//! | `jeq/jne/jgt/jge/jlt/jle/jsgt/jsge/jslt/jsle/jset[32] dst, src\|imm, target` | `BPF_JMP` / `BPF_JMP32` |
//! | `call N`, `call helper N` | helper call |
//! | `call local target` | bpf-to-bpf call (`src = BPF_PSEUDO_CALL`) |
//! | `call runtime N` | kfunc call (`src = BPF_PSEUDO_KFUNC_CALL`) |
//! | `call %rN` | `callx`: `BPF_JMP \| BPF_CALL \| BPF_X`, register in `dst` |
//! | `exit` | `BPF_JMP \| BPF_EXIT` |

use std::collections::HashMap;

use crate::decode::{
    AluOp, AtomicOp, CallTarget, Endian, Imm64Source, Instruction, JmpCond, Size, Source, Width,
};
use crate::insn::Insn;

/// An assembly error, naming the 1-based source line and its text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}: `{text}`")]
pub struct AsmError {
    /// 1-based line number in the source.
    pub line: usize,
    /// The line's text (trimmed, comment included).
    pub text: String,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    /// The mnemonic is not known.
    #[error("unknown mnemonic `{0}`")]
    UnknownMnemonic(String),
    /// Wrong number of operands.
    #[error("`{mnemonic}` takes {expected} operand(s), found {found}")]
    OperandCount {
        /// Mnemonic.
        mnemonic: String,
        /// Expected count.
        expected: usize,
        /// Found count.
        found: usize,
    },
    /// Not a register `%r0`..`%r15`.
    #[error("invalid register `{0}`")]
    BadRegister(String),
    /// Not a number.
    #[error("invalid immediate `{0}`")]
    BadImmediate(String),
    /// A number that does not fit its field.
    #[error("immediate `{value}` does not fit in {bits} bits")]
    ImmediateOutOfRange {
        /// The operand text.
        value: String,
        /// Field width.
        bits: u32,
    },
    /// Not a `[%rN+OFF]` memory operand.
    #[error("invalid memory operand `{0}` (expected [%rN], [%rN+OFF] or [%rN-OFF])")]
    BadMemoryOperand(String),
    /// Not a `+N`/`-N` offset or label name.
    #[error("invalid jump target `{0}` (expected +N, -N or a label)")]
    BadJumpTarget(String),
    /// A jump to a label that is never defined.
    #[error("undefined label `{0}`")]
    UndefinedLabel(String),
    /// A label defined twice.
    #[error("label `{0}` is defined twice")]
    DuplicateLabel(String),
    /// A label whose distance does not fit the offset field.
    #[error("jump to `{target}` is {distance} instructions away; the offset field has {bits} bits")]
    JumpOutOfRange {
        /// The target as written.
        target: String,
        /// Distance in instructions.
        distance: i64,
        /// Offset field width.
        bits: u32,
    },
    /// `call` with an unknown mode word.
    #[error(
        "invalid call `{0}` (expected call N, call helper N, call local TARGET, call runtime N or call %rN)"
    )]
    BadCall(String),
    /// A malformed label definition.
    #[error("invalid label name `{0}`")]
    BadLabel(String),
}

/// Assembles a whole program. Labels may be used before they are defined.
pub fn assemble(src: &str) -> Result<Vec<Insn>, AsmError> {
    let mut pending: Vec<Pending> = Vec::new();
    let mut labels: HashMap<String, usize> = HashMap::new();
    let mut first_exit: Option<usize> = None;
    let mut slot = 0usize;

    for (idx, raw_line) in src.lines().enumerate() {
        let line_no = idx + 1;
        let err = |kind| AsmError {
            line: line_no,
            text: raw_line.trim().to_string(),
            kind,
        };
        let mut code = raw_line.split('#').next().unwrap_or("").trim();
        if code.is_empty() {
            continue;
        }
        // A label definition, alone or in front of an instruction. A ':' can appear nowhere
        // else in the syntax, so the first one ends the label.
        if let Some((name, rest)) = code.split_once(':') {
            let name = name.trim();
            if !is_label_name(name) {
                return Err(err(AsmErrorKind::BadLabel(name.to_string())));
            }
            if labels.insert(name.to_string(), slot).is_some() {
                return Err(err(AsmErrorKind::DuplicateLabel(name.to_string())));
            }
            code = rest.trim();
            if code.is_empty() {
                continue;
            }
        }
        let tokens = tokenize(code);
        let Some((mnemonic, operands)) = tokens.split_first() else {
            continue;
        };
        let parsed = parse_line(mnemonic, operands).map_err(err)?;
        if matches!(parsed, Parsed::Done(Instruction::Exit)) && first_exit.is_none() {
            first_exit = Some(slot);
        }
        let slots = parsed.slots();
        pending.push(Pending {
            line: line_no,
            text: raw_line.trim().to_string(),
            slot,
            parsed,
        });
        slot += slots;
    }

    // The suite's assembler lets programs jump to `exit` without defining it.
    if let Some(exit_slot) = first_exit {
        labels.entry("exit".to_string()).or_insert(exit_slot);
    }

    let mut out = Vec::with_capacity(slot);
    for p in pending {
        let ins = p.resolve(&labels)?;
        out.extend(ins.encode());
    }
    Ok(out)
}

/// A parsed line; jumps to labels are completed once all labels are known.
enum Parsed {
    Done(Instruction),
    /// An instruction whose relative offset comes from `target`.
    Branch {
        target: String,
        build: BranchKind,
    },
}

#[derive(Clone, Copy)]
enum BranchKind {
    Ja,
    JaLong,
    Jmp {
        width: Width,
        cond: JmpCond,
        dst: u8,
        src: Source,
    },
    CallLocal,
}

impl Parsed {
    fn slots(&self) -> usize {
        match self {
            Parsed::Done(i) => i.slots(),
            Parsed::Branch { .. } => 1,
        }
    }
}

struct Pending {
    line: usize,
    text: String,
    slot: usize,
    parsed: Parsed,
}

impl Pending {
    fn resolve(self, labels: &HashMap<String, usize>) -> Result<Instruction, AsmError> {
        let err = |kind| AsmError {
            line: self.line,
            text: self.text.clone(),
            kind,
        };
        let (target, build) = match self.parsed {
            Parsed::Done(i) => return Ok(i),
            Parsed::Branch { target, build } => (target, build),
        };
        let bits = match build {
            BranchKind::Ja | BranchKind::Jmp { .. } => 16,
            BranchKind::JaLong | BranchKind::CallLocal => 32,
        };
        let distance: i64 = if target.starts_with(['+', '-']) {
            let v = parse_int(&target)
                .ok_or_else(|| err(AsmErrorKind::BadJumpTarget(target.clone())))?;
            i64::try_from(v).map_err(|_| {
                err(AsmErrorKind::ImmediateOutOfRange {
                    value: target.clone(),
                    bits,
                })
            })?
        } else {
            let dest = *labels
                .get(&target)
                .ok_or_else(|| err(AsmErrorKind::UndefinedLabel(target.clone())))?;
            dest as i64 - self.slot as i64 - 1
        };
        let out_of_range = || {
            err(AsmErrorKind::JumpOutOfRange {
                target: target.clone(),
                distance,
                bits,
            })
        };
        Ok(match build {
            BranchKind::Ja => Instruction::Ja {
                off: i16::try_from(distance).map_err(|_| out_of_range())? as i32,
                long: false,
            },
            BranchKind::JaLong => Instruction::Ja {
                off: i32::try_from(distance).map_err(|_| out_of_range())?,
                long: true,
            },
            BranchKind::Jmp {
                width,
                cond,
                dst,
                src,
            } => Instruction::Jmp {
                width,
                cond,
                dst,
                src,
                off: i16::try_from(distance).map_err(|_| out_of_range())?,
            },
            BranchKind::CallLocal => Instruction::Call(CallTarget::Local(
                i32::try_from(distance).map_err(|_| out_of_range())?,
            )),
        })
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Splits a line into words at whitespace and commas; whitespace inside `[...]` is dropped so
/// `[%r1 + 2]` reads as `[%r1+2]`.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in code.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if c.is_whitespace() && depth > 0 => {}
            c if c.is_whitespace() || c == ',' => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

/// Parses `[+-]?(0x HEX | DEC)` into an i128 (wide enough for every field's range checks).
fn parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 20 {
            return None;
        }
        i128::from_str_radix(hex, 16).ok()?
    } else {
        if body.is_empty() || body.len() > 30 || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        body.parse::<i128>().ok()?
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// A 32-bit immediate: any value in `i32` or `u32` range (the latter as its bit pattern).
fn imm32(s: &str) -> Result<i32, AsmErrorKind> {
    let v = parse_int(s).ok_or_else(|| AsmErrorKind::BadImmediate(s.to_string()))?;
    if (i32::MIN as i128..=u32::MAX as i128).contains(&v) {
        Ok(v as u32 as i32)
    } else {
        Err(AsmErrorKind::ImmediateOutOfRange {
            value: s.to_string(),
            bits: 32,
        })
    }
}

/// A 64-bit immediate: any value in `i64` or `u64` range.
fn imm64(s: &str) -> Result<u64, AsmErrorKind> {
    let v = parse_int(s).ok_or_else(|| AsmErrorKind::BadImmediate(s.to_string()))?;
    if (i64::MIN as i128..=u64::MAX as i128).contains(&v) {
        Ok(v as u64)
    } else {
        Err(AsmErrorKind::ImmediateOutOfRange {
            value: s.to_string(),
            bits: 64,
        })
    }
}

fn reg(s: &str) -> Result<u8, AsmErrorKind> {
    let bad = || AsmErrorKind::BadRegister(s.to_string());
    let num = s
        .strip_prefix("%r")
        .or_else(|| s.strip_prefix('r'))
        .ok_or_else(bad)?;
    if num.is_empty() || num.len() > 2 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match num.parse::<u8>() {
        Ok(n) if n <= 15 => Ok(n),
        _ => Err(bad()),
    }
}

fn is_reg(s: &str) -> bool {
    s.starts_with('%') || reg(s).is_ok()
}

fn source(s: &str) -> Result<Source, AsmErrorKind> {
    if is_reg(s) {
        Ok(Source::Reg(reg(s)?))
    } else {
        Ok(Source::Imm(imm32(s)?))
    }
}

/// `[%rN]`, `[%rN+OFF]`, `[%rN-OFF]` → (register, offset).
fn mem(s: &str) -> Result<(u8, i16), AsmErrorKind> {
    let bad = || AsmErrorKind::BadMemoryOperand(s.to_string());
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(bad)?;
    let split = inner.find(['+', '-']);
    let (r, off) = match split {
        Some(i) => (&inner[..i], &inner[i..]),
        None => (inner, "0"),
    };
    let r = reg(r)?;
    let v = parse_int(off).ok_or_else(bad)?;
    let off = i16::try_from(v).map_err(|_| AsmErrorKind::ImmediateOutOfRange {
        value: off.to_string(),
        bits: 16,
    })?;
    Ok((r, off))
}

fn jump_target(s: &str) -> Result<String, AsmErrorKind> {
    if s.starts_with(['+', '-']) {
        parse_int(s).ok_or_else(|| AsmErrorKind::BadJumpTarget(s.to_string()))?;
        Ok(s.to_string())
    } else if is_label_name(s) {
        Ok(s.to_string())
    } else {
        Err(AsmErrorKind::BadJumpTarget(s.to_string()))
    }
}

fn expect(mnemonic: &str, operands: &[String], n: usize) -> Result<(), AsmErrorKind> {
    if operands.len() == n {
        Ok(())
    } else {
        Err(AsmErrorKind::OperandCount {
            mnemonic: mnemonic.to_string(),
            expected: n,
            found: operands.len(),
        })
    }
}

/// Splits a `32`/`64` width suffix off a mnemonic; no suffix means 64-bit.
fn width_suffix(m: &str) -> (&str, Width) {
    if let Some(base) = m.strip_suffix("32") {
        (base, Width::W32)
    } else if let Some(base) = m.strip_suffix("64") {
        (base, Width::W64)
    } else {
        (m, Width::W64)
    }
}

fn alu_op(base: &str) -> Option<AluOp> {
    Some(match base {
        "add" => AluOp::Add,
        "sub" => AluOp::Sub,
        "mul" => AluOp::Mul,
        "div" => AluOp::Div,
        "sdiv" => AluOp::Sdiv,
        "or" => AluOp::Or,
        "and" => AluOp::And,
        "lsh" => AluOp::Lsh,
        "rsh" => AluOp::Rsh,
        "mod" => AluOp::Mod,
        "smod" => AluOp::Smod,
        "xor" => AluOp::Xor,
        "mov" => AluOp::Mov,
        "arsh" => AluOp::Arsh,
        _ => return None,
    })
}

fn jmp_cond(base: &str) -> Option<JmpCond> {
    Some(match base {
        "jeq" => JmpCond::Eq,
        "jgt" => JmpCond::Gt,
        "jge" => JmpCond::Ge,
        "jset" => JmpCond::Set,
        "jne" => JmpCond::Ne,
        "jsgt" => JmpCond::Sgt,
        "jsge" => JmpCond::Sge,
        "jlt" => JmpCond::Lt,
        "jle" => JmpCond::Le,
        "jslt" => JmpCond::Slt,
        "jsle" => JmpCond::Sle,
        _ => return None,
    })
}

fn size_suffix(s: &str) -> Option<Size> {
    Some(match s {
        "b" => Size::B,
        "h" => Size::H,
        "w" => Size::W,
        "dw" => Size::DW,
        _ => return None,
    })
}

fn parse_line(mnemonic: &str, ops: &[String]) -> Result<Parsed, AsmErrorKind> {
    let done = |i| Ok(Parsed::Done(i));
    let m = mnemonic;
    match m {
        "exit" => {
            expect(m, ops, 0)?;
            return done(Instruction::Exit);
        }
        "lddw" => {
            expect(m, ops, 2)?;
            let v = imm64(&ops[1])?;
            return done(Instruction::LdImm64 {
                dst: reg(&ops[0])?,
                src: Imm64Source::Imm,
                imm: v as u32 as i32,
                next_imm: (v >> 32) as u32 as i32,
            });
        }
        "ja" | "ja32" => {
            expect(m, ops, 1)?;
            let build = if m == "ja" {
                BranchKind::Ja
            } else {
                BranchKind::JaLong
            };
            return Ok(Parsed::Branch {
                target: jump_target(&ops[0])?,
                build,
            });
        }
        "call" => return parse_call(ops),
        "lock" => return parse_lock(ops),
        "neg" | "neg32" => {
            expect(m, ops, 1)?;
            let width = if m == "neg" { Width::W64 } else { Width::W32 };
            return done(Instruction::Alu {
                width,
                op: AluOp::Neg,
                dst: reg(&ops[0])?,
                src: Source::Imm(0),
            });
        }
        _ => {}
    }

    // Byte swaps: le16/be32/bswap64/swap16 …
    for (prefix, kind) in [
        ("le", Endian::Le),
        ("be", Endian::Be),
        ("bswap", Endian::Bswap),
        ("swap", Endian::Bswap),
    ] {
        let bits = match m.strip_prefix(prefix) {
            Some("16") => 16,
            Some("32") => 32,
            Some("64") => 64,
            _ => continue,
        };
        expect(m, ops, 1)?;
        return done(Instruction::Endian {
            kind,
            bits,
            dst: reg(&ops[0])?,
        });
    }

    // Sign-extending moves: movsx{8,16,32}{32,64}.
    if let Some(rest) = m.strip_prefix("movsx") {
        let (from, width) = match rest {
            "832" => (8, Width::W32),
            "1632" => (16, Width::W32),
            "864" => (8, Width::W64),
            "1664" => (16, Width::W64),
            "3264" => (32, Width::W64),
            _ => return Err(AsmErrorKind::UnknownMnemonic(m.to_string())),
        };
        expect(m, ops, 2)?;
        return done(Instruction::Alu {
            width,
            op: AluOp::Movsx(from),
            dst: reg(&ops[0])?,
            src: Source::Reg(reg(&ops[1])?),
        });
    }

    // Loads: ldx{b,h,w,dw}, ldxs{b,h,w}.
    if let Some(rest) = m.strip_prefix("ldx") {
        let (signed, sz) = match rest.strip_prefix('s') {
            Some(sz) if sz != "dw" => (true, sz),
            _ => (false, rest),
        };
        if let Some(size) = size_suffix(sz) {
            expect(m, ops, 2)?;
            let (src, off) = mem(&ops[1])?;
            return done(Instruction::Load {
                size,
                signed,
                dst: reg(&ops[0])?,
                src,
                off,
            });
        }
    }

    // Stores: stx{b,h,w,dw} (register) and st{b,h,w,dw} (immediate).
    if let Some(size) = m.strip_prefix("stx").and_then(size_suffix) {
        expect(m, ops, 2)?;
        let (dst, off) = mem(&ops[0])?;
        return done(Instruction::Store {
            size,
            dst,
            off,
            src: Source::Reg(reg(&ops[1])?),
        });
    }
    if let Some(size) = m.strip_prefix("st").and_then(size_suffix) {
        expect(m, ops, 2)?;
        let (dst, off) = mem(&ops[0])?;
        return done(Instruction::Store {
            size,
            dst,
            off,
            src: Source::Imm(imm32(&ops[1])?),
        });
    }

    let (base, width) = width_suffix(m);
    if let Some(op) = alu_op(base) {
        expect(m, ops, 2)?;
        return done(Instruction::Alu {
            width,
            op,
            dst: reg(&ops[0])?,
            src: source(&ops[1])?,
        });
    }
    // Jumps only take the `32` suffix (`jeq64` is not a thing).
    if let Some(cond) = jmp_cond(base).filter(|_| !m.ends_with("64")) {
        expect(m, ops, 3)?;
        return Ok(Parsed::Branch {
            target: jump_target(&ops[2])?,
            build: BranchKind::Jmp {
                width,
                cond,
                dst: reg(&ops[0])?,
                src: source(&ops[1])?,
            },
        });
    }
    Err(AsmErrorKind::UnknownMnemonic(m.to_string()))
}

fn parse_call(ops: &[String]) -> Result<Parsed, AsmErrorKind> {
    let joined = || format!("call {}", ops.join(" "));
    match ops {
        [target] if is_reg(target) => Ok(Parsed::Done(Instruction::Call(CallTarget::Reg(reg(
            target,
        )?)))),
        [imm] => Ok(Parsed::Done(Instruction::Call(CallTarget::Helper(imm32(
            imm,
        )?)))),
        [mode, target] => match mode.as_str() {
            "helper" if is_reg(target) => Ok(Parsed::Done(Instruction::Call(CallTarget::Reg(
                reg(target)?,
            )))),
            "helper" => Ok(Parsed::Done(Instruction::Call(CallTarget::Helper(imm32(
                target,
            )?)))),
            "local" => Ok(Parsed::Branch {
                target: jump_target(target)?,
                build: BranchKind::CallLocal,
            }),
            "runtime" => Ok(Parsed::Done(Instruction::Call(CallTarget::Kfunc {
                btf_id: imm32(target)?,
                off: 0,
            }))),
            _ => Err(AsmErrorKind::BadCall(joined())),
        },
        _ => Err(AsmErrorKind::BadCall(joined())),
    }
}

/// `lock [fetch] OP[32] [dst+off], src`.
fn parse_lock(ops: &[String]) -> Result<Parsed, AsmErrorKind> {
    let (fetch, rest) = match ops.split_first() {
        Some((f, rest)) if f == "fetch" => (true, rest),
        _ => (false, ops),
    };
    let Some((op_name, operands)) = rest.split_first() else {
        return Err(AsmErrorKind::OperandCount {
            mnemonic: "lock".to_string(),
            expected: 3,
            found: ops.len(),
        });
    };
    let (base, size) = match op_name.strip_suffix("32") {
        Some(base) => (base, Size::W),
        None => (op_name.as_str(), Size::DW),
    };
    let op = match base {
        "add" => AtomicOp::Add { fetch },
        "and" => AtomicOp::And { fetch },
        "or" => AtomicOp::Or { fetch },
        "xor" => AtomicOp::Xor { fetch },
        // Exchange always returns the old value; `fetch` is redundant but harmless.
        "xchg" => AtomicOp::Xchg,
        "cmpxchg" => AtomicOp::Cmpxchg,
        _ => {
            return Err(AsmErrorKind::UnknownMnemonic(format!("lock {op_name}")));
        }
    };
    let mnemonic = format!("lock {op_name}");
    expect(&mnemonic, operands, 2)?;
    let (dst, off) = mem(&operands[0])?;
    Ok(Parsed::Done(Instruction::Atomic {
        size,
        op,
        dst,
        src: reg(&operands[1])?,
        off,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::*;
    use proptest::prelude::*;

    fn one(src: &str) -> Insn {
        let v = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(v.len(), 1, "{src}");
        v[0]
    }

    fn kind(src: &str) -> AsmErrorKind {
        match assemble(src) {
            Err(e) => e.kind,
            Ok(v) => panic!("{src} assembled to {v:?}"),
        }
    }

    #[test]
    fn alu_register_and_immediate() {
        assert_eq!(
            one("mov %r0, 1"),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1)
        );
        assert_eq!(
            one("mov32 %r1, %r2"),
            Insn::new(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 0, 0)
        );
        assert_eq!(
            one("add %r3, -1"),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -1)
        );
        assert_eq!(
            one("add32 %r3, 0xffffffff"),
            Insn::new(BPF_ALU | BPF_ADD | BPF_K, 3, 0, 0, -1)
        );
        assert_eq!(
            one("sub %r1, %r9"),
            Insn::new(BPF_ALU64 | BPF_SUB | BPF_X, 1, 9, 0, 0)
        );
        assert_eq!(
            one("mul32 %r1, 7"),
            Insn::new(BPF_ALU | BPF_MUL | BPF_K, 1, 0, 0, 7)
        );
        assert_eq!(
            one("div %r1, 2"),
            Insn::new(BPF_ALU64 | BPF_DIV | BPF_K, 1, 0, 0, 2)
        );
        assert_eq!(
            one("sdiv %r1, 2"),
            Insn::new(BPF_ALU64 | BPF_DIV | BPF_K, 1, 0, 1, 2)
        );
        assert_eq!(
            one("sdiv32 %r1, %r2"),
            Insn::new(BPF_ALU | BPF_DIV | BPF_X, 1, 2, 1, 0)
        );
        assert_eq!(
            one("mod %r1, 3"),
            Insn::new(BPF_ALU64 | BPF_MOD | BPF_K, 1, 0, 0, 3)
        );
        assert_eq!(
            one("smod32 %r1, 3"),
            Insn::new(BPF_ALU | BPF_MOD | BPF_K, 1, 0, 1, 3)
        );
        assert_eq!(
            one("or %r1, 0x10"),
            Insn::new(BPF_ALU64 | BPF_OR | BPF_K, 1, 0, 0, 16)
        );
        assert_eq!(
            one("and32 %r1, %r0"),
            Insn::new(BPF_ALU | BPF_AND | BPF_X, 1, 0, 0, 0)
        );
        assert_eq!(
            one("lsh %r1, 63"),
            Insn::new(BPF_ALU64 | BPF_LSH | BPF_K, 1, 0, 0, 63)
        );
        assert_eq!(
            one("rsh32 %r1, 1"),
            Insn::new(BPF_ALU | BPF_RSH | BPF_K, 1, 0, 0, 1)
        );
        assert_eq!(
            one("arsh %r1, %r2"),
            Insn::new(BPF_ALU64 | BPF_ARSH | BPF_X, 1, 2, 0, 0)
        );
        assert_eq!(
            one("xor32 %r1, 5"),
            Insn::new(BPF_ALU | BPF_XOR | BPF_K, 1, 0, 0, 5)
        );
        assert_eq!(
            one("add64 %r1, 5"),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 5)
        );
        assert_eq!(one("neg %r4"), Insn::new(BPF_ALU64 | BPF_NEG, 4, 0, 0, 0));
        assert_eq!(one("neg32 %r4"), Insn::new(BPF_ALU | BPF_NEG, 4, 0, 0, 0));
        // `r1` without `%` and spacing variations.
        assert_eq!(
            one("  mov   r1 ,r2  "),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 0, 0)
        );
    }

    #[test]
    fn sign_extending_moves() {
        let x = BPF_MOV | BPF_X;
        assert_eq!(
            one("movsx864 %r0, %r1"),
            Insn::new(BPF_ALU64 | x, 0, 1, 8, 0)
        );
        assert_eq!(
            one("movsx1664 %r8, %r7"),
            Insn::new(BPF_ALU64 | x, 8, 7, 16, 0)
        );
        assert_eq!(
            one("movsx3264 %r0, %r9"),
            Insn::new(BPF_ALU64 | x, 0, 9, 32, 0)
        );
        assert_eq!(one("movsx832 %r2, %r1"), Insn::new(BPF_ALU | x, 2, 1, 8, 0));
        assert_eq!(
            one("movsx1632 %r4, %r3"),
            Insn::new(BPF_ALU | x, 4, 3, 16, 0)
        );
        assert!(matches!(
            kind("movsx3232 %r0, %r1"),
            AsmErrorKind::UnknownMnemonic(_)
        ));
    }

    #[test]
    fn byte_swaps() {
        assert_eq!(
            one("le16 %r0"),
            Insn::new(BPF_ALU | BPF_END | BPF_TO_LE, 0, 0, 0, 16)
        );
        assert_eq!(
            one("be32 %r1"),
            Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 1, 0, 0, 32)
        );
        assert_eq!(
            one("be64 %r1"),
            Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 1, 0, 0, 64)
        );
        assert_eq!(
            one("bswap64 %r2"),
            Insn::new(BPF_ALU64 | BPF_END, 2, 0, 0, 64)
        );
        assert_eq!(
            one("swap16 %r2"),
            Insn::new(BPF_ALU64 | BPF_END, 2, 0, 0, 16)
        );
        assert!(matches!(kind("be8 %r1"), AsmErrorKind::UnknownMnemonic(_)));
    }

    #[test]
    fn lddw_takes_two_slots() {
        let v = assemble("lddw %r0, 0x1122334455667788\nexit").unwrap();
        assert_eq!(
            v,
            vec![
                Insn::new(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 0x55667788),
                Insn::new(0, 0, 0, 0, 0x11223344),
                Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
            ]
        );
        // The conformance suite's raw form of the same program.
        let raw = [0x5566778800000018u64, 0x1122334400000000, 0x95];
        assert_eq!(v.iter().map(Insn::to_u64).collect::<Vec<_>>(), raw);
        let neg = assemble("lddw %r1, -1").unwrap();
        assert_eq!((neg[0].imm, neg[1].imm), (-1, -1));
        let big = assemble("lddw %r1, 0xFFFFFFFFFFFFFFFF").unwrap();
        assert_eq!((big[0].imm, big[1].imm), (-1, -1));
    }

    #[test]
    fn loads_and_stores() {
        let m = BPF_MEM;
        assert_eq!(
            one("ldxb %r0, [%r1]"),
            Insn::new(BPF_LDX | m | BPF_B, 0, 1, 0, 0)
        );
        assert_eq!(
            one("ldxh %r0, [%r1+2]"),
            Insn::new(BPF_LDX | m | BPF_H, 0, 1, 2, 0)
        );
        assert_eq!(
            one("ldxw %r0, [%r10-4]"),
            Insn::new(BPF_LDX | m | BPF_W, 0, 10, -4, 0)
        );
        assert_eq!(
            one("ldxdw %r0, [%r1 + 0x10]"),
            Insn::new(BPF_LDX | m | BPF_DW, 0, 1, 16, 0)
        );
        let sx = BPF_MEMSX;
        assert_eq!(
            one("ldxsb %r0, [%r10-1]"),
            Insn::new(BPF_LDX | sx | BPF_B, 0, 10, -1, 0)
        );
        assert_eq!(
            one("ldxsh %r0, [%r10-2]"),
            Insn::new(BPF_LDX | sx | BPF_H, 0, 10, -2, 0)
        );
        assert_eq!(
            one("ldxsw %r0, [%r10-4]"),
            Insn::new(BPF_LDX | sx | BPF_W, 0, 10, -4, 0)
        );
        assert!(matches!(
            kind("ldxsdw %r0, [%r1]"),
            AsmErrorKind::UnknownMnemonic(_)
        ));
        assert_eq!(
            one("stb [%r1+2], 0x11"),
            Insn::new(BPF_ST | m | BPF_B, 1, 0, 2, 0x11)
        );
        assert_eq!(
            one("sth [%r1], -1"),
            Insn::new(BPF_ST | m | BPF_H, 1, 0, 0, -1)
        );
        assert_eq!(
            one("stw [%r1+4], 0x80000001"),
            Insn::new(BPF_ST | m | BPF_W, 1, 0, 4, 0x80000001u32 as i32)
        );
        assert_eq!(
            one("stdw [%r10-8], 3"),
            Insn::new(BPF_ST | m | BPF_DW, 10, 0, -8, 3)
        );
        assert_eq!(
            one("stxb [%r1+1], %r2"),
            Insn::new(BPF_STX | m | BPF_B, 1, 2, 1, 0)
        );
        assert_eq!(
            one("stxh [%r1], %r2"),
            Insn::new(BPF_STX | m | BPF_H, 1, 2, 0, 0)
        );
        assert_eq!(
            one("stxw [%r1], %r2"),
            Insn::new(BPF_STX | m | BPF_W, 1, 2, 0, 0)
        );
        assert_eq!(
            one("stxdw [%r10-8], %r2"),
            Insn::new(BPF_STX | m | BPF_DW, 10, 2, -8, 0)
        );
    }

    #[test]
    fn atomics() {
        let a = BPF_STX | BPF_ATOMIC;
        let add = BPF_ADD as i32;
        assert_eq!(
            one("lock add [%r10-8], %r1"),
            Insn::new(a | BPF_DW, 10, 1, -8, add)
        );
        assert_eq!(
            one("lock add32 [%r10-4], %r1"),
            Insn::new(a | BPF_W, 10, 1, -4, add)
        );
        assert_eq!(
            one("lock fetch add [%r10-8], %r1"),
            Insn::new(a | BPF_DW, 10, 1, -8, add | BPF_FETCH)
        );
        assert_eq!(
            one("lock fetch and32 [%r10-4], %r3"),
            Insn::new(a | BPF_W, 10, 3, -4, BPF_AND as i32 | BPF_FETCH)
        );
        assert_eq!(
            one("lock or [%r10-8], %r1"),
            Insn::new(a | BPF_DW, 10, 1, -8, BPF_OR as i32)
        );
        assert_eq!(
            one("lock fetch xor32 [%r10-8], %r1"),
            Insn::new(a | BPF_W, 10, 1, -8, BPF_XOR as i32 | BPF_FETCH)
        );
        assert_eq!(
            one("lock xchg [%r10-8], %r1"),
            Insn::new(a | BPF_DW, 10, 1, -8, BPF_XCHG)
        );
        assert_eq!(
            one("lock cmpxchg32 [%r10-8], %r1"),
            Insn::new(a | BPF_W, 10, 1, -8, BPF_CMPXCHG)
        );
        assert!(matches!(
            kind("lock sub [%r1], %r2"),
            AsmErrorKind::UnknownMnemonic(_)
        ));
        assert!(matches!(kind("lock"), AsmErrorKind::OperandCount { .. }));
        assert!(matches!(
            kind("lock add %r1, %r2"),
            AsmErrorKind::BadMemoryOperand(_)
        ));
    }

    #[test]
    fn jumps_with_offsets_and_labels() {
        assert_eq!(one("ja +2"), Insn::new(BPF_JMP | BPF_JA, 0, 0, 2, 0));
        assert_eq!(one("ja -1"), Insn::new(BPF_JMP | BPF_JA, 0, 0, -1, 0));
        assert_eq!(
            one("jeq %r1, 0x80000000, +1"),
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1, i32::MIN)
        );
        assert_eq!(
            one("jne32 %r1, %r2, -3"),
            Insn::new(BPF_JMP32 | BPF_JNE | BPF_X, 1, 2, -3, 0)
        );
        for (m, bits) in [
            ("jgt", BPF_JGT),
            ("jge", BPF_JGE),
            ("jlt", BPF_JLT),
            ("jle", BPF_JLE),
            ("jsgt", BPF_JSGT),
            ("jsge", BPF_JSGE),
            ("jslt", BPF_JSLT),
            ("jsle", BPF_JSLE),
            ("jset", BPF_JSET),
        ] {
            assert_eq!(
                one(&format!("{m} %r1, 5, +0")),
                Insn::new(BPF_JMP | bits | BPF_K, 1, 0, 0, 5)
            );
            assert_eq!(
                one(&format!("{m}32 %r1, %r3, +0")),
                Insn::new(BPF_JMP32 | bits | BPF_X, 1, 3, 0, 0)
            );
        }
        // Forward and backward labels, `ld_imm64` counted as two slots.
        let v = assemble(
            "mov %r0, 0\n\
             ja L2\n\
             L1:\n\
             lddw %r1, 5\n\
             exit\n\
             L2: jne %r0, 1, L1 # comment\n\
             ja32 L1\n",
        )
        .unwrap();
        assert_eq!(v[1], Insn::new(BPF_JMP | BPF_JA, 0, 0, 3, 0));
        assert_eq!(v[5], Insn::new(BPF_JMP | BPF_JNE | BPF_K, 0, 0, -4, 1));
        assert_eq!(v[6], Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, -5));
    }

    #[test]
    fn implicit_exit_label_is_the_first_exit() {
        let v = assemble("jeq %r1, 0, exit\nmov %r0, 1\nexit\nmov %r0, 2\nexit").unwrap();
        assert_eq!(v[0].off, 1);
        // An explicit `exit:` label wins.
        let v = assemble("ja exit\nexit\nexit:\nexit").unwrap();
        assert_eq!(v[0].off, 1);
    }

    #[test]
    fn calls_and_exit() {
        assert_eq!(one("call 5"), Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 5));
        assert_eq!(
            one("call helper 6"),
            Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 6)
        );
        assert_eq!(
            one("call %r2"),
            Insn::new(BPF_JMP | BPF_CALL | BPF_X, 2, 0, 0, 0)
        );
        assert_eq!(
            one("call runtime 7"),
            Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 7)
        );
        let v = assemble("call local f\nexit\nf:\nmov %r0, 3\nexit").unwrap();
        assert_eq!(
            v[0],
            Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 1)
        );
        assert_eq!(
            one("call local +4"),
            Insn::new(BPF_JMP | BPF_CALL, 0, 1, 0, 4)
        );
        assert_eq!(one("exit"), Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        assert!(matches!(kind("call far 5"), AsmErrorKind::BadCall(_)));
        assert!(matches!(kind("call"), AsmErrorKind::BadCall(_)));
    }

    #[test]
    fn every_assembled_instruction_decodes_back() {
        let src = "mov %r0, 0\nlddw %r2, 0x8877665544332211\nbswap32 %r2\nle64 %r2\n\
                   ldxsh %r3, [%r10-2]\nlock fetch or [%r10-8], %r3\nsmod %r3, -7\n\
                   movsx1632 %r4, %r3\ncall %r2\njsle32 %r3, -1, +0\nexit";
        let v = assemble(src).unwrap();
        let decoded = crate::decode::validate(&v).unwrap();
        let re: Vec<Insn> = decoded.iter().flat_map(|(_, i)| i.encode()).collect();
        assert_eq!(re, v);
    }

    #[test]
    fn errors_name_line_and_text() {
        let e = assemble("mov %r0, 1\n\n  frob %r1 # what\nexit").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.text, "frob %r1 # what");
        assert_eq!(e.kind, AsmErrorKind::UnknownMnemonic("frob".into()));
        assert_eq!(
            e.to_string(),
            "line 3: unknown mnemonic `frob`: `frob %r1 # what`"
        );
        let e = assemble("ja nowhere\nexit").unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (1, AsmErrorKind::UndefinedLabel("nowhere".into()))
        );
        let e = assemble("a:\nexit\na:\nexit").unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (3, AsmErrorKind::DuplicateLabel("a".into()))
        );
    }

    #[test]
    fn operand_errors() {
        assert!(matches!(
            kind("mov %r0"),
            AsmErrorKind::OperandCount {
                expected: 2,
                found: 1,
                ..
            }
        ));
        assert!(matches!(
            kind("exit %r0"),
            AsmErrorKind::OperandCount { .. }
        ));
        assert!(matches!(kind("mov %r16, 1"), AsmErrorKind::BadRegister(_)));
        assert!(matches!(kind("mov %x1, 1"), AsmErrorKind::BadRegister(_)));
        assert!(matches!(kind("mov %r1, zz"), AsmErrorKind::BadImmediate(_)));
        assert!(matches!(kind("mov %r1, 0x"), AsmErrorKind::BadImmediate(_)));
        assert!(matches!(
            kind("mov %r1, 0x100000000"),
            AsmErrorKind::ImmediateOutOfRange { bits: 32, .. }
        ));
        assert!(matches!(
            kind("mov %r1, -2147483649"),
            AsmErrorKind::ImmediateOutOfRange { bits: 32, .. }
        ));
        assert!(matches!(
            kind("lddw %r1, 0x10000000000000000"),
            AsmErrorKind::ImmediateOutOfRange { bits: 64, .. }
        ));
        assert!(matches!(
            kind("ldxw %r1, %r2"),
            AsmErrorKind::BadMemoryOperand(_)
        ));
        assert!(matches!(
            kind("ldxw %r1, [%r2+x]"),
            AsmErrorKind::BadMemoryOperand(_)
        ));
        assert!(matches!(
            kind("ldxw %r1, [%r2+40000]"),
            AsmErrorKind::ImmediateOutOfRange { bits: 16, .. }
        ));
        assert!(matches!(kind("ja 3"), AsmErrorKind::BadJumpTarget(_)));
        assert!(matches!(kind("ja +x"), AsmErrorKind::BadJumpTarget(_)));
        assert!(matches!(kind("1abc:\nexit"), AsmErrorKind::BadLabel(_)));
        assert!(matches!(
            kind("ja +40000"),
            AsmErrorKind::JumpOutOfRange { bits: 16, .. }
        ));
        assert!(matches!(
            kind("jeq64 %r1, 0, +0"),
            AsmErrorKind::UnknownMnemonic(_)
        ));
    }

    #[test]
    fn far_label_needs_gotol() {
        let mut src = String::from("ja end\n");
        for _ in 0..40000 {
            src.push_str("mov %r0, 0\n");
        }
        src.push_str("end:\nexit\n");
        assert!(matches!(
            assemble(&src).unwrap_err().kind,
            AsmErrorKind::JumpOutOfRange {
                distance: 40000,
                ..
            }
        ));
        let long = src.replacen("ja end", "ja32 end", 1);
        let v = assemble(&long).unwrap();
        assert_eq!(v[0], Insn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, 40000));
    }

    /// Every `-- asm` section of the committed conformance suite assembles to a structurally
    /// valid program, and matches its `-- raw` section where one exists.
    #[test]
    fn whole_conformance_suite_assembles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("tests/conformance exists") {
            let path = entry.expect("readable dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("data") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable .data file");
            let mut section = "";
            let (mut asm, mut raw) = (String::new(), Vec::new());
            for line in text.lines() {
                if let Some(name) = line.strip_prefix("-- ") {
                    section = match name.trim() {
                        "asm" => "asm",
                        "raw" => "raw",
                        _ => "",
                    };
                    continue;
                }
                match section {
                    "asm" => {
                        asm.push_str(line);
                        asm.push('\n');
                    }
                    "raw" => {
                        let w = line.split('#').next().unwrap_or("").trim();
                        if let Some(hex) = w.strip_prefix("0x") {
                            raw.push(u64::from_str_radix(hex, 16).expect("raw hex word"));
                        }
                    }
                    _ => {}
                }
            }
            let insns = assemble(&asm).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            crate::decode::validate(&insns).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if !raw.is_empty() {
                let words: Vec<u64> = insns.iter().map(Insn::to_u64).collect();
                assert_eq!(words, raw, "{}", path.display());
            }
            count += 1;
        }
        assert_eq!(count, 313);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = assemble(&s);
        }

        #[test]
        fn asm_like_text_never_panics(lines in proptest::collection::vec(
            "(lock |call |fetch |local )?[a-z]{0,8}[0-9]{0,4} ?(%r[0-9]{1,2}|\\[%r[0-9]{1,2}[+-]?[0-9a-fx]{0,6}\\]|[+-]?(0x)?[0-9a-f]{0,20}|[a-z:]{0,4})?(, ?(%r[0-9]|[+-]?[0-9]{0,12}|\\[.{0,6}\\]|[a-z]{0,4}))*",
            0..8,
        )) {
            let _ = assemble(&lines.join("\n"));
        }
    }
}

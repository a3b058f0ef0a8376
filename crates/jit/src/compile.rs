//! Translation of a validated BPF program into one x86-64 image: function layout, prologues
//! and epilogues, the per-instruction code, and the multi-pass jump sizing.
//!
//! This mirrors `do_jit()` and `bpf_int_jit_compile()` in the kernel's
//! `arch/x86/net/bpf_jit_comp.c`: BPF registers live in fixed x86 registers (the kernel's
//! `reg2hex` mapping), every BPF function gets its own prologue and 512-byte frame, and the
//! image is re-emitted until its size stops changing so that every jump whose distance fits
//! uses the 2-byte `rel8` form. Pass 1 emits every variable jump as `rel32` (an upper bound on
//! every distance); each later pass computes distances from the previous pass's offsets, so
//! sizes only shrink and the loop converges. When a pass produces the same size as the one
//! before, every offset it used was exact and its bytes are the image.
//!
//! Beyond the kernel's one-instruction-at-a-time translation, the JIT uses what it can prove
//! about the whole function: register liveness and known zero-extension (`dataflow`), which
//! the peepholes (`peephole`, `fold32`) and the leaf entry (`prologue`: a program that calls
//! nothing saves, zeroes and frames only what it uses, and keeps `r6`–`r9` in free
//! caller-saved registers) rest on. None of it changes the translated program.
//!
//! The module is pure code generation and runs on any host; only [`crate::exec`] touches
//! executable memory.
//!
//! # Machine state at run time
//! The general layout (a leaf main function departs from it as `prologue` describes):
//! - `rbp` is BPF `r10`: the top of the current function's 512-byte frame `[rbp-512, rbp)`,
//!   16-byte aligned and zeroed on entry (as the interpreter does, so both engines agree on
//!   programs that read stack they never wrote).
//! - `r12` holds the main function's stack pointer right after its prologue; `[r12]` is the
//!   pointer to the caller's [`RunState`]. Unwinding (`unwind_on_zero` helpers, run-time
//!   errors) restores `rsp` from it at any call depth. The call depth check compares `r12 - rsp`
//!   against the size of `MAX_CALL_FRAMES - 1` frames.
//! - `r10` is the kernel's hidden `BPF_REG_AX` (BPF r11) of translated programs, as in the
//!   kernel's `reg2hex[BPF_REG_AX] = 2` (x86 `r10`). The JIT's own sequences never use `r10` as
//!   a temporary inside an instruction, so AX keeps its value across every instruction except
//!   calls (helpers, kernel functions, bpf-to-bpf calls and `callx` clobber it, like `r1`–`r5`;
//!   the rewrite never keeps AX live across a call) and the error exits.
//! - `r9` and `r11` are scratch registers no BPF register maps to (`r11` is the kernel's
//!   `AUX_REG`).

use kbpf_isa::Insn;
use kbpf_isa::decode::{
    AluOp, AtomicOp, CallTarget, DecodeOptions, Endian, Imm64Source, Instruction, JmpCond, Size,
    Source, Width, validate_with,
};
use kbpf_isa::insn::{MAX_BPF_STACK, MAX_CALL_FRAMES};
use kbpf_vm::helpers::THIS_CPU_PTR_ID;
use kbpf_vm::{Helper, HelperInline, HelperRegistry};

use crate::JitError;

mod constprop;
mod dataflow;
mod fold32;
mod peephole;
mod prologue;
use crate::x86::{self, Alu, Asm, Cond, Shift};
use crate::x86::{R8, R9, R10, R11, R12, R13, R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP};
use dataflow::Facts;
use prologue::MainEntry;

/// BPF register → x86 register, as the kernel's `reg2hex[]`; index 11 is `BPF_REG_AX`
/// (only valid in translated programs, which the decoder admits with
/// `DecodeOptions { translated: true }`).
pub(crate) const REG: [u8; 12] = [RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP, R10];

/// Size of one BPF frame.
const STACK: i32 = MAX_BPF_STACK as i32;
/// Native stack bytes a subprogram call adds: return address, five saved registers, frame.
const SUBPROG_FRAME: i32 = 8 + 5 * 8 + STACK;
/// A call is allowed while `r12 - rsp` (the bytes used below the main frame's base) is at
/// most this: the caller is then at depth ≤ `MAX_CALL_FRAMES - 2` and the callee fits.
const DEPTH_LIMIT: i32 = STACK + (MAX_CALL_FRAMES as i32 - 2) * SUBPROG_FRAME;

/// Give up if the size has not converged after this many passes (the kernel allows 20).
const MAX_PASSES: usize = 20;

/// `RunState::code` values.
pub(crate) const STATE_OK: u64 = 0;
/// `callx`/`call` with an id that has no helper; `detail` is the id.
pub(crate) const STATE_UNKNOWN_HELPER: u64 = 1;
/// A bpf-to-bpf call beyond `MAX_CALL_FRAMES`.
pub(crate) const STATE_CALL_DEPTH: u64 = 2;

/// What the generated code reports besides `r0`; the main function's third argument.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// `STATE_*`.
    pub code: u64,
    /// Instruction index of the failure.
    pub pc: u64,
    /// Failure detail (the helper id).
    pub detail: u64,
}

/// The translated program.
#[derive(Debug)]
pub(crate) struct Image {
    /// Machine code; the main function starts at offset 0.
    pub code: Vec<u8>,
    /// Offset of each BPF function, in program order (index 0 is the main function).
    pub func_offsets: Vec<usize>,
    /// Instruction index where each function starts.
    pub func_pcs: Vec<usize>,
    /// Offset of each instruction's code (`usize::MAX` for the second slot of `ld_imm64`).
    pub insn_offsets: Vec<usize>,
    /// Passes until the size converged.
    pub passes: usize,
    /// The main function can report through its [`RunState`] (it is not a leaf).
    pub reports: bool,
}

/// One BPF function: instructions `[first, end)` of the decoded list.
#[derive(Clone, Copy, Debug)]
struct Func {
    first: usize,
    end: usize,
}

/// Where everything landed in one pass.
#[derive(Clone, Debug)]
struct Layout {
    insn_start: Vec<usize>,
    insn_end: Vec<usize>,
    func_start: Vec<usize>,
    epilogue: Vec<usize>,
    unwind: usize,
    error: usize,
    total: usize,
}

/// Translates `insns` into machine code. Helper addresses are resolved now (`call imm`) and
/// embedded; `callx` compares against every registered helper at run time. `translated`
/// admits what only the kernel's fixups emit (`BPF_REG_AX`, `BPF_MOV64_PERCPU_REG`).
pub(crate) fn translate(
    insns: &[Insn],
    helpers: &HelperRegistry,
    opts: &crate::CompileOptions,
) -> Result<Image, JitError> {
    let translated = opts.translated;
    let mut prog = validate_with(insns, DecodeOptions { translated })?;
    for &(pc, ins) in &prog {
        check_supported(pc, ins)?;
    }
    let funcs = split_functions(&prog, insns.len())?;
    // Where control can arrive other than from the previous instruction: peepholes never
    // fuse across these.
    let mut targets = vec![0u32; insns.len() + 1];
    for &(pc, ins) in &prog {
        if let Some(t) = ins.branch_target(pc)
            && let Some(slot) = usize::try_from(t).ok().and_then(|t| targets.get_mut(t))
        {
            *slot += 1;
        }
    }
    let ranges: Vec<(usize, usize)> = funcs.iter().map(|f| (f.first, f.end)).collect();
    constprop::propagate(&mut prog, &ranges);
    let facts = dataflow::analyse(&prog, &ranges);
    let entry = prologue::main_entry(&prog, ranges[0], funcs.len() == 1, &facts);
    let features = if opts.baseline_isa {
        x86::Features::default()
    } else {
        x86::Features::host()
    };
    let mut prev: Option<Layout> = None;
    for pass in 1..=MAX_PASSES {
        let mut e = Emitter {
            prog: &prog,
            targets: &targets,
            funcs: &funcs,
            facts: &facts,
            entry: &entry,
            regs: prologue::register_map(&entry),
            features,
            helpers,
            stack_depth: opts.stack_depth.as_deref(),
            prev: prev.as_ref(),
            asm: Asm::new(),
            cur: Layout {
                insn_start: vec![usize::MAX; insns.len()],
                insn_end: vec![usize::MAX; insns.len()],
                func_start: vec![0; funcs.len()],
                epilogue: vec![0; funcs.len()],
                unwind: 0,
                error: 0,
                total: 0,
            },
        };
        e.emit_all()?;
        let layout = e.cur;
        if prev.as_ref().is_some_and(|p| p.total == layout.total) {
            return Ok(Image {
                code: e.asm.into_bytes(),
                func_offsets: layout.func_start,
                func_pcs: funcs.iter().map(|f| prog[f.first].0).collect(),
                insn_offsets: layout.insn_start,
                passes: pass,
                reports: entry == MainEntry::Full,
            });
        }
        prev = Some(layout);
    }
    Err(JitError::NoConvergence { passes: MAX_PASSES })
}

/// Rejects what the JIT cannot translate faithfully.
fn check_supported(pc: usize, ins: Instruction) -> Result<(), JitError> {
    let unsupported = |what| Err(JitError::Unsupported { pc, what });
    // The frame pointer is read-only for BPF programs (the verifier's "frame pointer is read
    // only"); here `rbp` also anchors the frame, so a write would break the epilogue.
    let writes = match ins {
        Instruction::Alu { dst, .. }
        | Instruction::Endian { dst, .. }
        | Instruction::Load { dst, .. }
        | Instruction::LdImm64 { dst, .. } => Some(dst),
        Instruction::Atomic {
            op: AtomicOp::LoadAcquire,
            dst,
            ..
        } => Some(dst),
        Instruction::Atomic {
            op:
                AtomicOp::Xchg
                | AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true },
            src,
            ..
        } => Some(src),
        _ => None,
    };
    if writes == Some(10) {
        return Err(JitError::WritesFramePointer { pc });
    }
    match ins {
        Instruction::LdPacket { .. } => unsupported("legacy ld_abs/ld_ind packet load"),
        Instruction::Call(CallTarget::Kfunc { .. }) => unsupported("kfunc call"),
        // Its loop budget is a stack slot only kbpf-rewrite allocates.
        Instruction::MayGoto { .. } => unsupported("may_goto outside a translated program"),
        Instruction::Atomic { size, op, .. }
            if !matches!(op, AtomicOp::LoadAcquire | AtomicOp::StoreRelease)
                && !matches!(size, Size::W | Size::DW) =>
        {
            unsupported("8/16-bit atomic read-modify-write")
        }
        Instruction::Alu {
            op: AluOp::Movsx(_),
            src: Source::Imm(_),
            ..
        } => unsupported("movsx with an immediate"),
        _ => Ok(()),
    }
}

/// Splits the program into functions at the targets of bpf-to-bpf calls (and of
/// `BPF_PSEUDO_FUNC` loads), and checks that jumps stay inside their function and that no
/// function falls through into the next (what the kernel's `check_subprogs()` enforces).
fn split_functions(prog: &[(usize, Instruction)], len: usize) -> Result<Vec<Func>, JitError> {
    let mut starts = vec![0usize];
    for &(pc, ins) in prog {
        let is_func_ref = matches!(
            ins,
            Instruction::Call(CallTarget::Local(_))
                | Instruction::LdImm64 {
                    src: Imm64Source::Func,
                    ..
                }
        );
        // validate() checked that the target is an instruction start.
        if is_func_ref && let Some(t) = ins.branch_target(pc) {
            // The main function has the entry ABI (run state, unwinding anchor), not the
            // subprogram one; the kernel's verifier rejects such recursion too.
            if t == 0 && matches!(ins, Instruction::Call(_)) {
                return Err(JitError::Unsupported {
                    pc,
                    what: "a bpf-to-bpf call to the main function",
                });
            }
            starts.push(t as usize);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut funcs = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end_pc = starts.get(i + 1).copied().unwrap_or(len);
        let first = prog.partition_point(|&(pc, _)| pc < start);
        let end = prog.partition_point(|&(pc, _)| pc < end_pc);
        for &(pc, ins) in &prog[first..end] {
            let is_jump = matches!(ins, Instruction::Ja { .. } | Instruction::Jmp { .. });
            if is_jump
                && let Some(t) = ins.branch_target(pc)
                && (t < start as i64 || t >= end_pc as i64)
            {
                return Err(JitError::JumpOutOfFunction { pc, target: t });
            }
        }
        let (last_pc, last) = prog[end - 1];
        if !matches!(last, Instruction::Exit | Instruction::Ja { .. }) {
            return Err(JitError::FallsIntoNextFunction { pc: last_pc });
        }
        funcs.push(Func { first, end });
    }
    Ok(funcs)
}

struct Emitter<'a> {
    prog: &'a [(usize, Instruction)],
    /// How many jumps and calls land on each instruction (see [`Emitter::fused`]).
    targets: &'a [u32],
    funcs: &'a [Func],
    /// Register liveness and zero-extension at each instruction.
    facts: &'a Facts,
    /// The main function's entry.
    entry: &'a MainEntry,
    /// Where each BPF register lives (`REG` unless a leaf moved some).
    regs: [u8; 12],
    /// The instruction-set extensions the image may use.
    features: x86::Features,
    helpers: &'a HelperRegistry,
    /// The verifier's stack depth per function, if known (see `CompileOptions`).
    stack_depth: Option<&'a [usize]>,
    prev: Option<&'a Layout>,
    asm: Asm,
    cur: Layout,
}

fn width(size: Size) -> x86::Width {
    match size {
        Size::B => x86::Width::B,
        Size::H => x86::Width::H,
        Size::W => x86::Width::W,
        Size::DW => x86::Width::DW,
    }
}

fn cond(c: JmpCond) -> Cond {
    match c {
        JmpCond::Eq => Cond::E,
        JmpCond::Ne | JmpCond::Set => Cond::Ne,
        JmpCond::Gt => Cond::A,
        JmpCond::Ge => Cond::Ae,
        JmpCond::Lt => Cond::B,
        JmpCond::Le => Cond::Be,
        JmpCond::Sgt => Cond::G,
        JmpCond::Sge => Cond::Ge,
        JmpCond::Slt => Cond::L,
        JmpCond::Sle => Cond::Le,
    }
}

impl Emitter<'_> {
    fn emit_all(&mut self) -> Result<(), JitError> {
        for (fi, f) in self.funcs.iter().enumerate() {
            self.cur.func_start[fi] = self.asm.len();
            self.prologue(fi);
            let mut i = f.first;
            while i < f.end {
                let (pc, ins) = self.prog[i];
                self.cur.insn_start[pc] = self.asm.len();
                let n = self.fused(i, f.end)?;
                if n == 0 {
                    self.insn(pc, ins, fi, i + 1 == f.end)?;
                    self.cur.insn_end[pc] = self.asm.len();
                    i += 1;
                    continue;
                }
                // The fused instructions after the first emit nothing of their own.
                for &(p, _) in &self.prog[i..i + n] {
                    self.cur.insn_start[p] = self.cur.insn_start[pc];
                    self.cur.insn_end[p] = self.asm.len();
                }
                i += n;
            }
            self.cur.epilogue[fi] = self.asm.len();
            // A leaf's every `exit` returns in place, and its last instruction is an `exit`
            // or a `goto`.
            if !self.leaf(fi) {
                self.epilogue(fi);
            }
        }
        self.cur.unwind = self.asm.len();
        self.cur.error = self.asm.len();
        if self.leaf(0) {
            // Nothing can unwind or fail.
        } else {
            // Unwind: r0 = 0 and state code 0 (no error), then the error stub's unwinding.
            self.asm.alu_rr(false, Alu::Xor, R9, R9);
            self.cur.error = self.asm.len();
            self.error_stub();
        }
        self.cur.total = self.asm.len();
        if self.cur.total > (i32::MAX / 2) as usize {
            return Err(JitError::TooLarge {
                bytes: self.cur.total,
            });
        }
        Ok(())
    }

    /// `rel32` from the end of an instruction of `len` bytes starting now to a position of
    /// the previous pass (exact in the final pass, where the layouts agree).
    fn rel32_to(
        &self,
        target_prev: impl Fn(&Layout) -> usize,
        len: usize,
    ) -> Result<i32, JitError> {
        let Some(p) = self.prev else { return Ok(0) };
        let rel = target_prev(p) as i64 - (self.asm.len() + len) as i64;
        i32::try_from(rel).map_err(|_| JitError::TooLarge {
            bytes: self.asm.len(),
        })
    }

    /// `jcc rel32` to the unwind stub.
    fn jcc_unwind(&mut self, cc: Cond) -> Result<(), JitError> {
        let rel = self.rel32_to(|p| p.unwind, 6)?;
        self.asm.jcc_rel32(cc, rel);
        Ok(())
    }

    /// `r9d = code; r10d = pc; jmp error` (always 17 bytes).
    fn error_block(&mut self, code: u64, pc: usize) -> Result<(), JitError> {
        self.asm.mov_ri32(R9, code as u32);
        self.asm.mov_ri32(R10, pc as u32);
        let rel = self.rel32_to(|p| p.error, 5)?;
        self.asm.jmp_rel32(rel);
        Ok(())
    }

    /// A jump that ends the instruction at `pc`: `rel8` when the previous pass's distance
    /// fits, else `rel32` (always `rel32` in the first pass).
    fn branch(&mut self, cc: Option<Cond>, pc: usize, target_prev: impl Fn(&Layout) -> usize) {
        let rel = self
            .prev
            .map(|p| target_prev(p) as i64 - p.insn_end[pc] as i64);
        match (rel, cc) {
            (Some(r), Some(cc)) if x86::is_imm8(r) => self.asm.jcc_rel8(cc, r as i8),
            (Some(r), None) if x86::is_imm8(r) => self.asm.jmp_rel8(r as i8),
            // The previous pass's distance is an upper bound that fits i32 (checked total size).
            (r, Some(cc)) => self.asm.jcc_rel32(cc, r.unwrap_or(0) as i32),
            (r, None) => self.asm.jmp_rel32(r.unwrap_or(0) as i32),
        }
    }

    fn func_index(&self, pc: usize) -> usize {
        self.funcs
            .partition_point(|f| self.prog[f.first].0 <= pc)
            .saturating_sub(1)
    }

    fn insn(&mut self, pc: usize, ins: Instruction, fi: usize, last: bool) -> Result<(), JitError> {
        match ins {
            Instruction::Alu {
                width,
                op,
                dst,
                src,
            } => self.alu(pc, width == Width::W64, op, self.regs[dst as usize], src),
            Instruction::Endian { kind, bits, dst } => {
                let d = self.regs[dst as usize];
                let a = &mut self.asm;
                match (kind, bits) {
                    (Endian::Le, 16) => a.movzx16_rr(d, d),
                    (Endian::Le, 32) => a.mov_rr(false, d, d),
                    (Endian::Le, _) => {}
                    (_, 16) => {
                        a.ror16_8(d);
                        a.movzx16_rr(d, d);
                    }
                    (_, 32) => a.bswap(false, d),
                    (_, _) => a.bswap(true, d),
                }
                Ok(())
            }
            Instruction::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                self.asm.load(
                    width(size),
                    signed,
                    self.regs[dst as usize],
                    self.regs[src as usize],
                    off as i32,
                );
                Ok(())
            }
            Instruction::Store {
                size,
                dst,
                off,
                src,
            } => {
                let b = self.regs[dst as usize];
                match src {
                    Source::Reg(s) => {
                        self.asm
                            .store_r(width(size), b, off as i32, self.regs[s as usize])
                    }
                    Source::Imm(k) => self.asm.store_i(width(size), b, off as i32, k),
                }
                Ok(())
            }
            Instruction::Atomic {
                size,
                op,
                dst,
                src,
                off,
            } => self.atomic(pc, size, op, dst, src, off as i32),
            Instruction::LdImm64 {
                dst,
                src,
                imm,
                next_imm,
            } => {
                let d = self.regs[dst as usize];
                if src == Imm64Source::Func {
                    // The address of the JIT-ed function, as the kernel's JIT loads it.
                    let target = ins.branch_target(pc).unwrap_or(0) as usize;
                    let callee = self.func_index(target);
                    let rel = self.rel32_to(|p| p.func_start[callee], 7)?;
                    self.asm.lea_rip(d, rel);
                } else {
                    // For map pseudo sources the rewrite has already put the address in the
                    // two immediates, as the interpreter assumes too.
                    let v = (imm as u32 as u64) | ((next_imm as u32 as u64) << 32);
                    self.asm.mov_ri64(d, v);
                }
                Ok(())
            }
            Instruction::Ja { .. } => {
                let t = ins.branch_target(pc).unwrap_or(0) as usize;
                self.branch(None, pc, |p| p.insn_start[t]);
                Ok(())
            }
            Instruction::Jmp {
                width,
                cond: c,
                dst,
                src,
                ..
            } => {
                self.compare(width == Width::W64, c, self.regs[dst as usize], src);
                let t = ins.branch_target(pc).unwrap_or(0) as usize;
                self.branch(Some(cond(c)), pc, |p| p.insn_start[t]);
                Ok(())
            }
            Instruction::Call(CallTarget::Helper(id)) => self.call_helper(pc, id),
            Instruction::Call(CallTarget::Reg(r)) => self.callx(pc, self.regs[r as usize]),
            Instruction::Call(CallTarget::Local(_)) => {
                let target = ins.branch_target(pc).unwrap_or(0) as usize;
                let callee = self.func_index(target);
                let a = &mut self.asm;
                a.mov_rr(true, R11, R12);
                a.alu_rr(true, Alu::Sub, R11, RSP);
                a.alu_ri(true, Alu::Cmp, R11, DEPTH_LIMIT);
                let ok = a.jcc_short_fwd(Cond::Be);
                self.error_block(STATE_CALL_DEPTH, pc)?;
                self.bind(ok, pc)?;
                let rel = self.rel32_to(|p| p.func_start[callee], 5)?;
                self.asm.call_rel32(rel);
                Ok(())
            }
            Instruction::Exit => {
                if self.leaf(fi) {
                    self.epilogue(fi);
                } else if !last {
                    self.branch(None, pc, |p| p.epilogue[fi]);
                }
                Ok(())
            }
            // check_supported() refused these.
            Instruction::LdPacket { .. }
            | Instruction::MayGoto { .. }
            | Instruction::Call(CallTarget::Kfunc { .. }) => Err(JitError::Unsupported {
                pc,
                what: "instruction",
            }),
        }
    }

    /// The flags a conditional jump on `c` tests: `test` for `JSET`, else `cmp`.
    fn compare(&mut self, w: bool, c: JmpCond, d: u8, src: Source) {
        match (c, src) {
            (JmpCond::Set, Source::Reg(s)) => self.asm.test_rr(w, d, self.regs[s as usize]),
            (JmpCond::Set, Source::Imm(k)) => self.asm.test_ri(w, d, k),
            (_, Source::Reg(s)) => self.asm.alu_rr(w, Alu::Cmp, d, self.regs[s as usize]),
            // `test d, d` sets the same flags as `cmp d, 0` (CF = OF = 0).
            (_, Source::Imm(0)) => self.asm.test_rr(w, d, d),
            (_, Source::Imm(k)) => self.asm.alu_ri(w, Alu::Cmp, d, k),
        }
    }

    fn bind(&mut self, pos: usize, pc: usize) -> Result<(), JitError> {
        if self.asm.bind_short(pos) {
            Ok(())
        } else {
            Err(JitError::Internal {
                pc,
                what: "local jump out of rel8 range",
            })
        }
    }

    fn alu(&mut self, pc: usize, w: bool, op: AluOp, d: u8, src: Source) -> Result<(), JitError> {
        let a = &mut self.asm;
        let simple = match op {
            AluOp::Add => Some(Alu::Add),
            AluOp::Sub => Some(Alu::Sub),
            AluOp::Or => Some(Alu::Or),
            AluOp::And => Some(Alu::And),
            AluOp::Xor => Some(Alu::Xor),
            _ => None,
        };
        if let Some(x) = simple {
            match src {
                Source::Reg(s) => a.alu_rr(w, x, d, self.regs[s as usize]),
                Source::Imm(k) => a.alu_ri(w, x, d, k),
            }
            return Ok(());
        }
        let shift = match op {
            AluOp::Lsh => Some(Shift::Shl),
            AluOp::Rsh => Some(Shift::Shr),
            AluOp::Arsh => Some(Shift::Sar),
            _ => None,
        };
        if let Some(sh) = shift {
            match src {
                Source::Imm(k) => {
                    let n = k & if w { 63 } else { 31 };
                    if n != 0 {
                        a.shift_ri(w, sh, d, n as u8);
                    } else if !w {
                        // A 32-bit op always zero-extends, even by 0.
                        a.mov_rr(false, d, d);
                    }
                }
                Source::Reg(s) => self.shift_by_reg(w, sh, d, self.regs[s as usize]),
            }
            return Ok(());
        }
        match (op, src) {
            (AluOp::Mov, Source::Reg(s)) => a.mov_rr(w, d, self.regs[s as usize]),
            (AluOp::Mov, Source::Imm(k)) => {
                let v = if w { k as i64 as u64 } else { k as u32 as u64 };
                a.mov_ri64(d, v);
            }
            (AluOp::Movsx(bits), Source::Reg(s)) => a.movsx_rr(w, d, self.regs[s as usize], bits),
            (AluOp::Mul, Source::Reg(s)) => a.imul_rr(w, d, self.regs[s as usize]),
            (AluOp::Mul, Source::Imm(k)) => a.imul_rri(w, d, d, k),
            (AluOp::Neg, _) => a.neg(w, d),
            (AluOp::MovPercpu, Source::Reg(s)) => {
                return self.mov_percpu(pc, d, self.regs[s as usize]);
            }
            (AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod, _) => {
                return self.div_mod(pc, w, op, d, src);
            }
            _ => {
                return Err(JitError::Unsupported {
                    pc,
                    what: "ALU operation",
                });
            }
        }
        Ok(())
    }

    /// x86 shifts take a variable count only in `cl`, and `rcx` is BPF `r4`: move the count
    /// into `rcx` around the shift, keeping `r4` in `r11` (as the kernel's JIT does with its
    /// AUX register).
    fn shift_by_reg(&mut self, w: bool, sh: Shift, d: u8, s: u8) {
        let a = &mut self.asm;
        if s == RCX {
            a.shift_cl(w, sh, d);
        } else if d == RCX {
            a.mov_rr(true, R11, RCX);
            a.mov_rr(true, RCX, s);
            a.shift_cl(w, sh, R11);
            a.mov_rr(true, RCX, R11);
        } else {
            a.mov_rr(true, R11, RCX);
            a.mov_rr(true, RCX, s);
            a.shift_cl(w, sh, d);
            a.mov_rr(true, RCX, R11);
        }
    }

    /// Division and modulo with BPF's rules and no `#DE` trap: a zero divisor gives 0 (div) or
    /// leaves the dividend (mod; 32-bit: zero-extended); a signed divisor of -1 is done as
    /// `neg` (sdiv) or 0 (smod), which is what `INT_MIN / -1` must wrap to. Otherwise
    /// `div`/`idiv` on `rdx:rax`, saving `r0`/`r3` around it.
    fn div_mod(
        &mut self,
        pc: usize,
        w: bool,
        op: AluOp,
        d: u8,
        src: Source,
    ) -> Result<(), JitError> {
        let signed = matches!(op, AluOp::Sdiv | AluOp::Smod);
        let is_div = matches!(op, AluOp::Div | AluOp::Sdiv);
        let a = &mut self.asm;
        match src {
            Source::Reg(s) => a.mov_rr(true, R11, self.regs[s as usize]),
            Source::Imm(k) => a.mov_ri64(R11, if w { k as i64 as u64 } else { k as u32 as u64 }),
        }
        a.test_rr(w, R11, R11);
        let nonzero = a.jcc_short_fwd(Cond::Ne);
        if is_div {
            a.alu_rr(false, Alu::Xor, d, d);
        } else if !w {
            a.mov_rr(false, d, d);
        }
        let done1 = a.jmp_short_fwd();
        self.bind(nonzero, pc)?;
        let mut done2 = None;
        if signed {
            let a = &mut self.asm;
            a.alu_ri(w, Alu::Cmp, R11, -1);
            let not_minus_one = a.jcc_short_fwd(Cond::Ne);
            if is_div {
                a.neg(w, d);
            } else {
                a.alu_rr(false, Alu::Xor, d, d);
            }
            done2 = Some(a.jmp_short_fwd());
            self.bind(not_minus_one, pc)?;
        }
        let a = &mut self.asm;
        a.push(RAX);
        a.push(RDX);
        if d != RAX {
            a.mov_rr(true, RAX, d);
        }
        if signed {
            a.cqo(w);
        } else {
            a.alu_rr(false, Alu::Xor, RDX, RDX);
        }
        a.div(w, signed, R11);
        a.mov_rr(true, R11, if is_div { RAX } else { RDX });
        a.pop(RDX);
        a.pop(RAX);
        a.mov_rr(true, d, R11);
        self.bind(done1, pc)?;
        if let Some(j) = done2 {
            self.bind(j, pc)?;
        }
        Ok(())
    }

    fn atomic(
        &mut self,
        pc: usize,
        size: Size,
        op: AtomicOp,
        dst: u8,
        src: u8,
        off: i32,
    ) -> Result<(), JitError> {
        let (b, s) = (self.regs[dst as usize], self.regs[src as usize]);
        let w = size == Size::DW;
        let a = &mut self.asm;
        // x86 is TSO: plain loads are acquire loads and plain stores are release stores
        // (the kernel's x86 JIT emits the same).
        match op {
            AtomicOp::LoadAcquire => a.load(width(size), false, b, s, off),
            AtomicOp::StoreRelease => a.store_r(width(size), b, off, s),
            AtomicOp::Add { fetch: false } => a.lock_alu_mr(w, Alu::Add, b, off, s),
            AtomicOp::Or { fetch: false } => a.lock_alu_mr(w, Alu::Or, b, off, s),
            AtomicOp::And { fetch: false } => a.lock_alu_mr(w, Alu::And, b, off, s),
            AtomicOp::Xor { fetch: false } => a.lock_alu_mr(w, Alu::Xor, b, off, s),
            AtomicOp::Add { fetch: true } => a.lock_xadd(w, b, off, s),
            AtomicOp::Xchg => a.xchg_mr(w, b, off, s),
            AtomicOp::Cmpxchg => {
                a.lock_cmpxchg(w, b, off, s);
                if !w {
                    // A successful 32-bit cmpxchg does not write eax, so zero-extend r0.
                    a.mov_rr(false, RAX, RAX);
                }
            }
            AtomicOp::Or { fetch: true }
            | AtomicOp::And { fetch: true }
            | AtomicOp::Xor { fetch: true } => {
                let x = match op {
                    AtomicOp::Or { .. } => Alu::Or,
                    AtomicOp::And { .. } => Alu::And,
                    _ => Alu::Xor,
                };
                // No x86 instruction returns the old value of an and/or/xor: loop on
                // cmpxchg (rax = expected old value), as the kernel's JIT does. r0 is kept in
                // r9 (and stands in for the base or source when they are r0); r10 (AX) is
                // left alone.
                let rb = if b == RAX { R9 } else { b };
                let rs = if s == RAX { R9 } else { s };
                a.mov_rr(true, R9, RAX);
                let top = a.len();
                a.load(width(size), false, RAX, rb, off);
                a.mov_rr(true, R11, RAX);
                a.alu_rr(w, x, R11, rs);
                a.lock_cmpxchg(w, rb, off, R11);
                let rel = top as i64 - (a.len() + 2) as i64;
                if !x86::is_imm8(rel) {
                    return Err(JitError::Internal {
                        pc,
                        what: "cmpxchg loop out of rel8 range",
                    });
                }
                a.jcc_rel8(Cond::Ne, rel as i8);
                // The old value to the source register (zero-extended when 32-bit), then r0
                // back (which is the old value if the source was r0).
                a.mov_rr(w, rs, RAX);
                a.mov_rr(true, RAX, R9);
            }
        }
        Ok(())
    }

    /// `call imm`: the helper's native address is embedded (`movabs rax; call rax` — the
    /// kernel can use `call rel32` because helpers live in kernel text; a user-space helper
    /// may be anywhere in the address space). BPF `r1`–`r5` already sit in the SysV argument
    /// registers `rdi, rsi, rdx, rcx, r8`, and the result comes back in `rax` = `r0`.
    fn call_helper(&mut self, pc: usize, id: i32) -> Result<(), JitError> {
        match self.helpers.get(id).copied() {
            Some(Helper {
                inline:
                    Some(HelperInline::ArrayLookup {
                        max_entries,
                        elem_size,
                        value_off,
                    }),
                ..
            }) => {
                // r1 = the array, r2 = the key. r1-r5 are dead after a call (the verifier
                // clobbers them), so rdx serves as scratch; r0 = rax gets the result.
                let a = &mut self.asm;
                a.load(x86::Width::W, false, RAX, RSI, 0);
                a.load(x86::Width::W, false, RDX, RDI, max_entries);
                a.alu_rr(false, Alu::Cmp, RAX, RDX);
                let null = a.jcc_short_fwd(Cond::Ae);
                a.load(x86::Width::W, false, RDX, RDI, elem_size);
                a.imul_rr(true, RAX, RDX);
                a.load(x86::Width::W, false, RDX, RDI, value_off);
                a.alu_rr(true, Alu::Add, RAX, RDX);
                a.alu_rr(true, Alu::Add, RAX, RDI);
                let done = a.jmp_short_fwd();
                let bound = a.bind_short(null);
                a.alu_rr(false, Alu::Xor, RAX, RAX);
                if !(bound && a.bind_short(done)) {
                    return Err(JitError::Unsupported {
                        pc,
                        what: "an inline array lookup longer than a short jump",
                    });
                }
                Ok(())
            }
            Some(h) => {
                if h.keep_r0_on_failure {
                    // r0 survives the call (two pushes keep rsp 16-byte aligned for it) ...
                    self.asm.push(RAX);
                    self.asm.push(RAX);
                }
                self.asm.movabs(RAX, h.func as usize as u64);
                self.asm.call_r(RAX);
                if h.keep_r0_on_failure {
                    self.asm.pop(R11);
                    self.asm.pop(R11);
                }
                self.after_unwinding_call(&h, pc)?;
                if h.keep_r0_on_failure {
                    // ... and is the result again when the helper failed.
                    self.asm.mov_rr(true, RAX, R11);
                }
                Ok(())
            }
            None => {
                // Reported only if executed, as in the interpreter.
                self.asm.mov_ri64(RAX, id as i64 as u64);
                self.error_block(STATE_UNKNOWN_HELPER, pc)
            }
        }
    }

    /// After a call of an `unwind_on_zero` helper (`rax` its result): on zero, the whole
    /// program stops with `r0 = 0` (the unwind stub), or, for a [`Helper::frame_result`]
    /// helper (`bpf_tail_call`), the current function returns `frame_result()` through its
    /// own epilogue — to its caller, or out of the program from the main function.
    fn after_unwinding_call(&mut self, h: &Helper, pc: usize) -> Result<(), JitError> {
        if !h.unwind_on_zero {
            return Ok(());
        }
        self.asm.test_rr(true, RAX, RAX);
        let Some(result) = h.frame_result else {
            return self.jcc_unwind(Cond::E);
        };
        let fi = self.func_index(pc);
        let went_on = self.asm.jcc_short_fwd(Cond::Ne);
        self.asm.movabs(RAX, result as usize as u64);
        self.asm.call_r(RAX);
        let rel = self.rel32_to(|p| p.epilogue[fi], 5)?;
        self.asm.jmp_rel32(rel);
        self.bind(went_on, pc)
    }

    /// `dst = this_cpu_ptr(src)` (`BPF_MOV64_PERCPU_REG`): the kernel adds
    /// `gs:[this_cpu_off]` inline; in user space the registry's [`THIS_CPU_PTR_ID`] hook gives
    /// the address (as in the interpreter). This is a move, not a call, for the program: every
    /// BPF register but `dst` — including the SysV caller-saved `r0`–`r5` and AX — keeps its
    /// value, so they are saved around the native call (eight pushes keep `rsp` 16-byte
    /// aligned, as it is at every instruction boundary).
    fn mov_percpu(&mut self, pc: usize, d: u8, s: u8) -> Result<(), JitError> {
        let Some(h) = self.helpers.get(THIS_CPU_PTR_ID).copied() else {
            return Err(JitError::Unsupported {
                pc,
                what: "the per-CPU move without a this_cpu_ptr hook (THIS_CPU_PTR_ID)",
            });
        };
        const SAVED: [u8; 8] = [RAX, RDI, RSI, RDX, RCX, R8, R10, R11];
        let a = &mut self.asm;
        for r in SAVED {
            a.push(r);
        }
        if s != RDI {
            a.mov_rr(true, RDI, s);
        }
        a.movabs(RAX, h.func as usize as u64);
        a.call_r(RAX);
        a.mov_rr(true, R9, RAX);
        for r in SAVED.iter().rev() {
            a.pop(*r);
        }
        a.mov_rr(true, d, R9);
        Ok(())
    }

    /// `callx reg`: compare the register with each registered helper id and call the match;
    /// no match is a run-time [`STATE_UNKNOWN_HELPER`] error.
    fn callx(&mut self, pc: usize, x: u8) -> Result<(), JitError> {
        let helpers: Vec<_> = self.helpers.iter().map(|(id, h)| (id, *h)).collect();
        let mut to_done = Vec::new();
        for (id, h) in helpers {
            self.asm.alu_ri(true, Alu::Cmp, x, id);
            self.asm.jcc_rel32(Cond::Ne, 0);
            let next_fixup = self.asm.len() - 4;
            self.asm.movabs(RAX, h.func as usize as u64);
            self.asm.call_r(RAX);
            self.after_unwinding_call(&h, pc)?;
            self.asm.jmp_rel32(0);
            to_done.push(self.asm.len() - 4);
            let rel = (self.asm.len() - (next_fixup + 4)) as i32;
            self.asm.patch_i32(next_fixup, rel);
        }
        self.asm.mov_rr(true, RAX, x);
        self.error_block(STATE_UNKNOWN_HELPER, pc)?;
        for pos in to_done {
            let rel = (self.asm.len() - (pos + 4)) as i32;
            self.asm.patch_i32(pos, rel);
        }
        Ok(())
    }
}

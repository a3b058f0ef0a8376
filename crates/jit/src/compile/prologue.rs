//! Function entry and exit: prologues, epilogues, frame zeroing and the error stub.
//!
//! The main function has one of two entries ([`MainEntry`]):
//! - **full**, the general one: it saves every callee-saved register and the [`RunState`]
//!   pointer, anchors unwinding in `r12`, sets up the 512-byte frame and starts `r0`, `r3`–`r9`
//!   and AX at 0, as the interpreter does;
//! - **leaf**, for a program of one function that calls nothing (no helper, subprogram,
//!   `callx`, per-CPU hook or function address): nothing can unwind or report an error, so
//!   neither the state pointer nor `r12` is needed; it saves only the callee-saved registers
//!   the program writes, has a frame only when it mentions `r10`, zeroes only the registers
//!   some path reads before writing (none, for a program the verifier accepted), and every
//!   `exit` returns in place instead of jumping to a shared epilogue. This is the entry of an
//!   optimising compiler's leaf function, and what a packet parser needs.
//!
//! A leaf also keeps `r6`–`r9` in caller-saved registers where it can, so that they need no
//! saving at all: in `r9` and `r11` when no instruction needs the JIT's scratch registers
//! (division, shifts by a register, atomics), and in `r10` when the program does not use
//! `BPF_REG_AX`. Before those, a register of `r6`–`r9` shares the x86 register of one
//! of `r0`–`r5` whose value it never needs at the same time (liveness from `dataflow`): a
//! parser's context pointer `r1` is dead after its first two loads, and its `rdi` can hold a
//! hash word instead of a pushed `r15`. Nothing outside the function sees BPF registers, so
//! only the image changes.
//!
//! [`RunState`]: super::RunState

use kbpf_isa::decode::{AluOp, Instruction, Source};
use kbpf_isa::insn::MAX_BPF_STACK;

use super::dataflow::{Facts, RegSet, bit, calls_out, effect, touched};
use super::{Emitter, REG, STACK};
use crate::x86::{self, Alu};
use crate::x86::{R8, R9, R10, R11, R12, R13, R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RSP};

/// How the main function enters and leaves (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MainEntry {
    /// The general entry.
    Full,
    /// A leaf function's entry.
    Leaf {
        /// Where each BPF register lives (`REG`, with `r6`–`r9` moved to free caller-saved
        /// registers where possible).
        regs: [u8; 12],
        /// The x86 callee-saved registers of `r6`–`r9` the program writes, pushed on entry.
        saved: Vec<u8>,
        /// The program mentions `r10`: save `rbp` and set up (and zero) the frame.
        frame: bool,
        /// BPF registers some path reads before writing them: zeroed on entry.
        zero: RegSet,
    },
}

/// The entry of the main function `prog[first..end]`, the only function when `single`.
pub(crate) fn main_entry(
    prog: &[(usize, Instruction)],
    (first, end): (usize, usize),
    single: bool,
    facts: &Facts,
) -> MainEntry {
    if !single || prog[first..end].iter().any(|&(_, ins)| calls_out(ins)) {
        return MainEntry::Full;
    }
    let used = touched(prog, first, end);
    let mut free = Vec::new();
    if !prog[first..end].iter().any(|&(_, ins)| needs_scratch(ins)) {
        free.extend([R9, R11]);
    }
    if used & bit(11) == 0 {
        free.push(R10);
    }
    let mut regs = REG;
    let mut saved = Vec::new();
    for r in (6..=9u8).filter(|&r| used & bit(r) != 0) {
        // Sharing first: it costs nothing, and keeps the free registers for registers that
        // overlap everything.
        if let Some(x) = shared_home(prog, (first, end), facts, &regs, r) {
            regs[r as usize] = x;
        } else if let Some(x) = free.pop() {
            regs[r as usize] = x;
        } else {
            saved.push(REG[r as usize]);
        }
    }
    // r1 and r2 are the arguments; r10 is the frame pointer.
    let passed = bit(1) | bit(2) | bit(10);
    MainEntry::Leaf {
        regs,
        saved,
        frame: used & bit(10) != 0,
        zero: facts.live_in[first] & !passed,
    }
}

/// A caller-saved register of `r0`–`r5` that `r` can share: one whose BPF registers (its own
/// and those already placed there) never hold a value `r`'s lifetime overlaps, so no saving is
/// needed. In a leaf nothing else reads these registers, and every instruction's code already
/// copes with any BPF register in any of them (they are where `r0`–`r5` live).
fn shared_home(
    prog: &[(usize, Instruction)],
    (first, end): (usize, usize),
    facts: &Facts,
    regs: &[u8; 12],
    r: u8,
) -> Option<u8> {
    [1u8, 2, 3, 4, 5, 0]
        .into_iter()
        .map(|h| REG[h as usize])
        .find(|&x| {
            (0..=9u8)
                .filter(|&o| o != r && regs[o as usize] == x)
                .all(|o| !interfere(prog, (first, end), facts, r, o))
        })
}

/// Whether BPF registers `a` and `b` can ever need to hold different values at once: both
/// live at an instruction's entry or exit, both written by it, or one written while the other
/// is read by the same instruction (its code may write before it reads) or still live after.
pub(crate) fn interfere(
    prog: &[(usize, Instruction)],
    (first, end): (usize, usize),
    facts: &Facts,
    a: u8,
    b: u8,
) -> bool {
    let both = |s: RegSet| s & bit(a) != 0 && s & bit(b) != 0;
    (first..end).any(|i| {
        let e = effect(prog[i].1, false);
        let after = facts.live_out[i] | e.uses;
        let clobbers = |x: u8, y: u8| e.writes & bit(x) != 0 && after & bit(y) != 0;
        both(facts.live_in[i])
            || both(facts.live_out[i])
            || both(e.writes)
            || clobbers(a, b)
            || clobbers(b, a)
    })
}

/// Whether the JIT's code for `ins` uses its scratch registers `r9`/`r11` (see
/// `Emitter::div_mod`, `shift_by_reg`, `atomic`).
fn needs_scratch(ins: Instruction) -> bool {
    match ins {
        Instruction::Alu { op, src, .. } => match op {
            AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod | AluOp::MovPercpu => true,
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => matches!(src, Source::Reg(_)),
            _ => false,
        },
        Instruction::Atomic { .. } | Instruction::Call(_) => true,
        _ => false,
    }
}

/// Where the BPF registers live in the image of a program with this entry.
pub(crate) fn register_map(entry: &MainEntry) -> [u8; 12] {
    match entry {
        MainEntry::Leaf { regs, .. } => *regs,
        MainEntry::Full => REG,
    }
}

impl Emitter<'_> {
    /// Whether `fi` is the main function with a leaf entry.
    pub(super) fn leaf(&self, fi: usize) -> bool {
        fi == 0 && matches!(self.entry, MainEntry::Leaf { .. })
    }

    /// Zeroes the part of the frame the function can read: `[rbp - depth, rbp)` for the
    /// verifier's `depth` (a few immediate stores when small), else all of `[rsp, rsp + 512)`
    /// with `rep stosq`, preserving `rdi`, `rcx`, `rax`. `rep stosq` has a start-up cost
    /// that showed in short loops (a 1000-lookup loop took 1.1–1.2× the kernel's time).
    fn zero_frame(&mut self, fi: usize) {
        let depth = self
            .stack_depth
            .and_then(|d| d.get(fi).copied())
            .map(|d| d.div_ceil(8) * 8)
            .filter(|d| *d <= MAX_BPF_STACK);
        if let Some(d) = depth
            && d <= 128
        {
            for k in 1..=(d / 8) as i32 {
                self.asm.store_i(x86::Width::DW, RBP, -8 * k, 0);
            }
            return;
        }
        let a = &mut self.asm;
        a.mov_rr(true, R9, RDI);
        a.mov_rr(true, R10, RCX);
        a.mov_rr(true, R11, RAX);
        a.mov_rr(true, RDI, RSP);
        a.mov_ri32(RCX, (MAX_BPF_STACK / 8) as u32);
        a.alu_rr(false, Alu::Xor, RAX, RAX);
        a.rep_stosq();
        a.mov_rr(true, RDI, R9);
        a.mov_rr(true, RCX, R10);
        a.mov_rr(true, RAX, R11);
    }

    /// Main function: `extern "sysv64" fn(r1, r2, state: *mut RunState) -> u64`. The full
    /// entry saves the callee-saved registers, keeps `state` at `[r12]`, sets up the frame
    /// and zeroes the BPF registers the caller does not pass; a leaf saves and zeroes only
    /// what it needs. Subprograms: save `rbp` and `r6`–`r9` (`rbx`, `r13`–`r15`), as the
    /// kernel's callee-saved set, and set up a fresh frame.
    pub(super) fn prologue(&mut self, fi: usize) {
        if let (
            0,
            MainEntry::Leaf {
                saved, frame, zero, ..
            },
        ) = (fi, self.entry)
        {
            let a = &mut self.asm;
            if *frame {
                a.push(RBP);
            }
            for &r in saved {
                a.push(r);
            }
            if *frame {
                a.alu_ri(true, Alu::Sub, RSP, STACK);
                a.lea(RBP, RSP, STACK);
                self.zero_frame(fi);
            }
            for r in 0..12u8 {
                if zero & bit(r) != 0 {
                    let x = self.regs[r as usize];
                    self.asm.alu_rr(false, Alu::Xor, x, x);
                }
            }
            return;
        }
        let main = fi == 0;
        let a = &mut self.asm;
        if main {
            for r in [RBP, RBX, R12, R13, R14, R15, RDX] {
                a.push(r);
            }
            a.mov_rr(true, R12, RSP);
            a.alu_ri(true, Alu::Sub, RSP, STACK);
            a.mov_rr(true, RBP, R12);
            // r0 and r3..r9 start at 0, as in the interpreter.
            for r in [RAX, RDX, RCX, R8, RBX, R13, R14, R15] {
                a.alu_rr(false, Alu::Xor, r, r);
            }
        } else {
            for r in [RBP, RBX, R13, R14, R15] {
                a.push(r);
            }
            a.alu_ri(true, Alu::Sub, RSP, STACK);
            a.lea(RBP, RSP, STACK);
        }
        self.zero_frame(fi);
        if main {
            // BPF_REG_AX starts at 0 as in the interpreter (zero_frame used r10).
            self.asm.alu_rr(false, Alu::Xor, R10, R10);
        }
    }

    pub(super) fn epilogue(&mut self, fi: usize) {
        if let (0, MainEntry::Leaf { saved, frame, .. }) = (fi, self.entry) {
            let a = &mut self.asm;
            if *frame {
                a.alu_ri(true, Alu::Add, RSP, STACK);
            }
            for &r in saved.iter().rev() {
                a.pop(r);
            }
            if *frame {
                a.pop(RBP);
            }
            a.ret();
            return;
        }
        let a = &mut self.asm;
        a.alu_ri(true, Alu::Add, RSP, STACK);
        if fi == 0 {
            a.pop(R11); // the RunState pointer
            for r in [R15, R14, R13, R12, RBX, RBP] {
                a.pop(r);
            }
        } else {
            for r in [R15, R14, R13, RBX, RBP] {
                a.pop(r);
            }
        }
        a.ret();
    }

    /// Expects the state code in `r9d`, the pc in `r10d`, the detail in `rax`. Unwinds to
    /// the main frame, records the failure and returns 0. (A leaf has no use for it.)
    pub(super) fn error_stub(&mut self) {
        let a = &mut self.asm;
        a.mov_rr(true, RSP, R12);
        a.pop(R11);
        a.store_r(x86::Width::DW, R11, 0, R9);
        a.store_r(x86::Width::DW, R11, 8, R10);
        a.store_r(x86::Width::DW, R11, 16, RAX);
        a.alu_rr(false, Alu::Xor, RAX, RAX);
        for r in [R15, R14, R13, R12, RBX, RBP] {
            a.pop(r);
        }
        a.ret();
    }
}

//! The kbpf x86-64 JIT: translates a validated eBPF program into native code the way the
//! kernel's `arch/x86/net/bpf_jit_comp.c` does, and runs it.
//!
//! - BPF registers live in fixed x86 registers (`r0`=`rax`, `r1`=`rdi`, `r2`=`rsi`,
//!   `r3`=`rdx`, `r4`=`rcx`, `r5`=`r8`, `r6`=`rbx`, `r7`=`r13`, `r8`=`r14`, `r9`=`r15`,
//!   `r10`=`rbp`), so helper arguments are already in the SysV argument registers and a helper
//!   is called directly; `r10` holds `BPF_REG_AX` of translated programs, `r9` and `r11` are
//!   scratch.
//! - Each BPF function (the main program and every bpf-to-bpf callee) has its own prologue
//!   and a zeroed 512-byte frame; bpf-to-bpf calls are `call rel32`. A main function that
//!   calls nothing is a leaf: it saves, frames and zeroes only what it uses, keeps `r6`–`r9`
//!   in free caller-saved registers, and its runs need no run state.
//! - Peepholes on what the JIT proves about each function (register liveness, known
//!   zero-extension): 32-bit rotates and arithmetic written in 64-bit BPF become x86 32-bit
//!   operations, big-endian half-words are compared in memory; each is differentially tested
//!   against the interpreter (`tests/fold32.rs`).
//! - The image is emitted repeatedly until its size converges, so jumps use `rel8` wherever
//!   the distance fits.
//! - Translated programs ([`JitProgram::compile_translated`]): `BPF_REG_AX` lives in x86
//!   `r10` (the kernel's mapping), the per-CPU move calls the embedder's `this_cpu_ptr` hook
//!   with every BPF register preserved, and kernel-function calls are direct native calls.
//! - The whole ISA v4 is covered: ALU/ALU64 incl. signed division and `movsx`, byte swaps,
//!   sign-extending loads, every atomic (32/64-bit), `ld_imm64`, JMP/JMP32, `gotol`, helper
//!   calls with `unwind_on_zero`, `callx`, bpf-to-bpf calls. Legacy `ld_abs`/`ld_ind` and
//!   kfunc calls are refused with [`JitError::Unsupported`] — never translated wrongly.
//!
//! Helpers and run-time errors are shared with the interpreter: [`JitProgram::compile`] takes
//! a [`kbpf_vm::HelperRegistry`], and runs fail with [`kbpf_vm::RunError`].
//!
//! ```
//! use kbpf_isa::asm::assemble;
//! use kbpf_jit::JitProgram;
//! use kbpf_vm::HelperRegistry;
//!
//! let prog = assemble("ldxb %r0, [%r1]\nadd %r0, %r2\nexit")?;
//! match JitProgram::compile(&prog, &HelperRegistry::new()) {
//!     Ok(jit) => assert_eq!(jit.run_mem(&mut [40, 1, 1])?, 43),
//!     // Other architectures get a clear error instead of code.
//!     Err(kbpf_jit::JitError::UnsupportedHost { .. }) => {}
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules:
//! - [`x86`]: the x86-64 instruction encoder;
//! - `compile` (private): BPF → x86-64 translation, layout and multi-pass jump sizing;
//! - `exec` (private): W^X executable memory and the call into the image — the only
//!   `unsafe` code besides [`JitProgram::run`] forwarding its contract.
#![deny(missing_docs)]

// On hosts without the JIT only `RunState` and the constants are used.
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
mod compile;
pub mod x86;

#[cfg(all(target_arch = "x86_64", unix))]
mod exec;

/// Stand-in for hosts the JIT cannot run on: no value of it can exist.
#[cfg(not(all(target_arch = "x86_64", unix)))]
mod exec {
    use crate::compile::RunState;

    #[derive(Debug)]
    pub(crate) enum ExecMemory {}

    impl ExecMemory {
        pub(crate) unsafe fn call(&self, _: usize, _: u64, _: u64, _: *mut RunState) -> u64 {
            match *self {}
        }
    }
}

use kbpf_isa::{DecodeError, Insn};
use kbpf_vm::{HelperRegistry, RunError};

use compile::{RunState, STATE_CALL_DEPTH, STATE_OK, STATE_UNKNOWN_HELPER};

/// Why a program could not be JIT-compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The JIT emits x86-64 code for the SysV ABI; other hosts must use the interpreter.
    #[error(
        "the JIT only supports x86-64 Unix hosts (this host is {arch}-{os}); use the interpreter"
    )]
    UnsupportedHost {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
        /// `std::env::consts::OS`.
        os: &'static str,
    },
    /// The program is malformed (bad opcode, register, jump target…).
    #[error("invalid program: {0}")]
    Invalid(#[from] DecodeError),
    /// An instruction the JIT does not translate.
    #[error("insn {pc}: the JIT does not support {what}")]
    Unsupported {
        /// Instruction index.
        pc: usize,
        /// What it is.
        what: &'static str,
    },
    /// An instruction writes `r10`, which is read-only (the verifier's "frame pointer is
    /// read only"); the JIT keeps the frame in `rbp` and relies on it.
    #[error("insn {pc}: frame pointer r10 is read only")]
    WritesFramePointer {
        /// Instruction index.
        pc: usize,
    },
    /// A jump leaves the BPF function it is in.
    #[error("insn {pc}: jump to insn {target} leaves its function")]
    JumpOutOfFunction {
        /// Instruction index.
        pc: usize,
        /// Target index.
        target: i64,
    },
    /// A function's last instruction can fall through into the next function.
    #[error("insn {pc}: the last insn of a function is not an exit or jmp")]
    FallsIntoNextFunction {
        /// Instruction index.
        pc: usize,
    },
    /// The jump-sizing passes did not reach a fixed point.
    #[error("JIT image size did not converge after {passes} passes")]
    NoConvergence {
        /// Passes run.
        passes: usize,
    },
    /// The image would exceed what `rel32` can address.
    #[error("JIT image too large ({bytes} bytes)")]
    TooLarge {
        /// Size reached.
        bytes: usize,
    },
    /// A bug in the JIT (a local jump that does not fit); reported instead of emitting code.
    #[error("insn {pc}: internal JIT error: {what}")]
    Internal {
        /// Instruction index.
        pc: usize,
        /// What went wrong.
        what: &'static str,
    },
    /// Executable memory could not be mapped or protected.
    #[error("cannot map executable memory: {0}")]
    Memory(#[from] std::io::Error),
}

/// A JIT-compiled program in read+execute memory. Runs share nothing mutable, so one program
/// may run on several threads at once.
#[derive(Debug)]
pub struct JitProgram {
    image: Vec<u8>,
    func_offsets: Vec<usize>,
    func_pcs: Vec<usize>,
    insn_offsets: Vec<usize>,
    passes: usize,
    /// The image may write the run state (a leaf main function never does; see
    /// `compile/prologue.rs`), so runs must pass one and read it back.
    reports: bool,
    mem: exec::ExecMemory,
}

/// A leaf image's main function (see [`JitProgram::leaf_entry`]): `r1`, `r2` and an unused
/// third argument in, `r0` out.
pub type LeafEntry = unsafe extern "sysv64" fn(u64, u64, u64) -> u64;

/// What [`JitProgram::compile_with`] admits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// The program is a *translated* one (kbpf-rewrite's output, what the kernel JITs): it may
    /// use the hidden register `BPF_REG_AX` (r11, mapped to x86 `r10` as in the kernel) and the
    /// per-CPU move `BPF_MOV64_PERCPU_REG`, which calls the registry's
    /// [`kbpf_vm::helpers::THIS_CPU_PTR_ID`] hook with the source register as its first
    /// argument (a compile error if the registry has no such hook).
    pub translated: bool,
    /// Bytes of stack each function uses, as the verifier found (`stack_depth` per
    /// subprogram, entry first). With it, a function's prologue zeroes only that much of its
    /// 512-byte frame — the only part the program can read — instead of all of it; `None`
    /// zeroes the whole frame, like the interpreter.
    pub stack_depth: Option<Vec<usize>>,
    /// Emit only baseline x86-64 instructions, for an image that must run on any x86-64 CPU.
    /// By default the JIT uses what the CPU it runs on has: BMI2's `rorx` for rotates and
    /// `movbe` for byte-swapped loads ([`x86::Features::host`]).
    pub baseline_isa: bool,
}

impl JitProgram {
    /// Validates `insns` ([`kbpf_isa::decode::validate`]) and translates them. `call imm`
    /// helpers are resolved against `helpers` now (an unknown id fails only when executed, as
    /// in the interpreter); `callx` dispatches over every helper in `helpers` at run time.
    pub fn compile(insns: &[Insn], helpers: &HelperRegistry) -> Result<JitProgram, JitError> {
        Self::compile_with(insns, helpers, CompileOptions::default())
    }

    /// Compiles a translated program (`kbpf_rewrite`'s `Xlated::insns`, with the registry
    /// `kbpf_run::Program::helpers()` gives): [`JitProgram::compile_with`] with
    /// [`CompileOptions::translated`]. Every `call imm` becomes a *direct* native call
    /// (`movabs rax, addr; call rax`) to the function registered under `imm` — for a
    /// translated program the shim of `__bpf_call_base + imm` (`array_map_lookup_elem`,
    /// `bpf_map_lookup_elem`, …); nothing is looked up at run time. Compile with the same
    /// registry the interpreter uses (`Interpreter::new_translated`) to get the same program.
    pub fn compile_translated(
        insns: &[Insn],
        helpers: &HelperRegistry,
    ) -> Result<JitProgram, JitError> {
        Self::compile_with(
            insns,
            helpers,
            CompileOptions {
                translated: true,
                stack_depth: None,
                ..CompileOptions::default()
            },
        )
    }

    /// [`JitProgram::compile_translated`] with the verifier's per-function stack depths
    /// (see [`CompileOptions::stack_depth`]).
    pub fn compile_translated_with_stack(
        insns: &[Insn],
        helpers: &HelperRegistry,
        stack_depth: &[usize],
    ) -> Result<JitProgram, JitError> {
        Self::compile_with(
            insns,
            helpers,
            CompileOptions {
                translated: true,
                stack_depth: Some(stack_depth.to_vec()),
                ..CompileOptions::default()
            },
        )
    }

    /// [`JitProgram::compile`] with options.
    pub fn compile_with(
        insns: &[Insn],
        helpers: &HelperRegistry,
        opts: CompileOptions,
    ) -> Result<JitProgram, JitError> {
        #[cfg(all(target_arch = "x86_64", unix))]
        {
            let img = compile::translate(insns, helpers, &opts)?;
            let mem = exec::ExecMemory::new(&img.code)?;
            Ok(JitProgram {
                image: img.code,
                func_offsets: img.func_offsets,
                func_pcs: img.func_pcs,
                insn_offsets: img.insn_offsets,
                passes: img.passes,
                reports: img.reports,
                mem,
            })
        }
        #[cfg(not(all(target_arch = "x86_64", unix)))]
        {
            let _ = (insns, helpers, opts);
            Err(JitError::UnsupportedHost {
                arch: std::env::consts::ARCH,
                os: std::env::consts::OS,
            })
        }
    }

    /// Runs the program with `r1`, `r2` (and `r3`–`r5` = 0) and returns `r0`.
    ///
    /// Errors: a `call`/`callx` of an id with no helper ([`RunError::UnknownHelper`]) and a
    /// bpf-to-bpf call deeper than `MAX_CALL_FRAMES` ([`RunError::CallDepth`]); both unwind
    /// the native stack cleanly. Nothing else is checked.
    ///
    /// # Safety
    /// The generated code accesses memory unchecked, exactly like the kernel's JIT: every
    /// load, store and atomic the program performs with these arguments must hit valid memory
    /// (its stack frame, or memory `r1`/`r2` make available for the whole run), and every
    /// helper must be sound to call with the arguments the program passes. A verifier that
    /// accepted the program for this context establishes that; an unverified program must run
    /// on the interpreter's checked mode instead. Programs must also terminate (there is no
    /// instruction budget).
    #[inline]
    pub unsafe fn run(&self, r1: u64, r2: u64) -> Result<u64, RunError> {
        if !self.reports {
            // SAFETY: as below; an image that never reports takes no run state (null).
            return Ok(unsafe { self.mem.call(0, r1, r2, std::ptr::null_mut()) });
        }
        let mut state = RunState::default();
        // SAFETY: offset 0 is the main function of this image (compile::translate lays it out
        // first); the program's own safety is the caller's contract, forwarded unchanged.
        let r0 = unsafe { self.mem.call(0, r1, r2, &mut state) };
        match state.code {
            STATE_OK => Ok(r0),
            STATE_UNKNOWN_HELPER => Err(RunError::UnknownHelper {
                pc: state.pc as usize,
                id: state.detail as i64,
            }),
            STATE_CALL_DEPTH => Err(RunError::CallDepth {
                pc: state.pc as usize,
            }),
            _ => Err(RunError::Unsupported {
                pc: state.pc as usize,
                what: "unknown JIT exit state",
            }),
        }
    }

    /// Runs with `r1 = mem.as_mut_ptr()` (0 if `mem` is empty) and `r2 = mem.len()`, the
    /// bpf_conformance convention (the same as [`kbpf_vm::Interpreter::run_mem`]).
    ///
    /// Safety contract (not checked, as with the interpreter's `Mode::Unchecked`): the
    /// program must be one a verifier accepts for a context of `mem.len()` bytes — it may
    /// only touch `mem`, its own stack and what its helpers hand out. The bpf_conformance
    /// programs satisfy this with their `-- mem` blocks. Use the interpreter's
    /// `Mode::Checked` for programs nobody verified.
    pub fn run_mem(&self, mem: &mut [u8]) -> Result<u64, RunError> {
        let len = mem.len() as u64;
        let ptr = if mem.is_empty() {
            0
        } else {
            mem.as_mut_ptr() as u64
        };
        // SAFETY: `mem` is exclusively borrowed for the whole run; the program's accesses
        // staying inside it and its stack is the documented contract of this function.
        unsafe { self.run(ptr, len) }
    }

    /// The main function of an image that never reports (a leaf, see `compile/prologue.rs`)
    /// as a plain function `(r1, r2, _) -> r0`; `None` for images that need [`Self::run`]'s
    /// run state. For callers that must call the code with nothing of kbpf's in between —
    /// the benchmarks, which call every engine's compiled function through the same loop.
    /// Calling it has [`Self::run`]'s safety contract, and the pointer dangles once `self`
    /// is dropped.
    pub fn leaf_entry(&self) -> Option<LeafEntry> {
        (!self.reports).then(|| self.mem.entry_fn(0))
    }

    /// The machine code (the main function starts at offset 0), for `prog dump jited`.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// `(instruction index, image offset)` of each BPF function; the main function first.
    pub fn functions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.func_pcs
            .iter()
            .copied()
            .zip(self.func_offsets.iter().copied())
    }

    /// Image offset of the code for instruction `pc` (`None` for the second slot of an
    /// `ld_imm64` or an index out of range). Instructions that emit nothing (an `exit` right
    /// before its epilogue) share the next offset.
    pub fn insn_offset(&self, pc: usize) -> Option<usize> {
        self.insn_offsets
            .get(pc)
            .copied()
            .filter(|o| *o != usize::MAX)
    }

    /// How many emission passes the jump sizing took.
    pub fn passes(&self) -> usize {
        self.passes
    }
}

#[cfg(all(test, target_arch = "x86_64", unix))]
mod tests;

//! Execution engines as the CLI sees them: pick one ([`Engine`]), hand it a program and a memory
//! block, get `r0` back ([`run_program`]). The conformance runner and the plugin protocol both go
//! through here, so they run programs identically: `r1` = the memory block, `r2` = its length,
//! a 512-byte stack at `r10`, and the suite's helpers ([`conformance_helpers`]).
//!
//! The interpreter runs with bounds-checked memory ([`Mode::Checked`]) and an instruction
//! budget. The JIT ([`kbpf_jit::JitProgram`]) runs native code unchecked, like the kernel's
//! JIT: it is meant for programs a verifier accepted (the conformance suite's programs are
//! well-behaved); a wild access in an unverified program is not caught.

use kbpf_isa::{DecodeError, Insn};
use kbpf_jit::{JitError, JitProgram};
use kbpf_vm::{Helper, HelperRegistry, Interpreter, Mode, RunError};

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The interpreter (`kbpf-vm`).
    Interp,
    /// The x86-64 JIT (`kbpf-jit`; x86-64 Unix hosts only).
    Jit,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Interp => "interp",
            Engine::Jit => "jit",
        })
    }
}

/// Why a program did not produce an `r0`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The program is malformed (bad opcode, register, jump target…).
    #[error("invalid program: {0}")]
    Load(#[from] DecodeError),
    /// The program stopped with a run-time error.
    #[error("run failed: {0}")]
    Run(#[from] RunError),
    /// The JIT cannot run on this host (it emits x86-64 SysV code).
    #[error("the JIT only runs on x86-64 Unix hosts; use --engine interp")]
    JitUnavailable,
    /// The JIT refused the program (an instruction it does not translate, …).
    #[error("JIT compilation failed: {0}")]
    Jit(JitError),
}

/// Helper id of the bpf_conformance suite's "unwind" helper.
pub const UNWIND_HELPER_ID: i32 = 5;

/// Upper bound on executed instructions per run, so that a broken program (or engine) cannot
/// hang the conformance runner; the suite's longest program runs a few thousand instructions.
pub const INSTRUCTION_LIMIT: u64 = 10_000_000;

/// The suite's helper 5: returns its first argument; the registry entry sets `unwind_on_zero`
/// so a 0 result stops the program with `r0 = 0`.
///
/// # Safety
/// Dereferences nothing; `unsafe` only because that is the [`kbpf_vm::HelperFn`] type.
unsafe extern "C" fn conformance_unwind(r1: u64, _r2: u64, _r3: u64, _r4: u64, _r5: u64) -> u64 {
    r1
}

/// The helpers the bpf_conformance suite's programs call: only helper 5 (`unwind`).
pub fn conformance_helpers() -> HelperRegistry {
    let mut helpers = HelperRegistry::new();
    helpers.register(
        UNWIND_HELPER_ID,
        Helper {
            name: "conformance_unwind",
            func: conformance_unwind,
            unwind_on_zero: true,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    helpers
}

/// Returns an error if `engine` cannot run anything on this host (so callers can refuse up
/// front).
pub fn check_available(engine: Engine) -> Result<(), EngineError> {
    match engine {
        Engine::Interp => Ok(()),
        Engine::Jit if cfg!(all(target_arch = "x86_64", unix)) => Ok(()),
        Engine::Jit => Err(EngineError::JitUnavailable),
    }
}

/// Runs `insns` on `engine` with `mem` as the memory block (`r1`/`r2`) and the conformance
/// helpers; returns `r0`.
pub fn run_program(engine: Engine, insns: &[Insn], mem: &mut [u8]) -> Result<u64, EngineError> {
    check_available(engine)?;
    let helpers = conformance_helpers();
    match engine {
        Engine::Interp => {
            let interp =
                Interpreter::new(insns, &helpers)?.with_instruction_limit(INSTRUCTION_LIMIT);
            Ok(interp.run_mem(mem, Mode::Checked)?)
        }
        Engine::Jit => {
            let jit = JitProgram::compile(insns, &helpers).map_err(|e| match e {
                JitError::Invalid(d) => EngineError::Load(d),
                JitError::UnsupportedHost { .. } => EngineError::JitUnavailable,
                e => EngineError::Jit(e),
            })?;
            // The unchecked run is this engine's documented contract (see the module docs).
            Ok(jit.run_mem(mem)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbpf_isa::asm::assemble;

    fn run(src: &str, mem: &mut [u8]) -> Result<u64, EngineError> {
        let insns = assemble(src).expect("test program assembles");
        run_program(Engine::Interp, &insns, mem)
    }

    #[test]
    fn memory_block_is_r1_and_length_is_r2() {
        let mut mem = [0x11, 0x22, 0x33, 0x44];
        assert_eq!(run("ldxh %r0, [%r1+2]\nexit", &mut mem).unwrap(), 0x4433);
        assert_eq!(run("mov %r0, %r2\nexit", &mut mem).unwrap(), 4);
    }

    #[test]
    fn unwind_helper_stops_on_zero() {
        let src = "mov %r1, 0\ncall 5\nmov %r0, 2\nexit";
        assert_eq!(run(src, &mut []).unwrap(), 0);
        let src = "mov %r1, 7\ncall 5\nexit";
        assert_eq!(run(src, &mut []).unwrap(), 7);
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(
            run("ldxb %r0, [%r1+8]\nexit", &mut [0u8; 4]),
            Err(EngineError::Run(_))
        ));
        assert!(matches!(
            run("mov %r0, 0", &mut []),
            Err(EngineError::Load(_))
        ));
        // The JIT reports malformed programs the same way, and its own refusals clearly.
        let insns = assemble("mov %r0, 0").unwrap();
        let e = run_program(Engine::Jit, &insns, &mut []).unwrap_err();
        assert!(matches!(e, EngineError::Load(_)), "{e}");
        let insns = assemble("mov %r10, 0\nexit").unwrap();
        let e = run_program(Engine::Jit, &insns, &mut []).unwrap_err();
        if cfg!(all(target_arch = "x86_64", unix)) {
            assert_eq!(
                e.to_string(),
                "JIT compilation failed: insn 0: frame pointer r10 is read only"
            );
        } else {
            assert_eq!(
                e.to_string(),
                "the JIT only runs on x86-64 Unix hosts; use --engine interp"
            );
        }
    }

    #[test]
    fn jit_and_interpreter_agree() {
        if check_available(Engine::Jit).is_err() {
            eprintln!("skipped: the JIT does not run on this host");
            return;
        }
        let cases: &[(&str, &[u8])] = &[
            ("ldxh %r0, [%r1+2]\nexit", &[0x11, 0x22, 0x33, 0x44]),
            ("mov %r0, %r2\nexit", &[1, 2, 3]),
            ("mov %r1, 0\ncall 5\nmov %r0, 2\nexit", &[]),
            ("mov %r1, 7\ncall 5\nexit", &[]),
            ("mov %r0, 1\nlsh %r0, 40\ndiv %r0, 0\nexit", &[]),
        ];
        for (src, mem) in cases {
            let insns = assemble(src).expect("test program assembles");
            let (mut m1, mut m2) = (mem.to_vec(), mem.to_vec());
            let a = run_program(Engine::Interp, &insns, &mut m1).expect("interp runs");
            let b = run_program(Engine::Jit, &insns, &mut m2).expect("jit runs");
            assert_eq!(a, b, "{src}");
        }
        let insns = assemble("mov %r2, 99\ncall %r2\nexit").unwrap();
        let e = run_program(Engine::Jit, &insns, &mut []).unwrap_err();
        assert_eq!(
            e.to_string(),
            "run failed: insn 1: call to unknown helper #99"
        );
    }
}

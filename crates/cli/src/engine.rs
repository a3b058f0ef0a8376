//! Execution engines as the CLI sees them: pick one ([`Engine`]), hand it a program and a memory
//! block, get `r0` back ([`run_program`]). The conformance runner and the plugin protocol both go
//! through here, so they run programs identically: `r1` = the memory block, `r2` = its length,
//! a 512-byte stack at `r10`, bounds-checked memory ([`Mode::Checked`]), and the suite's helpers
//! ([`conformance_helpers`]).

use kbpf_isa::{DecodeError, Insn};
use kbpf_vm::{Helper, HelperRegistry, Interpreter, Mode, RunError};

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The interpreter (`kbpf-vm`).
    Interp,
    /// The x86-64 JIT (not built yet).
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
    /// The requested engine does not exist yet.
    #[error("the JIT is not built yet; use --engine interp")]
    JitUnavailable,
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
        },
    );
    helpers
}

/// Returns an error if `engine` cannot run anything yet (so callers can refuse up front).
pub fn check_available(engine: Engine) -> Result<(), EngineError> {
    match engine {
        Engine::Interp => Ok(()),
        Engine::Jit => Err(EngineError::JitUnavailable),
    }
}

/// Runs `insns` on `engine` with `mem` as the memory block (`r1`/`r2`) and the conformance
/// helpers; returns `r0`.
pub fn run_program(engine: Engine, insns: &[Insn], mem: &mut [u8]) -> Result<u64, EngineError> {
    check_available(engine)?;
    let helpers = conformance_helpers();
    let interp = Interpreter::new(insns, &helpers)?.with_instruction_limit(INSTRUCTION_LIMIT);
    Ok(interp.run_mem(mem, Mode::Checked)?)
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
        let insns = assemble("mov %r0, 0\nexit").unwrap();
        let e = run_program(Engine::Jit, &insns, &mut []).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the JIT is not built yet; use --engine interp"
        );
    }
}

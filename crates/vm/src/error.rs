//! Run-time errors of the interpreter. Every variant that comes from an instruction names its
//! index (`pc`, counted in 8-byte slots as in the kernel's verifier log).

/// Why a run stopped without reaching `exit` from the main function.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// [`Mode::Checked`](crate::Mode::Checked): a load or store outside the live stack frames
    /// and the given memory regions, or a store to a read-only region.
    #[error("insn {pc}: invalid {} of {len} bytes at {addr:#x}", if *write { "write" } else { "read" })]
    OutOfBounds {
        /// Instruction index.
        pc: usize,
        /// First byte accessed.
        addr: u64,
        /// Access size in bytes.
        len: u64,
        /// Store (true) or load (false).
        write: bool,
    },
    /// An atomic operation on an address that is not aligned to its size (the kernel's verifier
    /// rejects these; the interpreter refuses them in both modes rather than fault).
    #[error("insn {pc}: misaligned atomic access of {len} bytes at {addr:#x}")]
    Misaligned {
        /// Instruction index.
        pc: usize,
        /// Address.
        addr: u64,
        /// Access size in bytes.
        len: u64,
    },
    /// `call imm` or `callx reg` with an id that has no registered helper.
    #[error("insn {pc}: call to unknown helper #{id}")]
    UnknownHelper {
        /// Instruction index.
        pc: usize,
        /// The helper id (the call's `imm`, or the register value for `callx`).
        id: i64,
    },
    /// A bpf-to-bpf call beyond the kernel's `MAX_CALL_FRAMES` (8) frames.
    #[error(
        "insn {pc}: the call stack is too deep (max {} frames)",
        kbpf_isa::insn::MAX_CALL_FRAMES
    )]
    CallDepth {
        /// Instruction index of the call.
        pc: usize,
    },
    /// The instruction budget (see [`Interpreter::with_instruction_limit`](crate::Interpreter::with_instruction_limit))
    /// ran out.
    #[error("insn {pc}: instruction limit of {limit} reached")]
    InstructionLimit {
        /// Instruction that would have exceeded the budget.
        pc: usize,
        /// The budget.
        limit: u64,
    },
    /// An instruction this interpreter cannot execute (legacy `ld_abs`/`ld_ind` without an skb,
    /// kfunc calls).
    #[error("insn {pc}: {what} is not supported")]
    Unsupported {
        /// Instruction index.
        pc: usize,
        /// What it was.
        what: &'static str,
    },
}

//! The crate's top-level error: every variant names the section, symbol, map or program
//! it is about.

use crate::btf::BtfError;
use crate::btf_ext::BtfExtError;
use crate::maps::MapError;

/// Errors reading an object file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// Path.
        path: String,
        /// OS error text.
        reason: String,
    },
    /// The ELF container is malformed (truncated, bad offsets, not ELF64 LE).
    #[error("malformed ELF: {0}")]
    Elf(String),
    /// The ELF is not for `EM_BPF`.
    #[error("not a BPF object: e_machine is {machine}, expected 247 (EM_BPF)")]
    NotBpf {
        /// The `e_machine` found.
        machine: u16,
    },
    /// A section is malformed.
    #[error("section '{section}': {reason}")]
    Section {
        /// Section name.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A symbol is malformed or unsupported.
    #[error("section '{section}': symbol '{symbol}': {reason}")]
    Symbol {
        /// Section name.
        section: String,
        /// Symbol name.
        symbol: String,
        /// What is wrong.
        reason: String,
    },
    /// BTF could not be parsed.
    #[error("section '{section}': {source}")]
    Btf {
        /// `.BTF` or `.BTF.ext`.
        section: String,
        /// The BTF error.
        source: BtfError,
    },
    /// `.BTF.ext` could not be parsed.
    #[error(transparent)]
    BtfExt(#[from] BtfExtError),
    /// A map definition is invalid.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A relocation cannot be applied.
    #[error("relocation section '{section}' offset {offset}: symbol '{symbol}': {reason}")]
    Relocation {
        /// The relocation section (`.relxdp`, `.rel.maps`).
        section: String,
        /// `r_offset`.
        offset: u64,
        /// The symbol named by the relocation.
        symbol: String,
        /// What is wrong.
        reason: String,
    },
    /// Subprogram linking failed.
    #[error("program '{program}': {reason}")]
    Link {
        /// Program name.
        program: String,
        /// What is wrong.
        reason: String,
    },
}

//! Reading the BPF ELF objects clang builds, with libbpf's conventions. Parsing only:
//! creating maps and verifying programs belong to other crates.
//!
//! - [`object`]: [`BpfObject`] — sections, programs (one per global function in a program
//!   section) with their `.text` subprograms appended and calls/relocations fixed up as
//!   libbpf does, license, version;
//! - [`section`]: libbpf's section-name table (prog type, expected attach type);
//! - [`maps`]: [`MapDef`] for BTF-defined maps (incl. map-in-map templates and initial
//!   slots), legacy `maps`, and global data maps;
//! - [`btf`] / [`btf_ext`]: BTF and `.BTF.ext` (func/line info, CO-RE records), type
//!   names, function prototypes and bpftool-style value formatting;
//! - [`core`]: CO-RE relocation resolution against a target BTF.
//!
//! ```no_run
//! let obj = kbpf_object::BpfObject::open("prog.bpf.o")?;
//! for p in &obj.programs {
//!     println!("{} ({} insns, type {})", p.name, p.insns.len(), p.prog_type());
//!     for r in &p.relocations {
//!         println!("  insn {}: {:?} ({})", r.insn_idx, r.kind, r.symbol);
//!     }
//! }
//! # Ok::<(), kbpf_object::ObjectError>(())
//! ```
#![deny(missing_docs)]

/// BTF lives in its own crate (the kernel profile reads vmlinux BTF without objects).
pub use kbpf_btf as btf;
pub mod btf_ext;
pub mod core;
pub mod error;
pub mod kconfig;
pub mod maps;
pub mod object;
pub mod section;

pub use btf::{Btf, BtfError};
pub use core::{CoreError, CoreRelo, CoreReloKind};
pub use error::ObjectError;
pub use maps::{MapDef, MapError, MapOrigin};
pub use object::{BpfObject, FuncInfo, LineInfo, Program, RelocKind, Relocation, Subprog};

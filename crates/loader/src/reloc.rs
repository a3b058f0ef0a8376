//! Map relocations of one program (libbpf's `bpf_object__relocate_data`): every `ld_imm64`
//! that refers to a map becomes the pair the kernel's `BPF_PROG_LOAD` expects —
//!
//! - `MapFd`: `src = BPF_PSEUDO_MAP_FD`, `imm = fd`, second half `imm = 0`;
//! - `MapValue`: `src = BPF_PSEUDO_MAP_VALUE`, `imm = fd`, second half `imm = offset`.
//!
//! Calls and function pointers were already resolved by the object crate and are left as
//! they are. Line and function info travel with the instructions unchanged (relocation
//! does not move instructions).

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};
use kbpf_object::{FuncInfo, LineInfo, Program, RelocKind};

use crate::error::LoadError;

/// A program ready for `BPF_PROG_LOAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedProgram {
    /// Entry function name.
    pub name: String,
    /// ELF section name.
    pub section: String,
    /// libbpf's `autoload` (false for `SEC("?…")`): whole-object loads skip the program.
    pub autoload: bool,
    /// `enum bpf_prog_type` (0 for a section libbpf does not know).
    pub prog_type: u32,
    /// `expected_attach_type`.
    pub expected_attach_type: u32,
    /// `prog_flags` (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`).
    pub prog_flags: u32,
    /// Relocated instructions.
    pub insns: Vec<Insn>,
    /// Line info (instruction indices into [`LoadedProgram::insns`]).
    pub line_info: Vec<LineInfo>,
    /// Function info (instruction indices into [`LoadedProgram::insns`]).
    pub func_info: Vec<FuncInfo>,
    /// Map fds the instructions refer to, ascending and without duplicates (the set the
    /// kernel records as the program's `used_maps`).
    pub map_fds_used: Vec<u32>,
    /// Maps bound to the program without being referenced by an instruction: libbpf binds
    /// every `.rodata*` map to every program (`BPF_PROG_BIND_MAP`) so that read-only
    /// metadata lives as long as the program. The kernel adds them to `used_maps` too.
    /// Filled by [`crate::load_object`]; ascending, disjoint from `map_fds_used`.
    pub bound_map_fds: Vec<u32>,
    /// The kernel functions the program calls, resolved against the kernel's BTF:
    /// `(btf_id, name)`, ascending by id (filled by [`crate::load_object`]).
    pub kfuncs: Vec<(i32, String)>,
    /// The kernel BTF's STRUCT/UNION ids, ascending, when the program calls
    /// `bpf_rdonly_cast` (its target type must be one; filled by [`crate::load_object`]).
    pub kernel_structs: Vec<u32>,
    /// The global (non-static) functions other than the entry, with their BTF prototypes:
    /// the kernel verifies these on their own (`BTF_FUNC_GLOBAL` in the func_info; filled
    /// by [`crate::load_object`], see [`crate::global_funcs`]).
    pub global_funcs: Vec<kbpf_verifier::GlobalFunc>,
    /// The kernel gets the program's func_info (the object's BTF loads; filled by
    /// [`crate::load_object`]): callbacks need it.
    pub btf_func_info: bool,
    /// First instructions of the subprograms whose BTF prototype does not return an int
    /// (see [`kbpf_verifier::Options::non_scalar_return`]; filled by [`crate::load_object`]).
    pub non_scalar_return: Vec<usize>,
    /// The license the load passes (`attr.license`, the object's `license` section for
    /// [`crate::load_object`]) is GPL-compatible: only then may the program call GPL-only
    /// helpers ([`kbpf_verifier::Options::gpl_compatible`]). True for [`Self::from_insns`].
    pub gpl_compatible: bool,
}

impl LoadedProgram {
    /// A program given as instructions only (what a raw `BPF_PROG_LOAD` receives): no
    /// section, BTF or line info; map references already as `BPF_PSEUDO_MAP_FD`/`_VALUE`
    /// fds, which are collected into [`LoadedProgram::map_fds_used`].
    pub fn from_insns(name: &str, prog_type: u32, insns: Vec<Insn>) -> LoadedProgram {
        let mut fds: Vec<u32> = insns
            .iter()
            .filter(|i| {
                i.is_ld_imm64() && matches!(i.src(), BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_VALUE)
            })
            .map(|i| i.imm as u32)
            .collect();
        fds.sort_unstable();
        fds.dedup();
        LoadedProgram {
            name: name.to_owned(),
            section: String::new(),
            autoload: true,
            prog_type,
            expected_attach_type: 0,
            prog_flags: 0,
            insns,
            line_info: Vec::new(),
            func_info: Vec::new(),
            map_fds_used: fds,
            bound_map_fds: Vec::new(),
            kfuncs: Vec::new(),
            kernel_structs: Vec::new(),
            global_funcs: Vec::new(),
            btf_func_info: false,
            non_scalar_return: Vec::new(),
            gpl_compatible: true,
        }
    }

    /// Every map fd the kernel would list as the program's `used_maps` (`map_ids` in
    /// `bpftool prog show`): referenced and bound, ascending.
    pub fn used_map_fds(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self
            .map_fds_used
            .iter()
            .chain(&self.bound_map_fds)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Applies `prog`'s map relocations; `map_fd(i)` is the fd of the object's map `i`
/// (`None` when there is no such map).
pub fn relocate_program(
    prog: &Program,
    map_fd: impl Fn(usize) -> Option<u32>,
) -> Result<LoadedProgram, LoadError> {
    let mut insns = prog.insns.clone();
    let mut used = Vec::new();
    for r in &prog.relocations {
        let err = |reason: String| LoadError::Relocation {
            program: prog.name.clone(),
            section: prog.section.clone(),
            insn_idx: r.insn_idx,
            symbol: r.symbol.clone(),
            reason,
        };
        let (map, src, second_imm) = match r.kind {
            RelocKind::MapFd { map } => (map, BPF_PSEUDO_MAP_FD, 0u32),
            RelocKind::MapValue { map, offset } => (map, BPF_PSEUDO_MAP_VALUE, offset),
            RelocKind::Call { .. } | RelocKind::Func { .. } | RelocKind::Kfunc { .. } => continue,
        };
        let fd = map_fd(map)
            .ok_or_else(|| err(format!("refers to map #{map}, which was not created")))?;
        let imm = i32::try_from(fd).map_err(|_| err(format!("map fd {fd} does not fit imm")))?;
        let second_imm = i32::from_ne_bytes(second_imm.to_ne_bytes());
        let Some(first) = insns.get(r.insn_idx) else {
            return Err(err(format!("index past the end ({} insns)", insns.len())));
        };
        if !first.is_ld_imm64() {
            return Err(err(format!(
                "map reference on opcode {:#04x}, expected ld_imm64",
                first.code
            )));
        }
        if r.insn_idx + 1 >= insns.len() {
            return Err(err("ld_imm64 without its second half".to_string()));
        }
        let first = &mut insns[r.insn_idx];
        *first = Insn::new(first.code, first.dst(), src, first.off, imm);
        insns[r.insn_idx + 1].imm = second_imm;
        used.push(fd);
    }
    used.sort_unstable();
    used.dedup();
    Ok(LoadedProgram {
        name: prog.name.clone(),
        section: prog.section.clone(),
        autoload: prog.autoload,
        prog_type: prog.prog_type(),
        expected_attach_type: prog.expected_attach_type(),
        prog_flags: prog.prog_flags(),
        insns,
        line_info: prog.line_info.clone(),
        func_info: prog.func_info.clone(),
        map_fds_used: used,
        bound_map_fds: Vec::new(),
        kfuncs: Vec::new(),
        kernel_structs: Vec::new(),
        global_funcs: Vec::new(),
        btf_func_info: false,
        non_scalar_return: Vec::new(),
        gpl_compatible: true,
    })
}

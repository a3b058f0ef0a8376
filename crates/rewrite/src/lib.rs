//! kbpf-rewrite: turns a program the verifier accepted into the *translated* ("xlated")
//! program the kernel would run, with the kernel's own fixups (Linux 6.18, privileged loader,
//! JIT requested on a 64-bit host), and prints it as `bpftool prog dump xlated` does.
//!
//! The passes run in `bpf_check()`'s order after `do_check`:
//! 0. **`bpf_fastcall`** ([`fastcall`], `remove_fastcall_spills_fills`): the spills and fills
//!    around an inlined `bpf_fastcall` call become no-ops (removed with the dead code).
//! 0. **`bpf_loop`** ([`bpf_loop`], `optimize_bpf_loop`): calls fit for it become a loop
//!    calling the callback.
//! 1. **Dead code** (`opt_hard_wire_dead_code_branches`, `opt_remove_dead_code`,
//!    `opt_remove_nops`): a conditional jump one of whose successors was never reached
//!    becomes a `goto` (or a no-op), unreached instructions and `goto +0` are removed.
//! 2. **Context accesses** ([`ctx`], `convert_ctx_accesses`): `*(u32 *)(r1 +4)` on an
//!    `xdp_md` becomes `*(u64 *)(r1 +8)` on kbpf's `xdp_buff`, laid out like the kernel's.
//! 3. **Misc fixups** ([`fixups`], `do_misc_fixups`): division/modulo guards; for each
//!    `bpf_map_lookup_elem` whose map is known and not poisoned, the map's `map_gen_lookup`
//!    sequence is inlined, or — when the map answers "not supported", as a `BPF_F_INNER_MAP`
//!    array does — the call becomes a **direct call** of the type's `map_lookup_elem`; other
//!    map helpers become direct calls to the map type's ops; every other helper call's `imm`
//!    becomes the address of kbpf's implementation relative to `__bpf_call_base`.
//!    Each `may_goto` becomes a loop budget on the stack ([`may_goto`]).
//! 4. **Zero extension** (`opt_subreg_zext_lo32_rnd_hi32`): `w0 = w0` after a 32-bit
//!    `cmpxchg`, the one 32-bit result the x86-64 JIT does not zero-extend by itself.
//! 5. **Map references** (`resolve_pseudo_ldimm64` + `convert_pseudo_ld_imm64`): `ld_imm64`
//!    of a map fd or map value becomes the map's (or value's) host address.
//!
//! Every edit goes through [`patch::Prog`], which adjusts jumps, line info, function info
//! and subprogram starts as the kernel does, so offsets and `; source` lines in the dump read
//! like the kernel's. The program tag ([`prog_tag`]) is the kernel's
//! `bpf_prog_calc_tag` (SHA-256 based since Linux 6.18).
//!
//! The rewrite never re-verifies: it trusts the verifier's per-instruction facts
//! ([`kbpf_verifier::InsnAux`]). An internal inconsistency (a map the verifier saw that
//! cannot be found, a `gen_lookup` of a bad length) is a load error, never a silent
//! fallback — the kernel's "verifier bug".
#![deny(missing_docs)]

pub mod bpf_loop;
pub mod ctx;
pub mod env;
pub mod fastcall;
pub mod fixups;
pub mod ld_abs;
pub mod may_goto;
pub mod patch;
pub mod xlated;

use std::collections::HashMap;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_maps::Map;
use kbpf_object::{FuncInfo, LineInfo};
pub use kbpf_profile::{KernelProfile, TagHash};
use kbpf_verifier::{ProgType, Verdict};

pub use env::MapsEnv;
pub use patch::Prog;

/// Why a verified program could not be translated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A patched jump no longer fits its 16-bit offset (the kernel's `-ERANGE`).
    #[error("jump offset out of range after patching")]
    JumpOutOfRange,
    /// The rewrite found the verifier's facts inconsistent (the kernel's "verifier bug",
    /// `-EFAULT`).
    #[error("verifier bug: {0}")]
    VerifierBug(String),
    /// kbpf has no implementation of a helper the program calls (the kernel's "kernel
    /// subsystem misconfigured func").
    #[error("kbpf does not implement helper {name}#{id}")]
    HelperNotImplemented {
        /// Helper name.
        name: String,
        /// Helper id.
        id: i32,
    },
    /// A call target is too far from `__bpf_call_base` for a 32-bit immediate.
    #[error("call target out of the 32-bit call range: {0}")]
    CallRange(String),
    /// An instruction kbpf cannot translate yet.
    #[error("insn {insn}: {what} is not supported by kbpf's rewrite")]
    Unsupported {
        /// Instruction index (in the verified program).
        insn: usize,
        /// What.
        what: String,
    },
}

impl RewriteError {
    /// The errno the kernel's `BPF_PROG_LOAD` returns for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            RewriteError::JumpOutOfRange => 34, // ERANGE
            RewriteError::VerifierBug(_) | RewriteError::HelperNotImplemented { .. } => 14, // EFAULT
            RewriteError::CallRange(_) => 34,
            RewriteError::Unsupported { .. } => 524, // ENOTSUPP
        }
    }
}

/// The kernel functions a translated program may call: kbpf's helper implementations,
/// addressed as the kernel addresses `fn->func`.
pub trait KernelFunctions {
    /// Address of kbpf's implementation of helper `id` for `prog_type`, if any.
    fn helper(&self, prog_type: ProgType, id: i32) -> Option<usize>;
    /// The kernel (kallsyms) name of the function at `addr`, as bpftool prints it.
    fn name(&self, addr: usize) -> Option<&'static str>;
    /// The address of the per-CPU `cpu_number` variable (fitting a 32-bit immediate), for
    /// inlining `bpf_get_smp_processor_id` as the x86-64 kernel does; `None` keeps the call.
    fn cpu_number(&self) -> Option<u32> {
        None
    }
    /// The address of the kernel function `name` (a map type's `map_redirect`, which
    /// `do_misc_fixups` calls directly), if kbpf has it.
    fn function(&self, _name: &str) -> Option<usize> {
        None
    }
}

/// What the rewrite needs besides the verified program.
pub struct RewriteInput<'a> {
    /// The program as verified (map references as `BPF_PSEUDO_MAP_FD`/`_VALUE` fds).
    pub insns: &'a [Insn],
    /// The verifier's verdict on `insns` (it must be an accept).
    pub verdict: &'a Verdict,
    /// The maps the fds name.
    pub maps: &'a MapsEnv,
    /// Program type.
    pub prog_type: ProgType,
    /// Line info of `insns`.
    pub line_info: &'a [LineInfo],
    /// Function info of `insns` (one per subprogram, when the object has BTF).
    pub func_info: &'a [FuncInfo],
    /// For each `func_info` record, the BTF prototype bpftool prints (`int f(struct xdp_md * ctx)`)
    /// and the function name.
    pub funcs_btf: &'a [(Option<String>, String)],
    /// kbpf's kernel functions.
    pub kernel: &'a dyn KernelFunctions,
    /// The kernel profile whose rewrite to reproduce (tag hash, zero-extension).
    pub profile: &'a KernelProfile,
}

/// A translated program.
#[derive(Clone, Debug)]
pub struct Xlated {
    /// The translated instructions, with host addresses in map `ld_imm64`s and
    /// `__bpf_call_base`-relative call immediates.
    pub insns: Vec<Insn>,
    /// Line info, adjusted to the translated positions.
    pub line_info: Vec<LineInfo>,
    /// Function info, adjusted.
    pub func_info: Vec<FuncInfo>,
    /// Prototype text per `func_info` record.
    pub func_protos: Vec<Option<String>>,
    /// First instruction of each subprogram.
    pub subprog_starts: Vec<usize>,
    /// Bytes of stack each subprogram uses: the verifier's depth plus what the rewrite
    /// added (the `may_goto` budget).
    pub stack_depth: Vec<usize>,
    /// kallsyms name of each subprogram (`bpf_prog_<tag>_<name>`), for `call pc+N#…`.
    pub subprog_names: Vec<String>,
    /// The program's maps (`used_maps`), ascending by fd.
    pub used_maps: Vec<Map>,
    /// The kernel's program tag of the loaded (untranslated) program.
    pub tag: [u8; 8],
    /// Names of the call targets appearing in the program.
    call_names: HashMap<usize, &'static str>,
}

impl Xlated {
    /// `bpf_map_from_imm`: which map (id), offset and kind (value or map) an `ld_imm64`
    /// address designates.
    pub fn map_from_addr(&self, addr: u64) -> Option<(u32, u32, bool)> {
        for m in &self.used_maps {
            let base = m.as_ptr() as u64;
            if addr == base {
                return Some((m.id(), 0, false));
            }
            if m.map_type() == kbpf_maps::MapType::Array && m.max_entries() == 1 {
                let v = base + m.value_off() as u64;
                if addr >= v && addr < v + m.value_size() as u64 {
                    return Some((m.id(), (addr - v) as u32, true));
                }
            }
        }
        None
    }

    /// The kernel name of a call target in this program.
    pub fn call_name(&self, addr: usize) -> Option<&'static str> {
        self.call_names.get(&addr).copied()
    }

    /// The distinct call targets (address, name) of the program, for wiring an engine.
    pub fn call_targets(&self) -> impl Iterator<Item = (usize, &'static str)> + '_ {
        self.call_names.iter().map(|(a, n)| (*a, *n))
    }

    /// Program tag as bpftool prints it (16 hex digits).
    pub fn tag_hex(&self) -> String {
        hex(&self.tag)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `bpf_prog_calc_tag`: the first 8 bytes of the profile's hash (SHA-256 on Linux 6.18,
/// SHA-1 before) of the instructions, with the immediates of map `ld_imm64`s zeroed (fds are
/// not stable across loads).
pub fn prog_tag(insns: &[Insn], hash: TagHash) -> [u8; 8] {
    let mut bytes = Vec::with_capacity(insns.len() * 8);
    let mut was_ld_map = false;
    for insn in insns {
        let mut i = *insn;
        if !was_ld_map
            && i.is_ld_imm64()
            && matches!(i.src(), BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_VALUE)
        {
            was_ld_map = true;
            i.imm = 0;
        } else if was_ld_map && i.code == 0 && i.regs == 0 && i.off == 0 {
            was_ld_map = false;
            i.imm = 0;
        } else {
            was_ld_map = false;
        }
        bytes.extend_from_slice(&i.to_bytes());
    }
    hash.tag_of(&bytes)
}

/// Translates a verified program.
pub fn rewrite(input: &RewriteInput<'_>) -> Result<Xlated, RewriteError> {
    if !input.verdict.accepted() {
        return Err(RewriteError::VerifierBug(
            "rewrite of a rejected program".into(),
        ));
    }
    let n = input.insns.len();
    if input.verdict.aux.len() != n {
        return Err(RewriteError::VerifierBug(format!(
            "{} aux records for {n} insns",
            input.verdict.aux.len()
        )));
    }
    // Maps of kernel objects kbpf does not have (sockets, socket-local storage): such a
    // program verifies, but kbpf cannot run it. (An XSKMAP runs: lookups find no socket and
    // redirects through it fail, as on a kernel with none bound; so do socket-local
    // storage, on the one socket a test run has, and cgroup storage, a test run's own.)
    if let Some((_, d)) = input
        .verdict
        .maps
        .iter()
        .find(|(_, d)| matches!(d.map_type, 15 | 18 | 20 | 31))
    {
        return Err(RewriteError::Unsupported {
            insn: 0,
            what: format!("map '{}' of type {}", d.name, d.map_type),
        });
    }
    let mut aux = input.verdict.aux.clone();
    // The second slot of an ld_imm64 is seen with its first (`sanitize_mark_insn_seen`).
    let mut i = 0;
    while i < n {
        if input.insns[i].is_ld_imm64() && i + 1 < n {
            aux[i + 1].seen = aux[i].seen;
            i += 2;
        } else {
            i += 1;
        }
    }
    let subprog_starts = subprog_starts(input.insns);
    let mut prog = Prog {
        insns: input.insns.to_vec(),
        aux,
        orig: (0..n).map(Some).collect(),
        line_info: input.line_info.to_vec(),
        func_info: input.func_info.to_vec(),
        subprog_starts,
    };
    // BTF per function, by FUNC type id (stable while func_info records move).
    let btf_of: HashMap<u32, &(Option<String>, String)> = input
        .func_info
        .iter()
        .zip(input.funcs_btf)
        .map(|(f, b)| (f.type_id, b))
        .collect();

    let mut stack_depth = input.verdict.stack_depth.clone();
    stack_depth.resize(prog.subprog_starts.len().max(stack_depth.len()), 0);
    fastcall::remove_fastcall_spills_fills(&mut prog, input.kernel)?;
    bpf_loop::optimize_bpf_loop(&mut prog, &mut stack_depth)?;
    fixups::remove_dead_code(&mut prog)?;
    ctx::convert_ctx_accesses(&mut prog, input.prog_type, input.verdict.seen_direct_write)?;
    let mut call_names = HashMap::new();
    fixups::misc_fixups(&mut prog, input, &mut call_names)?;
    may_goto::patch_may_goto(&mut prog, &mut stack_depth)?;
    if input.profile.rewrite.zext_cmpxchg32 {
        fixups::zext_cmpxchg32(&mut prog)?;
    }
    fixups::resolve_map_refs(&mut prog, input.maps)?;

    let tag_hash = input.profile.rewrite.tag_hash;
    let tag = prog_tag(input.insns, tag_hash);
    // Subprogram names as kallsyms has them (`jit_subprogs` names them `F` without BTF): the
    // kernel tags each subprogram by its own translated instructions. Those hold call
    // immediates and map addresses, so a subprogram that calls helpers or references maps
    // gets a different tag in kbpf than in the kernel; pure subprograms match.
    let mut subprog_names = Vec::new();
    for (k, &start) in prog.subprog_starts.iter().enumerate() {
        let end = prog
            .subprog_starts
            .get(k + 1)
            .copied()
            .unwrap_or(prog.insns.len());
        let t = if k == 0 {
            tag
        } else {
            prog_tag(&prog.insns[start..end], tag_hash)
        };
        let name = prog
            .func_info
            .iter()
            .find(|f| f.insn_idx == start)
            .and_then(|f| btf_of.get(&f.type_id))
            .map_or_else(|| "F".to_owned(), |(_, n)| n.clone());
        subprog_names.push(format!("bpf_prog_{}_{}", hex(&t), name));
    }
    let func_protos = prog
        .func_info
        .iter()
        .map(|f| btf_of.get(&f.type_id).and_then(|(p, _)| p.clone()))
        .collect();
    let used_maps = input.maps.used_maps(input.insns);
    Ok(Xlated {
        insns: prog.insns,
        line_info: prog.line_info,
        func_info: prog.func_info,
        func_protos,
        subprog_starts: prog.subprog_starts,
        stack_depth,
        subprog_names,
        used_maps,
        tag,
        call_names,
    })
}

/// Subprogram starts: 0 and every bpf-to-bpf call or `BPF_PSEUDO_FUNC` target.
fn subprog_starts(insns: &[Insn]) -> Vec<usize> {
    let mut s = vec![0usize];
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        let pseudo_call = insn.code == BPF_JMP | BPF_CALL && insn.src() == BPF_PSEUDO_CALL;
        let pseudo_func = insn.is_ld_imm64() && insn.src() == BPF_PSEUDO_FUNC;
        let target = (pseudo_call || pseudo_func).then(|| i as i64 + insn.imm as i64 + 1);
        if let Some(t) = target
            && t >= 0
            && (t as usize) < insns.len()
        {
            s.push(t as usize);
        }
        i += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    s.sort_unstable();
    s.dedup();
    s
}

//! A program loaded the way `BPF_PROG_LOAD` loads it: verified against its maps, translated
//! by the rewrite, and wired to kbpf's kernel functions so an engine can run it.

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_CALL, BPF_JMP};
use kbpf_loader::LoadedProgram;
use kbpf_maps::Map;
use kbpf_object::BpfObject;
use kbpf_rewrite::xlated::{self, DumpOptions};
use kbpf_rewrite::{KernelFunctions, KernelProfile, MapsEnv, RewriteError, RewriteInput, Xlated};
use kbpf_uapi::bpf::{BPF_LOG_LEVEL1, BPF_LOG_LEVEL2, BPF_LOG_STATS};
use kbpf_verifier::{Options, ProgType, Stats, VerifierError, verify};
use kbpf_vm::HelperRegistry;

use crate::kernel::{Kbpf, registry_for};

/// Why `prog load` failed, with the kernel's errno.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProgLoadError {
    /// kbpf does not run this program type.
    #[error("program {name}: program type {prog_type} is not supported by kbpf")]
    ProgType {
        /// Program name.
        name: String,
        /// `enum bpf_prog_type`.
        prog_type: u32,
    },
    /// The verifier rejected the program; `log` is its log.
    #[error("program {name}: verifier rejected it: {error}")]
    Verifier {
        /// Program name.
        name: String,
        /// The error (message, errno); boxed with `stats` so that every `Result` of a load
        /// stays small.
        error: Box<VerifierError>,
        /// The verifier log.
        log: String,
        /// What the verifier did before it gave up (veristat reports it for failures too).
        stats: Box<Stats>,
    },
    /// A PROG_ARRAY the program uses already belongs to programs of another type (the
    /// kernel's `bpf_check_tail_call` at the end of `BPF_PROG_LOAD`: EINVAL, no log line).
    #[error(
        "program {name}: program array {map} belongs to programs of type {owner}, not {prog_type}"
    )]
    ProgArrayOwner {
        /// Program name.
        name: String,
        /// The map's name.
        map: String,
        /// The array's owner type.
        owner: u32,
        /// This program's type.
        prog_type: u32,
    },
    /// The rewrite failed.
    #[error("program {name}: {error}")]
    Rewrite {
        /// Program name.
        name: String,
        /// The error.
        error: RewriteError,
        /// The verifier accepted the program: its log.
        log: String,
        /// The verifier's statistics.
        stats: Stats,
    },
}

impl ProgLoadError {
    /// The errno `BPF_PROG_LOAD` returns.
    pub fn errno(&self) -> i32 {
        match self {
            ProgLoadError::ProgType { .. } | ProgLoadError::ProgArrayOwner { .. } => 22,
            ProgLoadError::Verifier { error, .. } => error.errno,
            ProgLoadError::Rewrite { error, .. } => error.errno(),
        }
    }

    /// The verifier log, if the verifier produced one.
    pub fn log(&self) -> Option<&str> {
        match self {
            ProgLoadError::Verifier { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Verifier log level, the kernel's bits: `BPF_LOG_LEVEL1` (1), `BPF_LOG_LEVEL2` (2),
    /// `BPF_LOG_STATS` (4).
    pub log_level: u32,
    /// Override of the program type (bpftool's `type TYPE`).
    pub prog_type: Option<u32>,
    /// The kernel whose verifier and rewrite to follow where builds differ.
    pub profile: KernelProfile,
    /// `BPF_PROG_LOAD`'s `prog_flags`, OR-ed with the section's own (libbpf's
    /// `bpf_program__set_flags`): `BPF_F_STRICT_ALIGNMENT` makes the verifier check every
    /// access's alignment, as on architectures without efficient unaligned access;
    /// `BPF_F_TEST_STATE_FREQ` makes it store a state at every prune point.
    pub prog_flags: u32,
    /// The kernel BTF CO-RE relocations resolve against when a whole object is loaded
    /// ([`crate::verify_each`]); `None`: the running kernel's.
    pub core_target: Option<std::sync::Arc<kbpf_object::Btf>>,
    /// The loader holds `CAP_PERFMON` (root does): it may read uninitialised stack
    /// (`allow_uninit_stack`) and leak pointers (`allow_ptr_leaks`). Without it the verifier
    /// refuses both, as the kernel does for a `CAP_BPF`-only loader.
    pub perfmon: bool,
    /// veristat's `fixup_obj` before a whole object is loaded ([`crate::verify_each`]): a
    /// map declared with `max_entries` 0 (a size its loader sets at run time) gets 1, except
    /// the local storages, whose `max_entries` must stay 0.
    pub veristat_fixups: bool,
}

/// `BPF_F_STRICT_ALIGNMENT`.
pub const BPF_F_STRICT_ALIGNMENT: u32 = 1 << 0;
/// `BPF_F_TEST_STATE_FREQ`.
pub const BPF_F_TEST_STATE_FREQ: u32 = 1 << 3;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            log_level: 1,
            prog_type: None,
            profile: KernelProfile::builtin(),
            prog_flags: 0,
            core_target: None,
            perfmon: true,
            veristat_fixups: false,
        }
    }
}

/// A verified, translated program.
pub struct Program {
    /// Name.
    pub name: String,
    /// ELF section.
    pub section: String,
    /// Program type.
    pub prog_type: ProgType,
    /// The instructions as loaded (map references as fds).
    pub insns: Vec<Insn>,
    /// The translated program.
    pub xlated: Xlated,
    /// The verifier's log of the successful load (statistics line at level 1).
    pub verifier_log: String,
    /// Verifier statistics.
    pub stats: Stats,
    /// The maps the program uses (referenced and bound), ascending by fd.
    pub maps: Vec<Map>,
    pub(crate) helpers: HelperRegistry,
    /// The context accesses the verifier recorded (for `max_ctx_offset`).
    pub(crate) ctx_accesses: Vec<kbpf_verifier::CtxAccess>,
    /// Stack bytes per subprogram, as the verifier found (the JIT zeroes only those).
    pub(crate) stack_depth: Vec<usize>,
    /// The JIT image, compiled on first use by a tail call into this program.
    pub(crate) jit: std::sync::OnceLock<Result<kbpf_jit::JitProgram, String>>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("prog_type", &self.prog_type)
            .field("xlated_len", &self.xlated.insns.len())
            .finish()
    }
}

impl Program {
    /// Verifies and translates `prog` against the maps of `env` (by fd).
    pub fn load(
        prog: &LoadedProgram,
        env: &MapsEnv,
        opts: &LoadOptions,
        funcs_btf: &[(Option<String>, String)],
    ) -> Result<Program, ProgLoadError> {
        crate::tail_call::set_target_runner(run_tail_target);
        let raw_type = opts.prog_type.unwrap_or(prog.prog_type);
        let prog_type = ProgType::from_u32(raw_type).ok_or_else(|| ProgLoadError::ProgType {
            name: prog.name.clone(),
            prog_type: raw_type,
        })?;
        let verdict = verify(
            &prog.insns,
            env,
            &Options::new(prog_type)
                .log_level(verifier_log_level(opts.log_level))
                .log_stats(opts.log_level & BPF_LOG_STATS != 0)
                .kernel(opts.profile.verifier)
                .strict_alignment((opts.prog_flags | prog.prog_flags) & BPF_F_STRICT_ALIGNMENT != 0)
                .test_state_freq((opts.prog_flags | prog.prog_flags) & BPF_F_TEST_STATE_FREQ != 0)
                // kbpf's CPU numbers are below the per-CPU maps' CPU count.
                .nr_cpu_ids(kbpf_maps::possible_cpus())
                // The rewrite inlines bpf_get_smp_processor_id when Kbpf has `cpu_number`.
                .percpu_insn(Kbpf.cpu_number().is_some())
                .global_funcs(prog.global_funcs.clone())
                .func_info(prog.btf_func_info)
                .non_scalar_return(prog.non_scalar_return.clone())
                .kfuncs(prog.kfuncs.clone())
                .gpl_compatible(prog.gpl_compatible)
                .kernel_structs(prog.kernel_structs.clone())
                .perfmon(opts.perfmon)
                .expected_attach_type(prog.expected_attach_type),
        );
        if let Err(error) = &verdict.result {
            return Err(ProgLoadError::Verifier {
                name: prog.name.clone(),
                error: Box::new(error.clone()),
                log: verdict.log.clone(),
                stats: Box::new(verdict.stats),
            });
        }
        let input = RewriteInput {
            insns: &prog.insns,
            verdict: &verdict,
            maps: env,
            prog_type,
            line_info: &prog.line_info,
            func_info: &prog.func_info,
            funcs_btf,
            kernel: &Kbpf,
            profile: &opts.profile,
        };
        let xlated = kbpf_rewrite::rewrite(&input).map_err(|error| ProgLoadError::Rewrite {
            name: prog.name.clone(),
            error,
            log: verdict.log.clone(),
            stats: verdict.stats,
        })?;
        let helpers = registry_for(call_imms(&xlated.insns));
        let ctx_accesses = verdict.aux.iter().filter_map(|a| a.ctx).collect();
        let maps: Vec<kbpf_maps::Map> = prog
            .used_map_fds()
            .iter()
            .filter_map(|fd| env.map(*fd as i32).cloned())
            .collect();
        // Every PROG_ARRAY the program uses takes its type as owner, or must already have it
        // (the kernel's bpf_check_tail_call, whether or not the program tail-calls).
        for m in &maps {
            if !m.prog_array_compatible(raw_type) {
                return Err(ProgLoadError::ProgArrayOwner {
                    name: prog.name.clone(),
                    map: m.name().to_string(),
                    owner: m.prog_array_owner().unwrap_or(0),
                    prog_type: raw_type,
                });
            }
        }
        let stack_depth = xlated.stack_depth.clone();
        Ok(Program {
            name: prog.name.clone(),
            section: prog.section.clone(),
            prog_type,
            insns: prog.insns.clone(),
            xlated,
            verifier_log: verdict.log,
            stats: verdict.stats,
            maps,
            helpers,
            ctx_accesses,
            stack_depth,
            jit: std::sync::OnceLock::new(),
        })
    }

    /// `bpftool prog dump xlated` text.
    pub fn dump_xlated(&self, opts: &DumpOptions) -> String {
        xlated::dump(&self.xlated, opts).unwrap_or_else(|e| format!("error: {e}\n"))
    }

    /// Compiles the translated program on the JIT, with the verifier's stack depths (so the
    /// prologue zeroes only the stack the program uses); a fresh image each call.
    pub fn compile_jit(&self) -> Result<kbpf_jit::JitProgram, kbpf_jit::JitError> {
        kbpf_jit::JitProgram::compile_translated_with_stack(
            &self.xlated.insns,
            &self.helpers,
            &self.stack_depth,
        )
    }

    /// The JIT image of this program (compiled once, then cached).
    pub fn jit(&self) -> Result<&kbpf_jit::JitProgram, String> {
        self.jit
            .get_or_init(|| self.compile_jit().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// `bpftool prog dump jited`: the machine code in AT&T syntax, each function under its
    /// prototype and kallsyms-style label, with the `; source` line of the BPF instruction
    /// the code comes from; `opcodes` adds the bytes of each instruction.
    pub fn dump_jited(&self, opcodes: bool) -> Result<String, String> {
        use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter};
        use std::fmt::Write as _;
        let jit = self.jit()?;
        let image = jit.image();
        let funcs: Vec<(usize, usize)> = jit.functions().collect();
        // Image offset → the line info that starts at the BPF instruction emitted there.
        let mut lines: std::collections::BTreeMap<usize, &str> = Default::default();
        for l in &self.xlated.line_info {
            if let Some(o) = jit.insn_offset(l.insn_idx) {
                lines.entry(o).or_insert(l.line.trim_start());
            }
        }
        let mut out = String::new();
        let mut fmt = GasFormatter::new();
        fmt.options_mut().set_first_operand_char_index(8);
        for (k, &(pc, start)) in funcs.iter().enumerate() {
            let end = funcs.get(k + 1).map_or(image.len(), |f| f.1);
            if let Some(fi) = self.xlated.func_info.iter().position(|f| f.insn_idx == pc)
                && let Some(Some(proto)) = self.xlated.func_protos.get(fi)
            {
                let _ = writeln!(out, "{proto}:");
            }
            if let Some(name) = self.xlated.subprog_names.get(k) {
                let _ = writeln!(out, "{name}:");
            }
            let code = &image[start..end];
            let mut dec = Decoder::with_ip(64, code, start as u64, DecoderOptions::NONE);
            let mut text = String::new();
            while dec.can_decode() {
                let insn = dec.decode();
                let at = insn.ip() as usize;
                if let Some(l) = lines.get(&at) {
                    let _ = writeln!(out, "; {l}");
                }
                text.clear();
                fmt.format(&insn, &mut text);
                let _ = writeln!(out, "{at:4x}:\t{text}");
                if opcodes {
                    let bytes = &image[at..at + insn.len()];
                    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    let _ = writeln!(out, "\t{}", hex.join(" "));
                }
            }
        }
        Ok(out)
    }

    /// The program tag (16 hex digits).
    pub fn tag(&self) -> String {
        self.xlated.tag_hex()
    }

    /// The helper wiring engines run this program with.
    pub fn helpers(&self) -> &HelperRegistry {
        &self.helpers
    }
}

/// Runs the program a `PROG_ARRAY` slot points at as the target of a tail call
/// ([`crate::tail_call`]), on the run's engine (a target the JIT cannot compile runs on the
/// interpreter: still the right program).
///
/// # Safety
/// `slot` is a [`prog_ref`] pointer kept alive by its slot, and `ctx` the context the
/// program was verified for, as in [`crate::Runner::run_ctx`].
unsafe fn run_tail_target(slot: usize, jit: bool, ctx: u64) -> Result<u64, kbpf_vm::RunError> {
    // SAFETY: forwarded contract: the slot keeps the `Program` alive.
    let target = unsafe { &*(slot as *const Program) };
    if jit && let Ok(j) = target.jit() {
        // SAFETY: forwarded contract.
        return unsafe { j.run(ctx, 0) };
    }
    let vm = kbpf_vm::Interpreter::new_translated(&target.xlated.insns, &target.helpers).map_err(
        |_| kbpf_vm::RunError::Unsupported {
            pc: 0,
            what: "tail-call target does not decode",
        },
    )?;
    vm.run([ctx, 0, 0, 0, 0], &[], kbpf_vm::Mode::Unchecked)
}

/// The `PROG_ARRAY` value for `program` (what `bpf_tail_call` reads from a slot): the
/// program's address, kept alive by the slot itself until the slot is cleared and no run
/// can still see it.
pub fn prog_ref(program: &std::sync::Arc<Program>, id: u32) -> kbpf_maps::ProgRef {
    kbpf_maps::ProgRef {
        id,
        prog_type: program.prog_type.as_u32(),
        ptr: std::sync::Arc::as_ptr(program) as usize,
        keep_alive: Some(program.clone()),
    }
}

/// The `imm` of every helper-style `call` of a translated program.
/// The verifier's log level for the kernel's `log_level` bits: level 2 where
/// `BPF_LOG_LEVEL2` is set, else 1 where any bit is (the kernel prints its messages at any
/// non-zero level; `BPF_LOG_STATS` alone keeps only the statistics of a success, as level 1).
fn verifier_log_level(bits: u32) -> u32 {
    if bits & BPF_LOG_LEVEL2 != 0 {
        2
    } else if bits & (BPF_LOG_LEVEL1 | BPF_LOG_STATS) != 0 {
        1
    } else {
        0
    }
}

fn call_imms(insns: &[Insn]) -> Vec<i32> {
    let mut v: Vec<i32> = insns
        .iter()
        .filter(|i| i.code == BPF_JMP | BPF_CALL && i.src() == 0)
        .map(|i| i.imm)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The BTF prototype and name of each `func_info` record of `prog` in `obj` (what bpftool
/// prints before a function's first instruction).
pub fn funcs_btf(obj: &BpfObject, prog: &LoadedProgram) -> Vec<(Option<String>, String)> {
    prog.func_info
        .iter()
        .map(|f| match &obj.btf {
            Some(btf) => (
                btf.func_prototype(f.type_id).ok(),
                btf.type_by_id(f.type_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            ),
            None => (None, String::new()),
        })
        .collect()
}

/// Every map of a loaded object as the verifier and rewrite see them, by fd.
pub fn maps_env(obj: &kbpf_loader::LoadedObject) -> MapsEnv {
    let mut env = MapsEnv::new();
    for m in &obj.maps {
        env.insert(m.fd as i32, m.map.clone());
    }
    env
}

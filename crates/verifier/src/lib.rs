//! kbpf-verifier: the Linux kernel's BPF verifier decisions in user space.
//!
//! Given a program, the maps it references ([`MapEnv`]) and a program type, [`verify`]
//! answers what the kernel's verifier would (Linux 6.18, privileged loader): accept or
//! reject, with the kernel's log text (level 1: the failing path and the message; level 2:
//! every instruction with register state), the `processed N insns` statistics line, and
//! per-instruction facts the rewrite needs ([`InsnAux`]): for each helper call, which map
//! reached it (or "poisoned" when several did), for each context access the field and size.
//! The verifier never changes instructions.
//!
//! Modules, each mirroring a part of `kernel/bpf/`:
//! - [`tnum`]: tristate numbers (`tnum.c`);
//! - [`bounds`]: scalar ranges, ALU transfer functions and branch refinement;
//! - [`types`]: register types, [`RegState`], [`MapDesc`] and log formatting;
//! - [`state`]: frames, stack slots and state comparison for pruning;
//! - [`ctx`]: program types and context field access;
//! - [`ctx::cgroup`]: the cgroup program types' contexts and every type's return-value range;
//! - `skb_ctx` (private): the whole `struct __sk_buff` (cgroup_skb, LWT, sk_skb and the
//!   fields past the older model of socket filters and TC), `sk_msg_md`, `sk_reuseport_md`;
//! - [`helpers`]: helper prototypes;
//! - `cfg` (private): the control-flow checks run before exploration (`check_cfg`);
//! - `check` (private): the exploration engine (`do_check`), with its parts in
//!   `check/stack_var.rs` (variable-offset stack accesses), `check/global.rs` (global
//!   functions), `check/sock.rs` (socket pointers and acquired references),
//!   `check/lock.rs` (`bpf_spin_lock` and the map value fields it guards),
//!   `check/may_goto.rs`, `check/callbacks.rs` (`bpf_loop`), `check/linked.rs` (linked
//!   scalars) and `check/ld_abs.rs` (legacy packet loads).
//!
//! - `liveness` (private): static register liveness (`compute_live_registers`), used by
//!   pruning as the kernel's `clean_live_states` does.
//!
//! State pruning follows `is_state_visited`: checkpoints at the kernel's prune points (jump
//! targets, conditional jumps, after calls) every 2 jumps and 8 insns (every 20 jumps or 100
//! insns while a state at that instruction is still being explored), explored states visited
//! newest first and evicted after `3 * hits + 3` misses, and a finished state forgets the
//! registers that are dead at its instruction before it is compared. On the bounded packet
//! loops of the corpus (`xdp_pkt_loop_*`) the `processed` line equals the kernel's.
//!
//! # Simplified against the kernel
//! - No precision tracking: state pruning compares every live register and every stack slot
//!   exactly (`regsafe`/`stacksafe` as if all scalars were precise, i.e. the kernel's
//!   `RANGE_WITHIN` everywhere). This is sound but prunes less than the kernel wherever an
//!   imprecise scalar differs (a counter never used in a bound, offset or branch decision),
//!   so such loops may run into the 1M-insn limit where the kernel converges; neither
//!   `mark_chain_precision`/`propagate_precision` nor `widen_imprecise_scalars` is
//!   implemented. Loops whose counter decides a branch or an access (the usual bounded
//!   loops) are precise in the kernel too and verify identically.
//! - No stack liveness (6.18's `bpf_stack_slot_alive`): dead stack slots are still compared,
//!   so a path whose only difference is a dead spill is not pruned (the kernel prunes it;
//!   e.g. `aom_inner_lookup_ok` processes one insn more than the kernel).
//! - Infinite loops are detected when a state still being explored repeats exactly.
//! - Kfuncs, callbacks other than `bpf_loop`'s, dynptrs, iterators, BTF pointers
//!   (`PTR_TO_BTF_ID`) and the tracing/LSM/struct_ops program types are not supported
//!   (rejected with a message). `may_goto` and `bpf_loop` loops converge only where the
//!   states repeat exactly (no precision, so no widening): a loop whose imprecise counter
//!   the kernel ignores runs into the 1M-insn limit here. References are tracked for sockets and ring buffer records
//!   only. Of BTF, global functions' prototypes ([`GlobalFunc`]) and map values' lock and
//!   timer fields ([`MapDesc::spin_lock_off`]) are used.
//! - Level-2 logs print instructions and touched registers as the kernel does, but not the
//!   kernel's liveness and precision-backtracking lines.
//! - Signed division/modulo and other untracked operations give unknown scalars, as in the
//!   kernel; constants are folded.
#![deny(missing_docs)]

pub mod bounds;
mod cfg;
mod check;
pub mod ctx;
pub mod helpers;
mod liveness;
pub mod state;
pub mod tnum;
pub mod types;

use std::time::Instant;

use kbpf_isa::Insn;
pub use kbpf_profile::{InnerMapLookup, VerifierBehaviour};

// The errnos a verdict carries, as the kernel's `bpf_check` returns them.
pub(crate) use kbpf_uapi::errno::{E2BIG, EACCES, EINVAL, ENOTSUPP};

pub use ctx::{CtxAccess, CtxField, ProgType};
pub use types::{MapDesc, MapEnv, MapRef, RegState, RegType};

/// The kernel's `BPF_COMPLEXITY_LIMIT_INSNS`.
pub const BPF_COMPLEXITY_LIMIT_INSNS: usize = 1_000_000;

/// How to verify.
#[derive(Clone, Debug)]
pub struct Options {
    /// Program type.
    pub prog_type: ProgType,
    /// Log level: 0 (no log), 1 (errors and the failing path), 2 (every instruction).
    pub log_level: u32,
    /// `BPF_LOG_STATS`: the `verification time` and `stack depth` lines before the
    /// statistics line.
    pub log_stats: bool,
    /// Instructions processed before giving up (`BPF_COMPLEXITY_LIMIT_INSNS`).
    pub complexity_limit: usize,
    /// Reading uninitialised stack is allowed (`env->allow_uninit_stack`, true for a
    /// privileged loader such as root, which is what kbpf models).
    pub allow_uninit_stack: bool,
    /// Whether to append a `hint:` line after the kernel's message on rejection.
    pub hints: bool,
    /// Pointers may be stored into the packet, the context's writable fields and memory by
    /// atomics (`env->allow_ptr_leaks`, true for a `CAP_PERFMON` loader such as root).
    pub allow_ptr_leaks: bool,
    /// `BPF_F_STRICT_ALIGNMENT` (`env->strict_alignment`): every access is checked for
    /// alignment, packet accesses as if `NET_IP_ALIGN` were 2.
    pub strict_alignment: bool,
    /// `nr_cpu_ids` of the machine the program runs on: `bpf_get_smp_processor_id` returns
    /// `[0, nr_cpu_ids - 1]` (do_refine_retval_range). `None`: an unknown scalar.
    pub nr_cpu_ids: Option<u32>,
    /// The kernel profile's verifier behaviour: which kernel build's decisions and messages
    /// to give where builds differ.
    pub kernel: VerifierBehaviour,
    /// The global functions other than the entry (from the BTF func_info:
    /// `BTF_FUNC_GLOBAL`), with their prototypes. The kernel verifies a global function
    /// once, on its own, for any arguments its prototype allows, and its callers only check
    /// their arguments against the prototype.
    pub global_funcs: Vec<GlobalFunc>,
    /// `expected_attach_type` of the program (`enum bpf_attach_type`): some program types'
    /// context fields and return ranges depend on it.
    pub expected_attach_type: u32,
    /// The kfuncs the program's calls name (`(btf_id, name)`, resolved by the loader against
    /// the kernel's BTF).
    pub kfuncs: Vec<(i32, String)>,
    /// The kernel BTF's STRUCT and UNION ids, ascending (`btf_type_is_struct`), which
    /// `bpf_rdonly_cast` may cast to; the loader fills it for programs calling that kfunc.
    pub kernel_structs: Vec<u32>,
    /// First instructions of the functions whose BTF prototype returns something other
    /// than an int or enum (`check_btf_func`'s `scalar_return`): a legacy packet load
    /// (`BPF_LD_[ABS|IND]`) may not be in them.
    pub non_scalar_return: Vec<usize>,
    /// The program has BTF function info (`prog->aux->func_info`): callbacks
    /// (`BPF_PSEUDO_FUNC`) need it to know their linkage.
    pub func_info: bool,
    /// The rewrite inlines `bpf_get_smp_processor_id` with a per-CPU move (the kernel's
    /// `jit_requested && bpf_jit_supports_percpu_insn()`), so its `bpf_fastcall` spills and
    /// fills go and the stack depth shrinks (`check/fastcall.rs`).
    pub percpu_insn: bool,
    /// `BPF_F_TEST_STATE_FREQ` (`env->test_state_freq`): a state is stored at every prune
    /// point, not only after 2 jumps and 8 instructions (the selftests use it to make pruning
    /// visible in the log).
    pub test_state_freq: bool,
    /// The program's license is GPL-compatible (`license_is_gpl_compatible`): only then may
    /// it call the `gpl_only` helpers. On by default (programs without an object); loads of
    /// an object set it from the object's `license` section.
    pub gpl_compatible: bool,
}

/// The kernel's `license_is_gpl_compatible`: the license strings that let a program call
/// GPL-only helpers (and that `bpftool prog show` marks `gpl`).
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

impl Options {
    /// Privileged verification of `prog_type` at log level 1 with hints.
    pub fn new(prog_type: ProgType) -> Options {
        Options {
            prog_type,
            log_level: 1,
            log_stats: false,
            complexity_limit: BPF_COMPLEXITY_LIMIT_INSNS,
            allow_uninit_stack: true,
            hints: true,
            allow_ptr_leaks: true,
            strict_alignment: false,
            nr_cpu_ids: None,
            kernel: VerifierBehaviour::BUILTIN,
            global_funcs: Vec::new(),
            expected_attach_type: 0,
            func_info: false,
            non_scalar_return: Vec::new(),
            kfuncs: Vec::new(),
            kernel_structs: Vec::new(),
            percpu_insn: false,
            test_state_freq: false,
            gpl_compatible: true,
        }
    }

    /// Sets [`Options::gpl_compatible`].
    pub fn gpl_compatible(mut self, gpl: bool) -> Options {
        self.gpl_compatible = gpl;
        self
    }

    /// Sets [`Options::test_state_freq`].
    pub fn test_state_freq(mut self, on: bool) -> Options {
        self.test_state_freq = on;
        self
    }

    /// Sets [`Options::percpu_insn`].
    pub fn percpu_insn(mut self, inlines: bool) -> Options {
        self.percpu_insn = inlines;
        self
    }

    /// Sets the CPU count `bpf_get_smp_processor_id`'s result is bounded by.
    pub fn nr_cpu_ids(mut self, n: u32) -> Options {
        self.nr_cpu_ids = Some(n);
        self
    }

    /// Sets `BPF_F_STRICT_ALIGNMENT`.
    pub fn strict_alignment(mut self, strict: bool) -> Options {
        self.strict_alignment = strict;
        self
    }

    /// Sets the kernel profile's verifier behaviour.
    pub fn kernel(mut self, kernel: VerifierBehaviour) -> Options {
        self.kernel = kernel;
        self
    }

    /// Sets the global functions (see [`Options::global_funcs`]).
    pub fn global_funcs(mut self, funcs: Vec<GlobalFunc>) -> Options {
        self.global_funcs = funcs;
        self
    }

    /// A loader with (`true`) or without `CAP_PERFMON`: sets [`Options::allow_uninit_stack`]
    /// and [`Options::allow_ptr_leaks`] (`bpf_allow_uninit_stack`, `bpf_allow_ptr_leaks`).
    pub fn perfmon(mut self, perfmon: bool) -> Options {
        self.allow_uninit_stack = perfmon;
        self.allow_ptr_leaks = perfmon;
        self
    }

    /// Sets [`Options::kernel_structs`] (ascending).
    pub fn kernel_structs(mut self, ids: Vec<u32>) -> Options {
        self.kernel_structs = ids;
        self
    }

    /// Sets [`Options::kfuncs`].
    pub fn kfuncs(mut self, kfuncs: Vec<(i32, String)>) -> Options {
        self.kfuncs = kfuncs;
        self
    }

    /// Sets [`Options::non_scalar_return`].
    pub fn non_scalar_return(mut self, starts: Vec<usize>) -> Options {
        self.non_scalar_return = starts;
        self
    }

    /// Says whether the program has BTF function info (see [`Options::func_info`]).
    pub fn func_info(mut self, present: bool) -> Options {
        self.func_info = present;
        self
    }

    /// Sets the expected attach type.
    pub fn expected_attach_type(mut self, attach: u32) -> Options {
        self.expected_attach_type = attach;
        self
    }

    /// Sets the log level.
    pub fn log_level(mut self, level: u32) -> Options {
        self.log_level = level;
        self
    }

    /// Asks for `BPF_LOG_STATS`'s lines.
    pub fn log_stats(mut self, stats: bool) -> Options {
        self.log_stats = stats;
        self
    }
}

/// A global function's argument as its BTF prototype declares it (`btf_prepare_func_args`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GlobalArg {
    /// An integer or enum (`ARG_ANYTHING`): any scalar.
    Scalar,
    /// The program's context (`ARG_PTR_TO_CTX`): a pointer to the context type, or
    /// `__arg_ctx`.
    Ctx,
    /// Memory of `size` bytes, the size of the pointed-to type (`ARG_PTR_TO_MEM`), NULL
    /// allowed unless `__arg_nonnull`.
    Mem {
        /// Bytes.
        size: u32,
        /// `PTR_MAYBE_NULL`.
        nullable: bool,
    },
}

/// A global (non-static) function of the program, other than its entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GlobalFunc {
    /// First instruction.
    pub start: usize,
    /// Name (from the BTF).
    pub name: String,
    /// The arguments; or why the prototype is unusable: the kernel's log line, or a
    /// message starting with `kbpf:` for what kbpf does not model (e.g. `__arg_trusted`).
    pub args: Result<Vec<GlobalArg>, String>,
}

/// Which map(s) reached an instruction (`insn_aux_data.map_ptr_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MapUse {
    /// No map (not a map instruction, or never reached).
    #[default]
    None,
    /// Exactly one map (or inner-map meta) on every path.
    Map(MapRef),
    /// Different maps on different paths (`BPF_MAP_PTR_POISON`): no per-map rewrite.
    Poisoned,
}

/// Per-instruction facts (the kernel's `struct bpf_insn_aux_data`, the part kbpf's rewrite
/// uses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsnAux {
    /// Reached on some path (`aux->seen`).
    pub seen: bool,
    /// For `ld_imm64` of a map: the map. For helper calls taking a map: the map(s) passed.
    pub map: MapUse,
    /// For helper calls: the helper id.
    pub helper: Option<i32>,
    /// For loads/stores through the context pointer: the field, offset and size.
    pub ctx: Option<CtxAccess>,
    /// For loads/stores: the base pointer type (`aux->ptr_type`).
    pub ptr_type: Option<RegType>,
    /// For kfunc calls: the kfunc (kbpf's name for it), for the rewrite.
    pub kfunc: Option<&'static str>,
    /// For `bpf_loop` calls: whether the rewrite may inline it, and the callback
    /// (`loop_inline_state`).
    pub loop_inline: Option<LoopInline>,
    /// For an inlined `bpf_fastcall` call: how many spill/fill pairs around it the rewrite
    /// removes (`fastcall_spills_num`, `check/fastcall.rs`).
    pub fastcall_spills: u8,
}

/// `struct bpf_loop_inline_state`: a `bpf_loop` call site is fit for inlining when on every
/// path its flags were the constant 0 and its callback the same subprogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopInline {
    /// `fit_for_inline`.
    pub fit_for_inline: bool,
    /// The callback's subprogram number (`callback_subprogno`): index into the program's
    /// sorted function starts (the entry, call targets and `BPF_PSEUDO_FUNC` targets).
    pub callback_subprog: usize,
}

impl LoopInline {
    /// `stack_depth_extra` of `optimize_bpf_loop`: a function of `depth` bytes that inlines a
    /// `bpf_loop` call saves r6-r8 below its stack, rounded up to 8 bytes first.
    pub fn stack_extra(depth: usize) -> usize {
        3 * 8 + (depth.div_ceil(8) * 8 - depth)
    }
}

/// The statistics of the `processed ...` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed, over all paths (`insn_processed`).
    pub insn_processed: usize,
    /// Most states stored at one instruction.
    pub max_states_per_insn: usize,
    /// States stored.
    pub total_states: usize,
    /// Most states stored at once.
    pub peak_states: usize,
}

/// Why a program was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VerifierError {
    /// The kernel's message (last line of the log before the statistics).
    pub message: String,
    /// Instruction at which verification failed, if any.
    pub insn: Option<usize>,
    /// A hint for the C programmer.
    pub hint: Option<String>,
    /// The errno the kernel returns (`EACCES` 13 or `EINVAL` 22 mostly).
    pub errno: i32,
}

/// The outcome of [`verify`].
#[derive(Clone, Debug)]
pub struct Verdict {
    /// `Ok` if accepted.
    pub result: Result<(), VerifierError>,
    /// The log text (empty at level 0).
    pub log: String,
    /// Statistics.
    pub stats: Stats,
    /// Per-instruction facts, indexed like the program (second `ld_imm64` slots are empty).
    pub aux: Vec<InsnAux>,
    /// Maps referenced by the program, in first-use order: each with what it is
    /// (`Fd` or the inner meta of an outer `Fd`) and its description.
    pub maps: Vec<(MapRef, MapDesc)>,
    /// Bytes of stack each subprogram uses (`subprog_info[i].stack_depth`), entry first;
    /// empty for a program rejected before exploration.
    pub stack_depth: Vec<usize>,
    /// `env->seen_direct_write`: the program writes packet data directly.
    pub seen_direct_write: bool,
}

impl Verdict {
    /// Whether the program was accepted.
    pub fn accepted(&self) -> bool {
        self.result.is_ok()
    }

    /// The description of a map a [`MapRef`] names.
    pub fn map(&self, r: MapRef) -> Option<&MapDesc> {
        self.maps.iter().find(|(m, _)| *m == r).map(|(_, d)| d)
    }
}

/// Verifies `insns` against the maps of `env` as the kernel would for a privileged loader.
pub fn verify(insns: &[Insn], env: &dyn MapEnv, opts: &Options) -> Verdict {
    let start = Instant::now();
    let mut log = String::new();
    let cfg = match cfg::check_cfg(insns) {
        Ok(c) => c,
        Err(e) => {
            if opts.log_level >= 1 {
                log.push_str(&e.message);
                log.push('\n');
                if opts.hints
                    && let Some(h) = &e.hint
                {
                    log.push_str(&format!("hint: {h}\n"));
                }
                log.push_str(&verification_stats(opts, &Stats::default(), &[], start));
            }
            return Verdict {
                result: Err(e),
                log,
                stats: Stats::default(),
                aux: vec![InsnAux::default(); insns.len()],
                maps: Vec::new(),
                stack_depth: Vec::new(),
                seen_direct_write: false,
            };
        }
    };
    if opts.log_level >= 2 {
        for (i, s) in cfg.subprogs.iter().enumerate() {
            log.push_str(&format!("func#{i} @{s}\n"));
        }
    }
    let has_may_goto = cfg
        .decoded
        .iter()
        .any(|d| matches!(d, Some(kbpf_isa::decode::Instruction::MayGoto { .. })));
    let retry = has_may_goto.then(|| {
        (
            cfg.decoded.clone(),
            cfg.subprogs.clone(),
            cfg.prune_points.clone(),
            log.clone(),
        )
    });
    let mut ck = check::Checker::new(
        insns,
        cfg.decoded,
        cfg.subprogs,
        cfg.prune_points,
        env,
        opts,
        opts.prog_type,
        log,
    );
    let mut res = ck.run().and_then(|()| ck.run_globals());
    // A `may_goto` loop that did not converge: verify again with its scalars widened
    // (`check/widen.rs`); keep that attempt only if it succeeds.
    if let (Err(r), Some((decoded, subprogs, prune_points, log))) = (&res, retry)
        && (r.msg.starts_with("BPF program is too large") || r.msg.starts_with("The sequence of"))
    {
        let mut wide = check::Checker::new(
            insns,
            decoded,
            subprogs,
            prune_points,
            env,
            opts,
            opts.prog_type,
            log,
        );
        wide.widen = true;
        if wide.run().and_then(|()| wide.run_globals()).is_ok() {
            ck = wide;
            res = Ok(());
        }
    }
    // After exploration and the global functions, as `bpf_check` orders them.
    // remove_fastcall_spills_fills may shrink a function's depth before the walk adds them up.
    let res = res.and_then(|()| {
        ck.remove_fastcall_spills_fills();
        ck.check_max_stack_depth()
    });
    let result = match res {
        Ok(()) => Ok(()),
        Err(r) => {
            let complexity = r.msg.starts_with("BPF program is too large");
            let insn = Some(ck.cur_insn);
            if opts.log_level >= 1 {
                ck.log.push_str(&r.msg);
                ck.log.push('\n');
                if opts.hints
                    && let Some(h) = r.hint
                {
                    ck.log.push_str(&format!("hint: {h}\n"));
                }
            }
            Err(VerifierError {
                message: r.msg,
                insn,
                hint: r.hint.map(str::to_owned),
                errno: r.errno.unwrap_or(if complexity { E2BIG } else { EACCES }),
            })
        }
    };
    // The kernel prints the depths after its rewrite, with the inlined loops' slots.
    let reported_depth = ck.stack_depth_after_loop_inlining();
    let mut log = std::mem::take(&mut ck.log);
    if opts.log_level >= 1 {
        if opts.log_level == 1 && result.is_ok() {
            // As the kernel at level 1, a successful verification logs only the statistics.
            log.clear();
        }
        log.push_str(&verification_stats(opts, &ck.stats, &reported_depth, start));
    }
    Verdict {
        result,
        log,
        stats: ck.stats,
        aux: ck.aux,
        maps: ck.maps.into_iter().map(|m| (m.r, m.desc)).collect(),
        stack_depth: ck.subprog_stack,
        seen_direct_write: ck.seen_direct_write,
    }
}

/// `print_verification_stats`: under `BPF_LOG_STATS` the verification time and each
/// subprogram's stack depth (`8+0`), then the statistics line.
fn verification_stats(opts: &Options, s: &Stats, stack_depth: &[usize], start: Instant) -> String {
    let mut out = String::new();
    if opts.log_stats {
        let depths: Vec<String> = if stack_depth.is_empty() {
            vec!["0".into()]
        } else {
            stack_depth.iter().map(usize::to_string).collect()
        };
        out.push_str(&format!(
            "verification time {} usec\nstack depth {}\n",
            start.elapsed().as_micros(),
            depths.join("+")
        ));
    }
    out.push_str(&stats_line(s));
    out
}

/// The kernel's statistics line.
pub fn stats_line(s: &Stats) -> String {
    format!(
        "processed {} insns (limit {}) max_states_per_insn {} total_states {} peak_states {} mark_read 0\n",
        s.insn_processed,
        BPF_COMPLEXITY_LIMIT_INSNS,
        s.max_states_per_insn,
        s.total_states,
        s.peak_states
    )
}

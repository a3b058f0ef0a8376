//! The exploration engine (`do_check` and the `check_*` functions of `kernel/bpf/verifier.c`):
//! walks every path of the program depth-first with a stack of pending branches, checks each
//! instruction against the abstract state, prunes paths whose state is covered by an already
//! verified one, and records per-instruction facts for the rewrite.
//!
//! This file holds the engine (state, the exploration loop, pruning, exits and calls); each
//! instruction class is checked in its own child module: `alu`, `ld_imm64`, `mem` (loads,
//! stores, atomics, the stack), `jumps`, `helper_call`, and the features beside them
//! (`callbacks`, `fastcall`, `global`, `kfunc`, `ld_abs`, `may_goto`, `stack_depth`, …).

use std::collections::HashMap;

use kbpf_isa::Insn;
use kbpf_isa::decode::{
    AluOp, AtomicOp, CallTarget, Endian, Imm64Source, Instruction, JmpCond, Size, Source, Width,
};
use kbpf_isa::disasm::{Disasm, Imm64Style, helper_name};
use kbpf_isa::insn::{MAX_BPF_STACK, MAX_CALL_FRAMES};

use crate::bounds::{self, Scalar, Taken};
use crate::ctx::{CtxAccess, ProgType, check_ctx_access_for};
use crate::helpers::{self, ArgType, RetType, func_proto};
use crate::state::{BPF_REG_SIZE, FuncState, SlotType, StackSlot, VerifierState, states_equal};
use crate::types::*;
use crate::{InnerMapLookup, InsnAux, MapUse, Options, Stats};

mod alu;
mod callbacks;
mod fastcall;
mod global;
mod helper_call;
mod jumps;
mod kfunc;
mod ld_abs;
mod ld_imm64;
mod linked;
mod lock;
mod map_ptr;
mod may_goto;
mod mem;
mod sock;
mod stack_depth;
mod stack_var;
mod state_log;
mod widen;

/// `MAX_PACKET_OFF`.
const MAX_PACKET_OFF: u64 = 0xffff;
/// `BPF_MAX_VAR_OFF`.
const BPF_MAX_VAR_OFF: u64 = 1 << 29;

/// A rejection: the message (kernel text) and the hint for the C programmer.
#[derive(Debug)]
pub(crate) struct Reject {
    pub msg: String,
    pub hint: Option<&'static str>,
    /// The kernel's errno where it is not the verifier's usual `EACCES` (or `E2BIG` for the
    /// complexity limit).
    pub errno: Option<i32>,
}

type R<T> = Result<T, Reject>;

fn rej<T>(msg: impl Into<String>) -> R<T> {
    Err(Reject {
        msg: msg.into(),
        hint: None,
        errno: None,
    })
}

/// A rejection with its own errno (`EINVAL` of the checks before exploration, `E2BIG`).
fn rej_errno<T>(msg: impl Into<String>, errno: i32) -> R<T> {
    Err(Reject {
        msg: msg.into(),
        hint: None,
        errno: Some(errno),
    })
}

fn rej_hint<T>(msg: impl Into<String>, hint: &'static str) -> R<T> {
    Err(Reject {
        msg: msg.into(),
        hint: Some(hint),
        errno: None,
    })
}

/// One entry of the verifier's map table: a map from `ld_imm64`, or an inner-map meta.
pub(crate) struct MapSlot {
    pub desc: MapDesc,
    pub r: MapRef,
    /// Index of the inner meta's slot, for map-of-maps.
    pub inner: Option<u32>,
}

struct Explored {
    state: VerifierState,
    /// Dead registers already forgotten (`cleaned`, `clean_verifier_state`).
    cleaned: bool,
    /// Prunes this state gave (`hit_cnt`).
    hit_cnt: u32,
    /// Comparisons it failed (`miss_cnt`).
    miss_cnt: u32,
    /// Removed from its instruction's list.
    evicted: bool,
    /// Evicted while still being explored, counted in `free_list_size` (`in_free_list`).
    in_free_list: bool,
    /// Paths still being explored below this checkpoint (`branches`).
    branches: u32,
    parent: Option<usize>,
}

struct Pending {
    state: VerifierState,
    parent: Option<usize>,
    idx: usize,
    prev: usize,
    log_pos: usize,
}

/// What an instruction does to control flow.
enum Flow {
    Next,
    Goto(usize),
    Exit,
}

pub(crate) use callbacks::calls_callback;
use helper_call::*;
use mem::*;

pub(crate) struct Checker<'a> {
    insns: &'a [Insn],
    decoded: Vec<Option<Instruction>>,
    env: &'a dyn MapEnv,
    opts: &'a Options,
    prog: ProgType,
    pub maps: Vec<MapSlot>,
    pub aux: Vec<InsnAux>,
    pub log: String,
    pub stats: Stats,
    /// First instruction of each subprogram (sorted; [0] == 0).
    subprogs: Vec<usize>,
    pub(crate) subprog_stack: Vec<usize>,
    /// Functions exploration called as callbacks (`subprog_info[i].is_cb`, set by
    /// `push_callback_call`).
    pub(crate) callback_subprogs: Vec<bool>,
    /// `env->seen_direct_write`: a direct packet write was verified (the tc prologue that
    /// unclones the skb depends on it).
    pub(crate) seen_direct_write: bool,
    prune_point: Vec<bool>,
    /// `live_regs_before` of each instruction (static liveness).
    live_regs: Vec<u16>,
    /// The own frame's stack slots each instruction may still read (static liveness).
    live_stack: Vec<u64>,
    explored: HashMap<usize, Vec<usize>>,
    /// States in the explored lists (`explored_states_size`).
    explored_size: usize,
    /// Evicted states still being explored (`free_list_size`).
    free_list_size: usize,
    arena: Vec<Explored>,
    id_gen: u32,
    cur_parent: Option<usize>,
    /// Widen differing scalars at `may_goto` (the second attempt, `check/widen.rs`).
    pub(crate) widen: bool,
    jmps_processed: usize,
    /// The instruction being checked (for the error's location).
    pub cur_insn: usize,
    prev_jmps_processed: usize,
    prev_insn_processed: usize,
    /// Registers (bit r) and stack slots touched by the current instruction, for the
    /// level-2 state print.
    scratched_regs: u32,
    scratched_stack: u64,
    line_start: usize,
    insn_line_end: Option<usize>,
    /// The global function being verified on its own (`None`: the main program).
    in_global: Option<usize>,
    /// Global functions reached by a call (`subprog_aux->called`) and those verified.
    globals_called: std::collections::BTreeSet<usize>,
    globals_verified: std::collections::BTreeSet<usize>,
    fastcall: fastcall::Fastcall,
}

fn alu_str(op: AluOp) -> &'static str {
    match op {
        AluOp::MovPercpu => "= this_cpu_ptr",
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div | AluOp::Sdiv => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Neg => "neg",
        AluOp::Mod | AluOp::Smod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::Movsx(_) => "=",
        AluOp::Arsh => "s>>=",
    }
}

fn helper_str(id: i32) -> &'static str {
    helper_name(id).unwrap_or("unknown")
}

impl<'a> Checker<'a> {
    // The engine is built once from the CFG pass's outputs; a struct for them would only
    // be unpacked again here.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        insns: &'a [Insn],
        decoded: Vec<Option<Instruction>>,
        subprogs: Vec<usize>,
        prune_point: Vec<bool>,
        env: &'a dyn MapEnv,
        opts: &'a Options,
        prog: ProgType,
        log: String,
    ) -> Self {
        let n = insns.len();
        let nsub = subprogs.len();
        let is_insn: Vec<bool> = decoded.iter().map(Option::is_some).collect();
        let live_regs = crate::liveness::live_registers(insns, &is_insn, prog);
        let live_stack = crate::liveness::live_stack_slots(insns, &is_insn, &subprogs);
        Checker {
            insns,
            decoded,
            env,
            opts,
            prog,
            maps: Vec::new(),
            aux: vec![InsnAux::default(); n],
            log,
            stats: Stats::default(),
            subprogs,
            subprog_stack: vec![0; nsub],
            callback_subprogs: vec![false; nsub],
            seen_direct_write: false,
            prune_point,
            live_regs,
            live_stack,
            explored: HashMap::new(),
            explored_size: 0,
            free_list_size: 0,
            arena: Vec::new(),
            id_gen: 0,
            cur_parent: None,
            widen: false,
            jmps_processed: 0,
            cur_insn: 0,
            prev_jmps_processed: 0,
            prev_insn_processed: 0,
            scratched_regs: 0,
            scratched_stack: 0,
            line_start: 0,
            insn_line_end: None,
            in_global: None,
            globals_called: Default::default(),
            globals_verified: Default::default(),
            fastcall: Default::default(),
        }
    }

    fn level(&self) -> u32 {
        self.opts.log_level
    }

    /// Appends a line to the log (level ≥ 1).
    pub fn verbose(&mut self, s: &str) {
        if self.level() >= 1 {
            self.log.push_str(s);
        }
    }

    fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    /// The instructions of subprogram `s`: from its start to the next one's (or the end).
    fn subprog_range(&self, s: usize) -> std::ops::Range<usize> {
        self.subprogs[s]
            ..self
                .subprogs
                .get(s + 1)
                .copied()
                .unwrap_or(self.insns.len())
    }

    fn subprog_of(&self, idx: usize) -> usize {
        match self.subprogs.binary_search(&idx) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    fn initial_state(&self) -> VerifierState {
        let mut f = FuncState::new(0, 0, 0);
        f.regs[1] = RegState::pointer(RegType::PtrToCtx);
        VerifierState {
            frames: vec![f],
            refs: Vec::new(),
            lock: None,
            may_goto_depth: 0,
            callback_unroll_depth: 0,
        }
    }

    /// `do_check` of the main program.
    pub fn run(&mut self) -> R<()> {
        // check_btf_func_early, before the maps are resolved.
        self.check_abnormal_return()?;
        // resolve_pseudo_ldimm64's check_map_prog_compatibility: every map the program
        // references, reachable or not.
        for ins in self.decoded.iter().flatten() {
            if let Instruction::LdImm64 {
                src: Imm64Source::MapFd | Imm64Source::MapValue,
                imm,
                ..
            } = *ins
                && let Some(desc) = self.env.map_by_fd(imm)
            {
                lock::check_map_prog_compatibility(self.prog, desc)?;
            }
        }
        self.check_ld_abs_return_types()?;
        self.mark_fastcall_patterns();
        let st = self.initial_state();
        self.run_from(0, st)
    }

    /// `do_check` from instruction `start` in state `st`.
    fn run_from(&mut self, start: usize, mut st: VerifierState) -> R<()> {
        let mut idx = start;
        let mut prev = start;
        let first_processed = self.stats.insn_processed + 1;
        let mut pending: Vec<Pending> = Vec::new();
        let mut print_full = true;
        let dis = Disasm::new().imm64_style(Imm64Style::Kernel {
            allow_ptr_leaks: true,
        });
        loop {
            self.stats.insn_processed += 1;
            if self.stats.insn_processed > self.opts.complexity_limit {
                return rej(format!(
                    "BPF program is too large. Processed {} insn",
                    self.stats.insn_processed
                ));
            }
            if idx >= self.insns.len() {
                return rej(format!(
                    "invalid insn idx {idx} insn_cnt {}",
                    self.insns.len()
                ));
            }
            self.cur_insn = idx;
            let mut pruned = false;
            if self.prune_point[idx] {
                pruned = self.is_state_visited(&st, idx)?;
            }
            if pruned {
                if self.level() >= 2 {
                    if print_full {
                        self.log
                            .push_str(&format!("\nfrom {prev} to {idx}: safe\n"));
                    } else {
                        self.log.push_str(&format!("{idx}: safe\n"));
                    }
                }
            } else {
                if self.level() >= 2 && print_full {
                    self.scratched_regs = u32::MAX;
                    self.scratched_stack = u64::MAX;
                    let t = self.state_text(&st, true);
                    if idx == start && prev == start && self.stats.insn_processed == first_processed
                    {
                        self.log.push_str(&format!("{idx}:{t}\n"));
                    } else {
                        self.log.push_str(&format!("\nfrom {prev} to {idx}:{t}\n"));
                    }
                } else if self.level() == 1
                    && print_full
                    && self.stats.insn_processed > first_processed
                {
                    let t = self.state_text(&st, true);
                    self.log.push_str(&format!("\nfrom {prev} to {idx}:{t}\n"));
                }
                print_full = false;
                self.aux[idx].seen = true;
                if self.level() >= 1 {
                    self.line_start = self.log.len();
                    let text = dis
                        .insn_text(self.insns, idx)
                        .unwrap_or_else(|e| e.to_string());
                    self.log.push_str(&format!("{idx}: {text}\n"));
                    self.insn_line_end = Some(self.log.len());
                }
                self.scratched_regs = 0;
                self.scratched_stack = 0;
                let ins = match self.decoded[idx] {
                    Some(i) => i,
                    None => return rej(format!("invalid insn at {idx}")),
                };
                if matches!(
                    ins,
                    Instruction::Ja { .. }
                        | Instruction::Jmp { .. }
                        | Instruction::MayGoto { .. }
                        | Instruction::Call(_)
                        | Instruction::Exit
                ) {
                    // `env->jmps_processed++` for every BPF_JMP/BPF_JMP32 instruction.
                    self.jmps_processed += 1;
                }
                let flow = self.do_insn(&mut st, idx, ins, &mut pending)?;
                let next = match flow {
                    Flow::Next => Some(idx + ins.slots()),
                    Flow::Goto(t) => Some(t),
                    Flow::Exit => None,
                };
                if let Some(n) = next {
                    self.print_insn_state(&st, n);
                    prev = idx;
                    idx = n;
                    continue;
                }
            }
            // The path ended (exit from the main program, or pruned): account and pop.
            self.update_branch_counts(self.cur_parent);
            match pending.pop() {
                None => return Ok(()),
                Some(p) => {
                    if self.level() == 1 {
                        self.log.truncate(p.log_pos);
                    }
                    st = p.state;
                    self.cur_parent = p.parent;
                    idx = p.idx;
                    prev = p.prev;
                    print_full = true;
                }
            }
        }
    }

    fn update_branch_counts(&mut self, mut at: Option<usize>) {
        while let Some(i) = at {
            let e = &mut self.arena[i];
            e.branches = e.branches.saturating_sub(1);
            if e.branches > 0 {
                break;
            }
            if e.in_free_list {
                e.in_free_list = false;
                self.free_list_size -= 1;
            }
            at = e.parent;
        }
    }

    /// `push_stack`: queue the other side of a branch.
    fn push_branch(
        &mut self,
        pending: &mut Vec<Pending>,
        state: VerifierState,
        idx: usize,
        prev: usize,
    ) -> R<()> {
        if let Some(p) = self.cur_parent {
            self.arena[p].branches += 1;
        }
        pending.push(Pending {
            state,
            parent: self.cur_parent,
            idx,
            prev,
            log_pos: self.log.len(),
        });
        if pending.len() > 8192 {
            return rej(format!(
                "The sequence of {} jumps is too complex.",
                pending.len()
            ));
        }
        Ok(())
    }

    /// `is_state_visited`: prune if a finished state here covers `st`, detect exact loops,
    /// otherwise remember `st` as a new checkpoint. The kernel's heuristics are mirrored: a
    /// checkpoint only every 2 jumps and 8 instructions, and only every 20 jumps or 100
    /// instructions while a state here is still being explored (a loop); explored states are
    /// visited newest first, and one that misses more than `3 * hits + 3` times (counted only
    /// when a new state is going to be added) is evicted.
    fn is_state_visited(&mut self, st: &VerifierState, idx: usize) -> R<bool> {
        // `mark_force_checkpoint`: a `may_goto` and a callback-calling helper call always get
        // one, so that the next iteration of their loop finds it (`check/may_goto.rs`,
        // `check/callbacks.rs`); `BPF_F_TEST_STATE_FREQ` forces one everywhere.
        let force_new_state = self.opts.test_state_freq
            || self.is_may_goto_insn_at(idx)
            || self.calls_callback_at(idx);
        let mut add_new_state = force_new_state
            || (self.jmps_processed - self.prev_jmps_processed >= 2
                && self.stats.insn_processed - self.prev_insn_processed >= 8);
        let list = self.explored.get(&idx).cloned().unwrap_or_default();
        let mut states_cnt = 0;
        let mut evicted: Vec<usize> = Vec::new();
        let mut hit = false;
        for &e in list.iter().rev() {
            states_cnt += 1;
            if self.arena[e].branches > 0 {
                if self.may_goto_converged(&self.arena[e].state, st, idx) {
                    self.arena[e].hit_cnt += 1;
                    hit = true;
                    break;
                }
                let callback_call = self.calls_callback_at(idx);
                if callback_call && self.callback_converged(&self.arena[e].state, st) {
                    self.arena[e].hit_cnt += 1;
                    hit = true;
                    break;
                }
                if !callback_call && crate::state::states_identical(&self.arena[e].state, st) {
                    return rej_hint(
                        format!("infinite loop detected at insn {idx}"),
                        "the loop reaches the same state again; make sure its counter changes and is compared against a bound",
                    );
                }
                // Processing a loop: different iterations have distinct states, do not
                // store one too often.
                if !force_new_state
                    && self.jmps_processed - self.prev_jmps_processed < 20
                    && self.stats.insn_processed - self.prev_insn_processed < 100
                {
                    add_new_state = false;
                }
            } else {
                self.clean_live_state(e, idx);
                if states_equal(&self.arena[e].state, st, self.opts.allow_uninit_stack) {
                    self.arena[e].hit_cnt += 1;
                    hit = true;
                    break;
                }
            }
            // miss
            let ex = &mut self.arena[e];
            if add_new_state {
                ex.miss_cnt += 1;
            }
            if ex.miss_cnt > ex.hit_cnt * 3 + 3 {
                // The state is unlikely to be useful: drop it. One still being explored
                // stays counted (the kernel's free list) until its paths finish.
                evicted.push(e);
                ex.evicted = true;
                self.explored_size -= 1;
                if ex.branches > 0 {
                    ex.in_free_list = true;
                    self.free_list_size += 1;
                }
            }
        }
        if !evicted.is_empty()
            && let Some(l) = self.explored.get_mut(&idx)
        {
            l.retain(|e| !evicted.contains(e));
        }
        if hit {
            return Ok(true);
        }
        self.stats.max_states_per_insn = self.stats.max_states_per_insn.max(states_cnt);
        if !add_new_state {
            return Ok(false);
        }
        self.prev_jmps_processed = self.jmps_processed;
        self.prev_insn_processed = self.stats.insn_processed;
        let id = self.arena.len();
        let mut state = st.clone();
        crate::state::clear_singular_scalar_ids(&mut state);
        self.arena.push(Explored {
            state,
            cleaned: false,
            hit_cnt: 0,
            miss_cnt: 0,
            evicted: false,
            in_free_list: false,
            branches: 1,
            parent: self.cur_parent,
        });
        self.cur_parent = Some(id);
        self.explored.entry(idx).or_default().push(id);
        self.stats.total_states += 1;
        self.explored_size += 1;
        self.stats.peak_states = self
            .stats
            .peak_states
            .max(self.explored_size + self.free_list_size);
        Ok(false)
    }

    /// `clean_live_states` for one explored state at `idx`: once its exploration finished,
    /// forget the registers no path from here reads (static liveness at `idx` for the
    /// innermost frame, at the call instruction for the callers), so that they match anything
    /// in `regsafe`. The kernel postpones this for states in a loop with recorded backedges
    /// (`may_goto` and callback loops here), because its read marks may be incomplete there;
    /// kbpf's liveness is static, path-insensitive and so complete in loops too.
    fn clean_live_state(&mut self, e: usize, idx: usize) {
        let ex = &mut self.arena[e];
        if ex.branches != 0 || ex.cleaned {
            return;
        }
        ex.cleaned = true;
        let nf = ex.state.frames.len();
        for i in 0..nf {
            let ip = if i + 1 == nf {
                idx
            } else {
                ex.state.frames[i + 1].callsite
            };
            let live = self.live_regs[ip];
            for r in 0..10 {
                if live & (1 << r) == 0 {
                    ex.state.frames[i].regs[r] = RegState::NOT_INIT;
                }
            }
            // And the stack slots nothing reads again (`INVALID` covers anything in
            // `stacksafe`).
            let live = self.live_stack[ip];
            for (slot, st) in ex.state.frames[i].stack.iter_mut().enumerate() {
                if slot < 64 && live & (1 << slot) == 0 {
                    *st = crate::state::StackSlot::INVALID;
                }
            }
        }
    }

    // ---------------------------------------------------------------- registers

    /// `check_reg_arg(SRC_OP)`.
    fn read_reg(&mut self, st: &VerifierState, r: u8) -> R<RegState> {
        self.scratched_regs |= 1 << r;
        let reg = st.cur().regs[r as usize];
        if reg.ty == RegType::NotInit {
            return rej_hint(
                format!("R{r} !read_ok"),
                "the register is read before it is written; on this path it holds no value (after a call, r1-r5 are clobbered)",
            );
        }
        Ok(reg)
    }

    /// `check_reg_arg(DST_OP)`: the register may be written.
    fn check_dst(&mut self, r: u8) -> R<()> {
        self.scratched_regs |= 1 << r;
        if r == 10 {
            return rej_hint(
                "frame pointer is read only",
                "r10 is the frame pointer; copy it to another register before adjusting it",
            );
        }
        Ok(())
    }

    fn set_reg(&mut self, st: &mut VerifierState, r: u8, v: RegState) {
        st.cur_mut().regs[r as usize] = v;
    }

    // ---------------------------------------------------------------- instructions

    fn do_insn(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        ins: Instruction,
        pending: &mut Vec<Pending>,
    ) -> R<Flow> {
        match ins {
            Instruction::Alu {
                width,
                op,
                dst,
                src,
            } => {
                self.check_alu(st, width, op, dst, src)?;
                Ok(Flow::Next)
            }
            Instruction::Endian { kind, bits, dst } => {
                let mut r = self.read_reg(st, dst)?;
                self.check_dst(dst)?;
                if r.ty != RegType::Scalar {
                    r = RegState::unknown();
                } else {
                    let swap = match kind {
                        Endian::Le => false,
                        Endian::Be | Endian::Bswap => true,
                    };
                    r.s.endian(swap, bits);
                    r.id = 0;
                }
                self.set_reg(st, dst, r);
                Ok(Flow::Next)
            }
            Instruction::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                let base = self.read_reg(st, src)?;
                self.check_dst(dst)?;
                let v = self
                    .check_mem_access(st, idx, src, base, off as i32, size, false, None, signed)?;
                let mut v = v.unwrap_or_else(RegState::unknown);
                if v.ty == RegType::Scalar && size.bytes() < 8 {
                    if signed {
                        v.s.sign_extend_64(size.bytes() as u8);
                        v.id = 0;
                    } else {
                        v.s.coerce_to_size(size.bytes() as u8);
                    }
                }
                self.set_reg(st, dst, v);
                Ok(Flow::Next)
            }
            Instruction::Store {
                size,
                dst,
                off,
                src,
            } => {
                let mut val = match src {
                    Source::Reg(r) => Some(self.read_reg(st, r)?),
                    Source::Imm(_) => None,
                };
                if let (Source::Reg(r), Some(v)) = (src, val.as_mut()) {
                    self.link_spilled_scalar(st, r, v, dst, off, size)?;
                }
                let imm = match src {
                    Source::Imm(i) => Some(i),
                    _ => None,
                };
                let base = self.read_reg(st, dst)?;
                let value = val.or_else(|| imm.map(|i| RegState::known(i as i64 as u64)));
                self.check_mem_access(
                    st,
                    idx,
                    dst,
                    base,
                    off as i32,
                    size,
                    true,
                    value.map(|v| (v, val.is_some())),
                    false,
                )?;
                Ok(Flow::Next)
            }
            Instruction::Atomic {
                size,
                op,
                dst,
                src,
                off,
            } => {
                self.check_atomic(st, idx, size, op, dst, src, off)?;
                Ok(Flow::Next)
            }
            Instruction::LdImm64 {
                dst,
                src,
                imm,
                next_imm,
            } => {
                self.check_dst(dst)?;
                let v = self.check_ld_imm64(idx, src, imm, next_imm)?;
                self.set_reg(st, dst, v);
                Ok(Flow::Next)
            }
            Instruction::LdPacket { indirect, src, .. } => {
                self.check_ld_abs(st, idx, indirect, src, pending)
            }
            Instruction::Ja { off, .. } => Ok(Flow::Goto((idx as i64 + 1 + off as i64) as usize)),
            Instruction::Jmp {
                width,
                cond,
                dst,
                src,
                off,
            } => self.check_cond_jmp(st, idx, width, cond, dst, src, off, pending),
            Instruction::MayGoto { off } => self.check_may_goto(st, idx, off, pending),
            Instruction::Call(t) => match t {
                CallTarget::Helper(helpers::BPF_FUNC_LOOP) => {
                    self.check_bpf_loop(st, idx, pending)?;
                    Ok(Flow::Next)
                }
                CallTarget::Helper(helpers::BPF_FUNC_FOR_EACH_MAP_ELEM) => {
                    self.check_for_each_map_elem(st, idx, pending)?;
                    Ok(Flow::Next)
                }
                CallTarget::Helper(id) => {
                    self.check_helper_call(st, idx, id)?;
                    Ok(Flow::Next)
                }
                CallTarget::Local(imm) => {
                    let target = (idx as i64 + 1 + imm as i64) as usize;
                    if self.global_func(target).is_some() {
                        self.call_global(st, target)?;
                        return Ok(Flow::Next);
                    }
                    self.check_func_call(st, idx, target)?;
                    Ok(Flow::Goto(target))
                }
                CallTarget::Kfunc { btf_id, off } => {
                    self.check_kfunc_call(st, idx, btf_id, off)?;
                    Ok(Flow::Next)
                }
                CallTarget::Reg(_) => rej(format!("unknown opcode {:02x}", self.insns[idx].code)),
            },
            Instruction::Exit => self.check_exit(st),
        }
    }

    fn check_exit(&mut self, st: &mut VerifierState) -> R<Flow> {
        if st.frames.len() > 1 && st.cur().in_callback_fn {
            return Ok(Flow::Goto(self.callback_exit(st)?));
        }
        if st.frames.len() > 1 {
            // Return to the caller (`prepare_func_exit`): a static subprogram's r0 need not
            // be initialised (the caller only fails if it reads it), but no stack pointer,
            // not even the caller's, may come back.
            let ret = st.cur().regs[0];
            if ret.ty == RegType::PtrToStack {
                return rej("cannot return stack pointer to the caller frame");
            }
            let callee = st.frames.pop().unwrap_or_else(|| FuncState::new(0, 0, 0));
            let ret = callee.regs[0];
            let caller = st.cur_mut();
            caller.regs[0] = ret;
            for r in 1..=5 {
                caller.regs[r] = RegState::NOT_INIT;
            }
            self.scratched_regs |= 1;
            return Ok(Flow::Goto(callee.callsite + 1));
        }
        if st.lock.is_some() {
            return rej(
                "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region",
            );
        }
        self.check_reference_leak(st, "BPF_EXIT instruction in main prog")?;
        // check_return_code: the main program's r0 must be readable.
        if st.cur().regs[0].ty == RegType::NotInit {
            self.scratched_regs |= 1;
            return rej_hint(
                "R0 !read_ok",
                "set a return value in r0 before exit (e.g. return XDP_PASS)",
            );
        }
        if self.in_global.is_some() {
            // A global function returns a scalar, whatever the program type.
            let r0 = st.cur().regs[0];
            self.scratched_regs |= 1;
            if r0.ty != RegType::Scalar {
                return rej(format!(
                    "At subprogram exit the register R0 is not a scalar value ({})",
                    r0.type_str()
                ));
            }
            return Ok(Flow::Exit);
        }
        // check_return_code: the range of the program type (a privileged program may
        // return a pointer where there is none, `allow_ptr_leaks`, as in the kernel).
        if let Some(range) =
            crate::ctx::cgroup::return_range(self.prog, self.opts.expected_attach_type)
        {
            let r0 = st.cur().regs[0];
            self.scratched_regs |= 1;
            if r0.ty != RegType::Scalar {
                return rej(format!(
                    "At program exit the register R0 is not a known value ({})",
                    r0.type_str()
                ));
            }
            if r0.s.smin_value < range.0 || r0.s.smax_value > range.1 {
                return rej(crate::ctx::cgroup::invalid_return_msg(
                    r0.s.smin_value,
                    r0.s.smax_value,
                    range,
                ));
            }
        }
        Ok(Flow::Exit)
    }

    /// bpf-to-bpf call (`check_func_call` + `setup_func_entry`).
    fn check_func_call(&mut self, st: &mut VerifierState, idx: usize, target: usize) -> R<()> {
        if st.frames.len() >= MAX_CALL_FRAMES {
            return Err(Reject {
                msg: format!(
                    "the call stack of {} frames is too deep",
                    st.frames.len() + 1
                ),
                hint: Some(
                    "bpf-to-bpf calls may nest at most 8 deep; inline some functions (__always_inline)",
                ),
                errno: Some(crate::E2BIG),
            });
        }
        let subprog = self.subprog_of(target);
        let caller = st.cur().clone();
        let frameno = st.frames.len() as u8;
        let mut callee = FuncState::new(frameno, idx, subprog);
        for r in 1..=5 {
            callee.regs[r] = caller.regs[r];
        }
        self.scratched_regs |= 0x3e;
        st.frames.push(callee);
        if self.level() >= 2 {
            self.log.push_str("caller:");
            let tmp = VerifierState {
                frames: vec![caller],
                refs: Vec::new(),
                lock: None,
                may_goto_depth: 0,
                callback_unroll_depth: 0,
            };
            let text = self.state_text(&tmp, true);
            self.log.push_str(&text);
            self.log.push_str("\ncallee:");
            let text = self.state_text(st, true);
            self.log.push_str(&text);
            self.log.push('\n');
        }
        self.check_stack_depth(st)
    }

    /// Records each frame's stack depth in its function's (`update_stack_depth`). The
    /// combined depth is judged after exploration, by the kernel's static walk
    /// (`check/stack_depth.rs`), not here.
    fn check_stack_depth(&mut self, st: &VerifierState) -> R<()> {
        for f in &st.frames {
            let s = &mut self.subprog_stack[f.subprog];
            *s = (*s).max(f.stack_depth());
        }
        Ok(())
    }
}

/// Map types of kernel objects (`crate::types` has the array/hash ones).
const SOCKMAP: u32 = 15;
const XSKMAP: u32 = 17;
const SOCKHASH: u32 = 18;
const REUSEPORT_SOCKARRAY: u32 = 20;
const SK_STORAGE: u32 = 24;

/// `MAX_ERRNO`: the most negative errno a helper returns.
const MAX_ERRNO: i64 = 4095;

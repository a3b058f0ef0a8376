//! The exploration engine (`do_check` and the `check_*` functions of `kernel/bpf/verifier.c`):
//! walks every path of the program depth-first with a stack of pending branches, checks each
//! instruction against the abstract state, prunes paths whose state is covered by an already
//! verified one, and records per-instruction facts for the rewrite.

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

mod callbacks;
mod global;
mod kfunc;
mod ld_abs;
mod linked;
mod lock;
mod map_ptr;
mod may_goto;
mod sock;
mod stack_depth;
mod stack_var;
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

    fn subprog_of(&self, idx: usize) -> usize {
        match self.subprogs.binary_search(&idx) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    fn map_info(&self, reg: &RegState) -> Option<(&str, u32, u32)> {
        self.maps
            .get(reg.map as usize)
            .map(|m| (m.desc.name.as_str(), m.desc.key_size, m.desc.value_size))
    }

    fn fmt_reg(&self, reg: &RegState) -> String {
        fmt_reg(reg, self.map_info(reg))
    }

    /// `print_verifier_state`: registers and stack of the innermost frame.
    fn state_text(&self, st: &VerifierState, all: bool) -> String {
        let f = st.cur();
        let mut s = String::new();
        if f.frameno != 0 {
            s.push_str(&format!(" frame{}:", f.frameno));
        }
        for (i, r) in f.regs.iter().enumerate() {
            if r.ty == RegType::NotInit || (!all && self.scratched_regs & (1 << i) == 0) {
                continue;
            }
            s.push_str(&format!(" R{i}={}", self.fmt_reg(r)));
        }
        for (i, slot) in f.stack.iter().enumerate() {
            if slot.types.iter().all(|t| *t == SlotType::Invalid) {
                continue;
            }
            if !all && (i >= 64 || self.scratched_stack & (1 << i) == 0) {
                continue;
            }
            let off = -((i as i64 + 1) * BPF_REG_SIZE as i64);
            if slot.is_spill() {
                let r = &slot.spilled;
                let mut v = String::new();
                if r.ty == RegType::Scalar {
                    if r.s.is_const() {
                        v = snum(r.s.var_off.value as i64);
                    }
                } else {
                    v = self.fmt_reg(r);
                }
                s.push_str(&format!(" fp{off}={v}"));
            } else {
                let t: String = slot.types.iter().map(|t| t.as_char()).collect();
                s.push_str(&format!(" fp{off}={t}"));
            }
        }
        s
    }

    /// `print_insn_state`: after an instruction at level 2, the touched registers on the
    /// instruction's line (aligned like the kernel) or on a new `N:` line.
    fn print_insn_state(&mut self, st: &VerifierState, next_idx: usize) {
        if self.level() < 2 || (self.scratched_regs == 0 && self.scratched_stack == 0) {
            return;
        }
        let text = self.state_text(st, false);
        if text.is_empty() {
            return;
        }
        if self.insn_line_end == Some(self.log.len()) {
            self.log.pop(); // the newline
            let pos = self.log.len() + 1 - self.line_start;
            let width = (pos + 4).max(40).div_ceil(8) * 8 - pos - 1;
            self.log.push_str(&" ".repeat(width.saturating_sub(1)));
            self.log.push(' ');
            self.log.push(';');
        } else {
            self.log.push_str(&format!("{next_idx}:"));
        }
        self.log.push_str(&text);
        self.log.push('\n');
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
        // `check/callbacks.rs`).
        let force_new_state = self.is_may_goto_insn_at(idx) || self.calls_callback_at(idx);
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
                if states_equal(&self.arena[e].state, st) {
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

    // ---------------------------------------------------------------- ALU

    fn check_alu(
        &mut self,
        st: &mut VerifierState,
        width: Width,
        op: AluOp,
        dst: u8,
        src: Source,
    ) -> R<()> {
        let alu32 = width == Width::W32;
        // Operands.
        let src_reg = match src {
            Source::Reg(r) if op != AluOp::Neg => Some(self.read_reg(st, r)?),
            _ => None,
        };
        let src_val = match (src, src_reg) {
            (_, Some(r)) => r,
            (Source::Imm(i), None) => {
                if alu32 {
                    RegState::known(i as u32 as u64)
                } else {
                    RegState::known(i as i64 as u64)
                }
            }
            _ => RegState::known(0),
        };
        if matches!(op, AluOp::Mov | AluOp::Movsx(_)) {
            self.check_dst(dst)?;
            let mut v = src_val;
            match op {
                AluOp::Mov if !alu32 => {
                    if let (Source::Reg(r), RegType::Scalar) = (src, v.ty) {
                        // A copy links the two registers.
                        v = self.assign_scalar_id_before_mov(st, r);
                    }
                }
                _ => {
                    if v.ty == RegType::Scalar {
                        // `w1 = w2` of a value that fits 32 bits and a sign extension that
                        // extends no sign bit copy the value unchanged: the registers are
                        // linked as by a 64-bit move (check_alu_op's `is_src_reg_u32`,
                        // `no_sext`); otherwise the copy is a new value.
                        let unchanged = match op {
                            AluOp::Movsx(bits) => v.s.umax_value < 1u64 << (bits - 1),
                            _ => v.s.umax_value <= u32::MAX as u64,
                        };
                        match src {
                            Source::Reg(r) if unchanged => {
                                v = self.assign_scalar_id_before_mov(st, r);
                            }
                            _ => {
                                v.id = 0;
                                v.off = 0;
                            }
                        }
                        let mut s = v.s;
                        s.alu(op, width, &v.s);
                        v.s = s;
                    } else {
                        // Partial copy or sign-extension of a pointer: an unknown number.
                        v = RegState::unknown();
                        if alu32 {
                            v.s.coerce_to_size(4);
                        }
                    }
                }
            }
            self.set_reg(st, dst, v);
            return Ok(());
        }
        let dreg = self.read_reg(st, dst)?;
        self.check_dst(dst)?;
        if matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod)
            && let Source::Imm(0) = src
        {
            return rej("div by zero");
        }
        if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh)
            && let Source::Imm(i) = src
        {
            let bits = if alu32 { 32 } else { 64 };
            if i < 0 || i >= bits {
                return rej(format!("invalid shift {i}"));
            }
        }
        if op == AluOp::Neg {
            let v = if dreg.ty == RegType::Scalar {
                let mut s = dreg.s;
                s.alu(op, width, &Scalar::constant(0));
                RegState::scalar(s)
            } else {
                RegState::unknown()
            };
            self.set_reg(st, dst, v);
            return Ok(());
        }
        let out = if dreg.ty == RegType::Scalar && src_val.ty == RegType::Scalar {
            let mut s = dreg.s;
            s.alu(op, width, &src_val.s);
            let mut out = RegState::scalar(s);
            let same_reg = src == Source::Reg(dst);
            linked::link_after_alu(op, width, &dreg, &src_val, same_reg, &mut out);
            out
        } else if dreg.is_pointer() && src_val.is_pointer() {
            if op == AluOp::Sub {
                // Pointer difference: allowed for privileged programs, an unknown number.
                RegState::unknown()
            } else {
                return rej(format!("R{dst} pointer {} pointer prohibited", alu_str(op)));
            }
        } else if dreg.is_pointer() {
            self.adjust_ptr(dst, op, alu32, &dreg, &src_val, false)?
        } else {
            // scalar += pointer
            if op == AluOp::Sub {
                if alu32 {
                    RegState::unknown()
                } else {
                    return rej(format!("R{dst} tried to subtract pointer from scalar"));
                }
            } else {
                self.adjust_ptr(dst, op, alu32, &src_val, &dreg, true)?
            }
        };
        self.set_reg(st, dst, out);
        Ok(())
    }

    /// `adjust_ptr_min_max_vals`: pointer ± scalar.
    fn adjust_ptr(
        &mut self,
        dst: u8,
        op: AluOp,
        alu32: bool,
        ptr: &RegState,
        off: &RegState,
        _reversed: bool,
    ) -> R<RegState> {
        if alu32 {
            if op == AluOp::Sub {
                return Ok(RegState::unknown());
            }
            return rej(format!("R{dst} 32-bit pointer arithmetic prohibited"));
        }
        if ptr.maybe_null {
            return rej_hint(
                format!(
                    "R{dst} pointer arithmetic on {} prohibited, null-check it first",
                    ptr.type_str()
                ),
                "compare the pointer against NULL before adding offsets to it",
            );
        }
        let known = off.s.is_const();
        let kval = off.s.var_off.value as i64;
        match ptr.ty {
            RegType::PtrToCtx
            | RegType::PtrToMapValue
            | RegType::PtrToMapKey
            | RegType::PtrToStack
            | RegType::PtrToPacket
            | RegType::PtrToPacketMeta
            | RegType::PtrToMem
            | RegType::PtrToRingbufMem => {}
            RegType::ConstPtrToMap if known && kval == 0 && op == AluOp::Add => {}
            _ => {
                return rej_hint(
                    format!("R{dst} pointer arithmetic on {} prohibited", ptr.type_str()),
                    "this pointer type cannot be moved; use it unchanged (e.g. pass the map pointer directly to the helper)",
                );
            }
        }
        self.check_sane_offset(dst, *off, ptr.ty)?;
        self.check_sane_offset(dst, *ptr, ptr.ty)?;
        let mut out = *ptr;
        match op {
            AluOp::Add | AluOp::Sub => {
                // Any subtraction, constant or not ("invalid fp arithmetic": JITs might not
                // cope); `r -= 8` must be written `r += -8`.
                if op == AluOp::Sub && ptr.ty == RegType::PtrToStack {
                    return rej(format!("R{dst} subtraction from stack pointer prohibited"));
                }
                let delta = if op == AluOp::Add {
                    Some(kval)
                } else {
                    kval.checked_neg()
                };
                if known && let Some(d) = delta {
                    let n = ptr.off as i64 + d;
                    if n == n as i32 as i64 {
                        out.off = n as i32;
                        return self.check_sane_offset(dst, out, ptr.ty);
                    }
                }
                // A variable offset.
                let mut s = ptr.s;
                s.alu(op, Width::W64, &off.s);
                out.s = s;
                if ptr.ty.is_pkt_pointer() {
                    out.id = self.new_id();
                    if op == AluOp::Add || off.s.smin_value < 0 {
                        out.range = 0;
                    }
                }
                self.check_sane_offset(dst, out, ptr.ty)
            }
            AluOp::And | AluOp::Or | AluOp::Xor => rej(format!(
                "R{dst} bitwise operator {} on pointer prohibited",
                alu_str(op)
            )),
            _ => rej(format!(
                "R{dst} pointer arithmetic with {} operator prohibited",
                alu_str(op)
            )),
        }
    }

    /// `check_reg_sane_offset`: offsets far enough out to overflow are refused.
    fn check_sane_offset(&mut self, _dst: u8, r: RegState, ty: RegType) -> R<RegState> {
        let max = BPF_MAX_VAR_OFF as i64;
        let tname = ty.name();
        let val = r.s.var_off.value as i64;
        if r.s.is_const() && (val >= max || val <= -max) {
            return rej(format!(
                "math between {tname} pointer and {val} is not allowed"
            ));
        }
        if r.off as i64 >= max || r.off as i64 <= -max {
            return rej(format!("{tname} pointer offset {} is not allowed", r.off));
        }
        if r.s.smin_value == i64::MIN {
            return rej_hint(
                format!(
                    "math between {tname} pointer and register with unbounded min value is not allowed"
                ),
                "bound the offset first (e.g. if (off > N) return; or off &= MASK)",
            );
        }
        if r.s.smin_value >= max || r.s.smin_value <= -max {
            return rej(format!(
                "value {} makes {tname} pointer be out of bounds",
                r.s.smin_value
            ));
        }
        Ok(r)
    }

    // ---------------------------------------------------------------- ld_imm64

    fn check_ld_imm64(
        &mut self,
        idx: usize,
        src: Imm64Source,
        imm: i32,
        next_imm: i32,
    ) -> R<RegState> {
        let (desc, r) = match src {
            Imm64Source::Imm => {
                return Ok(RegState::known(
                    (imm as u32 as u64) | ((next_imm as u32 as u64) << 32),
                ));
            }
            Imm64Source::MapFd | Imm64Source::MapValue => match self.env.map_by_fd(imm) {
                Some(d) => (d.clone(), MapRef::Fd(imm)),
                None => {
                    return rej(format!("fd {imm} is not pointing to valid bpf_map"));
                }
            },
            Imm64Source::MapIdx | Imm64Source::MapIdxValue => {
                match self.env.map_by_idx(imm as u32) {
                    Some(d) => (d.clone(), MapRef::Fd(imm)),
                    None => return rej(format!("fd_idx {imm} out of bounds")),
                }
            }
            Imm64Source::Func => return self.check_pseudo_func(idx, imm),
            Imm64Source::BtfId => {
                return rej(format!(
                    "insn {idx}: ld_imm64 of a function or BTF id is not supported"
                ));
            }
        };
        let slot = self.map_slot(desc, r);
        self.aux[idx].map = merge_map_use(self.aux[idx].map, MapUse::Map(r));
        let value = matches!(src, Imm64Source::MapValue | Imm64Source::MapIdxValue);
        if !value {
            let mut v = RegState::pointer(RegType::ConstPtrToMap);
            v.map = slot;
            return Ok(v);
        }
        let d = &self.maps[slot as usize].desc;
        if !matches!(d.map_type, BPF_MAP_TYPE_ARRAY) || d.max_entries != 1 {
            return rej("no direct value access support for this map type");
        }
        if next_imm < 0 || next_imm as u32 >= d.value_size {
            return rej(format!(
                "invalid access to map value pointer, value_size={} off={}",
                d.value_size, next_imm as u32
            ));
        }
        let mut v = RegState::pointer(RegType::PtrToMapValue);
        v.map = slot;
        v.off = next_imm;
        Ok(v)
    }

    /// Registers a map (and its inner meta) in the map table, returning its slot.
    fn map_slot(&mut self, mut desc: MapDesc, r: MapRef) -> u32 {
        if let Some(i) = self.maps.iter().position(|m| m.r == r) {
            return i as u32;
        }
        let inner_desc = desc.inner_meta.take();
        let i = self.maps.len() as u32;
        self.maps.push(MapSlot {
            desc,
            r,
            inner: None,
        });
        if let (Some(inner), MapRef::Fd(fd)) = (inner_desc, r) {
            let j = self.maps.len() as u32;
            let mut meta = *inner;
            // The kernel's inner_map_meta has no name or id.
            meta.name.clear();
            meta.id = 0;
            meta.inner_meta = None;
            self.maps.push(MapSlot {
                desc: meta,
                r: MapRef::InnerOf(fd),
                inner: None,
            });
            self.maps[i as usize].inner = Some(j);
        }
        i
    }

    // ---------------------------------------------------------------- memory

    /// `check_mem_access`. For loads returns the loaded value (None → unknown scalar).
    /// `value` for stores: the stored register and whether it came from a register.
    #[allow(clippy::too_many_arguments)]
    fn check_mem_access(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        regno: u8,
        reg: RegState,
        insn_off: i32,
        size: Size,
        write: bool,
        value: Option<(RegState, bool)>,
        ldsx: bool,
    ) -> R<Option<RegState>> {
        // save_aux_ptr_type, after a successful access: one instruction may not access the
        // context on one path and another pointer type on another (the context access is
        // rewritten, the other would then read the wrong memory).
        let prev = self.aux[idx].ptr_type;
        let ty = reg.ty;
        let v =
            self.check_mem_access_at(st, idx, regno, reg, insn_off, size, write, value, ldsx)?;
        if let Some(p) = prev
            && p != ty
            && (sock::converted_access(p) || sock::converted_access(ty))
        {
            return rej("same insn cannot be used with different pointers");
        }
        Ok(v)
    }

    /// The access itself (`check_mem_access` without the instruction-wide type check).
    #[allow(clippy::too_many_arguments)]
    fn check_mem_access_at(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        regno: u8,
        reg: RegState,
        insn_off: i32,
        size: Size,
        write: bool,
        value: Option<(RegState, bool)>,
        ldsx: bool,
    ) -> R<Option<RegState>> {
        let sz = size.bytes() as i32;
        if reg.maybe_null {
            return rej_hint(
                format!("R{regno} invalid mem access '{}'", reg.type_str()),
                "add a NULL check on the value returned by bpf_map_lookup_elem before dereferencing it",
            );
        }
        if self.opts.strict_alignment {
            // check_ptr_alignment with env->strict_alignment (the stack is always strict).
            match reg.ty {
                RegType::PtrToPacket | RegType::PtrToPacketMeta => {
                    check_strict_alignment_at("packet ", "2+", 2, &reg, insn_off, sz)?
                }
                RegType::PtrToMapValue => check_strict_alignment("value ", &reg, insn_off, sz)?,
                RegType::PtrToMapKey => check_strict_alignment("key ", &reg, insn_off, sz)?,
                RegType::PtrToCtx => check_strict_alignment("context ", &reg, insn_off, sz)?,
                _ => {}
            }
        }
        let off = insn_off + reg.off;
        self.aux[idx].ptr_type = Some(reg.ty);
        match reg.ty {
            RegType::PtrToMapValue | RegType::PtrToMapKey => {
                let d = &self.maps[reg.map as usize].desc;
                let (mem, key) = if reg.ty == RegType::PtrToMapKey {
                    (d.key_size, true)
                } else {
                    (d.value_size, false)
                };
                let frozen = if write || key {
                    None
                } else {
                    d.frozen_value.clone()
                };
                if !key {
                    check_map_access_type(d, off, sz, write)?;
                }
                self.check_mem_region(regno, &reg, off, sz, mem, key)?;
                if !key {
                    self.check_special_fields(&reg, off, sz)?;
                }
                if reg.s.is_const()
                    && let Some(bytes) = &frozen
                {
                    let at = off as i64 + reg.s.var_off.value as i64;
                    if let Ok(at) = usize::try_from(at)
                        && let Some(b) = bytes.get(at..at + sz as usize)
                    {
                        let mut v = [0u8; 8];
                        v[..b.len()].copy_from_slice(b);
                        return Ok(Some(RegState::known(u64::from_le_bytes(v))));
                    }
                }
                Ok(None)
            }
            RegType::PtrToCtx => {
                if reg.off != 0 || !reg.s.is_const() || reg.s.var_off.value != 0 {
                    if !reg.s.is_const() {
                        return rej(format!(
                            "variable ctx access var_off={} disallowed",
                            reg.s.var_off
                        ));
                    }
                    // __check_ptr_off_reg: a negative offset is named as such first.
                    let off = reg.off as i64 + reg.s.var_off.value as i64;
                    let what = if off < 0 {
                        "negative offset"
                    } else {
                        "dereference of modified"
                    };
                    return rej(format!("{what} ctx ptr R{regno} off={off} disallowed"));
                }
                // A sign-extending load of a field that is a pointer (data, data_end,
                // data_meta) is no valid access (`info->is_ldsx` in the is_valid_access ops).
                let attach = self.opts.expected_attach_type;
                let valid = check_ctx_access_for(self.prog, attach, insn_off, sz as u32, write)
                    .filter(|l| !ldsx || l.reg_type == RegType::Scalar);
                match valid {
                    Some(load) => {
                        self.aux[idx].ctx = Some(CtxAccess {
                            field: load.field,
                            off: insn_off as u32,
                            size: sz as u32,
                            write,
                        });
                        if write {
                            if let Some((v, _)) = value
                                && v.is_pointer()
                                && !self.opts.allow_ptr_leaks
                            {
                                return rej(format!("R{regno} leaks addr into ctx"));
                            }
                            return Ok(None);
                        }
                        Ok(Some(match load.reg_type {
                            RegType::Scalar => RegState::unknown(),
                            // A socket: never NULL (sk_reuseport_md->sk), or maybe NULL
                            // (bpf_sock_ops->sk, PTR_TO_SOCKET_OR_NULL).
                            RegType::PtrToSocket => {
                                let mut v = RegState::pointer(RegType::PtrToSocket);
                                if matches!(self.prog, ProgType::SockOps | ProgType::SkLookup) {
                                    v.maybe_null = true;
                                    v.id = self.new_id();
                                }
                                v
                            }
                            // __sk_buff->sk: a socket, or NULL (with an id for the check).
                            RegType::PtrToSockCommon => {
                                let mut v = RegState::pointer(RegType::PtrToSockCommon);
                                v.maybe_null = true;
                                v.id = self.new_id();
                                v
                            }
                            t => RegState::pointer(t),
                        }))
                    }
                    None => rej_hint(
                        format!("invalid bpf_context access off={insn_off} size={sz}"),
                        "this context field does not exist or cannot be accessed this way for the program type (XDP allows 4-byte loads of struct xdp_md fields only)",
                    ),
                }
            }
            RegType::PtrToStack => self.check_stack_access(st, regno, &reg, off, sz, write, value),
            t if t.is_sk_pointer() => self.check_sock_access(regno, &reg, off, sz, write),
            RegType::ConstPtrToMap => self.check_ptr_to_map_access(regno, &reg, off, write),
            RegType::PtrToBtfId => self.check_ptr_to_btf_access(regno, &reg, off, write),
            RegType::PtrToMem | RegType::PtrToRingbufMem => {
                self.check_mem_region(regno, &reg, off, sz, reg.mem_size, false)?;
                Ok(if write {
                    None
                } else {
                    Some(RegState::unknown())
                })
            }
            RegType::PtrToPacket | RegType::PtrToPacketMeta => {
                if self.prog == ProgType::SocketFilter {
                    return rej(format!("R{regno} invalid mem access '{}'", reg.type_str()));
                }
                if write && self.prog.direct_packet_access() == Some(false) {
                    return rej("cannot write into packet");
                }
                // may_access_direct_pkt_data(env, NULL, BPF_WRITE).
                self.seen_direct_write |= write;
                if write
                    && let Some((v, _)) = value
                    && v.is_pointer()
                    && !self.opts.allow_ptr_leaks
                {
                    return rej(format!("R{regno} leaks addr into packet"));
                }
                self.check_packet_access(regno, &reg, off, sz)?;
                Ok(None)
            }
            _ => rej_hint(
                format!("R{regno} invalid mem access '{}'", reg.type_str()),
                "only pointers to the stack, the context, map values or the packet can be dereferenced",
            ),
        }
    }

    /// `__check_mem_access` message for a failed access.
    fn mem_access_msg(&self, regno: u8, reg: &RegState, off: i64, size: i32, mem: u32) -> String {
        match reg.ty {
            RegType::PtrToMapKey => {
                format!("invalid access to map key, key_size={mem} off={off} size={size}")
            }
            RegType::PtrToMapValue => {
                format!("invalid access to map value, value_size={mem} off={off} size={size}")
            }
            RegType::PtrToPacket | RegType::PtrToPacketMeta | RegType::PtrToPacketEnd => format!(
                "invalid access to packet, off={off} size={size}, R{regno}(id={},off={off},r={mem})",
                reg.id
            ),
            _ => format!("invalid access to memory, mem_size={mem} off={off} size={size}"),
        }
    }

    fn mem_ok(off: i64, size: i32, mem: u32) -> bool {
        off >= 0 && size > 0 && off + size as i64 <= mem as i64
    }

    /// `check_mem_region_access` for map values and keys.
    fn check_mem_region(
        &mut self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
        mem: u32,
        _key: bool,
    ) -> R<()> {
        let smin = reg.s.smin_value;
        if smin < 0
            && (smin == i64::MIN
                || (off as i64 + smin) != (off as i64 + smin) as i32 as i64
                || smin + (off as i64) < 0)
        {
            return rej_hint(
                format!(
                    "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                ),
                "the index may be negative; use an unsigned type or check index >= 0",
            );
        }
        let lo = smin + off as i64;
        if !Self::mem_ok(lo, size, mem) {
            let m = self.mem_access_msg(regno, reg, lo, size, mem);
            self.verbose(&format!("{m}\n"));
            return rej_hint(
                format!("R{regno} min value is outside of the allowed memory range"),
                "the access is outside the map value; check the offset and size against the value type",
            );
        }
        if reg.s.umax_value >= BPF_MAX_VAR_OFF {
            return rej_hint(
                format!(
                    "R{regno} unbounded memory access, make sure to bounds check any such access"
                ),
                "bound the index with a comparison (if (i < N)) before using it as an offset",
            );
        }
        let hi = reg.s.umax_value as i64 + off as i64;
        if !Self::mem_ok(hi, size, mem) {
            let m = self.mem_access_msg(regno, reg, hi, size, mem);
            self.verbose(&format!("{m}\n"));
            return rej_hint(
                format!("R{regno} max value is outside of the allowed memory range"),
                "the largest possible index reaches past the end of the map value; tighten the bounds check",
            );
        }
        Ok(())
    }

    /// `check_packet_access`.
    fn check_packet_access(&mut self, regno: u8, reg: &RegState, off: i32, size: i32) -> R<()> {
        if reg.s.smin_value < 0 {
            return rej(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ));
        }
        if reg.range < 0 || !Self::mem_ok(off as i64, size, reg.range as u32) {
            let m = self.mem_access_msg(regno, reg, off as i64, size, reg.range.max(0) as u32);
            self.verbose(&format!("{m}\n"));
            return rej_hint(
                format!("R{regno} offset is outside of the packet"),
                "compare data + offset + size against data_end before the access (if (data + N > data_end) return XDP_DROP;)",
            );
        }
        Ok(())
    }

    /// Stack loads and stores at a constant offset (`check_stack_{read,write}_fixed_off`).
    #[allow(clippy::too_many_arguments)]
    fn check_stack_access(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
        write: bool,
        value: Option<(RegState, bool)>,
    ) -> R<Option<RegState>> {
        if !reg.s.is_const() {
            return self.check_stack_access_var(st, regno, reg, off, size, write, value);
        }
        let off = off as i64 + reg.s.var_off.value as i64;
        // Stack accesses must be naturally aligned (check_ptr_alignment, strict for stack).
        if off.rem_euclid(size as i64) != 0 {
            let var = if reg.s.is_const() {
                (reg.s.var_off.value as i64).to_string()
            } else {
                reg.s.var_off.to_string()
            };
            return rej(format!(
                "misaligned stack access off {}+{}+{} size {}",
                var,
                reg.off,
                off - reg.off as i64,
                size
            ));
        }
        if off < -(MAX_BPF_STACK as i64) || off + size as i64 > 0 {
            return rej_hint(
                format!(
                    "invalid {} stack R{regno} off={off} size={size}",
                    if write { "write to" } else { "read from" }
                ),
                "the access is outside the 512-byte stack frame",
            );
        }
        let off = off as i32;
        let frameno = reg.frameno as usize;
        if write
            && let Some((v, _)) = value
            && v.ty == RegType::PtrToStack
            && (v.frameno as usize) > frameno
        {
            return rej("cannot spill pointers to stack into stack frame of the caller");
        }
        let Some(frame) = st.frames.get_mut(frameno) else {
            return rej(format!(
                "R{regno} points to the stack of a returned function"
            ));
        };
        let spi = frame.grow_to(off);
        if spi < 64 {
            self.scratched_stack |= 1 << spi;
        }
        if !write {
            // A read grows the frame's stack depth too (grow_stack_state in
            // check_stack_access_within_bounds): the JIT zeroes that much, so a privileged
            // read of an uninitialised slot sees 0 on every engine.
            let s = &mut self.subprog_stack[frame.subprog];
            *s = (*s).max(frame.stack_depth());
        }
        let first = ((-off - 1) as usize) % BPF_REG_SIZE; // types[] index of the lowest byte
        if write {
            let (v, from_reg) = value.unwrap_or((RegState::unknown(), false));
            let slot = &mut frame.stack[spi];
            let aligned = off % BPF_REG_SIZE as i32 == 0;
            if aligned && v.ty == RegType::Scalar {
                // Spill a scalar (any size), keeping its value.
                save_register_state(slot, v, size as usize);
                if !from_reg && size as usize != BPF_REG_SIZE {
                    // `*(u32 *)(r10 -8) = imm`: as the kernel, a spill of a known constant.
                }
            } else if v.is_pointer() {
                if size as usize != BPF_REG_SIZE {
                    return rej("invalid size of register spill");
                }
                save_register_state(slot, v, BPF_REG_SIZE);
            } else {
                // Plain data: destroys a spill in this slot.
                if slot.is_spill() {
                    for t in slot.types.iter_mut() {
                        if *t == SlotType::Spill {
                            *t = SlotType::Misc;
                        }
                    }
                    slot.spilled = RegState::NOT_INIT;
                }
                let zero = v.ty == RegType::Scalar && v.s.is_const() && v.s.var_off.value == 0;
                let t = if zero { SlotType::Zero } else { SlotType::Misc };
                for i in 0..size as usize {
                    slot.types[first - i] = t;
                }
            }
            let _ = from_reg;
            return self.check_stack_depth(st).map(|_| None);
        }
        // Read.
        let slot = frame.stack[spi];
        if slot.is_spill() {
            let spill_size = slot.spill_size();
            let sp = slot.spilled;
            if size as usize != BPF_REG_SIZE || spill_size != BPF_REG_SIZE {
                if sp.ty != RegType::Scalar {
                    return rej("invalid size of register fill");
                }
                if size as usize <= spill_size && off % BPF_REG_SIZE as i32 == 0 {
                    let mut v = sp;
                    if sp.s.umax_value > (u64::MAX >> (64 - 8 * size as u32).min(63)) {
                        v.id = 0;
                    }
                    return Ok(Some(v));
                }
                let mut spill_cnt = 0;
                let mut zero_cnt = 0;
                for i in 0..size as usize {
                    match slot.types[first - i] {
                        SlotType::Spill => spill_cnt += 1,
                        SlotType::Zero => zero_cnt += 1,
                        SlotType::Misc => {}
                        SlotType::Invalid => self.uninit_read(off, i, size)?,
                    }
                }
                if (spill_cnt == size && sp.s.is_const() && sp.s.var_off.value == 0)
                    || zero_cnt == size
                {
                    return Ok(Some(RegState::known(0)));
                }
                return Ok(None);
            }
            return Ok(Some(sp));
        }
        let mut zero = true;
        for i in 0..size as usize {
            match slot.types[first - i] {
                SlotType::Zero => {}
                SlotType::Misc | SlotType::Spill => zero = false,
                SlotType::Invalid => {
                    self.uninit_read(off, i, size)?;
                    zero = false;
                }
            }
        }
        Ok(Some(if zero {
            RegState::known(0)
        } else {
            RegState::unknown()
        }))
    }

    /// A scalar spilled to an 8-byte-aligned stack slot is linked to its source register
    /// (check_stack_write_fixed_off: `assign_scalar_id_before_mov` when the value fits the
    /// spill, so a fill and a later bound on either refine both); a narrowing spill breaks
    /// the relation (the spilled copy loses its id).
    fn link_spilled_scalar(
        &mut self,
        st: &mut VerifierState,
        src: u8,
        v: &mut RegState,
        dst: u8,
        off: i16,
        size: Size,
    ) -> R<()> {
        let base = self.read_reg(st, dst)?;
        if v.ty != RegType::Scalar || base.ty != RegType::PtrToStack || !base.s.is_const() {
            return Ok(());
        }
        let at = off as i64 + base.off as i64 + base.s.var_off.value as i64;
        if at.rem_euclid(BPF_REG_SIZE as i64) != 0 {
            return Ok(());
        }
        // get_reg_width: the bits the value needs.
        let width = 64 - v.s.umax_value.leading_zeros();
        if width <= 8 * size.bytes() as u32 {
            *v = self.assign_scalar_id_before_mov(st, src);
        } else {
            v.id = 0;
            v.off = 0;
        }
        Ok(())
    }

    fn uninit_read(&self, off: i32, i: usize, size: i32) -> R<()> {
        if self.opts.allow_uninit_stack {
            return Ok(());
        }
        rej_hint(
            format!("invalid read from stack off {off}+{i} size {size}"),
            "the stack slot is read before it is written; initialise the variable",
        )
    }

    /// Atomic read-modify-write (`check_atomic`): only on the stack and map values.
    #[allow(clippy::too_many_arguments)]
    fn check_atomic(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        size: Size,
        op: AtomicOp,
        dst: u8,
        src: u8,
        off: i16,
    ) -> R<()> {
        if matches!(op, AtomicOp::LoadAcquire) {
            let base = self.read_reg(st, src)?;
            self.check_dst(dst)?;
            let v =
                self.check_mem_access(st, idx, src, base, off as i32, size, false, None, false)?;
            let mut v = v.unwrap_or_else(RegState::unknown);
            if v.ty == RegType::Scalar {
                v.s.coerce_to_size(size.bytes() as u8);
            }
            self.set_reg(st, dst, v);
            return Ok(());
        }
        let val = self.read_reg(st, src)?;
        let base = self.read_reg(st, dst)?;
        if matches!(op, AtomicOp::StoreRelease) {
            self.check_mem_access(
                st,
                idx,
                dst,
                base,
                off as i32,
                size,
                true,
                Some((val, true)),
                false,
            )?;
            return Ok(());
        }
        if op == AtomicOp::Cmpxchg {
            self.read_reg(st, 0)?;
        }
        if val.is_pointer() && !self.opts.allow_ptr_leaks {
            return rej(format!("R{src} leaks addr into mem"));
        }
        // check_atomic_rmw refuses these up front; anything else goes through the two
        // memory checks, which refuse it there (a scalar, a map_value_or_null, ...).
        if matches!(
            base.ty,
            RegType::PtrToCtx
                | RegType::PtrToPacket
                | RegType::PtrToPacketMeta
                | RegType::PtrToPacketEnd
        ) {
            return rej(format!(
                "BPF_ATOMIC stores into R{dst} {} is not allowed",
                base.type_str()
            ));
        }
        let fetch = match op {
            AtomicOp::Add { fetch }
            | AtomicOp::Or { fetch }
            | AtomicOp::And { fetch }
            | AtomicOp::Xor { fetch } => fetch,
            _ => true,
        };
        let sz = size.bytes() as i32;
        // Read the location (strictly aligned: strict_alignment_once); a fetch puts the old
        // value in its register right away, so when that register is also the base (r0 of a
        // cmpxchg), the write below goes through the loaded value, as in the kernel.
        atomic_alignment(&base, off as i32, sz)?;
        let old =
            self.check_mem_access(st, idx, dst, base, off as i32, size, false, None, false)?;
        if fetch {
            let r = if op == AtomicOp::Cmpxchg { 0 } else { src };
            self.check_dst(r)?;
            // The kernel knows a fetched constant (a spilled one on the stack); any other
            // fetched scalar is a full 64-bit unknown there, whatever the access size (seen
            // on the live kernel: a 32-bit cmpxchg leaves r0 as (0x0; 0xffffffffffffffff)).
            let mut v = old.unwrap_or_else(RegState::unknown);
            if v.ty == RegType::Scalar {
                if v.s.is_const() {
                    if sz < 8 {
                        v.s.coerce_to_size(sz as u8);
                    }
                } else {
                    v = RegState::unknown();
                }
            }
            self.set_reg(st, r, v);
        }
        let base = self.read_reg(st, dst)?;
        atomic_alignment(&base, off as i32, sz)?;
        self.check_mem_access(
            st,
            idx,
            dst,
            base,
            off as i32,
            size,
            true,
            Some((RegState::unknown(), true)),
            false,
        )?;
        Ok(())
    }

    // ---------------------------------------------------------------- jumps

    #[allow(clippy::too_many_arguments)]
    fn check_cond_jmp(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        width: Width,
        cond: JmpCond,
        dst: u8,
        src: Source,
        off: i16,
        pending: &mut Vec<Pending>,
    ) -> R<Flow> {
        let target = (idx as i64 + 1 + off as i64) as usize;
        let dreg = self.read_reg(st, dst)?;
        let sreg = match src {
            Source::Reg(r) => self.read_reg(st, r)?,
            Source::Imm(i) => RegState::known(i as i64 as u64),
        };
        let w32 = width == Width::W32;
        let pred = self.branch_taken(&dreg, &sreg, cond, width);
        match pred {
            Taken::Always => return Ok(Flow::Goto(target)),
            Taken::Never => return Ok(Flow::Next),
            Taken::Unknown => {}
        }
        let mut other = st.clone();
        let mut alive_this = true;
        let mut alive_other = true;
        if dreg.ty == RegType::Scalar && sreg.ty == RegType::Scalar {
            // Refine both sides in both branches (`reg_set_min_max`).
            let (mut td, mut ts) = (dreg, sreg);
            let (mut fd, mut fs) = (dreg, sreg);
            alive_other = bounds::refine(&mut td.s, &mut ts.s, cond, width, true);
            alive_this = bounds::refine(&mut fd.s, &mut fs.s, cond, width, false);
            let fr = other.frames.len() - 1;
            other.frames[fr].regs[dst as usize].s = td.s;
            let cur = st.frames.len() - 1;
            st.frames[cur].regs[dst as usize].s = fd.s;
            if let Source::Reg(r) = src {
                other.frames[fr].regs[r as usize].s = ts.s;
                st.frames[cur].regs[r as usize].s = fs.s;
                linked::sync_linked_regs(&mut other, &RegState { s: ts.s, ..sreg });
                linked::sync_linked_regs(st, &RegState { s: fs.s, ..sreg });
            }
            linked::sync_linked_regs(&mut other, &RegState { s: td.s, ..dreg });
            linked::sync_linked_regs(st, &RegState { s: fd.s, ..dreg });
        }
        // A maybe-NULL pointer equal to a pointer that is not NULL is not NULL either (on
        // the branch where they are equal).
        if !w32
            && let Source::Reg(s) = src
            && dreg.is_pointer()
            && sreg.is_pointer()
            && dreg.maybe_null != sreg.maybe_null
            && matches!(cond, JmpCond::Eq | JmpCond::Ne)
        {
            let regno = if sreg.maybe_null { s } else { dst };
            let eq_branch = if cond == JmpCond::Eq {
                &mut other
            } else {
                &mut *st
            };
            let f = eq_branch.frames.len() - 1;
            mark_ptr_not_null_reg(&self.maps, &mut eq_branch.frames[f].regs[regno as usize]);
        }
        // NULL checks: `if rX == 0` on a maybe-null pointer.
        if !w32
            && matches!(src, Source::Imm(0))
            && matches!(cond, JmpCond::Eq | JmpCond::Ne)
            && dreg.maybe_null
        {
            let id = dreg.id;
            let eq = cond == JmpCond::Eq;
            // On the branch where the pointer is NULL it becomes the scalar 0.
            self.mark_ptr_or_null(st, id, !eq);
            self.mark_ptr_or_null(&mut other, id, eq);
        } else if let Source::Reg(s) = src
            && !w32
        {
            self.try_match_pkt_pointers(cond, dst, s, &dreg, &sreg, st, &mut other);
        }
        if self.level() >= 2 {
            self.scratched_regs |= 1 << dst;
        }
        match (alive_this, alive_other) {
            (true, true) => {
                self.push_branch(pending, other, target, idx)?;
                Ok(Flow::Next)
            }
            (true, false) => Ok(Flow::Next),
            (false, true) => {
                *st = other;
                Ok(Flow::Goto(target))
            }
            (false, false) => Ok(Flow::Next),
        }
    }

    /// `is_branch_taken`, including pointer-vs-zero and packet pointer comparisons.
    fn branch_taken(&self, a: &RegState, b: &RegState, cond: JmpCond, width: Width) -> Taken {
        if a.ty == RegType::Scalar && b.ty == RegType::Scalar {
            return a.s.branch_taken(&b.s, cond, width);
        }
        if a.is_pointer() && b.is_pointer() {
            return Taken::Unknown;
        }
        // One pointer, one scalar: a pointer known not to be NULL is never equal to 0.
        let (p, k, c) = if a.is_pointer() {
            (a, b, cond)
        } else {
            (b, a, bounds::flip(cond))
        };
        let (kconst, kval) = if width == Width::W32 {
            (k.s.is_const32(), k.s.var_off.value as u32 as u64)
        } else {
            (k.s.is_const(), k.s.var_off.value)
        };
        if !kconst || kval != 0 || !reg_not_null(p) {
            return Taken::Unknown;
        }
        match c {
            JmpCond::Eq => Taken::Never,
            JmpCond::Ne => Taken::Always,
            _ => Taken::Unknown,
        }
    }

    /// `mark_ptr_or_null_regs`: every register/spill with `id` becomes NULL (scalar 0) or
    /// the non-NULL pointer; a map-of-maps value becomes the inner map (`CONST_PTR_TO_MAP`
    /// described by the inner meta).
    fn mark_ptr_or_null(&mut self, st: &mut VerifierState, id: u32, is_null: bool) {
        if id == 0 {
            return;
        }
        // The NULL branch of a just-acquired pointer holds no reference.
        if is_null {
            st.refs.retain(|r| r.0 != id);
        }
        let maps = &self.maps;
        st.for_each_reg(|r| {
            if r.id != id || !r.maybe_null {
                return;
            }
            if is_null {
                *r = RegState::known(0);
                return;
            }
            mark_ptr_not_null_reg(maps, r);
            // The id only served the NULL check, except on a value with a lock, whose
            // unlock must name the same value (reg_may_point_to_spin_lock).
            let locked = r.ty == RegType::PtrToMapValue
                && maps
                    .get(r.map as usize)
                    .is_some_and(|m| m.desc.spin_lock_off.is_some());
            if !locked {
                r.id = 0;
            }
        });
    }

    /// `try_match_pkt_pointers` + `find_good_pkt_pointers`.
    #[allow(clippy::too_many_arguments)]
    fn try_match_pkt_pointers(
        &mut self,
        cond: JmpCond,
        _dst: u8,
        _src: u8,
        d: &RegState,
        s: &RegState,
        this: &mut VerifierState,
        other: &mut VerifierState,
    ) {
        use RegType::*;
        let init_pkt = |r: &RegState| {
            r.ty == PtrToPacket && r.off == 0 && r.s.is_const() && r.s.var_off.value == 0
        };
        let fwd = (d.ty == PtrToPacket && s.ty == PtrToPacketEnd)
            || (d.ty == PtrToPacketMeta && init_pkt(s));
        let rev = (d.ty == PtrToPacketEnd && s.ty == PtrToPacket)
            || (init_pkt(d) && s.ty == PtrToPacketMeta);
        // (branch that gets the range: true = fall-through "this", reg, right_open)
        let plan = match (cond, fwd, rev) {
            (JmpCond::Gt, true, _) => Some((true, d, false)),
            (JmpCond::Gt, _, true) => Some((false, s, true)),
            (JmpCond::Lt, true, _) => Some((false, d, true)),
            (JmpCond::Lt, _, true) => Some((true, s, false)),
            (JmpCond::Ge, true, _) => Some((true, d, true)),
            (JmpCond::Ge, _, true) => Some((false, s, false)),
            (JmpCond::Le, true, _) => Some((false, d, false)),
            (JmpCond::Le, _, true) => Some((true, s, true)),
            _ => None,
        };
        if let Some((in_this, reg, open)) = plan {
            let target = if in_this { this } else { other };
            find_good_pkt_pointers(target, reg, open);
        }
    }

    // ---------------------------------------------------------------- helpers

    fn check_helper_call(&mut self, st: &mut VerifierState, idx: usize, id: i32) -> R<()> {
        if st.lock.is_some() && id != 94 {
            return rej("function calls are not allowed while holding a lock");
        }
        // Helper ids past this kernel's `__BPF_FUNC_MAX_ID` do not exist there.
        let known_here = id >= 0 && (id as u32) < self.opts.kernel.helper_count;
        let proto = if known_here {
            func_proto(self.prog, id)
        } else {
            None
        };
        let Some(proto) = proto else {
            return rej_hint(
                if known_here && helpers::func_exists(id) {
                    format!(
                        "program of this type cannot use helper {}#{id}",
                        helper_str(id)
                    )
                } else {
                    format!("invalid func unknown#{id}")
                },
                "this helper is not available to the program type (or not supported by kbpf yet)",
            );
        };
        let mut map: Option<u32> = None;
        let mut const_key: Option<u64> = None;
        // ARG_PTR_TO_UNINIT_MEM: the size argument's maximum, and the stack it fills.
        let mut size_max: Option<u64> = None;
        let mut raw_stack: Option<(RegState, u64)> = None;
        // The reference an argument holds (`meta.ref_obj_id`) and the one to release.
        let mut meta_ref: u32 = 0;
        let mut release: Option<u32> = None;
        let args = proto.args;
        for (i, &arg) in args.iter().enumerate() {
            let regno = (i + 1) as u8;
            if arg == ArgType::DontCare {
                continue;
            }
            let reg = self.read_reg(st, regno)?;
            // may_access_direct_pkt_data with the helper's `.pkt_access`.
            if arg != ArgType::Anything
                && reg.ty.is_pkt_pointer()
                && !(proto.pkt_access && self.prog.direct_packet_access().is_some())
            {
                return rej("helper access to the packet is not allowed");
            }
            if reg.ref_obj_id != 0 {
                meta_ref = reg.ref_obj_id;
            }
            match arg {
                ArgType::DontCare | ArgType::Anything => {}
                ArgType::PtrToSockCommon | ArgType::SockRelease | ArgType::BtfIdSockCommon => {
                    if reg.maybe_null || !reg.ty.is_sk_pointer() {
                        return rej(format!(
                            "R{regno} type={} expected=sock_common, sock, tcp_sock, xdp_sock{}",
                            reg.type_str(),
                            if arg == ArgType::PtrToSockCommon {
                                ""
                            } else {
                                ", ptr_, trusted_ptr_"
                            }
                        ));
                    }
                    if arg == ArgType::SockRelease {
                        if reg.ref_obj_id == 0 {
                            return rej(format!(
                                "R{regno} must be referenced when passed to release function"
                            ));
                        }
                        release = Some(reg.ref_obj_id);
                    }
                }
                ArgType::ConstMapPtr => {
                    if reg.ty != RegType::ConstPtrToMap || reg.maybe_null {
                        return rej_hint(
                            format!("R{regno} type={} expected=map_ptr", reg.type_str()),
                            "pass the map itself (&my_map) or, for map-in-map, the inner map pointer after its NULL check",
                        );
                    }
                    map = Some(reg.map);
                }
                ArgType::PtrToCtx | ArgType::PtrToCtxOrNull => {
                    let null =
                        reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                    if arg == ArgType::PtrToCtxOrNull && null {
                        continue;
                    }
                    if reg.ty != RegType::PtrToCtx {
                        return rej(format!("R{regno} type={} expected=ctx", reg.type_str()));
                    }
                    if let Err(m) = global::check_ptr_off_reg(&reg, regno, "ctx") {
                        return rej(m);
                    }
                }
                ArgType::SpinLock => self.process_spin_lock(st, regno, &reg, id == 93)?,
                ArgType::ConstAllocSizeOrZero => {
                    if reg.ty != RegType::Scalar || !reg.s.is_const() {
                        return rej(format!("R{regno} is not a known constant'"));
                    }
                    size_max = Some(reg.s.var_off.value);
                }
                ArgType::PtrToFunc => {
                    if reg.ty != RegType::PtrToFunc {
                        return rej(format!("R{regno} type={} expected=func", reg.type_str()));
                    }
                }
                ArgType::PtrToStackOrNull => {
                    let null =
                        reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                    if !null && reg.ty != RegType::PtrToStack {
                        return rej(format!("R{regno} type={} expected=fp", reg.type_str()));
                    }
                }
                ArgType::RingbufMemRelease => {
                    if reg.ty != RegType::PtrToRingbufMem || reg.maybe_null {
                        return rej(format!(
                            "R{regno} type={} expected=ringbuf_mem",
                            reg.type_str()
                        ));
                    }
                    if reg.off != 0 || !reg.s.is_const() || reg.s.var_off.value != 0 {
                        return rej(format!(
                            "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                        ));
                    }
                    if reg.ref_obj_id == 0 {
                        return rej(format!(
                            "R{regno} must be referenced when passed to release function"
                        ));
                    }
                    release = Some(reg.ref_obj_id);
                }
                ArgType::PtrToMapValueOrNull
                    if reg.ty == RegType::Scalar
                        && reg.s.is_const()
                        && reg.s.var_off.value == 0 => {}
                // resolve_map_arg_type: a socket map's value is a socket.
                ArgType::PtrToMapValue
                    if map.is_some_and(|m| {
                        matches!(self.maps[m as usize].desc.map_type, SOCKMAP | SOCKHASH)
                    }) =>
                {
                    if reg.maybe_null || !reg.ty.is_sk_pointer() {
                        return rej(format!(
                            "R{regno} type={} expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_",
                            reg.type_str()
                        ));
                    }
                }
                ArgType::PtrToMapKey | ArgType::PtrToMapValue | ArgType::PtrToMapValueOrNull => {
                    let Some(m) = map else {
                        return rej(if arg == ArgType::PtrToMapKey {
                            "invalid map_ptr to access map->key"
                        } else {
                            "invalid map_ptr to access map->value"
                        });
                    };
                    let d = &self.maps[m as usize].desc;
                    let size = if arg == ArgType::PtrToMapKey {
                        d.key_size
                    } else {
                        d.value_size
                    };
                    self.check_helper_mem(st, regno, &reg, size as i32, false)?;
                    if arg == ArgType::PtrToMapKey && reg.ty == RegType::PtrToStack {
                        const_key = constant_map_key(st, &reg, size);
                    }
                }
                ArgType::PtrToMemReadonly | ArgType::PtrToMemReadonlyOrNull => {
                    let next = args.get(i + 1).copied();
                    let size_reg = self.read_reg(st, regno + 1)?;
                    let zero_ok = next == Some(ArgType::ConstSizeOrZero);
                    let null =
                        reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                    // A NULL skips the type check only: its size must still be able to be 0,
                    // and only a zero-byte read of NULL is allowed (check_helper_mem_access).
                    let null_ok = arg == ArgType::PtrToMemReadonlyOrNull && null;
                    if !null_ok {
                        check_mem_arg_type(regno, &reg)?;
                    }
                    self.check_mem_size(st, regno, &reg, &size_reg, zero_ok, null_ok, false)?;
                }
                ArgType::PtrToMemReadWrite => {
                    // Read as initialised memory, then written: checked both ways, and what
                    // the stack held there is unknown afterwards.
                    check_mem_arg_type(regno, &reg)?;
                    let size_reg = self.read_reg(st, regno + 1)?;
                    self.check_mem_size(st, regno, &reg, &size_reg, false, false, false)?;
                    self.check_mem_size(st, regno, &reg, &size_reg, false, false, true)?;
                    if reg.ty == RegType::PtrToStack {
                        if !reg.s.is_const() {
                            return rej(format!(
                                "R{regno} variable-offset stack memory written by a helper is not supported by kbpf"
                            ));
                        }
                        raw_stack = Some((reg, size_reg.s.umax_value));
                    }
                }
                ArgType::PtrToUninitMem => {
                    check_mem_arg_type(regno, &reg)?;
                    let next = args.get(i + 1).copied();
                    let size_reg = self.read_reg(st, regno + 1)?;
                    let zero_ok = next == Some(ArgType::ConstSizeOrZero);
                    self.check_mem_size(st, regno, &reg, &size_reg, zero_ok, false, true)?;
                    size_max = Some(size_reg.s.umax_value);
                    if reg.ty == RegType::PtrToStack {
                        // Marked written after the arguments (the kernel's byte stores for
                        // raw_mode in check_helper_call).
                        raw_stack = Some((reg, size_reg.s.umax_value));
                    }
                }
                ArgType::PtrToLongUninit => {
                    // check_func_arg: the helper's fixed-size write, then MEM_ALIGNED.
                    check_mem_arg_type(regno, &reg)?;
                    self.check_helper_mem(st, regno, &reg, 8, true)?;
                    let desc = match reg.ty {
                        RegType::PtrToStack => Some(("stack ", "", 0)),
                        RegType::PtrToMapValue => Some(("value ", "", 0)),
                        RegType::PtrToMapKey => Some(("key ", "", 0)),
                        RegType::PtrToPacket | RegType::PtrToPacketMeta => {
                            Some(("packet ", "2+", 2))
                        }
                        _ => None,
                    };
                    if let Some((d, prefix, bias)) = desc {
                        check_strict_alignment_at(d, prefix, bias, &reg, 0, 8)?;
                    }
                    if reg.ty == RegType::PtrToStack {
                        raw_stack = Some((reg, 8));
                    }
                }
                ArgType::PtrToU32ReadWrite => {
                    // check_func_arg: the fixed-size write (a read-only map is refused), the
                    // value read first (initialised), then MEM_ALIGNED.
                    check_mem_arg_type(regno, &reg)?;
                    self.check_helper_mem(st, regno, &reg, 4, true)?;
                    self.check_helper_mem(st, regno, &reg, 4, false)?;
                    let desc = match reg.ty {
                        RegType::PtrToStack => Some(("stack ", "", 0)),
                        RegType::PtrToMapValue => Some(("value ", "", 0)),
                        RegType::PtrToMapKey => Some(("key ", "", 0)),
                        RegType::PtrToPacket | RegType::PtrToPacketMeta => {
                            Some(("packet ", "2+", 2))
                        }
                        _ => None,
                    };
                    if let Some((d, prefix, bias)) = desc {
                        check_strict_alignment_at(d, prefix, bias, &reg, 0, 4)?;
                    }
                    if reg.ty == RegType::PtrToStack {
                        if !reg.s.is_const() {
                            return rej(format!(
                                "R{regno} variable-offset stack memory written by a helper is not supported by kbpf"
                            ));
                        }
                        raw_stack = Some((reg, 4));
                    }
                }
                ArgType::ConstSize | ArgType::ConstSizeOrZero => {
                    if reg.ty != RegType::Scalar {
                        return rej(format!("R{regno} type={} expected=scalar", reg.type_str()));
                    }
                }
            }
        }
        // check_map_func_compatibility.
        if let Some(m) = map {
            let mt = self.maps[m as usize].desc.map_type;
            let ok_map = match mt {
                _ if !map_func_compatible(mt, id) => false,
                SOCKMAP | SOCKHASH if id == 3 && self.prog == ProgType::SockOps => true,
                SOCKMAP | SOCKHASH if matches!(id, 2 | 3) => {
                    // may_update_sockmap.
                    let ok = matches!(
                        self.prog,
                        ProgType::SocketFilter
                            | ProgType::SchedCls
                            | ProgType::SchedAct
                            | ProgType::Xdp
                            | ProgType::SkReuseport
                            | ProgType::FlowDissector
                            | ProgType::SkLookup
                    );
                    if !ok {
                        self.verbose("cannot update sockmap in this context\n");
                    }
                    ok
                }
                BPF_MAP_TYPE_PROG_ARRAY => id == helpers::BPF_FUNC_TAIL_CALL,
                BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS => {
                    id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM
                }
                BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH => {
                    id == helpers::BPF_FUNC_REDIRECT_MAP || id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM
                }
                // Ring buffers: only the ring buffer helpers.
                27 => matches!(id, 130 | 131 | 134 | 198..=200),
                BPF_MAP_TYPE_CPUMAP | BPF_MAP_TYPE_XSKMAP => {
                    id == helpers::BPF_FUNC_REDIRECT_MAP
                        || (mt == BPF_MAP_TYPE_XSKMAP && id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM)
                }
                _ => true,
            };
            let ok_func = match id {
                107 | 108 => mt == SK_STORAGE,
                81 => matches!(mt, 19 | 21),
                82 => matches!(mt, REUSEPORT_SOCKARRAY | SOCKMAP | SOCKHASH),
                53 => mt == SOCKMAP,
                70 => mt == SOCKHASH,
                helpers::BPF_FUNC_TAIL_CALL => mt == BPF_MAP_TYPE_PROG_ARRAY,
                // perf_event_read, perf_event_output, perf_event_read_value, skb_output,
                // xdp_output: a PERF_EVENT_ARRAY.
                22 | 25 | 55 | 111 | 121 => mt == 4,
                130 | 131 | 134 | 198..=200 => mt == 27,
                helpers::BPF_FUNC_REDIRECT_MAP => matches!(
                    mt,
                    BPF_MAP_TYPE_DEVMAP
                        | BPF_MAP_TYPE_DEVMAP_HASH
                        | BPF_MAP_TYPE_CPUMAP
                        | BPF_MAP_TYPE_XSKMAP
                ),
                _ => true,
            };
            if id == helpers::BPF_FUNC_TAIL_CALL && !ok_func {
                return rej_hint(
                    "expected prog array map for tail call",
                    "bpf_tail_call needs a BPF_MAP_TYPE_PROG_ARRAY map",
                );
            }
            if !ok_map || !ok_func {
                return rej_hint(
                    format!("cannot pass map_type {mt} into func {}#{id}", proto.name),
                    "this helper does not work on this map type (map-in-map outers only support bpf_map_lookup_elem; update them from user space)",
                );
            }
            // Record which map reached this call site (poisoned if several did).
            let r = self.maps[m as usize].r;
            self.aux[idx].map = merge_map_use(self.aux[idx].map, MapUse::Map(r));
        }
        // record_func_map, after every argument: a read-only map may not be changed through
        // helpers either.
        if let Some(m) = map
            && self.maps[m as usize].desc.map_flags & BPF_F_RDONLY_PROG != 0
            && matches!(id, 2 | 3 | 87 | 88)
        {
            return rej("write into map forbidden");
        }
        if let Some((reg, size)) = raw_stack
            && reg.s.is_const()
        {
            mark_stack_written(st, &reg, size);
        }
        if id == helpers::BPF_FUNC_TAIL_CALL {
            self.check_reference_leak(st, "tail_call")?;
        }
        if id == 81 {
            // get_local_storage() cannot fail, so it has no flags.
            let flags = st.cur().regs[2];
            if !(flags.ty == RegType::Scalar && flags.s.is_const() && flags.s.var_off.value == 0) {
                return rej("get_local_storage() doesn't support non-zero flags");
            }
        }
        if let Some(r) = release {
            self.release_reference(st, r, proto.name, id)?;
        }
        self.aux[idx].helper = Some(id);
        // Clobber caller-saved registers and set r0.
        for r in 1..=5 {
            self.scratched_regs |= 1 << r;
            self.set_reg(st, r, RegState::NOT_INIT);
        }
        self.scratched_regs |= 1;
        let r0 = match proto.ret {
            // do_refine_retval_range: the CPU number is below nr_cpu_ids.
            RetType::Integer if id == 8 && self.opts.nr_cpu_ids.is_some_and(|n| n > 0) => {
                let max = self.opts.nr_cpu_ids.unwrap_or(1) as i64 - 1;
                let mut v = RegState::unknown();
                v.s.umin_value = 0;
                v.s.u32_min_value = 0;
                v.s.smin_value = 0;
                v.s.s32_min_value = 0;
                v.s.umax_value = max as u64;
                v.s.u32_max_value = max as u32;
                v.s.smax_value = max;
                v.s.s32_max_value = max as i32;
                v.s.sync();
                v
            }
            RetType::Integer => RegState::unknown(),
            RetType::IntegerUpToSize => {
                // do_refine_retval_range: a negative errno, or at most the size asked for.
                let mut v = RegState::unknown();
                let max = size_max.unwrap_or(0).min(i32::MAX as u64) as i64;
                v.s.smax_value = max;
                v.s.s32_max_value = max as i32;
                v.s.smin_value = -MAX_ERRNO;
                v.s.s32_min_value = -MAX_ERRNO as i32;
                v.s.sync();
                v
            }
            RetType::Void => RegState::NOT_INIT,
            RetType::RingbufMemOrNull => {
                let mut v = RegState::pointer(RegType::PtrToRingbufMem);
                v.mem_size = size_max.unwrap_or(0).min(u32::MAX as u64) as u32;
                v.maybe_null = true;
                let r = self.acquire_reference(st, idx);
                v.id = r;
                v.ref_obj_id = r;
                v
            }
            RetType::PtrToSocketOrNull
            | RetType::PtrToSockCommonOrNull
            | RetType::PtrToTcpSockOrNull => {
                let mut v = RegState::pointer(match proto.ret {
                    RetType::PtrToSocketOrNull => RegType::PtrToSocket,
                    RetType::PtrToSockCommonOrNull => RegType::PtrToSockCommon,
                    _ => RegType::PtrToTcpSock,
                });
                v.maybe_null = true;
                v.id = self.new_id();
                if matches!(id, 95 | 96) {
                    // is_ptr_cast_function: the result holds the argument's reference.
                    v.ref_obj_id = meta_ref;
                } else if matches!(id, 84 | 85 | 99) {
                    // is_acquire_function.
                    let r = self.acquire_reference(st, idx);
                    v.id = r;
                    v.ref_obj_id = r;
                }
                v
            }
            RetType::PtrToMapValue => {
                let mut v = RegState::pointer(RegType::PtrToMapValue);
                v.map = map.unwrap_or(NO_MAP);
                v
            }
            RetType::PtrToMapValueOrNull => {
                let m = map.unwrap_or(NO_MAP);
                let d = &self.maps[m as usize].desc;
                let elide = matches!(d.map_type, BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY)
                    && d.map_flags & BPF_F_INNER_MAP == 0
                    && const_key.is_some_and(|k| k < d.max_entries as u64);
                let inner = self.maps.get(m as usize).and_then(|s| s.inner);
                let mut v = match inner {
                    // Newer verifiers type an outer map-in-map lookup as the inner map
                    // pointer straight away (`map_ptr_or_null`); older ones as a map value
                    // that becomes `map_ptr` at the NULL check (mark_ptr_or_null_reg).
                    Some(inner) if self.opts.kernel.inner_map_lookup == InnerMapLookup::MapPtr => {
                        let mut v = RegState::pointer(RegType::ConstPtrToMap);
                        v.map = inner;
                        v
                    }
                    _ => {
                        let mut v = RegState::pointer(RegType::PtrToMapValue);
                        v.map = m;
                        v
                    }
                };
                if !elide {
                    v.maybe_null = true;
                    v.id = self.new_id();
                } else if d.spin_lock_off.is_some() {
                    v.id = self.new_id();
                }
                // A lookup in a socket map gives a socket straight away (the kernel this
                // follows types it `sock_or_null`/`xdp_sock_or_null`, not a map value).
                let mt = self.maps[m as usize].desc.map_type;
                if id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM
                    && matches!(mt, SOCKMAP | SOCKHASH | XSKMAP)
                {
                    v.ty = if mt == XSKMAP {
                        RegType::PtrToXdpSock
                    } else {
                        RegType::PtrToSocket
                    };
                }
                // A socket from a sockmap/sockhash lookup is referenced (is_acquire_function).
                if id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM && matches!(mt, SOCKMAP | SOCKHASH) {
                    let r = self.acquire_reference(st, idx);
                    v.id = r;
                    v.ref_obj_id = r;
                }
                v
            }
        };
        self.set_reg(st, 0, r0);
        if proto.changes_pkt_data {
            // `clear_all_pkt_pointers`.
            st.for_each_reg(|r| {
                if matches!(
                    r.ty,
                    RegType::PtrToPacket | RegType::PtrToPacketMeta | RegType::PtrToPacketEnd
                ) {
                    *r = RegState::unknown();
                }
            });
        }
        Ok(())
    }

    /// `check_mem_size_reg` + `check_helper_mem_access` for a (pointer, size) pair.
    #[allow(clippy::too_many_arguments)] // the kernel's argument list: (pointer, size) and how they were reached
    fn check_mem_size(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        size: &RegState,
        zero_ok: bool,
        null_ok: bool,
        write: bool,
    ) -> R<()> {
        let sno = regno + 1;
        if size.ty != RegType::Scalar {
            return rej(format!("R{sno} type={} expected=scalar", size.type_str()));
        }
        if size.s.smin_value < 0 {
            return rej(format!(
                "R{sno} min value is negative, either use unsigned or 'var &= const'"
            ));
        }
        if size.s.umin_value == 0 && !zero_ok {
            return rej(format!(
                "R{sno} invalid zero-sized read: u64=[{},{}]",
                size.s.umin_value as i64, size.s.umax_value as i64
            ));
        }
        if size.s.umax_value >= BPF_MAX_VAR_OFF {
            return rej(format!(
                "R{sno} unbounded memory access, use 'var &= const' or 'if (var < const)'"
            ));
        }
        if size.s.umax_value == 0 {
            // A zero-sized access still needs a pointer inside its object: kbpf has no
            // variable-offset stack accesses, so such a pointer is refused here as for any
            // other size (the kernel checks its whole range).
            if reg.ty == RegType::PtrToStack {
                if !reg.s.is_const() {
                    return self.check_helper_stack_var(st, regno, reg, 0, write);
                }
                // check_stack_slot_within_bounds: even a zero-sized access must start inside
                // the frame (fp-512 .. fp-1).
                let off = reg.off as i64 + reg.s.var_off.value as i64;
                if off >= 0 || off < -(MAX_BPF_STACK as i64) {
                    return rej(format!(
                        "invalid {} stack R{regno} off={off} size=0",
                        if write { "write to" } else { "read from" }
                    ));
                }
            }
            return Ok(());
        }
        if null_ok {
            return rej(format!("R{regno} type={} expected=fp", reg.type_str()));
        }
        self.check_helper_mem(st, regno, reg, size.s.umax_value as i32, write)
    }

    /// `check_helper_mem_access`: `size` bytes readable at the pointer in `regno`.
    fn check_helper_mem(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        size: i32,
        write: bool,
    ) -> R<()> {
        match reg.ty {
            RegType::PtrToStack if !reg.maybe_null => {
                if !reg.s.is_const() {
                    if size == 0 {
                        return rej("invalid zero-sized read");
                    }
                    return self.check_helper_stack_var(st, regno, reg, size, write);
                }
                // check_stack_range_initialized: a zero-sized access first.
                if size == 0 {
                    return rej("invalid zero-sized read");
                }
                let off = reg.off as i64 + reg.s.var_off.value as i64;
                if off < -(MAX_BPF_STACK as i64) || off + size as i64 > 0 || size <= 0 {
                    return rej(format!(
                        "invalid {} stack R{regno} off={off} size={size}",
                        if write { "write to" } else { "read from" }
                    ));
                }
                let Some(frame) = st.frames.get_mut(reg.frameno as usize) else {
                    return rej(format!(
                        "R{regno} points to the stack of a returned function"
                    ));
                };
                frame.grow_to(off as i32);
                // Memory the helper writes need not be initialised (raw_mode).
                for b in 0..if write { 0 } else { size as i64 } {
                    let a = off + b;
                    let spi = ((-a - 1) / BPF_REG_SIZE as i64) as usize;
                    let ti = ((-a - 1) % BPF_REG_SIZE as i64) as usize;
                    let slot = frame.stack.get(spi).copied().unwrap_or(StackSlot::INVALID);
                    if slot.types[ti] == SlotType::Invalid && !self.opts.allow_uninit_stack {
                        return rej_hint(
                            format!("invalid read from stack R{regno} off {off}+{b} size {size}"),
                            "the key/value buffer on the stack is not fully initialised; zero it first (e.g. __builtin_memset or = {})",
                        );
                    }
                }
                self.check_stack_depth(st)
            }
            RegType::PtrToPacket | RegType::PtrToPacketMeta if !reg.maybe_null => {
                self.check_packet_access(regno, reg, reg.off, size)
            }
            RegType::PtrToMem | RegType::PtrToRingbufMem if !reg.maybe_null => {
                self.check_mem_region(regno, reg, reg.off, size, reg.mem_size, false)
            }
            RegType::PtrToMapValue | RegType::PtrToMapKey if !reg.maybe_null => {
                let d = &self.maps[reg.map as usize].desc;
                let mem = if reg.ty == RegType::PtrToMapKey {
                    if write {
                        return rej(format!("R{regno} cannot write into map_key"));
                    }
                    d.key_size
                } else {
                    check_map_access_type(d, reg.off, size, write)?;
                    d.value_size
                };
                self.check_mem_region(regno, reg, reg.off, size, mem, false)?;
                if reg.ty == RegType::PtrToMapValue {
                    self.check_special_fields(reg, reg.off, size)?;
                }
                Ok(())
            }
            _ => rej_hint(
                format!(
                    "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
                    reg.type_str()
                ),
                "pass a pointer to memory (e.g. a stack variable's address), not a number",
            ),
        }
    }
}

/// `save_register_state`: spill `v` into the top `size` bytes of the slot.
fn save_register_state(slot: &mut StackSlot, v: RegState, size: usize) {
    slot.spilled = v;
    for i in (BPF_REG_SIZE - size..BPF_REG_SIZE).rev() {
        slot.types[i] = SlotType::Spill;
    }
    for i in 0..BPF_REG_SIZE - size {
        if slot.types[i] == SlotType::Spill {
            slot.types[i] = SlotType::Misc;
        }
    }
}

/// `get_constant_map_key`: the key's value if the stack holds a known constant there.
fn constant_map_key(st: &VerifierState, key: &RegState, key_size: u32) -> Option<u64> {
    if !key.s.is_const() {
        return None;
    }
    let off = key.off as i64 + key.s.var_off.value as i64;
    if off >= 0 || off < -(MAX_BPF_STACK as i64) {
        return None;
    }
    let frame = st.frames.get(key.frameno as usize)?;
    let spi = ((-off - 1) / BPF_REG_SIZE as i64) as usize;
    let slot = frame.stack.get(spi)?;
    let first = ((-off - 1) % BPF_REG_SIZE as i64) as usize;
    // Zero bytes from the key's start.
    let mut zero = 0;
    let mut i = first as i64;
    while i >= 0 && slot.types[i as usize] == SlotType::Zero {
        zero += 1;
        i -= 1;
    }
    if zero >= key_size {
        return Some(0);
    }
    if !slot.is_spill() || slot.spilled.ty != RegType::Scalar {
        return None;
    }
    if slot.spill_size() != key_size as usize || off % BPF_REG_SIZE as i64 != 0 {
        return None;
    }
    slot.spilled
        .s
        .is_const()
        .then_some(slot.spilled.s.var_off.value)
}

/// `find_good_pkt_pointers`.
fn find_good_pkt_pointers(st: &mut VerifierState, reg: &RegState, range_right_open: bool) {
    if reg.off < 0 || (reg.off == 0 && range_right_open) {
        return;
    }
    if reg.s.umax_value > MAX_PACKET_OFF || reg.s.umax_value + reg.off as u64 > MAX_PACKET_OFF {
        return;
    }
    let mut new_range = reg.off;
    if range_right_open {
        new_range += 1;
    }
    let (ty, id) = (reg.ty, reg.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.range = r.range.max(new_range);
        }
    });
}

/// Combines what reached a call site: one map, or poisoned.
fn merge_map_use(old: MapUse, new: MapUse) -> MapUse {
    match (old, new) {
        (MapUse::None, n) => n,
        (MapUse::Map(a), MapUse::Map(b)) if a == b => old,
        _ => MapUse::Poisoned,
    }
}

/// `reg_not_null`: the pointer types whose base is never NULL, with an offset that cannot
/// wrap it to zero. The context, the stack and packet pointers are *not* among them: the
/// kernel explores both sides of `if (ctx == 0)`, and so must kbpf (a loop whose exit depends
/// on it is rejected there).
fn reg_not_null(r: &RegState) -> bool {
    let max = BPF_MAX_VAR_OFF as i64;
    !r.maybe_null
        && r.s.smin_value > -max
        && r.s.smax_value < max
        && matches!(
            r.ty,
            RegType::PtrToMapValue
                | RegType::PtrToMapKey
                | RegType::ConstPtrToMap
                | RegType::PtrToSocket
                | RegType::PtrToTcpSock
                | RegType::PtrToSockCommon
                | RegType::PtrToXdpSock
                | RegType::PtrToMem
                | RegType::PtrToRingbufMem
        )
}

/// `mark_ptr_not_null_reg`: `r` is known not to be NULL; a lookup in a socket map gives a
/// socket, one in a map-in-map the inner map.
fn mark_ptr_not_null_reg(maps: &[MapSlot], r: &mut RegState) {
    r.maybe_null = false;
    if r.ty != RegType::PtrToMapValue {
        return;
    }
    let Some(m) = maps.get(r.map as usize) else {
        return;
    };
    if matches!(m.desc.map_type, SOCKMAP | SOCKHASH | XSKMAP) {
        r.ty = if m.desc.map_type == XSKMAP {
            RegType::PtrToXdpSock
        } else {
            RegType::PtrToSocket
        };
    } else if let Some(inner) = m.inner {
        r.ty = RegType::ConstPtrToMap;
        r.map = inner;
        r.off = 0;
    }
}

/// Map types of kernel objects (`crate::types` has the array/hash ones).
const SOCKMAP: u32 = 15;
const XSKMAP: u32 = 17;
const SOCKHASH: u32 = 18;
const REUSEPORT_SOCKARRAY: u32 = 20;
const SK_STORAGE: u32 = 24;

/// `check_map_func_compatibility`, from the map's side, for the map types whose helpers
/// are a closed set (the rest are checked where the helper is).
fn map_func_compatible(map_type: u32, id: i32) -> bool {
    match map_type {
        // perf_event_read, perf_event_output, perf_event_read_value, skb_output, xdp_output
        4 => matches!(id, 22 | 25 | 55 | 111 | 121),
        // get_stackid
        7 => id == 27,
        // skb_under_cgroup, current_task_under_cgroup
        8 => matches!(id, 33 | 37),
        // sk_redirect_map, sock_map_update, msg_redirect_map, sk_select_reuseport, lookup,
        // and (may_update_sockmap) update/delete
        SOCKMAP => matches!(id, 52 | 53 | 60 | 82 | 1 | 2 | 3),
        // sk_redirect_hash, sock_hash_update, msg_redirect_hash, sk_select_reuseport, ...
        SOCKHASH => matches!(id, 72 | 70 | 71 | 82 | 1 | 2 | 3),
        REUSEPORT_SOCKARRAY => id == 82,
        // sk_storage_get/delete, kptr_xchg
        SK_STORAGE => matches!(id, 107 | 108 | 194),
        // get_local_storage
        19 | 21 => id == 81,
        // push, pop, peek
        22 | 23 => matches!(id, 87..=89),
        // user_ringbuf_drain
        31 => id == 209,
        _ => true,
    }
}

/// `check_map_access_type`: a `BPF_F_RDONLY_PROG` map's values may not be written by the
/// program, a `BPF_F_WRONLY_PROG` map's not read (`bpf_map_flags_to_cap`).
fn check_map_access_type(d: &MapDesc, off: i32, size: i32, write: bool) -> R<()> {
    let (what, forbidden) = if write {
        ("write into", d.map_flags & BPF_F_RDONLY_PROG != 0)
    } else {
        ("read from", d.map_flags & BPF_F_WRONLY_PROG != 0)
    };
    if forbidden {
        return rej(format!(
            "{what} map forbidden, value_size={} off={off} size={size}",
            d.value_size
        ));
    }
    Ok(())
}

/// `check_generic_ptr_alignment` with `strict`: `reg + off` must be aligned to `size` for every
/// value the variable offset can take.
fn check_strict_alignment(desc: &str, reg: &RegState, off: i32, size: i32) -> R<()> {
    check_strict_alignment_at(desc, "", 0, reg, off, size)
}

/// [`check_strict_alignment`] with a bias added first (`check_pkt_ptr_alignment`'s
/// `ip_align` of 2, printed as `prefix`).
fn check_strict_alignment_at(
    desc: &str,
    prefix: &str,
    bias: i64,
    reg: &RegState,
    off: i32,
    size: i32,
) -> R<()> {
    if size == 1 {
        return Ok(());
    }
    let at = reg.s.var_off.add(crate::tnum::Tnum::constant(
        (bias + reg.off as i64 + off as i64) as u64,
    ));
    if at.is_aligned(size as u64) {
        return Ok(());
    }
    let var = if reg.s.is_const() {
        (reg.s.var_off.value as i64).to_string()
    } else {
        reg.s.var_off.to_string()
    };
    rej(format!(
        "misaligned {desc}access off {prefix}{var}+{}+{off} size {size}",
        reg.off
    ))
}

/// `MAX_ERRNO`: the most negative errno a helper returns.
const MAX_ERRNO: i64 = 4095;

/// After a helper wrote `size` bytes of stack at `reg` (`ARG_PTR_TO_UNINIT_MEM`): the bytes
/// hold unknown data (`STACK_MISC`), and a spill they touch is gone, as after the kernel's
/// byte-wise `BPF_WRITE`s of check_helper_call.
fn mark_stack_written(st: &mut VerifierState, reg: &RegState, size: u64) {
    let Some(frame) = st.frames.get_mut(reg.frameno as usize) else {
        return;
    };
    let off = reg.off as i64 + reg.s.var_off.value as i64;
    for b in 0..size as i64 {
        let a = off + b;
        if a >= 0 {
            break;
        }
        let spi = ((-a - 1) / BPF_REG_SIZE as i64) as usize;
        let ti = ((-a - 1) % BPF_REG_SIZE as i64) as usize;
        frame.grow_to(a as i32);
        let slot = &mut frame.stack[spi];
        if slot.is_spill() {
            for t in slot.types.iter_mut() {
                if *t == SlotType::Spill {
                    *t = SlotType::Misc;
                }
            }
            slot.spilled = RegState::NOT_INIT;
        }
        slot.types[ti] = SlotType::Misc;
    }
}

/// `check_reg_type` for `ARG_PTR_TO_MEM` arguments: the register must be one of the memory
/// pointer types (a NULL only where the argument allows it, checked by the caller).
fn check_mem_arg_type(regno: u8, reg: &RegState) -> R<()> {
    let ok = !reg.maybe_null
        && matches!(
            reg.ty,
            RegType::PtrToStack
                | RegType::PtrToPacket
                | RegType::PtrToPacketMeta
                | RegType::PtrToMapKey
                | RegType::PtrToMapValue
                | RegType::PtrToMem
                | RegType::PtrToRingbufMem
        );
    if ok {
        return Ok(());
    }
    rej_hint(
        format!(
            "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
            reg.type_str()
        ),
        "pass a pointer to memory (e.g. a stack variable's address), not a number",
    )
}

/// `check_ptr_alignment` of an atomic access (always strict). The stack's own access check
/// aligns it already.
fn atomic_alignment(base: &RegState, off: i32, size: i32) -> R<()> {
    let desc = match base.ty {
        RegType::PtrToStack => return Ok(()),
        RegType::PtrToMapValue => "value ",
        RegType::PtrToMapKey => "key ",
        RegType::PtrToCtx => "context ",
        _ => "",
    };
    check_strict_alignment(desc, base, off, size)
}

//! Callbacks: static subprograms a helper calls (`bpf_loop`, `bpf_for_each_map_elem`),
//! passed as `ld_imm64` of `BPF_PSEUDO_FUNC` (`PTR_TO_FUNC`).
//!
//! The kernel does not know how often the helper calls its callback, so it simulates every
//! count (`push_callback_call`): at the helper call the path continues as if the callback
//! had run as often as simulated so far, and a copy enters the callback once more. The
//! callback returns to the helper's call instruction (`prepare_func_exit`), which queues the
//! next iteration, until `bpf_loop`'s iteration count is reached or a state at the call is
//! covered by an earlier one still being explored (`is_state_visited`'s `calls_callback`
//! case: the iterations have converged). The callback's r0 must be in [0, 1].
//!
//! `bpf_loop`'s callback frame gets `r1` = the iteration (unknown scalar) and `r2` = the
//! helper's context argument (`set_loop_callback_state`); `bpf_for_each_map_elem`'s gets the
//! map, a key and a value of it and the context (`map_set_for_each_callback_args`), and is
//! simulated until the iterations converge. For the rewrite, each `bpf_loop` call site records
//! whether it can be inlined (`loop_inline_state`): flags the constant 0 and the same
//! callback on every path.

use kbpf_isa::decode::{CallTarget, Instruction};
use kbpf_isa::insn::MAX_CALL_FRAMES;

use super::{Checker, Pending, R, rej, rej_errno, rej_hint};
use crate::LoopInline;
use crate::helpers::{BPF_FUNC_FOR_EACH_MAP_ELEM, BPF_FUNC_LOOP};
use crate::state::{FuncState, VerifierState, states_equal};
use crate::types::{RegState, RegType};

/// `is_sync_callback_calling_function`, of the helpers kbpf implements.
pub(crate) fn calls_callback(helper: i32) -> bool {
    helper == BPF_FUNC_LOOP || helper == BPF_FUNC_FOR_EACH_MAP_ELEM
}

/// The map types with `map_for_each_callback`: hash, array, and their per-CPU and LRU kinds.
const FOR_EACH_MAP_TYPES: [u32; 6] = [1, 2, 5, 6, 9, 10];

/// `callback_ret_range` of `bpf_loop`'s callback: 0 continues, 1 stops.
const LOOP_CALLBACK_RET_RANGE: (i64, i64) = (0, 1);

impl Checker<'_> {
    /// Whether instruction `idx` calls a helper that calls a callback (`calls_callback`).
    pub(super) fn calls_callback_at(&self, idx: usize) -> bool {
        matches!(
            self.decoded.get(idx),
            Some(Some(Instruction::Call(CallTarget::Helper(id)))) if calls_callback(*id)
        )
    }

    /// The `calls_callback` case of `is_state_visited` for an explored state `old` at `idx`
    /// still being explored: a later callback iteration that `old` covers.
    pub(super) fn callback_converged(&self, old: &VerifierState, cur: &VerifierState) -> bool {
        states_equal(old, cur, self.opts.allow_uninit_stack)
    }

    /// `ld_imm64 BPF_PSEUDO_FUNC` at `idx` (`check_ld_imm64`): a pointer to the static
    /// subprogram at `idx + 1 + imm`.
    pub(super) fn check_pseudo_func(&mut self, idx: usize, imm: i32) -> R<RegState> {
        let target = (idx as i64 + 1 + imm as i64) as usize;
        let Ok(subprog) = self.subprogs.binary_search(&target) else {
            return rej(format!("verifier bug: no subprogram at insn {target}"));
        };
        if !self.opts.func_info {
            return rej_hint(
                "missing btf func_info",
                "callbacks need the program's BTF (compile with -g and load the object's .BTF.ext)",
            );
        }
        // The entry is never static to the kernel (its func_info says global, or the
        // program has none); kbpf's global function list leaves it out, so check it here.
        if subprog == 0 || self.global_func(target).is_some() {
            return rej_hint(
                "callback function not static",
                "declare the callback `static`",
            );
        }
        let mut v = RegState::pointer(RegType::PtrToFunc);
        v.mem_size = subprog as u32;
        Ok(v)
    }

    /// `call bpf_loop` at `idx`: the helper's argument checks and result, and the next
    /// callback iteration queued while fewer than `nr_loops` were simulated.
    pub(super) fn check_bpf_loop(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        pending: &mut Vec<Pending>,
    ) -> R<()> {
        let before = st.clone();
        self.check_helper_call(st, idx, BPF_FUNC_LOOP)?;
        let caller = before.cur();
        let (nr_loops, func, flags) = (caller.regs[1], caller.regs[2], caller.regs[4]);
        let subprog = func.mem_size as usize;
        // update_loop_inline_state
        let flags_zero =
            flags.ty == RegType::Scalar && flags.s.is_const() && flags.s.var_off.value == 0;
        let fit = match self.aux[idx].loop_inline {
            None => flags_zero,
            Some(s) => s.fit_for_inline && flags_zero && s.callback_subprog == subprog,
        };
        self.aux[idx].loop_inline = Some(LoopInline {
            fit_for_inline: fit,
            callback_subprog: subprog,
        });
        // The kernel compares the iterations simulated with the count's maximum whatever
        // the register holds (a pointer's is its variable offset's).
        if (caller.callback_depth as u64) < nr_loops.s.umax_value {
            // set_loop_callback_state: the iteration and the context.
            let args = [RegState::unknown(), caller.regs[3]];
            self.push_callback_call(before, idx, subprog, &args, pending)?;
        } else if self.level() >= 2 {
            let frame = st.frames.len() - 1;
            self.log
                .push_str(&format!("frame{frame} bpf_loop iteration limit reached\n"));
        }
        st.cur_mut().callback_depth = 0;
        Ok(())
    }

    /// `call bpf_for_each_map_elem` at `idx`: the helper's argument checks, then the
    /// callback entered once more on every visit (`is_state_visited` ends the iterations
    /// once they converge).
    pub(super) fn check_for_each_map_elem(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        pending: &mut Vec<Pending>,
    ) -> R<()> {
        let before = st.clone();
        self.check_helper_call(st, idx, BPF_FUNC_FOR_EACH_MAP_ELEM)?;
        let caller = before.cur();
        let (map, func, ctx) = (caller.regs[1], caller.regs[2], caller.regs[3]);
        // set_map_elem_callback_state: only some map types call back.
        let map_type = self.maps.get(map.map as usize).map(|m| m.desc.map_type);
        if !map_type.is_some_and(|t| FOR_EACH_MAP_TYPES.contains(&t)) {
            return rej_errno("callback function not allowed for map", crate::ENOTSUPP);
        }
        // map_set_for_each_callback_args: the map, a key and a value of it, the context.
        let mut key = RegState::pointer(RegType::PtrToMapKey);
        key.map = map.map;
        let mut value = RegState::pointer(RegType::PtrToMapValue);
        value.map = map.map;
        let args = [map, key, value, ctx];
        self.push_callback_call(before, idx, func.mem_size as usize, &args, pending)
    }

    /// `push_callback_call` + `setup_func_entry`: queue `st` (the state at the call,
    /// arguments intact) entering the callback once more, with `args` in r1, r2, ….
    fn push_callback_call(
        &mut self,
        mut st: VerifierState,
        idx: usize,
        subprog: usize,
        args: &[RegState],
        pending: &mut Vec<Pending>,
    ) -> R<()> {
        if st.frames.len() >= MAX_CALL_FRAMES {
            return rej_errno(
                format!(
                    "the call stack of {} frames is too deep",
                    st.frames.len() + 1
                ),
                crate::E2BIG,
            );
        }
        let mut callee = FuncState::new(st.frames.len() as u8, idx, subprog);
        for (r, a) in callee.regs[1..].iter_mut().zip(args) {
            *r = *a;
        }
        callee.in_callback_fn = true;
        self.callback_subprogs[subprog] = true;
        callee.callback_refs = st.refs.clone();
        st.cur_mut().callback_depth += 1;
        st.frames.push(callee);
        st.callback_unroll_depth += 1;
        self.check_stack_depth(&st)?;
        let start = self.subprogs[subprog];
        self.push_branch(pending, st, start, idx)
    }

    /// `prepare_func_exit` of a callback frame: r0 in the callback's range, the caller's
    /// references untouched; back to the helper call, whose registers are as before it.
    /// Returns the instruction to continue at.
    pub(super) fn callback_exit(&mut self, st: &mut VerifierState) -> R<usize> {
        let r0 = st.cur().regs[0];
        self.scratched_regs |= 1;
        if r0.ty != RegType::Scalar {
            return rej("R0 not a scalar value");
        }
        let range = LOOP_CALLBACK_RET_RANGE;
        if r0.s.smin_value < range.0 || r0.s.smax_value > range.1 {
            return rej(crate::ctx::cgroup::invalid_scalar_msg(
                "At callback return",
                r0.s.smin_value,
                r0.s.smax_value,
                range,
            ));
        }
        if st.lock.is_some() {
            return rej("bpf_spin_unlock is missing");
        }
        if st.refs != st.cur().callback_refs {
            for (id, insn) in &st.refs {
                if !st.cur().callback_refs.contains(&(*id, *insn)) {
                    self.verbose(&format!("Unreleased reference id={id} alloc_insn={insn}\n"));
                }
            }
            return rej("callback function would lead to reference leak");
        }
        let callee = st.frames.pop().unwrap_or_else(|| FuncState::new(0, 0, 0));
        Ok(callee.callsite)
    }
}

#[cfg(test)]
mod tests {
    use kbpf_isa::Insn;
    use kbpf_isa::insn::*;

    use crate::{MapDesc, Options, ProgType, verify};

    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn movx(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    fn call(id: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
    }
    /// `r<dst> = <func at pc + 1 + off>` (two slots).
    fn ld_func(dst: u8, off: i32) -> [Insn; 2] {
        [
            Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, BPF_PSEUDO_FUNC, 0, off),
            Insn::new(0, 0, 0, 0, 0),
        ]
    }

    fn run(insns: &[Insn], func_info: bool) -> crate::Verdict {
        let env: Vec<MapDesc> = Vec::new();
        verify(
            insns,
            &env,
            &Options::new(ProgType::SocketFilter).func_info(func_info),
        )
    }

    /// main: `*(u64 *)(r10 - 8) = 0; bpf_loop(nr, cb, fp-8, 0); r0 = 0; exit` with `cb`'s body
    /// given; the callback starts at index 10.
    fn prog(nr: i32, cb: &[Insn]) -> Vec<Insn> {
        let mut p = vec![
            Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 0), // 0
            mov(1, nr),                                         // 1
        ];
        p.extend(ld_func(2, 10 - 3)); // 2, 3: the callback at 10
        p.extend([
            movx(3, 10),                                         // 4
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -8), // 5
            mov(4, 0),                                           // 6
            call(181),                                           // 7
            mov(0, 0),                                           // 8
            exit(),                                              // 9
        ]);
        p.extend(cb);
        p
    }

    #[test]
    fn callback_returning_0_is_accepted() {
        let p = prog(10, &[mov(0, 0), exit()]);
        let v = run(&p, true);
        assert!(v.accepted(), "{}", v.log);
        assert_eq!(
            v.aux[7].loop_inline,
            Some(crate::LoopInline {
                fit_for_inline: true,
                callback_subprog: 1
            })
        );
    }

    #[test]
    fn callback_return_range_is_enforced() {
        let p = prog(10, &[mov(0, 2), exit()]);
        let v = run(&p, true);
        assert!(!v.accepted());
        assert!(
            v.log.contains(
                "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]"
            ),
            "{}",
            v.log
        );
    }

    /// The callback sees the context pointer in r2 and r1 as an unknown scalar: using r1 as
    /// a pointer fails.
    #[test]
    fn callback_registers() {
        // *(u64 *)(r2 + 0) = 1 is fine (the caller's stack); *(u8 *)(r1 + 0) is not.
        let ok = prog(
            3,
            &[
                Insn::new(BPF_ST | BPF_MEM | BPF_DW, 2, 0, 0, 1),
                mov(0, 0),
                exit(),
            ],
        );
        assert!(run(&ok, true).accepted());
        let bad = prog(
            3,
            &[
                Insn::new(BPF_LDX | BPF_MEM | BPF_B, 0, 1, 0, 0),
                mov(0, 0),
                exit(),
            ],
        );
        let v = run(&bad, true);
        assert!(!v.accepted());
        assert!(
            v.log.contains("R1 invalid mem access 'scalar'"),
            "{}",
            v.log
        );
    }

    /// What the callback stored is seen after the call: the caller reads back the slot the
    /// callback set to 7 and, only then, reads the clobbered r5.
    #[test]
    fn iterations_reach_the_caller_state() {
        // callback: *(u64 *)(r2 + 0) = 7; r0 = 0
        let mut p = prog(
            1,
            &[
                Insn::new(BPF_ST | BPF_MEM | BPF_DW, 2, 0, 0, 7),
                mov(0, 0),
                exit(),
            ],
        );
        // after the call: r0 = *(u64 *)(r10 - 8); if r0 != 7 goto exit; r0 = r5 — the slot
        // is 0 (no iteration) or 7 (one), and only the iteration's 7 reaches the bad read.
        p[8] = Insn::new(BPF_LDX | BPF_MEM | BPF_DW, 0, 10, -8, 0);
        p[9] = Insn::new(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 1, 7);
        p.insert(10, movx(0, 5));
        p.insert(11, exit());
        // the ld_imm64 now points 2 further
        p[2].imm += 2;
        let v = run(&p, true);
        assert!(!v.accepted(), "{}", v.log);
        assert!(v.log.contains("R5 !read_ok"), "{}", v.log);
    }

    /// The entry cannot be a callback.
    #[test]
    fn entry_is_not_a_static_callback() {
        let mut p = prog(10, &[]);
        p[2].imm = -3; // the ld_imm64 at 2 names insn 0
        let v = run(&p, true);
        assert!(!v.accepted());
        assert!(v.log.contains("callback function not static"), "{}", v.log);
    }

    #[test]
    fn callbacks_need_btf_func_info() {
        let p = prog(10, &[mov(0, 0), exit()]);
        let v = run(&p, false);
        assert!(!v.accepted());
        assert!(v.log.contains("missing btf func_info"), "{}", v.log);
    }

    #[test]
    fn non_constant_flags_are_not_fit_for_inline() {
        let mut p = prog(10, &[mov(0, 0), exit()]);
        // flags from never-written stack: unknown (a privileged loader may read it)
        p[6] = Insn::new(BPF_LDX | BPF_MEM | BPF_DW, 4, 10, -16, 0);
        let v = run(&p, true);
        assert!(v.accepted(), "{}", v.log);
        assert!(!v.aux[7].loop_inline.unwrap().fit_for_inline);
    }

    /// An unknown, large iteration count does not unroll forever: the states converge.
    #[test]
    fn unbounded_count_converges() {
        let mut p = prog(0, &[mov(0, 0), exit()]);
        p[1] = call(7); // r0 = bpf_get_prandom_u32()
        p.insert(2, movx(1, 0)); // the ld_imm64 and its target both move by one
        let v = run(&p, true);
        assert!(v.accepted(), "{}", v.log);
        assert!(v.stats.insn_processed < 100, "{:?}", v.stats);
    }

    /// `bpf_for_each_map_elem(&map, cb, fp-8, 0)` over map fd 0 with `cb`'s body given; the
    /// callback starts at index 11.
    fn for_each(map_type: u32, cb: &[Insn]) -> crate::Verdict {
        let mut p = vec![
            Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 0), // 0
            Insn::new(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_MAP_FD, 0, 0), // 1
            Insn::new(0, 0, 0, 0, 0),                           // 2
        ];
        p.extend(ld_func(2, 11 - 4)); // 3, 4: the callback at 11
        p.extend([
            movx(3, 10),                                         // 5
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -8), // 6
            mov(4, 0),                                           // 7
            call(164),                                           // 8
            mov(0, 0),                                           // 9
            exit(),                                              // 10
        ]);
        p.extend(cb);
        let env = vec![MapDesc {
            id: 1,
            name: "m".into(),
            map_type,
            key_size: 4,
            value_size: 2,
            max_entries: 8,
            ..Default::default()
        }];
        verify(
            &p,
            &env,
            &Options::new(ProgType::SocketFilter).func_info(true),
        )
    }

    /// The callback gets the map's key in r2 and value in r3, whose bounds hold.
    #[test]
    fn for_each_map_elem_callback_gets_key_and_value() {
        let read = |off| {
            [
                Insn::new(BPF_LDX | BPF_MEM | BPF_W, 0, 2, 0, 0),
                Insn::new(BPF_LDX | BPF_MEM | BPF_B, 0, 3, off, 0),
                mov(0, 0),
                exit(),
            ]
        };
        let v = for_each(2, &read(1));
        assert!(v.accepted(), "{}", v.log);
        let v = for_each(2, &read(2));
        assert!(!v.accepted());
        assert!(
            v.log
                .contains("invalid access to map value, value_size=2 off=2 size=1"),
            "{}",
            v.log
        );
    }

    #[test]
    fn for_each_map_elem_needs_a_map_that_calls_back() {
        // An LPM trie has no map_for_each_callback.
        let v = for_each(11, &[mov(0, 0), exit()]);
        assert!(!v.accepted());
        assert_eq!(
            v.result.unwrap_err().message,
            "callback function not allowed for map"
        );
    }
}

//! The `bpf_fastcall` contract (`mark_fastcall_patterns`, `check_fastcall_stack_contract`,
//! `remove_fastcall_spills_fills`).
//!
//! clang calls a `bpf_fastcall` function as if it kept the caller-saved registers it does not
//! use (r0 when it returns nothing, r1-r5 past its arguments), and wraps each call in spills
//! and fills of the live ones, at the lowest stack offsets of the function:
//!
//! ```text
//! *(u64 *)(r10 -16) = r1      ;; pattern
//! call bpf_get_smp_processor_id
//! r1 = *(u64 *)(r10 -16)      ;; pattern
//! ```
//!
//! Before exploration the kernel marks such spill/fill pairs; exploration then checks that no
//! other instruction touches the stack below the highest pattern slot of the function (any
//! such access gives up the function's patterns). If the call is inlined into code that
//! really keeps those registers, the pairs are dropped, and when every pattern of the
//! function was dropped, its stack depth shrinks to what lies above the pattern slots — that
//! reduced depth is what `check_max_stack_depth` adds up and the statistics show.
//!
//! kbpf inlines `bpf_get_smp_processor_id` only when the rewrite can (the per-CPU move of
//! [`Options::percpu_insn`](crate::Options::percpu_insn)), and `bpf_cast_to_kern_ctx` and
//! `bpf_rdonly_cast` always; the rewrite removes the marked pairs (`InsnAux::fastcall_spills`).
//! kbpf checks the contract on every stack access, including helpers' reads of stack memory
//! (the kernel checks loads, stores and helpers' writes), so it never drops a slot something
//! else reads.

use kbpf_isa::decode::{CallTarget, Instruction};
use kbpf_isa::insn::{BPF_DW, BPF_LDX, BPF_MEM, BPF_STX};

use super::Checker;
use crate::helpers::{ArgType, RetType, func_proto};
use crate::state::BPF_REG_SIZE;

/// `ALL_CALLER_SAVED_REGS`: r0-r5.
const ALL_CALLER_SAVED_REGS: u32 = (1 << 6) - 1;
/// `bpf_get_smp_processor_id`.
const BPF_FUNC_GET_SMP_PROCESSOR_ID: i32 = 8;

/// The marks of the `bpf_fastcall` patterns (`insn_aux_data[].fastcall_pattern`,
/// `subprog_info[].fastcall_stack_off` and `.keep_fastcall_stack`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Fastcall {
    /// Per instruction: a spill or fill of a pattern.
    pattern: Vec<bool>,
    /// Per function: the offset above the pattern slots (0 without patterns; `i32::MIN`
    /// once the contract was broken).
    stack_off: Vec<i32>,
    /// Per function: a pattern around a call that stays a call keeps the slots.
    keep_stack: Vec<bool>,
}

impl Checker<'_> {
    /// `mark_fastcall_patterns`: for each function, the lowest offset of its 8-byte stack
    /// stores, then the patterns of each call from there upwards.
    pub(super) fn mark_fastcall_patterns(&mut self) {
        let n = self.insns.len();
        let nsub = self.subprogs.len();
        self.fastcall = Fastcall {
            pattern: vec![false; n],
            stack_off: vec![0; nsub],
            keep_stack: vec![false; nsub],
        };
        let jump_target = self.jump_targets();
        for s in 0..nsub {
            let lowest_off = self
                .subprog_range(s)
                .map(|i| self.insns[i])
                .filter(|insn| insn.code == BPF_STX | BPF_MEM | BPF_DW && insn.dst() == 10)
                .map(|insn| insn.off as i32)
                .fold(0, i32::min);
            for i in self.subprog_range(s) {
                if matches!(self.decoded[i], Some(Instruction::Call(_))) {
                    self.mark_fastcall_pattern_for_call(s, i, lowest_off, &jump_target);
                }
            }
        }
    }

    /// The targets of jumps, calls and callback references (`insn_aux_data[].jump_target`,
    /// set by `check_cfg` for each branch edge).
    fn jump_targets(&self) -> Vec<bool> {
        let mut t = vec![false; self.insns.len()];
        for (idx, ins) in self.decoded.iter().enumerate() {
            if let Some(to) = ins.and_then(|ins| ins.branch_target(idx))
                && let Some(slot) = usize::try_from(to).ok().and_then(|to| t.get_mut(to))
            {
                *slot = true;
            }
        }
        t
    }

    /// The registers the call at `idx` clobbers as a `bpf_fastcall` function (r0 unless it
    /// returns nothing, r1-r5 up to its last argument) and whether kbpf inlines it; `None`
    /// for a call that is not checked here (an unknown helper or kfunc, a bpf-to-bpf call).
    fn fastcall_clobbers(&self, idx: usize) -> Option<(u32, bool)> {
        match self.decoded[idx]? {
            Instruction::Call(CallTarget::Helper(id)) => {
                let p = func_proto(self.prog, id)?;
                let mut mask = u32::from(p.ret != RetType::Void);
                for (i, a) in p.args.iter().enumerate() {
                    if *a != ArgType::DontCare {
                        mask |= 1 << (i + 1);
                    }
                }
                // `allow_fastcall && verifier_inlines_helper_call`.
                let inlined = id == BPF_FUNC_GET_SMP_PROCESSOR_ID && self.opts.percpu_insn;
                Some((mask, inlined))
            }
            Instruction::Call(CallTarget::Kfunc { btf_id, off: 0 }) => {
                let name = self.opts.kfuncs.iter().find(|(id, _)| *id == btf_id)?;
                // The two kfuncs `fixup_kfunc_call` turns into `r0 = r1`; kbpf verifies no
                // other kfunc, so no other prototype matters here.
                match name.1.as_str() {
                    "bpf_cast_to_kern_ctx" => Some((0b11, true)),
                    "bpf_rdonly_cast" => Some((0b111, true)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `mark_fastcall_pattern_for_call`: pairs `*(u64 *)(r10 off) = rX` / `rX = *(u64 *)(r10
    /// off)` at distance i = 1, 2, … around the call, `off` rising by 8 from `lowest_off`,
    /// each for a register the call keeps, none of them (nor the call) a jump target.
    fn mark_fastcall_pattern_for_call(
        &mut self,
        subprog: usize,
        idx: usize,
        lowest_off: i32,
        jump_target: &[bool],
    ) {
        let Some((clobbers, inlined)) = self.fastcall_clobbers(idx) else {
            return;
        };
        if clobbers == ALL_CALLER_SAVED_REGS {
            return;
        }
        let mut expected = !clobbers & ALL_CALLER_SAVED_REGS;
        let n = self.insns.len();
        let mut i = 1;
        let mut off = lowest_off;
        while i <= 6 {
            if idx < i || idx + i >= n {
                break;
            }
            if jump_target[idx - i + 1] || jump_target[idx + i] {
                break;
            }
            let (stx, ldx) = (self.insns[idx - i], self.insns[idx + i]);
            if stx.code != BPF_STX | BPF_MEM | BPF_DW
                || ldx.code != BPF_LDX | BPF_MEM | BPF_DW
                || stx.dst() != 10
                || ldx.src() != 10
                || stx.src() != ldx.dst()
                || expected & (1 << stx.src()) == 0
                || stx.off as i32 != off
                || ldx.off as i32 != off
            {
                break;
            }
            expected &= !(1 << stx.src());
            self.fastcall.pattern[idx - i] = true;
            self.fastcall.pattern[idx + i] = true;
            i += 1;
            off += BPF_REG_SIZE as i32;
        }
        if i == 1 {
            return;
        }
        if inlined {
            self.aux[idx].fastcall_spills = (i - 1) as u8;
        } else {
            self.fastcall.keep_stack[subprog] = true;
        }
        let so = &mut self.fastcall.stack_off[subprog];
        *so = (*so).min(off);
    }

    /// `check_fastcall_stack_contract`: the current instruction accesses the stack of
    /// function `subprog`'s frame from offset `off` up; below the pattern slots' top only
    /// the patterns may, or the function keeps all its spills and fills.
    pub(super) fn fastcall_stack_contract(&mut self, subprog: usize, off: i64) {
        let idx = self.cur_insn;
        let Some(&so) = self.fastcall.stack_off.get(subprog) else {
            return;
        };
        if so as i64 <= off || self.fastcall.pattern.get(idx).copied().unwrap_or(false) {
            return;
        }
        self.fastcall.stack_off[subprog] = i32::MIN;
        for i in self.subprog_range(subprog) {
            self.aux[i].fastcall_spills = 0;
            self.fastcall.pattern[i] = false;
        }
    }

    /// `remove_fastcall_spills_fills`, the depth part (the rewrite drops the instructions): a
    /// function some of whose pairs go, and none of whose patterns stays, uses only the stack
    /// above its pattern slots.
    pub(crate) fn remove_fastcall_spills_fills(&mut self) {
        for s in 0..self.subprogs.len() {
            let modified = self.aux[self.subprog_range(s)]
                .iter()
                .any(|a| a.fastcall_spills > 0);
            if modified && self.fastcall.keep_stack.get(s) == Some(&false) {
                self.subprog_stack[s] = (-(self.fastcall.stack_off[s] as i64)) as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kbpf_isa::Insn;
    use kbpf_isa::insn::*;

    use crate::{MapDesc, Options, ProgType, verify};

    /// No maps.
    const NO_MAPS: &Vec<MapDesc> = &Vec::new();

    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn stx(off: i16, src: u8) -> Insn {
        Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, src, off, 0)
    }
    fn ldx(dst: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_DW, dst, 10, off, 0)
    }
    fn call(id: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    fn opts(percpu: bool) -> Options {
        let mut o = Options::new(ProgType::RawTracepoint);
        o.percpu_insn = percpu;
        o
    }

    /// `simple` of verifier_bpf_fastcall.c: five spills at -48..-16, the call, five fills.
    fn simple() -> Vec<Insn> {
        let mut p: Vec<Insn> = (1..=5).map(|r| mov(r, r as i32)).collect();
        for r in 1..=5u8 {
            p.push(stx(-8 - 8 * r as i16, r));
        }
        p.push(call(8));
        for r in (1..=5u8).rev() {
            p.push(ldx(r, -8 - 8 * r as i16));
        }
        p.push(mov(0, 0));
        p.push(exit());
        p
    }

    #[test]
    fn inlined_call_drops_its_spills_and_the_stack_below_them() {
        let v = verify(&simple(), NO_MAPS, &opts(true));
        assert!(v.accepted(), "{}", v.log);
        assert_eq!(v.aux[10].fastcall_spills, 5);
        // The pattern slots are -48..-16; the depth keeps what is above them.
        assert_eq!(v.stack_depth, vec![8]);
    }

    #[test]
    fn call_the_rewrite_keeps_keeps_its_spills() {
        let v = verify(&simple(), NO_MAPS, &opts(false));
        assert!(v.accepted(), "{}", v.log);
        assert_eq!(v.aux[10].fastcall_spills, 0);
        assert_eq!(v.stack_depth, vec![48]);
    }

    #[test]
    fn another_access_to_a_pattern_slot_breaks_the_contract() {
        // r1 = 1; *(fp-8) = r1; call; r1 = *(fp-8); r0 = *(fp-8); exit
        let p = vec![
            mov(1, 1),
            stx(-8, 1),
            call(8),
            ldx(1, -8),
            ldx(0, -8),
            exit(),
        ];
        let v = verify(&p, NO_MAPS, &opts(true));
        assert!(v.accepted(), "{}", v.log);
        assert_eq!(v.aux[2].fastcall_spills, 0);
        assert_eq!(v.stack_depth, vec![8]);
    }

    #[test]
    fn a_kept_call_pattern_keeps_the_depth_but_not_the_inlined_pairs() {
        // bpf_loop_interaction2 without the loop: get_smp_processor_id's pair goes, the
        // pair around bpf_get_prandom_u32 stays, and so does the depth.
        let p = vec![
            mov(1, 42),
            stx(-16, 1),
            call(8),
            ldx(1, -16),
            stx(-16, 1),
            call(7),
            ldx(1, -16),
            mov(0, 0),
            exit(),
        ];
        let v = verify(&p, NO_MAPS, &opts(true));
        assert!(v.accepted(), "{}", v.log);
        assert_eq!(v.aux[2].fastcall_spills, 1);
        assert_eq!(v.aux[5].fastcall_spills, 0);
        assert_eq!(v.stack_depth, vec![16]);
    }

    #[test]
    fn a_jump_into_the_pattern_ends_it() {
        // if r1 == 0 goto the fill: the fill is a jump target, so there is no pattern.
        let p = vec![
            mov(1, 1),
            stx(-8, 1),
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1, 0),
            call(8),
            ldx(1, -8),
            mov(0, 0),
            exit(),
        ];
        let v = verify(&p, NO_MAPS, &opts(true));
        assert!(v.accepted(), "{}", v.log);
        assert!(v.aux.iter().all(|a| a.fastcall_spills == 0));
        assert_eq!(v.stack_depth, vec![8]);
    }
}

//! The kernel's static walk of the call graph after exploration (`check_max_stack_depth`).
//!
//! Exploration only follows the calls a path takes; the kernel then walks every call
//! instruction of every function, reached or not, from the main program down, adding up
//! each function's largest stack depth. That walk is what refuses a too deep call chain
//! (`the call stack of 8 frames is too deep !`, even for a recursion exploration bounded),
//! a combined stack over 512 bytes, a tail call under deep frames and `LD_ABS` under a
//! callback. It over-approximates the paths, so a program kbpf's exploration found safe can
//! still be refused here, exactly as the kernel refuses it.
//!
//! kbpf models an x86-64 kernel whose JIT is always on (`jit_requested`): a frame counts
//! its depth rounded up to 16 bytes. The 6.12 source gives tracing programs the JIT's
//! private stack for functions of 64 bytes or more (`bpf_enable_priv_stack`); the 6.18
//! kernels measured here (`tests/stack_depth_kernel.rs`) count a tracepoint program's
//! functions in the combined depth all the same, and so does kbpf.
//!
//! Also here, because they read the same per-function facts: `check_abnormal_return`, which
//! refuses `LD_ABS` and tail calls in functions other than the entry when the program has
//! no BTF function info.

use kbpf_isa::decode::{CallTarget, Imm64Source, Instruction};
use kbpf_isa::insn::{MAX_BPF_STACK, MAX_CALL_FRAMES};

use super::{Checker, R, rej, rej_errno};
use crate::helpers::BPF_FUNC_TAIL_CALL;
use crate::{E2BIG, EINVAL, LoopInline};

/// Callers' stack above which a function may not tail call (32 tail calls × 256 = 8 KiB).
const TAIL_CALL_CALLER_STACK_LIMIT: usize = 256;

/// What the walk needs of each function, read from its instructions (`check_subprogs`).
#[derive(Clone, Copy, Default)]
struct FuncFacts {
    has_tail_call: bool,
    has_ld_abs: bool,
    /// Called as a callback on some explored path: `is_cb`.
    is_cb: bool,
}

/// `round_up_stack_depth` with `jit_requested`.
fn round_up_stack_depth(depth: usize) -> usize {
    depth.div_ceil(16) * 16
}

impl Checker<'_> {
    /// The callee's first instruction if `idx` is a bpf-to-bpf call or a callback
    /// reference (`bpf_pseudo_call || bpf_pseudo_func`).
    fn callee_start(&self, idx: usize) -> Option<usize> {
        let imm = match self.decoded[idx]? {
            Instruction::Call(CallTarget::Local(imm)) => imm,
            Instruction::LdImm64 {
                src: Imm64Source::Func,
                imm,
                ..
            } => imm,
            _ => return None,
        };
        usize::try_from(idx as i64 + 1 + imm as i64).ok()
    }

    fn func_facts(&self) -> Vec<FuncFacts> {
        let mut facts = vec![FuncFacts::default(); self.subprogs.len()];
        for (idx, ins) in self.decoded.iter().enumerate() {
            let Some(ins) = ins else { continue };
            let f = &mut facts[self.subprog_of(idx)];
            match ins {
                Instruction::Call(CallTarget::Helper(BPF_FUNC_TAIL_CALL)) => f.has_tail_call = true,
                Instruction::LdPacket { .. } => f.has_ld_abs = true,
                _ => {}
            }
        }
        for (f, &cb) in facts.iter_mut().zip(&self.callback_subprogs) {
            f.is_cb = cb;
        }
        facts
    }

    /// `check_abnormal_return`, for a program without BTF function info: only the entry
    /// may hold a legacy packet load or a tail call (both leave a function without its
    /// `exit`, which the JIT handles only with the function's prototype).
    pub(crate) fn check_abnormal_return(&self) -> R<()> {
        if self.opts.func_info {
            return Ok(());
        }
        for f in self.func_facts().iter().skip(1) {
            if f.has_ld_abs {
                return rej_errno("LD_ABS is not allowed in subprogs without BTF", EINVAL);
            }
            if f.has_tail_call {
                return rej_errno("tail_call is not allowed in subprogs without BTF", EINVAL);
            }
        }
        Ok(())
    }

    /// Each function's depth once the rewrite inlined its `bpf_loop` calls fit for it
    /// (`optimize_bpf_loop` adds [`LoopInline::stack_extra`] once per function), which is what
    /// the kernel's statistics show.
    pub(crate) fn stack_depth_after_loop_inlining(&self) -> Vec<usize> {
        let mut depth = self.subprog_stack.clone();
        let mut inlines = vec![false; depth.len()];
        for (idx, a) in self.aux.iter().enumerate() {
            if a.loop_inline.is_some_and(|l| l.fit_for_inline)
                && let Some(f) = inlines.get_mut(self.subprog_of(idx))
            {
                *f = true;
            }
        }
        for (d, inlined) in depth.iter_mut().zip(inlines) {
            if inlined {
                *d += LoopInline::stack_extra(*d);
            }
        }
        depth
    }

    /// `check_max_stack_depth`: the walk from the main program (kbpf has no asynchronous
    /// callbacks, the other roots the kernel walks from).
    pub(crate) fn check_max_stack_depth(&self) -> R<()> {
        self.walk_call_graph(0, &self.func_facts())
    }

    /// `check_max_stack_depth_subprog`: depth-first over call instructions in program
    /// order, with at most `MAX_CALL_FRAMES` frames of return points.
    fn walk_call_graph(&self, root: usize, facts: &[FuncFacts]) -> R<()> {
        // (instruction to go on from, function) of each caller.
        let mut frames: Vec<(usize, usize)> = Vec::with_capacity(MAX_CALL_FRAMES);
        let mut func = root;
        let mut i = self.subprogs[root];
        let mut depth = 0usize;
        'enter: loop {
            if facts[func].has_ld_abs
                && (facts[func].is_cb || frames.iter().any(|&(_, f)| facts[f].is_cb))
            {
                return rej_errno("cannot use BPF_LD_[ABS|IND] within callback", EINVAL);
            }
            if func != 0 && facts[func].has_tail_call && depth >= TAIL_CALL_CALLER_STACK_LIMIT {
                return rej(format!(
                    "tail_calls are not allowed when call stack of previous frames is {depth} bytes. Too large"
                ));
            }
            depth += round_up_stack_depth(self.subprog_stack[func]);
            if depth > MAX_BPF_STACK {
                return rej(format!(
                    "combined stack size of {} calls is {depth}. Too large",
                    frames.len() + 1
                ));
            }
            loop {
                let end = self.subprog_range(func).end;
                while i < end {
                    let Some(target) = self.callee_start(i) else {
                        i += 1;
                        continue;
                    };
                    // check_cfg made every target the start of a function.
                    let Ok(callee) = self.subprogs.binary_search(&target) else {
                        return rej(format!("verifier bug. No program starts at insn {target}"));
                    };
                    frames.push((i + 1, func));
                    func = callee;
                    i = target;
                    if frames.len() >= MAX_CALL_FRAMES {
                        return rej_errno(
                            format!("the call stack of {} frames is too deep !", frames.len()),
                            E2BIG,
                        );
                    }
                    continue 'enter;
                }
                let Some((ret_insn, caller)) = frames.pop() else {
                    return Ok(());
                };
                depth -= round_up_stack_depth(self.subprog_stack[func]);
                func = caller;
                i = ret_insn;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kbpf_isa::Insn;
    use kbpf_isa::insn::*;

    use crate::{Options, ProgType, Verdict, verify};

    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn add(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    /// `call pc+1+off` (bpf-to-bpf).
    fn call_local(off: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
    }
    fn jlt(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JLT | BPF_K, dst, 0, off, imm)
    }

    fn run(prog: ProgType, insns: &[Insn]) -> Verdict {
        let env: Vec<crate::MapDesc> = Vec::new();
        let mut o = Options::new(prog);
        o.log_level = 1;
        verify(insns, &env, &o)
    }

    fn message(v: &Verdict) -> String {
        v.result
            .as_ref()
            .err()
            .map(|e| e.message.clone())
            .unwrap_or_default()
    }

    /// `verifier_loops1/bounded_recursion`: the recursion stops after 4 calls on every
    /// path, but the static walk follows the call edge until 8 frames.
    #[test]
    fn bounded_recursion_is_too_deep_for_the_static_walk() {
        let insns = [
            mov(1, 0),
            call_local(1),
            exit(),
            // bounded_recursion__1
            add(1, 1),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 0, 1, 0, 0),
            jlt(1, 4, 1),
            exit(),
            call_local(-5),
            exit(),
        ];
        let v = run(ProgType::Tracepoint, &insns);
        assert_eq!(message(&v), "the call stack of 8 frames is too deep !");
        assert_eq!(v.result.unwrap_err().errno, 7, "E2BIG");
        // The explored paths were all safe: the message comes after them.
        assert!(v.log.contains("7: (85) call pc-5"), "{}", v.log);
    }

    /// A function that tail calls may not run under 256 bytes or more of callers' stack
    /// (32 tail calls × 256 = 8 KiB of kernel stack at most). The kernel needs BTF function
    /// info to load such a program, so this is checked against the kernel's source only.
    #[test]
    fn tail_call_under_deep_frames_is_refused() {
        let st = |off: i16| Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, off, 0);
        let prog = |main: i16| {
            vec![
                st(-main),
                call_local(2),
                mov(0, 0),
                exit(),
                // sub: the tail call is on a path exploration never takes (r0 == 0).
                mov(0, 0),
                Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0),
                Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 12),
                mov(0, 0),
                exit(),
            ]
        };
        let env: Vec<crate::MapDesc> = Vec::new();
        let opts = Options::new(ProgType::SocketFilter).func_info(true);
        let v = verify(&prog(240), &env, &opts);
        assert!(v.accepted(), "{}", v.log);
        // 248 rounds up to 256: at the limit already.
        let v = verify(&prog(248), &env, &opts);
        assert_eq!(
            message(&v),
            "tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large"
        );
    }

    /// Only functions exploration called as callbacks count as callbacks: a function whose
    /// address is only loaded (never passed to `bpf_loop`) may hold a legacy packet load.
    #[test]
    fn loaded_but_uncalled_function_is_not_a_callback() {
        let ld_func = |off: i32| {
            [
                Insn::new(BPF_LD | BPF_IMM | BPF_DW, 2, BPF_PSEUDO_FUNC, 0, off),
                Insn::new(0, 0, 0, 0, 0),
            ]
        };
        let mut insns = vec![Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0)];
        insns.extend(ld_func(3));
        insns.extend([mov(0, 0), exit()]);
        // sub: r0 = ld_abs[0]; exit
        insns.extend([
            Insn::new(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, 0),
            mov(0, 0),
            exit(),
        ]);
        let env: Vec<crate::MapDesc> = Vec::new();
        let opts = Options::new(ProgType::SocketFilter).func_info(true);
        let v = verify(&insns, &env, &opts);
        assert!(v.accepted(), "{}", v.log);
    }
}

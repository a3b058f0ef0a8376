//! `optimize_bpf_loop` / `inline_bpf_loop`: a `bpf_loop` call whose flags were the constant 0
//! and whose callback was the same on every path (the verifier's
//! [`kbpf_verifier::LoopInline`]) becomes a loop in BPF that calls the callback with a
//! bpf-to-bpf call, so the engines need no way for a helper to call back into the program.
//! r6-r8 hold the loop's bound, counter and context and are saved in 24 bytes below the
//! function's stack. A call site not fit for inlining stays a helper call, which kbpf does
//! not implement (the rewrite then reports the helper as missing).

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::RewriteError;
use crate::patch::Prog;
use kbpf_verifier::LoopInline;

use kbpf_uapi::bpf::BPF_FUNC_LOOP;
/// `E2BIG`: `bpf_loop`'s result for more than `BPF_MAX_LOOPS` iterations.
use kbpf_uapi::errno::E2BIG;
/// Index of the callback call in [`inline_seq`] (`insn_buf[12]`).
const CALL_AT: usize = 12;

/// The instructions `inline_bpf_loop` puts in place of the call, with the callback call's
/// offset still 0. `stack_base` is the (negative) offset of the three saved registers.
fn inline_seq(stack_base: i16) -> [Insn; 19] {
    let (r6_off, r7_off, r8_off) = (stack_base, stack_base + 8, stack_base + 16);
    let i = Insn::new;
    [
        // More than BPF_MAX_LOOPS iterations: -E2BIG, past the end of the sequence.
        i(BPF_JMP | BPF_JLE | BPF_K, 1, 0, 2, BPF_MAX_LOOPS),
        i(BPF_ALU | BPF_MOV | BPF_K, 0, 0, 0, -E2BIG),
        i(BPF_JMP | BPF_JA, 0, 0, 16, 0),
        // Save r6-r8, the loop's registers.
        i(BPF_STX | BPF_MEM | BPF_DW, 10, 6, r6_off, 0),
        i(BPF_STX | BPF_MEM | BPF_DW, 10, 7, r7_off, 0),
        i(BPF_STX | BPF_MEM | BPF_DW, 10, 8, r8_off, 0),
        // r6 = bound, w7 = 0 (counter), r8 = context.
        i(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
        i(BPF_ALU | BPF_MOV | BPF_K, 7, 0, 0, 0),
        i(BPF_ALU64 | BPF_MOV | BPF_X, 8, 3, 0, 0),
        // while counter < bound: r0 = callback(counter, context); counter++; stop unless 0
        i(BPF_JMP | BPF_JGE | BPF_X, 7, 6, 5, 0),
        i(BPF_ALU64 | BPF_MOV | BPF_X, 1, 7, 0, 0),
        i(BPF_ALU64 | BPF_MOV | BPF_X, 2, 8, 0, 0),
        i(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0),
        i(BPF_ALU64 | BPF_ADD | BPF_K, 7, 0, 0, 1),
        i(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, -6, 0),
        // The result is the iterations run; restore r6-r8.
        i(BPF_ALU64 | BPF_MOV | BPF_X, 0, 7, 0, 0),
        i(BPF_LDX | BPF_MEM | BPF_DW, 6, 10, r6_off, 0),
        i(BPF_LDX | BPF_MEM | BPF_DW, 7, 10, r7_off, 0),
        i(BPF_LDX | BPF_MEM | BPF_DW, 8, 10, r8_off, 0),
    ]
}

/// Inlines every `bpf_loop` call fit for it. `stack_depth[k]` is the stack depth of the
/// function starting at `prog.subprog_starts[k]`; a function with an inlined call grows by
/// the saved registers (`stack_depth_extra`, 24 bytes after rounding its depth up to 8).
pub fn optimize_bpf_loop(prog: &mut Prog, stack_depth: &mut [usize]) -> Result<(), RewriteError> {
    let nsub = prog.subprog_starts.len();
    if stack_depth.len() < nsub {
        return Err(RewriteError::VerifierBug(format!(
            "{} stack depths for {nsub} functions",
            stack_depth.len()
        )));
    }
    let mut extra = vec![0usize; nsub];
    let mut i = 0;
    while i < prog.len() {
        let insn = prog.insns[i];
        if insn.is_ld_imm64() {
            i += 2;
            continue;
        }
        let is_loop_call =
            insn.code == BPF_JMP | BPF_CALL && insn.src() == 0 && insn.imm == BPF_FUNC_LOOP;
        let inline = prog.aux[i].loop_inline.filter(|l| l.fit_for_inline);
        let (true, Some(state)) = (is_loop_call, inline) else {
            i += 1;
            continue;
        };
        let k = prog.subprog_starts.partition_point(|&s| s <= i) - 1;
        let depth = stack_depth[k];
        extra[k] = LoopInline::stack_extra(depth);
        if depth + extra[k] > MAX_BPF_STACK {
            return Err(RewriteError::Unsupported {
                insn: prog.orig[i].unwrap_or(i),
                what: format!("inlined bpf_loop in a function using {depth} bytes of stack"),
            });
        }
        let seq = inline_seq(-((depth + extra[k]) as i16));
        prog.patch(i, &seq)?;
        let Some(&callback) = prog.subprog_starts.get(state.callback_subprog) else {
            return Err(RewriteError::VerifierBug(format!(
                "bpf_loop callback subprog {} of {nsub}",
                state.callback_subprog
            )));
        };
        let call = i + CALL_AT;
        prog.insns[call].imm = (callback as i64 - call as i64 - 1) as i32;
        i += seq.len();
    }
    for (d, e) in stack_depth.iter_mut().zip(extra) {
        *d += e;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbpf_verifier::InsnAux;

    fn call(id: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }

    fn prog(fit: bool) -> Prog {
        // 0: call bpf_loop; 1: exit | 2: callback: r0 = 0; 3: exit
        let insns = vec![call(BPF_FUNC_LOOP), exit(), mov(0, 0), exit()];
        let mut aux = vec![InsnAux::default(); 4];
        aux[0].loop_inline = Some(LoopInline {
            fit_for_inline: fit,
            callback_subprog: 1,
        });
        Prog {
            insns,
            aux,
            orig: (0..4).map(Some).collect(),
            line_info: Vec::new(),
            func_info: Vec::new(),
            subprog_starts: vec![0, 2],
        }
    }

    #[test]
    fn fit_call_becomes_a_loop_calling_the_callback() {
        let mut p = prog(true);
        let mut depth = vec![12, 0];
        optimize_bpf_loop(&mut p, &mut depth).unwrap();
        // 12 rounds up to 16, plus r6-r8
        assert_eq!(depth, vec![40, 0]);
        assert_eq!(p.insns.len(), 19 + 3);
        assert_eq!(p.subprog_starts, vec![0, 20]);
        let c = p.insns[CALL_AT];
        assert_eq!((c.code, c.src()), (BPF_JMP | BPF_CALL, BPF_PSEUDO_CALL));
        assert_eq!(CALL_AT as i64 + 1 + c.imm as i64, 20);
        // r6 saved at the new depth's bottom
        assert_eq!(
            p.insns[3],
            Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, 6, -40, 0)
        );
        // the too-many-iterations jump lands right after the sequence (the exit)
        assert_eq!(2 + 1 + p.insns[2].off as usize, 19);
        // the loop's back edge returns to the bound check
        assert_eq!((14 + 1) as i64 + p.insns[14].off as i64, 9);
    }

    #[test]
    fn unfit_call_is_left_alone() {
        let mut p = prog(false);
        let mut depth = vec![0, 0];
        optimize_bpf_loop(&mut p, &mut depth).unwrap();
        assert_eq!(p.insns[0], call(BPF_FUNC_LOOP));
        assert_eq!(depth, vec![0, 0]);
    }
}

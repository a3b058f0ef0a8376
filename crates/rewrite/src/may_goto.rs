//! The `may_goto` part of `do_misc_fixups`: each function with a `may_goto` gets an 8-byte
//! loop budget below its verified stack, set to `BPF_MAX_LOOPS` by a store prepended to the
//! function, and every `may_goto pc+off` becomes
//!
//! ```text
//! AX = *(u64 *)(r10 - slot)
//! if AX == 0 goto <the may_goto's target>
//! AX -= 1
//! *(u64 *)(r10 - slot) = AX
//! ```
//!
//! so the engines see only ordinary instructions. This is the counter form of Linux 6.12;
//! 6.18's x86-64 JIT uses a timed budget instead (`bpf_check_timed_may_goto`), which gives
//! the same verdicts and differs only in when a very long loop stops.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::RewriteError;
use crate::fixups::BPF_REG_AX;
use crate::patch::Prog;

/// Bytes of stack a `may_goto` budget takes (`stack_depth_extra`).
const MAY_GOTO_SLOT: usize = 8;

fn is_may_goto(insn: &Insn) -> bool {
    insn.code == BPF_JMP | BPF_JCOND && insn.src() == BPF_MAY_GOTO
}

/// Rewrites every `may_goto` of `prog` and adds the budget's initialisation. `stack_depth[k]`
/// is the verified stack depth of the `k`-th function (`prog.subprog_starts[k]`); the depth
/// of each function with a `may_goto` grows by the slot, as the kernel's
/// `subprogs[].stack_depth += stack_depth_extra`.
pub fn patch_may_goto(prog: &mut Prog, stack_depth: &mut [usize]) -> Result<(), RewriteError> {
    let nsub = prog.subprog_starts.len();
    if stack_depth.len() < nsub {
        return Err(RewriteError::VerifierBug(format!(
            "{} stack depths for {nsub} functions",
            stack_depth.len()
        )));
    }
    let mut extra = vec![false; nsub];
    let mut i = 0;
    while i < prog.len() {
        let insn = prog.insns[i];
        if insn.is_ld_imm64() {
            i += 2;
            continue;
        }
        if !is_may_goto(&insn) {
            i += 1;
            continue;
        }
        let k = prog.subprog_starts.partition_point(|&s| s <= i) - 1;
        let depth = stack_depth[k];
        // kbpf's engines give each function exactly MAX_BPF_STACK bytes; the kernel's JIT
        // would grow the frame past it.
        if depth + MAY_GOTO_SLOT > MAX_BPF_STACK {
            return Err(RewriteError::Unsupported {
                insn: prog.orig[i].unwrap_or(i),
                what: format!("may_goto in a function using {depth} bytes of stack"),
            });
        }
        let slot = -((depth + MAY_GOTO_SLOT) as i16);
        extra[k] = true;
        // The jump keeps its target: forward over the 3 added insns, backward from one later.
        let jeq_off = if insn.off >= 0 {
            insn.off + 2
        } else {
            insn.off - 1
        };
        let seq = [
            Insn::new(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_AX, 10, slot, 0),
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_AX, 0, jeq_off, 0),
            Insn::new(BPF_ALU64 | BPF_SUB | BPF_K, BPF_REG_AX, 0, 0, 1),
            Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, BPF_REG_AX, slot, 0),
        ];
        prog.patch(i, &seq)?;
        i += seq.len();
    }
    for k in 0..nsub {
        if !extra[k] {
            continue;
        }
        stack_depth[k] += MAY_GOTO_SLOT;
        let start = prog.subprog_starts[k];
        let init = Insn::new(
            BPF_ST | BPF_MEM | BPF_DW,
            10,
            0,
            -(stack_depth[k] as i16),
            BPF_MAX_LOOPS,
        );
        let first = prog.insns[start];
        prog.patch(start, &[init, first])?;
        // Calls still enter at the store; jumps to the function's first insn (a loop
        // head) must not reset the budget (`adjust_jmp_off`).
        adjust_jmp_off(prog, start, 1)?;
    }
    Ok(())
}

/// `adjust_jmp_off`: jumps (not calls) to `tgt` now go `delta` further.
fn adjust_jmp_off(prog: &mut Prog, tgt: usize, delta: i32) -> Result<(), RewriteError> {
    let mut i = 0;
    while i < prog.len() {
        let insn = prog.insns[i];
        if insn.is_ld_imm64() {
            i += 2;
            continue;
        }
        let class = insn.class();
        let op = insn.code & 0xf0;
        let skip = (tgt..tgt + delta as usize).contains(&i)
            || (class != BPF_JMP && class != BPF_JMP32)
            || op == BPF_CALL
            || op == BPF_EXIT;
        if !skip {
            if insn.code == BPF_JMP32 | BPF_JA {
                if i as i64 + 1 + insn.imm as i64 == tgt as i64 {
                    prog.insns[i].imm = insn
                        .imm
                        .checked_add(delta)
                        .ok_or(RewriteError::JumpOutOfRange)?;
                }
            } else if i as i64 + 1 + insn.off as i64 == tgt as i64 {
                prog.insns[i].off = i16::try_from(insn.off as i32 + delta)
                    .map_err(|_| RewriteError::JumpOutOfRange)?;
            }
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbpf_verifier::InsnAux;

    fn prog(insns: Vec<Insn>, subprog_starts: Vec<usize>) -> Prog {
        let n = insns.len();
        Prog {
            insns,
            aux: vec![InsnAux::default(); n],
            orig: (0..n).map(Some).collect(),
            line_info: Vec::new(),
            func_info: Vec::new(),
            subprog_starts,
        }
    }
    fn may_goto(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, off, 0)
    }
    fn ja(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
    }
    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// `ja_and_may_goto`: `l0: may_goto +1; goto l0; r0 = 0; exit` as the kernel translates it.
    #[test]
    fn loop_head_may_goto_gets_counter_and_prologue() {
        let mut p = prog(vec![may_goto(1), ja(-2), mov(0, 0), exit()], vec![0]);
        let mut depth = vec![16];
        patch_may_goto(&mut p, &mut depth).unwrap();
        assert_eq!(depth, vec![24]);
        let want = vec![
            // the budget, at the new depth
            Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -24, BPF_MAX_LOOPS),
            Insn::new(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_AX, 10, -24, 0),
            // to `r0 = 0` (index 6)
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_AX, 0, 3, 0),
            Insn::new(BPF_ALU64 | BPF_SUB | BPF_K, BPF_REG_AX, 0, 0, 1),
            Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, BPF_REG_AX, -24, 0),
            // back to the load, not to the store that sets the budget
            ja(-5),
            mov(0, 0),
            exit(),
        ];
        assert_eq!(p.insns, want);
    }

    /// A backward `may_goto` keeps its target; only the function holding it gets a budget.
    #[test]
    fn backward_may_goto_in_a_subprogram() {
        // main: call +1; exit | sub: r0 = 0; may_goto -2 (to r0 = 0); exit
        let call = Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 1);
        let mut p = prog(
            vec![call, exit(), mov(0, 0), may_goto(-2), exit()],
            vec![0, 2],
        );
        let mut depth = vec![0, 0];
        patch_may_goto(&mut p, &mut depth).unwrap();
        assert_eq!(depth, vec![0, 8]);
        assert_eq!(p.subprog_starts, vec![0, 2]);
        // the call still enters at the store
        assert_eq!(p.insns[0], call);
        assert_eq!(
            p.insns[2],
            Insn::new(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, BPF_MAX_LOOPS)
        );
        assert_eq!(p.insns[3], mov(0, 0));
        // jeq at 5 goes back to `r0 = 0` at 3
        assert_eq!(
            p.insns[5],
            Insn::new(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_AX, 0, -3, 0)
        );
        assert_eq!(p.insns.len(), 9);
    }

    /// A function whose stack leaves no room for the budget is refused, not miscompiled.
    #[test]
    fn full_stack_is_refused() {
        let mut p = prog(vec![may_goto(1), mov(0, 0), exit()], vec![0]);
        let mut depth = vec![512];
        assert!(matches!(
            patch_may_goto(&mut p, &mut depth),
            Err(RewriteError::Unsupported { .. })
        ));
    }
}

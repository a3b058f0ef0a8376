//! Static register liveness (`compute_live_registers` and `compute_insn_live_regs` of
//! `kernel/bpf/verifier.c`, Linux 6.15+): for every instruction, the registers that some path
//! from it may read before writing them (`insn_aux_data.live_regs_before`). The analysis is
//! intraprocedural and path-insensitive, so it is sound for any state reaching the
//! instruction: a register outside the set is never read again before being overwritten, and
//! its value cannot influence anything the verifier checks from there on. Pruning uses it as
//! the kernel does (`clean_live_states`): a finished explored state forgets its dead registers
//! before it is compared, so that states differing only in dead registers prune each other.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::ctx::ProgType;
use crate::helpers::{ArgType, func_proto};

/// r0..r5 (`ALL_CALLER_SAVED_REGS`).
const CALLER_SAVED: u16 = (1 << 6) - 1;

/// `BPF_JCOND` (`may_goto`).
const BPF_JCOND: u8 = 0xe0;

/// `(use, def)` of one instruction (`compute_insn_live_regs`); unknown forms read everything
/// and define nothing, as in the kernel.
fn use_def(insn: &Insn, prog: ProgType) -> (u16, u16) {
    let class = insn.code & 7;
    let op = insn.code & 0xf0;
    let mode = insn.code & 0xe0;
    let src = 1u16 << insn.src();
    let dst = 1u16 << insn.dst();
    let r0 = 1u16;
    let k = insn.code & BPF_X == 0;
    let mut def = 0u16;
    let mut uses = 0xffffu16;
    match class {
        BPF_LD => {
            if mode == BPF_IMM && insn.code & 0x18 == BPF_DW {
                def = dst;
                uses = 0;
            }
            // BPF_ABS / BPF_IND: the defaults.
        }
        BPF_LDX => {
            if mode == BPF_MEM || mode == BPF_MEMSX {
                def = dst;
                uses = src;
            }
        }
        BPF_ST => {
            if mode == BPF_MEM {
                uses = dst;
            }
        }
        BPF_STX => {
            if mode == BPF_MEM {
                uses = dst | src;
            } else if mode == BPF_ATOMIC {
                match insn.imm {
                    BPF_CMPXCHG => {
                        uses = r0 | dst | src;
                        def = r0;
                    }
                    BPF_LOAD_ACQ => {
                        def = dst;
                        uses = src;
                    }
                    BPF_STORE_REL => uses = dst | src,
                    imm => {
                        uses = dst | src;
                        if imm & BPF_FETCH != 0 {
                            def = src;
                        }
                    }
                }
            }
        }
        BPF_ALU | BPF_ALU64 => match op {
            BPF_END => {
                uses = dst;
                def = dst;
            }
            BPF_MOV => {
                def = dst;
                uses = if k { 0 } else { src };
            }
            _ => {
                def = dst;
                uses = if k { dst } else { dst | src };
            }
        },
        _ => match op {
            // BPF_JMP / BPF_JMP32
            BPF_JA | BPF_JCOND => uses = 0,
            BPF_EXIT => uses = r0,
            BPF_CALL => {
                def = CALLER_SAVED;
                uses = def & !r0;
                // `get_call_summary`: a helper known to the program type reads exactly its
                // parameters; subprogram calls and kfuncs keep r1-r5.
                if insn.src() == 0
                    && let Some(p) = func_proto(prog, insn.imm)
                {
                    let n = p
                        .args
                        .iter()
                        .take_while(|a| **a != ArgType::DontCare)
                        .count();
                    uses = ((1u16 << (n + 1)) - 1) & !r0;
                }
            }
            _ => {
                uses = if k { dst } else { dst | src };
            }
        },
    }
    (uses, def)
}

/// Successors of instruction `i` (`bpf_insn_successors`), within the function.
fn successors(insns: &[Insn], i: usize, out: &mut Vec<usize>) {
    out.clear();
    let insn = &insns[i];
    let class = insn.code & 7;
    let op = insn.code & 0xf0;
    let push = |out: &mut Vec<usize>, t: i64| {
        if t >= 0 && (t as usize) < insns.len() {
            out.push(t as usize);
        }
    };
    match class {
        BPF_JMP | BPF_JMP32 => match op {
            BPF_EXIT => {}
            BPF_CALL => push(out, i as i64 + 1),
            BPF_JA => {
                let off = if class == BPF_JMP32 {
                    insn.imm as i64
                } else {
                    insn.off as i64
                };
                push(out, i as i64 + 1 + off);
            }
            _ => {
                push(out, i as i64 + 1);
                push(out, i as i64 + 1 + insn.off as i64);
            }
        },
        BPF_LD if insn.code == BPF_LD | BPF_IMM | BPF_DW => push(out, i as i64 + 2),
        _ => push(out, i as i64 + 1),
    }
}

/// `live_regs_before` of every instruction (bit `r` for register `r`); `is_insn[i]` says
/// whether slot `i` starts an instruction (false for the second slot of `ld_imm64`).
pub(crate) fn live_registers(insns: &[Insn], is_insn: &[bool], prog: ProgType) -> Vec<u16> {
    let n = insns.len();
    let ud: Vec<(u16, u16)> = insns.iter().map(|i| use_def(i, prog)).collect();
    let mut live_in = vec![0u16; n];
    let mut succ = Vec::with_capacity(2);
    // The least fixpoint of `in = (out \ def) | use`, `out = ∪ in(succ)`; the kernel visits
    // in postorder, reverse index order reaches the same fixpoint.
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            if !is_insn[i] {
                continue;
            }
            successors(insns, i, &mut succ);
            let out = succ.iter().fold(0u16, |a, &s| a | live_in[s]);
            let (uses, def) = ud[i];
            let new_in = (out & !def) | uses;
            if new_in != live_in[i] {
                live_in[i] = new_in;
                changed = true;
            }
        }
    }
    live_in
}

//! Static register liveness (`compute_live_registers` and `compute_insn_live_regs` of
//! `kernel/bpf/verifier.c`, Linux 6.15+): for every instruction, the registers that some path
//! from it may read before writing them (`insn_aux_data.live_regs_before`). The analysis is
//! intraprocedural and path-insensitive, so it is sound for any state reaching the
//! instruction: a register outside the set is never read again before being overwritten, and
//! its value cannot influence anything the verifier checks from there on. Pruning uses it as
//! the kernel does (`clean_live_states`): a finished explored state forgets its dead registers
//! before it is compared, so that states differing only in dead registers prune each other.

use std::ops::{BitAnd, BitOr, Not};

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
    let ud: Vec<(u16, u16)> = insns.iter().map(|i| use_def(i, prog)).collect();
    backward_liveness(insns, is_insn, &ud)
}

/// The least fixpoint of `in = (out \ kill) | use`, `out = ∪ in(succ)` over bit sets, for
/// every instruction (`use_kill[i]` is instruction `i`'s pair). The kernel visits in
/// postorder; reverse index order reaches the same fixpoint.
fn backward_liveness<T>(insns: &[Insn], is_insn: &[bool], use_kill: &[(T, T)]) -> Vec<T>
where
    T: Copy + Default + PartialEq + BitOr<Output = T> + BitAnd<Output = T> + Not<Output = T>,
{
    let n = insns.len();
    let mut live_in = vec![T::default(); n];
    let mut succ = Vec::with_capacity(2);
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            if !is_insn[i] {
                continue;
            }
            successors(insns, i, &mut succ);
            let out = succ.iter().fold(T::default(), |a, &s| a | live_in[s]);
            let (uses, kill) = use_kill[i];
            let new_in = (out & !kill) | uses;
            if new_in != live_in[i] {
                live_in[i] = new_in;
                changed = true;
            }
        }
    }
    live_in
}

/// The stack slots (bit `s`: the 8 bytes at `[fp - 8(s + 1), fp - 8s)`) of the function's own
/// frame that some path from each instruction may read before the function returns
/// (the role of 6.18's live stack analysis in `stacksafe`: an explored state's slots outside
/// the set never matter again). Reads are the function's `r10`-based loads and atomics; a
/// full 8-byte store to a slot overwrites it. Where the function's stack address escapes (any
/// use of `r10` other than as the base of a load, store or atomic), every load, atomic or
/// call through another register may read any slot, so each of those reads all of them; a
/// function whose address does not escape cannot have its stack read any other way.
/// Intraprocedural, path-insensitive and conservative, hence sound for any state reaching an
/// instruction. `subprogs` holds the functions' first instructions, ascending.
pub(crate) fn live_stack_slots(insns: &[Insn], is_insn: &[bool], subprogs: &[usize]) -> Vec<u64> {
    const ALL: u64 = u64::MAX;
    // Per function: its stack address escapes.
    let func_of = |i: usize| subprogs.partition_point(|&s| s <= i).saturating_sub(1);
    let mut escapes = vec![false; subprogs.len().max(1)];
    for (i, insn) in insns.iter().enumerate() {
        if !is_insn[i] {
            continue;
        }
        let class = insn.code & 7;
        // `r10`'s value copied into a register (`r2 = r10`, `r2 += r10`) or stored to
        // memory; comparisons and memory bases do not let it out.
        let copied =
            matches!(class, BPF_ALU | BPF_ALU64) && insn.code & BPF_X != 0 && insn.src() == 10;
        let stored = class == BPF_STX && insn.src() == 10;
        if copied || stored {
            escapes[func_of(i)] = true;
        }
    }
    // Bits of the slots `[off, off + size)` covers (offsets below the frame's top).
    let slots = |off: i64, size: i64| -> u64 {
        let mut m = 0u64;
        let mut b = off;
        while b < off + size {
            if (-512..0).contains(&b) {
                m |= 1 << ((-b - 1) / 8);
            } else {
                // Outside the frame: the verifier refuses it; read everything.
                return ALL;
            }
            b += 1;
        }
        m
    };
    let use_kill: Vec<(u64, u64)> = insns
        .iter()
        .enumerate()
        .map(|(i, insn)| {
            if !is_insn[i] {
                return (0, 0);
            }
            let esc = escapes[func_of(i)];
            let class = insn.code & 7;
            let mode = insn.code & 0xe0;
            let size = match insn.code & 0x18 {
                BPF_B => 1,
                BPF_H => 2,
                BPF_W => 4,
                _ => 8,
            };
            let off = insn.off as i64;
            match class {
                BPF_LDX if insn.src() == 10 => (slots(off, size), 0),
                BPF_LDX => (if esc { ALL } else { 0 }, 0),
                BPF_STX if mode == BPF_ATOMIC => {
                    if insn.dst() == 10 {
                        (slots(off, size), 0)
                    } else {
                        (if esc { ALL } else { 0 }, 0)
                    }
                }
                BPF_ST | BPF_STX if insn.dst() == 10 => {
                    let s = slots(off, size);
                    let full = size == 8 && off % 8 == 0 && s != ALL;
                    (0, if full { s } else { 0 })
                }
                BPF_JMP | BPF_JMP32 if insn.code & 0xf0 == BPF_CALL => {
                    (if esc { ALL } else { 0 }, 0)
                }
                // Legacy packet loads call out (and may be rewritten to calls).
                BPF_LD if mode == BPF_ABS || mode == BPF_IND => (if esc { ALL } else { 0 }, 0),
                _ => (0, 0),
            }
        })
        .collect();
    backward_liveness(insns, is_insn, &use_kill)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn::new(code, dst, src, off, imm)
    }
    fn live(p: &[Insn], subprogs: &[usize]) -> Vec<u64> {
        live_stack_slots(p, &vec![true; p.len()], subprogs)
    }
    const EXIT: u8 = BPF_JMP | BPF_EXIT;

    #[test]
    fn loads_read_full_stores_kill_partial_ones_do_not() {
        let p = [
            ins(BPF_ST | BPF_MEM | BPF_DW, 10, 0, -8, 1), // 0: kills fp-8
            ins(BPF_ST | BPF_MEM | BPF_W, 10, 0, -16, 1), // 1: partial: no kill
            ins(BPF_LDX | BPF_MEM | BPF_DW, 0, 10, -8, 0), // 2: reads fp-8
            ins(BPF_LDX | BPF_MEM | BPF_B, 1, 10, -13, 0), // 3: reads a byte of fp-16
            ins(EXIT, 0, 0, 0, 0),
        ];
        let l = live(&p, &[0]);
        assert_eq!(l[0], 0b10, "fp-16 is read below and only partly written");
        assert_eq!(l[1], 0b11);
        assert_eq!(l[2], 0b11);
        assert_eq!(l[3], 0b10);
        assert_eq!(l[4], 0, "nothing is read after exit");
    }

    #[test]
    fn an_escaped_stack_is_read_by_calls_and_other_bases() {
        let p = [
            ins(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0), // 0: r2 = r10: escapes
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8), // 1
            ins(BPF_JMP | BPF_CALL, 0, 0, 0, 1),           // 2: a helper may read any slot
            ins(BPF_LDX | BPF_MEM | BPF_DW, 0, 2, 0, 0),   // 3: so may a load through r2
            ins(EXIT, 0, 0, 0, 0),
        ];
        let l = live(&p, &[0]);
        assert_eq!(l[2], u64::MAX);
        assert_eq!(l[3], u64::MAX);
        assert_eq!(l[4], 0);
        // Without the escape, neither reads the stack.
        let mut q = p;
        q[0] = ins(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0);
        assert!(live(&q, &[0]).iter().all(|&m| m == 0));
    }

    #[test]
    fn escapes_are_per_function() {
        // main escapes its stack into a call; the callee reads through r1 but its own stack
        // never escapes, so its slots are only its own loads'.
        let p = [
            ins(BPF_ALU64 | BPF_MOV | BPF_X, 1, 10, 0, 0),     // 0
            ins(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 1), // 1: call 3
            ins(EXIT, 0, 0, 0, 0),                             // 2
            ins(BPF_LDX | BPF_MEM | BPF_DW, 0, 1, 0, 0),       // 3: callee
            ins(EXIT, 0, 0, 0, 0),                             // 4
        ];
        let l = live(&p, &[0, 3]);
        assert_eq!(l[1], u64::MAX, "the call may read main's stack");
        assert_eq!(l[3], 0, "the callee's own stack is not read");
    }
}

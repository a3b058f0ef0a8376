//! Control-flow checks before exploration (`check_subprogs` and `check_cfg`): instruction
//! decoding, jump ranges, subprogram boundaries, unreachable instructions, and the prune
//! points where exploration stores states. Loops are allowed (privileged loader).

use kbpf_isa::Insn;
use kbpf_isa::decode::{CallTarget, DecodeError, Imm64Source, Instruction};

use crate::VerifierError;

/// What the control-flow pass learned.
pub(crate) struct Cfg {
    pub decoded: Vec<Option<Instruction>>,
    /// First instruction of each subprogram, sorted, starting with 0.
    pub subprogs: Vec<usize>,
    pub prune_points: Vec<bool>,
}

fn err(message: String, insn: Option<usize>, hint: Option<&str>) -> VerifierError {
    VerifierError {
        message,
        insn,
        hint: hint.map(str::to_owned),
        errno: crate::EINVAL,
    }
}

/// Runs the checks.
pub(crate) fn check_cfg(insns: &[Insn]) -> Result<Cfg, VerifierError> {
    if insns.is_empty() {
        return Err(err("empty program".into(), None, None));
    }
    let n = insns.len();
    let mut decoded = vec![None; n];
    let mut i = 0;
    while i < n {
        match Instruction::decode(insns, i) {
            Ok(ins) => {
                decoded[i] = Some(ins);
                i += ins.slots();
            }
            Err(e) => {
                let msg = match e {
                    DecodeError::BadOpcode { code, .. } => format!("unknown opcode {code:02x}"),
                    DecodeError::BadRegister { reg, .. } => format!("R{reg} is invalid"),
                    DecodeError::ReservedField { .. } => {
                        let code = insns[i].code;
                        let class = ["LD", "LDX", "ST", "STX", "ALU", "JMP", "JMP32", "ALU64"]
                            [(code & 7) as usize];
                        format!("BPF_{class} uses reserved fields")
                    }
                    DecodeError::BadLdImm64 { .. } => "invalid bpf_ld_imm64 insn".to_owned(),
                    other => other.to_string(),
                };
                return Err(err(msg, Some(i), None));
            }
        }
    }
    // Subprograms: instruction 0, every bpf-to-bpf call target and every callback
    // (`BPF_PSEUDO_FUNC`) target (`add_subprog_and_kfunc`).
    let mut subprogs = vec![0usize];
    for (idx, ins) in decoded.iter().enumerate() {
        if let Some(
            Instruction::Call(CallTarget::Local(imm))
            | Instruction::LdImm64 {
                src: Imm64Source::Func,
                imm,
                ..
            },
        ) = ins
        {
            let t = idx as i64 + 1 + *imm as i64;
            if t < 0 || t as usize >= n {
                return Err(err(
                    format!("function offset {t} is out of range"),
                    Some(idx),
                    None,
                ));
            }
            subprogs.push(t as usize);
        }
    }
    subprogs.sort_unstable();
    subprogs.dedup();
    // Jumps stay inside their subprogram; each subprogram ends in exit or jmp.
    for (si, &start) in subprogs.iter().enumerate() {
        let end = subprogs.get(si + 1).copied().unwrap_or(n);
        let mut last = start;
        for idx in start..end {
            let Some(ins) = decoded[idx] else { continue };
            last = idx;
            let target = match ins {
                Instruction::Ja { .. } | Instruction::Jmp { .. } | Instruction::MayGoto { .. } => {
                    ins.branch_target(idx)
                }
                _ => None,
            };
            if let Some(t) = target {
                if t < start as i64 || t >= end as i64 {
                    return Err(err(
                        format!("jump out of range from insn {idx} to {t}"),
                        Some(idx),
                        None,
                    ));
                }
                if decoded[t as usize].is_none() {
                    return Err(err(
                        format!("jump into the middle of ldimm64 insn {}", t - 1),
                        Some(idx),
                        None,
                    ));
                }
            }
        }
        match decoded[last] {
            Some(Instruction::Exit) | Some(Instruction::Ja { .. }) => {}
            _ => {
                return Err(err(
                    "last insn is not an exit or jmp".into(),
                    Some(last),
                    Some("every function must end with a return"),
                ));
            }
        }
    }
    // Reachability (DFS over all edges, calls included) and prune points.
    let mut prune_points = vec![false; n];
    let mut seen = vec![false; n];
    let mut stack = vec![0usize];
    seen[0] = true;
    while let Some(idx) = stack.pop() {
        let Some(ins) = decoded[idx] else { continue };
        let mut succ: Vec<usize> = Vec::with_capacity(2);
        match ins {
            Instruction::Exit => {}
            Instruction::Ja { .. } => {
                let t = ins.branch_target(idx).unwrap_or(0) as usize;
                prune_points[t] = true;
                succ.push(t);
            }
            // `may_goto` is a conditional jump to the verifier (both edges; `visit_insn` also
            // forces a checkpoint there, see `Checker::is_state_visited`).
            Instruction::Jmp { .. } | Instruction::MayGoto { .. } => {
                let t = ins.branch_target(idx).unwrap_or(0) as usize;
                prune_points[t] = true;
                prune_points[idx] = true;
                succ.push(t);
                succ.push(idx + 1);
            }
            Instruction::Call(CallTarget::Local(_)) => {
                // `visit_func_call_insn`: the call itself and the return address.
                let t = ins.branch_target(idx).unwrap_or(0) as usize;
                prune_points[idx] = true;
                if idx + 1 < n {
                    prune_points[idx + 1] = true;
                }
                succ.push(t);
                succ.push(idx + 1);
            }
            Instruction::LdImm64 {
                src: Imm64Source::Func,
                ..
            } => {
                // `visit_func_call_insn(visit_callee)`: the callback is reached from here.
                let t = ins.branch_target(idx).unwrap_or(0) as usize;
                prune_points[idx] = true;
                if idx + 2 < n {
                    prune_points[idx + 2] = true;
                }
                succ.push(t);
                succ.push(idx + 2);
            }
            Instruction::Call(CallTarget::Helper(id)) if crate::check::calls_callback(id) => {
                // The callback returns to the call, which runs it again: a checkpoint here
                // lets a repeated iteration be recognised (`mark_calls_callback`,
                // `mark_force_checkpoint`).
                prune_points[idx] = true;
                if idx + 1 < n {
                    prune_points[idx + 1] = true;
                }
                succ.push(idx + 1);
            }
            Instruction::Call(_) => {
                // Helper and kfunc calls: the instruction after the call.
                if idx + 1 < n {
                    prune_points[idx + 1] = true;
                }
                succ.push(idx + 1);
            }
            _ => succ.push(idx + ins.slots()),
        }
        for s in succ {
            if s < n && !seen[s] {
                seen[s] = true;
                stack.push(s);
            }
        }
    }
    for idx in 0..n {
        if decoded[idx].is_some() && !seen[idx] {
            return Err(err(
                format!("unreachable insn {idx}"),
                Some(idx),
                Some("remove the dead code (it usually means a jump offset is wrong)"),
            ));
        }
    }
    Ok(Cfg {
        decoded,
        subprogs,
        prune_points,
    })
}

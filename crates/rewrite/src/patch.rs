//! The program being rewritten and the two edits every fixup is made of: replacing one
//! instruction by a sequence (`bpf_patch_insn_data`) and removing a run of instructions
//! (`verifier_remove_insns`). Each edit keeps jump offsets, bpf-to-bpf call offsets, line
//! info, function info and subprogram starts consistent exactly the way the kernel's
//! `bpf_adj_branches`, `bpf_adj_linfo`, `bpf_adj_linfo_after_remove` and
//! `adjust_subprog_starts` do — which matters because the resulting offsets and `; source`
//! positions are visible in `prog dump xlated` and must read like the kernel's.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_object::{FuncInfo, LineInfo};
use kbpf_verifier::InsnAux;

use crate::RewriteError;

/// A program under rewrite: instructions with their verifier facts, line info, function info
/// and subprogram starts, all indexed by current instruction position.
#[derive(Clone, Debug)]
pub struct Prog {
    /// Instructions.
    pub insns: Vec<Insn>,
    /// Verifier facts per instruction; a patched sequence carries the original's facts on
    /// its last instruction and only `seen` on the others, like `adjust_insn_aux_data`.
    pub aux: Vec<InsnAux>,
    /// Index of each instruction in the program the verifier saw, `None` for inserted ones.
    pub orig: Vec<Option<usize>>,
    /// Line info, sorted by instruction index.
    pub line_info: Vec<LineInfo>,
    /// Function info, one per subprogram, sorted by instruction index.
    pub func_info: Vec<FuncInfo>,
    /// First instruction of each subprogram (entry first).
    pub subprog_starts: Vec<usize>,
}

/// Is this a jump whose `off` (or `imm` for `gotol`) is a pc-relative target?
fn jump_offset(insn: &Insn) -> Option<i32> {
    let class = insn.class();
    if class != BPF_JMP && class != BPF_JMP32 {
        return None;
    }
    let op = insn.code & 0xf0;
    match op {
        BPF_EXIT => None,
        BPF_CALL => (insn.src() == BPF_PSEUDO_CALL).then_some(insn.imm),
        BPF_JA if class == BPF_JMP32 => Some(insn.imm),
        _ => Some(insn.off as i32),
    }
}

fn set_jump_offset(insn: &mut Insn, off: i32) -> Result<(), RewriteError> {
    let class = insn.class();
    let op = insn.code & 0xf0;
    if (op == BPF_CALL && insn.src() == BPF_PSEUDO_CALL) || (op == BPF_JA && class == BPF_JMP32) {
        insn.imm = off;
    } else {
        insn.off = i16::try_from(off).map_err(|_| RewriteError::JumpOutOfRange)?;
    }
    Ok(())
}

/// `bpf_adj_delta_to_off`/`_imm` for one instruction at (new) position `curr` after the
/// region `[pos, end_old)` became `[pos, end_new)`.
fn adjusted(curr: usize, off: i32, pos: usize, end_old: usize, end_new: usize) -> i32 {
    let (curr, pos, end_old, end_new) = (curr as i64, pos as i64, end_old as i64, end_new as i64);
    let delta = end_new - end_old;
    let target = curr + off as i64 + 1;
    let off = off as i64;
    let r = if curr < pos && target >= end_old {
        off + delta
    } else if curr >= end_new && target < end_new {
        off - delta
    } else {
        off
    };
    r as i32
}

impl Prog {
    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// True when there are no instructions.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    fn adj_branches(
        &mut self,
        pos: usize,
        end_old: usize,
        end_new: usize,
    ) -> Result<(), RewriteError> {
        let mut i = 0;
        while i < self.insns.len() {
            let insn = self.insns[i];
            if insn.is_ld_imm64() {
                if insn.src() == BPF_PSEUDO_FUNC {
                    let off = adjusted(i, insn.imm, pos, end_old, end_new);
                    self.insns[i].imm = off;
                }
                i += 2;
                continue;
            }
            if let Some(off) = jump_offset(&insn) {
                let new = adjusted(i, off, pos, end_old, end_new);
                if new != off {
                    set_jump_offset(&mut self.insns[i], new)?;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Replaces the instruction at `pos` by `seq` (`bpf_patch_insn_data`).
    pub fn patch(&mut self, pos: usize, seq: &[Insn]) -> Result<(), RewriteError> {
        if seq.is_empty() {
            return Err(RewriteError::VerifierBug(format!(
                "empty patch at insn {pos}"
            )));
        }
        let len = seq.len();
        let old_aux = self.aux[pos];
        let old_orig = self.orig[pos];
        self.insns.splice(pos..pos + 1, seq.iter().copied());
        let filler = InsnAux {
            seen: old_aux.seen,
            ..InsnAux::default()
        };
        let mut aux = vec![filler; len];
        aux[len - 1] = old_aux;
        self.aux.splice(pos..pos + 1, aux);
        let mut orig = vec![None; len];
        orig[0] = old_orig;
        self.orig.splice(pos..pos + 1, orig);
        if len == 1 {
            return Ok(());
        }
        let delta = len - 1;
        self.adj_branches(pos, pos + 1, pos + len)?;
        for l in &mut self.line_info {
            if l.insn_idx > pos {
                l.insn_idx += delta;
            }
        }
        for s in &mut self.subprog_starts {
            if *s > pos {
                *s += delta;
            }
        }
        for f in &mut self.func_info {
            if f.insn_idx > pos {
                f.insn_idx += delta;
            }
        }
        Ok(())
    }

    /// `adjust_jmp_off`: after a prologue of `delta` instructions was patched in at `tgt`,
    /// jumps (not calls) from outside it that target `tgt` go to `tgt + delta`, the
    /// program's own first instruction, instead of the prologue.
    pub fn adjust_jmp_off(&mut self, tgt: usize, delta: usize) -> Result<(), RewriteError> {
        let mut i = 0;
        while i < self.insns.len() {
            let insn = self.insns[i];
            let skip = (tgt..tgt + delta).contains(&i) || insn.code & 0xf0 == BPF_CALL;
            if !skip
                && let Some(off) = jump_offset(&insn)
                && i as i64 + 1 + off as i64 == tgt as i64
            {
                set_jump_offset(&mut self.insns[i], off + delta as i32)?;
            }
            i += if insn.is_ld_imm64() { 2 } else { 1 };
        }
        Ok(())
    }

    /// Removes `cnt` instructions at `off` (`verifier_remove_insns`). No live jump may target
    /// them (they are dead code or no-op jumps).
    pub fn remove(&mut self, off: usize, cnt: usize) -> Result<(), RewriteError> {
        if cnt == 0 {
            return Ok(());
        }
        self.insns.drain(off..off + cnt);
        self.aux.drain(off..off + cnt);
        self.orig.drain(off..off + cnt);
        self.adj_branches(off, off + cnt, off)?;
        self.adj_linfo_after_remove(off, cnt);
        // Subprograms wholly inside the removed range disappear; later ones move up.
        let end = off + cnt;
        let mut keep_func = Vec::with_capacity(self.func_info.len());
        let mut starts = Vec::with_capacity(self.subprog_starts.len());
        for (k, &s) in self.subprog_starts.iter().enumerate() {
            let next = self.subprog_starts.get(k + 1).copied();
            let whole = s >= off && next.is_some_and(|n| n <= end);
            if whole {
                continue;
            }
            let ns = if s >= end {
                s - cnt
            } else if s > off {
                off
            } else {
                s
            };
            starts.push(ns);
            keep_func.push(s);
        }
        self.func_info.retain(|f| keep_func.contains(&f.insn_idx));
        for f in &mut self.func_info {
            if f.insn_idx >= end {
                f.insn_idx -= cnt;
            } else if f.insn_idx > off {
                f.insn_idx = off;
            }
        }
        self.subprog_starts = starts;
        Ok(())
    }

    /// `bpf_adj_linfo_after_remove`: the last line info of the removed range survives on the
    /// first live instruction after it when that instruction has none of its own.
    fn adj_linfo_after_remove(&mut self, off: usize, cnt: usize) {
        let linfo = &mut self.line_info;
        let l_off = linfo
            .iter()
            .position(|l| l.insn_idx >= off)
            .unwrap_or(linfo.len());
        let mut i = l_off;
        let mut l_cnt = 0;
        while i < linfo.len() && linfo[i].insn_idx < off + cnt {
            l_cnt += 1;
            i += 1;
        }
        if self.insns.len() != off
            && l_cnt > 0
            && (i == linfo.len() || linfo[i].insn_idx != off + cnt)
        {
            l_cnt -= 1;
            i -= 1;
            linfo[i].insn_idx = off + cnt;
        }
        if l_cnt > 0 {
            linfo.drain(l_off..l_off + l_cnt);
        }
        for l in linfo.iter_mut().skip(l_off) {
            l.insn_idx -= cnt;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ja(off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
    }
    fn mov(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    fn li(idx: usize, line: &str) -> LineInfo {
        LineInfo {
            insn_idx: idx,
            file_name: "f.c".into(),
            line: line.into(),
            line_num: idx as u32,
            line_col: 0,
            file_name_off: 0,
            line_off: 0,
        }
    }
    fn prog(insns: Vec<Insn>, line_info: Vec<LineInfo>) -> Prog {
        let n = insns.len();
        Prog {
            insns,
            aux: vec![
                InsnAux {
                    seen: true,
                    ..Default::default()
                };
                n
            ],
            orig: (0..n).map(Some).collect(),
            line_info,
            func_info: vec![],
            subprog_starts: vec![0],
        }
    }

    #[test]
    fn patch_moves_forward_jumps_across_the_patch_and_keeps_jumps_onto_it() {
        // 0: ja +2 (to 3)   1: ja +0 (to 2, the patched insn)   2: mov   3: exit
        let mut p = prog(
            vec![ja(2), ja(0), mov(0, 1), exit()],
            vec![li(2, "a"), li(3, "b")],
        );
        p.patch(2, &[mov(0, 1), mov(0, 2), mov(0, 3)]).unwrap();
        assert_eq!(p.insns[0].off, 4, "jump over the patch grows by 2");
        assert_eq!(
            p.insns[1].off, 0,
            "jump onto the patch lands on its first insn"
        );
        assert_eq!(p.line_info[0].insn_idx, 2);
        assert_eq!(p.line_info[1].insn_idx, 5);
        assert_eq!(p.orig, vec![Some(0), Some(1), Some(2), None, None, Some(3)]);
    }

    #[test]
    fn patch_moves_backward_jumps_across_the_patch() {
        // 0: mov  1: mov (patched)  2: ja -3 (to 0)
        let mut p = prog(vec![mov(0, 0), mov(0, 1), ja(-3), exit()], vec![]);
        p.patch(1, &[mov(0, 1), mov(0, 2)]).unwrap();
        assert_eq!(p.insns[3].off, -4);
        // a backward jump onto the patched insn lands on its first insn
        let mut p = prog(vec![mov(0, 0), mov(0, 1), ja(-2), exit()], vec![]);
        p.patch(1, &[mov(0, 1), mov(0, 2)]).unwrap();
        assert_eq!(p.insns[3].off, -3);
    }

    #[test]
    fn a_jump_back_to_the_start_skips_a_prologue() {
        // 0: mov  1: ja -2 (to 0)  2: exit; a 3-insn prologue ends with the old insn 0.
        let mut p = prog(vec![mov(0, 0), ja(-2), exit()], vec![]);
        p.patch(0, &[mov(0, 7), mov(0, 8), mov(0, 0)]).unwrap();
        assert_eq!(p.insns[3].off, -4, "bpf_patch_insn_data: onto the prologue");
        p.adjust_jmp_off(0, 2).unwrap();
        assert_eq!(
            p.insns[3].off, -2,
            "adjust_jmp_off: onto the program's first insn"
        );
    }

    #[test]
    fn patch_overflowing_an_offset_is_an_error() {
        let mut p = prog(vec![ja(1), mov(0, 1), exit()], vec![]);
        p.insns[0].off = i16::MAX;
        p.insns
            .extend(std::iter::repeat_n(mov(0, 0), i16::MAX as usize));
        p.aux.resize(p.insns.len(), InsnAux::default());
        p.orig.resize(p.insns.len(), None);
        assert_eq!(
            p.patch(1, &[mov(0, 1), mov(0, 2)]),
            Err(RewriteError::JumpOutOfRange)
        );
    }

    #[test]
    fn remove_keeps_last_removed_line_info_on_the_next_insn() {
        // 0: ja +2  1: mov (dead, line "x")  2: mov (dead, line "y")  3: exit (no line)
        let mut p = prog(
            vec![ja(2), mov(0, 1), mov(0, 2), exit()],
            vec![li(0, "j"), li(1, "x"), li(2, "y")],
        );
        p.remove(1, 2).unwrap();
        assert_eq!(p.insns.len(), 2);
        assert_eq!(p.insns[0].off, 0);
        let lines: Vec<_> = p
            .line_info
            .iter()
            .map(|l| (l.insn_idx, l.line.as_str()))
            .collect();
        assert_eq!(lines, vec![(0, "j"), (1, "y")]);
    }

    #[test]
    fn remove_drops_removed_line_info_when_the_next_insn_has_its_own() {
        let mut p = prog(
            vec![ja(1), mov(0, 1), exit()],
            vec![li(0, "j"), li(1, "x"), li(2, "e")],
        );
        p.remove(1, 1).unwrap();
        let lines: Vec<_> = p
            .line_info
            .iter()
            .map(|l| (l.insn_idx, l.line.as_str()))
            .collect();
        assert_eq!(lines, vec![(0, "j"), (1, "e")]);
    }

    #[test]
    fn remove_adjusts_backward_jumps_and_subprogs() {
        // 0: mov 1: dead 2: ja -3 (to 0) 3: exit; subprog at 3
        let mut p = prog(vec![mov(0, 0), mov(0, 9), ja(-3), exit()], vec![]);
        p.subprog_starts = vec![0, 3];
        p.remove(1, 1).unwrap();
        assert_eq!(p.insns[1].off, -2);
        assert_eq!(p.subprog_starts, vec![0, 2]);
    }
}

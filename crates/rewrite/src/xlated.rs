//! `prog dump xlated`: the text bpftool prints for a translated program
//! (`tools/bpf/bpftool/xlated_dumper.c`), produced from kbpf's own translated program.
//!
//! What the kernel hands bpftool, kbpf prints the same way: map pointers shown as
//! `map[id:N]` / `map[id:N][0]+OFF` (`bpf_insn_prepare_dump` turns addresses back into ids),
//! calls as `call <kernel name>#<imm>`, bpf-to-bpf calls as `call pc+N#bpf_prog_<tag>_<name>`,
//! a `; source` line wherever a line-info record starts and the BTF prototype of each function
//! before its first instruction.

use kbpf_isa::Insn;
use kbpf_isa::disasm::{CallKind, CallSite, Dialect, Disasm, DisasmError};
use kbpf_isa::insn::*;

use crate::Xlated;

/// Options of `prog dump xlated`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DumpOptions {
    /// `opcodes`: the raw bytes after each instruction.
    pub opcodes: bool,
    /// `linum`: file, line and column after each source line.
    pub linum: bool,
    /// Which disassembler's text (bpftool 7.1's, or the current kernel's).
    pub dialect: Dialect,
}

/// The instructions as `bpf_insn_prepare_dump` gives them to user space: map addresses
/// replaced by (`BPF_PSEUDO_MAP_FD`, id) or (`BPF_PSEUDO_MAP_VALUE`, id, offset), and
/// bpf-to-bpf calls in the JIT's form (`jit_subprogs`' last step): `off` = the pc-relative
/// offset, `imm` = the callee's subprogram index.
pub fn insns_for_dump(x: &Xlated) -> Vec<Insn> {
    let mut out = x.insns.clone();
    let mut i = 0;
    while i < out.len() {
        let insn = out[i];
        if insn.code == BPF_JMP | BPF_CALL && insn.src() == BPF_PSEUDO_CALL {
            let target = i as i64 + insn.imm as i64 + 1;
            let sub = x
                .subprog_starts
                .iter()
                .position(|&s| s as i64 == target)
                .unwrap_or(0);
            out[i].off = insn.imm as i16;
            out[i].imm = sub as i32;
            i += 1;
            continue;
        }
        if out[i].is_ld_imm64() && i + 1 < out.len() {
            let addr = (out[i].imm as u32 as u64) | ((out[i + 1].imm as u32 as u64) << 32);
            if let Some((id, off, value)) = x.map_from_addr(addr) {
                let src = if value {
                    BPF_PSEUDO_MAP_VALUE
                } else {
                    BPF_PSEUDO_MAP_FD
                };
                out[i] = Insn::new(out[i].code, out[i].dst(), src, 0, id as i32);
                out[i + 1].imm = off as i32;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// The whole `bpftool prog dump xlated` text of `x`.
pub fn dump(x: &Xlated, opts: &DumpOptions) -> Result<String, DisasmError> {
    let insns = insns_for_dump(x);
    let resolver = |site: &CallSite| -> Option<String> {
        match site.kind {
            CallKind::Helper => {
                let addr = kbpf_maps::call_target(site.insn.imm);
                x.call_name(addr).map(str::to_owned)
            }
            CallKind::BpfToBpf => {
                let sub = site.insn.imm as usize;
                let name = x.subprog_names.get(sub)?;
                Some(format!("{:+}#{name}", site.insn.off))
            }
            _ => None,
        }
    };
    let dis = Disasm::new().dialect(opts.dialect).call_resolver(&resolver);
    let mut li = 0;
    let mut fi = 0;
    let mut annotate = |idx: usize, out: &mut String| {
        while fi < x.func_info.len() && x.func_info[fi].insn_idx <= idx {
            if x.func_info[fi].insn_idx == idx
                && let Some(proto) = x.func_protos.get(fi).and_then(|p| p.as_deref())
            {
                out.push_str(proto);
                out.push_str(":\n");
            }
            fi += 1;
        }
        let mut last = None;
        while li < x.line_info.len() && x.line_info[li].insn_idx <= idx {
            last = Some(li);
            li += 1;
        }
        if let Some(l) = last {
            let l = &x.line_info[l];
            out.push_str("; ");
            out.push_str(l.line.trim_start());
            if opts.linum {
                out.push_str(&format!(
                    " [file:{} line_num:{} line_col:{}]",
                    l.file_name, l.line_num, l.line_col
                ));
            }
            out.push('\n');
        }
    };
    dis.dump_xlated_annotated(&insns, opts.opcodes, &mut annotate)
}

/// Normalises a dump for comparison with another loader's: map ids become `map[id:*]`,
/// helper/kernel-function call immediates `call name#*`, and the per-CPU address loaded
/// right before a per-CPU move (the inlined `bpf_get_smp_processor_id`'s `&cpu_number`)
/// `r0 = *`; nothing else changes (bpf-to-bpf calls keep their offset and subprogram tag).
pub fn normalize(text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for k in 1..lines.len() {
        let percpu_move =
            lines[k].ends_with(") r0 = r0") || lines[k].ends_with("r0 = &(void __percpu *)(r0)");
        if percpu_move
            && lines[k - 1].contains(": (b7) r0 = ")
            && let Some(p) = lines[k - 1].rfind("r0 = ")
        {
            let head = lines[k - 1][..p].to_owned();
            lines[k - 1] = format!("{head}r0 = *");
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in &lines {
        let mut l = line.to_owned();
        let mut from = 0;
        while let Some(p) = l[from..].find("map[id:") {
            let start = from + p + "map[id:".len();
            let end = l[start..].find(']').map_or(l.len(), |e| start + e);
            l.replace_range(start..end, "*");
            from = start;
        }
        if let Some(p) = l.find(") call ") {
            let name_start = p + ") call ".len();
            if !l[name_start..].starts_with("pc")
                && let Some(h) = l[name_start..].find('#')
            {
                let num_start = name_start + h + 1;
                let num_end = l[num_start..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '-'))
                    .map_or(l.len(), |e| num_start + e);
                l.replace_range(num_start..num_end, "*");
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalize_hides_ids_and_call_immediates_only() {
        let text = "  23: (18) r1 = map[id:170]\n  46: (18) r2 = map[id:176][0]+8\n  68: (85) call __htab_map_lookup_elem#330864\n   9: (85) call pc+5#bpf_prog_ae8a1a027b8c29c1_fold\n  10: (07) r1 += 312\n";
        assert_eq!(
            normalize(text),
            "  23: (18) r1 = map[id:*]\n  46: (18) r2 = map[id:*][0]+8\n  68: (85) call __htab_map_lookup_elem#*\n   9: (85) call pc+5#bpf_prog_ae8a1a027b8c29c1_fold\n  10: (07) r1 += 312\n"
        );
    }
}

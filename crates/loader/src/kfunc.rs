//! Kernel-function externs (`extern ... __ksym` called by a program): libbpf's
//! `bpf_object__resolve_ksym_func_btf_id` and `RELO_EXTERN_CALL`.
//!
//! The object crate leaves each such call as `call` with `src = BPF_PSEUDO_KFUNC_CALL` and
//! `imm = 0` ([`kbpf_object::RelocKind::Kfunc`]). Here the name is looked up among the
//! kernel BTF's `FUNC`s (vmlinux only: kbpf has no module BTFs):
//!
//! - found: `imm` = the function's BTF id, `off` = 0 (vmlinux);
//! - missing and the extern is `__weak`: the call is poisoned as libbpf does (a helper call
//!   with `imm = POISON_CALL_KFUNC_BASE + extern index`), which the verifier refuses with
//!   `invalid func unknown#…` only if the call is reachable;
//! - missing otherwise: the load fails with libbpf's message.
//!
//! Whether the kernel lets the program call the function, and with which arguments, is the
//! verifier's business (`LoadedProgram::kfuncs` gives it the names).

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_CALL, BPF_JMP, BPF_PSEUDO_KFUNC_CALL};
use kbpf_object::btf::kind;
use kbpf_object::{Btf, Program, RelocKind};

use crate::error::LoadError;

/// libbpf's `POISON_CALL_KFUNC_BASE`.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// Whether `prog` calls any kernel function (and so needs the kernel's BTF).
pub fn has_kfunc_calls(prog: &Program) -> bool {
    prog.relocations
        .iter()
        .any(|r| matches!(r.kind, RelocKind::Kfunc { .. }))
}

/// The STRUCT and UNION ids of `btf`, ascending (`btf_type_is_struct`).
pub fn struct_ids(btf: &Btf) -> Vec<u32> {
    btf.types()
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            let k = kbpf_object::btf::kind_number(&t.kind);
            k == kind::STRUCT || k == kind::UNION
        })
        .map(|(i, _)| i as u32)
        .collect()
}

/// Resolves `prog`'s kfunc calls in `insns` (its relocated copy) against `target`.
/// `extern_index(name)` is the extern's index in the object (for the poison value).
/// Returns the resolved `(btf_id, name)` pairs, ascending by id, without duplicates.
pub fn resolve_kfuncs(
    prog: &Program,
    insns: &mut [Insn],
    target: &Btf,
    extern_index: impl Fn(&str) -> usize,
) -> Result<Vec<(i32, String)>, LoadError> {
    let mut out: Vec<(i32, String)> = Vec::new();
    for r in &prog.relocations {
        let RelocKind::Kfunc { weak } = r.kind else {
            continue;
        };
        let err = |reason: String| LoadError::Relocation {
            program: prog.name.clone(),
            section: prog.section.clone(),
            insn_idx: r.insn_idx,
            symbol: r.symbol.clone(),
            reason,
        };
        let Some(insn) = insns.get_mut(r.insn_idx) else {
            return Err(err("index past the end of the program".into()));
        };
        match target.find_by_name_kind(&r.symbol, kind::FUNC) {
            Some(id) => {
                let id = i32::try_from(id).map_err(|_| err(format!("BTF id {id} too large")))?;
                *insn = Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, id);
                out.push((id, r.symbol.clone()));
            }
            None if weak => {
                let idx = i32::try_from(extern_index(&r.symbol)).unwrap_or(0);
                *insn = Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE + idx);
            }
            None => {
                return Err(err(format!(
                    "extern (func ksym) '{}': not found in kernel or module BTFs",
                    r.symbol
                )));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The kfunc externs of `obj`'s programs, sorted by name (libbpf numbers externs in its
/// sorted extern table; kbpf sorts the kfunc ones by name).
pub fn extern_names(programs: &[Program]) -> Vec<String> {
    let mut names: Vec<String> = programs
        .iter()
        .flat_map(|p| &p.relocations)
        .filter(|r| matches!(r.kind, RelocKind::Kfunc { .. }))
        .map(|r| r.symbol.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_base_is_libbpfs() {
        // libbpf: `#define POISON_CALL_KFUNC_BASE 2002000000`.
        assert_eq!(POISON_CALL_KFUNC_BASE, 2002000000);
    }
}

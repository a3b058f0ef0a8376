//! The passes of `bpf_check()` after ctx conversion: dead code removal
//! (`opt_hard_wire_dead_code_branches`, `opt_remove_dead_code`, `opt_remove_nops`),
//! `do_misc_fixups` (division guards, map helpers, helper call immediates) and the map
//! `ld_imm64` resolution (`resolve_pseudo_ldimm64` + `convert_pseudo_ld_imm64`).

use std::collections::HashMap;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_maps::raw::ops_for;
use kbpf_maps::{GenLookup, Map, MapType};
use kbpf_verifier::{MapRef, MapUse};

use crate::env::MapsEnv;
use crate::patch::Prog;
use crate::{RewriteError, RewriteInput};

/// `BPF_REG_AX`, the kernel's hidden scratch register used by rewrites.
pub const BPF_REG_AX: u8 = 11;

/// Helper ids the map fixups know (`include/uapi/linux/bpf.h`).
pub mod func {
    use kbpf_uapi::bpf::{
        BPF_FUNC_CGRP_STORAGE_GET, BPF_FUNC_INODE_STORAGE_GET, BPF_FUNC_SK_STORAGE_GET,
        BPF_FUNC_TASK_STORAGE_GET,
    };
    pub use kbpf_uapi::bpf::{
        BPF_FUNC_GET_SMP_PROCESSOR_ID as GET_SMP_PROCESSOR_ID,
        BPF_FUNC_MAP_DELETE_ELEM as MAP_DELETE_ELEM, BPF_FUNC_MAP_LOOKUP_ELEM as MAP_LOOKUP_ELEM,
        BPF_FUNC_MAP_PEEK_ELEM as MAP_PEEK_ELEM, BPF_FUNC_MAP_POP_ELEM as MAP_POP_ELEM,
        BPF_FUNC_MAP_PUSH_ELEM as MAP_PUSH_ELEM, BPF_FUNC_MAP_UPDATE_ELEM as MAP_UPDATE_ELEM,
        BPF_FUNC_REDIRECT_MAP as REDIRECT_MAP, BPF_FUNC_TAIL_CALL as TAIL_CALL,
    };

    /// `is_storage_get_function`: the local-storage getters, whose last argument the
    /// verifier sets to the allocation flags.
    pub fn is_storage_get(id: i32) -> bool {
        matches!(
            id,
            BPF_FUNC_SK_STORAGE_GET
                | BPF_FUNC_INODE_STORAGE_GET
                | BPF_FUNC_TASK_STORAGE_GET
                | BPF_FUNC_CGRP_STORAGE_GET
        )
    }
}

/// `GFP_ATOMIC` (`__GFP_HIGH | __GFP_KSWAPD_RECLAIM`) as 6.x kernels define it: what a
/// non-sleepable program's storage getters allocate with (bpftool shows `r5 = 2080`).
const GFP_ATOMIC: i32 = 0x820;

fn is_cond_jump(insn: &Insn) -> bool {
    let class = insn.class();
    if class != BPF_JMP && class != BPF_JMP32 {
        return false;
    }
    !matches!(insn.code & 0xf0, BPF_JA | BPF_CALL | BPF_EXIT)
}

/// Dead code: hard-wire branches whose one side was never taken, remove unreached
/// instructions, then remove the no-op `goto +0`s (privileged loaders only, as here).
pub fn remove_dead_code(prog: &mut Prog) -> Result<(), RewriteError> {
    // opt_hard_wire_dead_code_branches
    for i in 0..prog.len() {
        let insn = prog.insns[i];
        if !is_cond_jump(&insn) || !prog.aux[i].seen {
            continue;
        }
        let fall_seen = prog.aux.get(i + 1).is_some_and(|a| a.seen);
        let target = i as i64 + 1 + insn.off as i64;
        let target_seen = usize::try_from(target)
            .ok()
            .and_then(|t| prog.aux.get(t))
            .is_some_and(|a| a.seen);
        let off = if !fall_seen {
            insn.off
        } else if !target_seen {
            0
        } else {
            continue;
        };
        prog.insns[i] = Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0);
    }
    // opt_remove_dead_code
    let mut i = 0;
    while i < prog.len() {
        let mut j = 0;
        while i + j < prog.len() && !prog.aux[i + j].seen {
            j += 1;
        }
        if j > 0 {
            prog.remove(i, j)?;
        }
        i += 1;
    }
    // opt_remove_nops
    let nop = Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0);
    let mut i = 0;
    while i < prog.len() {
        if prog.insns[i] == nop {
            prog.remove(i, 1)?;
            continue;
        }
        i += if prog.insns[i].is_ld_imm64() { 2 } else { 1 };
    }
    Ok(())
}

fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

/// The guards `do_misc_fixups` puts around division and modulo so that no run can trap:
/// `x / 0 = 0`, `x % 0 = x`, and for signed ops `x s/ -1 = -x`, `x s% -1 = 0`.
fn div_guard(insn: &Insn) -> Option<Vec<Insn>> {
    let class = insn.class();
    if class != BPF_ALU && class != BPF_ALU64 {
        return None;
    }
    let op = insn.code & 0xf0;
    if op != BPF_DIV && op != BPF_MOD {
        return None;
    }
    let is64 = class == BPF_ALU64;
    let alu = if is64 { BPF_ALU64 } else { BPF_ALU };
    let jmp = if is64 { BPF_JMP } else { BPF_JMP32 };
    let isdiv = op == BPF_DIV;
    let signed = insn.off == 1;
    let (d, s) = (insn.dst(), insn.src());
    if insn.code & BPF_X == 0 {
        // Only a signed op by the constant -1 needs rewriting.
        if !(signed && insn.imm == -1) {
            return None;
        }
        return Some(vec![if isdiv {
            raw(alu | BPF_NEG | BPF_K, d, 0, 0, 0)
        } else {
            raw(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, 0)
        }]);
    }
    let mut p = Vec::with_capacity(9);
    if signed && isdiv {
        p.push(raw(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_AX, s, 0, 0));
        p.push(raw(alu | BPF_ADD | BPF_K, BPF_REG_AX, 0, 0, 1));
        p.push(raw(jmp | BPF_JGT | BPF_K, BPF_REG_AX, 0, 4, 1));
        p.push(raw(jmp | BPF_JEQ | BPF_K, BPF_REG_AX, 0, 1, 0));
        p.push(raw(alu | BPF_MOV | BPF_K, d, 0, 0, 0));
        p.push(raw(alu | BPF_NEG | BPF_K, d, 0, 0, 0));
        p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
        p.push(*insn);
    } else if signed {
        p.push(raw(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_AX, s, 0, 0));
        p.push(raw(alu | BPF_ADD | BPF_K, BPF_REG_AX, 0, 0, 1));
        p.push(raw(jmp | BPF_JGT | BPF_K, BPF_REG_AX, 0, 3, 1));
        p.push(raw(
            jmp | BPF_JEQ | BPF_K,
            BPF_REG_AX,
            0,
            3 + if is64 { 0 } else { 1 },
            1,
        ));
        p.push(raw(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, 0));
        p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
        p.push(*insn);
        if !is64 {
            p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
            p.push(raw(BPF_ALU | BPF_MOV | BPF_X, d, d, 0, 0));
        }
    } else if isdiv {
        p.push(raw(jmp | BPF_JNE | BPF_K, s, 0, 2, 0));
        p.push(raw(BPF_ALU | BPF_XOR | BPF_X, d, d, 0, 0));
        p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
        p.push(*insn);
    } else {
        p.push(raw(
            jmp | BPF_JEQ | BPF_K,
            s,
            0,
            1 + if is64 { 0 } else { 1 },
            0,
        ));
        p.push(*insn);
        if !is64 {
            p.push(raw(BPF_JMP | BPF_JA, 0, 0, 1, 0));
            p.push(raw(BPF_ALU | BPF_MOV | BPF_X, d, d, 0, 0));
        }
    }
    Some(p)
}

/// The map (or inner-map meta) a call site's facts name, and how it answers lookups.
struct SiteMap {
    map_type: MapType,
    lookup: GenLookup,
}

fn site_map(maps: &MapsEnv, r: MapRef, at: usize) -> Result<SiteMap, RewriteError> {
    let bug = |what: &str| RewriteError::VerifierBug(format!("insn {at}: {what}"));
    match r {
        MapRef::Fd(fd) => {
            let m: &Map = maps.map(fd).ok_or_else(|| bug("map fd not found"))?;
            Ok(SiteMap {
                map_type: m.map_type(),
                lookup: m.gen_lookup(),
            })
        }
        MapRef::InnerOf(fd) => {
            let m = maps.map(fd).ok_or_else(|| bug("outer map fd not found"))?;
            let meta = m
                .inner_map_meta()
                .ok_or_else(|| bug("inner-map meta of a map without one"))?;
            Ok(SiteMap {
                map_type: meta.desc().map_type,
                lookup: meta.gen_lookup(),
            })
        }
    }
}

fn call_insn(addr: usize) -> Result<Insn, RewriteError> {
    let imm = kbpf_maps::call_imm(addr).map_err(|e| RewriteError::CallRange(e.to_string()))?;
    Ok(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, imm))
}

fn name_of(input: &RewriteInput<'_>, addr: usize) -> Option<&'static str> {
    kbpf_maps::raw_function_name(addr).or_else(|| input.kernel.name(addr))
}

/// `do_misc_fixups`, the parts a privileged x86-64 JIT load goes through.
pub fn misc_fixups(
    prog: &mut Prog,
    input: &RewriteInput<'_>,
    names: &mut HashMap<usize, &'static str>,
) -> Result<(), RewriteError> {
    let note = |addr: usize, names: &mut HashMap<usize, &'static str>| {
        if let Some(n) = name_of(input, addr) {
            names.insert(addr, n);
        }
    };
    let mut i = 0;
    while i < prog.len() {
        let insn = prog.insns[i];
        if insn.is_ld_imm64() {
            i += 2;
            continue;
        }
        if let Some(seq) = div_guard(&insn) {
            let cnt = seq.len();
            prog.patch(i, &seq)?;
            i += cnt;
            continue;
        }
        let class = insn.class();
        if class == BPF_LD {
            let name = crate::ld_abs::load_helper(insn.code & 0x18);
            let addr = input
                .kernel
                .function(name)
                .ok_or_else(|| RewriteError::Unsupported {
                    insn: prog.orig[i].unwrap_or(i),
                    what: format!("legacy ld_abs/ld_ind ({name})"),
                })?;
            let seq = crate::ld_abs::gen_ld_abs(&insn, call_insn(addr)?)?;
            note(addr, names);
            let cnt = seq.len();
            prog.patch(i, &seq)?;
            i += cnt;
            continue;
        }
        if insn.code == BPF_JMP | BPF_CALL
            && insn.src() == BPF_PSEUDO_KFUNC_CALL
            && matches!(
                prog.aux[i].kfunc,
                Some("bpf_cast_to_kern_ctx" | "bpf_rdonly_cast")
            )
        {
            // fixup_kfunc_call: either cast is the pointer itself.
            prog.insns[i] = raw(BPF_ALU64 | BPF_MOV | BPF_X, 0, 1, 0, 0);
            i += 1;
            continue;
        }
        if insn.code != BPF_JMP | BPF_CALL || insn.src() != 0 {
            i += 1;
            continue;
        }
        let aux = prog.aux[i];
        let at = prog.orig[i].unwrap_or(i);
        let id = insn.imm;
        if id == func::TAIL_CALL {
            // Kept as `call bpf_tail_call#12`, which is also how the kernel's dump shows its
            // BPF_TAIL_CALL instruction; kbpf's engines implement it by helper id.
            i += 1;
            continue;
        }
        let map_helper = matches!(
            id,
            func::MAP_LOOKUP_ELEM
                | func::MAP_UPDATE_ELEM
                | func::MAP_DELETE_ELEM
                | func::MAP_PUSH_ELEM
                | func::MAP_POP_ELEM
                | func::MAP_PEEK_ELEM
        );
        if map_helper && let MapUse::Map(r) = aux.map {
            let site = site_map(input.maps, r, at)?;
            if id == func::MAP_LOOKUP_ELEM
                && let GenLookup::Inline(seq) = &site.lookup
            {
                if seq.is_empty() || seq.len() >= 32 {
                    return Err(RewriteError::VerifierBug(format!(
                        "{} insns generated for map lookup",
                        seq.len()
                    )));
                }
                for s in seq {
                    if s.code == BPF_JMP | BPF_CALL {
                        note(kbpf_maps::call_target(s.imm), names);
                    }
                }
                let cnt = seq.len();
                prog.patch(i, seq.as_slice())?;
                i += cnt;
                continue;
            }
            // Not inlined (BPF_F_INNER_MAP arrays, types without map_gen_lookup) or another
            // map helper: a direct call of the type's own operation.
            let ops = ops_for(site.map_type);
            let addr = match id {
                func::MAP_LOOKUP_ELEM => ops.map_lookup_elem as usize,
                func::MAP_UPDATE_ELEM => ops.map_update_elem as usize,
                func::MAP_DELETE_ELEM => ops.map_delete_elem as usize,
                func::MAP_PUSH_ELEM => ops.map_push_elem as usize,
                func::MAP_POP_ELEM => ops.map_pop_elem as usize,
                _ => ops.map_peek_elem as usize,
            };
            prog.insns[i] = call_insn(addr)?;
            note(addr, names);
            i += 1;
            continue;
        }
        // bpf_redirect_map on one known map: a direct call of the type's `map_redirect`
        // (`BPF_CALL_IMM(ops->map_redirect)`); several maps keep the generic helper.
        if id == func::REDIRECT_MAP
            && let MapUse::Map(r) = aux.map
        {
            let site = site_map(input.maps, r, at)?;
            use kbpf_maps::devmap::{
                BPF_MAP_TYPE_CPUMAP, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH,
            };
            let name = match site.map_type.raw() {
                BPF_MAP_TYPE_DEVMAP => "dev_map_redirect",
                BPF_MAP_TYPE_DEVMAP_HASH => "dev_hash_map_redirect",
                BPF_MAP_TYPE_CPUMAP => "cpu_map_redirect",
                _ => "xsk_map_redirect",
            };
            let addr =
                input
                    .kernel
                    .function(name)
                    .ok_or_else(|| RewriteError::HelperNotImplemented {
                        name: name.to_owned(),
                        id,
                    })?;
            prog.insns[i] = call_insn(addr)?;
            note(addr, names);
            i += 1;
            continue;
        }
        if id == func::GET_SMP_PROCESSOR_ID
            && let Some(addr) = input.kernel.cpu_number()
        {
            // x86-64 inlines it: r0 = &cpu_number; r0 = this_cpu_ptr(r0); r0 = *(u32 *)r0.
            let seq = [
                Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, addr as i32),
                kbpf_maps::gen_lookup::mov64_percpu_reg(0, 0),
                Insn::new(BPF_LDX | BPF_W | BPF_MEM, 0, 0, 0, 0),
            ];
            prog.patch(i, &seq)?;
            i += seq.len();
            continue;
        }
        // patch_call_imm: the helper's implementation, relative to __bpf_call_base.
        let addr = input.kernel.helper(input.prog_type, id).ok_or_else(|| {
            RewriteError::HelperNotImplemented {
                name: kbpf_isa::disasm::helper_name(id)
                    .unwrap_or("unknown")
                    .to_owned(),
                id,
            }
        })?;
        note(addr, names);
        if func::is_storage_get(id) {
            // The storage getters allocate with the flags the verifier puts in r5: kbpf has
            // no sleepable programs, so always GFP_ATOMIC.
            let seq = [
                Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 5, 0, 0, GFP_ATOMIC),
                call_insn(addr)?,
            ];
            prog.patch(i, &seq)?;
            i += seq.len();
            continue;
        }
        prog.insns[i] = call_insn(addr)?;
        i += 1;
    }
    Ok(())
}

/// `opt_subreg_zext_lo32_rnd_hi32` on x86-64: the JIT zero-extends every 32-bit result
/// itself, except the one of a 32-bit `cmpxchg`, whose R0 the verifier zero-extends
/// explicitly with `w0 = w0` (the kernel this was checked against inserts it after every
/// 32-bit cmpxchg).
pub fn zext_cmpxchg32(prog: &mut Prog) -> Result<(), RewriteError> {
    let mut i = 0;
    while i < prog.len() {
        let insn = prog.insns[i];
        if insn.code == BPF_STX | BPF_ATOMIC | BPF_W && insn.imm == BPF_CMPXCHG {
            let zext = Insn::new(BPF_ALU | BPF_MOV | BPF_X, 0, 0, 0, 0);
            prog.patch(i, &[insn, zext])?;
            i += 2;
            continue;
        }
        i += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    Ok(())
}

/// Map `ld_imm64`s become host addresses: the map itself (`BPF_PSEUDO_MAP_FD`) or its value
/// plus an offset (`BPF_PSEUDO_MAP_VALUE`, single-element arrays as global data).
pub fn resolve_map_refs(prog: &mut Prog, maps: &MapsEnv) -> Result<(), RewriteError> {
    let mut i = 0;
    while i + 1 < prog.len() {
        let insn = prog.insns[i];
        if !insn.is_ld_imm64() {
            i += 1;
            continue;
        }
        let src = insn.src();
        if src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE {
            let at = prog.orig[i].unwrap_or(i);
            let map = maps.map(insn.imm).ok_or_else(|| {
                RewriteError::VerifierBug(format!("insn {at}: map fd {} not found", insn.imm))
            })?;
            let mut addr = map.as_ptr() as u64;
            if src == BPF_PSEUDO_MAP_VALUE {
                addr += map.value_off() as u64 + prog.insns[i + 1].imm as u32 as u64;
            }
            prog.insns[i] = Insn::new(insn.code, insn.dst(), 0, 0, addr as u32 as i32);
            prog.insns[i + 1].imm = (addr >> 32) as u32 as i32;
        } else if src != 0 && src != BPF_PSEUDO_FUNC {
            return Err(RewriteError::Unsupported {
                insn: prog.orig[i].unwrap_or(i),
                what: format!("ld_imm64 with src_reg {src}"),
            });
        }
        i += 2;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_div_guard_matches_the_kernels_shape() {
        let div = Insn::new(BPF_ALU | BPF_DIV | BPF_X, 6, 0, 0, 0);
        let g = div_guard(&div).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[0], Insn::new(BPF_JMP32 | BPF_JNE | BPF_K, 0, 0, 2, 0));
        assert_eq!(g[1], Insn::new(BPF_ALU | BPF_XOR | BPF_X, 6, 6, 0, 0));
        assert_eq!(g[3], div);
        let m64 = Insn::new(BPF_ALU64 | BPF_MOD | BPF_X, 3, 6, 0, 0);
        assert_eq!(div_guard(&m64).unwrap().len(), 2);
        let m32 = Insn::new(BPF_ALU | BPF_MOD | BPF_X, 3, 6, 0, 0);
        assert_eq!(div_guard(&m32).unwrap().len(), 4);
        assert!(div_guard(&Insn::new(BPF_ALU | BPF_DIV | BPF_K, 1, 0, 0, 3)).is_none());
    }

    #[test]
    fn signed_div_by_register_guards_minus_one_and_zero() {
        let sdiv = Insn::new(BPF_ALU64 | BPF_DIV | BPF_X, 5, 2, 1, 0);
        let g = div_guard(&sdiv).unwrap();
        assert_eq!(g.len(), 8);
        assert_eq!(
            g[0],
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_AX, 2, 0, 0)
        );
        assert_eq!(g[2].off, 4);
        assert_eq!(g[7], sdiv);
        let smod32 = Insn::new(BPF_ALU | BPF_MOD | BPF_X, 5, 2, 1, 0);
        assert_eq!(div_guard(&smod32).unwrap().len(), 9);
    }
}

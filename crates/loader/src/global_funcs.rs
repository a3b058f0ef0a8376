//! The prototypes of a program's global functions, as the kernel's `btf_prepare_func_args`
//! derives them from the object's BTF: which functions are global (`BTF_FUNC_GLOBAL` in the
//! func_info, other than the entry), and for each argument whether it is a scalar, the
//! context, or memory of the pointee's size (NULL allowed unless `__arg_nonnull`), with the
//! `arg:` decl tags (`__arg_ctx`, `__arg_nonnull`, …) taking precedence.
//!
//! An unusable prototype carries the kernel's log line (the call is refused with `Caller
//! passes invalid args`); what kbpf does not model (`__arg_trusted`, `__arg_arena`, dynptrs,
//! `__arg_ctx` of a type other than the program's context or `void`) carries a `kbpf:`
//! message, which the verifier turns into a refusal.

use kbpf_object::Program;
use kbpf_object::btf::{Btf, BtfKind};
use kbpf_verifier::{GlobalArg, GlobalFunc};

/// `MAX_BPF_FUNC_REG_ARGS`.
const MAX_ARGS: usize = 5;

/// The global functions of `prog` (ascending by first instruction), for program type
/// `prog_type` (`enum bpf_prog_type`).
pub fn global_funcs(btf: &Btf, prog: &Program, prog_type: u32) -> Vec<GlobalFunc> {
    let mut out: Vec<GlobalFunc> = prog
        .func_info
        .iter()
        .filter(|f| f.insn_idx != 0)
        .filter_map(|f| {
            let t = btf.type_by_id(f.type_id).ok()?;
            let BtfKind::Func { proto, linkage: 1 } = t.kind else {
                return None;
            };
            Some(GlobalFunc {
                start: f.insn_idx,
                name: t.name.clone(),
                args: prepare(btf, f.type_id, &t.name, proto, prog_type),
            })
        })
        .collect();
    out.sort_by_key(|g| g.start);
    out
}

/// The subprograms (not the entry) whose prototype returns neither an int of at most 8 bytes
/// nor an enum (`check_btf_func`'s `scalar_return`, `btf_type_is_small_int`).
pub fn non_scalar_returns(btf: &Btf, prog: &Program) -> Vec<usize> {
    prog.func_info
        .iter()
        .filter(|f| f.insn_idx != 0)
        .filter(|f| {
            let Ok(t) = btf.type_by_id(f.type_id) else {
                return false;
            };
            let BtfKind::Func { proto, .. } = t.kind else {
                return false;
            };
            let Some(BtfKind::FuncProto { ret, .. }) = kind_of(btf, proto) else {
                return false;
            };
            let ret = skip_mods(btf, *ret);
            !matches!(
                kind_of(btf, ret),
                Some(BtfKind::Int { size, .. }) if *size <= 8
            ) && !matches!(
                kind_of(btf, ret),
                Some(BtfKind::Enum { .. } | BtfKind::Enum64 { .. })
            )
        })
        .map(|f| f.insn_idx)
        .collect()
}

/// Modifiers the kernel skips (`btf_type_is_modifier`: typedef, volatile, const, restrict,
/// type tag).
fn skip_mods(btf: &Btf, mut id: u32) -> u32 {
    for _ in 0..32 {
        match btf.type_by_id(id).map(|t| &t.kind) {
            Ok(
                BtfKind::Typedef(t)
                | BtfKind::Volatile(t)
                | BtfKind::Const(t)
                | BtfKind::Restrict(t)
                | BtfKind::TypeTag(t),
            ) => id = *t,
            _ => break,
        }
    }
    id
}

fn kind_of(btf: &Btf, id: u32) -> Option<&BtfKind> {
    btf.type_by_id(id).ok().map(|t| &t.kind)
}

/// `btf_type_str`.
fn kind_str(btf: &Btf, id: u32) -> &'static str {
    match kind_of(btf, id) {
        None | Some(BtfKind::Void) => "UNKNOWN",
        Some(k) => k.name(),
    }
}

fn is_scalar(btf: &Btf, id: u32) -> bool {
    matches!(
        kind_of(btf, id),
        Some(BtfKind::Int { .. } | BtfKind::Enum { .. } | BtfKind::Enum64 { .. })
    )
}

/// The uapi context struct of a program type (`bpf_types.h`), and the kernel-side name
/// `btf_is_projection_of` also accepts.
fn ctx_struct(prog_type: u32) -> Option<(&'static str, Option<&'static str>)> {
    Some(match prog_type {
        // socket filter, tc, cgroup_skb, lwt_*, sk_skb, flow dissector
        1 | 3 | 4 | 8 | 10 | 11 | 12 | 14 | 22 => ("__sk_buff", Some("sk_buff")),
        6 => ("xdp_md", Some("xdp_buff")),
        9 => ("bpf_sock", None),
        13 => ("bpf_sock_ops", None),
        18 => ("bpf_sock_addr", None),
        16 => ("sk_msg_md", None),
        17 | 24 => ("bpf_raw_tracepoint_args", None),
        2 => ("pt_regs", None),
        7 => ("bpf_perf_event_data", None),
        23 => ("bpf_sysctl", None),
        _ => return None,
    })
}

/// `btf_is_prog_ctx_type`: a pointer to the program type's context struct.
fn is_prog_ctx_type(btf: &Btf, pointee: u32, prog_type: u32) -> bool {
    if prog_type == 2 && is_pt_regs_typedef(btf, pointee) {
        return true;
    }
    let t = skip_mods(btf, pointee);
    let Ok(ty) = btf.type_by_id(t) else {
        return false;
    };
    // (Perf event programs get their context by the struct name only.)
    if !matches!(ty.kind, BtfKind::Struct { .. }) || ty.name.is_empty() {
        return false;
    }
    ctx_struct(prog_type).is_some_and(|(n, proj)| ty.name == n || proj == Some(ty.name.as_str()))
}

/// `bpf_user_pt_regs_t` (through const/volatile but not through other typedefs).
fn is_pt_regs_typedef(btf: &Btf, mut id: u32) -> bool {
    for _ in 0..32 {
        match btf.type_by_id(id) {
            Ok(t) => match &t.kind {
                BtfKind::Typedef(_) => return t.name == "bpf_user_pt_regs_t",
                BtfKind::Volatile(n)
                | BtfKind::Const(n)
                | BtfKind::Restrict(n)
                | BtfKind::TypeTag(n) => id = *n,
                _ => return false,
            },
            Err(_) => return false,
        }
    }
    false
}

/// `btf_validate_prog_ctx_type` for `__arg_ctx`, where kbpf is sure of the kernel's answer:
/// `void *`, the program's context struct, and the tracepoint/raw_tp special cases.
fn arg_ctx_ok(btf: &Btf, pointee: u32, prog_type: u32) -> bool {
    if matches!(prog_type, 2 | 7) && is_pt_regs_typedef(btf, pointee) {
        return true;
    }
    let t = skip_mods(btf, pointee);
    match btf.type_by_id(t) {
        Ok(ty) => match &ty.kind {
            BtfKind::Void => true,
            // BPF_PROG_TYPE_TRACEPOINT: anything goes.
            _ if prog_type == 5 => true,
            // BPF_PROG_TYPE_SYSCALL: its context type is `void *`, anything goes.
            _ if prog_type == 31 => true,
            // Raw tracepoints: u64 *.
            BtfKind::Int { size: 8, .. } if matches!(prog_type, 17 | 24) => true,
            // Perf events also take `struct pt_regs *` (bpf_user_pt_regs_t's struct on x86-64).
            BtfKind::Struct { .. } if prog_type == 7 && ty.name == "pt_regs" => true,
            BtfKind::Struct { .. } => ctx_struct(prog_type).is_some_and(|(n, _)| ty.name == n),
            _ => false,
        },
        Err(_) => false,
    }
}

/// `btf_prepare_func_args` for the global function `name` (FUNC `func_id`, FUNC_PROTO
/// `proto`).
fn prepare(
    btf: &Btf,
    func_id: u32,
    name: &str,
    proto: u32,
    prog_type: u32,
) -> Result<Vec<GlobalArg>, String> {
    let Some(BtfKind::FuncProto { ret, params }) = kind_of(btf, proto) else {
        return Err(format!("kbpf: {name}() has no function prototype"));
    };
    if params.len() > MAX_ARGS {
        return Err(format!(
            "Global function {name}() with {} > {MAX_ARGS} args. Buggy compiler.",
            params.len()
        ));
    }
    if !is_scalar(btf, skip_mods(btf, *ret)) {
        return Err(format!(
            "Global function {name}() doesn't return scalar. Only those are supported."
        ));
    }
    let mut args = Vec::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let (mut ctx, mut nonnull, mut other) = (false, false, None);
        for t in btf.types() {
            let BtfKind::DeclTag { ty, component_idx } = t.kind else {
                continue;
            };
            if ty != func_id || component_idx != i as i32 {
                continue;
            }
            let Some(tag) = t.name.strip_prefix("arg:") else {
                continue;
            };
            match tag {
                "ctx" => ctx = true,
                "nonnull" => nonnull = true,
                "trusted" | "nullable" | "arena" => other = Some(tag.to_owned()),
                _ => return Err(format!("arg#{i} has unsupported set of tags")),
            }
        }
        let any_tag = ctx || nonnull || other.is_some();
        let t = skip_mods(btf, p.ty);
        let Some(BtfKind::Ptr(pointee)) = kind_of(btf, t) else {
            if any_tag {
                return Err(format!(
                    "arg#{i} has pointer tag, but is not a pointer type"
                ));
            }
            if is_scalar(btf, t) {
                args.push(GlobalArg::Scalar);
                continue;
            }
            return Err(format!(
                "Arg#{i} type {} in {name}() is not supported yet.",
                kind_str(btf, t)
            ));
        };
        let pointee = *pointee;
        if ctx || is_prog_ctx_type(btf, pointee, prog_type) {
            if nonnull || other.is_some() {
                return Err(format!("arg#{i} has invalid combination of tags"));
            }
            if ctx && !arg_ctx_ok(btf, pointee, prog_type) {
                return Err(format!(
                    "kbpf: arg#{i}: __arg_ctx of this type is not supported by kbpf"
                ));
            }
            args.push(GlobalArg::Ctx);
            continue;
        }
        let target = skip_mods(btf, pointee);
        if btf.type_by_id(target).is_ok_and(|t| t.name == "bpf_dynptr") {
            return Err(format!(
                "kbpf: arg#{i}: dynptr arguments are not supported by kbpf"
            ));
        }
        match other.as_deref() {
            Some("nullable") => return Err(format!("arg#{i} has invalid combination of tags")),
            Some(tag) => {
                return Err(format!(
                    "kbpf: arg#{i}: __arg_{tag} is not supported by kbpf"
                ));
            }
            None => {}
        }
        let size = match btf.resolve_size(target) {
            Ok(s) if matches!(kind_of(btf, target), Some(k) if !matches!(k, BtfKind::Void)) => s,
            _ => {
                let tname = btf
                    .type_by_id(target)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                return Err(format!(
                    "arg#{i} reference type('{} {tname}') size cannot be determined: -22",
                    kind_str(btf, target)
                ));
            }
        };
        let Ok(size) = u32::try_from(size) else {
            return Err(format!("kbpf: arg#{i}: memory of {size} bytes"));
        };
        args.push(GlobalArg::Mem {
            size,
            nullable: !nonnull,
        });
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbpf_object::btf::kind;

    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let types: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut v = Vec::new();
        v.extend_from_slice(&0xeb9fu16.to_le_bytes());
        v.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(&types);
        v.extend_from_slice(strings);
        v
    }

    #[test]
    fn prototypes_follow_btf_prepare_func_args() {
        // "" int sub arg:nonnull xdp_md sub2 v
        let s = b"\0int\0sub\0arg:nonnull\0xdp_md\0sub2\0v\0";
        let (int, sub, nonnull, xdp_md, sub2, v) = (1, 5, 9, 21, 28, 33);
        let types = [
            // [1] INT int, 4 bytes, signed 32 bits
            int,
            kind::INT << 24,
            4,
            (1 << 24) | 32,
            // [2] PTR -> int
            0,
            kind::PTR << 24,
            1,
            // [3] FUNC_PROTO int (int v, int *v)
            0,
            (kind::FUNC_PROTO << 24) | 2,
            1,
            v,
            1,
            v,
            2,
            // [4] FUNC sub, global
            sub,
            (kind::FUNC << 24) | 1,
            3,
            // [5] DECL_TAG arg:nonnull on sub's argument 1
            nonnull,
            kind::DECL_TAG << 24,
            4,
            1,
            // [6] STRUCT xdp_md, 4 bytes, no members
            xdp_md,
            kind::STRUCT << 24,
            4,
            // [7] PTR -> xdp_md
            0,
            kind::PTR << 24,
            6,
            // [8] FUNC_PROTO int (struct xdp_md *v)
            0,
            (kind::FUNC_PROTO << 24) | 1,
            1,
            v,
            7,
            // [9] FUNC sub2, global
            sub2,
            (kind::FUNC << 24) | 1,
            8,
            // [10] FUNC_PROTO void (void)
            0,
            kind::FUNC_PROTO << 24,
            0,
        ];
        let btf = Btf::parse(&blob(&types, s)).unwrap();
        assert_eq!(
            prepare(&btf, 4, "sub", 3, 6),
            Ok(vec![
                GlobalArg::Scalar,
                GlobalArg::Mem {
                    size: 4,
                    nullable: false
                }
            ])
        );
        // The context struct of XDP is the context; of a socket filter, just 4 bytes.
        assert_eq!(prepare(&btf, 9, "sub2", 8, 6), Ok(vec![GlobalArg::Ctx]));
        assert_eq!(
            prepare(&btf, 9, "sub2", 8, 1),
            Ok(vec![GlobalArg::Mem {
                size: 4,
                nullable: true
            }])
        );
        assert_eq!(
            prepare(&btf, 9, "f", 10, 6),
            Err("Global function f() doesn't return scalar. Only those are supported.".into())
        );
    }
}

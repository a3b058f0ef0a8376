//! CO-RE (compile once, run everywhere) relocations: the `.BTF.ext` `core_relo` records,
//! and their resolution against a target BTF (normally `/sys/kernel/btf/vmlinux`), after
//! libbpf's `relo_core.c`.
//!
//! Supported kinds: field byte offset, field byte size, field exists, field signed,
//! local/target type id, type exists, type size, enumerator exists/value. Other kinds
//! (bitfield shifts, type matches) give an error naming the relocation. A field, type or
//! enumerator that has no match in the target "poisons" the instruction as libbpf does (a
//! call of an invalid helper the verifier refuses if it is reached), except for the
//! `*_EXISTS` kinds, which resolve to 0.

use crate::btf::{Btf, BtfError, BtfKind, kind};
use crate::btf_ext::CoreReloRec;
use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_ALU, BPF_ALU64, BPF_K, BPF_LDX, BPF_MEM, BPF_ST, BPF_STX};

/// `enum bpf_core_relo_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreReloKind {
    /// `BPF_CORE_FIELD_BYTE_OFFSET`.
    FieldByteOffset,
    /// `BPF_CORE_FIELD_BYTE_SIZE`.
    FieldByteSize,
    /// `BPF_CORE_FIELD_EXISTS`.
    FieldExists,
    /// `BPF_CORE_FIELD_SIGNED`.
    FieldSigned,
    /// `BPF_CORE_FIELD_LSHIFT_U64`.
    FieldLshiftU64,
    /// `BPF_CORE_FIELD_RSHIFT_U64`.
    FieldRshiftU64,
    /// `BPF_CORE_TYPE_ID_LOCAL`.
    TypeIdLocal,
    /// `BPF_CORE_TYPE_ID_TARGET`.
    TypeIdTarget,
    /// `BPF_CORE_TYPE_EXISTS`.
    TypeExists,
    /// `BPF_CORE_TYPE_SIZE`.
    TypeSize,
    /// `BPF_CORE_ENUMVAL_EXISTS`.
    EnumvalExists,
    /// `BPF_CORE_ENUMVAL_VALUE`.
    EnumvalValue,
    /// `BPF_CORE_TYPE_MATCHES`.
    TypeMatches,
    /// A number this crate does not know.
    Unknown(u32),
}

impl CoreReloKind {
    /// From the raw `kind` field.
    pub fn from_raw(k: u32) -> Self {
        use CoreReloKind::*;
        match k {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            n => Unknown(n),
        }
    }

    /// libbpf's name (`byte_off`, `exists`, …).
    pub fn name(&self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
            Unknown(_) => "unknown",
        }
    }
}

/// One CO-RE relocation of a linked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRelo {
    /// Instruction index in the linked program.
    pub insn_idx: usize,
    /// Local root type id.
    pub type_id: u32,
    /// The root type's name (for messages).
    pub type_name: String,
    /// Access spec, e.g. `"0:1"`.
    pub access: String,
    /// Kind.
    pub kind: CoreReloKind,
}

impl CoreRelo {
    pub(crate) fn from_rec(
        btf: &Btf,
        r: &CoreReloRec,
        insn_idx: usize,
    ) -> Result<CoreRelo, BtfError> {
        Ok(CoreRelo {
            insn_idx,
            type_id: r.type_id,
            type_name: btf.type_name(r.type_id)?,
            access: btf.string_at(r.access_str_off)?.to_string(),
            kind: CoreReloKind::from_raw(r.kind),
        })
    }
}

impl std::fmt::Display for CoreRelo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "insn #{} <{}> [{}] {} {}",
            self.insn_idx,
            self.kind.name(),
            self.type_id,
            self.type_name,
            self.access
        )
    }
}

/// Errors resolving a CO-RE relocation; the relocation is named in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Could not resolve.
    #[error("program '{program}': CO-RE relo {relo}: {reason}")]
    Unresolved {
        /// Program name.
        program: String,
        /// The relocation, formatted like libbpf's debug output.
        relo: String,
        /// Why.
        reason: String,
    },
    /// The target BTF could not be read.
    #[error("target BTF {path}: {reason}")]
    TargetBtf {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Loads the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
pub fn load_vmlinux_btf() -> Result<Btf, CoreError> {
    load_btf_file("/sys/kernel/btf/vmlinux")
}

/// A kernel BTF from a file (`--kernel-btf FILE`, libbpf's `btf_custom_path`).
pub fn load_btf_file(path: &str) -> Result<Btf, CoreError> {
    let data = std::fs::read(path).map_err(|e| CoreError::TargetBtf {
        path: path.into(),
        reason: e.to_string(),
    })?;
    Btf::parse(&data).map_err(|e| CoreError::TargetBtf {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// A resolved field access: bit offset from the root, final type, and whether it is a
/// bitfield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSpec {
    bit_offset: u64,
    ty: u32,
    bitfield_size: u32,
}

/// The local access path: the names of the members accessed (None for array indexes)
/// plus the resolved local field.
struct LocalSpec {
    path: Vec<Access>,
    field: FieldSpec,
}

enum Access {
    Member(String),
    Index(u64),
}

fn parse_access(s: &str) -> Result<Vec<u64>, String> {
    s.split(':')
        .map(|p| {
            p.parse::<u64>()
                .map_err(|_| format!("bad access spec '{s}'"))
        })
        .collect()
}

/// libbpf's `bpf_core_essential_name_len`: `task_struct___v2` → `task_struct`.
fn essential_name(n: &str) -> &str {
    match n.find("___") {
        Some(i) => &n[..i],
        None => n,
    }
}

fn local_spec(btf: &Btf, root: u32, access: &[u64]) -> Result<LocalSpec, String> {
    let e = |err: BtfError| err.to_string();
    let mut id = btf.skip_mods_and_typedefs(root).map_err(e)?;
    let first = *access.first().ok_or("empty access spec")?;
    let root_size = btf.resolve_size(id).map_err(e)?;
    let mut bit_offset = first.saturating_mul(root_size).saturating_mul(8);
    let mut path = vec![Access::Index(first)];
    let mut bitfield_size = 0;
    for &a in &access[1..] {
        id = btf.skip_mods_and_typedefs(id).map_err(e)?;
        match &btf.type_by_id(id).map_err(e)?.kind {
            BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => {
                let m = members
                    .get(a as usize)
                    .ok_or_else(|| format!("member index {a} out of range for type [{id}]"))?;
                bit_offset = bit_offset.saturating_add(u64::from(m.bit_offset));
                bitfield_size = m.bitfield_size;
                // An anonymous member is only a step of the local layout: the target is
                // matched by the named members, found through whatever anonymous structs
                // and unions it has (libbpf's `bpf_core_parse_spec` records named members
                // only).
                if !m.name.is_empty() {
                    path.push(Access::Member(m.name.clone()));
                }
                id = m.ty;
            }
            BtfKind::Array { elem, .. } => {
                let esz = btf.resolve_size(*elem).map_err(e)?;
                bit_offset = bit_offset.saturating_add(a.saturating_mul(esz).saturating_mul(8));
                path.push(Access::Index(a));
                id = *elem;
            }
            other => return Err(format!("can't access into {} type [{id}]", other.name())),
        }
    }
    Ok(LocalSpec {
        path,
        field: FieldSpec {
            bit_offset,
            ty: id,
            bitfield_size,
        },
    })
}

/// Finds member `name` in struct/union `id`, descending into anonymous members
/// (libbpf's `bpf_core_match_member`). Returns (bit offset, type, bitfield size).
fn find_member(btf: &Btf, id: u32, name: &str, depth: usize) -> Option<(u64, u32, u32)> {
    if depth > 32 {
        return None;
    }
    let id = btf.skip_mods_and_typedefs(id).ok()?;
    let members = match &btf.type_by_id(id).ok()?.kind {
        BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => members,
        _ => return None,
    };
    for m in members {
        if m.name == name {
            return Some((u64::from(m.bit_offset), m.ty, m.bitfield_size));
        }
        if m.name.is_empty()
            && let Some((off, ty, bf)) = find_member(btf, m.ty, name, depth + 1)
        {
            return Some((u64::from(m.bit_offset).saturating_add(off), ty, bf));
        }
    }
    None
}

fn match_target(local: &Btf, spec: &LocalSpec, target: &Btf, cand: u32) -> Option<FieldSpec> {
    let mut id = target.skip_mods_and_typedefs(cand).ok()?;
    let root_size = target.resolve_size(id).ok()?;
    let mut bit_offset = 0u64;
    let mut bitfield_size = 0;
    for (i, a) in spec.path.iter().enumerate() {
        match a {
            Access::Index(n) if i == 0 => {
                bit_offset = n.saturating_mul(root_size).saturating_mul(8)
            }
            Access::Index(n) => {
                id = target.skip_mods_and_typedefs(id).ok()?;
                let BtfKind::Array { elem, nelems, .. } = target.type_by_id(id).ok()?.kind else {
                    return None;
                };
                if *n >= u64::from(nelems) && nelems != 0 {
                    return None;
                }
                let step = n
                    .saturating_mul(target.resolve_size(elem).ok()?)
                    .saturating_mul(8);
                bit_offset = bit_offset.saturating_add(step);
                id = elem;
            }
            Access::Member(name) => {
                let (off, ty, bf) = find_member(target, id, name, 0)?;
                bit_offset = bit_offset.saturating_add(off);
                bitfield_size = bf;
                id = ty;
            }
        }
    }
    // Final types must be compatible in kind (libbpf's `bpf_core_fields_are_compat`).
    let lk = crate::btf::kind_number(
        &local
            .type_by_id(local.skip_mods_and_typedefs(spec.field.ty).ok()?)
            .ok()?
            .kind,
    );
    let tk = crate::btf::kind_number(
        &target
            .type_by_id(target.skip_mods_and_typedefs(id).ok()?)
            .ok()?
            .kind,
    );
    let compat = lk == tk
        || (matches!(lk, kind::ENUM | kind::ENUM64 | kind::INT)
            && matches!(tk, kind::ENUM | kind::ENUM64 | kind::INT));
    compat.then_some(FieldSpec {
        bit_offset,
        ty: id,
        bitfield_size,
    })
}

fn candidates(local: &Btf, local_id: u32, target: &Btf) -> Result<Vec<u32>, String> {
    let lid = local
        .skip_mods_and_typedefs(local_id)
        .map_err(|e| e.to_string())?;
    let lt = local.type_by_id(lid).map_err(|e| e.to_string())?;
    let name = essential_name(&lt.name);
    if name.is_empty() {
        return Err("local type is anonymous".into());
    }
    let lk = crate::btf::kind_number(&lt.kind);
    Ok(target
        .types()
        .iter()
        .enumerate()
        .filter(|(_, t)| essential_name(&t.name) == name && crate::btf::kind_number(&t.kind) == lk)
        .map(|(i, _)| i as u32)
        .collect())
}

/// What one relocation resolves to: the local and target values (and a new load size), or
/// `None` when the target has no such field, type or enumerator: libbpf then poisons the
/// instruction instead of failing the load.
/// The last element says whether the instruction's value must equal the local one (libbpf's
/// `validate`: not for a bitfield's offset, size and left shift, which clang computes its
/// own way).
type Resolved = Option<(u64, u64, Option<u32>, bool)>;

/// Computes the (local, target) values of one relocation.
fn resolve_one(local: &Btf, target: &Btf, r: &CoreRelo) -> Result<Resolved, String> {
    use CoreReloKind::*;
    let access = parse_access(&r.access)?;
    match r.kind {
        FieldByteOffset | FieldByteSize | FieldExists | FieldSigned | FieldLshiftU64
        | FieldRshiftU64 => {
            let spec = local_spec(local, r.type_id, &access)?;
            let cands = candidates(local, r.type_id, target)?;
            let mut found: Option<FieldSpec> = None;
            for c in cands {
                if let Some(f) = match_target(local, &spec, target, c) {
                    match found {
                        Some(prev) if prev.bit_offset != f.bit_offset => {
                            return Err(format!(
                                "ambiguous: candidates give offsets {} and {}",
                                prev.bit_offset / 8,
                                f.bit_offset / 8
                            ));
                        }
                        _ => found = Some(f),
                    }
                }
            }
            let local_val = field_relo_value(local, &spec.field, r.kind)?;
            let Some(t) = found else {
                if r.kind == FieldExists {
                    return Ok(Some((local_val, 0, None, true)));
                }
                return Ok(None);
            };
            let target_val = field_relo_value(target, &t, r.kind)?;
            // A plain field of another size is loaded with the target's size.
            let lsize = local.resolve_size(spec.field.ty).unwrap_or(0);
            let tsize = target.resolve_size(t.ty).map_err(|e| e.to_string())?;
            let plain = spec.field.bitfield_size == 0 && t.bitfield_size == 0;
            let new_size =
                (r.kind == FieldByteOffset && plain && tsize != lsize).then_some(tsize as u32);
            let validate = spec.field.bitfield_size == 0
                || matches!(r.kind, FieldSigned | FieldRshiftU64 | FieldExists);
            Ok(Some((local_val, target_val, new_size, validate)))
        }
        TypeIdLocal => Ok(Some((
            u64::from(r.type_id),
            u64::from(r.type_id),
            None,
            true,
        ))),
        TypeIdTarget | TypeExists | TypeSize => {
            let cands = candidates(local, r.type_id, target)?;
            let lsize = local.resolve_size(r.type_id).unwrap_or(0);
            match (r.kind, cands.first()) {
                (TypeExists, c) => Ok(Some((1, u64::from(c.is_some()), None, true))),
                (_, None) => Ok(None),
                (TypeIdTarget, Some(&c)) => {
                    Ok(Some((u64::from(r.type_id), u64::from(c), None, true)))
                }
                (_, Some(&c)) => Ok(Some((
                    lsize,
                    target.resolve_size(c).map_err(|e| e.to_string())?,
                    None,
                    true,
                ))),
            }
        }
        EnumvalExists | EnumvalValue => {
            let idx = *access.first().ok_or("empty access spec")? as usize;
            let lid = local
                .skip_mods_and_typedefs(r.type_id)
                .map_err(|e| e.to_string())?;
            let (name, lval) = match &local.type_by_id(lid).map_err(|e| e.to_string())?.kind {
                BtfKind::Enum { values, .. } | BtfKind::Enum64 { values, .. } => {
                    let v = values.get(idx).ok_or("enumerator index out of range")?;
                    (v.name.clone(), v.value as u64)
                }
                _ => return Err("enumval relocation on a non-enum type".into()),
            };
            let mut tval = None;
            for c in candidates(local, r.type_id, target)? {
                if let Ok(t) = target.type_by_id(c)
                    && let BtfKind::Enum { values, .. } | BtfKind::Enum64 { values, .. } = &t.kind
                    && let Some(v) = values.iter().find(|v| v.name == name)
                {
                    tval = Some(v.value as u64);
                }
            }
            match (r.kind, tval) {
                (EnumvalExists, t) => Ok(Some((1, u64::from(t.is_some()), None, true))),
                (_, Some(v)) => Ok(Some((lval, v, None, true))),
                (_, None) => Ok(None),
            }
        }
        TypeMatches | Unknown(_) => Err(format!(
            "relocation kind {} is not supported",
            r.kind.name()
        )),
    }
}

/// libbpf's `bpf_core_calc_field_relo` for one side: a bitfield is read as the smallest
/// naturally aligned integer, at least its type's size, that holds it, then shifted left and
/// right (little-endian x86-64); a plain field is read whole.
fn field_relo_value(btf: &Btf, f: &FieldSpec, kind: CoreReloKind) -> Result<u64, String> {
    use CoreReloKind::*;
    let size = btf.resolve_size(f.ty).map_err(|e| e.to_string())?;
    let bit_off = f.bit_offset;
    let (byte_off, byte_sz, bit_sz) = if f.bitfield_size > 0 {
        let bit_sz = u64::from(f.bitfield_size);
        let mut byte_sz = size.max(1);
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err("bitfield cannot be read with a 64-bit load".into());
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz, bit_sz)
    } else {
        (bit_off / 8, size, size * 8)
    };
    Ok(match kind {
        FieldByteOffset => byte_off,
        FieldByteSize => byte_sz,
        FieldExists => 1,
        FieldSigned => u64::from(is_signed(btf, f.ty)),
        FieldLshiftU64 => 64 - (bit_off + bit_sz - byte_off * 8),
        FieldRshiftU64 => 64 - bit_sz,
        _ => return Err(format!("{} is not a field relocation", kind.name())),
    })
}

fn is_signed(btf: &Btf, id: u32) -> bool {
    let Ok(id) = btf.skip_mods_and_typedefs(id) else {
        return false;
    };
    match btf.type_by_id(id).map(|t| &t.kind) {
        Ok(BtfKind::Int { encoding, .. }) => encoding & crate::btf::BTF_INT_SIGNED != 0,
        Ok(BtfKind::Enum { signed, .. } | BtfKind::Enum64 { signed, .. }) => *signed,
        _ => false,
    }
}

/// libbpf's poisoned instruction (`bpf_core_poison_insn`).
pub const CORE_POISON_HELPER: i32 = 0xbad2310;

fn poison() -> Insn {
    Insn::new(
        kbpf_isa::insn::BPF_JMP | kbpf_isa::insn::BPF_CALL,
        0,
        0,
        0,
        CORE_POISON_HELPER,
    )
}

/// Resolves every CO-RE relocation of `insns` (a linked program) against `target` and
/// patches the instructions as libbpf's `bpf_core_patch_insn` does: ALU immediates,
/// memory offsets (and load size when the field size changed) or the 64-bit immediate of
/// `ld_imm64`. Returns the number of relocations applied.
pub fn apply_core_relos(
    program: &str,
    insns: &mut [Insn],
    relos: &[CoreRelo],
    local: &Btf,
    target: &Btf,
) -> Result<usize, CoreError> {
    for r in relos {
        let err = |reason: String| CoreError::Unresolved {
            program: program.to_string(),
            relo: r.to_string(),
            reason,
        };
        let resolved = resolve_one(local, target, r).map_err(err)?;
        let insn = insns
            .get(r.insn_idx)
            .copied()
            .ok_or_else(|| err("instruction index out of range".into()))?;
        let Some((local_val, new_val, new_size, validate)) = resolved else {
            // bpf_core_poison_insn: a call of helper 0xbad2310 ("bad relo"), which the
            // verifier refuses as `invalid func unknown#195896080` if it is reachable.
            if insn.is_ld_imm64() && r.insn_idx + 1 < insns.len() {
                insns[r.insn_idx + 1] = poison();
            }
            insns[r.insn_idx] = poison();
            continue;
        };
        let class = insn.class();
        if insn.is_ld_imm64() {
            let next = insns
                .get_mut(r.insn_idx + 1)
                .ok_or_else(|| err("truncated ld_imm64".into()))?;
            next.imm = (new_val >> 32) as i32;
            insns[r.insn_idx].imm = new_val as u32 as i32;
        } else if (class == BPF_ALU || class == BPF_ALU64) && insn.code & 0x08 == BPF_K {
            if validate
                && i64::from(insn.imm) as u64 != local_val
                && insn.imm as u32 as u64 != local_val
            {
                return Err(err(format!(
                    "unexpected insn value: got {}, expected local value {local_val}",
                    insn.imm
                )));
            }
            insns[r.insn_idx].imm = new_val as i32;
        } else if class == BPF_LDX || class == BPF_ST || class == BPF_STX {
            if insn.code & 0xe0 != BPF_MEM {
                return Err(err("CO-RE offset on a non-BPF_MEM access".into()));
            }
            if validate && insn.off as i64 as u64 != local_val {
                return Err(err(format!(
                    "unexpected insn offset: got {}, expected local value {local_val}",
                    insn.off
                )));
            }
            let off = i16::try_from(new_val)
                .map_err(|_| err(format!("offset {new_val} does not fit")))?;
            let ins = &mut insns[r.insn_idx];
            ins.off = off;
            if let (Some(sz), BPF_LDX) = (new_size, class) {
                let bits = match sz {
                    1 => kbpf_isa::insn::BPF_B,
                    2 => kbpf_isa::insn::BPF_H,
                    4 => kbpf_isa::insn::BPF_W,
                    8 => kbpf_isa::insn::BPF_DW,
                    _ => return Err(err(format!("target field size {sz} cannot be loaded"))),
                };
                ins.code = (ins.code & !0x18) | bits;
            }
        } else {
            return Err(err(format!(
                "instruction code {:#04x} cannot be relocated",
                insn.code
            )));
        }
    }
    Ok(relos.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_relocations_follow_libbpf() {
        // [1] INT u8 (1 byte), [2] INT u32 (4 bytes).
        let mut blob = Vec::new();
        let types: Vec<u32> = vec![
            0,
            crate::btf::kind::INT << 24,
            1,
            8,
            0,
            crate::btf::kind::INT << 24,
            4,
            32,
        ];
        let tbytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
        blob.extend_from_slice(&0xeb9fu16.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, tbytes.len() as u32, tbytes.len() as u32, 1] {
            blob.extend_from_slice(&w.to_le_bytes());
        }
        blob.extend_from_slice(&tbytes);
        blob.push(0);
        let btf = Btf::parse(&blob).unwrap();
        let v = |ty, bit_offset, bits, kind| {
            field_relo_value(
                &btf,
                &FieldSpec {
                    bit_offset,
                    ty,
                    bitfield_size: bits,
                },
                kind,
            )
            .unwrap()
        };
        use CoreReloKind::*;
        // u8 x:2 at bit 1: one byte at 0, shifted left 61 and right 62.
        assert_eq!(v(1, 1, 2, FieldByteOffset), 0);
        assert_eq!(v(1, 1, 2, FieldByteSize), 1);
        assert_eq!(v(1, 1, 2, FieldLshiftU64), 61);
        assert_eq!(v(1, 1, 2, FieldRshiftU64), 62);
        // u8 x:2 at bit 7 crosses a byte: read two bytes at 0.
        assert_eq!(v(1, 7, 2, FieldByteSize), 2);
        assert_eq!(v(1, 7, 2, FieldLshiftU64), 55);
        // u32 x:7 at bit 35: four bytes at 4.
        assert_eq!(v(2, 35, 7, FieldByteOffset), 4);
        assert_eq!(v(2, 35, 7, FieldLshiftU64), 64 - (3 + 7));
        // A plain u32 at bit 64.
        assert_eq!(v(2, 64, 0, FieldByteOffset), 8);
        assert_eq!(v(2, 64, 0, FieldRshiftU64), 32);
    }

    #[test]
    fn names() {
        assert_eq!(essential_name("task_struct___v2"), "task_struct");
        assert_eq!(essential_name("x"), "x");
        assert_eq!(CoreReloKind::from_raw(0), CoreReloKind::FieldByteOffset);
        assert_eq!(CoreReloKind::from_raw(99), CoreReloKind::Unknown(99));
        assert!(parse_access("0:1:x").is_err());
        assert_eq!(parse_access("0:1").unwrap(), vec![0, 1]);
    }
}

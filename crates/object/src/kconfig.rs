//! `__kconfig` externs (`extern int CONFIG_HZ __kconfig;`, `extern unsigned
//! LINUX_KERNEL_VERSION __kconfig;`), the object side of libbpf's `.kconfig` support
//! (`bpf_object__collect_externs` and `bpf_object__init_kconfig_map`): the variables of the
//! BTF `.kconfig` DATASEC are classified by type (bool, char, tristate, integer, char array),
//! laid out in libbpf's order (alignment descending, size ascending, then name) into one
//! value, and the DATASEC is fixed up to that layout. The object then has a `.kconfig` global
//! data map (after the other global data maps, read-only for programs, frozen) whose value
//! the loader fills from the host's kernel config (`kbpf_loader`'s kconfig module), and
//! `ld_imm64` instructions naming an extern become map-value relocations at its offset.

use kbpf_btf::{Btf, BtfKind, kind};

use crate::error::ObjectError;
use crate::maps::{GlobalDataKind, MapDef, internal_map_name};

/// libbpf's `enum kcfg_type`: how a value from the kernel config is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KcfgType {
    /// `bool`/`_Bool` (1 byte): `y` is 1, `n` is 0.
    Bool,
    /// `char`: `y`/`n`/`m` as the character, or a small integer.
    Char,
    /// `enum libbpf_tristate`: `n` 0, `y` 1, `m` 2.
    Tristate,
    /// An integer of 1, 2, 4 or 8 bytes.
    Int {
        /// Signed (range checks differ).
        signed: bool,
    },
    /// `char[N]`: a quoted string from the config, NUL-terminated, truncated to N - 1.
    CharArr,
}

/// One `__kconfig` extern and its place in the `.kconfig` map's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KconfigExtern {
    /// `CONFIG_*` or `LINUX_*`.
    pub name: String,
    /// How the value is stored.
    pub ty: KcfgType,
    /// Size in bytes.
    pub size: u32,
    /// Offset in the map value.
    pub offset: u32,
    /// Declared `__weak`: left 0 when the config does not have it.
    pub weak: bool,
}

/// libbpf's `find_kcfg_type`; `None` for types it does not support.
fn kcfg_type(btf: &Btf, id: u32) -> Option<KcfgType> {
    let id = btf.skip_mods_and_typedefs(id).ok()?;
    let t = btf.type_by_id(id).ok()?;
    match &t.kind {
        BtfKind::Int { size, encoding, .. } => {
            const BTF_INT_SIGNED: u8 = 1;
            const BTF_INT_BOOL: u8 = 4;
            if encoding & BTF_INT_BOOL != 0 {
                return (*size == 1).then_some(KcfgType::Bool);
            }
            match size {
                1 => Some(KcfgType::Char),
                2 | 4 | 8 => Some(KcfgType::Int {
                    signed: encoding & BTF_INT_SIGNED != 0,
                }),
                _ => None,
            }
        }
        BtfKind::Enum { size: 4, .. } | BtfKind::Enum64 { .. } if t.name == "libbpf_tristate" => {
            Some(KcfgType::Tristate)
        }
        BtfKind::Array { elem, nelems, .. } if *nelems > 0 => {
            (kcfg_type(btf, *elem) == Some(KcfgType::Char)).then_some(KcfgType::CharArr)
        }
        _ => None,
    }
}

/// The `.kconfig` externs of an object and the value size, with `btf`'s `.kconfig` DATASEC
/// fixed up to their layout; `is_weak(name)` tells an extern's ELF binding. Empty when the
/// object has none.
pub(crate) fn collect(
    btf: &mut Btf,
    is_weak: impl Fn(&str) -> bool,
) -> Result<(Vec<KconfigExtern>, u32), ObjectError> {
    let Some(sec_id) = btf.find_by_name_kind(".kconfig", kind::DATASEC) else {
        return Ok((Vec::new(), 0));
    };
    let err = |reason: String| ObjectError::Section {
        section: ".kconfig".into(),
        reason,
    };
    let BtfKind::Datasec { vars, .. } =
        &btf.type_by_id(sec_id).map_err(|e| err(e.to_string()))?.kind
    else {
        return Ok((Vec::new(), 0));
    };
    let mut externs = Vec::new();
    for v in vars {
        let t = btf.type_by_id(v.ty).map_err(|e| err(e.to_string()))?;
        let BtfKind::Var { ty, .. } = t.kind else {
            return Err(err(format!(
                "extern function {} is unsupported under .kconfig section",
                t.name
            )));
        };
        let Some(k) = kcfg_type(btf, ty) else {
            return Err(err(format!(
                "extern (kcfg) '{}': type is unsupported",
                t.name
            )));
        };
        let size = btf
            .resolve_size(ty)
            .ok()
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                err(format!(
                    "failed to resolve size of extern (kcfg) '{}'",
                    t.name
                ))
            })?;
        externs.push(KconfigExtern {
            name: t.name.clone(),
            ty: k,
            size,
            offset: 0,
            weak: is_weak(&t.name),
        });
    }
    // cmp_externs: alignment descending, size ascending, name.
    let align = |e: &KconfigExtern| match e.ty {
        KcfgType::CharArr => 1,
        _ => e.size.min(8),
    };
    externs.sort_by(|a, b| {
        align(b)
            .cmp(&align(a))
            .then(a.size.cmp(&b.size))
            .then(a.name.cmp(&b.name))
    });
    let mut off = 0u32;
    for e in &mut externs {
        e.offset = off.next_multiple_of(align(e));
        off = e.offset + e.size;
    }
    btf.fixup_kconfig(off, |name| {
        externs.iter().find(|e| e.name == name).map(|e| e.offset)
    })
    .map_err(|e| err(e.to_string()))?;
    Ok((externs, off))
}

/// `bpf_object__init_kconfig_map`: the `.kconfig` map of object `obj_name`, `size` bytes, its
/// value typed by the `.kconfig` DATASEC; the loader fills it.
pub(crate) fn map_def(obj_name: &str, btf: Option<&Btf>, size: u32) -> MapDef {
    MapDef::global_data(
        internal_map_name(obj_name, ".kconfig"),
        ".kconfig",
        GlobalDataKind::Kconfig,
        size,
        None,
        btf.and_then(|b| b.find_by_name_kind(".kconfig", kind::DATASEC))
            .unwrap_or(0),
    )
}

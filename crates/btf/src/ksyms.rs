//! libbpf's BTF fix-up of `__ksym` externs (the `.ksyms` DATASEC part of
//! `bpf_object__collect_externs`, with `add_dummy_ksym_var`): the kernel's BTF checks refuse
//! `BTF_FUNC_EXTERN` functions and extern variables inside a DATASEC, so before
//! `BPF_BTF_LOAD` libbpf turns every `.ksyms` entry into a 4-byte allocated variable:
//!
//! - if any entry is a function, a `VAR dummy_ksym` (global, allocated, of the first 32-bit
//!   `INT`) is appended; each function's DATASEC entry points at it, the `FUNC` becomes
//!   `BTF_FUNC_GLOBAL`, and its prototype's unnamed parameters borrow the name `dummy_ksym`;
//! - each variable becomes `BTF_VAR_GLOBAL_ALLOCATED` of that `INT`;
//! - entry `i` sits at offset `4 * i`, size 4; the section's size is `4 * n`.
//!
//! And of `__kconfig` externs ([`Btf::fixup_kconfig`]): the `.kconfig` DATASEC gets the size
//! and offsets of libbpf's `.kconfig` map layout, its variables become allocated.

use crate::{Btf, BtfError, BtfKind, kind, patch_u32};

/// `BTF_FUNC_GLOBAL`.
const BTF_FUNC_GLOBAL: u32 = 1;
/// `BTF_VAR_GLOBAL_ALLOCATED`.
const BTF_VAR_GLOBAL_ALLOCATED: u32 = 1;

impl Btf {
    /// Applies libbpf's `.ksyms` fix-up (see the module docs); a BTF without `.ksyms` is
    /// left as it is.
    pub fn fixup_ksyms(&mut self) -> Result<(), BtfError> {
        let Some(sec_id) = self.find_by_name_kind(".ksyms", kind::DATASEC) else {
            return Ok(());
        };
        let BtfKind::Datasec { vars, .. } = &self.type_by_id(sec_id)?.kind else {
            return Ok(());
        };
        let vars = vars.clone();
        let is_func = |b: &Btf, id: u32| {
            matches!(b.type_by_id(id).map(|t| &t.kind), Ok(BtfKind::Func { .. }))
        };
        let int_id = self
            .types
            .iter()
            .position(|t| matches!(t.kind, BtfKind::Int { bits: 32, .. }))
            .unwrap_or(0) as u32;
        let mut dummy = None;
        if vars.iter().any(|v| is_func(self, v.ty)) {
            // The name, then a VAR record: name_off, info (kind VAR), type, linkage.
            let name_off = self.strings.len() as u32;
            self.strings.extend_from_slice(b"dummy_ksym\0");
            let id = self.types.len() as u32;
            for w in [name_off, kind::VAR << 24, int_id, BTF_VAR_GLOBAL_ALLOCATED] {
                self.types_raw.extend_from_slice(&w.to_le_bytes());
            }
            dummy = Some((id, name_off));
        }
        let sec_rec = self.type_offsets[sec_id as usize];
        for (i, v) in vars.iter().enumerate() {
            let rec = self.type_offsets[v.ty as usize];
            let entry = sec_rec + 12 + i * 12;
            match (&self.type_by_id(v.ty)?.kind, dummy) {
                (BtfKind::Func { proto, .. }, Some((dummy_id, dummy_name))) => {
                    let proto = *proto;
                    // FUNC linkage lives in the info's vlen bits.
                    let info = u32::from_le_bytes(
                        self.types_raw[rec + 4..rec + 8]
                            .try_into()
                            .unwrap_or([0; 4]),
                    );
                    patch_u32(
                        &mut self.types_raw,
                        rec + 4,
                        (info & !0xffff) | BTF_FUNC_GLOBAL,
                    );
                    let unnamed: Vec<usize> = match &self.type_by_id(proto)?.kind {
                        BtfKind::FuncProto { params, .. } => params
                            .iter()
                            .enumerate()
                            .filter(|(_, p)| p.ty != 0 && p.name.is_empty())
                            .map(|(j, _)| j)
                            .collect(),
                        _ => Vec::new(),
                    };
                    let prec = self.type_offsets[proto as usize];
                    for j in unnamed {
                        patch_u32(&mut self.types_raw, prec + 12 + j * 8, dummy_name);
                    }
                    patch_u32(&mut self.types_raw, entry, dummy_id);
                }
                (BtfKind::Var { .. }, _) => {
                    patch_u32(&mut self.types_raw, rec + 8, int_id);
                    patch_u32(&mut self.types_raw, rec + 12, BTF_VAR_GLOBAL_ALLOCATED);
                }
                _ => {}
            }
            patch_u32(&mut self.types_raw, entry + 4, 4 * i as u32);
            patch_u32(&mut self.types_raw, entry + 8, 4);
        }
        patch_u32(&mut self.types_raw, sec_rec + 8, 4 * vars.len() as u32);
        *self = Btf::parse(&self.to_bytes())?;
        Ok(())
    }
}

impl Btf {
    /// libbpf's `.kconfig` part of `bpf_object__collect_externs`: every variable of the
    /// `.kconfig` DATASEC becomes `BTF_VAR_GLOBAL_ALLOCATED` at `offset(name)` (its place in
    /// the `.kconfig` map), the section's size becomes `size`, the entries are sorted by
    /// offset. Returns the DATASEC's id, `None` without one.
    pub fn fixup_kconfig(
        &mut self,
        size: u32,
        offset: impl Fn(&str) -> Option<u32>,
    ) -> Result<Option<u32>, BtfError> {
        let Some(sec_id) = self.find_by_name_kind(".kconfig", kind::DATASEC) else {
            return Ok(None);
        };
        let BtfKind::Datasec { vars, .. } = &self.type_by_id(sec_id)?.kind else {
            return Ok(None);
        };
        let mut offsets = Vec::with_capacity(vars.len());
        let mut allocated = Vec::new();
        for v in vars.clone() {
            let t = self.type_by_id(v.ty)?;
            offsets.push(offset(&t.name));
            if matches!(t.kind, BtfKind::Var { .. }) {
                allocated.push(self.type_offsets[v.ty as usize]);
            }
        }
        for rec in allocated {
            patch_u32(&mut self.types_raw, rec + 12, BTF_VAR_GLOBAL_ALLOCATED);
        }
        self.fixup_datasec(sec_id, size, &offsets);
        *self = Btf::parse(&self.to_bytes())?;
        Ok(Some(sec_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tests::blob;

    #[test]
    fn extern_func_becomes_global_with_a_dummy_var() {
        // strings: "" int f .ksyms
        let strings = b"\0int\0f\0.ksyms\0";
        let types = [
            // [1] INT 'int' size 4, 32 bits signed
            1,
            kind::INT << 24,
            4,
            (1 << 24) | 32,
            // [2] FUNC_PROTO (int) -> int, one unnamed parameter
            0,
            (kind::FUNC_PROTO << 24) | 1,
            1,
            0,
            1,
            // [3] FUNC 'f' extern
            5,
            (kind::FUNC << 24) | 2,
            2,
            // [4] DATASEC '.ksyms' one entry
            7,
            (kind::DATASEC << 24) | 1,
            0,
            3,
            0,
            0,
        ];
        let mut b = Btf::parse(&blob(&types, strings)).unwrap();
        b.fixup_ksyms().unwrap();
        assert!(matches!(
            b.type_by_id(3).unwrap().kind,
            BtfKind::Func { linkage: 1, .. }
        ));
        let dummy = b.find_by_name_kind("dummy_ksym", kind::VAR).unwrap();
        assert!(matches!(
            b.type_by_id(dummy).unwrap().kind,
            BtfKind::Var { ty: 1, linkage: 1 }
        ));
        let BtfKind::Datasec { size, vars } = &b.type_by_id(4).unwrap().kind else {
            panic!("datasec");
        };
        assert_eq!(*size, 4);
        assert_eq!((vars[0].ty, vars[0].offset, vars[0].size), (dummy, 0, 4));
        let BtfKind::FuncProto { params, .. } = &b.type_by_id(2).unwrap().kind else {
            panic!("proto");
        };
        assert_eq!(params[0].name, "dummy_ksym");
        // And the kernel's checks now pass.
        crate::validate::validate(&b.to_bytes()).unwrap();
    }
}

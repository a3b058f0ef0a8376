//! `BPF_LD | BPF_IMM | BPF_DW` (`check_ld_imm`): constants, map pointers and values,
//! functions, kernel symbols; the maps a program references.

use super::*;

impl Checker<'_> {
    // ---------------------------------------------------------------- ld_imm64

    pub(super) fn check_ld_imm64(
        &mut self,
        idx: usize,
        src: Imm64Source,
        imm: i32,
        next_imm: i32,
    ) -> R<RegState> {
        let (desc, r) = match src {
            Imm64Source::Imm => {
                return Ok(RegState::known(
                    (imm as u32 as u64) | ((next_imm as u32 as u64) << 32),
                ));
            }
            Imm64Source::MapFd | Imm64Source::MapValue => match self.env.map_by_fd(imm) {
                Some(d) => (d.clone(), MapRef::Fd(imm)),
                None => {
                    return rej(format!("fd {imm} is not pointing to valid bpf_map"));
                }
            },
            Imm64Source::MapIdx | Imm64Source::MapIdxValue => {
                match self.env.map_by_idx(imm as u32) {
                    Some(d) => (d.clone(), MapRef::Fd(imm)),
                    None => return rej(format!("fd_idx {imm} out of bounds")),
                }
            }
            Imm64Source::Func => return self.check_pseudo_func(idx, imm),
            Imm64Source::BtfId => {
                return rej(format!(
                    "insn {idx}: ld_imm64 of a function or BTF id is not supported"
                ));
            }
        };
        let slot = self.map_slot(desc, r);
        self.aux[idx].map = merge_map_use(self.aux[idx].map, MapUse::Map(r));
        let value = matches!(src, Imm64Source::MapValue | Imm64Source::MapIdxValue);
        if !value {
            let mut v = RegState::pointer(RegType::ConstPtrToMap);
            v.map = slot;
            return Ok(v);
        }
        let d = &self.maps[slot as usize].desc;
        if !matches!(d.map_type, BPF_MAP_TYPE_ARRAY) || d.max_entries != 1 {
            return rej("no direct value access support for this map type");
        }
        if next_imm < 0 || next_imm as u32 >= d.value_size {
            return rej(format!(
                "invalid access to map value pointer, value_size={} off={}",
                d.value_size, next_imm as u32
            ));
        }
        let mut v = RegState::pointer(RegType::PtrToMapValue);
        v.map = slot;
        v.off = next_imm;
        Ok(v)
    }

    /// Registers a map (and its inner meta) in the map table, returning its slot.
    pub(super) fn map_slot(&mut self, mut desc: MapDesc, r: MapRef) -> u32 {
        if let Some(i) = self.maps.iter().position(|m| m.r == r) {
            return i as u32;
        }
        let inner_desc = desc.inner_meta.take();
        let i = self.maps.len() as u32;
        self.maps.push(MapSlot {
            desc,
            r,
            inner: None,
        });
        if let (Some(inner), MapRef::Fd(fd)) = (inner_desc, r) {
            let j = self.maps.len() as u32;
            let mut meta = *inner;
            // The kernel's inner_map_meta has no name or id.
            meta.name.clear();
            meta.id = 0;
            meta.inner_meta = None;
            self.maps.push(MapSlot {
                desc: meta,
                r: MapRef::InnerOf(fd),
                inner: None,
            });
            self.maps[i as usize].inner = Some(j);
        }
        i
    }
}

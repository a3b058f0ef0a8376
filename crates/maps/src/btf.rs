//! BTF objects as maps hold them (`map->btf` in the kernel): an id and the blob, kept alive by
//! every map created with it.
//!
//! kbpf-maps never parses BTF. Whoever creates a [`BtfObject`] plays `BPF_BTF_LOAD` and
//! validates the blob first (kbpf-loader does it with `kbpf_btf::validate`, the kernel's
//! `btf_parse` checks); the kernel's `map_check_btf` (key and value type sizes against the
//! map's) is likewise the creator's business. Here the object is an opaque, reference-counted
//! handle whose id plays the kernel's BTF id (its own id space, counted from 1 per process like
//! map ids), so `MapInfo` can report `btf_id` / `btf_key_type_id` / `btf_value_type_id` and
//! user space can read the blob back (`BPF_BTF_GET_FD_BY_ID` + `BPF_OBJ_GET_INFO_BY_FD`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_BTF_ID: AtomicU32 = AtomicU32::new(1);

/// A loaded BTF object: id and blob (header, types, strings), shared by the maps that use it.
#[derive(Clone)]
pub struct BtfObject(Arc<Inner>);

struct Inner {
    id: u32,
    data: Box<[u8]>,
}

impl BtfObject {
    /// A new BTF object with a fresh id. The caller has validated `data`.
    pub fn new(data: Vec<u8>) -> BtfObject {
        let id = NEXT_BTF_ID.fetch_add(1, Ordering::Relaxed);
        BtfObject(Arc::new(Inner {
            id,
            data: data.into_boxed_slice(),
        }))
    }

    /// The object's id (this process's BTF id space).
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The blob as loaded (`btf_size` is its length).
    pub fn data(&self) -> &[u8] {
        &self.0.data
    }
}

impl PartialEq for BtfObject {
    fn eq(&self, other: &BtfObject) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BtfObject {}

impl fmt::Debug for BtfObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BtfObject {{ id: {}, size: {} }}",
            self.0.id,
            self.0.data.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_clones_share() {
        let a = BtfObject::new(vec![1, 2, 3]);
        let b = BtfObject::new(vec![1, 2, 3]);
        assert_ne!(a.id(), b.id());
        assert_ne!(a, b);
        let c = a.clone();
        assert_eq!(a, c);
        assert_eq!(c.data(), &[1, 2, 3]);
    }

    #[test]
    fn maps_hold_btf_only_with_type_ids() {
        use crate::{Errno, Map, MapAttr, MapType};
        let btf = BtfObject::new(vec![0x9f, 0xeb, 1, 0]);
        let m = Map::create(
            &MapAttr::new(MapType::Array, 4, 8, 2).btf(btf.clone(), 1, 2),
            None,
        )
        .unwrap();
        let i = m.info();
        assert_eq!(
            (i.btf_id, i.btf_key_type_id, i.btf_value_type_id),
            (btf.id(), 1, 2)
        );
        assert_eq!(m.btf().map(|(b, _, _)| b.clone()), Some(btf.clone()));
        assert!(i.to_string().ends_with(&format!("\n\tbtf_id {}", btf.id())));
        // Both ids 0: the kernel ignores btf_fd.
        let m = Map::create(&MapAttr::new(MapType::Array, 4, 8, 2).btf(btf, 0, 0), None).unwrap();
        assert_eq!(m.info().btf_id, 0);
        assert!(m.btf().is_none());
        // Type ids without a BTF object.
        let mut a = MapAttr::new(MapType::Array, 4, 8, 2);
        a.btf_value_type_id = 3;
        assert_eq!(Map::create(&a, None).unwrap_err().errno, Errno::EINVAL);
    }
}

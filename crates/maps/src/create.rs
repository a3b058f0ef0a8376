//! `BPF_MAP_CREATE`: the creation checks in the kernel's order (name, access flags, NUMA
//! node, the type's `map_alloc_check`, then the map-of-maps template), and the allocation of
//! each type's storage behind the header programs see, with its ops table.

use std::alloc::Layout;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::attr::{
    MapAttr, array_map_alloc_check, check_name, err, htab_map_alloc_check,
    queue_stack_map_alloc_check, ringbuf_map_alloc_check,
};
use crate::cpus::possible_cpus;
use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::htab::Htab;
use crate::layout::{BpfArray, BpfMap, alloc_percpu};
use crate::lpm_trie::{LpmTrie, trie_alloc_check};
use crate::map::{FdObject, Map, MapInner, Storage, count_live_map};
use crate::meta::InnerMapMeta;
use crate::queue::QueueStack;
use crate::raw::ops_for;
use crate::ringbuf::Ringbuf;
use crate::uapi::*;

static NEXT_MAP_ID: AtomicU32 = AtomicU32::new(1);

/// The creation checks that depend on the attributes alone, in the kernel's order: name,
/// access flags, NUMA node, then the type's `map_alloc_check`. Map-of-maps template checks
/// come after these (see [`InnerMapMeta::alloc`]).
pub fn check_create_attr(a: &MapAttr) -> Result<(), MapError> {
    let n = a.name.as_str();
    check_name(n)?;
    if a.map_flags & BPF_F_RDONLY != 0 && a.map_flags & BPF_F_WRONLY != 0 {
        return Err(err(n, Errno::EINVAL, "both BPF_F_RDONLY and BPF_F_WRONLY"));
    }
    if a.map_flags & BPF_F_NUMA_NODE != 0 && a.numa_node != 0 {
        return Err(err(
            n,
            Errno::EINVAL,
            format!("NUMA node {} is not online", a.numa_node),
        ));
    }
    // map_create: type ids need a BTF object (btf_get_by_fd fails on a descriptor that is
    // not one).
    if (a.btf_key_type_id != 0 || a.btf_value_type_id != 0) && a.btf.is_none() {
        return Err(err(n, Errno::EINVAL, "BTF type ids without a BTF object"));
    }
    if a.map_type >= a.profile.map_type_count {
        return Err(err(
            n,
            Errno::EINVAL,
            format!(
                "map type {} does not exist on this kernel profile (__MAX_BPF_MAP_TYPE {})",
                a.map_type, a.profile.map_type_count
            ),
        ));
    }
    let t = MapType::from_raw(a.map_type);
    let nr_cpus = if a.nr_cpus == 0 {
        possible_cpus()
    } else {
        a.nr_cpus
    };
    if t.is_array_family() {
        array_map_alloc_check(a, t, nr_cpus)
    } else if t.is_hash_family() {
        htab_map_alloc_check(a, t)
    } else if t.is_queue_stack() {
        queue_stack_map_alloc_check(a, t)
    } else if t == MapType::Ringbuf {
        ringbuf_map_alloc_check(a)
    } else if t == MapType::LpmTrie {
        trie_alloc_check(a)
    } else if crate::sock_maps::is_sock_map(t) {
        crate::sock_maps::alloc_check(a, t)
    } else if crate::stack_trace::is_stack_trace(t) {
        crate::stack_trace::alloc_check(a)
    } else if crate::devmap::is_redirect_map(t) {
        crate::devmap::alloc_check(a, t)
    } else {
        Err(err(
            n,
            Errno::EINVAL,
            format!("map type {} not supported", a.map_type),
        ))
    }
}

impl Map {
    /// `BPF_MAP_CREATE`: checks `attr` exactly as the kernel does and allocates the map.
    /// `inner` is the resolved `inner_map_fd` template; it is consulted only for
    /// ARRAY_OF_MAPS/HASH_OF_MAPS (ignored otherwise, as the kernel ignores `inner_map_fd`).
    pub fn create(attr: &MapAttr, inner: Option<&Map>) -> Result<Map, MapError> {
        Self::create_with(attr, || match inner {
            Some(m) => Ok(FdObject::Map(m.clone())),
            None => Err(Errno::EBADF),
        })
    }

    /// Like [`Map::create`], with the template resolved lazily from an fd table (so EBADF /
    /// EINVAL for a bad `inner_map_fd` come after the attribute checks, as in the kernel).
    pub fn create_with(
        attr: &MapAttr,
        inner: impl FnOnce() -> Result<FdObject, Errno>,
    ) -> Result<Map, MapError> {
        check_create_attr(attr)?;
        let t = MapType::from_raw(attr.map_type);
        let name = attr.name.as_str();
        let meta = if t.is_map_in_map() {
            let template = match inner() {
                Ok(FdObject::Map(m)) => m,
                Ok(_) => return Err(err(name, Errno::EINVAL, "inner_map_fd is not a BPF map")),
                Err(e) => return Err(err(name, e, "inner_map_fd is not an open file")),
            };
            Some(
                InnerMapMeta::alloc(template.name(), &template.desc()).map_err(|mut e| {
                    e.map = name.to_string();
                    e
                })?,
            )
        } else {
            None
        };
        let nr_cpus = if attr.nr_cpus == 0 {
            possible_cpus()
        } else {
            attr.nr_cpus
        };
        let mut max_entries = attr.max_entries;
        if t.is_lru() && attr.map_flags & BPF_F_NO_COMMON_LRU != 0 {
            // Per-CPU LRU lists split max_entries evenly between CPUs (htab_map_alloc).
            let up = (max_entries as u64).div_ceil(nr_cpus as u64) * nr_cpus as u64;
            max_entries = if up > u32::MAX as u64 {
                max_entries / nr_cpus * nr_cpus
            } else {
                up as u32
            };
        }
        let map_flags =
            crate::devmap::map_flags(t, attr.map_flags & !(BPF_F_RDONLY | BPF_F_WRONLY));
        let id = NEXT_MAP_ID.fetch_add(1, Ordering::Relaxed);
        let mut inner = MapInner {
            def: MapDef {
                name: name.to_string(),
                map_type: t,
                key_size: attr.key_size,
                value_size: attr.value_size,
                max_entries,
                map_flags,
                nr_cpus,
                bypass_spec_v1: attr.bypass_spec_v1,
                profile: attr.profile,
                elem_size: 0,
                index_mask: 0,
                id,
            },
            raw: NonNull::dangling(),
            storage: Storage::Array {
                layout: Layout::new::<u8>(),
                slots: 0,
                progs: None,
            },
            meta,
            prog_owner_type: AtomicU32::new(0),
            perf: crate::perf_event::slots_for(t, max_entries),
            frozen: std::sync::atomic::AtomicBool::new(false),
            btf: match &attr.btf {
                Some(b) if attr.btf_key_type_id != 0 || attr.btf_value_type_id != 0 => {
                    Some((b.clone(), attr.btf_key_type_id, attr.btf_value_type_id))
                }
                _ => None,
            },
        };
        let header = BpfMap {
            ops: ops_for(t),
            owner: std::ptr::null(),
            map_type: t.raw(),
            key_size: attr.key_size,
            value_size: attr.value_size,
            max_entries,
            map_flags,
            id,
            nr_cpus,
            _pad: 0,
        };
        // Counted from here: MapInner's Drop un-counts it even when allocation fails below.
        count_live_map();
        if t.is_array_family() {
            inner.alloc_array(header)?;
        } else if t.is_queue_stack() {
            inner.raw = NonNull::from(Box::leak(Box::new(header)));
            inner.storage = Storage::QueueStack(QueueStack::new(t, max_entries, attr.value_size));
        } else if t == MapType::Ringbuf {
            inner.raw = NonNull::from(Box::leak(Box::new(header)));
            inner.storage = Storage::Ringbuf(
                Ringbuf::new(max_entries)
                    .ok_or_else(|| err(name, Errno::ENOMEM, "cannot allocate the ring"))?,
            );
        } else if t.raw() == crate::sock_maps::BPF_MAP_TYPE_XSKMAP {
            inner.alloc_xsk_map(header)?;
        } else if crate::sock_maps::is_sock_map(t) || crate::stack_trace::is_stack_trace(t) {
            inner.raw = NonNull::from(Box::leak(Box::new(header)));
            inner.storage = Storage::Sockets { layout: None };
        } else if crate::devmap::is_redirect_map(t) {
            inner.raw = NonNull::from(Box::leak(Box::new(header)));
            inner.storage = Storage::Redirect(crate::devmap::RedirectMap::new(t, max_entries));
        } else if t == MapType::LpmTrie {
            let trie = LpmTrie::alloc(&inner, header);
            inner.raw = trie.header_ptr();
            inner.storage = Storage::LpmTrie(trie);
        } else {
            let htab = Htab::alloc(&inner, header)?;
            inner.raw = htab.header_ptr();
            inner.storage = Storage::Htab(htab);
        }
        let arc = Arc::new(inner);
        // SAFETY: the header is live and owned by `arc`; nothing reads `owner` before the map is
        // handed out, and the Arc's address never changes.
        unsafe {
            (*arc.raw.as_ptr()).owner = Arc::as_ptr(&arc) as *const c_void;
        }
        Ok(Map(arc))
    }
}

/// One zeroed, 8-aligned allocation for map `name`: kbpf's `header` (`header_size` bytes)
/// at the start, then `tail` bytes from the kernel profile's offset `off` (the C expression
/// `what`), the layout the inlined lookups address. EINVAL when `off` cannot hold the header;
/// ENOMEM (`"{kind} too large"`) when the size overflows, or when the allocation fails.
fn alloc_header_block(
    name: &str,
    (header, header_size): (&str, usize),
    (what, off): (&str, usize),
    tail: u64,
    kind: &str,
) -> Result<(Layout, NonNull<u8>), MapError> {
    if off < header_size || !off.is_multiple_of(8) {
        return Err(err(
            name,
            Errno::EINVAL,
            format!(
                "the kernel profile's {what} {off} cannot hold kbpf's {header} header \
                 ({header_size} bytes, 8-aligned)"
            ),
        ));
    }
    let layout = tail
        .checked_add(off as u64)
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| Layout::from_size_align(n, 8).ok())
        .ok_or_else(|| err(name, Errno::ENOMEM, format!("{kind} too large")))?;
    // SAFETY: the layout is non-zero sized (at least the header, checked above).
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    let base = NonNull::new(base).ok_or_else(|| {
        err(
            name,
            Errno::ENOMEM,
            format!("cannot allocate {} bytes", layout.size()),
        )
    })?;
    Ok((layout, base))
}

impl MapInner {
    /// `xsk_map_alloc`: the header and `max_entries` socket pointers at the kernel
    /// profile's `offsetof(struct xsk_map, xsk_map)`, all NULL — kbpf has no AF_XDP
    /// sockets to store — so that the inlined lookup (`xsk_map_gen_lookup`) reads them as
    /// the kernel's does and finds no socket.
    fn alloc_xsk_map(&mut self, header: BpfMap) -> Result<(), MapError> {
        let (layout, base) = alloc_header_block(
            &self.name,
            ("map", size_of::<BpfMap>()),
            (
                "offsetof(struct xsk_map, xsk_map)",
                self.profile.xsk_map_ptrs_off as usize,
            ),
            self.max_entries as u64 * 8,
            "XSKMAP",
        )?;
        let raw = base.cast::<BpfMap>();
        // SAFETY: a fresh, 8-aligned allocation of at least size_of::<BpfMap>() bytes.
        unsafe { raw.as_ptr().write(header) };
        self.raw = raw;
        self.storage = Storage::Sockets {
            layout: Some(layout),
        };
        Ok(())
    }

    /// `array_map_alloc`: header + values in one zeroed allocation.
    fn alloc_array(&mut self, mut header: BpfMap) -> Result<(), MapError> {
        let t = self.map_type;
        let name = self.name.clone();
        let elem_size = round_up8(self.value_size);
        let max = self.max_entries as u64;
        let index_mask = (max.next_power_of_two() - 1) as u32;
        let slots = if self.bypass_spec_v1 {
            max
        } else {
            // Unprivileged arrays are rounded up so the masked index stays in bounds.
            index_mask as u64 + 1
        };
        if slots > u32::MAX as u64 {
            return Err(err(&name, Errno::E2BIG, "max_entries rounded up overflows"));
        }
        let area = if t == MapType::PercpuArray {
            slots * 8
        } else {
            slots * elem_size
        };
        let value_off = self.profile.bpf_array_value_off;
        let (total, base) = alloc_header_block(
            &name,
            ("array", size_of::<BpfArray>()),
            ("offsetof(struct bpf_array, value)", value_off as usize),
            area,
            "array",
        )?;
        header.max_entries = self.max_entries;
        let hdr = BpfArray {
            map: header,
            elem_size: elem_size as u32,
            index_mask,
            value_off,
            _pad: 0,
        };
        // SAFETY: base is a fresh allocation of at least size_of::<BpfArray>() bytes, 8-aligned.
        unsafe { base.cast::<BpfArray>().as_ptr().write(hdr) };
        self.raw = base.cast();
        self.def.elem_size = elem_size as u32;
        self.def.index_mask = index_mask;
        self.storage = Storage::Array {
            layout: total,
            slots: slots as u32,
            progs: (t == MapType::ProgArray)
                .then(|| parking_lot::Mutex::new(vec![None; slots as usize])),
        };
        if t == MapType::PercpuArray {
            // bpf_array_alloc_percpu: one zeroed per-CPU block per element.
            for i in 0..slots as usize {
                let Some(p) = alloc_percpu(self.nr_cpus, elem_size) else {
                    // Drop frees the blocks allocated so far (null slots are skipped).
                    return Err(err(&name, Errno::ENOMEM, "cannot allocate per-CPU values"));
                };
                // SAFETY: slot i is inside the pointer area allocated above.
                unsafe { (base.as_ptr().add(value_off as usize + i * 8) as *mut *mut u8).write(p) };
            }
        }
        Ok(())
    }
}

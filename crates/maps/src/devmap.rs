//! The XDP redirect maps: `BPF_MAP_TYPE_DEVMAP` (14) and `DEVMAP_HASH` (25) of network
//! devices (`kernel/bpf/devmap.c`), and `CPUMAP` (16) of CPUs (`kernel/bpf/cpumap.c`), with
//! the kernel's create-time checks, value layouts, element-operation errno and
//! `get_next_key` order, and the program side: lookups and the target a `bpf_redirect_map`
//! designates ([`crate::raw::redirect_lookup`]).
//!
//! Values: `struct bpf_devmap_val { u32 ifindex; union { int fd; u32 id; } bpf_prog; }` and
//! `struct bpf_cpumap_val { u32 qsize; union { int fd; u32 id; } bpf_prog; }` (4 or 8 bytes;
//! on read the second word is the attached program's id). A devmap entry must name a device
//! of the current network namespace (the kernel's `dev_get_by_index`; kbpf asks the host,
//! `if_indextoname`), a cpumap key a possible CPU. Programs attached to entries
//! (`BPF_XDP_DEVMAP` / `BPF_XDP_CPUMAP` programs, `bpf_prog.fd > 0`) are not modelled: such
//! updates fail with the errno the kernel gives a program of another attach type (EINVAL for
//! devmaps, ENOMEM for cpumaps).
//!
//! Each entry's value lives in a boxed slot (an `AtomicU64`, written whole) allocated on first
//! use and kept until the map is freed (a deleted DEVMAP_HASH entry's slot is reused), so a
//! pointer a program's lookup returned stays readable while user space replaces the entry
//! (the kernel frees replaced entries after an RCU grace period; here a reused slot may show
//! the new value to a program still holding the old pointer). Nothing is allocated per
//! `max_entries` up front; the kernel's ENOMEM for a huge DEVMAP is not modelled.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::attr::{MapAttr, err};
use crate::def::MapDef;
use crate::error::{Errno, MapError};
use crate::uapi::{BPF_EXIST, BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY, BPF_NOEXIST, MapType};
use kbpf_uapi::bpf::BPF_F_RDONLY_PROG;
pub use kbpf_uapi::bpf::{BPF_MAP_TYPE_CPUMAP, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH};

/// `DEV_CREATE_FLAG_MASK`.
const DEV_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;
/// The cpumap's sanity limit on `qsize`.
const CPUMAP_MAX_QSIZE: u32 = 16384;
/// `NR_CPUS` of the kernel builds kbpf mirrors (`/sys/devices/system/cpu/kernel_max` + 1):
/// a cpumap larger than this is refused with E2BIG before any CPU check.
const NR_CPUS: u32 = 256;

/// Whether `t` is one of this module's map types.
pub fn is_redirect_map(t: MapType) -> bool {
    matches!(
        t,
        MapType::Other(BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH | BPF_MAP_TYPE_CPUMAP)
    )
}

/// `dev_map_alloc_check` / `cpu_map_alloc`'s checks.
pub(crate) fn alloc_check(a: &MapAttr, t: MapType) -> Result<(), MapError> {
    let n = a.name.as_str();
    let value_ok = a.value_size == 4 || a.value_size == 8;
    match t.raw() {
        BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH => {
            if a.max_entries == 0
                || a.key_size != 4
                || !value_ok
                || a.map_flags & !DEV_CREATE_FLAG_MASK != 0
            {
                return Err(err(
                    n,
                    Errno::EINVAL,
                    format!(
                        "devmap needs max_entries > 0, key_size 4, value_size 4 or 8 (struct bpf_devmap_val) and flags within {DEV_CREATE_FLAG_MASK:#x}"
                    ),
                ));
            }
            if t.raw() == BPF_MAP_TYPE_DEVMAP_HASH && a.max_entries > 1 << 31 {
                return Err(err(
                    n,
                    Errno::EINVAL,
                    "devmap_hash max_entries above 2^31 (its buckets are a power of two)",
                ));
            }
        }
        _ => {
            if a.max_entries == 0
                || a.key_size != 4
                || !value_ok
                || a.map_flags & !BPF_F_NUMA_NODE != 0
            {
                return Err(err(
                    n,
                    Errno::EINVAL,
                    "cpumap needs max_entries > 0, key_size 4, value_size 4 or 8 (struct bpf_cpumap_val) and no flags but BPF_F_NUMA_NODE",
                ));
            }
            if a.max_entries > NR_CPUS {
                return Err(err(
                    n,
                    Errno::E2BIG,
                    format!("cpumap max_entries above NR_CPUS ({NR_CPUS})"),
                ));
            }
        }
    }
    Ok(())
}

/// The flags the map keeps: devmaps are read-only to programs.
pub(crate) fn map_flags(t: MapType, flags: u32) -> u32 {
    if matches!(t.raw(), BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH) {
        flags | BPF_F_RDONLY_PROG
    } else {
        flags
    }
}

/// One entry's value: low word ifindex / qsize, high word the program id (0). Boxed so its
/// address stays put.
type Slot = Box<AtomicU64>;

/// Which entries exist.
enum Index {
    /// DEVMAP, CPUMAP: the slot of each key ever written, and whether it holds an entry.
    Array(HashMap<u32, (Slot, bool)>),
    /// DEVMAP_HASH: key → slot, slots of deleted entries (reused), and the buckets
    /// (`key & (n_buckets - 1)`, newest first as `hlist_add_head_rcu` leaves them) that
    /// `get_next_key` walks, by bucket number.
    Hash {
        slots: HashMap<u32, Slot>,
        free: Vec<Slot>,
        n_buckets: u64,
        buckets: std::collections::BTreeMap<u64, Vec<u32>>,
    },
}

/// A redirect map's entries.
pub(crate) struct RedirectMap {
    pub(crate) map_type: u32,
    index: Mutex<Index>,
    /// `dtab->items` of a DEVMAP, which `dev_map_mem_usage` counts: incremented by every
    /// update of an empty slot (even one storing ifindex 0, which leaves it empty),
    /// decremented by deleting a filled one, as the kernel does.
    items: AtomicU64,
}

/// What a `bpf_redirect_map` on a redirect map finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectEntry {
    /// A devmap entry: the device's ifindex.
    Dev {
        /// `struct bpf_devmap_val.ifindex`.
        ifindex: u32,
    },
    /// A cpumap entry: the CPU (its key).
    Cpu,
}

fn dev_exists(ifindex: u32) -> bool {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes, as if_indextoname requires.
    !unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) }.is_null()
}

impl RedirectMap {
    pub(crate) fn new(t: MapType, max_entries: u32) -> RedirectMap {
        let index = if t.raw() == BPF_MAP_TYPE_DEVMAP_HASH {
            Index::Hash {
                slots: HashMap::new(),
                free: Vec::new(),
                n_buckets: u64::from(max_entries).next_power_of_two(),
                buckets: Default::default(),
            }
        } else {
            Index::Array(HashMap::new())
        };
        RedirectMap {
            map_type: t.raw(),
            index: Mutex::new(index),
            items: AtomicU64::new(0),
        }
    }

    /// The entry of `key`: its slot's address and value.
    pub(crate) fn entry(&self, key: u32) -> Option<(*mut u64, u64)> {
        let index = self.index.lock();
        let slot = match &*index {
            Index::Array(m) => m.get(&key).filter(|(_, p)| *p).map(|(s, _)| s),
            Index::Hash { slots, .. } => slots.get(&key),
        }?;
        Some((slot.as_ptr(), slot.load(Ordering::Acquire)))
    }

    /// `BPF_MAP_LOOKUP_ELEM`: the value (`value_size` bytes), ENOENT for no entry.
    pub(crate) fn lookup_user(&self, m: &MapDef, key: u32) -> Result<Vec<u8>, (Errno, String)> {
        let (_, v) = self
            .entry(key)
            .ok_or((Errno::ENOENT, format!("no entry {key}")))?;
        Ok(v.to_ne_bytes()[..m.value_size as usize].to_vec())
    }

    /// `BPF_MAP_UPDATE_ELEM` (`__dev_map_update_elem`, `__dev_map_hash_update_elem`,
    /// `cpu_map_update_elem`).
    pub(crate) fn update(
        &self,
        m: &MapDef,
        key: u32,
        value: &[u8],
        flags: u64,
    ) -> Result<(), (Errno, String)> {
        let mut v = [0u8; 8];
        v[..value.len().min(8)].copy_from_slice(&value[..value.len().min(8)]);
        let first = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
        let fd = i32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
        let bad_flags = (Errno::EINVAL, format!("update flags {flags:#x}"));
        match self.map_type {
            BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_CPUMAP => {
                let cpumap = self.map_type == BPF_MAP_TYPE_CPUMAP;
                if flags > BPF_EXIST {
                    return Err(bad_flags);
                }
                if key >= m.max_entries {
                    return Err((
                        Errno::E2BIG,
                        format!("key {key} >= max_entries {}", m.max_entries),
                    ));
                }
                if flags == BPF_NOEXIST {
                    return Err((
                        Errno::EEXIST,
                        "array slots always exist (BPF_NOEXIST)".into(),
                    ));
                }
                let present = if cpumap {
                    if first > CPUMAP_MAX_QSIZE {
                        return Err((Errno::EOVERFLOW, format!("qsize {first} > 16384")));
                    }
                    if key >= crate::possible_cpus() {
                        return Err((Errno::ENODEV, format!("CPU {key} is not possible")));
                    }
                    if first != 0 && fd > 0 {
                        return Err((
                            Errno::ENOMEM,
                            "cpumap entry programs (BPF_XDP_CPUMAP) are not supported by kbpf"
                                .into(),
                        ));
                    }
                    first != 0
                } else if first == 0 {
                    if fd > 0 {
                        return Err((Errno::EINVAL, "a program fd without an ifindex".into()));
                    }
                    false
                } else {
                    self.check_dev(first, fd)?;
                    true
                };
                let mut index = self.index.lock();
                if let Index::Array(m) = &mut *index {
                    let e = m
                        .entry(key)
                        .or_insert_with(|| (Box::new(AtomicU64::new(0)), false));
                    if !e.1 {
                        self.items.fetch_add(1, Ordering::Relaxed);
                    }
                    e.0.store(u64::from(first), Ordering::Release);
                    e.1 = present;
                }
                Ok(())
            }
            _ => {
                if flags > BPF_EXIST || first == 0 {
                    return Err((
                        Errno::EINVAL,
                        format!("update flags {flags:#x} / ifindex {first} (must be non-zero)"),
                    ));
                }
                let mut index = self.index.lock();
                let Index::Hash {
                    slots,
                    free,
                    n_buckets,
                    buckets,
                } = &mut *index
                else {
                    return Err((Errno::EINVAL, "devmap_hash without its index".into()));
                };
                let exists = slots.contains_key(&key);
                if exists && flags == BPF_NOEXIST {
                    return Err((Errno::EEXIST, format!("entry {key} exists (BPF_NOEXIST)")));
                }
                self.check_dev(first, fd)?;
                if !exists {
                    if slots.len() >= m.max_entries as usize {
                        return Err((
                            Errno::E2BIG,
                            format!("devmap_hash is full ({} entries)", m.max_entries),
                        ));
                    }
                    let slot = free.pop().unwrap_or_else(|| Box::new(AtomicU64::new(0)));
                    slots.insert(key, slot);
                }
                let b = u64::from(key) & (*n_buckets - 1);
                let bucket = buckets.entry(b).or_default();
                bucket.retain(|&k| k != key);
                bucket.insert(0, key);
                if let Some(slot) = slots.get(&key) {
                    slot.store(u64::from(first), Ordering::Release);
                }
                Ok(())
            }
        }
    }

    /// `__dev_map_alloc_node`'s device and program checks (EINVAL).
    fn check_dev(&self, ifindex: u32, fd: i32) -> Result<(), (Errno, String)> {
        if !dev_exists(ifindex) {
            return Err((Errno::EINVAL, format!("no device with ifindex {ifindex}")));
        }
        if fd > 0 {
            return Err((
                Errno::EINVAL,
                "devmap entry programs (BPF_XDP_DEVMAP) are not supported by kbpf".into(),
            ));
        }
        Ok(())
    }

    /// `BPF_MAP_DELETE_ELEM`: an array slot is cleared (EINVAL past `max_entries`, success
    /// when already empty); a hash entry must exist (ENOENT).
    pub(crate) fn delete(&self, m: &MapDef, key: u32) -> Result<(), (Errno, String)> {
        let mut index = self.index.lock();
        match &mut *index {
            Index::Array(p) => {
                if key >= m.max_entries {
                    return Err((
                        Errno::EINVAL,
                        format!("key {key} >= max_entries {}", m.max_entries),
                    ));
                }
                if let Some(e) = p.get_mut(&key)
                    && e.1
                {
                    e.1 = false;
                    self.items.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Index::Hash {
                slots,
                free,
                n_buckets,
                buckets,
            } => {
                let slot = slots
                    .remove(&key)
                    .ok_or((Errno::ENOENT, format!("no entry {key}")))?;
                free.push(slot);
                let b = u64::from(key) & (*n_buckets - 1);
                if let Some(list) = buckets.get_mut(&b) {
                    list.retain(|&k| k != key);
                    if list.is_empty() {
                        buckets.remove(&b);
                    }
                }
                Ok(())
            }
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: array order for DEVMAP/CPUMAP (every index, as
    /// `dev_map_get_next_key`), bucket order for DEVMAP_HASH (`dev_map_hash_get_next_key`:
    /// the key's successor in its bucket, else the first entry of the next non-empty bucket;
    /// a missing key starts over).
    pub(crate) fn get_next_key(
        &self,
        m: &MapDef,
        key: Option<u32>,
    ) -> Result<u32, (Errno, String)> {
        let index = self.index.lock();
        let end = (Errno::ENOENT, "no key after the last".to_string());
        match &*index {
            Index::Array(_) => {
                let idx = key.unwrap_or(u32::MAX);
                if idx >= m.max_entries {
                    return Ok(0);
                }
                if idx == m.max_entries - 1 {
                    return Err(end);
                }
                Ok(idx + 1)
            }
            Index::Hash {
                slots,
                n_buckets,
                buckets,
                ..
            } => {
                let mut start = 0;
                if let Some(k) = key
                    && slots.contains_key(&k)
                {
                    let b = u64::from(k) & (*n_buckets - 1);
                    if let Some(list) = buckets.get(&b) {
                        let pos = list.iter().position(|&x| x == k).unwrap_or(list.len());
                        if let Some(&next) = list.get(pos + 1) {
                            return Ok(next);
                        }
                    }
                    start = b + 1;
                }
                buckets
                    .range(start..)
                    .find_map(|(_, l)| l.first().copied())
                    .ok_or(end)
            }
        }
    }

    /// Entries present (for `map show`'s accounting and dumps).
    pub(crate) fn count(&self) -> u32 {
        match &*self.index.lock() {
            Index::Array(p) => p.values().filter(|(_, b)| *b).count() as u32,
            Index::Hash { slots, .. } => slots.len() as u32,
        }
    }

    /// The entry behind `key` for a program: its value slot, or NULL.
    pub(crate) fn lookup_raw(&self, key: u32) -> *mut c_void {
        self.entry(key)
            .map_or(std::ptr::null_mut(), |(p, _)| p as *mut c_void)
    }
}

/// `sizeof(struct bpf_dtab)` and `sizeof(struct bpf_cpu_map)` on the kernels kbpf mirrors
/// (read from their `memlock`; not followed per kernel profile).
const SIZEOF_BPF_DTAB: u64 = 344;
const SIZEOF_BPF_CPU_MAP: u64 = 304;
/// `sizeof(struct bpf_dtab_netdev)` on the same kernels.
const SIZEOF_BPF_DTAB_NETDEV: u64 = 64;

/// `dev_map_mem_usage` / `cpu_map_mem_usage`: the map struct, the slot pointers (DEVMAP,
/// CPUMAP) or buckets (DEVMAP_HASH), and for devmaps one `bpf_dtab_netdev` per entry (a
/// cpumap's entries are not counted).
pub(crate) fn mem_usage(m: &MapDef, r: &RedirectMap) -> u64 {
    match r.map_type {
        BPF_MAP_TYPE_CPUMAP => SIZEOF_BPF_CPU_MAP + m.max_entries as u64 * 8,
        BPF_MAP_TYPE_DEVMAP_HASH => {
            SIZEOF_BPF_DTAB
                + u64::from(m.max_entries).next_power_of_two() * 8
                + u64::from(r.count()) * SIZEOF_BPF_DTAB_NETDEV
        }
        _ => {
            SIZEOF_BPF_DTAB
                + m.max_entries as u64 * 8
                + r.items.load(Ordering::Relaxed) * SIZEOF_BPF_DTAB_NETDEV
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Map;
    use crate::raw::redirect_lookup;

    fn create(t: u32, value: u32, max: u32) -> Result<Map, MapError> {
        let mut a = MapAttr::new(MapType::from_raw(t), 4, value, max);
        a.name = "d".into();
        Map::create(&a, None)
    }

    fn k(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    #[test]
    fn creation_follows_the_kernels_checks() {
        assert!(create(BPF_MAP_TYPE_DEVMAP, 4, 4).is_ok());
        assert!(create(BPF_MAP_TYPE_DEVMAP, 8, 4).is_ok());
        assert_eq!(
            create(BPF_MAP_TYPE_DEVMAP, 6, 4).unwrap_err().errno,
            Errno::EINVAL
        );
        assert_eq!(
            create(BPF_MAP_TYPE_DEVMAP_HASH, 4, 0).unwrap_err().errno,
            Errno::EINVAL
        );
        assert_eq!(
            create(BPF_MAP_TYPE_CPUMAP, 12, 4).unwrap_err().errno,
            Errno::EINVAL
        );
        assert_eq!(
            create(BPF_MAP_TYPE_CPUMAP, 4, NR_CPUS + 1)
                .unwrap_err()
                .errno,
            Errno::E2BIG
        );
        let d = create(BPF_MAP_TYPE_DEVMAP, 4, 4).unwrap();
        assert_eq!(d.map_flags() & BPF_F_RDONLY_PROG, BPF_F_RDONLY_PROG);
    }

    #[test]
    fn devmap_element_ops_carry_the_kernels_errno() {
        let d = create(BPF_MAP_TYPE_DEVMAP, 8, 4).unwrap();
        let lo = 1u64.to_ne_bytes();
        assert!(d.update_elem(&k(0), &lo, 0).is_ok());
        assert_eq!(d.lookup_elem(&k(0)).unwrap(), lo);
        assert_eq!(d.lookup_elem(&k(1)).unwrap_err().errno, Errno::ENOENT);
        assert_eq!(
            d.update_elem(&k(4), &lo, 0).unwrap_err().errno,
            Errno::E2BIG
        );
        assert_eq!(
            d.update_elem(&k(1), &lo, BPF_NOEXIST).unwrap_err().errno,
            Errno::EEXIST
        );
        assert_eq!(
            d.update_elem(&k(1), &u64::from(u32::MAX).to_ne_bytes(), 0)
                .unwrap_err()
                .errno,
            Errno::EINVAL,
            "no such device"
        );
        assert!(d.delete_elem(&k(3)).is_ok(), "an empty slot deletes");
        assert_eq!(d.delete_elem(&k(4)).unwrap_err().errno, Errno::EINVAL);
        assert_eq!(d.get_next_key(None).unwrap(), k(0));
        assert_eq!(
            d.get_next_key(Some(&k(3))).unwrap_err().errno,
            Errno::ENOENT
        );
        // SAFETY: a live devmap and a 4-byte key.
        let target = unsafe { redirect_lookup(d.as_ptr(), 0) };
        assert_eq!(target, Some(RedirectEntry::Dev { ifindex: 1 }));
        // SAFETY: as above.
        assert_eq!(unsafe { redirect_lookup(d.as_ptr(), 2) }, None);
    }

    #[test]
    fn devmap_hash_walks_buckets_newest_first() {
        let d = create(BPF_MAP_TYPE_DEVMAP_HASH, 4, 4).unwrap();
        let lo = 1u32.to_ne_bytes();
        for key in [1u32, 5, 2] {
            d.update_elem(&k(key), &lo, 0).unwrap();
        }
        // Buckets key & 3: bucket 1 holds 5 then 1 (newest first), bucket 2 holds 2.
        assert_eq!(d.keys(), vec![k(5).to_vec(), k(1).to_vec(), k(2).to_vec()]);
        assert_eq!(
            d.update_elem(&k(9), &[0; 4], 0).unwrap_err().errno,
            Errno::EINVAL
        );
        assert_eq!(
            d.update_elem(&k(1), &lo, BPF_NOEXIST).unwrap_err().errno,
            Errno::EEXIST
        );
        d.update_elem(&k(3), &lo, 0).unwrap();
        assert_eq!(
            d.update_elem(&k(4), &lo, 0).unwrap_err().errno,
            Errno::E2BIG
        );
        assert_eq!(d.delete_elem(&k(7)).unwrap_err().errno, Errno::ENOENT);
        d.delete_elem(&k(5)).unwrap();
        assert_eq!(
            d.get_next_key(Some(&k(7))).unwrap(),
            k(1),
            "a missing key starts over"
        );
    }

    #[test]
    fn cpumap_checks_qsize_and_cpus() {
        let c = create(BPF_MAP_TYPE_CPUMAP, 4, 4).unwrap();
        assert_eq!(
            c.update_elem(&k(0), &k(16385), 0).unwrap_err().errno,
            Errno::EOVERFLOW
        );
        assert!(c.update_elem(&k(0), &k(192), 0).is_ok());
        assert_eq!(c.lookup_elem(&k(0)).unwrap(), k(192));
        c.update_elem(&k(0), &k(0), 0).unwrap();
        assert_eq!(
            c.lookup_elem(&k(0)).unwrap_err().errno,
            Errno::ENOENT,
            "qsize 0 deletes"
        );
    }
}

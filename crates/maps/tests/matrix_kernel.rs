//! The map matrix: every map type kbpf-maps supports that the kernel creates from user space
//! (LPM_TRIE included: its keys get a prefix length that mostly fits the data), in flag
//! variants, × key sizes × value sizes {0, 1, 3, 4, 8, 12, 16, 24, 64, 256} ×
//! max_entries {0, 1, 2, 3, 100}, created on kbpf and on the live kernel. Every creation's
//! errno is compared (types that fix a size still get all sizes: the kernel's EINVAL must be
//! kbpf's; 0 is a QUEUE/STACK key size and refused elsewhere). Every valid
//! configuration then runs a seeded random sequence of every user-space operation on both
//! sides — update with each flag (BPF_ANY, BPF_NOEXIST, BPF_EXIST, bad flags, BPF_F_LOCK),
//! lookup (also with bad flags), lookup_and_delete, delete, get_next_key (NULL, present and
//! missing keys), full dumps, BPF_MAP_UPDATE_BATCH, freeze followed by writes — comparing
//! Ok/Err and errno of each, the bytes returned (per-CPU values: every possible CPU's
//! 8-byte-rounded slot) and the full contents afterwards. Map-of-maps values are inner map
//! fds on update and ids on lookup; ids are translated to "which inner map".
//!
//! LRU maps: kbpf's eviction order is an approximation, so only what is deterministic is
//! compared. The thread is pinned to one CPU, which makes the kernel's LRU free lists
//! predictable: an update that takes a free node (`prealloc_lru_pop`: every update with valid
//! flags, except BPF_EXIST on LRU_PERCPU_HASH) can evict only when fewer free nodes remain
//! than a refill of this CPU's list wants — common LRU: `target_free = clamp(max_entries /
//! cpus / 2, 1, 128)` (so a 100-entry map may start evicting at 76 elements);
//! `BPF_F_NO_COMMON_LRU`: none of this CPU's share (`roundup(max_entries, cpus) / cpus`).
//! Until the first such update, everything is compared exactly; after it ("tainted"), only
//! results that cannot depend on the contents (bad flags, writes to a frozen map, freeze),
//! and kbpf's own dump must stay consistent.
//!
//! After a mismatch that leaves the two maps with different contents, a sequence compares
//! only content-independent results too (the rest would repeat the first mismatch).
//!
//! Knobs: `KBPF_MATRIX_SEED` (decimal or 0x-hex) reseeds every sequence; `KBPF_MATRIX_LEN`
//! fixes the sequence length of every configuration (default `160 + 3 * max_entries`, and
//! `32 + max_entries / 2` for map-of-maps, whose kernel updates wait for an RCU grace period;
//! `scripts/valgrind-stress.sh` uses 32); `KBPF_MATRIX_ONLY=<substring>` runs only the
//! configurations whose name contains it (e.g. `"lru_percpu_hash k4 v8 n1 flags 0x40"`);
//! `KBPF_MATRIX_TRACE=<substring>` prints every operation of those configurations with both
//! outcomes. Mismatches are collected and listed (configuration, op index, op, kbpf's result,
//! the kernel's result), grouped by type, operation and outcome first; the test fails if
//! there is any.
//!
//! BPF_F_RDONLY / BPF_F_WRONLY configurations run every command through a `Registry`
//! descriptor, which carries the access mode. Not compared because kbpf-maps has no
//! counterpart: BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH and
//! BPF_MAP_DELETE_BATCH (only the batch update exists).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use kbpf_kernel::{KernelMap, MapCreateAttr, bpf_available_or_skip};
use kbpf_maps::uapi::*;
use kbpf_maps::{Errno, FdObject, Map, MapAttr, MapType, Registry};

/// Key and value sizes. 0 is there for QUEUE/STACK keys (and as a size every other type
/// refuses at creation).
const SIZES: [u32; 10] = [0, 1, 3, 4, 8, 12, 16, 24, 64, 256];
/// max_entries (0: refused at creation by every type).
const ENTRIES: [u32; 5] = [0, 1, 2, 3, 100];
/// An fd number no test process has open (EBADF as a map-of-maps value).
const CLOSED_FD: u32 = 999_999;

// ------------------------------------------------------------------------------------------
// Deterministic randomness.

use common::Rng;

fn env_u64(name: &str) -> Option<u64> {
    let s = std::env::var(name).ok()?;
    let s = s.trim();
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={s:?} is not a number")))
}

// ------------------------------------------------------------------------------------------
// Kernel commands kbpf-kernel does not wrap: lookup_and_delete, freeze, update batch.

mod kraw {
    use std::os::fd::RawFd;

    const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
    const BPF_MAP_FREEZE: libc::c_long = 22;
    const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

    #[repr(C)]
    #[derive(Default)]
    struct ElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct BatchAttr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct FdAttr {
        map_fd: u32,
        _pad: u32,
    }

    fn addr(s: &[u8]) -> u64 {
        if s.is_empty() {
            0
        } else {
            s.as_ptr() as usize as u64
        }
    }

    /// # Safety
    /// Every address in `attr` must be valid for what `cmd` reads and writes through it.
    unsafe fn sys_bpf<A>(cmd: libc::c_long, attr: &mut A) -> Result<(), i32> {
        // SAFETY: attr is a live repr(C) block of its size; addresses are the caller's duty.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut A,
                std::mem::size_of::<A>() as libc::c_long,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
        } else {
            Ok(())
        }
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`; `key` is the map's key_size long (empty for
    /// queue/stack), `value_len` its user value size.
    pub fn lookup_and_delete(
        fd: RawFd,
        key: &[u8],
        value_len: usize,
        flags: u64,
    ) -> Result<Vec<u8>, i32> {
        let mut v = vec![0u8; value_len];
        let mut a = ElemAttr {
            map_fd: fd as u32,
            key: addr(key),
            value: v.as_mut_ptr() as usize as u64,
            flags,
            ..Default::default()
        };
        // SAFETY: the kernel reads key_size bytes of key and writes value_len bytes of v.
        unsafe { sys_bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut a) }?;
        Ok(v)
    }

    /// `BPF_MAP_FREEZE`.
    pub fn freeze(fd: RawFd) -> Result<(), i32> {
        let mut a = FdAttr {
            map_fd: fd as u32,
            _pad: 0,
        };
        // SAFETY: no addresses.
        unsafe { sys_bpf(BPF_MAP_FREEZE, &mut a) }
    }

    /// `BPF_MAP_UPDATE_BATCH` of `count` elements (keys and values concatenated); returns the
    /// count the kernel wrote back and the result.
    pub fn update_batch(
        fd: RawFd,
        keys: &[u8],
        values: &[u8],
        count: u32,
        elem_flags: u64,
    ) -> (u32, Result<(), i32>) {
        let mut a = BatchAttr {
            keys: addr(keys),
            values: addr(values),
            count,
            map_fd: fd as u32,
            elem_flags,
            ..Default::default()
        };
        // SAFETY: keys/values hold count * key_size / count * value_len bytes (callers).
        let r = unsafe { sys_bpf(BPF_MAP_UPDATE_BATCH, &mut a) };
        (a.count, r)
    }
}

// ------------------------------------------------------------------------------------------
// Configurations.

#[derive(Clone, Copy)]
struct Variant {
    t: MapType,
    flags: u32,
    /// Map-of-maps: which template (0 plain array k4 v4 n3, 1 the same with BPF_F_INNER_MAP).
    tmpl: Option<usize>,
}

fn variants() -> Vec<Variant> {
    use MapType::*;
    let zs = BPF_F_ZERO_SEED;
    let v = |t, flags| Variant {
        t,
        flags,
        tmpl: None,
    };
    let m = |t, flags, tmpl| Variant {
        t,
        flags,
        tmpl: Some(tmpl),
    };
    vec![
        v(Array, 0),
        v(Array, BPF_F_INNER_MAP),
        v(Array, BPF_F_MMAPABLE),
        v(Array, BPF_F_RDONLY_PROG),
        v(Array, BPF_F_RDONLY),
        v(Array, BPF_F_WRONLY),
        v(Array, BPF_F_NO_PREALLOC),
        v(Array, BPF_F_RDONLY | BPF_F_WRONLY),
        v(PercpuArray, 0),
        v(PercpuArray, BPF_F_INNER_MAP),
        v(Hash, zs),
        v(Hash, zs | BPF_F_NO_PREALLOC),
        v(Hash, zs | BPF_F_RDONLY),
        v(Hash, zs | BPF_F_WRONLY),
        v(Hash, zs | BPF_F_NO_COMMON_LRU),
        v(Hash, zs | BPF_F_INNER_MAP),
        v(PercpuHash, zs),
        v(PercpuHash, zs | BPF_F_NO_PREALLOC),
        v(LruHash, zs),
        v(LruHash, zs | BPF_F_NO_COMMON_LRU),
        v(LruHash, zs | BPF_F_NO_PREALLOC),
        v(LruPercpuHash, zs),
        v(LruPercpuHash, zs | BPF_F_NO_COMMON_LRU),
        m(ArrayOfMaps, 0, 0),
        m(ArrayOfMaps, 0, 1),
        m(ArrayOfMaps, BPF_F_INNER_MAP, 1),
        m(HashOfMaps, zs, 0),
        m(HashOfMaps, zs, 1),
        m(HashOfMaps, zs | BPF_F_NO_PREALLOC, 0),
        m(HashOfMaps, zs | BPF_F_NO_PREALLOC, 1),
        v(Queue, 0),
        v(Queue, BPF_F_WRONLY),
        v(Queue, BPF_F_NO_PREALLOC),
        v(Stack, 0),
        v(Stack, BPF_F_RDONLY),
        v(LpmTrie, 0),
        v(LpmTrie, BPF_F_NO_PREALLOC),
        v(LpmTrie, BPF_F_NO_PREALLOC | BPF_F_RDONLY),
        v(LpmTrie, BPF_F_NO_PREALLOC | BPF_F_WRONLY),
    ]
}

#[derive(Clone, Copy)]
struct Cfg {
    t: MapType,
    flags: u32,
    tmpl: Option<usize>,
    k: u32,
    v: u32,
    n: u32,
}

impl Cfg {
    fn name(&self) -> String {
        let tmpl = match self.tmpl {
            Some(0) => " inner=array",
            Some(_) => " inner=array(INNER_MAP)",
            None => "",
        };
        format!(
            "{} k{} v{} n{} flags {:#x}{tmpl}",
            self.t, self.k, self.v, self.n, self.flags
        )
    }
    fn mim(&self) -> bool {
        self.t.is_map_in_map()
    }
    fn keyless(&self) -> bool {
        self.t.is_queue_stack()
    }
    fn arrayish(&self) -> bool {
        self.t.is_array_family()
    }
    fn access(&self) -> u32 {
        self.flags & (BPF_F_RDONLY | BPF_F_WRONLY)
    }
}

// ------------------------------------------------------------------------------------------
// Inner maps shared by every map-of-maps configuration.

struct Inners {
    k_tmpl: Vec<KernelMap>,
    o_tmpl: Vec<Map>,
    k: Vec<KernelMap>,
    o: Vec<Map>,
    k_ids: Vec<u32>,
    o_ids: Vec<u32>,
    devnull: std::fs::File,
}

/// (type, key, value, entries, flags) of the inner-map candidates: fits template 0 (0, 1),
/// fits template 1 (2, 3: BPF_F_INNER_MAP, any size), and misfits (other size, flags, value
/// size, type).
const INNER_SPECS: [(MapType, u32, u32, u32, u32); 7] = [
    (MapType::Array, 4, 4, 3, 0),
    (MapType::Array, 4, 4, 3, 0),
    (MapType::Array, 4, 4, 3, BPF_F_INNER_MAP),
    (MapType::Array, 4, 4, 5, BPF_F_INNER_MAP),
    (MapType::Array, 4, 4, 5, 0),
    (MapType::Hash, 4, 4, 3, 0),
    (MapType::Array, 4, 8, 3, 0),
];

impl Inners {
    fn new() -> Inners {
        let kmk = |(t, k, v, n, f): (MapType, u32, u32, u32, u32)| {
            KernelMap::create(
                &MapCreateAttr::new(t.raw(), k, v, n)
                    .flags(f)
                    .name("mx_inner"),
            )
            .unwrap()
        };
        let omk = |(t, k, v, n, f): (MapType, u32, u32, u32, u32)| {
            Map::create(&MapAttr::new(t, k, v, n).flags(f).name("mx_inner"), None).unwrap()
        };
        let tmpls = [
            (MapType::Array, 4, 4, 3, 0),
            (MapType::Array, 4, 4, 3, BPF_F_INNER_MAP),
        ];
        let k: Vec<KernelMap> = INNER_SPECS.iter().map(|&s| kmk(s)).collect();
        let o: Vec<Map> = INNER_SPECS.iter().map(|&s| omk(s)).collect();
        Inners {
            k_tmpl: tmpls.iter().map(|&s| kmk(s)).collect(),
            o_tmpl: tmpls.iter().map(|&s| omk(s)).collect(),
            k_ids: k.iter().map(|m| m.id()).collect(),
            o_ids: o.iter().map(|m| m.id()).collect(),
            k,
            o,
            devnull: std::fs::File::open("/dev/null").unwrap(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Operations and their outcomes.

#[derive(Clone, Copy, Debug)]
enum Inner {
    Map(usize),
    ClosedFd,
    NotAMap,
}

#[derive(Clone, Debug)]
enum Val {
    Bytes(Vec<u8>),
    Inner(Inner),
}

#[derive(Clone, Debug)]
enum Op {
    Update(Vec<u8>, Val, u64),
    Lookup(Vec<u8>, u64),
    LookupAndDelete(Vec<u8>, u64),
    Delete(Vec<u8>),
    GetNextKey(Option<Vec<u8>>),
    Dump,
    UpdateBatch(Vec<Vec<u8>>, Vec<Val>, u64),
    Freeze,
}

impl Op {
    fn describe(&self) -> String {
        let val = |v: &Val| match v {
            Val::Bytes(b) => format!("{}B", b.len()),
            Val::Inner(i) => format!("{i:?}"),
        };
        match self {
            Op::Update(k, v, f) => format!("update key {} value {} flags {f:#x}", hex(k), val(v)),
            Op::Lookup(k, f) => format!("lookup key {} flags {f:#x}", hex(k)),
            Op::LookupAndDelete(k, f) => {
                format!("lookup_and_delete key {} flags {f:#x}", hex(k))
            }
            Op::Delete(k) => format!("delete key {}", hex(k)),
            Op::GetNextKey(k) => format!(
                "get_next_key {}",
                k.as_ref().map_or("NULL".to_string(), |k| hex(k))
            ),
            Op::Dump => "dump".into(),
            Op::UpdateBatch(ks, vs, f) => {
                let mut elems: Vec<String> = ks
                    .iter()
                    .zip(vs)
                    .take(6)
                    .map(|(k, v)| format!("{}={}", hex(k), val(v)))
                    .collect();
                if ks.len() > 6 {
                    elems.push("…".into());
                }
                format!(
                    "update_batch of {} [{}] elem_flags {f:#x}",
                    ks.len(),
                    elems.join(" ")
                )
            }
            Op::Freeze => "freeze".into(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Op::Update(_, _, f) if f & BPF_F_LOCK != 0 || *f > BPF_EXIST => "update(bad flags)",
            Op::Update(..) => "update",
            Op::Lookup(_, 0) => "lookup",
            Op::Lookup(..) => "lookup(flags)",
            Op::LookupAndDelete(_, 0) => "lookup_and_delete",
            Op::LookupAndDelete(..) => "lookup_and_delete(flags)",
            Op::Delete(_) => "delete",
            Op::GetNextKey(_) => "get_next_key",
            Op::Dump => "dump",
            Op::UpdateBatch(_, _, 0) => "update_batch",
            Op::UpdateBatch(..) => "update_batch(elem_flags)",
            Op::Freeze => "freeze",
        }
    }

    fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Update(..)
                | Op::LookupAndDelete(..)
                | Op::Delete(_)
                | Op::UpdateBatch(..)
                | Op::Freeze
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Err(i32),
    Unit,
    Bytes(Vec<u8>),
    /// A map-of-maps value: which inner map (None: an id neither side created).
    Inner(Option<usize>),
    /// Batch: the count written back and the errno (0: success).
    Batch(u32, i32),
    /// get_next_key walk: each key with its lookup, and the errno that ended the walk.
    Dump(Vec<(Vec<u8>, Out)>, i32),
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "[]".into();
    }
    let mut s: String = b.iter().take(24).map(|x| format!("{x:02x}")).collect();
    if b.len() > 24 {
        s.push_str(&format!("..({}B)", b.len()));
    }
    s
}

fn errno_name(e: i32) -> String {
    kbpf_kernel::Errno(e).name().into_owned()
}

fn show(o: &Out) -> String {
    match o {
        Out::Err(e) => format!("Err({})", errno_name(*e)),
        Out::Unit => "Ok".into(),
        Out::Bytes(b) => format!("Ok({})", hex(b)),
        Out::Inner(i) => format!("Ok(inner {i:?})"),
        Out::Batch(c, 0) => format!("Ok(count {c})"),
        Out::Batch(c, e) => format!("Err({}, count {c})", errno_name(*e)),
        Out::Dump(v, e) => format!("{} entries then {}", v.len(), errno_name(*e)),
    }
}

/// Both outcomes, with the first difference pointed out.
fn show_pair(o: &Out, k: &Out) -> String {
    match (o, k) {
        (Out::Bytes(a), Out::Bytes(b)) => {
            let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
            let lo = i.saturating_sub(4);
            format!(
                "kbpf {}B vs kernel {}B, first difference at byte {i}: kbpf …{}… kernel …{}…",
                a.len(),
                b.len(),
                hex(&a[lo.min(a.len())..(i + 12).min(a.len())]),
                hex(&b[lo.min(b.len())..(i + 12).min(b.len())])
            )
        }
        (Out::Dump(a, ea), Out::Dump(b, eb)) => match a.iter().zip(b).position(|(x, y)| x != y) {
            Some(i) => format!(
                "dump entry {i}: kbpf key {} {} vs kernel key {} {}",
                hex(&a[i].0),
                show_pair(&a[i].1, &b[i].1),
                hex(&b[i].0),
                show(&b[i].1)
            ),
            None => format!(
                "kbpf {} entries then {} vs kernel {} entries then {} (keys kbpf [{}] kernel [{}])",
                a.len(),
                errno_name(*ea),
                b.len(),
                errno_name(*eb),
                a.iter().map(|e| hex(&e.0)).collect::<Vec<_>>().join(" "),
                b.iter().map(|e| hex(&e.0)).collect::<Vec<_>>().join(" ")
            ),
        },
        _ => format!("kbpf {} vs kernel {}", show(o), show(k)),
    }
}

fn kerr(e: kbpf_kernel::Error) -> i32 {
    e.errno().map_or(-1, |e| e.0)
}

fn oerr(e: kbpf_maps::MapError) -> i32 {
    e.errno.code()
}

fn unit<E>(r: Result<(), E>, f: impl Fn(E) -> i32) -> Out {
    match r {
        Ok(()) => Out::Unit,
        Err(e) => Out::Err(f(e)),
    }
}

fn bytes<E>(r: Result<Vec<u8>, E>, f: impl Fn(E) -> i32) -> Out {
    match r {
        Ok(b) => Out::Bytes(b),
        Err(e) => Out::Err(f(e)),
    }
}

/// A map-of-maps lookup result as "which inner map".
fn which(o: Out, ids: &[u32]) -> Out {
    match o {
        Out::Bytes(b) if b.len() == 4 => {
            let id = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            Out::Inner(ids.iter().position(|&i| i == id))
        }
        o => o,
    }
}

// ------------------------------------------------------------------------------------------
// The two sides.

struct KSide<'a> {
    map: KernelMap,
    inners: &'a Inners,
    mim: bool,
    max_walk: usize,
}

impl KSide<'_> {
    fn val_bytes(&self, v: &Val) -> Vec<u8> {
        match v {
            Val::Bytes(b) => b.clone(),
            Val::Inner(Inner::Map(i)) => {
                (self.inners.k[*i].as_raw_fd() as u32).to_ne_bytes().into()
            }
            Val::Inner(Inner::ClosedFd) => CLOSED_FD.to_ne_bytes().into(),
            Val::Inner(Inner::NotAMap) => (self.inners.devnull.as_raw_fd() as u32)
                .to_ne_bytes()
                .into(),
        }
    }

    fn lookup(&self, m: &KernelMap, key: &[u8], flags: u64) -> Out {
        let o = bytes(m.lookup_with_flags(key, flags), kerr);
        if self.mim {
            which(o, &self.inners.k_ids)
        } else {
            o
        }
    }

    fn dump(&self, m: &KernelMap) -> Out {
        let mut out: Vec<(Vec<u8>, Out)> = Vec::new();
        loop {
            if out.len() > self.max_walk {
                return Out::Dump(out, -1);
            }
            match m.get_next_key(out.last().map(|e| e.0.as_slice())) {
                Ok(k) => {
                    let v = self.lookup(m, &k, 0);
                    out.push((k, v));
                }
                Err(e) => return Out::Dump(out, kerr(e)),
            }
        }
    }

    fn exec(&self, op: &Op) -> Out {
        let m = &self.map;
        let fd = m.as_raw_fd();
        match op {
            Op::Update(k, v, f) => unit(m.update(k, &self.val_bytes(v), *f), kerr),
            Op::Lookup(k, f) => self.lookup(m, k, *f),
            Op::LookupAndDelete(k, f) => bytes(
                kraw::lookup_and_delete(fd, k, m.user_value_len(), *f),
                |e| e,
            ),
            Op::Delete(k) => unit(m.delete(k), kerr),
            Op::GetNextKey(k) => bytes(m.get_next_key(k.as_deref()), kerr),
            Op::Dump => self.dump(m),
            Op::UpdateBatch(ks, vs, f) => {
                let keys: Vec<u8> = ks.concat();
                let vals: Vec<u8> = vs.iter().flat_map(|v| self.val_bytes(v)).collect();
                let (c, r) = kraw::update_batch(fd, &keys, &vals, ks.len() as u32, *f);
                Out::Batch(c, r.err().unwrap_or(0))
            }
            Op::Freeze => unit(kraw::freeze(fd), |e| e),
        }
    }
}

struct OSide<'a> {
    map: Map,
    /// BPF_F_RDONLY / BPF_F_WRONLY configurations: the element commands go through a
    /// descriptor of this table, which carries the access mode.
    reg: Option<(Registry, u32)>,
    inners: &'a Inners,
    mim: bool,
    max_walk: usize,
}

/// The number kbpf's batch update is given for an inner-map value (see `OSide::resolve`).
fn inner_token(i: Inner) -> u32 {
    match i {
        Inner::Map(i) => 1000 + i as u32,
        Inner::ClosedFd => CLOSED_FD,
        Inner::NotAMap => 2000,
    }
}

impl OSide<'_> {
    /// What a map-of-maps batch value stands for: an inner map, a non-map file, or nothing.
    fn resolve(&self, token: u32) -> Result<FdObject, Errno> {
        match token {
            2000 => Ok(FdObject::Other),
            t if (1000..1000 + self.inners.o.len() as u32).contains(&t) => {
                Ok(FdObject::Map(self.inners.o[(t - 1000) as usize].clone()))
            }
            _ => Err(Errno::EBADF),
        }
    }

    fn lookup_via(&self, direct: bool, key: &[u8], flags: u64) -> Out {
        let r = match (&self.reg, direct) {
            (Some((reg, fd)), false) => reg.map_lookup_elem(*fd, key, flags),
            _ => self.map.lookup_elem_flags(key, flags),
        };
        let o = bytes(r, oerr);
        if self.mim {
            which(o, &self.inners.o_ids)
        } else {
            o
        }
    }

    fn get_next_key_via(&self, direct: bool, key: Option<&[u8]>) -> Out {
        let r = match (&self.reg, direct) {
            (Some((reg, fd)), false) => reg.map_get_next_key(*fd, key),
            _ => self.map.get_next_key(key),
        };
        bytes(r, oerr)
    }

    fn dump(&self, direct: bool) -> Out {
        let mut out: Vec<(Vec<u8>, Out)> = Vec::new();
        loop {
            if out.len() > self.max_walk {
                return Out::Dump(out, -1);
            }
            match self.get_next_key_via(direct, out.last().map(|e| e.0.as_slice())) {
                Out::Bytes(k) => {
                    let v = self.lookup_via(direct, &k, 0);
                    out.push((k, v));
                }
                Out::Err(e) => return Out::Dump(out, e),
                _ => unreachable!(),
            }
        }
    }

    fn update(&self, k: &[u8], v: &Val, f: u64) -> Out {
        let m = &self.map;
        let r = match v {
            Val::Bytes(b) => match &self.reg {
                Some((reg, fd)) => reg.map_update_elem(*fd, k, b, f),
                None => m.update_elem(k, b, f),
            },
            Val::Inner(Inner::Map(i)) => m.update_inner_map(k, &self.inners.o[*i], f),
            Val::Inner(Inner::ClosedFd) => m.update_elem_fd(k, f, || Err(Errno::EBADF)),
            Val::Inner(Inner::NotAMap) => m.update_elem_fd(k, f, || Ok(FdObject::Other)),
        };
        unit(r, oerr)
    }

    fn exec(&self, op: &Op) -> Out {
        let m = &self.map;
        match op {
            Op::Update(k, v, f) => self.update(k, v, *f),
            Op::Lookup(k, f) => self.lookup_via(false, k, *f),
            Op::LookupAndDelete(k, f) => bytes(
                match &self.reg {
                    Some((reg, fd)) => reg.map_lookup_and_delete_elem(*fd, k, *f),
                    None => m.lookup_and_delete_elem(k, *f),
                },
                oerr,
            ),
            Op::Delete(k) => unit(
                match &self.reg {
                    Some((reg, fd)) => reg.map_delete_elem(*fd, k),
                    None => m.delete_elem(k),
                },
                oerr,
            ),
            Op::GetNextKey(k) => self.get_next_key_via(false, k.as_deref()),
            Op::Dump => self.dump(false),
            Op::UpdateBatch(ks, vs, f) => {
                let keys: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
                // Map-of-maps values are "fds" that `resolve` turns into the inner maps.
                let owned: Vec<Vec<u8>> = vs
                    .iter()
                    .map(|v| match v {
                        Val::Bytes(b) => b.clone(),
                        Val::Inner(i) => inner_token(*i).to_ne_bytes().to_vec(),
                    })
                    .collect();
                let vals: Vec<&[u8]> = owned.iter().map(|v| v.as_slice()).collect();
                let (c, r) = match &self.reg {
                    Some((reg, fd)) => reg.map_update_batch(*fd, &keys, &vals, *f),
                    None => m.update_batch_with(&keys, &vals, *f, |t| self.resolve(t)),
                };
                Out::Batch(c as u32, r.err().map_or(0, oerr))
            }
            Op::Freeze => unit(
                match &self.reg {
                    Some((reg, fd)) => reg.map_freeze(*fd),
                    None => m.freeze(),
                },
                oerr,
            ),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Sequence generation.

struct Gen<'c> {
    c: &'c Cfg,
    rng: Rng,
    /// Keys of hash maps are drawn from `universe` distinct keys.
    universe: u32,
    user_value_len: usize,
}

impl Gen<'_> {
    /// Hash key number `i`: the first byte and the last byte differ between keys (so whole-key
    /// comparison matters), the middle is a fixed pattern.
    fn hash_key(&self, i: u32) -> Vec<u8> {
        let k = self.c.k as usize;
        let mut key: Vec<u8> = (0..k).map(|j| (j as u8).wrapping_mul(7) ^ 0x5a).collect();
        if k == 1 {
            key[0] = i as u8;
        } else {
            key[0] = (i / 2) as u8;
            key[k - 1] = 0xa0 | (i % 2) as u8;
        }
        if self.c.t == MapType::LpmTrie && k > 4 {
            // LPM keys: a prefix length that mostly fits the data bits (now and then one
            // past them: EINVAL), data whose first bits split the keys into four groups and
            // whose last bit splits them again, so prefixes overlap at several lengths.
            let bits = (k as u32 - 4) * 8;
            key[..4].copy_from_slice(&(i.wrapping_mul(13) % (bits + 2)).to_ne_bytes());
            key[4] ^= ((i % 4) as u8) << 6;
        }
        key
    }

    fn key(&mut self) -> Vec<u8> {
        let c = self.c;
        if c.keyless() {
            return Vec::new();
        }
        if c.arrayish() {
            let idx = if self.rng.chance(6) {
                self.rng.pick(&[u32::MAX, 0x8000_0000, c.n, c.n + 1, 0x100])
            } else {
                self.rng.below(c.n as u64 + 2) as u32
            };
            return idx.to_ne_bytes().to_vec();
        }
        let i = self.rng.below(self.universe as u64) as u32;
        self.hash_key(i)
    }

    fn val(&mut self) -> Val {
        if self.c.mim() {
            let r = self.rng.below(20);
            Val::Inner(match r {
                0 => Inner::ClosedFd,
                1 => Inner::NotAMap,
                _ => Inner::Map(self.rng.below(INNER_SPECS.len() as u64) as usize),
            })
        } else {
            Val::Bytes(self.rng.bytes(self.user_value_len))
        }
    }

    fn update_flags(&mut self) -> u64 {
        self.rng.pick(&[
            BPF_ANY,
            BPF_ANY,
            BPF_ANY,
            BPF_NOEXIST,
            BPF_NOEXIST,
            BPF_EXIST,
            BPF_EXIST,
            3,
            BPF_F_LOCK,
            BPF_F_LOCK | BPF_EXIST,
            8,
        ])
    }

    fn op(&mut self) -> Op {
        let r = self.rng.below(100);
        match r {
            0..=34 => {
                let (k, v, f) = (self.key(), self.val(), self.update_flags());
                Op::Update(k, v, f)
            }
            35..=49 => {
                let f = if self.rng.chance(12) {
                    self.rng.pick(&[BPF_F_LOCK, 1, 2, 8])
                } else {
                    0
                };
                Op::Lookup(self.key(), f)
            }
            50..=57 => {
                let f = if self.rng.chance(15) {
                    self.rng.pick(&[BPF_F_LOCK, 1, 2])
                } else {
                    0
                };
                Op::LookupAndDelete(self.key(), f)
            }
            58..=71 => Op::Delete(self.key()),
            72..=88 => {
                let k = (!self.rng.chance(25)).then(|| self.key());
                Op::GetNextKey(k)
            }
            89..=90 => Op::Dump,
            _ => {
                let n = match self.rng.below(20) {
                    0 => 0,
                    1 | 2 => self.universe.max(self.c.n + 2) as usize,
                    _ => 1 + self.rng.below(6) as usize,
                };
                let f = if self.rng.chance(10) {
                    self.rng.pick(&[BPF_F_LOCK, BPF_EXIST, BPF_NOEXIST])
                } else {
                    0
                };
                let mut keys = Vec::with_capacity(n);
                let mut vals = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(self.key());
                    vals.push(self.val());
                }
                Op::UpdateBatch(keys, vals, f)
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// LRU model (see the module comment).

struct LruModel {
    /// Live elements at which an update that takes a free node may evict.
    capacity: usize,
    percpu: bool,
    present: HashSet<Vec<u8>>,
    tainted: bool,
}

impl LruModel {
    fn new(c: &Cfg, cpus: u32) -> Option<LruModel> {
        if !c.t.is_lru() {
            return None;
        }
        let capacity = if c.flags & BPF_F_NO_COMMON_LRU != 0 {
            // Per-CPU lists: max_entries is rounded up to a multiple of the CPU count and
            // split evenly; a CPU evicts (PERCPU_FREE_TARGET at a time) only when its list
            // has no free node.
            c.n.div_ceil(cpus) as usize
        } else {
            // Common list: a CPU whose local free list is empty refills it with up to
            // `target_free = clamp(max_entries / cpus / 2, 1, LOCAL_FREE_TARGET)` nodes from
            // the global free list, and evicts (shrinks) for the shortfall. With one CPU
            // doing everything, the global free list holds every free node at a refill, so
            // nothing can be evicted while at least `target_free` nodes are free.
            let target_free = (c.n / cpus / 2).clamp(1, 128);
            (c.n - target_free + 1) as usize
        };
        Some(LruModel {
            capacity,
            percpu: c.t == MapType::LruPercpuHash,
            present: HashSet::new(),
            tainted: false,
        })
    }

    /// Whether an update with `flags` takes a node from the free list (`prealloc_lru_pop`).
    fn pops(&self, flags: u64) -> bool {
        flags <= BPF_EXIST && !(self.percpu && flags == BPF_EXIST)
    }

    /// Called before `op` runs: taints the model if the op may evict.
    fn before(&mut self, op: &Op, frozen: bool) {
        if self.tainted || frozen {
            return;
        }
        match op {
            Op::Update(_, _, f) if self.pops(*f) && self.present.len() >= self.capacity => {
                self.tainted = true;
            }
            Op::UpdateBatch(ks, _, 0) if !ks.is_empty() => {
                // Each element pops; simulate with the keys in order (an element fails only
                // after its pop, so this is exact up to the failing one).
                let mut present = self.present.clone();
                for k in ks {
                    if present.len() >= self.capacity {
                        self.tainted = true;
                        return;
                    }
                    present.insert(k.clone());
                }
            }
            _ => {}
        }
    }

    /// Called after `op` with the kernel's outcome, while untainted.
    fn after(&mut self, op: &Op, k: &Out) {
        if self.tainted {
            return;
        }
        match (op, k) {
            (Op::Update(key, _, _), Out::Unit) => {
                self.present.insert(key.clone());
            }
            (Op::Delete(key), Out::Unit) | (Op::LookupAndDelete(key, _), Out::Bytes(_)) => {
                self.present.remove(key);
            }
            (Op::UpdateBatch(ks, _, _), Out::Batch(c, _)) => {
                for key in ks.iter().take(*c as usize) {
                    self.present.insert(key.clone());
                }
            }
            _ => {}
        }
    }
}

/// Whether the kernel's answer to `op` cannot depend on the map's contents.
fn content_independent(op: &Op, frozen: bool) -> bool {
    if frozen && op.is_write() {
        return true;
    }
    match op {
        Op::Freeze => true,
        Op::Update(_, _, f) => f & BPF_F_LOCK != 0 || *f > BPF_EXIST,
        Op::Lookup(_, f) => *f != 0,
        Op::LookupAndDelete(_, f) => *f != 0,
        Op::UpdateBatch(ks, _, f) => *f != 0 || ks.is_empty(),
        _ => false,
    }
}

/// Whether differing outcomes of `op` mean the two maps now hold different contents.
fn changes_state_differently(op: &Op, o: &Out, k: &Out) -> bool {
    if !op.is_write() || matches!(op, Op::Freeze) {
        return false;
    }
    // Elements a batch applied: none when it failed before the element loop (EPERM,
    // ENOTSUPP, EINVAL for elem_flags), where the kernel leaves `count` as passed in.
    let applied = |out: &Out| match *out {
        Out::Batch(_, e) if e == libc::EPERM || e == 524 => 0,
        Out::Batch(_, libc::EINVAL) if matches!(op, Op::UpdateBatch(_, _, f) if *f != 0) => 0,
        Out::Batch(c, _) => c,
        _ => 0,
    };
    match (o, k) {
        (Out::Err(_), Out::Err(_)) => false,
        (Out::Batch(..), Out::Batch(..)) => applied(o) != applied(k),
        _ => true,
    }
}

// ------------------------------------------------------------------------------------------
// The matrix.

#[derive(Default)]
struct Stats {
    configs: usize,
    creates: usize,
    compared: usize,
    diverged: usize,
    lru_tainted: usize,
    mismatches: Vec<String>,
    mismatched_configs: BTreeMap<String, usize>,
    /// (map type, operation, kbpf outcome, kernel outcome) → count and the first example.
    kinds: BTreeMap<String, (usize, String)>,
}

impl Stats {
    fn mismatch(&mut self, cfg: &str, what: String) {
        *self.mismatched_configs.entry(cfg.to_string()).or_default() += 1;
        self.mismatches.push(format!("{cfg}: {what}"));
    }

    /// A mismatch outside the operation sequence (creation, value size, final contents),
    /// grouped under `kind`.
    fn other_mismatch(&mut self, c: &Cfg, cfg: &str, kind: &str, what: String) {
        let e = self
            .kinds
            .entry(format!("{} {kind}", c.t))
            .or_insert((0, format!("{cfg}: {what}")));
        e.0 += 1;
        self.mismatch(cfg, what);
    }

    /// A mismatch of operation `op` (its outcomes `o` on kbpf, `k` on the kernel).
    fn op_mismatch(&mut self, c: &Cfg, cfg: &str, i: usize, op: &Op, o: &Out, k: &Out) {
        let line = format!("op {i} {}: {}", op.describe(), show_pair(o, k));
        let kind = format!(
            "{} {}: kbpf {} / kernel {}",
            c.t,
            op.name(),
            outcome_kind(o),
            outcome_kind(k)
        );
        let e = self
            .kinds
            .entry(kind)
            .or_insert((0, format!("{cfg}: {line}")));
        e.0 += 1;
        self.mismatch(cfg, line);
    }
}

/// The shape of an outcome for grouping mismatches (errno, or "Ok"/"bytes"/…).
fn outcome_kind(o: &Out) -> String {
    match o {
        Out::Err(e) => errno_name(*e),
        Out::Unit => "Ok".into(),
        Out::Bytes(_) => "Ok(bytes)".into(),
        Out::Inner(_) => "Ok(inner)".into(),
        Out::Batch(_, 0) => "Ok(count)".into(),
        Out::Batch(_, e) => format!("{}(count)", errno_name(*e)),
        Out::Dump(..) => "dump".into(),
    }
}

/// Pins the calling thread to the first CPU it may run on (so the kernel's per-CPU LRU
/// lists behave deterministically); returns the previous mask to restore.
fn pin_to_one_cpu() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity read/write exactly one.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
            return None;
        }
        let cpu = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &old))?;
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return None;
        }
        Some(old)
    }
}

fn restore_affinity(old: &libc::cpu_set_t) {
    // SAFETY: as above.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old);
    }
}

#[test]
fn map_matrix_matches_the_kernel() {
    if !bpf_available_or_skip("maps matrix_kernel") {
        return;
    }
    let start = Instant::now();
    let cpus = kbpf_kernel::num_possible_cpus().expect("possible cpus") as u32;
    let seed = env_u64("KBPF_MATRIX_SEED").unwrap_or(0x6b62_7066_6d61_7478);
    let fixed_len = env_u64("KBPF_MATRIX_LEN");
    let old_mask = pin_to_one_cpu().expect("sched_setaffinity to one CPU");
    let inners = Inners::new();
    let mut st = Stats::default();
    let mut index = 0u64;
    for var in variants() {
        for k in SIZES {
            for v in SIZES {
                for n in ENTRIES {
                    index += 1;
                    let c = Cfg {
                        t: var.t,
                        flags: var.flags,
                        tmpl: var.tmpl,
                        k,
                        v,
                        n,
                    };
                    let len = fixed_len.unwrap_or(if var.t.is_map_in_map() {
                        32 + n as u64 / 2
                    } else {
                        160 + 3 * n as u64
                    }) as usize;
                    let cfg_seed = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    run_config(&c, cpus, &inners, cfg_seed, len, &mut st);
                }
            }
        }
    }
    restore_affinity(&old_mask);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "map matrix: {} configurations ({} creations compared), {} operations compared, {} mismatches, {secs:.1} s",
        st.configs,
        st.creates,
        st.compared,
        st.mismatches.len(),
    );
    println!(
        "  seed {seed:#x}, sequence length {}; {} LRU sequences reached possible eviction (compared only content-independent results from there), {} sequences diverged after a mismatch",
        fixed_len.map_or(
            "160 + 3 * max_entries (map-of-maps 32 + max_entries / 2)".to_string(),
            |l| l.to_string()
        ),
        st.lru_tainted,
        st.diverged
    );
    if !st.mismatches.is_empty() {
        let mut msg = format!(
            "{} mismatches in {} configurations (seed {seed:#x}):\n",
            st.mismatches.len(),
            st.mismatched_configs.len()
        );
        msg.push_str("by map type, operation and outcome (count, first example):\n");
        for (kind, (count, first)) in &st.kinds {
            msg.push_str(&format!("  [{count}] {kind}\n      e.g. {first}\n"));
        }
        msg.push_str("all mismatches:\n");
        const SHOW: usize = 400;
        for m in st.mismatches.iter().take(SHOW) {
            msg.push_str(m);
            msg.push('\n');
        }
        if st.mismatches.len() > SHOW {
            msg.push_str(&format!("… and {} more\n", st.mismatches.len() - SHOW));
        }
        panic!("{msg}");
    }
}

fn run_config(c: &Cfg, cpus: u32, inners: &Inners, seed: u64, len: usize, st: &mut Stats) {
    let name = c.name();
    if std::env::var("KBPF_MATRIX_ONLY").is_ok_and(|f| !name.contains(f.as_str())) {
        return;
    }
    // Creation on both sides, errno compared.
    let mut ka = MapCreateAttr::new(c.t.raw(), c.k, c.v, c.n)
        .flags(c.flags)
        .name("mx");
    if let Some(t) = c.tmpl {
        ka = ka.inner(inners.k_tmpl[t].as_fd());
    }
    let kr = KernelMap::create(&ka);
    let oa = MapAttr::new(c.t, c.k, c.v, c.n)
        .flags(c.flags)
        .name("mx")
        .nr_cpus(cpus);
    let reg = Registry::new();
    let or: Result<(Map, Option<(Registry, u32)>), i32> = if c.access() != 0 {
        let tmpl_fd = c.tmpl.map_or(0, |t| reg.add_map(&inners.o_tmpl[t]));
        match reg.map_create(&oa, tmpl_fd) {
            Ok(fd) => Ok((reg.map(fd).unwrap(), Some((reg, fd)))),
            Err(e) => Err(oerr(e)),
        }
    } else {
        Map::create(&oa, c.tmpl.map(|t| &inners.o_tmpl[t]))
            .map(|m| (m, None))
            .map_err(oerr)
    };
    st.creates += 1;
    st.compared += 1;
    let (km, (om, oreg)) = match (kr, or) {
        (Ok(km), Ok(o)) => (km, o),
        (Err(ke), Err(oe)) => {
            let ke = kerr(ke);
            if ke != oe {
                st.other_mismatch(
                    c,
                    &name,
                    "create",
                    format!(
                        "create: kbpf Err({}) vs kernel Err({})",
                        errno_name(oe),
                        errno_name(ke)
                    ),
                );
            }
            return;
        }
        (Ok(_), Err(oe)) => {
            st.other_mismatch(
                c,
                &name,
                "create",
                format!("create: kbpf Err({}) vs kernel Ok", errno_name(oe)),
            );
            return;
        }
        (Err(ke), Ok(_)) => {
            st.other_mismatch(
                c,
                &name,
                "create",
                format!("create: kbpf Ok vs kernel Err({})", errno_name(kerr(ke))),
            );
            return;
        }
    };
    st.configs += 1;
    let expect_len = if c.t.is_percpu() {
        c.v.div_ceil(8) as usize * 8 * cpus as usize
    } else if c.mim() {
        4
    } else {
        c.v as usize
    };
    if km.user_value_len() != expect_len || om.user_value_size() != expect_len {
        st.other_mismatch(
            c,
            &name,
            "user value size",
            format!(
                "user value size: kbpf {} kernel {} expected {expect_len}",
                om.user_value_size(),
                km.user_value_len()
            ),
        );
        return;
    }
    let max_walk = c.n as usize + 4;
    let kside = KSide {
        map: km,
        inners,
        mim: c.mim(),
        max_walk,
    };
    let oside = OSide {
        map: om,
        reg: oreg,
        inners,
        mim: c.mim(),
        max_walk,
    };
    let mut g = Gen {
        c,
        rng: Rng::new(seed),
        universe: if c.k == 1 { c.n.min(250) + 2 } else { c.n + 2 },
        user_value_len: if c.mim() { 4 } else { expect_len },
    };
    let mut lru = LruModel::new(c, cpus);
    // Freeze at a random point in a quarter of the sequences (and now and then again).
    let freeze_at = g
        .rng
        .chance(25)
        .then(|| len / 2 + g.rng.below(len as u64 / 2 + 1) as usize);
    let mut frozen = false;
    // After a mismatch that left the two maps with different contents, only results that
    // cannot depend on the contents are compared (the rest would repeat the first mismatch).
    let mut diverged = false;
    let trace = std::env::var("KBPF_MATRIX_TRACE").is_ok_and(|t| name.contains(t.as_str()));
    for i in 0..len {
        let mut op = g.op();
        if freeze_at == Some(i) || (frozen && g.rng.chance(4)) {
            op = Op::Freeze;
        }
        if let Some(l) = lru.as_mut() {
            l.before(&op, frozen);
        }
        let tainted = lru.as_ref().is_some_and(|l| l.tainted);
        let compare = !(tainted || diverged) || content_independent(&op, frozen);
        let o = oside.exec(&op);
        let k = if compare || !matches!(op, Op::Dump) {
            kside.exec(&op)
        } else {
            Out::Unit
        };
        if trace {
            eprintln!(
                "{name} op {i} {}: kbpf {} kernel {}{}",
                op.describe(),
                show(&o),
                show(&k),
                if compare { "" } else { " (not compared)" }
            );
        }
        if matches!(op, Op::Freeze) && k == Out::Unit {
            frozen = true;
        }
        if let Some(l) = lru.as_mut() {
            l.after(&op, &k);
        }
        if compare {
            st.compared += 1;
            if o != k {
                st.op_mismatch(c, &name, i, &op, &o, &k);
                if !diverged && changes_state_differently(&op, &o, &k) {
                    diverged = true;
                    st.diverged += 1;
                }
            }
        }
    }
    if lru.as_ref().is_some_and(|l| l.tainted) {
        st.lru_tainted += 1;
    }
    if diverged {
        // The mismatch that made the states differ is recorded; contents would only repeat it.
        return;
    }
    final_contents(
        c,
        &name,
        &kside,
        &oside,
        lru.as_ref().is_some_and(|l| l.tainted),
        frozen,
        st,
    );
}

/// Compares the whole map after the sequence, through read-write handles (the kernel map
/// reopened by id; kbpf's `Map` directly).
fn final_contents(
    c: &Cfg,
    name: &str,
    kside: &KSide<'_>,
    oside: &OSide<'_>,
    tainted: bool,
    frozen: bool,
    st: &mut Stats,
) {
    let krw = KernelMap::from_id(kside.map.id()).expect("reopen by id");
    if c.keyless() {
        // Queue/stack: peek, then pop everything (unless frozen: pops are writes).
        loop {
            let k = bytes(krw.lookup(&[]), kerr);
            let o = bytes(oside.map.lookup_elem(&[]), oerr);
            st.compared += 1;
            if o != k {
                st.other_mismatch(
                    c,
                    name,
                    "final peek",
                    format!("final peek: {}", show_pair(&o, &k)),
                );
                return;
            }
            if frozen || matches!(k, Out::Err(_)) {
                return;
            }
            let k = bytes(
                kraw::lookup_and_delete(krw.as_raw_fd(), &[], krw.user_value_len(), 0),
                |e| e,
            );
            let o = bytes(oside.map.lookup_and_delete_elem(&[], 0), oerr);
            st.compared += 1;
            if o != k {
                st.other_mismatch(
                    c,
                    name,
                    "final pop",
                    format!("final pop: {}", show_pair(&o, &k)),
                );
                return;
            }
            if matches!(k, Out::Err(_)) {
                return;
            }
        }
    }
    let o = oside.dump(true);
    if tainted {
        // LRU after a possible eviction: kbpf's own dump must still be consistent.
        if let Out::Dump(entries, end) = &o {
            let distinct: HashSet<&Vec<u8>> = entries.iter().map(|e| &e.0).collect();
            let ok = *end == libc::ENOENT
                && distinct.len() == entries.len()
                && entries.len() <= oside.map.max_entries() as usize
                && entries.iter().all(|e| matches!(e.1, Out::Bytes(_)));
            if !ok {
                st.other_mismatch(
                    c,
                    name,
                    "final kbpf dump (LRU)",
                    format!(
                        "final kbpf dump inconsistent (LRU, kernel not compared): {}",
                        show(&o)
                    ),
                );
            }
        }
        return;
    }
    let k = kside.dump(&krw);
    st.compared += 1;
    if o != k {
        st.other_mismatch(
            c,
            name,
            "final contents",
            format!("final contents: {}", show_pair(&o, &k)),
        );
    }
}

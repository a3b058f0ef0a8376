//! BPF_MAP_TYPE_LPM_TRIE against the live kernel.
//!
//! * Creation: key sizes × value sizes × max_entries × flags on both sides, errno compared.
//! * Seeded random sequences on IPv4 (4 data bytes), IPv6 (16), odd (3, 1) and 8-byte keys:
//!   updates with every flag (and bad ones) on overlapping prefixes drawn from a few related
//!   base addresses (so intermediate nodes appear and disappear), trailing bits after the
//!   prefix sometimes set, prefix lengths past `8 * data_size`, longest-prefix lookups of
//!   random addresses (kbpf's user lookup *and* its program-side `trie_lookup_elem` against
//!   the kernel's lookup, which is the same `trie_lookup_elem`), deletes, single
//!   `get_next_key` steps from NULL / present / absent / too-long keys, full walks with the
//!   value of every key (`bpftool map dump`'s order), and `memlock` from
//!   `/proc/self/fdinfo` after every operation. A third of kbpf's updates and deletes go
//!   through the program-side functions (`bpf_map_update_elem`/`bpf_map_delete_elem`
//!   dispatching to `trie_update_elem`/`trie_delete_elem`).
//! * bpftool's own `map dump` of a final kernel map against kbpf's walk.
//! * A kernel XDP program looking up packet-supplied keys: its `xlated` still calls
//!   `trie_lookup_elem` (nothing inlined), and its results equal kbpf's `trie_lookup_elem`.
//!
//! `KBPF_LPM_SEED` reseeds, `KBPF_LPM_LEN` sets the sequence length (default 1200).

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr, bpf_available_or_skip};
use kbpf_maps::uapi::*;
use kbpf_maps::{Map, MapAttr, MapType};

use common::Rng;

fn env_u64(name: &str) -> Option<u64> {
    let s = std::env::var(name).ok()?;
    let s = s.trim();
    Some(match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex"),
        None => s.parse().expect("number"),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Unit,
    Bytes(Vec<u8>),
    Err(i32),
    /// A full get_next_key walk: each key with its lookup, and the errno that ended it.
    Dump(Vec<(Vec<u8>, Box<Out>)>, i32),
}

fn kerr(e: kbpf_kernel::Error) -> i32 {
    e.errno().map_or(-1, |e| e.0)
}

fn oerr(e: kbpf_maps::MapError) -> i32 {
    e.errno.code()
}

fn unit<E>(r: Result<(), E>, f: impl Fn(E) -> i32) -> Out {
    r.map_or_else(|e| Out::Err(f(e)), |()| Out::Unit)
}

fn bytes<E>(r: Result<Vec<u8>, E>, f: impl Fn(E) -> i32) -> Out {
    r.map_or_else(|e| Out::Err(f(e)), Out::Bytes)
}

/// A program-side return code (0 or -errno) as an outcome.
fn rc(r: i64) -> Out {
    if r == 0 {
        Out::Unit
    } else {
        Out::Err(-r as i32)
    }
}

fn fdinfo_memlock(m: &KernelMap) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", m.as_raw_fd())).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("memlock line in fdinfo")
}

fn lpm_attr(k: u32, v: u32, n: u32, f: u32) -> (MapCreateAttr, MapAttr) {
    (
        MapCreateAttr::new(BPF_MAP_TYPE_LPM_TRIE, k, v, n)
            .flags(f)
            .name("lpm"),
        MapAttr::new(MapType::LpmTrie, k, v, n).flags(f).name("lpm"),
    )
}

#[test]
fn creation_matches_the_kernel() {
    if !bpf_available_or_skip("maps lpm_trie_kernel creation") {
        return;
    }
    let np = BPF_F_NO_PREALLOC;
    let keys = [0, 1, 4, 5, 6, 8, 20, 259, 260, 261, 4096, u32::MAX];
    let values = [
        0,
        1,
        7,
        4096,
        LPM_VAL_SIZE_MAX - 1,
        LPM_VAL_SIZE_MAX,
        LPM_VAL_SIZE_MAX + 1,
        KMALLOC_MAX_SIZE as u32,
        u32::MAX,
    ];
    let flags = [
        0,
        np,
        BPF_F_NUMA_NODE,
        np | BPF_F_NUMA_NODE,
        np | BPF_F_RDONLY,
        np | BPF_F_WRONLY,
        np | BPF_F_RDONLY | BPF_F_WRONLY,
        np | BPF_F_RDONLY_PROG,
        np | BPF_F_WRONLY_PROG,
        np | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG,
        np | BPF_F_NO_COMMON_LRU,
        np | BPF_F_ZERO_SEED,
        np | BPF_F_MMAPABLE,
        np | BPF_F_INNER_MAP,
        np | BPF_F_PRESERVE_ELEMS,
        np | BPF_F_CLONE,
        BPF_F_RDONLY_PROG,
    ];
    let (mut n_cmp, mut n_ok, mut bad) = (0, 0, Vec::new());
    for &k in &keys {
        for &v in &values {
            for &n in &[0, 1, u32::MAX] {
                for &f in &flags {
                    let (ka, oa) = lpm_attr(k, v, n, f);
                    let kr = KernelMap::create(&ka);
                    let or = Map::create(&oa, None);
                    n_cmp += 1;
                    match (&kr, &or) {
                        (Ok(km), Ok(om)) => {
                            n_ok += 1;
                            let ki = km.info().unwrap();
                            if ki.map_flags != om.map_flags() || om.memlock() != fdinfo_memlock(km)
                            {
                                bad.push(format!("k{k} v{v} n{n} f{f:#x}: info differs"));
                            }
                        }
                        (Err(ke), Err(oe)) if ke.errno().map(|e| e.0) == Some(oe.errno.code()) => {}
                        _ => bad.push(format!(
                            "k{k} v{v} n{n} f{f:#x}: kbpf {:?} kernel {:?}",
                            or.as_ref().map(|_| ()).map_err(|e| e.errno),
                            kr.as_ref().map(|_| ()).map_err(|e| e.errno())
                        )),
                    }
                }
            }
        }
    }
    println!("lpm_trie creation: {n_cmp} attribute sets compared, {n_ok} valid on both sides");
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Key generation: overlapping prefixes of a few related base addresses.
struct Gen {
    rng: Rng,
    ds: usize,
    vs: usize,
    bases: Vec<Vec<u8>>,
    /// Keys updated so far (deletes and get_next_key often reuse them).
    written: Vec<Vec<u8>>,
}

impl Gen {
    fn new(seed: u64, ds: usize, vs: usize) -> Gen {
        let mut rng = Rng::new(seed);
        let root = rng.bytes(ds);
        // Relatives of one address: each flips one bit, so they share prefixes of every
        // length with it and with each other.
        let mut bases = vec![root.clone()];
        for _ in 0..5 {
            let mut b = root.clone();
            let bit = rng.below(ds as u64 * 8) as usize;
            b[bit / 8] ^= 0x80 >> (bit % 8);
            bases.push(b);
        }
        bases.push(rng.bytes(ds));
        Gen {
            rng,
            ds,
            vs,
            bases,
            written: Vec::new(),
        }
    }

    fn max(&self) -> u32 {
        self.ds as u32 * 8
    }

    /// An address near the bases: a base whose bits from a random position on are random.
    fn addr(&mut self) -> Vec<u8> {
        let mut a = self.bases[self.rng.below(self.bases.len() as u64) as usize].clone();
        let from = self.rng.below(self.max() as u64 + 1) as usize;
        let noise = self.rng.bytes(self.ds);
        for bit in from..self.ds * 8 {
            let m = 0x80u8 >> (bit % 8);
            a[bit / 8] = (a[bit / 8] & !m) | (noise[bit / 8] & m);
        }
        a
    }

    fn prefixlen(&mut self) -> u32 {
        let max = self.max();
        match self.rng.below(40) {
            0 => max + 1 + self.rng.below(3) as u32,
            1 => u32::MAX,
            2 | 3 => 0,
            4..=7 => max,
            _ => self.rng.below(max as u64 + 1) as u32,
        }
    }

    fn key_with(&mut self, pl: u32) -> Vec<u8> {
        let mut a = self.addr();
        if self.rng.chance(60) {
            // Usual keys: the bits after the prefix are zero.
            for bit in pl.min(self.max()) as usize..self.ds * 8 {
                a[bit / 8] &= !(0x80u8 >> (bit % 8));
            }
        }
        let mut k = pl.to_ne_bytes().to_vec();
        k.extend_from_slice(&a);
        k
    }

    fn key(&mut self) -> Vec<u8> {
        let pl = self.prefixlen();
        self.key_with(pl)
    }

    /// A written key, sometimes with other bits after its prefix (still the same element).
    fn old_key(&mut self) -> Vec<u8> {
        if self.written.is_empty() {
            return self.key();
        }
        let mut k = self.written[self.rng.below(self.written.len() as u64) as usize].clone();
        let pl = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
        if self.rng.chance(30) && pl < self.max() {
            let bit = pl + self.rng.below((self.max() - pl) as u64) as u32;
            k[4 + bit as usize / 8] ^= 0x80 >> (bit % 8);
        }
        k
    }

    fn value(&mut self) -> Vec<u8> {
        self.rng.bytes(self.vs)
    }
}

#[derive(Debug)]
enum Op {
    Update(Vec<u8>, Vec<u8>, u64, bool),
    Lookup(Vec<u8>),
    Delete(Vec<u8>, bool),
    GetNextKey(Option<Vec<u8>>),
    Dump,
}

fn gen_op(g: &mut Gen) -> Op {
    let prog = g.rng.chance(33);
    match g.rng.below(100) {
        0..=37 => {
            let flags = match g.rng.below(20) {
                0..=7 => BPF_ANY,
                8..=12 => BPF_NOEXIST,
                13..=17 => BPF_EXIST,
                _ => [3, BPF_F_LOCK, 8, BPF_F_LOCK | BPF_EXIST][g.rng.below(4) as usize],
            };
            let k = if g.rng.chance(30) {
                g.old_key()
            } else {
                g.key()
            };
            if flags <= BPF_EXIST {
                g.written.push(k.clone());
            }
            // Programs cannot pass BPF_F_LOCK to an LPM trie either: same EINVAL.
            Op::Update(k, g.value(), flags, prog)
        }
        38..=61 => {
            let pl = if g.rng.chance(70) {
                g.max()
            } else {
                g.prefixlen()
            };
            Op::Lookup(g.key_with(pl))
        }
        62..=76 => {
            let k = if g.rng.chance(55) {
                g.old_key()
            } else {
                g.key()
            };
            Op::Delete(k, prog)
        }
        77..=95 => Op::GetNextKey(match g.rng.below(10) {
            0 => None,
            1..=5 => Some(g.old_key()),
            _ => Some(g.key()),
        }),
        _ => Op::Dump,
    }
}

struct Sides {
    km: KernelMap,
    om: Map,
    vs: usize,
    walk_limit: usize,
}

impl Sides {
    /// A user-space walk (get_next_key from NULL, then from each key returned) with each key's
    /// lookup; stops at `walk_limit` keys (-1) so a walk that never ends fails the comparison.
    fn dump(
        &self,
        next_key: impl Fn(Option<&[u8]>) -> Result<Vec<u8>, i32>,
        lookup: impl Fn(&[u8]) -> Out,
    ) -> Out {
        let mut out: Vec<(Vec<u8>, Box<Out>)> = Vec::new();
        loop {
            if out.len() > self.walk_limit {
                return Out::Dump(out, -1);
            }
            match next_key(out.last().map(|e| e.0.as_slice())) {
                Ok(k) => {
                    let v = lookup(&k);
                    out.push((k, Box::new(v)));
                }
                Err(e) => return Out::Dump(out, e),
            }
        }
    }

    fn kernel(&self, op: &Op) -> Out {
        let m = &self.km;
        match op {
            Op::Update(k, v, f, _) => unit(m.update(k, v, *f), kerr),
            Op::Lookup(k) => bytes(m.lookup(k), kerr),
            Op::Delete(k, _) => unit(m.delete(k), kerr),
            Op::GetNextKey(k) => bytes(m.get_next_key(k.as_deref()), kerr),
            Op::Dump => self.dump(
                |prev| m.get_next_key(prev).map_err(kerr),
                |k| bytes(m.lookup(k), kerr),
            ),
        }
    }

    /// kbpf's program-side lookup (`trie_lookup_elem` through the ops table), as bytes.
    fn prog_lookup(&self, k: &[u8]) -> Out {
        let _run = kbpf_maps::pin();
        // SAFETY: a live LPM trie; k has key_size bytes; the value is copied while pinned.
        unsafe {
            let v = kbpf_maps::raw::bpf_map_lookup_elem(self.om.as_ptr(), k.as_ptr().cast());
            if v.is_null() {
                Out::Err(libc::ENOENT)
            } else {
                Out::Bytes(std::slice::from_raw_parts(v as *const u8, self.vs).to_vec())
            }
        }
    }

    fn kbpf(&self, op: &Op) -> Out {
        let m = &self.om;
        let p = m.as_ptr();
        match op {
            // SAFETY (both program-side calls): live trie, key/value of the map's sizes.
            Op::Update(k, v, f, true) => rc(unsafe {
                kbpf_maps::raw::bpf_map_update_elem(p, k.as_ptr().cast(), v.as_ptr().cast(), *f)
            }),
            Op::Update(k, v, f, false) => unit(m.update_elem(k, v, *f), oerr),
            Op::Lookup(k) => bytes(m.lookup_elem(k), oerr),
            Op::Delete(k, true) => {
                rc(unsafe { kbpf_maps::raw::bpf_map_delete_elem(p, k.as_ptr().cast()) })
            }
            Op::Delete(k, false) => unit(m.delete_elem(k), oerr),
            Op::GetNextKey(k) => bytes(m.get_next_key(k.as_deref()), oerr),
            Op::Dump => self.dump(
                |prev| m.get_next_key(prev).map_err(oerr),
                |k| bytes(m.lookup_elem(k), oerr),
            ),
        }
    }
}

/// `bpftool map dump id N` (plain output): the keys and values in its order.
fn bpftool_dump(id: u32) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let out = Command::new("bpftool")
        .args(["map", "dump", "id", &id.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut in_value = false;
    for tok in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        match tok {
            "key:" => {
                entries.push((Vec::new(), Vec::new()));
                in_value = false;
            }
            "value:" => in_value = true,
            "Found" => break,
            t if t.len() == 2 && !entries.is_empty() => {
                if let Ok(b) = u8::from_str_radix(t, 16) {
                    let e = entries.last_mut().unwrap();
                    if in_value { &mut e.1 } else { &mut e.0 }.push(b);
                }
            }
            _ => in_value = false,
        }
    }
    Some(entries)
}

#[test]
fn sequences_match_the_kernel() {
    if !bpf_available_or_skip("maps lpm_trie_kernel sequences") {
        return;
    }
    let seed = env_u64("KBPF_LPM_SEED").unwrap_or(0x6c70_6d5f_7472_6965);
    let len = env_u64("KBPF_LPM_LEN").unwrap_or(1200) as usize;
    // (data size, value size, max_entries, sequences)
    let configs: [(usize, u32, u32, u64); 9] = [
        (4, 8, 12, 10),
        (4, 4, 200, 6),
        (4, 8, 1000, 2),
        (16, 8, 48, 8),
        (16, 16, 500, 2),
        (3, 5, 20, 8),
        (1, 3, 16, 4),
        (8, 16, 64, 4),
        (256, 1, 32, 2),
    ];
    let (mut ops, mut compared, mut bpftool_checked) = (0usize, 0usize, 0usize);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut mismatches: Vec<String> = Vec::new();
    for (ci, &(ds, vs, n, runs)) in configs.iter().enumerate() {
        for run in 0..runs {
            let s = seed ^ ((ci as u64) << 32 | run).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let (ka, oa) = lpm_attr(4 + ds as u32, vs, n, BPF_F_NO_PREALLOC);
            let sides = Sides {
                km: KernelMap::create(&ka).expect("kernel lpm_trie"),
                om: Map::create(&oa, None).expect("kbpf lpm_trie"),
                vs: vs as usize,
                walk_limit: n as usize + 4,
            };
            let name = format!("data {ds} value {vs} max_entries {n} seed {s:#x}");
            let mut g = Gen::new(s, ds, vs as usize);
            for i in 0..len {
                let op = gen_op(&mut g);
                let o = sides.kbpf(&op);
                let k = sides.kernel(&op);
                ops += 1;
                compared += 1;
                let kind = format!(
                    "{} -> {}",
                    format!("{op:?}").split('(').next().unwrap_or(""),
                    match &k {
                        Out::Err(e) => kbpf_kernel::Errno(*e).name().into_owned(),
                        Out::Dump(v, _) if v.is_empty() => "empty walk".into(),
                        Out::Dump(..) => "walk".into(),
                        _ => "ok".into(),
                    }
                );
                *outcomes.entry(kind).or_default() += 1;
                if o != k {
                    mismatches.push(format!("{name}: op {i} {op:?}: kbpf {o:?} kernel {k:?}"));
                }
                if let Op::Lookup(key) = &op {
                    compared += 1;
                    let p = sides.prog_lookup(key);
                    if p != k {
                        mismatches.push(format!(
                            "{name}: op {i} program lookup {key:?}: kbpf {p:?} kernel {k:?}"
                        ));
                    }
                }
                let (om, km) = (sides.om.memlock(), fdinfo_memlock(&sides.km));
                compared += 1;
                if om != km {
                    mismatches.push(format!("{name}: op {i} memlock kbpf {om} kernel {km}"));
                }
                if mismatches.len() > 50 {
                    panic!("mismatches:\n{}", mismatches.join("\n"));
                }
            }
            // The final contents, once more as bpftool prints them.
            let Out::Dump(walk, _) = sides.kbpf(&Op::Dump) else {
                unreachable!()
            };
            if run == 0
                && let Some(dump) = bpftool_dump(sides.km.id())
            {
                bpftool_checked += 1;
                let ours: Vec<(Vec<u8>, Vec<u8>)> = walk
                    .iter()
                    .map(|(k, v)| match &**v {
                        Out::Bytes(b) => (k.clone(), b.clone()),
                        _ => (k.clone(), Vec::new()),
                    })
                    .collect();
                if ours != dump {
                    mismatches.push(format!("{name}: bpftool map dump {dump:?} kbpf {ours:?}"));
                }
            }
        }
    }
    println!(
        "lpm_trie sequences: {ops} operations, {compared} results compared (incl. program-side lookups and memlock), {} mismatches; bpftool dumps compared: {bpftool_checked}",
        mismatches.len()
    );
    for (kind, count) in &outcomes {
        println!("  {count:6}  {kind}");
    }
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// The kernel's program-side lookup: an XDP program looks up the packet's first 8 bytes as
/// an IPv4 LPM key and returns the value's first word (or 0xffffffff for no match).
#[test]
fn kernel_program_lookup_is_trie_lookup_elem() {
    if !bpf_available_or_skip("maps lpm_trie_kernel program lookup") {
        return;
    }
    let (ka, oa) = lpm_attr(8, 4, 64, BPF_F_NO_PREALLOC);
    let km = KernelMap::create(&ka).unwrap();
    let om = Map::create(&oa, None).unwrap();
    let mut g = Gen::new(0x5eed, 4, 4);
    for i in 0..40u32 {
        let pl = g.rng.below(33) as u32;
        let k = g.key_with(pl);
        let v = (i * 0x0101_0101).to_ne_bytes();
        let kr = km.update(&k, &v, BPF_ANY).map_err(kerr);
        assert_eq!(om.update_elem(&k, &v, BPF_ANY).map_err(oerr), kr);
    }
    let fd = km.as_raw_fd();
    let insns = [
        Insn::new(BPF_LDX | BPF_W | BPF_MEM, 2, 1, 0, 0),
        Insn::new(BPF_LDX | BPF_W | BPF_MEM, 3, 1, 4, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 8),
        Insn::new(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 6, 0),
        Insn::new(BPF_LD | BPF_DW | BPF_IMM, 1, 1, 0, fd),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1),
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0),
        Insn::new(BPF_LDX | BPF_W | BPF_MEM, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        Insn::new(BPF_ALU | BPF_MOV | BPF_K, 0, 0, 0, -1),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    let (prog, _) = KernelProg::load(kbpf_kernel::consts::BPF_PROG_TYPE_XDP, &insns, "GPL", 1)
        .expect("load the XDP lookup program");
    // Nothing is inlined: the call stays a call (of trie_lookup_elem, as bpftool names it).
    let xlated = prog.xlated().unwrap();
    assert_eq!(xlated.len(), insns.len());
    assert_eq!(xlated[7].code, BPF_JMP | BPF_CALL);
    if let Ok(out) = Command::new("bpftool")
        .args(["prog", "dump", "xlated", "id", &prog.id().to_string()])
        .output()
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("call trie_lookup_elem"), "{text}");
    }
    let mut packet = vec![0u8; 64];
    for _ in 0..400 {
        let pl = if g.rng.chance(70) {
            32
        } else {
            g.rng.below(36) as u32
        };
        let k = g.key_with(pl);
        packet[..8].copy_from_slice(&k);
        let kernel = prog
            .test_run(&packet, packet.len(), None, 1)
            .unwrap()
            .retval;
        let _run = kbpf_maps::pin();
        // SAFETY: a live LPM trie with 8-byte keys and 4-byte values; pinned.
        let ours = unsafe {
            let v = kbpf_maps::lpm_trie::trie_lookup_elem(om.as_ptr(), k.as_ptr().cast());
            if v.is_null() {
                u32::MAX
            } else {
                (v as *const u32).read_unaligned()
            }
        };
        assert_eq!(ours, kernel, "key {k:02x?}");
    }
}

/// An LPM trie as an inner map (the kernel's `bpf_map_meta_equal`: type, sizes and flags
/// must match, `max_entries` need not).
#[test]
fn inner_map_template() {
    if !bpf_available_or_skip("maps lpm_trie_kernel inner map") {
        return;
    }
    let np = BPF_F_NO_PREALLOC;
    let (kt, ot) = lpm_attr(8, 4, 16, np);
    let (k_tmpl, o_tmpl) = (
        KernelMap::create(&kt).unwrap(),
        Map::create(&ot, None).unwrap(),
    );
    for outer_type in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let k_outer = KernelMap::create(
            &MapCreateAttr::new(outer_type.raw(), 4, 4, 4)
                .name("outer")
                .inner(std::os::fd::AsFd::as_fd(&k_tmpl)),
        )
        .unwrap();
        let o_outer = Map::create(
            &MapAttr::new(outer_type, 4, 4, 4).name("outer"),
            Some(&o_tmpl),
        )
        .unwrap();
        for (i, (k, v, n, f)) in [
            (8, 4, 16, np),
            (8, 4, 1000, np),
            (8, 8, 16, np),
            (20, 4, 16, np),
            (8, 4, 16, np | BPF_F_RDONLY_PROG),
        ]
        .into_iter()
        .enumerate()
        {
            let (ka, oa) = lpm_attr(k, v, n, f);
            let (ki, oi) = (
                KernelMap::create(&ka).unwrap(),
                Map::create(&oa, None).unwrap(),
            );
            let key = (i as u32 % 4).to_ne_bytes();
            let kr = k_outer
                .update_fd(&key, std::os::fd::AsFd::as_fd(&ki), BPF_ANY)
                .map_err(kerr);
            let or = o_outer.update_inner_map(&key, &oi, BPF_ANY).map_err(oerr);
            assert_eq!(or, kr, "{outer_type} inner k{k} v{v} n{n} f{f:#x}");
            // Only the first two (max_entries may differ) fit.
            assert_eq!(
                kr.is_ok(),
                i < 2,
                "{outer_type} inner k{k} v{v} n{n} f{f:#x}"
            );
        }
    }
}

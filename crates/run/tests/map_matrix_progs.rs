//! The program side of the map matrix (`crates/maps/tests/matrix_kernel.rs` covers user
//! space): small XDP programs written as raw instructions look up a key taken from the
//! packet and write a byte pattern into the value (reading the old value's first byte and
//! last four bytes into the packet first), or update / delete through
//! `bpf_map_update_elem` / `bpf_map_delete_elem` with flags from the packet (the helper's
//! return value goes into the packet). The same packets run through the kernel's
//! `BPF_PROG_TEST_RUN` and kbpf's test run on the interpreter and on the JIT (each engine on
//! its own copy of the map), alternating CPUs for the per-CPU maps (the thread is pinned to
//! the CPU, kbpf is told the same CPU number); return values and packets out are compared
//! after every packet, and the maps' user-space contents — every CPU's slot of per-CPU
//! values — at the end.
//!
//! Matrix: ARRAY, PERCPU_ARRAY (key 4, max_entries 1, 3 and 16), HASH, PERCPU_HASH (keys 1,
//! 3, 4, 8, 12, 16; max_entries 4, which fills, and 16), LRU_HASH (the same keys; max_entries
//! 16 with 6 keys: its eviction point is never reached, and it runs on one CPU only, so the
//! kernel's LRU lists behave deterministically) × value sizes 8, 12, 16, 64, 256. Per-CPU
//! hash values keep zero padding there (see `percpu_hash_program_writes_and_the_padding`
//! for the padding itself).
//! `KBPF_MATRIX_SEED` reseeds the packets, `KBPF_MATRIX_PACKETS` sets their number per
//! configuration (default 160).

use std::os::fd::AsRawFd;
use std::time::Instant;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr, bpf_available_or_skip};
use kbpf_maps::uapi::{BPF_ANY, BPF_F_ZERO_SEED};
use kbpf_maps::{Map, MapAttr, MapType};
use kbpf_run::{Engine, Program, TestRunInput};

const BPF_PROG_TYPE_XDP: u32 = 6;
const PKT_LEN: usize = 64;
/// Packet offsets: key bytes, pattern seed (u64), update flags, update/delete selector, and
/// the output area the programs write.
const OFF_SEED: i16 = 16;
const OFF_FLAGS: i16 = 24;
const OFF_SELECT: i16 = 25;
const OFF_OUT: i16 = 32;
/// The key's stack slot (keys are at most 16 bytes).
const KEY_SLOT: i16 = -16;
/// The fd number kbpf's copy of the program uses for its map.
const KBPF_FD: i32 = 100;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ------------------------------------------------------------------------------------------
// A tiny assembler with forward labels.

#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    /// (instruction index, label) of jumps to patch.
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;
const R10: u8 = 10;

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn i(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn::new(code, dst, src, off, imm));
    }
    fn mov(&mut self, d: u8, s: u8) {
        self.i(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0);
    }
    fn movi(&mut self, d: u8, imm: i32) {
        self.i(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, imm);
    }
    fn addi(&mut self, d: u8, imm: i32) {
        self.i(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, imm);
    }
    fn andi(&mut self, d: u8, imm: i32) {
        self.i(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, imm);
    }
    fn ldx(&mut self, size: u8, d: u8, s: u8, off: i16) {
        self.i(BPF_LDX | size | BPF_MEM, d, s, off, 0);
    }
    fn stx(&mut self, size: u8, d: u8, s: u8, off: i16) {
        self.i(BPF_STX | size | BPF_MEM, d, s, off, 0);
    }
    fn ld_map(&mut self, d: u8, fd: i32) {
        self.i(BPF_LD | BPF_IMM | BPF_DW, d, BPF_PSEUDO_MAP_FD, 0, fd);
        self.i(0, 0, 0, 0, 0);
    }
    fn call(&mut self, helper: i32) {
        self.i(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
    }
    fn jmp_to(&mut self, code: u8, d: u8, s: u8, imm: i32, l: usize) {
        self.fixups.push((self.insns.len(), l));
        self.i(code, d, s, 0, imm);
    }
    fn exit_with(&mut self, r0: i32) {
        self.movi(R0, r0);
        self.i(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, l) in self.fixups {
            let target = self.labels[l].expect("bound label");
            self.insns[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        self.insns
    }
}

fn size_code(n: usize) -> u8 {
    match n {
        8 => BPF_DW,
        4 => BPF_W,
        2 => BPF_H,
        _ => BPF_B,
    }
}

/// Stores the pattern derived from the seed in r9 into `len` bytes at `base + off`: 8-byte
/// words `seed + salt + 0x0101 * w`, then a 4-, 2- and 1-byte tail of the seed.
fn store_pattern(a: &mut Asm, base: u8, off: i16, len: usize, salt: i32) {
    let mut at = 0usize;
    let mut w = 0;
    while at + 8 <= len {
        a.mov(R1, R9);
        a.addi(R1, salt + 0x0101 * w);
        a.stx(BPF_DW, base, R1, off + at as i16);
        at += 8;
        w += 1;
    }
    for n in [4usize, 2, 1] {
        if at + n <= len {
            a.stx(size_code(n), base, R9, off + at as i16);
            at += n;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// Look the key up; on a hit, copy the value's first byte and last four bytes into the
    /// packet, then write the pattern into the value (XDP_PASS); XDP_DROP on a miss.
    LookupWrite,
    /// `bpf_map_update_elem(map, key, pattern, flags)` or `bpf_map_delete_elem(map, key)`;
    /// the helper's return value goes into the packet.
    UpdateDelete,
}

/// The program for a map with `key_size`/`value_size`, referring to the map as `fd`. The
/// update's value buffer on the stack is followed by `pad` up to the next 8 bytes (a
/// per-CPU hash copies `round_up(value_size, 8)` bytes from it: `copy_map_value_long`).
fn program(variant: Variant, fd: i32, key_size: usize, value_size: usize, pad: u8) -> Vec<Insn> {
    let mut a = Asm::default();
    let abort = a.label();
    a.mov(R6, R1);
    a.ldx(BPF_W, R7, R6, 0); // data
    a.ldx(BPF_W, R3, R6, 4); // data_end
    a.mov(R1, R7);
    a.addi(R1, PKT_LEN as i32);
    a.jmp_to(BPF_JMP | BPF_JGT | BPF_X, R1, R3, 0, abort);
    for j in 0..key_size as i16 {
        a.ldx(BPF_B, R0, R7, j);
        a.stx(BPF_B, R10, R0, KEY_SLOT + j);
    }
    a.ldx(BPF_DW, R9, R7, OFF_SEED);
    match variant {
        Variant::LookupWrite => {
            let miss = a.label();
            a.ld_map(R1, fd);
            a.mov(R2, R10);
            a.addi(R2, KEY_SLOT as i32);
            a.call(1); // bpf_map_lookup_elem
            a.jmp_to(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 0, miss);
            a.mov(R8, R0);
            a.ldx(BPF_B, R1, R8, 0);
            a.stx(BPF_B, R7, R1, OFF_OUT);
            a.ldx(BPF_W, R1, R8, value_size as i16 - 4);
            a.stx(BPF_W, R7, R1, OFF_OUT + 4);
            store_pattern(&mut a, R8, 0, value_size, 1);
            a.exit_with(2); // XDP_PASS
            a.bind(miss);
            a.exit_with(1); // XDP_DROP
        }
        Variant::UpdateDelete => {
            let value_slot = KEY_SLOT - value_size.next_multiple_of(8) as i16;
            let delete = a.label();
            let store = a.label();
            store_pattern(&mut a, R10, value_slot, value_size, 7);
            for at in value_size..value_size.next_multiple_of(8) {
                a.i(
                    BPF_ST | BPF_B | BPF_MEM,
                    R10,
                    0,
                    value_slot + at as i16,
                    pad as i32,
                );
            }
            a.ldx(BPF_B, R1, R7, OFF_SELECT);
            a.andi(R1, 3);
            a.jmp_to(BPF_JMP | BPF_JEQ | BPF_K, R1, 0, 3, delete);
            a.ldx(BPF_B, R4, R7, OFF_FLAGS);
            a.andi(R4, 3);
            a.ld_map(R1, fd);
            a.mov(R2, R10);
            a.addi(R2, KEY_SLOT as i32);
            a.mov(R3, R10);
            a.addi(R3, value_slot as i32);
            a.call(2); // bpf_map_update_elem
            a.jmp_to(BPF_JMP | BPF_JA, 0, 0, 0, store);
            a.bind(delete);
            a.ld_map(R1, fd);
            a.mov(R2, R10);
            a.addi(R2, KEY_SLOT as i32);
            a.call(3); // bpf_map_delete_elem
            a.bind(store);
            a.stx(BPF_DW, R7, R0, OFF_OUT);
            a.exit_with(2);
        }
    }
    a.bind(abort);
    a.exit_with(0);
    a.finish()
}

// ------------------------------------------------------------------------------------------
// CPUs.

/// The CPUs this thread may run on (at most two are used).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes exactly one.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Moves the calling thread onto `cpu` (kernel test runs execute on the caller's CPU) and
/// tells kbpf the same CPU number.
fn run_on(cpu: usize) {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity to CPU {cpu}"
        );
    }
    kbpf_maps::set_current_cpu(cpu as u32);
}

fn restore_cpus(cpus: &[usize]) {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    kbpf_maps::set_current_cpu(0);
}

// ------------------------------------------------------------------------------------------
// The matrix.

#[derive(Clone, Copy)]
struct Cfg {
    t: MapType,
    k: u32,
    v: u32,
    n: u32,
}

impl Cfg {
    fn name(&self) -> String {
        format!("{} k{} v{} n{}", self.t, self.k, self.v, self.n)
    }
    fn flags(&self) -> u32 {
        if self.t.is_hash_family() {
            BPF_F_ZERO_SEED
        } else {
            0
        }
    }
    /// Distinct keys the packets use (arrays: two past the end as well).
    fn universe(&self) -> u32 {
        if self.t.is_array_family() {
            self.n + 2
        } else {
            6
        }
    }
    fn key(&self, i: u32) -> Vec<u8> {
        if self.t.is_array_family() {
            return i.to_ne_bytes().to_vec();
        }
        let k = self.k as usize;
        let mut key: Vec<u8> = (0..k).map(|j| (j as u8).wrapping_mul(29) ^ 0x3c).collect();
        key[0] = i as u8;
        key[k - 1] ^= 0x80 | i as u8;
        key
    }
}

fn configs() -> Vec<Cfg> {
    let mut v = Vec::new();
    for value in [8u32, 12, 16, 64, 256] {
        for t in [MapType::Array, MapType::PercpuArray] {
            for n in [1, 3, 16] {
                v.push(Cfg {
                    t,
                    k: 4,
                    v: value,
                    n,
                });
            }
        }
        for t in [MapType::Hash, MapType::PercpuHash, MapType::LruHash] {
            for k in [1u32, 3, 4, 8, 12, 16] {
                let ns: &[u32] = if t == MapType::LruHash {
                    &[16]
                } else {
                    &[4, 16]
                };
                for &n in ns {
                    v.push(Cfg { t, k, v: value, n });
                }
            }
        }
    }
    v
}

/// One side's map contents as user space sees them: (key, value) in get_next_key order
/// (arrays: every index).
type Dump = Vec<(Vec<u8>, Result<Vec<u8>, i32>)>;

fn kernel_dump(c: &Cfg, m: &KernelMap) -> Dump {
    let keys: Vec<Vec<u8>> = if c.t.is_array_family() {
        (0..c.n).map(|i| i.to_ne_bytes().to_vec()).collect()
    } else {
        m.keys().expect("kernel keys")
    };
    keys.into_iter()
        .map(|k| {
            let v = m.lookup(&k).map_err(|e| e.errno().map_or(-1, |e| e.0));
            (k, v)
        })
        .collect()
}

fn kbpf_dump(c: &Cfg, m: &Map) -> Dump {
    let keys: Vec<Vec<u8>> = if c.t.is_array_family() {
        (0..c.n).map(|i| i.to_ne_bytes().to_vec()).collect()
    } else {
        m.keys()
    };
    keys.into_iter()
        .map(|k| {
            let v = m.lookup_elem(&k).map_err(|e| e.errno.code());
            (k, v)
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn dump_diff(a: &Dump, b: &Dump) -> String {
    if a.len() != b.len() {
        let keys = |d: &Dump| d.iter().map(|e| hex(&e.0)).collect::<Vec<_>>().join(" ");
        return format!(
            "kbpf {} entries [{}] vs kernel {} entries [{}]",
            a.len(),
            keys(a),
            b.len(),
            keys(b)
        );
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            let show = |r: &Result<Vec<u8>, i32>| match r {
                Ok(v) => hex(v),
                Err(e) => format!("errno {e}"),
            };
            let first = match (&x.1, &y.1) {
                (Ok(p), Ok(q)) => p.iter().zip(q).position(|(s, t)| s != t),
                _ => None,
            };
            return format!(
                "key {} (kernel key {}): first difference at byte {first:?}\n  kbpf   {}\n  kernel {}",
                hex(&x.0),
                hex(&y.0),
                show(&x.1),
                show(&y.1)
            );
        }
    }
    String::new()
}

struct Side {
    map: Map,
    progs: Vec<Program>,
    engine: Engine,
}

#[test]
fn program_map_access_matches_the_kernel() {
    if !bpf_available_or_skip("run map_matrix_progs") {
        return;
    }
    let start = Instant::now();
    let ncpus = kbpf_kernel::num_possible_cpus().expect("possible cpus") as u32;
    let allowed = allowed_cpus();
    assert!(!allowed.is_empty(), "sched_getaffinity");
    let run_cpus: Vec<usize> = allowed.iter().copied().take(2).collect();
    let seed = std::env::var("KBPF_MATRIX_SEED")
        .ok()
        .map(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .expect("KBPF_MATRIX_SEED is a number")
        })
        .unwrap_or(0x6b62_7066_7072_6f67);
    let packets: usize = std::env::var("KBPF_MATRIX_PACKETS")
        .ok()
        .map(|s| s.parse().expect("KBPF_MATRIX_PACKETS is a number"))
        .unwrap_or(160);
    let mut failures: Vec<String> = Vec::new();
    let mut runs = 0usize;
    let cfgs = configs();
    for (ci, c) in cfgs.iter().enumerate() {
        let name = c.name();
        let mut rng = Rng((seed ^ (ci as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let kmap = KernelMap::create(
            &MapCreateAttr::new(c.t.raw(), c.k, c.v, c.n)
                .flags(c.flags())
                .name("mxp"),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mk = || {
            Map::create(
                &MapAttr::new(c.t, c.k, c.v, c.n)
                    .flags(c.flags())
                    .name("mxp")
                    .nr_cpus(ncpus),
                None,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        // The same initial contents everywhere: every array index, half the hash keys.
        let mut sides: Vec<Side> = [Engine::Interpreter, Engine::Jit]
            .into_iter()
            .map(|engine| Side {
                map: mk(),
                progs: Vec::new(),
                engine,
            })
            .collect();
        let initial: Vec<u32> = if c.t.is_array_family() {
            (0..c.n).collect()
        } else {
            (0..c.universe()).step_by(2).collect()
        };
        for i in initial {
            let mut v = rng.bytes(kmap.user_value_len());
            if c.t == MapType::PercpuHash {
                // A program's insert writes value_size bytes into its CPU's slot and zeroes
                // value_size bytes of the others: every slot's padding stays as the reused
                // preallocated element had it, which depends on the kernel's free-list order.
                // Keep every padding byte 0.
                let stride = c.v.next_multiple_of(8) as usize;
                for (j, b) in v.iter_mut().enumerate() {
                    if j % stride >= c.v as usize {
                        *b = 0;
                    }
                }
            }
            kmap.update(&c.key(i), &v, BPF_ANY).unwrap();
            for s in &sides {
                s.map.update_elem(&c.key(i), &v, BPF_ANY).unwrap();
            }
        }
        // Both programs on every side.
        let variants = [Variant::LookupWrite, Variant::UpdateDelete];
        let mut kprogs = Vec::new();
        for variant in variants {
            let insns = program(variant, kmap.as_raw_fd(), c.k as usize, c.v as usize, 0);
            let (p, _) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0)
                .unwrap_or_else(|e| panic!("{name} {variant:?}: kernel load: {e}"));
            kprogs.push(p);
            for s in &mut sides {
                let mut env = kbpf_rewrite::MapsEnv::new();
                env.insert(KBPF_FD, s.map.clone());
                let insns = program(variant, KBPF_FD, c.k as usize, c.v as usize, 0);
                let loaded =
                    kbpf_loader::LoadedProgram::from_insns("mxp", BPF_PROG_TYPE_XDP, insns);
                let p = Program::load(&loaded, &env, &kbpf_run::LoadOptions::default(), &[]);
                match p {
                    Ok(p) => s.progs.push(p),
                    Err(e) => {
                        failures.push(format!(
                            "{name} {variant:?}: kbpf rejects a program the kernel accepts: {e}\n{}",
                            e.log().unwrap_or("")
                        ));
                    }
                }
            }
        }
        if sides.iter().any(|s| s.progs.len() != variants.len()) {
            continue;
        }
        // LRU maps stay on one CPU: the kernel's LRU free lists are per CPU.
        let cpus: &[usize] = if c.t.is_lru() {
            &run_cpus[..1]
        } else {
            &run_cpus
        };
        let mut failed = false;
        for p in 0..packets {
            let mut pkt = rng.bytes(PKT_LEN);
            let key = c.key(rng.below(c.universe() as u64) as u32);
            pkt[..key.len()].copy_from_slice(&key);
            pkt[OFF_FLAGS as usize] = rng.below(4) as u8;
            pkt[OFF_SELECT as usize] = rng.below(4) as u8;
            let vi = rng.below(2) as usize;
            let cpu = cpus[rng.below(cpus.len() as u64) as usize];
            run_on(cpu);
            let k = kprogs[vi]
                .test_run(&pkt, PKT_LEN + 256, None, 1)
                .map(|r| (r.retval, r.data_out))
                .map_err(|e| e.to_string());
            for s in &sides {
                let o = s.progs[vi]
                    .test_run(&TestRunInput {
                        data_in: &pkt,
                        engine: s.engine,
                        repeat: 1,
                        ..Default::default()
                    })
                    .map(|r| (r.retval, r.data_out))
                    .map_err(|e| e.to_string());
                runs += 1;
                if o != k && !failed {
                    failed = true;
                    failures.push(format!(
                        "{name} packet {p} ({:?}, key {}, flags {}, select {}, CPU {cpu}) on {:?}: kbpf {:?} vs kernel {:?}",
                        variants[vi],
                        hex(&key),
                        pkt[OFF_FLAGS as usize],
                        pkt[OFF_SELECT as usize],
                        s.engine,
                        o.as_ref().map(|(r, d)| (r, hex(&d[32..40]))),
                        k.as_ref().map(|(r, d)| (r, hex(&d[32..40]))),
                    ));
                }
            }
        }
        restore_cpus(&allowed);
        let kd = kernel_dump(c, &kmap);
        for s in &sides {
            let od = kbpf_dump(c, &s.map);
            if od != kd {
                failures.push(format!(
                    "{name}: contents after the runs differ on {:?}: {}",
                    s.engine,
                    dump_diff(&od, &kd)
                ));
            }
        }
    }
    restore_cpus(&allowed);
    println!(
        "map matrix (programs): {} configurations × 2 programs, {runs} kbpf test runs compared with the kernel on CPUs {run_cpus:?}, {} mismatches, {:.1} s",
        cfgs.len(),
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The padding of per-CPU hash slots (`round_up(value_size, 8)` bytes per CPU, all of which
/// user-space lookups return) after a program's `bpf_map_update_elem`, with the bytes that
/// follow the value on the program's stack set to 0xa5: whether they reach the slot depends
/// on how many bytes the update copies (`copy_map_value` or `copy_map_value_long`). Fresh
/// maps (every preallocated element still zero), one update per case: a new key, and a key
/// user space inserted first.
#[test]
fn percpu_hash_program_writes_and_the_padding() {
    if !bpf_available_or_skip("run map_matrix_progs (padding)") {
        return;
    }
    let ncpus = kbpf_kernel::num_possible_cpus().expect("possible cpus") as u32;
    let allowed = allowed_cpus();
    let cpu = *allowed.first().expect("sched_getaffinity");
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut kernel_copied = 0;
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        for v in [1u32, 4, 12, 20] {
            for existing in [false, true] {
                let c = Cfg { t, k: 4, v, n: 4 };
                let name = format!("{} existing={existing}", c.name());
                let key = c.key(1);
                let kmap = KernelMap::create(
                    &MapCreateAttr::new(t.raw(), 4, v, 4)
                        .flags(BPF_F_ZERO_SEED)
                        .name("mxpad"),
                )
                .unwrap();
                let zero = vec![0u8; kmap.user_value_len()];
                if existing {
                    kmap.update(&key, &zero, BPF_ANY).unwrap();
                }
                let insns = program(Variant::UpdateDelete, kmap.as_raw_fd(), 4, v as usize, 0xa5);
                let (kprog, _) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0).unwrap();
                let mut pkt = vec![0x11u8; PKT_LEN];
                pkt[..4].copy_from_slice(&key);
                pkt[OFF_FLAGS as usize] = 0;
                pkt[OFF_SELECT as usize] = 0;
                run_on(cpu);
                let k = kprog.test_run(&pkt, PKT_LEN + 256, None, 1).unwrap();
                let kv = kmap.lookup(&key).map_err(|e| e.to_string());
                if kv.as_ref().is_ok_and(|b| b.contains(&0xa5)) {
                    kernel_copied += 1;
                }
                for engine in [Engine::Interpreter, Engine::Jit] {
                    let map = Map::create(
                        &MapAttr::new(t, 4, v, 4)
                            .flags(BPF_F_ZERO_SEED)
                            .name("mxpad")
                            .nr_cpus(ncpus),
                        None,
                    )
                    .unwrap();
                    if existing {
                        map.update_elem(&key, &zero, BPF_ANY).unwrap();
                    }
                    let mut env = kbpf_rewrite::MapsEnv::new();
                    env.insert(KBPF_FD, map.clone());
                    let insns = program(Variant::UpdateDelete, KBPF_FD, 4, v as usize, 0xa5);
                    let loaded =
                        kbpf_loader::LoadedProgram::from_insns("mxpad", BPF_PROG_TYPE_XDP, insns);
                    let prog = Program::load(&loaded, &env, &kbpf_run::LoadOptions::default(), &[])
                        .unwrap();
                    run_on(cpu);
                    let o = prog
                        .test_run(&TestRunInput {
                            data_in: &pkt,
                            engine,
                            repeat: 1,
                            ..Default::default()
                        })
                        .unwrap();
                    let ov = map.lookup_elem(&key).map_err(|e| e.to_string());
                    cases += 1;
                    if (o.retval, &o.data_out) != (k.retval, &k.data_out) || ov != kv {
                        failures.push(format!(
                            "{name} on {engine:?}, CPU {cpu}: kbpf retval {} value {} vs kernel retval {} value {}",
                            o.retval,
                            ov.as_ref().map_or_else(|e| e.clone(), |v| hex(v)),
                            k.retval,
                            kv.as_ref().map_or_else(|e| e.clone(), |v| hex(v)),
                        ));
                    }
                }
            }
        }
    }
    restore_cpus(&allowed);
    println!(
        "per-CPU hash padding: {cases} cases (the kernel copied the stack bytes after the value into the padding in {kernel_copied} of 16), {} mismatches",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The differential fuzzer of kbpf's verifier against the live kernel's (issue #13): each
//! generated program ([`progs`]) goes to `kbpf_verifier::verify` (under the live kernel's
//! verifier behaviour) and to `BPF_PROG_LOAD` with real kernel maps; the verdicts are
//! classified, soundness mismatches (kbpf accepts, the kernel rejects) and kbpf panics are
//! minimised by delta debugging and printed in the corpus format of `tests/corpus/*.txt`.

#![allow(dead_code)]

pub mod progs;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr, ProgLoadAttr, ProgLoadError};
use kbpf_verifier::{MapDesc, Options, ProgType, VerifierBehaviour, verify};
use progs::{MAPS, Prog, Rng};

/// The fixed map set as kbpf map descriptions (fd = index), templates copied into the
/// outers' `inner_meta` as the kernel's `bpf_map_meta_alloc` does.
pub fn kbpf_env() -> Vec<MapDesc> {
    let mut out: Vec<MapDesc> = Vec::new();
    for (i, m) in MAPS.iter().enumerate() {
        let inner_meta = m.inner.map(|t| {
            let mut meta = out[t].clone();
            meta.name.clear();
            meta.id = 0;
            Box::new(meta)
        });
        out.push(MapDesc {
            id: i as u32 + 1,
            name: m.name.into(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            inner_meta,
            frozen_value: None,
            spin_lock_off: None,
            timer_off: None,
        });
    }
    out
}

/// The same maps in the live kernel, created once per run.
pub struct KernelEnv {
    maps: Vec<KernelMap>,
}

impl KernelEnv {
    pub fn create() -> Result<KernelEnv, String> {
        let mut maps: Vec<KernelMap> = Vec::new();
        for m in MAPS.iter() {
            let mut attr = MapCreateAttr::new(m.map_type, m.key_size, m.value_size, m.max_entries)
                .flags(m.map_flags)
                .name(format!("kfz_{}", m.name));
            if let Some(t) = m.inner {
                attr = attr.inner_raw(maps[t].as_raw_fd());
            }
            maps.push(KernelMap::create(&attr).map_err(|e| format!("map {}: {e}", m.name))?);
        }
        Ok(KernelEnv { maps })
    }

    fn patched(&self, insns: &[Insn]) -> Vec<Insn> {
        let mut v = insns.to_vec();
        let mut i = 0;
        while i < v.len() {
            if v[i].is_ld_imm64() {
                if v[i].src() == BPF_PSEUDO_MAP_FD
                    && let Some(m) = self.maps.get(v[i].imm as usize)
                {
                    v[i].imm = m.as_raw_fd();
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        v
    }
}

/// A verifier's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    /// The message (the log's last line before the statistics).
    Reject(String),
    /// kbpf panicked (message and location).
    Panic(String),
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        matches!(self, Outcome::Accept)
    }
    pub fn describe(&self) -> String {
        match self {
            Outcome::Accept => "accept".into(),
            Outcome::Reject(m) => format!("reject: {m}"),
            Outcome::Panic(m) => format!("PANIC: {m}"),
        }
    }
    fn msg(&self) -> &str {
        match self {
            Outcome::Accept => "",
            Outcome::Reject(m) | Outcome::Panic(m) => m,
        }
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Routes panic messages to [`LAST_PANIC`] instead of stderr (the default hook comes back
/// with [`restore_panic_hook`]).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic)".into()
        };
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{loc}")));
    }));
}

pub fn restore_panic_hook() {
    let _ = std::panic::take_hook();
}

pub struct Ctx {
    pub kernel: KernelEnv,
    pub env: Vec<MapDesc>,
    pub behaviour: VerifierBehaviour,
}

impl Ctx {
    pub fn kbpf(&self, p: &Prog) -> Outcome {
        let pt = ProgType::from_u32(p.prog_type).expect("prog type");
        let mut opts = Options::new(pt).log_level(1).kernel(self.behaviour);
        // The kernel bounds bpf_get_smp_processor_id by its nr_cpu_ids: this machine's.
        if let Ok(n) = kbpf_kernel::num_possible_cpus() {
            opts = opts.nr_cpu_ids(n as u32);
        }
        LAST_PANIC.with(|x| *x.borrow_mut() = None);
        match catch_unwind(AssertUnwindSafe(|| verify(&p.insns, &self.env, &opts))) {
            Ok(v) => match v.result {
                Ok(()) => Outcome::Accept,
                Err(e) => Outcome::Reject(e.message),
            },
            Err(_) => Outcome::Panic(
                LAST_PANIC
                    .with(|x| x.borrow_mut().take())
                    .unwrap_or_else(|| "panic".into()),
            ),
        }
    }

    /// The kernel's verdict and full log (`Err` for a failure that is not a verdict).
    pub fn kernel(&self, p: &Prog) -> Result<(Outcome, String), String> {
        let insns = self.kernel.patched(&p.insns);
        let mut attr = ProgLoadAttr::new(p.prog_type, &insns, "GPL");
        attr.log_level = 1;
        attr.log_size = 64 << 10;
        attr.name = "kbpf_fuzz";
        match KernelProg::load_with(&attr) {
            Ok((_prog, log)) => Ok((Outcome::Accept, log)),
            Err(ProgLoadError::Rejected { errno, log }) => {
                let msg = kernel_message(&log);
                let msg = if msg.is_empty() {
                    format!("(no log; errno {})", errno.name())
                } else {
                    msg
                };
                Ok((Outcome::Reject(msg), log))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The kernel log's message: the last non-empty line before the `processed N insns` line.
pub fn kernel_message(log: &str) -> String {
    if let Some(p) = log.find("BPF program is too large") {
        return log[p..].lines().next().unwrap_or_default().to_owned();
    }
    let lines: Vec<&str> = log.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| l.starts_with("processed "))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .unwrap_or_default()
}

/// A message with its numbers replaced by `N` (classes group by this).
pub fn normalise(msg: &str) -> String {
    let mut out = String::new();
    let b = msg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_digit() || (c == '-' && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
            let at_word = i == 0 || !(b[i - 1] as char).is_ascii_alphabetic() || b[i - 1] == b'R';
            if at_word {
                i += 1;
                while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'x') {
                    i += 1;
                }
                out.push('N');
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// The corpus text format.

const ALU_NAMES: [&str; 14] = [
    "add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "mov", "arsh",
    "end",
];
const JMP_NAMES: [&str; 14] = [
    "ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "call", "exit", "jlt", "jle", "jslt",
    "jsle",
];

fn mem(reg: u8, off: i16) -> String {
    if off >= 0 {
        format!("[%r{reg}+{off}]")
    } else {
        format!("[%r{reg}-{}]", -(off as i32))
    }
}

fn size_suffix(code: u8) -> &'static str {
    match code & 0x18 {
        BPF_W => "w",
        BPF_H => "h",
        BPF_B => "b",
        _ => "dw",
    }
}

fn rel(off: i64) -> String {
    if off >= 0 {
        format!("+{off}")
    } else {
        format!("{off}")
    }
}

/// One instruction (the first slot of an `ld_imm64` with its pair) in the assembler syntax;
/// `map_names[i]` names map index `i`.
fn insn_text(insns: &[Insn], i: usize) -> Result<String, String> {
    let x = insns[i];
    let d = x.dst();
    let s = x.src();
    let op = (x.code & 0xf0) as usize >> 4;
    Ok(match x.class() {
        BPF_ALU | BPF_ALU64 => {
            let sfx = if x.class() == BPF_ALU { "32" } else { "" };
            let reserved = if x.code & BPF_X != 0 {
                x.imm != 0
            } else {
                s != 0
            };
            if op >= 13 || x.off != 0 || reserved {
                return Err(format!("unprintable ALU {:#x}", x.code));
            }
            let name = ALU_NAMES[op];
            if op == 8 {
                format!("neg{sfx} %r{d}")
            } else if x.code & BPF_X != 0 {
                format!("{name}{sfx} %r{d}, %r{s}")
            } else {
                format!("{name}{sfx} %r{d}, {}", x.imm)
            }
        }
        BPF_JMP | BPF_JMP32 => {
            let reserved = match op {
                0 => x.imm != 0 || x.regs != 0,
                8 => x.off != 0 || d != 0,
                9 => x.imm != 0 || x.off != 0 || x.regs != 0,
                _ if x.code & BPF_X != 0 => x.imm != 0,
                _ => s != 0,
            };
            if reserved {
                return Err(format!("reserved fields set in jump {:#x}", x.code));
            }
            let sfx = if x.class() == BPF_JMP32 { "32" } else { "" };
            match op {
                0 if x.class() == BPF_JMP => format!("ja {}", rel(x.off as i64)),
                8 if s == BPF_PSEUDO_CALL => format!("call local {}", rel(x.imm as i64)),
                8 if s == 0 && x.code & BPF_X == 0 => format!("call {}", x.imm),
                9 => "exit".into(),
                0 | 8 | 14 | 15 => return Err(format!("unprintable jump {:#x}", x.code)),
                _ => {
                    let name = JMP_NAMES[op];
                    let src = if x.code & BPF_X != 0 {
                        format!("%r{s}")
                    } else {
                        x.imm.to_string()
                    };
                    format!("{name}{sfx} %r{d}, {src}, {}", rel(x.off as i64))
                }
            }
        }
        BPF_LDX if x.code & 0xe0 == BPF_MEM && x.imm == 0 => {
            format!("ldx{} %r{d}, {}", size_suffix(x.code), mem(s, x.off))
        }
        BPF_ST if x.code & 0xe0 == BPF_MEM && s == 0 => {
            format!("st{} {}, {}", size_suffix(x.code), mem(d, x.off), x.imm)
        }
        BPF_STX if x.code & 0xe0 == BPF_MEM && x.imm == 0 => {
            format!("stx{} {}, %r{s}", size_suffix(x.code), mem(d, x.off))
        }
        BPF_STX if x.code & 0xe0 == BPF_ATOMIC => {
            let sfx = match x.code & 0x18 {
                BPF_W => "32",
                BPF_DW => "",
                _ => return Err(format!("unprintable atomic size {:#x}", x.code)),
            };
            let (fetch, name) = match x.imm {
                v if v == BPF_XCHG => ("", "xchg"),
                v if v == BPF_CMPXCHG => ("", "cmpxchg"),
                v => {
                    let fetch = if v & BPF_FETCH != 0 { "fetch " } else { "" };
                    let name = match v & !BPF_FETCH {
                        0x00 => "add",
                        0x40 => "or",
                        0x50 => "and",
                        0xa0 => "xor",
                        _ => return Err(format!("unprintable atomic op {v:#x}")),
                    };
                    (fetch, name)
                }
            };
            format!("lock {fetch}{name}{sfx} {}, %r{s}", mem(d, x.off))
        }
        BPF_LD if x.is_ld_imm64() && i + 1 < insns.len() => {
            if s == BPF_PSEUDO_MAP_FD {
                let name = MAPS
                    .get(x.imm as usize)
                    .map(|m| m.name)
                    .ok_or("map index out of range")?;
                format!("lddw %r{d}, map:{name}")
            } else if s == 0 {
                let v = (x.imm as u32 as u64) | ((insns[i + 1].imm as u32 as u64) << 32);
                format!("lddw %r{d}, {v:#x}")
            } else {
                return Err(format!("unprintable ld_imm64 src {s}"));
            }
        }
        _ => return Err(format!("unprintable {:#x}", x.code)),
    })
}

/// The maps a program references (with their templates), in creation order.
fn used_maps(insns: &[Insn]) -> Vec<usize> {
    let mut used = vec![false; MAPS.len()];
    for i in progs::starts(insns) {
        if insns[i].is_ld_imm64()
            && insns[i].src() == BPF_PSEUDO_MAP_FD
            && let Some(u) = used.get_mut(insns[i].imm as usize)
        {
            *u = true;
            if let Some(t) = MAPS[insns[i].imm as usize].inner {
                used[t] = true;
            }
        }
    }
    (0..MAPS.len()).filter(|&i| used[i]).collect()
}

/// The program as a corpus file (`tests/corpus/*.txt`), with `comments` on top and the
/// kernel's verdict as the expectation.
pub fn corpus_text(p: &Prog, comments: &[String], kernel: &Outcome) -> Result<String, String> {
    let mut t = String::new();
    for c in comments {
        for l in c.lines() {
            let _ = writeln!(t, "# {l}");
        }
    }
    let _ = writeln!(
        t,
        "prog: {}",
        if p.prog_type == 6 { "xdp" } else { "sched_cls" }
    );
    for i in used_maps(&p.insns) {
        let m = &MAPS[i];
        let _ = write!(
            t,
            "map: {} {} key={} value={} max={}",
            m.name, m.type_name, m.key_size, m.value_size, m.max_entries
        );
        if m.map_flags != 0 {
            let _ = write!(t, " flags={:#x}", m.map_flags);
        }
        if let Some(inner) = m.inner {
            let _ = write!(t, " inner={}", MAPS[inner].name);
        }
        t.push('\n');
    }
    match kernel {
        Outcome::Accept => t.push_str("expect: accept\n"),
        Outcome::Reject(m) | Outcome::Panic(m) => {
            let _ = writeln!(t, "expect: reject\nerror: {m}");
        }
    }
    t.push_str("---\n");
    for i in progs::starts(&p.insns) {
        let _ = writeln!(t, "{}", insn_text(&p.insns, i)?);
    }
    Ok(t)
}

/// Checks that the corpus text parses back to the program (map indices renumbered to the
/// printed subset).
pub fn round_trips(p: &Prog, text: &str) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!("kbpf_fuzz_rt_{}.txt", std::process::id()));
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let case = super::common::parse(&path);
    let _ = std::fs::remove_file(&path);
    let case = case?;
    let used = used_maps(&p.insns);
    let mut want = p.insns.clone();
    for i in progs::starts(&want) {
        if want[i].is_ld_imm64() && want[i].src() == BPF_PSEUDO_MAP_FD {
            want[i].imm = used
                .iter()
                .position(|&u| u == want[i].imm as usize)
                .unwrap() as i32;
        }
    }
    if case.insns != want || case.prog_type != p.prog_type {
        return Err("the printed program does not assemble back to the same instructions".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Minimisation.

/// Delta debugging on instructions: drops runs of instructions, replaces instructions with
/// `mov r0, 0`, shrinks immediates, as long as `still` holds; at most `budget` checks.
pub fn minimise(p: &Prog, budget: usize, still: &mut dyn FnMut(&Prog) -> bool) -> Prog {
    let mut cur = p.clone();
    let mut checks = 0;
    let mut try_it = |cand: Prog, cur: &mut Prog, checks: &mut usize| -> bool {
        if *checks >= budget {
            return false;
        }
        *checks += 1;
        if still(&cand) {
            *cur = cand;
            true
        } else {
            false
        }
    };
    loop {
        let mut changed = false;
        // Drop runs of instructions, big runs first.
        let mut chunk = (progs::starts(&cur.insns).len() / 2).max(1);
        loop {
            let mut k = 0;
            while k < progs::starts(&cur.insns).len() {
                let st = progs::starts(&cur.insns);
                let at = st[k];
                let mut cand = cur.clone();
                for _ in 0..chunk.min(st.len() - k) {
                    if at < cand.insns.len() {
                        progs::remove(&mut cand.insns, at);
                    }
                }
                if try_it(cand, &mut cur, &mut checks) {
                    changed = true;
                } else {
                    k += 1;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        // Replace instructions with `mov r0, 0`.
        let zero = Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
        for k in 0.. {
            let st = progs::starts(&cur.insns);
            let Some(&at) = st.get(k) else { break };
            if cur.insns[at] == zero {
                continue;
            }
            let mut cand = cur.clone();
            if cand.insns[at].is_ld_imm64() {
                cand.insns[at] = zero;
                cand.insns[at + 1] = zero;
            } else {
                cand.insns[at] = zero;
            }
            if try_it(cand, &mut cur, &mut checks) {
                changed = true;
            }
        }
        // Shrink immediates.
        for k in 0.. {
            let st = progs::starts(&cur.insns);
            let Some(&at) = st.get(k) else { break };
            let x = cur.insns[at];
            let class = x.class();
            let is_call = class == BPF_JMP && x.code & 0xf0 == BPF_CALL;
            if x.imm == 0 || x.is_ld_imm64() || is_call || class == BPF_LDX {
                continue;
            }
            if class == BPF_STX && x.code & 0xe0 == BPF_ATOMIC {
                continue;
            }
            for v in [0, x.imm / 2] {
                if v == x.imm {
                    continue;
                }
                let mut cand = cur.clone();
                cand.insns[at].imm = v;
                if try_it(cand, &mut cur, &mut checks) {
                    changed = true;
                    break;
                }
            }
        }
        if !changed || checks >= budget {
            break;
        }
    }
    cur
}

// ---------------------------------------------------------------------------------------
// The run.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// kbpf accepts, the kernel rejects.
    Soundness,
    /// kbpf panicked.
    Crash,
    /// kbpf rejects, the kernel accepts.
    KbpfRejects,
    /// Both reject, with different messages.
    RejectMessages,
}

pub struct Class {
    pub count: u64,
    pub index: u64,
    pub kbpf: Outcome,
    pub kernel: Outcome,
    pub prog: Prog,
}

#[derive(Default)]
pub struct Report {
    pub programs: u64,
    pub both_accept: u64,
    pub both_reject: u64,
    pub both_reject_same_msg: u64,
    pub soundness: u64,
    pub kbpf_rejects: u64,
    pub crashes: u64,
    pub kernel_errors: Vec<String>,
    pub classes: BTreeMap<(Kind, String, String), Class>,
    /// The kernel's rejections by message (numbers as `N`).
    pub kernel_rejects: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Time spent minimising (included in `elapsed`).
    pub minimise_time: Duration,
    /// Programs one verifier took more than 200 ms on.
    pub slow: Vec<String>,
    pub kbpf_time: Duration,
    pub kernel_time: Duration,
    /// Minimised reproducers (corpus text) of soundness mismatches and crashes.
    pub reproducers: Vec<String>,
}

impl Report {
    pub fn agreement(&self) -> f64 {
        (self.both_accept + self.both_reject) as f64 / self.programs.max(1) as f64 * 100.0
    }
}

pub struct Config {
    pub programs: u64,
    pub seed: u64,
    pub only: Option<u64>,
    /// Also minimise one example of every other difference class.
    pub minimise_classes: bool,
    pub verbose: bool,
}

pub fn run(ctx: &Ctx, cfg: &Config) -> Report {
    let mut r = Report::default();
    let start = Instant::now();
    let range: Vec<u64> = match cfg.only {
        Some(i) => vec![i],
        None => (0..cfg.programs).collect(),
    };
    for i in range {
        let mut rng = Rng::for_program(cfg.seed, i);
        let p = progs::generate(&mut rng);
        let t0 = Instant::now();
        let k = ctx.kbpf(&p);
        let t1 = Instant::now();
        let kern = ctx.kernel(&p);
        r.kbpf_time += t1 - t0;
        r.kernel_time += t1.elapsed();
        for (d, which) in [(t1 - t0, "kbpf"), (t1.elapsed(), "kernel")] {
            if d > Duration::from_millis(200) {
                r.slow
                    .push(format!("program {i}: {which} {:.2} s", d.as_secs_f64()));
            }
        }
        r.programs += 1;
        let (kern, log) = match kern {
            Ok(x) => x,
            Err(e) => {
                r.kernel_errors.push(format!("program {i}: {e}"));
                continue;
            }
        };
        if cfg.verbose || cfg.only.is_some() {
            println!(
                "program {i}: kbpf {} / kernel {}\n{}",
                k.describe(),
                kern.describe(),
                corpus_text(&p, &[], &kern).unwrap_or_else(|e| e)
            );
            if cfg.only.is_some() {
                println!("--- kernel log ---\n{log}");
            }
        }
        if let Outcome::Reject(m) = &kern {
            *r.kernel_rejects.entry(normalise(m)).or_default() += 1;
        }
        let kind = match (&k, &kern) {
            (Outcome::Panic(_), _) => {
                r.crashes += 1;
                Kind::Crash
            }
            (Outcome::Accept, Outcome::Accept) => {
                r.both_accept += 1;
                continue;
            }
            (Outcome::Reject(a), Outcome::Reject(b)) => {
                r.both_reject += 1;
                if normalise(a) == normalise(b) {
                    r.both_reject_same_msg += 1;
                    continue;
                }
                Kind::RejectMessages
            }
            (Outcome::Accept, _) => {
                r.soundness += 1;
                Kind::Soundness
            }
            (Outcome::Reject(_), _) => {
                r.kbpf_rejects += 1;
                Kind::KbpfRejects
            }
        };
        let key = (kind, normalise(k.msg()), normalise(kern.msg()));
        let new = !r.classes.contains_key(&key);
        let c = r.classes.entry(key).or_insert_with(|| Class {
            count: 0,
            index: i,
            kbpf: k.clone(),
            kernel: kern.clone(),
            prog: p.clone(),
        });
        c.count += 1;
        if new && matches!(kind, Kind::Soundness | Kind::Crash) {
            let tm = Instant::now();
            let rep = reproducer(ctx, cfg.seed, i, kind, &p);
            r.minimise_time += tm.elapsed();
            println!("{rep}");
            r.reproducers.push(rep);
        }
    }
    r.elapsed = start.elapsed();
    r
}

/// Whether `p` still shows `kind`'s difference (for a crash: kbpf still panics).
fn still(ctx: &Ctx, kind: Kind, want: &(String, String), p: &Prog) -> bool {
    let k = ctx.kbpf(p);
    match kind {
        Kind::Crash => matches!(k, Outcome::Panic(_)),
        // Same kernel message class, so the reproducer stays on this mismatch.
        Kind::Soundness => {
            k.accepted()
                && matches!(ctx.kernel(p), Ok((Outcome::Reject(m), _)) if normalise(&m) == want.1)
        }
        Kind::KbpfRejects => {
            matches!(&k, Outcome::Reject(m) if normalise(m) == want.0)
                && matches!(ctx.kernel(p), Ok((Outcome::Accept, _)))
        }
        Kind::RejectMessages => {
            matches!(&k, Outcome::Reject(m) if normalise(m) == want.0)
                && matches!(ctx.kernel(p), Ok((Outcome::Reject(m), _)) if normalise(&m) == want.1)
        }
    }
}

/// The minimised program of a difference, in the corpus format with both verdicts.
pub fn reproducer(ctx: &Ctx, seed: u64, index: u64, kind: Kind, p: &Prog) -> String {
    let k0 = ctx.kbpf(p);
    let kern0 = ctx
        .kernel(p)
        .map(|x| x.0)
        .unwrap_or(Outcome::Reject("?".into()));
    let want = (normalise(k0.msg()), normalise(kern0.msg()));
    let min = minimise(p, 4000, &mut |c| still(ctx, kind, &want, c));
    let k = ctx.kbpf(&min);
    let kern = ctx
        .kernel(&min)
        .map(|x| x.0)
        .unwrap_or(Outcome::Reject("?".into()));
    let comments = vec![
        format!(
            "kbpf-fuzz {kind:?}: KBPF_FUZZ_SEED={seed} program {index} ({} insns, minimised to {})",
            progs::starts(&p.insns).len(),
            progs::starts(&min.insns).len()
        ),
        format!("kbpf:   {}", k.describe()),
        format!("kernel: {}", kern.describe()),
    ];
    match corpus_text(&min, &comments, &kern) {
        Ok(t) => match round_trips(&min, &t) {
            Ok(()) => t,
            Err(e) => format!("{t}# WARNING: {e}\n"),
        },
        Err(e) => {
            let mut t = String::new();
            for c in &comments {
                let _ = writeln!(t, "# {c}");
            }
            let _ = writeln!(
                t,
                "# not printable in the assembler syntax ({e}); raw code dst src off imm:"
            );
            for x in &min.insns {
                let _ = writeln!(
                    t,
                    "#   {:#04x} {} {} {} {}",
                    x.code,
                    x.dst(),
                    x.src(),
                    x.off,
                    x.imm
                );
            }
            t
        }
    }
}

/// The summary: counts, rates and each class of differences with an example.
pub fn summary(ctx: &Ctx, r: &Report, cfg: &Config) -> String {
    let mut t = String::new();
    let secs = r.elapsed.as_secs_f64();
    let _ = writeln!(
        t,
        "kernel fuzz: seed {} ({:#x}), {} programs in {:.1} s ({:.0} programs/s; kbpf {:.1} s, kernel {:.1} s, minimising {:.1} s)",
        cfg.seed,
        cfg.seed,
        r.programs,
        secs,
        r.programs as f64 / secs.max(1e-9),
        r.kbpf_time.as_secs_f64(),
        r.kernel_time.as_secs_f64(),
        r.minimise_time.as_secs_f64()
    );
    for s in &r.slow {
        let _ = writeln!(t, "  slow: {s}");
    }
    let _ = writeln!(
        t,
        "  same verdict {:.2}% (both accept {}, both reject {} — same message {}), kbpf accepts/kernel rejects (SOUNDNESS) {}, kbpf rejects/kernel accepts {}, kbpf panics {}, kernel load errors {}",
        r.agreement(),
        r.both_accept,
        r.both_reject,
        r.both_reject_same_msg,
        r.soundness,
        r.kbpf_rejects,
        r.crashes,
        r.kernel_errors.len()
    );
    for e in r.kernel_errors.iter().take(5) {
        let _ = writeln!(t, "  kernel error: {e}");
    }
    let mut rejects: Vec<_> = r.kernel_rejects.iter().collect();
    rejects.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    let _ = writeln!(
        t,
        "  kernel accepts {:.1}%; its most frequent rejections:",
        r.both_accept as f64 / r.programs.max(1) as f64 * 100.0
    );
    for (m, n) in rejects.iter().take(12) {
        let _ = writeln!(t, "    x{n}: {m}");
    }
    let mut classes: Vec<_> = r.classes.iter().collect();
    classes.sort_by_key(|((kind, _, _), c)| (*kind, std::cmp::Reverse(c.count)));
    for ((kind, _, _), c) in classes {
        let _ = writeln!(
            t,
            "  [{kind:?}] x{}: kbpf {} | kernel {} (e.g. program {})",
            c.count,
            c.kbpf.describe(),
            c.kernel.describe(),
            c.index
        );
        if cfg.minimise_classes && matches!(kind, Kind::KbpfRejects | Kind::RejectMessages) {
            let rep = reproducer(ctx, cfg.seed, c.index, *kind, &c.prog);
            for l in rep.lines() {
                let _ = writeln!(t, "      {l}");
            }
        }
    }
    t
}

//! Verification time, kbpf next to the kernel (issue #5), for every program of the verifier
//! corpus and every clang-built object program of `tests/objects_xlated.rs`:
//!
//! - **kbpf verify**: `kbpf_verifier::verify` at log level 0;
//! - **kbpf verify+rewrite**: `kbpf_run::Program::load` at log level 0 (verify, rewrite,
//!   helper wiring);
//! - **kernel load**: wall time of the raw `BPF_PROG_LOAD` (`KernelProg::load_with`, log level
//!   `BPF_LOG_STATS` alone: the statistics lines, no instruction trace — level 1 makes the
//!   kernel print every processed instruction, which doubles its time; `KBPF_KERNEL_LOG=5`
//!   measures that) of the same relocated instructions with the same maps, replicated
//!   in the kernel through `BPF_MAP_CREATE` (inner templates, global-data contents, `.rodata`
//!   frozen). No BTF is loaded (kbpf-kernel has no `BPF_BTF_LOAD`): programs are loaded
//!   without `func_info`/`line_info`;
//! - **kernel verifier**: the kernel's own `verification time N usec` from its log;
//! - processed instructions: the kernel's `processed N insns` (= `verified_insns` of accepted
//!   programs) against kbpf's `stats.insn_processed`; for the objects also `verified_insns`
//!   of the object loaded by `bpftool prog loadall` (libbpf with BTF), which checks the
//!   replication.
//!
//! Every time is the best of N runs (`KBPF_RUNS`, default 21; 3 for a program that takes over
//! 100 ms, i.e. the one that runs into the 1M-instruction limit).
//!
//! `cargo run --release -p kbpf-run --example verify_vs_kernel`

#[path = "../benches/support/workload.rs"]
mod workload;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use kbpf_isa::Insn;
use kbpf_kernel::consts::BPF_LOG_STATS;
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr, ProgLoadAttr};
use workload::{Item, Source};

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fmt_us(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `BPF_MAP_FREEZE` (kbpf-kernel does not wrap it): libbpf freezes `.rodata` maps, and the
/// kernel's verifier then reads their contents as constants.
fn freeze(map: &KernelMap) -> Result<(), String> {
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        pad: [u32; 31],
    }
    let attr = Attr {
        map_fd: map.as_raw_fd() as u32,
        pad: [0; 31],
    };
    const BPF_MAP_FREEZE: libc::c_long = 22;
    // SAFETY: bpf(BPF_MAP_FREEZE) reads `map_fd` from a zeroed attr of the size we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_FREEZE,
            &attr as *const Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(format!(
            "BPF_MAP_FREEZE: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The item's maps created in the kernel, and its instructions with their fds.
fn kernel_side(item: &Item) -> Result<(Vec<KernelMap>, Vec<Insn>), String> {
    let mut maps: Vec<KernelMap> = Vec::new();
    // kbpf fd (as in the instructions) → kernel fd.
    let mut fds: HashMap<i32, i32> = HashMap::new();
    match &item.source {
        Source::Corpus(case) => {
            for (i, m) in case.maps.iter().enumerate() {
                let mut attr =
                    MapCreateAttr::new(m.map_type, m.key_size, m.value_size, m.max_entries)
                        .flags(m.map_flags)
                        .name(m.name.chars().take(15).collect::<String>());
                if let Some(t) = m.inner {
                    attr = attr.inner_raw(maps[t].as_raw_fd());
                }
                let km = KernelMap::create(&attr).map_err(|e| format!("map {}: {e}", m.name))?;
                fds.insert(i as i32, km.as_raw_fd());
                maps.push(km);
            }
        }
        Source::Object { loaded, .. } => {
            for lm in &loaded.maps {
                let m = &lm.map;
                let name: String = lm
                    .kernel_name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
                    .take(15)
                    .collect();
                let mut attr = MapCreateAttr::new(
                    m.map_type().raw(),
                    m.key_size(),
                    m.value_size(),
                    m.max_entries(),
                )
                .flags(m.map_flags())
                .name(name);
                // The inner template: a map of the meta's shape, closed after the outer's
                // creation (as libbpf does).
                let template = match m.inner_map_meta() {
                    Some(meta) => {
                        let d = meta.desc();
                        let t = KernelMap::create(
                            &MapCreateAttr::new(
                                d.map_type.raw(),
                                d.key_size,
                                d.value_size,
                                d.max_entries.max(1),
                            )
                            .flags(d.map_flags)
                            .name("tmpl"),
                        )
                        .map_err(|e| format!("template of {}: {e}", lm.name))?;
                        attr = attr.inner_raw(t.as_raw_fd());
                        Some(t)
                    }
                    None => None,
                };
                let km = KernelMap::create(&attr).map_err(|e| format!("map {}: {e}", lm.name))?;
                drop(template);
                // Global data: the initial contents (what the verifier reads from a frozen
                // `.rodata`).
                if lm.section.starts_with('.') && !lm.section.starts_with(".maps") {
                    for key in m.keys() {
                        if let Ok(v) = m.lookup_elem(&key) {
                            km.update(&key, &v, 0)
                                .map_err(|e| format!("map {} contents: {e}", lm.name))?;
                        }
                    }
                }
                if lm.frozen {
                    freeze(&km).map_err(|e| format!("map {}: {e}", lm.name))?;
                }
                fds.insert(lm.fd as i32, km.as_raw_fd());
                maps.push(km);
            }
        }
    }
    let mut insns = item.prog.insns.clone();
    let mut i = 0;
    while i < insns.len() {
        if insns[i].is_ld_imm64() {
            if matches!(insns[i].src(), 1 | 2) {
                insns[i].imm = *fds
                    .get(&insns[i].imm)
                    .ok_or_else(|| format!("insn {i}: no map with fd {}", insns[i].imm))?;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok((maps, insns))
}

/// The number after `prefix` in the log.
fn log_number(log: &str, prefix: &str) -> Option<u64> {
    let at = log.rfind(prefix)? + prefix.len();
    log[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

struct KernelRow {
    load: Duration,
    verifier_us: Option<u64>,
    processed: Option<u64>,
    accepted: bool,
    verified_insns: Option<u32>,
}

fn kernel_row(item: &Item, runs: usize) -> Result<KernelRow, String> {
    let (_maps, insns) = kernel_side(item)?;
    let name: String = item
        .prog
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(15)
        .collect();
    let mut attr = ProgLoadAttr::new(item.prog.prog_type, &insns, &item.license);
    attr.log_level = std::env::var("KBPF_KERNEL_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BPF_LOG_STATS);
    attr.name = &name;
    attr.expected_attach_type = item.prog.expected_attach_type;
    attr.prog_flags = item.prog.prog_flags;
    // A log buffer sized for this program's log, so the timed loads never retry on ENOSPC.
    let t = Instant::now();
    let first = KernelProg::load_with(&attr);
    let t_first = t.elapsed();
    let log = match first {
        Ok((_, log)) => log,
        Err(e) => e.log().to_owned(),
    };
    attr.log_size = (2 * log.len()).next_power_of_two().max(4096);
    let runs = if t_first > Duration::from_millis(100) {
        runs.min(3)
    } else {
        runs
    };
    let mut row = KernelRow {
        load: Duration::MAX,
        verifier_us: None,
        processed: None,
        accepted: false,
        verified_insns: None,
    };
    for _ in 0..runs {
        let t = Instant::now();
        let r = KernelProg::load_with(&attr);
        let dt = t.elapsed();
        let (log, prog) = match r {
            Ok((p, log)) => (log, Some(p)),
            Err(e) => (e.log().to_owned(), None),
        };
        row.load = row.load.min(dt);
        if let Some(v) = log_number(&log, "verification time ") {
            row.verifier_us = Some(row.verifier_us.map_or(v, |b| b.min(v)));
        }
        row.processed = log_number(&log, "processed ");
        row.accepted = prog.is_some();
        if let Some(p) = &prog {
            row.verified_insns = p.info().ok().map(|i| i.verified_insns);
        }
    }
    Ok(row)
}

/// `verified_insns` of each program of `obj` loaded by `bpftool prog loadall` (libbpf, BTF).
fn bpftool_verified(obj: &str) -> HashMap<String, u32> {
    let path = workload::root().join(obj);
    let pins = kbpf_kernel::bpftool::Pins::new("kbpfvt", obj.rsplit('/').next().unwrap_or(obj));
    let mut out = HashMap::new();
    if let Err(e) = kbpf_kernel::bpftool::loadall(&path, &pins) {
        eprintln!("bpftool prog loadall {obj}: {}", e.trim());
        return out;
    }
    if let Ok(dir) = std::fs::read_dir(&pins.progs) {
        for e in dir.flatten() {
            if let Ok(info) = KernelProg::from_pinned(e.path()).and_then(|p| p.info()) {
                out.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    info.verified_insns,
                );
            }
        }
    }
    out
}

fn main() {
    let runs: usize = std::env::var("KBPF_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let kernel = kbpf_kernel::bpf_available();
    if let Err(why) = &kernel {
        println!("NOTE: kernel columns skipped: bpf() unavailable: {why}\n");
    }
    let bpftool = kernel.is_ok()
        && std::process::Command::new("bpftool")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
    let mut bpftool_cache: HashMap<String, HashMap<String, u32>> = HashMap::new();

    let mut items = workload::corpus();
    items.extend(workload::objects());
    println!(
        "| program | insns | verdict | kbpf verify µs | kbpf verify+rewrite µs | kernel BPF_PROG_LOAD µs | kernel's verification time µs | kernel processed insns | kbpf insn_processed | bpftool verified_insns |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    // (kbpf verify, kbpf load, kernel load) sums for the corpus and the objects.
    let mut sums = [[0f64; 3]; 2];
    let mut ratios: Vec<(String, f64)> = Vec::new();
    let mut mismatches = Vec::new();
    let mut n_limit = 0;
    for item in &items {
        let verdict = item.verify();
        let accepted = verdict.result.is_ok();
        // Alternate the two so that both see the same machine (other jobs, frequency).
        let (mut t_verify, mut t_load) = (Duration::MAX, Duration::MAX);
        let mut i = 0;
        while i < runs {
            let t = Instant::now();
            std::hint::black_box(item.verify());
            t_verify = t_verify.min(t.elapsed());
            let t = Instant::now();
            let _ = std::hint::black_box(item.load());
            t_load = t_load.min(t.elapsed());
            i += 1;
            if t_verify > Duration::from_millis(100) && i >= 3 {
                break;
            }
        }
        let k = match &kernel {
            Ok(()) => match kernel_row(item, runs) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("{}: kernel: {e}", item.name);
                    None
                }
            },
            Err(_) => None,
        };
        let bt = match (&item.source, bpftool) {
            (Source::Object { path, .. }, true) => bpftool_cache
                .entry(path.clone())
                .or_insert_with(|| bpftool_verified(path))
                .get(&item.prog.name)
                .map(|v| v.to_string()),
            _ => None,
        };
        let is_obj = matches!(item.source, Source::Object { .. });
        // The complexity-limit case (seconds) is left out of the sums and ratios.
        let limit = verdict.stats.insn_processed > 100_000;
        n_limit += limit as usize;
        let mut dummy = [0f64; 3];
        let s = if limit {
            &mut dummy
        } else {
            &mut sums[is_obj as usize]
        };
        s[0] += us(t_verify);
        s[1] += us(t_load);
        let mut verdict_s = if accepted { "accept" } else { "reject" }.to_string();
        if let Some(k) = &k {
            s[2] += us(k.load);
            if !limit {
                ratios.push((item.name.clone(), us(k.load) / us(t_load)));
            }
            if k.accepted != accepted {
                verdict_s += if k.accepted {
                    " (kernel: accept)"
                } else {
                    " (kernel: reject)"
                };
                mismatches.push(format!("{}: verdicts differ", item.name));
            }
            if let (Some(p), Some(v)) = (k.processed, k.verified_insns)
                && p != v as u64
            {
                mismatches.push(format!(
                    "{}: log says processed {p}, verified_insns {v}",
                    item.name
                ));
            }
        }
        let dash = || "–".to_string();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            item.name,
            item.prog.insns.len(),
            verdict_s,
            fmt_us(us(t_verify)),
            fmt_us(us(t_load)),
            k.as_ref().map_or_else(dash, |k| fmt_us(us(k.load))),
            k.as_ref()
                .and_then(|k| k.verifier_us)
                .map_or_else(dash, |v| v.to_string()),
            k.as_ref()
                .and_then(|k| k.processed)
                .map_or_else(dash, |v| v.to_string()),
            verdict.stats.insn_processed,
            bt.unwrap_or_else(dash),
        );
    }
    let n_obj = items
        .iter()
        .filter(|i| matches!(i.source, Source::Object { .. }))
        .count();
    let n_corpus = items.len() - n_obj - n_limit;
    println!();
    for (label, n, s) in [
        (
            "corpus programs (without the 1M-insn limit case)",
            n_corpus,
            sums[0],
        ),
        ("object programs", n_obj, sums[1]),
    ] {
        let kernel = if kernel.is_ok() {
            format!(
                ", kernel BPF_PROG_LOAD {} µs ({:.1}× kbpf verify+rewrite)",
                fmt_us(s[2]),
                s[2] / s[1]
            )
        } else {
            String::new()
        };
        println!(
            "sum over the {n} {label}: kbpf verify {} µs, verify+rewrite {} µs{kernel}",
            fmt_us(s[0]),
            fmt_us(s[1]),
        );
    }
    if !ratios.is_empty() {
        ratios.sort_by(|a, b| a.1.total_cmp(&b.1));
        let med = ratios[ratios.len() / 2].1;
        println!(
            "kernel load / kbpf verify+rewrite per program (same set): min {:.1}× ({}), median {med:.1}×, max {:.1}× ({})",
            ratios[0].1,
            ratios[0].0,
            ratios[ratios.len() - 1].1,
            ratios[ratios.len() - 1].0
        );
    }
    println!("best of {runs} runs each");
    for m in &mismatches {
        println!("MISMATCH: {m}");
    }
}

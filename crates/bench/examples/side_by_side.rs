//! One table: kbpf's JIT and interpreter, the kernel's JIT (`BPF_PROG_TEST_RUN` with
//! repeat, its reported average `duration`), and rbpf 0.3's JIT and interpreter (programs
//! without maps only), on the same programs and packets.
//!
//! `cargo run --release -p kbpf-bench --example side_by_side`
//!
//! kbpf: the translated program (kbpf's verifier + rewrite), `JitProgram::compile_translated`
//! / `Interpreter::new_translated`, timed around the engine call only: a loop of runs on one
//! `XdpFrame` (the same buffer every run, as the kernel's repeat loop), one epoch pin for the
//! whole loop; median of 9 batches of ~20 ms. Kernel: `bpf_prog_test_run` repeat loop, whose
//! `duration` is the average of `ktime` over the loop (it includes the loop's own per-run
//! cost: `bpf_test_timer` bookkeeping and `bpf_prog_run_xdp`'s dispatch); median of 5 calls
//! of ~50 ms each. rbpf: the same bytecode with a `{ u64 data; u64 data_end; }` context.
//! Native -O2: the same computation in C (`native/limits.c`, gcc/clang -O2 through the `cc`
//! crate) over the packet and a plain array — the limit (Maglev has none: its maps would need
//! a native hash table and LRU, which would measure that implementation instead).
//! Columns are skipped (`-`) where an engine cannot run the program (`bpf()` unavailable,
//! rbpf has no maps).

use std::path::Path;

use kbpf_bench::{
    BPF_PROG_TYPE_XDP, Engines, KbpfObject, bench_object, bytecode_programs, load_xdp_insns,
    maglev_kbpf, maglev_packet, maglev_service, ns_per_call, progs, xdp_form,
};
use kbpf_kernel::KernelProg;
use kbpf_kernel::bpftool::{Pins, loadall};
use kbpf_run::Program;
use kbpf_run::ctx::XdpFrame;

#[derive(Default)]
struct Row {
    name: String,
    /// Divide every time by this (lookups per run) for the per-lookup table.
    per: f64,
    jit: Option<f64>,
    interp: Option<f64>,
    kernel: Option<f64>,
    rbpf_jit: Option<f64>,
    rbpf_interp: Option<f64>,
    /// The same computation in C at -O2 over plain memory (`native/limits.c`).
    native: Option<f64>,
    retvals: Vec<(String, u64)>,
}

/// Times the native limit of a benchmark and records its result.
fn native_time(f: impl Fn() -> u64, row: &mut Row) {
    row.retvals.push(("native".into(), f() & 0xffff_ffff));
    row.native = Some(ns_per_call(f, 20.0, 9));
}

fn kbpf_times(prog: &Program, pkt: &[u8], row: &mut Row) {
    let e = match Engines::new(prog) {
        Ok(e) => e,
        Err(err) => {
            eprintln!("{}: {err}", row.name);
            return;
        }
    };
    let mut frame = XdpFrame::new(pkt, 1, 0).expect("packet fits an XDP frame");
    let ctx = frame.ctx_ptr();
    let _guard = kbpf_maps::pin();
    // SAFETY: the program passed kbpf's verifier as XDP; `ctx` is a live XdpFrame.
    let r = unsafe { e.run_jit(ctx) }.unwrap_or(u64::MAX);
    row.retvals.push(("kbpf jit".into(), r & 0xffff_ffff));
    row.jit = Some(ns_per_call(
        // SAFETY: as above.
        || unsafe { e.run_jit(ctx) }.unwrap_or(u64::MAX),
        20.0,
        9,
    ));
    let r = e.run_interp(ctx).unwrap_or(u64::MAX);
    row.retvals.push(("kbpf interp".into(), r & 0xffff_ffff));
    row.interp = Some(ns_per_call(
        || e.run_interp(ctx).unwrap_or(u64::MAX),
        20.0,
        9,
    ));
}

fn kernel_time(prog: &KernelProg, pkt: &[u8], row: &mut Row) {
    let run = |repeat| prog.test_run(pkt, pkt.len() + 512, None, repeat);
    let first = match run(1000) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: kernel test run: {e}", row.name);
            return;
        }
    };
    row.retvals.push(("kernel".into(), first.retval as u64));
    let per = (first.duration_ns as f64).max(1.0);
    let repeat = ((50e6 / per) as u32).clamp(100, 10_000_000);
    let mut d: Vec<f64> = (0..5)
        .filter_map(|_| run(repeat).ok().map(|r| r.duration_ns as f64))
        .collect();
    if d.is_empty() {
        return;
    }
    d.sort_by(f64::total_cmp);
    row.kernel = Some(d[d.len() / 2]);
}

fn rbpf_times(insns: &[kbpf_isa::Insn], pkt: &[u8], row: &mut Row) {
    let bytes = progs::bytes(insns);
    let mut pkt = pkt.to_vec();
    let mut ctx = progs::context(&pkt);
    let vm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts the program");
    let r = vm.execute_program(&pkt, &ctx).unwrap_or(u64::MAX);
    row.retvals.push(("rbpf interp".into(), r & 0xffff_ffff));
    row.rbpf_interp = Some(ns_per_call(
        || vm.execute_program(&pkt, &ctx).unwrap_or(u64::MAX),
        20.0,
        9,
    ));
    let mut jvm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts the program");
    if let Err(e) = jvm.jit_compile() {
        eprintln!("{}: rbpf JIT: {e}", row.name);
        return;
    }
    // SAFETY: the program only reads the packet through the context rbpf is given, which
    // describes `pkt`; both live for every run.
    let r = unsafe { jvm.execute_program_jit(&mut pkt, &mut ctx) }.unwrap_or(u64::MAX);
    row.retvals.push(("rbpf jit".into(), r & 0xffff_ffff));
    let (p, c) = (&mut pkt, &mut ctx);
    row.rbpf_jit = Some(ns_per_call(
        // SAFETY: as above.
        || unsafe { jvm.execute_program_jit(p, c) }.unwrap_or(u64::MAX),
        20.0,
        9,
    ));
}

/// The kernel's copy of a clang object's program, loaded by bpftool (maps as libbpf makes
/// them); the pins are removed when the guard drops.
fn kernel_object(obj: &Path, prog: &str) -> Option<(Pins, KernelProg)> {
    let stem = obj.file_name()?.to_string_lossy().replace(".bpf.o", "");
    let pins = Pins::new("kbpfbench", &stem);
    if let Err(e) = loadall(obj, &pins) {
        eprintln!("{}: bpftool loadall: {e}", obj.display());
        return None;
    }
    match KernelProg::from_pinned(pins.progs.join(prog)) {
        Ok(p) => Some((pins, p)),
        Err(e) => {
            eprintln!("{prog}: {e}");
            None
        }
    }
}

fn fmt(v: Option<f64>, per: f64) -> String {
    match v {
        Some(ns) if ns / per >= 100.0 => format!("{:.0}", ns / per),
        Some(ns) => format!("{:.2}", ns / per),
        None => "-".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cpus} CPUs (nproc), {model}, Linux {kernel}")
}

fn main() {
    let kernel_ok = match kbpf_kernel::bpf_available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("kernel column skipped: bpf() unavailable: {e}");
            false
        }
    };
    println!("machine: {}", machine());
    let pkt = progs::packet();
    let mut rows = Vec::new();

    for (name, insns) in bytecode_programs() {
        let mut row = Row {
            name: name.into(),
            per: 1.0,
            ..Row::default()
        };
        let x = xdp_form(&insns);
        match load_xdp_insns(name, &x) {
            Ok(p) => kbpf_times(&p, &pkt, &mut row),
            Err(e) => eprintln!("{e}"),
        }
        if kernel_ok {
            match KernelProg::load(BPF_PROG_TYPE_XDP, &x, "GPL", 0) {
                Ok((kp, _)) => kernel_time(&kp, &pkt, &mut row),
                Err(e) => eprintln!("{name}: kernel load: {e}"),
            }
        }
        rbpf_times(&insns, &pkt, &mut row);
        match name {
            n if n.starts_with("ALU") => native_time(kbpf_bench::native::alu_loop, &mut row),
            n if n.starts_with("FNV") => native_time(|| kbpf_bench::native::fnv1a(&pkt), &mut row),
            _ => native_time(|| kbpf_bench::native::parse_hash(&pkt), &mut row),
        }
        rows.push(row);
    }

    // Maglev datapath, one service, steady state (conntrack hit).
    {
        let mut row = Row {
            name: "Maglev datapath (CT hit, XDP_TX)".into(),
            per: 1.0,
            ..Row::default()
        };
        let mp = maglev_packet();
        match maglev_kbpf() {
            Ok(obj) => kbpf_times(
                obj.program("maglev_xdp").expect("maglev_xdp"),
                &mp,
                &mut row,
            ),
            Err(e) => eprintln!("maglev on kbpf: {e}"),
        }
        if kernel_ok {
            match kbpf_maglev::control::kernel::load(
                Path::new(kbpf_maglev::OBJECT_PATH),
                kbpf_maglev::control::LbConfig::default(),
            ) {
                Ok((load, mut lb)) => {
                    let (addr, backends) = maglev_service();
                    match lb.add_service(addr, &backends) {
                        Ok(_) => kernel_time(&load.prog, &mp, &mut row),
                        Err(e) => eprintln!("maglev on the kernel: {e}"),
                    }
                }
                Err(e) => eprintln!("maglev on the kernel: {e}"),
            }
        }
        rows.push(row);
    }

    // The lookup programs: per run, and per lookup.
    let mut flavours = Vec::new();
    for (stem, label) in [
        ("lookup_inline", "inlined array lookup"),
        ("lookup_direct", "BPF_F_INNER_MAP direct call"),
        ("lookup_helper", "generic helper bpf_map_lookup_elem"),
    ] {
        let path = bench_object(stem);
        let mut row = Row {
            name: label.into(),
            per: 1000.0,
            ..Row::default()
        };
        match KbpfObject::load(&path) {
            Ok(obj) => kbpf_times(&obj.programs[0], &pkt, &mut row),
            Err(e) => eprintln!("{stem}: {e}"),
        }
        let _pins = if kernel_ok {
            kernel_object(&path, stem).map(|(pins, kp)| {
                kernel_time(&kp, &pkt, &mut row);
                pins
            })
        } else {
            None
        };
        if stem == "lookup_inline" {
            let values = vec![0u64; kbpf_bench::native::ENTRIES as usize];
            native_time(|| kbpf_bench::native::lookup_loop(&values) as u64, &mut row);
            rows.push(Row {
                native: row.native,
                name: "array lookup loop (1000 lookups)".into(),
                per: 1.0,
                jit: row.jit,
                interp: row.interp,
                kernel: row.kernel,
                retvals: row.retvals.clone(),
                ..Row::default()
            });
        }
        flavours.push(row);
    }

    println!();
    println!("ns per run (kbpf JIT / kernel JIT < 1.00× means kbpf is faster)");
    println!();
    println!(
        "| program | kbpf JIT | kbpf interp | kernel JIT | rbpf JIT | rbpf interp | native -O2 | kbpf JIT / kernel JIT | kbpf JIT / rbpf JIT | kbpf JIT / native | kernel JIT / native |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt(r.jit, r.per),
            fmt(r.interp, r.per),
            fmt(r.kernel, r.per),
            fmt(r.rbpf_jit, r.per),
            fmt(r.rbpf_interp, r.per),
            fmt(r.native, r.per),
            ratio(r.jit, r.kernel),
            ratio(r.jit, r.rbpf_jit),
            ratio(r.jit, r.native),
            ratio(r.kernel, r.native),
        );
    }
    println!();
    println!("ns per lookup (each program: 1000 lookups in a loop, time / 1000)");
    println!();
    println!("| lookup flavour | kbpf JIT | kbpf interp | kernel JIT | kbpf JIT / kernel JIT |");
    println!("|---|---:|---:|---:|---:|");
    for r in &flavours {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name,
            fmt(r.jit, r.per),
            fmt(r.interp, r.per),
            fmt(r.kernel, r.per),
            ratio(r.jit, r.kernel),
        );
    }
    println!();
    for r in rows.iter().chain(&flavours) {
        let first = r.retvals.first().map(|v| v.1);
        if r.retvals.iter().any(|v| Some(v.1) != first) {
            println!("note: {}: return values differ: {:?}", r.name, r.retvals);
        }
    }
}

//! One table: kbpf's JIT and interpreter, the kernel's JIT (`BPF_PROG_TEST_RUN` with
//! repeat, its reported average `duration`), and rbpf 0.3's JIT and interpreter (programs
//! without maps only), on the same programs and packets.
//!
//! `cargo run --release -p kbpf-bench --example side_by_side [ROW]`: with `ROW`, only the
//! rows whose name contains it (e.g. `parse`), to time one program on its own.
//!
//! kbpf: the translated program (kbpf's verifier + rewrite), `JitProgram::compile_translated`
//! / `Interpreter::new_translated`, timed around the engine call only (a leaf image's
//! function and llvmbpf's compiled function through the same loop, `ns_per_entry_call`): a loop of runs on one
//! `XdpFrame` (the same buffer every run, as the kernel's repeat loop), one epoch pin for the
//! whole loop; median of 9 batches of ~20 ms. Kernel: `bpf_prog_test_run` repeat loop, whose
//! `duration` is the average of `ktime` over the loop (it includes the loop's own per-run
//! cost: `bpf_test_timer` bookkeeping and `bpf_prog_run_xdp`'s dispatch); median of 5 calls
//! of ~50 ms each. rbpf: the same bytecode with a `{ u64 data; u64 data_end; }` context.
//! Native -O2: the same computation in C (`native/limits.c`, gcc/clang -O2 through the `cc`
//! crate) over the packet and a plain array — the limit (Maglev has none: its maps would need
//! a native hash table and LRU, which would measure that implementation instead).
//! LLVM JIT: bpftime's llvmbpf (LLVM's O3 pipeline), the same bytecode and context as rbpf,
//! its compiled function called directly; loaded at run time from the shim
//! `scripts/llvmbpf-build.sh` builds (`$LLVMBPF_OUT`, default `target/llvmbpf`), and only
//! timed when its result equals kbpf's.
//! Columns are skipped (`-`) where an engine cannot run the program (`bpf()` unavailable,
//! rbpf and llvmbpf have no maps here, the llvmbpf shim not built).

use std::path::Path;

use kbpf_bench::llvmbpf::LlvmBpf;
use kbpf_bench::{
    BPF_PROG_TYPE_XDP, Engines, KbpfObject, bench_object, bytecode_programs, load_xdp_insns,
    maglev_kbpf, maglev_packet, maglev_service, ns_per_call, ns_per_entry_call, progs, xdp_form,
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
    /// bpftime's LLVM JIT (llvmbpf).
    llvm: Option<f64>,
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
    row.jit = Some(match e.jit.leaf_entry() {
        // SAFETY: as above; `e` (and so the image) outlives the timing.
        Some(f) => unsafe { ns_per_entry_call(f, ctx, 0, 20.0, 9) },
        None => ns_per_call(
            // SAFETY: as above.
            || unsafe { e.run_jit(ctx) }.unwrap_or(u64::MAX),
            20.0,
            9,
        ),
    });
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

/// bpftime's LLVM JIT on the rbpf form of a program, timed only when its result equals
/// kbpf's JIT's (else the kernel's) result.
fn llvm_times(lib: &LlvmBpf, insns: &[kbpf_isa::Insn], pkt: &[u8], row: &mut Row) {
    let prog = match lib.load(&progs::bytes(insns)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: llvmbpf: {e}", row.name);
            return;
        }
    };
    let pkt = pkt.to_vec();
    let mut ctx = progs::context(&pkt);
    // SAFETY: the program reads only the context and the packet it describes (`pkt`), both
    // alive for every run.
    let r = unsafe { prog.run(&mut ctx) } & 0xffff_ffff;
    let want = row
        .retvals
        .iter()
        .find(|(n, _)| n == "kbpf jit")
        .or_else(|| row.retvals.first())
        .map(|v| v.1);
    row.retvals.push(("llvm jit".into(), r));
    if want.is_some_and(|w| w != r) {
        eprintln!(
            "{}: llvmbpf returned {r:#x}, not {:#x}: not timed",
            row.name,
            want.unwrap_or_default()
        );
        return;
    }
    // SAFETY: as above; `prog` and `ctx` outlive the timing.
    row.llvm = Some(unsafe {
        ns_per_entry_call(
            prog.raw_entry(),
            ctx.as_mut_ptr() as u64,
            ctx.len() as u64,
            20.0,
            9,
        )
    });
}

/// Katran's balancer on one packet: a fresh copy of the packet every run (the program
/// encapsulates it, so a run on its own output would measure another path). kbpf: reset the
/// frame and run, timed together; the kernel: the median `duration` of single-run
/// `BPF_PROG_TEST_RUN` calls (its repeat loop would run on the encapsulated output).
fn katran_times(prog: &Program, kernel: Option<&KernelProg>, pkt: &[u8], row: &mut Row) {
    if let Ok(e) = Engines::new(prog) {
        let mut frame = XdpFrame::new(pkt, 1, 0).expect("packet fits an XDP frame");
        let _guard = kbpf_maps::pin();
        let mut run = |jit: bool| {
            frame.reset(pkt);
            let ctx = frame.ctx_ptr();
            if jit {
                // SAFETY: the program passed kbpf's verifier as XDP; `ctx` is a live frame.
                unsafe { e.run_jit(ctx) }.unwrap_or(u64::MAX)
            } else {
                e.run_interp(ctx).unwrap_or(u64::MAX)
            }
        };
        row.retvals
            .push(("kbpf jit".into(), run(true) & 0xffff_ffff));
        row.jit = Some(ns_per_call(|| run(true), 20.0, 9));
        row.retvals
            .push(("kbpf interp".into(), run(false) & 0xffff_ffff));
        row.interp = Some(ns_per_call(|| run(false), 20.0, 9));
    }
    if let Some(k) = kernel {
        let mut d: Vec<f64> = (0..2001)
            .filter_map(|_| k.test_run(pkt, pkt.len() + 512, None, 1).ok())
            .map(|r| {
                if row.retvals.iter().all(|(n, _)| n != "kernel") {
                    row.retvals.push(("kernel".into(), r.retval as u64));
                }
                r.duration_ns as f64
            })
            .collect();
        if !d.is_empty() {
            d.sort_by(f64::total_cmp);
            row.kernel = Some(d[d.len() / 2]);
        }
    }
}

/// Katran's `balancer.bpf.o` (scripts/katran-build.sh, default features) provisioned as its
/// tester does (`prepare_lb_data`), on its base fixture 2 (TCP to a v4 VIP: IPIP encap,
/// `XDP_TX`), after one run has filled the flow's LRU entry.
fn katran_row(kernel_ok: bool) -> Option<Row> {
    use kbpf_katran::provision::{Lb, apply, prepare_lb_data};
    use kbpf_katran::runner::{KbpfBalancer, KernelBalancer};
    let obj = match kbpf_katran::default_objects() {
        Ok(dir) => dir.join("balancer.bpf.o"),
        Err(e) => {
            eprintln!("Katran row skipped: {e}");
            return None;
        }
    };
    let header =
        kbpf_katran::katran_src().join("katran/lib/testing/fixtures/KatranBaseTestFixtures.h");
    let src = std::fs::read_to_string(&header).ok()?;
    let fixtures = kbpf_katran::fixture::read_fixture_file(&src).ok()?;
    let pkt = fixtures
        .iter()
        .find(|(n, _)| n == "testFixtures")?
        .1
        .get(1)?
        .input
        .clone()
        .ok()?;
    let mut lb = Lb::new().ok()?;
    prepare_lb_data(&mut lb).ok()?;
    let ops = lb.take_ops();
    let mut row = Row {
        name: "Katran balancer (TCP to a v4 VIP, encap, XDP_TX)".into(),
        per: 1.0,
        ..Row::default()
    };
    let mut kb = match KbpfBalancer::load(&obj, kbpf_run::Engine::Jit) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Katran on kbpf: {e}");
            return None;
        }
    };
    apply(&mut kb, &ops).ok()?;
    kb.run(&pkt).ok()?;
    let mut kk = if kernel_ok {
        KernelBalancer::load(&obj).ok()
    } else {
        None
    };
    if let Some(k) = kk.as_mut() {
        apply(k, &ops).ok()?;
        k.run(&pkt).ok()?;
    }
    katran_times(kb.program(), kk.as_ref().map(|k| k.prog()), &pkt, &mut row);
    // The method's own cost per run (frame reset; the kernel's single-run test_run
    // bookkeeping), measured the same way on `r0 = XDP_PASS; exit`, is taken off both.
    let trivial = [
        kbpf_isa::Insn::new(0xb7, 0, 0, 0, 2),
        kbpf_isa::Insn::new(0x95, 0, 0, 0, 0),
    ];
    let mut base = Row::default();
    let kernel_trivial = if kernel_ok {
        KernelProg::load(BPF_PROG_TYPE_XDP, &trivial, "GPL", 0)
            .ok()
            .map(|(p, _)| p)
    } else {
        None
    };
    if let Ok(p) = load_xdp_insns("trivial", &trivial) {
        katran_times(&p, kernel_trivial.as_ref(), &pkt, &mut base);
    }
    let net = |v: Option<f64>, b: Option<f64>| v.map(|v| (v - b.unwrap_or(0.0)).max(0.0));
    println!(
        "Katran per packet without the method's cost per run (kbpf JIT {:?} ns, interp {:?} ns, kernel {:?} ns taken off): kbpf JIT {:.1} ns, kbpf interp {:.0} ns, kernel JIT {:.1} ns",
        base.jit.map(|v| v.round()),
        base.interp.map(|v| v.round()),
        base.kernel,
        net(row.jit, base.jit).unwrap_or(f64::NAN),
        net(row.interp, base.interp).unwrap_or(f64::NAN),
        net(row.kernel, base.kernel).unwrap_or(f64::NAN),
    );
    Some(row)
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

/// The fastest other JIT on a row: the kernel's, rbpf's or LLVM's.
fn best_peer(r: &Row) -> Option<f64> {
    [r.kernel, r.rbpf_jit, r.llvm]
        .into_iter()
        .flatten()
        .min_by(f64::total_cmp)
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
    let llvm = match LlvmBpf::open() {
        Ok(l) => Some(l),
        Err(e) => {
            println!("LLVM JIT column skipped: {e} (build it with scripts/llvmbpf-build.sh)");
            None
        }
    };
    println!("machine: {}", machine());
    let only = std::env::args().nth(1).unwrap_or_default();
    let wanted = |name: &str| name.contains(only.as_str());
    let pkt = progs::packet();
    let mut rows = Vec::new();

    for (name, insns) in bytecode_programs() {
        if !wanted(name) {
            continue;
        }
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
        if let Some(l) = &llvm {
            llvm_times(l, &insns, &pkt, &mut row);
        }
        match name {
            n if n.starts_with("ALU") => native_time(kbpf_bench::native::alu_loop, &mut row),
            n if n.starts_with("FNV") => native_time(|| kbpf_bench::native::fnv1a(&pkt), &mut row),
            _ => native_time(|| kbpf_bench::native::parse_hash(&pkt), &mut row),
        }
        rows.push(row);
    }

    // Maglev datapath, one service, steady state (conntrack hit).
    if wanted("Maglev datapath (CT hit, XDP_TX)") {
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

    if wanted("Katran balancer") {
        rows.extend(katran_row(kernel_ok));
    }

    // The lookup programs: per run, and per lookup.
    let mut flavours = Vec::new();
    for (stem, label) in [
        ("lookup_inline", "inlined array lookup"),
        ("lookup_direct", "BPF_F_INNER_MAP direct call"),
        ("lookup_helper", "generic helper bpf_map_lookup_elem"),
    ] {
        let lookup_loop = stem == "lookup_inline" && wanted("array lookup loop");
        if !(wanted(label) || lookup_loop) {
            continue;
        }
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
        "| program | kbpf JIT | kbpf interp | kernel JIT | rbpf JIT | rbpf interp | LLVM JIT | native -O2 | kbpf JIT / kernel JIT | kbpf JIT / rbpf JIT | kbpf JIT / LLVM JIT | kbpf JIT / best peer | kbpf JIT / native | kernel JIT / native |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt(r.jit, r.per),
            fmt(r.interp, r.per),
            fmt(r.kernel, r.per),
            fmt(r.rbpf_jit, r.per),
            fmt(r.rbpf_interp, r.per),
            fmt(r.llvm, r.per),
            fmt(r.native, r.per),
            ratio(r.jit, r.kernel),
            ratio(r.jit, r.rbpf_jit),
            ratio(r.jit, r.llvm),
            ratio(r.jit, best_peer(r)),
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

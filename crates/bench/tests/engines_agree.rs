//! End-to-end differential tests of kbpf's two engines on *translated* programs: every
//! accepted XDP program of the verifier corpus (`crates/verifier/tests/corpus`), the
//! clang-built objects (including the Maglev datapath with a service installed and the
//! lookup benchmarks), and the bytecode benchmarks, each loaded twice into fresh maps,
//! go through kbpf's verifier and rewrite; one load runs on the interpreter, the other on
//! the JIT, on the same packets in `kbpf_run::ctx::XdpFrame`s. After every run `r0` and the
//! packet (`data_out`) must be equal, and after all runs every map's contents.
#![cfg(all(target_arch = "x86_64", unix))]

#[path = "../../verifier/tests/common/mod.rs"]
mod common;
#[path = "../../verifier/tests/common/kbpf_env.rs"]
mod kbpf_env;

use std::path::Path;

use kbpf_bench::{
    BPF_PROG_TYPE_XDP, Engines, KbpfObject, bench_object, dump_maps, maglev_kbpf, maglev_packet,
    progs, root, xdp_form,
};
use kbpf_maps::Map;
use kbpf_run::Program;
use kbpf_run::ctx::XdpFrame;

/// The packets every program runs on: a 1500-byte TCP segment, the Maglev flow, a
/// minimal 60-byte frame of zeros, a truncated 20-byte frame.
fn packets() -> Vec<Vec<u8>> {
    vec![progs::packet(), maglev_packet(), vec![0; 60], {
        let mut p = progs::packet();
        p.truncate(20);
        p
    }]
}

/// Runs `a` on the interpreter and `b` (the same program, loaded separately) on the JIT;
/// returns how many runs were compared.
fn compare(
    what: &str,
    a: &Program,
    a_maps: &[(String, Map)],
    b: &Program,
    b_maps: &[(String, Map)],
) -> Result<usize, String> {
    // (The two loads differ only in map addresses.)
    assert_eq!(
        a.xlated.insns.len(),
        b.xlated.insns.len(),
        "{what}: loads differ"
    );
    let ea = Engines::new(a)?;
    let eb = Engines::new(b)?;
    let mut runs = 0;
    let _guard = kbpf_maps::pin();
    for (i, pkt) in packets().iter().enumerate() {
        let mut fa = XdpFrame::new(pkt, 1, 0).expect("packet fits");
        let mut fb = XdpFrame::new(pkt, 1, 0).expect("packet fits");
        // Twice on the same buffer, as BPF_PROG_TEST_RUN's repeat does.
        for rep in 0..2 {
            let ra = ea.run_interp(fa.ctx_ptr());
            // SAFETY: the program passed kbpf's verifier for XDP, and the context is a live
            // XdpFrame.
            let rb = unsafe { eb.run_jit(fb.ctx_ptr()) };
            if ra != rb {
                return Err(format!(
                    "{what}: packet {i} run {rep}: interpreter {ra:?}, JIT {rb:?}"
                ));
            }
            if fa.data_out() != fb.data_out() {
                return Err(format!("{what}: packet {i} run {rep}: packets differ"));
            }
            runs += 1;
        }
    }
    if dump_maps(a_maps) != dump_maps(b_maps) {
        return Err(format!("{what}: map contents differ"));
    }
    Ok(runs)
}

/// kbpf's maps for a corpus case (fd = index), and by name.
fn case_maps(case: &common::Case) -> (kbpf_rewrite::MapsEnv, Vec<(String, Map)>) {
    let named = kbpf_env::kbpf_maps(case);
    let mut env = kbpf_rewrite::MapsEnv::new();
    for (i, (_, m)) in named.iter().enumerate() {
        env.insert(i as i32, m.clone());
    }
    (env, named)
}

fn load_case(case: &common::Case) -> Result<(Program, Vec<(String, Map)>), String> {
    let (env, named) = case_maps(case);
    let prog =
        kbpf_loader::LoadedProgram::from_insns(&case.name, case.prog_type, case.insns.clone());
    let p = Program::load(&prog, &env, &kbpf_run::LoadOptions::default(), &[])
        .map_err(|e| format!("{}: {e}", case.name))?;
    Ok((p, named))
}

#[test]
fn verifier_corpus_runs_the_same_on_both_engines() {
    let cases: Vec<_> = common::filtered()
        .into_iter()
        .filter(|c| c.expect == common::Expect::Accept)
        .collect();
    let mut failures = Vec::new();
    let (mut programs, mut runs, mut skipped) = (0, 0, Vec::new());
    for case in &cases {
        if case.prog_type != BPF_PROG_TYPE_XDP {
            // tc and socket-filter programs need an sk_buff context; not covered here.
            skipped.push(case.name.clone());
            continue;
        }
        let (a, am) = match load_case(case) {
            Ok(v) => v,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let (b, bm) = load_case(case).expect("loads once, loads twice");
        match compare(&case.name, &a, &am, &b, &bm) {
            Ok(n) => {
                programs += 1;
                runs += n;
            }
            Err(e) => failures.push(e),
        }
    }
    println!(
        "corpus: {programs} XDP programs, {runs} runs agree; not XDP (skipped): {}",
        skipped.join(", ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        programs >= 20 || std::env::var_os("KBPF_CORPUS_FILTER").is_some(),
        "only {programs} corpus programs ran"
    );
}

fn compare_object(path: &Path, setup: &dyn Fn() -> Result<KbpfObject, String>) -> usize {
    let a = setup().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let b = setup().unwrap();
    let mut n = 0;
    for (pa, pb) in a.programs.iter().zip(&b.programs) {
        if pa.prog_type != kbpf_verifier::ProgType::Xdp {
            continue;
        }
        let what = format!("{}:{}", path.display(), pa.name);
        compare(&what, pa, &a.named_maps(), pb, &b.named_maps()).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    n
}

#[test]
fn clang_objects_run_the_same_on_both_engines() {
    let r = root();
    let mut n = 0;
    for rel in [
        "tests/objects/aom_inner_map.bpf.o",
        "tests/objects/aom_plain.bpf.o",
        "tests/objects/bounded_loop.bpf.o",
        "tests/objects/global_data.bpf.o",
        "tests/golden/disasm/alu.v3.o",
    ] {
        let p = r.join(rel);
        n += compare_object(&p, &|| KbpfObject::load(&p));
    }
    for stem in ["lookup_inline", "lookup_direct", "lookup_helper"] {
        let p = bench_object(stem);
        n += compare_object(&p, &|| KbpfObject::load(&p));
    }
    let maglev = Path::new(kbpf_maglev::OBJECT_PATH);
    n += compare_object(maglev, &maglev_kbpf);
    assert!(n >= 9, "only {n} programs compared");
}

#[test]
fn maglev_forwards_the_benchmark_flow() {
    let obj = maglev_kbpf().unwrap();
    let prog = obj.program("maglev_xdp").expect("maglev_xdp");
    let e = Engines::new(prog).unwrap();
    let mut f = XdpFrame::new(&maglev_packet(), 1, 0).unwrap();
    let _guard = kbpf_maps::pin();
    for _ in 0..3 {
        // SAFETY: verified XDP program, live frame.
        let r0 = unsafe { e.run_jit(f.ctx_ptr()) }.unwrap();
        assert_eq!(r0, kbpf_maglev::abi::XDP_TX as u64);
    }
}

#[test]
fn bytecode_benchmarks_run_the_same_on_both_engines() {
    let pkt = progs::packet();
    let want = [
        progs::alu_loop_native(),
        progs::fnv1a_native(&pkt),
        progs::parse_hash_native(&pkt),
    ];
    for ((name, insns), want) in kbpf_bench::bytecode_programs().into_iter().zip(want) {
        let insns = xdp_form(&insns);
        let a = kbpf_bench::load_xdp_insns(name, &insns).unwrap();
        let b = kbpf_bench::load_xdp_insns(name, &insns).unwrap();
        compare(name, &a, &[], &b, &[]).unwrap();
        // And they compute what the native references say.
        let e = Engines::new(&a).unwrap();
        let mut f = XdpFrame::new(&pkt, 1, 0).unwrap();
        // SAFETY: verified XDP program, live frame.
        assert_eq!(unsafe { e.run_jit(f.ctx_ptr()) }, Ok(want), "{name}");
    }
}

/// The three lookup benchmarks have the intended translated form (bpftool's xlated text):
/// inlined array lookup (no call), direct `array_map_lookup_elem`, generic
/// `bpf_map_lookup_elem`.
#[test]
fn lookup_flavours_have_the_intended_form() {
    let dump = |stem: &str| {
        let obj = KbpfObject::load(&bench_object(stem)).unwrap();
        obj.programs[0].dump_xlated(&kbpf_rewrite::xlated::DumpOptions::default())
    };
    let calls = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once("call ").map(|(_, c)| c.trim().to_string()))
            .collect()
    };
    let inline = dump("lookup_inline");
    assert!(calls(&inline).is_empty(), "inlined:\n{inline}");
    let direct = dump("lookup_direct");
    let c = calls(&direct);
    assert!(
        c.iter().any(|c| c.starts_with("array_map_lookup_elem")),
        "direct:\n{direct}"
    );
    assert!(
        !c.iter().any(|c| c.starts_with("bpf_map_lookup_elem")),
        "direct:\n{direct}"
    );
    let helper = dump("lookup_helper");
    assert_eq!(
        calls(&helper)
            .iter()
            .filter(|c| c.starts_with("bpf_map_lookup_elem"))
            .count(),
        1,
        "helper:\n{helper}"
    );
}

//! Katran's own fixtures on kbpf's interpreter, kbpf's JIT and the live kernel
//! (`BPF_PROG_TEST_RUN`), provisioned as Katran's tester provisions them. kbpf must equal
//! the kernel wherever the kernel run succeeds; agreement with Katran's expectation is
//! counted and printed per fixture file.

use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_katran::fixture::{Fixture, read_fixture_file};
use kbpf_katran::provision::{Lb, Sink, prepare_lb_data, prepare_vip_uninitialized_lb_data};
use kbpf_katran::runner::{KbpfBalancer, KernelBalancer, RunOut};
use kbpf_katran::{katran_src, repo_root};
use kbpf_run::Engine;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(why: &str) {
    if ci() {
        panic!("katran fixtures cannot run under CI=true: {why}");
    }
    println!("SKIP: {why}");
}

/// `scripts/katran-build.sh`: the directory of the built objects, or why not.
fn build_objects() -> Result<PathBuf, String> {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/katran-build.sh"))
        .env("KBPF_KATRAN_SRC", katran_src())
        .output()
        .map_err(|e| format!("scripts/katran-build.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/katran-build.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn fixtures_dir() -> PathBuf {
    katran_src().join("katran/lib/testing/fixtures")
}

/// Every fixture header parses, and every packet either builds or names why it cannot.
#[test]
fn every_fixture_file_parses() {
    let dir = fixtures_dir();
    if !dir.is_dir() {
        skip(&format!("{} missing", dir.display()));
        return;
    }
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    names.sort();
    let mut total = 0;
    for path in names {
        let src = std::fs::read_to_string(&path).expect("read fixture file");
        let vectors = read_fixture_file(&src)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (name, fx) in &vectors {
            let built = fx.iter().filter(|f| f.input.is_ok() && f.expected_output.is_ok()).count();
            println!(
                "{}: {name}: {} fixtures, {built} with both packets built",
                path.file_name().unwrap().to_string_lossy(),
                fx.len()
            );
            for f in fx {
                for (what, r) in [("input", &f.input), ("expected output", &f.expected_output)] {
                    if let Err(e) = r {
                        println!("  #{} {}: {what} not built: {e}", f.index, f.description);
                    }
                }
            }
            total += fx.len();
        }
    }
    assert!(total > 0, "no fixtures found");
}

#[derive(Default)]
struct Counts {
    total: usize,
    not_built: usize,
    kernel_ran: usize,
    interp_eq_kernel: usize,
    jit_eq_kernel: usize,
    kernel_eq_katran: usize,
    interp_eq_katran: usize,
    jit_eq_katran: usize,
}

fn code(r: u32) -> &'static str {
    match r {
        0 => "XDP_ABORTED",
        1 => "XDP_DROP",
        2 => "XDP_PASS",
        3 => "XDP_TX",
        4 => "XDP_REDIRECT",
        _ => "UNKNOWN",
    }
}

fn matches_katran(out: &RunOut, f: &Fixture) -> bool {
    code(out.retval) == f.expected_return
        && f.expected_output.as_ref().is_ok_and(|e| *e == out.data)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Provisions `sink` with `prepare` on a fresh control plane.
fn provision<S: Sink>(
    sink: &mut S,
    prepare: fn(&mut Lb<'_, S>) -> Result<(), String>,
) -> Result<(), String> {
    let mut lb = Lb::new(sink)?;
    prepare(&mut lb)
}

fn base_prepare<S: Sink>(lb: &mut Lb<'_, S>) -> Result<(), String> {
    prepare_lb_data(lb)?;
    prepare_vip_uninitialized_lb_data(lb)
}

/// Runs `fixtures` in order on all three, each provisioned by `prepare`.
fn run_file(
    label: &str,
    object: &Path,
    fixtures: &[Fixture],
    prepare_kbpf: fn(&mut Lb<'_, KbpfBalancer>) -> Result<(), String>,
    prepare_kernel: fn(&mut Lb<'_, KernelBalancer>) -> Result<(), String>,
    kernel_ok: bool,
) -> (Counts, Vec<String>) {
    let mut interp = KbpfBalancer::load(object, Engine::Interpreter).expect("kbpf load");
    let mut jit = KbpfBalancer::load(object, Engine::Jit).expect("kbpf load (JIT)");
    provision(&mut interp, prepare_kbpf).expect("provision kbpf interpreter");
    provision(&mut jit, prepare_kbpf).expect("provision kbpf JIT");
    let mut kernel = if kernel_ok {
        let mut k = KernelBalancer::load(object).expect("kernel load");
        provision(&mut k, prepare_kernel).expect("provision kernel");
        Some(k)
    } else {
        None
    };
    let mut c = Counts::default();
    let mut mismatches = Vec::new();
    for f in fixtures {
        c.total += 1;
        let input = match &f.input {
            Ok(p) => p,
            Err(e) => {
                c.not_built += 1;
                println!("{label} #{} {}: input not built: {e}", f.index, f.description);
                continue;
            }
        };
        let i = interp.run(input);
        let j = jit.run(input);
        let k = kernel.as_mut().map(|k| k.run(input));
        let show = |r: &Result<RunOut, String>| match r {
            Ok(o) => format!("{} {}", code(o.retval), hex(&o.data)),
            Err(e) => format!("error: {e}"),
        };
        let mut line = format!("{label} #{} {}:", f.index, f.description);
        if let Some(Ok(ko)) = &k {
            c.kernel_ran += 1;
            let ie = i.as_ref().is_ok_and(|o| o == ko);
            let je = j.as_ref().is_ok_and(|o| o == ko);
            c.interp_eq_kernel += usize::from(ie);
            c.jit_eq_kernel += usize::from(je);
            c.kernel_eq_katran += usize::from(matches_katran(ko, f));
            if !ie || !je {
                mismatches.push(format!(
                    "{line}\n  kernel: {}\n  interp: {}\n  jit:    {}",
                    show(&Ok(ko.clone())),
                    show(&i),
                    show(&j)
                ));
            }
        } else if let Some(Err(e)) = &k {
            line.push_str(&format!(" kernel run failed: {e};"));
        }
        let ik = i.as_ref().is_ok_and(|o| matches_katran(o, f));
        let jk = j.as_ref().is_ok_and(|o| matches_katran(o, f));
        c.interp_eq_katran += usize::from(ik);
        c.jit_eq_katran += usize::from(jk);
        if !ik {
            println!(
                "{line} differs from Katran's expectation\n  expected: {} {}\n  kbpf:     {}",
                f.expected_return,
                f.expected_output.as_ref().map_or_else(|e| format!("(not built: {e})"), |p| hex(p)),
                show(&i)
            );
        }
    }
    (c, mismatches)
}

fn report(label: &str, c: &Counts) {
    println!(
        "{label}: {} fixtures ({} not built); kernel ran {}; interpreter = kernel {}, JIT = kernel {}; \
         = Katran's expectation: kernel {}, interpreter {}, JIT {}",
        c.total,
        c.not_built,
        c.kernel_ran,
        c.interp_eq_kernel,
        c.jit_eq_kernel,
        c.kernel_eq_katran,
        c.interp_eq_katran,
        c.jit_eq_katran
    );
}

fn read_vector(file: &str, vector: &str) -> Vec<Fixture> {
    let src = std::fs::read_to_string(fixtures_dir().join(file)).expect("read fixture file");
    read_fixture_file(&src)
        .expect("parse fixture file")
        .into_iter()
        .find(|(n, _)| n == vector)
        .unwrap_or_else(|| panic!("{file}: no vector {vector}"))
        .1
}

/// `KatranBaseTestFixtures.h` (`testFixtures`), provisioned by `prepareLbData` and
/// `prepareVipUninitializedLbData`, as `katran_tester --test_from_fixtures` runs it.
#[test]
fn base_fixtures() {
    if !fixtures_dir().is_dir() {
        skip(&format!("{} missing", fixtures_dir().display()));
        return;
    }
    let objs = match build_objects() {
        Ok(d) => d,
        Err(e) => {
            skip(&e);
            return;
        }
    };
    let object = objs.join("balancer.bpf.o");
    let kernel_ok = match kbpf_kernel::bpf_available() {
        Ok(()) => true,
        Err(e) => {
            skip(&format!("kernel side: bpf() unavailable: {e}"));
            false
        }
    };
    let fixtures = read_vector("KatranBaseTestFixtures.h", "testFixtures");
    let (c, mismatches) = run_file(
        "KatranBaseTestFixtures.h",
        &object,
        &fixtures,
        base_prepare,
        base_prepare,
        kernel_ok,
    );
    report("KatranBaseTestFixtures.h", &c);
    assert!(
        mismatches.is_empty(),
        "kbpf differs from the kernel on {} fixtures:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    if kernel_ok {
        assert_eq!(c.kernel_ran + c.not_built, c.total, "every built fixture runs on the kernel");
    }
}

//! xlated golden files: every accepted program of the verifier corpus
//! (`crates/verifier/tests/corpus/*.txt`) goes through kbpf's verifier and rewrite, and its
//! `xlated` text must equal what `bpftool prog dump xlated` printed for the same program on
//! the live kernel (`tests/xlated/<case>.xlated`), after normalising map ids and call
//! immediates only. Where `bpf()` works, the kernel is asked again and must still print the
//! golden text, so the goldens cannot go stale. `KBPF_BLESS=1` rewrites them from the kernel.

#[path = "../../verifier/tests/common/mod.rs"]
mod common;
#[path = "../../verifier/tests/common/kbpf_env.rs"]
mod kbpf_env;

use std::path::PathBuf;

use common::{Case, Expect};
use kbpf_kernel::KernelProg;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/xlated")
}

/// Loads `case` into the kernel and returns `bpftool prog dump xlated id N`.
fn kernel_xlated(case: &Case) -> Result<String, String> {
    let (_maps, insns) = common::kernel_maps_and_insns(case)?;
    let (prog, _log) = KernelProg::load(case.prog_type, &insns, "GPL", 0)
        .map_err(|e| format!("kernel load: {e}"))?;
    let out = std::process::Command::new("bpftool")
        .args(["prog", "dump", "xlated", "id", &prog.id().to_string()])
        .output()
        .map_err(|e| format!("bpftool: {e}"))?;
    if !out.status.success() {
        return Err(format!("bpftool: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn accepted() -> Vec<Case> {
    common::filtered()
        .into_iter()
        .filter(|c| c.expect == Expect::Accept)
        .collect()
}

#[test]
fn kernel_still_prints_the_goldens() {
    if !kbpf_kernel::bpf_available_or_skip("run xlated_corpus (kernel half)") {
        return;
    }
    if std::process::Command::new("bpftool")
        .arg("version")
        .output()
        .is_err()
    {
        println!("SKIP: run xlated_corpus (kernel half): bpftool not installed");
        return;
    }
    let bless = std::env::var_os("KBPF_BLESS").is_some();
    let mut failures = Vec::new();
    for case in accepted() {
        let text = match kernel_xlated(&case) {
            Ok(t) => kbpf_rewrite::xlated::normalize(&t),
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        let path = golden_dir().join(format!("{}.xlated", case.name));
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        if golden != text {
            failures.push(format!(
                "{}: kernel prints\n{text}\ngolden {} has\n{golden}",
                case.name,
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// kbpf's `prog dump xlated` of a case.
pub fn kbpf_xlated(case: &Case) -> Result<String, String> {
    let env = kbpf_env::kbpf_env(case);
    let prog =
        kbpf_loader::LoadedProgram::from_insns(&case.name, case.prog_type, case.insns.clone());
    let p = kbpf_run::Program::load(&prog, &env, &kbpf_run::LoadOptions::default(), &[])
        .map_err(|e| format!("{e}\n{}", e.log().unwrap_or("")))?;
    let opts = kbpf_rewrite::xlated::DumpOptions {
        dialect: kbpf_isa::disasm::Dialect::Bpftool71,
        ..Default::default()
    };
    Ok(p.dump_xlated(&opts))
}

#[test]
fn kbpf_prints_the_goldens() {
    let cases = accepted();
    assert!(
        cases.len() >= 30 || std::env::var_os("KBPF_CORPUS_FILTER").is_some(),
        "the corpus shrank to {} accepted programs",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let path = golden_dir().join(format!("{}.xlated", case.name));
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with KBPF_BLESS=1 as root)", path.display()));
        match kbpf_xlated(case) {
            Ok(text) => {
                let text = kbpf_rewrite::xlated::normalize(&text);
                if text != golden {
                    failures.push(format!(
                        "{}:\n--- kernel\n{golden}--- kbpf\n{text}",
                        case.name
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

//! Kernel-differential corpus test: every `tests/corpus/*.txt` program is loaded into the live
//! kernel (maps created, fds patched in) and the kernel's verdict and log must match the
//! file's expectation, expanded with the live kernel's profile (`kbpf_kernel::host_profile`:
//! where builds differ, the probed behaviour decides which form is expected) — so the expectations are the kernel's truth, and the kbpf corpus test
//! holds kbpf to the same lines. Skips (with a printed reason) where `bpf()` is unavailable.
//!
//! `KBPF_CORPUS_FILTER=name` limits the run; `KBPF_SHOW_LOG=1` prints the kernel's log.

mod common;

use common::{Case, Expect};
use kbpf_kernel::KernelProg;

fn run_kernel(case: &Case) -> Result<(bool, String), String> {
    let (_maps, insns) = common::kernel_maps_and_insns(case)?;
    let level = if std::env::var_os("KBPF_SHOW_LOG").is_some() {
        2
    } else {
        1
    };
    match KernelProg::load(case.prog_type, &insns, "GPL", level) {
        Ok((_prog, log)) => Ok((true, log)),
        Err(e) if e.errno().is_some() => Ok((false, e.log().to_owned())),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn corpus_matches_kernel() {
    let Some(host) = kbpf_kernel::host_profile_or_skip("verifier kernel_corpus") else {
        return;
    };
    let cases = common::filtered();
    let mut failures = Vec::new();
    let mut matched = 0;
    for case in &cases {
        let (accepted, log) = match run_kernel(case) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        if std::env::var_os("KBPF_SHOW_LOG").is_some() {
            println!(
                "==== {} (kernel {}) ====\n{log}",
                case.name,
                if accepted { "accept" } else { "reject" }
            );
        }
        let mut problems = Vec::new();
        if accepted != (case.expect == Expect::Accept) {
            problems.push(format!(
                "kernel verdict {}",
                if accepted { "accept" } else { "reject" }
            ));
        }
        let want = case.expected(&host.verifier);
        for want in want.error.iter().chain(&want.log).chain(&want.kernel_log) {
            if !log.lines().any(|l| l.contains(want.as_str())) {
                problems.push(format!("kernel log lacks `{want}`"));
            }
        }
        if problems.is_empty() {
            matched += 1;
        } else {
            failures.push(format!(
                "{}: {}\n--- kernel log ---\n{log}",
                case.name,
                problems.join("; ")
            ));
        }
    }
    println!(
        "kernel corpus: {matched}/{} match the expectations",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

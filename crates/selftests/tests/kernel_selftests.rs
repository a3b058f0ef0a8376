//! The kernel's verifier selftests (Linux 6.12 `progs/verifier_*.c`) as kbpf's verifier
//! suite: every program verified by kbpf and by the running kernel, compared per program and
//! against the tests' own BTF-tag expectations (see the crate docs).
//!
//! A ratchet: the test fails on any NEW soundness mismatch (kbpf accepts what the kernel
//! rejects; the known ones are listed in `selftests_known_soundness.txt`), on any NEW test
//! whose own expectations the kernel meets and kbpf does not (`selftests_expectation_gaps.txt`)
//! and when the number of same verdicts drops below `selftests_baseline.txt`. It prints what
//! improved so the files can be tightened. It also runs `kbpf veristat` against the tree's
//! veristat over the same objects and asserts they agree on the instructions processed for
//! at least 80% of the programs both accept.
//!
//! `KBPF_SELFTESTS_REPORT=docs/selftests.md` writes the report there (it is always written
//! to `$KBPF_SELFTESTS_DIR/report.md`, with every row in `results.jsonl`). Skips (a
//! failure under `CI=true`) where clang-19, the `linux-source-6.12` package or `bpf()` are
//! missing.

use std::path::Path;

use kbpf_selftests::artifacts::{self, Unavailable};
use kbpf_selftests::veristat::Comparison;
use kbpf_selftests::{Suite, gaps, read_list};

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("kernel_selftests: cannot run under CI=true: {why}");
    }
    println!("SKIP: kernel_selftests: {why}");
}

fn crate_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// `key=value` lines.
fn read_baseline(path: &Path) -> std::collections::BTreeMap<String, usize> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn kernel_verifier_selftests() {
    let start = std::time::Instant::now();
    let Some(profile) = kbpf_kernel::host_profile_or_skip("kernel_selftests") else {
        return;
    };
    let dir = artifacts::default_dir();
    let built = match artifacts::ensure(&dir) {
        Ok(a) => a,
        Err(Unavailable::Missing(why)) => return skip(&why),
        Err(e @ Unavailable::Failed(_)) => panic!("scripts/selftests.sh: {e}"),
    };
    print!("{}", built.script_output);
    let build_time = start.elapsed();
    let opts = kbpf_run::LoadOptions {
        profile,
        ..Default::default()
    };
    let suite = Suite::run(built, &opts);

    // `kbpf veristat` against the tree's veristat over the same objects.
    let comparison = match &suite.artifacts.veristat {
        Ok(veristat) => {
            let objects: Vec<_> = suite
                .artifacts
                .sources
                .iter()
                .filter_map(|s| s.object(&suite.artifacts))
                .collect();
            Some(
                Comparison::run(veristat, &objects, &suite.artifacts.dir)
                    .expect("kbpf veristat against veristat"),
            )
        }
        Err(why) => {
            skip(&format!("the veristat comparison: {why}"));
            None
        }
    };
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };

    let mut report = suite.markdown();
    if let Some(c) = &comparison {
        report.push_str(&c.markdown(build));
        println!(
            "selftests: veristat timing ({build} kbpf):\n{}",
            c.timing_table(build)
        );
    }
    std::fs::write(suite.artifacts.dir.join("report.md"), &report).expect("report.md");
    std::fs::write(suite.artifacts.dir.join("results.jsonl"), suite.jsonl())
        .expect("results.jsonl");
    if let Some(path) = std::env::var_os("KBPF_SELFTESTS_REPORT") {
        std::fs::write(&path, &report).expect("KBPF_SELFTESTS_REPORT");
        println!(
            "selftests: report written to {}",
            Path::new(&path).display()
        );
    }
    let totals = suite.totals();
    println!("{}", suite.summary_line());
    println!(
        "selftests: build {:.1} s, kernel {:.1} s, kbpf {:.1} s, total {:.1} s; rows in {}",
        build_time.as_secs_f64(),
        suite.kernel_time.as_secs_f64(),
        suite.kbpf_time.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        suite.artifacts.dir.join("results.jsonl").display()
    );

    // Nothing may go unmeasured: every compiled object's programs reached both sides.
    assert!(
        suite.errors.is_empty(),
        "objects not measured: {:?}",
        suite.errors
    );
    assert!(totals.programs > 1000, "only {} programs", totals.programs);

    // Ratchet 1: no new soundness mismatch.
    let known: std::collections::BTreeSet<String> =
        read_list(&crate_file("selftests_known_soundness.txt"))
            .into_iter()
            .collect();
    let now = suite.unsound();
    let new: Vec<&String> = now.iter().filter(|k| !known.contains(*k)).collect();
    let fixed: Vec<&String> = known.iter().filter(|k| !now.contains(k)).collect();
    if !fixed.is_empty() {
        println!(
            "selftests: no longer soundness mismatches (remove from \
             crates/selftests/selftests_known_soundness.txt): {fixed:?}"
        );
    }
    let details: Vec<String> = suite
        .rows
        .iter()
        .filter(|r| new.contains(&&r.key()))
        .map(|r| format!("{} (kernel: {})", r.key(), r.kernel.error_line))
        .collect();
    assert!(
        new.is_empty(),
        "NEW soundness mismatches (kbpf accepts, the kernel rejects): {details:#?}"
    );

    // Ratchet 2: every test whose expectations the kernel meets and kbpf does not is a
    // known one (issue #13: they must hold on kbpf wherever they hold on the kernel).
    let known: std::collections::BTreeSet<String> =
        read_list(&crate_file("selftests_expectation_gaps.txt"))
            .into_iter()
            .collect();
    let now = gaps::keys(suite.rows.iter());
    let closed: Vec<&String> = known.iter().filter(|k| !now.contains(k)).collect();
    if !closed.is_empty() {
        println!(
            "selftests: expectations now met (remove from \
             crates/selftests/selftests_expectation_gaps.txt): {closed:?}"
        );
    }
    let new: Vec<String> = suite
        .rows
        .iter()
        .filter(|r| r.expectation_gap() && !known.contains(&r.key()))
        .map(|r| format!("{}: {}", r.key(), gaps::cause(r)))
        .collect();
    assert!(
        new.is_empty(),
        "NEW tests whose expectations the kernel meets and kbpf does not: {new:#?}"
    );

    // Ratchet 3: the same-verdict count does not drop.
    let baseline = read_baseline(&crate_file("selftests_baseline.txt"));
    let base = baseline.get("same_verdict").copied().unwrap_or(0);
    if totals.same_verdict > base {
        println!(
            "selftests: same verdict {} > baseline {base}: raise same_verdict in \
             crates/selftests/selftests_baseline.txt",
            totals.same_verdict
        );
    }
    assert!(
        totals.same_verdict >= base,
        "same verdict dropped: {} < baseline {base}",
        totals.same_verdict
    );

    // `kbpf veristat` and veristat agree on the instructions processed for at least 80% of
    // the programs both accept.
    if let Some(c) = comparison {
        let t = c.totals();
        println!(
            "selftests: veristat: {} programs, same verdict {}, both accept {}, same total_insns \
             {} ({:.1}%)",
            t.programs,
            t.same_verdict,
            t.both_accept,
            t.same_insns,
            100.0 * t.same_insns as f64 / t.both_accept.max(1) as f64
        );
        assert!(
            t.both_accept > 500,
            "only {} accepted by both",
            t.both_accept
        );
        assert!(
            t.same_insns * 5 >= t.both_accept * 4,
            "kbpf veristat and veristat agree on total_insns for {} of {} accepted programs \
             (< 80%)",
            t.same_insns,
            t.both_accept
        );
    }
}

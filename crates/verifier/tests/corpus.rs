//! The corpus on kbpf's verifier: every `tests/corpus/*.txt` program must get the expected
//! verdict and its log must contain the expected lines (the kernel's message). The same files
//! are checked against the live kernel by `kernel_corpus.rs`.
//!
//! `KBPF_CORPUS_FILTER=name` limits the run; `KBPF_SHOW_LOG=1` prints kbpf's log.

mod common;

use common::{Case, Expect};
use kbpf_verifier::{MapDesc, Options, ProgType, verify};

/// The maps of a case as a kbpf environment (fd = index), templates copied into the outers'
/// `inner_meta` as the kernel's `bpf_map_meta_alloc` does.
pub fn env_of(case: &Case) -> Vec<MapDesc> {
    let mut out: Vec<MapDesc> = Vec::new();
    for (i, m) in case.maps.iter().enumerate() {
        let inner_meta = m.inner.map(|t| {
            let mut meta = out[t].clone();
            meta.name.clear();
            meta.id = 0;
            Box::new(meta)
        });
        out.push(MapDesc {
            id: i as u32 + 1,
            name: m.name.clone(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            inner_meta,
            frozen_value: None,
        });
    }
    out
}

#[test]
fn corpus_on_kbpf() {
    let cases = common::filtered();
    assert!(cases.len() >= 40 || std::env::var_os("KBPF_CORPUS_FILTER").is_some());
    let mut failures = Vec::new();
    for case in &cases {
        let env = env_of(case);
        let Some(pt) = ProgType::from_u32(case.prog_type) else {
            failures.push(format!("{}: unsupported prog type", case.name));
            continue;
        };
        let level = if std::env::var_os("KBPF_SHOW_LOG").is_some() {
            2
        } else {
            1
        };
        let v = verify(&case.insns, &env, &Options::new(pt).log_level(level));
        if std::env::var_os("KBPF_SHOW_LOG").is_some() {
            println!(
                "==== {} (kbpf {}) ====\n{}",
                case.name,
                if v.accepted() { "accept" } else { "reject" },
                v.log
            );
        }
        let mut problems = Vec::new();
        if v.accepted() != (case.expect == Expect::Accept) {
            problems.push(format!(
                "kbpf verdict {}",
                if v.accepted() { "accept" } else { "reject" }
            ));
        }
        for want in case.error.iter().chain(&case.log) {
            if !v.log.lines().any(|l| l.contains(want.as_str())) {
                problems.push(format!("kbpf log lacks `{want}`"));
            }
        }
        if let Some(e) = &case.error
            && let Err(err) = &v.result
            && !err.message.contains(e.as_str())
            && !v.log.contains(e.as_str())
        {
            problems.push(format!("error message `{}`", err.message));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- kbpf log ---\n{}",
                case.name,
                problems.join("; "),
                v.log
            ));
        }
    }
    println!(
        "kbpf corpus: {}/{} as expected",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

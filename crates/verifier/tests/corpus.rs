//! The corpus on kbpf's verifier: every `tests/corpus/*.txt` program must get the expected
//! verdict and its log must contain the expected lines (the kernel's message). The same files
//! are checked against the live kernel by `kernel_corpus.rs`.
//!
//! `KBPF_CORPUS_FILTER=name` limits the run; `KBPF_SHOW_LOG=1` prints kbpf's log.

mod common;

use common::{Case, Expect};
use kbpf_verifier::{InnerMapLookup, MapDesc, Options, ProgType, VerifierBehaviour, verify};

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
            spin_lock_off: None,
            timer_off: None,
        });
    }
    out
}

/// The built-in verifier behaviour and each recorded kernel build's (`tests/profiles/`): every
/// corpus case must give what a kernel with that behaviour gives (the kernel test checks the
/// live one). Between them they cover both types of an outer map-in-map lookup.
fn behaviours() -> Vec<VerifierBehaviour> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/profiles");
    let mut v = vec![VerifierBehaviour::BUILTIN];
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/profiles")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let p = kbpf_profile::KernelProfile::from_json_file(f.to_str().unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        if !v.contains(&p.verifier) {
            v.push(p.verifier);
        }
    }
    for kind in [InnerMapLookup::MapValue, InnerMapLookup::MapPtr] {
        assert!(
            v.iter().any(|b| b.inner_map_lookup == kind),
            "no recorded profile with {kind:?}"
        );
    }
    v
}

#[test]
fn corpus_on_kbpf() {
    let cases = common::filtered();
    assert!(cases.len() >= 40 || std::env::var_os("KBPF_CORPUS_FILTER").is_some());
    let dependent = cases.iter().filter(|c| c.profile_dependent()).count();
    assert!(
        dependent >= 2 || std::env::var_os("KBPF_CORPUS_FILTER").is_some(),
        "the corpus should cover the inner-map lookup type"
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    for kernel in behaviours() {
        for case in &cases {
            // Cases whose expectations are the same under both behaviours run once.
            if kernel != VerifierBehaviour::BUILTIN && !case.profile_dependent() {
                continue;
            }
            runs += 1;
            if let Some(f) = check_case(case, kernel) {
                failures.push(f);
            }
        }
    }
    println!(
        "kbpf corpus: {}/{runs} as expected ({} cases, {dependent} checked under both inner-map lookup types)",
        runs - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check_case(case: &Case, kernel: VerifierBehaviour) -> Option<String> {
    let want = case.expected(&kernel);
    let env = env_of(case);
    let Some(pt) = ProgType::from_u32(case.prog_type) else {
        return Some(format!("{}: unsupported prog type", case.name));
    };
    let level = if std::env::var_os("KBPF_SHOW_LOG").is_some() {
        2
    } else {
        1
    };
    let v = verify(
        &case.insns,
        &env,
        &Options::new(pt).log_level(level).kernel(kernel),
    );
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
    for line in want.error.iter().chain(&want.log) {
        if !v.log.lines().any(|l| l.contains(line.as_str())) {
            problems.push(format!("kbpf log lacks `{line}`"));
        }
    }
    if let Some(e) = &want.error
        && let Err(err) = &v.result
        && !err.message.contains(e.as_str())
        && !v.log.contains(e.as_str())
    {
        problems.push(format!("error message `{}`", err.message));
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{} ({}): {}\n--- kbpf log ---\n{}",
        case.name,
        kernel.inner_map_lookup.type_name(),
        problems.join("; "),
        v.log
    ))
}

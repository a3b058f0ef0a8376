//! The tests whose own expectations (verdict, `__msg`s in order, `__retval`) the live kernel
//! meets and kbpf does not — issue #13's "the expectations hold on kbpf wherever they hold on
//! the live kernel" — and the cause of each, for the report and the ratchet
//! (`selftests_expectation_gaps.txt`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::{Expectation, ProgramRow, md_cell};

/// Why kbpf misses an expectation the kernel meets.
pub fn cause(r: &ProgramRow) -> String {
    let Some(e) = r.kbpf_expectation() else {
        return "not a privileged test".into();
    };
    match e {
        Expectation::Met | Expectation::Unavailable => "met".into(),
        Expectation::WrongVerdict if r.kbpf.accepted => {
            "verdict: kbpf accepts, `__failure` expected".into()
        }
        Expectation::WrongVerdict if !r.kbpf_verified() => {
            "verdict: kbpf rejects before its verifier (object, map or program type)".into()
        }
        Expectation::WrongVerdict => "verdict: kbpf's verifier rejects a `__success` test".into(),
        Expectation::MissingMsg(m) => msg_cause(r, &m),
        Expectation::WrongRetval(m) => retval_cause(&m),
    }
}

/// A missing `__msg`: what kind of log line it is.
fn msg_cause(r: &ProgramRow, missing: &str) -> String {
    if !r.kbpf.accepted && r.kbpf.message.trim() != r.kernel.error_line.trim() {
        return "`__msg`: kbpf rejects with another message".into();
    }
    let m = missing;
    if m.contains("mark_precise") || m.contains("regs=") || m.contains("propagating") {
        "`__msg`: precision backtracking log (`mark_precise: …`) at level 2".into()
    } else if m.contains(": safe") {
        "`__msg`: state pruning log (`N: safe`) at level 2".into()
    } else if m.contains("stack depth") {
        "`__msg`: `stack depth` line of the statistics (log level 4)".into()
    } else if m.contains("processed ") {
        "`__msg`: instructions processed differ".into()
    } else if m.contains("fp-") || m.contains("=scalar") || m.contains("R0=") {
        "`__msg`: register/stack state line (print_verifier_state format)".into()
    } else {
        "`__msg`: another log line".into()
    }
}

/// A failed or wrong test run.
fn retval_cause(m: &str) -> String {
    if let Some(at) = m.find("does not implement helper ") {
        let helper = m[at + "does not implement helper ".len()..]
            .split('#')
            .next()
            .unwrap_or_default();
        format!("`__retval`: helper `{helper}` not implemented at run time")
    } else if m.contains("context field") || m.contains("__sk_buff field") {
        let ty = m
            .split("of program type ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or("");
        if ty.is_empty() {
            "`__retval`: a context field kbpf's rewrite does not convert".into()
        } else {
            format!("`__retval`: context of program type {ty} not converted at run time")
        }
    } else if m.contains("map '") || m.contains("XSKMAP") {
        "`__retval`: a map type kbpf cannot run".into()
    } else if m.contains("ld_abs") {
        "`__retval`: legacy `ld_abs`/`ld_ind` at run time".into()
    } else if m.contains("test run:") {
        "`__retval`: kbpf cannot test_run this program type".into()
    } else if m.starts_with("retval ") {
        "`__retval`: another return value (a helper's run-time result)".into()
    } else {
        format!("`__retval`: {m}")
    }
}

/// The gaps, `file/program` sorted.
pub fn keys<'a>(rows: impl Iterator<Item = &'a ProgramRow>) -> Vec<String> {
    let mut v: Vec<String> = rows
        .filter(|r| r.expectation_gap())
        .map(|r| r.key())
        .collect();
    v.sort();
    v
}

/// The report's section: the gaps by cause, largest first, each with its tests.
pub fn markdown<'a>(rows: impl Iterator<Item = &'a ProgramRow>) -> String {
    let mut by: BTreeMap<String, Vec<&ProgramRow>> = BTreeMap::new();
    for r in rows.filter(|r| r.expectation_gap()) {
        by.entry(cause(r)).or_default().push(r);
    }
    let mut by: Vec<_> = by.into_iter().collect();
    by.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Expectations the kernel meets and kbpf does not, by cause\n\n\
         The Done-when set: tests whose verdict, `__msg`s and `__retval` hold on the running \
         kernel but not on kbpf (the ratchet `crates/selftests/selftests_expectation_gaps.txt` \
         lists them; a test not listed fails the suite).\n"
    );
    let _ = writeln!(s, "| cause | tests |\n|---|---:|");
    for (c, v) in &by {
        let _ = writeln!(s, "| {c} | {} |", v.len());
    }
    let _ = writeln!(s);
    for (c, v) in &by {
        let _ = writeln!(s, "<details><summary>{} ({})</summary>\n", c, v.len());
        for r in v {
            let why = match r.kbpf_expectation() {
                Some(Expectation::MissingMsg(m) | Expectation::WrongRetval(m)) => m,
                _ => r.kbpf.message.lines().next().unwrap_or_default().to_owned(),
            };
            let why: String = why.chars().take(160).collect();
            let _ = writeln!(s, "- `{}`: {}", r.key(), md_cell(&why));
        }
        let _ = writeln!(s, "\n</details>\n");
    }
    s
}

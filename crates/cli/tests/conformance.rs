//! End-to-end tests of `kbpf conformance`: the whole committed bpf_conformance suite must pass
//! on the interpreter and on the JIT (x86-64 hosts), and failures must be listed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kbpf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kbpf"))
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh scratch directory under the target dir's temp area, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kbpf-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

#[test]
fn whole_suite_passes_on_the_interpreter() {
    let out = kbpf()
        .args(["conformance"])
        .arg(suite_dir())
        .args(["--engine", "interp"])
        .output()
        .expect("run kbpf");
    let text = stdout(&out);
    assert_eq!(
        text.lines().last(),
        Some("313 passed, 0 failed"),
        "output:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    // Without --verbose only failures are listed, so the summary is the only line.
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn verbose_lists_every_file() {
    let out = kbpf()
        .arg("conformance")
        .arg(suite_dir())
        .arg("--verbose")
        .output()
        .expect("run kbpf");
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("PASS ")).count(), 313);
    assert!(text.contains("PASS lock_cmpxchg.data\n"), "{text}");
}

#[test]
fn failures_are_listed_and_exit_nonzero() {
    let dir = scratch("failures");
    let suite = suite_dir();
    // A passing file, a wrong expectation, an unexpected run-time error, an expected error,
    // and an assembler error.
    std::fs::copy(suite.join("add.data"), dir.join("a_add.data")).expect("copy");
    let add = std::fs::read_to_string(suite.join("add.data")).expect("read add.data");
    let wrong = add.replace("-- result\n0x3", "-- result\n0x4");
    assert_ne!(
        wrong, add,
        "add.data's result changed upstream; update this test"
    );
    std::fs::write(dir.join("b_wrong.data"), wrong).expect("write");
    std::fs::write(
        dir.join("c_oob.data"),
        "-- asm\nldxw %r0, [%r1+4]\nexit\n-- mem\n00 01 02 03\n-- result\n0x0\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("d_expected_error.data"),
        "-- asm\nldxw %r0, [%r1+4]\nexit\n-- error\nout of bounds\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("e_bad_asm.data"),
        "-- asm\nmov %r0\nexit\n-- result\n0\n",
    )
    .expect("write");
    std::fs::write(dir.join("not_a_test.txt"), "ignored").expect("write");

    let out = kbpf()
        .arg("conformance")
        .arg(&dir)
        .output()
        .expect("run kbpf");
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL b_wrong.data: expected 0x4, got 0x3"),
        "{text}"
    );
    assert!(
        text.contains("FAIL c_oob.data: expected 0x0, got error:"),
        "{text}"
    );
    assert!(
        text.contains("FAIL e_bad_asm.data: invalid test file: asm: line 2:"),
        "{text}"
    );
    assert!(!text.contains("a_add.data"), "{text}");
    assert!(!text.contains("d_expected_error.data"), "{text}");
    assert_eq!(text.lines().last(), Some("2 passed, 3 failed"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn whole_suite_passes_on_the_jit() {
    let out = kbpf()
        .arg("conformance")
        .arg(suite_dir())
        .args(["--engine", "jit"])
        .output()
        .expect("run kbpf");
    if !cfg!(all(target_arch = "x86_64", unix)) {
        // Other hosts refuse the JIT clearly.
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("use --engine interp"), "{err}");
        return;
    }
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().last(), Some("313 passed, 0 failed"), "{text}");
}

#[test]
fn missing_or_empty_directory_fails() {
    let out = kbpf()
        .arg("conformance")
        .arg(suite_dir().join("does-not-exist"))
        .output()
        .expect("run kbpf");
    assert!(!out.status.success());
    let dir = scratch("empty");
    let out = kbpf()
        .arg("conformance")
        .arg(&dir)
        .output()
        .expect("run kbpf");
    assert!(!out.status.success());
    assert_eq!(stdout(&out).trim(), "0 passed, 0 failed");
    let _ = std::fs::remove_dir_all(&dir);
}

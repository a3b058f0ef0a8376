//! End-to-end tests of `kbpf conformance-plugin`, driven exactly like the bpf_conformance
//! runner drives a plugin: memory as hex in argv[1], the options string (often empty) in
//! argv[2], the program as space-separated hex bytes on stdin, r0 read back as hex on stdout.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use kbpf_isa::asm::assemble;
use kbpf_isa::insn::insns_to_bytes;

/// The runner's encoding: each byte as two hex digits followed by two spaces.
fn runner_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}  ")).collect()
}

fn plugin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .arg("conformance-plugin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kbpf");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write program");
    child.wait_with_output().expect("wait for kbpf")
}

fn program_hex(src: &str) -> String {
    let insns = assemble(src).expect("test program assembles");
    format!("{}\n", runner_hex(&insns_to_bytes(&insns)))
}

#[test]
fn prints_r0_in_hex_without_prefix() {
    let out = plugin(&["", ""], &program_hex("mov %r0, 0x1122\nexit"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1122\n");

    // A 64-bit value, and no arguments at all.
    let out = plugin(&[], &program_hex("lddw %r0, 0x8877665544332211\nexit"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "8877665544332211\n");
}

#[test]
fn memory_argument_is_r1_and_r2() {
    let mem = runner_hex(&[0xaa, 0xbb, 0x11, 0xcc, 0xdd]);
    let prog = program_hex("ldxb %r0, [%r1+2]\nadd %r0, %r2\nexit");
    let out = plugin(&[&mem, ""], &prog);
    assert!(out.status.success(), "{out:?}");
    // 0x11 + length 5
    assert_eq!(String::from_utf8_lossy(&out.stdout), "16\n");
}

#[test]
fn unwind_helper_and_callx() {
    let prog = program_hex("mov %r1, 0\nmov %r2, 5\ncall %r2\nmov %r0, 2\nexit");
    let out = plugin(&["", ""], &prog);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n", "{out:?}");
}

#[test]
fn errors_exit_one_with_a_message() {
    // Out-of-bounds read.
    let out = plugin(&["00 00", ""], &program_hex("ldxw %r0, [%r1]\nexit"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid read of 4 bytes"), "{err}");
    assert!(!out.stdout.is_empty());

    // Not a whole instruction, and a program that falls off its end.
    let out = plugin(&["", ""], "95 00 00");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a multiple of 8"));
    let out = plugin(&["", ""], "b7 00 00 00 00 00 00 00");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("last insn is not an exit"));

    // ELF input is refused clearly until kbpf has an ELF loader.
    let out = plugin(&["", "--elf"], "7f 45 4c 46");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--elf"));

    // `--jit` runs the program on the JIT (x86-64 hosts; others refuse clearly).
    let out = plugin(&["", "--jit"], &program_hex("mov %r0, 0x1122\nexit"));
    if cfg!(all(target_arch = "x86_64", unix)) {
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1122\n");
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("use --engine interp"));
    }
}

#[test]
fn unknown_options_are_ignored() {
    let out = plugin(
        &["", "--debug --something"],
        &program_hex("mov %r0, 7\nexit"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n");
}

#[test]
fn wrapper_script_forwards_to_the_binary() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kbpf-conformance-plugin");
    let mut child = Command::new("/bin/sh")
        .arg(script)
        .args([runner_hex(&[9]).as_str(), ""])
        .env("KBPF", env!("CARGO_BIN_EXE_kbpf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn /bin/sh");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(program_hex("ldxb %r0, [%r1]\nexit").as_bytes())
        .expect("write program");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "9\n");
}

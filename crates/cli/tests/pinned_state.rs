//! Pinned state across kbpf processes (no kernel needed): persistence of contents, map-of-maps
//! slots, unpinned inner maps and ids; crash safety (SIGKILL during a write); concurrent
//! processes on one bpffs directory; and the help texts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KBPF: &str = env!("CARGO_BIN_EXE_kbpf");
const PAUSE_ENV: &str = "KBPF_DEBUG_PAUSE_BEFORE_RENAME_MS";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d =
            std::env::temp_dir().join(format!("kbpf-state-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(d.join("t")).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

fn kbpf(dir: &Path, cmd: &str) -> Out {
    kbpf_mode(dir, cmd, true)
}

/// Runs kbpf through the directory's daemon, or (`daemon` false) in the process itself
/// (`KBPF_DAEMON=off`: the whole state file is written per command).
fn kbpf_mode(dir: &Path, cmd: &str, daemon: bool) -> Out {
    let mut c = Command::new(KBPF);
    if !daemon {
        c.env("KBPF_DAEMON", "off");
    }
    let o = c
        .arg("--bpffs")
        .arg(dir)
        .args(cmd.split_whitespace())
        .output()
        .unwrap();
    Out {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ok(dir: &Path, cmd: &str) -> String {
    let o = kbpf(dir, cmd);
    assert_eq!(o.status, 0, "`{cmd}` failed: {}{}", o.stdout, o.stderr);
    o.stdout
}

fn ok_in_process(dir: &Path, cmd: &str) -> String {
    let o = kbpf_mode(dir, cmd, false);
    assert_eq!(o.status, 0, "`{cmd}` failed: {}{}", o.stdout, o.stderr);
    o.stdout
}

fn show_id(dir: &Path, path: &str) -> u32 {
    let out = ok(dir, &format!("map show pinned {path}"));
    out.split(':').next().unwrap().parse().unwrap()
}

#[test]
fn pinned_maps_persist_across_processes() {
    let d = Dir::new("persist");
    let p = &d.0;
    let t = "/sys/fs/bpf/t";
    ok(
        p,
        &format!("map create {t}/tmpl type array key 4 value 4 entries 3 name tmpl flags 0x1000"),
    );
    ok(
        p,
        &format!(
            "map create {t}/outer type hash_of_maps key 4 value 4 entries 8 name outer inner_map pinned {t}/tmpl"
        ),
    );
    ok(
        p,
        &format!("map create {t}/in5 type array key 4 value 4 entries 5 name in5 flags 0x1000"),
    );
    ok(
        p,
        &format!("map create {t}/h type hash key 4 value 8 entries 4 name h"),
    );
    ok(
        p,
        &format!("map update pinned {t}/in5 key 4 0 0 0 value 1 2 3 4"),
    );
    ok(
        p,
        &format!("map update pinned {t}/h key 7 0 0 0 value 1 2 3 4 5 6 7 8"),
    );
    ok(
        p,
        &format!("map update pinned {t}/outer key 1 0 0 0 value pinned {t}/in5"),
    );
    // An inner map that is pinned only while it is put into the outer, then unpinned (rm).
    ok(
        p,
        &format!("map create {t}/tmp type array key 4 value 4 entries 9 name tmp flags 0x1000"),
    );
    ok(
        p,
        &format!("map update pinned {t}/tmp key 8 0 0 0 value 9 9 9 9"),
    );
    ok(
        p,
        &format!("map update pinned {t}/outer key 2 0 0 0 value pinned {t}/tmp"),
    );
    let tmp_id = show_id(p, &format!("{t}/tmp"));
    let ids: Vec<u32> = ["tmpl", "outer", "in5", "h"]
        .iter()
        .map(|n| show_id(p, &format!("{t}/{n}")))
        .collect();
    std::fs::remove_file(p.join("t/tmp")).unwrap();
    // The daemon stops (writing a checkpoint); the next command starts a new one.
    ok(p, "daemon stop");

    // Other processes see the same contents, slots and ids.
    assert_eq!(
        ok(p, &format!("map lookup pinned {t}/in5 key 4 0 0 0")),
        "key: 04 00 00 00  value: 01 02 03 04\n"
    );
    assert_eq!(
        ok(p, &format!("map lookup pinned {t}/h key 7 0 0 0")),
        "key: 07 00 00 00  value: 01 02 03 04 05 06 07 08\n"
    );
    let again: Vec<u32> = ["tmpl", "outer", "in5", "h"]
        .iter()
        .map(|n| show_id(p, &format!("{t}/{n}")))
        .collect();
    assert_eq!(again, ids, "ids changed between processes");
    let dump = ok(p, &format!("map dump pinned {t}/outer"));
    let in5 = ids[2].to_le_bytes();
    let tmpb = tmp_id.to_le_bytes();
    assert!(
        dump.contains(&format!(
            "key: 01 00 00 00  value: {:02x} {:02x} {:02x} {:02x}",
            in5[0], in5[1], in5[2], in5[3]
        )),
        "{dump}"
    );
    assert!(
        dump.contains(&format!(
            "key: 02 00 00 00  value: {:02x} {:02x} {:02x} {:02x}",
            tmpb[0], tmpb[1], tmpb[2], tmpb[3]
        )),
        "{dump}"
    );
    assert!(dump.ends_with("Found 2 elements\n"));
    // The unpinned inner map lives on inside the outer, with its contents, by id.
    let o = kbpf(p, &format!("map show pinned {t}/tmp"));
    assert_eq!(o.status, 255);
    assert_eq!(
        o.stderr,
        format!("Error: bpf obj get ({t}/tmp): No such file or directory\n")
    );
    assert_eq!(
        ok(p, &format!("map lookup id {tmp_id} key 8 0 0 0")),
        "key: 08 00 00 00  value: 09 09 09 09\n"
    );
    // The outer still checks candidates against the template (kept as attributes).
    ok(
        p,
        &format!("map create {t}/plain type array key 4 value 4 entries 3 name plain"),
    );
    let o = kbpf(
        p,
        &format!("map update pinned {t}/outer key 3 0 0 0 value pinned {t}/plain"),
    );
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (234, "Error: update failed: Invalid argument\n")
    );
    // Removing the slot frees the unpinned inner map, as the kernel does.
    ok(p, &format!("map delete pinned {t}/outer key 2 0 0 0"));
    let o = kbpf(p, &format!("map show id {tmp_id}"));
    assert_eq!(
        o.stderr,
        format!("Error: get map by id ({tmp_id}): No such file or directory\n")
    );
    // New maps never reuse a persisted id.
    ok(
        p,
        &format!("map create {t}/n type array key 4 value 4 entries 1 name n"),
    );
    assert!(show_id(p, &format!("{t}/n")) > tmp_id);
    // The state file is the documented versioned document, with the reserved progs array.
    ok(p, "daemon stop");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join(".kbpf-state.json")).unwrap())
            .unwrap();
    assert_eq!(st["version"], 1);
    assert!(st["progs"].as_array().is_some_and(|a| a.is_empty()));
}

/// The value of key 0 of `t/a` (a 4-byte array), as a number; panics if the lookup fails.
fn value0(p: &Path) -> u32 {
    let out = ok_in_process(p, "map lookup pinned /sys/fs/bpf/t/a key 0 0 0 0");
    let hex: Vec<u8> = out
        .split("value: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    u32::from_le_bytes(hex.try_into().unwrap())
}

fn spawn_update(p: &Path, v: u32, pause_ms: Option<u64>) -> Child {
    let b = v.to_le_bytes();
    let mut c = Command::new(KBPF);
    c.env("KBPF_DAEMON", "off");
    c.arg("--bpffs").arg(p).args(
        format!(
            "map update pinned /sys/fs/bpf/t/a key 0 0 0 0 value {} {} {} {}",
            b[0], b[1], b[2], b[3]
        )
        .split_whitespace(),
    );
    if let Some(ms) = pause_ms {
        c.env(PAUSE_ENV, ms.to_string());
    }
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn has_tmp(p: &Path) -> bool {
    std::fs::read_dir(p).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".kbpf-state.json.tmp.")
    })
}

#[test]
fn killed_during_write_keeps_old_or_new_state() {
    // Without the daemon each command writes the whole state file (the daemon's
    // checkpoints use the same write): a kill leaves the old or the new file, never a mix.
    let d = Dir::new("crash");
    let p = &d.0;
    ok_in_process(
        p,
        "map create /sys/fs/bpf/t/a type array key 4 value 4 entries 2 name a",
    );
    ok_in_process(
        p,
        "map update pinned /sys/fs/bpf/t/a key 0 0 0 0 value 1 0 0 0",
    );

    // Killed between writing the temporary file and renaming it: the old state stays.
    let mut c = spawn_update(p, 2, Some(30_000));
    let start = Instant::now();
    while !has_tmp(p) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no temporary file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    c.kill().unwrap();
    c.wait().unwrap();
    assert_eq!(
        value0(p),
        1,
        "a write killed before its rename must not be visible"
    );
    ok_in_process(
        p,
        "map update pinned /sys/fs/bpf/t/a key 0 0 0 0 value 3 0 0 0",
    );
    assert!(!has_tmp(p), "the stale temporary file was not cleaned");
    assert_eq!(value0(p), 3);

    // SIGKILL at pseudo-random points of many updates: always the old or the new value.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    let mut committed = 3u32;
    let (mut old, mut new) = (0, 0);
    for i in 0..40u32 {
        let v = 100 + i;
        let mut c = spawn_update(p, v, None);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros((seed >> 33) % 6000));
        let _ = c.kill();
        c.wait().unwrap();
        let got = value0(p);
        assert!(
            got == committed || got == v,
            "iteration {i}: value {got}, expected {committed} (old) or {v} (new)"
        );
        if got == v {
            new += 1;
        } else {
            old += 1;
        }
        committed = got;
    }
    println!("40 killed updates: {old} left the old value, {new} the new one");
    // The map's other attributes and slot 1 are intact.
    assert_eq!(
        ok_in_process(p, "map show pinned /sys/fs/bpf/t/a")
            .lines()
            .nth(1)
            .unwrap(),
        "\tkey 4B  value 4B  max_entries 2  memlock 328B"
    );
}

#[test]
fn concurrent_processes_do_not_lose_updates() {
    let d = Dir::new("conc");
    let p = d.0.clone();
    ok(
        &p,
        "map create /sys/fs/bpf/t/h type hash key 4 value 4 entries 64 name h",
    );
    let workers: Vec<_> = (0..4u8)
        .map(|w| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..8u8 {
                    ok(
                        &p,
                        &format!(
                            "map update pinned /sys/fs/bpf/t/h key {w} {i} 0 0 value {i} 0 0 {w}"
                        ),
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let dump = ok(&p, "map dump pinned /sys/fs/bpf/t/h");
    assert!(dump.ends_with("Found 32 elements\n"), "{dump}");
    assert!(dump.contains("key: 03 07 00 00  value: 07 00 00 03"));
}

#[test]
fn batch_quoting_comments_and_stop() {
    let d = Dir::new("batch");
    let p = &d.0;
    let f = p.join("b.batch");
    std::fs::write(
        &f,
        "# comment\n\nmap create \"/sys/fs/bpf/t/a\" type array \\\n  key 4 value 4 entries 2 name a # trailing\nmap update pinned '/sys/fs/bpf/t/a' key 1 0 0 0 value 5 0 0 0\nmap lookup pinned /sys/fs/bpf/t/a key 1 0 0 0\n",
    )
    .unwrap();
    let o = kbpf(p, &format!("batch file {}", f.display()));
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "key: 01 00 00 00  value: 05 00 00 00\nprocessed 3 commands\n"
    );
    std::fs::write(&f, "map lookup pinned /sys/fs/bpf/t/a key 1 0 0 0\nmap delete pinned /sys/fs/bpf/t/a key 1 0 0 0\nmap lookup pinned /sys/fs/bpf/t/a key 0 0 0 0\n").unwrap();
    let o = kbpf(p, &format!("batch file {}", f.display()));
    assert_eq!(o.status, 234);
    assert_eq!(o.stdout, "key: 01 00 00 00  value: 05 00 00 00\n");
    assert_eq!(o.stderr, "Error: delete failed: Invalid argument\n");
    std::fs::write(&f, "map show pinned '/sys/fs/bpf/t/a\n").unwrap();
    let o = kbpf(p, &format!("batch file {}", f.display()));
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (255, "Error: unterminated quoted string in command 0\n")
    );
    let o = kbpf(p, "batch file /nonexistent/file");
    assert_eq!(
        o.stderr,
        "Error: Can't open file (/nonexistent/file): No such file or directory\n"
    );
    // JSON batch: one array of {command, output}.
    std::fs::write(&f, "map lookup pinned /sys/fs/bpf/t/a key 0 0 0 0\n").unwrap();
    let o = kbpf(p, &format!("-j batch file {}", f.display()));
    assert_eq!(
        o.stdout,
        "[{\"command\":[\"map\",\"lookup\",\"pinned\",\"/sys/fs/bpf/t/a\",\"key\",\"0\",\"0\",\"0\",\"0\"],\"output\":{\"key\":[\"0x00\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x00\",\"0x00\",\"0x00\",\"0x00\"]}}]\n"
    );
}

#[test]
fn help_is_complete() {
    let o = Command::new(KBPF).arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for w in [
        "run",
        "conformance",
        "conformance-plugin",
        "map",
        "batch",
        "prog",
        "--bpffs",
        "--json",
        "--pretty",
        "--debug",
        "/sys/fs/bpf",
    ] {
        assert!(top.contains(w), "`kbpf --help` lacks {w}:\n{top}");
    }
    let d = Dir::new("help");
    let help = ok(&d.0, "map help");
    for w in [
        "show",
        "list",
        "create",
        "dump",
        "update",
        "lookup",
        "getnext",
        "delete",
        "pin",
        "peek",
        "push",
        "pop",
        "MAP := { id MAP_ID | pinned FILE | name MAP_NAME }",
        "DATA := { [hex] BYTES }",
        "VALUE := { DATA | MAP }",
        "UPDATE_FLAGS := { any | exist | noexist }",
        "hash_of_maps",
        "inner_map MAP",
        "flags FLAGS",
    ] {
        assert!(help.contains(w), "`kbpf map help` lacks {w}");
    }
    assert_eq!(ok(&d.0, "map -h"), help);
    assert_eq!(ok(&d.0, "ma he"), help);
    let o = Command::new(KBPF).args(["map", "--help"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), help);
    let top = ok(&d.0, "help");
    assert!(
        top.contains("OBJECT := { map | prog | btf | net | kernel }")
            && top.contains("batch file FILE")
    );
    // An unknown command prints the usage on stderr with status 255, as bpftool.
    let o = kbpf(&d.0, "map frob");
    assert_eq!((o.status, o.stdout.as_str()), (255, ""));
    assert_eq!(o.stderr, help);
    let o = kbpf(&d.0, "frob");
    assert_eq!(o.status, 255);
    assert!(o.stderr.starts_with("Usage: kbpf"));
    // Each clap subcommand still has its help.
    for sub in ["run", "conformance", "conformance-plugin"] {
        let o = Command::new(KBPF).args([sub, "--help"]).output().unwrap();
        assert!(o.status.success(), "{sub} --help");
    }
}

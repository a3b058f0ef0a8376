//! Pinned programs across kbpf processes (no kernel needed): `prog loadall` in one process,
//! `prog run` in others after `map update`s of the maps the program is bound to; PROG_ARRAY
//! values naming programs; `rm` of the pin frees the program.

mod common;
use common::{kbpf, scratch_dir};

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn pinned_program_runs_in_later_processes_on_its_maps() {
    let dir = scratch_dir("progp");
    let obj = root().join("tests/objects/aom_inner_map.bpf.o");
    let pkt = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/prog/rand64.bin");
    let pkt = pkt.to_str().unwrap();
    let (st, _, err) = kbpf(
        &dir,
        &[
            "prog",
            "loadall",
            obj.to_str().unwrap(),
            "/sys/fs/bpf/p",
            "pinmaps",
            "/sys/fs/bpf/m",
        ],
    );
    assert_eq!(st, 0, "{err}");
    let run = |d: &std::path::Path| {
        let (st, out, err) = kbpf(
            d,
            &[
                "-j",
                "prog",
                "run",
                "pinned",
                "/sys/fs/bpf/p/xdp_two_level",
                "data_in",
                pkt,
            ],
        );
        assert_eq!(st, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["retval"].as_u64().unwrap()
    };
    assert_eq!(run(&dir), 2, "inner_a[1] = 0: XDP_PASS");
    let (st, _, err) = kbpf(
        &dir,
        &[
            "map",
            "update",
            "pinned",
            "/sys/fs/bpf/m/inner_a",
            "key",
            "1",
            "0",
            "0",
            "0",
            "value",
            "9",
            "0",
            "0",
            "0",
        ],
    );
    assert_eq!(st, 0, "{err}");
    assert_eq!(
        run(&dir),
        3,
        "the rebuilt program sees the updated inner map: XDP_TX"
    );
    let (st, out, _) = kbpf(&dir, &["prog", "show", "name", "xdp_two_level"]);
    assert_eq!(st, 0);
    assert!(
        out.starts_with("1: xdp  name xdp_two_level  tag f7a0cf19a6a5998c  gpl\n"),
        "{out}"
    );
    assert!(
        out.contains("B  memlock 4096B  map_ids ") && out.contains("  jited "),
        "{out}"
    );
    // A PROG_ARRAY slot holds the program; lookups show its id.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .arg("--bpffs")
        .arg(&dir)
        .args(["batch", "file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"map create /sys/fs/bpf/pa type prog_array key 4 value 4 entries 4 name pa\nmap update pinned /sys/fs/bpf/pa key 2 0 0 0 value pinned /sys/fs/bpf/p/xdp_two_level\nmap lookup pinned /sys/fs/bpf/pa key 2 0 0 0\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("key: 02 00 00 00  value: 01 00 00 00"),
        "{out}"
    );
    // Unpinning frees the program (and its unpinned maps once nothing holds them).
    std::fs::remove_file(dir.join("p/xdp_two_level")).unwrap();
    let (st, _, err) = kbpf(&dir, &["prog", "show", "id", "1"]);
    assert_eq!(st, 255);
    assert_eq!(err, "Error: get by id (1): No such file or directory\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// PROG_ARRAY initial slots (`.values = { [0] = &xdp_leaf, [2] = &xdp_other }`) are filled
/// at `loadall`, as libbpf does, and survive into later processes: tail calls through them
/// give what the kernel gives for the same object (42, 2001 for the empty slot, 43).
#[test]
fn prog_array_initial_slots_persist_and_tail_calls_use_them() {
    let dir = scratch_dir("progslots");
    let obj = root().join("crates/run/tests/progs/tail_slots.bpf.o");
    let (st, _, err) = kbpf(
        &dir,
        &[
            "prog",
            "loadall",
            obj.to_str().unwrap(),
            "/sys/fs/bpf/t",
            "pinmaps",
            "/sys/fs/bpf/tm",
        ],
    );
    assert_eq!(st, 0, "{err}");
    for (b0, want) in [(0u8, 42), (1, 2001), (2, 43)] {
        let pkt = dir.join(format!("pkt{b0}"));
        let mut frame = vec![0u8; 14];
        frame[0] = b0;
        std::fs::write(&pkt, &frame).unwrap();
        let (st, out, err) = kbpf(
            &dir,
            &[
                "prog",
                "run",
                "pinned",
                "/sys/fs/bpf/t/xdp_entry",
                "data_in",
                pkt.to_str().unwrap(),
            ],
        );
        assert_eq!(st, 0, "{err}");
        assert!(
            out.starts_with(&format!("Return value: {want},")),
            "slot {b0}: {out}"
        );
    }
    let (st, out, err) = kbpf(&dir, &["map", "dump", "pinned", "/sys/fs/bpf/tm/jump"]);
    assert_eq!(st, 0, "{err}");
    assert!(out.contains("Found 2 elements"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

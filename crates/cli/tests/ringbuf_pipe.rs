//! `kbpf map event_pipe` on a RINGBUF: the records `tests/objects/map_types.bpf.o`'s XDP
//! program commits with `bpf_ringbuf_reserve`/`submit` on each `prog run` are printed in order,
//! once each (the reader consumes them), in text and `-j`; `map dump` of the ring fails as
//! bpftool's does (ENOTSUPP from the key walk: exit status 244 after `Found 0 elements`).
//! Needs no kernel. The records live in the daemon that ran the programs (as perf samples do),
//! so the commands go through it whatever `KBPF_DAEMON` says in the caller's environment.

use std::path::Path;

mod common;
use common::scratch_dir;

fn kbpf(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::kbpf_without(dir, args, &["KBPF_DAEMON"])
}

#[test]
fn event_pipe_reads_ringbuf_records() {
    let dir = scratch_dir("rbpipe");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let obj = format!("{root}/tests/objects/map_types.bpf.o");
    let data = format!("{}/tests/prog/rand64.bin", env!("CARGO_MANIFEST_DIR"));
    let (st, _, err) = kbpf(
        &dir,
        &[
            "prog",
            "loadall",
            &obj,
            "/sys/fs/bpf/p",
            "pinmaps",
            "/sys/fs/bpf/m",
        ],
    );
    assert_eq!(st, 0, "{err}");
    let run = || {
        let (st, out, err) = kbpf(
            &dir,
            &[
                "prog",
                "run",
                "pinned",
                "/sys/fs/bpf/p/xdp_flows",
                "data_in",
                &data,
            ],
        );
        assert_eq!(st, 0, "{err}");
        // XDP_PASS: the lookups missed, the record was reserved and submitted.
        assert!(out.contains("Return value: 2"), "{out}");
    };
    run();
    run();
    let pipe = [
        "map",
        "event_pipe",
        "pinned",
        "/sys/fs/bpf/m/events",
        "count",
        "2",
    ];
    let (st, out, err) = kbpf(&dir, &pipe);
    assert_eq!(st, 0, "{err}");
    assert_eq!(
        out,
        "== ringbuf record: 4 bytes =====\n01 00 00 00\n".repeat(2)
    );
    run();
    let mut j = vec!["-j"];
    j.extend(&pipe[..pipe.len() - 1]);
    j.push("1");
    let (st, out, err) = kbpf(&dir, &j);
    assert_eq!(st, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!([{"size": 4, "data": [1, 0, 0, 0]}]));
    let (st, out, _) = kbpf(&dir, &["map", "dump", "pinned", "/sys/fs/bpf/m/events"]);
    assert_eq!((st, out.as_str()), (244, "Found 0 elements\n"));
    let _ = kbpf(&dir, &["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
}

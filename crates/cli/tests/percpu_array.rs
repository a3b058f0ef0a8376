//! Regression: `kbpf map create … type percpu_array value 16` died with SIGSEGV (user space
//! found element i's per-CPU pointer at i * value_size, not i * 8). The whole bpftool round
//! trip on a wide per-CPU array: create, update every element, lookup, dump.

mod common;
use common::{kbpf, scratch_dir};

#[test]
fn wide_percpu_array_round_trip() {
    let dir = scratch_dir("percpu");
    let pin = "/sys/fs/bpf/pa";
    let (st, _, err) = kbpf(
        &dir,
        &[
            "map",
            "create",
            pin,
            "type",
            "percpu_array",
            "key",
            "4",
            "value",
            "16",
            "entries",
            "2",
            "name",
            "pa",
        ],
    );
    assert_eq!(st, 0, "create: {err}");
    for i in 0..2u8 {
        let mut args = vec![
            "map".to_string(),
            "update".into(),
            "pinned".into(),
            pin.into(),
            "key".into(),
        ];
        args.extend([i, 0, 0, 0].iter().map(|b| b.to_string()));
        args.push("value".into());
        args.extend((0..16).map(|b| (i * 16 + b).to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (st, _, err) = kbpf(&dir, &args);
        assert_eq!(st, 0, "update {i}: {err}");
    }
    let (st, out, err) = kbpf(
        &dir,
        &[
            "-j", "map", "lookup", "pinned", pin, "key", "1", "0", "0", "0",
        ],
    );
    assert_eq!(st, 0, "lookup: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cpu0 = &v["values"][0]["value"];
    let want: Vec<String> = (16..32).map(|b| format!("0x{b:02x}")).collect();
    assert_eq!(cpu0, &serde_json::json!(want), "{out}");
    let (st, out, err) = kbpf(&dir, &["-j", "map", "dump", "pinned", pin]);
    assert_eq!(st, 0, "dump: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

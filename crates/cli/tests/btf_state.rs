//! BTF objects without a kernel: `prog loadall` makes the object's BTF a kbpf BTF object held
//! by its maps and programs; ids, the blob and typed map output survive across kbpf
//! invocations (the state file keeps the blob); the object goes with its last map and program;
//! bpftool's errors and exit statuses for `btf`; typed dumps against outputs recorded from
//! bpftool 7.1 on the live kernel (`tests/btf/golden/`).

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::btf_maps_updates;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn object() -> String {
    manifest()
        .join("tests/btf/btf_maps.bpf.o")
        .display()
        .to_string()
}

struct Fs(PathBuf);

impl Fs {
    fn new(tag: &str) -> Fs {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d =
            std::env::temp_dir().join(format!("kbpf-btfs-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Fs(d)
    }

    fn run(&self, args: &str) -> (i32, String, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_kbpf"))
            .arg("--bpffs")
            .arg(&self.0)
            .args(args.split_whitespace())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &str) -> String {
        let (st, out, err) = self.run(args);
        assert_eq!(st, 0, "kbpf {args}: {err}");
        out
    }

    fn loadall(&self) {
        self.ok(&format!(
            "prog loadall {} /sys/fs/bpf/p pinmaps /sys/fs/bpf/m",
            object()
        ));
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(manifest().join("tests/btf/golden").join(name)).unwrap()
}

/// The updates tests/btf_kernel.rs makes, on the maps the golden outputs were recorded from.
fn update_values(fs: &Fs) {
    for u in btf_maps_updates() {
        let map = u.split_whitespace().nth(3).unwrap_or_default();
        if ["@M@/values", "@M@/flows", "@M@/btf_maps_data"].contains(&map) {
            fs.ok(&u.replace("@M@", "/sys/fs/bpf/m"));
        }
    }
}

#[test]
fn btf_objects_persist_with_their_maps_and_programs() {
    let fs = Fs::new("persist");
    fs.loadall();
    let show = fs.ok("btf show");
    assert!(
        show.starts_with("1: name <anon>  size 3865B  prog_ids 1  map_ids "),
        "{show}"
    );
    assert_eq!(show.lines().count(), 1, "{show}");
    // Every map with BTF lists it; the map of maps has none (libbpf creates it without).
    let maps = fs.ok("map show");
    assert_eq!(maps.matches("\tbtf_id 1").count(), 10, "{maps}");
    assert!(maps.contains("name btf_maps.rodata  flags 0x480\n\tkey 4B  value 12B  max_entries 1  memlock 8192B\n\tbtf_id 1  frozen\n"), "{maps}");
    assert!(fs.ok("prog show").contains("\tbtf_id 1\n"));
    let j: serde_json::Value = serde_json::from_str(&fs.ok("-j prog show id 1")).unwrap();
    assert_eq!(j["btf_id"], 1);
    // A later invocation reads the blob from the state file: the C dump is the object's.
    let file_c = fs.ok(&format!("btf dump file {} format c", object()));
    assert_eq!(fs.ok("btf dump id 1 format c"), file_c);
    assert_eq!(file_c, golden("btf_maps.c"));
    update_values(&fs);
    assert_eq!(
        fs.ok("map dump pinned /sys/fs/bpf/m/values"),
        golden("values.dump")
    );
    assert_eq!(
        fs.ok("-j map dump pinned /sys/fs/bpf/m/values"),
        golden("values.dump.json")
    );
    assert_eq!(
        fs.ok("map dump pinned /sys/fs/bpf/m/flows"),
        golden("flows.dump")
    );
    assert_eq!(
        fs.ok("map dump pinned /sys/fs/bpf/m/btf_maps_data"),
        golden("data.dump")
    );
    assert_eq!(
        fs.ok("map lookup pinned /sys/fs/bpf/m/values key 1 0 0 0"),
        golden("values.lookup1")
    );
    // A map without BTF in the same object dumps as hex.
    assert!(
        fs.ok("map dump pinned /sys/fs/bpf/m/outer")
            .starts_with("key: 01 00 00 00  value: ")
    );
    // Unpinning everything frees the BTF object (no map or program holds it any more).
    std::fs::remove_dir_all(fs.0.join("p")).unwrap();
    std::fs::remove_dir_all(fs.0.join("m")).unwrap();
    assert_eq!(fs.ok("btf show"), "");
    // The next command that writes the state drops the object from it.
    fs.ok("map create /sys/fs/bpf/x type array key 4 value 4 entries 1 name x");
    // The daemon writes the state file at its checkpoints: stopping it writes one.
    fs.ok("daemon stop");
    let state = std::fs::read_to_string(fs.0.join(".kbpf-state.json")).unwrap();
    assert!(!state.contains("\"btfs\""), "{state}");
}

#[test]
fn btf_errors_are_bpftools() {
    let fs = Fs::new("errors");
    fs.loadall();
    let (st, _, err) = fs.run("btf show id 9");
    assert_eq!(
        (st, err.as_str()),
        (
            255,
            "Error: can't get BTF object by id (9): No such file or directory\n"
        )
    );
    let (st, _, err) = fs.run("btf show id 1 x");
    assert_eq!((st, err.as_str()), (255, "Error: what is 'id'?\n"));
    let (st, _, err) = fs.run("btf dump id 9");
    assert_eq!(st, 254);
    assert_eq!(
        err,
        "Error: can't get BTF object by id (9): No such file or directory\n\
         Error: get btf by id (9): No such file or directory\n"
    );
    let (st, _, err) = fs.run("btf dump file /nonexistent");
    assert_eq!(
        (st, err.as_str()),
        (
            254,
            "Error: failed to load BTF from /nonexistent: No such file or directory\n"
        )
    );
    let (st, out, _) = fs.run(&format!("-j btf dump file {} format c", object()));
    assert_eq!(
        (st, out.as_str()),
        (
            161,
            "{\"error\":\"JSON output for C-syntax dump is not supported\"}\n"
        )
    );
    let (st, _, err) = fs.run("btf dump foo bar");
    assert_eq!(
        (st, err.as_str()),
        (255, "Error: unrecognized BTF source specifier: 'foo'\n")
    );
    let (st, _, err) = fs.run("btf dump id 1 format x");
    assert_eq!(
        (st, err.as_str()),
        (
            234,
            "Error: unrecognized format specifier: 'x', possible values: raw, c\n"
        )
    );
    let (st, _, err) = fs.run("btf dump");
    assert_eq!(st, 255);
    assert!(
        err.starts_with("Error: 'dump' needs at least 2 arguments, 0 found\nUsage: kbpf btf"),
        "{err}"
    );
    // `btf dump map` prints the key and value types; `all` the whole object.
    let kv = fs.ok("btf dump map pinned /sys/fs/bpf/m/flows");
    assert!(
        kv.starts_with("[") && kv.contains("STRUCT 'flow'") && kv.contains("STRUCT 'inner'"),
        "{kv}"
    );
    assert_eq!(
        fs.ok("btf dump map pinned /sys/fs/bpf/m/flows all"),
        fs.ok("btf dump id 1")
    );
}

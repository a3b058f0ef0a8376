//! `kbpf btf`, BTF-formatted `map dump`/`lookup` and `btf_id` in `map show`/`prog show`
//! against bpftool 7.1 on the live kernel: each object is `prog loadall`-ed by bpftool (pins
//! under unique /sys/fs/bpf paths, removed on drop) and by kbpf (a private `--bpffs`
//! directory, under the live kernel's profile), the same map updates run on both, and then,
//! line for line with object ids masked, for every map the object pins: `map show` and
//! `map dump` (plain and `-j`), `map lookup` of key 0 for 4-byte keys, `btf dump map`; for
//! the object's BTF: `btf dump id N` in `format raw`, `format c` and `-j`, and `btf show id
//! N`; for every program: its `btf_id` line in `prog show`.
//!
//! Skips with a `SKIP:` line where bpf() or bpftool is unavailable (a failure under CI=true,
//! as `kbpf_kernel::bpf_available_or_skip`).

use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_kernel::bpftool::{Pins, loadall, unavailable};

mod common;
use common::btf_maps_updates;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Corpus objects not compared here, and why (the first ones as in
/// crates/object/tests/kernel_diff.rs: bpftool cannot load them).
const SKIP: &[(&str, &str)] = &[
    (
        "newer_sections.bpf.o",
        "section names newer than bpftool's libbpf 1.1",
    ),
    (
        "legacy_maps.bpf.o",
        "libbpf 1.0+ refuses legacy 'maps' sections",
    ),
    (
        "pinned.bpf.o",
        "LIBBPF_PIN_BY_NAME would pin globally under /sys/fs/bpf",
    ),
    (
        "optional_autoload.bpf.o",
        "bpftool loadall cannot pin a program whose autoload is off",
    ),
    (
        "core_poison.bpf.o",
        "refused by design (a reachable poisoned CO-RE relocation)",
    ),
];

fn skip() -> bool {
    if !kbpf_kernel::bpf_available_or_skip("btf_kernel") {
        return true;
    }
    if let Some(why) = unavailable(&root().join("tests/objects/bounded_loop.bpf.o")) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("btf_kernel: bpftool unavailable under CI=true: {why}");
        }
        println!("SKIP: btf_kernel: {why}");
        return true;
    }
    false
}

/// A private kbpf bpffs directory, removed on drop.
struct Bpffs(PathBuf);

impl Bpffs {
    fn new(tag: &str) -> Bpffs {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d =
            std::env::temp_dir().join(format!("kbpf-btfk-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Bpffs(d)
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn kbpf(fs: &Bpffs, args: &[String]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .args(["--kernel", "host", "--bpffs"])
        .arg(&fs.0)
        .args(args))
}

fn bpftool(args: &[String]) -> (i32, String, String) {
    run(Command::new("bpftool").args(args))
}

/// Object ids masked in text: `N: ` at a line start, `btf_id N`, and the id lists of
/// `btf show` (their count kept: bpftool lists them in hash order).
fn mask_text(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut words: Vec<String> = Vec::new();
            let mut it = l.split(' ').peekable();
            let mut first = true;
            while let Some(w) = it.next() {
                let masked = if first && w.ends_with(':') && w[..w.len() - 1].parse::<u64>().is_ok()
                {
                    "ID:".to_string()
                } else if matches!(
                    w.trim_start_matches('\t'),
                    "btf_id" | "map_ids" | "prog_ids"
                ) && let Some(next) = it.peek()
                {
                    let n = next.split(',').count();
                    let tag = if w.ends_with("btf_id") {
                        "ID".to_string()
                    } else {
                        format!("<{n}>")
                    };
                    let out = format!("{w} {tag}");
                    it.next();
                    out
                } else {
                    w.to_string()
                };
                first = false;
                words.push(masked);
            }
            words.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Object ids masked in JSON (`id`, `btf_id`; id lists by their length).
fn mask_json(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match k.as_str() {
                    "id" | "btf_id" => *x = Value::from(0),
                    "map_ids" | "prog_ids" => *x = Value::from(x.as_array().map_or(0, Vec::len)),
                    _ => mask_json(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_json),
        _ => {}
    }
}

fn json(s: &str, what: &str) -> Value {
    let mut v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: {e}: {s}"));
    mask_json(&mut v);
    v
}

/// Map-of-maps values are map ids: masked (`value: ID`); a hash's elements sorted (the
/// kernel's bucket order depends on its random hash seed).
fn mask_inner_ids(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| match l.find("value: ") {
            Some(i) if l.starts_with("key:") => format!("{}value: ID", &l[..i]),
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The updates run on both sides before comparing.
fn updates(stem: &str) -> Vec<String> {
    if stem == "btf_maps" {
        btf_maps_updates()
    } else {
        Vec::new()
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// Compares one command on both sides; `post` normalises both outputs.
fn same(
    fs: &Bpffs,
    kernel_cmd: &str,
    kbpf_cmd: &str,
    post: &dyn Fn(&str) -> String,
    failures: &mut Vec<String>,
) {
    let (bs, bo, be) = bpftool(&words(kernel_cmd));
    let (ks, ko, ke) = kbpf(fs, &words(kbpf_cmd));
    if bs != ks {
        failures.push(format!(
            "{kbpf_cmd}: status {ks} (kbpf) != {bs} (bpftool): {ke} / {be}"
        ));
        return;
    }
    let (b, k) = (post(&bo), post(&ko));
    if b != k {
        failures.push(format!("{kbpf_cmd}:\n--- bpftool\n{b}\n--- kbpf\n{k}"));
    }
}

fn btf_id_of(out: &str) -> Option<u64> {
    serde_json::from_str::<Value>(out).ok()?["btf_id"].as_u64()
}

fn compare_object(obj: &Path) -> (usize, Vec<String>) {
    let stem = obj
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".bpf.o")
        .to_string();
    let pins = Pins::new("kbpfbtf", &stem);
    loadall(obj, &pins).unwrap_or_else(|e| panic!("bpftool loadall {}: {e}", obj.display()));
    let fs = Bpffs::new(&stem);
    let o = obj.to_str().unwrap();
    let (st, _, err) = kbpf(
        &fs,
        &words(&format!(
            "prog loadall {o} /sys/fs/bpf/p pinmaps /sys/fs/bpf/m"
        )),
    );
    assert_eq!(st, 0, "kbpf loadall {o}: {err}");
    let (km, kp) = (
        pins.maps.display().to_string(),
        pins.progs.display().to_string(),
    );
    for u in updates(&stem) {
        let (bs, _, be) = bpftool(&words(&u.replace("@M@", &km)));
        assert_eq!(bs, 0, "bpftool {u}: {be}");
        let (ks, _, ke) = kbpf(&fs, &words(&u.replace("@M@", "/sys/fs/bpf/m")));
        assert_eq!(ks, 0, "kbpf {u}: {ke}");
    }
    let text = |s: &str| mask_text(s);
    let js = |s: &str| json(s, "json").to_string();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut maps: Vec<String> = std::fs::read_dir(&pins.maps)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    maps.sort();
    let mut kernel_btf = None;
    let mut kbpf_btf = None;
    for m in &maps {
        let (b, k) = (
            format!("pinned {km}/{m}"),
            format!("pinned /sys/fs/bpf/m/{m}"),
        );
        let (_, show, _) = bpftool(&words(&format!("-j map show {b}")));
        let info: Value = serde_json::from_str(&show).unwrap();
        let outer = matches!(
            info["type"].as_str(),
            Some("array_of_maps" | "hash_of_maps")
        );
        // Dumps of huge maps (Katran's 33.5M-entry ring) would take bpftool minutes: their
        // `map show` is compared, their contents by lookups below.
        let dumpable = info["max_entries"].as_u64().is_some_and(|n| n <= 1 << 17);
        kernel_btf = kernel_btf.or(btf_id_of(&show));
        kbpf_btf = kbpf_btf.or(btf_id_of(&kbpf(&fs, &words(&format!("-j map show {k}"))).1));
        same(
            &fs,
            &format!("map show {b}"),
            &format!("map show {k}"),
            &text,
            &mut failures,
        );
        same(
            &fs,
            &format!("-j map show {b}"),
            &format!("-j map show {k}"),
            &js,
            &mut failures,
        );
        let plain_dump = |s: &str| {
            if outer {
                mask_inner_ids(s)
            } else {
                s.to_string()
            }
        };
        if dumpable {
            same(
                &fs,
                &format!("map dump {b}"),
                &format!("map dump {k}"),
                &plain_dump,
                &mut failures,
            );
        }
        if !outer && dumpable {
            same(
                &fs,
                &format!("-j map dump {b}"),
                &format!("-j map dump {k}"),
                &js,
                &mut failures,
            );
        }
        compared += 4;
        if info["bytes_key"].as_u64() == Some(4) && !outer && info["type"] != "ringbuf" {
            for j in ["", "-j "] {
                let (bc, kc) = (
                    format!("{j}map lookup {b} key 0 0 0 0"),
                    format!("{j}map lookup {k} key 0 0 0 0"),
                );
                same(&fs, &bc, &kc, &|s: &str| s.to_string(), &mut failures);
                compared += 1;
            }
        }
        if info.get("btf_id").is_some() {
            for f in ["raw", "c"] {
                let (bc, kc) = (
                    format!("btf dump map {b} format {f}"),
                    format!("btf dump map {k} format {f}"),
                );
                same(&fs, &bc, &kc, &|s: &str| s.to_string(), &mut failures);
                compared += 1;
            }
        }
    }
    // Programs: the btf_id line of prog show.
    let mut progs: Vec<String> = std::fs::read_dir(&pins.progs)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    progs.sort();
    for p in &progs {
        let btf_line = |s: &str| {
            let l = s
                .lines()
                .find(|l| l.trim_start().starts_with("btf_id"))
                .unwrap_or("");
            mask_text(l)
        };
        let (bs, bo, _) = bpftool(&words(&format!("-j prog show pinned {kp}/{p}")));
        assert_eq!(bs, 0);
        kernel_btf = kernel_btf.or(btf_id_of(&bo));
        let (_, ko, _) = kbpf(
            &fs,
            &words(&format!("-j prog show pinned /sys/fs/bpf/p/{p}")),
        );
        kbpf_btf = kbpf_btf.or(btf_id_of(&ko));
        same(
            &fs,
            &format!("prog show pinned {kp}/{p}"),
            &format!("prog show pinned /sys/fs/bpf/p/{p}"),
            &btf_line,
            &mut failures,
        );
        compared += 1;
    }
    // The object's BTF.
    match (kernel_btf, kbpf_btf) {
        (Some(b), Some(k)) => {
            for f in ["format raw", "format c"] {
                same(
                    &fs,
                    &format!("btf dump id {b} {f}"),
                    &format!("btf dump id {k} {f}"),
                    &|s: &str| s.to_string(),
                    &mut failures,
                );
            }
            same(
                &fs,
                &format!("-j btf dump id {b}"),
                &format!("-j btf dump id {k}"),
                &|s: &str| s.to_string(),
                &mut failures,
            );
            same(
                &fs,
                &format!("btf show id {b}"),
                &format!("btf show id {k}"),
                &text,
                &mut failures,
            );
            same(
                &fs,
                &format!("-j btf show id {b}"),
                &format!("-j btf show id {k}"),
                &js,
                &mut failures,
            );
            compared += 5;
        }
        (None, None) => {}
        (b, k) => failures.push(format!("{stem}: BTF ids kernel {b:?}, kbpf {k:?}")),
    }
    (compared, failures)
}

#[test]
fn btf_and_typed_maps_match_bpftool() {
    if skip() {
        return;
    }
    let mut objects: Vec<PathBuf> = std::fs::read_dir(root().join("tests/objects"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !SKIP.iter().any(|(s, _)| *s == n)
        })
        .collect();
    objects.sort();
    objects.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/btf/btf_maps.bpf.o"));
    let mut all = Vec::new();
    let mut total = 0;
    for obj in &objects {
        let (n, f) = compare_object(obj);
        println!(
            "{}: {n} outputs compared, {} differ",
            obj.display(),
            f.len()
        );
        total += n;
        all.extend(f);
    }
    for (s, why) in SKIP {
        println!("not compared: {s}: {why}");
    }
    assert!(
        all.is_empty(),
        "{} of {total} differ:\n{}",
        all.len(),
        all.join("\n\n")
    );
    assert!(total > 100, "only {total} outputs compared");
}

/// `btf dump file` (raw, C, JSON) of every corpus object, the BTF test objects and the
/// running kernel's vmlinux: byte for byte bpftool's (needs bpftool, not bpf()).
#[test]
fn btf_dump_file_matches_bpftool() {
    if skip() {
        return;
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        root().join("tests/objects"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/btf"),
    ] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().to_string_lossy().ends_with(".bpf.o") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        files.push(PathBuf::from("/sys/kernel/btf/vmlinux"));
    }
    let fs = Bpffs::new("file");
    let mut failures = Vec::new();
    for f in &files {
        let f = f.display().to_string();
        for fmt in ["", " format raw", " format c", " format c -j"] {
            let (b, k) = (
                format!("btf dump file {f}{fmt}"),
                format!("btf dump file {f}{fmt}"),
            );
            same(&fs, &b, &k, &|s: &str| s.to_string(), &mut failures);
        }
        same(
            &fs,
            &format!("-j btf dump file {f}"),
            &format!("-j btf dump file {f}"),
            &|s: &str| s.to_string(),
            &mut failures,
        );
    }
    let short: Vec<String> = failures
        .iter()
        .map(|f| f.chars().take(2000).collect())
        .collect();
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        short.join("\n\n")
    );
}

/// Katran's objects (`scripts/katran-build.sh`, from `../shared/third_party/katran`): every map
/// `prog loadall` creates, `map show`/`dump`/`lookup` and `btf dump`, against bpftool; and
/// `btf dump file` of each object. The health-checking TC programs are not loaded yet (their
/// helpers are issue #15's).
#[test]
fn katran_maps_match_bpftool() {
    if skip() {
        return;
    }
    let Some(out) = common::katran_objects() else {
        return;
    };
    let mut all = Vec::new();
    let mut total = 0;
    for name in ["balancer", "xdp_root", "xdp_pktcntr"] {
        let obj = out.join(format!("{name}.bpf.o"));
        let (n, f) = compare_object(&obj);
        println!(
            "{}: {n} outputs compared, {} differ",
            obj.display(),
            f.len()
        );
        total += n;
        all.extend(f);
        let fs = Bpffs::new(&format!("katran-file-{name}"));
        let o = obj.display().to_string();
        for fmt in ["", " format raw", " format c"] {
            let c = format!("btf dump file {o}{fmt}");
            same(&fs, &c, &c, &|s: &str| s.to_string(), &mut all);
            total += 1;
        }
    }
    let short: Vec<String> = all.iter().map(|f| f.chars().take(3000).collect()).collect();
    assert!(
        all.is_empty(),
        "{} of {total} differ:\n{}",
        all.len(),
        short.join("\n\n")
    );
    assert!(total > 60, "only {total} outputs compared");
}

//! Kernel-differential test of the map commands: the batch files in `tests/batch/` run under
//! `bpftool batch file` (live kernel, pins in a unique `/sys/fs/bpf/kbpf-test-…` directory)
//! and `kbpf batch file` (the same `/sys/fs/bpf/…` paths, resolved inside a temporary
//! `--bpffs` directory), and every command's exit status, stdout and stderr must be equal
//! after normalising map ids (kbpf's ids are its own): `N:` at the start of `map show` lines
//! and 4-byte values that are map ids (outer-map lookups and dumps) are replaced by the map's
//! name on each side.
//!
//! - `mim.batch` (52 commands, all succeed): one batch run each side, plain text, and again
//!   under `-j` with the JSON compared per command;
//! - `mim_single.batch`: run after it, one invocation per line (bpftool's batch stops at the
//!   first error), mostly failing commands: mismatching inner maps, flags, full maps, grammar;
//! - `stop.batch`: a batch whose third command fails: both stop there with the same status.
//!
//! Skips (passing, with a `SKIP:` line) where bpftool or bpf() is unavailable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_cli::words::{logical_lines, split_line};
use serde_json::Value;

const KBPF: &str = env!("CARGO_BIN_EXE_kbpf");

/// Differences kbpf knows it has, by command (after `@D@` substitution of the template) and
/// what differs. Each must still differ exactly there (the test fails once it is fixed, so the
/// entry gets removed).
/// (The hash-family `memlock` that once differed here agrees since kbpf-maps' `struct bpf_htab`
/// size follows this kernel build.)
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// A kernel pin directory and a kbpf bpffs directory holding the same relative directory.
struct Pair {
    name: String,
    kernel: PathBuf,
    bpffs: PathBuf,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("kbpf-test-{}-{nanos}-{tag}", std::process::id());
        let kernel = PathBuf::from("/sys/fs/bpf").join(&name);
        let bpffs = std::env::temp_dir().join(format!("{name}-bpffs"));
        std::fs::create_dir_all(bpffs.join(&name)).unwrap();
        Pair {
            name,
            kernel,
            bpffs,
        }
    }

    fn subst(&self, text: &str) -> String {
        text.replace("@D@", &format!("/sys/fs/bpf/{}", self.name))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.kernel);
        let _ = std::fs::remove_dir_all(&self.bpffs);
    }
}

/// Why the kernel side cannot run, if it cannot.
fn unavailable() -> Option<String> {
    match Command::new("bpftool").arg("version").output() {
        Err(e) => return Some(format!("bpftool not runnable: {e}")),
        Ok(o) if !o.status.success() => return Some("bpftool version failed".into()),
        Ok(_) => {}
    }
    let mounted = Command::new("mountpoint")
        .args(["-q", "/sys/fs/bpf"])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        let _ = std::fs::create_dir_all("/sys/fs/bpf");
        let ok = Command::new("mount")
            .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some("bpffs not mounted at /sys/fs/bpf and mount failed".into());
        }
    }
    let probe = Pair::new("probe");
    if std::fs::create_dir_all(&probe.kernel).is_err() {
        return Some("cannot create a directory in /sys/fs/bpf".into());
    }
    let p = probe.kernel.join("probe");
    let out = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&p)
        .args([
            "type", "array", "key", "4", "value", "4", "entries", "1", "name", "probe",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return Some(format!(
            "bpftool map create failed (no bpf()?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    None
}

#[derive(Debug, PartialEq)]
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let o = cmd.output().expect("spawn");
    Run {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn bpftool(args: &[String]) -> Run {
    run(Command::new("bpftool").args(args))
}

fn kbpf(pair: &Pair, args: &[String]) -> Run {
    // kbpf follows the live kernel's profile (memlock sizes, verifier messages), so the
    // comparison holds on every kernel build and still catches what the profile cannot explain.
    run(Command::new(KBPF)
        .args(["--kernel", "host", "--bpffs"])
        .arg(&pair.bpffs)
        .args(args))
}

/// id → name on one side, from `-j map show pinned P` of every pin in the directory.
fn ids(dir: &Path, show: impl Fn(&[String]) -> Run) -> HashMap<u64, String> {
    let mut m = HashMap::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let args: Vec<String> = vec![
            "-j".into(),
            "map".into(),
            "show".into(),
            "pinned".into(),
            format!(
                "/sys/fs/bpf/{}/{name}",
                dir.file_name().unwrap().to_string_lossy()
            ),
        ];
        let r = show(&args);
        let Ok(v) = serde_json::from_str::<Value>(&r.stdout) else {
            continue;
        };
        if let (Some(id), Some(n)) = (v["id"].as_u64(), v["name"].as_str()) {
            m.insert(id, n.to_string());
        }
    }
    m
}

fn id_bytes(bytes: &[u8]) -> Option<u64> {
    // Any 4-byte value may be an id (the kernel's ids pass 65,535 once enough maps have been
    // made on the machine); it is replaced only if it names a map of the test.
    match bytes {
        [a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d]) as u64).filter(|&id| id != 0),
        _ => None,
    }
}

/// Replaces map ids by names in plain text.
fn normalize_text(text: &str, ids: &HashMap<u64, String>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        if let Some((num, rest)) = line.split_once(':')
            && !num.is_empty()
            && num.chars().all(|c| c.is_ascii_digit())
            && let Ok(id) = num.parse::<u64>()
        {
            let name = ids
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("unknown-id-{id}"));
            l = format!("<id of {name}>:{rest}");
        }
        if let Some((head, val)) = l.split_once("value: ") {
            let bytes: Option<Vec<u8>> = val
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).ok())
                .collect();
            if let Some(id) = bytes.as_deref().and_then(id_bytes)
                && let Some(name) = ids.get(&id)
            {
                l = format!("{head}value: <map {name}>");
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Replaces map ids by names in bpftool JSON.
fn normalize_json(v: &mut Value, ids: &HashMap<u64, String>) {
    match v {
        Value::Object(o) => {
            if let Some(id) = o.get("id").and_then(Value::as_u64) {
                let name = ids
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("unknown-id-{id}"));
                o.insert("id".into(), Value::String(format!("<id of {name}>")));
            }
            if let Some(Value::Array(a)) = o.get("value") {
                let bytes: Option<Vec<u8>> = a
                    .iter()
                    .map(|b| {
                        b.as_str()
                            .and_then(|s| u8::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                    })
                    .collect();
                if let Some(id) = bytes.as_deref().and_then(id_bytes)
                    && let Some(name) = ids.get(&id)
                {
                    o.insert("value".into(), Value::String(format!("<map {name}>")));
                }
            }
            for (_, x) in o.iter_mut() {
                normalize_json(x, ids);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalize_json(x, ids)),
        _ => {}
    }
}

fn batch_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/batch")
}

fn write_batch(pair: &Pair, file: &str) -> PathBuf {
    let text = std::fs::read_to_string(batch_path().join(file)).unwrap();
    let p = pair.bpffs.join(format!("{file}.subst"));
    std::fs::write(&p, pair.subst(&text)).unwrap();
    p
}

fn both_ids(pair: &Pair) -> (HashMap<u64, String>, HashMap<u64, String>) {
    let k = ids(&pair.kernel, bpftool);
    let b = ids(&pair.bpffs.join(&pair.name), |a| kbpf(pair, a));
    assert!(k.len() >= 6 && b.len() >= 6, "ids: kernel {k:?} kbpf {b:?}");
    (k, b)
}

#[test]
fn map_in_map_batch_matches_bpftool() {
    if let Some(why) = unavailable() {
        println!("SKIP: kernel side unavailable: {why}");
        return;
    }
    let pair = Pair::new("mim");
    std::fs::create_dir_all(&pair.kernel).unwrap();
    let file = write_batch(&pair, "mim.batch");
    let file_arg = file.display().to_string();
    let args = vec!["batch".to_string(), "file".into(), file_arg];
    let k = bpftool(&args);
    let b = kbpf(&pair, &args);
    assert_eq!(k.status, 0, "bpftool failed on mim.batch: {}", k.stderr);
    assert!(k.stdout.contains("processed 52 commands"), "{}", k.stdout);
    let (kid, bid) = both_ids(&pair);
    assert_eq!(b.status, k.status, "kbpf stderr: {}", b.stderr);
    assert_eq!(b.stderr, k.stderr);
    let (kn, bn) = (
        normalize_text(&k.stdout, &kid),
        normalize_text(&b.stdout, &bid),
    );
    assert!(
        kn.contains("value: <map in64>"),
        "normalisation found no inner id:\n{kn}"
    );
    for (i, (kl, bl)) in kn.lines().zip(bn.lines()).enumerate() {
        assert_eq!(bl, kl, "mim.batch output line {}", i + 1);
    }
    assert_eq!(bn, kn);
    println!("mim.batch: {} output lines equal", kn.lines().count());

    // One command per invocation, after mim.batch.
    let text = std::fs::read_to_string(batch_path().join("mim_single.batch")).unwrap();
    let mut compared = 0;
    let mut failing = 0;
    for line in logical_lines(&text) {
        let words = split_line(&pair.subst(&line), 0).unwrap();
        if words.is_empty() {
            continue;
        }
        let k = bpftool(&words);
        let b = kbpf(&pair, &words);
        let cmd = words.join(" ");
        let known = KNOWN_DIFFERENCES
            .iter()
            .find(|(c, _)| pair.subst(c) == cmd)
            .map(|(_, what)| *what);
        let (kid, bid) = both_ids(&pair);
        let kn = normalize_text(&k.stdout, &kid);
        let bn = normalize_text(&b.stdout, &bid);
        assert_eq!(
            b.status, k.status,
            "status of `{cmd}`: kbpf {b:?} kernel {k:?}"
        );
        assert_eq!(b.stderr, k.stderr, "stderr of `{cmd}`");
        match known {
            None => assert_eq!(bn, kn, "stdout of `{cmd}`"),
            Some(field) => {
                assert_ne!(
                    bn, kn,
                    "`{cmd}` now agrees: remove it from KNOWN_DIFFERENCES"
                );
                let strip = |s: &str| s.split(field).next().unwrap_or_default().to_string();
                assert_eq!(strip(&bn), strip(&kn), "`{cmd}` differs beyond {field}");
                println!("known difference in `{cmd}`: kernel {kn:?} kbpf {bn:?}");
            }
        }
        compared += 1;
        if k.status != 0 {
            failing += 1;
        }
    }
    assert!(
        compared >= 60 && failing >= 40,
        "{compared} compared, {failing} failing"
    );
    println!("mim_single.batch: {compared} commands compared, {failing} of them failing");

    // A batch that fails in the middle stops there, with the failing command's status.
    let file = write_batch(&pair, "stop.batch");
    let args = vec![
        "batch".to_string(),
        "file".into(),
        file.display().to_string(),
    ];
    let k = bpftool(&args);
    let b = kbpf(&pair, &args);
    assert_eq!(k.status, 234, "{k:?}");
    assert_eq!(b, k);
    // The command after the failing one did not run (slot 3 keeps the second command's value).
    let lookup = split_line(&pair.subst("map lookup pinned @D@/in5 key 3 0 0 0"), 0).unwrap();
    let (k, b) = (bpftool(&lookup), kbpf(&pair, &lookup));
    assert!(k.stdout.contains("value: 03 00 00 aa"), "{k:?}");
    assert_eq!(b, k);
}

#[test]
fn map_in_map_batch_json_matches_bpftool() {
    if let Some(why) = unavailable() {
        println!("SKIP: kernel side unavailable: {why}");
        return;
    }
    let pair = Pair::new("mimj");
    std::fs::create_dir_all(&pair.kernel).unwrap();
    let file = write_batch(&pair, "mim.batch");
    for flag in ["-j"] {
        let args = vec![
            flag.to_string(),
            "batch".into(),
            "file".into(),
            file.display().to_string(),
        ];
        let k = bpftool(&args);
        let b = kbpf(&pair, &args);
        assert_eq!((k.status, b.status), (0, 0), "{k:?} {b:?}");
        let (kid, bid) = both_ids(&pair);
        let mut kv: Value = serde_json::from_str(&k.stdout).unwrap();
        let mut bv: Value = serde_json::from_str(&b.stdout).unwrap();
        normalize_json(&mut kv, &kid);
        normalize_json(&mut bv, &bid);
        let (ka, ba) = (kv.as_array().unwrap(), bv.as_array().unwrap());
        assert_eq!(ka.len(), 52);
        for (kc, bc) in ka.iter().zip(ba) {
            assert_eq!(bc, kc, "JSON of {}", kc["command"]);
        }
        assert_eq!(ba.len(), ka.len());
        assert!(kv.to_string().contains("<map in64>"));
    }
}

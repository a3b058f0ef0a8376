//! Driving the installed `bpftool` for kernel-differential tests: JSON output (normalised
//! where bpftool 7.1 prints non-JSON), unique pin directories under `/sys/fs/bpf` that are
//! removed on drop (also when a test panics), `prog loadall`, and a probe that says why the
//! kernel side is unavailable so tests can skip with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Runs `bpftool -j ARGS…` and parses its JSON output.
pub fn bpftool_json(args: &[&str]) -> Result<Value, String> {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| format!("bpftool: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bpftool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = normalize_bpftool_json(&String::from_utf8_lossy(&out.stdout));
    serde_json::from_str(&text).map_err(|e| format!("bpftool {args:?}: bad JSON: {e}"))
}

/// bpftool 7.1's BTF dumper writes pointers and bitfields as bare `0x…` and null
/// pointers as `(nil)`, which is not JSON; turn them into the numbers they stand for.
pub fn normalize_bpftool_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
        } else if s[i..].starts_with("(nil)") {
            out.push('0');
            i += 5;
            continue;
        } else if s[i..].starts_with("0x") {
            let end = s[i + 2..]
                .find(|ch: char| !ch.is_ascii_hexdigit())
                .map_or(s.len(), |e| i + 2 + e);
            if let Ok(v) = u64::from_str_radix(&s[i + 2..end], 16) {
                out.push_str(&v.to_string());
                i = end;
                continue;
            }
        }
        out.push(c as char);
        i += 1;
    }
    out
}

/// Unique pin directories (`PREFIX_<pid>_<nanos>_<stem>` and `…_maps`) that are removed when
/// dropped, also when a test panics.
pub struct Pins {
    /// Where `prog loadall` pins the programs.
    pub progs: PathBuf,
    /// Where `pinmaps` pins the maps.
    pub maps: PathBuf,
}

impl Pins {
    /// New unique paths under `/sys/fs/bpf` for `prefix` (e.g. `kbpfobj`) and `stem`.
    pub fn new(prefix: &str, stem: &str) -> Pins {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let base = format!(
            "/sys/fs/bpf/{prefix}_{}_{nanos}_{}",
            std::process::id(),
            stem.replace('.', "_")
        );
        Pins {
            progs: PathBuf::from(&base),
            maps: PathBuf::from(format!("{base}_maps")),
        }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.progs);
        let _ = std::fs::remove_dir_all(&self.maps);
    }
}

/// `bpftool prog loadall OBJ PINS.progs pinmaps PINS.maps`; the error is bpftool's stderr.
pub fn loadall(obj: &Path, pins: &Pins) -> Result<(), String> {
    let out = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(obj)
        .arg(&pins.progs)
        .arg("pinmaps")
        .arg(&pins.maps)
        .output()
        .map_err(|e| format!("bpftool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Why the kernel side is unavailable, if it is: bpftool missing, bpffs not mounted, or
/// loading `probe_obj` failed (typically no `bpf()` permission).
pub fn unavailable(probe_obj: &Path) -> Option<String> {
    match Command::new("bpftool").arg("version").output() {
        Err(e) => return Some(format!("bpftool not runnable: {e}")),
        Ok(o) if !o.status.success() => return Some("bpftool version failed".into()),
        Ok(_) => {}
    }
    if !Path::new("/sys/fs/bpf").is_dir() {
        return Some("bpffs not mounted at /sys/fs/bpf".into());
    }
    let pins = Pins::new("kbpfprobe", "probe");
    match loadall(probe_obj, &pins) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "bpftool prog loadall failed (no bpf() permission?): {}",
            e.trim()
        )),
    }
}

/// Bytes of bpftool's `["0x01","0x00",…]` lists (numbers accepted too).
pub fn hex_bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| match b {
                    Value::String(s) => u8::from_str_radix(s.trim_start_matches("0x"), 16).ok(),
                    Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

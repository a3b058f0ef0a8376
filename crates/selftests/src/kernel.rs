//! The kernel side: `kload` (scripts/selftests/kload.c) loads each program of an object
//! into the running kernel on its own, through the kernel tree's libbpf, and reports one
//! JSON line per program.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// `CAP_SYS_ADMIN`: the kernel's `test_verifier` and `prog_tests/verifier.c` drop it.
pub const CAP_SYS_ADMIN: u64 = 1 << 21;
/// `CAP_PERFMON`: `verifier_mtu` also runs without it.
pub const CAP_PERFMON: u64 = 1 << 38;

/// How to load one program.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// The program.
    pub name: String,
    /// Log level.
    pub log_level: i32,
    /// `prog_flags` (OR-ed with the section's own).
    pub prog_flags: u32,
    /// Programs loaded with it (`__auxiliary`).
    pub auxiliary: Vec<String>,
    /// Test-run it once loaded (`__retval`), as test_loader does.
    pub run: bool,
    /// The BTF CO-RE relocations resolve against (`__btf_path`, absolute).
    pub btf_path: Option<std::path::PathBuf>,
}

/// How the kernel's verifier judged one program.
#[derive(Clone, Debug, Default)]
pub struct KernelResult {
    /// Program name.
    pub name: String,
    /// ELF section.
    pub section: String,
    /// `BPF_PROG_TYPE_*` libbpf chose.
    pub prog_type: u32,
    /// Loaded.
    pub accepted: bool,
    /// errno of a failed load.
    pub errno: i32,
    /// `verifier` (the kernel answered, log or not), `libbpf` (libbpf stopped before the
    /// program reached the verifier, or the kernel refused it without a log), `open`.
    pub stage: String,
    /// The last non-empty line before `processed N insns` (libbpf's line when no log).
    pub error_line: String,
    /// `verified_insns` (bpf_prog_info) or the `processed` count; -1 when unknown.
    pub verified_insns: i64,
    /// The kernel's own `verification time N usec` (BPF_LOG_STATS); -1 when unknown.
    pub verify_us: i64,
    /// Log level used.
    pub log_level: i32,
    /// Flags used.
    pub prog_flags: u32,
    /// The verifier log.
    pub log: String,
    /// libbpf's messages (less the logs it repeats).
    pub libbpf_log: String,
    /// The test run's return value (when one was asked for and succeeded).
    pub retval: Option<i32>,
    /// errno of a failed test run.
    pub run_errno: i32,
}

impl KernelResult {
    /// The kernel never judged the program because of this machine, not the program:
    /// libbpf or the kernel refused it with `EPERM` and no verifier message (tracing, LSM and
    /// iterator programs, arena maps: refused here even to root; the log is empty or only
    /// `processed 0 insns`).
    pub fn unavailable(&self) -> bool {
        !self.accepted
            && self.errno == 1
            && self
                .log
                .lines()
                .all(|l| l.trim().is_empty() || l.starts_with("processed 0 insns"))
    }

    fn from_json(v: &serde_json::Value) -> KernelResult {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        KernelResult {
            name: s("name"),
            section: s("section"),
            prog_type: v["prog_type"].as_u64().unwrap_or(0) as u32,
            accepted: v["verdict"] == "accept",
            errno: v["errno"].as_i64().unwrap_or(0) as i32,
            stage: s("stage"),
            error_line: s("error_line"),
            verified_insns: v["verified_insns"].as_i64().unwrap_or(-1),
            verify_us: v["verify_us"].as_i64().unwrap_or(-1),
            log_level: v["log_level"].as_i64().unwrap_or(0) as i32,
            prog_flags: v["prog_flags"].as_u64().unwrap_or(0) as u32,
            log: s("log"),
            libbpf_log: s("libbpf_log"),
            retval: v["retval"].as_i64().map(|r| r as i32),
            run_errno: v["run_errno"].as_i64().unwrap_or(0) as i32,
        }
    }
}

/// Runs `kload` on `obj` for the programs of `plan`, without the capabilities in
/// `drop_caps`; `init_map` gets the selftests' `struct test_val` before each test run.
pub fn load_each(
    kload: &Path,
    obj: &Path,
    plan: &[PlanEntry],
    drop_caps: u64,
    init_map: Option<&str>,
) -> Result<Vec<KernelResult>, String> {
    let mut cmd = Command::new(kload);
    if let Some(m) = init_map {
        cmd.arg("-m").arg(m);
    }
    let mut child = cmd
        .arg("-c")
        .arg(format!("{drop_caps:#x}"))
        .arg("-p")
        .arg("-")
        .arg(obj)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", kload.display()))?;
    let mut text = String::new();
    for p in plan {
        let aux = if p.auxiliary.is_empty() {
            "-".to_owned()
        } else {
            p.auxiliary.join(",")
        };
        text.push_str(&format!(
            "{}\t{}\t{:#x}\t{aux}\t{}\t{}\n",
            p.name,
            p.log_level,
            p.prog_flags,
            u8::from(p.run),
            p.btf_path
                .as_deref()
                .map_or("-".into(), |b| b.display().to_string())
        ));
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .map_err(|e| format!("kload stdin: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("kload: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kload {} failed ({}): {}",
            obj.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(|v| KernelResult::from_json(&v))
                .map_err(|e| format!("kload output: {e}: {l:.200}"))
        })
        .collect()
}

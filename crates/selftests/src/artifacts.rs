//! The built selftests: runs `scripts/selftests.sh` (idempotent and cached) and reads what
//! it left: the objects, the per-source build status, the kernel oracle `kload`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How one `progs/verifier_*.c` built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildStatus {
    /// Compiled as the selftests Makefile compiles it (`-Werror`).
    Ok,
    /// Compiled only without `-Werror` (the first error under it).
    Warn(String),
    /// Did not compile (clang's first error).
    Fail(String),
}

/// One source file of the suite.
#[derive(Clone, Debug)]
pub struct Source {
    /// `verifier_and`, …
    pub name: String,
    /// Its build.
    pub status: BuildStatus,
}

impl Source {
    /// The object, when the source compiled.
    pub fn object(&self, artifacts: &Artifacts) -> Option<PathBuf> {
        match self.status {
            BuildStatus::Fail(_) => None,
            _ => Some(
                artifacts
                    .dir
                    .join("obj")
                    .join(format!("{}.bpf.o", self.name)),
            ),
        }
    }
}

/// The output of `scripts/selftests.sh`.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// `$KBPF_SELFTESTS_DIR` (default `target/selftests` in the repository).
    pub dir: PathBuf,
    /// The kernel oracle.
    pub kload: PathBuf,
    /// The tree's veristat, or why it did not build.
    pub veristat: Result<PathBuf, String>,
    /// Every `progs/verifier_*.c`, by name.
    pub sources: Vec<Source>,
    /// What the script printed.
    pub script_output: String,
}

impl Artifacts {
    /// Where the objects are.
    pub fn obj_dir(&self) -> PathBuf {
        self.dir.join("obj")
    }
}

/// Why the suite cannot run here.
#[derive(Clone, Debug)]
pub enum Unavailable {
    /// A prerequisite is missing (the script's message says what to install).
    Missing(String),
    /// The build failed.
    Failed(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Missing(m) => write!(f, "missing prerequisite: {m}"),
            Unavailable::Failed(m) => write!(f, "build failed: {m}"),
        }
    }
}

/// The repository's root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Where the script puts its output: `$KBPF_SELFTESTS_DIR`, else `target/selftests`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("KBPF_SELFTESTS_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("target/selftests"),
    }
}

/// Runs `scripts/selftests.sh` for `dir` and reads its output.
pub fn ensure(dir: &Path) -> Result<Artifacts, Unavailable> {
    let script = repo_root().join("scripts/selftests.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("KBPF_SELFTESTS_DIR", dir)
        .output()
        .map_err(|e| Unavailable::Failed(format!("{}: {e}", script.display())))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => {}
        Some(3) => return Err(Unavailable::Missing(text.trim().to_owned())),
        _ => return Err(Unavailable::Failed(text)),
    }
    let dir = dir
        .canonicalize()
        .map_err(|e| Unavailable::Failed(format!("{}: {e}", dir.display())))?;
    let tsv = std::fs::read_to_string(dir.join("build.tsv"))
        .map_err(|e| Unavailable::Failed(format!("build.tsv: {e}")))?;
    let sources = tsv
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let name = f.next().unwrap_or_default().to_owned();
            let status = f.next().unwrap_or_default();
            let detail = f.next().unwrap_or_default().to_owned();
            let status = match status {
                "ok" => BuildStatus::Ok,
                "warn" => BuildStatus::Warn(detail),
                _ => BuildStatus::Fail(detail),
            };
            Source { name, status }
        })
        .collect();
    let veristat = match std::fs::read_to_string(dir.join("veristat.missing")) {
        Ok(why) => Err(format!("veristat did not build: {}", why.trim())),
        Err(_) if dir.join("veristat").is_file() => Ok(dir.join("veristat")),
        Err(_) => Err("scripts/selftests.sh left no veristat".to_owned()),
    };
    Ok(Artifacts {
        kload: dir.join("kload"),
        veristat,
        dir,
        sources,
        script_output: text,
    })
}

//! The committed BPF objects are exactly what their sources build with the pinned clang.
//!
//! Tests read committed `.o` files so that building kbpf needs no clang. This test keeps them
//! honest: it copies each corpus (sources plus its `build.sh`) to a scratch directory, runs the
//! build script there with `clang-19` (Debian bookworm's 19.1.7, which `.ci/run` installs), and
//! compares every object byte for byte with the committed one. The build scripts pass
//! `-fdebug-compilation-dir=.` so that DWARF and BTF carry no checkout path, which is what makes
//! a rebuild in another directory identical. Skips with a message where clang-19 is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn objects_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(
                objects_under(&path)
                    .into_iter()
                    .map(|p| Path::new(path.file_name().unwrap()).join(p)),
            );
        } else if path.extension().is_some_and(|e| e == "o") {
            out.push(PathBuf::from(path.file_name().unwrap()));
        }
    }
    out.sort();
    out
}

/// Rebuilds the corpus in `rel_dir` (relative to the repository root) in a scratch directory
/// and returns the objects whose bytes differ from the committed ones.
fn rebuild_and_compare(rel_dir: &str) -> Vec<String> {
    let committed = repo_root().join(rel_dir);
    let scratch = std::env::temp_dir().join(format!(
        "kbpf-repro-{}-{}",
        std::process::id(),
        rel_dir.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_dir(&committed, &scratch);
    let status = Command::new("sh")
        .arg(scratch.join("build.sh"))
        .env("CLANG", "clang-19")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run build.sh");
    assert!(
        status.success(),
        "{rel_dir}/build.sh failed in {}",
        scratch.display()
    );
    let objects = objects_under(&committed);
    assert!(!objects.is_empty(), "no committed objects under {rel_dir}");
    let differing = objects
        .iter()
        .filter(|rel| {
            let a = std::fs::read(committed.join(rel)).unwrap();
            let b = std::fs::read(scratch.join(rel)).unwrap_or_default();
            a != b
        })
        .map(|rel| format!("{rel_dir}/{}", rel.display()))
        .collect();
    std::fs::remove_dir_all(&scratch).unwrap();
    differing
}

#[test]
fn committed_objects_are_what_the_sources_build() {
    let version = Command::new("clang-19").arg("--version").output();
    let Ok(version) = version else {
        println!("SKIP: clang-19 is not installed; .ci/run installs it");
        return;
    };
    let text = String::from_utf8_lossy(&version.stdout);
    if !text.contains("19.1.7") {
        println!(
            "SKIP: objects were built with clang 19.1.7, this is {}",
            text.lines().next().unwrap_or("")
        );
        return;
    }
    let mut differing = rebuild_and_compare("tests/objects");
    differing.extend(rebuild_and_compare("crates/maglev/bpf"));
    assert!(
        differing.is_empty(),
        "committed objects differ from a rebuild of their sources (run the build.sh next to them and commit): {differing:?}"
    );
}

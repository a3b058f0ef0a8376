//! Which kernel kbpf follows (`--kernel`, `--kernel-btf`, `$KBPF_KERNEL`) and
//! `kbpf kernel profile`, which prints that profile and where each field came from.
//!
//! The profile ([`kbpf_profile::KernelProfile`]) is chosen once per process and held in the
//! session's options; every map the session creates, every program it verifies and rewrites
//! follows it.

use kbpf_profile::KernelProfile;

use crate::json::Json;
use crate::session::{Reply, Session};
use crate::words::is_prefix;

/// How `--kernel WHICH` names a profile.
pub const KERNEL_CHOICES: &str = "builtin | host | FILE.json";

/// Resolves the profile from `--kernel WHICH` and `--kernel-btf FILE` (at most one of them;
/// without either, `$KBPF_KERNEL`, else the built-in profile).
pub fn resolve(kernel: Option<&str>, kernel_btf: Option<&str>) -> Result<KernelProfile, String> {
    resolve_with(
        kernel,
        kernel_btf,
        std::env::var("KBPF_KERNEL").ok().as_deref(),
    )
}

/// [`resolve`] with `$KBPF_KERNEL` given (the daemon resolves its clients' environments).
pub fn resolve_with(
    kernel: Option<&str>,
    kernel_btf: Option<&str>,
    env: Option<&str>,
) -> Result<KernelProfile, String> {
    match (kernel, kernel_btf) {
        (Some(_), Some(_)) => Err("give one of --kernel and --kernel-btf".into()),
        (None, Some(btf)) => KernelProfile::from_btf_file(btf).map_err(|e| e.to_string()),
        (Some(which), None) => by_name(which),
        (None, None) => match env {
            Some(which) if !which.is_empty() => {
                by_name(which).map_err(|e| format!("$KBPF_KERNEL: {e}"))
            }
            _ => Ok(KernelProfile::builtin()),
        },
    }
}

fn by_name(which: &str) -> Result<KernelProfile, String> {
    match which {
        "builtin" | "built-in" => Ok(KernelProfile::builtin()),
        "host" => kbpf_kernel::host_profile().map_err(|e| format!("--kernel host: {e}")),
        file if file.ends_with(".json") => {
            KernelProfile::from_json_file(file).map_err(|e| e.to_string())
        }
        other => Err(format!(
            "unknown kernel '{other}' (expected {KERNEL_CHOICES})"
        )),
    }
}

/// The BTF CO-RE relocations resolve against under `p`: the profile's own vmlinux BTF
/// (`--kernel-btf FILE`) where it has one that exists here, else `None` (the loader then
/// reads the running kernel's, as libbpf does).
pub fn core_target(p: &KernelProfile) -> Result<Option<std::sync::Arc<kbpf_object::Btf>>, String> {
    match &p.btf_path {
        Some(path) if std::path::Path::new(path).exists() => kbpf_object::core::load_btf_file(path)
            .map(|b| Some(std::sync::Arc::new(b)))
            .map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

const HELP: &str = "\
Usage: kbpf kernel profile
       kbpf kernel help

       Prints the kernel profile kbpf follows: map layouts and memlock sizes, context
       struct offsets, verifier and rewrite behaviours, each with its origin (built-in,
       a vmlinux BTF, or a probe of the running kernel). Choose it with the global
       options --kernel { builtin | host | FILE.json } or --kernel-btf FILE (default
       $KBPF_KERNEL, else builtin). `-j` prints it as JSON, which --kernel FILE.json reads.
";

/// `kbpf kernel …`.
pub fn command(s: &mut Session, words: &[String], _object: &str) -> Reply {
    match words.first().map(String::as_str) {
        None => Reply::usage(HELP),
        Some(w) if is_prefix(w, "help") => Reply::ok(HELP, Json::Null),
        Some(w) if is_prefix(w, "profile") => {
            if words.len() > 1 {
                return Reply::err(format!("unexpected argument '{}'", words[1]), -1);
            }
            profile(&s.opts.profile)
        }
        Some(w) => Reply::err(
            format!("unknown command '{w}' (try 'kbpf kernel help')"),
            -1,
        ),
    }
}

fn profile(p: &KernelProfile) -> Reply {
    let mut text = p.render();
    let builtin = KernelProfile::builtin();
    let diff = p.diff(&builtin);
    if !diff.is_empty() && *p != builtin {
        text.push_str("differs from built-in:\n");
        for (name, ours, theirs) in &diff {
            text.push_str(&format!("  {name}: {ours} (built-in {theirs})\n"));
        }
    }
    let value = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
    Reply::ok(text, Json::from(&value))
}

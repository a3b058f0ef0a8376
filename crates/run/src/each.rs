//! Every program of an object verified on its own, as `veristat` does: the object's maps are
//! created once, then each program goes through the verifier and the rewrite by itself, so a
//! rejected program does not hide the others (libbpf would abort the whole object load).
//!
//! This is the engine of `kbpf veristat` and of the kernel-selftests suite.

use std::path::Path;
use std::time::{Duration, Instant};

use kbpf_maps::Registry;
use kbpf_object::BpfObject;
use kbpf_rewrite::RewriteError;
use kbpf_verifier::Stats;

use crate::{LoadOptions, ProgLoadError, Program, funcs_btf, maps_env};

/// One program's verification.
#[derive(Clone, Debug)]
pub struct ProgVerification {
    /// Program (function) name.
    pub name: String,
    /// ELF section (`xdp`, `tc`, `?socket`…).
    pub section: String,
    /// `BPF_PROG_TYPE_*` of the section.
    pub prog_type: u32,
    /// `Ok` when the verifier accepted; the failure's one-line message otherwise (the
    /// verifier's message, or what stopped the program before the verifier).
    pub result: Result<(), String>,
    /// Whether kbpf can also run the accepted program: the rewrite's error otherwise (e.g. a
    /// helper the verifier knows but kbpf does not implement yet).
    pub runnable: Result<(), String>,
    /// errno of a failure (EACCES/EINVAL from the verifier, others from loading).
    pub errno: i32,
    /// The verifier log (level as asked).
    pub log: String,
    /// The verifier's statistics (zero when it never ran).
    pub stats: Stats,
    /// Verification plus rewrite time.
    pub duration: Duration,
}

impl ProgVerification {
    /// Whether the program was accepted.
    pub fn accepted(&self) -> bool {
        self.result.is_ok()
    }
}

/// Why an object could not be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum EachError {
    /// The ELF could not be opened or parsed.
    #[error("{0}")]
    Open(String),
}

/// Verifies every program of the object at `path` on its own, under `opts` (log level,
/// kernel profile). An object whose maps cannot be created still lists each program, as a
/// failure carrying that error (veristat's per-program view of a failed object load).
pub fn verify_each(path: &Path, opts: &LoadOptions) -> Result<Vec<ProgVerification>, EachError> {
    let mut obj = BpfObject::open(path).map_err(|e| EachError::Open(e.to_string()))?;
    if opts.veristat_fixups {
        use kbpf_uapi::bpf::{
            BPF_MAP_TYPE_CGROUP_STORAGE, BPF_MAP_TYPE_INODE_STORAGE, BPF_MAP_TYPE_SK_STORAGE,
            BPF_MAP_TYPE_TASK_STORAGE,
        };
        for m in obj.maps.iter_mut().filter(|m| {
            m.max_entries == 0
                && !matches!(
                    m.map_type,
                    BPF_MAP_TYPE_SK_STORAGE
                        | BPF_MAP_TYPE_TASK_STORAGE
                        | BPF_MAP_TYPE_INODE_STORAGE
                        | BPF_MAP_TYPE_CGROUP_STORAGE
                )
        }) {
            m.max_entries = 1;
        }
    }
    let registry = Registry::new();
    let lopts = kbpf_loader::LoadOptions {
        maps_profile: opts.profile.maps,
        core_target: opts.core_target.clone(),
        ..Default::default()
    };
    let loaded = match kbpf_loader::load_object(&obj, &registry, &lopts) {
        Ok(l) => l,
        Err(e) => {
            let msg = e.to_string();
            return Ok(obj
                .programs
                .iter()
                .map(|p| ProgVerification {
                    name: p.name.clone(),
                    section: p.section.clone(),
                    prog_type: p.prog_type(),
                    result: Err(msg.clone()),
                    runnable: Err(msg.clone()),
                    errno: 22,
                    log: String::new(),
                    stats: Stats::default(),
                    duration: Duration::ZERO,
                })
                .collect());
        }
    };
    let env = maps_env(&loaded);
    let mut out = Vec::with_capacity(loaded.programs.len());
    for lp in &loaded.programs {
        let btf = funcs_btf(&obj, lp);
        let start = Instant::now();
        let r = Program::load(lp, &env, opts, &btf);
        let duration = start.elapsed();
        let (result, runnable, errno, log, stats) = match r {
            Ok(p) => (Ok(()), Ok(()), 0, p.verifier_log, p.stats),
            Err(ProgLoadError::Verifier {
                error, log, stats, ..
            }) => {
                let m = error.message.clone();
                (Err(m.clone()), Err(m), error.errno, log, *stats)
            }
            // Verified, but kbpf cannot translate it yet (a helper it does not implement, an
            // instruction its rewrite lacks): the verdict is the verifier's. Other rewrite
            // failures (jump range, ...) fail the kernel's load too.
            Err(ProgLoadError::Rewrite {
                error:
                    error @ (RewriteError::HelperNotImplemented { .. }
                    | RewriteError::Unsupported { .. }),
                log,
                stats,
                ..
            }) => (Ok(()), Err(error.to_string()), 0, log, stats),
            Err(e) => {
                let m = e.to_string();
                (
                    Err(m.clone()),
                    Err(m),
                    e.errno(),
                    String::new(),
                    Stats::default(),
                )
            }
        };
        out.push(ProgVerification {
            name: lp.name.clone(),
            section: lp.section.clone(),
            prog_type: lp.prog_type,
            result,
            runnable,
            errno,
            log,
            stats,
            duration,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/objects")
            .join(name)
    }

    #[test]
    fn every_program_of_an_object_is_verified_alone() {
        let v = verify_each(&object("aom_inner_map.bpf.o"), &LoadOptions::default()).unwrap();
        assert!(!v.is_empty());
        for p in &v {
            assert!(p.accepted(), "{}: {:?}", p.name, p.result);
            assert!(p.stats.insn_processed > 0);
            assert!(p.stats.total_states <= p.stats.insn_processed);
        }
    }

    #[test]
    fn a_missing_object_is_an_open_error() {
        assert!(matches!(
            verify_each(&object("no_such.bpf.o"), &LoadOptions::default()),
            Err(EachError::Open(_))
        ));
    }
}

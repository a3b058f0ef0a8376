//! What `benches/verify.rs` and `examples/verify_vs_kernel.rs` load: every program of the
//! verifier corpus (`crates/verifier/tests/corpus/*.txt`, accepted and rejected) and every
//! program kbpf runs of the clang-built objects of `tests/objects_xlated.rs`, each ready for
//! `kbpf_verifier::verify` and `kbpf_run::Program::load` (relocated instructions, maps by fd,
//! BTF prototypes), plus what is needed to replicate its maps in the kernel.

#![allow(dead_code)] // the bench and the example use different parts

#[path = "../../../verifier/tests/common/mod.rs"]
pub mod common;
#[path = "../../../verifier/tests/common/kbpf_env.rs"]
pub mod kbpf_env;

use std::path::PathBuf;

use kbpf_loader::{LoadedObject, LoadedProgram};

use kbpf_rewrite::MapsEnv;
use kbpf_verifier::{Options, ProgType, Verdict, verify};

/// Where one program comes from.
pub enum Source {
    /// A corpus file (map fd = index into `case.maps`).
    Corpus(common::Case),
    /// A clang-built object loaded by `kbpf-loader` (map fds are kbpf registry fds).
    Object {
        /// Path relative to the workspace root.
        path: String,
        /// The loaded object: its maps, kept alive for the whole run.
        loaded: std::sync::Arc<LoadedObject>,
    },
}

/// One program, ready to load.
pub struct Item {
    /// `corpus/<case>` or `<object>.<prog>`.
    pub name: String,
    /// The program as `BPF_PROG_LOAD` receives it.
    pub prog: LoadedProgram,
    /// Its maps by fd.
    pub env: MapsEnv,
    /// BTF prototypes of its functions (for the rewrite's dump metadata).
    pub funcs_btf: Vec<(Option<String>, String)>,
    /// Program type.
    pub prog_type: ProgType,
    /// License.
    pub license: String,
    /// Where it came from.
    pub source: Source,
}

impl Item {
    /// `kbpf_verifier::verify` at log level 0 (what a loader such as libbpf asks for first;
    /// the kernel is timed without the instruction trace too).
    pub fn verify(&self) -> Verdict {
        verify(
            &self.prog.insns,
            &self.env,
            &Options::new(self.prog_type).log_level(0),
        )
    }

    /// `kbpf_run::Program::load` at log level 0: verify + rewrite (+ helper wiring).
    pub fn load(&self) -> Result<kbpf_run::Program, kbpf_run::ProgLoadError> {
        kbpf_run::Program::load(
            &self.prog,
            &self.env,
            &kbpf_run::LoadOptions {
                log_level: 0,
                ..Default::default()
            },
            &self.funcs_btf,
        )
    }

    /// Whether this is a corpus program that must be rejected.
    pub fn expect_reject(&self) -> bool {
        matches!(&self.source, Source::Corpus(c) if c.expect == common::Expect::Reject)
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The objects of `tests/objects_xlated.rs` (the ones kbpf loads today).
pub const OBJECTS: &[&str] = &[
    "tests/objects/aom_inner_map.bpf.o",
    "tests/objects/aom_plain.bpf.o",
    "tests/objects/hom_slots.bpf.o",
    "tests/objects/global_data.bpf.o",
    "tests/objects/bounded_loop.bpf.o",
    "tests/golden/disasm/alu.v3.o",
    "tests/golden/disasm/maps.v3.o",
    "tests/golden/disasm/alu.v4.o",
    "tests/golden/disasm/maps.v4.o",
    "tests/golden/disasm/v4.v4.o",
    "tests/objects/multi_prog.bpf.o",
    "crates/maglev/bpf/maglev.bpf.o",
];

/// kbpf's maps for a corpus case: fd = index, templates passed as `inner_map_fd`.
pub fn corpus_env(case: &common::Case) -> MapsEnv {
    kbpf_env::kbpf_env(case)
}

/// Every corpus program (accepted and rejected), by file name.
pub fn corpus() -> Vec<Item> {
    common::corpus()
        .into_iter()
        .map(|case| Item {
            name: format!("corpus/{}", case.name),
            prog: LoadedProgram::from_insns(&case.name, case.prog_type, case.insns.clone()),
            env: corpus_env(&case),
            funcs_btf: vec![],
            prog_type: ProgType::from_u32(case.prog_type).expect("corpus prog type"),
            license: "GPL".into(),
            source: Source::Corpus(case),
        })
        .collect()
}

/// Every program kbpf runs (XDP, tc, socket filter) of every object in [`OBJECTS`].
pub fn objects() -> Vec<Item> {
    let mut out = Vec::new();
    for rel in OBJECTS {
        let path = root().join(rel);
        let parsed = kbpf_object::BpfObject::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The registry owns the fd numbers the instructions name: keep it for the process.
        let reg: &'static kbpf_maps::Registry = Box::leak(Box::default());
        let loaded = kbpf_loader::load_object(&parsed, reg, &kbpf_loader::LoadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let loaded = std::sync::Arc::new(loaded);
        let env = kbpf_run::maps_env(&loaded);
        let stem = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".o")
            .replace(".bpf", "");
        for p in &loaded.programs {
            let Some(prog_type) = ProgType::from_u32(p.prog_type) else {
                continue;
            };
            out.push(Item {
                name: format!("{stem}.{}", p.name),
                prog: p.clone(),
                env: env.clone(),
                funcs_btf: kbpf_run::funcs_btf(&parsed, p),
                prog_type,
                license: loaded.license.clone(),
                source: Source::Object {
                    path: rel.to_string(),
                    loaded: loaded.clone(),
                },
            });
        }
    }
    out
}

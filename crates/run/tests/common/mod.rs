//! Helpers shared by kbpf-run's integration tests.

use std::path::Path;

use kbpf_loader::LoadedObject;
use kbpf_run::{ProgLoadError, Program};

/// Opens the object at `path`, creates its maps in a fresh registry and loads every program
/// through kbpf's verifier and rewrite: the loaded object, and each program's result in
/// object order.
// The error is `Program::load`'s own (it carries the verifier's log), passed on as it is.
#[allow(clippy::result_large_err)]
pub fn load_programs(path: &Path) -> (LoadedObject, Vec<Result<Program, ProgLoadError>>) {
    let obj = kbpf_object::BpfObject::open(path).unwrap();
    let reg = kbpf_maps::Registry::new();
    let loaded =
        kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default()).unwrap();
    let env = kbpf_run::maps_env(&loaded);
    let progs = loaded
        .programs
        .iter()
        .map(|p| {
            let btf = kbpf_run::funcs_btf(&obj, p);
            Program::load(p, &env, &kbpf_run::LoadOptions::default(), &btf)
        })
        .collect();
    (loaded, progs)
}

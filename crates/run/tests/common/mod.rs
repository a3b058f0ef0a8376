//! What kbpf-run's integration test binaries share: an object loaded by kbpf's loader, its
//! programs loaded (verified, rewritten) by name or all at once. Each binary uses a part.
#![allow(dead_code)]

use std::path::Path;

use kbpf_loader::LoadedObject;
use kbpf_run::{ProgLoadError, Program};

/// An object as kbpf loaded it; the maps live as long as this does.
pub struct KbpfObject {
    obj: kbpf_object::BpfObject,
    /// The loader's result (maps by name, programs).
    pub loaded: LoadedObject,
    env: kbpf_rewrite::MapsEnv,
}

impl KbpfObject {
    /// Opens and loads `path` (panics on failure: the objects are the tests' own).
    pub fn open(path: &Path) -> KbpfObject {
        let obj = kbpf_object::BpfObject::open(path).unwrap();
        let reg = kbpf_maps::Registry::new();
        let loaded =
            kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default()).unwrap();
        let env = kbpf_run::maps_env(&loaded);
        KbpfObject { obj, loaded, env }
    }

    /// `Program::load` of one of the object's programs with default options.
    // The error is `Program::load`'s own (it carries the verifier's log), passed on as it is.
    #[allow(clippy::result_large_err)]
    fn load(&self, p: &kbpf_loader::LoadedProgram) -> Result<Program, ProgLoadError> {
        let btf = kbpf_run::funcs_btf(&self.obj, p);
        Program::load(p, &self.env, &kbpf_run::LoadOptions::default(), &btf)
    }

    /// The program `name`, loaded with default options; panics with the verifier log.
    pub fn program(&self, name: &str) -> Program {
        let p = self.loaded.program(name).unwrap();
        self.load(p)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", e.log().unwrap_or("")))
    }
}

/// Opens the object at `path`, creates its maps in a fresh registry and loads every program
/// through kbpf's verifier and rewrite: the loaded object, and each program's result in
/// object order.
#[allow(clippy::result_large_err)]
pub fn load_programs(path: &Path) -> (LoadedObject, Vec<Result<Program, ProgLoadError>>) {
    let k = KbpfObject::open(path);
    let progs = k.loaded.programs.iter().map(|p| k.load(p)).collect();
    (k.loaded, progs)
}

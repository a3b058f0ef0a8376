//! What the kernel-differential test binaries share: an object loaded by kbpf's loader, its
//! programs loaded (verified, rewritten) by name.

use std::path::Path;

use kbpf_run::Program;

/// An object as kbpf loaded it; the maps live as long as this does.
pub struct KbpfObject {
    obj: kbpf_object::BpfObject,
    /// The loader's result (maps by name, programs).
    pub loaded: kbpf_loader::LoadedObject,
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

    /// The program `name`, loaded with default options; panics with the verifier log.
    pub fn program(&self, name: &str) -> Program {
        let p = self.loaded.program(name).unwrap();
        Program::load(
            p,
            &self.env,
            &kbpf_run::LoadOptions::default(),
            &kbpf_run::funcs_btf(&self.obj, p),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", e.log().unwrap_or("")))
    }
}

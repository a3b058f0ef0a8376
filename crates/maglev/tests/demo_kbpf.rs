//! The demo engine with a reduced configuration on kbpf's own datapath: `maglev.bpf.o`
//! verified and translated by kbpf and run on its interpreter and on its JIT, with the
//! control plane on kbpf's maps. Every packet must reach exactly the backend the Rust
//! Maglev table names, existing flows must stick through table swaps, and the numbers must
//! be the ones the kernel datapath gives (`demo_kernel.rs` checks the same properties).
use std::path::Path;

use kbpf_maglev::OBJECT_PATH;
use kbpf_maglev::demo::{DemoConfig, run_demo};
use kbpf_maglev::kbpf_datapath::{KbpfDatapath, load};
use kbpf_run::Engine;

mod common;

fn small_demo(engine: Engine) {
    let cfg = DemoConfig::small();
    let (loaded, mut lb) = load(Path::new(OBJECT_PATH), cfg.lb).expect("load into kbpf");
    let mut dp = KbpfDatapath::new(&loaded, engine).expect("engine");
    let mut phases = Vec::new();
    let r = run_demo(&cfg, &mut lb, &mut dp, &mut |p| {
        assert!(p.done <= p.total);
        if phases.last() != Some(&p.phase) {
            phases.push(p.phase);
        }
    })
    .expect("demo");
    common::check_small_report(&cfg, &r, &lb, &phases);
}

#[test]
fn small_demo_on_kbpf_interpreter() {
    small_demo(Engine::Interpreter);
}

#[test]
fn small_demo_on_kbpf_jit() {
    small_demo(Engine::Jit);
}

#[test]
fn the_inner_lookup_is_a_direct_call_and_the_outer_is_inlined() {
    let cfg = DemoConfig::small();
    let (loaded, _lb) = load(Path::new(OBJECT_PATH), cfg.lb).expect("load into kbpf");
    let text = loaded.program.dump_xlated(&Default::default());
    // Services: HASH_OF_MAPS lookups are inlined (__htab_map_lookup_elem + value offset);
    // each service's BPF_F_INNER_MAP inner array is reached by a direct call.
    assert!(text.contains("call array_map_lookup_elem#"), "{text}");
    assert!(text.contains("call __htab_map_lookup_elem#"), "{text}");
    assert!(
        !text.contains("call bpf_map_lookup_elem#"),
        "no generic lookup left:\n{text}"
    );
}

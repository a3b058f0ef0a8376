//! The demo engine with a reduced configuration on the live kernel's datapath.
//! Prints `SKIP: …` and passes where bpf()/bpftool/bpffs are unavailable.
use std::path::Path;

use kbpf_maglev::OBJECT_PATH;
use kbpf_maglev::control::kernel;
use kbpf_maglev::demo::{DemoConfig, KernelDatapath, run_demo};

mod common;

#[test]
fn small_demo_on_the_kernel() {
    if let Some(why) = kernel::unavailable() {
        println!("SKIP: {why}");
        return;
    }
    let cfg = DemoConfig::small();
    let (load, mut lb) = kernel::load(Path::new(OBJECT_PATH), cfg.lb).expect("load");
    let mut dp = KernelDatapath::new(&load.prog);
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

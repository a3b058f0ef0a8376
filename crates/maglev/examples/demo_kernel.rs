//! The full Maglev demo on the live kernel's datapath (what `kbpf maglev demo --backend
//! kernel` runs): `cargo run --release -p kbpf-maglev --example demo_kernel [--json] [--plot DIR] [--small]`.
use std::path::PathBuf;

use kbpf_maglev::control::kernel;
use kbpf_maglev::demo::{DemoConfig, KernelDatapath, run_demo};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(why) = kernel::unavailable() {
        eprintln!("SKIP: {why}");
        return;
    }
    let cfg = if args.iter().any(|a| a == "--small") {
        DemoConfig::small()
    } else {
        DemoConfig::default()
    };
    let (load, mut lb) = kernel::load(std::path::Path::new(kbpf_maglev::OBJECT_PATH), cfg.lb)
        .expect("load maglev.bpf.o");
    let mut dp = KernelDatapath::new(&load.prog);
    let mut last = "";
    let report = run_demo(&cfg, &mut lb, &mut dp, &mut |p| {
        if p.phase != last || p.done == p.total {
            eprintln!("{}: {}/{}", p.phase, p.done, p.total);
            last = p.phase;
        }
    })
    .expect("demo");
    if args.iter().any(|a| a == "--json") {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if let Some(i) = args.iter().position(|a| a == "--plot") {
        let dir = PathBuf::from(args.get(i + 1).expect("--plot DIR"));
        for p in kbpf_maglev::plot::write_plots(&report, &dir).expect("write plots") {
            eprintln!("wrote {}", p.display());
        }
    }
}

//! The full Maglev demo (what `kbpf maglev demo` runs):
//! `cargo run --release -p kbpf-maglev --example demo -- [--backend kbpf|kernel]
//! [--engine jit|interp] [--json] [--plot DIR] [--small]`.
use std::path::{Path, PathBuf};

use kbpf_maglev::control::Progress;
use kbpf_maglev::control::kernel;
use kbpf_maglev::demo::{Datapath, DemoConfig, DemoReport, KernelDatapath, run_demo};
use kbpf_maglev::kbpf_datapath::{KbpfDatapath, load};

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = if args.iter().any(|a| a == "--small") {
        DemoConfig::small()
    } else {
        DemoConfig::default()
    };
    let mut last = "";
    let mut progress = |p: Progress| {
        if p.phase != last || p.done == p.total {
            eprintln!("{}: {}/{}", p.phase, p.done, p.total);
            last = p.phase;
        }
    };
    let object = Path::new(kbpf_maglev::OBJECT_PATH);
    let report: DemoReport = match arg(&args, "--backend").unwrap_or("kbpf") {
        "kernel" => {
            if let Some(why) = kernel::unavailable() {
                eprintln!("SKIP: {why}");
                return;
            }
            let (load, mut lb) = kernel::load(object, cfg.lb).expect("load maglev.bpf.o");
            let mut dp = KernelDatapath::new(&load.prog);
            run_demo(&cfg, &mut lb, &mut dp, &mut progress).expect("demo")
        }
        _ => {
            let engine = match arg(&args, "--engine").unwrap_or("jit") {
                "interp" => kbpf_run::Engine::Interpreter,
                _ => kbpf_run::Engine::Jit,
            };
            let (loaded, mut lb) = load(object, cfg.lb).expect("load maglev.bpf.o into kbpf");
            let mut dp = KbpfDatapath::new(&loaded, engine).expect("engine");
            eprintln!("datapath: {}", dp.name());
            run_demo(&cfg, &mut lb, &mut dp, &mut progress).expect("demo")
        }
    };
    if args.iter().any(|a| a == "--json") {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if let Some(dir) = arg(&args, "--plot") {
        for p in kbpf_maglev::plot::write_plots(&report, &PathBuf::from(dir)).expect("plots") {
            eprintln!("wrote {}", p.display());
        }
    }
}

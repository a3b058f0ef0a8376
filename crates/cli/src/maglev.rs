//! `kbpf maglev demo`: the Maglev load balancer demo of `kbpf-maglev` (10,000 services on
//! map-in-map, per-service tables sized by `BPF_F_INNER_MAP`, ≥ 1,000,000 packets replayed
//! through the XDP datapath, backend churn under traffic) with a progress bar on stderr, the
//! report on stdout (text, or one JSON object with `--json`) and SVG plots with `--plot DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use kbpf_maglev::demo::{DemoConfig, DemoReport};

/// `kbpf maglev help`.
pub const USAGE: &str = "\
Usage: kbpf maglev demo [--json] [--plot DIR] [--backend kbpf|kernel] [--engine jit|interp] [--small]
       kbpf maglev help

  demo   10,000 services with a skewed, seeded backend-count distribution; builds every
         service's Maglev table (inner arrays sized per service with BPF_F_INNER_MAP),
         loads crates/maglev/bpf/maglev.bpf.o, replays >= 1,000,000 synthetic packets,
         removes and adds backends under traffic, and reports memory (per-service vs
         flat 65,537 vs global 16,381 tables), balance, disruption, connection-tracking
         stickiness, table build time (N=1000, M=65,537) and datapath packets/s.
  --json          print the report as one JSON object
  --plot DIR      write load_per_backend.svg, memory_by_design.svg and
                  disruption_by_table_size.svg into DIR
  --backend B     kbpf (default): kbpf's maps, verifier, rewrite, JIT or interpreter;
                  kernel: the same object and control plane on the live kernel (bpf())
  --engine E      jit (default) or interp: the kbpf backend's engine
  --small         a reduced configuration (seconds instead of tens of seconds)
";

/// Arguments of `kbpf maglev`.
#[derive(Debug, clap::Args)]
pub struct MaglevArgs {
    /// `demo` (or `help`).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the SVG plots into DIR.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Where the datapath runs.
    #[arg(long, value_enum, default_value_t = Backend::Kbpf)]
    pub backend: Backend,
    /// A reduced configuration.
    #[arg(long)]
    pub small: bool,
    /// The engine of the kbpf backend.
    #[arg(long, value_enum, default_value_t = DemoEngine::Jit)]
    pub engine: DemoEngine,
}

/// `--engine` of the kbpf backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoEngine {
    /// kbpf's x86-64 JIT.
    Jit,
    /// kbpf's interpreter.
    Interp,
}

impl From<DemoEngine> for kbpf_run::Engine {
    fn from(e: DemoEngine) -> kbpf_run::Engine {
        match e {
            DemoEngine::Jit => kbpf_run::Engine::Jit,
            DemoEngine::Interp => kbpf_run::Engine::Interpreter,
        }
    }
}

/// `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// kbpf's own maps, verifier, rewrite and engine.
    Kbpf,
    /// The live kernel through bpf().
    Kernel,
}

/// Runs `kbpf maglev …`.
pub fn command(a: &MaglevArgs) -> ExitCode {
    match a.command.as_deref() {
        Some("demo") => {}
        None | Some("help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("Error: unknown maglev command '{other}'\n{USAGE}");
            return ExitCode::from(255);
        }
    }
    let cfg = if a.small {
        DemoConfig::small()
    } else {
        DemoConfig::default()
    };
    let report = match run(a.backend, a.engine, &cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(255);
        }
    };
    if a.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if let Some(dir) = &a.plot {
        match kbpf_maglev::plot::write_plots(&report, dir) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("Error: writing plots into {}: {e}", dir.display());
                return ExitCode::from(255);
            }
        }
    }
    ExitCode::SUCCESS
}

/// A progress callback drawing one bar per phase on stderr.
fn progress_bar() -> impl FnMut(kbpf_maglev::control::Progress) {
    let mut bar: Option<(ProgressBar, &'static str)> = None;
    let style = ProgressStyle::with_template(
        "{msg:>16} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    move |p: kbpf_maglev::control::Progress| {
        let fresh = !matches!(&bar, Some((_, phase)) if *phase == p.phase);
        if fresh {
            if let Some((b, _)) = bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(p.total);
            b.set_style(style.clone());
            b.set_message(p.phase);
            bar = Some((b, p.phase));
        }
        if let Some((b, _)) = &bar {
            b.set_length(p.total);
            b.set_position(p.done);
            if p.done >= p.total {
                b.finish();
            }
        }
    }
}

fn run(backend: Backend, engine: DemoEngine, cfg: &DemoConfig) -> Result<DemoReport, String> {
    let mut progress = progress_bar();
    match backend {
        Backend::Kernel => {
            use kbpf_maglev::control::kernel;
            use kbpf_maglev::demo::{KernelDatapath, run_demo};
            if let Some(why) = kernel::unavailable() {
                return Err(format!("--backend kernel: {why}"));
            }
            let (load, mut lb) =
                kernel::load(std::path::Path::new(kbpf_maglev::OBJECT_PATH), cfg.lb)
                    .map_err(|e| format!("loading {}: {e}", kbpf_maglev::OBJECT_PATH))?;
            let mut dp = KernelDatapath::new(&load.prog);
            run_demo(cfg, &mut lb, &mut dp, &mut progress).map_err(|e| e.to_string())
        }
        Backend::Kbpf => {
            use kbpf_maglev::demo::run_demo;
            use kbpf_maglev::kbpf_datapath::{KbpfDatapath, load};
            let (loaded, mut lb) = load(std::path::Path::new(kbpf_maglev::OBJECT_PATH), cfg.lb)
                .map_err(|e| format!("loading {}: {e}", kbpf_maglev::OBJECT_PATH))?;
            let mut dp = KbpfDatapath::new(&loaded, engine.into()).map_err(|e| e.to_string())?;
            run_demo(cfg, &mut lb, &mut dp, &mut progress).map_err(|e| e.to_string())
        }
    }
}

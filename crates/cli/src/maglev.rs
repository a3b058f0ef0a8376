//! `kbpf maglev demo`: the Maglev load balancer demo of `kbpf-maglev` (10,000 services on
//! map-in-map, per-service tables sized by `BPF_F_INNER_MAP`, ≥ 1,000,000 packets replayed
//! through the XDP datapath, backend churn under traffic) with a progress bar on stderr, the
//! report on stdout (text, or one JSON object with `--json`) and SVG plots with `--plot DIR`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::process::{Command, Stdio};

use indicatif::{ProgressBar, ProgressStyle};
use kbpf_maglev::demo::{DemoConfig, DemoReport};
use kbpf_maglev::live::{LiveConfig, SwapReport, TrafficReport, control_plane, drive_traffic};

/// `kbpf maglev help`.
pub const USAGE: &str = "\
Usage: kbpf maglev demo [--json] [--plot DIR] [--backend kbpf|kernel] [--engine jit|interp] [--small]
       kbpf [--bpffs DIR] maglev live [--json] [--small]
       kbpf [--bpffs DIR] maglev ctl --maps DIR
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

  live   the live deployment: the datapath runs in the kbpf daemon of the bpffs directory
         (a fresh one unless --bpffs is given) on 1,000,000 packets while a control plane in
         another process (`kbpf maglev control`) makes 1,000 backend changes, each a new
         inner map swapped into the outer map; every packet is checked (misrouted must be
         0) and the time per change is reported

  ctl    the control plane of a deployed datapath, as a line protocol on stdin/stdout
         (`service VIP:PORT/tcp BACKEND...`, `add`, `drain`, `remove`, `pick`, `show`,
         `quit`; see kbpf_maglev::control::lines). --maps names the directory where
         `prog loadall maglev.bpf.o … pinmaps DIR` pinned the maps (a /sys/fs/bpf path,
         in the daemon of --bpffs). It owns the load balancer while it runs.
         scripts/maglev-netns.sh deploys it with `kbpf net attach` in network namespaces.
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
    /// `ctl`: the directory the datapath's maps are pinned in.
    #[arg(long, value_name = "DIR")]
    pub maps: Option<String>,
    /// `live`/`control`: the pin directory's name under the bpffs directory.
    #[arg(long, hide = true, value_name = "NAME")]
    pub pin: Option<String>,
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
pub fn command(a: &MaglevArgs, bpffs: Option<&Path>) -> ExitCode {
    match a.command.as_deref() {
        Some("demo") => {}
        Some("live") => return live(a, bpffs),
        Some("control") => return control(a, bpffs),
        Some("ctl") => return ctl(a, bpffs),
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

fn live_config(a: &MaglevArgs) -> LiveConfig {
    if a.small {
        LiveConfig::small()
    } else {
        LiveConfig::default()
    }
}

/// `kbpf maglev live`: loads the datapath into the daemon, starts the control plane as
/// another process, drives the traffic and checks every packet.
fn live(a: &MaglevArgs, bpffs: Option<&Path>) -> ExitCode {
    match live_run(a, bpffs) {
        Ok((traffic, swaps)) => {
            let overlap_ms = traffic.to_ms.min(swaps.changes_to_ms) as i64
                - traffic.from_ms.max(swaps.changes_from_ms) as i64;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "traffic": traffic,
                        "control": swaps,
                        "overlap_ms": overlap_ms.max(0),
                    })
                );
            } else {
                println!(
                    "datapath in the kbpf daemon: {} packets in {:.2} s ({:.0} packets/s, round trips included)\n\
                     \tforwarded {}  misrouted {}  dropped {}  passed {}\n\
                     control plane in another process: {} backend changes, {} inner maps swapped\n\
                     \ttime per change: median {:.0} µs, p99 {:.0} µs, max {:.0} µs (install {:.2} s)\n\
                     \tchanges and traffic overlapped for {} ms",
                    traffic.packets,
                    traffic.elapsed_s,
                    traffic.pps,
                    traffic.forwarded,
                    traffic.misrouted,
                    traffic.dropped,
                    traffic.passed,
                    swaps.changes,
                    swaps.table_swaps,
                    swaps.p50_us,
                    swaps.p99_us,
                    swaps.max_us,
                    swaps.install_s,
                    overlap_ms.max(0)
                );
            }
            if traffic.misrouted == 0 && traffic.passed == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("Error: misrouted or unhandled packets");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(255)
        }
    }
}

fn live_run(a: &MaglevArgs, bpffs: Option<&Path>) -> Result<(TrafficReport, SwapReport), String> {
    let cfg = live_config(a);
    let (dir, fresh) = match bpffs {
        Some(d) => (std::path::absolute(d).map_err(|e| e.to_string())?, false),
        None => (
            std::env::temp_dir().join(format!("kbpf-maglev-live-{}", std::process::id())),
            true,
        ),
    };
    let pin = format!("maglev-live-{}", std::process::id());
    std::fs::create_dir_all(dir.join(&pin)).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        let mut client = crate::client::connect_or_start(&dir).map_err(|e| e.to_string())?;
        let prog_dir = format!("/sys/fs/bpf/{pin}/prog");
        let map_dir = format!("/sys/fs/bpf/{pin}/maps");
        let (_, err, st) = client
            .command(
                &[
                    "prog",
                    "loadall",
                    kbpf_maglev::OBJECT_PATH,
                    &prog_dir,
                    "pinmaps",
                    &map_dir,
                ],
                Path::new("/"),
            )
            .map_err(|e| e.to_string())?;
        if st != 0 {
            return Err(format!("loading {}: {err}", kbpf_maglev::OBJECT_PATH));
        }
        let (_, prog_id) = client
            .obj_get(&format!("{prog_dir}/maglev_xdp"))
            .map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.arg("--bpffs")
            .arg(&dir)
            .args(["maglev", "control", "--pin", &pin])
            .stdout(Stdio::piped());
        if a.small {
            cmd.arg("--small");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting the control plane: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        match lines.next() {
            Some(Ok(l)) if l == "ready" => {}
            other => {
                let _ = child.wait();
                return Err(format!("the control plane did not get ready: {other:?}"));
            }
        }
        let bar = ProgressBar::new(cfg.packets);
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} [{elapsed_precise}] {wide_bar} {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("live traffic");
        let traffic = drive_traffic(&mut client, prog_id, &cfg, |n| bar.set_position(n))
            .map_err(|e| e.to_string());
        bar.finish();
        let last = lines.map_while(Result::ok).last().unwrap_or_default();
        let status = child.wait().map_err(|e| e.to_string())?;
        let traffic = traffic?;
        if !status.success() {
            return Err(format!("the control plane failed ({status})"));
        }
        let swaps: SwapReport = serde_json::from_str(&last)
            .map_err(|e| format!("the control plane's report ({last}): {e}"))?;
        Ok((traffic, swaps))
    })();
    // Unpinning frees the objects in the daemon.
    let _ = std::fs::remove_dir_all(dir.join(&pin));
    if fresh {
        if let Ok(mut c) = kbpf_client::Client::connect(&dir) {
            let _ = c.call(&kbpf_client::Request::Shutdown);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// `kbpf maglev control --pin NAME`: the control plane process of `maglev live`.
fn control(a: &MaglevArgs, bpffs: Option<&Path>) -> ExitCode {
    let cfg = live_config(a);
    let Some(pin) = &a.pin else {
        eprintln!("Error: maglev control needs --pin NAME");
        return ExitCode::from(255);
    };
    let dir = bpffs
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::pinned::default_bpffs);
    let client = match kbpf_client::Client::connect(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: no kbpf daemon serves {}: {e}", dir.display());
            return ExitCode::from(255);
        }
    };
    let r = control_plane(client, &format!("/sys/fs/bpf/{pin}/maps"), &cfg, || {
        use std::io::Write;
        println!("ready");
        let _ = std::io::stdout().flush();
    });
    match r {
        Ok(rep) => {
            println!("{}", serde_json::to_string(&rep).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `kbpf maglev ctl --maps DIR`: the line-protocol control plane of a deployed datapath.
fn ctl(a: &MaglevArgs, bpffs: Option<&Path>) -> ExitCode {
    use kbpf_maglev::control::{DaemonOps, LbConfig, LoadBalancer};
    let Some(maps) = &a.maps else {
        eprintln!("Error: maglev ctl needs --maps DIR (where the datapath's maps are pinned)");
        return ExitCode::from(255);
    };
    let dir = bpffs
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::pinned::default_bpffs);
    let client = match crate::client::connect_or_start(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: no kbpf daemon for {}: {e}", dir.display());
            return ExitCode::from(255);
        }
    };
    let ops = DaemonOps::new(client);
    let lb = ops
        .open_pinned(maps)
        .and_then(|m| LoadBalancer::new(ops, m, LbConfig::default()));
    let mut lb = match lb {
        Ok(lb) => lb,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(255);
        }
    };
    let stdin = std::io::stdin();
    match kbpf_maglev::control::lines::serve_lines(&mut lb, stdin.lock(), std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

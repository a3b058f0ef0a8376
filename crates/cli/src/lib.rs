//! The `kbpf` command line (bpftool-style), as a library so that commands can be tested and
//! their pieces reused; `main.rs` only parses arguments and calls [`run`].
//!
//! Modules:
//! - [`engine`]: choosing and running an execution engine (interpreter now, JIT later) on a
//!   program and a memory block, with the conformance suite's helpers;
//! - [`conformance`]: the bpf_conformance `.data` format and the `kbpf conformance DIR` runner;
//! - [`plugin`]: `kbpf conformance-plugin`, the suite runner's plugin protocol;
//! - [`run`]: `kbpf run FILE`, one program on one packet with bpftool's result line;
//! - [`bpftool`]: the bpftool grammar (`kbpf [OPTIONS] OBJECT COMMAND …`) and `batch file`;
//!   [`session`] holds one process's objects and pinned state, [`map`], [`prog`], [`btf`]
//!   and [`net`] their commands, [`handle`] the map handles and `show` selection they share;
//! - [`words`]: the keyword grammar shared by the command line and batch files (prefixes,
//!   `DATA`, batch-line quoting); [`json`]: bpftool's JSON layouts;
//! - [`batch`]: `batch file FILE`, bpftool's batch mode;
//! - [`daemon`]: the daemon that owns a bpffs directory's live objects (`kbpf daemon …`) and
//!   its `bpf()`-shaped requests; [`client`]: the CLI's side of it (forwarding a command
//!   line); [`cmdline`]: the parsed command line all three take;
//! - [`pinned`]: the bpffs directory's state file (the daemon's checkpoint), locking and
//!   crash-safe writes;
//! - [`kernel`]: which kernel profile the session follows, and `kbpf kernel profile`;
//! - [`veristat`]: `kbpf veristat OBJ…`, the kernel's veristat on kbpf's verifier.
//!
//! `main.rs` sends `run`, `conformance`, `conformance-plugin`, `maglev` and `veristat` (and
//! `--help`) through clap and everything else through [`bpftool::main`].
//!
//! The bpftool-grammar modules are layered, each naming only those below it (no import
//! circles, `tests/module_graph.rs`):
//! - [`words`], [`json`], [`pinned`]: grammar, output and the state file;
//! - [`session`]: the objects and their state (maps, programs, BTF table, net context,
//!   journal) and [`session::Reply`]; [`cmdline`];
//! - [`handle`], [`kernel`]; then the object modules [`prog`] < [`btf`] < [`map`], and
//!   [`net`] (on [`prog`]) and [`batch`] beside them;
//! - [`client`] (on [`prog`] for `prog run … pcap_in`), then [`daemon`], then [`bpftool`],
//!   which dispatches to every object and hands the daemon its dispatch.
#![deny(missing_docs)]

pub mod batch;
pub mod bpftool;
pub mod btf;
pub mod client;
pub mod cmdline;
pub mod conformance;
pub mod daemon;
pub mod engine;
pub mod handle;
pub mod json;
pub mod kernel;
pub mod maglev;
pub mod map;
pub mod net;
pub mod pinned;
pub mod plugin;
pub mod prog;
pub mod run;
pub mod session;
pub mod veristat;
pub mod words;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line arguments of `kbpf`.
#[derive(Debug, Parser)]
#[command(
    name = "kbpf",
    version,
    about = "A kernel-faithful eBPF runtime in user space",
    long_about = "A kernel-faithful eBPF runtime in user space.\n\n\
        Besides the subcommands below, kbpf speaks bpftool's grammar:\n  \
        kbpf [--bpffs DIR] [-j|--json] [-p|--pretty] [-d|--debug] OBJECT COMMAND ...\n\
        with OBJECT := { map | prog | btf | batch | daemon } and keywords accepted by prefix (`kbpf map sh`).\n\
        `kbpf map help`, `kbpf prog help` and `kbpf btf help` list the commands; `kbpf batch file FILE` runs a\n\
        bpftool batch file. `kbpf maglev demo` runs the Maglev load balancer demo;\n\
        `kbpf veristat OBJ...` prints verifier statistics like the kernel's veristat.\n\
        Paths under /sys/fs/bpf/ resolve inside the bpffs directory (--bpffs DIR, default\n\
        $KBPF_BPFFS, else $XDG_RUNTIME_DIR/kbpf/bpffs, else /tmp/kbpf-$UID/bpffs), whose daemon\n\
        (started on demand; `kbpf daemon start|stop|status`) keeps the objects live and shared\n\
        between processes. Exit status as bpftool: 0, 255, or 256 - errno."
)]
pub struct Cli {
    /// The directory playing /sys/fs/bpf for pinned objects (bpftool-grammar commands).
    #[arg(long, global = true, value_name = "DIR")]
    pub bpffs: Option<PathBuf>,
    /// JSON output (bpftool-grammar commands).
    #[arg(short, long, global = true)]
    pub json: bool,
    /// Pretty JSON output, implies --json (bpftool-grammar commands).
    #[arg(short, long, global = true)]
    pub pretty: bool,
    /// Debug notes on stderr: state loads and saves (bpftool-grammar commands).
    #[arg(short, long, global = true)]
    pub debug: bool,
    /// The kernel profile to follow: builtin | host | FILE.json (bpftool-grammar commands
    /// and veristat; default $KBPF_KERNEL, else builtin).
    #[arg(long, global = true, value_name = "WHICH")]
    pub kernel: Option<String>,
    /// The kernel profile from a vmlinux BTF file (bpftool-grammar commands and veristat).
    #[arg(long = "kernel-btf", global = true, value_name = "FILE")]
    pub kernel_btf: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every bpf_conformance `.data` file in DIR and report failures.
    Conformance(ConformanceArgs),
    /// Run one program under the bpf_conformance runner's plugin protocol: program bytes as hex
    /// on stdin, memory as hex in the first argument; prints r0 in hex.
    #[command(name = "conformance-plugin")]
    ConformancePlugin(PluginArgs),
    /// Run one program (assembly or raw instructions) on a packet: r1 = data, r2 = length.
    Run(run::RunArgs),
    /// bpftool's map commands: create, show/list, dump, lookup, update, delete, getnext, pin,
    /// peek/push/pop (see `kbpf map help`).
    #[command(
        long_about = map::USAGE,
        disable_help_flag = true
    )]
    Map(WordsArgs),
    /// bpftool's prog commands: load/loadall, show/list, dump xlated (opcodes, linum,
    /// visual) and jited, run (bpftool's `Return value: R, duration: Dns`, --engine
    /// jit|interp), pin (see `kbpf prog help`).
    #[command(long_about = prog::USAGE, disable_help_flag = true)]
    Prog(WordsArgs),
    /// bpftool's btf commands: show/list the BTF objects loaded with programs and maps, dump
    /// one (or an object file's, or vmlinux's) as raw types or C (see `kbpf btf help`).
    #[command(long_about = btf::USAGE, disable_help_flag = true)]
    Btf(WordsArgs),
    /// The Maglev load balancer demo: `kbpf maglev demo [--json] [--plot DIR]
    /// [--backend kbpf|kernel] [--engine jit|interp] [--small]` (see `kbpf maglev help`).
    #[command(long_about = maglev::USAGE)]
    Maglev(maglev::MaglevArgs),
    /// `batch file FILE`: run a bpftool batch file (one command per line, `#` comments,
    /// quotes) in one process; stops at the first failing command with its exit status.
    #[command(disable_help_flag = true)]
    Batch(WordsArgs),
    /// The kernel's veristat on kbpf's verifier: each program's verdict, time, instructions
    /// and states as a table or CSV (`-o csv`), `-e`/`-s`/`-f` stats, sorting and filters,
    /// `-C A.csv B.csv` comparison, `-R R.csv` replay.
    Veristat(veristat::VeristatArgs),
}

/// The words of a bpftool-grammar command, parsed by [`bpftool`] itself.
#[derive(Debug, clap::Args)]
pub struct WordsArgs {
    /// The command and its keywords, e.g. `show pinned /sys/fs/bpf/m`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub words: Vec<String>,
}

/// Arguments of `kbpf conformance`.
#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// Directory holding the `.data` files.
    pub dir: PathBuf,
    /// Execution engine.
    #[arg(long, value_enum, default_value_t = engine::Engine::Interp)]
    pub engine: engine::Engine,
    /// Also list passing files.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Arguments of `kbpf conformance-plugin`, taken verbatim: the suite's runner passes the memory
/// (possibly an empty string) and its `--plugin_options` string as plain arguments, and the
/// reference plugins interpret them by position, so this command does too (see [`plugin`]).
#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    /// `[HEX_MEMORY] [--elf] [--jit|--interpret] [--program HEX] [other options, ignored]`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// Runs a parsed command line; the exit status is 0 on success.
pub fn run(cli: Cli) -> ExitCode {
    let Cli {
        bpffs,
        json,
        pretty,
        debug,
        kernel,
        kernel_btf,
        command,
    } = cli;
    let profile_flags = kernel.is_some() || kernel_btf.is_some();
    match command {
        Command::Veristat(args) => {
            let g = veristat::Globals {
                kernel,
                kernel_btf,
                debug,
                json: json || pretty,
            };
            veristat::command(&args, &g)
        }
        Command::Conformance(_)
        | Command::ConformancePlugin(_)
        | Command::Run(_)
        | Command::Maglev(_)
            if profile_flags =>
        {
            eprintln!(
                "Error: --kernel/--kernel-btf apply to bpftool-grammar commands and veristat only"
            );
            ExitCode::from(255)
        }
        Command::Conformance(args) => conformance::command(&args),
        Command::ConformancePlugin(args) => plugin::command(&args.args),
        Command::Run(args) => run::command(&args),
        Command::Maglev(args) => maglev::command(&args, bpffs.as_deref()),
        cmd @ (Command::Map(_) | Command::Prog(_) | Command::Btf(_) | Command::Batch(_)) => {
            let (object, w) = match cmd {
                Command::Map(w) => ("map", w),
                Command::Prog(w) => ("prog", w),
                Command::Btf(w) => ("btf", w),
                Command::Batch(w) => ("batch", w),
                _ => unreachable!("matched above"),
            };
            let mut args: Vec<String> = Vec::new();
            if let Some(d) = &bpffs {
                args.push("--bpffs".into());
                args.push(d.display().to_string());
            }
            for (name, v) in [("--kernel", &kernel), ("--kernel-btf", &kernel_btf)] {
                if let Some(v) = v {
                    args.push(name.into());
                    args.push(v.clone());
                }
            }
            for (on, flag) in [(json, "-j"), (pretty, "-p"), (debug, "-d")] {
                if on {
                    args.push(flag.into());
                }
            }
            args.push(object.into());
            args.push("--".into());
            args.extend(w.words.iter().cloned());
            ExitCode::from(bpftool::main(&args))
        }
    }
}

/// Whether a command line (without the program name) goes to clap: the clap subcommands
/// (`run`, `conformance`, `conformance-plugin`, `maglev`, `veristat`), no command at all, or
/// `--help`/`--version` without an object. Everything else is bpftool grammar
/// ([`bpftool::main`]). The values of `--bpffs`, `--kernel` and `--kernel-btf` are skipped.
pub fn is_clap_command(args: &[String]) -> bool {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if matches!(
            a.as_str(),
            "--bpffs" | "--kernel" | "--kernel-btf" | "-B" | "--base-btf"
        ) {
            it.next();
            continue;
        }
        if a == "--" {
            return false;
        }
        if a.starts_with('-') && a.len() > 1 {
            continue;
        }
        return matches!(
            a.as_str(),
            "run" | "conformance" | "conformance-plugin" | "maglev" | "veristat"
        );
    }
    true
}

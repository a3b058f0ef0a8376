//! The `kbpf` command line (bpftool-style), as a library so that commands can be tested and
//! their pieces reused; `main.rs` only parses arguments and calls [`run`].
//!
//! Modules:
//! - [`engine`]: choosing and running an execution engine (interpreter now, JIT later) on a
//!   program and a memory block, with the conformance suite's helpers;
//! - [`conformance`]: the bpf_conformance `.data` format and the `kbpf conformance DIR` runner;
//! - [`plugin`]: `kbpf conformance-plugin`, the suite runner's plugin protocol;
//! - [`run`]: `kbpf run FILE`, one program on one packet with bpftool's result line.
//!
//! Later commands (`prog`, `map`, `batch`, `maglev`) are further [`Command`] variants with their
//! own modules.
#![deny(missing_docs)]

pub mod conformance;
pub mod engine;
pub mod plugin;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line arguments of `kbpf`.
#[derive(Debug, Parser)]
#[command(
    name = "kbpf",
    version,
    about = "A kernel-faithful eBPF runtime in user space"
)]
pub struct Cli {
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
    match cli.command {
        Command::Conformance(args) => conformance::command(&args),
        Command::ConformancePlugin(args) => plugin::command(&args.args),
        Command::Run(args) => run::command(&args),
    }
}

//! The `kbpf` command line: parses the arguments and hands them to [`kbpf_cli::run`], where
//! every command lives.
use clap::Parser;

fn main() -> std::process::ExitCode {
    kbpf_cli::run(kbpf_cli::Cli::parse())
}

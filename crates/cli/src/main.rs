//! The `kbpf` command line: clap for `run`, `conformance`, `conformance-plugin` and `--help`
//! ([`kbpf_cli::run`]); bpftool's grammar for everything else ([`kbpf_cli::bpftool::main`]).
use clap::Parser;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if kbpf_cli::is_clap_command(&args) {
        kbpf_cli::run(kbpf_cli::Cli::parse())
    } else {
        std::process::ExitCode::from(kbpf_cli::bpftool::main(&args))
    }
}

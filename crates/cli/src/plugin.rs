//! `kbpf conformance-plugin`: the bpf_conformance runner's plugin protocol, so the suite's own
//! runner (`bpf_conformance_runner --plugin_path kbpf-plugin.sh ...`) can test kbpf.
//!
//! The runner starts the plugin as `PLUGIN "<HEX_MEMORY>" "<PLUGIN_OPTIONS>"` (either may be an
//! empty string), writes the program's bytes as space-separated hex on stdin and reads stdout.
//! As in the suite's reference plugins (uBPF's `ubpf_plugin`, the suite's `libbpf_plugin`):
//! - `r0` is printed in lowercase hex without `0x` (C++ `std::hex`), then a newline, exit 0;
//! - on failure the plugin exits 1; the runner compares the plugin's *stdout* with a test's
//!   `-- error` text, so the message goes to stdout as well as to stderr (uBPF does the same for
//!   load errors);
//! - arguments are positional: the first argument not starting with `--` is the memory;
//!   `--program HEX` gives the program instead of stdin; `--elf` means the bytes are an ELF
//!   object (not supported yet: kbpf's ELF loader, `kbpf-object`, is still to come, so this is a
//!   clear error); `--jit` / `--interpret` pick the engine (uBPF's spelling); anything else,
//!   including empty arguments, is ignored.

use std::io::{Read, Write};
use std::process::ExitCode;

use kbpf_isa::insn::insns_from_bytes;

use crate::conformance::parse_hex_bytes;
use crate::engine::{self, Engine};

/// The plugin's parsed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginOptions {
    /// The memory block, as hex text.
    pub memory: String,
    /// The program as hex text, when given with `--program` instead of stdin.
    pub program: Option<String>,
    /// The program bytes are an ELF object.
    pub elf: bool,
    /// Engine to run on.
    pub engine: Engine,
}

/// Interprets the plugin's arguments the way the reference plugins do (see the module docs).
pub fn parse_args(args: &[String]) -> PluginOptions {
    let mut opts = PluginOptions {
        memory: String::new(),
        program: None,
        elf: false,
        engine: Engine::Interp,
    };
    let mut memory_seen = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        // The runner passes its whole `--plugin_options` string as one argument; split it so
        // that `"--elf --jit"` works too.
        let words: Vec<&str> = if arg.starts_with("--") {
            arg.split_whitespace().collect()
        } else {
            vec![arg.as_str()]
        };
        for word in words {
            match word {
                "--elf" => opts.elf = true,
                "--jit" | "--engine=jit" => opts.engine = Engine::Jit,
                "--interpret" | "--engine=interp" => opts.engine = Engine::Interp,
                "--program" => opts.program = iter.next().cloned(),
                w if w.starts_with("--") => {}
                w if !memory_seen => {
                    opts.memory = w.to_string();
                    memory_seen = true;
                }
                _ => {}
            }
        }
    }
    opts
}

/// Why the plugin could not produce an `r0`.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Bad hex in the program or memory.
    #[error("Failed to load code: invalid hex {what} byte `{token}`")]
    BadHex {
        /// `program` or `memory`.
        what: &'static str,
        /// The offending token.
        token: String,
    },
    /// The program is not a whole number of instructions.
    #[error("Failed to load code: program length {0} is not a multiple of 8")]
    BadLength(usize),
    /// `--elf` input.
    #[error("Failed to load code: ELF input (--elf) is not supported yet; pass raw instructions")]
    ElfUnsupported,
    /// Reading stdin failed.
    #[error("cannot read the program from stdin: {0}")]
    Stdin(#[from] std::io::Error),
    /// The engine refused or failed the program.
    #[error("{0}")]
    Engine(#[from] engine::EngineError),
}

/// Runs one program: `program_hex` is the program (hex bytes), per `opts`; returns `r0`.
pub fn run(program_hex: &str, opts: &PluginOptions) -> Result<u64, PluginError> {
    let bytes = parse_hex_bytes(program_hex).map_err(|token| PluginError::BadHex {
        what: "program",
        token,
    })?;
    if opts.elf {
        return Err(PluginError::ElfUnsupported);
    }
    let insns = insns_from_bytes(&bytes).ok_or(PluginError::BadLength(bytes.len()))?;
    let mut mem = parse_hex_bytes(&opts.memory).map_err(|token| PluginError::BadHex {
        what: "memory",
        token,
    })?;
    Ok(engine::run_program(opts.engine, &insns, &mut mem)?)
}

/// `kbpf conformance-plugin [HEX_MEMORY] [options]`: prints `r0` in hex and exits 0, or prints
/// the error (stdout and stderr) and exits 1.
pub fn command(args: &[String]) -> ExitCode {
    let opts = parse_args(args);
    let result = match &opts.program {
        Some(p) => run(p, &opts),
        None => {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => run(&text, &opts),
                Err(e) => Err(PluginError::Stdin(e)),
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match result {
        Ok(r0) => {
            if writeln!(out, "{r0:x}").and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Best effort: the exit status already says it failed.
            let _ = writeln!(out, "{e}").and_then(|()| out.flush());
            eprintln!("kbpf conformance-plugin: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_by_position() {
        let o = parse_args(&args(&["11  22  ", ""]));
        assert_eq!(o.memory, "11  22  ");
        assert!(!o.elf);
        assert_eq!(o.engine, Engine::Interp);
        let o = parse_args(&args(&["", "--elf"]));
        assert_eq!(o.memory, "");
        assert!(o.elf);
        let o = parse_args(&args(&["--elf --jit", "--whatever"]));
        assert!(o.elf);
        assert_eq!(o.engine, Engine::Jit);
        let o = parse_args(&args(&["aa", "--program", "95 00", "--debug"]));
        assert_eq!(o.memory, "aa");
        assert_eq!(o.program.as_deref(), Some("95 00"));
    }

    #[test]
    fn runs_hex_programs() {
        let opts = parse_args(&args(&["11 22 33 44"]));
        // ldxh %r0, [%r1+2]; exit
        let prog = "69 10 02 00 00 00 00 00\n95 00 00 00 00 00 00 00\n";
        assert_eq!(run(prog, &opts).unwrap(), 0x4433);
        assert!(matches!(
            run("69 10 02", &opts),
            Err(PluginError::BadLength(3))
        ));
        assert!(matches!(
            run("xx", &opts),
            Err(PluginError::BadHex {
                what: "program",
                ..
            })
        ));
        let elf = parse_args(&args(&["", "--elf"]));
        assert!(matches!(
            run("7f 45 4c 46", &elf),
            Err(PluginError::ElfUnsupported)
        ));
    }
}

//! `kbpf run FILE`: run one program on a packet, the way `bpftool prog run` reports it.
//!
//! The program comes as conformance-style assembly (`.asm`, `.s`) or as raw little-endian
//! instruction bytes (anything else). `r1` points at the data, `r2` holds its length — the
//! calling convention of the conformance suite, which needs no program-type context. The output
//! line is bpftool's: `Return value: R, duration (average): Dns`, then the data after the run
//! when the program changed it. (Loading clang-built objects with program-type contexts is
//! `kbpf prog load/run`, a later command.)

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use kbpf_isa::Insn;

use crate::engine::{Engine, run_program};

/// Arguments of `kbpf run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The program: assembly (`.asm`/`.s`) or raw instruction bytes (`.bin`/`.o` sections).
    pub program: PathBuf,
    /// The input data, as a file of hex bytes (whitespace and `#` comments allowed).
    #[arg(long, conflicts_with = "data_raw")]
    pub data: Option<PathBuf>,
    /// The input data, as a raw binary file.
    #[arg(long)]
    pub data_raw: Option<PathBuf>,
    /// Execution engine.
    #[arg(long, value_enum, default_value_t = Engine::Interp)]
    pub engine: Engine,
    /// Run the program this many times (on fresh copies of the data) and report the average.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Why `kbpf run` failed before or while running the program.
#[derive(Debug, thiserror::Error)]
pub enum RunCommandError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The program text does not assemble or its bytes are not whole instructions.
    #[error("{path}: {message}")]
    Program {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The data file is not hex.
    #[error("{path}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The program was rejected or failed at run time.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

fn read(path: &Path) -> Result<Vec<u8>, RunCommandError> {
    std::fs::read(path).map_err(|source| RunCommandError::Read {
        path: path.into(),
        source,
    })
}

/// Loads a program file: assembly by extension, raw instruction bytes otherwise.
pub fn load_program(path: &Path) -> Result<Vec<Insn>, RunCommandError> {
    let bytes = read(path)?;
    let is_asm = matches!(path.extension().and_then(|e| e.to_str()), Some("asm" | "s"));
    if is_asm {
        let text = String::from_utf8(bytes).map_err(|_| RunCommandError::Program {
            path: path.into(),
            message: "assembly is not UTF-8".into(),
        })?;
        kbpf_isa::asm::assemble(&text).map_err(|e| RunCommandError::Program {
            path: path.into(),
            message: e.to_string(),
        })
    } else {
        kbpf_isa::insn::insns_from_bytes(&bytes).ok_or_else(|| RunCommandError::Program {
            path: path.into(),
            message: format!(
                "{} bytes is not a whole number of 8-byte instructions",
                bytes.len()
            ),
        })
    }
}

/// Parses hex bytes: pairs of hex digits, separated or not by white space; `#` starts a comment.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for c in line.chars().filter(|c| !c.is_whitespace()) {
            let d = c
                .to_digit(16)
                .ok_or_else(|| format!("line {}: '{c}' is not a hex digit", lineno + 1))?;
            digits.push(d as u8);
        }
    }
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    Ok(digits.chunks_exact(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// What one `kbpf run` produced.
#[derive(Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// `r0` at exit.
    pub retval: u64,
    /// Average wall time per run in nanoseconds.
    pub duration_ns: u64,
    /// The data after the (last) run.
    pub data_out: Vec<u8>,
}

/// Runs the command's program on its data `repeat` times.
pub fn execute(args: &RunArgs) -> Result<RunOutcome, RunCommandError> {
    let insns = load_program(&args.program)?;
    let data = match (&args.data, &args.data_raw) {
        (Some(path), _) => {
            let text = String::from_utf8_lossy(&read(path)?).into_owned();
            parse_hex(&text).map_err(|message| RunCommandError::Data {
                path: path.clone(),
                message,
            })?
        }
        (None, Some(path)) => read(path)?,
        (None, None) => Vec::new(),
    };
    let repeat = args.repeat.max(1);
    let mut retval = 0;
    let mut data_out = Vec::new();
    let start = Instant::now();
    for _ in 0..repeat {
        data_out.clone_from(&data);
        retval = run_program(args.engine, &insns, &mut data_out)?;
    }
    let duration_ns = (start.elapsed().as_nanos() / u128::from(repeat)) as u64;
    Ok(RunOutcome {
        retval,
        duration_ns,
        data_out,
    })
}

/// `kbpf run`: prints bpftool's result line, and the data when the program changed it.
pub fn command(args: &RunArgs) -> ExitCode {
    match execute(args) {
        Ok(outcome) => {
            println!(
                "Return value: {}, duration{}: {}ns",
                outcome.retval,
                if args.repeat > 1 { " (average)" } else { "" },
                outcome.duration_ns
            );
            if let Some(path) = &args.data {
                let original = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| parse_hex(&t).ok());
                if original.as_deref() != Some(&outcome.data_out[..]) {
                    println!("Data out:");
                    for chunk in outcome.data_out.chunks(16) {
                        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                        println!("{}", line.join(" "));
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(255)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(
            parse_hex("0a 0B\n# comment\nff # tail").unwrap(),
            vec![0x0a, 0x0b, 0xff]
        );
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert!(parse_hex("0").unwrap_err().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().contains("line 1"));
    }

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name)
    }

    #[test]
    fn bundled_example_picks_the_flows_backend() {
        let args = RunArgs {
            program: example("tcp_parse.asm"),
            data: Some(example("tcp_packet.hex")),
            data_raw: None,
            engine: Engine::Interp,
            repeat: 3,
        };
        let out = execute(&args).unwrap();
        // The example hashes the TCP 5-tuple and picks one of 8 backends (returns 100 + index); the expected value is
        // computed independently below from the packet's fields.
        let pkt = &out.data_out;
        let word = |o: usize| u32::from_be_bytes([pkt[o], pkt[o + 1], pkt[o + 2], pkt[o + 3]]);
        let (saddr, daddr) = (word(26), word(30));
        let ports = word(34);
        let proto = u32::from(pkt[23]);
        let mut h: u32 = 0x9e37_79b9;
        for v in [saddr, daddr, ports, proto] {
            h = (h ^ v).wrapping_mul(0x0100_0193);
            h ^= h >> 15;
        }
        assert_eq!(out.retval, 100 + u64::from(h % 8));
    }

    #[test]
    fn short_packets_are_passed() {
        let dir = std::env::temp_dir().join(format!("kbpf-run-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("short.hex");
        std::fs::write(&data, "00 11 22").unwrap();
        let args = RunArgs {
            program: example("tcp_parse.asm"),
            data: Some(data),
            data_raw: None,
            engine: Engine::Interp,
            repeat: 1,
        };
        // XDP_PASS (2) for anything that is not Ethernet/IPv4/TCP.
        assert_eq!(execute(&args).unwrap().retval, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

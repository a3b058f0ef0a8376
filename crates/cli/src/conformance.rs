//! The bpf_conformance suite's `.data` test files and the `kbpf conformance DIR` runner.
//!
//! A `.data` file is a list of sections, each starting with a line `-- NAME`; `#` starts a
//! comment anywhere on a line. [`parse_data`] understands:
//! - `-- asm`: the program in uBPF-style assembly ([`kbpf_isa::asm`]);
//! - `-- raw`: one 64-bit instruction word per line (hex, `0x` optional); overrides `asm`;
//! - `-- mem`: hex bytes (whitespace-separated, may span lines): the memory block (`r1`/`r2`);
//! - `-- result`: the expected `r0`, compared as `u64` (hex with `0x`, else decimal; a negative
//!   decimal is taken as its two's complement);
//! - `-- error`: the run is expected to fail (the text is the suite's reference message; any
//!   failure counts, since kbpf's messages are its own);
//! - `-- c`, `-- no register offset` and any other section: informational, ignored.
//!
//! [`run_dir`] runs every `.data` file of a directory in name order and reports each failure
//! (file, expected, got or error) and a final `N passed, M failed` line.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kbpf_isa::Insn;

use crate::engine::{self, Engine, EngineError};

/// One parsed `.data` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataFile {
    /// The `-- asm` section's text, if present.
    pub asm: Option<String>,
    /// File line number of the `-- asm` section's first line, so that assembler errors can
    /// name the line in the file.
    pub asm_first_line: usize,
    /// The `-- raw` section's instruction words, if present.
    pub raw: Option<Vec<u64>>,
    /// The `-- mem` bytes (empty when absent).
    pub mem: Vec<u8>,
    /// The expected `r0`.
    pub result: Option<u64>,
    /// The expected error text (the run must fail).
    pub error: Option<String>,
}

/// What a `.data` file should produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `r0` at exit.
    Result(u64),
    /// The run fails (suite's reference message).
    Error(String),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Result(v) => write!(f, "{v:#x}"),
            Expected::Error(e) => write!(f, "error \"{e}\""),
        }
    }
}

/// A malformed `.data` file (line numbers are 1-based within the file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// A `-- raw` line that is not one hex word.
    #[error("line {line}: invalid raw instruction word `{text}`")]
    BadRawWord {
        /// Line number.
        line: usize,
        /// Line text.
        text: String,
    },
    /// A `-- mem` token that is not hex bytes.
    #[error("line {line}: invalid memory bytes `{text}`")]
    BadMemory {
        /// Line number.
        line: usize,
        /// Token.
        text: String,
    },
    /// A `-- result` that is not one number.
    #[error("line {line}: invalid result `{text}`")]
    BadResult {
        /// Line number.
        line: usize,
        /// Text.
        text: String,
    },
    /// Neither `-- asm` nor `-- raw`.
    #[error("no program (neither `-- asm` nor `-- raw`)")]
    NoProgram,
    /// Neither `-- result` nor `-- error`.
    #[error("no expectation (neither `-- result` nor `-- error`)")]
    NoExpectation,
    /// The `-- asm` section does not assemble.
    #[error("asm: {0}")]
    Asm(#[from] kbpf_isa::asm::AsmError),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Asm,
    Raw,
    Mem,
    Result,
    Error,
    Ignored,
}

/// Parses a `.data` file's text.
pub fn parse_data(text: &str) -> Result<DataFile, DataError> {
    let mut file = DataFile::default();
    let mut section = Section::None;
    let mut result_text: Option<(usize, String)> = None;
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if let Some(name) = line.strip_prefix("--") {
            section = match name.split('#').next().unwrap_or("").trim() {
                "asm" => {
                    if file.asm.is_none() {
                        file.asm = Some(String::new());
                        file.asm_first_line = line_no + 1;
                    }
                    Section::Asm
                }
                "raw" => {
                    file.raw.get_or_insert_with(Vec::new);
                    Section::Raw
                }
                "mem" => Section::Mem,
                "result" => Section::Result,
                "error" => {
                    file.error.get_or_insert_with(String::new);
                    Section::Error
                }
                _ => Section::Ignored,
            };
            continue;
        }
        match section {
            // Keep asm lines verbatim (comments included) so assembler errors quote them and
            // line numbers stay meaningful.
            Section::Asm => {
                if let Some(asm) = file.asm.as_mut() {
                    asm.push_str(line);
                    asm.push('\n');
                }
            }
            Section::None | Section::Ignored => {}
            _ => {
                let content = line.split('#').next().unwrap_or("").trim();
                if content.is_empty() {
                    continue;
                }
                match section {
                    Section::Raw => {
                        let bad = || DataError::BadRawWord {
                            line: line_no,
                            text: content.to_string(),
                        };
                        let hex = content
                            .strip_prefix("0x")
                            .or_else(|| content.strip_prefix("0X"))
                            .unwrap_or(content);
                        let word = u64::from_str_radix(hex, 16).map_err(|_| bad())?;
                        if let Some(raw) = file.raw.as_mut() {
                            raw.push(word);
                        }
                    }
                    Section::Mem => {
                        let bytes =
                            parse_hex_bytes(content).map_err(|text| DataError::BadMemory {
                                line: line_no,
                                text,
                            })?;
                        file.mem.extend(bytes);
                    }
                    Section::Result => {
                        if result_text.is_some() {
                            return Err(DataError::BadResult {
                                line: line_no,
                                text: content.to_string(),
                            });
                        }
                        result_text = Some((line_no, content.to_string()));
                    }
                    Section::Error => {
                        if let Some(e) = file.error.as_mut() {
                            if !e.is_empty() {
                                e.push('\n');
                            }
                            e.push_str(content);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some((line, text)) = result_text {
        file.result = Some(parse_result(&text).ok_or(DataError::BadResult { line, text })?);
    }
    Ok(file)
}

/// Parses `0x`-prefixed hex or (optionally negative) decimal into a `u64`.
fn parse_result(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = text.strip_prefix('-') {
        neg.parse::<u64>()
            .ok()
            .filter(|v| *v <= 1 << 63)
            .map(|v| v.wrapping_neg())
    } else {
        text.parse::<u64>().ok()
    }
}

/// Parses whitespace-separated hex bytes. A token may hold several bytes (`1122`) and may
/// carry a `0x` prefix; on error returns the offending token.
pub fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let hex = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(token.to_string());
        }
        for pair in hex.as_bytes().chunks(2) {
            // Both bytes are ASCII hex digits, checked above.
            let s = std::str::from_utf8(pair).map_err(|_| token.to_string())?;
            out.push(u8::from_str_radix(s, 16).map_err(|_| token.to_string())?);
        }
    }
    Ok(out)
}

impl DataFile {
    /// The program: the `-- raw` words if present, else the assembled `-- asm` text.
    pub fn program(&self) -> Result<Vec<Insn>, DataError> {
        if let Some(raw) = &self.raw {
            return Ok(raw.iter().map(|w| Insn::from_u64(*w)).collect());
        }
        match &self.asm {
            Some(asm) => kbpf_isa::asm::assemble(asm).map_err(|mut e| {
                // Report the line within the file, not within the section.
                e.line += self.asm_first_line.saturating_sub(1);
                DataError::Asm(e)
            }),
            None => Err(DataError::NoProgram),
        }
    }

    /// What the run should produce; `-- error` wins over `-- result`.
    pub fn expected(&self) -> Result<Expected, DataError> {
        match (&self.error, self.result) {
            (Some(e), _) => Ok(Expected::Error(e.clone())),
            (None, Some(r)) => Ok(Expected::Result(r)),
            (None, None) => Err(DataError::NoExpectation),
        }
    }
}

/// The outcome of one `.data` file.
#[derive(Debug)]
pub enum Outcome {
    /// As expected.
    Pass,
    /// The file could not be read, parsed or assembled.
    Invalid(String),
    /// Ran, but `r0` differs.
    WrongResult {
        /// Expected value or error.
        expected: Expected,
        /// Actual `r0`.
        got: u64,
    },
    /// Expected a result, but the run failed.
    Failed {
        /// Expected value.
        expected: Expected,
        /// The error.
        error: String,
    },
}

impl Outcome {
    /// True for [`Outcome::Pass`].
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => f.write_str("passed"),
            Outcome::Invalid(e) => write!(f, "invalid test file: {e}"),
            Outcome::WrongResult { expected, got } => {
                write!(f, "expected {expected}, got {got:#x}")
            }
            Outcome::Failed { expected, error } => {
                write!(f, "expected {expected}, got error: {error}")
            }
        }
    }
}

/// Runs one parsed test on `engine`.
pub fn run_data(file: &DataFile, engine: Engine) -> Outcome {
    let (insns, expected) = match (file.program(), file.expected()) {
        (Ok(p), Ok(e)) => (p, e),
        (Err(e), _) | (_, Err(e)) => return Outcome::Invalid(e.to_string()),
    };
    let mut mem = file.mem.clone();
    // A panic inside an engine is a bug to report per file, not a reason to stop the suite.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine::run_program(engine, &insns, &mut mem)
    }));
    let result = match run {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(payload) => Err(format!("engine panicked: {}", panic_message(&*payload))),
    };
    match (expected, result) {
        (Expected::Result(want), Ok(got)) if want == got => Outcome::Pass,
        (expected @ Expected::Result(_), Ok(got)) => Outcome::WrongResult { expected, got },
        (Expected::Error(_), Err(_)) => Outcome::Pass,
        (expected @ Expected::Error(_), Ok(got)) => Outcome::WrongResult { expected, got },
        (expected @ Expected::Result(_), Err(error)) => Outcome::Failed { expected, error },
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Reads, parses and runs one `.data` file.
pub fn run_file(path: &Path, engine: Engine) -> Outcome {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Outcome::Invalid(format!("cannot read: {e}")),
    };
    match parse_data(&text) {
        Ok(file) => run_data(&file, engine),
        Err(e) => Outcome::Invalid(e.to_string()),
    }
}

/// Totals of a directory run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files that passed.
    pub passed: usize,
    /// Files that failed (including invalid ones).
    pub failed: usize,
}

/// The `.data` files of `dir`, sorted by name.
pub fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "data") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Runs every `.data` file of `dir` on `engine`, writing one line per failure (and per pass
/// when `verbose`) and a final `N passed, M failed` line to `out`.
pub fn run_dir(
    dir: &Path,
    engine: Engine,
    verbose: bool,
    out: &mut dyn Write,
) -> std::io::Result<Summary> {
    let mut summary = Summary::default();
    let files = data_files(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let outcome = run_file(&path, engine);
        if outcome.passed() {
            summary.passed += 1;
            if verbose {
                writeln!(out, "PASS {name}")?;
            }
        } else {
            summary.failed += 1;
            writeln!(out, "FAIL {name}: {outcome}")?;
        }
    }
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    Ok(summary)
}

/// `kbpf conformance DIR [--engine E] [--verbose]`: exit status 0 only if every file passed
/// (and there was at least one).
pub fn command(args: &crate::ConformanceArgs) -> ExitCode {
    if let Err(e @ EngineError::JitUnavailable) = engine::check_available(args.engine) {
        eprintln!("kbpf conformance: {e}");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run_dir(&args.dir, args.engine, args.verbose, &mut out) {
        Ok(s) if s.failed == 0 && s.passed > 0 => ExitCode::SUCCESS,
        Ok(s) => {
            if s.passed + s.failed == 0 {
                eprintln!("kbpf conformance: no .data files in {}", args.dir.display());
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("kbpf conformance: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Copyright\n-- asm\nmov %r0, 1 # one\nexit\n-- mem\n11 22\n33\n\
                          -- result\n0x1\n-- no register offset\ncall instruction\n";

    #[test]
    fn parses_sections() {
        let f = parse_data(SAMPLE).unwrap();
        assert_eq!(f.asm.as_deref(), Some("mov %r0, 1 # one\nexit\n"));
        assert_eq!(f.mem, vec![0x11, 0x22, 0x33]);
        assert_eq!(f.result, Some(1));
        assert_eq!(f.error, None);
        assert_eq!(f.raw, None);
        assert_eq!(f.expected().unwrap(), Expected::Result(1));
        assert_eq!(f.program().unwrap().len(), 2);
    }

    #[test]
    fn raw_overrides_asm() {
        let f =
            parse_data("-- asm\nmov %r0, 1\nexit\n-- raw\n0x00000002000000b7\n95\n-- result\n2")
                .unwrap();
        let p = f.program().unwrap();
        assert_eq!(p[0], Insn::new(0xb7, 0, 0, 0, 2));
        assert_eq!(p[1], Insn::new(0x95, 0, 0, 0, 0));
        assert_eq!(f.result, Some(2));
    }

    #[test]
    fn results_and_errors() {
        assert_eq!(parse_data("-- result\n-1").unwrap().result, Some(u64::MAX));
        assert_eq!(parse_data("-- result\n42").unwrap().result, Some(42));
        let f =
            parse_data("-- asm\nexit\n-- error\nFailed to load code: bad\n-- result\n0").unwrap();
        assert_eq!(
            f.expected().unwrap(),
            Expected::Error("Failed to load code: bad".into())
        );
        assert!(matches!(
            parse_data("-- result\n0xzz"),
            Err(DataError::BadResult { line: 2, .. })
        ));
        assert!(matches!(
            parse_data("-- result\n1\n2"),
            Err(DataError::BadResult { line: 3, .. })
        ));
        assert!(matches!(
            parse_data("-- mem\n1 2"),
            Err(DataError::BadMemory { line: 2, .. })
        ));
        assert!(matches!(
            parse_data("-- raw\nnope"),
            Err(DataError::BadRawWord { line: 2, .. })
        ));
        assert_eq!(
            parse_data("-- asm\nexit").unwrap().expected(),
            Err(DataError::NoExpectation)
        );
        assert_eq!(
            parse_data("-- result\n1").unwrap().program(),
            Err(DataError::NoProgram)
        );
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(
            parse_hex_bytes(" 0a  ff\n1122 0x33 ").unwrap(),
            vec![0x0a, 0xff, 0x11, 0x22, 0x33]
        );
        assert_eq!(parse_hex_bytes("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex_bytes("a"), Err("a".to_string()));
        assert_eq!(parse_hex_bytes("zz"), Err("zz".to_string()));
        assert_eq!(parse_hex_bytes("é1"), Err("é1".to_string()));
    }

    #[test]
    fn outcomes() {
        let pass =
            parse_data("-- asm\nldxb %r0, [%r1+2]\nexit\n-- mem\n00 00 07\n-- result\n7").unwrap();
        assert!(run_data(&pass, Engine::Interp).passed());
        let wrong = parse_data("-- asm\nmov %r0, 3\nexit\n-- result\n4").unwrap();
        let o = run_data(&wrong, Engine::Interp);
        assert_eq!(o.to_string(), "expected 0x4, got 0x3");
        let failing = parse_data("-- asm\nldxb %r0, [%r1+2]\nexit\n-- result\n7").unwrap();
        assert!(matches!(
            run_data(&failing, Engine::Interp),
            Outcome::Failed { .. }
        ));
        let expected_error =
            parse_data("-- asm\nldxb %r0, [%r1+2]\nexit\n-- error\nout of bounds").unwrap();
        assert!(run_data(&expected_error, Engine::Interp).passed());
        let unexpected_success = parse_data("-- asm\nmov %r0, 0\nexit\n-- error\nboom").unwrap();
        assert!(!run_data(&unexpected_success, Engine::Interp).passed());
        let bad_asm = parse_data("-- asm\nfrob\n-- result\n0").unwrap();
        let o = run_data(&bad_asm, Engine::Interp);
        assert!(
            o.to_string().contains("line 2: unknown mnemonic `frob`"),
            "{o}"
        );
    }
}

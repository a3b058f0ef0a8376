//! `kbpf veristat OBJ…`: the kernel's `veristat` (tools/testing/selftests/bpf/veristat.c) on
//! kbpf's verifier. Every program of every object is verified on its own
//! ([`kbpf_run::verify_each`]) and its verdict, time and verifier statistics are printed as
//! veristat's table or CSV; `-C A.csv B.csv` compares two CSV result sets and `-R R.csv`
//! prints one again. Options, stat names, filters, output layout and exit statuses follow
//! veristat (Linux 6.12); the differences are listed in `crates/cli/README.md`.

pub mod filter;
pub mod output;
pub mod spec;

use std::path::Path;
use std::process::ExitCode;

use kbpf_run::{EachError, LoadOptions, ProgVerification, verify_each};

use filter::Filters;
use spec::{Join, Row, SpecItem, Stat, default_output, parse_csv, parse_specs};

/// veristat's usage text.
pub const USAGE: &str = "\
Usage: kbpf veristat [OPTIONS] <obj-file> [<obj-file>...]
   OR: kbpf veristat -C <baseline.csv> <comparison.csv>
   OR: kbpf veristat -R <results.csv>
";

const LONG_ABOUT: &str = "\
veristat: BPF verifier stats collection and comparison, on kbpf's verifier.

USAGE: kbpf veristat <obj-file> [<obj-file>...]
   OR: kbpf veristat -C <baseline.csv> <comparison.csv>
   OR: kbpf veristat -R <results.csv>

Every program of each object is verified on its own (as veristat loads one program at a
time) under the kernel profile of --kernel/--kernel-btf. Stats (for -e, -s, -f and CSV
headers): file_name (filename, file), prog_name (progname, prog), verdict, duration (dur;
kbpf's verify+rewrite time in us), total_insns (insns), total_states (states), peak_states,
max_states_per_insn, max_mark_read_len (mark_read: kbpf does not track mark_read chains and
reports 0). In -C mode a stat takes a suffix _a, _b (default), _diff or _pct; |stat| takes the
absolute value. -s entries end in ^ (ascending) or v (descending). -f takes [!]GLOB,
[!]FILE_GLOB/PROG_GLOB (`*` wildcards), [!]STAT<op>VALUE with op in == = != <> < <= > >=
(verdict values success/failure), or @FILE with one filter per line. The global -d is
veristat's debug mode (as -v: there is no libbpf debug log); -j is refused.";

/// Arguments of `kbpf veristat` (veristat's own options; `-d` and `--kernel`/`--kernel-btf`
/// are kbpf's global options).
#[derive(Debug, clap::Args)]
#[command(long_about = LONG_ABOUT)]
pub struct VeristatArgs {
    /// BPF object files (with -C: two CSV files; with -R: one CSV file).
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
    /// Print version.
    #[arg(short = 'V', long = "version")]
    pub show_version: bool,
    /// Verbose mode: each program's verifier log.
    #[arg(short, long)]
    pub verbose: bool,
    /// Verifier log level (default 0 for normal mode, 1 for verbose mode).
    #[arg(short, long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Emit only up to first N results.
    #[arg(short = 'n', long = "top-n", value_name = "N")]
    pub top_n: Option<String>,
    /// Quiet mode (no `Processing '…'...` lines).
    #[arg(short, long)]
    pub quiet: bool,
    /// Specify stats to be emitted (comma-separated).
    #[arg(short, long, value_name = "SPEC")]
    pub emit: Vec<String>,
    /// Specify sort order (comma-separated).
    #[arg(short, long, value_name = "SPEC")]
    pub sort: Vec<String>,
    /// Result output format (table, csv), default is table.
    #[arg(short, long = "output-format", value_name = "FMT")]
    pub output_format: Option<String>,
    /// Comparison mode.
    #[arg(short = 'C', long)]
    pub compare: bool,
    /// Replay mode.
    #[arg(short = 'R', long)]
    pub replay: bool,
    /// Filter expressions (or @filename for file with expressions).
    #[arg(short, long, value_name = "FILTER", allow_hyphen_values = true)]
    pub filter: Vec<String>,
}

/// kbpf's global options as they apply to veristat.
#[derive(Clone, Debug, Default)]
pub struct Globals {
    /// `--kernel WHICH`.
    pub kernel: Option<String>,
    /// `--kernel-btf FILE`.
    pub kernel_btf: Option<String>,
    /// `-d`: veristat's debug mode (implies verbose).
    pub debug: bool,
    /// `-j`/`-p`: refused (veristat has no JSON output).
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Csv,
}

/// The parsed options.
struct Env {
    files: Vec<String>,
    verbose: bool,
    quiet: bool,
    log_level: u32,
    top_n: usize,
    format: Format,
    output: Vec<SpecItem>,
    sort: Vec<SpecItem>,
    filters: Filters,
}

#[derive(Default)]
struct Counts {
    files_processed: usize,
    progs_processed: usize,
    files_skipped: usize,
    progs_skipped: usize,
}

/// An argument error: its message, and whether veristat follows it with its usage.
struct ArgError(String, bool);

fn parse_env(a: &VeristatArgs, g: &Globals) -> Result<Env, ArgError> {
    let e = |m: String| ArgError(m, false);
    if g.json {
        return Err(e(
            "veristat has no JSON output (-j/--json); use -o csv".into()
        ));
    }
    let format = match a.output_format.as_deref() {
        None | Some("table") => Format::Table,
        Some("csv") => Format::Csv,
        Some(other) => return Err(e(format!("Unrecognized output format '{other}'"))),
    };
    let log_level = match a.log_level.as_deref() {
        None => 0,
        Some(s) => match s.trim().parse::<u32>() {
            Ok(l) if l <= 15 => l,
            _ => {
                return Err(ArgError(
                    format!("invalid log level: {s} (expected 0 to 15: bits 1, 2, 4, 8)"),
                    true,
                ));
            }
        },
    };
    let top_n = match a.top_n.as_deref() {
        None => 0,
        Some(s) => s
            .trim()
            .parse::<usize>()
            .map_err(|_| ArgError(format!("invalid top N specifier: {s}"), true))?,
    };
    let mut output = Vec::new();
    for s in &a.emit {
        parse_specs(s, &mut output).map_err(e)?;
    }
    let mut sort = Vec::new();
    for s in &a.sort {
        parse_specs(s, &mut sort).map_err(e)?;
    }
    let mut filters = Filters::default();
    for f in &a.filter {
        filters.add(f).map_err(|m| {
            e(format!(
                "{m}\nFailed to collect program filter expressions: -{}",
                libc::EINVAL
            ))
        })?;
    }
    let verbose = a.verbose || g.debug;
    if verbose && a.quiet {
        return Err(ArgError(
            "Verbose and quiet modes are incompatible, please specify just one or neither!\n"
                .into(),
            true,
        ));
    }
    if a.compare && a.replay {
        return Err(ArgError(
            "Can't specify replay and comparison mode at the same time!\n".into(),
            true,
        ));
    }
    if output.is_empty() {
        output = default_output(format == Format::Csv);
    }
    if sort.is_empty() {
        sort = vec![SpecItem::of(Stat::FileName), SpecItem::of(Stat::ProgName)];
    }
    Ok(Env {
        files: a.files.clone(),
        verbose,
        quiet: a.quiet,
        log_level: if verbose && log_level == 0 {
            1
        } else {
            log_level
        },
        top_n,
        format,
        output,
        sort,
        filters,
    })
}

/// Runs `kbpf veristat`. Exit status as veristat: 0; 1 for bad options (and a kernel profile
/// that cannot be resolved); the errno of a failed mode (22 for a missing object list or
/// unusable CSV files, 2 for a missing CSV file).
pub fn command(a: &VeristatArgs, g: &Globals) -> ExitCode {
    if a.show_version {
        out(&format!("veristat v{} (kbpf)\n", env!("CARGO_PKG_VERSION")));
        return ExitCode::SUCCESS;
    }
    let env = match parse_env(a, g) {
        Ok(env) => env,
        Err(ArgError(m, usage)) => {
            err_out(&format!("{m}\n"));
            if usage {
                err_out(USAGE);
            }
            return ExitCode::from(1);
        }
    };
    match run_mode(a, &env, g) {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err((m, errno)) => {
            err_out(&m);
            ExitCode::from(errno.clamp(1, 255) as u8)
        }
    }
}

fn run_mode(a: &VeristatArgs, env: &Env, g: &Globals) -> Result<String, ModeError> {
    if a.compare {
        compare_mode(env)
    } else if a.replay {
        replay_mode(env)
    } else {
        verify_mode(env, g)
    }
}

/// `kbpf veristat ARGS…` as a function, for callers that read its output (the selftests'
/// comparison with the kernel's veristat): what it prints on stdout (with `-o csv`, only the
/// CSV), or the message it prints on stderr and its exit status. `-V` is not handled.
pub fn run(args: &[&str], g: &Globals) -> Result<String, (String, i32)> {
    #[derive(clap::Parser)]
    #[command(no_binary_name = true)]
    struct Line {
        #[command(flatten)]
        args: VeristatArgs,
    }
    let line = <Line as clap::Parser>::try_parse_from(args).map_err(|e| (e.to_string(), 1))?;
    let env = parse_env(&line.args, g).map_err(|ArgError(m, _)| (m, 1))?;
    run_mode(&line.args, &env, g)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes()).and_then(|()| o.flush());
}

/// Writes to stderr, ignoring failures.
fn err_out(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(s.as_bytes());
}

/// A mode's failure: what to print on stderr, and the errno that becomes the exit status.
type ModeError = (String, i32);

fn usage_error(m: &str) -> ModeError {
    (format!("{m}\n\n{USAGE}"), libc::EINVAL)
}

/// The file name as veristat shows it: its last component.
pub fn base_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// An I/O error without Rust's ` (os error N)` tail.
fn io_message(e: &std::io::Error) -> String {
    let m = e.to_string();
    match m.find(" (os error") {
        Some(at) => m[..at].to_string(),
        None => m,
    }
}

/// Whether `path` may be a BPF object: a 64-bit relocatable ELF for BPF (or, as old LLVM
/// wrote, no machine). Unreadable files pass, to fail later with their error.
pub fn is_bpf_obj_file(path: &str) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let mut h = [0u8; 20];
    if f.read_exact(&mut h).is_err() {
        return false;
    }
    let le = match h[5] {
        1 => true,
        2 => false,
        _ => return false,
    };
    let half = |b: [u8; 2]| {
        if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let (e_type, e_machine) = (half([h[16], h[17]]), half([h[18], h[19]]));
    &h[..4] == b"\x7fELF" && h[4] == 2 && e_type == 1 && (e_machine == 0 || e_machine == 247)
}

/// One program's row.
pub fn row_of(file: &str, p: &ProgVerification) -> Row {
    let us = i64::try_from(p.duration.as_micros()).unwrap_or(i64::MAX);
    let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    Row {
        file: file.to_string(),
        prog: p.name.clone(),
        stats: [
            i64::from(p.accepted()),
            us,
            n(p.stats.insn_processed),
            n(p.stats.total_states),
            n(p.stats.peak_states),
            n(p.stats.max_states_per_insn),
            0,
        ],
    }
}

fn verify_mode(env: &Env, g: &Globals) -> Result<String, ModeError> {
    if env.files.is_empty() {
        return Err(usage_error("Please provide path to BPF object file!"));
    }
    let profile = crate::kernel::resolve(g.kernel.as_deref(), g.kernel_btf.as_deref())
        .map_err(|m| (format!("kbpf: {m}\n"), 1))?;
    let opts = LoadOptions {
        // veristat asks for the statistics only, or with -v for the log at -l's level.
        log_level: if env.verbose {
            match env.log_level & 3 {
                0 | 1 => 1,
                _ => 2,
            }
        } else {
            0
        },
        prog_type: None,
        core_target: crate::kernel::core_target(&profile)
            .map_err(|m| (format!("kbpf: {m}\n"), 1))?,
        profile,
        prog_flags: 0,
        // veristat runs as root.
        perfmon: true,
        veristat_fixups: true,
    };
    let mut c = Counts::default();
    let mut rows = Vec::new();
    for path in &env.files {
        let base = base_name(path);
        if !env.filters.process(&base, None) {
            if env.verbose {
                out(&format!("Skipping '{path}' due to filters...\n"));
            }
            c.files_skipped += 1;
            continue;
        }
        if !is_bpf_obj_file(path) {
            if env.verbose {
                out(&format!(
                    "Skipping '{path}' as it's not a BPF object file...\n"
                ));
            }
            c.files_skipped += 1;
            continue;
        }
        if !env.quiet && env.format == Format::Table {
            out(&format!("Processing '{base}'...\n"));
        }
        let progs = match std::fs::File::open(path) {
            Err(e) => Err((e.raw_os_error().unwrap_or(libc::EINVAL), io_message(&e))),
            Ok(_) => verify_each(Path::new(path), &opts).map_err(|e| match e {
                EachError::Open(m) => (libc::EINVAL, m),
            }),
        };
        let progs = match progs {
            Ok(p) => p,
            Err((errno, m)) => {
                err_out(&format!("Failed to open '{path}': -{errno} ({m})\n"));
                c.files_skipped += 1;
                continue;
            }
        };
        c.files_processed += 1;
        for p in &progs {
            if !env.filters.process(&base, Some(&p.name)) {
                c.progs_skipped += 1;
                continue;
            }
            c.progs_processed += 1;
            let row = row_of(&base, p);
            if env.verbose {
                let log = match (&p.result, p.log.is_empty()) {
                    (Err(m), true) => format!("{m}\n"),
                    _ => p.log.clone(),
                };
                out(&format!(
                    "PROCESSING {path}/{}, DURATION US: {}, VERDICT: {}, VERIFIER LOG:\n{log}\n",
                    p.name,
                    row.stats[1],
                    output::verdict(p.accepted())
                ));
            }
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| a.cmp_by(b, &env.sort));
    Ok(output_rows(env, &rows, &c))
}

fn replay_mode(env: &Env) -> Result<String, ModeError> {
    if env.files.len() != 1 {
        return Err(usage_error(
            "Replay mode expects exactly one input CSV file!",
        ));
    }
    let path = &env.files[0];
    let (_, mut rows) = parse_csv(path, &env.filters).map_err(|m| csv_error(&m, path))?;
    rows.sort_by(|a, b| a.cmp_by(b, &env.sort));
    Ok(output_rows(env, &rows, &Counts::default()))
}

fn csv_error(m: &str, path: &str) -> ModeError {
    let errno = if m.starts_with("Failed to open") {
        m.rsplit(' ')
            .next()
            .and_then(|n| n.parse::<i32>().ok())
            .map_or(libc::EINVAL, |n| -n)
    } else {
        libc::EINVAL
    };
    (
        format!("{m}\nFailed to parse stats from '{path}': -{errno}\n"),
        errno,
    )
}

/// The rows that pass the stat filters, in order, as veristat's table (with the `Done.` line)
/// or CSV.
fn output_rows(env: &Env, rows: &[Row], c: &Counts) -> String {
    let shown = rows.iter().filter(|r| env.filters.output_row(r));
    let shown: Vec<&Row> = match env.top_n {
        0 => shown.collect(),
        n => shown.take(n).collect(),
    };
    let mut text = output::results(&shown, &env.output, env.format == Format::Csv);
    if env.format == Format::Table {
        text.push_str(&format!(
            "Done. Processed {} files, {} programs. Skipped {} files, {} programs.\n",
            c.files_processed, c.progs_processed, c.files_skipped, c.progs_skipped
        ));
    }
    text
}

fn compare_mode(env: &Env) -> Result<String, ModeError> {
    if env.files.len() != 2 {
        return Err(usage_error(
            "Comparison mode expects exactly two input CSV files!",
        ));
    }
    let (fa, fb) = (&env.files[0], &env.files[1]);
    let (spec_a, rows_a) = parse_csv(fa, &env.filters).map_err(|m| csv_error(&m, fa))?;
    let (spec_b, rows_b) = parse_csv(fb, &env.filters).map_err(|m| csv_error(&m, fb))?;
    if spec_a.len() != spec_b.len() {
        return Err((
            format!(
                "Number of stats in '{fa}' and '{fb}' differs ({} != {})!\n",
                spec_a.len(),
                spec_b.len()
            ),
            libc::EINVAL,
        ));
    }
    for (x, y) in spec_a.iter().zip(&spec_b) {
        if x.stat != y.stat {
            return Err((
                format!(
                    "Stats composition differs between '{fa}' and '{fb}' ({} != {})!\n",
                    x.stat.names()[0],
                    y.stat.names()[0]
                ),
                libc::EINVAL,
            ));
        }
    }
    let mut joined = output::join(rows_a, rows_b);
    joined.sort_by(|x, y| x.cmp_by(y, &env.sort));
    let shown = joined.iter().filter(|j| env.filters.output_join(j));
    let shown: Vec<&Join> = match env.top_n {
        0 => shown.collect(),
        n => shown.take(n).collect(),
    };
    Ok(output::comparison(
        &shown,
        &env.output,
        env.format == Format::Csv,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_check_and_base_names() {
        assert_eq!(base_name("tests/objects/x.bpf.o"), "x.bpf.o");
        assert_eq!(base_name("x.o"), "x.o");
        let me = std::env::current_exe().unwrap();
        assert!(!is_bpf_obj_file(&me.to_string_lossy()), "an executable");
        assert!(is_bpf_obj_file("/no/such/file"), "fails later instead");
        let obj = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/objects/bounded_loop.bpf.o"
        );
        assert!(is_bpf_obj_file(obj));
    }

    #[test]
    fn the_clap_route_takes_veristat_and_the_kernel_options() {
        let v = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert!(crate::is_clap_command(&v("veristat x.o")));
        assert!(crate::is_clap_command(&v(
            "--kernel host veristat -o csv x.o"
        )));
        assert!(crate::is_clap_command(&v("--kernel-btf /b veristat x.o")));
        assert!(!crate::is_clap_command(&v("--kernel host map show")));
    }
}

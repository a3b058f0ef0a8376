//! `kbpf veristat` as a user runs it: the table layout of veristat (columns two spaces apart,
//! header, dashes, rows, dashes, `Done.` line), CSV output read back by `-R`, `-e` columns,
//! `-s` order, `-f` name and stat filters, `-C` comparison of kbpf's own CSV with an edited
//! copy, skipped files, argument errors and exit statuses. A program the verifier rejects comes
//! from a small object compiled here with clang-19 (the committed corpus has none; without
//! clang the test skips that part, and fails under `CI=true`).
//!
//! Against the live kernel (skipped with a `SKIP:` line without bpftool or bpf()): the objects
//! are loaded by `bpftool prog loadall`, and kbpf's `Insns` of every program kbpf accepts must
//! equal the kernel's `verified_insns` of the same program.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn object(name: &str) -> String {
    root()
        .join("tests/objects")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

fn kbpf(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .args(args)
        .env_remove("KBPF_KERNEL")
        .output()
        .unwrap();
    Out {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn veristat(args: &[&str]) -> Out {
    let mut a = vec!["veristat"];
    a.extend_from_slice(args);
    let o = kbpf(&a);
    assert!(
        o.status == 0,
        "kbpf veristat {args:?}: status {}\n{}{}",
        o.status,
        o.stdout,
        o.stderr
    );
    o
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d = std::env::temp_dir().join(format!(
            "kbpf-veristat-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const REJECTED_C: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Reads the first packet byte without checking data_end: the verifier rejects it. */
SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	return *data;
}

SEC("xdp")
int xdp_fine(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// An object whose hash map is declared without a size (libbpf-tools set such sizes at run
/// time): veristat gives it 1 entry (`fixup_obj`), a plain load refuses the map.
const UNSIZED_C: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &k);

	return v ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// `rejected.bpf.o` (one rejected and one accepted XDP program) built with clang-19, or
/// `None` (with a `SKIP:` line) where clang-19 is missing; under `CI=true` that fails.
fn rejected_object(dir: &Scratch) -> Option<String> {
    build_object(dir, "rejected", REJECTED_C)
}

/// `NAME.bpf.o` from C source `src`, built with clang-19 (see [`rejected_object`]).
fn build_object(dir: &Scratch, name: &str, c: &str) -> Option<String> {
    let src = dir.path(&format!("{name}.bpf.c"));
    let obj = dir.path(&format!("{name}.bpf.o"));
    std::fs::write(&src, c).unwrap();
    let r = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", "-mcpu=v3"])
        .arg("-I/usr/include/x86_64-linux-gnu")
        .args(["-c", &src, "-o", &obj])
        .output();
    let why = match r {
        Ok(o) if o.status.success() => return Some(obj),
        Ok(o) => format!("clang-19 failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => format!("clang-19 not runnable: {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the rejected-program object cannot be built: {why}");
    }
    println!("SKIP: veristat checks on {name}.bpf.o: {why}");
    None
}

/// veristat's `fixup_obj`: a map declared with `max_entries` 0 gets 1 entry, so the program
/// verifies (the kernel's veristat says `success` too); without it the object cannot load.
#[test]
fn unsized_maps_get_one_entry_as_in_veristat() {
    let dir = Scratch::new("unsized");
    let Some(obj) = build_object(&dir, "unsized", UNSIZED_C) else {
        return;
    };
    let (_, rows) = parse_csv(&veristat(&["-o", "csv", "-e", "prog,verdict", &obj]).stdout);
    assert_eq!(
        rows,
        vec![vec!["xdp_count".to_owned(), "success".to_owned()]]
    );
    let fs = dir.path("bpffs");
    std::fs::create_dir_all(&fs).unwrap();
    let out = kbpf(&["--bpffs", &fs, "prog", "loadall", &obj, &format!("{fs}/p")]);
    assert!(
        out.stderr.contains("max_entries") || out.stdout.contains("max_entries"),
        "a plain load refuses the unsized map: {} {}",
        out.stdout,
        out.stderr
    );
}

/// A parsed table: the `Processing` lines, headers, rows of cells, the `Done.` line.
#[derive(Debug)]
struct Table {
    processing: Vec<String>,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    done: String,
}

/// Parses veristat's table and checks its layout: the dash line gives the columns (two spaces
/// apart), the header and every row fit them, text is left- and numbers right-aligned, the
/// dash line closes the rows, and the `Done.` line ends the output.
fn parse_table(text: &str) -> Table {
    let lines: Vec<&str> = text.lines().collect();
    let processing: Vec<String> = lines
        .iter()
        .take_while(|l| l.starts_with("Processing '"))
        .map(|l| l.to_string())
        .collect();
    let rest = &lines[processing.len()..];
    assert!(rest.len() >= 4, "table too short:\n{text}");
    let (header, dashes) = (rest[0], rest[1]);
    // Column spans from the dash line.
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in dashes.char_indices().chain([(dashes.len(), ' ')]) {
        match (c, start) {
            ('-', None) => start = Some(i),
            (' ', Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            ('-', Some(_)) | (' ', None) => {}
            _ => panic!("bad dash line {dashes:?}"),
        }
    }
    for w in spans.windows(2) {
        assert_eq!(w[1].0 - w[0].1, 2, "columns two spaces apart: {dashes:?}");
    }
    let cells = |line: &str| -> Vec<String> {
        assert_eq!(line.len(), dashes.len(), "line fits the columns: {line:?}");
        spans
            .iter()
            .enumerate()
            .map(|(k, &(s, e))| {
                if k > 0 {
                    assert_eq!(&line[s - 2..s], "  ", "separator in {line:?}");
                }
                let cell = &line[s..e];
                let text = cell.trim();
                let numeric = text.parse::<i64>().is_ok();
                if numeric {
                    assert!(cell.ends_with(text), "numbers right-aligned: {line:?}");
                } else {
                    assert!(cell.starts_with(text), "text left-aligned: {line:?}");
                }
                text.to_string()
            })
            .collect()
    };
    let headers = cells(header);
    let n = rest.len();
    assert_eq!(rest[n - 2], dashes, "dashes close the rows:\n{text}");
    assert!(rest[n - 1].starts_with("Done. Processed "), "{text}");
    let rows = rest[2..n - 2].iter().map(|l| cells(l)).collect();
    Table {
        processing,
        headers,
        rows,
        done: rest[n - 1].to_string(),
    }
}

/// CSV text as header and rows of cells.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>())
        .collect();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "row {r:?} has the header's width");
    }
    (header, rows)
}

const DEFAULT_HEADERS: [&str; 7] = [
    "File",
    "Program",
    "Verdict",
    "Duration (us)",
    "Insns",
    "States",
    "Peak states",
];

#[test]
fn table_layout_verdicts_and_counts() {
    let dir = Scratch::new("table");
    let rejected = rejected_object(&dir);
    let mut args = vec![object("aom_inner_map.bpf.o"), object("bounded_loop.bpf.o")];
    args.extend(rejected.clone());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = parse_table(&veristat(&a).stdout);
    assert_eq!(t.headers, DEFAULT_HEADERS);
    assert_eq!(
        t.processing[..2],
        [
            "Processing 'aom_inner_map.bpf.o'...",
            "Processing 'bounded_loop.bpf.o'..."
        ]
    );
    let by_prog: BTreeMap<&str, &Vec<String>> = t.rows.iter().map(|r| (r[1].as_str(), r)).collect();
    let two = by_prog["xdp_two_level"];
    assert_eq!(
        (two[0].as_str(), two[2].as_str()),
        ("aom_inner_map.bpf.o", "success")
    );
    let lp = by_prog["xdp_loop"];
    assert_eq!(lp[2], "success");
    assert!(
        lp[4].parse::<u64>().unwrap() > 100,
        "a loop takes many insns"
    );
    for r in &t.rows {
        let insns: u64 = r[4].parse().unwrap();
        let states: u64 = r[5].parse().unwrap();
        let peak: u64 = r[6].parse().unwrap();
        assert!(states <= insns && peak <= states.max(1), "{r:?}");
    }
    // Sorted by file, then program.
    let keys: Vec<(&str, &str)> = t.rows.iter().map(|r| (&r[0][..], &r[1][..])).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    if rejected.is_some() {
        assert_eq!(by_prog["xdp_unchecked"][2], "failure");
        assert!(by_prog["xdp_unchecked"][4].parse::<u64>().unwrap() > 0);
        assert_eq!(
            by_prog["xdp_fine"][2], "success",
            "the rejection hides nothing"
        );
        assert_eq!(
            t.done,
            "Done. Processed 3 files, 4 programs. Skipped 0 files, 0 programs."
        );
    } else {
        assert_eq!(
            t.done,
            "Done. Processed 2 files, 2 programs. Skipped 0 files, 0 programs."
        );
    }
    // -q drops the Processing lines; -n 1 keeps the first row.
    let q = veristat(&["-q", "-n", "1", &object("bounded_loop.bpf.o")]).stdout;
    let t = parse_table(&q);
    assert!(t.processing.is_empty() && t.rows.len() == 1);
}

#[test]
fn csv_round_trips_through_replay_and_emit_picks_columns() {
    let dir = Scratch::new("csv");
    let objs = [object("aom_inner_map.bpf.o"), object("bounded_loop.bpf.o")];
    let mut a = vec!["-o", "csv"];
    a.extend(objs.iter().map(String::as_str));
    let csv = veristat(&a).stdout;
    assert!(!csv.contains("Processing"), "CSV has no Processing lines");
    let (header, rows) = parse_csv(&csv);
    assert_eq!(
        header,
        [
            "file_name",
            "prog_name",
            "verdict",
            "duration",
            "total_insns",
            "total_states",
            "peak_states",
            "max_states_per_insn",
            "max_mark_read_len"
        ]
    );
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert!(r[2] == "success" || r[2] == "failure");
        for n in &r[3..] {
            n.parse::<u64>().unwrap();
        }
        assert_eq!(r[8], "0", "kbpf reports mark_read as 0");
    }
    let file = dir.path("a.csv");
    std::fs::write(&file, &csv).unwrap();
    // -R reads the CSV back and prints it again: the same CSV, and the same numbers as a table.
    assert_eq!(veristat(&["-R", &file, "-o", "csv"]).stdout, csv);
    let t = parse_table(&veristat(&["-R", &file]).stdout);
    assert_eq!(t.headers, DEFAULT_HEADERS);
    let table_rows: Vec<Vec<String>> = rows.iter().map(|r| r[..7].to_vec()).collect();
    assert_eq!(t.rows, table_rows);

    // -e with aliases; the CSV header uses the first name.
    let o = veristat(&["-o", "csv", "-e", "prog,insns,verdict,mark_read", &objs[1]]).stdout;
    let (h, r) = parse_csv(&o);
    assert_eq!(
        h,
        ["prog_name", "total_insns", "verdict", "max_mark_read_len"]
    );
    assert_eq!(
        r,
        [vec![
            "xdp_loop".to_string(),
            rows[1][4].clone(),
            "success".into(),
            "0".into()
        ]]
    );
    let t = parse_table(&veristat(&["-e", "file,max_states_per_insn,dur", &objs[0]]).stdout);
    assert_eq!(t.headers, ["File", "Max states per insn", "Duration (us)"]);
    // -s insns: descending by instructions by default; insns^ ascending.
    let order = |spec: &str| -> Vec<String> {
        let o = veristat(&["-q", "-s", spec, "-e", "prog", &objs[0], &objs[1]]).stdout;
        parse_table(&o)
            .rows
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    assert_eq!(order("insns"), ["xdp_loop", "xdp_two_level"]);
    assert_eq!(order("insns^"), ["xdp_two_level", "xdp_loop"]);
}

#[test]
fn filters_by_name_and_stat() {
    let dir = Scratch::new("filter");
    let rejected = rejected_object(&dir);
    let mut objs = vec![object("aom_inner_map.bpf.o"), object("bounded_loop.bpf.o")];
    objs.extend(rejected.clone());
    let run = |filters: &[&str]| -> Table {
        let mut a: Vec<&str> = Vec::new();
        for f in filters {
            a.extend(["-f", f]);
        }
        a.extend(objs.iter().map(String::as_str));
        parse_table(&veristat(&a).stdout)
    };
    let progs = |t: &Table| -> Vec<String> { t.rows.iter().map(|r| r[1].clone()).collect() };
    let extra = rejected.is_some() as usize;

    // A bare glob may name a file or a program: every file is opened, the other programs
    // are skipped. `GLOB/` names files only: the other files are skipped unopened.
    let t = run(&["bounded*"]);
    assert_eq!(progs(&t), ["xdp_loop"]);
    assert_eq!(
        t.done,
        format!(
            "Done. Processed {} files, 1 programs. Skipped 0 files, {} programs.",
            2 + extra,
            1 + 2 * extra
        )
    );
    let t = run(&["bounded*/"]);
    assert_eq!(progs(&t), ["xdp_loop"]);
    assert_eq!(
        t.done,
        format!(
            "Done. Processed 1 files, 1 programs. Skipped {} files, 0 programs.",
            1 + extra
        )
    );
    let t = run(&["!*/xdp_two_level"]);
    assert!(!progs(&t).contains(&"xdp_two_level".to_string()));
    assert!(
        t.done.ends_with("Skipped 0 files, 1 programs."),
        "{}",
        t.done
    );
    let t = run(&["*/xdp_loop", "aom*/"]);
    assert_eq!(progs(&t), ["xdp_two_level", "xdp_loop"]);
    let t = run(&["insns>100"]);
    assert_eq!(progs(&t), ["xdp_loop"]);
    let t = run(&["insns<=100", "!verdict=failure"]);
    assert_eq!(progs(&t), {
        let mut v = vec!["xdp_two_level"];
        if rejected.is_some() {
            v.push("xdp_fine");
        }
        v
    });
    if rejected.is_some() {
        let t = run(&["verdict=failure"]);
        assert_eq!(progs(&t), ["xdp_unchecked"]);
        assert!(
            t.done.contains("Processed 3 files, 4 programs"),
            "{}",
            t.done
        );
    }
    // @FILE: one filter per line, comments and blank lines skipped.
    let f = dir.path("filters");
    std::fs::write(&f, "# only the loop\n\nbounded_loop*\n!*/nothing\n").unwrap();
    let at = format!("@{f}");
    assert_eq!(progs(&run(&[&at])), ["xdp_loop"]);
    // Bad filters are argument errors: status 1 and veristat's message.
    let o = kbpf(&["veristat", "-f", "nosuch>1", &objs[0]]);
    assert_eq!(o.status, 1);
    assert!(
        o.stderr.contains("Unrecognized stat name in 'nosuch>1'!"),
        "{}",
        o.stderr
    );
    let o = kbpf(&["veristat", "-f", "file=x", &objs[0]]);
    assert!(
        o.stderr
            .contains("Non-integer stat is specified in 'file=x'!")
    );
    let o = kbpf(&["veristat", "-f", "insns>lots", &objs[0]]);
    assert!(o.stderr.contains("Invalid integer value in 'insns>lots'!"));
}

#[test]
fn compare_mode_joins_and_diffs() {
    let dir = Scratch::new("cmp");
    let rejected = rejected_object(&dir);
    let mut objs = vec![object("aom_inner_map.bpf.o"), object("bounded_loop.bpf.o")];
    objs.extend(rejected.clone());
    let mut a = vec!["-o", "csv"];
    a.extend(objs.iter().map(String::as_str));
    let csv_a = veristat(&a).stdout;
    let (header, rows) = parse_csv(&csv_a);
    // B: xdp_loop takes 10 % more instructions (rounded up) and fails; xdp_two_level is gone;
    // a new program appears.
    let mut csv_b = header.join(",") + "\n";
    let mut loop_insns = 0i64;
    for r in &rows {
        let mut r = r.clone();
        match r[1].as_str() {
            "xdp_two_level" => continue,
            "xdp_loop" => {
                loop_insns = r[4].parse().unwrap();
                r[4] = (loop_insns + (loop_insns + 9) / 10).to_string();
                r[2] = "failure".into();
            }
            _ => {}
        }
        csv_b.push_str(&(r.join(",") + "\n"));
    }
    csv_b.push_str("zz.bpf.o,new_prog,success,5,7,1,1,1,0\n");
    let (fa, fb) = (dir.path("a.csv"), dir.path("b.csv"));
    std::fs::write(&fa, &csv_a).unwrap();
    std::fs::write(&fb, &csv_b).unwrap();

    let o = veristat(&["-C", &fa, &fb, "-o", "csv", "-e", "file,prog,verdict,insns"]).stdout;
    let (h, r) = parse_csv(&o);
    assert_eq!(
        h,
        [
            "file_name",
            "prog_name",
            "verdict_base",
            "verdict_comp",
            "verdict_diff",
            "total_insns_base",
            "total_insns_comp",
            "total_insns_diff"
        ]
    );
    let by: BTreeMap<&str, &Vec<String>> = r.iter().map(|r| (r[1].as_str(), r)).collect();
    let inc = (loop_insns + 9) / 10;
    let pct = inc as f64 * 100.0 / loop_insns as f64;
    assert_eq!(
        by["xdp_loop"][2..],
        [
            "success".to_string(),
            "failure".into(),
            "MISMATCH".into(),
            loop_insns.to_string(),
            (loop_insns + inc).to_string(),
            format!("+{inc} (+{pct:.2}%)")
        ]
    );
    assert_eq!(by["xdp_two_level"][3..5], ["N/A", "N/A"]);
    assert_eq!(by["xdp_two_level"][7], "N/A");
    assert_eq!(by["new_prog"][0], "zz.bpf.o");
    assert_eq!(
        by["new_prog"][2..],
        ["N/A", "success", "N/A", "N/A", "7", "N/A"]
    );
    if rejected.is_some() {
        assert_eq!(by["xdp_unchecked"][4], "MATCH");
        assert!(by["xdp_unchecked"][7].starts_with("+0 (+0.00%)"));
    }
    // Filters on the joined values: the programs whose instruction count changed, present on
    // both sides.
    let o = veristat(&[
        "-C",
        &fa,
        &fb,
        "-o",
        "csv",
        "-e",
        "prog",
        "-f",
        "insns_diff>0",
    ])
    .stdout;
    assert_eq!(o, "prog_name\nxdp_loop\n");
    let o = veristat(&[
        "-C",
        &fa,
        &fb,
        "-o",
        "csv",
        "-e",
        "prog",
        "-f",
        "verdict_diff=mismatch",
    ]);
    assert_eq!(o.stdout, "prog_name\nxdp_loop\n");

    // The table: A/B/DIFF headers, dashes, rows; no closing dashes, as veristat.
    let o = veristat(&["-C", &fa, &fb, "-e", "prog,insns"]).stdout;
    let lines: Vec<&str> = o.lines().collect();
    assert!(lines[0].starts_with("Program"), "{o}");
    assert!(lines[0].contains("  Insns (A)  Insns (B)  Insns"), "{o}");
    assert!(lines[0].ends_with("(DIFF)"), "{o}");
    assert!(lines[1].chars().all(|c| c == '-' || c == ' '));
    assert_eq!(lines[0].len(), lines[1].len());
    let loop_line = lines.iter().find(|l| l.starts_with("xdp_loop")).unwrap();
    assert!(
        loop_line.ends_with(&format!("+{inc} (+{pct:.2}%)")),
        "{loop_line}"
    );
    assert_eq!(
        lines.len(),
        2 + r.len(),
        "header, dashes, one line per program"
    );

    // Mismatched CSVs, wrong file counts: veristat's errors and EINVAL.
    let fc = dir.path("c.csv");
    std::fs::write(&fc, "file_name,prog_name,verdict\nx,y,success\n").unwrap();
    let o = kbpf(&["veristat", "-C", &fa, &fc]);
    assert_eq!(o.status, 22);
    assert!(o.stderr.contains("Number of stats in"), "{}", o.stderr);
    let o = kbpf(&["veristat", "-C", &fa]);
    assert_eq!(o.status, 22);
    assert!(
        o.stderr
            .contains("Comparison mode expects exactly two input CSV files!")
    );
    let o = kbpf(&["veristat", "-C", &fa, &dir.path("missing.csv")]);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("Failed to open"), "{}", o.stderr);
    std::fs::write(&fc, "file_name,prog_name,verdict\nx,y,maybe\n").unwrap();
    let o = kbpf(&["veristat", "-R", &fc]);
    assert!(
        o.stderr
            .contains("Unrecognized verification verdict 'maybe'")
    );
}

#[test]
fn skipped_files_argument_errors_and_kernel_options() {
    let bl = object("bounded_loop.bpf.o");
    let readme = object("README.md");
    // A missing file: stderr, counted as skipped, status 0. A non-ELF file: skipped quietly.
    let o = veristat(&[&bl, "/no/such/obj.bpf.o", &readme]);
    assert!(
        o.stderr.contains("Failed to open '/no/such/obj.bpf.o': -2"),
        "{}",
        o.stderr
    );
    let t = parse_table(&o.stdout);
    assert_eq!(
        t.done,
        "Done. Processed 1 files, 1 programs. Skipped 2 files, 0 programs."
    );
    let o = veristat(&["-v", &readme]);
    assert!(o.stdout.contains("as it's not a BPF object file"));
    // An object whose maps kbpf cannot create is a file that failed to open.
    let o = veristat(&[&object("malformed/bad_map_type.bpf.o")]);
    assert!(o.stderr.contains("Failed to open"), "{}", o.stderr);

    // -v prints each program's log in veristat's format.
    let o = veristat(&["-v", &bl]).stdout;
    assert!(
        o.contains("PROCESSING ") && o.contains("/xdp_loop, DURATION US: "),
        "{o}"
    );
    assert!(o.contains("VERDICT: success, VERIFIER LOG:\n"));
    assert!(o.contains("\nprocessed "), "the statistics line: {o}");
    let l2 = veristat(&["-v", "-l", "2", &bl]).stdout;
    assert!(l2.len() > o.len(), "level 2 logs more");

    // Argument errors.
    let o = kbpf(&["veristat", "-o", "json", &bl]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("Unrecognized output format 'json'"));
    let o = kbpf(&["veristat"]);
    assert_eq!(o.status, 22);
    assert!(o.stderr.contains("Please provide path to BPF object file!"));
    let o = kbpf(&["veristat", "-v", "-q", &bl]);
    assert_eq!(o.status, 1);
    let o = kbpf(&["veristat", "-e", "bogus", &bl]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("Unrecognized stat name 'bogus'"));
    let o = kbpf(&["veristat", "-C", "-R", "a", "b"]);
    assert_eq!(o.status, 1);
    let o = kbpf(&["-j", "veristat", &bl]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("no JSON output"));

    // --kernel/--kernel-btf, before or after the command.
    let before = kbpf(&[
        "--kernel",
        "builtin",
        "veristat",
        "-q",
        "-e",
        "prog,insns",
        &bl,
    ]);
    let after = kbpf(&[
        "veristat",
        "--kernel=builtin",
        "-q",
        "-e",
        "prog,insns",
        &bl,
    ]);
    assert_eq!(before.status, 0, "{}", before.stderr);
    assert_eq!(before.stdout, after.stdout);
    let o = kbpf(&["veristat", "--kernel", "nonsense", &bl]);
    assert_ne!(o.status, 0);
    assert!(
        o.stderr.contains("unknown kernel 'nonsense'"),
        "{}",
        o.stderr
    );
    let o = kbpf(&["veristat", "--kernel-btf", "/no/such/vmlinux", &bl]);
    assert_ne!(o.status, 0);
    assert!(!o.stderr.is_empty());
}

/// The comparison with the live kernel.
#[path = "veristat/kernel.rs"]
mod kernel;

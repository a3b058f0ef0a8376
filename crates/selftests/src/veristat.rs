//! `kbpf veristat` against the kernel's own veristat (Linux 6.12's
//! `tools/testing/selftests/bpf/veristat.c`, built on the tree's libbpf by
//! `scripts/selftests.sh`): both run over the suite's objects with `-o csv`, the two result
//! sets are joined by `kbpf veristat -C`, and the join is read back to count where both
//! accept and process the same number of instructions (`total_insns`), and to set the two
//! verifiers' summed durations side by side.
//!
//! The kernel side is veristat's own conditions (root, no test flags, libbpf's fixups), not
//! the selftests' (`kload`), so its verdicts can differ from the suite's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pct;

/// The stats both sides emit and `-C` joins.
const STATS: &str = "file_name,prog_name,verdict,duration,total_insns,total_states,peak_states";

/// One program of the join: `None` where a side has no row (or `-C` printed `N/A`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Joined {
    /// Object file name (`verifier_and.bpf.o`).
    pub file: String,
    /// Program name.
    pub prog: String,
    /// The kernel's verdict (veristat's `success`).
    pub kernel_ok: Option<bool>,
    /// kbpf's verdict.
    pub kbpf_ok: Option<bool>,
    /// The kernel's `total_insns` (its log's `processed N insns`).
    pub kernel_insns: Option<i64>,
    /// kbpf's `total_insns`.
    pub kbpf_insns: Option<i64>,
    /// The kernel's `duration` (its log's `verification time`, µs).
    pub kernel_us: Option<i64>,
    /// kbpf's `duration` (verify and rewrite, µs).
    pub kbpf_us: Option<i64>,
}

impl Joined {
    /// Both accept.
    pub fn both_accept(&self) -> bool {
        self.kernel_ok == Some(true) && self.kbpf_ok == Some(true)
    }

    /// Both accept with the same `total_insns`.
    pub fn same_insns(&self) -> bool {
        self.both_accept() && self.kernel_insns.is_some() && self.kernel_insns == self.kbpf_insns
    }
}

/// The comparison.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// The kernel's veristat's CSV.
    pub kernel_csv: String,
    /// `kbpf veristat -o csv`.
    pub kbpf_csv: String,
    /// `kbpf veristat -C kernel.csv kbpf.csv -o csv`.
    pub compare_csv: String,
    /// The join, as `-C` printed it.
    pub rows: Vec<Joined>,
    /// Wall time of the kernel's veristat.
    pub kernel_wall: Duration,
    /// Wall time of `kbpf veristat`.
    pub kbpf_wall: Duration,
}

/// The summed figures of a [`Comparison`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Programs in the join.
    pub programs: usize,
    /// Programs with the same verdict on both sides.
    pub same_verdict: usize,
    /// Programs both accept.
    pub both_accept: usize,
    /// Of those, the same `total_insns`.
    pub same_insns: usize,
    /// Programs with a duration on both sides.
    pub timed: usize,
    /// The kernel's summed durations over those, µs.
    pub kernel_us: i64,
    /// kbpf's, µs.
    pub kbpf_us: i64,
    /// Both-accept programs' kernel durations, µs.
    pub kernel_accept_us: i64,
    /// Both-accept programs' kbpf durations, µs.
    pub kbpf_accept_us: i64,
}

impl Comparison {
    /// Runs the kernel's `veristat` at `veristat` and `kbpf veristat` (under the live
    /// kernel's profile, `--kernel host`) over `objects`; both CSVs are written to `dir`
    /// (`veristat-kernel.csv`, `veristat-kbpf.csv`, `veristat-compare.csv`).
    pub fn run(veristat: &Path, objects: &[PathBuf], dir: &Path) -> Result<Comparison, String> {
        let files: Vec<String> = objects
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let start = Instant::now();
        let out = Command::new(veristat)
            .args(["-o", "csv", "-e", STATS])
            .args(&files)
            .output()
            .map_err(|e| format!("{}: {e}", veristat.display()))?;
        let kernel_wall = start.elapsed();
        if !out.status.success() {
            return Err(format!(
                "veristat: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let kernel_csv = String::from_utf8_lossy(&out.stdout).into_owned();

        let g = kbpf_cli::veristat::Globals {
            kernel: Some("host".into()),
            ..Default::default()
        };
        let mut args = vec!["-o", "csv", "-e", STATS];
        args.extend(files.iter().map(String::as_str));
        let start = Instant::now();
        let kbpf_csv = kbpf_cli::veristat::run(&args, &g)
            .map_err(|(m, code)| format!("kbpf veristat: exit {code}: {m}"))?;
        let kbpf_wall = start.elapsed();

        let (ka, kb) = (
            dir.join("veristat-kernel.csv"),
            dir.join("veristat-kbpf.csv"),
        );
        std::fs::write(&ka, &kernel_csv).map_err(|e| format!("{}: {e}", ka.display()))?;
        std::fs::write(&kb, &kbpf_csv).map_err(|e| format!("{}: {e}", kb.display()))?;
        let (a, b) = (ka.to_string_lossy(), kb.to_string_lossy());
        let compare_csv = kbpf_cli::veristat::run(
            &["-C", "-o", "csv", "-e", STATS, a.as_ref(), b.as_ref()],
            &g,
        )
        .map_err(|(m, code)| format!("kbpf veristat -C: exit {code}: {m}"))?;
        let kc = dir.join("veristat-compare.csv");
        std::fs::write(&kc, &compare_csv).map_err(|e| format!("{}: {e}", kc.display()))?;
        Ok(Comparison {
            rows: parse_compare(&compare_csv)?,
            kernel_csv,
            kbpf_csv,
            compare_csv,
            kernel_wall,
            kbpf_wall,
        })
    }

    /// The summed figures.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for r in &self.rows {
            t.programs += 1;
            t.same_verdict += usize::from(r.kernel_ok.is_some() && r.kernel_ok == r.kbpf_ok);
            t.both_accept += usize::from(r.both_accept());
            t.same_insns += usize::from(r.same_insns());
            if let (Some(k), Some(b)) = (r.kernel_us, r.kbpf_us) {
                t.timed += 1;
                t.kernel_us += k;
                t.kbpf_us += b;
                if r.both_accept() {
                    t.kernel_accept_us += k;
                    t.kbpf_accept_us += b;
                }
            }
        }
        t
    }

    /// The report's section (`docs/selftests.md`), the timing table included.
    pub fn markdown(&self, kbpf_build: &str) -> String {
        let t = self.totals();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "## `kbpf veristat` against the kernel's veristat\n\n\
             The kernel's veristat (Linux 6.12's `veristat.c`, built on the tree's libbpf by \
             `scripts/selftests.sh`) and `kbpf veristat --kernel host` (the {kbpf_build} build \
             of the test) over the same objects, `-o csv -e {STATS}`, joined by \
             `kbpf veristat -C kernel.csv kbpf.csv`. veristat loads as root without the \
             selftests' test flags, so its verdicts are not exactly the suite's.\n"
        );
        let _ = writeln!(s, "| | count | of | % |\n|---|---:|---:|---:|");
        for (what, n, of) in [
            ("programs", t.programs, t.programs),
            ("same verdict", t.same_verdict, t.programs),
            ("both accept", t.both_accept, t.programs),
            (
                "**same total insns processed** (of both accept)",
                t.same_insns,
                t.both_accept,
            ),
        ] {
            let _ = writeln!(s, "| {what} | {n} | {of} | {} |", pct(n, of));
        }
        let _ = writeln!(s, "\n{}", self.timing_table(kbpf_build));
        s
    }

    /// Verification time side by side: veristat's `duration` summed, kernel and kbpf.
    pub fn timing_table(&self, kbpf_build: &str) -> String {
        let t = self.totals();
        let ms = |us: i64| format!("{:.1}", us as f64 / 1000.0);
        let ratio = |b: i64, k: i64| {
            if k > 0 {
                format!("{:.2}×", b as f64 / k as f64)
            } else {
                "–".into()
            }
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| programs (veristat `duration`, summed) | n | kernel ms | kbpf ms ({kbpf_build}) | kbpf / kernel |\n\
             |---|---:|---:|---:|---:|"
        );
        for (what, n, k, b) in [
            ("all, both verified", t.timed, t.kernel_us, t.kbpf_us),
            (
                "both accept",
                t.both_accept,
                t.kernel_accept_us,
                t.kbpf_accept_us,
            ),
        ] {
            let _ = writeln!(
                s,
                "| {what} | {n} | {} | {} | {} |",
                ms(k),
                ms(b),
                ratio(b, k)
            );
        }
        let _ = writeln!(
            s,
            "\nWall time of the two runs: the kernel's veristat {:.1} s, `kbpf veristat` {:.1} s \
             (the kernel's includes libbpf's object loading, kbpf's its ELF loading).",
            self.kernel_wall.as_secs_f64(),
            self.kbpf_wall.as_secs_f64()
        );
        s
    }
}

/// Reads `-C -o csv`'s output: `file_name,prog_name`, then `<stat>_base,<stat>_comp,<stat>_diff`
/// per stat (base: the kernel, comp: kbpf).
pub fn parse_compare(csv: &str) -> Result<Vec<Joined>, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().ok_or("empty comparison")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("comparison CSV has no column {name}: {header:?}"))
    };
    let (file, prog) = (col("file_name")?, col("prog_name")?);
    let (va, vb) = (col("verdict_base")?, col("verdict_comp")?);
    let (ia, ib) = (col("total_insns_base")?, col("total_insns_comp")?);
    let (da, db) = (col("duration_base")?, col("duration_comp")?);
    let verdict = |s: &str| match s {
        "success" => Some(true),
        "failure" => Some(false),
        _ => None,
    };
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or_default();
        let num = |i: usize| get(i).parse::<i64>().ok();
        rows.push(Joined {
            file: get(file).to_owned(),
            prog: get(prog).to_owned(),
            kernel_ok: verdict(get(va)),
            kbpf_ok: verdict(get(vb)),
            kernel_insns: num(ia),
            kbpf_insns: num(ib),
            kernel_us: num(da),
            kbpf_us: num(db),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_comparison() {
        let csv = "file_name,prog_name,verdict_base,verdict_comp,verdict_diff,duration_base,\
                   duration_comp,duration_diff,total_insns_base,total_insns_comp,total_insns_diff\n\
                   a.o,p,success,success,MATCH,10,30,+20,7,7,+0\n\
                   a.o,q,success,failure,MISMATCH,5,6,+1,9,3,-6\n\
                   b.o,r,N/A,success,N/A,N/A,4,N/A,N/A,2,N/A\n";
        let rows = parse_compare(csv).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].same_insns());
        assert!(!rows[1].both_accept());
        assert_eq!(rows[2].kernel_ok, None);
        let c = Comparison {
            rows,
            ..Default::default()
        };
        let t = c.totals();
        assert_eq!(
            (t.programs, t.same_verdict, t.both_accept, t.same_insns),
            (3, 1, 1, 1)
        );
        assert_eq!((t.timed, t.kernel_us, t.kbpf_us), (2, 15, 36));
        assert!(parse_compare("file_name,prog_name\n").is_err());
    }
}

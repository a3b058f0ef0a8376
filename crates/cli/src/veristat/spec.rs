//! veristat's vocabulary: the statistics and their names (`-e`, `-s`, CSV headers), sort and
//! emit specs, the rows of results and the joined rows of comparison mode, and reading
//! veristat's CSV files (`-C`, `-R`). Filters (`-f`) are in [`super::filter`].
//!
//! Names, aliases, suffixes and error messages are those of the kernel's
//! `tools/testing/selftests/bpf/veristat.c` (Linux 6.12).

use std::cmp::Ordering;

use super::filter::Filters;

/// Number of numeric statistics (verdict through mark_read).
pub const NUM_STATS: usize = 7;

/// Most entries of one spec (veristat's `ALL_STATS_CNT`).
pub const MAX_SPECS: usize = 9;

/// One statistic (veristat's `enum stat_id`, in its order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// 1 when accepted, 0 when rejected.
    Verdict,
    /// Verification time in microseconds.
    Duration,
    /// Instructions processed.
    TotalInsns,
    /// States stored.
    TotalStates,
    /// Most states alive at once.
    PeakStates,
    /// Most states at one instruction.
    MaxStatesPerInsn,
    /// The kernel's longest mark_read chain (kbpf does not track it: always 0).
    MarkReadMaxLen,
    /// The object file's base name.
    FileName,
    /// The program's name.
    ProgName,
}

impl Stat {
    /// Every statistic, in veristat's order (the order aliases are matched in).
    pub const ALL: [Stat; 9] = [
        Stat::Verdict,
        Stat::Duration,
        Stat::TotalInsns,
        Stat::TotalStates,
        Stat::PeakStates,
        Stat::MaxStatesPerInsn,
        Stat::MarkReadMaxLen,
        Stat::FileName,
        Stat::ProgName,
    ];

    /// The table header.
    pub fn header(self) -> &'static str {
        match self {
            Stat::FileName => "File",
            Stat::ProgName => "Program",
            Stat::Verdict => "Verdict",
            Stat::Duration => "Duration (us)",
            Stat::TotalInsns => "Insns",
            Stat::TotalStates => "States",
            Stat::PeakStates => "Peak states",
            Stat::MaxStatesPerInsn => "Max states per insn",
            Stat::MarkReadMaxLen => "Max mark read length",
        }
    }

    /// The names it is known by; the first is the CSV header.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Stat::FileName => &["file_name", "filename", "file"],
            Stat::ProgName => &["prog_name", "progname", "prog"],
            Stat::Verdict => &["verdict"],
            Stat::Duration => &["duration", "dur"],
            Stat::TotalInsns => &["total_insns", "insns"],
            Stat::TotalStates => &["total_states", "states"],
            Stat::PeakStates => &["peak_states"],
            Stat::MaxStatesPerInsn => &["max_states_per_insn"],
            Stat::MarkReadMaxLen => &["max_mark_read_len", "mark_read"],
        }
    }

    /// File, program and verdict: sorted ascending by default, left-aligned, strings.
    pub fn is_textual(self) -> bool {
        matches!(self, Stat::FileName | Stat::ProgName | Stat::Verdict)
    }

    /// File and program name: the join key of comparison mode.
    pub fn is_key(self) -> bool {
        matches!(self, Stat::FileName | Stat::ProgName)
    }

    /// The index into [`Row::stats`] of a numeric statistic.
    pub fn index(self) -> Option<usize> {
        match self {
            Stat::FileName | Stat::ProgName => None,
            s => Some(s as usize),
        }
    }
}

/// Which value of a compared statistic (`_a`, `_b`, `_diff`, `_pct`; `_b` when none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The baseline (first CSV).
    A,
    /// The comparison (second CSV).
    B,
    /// B − A.
    Diff,
    /// (B − A) in percent of A.
    Pct,
}

/// One entry of an emit or sort spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecItem {
    /// The statistic.
    pub stat: Stat,
    /// The variant (comparison mode only).
    pub variant: Variant,
    /// Ascending order.
    pub asc: bool,
    /// Compare absolute values (`|stat|`).
    pub abs: bool,
}

impl SpecItem {
    /// A statistic with its default order.
    pub fn of(stat: Stat) -> SpecItem {
        SpecItem {
            stat,
            variant: Variant::B,
            asc: stat.is_textual(),
            abs: false,
        }
    }
}

/// `NAME[_a|_b|_diff|_pct]`, possibly inside `|…|`.
pub fn parse_stat_id_var(name: &str) -> Option<(Stat, Variant, bool)> {
    let (name, abs) = match name.strip_prefix('|').and_then(|n| n.strip_suffix('|')) {
        Some(inner) if name.len() > 2 => (inner, true),
        _ => (name, false),
    };
    for stat in Stat::ALL {
        for alias in stat.names() {
            let Some(rest) = name.strip_prefix(alias) else {
                continue;
            };
            let variant = match rest {
                "" => Variant::B,
                "_a" => Variant::A,
                "_b" => Variant::B,
                "_diff" => Variant::Diff,
                "_pct" => Variant::Pct,
                _ => continue,
            };
            return Some((stat, variant, abs));
        }
    }
    None
}

/// One spec entry: a statistic name with an optional order suffix (`^` ascending; `v`, `V`,
/// `.`, `!`, `_` descending).
pub fn parse_spec_item(s: &str) -> Result<SpecItem, String> {
    let mut name = s;
    let mut order = None;
    if s.len() > 1
        && let Some(last) = s.chars().last()
    {
        if last == '^' {
            order = Some(true);
        } else if matches!(last, 'v' | 'V' | '.' | '!' | '_') {
            order = Some(false);
        }
        if order.is_some() {
            name = &s[..s.len() - last.len_utf8()];
        }
    }
    let (stat, variant, abs) =
        parse_stat_id_var(name).ok_or_else(|| format!("Unrecognized stat name '{s}'"))?;
    Ok(SpecItem {
        stat,
        variant,
        asc: order.unwrap_or(stat.is_textual()),
        abs,
    })
}

/// A comma-separated spec, appended to `specs`.
pub fn parse_specs(s: &str, specs: &mut Vec<SpecItem>) -> Result<(), String> {
    for part in s.split(',').filter(|p| !p.is_empty()) {
        if specs.len() >= MAX_SPECS {
            return Err(format!("Can't specify more than {MAX_SPECS} stats"));
        }
        specs.push(parse_spec_item(part)?);
    }
    Ok(())
}

/// The default columns of a table, and of a CSV (which adds the last two statistics).
pub fn default_output(csv: bool) -> Vec<SpecItem> {
    let mut v = vec![
        Stat::FileName,
        Stat::ProgName,
        Stat::Verdict,
        Stat::Duration,
        Stat::TotalInsns,
        Stat::TotalStates,
        Stat::PeakStates,
    ];
    if csv {
        v.extend([Stat::MaxStatesPerInsn, Stat::MarkReadMaxLen]);
    }
    v.into_iter().map(SpecItem::of).collect()
}

/// One program's results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// The object's base name.
    pub file: String,
    /// The program's name.
    pub prog: String,
    /// The numeric statistics, indexed by [`Stat::index`].
    pub stats: [i64; NUM_STATS],
}

impl Row {
    /// A numeric statistic (0 for file and program names).
    pub fn get(&self, s: Stat) -> i64 {
        s.index().map_or(0, |i| self.stats[i])
    }

    /// Orders rows by `spec`, then by file and program.
    pub fn cmp_by(&self, other: &Row, spec: &[SpecItem]) -> Ordering {
        for it in spec {
            let c = match it.stat {
                Stat::FileName => self.file.cmp(&other.file),
                Stat::ProgName => self.prog.cmp(&other.prog),
                s => {
                    let (mut a, mut b) = (self.get(s), other.get(s));
                    if it.abs {
                        (a, b) = (a.saturating_abs(), b.saturating_abs());
                    }
                    a.cmp(&b)
                }
            };
            let c = if it.asc { c } else { c.reverse() };
            if c != Ordering::Equal {
                return c;
            }
        }
        (&self.file, &self.prog).cmp(&(&other.file, &other.prog))
    }
}

/// A row of comparison mode: the same file and program in both data sets, or in one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    /// The object's base name.
    pub file: String,
    /// The program's name.
    pub prog: String,
    /// The baseline's row.
    pub a: Option<Row>,
    /// The comparison's row.
    pub b: Option<Row>,
}

/// A value of a joined row: a name, or a number (−f64::MAX when a side is missing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JoinValue<'a> {
    /// File or program name.
    Str(&'a str),
    /// Any numeric statistic.
    Num(f64),
}

/// (B − A) in percent of A; ±100 % when A is 0 and B is not.
pub fn pct(a: i64, b: i64) -> f64 {
    if a == 0 {
        match b.cmp(&a) {
            Ordering::Equal => 0.0,
            Ordering::Less => -100.0,
            Ordering::Greater => 100.0,
        }
    } else {
        (b as f64 - a as f64) * 100.0 / a as f64
    }
}

impl Join {
    /// The value of `stat` in `variant` (veristat's `fetch_join_stat_value`).
    pub fn value(&self, stat: Stat, variant: Variant) -> JoinValue<'_> {
        match stat {
            Stat::FileName => return JoinValue::Str(&self.file),
            Stat::ProgName => return JoinValue::Str(&self.prog),
            _ => {}
        }
        let missing = -f64::MAX;
        let v = match (variant, &self.a, &self.b) {
            (Variant::A, Some(a), _) => a.get(stat) as f64,
            (Variant::B, _, Some(b)) => b.get(stat) as f64,
            (Variant::Diff, Some(a), Some(b)) if stat == Stat::Verdict => {
                if a.get(stat) == b.get(stat) { 1.0 } else { 0.0 }
            }
            (Variant::Diff, Some(a), Some(b)) => (b.get(stat) - a.get(stat)) as f64,
            (Variant::Pct, Some(a), Some(b)) => pct(a.get(stat), b.get(stat)),
            _ => missing,
        };
        JoinValue::Num(v)
    }

    /// Orders joined rows by `spec`, then by file and program.
    pub fn cmp_by(&self, other: &Join, spec: &[SpecItem]) -> Ordering {
        for it in spec {
            let c = match (
                self.value(it.stat, it.variant),
                other.value(it.stat, it.variant),
            ) {
                (JoinValue::Str(a), JoinValue::Str(b)) => a.cmp(b),
                (JoinValue::Num(a), JoinValue::Num(b)) => {
                    let (a, b) = if it.abs { (a.abs(), b.abs()) } else { (a, b) };
                    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
                }
                _ => Ordering::Equal,
            };
            let c = if it.asc { c } else { c.reverse() };
            if c != Ordering::Equal {
                return c;
            }
        }
        (&self.file, &self.prog).cmp(&(&other.file, &other.prog))
    }
}

/// Reads a veristat CSV: the header names the columns (any of the names `-e` takes), each
/// further line is a row; rows the name filters reject are dropped. Errors are veristat's
/// messages.
pub fn parse_csv(path: &str, filters: &Filters) -> Result<(Vec<SpecItem>, Vec<Row>), String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Failed to open '{path}': {}",
            -e.raw_os_error().unwrap_or(libc::EINVAL)
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut specs: Option<Vec<SpecItem>> = None;
    let mut rows = Vec::new();
    let mut n = 0;
    for line in text.lines() {
        let cells = line
            .split(',')
            .map(|c| c.trim_end_matches('\r'))
            .filter(|c| !c.is_empty());
        let Some(specs) = &specs else {
            let mut h = Vec::new();
            for c in cells {
                if h.len() >= MAX_SPECS {
                    return Err(format!("Can't specify more than {MAX_SPECS} stats"));
                }
                h.push(parse_spec_item(c)?);
            }
            specs = Some(h);
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        n += 1;
        let mut row = Row::default();
        let (mut file, mut prog) = (false, false);
        let mut col = 0;
        for c in cells {
            let Some(spec) = specs.get(col) else {
                return Err(format!(
                    "Found extraneous column #{col} in row #{n} of '{path}'"
                ));
            };
            match spec.stat {
                Stat::FileName => (row.file, file) = (c.to_string(), true),
                Stat::ProgName => (row.prog, prog) = (c.to_string(), true),
                Stat::Verdict => {
                    row.stats[0] = match c {
                        "success" => 1,
                        "failure" => 0,
                        _ => return Err(format!("Unrecognized verification verdict '{c}'")),
                    }
                }
                s => {
                    row.stats[s as usize] = c
                        .trim()
                        .parse()
                        .map_err(|_| format!("Failed to parse '{c}' as integer"))?
                }
            }
            col += 1;
        }
        if col < specs.len() {
            return Err(format!("Not enough columns in row #{n} in '{path}'"));
        }
        if !file || !prog {
            return Err(format!(
                "Row #{n} in '{path}' is missing file and/or program name"
            ));
        }
        if filters.process(&row.file, Some(&row.prog)) {
            rows.push(row);
        }
    }
    Ok((specs.unwrap_or_default(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_variants_and_orders() {
        assert_eq!(
            parse_stat_id_var("insns_diff"),
            Some((Stat::TotalInsns, Variant::Diff, false))
        );
        assert_eq!(
            parse_stat_id_var("|states_pct|"),
            Some((Stat::TotalStates, Variant::Pct, true))
        );
        assert_eq!(
            parse_stat_id_var("mark_read"),
            Some((Stat::MarkReadMaxLen, Variant::B, false))
        );
        assert_eq!(parse_stat_id_var("insns_c"), None);
        let s = parse_spec_item("dur^").unwrap();
        assert_eq!((s.stat, s.asc), (Stat::Duration, true));
        let s = parse_spec_item("file_name").unwrap();
        assert!(s.asc);
        let s = parse_spec_item("insns").unwrap();
        assert!(!s.asc, "numbers sort descending by default");
        let s = parse_spec_item("prog_").unwrap();
        assert_eq!((s.stat, s.asc), (Stat::ProgName, false));
        assert_eq!(
            parse_spec_item("bogus").unwrap_err(),
            "Unrecognized stat name 'bogus'"
        );
        let mut v = Vec::new();
        parse_specs("file,prog,,verdict", &mut v).unwrap();
        assert_eq!(v.len(), 3);
        assert!(parse_specs("file,file,file,file,file,file,file", &mut v).is_err());
    }

    #[test]
    fn join_values() {
        let a = Row {
            file: "f".into(),
            prog: "p".into(),
            stats: [1, 10, 200, 5, 5, 1, 0],
        };
        let mut b = a.clone();
        b.stats[2] = 150;
        b.stats[0] = 0;
        let j = Join {
            file: "f".into(),
            prog: "p".into(),
            a: Some(a),
            b: Some(b),
        };
        assert_eq!(
            j.value(Stat::TotalInsns, Variant::Diff),
            JoinValue::Num(-50.0)
        );
        assert_eq!(
            j.value(Stat::TotalInsns, Variant::Pct),
            JoinValue::Num(-25.0)
        );
        assert_eq!(j.value(Stat::Verdict, Variant::Diff), JoinValue::Num(0.0));
        assert_eq!(pct(0, 0), 0.0);
        assert_eq!(pct(0, 3), 100.0);
    }
}

//! veristat's output: the table (columns two spaces apart, text left- and numbers
//! right-aligned, dashes under the header and after the rows), the CSV, and comparison mode's
//! joined rows with their A, B and DIFF columns.

use super::spec::{Join, Row, SpecItem, Stat, pct};

/// A table or CSV cell: its text and whether it is left-aligned.
type Cell = (String, bool);

/// A table header: plain (aligned like its column), or veristat's comparison header, the
/// name left-aligned and the ` (A)`/` (B)`/` (DIFF)` suffix at the column's right edge.
enum Header {
    Plain(String, bool),
    Suffixed(&'static str, &'static str),
}

impl Header {
    fn len(&self) -> usize {
        match self {
            Header::Plain(s, _) => s.len(),
            Header::Suffixed(h, s) => h.len() + s.len(),
        }
    }
}

fn pad(out: &mut String, s: &str, width: usize, left: bool) {
    let fill = " ".repeat(width.saturating_sub(s.len()));
    if left {
        out.push_str(s);
        out.push_str(&fill);
    } else {
        out.push_str(&fill);
        out.push_str(s);
    }
}

/// veristat's table: columns two spaces apart, a header, dashes, the rows, and (`trailer`)
/// dashes again.
fn render_table(headers: &[Header], rows: &[Vec<Cell>], trailer: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(Header::len).collect();
    for r in rows {
        for (w, (s, _)) in widths.iter_mut().zip(r) {
            *w = (*w).max(s.len());
        }
    }
    let dashes: String = widths
        .iter()
        .map(|w| "-".repeat(*w))
        .collect::<Vec<_>>()
        .join("  ")
        + "\n";
    let mut out = String::new();
    for (i, (h, w)) in headers.iter().zip(&widths).enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        match h {
            Header::Plain(s, left) => pad(&mut out, s, *w, *left),
            Header::Suffixed(name, sfx) => {
                pad(&mut out, name, w.saturating_sub(sfx.len()), true);
                out.push_str(sfx);
            }
        }
    }
    out.push('\n');
    out.push_str(&dashes);
    for r in rows {
        for (i, ((s, left), w)) in r.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            pad(&mut out, s, *w, *left);
        }
        out.push('\n');
    }
    if trailer {
        out.push_str(&dashes);
    }
    out
}

fn render_csv(headers: &[String], rows: &[Vec<Cell>]) -> String {
    let mut out = headers.join(",") + "\n";
    for r in rows {
        let cells: Vec<&str> = r.iter().map(|(s, _)| s.as_str()).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn cell(row: &Row, stat: Stat) -> Cell {
    match stat {
        Stat::FileName => (row.file.clone(), true),
        Stat::ProgName => (row.prog.clone(), true),
        Stat::Verdict => (verdict(row.stats[0] != 0).into(), true),
        s => (row.get(s).to_string(), false),
    }
}

/// Rows as veristat's table (header, dashes, rows, dashes; the caller adds the `Done.` line)
/// or CSV (header of the first names, rows).
pub fn results(rows: &[&Row], output: &[SpecItem], csv: bool) -> String {
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| output.iter().map(|s| cell(r, s.stat)).collect())
        .collect();
    if csv {
        let names: Vec<String> = output
            .iter()
            .map(|s| s.stat.names()[0].to_string())
            .collect();
        return render_csv(&names, &cells);
    }
    let headers: Vec<Header> = output
        .iter()
        .map(|s| Header::Plain(s.stat.header().into(), s.stat.is_textual()))
        .collect();
    render_table(&headers, &cells, true)
}

/// Joined rows as veristat's comparison table or CSV: `NAME (A)`, `NAME (B)`, `NAME (DIFF)`
/// per statistic (CSV: `NAME_base`, `NAME_comp`, `NAME_diff`); file and program once.
pub fn comparison(joins: &[&Join], output: &[SpecItem], csv: bool) -> String {
    const TABLE_SFX: [&str; 3] = [" (A)", " (B)", " (DIFF)"];
    const CSV_SFX: [&str; 3] = ["_base", "_comp", "_diff"];
    let cells: Vec<Vec<Cell>> = joins
        .iter()
        .map(|j| output.iter().flat_map(|s| comp_cells(j, s.stat)).collect())
        .collect();
    let n = |s: &SpecItem| if s.stat.is_key() { 1 } else { 3 };
    if csv {
        let names: Vec<String> = output
            .iter()
            .flat_map(|s| {
                let name = s.stat.names()[0];
                (0..n(s)).map(move |k| match s.stat.is_key() {
                    true => name.to_string(),
                    false => format!("{name}{}", CSV_SFX[k]),
                })
            })
            .collect();
        return render_csv(&names, &cells);
    }
    let headers: Vec<Header> = output
        .iter()
        .flat_map(|s| {
            (0..n(s)).map(move |k| match s.stat.is_key() {
                true => Header::Plain(s.stat.header().into(), true),
                false => Header::Suffixed(s.stat.header(), TABLE_SFX[k]),
            })
        })
        .collect();
    // veristat prints no closing dashes (and no `Done.` line) in comparison mode.
    render_table(&headers, &cells, false)
}

/// veristat's verdict words.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "success" } else { "failure" }
}

/// Joins two result sets on file and program (rows of one side only have `None` on the
/// other).
pub fn join(mut a: Vec<Row>, mut b: Vec<Row>) -> Vec<Join> {
    let key = |r: &Row| (r.file.clone(), r.prog.clone());
    a.sort_by_key(key);
    b.sort_by_key(key);
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let mut out = Vec::new();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => key(x).cmp(&key(y)),
        };
        let (ra, rb) = match order {
            std::cmp::Ordering::Equal => (a.next(), b.next()),
            std::cmp::Ordering::Less => (a.next(), None),
            std::cmp::Ordering::Greater => (None, b.next()),
        };
        let Some(named) = ra.as_ref().or(rb.as_ref()) else {
            break;
        };
        out.push(Join {
            file: named.file.clone(),
            prog: named.prog.clone(),
            a: ra,
            b: rb,
        });
    }
    out
}

/// The base, comparison and difference texts of one joined statistic (veristat's
/// `output_comp_stats`); key statistics have only the first.
fn comp_cells(j: &Join, stat: Stat) -> Vec<Cell> {
    match stat {
        Stat::FileName => return vec![(j.file.clone(), true)],
        Stat::ProgName => return vec![(j.prog.clone(), true)],
        _ => {}
    }
    let na = || "N/A".to_string();
    if stat == Stat::Verdict {
        let v = |r: &Option<Row>| r.as_ref().map_or_else(na, |r| cell(r, stat).0);
        let diff = match (&j.a, &j.b) {
            (Some(a), Some(b)) if a.stats[0] == b.stats[0] => "MATCH".to_string(),
            (Some(_), Some(_)) => "MISMATCH".to_string(),
            _ => na(),
        };
        return vec![(v(&j.a), true), (v(&j.b), true), (diff, true)];
    }
    let v = |r: &Option<Row>| r.as_ref().map_or_else(na, |r| r.get(stat).to_string());
    let diff = match (&j.a, &j.b) {
        (Some(a), Some(b)) => {
            let (x, y) = (a.get(stat), b.get(stat));
            format!("{:+} ({:+.2}%)", y.saturating_sub(x), pct(x, y))
        }
        _ => na(),
    };
    vec![(v(&j.a), false), (v(&j.b), false), (diff, false)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(file: &str, prog: &str, stats: [i64; 7]) -> Row {
        Row {
            file: file.into(),
            prog: prog.into(),
            stats,
        }
    }

    #[test]
    fn table_layout() {
        let headers = [
            Header::Plain("File".into(), true),
            Header::Plain("Insns".into(), false),
        ];
        let rows = vec![
            vec![("a.bpf.o".into(), true), ("7".into(), false)],
            vec![("b.o".into(), true), ("123456".into(), false)],
        ];
        assert_eq!(
            render_table(&headers, &rows, true),
            "File      Insns\n-------  ------\na.bpf.o       7\nb.o      123456\n-------  ------\n"
        );
        let h = [Header::Suffixed("Insns", " (DIFF)")];
        let r = vec![vec![("+123 (+10.00%)".into(), false)]];
        assert_eq!(
            render_table(&h, &r, false),
            "Insns   (DIFF)\n--------------\n+123 (+10.00%)\n"
        );
    }

    #[test]
    fn joins_and_diffs() {
        let a = vec![
            row("f", "p", [1, 10, 100, 5, 5, 1, 0]),
            row("f", "only_a", [1, 1, 1, 1, 1, 1, 0]),
        ];
        let b = vec![
            row("f", "p", [0, 12, 90, 5, 5, 1, 0]),
            row("g", "only_b", [1, 1, 1, 1, 1, 1, 0]),
        ];
        let j = join(a, b);
        let names: Vec<(&str, bool, bool)> = j
            .iter()
            .map(|j| (j.prog.as_str(), j.a.is_some(), j.b.is_some()))
            .collect();
        assert_eq!(
            names,
            [
                ("only_a", true, false),
                ("p", true, true),
                ("only_b", false, true)
            ]
        );
        let c = comp_cells(&j[1], Stat::TotalInsns);
        assert_eq!(c[2].0, "-10 (-10.00%)");
        assert_eq!(comp_cells(&j[1], Stat::Verdict)[2].0, "MISMATCH");
        assert_eq!(comp_cells(&j[0], Stat::Duration)[1].0, "N/A");
        assert_eq!(comp_cells(&j[0], Stat::Duration)[2].0, "N/A");
        assert_eq!(comp_cells(&j[1], Stat::PeakStates)[2].0, "+0 (+0.00%)");
    }
}

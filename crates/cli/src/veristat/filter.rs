//! veristat's filters (`-f`): `[!]GLOB`, `[!]FILE_GLOB/PROG_GLOB`, `[!]STAT<op>VALUE` and
//! `@FILE`, with veristat's matching rules for files, programs, rows and joined rows.

use super::spec::{Join, JoinValue, Row, Stat, Variant, parse_stat_id_var};

/// A comparison operator of a stat filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==` or `=`.
    Eq,
    /// `!=` or `<>`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// Operators in matching order: longer ones before their prefixes.
const OPERATORS: [(&str, Op); 8] = [
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<>", Op::Ne),
    ("<=", Op::Le),
    ("<", Op::Lt),
    (">=", Op::Ge),
    (">", Op::Gt),
    ("=", Op::Eq),
];

/// One `-f` expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `GLOB` (file or program), `FILE_GLOB/PROG_GLOB`, `FILE_GLOB/`, `/PROG_GLOB`.
    Name {
        /// Matches the file or the program name.
        any: Option<String>,
        /// Matches the file name.
        file: Option<String>,
        /// Matches the program name.
        prog: Option<String>,
    },
    /// `STAT OP VALUE`.
    Stat {
        /// The statistic.
        stat: Stat,
        /// Its variant (comparison mode).
        variant: Variant,
        /// The operator.
        op: Op,
        /// The value (verdicts: success/true/match = 1, failure/false/mismatch = 0).
        value: i64,
        /// Compare the absolute value (`|stat|`).
        abs: bool,
    },
}

/// veristat's glob: `*` is the only wildcard.
pub fn glob_matches(s: &str, pat: &str) -> bool {
    fn go(s: &[u8], p: &[u8]) -> bool {
        let mut i = 0;
        while i < s.len() && i < p.len() && p[i] != b'*' {
            if s[i] != p[i] {
                return false;
            }
            i += 1;
        }
        let (s, mut p) = (&s[i..], &p[i..]);
        if p.first() == Some(&b'*') {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            if p.is_empty() {
                return true;
            }
            return (0..s.len()).any(|k| go(&s[k..], p));
        }
        s.is_empty() && p.is_empty()
    }
    go(s.as_bytes(), pat.as_bytes())
}

fn verdict_word(v: &str) -> Option<i64> {
    let l = v.to_ascii_lowercase();
    match l.as_str() {
        "true" | "t" | "success" | "succ" | "s" | "match" | "m" => Some(1),
        "false" | "f" | "failure" | "fail" | "mismatch" | "mis" => Some(0),
        _ => None,
    }
}

/// Parses one filter expression (without its leading `!`).
pub fn parse_filter(s: &str) -> Result<Filter, String> {
    for (op_str, op) in OPERATORS {
        let Some(at) = s.find(op_str) else {
            continue;
        };
        let (stat, variant, abs) = parse_stat_id_var(&s[..at])
            .ok_or_else(|| format!("Unrecognized stat name in '{s}'!"))?;
        if stat.is_key() {
            return Err(format!("Non-integer stat is specified in '{s}'!"));
        }
        let v = &s[at + op_str.len()..];
        let value = match verdict_word(v) {
            Some(x) => x,
            None => v
                .trim_start()
                .parse::<i64>()
                .map_err(|_| format!("Invalid integer value in '{s}'!"))?,
        };
        return Ok(Filter::Stat {
            stat,
            variant,
            op,
            value,
            abs,
        });
    }
    let f = match s.split_once('/') {
        None => Filter::Name {
            any: Some(s.to_string()),
            file: None,
            prog: None,
        },
        Some((file, prog)) => Filter::Name {
            any: None,
            file: (!file.is_empty()).then(|| file.to_string()),
            prog: (!prog.is_empty()).then(|| prog.to_string()),
        },
    };
    match &f {
        Filter::Name {
            any: None,
            file: None,
            prog: None,
        } => Err(format!("Invalid filter: '{s}'")),
        Filter::Name { any: Some(a), .. } if a.is_empty() => Err(format!("Invalid filter: '{s}'")),
        _ => Ok(f),
    }
}

/// Allow and deny filters (`-f EXPR`, `-f !EXPR`, `-f @FILE`).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Allow filters: a row passes when one of them (of its kind) matches.
    pub allow: Vec<Filter>,
    /// Deny filters: a row is dropped when one of them matches.
    pub deny: Vec<Filter>,
}

impl Filters {
    /// Adds one `-f` argument.
    pub fn add(&mut self, arg: &str) -> Result<(), String> {
        if let Some(path) = arg.strip_prefix('@') {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "Failed to open filters in '{path}': {}",
                    -e.raw_os_error().unwrap_or(libc::EINVAL)
                )
            })?;
            for line in text.lines().map(str::trim_start) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                self.add_one(line)?;
            }
            return Ok(());
        }
        self.add_one(arg)
    }

    fn add_one(&mut self, s: &str) -> Result<(), String> {
        match s.strip_prefix('!') {
            Some(rest) => self.deny.push(parse_filter(rest)?),
            None => self.allow.push(parse_filter(s)?),
        }
        Ok(())
    }

    /// Whether the file (`prog` = None: before its programs are known) or one of its programs
    /// passes the name filters.
    pub fn process(&self, file: &str, prog: Option<&str>) -> bool {
        let matches = |f: &Filter| match f {
            Filter::Name {
                any,
                file: fg,
                prog: pg,
            } => {
                if let Some(a) = any {
                    return glob_matches(file, a) || prog.is_some_and(|p| glob_matches(p, a));
                }
                match (fg, pg) {
                    (Some(fg), Some(pg)) => {
                        prog.is_some_and(|p| glob_matches(p, pg)) && glob_matches(file, fg)
                    }
                    (Some(fg), None) => glob_matches(file, fg),
                    (None, Some(pg)) => prog.is_some_and(|p| glob_matches(p, pg)),
                    (None, None) => false,
                }
            }
            Filter::Stat { .. } => false,
        };
        // Without a program name yet, a filter lets the file through unless its file glob
        // rejects it.
        let may_match = |f: &Filter| match f {
            Filter::Name { file: Some(fg), .. } => glob_matches(file, fg),
            Filter::Name { any, prog, .. } => any.is_some() || prog.is_some(),
            Filter::Stat { .. } => false,
        };
        if self.deny.iter().any(&matches) {
            return false;
        }
        let mut allow = 0;
        for f in self
            .allow
            .iter()
            .filter(|f| matches!(f, Filter::Name { .. }))
        {
            allow += 1;
            let ok = if prog.is_some() {
                matches(f)
            } else {
                may_match(f)
            };
            if ok {
                return true;
            }
        }
        allow == 0
    }

    fn stat_pass(&self, test: impl Fn(Stat, Variant, Op, i64, bool) -> bool) -> bool {
        let stat = |f: &Filter| match *f {
            Filter::Stat {
                stat,
                variant,
                op,
                value,
                abs,
            } => Some(test(stat, variant, op, value, abs)),
            Filter::Name { .. } => None,
        };
        if self.deny.iter().any(|f| stat(f) == Some(true)) {
            return false;
        }
        let allowed: Vec<bool> = self.allow.iter().filter_map(stat).collect();
        allowed.is_empty() || allowed.contains(&true)
    }

    /// Whether a row passes the stat filters.
    pub fn output_row(&self, row: &Row) -> bool {
        self.stat_pass(|stat, _, op, value, abs| {
            let v = row.get(stat);
            let v = if abs { v.saturating_abs() } else { v };
            match op {
                Op::Eq => v == value,
                Op::Ne => v != value,
                Op::Lt => v < value,
                Op::Le => v <= value,
                Op::Gt => v > value,
                Op::Ge => v >= value,
            }
        })
    }

    /// Whether a joined row passes the stat filters (with veristat's 1e-9 tolerance).
    pub fn output_join(&self, j: &Join) -> bool {
        const EPS: f64 = 1e-9;
        self.stat_pass(|stat, variant, op, value, abs| {
            let JoinValue::Num(v) = j.value(stat, variant) else {
                return false;
            };
            let v = if abs { v.abs() } else { v };
            let x = value as f64;
            match op {
                Op::Eq => v > x - EPS && v < x + EPS,
                Op::Ne => v < x - EPS || v > x + EPS,
                Op::Lt => v < x - EPS,
                Op::Le => v <= x + EPS,
                Op::Gt => v > x + EPS,
                Op::Ge => v >= x - EPS,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("bounded_loop.bpf.o", "bounded*"));
        assert!(glob_matches("bounded_loop.bpf.o", "*loop*"));
        assert!(glob_matches("abc", "a*c"));
        assert!(glob_matches("abc", "abc"));
        assert!(!glob_matches("abc", "ab"));
        assert!(!glob_matches("abc", "*d"));
        assert!(glob_matches("", "*"));
    }

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("insns>=100").unwrap(),
            Filter::Stat {
                stat: Stat::TotalInsns,
                variant: Variant::B,
                op: Op::Ge,
                value: 100,
                abs: false
            }
        );
        assert!(matches!(
            parse_filter("verdict=FAILURE").unwrap(),
            Filter::Stat {
                op: Op::Eq,
                value: 0,
                ..
            }
        ));
        assert!(matches!(
            parse_filter("states<>3").unwrap(),
            Filter::Stat { op: Op::Ne, .. }
        ));
        assert_eq!(
            parse_filter("file=x").unwrap_err(),
            "Non-integer stat is specified in 'file=x'!"
        );
        assert_eq!(
            parse_filter("nope>1").unwrap_err(),
            "Unrecognized stat name in 'nope>1'!"
        );
        assert_eq!(
            parse_filter("insns>x").unwrap_err(),
            "Invalid integer value in 'insns>x'!"
        );
        assert_eq!(parse_filter("/").unwrap_err(), "Invalid filter: '/'");
        assert_eq!(parse_filter("").unwrap_err(), "Invalid filter: ''");

        let mut f = Filters::default();
        f.add("aom*").unwrap();
        f.add("!*/xdp_count").unwrap();
        assert!(f.process("aom_plain.bpf.o", None));
        assert!(f.process("x.o", None), "a glob may still match a program");
        assert!(f.process("aom_plain.bpf.o", Some("xdp_two_level")));
        assert!(!f.process("aom_plain.bpf.o", Some("xdp_count")));
        assert!(!f.process("x.o", Some("p")));
        let mut f = Filters::default();
        f.add("bounded*/").unwrap();
        assert!(!f.process("x.o", None));
        assert!(f.process("bounded_loop.bpf.o", Some("any")));

        let mut f = Filters::default();
        f.add("insns>10").unwrap();
        f.add("!verdict=failure").unwrap();
        let mut r = Row {
            stats: [1, 0, 11, 0, 0, 0, 0],
            ..Row::default()
        };
        assert!(f.output_row(&r));
        r.stats[0] = 0;
        assert!(!f.output_row(&r));
        r.stats = [1, 0, 10, 0, 0, 0, 0];
        assert!(!f.output_row(&r));
    }

    #[test]
    fn joined_rows() {
        let a = Row {
            file: "f".into(),
            prog: "p".into(),
            stats: [1, 10, 200, 5, 5, 1, 0],
        };
        let mut b = a.clone();
        b.stats[2] = 150;
        let j = Join {
            file: "f".into(),
            prog: "p".into(),
            a: Some(a),
            b: Some(b),
        };
        let mut f = Filters::default();
        f.add("insns_diff<0").unwrap();
        assert!(f.output_join(&j));
        let mut f = Filters::default();
        f.add("|insns_diff|<10").unwrap();
        assert!(!f.output_join(&j));
        let mut f = Filters::default();
        f.add("verdict_diff=match").unwrap();
        assert!(f.output_join(&j));
        let one_side = Join { b: None, ..j };
        assert!(!f.output_join(&one_side), "a missing side matches no value");
    }
}

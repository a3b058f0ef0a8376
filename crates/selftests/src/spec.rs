//! A selftest program's expectations, read from the BTF decl tags its `bpf_misc.h` macros
//! leave on the program's `FUNC` (`comment:test_expect_failure`, `comment:test_expect_msg=N=…`,
//! `comment:test_retval=…`, …), with the semantics of the kernel's
//! `tools/testing/selftests/bpf/test_loader.c` (`parse_test_spec`, `validate_msgs`).

use kbpf_btf::{Btf, BtfKind};
use regex::Regex;

/// The privileged mode (`__success`, `__failure`, `__msg`, …).
pub const PRIV: u8 = 1;
/// The unprivileged mode (`__success_unpriv`, `__msg_unpriv`, …).
pub const UNPRIV: u8 = 2;

/// test_loader's `ARCH_X86_64` (the only architecture kbpf runs on).
pub const ARCH_X86_64: u32 = 0x2;

/// `BPF_F_STRICT_ALIGNMENT`.
pub const BPF_F_STRICT_ALIGNMENT: u32 = 1 << 0;
/// `BPF_F_ANY_ALIGNMENT`.
pub const BPF_F_ANY_ALIGNMENT: u32 = 1 << 1;
/// `BPF_F_TEST_RND_HI32`.
pub const BPF_F_TEST_RND_HI32: u32 = 1 << 2;
/// `BPF_F_TEST_STATE_FREQ`.
pub const BPF_F_TEST_STATE_FREQ: u32 = 1 << 3;
/// `BPF_F_SLEEPABLE`.
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`.
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
/// `BPF_F_TEST_REG_INVARIANTS`.
pub const BPF_F_TEST_REG_INVARIANTS: u32 = 1 << 7;

/// What `testing_prog_flags()` gives on a kernel that knows both test flags (every kernel
/// since 6.8): every selftest program is loaded with these.
pub const TESTING_PROG_FLAGS: u32 = BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS;

/// test_loader's `POINTER_VALUE`: a `__retval` that matches any return value.
pub const POINTER_VALUE: i32 = 0xcafe4a11_u32 as i32;
/// test_loader's `TEST_DATA_LEN`.
pub const TEST_DATA_LEN: i32 = 64;

/// One expected message (`__msg`, `__xlated`, `__jited`): a substring, or a pattern with
/// `{{…}}` regular expressions.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The text as written in the test.
    pub text: String,
    /// The compiled pattern when the text has `{{`.
    pub regex: Option<Regex>,
    /// Must match on the line after the previous match (`__xlated`/`__jited`).
    pub on_next_line: bool,
}

impl Pattern {
    fn new(text: &str, on_next_line: bool) -> Result<Pattern, String> {
        let regex = if text.contains("{{") {
            Some(compile_regex(text)?)
        } else {
            None
        };
        Ok(Pattern {
            text: text.to_owned(),
            regex,
            on_next_line,
        })
    }
}

/// test_loader's `compile_regex`: verbatim text with `{{…}}` regular expressions, compiled
/// as a POSIX extended regex with `REG_NEWLINE` (here: Rust's regex, multi-line).
fn compile_regex(pattern: &str) -> Result<Regex, String> {
    let mut out = String::from("(?m)");
    let mut rest = pattern;
    let mut in_regex = false;
    while !rest.is_empty() {
        if !in_regex && rest.starts_with("{{") {
            in_regex = true;
            rest = &rest[2..];
            continue;
        }
        if in_regex && rest.starts_with("}}") {
            in_regex = false;
            rest = &rest[2..];
            continue;
        }
        let c = rest.chars().next().unwrap();
        if !in_regex && ".[]\\()*+?{}|^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if in_regex {
        return Err(format!(
            "regexp has open '{{{{' but no closing '}}}}': '{pattern}'"
        ));
    }
    Regex::new(&out).map_err(|e| format!("regexp '{pattern}': {e}"))
}

/// One mode's expectations (test_loader's `struct test_subspec`).
#[derive(Clone, Debug, Default)]
pub struct Subspec {
    /// The test's name (`__description`, else the program name; ` @unpriv` for unpriv).
    pub name: String,
    /// `__failure`: the load must fail.
    pub expect_failure: bool,
    /// `__msg`: messages expected in the verifier log, in order.
    pub msgs: Vec<Pattern>,
    /// `__xlated`: lines expected in the translated program.
    pub xlated: Vec<Pattern>,
    /// `__jited`: lines expected in the JIT's disassembly (x86-64 only).
    pub jited: Vec<Pattern>,
    /// `__retval`: the test run's expected return value.
    pub retval: Option<i32>,
}

/// A program's test specification (test_loader's `struct test_spec`).
#[derive(Clone, Debug, Default)]
pub struct TestSpec {
    /// The program (function) name.
    pub prog_name: String,
    /// Privileged expectations.
    pub privileged: Subspec,
    /// Unprivileged expectations.
    pub unprivileged: Subspec,
    /// `__btf_path`.
    pub btf_path: Option<String>,
    /// `__log_level` (0 when not given).
    pub log_level: i32,
    /// `testing_prog_flags()` with the `__flag`s applied.
    pub prog_flags: u32,
    /// [`PRIV`] | [`UNPRIV`]: the modes the test runs in.
    pub mode_mask: u8,
    /// `__arch_*` mask (`u32::MAX`: every architecture).
    pub arch_mask: u32,
    /// `__auxiliary`: loaded with every test of its mode, not a test itself.
    pub auxiliary: bool,
}

impl TestSpec {
    /// Runs in privileged mode on x86-64 and is a test (not an auxiliary program).
    pub fn is_priv_test(&self) -> bool {
        !self.auxiliary && self.mode_mask & PRIV != 0 && self.arch_mask & ARCH_X86_64 != 0
    }

    /// Runs in unprivileged mode on x86-64 and is a test.
    pub fn is_unpriv_test(&self) -> bool {
        !self.auxiliary && self.mode_mask & UNPRIV != 0 && self.arch_mask & ARCH_X86_64 != 0
    }

    /// test_loader's `should_do_test_run` for the privileged mode: a `__retval` on a test
    /// expected to load (x86-64 has efficient unaligned access, so alignment never stops it).
    pub fn should_run(&self) -> bool {
        self.privileged.retval.is_some() && !self.privileged.expect_failure
    }

    /// Whether `retval` is what the privileged test expects (`POINTER_VALUE` matches any).
    pub fn retval_matches(&self, retval: i32) -> bool {
        match self.privileged.retval {
            Some(POINTER_VALUE) | None => true,
            Some(r) => r == retval,
        }
    }

    /// The log level test_loader's loader ends up with for a privileged run that must
    /// produce a log (at least 1; libbpf retries a failed level-0 load at level 1).
    pub fn effective_log_level(&self) -> i32 {
        if self.log_level & 3 == 0 {
            self.log_level | 1
        } else {
            self.log_level
        }
    }
}

/// `<pfx>N=<msg>` → `<msg>` (test_loader's `skip_dynamic_pfx`).
fn skip_dynamic_pfx<'a>(s: &'a str, pfx: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(pfx)?;
    let eq = rest.find('=')?;
    Some(&rest[eq + 1..])
}

fn parse_int(s: &str) -> Result<i32, String> {
    let v = if let Some(hex) = s.strip_prefix("0x") {
        i64::from_str_radix(hex, 16)
    } else {
        s.parse::<i64>()
    };
    v.map(|v| v as i32)
        .map_err(|_| format!("failed to parse int from '{s}'"))
}

fn parse_retval(s: &str) -> Result<i32, String> {
    match s {
        "INT_MIN" => Ok(i32::MIN),
        "POINTER_VALUE" => Ok(POINTER_VALUE),
        "TEST_DATA_LEN" => Ok(TEST_DATA_LEN),
        _ => parse_int(s),
    }
}

/// The decl tags on `prog_name`'s `FUNC` (component -1), in BTF id order.
pub fn decl_tags<'a>(btf: &'a Btf, prog_name: &str) -> Option<Vec<&'a str>> {
    let func_id = btf
        .types()
        .iter()
        .position(|t| t.name == prog_name && matches!(t.kind, BtfKind::Func { .. }))?
        as u32;
    Some(
        btf.types()
            .iter()
            .filter_map(|t| match t.kind {
                BtfKind::DeclTag {
                    ty,
                    component_idx: -1,
                } if ty == func_id => Some(t.name.as_str()),
                _ => None,
            })
            .collect(),
    )
}

/// test_loader's `parse_test_spec` for the program `prog_name` of an object whose BTF is
/// `btf`: `Err` where test_loader fails the spec (no `FUNC`, a bad value).
pub fn parse(btf: &Btf, prog_name: &str) -> Result<TestSpec, String> {
    let tags = decl_tags(btf, prog_name)
        .ok_or_else(|| format!("failed to find FUNC BTF type for '{prog_name}'"))?;
    let mut spec = TestSpec {
        prog_name: prog_name.to_owned(),
        prog_flags: TESTING_PROG_FLAGS,
        ..Default::default()
    };
    let mut description = None;
    let (mut has_unpriv_result, mut has_unpriv_retval) = (false, false);
    let (mut xlated_next, mut unpriv_xlated_next) = (true, true);
    let (mut jit_next, mut unpriv_jit_next) = (true, true);
    let mut collect_jit = false;
    let mut arch_mask = 0u32;
    for s in tags {
        if let Some(d) = s.strip_prefix("comment:test_description=") {
            description = Some(d.to_owned());
        } else if s == "comment:test_expect_failure" {
            spec.privileged.expect_failure = true;
            spec.mode_mask |= PRIV;
        } else if s == "comment:test_expect_success" {
            spec.privileged.expect_failure = false;
            spec.mode_mask |= PRIV;
        } else if s == "comment:test_expect_failure_unpriv" {
            spec.unprivileged.expect_failure = true;
            spec.mode_mask |= UNPRIV;
            has_unpriv_result = true;
        } else if s == "comment:test_expect_success_unpriv" {
            spec.unprivileged.expect_failure = false;
            spec.mode_mask |= UNPRIV;
            has_unpriv_result = true;
        } else if s == "comment:test_auxiliary" {
            spec.auxiliary = true;
            spec.mode_mask |= PRIV;
        } else if s == "comment:test_auxiliary_unpriv" {
            spec.auxiliary = true;
            spec.mode_mask |= UNPRIV;
        } else if let Some(m) = skip_dynamic_pfx(s, "comment:test_expect_msg=") {
            spec.privileged.msgs.push(Pattern::new(m, false)?);
            spec.mode_mask |= PRIV;
        } else if let Some(m) = skip_dynamic_pfx(s, "comment:test_expect_msg_unpriv=") {
            spec.unprivileged.msgs.push(Pattern::new(m, false)?);
            spec.mode_mask |= UNPRIV;
        } else if let Some(m) = skip_dynamic_pfx(s, "comment:test_jited=") {
            if arch_mask == 0 {
                return Err("__jited used before __arch_*".into());
            }
            if collect_jit {
                push_disasm(m, &mut jit_next, &mut spec.privileged.jited)?;
                spec.mode_mask |= PRIV;
            }
        } else if let Some(m) = skip_dynamic_pfx(s, "comment:test_jited_unpriv=") {
            if arch_mask == 0 {
                return Err("__unpriv_jited used before __arch_*".into());
            }
            if collect_jit {
                push_disasm(m, &mut unpriv_jit_next, &mut spec.unprivileged.jited)?;
                spec.mode_mask |= UNPRIV;
            }
        } else if let Some(m) = skip_dynamic_pfx(s, "comment:test_expect_xlated=") {
            push_disasm(m, &mut xlated_next, &mut spec.privileged.xlated)?;
            spec.mode_mask |= PRIV;
        } else if let Some(m) = skip_dynamic_pfx(s, "comment:test_expect_xlated_unpriv=") {
            push_disasm(m, &mut unpriv_xlated_next, &mut spec.unprivileged.xlated)?;
            spec.mode_mask |= UNPRIV;
        } else if let Some(v) = s.strip_prefix("comment:test_retval=") {
            spec.privileged.retval = Some(parse_retval(v)?);
            spec.mode_mask |= PRIV;
        } else if let Some(v) = s.strip_prefix("comment:test_retval_unpriv=") {
            spec.unprivileged.retval = Some(parse_retval(v)?);
            spec.mode_mask |= UNPRIV;
            has_unpriv_retval = true;
        } else if let Some(v) = s.strip_prefix("comment:test_log_level=") {
            spec.log_level = parse_int(v)?;
        } else if let Some(v) = s.strip_prefix("comment:test_prog_flags=") {
            let (clear, v) = match v.strip_prefix('!') {
                Some(v) => (true, v),
                None => (false, v),
            };
            let flag = match v {
                "BPF_F_STRICT_ALIGNMENT" => BPF_F_STRICT_ALIGNMENT,
                "BPF_F_ANY_ALIGNMENT" => BPF_F_ANY_ALIGNMENT,
                "BPF_F_TEST_RND_HI32" => BPF_F_TEST_RND_HI32,
                "BPF_F_TEST_STATE_FREQ" => BPF_F_TEST_STATE_FREQ,
                "BPF_F_SLEEPABLE" => BPF_F_SLEEPABLE,
                "BPF_F_XDP_HAS_FRAGS" => BPF_F_XDP_HAS_FRAGS,
                "BPF_F_TEST_REG_INVARIANTS" => BPF_F_TEST_REG_INVARIANTS,
                other => parse_int(other)? as u32,
            };
            if clear {
                spec.prog_flags &= !flag;
            } else {
                spec.prog_flags |= flag;
            }
        } else if let Some(v) = s.strip_prefix("comment:test_arch=") {
            let arch = match v {
                "X86_64" => ARCH_X86_64,
                "ARM64" => 0x4,
                "RISCV64" => 0x8,
                _ => return Err(format!("bad arch spec: '{v}'")),
            };
            arch_mask |= arch;
            collect_jit = arch == ARCH_X86_64;
            jit_next = true;
            unpriv_jit_next = true;
        } else if let Some(v) = s.strip_prefix("comment:test_btf_path=") {
            spec.btf_path = Some(v.to_owned());
        }
    }
    spec.arch_mask = if arch_mask == 0 { u32::MAX } else { arch_mask };
    if spec.mode_mask == 0 {
        spec.mode_mask = PRIV;
    }
    let description = description.unwrap_or_else(|| prog_name.to_owned());
    if spec.mode_mask & PRIV != 0 {
        spec.privileged.name = description.clone();
    }
    if spec.mode_mask & UNPRIV != 0 {
        spec.unprivileged.name = format!("{description} @unpriv");
    }
    if !has_unpriv_result {
        spec.unprivileged.expect_failure = spec.privileged.expect_failure;
    }
    if !has_unpriv_retval {
        spec.unprivileged.retval = spec.privileged.retval;
    }
    if spec.unprivileged.msgs.is_empty() {
        spec.unprivileged.msgs = spec.privileged.msgs.clone();
    }
    if spec.unprivileged.xlated.is_empty() {
        spec.unprivileged.xlated = spec.privileged.xlated.clone();
    }
    if spec.unprivileged.jited.is_empty() {
        spec.unprivileged.jited = spec.privileged.jited.clone();
    }
    Ok(spec)
}

fn push_disasm(text: &str, on_next_line: &mut bool, out: &mut Vec<Pattern>) -> Result<(), String> {
    if text == "..." {
        *on_next_line = false;
        return Ok(());
    }
    out.push(Pattern::new(text, *on_next_line)?);
    *on_next_line = true;
    Ok(())
}

/// test_loader's `validate_msgs`: every pattern found in `log` in order, each after the
/// previous match (and on the next line where the pattern says so). `Err` names the first
/// pattern not found.
pub fn validate_msgs(log: &str, patterns: &[Pattern]) -> Result<(), String> {
    let mut pos = 0usize;
    let mut prev_match_line: i64 = -1;
    let mut match_line: i64 = 0;
    let mut counted_to = 0usize;
    for p in patterns {
        let found = match &p.regex {
            None => log[pos..]
                .find(&p.text)
                .map(|i| (pos + i, pos + i + p.text.len())),
            Some(re) => re
                .find(&log[pos..])
                .map(|m| (pos + m.start(), pos + m.end())),
        };
        let Some((start, end)) = found else {
            return Err(format!("expected '{}'", p.text));
        };
        match_line += log[counted_to..start].matches('\n').count() as i64;
        counted_to = start;
        if p.on_next_line && prev_match_line >= 0 && prev_match_line + 1 != match_line {
            return Err(format!(
                "'{}' matched at line {match_line}, expected at line {}",
                p.text,
                prev_match_line + 1
            ));
        }
        pos = end;
        prev_match_line = match_line;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(texts: &[&str]) -> Vec<Pattern> {
        texts
            .iter()
            .map(|t| Pattern::new(t, false).unwrap())
            .collect()
    }

    #[test]
    fn messages_match_in_order_as_test_loader_does() {
        let log = "0: (b7) r0 = 1\nR1 invalid mem access 'scalar'\nprocessed 2 insns\n";
        assert!(validate_msgs(log, &pats(&["r0 = 1", "invalid mem access"])).is_ok());
        assert!(validate_msgs(log, &pats(&["invalid mem access", "r0 = 1"])).is_err());
        assert!(validate_msgs(log, &pats(&["R{{[0-9]}} invalid mem access 'scalar'"])).is_ok());
        assert!(validate_msgs(log, &pats(&["R{{[a-z]}} invalid"])).is_err());
        // Verbatim parts are not regexes: '.' and '(' are literal.
        assert!(validate_msgs(log, &pats(&["(b7) r0 = {{[0-9]+}}"])).is_ok());
        assert!(validate_msgs(log, &pats(&["(b7).r0"])).is_err());
    }

    #[test]
    fn next_line_patterns_must_be_consecutive() {
        let log = "a\nb\nc\n";
        let mut v = vec![
            Pattern::new("a", true).unwrap(),
            Pattern::new("b", true).unwrap(),
        ];
        assert!(validate_msgs(log, &v).is_ok());
        v[1] = Pattern::new("c", true).unwrap();
        assert!(validate_msgs(log, &v).is_err());
    }
}

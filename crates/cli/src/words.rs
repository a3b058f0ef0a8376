//! bpftool's positional keyword grammar, shared by the command line and `batch file`.
//!
//! bpftool does not use an option parser for its commands: each command walks its word list,
//! accepting any *prefix* of a keyword (`map sh` is `map show`, `ke` is `key`), and reports
//! errors with fixed messages (`'create' needs at least 7 arguments, 0 found`). This module
//! holds those pieces, written from bpftool's observed behaviour (bpftool v7.1):
//!
//! - [`is_prefix`]: the keyword match;
//! - [`Words`]: a cursor over a command's words with bpftool's `REQ_ARGS` check;
//! - [`split_line`]: how `batch file` splits a line into words (quotes, no escapes);
//! - [`parse_data`]: `DATA := [hex] BYTES`, each byte as C's `strtoul` reads it.

use std::fmt;

/// bpftool's keyword match: `word` selects `keyword` when it is a non-empty prefix of it
/// (`s` → `show`). An empty word matches nothing.
pub fn is_prefix(word: &str, keyword: &str) -> bool {
    !word.is_empty() && keyword.starts_with(word)
}

/// A grammar error: bpftool's message (printed as `Error: MESSAGE`) and exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrammarError {
    /// The message without the `Error: ` prefix.
    pub message: String,
    /// bpftool's return value (negative; the process exit status is its low byte).
    pub status: i32,
}

impl GrammarError {
    /// An error with bpftool's usual status −1 (exit status 255).
    pub fn new(message: impl Into<String>) -> GrammarError {
        GrammarError {
            message: message.into(),
            status: -1,
        }
    }
}

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GrammarError {}

/// A cursor over the words of one command. `prev` is the word before the cursor, which
/// bpftool names in its "needs at least N arguments" message.
#[derive(Clone, Debug)]
pub struct Words<'a> {
    words: &'a [String],
    pos: usize,
    prev: &'a str,
}

impl<'a> Words<'a> {
    /// A cursor at the start of `words`; `prev` is the word that selected them (the command).
    pub fn new(words: &'a [String], prev: &'a str) -> Words<'a> {
        Words {
            words,
            pos: 0,
            prev,
        }
    }

    /// Words left.
    pub fn len(&self) -> usize {
        self.words.len() - self.pos
    }

    /// No words left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next word, without consuming it.
    pub fn peek(&self) -> Option<&'a str> {
        self.words.get(self.pos).map(String::as_str)
    }

    /// The remaining words.
    pub fn rest(&self) -> &'a [String] {
        &self.words[self.pos..]
    }

    /// Consumes and returns the next word.
    #[allow(clippy::should_implement_trait)] // bpftool's NEXT_ARG, not an Iterator
    pub fn next(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.pos).map(String::as_str)?;
        self.prev = w;
        self.pos += 1;
        Some(w)
    }

    /// Consumes the next word when it is a prefix of `keyword`.
    pub fn eat(&mut self, keyword: &str) -> bool {
        match self.peek() {
            Some(w) if is_prefix(w, keyword) => {
                self.next();
                true
            }
            _ => false,
        }
    }

    /// bpftool's `REQ_ARGS(n)`: at least `n` words must remain, else
    /// `'PREV' needs at least N arguments, M found`.
    pub fn require(&self, n: usize) -> Result<(), GrammarError> {
        if self.len() < n {
            return Err(GrammarError::new(format!(
                "'{}' needs at least {} arguments, {} found",
                self.prev,
                n,
                self.len()
            )));
        }
        Ok(())
    }
}

/// Splits one batch-file line into words as bpftool does: the line is cut at the first `#`
/// (even inside quotes), words are separated by blanks, a word that *starts* with `'` or `"`
/// runs to the next same quote (no escapes; the quotes are removed, `''` is an empty word),
/// any other word runs to the next blank (quotes and backslashes inside it are literal).
/// `command` numbers the command in the "unterminated quoted string" error.
pub fn split_line(line: &str, command: usize) -> Result<Vec<String>, GrammarError> {
    let line = line.split('#').next().unwrap_or("");
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut word = String::new();
        if c == '\'' || c == '"' {
            chars.next();
            let mut closed = false;
            for d in chars.by_ref() {
                if d == c {
                    closed = true;
                    break;
                }
                word.push(d);
            }
            if !closed {
                return Err(GrammarError::new(format!(
                    "unterminated quoted string in command {command}"
                )));
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                word.push(d);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// Joins batch-file continuation lines (a line ending in `\`) and drops line ends; returns the
/// logical lines.
pub fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        if let Some(head) = body.strip_suffix('\\') {
            cur.push_str(head);
            continue;
        }
        cur.push_str(body);
        out.push(std::mem::take(&mut cur));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// C's `strtoul(s, &end, base)` followed by bpftool's `*end == '\0'` check: leading blanks,
/// an optional sign (a minus negates modulo 2^64), `0x` for base 16 or 0, a leading `0` for
/// octal in base 0, saturation at `u64::MAX` on overflow. `None` when `s` holds no digits or
/// trailing garbage.
pub fn strtoul(s: &str, base: u32) -> Option<u64> {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let has_0x = (s.starts_with("0x") || s.starts_with("0X"))
        && s[2..].chars().next().is_some_and(|c| c.is_ascii_hexdigit());
    let (radix, digits) = match base {
        0 if has_0x => (16, &s[2..]),
        0 if s.starts_with('0') && s.len() > 1 => (8, &s[1..]),
        0 => (10, s),
        16 if has_0x => (16, &s[2..]),
        b => (b, s),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for c in digits.chars() {
        let d = c.to_digit(radix).unwrap_or(0) as u64;
        match v.checked_mul(radix as u64).and_then(|x| x.checked_add(d)) {
            Some(x) => v = x,
            None => overflow = true,
        }
    }
    if overflow {
        return Some(u64::MAX);
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses `DATA := [hex] BYTES` at the cursor into exactly `size` bytes, as bpftool's
/// `parse_bytes`: words are consumed while they parse as a number (base 0, or base 16 after
/// `hex`), each truncated to its low byte (`256` → `00`); the first word that does not parse
/// ends the data unless fewer than `size` bytes were read, which is `error parsing byte: W`.
/// `what` is `key` or `value` (`key expected 4 bytes got 3`).
pub fn parse_data(w: &mut Words<'_>, size: usize, what: &str) -> Result<Vec<u8>, GrammarError> {
    let base = if w.peek() == Some("hex") {
        w.next();
        16
    } else {
        0
    };
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let Some(word) = w.peek() else { break };
        match strtoul(word, base) {
            Some(v) => {
                out.push(v as u8);
                w.next();
            }
            None => return Err(GrammarError::new(format!("error parsing byte: {word}"))),
        }
    }
    if out.len() != size {
        return Err(GrammarError::new(format!(
            "{what} expected {size} bytes got {}",
            out.len()
        )));
    }
    Ok(out)
}

/// bpftool's `fprint_hex(…, " ")`: bytes as two hex digits separated by a blank, an extra
/// blank after every 8th byte and a line break after every 16th.
pub fn hex_bytes(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 3);
    for (i, b) in data.iter().enumerate() {
        if i > 0 {
            if i % 16 == 0 {
                s.push('\n');
            } else if i % 8 == 0 {
                s.push_str("  ");
            } else {
                s.push(' ');
            }
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn prefixes() {
        assert!(is_prefix("sh", "show"));
        assert!(is_prefix("show", "show"));
        assert!(!is_prefix("shows", "show"));
        assert!(!is_prefix("", "show"));
        assert!(!is_prefix("x", "show"));
    }

    #[test]
    fn require_names_the_previous_word() {
        let v = words("FILE type");
        let mut w = Words::new(&v, "create");
        assert_eq!(
            w.require(7).unwrap_err().message,
            "'create' needs at least 7 arguments, 2 found"
        );
        w.next();
        assert_eq!(
            w.require(2).unwrap_err().message,
            "'FILE' needs at least 2 arguments, 1 found"
        );
        assert!(w.require(1).is_ok());
        assert!(!w.eat("key"));
        assert!(w.eat("type"));
        assert!(w.is_empty());
    }

    #[test]
    fn strtoul_like_c() {
        assert_eq!(strtoul("10", 0), Some(10));
        assert_eq!(strtoul("0x1f", 0), Some(31));
        assert_eq!(strtoul("010", 0), Some(8));
        assert_eq!(strtoul("0", 0), Some(0));
        assert_eq!(strtoul("ff", 16), Some(255));
        assert_eq!(strtoul("0xff", 16), Some(255));
        assert_eq!(strtoul("-1", 0), Some(u64::MAX));
        assert_eq!(strtoul("99999999999999999999999", 0), Some(u64::MAX));
        assert_eq!(strtoul("zz", 0), None);
        assert_eq!(strtoul("09", 0), None);
        assert_eq!(strtoul("1x", 0), None);
        assert_eq!(strtoul("", 0), None);
        assert_eq!(strtoul("0x", 0), None);
    }

    #[test]
    fn data_bytes() {
        let v = words("1 0x02 010 256 value 7");
        let mut w = Words::new(&v, "key");
        assert_eq!(parse_data(&mut w, 4, "key").unwrap(), vec![1, 2, 8, 0]);
        assert_eq!(w.peek(), Some("value"));

        let v = words("hex 0a ff 10 0x01");
        let mut w = Words::new(&v, "key");
        assert_eq!(
            parse_data(&mut w, 4, "key").unwrap(),
            vec![0x0a, 0xff, 0x10, 1]
        );
        assert!(w.is_empty());

        // bpftool reads `hex 01000000` as one (truncated) byte, not as a hex string.
        let v = words("hex 01000000");
        let mut w = Words::new(&v, "key");
        assert_eq!(
            parse_data(&mut w, 4, "key").unwrap_err().message,
            "key expected 4 bytes got 1"
        );

        let v = words("1 0 0");
        let mut w = Words::new(&v, "key");
        assert_eq!(
            parse_data(&mut w, 4, "key").unwrap_err().message,
            "key expected 4 bytes got 3"
        );

        let v = words("1 zz 0 0");
        let mut w = Words::new(&v, "key");
        assert_eq!(
            parse_data(&mut w, 4, "value").unwrap_err().message,
            "error parsing byte: zz"
        );

        // Extra bytes stay for the caller (bpftool then says "expected key or value, got: 0").
        let v = words("1 0 0 0 0");
        let mut w = Words::new(&v, "key");
        assert_eq!(parse_data(&mut w, 4, "key").unwrap(), vec![1, 0, 0, 0]);
        assert_eq!(w.rest(), &["0".to_string()]);
    }

    #[test]
    fn batch_line_splitting() {
        let s = |l: &str| split_line(l, 0).unwrap();
        assert_eq!(s("map show  pinned /x"), words("map show pinned /x"));
        assert_eq!(s("map show # comment"), words("map show"));
        assert_eq!(s("  # only a comment"), Vec::<String>::new());
        assert_eq!(
            s("map show pinned \"/a b\""),
            ["map", "show", "pinned", "/a b"]
        );
        assert_eq!(s("pinned ''"), ["pinned", ""]);
        // Quotes only open a word; inside a word they are literal; no escapes at all.
        assert_eq!(s("a\"b c\"d"), ["a\"b", "c\"d"]);
        assert_eq!(s("'x\\'y'"), ["x\\", "y'"]);
        assert_eq!(s("x\\\"y"), ["x\\\"y"]);
        assert_eq!(
            split_line("pinned \"a#b\"", 3).unwrap_err().message,
            "unterminated quoted string in command 3"
        );
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(
            logical_lines("map show \\\n  pinned /x\n\nmap list"),
            ["map show   pinned /x", "", "map list"]
        );
    }

    #[test]
    fn hex_layout() {
        assert_eq!(hex_bytes(&[0, 1, 2, 3]), "00 01 02 03");
        let v: Vec<u8> = (1..=20).collect();
        assert_eq!(
            hex_bytes(&v),
            "01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n11 12 13 14"
        );
        assert_eq!(hex_bytes(&[]), "");
    }
}

//! A reader of Katran's fixture headers (`katran/lib/testing/fixtures/*.h`): a small
//! tokenizer and parser for the C++ initialiser lists they are written in
//! (`const std::vector<PacketAttributes> NAME = { {.description = …, .inputPacketBuilder =
//! PacketBuilder::newPacket().Eth(…)…}, … };`), evaluated into [`Fixture`]s whose packet
//! builders are [`crate::packet::Builder`]s.

use std::collections::BTreeMap;

use crate::packet::{BuildError, Builder};

/// A C++ token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// Identifier or keyword.
    Ident(String),
    /// Integer literal.
    Int(u64),
    /// String literal (adjacent literals concatenated), its bytes after escapes.
    Str(Vec<u8>),
    /// Bool literal.
    Bool(bool),
    /// Punctuation: `::`, or one character.
    Punct(&'static str),
}

/// Tokenizes C++ source: comments and preprocessor lines are dropped.
pub fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if line_start && c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        line_start = false;
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i..].starts_with(b"/*") {
            let end = src[i + 2..].find("*/").ok_or("unterminated comment")?;
            i += 2 + end + 2;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let id = &src[s..i];
            out.push(match id {
                "true" => Tok::Bool(true),
                "false" => Tok::Bool(false),
                _ => Tok::Ident(id.to_string()),
            });
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'\'') {
                i += 1;
            }
            let text: String = src[s..i].chars().filter(|&c| c != '\'').collect();
            let text = text.trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
                u64::from_str_radix(h, 16)
            } else if text.len() > 1 && text.starts_with('0') {
                u64::from_str_radix(&text[1..], 8)
            } else {
                text.parse()
            }
            .map_err(|e| format!("bad number {text}: {e}"))?;
            out.push(Tok::Int(v));
            continue;
        }
        if c == b'"' {
            let mut bytes = Vec::new();
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                    let e = b[i];
                    match e {
                        b'x' => {
                            i += 1;
                            let s = i;
                            while i < b.len() && b[i].is_ascii_hexdigit() {
                                i += 1;
                            }
                            let v = u32::from_str_radix(&src[s..i], 16)
                                .map_err(|e| format!("bad \\x escape: {e}"))?;
                            bytes.push(v as u8);
                            continue;
                        }
                        b'0'..=b'7' => {
                            let s = i;
                            while i < b.len() && i < s + 3 && (b'0'..=b'7').contains(&b[i]) {
                                i += 1;
                            }
                            let v = u32::from_str_radix(&src[s..i], 8)
                                .map_err(|e| format!("bad octal escape: {e}"))?;
                            bytes.push(v as u8);
                            continue;
                        }
                        b'n' => bytes.push(b'\n'),
                        b't' => bytes.push(b'\t'),
                        b'r' => bytes.push(b'\r'),
                        b'\\' => bytes.push(b'\\'),
                        b'"' => bytes.push(b'"'),
                        b'\'' => bytes.push(b'\''),
                        other => return Err(format!("unknown escape \\{}", other as char)),
                    }
                    i += 1;
                } else {
                    bytes.push(b[i]);
                    i += 1;
                }
            }
            i += 1;
            // Adjacent literals concatenate.
            if let Some(Tok::Str(prev)) = out.last_mut() {
                prev.extend_from_slice(&bytes);
            } else {
                out.push(Tok::Str(bytes));
            }
            continue;
        }
        if c == b'\'' {
            // Character literal (plain or simple escape).
            let (v, len) = if b[i + 1] == b'\\' {
                (
                    match b[i + 2] {
                        b'0' => 0,
                        b'n' => b'\n',
                        x => x,
                    },
                    4,
                )
            } else {
                (b[i + 1], 3)
            };
            out.push(Tok::Int(u64::from(v)));
            i += len;
            continue;
        }
        if b[i..].starts_with(b"::") {
            out.push(Tok::Punct("::"));
            i += 2;
            continue;
        }
        const P: &[&str] = &[
            "{", "}", "(", ")", "[", "]", "<", ">", ",", ";", ".", "=", "|", "&", "+", "-", "*",
            "/", ":", "~", "!", "?", "%", "^",
        ];
        let p = P
            .iter()
            .find(|p| p.as_bytes()[0] == c)
            .ok_or_else(|| format!("unexpected character {:?}", c as char))?;
        out.push(Tok::Punct(p));
        i += 1;
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Integer.
    Int(u64),
    /// Bool.
    Bool(bool),
    /// String bytes.
    Str(Vec<u8>),
    /// A (possibly qualified) name: the last component matters.
    Name(String),
    /// `{a, b}` (possibly preceded by a type).
    List(Vec<Expr>),
    /// `{.a = x, .b = y}`.
    Designated(Vec<(String, Expr)>),
    /// `f(args)`.
    Call(String, Vec<Expr>),
    /// `recv.method(args)`.
    Method(Box<Expr>, String, Vec<Expr>),
    /// `a | b`.
    Or(Box<Expr>, Box<Expr>),
}

struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == p)
    }
    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!(
                "expected {p:?} at token {}: {:?}",
                self.i,
                self.peek()
            ))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            t => Err(format!("expected identifier at token {}: {t:?}", self.i)),
        }
    }

    /// Skips a balanced `<…>` template argument list.
    fn skip_template(&mut self) -> Result<(), String> {
        let mut depth = 0;
        loop {
            match self.peek() {
                Some(Tok::Punct("<")) => depth += 1,
                Some(Tok::Punct(">")) => depth -= 1,
                None => return Err("unterminated template arguments".into()),
                _ => {}
            }
            self.i += 1;
            if depth == 0 {
                return Ok(());
            }
        }
    }

    fn args(&mut self, close: &str) -> Result<Vec<Expr>, String> {
        let mut v = Vec::new();
        if self.eat(close) {
            return Ok(v);
        }
        loop {
            v.push(self.expr()?);
            if self.eat(close) {
                return Ok(v);
            }
            self.expect(",")?;
            if self.eat(close) {
                return Ok(v);
            }
        }
    }

    fn brace(&mut self) -> Result<Expr, String> {
        // After `{`.
        if self.is(".") {
            let mut fields = Vec::new();
            loop {
                if self.eat("}") {
                    break;
                }
                self.expect(".")?;
                let name = self.ident()?;
                self.expect("=")?;
                let v = self.expr()?;
                fields.push((name, v));
                if !self.eat(",") {
                    self.expect("}")?;
                    break;
                }
            }
            Ok(Expr::Designated(fields))
        } else {
            Ok(Expr::List(self.args("}")?))
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.peek().cloned() {
            Some(Tok::Int(v)) => {
                self.i += 1;
                Ok(Expr::Int(v))
            }
            Some(Tok::Bool(v)) => {
                self.i += 1;
                Ok(Expr::Bool(v))
            }
            Some(Tok::Str(s)) => {
                self.i += 1;
                Ok(Expr::Str(s))
            }
            Some(Tok::Punct("{")) => {
                self.i += 1;
                self.brace()
            }
            Some(Tok::Punct("(")) => {
                self.i += 1;
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Punct("::")) | Some(Tok::Ident(_)) => {
                self.eat("::");
                let mut name = self.ident()?;
                loop {
                    if self.is("<") && name.ends_with("vector") {
                        self.skip_template()?;
                    } else if self.eat("::") {
                        name = format!("{name}::{}", self.ident()?);
                    } else {
                        break;
                    }
                }
                if self.eat("(") {
                    let a = self.args(")")?;
                    let last = name.rsplit("::").next().unwrap_or(&name).to_string();
                    Ok(Expr::Call(last, a))
                } else if self.eat("{") {
                    self.brace()
                } else {
                    Ok(Expr::Name(name))
                }
            }
            t => Err(format!("unexpected token {t:?} at {}", self.i)),
        }
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        while self.is(".") && matches!(self.t.get(self.i + 1), Some(Tok::Ident(_))) {
            // `.name(` is a method call; `.name =` belongs to a designated list.
            if !matches!(self.t.get(self.i + 2), Some(Tok::Punct("("))) {
                break;
            }
            self.i += 1;
            let m = self.ident()?;
            self.expect("(")?;
            let a = self.args(")")?;
            e = Expr::Method(Box::new(e), m, a);
        }
        Ok(e)
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut e = self.postfix()?;
        while self.eat("|") {
            let r = self.postfix()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }
}

/// Every `… std::vector<…PacketAttributes> NAME = { … };` of a header, by name, in order.
pub fn parse_vectors(src: &str) -> Result<Vec<(String, Vec<Expr>)>, String> {
    let toks = tokenize(src)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        // `…PacketAttributes> NAME = {` or, through the alias some headers declare,
        // `TestFixture NAME = {`.
        let name_at = if toks[i] == Tok::Ident("PacketAttributes".into())
            && toks.get(i + 1) == Some(&Tok::Punct(">"))
        {
            Some(i + 2)
        } else if toks[i] == Tok::Ident("TestFixture".into())
            && matches!(toks.get(i + 1), Some(Tok::Ident(_)))
        {
            Some(i + 1)
        } else {
            None
        };
        if let Some(at) = name_at
            && let (Some(Tok::Ident(name)), Some(Tok::Punct("=")), Some(Tok::Punct("{"))) =
                (toks.get(at), toks.get(at + 1), toks.get(at + 2))
        {
            let mut p = Parser {
                t: &toks,
                i: at + 3,
            };
            let items = p.args("}").map_err(|e| format!("{name}: {e}"))?;
            out.push((name.clone(), items));
            i = p.i;
            continue;
        }
        i += 1;
    }
    Ok(out)
}

/// One fixture: Katran's `PacketAttributes`.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// 1-based position in its vector.
    pub index: usize,
    /// `.description`.
    pub description: String,
    /// `.expectedReturnValue` ("XDP_TX", …).
    pub expected_return: String,
    /// The input packet, or why it cannot be built.
    pub input: Result<Vec<u8>, String>,
    /// The expected output packet, or why it cannot be built.
    pub expected_output: Result<Vec<u8>, String>,
}

fn as_str(e: &Expr) -> Result<String, String> {
    match e {
        Expr::Str(s) => Ok(String::from_utf8_lossy(s).into_owned()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

/// The named constants the fixtures use.
fn constants() -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("TH_FIN", 0x01),
        ("TH_SYN", 0x02),
        ("TH_RST", 0x04),
        ("TH_PUSH", 0x08),
        ("TH_ACK", 0x10),
        ("TH_URG", 0x20),
        ("QUIC_V1_WIRE_FORMAT", 0xfaceb001),
        ("ICMPv4Header::ECHO_REPLY", 0),
        ("ICMPv4Header::ECHO_REQUEST", 8),
        ("ICMPv4Header::DEST_UNREACH", 3),
        ("ICMPv4Header::FRAG_NEEDED", 4),
        ("ICMPv4Header::NO_CODE", 0),
        ("ICMPv6Header::ECHO_REQUEST", 128),
        ("ICMPv6Header::ECHO_REPLY", 129),
        ("ICMPv6Header::PACKET_TOO_BIG", 2),
        ("QUICHeader::CID_V1", 1),
        ("QUICHeader::CID_V2", 2),
        ("PacketBuilder::IP_FLAG_MF", 0x20),
        ("PacketBuilder::IP_FLAG_DF", 0x40),
        ("PacketBuilder::IPV6_NH_FRAGMENT", 44),
        ("PacketBuilder::STABLE_UDP_TYPE", 0x52),
        ("IPPROTO_TCP", 6),
        ("IPPROTO_UDP", 17),
    ])
}

/// Evaluation of fixture expressions.
pub struct Eval {
    consts: BTreeMap<&'static str, u64>,
}

impl Default for Eval {
    fn default() -> Self {
        Eval {
            consts: constants(),
        }
    }
}

impl Eval {
    /// An integer argument (names resolved; `|` evaluated).
    pub fn int(&self, e: &Expr) -> Result<u64, String> {
        match e {
            Expr::Int(v) => Ok(*v),
            Expr::Bool(b) => Ok(u64::from(*b)),
            Expr::Name(n) => {
                // Qualified as written, else by its last two components, else its last.
                let parts: Vec<&str> = n.split("::").collect();
                let two = parts[parts.len().saturating_sub(2)..].join("::");
                self.consts
                    .get(n.as_str())
                    .or_else(|| self.consts.get(two.as_str()))
                    .or_else(|| self.consts.get(parts[parts.len() - 1]))
                    .copied()
                    .ok_or_else(|| format!("unknown constant {n}"))
            }
            Expr::Or(a, b) => Ok(self.int(a)? | self.int(b)?),
            other => Err(format!("expected an integer, got {other:?}")),
        }
    }

    /// A byte-string argument: string literal, `repeatString(s, n)`, or `{bytes}`.
    pub fn bytes(&self, e: &Expr) -> Result<Vec<u8>, String> {
        match e {
            // A std::string built from a C string literal stops at the first NUL.
            Expr::Str(s) => Ok(s.split(|&b| b == 0).next().unwrap_or(&[]).to_vec()),
            // std::string(literal, n): the first n bytes, NULs included.
            Expr::Call(f, a) if f == "string" && a.len() == 2 => match &a[0] {
                Expr::Str(s) => {
                    let n = self.int(&a[1])? as usize;
                    let mut v = s.clone();
                    v.resize(n, 0);
                    Ok(v)
                }
                other => Err(format!("std::string of {other:?}")),
            },
            Expr::Call(f, a) if f == "string" && a.len() == 1 => self.bytes(&a[0]),
            Expr::Call(f, a) if f == "repeatString" && a.len() == 2 => {
                let s = self.bytes(&a[0])?;
                let n = self.int(&a[1])? as usize;
                Ok(s.repeat(n))
            }
            Expr::List(items) => items.iter().map(|i| self.int(i).map(|v| v as u8)).collect(),
            other => Err(format!("expected bytes, got {other:?}")),
        }
    }

    /// A `PacketBuilder::newPacket()…` chain, evaluated.
    pub fn builder(&self, e: &Expr) -> Result<Builder, String> {
        match e {
            Expr::Call(f, a) if f == "newPacket" && a.is_empty() => Ok(Builder::new()),
            Expr::Method(recv, m, args) => {
                let b = self.builder(recv)?;
                crate::packet::apply(self, b, m, args)
            }
            other => Err(format!("not a packet builder expression: {other:?}")),
        }
    }

    /// A fixture from its designated initialiser.
    pub fn fixture(&self, index: usize, e: &Expr) -> Result<Fixture, String> {
        let Expr::Designated(fields) = e else {
            return Err(format!("fixture {index}: not a designated initialiser"));
        };
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        let description = get("description")
            .map(as_str)
            .transpose()?
            .unwrap_or_default();
        let expected_return = get("expectedReturnValue")
            .map(as_str)
            .transpose()?
            .unwrap_or_default();
        let build = |field: &str| -> Result<Vec<u8>, String> {
            let e = get(field).ok_or_else(|| format!("no .{field}"))?;
            let b = self.builder(e)?;
            b.build().map_err(|e: BuildError| e.to_string())
        };
        Ok(Fixture {
            index,
            description,
            expected_return,
            input: build("inputPacketBuilder"),
            expected_output: build("expectedOutputPacketBuilder"),
        })
    }
}

/// Every fixture vector of a fixture header: `(vector name, fixtures)`.
pub fn read_fixture_file(src: &str) -> Result<Vec<(String, Vec<Fixture>)>, String> {
    let ev = Eval::default();
    parse_vectors(src)?
        .into_iter()
        .map(|(name, items)| {
            let fx = items
                .iter()
                .enumerate()
                .map(|(i, e)| ev.fixture(i + 1, e))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name, fx))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &str = r#"
        // a comment
        #include "x.h"
        const std::vector<::katran::PacketAttributes> fx = {
            // 1
            {.description = "one" " two",
             .expectedReturnValue = "XDP_TX",
             .inputPacketBuilder = katran::testing::PacketBuilder::newPacket()
                 .Eth("0x1", "0x2")
                 .IPv4("192.168.1.1", "10.200.1.1", 64, 0, 1, PacketBuilder::IP_FLAG_MF)
                 .TCP(31337, 80, 0, 0, 8192, TH_SYN | TH_ACK)
                 .withCustomOption(0xb7, std::vector<uint8_t>{0x04, 0x00})
                 .payload("ab\x00@cd"),
             .expectedOutputPacketBuilder = PacketBuilder::newPacket()
                 .Eth("02:00:00:00:00:00", "00:00:de:ad:be:af")
                 .IPv6("fc00::1", "fc00::2")
                 .UDP(1, 2)
                 .QUICShortHeader().destConnId({0x41, 0x00}).data("\x01q\x00@").done()},
        };
    "#;

    #[test]
    fn reads_designated_initialisers_and_builder_chains() {
        let v = read_fixture_file(SNIPPET).expect("parses");
        assert_eq!(v.len(), 1);
        let (name, fx) = &v[0];
        assert_eq!(name, "fx");
        assert_eq!(fx.len(), 1);
        let f = &fx[0];
        assert_eq!(f.description, "one two");
        assert_eq!(f.expected_return, "XDP_TX");
        let input = f.input.as_ref().expect("input built");
        // Eth: dst (0x2) first, then src (0x1), IPv4.
        assert_eq!(
            &input[..14],
            &[2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x08, 0x00]
        );
        // IPv4: fragment field from the MF constant (0x20), protocol TCP.
        assert_eq!(&input[20..22], &[0x00, 0x20]);
        assert_eq!(input[23], 6);
        // TCP: SYN|ACK, options padded to 4 bytes (doff 6).
        assert_eq!(input[34 + 12], 6 << 4);
        assert_eq!(input[34 + 13], 0x12);
        assert_eq!(&input[54..58], &[0xb7, 4, 0x04, 0x00]);
        // The C string literal stops at its NUL.
        assert_eq!(&input[58..], b"ab");
        let out = f.expected_output.as_ref().expect("output built");
        // Short header: 0x00, the connection id, the data up to its NUL (no "\0@" suffix).
        assert_eq!(&out[14 + 40 + 8..], &[0x00, 0x41, 0x00, 0x01, b'q']);
    }
}

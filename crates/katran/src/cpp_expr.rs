//! A tokenizer and parser for the C++ initialiser lists Katran's fixture headers are written
//! in (`{.description = …, .inputPacketBuilder = PacketBuilder::newPacket().Eth(…)…}`): the
//! expressions [`crate::fixture`] evaluates into packets.

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

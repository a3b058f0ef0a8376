//! JSON in bpftool's exact shapes: `-j` (compact) and `-p` (bpftool's own pretty layout).
//!
//! bpftool writes JSON with a small streaming writer whose pretty mode is not serde_json's:
//! a value inside an array follows the comma directly (`["0x01","0x00"` on one line), names
//! inside objects start on a new indented line, and a non-empty container closes on a new
//! line at the parent's indentation (`[{` … `},{` … `}` / `]`). [`Json::write`] reproduces
//! that layout from a small ordered tree, so key order is bpftool's.

/// An ordered JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// An unsigned number.
    U(u64),
    /// A signed number.
    I(i64),
    /// A boolean.
    B(bool),
    /// A string.
    S(String),
    /// An array.
    A(Vec<Json>),
    /// An object, in key order.
    O(Vec<(String, Json)>),
    /// A token printed as is where a value goes (bpftool's `jsonw_printf`: `0x5`, `(nil)` in
    /// the BTF dumper's plain text); an empty token prints nothing at all.
    Raw(String),
    /// Text printed straight to the output, outside the writer's bookkeeping (bpftool's
    /// `printf` while a JSON writer is open, e.g. a map without BTF in a BTF-formatted dump).
    Text(String),
}

impl From<&kbpf_object::btf::Node> for Json {
    fn from(n: &kbpf_object::btf::Node) -> Json {
        use kbpf_object::btf::Node;
        match n {
            Node::Raw(s) => Json::Raw(s.clone()),
            Node::Str(s) => Json::S(s.clone()),
            Node::Bool(b) => Json::B(*b),
            Node::Array(a) => Json::A(a.iter().map(Json::from).collect()),
            Node::Object(o) => Json::O(o.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect()),
        }
    }
}

impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::B(*b),
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Json::U(u),
                (None, Some(i)) => Json::I(i),
                _ => Json::S(n.to_string()),
            },
            serde_json::Value::String(s) => Json::S(s.clone()),
            serde_json::Value::Array(a) => Json::A(a.iter().map(Json::from).collect()),
            serde_json::Value::Object(o) => {
                Json::O(o.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect())
            }
        }
    }
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::O(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// bpftool's byte array: `["0x01","0x00",…]`.
    pub fn hex(bytes: &[u8]) -> Json {
        Json::A(
            bytes
                .iter()
                .map(|b| Json::S(format!("0x{b:02x}")))
                .collect(),
        )
    }

    /// A string value.
    pub fn s(s: impl Into<String>) -> Json {
        Json::S(s.into())
    }

    /// The text bpftool prints for this value as a whole document (with the final newline).
    pub fn to_document(&self, pretty: bool) -> String {
        let mut w = Writer {
            out: String::new(),
            pretty,
            depth: 0,
            sep: false,
        };
        w.value(self);
        w.out.push('\n');
        w.out
    }
}

/// bpftool's writer state: `sep` says a value was already written at this level.
struct Writer {
    out: String,
    pretty: bool,
    depth: usize,
    sep: bool,
}

impl Writer {
    fn eor(&mut self) {
        if self.sep {
            self.out.push(',');
        }
        self.sep = true;
    }

    fn eol(&mut self) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..self.depth {
                self.out.push_str("    ");
            }
        }
    }

    fn begin(&mut self, c: char) {
        self.eor();
        self.out.push(c);
        self.depth += 1;
        self.sep = false;
    }

    fn end(&mut self, c: char) {
        self.depth -= 1;
        if self.sep {
            self.eol();
        }
        self.out.push(c);
        self.sep = true;
    }

    fn name(&mut self, n: &str) {
        self.eor();
        self.eol();
        self.sep = false;
        string(&mut self.out, n);
        self.out.push(':');
        if self.pretty {
            self.out.push(' ');
        }
    }

    fn value(&mut self, v: &Json) {
        match v {
            Json::Null => self.scalar("null"),
            Json::U(n) => self.scalar(&n.to_string()),
            Json::I(n) => self.scalar(&n.to_string()),
            Json::B(b) => self.scalar(if *b { "true" } else { "false" }),
            Json::S(s) => {
                self.eor();
                string(&mut self.out, s);
            }
            Json::A(items) => {
                self.begin('[');
                for i in items {
                    self.value(i);
                }
                self.end(']');
            }
            Json::O(pairs) => {
                self.begin('{');
                for (k, v) in pairs {
                    self.name(k);
                    self.value(v);
                }
                self.end('}');
            }
            Json::Raw(s) if s.is_empty() => {}
            Json::Raw(s) => self.scalar(s),
            Json::Text(s) => self.out.push_str(s),
        }
    }

    fn scalar(&mut self, s: &str) {
        self.eor();
        self.out.push_str(s);
    }
}

/// A JSON string literal with bpftool's escapes.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem() -> Json {
        Json::obj([
            ("key", Json::hex(&[1, 0, 0, 0])),
            ("value", Json::hex(&[0x1c, 0, 0, 0])),
        ])
    }

    #[test]
    fn compact() {
        assert_eq!(
            Json::A(vec![elem()]).to_document(false),
            "[{\"key\":[\"0x01\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x1c\",\"0x00\",\"0x00\",\"0x00\"]}]\n"
        );
        assert_eq!(Json::Null.to_document(false), "null\n");
        assert_eq!(Json::A(vec![]).to_document(true), "[]\n");
    }

    /// The layouts below are bpftool 7.1's `-p` output, copied from the terminal.
    #[test]
    fn pretty_like_bpftool() {
        assert_eq!(
            Json::A(vec![elem()]).to_document(true),
            "[{\n        \"key\": [\"0x01\",\"0x00\",\"0x00\",\"0x00\"\n        ],\n        \"value\": [\"0x1c\",\"0x00\",\"0x00\",\"0x00\"\n        ]\n    }\n]\n"
        );
        assert_eq!(
            Json::obj([("error", Json::s("update failed: Invalid argument"))]).to_document(true),
            "{\n    \"error\": \"update failed: Invalid argument\"\n}\n"
        );
        let two = Json::A(vec![
            Json::obj([("id", Json::U(1))]),
            Json::obj([("id", Json::U(2))]),
        ]);
        assert_eq!(
            two.to_document(true),
            "[{\n        \"id\": 1\n    },{\n        \"id\": 2\n    }\n]\n"
        );
        // bpftool's BTF dumper: bare tokens, and a name whose value printed nothing.
        let btf = Json::A(vec![Json::obj([
            ("lo", Json::Raw("0x0".into())),
            ("p", Json::Raw("(nil)".into())),
            ("bad", Json::Raw(String::new())),
        ])]);
        assert_eq!(
            btf.to_document(true),
            "[{\n        \"lo\": 0x0,\n        \"p\": (nil),\n        \"bad\": }\n]\n"
        );
        assert_eq!(
            Json::A(vec![Json::Text("key: 00\n".into())]).to_document(true),
            "[key: 00\n]\n"
        );
        assert_eq!(
            Json::obj([("output", Json::Null)]).to_document(true),
            "{\n    \"output\": null\n}\n"
        );
    }
}

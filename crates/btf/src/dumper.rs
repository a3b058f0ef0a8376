//! bpftool's BTF value dumper (`btf_dumper.c`): a map key or value rendered as the JSON tokens
//! bpftool's writer prints, in its two modes:
//!
//! - plain text (`bpftool map dump` without `-j` on a map with BTF): a pretty JSON-like text
//!   where bitfields, 128-bit integers and non-printable `char`s are bare `0x…` tokens and
//!   pointers are C's `%p` (`(nil)`, `0x7f…`) — not JSON;
//! - JSON (`-j`, the `formatted` object): bitfields as `"0x…"` strings, pointers as decimal.
//!
//! The output is a [`Node`] tree in bpftool's order; [`Node::Raw`] is a token printed as is
//! (bpftool's `jsonw_printf`). Errors stop the dump where bpftool stops it: the failing node
//! prints what bpftool prints (`(unsupported-kind`, `(fwd-kind-invalid)` or nothing) and
//! every enclosing struct, array and section ends there, closed.

use crate::{BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, Btf, BtfKind, MAX_RESOLVE_DEPTH};

/// One JSON token tree, as bpftool's writer would print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// Printed verbatim (numbers, `0x…`, `(nil)`, a pre-quoted `"c"`).
    Raw(String),
    /// A string, quoted and escaped by the writer.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// An array.
    Array(Vec<Node>),
    /// An object, in order; names may repeat or be empty (anonymous members).
    Object(Vec<(String, Node)>),
}

/// Most nodes one dump may produce (hostile BTF could nest zero-sized arrays deeply).
const NODE_BUDGET: usize = 1 << 20;

struct Dumper<'a> {
    btf: &'a Btf,
    plain: bool,
    budget: usize,
}

/// The bytes at `off..off+n` as a little-endian `u128`, missing bytes read as zero (map values
/// always have the BTF type's size — the loader checks it — but this never reads out of
/// bounds whatever the input).
fn le(data: &[u8], off: usize, n: usize) -> u128 {
    let mut v: u128 = 0;
    for i in 0..n.min(16) {
        let b = off
            .checked_add(i)
            .and_then(|o| data.get(o))
            .copied()
            .unwrap_or(0);
        v |= u128::from(b) << (8 * i);
    }
    v
}

fn sub(data: &[u8], off: usize) -> &[u8] {
    data.get(off..).unwrap_or(&[])
}

impl Btf {
    /// bpftool's `btf_dumper_type`: the value of type `id` in `data`, for plain text
    /// (`plain`) or JSON output. The flag is false when bpftool's dumper returned an error
    /// (the tree is then cut where bpftool stops printing).
    pub fn dump_data(&self, id: u32, data: &[u8], plain: bool) -> (Node, bool) {
        let mut d = Dumper {
            btf: self,
            plain,
            budget: NODE_BUDGET,
        };
        let mut out = Vec::new();
        let ok = d.do_type(id, 0, data, 0, &mut out);
        let node = out.pop().unwrap_or(Node::Raw(String::new()));
        (node, ok)
    }
}

impl Dumper<'_> {
    /// `btf_dumper_do_type`: pushes the value's node (if bpftool prints one) onto `out`.
    fn do_type(
        &mut self,
        id: u32,
        bit_off: u32,
        data: &[u8],
        depth: usize,
        out: &mut Vec<Node>,
    ) -> bool {
        if depth > MAX_RESOLVE_DEPTH * 4 || self.budget == 0 {
            out.push(Node::Raw("(unsupported-kind".into()));
            return false;
        }
        self.budget -= 1;
        let Ok(t) = self.btf.type_by_id(id) else {
            return false;
        };
        match &t.kind {
            BtfKind::Void => {
                out.push(Node::Raw("(unknown)".into()));
                true
            }
            BtfKind::Int {
                size,
                encoding,
                offset,
                bits,
            } => match self.int(*size, *encoding, *offset, *bits, bit_off, data) {
                Some(n) => {
                    out.push(n);
                    true
                }
                None => false,
            },
            BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => {
                let mut fields = Vec::with_capacity(members.len());
                let mut ok = true;
                for m in members {
                    let d = sub(data, (m.bit_offset / 8) as usize);
                    let mut v = Vec::new();
                    if m.bitfield_size != 0 {
                        v.push(self.bitfield(m.bitfield_size, m.bit_offset % 8, d));
                    } else {
                        ok = self.do_type(m.ty, m.bit_offset % 8, d, depth + 1, &mut v);
                    }
                    // bpftool names the member even when its value printed nothing.
                    fields.push((m.name.clone(), v.pop()));
                    if !ok {
                        break;
                    }
                }
                out.push(object(fields));
                ok
            }
            BtfKind::Array { elem, nelems, .. } => self.array(*elem, *nelems, data, depth, out),
            BtfKind::Enum { size, values, .. } => {
                let v: i64 = match size {
                    8 => le(data, 0, 8) as u64 as i64,
                    4 => le(data, 0, 4) as u32 as i32 as i64,
                    2 => le(data, 0, 2) as u16 as i16 as i64,
                    1 => le(data, 0, 1) as u8 as i8 as i64,
                    _ => return false,
                };
                // btf_enum.val is an s32 whatever the enum's signedness.
                let hit = values.iter().find(|e| e.value as u32 as i32 as i64 == v);
                out.push(match hit {
                    Some(e) => Node::Str(e.name.clone()),
                    None => Node::Raw(v.to_string()),
                });
                true
            }
            BtfKind::Enum64 { values, .. } => {
                let v = le(data, 0, 8) as u64;
                let hit = values.iter().find(|e| e.value as u64 == v);
                out.push(match hit {
                    Some(e) => Node::Str(e.name.clone()),
                    None => Node::Raw((v as i64).to_string()),
                });
                true
            }
            BtfKind::Ptr(_) => {
                let v = le(data, 0, 8) as u64;
                out.push(Node::Raw(if !self.plain {
                    v.to_string()
                } else if v == 0 {
                    "(nil)".into()
                } else {
                    format!("{v:#x}")
                }));
                true
            }
            BtfKind::Fwd { .. } => {
                out.push(Node::Raw("(fwd-kind-invalid)".into()));
                false
            }
            BtfKind::Typedef(_)
            | BtfKind::Volatile(_)
            | BtfKind::Const(_)
            | BtfKind::Restrict(_) => {
                // btf__resolve_type: through typedefs and modifiers (type tags included);
                // void or a chain too deep is an error that prints nothing.
                match self.resolve_mods(id) {
                    Some(r) => self.do_type(r, bit_off, data, depth + 1, out),
                    None => false,
                }
            }
            BtfKind::Var { ty, .. } => {
                let mut v = Vec::new();
                let ok = self.do_type(*ty, bit_off, data, depth + 1, &mut v);
                out.push(object(vec![(t.name.clone(), v.pop())]));
                ok
            }
            BtfKind::Datasec { vars, .. } => {
                let mut items = Vec::with_capacity(vars.len());
                let mut ok = true;
                for v in vars {
                    ok = self.do_type(v.ty, 0, sub(data, v.offset as usize), depth + 1, &mut items);
                    if !ok {
                        break;
                    }
                }
                out.push(Node::Object(vec![(t.name.clone(), Node::Array(items))]));
                ok
            }
            BtfKind::Func { .. }
            | BtfKind::FuncProto { .. }
            | BtfKind::Float { .. }
            | BtfKind::DeclTag { .. }
            | BtfKind::TypeTag(_) => {
                out.push(Node::Raw("(unsupported-kind".into()));
                false
            }
        }
    }

    /// libbpf's `btf__resolve_type`.
    fn resolve_mods(&self, mut id: u32) -> Option<u32> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            match &self.btf.type_by_id(id).ok()?.kind {
                BtfKind::Typedef(t)
                | BtfKind::Volatile(t)
                | BtfKind::Const(t)
                | BtfKind::Restrict(t)
                | BtfKind::TypeTag(t) => id = *t,
                BtfKind::Void => return None,
                _ => return Some(id),
            }
        }
        None
    }

    /// `btf_dumper_array`: a C string when `is_str_array` says so, else the elements.
    fn array(
        &mut self,
        elem: u32,
        nelems: u32,
        data: &[u8],
        depth: usize,
        out: &mut Vec<Node>,
    ) -> bool {
        if let Some(s) = self.str_array(elem, nelems, data) {
            out.push(Node::Str(s));
            return true;
        }
        let Ok(esize) = self.btf.resolve_size(elem) else {
            return false;
        };
        let mut items = Vec::new();
        let mut ok = true;
        for i in 0..u64::from(nelems) {
            let off = usize::try_from(i.saturating_mul(esize)).unwrap_or(usize::MAX);
            ok = self.do_type(elem, 0, sub(data, off), depth + 1, &mut items);
            if !ok {
                break;
            }
        }
        out.push(Node::Array(items));
        ok
    }

    /// `is_str_array`: a non-empty array of 1-byte `char` (by name or `BTF_INT_CHAR`, through
    /// modifiers but not typedefs) whose bytes are printable up to a NUL inside the array.
    fn str_array(&self, elem: u32, nelems: u32, data: &[u8]) -> Option<String> {
        if nelems == 0 {
            return None;
        }
        let mut id = elem;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.btf.type_by_id(id).ok()?;
            match &t.kind {
                BtfKind::Volatile(i)
                | BtfKind::Const(i)
                | BtfKind::Restrict(i)
                | BtfKind::TypeTag(i) => id = *i,
                BtfKind::Int {
                    size: 1, encoding, ..
                } if *encoding == BTF_INT_CHAR || t.name == "char" => {
                    let mut s = String::new();
                    for i in 0..nelems as usize {
                        let c = data.get(i).copied().unwrap_or(0);
                        if c == 0 {
                            return Some(s);
                        }
                        // C's `char` is signed: bytes >= 0x80 are negative, so not printable.
                        if c <= 0x1f || c >= 0x7f {
                            return None;
                        }
                        s.push(c as char);
                    }
                    return None;
                }
                _ => return None,
            }
        }
        None
    }

    /// `btf_dumper_int`.
    fn int(
        &self,
        size: u32,
        encoding: u8,
        offset: u8,
        bits: u8,
        bit_off: u32,
        data: &[u8],
    ) -> Option<Node> {
        let nr_bits = u32::from(bits);
        if bit_off != 0 || offset != 0 || nr_bits % 8 != 0 {
            // btf_dumper_int_bits
            let total = bit_off + u32::from(offset);
            return Some(self.bitfield(nr_bits, total % 8, sub(data, (total / 8) as usize)));
        }
        let _ = size;
        if nr_bits == 128 {
            return Some(self.hex128(le(data, 0, 16)));
        }
        let raw = le(data, 0, (nr_bits / 8) as usize);
        let known = matches!(nr_bits, 8 | 16 | 32 | 64);
        Some(match encoding {
            0 if known => Node::Raw((raw as u64).to_string()),
            BTF_INT_SIGNED if known => {
                let shift = 128 - nr_bits;
                Node::Raw((((raw << shift) as i128) >> shift).to_string())
            }
            0 | BTF_INT_SIGNED => self.bitfield(nr_bits, 0, data),
            BTF_INT_CHAR => {
                let c = le(data, 0, 1) as u8;
                if (0x20..0x7f).contains(&c) {
                    Node::Raw(format!("\"{}\"", c as char))
                } else if self.plain {
                    Node::Raw(format!("{c:#x}"))
                } else {
                    Node::Raw(format!("\"\\u00{c:02x}\""))
                }
            }
            BTF_INT_BOOL => Node::Bool(le(data, 0, 1) != 0),
            _ => return None,
        })
    }

    /// `btf_dumper_bitfield`: `nr_bits` bits from `bit_off` (< 8) in `data`, as hex.
    fn bitfield(&self, nr_bits: u32, bit_off: u32, data: &[u8]) -> Node {
        let total = (bit_off + nr_bits).min(128);
        let bytes = total.div_ceil(8) as usize;
        let mut v = le(data, 0, bytes);
        if total < 128 {
            v &= (1u128 << total) - 1;
        }
        v >>= bit_off.min(127);
        if nr_bits < 128 {
            v &= (1u128 << nr_bits) - 1;
        }
        self.hex128(v)
    }

    /// `btf_int128_print`: `0x…` (bare in plain text, quoted in JSON).
    fn hex128(&self, v: u128) -> Node {
        let s = format!("{v:#x}");
        Node::Raw(if self.plain { s } else { format!("\"{s}\"") })
    }
}

/// An object whose members without a value (an error before anything was printed) keep
/// their name, as bpftool's writer does; [`Node::Raw`] of nothing stands for the gap.
fn object(fields: Vec<(String, Option<Node>)>) -> Node {
    Node::Object(
        fields
            .into_iter()
            .map(|(n, v)| (n, v.unwrap_or(Node::Raw(String::new()))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind;
    use crate::tests::blob;

    fn info(k: u32, vlen: u32, kf: bool) -> u32 {
        (k << 24) | vlen | if kf { 1 << 31 } else { 0 }
    }

    /// struct s { int a; unsigned b:3, c:5; char name[4]; void *p; union { int x; } ; _Bool f; }
    fn sample() -> Btf {
        let strings = b"\0int\0s\0a\0b\0c\0name\0char\0p\0x\0f\0_Bool\0";
        // offsets: int 1, s 5, a 7, b 9, c 11, name 13, char 18, p 23, x 25, f 27, _Bool 29
        let types = [
            1,
            info(kind::INT, 0, false),
            4,
            (1 << 24) | 32, // [1] int
            18,
            info(kind::INT, 0, false),
            1,
            (1 << 24) | 8, // [2] char
            0,
            info(kind::ARRAY, 0, false),
            0,
            2,
            1,
            4, // [3] char[4]
            0,
            info(kind::PTR, 0, false),
            0, // [4] void *
            0,
            info(kind::UNION, 1, false),
            4,
            25,
            1,
            0, // [5] union { int x; }
            29,
            info(kind::INT, 0, false),
            1,
            (4 << 24) | 8, // [6] _Bool
            5,
            info(kind::STRUCT, 7, true),
            32, // [7] struct s
            7,
            1,
            0,
            9,
            1,
            (3 << 24) | 32,
            11,
            1,
            (5 << 24) | 35,
            13,
            3,
            64,
            23,
            4,
            128,
            0,
            5,
            192,
            27,
            6,
            224,
        ];
        Btf::parse(&blob(&types, strings)).unwrap()
    }

    fn value() -> Vec<u8> {
        let mut v = vec![0u8; 32];
        v[..4].copy_from_slice(&(-5i32).to_le_bytes());
        v[4] = 0b0010_1101; // b = 5, c = 5
        v[8..11].copy_from_slice(b"hi\0");
        v[24..28].copy_from_slice(&7i32.to_le_bytes());
        v[28] = 1;
        v
    }

    #[test]
    fn plain_and_json_tokens() {
        let btf = sample();
        let (n, ok) = btf.dump_data(7, &value(), true);
        assert!(ok);
        let Node::Object(f) = n else { panic!() };
        assert_eq!(f[0], ("a".into(), Node::Raw("-5".into())));
        assert_eq!(f[1], ("b".into(), Node::Raw("0x5".into())));
        assert_eq!(f[2], ("c".into(), Node::Raw("0x5".into())));
        assert_eq!(f[3], ("name".into(), Node::Str("hi".into())));
        assert_eq!(f[4], ("p".into(), Node::Raw("(nil)".into())));
        // Anonymous members keep an empty name (bpftool does not flatten them).
        assert_eq!(
            f[5],
            (
                String::new(),
                Node::Object(vec![("x".into(), Node::Raw("7".into()))])
            )
        );
        assert_eq!(f[6], ("f".into(), Node::Bool(true)));
        let (n, _) = btf.dump_data(7, &value(), false);
        let Node::Object(f) = n else { panic!() };
        assert_eq!(f[1].1, Node::Raw("\"0x5\"".into()));
        assert_eq!(f[4].1, Node::Raw("0".into()));
    }

    #[test]
    fn short_data_and_bad_ids_do_not_panic() {
        let btf = sample();
        let (n, ok) = btf.dump_data(7, &[1], true);
        assert!(ok);
        assert!(matches!(n, Node::Object(_)));
        let (_, ok) = btf.dump_data(99, &[], true);
        assert!(!ok);
    }

    #[test]
    fn bitfield_extraction() {
        let d = Dumper {
            btf: &sample(),
            plain: true,
            budget: 10,
        };
        assert_eq!(d.bitfield(2, 7, &[0x80, 0x01]), Node::Raw("0x3".into()));
        assert_eq!(
            d.bitfield(64, 0, &[0xff; 8]),
            Node::Raw("0xffffffffffffffff".into())
        );
    }
}

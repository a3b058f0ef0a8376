//! `bpftool btf dump … format raw`: one entry per type, as bpftool's `dump_btf_type` prints
//! it in text (`[9] STRUCT 'kinds' size=56 vlen=11` and one indented line per member) and in
//! JSON (`{"types": [{"id": 9, "kind": "STRUCT", "name": "kinds", …}]}`).

use std::fmt::Write as _;

use crate::{BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, Btf, BtfKind, Node};

fn int_enc(e: u8) -> &'static str {
    match e {
        0 => "(none)",
        BTF_INT_SIGNED => "SIGNED",
        BTF_INT_CHAR => "CHAR",
        BTF_INT_BOOL => "BOOL",
        _ => "UNKN",
    }
}

fn var_linkage(l: u32) -> &'static str {
    match l {
        0 => "static",
        1 => "global",
        2 => "extern",
        _ => "(unknown)",
    }
}

fn func_linkage(l: u32) -> &'static str {
    var_linkage(l)
}

/// bpftool's `btf_str` for member and parameter names (an empty name is `(anon)`).
fn anon(s: &str) -> &str {
    if s.is_empty() { "(anon)" } else { s }
}

fn u(n: impl Into<u64>) -> Node {
    Node::Raw(n.into().to_string())
}

fn i(n: impl Into<i64>) -> Node {
    Node::Raw(n.into().to_string())
}

fn s(v: &str) -> Node {
    Node::Str(v.to_string())
}

impl Btf {
    /// bpftool's `btf_str` for a type's own name: `(anon)` when `name_off` is 0.
    fn raw_name(&self, id: u32) -> String {
        if self.name_off(id) == 0 {
            "(anon)".into()
        } else {
            self.types
                .get(id as usize)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        }
    }

    /// The ids `dump raw` prints: `roots`, or every type from 1 when `roots` is empty.
    fn raw_ids(&self, roots: &[u32]) -> Vec<u32> {
        if roots.is_empty() {
            // A split BTF prints its own types only (bpftool's `dump_btf_raw`).
            (self.start_id()..self.types.len() as u32).collect()
        } else {
            roots.to_vec()
        }
    }

    /// The text of `bpftool btf dump … format raw` (each type ends with a newline).
    pub fn dump_raw_text(&self, roots: &[u32]) -> String {
        let mut out = String::new();
        for id in self.raw_ids(roots) {
            let Ok(t) = self.type_by_id(id) else {
                let _ = writeln!(out, "[{id}] UNKNOWN '(invalid)'");
                continue;
            };
            let _ = write!(
                out,
                "[{id}] {} '{}'",
                raw_kind_name(&t.kind),
                self.raw_name(id)
            );
            match &t.kind {
                BtfKind::Void => {}
                BtfKind::Int {
                    size,
                    encoding,
                    offset,
                    bits,
                } => {
                    let _ = write!(
                        out,
                        " size={size} bits_offset={offset} nr_bits={bits} encoding={}",
                        int_enc(*encoding)
                    );
                }
                BtfKind::Ptr(x)
                | BtfKind::Const(x)
                | BtfKind::Volatile(x)
                | BtfKind::Restrict(x)
                | BtfKind::Typedef(x)
                | BtfKind::TypeTag(x) => {
                    let _ = write!(out, " type_id={x}");
                }
                BtfKind::Array {
                    elem,
                    index,
                    nelems,
                } => {
                    let _ = write!(
                        out,
                        " type_id={elem} index_type_id={index} nr_elems={nelems}"
                    );
                }
                BtfKind::Struct { size, members } | BtfKind::Union { size, members } => {
                    let _ = write!(out, " size={size} vlen={}", members.len());
                    for m in members {
                        let _ = write!(
                            out,
                            "\n\t'{}' type_id={} bits_offset={}",
                            anon(&m.name),
                            m.ty,
                            m.bit_offset
                        );
                        if m.bitfield_size != 0 {
                            let _ = write!(out, " bitfield_size={}", m.bitfield_size);
                        }
                    }
                }
                BtfKind::Enum {
                    size,
                    signed,
                    values,
                } => {
                    let enc = if *signed { "SIGNED" } else { "UNSIGNED" };
                    let _ = write!(out, " encoding={enc} size={size} vlen={}", values.len());
                    for e in values {
                        if *signed {
                            let _ = write!(out, "\n\t'{}' val={}", anon(&e.name), e.value as i32);
                        } else {
                            let _ = write!(out, "\n\t'{}' val={}", anon(&e.name), e.value as u32);
                        }
                    }
                }
                BtfKind::Enum64 {
                    size,
                    signed,
                    values,
                } => {
                    let enc = if *signed { "SIGNED" } else { "UNSIGNED" };
                    let _ = write!(out, " encoding={enc} size={size} vlen={}", values.len());
                    for e in values {
                        if *signed {
                            let _ = write!(out, "\n\t'{}' val={}LL", anon(&e.name), e.value);
                        } else {
                            let _ =
                                write!(out, "\n\t'{}' val={}ULL", anon(&e.name), e.value as u64);
                        }
                    }
                }
                BtfKind::Fwd { is_union } => {
                    let k = if *is_union { "union" } else { "struct" };
                    let _ = write!(out, " fwd_kind={k}");
                }
                BtfKind::Func { proto, linkage } => {
                    let _ = write!(out, " type_id={proto} linkage={}", func_linkage(*linkage));
                }
                BtfKind::FuncProto { ret, params } => {
                    let _ = write!(out, " ret_type_id={ret} vlen={}", params.len());
                    for p in params {
                        let _ = write!(out, "\n\t'{}' type_id={}", anon(&p.name), p.ty);
                    }
                }
                BtfKind::Var { ty, linkage } => {
                    let _ = write!(out, " type_id={ty}, linkage={}", var_linkage(*linkage));
                }
                BtfKind::Datasec { size, vars } => {
                    let _ = write!(out, " size={size} vlen={}", vars.len());
                    for v in vars {
                        let _ = write!(
                            out,
                            "\n\ttype_id={} offset={} size={}",
                            v.ty, v.offset, v.size
                        );
                        if let Ok(vt) = self.type_by_id(v.ty) {
                            let _ = write!(
                                out,
                                " ({} '{}')",
                                raw_kind_name(&vt.kind),
                                self.raw_name(v.ty)
                            );
                        }
                    }
                }
                BtfKind::Float { size } => {
                    let _ = write!(out, " size={size}");
                }
                BtfKind::DeclTag { ty, component_idx } => {
                    let _ = write!(out, " type_id={ty} component_idx={component_idx}");
                }
            }
            out.push('\n');
        }
        out
    }

    /// The JSON of `bpftool -j btf dump … format raw`: `{"types": [...]}`.
    pub fn dump_raw_json(&self, roots: &[u32]) -> Node {
        let mut types = Vec::new();
        for id in self.raw_ids(roots) {
            let Ok(t) = self.type_by_id(id) else { continue };
            let mut f: Vec<(String, Node)> = vec![
                ("id".into(), u(id)),
                ("kind".into(), s(raw_kind_name(&t.kind))),
                ("name".into(), Node::Str(self.raw_name(id))),
            ];
            let mut add = |k: &str, v: Node| f.push((k.to_string(), v));
            match &t.kind {
                BtfKind::Void => {}
                BtfKind::Int {
                    size,
                    encoding,
                    offset,
                    bits,
                } => {
                    add("size", u(*size));
                    add("bits_offset", u(*offset));
                    add("nr_bits", u(*bits));
                    add("encoding", s(int_enc(*encoding)));
                }
                BtfKind::Ptr(x)
                | BtfKind::Const(x)
                | BtfKind::Volatile(x)
                | BtfKind::Restrict(x)
                | BtfKind::Typedef(x)
                | BtfKind::TypeTag(x) => add("type_id", u(*x)),
                BtfKind::Array {
                    elem,
                    index,
                    nelems,
                } => {
                    add("type_id", u(*elem));
                    add("index_type_id", u(*index));
                    add("nr_elems", u(*nelems));
                }
                BtfKind::Struct { size, members } | BtfKind::Union { size, members } => {
                    add("size", u(*size));
                    add("vlen", u(members.len() as u64));
                    let ms = members
                        .iter()
                        .map(|m| {
                            let mut o = vec![
                                ("name".to_string(), s(anon(&m.name))),
                                ("type_id".into(), u(m.ty)),
                                ("bits_offset".into(), u(m.bit_offset)),
                            ];
                            if m.bitfield_size != 0 {
                                o.push(("bitfield_size".into(), u(m.bitfield_size)));
                            }
                            Node::Object(o)
                        })
                        .collect();
                    add("members", Node::Array(ms));
                }
                BtfKind::Enum {
                    size,
                    signed,
                    values,
                }
                | BtfKind::Enum64 {
                    size,
                    signed,
                    values,
                } => {
                    let is64 = matches!(t.kind, BtfKind::Enum64 { .. });
                    add("encoding", s(if *signed { "SIGNED" } else { "UNSIGNED" }));
                    add("size", u(*size));
                    add("vlen", u(values.len() as u64));
                    let vs = values
                        .iter()
                        .map(|e| {
                            let val = match (is64, *signed) {
                                (false, true) => i(e.value as i32),
                                // bpftool passes the s32 `val` to jsonw_uint_field: values
                                // above INT_MAX come out sign-extended to 64 bits.
                                (false, false) => u(e.value as u32 as i32 as i64 as u64),
                                (true, true) => i(e.value),
                                (true, false) => u(e.value as u64),
                            };
                            Node::Object(vec![
                                ("name".into(), s(anon(&e.name))),
                                ("val".into(), val),
                            ])
                        })
                        .collect();
                    add("values", Node::Array(vs));
                }
                BtfKind::Fwd { is_union } => {
                    add("fwd_kind", s(if *is_union { "union" } else { "struct" }))
                }
                BtfKind::Func { proto, linkage } => {
                    add("type_id", u(*proto));
                    add("linkage", s(func_linkage(*linkage)));
                }
                BtfKind::FuncProto { ret, params } => {
                    add("ret_type_id", u(*ret));
                    add("vlen", u(params.len() as u64));
                    let ps = params
                        .iter()
                        .map(|p| {
                            Node::Object(vec![
                                ("name".into(), s(anon(&p.name))),
                                ("type_id".into(), u(p.ty)),
                            ])
                        })
                        .collect();
                    add("params", Node::Array(ps));
                }
                BtfKind::Var { ty, linkage } => {
                    add("type_id", u(*ty));
                    add("linkage", s(var_linkage(*linkage)));
                }
                BtfKind::Datasec { size, vars } => {
                    add("size", u(*size));
                    add("vlen", u(vars.len() as u64));
                    let vs = vars
                        .iter()
                        .map(|v| {
                            Node::Object(vec![
                                ("type_id".into(), u(v.ty)),
                                ("offset".into(), u(v.offset)),
                                ("size".into(), u(v.size)),
                            ])
                        })
                        .collect();
                    add("vars", Node::Array(vs));
                }
                BtfKind::Float { size } => add("size", u(*size)),
                BtfKind::DeclTag { ty, component_idx } => {
                    add("type_id", u(*ty));
                    add("component_idx", i(*component_idx));
                }
            }
            types.push(Node::Object(f));
        }
        Node::Object(vec![("types".into(), Node::Array(types))])
    }
}

/// bpftool's `btf_kind_str` (void, never printed, is `UNKNOWN`).
fn raw_kind_name(k: &BtfKind) -> &'static str {
    match k {
        BtfKind::Void => "UNKNOWN",
        other => other.name(),
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::blob;
    use crate::{Btf, kind};

    fn info(k: u32, vlen: u32, kf: bool) -> u32 {
        (k << 24) | vlen | if kf { 1 << 31 } else { 0 }
    }

    #[test]
    fn text_like_bpftool() {
        let strings = b"\0int\0e\0A\0s\0x\0";
        let types = [
            1,
            info(kind::INT, 0, false),
            4,
            (1 << 24) | 32,
            5,
            info(kind::ENUM, 1, true),
            4,
            7,
            (-2i32) as u32,
            9,
            info(kind::STRUCT, 2, true),
            4,
            11,
            1,
            (3 << 24),
            0,
            1,
            3,
            0,
            info(kind::PTR, 0, false),
            3,
        ];
        let btf = Btf::parse(&blob(&types, strings)).unwrap();
        assert_eq!(
            btf.dump_raw_text(&[]),
            "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n\
             [2] ENUM 'e' encoding=SIGNED size=4 vlen=1\n\t'A' val=-2\n\
             [3] STRUCT 's' size=4 vlen=2\n\t'x' type_id=1 bits_offset=0 bitfield_size=3\n\t\
             '(anon)' type_id=1 bits_offset=3\n\
             [4] PTR '(anon)' type_id=3\n"
        );
        assert_eq!(btf.dump_raw_text(&[4]), "[4] PTR '(anon)' type_id=3\n");
    }
}

//! C declarations (libbpf's `btf_dump_emit_type_decl` / `btf_dump_emit_type_chain`): a
//! type chain turned inside out into C's declarator syntax (`int (*f[2])(void)`,
//! `const char *const p`), and the `___N` renaming of duplicate names.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{CDump, MAX_DEPTH};
use crate::{Btf, BtfKind, kind as k, kind_number};

impl CDump<'_> {
    /// `btf_dump_emit_type_decl`: `id` declared as `fname` in C syntax.
    pub(super) fn emit_type_decl(&mut self, mut id: u32, fname: &str, lvl: usize) {
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        let mut decls = Vec::new();
        loop {
            decls.push(id);
            if id == 0 || decls.len() > MAX_DEPTH {
                break;
            }
            match self.kind(id) {
                BtfKind::Ptr(t)
                | BtfKind::Volatile(t)
                | BtfKind::Const(t)
                | BtfKind::Restrict(t)
                | BtfKind::TypeTag(t) => id = *t,
                BtfKind::FuncProto { ret, .. } => id = *ret,
                BtfKind::Array { elem, .. } => id = *elem,
                _ => break,
            }
        }
        self.emit_type_chain(&mut decls, fname, lvl);
        self.depth -= 1;
    }

    fn is_mod(&self, id: u32) -> bool {
        matches!(
            self.kind(id),
            BtfKind::Volatile(_) | BtfKind::Const(_) | BtfKind::Restrict(_) | BtfKind::TypeTag(_)
        )
    }

    fn emit_mods(&mut self, decls: &mut Vec<u32>) {
        while let Some(&id) = decls.last() {
            let s = match self.kind(id) {
                BtfKind::Volatile(_) => "volatile ",
                BtfKind::Const(_) => "const ",
                BtfKind::Restrict(_) => "restrict ",
                _ => return,
            };
            self.out.push_str(s);
            decls.pop();
        }
    }

    fn drop_mods(&self, decls: &mut Vec<u32>) {
        while decls.last().is_some_and(|id| self.is_mod(*id)) {
            decls.pop();
        }
    }

    fn emit_name(&mut self, name: &str, last_was_ptr: bool) {
        if !name.is_empty() && !last_was_ptr {
            self.out.push(' ');
        }
        self.out.push_str(name);
    }

    /// `btf_dump_emit_type_chain`.
    fn emit_type_chain(&mut self, decls: &mut Vec<u32>, fname: &str, lvl: usize) {
        let mut last_was_ptr = true;
        while let Some(id) = decls.pop() {
            if id == 0 {
                self.emit_mods(decls);
                self.out.push_str("void");
                last_was_ptr = false;
                continue;
            }
            let kind = self.kind(id);
            match kind {
                BtfKind::Int { .. } | BtfKind::Float { .. } => {
                    self.emit_mods(decls);
                    self.out.push_str(self.name(id));
                }
                BtfKind::Struct { .. } | BtfKind::Union { .. } => {
                    self.emit_mods(decls);
                    if self.named(id) {
                        self.emit_struct_fwd(id);
                    } else {
                        self.emit_struct_def(id, lvl);
                    }
                }
                BtfKind::Enum { .. } | BtfKind::Enum64 { .. } => {
                    self.emit_mods(decls);
                    if self.named(id) {
                        let name = self.type_name(id);
                        let _ = write!(self.out, "enum {name}");
                    } else {
                        self.emit_enum_def(id, lvl);
                    }
                }
                BtfKind::Fwd { .. } => {
                    self.emit_mods(decls);
                    self.emit_fwd_def(id);
                }
                BtfKind::Typedef(_) => {
                    self.emit_mods(decls);
                    let name = self.ident_name(id);
                    self.out.push_str(&name);
                }
                BtfKind::Ptr(_) => self.out.push_str(if last_was_ptr { "*" } else { " *" }),
                BtfKind::Volatile(_) => self.out.push_str(" volatile"),
                BtfKind::Const(_) => self.out.push_str(" const"),
                BtfKind::Restrict(_) => self.out.push_str(" restrict"),
                BtfKind::TypeTag(_) => {
                    self.emit_mods(decls);
                    let _ = write!(
                        self.out,
                        " __attribute__((btf_type_tag(\"{}\")))",
                        self.name(id)
                    );
                }
                BtfKind::Array { nelems, .. } => {
                    self.drop_mods(decls);
                    let Some(&next) = decls.last() else {
                        self.emit_name(fname, last_was_ptr);
                        let _ = write!(self.out, "[{nelems}]");
                        return;
                    };
                    let multidim = matches!(self.kind(next), BtfKind::Array { .. });
                    if !fname.is_empty() && !last_was_ptr {
                        self.out.push(' ');
                    }
                    if !multidim {
                        self.out.push('(');
                    }
                    self.emit_type_chain(decls, fname, lvl);
                    if !multidim {
                        self.out.push(')');
                    }
                    let _ = write!(self.out, "[{nelems}]");
                    return;
                }
                BtfKind::FuncProto { params, .. } => {
                    self.drop_mods(decls);
                    if decls.is_empty() {
                        self.emit_name(fname, last_was_ptr);
                    } else {
                        self.out.push_str(" (");
                        self.emit_type_chain(decls, fname, lvl);
                        self.out.push(')');
                    }
                    self.out.push('(');
                    if params.is_empty() || (params.len() == 1 && params[0].ty == 0) {
                        self.out.push_str("void)");
                        return;
                    }
                    for (i, p) in params.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        if i == params.len() - 1 && p.ty == 0 {
                            self.out.push_str("...");
                            break;
                        }
                        self.emit_type_decl(p.ty, &p.name, lvl);
                    }
                    self.out.push(')');
                    return;
                }
                _ => return,
            }
            last_was_ptr = kind_number(kind) == k::PTR;
        }
        self.emit_name(fname, last_was_ptr);
    }

    pub(super) fn type_name(&mut self, id: u32) -> String {
        self.resolve_name(id, false)
    }

    pub(super) fn ident_name(&mut self, id: u32) -> String {
        self.resolve_name(id, true)
    }

    /// `btf_dump_resolve_name`: the name, suffixed `___N` from its second definition on.
    fn resolve_name(&mut self, id: u32, ident: bool) -> String {
        if !self.named(id) {
            return String::new();
        }
        let orig = self.name(id).to_string();
        let i = id as usize;
        if self.st[i].name_resolved {
            return self.cached[i].clone().unwrap_or(orig);
        }
        self.st[i].name_resolved = true;
        let no_dedup = match self.kind(id) {
            BtfKind::Fwd { .. } => true,
            BtfKind::Enum { values, .. } => values.is_empty(),
            _ => false,
        };
        if no_dedup {
            return orig;
        }
        let map = if ident {
            &mut self.ident_names
        } else {
            &mut self.type_names
        };
        let dups = name_dups(map, &orig);
        if dups > 1 {
            self.cached[i] = Some(format!("{orig}___{dups}"));
        }
        self.cached[i].clone().unwrap_or(orig)
    }
}

pub(super) fn name_dups(map: &mut HashMap<String, usize>, name: &str) -> usize {
    let n = map.entry(name.to_string()).or_insert(0);
    *n += 1;
    *n
}

/// libbpf's `determine_ptr_size`: the size of a `long` INT, else 8 (x86-64's pointers).
pub(super) fn pointer_size(btf: &Btf) -> u32 {
    const LONGS: [&str; 11] = [
        "long",
        "long int",
        "int long",
        "unsigned long",
        "long unsigned",
        "unsigned long int",
        "unsigned int long",
        "long unsigned int",
        "long int unsigned",
        "int unsigned long",
        "int long unsigned",
    ];
    btf.types()
        .iter()
        .find_map(|t| match t.kind {
            BtfKind::Int { size, .. }
                if (size == 4 || size == 8) && LONGS.contains(&t.name.as_str()) =>
            {
                Some(size)
            }
            _ => None,
        })
        .unwrap_or(8)
}

//! BTF as compilable C, the way libbpf's `btf_dump` writes it (what `bpftool btf dump …
//! format c` prints between its `vmlinux.h` guards).
//!
//! Two passes per requested type, as libbpf: a topological ordering in which a type that is
//! embedded (no pointer on the path, or anonymous) must be defined before its user, while a
//! pointer only needs a forward declaration; then emission in that order, with forward
//! declarations where a cycle goes through a pointer, anonymous structs/unions/enums inlined
//! where used, duplicate names suffixed `___N`, bitfields and explicit padding (`long: 64;`)
//! where natural alignment would not reproduce the recorded offsets, and
//! `__attribute__((packed))` for structs whose layout cannot be natural.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::{Btf, BtfError, BtfKind};

/// How deep the emitter may recurse (hostile BTF with pointer cycles would loop forever in
/// libbpf; here it is an error).
const MAX_DEPTH: usize = 256;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Order {
    #[default]
    NotOrdered,
    Ordering,
    Ordered,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Emit {
    #[default]
    NotEmitted,
    Emitting,
    Emitted,
}

#[derive(Clone, Copy, Default)]
struct St {
    order: Order,
    emit: Emit,
    fwd_emitted: bool,
    name_resolved: bool,
    referenced: bool,
}

/// A C dumper over one BTF (libbpf's `struct btf_dump`): types already emitted by an earlier
/// [`CDump::dump_type`] are not emitted again.
pub struct CDump<'a> {
    btf: &'a Btf,
    out: String,
    ptr_sz: u32,
    st: Vec<St>,
    cached: Vec<Option<String>>,
    type_names: HashMap<String, usize>,
    ident_names: HashMap<String, usize>,
    queue: Vec<u32>,
    depth: usize,
}

fn pfx(lvl: usize) -> &'static str {
    const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t";
    &TABS[..lvl.min(TABS.len())]
}

impl<'a> CDump<'a> {
    /// A dumper for `btf` (pointer size from its `long`, else 8).
    pub fn new(btf: &'a Btf) -> CDump<'a> {
        let n = btf.types().len();
        let mut d = CDump {
            btf,
            out: String::new(),
            ptr_sz: pointer_size(btf),
            st: vec![St::default(); n],
            cached: vec![None; n],
            type_names: HashMap::new(),
            ident_names: HashMap::new(),
            queue: Vec::new(),
            depth: 0,
        };
        d.mark_referenced();
        d
    }

    /// What was written so far.
    pub fn output(&self) -> &str {
        &self.out
    }

    /// `btf_dump__dump_type`: `id` and every type it needs, in a compilable order.
    pub fn dump_type(&mut self, id: u32) -> Result<(), BtfError> {
        if id as usize >= self.st.len() {
            return Err(BtfError::BadTypeId(id));
        }
        self.queue.clear();
        self.depth = 0;
        self.order_type(id, false)?;
        let queue = std::mem::take(&mut self.queue);
        for q in queue {
            self.depth = 0;
            self.emit_type(q, 0);
        }
        Ok(())
    }

    fn kind(&self, id: u32) -> &'a BtfKind {
        static VOID: BtfKind = BtfKind::Void;
        self.btf.types().get(id as usize).map_or(&VOID, |t| &t.kind)
    }

    fn name(&self, id: u32) -> &'a str {
        self.btf
            .types()
            .get(id as usize)
            .map_or("", |t| t.name.as_str())
    }

    fn named(&self, id: u32) -> bool {
        self.btf.name_off(id) != 0
    }

    fn mark_referenced(&mut self) {
        let mut refs = Vec::new();
        for t in self.btf.types().iter().skip(1) {
            match &t.kind {
                BtfKind::Volatile(x)
                | BtfKind::Const(x)
                | BtfKind::Restrict(x)
                | BtfKind::Ptr(x)
                | BtfKind::Typedef(x)
                | BtfKind::TypeTag(x)
                | BtfKind::Func { proto: x, .. }
                | BtfKind::Var { ty: x, .. }
                | BtfKind::DeclTag { ty: x, .. } => refs.push(*x),
                BtfKind::Array { elem, index, .. } => refs.extend([*index, *elem]),
                BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => {
                    refs.extend(members.iter().map(|m| m.ty))
                }
                BtfKind::FuncProto { params, .. } => refs.extend(params.iter().map(|p| p.ty)),
                BtfKind::Datasec { vars, .. } => refs.extend(vars.iter().map(|v| v.ty)),
                _ => {}
            }
        }
        for r in refs {
            if let Some(s) = self.st.get_mut(r as usize) {
                s.referenced = true;
            }
        }
    }

    /// `btf_dump_order_type`: true when `id` is part of a strong link (must be fully defined).
    fn order_type(&mut self, id: u32, through_ptr: bool) -> Result<bool, BtfError> {
        self.depth += 1;
        let r = self.order_inner(id, through_ptr);
        self.depth -= 1;
        r
    }

    fn order_inner(&mut self, id: u32, through_ptr: bool) -> Result<bool, BtfError> {
        if self.depth > MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        let Some(state) = self.st.get(id as usize).map(|s| s.order) else {
            return Err(BtfError::BadTypeId(id));
        };
        if state == Order::Ordered {
            return Ok(true);
        }
        let kind = self.kind(id);
        if state == Order::Ordering {
            let composite = matches!(kind, BtfKind::Struct { .. } | BtfKind::Union { .. });
            if composite && through_ptr && self.named(id) {
                return Ok(false);
            }
            // libbpf: "unsatisfiable type cycle" (-ELOOP).
            return Err(BtfError::TooDeep(id));
        }
        let set = |d: &mut Self, o| d.st[id as usize].order = o;
        match kind {
            BtfKind::Void => Ok(false),
            BtfKind::Int { .. } | BtfKind::Float { .. } => {
                set(self, Order::Ordered);
                Ok(false)
            }
            BtfKind::Ptr(t) => {
                let r = self.order_type(*t, true)?;
                set(self, Order::Ordered);
                Ok(r)
            }
            BtfKind::Array { elem, .. } => self.order_type(*elem, false),
            BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => {
                if through_ptr && self.named(id) {
                    return Ok(false);
                }
                set(self, Order::Ordering);
                for m in members {
                    self.order_type(m.ty, false)?;
                }
                if self.named(id) {
                    self.queue.push(id);
                }
                set(self, Order::Ordered);
                Ok(true)
            }
            BtfKind::Enum { .. } | BtfKind::Enum64 { .. } | BtfKind::Fwd { .. } => {
                if self.named(id) || !self.st[id as usize].referenced {
                    self.queue.push(id);
                }
                set(self, Order::Ordered);
                Ok(true)
            }
            BtfKind::Typedef(t) => {
                let strong = self.order_type(*t, through_ptr)?;
                if through_ptr && !strong {
                    return Ok(false);
                }
                self.queue.push(id);
                set(self, Order::Ordered);
                Ok(true)
            }
            BtfKind::Volatile(t)
            | BtfKind::Const(t)
            | BtfKind::Restrict(t)
            | BtfKind::TypeTag(t) => self.order_type(*t, through_ptr),
            BtfKind::FuncProto { ret, params } => {
                let mut strong = self.order_type(*ret, through_ptr)?;
                for p in params {
                    strong |= self.order_type(p.ty, through_ptr)?;
                }
                Ok(strong)
            }
            BtfKind::Func { .. }
            | BtfKind::Var { .. }
            | BtfKind::Datasec { .. }
            | BtfKind::DeclTag { .. } => {
                set(self, Order::Ordered);
                Ok(false)
            }
        }
    }

    fn is_blacklisted(&self, id: u32) -> bool {
        self.named(id) && self.name(id) == "__builtin_va_list"
    }

    /// `btf_dump_emit_type`: the definitions `id` needs, then `id` itself when top-level.
    fn emit_type(&mut self, id: u32, cont_id: u32) {
        if self.depth > MAX_DEPTH || id as usize >= self.st.len() {
            return;
        }
        self.depth += 1;
        self.emit_type_inner(id, cont_id);
        self.depth -= 1;
    }

    fn emit_type_inner(&mut self, id: u32, cont_id: u32) {
        let top = cont_id == 0;
        let s = self.st[id as usize];
        if s.emit == Emit::Emitted {
            return;
        }
        let kind = self.kind(id);
        if s.emit == Emit::Emitting {
            if s.fwd_emitted {
                return;
            }
            match kind {
                BtfKind::Struct { .. } | BtfKind::Union { .. } => {
                    if id == cont_id || !self.named(id) {
                        return;
                    }
                    self.emit_struct_fwd(id);
                    self.out.push_str(";\n\n");
                    self.st[id as usize].fwd_emitted = true;
                }
                BtfKind::Typedef(_) => {
                    if !self.is_blacklisted(id) {
                        self.emit_typedef_def(id, 0);
                        self.out.push_str(";\n\n");
                    }
                    self.st[id as usize].fwd_emitted = true;
                }
                _ => {}
            }
            return;
        }
        match kind {
            BtfKind::Int { .. } => self.st[id as usize].emit = Emit::Emitted,
            BtfKind::Enum { .. } | BtfKind::Enum64 { .. } => {
                if top {
                    self.emit_enum_def(id, 0);
                    self.out.push_str(";\n\n");
                }
                self.st[id as usize].emit = Emit::Emitted;
            }
            BtfKind::Ptr(t)
            | BtfKind::Volatile(t)
            | BtfKind::Const(t)
            | BtfKind::Restrict(t)
            | BtfKind::TypeTag(t) => self.emit_type(*t, cont_id),
            BtfKind::Array { elem, .. } => self.emit_type(*elem, cont_id),
            BtfKind::Fwd { .. } => {
                self.emit_fwd_def(id);
                self.out.push_str(";\n\n");
                self.st[id as usize].emit = Emit::Emitted;
            }
            BtfKind::Typedef(t) => {
                self.st[id as usize].emit = Emit::Emitting;
                self.emit_type(*t, id);
                if !self.st[id as usize].fwd_emitted && !self.is_blacklisted(id) {
                    self.emit_typedef_def(id, 0);
                    self.out.push_str(";\n\n");
                }
                self.st[id as usize].emit = Emit::Emitted;
            }
            BtfKind::Struct { members, .. } | BtfKind::Union { members, .. } => {
                self.st[id as usize].emit = Emit::Emitting;
                if top || !self.named(id) {
                    let new_cont = if self.named(id) { id } else { cont_id };
                    for m in members {
                        self.emit_type(m.ty, new_cont);
                    }
                } else if !self.st[id as usize].fwd_emitted && id != cont_id {
                    self.emit_struct_fwd(id);
                    self.out.push_str(";\n\n");
                    self.st[id as usize].fwd_emitted = true;
                }
                if top {
                    self.emit_struct_def(id, 0);
                    self.out.push_str(";\n\n");
                    self.st[id as usize].emit = Emit::Emitted;
                } else {
                    self.st[id as usize].emit = Emit::NotEmitted;
                }
            }
            BtfKind::FuncProto { ret, params } => {
                self.emit_type(*ret, cont_id);
                for p in params {
                    self.emit_type(p.ty, cont_id);
                }
            }
            _ => {}
        }
    }

    /// libbpf's `btf__align_of` (0 for kinds without an alignment).
    fn align_of(&self, id: u32, depth: usize) -> u32 {
        if depth > MAX_DEPTH {
            return 0;
        }
        match self.kind(id) {
            BtfKind::Int { size, .. }
            | BtfKind::Enum { size, .. }
            | BtfKind::Enum64 { size, .. }
            | BtfKind::Float { size } => self.ptr_sz.min(*size),
            BtfKind::Ptr(_) => self.ptr_sz,
            BtfKind::Typedef(t)
            | BtfKind::Volatile(t)
            | BtfKind::Const(t)
            | BtfKind::Restrict(t)
            | BtfKind::TypeTag(t) => self.align_of(*t, depth + 1),
            BtfKind::Array { elem, .. } => self.align_of(*elem, depth + 1),
            BtfKind::Struct { size, members } | BtfKind::Union { size, members } => {
                let mut max = 1;
                for m in members {
                    let a = self.align_of(m.ty, depth + 1);
                    if a == 0 {
                        return 0;
                    }
                    max = max.max(a);
                    if m.bitfield_size == 0 && m.bit_offset % (8 * a) != 0 {
                        return 1;
                    }
                }
                if size % max != 0 { 1 } else { max }
            }
            _ => 0,
        }
    }

    fn is_struct_packed(&self, id: u32) -> bool {
        let BtfKind::Struct { size, members } = self.kind(id) else {
            return false;
        };
        let mut max = 1;
        for m in members {
            let a = self.align_of(m.ty, 0);
            if a != 0 && m.bitfield_size == 0 && m.bit_offset % (8 * a) != 0 {
                return true;
            }
            max = max.max(a);
        }
        size % max.max(1) != 0
    }

    /// `btf_dump_emit_bit_padding`.
    fn emit_bit_padding(
        &mut self,
        cur: u32,
        next: u32,
        next_align: u32,
        in_bitfield: bool,
        lvl: usize,
    ) {
        let mut cur = u64::from(cur);
        let next = u64::from(next);
        if cur >= next {
            return;
        }
        let pads: [(&str, u64); 4] = [
            ("long", u64::from(self.ptr_sz) * 8),
            ("int", 32),
            ("short", 16),
            ("char", 8),
        ];
        let (mut pad_type, mut pad_bits, mut new_off) = ("char", 8, 0);
        for (name, bits) in pads {
            pad_type = name;
            pad_bits = bits;
            new_off = cur.div_ceil(bits) * bits;
            if new_off <= next {
                break;
            }
        }
        if new_off > cur && new_off <= next {
            let align_bits = u64::from(next_align) * 8;
            let aligned = if align_bits == 0 {
                cur
            } else {
                cur.div_ceil(align_bits) * align_bits
            };
            if in_bitfield
                || (new_off == next && aligned != new_off)
                || (new_off != next && next - new_off <= new_off - cur)
            {
                let n = if in_bitfield { new_off - cur } else { 0 };
                let _ = write!(self.out, "\n{}{pad_type}: {n};", pfx(lvl));
            }
            cur = new_off;
        }
        while cur != next {
            let bits = (next - cur).min(pad_bits);
            if bits == pad_bits {
                let _ = write!(self.out, "\n{}{pad_type}: {pad_bits};", pfx(lvl));
                cur += bits;
                continue;
            }
            for (name, pb) in pads.iter().rev() {
                if *pb < bits {
                    continue;
                }
                let _ = write!(self.out, "\n{}{name}: {bits};", pfx(lvl));
                cur += bits;
                break;
            }
        }
    }

    fn emit_struct_fwd(&mut self, id: u32) {
        let kw = if matches!(self.kind(id), BtfKind::Struct { .. }) {
            "struct"
        } else {
            "union"
        };
        let sep = if self.named(id) { " " } else { "" };
        let name = self.type_name(id);
        let _ = write!(self.out, "{kw}{sep}{name}");
    }

    fn emit_struct_def(&mut self, id: u32, lvl: usize) {
        let (is_struct, size, members) = match self.kind(id) {
            BtfKind::Struct { size, members } => (true, *size, members),
            BtfKind::Union { size, members } => (false, *size, members),
            _ => return,
        };
        let align = self.align_of(id, 0);
        let packed = is_struct && self.is_struct_packed(id);
        self.emit_struct_fwd(id);
        self.out.push_str(" {");
        let (mut off, mut prev_bitfield) = (0u32, false);
        for m in members {
            let m_align = if packed { 1 } else { self.align_of(m.ty, 0) };
            let in_bitfield = prev_bitfield && m.bitfield_size != 0;
            self.emit_bit_padding(off, m.bit_offset, m_align, in_bitfield, lvl + 1);
            let _ = write!(self.out, "\n{}", pfx(lvl + 1));
            self.emit_type_decl(m.ty, &m.name, lvl + 1);
            if m.bitfield_size != 0 {
                let _ = write!(self.out, ": {}", m.bitfield_size);
                off = m.bit_offset.saturating_add(m.bitfield_size);
                prev_bitfield = true;
            } else {
                let sz = self.btf.resolve_size(m.ty).unwrap_or(0);
                off = u32::try_from(u64::from(m.bit_offset) + sz * 8).unwrap_or(u32::MAX);
                prev_bitfield = false;
            }
            self.out.push(';');
        }
        if is_struct {
            self.emit_bit_padding(off, size.saturating_mul(8), align, false, lvl + 1);
        }
        if !members.is_empty() || size != 0 {
            let _ = write!(self.out, "\n{}}}", pfx(lvl));
        } else {
            self.out.push('}');
        }
        if packed {
            self.out.push_str(" __attribute__((packed))");
        }
    }

    fn emit_enum_def(&mut self, id: u32, lvl: usize) {
        let (size, signed, values, is64) = match self.kind(id) {
            BtfKind::Enum {
                size,
                signed,
                values,
            } => (*size, *signed, values, false),
            BtfKind::Enum64 {
                size,
                signed,
                values,
            } => (*size, *signed, values, true),
            _ => return,
        };
        let sep = if self.named(id) { " " } else { "" };
        let name = self.type_name(id);
        let _ = write!(self.out, "enum{sep}{name}");
        if values.is_empty() {
            return;
        }
        self.out.push_str(" {");
        for e in values {
            let dups = name_dups(&mut self.ident_names, &e.name);
            let n = if dups > 1 {
                format!("{}___{dups}", e.name)
            } else {
                e.name.clone()
            };
            let v = match (is64, signed) {
                (false, true) => (e.value as i32).to_string(),
                (false, false) => (e.value as u32).to_string(),
                (true, true) => format!("{}LL", e.value),
                (true, false) => format!("{}ULL", e.value as u64),
            };
            let _ = write!(self.out, "\n{}{n} = {v},", pfx(lvl + 1));
        }
        let _ = write!(self.out, "\n{}}}", pfx(lvl));
        // libbpf 1.1 (bpftool 7.1) writes no `mode(byte)`/`mode(word)` for 1- and 8-byte
        // enums (later libbpf does); the size is not used otherwise.
        let _ = size;
    }

    fn emit_fwd_def(&mut self, id: u32) {
        let kw = match self.kind(id) {
            BtfKind::Fwd { is_union: true } => "union",
            _ => "struct",
        };
        let name = self.type_name(id);
        let _ = write!(self.out, "{kw} {name}");
    }

    fn emit_typedef_def(&mut self, id: u32, lvl: usize) {
        let name = self.ident_name(id);
        let target = match self.kind(id) {
            BtfKind::Typedef(t) => *t,
            _ => 0,
        };
        if target == 0 && name == "__gnuc_va_list" {
            self.out
                .push_str("typedef __builtin_va_list __gnuc_va_list");
            return;
        }
        self.out.push_str("typedef ");
        self.emit_type_decl(target, &name, lvl);
    }
}

impl Btf {
    /// The C declarations of `roots` (every type when empty) and what they need, in libbpf's
    /// order, without bpftool's `vmlinux.h` guards.
    pub fn dump_c(&self, roots: &[u32]) -> Result<String, BtfError> {
        let mut d = CDump::new(self);
        if roots.is_empty() {
            for id in 1..self.types().len() as u32 {
                d.dump_type(id)?;
            }
        } else {
            for &id in roots {
                d.dump_type(id)?;
            }
        }
        Ok(d.out)
    }
}

mod decl;

use decl::{name_dups, pointer_size};

#[cfg(test)]
mod tests;

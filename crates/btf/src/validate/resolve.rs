//! The resolve pass of the kernel's BTF checks (`btf_check_all_types`): every type that
//! refers to others is resolved depth-first (modifiers, typedefs and pointers to their
//! targets, arrays to their element and index types, structs and unions to their members,
//! variables to their types, sections to their variables), with the kernel's loop and depth
//! limits, and each kind's resolve-time checks; then function prototypes and functions.

use super::{E2BIG, EINVAL, LoadError, MAX_DEPTH, Ty, V, u32_at};
use crate::kind as k;

/// `EEXIST`: the kernel's resolver reports a loop with it.
use kbpf_uapi::errno::EEXIST;

/// The kernel's resolve modes: which referenced types a resolution stops at (its "sinks").
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing seen yet: stops at types that need no resolving (int, enum, void, …).
    Tbd,
    /// Under a pointer: stops at anything but modifiers and pointers.
    Ptr,
    /// Under a struct, union or array: stops at anything but modifiers, arrays and structs
    /// (so pointer members do not recurse).
    StructOrArray,
}

fn is_modifier(kind: u32) -> bool {
    matches!(
        kind,
        k::TYPEDEF | k::VOLATILE | k::CONST | k::RESTRICT | k::TYPE_TAG
    )
}

/// `btf_type_needs_resolve`.
fn needs_resolve(kind: u32) -> bool {
    is_modifier(kind)
        || matches!(
            kind,
            k::PTR | k::STRUCT | k::UNION | k::ARRAY | k::VAR | k::FUNC | k::DECL_TAG | k::DATASEC
        )
}

fn mode_for(kind: u32) -> Mode {
    match kind {
        k::PTR => Mode::Ptr,
        k::STRUCT | k::UNION | k::ARRAY => Mode::StructOrArray,
        _ => Mode::Tbd,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Resolving,
    Done,
}

struct R<'v, 'a> {
    v: &'v V<'a>,
    state: Vec<State>,
    /// The type the pass started from: the kernel reports loops and depth against it.
    top: u32,
}

impl V<'_> {
    fn ty(&self, id: u32) -> Option<&Ty> {
        if id == 0 {
            return None;
        }
        self.tys.get(id as usize - 1)
    }

    fn kind_of(&self, id: u32) -> u32 {
        self.ty(id).map_or(0, |t| t.kind)
    }

    /// VAR, DATASEC and DECL_TAG may only be referred to by DATASECs (and nothing).
    fn source_only(&self, id: u32) -> bool {
        matches!(self.kind_of(id), k::VAR | k::DATASEC | k::DECL_TAG)
    }

    /// `btf_type_id_size`: the size through modifiers, typedefs and arrays; `None` for
    /// types without one (void, FWD, FUNC, FUNC_PROTO, VAR, DECL_TAG) or a chain too deep.
    pub(super) fn size_of(&self, mut id: u32) -> Option<u64> {
        let mut mult: u64 = 1;
        for _ in 0..MAX_DEPTH * 2 {
            let t = self.ty(id)?;
            match t.kind {
                k::INT | k::ENUM | k::ENUM64 | k::FLOAT | k::STRUCT | k::UNION | k::DATASEC => {
                    return u64::from(t.size_or_type).checked_mul(mult);
                }
                k::PTR => return 8u64.checked_mul(mult),
                k::TYPEDEF | k::VOLATILE | k::CONST | k::RESTRICT | k::TYPE_TAG => {
                    id = t.size_or_type
                }
                k::ARRAY => {
                    mult = mult.checked_mul(u64::from(u32_at(self.types, t.extra + 8)))?;
                    id = u32_at(self.types, t.extra);
                }
                _ => return None,
            }
        }
        None
    }

    pub(super) fn check_all_types(&self) -> Result<(), LoadError> {
        let mut r = R {
            v: self,
            state: vec![State::New; self.tys.len() + 1],
            top: 0,
        };
        for id in 1..=self.tys.len() as u32 {
            r.top = id;
            r.resolve(id, 0, mode_for(self.kind_of(id)))?;
            if self.kind_of(id) == k::FUNC_PROTO {
                self.check_proto(id)?;
            }
        }
        Ok(())
    }

    /// `btf_func_proto_check`.
    fn check_proto(&self, id: u32) -> Result<(), LoadError> {
        let t = &self.tys[id as usize - 1];
        let ret = t.size_or_type;
        if ret != 0
            && (self.ty(ret).is_none() || self.source_only(ret) || self.size_of(ret).is_none())
        {
            return self.err_type(id, EINVAL, "Invalid return type");
        }
        let mut n = t.vlen as usize;
        if n == 0 {
            return Ok(());
        }
        let last = t.extra + (n - 1) * 8;
        if u32_at(self.types, last + 4) == 0 {
            if u32_at(self.types, last) != 0 {
                return self.err_type(id, EINVAL, &format!("Invalid arg#{n}"));
            }
            n -= 1;
        }
        for i in 0..n {
            let (name, ty) = (
                u32_at(self.types, t.extra + i * 8),
                u32_at(self.types, t.extra + i * 8 + 4),
            );
            let bad = self.ty(ty).is_none()
                || self.source_only(ty)
                || (name != 0 && (!self.name_off_valid(name) || !self.ident_ok(name)))
                || self.size_of(ty).is_none();
            if bad {
                return self.err_type(id, EINVAL, &format!("Invalid arg#{}", i + 1));
            }
        }
        Ok(())
    }
}

impl R<'_, '_> {
    /// Resolves a referenced type unless it is a sink of the current mode (the kernel's
    /// `env_type_is_resolve_sink`); the first pointer, struct or array sets the mode.
    fn visit(&mut self, next: u32, depth: usize, mode: Mode) -> Result<(), LoadError> {
        if next == 0 {
            return Ok(());
        }
        let kind = self.v.kind_of(next);
        let sink = match mode {
            Mode::Tbd => !needs_resolve(kind),
            Mode::Ptr => !is_modifier(kind) && kind != k::PTR,
            Mode::StructOrArray => {
                !is_modifier(kind) && !matches!(kind, k::ARRAY | k::STRUCT | k::UNION)
            }
        };
        if sink {
            return Ok(());
        }
        let mode = if mode == Mode::Tbd {
            mode_for(kind)
        } else {
            mode
        };
        self.resolve(next, depth + 1, mode)
    }

    fn resolve(&mut self, id: u32, depth: usize, mode: Mode) -> Result<(), LoadError> {
        if id == 0 {
            return Ok(());
        }
        match self.state.get(id as usize) {
            Some(State::Done) | None => return Ok(()),
            Some(State::Resolving) => return self.v.err_type(self.top, EEXIST, "Loop detected"),
            Some(State::New) => {}
        }
        if depth > MAX_DEPTH {
            return self.v.err_type(
                self.top,
                E2BIG,
                &format!("Exceeded max resolving depth:{MAX_DEPTH}"),
            );
        }
        self.state[id as usize] = State::Resolving;
        let v = self.v;
        let t = &v.tys[id as usize - 1];
        let invalid = |msg: &str| v.err_type::<()>(id, EINVAL, msg);
        match t.kind {
            k::PTR | k::TYPEDEF | k::VOLATILE | k::CONST | k::RESTRICT | k::TYPE_TAG => {
                let next = t.size_or_type;
                if next != 0 && (v.ty(next).is_none() || v.source_only(next)) {
                    return invalid("Invalid type_id");
                }
                self.visit(next, depth, mode)?;
                if next != 0
                    && v.size_of(next).is_none()
                    && !matches!(v.kind_of(skip_mods(v, next)), 0 | k::FWD | k::FUNC_PROTO)
                {
                    return invalid("Invalid type_id");
                }
            }
            k::ARRAY => {
                let (elem, index) = (u32_at(v.types, t.extra), u32_at(v.types, t.extra + 4));
                let nelems = u64::from(u32_at(v.types, t.extra + 8));
                if v.ty(index).is_none() || v.source_only(index) {
                    return invalid("Invalid index");
                }
                self.visit(index, depth, mode)?;
                if v.size_of(index).is_none() || v.kind_of(skip_mods(v, index)) != k::INT {
                    return invalid("Invalid index");
                }
                if v.ty(elem).is_none() || v.source_only(elem) {
                    return invalid("Invalid elem");
                }
                self.visit(elem, depth, mode)?;
                let Some(esize) = v.size_of(elem) else {
                    return invalid("Invalid elem");
                };
                if nelems
                    .checked_mul(esize)
                    .is_none_or(|s| s > u64::from(u32::MAX))
                {
                    return invalid("Array size overflows U32_MAX");
                }
            }
            k::STRUCT | k::UNION => {
                let size = u64::from(t.size_or_type);
                for i in 0..t.vlen as usize {
                    let at = t.extra + i * 12;
                    let (mty, moff) = (u32_at(v.types, at + 4), u32_at(v.types, at + 8));
                    let member = |msg: &str| invalid(&format!("member {i}: {msg}"));
                    if v.ty(mty).is_none() || v.source_only(mty) {
                        return member("Invalid member");
                    }
                    self.visit(mty, depth, mode)?;
                    let Some(msize) = v.size_of(mty) else {
                        return member("Invalid member");
                    };
                    let (bit_off, bits) = if t.kflag {
                        (u64::from(moff & 0x00ff_ffff), u64::from(moff >> 24))
                    } else {
                        (u64::from(moff), 0)
                    };
                    if bits != 0 {
                        if bits > msize * 8 {
                            return member("Invalid member bitfield_size");
                        }
                        if bit_off + bits > size * 8 {
                            return member("Member exceeds struct_size");
                        }
                    } else {
                        let is_int = v.kind_of(skip_mods(v, mty)) == k::INT;
                        if bit_off % 8 != 0 && !is_int {
                            return member("Member is not byte aligned");
                        }
                        if bit_off / 8 + msize > size && !(is_int && bit_off % 8 != 0) {
                            return member("Member exceeds struct_size");
                        }
                    }
                }
            }
            k::VAR => {
                let ty = t.size_or_type;
                if v.ty(ty).is_none() || v.source_only(ty) {
                    return invalid("Invalid type_id");
                }
                self.visit(ty, depth, mode)?;
                if v.size_of(ty).is_none() {
                    return invalid("Invalid type_id");
                }
            }
            k::DATASEC => {
                for i in 0..t.vlen as usize {
                    let at = t.extra + i * 12;
                    let (vty, vsz) = (u32_at(v.types, at), u64::from(u32_at(v.types, at + 8)));
                    let vsi = |msg: &str| invalid(&format!("type_id={vty} {msg}"));
                    if v.kind_of(vty) != k::VAR {
                        return vsi("Not a VAR kind member");
                    }
                    self.visit(vty, depth, mode)?;
                    let inner = v.tys[vty as usize - 1].size_or_type;
                    match v.size_of(inner) {
                        None => return vsi("Invalid type"),
                        Some(s) if vsz < s => return vsi("Invalid size"),
                        Some(_) => {}
                    }
                }
            }
            k::FUNC => {
                let proto = t.size_or_type;
                if v.kind_of(proto) != k::FUNC_PROTO {
                    return invalid("Invalid type_id");
                }
                let p = &v.tys[proto as usize - 1];
                let n = p.vlen as usize;
                for i in 0..n {
                    let ty = u32_at(v.types, p.extra + i * 8 + 4);
                    if ty == 0 && i + 1 != n {
                        return invalid(&format!("Invalid arg#{}", i + 1));
                    }
                }
            }
            k::DECL_TAG => {
                let target = t.size_or_type;
                let idx = u32_at(v.types, t.extra) as i32;
                let tk = v.kind_of(target);
                if !matches!(tk, k::STRUCT | k::UNION | k::FUNC | k::VAR | k::TYPEDEF) {
                    return invalid("Invalid type");
                }
                if idx != -1 {
                    let tt = &v.tys[target as usize - 1];
                    let n = match tk {
                        k::STRUCT | k::UNION => tt.vlen,
                        k::FUNC => v.ty(tt.size_or_type).map_or(0, |p| p.vlen),
                        _ => 0,
                    };
                    if idx < 0 || idx as u32 >= n {
                        return invalid("Invalid component_idx");
                    }
                }
            }
            _ => {}
        }
        self.state[id as usize] = State::Done;
        Ok(())
    }
}

/// Through typedefs, modifiers and type tags (bounded).
fn skip_mods(v: &V<'_>, mut id: u32) -> u32 {
    for _ in 0..MAX_DEPTH {
        match v.ty(id) {
            Some(t)
                if matches!(
                    t.kind,
                    k::TYPEDEF | k::VOLATILE | k::CONST | k::RESTRICT | k::TYPE_TAG
                ) =>
            {
                id = t.size_or_type
            }
            _ => return id,
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use crate::tests::blob;
    use crate::validate::validate;
    use crate::{BTF_MAGIC, kind};

    fn info(k: u32, vlen: u32, kf: bool) -> u32 {
        (k << 24) | vlen | if kf { 1 << 31 } else { 0 }
    }

    fn err(types: &[u32], strings: &[u8]) -> String {
        validate(&blob(types, strings)).unwrap_err().log
    }

    #[test]
    fn good_blob_passes() {
        // [1] int, [2] struct s { int a; }, [3] ptr -> s, [4] typedef t -> [3]
        let strings = b"\0int\0s\0a\0t\0";
        let types = [
            1,
            info(kind::INT, 0, false),
            4,
            (1 << 24) | 32,
            5,
            info(kind::STRUCT, 1, false),
            4,
            7,
            1,
            0,
            0,
            info(kind::PTR, 0, false),
            2,
            9,
            info(kind::TYPEDEF, 0, false),
            3,
        ];
        validate(&blob(&types, strings)).unwrap();
    }

    #[test]
    fn header_and_strings() {
        let mut b = blob(&[1, info(kind::INT, 0, false), 4, 32], b"\0int\0");
        b[0] = 0;
        assert_eq!(validate(&b).unwrap_err().log, "Invalid magic");
        let mut b = blob(&[1, info(kind::INT, 0, false), 4, 32], b"\0int\0");
        b[3] = 1;
        assert_eq!(validate(&b).unwrap_err().errno, 524);
        // Strings must start and end with NUL.
        assert_eq!(
            err(&[1, info(kind::INT, 0, false), 4, 32], b"xint\0"),
            "Invalid string section"
        );
        // A gap after the header.
        let mut b = blob(&[1, info(kind::INT, 0, false), 4, 32], b"\0int\0");
        b.extend_from_slice(&[0; 4]);
        assert_eq!(validate(&b).unwrap_err().log, "Unsupported section found");
        assert_eq!(
            validate(&BTF_MAGIC.to_le_bytes()).unwrap_err().log,
            "hdr_len not found"
        );
    }

    #[test]
    fn metas() {
        assert_eq!(
            err(&[0, info(25, 0, false), 0], b"\0"),
            "[1] Invalid kind:25"
        );
        assert_eq!(
            err(&[99, info(kind::INT, 0, false), 4, 32], b"\0"),
            "[1] Invalid name_offset:99"
        );
        assert_eq!(
            err(&[1, info(kind::STRUCT, 0, false), 4], b"\x001bad\0"),
            "[1] STRUCT 1bad Invalid name"
        );
        assert_eq!(
            err(&[1, info(kind::INT, 0, false), 1, 32], b"\0int\0"),
            "[1] INT int nr_bits exceeds type_size"
        );
        assert_eq!(
            err(&[1, info(kind::DATASEC, 0, false), 0], b"\0.data\0"),
            "[1] DATASEC .data size == 0"
        );
        assert_eq!(
            err(&[1, info(kind::FUNC, 2, false), 0], b"\0f\0"),
            "[1] FUNC f Invalid func linkage"
        );
    }

    #[test]
    fn resolve_checks() {
        // A typedef loop.
        let strings = b"\0a\0b\0";
        let types = [
            1,
            info(kind::TYPEDEF, 0, false),
            2,
            3,
            info(kind::TYPEDEF, 0, false),
            1,
        ];
        let e = validate(&blob(&types, strings)).unwrap_err();
        assert_eq!(
            (e.errno, e.log.as_str()),
            (17, "[1] TYPEDEF a Loop detected")
        );
        // A member past the end of its struct.
        let strings = b"\0int\0s\0a\0";
        let types = [
            1,
            info(kind::INT, 0, false),
            4,
            (1 << 24) | 32,
            5,
            info(kind::STRUCT, 1, false),
            4,
            7,
            1,
            64,
        ];
        assert_eq!(
            err(&types, strings),
            "[2] STRUCT s member 0: Member bits_offset exceeds its struct size"
        );
        let types = [
            1,
            info(kind::INT, 0, false),
            4,
            (1 << 24) | 32,
            5,
            info(kind::STRUCT, 1, false),
            6,
            7,
            1,
            24,
        ];
        assert_eq!(
            err(&types, strings),
            "[2] STRUCT s member 0: Member exceeds struct_size"
        );
        // A type id past the end.
        let types = [0, info(kind::PTR, 0, false), 7];
        assert_eq!(err(&types, b"\0"), "[1] PTR  Invalid type_id");
        // FUNC must point at a FUNC_PROTO.
        let types = [
            1,
            info(kind::INT, 0, false),
            4,
            32,
            5,
            info(kind::FUNC, 0, false),
            1,
        ];
        assert_eq!(err(&types, b"\0int\0f\0"), "[2] FUNC f Invalid type_id");
    }
}

#[cfg(test)]
mod vmlinux {
    /// The running kernel's own BTF passes the checks (when the file exists): every kind the
    /// kernel produces, 100k+ types.
    #[test]
    fn running_kernels_btf_is_valid() {
        let Ok(b) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            println!("SKIP: no /sys/kernel/btf/vmlinux");
            return;
        };
        if let Err(e) = crate::validate::validate(&b) {
            panic!("{e}");
        }
    }
}

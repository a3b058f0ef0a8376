//! Split BTF: a blob whose types and strings continue a base BTF's (kernel modules' BTF in
//! `/sys/kernel/btf/<module>` on top of vmlinux), as libbpf's `btf__parse_split` reads it.
//!
//! A split blob's first type has id `base.len()` (the base's type count, `void` included) and
//! its string offsets start at the base's string-section size: a name offset below that names
//! a base string. The parsed [`Btf`] holds the base's types and strings followed by the split
//! ones, so every id and offset resolves as is; [`Btf::start_id`] tells where the blob's own
//! types start, which is where bpftool's raw dump starts (its C dump covers every type).

use crate::{Btf, BtfError};

impl Btf {
    /// Parses `data` as split BTF on top of `base` (libbpf's `btf__parse_split` of a raw
    /// blob; the header checks are [`Btf::parse`]'s).
    pub fn parse_split(data: &[u8], base: &Btf) -> Result<Btf, BtfError> {
        // The blob alone: its header, section bounds and string section (type parsing needs
        // the base's names, so it is redone below).
        let own = Btf::parse_header(data)?;
        let mut btf = base.clone();
        btf.start_id = base.types.len() as u32;
        btf.strings.extend_from_slice(&own.strings);
        let shift = btf.types_raw.len();
        let first = btf.type_offsets.len();
        btf.parse_types(&own.types_raw)?;
        for off in &mut btf.type_offsets[first..] {
            *off += shift;
        }
        btf.types_raw.extend_from_slice(&own.types_raw);
        Ok(btf)
    }

    /// The first id of this blob's own types: 1, or the base's type count for split BTF.
    pub fn start_id(&self) -> u32 {
        self.start_id
    }

    /// Whether this is split BTF (types continuing a base's).
    pub fn is_split(&self) -> bool {
        self.start_id > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BtfKind, kind};

    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let tl = (types.len() * 4) as u32;
        let mut v = vec![0x9f, 0xeb, 1, 0];
        for w in [24, 0, tl, tl, strings.len() as u32] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        for t in types {
            v.extend_from_slice(&t.to_le_bytes());
        }
        v.extend_from_slice(strings);
        v
    }

    #[test]
    fn split_types_continue_the_base() {
        // Base: [1] int.
        let base = Btf::parse(&blob(&[1, kind::INT << 24, 4, (1 << 24) | 32], b"\0int\0")).unwrap();
        // Split, strings from offset 5: [2] typedef my_int -> 1, [3] const -> 2, [4] a typedef
        // named by a base string ("int" at 1).
        let split = blob(
            &[
                5,
                kind::TYPEDEF << 24,
                1,
                0,
                kind::CONST << 24,
                2,
                1,
                kind::TYPEDEF << 24,
                3,
            ],
            b"my_int\0",
        );
        let b = Btf::parse_split(&split, &base).unwrap();
        assert!(b.is_split());
        assert_eq!(b.start_id(), 2);
        assert_eq!(b.len(), 5);
        assert_eq!(b.type_by_id(2).unwrap().name, "my_int");
        assert_eq!(b.type_by_id(4).unwrap().name, "int");
        assert_eq!(b.type_by_id(3).unwrap().kind, BtfKind::Const(2));
        assert_eq!(b.resolve_size(4).unwrap(), 4);
        // Raw dump: the split types only.
        let text = b.dump_raw_text(&[]);
        assert!(
            text.starts_with("[2] TYPEDEF 'my_int' type_id=1\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3);
        // A name offset past both string sections is refused.
        let bad = blob(&[50, kind::TYPEDEF << 24, 1], b"x\0");
        assert!(Btf::parse_split(&bad, &base).is_err());
    }
}

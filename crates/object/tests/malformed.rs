//! Malformed and unsupported input: every case is a clear error naming the section,
//! symbol or map — never a panic. Ends with a proptest that mutates real objects.

use kbpf_object::btf::BtfError;
use kbpf_object::{BpfObject, MapError, ObjectError};
use object::{Object, ObjectSection};
use proptest::prelude::*;

fn read(rel: &str) -> Vec<u8> {
    let p = format!("{}/../../tests/objects/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// File offset and size of a section.
fn section_range(data: &[u8], name: &str) -> (usize, usize) {
    let f = object::File::parse(data).unwrap();
    let s = f
        .section_by_name(name)
        .unwrap_or_else(|| panic!("no section {name}"));
    let (off, size) = s.file_range().unwrap();
    (off as usize, size as usize)
}

fn put_u32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn truncated_elf() {
    let data = read("subprog.bpf.o");
    for len in [0, 3, 16, 63, 64, 200, data.len() / 2, data.len() - 1] {
        let r = BpfObject::parse(&data[..len], "subprog");
        assert!(r.is_err(), "truncated to {len} parsed");
    }
    assert!(matches!(
        BpfObject::parse(&data[..40], "x"),
        Err(ObjectError::Elf(_))
    ));
}

#[test]
fn not_bpf_machine() {
    let mut data = read("subprog.bpf.o");
    data[18] = 62; // EM_X86_64
    data[19] = 0;
    assert_eq!(
        BpfObject::parse(&data, "x").unwrap_err(),
        ObjectError::NotBpf { machine: 62 }
    );
}

#[test]
fn bad_section_header_offsets() {
    let mut data = read("subprog.bpf.o");
    // e_shoff beyond the file.
    let len = data.len() as u64;
    data[0x28..0x30].copy_from_slice(&(len + 4096).to_le_bytes());
    let e = BpfObject::parse(&data, "x").unwrap_err();
    assert!(matches!(e, ObjectError::Elf(_)), "{e}");
}

#[test]
fn corrupted_btf_header() {
    let mut data = read("aom_inner_map.bpf.o");
    let (off, _) = section_range(&data, ".BTF");
    data[off] = 0x00; // magic
    let e = BpfObject::parse(&data, "x").unwrap_err();
    assert!(
        matches!(&e, ObjectError::Btf { section, source: BtfError::BadMagic(_) } if section == ".BTF"),
        "{e}"
    );
    assert!(e.to_string().contains(".BTF"));

    let mut data = read("aom_inner_map.bpf.o");
    let (off, _) = section_range(&data, ".BTF");
    put_u32(&mut data, off + 12, 0x7fff_0000); // type_len far beyond the section
    let e = BpfObject::parse(&data, "x").unwrap_err();
    assert!(
        matches!(
            &e,
            ObjectError::Btf {
                source: BtfError::OutOfBounds {
                    what: "type section",
                    ..
                },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn corrupted_btf_type_section() {
    let mut data = read("aom_inner_map.bpf.o");
    let (off, _) = section_range(&data, ".BTF");
    let hdr_len = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap()) as usize;
    let type_off = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
    // Type [1]'s info word: set the kind to 31.
    let info = off + hdr_len + type_off + 4;
    data[info + 3] = 31;
    let e = BpfObject::parse(&data, "x").unwrap_err();
    assert_eq!(
        e,
        ObjectError::Btf {
            section: ".BTF".into(),
            source: BtfError::UnknownKind { id: 1, kind: 31 }
        }
    );
}

#[test]
fn corrupted_btf_ext() {
    let mut data = read("subprog.bpf.o");
    let (off, _) = section_range(&data, ".BTF.ext");
    // line_info_len far beyond the section.
    put_u32(&mut data, off + 20, 0x00ff_ffff);
    let e = BpfObject::parse(&data, "x").unwrap_err();
    assert!(
        e.to_string().contains(".BTF.ext") && e.to_string().contains("line_info"),
        "{e}"
    );
}

#[test]
fn relocation_to_missing_symbol() {
    let mut data = read("subprog.bpf.o");
    let (off, size) = section_range(&data, ".reltc");
    assert!(size >= 16);
    // Elf64_Rel { r_offset: u64, r_info: u64 = sym << 32 | type }: point at symbol 9999.
    let r_info = (9999u64 << 32) | 10;
    data[off + 8..off + 16].copy_from_slice(&r_info.to_le_bytes());
    let e = BpfObject::parse(&data, "x").unwrap_err();
    match &e {
        ObjectError::Relocation {
            section,
            symbol,
            reason,
            ..
        } => {
            assert_eq!(section, ".reltc");
            assert_eq!(symbol, "#9999");
            assert!(reason.contains("missing symbol"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn relocation_to_extern() {
    let e = BpfObject::parse(&read("malformed/extern_ref.bpf.o"), "extern_ref").unwrap_err();
    assert!(
        matches!(&e, ObjectError::Relocation { section, symbol, .. } if section == ".relxdp" && symbol == "not_defined_anywhere"),
        "{e}"
    );
}

#[test]
fn unsupported_map_type_number() {
    let e = BpfObject::parse(&read("malformed/bad_map_type.bpf.o"), "bad").unwrap_err();
    assert_eq!(
        e,
        ObjectError::Map(MapError::UnsupportedType {
            map: "weird".into(),
            map_type: 99
        })
    );
}

#[test]
fn inner_template_that_is_map_in_map() {
    let e = BpfObject::parse(&read("malformed/nested_map_in_map.bpf.o"), "n").unwrap_err();
    assert_eq!(
        e,
        ObjectError::Map(MapError::NestedMapInMap {
            map: "nested".into(),
            inner_type: 13
        })
    );
    assert!(e.to_string().contains("'nested'"));
}

#[test]
fn call_into_the_middle_of_a_function() {
    let mut data = read("subprog.bpf.o");
    let (off, _) = section_range(&data, "xdp");
    // Insn 1 of xdp is `call sum_squares` (imm relative to .text start); shift it by one.
    let imm_off = off + 8 + 4;
    let imm = i32::from_le_bytes(data[imm_off..imm_off + 4].try_into().unwrap());
    data[imm_off..imm_off + 4].copy_from_slice(&(imm + 1).to_le_bytes());
    let e = BpfObject::parse(&data, "x").unwrap_err();
    assert!(
        matches!(&e, ObjectError::Link { program, .. } if program == "xdp_subprogs"),
        "{e}"
    );
}

/// Objects the fuzzing starts from, with the byte range of their `.BTF` and `.BTF.ext`.
fn seeds() -> Vec<(Vec<u8>, (usize, usize))> {
    [
        "subprog.bpf.o",
        "aom_inner_map.bpf.o",
        "global_data.bpf.o",
        "core_relo.bpf.o",
    ]
    .iter()
    .map(|n| {
        let d = read(n);
        let (b, _) = section_range(&d, ".BTF");
        let (e, es) = section_range(&d, ".BTF.ext");
        (d, (b.min(e), b.max(e + es)))
    })
    .collect()
}

/// Exercises the read side of a parsed object the way a loader would.
fn touch(o: &BpfObject) {
    for p in &o.programs {
        for s in &p.subprogs {
            let _ = o.func_prototype(p, s.start);
        }
        let _ = p.line_info_covering(p.insns.len());
    }
    if let Some(btf) = &o.btf {
        for m in &o.maps {
            if let Some(d) = &m.data {
                let _ = btf.format_value(m.btf_value_type_id, d);
            }
            let zeros = vec![0u8; m.value_size.min(4096) as usize];
            let _ = btf.format_value(m.btf_value_type_id, &zeros);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn mutated_objects_never_panic(
        which in 0usize..4,
        muts in prop::collection::vec((any::<bool>(), any::<u32>(), any::<u8>()), 1..12),
        cut in prop::option::weighted(0.2, any::<u32>()),
    ) {
        let seeds = seeds();
        let (data, (bstart, bend)) = &seeds[which];
        let mut d = data.clone();
        for (in_btf, pos, val) in muts {
            // Half the mutations hit BTF / .BTF.ext, where the parser does the most work.
            let i = if in_btf {
                bstart + pos as usize % (bend - bstart)
            } else {
                pos as usize % d.len()
            };
            d[i] = val;
        }
        if let Some(c) = cut {
            d.truncate(c as usize % d.len());
        }
        if let Ok(o) = BpfObject::parse(&d, "fuzz") {
            touch(&o);
        }
    }
}

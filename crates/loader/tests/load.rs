//! Loading the corpus objects into kbpf: maps against expectations from the C sources,
//! relocations against the registry, map reuse, and error reporting.

use std::path::{Path, PathBuf};

use kbpf_isa::insn::{BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};
use kbpf_loader::{LoadError, LoadOptions, LoadedObject, load_object};
use kbpf_maps::uapi::BPF_F_INNER_MAP;
use kbpf_maps::{Errno, Map, MapAttr, MapType, Registry};
use kbpf_object::{BpfObject, RelocKind};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/objects")
        .join(name)
}

fn open(name: &str) -> BpfObject {
    BpfObject::open(corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Slot value of an outer map: the inner map's id, or None when empty.
fn slot(outer: &Map, idx: u32) -> Option<u32> {
    outer
        .lookup_elem(&idx.to_ne_bytes())
        .ok()
        .map(|v| u32::from_ne_bytes(v.try_into().expect("4-byte outer value")))
}

/// Every map relocation carries a live registry fd of the right map, in the kernel's form,
/// and nothing else changed.
fn check_relocations(obj: &BpfObject, loaded: &LoadedObject, reg: &Registry) -> usize {
    let mut n = 0;
    for (p, lp) in obj.programs.iter().zip(&loaded.programs) {
        assert_eq!(p.name, lp.name);
        assert_eq!(p.insns.len(), lp.insns.len(), "{}", p.name);
        assert_eq!(lp.prog_type, p.prog_type());
        assert_eq!(lp.line_info, p.line_info);
        assert_eq!(lp.func_info, p.func_info);
        let mut touched = std::collections::BTreeSet::new();
        let mut fds = std::collections::BTreeSet::new();
        for r in &p.relocations {
            let (map, src, second) = match r.kind {
                RelocKind::MapFd { map } => (map, BPF_PSEUDO_MAP_FD, 0),
                RelocKind::MapValue { map, offset } => (map, BPF_PSEUDO_MAP_VALUE, offset as i32),
                _ => continue,
            };
            let insn = lp.insns[r.insn_idx];
            assert!(insn.is_ld_imm64(), "{}: insn {}", p.name, r.insn_idx);
            assert_eq!(insn.src(), src, "{}: insn {}", p.name, r.insn_idx);
            assert_eq!(insn.dst(), p.insns[r.insn_idx].dst());
            let fd = u32::try_from(insn.imm).expect("fd is non-negative");
            let m = reg
                .map(fd)
                .unwrap_or_else(|e| panic!("{}: insn {}: {e}", p.name, r.insn_idx));
            assert_eq!(m.name(), obj.maps[map].kernel_name(), "{}", r.symbol);
            assert!(m.ptr_eq(&loaded.maps[map].map));
            assert_eq!(lp.insns[r.insn_idx + 1].imm, second, "{}", r.symbol);
            touched.insert(r.insn_idx);
            touched.insert(r.insn_idx + 1);
            fds.insert(fd);
            n += 1;
        }
        assert_eq!(
            lp.map_fds_used,
            fds.iter().copied().collect::<Vec<_>>(),
            "{}",
            p.name
        );
        // Bound maps: exactly the `.rodata*` maps the instructions do not reference.
        let rodata: std::collections::BTreeSet<u32> = loaded
            .maps
            .iter()
            .filter(|m| {
                obj.maps[m.index].origin
                    == kbpf_object::MapOrigin::GlobalData(kbpf_object::maps::GlobalDataKind::Rodata)
            })
            .map(|m| m.fd)
            .collect();
        assert_eq!(
            lp.bound_map_fds,
            rodata.difference(&fds).copied().collect::<Vec<_>>(),
            "{}",
            p.name
        );
        // CO-RE relocations patch their instructions too (checked on their own below).
        for r in &p.core_relos {
            touched.insert(r.insn_idx);
            touched.insert(r.insn_idx + 1);
        }
        for (i, (a, b)) in p.insns.iter().zip(&lp.insns).enumerate() {
            if !touched.contains(&i) {
                assert_eq!(a, b, "{}: insn {i} changed", p.name);
            }
        }
    }
    n
}

/// Every object bpftool can load also loads in kbpf, and the relocations check out.
#[test]
fn corpus_objects_load_and_relocate() {
    let mut total_relocs = 0;
    let mut loaded_objects = 0;
    for name in [
        "aom_inner_map.bpf.o",
        "aom_plain.bpf.o",
        "bounded_loop.bpf.o",
        "btf_kinds.bpf.o",
        "core_relo.bpf.o",
        "global_data.bpf.o",
        "hom_slots.bpf.o",
        "map_types.bpf.o",
        "multi_prog.bpf.o",
        "subprog.bpf.o",
        // Not loadable by bpftool, but nothing kbpf-specific stops them here.
        "legacy_maps.bpf.o",
        "pinned.bpf.o",
        "newer_sections.bpf.o",
    ] {
        let obj = open(name);
        let reg = Registry::new();
        let loaded = load_object(&obj, &reg, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded.maps.len(), obj.maps.len());
        assert_eq!(loaded.programs.len(), obj.programs.len());
        for (def, lm) in obj.maps.iter().zip(&loaded.maps) {
            let m = &lm.map;
            assert_eq!(m.name(), def.kernel_name(), "{name}");
            assert_eq!(m.map_type().raw(), def.map_type, "{name}: {}", def.name);
            assert_eq!(m.key_size(), def.key_size, "{name}: {}", def.name);
            assert_eq!(m.value_size(), def.value_size, "{name}: {}", def.name);
            assert_eq!(m.max_entries(), def.max_entries, "{name}: {}", def.name);
            assert_eq!(m.map_flags(), def.map_flags, "{name}: {}", def.name);
            assert!(!lm.reused);
            assert!(reg.map(lm.fd).expect("open fd").ptr_eq(m));
        }
        // Templates are gone: only the object's maps are alive in the registry.
        let live: Vec<String> = reg.maps().into_iter().map(|i| i.name).collect();
        assert_eq!(live.len(), obj.maps.len(), "{name}: live maps {live:?}");
        assert!(!live.iter().any(|n| n.ends_with(".inner")), "{live:?}");
        total_relocs += check_relocations(&obj, &loaded, &reg);
        loaded_objects += 1;
        loaded.close(&reg);
        // All descriptors closed: the lowest free fd is 3 again.
        assert_eq!(reg.add_other(), 3, "{name}: leaked descriptors");
    }
    assert_eq!(loaded_objects, 13);
    assert!(total_relocs >= 20, "only {total_relocs} map relocations");
}

#[test]
fn array_of_maps_slots_and_template() {
    let obj = open("aom_inner_map.bpf.o");
    let reg = Registry::new();
    let loaded = load_object(&obj, &reg, &LoadOptions::default()).unwrap();
    let outer = &loaded.map("outer").unwrap().map;
    let a = &loaded.map("inner_a").unwrap().map;
    let b = &loaded.map("inner_b").unwrap().map;
    assert_eq!(slot(outer, 0), Some(a.id()));
    assert_eq!(slot(outer, 1), None);
    assert_eq!(slot(outer, 2), Some(b.id()));
    // The template (4 entries, BPF_F_INNER_MAP) shaped the meta: inner_b has 16 entries.
    let meta = outer.inner_map_meta().expect("outer has a meta");
    assert_eq!(meta.desc().max_entries, 4);
    assert_eq!(meta.desc().map_flags, BPF_F_INNER_MAP);
    // Program relocation of `outer` carries its fd.
    let p = &loaded.programs[0];
    assert!(p.map_fds_used.contains(&loaded.map("outer").unwrap().fd));
}

#[test]
fn hash_of_maps_slots() {
    let obj = open("hom_slots.bpf.o");
    let reg = Registry::new();
    let loaded = load_object(&obj, &reg, &LoadOptions::default()).unwrap();
    let services = &loaded.map("services").unwrap().map;
    assert_eq!(services.map_type(), MapType::HashOfMaps);
    assert_eq!(
        slot(services, 0),
        Some(loaded.map("backend_a").unwrap().map.id())
    );
    assert_eq!(
        slot(services, 3),
        Some(loaded.map("backend_b").unwrap().map.id())
    );
    assert_eq!(services.elem_count(), 2);
}

#[test]
fn global_data_contents_and_frozen_rodata() {
    let obj = open("global_data.bpf.o");
    let reg = Registry::new();
    let loaded = load_object(&obj, &reg, &LoadOptions::default()).unwrap();
    let mut checked = 0;
    for def in &obj.maps {
        let lm = loaded.map(&def.name).unwrap();
        let value = lm.map.lookup_elem(&0u32.to_ne_bytes()).unwrap();
        match &def.data {
            Some(d) => assert_eq!(&value[..d.len()], &d[..], "{}", def.name),
            None => assert!(value.iter().all(|&b| b == 0), "{}: .bss not zero", def.name),
        }
        assert_eq!(lm.frozen, def.name.contains(".rodata"), "{}", def.name);
        checked += 1;
    }
    assert_eq!(checked, 5);
    // `.data` holds something non-zero, so the write is observable.
    let data = obj.map("global_d.data").unwrap().data.clone().unwrap();
    assert!(data.iter().any(|&b| b != 0));
    // MapValue relocations carry their offsets; at least one is non-zero (several
    // variables share `.rodata`).
    let offsets: Vec<u32> = obj
        .programs
        .iter()
        .flat_map(|p| &p.relocations)
        .filter_map(|r| match r.kind {
            RelocKind::MapValue { offset, .. } => Some(offset),
            _ => None,
        })
        .collect();
    assert!(
        offsets.len() >= 3 && offsets.iter().any(|&o| o != 0),
        "{offsets:?}"
    );
}

#[test]
fn reuse_compatible_map_is_used_as_is() {
    let obj = open("aom_inner_map.bpf.o");
    let reg = Registry::new();
    // Same shape as inner_a (ARRAY 4/4/4, BPF_F_INNER_MAP), different name, with content.
    let existing = Map::create(
        &MapAttr::new(MapType::Array, 4, 4, 4)
            .flags(BPF_F_INNER_MAP)
            .name("pinned_a"),
        None,
    )
    .unwrap();
    existing
        .update_elem(&1u32.to_ne_bytes(), &77u32.to_ne_bytes(), 0)
        .unwrap();
    let loaded = load_object(
        &obj,
        &reg,
        &LoadOptions::default().reuse_map("inner_a", existing.clone()),
    )
    .unwrap();
    let a = loaded.map("inner_a").unwrap();
    assert!(a.reused);
    assert!(a.map.ptr_eq(&existing));
    assert_eq!(a.kernel_name, "pinned_a");
    // The reused map went into the outer's slot 0 and kept its contents.
    assert_eq!(
        slot(&loaded.map("outer").unwrap().map, 0),
        Some(existing.id())
    );
    assert_eq!(
        existing.lookup_elem(&1u32.to_ne_bytes()).unwrap(),
        77u32.to_ne_bytes()
    );
    // And programs referring to inner_a (by index) carry the reused map's fd.
    check_relocations(&obj, &loaded, &reg);
}

#[test]
fn reuse_of_global_data_skips_initial_contents() {
    let obj = open("global_data.bpf.o");
    let idx = obj.map_index("global_d.data").unwrap();
    let def = &obj.maps[idx];
    let existing = Map::create(
        &MapAttr::new(MapType::Array, 4, def.value_size, 1).flags(def.map_flags),
        None,
    )
    .unwrap();
    let reg = Registry::new();
    let loaded = load_object(
        &obj,
        &reg,
        &LoadOptions::default().reuse_map_index(idx, existing.clone()),
    )
    .unwrap();
    assert!(loaded.maps[idx].reused);
    let v = existing.lookup_elem(&0u32.to_ne_bytes()).unwrap();
    assert!(
        v.iter().all(|&b| b == 0),
        "reused map was overwritten: {v:?}"
    );
}

#[test]
fn reuse_incompatible_map_is_refused() {
    let obj = open("hom_slots.bpf.o");
    let cases: [(MapAttr, &str); 4] = [
        (MapAttr::new(MapType::Array, 4, 8, 64), "map type"),
        (MapAttr::new(MapType::Hash, 8, 8, 64), "key size"),
        (MapAttr::new(MapType::Hash, 4, 8, 65), "max_entries"),
        (
            MapAttr::new(MapType::Hash, 4, 8, 64).flags(kbpf_maps::uapi::BPF_F_NO_PREALLOC),
            "map flags",
        ),
    ];
    for (attr, field) in cases {
        let existing = Map::create(&attr.name("other"), None).unwrap();
        let reg = Registry::new();
        let err = load_object(
            &obj,
            &reg,
            &LoadOptions::default().reuse_map("backend_a", existing),
        )
        .unwrap_err();
        match &err {
            LoadError::ReuseIncompatible { map, field: f, .. } => {
                assert_eq!(map, "backend_a");
                assert_eq!(*f, field);
            }
            other => panic!("expected ReuseIncompatible, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("'backend_a'") && msg.contains(field), "{msg}");
        assert_eq!(reg.add_other(), 3, "descriptors leaked after a failed load");
    }
    let err = load_object(
        &obj,
        &Registry::new(),
        &LoadOptions::default().reuse_map(
            "nope",
            Map::create(&MapAttr::new(MapType::Hash, 4, 8, 64), None).unwrap(),
        ),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "load option names map 'nope', which the object does not define"
    );
}

#[test]
fn rejected_map_names_the_map_with_einval() {
    let mut obj = open("bounded_loop.bpf.o");
    // An ARRAY with an 8-byte key: array_map_alloc_check says EINVAL.
    obj.maps[0].key_size = 8;
    let reg = Registry::new();
    let err = load_object(&obj, &reg, &LoadOptions::default()).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EINVAL));
    assert_eq!(err.map(), Some("checksum"));
    let msg = err.to_string();
    assert!(
        msg.contains("map 'checksum'") && msg.contains("Invalid argument"),
        "{msg}"
    );
    assert!(matches!(err, LoadError::MapCreate { .. }));

    // A later map failing closes the descriptors of the earlier ones.
    let mut obj = open("hom_slots.bpf.o");
    obj.maps[2].max_entries = 0;
    let reg = Registry::new();
    let err = load_object(&obj, &reg, &LoadOptions::default()).unwrap_err();
    assert_eq!(err.map(), Some("services"));
    assert_eq!(err.errno(), Some(Errno::EINVAL));
    assert_eq!(reg.add_other(), 3);
    assert_eq!(reg.maps().len(), 0, "maps of the failed load still alive");
}

#[test]
fn template_and_slot_errors() {
    // A bad template is reported against the outer and the template.
    let mut obj = open("aom_inner_map.bpf.o");
    obj.maps[2].inner.as_mut().unwrap().key_size = 2;
    let err = load_object(&obj, &Registry::new(), &LoadOptions::default()).unwrap_err();
    match &err {
        LoadError::InnerTemplate {
            map,
            template,
            source,
        } => {
            assert_eq!(map, "outer");
            assert_eq!(template, "outer.inner");
            assert_eq!(source.errno, Errno::EINVAL);
        }
        other => panic!("{other:?}"),
    }

    // Without BPF_F_INNER_MAP on the template, the 16-entry inner_b does not fit slot 2.
    let mut obj = open("aom_inner_map.bpf.o");
    let inner = obj.maps[2].inner.as_mut().unwrap();
    inner.map_flags = 0;
    obj.maps[0].map_flags = 0;
    obj.maps[1].map_flags = 0;
    let err = load_object(&obj, &Registry::new(), &LoadOptions::default()).unwrap_err();
    match &err {
        LoadError::Slot {
            map,
            slot,
            target,
            source,
        } => {
            assert_eq!(
                (map.as_str(), *slot, target.as_str()),
                ("outer", 2, "inner_b")
            );
            assert_eq!(source.errno, Errno::EINVAL);
        }
        other => panic!("{other:?}"),
    }

    // A slot naming something that is not a map.
    let mut obj = open("hom_slots.bpf.o");
    obj.maps[2].initial_slots[1].1 = "ghost".into();
    let err = load_object(&obj, &Registry::new(), &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, LoadError::SlotTarget { map, slot: 3, target } if map == "services" && target == "ghost"),
        "{err:?}"
    );
}

#[test]
fn outer_without_template_needs_an_inner_map() {
    let mut obj = open("hom_slots.bpf.o");
    obj.maps[2].inner = None;
    let err = load_object(&obj, &Registry::new(), &LoadOptions::default()).unwrap_err();
    assert_eq!(
        err,
        LoadError::MissingInnerMap {
            map: "services".into()
        }
    );
    let template = Map::create(&MapAttr::new(MapType::Hash, 4, 8, 1), None).unwrap();
    let reg = Registry::new();
    let loaded = load_object(
        &obj,
        &reg,
        &LoadOptions::default().inner_map("services", template),
    )
    .unwrap();
    let services = &loaded.map("services").unwrap().map;
    assert_eq!(services.elem_count(), 2);

    // An inner map for a map that is not a map-in-map is refused.
    let template = Map::create(&MapAttr::new(MapType::Hash, 4, 8, 1), None).unwrap();
    let err = load_object(
        &obj,
        &Registry::new(),
        &LoadOptions::default().inner_map("backend_a", template),
    )
    .unwrap_err();
    assert_eq!(
        err,
        LoadError::NotMapInMap {
            map: "backend_a".into()
        }
    );
}

#[test]
fn prog_array_slots_wait_for_programs() {
    let mut obj = open("bounded_loop.bpf.o");
    // Turn the one ARRAY into a PROG_ARRAY whose slot 1 names the object's program.
    let prog = obj.programs[0].name.clone();
    let m = &mut obj.maps[0];
    m.map_type = kbpf_maps::uapi::BPF_MAP_TYPE_PROG_ARRAY;
    m.value_size = 4;
    m.max_entries = 4;
    m.initial_slots = vec![(1, prog.clone())];
    let reg = Registry::new();
    let loaded = load_object(&obj, &reg, &LoadOptions::default()).unwrap();
    assert_eq!(
        loaded.pending_prog_slots,
        vec![kbpf_loader::ProgSlot {
            map: "checksum".into(),
            slot: 1,
            program: prog,
        }]
    );
    assert_eq!(loaded.maps[0].map.map_type(), MapType::ProgArray);
    assert_eq!(loaded.maps[0].map.elem_count(), 0);
}

#[test]
fn selector_out_of_range_is_named() {
    let obj = open("bounded_loop.bpf.o");
    let m = Map::create(&MapAttr::new(MapType::Array, 4, 4, 1), None).unwrap();
    let err = load_object(
        &obj,
        &Registry::new(),
        &LoadOptions::default().reuse_map_index(9, m),
    )
    .unwrap_err();
    assert_eq!(
        err,
        LoadError::UnknownMap {
            selector: "#9".into()
        }
    );
}

/// CO-RE against a kernel BTF: a field of a type the kernel lacks poisons its instruction
/// (libbpf's `bpf_core_poison_insn`: `call 0xbad2310`), an existence check resolves to 0,
/// and a field the kernel has resolves to its real value. The target here is the kernel
/// BTF of the object's own types' absence: any vmlinux lacks `kbpf_no_such_struct`.
#[test]
fn core_relocations_resolve_or_poison_like_libbpf() {
    let Ok(vmlinux) = kbpf_object::core::load_vmlinux_btf() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("/sys/kernel/btf/vmlinux missing under CI=true");
        }
        eprintln!("SKIP: /sys/kernel/btf/vmlinux unavailable");
        return;
    };
    let target = Some(std::sync::Arc::new(vmlinux));
    let opts = LoadOptions {
        core_target: target,
        ..Default::default()
    };
    let poison = kbpf_isa::Insn::new(
        kbpf_isa::insn::BPF_JMP | kbpf_isa::insn::BPF_CALL,
        0,
        0,
        0,
        kbpf_object::core::CORE_POISON_HELPER,
    );
    let reg = Registry::new();
    let obj = open("core_poison.bpf.o");
    let loaded = load_object(&obj, &reg, &opts).unwrap();
    let p = &loaded.programs[0];
    let at = obj.programs[0].core_relos[0].insn_idx;
    assert_eq!(p.insns[at], poison, "missing type: poisoned");

    let obj = open("core_guarded.bpf.o");
    let loaded = load_object(&obj, &reg, &opts).unwrap();
    let relos = &obj.programs[0].core_relos;
    let insns = &loaded.programs[0].insns;
    // bpf_core_type_exists(struct kbpf_no_such_struct) -> 0; the field size behind it is
    // poisoned; bpf_core_field_exists(xdp_md->data_end) -> 1.
    let values: Vec<kbpf_isa::Insn> = relos.iter().map(|r| insns[r.insn_idx]).collect();
    assert_eq!(values.len(), 3, "{relos:?}");
    assert_eq!(values[0].imm, 0, "type exists");
    assert_eq!(values[1], poison, "field size of a missing type");
    assert_eq!(values[2].imm, 1, "field exists");
}

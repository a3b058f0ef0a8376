//! Parses every object of `tests/objects/` and checks programs, maps, inner-map templates,
//! initial slots, global data, relocations, subprogram linking and line info against what
//! the C sources say.

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};
use kbpf_object::maps::{
    BPF_F_INNER_MAP, BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY_PROG,
};
use kbpf_object::maps::{GlobalDataKind, map_type};
use kbpf_object::section::{attach_type, prog_type};
use kbpf_object::{BpfObject, MapDef, MapOrigin, Program, RelocKind};

fn corpus(name: &str) -> String {
    format!("{}/../../tests/objects/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn open(name: &str) -> BpfObject {
    BpfObject::open(corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn map<'a>(o: &'a BpfObject, name: &str) -> &'a MapDef {
    o.map(name).unwrap_or_else(|| {
        panic!(
            "no map {name}; have {:?}",
            o.maps.iter().map(|m| &m.name).collect::<Vec<_>>()
        )
    })
}

fn prog<'a>(o: &'a BpfObject, name: &str) -> &'a Program {
    o.program(name)
        .unwrap_or_else(|| panic!("no program {name}"))
}

/// (type, key, value, max_entries, flags)
fn shape(m: &MapDef) -> (u32, u32, u32, u32, u32) {
    (
        m.map_type,
        m.key_size,
        m.value_size,
        m.max_entries,
        m.map_flags,
    )
}

/// Checks the invariants every linked program must satisfy: relocated instructions carry
/// the pseudo source and target the recorded index; calls land on a subprogram start.
fn check_links(p: &Program) {
    assert_eq!(p.subprogs[0].name, p.name);
    assert_eq!(p.subprogs[0].start, 0);
    let total: usize = p.subprogs.iter().map(|s| s.len).sum();
    assert_eq!(total, p.insns.len(), "{}: subprogs cover all insns", p.name);
    for r in &p.relocations {
        let i: Insn = p.insns[r.insn_idx];
        match r.kind {
            RelocKind::MapFd { map } => {
                assert!(i.is_ld_imm64());
                assert_eq!(i.src(), BPF_PSEUDO_MAP_FD);
                assert_eq!(i.imm as usize, map);
            }
            RelocKind::MapValue { map, offset } => {
                assert_eq!(i.src(), BPF_PSEUDO_MAP_VALUE);
                assert_eq!(i.imm as usize, map);
                assert_eq!(p.insns[r.insn_idx + 1].imm as u32, offset);
            }
            RelocKind::Call { target } | RelocKind::Func { target } => {
                let want = if matches!(r.kind, RelocKind::Call { .. }) {
                    BPF_PSEUDO_CALL
                } else {
                    BPF_PSEUDO_FUNC
                };
                assert_eq!(i.src(), want);
                assert_eq!(r.insn_idx as i64 + 1 + i64::from(i.imm), target as i64);
                let s = p
                    .subprogs
                    .iter()
                    .find(|s| s.start == target)
                    .expect("call lands on a subprog");
                assert_eq!(s.name, r.symbol);
            }
            RelocKind::Kfunc { .. } => {
                assert_eq!(i.src(), kbpf_isa::insn::BPF_PSEUDO_KFUNC_CALL);
                assert_eq!(i.imm, 0, "resolved by the loader");
                assert!(!r.symbol.is_empty());
            }
        }
    }
    // Every placed function has its func_info at its first instruction.
    if !p.func_info.is_empty() {
        for s in &p.subprogs {
            assert!(
                p.func_info_at(s.start).is_some(),
                "{}: func_info for {}",
                p.name,
                s.name
            );
        }
        assert_eq!(p.func_info.len(), p.subprogs.len());
    }
    assert!(
        p.line_info
            .windows(2)
            .all(|w| w[0].insn_idx <= w[1].insn_idx)
    );
    assert!(p.line_info.iter().all(|l| l.insn_idx < p.insns.len()));
}

#[test]
fn aom_inner_map() {
    let o = open("aom_inner_map.bpf.o");
    assert_eq!(o.name, "aom_inner_map");
    assert_eq!(o.license, "GPL");
    assert_eq!(o.maps.len(), 3);
    assert_eq!(
        shape(map(&o, "inner_a")),
        (map_type::ARRAY, 4, 4, 4, BPF_F_INNER_MAP)
    );
    assert_eq!(
        shape(map(&o, "inner_b")),
        (map_type::ARRAY, 4, 4, 16, BPF_F_INNER_MAP)
    );
    let outer = map(&o, "outer");
    assert_eq!(shape(outer), (map_type::ARRAY_OF_MAPS, 4, 4, 8, 0));
    let inner = outer.inner.as_deref().expect("template");
    assert_eq!(inner.name, "outer.inner");
    assert_eq!(inner.origin, MapOrigin::InnerTemplate);
    assert_eq!(shape(inner), (map_type::ARRAY, 4, 4, 4, BPF_F_INNER_MAP));
    assert_eq!(
        outer.initial_slots,
        vec![(0, "inner_a".to_string()), (2, "inner_b".to_string())]
    );
    assert_eq!(outer.btf_value_type_id, 0);
    let p = prog(&o, "xdp_two_level");
    assert_eq!(
        (p.prog_type(), p.expected_attach_type()),
        (prog_type::XDP, attach_type::XDP)
    );
    check_links(p);
    // Only the outer map is referenced by code; the inner lookup goes through a register.
    let maps: Vec<_> = p
        .relocations
        .iter()
        .map(|r| (r.kind, r.symbol.as_str()))
        .collect();
    assert_eq!(maps, vec![(RelocKind::MapFd { map: 2 }, "outer")]);
    let btf = o.btf.as_ref().unwrap();
    assert_eq!(
        btf.func_prototype(p.func_info[0].type_id).unwrap(),
        "int xdp_two_level(struct xdp_md * ctx)"
    );
    // Two lookup calls: outer then inner.
    let lookups = p
        .insns
        .iter()
        .filter(|i| i.code == 0x85 && i.src() == 0 && i.imm == 1)
        .count();
    assert_eq!(lookups, 2);
}

#[test]
fn aom_plain_template_and_bss() {
    let o = open("aom_plain.bpf.o");
    assert_eq!(o.license, "Dual BSD/GPL");
    let outer = map(&o, "stats_outer");
    assert_eq!(shape(outer), (map_type::ARRAY_OF_MAPS, 4, 4, 4, 0));
    assert!(outer.initial_slots.is_empty());
    let inner = outer.inner.as_deref().unwrap();
    assert_eq!(shape(inner), (map_type::ARRAY, 4, 16, 32, 0));
    let btf = o.btf.as_ref().unwrap();
    assert_eq!(
        btf.type_name(inner.btf_value_type_id).unwrap(),
        "struct val"
    );
    let bss = map(&o, "aom_plai.bss");
    assert_eq!(shape(bss), (map_type::ARRAY, 4, 16, 1, BPF_F_MMAPABLE));
    assert_eq!(bss.origin, MapOrigin::GlobalData(GlobalDataKind::Bss));
    assert_eq!(bss.data, None);
    let p = prog(&o, "xdp_count");
    check_links(p);
    let bss_idx = o.map_index("aom_plai.bss").unwrap();
    assert!(p.relocations.iter().any(|r| r.kind
        == RelocKind::MapValue {
            map: bss_idx,
            offset: 0
        }
        && r.symbol == "last_seen"));
    // The value formatter on the .bss DATASEC.
    let v = btf
        .format_value(
            bss.btf_value_type_id,
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        )
        .unwrap();
    assert_eq!(
        v,
        serde_json::json!({".bss": [{"last_seen": {"packets": 1, "bytes": 2}}]})
    );
}

#[test]
fn hom_initial_slots() {
    let o = open("hom_slots.bpf.o");
    let s = map(&o, "services");
    assert_eq!(shape(s), (map_type::HASH_OF_MAPS, 4, 4, 16, 0));
    assert_eq!(
        s.initial_slots,
        vec![(0, "backend_a".to_string()), (3, "backend_b".to_string())]
    );
    assert_eq!(
        shape(s.inner.as_deref().unwrap()),
        (map_type::HASH, 4, 8, 64, 0)
    );
    assert_eq!(shape(map(&o, "backend_a")), (map_type::HASH, 4, 8, 64, 0));
    let p = prog(&o, "tc_lookup");
    assert_eq!(
        (p.prog_type(), p.expected_attach_type()),
        (prog_type::SCHED_CLS, 0)
    );
    check_links(p);
}

#[test]
fn global_data_maps() {
    let o = open("global_data.bpf.o");
    let names: Vec<_> = o.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "global_d.data",
            "global_d.rodata",
            ".data.tuning",
            ".rodata.cfg",
            "global_d.bss"
        ]
    );
    let data = map(&o, "global_d.data");
    assert_eq!(shape(data), (map_type::ARRAY, 4, 4, 1, BPF_F_MMAPABLE));
    assert_eq!(data.data.as_deref(), Some(&7i32.to_le_bytes()[..]));
    let ro = map(&o, "global_d.rodata");
    assert_eq!(
        shape(ro),
        (
            map_type::ARRAY,
            4,
            33,
            1,
            BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
        )
    );
    let mut want = 100u32.to_le_bytes().to_vec();
    want.extend_from_slice(b"hello\0\0\0");
    // Then the two bpf_printk format strings (static `___fmt` arrays).
    want.extend_from_slice(b"hits %llu\0counter %d\0");
    assert_eq!(ro.data.as_deref(), Some(&want[..]));
    assert_eq!(
        map(&o, ".data.tuning").data.as_deref(),
        Some(&42i32.to_le_bytes()[..])
    );
    assert_eq!(
        shape(map(&o, ".rodata.cfg")),
        (map_type::ARRAY, 4, 2, 1, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE)
    );
    assert_eq!(
        map(&o, ".rodata.cfg").data.as_deref(),
        Some(&8080u16.to_le_bytes()[..])
    );
    let bss = map(&o, "global_d.bss");
    assert_eq!((bss.value_size, bss.data.as_ref()), (8, None));
    // The .rodata DATASEC formats like bpftool's dump of the map.
    let btf = o.btf.as_ref().unwrap();
    let v = btf
        .format_value(ro.btf_value_type_id, ro.data.as_ref().unwrap())
        .unwrap();
    let vars = v[".rodata"].as_array().unwrap();
    assert_eq!(vars[0], serde_json::json!({"threshold": 100}));
    assert_eq!(vars[1], serde_json::json!({"greeting": "hello"}));
    let p = prog(&o, "xdp_globals");
    check_links(p);
    let rel: Vec<_> = p
        .relocations
        .iter()
        .map(|r| (r.symbol.as_str(), r.kind))
        .collect();
    let idx = |n: &str| o.map_index(n).unwrap();
    assert!(rel.contains(&(
        "greeting",
        RelocKind::MapValue {
            map: idx("global_d.rodata"),
            offset: 4
        }
    )));
    assert!(rel.contains(&(
        "hits",
        RelocKind::MapValue {
            map: idx("global_d.bss"),
            offset: 0
        }
    )));
    assert!(rel.contains(&(
        "port",
        RelocKind::MapValue {
            map: idx(".rodata.cfg"),
            offset: 0
        }
    )));
    // Format strings: the section symbol plus the offset clang left in the immediate.
    let rodata = idx("global_d.rodata");
    for offset in [12, 22] {
        assert!(rel.contains(&(
            ".rodata",
            RelocKind::MapValue {
                map: rodata,
                offset
            }
        )));
    }
    assert_eq!(rel.len(), 8);
}

#[test]
fn multi_prog_sections() {
    let o = open("multi_prog.bpf.o");
    let got: Vec<_> = o
        .programs
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.section.as_str(),
                p.prog_type(),
                p.expected_attach_type(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("xdp_first", "xdp", prog_type::XDP, attach_type::XDP),
            ("xdp_second", "xdp", prog_type::XDP, attach_type::XDP),
            (
                "xdp_frags_prog",
                "xdp.frags",
                prog_type::XDP,
                attach_type::XDP
            ),
            ("tc_prog", "tc", prog_type::SCHED_CLS, 0),
            ("sock_filter", "socket", prog_type::SOCKET_FILTER, 0),
            ("kprobe_open", "kprobe/do_sys_openat2", prog_type::KPROBE, 0),
            (
                "tp_write",
                "tracepoint/syscalls/sys_enter_write",
                prog_type::TRACEPOINT,
                0
            ),
            (
                "cg_ingress",
                "cgroup_skb/ingress",
                prog_type::CGROUP_SKB,
                attach_type::CGROUP_INET_INGRESS
            ),
        ]
    );
    assert_eq!(
        prog(&o, "kprobe_open").attach_target(),
        Some("do_sys_openat2")
    );
    assert_eq!(
        prog(&o, "xdp_frags_prog").prog_flags(),
        kbpf_object::section::BPF_F_XDP_HAS_FRAGS
    );
    assert_eq!(
        shape(map(&o, "counts")),
        (map_type::PERCPU_ARRAY, 4, 8, 4, 0)
    );
    // Two programs in one section: the second starts after the first in the section,
    // but each linked program starts at 0 and has its own line info.
    let second = prog(&o, "xdp_second");
    check_links(second);
    assert_eq!(second.func_info[0].insn_idx, 0);
    assert_eq!(
        o.func_prototype(second, 0).unwrap(),
        "int xdp_second(struct xdp_md * ctx)"
    );
    assert!(
        second.line_info_at(0).unwrap().line.contains("xdp_second")
            || second.line_info[0].insn_idx == 0
    );
    for p in &o.programs {
        check_links(p);
    }
}

#[test]
fn newer_libbpf_sections() {
    let o = open("newer_sections.bpf.o");
    let got: Vec<_> = o
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.prog_type(), p.expected_attach_type()))
        .collect();
    assert_eq!(
        got,
        [
            ("tcx_in", prog_type::SCHED_CLS, attach_type::TCX_INGRESS),
            ("tcx_out", prog_type::SCHED_CLS, attach_type::TCX_EGRESS),
            (
                "nk_primary",
                prog_type::SCHED_CLS,
                attach_type::NETKIT_PRIMARY
            ),
        ]
    );
    assert!(o.maps.is_empty());
}

#[test]
fn subprogram_linking_order() {
    let o = open("subprog.bpf.o");
    let p = prog(&o, "xdp_subprogs");
    check_links(p);
    let order: Vec<_> = p
        .subprogs
        .iter()
        .map(|s| (s.name.as_str(), s.start))
        .collect();
    // libbpf order: depth-first at first use (sum_squares, then its callee square, then add_to_acc).
    assert_eq!(
        order,
        [
            ("xdp_subprogs", 0),
            ("sum_squares", 9),
            ("square", 15),
            ("add_to_acc", 18)
        ]
    );
    let t = prog(&o, "tc_subprogs");
    check_links(t);
    let order: Vec<_> = t.subprogs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, ["tc_subprogs", "loop_cb", "square", "add_to_acc"]);
    assert!(
        t.relocations
            .iter()
            .any(|r| matches!(r.kind, RelocKind::Func { target: 17 }) && r.symbol == "loop_cb")
    );
    // The map reference inside add_to_acc moved with it.
    let acc_rel: Vec<_> = t
        .relocations
        .iter()
        .filter(|r| r.symbol == "acc")
        .map(|r| r.insn_idx)
        .collect();
    assert_eq!(acc_rel.len(), 1);
    assert!(t.subprog_of(acc_rel[0]).unwrap().name == "add_to_acc");
    // Prototypes of subprograms as bpftool prints them.
    assert_eq!(
        o.func_prototype(t, 17).unwrap(),
        "long loop_cb(__u64 index, void * ctx)"
    );
    assert_eq!(o.func_prototype(t, 22).unwrap(), "__u64 square(__u64 x)");
    // Line info carried with the subprogram.
    let l = t.line_info_at(23).unwrap();
    assert_eq!(l.line.trim(), "return x * x;");
    assert_eq!(l.line_num, 16);
    assert!(l.file_name.ends_with("subprog.bpf.c"));
    assert_eq!(
        t.line_info_covering(24).unwrap().line.trim(),
        "return x * x;"
    );
}

#[test]
fn bounded_loop() {
    let o = open("bounded_loop.bpf.o");
    let p = prog(&o, "xdp_loop");
    check_links(p);
    // A backward jump exists (the loop is not unrolled at -O2 for 32 iterations).
    let has_back_jump = p
        .insns
        .iter()
        .any(|i| (i.class() == 5 || i.class() == 6) && i.off < 0 && i.code != 0x85);
    assert!(has_back_jump, "expected a loop back-edge");
    assert_eq!(shape(map(&o, "checksum")), (map_type::ARRAY, 4, 4, 1, 0));
}

#[test]
fn legacy_maps_section() {
    let o = open("legacy_maps.bpf.o");
    assert_eq!(o.kern_version, Some(0x060000));
    let h = map(&o, "legacy_hash");
    assert_eq!(h.origin, MapOrigin::LegacyMaps);
    assert_eq!(shape(h), (map_type::HASH, 4, 8, 128, BPF_F_NO_PREALLOC));
    assert_eq!(
        shape(map(&o, "legacy_array")),
        (map_type::ARRAY, 4, 16, 2, 0)
    );
    let p = prog(&o, "legacy_prog");
    check_links(p);
    let syms: Vec<_> = p.relocations.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(syms, ["legacy_hash", "legacy_array"]);
}

#[test]
fn map_types_and_attributes() {
    let o = open("map_types.bpf.o");
    let flows = map(&o, "flows");
    assert_eq!(
        shape(flows),
        (map_type::HASH, 16, 40, 1024, BPF_F_NO_PREALLOC)
    );
    let btf = o.btf.as_ref().unwrap();
    assert_eq!(
        btf.type_name(flows.btf_key_type_id).unwrap(),
        "struct flow_key"
    );
    let lru = map(&o, "lru_sized");
    assert_eq!(shape(lru), (map_type::LRU_HASH, 8, 12, 256, 0));
    assert_eq!((lru.btf_key_type_id, lru.btf_value_type_id), (0, 0));
    assert_eq!(shape(map(&o, "events")), (map_type::RINGBUF, 0, 0, 4096, 0));
    let numa = map(&o, "numa_arr");
    assert_eq!(shape(numa), (map_type::ARRAY, 4, 8, 8, BPF_F_NUMA_NODE));
    assert_eq!(numa.numa_node, 0);
    // clang put the zero-initialised flow_key template in .rodata.cst16.
    assert_eq!(shape(map(&o, ".rodata.cst16")).0, map_type::ARRAY);
    // Struct value formatting, with a char array and an int array.
    let mut v = Vec::new();
    v.extend_from_slice(&5u64.to_le_bytes());
    v.extend_from_slice(&1500u64.to_le_bytes());
    v.extend_from_slice(b"web\0\0\0");
    v.extend_from_slice(&[0, 0]); // padding
    for x in [1u32, 2, 3] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(&[0; 4]);
    assert_eq!(v.len(), 40);
    let f = btf.format_value(flows.btf_value_type_id, &v).unwrap();
    assert_eq!(
        f,
        serde_json::json!({"packets": 5, "bytes": 1500, "tag": "web", "hist": [1, 2, 3]})
    );
    let key = [10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0, 80, 6, 0, 0, 0];
    let e = btf
        .format_entry(flows.btf_key_type_id, &key, flows.btf_value_type_id, &v)
        .unwrap();
    assert_eq!(e["key"]["proto"], 6);
    assert_eq!(e["key"]["saddr"], 0x0100_000a);
    check_links(prog(&o, "xdp_flows"));
}

#[test]
fn pinned_map_and_perf_event() {
    let o = open("pinned.bpf.o");
    assert_eq!(
        map(&o, "kbpf_pinned").pinning,
        kbpf_object::maps::LIBBPF_PIN_BY_NAME
    );
    assert_eq!(prog(&o, "on_sample").prog_type(), prog_type::PERF_EVENT);
}

#[test]
fn core_relocations_are_recorded() {
    let o = open("core_relo.bpf.o");
    let p = prog(&o, "kprobe_core");
    let kinds: Vec<_> = p
        .core_relos
        .iter()
        .map(|c| (c.kind, c.access.as_str(), c.type_name.as_str()))
        .collect();
    use kbpf_object::CoreReloKind::*;
    assert_eq!(
        kinds,
        [
            (FieldByteOffset, "0:0", "struct task_struct"),
            (FieldExists, "0:1", "struct task_struct"),
            (FieldByteSize, "0:1", "struct task_struct"),
        ]
    );
}

#[test]
fn core_resolution_against_vmlinux() {
    let Ok(vmlinux) = kbpf_object::core::load_vmlinux_btf() else {
        eprintln!("skipping: /sys/kernel/btf/vmlinux unavailable");
        return;
    };
    let mut o = open("core_relo.bpf.o");
    let n = o.resolve_core(&vmlinux).unwrap();
    assert_eq!(n, 3);
    let p = prog(&o, "kprobe_core");
    // task_struct.pid's real offset, from vmlinux itself.
    let ts = vmlinux
        .find_by_name_kind("task_struct", kbpf_object::btf::kind::STRUCT)
        .unwrap();
    let pid = vmlinux
        .members(ts)
        .unwrap()
        .iter()
        .find(|m| m.name == "pid")
        .unwrap()
        .bit_offset
        / 8;
    assert!(pid > 0);
    let off_insn = p.insns[p.core_relos[0].insn_idx];
    assert_eq!(off_insn.imm as u32, pid, "byte offset patched");
    let exists = p.insns[p.core_relos[1].insn_idx];
    assert_eq!(exists.imm, 1);
    let size = p.insns[p.core_relos[2].insn_idx];
    assert_eq!(size.imm, 4);
}

#[test]
fn every_object_parses_and_links() {
    let dir = format!("{}/../../tests/objects", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "o") {
            let o = BpfObject::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!o.programs.is_empty());
            for p in &o.programs {
                check_links(p);
                assert!(!p.line_info.is_empty(), "{}: line info", p.name);
            }
            n += 1;
        }
    }
    assert!(n >= 10, "corpus has {n} objects");
}

#[test]
fn btf_kinds_parse_and_format() {
    use kbpf_object::btf::{BtfKind, kind};
    let o = open("btf_kinds.bpf.o");
    let btf = o.btf.as_ref().unwrap();
    let m = map(&o, "kinds_map");
    assert_eq!(shape(m), (map_type::ARRAY, 4, 56, 2, 0));
    let st = m.btf_value_type_id;
    assert_eq!(btf.type_name(st).unwrap(), "struct kinds");
    let members = btf.members(st).unwrap();
    let names: Vec<_> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ratio", "big", "sign", "lo", "hi", "u", "uptr", "tagged", "small", "grid", "flag"
        ]
    );
    assert_eq!((members[3].bitfield_size, members[4].bit_offset), (3, 163));
    let by = |n: &str| members.iter().find(|m| m.name == n).unwrap().ty;
    assert_eq!(btf.type_name(by("ratio")).unwrap(), "double *");
    assert_eq!(btf.type_name(by("uptr")).unwrap(), "int *");
    assert_eq!(btf.type_name(by("small")).unwrap(), "cu16");
    assert_eq!(btf.resolve_size(by("small")).unwrap(), 2);
    assert_eq!(btf.resolve_size(by("grid")).unwrap(), 6);
    assert_eq!(btf.type_name(by("grid")).unwrap(), "__u8[2][3]");
    match &btf.type_by_id(by("big")).unwrap().kind {
        BtfKind::Enum64 {
            size: 8, values, ..
        } => {
            assert_eq!(values[1].name, "BIG_HIGH");
            assert_eq!(values[1].value, 0x1_0000_0000);
        }
        k => panic!("big is {k:?}"),
    }
    let tag = btf.find_by_name_kind("kbpf_tag", kind::DECL_TAG).unwrap();
    assert_eq!(
        btf.type_by_id(tag).unwrap().kind,
        BtfKind::DeclTag {
            ty: st,
            component_idx: 7
        }
    );
    assert!(btf.find_by_name_kind("user", kind::TYPE_TAG).is_some());
    assert!(btf.find_by_name_kind("double", kind::FLOAT).is_some());
    // A value with enumerators that match, a negative signed enum, bitfields and a bool.
    let mut v = vec![0u8; 56];
    v[8..16].copy_from_slice(&0x1_0000_0000u64.to_le_bytes());
    v[16..20].copy_from_slice(&(-2i32).to_le_bytes());
    v[20] = 0b1010_1101; // lo = 0b101, hi = 0b10101
    v[24..28].copy_from_slice(&0x0102_0304u32.to_le_bytes());
    v[44..46].copy_from_slice(&7u16.to_le_bytes());
    v[46] = 9;
    v[52] = 1;
    let f = btf.format_value(st, &v).unwrap();
    assert_eq!(f["big"], "BIG_HIGH");
    assert_eq!(f["sign"], "NEG");
    assert_eq!(
        (f["lo"].clone(), f["hi"].clone()),
        ("0x5".into(), "0x15".into())
    );
    assert_eq!(f["u"]["as_u32"], 0x0102_0304);
    assert_eq!(f["u"]["as_bytes"], serde_json::json!([4, 3, 2, 1]));
    assert_eq!(f["small"], 7);
    assert_eq!(f["grid"], serde_json::json!([[9, 0, 0], [0, 0, 0]]));
    assert_eq!(f["flag"], true);
}

#[test]
fn vmlinux_btf_parses() {
    let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        eprintln!("skipping: /sys/kernel/btf/vmlinux unavailable");
        return;
    };
    let t = std::time::Instant::now();
    let btf = kbpf_object::Btf::parse(&data).unwrap();
    eprintln!(
        "vmlinux BTF: {} bytes, {} types, parsed in {:?}",
        data.len(),
        btf.len(),
        t.elapsed()
    );
    assert!(btf.len() > 10_000);
    let ts = btf
        .find_by_name_kind("task_struct", kbpf_object::btf::kind::STRUCT)
        .unwrap();
    assert!(btf.resolve_size(ts).unwrap() > 1000);
    // Re-encoding gives the same bytes back (no fix-ups apply to vmlinux).
    assert_eq!(btf.to_bytes(), data);
}

/// `SEC("?xdp")`: an XDP program with autoload off, its `?` forgotten (libbpf).
#[test]
fn optional_sections_drop_the_question_mark_and_autoload() {
    let o = open("optional_autoload.bpf.o");
    let opt = prog(&o, "xdp_optional");
    assert_eq!(opt.section, "xdp");
    assert!(!opt.autoload);
    assert_eq!(opt.prog_type(), 6);
    let always = prog(&o, "xdp_always");
    assert!(always.autoload);
}

//! Prints what kbpf-object reads from a BPF object: maps, programs, relocations, line info.
//! Usage: `cargo run -p kbpf-object --example dump_object -- FILE.o`

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump_object FILE.o");
        std::process::exit(2);
    };
    let obj = match kbpf_object::BpfObject::open(&path) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "object {} license {:?} version {:?}",
        obj.name, obj.license, obj.kern_version
    );
    for (i, m) in obj.maps.iter().enumerate() {
        println!(
            "map[{i}] {} type {} key {} value {} max {} flags {:#x} pin {} slots {:?} btf k/v {}/{} data {:?}",
            m.name,
            m.map_type,
            m.key_size,
            m.value_size,
            m.max_entries,
            m.map_flags,
            m.pinning,
            m.initial_slots,
            m.btf_key_type_id,
            m.btf_value_type_id,
            m.data.as_ref().map(|d| d.len())
        );
        if let Some(inner) = &m.inner {
            println!(
                "    inner {} type {} key {} value {} max {} flags {:#x}",
                inner.name,
                inner.map_type,
                inner.key_size,
                inner.value_size,
                inner.max_entries,
                inner.map_flags
            );
        }
    }
    for p in &obj.programs {
        println!(
            "prog {} sec {} type {} attach {} insns {}",
            p.name,
            p.section,
            p.prog_type(),
            p.expected_attach_type(),
            p.insns.len()
        );
        for s in &p.subprogs {
            let proto = obj.func_prototype(p, s.start).unwrap_or_default();
            println!("  subprog {} @{} len {} : {proto}", s.name, s.start, s.len);
        }
        for r in &p.relocations {
            println!("  reloc insn {} {:?} {}", r.insn_idx, r.kind, r.symbol);
        }
        for c in &p.core_relos {
            println!("  core {c}");
        }
        for (i, insn) in p.insns.iter().enumerate() {
            if let Some(l) = p.line_info_at(i) {
                println!("  ; {} [line {}:{}]", l.line, l.line_num, l.line_col);
            }
            println!("  {i:4}: {insn:?}");
        }
    }
}

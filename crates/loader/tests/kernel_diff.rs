//! Kernel-differential test of the loader: each corpus object the kernel can load is loaded
//! both by `bpftool prog loadall … pinmaps …` (libbpf + the running kernel) and by
//! `kbpf_loader::load_object`, then compared map by map — the name the kernel stores,
//! type, key/value sizes, max_entries, flags, frozen state, global data contents, the
//! initial inner slots (which inner map sits in which outer slot) — and program by
//! program: the set of maps each program uses (`map_ids` vs `used_map_fds()`: the maps its
//! `ld_imm64`s reference plus the `.rodata*` maps libbpf binds with `BPF_PROG_BIND_MAP`)
//! and the sequence of map references in the instructions (`map[id:N][0]+off` in the
//! kernel's xlated dump vs our `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE` pairs).
//!
//! Skips (with a printed reason) when bpftool is missing or `bpf()` is not permitted.
//! Pins live under unique `/sys/fs/bpf/kbpfload_<pid>_<nanos>_<object>` paths and are
//! removed when the guard drops, also when a comparison fails.
//! The bpftool helpers are copied from `crates/object/tests/kernel_diff.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kbpf_isa::insn::{BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};
use kbpf_kernel::bpftool::{self, Pins, bpftool_json, hex_bytes, loadall as load};
use kbpf_kernel::consts;
use kbpf_loader::{LoadOptions, load_object};
use kbpf_maps::Registry;
use kbpf_object::BpfObject;
use serde_json::Value;

/// Objects the kernel test does not load, and why (as in kbpf-object's kernel test).
const SKIP: &[(&str, &str)] = &[
    (
        "newer_sections.bpf.o",
        "tcx/netkit section names postdate bpftool's libbpf 1.1",
    ),
    (
        "legacy_maps.bpf.o",
        "libbpf 1.0+ (bpftool) refuses legacy 'maps' sections",
    ),
    (
        "pinned.bpf.o",
        "LIBBPF_PIN_BY_NAME would pin globally under /sys/fs/bpf",
    ),
    (
        "optional_autoload.bpf.o",
        "bpftool loadall cannot pin a program whose autoload is off (kbpf prints the same error: crates/cli)",
    ),
    (
        "core_poison.bpf.o",
        "refused by design (a reachable poisoned CO-RE relocation; kbpf-run's objects_xlated checks both refuse it)",
    ),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/objects")
}

fn kernel_unavailable() -> Option<String> {
    bpftool::unavailable(&corpus_dir().join("bounded_loop.bpf.o"))
}

fn map_type_name(t: u32) -> &'static str {
    consts::map_type_name(t).unwrap_or("?")
}

fn u64_of(v: &Value, k: &str) -> Result<u64, String> {
    v[k].as_u64()
        .ok_or_else(|| format!("no numeric '{k}' in {v}"))
}

fn le_u32(b: &[u8]) -> Result<u32, String> {
    let a: [u8; 4] = b
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("expected 4 bytes, got {b:?}"))?;
    Ok(u32::from_le_bytes(a))
}

#[derive(Default)]
struct Report {
    maps: usize,
    data_bytes: usize,
    slots: usize,
    progs: usize,
    refs: usize,
}

/// `(map id, value offset)` from bpftool's `r1 = map[id:14][0]+12` / `r1 = map[id:14]`.
fn parse_map_ref(disasm: &str) -> Option<(u32, Option<u32>)> {
    let rest = &disasm[disasm.find("map[id:")? + 7..];
    let end = rest.find(']')?;
    let id = rest[..end].parse().ok()?;
    let after = &rest[end + 1..];
    let off = match after.strip_prefix("[0]+") {
        Some(o) => Some(o.trim().parse().ok()?),
        None => None,
    };
    Some((id, off))
}

fn is_subsequence<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    let mut it = long.iter();
    short.iter().all(|s| it.any(|l| l == s))
}

fn compare_object(path: &Path) -> Result<Report, String> {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let obj = BpfObject::open(path).map_err(|e| format!("{stem}: {e}"))?;
    let reg = Registry::new();
    let ours = load_object(&obj, &reg, &LoadOptions::default())
        .map_err(|e| format!("{stem}: kbpf load failed: {e}"))?;
    let pins = Pins::new("kbpfload", &stem);
    load(path, &pins).map_err(|e| format!("{stem}: bpftool load failed: {e}"))?;
    let mut rep = Report::default();

    // ---- maps: the kernel's pinned maps, by the name the kernel stores ----
    let mut kmaps = Vec::new();
    if pins.maps.is_dir() {
        for e in std::fs::read_dir(&pins.maps).map_err(|e| e.to_string())? {
            let p = e.map_err(|e| e.to_string())?.path();
            let show = bpftool_json(&["map", "show", "pinned", &p.to_string_lossy()])?;
            kmaps.push((p, show));
        }
    }
    if kmaps.len() != ours.maps.len() {
        return Err(format!(
            "{stem}: kbpf created {} maps {:?}, kernel {} {:?}",
            ours.maps.len(),
            ours.maps.iter().map(|m| m.map.name()).collect::<Vec<_>>(),
            kmaps.len(),
            kmaps
                .iter()
                .map(|(_, k)| k["name"].clone())
                .collect::<Vec<_>>()
        ));
    }
    for lm in &ours.maps {
        let m = &lm.map;
        let (kpath, k) = kmaps
            .iter()
            .find(|(_, k)| k["name"].as_str() == Some(m.name()))
            .ok_or_else(|| format!("{stem}: kernel has no map named {:?}", m.name()))?;
        let kpath = kpath.to_string_lossy().into_owned();
        let got = (
            k["type"].as_str().unwrap_or("").to_string(),
            u64_of(k, "bytes_key")?,
            u64_of(k, "bytes_value")?,
            u64_of(k, "max_entries")?,
            u64_of(k, "flags")?,
            k["frozen"].as_u64().unwrap_or(0) != 0,
        );
        let want = (
            map_type_name(m.map_type().raw()).to_string(),
            u64::from(m.key_size()),
            u64::from(m.value_size()),
            u64::from(m.max_entries()),
            u64::from(m.map_flags()),
            lm.frozen,
        );
        if got != want {
            return Err(format!(
                "{stem}: map {}: kernel (type, key, value, max, flags, frozen) {got:?} vs kbpf {want:?}",
                lm.name
            ));
        }
        rep.maps += 1;

        let def = &obj.maps[lm.index];
        if def.data.is_some() || def.section.starts_with(".bss") {
            // Global data: the single value at key 0, byte for byte.
            let dump = bpftool_json(&["map", "dump", "pinned", &kpath])?;
            let entries = dump.as_array().ok_or("dump is not an array")?;
            let kval = entries
                .first()
                .map(|e| hex_bytes(&e["value"]))
                .ok_or_else(|| format!("{stem}: map {}: empty dump", lm.name))?;
            let our = m
                .lookup_elem(&0u32.to_ne_bytes())
                .map_err(|e| format!("{stem}: {e}"))?;
            if kval != our {
                return Err(format!(
                    "{stem}: map {} contents: kernel {kval:?} vs kbpf {our:?}",
                    lm.name
                ));
            }
            rep.data_bytes += our.len();
        }

        if m.map_type().is_map_in_map() {
            // Initial slots: key → name of the inner map the kernel (by id) and kbpf hold.
            let dump = bpftool_json(&["map", "dump", "pinned", &kpath])?;
            let mut kslots = Vec::new();
            for e in dump.as_array().ok_or("dump is not an array")? {
                let key = le_u32(&hex_bytes(&e["key"]))?;
                let id = le_u32(&hex_bytes(&e["value"]))?;
                let inner = bpftool_json(&["map", "show", "id", &id.to_string()])?;
                kslots.push((key, inner["name"].as_str().unwrap_or("").to_string()));
            }
            kslots.sort();
            let mut our_slots = Vec::new();
            for key in m.keys() {
                // An ARRAY_OF_MAPS lists every index; empty slots answer ENOENT.
                let Ok(value) = m.lookup_elem(&key) else {
                    continue;
                };
                let id = le_u32(&value)?;
                let inner = reg
                    .map_by_id(id)
                    .ok_or_else(|| format!("{stem}: map {}: slot holds dead id {id}", lm.name))?;
                our_slots.push((le_u32(&key)?, inner.name().to_string()));
            }
            our_slots.sort();
            if kslots != our_slots {
                return Err(format!(
                    "{stem}: map {} slots: kernel {kslots:?} vs kbpf {our_slots:?}",
                    lm.name
                ));
            }
            rep.slots += kslots.len();
        }
    }

    // ---- programs: the maps each one uses ----
    for p in &ours.programs {
        let pin = pins.progs.join(&p.name);
        let show = bpftool_json(&["prog", "show", "pinned", &pin.to_string_lossy()])?;
        let mut kernel_used = BTreeSet::new();
        for id in show["map_ids"].as_array().into_iter().flatten() {
            let id = id.as_u64().ok_or("map id is not a number")?;
            let info = bpftool_json(&["map", "show", "id", &id.to_string()])?;
            kernel_used.insert(info["name"].as_str().unwrap_or("").to_string());
        }
        let mut our_used = BTreeSet::new();
        for fd in &p.used_map_fds() {
            let m = ours
                .map_by_fd(*fd)
                .ok_or_else(|| format!("{stem}: prog {}: fd {fd} is not ours", p.name))?;
            our_used.insert(m.map.name().to_string());
        }
        if kernel_used != our_used {
            return Err(format!(
                "{stem}: prog {} used maps: kernel {kernel_used:?} vs kbpf {our_used:?}",
                p.name
            ));
        }
        // The map references of the instructions, in order: (map name, value offset or
        // None for a map pointer), from the kernel's xlated dump and from our relocated
        // instructions.
        let xl = bpftool_json(&["prog", "dump", "xlated", "pinned", &pin.to_string_lossy()])?;
        let mut kernel_refs = Vec::new();
        for insn in xl.as_array().ok_or("xlated is not an array")? {
            let Some((id, off)) = insn["disasm"].as_str().and_then(parse_map_ref) else {
                continue;
            };
            let info = bpftool_json(&["map", "show", "id", &id.to_string()])?;
            kernel_refs.push((info["name"].as_str().unwrap_or("").to_string(), off));
        }
        let mut our_refs = Vec::new();
        let mut i = 0;
        while i < p.insns.len() {
            let insn = p.insns[i];
            if insn.is_ld_imm64() {
                let src = insn.src();
                if src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE {
                    let fd = u32::try_from(insn.imm).map_err(|_| "negative fd")?;
                    let m = ours
                        .map_by_fd(fd)
                        .ok_or_else(|| format!("{stem}: prog {}: fd {fd} is not ours", p.name))?;
                    let off = (src == BPF_PSEUDO_MAP_VALUE)
                        .then(|| u32::from_ne_bytes(p.insns[i + 1].imm.to_ne_bytes()));
                    our_refs.push((m.map.name().to_string(), off));
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        if kernel_refs != our_refs {
            // The verifier deletes dead code after folding branches on frozen .rodata
            // constants; accept only that: a program reading .rodata whose kernel
            // references are an ordered subsequence of ours.
            let reads_rodata = p
                .map_fds_used
                .iter()
                .any(|fd| ours.map_by_fd(*fd).is_some_and(|m| m.frozen));
            if !(reads_rodata && is_subsequence(&kernel_refs, &our_refs)) {
                return Err(format!(
                    "{stem}: prog {} map references:\nkernel {kernel_refs:?}\nkbpf   {our_refs:?}",
                    p.name
                ));
            }
            eprintln!(
                "{stem}: prog {}: kernel dropped {} map reference(s) with dead code",
                p.name,
                our_refs.len() - kernel_refs.len()
            );
        }
        rep.refs += our_refs.len();
        rep.progs += 1;
    }
    ours.close(&reg);
    Ok(rep)
}

#[test]
fn loader_agrees_with_kernel() {
    if let Some(why) = kernel_unavailable() {
        eprintln!("SKIPPED loader_agrees_with_kernel: {why}");
        return;
    }
    let mut objs: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objs.sort();
    let mut failures = Vec::new();
    let mut total = Report::default();
    let mut nobj = 0;
    for path in &objs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some((_, why)) = SKIP.iter().find(|(n, _)| *n == name) {
            eprintln!("skip {name}: {why}");
            continue;
        }
        match compare_object(path) {
            Ok(r) => {
                eprintln!(
                    "{name}: {} maps, {} global-data bytes, {} initial slots, {} programs' used maps, {} map references agree",
                    r.maps, r.data_bytes, r.slots, r.progs, r.refs
                );
                nobj += 1;
                total.maps += r.maps;
                total.data_bytes += r.data_bytes;
                total.slots += r.slots;
                total.progs += r.progs;
                total.refs += r.refs;
            }
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "total: {nobj} objects, {} maps, {} global-data bytes, {} slots, {} programs, {} map references",
        total.maps, total.data_bytes, total.slots, total.progs, total.refs
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(nobj >= 10, "only {nobj} objects compared");
    assert!(total.slots >= 4, "only {} slots compared", total.slots);
    assert!(total.data_bytes > 0, "no global data compared");
    assert!(
        total.refs >= 20,
        "only {} map references compared",
        total.refs
    );
}

//! Kernel-differential tests: load each corpus object into the running kernel with
//! `bpftool prog loadall … pinmaps …` and compare what the kernel created with what
//! kbpf-object parsed — map names, types, key/value sizes, max_entries, flags, program
//! types, the initial inner-map slots of map-in-map outers, the func prototypes and the
//! sequence of source lines `bpftool prog dump xlated` shows.
//!
//! Skips (with a printed reason) when bpftool is missing or `bpf()` is not permitted.
//! Pins live under unique `/sys/fs/bpf/kbpfobj_<pid>_<nanos>_<object>` paths and are
//! removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_kernel::bpftool::{self, Pins, bpftool_json, hex_bytes, loadall as load};
use kbpf_kernel::consts;
use kbpf_object::{BpfObject, MapOrigin};
use serde_json::Value;

/// Objects the kernel test does not load, and why.
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
    (
        "core_guarded.bpf.o",
        "the kernel removes its dead branch, so its line info is the rewrite's (kbpf-run's objects_xlated compares that)",
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

fn prog_type_name(t: u32) -> &'static str {
    consts::prog_type_name(t).unwrap_or("?")
}

fn u64_of(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no numeric '{k}' in {v}"))
}

/// Little-endian integer from bpftool's `["0x01","0x00",…]` byte list.
fn le_bytes(v: &Value) -> u64 {
    v.as_array()
        .expect("byte array")
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let s = b.as_str().expect("hex byte");
            u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex") << (8 * i)
        })
        .sum()
}

struct Report {
    formatted: usize,
    maps: usize,
    slots: usize,
    progs: usize,
    lines: usize,
}

fn compare_object(path: &Path) -> Result<Report, String> {
    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    let obj = BpfObject::open(path).map_err(|e| e.to_string())?;
    let pins = Pins::new("kbpfobj", &stem);
    load(path, &pins).map_err(|e| format!("{stem}: load failed: {e}"))?;
    let mut rep = Report {
        formatted: 0,
        maps: 0,
        slots: 0,
        progs: 0,
        lines: 0,
    };

    // ---- maps ----
    let mut kmaps = Vec::new();
    if pins.maps.is_dir() {
        for e in std::fs::read_dir(&pins.maps).map_err(|e| e.to_string())? {
            let p = e.map_err(|e| e.to_string())?.path();
            kmaps.push((
                p.clone(),
                bpftool_json(&["map", "show", "pinned", &p.to_string_lossy()])?,
            ));
        }
    }
    let ours: Vec<_> = obj
        .maps
        .iter()
        .filter(|m| m.origin != MapOrigin::InnerTemplate)
        .collect();
    if ours.len() != kmaps.len() {
        return Err(format!(
            "{stem}: kbpf found {} maps {:?}, kernel has {} {:?}",
            ours.len(),
            ours.iter().map(|m| m.kernel_name()).collect::<Vec<_>>(),
            kmaps.len(),
            kmaps
                .iter()
                .map(|(_, k)| k["name"].clone())
                .collect::<Vec<_>>()
        ));
    }
    for m in &ours {
        let (kpath, k) = kmaps
            .iter()
            .find(|(_, k)| k["name"].as_str() == Some(m.kernel_name()))
            .ok_or_else(|| format!("{stem}: kernel has no map named {:?}", m.kernel_name()))?;
        let got = (
            k["type"].as_str().unwrap_or("").to_string(),
            u64_of(k, "bytes_key"),
            u64_of(k, "bytes_value"),
            u64_of(k, "max_entries"),
            u64_of(k, "flags"),
        );
        let want = (
            map_type_name(m.map_type).to_string(),
            u64::from(m.key_size),
            u64::from(m.value_size),
            u64::from(m.max_entries),
            u64::from(m.map_flags),
        );
        if got != want {
            return Err(format!(
                "{stem}: map {}: kernel {got:?} vs kbpf {want:?}",
                m.name
            ));
        }
        rep.maps += 1;
        // The BTF value formatter against bpftool's `formatted` output, on every entry of
        // every map that has a BTF value type and plain (not per-CPU, not fd) values.
        let plain = !matches!(m.map_type, 3 | 4 | 5 | 6 | 10 | 12 | 13 | 27);
        if plain && m.btf_value_type_id != 0 {
            let btf = obj.btf.as_ref().ok_or("BTF value type without BTF")?;
            // Give hash and (non-global-data) array maps one entry of patterned bytes, so
            // the comparison covers non-zero ints, signs, chars and struct layouts.
            let writable =
                matches!(m.map_type, 1 | 2 | 9) && matches!(m.origin, MapOrigin::BtfMaps);
            if writable {
                let key: Vec<u8> = if m.map_type == 2 {
                    vec![0, 0, 0, 0]
                } else {
                    (0..m.key_size).map(|i| (i * 37 + 11) as u8).collect()
                };
                let value: Vec<u8> = (0..m.value_size).map(|i| (i * 53 + 0x61) as u8).collect();
                let mut args = vec!["map".to_string(), "update".into(), "pinned".into()];
                args.push(kpath.to_string_lossy().into_owned());
                args.push("key".into());
                args.push("hex".into());
                args.extend(key.iter().map(|b| format!("{b:02x}")));
                args.push("value".into());
                args.push("hex".into());
                args.extend(value.iter().map(|b| format!("{b:02x}")));
                let out = Command::new("bpftool")
                    .args(&args)
                    .output()
                    .map_err(|e| e.to_string())?;
                if !out.status.success() {
                    return Err(format!(
                        "{stem}: map {} update: {}",
                        m.name,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            let dump = bpftool_json(&["map", "dump", "pinned", &kpath.to_string_lossy()])?;
            for e in dump.as_array().ok_or("dump is not an array")? {
                let key = hex_bytes(&e["key"]);
                let value = hex_bytes(&e["value"]);
                let ours = btf
                    .format_entry(m.btf_key_type_id, &key, m.btf_value_type_id, &value)
                    .map_err(|err| format!("{stem}: map {}: format: {err}", m.name))?;
                if ours != e["formatted"] {
                    return Err(format!(
                        "{stem}: map {} formatted: kernel {} vs kbpf {ours}",
                        m.name, e["formatted"]
                    ));
                }
                rep.formatted += 1;
            }
        }
        if m.is_map_in_map() {
            // Initial slots: the outer's dump shows inner map ids; id → name.
            let dump = bpftool_json(&["map", "dump", "pinned", &kpath.to_string_lossy()])?;
            let mut slots = Vec::new();
            for e in dump.as_array().ok_or("dump is not an array")? {
                let id = le_bytes(&e["value"]);
                let inner = bpftool_json(&["map", "show", "id", &id.to_string()])?;
                slots.push((
                    le_bytes(&e["key"]) as u32,
                    inner["name"].as_str().unwrap_or("").to_string(),
                ));
            }
            slots.sort();
            let mut want: Vec<_> = m.initial_slots.clone();
            want.sort();
            if slots != want {
                return Err(format!(
                    "{stem}: map {} slots: kernel {slots:?} vs kbpf {want:?}",
                    m.name
                ));
            }
            rep.slots += slots.len();
        }
    }

    // ---- programs: type, prototypes and line text sequence ----
    for p in &obj.programs {
        let pin = pins.progs.join(&p.name);
        let pin = pin.to_string_lossy();
        let show = bpftool_json(&["prog", "show", "pinned", &pin])?;
        if show["type"].as_str() != Some(prog_type_name(p.prog_type())) {
            return Err(format!(
                "{stem}: prog {} type {} vs kbpf {}",
                p.name,
                show["type"],
                p.prog_type()
            ));
        }
        let xl = bpftool_json(&["prog", "dump", "xlated", "pinned", &pin])?;
        let insns = xl.as_array().ok_or("xlated is not an array")?;
        let k_src: Vec<String> = insns
            .iter()
            .filter_map(|i| i["src"].as_str().map(|s| s.trim().to_string()))
            .collect();
        let our_src: Vec<String> = p
            .line_info
            .iter()
            .map(|l| l.line.trim().to_string())
            .collect();
        if k_src != our_src {
            // The verifier removes dead code (and its line records, `bpf_adj_linfo_after_remove`)
            // when branches fold on frozen .rodata constants. Accept only that: a program
            // reading read-only globals whose kernel lines are an ordered subsequence of ours.
            let reads_rodata = p.relocations.iter().any(|r| match r.kind {
                kbpf_object::RelocKind::MapValue { map, .. } => {
                    obj.maps[map].map_flags & kbpf_object::maps::BPF_F_RDONLY_PROG != 0
                }
                _ => false,
            });
            if !(reads_rodata && is_subsequence(&k_src, &our_src)) {
                return Err(format!(
                    "{stem}: prog {} line texts differ:\nkernel {k_src:?}\nkbpf   {our_src:?}",
                    p.name
                ));
            }
            eprintln!(
                "{stem}: prog {}: kernel dropped {} line record(s) with dead code (folded .rodata)",
                p.name,
                our_src.len() - k_src.len()
            );
        }
        let k_proto: Vec<&str> = insns.iter().filter_map(|i| i["proto"].as_str()).collect();
        let our_proto: Vec<String> = p
            .subprogs
            .iter()
            .map(|s| obj.func_prototype(p, s.start).unwrap_or_default())
            .collect();
        if k_proto != our_proto {
            return Err(format!(
                "{stem}: prog {} prototypes: kernel {k_proto:?} vs kbpf {our_proto:?}",
                p.name
            ));
        }
        // Exact per-instruction check on the first instruction: the kernel has not
        // rewritten anything before it, so the line text at index 0 must agree.
        if let (Some(first), Some(l0)) = (insns.first(), p.line_info_at(0))
            && first["src"].as_str().map(str::trim) != Some(l0.line.trim())
        {
            return Err(format!("{stem}: prog {} line at insn 0 differs", p.name));
        }
        rep.progs += 1;
        rep.lines += k_src.len();
    }
    Ok(rep)
}

fn is_subsequence(short: &[String], long: &[String]) -> bool {
    let mut it = long.iter();
    short.iter().all(|s| it.any(|l| l == s))
}

#[test]
fn kernel_agrees_with_parser() {
    if let Some(why) = kernel_unavailable() {
        eprintln!("SKIPPED kernel_agrees_with_parser: {why}");
        return;
    }
    let mut objs: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objs.sort();
    let mut failures = Vec::new();
    let (mut nobj, mut nmaps, mut nslots, mut nprogs, mut nlines, mut nfmt) = (0, 0, 0, 0, 0, 0);
    for path in &objs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((_, why)) = SKIP.iter().find(|(n, _)| *n == name) {
            eprintln!("skip {name}: {why}");
            continue;
        }
        match compare_object(path) {
            Ok(r) => {
                eprintln!(
                    "{name}: {} maps, {} formatted entries, {} initial slots, {} programs, {} line records agree",
                    r.maps, r.formatted, r.slots, r.progs, r.lines
                );
                nfmt += r.formatted;
                nobj += 1;
                nmaps += r.maps;
                nslots += r.slots;
                nprogs += r.progs;
                nlines += r.lines;
            }
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "total: {nobj} objects, {nmaps} maps, {nfmt} formatted entries, {nslots} slots, {nprogs} programs, {nlines} line records"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(nobj >= 9 && nslots >= 4 && nfmt >= 10);
}

/// `BPF_BTF_LOAD`'s part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
}

/// Loads a BTF blob with `bpf(BPF_BTF_LOAD)`; Ok(()) when the kernel accepts it.
fn kernel_btf_load(blob: &[u8]) -> Result<(), String> {
    const BPF_BTF_LOAD: libc::c_long = 18;
    let mut log = vec![0u8; 1 << 16];
    let attr = BtfLoadAttr {
        btf: blob.as_ptr() as u64,
        btf_log_buf: log.as_mut_ptr() as u64,
        btf_size: blob.len() as u32,
        btf_log_size: log.len() as u32,
        btf_log_level: 1,
    };
    // SAFETY: `attr` is a valid, initialised prefix of `union bpf_attr` for BPF_BTF_LOAD
    // whose pointers refer to `blob` and `log`, both alive and of the sizes given, for
    // the duration of the call; the kernel only reads `blob` and writes within `log`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_BTF_LOAD,
            &attr as *const BtfLoadAttr,
            std::mem::size_of::<BtfLoadAttr>() as u32,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        return Err(format!("{err}: {}", String::from_utf8_lossy(&log[..end])));
    }
    // SAFETY: `fd` is a file descriptor the kernel just returned to us and nothing else
    // owns it.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// The object's BTF, with DATASEC sizes/offsets fixed up as libbpf does, is accepted by
/// the kernel's BTF verifier for every corpus object (clang's raw output is not: DATASEC
/// sizes of 0 are rejected).
#[test]
fn kernel_accepts_fixed_up_btf() {
    if let Some(why) = kernel_unavailable() {
        eprintln!("SKIPPED kernel_accepts_fixed_up_btf: {why}");
        return;
    }
    let mut n = 0;
    let mut objs: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objs.sort();
    for path in objs {
        let obj = BpfObject::open(&path).unwrap();
        let Some(btf) = &obj.btf else { continue };
        let blob = btf.to_bytes();
        // The blob re-parses to the same types.
        let again = kbpf_object::Btf::parse(&blob).unwrap();
        assert_eq!(again.types(), btf.types(), "{}", path.display());
        if let Err(e) = kernel_btf_load(&blob) {
            panic!("{}: kernel rejected BTF: {e}", path.display());
        }
        n += 1;
    }
    // And clang's unfixed .BTF (DATASEC size 0) is rejected, which is why the fix-up exists.
    let data = std::fs::read(corpus_dir().join("aom_inner_map.bpf.o")).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    use object::{Object, ObjectSection};
    let raw = elf.section_by_name(".BTF").unwrap().data().unwrap();
    let err = kernel_btf_load(raw).expect_err("unfixed BTF accepted");
    eprintln!(
        "kernel rejects clang's unfixed BTF: {}",
        err.lines().last().unwrap_or("")
    );
    eprintln!("kernel accepted the BTF of {n} objects");
    assert!(n >= 10);
}

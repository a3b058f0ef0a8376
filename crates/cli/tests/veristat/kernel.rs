//! `kbpf veristat`'s `Insns` against the live kernel's `verified_insns` (part of
//! `tests/veristat.rs`): each object is loaded by `bpftool prog loadall` into unique pin
//! directories under /sys/fs/bpf (removed on drop); skipped with a `SKIP:` line without
//! bpftool or bpf().

use std::collections::BTreeMap;
use std::path::Path;

use super::{kbpf, object, parse_csv, root};

/// Objects (from the repository root) whose programs kbpf accepts with the kernel's
/// instruction counts.
const KERNEL_AGREES: &[&str] = &[
    "tests/objects/aom_inner_map.bpf.o",
    "tests/objects/aom_plain.bpf.o",
    "tests/objects/hom_slots.bpf.o",
    "tests/objects/global_data.bpf.o",
    "tests/objects/bounded_loop.bpf.o",
    "tests/objects/multi_prog.bpf.o",
    "tests/objects/btf_kinds.bpf.o",
    "tests/golden/disasm/v4.v4.o",
];

/// Objects whose accepted programs kbpf counts differently from the kernel (kbpf processes
/// more instructions: its state pruning differs). Not asserted; the test says when one
/// starts to agree so that it can move into [`KERNEL_AGREES`].
const KERNEL_DIFFERS: &[&str] = &[
    "tests/golden/disasm/alu.v3.o",
    "tests/golden/disasm/alu.v4.o",
    "tests/golden/disasm/maps.v3.o",
    "tests/golden/disasm/maps.v4.o",
    "crates/maglev/bpf/maglev.bpf.o",
    // tc_subprogs' bpf_loop callback: without precision tracking kbpf compares the callback
    // iterations' states exactly and explores more of them than the kernel (69 vs 53).
    "tests/objects/subprog.bpf.o",
];

/// The kernel's `verified_insns` of every program of `obj`, loaded by `bpftool prog loadall`
/// (from `bpftool -j prog show` where bpftool prints it, else `BPF_OBJ_GET_INFO_BY_FD`).
fn kernel_verified_insns(obj: &Path) -> Result<BTreeMap<String, u64>, String> {
    use kbpf_kernel::bpftool::{Pins, bpftool_json, loadall};
    let stem = obj.file_name().unwrap().to_string_lossy().into_owned();
    let pins = Pins::new("kbpfvs", &stem);
    loadall(obj, &pins)?;
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&pins.progs).map_err(|e| e.to_string())? {
        let path = e.map_err(|e| e.to_string())?.path();
        let p = path.to_string_lossy().into_owned();
        let show = bpftool_json(&["prog", "show", "pinned", &p])?;
        let name = show["name"].as_str().unwrap_or_default().to_string();
        let n = match show.get("verified_insns").and_then(|v| v.as_u64()) {
            Some(n) => n,
            None => kbpf_kernel::KernelProg::from_pinned(&path)
                .and_then(|k| k.info())
                .map_err(|e| e.to_string())?
                .verified_insns
                .into(),
        };
        out.insert(name, n);
    }
    Ok(out)
}

/// kbpf's Insns of the programs it accepts, next to the kernel's `verified_insns`:
/// (program, kbpf, kernel), or the reason the kernel did not load the object.
fn insns_side_by_side(rel: &str) -> Result<Vec<(String, String, Option<u64>)>, String> {
    let obj = root().join(rel);
    let kernel = kernel_verified_insns(&obj)?;
    let obj = obj.to_string_lossy().into_owned();
    let o = kbpf(&[
        "--kernel",
        "host",
        "veristat",
        "-o",
        "csv",
        "-e",
        "prog,verdict,insns",
        &obj,
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let (_, rows) = parse_csv(&o.stdout);
    Ok(rows
        .into_iter()
        .filter(|r| r[1] == "success")
        .map(|r| {
            let k = kernel.get(&r[0]).copied();
            (r[0].clone(), r[2].clone(), k)
        })
        .collect())
}

#[test]
fn insns_equal_the_kernels_verified_insns() {
    if let Some(why) = kbpf_kernel::bpftool::unavailable(Path::new(&object("bounded_loop.bpf.o"))) {
        println!("SKIP: veristat vs kernel: {why}");
        return;
    }
    let mut compared = 0;
    let mut failures = Vec::new();
    for rel in KERNEL_AGREES {
        for (prog, ours, kernel) in insns_side_by_side(rel).unwrap() {
            compared += 1;
            match kernel {
                None => failures.push(format!("{rel}/{prog}: not loaded by the kernel")),
                Some(k) if ours != k.to_string() => {
                    failures.push(format!("{rel}/{prog}: kbpf {ours} kernel {k}"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Insns differ:\n{}",
        failures.join("\n")
    );
    assert!(compared >= 12, "only {compared} programs compared");
    println!("veristat vs kernel: {compared} programs, equal insns");
    for rel in KERNEL_DIFFERS {
        match insns_side_by_side(rel) {
            Ok(rows)
                if rows
                    .iter()
                    .all(|(_, o, k)| Some(o.clone()) == k.map(|k| k.to_string())) =>
            {
                println!("note: {rel} now agrees with the kernel; move it into KERNEL_AGREES")
            }
            Ok(rows) => {
                for (prog, ours, k) in rows {
                    let k = k.map_or_else(|| "not loaded".into(), |k| k.to_string());
                    println!("known difference: {rel}/{prog}: kbpf {ours} kernel {k}");
                }
            }
            Err(e) => println!("known difference: {rel}: kernel load failed: {e}"),
        }
    }
}

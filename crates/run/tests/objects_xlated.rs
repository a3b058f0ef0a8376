//! Clang-built objects through kbpf's whole load path — `kbpf-object` → `kbpf-loader` →
//! verifier → rewrite — must print the `prog dump xlated` text (BTF prototypes, `; source`
//! lines, inlined lookups, direct calls) that bpftool prints for the same object loaded into
//! the live kernel (`tests/xlated/objects/<object>.<prog>.xlated`), after normalising map ids
//! and call immediates only. Where `bpf()` works the kernel is asked again, so the goldens
//! cannot go stale, and its program tag must equal kbpf's; `KBPF_BLESS=1` rewrites the goldens.

use std::path::{Path, PathBuf};

use kbpf_kernel::bpftool::{Pins, loadall};
use kbpf_rewrite::xlated::{DumpOptions, normalize};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The objects, and which of their programs kbpf runs (XDP, tc and socket filters).
fn objects() -> Vec<PathBuf> {
    let r = root();
    [
        "tests/objects/aom_inner_map.bpf.o",
        "tests/objects/aom_plain.bpf.o",
        "tests/objects/hom_slots.bpf.o",
        "tests/objects/global_data.bpf.o",
        "tests/objects/bounded_loop.bpf.o",
        "tests/golden/disasm/alu.v3.o",
        "tests/golden/disasm/maps.v3.o",
        "tests/golden/disasm/alu.v4.o",
        "tests/golden/disasm/maps.v4.o",
        "tests/golden/disasm/v4.v4.o",
        "tests/objects/multi_prog.bpf.o",
        "crates/maglev/bpf/maglev.bpf.o",
        "tests/objects/core_guarded.bpf.o",
        "crates/run/tests/progs/net_helpers.bpf.o",
        "crates/run/tests/progs/redirect_map.bpf.o",
        "crates/run/tests/progs/sk_storage.bpf.o",
        "crates/run/tests/progs/cgroup_storage.bpf.o",
        "crates/run/tests/progs/change_head.bpf.o",
        "crates/run/tests/progs/core_anon.bpf.o",
        "crates/run/tests/progs/perf_out.bpf.o",
        "crates/run/tests/progs/fib.bpf.o",
        "tests/golden/disasm/calls.v3.o",
        "tests/objects/subprog.bpf.o",
        "tests/objects/map_types.bpf.o",
    ]
    .iter()
    .map(|p| r.join(p))
    .collect()
}

/// Objects kbpf cannot load yet, with the reason; the test checks that they still fail that
/// way, so whoever closes the gap is told to move the object into [`objects`].
const NOT_YET: &[(&str, &str)] = &[
    // kfuncs (BTF-resolved kernel functions): the loader resolves them, the verifier does
    // not implement them yet.
    (
        "tests/golden/disasm/branches.v3.o",
        "calling kernel functions is not supported",
    ),
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/xlated/objects")
}

fn stem(obj: &Path) -> String {
    obj.file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".o")
        .replace(".bpf", "")
}

/// The kernel kbpf follows here: the live one where it can be probed (its goldens came from
/// it), else the built-in profile.
fn profile() -> kbpf_profile::KernelProfile {
    kbpf_kernel::host_profile().unwrap_or_else(|_| kbpf_profile::KernelProfile::builtin())
}

/// kbpf's xlated text and program tag of every supported program of `obj`, by name.
fn kbpf_xlated(obj: &Path) -> Result<Vec<(String, String, String)>, String> {
    let parsed = kbpf_object::BpfObject::open(obj).map_err(|e| e.to_string())?;
    let profile = profile();
    let reg = kbpf_maps::Registry::new();
    let lopts = kbpf_loader::LoadOptions {
        maps_profile: profile.maps,
        ..Default::default()
    };
    let loaded = kbpf_loader::load_object(&parsed, &reg, &lopts).map_err(|e| e.to_string())?;
    let env = kbpf_run::maps_env(&loaded);
    let ropts = kbpf_run::LoadOptions {
        profile,
        ..Default::default()
    };
    let mut out = Vec::new();
    for p in &loaded.programs {
        if kbpf_verifier::ProgType::from_u32(p.prog_type).is_none() {
            continue;
        }
        let btf = kbpf_run::funcs_btf(&parsed, p);
        let prog = kbpf_run::Program::load(p, &env, &ropts, &btf)
            .map_err(|e| format!("{e}\n{}", e.log().unwrap_or("")))?;
        let text = prog.dump_xlated(&DumpOptions {
            dialect: kbpf_isa::disasm::Dialect::Bpftool71,
            ..Default::default()
        });
        out.push((p.name.clone(), normalize(&text), prog.tag()));
    }
    Ok(out)
}

/// The kernel's xlated text and tag of `prog` in `obj`.
fn kernel_xlated(obj: &Path, prog: &str) -> Result<(String, String), String> {
    let pins = Pins::new("kbpfxl", &stem(obj));
    loadall(obj, &pins)?;
    let tag = kbpf_kernel::KernelProg::from_pinned(pins.progs.join(prog))
        .and_then(|p| p.info())
        .map_err(|e| e.to_string())?
        .tag_hex();
    let out = std::process::Command::new("bpftool")
        .args(["prog", "dump", "xlated", "pinned"])
        .arg(pins.progs.join(prog))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok((normalize(&String::from_utf8_lossy(&out.stdout)), tag))
}

#[test]
fn objects_print_the_kernels_xlated() {
    let live = kbpf_kernel::bpftool::unavailable(&root().join("tests/objects/bounded_loop.bpf.o"));
    if let Some(why) = &live {
        println!("SKIP: run objects_xlated (kernel half): {why}");
    }
    let bless = std::env::var_os("KBPF_BLESS").is_some();
    std::fs::create_dir_all(golden_dir()).unwrap();
    let mut failures = Vec::new();
    let mut compared = 0;
    for obj in objects() {
        let ours = match kbpf_xlated(&obj) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: kbpf load: {e}", obj.display()));
                continue;
            }
        };
        for (name, text, tag) in ours {
            let path = golden_dir().join(format!("{}.{name}.xlated", stem(&obj)));
            if live.is_none() {
                match kernel_xlated(&obj, &name) {
                    Ok((_, ktag)) if ktag != tag => {
                        failures.push(format!("{}: tag kbpf {tag}, kernel {ktag}", path.display()))
                    }
                    Ok((k, _)) if bless => std::fs::write(&path, k).unwrap(),
                    Ok((k, _)) => {
                        let g = std::fs::read_to_string(&path).unwrap_or_default();
                        if g != k {
                            failures.push(format!(
                                "{}: golden is stale; kernel prints\n{k}",
                                path.display()
                            ));
                        }
                    }
                    Err(e) => failures.push(format!("{}: kernel: {e}", path.display())),
                }
            }
            let golden = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (KBPF_BLESS=1 as root)", path.display()));
            compared += 1;
            if subprog_tags_elided(&golden) != subprog_tags_elided(&text) {
                failures.push(format!("{}:\n{}", path.display(), diff(&golden, &text)));
            }
        }
    }
    for (obj, why) in NOT_YET {
        match kbpf_xlated(&root().join(obj)) {
            Ok(_) => failures.push(format!("{obj} loads now: move it into objects()")),
            Err(e) if e.contains(why) => {}
            Err(e) => failures.push(format!("{obj}: expected `{why}`, got {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(compared >= 9, "only {compared} programs compared");
}

/// A CO-RE relocation of a type the kernel lacks poisons its instruction; reached, it is the
/// verifier's `invalid func unknown#195896080` on kbpf, and the kernel refuses the object too
/// (libbpf rewrites that line of its log into `<invalid CO-RE relocation>`).
#[test]
fn poisoned_core_relocation_is_refused() {
    let obj = root().join("tests/objects/core_poison.bpf.o");
    match kbpf_xlated(&obj) {
        Ok(_) => panic!("kbpf accepted a reachable poisoned CO-RE relocation"),
        Err(e) => assert!(e.contains("invalid func unknown#195896080"), "{e}"),
    }
    if kbpf_kernel::bpftool::unavailable(&obj).is_none() {
        let pins = Pins::new("kbpfcp", "core_poison");
        let err = loadall(&obj, &pins).expect_err("the kernel refuses it too");
        assert!(err.contains("invalid CO-RE relocation"), "{err}");
    }
}

/// The differing lines, kernel first.
/// The text with the tags of subprograms that call others or reference maps replaced by
/// `<tag>`: the kernel tags each subprogram by its instructions after `jit_subprogs` rewrote
/// their call and map immediates, which kbpf does not reproduce (see `kbpf_rewrite::rewrite`);
/// a pure subprogram's tag (`square` in subprog.bpf.o) is still compared.
fn subprog_tags_elided(text: &str) -> String {
    const IMPURE: [&str; 3] = ["checksum", "sum_squares", "add_to_acc"];
    text.lines()
        .map(|line| match line.rsplit_once("#bpf_prog_") {
            Some((head, tail))
                if IMPURE
                    .iter()
                    .any(|n| tail.len() == 17 + n.len() && tail.ends_with(&format!("_{n}"))) =>
            {
                format!("{head}#<tag>{}\n", &tail[16..])
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

fn diff(kernel: &str, kbpf: &str) -> String {
    let (k, b): (Vec<_>, Vec<_>) = (kernel.lines().collect(), kbpf.lines().collect());
    let mut out = String::new();
    for i in 0..k.len().max(b.len()) {
        let (x, y) = (
            k.get(i).copied().unwrap_or(""),
            b.get(i).copied().unwrap_or(""),
        );
        if x != y {
            out.push_str(&format!("  kernel: {x}\n  kbpf:   {y}\n"));
            if out.len() > 3000 {
                out.push_str("  …\n");
                break;
            }
        }
    }
    out
}

/// `prog dump jited`: every function under its prototype and kallsyms label, the BPF
/// source lines interleaved, and the machine code decodes completely (no `(bad)`).
#[test]
fn jited_dump_shows_functions_and_source_lines() {
    let obj =
        kbpf_object::BpfObject::open(root().join("tests/objects/aom_inner_map.bpf.o")).unwrap();
    let reg = kbpf_maps::Registry::new();
    let loaded =
        kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default()).unwrap();
    let env = kbpf_run::maps_env(&loaded);
    let p = loaded.program("xdp_two_level").unwrap();
    let btf = kbpf_run::funcs_btf(&obj, p);
    let prog = kbpf_run::Program::load(p, &env, &kbpf_run::LoadOptions::default(), &btf).unwrap();
    let text = prog.dump_jited(false).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("int xdp_two_level(struct xdp_md * ctx):")
    );
    assert_eq!(
        lines.next(),
        Some(format!("bpf_prog_{}_xdp_two_level:", prog.tag()).as_str())
    );
    assert!(
        text.contains("; void *inner = bpf_map_lookup_elem(&outer, &okey);"),
        "{text}"
    );
    assert!(!text.contains("(bad)"), "{text}");
    let code_lines = text.lines().filter(|l| l.contains(":\t")).count();
    assert!(code_lines > 20, "{text}");
    // With opcodes, each instruction is followed by its bytes, which add up to the image.
    let with = prog.dump_jited(true).unwrap();
    let bytes: usize = with
        .lines()
        .filter(|l| l.starts_with('\t'))
        .map(|l| l.split_whitespace().count())
        .sum();
    assert_eq!(bytes, prog.jit().unwrap().image().len());
}

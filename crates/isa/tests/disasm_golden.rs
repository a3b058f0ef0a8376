//! Golden tests: the disassembler against real `bpftool prog dump xlated` output.
//!
//! `tests/golden/disasm/` holds, for BPF C programs built with clang-19 (`-mcpu=v3` and
//! `-mcpu=v4`) and loaded into a Linux 6.18 kernel, what bpftool v7.1.0 printed for
//! `prog dump xlated id N` (`*.xlated`) and `... opcodes` (`*.xlated-opcodes`);
//! `scripts/gen-disasm-golden.sh` regenerates them. No kernel or clang is needed here: the
//! instruction bytes are read back from the opcodes dump, and every instruction is
//! disassembled with [`Dialect::Bpftool71`] and compared with bpftool's text.
//!
//! Normalisation: call names are the one thing the bytes cannot tell. bpftool names helper
//! calls from `/proc/kallsyms` (`call __htab_map_lookup_elem#330864`) and bpf-to-bpf calls from
//! the JIT's symbols (`call pc+67#bpf_prog_<tag>_checksum`), so the call resolver used here
//! returns the name bpftool printed for a call with the same raw encoding. Helper ids in the
//! kernel's table (`call bpf_tail_call#12`) are named by the disassembler itself before the
//! resolver is asked, so those are checked for real. Map ids need no help: the translated
//! form carries them in the `ld_imm64` bytes (`map[id:91]`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kbpf_isa::Insn;
use kbpf_isa::disasm::{CallSite, Dialect, Disasm};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/disasm")
}

/// One instruction line of a bpftool dump.
struct GoldenInsn {
    index: usize,
    text: String,
    /// 8 bytes, or 16 for an `ld_imm64`.
    bytes: Vec<u8>,
}

/// A parsed `*.xlated-opcodes` file.
struct GoldenProg {
    name: String,
    insns: Vec<GoldenInsn>,
    /// Lines bpftool printed before each instruction (prototype header, `; source` lines).
    annotations: HashMap<usize, Vec<String>>,
    raw: Vec<Insn>,
}

fn parse_index_line(line: &str) -> Option<(usize, &str)> {
    let (head, text) = line.split_once(": ")?;
    let index = head.trim_start().parse().ok()?;
    head.starts_with(' ').then_some((index, text))
}

fn parse_opcodes_file(path: &Path) -> GoldenProg {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let content = std::fs::read_to_string(path).unwrap();
    let mut insns: Vec<GoldenInsn> = Vec::new();
    let mut annotations: HashMap<usize, Vec<String>> = HashMap::new();
    let mut pending: Vec<String> = Vec::new();
    let mut lines = content.lines();
    while let Some(line) = lines.next() {
        if let Some((index, text)) = parse_index_line(line) {
            let hex = lines
                .next()
                .and_then(|l| l.strip_prefix("       "))
                .unwrap_or_else(|| panic!("{name}: insn {index} has no opcodes line"));
            let bytes: Vec<u8> = hex
                .split(' ')
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            assert!(
                bytes.len() == 8 || bytes.len() == 16,
                "{name}: insn {index}: {hex}"
            );
            if !pending.is_empty() {
                annotations.insert(index, std::mem::take(&mut pending));
            }
            insns.push(GoldenInsn {
                index,
                text: text.to_owned(),
                bytes,
            });
        } else {
            assert!(
                line.starts_with("; ") || line.ends_with(':'),
                "{name}: unexpected line {line:?}"
            );
            pending.push(line.to_owned());
        }
    }
    assert!(pending.is_empty(), "{name}: trailing annotation lines");
    let mut raw = Vec::new();
    for g in &insns {
        assert_eq!(g.index, raw.len(), "{name}: indexes are not contiguous");
        for chunk in g.bytes.chunks_exact(8) {
            raw.push(Insn::from_bytes(chunk.try_into().unwrap()));
        }
    }
    GoldenProg {
        name,
        insns,
        annotations,
        raw,
    }
}

fn golden_programs() -> Vec<GoldenProg> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xlated-opcodes"))
        .collect();
    paths.sort();
    let progs: Vec<GoldenProg> = paths.iter().map(|p| parse_opcodes_file(p)).collect();
    assert!(
        progs.len() >= 7,
        "expected the golden corpus in {}, found {} dumps",
        golden_dir().display(),
        progs.len()
    );
    progs
}

/// The name bpftool printed for each call encoding (see the module docs).
fn call_names(prog: &GoldenProg) -> HashMap<u64, String> {
    let mut names = HashMap::new();
    for g in &prog.insns {
        let insn = prog.raw[g.index];
        let Some(rest) = g.text.strip_prefix("(85) call ") else {
            continue;
        };
        let name = if insn.src() == 1 {
            rest.strip_prefix("pc").unwrap().to_owned()
        } else {
            let (name, imm) = rest.rsplit_once('#').unwrap();
            assert_eq!(
                imm.parse::<i32>().unwrap(),
                insn.imm,
                "{}: {}",
                prog.name,
                g.text
            );
            name.to_owned()
        };
        if let Some(old) = names.insert(insn.to_u64(), name.clone()) {
            assert_eq!(old, name, "{}: one encoding, two names", prog.name);
        }
    }
    names
}

fn with_bpftool_disasm<R>(prog: &GoldenProg, f: impl FnOnce(&Disasm<'_>) -> R) -> R {
    let names = call_names(prog);
    let resolver = move |site: &CallSite| names.get(&site.insn.to_u64()).cloned();
    let d = Disasm::new()
        .dialect(Dialect::Bpftool71)
        .call_resolver(&resolver);
    f(&d)
}

#[test]
fn every_instruction_matches_bpftool() {
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for prog in golden_programs() {
        with_bpftool_disasm(&prog, |d| {
            for g in &prog.insns {
                let ours = d.insn_text(&prog.raw, g.index).unwrap();
                if ours != g.text {
                    mismatches.push(format!(
                        "{} insn {}: bpftool {:?}, ours {:?}",
                        prog.name, g.index, g.text, ours
                    ));
                }
                compared += 1;
            }
        });
    }
    eprintln!("compared {compared} golden instructions with bpftool");
    assert!(compared > 500, "only {compared} golden instructions");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Keeps instruction and opcodes lines, drops the BTF-derived ones.
fn strip_btf_lines(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with(' '))
        .flat_map(|l| [l, "\n"])
        .collect()
}

#[test]
fn whole_dumps_match_bpftool() {
    for prog in golden_programs() {
        let opcodes_text = std::fs::read_to_string(golden_dir().join(&prog.name)).unwrap();
        let plain_name = prog.name.trim_end_matches("-opcodes");
        let plain_text = std::fs::read_to_string(golden_dir().join(plain_name)).unwrap();
        with_bpftool_disasm(&prog, |d| {
            let ours = d.dump_xlated(&prog.raw, true).unwrap();
            assert_eq!(ours, strip_btf_lines(&opcodes_text), "{}", prog.name);
            let ours = d.dump_xlated(&prog.raw, false).unwrap();
            assert_eq!(ours, strip_btf_lines(&plain_text), "{plain_name}");

            // With bpftool's own prototype and source lines fed back through the annotation
            // hook, the whole files come out byte for byte: the hook sits where bpftool puts them.
            for (opcodes, want) in [(true, &opcodes_text), (false, &plain_text)] {
                let full = d
                    .dump_xlated_annotated(&prog.raw, opcodes, &mut |index, out| {
                        for line in prog.annotations.get(&index).into_iter().flatten() {
                            out.push_str(line);
                            out.push('\n');
                        }
                    })
                    .unwrap();
                assert_eq!(&full, want, "{} (opcodes: {opcodes})", prog.name);
            }
        });
    }
}

/// Which v4 or kernel-internal form an instruction is, if bpftool 7.1 prints it differently.
fn modern_only_form(insn: &Insn) -> Option<&'static str> {
    let op = insn.code & 0xf0;
    let alu = matches!(insn.class(), 4 | 7);
    Some(match insn.code {
        0x81 | 0x89 | 0x91 => "sign-extending load",
        0xd7 => "bswap",
        0x06 => "gotol",
        0xbf if insn.off == -1 => "per-cpu address move",
        0xbf | 0xbc if matches!(insn.off, 8 | 16 | 32) => "sign-extending move",
        0xc3 | 0xdb if insn.imm == 0x100 => "load-acquire",
        0xc3 | 0xdb if insn.imm == 0x110 => "store-release",
        _ if alu && (op == 0x30 || op == 0x90) && insn.off == 1 => "signed div/mod",
        _ => return None,
    })
}

#[test]
fn modern_dialect_differs_only_on_v4_and_internal_forms() {
    let mut differing: HashMap<&'static str, usize> = HashMap::new();
    for prog in golden_programs() {
        let names = call_names(&prog);
        let resolver = move |site: &CallSite| names.get(&site.insn.to_u64()).cloned();
        let modern = Disasm::new().call_resolver(&resolver);
        for g in &prog.insns {
            let insn = prog.raw[g.index];
            let ours = modern.insn_text(&prog.raw, g.index).unwrap();
            match modern_only_form(&insn) {
                Some(form) => {
                    assert_ne!(ours, g.text, "{} insn {}: {form}", prog.name, g.index);
                    assert!(ours.starts_with(&format!("({:02x}) ", insn.code)), "{ours}");
                    *differing.entry(form).or_default() += 1;
                }
                None => assert_eq!(ours, g.text, "{} insn {}", prog.name, g.index),
            }
        }
    }
    eprintln!("instructions bpftool 7.1 prints in pre-v4 form: {differing:?}");
    for form in [
        "sign-extending load",
        "sign-extending move",
        "signed div/mod",
        "bswap",
        "gotol",
        "per-cpu address move",
        "load-acquire",
        "store-release",
    ] {
        assert!(differing.contains_key(form), "no golden instance of {form}");
    }
}

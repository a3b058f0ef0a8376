//! Runs every bpf_conformance `.data` file of `tests/conformance/` on the JIT and asserts that
//! each result equals the expected one (and equals the interpreter's).
//!
//! The `.data` format is parsed by a small local reader (sections `-- asm`, `-- raw`,
//! `-- mem`, `-- result`; `#` comments) so that this crate does not depend on the CLI.
#![cfg(all(target_arch = "x86_64", unix))]

use std::path::{Path, PathBuf};

use kbpf_isa::Insn;
use kbpf_jit::JitProgram;
use kbpf_vm::{Helper, HelperRegistry, Interpreter, Mode};

/// Number of `.data` files in the suite copy.
const EXPECTED_FILES: usize = 313;

struct Case {
    program: Vec<Insn>,
    mem: Vec<u8>,
    result: u64,
}

fn parse(text: &str) -> Result<Case, String> {
    let mut section = String::new();
    let (mut asm, mut raw, mut mem, mut result) = (String::new(), Vec::new(), Vec::new(), None);
    let mut has_raw = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- ") {
            section = name.trim().to_string();
            has_raw |= section == "raw";
            continue;
        }
        let body = line.split('#').next().unwrap_or("").trim();
        match section.as_str() {
            "asm" => {
                asm.push_str(line);
                asm.push('\n');
            }
            "raw" if !body.is_empty() => {
                let h = body.trim_start_matches("0x");
                raw.push(Insn::from_u64(
                    u64::from_str_radix(h, 16).map_err(|e| format!("raw {body}: {e}"))?,
                ));
            }
            "mem" => {
                for tok in body.split_whitespace() {
                    mem.push(u8::from_str_radix(tok, 16).map_err(|e| format!("mem {tok}: {e}"))?);
                }
            }
            "result" if !body.is_empty() => {
                let v = if let Some(h) = body.strip_prefix("0x") {
                    u64::from_str_radix(h, 16).map_err(|e| format!("result {body}: {e}"))?
                } else if let Some(n) = body.strip_prefix('-') {
                    n.parse::<u64>()
                        .map_err(|e| format!("result {body}: {e}"))?
                        .wrapping_neg()
                } else {
                    body.parse::<u64>()
                        .map_err(|e| format!("result {body}: {e}"))?
                };
                result = Some(v);
            }
            _ => {}
        }
    }
    let program = if has_raw {
        raw
    } else {
        kbpf_isa::asm::assemble(&asm).map_err(|e| format!("asm: {e}"))?
    };
    Ok(Case {
        program,
        mem,
        result: result.ok_or("no -- result section")?,
    })
}

/// The suite's helper 5 ("unwind"): returns its argument; a 0 result stops the program.
unsafe extern "C" fn unwind(r1: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    r1
}

fn helpers() -> HelperRegistry {
    let mut h = HelperRegistry::new();
    h.register(
        5,
        Helper {
            name: "unwind",
            func: unwind,
            unwind_on_zero: true,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    h
}

fn data_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    files
}

/// Decodes the whole image with iced-x86: it must be a clean instruction stream whose
/// instruction boundaries include every BPF instruction's offset, with each subprogram
/// starting at `push rbp` (a leaf main function saves only what it writes, maybe nothing).
fn check_image(jit: &JitProgram, insns: usize) -> Result<(), String> {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};
    let image = jit.image();
    let mut d = Decoder::with_ip(64, image, 0, DecoderOptions::NONE);
    let mut starts = std::collections::BTreeMap::new();
    while d.can_decode() {
        let at = d.position();
        let i = d.decode();
        if i.is_invalid() {
            return Err(format!("invalid instruction at {at:#x}"));
        }
        starts.insert(at, i);
    }
    for pc in 0..insns {
        if let Some(off) = jit.insn_offset(pc)
            && !starts.contains_key(&off)
        {
            return Err(format!(
                "insn {pc} at {off:#x} is not an instruction boundary"
            ));
        }
    }
    for (pc, off) in jit.functions() {
        let first = starts
            .get(&off)
            .ok_or(format!("function {pc} at {off:#x}"))?;
        if pc != 0 && (first.mnemonic() != Mnemonic::Push || first.op0_register() != Register::RBP)
        {
            return Err(format!("function {pc} does not start with push rbp"));
        }
    }
    Ok(())
}

#[test]
fn every_conformance_file_passes_on_the_jit() {
    let files = data_files();
    assert_eq!(
        files.len(),
        EXPECTED_FILES,
        "conformance corpus changed size"
    );
    let helpers = helpers();
    let mut failures = Vec::new();
    let mut max_passes = 0;
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let text = std::fs::read_to_string(path).expect("readable test file");
        let case = match parse(&text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let jit = match JitProgram::compile(&case.program, &helpers) {
            Ok(j) => j,
            Err(e) => {
                failures.push(format!("{name}: compile: {e}"));
                continue;
            }
        };
        max_passes = max_passes.max(jit.passes());
        if let Err(e) = check_image(&jit, case.program.len()) {
            failures.push(format!("{name}: image: {e}"));
        }
        let mut mem = case.mem.clone();
        match jit.run_mem(&mut mem) {
            Ok(r0) if r0 == case.result => {}
            Ok(r0) => failures.push(format!("{name}: expected {:#x}, got {r0:#x}", case.result)),
            Err(e) => failures.push(format!("{name}: run: {e}")),
        }
        // Same final memory as the interpreter (stores, atomics).
        let vm = Interpreter::new(&case.program, &helpers).expect("valid program");
        let mut mem2 = case.mem.clone();
        let r = vm.run_mem(&mut mem2, Mode::Checked);
        if r.as_ref().ok() != Some(&case.result) || mem2 != mem {
            failures.push(format!(
                "{name}: interpreter disagrees ({r:?}) or memory differs"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        max_passes >= 2,
        "the size loop always runs at least two passes"
    );
}

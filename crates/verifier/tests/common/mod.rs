//! The verifier corpus format, shared by the kbpf and kernel-differential corpus tests.
//!
//! One program per `tests/corpus/*.txt` file: directives, a `---` line, then the program in the
//! conformance assembler syntax (`kbpf_isa::asm`). Directives:
//!
//! ```text
//! # free comment
//! prog: xdp | socket_filter | sched_cls
//! map: NAME TYPE key=K value=V max=N [flags=F] [inner=TEMPLATE]
//! expect: accept | reject
//! error: <a line the log must contain>      (for rejects; the kernel's message)
//! log: <another line the log must contain>  (optional, any number)
//! kernel-log: <a line only the kernel log is checked for>  (optional)
//! ```
//!
//! Expected lines may name what differs between kernel builds, expanded per kernel profile
//! ([`Case::expected`]): `{inner_map_lookup}` is the type of an unchecked outer map-in-map
//! lookup (`map_value` or `map_ptr`, `kbpf_profile::InnerMapLookup`). The kernel test
//! expands it with the live kernel's profile, the kbpf test runs every case under each
//! variant.
//!
//! Maps are created in order; `inner=TEMPLATE` names an earlier map used as the inner-map
//! template (`inner_map_fd`). In the program, `lddw %rN, map:NAME` loads a map reference
//! (`BPF_PSEUDO_MAP_FD`); for kbpf the fd is the map's index in the file, for the kernel the
//! real fd is patched in.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};

/// One map directive.
#[derive(Clone, Debug)]
pub struct MapSpec {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// Index of the template map in `Case::maps`.
    pub inner: Option<usize>,
}

/// What the kernel and kbpf must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Accept,
    Reject,
}

/// One parsed corpus file.
#[derive(Clone, Debug)]
pub struct Case {
    pub path: PathBuf,
    pub name: String,
    pub prog_type: u32,
    pub maps: Vec<MapSpec>,
    pub expect: Expect,
    pub error: Option<String>,
    pub log: Vec<String>,
    pub kernel_log: Vec<String>,
    /// Instructions with map references as `BPF_PSEUDO_MAP_FD` and imm = map index.
    pub insns: Vec<Insn>,
}

/// Marker placed in the high half of an `lddw` immediate to find map references after
/// assembling: the low 32 bits carry the map index, bit 31 of the high half says "value".
const MAP_MARK: u64 = 0x6b62_7066 << 32;
const MAP_VALUE_MARK: u64 = 0x6b62_7067 << 32;

fn map_type(name: &str) -> Option<u32> {
    Some(match name {
        "hash" => 1,
        "array" => 2,
        "prog_array" => 3,
        "perf_event_array" => 4,
        "percpu_hash" => 5,
        "percpu_array" => 6,
        "cgroup_array" => 8,
        "lru_hash" => 9,
        "lpm_trie" => 11,
        "array_of_maps" => 12,
        "hash_of_maps" => 13,
        "devmap" => 14,
        "sockmap" => 15,
        "xskmap" => 17,
        "queue" => 22,
        "ringbuf" => 27,
        _ => return None,
    })
}

fn prog_type(name: &str) -> Option<u32> {
    Some(match name {
        "socket_filter" => 1,
        "kprobe" => 2,
        "sched_cls" => 3,
        "xdp" => 6,
        "raw_tracepoint" => 17,
        "tracepoint" => 5,
        _ => return None,
    })
}

fn num(s: &str) -> Result<u32, String> {
    let r = if let Some(h) = s.strip_prefix("0x") {
        u32::from_str_radix(h, 16)
    } else {
        s.parse()
    };
    r.map_err(|e| format!("bad number `{s}`: {e}"))
}

/// Expected lines of a case under one verifier behaviour.
pub struct Expected {
    pub error: Option<String>,
    pub log: Vec<String>,
    pub kernel_log: Vec<String>,
}

impl Case {
    /// The expected lines with the profile placeholders expanded for `kernel`.
    pub fn expected(&self, kernel: &kbpf_verifier::VerifierBehaviour) -> Expected {
        let x = |s: &String| s.replace("{inner_map_lookup}", kernel.inner_map_lookup.type_name());
        Expected {
            error: self.error.as_ref().map(x),
            log: self.log.iter().map(x).collect(),
            kernel_log: self.kernel_log.iter().map(x).collect(),
        }
    }

    /// Whether an expectation depends on the profile.
    pub fn profile_dependent(&self) -> bool {
        self.error
            .iter()
            .chain(&self.log)
            .chain(&self.kernel_log)
            .any(|l| l.contains("{inner_map_lookup}"))
    }
}

/// Parses one corpus file.
pub fn parse(path: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (head, body) = text
        .split_once("\n---\n")
        .ok_or_else(|| format!("{}: missing `---` line", path.display()))?;
    let mut case = Case {
        path: path.to_owned(),
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        prog_type: 6,
        maps: Vec::new(),
        expect: Expect::Accept,
        error: None,
        log: Vec::new(),
        kernel_log: Vec::new(),
        insns: Vec::new(),
    };
    let err = |m: String| format!("{}: {m}", path.display());
    for line in head.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, val) = line
            .split_once(':')
            .ok_or_else(|| err(format!("bad directive `{line}`")))?;
        let val = val.trim();
        match key.trim() {
            "prog" => {
                case.prog_type =
                    prog_type(val).ok_or_else(|| err(format!("unknown prog type `{val}`")))?
            }
            "expect" => {
                case.expect = match val {
                    "accept" => Expect::Accept,
                    "reject" => Expect::Reject,
                    _ => return Err(err(format!("bad expect `{val}`"))),
                }
            }
            "error" => case.error = Some(val.to_owned()),
            "log" => case.log.push(val.to_owned()),
            "kernel-log" => case.kernel_log.push(val.to_owned()),
            "map" => {
                let mut words = val.split_whitespace();
                let name = words.next().ok_or_else(|| err("map without name".into()))?;
                let ty = words.next().ok_or_else(|| err("map without type".into()))?;
                let mut spec = MapSpec {
                    name: name.to_owned(),
                    map_type: map_type(ty).ok_or_else(|| err(format!("unknown map type {ty}")))?,
                    key_size: 4,
                    value_size: 4,
                    max_entries: 1,
                    map_flags: 0,
                    inner: None,
                };
                for w in words {
                    let (k, v) = w
                        .split_once('=')
                        .ok_or_else(|| err(format!("bad map attribute `{w}`")))?;
                    match k {
                        "key" => spec.key_size = num(v).map_err(&err)?,
                        "value" => spec.value_size = num(v).map_err(&err)?,
                        "max" => spec.max_entries = num(v).map_err(&err)?,
                        "flags" => spec.map_flags = num(v).map_err(&err)?,
                        "inner" => {
                            spec.inner = Some(
                                case.maps
                                    .iter()
                                    .position(|m| m.name == v)
                                    .ok_or_else(|| err(format!("unknown inner template {v}")))?,
                            )
                        }
                        _ => return Err(err(format!("unknown map attribute `{k}`"))),
                    }
                }
                case.maps.push(spec);
            }
            other => return Err(err(format!("unknown directive `{other}`"))),
        }
    }
    // Replace `map:NAME` / `map_value:NAME` operands with marked immediates.
    let mut src = String::new();
    for line in body.lines() {
        let mut l = line.to_owned();
        for (prefix, mark) in [("map_value:", MAP_VALUE_MARK), ("map:", MAP_MARK)] {
            if let Some(pos) = l.find(prefix) {
                let name: String = l[pos + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let idx = case
                    .maps
                    .iter()
                    .position(|m| m.name == name)
                    .ok_or_else(|| err(format!("unknown map `{name}` in `{line}`")))?;
                let end = pos + prefix.len() + name.len();
                l = format!("{}{:#x}{}", &l[..pos], mark | idx as u64, &l[end..]);
            }
        }
        src.push_str(&l);
        src.push('\n');
    }
    let mut insns = kbpf_isa::asm::assemble(&src).map_err(|e| err(e.to_string()))?;
    let mut i = 0;
    while i + 1 < insns.len() {
        if insns[i].is_ld_imm64() {
            let v = (insns[i].imm as u32 as u64) | ((insns[i + 1].imm as u32 as u64) << 32);
            let (mark, pseudo) = if v & !0xffff_ffff == MAP_MARK {
                (true, BPF_PSEUDO_MAP_FD)
            } else if v & !0xffff_ffff == MAP_VALUE_MARK {
                (true, BPF_PSEUDO_MAP_VALUE)
            } else {
                (false, 0)
            };
            if mark {
                let dst = insns[i].dst();
                insns[i] = Insn::new(insns[i].code, dst, pseudo, 0, (v & 0xffff_ffff) as i32);
                insns[i + 1].imm = 0;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    case.insns = insns;
    Ok(case)
}

/// Every corpus file, sorted by name.
pub fn corpus() -> Vec<Case> {
    // Sibling crates (kbpf-run's xlated goldens) include this module too: name the corpus
    // through the verifier crate's directory.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../verifier/tests/corpus");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| parse(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Only the cases whose name contains `KBPF_CORPUS_FILTER`, if set.
pub fn filtered() -> Vec<Case> {
    let filter = std::env::var("KBPF_CORPUS_FILTER").unwrap_or_default();
    corpus()
        .into_iter()
        .filter(|c| c.name.contains(&filter))
        .collect()
}

/// The case's maps created in the live kernel (templates passed as `inner_map_fd`) and its
/// instructions with each `map:NAME` reference patched to the real fd, ready for
/// `BPF_PROG_LOAD`. The maps must outlive the load.
pub fn kernel_maps_and_insns(
    case: &Case,
) -> Result<(Vec<kbpf_kernel::KernelMap>, Vec<Insn>), String> {
    use std::os::fd::AsRawFd;
    let mut maps: Vec<kbpf_kernel::KernelMap> = Vec::new();
    for m in &case.maps {
        let mut attr =
            kbpf_kernel::MapCreateAttr::new(m.map_type, m.key_size, m.value_size, m.max_entries)
                .flags(m.map_flags)
                .name(m.name.chars().take(15).collect::<String>());
        if let Some(t) = m.inner {
            attr = attr.inner_raw(maps[t].as_raw_fd());
        }
        maps.push(
            kbpf_kernel::KernelMap::create(&attr).map_err(|e| format!("map {}: {e}", m.name))?,
        );
    }
    let mut insns = case.insns.clone();
    let mut i = 0;
    while i < insns.len() {
        if insns[i].is_ld_imm64()
            && matches!(insns[i].src(), BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_VALUE)
        {
            insns[i].imm = maps[insns[i].imm as usize].as_raw_fd();
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok((maps, insns))
}

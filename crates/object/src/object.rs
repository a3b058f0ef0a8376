//! The object file as a whole: ELF sections and symbols, programs and their `.text`
//! subprograms, map definitions, relocations and the libbpf-style linking that turns each
//! entry function into one self-contained instruction array.
//!
//! Linking follows libbpf's `bpf_object__reloc_code`: walk the program's instructions in
//! order; at each bpf-to-bpf call or function-pointer `ld_imm64` whose callee is not yet
//! placed, append the callee at the end and recurse into it immediately (depth-first), then
//! patch `imm` to the pc-relative distance. `func_info`, `line_info` and CO-RE records of
//! each placed function move with it.

use std::collections::HashMap;

use kbpf_isa::Insn;
use kbpf_isa::insn::{
    BPF_CALL, BPF_JMP, BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
};
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SymbolKind};

use crate::btf::{Btf, BtfError, BtfKind};
use crate::btf_ext::BtfExt;
use crate::core::CoreRelo;
use crate::error::ObjectError;
use crate::maps::{
    GlobalDataKind, MapDef, MapOrigin, internal_map_name, is_map_in_map, map_type,
    object_name_from_path, parse_btf_map_def,
};
use crate::section::{SecDef, find_sec_def};

/// `EM_BPF`.
const EM_BPF: u16 = 247;
/// `R_BPF_64_64`: `ld_imm64` against a symbol.
const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_ABS64`: 64-bit data word (used in `.rel.maps` for initial slots).
const R_BPF_64_ABS64: u32 = 2;
/// `R_BPF_64_32`: call `imm` against a function symbol.
const R_BPF_64_32: u32 = 10;
/// `SHF_EXECINSTR`.
const SHF_EXECINSTR: u64 = 0x4;
/// `SHT_NOBITS`.
const SHT_NOBITS: u32 = 8;
/// `SHT_PROGBITS`.
const SHT_PROGBITS: u32 = 1;

/// What a relocated instruction refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocKind {
    /// `ld_imm64` of a map: the instruction now has `src = BPF_PSEUDO_MAP_FD` and
    /// `imm = map index`; the loader replaces `imm` with the map's fd/address.
    MapFd {
        /// Index into [`BpfObject::maps`].
        map: usize,
    },
    /// `ld_imm64` of global data: `src = BPF_PSEUDO_MAP_VALUE`, first `imm = map index`,
    /// second `imm = offset` into the map value.
    MapValue {
        /// Index into [`BpfObject::maps`].
        map: usize,
        /// Byte offset into the value.
        offset: u32,
    },
    /// bpf-to-bpf call (`src = BPF_PSEUDO_CALL`), already patched: `imm` is
    /// `target - (insn_idx + 1)`.
    Call {
        /// Instruction index of the callee in the linked program.
        target: usize,
    },
    /// Function pointer (`ld_imm64`, `src = BPF_PSEUDO_FUNC`), already patched like a call.
    Func {
        /// Instruction index of the function in the linked program.
        target: usize,
    },
    /// Call of a kernel function declared `extern ... __ksym` (libbpf's
    /// `RELO_EXTERN_CALL`): the instruction now has `src = BPF_PSEUDO_KFUNC_CALL`,
    /// `imm = 0`; the loader resolves the symbol against the kernel's BTF and sets `imm` to
    /// the function's BTF id (`off = 0`: vmlinux), or poisons the call of an unresolved
    /// `__weak` extern as libbpf does.
    Kfunc {
        /// The extern is `__weak` (libbpf tolerates it missing from the kernel).
        weak: bool,
    },
}

/// One relocation of a linked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// Instruction index in [`Program::insns`].
    pub insn_idx: usize,
    /// What the instruction refers to.
    pub kind: RelocKind,
    /// The ELF symbol the relocation named (map, variable, section or function).
    pub symbol: String,
}

/// A function placed in a linked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subprog {
    /// Function name.
    pub name: String,
    /// First instruction index in [`Program::insns`].
    pub start: usize,
    /// Number of instructions.
    pub len: usize,
    /// Section the function came from.
    pub section: String,
}

/// `bpf_func_info` of a linked program (instruction index, FUNC type id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfo {
    /// Instruction index in the linked program.
    pub insn_idx: usize,
    /// BTF `FUNC` type id.
    pub type_id: u32,
}

/// `bpf_line_info` of a linked program, with its strings resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction index in the linked program.
    pub insn_idx: usize,
    /// Source file name.
    pub file_name: String,
    /// Source line text (what bpftool prints after `; `).
    pub line: String,
    /// Line number.
    pub line_num: u32,
    /// Column.
    pub line_col: u32,
    /// BTF string offset of the file name (for passing line info to a kernel).
    pub file_name_off: u32,
    /// BTF string offset of the line text.
    pub line_off: u32,
}

/// One program: an entry function with its subprograms appended, relocated.
#[derive(Debug, Clone)]
pub struct Program {
    /// Entry function name.
    pub name: String,
    /// ELF section name (`xdp`, `kprobe/do_sys_open`, …), without libbpf's `?` prefix.
    pub section: String,
    /// libbpf's `autoload`: false for a `SEC("?…")` program, which a whole-object load skips
    /// (veristat and the selftests load such programs one at a time).
    pub autoload: bool,
    /// libbpf's section definition, `None` when the section name is unknown to libbpf.
    pub sec_def: Option<SecDef>,
    /// Linked instructions (entry function first, then subprograms in libbpf's order).
    pub insns: Vec<Insn>,
    /// Placed functions, entry first.
    pub subprogs: Vec<Subprog>,
    /// Relocations, by instruction index.
    pub relocations: Vec<Relocation>,
    /// Function info (one per placed function when the object has BTF).
    pub func_info: Vec<FuncInfo>,
    /// Line info, sorted by instruction index.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocations (unresolved; see [`crate::core`]).
    pub core_relos: Vec<CoreRelo>,
}

impl Program {
    /// `enum bpf_prog_type` (0 when the section is unknown).
    pub fn prog_type(&self) -> u32 {
        self.sec_def.map_or(0, |d| d.prog_type)
    }

    /// `expected_attach_type` libbpf loads with.
    pub fn expected_attach_type(&self) -> u32 {
        self.sec_def.map_or(0, |d| d.expected_attach_type)
    }

    /// Program load flags (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`).
    pub fn prog_flags(&self) -> u32 {
        self.sec_def.map_or(0, |d| d.prog_flags)
    }

    /// The attach target after the first `/` of the section name (`do_sys_open` for
    /// `kprobe/do_sys_open`), if any.
    pub fn attach_target(&self) -> Option<&str> {
        self.section.split_once('/').map(|(_, t)| t)
    }

    /// The line-info record that starts exactly at `insn_idx` (what bpftool prints as a
    /// `; …` line before that instruction).
    pub fn line_info_at(&self, insn_idx: usize) -> Option<&LineInfo> {
        self.line_info
            .binary_search_by_key(&insn_idx, |l| l.insn_idx)
            .ok()
            .map(|i| &self.line_info[i])
    }

    /// The line-info record in effect at `insn_idx` (the last one at or before it).
    pub fn line_info_covering(&self, insn_idx: usize) -> Option<&LineInfo> {
        let i = self.line_info.partition_point(|l| l.insn_idx <= insn_idx);
        i.checked_sub(1).map(|i| &self.line_info[i])
    }

    /// The FUNC type id of the function starting at `insn_idx`, if any.
    pub fn func_info_at(&self, insn_idx: usize) -> Option<u32> {
        self.func_info
            .iter()
            .find(|f| f.insn_idx == insn_idx)
            .map(|f| f.type_id)
    }

    /// `func_info` as the kernel takes it in `BPF_PROG_LOAD` (`struct bpf_func_info`:
    /// `insn_off` in instructions, `type_id`), for the object's BTF.
    pub fn kernel_func_info(&self) -> Vec<[u32; 2]> {
        self.func_info
            .iter()
            .map(|f| [f.insn_idx as u32, f.type_id])
            .collect()
    }

    /// `line_info` as the kernel takes it (`struct bpf_line_info`: `insn_off`,
    /// `file_name_off`, `line_off`, `line_col = line << 10 | col`).
    pub fn kernel_line_info(&self) -> Vec<[u32; 4]> {
        self.line_info
            .iter()
            .map(|l| {
                [
                    l.insn_idx as u32,
                    l.file_name_off,
                    l.line_off,
                    (l.line_num << 10) | (l.line_col & 0x3ff),
                ]
            })
            .collect()
    }

    /// The subprogram containing `insn_idx`.
    pub fn subprog_of(&self, insn_idx: usize) -> Option<&Subprog> {
        self.subprogs
            .iter()
            .find(|s| s.start <= insn_idx && insn_idx < s.start + s.len)
    }
}

/// A parsed BPF object file.
#[derive(Debug, Clone)]
pub struct BpfObject {
    /// libbpf's object name (file base name up to the first `.`); prefixes global data
    /// map names.
    pub name: String,
    /// Contents of the `license` section (empty when absent).
    pub license: String,
    /// Contents of the `version` section.
    pub kern_version: Option<u32>,
    /// The object's BTF (with DATASEC sizes and offsets fixed up as libbpf does).
    pub btf: Option<Btf>,
    /// The object's `.BTF.ext`.
    pub btf_ext: Option<BtfExt>,
    /// Maps: legacy `maps` first, then `.maps` in BTF order, then global data in section
    /// order (libbpf's order).
    pub maps: Vec<MapDef>,
    /// Programs in section order, then symbol order within a section.
    pub programs: Vec<Program>,
    /// The `__kconfig` externs, in the `.kconfig` map's layout (empty without one).
    pub kconfig: Vec<crate::kconfig::KconfigExtern>,
}

/// A function symbol in an executable section.
#[derive(Debug, Clone)]
struct Func {
    name: String,
    sec_idx: usize,
    /// First instruction, relative to the section.
    start: usize,
    len: usize,
    global: bool,
}

/// A relocation recorded against an instruction of an executable section (libbpf's
/// `reloc_desc` before linking).
#[derive(Debug, Clone)]
enum RawReloc {
    Call {
        sym_off: u64,
        symbol: String,
    },
    SubprogAddr {
        sym_off: u64,
        symbol: String,
    },
    Map {
        map: usize,
        symbol: String,
    },
    Data {
        map: usize,
        sym_off: u64,
        symbol: String,
    },
    Kfunc {
        symbol: String,
        weak: bool,
    },
}

/// What relocations may point at besides functions: maps by (section, offset), global
/// data maps by section, `__kconfig` externs by name (map index, offset in its value).
#[derive(Clone, Copy)]
struct RelocTargets<'a> {
    map_at: &'a HashMap<(usize, u64), usize>,
    data_map: &'a HashMap<usize, usize>,
    kconfig: &'a HashMap<String, (usize, u64)>,
}

#[derive(Debug, Clone)]
struct ExecSection {
    name: String,
    insns: Vec<Insn>,
    relocs: HashMap<usize, RawReloc>,
}

impl BpfObject {
    /// Reads and parses an object file; its libbpf object name comes from the file name.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<BpfObject, ObjectError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| ObjectError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        BpfObject::parse(&data, &object_name_from_path(&path.to_string_lossy()))
    }

    /// Parses an object from memory. `name` is the libbpf object name.
    pub fn parse(data: &[u8], name: &str) -> Result<BpfObject, ObjectError> {
        Parser::new(data, name)?.run()
    }

    /// Index of the map with this (libbpf) name.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }

    /// The map with this (libbpf) name.
    pub fn map(&self, name: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// The program with this name.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The prototype bpftool prints above the function starting at `insn_idx` of
    /// `prog` in `prog dump xlated` (`int xdp_prog(struct xdp_md * ctx)`).
    pub fn func_prototype(&self, prog: &Program, insn_idx: usize) -> Option<String> {
        let btf = self.btf.as_ref()?;
        btf.func_prototype(prog.func_info_at(insn_idx)?).ok()
    }
}

struct Parser<'d> {
    file: ElfFile64<'d, object::LittleEndian>,
    name: String,
}

fn sec_err(section: &str, reason: impl Into<String>) -> ObjectError {
    ObjectError::Section {
        section: section.to_string(),
        reason: reason.into(),
    }
}

impl<'d> Parser<'d> {
    fn new(data: &'d [u8], name: &str) -> Result<Self, ObjectError> {
        let file = ElfFile64::<object::LittleEndian>::parse(data)
            .map_err(|e| ObjectError::Elf(e.to_string()))?;
        let machine = file.elf_header().e_machine(object::LittleEndian);
        if machine != EM_BPF {
            return Err(ObjectError::NotBpf { machine });
        }
        Ok(Parser {
            file,
            name: name.to_string(),
        })
    }

    fn section_name(&self, idx: usize) -> String {
        self.file
            .section_by_index(object::SectionIndex(idx))
            .ok()
            .and_then(|s| s.name().ok().map(str::to_string))
            .unwrap_or_else(|| format!("#{idx}"))
    }

    fn run(self) -> Result<BpfObject, ObjectError> {
        let endian = object::LittleEndian;
        let mut license = String::new();
        let mut kern_version = None;
        let mut btf_data = None;
        let mut btf_ext_data = None;
        let mut maps_shndx = None;
        let mut legacy_shndx = None;
        let mut exec: HashMap<usize, ExecSection> = HashMap::new();
        let mut exec_order = Vec::new();
        let mut data_secs = Vec::new();
        let mut text_shndx = None;

        for sec in self.file.sections() {
            let idx = sec.index().0;
            let name = sec
                .name()
                .map_err(|e| sec_err(&format!("#{idx}"), e.to_string()))?
                .to_string();
            let hdr = sec.elf_section_header();
            let sh_type = hdr.sh_type(endian);
            let sh_flags = hdr.sh_flags(endian);
            let data = || -> Result<&'d [u8], ObjectError> {
                sec.data().map_err(|e| sec_err(&name, e.to_string()))
            };
            match name.as_str() {
                "license" => {
                    let d = data()?;
                    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
                    license = String::from_utf8_lossy(&d[..end]).into_owned();
                    continue;
                }
                "version" => {
                    let d = data()?;
                    let b: [u8; 4] = d.try_into().map_err(|_| {
                        sec_err(&name, format!("invalid size {} (expected 4)", d.len()))
                    })?;
                    kern_version = Some(u32::from_le_bytes(b));
                    continue;
                }
                ".BTF" => {
                    btf_data = Some(data()?);
                    continue;
                }
                ".BTF.ext" => {
                    btf_ext_data = Some(data()?);
                    continue;
                }
                ".maps" => {
                    maps_shndx = Some(idx);
                    continue;
                }
                "maps" => {
                    legacy_shndx = Some(idx);
                    continue;
                }
                _ => {}
            }
            if sh_type == SHT_PROGBITS && sh_flags & SHF_EXECINSTR != 0 && sec.size() > 0 {
                let d = data()?;
                let insns = kbpf_isa::insn::insns_from_bytes(d).ok_or_else(|| {
                    sec_err(&name, format!("size {} is not a multiple of 8", d.len()))
                })?;
                if name == ".text" {
                    text_shndx = Some(idx);
                }
                exec.insert(
                    idx,
                    ExecSection {
                        name: name.clone(),
                        insns,
                        relocs: HashMap::new(),
                    },
                );
                exec_order.push(idx);
            } else if let Some(kind) = global_data_kind(&name, sh_type)
                && sec.size() > 0
            {
                data_secs.push((idx, name.clone(), kind));
            }
        }

        // BTF first: maps and line info depend on it.
        let mut btf = match btf_data {
            Some(d) => Some(Btf::parse(d).map_err(|e| ObjectError::Btf {
                section: ".BTF".into(),
                source: e,
            })?),
            None => None,
        };
        if let Some(b) = btf.as_mut() {
            self.fixup_datasecs(b)?;
            b.fixup_ksyms().map_err(|e| ObjectError::Btf {
                section: ".BTF".into(),
                source: e,
            })?;
        }
        let (kconfig, kconfig_size) = match btf.as_mut() {
            Some(b) => crate::kconfig::collect(b, |n| {
                self.file
                    .symbols()
                    .any(|s| s.is_undefined() && s.name() == Ok(n) && s.is_weak())
            })?,
            None => (Vec::new(), 0),
        };
        let btf_ext = match (btf_ext_data, btf.as_ref()) {
            (Some(d), Some(b)) => Some(BtfExt::parse(d, b)?),
            _ => None,
        };

        // Maps, in libbpf's order.
        let mut maps = Vec::new();
        // (section index, offset) → map index, for relocations.
        let mut map_at: HashMap<(usize, u64), usize> = HashMap::new();
        if let Some(shndx) = legacy_shndx {
            for m in self.legacy_maps(shndx)? {
                map_at.insert((shndx, m.sec_offset), maps.len());
                maps.push(m);
            }
        }
        if let Some(shndx) = maps_shndx {
            let b = btf
                .as_ref()
                .ok_or_else(|| sec_err(".maps", "BTF-defined maps need a .BTF section"))?;
            for m in self.btf_maps(b, shndx)? {
                map_at.insert((shndx, m.sec_offset), maps.len());
                maps.push(m);
            }
            self.initial_slots(b, shndx, &mut maps)?;
        }
        let mut data_map: HashMap<usize, usize> = HashMap::new();
        for (idx, sec_name, kind) in &data_secs {
            let sec = self
                .file
                .section_by_index(object::SectionIndex(*idx))
                .map_err(|e| sec_err(sec_name, e.to_string()))?;
            let size =
                u32::try_from(sec.size()).map_err(|_| sec_err(sec_name, "section too large"))?;
            let data = match kind {
                GlobalDataKind::Bss => None,
                _ => Some(
                    sec.data()
                        .map_err(|e| sec_err(sec_name, e.to_string()))?
                        .to_vec(),
                ),
            };
            let btf_value_type_id = btf
                .as_ref()
                .and_then(|b| b.find_by_name_kind(sec_name, crate::btf::kind::DATASEC))
                .unwrap_or(0);
            data_map.insert(*idx, maps.len());
            maps.push(MapDef::global_data(
                internal_map_name(&self.name, sec_name),
                sec_name,
                *kind,
                size,
                data,
                btf_value_type_id,
            ));
        }

        // bpf_object__init_kconfig_map: after the global data maps.
        let mut kconfig_at: HashMap<String, (usize, u64)> = HashMap::new();
        if !kconfig.is_empty() {
            kconfig_at = kconfig
                .iter()
                .map(|e| (e.name.clone(), (maps.len(), u64::from(e.offset))))
                .collect();
            maps.push(crate::kconfig::map_def(
                &self.name,
                btf.as_ref(),
                kconfig_size,
            ));
        }

        // Relocations of executable sections.
        for &idx in &exec_order {
            let targets = RelocTargets {
                map_at: &map_at,
                data_map: &data_map,
                kconfig: &kconfig_at,
            };
            self.collect_relocs(idx, &mut exec, text_shndx, &targets, &maps)?;
        }

        // Functions.
        let funcs = self.functions(&exec)?;

        let ctx = LinkCtx {
            exec: &exec,
            funcs: &funcs,
            text_shndx,
            btf: btf.as_ref(),
            btf_ext: btf_ext.as_ref(),
        };
        let mut programs = Vec::new();
        for &idx in &exec_order {
            if Some(idx) == text_shndx {
                continue;
            }
            let sec_name = &exec[&idx].name;
            for (fi, f) in funcs.iter().enumerate().filter(|(_, f)| f.sec_idx == idx) {
                if !f.global {
                    return Err(ObjectError::Symbol {
                        section: sec_name.clone(),
                        symbol: f.name.clone(),
                        reason: "program is static and not supported".into(),
                    });
                }
                // SEC("?abc") is SEC("abc") with autoload off; the `?` is forgotten.
                let name = sec_name.strip_prefix('?').unwrap_or(sec_name);
                programs.push(ctx.link(fi, find_sec_def(name).copied())?);
            }
        }

        Ok(BpfObject {
            name: self.name.clone(),
            license,
            kern_version,
            btf,
            btf_ext,
            maps,
            programs,
            kconfig,
        })
    }

    /// libbpf's `btf_fixup_datasec`: clang leaves DATASEC sizes and variable offsets 0;
    /// the real values come from the ELF section size and the variables' symbols.
    fn fixup_datasecs(&self, btf: &mut Btf) -> Result<(), ObjectError> {
        let mut sec_sizes: HashMap<String, (usize, u64)> = HashMap::new();
        for sec in self.file.sections() {
            if let Ok(n) = sec.name() {
                sec_sizes.insert(n.to_string(), (sec.index().0, sec.size()));
            }
        }
        let mut sym_off: HashMap<(usize, String), u64> = HashMap::new();
        for sym in self.file.symbols() {
            if let (Ok(n), Some(si)) = (sym.name(), sym.section_index()) {
                sym_off.insert((si.0, n.to_string()), sym.address());
            }
        }
        let mut fixes = Vec::new();
        for (id, t) in btf.types().iter().enumerate() {
            let BtfKind::Datasec { vars, .. } = &t.kind else {
                continue;
            };
            let Some(&(shndx, sec_size)) = sec_sizes.get(&t.name) else {
                continue;
            };
            let mut offsets = Vec::with_capacity(vars.len());
            for v in vars {
                let vname = &btf
                    .type_by_id(v.ty)
                    .map_err(|e| ObjectError::Btf {
                        section: t.name.clone(),
                        source: e,
                    })?
                    .name;
                offsets.push(
                    sym_off
                        .get(&(shndx, vname.clone()))
                        .map(|&o| u32::try_from(o).unwrap_or(u32::MAX)),
                );
            }
            fixes.push((
                id as u32,
                u32::try_from(sec_size).unwrap_or(u32::MAX),
                offsets,
            ));
        }
        for (id, size, offsets) in fixes {
            btf.fixup_datasec(id, size, &offsets);
        }
        Ok(())
    }

    /// Legacy `struct bpf_map_def` maps in `maps` (what libbpf < 1.0 accepted).
    fn legacy_maps(&self, shndx: usize) -> Result<Vec<MapDef>, ObjectError> {
        let sec = self
            .file
            .section_by_index(object::SectionIndex(shndx))
            .map_err(|e| sec_err("maps", e.to_string()))?;
        let data = sec.data().map_err(|e| sec_err("maps", e.to_string()))?;
        let mut syms: Vec<(u64, String)> = self
            .file
            .symbols()
            .filter(|s| s.section_index() == Some(sec.index()) && s.kind() != SymbolKind::Section)
            .filter_map(|s| s.name().ok().map(|n| (s.address(), n.to_string())))
            .collect();
        syms.sort();
        if syms.is_empty() {
            return Ok(Vec::new());
        }
        let def_sz = data.len() / syms.len();
        if def_sz < 4 || data.len() % syms.len() != 0 {
            return Err(sec_err(
                "maps",
                format!(
                    "unable to determine map definition size: {} bytes, {} maps",
                    data.len(),
                    syms.len()
                ),
            ));
        }
        let mut out = Vec::new();
        for (off, name) in syms {
            let start = off as usize;
            let def = data
                .get(start..start.saturating_add(def_sz))
                .ok_or_else(|| {
                    sec_err(
                        "maps",
                        format!("map '{name}' definition at {off} is out of bounds"),
                    )
                })?;
            let field = |i: usize| -> u32 {
                def.get(i * 4..i * 4 + 4)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            };
            if def.len() > 20 && def[20..].iter().any(|&b| b != 0) {
                return Err(ObjectError::Map(crate::maps::MapError::Invalid {
                    map: name,
                    reason: "unrecognized non-zero fields after struct bpf_map_def".into(),
                }));
            }
            let map_type = field(0);
            if map_type == 0 || map_type > map_type::MAX_KNOWN {
                return Err(ObjectError::Map(crate::maps::MapError::UnsupportedType {
                    map: name,
                    map_type,
                }));
            }
            out.push(MapDef {
                name,
                section: "maps".into(),
                origin: MapOrigin::LegacyMaps,
                map_type,
                key_size: field(1),
                value_size: field(2),
                max_entries: field(3),
                map_flags: field(4),
                pinning: 0,
                numa_node: 0,
                map_extra: 0,
                inner: None,
                initial_slots: Vec::new(),
                data: None,
                btf_key_type_id: 0,
                btf_value_type_id: 0,
                sec_offset: off,
            });
        }
        Ok(out)
    }

    /// BTF-defined maps: the variables of the `.maps` DATASEC, in BTF order.
    fn btf_maps(&self, btf: &Btf, shndx: usize) -> Result<Vec<MapDef>, ObjectError> {
        let Some(ds) = btf.find_by_name_kind(".maps", crate::btf::kind::DATASEC) else {
            return Err(sec_err(".maps", "no DATASEC '.maps' in BTF"));
        };
        let vars = match &btf
            .type_by_id(ds)
            .map_err(|e| ObjectError::Btf {
                section: ".maps".into(),
                source: e,
            })?
            .kind
        {
            BtfKind::Datasec { vars, .. } => vars.clone(),
            _ => Vec::new(),
        };
        let sym_off: HashMap<String, u64> = self
            .file
            .symbols()
            .filter(|s| s.section_index().map(|i| i.0) == Some(shndx))
            .filter_map(|s| s.name().ok().map(|n| (n.to_string(), s.address())))
            .collect();
        let mut out = Vec::new();
        for v in vars {
            let vt = btf.type_by_id(v.ty).map_err(|e| ObjectError::Btf {
                section: ".maps".into(),
                source: e,
            })?;
            let (name, ty) = match &vt.kind {
                BtfKind::Var { ty, .. } => (vt.name.clone(), *ty),
                other => {
                    return Err(sec_err(
                        ".maps",
                        format!(
                            "DATASEC member [{}] is {}, expected VAR",
                            v.ty,
                            other.name()
                        ),
                    ));
                }
            };
            let mut def = parse_btf_map_def(btf, &name, ty, false)?;
            def.sec_offset = match sym_off.get(&name) {
                Some(&o) => o,
                None => {
                    return Err(ObjectError::Symbol {
                        section: ".maps".into(),
                        symbol: name,
                        reason: "map variable has no ELF symbol".into(),
                    });
                }
            };
            out.push(def);
        }
        Ok(out)
    }

    /// Initial slots of map-in-map / prog-array maps from `.rel.maps`
    /// (libbpf's `bpf_object__collect_map_relos`).
    fn initial_slots(
        &self,
        btf: &Btf,
        shndx: usize,
        maps: &mut [MapDef],
    ) -> Result<(), ObjectError> {
        let sec = self
            .file
            .section_by_index(object::SectionIndex(shndx))
            .map_err(|e| sec_err(".maps", e.to_string()))?;
        for (r_off, rel) in sec.relocations() {
            let sym = self.reloc_symbol(".rel.maps", r_off, &rel)?;
            let sym_name = sym
                .name()
                .map_err(|e| sec_err(".rel.maps", e.to_string()))?
                .to_string();
            let r_type = raw_r_type(&rel);
            if r_type != R_BPF_64_ABS64 {
                return Err(ObjectError::Relocation {
                    section: ".rel.maps".into(),
                    offset: r_off,
                    symbol: sym_name,
                    reason: format!("unexpected relocation type {r_type}"),
                });
            }
            let rerr = |reason: String| ObjectError::Relocation {
                section: ".rel.maps".into(),
                offset: r_off,
                symbol: sym_name.clone(),
                reason,
            };
            // Outer map: the one whose definition (including the `values` array) covers
            // the relocated word. Symbol sizes include the initializer.
            let outer = self
                .file
                .symbols()
                .filter(|s| {
                    s.section_index() == Some(sec.index()) && s.kind() != SymbolKind::Section
                })
                .find(|s| {
                    s.address() <= r_off
                        && r_off
                            .checked_add(8)
                            .is_some_and(|e| e <= s.address().saturating_add(s.size()))
                })
                .and_then(|s| s.name().ok().map(str::to_string))
                .ok_or_else(|| rerr("no map definition covers this relocation".into()))?;
            let oi = maps
                .iter()
                .position(|m| m.name == outer && m.origin == MapOrigin::BtfMaps)
                .ok_or_else(|| rerr(format!("outer map '{outer}' not found")))?;
            let outer_map = &maps[oi];
            let is_prog_array = outer_map.map_type == map_type::PROG_ARRAY;
            if !is_map_in_map(outer_map.map_type) && !is_prog_array {
                return Err(rerr(format!(
                    "map '{outer}' is neither map-in-map nor prog-array"
                )));
            }
            // The `values` member is last; its offset comes from BTF.
            let var_ty = btf
                .find_by_name_kind(&outer, crate::btf::kind::VAR)
                .and_then(|id| match btf.type_by_id(id).ok()?.kind {
                    BtfKind::Var { ty, .. } => Some(ty),
                    _ => None,
                })
                .ok_or_else(|| rerr(format!("no BTF VAR for map '{outer}'")))?;
            let members = btf.members(var_ty).map_err(|e| rerr(e.to_string()))?;
            let values = members
                .last()
                .filter(|m| m.name == "values")
                .ok_or_else(|| rerr(format!("map '{outer}': last member is not 'values'")))?;
            let moff = u64::from(values.bit_offset / 8);
            let rel_off = r_off.saturating_sub(outer_map.sec_offset);
            if rel_off < moff || (rel_off - moff) % 8 != 0 {
                return Err(rerr(format!(
                    "map '{outer}': unexpected slot offset {rel_off}"
                )));
            }
            let slot = u32::try_from((rel_off - moff) / 8)
                .map_err(|_| rerr("slot index too large".into()))?;
            if !is_prog_array {
                if sym.section_index().map(|i| i.0) != Some(shndx) {
                    return Err(rerr(format!(
                        "map '{outer}': slot {slot} does not refer to a map in .maps"
                    )));
                }
                if !maps
                    .iter()
                    .any(|m| m.name == sym_name && m.origin == MapOrigin::BtfMaps)
                {
                    return Err(rerr(format!(
                        "map '{outer}': inner map '{sym_name}' not found"
                    )));
                }
            }
            maps[oi].initial_slots.push((slot, sym_name));
        }
        Ok(())
    }

    fn reloc_symbol(
        &self,
        section: &str,
        r_off: u64,
        rel: &object::Relocation,
    ) -> Result<object::read::elf::ElfSymbol64<'d, '_, object::LittleEndian>, ObjectError> {
        match rel.target() {
            RelocationTarget::Symbol(si) => {
                self.file
                    .symbol_by_index(si)
                    .map_err(|e| ObjectError::Relocation {
                        section: section.to_string(),
                        offset: r_off,
                        symbol: format!("#{}", si.0),
                        reason: format!("missing symbol: {e}"),
                    })
            }
            other => Err(ObjectError::Relocation {
                section: section.to_string(),
                offset: r_off,
                symbol: String::new(),
                reason: format!("unsupported relocation target {other:?}"),
            }),
        }
    }

    /// libbpf's `bpf_program__record_reloc` for every relocation of one executable section.
    fn collect_relocs(
        &self,
        idx: usize,
        exec: &mut HashMap<usize, ExecSection>,
        text_shndx: Option<usize>,
        targets: &RelocTargets<'_>,
        maps: &[MapDef],
    ) -> Result<(), ObjectError> {
        let RelocTargets {
            map_at,
            data_map,
            kconfig,
        } = *targets;
        let sec = self
            .file
            .section_by_index(object::SectionIndex(idx))
            .map_err(|e| sec_err(&format!("#{idx}"), e.to_string()))?;
        let Some(es) = exec.get_mut(&idx) else {
            return Ok(());
        };
        let rel_sec = format!(".rel{}", es.name);
        for (r_off, rel) in sec.relocations() {
            let sym = self.reloc_symbol(&rel_sec, r_off, &rel)?;
            let mut symbol = sym.name().unwrap_or("").to_string();
            let sym_shndx = sym.section_index().map(|i| i.0);
            if symbol.is_empty()
                && let Some(s) = sym_shndx
            {
                symbol = self.section_name(s);
            }
            let err = |reason: String| ObjectError::Relocation {
                section: rel_sec.clone(),
                offset: r_off,
                symbol: symbol.clone(),
                reason,
            };
            if r_off % 8 != 0 {
                return Err(err("relocation offset is not instruction-aligned".into()));
            }
            let insn_idx = (r_off / 8) as usize;
            let insn = *es
                .insns
                .get(insn_idx)
                .ok_or_else(|| err(format!("instruction {insn_idx} is out of the section")))?;
            let r_type = raw_r_type(&rel);
            if r_type != R_BPF_64_64 && r_type != R_BPF_64_32 {
                return Err(err(format!(
                    "unsupported relocation type {r_type} at insn {insn_idx}"
                )));
            }
            if (sym_shndx.is_none() || sym.is_undefined())
                && insn.code == BPF_JMP | BPF_CALL
                && !symbol.is_empty()
            {
                // libbpf: a call of an extern function is a kfunc call (`__ksym`).
                es.relocs.insert(
                    insn_idx,
                    RawReloc::Kfunc {
                        symbol,
                        weak: sym.is_weak(),
                    },
                );
                continue;
            }
            if (sym_shndx.is_none() || sym.is_undefined())
                && insn.is_ld_imm64()
                && let Some(&(map, sym_off)) = kconfig.get(&symbol)
            {
                // A `__kconfig` extern: its slot in the `.kconfig` map.
                es.relocs.insert(
                    insn_idx,
                    RawReloc::Data {
                        map,
                        sym_off,
                        symbol,
                    },
                );
                continue;
            }
            if sym_shndx.is_none() || sym.is_undefined() {
                return Err(err(format!(
                    "insn {insn_idx} refers to extern '{symbol}', which is not supported"
                )));
            }
            let sym_off = sym.address();
            if insn.code == BPF_JMP | BPF_CALL {
                if insn.src() != BPF_PSEUDO_CALL {
                    return Err(err(format!("insn {insn_idx}: incorrect bpf_call opcode")));
                }
                if sym_shndx != text_shndx {
                    return Err(err(format!(
                        "insn {insn_idx}: call to '{symbol}' outside .text is not supported"
                    )));
                }
                if sym_off % 8 != 0 {
                    return Err(err(format!(
                        "insn {insn_idx}: bad call relo offset {sym_off}"
                    )));
                }
                es.relocs
                    .insert(insn_idx, RawReloc::Call { sym_off, symbol });
                continue;
            }
            if !insn.is_ld_imm64() || insn_idx + 1 >= es.insns.len() {
                return Err(err(format!(
                    "invalid relo for insn[{insn_idx}] (code {:#04x})",
                    insn.code
                )));
            }
            let shndx = sym_shndx.unwrap_or(0);
            if Some(shndx) == text_shndx {
                if sym_off % 8 != 0 {
                    return Err(err(format!(
                        "insn {insn_idx}: bad subprog addr offset {sym_off}"
                    )));
                }
                es.relocs
                    .insert(insn_idx, RawReloc::SubprogAddr { sym_off, symbol });
                continue;
            }
            if let Some(&m) = map_at.get(&(shndx, sym_off)) {
                if matches!(sym.kind(), SymbolKind::Section) {
                    return Err(err(format!(
                        "insn {insn_idx}: map relocation against a section symbol"
                    )));
                }
                es.relocs.insert(insn_idx, RawReloc::Map { map: m, symbol });
                continue;
            }
            if let Some(&m) = data_map.get(&shndx) {
                let _ = &maps[m];
                es.relocs.insert(
                    insn_idx,
                    RawReloc::Data {
                        map: m,
                        sym_off,
                        symbol,
                    },
                );
                continue;
            }
            let target = self.section_name(shndx);
            return Err(err(format!(
                "insn {insn_idx} refers to '{symbol}' in section '{target}', which is not a map or data section"
            )));
        }
        Ok(())
    }

    /// All FUNC symbols of executable sections, in section then offset order.
    fn functions(&self, exec: &HashMap<usize, ExecSection>) -> Result<Vec<Func>, ObjectError> {
        let mut funcs = Vec::new();
        for sym in self.file.symbols() {
            if sym.elf_symbol().st_type() != object::elf::STT_FUNC {
                continue;
            }
            let Some(si) = sym.section_index() else {
                continue;
            };
            let Some(es) = exec.get(&si.0) else { continue };
            let name = sym.name().unwrap_or("").to_string();
            let serr = |reason: String| ObjectError::Symbol {
                section: es.name.clone(),
                symbol: name.clone(),
                reason,
            };
            if sym.address() % 8 != 0 || sym.size() % 8 != 0 {
                return Err(serr(format!(
                    "offset {} / size {} not a multiple of 8",
                    sym.address(),
                    sym.size()
                )));
            }
            let start = (sym.address() / 8) as usize;
            let len = (sym.size() / 8) as usize;
            if len == 0 || start.checked_add(len).is_none_or(|e| e > es.insns.len()) {
                return Err(serr(format!(
                    "function at insn {start} with {len} insns exceeds section ({} insns)",
                    es.insns.len()
                )));
            }
            funcs.push(Func {
                name,
                sec_idx: si.0,
                start,
                len,
                global: !sym.is_local(),
            });
        }
        funcs.sort_by_key(|f| (f.sec_idx, f.start));
        Ok(funcs)
    }
}

fn raw_r_type(rel: &object::Relocation) -> u32 {
    match rel.flags() {
        RelocationFlags::Elf { r_type } => r_type,
        _ => u32::MAX,
    }
}

/// libbpf's classification of data sections (`bpf_object__elf_collect`).
fn global_data_kind(name: &str, sh_type: u32) -> Option<GlobalDataKind> {
    let is =
        |base: &str| name == base || name.strip_prefix(base).is_some_and(|r| r.starts_with('.'));
    if sh_type == SHT_PROGBITS {
        if is(".data") {
            return Some(GlobalDataKind::Data);
        }
        if is(".rodata") {
            return Some(GlobalDataKind::Rodata);
        }
    }
    if sh_type == SHT_NOBITS && is(".bss") {
        return Some(GlobalDataKind::Bss);
    }
    None
}

struct LinkCtx<'a> {
    exec: &'a HashMap<usize, ExecSection>,
    funcs: &'a [Func],
    text_shndx: Option<usize>,
    btf: Option<&'a Btf>,
    btf_ext: Option<&'a BtfExt>,
}

struct Linking {
    prog: Program,
    /// Function index → start in the linked program.
    placed: HashMap<usize, usize>,
}

impl LinkCtx<'_> {
    fn link(&self, main: usize, sec_def: Option<SecDef>) -> Result<Program, ObjectError> {
        let f = &self.funcs[main];
        let es = &self.exec[&f.sec_idx];
        let mut l = Linking {
            prog: Program {
                name: f.name.clone(),
                section: es.name.strip_prefix('?').unwrap_or(&es.name).to_owned(),
                autoload: !es.name.starts_with('?'),
                sec_def,
                insns: Vec::new(),
                subprogs: Vec::new(),
                relocations: Vec::new(),
                func_info: Vec::new(),
                line_info: Vec::new(),
                core_relos: Vec::new(),
            },
            placed: HashMap::new(),
        };
        self.place(&mut l, main)?;
        l.prog.relocations.sort_by_key(|r| r.insn_idx);
        l.prog.line_info.sort_by_key(|r| r.insn_idx);
        l.prog.func_info.sort_by_key(|r| r.insn_idx);
        l.prog.core_relos.sort_by_key(|r| r.insn_idx);
        Ok(l.prog)
    }

    /// Appends function `fi` and, depth-first, every function it reaches.
    fn place(&self, l: &mut Linking, fi: usize) -> Result<usize, ObjectError> {
        let f = &self.funcs[fi];
        let es = &self.exec[&f.sec_idx];
        let base = l.prog.insns.len();
        l.placed.insert(fi, base);
        l.prog
            .insns
            .extend_from_slice(&es.insns[f.start..f.start + f.len]);
        l.prog.subprogs.push(Subprog {
            name: f.name.clone(),
            start: base,
            len: f.len,
            section: es.name.clone(),
        });
        self.carry_ext_info(l, f, &es.name, base)?;
        let prog_name = l.prog.name.clone();
        let link_err = |reason: String| ObjectError::Link {
            program: prog_name.clone(),
            reason,
        };
        let mut i = 0;
        while i < f.len {
            let sec_i = f.start + i;
            let insn = l.prog.insns[base + i];
            let relo = es.relocs.get(&sec_i);
            if insn.is_ld_imm64() && i + 1 >= f.len {
                return Err(link_err(format!(
                    "function '{}' ends in the middle of an ld_imm64 at insn {}",
                    f.name,
                    base + i
                )));
            }
            // Data and map references: patch in the map index as a placeholder.
            match relo {
                Some(RawReloc::Map { map, symbol }) => {
                    let ins = &mut l.prog.insns[base + i];
                    ins.regs = (ins.regs & 0x0f) | (BPF_PSEUDO_MAP_FD << 4);
                    ins.imm = *map as i32;
                    l.prog.relocations.push(Relocation {
                        insn_idx: base + i,
                        kind: RelocKind::MapFd { map: *map },
                        symbol: symbol.clone(),
                    });
                    i += 2;
                    continue;
                }
                Some(RawReloc::Data {
                    map,
                    sym_off,
                    symbol,
                }) => {
                    // The addend clang left in imm plus the symbol's offset.
                    let offset = (i64::from(insn.imm).wrapping_add(*sym_off as i64)) as u32;
                    let ins = &mut l.prog.insns[base + i];
                    ins.regs = (ins.regs & 0x0f) | (BPF_PSEUDO_MAP_VALUE << 4);
                    ins.imm = *map as i32;
                    l.prog.insns[base + i + 1].imm = offset as i32;
                    l.prog.relocations.push(Relocation {
                        insn_idx: base + i,
                        kind: RelocKind::MapValue { map: *map, offset },
                        symbol: symbol.clone(),
                    });
                    i += 2;
                    continue;
                }
                Some(RawReloc::Kfunc { symbol, weak }) => {
                    let ins = &mut l.prog.insns[base + i];
                    *ins = Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 0);
                    l.prog.relocations.push(Relocation {
                        insn_idx: base + i,
                        kind: RelocKind::Kfunc { weak: *weak },
                        symbol: symbol.clone(),
                    });
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let is_call = insn.code == BPF_JMP | BPF_CALL && insn.src() == BPF_PSEUDO_CALL;
            let (tgt_sec, tgt_idx, symbol, is_func) = match relo {
                Some(RawReloc::Call { sym_off, symbol }) => (
                    self.text_shndx,
                    (*sym_off / 8) as i64 + i64::from(insn.imm) + 1,
                    symbol.clone(),
                    false,
                ),
                Some(RawReloc::SubprogAddr { sym_off, symbol }) => (
                    self.text_shndx,
                    (*sym_off / 8) as i64 + i64::from(insn.imm) / 8,
                    symbol.clone(),
                    true,
                ),
                // A call without relocation targets the same section.
                None if is_call => (
                    Some(f.sec_idx),
                    sec_i as i64 + i64::from(insn.imm) + 1,
                    String::new(),
                    false,
                ),
                _ => {
                    i += if insn.is_ld_imm64() { 2 } else { 1 };
                    continue;
                }
            };
            let callee = self
                .funcs
                .iter()
                .position(|c| Some(c.sec_idx) == tgt_sec && c.start as i64 == tgt_idx)
                .ok_or_else(|| {
                    link_err(format!(
                        "insn {} ('{}'): no function starts at instruction {tgt_idx} of {}",
                        base + i,
                        symbol,
                        tgt_sec.map_or(".text (missing)".to_string(), |s| self
                            .exec
                            .get(&s)
                            .map_or(format!("#{s}"), |e| e.name.clone()))
                    ))
                })?;
            let target = match l.placed.get(&callee) {
                Some(&t) => t,
                None => self.place(l, callee)?,
            };
            let at = base + i;
            let ins = &mut l.prog.insns[at];
            ins.imm = (target as i64 - at as i64 - 1) as i32;
            // Name the callee, not the (often section) symbol clang relocated against.
            let _ = symbol;
            let symbol = self.funcs[callee].name.clone();
            if is_func {
                ins.regs = (ins.regs & 0x0f) | (BPF_PSEUDO_FUNC << 4);
                l.prog.insns[at + 1].imm = 0;
                l.prog.relocations.push(Relocation {
                    insn_idx: at,
                    kind: RelocKind::Func { target },
                    symbol,
                });
                i += 2;
            } else {
                l.prog.relocations.push(Relocation {
                    insn_idx: at,
                    kind: RelocKind::Call { target },
                    symbol,
                });
                i += 1;
            }
        }
        Ok(base)
    }

    /// Copies the `.BTF.ext` records of function `f` (section-relative byte offsets) to
    /// the linked program at `base`.
    fn carry_ext_info(
        &self,
        l: &mut Linking,
        f: &Func,
        sec_name: &str,
        base: usize,
    ) -> Result<(), ObjectError> {
        let (Some(ext), Some(btf)) = (self.btf_ext, self.btf) else {
            return Ok(());
        };
        let range = f.start..f.start + f.len;
        let map_idx = |off: u32| -> Option<usize> {
            let idx = (off / 8) as usize;
            range.contains(&idx).then(|| base + idx - f.start)
        };
        for s in ext.func_info.iter().filter(|s| s.sec_name == sec_name) {
            for r in &s.recs {
                if let Some(insn_idx) = map_idx(r.insn_off) {
                    l.prog.func_info.push(FuncInfo {
                        insn_idx,
                        type_id: r.type_id,
                    });
                }
            }
        }
        let serr = |e: BtfError| ObjectError::Btf {
            section: ".BTF.ext".into(),
            source: e,
        };
        for s in ext.line_info.iter().filter(|s| s.sec_name == sec_name) {
            for r in &s.recs {
                if let Some(insn_idx) = map_idx(r.insn_off) {
                    l.prog.line_info.push(LineInfo {
                        insn_idx,
                        file_name: btf.string_at(r.file_name_off).map_err(serr)?.to_string(),
                        line: btf.string_at(r.line_off).map_err(serr)?.to_string(),
                        line_num: r.line_col >> 10,
                        line_col: r.line_col & 0x3ff,
                        file_name_off: r.file_name_off,
                        line_off: r.line_off,
                    });
                }
            }
        }
        for s in ext.core_relo.iter().filter(|s| s.sec_name == sec_name) {
            for r in &s.recs {
                if let Some(insn_idx) = map_idx(r.insn_off) {
                    l.prog
                        .core_relos
                        .push(CoreRelo::from_rec(btf, r, insn_idx).map_err(serr)?);
                }
            }
        }
        Ok(())
    }
}

impl BpfObject {
    /// Resolves the CO-RE relocations of every program against `target` (e.g.
    /// [`crate::core::load_vmlinux_btf`]) and patches the instructions. Returns the number
    /// of relocations applied; the first unresolvable one is an error naming it.
    pub fn resolve_core(&mut self, target: &Btf) -> Result<usize, crate::core::CoreError> {
        let mut n = 0;
        let Some(local) = self.btf.as_ref() else {
            return Ok(0);
        };
        for p in &mut self.programs {
            n +=
                crate::core::apply_core_relos(&p.name, &mut p.insns, &p.core_relos, local, target)?;
        }
        Ok(n)
    }
}

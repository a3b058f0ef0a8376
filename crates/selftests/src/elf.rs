//! What the suite needs of an object before anyone loads it: its programs as libbpf lists
//! them (every function symbol in an executable section other than `.text`, by section then
//! offset) and its BTF. Read straight from the ELF, so objects kbpf's loader cannot open
//! still get their programs listed and their tests' expectations read.

use std::path::Path;

use kbpf_btf::Btf;
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};

/// `SHF_EXECINSTR`.
const SHF_EXECINSTR: u64 = 0x4;

/// One program of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjProgram {
    /// Function name (libbpf's program name).
    pub name: String,
    /// ELF section (`socket`, `?tc`, `fentry/…`).
    pub section: String,
}

/// An object's programs and BTF.
#[derive(Debug)]
pub struct ObjInfo {
    /// Programs in libbpf's order.
    pub programs: Vec<ObjProgram>,
    /// The `.BTF` section, parsed.
    pub btf: Option<Btf>,
}

/// Reads the programs and BTF of the object at `path`.
pub fn read(path: &Path) -> Result<ObjInfo, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut progs: Vec<(usize, u64, ObjProgram)> = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let exec = matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & SHF_EXECINSTR != 0);
        let Ok(section_name) = section.name() else {
            continue;
        };
        if !exec || section_name == ".text" {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        progs.push((
            index.0,
            sym.address(),
            ObjProgram {
                name: name.to_owned(),
                section: section_name.to_owned(),
            },
        ));
    }
    progs.sort_by_key(|(s, a, _)| (*s, *a));
    let btf = match file.section_by_name(".BTF") {
        Some(s) => {
            let data = s
                .data()
                .map_err(|e| format!("{}: .BTF: {e}", path.display()))?;
            Some(Btf::parse(data).map_err(|e| format!("{}: .BTF: {e}", path.display()))?)
        }
        None => None,
    };
    Ok(ObjInfo {
        programs: progs.into_iter().map(|(_, _, p)| p).collect(),
        btf,
    })
}

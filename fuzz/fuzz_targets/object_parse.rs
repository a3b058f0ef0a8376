//! Any bytes as an ELF object: `BpfObject::parse` returns an error or an object, never
//! panics; a parsed object's BTF-backed helpers must not panic either.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = kbpf_object::BpfObject::parse(data, "fuzz") {
        for p in &obj.programs {
            for f in &p.func_info {
                let _ = obj.func_prototype(p, f.insn_idx);
            }
        }
    }
});

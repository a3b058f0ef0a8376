//! Any bytes as an XDP program against two real maps (an array and an array-of-maps with a
//! `BPF_F_INNER_MAP` template): the verifier never panics; a program it accepts is
//! translated and runs in the interpreter's checked mode — where only its stack, the packet,
//! the context and the array's values are accessible — without an out-of-bounds access.
#![no_main]
use kbpf_isa::Insn;
use kbpf_maps::uapi::BPF_F_INNER_MAP;
use kbpf_maps::{Map, MapAttr, MapType};
use kbpf_run::ctx::XdpFrame;
use kbpf_vm::{Interpreter, MemoryRegion, Mode, RunError};
use libfuzzer_sys::fuzz_target;

struct Env {
    array: Map,
    env: kbpf_rewrite::MapsEnv,
}

fn env() -> &'static Env {
    static ENV: std::sync::OnceLock<Env> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let array = Map::create(&MapAttr::new(MapType::Array, 4, 8, 4).name("arr"), None).unwrap();
        let tmpl = Map::create(
            &MapAttr::new(MapType::Array, 4, 8, 1).flags(BPF_F_INNER_MAP),
            None,
        )
        .unwrap();
        let outer = Map::create(
            &MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2).name("outer"),
            Some(&tmpl),
        )
        .unwrap();
        let mut env = kbpf_rewrite::MapsEnv::new();
        env.insert(0, array.clone());
        env.insert(1, outer);
        Env { array, env }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(insns) = kbpf_isa::insn::insns_from_bytes(&data[..data.len() / 8 * 8]) else {
        return;
    };
    if insns.is_empty() || insns.len() > 256 {
        return;
    }
    let e = env();
    let prog = kbpf_loader::LoadedProgram {
        name: "fuzz".into(),
        section: "xdp".into(),
        prog_type: 6,
        expected_attach_type: 0,
        prog_flags: 0,
        insns: insns.clone(),
        line_info: vec![],
        func_info: vec![],
        map_fds_used: vec![],
        bound_map_fds: vec![],
    };
    let opts = kbpf_run::LoadOptions {
        log_level: 0,
        prog_type: None,
    };
    let Ok(p) = kbpf_run::Program::load(&prog, &e.env, &opts, &[]) else {
        return;
    };
    let vm = Interpreter::new_translated(&p.xlated.insns, p.helpers())
        .expect("a translated program decodes")
        .with_instruction_limit(1_000_000);
    let packet = [0x5au8; 64];
    let mut frame = XdpFrame::new(&packet, 1, 0).unwrap();
    let ctx = frame.ctx_ptr();
    let values = e.array.as_ptr() as u64 + kbpf_maps::uapi::BPF_ARRAY_VALUE_OFF as u64;
    let mut regions: Vec<MemoryRegion> = frame
        .regions()
        .into_iter()
        .chain(kbpf_run::kernel::kernel_data_regions())
        .map(|(start, len, writable)| MemoryRegion {
            start,
            len,
            writable,
        })
        .collect();
    regions.push(MemoryRegion {
        start: values,
        len: 4 * 8,
        writable: true,
    });
    let _pin = kbpf_maps::pin();
    match vm.run([ctx, 0, 0, 0, 0], &regions, Mode::Checked) {
        Ok(_) | Err(RunError::InstructionLimit { .. }) => {}
        Err(err) => panic!("verifier accepted {insns:?}, which fails: {err}"),
    }
});

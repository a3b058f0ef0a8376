//! Any bytes as an XDP program against two real maps (an array and an array-of-maps with a
//! `BPF_F_INNER_MAP` template): the verifier never panics; a program it accepts is
//! translated and runs in the interpreter's checked mode — where only its stack, the packet,
//! the context and the array's values are accessible — without an out-of-bounds access; and
//! it runs again on the JIT, which must return the same `r0` and leave the same packet.
#![no_main]
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
    let prog = kbpf_loader::LoadedProgram::from_insns("fuzz", 6, insns.clone());
    let opts = kbpf_run::LoadOptions {
        log_level: 0,
        ..Default::default()
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
    let values = e.array.as_ptr() as u64 + e.array.value_off() as u64;
    let mut regions = frame.checked_regions();
    regions.push(MemoryRegion {
        start: values,
        len: 4 * 8,
        writable: true,
    });
    let _pin = kbpf_maps::pin();
    let before: Vec<Vec<u8>> = (0..4u32)
        .map(|i| e.array.lookup_elem(&i.to_ne_bytes()).unwrap())
        .collect();
    let r0 = match vm.run([ctx, 0, 0, 0, 0], &regions, Mode::Checked) {
        Ok(r0) => r0,
        Err(RunError::InstructionLimit { .. }) => return,
        Err(err) => panic!("verifier accepted {insns:?}, which fails: {err}"),
    };
    let interp_out = frame.data_out().to_vec();
    // The JIT on the same input and map contents. Time and random numbers differ between
    // runs by nature: programs that call those helpers (ktime_get_ns, get_prandom_u32,
    // jiffies64, ktime_get_boot_ns, ktime_get_coarse_ns) are not compared.
    // A privileged program may also return or store addresses; the two engines' stacks
    // live at different addresses, so programs that copy r10 anywhere are not compared
    // (packet, context and map addresses are the same for both runs).
    let nondeterministic = insns.iter().any(|i| {
        (i.code == 0x85 && i.src() == 0 && matches!(i.imm, 5 | 7 | 118 | 125 | 160))
            || (matches!(i.class(), 0x04 | 0x07 | 0x03) && i.src() == 10 && i.code & 0x08 != 0)
            || (i.class() == 0x03 && i.src() == 10)
    });
    if nondeterministic {
        return;
    }
    let Ok(jit) = p.engine(kbpf_run::Engine::Jit) else {
        panic!("the JIT refused a verified program: {insns:?}");
    };
    for (i, v) in before.iter().enumerate() {
        e.array
            .update_elem(&(i as u32).to_ne_bytes(), v, 0)
            .unwrap();
    }
    assert!(frame.reset(&packet));
    // SAFETY: the verifier accepted the program for this context, and the checked run above
    // showed it stays inside the memory it was given.
    let j0 = unsafe { jit.run_ctx(ctx) }.expect("JIT run");
    assert_eq!(r0, j0, "interpreter and JIT disagree on r0 for {insns:?}");
    assert_eq!(interp_out, frame.data_out(), "packets differ for {insns:?}");
});

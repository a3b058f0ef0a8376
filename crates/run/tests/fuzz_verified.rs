//! Verifier soundness fuzzing: random XDP programs built from gadgets that are *nearly*
//! right (packet reads a few bytes past the checked range, stack slots just outside the
//! frame, map value reads past `value_size`, arithmetic on pointers), so that many are
//! accepted and many rejected. Every program the verifier accepts is translated and run in
//! the interpreter's *checked* mode, where the only memory it may touch is its stack, the
//! packet `[data, data_end)`, the `xdp_buff` context and the array map's values: an
//! out-of-bounds access there would be a verifier bug. Accepted programs also run on the JIT
//! and must give the same `r0` and packet. (A short run inside `cargo test`;
//! `PROPTEST_CASES=20000` for a long one.)

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_maps::uapi::BPF_ANY;
use kbpf_maps::{Map, MapAttr, MapType};
use kbpf_run::ctx::XdpFrame;
use kbpf_run::{Engine, Program};
use kbpf_vm::{Interpreter, MemoryRegion, Mode, RunError};
use proptest::prelude::*;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R6: u8 = 6;
const R10: u8 = 10;

fn alu64(op: u8, d: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_K, d, 0, 0, imm)
}
fn alu64x(op: u8, d: u8, s: u8) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_X, d, s, 0, 0)
}
fn ldx(size: u8, d: u8, s: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | size | BPF_MEM, d, s, off, 0)
}
fn stx(size: u8, d: u8, s: u8, off: i16) -> Insn {
    Insn::new(BPF_STX | size | BPF_MEM, d, s, off, 0)
}
fn jmp(op: u8, d: u8, s: u8, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_X, d, s, off, 0)
}
fn jmpk(op: u8, d: u8, imm: i32, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_K, d, 0, off, imm)
}

/// One gadget, as instructions (jumps stay inside the gadget).
#[derive(Clone, Debug)]
enum Gadget {
    /// `r{d} op= imm` on a scalar register.
    Alu { op: u8, d: u8, imm: i32 },
    /// Check `data + n <= data_end`, then read `size` bytes at `data + at` (sound iff
    /// `at + size <= n`), optionally write it back.
    Packet {
        n: i32,
        at: i16,
        size: u8,
        write: bool,
    },
    /// Spill r{d} to `r10 + off`, fill it into r{d}.
    Stack { off: i16, d: u8 },
    /// Look up key `k` in the array (4-byte values × 4), NULL-check (or not), read at `at`.
    Lookup { k: i32, at: i16, check: bool },
    /// Pointer arithmetic on the packet pointer by a masked scalar, then a checked read.
    PktVar { mask: i32, n: i32 },
}

fn size_code(n: u8) -> u8 {
    match n {
        1 => BPF_B,
        2 => BPF_H,
        4 => BPF_W,
        _ => BPF_DW,
    }
}

impl Gadget {
    fn emit(&self, out: &mut Vec<Insn>) {
        match *self {
            Gadget::Alu { op, d, imm } => out.push(alu64(op, d, imm)),
            Gadget::Packet { n, at, size, write } => {
                out.push(ldx(BPF_W, R2, R6, 0)); // data
                out.push(ldx(BPF_W, R3, R6, 4)); // data_end
                out.push(alu64x(BPF_MOV, R1, R2));
                out.push(alu64(BPF_ADD, R1, n));
                let body = if write { 2 } else { 1 };
                out.push(jmp(BPF_JGT, R1, R3, body));
                out.push(ldx(size_code(size), R0, R2, at));
                if write {
                    out.push(stx(size_code(size), R2, R0, at));
                }
            }
            Gadget::Stack { off, d } => {
                out.push(stx(BPF_DW, R10, d, off));
                out.push(ldx(BPF_DW, d, R10, off));
            }
            Gadget::Lookup { k, at, check } => {
                out.push(Insn::new(BPF_ST | BPF_W | BPF_MEM, R10, 0, -4, k));
                out.push(alu64x(BPF_MOV, R2, R10));
                out.push(alu64(BPF_ADD, R2, -4));
                out.push(Insn::new(
                    BPF_LD | BPF_IMM | BPF_DW,
                    R1,
                    BPF_PSEUDO_MAP_FD,
                    0,
                    0,
                ));
                out.push(Insn::new(0, 0, 0, 0, 0));
                out.push(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1));
                if check {
                    out.push(jmpk(BPF_JEQ, R0, 0, 1));
                }
                out.push(ldx(BPF_W, R0, R0, at));
            }
            Gadget::PktVar { mask, n } => {
                out.push(ldx(BPF_W, R2, R6, 0));
                out.push(ldx(BPF_W, R3, R6, 4));
                out.push(ldx(BPF_B, R0, R2, 0)); // unchecked on purpose: data[0]
                out.push(alu64(BPF_AND, R0, mask));
                out.push(alu64x(BPF_ADD, R2, R0));
                out.push(alu64x(BPF_MOV, R1, R2));
                out.push(alu64(BPF_ADD, R1, n));
                out.push(jmp(BPF_JGT, R1, R3, 1));
                out.push(ldx(BPF_B, R0, R2, 0));
            }
        }
    }
}

fn gadget() -> impl Strategy<Value = Gadget> {
    prop_oneof![
        (
            prop_oneof![
                Just(BPF_ADD),
                Just(BPF_XOR),
                Just(BPF_LSH),
                Just(BPF_AND),
                Just(BPF_MOV)
            ],
            0u8..6,
            -64i32..64
        )
            .prop_map(|(op, d, imm)| Gadget::Alu {
                op,
                d,
                imm: if op == BPF_LSH {
                    imm.rem_euclid(64)
                } else {
                    imm
                }
            }),
        // Mostly in range (at + size <= n), sometimes a few bytes past it.
        (
            0i32..24,
            prop_oneof![3 => Just(0i16), 1 => -2i16..3],
            prop_oneof![Just(1u8), Just(2), Just(4), Just(8)],
            any::<bool>(),
            any::<u8>()
        )
            .prop_map(|(n, slack, size, write, r)| {
                let room = (n - size as i32).max(0) as i16;
                let at = if room > 0 { r as i16 % (room + 1) } else { 0 } + slack;
                Gadget::Packet { n, at, size, write }
            }),
        // Mostly aligned slots inside the 512-byte frame, sometimes just outside or odd.
        prop_oneof![3 => (1i16..65).prop_map(|k| -8 * k), 1 => -520i16..8]
            .prop_flat_map(|off| (Just(off), 0u8..6))
            .prop_map(|(off, d)| Gadget::Stack { off, d }),
        (
            -1i32..6,
            -2i16..10,
            prop_oneof![4 => Just(true), 1 => Just(false)]
        )
            .prop_map(|(k, at, check)| Gadget::Lookup { k, at, check }),
        (
            prop_oneof![Just(0x7), Just(0xf), Just(0xff), Just(-1)],
            0i32..4
        )
            .prop_map(|(mask, n)| Gadget::PktVar { mask, n }),
    ]
}

fn program(gadgets: &[Gadget]) -> Vec<Insn> {
    let mut p = vec![alu64x(BPF_MOV, R6, R1)];
    // Registers the gadgets read start initialised.
    for r in 0..6 {
        p.push(alu64(BPF_MOV, r, 0));
    }
    for g in gadgets {
        g.emit(&mut p);
    }
    p.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p
}

struct Env {
    map: Map,
    env: kbpf_rewrite::MapsEnv,
}

fn env() -> Env {
    let map = Map::create(&MapAttr::new(MapType::Array, 4, 4, 4).name("arr"), None).unwrap();
    for i in 0..4u32 {
        map.update_elem(&i.to_ne_bytes(), &(10 * i + 1).to_ne_bytes(), BPF_ANY)
            .unwrap();
    }
    let mut env = kbpf_rewrite::MapsEnv::new();
    env.insert(0, map.clone());
    Env { map, env }
}

fn loaded(insns: Vec<Insn>) -> kbpf_loader::LoadedProgram {
    kbpf_loader::LoadedProgram::from_insns("fuzz", 6, insns)
}

/// Runs an accepted program in checked mode; the error, if any, is a verifier bug unless
/// it is the instruction budget.
fn run_checked(prog: &Program, env: &Env, packet: &[u8]) -> (Result<u64, RunError>, Vec<u8>) {
    let vm = Interpreter::new_translated(&prog.xlated.insns, prog.helpers())
        .expect("translated program decodes")
        .with_instruction_limit(100_000);
    let mut frame = XdpFrame::new(packet, 1, 0).unwrap();
    let ctx = frame.ctx_ptr();
    let values = env.map.as_ptr() as u64 + env.map.value_off() as u64;
    let mut regions = frame.checked_regions();
    // Exactly the 4 value bytes of each 8-byte element: reading the padding would be a bug.
    regions.extend((0..4u64).map(|i| MemoryRegion {
        start: values + 8 * i,
        len: 4,
        writable: true,
    }));
    let _pin = kbpf_maps::pin();
    let r = vm.run([ctx, 0, 0, 0, 0], &regions, Mode::Checked);
    (r, frame.data_out().to_vec())
}

static ACCEPTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn accepted_programs_stay_in_bounds(gadgets in proptest::collection::vec(gadget(), 1..8), pkt_len in 14usize..40, seed in any::<u8>()) {
        let env = env();
        let insns = program(&gadgets);
        let packet: Vec<u8> = (0..pkt_len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let Ok(prog) = Program::load(&loaded(insns), &env.env, &kbpf_run::LoadOptions { log_level: 0, ..Default::default() }, &[]) else {
            return Ok(()); // rejected: nothing to run
        };
        ACCEPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (checked, checked_out) = run_checked(&prog, &env, &packet);
        match &checked {
            Ok(_) => {}
            Err(RunError::InstructionLimit { .. }) => {}
            Err(e) => prop_assert!(false, "verifier accepted a program that faults: {e}\n{:?}\n{}", gadgets, prog.dump_xlated(&Default::default())),
        }
        // The same program on the JIT: same r0 and packet (maps are reset between engines).
        for i in 0..4u32 {
            env.map.update_elem(&i.to_ne_bytes(), &(10 * i + 1).to_ne_bytes(), BPF_ANY).unwrap();
        }
        let jit = prog.test_run(&kbpf_run::TestRunInput { data_in: &packet, engine: Engine::Jit, ..Default::default() });
        if let (Ok(r0), Ok(j)) = (&checked, &jit) {
            prop_assert_eq!(*r0 as u32, j.retval);
            prop_assert_eq!(&checked_out, &j.data_out);
        }
        if std::env::var_os("KBPF_FUZZ_STATS").is_some() {
            eprintln!("accepted so far: {}", ACCEPTED.load(std::sync::atomic::Ordering::Relaxed));
        }
    }
}

#[test]
fn the_generator_yields_both_verdicts() {
    // A sound and an unsound packet read: the verifier must tell them apart, so the fuzz
    // above explores both sides.
    let env = env();
    let ok = program(&[Gadget::Packet {
        n: 8,
        at: 4,
        size: 4,
        write: false,
    }]);
    let bad = program(&[Gadget::Packet {
        n: 8,
        at: 6,
        size: 4,
        write: false,
    }]);
    let opts = kbpf_run::LoadOptions {
        log_level: 1,
        ..Default::default()
    };
    assert!(Program::load(&loaded(ok), &env.env, &opts, &[]).is_ok());
    let e = Program::load(&loaded(bad), &env.env, &opts, &[]).unwrap_err();
    assert!(
        e.log().unwrap_or("").contains("invalid access to packet"),
        "{e}"
    );
    let unchecked = program(&[Gadget::Lookup {
        k: 1,
        at: 0,
        check: false,
    }]);
    assert!(Program::load(&loaded(unchecked), &env.env, &opts, &[]).is_err());
}

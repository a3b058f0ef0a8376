//! kbpf-bench: the programs, loaders and timing shared by the side-by-side benchmarks
//! (`benches/engines.rs`, `examples/side_by_side.rs`) and the end-to-end differential
//! tests (`tests/engines_agree.rs`).
//!
//! Every kbpf program here goes the whole way a `BPF_PROG_LOAD` goes — kbpf's verifier and
//! rewrite (`kbpf_run::Program::load`) — and the engines run the *translated* program:
//! [`kbpf_vm::Interpreter::new_translated`] and [`kbpf_run::Program::compile_jit`]
//! with the program's own helper registry (`Program::helpers()`).
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_DW, BPF_LDX, BPF_MEM, BPF_W};
use kbpf_jit::JitProgram;
use kbpf_loader::{LoadedObject, LoadedProgram};
use kbpf_maps::{Map, MapType};
use kbpf_run::{LoadOptions, Program};
use kbpf_vm::{Interpreter, Mode};

/// The bytecode benchmark programs of `kbpf-vm` (ALU loop, FNV-1a, parse + hash) with
/// their `{ u64 data; u64 data_end; }` context, as rbpf runs them.
#[allow(missing_docs)]
#[path = "../../vm/benches/common/progs.rs"]
pub mod progs;

pub mod llvmbpf;
pub mod native;

/// Bytes [`fnv1a_checked`] hashes.
pub const FNV_LEN: i32 = 1500;

/// FNV-1a over the first [`FNV_LEN`] bytes of the packet, in the shape verifiers accept:
/// one bounds check `data + 1500 > data_end` up front, then a counted loop reading
/// `data + i` (a loop walking a packet pointer up to `data_end` is unbounded for the
/// kernel's verifier). The same bytecode runs on every engine ([`xdp_form`] on kbpf and the
/// kernel); on a packet of at least 1500 bytes it returns [`progs::fnv1a_native`] of them.
pub fn fnv1a_checked() -> Vec<Insn> {
    use kbpf_isa::insn::*;
    let mut b = progs::Builder::new();
    b.ldx(BPF_DW, 2, 1, 0)
        .ldx(BPF_DW, 3, 1, 8)
        .ld_imm64(0, progs::FNV64_OFFSET)
        .ld_imm64(4, progs::FNV64_PRIME)
        .alu64_x(BPF_MOV, 5, 2)
        .alu64_k(BPF_ADD, 5, FNV_LEN)
        .jmp_x(BPF_JGT, 5, 3, "out")
        .alu64_k(BPF_MOV, 6, 0)
        .label("loop")
        .alu64_x(BPF_MOV, 5, 2)
        .alu64_x(BPF_ADD, 5, 6)
        .ldx(BPF_B, 5, 5, 0)
        .alu64_x(BPF_XOR, 0, 5)
        .alu64_x(BPF_MUL, 0, 4)
        .alu64_k(BPF_ADD, 6, 1)
        .jmp_k(BPF_JLT, 6, FNV_LEN, "loop")
        .label("out")
        .exit();
    b.finish()
}

/// The bytecode benchmarks: `(name, program with the 16-byte test context)`; kbpf and the
/// kernel run their [`xdp_form`].
pub fn bytecode_programs() -> Vec<(&'static str, Vec<Insn>)> {
    vec![
        ("ALU loop (1000 iterations)", progs::alu_loop()),
        ("FNV-1a, 1500-byte packet", fnv1a_checked()),
        ("Eth/IPv4/TCP parse + 5-tuple hash", progs::parse_hash()),
    ]
}

/// `enum bpf_prog_type` of XDP.
pub const BPF_PROG_TYPE_XDP: u32 = 6;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A benchmark object of `crates/bench/bpf/`.
pub fn bench_object(stem: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("bpf/{stem}.bpf.o"))
}

/// The XDP form of a [`progs`] program: its context loads `ldxdw r, [r1+0]` / `[r1+8]`
/// (`data`, `data_end` of the 16-byte test context) become the `struct xdp_md` loads
/// `ldxw r, [r1+0]` / `[r1+4]`, which the verifier then converts to `xdp_buff` accesses.
pub fn xdp_form(insns: &[Insn]) -> Vec<Insn> {
    insns
        .iter()
        .map(|i| {
            let mut i = *i;
            if i.code == BPF_LDX | BPF_MEM | BPF_DW && i.src() == 1 && matches!(i.off, 0 | 8) {
                i.code = BPF_LDX | BPF_MEM | BPF_W;
                i.off /= 2;
            }
            i
        })
        .collect()
}

/// Loads raw instructions (no maps) as an XDP program through kbpf's verifier and rewrite.
pub fn load_xdp_insns(name: &str, insns: &[Insn]) -> Result<Program, String> {
    let prog = LoadedProgram::from_insns(name, BPF_PROG_TYPE_XDP, insns.to_vec());
    Program::load(
        &prog,
        &kbpf_rewrite::MapsEnv::new(),
        &LoadOptions::default(),
        &[],
    )
    .map_err(|e| format!("{name}: {e}\n{}", e.log().unwrap_or("")))
}

/// A clang-built object loaded into fresh kbpf maps, with every program kbpf runs.
pub struct KbpfObject {
    /// The maps and relocated programs.
    pub loaded: LoadedObject,
    /// The verified, translated programs (program types kbpf supports), in object order.
    pub programs: Vec<Program>,
    _registry: kbpf_maps::Registry,
}

impl KbpfObject {
    /// Loads `path` (fresh maps every time, so two loads do not share state).
    pub fn load(path: &Path) -> Result<KbpfObject, String> {
        let parsed = kbpf_object::BpfObject::open(path).map_err(|e| e.to_string())?;
        let registry = kbpf_maps::Registry::new();
        let loaded =
            kbpf_loader::load_object(&parsed, &registry, &kbpf_loader::LoadOptions::default())
                .map_err(|e| e.to_string())?;
        let env = kbpf_run::maps_env(&loaded);
        let mut programs = Vec::new();
        for p in &loaded.programs {
            if kbpf_verifier::ProgType::from_u32(p.prog_type).is_none() {
                continue;
            }
            let btf = kbpf_run::funcs_btf(&parsed, p);
            let prog = Program::load(p, &env, &LoadOptions::default(), &btf)
                .map_err(|e| format!("{}: {e}\n{}", p.name, e.log().unwrap_or("")))?;
            programs.push(prog);
        }
        Ok(KbpfObject {
            loaded,
            programs,
            _registry: registry,
        })
    }

    /// The program called `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The object's map called `name`.
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.loaded
            .maps
            .iter()
            .find(|m| m.name == name)
            .map(|m| &m.map)
    }

    /// Every map by object name.
    pub fn named_maps(&self) -> Vec<(String, Map)> {
        self.loaded
            .maps
            .iter()
            .map(|m| (m.name.clone(), m.map.clone()))
            .collect()
    }
}

/// Both engines of one translated program.
pub struct Engines<'a> {
    /// The interpreter over the translated program.
    pub interp: Interpreter<'a>,
    /// The JIT image of the same program, compiled with the same registry.
    pub jit: JitProgram,
}

impl<'a> Engines<'a> {
    /// Builds both engines for `prog`.
    pub fn new(prog: &'a Program) -> Result<Engines<'a>, String> {
        let interp = Interpreter::new_translated(&prog.xlated.insns, prog.helpers())
            .map_err(|e| format!("{}: interpreter: {e}", prog.name))?;
        let jit = prog
            .compile_jit()
            .map_err(|e| format!("{}: JIT: {e}", prog.name))?;
        Ok(Engines { interp, jit })
    }

    /// One interpreter run with `r1 = ctx` (unchecked, as the kernel runs verified code).
    pub fn run_interp(&self, ctx: u64) -> Result<u64, kbpf_vm::RunError> {
        self.interp.run([ctx, 0, 0, 0, 0], &[], Mode::Unchecked)
    }

    /// One JIT run with `r1 = ctx`.
    ///
    /// # Safety
    /// `ctx` must be the context the program was verified for (an `XdpFrame`'s `ctx_ptr()`
    /// for XDP), alive for the run.
    #[inline]
    pub unsafe fn run_jit(&self, ctx: u64) -> Result<u64, kbpf_vm::RunError> {
        // SAFETY: forwarded to the caller.
        unsafe { self.jit.run(ctx, 0) }
    }
}

/// One map's contents: its name and its `(key, value)` pairs, sorted by key.
pub type MapDump = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The contents of `maps`, for comparing two loads after runs: `(name, [(key, value)])`.
/// Map-in-map values are map ids, which differ between loads, so only their keys count.
pub fn dump_maps(maps: &[(String, Map)]) -> Vec<MapDump> {
    maps.iter()
        .map(|(name, m)| {
            let outer = matches!(m.map_type(), MapType::ArrayOfMaps | MapType::HashOfMaps);
            let mut kv: Vec<(Vec<u8>, Vec<u8>)> = m
                .keys()
                .into_iter()
                .map(|k| {
                    let v = if outer {
                        Vec::new()
                    } else {
                        m.lookup_elem(&k).unwrap_or_default()
                    };
                    (k, v)
                })
                .collect();
            kv.sort();
            (name.clone(), kv)
        })
        .collect()
}

/// The Maglev service the benchmarks install: VIP 10.1.0.1:80/TCP.
pub const MAGLEV_VIP: [u8; 4] = [10, 1, 0, 1];

/// The benchmark's Maglev flow packet (client 10.0.0.7:40000 → VIP:80, TCP, 64-byte
/// payload).
pub fn maglev_packet() -> Vec<u8> {
    kbpf_maglev::packet::Flow {
        saddr: [10, 0, 0, 7],
        daddr: MAGLEV_VIP,
        sport: 40000,
        dport: 80,
        protocol: kbpf_maglev::packet::IPPROTO_TCP,
    }
    .frame(&[0x5a; 64])
}

/// The Maglev service the benchmarks install, and its only backend: the VIP itself with
/// port 0 (keep the service port). Then the DNAT a run performs leaves the packet a packet
/// to the same service, so a repeat loop over one buffer (`BPF_PROG_TEST_RUN`'s, and ours)
/// measures the same path every run: service lookup, conntrack hit, backend lookup,
/// checksum update, `XDP_TX`.
pub fn maglev_service() -> (
    kbpf_maglev::control::ServiceAddr,
    Vec<kbpf_maglev::control::BackendSpec>,
) {
    let vip = std::net::Ipv4Addr::from(MAGLEV_VIP);
    (
        kbpf_maglev::control::ServiceAddr {
            vip: vip.into(),
            port: 80,
            protocol: kbpf_maglev::packet::IPPROTO_TCP,
        },
        vec![kbpf_maglev::control::BackendSpec::new(vip, 0)],
    )
}

/// `maglev.bpf.o` on kbpf with [`maglev_service`] installed through the control plane.
pub fn maglev_kbpf() -> Result<KbpfObject, String> {
    let obj = KbpfObject::load(Path::new(kbpf_maglev::OBJECT_PATH))?;
    let maps = kbpf_maglev::control::DatapathMaps::from_named(obj.named_maps())
        .map_err(|e| e.to_string())?;
    let mut lb = kbpf_maglev::control::LoadBalancer::new(
        kbpf_maglev::control::KbpfOps,
        maps,
        kbpf_maglev::control::LbConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let (addr, backends) = maglev_service();
    lb.add_service(addr, &backends).map_err(|e| e.to_string())?;
    Ok(obj)
}

/// A JIT-compiled program's function called with two arguments and an unused third: kbpf's
/// leaf images ([`kbpf_jit::LeafEntry`], `(ctx, 0, _)`) and llvmbpf's compiled functions
/// (`(mem, mem_len, _)`).
pub type RawEntry = kbpf_jit::LeafEntry;

/// [`ns_per_call`] of `f(a, b, 0)`: every engine's compiled code timed through this one
/// loop, so that no engine's number includes its own wrapper or depends on where the
/// compiler placed a loop made for it (that alone moved kbpf's parse by a cycle, 3.97 vs
/// 4.21 ns, between two otherwise equal loops).
///
/// # Safety
/// Calling `f(a, b, 0)` must be safe, repeatedly (the engine's run contract).
#[inline(never)]
pub unsafe fn ns_per_entry_call(f: RawEntry, a: u64, b: u64, batch_ms: f64, batches: usize) -> f64 {
    // SAFETY: forwarded to the caller.
    ns_per_call(
        || unsafe { f(std::hint::black_box(a), b, 0) },
        batch_ms,
        batches,
    )
}

/// Median nanoseconds per call of `f` over `batches` batches of about `batch_ms` each (after
/// one warm-up batch); `f` returns a value kept from the optimiser. Each batch runs as ~1 ms
/// sub-batches and counts its fastest one: a sub-batch during which the thread was
/// preempted or interrupted is not the engine's time, just as the kernel's `bpf_test_timer`
/// stops its clock when its repeat loop reschedules. On an idle machine this changes
/// nothing; on a loaded one it keeps the user-space columns as steady as the kernel's.
pub fn ns_per_call(mut f: impl FnMut() -> u64, batch_ms: f64, batches: usize) -> f64 {
    // Calibrate the sub-batch size (~1 ms).
    let mut n: u64 = 1;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f());
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if ms >= 0.25 || n >= 1 << 30 {
            n = ((n as f64) / ms.max(1e-6)).ceil().max(1.0) as u64;
            break;
        }
        n *= 4;
    }
    let subs = batch_ms.round().max(1.0) as usize;
    let mut samples: Vec<f64> = (0..batches)
        .map(|_| {
            (0..subs)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..n {
                        std::hint::black_box(f());
                    }
                    t.elapsed().as_secs_f64() * 1e9 / n as f64
                })
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

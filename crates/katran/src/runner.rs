//! `balancer.bpf.o` on kbpf (its interpreter and JIT, each over its own maps) and on the
//! live kernel (`bpftool prog loadall` + `BPF_PROG_TEST_RUN`), each provisionable through
//! [`crate::provision::Sink`].

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use kbpf_kernel::bpftool::{Pins, loadall};
use kbpf_kernel::{KernelMap, KernelProg};
use kbpf_maps::uapi::{BPF_ANY, BPF_F_NO_PREALLOC};
use kbpf_maps::{Map, MapAttr, MapType};
use kbpf_run::{Engine, Program, TestRunInput};

use crate::provision::Sink;

/// The XDP program of `balancer.bpf.o`.
pub const PROG_NAME: &str = "balancer_ingress";
/// `MAX_REALS`: the inner maps of `vip_to_down_reals_map`.
const MAX_REALS: u32 = 4096;
/// The tester's output buffer (`kMaxXdpPcktSize`).
pub const MAX_PCKT: usize = 4096;

/// One run: return code and output packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOut {
    /// `retval`.
    pub retval: u32,
    /// `data_out`.
    pub data: Vec<u8>,
}

/// `balancer.bpf.o` loaded into kbpf.
pub struct KbpfBalancer {
    program: Arc<Program>,
    maps: HashMap<String, Map>,
    engine: Engine,
    down_reals: HashMap<Vec<u8>, Map>,
    _object: kbpf_loader::LoadedObject,
}

impl KbpfBalancer {
    /// Loads, verifies and translates `object`'s balancer for `engine`.
    pub fn load(object: &Path, engine: Engine) -> Result<KbpfBalancer, String> {
        Self::load_prog(object, PROG_NAME, engine)
    }

    /// Loads, verifies and translates `object`'s program `name` for `engine`.
    pub fn load_prog(object: &Path, name: &str, engine: Engine) -> Result<KbpfBalancer, String> {
        let obj = kbpf_object::BpfObject::open(object).map_err(|e| format!("open: {e}"))?;
        let registry = kbpf_maps::Registry::new();
        let loaded =
            kbpf_loader::load_object(&obj, &registry, &kbpf_loader::LoadOptions::default())
                .map_err(|e| format!("load: {e}"))?;
        let prog = loaded
            .program(name)
            .ok_or_else(|| format!("no program {name}"))?;
        let env = kbpf_run::maps_env(&loaded);
        let btf = kbpf_run::funcs_btf(&obj, prog);
        let program = Program::load(prog, &env, &kbpf_run::LoadOptions::default(), &btf)
            .map_err(|e| format!("BPF_PROG_LOAD: {e}\n{}", e.log().unwrap_or("")))?;
        let maps = loaded
            .maps
            .iter()
            .map(|m| (m.name.clone(), m.map.clone()))
            .collect();
        Ok(KbpfBalancer {
            program: Arc::new(program),
            maps,
            engine,
            down_reals: HashMap::new(),
            _object: loaded,
        })
    }

    fn map(&self, name: &str) -> Result<&Map, String> {
        self.maps
            .get(name)
            .ok_or_else(|| format!("kbpf: no map {name}"))
    }

    /// The verified, translated program (for benchmarks that drive an engine directly).
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// One `BPF_PROG_TEST_RUN`.
    pub fn run(&self, packet: &[u8]) -> Result<RunOut, String> {
        self.run_ctx(packet, None)
    }

    /// One `BPF_PROG_TEST_RUN` with an input context (`struct __sk_buff` for TC).
    pub fn run_ctx(&self, packet: &[u8], ctx: Option<&[u8]>) -> Result<RunOut, String> {
        let out = self
            .program
            .test_run(&TestRunInput {
                data_in: packet,
                ctx_in: ctx,
                repeat: 1,
                engine: self.engine,
            })
            .map_err(|e| e.to_string())?;
        Ok(RunOut {
            retval: out.retval,
            data: out.data_out,
        })
    }
}

impl Drop for KbpfBalancer {
    /// Clears `subprograms[0]`: the slot keeps the program (and so its maps) alive.
    fn drop(&mut self) {
        if let Some(m) = self.maps.get("subprograms") {
            let _ = m.delete_elem(&0u32.to_ne_bytes());
        }
    }
}

impl Sink for KbpfBalancer {
    fn set_recirculation(&mut self) -> Result<(), String> {
        let r = kbpf_run::prog_ref(&self.program, 1);
        self.map("subprograms")?
            .update_prog(&0u32.to_ne_bytes(), r, BPF_ANY)
            .map_err(|e| format!("kbpf subprograms: {e}"))
    }

    fn update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.map(map)?
            .update_elem(key, value, BPF_ANY)
            .map_err(|e| format!("kbpf {map}: {e}"))
    }

    fn down_real(&mut self, vip_key: &[u8], real: u32) -> Result<(), String> {
        // One inner map per VIP, created on its first down real.
        if !self.down_reals.contains_key(vip_key) {
            let inner = Map::create(
                &MapAttr::new(MapType::Hash, 4, 1, MAX_REALS)
                    .flags(BPF_F_NO_PREALLOC)
                    .name("down_reals"),
                None,
            )
            .map_err(|e| format!("kbpf inner map: {e}"))?;
            self.map("vip_to_down_reals_map")?
                .update_inner_map(vip_key, &inner, BPF_ANY)
                .map_err(|e| format!("kbpf vip_to_down_reals_map: {e}"))?;
            self.down_reals.insert(vip_key.to_vec(), inner);
        }
        let inner = &self.down_reals[vip_key];
        inner
            .update_elem(&real.to_ne_bytes(), &[1], BPF_ANY)
            .map_err(|e| format!("kbpf down reals: {e}"))
    }
}

/// `balancer.bpf.o` loaded into the live kernel.
pub struct KernelBalancer {
    prog: KernelProg,
    maps: HashMap<String, KernelMap>,
    down_reals: HashMap<Vec<u8>, KernelMap>,
    _pins: Pins,
}

impl KernelBalancer {
    /// `bpftool prog loadall OBJECT … pinmaps …`, then the program and maps by fd.
    pub fn load(object: &Path) -> Result<KernelBalancer, String> {
        Self::load_prog(object, PROG_NAME)
    }

    /// As [`KernelBalancer::load`], for the object's program `name`.
    pub fn load_prog(object: &Path, name: &str) -> Result<KernelBalancer, String> {
        let pins = Pins::new("kbpfkatran", "balancer");
        loadall(object, &pins)?;
        let prog = KernelProg::from_pinned(pins.progs.join(name))
            .map_err(|e| format!("kernel program: {e}"))?;
        let mut maps = HashMap::new();
        for entry in std::fs::read_dir(&pins.maps).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let m = KernelMap::from_pinned(entry.path()).map_err(|e| format!("{name}: {e}"))?;
            maps.insert(name, m);
        }
        Ok(KernelBalancer {
            prog,
            maps,
            down_reals: HashMap::new(),
            _pins: pins,
        })
    }

    /// The kernel's program.
    pub fn prog(&self) -> &KernelProg {
        &self.prog
    }

    fn map(&self, name: &str) -> Result<&KernelMap, String> {
        self.maps
            .get(name)
            .or_else(|| self.maps.get(&name[..name.len().min(15)]))
            .ok_or_else(|| format!("kernel: no map {name}"))
    }

    /// One `BPF_PROG_TEST_RUN`.
    pub fn run(&self, packet: &[u8]) -> Result<RunOut, String> {
        self.run_ctx(packet, None)
    }

    /// One `BPF_PROG_TEST_RUN` with an input context.
    pub fn run_ctx(&self, packet: &[u8], ctx: Option<&[u8]>) -> Result<RunOut, String> {
        let out = self
            .prog
            .test_run(packet, MAX_PCKT, ctx, 1)
            .map_err(|e| e.to_string())?;
        Ok(RunOut {
            retval: out.retval,
            data: out.data_out,
        })
    }
}

impl Sink for KernelBalancer {
    fn set_recirculation(&mut self) -> Result<(), String> {
        self.map("subprograms")?
            .update_fd(&0u32.to_ne_bytes(), self.prog.as_fd(), BPF_ANY)
            .map_err(|e| format!("kernel subprograms: {e}"))
    }

    fn update(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.map(map)?
            .update(key, value, BPF_ANY)
            .map_err(|e| format!("kernel {map}: {e}"))
    }

    fn down_real(&mut self, vip_key: &[u8], real: u32) -> Result<(), String> {
        use kbpf_kernel::MapCreateAttr;
        use kbpf_kernel::consts::BPF_MAP_TYPE_HASH;
        if !self.down_reals.contains_key(vip_key) {
            let inner = KernelMap::create(
                &MapCreateAttr::new(BPF_MAP_TYPE_HASH, 4, 1, MAX_REALS)
                    .flags(kbpf_kernel::consts::BPF_F_NO_PREALLOC)
                    .name("down_reals"),
            )
            .map_err(|e| format!("kernel inner map: {e}"))?;
            self.map("vip_to_down_reals_map")?
                .update_fd(vip_key, inner.as_fd(), BPF_ANY)
                .map_err(|e| format!("kernel vip_to_down_reals_map: {e}"))?;
            self.down_reals.insert(vip_key.to_vec(), inner);
        }
        self.down_reals[vip_key]
            .update(&real.to_ne_bytes(), &[1], BPF_ANY)
            .map_err(|e| format!("kernel down reals: {e}"))
    }
}

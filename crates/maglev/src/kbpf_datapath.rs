//! The load balancer entirely on kbpf: `maglev.bpf.o` loaded by `kbpf-loader`, verified and
//! translated by kbpf (the outer `HASH_OF_MAPS` lookup inlined, each service's
//! `BPF_F_INNER_MAP` inner array reached by a direct `call array_map_lookup_elem`), run on
//! kbpf's interpreter or JIT, with a [`LoadBalancer`] over the very same maps.
//!
//! ```
//! use kbpf_maglev::control::LbConfig;
//! use kbpf_maglev::demo::Datapath;
//! use kbpf_maglev::kbpf_datapath::{KbpfDatapath, load};
//! let (loaded, _lb) = load(std::path::Path::new(kbpf_maglev::OBJECT_PATH), LbConfig::default())?;
//! let mut dp = KbpfDatapath::new(&loaded, kbpf_run::Engine::Jit).expect("JIT");
//! // No service installed yet: an unknown packet passes (XDP_PASS = 2).
//! let mut frame = vec![0u8; 64];
//! assert_eq!(dp.run(&mut frame).expect("runs"), 2);
//! # Ok::<(), kbpf_maglev::control::ControlError>(())
//! ```

use std::path::Path;
use std::time::Instant;

use kbpf_run::ctx::XdpFrame;
use kbpf_run::{Engine, Program, Runner};

use crate::control::{ControlError, DatapathMaps, KbpfOps, LbConfig, LoadBalancer};
use crate::demo::{Datapath, DatapathError};

/// The object loaded into kbpf: its maps and the verified, translated `maglev_xdp`.
pub struct KbpfLoad {
    /// The XDP program.
    pub program: Program,
    /// The object's maps (and their registry descriptors).
    pub object: kbpf_loader::LoadedObject,
}

fn load_err(op: &'static str, object: &Path, msg: impl ToString) -> ControlError {
    ControlError::Map {
        op,
        map: object.display().to_string(),
        msg: msg.to_string(),
    }
}

/// Loads `object` (the committed `maglev.bpf.o`) into kbpf and builds a control plane over
/// its maps.
pub fn load(
    object: &Path,
    config: LbConfig,
) -> Result<(KbpfLoad, LoadBalancer<KbpfOps>), ControlError> {
    let obj = kbpf_object::BpfObject::open(object).map_err(|e| load_err("open", object, e))?;
    let registry = kbpf_maps::Registry::new();
    let loaded = kbpf_loader::load_object(&obj, &registry, &kbpf_loader::LoadOptions::default())
        .map_err(|e| load_err("load", object, e))?;
    let prog = loaded
        .program("maglev_xdp")
        .ok_or_else(|| load_err("load", object, "no program maglev_xdp"))?;
    let env = kbpf_run::maps_env(&loaded);
    let btf = kbpf_run::funcs_btf(&obj, prog);
    let program =
        Program::load(prog, &env, &kbpf_run::LoadOptions::default(), &btf).map_err(|e| {
            load_err(
                "BPF_PROG_LOAD",
                object,
                format!("{e}\n{}", e.log().unwrap_or("")),
            )
        })?;
    let maps =
        DatapathMaps::from_named(loaded.maps.iter().map(|m| (m.name.clone(), m.map.clone())))?;
    let lb = LoadBalancer::new(KbpfOps, maps, config)?;
    Ok((
        KbpfLoad {
            program,
            object: loaded,
        },
        lb,
    ))
}

/// The kbpf datapath: each packet runs in a reused XDP test-run frame, under one epoch pin
/// per batch (what a kernel NAPI poll does with RCU).
pub struct KbpfDatapath<'a> {
    runner: Runner<'a>,
    frame: Option<XdpFrame>,
    name: &'static str,
    program_ns: u64,
}

impl<'a> KbpfDatapath<'a> {
    /// Compiles the loaded program for `engine`.
    pub fn new(load: &'a KbpfLoad, engine: Engine) -> Result<KbpfDatapath<'a>, DatapathError> {
        let runner = load.program.engine(engine)?;
        Ok(KbpfDatapath {
            runner,
            frame: None,
            name: match engine {
                Engine::Interpreter => "kbpf-interp",
                Engine::Jit => "kbpf-jit",
            },
            program_ns: 0,
        })
    }

    fn run_one(&mut self, packet: &mut Vec<u8>) -> Result<u32, DatapathError> {
        let reused = self.frame.as_mut().is_some_and(|f| f.reset(packet));
        if !reused {
            self.frame = Some(
                XdpFrame::new(packet, 1, 0)
                    .ok_or_else(|| format!("{}-byte frame does not fit", packet.len()))?,
            );
        }
        let frame = self.frame.as_mut().ok_or("no frame")?;
        let ctx = frame.ctx_ptr();
        let t = Instant::now();
        // SAFETY: `ctx` is the live frame's xdp_buff, the context maglev_xdp was verified
        // for; the caller holds the epoch pin.
        let r0 = unsafe { self.runner.run_ctx(ctx) }?;
        self.program_ns += t.elapsed().as_nanos() as u64;
        packet.clear();
        packet.extend_from_slice(frame.data_out());
        Ok(r0 as u32)
    }
}

impl Datapath for KbpfDatapath<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn run(&mut self, frame: &mut Vec<u8>) -> Result<u32, DatapathError> {
        let _pin = kbpf_maps::pin();
        self.run_one(frame)
    }

    fn run_batch(
        &mut self,
        frames: &mut [Vec<u8>],
        actions: &mut [u32],
    ) -> Result<(), DatapathError> {
        let _pin = kbpf_maps::pin();
        for (f, a) in frames.iter_mut().zip(actions.iter_mut()) {
            *a = self.run_one(f)?;
        }
        Ok(())
    }

    fn program_ns(&self) -> Option<u64> {
        Some(self.program_ns)
    }
}

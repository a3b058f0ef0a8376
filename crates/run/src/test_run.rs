//! `BPF_PROG_TEST_RUN` on kbpf: the kernel's rules for each program type's input (sizes,
//! the context built around the packet, what comes back out), the repeat loop and the
//! average duration per run that `bpftool prog run` prints.

use std::time::Instant;

use kbpf_vm::{Interpreter, Mode, RunError};

use crate::ctx::{ETH_HLEN, SkBuff, XdpFrame};
use crate::program::Program;
use kbpf_verifier::ProgType;

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The interpreter (`kbpf-vm`), unchecked as the kernel runs verified programs.
    #[default]
    Interpreter,
    /// The x86-64 JIT.
    Jit,
}

/// The inputs of one test run.
#[derive(Clone, Debug, Default)]
pub struct TestRunInput<'a> {
    /// The packet.
    pub data_in: &'a [u8],
    /// The uapi context (`struct xdp_md` / `struct __sk_buff`), if given.
    pub ctx_in: Option<&'a [u8]>,
    /// Runs (0 counts as 1, as in the kernel).
    pub repeat: u32,
    /// The engine.
    pub engine: Engine,
}

/// What a test run returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunOutput {
    /// `r0` of the last run, truncated to 32 bits (`retval`).
    pub retval: u32,
    /// The packet after the last run.
    pub data_out: Vec<u8>,
    /// The context after the last run, when one was given.
    pub ctx_out: Option<Vec<u8>>,
    /// Average duration of one run in nanoseconds.
    pub duration_ns: u64,
    /// Where the last run redirected the packet (`bpf_redirect_info`), when its verdict is
    /// the redirect (`XDP_REDIRECT`, `TC_ACT_REDIRECT`). The kernel's test run does not
    /// report it.
    pub redirect: Option<crate::Redirect>,
    /// The tunnel metadata the last run attached to the skb (`bpf_skb_set_tunnel_key`);
    /// the kernel's test run drops it with the skb.
    pub tunnel_key: Option<crate::TunnelKey>,
}

/// Why a test run failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TestRunError {
    /// Bad input (the kernel's `EINVAL`).
    #[error("{0}: Invalid argument")]
    Invalid(String),
    /// The engine stopped the program.
    #[error("run failed: {0}")]
    Run(#[from] RunError),
    /// The requested engine cannot run this program.
    #[error("{0}")]
    Engine(String),
    /// The program type has no test run (`prog->aux->ops->test_run` is NULL: kprobe,
    /// tracepoint), the kernel's `ENOTSUPP`.
    #[error("{0} programs have no test run")]
    NotSupported(&'static str),
}

impl TestRunError {
    /// The errno `BPF_PROG_TEST_RUN` returns.
    pub fn errno(&self) -> i32 {
        match self {
            TestRunError::Invalid(_) => 22,
            TestRunError::Run(_) => 14,
            TestRunError::Engine(_) | TestRunError::NotSupported(_) => 524,
        }
    }
}

/// `sizeof(struct xdp_md)`.
const XDP_MD_SIZE: usize = 24;
/// `sizeof(struct __sk_buff)`.
const SK_BUFF_SIZE: usize = 192;

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if off < b.len() {
        let n = (b.len() - off).min(4);
        w[..n].copy_from_slice(&b[off..off + n]);
    }
    u32::from_ne_bytes(w)
}

impl Program {
    /// Runs the program `repeat` times on `data_in` like `BPF_PROG_TEST_RUN`.
    pub fn test_run(&self, input: &TestRunInput<'_>) -> Result<TestRunOutput, TestRunError> {
        let repeat = input.repeat.max(1);
        let engine = self.engine(input.engine)?;
        // bpf_test_run: fresh cgroup storage for each test run (raw_tp runs have none, and
        // cannot use it).
        crate::cgroup_storage::start_test_run();
        let mut out = match self.prog_type {
            ProgType::Xdp => run_xdp(&engine, input, repeat),
            ProgType::SchedCls | ProgType::SchedAct => run_skb(&engine, input, repeat, 0, true),
            ProgType::LwtIn | ProgType::LwtOut | ProgType::LwtXmit => {
                run_skb(&engine, input, repeat, ETH_HLEN, true)
            }
            ProgType::SocketFilter | ProgType::CgroupSkb => {
                run_skb(&engine, input, repeat, ETH_HLEN, false)
            }
            ProgType::RawTracepoint => run_raw_tp(&engine, input, self.max_ctx_offset()),
            ProgType::Kprobe => Err(TestRunError::NotSupported("kprobe")),
            ProgType::Tracepoint => Err(TestRunError::NotSupported("tracepoint")),
            ProgType::CgroupSockAddr
            | ProgType::CgroupSock
            | ProgType::SkSkb
            | ProgType::SkMsg
            | ProgType::Netfilter
            | ProgType::SkReuseport
            | ProgType::PerfEvent
            | ProgType::SockOps
            | ProgType::FlowDissector
            | ProgType::CgroupSysctl
            | ProgType::CgroupSockopt
            | ProgType::SkLookup
            | ProgType::RawTracepointWritable
            | ProgType::Syscall => Err(TestRunError::NotSupported("this program type")),
        }?;
        out.redirect = crate::redirect::for_verdict(self.prog_type, out.retval, out.redirect);
        Ok(out)
    }

    /// The translated program on `engine`, ready to run with a context pointer.
    pub fn engine(&self, engine: Engine) -> Result<Runner<'_>, TestRunError> {
        Ok(match engine {
            Engine::Interpreter => Runner::Interp(
                Interpreter::new_translated(&self.xlated.insns, &self.helpers).map_err(|e| {
                    TestRunError::Engine(format!("translated program does not decode: {e}"))
                })?,
            ),
            Engine::Jit => Runner::Jit(
                self.compile_jit()
                    .map_err(|e| TestRunError::Engine(format!("JIT: {e}")))?,
            ),
        })
    }
}

impl Program {
    /// `prog->aux->max_ctx_offset`: the end of the furthest context access.
    pub fn max_ctx_offset(&self) -> u32 {
        self.ctx_accesses
            .iter()
            .map(|a| a.off + a.size)
            .max()
            .unwrap_or(0)
    }
}

/// `bpf_prog_test_run_raw_tp`: the arguments come from `ctx_in` only (at most
/// `MAX_BPF_FUNC_ARGS` u64s, at least up to the furthest argument the program reads); no
/// packet, no repeat, no context out (each is EINVAL), no duration.
fn run_raw_tp(
    vm: &Runner<'_>,
    input: &TestRunInput<'_>,
    max_ctx_offset: u32,
) -> Result<TestRunOutput, TestRunError> {
    let max = 8 * kbpf_verifier::ctx::MAX_BPF_FUNC_ARGS as usize;
    if !input.data_in.is_empty() || input.repeat != 0 {
        return Err(TestRunError::Invalid(
            "a raw tracepoint test run takes ctx_in only (no data_in, no repeat)".into(),
        ));
    }
    let ctx_in = input.ctx_in.unwrap_or(&[]);
    if ctx_in.len() > max || ctx_in.len() < max_ctx_offset as usize {
        return Err(TestRunError::Invalid(format!(
            "ctx_in of {} bytes (the program reads up to byte {max_ctx_offset}, at most {max})",
            ctx_in.len()
        )));
    }
    let mut args = [0u64; 12];
    for (i, c) in ctx_in.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        args[i] = u64::from_ne_bytes(w);
    }
    let ctx = args.as_mut_ptr() as u64;
    // SAFETY: `args` outlives the run; the verifier kept the program's reads inside it.
    let (r0, _) = timed(1, || unsafe { vm.run_ctx(ctx) })?;
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out: Vec::new(),
        ctx_out: None,
        duration_ns: 0,
        redirect: None,
        tunnel_key: None,
    })
}

/// A translated program compiled for one engine.
pub enum Runner<'p> {
    /// The interpreter.
    Interp(Interpreter<'p>),
    /// The x86-64 JIT.
    Jit(kbpf_jit::JitProgram),
}

impl Runner<'_> {
    /// Runs once with `r1 = ctx`. The caller holds a [`kbpf_maps::pin`] guard.
    ///
    /// # Safety
    /// `ctx` must be the context the program was verified for (a live [`XdpFrame`]'s or
    /// [`SkBuff`]'s context pointer), valid for the whole run: translated programs access
    /// memory unchecked, as in the kernel.
    pub unsafe fn run_ctx(&self, ctx: u64) -> Result<u64, RunError> {
        crate::tail_call::start_run(matches!(self, Runner::Jit(_)));
        crate::redirect::reset();
        let r0 = match self {
            Runner::Interp(vm) => vm.run([ctx, 0, 0, 0, 0], &[], Mode::Unchecked)?,
            // SAFETY: forwarded contract — the verifier accepted the program for this context.
            Runner::Jit(j) => unsafe { j.run(ctx, 0) }?,
        };
        // Tail calls ran inside the program (crate::tail_call); one may have failed.
        crate::tail_call::finish_run()?;
        Ok(r0)
    }
}

fn timed(
    repeat: u32,
    mut run: impl FnMut() -> Result<u64, RunError>,
) -> Result<(u64, u64), RunError> {
    let _guard = kbpf_maps::pin();
    let start = Instant::now();
    let mut r0 = 0;
    for _ in 0..repeat {
        r0 = run()?;
    }
    let ns = start.elapsed().as_nanos() as u64 / repeat as u64;
    Ok((r0, ns))
}

fn run_xdp(
    vm: &Runner<'_>,
    input: &TestRunInput<'_>,
    repeat: u32,
) -> Result<TestRunOutput, TestRunError> {
    let (mut ifindex, mut rxq) = (1, 0);
    if let Some(ctx) = input.ctx_in {
        if ctx.len() > XDP_MD_SIZE {
            return Err(TestRunError::Invalid(
                "ctx_in larger than struct xdp_md".into(),
            ));
        }
        let (data, data_end, data_meta) = (u32_at(ctx, 0), u32_at(ctx, 4), u32_at(ctx, 8));
        if data != 0
            || data_meta != 0
            || (data_end != 0 && data_end as usize != input.data_in.len())
        {
            return Err(TestRunError::Invalid(
                "xdp_md data/data_meta must be 0 and data_end the packet size".into(),
            ));
        }
        if u32_at(ctx, 20) != 0 {
            return Err(TestRunError::Invalid(
                "xdp_md egress_ifindex must be 0".into(),
            ));
        }
        ifindex = u32_at(ctx, 12);
        rxq = u32_at(ctx, 16);
        if ifindex == 0 && rxq != 0 {
            return Err(TestRunError::Invalid(
                "rx_queue_index without ingress_ifindex".into(),
            ));
        }
        if ifindex == 0 {
            ifindex = 1;
        }
    }
    let mut frame = XdpFrame::new(input.data_in, ifindex, rxq).ok_or_else(|| {
        TestRunError::Invalid(format!(
            "XDP data_in of {} bytes (must be {ETH_HLEN}..={})",
            input.data_in.len(),
            XdpFrame::MAX_DATA
        ))
    })?;
    let ctx = frame.ctx_ptr();
    // As in the kernel, every run of the repeat loop sees the same buffer.
    // SAFETY: `ctx` is the context of a live frame/skb that outlives the runs, of the type the
    // program was verified for.
    let (r0, ns) = timed(repeat, || unsafe { vm.run_ctx(ctx) })?;
    let ctx_out = input.ctx_in.map(|c| {
        let mut out = vec![0u8; c.len()];
        let md = [
            0u32,
            (frame.buff.data_end as usize - frame.buff.data as usize) as u32,
            0,
            ifindex,
            rxq,
            0,
        ];
        let bytes: Vec<u8> = md.iter().flat_map(|v| v.to_ne_bytes()).collect();
        out.copy_from_slice(&bytes[..c.len()]);
        out
    });
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out: frame.data_out().to_vec(),
        ctx_out,
        duration_ns: ns,
        redirect: crate::redirect::take(),
        tunnel_key: None,
    })
}

/// `offset`: where `skb->data` starts in the packet. The kernel's test run pulls the
/// Ethernet header (`eth_type_trans`) and pushes it back only for L2 programs (`tc`), so a
/// socket filter, cgroup_skb or lwt program sees the packet from its network header.
/// `direct_pkt_access`: the types whose `data_end` the test run computes (tc, lwt); the
/// others find 0 there. Every skb carries the test run's socket (`skb->sk`).
fn run_skb(
    vm: &Runner<'_>,
    input: &TestRunInput<'_>,
    repeat: u32,
    offset: usize,
    direct_pkt_access: bool,
) -> Result<TestRunOutput, TestRunError> {
    if input.data_in.len() < ETH_HLEN || input.data_in.len() > 4096 - 256 - 320 {
        return Err(TestRunError::Invalid(format!(
            "skb data_in of {} bytes",
            input.data_in.len()
        )));
    }
    // convert___skb_to_skb: only these __sk_buff fields may be set in ctx_in.
    const SETTABLE: &[(usize, usize)] = &[
        (8, 12),    // mark
        (32, 44),   // priority, ingress_ifindex, ifindex
        (48, 68),   // cb[5]
        (152, 168), // tstamp, wire_len, gso_segs
        (176, 180), // gso_size
        (184, 192), // hwtstamp
    ];
    let (mut mark, mut priority, mut iif, mut wire_len, mut gso_size) = (0, 0, 0, 0, 0);
    let mut cb = [0u32; 5];
    if let Some(ctx) = input.ctx_in {
        if ctx.len() > SK_BUFF_SIZE {
            return Err(TestRunError::Invalid(
                "ctx_in larger than struct __sk_buff".into(),
            ));
        }
        let settable = |i: usize| SETTABLE.iter().any(|&(a, b)| (a..b).contains(&i));
        if let Some(i) = (0..ctx.len()).find(|&i| ctx[i] != 0 && !settable(i)) {
            return Err(TestRunError::Invalid(format!(
                "__sk_buff byte {i} may not be set in ctx_in"
            )));
        }
        mark = u32_at(ctx, 8);
        priority = u32_at(ctx, 32);
        iif = u32_at(ctx, 36);
        // kbpf's only device is the loopback (ifindex 1) the kernel's test run defaults to.
        if u32_at(ctx, 40) > 1 {
            return Err(TestRunError::Invalid(
                "ifindex: kbpf has only lo (1)".into(),
            ));
        }
        for (i, c) in cb.iter_mut().enumerate() {
            *c = u32_at(ctx, 48 + 4 * i);
        }
        wire_len = u32_at(ctx, 160);
        gso_size = u32_at(ctx, 176);
        if wire_len != 0 && (wire_len as usize) < input.data_in.len() {
            return Err(TestRunError::Invalid(
                "wire_len below the packet length".into(),
            ));
        }
    }
    if wire_len == 0 {
        wire_len = input.data_in.len() as u32;
    }
    let packet = input.data_in;
    let protocol = u16::from_ne_bytes([packet[12], packet[13]]);
    let pkt_type = crate::ctx::pkt_type_of(&packet[..6]);
    let mut skb = SkBuff::new(packet, offset, mark, protocol, pkt_type);
    skb.set_priority(priority);
    skb.set_gso_size(gso_size);
    skb.set_ingress_ifindex(iif);
    for (i, c) in cb.iter().enumerate() {
        skb.set_cb(i, *c);
    }
    skb.attach_test_sock();
    if !direct_pkt_access {
        skb.clear_data_end();
    }
    let ctx = skb.ctx_ptr();
    // SAFETY: `ctx` is the context of a live frame/skb that outlives the runs, of the type the
    // program was verified for.
    let (r0, ns) = timed(repeat, || unsafe { vm.run_ctx(ctx) })?;
    // convert_skb_to___skb: the settable fields as the program left them, zeros elsewhere.
    let ctx_out = input.ctx_in.map(|c| {
        let mut full = c.to_vec();
        full.resize(SK_BUFF_SIZE, 0);
        let mut out = vec![0u8; SK_BUFF_SIZE];
        for &(a, b) in SETTABLE {
            out[a..b].copy_from_slice(&full[a..b]);
        }
        let mut put = |off: usize, v: u32| out[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        put(8, skb.mark());
        put(32, skb.priority());
        put(36, iif);
        put(40, 1);
        for i in 0..5 {
            put(48 + 4 * i, skb.cb(i));
        }
        put(160, wire_len);
        out.truncate(c.len());
        out
    });
    // A non-L2 program's packet comes back with the Ethernet header pushed again as zeros
    // (the kernel's `memset(__skb_push(skb, hh_len), 0, hh_len)`).
    let mut data_out = vec![0u8; offset];
    data_out.extend_from_slice(skb.data());
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out,
        ctx_out,
        duration_ns: ns,
        redirect: crate::redirect::take(),
        tunnel_key: skb.tunnel_key().copied(),
    })
}

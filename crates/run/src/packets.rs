//! Many packets through one program: what a datapath does with a stream (the daemon's
//! `prog_run_packets`, `prog run … pcap_in`). An XDP program runs as a NIC's poll loop runs
//! it: compiled once, one frame reused (reset to each packet), inside one epoch pin per
//! batch — an RCU read section, so an inner map swapped out meanwhile stays alive until the
//! batch ends, and batches bound how long reclamation waits. Other program types: one test
//! run per packet.

use kbpf_verifier::ProgType;

use crate::ctx::XdpFrame;
use crate::{Engine, Program, TestRunError, TestRunInput};

/// Packets per epoch pin.
const BATCH: usize = 1024;

/// One packet's result: `r0` (truncated to 32 bits) and, when asked for, the packet as the
/// program left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketResult {
    /// The program's return value.
    pub retval: u32,
    /// The packet afterwards (empty unless `want_data`).
    pub data_out: Vec<u8>,
    /// Where the program redirected the packet, when its verdict is the redirect
    /// (`XDP_REDIRECT`, `TC_ACT_REDIRECT`): the run's `bpf_redirect_info`, reset before each
    /// packet (see [`crate::redirect`]).
    pub redirect: Option<crate::Redirect>,
}

/// Runs `prog` on each packet in order on `engine`; `each(i, result)` sees every result.
pub fn run_packets<'a>(
    prog: &Program,
    engine: Engine,
    packets: impl IntoIterator<Item = &'a [u8]>,
    want_data: bool,
    mut each: impl FnMut(usize, PacketResult),
) -> Result<(), TestRunError> {
    if !matches!(prog.prog_type, ProgType::Xdp) {
        for (i, p) in packets.into_iter().enumerate() {
            let o = prog.test_run(&TestRunInput {
                data_in: p,
                ctx_in: None,
                repeat: 1,
                engine,
            })?;
            each(
                i,
                PacketResult {
                    retval: o.retval,
                    data_out: if want_data { o.data_out } else { Vec::new() },
                    redirect: o.redirect,
                },
            );
        }
        return Ok(());
    }
    let mut stream = XdpStream::new(prog, engine, 1, 0)?;
    let mut pin = kbpf_maps::pin();
    for (i, p) in packets.into_iter().enumerate() {
        if i % BATCH == 0 && i > 0 {
            drop(pin);
            pin = kbpf_maps::pin();
        }
        let Some(retval) = stream.run(p)? else {
            return Err(TestRunError::Invalid(format!(
                "a {}-byte packet does not fit a frame",
                p.len()
            )));
        };
        let redirect = stream.redirect().cloned();
        each(
            i,
            PacketResult {
                retval,
                data_out: if want_data {
                    stream.data_out().to_vec()
                } else {
                    Vec::new()
                },
                redirect,
            },
        );
    }
    drop(pin);
    Ok(())
}

/// An XDP program fed one received frame at a time, as a driver's poll loop feeds it: the
/// program compiled once, one frame re-armed for each packet. The caller holds a
/// [`kbpf_maps::pin`] around each batch of [`XdpStream::run`] calls and releases it between
/// batches (a driver's NAPI poll is one RCU read section), so the epoch can advance while
/// the stream waits for packets.
pub struct XdpStream<'p> {
    runner: crate::Runner<'p>,
    frame: Option<XdpFrame>,
    ifindex: u32,
    rx_queue: u32,
    redirect: Option<crate::Redirect>,
}

impl<'p> XdpStream<'p> {
    /// A stream of `prog` (an XDP program) on `engine`, for frames received on `ifindex`
    /// queue `rx_queue` (what `ctx->ingress_ifindex` and `ctx->rx_queue_index` read).
    pub fn new(
        prog: &'p Program,
        engine: Engine,
        ifindex: u32,
        rx_queue: u32,
    ) -> Result<XdpStream<'p>, TestRunError> {
        if !matches!(prog.prog_type, ProgType::Xdp) {
            return Err(TestRunError::Invalid(format!(
                "{:?} is not an XDP program",
                prog.prog_type
            )));
        }
        Ok(XdpStream {
            runner: prog.engine(engine)?,
            frame: None,
            ifindex,
            rx_queue,
            redirect: None,
        })
    }

    /// Runs the program on `packet` and returns its return value (`r0`, truncated to 32
    /// bits), or `None` when the packet does not fit a frame (shorter than an Ethernet
    /// header or longer than [`XdpFrame::MAX_DATA`]: a driver drops those before XDP).
    /// The caller holds a [`kbpf_maps::pin`].
    pub fn run(&mut self, packet: &[u8]) -> Result<Option<u32>, TestRunError> {
        self.redirect = None;
        if !self.frame.as_mut().is_some_and(|f| f.reset(packet)) {
            match XdpFrame::new(packet, self.ifindex, self.rx_queue) {
                Some(f) => self.frame = Some(f),
                None => return Ok(None),
            }
        }
        let Some(f) = self.frame.as_mut() else {
            return Err(TestRunError::Engine("no frame".into()));
        };
        let ctx = f.ctx_ptr();
        // SAFETY: `ctx` is the live frame's xdp_buff, the context type the program was
        // verified for (checked in `new`); the caller holds the epoch pin.
        let r0 = unsafe { self.runner.run_ctx(ctx) }?;
        self.redirect =
            crate::redirect::for_verdict(ProgType::Xdp, r0 as u32, crate::redirect::take());
        Ok(Some(r0 as u32))
    }

    /// Sets the receive queue the next frames arrive on (`ctx->rx_queue_index`).
    pub fn set_rx_queue(&mut self, rx_queue: u32) {
        self.rx_queue = rx_queue;
        if let Some(f) = self.frame.as_mut() {
            f.set_rx_queue(rx_queue);
        }
    }

    /// Where the last run redirected the packet, when it returned `XDP_REDIRECT`.
    pub fn redirect(&self) -> Option<&crate::Redirect> {
        self.redirect.as_ref()
    }

    /// The packet as the last run left it, `[data, data_end)`: what XDP_TX transmits and
    /// XDP_PASS hands to the stack.
    pub fn packet(&self) -> &[u8] {
        self.frame.as_ref().map_or(&[], |f| f.packet())
    }

    /// What `BPF_PROG_TEST_RUN` copies out after the last run: metadata and packet.
    pub fn data_out(&self) -> &[u8] {
        self.frame.as_ref().map_or(&[], |f| f.data_out())
    }
}

/// A tc program (`BPF_PROG_TYPE_SCHED_CLS`/`SCHED_ACT`) fed one received frame at a time,
/// as the device's tc ingress hook runs it: an skb per frame on the receiving device, the
/// data at the MAC header. The caller holds a [`kbpf_maps::pin`] around each batch.
pub struct SkbStream<'p> {
    runner: crate::Runner<'p>,
    prog_type: ProgType,
    skb: Option<crate::ctx::SkBuff>,
    redirect: Option<crate::Redirect>,
}

/// What a tc run leaves that the stack sees besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkbMeta {
    /// `skb->mark`.
    pub mark: u32,
    /// `skb->priority`.
    pub priority: u32,
}

impl<'p> SkbStream<'p> {
    /// A stream of `prog` (a tc program) on `engine`.
    pub fn new(prog: &'p Program, engine: Engine) -> Result<SkbStream<'p>, TestRunError> {
        if !matches!(prog.prog_type, ProgType::SchedCls | ProgType::SchedAct) {
            return Err(TestRunError::Invalid(format!(
                "{:?} is not a tc program",
                prog.prog_type
            )));
        }
        Ok(SkbStream {
            runner: prog.engine(engine)?,
            prog_type: prog.prog_type,
            skb: None,
            redirect: None,
        })
    }

    /// Runs the program on `packet` received on `ifindex` as `pkt_type` (`PACKET_*`), and
    /// returns its return value, or `None` for a packet shorter than an Ethernet header or
    /// longer than a page's linear buffer. The caller holds a [`kbpf_maps::pin`].
    pub fn run(
        &mut self,
        packet: &[u8],
        ifindex: u32,
        pkt_type: u8,
    ) -> Result<Option<u32>, TestRunError> {
        self.redirect = None;
        if packet.len() < 14 || packet.len() > XdpFrame::MAX_DATA {
            self.skb = None;
            return Ok(None);
        }
        let protocol = u16::from_ne_bytes([packet[12], packet[13]]);
        let mut skb = crate::ctx::SkBuff::new(packet, 0, 0, protocol, pkt_type);
        skb.set_dev_ifindex(ifindex);
        skb.set_ingress_ifindex(ifindex);
        let ctx = self.skb.insert(skb).ctx_ptr();
        // SAFETY: `ctx` is the live skb's context, the context type the program was verified
        // for (checked in `new`); the caller holds the epoch pin.
        let r0 = unsafe { self.runner.run_ctx(ctx) }?;
        self.redirect =
            crate::redirect::for_verdict(self.prog_type, r0 as u32, crate::redirect::take());
        Ok(Some(r0 as u32))
    }

    /// The packet as the last run left it.
    pub fn packet(&self) -> &[u8] {
        self.skb.as_ref().map_or(&[], |s| s.data())
    }

    /// The last run's `skb->mark` and `skb->priority`.
    pub fn meta(&self) -> SkbMeta {
        self.skb.as_ref().map_or(
            SkbMeta {
                mark: 0,
                priority: 0,
            },
            |s| SkbMeta {
                mark: s.mark(),
                priority: s.priority(),
            },
        )
    }

    /// Where the last run redirected the packet, when it returned `TC_ACT_REDIRECT`.
    pub fn redirect(&self) -> Option<&crate::Redirect> {
        self.redirect.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_run_in_order_and_frames_resize() {
        // r0 = packet length (data_end - data)
        use kbpf_isa::Insn;
        let insns = [
            Insn::new(0x61, 2, 1, 0, 0), // r2 = *(u32 *)(r1 + 0)  data
            Insn::new(0x61, 0, 1, 4, 0), // r0 = *(u32 *)(r1 + 4)  data_end
            Insn::new(0x1f, 0, 2, 0, 0), // r0 -= r2
            Insn::new(0x95, 0, 0, 0, 0), // exit
        ];
        let loaded = kbpf_loader::LoadedProgram::from_insns("len", 6, insns.to_vec());
        let prog = Program::load(
            &loaded,
            &kbpf_rewrite::MapsEnv::new(),
            &crate::LoadOptions::default(),
            &[],
        )
        .unwrap();
        let pkts: Vec<Vec<u8>> = [60usize, 1500, 14, 3000]
            .iter()
            .map(|n| vec![7u8; *n])
            .collect();
        for engine in [Engine::Interpreter, Engine::Jit] {
            let mut got = Vec::new();
            run_packets(
                &prog,
                engine,
                pkts.iter().map(|p| p.as_slice()),
                true,
                |i, r| got.push((i, r.retval, r.data_out.len())),
            )
            .unwrap();
            assert_eq!(
                got,
                vec![(0, 60, 60), (1, 1500, 1500), (2, 14, 14), (3, 3000, 3000)]
            );
        }
        // Larger than a page's frame without frags: EINVAL, as BPF_PROG_TEST_RUN says.
        let big = [vec![0u8; 9000]];
        let e = run_packets(
            &prog,
            Engine::Jit,
            big.iter().map(|p| p.as_slice()),
            false,
            |_, _| {},
        )
        .unwrap_err();
        assert_eq!(e.errno(), 22);
    }
}

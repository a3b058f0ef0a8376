//! One received frame through the attached program, and what its verdict does: the
//! per-frame half of an attachment, shared by both captures. Two hooks:
//! - **XDP** (`enum xdp_action`): `XDP_PASS` to the stack, `XDP_TX` back out, `XDP_DROP`,
//!   `XDP_ABORTED`, `XDP_REDIRECT`;
//! - **tc ingress** (tcx's reading of the return code, `tcx_action_code`): `TCX_DROP` (2)
//!   drops, `TCX_REDIRECT` (7) redirects, anything else (`TCX_PASS`, `TCX_NEXT`, the other
//!   `TC_ACT_*`) goes on to the stack — with the `skb->mark` and `skb->priority` the program
//!   left, which the return path restores ([`crate::bypass`]).

use kbpf_run::{Engine, Program, SkbStream, TestRunError, XdpStream};

use crate::counters::{Counters, bump};
use crate::packet_socket::TxSocket;
use crate::tap::Tap;

use kbpf_uapi::net::{
    BPF_F_INGRESS, TCX_DROP, TCX_REDIRECT, XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX,
};

/// Where the program is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hook {
    /// XDP: before the stack, on the raw frame.
    #[default]
    Xdp,
    /// tc ingress (tcx): on the frame as an skb, before the stack's protocol handlers.
    TcIngress,
}

/// The attached program, compiled once, fed frames.
// One per attachment thread, on its stack: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Stream<'p> {
    Xdp(XdpStream<'p>),
    Tc(SkbStream<'p>, u32),
}

impl<'p> Stream<'p> {
    /// A stream of `prog` on `hook` for frames of device `ifindex`.
    pub(crate) fn new(
        prog: &'p Program,
        hook: Hook,
        engine: Engine,
        ifindex: u32,
    ) -> Result<Stream<'p>, TestRunError> {
        Ok(match hook {
            Hook::Xdp => Stream::Xdp(XdpStream::new(prog, engine, ifindex, 0)?),
            Hook::TcIngress => Stream::Tc(SkbStream::new(prog, engine)?, ifindex),
        })
    }

    /// Sets the RX queue of the next frames (XDP's `ctx->rx_queue_index`).
    pub(crate) fn set_rx_queue(&mut self, q: u32) {
        if let Stream::Xdp(x) = self {
            x.set_rx_queue(q);
        }
    }

    /// The packet as the last run left it.
    pub(crate) fn packet(&self) -> &[u8] {
        match self {
            Stream::Xdp(x) => x.packet(),
            Stream::Tc(t, _) => t.packet(),
        }
    }
}

/// What to do with a frame after the program ran.
pub(crate) enum Act {
    /// Send `stream.packet()` back out of the device (`XDP_TX`).
    Tx,
    /// Done with it (passed to the stack, redirected, dropped, or refused before the
    /// program).
    Done,
}

/// Where redirected frames go: the devices' send sockets, opened on first use.
#[derive(Default)]
pub(crate) struct Redirector {
    out: std::collections::HashMap<u32, TxSocket>,
}

impl Redirector {
    fn send(&mut self, ifindex: u32, packet: &[u8]) -> bool {
        let sock = match self.out.entry(ifindex) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                TxSocket::open(ifindex).ok().map(|s| e.insert(s))
            }
        };
        sock.is_some_and(|s| s.send(packet).is_ok())
    }

    /// Carries out a redirect of `packet` arriving on `own`; counts it.
    fn redirect(
        &mut self,
        r: &kbpf_run::Redirect,
        own: u32,
        packet: &[u8],
        meta: (u32, u32),
        tap: &Tap,
        c: &Counters,
    ) {
        use kbpf_run::RedirectTarget as T;
        let ok = match r.target {
            // Into a device's ingress: only the attached device has a way back in.
            T::Ifindex { ifindex } if r.flags & BPF_F_INGRESS != 0 => {
                ifindex == own && tap.inject(packet, meta.0, meta.1).is_ok()
            }
            T::Ifindex { ifindex } | T::DevMap { ifindex, .. } => self.send(ifindex, packet),
            // A cpumap hands the frame to the stack (on that CPU's kthread).
            T::CpuMap { .. } => tap.inject(packet, 0, 0).is_ok(),
            // Not modelled: a broadcast needs the devmap's devices; kbpf has no AF_XDP
            // sockets in an xskmap (those redirects miss before they get here).
            T::DevMapBroadcast { .. } | T::XskMap { .. } => false,
        };
        bump(if ok { &c.redirect } else { &c.redirect_errors });
    }
}

/// Runs the program on one received frame (`pkt_type`: `PACKET_*` as the capture saw
/// it) and carries out everything but `XDP_TX`.
pub(crate) fn run_frame(
    stream: &mut Stream<'_>,
    frame: &[u8],
    pkt_type: u8,
    tap: &Tap,
    redirector: &mut Redirector,
    c: &Counters,
) -> Act {
    let ran = match stream {
        Stream::Xdp(x) => x.run(frame),
        Stream::Tc(t, ifindex) => t.run(frame, *ifindex, pkt_type),
    };
    let r0 = match ran {
        Ok(Some(a)) => a,
        Ok(None) if frame.len() < 14 => {
            bump(&c.runt);
            return Act::Done;
        }
        Ok(None) => {
            bump(&c.oversized);
            return Act::Done;
        }
        Err(_) => {
            bump(&c.run_errors);
            return Act::Done;
        }
    };
    let pass = |packet: &[u8], mark: u32, priority: u32| {
        bump(&c.pass);
        if tap.inject(packet, mark, priority).is_err() {
            bump(&c.pass_errors);
        }
    };
    match stream {
        Stream::Xdp(x) => match r0 {
            XDP_PASS => pass(x.packet(), 0, 0),
            XDP_TX => {
                bump(&c.tx);
                return Act::Tx;
            }
            XDP_DROP => bump(&c.drop),
            XDP_ABORTED => bump(&c.aborted),
            XDP_REDIRECT => match x.redirect().copied() {
                // XDP's bpf_redirect takes no BPF_F_INGRESS, so no ingress device is needed.
                Some(r) => redirector.redirect(&r, 0, x.packet(), (0, 0), tap, c),
                None => bump(&c.redirect_errors),
            },
            _ => bump(&c.invalid_action),
        },
        Stream::Tc(t, ifindex) => {
            let meta = t.meta();
            match r0 as i32 {
                TCX_DROP => bump(&c.drop),
                TCX_REDIRECT => match t.redirect().copied() {
                    Some(r) => redirector.redirect(
                        &r,
                        *ifindex,
                        t.packet(),
                        (meta.mark, meta.priority),
                        tap,
                        c,
                    ),
                    None => bump(&c.redirect_errors),
                },
                _ => pass(t.packet(), meta.mark, meta.priority),
            }
        }
    }
    Act::Done
}

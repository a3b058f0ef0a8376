//! What happened to an attachment's frames, per outcome: written by the attachment's thread
//! as its stream runs frames, read by `net show`.

use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to the frames of one attachment. Relaxed atomics: each is written by the
/// attachment's thread alone and read by `net show`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames received (and their bytes).
    pub rx: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// `XDP_PASS`: handed to the stack.
    pub pass: AtomicU64,
    /// `XDP_TX`: sent back out of the device.
    pub tx: AtomicU64,
    /// `XDP_DROP`.
    pub drop: AtomicU64,
    /// `XDP_ABORTED` (the kernel's `trace_xdp_exception` and a drop).
    pub aborted: AtomicU64,
    /// `XDP_REDIRECT` carried out: out of another device (`bpf_redirect`, a devmap
    /// entry) or to the stack (a cpumap entry).
    pub redirect: AtomicU64,
    /// `XDP_REDIRECT` that could not be carried out (a devmap broadcast, an xskmap, a
    /// device that refused the frame): dropped, as `xdp_do_redirect` failing.
    pub redirect_errors: AtomicU64,
    /// Return values that are no XDP action (dropped, as `bpf_warn_invalid_xdp_action`).
    pub invalid_action: AtomicU64,
    /// Frames shorter than an Ethernet header (dropped before the program, as a driver).
    pub runt: AtomicU64,
    /// Frames too long for an XDP frame (dropped before the program).
    pub oversized: AtomicU64,
    /// Frames with a malformed virtio-net header.
    pub malformed: AtomicU64,
    /// GSO super-frames received.
    pub gso: AtomicU64,
    /// Partial checksums completed before the program ran.
    pub csum_completed: AtomicU64,
    /// Runs that failed in the engine (counted, frame dropped).
    pub run_errors: AtomicU64,
    /// `XDP_TX` frames the device did not take.
    pub tx_errors: AtomicU64,
    /// `XDP_PASS` frames the tap did not take.
    pub pass_errors: AtomicU64,
    /// Frames lost before the program because the capture queue was full (a flood
    /// faster than the program): what a NIC counts as `rx_missed`.
    pub rx_missed: AtomicU64,
}

impl Counters {
    /// Every counter by name, in a fixed order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("rx", c(&self.rx)),
            ("rx_bytes", c(&self.rx_bytes)),
            ("pass", c(&self.pass)),
            ("tx", c(&self.tx)),
            ("drop", c(&self.drop)),
            ("aborted", c(&self.aborted)),
            ("redirect", c(&self.redirect)),
            ("redirect_errors", c(&self.redirect_errors)),
            ("invalid_action", c(&self.invalid_action)),
            ("runt", c(&self.runt)),
            ("oversized", c(&self.oversized)),
            ("malformed", c(&self.malformed)),
            ("gso", c(&self.gso)),
            ("csum_completed", c(&self.csum_completed)),
            ("run_errors", c(&self.run_errors)),
            ("tx_errors", c(&self.tx_errors)),
            ("pass_errors", c(&self.pass_errors)),
            ("rx_missed", c(&self.rx_missed)),
        ]
    }
}

pub(crate) fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

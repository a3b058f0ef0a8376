//! kbpf's datapath on real interfaces: `kbpf net attach xdp PROG dev IFACE` runs a kbpf
//! program on every frame the device receives, in user space, with the kernel's XDP
//! semantics for each action.
//!
//! How a frame travels (see `docs/design/net.md` for the reasons and the limits):
//! - **Capture.** An `AF_PACKET` socket bound to the device receives each frame
//!   ([`packet_socket`]). Packet sockets see a frame before the device's tc ingress hook,
//!   where a two-instruction kernel program on a tcx link ([`bypass`]) drops it, so the
//!   kernel's stack never processes a frame the program did not pass: the device behaves
//!   as if an XDP program ran in its driver.
//! - **Run.** [`kbpf_run::XdpStream`]: the program compiled once, a frame re-armed per
//!   packet, one epoch pin per receive batch (a NAPI poll's RCU read section), so maps the
//!   control plane swaps meanwhile stay valid until the batch ends.
//! - **Act.** `XDP_TX` sends the frame out of the same device; `XDP_PASS` writes it to a tap
//!   device whose tcx program redirects it into the device's ingress, marked so that the
//!   capture filter and the bypass let it through to the stack (unmarked, as it arrived);
//!   `XDP_DROP`, `XDP_ABORTED` and unknown actions drop it. Every outcome is counted
//!   ([`Counters`]).
//!
//! Attachments are made from inside the network namespace of the process that asked
//! ([`NetNs`]), as `bpftool net attach` works in its own namespace. Each attachment is one
//! thread; its kernel links and tap die with it, and with the process, so a crashed daemon
//! hands the device back to the kernel's stack.

mod attach;
pub mod bypass;
mod counters;
mod iface;
pub mod packet_socket;
mod stream;
mod tap;
pub mod xsk;

pub use attach::{
    AttachError, AttachOptions, Attachment, AttachmentInfo, Attachments, CAPTURE_ENV, CaptureMode,
};
pub use counters::Counters;
pub use iface::{NetNs, ifindex, ifname};
pub use stream::Hook;

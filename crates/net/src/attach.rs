//! One attachment: a thread in the device's namespace running the program on each frame
//! the device receives, and the registry of attachments a daemon holds.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use kbpf_run::{Engine, Program};

use crate::bypass::{PASS_MARK, attach_bypass, attach_return_path};
use crate::counters::{Counters, bump};
use crate::iface::{NetNs, ifindex};
use crate::packet_socket::{MAX_FRAME, PacketSocket, VNET_HDR_LEN, complete_frame};
use crate::stream::{Act, Hook, Redirector, Stream, run_frame};
use crate::tap::Tap;
use crate::xsk::XskSocket;

/// `PACKET_HOST`: what AF_XDP frames are taken as (XDP programs do not see the type).
const PACKET_HOST: u8 = 0;

/// Frames per receive batch (and per epoch pin).
const BATCH: usize = 64;
/// How long a receive waits before the thread looks at its stop flag again.
const POLL: Duration = Duration::from_millis(100);

/// Why an attachment could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// No such device in the namespace.
    #[error("no device {0} in this network namespace")]
    NoDevice(String),
    /// The device already has a kbpf XDP program and `overwrite` was not given.
    #[error("{0} already has a kbpf XDP program; use 'overwrite' to replace it")]
    Exists(String),
    /// The device has no kbpf program at that hook.
    #[error("{0} has no kbpf program there")]
    NotAttached(String),
    /// The device has a kbpf program at the other hook.
    #[error("{0} already has a kbpf program at another hook (kbpf runs one per device)")]
    Busy(String),
    /// The program cannot run on frames (not XDP, or the engine refused it).
    #[error("{0}")]
    Program(String),
    /// A socket, tap or namespace operation failed.
    #[error("{what}: {err}")]
    Io {
        /// What was being done.
        what: String,
        /// The system's error.
        err: io::Error,
    },
    /// The kernel refused the bypass or return-path program or link.
    #[error("{0}")]
    Kernel(String),
}

impl AttachError {
    /// The errno `bpftool` would exit with for the same refusal.
    pub fn errno(&self) -> i32 {
        match self {
            AttachError::NoDevice(_) => libc::ENODEV,
            AttachError::Exists(_) => libc::EEXIST,
            AttachError::NotAttached(_) => libc::ENOENT,
            AttachError::Busy(_) => libc::EBUSY,
            AttachError::Program(_) => libc::EINVAL,
            AttachError::Io { err, .. } => err.raw_os_error().unwrap_or(libc::EIO),
            AttachError::Kernel(_) => libc::EPERM,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> AttachError {
    let what = what.into();
    move |err| AttachError::Io { what, err }
}

/// How to attach.
#[derive(Clone, Copy, Debug)]
pub struct AttachOptions {
    /// The engine that runs the program.
    pub engine: Engine,
    /// The capture path.
    pub capture: CaptureMode,
    /// The hook the program runs at.
    pub hook: Hook,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            engine: Engine::Jit,
            capture: CaptureMode::Auto,
            hook: Hook::Xdp,
        }
    }
}

struct Shared {
    stop: AtomicBool,
    prog: Mutex<(Arc<Program>, u32)>,
    generation: AtomicU64,
    counters: Counters,
    /// Why the thread stopped serving, if it did.
    failed: Mutex<Option<String>>,
    /// The capture path in use.
    capture: Mutex<&'static str>,
    /// RX queues served (AF_XDP: one socket each; AF_PACKET: 1, all queues).
    queues: AtomicU64,
}

/// A program attached to a device: its thread, counters and program.
pub struct Attachment {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    ifname: String,
    ifindex: u32,
    netns: u64,
    engine: Engine,
    hook: Hook,
}

impl Attachment {
    /// Attaches `prog` (id `prog_id`) to device `ifname` of namespace `netns`: returns once
    /// frames are being taken from the stack, or with why not.
    pub fn start(
        prog: Arc<Program>,
        prog_id: u32,
        ifname: &str,
        netns: NetNs,
        opts: AttachOptions,
    ) -> Result<Attachment, AttachError> {
        // A trial stream here, so a program of the wrong type for the hook, or that the
        // engine refuses, fails the attach itself.
        Stream::new(&prog, opts.hook, opts.engine, 1)
            .map_err(|e| AttachError::Program(format!("program {prog_id}: {e}")))?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            prog: Mutex::new((prog, prog_id)),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
            failed: Mutex::new(None),
            capture: Mutex::new(""),
            queues: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let name = ifname.to_string();
        let sh = shared.clone();
        let engine = opts.engine;
        let hook = opts.hook;
        // A tc program runs on skbs: only the packet socket sees frames as the stack does.
        let mode = if hook == Hook::TcIngress {
            CaptureMode::AfPacket
        } else {
            opts.capture
        };
        let inode = netns.inode();
        let thread = std::thread::Builder::new()
            .name(format!("kbpf-net-{name}"))
            .spawn(move || run_attachment(sh, netns, name, engine, hook, mode, ready_tx))
            .map_err(io_err("starting the attachment thread"))?;
        match ready_rx.recv() {
            Ok(Ok(ifindex)) => Ok(Attachment {
                shared,
                thread: Some(thread),
                ifname: ifname.to_string(),
                ifindex,
                netns: inode,
                engine,
                hook,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(AttachError::Kernel("the attachment thread ended".into()))
            }
        }
    }

    /// Replaces the program; frames from the next batch on see the new one.
    pub fn replace(&self, prog: Arc<Program>, prog_id: u32) -> Result<(), AttachError> {
        Stream::new(&prog, self.hook, self.engine, self.ifindex)
            .map_err(|e| AttachError::Program(format!("program {prog_id}: {e}")))?;
        *self.shared.prog.lock().unwrap_or_else(|p| p.into_inner()) = (prog, prog_id);
        self.shared.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The attached program's id.
    pub fn prog_id(&self) -> u32 {
        self.shared.prog.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// The device's name, as given at attach.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The device's index in its namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The namespace's inode.
    pub fn netns(&self) -> u64 {
        self.netns
    }

    /// The engine running the program.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The hook the program runs at.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The capture path: `af_xdp` (copy mode), `af_xdp_zerocopy` or `af_packet`.
    pub fn capture(&self) -> &'static str {
        *self
            .shared
            .capture
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Why the attachment stopped serving frames, if it did (the device went away, …).
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How frames reach the program.
enum Capture {
    /// AF_XDP (copy mode), fed by a redirect program in the driver or the stack.
    Xsk(Box<XskSocket>),
    /// AF_PACKET, with the tcx bypass taking frames from the stack.
    Packet(PacketSocket),
}

impl Capture {
    fn name(&self) -> &'static str {
        match self {
            Capture::Xsk(x) if x.queues.iter().all(|q| q.zerocopy) => "af_xdp_zerocopy",
            Capture::Xsk(_) => "af_xdp",
            Capture::Packet(_) => "af_packet",
        }
    }
}

/// `KBPF_NET_CAPTURE`: the daemon's default [`CaptureMode`] (`auto`, `af_xdp`,
/// `af_packet`).
pub const CAPTURE_ENV: &str = "KBPF_NET_CAPTURE";

/// Which capture path an attachment uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaptureMode {
    /// AF_XDP where the redirect program can run in the driver, else AF_PACKET.
    #[default]
    Auto,
    /// AF_XDP or nothing.
    AfXdp,
    /// AF_PACKET.
    AfPacket,
}

impl CaptureMode {
    /// [`CAPTURE_ENV`]'s choice (`Auto` when unset or unknown).
    pub fn from_env() -> CaptureMode {
        match std::env::var(CAPTURE_ENV).as_deref() {
            Ok("af_xdp") => CaptureMode::AfXdp,
            Ok("af_packet") => CaptureMode::AfPacket,
            _ => CaptureMode::Auto,
        }
    }
}

fn open_capture(ifindex: u32, ifname: &str, mode: CaptureMode) -> Result<Capture, AttachError> {
    let packet = || {
        PacketSocket::open(ifindex, PASS_MARK, POLL)
            .map(Capture::Packet)
            .map_err(io_err(format!("AF_PACKET socket on {ifname}")))
    };
    // Only with the redirect program in the driver: as generic XDP it would meet the
    // frames kbpf passes back to the stack again (it runs before tc, and an XDP program
    // cannot read the mark that tells them apart).
    let xsk = || XskSocket::open(ifindex).map(|x| Capture::Xsk(Box::new(x)));
    match mode {
        CaptureMode::AfPacket => packet(),
        CaptureMode::AfXdp => xsk().map_err(AttachError::Kernel),
        CaptureMode::Auto => xsk().or_else(|_| packet()),
    }
}

fn run_attachment(
    shared: Arc<Shared>,
    netns: NetNs,
    ifname: String,
    engine: Engine,
    hook: Hook,
    mode: CaptureMode,
    ready: mpsc::Sender<Result<u32, AttachError>>,
) {
    let setup = (|| {
        netns
            .enter()
            .map_err(io_err("entering the network namespace"))?;
        let ifindex = ifindex(&ifname).map_err(|_| AttachError::NoDevice(ifname.clone()))?;
        let tap = Tap::create(&format!("kbpfp{ifindex}"))
            .map_err(io_err(format!("tap device for {ifname}")))?;
        let tap_index = crate::iface::ifindex(tap.name())
            .map_err(io_err(format!("tap device {}", tap.name())))?;
        let ret = attach_return_path(tap_index, ifindex).map_err(AttachError::Kernel)?;
        // AF_PACKET: the socket first, then the bypass, so no frame goes unseen. AF_XDP:
        // the bypass first (it only ever meets frames passed back), then the redirect.
        let (capture, bypass) = if mode == CaptureMode::AfPacket {
            let c = open_capture(ifindex, &ifname, mode)?;
            (c, attach_bypass(ifindex).map_err(AttachError::Kernel)?)
        } else {
            let b = attach_bypass(ifindex).map_err(AttachError::Kernel)?;
            (open_capture(ifindex, &ifname, mode)?, b)
        };
        Ok((ifindex, capture, tap, ret, bypass))
    })();
    let (ifindex, capture, tap, _ret, _bypass) = match setup {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    *shared.capture.lock().unwrap_or_else(|p| p.into_inner()) = capture.name();
    let queues = match &capture {
        Capture::Xsk(x) => x.queues.len() as u64,
        Capture::Packet(_) => 1,
    };
    shared.queues.store(queues, Ordering::Relaxed);
    let _ = ready.send(Ok(ifindex));
    let r = match capture {
        Capture::Packet(sock) => serve_packet(&shared, &sock, &tap, ifindex, hook, engine),
        Capture::Xsk(mut x) => serve_xsk(&shared, &mut x, &tap, ifindex, hook, engine),
    };
    if let Err(e) = r {
        *shared.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

/// The AF_XDP receive loop.
fn serve_xsk(
    shared: &Shared,
    xsk: &mut XskSocket,
    tap: &Tap,
    ifindex: u32,
    hook: Hook,
    engine: Engine,
) -> Result<(), String> {
    let c = &shared.counters;
    let mut batches = 0u64;
    let mut redirector = Redirector::default();
    serve_batches(shared, ifindex, hook, engine, |stream| {
        xsk.wait(POLL.as_millis() as i32)
            .map_err(|e| format!("AF_XDP poll: {e}"))?;
        let mut n = 0;
        let pin = kbpf_maps::pin();
        for q in xsk.queues.iter_mut() {
            stream.set_rx_queue(q.queue);
            n += q
                .poll_batch(0, BATCH as u32, |buf, len| {
                    bump(&c.rx);
                    c.rx_bytes.fetch_add(len as u64, Ordering::Relaxed);
                    match run_frame(stream, &buf[..len], PACKET_HOST, tap, &mut redirector, c) {
                        Act::Tx => {
                            let p = stream.packet();
                            if p.len() <= buf.len() {
                                buf[..p.len()].copy_from_slice(p);
                                Some(p.len())
                            } else {
                                bump(&c.tx_errors);
                                None
                            }
                        }
                        Act::Done => None,
                    }
                })
                .map_err(|e| format!("AF_XDP receive on queue {}: {e}", q.queue))?;
        }
        drop(pin);
        // XDP_STATISTICS is a syscall: read it when idle and every 256 batches.
        batches += 1;
        if n == 0 || batches.is_multiple_of(256) {
            c.rx_missed.fetch_add(xsk.take_missed(), Ordering::Relaxed);
        }
        Ok(())
    })
}

/// The AF_PACKET receive loop: runs until stopped, rebuilding the stream when the
/// program changes.
fn serve_packet(
    shared: &Shared,
    sock: &PacketSocket,
    tap: &Tap,
    ifindex: u32,
    hook: Hook,
    engine: Engine,
) -> Result<(), String> {
    let mut bufs = vec![vec![0u8; MAX_FRAME + VNET_HDR_LEN]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut pkt_types = [0u8; BATCH];
    let mut tx_bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(2048)).collect();
    let c = &shared.counters;
    let mut batches = 0u64;
    let mut redirector = Redirector::default();
    serve_batches(shared, ifindex, hook, engine, |stream| {
        let n = sock
            .recv_batch_typed(&mut bufs, &mut lens, &mut pkt_types)
            .map_err(|e| format!("receiving: {e}"))?;
        batches += 1;
        if n == 0 || batches.is_multiple_of(256) {
            c.rx_missed
                .fetch_add(sock.take_drops().unwrap_or(0), Ordering::Relaxed);
        }
        let mut n_tx = 0;
        {
            let _pin = kbpf_maps::pin();
            for ((buf, &len), &pkt_type) in bufs.iter_mut().zip(&lens[..n]).zip(&pkt_types) {
                bump(&c.rx);
                c.rx_bytes
                    .fetch_add(len.saturating_sub(VNET_HDR_LEN) as u64, Ordering::Relaxed);
                let Some((info, frame)) = complete_frame(&mut buf[..len]) else {
                    bump(&c.malformed);
                    continue;
                };
                if info.gso {
                    bump(&c.gso);
                }
                if info.csum_completed {
                    bump(&c.csum_completed);
                }
                if let Act::Tx = run_frame(stream, frame, pkt_type, tap, &mut redirector, c) {
                    let out = &mut tx_bufs[n_tx];
                    out.clear();
                    out.extend_from_slice(&[0u8; VNET_HDR_LEN]);
                    out.extend_from_slice(stream.packet());
                    n_tx += 1;
                }
            }
        }
        if n_tx > 0 {
            let frames: Vec<&[u8]> = tx_bufs[..n_tx].iter().map(|b| b.as_slice()).collect();
            let sent = sock.send_batch(&frames).unwrap_or(0);
            c.tx_errors
                .fetch_add((n_tx - sent) as u64, Ordering::Relaxed);
        }
        Ok(())
    })
}

/// Runs `batch` (one receive batch) until the attachment is stopped, on a stream of the
/// attached program rebuilt whenever the program is replaced.
fn serve_batches(
    shared: &Shared,
    ifindex: u32,
    hook: Hook,
    engine: Engine,
    mut batch: impl FnMut(&mut Stream<'_>) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let generation = shared.generation.load(Ordering::Acquire);
        let prog = shared
            .prog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone();
        let mut stream = Stream::new(&prog, hook, engine, ifindex).map_err(|e| e.to_string())?;
        while !shared.stop.load(Ordering::Acquire)
            && shared.generation.load(Ordering::Acquire) == generation
        {
            batch(&mut stream)?;
        }
    }
}

/// One attachment as `net show` lists it.
#[derive(Clone, Debug)]
pub struct AttachmentInfo {
    /// Device name.
    pub ifname: String,
    /// Device index.
    pub ifindex: u32,
    /// Program id.
    pub prog_id: u32,
    /// Engine.
    pub engine: Engine,
    /// Hook.
    pub hook: Hook,
    /// Counters by name.
    pub counters: Vec<(&'static str, u64)>,
    /// The capture path.
    pub capture: &'static str,
    /// RX queues served (one AF_XDP socket each; 1 for AF_PACKET, which sees them all).
    pub queues: u32,
    /// Why it stopped serving, if it did.
    pub failure: Option<String>,
}

/// The attachments of one daemon, keyed by namespace and device.
#[derive(Default)]
pub struct Attachments {
    by_dev: Mutex<BTreeMap<(u64, u32), Attachment>>,
}

/// Runs `f` on a thread inside `ns` (namespace changes are per thread).
fn in_netns<T: Send>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter()?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
}

impl Attachments {
    /// Attaches `prog` to `ifname` in `netns`; with `overwrite`, replaces a program already
    /// there (without a gap), else refuses with `EEXIST`. Returns the device's index.
    pub fn attach(
        &self,
        prog: Arc<Program>,
        prog_id: u32,
        ifname: &str,
        netns: NetNs,
        opts: AttachOptions,
        overwrite: bool,
    ) -> Result<u32, AttachError> {
        let index = in_netns(&netns, || ifindex(ifname))
            .map_err(io_err("entering the network namespace"))?
            .map_err(|_| AttachError::NoDevice(ifname.to_string()))?;
        let key = (netns.inode(), index);
        let mut by_dev = self.by_dev.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = by_dev.get(&key) {
            // One program per device: an XDP and a tc attachment would each take the
            // device's frames and pass them back through their own tap.
            if a.hook() != opts.hook {
                return Err(AttachError::Busy(ifname.to_string()));
            }
            if !overwrite {
                return Err(AttachError::Exists(ifname.to_string()));
            }
            a.replace(prog, prog_id)?;
            return Ok(index);
        }
        let a = Attachment::start(prog, prog_id, ifname, netns, opts)?;
        by_dev.insert(key, a);
        Ok(index)
    }

    /// Detaches the program at `hook` from `ifname` in `netns`: the device's frames go to
    /// the stack again.
    pub fn detach(&self, ifname: &str, netns: &NetNs, hook: Hook) -> Result<(), AttachError> {
        let index = in_netns(netns, || ifindex(ifname))
            .map_err(io_err("entering the network namespace"))?
            .map_err(|_| AttachError::NoDevice(ifname.to_string()))?;
        let mut by_dev = self.by_dev.lock().unwrap_or_else(|p| p.into_inner());
        let key = (netns.inode(), index);
        if by_dev.get(&key).is_none_or(|a| a.hook() != hook) {
            return Err(AttachError::NotAttached(ifname.to_string()));
        }
        let a = by_dev.remove(&key);
        drop(by_dev);
        drop(a);
        Ok(())
    }

    /// The attachments in namespace `netns` (by inode), by device index.
    pub fn list(&self, netns: u64) -> Vec<AttachmentInfo> {
        self.by_dev
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|a| a.netns() == netns)
            .map(|a| AttachmentInfo {
                ifname: a.ifname().to_string(),
                ifindex: a.ifindex(),
                prog_id: a.prog_id(),
                engine: a.engine(),
                hook: a.hook(),
                counters: a.counters().snapshot(),
                capture: a.capture(),
                queues: a.shared.queues.load(Ordering::Relaxed) as u32,
                failure: a.failure(),
            })
            .collect()
    }

    /// Number of attachments in all namespaces.
    pub fn len(&self) -> usize {
        self.by_dev.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Detaches everything (daemon shutdown).
    pub fn clear(&self) {
        let all = std::mem::take(&mut *self.by_dev.lock().unwrap_or_else(|p| p.into_inner()));
        drop(all);
    }
}

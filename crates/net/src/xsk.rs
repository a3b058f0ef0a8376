//! The fast capture path: an `AF_XDP` socket (copy mode) fed by a two-instruction XDP
//! program in the kernel that redirects every frame of the device's queue into it through
//! an `XSKMAP`. Frames land in a user-space UMEM without an skb for the socket, and
//! `XDP_TX` frames leave from the same UMEM chunk they arrived in.
//!
//! Ring protocol (`Documentation/networking/af_xdp.rst`): four single-producer,
//! single-consumer rings shared with the kernel through `mmap`. We produce on the fill and
//! TX rings and consume the RX and completion rings; indexes are free-running `u32`s,
//! published with release stores and read with acquire loads.
//!
//! One socket (with its own UMEM) per RX queue of the device: the redirect program sends each
//! frame to the socket of the queue it arrived on (`ctx->rx_queue_index`), as AF_XDP
//! requires.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use kbpf_isa::Insn;
use kbpf_kernel::consts::{BPF_MAP_TYPE_XSKMAP, BPF_PROG_TYPE_XDP};
use kbpf_kernel::{KernelLink, KernelMap, KernelProg, MapCreateAttr};

const AF_XDP: libc::c_int = 44;
const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
const XDP_RX_RING: libc::c_int = 2;
const XDP_TX_RING: libc::c_int = 3;
const XDP_UMEM_REG: libc::c_int = 4;
const XDP_UMEM_FILL_RING: libc::c_int = 5;
const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
const XDP_STATISTICS: libc::c_int = 7;
const XDP_COPY: u16 = 1 << 1;
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;
const PGOFF_RX: i64 = 0;
const PGOFF_TX: i64 = 0x8000_0000;
const PGOFF_FILL: i64 = 0x1_0000_0000;
const PGOFF_COMPLETION: i64 = 0x1_8000_0000;

/// UMEM chunk size.
pub const CHUNK: u64 = 2048;
/// Most queues served (a device with more falls back to AF_PACKET).
const MAX_QUEUES: u32 = 64;

/// UMEM geometry of one queue: 4,096 chunks of 2 KiB (8 MiB) for up to four queues, 1,024
/// (2 MiB) each beyond; rings hold half the chunks.
fn geometry(queues: u32) -> (u64, u32) {
    if queues <= 4 {
        (4096, 2048)
    } else {
        (1024, 512)
    }
}

#[repr(C)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// `struct xdp_desc`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XdpDesc {
    /// Offset of the packet in the UMEM.
    pub addr: u64,
    /// Its length.
    pub len: u32,
    options: u32,
}

/// One mmap'd ring.
struct Ring {
    base: *mut libc::c_void,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
}

// SAFETY: the ring is only used by the thread that owns the socket; the pointers stay
// valid until drop (the mapping lives as long as the Ring).
unsafe impl Send for Ring {}

impl Ring {
    fn map(
        fd: &OwnedFd,
        off: &RingOffset,
        pgoff: i64,
        entries: u32,
        desc_size: usize,
    ) -> io::Result<Ring> {
        let map_len = off.desc as usize + entries as usize * desc_size;
        // SAFETY: mapping the socket's ring at the offset the kernel names for it; the
        // result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = |o: u64| base.cast::<u8>().wrapping_add(o as usize);
        Ok(Ring {
            base,
            map_len,
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            desc: at(off.desc),
            mask: entries - 1,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping at the kernel's producer offset (aligned u32).
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as `producer`.
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as `producer`.
        unsafe { &*self.flags }.load(Ordering::Acquire) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Pointer to entry `idx` (masked) of `size` bytes.
    fn entry(&self, idx: u32, size: usize) -> *mut u8 {
        self.desc.wrapping_add((idx & self.mask) as usize * size)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe { libc::munmap(self.base, self.map_len) };
    }
}

/// The AF_XDP capture of one device: a socket per RX queue and the kernel side (XSKMAP,
/// redirect program, XDP link).
pub struct XskSocket {
    // Field order is drop order: detach the program before the sockets go.
    _link: KernelLink,
    _prog: KernelProg,
    _xskmap: KernelMap,
    /// The queues' sockets, by queue index.
    pub queues: Vec<XskQueue>,
}

/// The AF_XDP socket of one RX queue, with its UMEM and rings.
pub struct XskQueue {
    /// The RX queue index.
    pub queue: u32,
    /// Bound in zero-copy mode (the driver receives into the UMEM).
    pub zerocopy: bool,
    chunks: u64,
    ring: u32,
    rx: Ring,
    tx: Ring,
    fill: Ring,
    completion: Ring,
    fd: OwnedFd,
    umem: *mut u8,
    /// Chunks we hold (not lent to the fill or TX ring).
    free: Vec<u64>,
    last_missed: u64,
}

// SAFETY: the UMEM and rings are used only by the thread that owns the socket.
unsafe impl Send for XskQueue {}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed; the fd is an open socket.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_XDP,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = check(unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The redirect program: `bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_DROP)`.
fn redirect_insns(map_fd: i32) -> Vec<Insn> {
    vec![
        Insn::new(0x61, 2, 1, 16, 0),     // r2 = ctx->rx_queue_index
        Insn::new(0x18, 1, 1, 0, map_fd), // r1 = xsks (BPF_PSEUDO_MAP_FD)
        Insn::new(0x00, 0, 0, 0, 0),
        Insn::new(0xb7, 3, 0, 0, 1), // r3 = XDP_DROP: a miss is dropped, never passed
        Insn::new(0x85, 0, 0, 0, 51), // call bpf_redirect_map
        Insn::new(0x95, 0, 0, 0, 0), // exit
    ]
}

impl XskSocket {
    /// Opens a socket per RX queue of `ifindex` (calling thread's namespace) and attaches
    /// the kernel program in the driver (native XDP). `Err` means: use AF_PACKET (no AF_XDP
    /// here, no native XDP in the driver or not at this MTU, too many queues, …).
    pub fn open(ifindex: u32) -> Result<XskSocket, String> {
        let n = rx_queues(ifindex);
        if n > MAX_QUEUES {
            return Err(format!(
                "the device has {n} RX queues (at most {MAX_QUEUES} served)"
            ));
        }
        let queues = (0..n)
            .map(|q| XskQueue::open(ifindex, q, n))
            .collect::<Result<Vec<_>, _>>()?;
        let xskmap =
            KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_XSKMAP, 4, 4, n).name("kbpf_xsks"))
                .map_err(|err| format!("XSKMAP: {err}"))?;
        for q in &queues {
            xskmap
                .update(&q.queue.to_ne_bytes(), &q.fd.as_raw_fd().to_ne_bytes(), 0)
                .map_err(|err| format!("XSKMAP update: {err}"))?;
        }
        let insns = redirect_insns(xskmap.as_fd().as_raw_fd());
        let mut attr = kbpf_kernel::ProgLoadAttr::new(BPF_PROG_TYPE_XDP, &insns, "GPL");
        attr.name = "kbpf_xsk";
        attr.expected_attach_type = kbpf_kernel::consts::BPF_XDP;
        let (prog, _) =
            KernelProg::load_with(&attr).map_err(|err| format!("loading kbpf_xsk: {err}"))?;
        let link = KernelLink::xdp(&prog, ifindex, false)
            .map_err(|err| format!("native XDP attach: {err}"))?;
        Ok(XskSocket {
            _link: link,
            _prog: prog,
            _xskmap: xskmap,
            queues,
        })
    }

    /// Waits up to `timeout_ms` until some queue has frames to receive.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        if self.queues.iter().any(|q| q.ready()) {
            return Ok(());
        }
        let mut fds: Vec<libc::pollfd> = self
            .queues
            .iter_mut()
            .map(|q| {
                q.reclaim();
                q.refill();
                libc::pollfd {
                    fd: q.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }
            })
            .collect();
        // SAFETY: `fds` holds `fds.len()` valid pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) } < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Frames lost before user space on every queue since the last call.
    pub fn take_missed(&mut self) -> u64 {
        self.queues.iter_mut().map(XskQueue::take_missed).sum()
    }
}

impl XskQueue {
    fn open(ifindex: u32, queue: u32, queues: u32) -> Result<XskQueue, String> {
        let fd = socket().map_err(|e| format!("AF_XDP socket: {e}"))?;
        let (chunks, ring) = geometry(queues);
        let umem_len = (CHUNK * chunks) as usize;
        // SAFETY: anonymous private mapping, checked below.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(format!("UMEM: {}", io::Error::last_os_error()));
        }
        let umem = umem.cast::<u8>();
        let s = Self::setup(fd, umem, ifindex, queue, chunks, ring);
        if s.is_err() {
            // SAFETY: our mapping; nothing refers to it after a failed setup.
            unsafe { libc::munmap(umem.cast(), umem_len) };
        }
        s
    }

    /// Whether frames are waiting in the RX ring.
    fn ready(&self) -> bool {
        self.rx.producer().load(Ordering::Acquire) != self.rx.consumer().load(Ordering::Relaxed)
    }

    fn setup(
        fd: OwnedFd,
        umem: *mut u8,
        ifindex: u32,
        queue: u32,
        chunks: u64,
        ring: u32,
    ) -> Result<XskQueue, String> {
        let e = |what: &str| {
            let what = what.to_string();
            move |err: io::Error| format!("{what}: {err}")
        };
        let reg = UmemReg {
            addr: umem as u64,
            len: CHUNK * chunks,
            chunk_size: CHUNK as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&fd, XDP_UMEM_REG, &reg).map_err(e("XDP_UMEM_REG"))?;
        for opt in [
            XDP_UMEM_FILL_RING,
            XDP_UMEM_COMPLETION_RING,
            XDP_RX_RING,
            XDP_TX_RING,
        ] {
            setsockopt(&fd, opt, &ring).map_err(e("ring size"))?;
        }
        let mut off = MmapOffsets::default();
        let mut len = std::mem::size_of::<MmapOffsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `len` bytes.
        check(unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                SOL_XDP,
                XDP_MMAP_OFFSETS,
                (&mut off as *mut MmapOffsets).cast(),
                &mut len,
            )
        })
        .map_err(e("XDP_MMAP_OFFSETS"))?;
        let desc = std::mem::size_of::<XdpDesc>();
        let rx = Ring::map(&fd, &off.rx, PGOFF_RX, ring, desc).map_err(e("RX ring"))?;
        let tx = Ring::map(&fd, &off.tx, PGOFF_TX, ring, desc).map_err(e("TX ring"))?;
        let fill = Ring::map(&fd, &off.fr, PGOFF_FILL, ring, 8).map_err(e("fill ring"))?;
        let completion =
            Ring::map(&fd, &off.cr, PGOFF_COMPLETION, ring, 8).map_err(e("completion ring"))?;
        // Zero-copy where the driver has it (the UMEM is then the driver's RX buffers), else
        // copy mode; a failed bind leaves the socket unbound, so the second try is clean.
        let bind = |flags: u16| {
            let sa = SockaddrXdp {
                family: AF_XDP as u16,
                flags: flags | XDP_USE_NEED_WAKEUP,
                ifindex,
                queue_id: queue,
                shared_umem_fd: 0,
            };
            // SAFETY: `sa` is a sockaddr_xdp of the length passed.
            check(unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sa as *const SockaddrXdp).cast(),
                    std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
                )
            })
        };
        let zerocopy = bind(XDP_ZEROCOPY).is_ok();
        if !zerocopy {
            bind(XDP_COPY).map_err(e("bind"))?;
        }
        let mut s = XskQueue {
            queue,
            zerocopy,
            chunks,
            ring,
            rx,
            tx,
            fill,
            completion,
            fd,
            umem,
            free: (0..chunks).map(|i| i * CHUNK).collect(),
            last_missed: 0,
        };
        s.refill();
        Ok(s)
    }

    /// Lends free chunks to the fill ring (keeping half for TX).
    fn refill(&mut self) {
        let prod = self.fill.producer().load(Ordering::Relaxed);
        let cons = self.fill.consumer().load(Ordering::Acquire);
        let room = self.ring - prod.wrapping_sub(cons);
        let n = room.min(self.free.len().saturating_sub(64) as u32);
        for i in 0..n {
            let Some(addr) = self.free.pop() else { break };
            // SAFETY: entry `prod + i` of the fill ring is ours to write until published.
            unsafe {
                self.fill
                    .entry(prod.wrapping_add(i), 8)
                    .cast::<u64>()
                    .write_unaligned(addr)
            };
        }
        self.fill
            .producer()
            .store(prod.wrapping_add(n), Ordering::Release);
    }

    /// Takes back chunks whose transmission completed.
    fn reclaim(&mut self) {
        let cons = self.completion.consumer().load(Ordering::Relaxed);
        let prod = self.completion.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons);
        for i in 0..n {
            // SAFETY: entries between consumer and producer are published by the kernel.
            let addr = unsafe {
                self.completion
                    .entry(cons.wrapping_add(i), 8)
                    .cast::<u64>()
                    .read_unaligned()
            };
            self.free.push(addr & !(CHUNK - 1));
        }
        self.completion
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
    }

    /// Waits up to `timeout_ms` for frames, then hands each received one to `each` as
    /// `(buf, len)`: the frame is `buf[..len]`, and `buf` runs to the end of its UMEM chunk.
    /// `each` returns `Some(tx_len)` after writing a frame of `tx_len` bytes at the start
    /// of `buf` to send it back out (`XDP_TX`), or `None` to release the chunk. Returns
    /// the number of frames received.
    pub fn poll_batch(
        &mut self,
        timeout_ms: i32,
        max: u32,
        mut each: impl FnMut(&mut [u8], usize) -> Option<usize>,
    ) -> io::Result<usize> {
        self.reclaim();
        self.refill();
        let mut cons = self.rx.consumer().load(Ordering::Relaxed);
        let mut avail = self
            .rx
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(cons);
        if avail == 0 && timeout_ms != 0 {
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
            if r < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
            }
            cons = self.rx.consumer().load(Ordering::Relaxed);
            avail = self
                .rx
                .producer()
                .load(Ordering::Acquire)
                .wrapping_sub(cons);
        }
        let n = avail.min(max);
        let tx_prod = self.tx.producer().load(Ordering::Relaxed);
        let tx_room = self.ring - tx_prod.wrapping_sub(self.tx.consumer().load(Ordering::Acquire));
        let mut n_tx = 0u32;
        for i in 0..n {
            // SAFETY: RX entries between consumer and producer are published by the kernel.
            let d = unsafe {
                self.rx
                    .entry(cons.wrapping_add(i), 16)
                    .cast::<XdpDesc>()
                    .read_unaligned()
            };
            let base = d.addr & !(CHUNK - 1);
            let off = (d.addr - base) as usize;
            // SAFETY: the chunk was handed to us by the RX ring: the kernel does not touch
            // it until we lend it again, and it lies inside the UMEM mapping.
            let chunk = unsafe {
                std::slice::from_raw_parts_mut(self.umem.add(base as usize), CHUNK as usize)
            };
            let len = (d.len as usize).min(CHUNK as usize - off);
            match each(&mut chunk[off..], len) {
                Some(tx_len) if n_tx < tx_room => {
                    let out = XdpDesc {
                        addr: d.addr,
                        len: tx_len as u32,
                        options: 0,
                    };
                    // SAFETY: entry `tx_prod + n_tx` is ours until published.
                    unsafe {
                        self.tx
                            .entry(tx_prod.wrapping_add(n_tx), 16)
                            .cast::<XdpDesc>()
                            .write_unaligned(out)
                    };
                    n_tx += 1;
                }
                _ => self.free.push(base),
            }
        }
        self.rx
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        if n_tx > 0 {
            self.tx
                .producer()
                .store(tx_prod.wrapping_add(n_tx), Ordering::Release);
            // Copy mode transmits in sendmsg: kick it.
            // SAFETY: sendto with no data on our socket.
            unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
        }
        if self.fill.needs_wakeup() {
            self.refill();
        }
        Ok(n as usize)
    }

    /// Frames lost before user space since the last call (ring full, no fill chunks,
    /// dropped), from `XDP_STATISTICS`.
    pub fn take_missed(&mut self) -> u64 {
        let mut st = [0u64; 6];
        let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
        // SAFETY: `st` is writable for `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_XDP,
                XDP_STATISTICS,
                st.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r < 0 {
            return 0;
        }
        let total = st[0] + st[3] + st[4];
        let d = total.saturating_sub(self.last_missed);
        self.last_missed = total;
        d
    }
}

/// The device's RX queue count (`ETHTOOL_GCHANNELS`), 1 where the driver does not say.
fn rx_queues(ifindex: u32) -> u32 {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let Ok(name) = crate::iface::ifname(ifindex) else {
        return 1;
    };
    let Ok(sock) = crate::packet_socket::dgram_socket() else {
        return 1;
    };
    let Ok(mut req) = crate::iface::ifreq_named(&name) else {
        return 1;
    };
    // struct ethtool_channels: cmd, max_{rx,tx,other,combined}, {rx,tx,other,combined}_count.
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    req.ifr_ifru.ifru_data = ch.as_mut_ptr().cast();
    // SAFETY: SIOCETHTOOL reads the command from and writes the reply to `ch`, which
    // outlives the call; `req` is a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) } < 0 {
        return 1;
    }
    (ch[5] + ch[8]).max(1)
}

impl Drop for XskQueue {
    fn drop(&mut self) {
        // The kernel pinned the UMEM's pages at XDP_UMEM_REG and unpins them when the
        // socket closes (after this, with the fields), so unmapping our view first is safe.
        // SAFETY: our own mapping of this length, unmapped once; no slice into it outlives
        // `poll_batch`.
        unsafe { libc::munmap(self.umem.cast(), (CHUNK * self.chunks) as usize) };
    }
}

//! The capture side: an `AF_PACKET` raw socket bound to one device, receiving and sending
//! whole frames in batches (`recvmmsg`/`sendmmsg`), with a virtio-net header on each frame
//! so partial checksums can be completed before the program sees the bytes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `SOL_PACKET` options (`include/uapi/linux/if_packet.h`).
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `SKF_AD_OFF + SKF_AD_MARK`: classic BPF's ancillary load of `skb->mark`.
const SKF_AD_MARK_LOAD: u32 = (-0x1000i32 + 20) as u32;

/// `struct virtio_net_hdr` (legacy, little-endian on this host): what the kernel prefixes
/// each frame with under `PACKET_VNET_HDR`.
pub const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;

/// Largest frame received: a GSO super-frame (the kernel hands those over whole).
pub const MAX_FRAME: usize = 65_536;

/// An `AF_PACKET` socket on one device.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed; the fd is an open socket.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Binds a packet socket to device `ifindex` for protocol `proto` (network order; 0
/// receives nothing).
fn bind_ll(fd: &OwnedFd, ifindex: u32, proto: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; zeroes are valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a sockaddr_ll of the length passed.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// A datagram socket for interface ioctls.
pub(crate) fn dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl PacketSocket {
    /// A socket receiving every frame that arrives on `ifindex` (in the calling thread's
    /// namespace) except those whose `skb->mark` is `skip_mark` (frames kbpf itself hands
    /// back to the stack) and except outgoing frames. Receives time out after `timeout`.
    pub fn open(ifindex: u32, skip_mark: u32, timeout: Duration) -> io::Result<PacketSocket> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto as libc::c_int,
            )
        })?;
        // SAFETY: `raw` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one)?;
        setsockopt(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, &one)?;
        let rcvbuf: libc::c_int = 8 << 20;
        // SO_RCVBUFFORCE (root) lifts rmem_max; fall back to what is allowed.
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf).is_err() {
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf)?;
        }
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // ld mark; jeq skip_mark → ret 0 (not for us); ret 0x40000 (whole frame).
        let mut filter = [
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: SKF_AD_MARK_LOAD,
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: skip_mark,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: 0x40000,
            },
        ];
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_mut_ptr(),
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
        bind_ll(&fd, ifindex, proto)?;
        // Frames that queued before the filter was attached may be anyone's: drain them.
        let mut scratch = vec![0u8; MAX_FRAME + VNET_HDR_LEN];
        // SAFETY: `scratch` is writable for its length.
        while unsafe {
            libc::recv(
                fd.as_raw_fd(),
                scratch.as_mut_ptr().cast(),
                scratch.len(),
                libc::MSG_DONTWAIT,
            )
        } > 0
        {}
        let s = PacketSocket { fd, ifindex };
        s.take_drops()?;
        Ok(s)
    }

    /// Frames the kernel dropped because the socket's receive queue was full, since the
    /// last call (`PACKET_STATISTICS`, which resets on read).
    pub fn take_drops(&self) -> io::Result<u64> {
        const PACKET_STATISTICS: libc::c_int = 6;
        let mut stats = [0u32; 2]; // struct tpacket_stats { tp_packets, tp_drops }
        let mut len = std::mem::size_of_val(&stats) as libc::socklen_t;
        // SAFETY: `stats` is writable for `len` bytes; the fd is an open packet socket.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                stats.as_mut_ptr().cast(),
                &mut len,
            )
        })?;
        Ok(stats[1] as u64)
    }

    /// The device's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Receives up to `bufs.len()` frames (each buffer at least `MAX_FRAME + VNET_HDR_LEN`
    /// bytes), waiting for the first until the timeout; writes each frame's length
    /// (virtio-net header included) to `lens`. Returns how many arrived (0 on timeout).
    pub fn recv_batch(&self, bufs: &mut [Vec<u8>], lens: &mut [usize]) -> io::Result<usize> {
        let mut types = vec![0u8; lens.len()];
        self.recv_batch_typed(bufs, lens, &mut types)
    }

    /// [`PacketSocket::recv_batch`], also writing each frame's `PACKET_*` type (what
    /// `eth_type_trans` made of its destination: host, broadcast, multicast, other host).
    pub fn recv_batch_typed(
        &self,
        bufs: &mut [Vec<u8>],
        lens: &mut [usize],
        pkt_types: &mut [u8],
    ) -> io::Result<usize> {
        let n = bufs.len().min(lens.len()).min(pkt_types.len());
        // SAFETY: sockaddr_ll is plain old data; zeroes are valid.
        let mut names: Vec<libc::sockaddr_ll> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut iovs: Vec<libc::iovec> = bufs[..n]
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain old data; zeroes are valid.
        let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        for ((m, iov), name) in msgs.iter_mut().zip(iovs.iter_mut()).zip(names.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_name = (name as *mut libc::sockaddr_ll).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        }
        // SAFETY: each msghdr points at one iovec over a live, writable buffer of the
        // stated length and at a sockaddr_ll for the source; all outlive the call.
        let r = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(0),
                _ => Err(e),
            };
        }
        for ((l, m), (t, name)) in lens
            .iter_mut()
            .zip(&msgs[..r as usize])
            .zip(pkt_types.iter_mut().zip(&names))
        {
            *l = m.msg_len as usize;
            *t = name.sll_pkttype;
        }
        Ok(r as usize)
    }

    /// Sends each of `frames` (virtio-net header included) out of the device; returns how
    /// many the kernel took.
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        if frames.is_empty() {
            return Ok(0);
        }
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain old data; zeroes are valid.
        let mut msgs: Vec<libc::mmsghdr> = (0..frames.len())
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: each msghdr points at one iovec over a live buffer that the kernel
            // only reads; both vectors outlive the call.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs[sent..].as_mut_ptr(),
                    (msgs.len() - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                if sent > 0 {
                    break;
                }
                return Err(io::Error::last_os_error());
            }
            sent += r as usize;
        }
        Ok(sent)
    }
}

/// A send-only `AF_PACKET` socket on one device (protocol 0: it receives nothing), for
/// frames redirected to another device.
#[derive(Debug)]
pub struct TxSocket {
    fd: OwnedFd,
}

impl TxSocket {
    /// A socket sending out of `ifindex` (calling thread's namespace).
    pub fn open(ifindex: u32) -> io::Result<TxSocket> {
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let raw = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: `raw` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        bind_ll(&fd, ifindex, 0)?;
        Ok(TxSocket { fd })
    }

    /// Sends one frame out of the device.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is readable for its length; the fd is an open socket.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// What the virtio-net header says of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VnetInfo {
    /// A GSO super-frame (several wire packets in one).
    pub gso: bool,
    /// The checksum at `csum_start + csum_offset` was partial and has been completed.
    pub csum_completed: bool,
}

/// Splits a received buffer into its header and frame, completing a partial checksum the
/// way the device would have on the wire (`skb_checksum_help`): the field holds the
/// pseudo-header sum, so the one's-complement sum from `csum_start` to the end, folded
/// and inverted, is the checksum. `None` if the header is malformed.
pub fn complete_frame(buf: &mut [u8]) -> Option<(VnetInfo, &mut [u8])> {
    if buf.len() < VNET_HDR_LEN {
        return None;
    }
    let (hdr, frame) = buf.split_at_mut(VNET_HDR_LEN);
    let flags = hdr[0];
    let gso = hdr[1] != 0;
    let mut info = VnetInfo {
        gso,
        csum_completed: false,
    };
    if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        let start = u16::from_le_bytes([hdr[6], hdr[7]]) as usize;
        let off = u16::from_le_bytes([hdr[8], hdr[9]]) as usize;
        if start > frame.len() || start + off + 2 > frame.len() {
            return None;
        }
        let sum = !fold(ones_sum(&frame[start..]));
        frame[start + off..start + off + 2].copy_from_slice(&sum.to_be_bytes());
        info.csum_completed = true;
    }
    Some((info, frame))
}

fn ones_sum(b: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_checksum_is_completed_like_the_wire() {
        // A UDP datagram whose checksum field holds the pseudo-header sum, as a sender
        // with checksum offload leaves it; the completed checksum must verify to 0xffff.
        let src = [10u8, 0, 0, 1];
        let dst = [10u8, 0, 0, 2];
        let payload = b"hello, kbpf!!";
        let udp_len = (8 + payload.len()) as u16;
        let mut pseudo = ones_sum(&src) + ones_sum(&dst) + 17 + udp_len as u64;
        pseudo = fold(pseudo) as u64;
        let mut frame = vec![0u8; VNET_HDR_LEN + 14 + 20];
        frame[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        frame[6..8].copy_from_slice(&((14 + 20) as u16).to_le_bytes());
        frame[8..10].copy_from_slice(&6u16.to_le_bytes());
        frame.extend_from_slice(&1234u16.to_be_bytes());
        frame.extend_from_slice(&80u16.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&(pseudo as u16).to_be_bytes());
        frame.extend_from_slice(payload);
        let (info, f) = complete_frame(&mut frame).unwrap();
        assert!(info.csum_completed && !info.gso);
        let udp = &f[34..];
        let verify = fold(ones_sum(&src) + ones_sum(&dst) + 17 + udp_len as u64 + ones_sum(udp));
        assert_eq!(verify, 0xffff);
        // A header pointing past the frame is refused, not trusted.
        let mut bad = vec![0u8; VNET_HDR_LEN + 20];
        bad[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        bad[6..8].copy_from_slice(&18u16.to_le_bytes());
        bad[8..10].copy_from_slice(&6u16.to_le_bytes());
        assert!(complete_frame(&mut bad).is_none());
        assert!(complete_frame(&mut [0u8; 3]).is_none());
    }
}

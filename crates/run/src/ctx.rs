//! The run-time contexts translated programs read: `struct xdp_buff` (with the
//! `xdp_rxq_info` and `net_device` it points at) and `struct sk_buff`, at the kernel's field
//! offsets that `kbpf_rewrite::ctx` compiles context accesses to. The buffers follow
//! `BPF_PROG_TEST_RUN`'s layout: 256 bytes of headroom before an XDP packet in a 4096-byte
//! frame whose last 320 bytes are reserved tailroom (`skb_shared_info`).

use kbpf_uapi::errno;
use std::mem::offset_of;

use kbpf_rewrite::ctx as off;
use kbpf_rewrite::ctx::skb as skb_off;
use kbpf_rewrite::ctx::sock;

/// `XDP_PACKET_HEADROOM`.
pub const XDP_PACKET_HEADROOM: usize = 256;
/// The test-run frame size (`PAGE_SIZE`).
pub const XDP_FRAME_SIZE: usize = 4096;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
pub const XDP_TAILROOM: usize = 320;
/// `sizeof(struct xdp_frame)`: `bpf_xdp_adjust_head` keeps it free at the frame start.
pub const XDP_FRAME_STRUCT: usize = 40;
pub use kbpf_uapi::net::ETH_HLEN;
/// `-EINVAL` as helpers return it.
const EINVAL: i64 = -(errno::EINVAL as i64);

/// `struct net_device`, as far as programs read it (`ifindex`).
#[repr(C)]
#[derive(Clone, Debug)]
pub struct NetDevice {
    _before_ifindex: [u8; off::NET_DEVICE_IFINDEX as usize],
    /// Interface index.
    pub ifindex: u32,
}

impl NetDevice {
    /// A device with this index (1 is the loopback device `BPF_PROG_TEST_RUN` uses).
    pub fn new(ifindex: u32) -> NetDevice {
        NetDevice {
            _before_ifindex: [0; off::NET_DEVICE_IFINDEX as usize],
            ifindex,
        }
    }
}

/// `struct xdp_rxq_info` (and `xdp_txq_info`, whose `dev` is at the same offset).
#[repr(C)]
#[derive(Debug)]
pub struct XdpRxqInfo {
    /// The device.
    pub dev: *const NetDevice,
    /// Receive queue index.
    pub queue_index: u32,
    _pad: u32,
}

/// `struct xdp_buff`.
#[repr(C)]
#[derive(Debug)]
pub struct XdpBuff {
    /// Packet start.
    pub data: *mut u8,
    /// Packet end.
    pub data_end: *mut u8,
    /// Metadata start (`data` when empty).
    pub data_meta: *mut u8,
    /// Frame start.
    pub data_hard_start: *mut u8,
    /// Receive queue.
    pub rxq: *const XdpRxqInfo,
    /// Transmit queue (devmap programs only).
    pub txq: *const XdpRxqInfo,
    /// Frame size.
    pub frame_sz: u32,
    /// Flags.
    pub flags: u32,
}

const _: () = {
    assert!(offset_of!(XdpBuff, data) == off::XDP_BUFF_DATA as usize);
    assert!(offset_of!(XdpBuff, data_end) == off::XDP_BUFF_DATA_END as usize);
    assert!(offset_of!(XdpBuff, data_meta) == off::XDP_BUFF_DATA_META as usize);
    assert!(offset_of!(XdpBuff, data_hard_start) == off::XDP_BUFF_DATA_HARD_START as usize);
    assert!(offset_of!(XdpBuff, rxq) == off::XDP_BUFF_RXQ as usize);
    assert!(offset_of!(XdpBuff, txq) == off::XDP_BUFF_TXQ as usize);
    assert!(offset_of!(XdpBuff, frame_sz) == off::XDP_BUFF_FRAME_SZ as usize);
    assert!(offset_of!(XdpRxqInfo, dev) == off::XDP_RXQ_DEV as usize);
    assert!(offset_of!(XdpRxqInfo, queue_index) == off::XDP_RXQ_QUEUE_INDEX as usize);
    assert!(offset_of!(NetDevice, ifindex) == off::NET_DEVICE_IFINDEX as usize);
};

impl XdpBuff {
    fn hard_end(&self) -> *mut u8 {
        self.data_hard_start
            .wrapping_add(self.frame_sz as usize - XDP_TAILROOM)
    }

    /// `bpf_xdp_adjust_head`: moves `data` by `delta`, keeping room for the `xdp_frame`
    /// header and at least an Ethernet header; metadata moves along.
    pub fn adjust_head(&mut self, delta: i32) -> i64 {
        let metalen = self.data as usize - self.data_meta as usize;
        let start = self.data_hard_start as usize + XDP_FRAME_STRUCT + metalen;
        let data = (self.data as isize + delta as isize) as usize;
        if data < start || data > self.data_end as usize - ETH_HLEN {
            return EINVAL;
        }
        if metalen > 0 {
            // SAFETY: both ranges lie inside the frame (checked above).
            unsafe {
                std::ptr::copy(
                    self.data_meta,
                    self.data_meta.wrapping_offset(delta as isize),
                    metalen,
                )
            };
        }
        self.data_meta = self.data_meta.wrapping_offset(delta as isize);
        self.data = data as *mut u8;
        0
    }

    /// `bpf_xdp_adjust_meta`: moves `data_meta` by `delta` (at most 32 bytes, 4-aligned).
    pub fn adjust_meta(&mut self, delta: i32) -> i64 {
        let meta = (self.data_meta as isize + delta as isize) as usize;
        let start = self.data_hard_start as usize + XDP_FRAME_STRUCT;
        let metalen = (self.data as usize).wrapping_sub(meta);
        if meta < start || meta > self.data as usize || metalen > 32 || !metalen.is_multiple_of(4) {
            return EINVAL;
        }
        self.data_meta = meta as *mut u8;
        0
    }

    /// `bpf_xdp_adjust_tail`: moves `data_end` by `delta`; grown bytes are zeroed.
    pub fn adjust_tail(&mut self, delta: i32) -> i64 {
        let end = (self.data_end as isize + delta as isize) as usize;
        if end > self.hard_end() as usize || end < self.data as usize + ETH_HLEN {
            return EINVAL;
        }
        if delta > 0 {
            // SAFETY: [data_end, end) is inside the frame (checked above).
            unsafe { std::ptr::write_bytes(self.data_end, 0, delta as usize) };
        }
        self.data_end = end as *mut u8;
        0
    }
}

/// One XDP test run's memory: the frame, the buffer descriptor and the device chain. Boxed
/// so the pointers inside stay valid while the run is moved around.
pub struct XdpFrame {
    frame: Box<[u8; XDP_FRAME_SIZE]>,
    dev: Box<NetDevice>,
    rxq: Box<XdpRxqInfo>,
    /// The context the program gets in r1.
    pub buff: Box<XdpBuff>,
}

impl XdpFrame {
    /// The largest packet that fits (`PAGE_SIZE - headroom - tailroom`).
    pub const MAX_DATA: usize = XDP_FRAME_SIZE - XDP_PACKET_HEADROOM - XDP_TAILROOM;

    /// A frame holding `packet` after the headroom, received on `ifindex` queue
    /// `rx_queue`. `None` when the packet is shorter than an Ethernet header or too long
    /// (the kernel's `EINVAL`).
    pub fn new(packet: &[u8], ifindex: u32, rx_queue: u32) -> Option<XdpFrame> {
        if packet.len() < ETH_HLEN || packet.len() > Self::MAX_DATA {
            return None;
        }
        let mut frame = Box::new([0u8; XDP_FRAME_SIZE]);
        frame[XDP_PACKET_HEADROOM..XDP_PACKET_HEADROOM + packet.len()].copy_from_slice(packet);
        let dev = Box::new(NetDevice::new(ifindex));
        let rxq = Box::new(XdpRxqInfo {
            dev: &*dev,
            queue_index: rx_queue,
            _pad: 0,
        });
        let base = frame.as_mut_ptr();
        let data = base.wrapping_add(XDP_PACKET_HEADROOM);
        let buff = Box::new(XdpBuff {
            data,
            data_end: data.wrapping_add(packet.len()),
            data_meta: data,
            data_hard_start: base,
            rxq: &*rxq,
            txq: std::ptr::null(),
            frame_sz: XDP_FRAME_SIZE as u32,
            flags: 0,
        });
        Some(XdpFrame {
            frame,
            dev,
            rxq,
            buff,
        })
    }

    /// Re-arms the frame with `packet` for another run (keeps the allocation).
    pub fn reset(&mut self, packet: &[u8]) -> bool {
        if packet.len() < ETH_HLEN || packet.len() > Self::MAX_DATA {
            return false;
        }
        self.frame[..XDP_PACKET_HEADROOM].fill(0);
        self.frame[XDP_PACKET_HEADROOM..XDP_PACKET_HEADROOM + packet.len()].copy_from_slice(packet);
        let base = self.frame.as_mut_ptr();
        let data = base.wrapping_add(XDP_PACKET_HEADROOM);
        self.buff.data = data;
        self.buff.data_end = data.wrapping_add(packet.len());
        self.buff.data_meta = data;
        self.buff.data_hard_start = base;
        true
    }

    /// Sets the receive queue the frame arrives on (`ctx->rx_queue_index`).
    pub fn set_rx_queue(&mut self, queue: u32) {
        self.rxq.queue_index = queue;
    }

    /// The context pointer.
    pub fn ctx_ptr(&mut self) -> u64 {
        &mut *self.buff as *mut XdpBuff as u64
    }

    /// The whole frame (for bounds-checked runs).
    pub fn frame_region(&mut self) -> (u64, usize) {
        (self.frame.as_mut_ptr() as u64, XDP_FRAME_SIZE)
    }

    /// Everything a verified XDP program may touch through its context, as `(start, len,
    /// writable)` for a bounds-checked run: the packet `[data, data_end)`, the `xdp_buff`
    /// itself and the receive queue and device its translated field loads walk through.
    pub fn regions(&self) -> [(u64, u64, bool); 4] {
        let data = self.buff.data as u64;
        [
            (data, self.buff.data_end as u64 - data, true),
            (
                &*self.buff as *const XdpBuff as u64,
                std::mem::size_of::<XdpBuff>() as u64,
                false,
            ),
            (
                &*self.rxq as *const XdpRxqInfo as u64,
                std::mem::size_of::<XdpRxqInfo>() as u64,
                false,
            ),
            (
                &*self.dev as *const NetDevice as u64,
                std::mem::size_of::<NetDevice>() as u64,
                false,
            ),
        ]
    }

    /// [`XdpFrame::regions`] and the kernel data translated programs read
    /// ([`kernel_data_regions`]) as the interpreter's regions for a
    /// bounds-checked run; map memory is the caller's to add.
    pub fn checked_regions(&self) -> Vec<kbpf_vm::MemoryRegion> {
        self.regions()
            .into_iter()
            .chain(kernel_data_regions())
            .map(|(start, len, writable)| kbpf_vm::MemoryRegion {
                start,
                len,
                writable,
            })
            .collect()
    }

    /// The packet alone, `[data, data_end)`.
    pub fn packet(&self) -> &[u8] {
        let base = self.frame.as_ptr() as usize;
        let start = self.buff.data as usize - base;
        let end = self.buff.data_end as usize - base;
        &self.frame[start.min(end)..end]
    }

    /// What `BPF_PROG_TEST_RUN` copies out: metadata and packet, `[data_meta, data_end)`.
    pub fn data_out(&self) -> &[u8] {
        let base = self.frame.as_ptr() as usize;
        let start = self.buff.data_meta as usize - base;
        let end = self.buff.data_end as usize - base;
        &self.frame[start.min(end)..end]
    }
}

/// `PACKET_*`: what `eth_type_trans` on the loopback device classifies a frame with this
/// destination address as. Loopback's address *and* broadcast address are both
/// 00:00:00:00:00:00, so: all zeros → 0 (host); any group address, ff:ff:ff:ff:ff:ff
/// included → 2 (multicast); anything else → 3 (other host).
pub fn pkt_type_of(dest: &[u8]) -> u8 {
    match dest {
        [0, 0, 0, 0, 0, 0, ..] => 0,
        [b, ..] if b & 1 != 0 => 2,
        _ => 3,
    }
}

/// `NET_SKB_PAD + NET_IP_ALIGN` on x86-64: the headroom `BPF_PROG_TEST_RUN` reserves in
/// front of an skb's packet.
pub const SKB_HEADROOM: usize = 64;

/// `struct sk_buff`, as a byte image with the fields programs read at the kernel's offsets,
/// plus the state kbpf keeps beside it: the linear buffer the packet lives in (with
/// headroom, reallocated when a helper needs more, as `pskb_expand_head` does), the header
/// offsets the `bpf_skb_*` helpers work from, and the tunnel metadata (`skb_dst`) a
/// program attached. Boxed with the device it points at, so `skb->dev` stays valid.
///
/// `repr(C)` with the image first: a helper given the context pointer reaches the rest.
#[repr(C, align(8))]
pub struct SkBuff {
    raw: [u8; 256],
    dev: Box<NetDevice>,
    /// `skb->head`: headroom, then the packet.
    head: Vec<u8>,
    /// `skb->data - skb->head`.
    data_off: usize,
    /// `skb->network_header - skb->data` (`skb_network_offset`).
    pub(crate) network_off: usize,
    /// `skb->network_header - skb->mac_header` (`skb_mac_header_len`).
    pub(crate) mac_len: usize,
    /// `skb->encapsulation`: set by an encapsulating `bpf_skb_adjust_room`.
    pub(crate) encapsulation: bool,
    /// `skb_shinfo(skb)->gso_size` (`skb_is_gso` when non-zero).
    pub(crate) gso_size: u32,
    /// The tunnel metadata `bpf_skb_set_tunnel_key` attached (`skb_tunnel_info`).
    pub(crate) tunnel: Option<crate::redirect::TunnelKey>,
    /// `skb->sk` of a test run: the `struct sock` image [`SkBuff::attach_test_sock`] made
    /// (boxed, so the pointer in the image stays valid).
    test_sock: Option<Box<[u8; sock::SOCK_SIZE]>>,
}

impl Drop for SkBuff {
    /// The test run's socket goes with its skb, and with it any socket-local storage the
    /// program created for it (`bpf_sk_storage_free`).
    fn drop(&mut self) {
        if let Some(sock) = &self.test_sock {
            crate::sk_storage::forget_socket(sock.as_ptr() as u64);
        }
    }
}
/// `AF_INET`.
const AF_INET: u16 = 2;
/// `TCP_CLOSE`: the state `sock_init_data` gives a new socket.
const TCP_CLOSE: u8 = 7;
/// `AF_INET6`.
const AF_INET6: u16 = 10;

impl SkBuff {
    fn put_u32(&mut self, off: i16, v: u32) {
        let o = off as usize;
        self.raw[o..o + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(&mut self, off: i16, v: u64) {
        let o = off as usize;
        self.raw[o..o + 8].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u16(&mut self, off: i16, v: u16) {
        let o = off as usize;
        self.raw[o..o + 2].copy_from_slice(&v.to_ne_bytes());
    }
    fn get_u32(&self, off: i16) -> u32 {
        let o = off as usize;
        u32::from_ne_bytes(self.raw[o..o + 4].try_into().expect("4 bytes"))
    }

    /// An skb over a copy of `packet` from byte `offset` on (`skb->data`; the bytes before
    /// are the MAC header, pulled as `eth_type_trans` pulls it), with `mark`, on the loopback
    /// device (ifindex 1) like `BPF_PROG_TEST_RUN`'s, which leaves `skb_iif` at 0.
    /// `protocol` is the Ethernet type in network byte order, as the kernel stores it;
    /// `pkt_type` what `eth_type_trans` made of the destination address ([`pkt_type_of`]).
    pub fn new(packet: &[u8], offset: usize, mark: u32, protocol_be: u16, pkt_type: u8) -> SkBuff {
        let mut head = vec![0u8; SKB_HEADROOM + packet.len()];
        head[SKB_HEADROOM..].copy_from_slice(packet);
        let mut s = SkBuff {
            raw: [0; 256],
            dev: Box::new(NetDevice::new(1)),
            head,
            data_off: SKB_HEADROOM + offset,
            // tc (offset 0): data at the MAC header, the network header after it; a socket
            // filter's data is at the network header.
            network_off: ETH_HLEN - offset.min(ETH_HLEN),
            mac_len: ETH_HLEN,
            encapsulation: false,
            gso_size: 0,
            tunnel: None,
            test_sock: None,
        };
        let dev = &*s.dev as *const NetDevice as u64;
        s.put_u64(skb_off::SKB_DEV, dev);
        s.raw[skb_off::SKB_PKT_TYPE as usize] = pkt_type & skb_off::PKT_TYPE_MAX as u8;
        s.put_u16(skb_off::SKB_PROTOCOL, protocol_be);
        s.put_u32(skb_off::SKB_MARK, mark);
        s.put_u32(skb_off::SKB_LEN, (packet.len() - offset) as u32);
        s.compute_data_pointers();
        s
    }

    /// `BPF_PROG_TEST_RUN`'s socket (`bpf_prog_test_run_skb`): `skb->sk` is a fresh
    /// `AF_UNSPEC` socket (`sk_alloc` zeroes it; `sock_init_data` without a `struct socket`
    /// leaves type and protocol 0, sets `TCP_CLOSE` and no rx queue) that takes the family
    /// and addresses of an IPv4 or IPv6 packet (`sk_rcv_saddr`/`sk_daddr` from the header's
    /// source and destination); ports stay 0.
    pub fn attach_test_sock(&mut self) {
        use kbpf_rewrite::ctx::sock as sk;
        let mut image = Box::new([0u8; sock::SOCK_SIZE]);
        image[sk::SKC_STATE as usize] = TCP_CLOSE;
        image[sk::SK_RX_QUEUE_MAPPING as usize..][..2]
            .copy_from_slice(&(sk::NO_QUEUE_MAPPING as u16).to_ne_bytes());
        let net = self.data_off + self.network_off;
        let hdr = self.head.get(net..).unwrap_or_default();
        let mut put = |off: i16, b: &[u8]| {
            image[off as usize..off as usize + b.len()].copy_from_slice(b);
        };
        match u16::from_be(self.protocol_be()) {
            0x0800 if hdr.len() >= 20 => {
                put(sk::SKC_FAMILY, &AF_INET.to_ne_bytes());
                put(sk::SKC_RCV_SADDR, &hdr[12..16]);
                put(sk::SKC_DADDR, &hdr[16..20]);
            }
            0x86dd if hdr.len() >= 40 => {
                put(sk::SKC_FAMILY, &AF_INET6.to_ne_bytes());
                put(sk::SKC_V6_RCV_SADDR, &hdr[8..24]);
                put(sk::SKC_V6_DADDR, &hdr[24..40]);
            }
            _ => {}
        }
        let p = image.as_ptr() as u64;
        self.test_sock = Some(image);
        self.put_u64(skb_off::SKB_SK, p);
    }

    /// The `len` bytes a legacy packet load at `offset` reads (`____bpf_skb_load_helper_N`):
    /// from `skb->data` for a non-negative offset; below `SKF_NET_OFF`/`SKF_LL_OFF`
    /// (`bpf_internal_load_pointer_neg_helper`) from the network or MAC header, inside the
    /// buffer. `None` where the kernel's load fails (`-EFAULT`).
    pub(crate) fn load_abs(&self, offset: i32, len: usize) -> Option<&[u8]> {
        /// `SKF_NET_OFF`, `SKF_LL_OFF`.
        const SKF_NET_OFF: i64 = -0x100000;
        const SKF_LL_OFF: i64 = -0x200000;
        let off = i64::from(offset);
        let start = if off >= 0 {
            self.data_off as i64 + off
        } else if off >= SKF_NET_OFF {
            (self.data_off + self.network_off) as i64 + off - SKF_NET_OFF
        } else if off >= SKF_LL_OFF {
            (self.data_off + self.network_off) as i64 - self.mac_len as i64 + off - SKF_LL_OFF
        } else {
            return None;
        };
        let end = self.data_off + self.len();
        let start = usize::try_from(start).ok()?;
        (start + len <= end).then(|| &self.head[start..start + len])
    }

    /// The control block's `data_end` as a program without direct packet access finds it
    /// in a test run: 0, as `bpf_compute_data_pointers` is not called for it.
    pub fn clear_data_end(&mut self) {
        self.put_u64(skb_off::SKB_DATA_END, 0);
    }

    /// Puts the skb on device `ifindex` (`skb->dev->ifindex`; `BPF_PROG_TEST_RUN` uses lo).
    pub fn set_dev_ifindex(&mut self, ifindex: u32) {
        self.dev.ifindex = ifindex;
    }

    /// `skb->len`.
    pub fn len(&self) -> usize {
        self.get_u32(skb_off::SKB_LEN) as usize
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `skb->protocol`, in network byte order as stored.
    pub(crate) fn protocol_be(&self) -> u16 {
        let o = skb_off::SKB_PROTOCOL as usize;
        u16::from_ne_bytes([self.raw[o], self.raw[o + 1]])
    }

    /// `bpf_skb_change_protocol`'s store.
    pub(crate) fn set_protocol_be(&mut self, p: u16) {
        self.put_u16(skb_off::SKB_PROTOCOL, p);
    }

    /// `bpf_compute_data_pointers`: `skb->data` and the control block's `data_end` from the
    /// buffer (which may have moved).
    fn compute_data_pointers(&mut self) {
        let p = self.head.as_mut_ptr().wrapping_add(self.data_off) as u64;
        let len = self.len() as u64;
        self.put_u64(skb_off::SKB_DATA, p);
        self.put_u64(skb_off::SKB_DATA_END, p + len);
    }

    /// The packet, `[data, data + len)`.
    pub fn data(&self) -> &[u8] {
        &self.head[self.data_off..self.data_off + self.len()]
    }

    /// `skb_headroom`.
    pub fn headroom(&self) -> usize {
        self.data_off
    }

    /// `skb_push(skb, n)` after `skb_cow_head(skb, n)`: `n` more bytes in front of the
    /// packet, reallocating the head with more headroom when there is not enough (as
    /// `pskb_expand_head` does). The new bytes are left as they were (the caller writes them).
    pub(crate) fn push(&mut self, n: usize) {
        if self.data_off < n {
            let grow = n - self.data_off + SKB_HEADROOM;
            let mut head = vec![0u8; grow + self.head.len()];
            head[grow..].copy_from_slice(&self.head);
            self.head = head;
            self.data_off += grow;
        }
        self.data_off -= n;
        let len = self.len() + n;
        self.put_u32(skb_off::SKB_LEN, len as u32);
        self.compute_data_pointers();
    }

    /// `__skb_pull(skb, n)`, `n <= len`.
    pub(crate) fn pull(&mut self, n: usize) {
        self.data_off += n;
        let len = self.len() - n;
        self.put_u32(skb_off::SKB_LEN, len as u32);
        self.compute_data_pointers();
    }

    /// The packet, writable.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        let (a, n) = (self.data_off, self.len());
        &mut self.head[a..a + n]
    }

    /// The tunnel metadata a program attached (`bpf_skb_set_tunnel_key`), if any.
    pub fn tunnel_key(&self) -> Option<&crate::redirect::TunnelKey> {
        self.tunnel.as_ref()
    }

    /// Sets `skb_shinfo(skb)->gso_size` (from `__sk_buff.gso_size` of a test run's context).
    pub fn set_gso_size(&mut self, v: u32) {
        self.gso_size = v;
    }

    /// `skb->mark`.
    pub fn mark(&self) -> u32 {
        self.get_u32(skb_off::SKB_MARK)
    }

    /// Sets `skb->priority`.
    pub fn set_priority(&mut self, v: u32) {
        self.put_u32(skb_off::SKB_PRIORITY, v);
    }

    /// `skb->priority`.
    pub fn priority(&self) -> u32 {
        self.get_u32(skb_off::SKB_PRIORITY)
    }

    /// Sets `skb->skb_iif` (`__sk_buff.ingress_ifindex`).
    pub fn set_ingress_ifindex(&mut self, v: u32) {
        self.put_u32(skb_off::SKB_IIF, v);
    }

    /// Sets `__sk_buff.cb[i]`.
    pub fn set_cb(&mut self, i: usize, v: u32) {
        self.put_u32(skb_off::SKB_CB_DATA + 4 * i as i16, v);
    }

    /// `__sk_buff.cb[i]`.
    pub fn cb(&self, i: usize) -> u32 {
        self.get_u32(skb_off::SKB_CB_DATA + 4 * i as i16)
    }

    /// The context pointer.
    pub fn ctx_ptr(&mut self) -> u64 {
        self.raw.as_mut_ptr() as u64
    }

    /// The skb behind a context pointer, for the helpers.
    ///
    /// # Safety
    /// `ctx` must be [`SkBuff::ctx_ptr`] of a live `SkBuff` not otherwise borrowed for the
    /// returned lifetime (the program that passed it is suspended in the helper call).
    pub(crate) unsafe fn from_ctx<'a>(ctx: u64) -> &'a mut SkBuff {
        // SAFETY: the caller's contract; `raw` is the first field of the repr(C) struct, so
        // its address is the struct's.
        unsafe { &mut *(ctx as *mut SkBuff) }
    }
}

/// Kernel data translated programs read directly, as `(start, len, writable)` for a
/// bounds-checked run: the per-CPU `cpu_number` block of the inlined
/// `bpf_get_smp_processor_id`.
pub(crate) fn kernel_data_regions() -> Vec<(u64, u64, bool)> {
    kbpf_maps::cpu_number_addr()
        .map(|a| {
            (
                a as u64,
                4 * kbpf_maps::possible_cpus().max(1) as u64,
                false,
            )
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> XdpFrame {
        XdpFrame::new(&[0xab; 60], 1, 0).expect("fits")
    }

    #[test]
    fn test_run_layout_has_headroom_and_tailroom() {
        let f = frame();
        assert_eq!(
            f.buff.data as usize - f.buff.data_hard_start as usize,
            XDP_PACKET_HEADROOM
        );
        assert_eq!(f.data_out(), &[0xab; 60][..]);
        assert!(XdpFrame::new(&[0; 13], 1, 0).is_none());
        assert!(XdpFrame::new(&vec![0; XdpFrame::MAX_DATA + 1], 1, 0).is_none());
    }

    #[test]
    fn adjust_head_checks_bounds_like_the_kernel() {
        let mut f = frame();
        assert_eq!(f.buff.adjust_head(-20), 0);
        assert_eq!(f.data_out().len(), 80);
        assert_eq!(
            f.buff.adjust_head(-(256 - 40 - 20 + 1)),
            EINVAL,
            "into xdp_frame"
        );
        assert_eq!(
            f.buff.adjust_head(80 - 13),
            EINVAL,
            "less than ETH_HLEN left"
        );
        assert_eq!(f.buff.adjust_head(80 - 14), 0);
        assert_eq!(f.data_out().len(), 14);
    }

    #[test]
    fn adjust_tail_zeroes_grown_bytes_and_respects_tailroom() {
        let mut f = frame();
        assert_eq!(f.buff.adjust_tail(-10), 0);
        assert_eq!(f.buff.adjust_tail(10), 0);
        assert_eq!(&f.data_out()[50..], &[0; 10]);
        assert_eq!(f.buff.adjust_tail(XdpFrame::MAX_DATA as i32), EINVAL);
    }

    #[test]
    fn skb_fields_sit_where_the_rewrite_reads_them() {
        let pkt = [0u8; 42];
        let mut s = SkBuff::new(&pkt, 0, 7, 0x0008, pkt_type_of(&[0; 6]));
        assert_eq!(s.get_u32(skb_off::SKB_LEN), 42);
        assert_eq!(s.mark(), 7);
        assert_eq!(s.headroom(), SKB_HEADROOM);
        let p = s.ctx_ptr();
        assert_ne!(p, 0);
        // SAFETY: `p` is this skb's context pointer; `s` is not used meanwhile.
        assert_eq!(unsafe { SkBuff::from_ctx(p) }.len(), 42);
    }

    #[test]
    fn legacy_loads_reach_the_packet_and_its_headers() {
        let pkt: Vec<u8> = (0..60).collect();
        // A socket filter's skb: data at the network header.
        let s = SkBuff::new(&pkt, ETH_HLEN, 0, 0x0008, 3);
        assert_eq!(s.load_abs(0, 2), Some(&pkt[14..16]));
        assert_eq!(
            s.load_abs(-0x100000 + 2, 1),
            Some(&pkt[16..17]),
            "SKF_NET_OFF"
        );
        assert_eq!(s.load_abs(-0x200000, 4), Some(&pkt[..4]), "SKF_LL_OFF");
        assert_eq!(s.load_abs(44, 2), Some(&pkt[58..60]));
        assert_eq!(s.load_abs(45, 2), None, "past the end");
        assert_eq!(s.load_abs(-0x300000, 1), None);
    }

    #[test]
    fn push_beyond_the_headroom_moves_the_packet_and_its_pointers() {
        let pkt: Vec<u8> = (0..60).collect();
        let mut s = SkBuff::new(&pkt, 0, 0, 0x0008, 3);
        s.push(100);
        assert_eq!(s.len(), 160);
        assert_eq!(&s.data()[100..], &pkt[..]);
        let data =
            s.get_u32(skb_off::SKB_DATA) as u64 | (s.get_u32(skb_off::SKB_DATA + 4) as u64) << 32;
        assert_eq!(data, s.data().as_ptr() as u64);
        s.pull(100);
        assert_eq!(s.data(), &pkt[..]);
    }
}

//! Test packets for the datapath: Ethernet + IPv4/IPv6 + TCP/UDP frames with correct
//! checksums, and the frame the XDP program must send back for a backend (computed from
//! scratch, so a wrong incremental checksum update in the program shows up).

use kbpf_uapi::net::ETH_HLEN;
pub use kbpf_uapi::net::{ETH_P_IP, ETH_P_IPV6};

/// IP protocol numbers.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol numbers.
pub const IPPROTO_UDP: u8 = 17;

const IP_HLEN: usize = 20;

/// An IPv4 flow as a client sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Client address.
    pub saddr: [u8; 4],
    /// Destination (the VIP).
    pub daddr: [u8; 4],
    /// Client port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`] (others get a bare IP payload).
    pub protocol: u8,
}

/// Client and router MACs used by [`Flow::frame`].
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The load balancer's MAC.
pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// The Internet checksum (RFC 1071) of `data`, starting from the partial sum `initial`.
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header_sum(saddr: [u8; 4], daddr: [u8; 4], protocol: u8, l4_len: usize) -> u32 {
    let mut sum = 0u32;
    for pair in saddr.chunks(2).chain(daddr.chunks(2)) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum + u32::from(protocol) + l4_len as u32
}

impl Flow {
    /// The Ethernet frame client → load balancer carrying `payload`, all checksums set
    /// (a UDP checksum of 0 when `udp_no_checksum`).
    pub fn frame_with(&self, payload: &[u8], udp_no_checksum: bool) -> Vec<u8> {
        build_frame(
            LB_MAC,
            CLIENT_MAC,
            self.saddr,
            self.daddr,
            self.sport,
            self.dport,
            self.protocol,
            payload,
            udp_no_checksum,
        )
    }

    /// [`Flow::frame_with`] with UDP checksums on.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        self.frame_with(payload, false)
    }

    /// The frame the load balancer sends back for backend `addr:port` (`port` 0 keeps
    /// the destination port): Ethernet addresses swapped, destination rewritten, IPv4
    /// and L4 checksums recomputed from scratch.
    pub fn dnat_frame(
        &self,
        payload: &[u8],
        udp_no_checksum: bool,
        addr: [u8; 4],
        port: u16,
    ) -> Vec<u8> {
        let dport = if port == 0 { self.dport } else { port };
        build_frame(
            CLIENT_MAC,
            LB_MAC,
            self.saddr,
            addr,
            self.sport,
            dport,
            self.protocol,
            payload,
            udp_no_checksum,
        )
    }
}

/// The TCP (a SYN with fixed sequence numbers) or UDP segment, checksummed with the
/// pseudo-header partial sum `pseudo(l4_len)`; other protocols get the bare payload.
fn l4_segment(
    sport: u16,
    dport: u16,
    protocol: u8,
    payload: &[u8],
    pseudo: impl Fn(usize) -> u32,
    udp_no_checksum: bool,
) -> Vec<u8> {
    let mut l4 = Vec::new();
    match protocol {
        IPPROTO_TCP => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // seq
            l4.extend_from_slice(&0u32.to_be_bytes()); // ack
            l4.push(5 << 4); // data offset 5 words
            l4.push(0x02); // SYN
            l4.extend_from_slice(&64240u16.to_be_bytes()); // window
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
            l4.extend_from_slice(payload);
            let c = internet_checksum(pseudo(l4.len()), &l4);
            l4[16..18].copy_from_slice(&c.to_be_bytes());
        }
        IPPROTO_UDP => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            l4.extend_from_slice(payload);
            if !udp_no_checksum {
                let mut c = internet_checksum(pseudo(l4.len()), &l4);
                if c == 0 {
                    c = 0xffff;
                }
                l4[6..8].copy_from_slice(&c.to_be_bytes());
            }
        }
        _ => l4.extend_from_slice(payload),
    }
    l4
}

#[allow(clippy::too_many_arguments)]
fn build_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: u16,
    dport: u16,
    protocol: u8,
    payload: &[u8],
    udp_no_checksum: bool,
) -> Vec<u8> {
    let l4 = l4_segment(
        sport,
        dport,
        protocol,
        payload,
        |len| pseudo_header_sum(saddr, daddr, protocol, len),
        udp_no_checksum,
    );
    let total = IP_HLEN + l4.len();
    let mut f = Vec::with_capacity(ETH_HLEN + total);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let mut ip = [0u8; IP_HLEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1c46u16.to_be_bytes()); // id
    ip[6] = 0x40; // DF
    ip[8] = 64; // ttl
    ip[9] = protocol;
    ip[12..16].copy_from_slice(&saddr);
    ip[16..20].copy_from_slice(&daddr);
    let c = internet_checksum(0, &ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

/// `frame` (an IPv4 frame from this module) with `options` inserted after the fixed
/// IPv4 header: IHL, total length and the header checksum are updated; the L4 checksum
/// does not cover IP options and stays valid. `options.len()` must be a multiple of 4
/// and at most 40; otherwise the frame is returned unchanged.
pub fn with_ipv4_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    if !options.len().is_multiple_of(4) || options.len() > 40 || frame.len() < ETH_HLEN + IP_HLEN {
        return frame.to_vec();
    }
    let mut f = frame[..ETH_HLEN + IP_HLEN].to_vec();
    f.extend_from_slice(options);
    f.extend_from_slice(&frame[ETH_HLEN + IP_HLEN..]);
    let ip = &mut f[ETH_HLEN..];
    ip[0] = 0x40 | ((IP_HLEN + options.len()) / 4) as u8;
    let total = u16::from_be_bytes([ip[2], ip[3]]) + options.len() as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = internet_checksum(0, &ip[..IP_HLEN + options.len()]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f
}

/// An IPv6 flow as a client sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow6 {
    /// Client address.
    pub saddr: [u8; 16],
    /// Destination (the VIP).
    pub daddr: [u8; 16],
    /// Client port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`] (others get a bare payload).
    pub protocol: u8,
}

fn pseudo_header_sum6(saddr: [u8; 16], daddr: [u8; 16], protocol: u8, l4_len: usize) -> u32 {
    let mut sum = 0u32;
    for pair in saddr.chunks(2).chain(daddr.chunks(2)) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    // 32-bit upper-layer length and the next-header byte (RFC 8200 §8.1).
    sum + (l4_len as u32 >> 16) + (l4_len as u32 & 0xffff) + u32::from(protocol)
}

fn build_frame6(dst_mac: [u8; 6], src_mac: [u8; 6], flow: &Flow6, payload: &[u8]) -> Vec<u8> {
    let l4 = l4_segment(
        flow.sport,
        flow.dport,
        flow.protocol,
        payload,
        |len| pseudo_header_sum6(flow.saddr, flow.daddr, flow.protocol, len),
        false,
    );
    let mut f = Vec::with_capacity(ETH_HLEN + 40 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&0x6000_0000u32.to_be_bytes()); // version 6, no class/label
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.push(flow.protocol);
    f.push(64); // hop limit
    f.extend_from_slice(&flow.saddr);
    f.extend_from_slice(&flow.daddr);
    f.extend_from_slice(&l4);
    f
}

impl Flow6 {
    /// The Ethernet frame client → load balancer carrying `payload`.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        build_frame6(LB_MAC, CLIENT_MAC, self, payload)
    }

    /// The frame the load balancer sends back for backend `[addr]:port` (`port` 0
    /// keeps the destination port), L4 checksum recomputed from scratch.
    pub fn dnat_frame(&self, payload: &[u8], addr: [u8; 16], port: u16) -> Vec<u8> {
        let out = Flow6 {
            daddr: addr,
            dport: if port == 0 { self.dport } else { port },
            ..*self
        };
        build_frame6(CLIENT_MAC, LB_MAC, &out, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify() {
        let flow = Flow {
            saddr: [10, 1, 2, 3],
            daddr: [10, 0, 0, 1],
            sport: 40000,
            dport: 80,
            protocol: IPPROTO_TCP,
        };
        let f = flow.frame(b"hello");
        assert_eq!(f.len(), 14 + 20 + 20 + 5);
        // A correct header sums to 0xffff, so its checksum over itself is 0.
        assert_eq!(internet_checksum(0, &f[14..34]), 0);
        let l4 = &f[34..];
        assert_eq!(
            internet_checksum(pseudo_header_sum(flow.saddr, flow.daddr, 6, l4.len()), l4),
            0
        );
        let u = Flow {
            protocol: IPPROTO_UDP,
            ..flow
        };
        let f = u.frame(b"odd");
        assert_eq!(
            internet_checksum(pseudo_header_sum(u.saddr, u.daddr, 17, 11), &f[34..]),
            0
        );
        let n = u.frame_with(b"odd", true);
        assert_eq!(&n[40..42], &[0, 0]);
        let v6 = Flow6 {
            saddr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            daddr: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            sport: 5555,
            dport: 443,
            protocol: IPPROTO_TCP,
        };
        let f6 = v6.frame(b"six");
        assert_eq!(f6.len(), 14 + 40 + 20 + 3);
        assert_eq!(
            internet_checksum(pseudo_header_sum6(v6.saddr, v6.daddr, 6, 23), &f6[54..]),
            0
        );
        let o = with_ipv4_options(&flow.frame(b"hello"), &[1, 1, 1, 0]);
        assert_eq!(o.len(), 14 + 24 + 20 + 5);
        assert_eq!(o[14], 0x46);
        assert_eq!(internet_checksum(0, &o[14..38]), 0);
        assert_eq!(with_ipv4_options(&o, &[1, 1]), o);
        let d = flow.dnat_frame(b"hello", false, [192, 168, 0, 9], 8080);
        assert_eq!(&d[0..6], &CLIENT_MAC);
        assert_eq!(&d[30..34], &[192, 168, 0, 9]);
        assert_eq!(&d[36..38], &8080u16.to_be_bytes());
    }
}

//! A packet builder with the semantics of Katran's `PacketBuilder`
//! (`katran/lib/testing/tools/PacketBuilder.cpp`): the same header defaults, next-header
//! fields filled from the following header, lengths and checksums computed from the end of
//! the packet toward its start, and the same quirks (a C string literal stops at its first
//! NUL; an ICMPv6 header's checksum covers only its own 8 bytes unless it embeds a packet).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cpp_expr::Expr;

pub mod eval;

use eval::Eval;

/// Why a packet cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Eth,
    Ip4,
    Ip6,
    Udp,
    Tcp,
    Icmp,
    Icmp6,
    Arp,
    Payload,
}

#[derive(Clone, Debug)]
enum Hdr {
    Eth {
        src: [u8; 6],
        dst: [u8; 6],
        proto: u16,
    },
    Ip4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        tos: u8,
        id: u16,
        frag: u16,
        ihl: u8,
        proto: u8,
    },
    Ip6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hlim: u8,
        tc: u8,
        flow: u32,
        nxt: u8,
    },
    Udp {
        sport: u16,
        dport: u16,
        zero: bool,
    },
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        win: u16,
        flags: u8,
        opts: Vec<(u8, Vec<u8>)>,
    },
    Icmp {
        ty: u8,
        code: u8,
        rest: [u8; 4],
        embedded: Option<Vec<u8>>,
    },
    Icmp6 {
        ty: u8,
        code: u8,
        rest: [u8; 4],
        embedded: Option<Vec<u8>>,
    },
    Arp([u8; 28]),
    Payload(Vec<u8>),
}

impl Hdr {
    fn kind(&self) -> Kind {
        match self {
            Hdr::Eth { .. } => Kind::Eth,
            Hdr::Ip4 { .. } => Kind::Ip4,
            Hdr::Ip6 { .. } => Kind::Ip6,
            Hdr::Udp { .. } => Kind::Udp,
            Hdr::Tcp { .. } => Kind::Tcp,
            Hdr::Icmp { .. } => Kind::Icmp,
            Hdr::Icmp6 { .. } => Kind::Icmp6,
            Hdr::Arp(_) => Kind::Arp,
            Hdr::Payload(_) => Kind::Payload,
        }
    }
}

/// A QUIC header under construction (`QUICBuilder`).
#[derive(Clone, Debug)]
struct Quic {
    ty: u8,
    dcid: Vec<u8>,
    scid: Vec<u8>,
    version: u32,
    token: Vec<u8>,
    pn: u64,
    pn_len: u8,
    data: Vec<u8>,
}

const QUIC_SHORT: u8 = 0x40;

impl Quic {
    fn serialize(&self) -> Vec<u8> {
        let mut q = Vec::new();
        if self.ty == QUIC_SHORT {
            q.push(0x00);
            q.extend_from_slice(&self.dcid);
            if self.pn > 0 {
                q.extend(pn_bytes(self.pn, self.pn_len));
            }
        } else {
            q.push(match self.ty {
                0x00 => 0xCF,
                0x10 => 0xDF,
                0x20 => 0xEF,
                _ => 0xFF,
            });
            q.extend_from_slice(&self.version.to_be_bytes());
            let dlen = self.dcid.len().min(8);
            q.push(dlen as u8);
            if dlen > 0 {
                let mut pad = [0u8; 8];
                pad[..dlen].copy_from_slice(&self.dcid[..dlen]);
                q.extend_from_slice(&pad);
            }
            let slen = self.scid.len().min(8);
            q.push(slen as u8);
            q.extend_from_slice(&self.scid[..slen]);
            if self.ty == 0x00 {
                q.extend(varint(self.token.len() as u64));
                q.extend_from_slice(&self.token);
            }
            if self.ty != 0x30 {
                let remaining = if self.pn > 0 {
                    u64::from(self.pn_len)
                } else if !self.data.is_empty() {
                    if self.ty == 0x00 {
                        self.data.len() as u64
                    } else {
                        1
                    }
                } else {
                    0
                };
                q.extend(varint(remaining));
                if self.pn > 0 {
                    q.extend(pn_bytes(self.pn, self.pn_len));
                }
            }
        }
        q.extend_from_slice(&self.data);
        q
    }
}

fn varint(v: u64) -> Vec<u8> {
    if v < 64 {
        vec![v as u8]
    } else if v < 16384 {
        vec![0x40 | (v >> 8) as u8, v as u8]
    } else if v < 1 << 30 {
        let b = (v as u32).to_be_bytes();
        vec![0x80 | b[0], b[1], b[2], b[3]]
    } else {
        let mut b = v.to_be_bytes();
        b[0] |= 0xC0;
        b.to_vec()
    }
}

fn pn_bytes(pn: u64, len: u8) -> Vec<u8> {
    let len = len as usize;
    (0..len)
        .map(|i| (pn >> (8 * (len - 1 - i))) as u8)
        .collect()
}

/// `PacketBuilder`: a stack of headers.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    stack: Vec<Hdr>,
    quic: Option<Quic>,
}

fn mac(s: &str) -> [u8; 6] {
    let mut b = [0u8; 6];
    if let Some(h) = s.strip_prefix("0x") {
        if let Ok(v) = u64::from_str_radix(h, 16) {
            for (i, x) in b.iter_mut().enumerate() {
                *x = (v >> (8 * i)) as u8;
            }
        }
    } else if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() == 6 {
            let parsed: Result<Vec<u8>, _> =
                parts.iter().map(|p| u8::from_str_radix(p, 16)).collect();
            if let Ok(v) = parsed {
                b.copy_from_slice(&v);
            }
        }
    }
    b
}

/// RFC 1071 sum of `data` (big-endian words, odd byte padded), not yet complemented.
fn sum16(data: &[u8], mut sum: u64) -> u64 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u64::from(w);
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn be16(b: &[u8], off: usize) -> u64 {
    u64::from(u16::from_be_bytes([b[off], b[off + 1]]))
}

fn not16(w: u64) -> u64 {
    !w & 0xffff
}

/// `calculateGueIcmpChecksum(V6)`: the outer GUE UDP checksum of an encapsulated ICMP
/// error as Katran's `gue_csum()` computes it (seeded with the embedded transport
/// checksum, the inner pseudo header subtracted), with the builder's quirks: an IPv4 outer
/// header's `tot_len` is still 0 when the V6 variant reads it, and an IPv6 outer header
/// leaves the V4 variant's outer addresses at 0. 0 when the payload is not such a packet.
fn gue_icmp_csum(udp: &[u8], outer: &Ip<'_>, payload: &[u8]) -> u16 {
    let v6 = payload.first().is_some_and(|b| b >> 4 == 6);
    let (ihl, emb_off) = if v6 {
        (40, 48)
    } else {
        if payload.len() < 20 {
            return 0;
        }
        let ihl = usize::from(payload[0] & 0xf) * 4;
        (ihl, ihl + 8)
    };
    if payload.len() < emb_off + 20 {
        return 0;
    }
    let (emb_proto, emb_hl) = if v6 {
        if payload.len() < emb_off + 40 {
            return 0;
        }
        (payload[emb_off + 6], 40)
    } else {
        (
            payload[emb_off + 9],
            usize::from(payload[emb_off] & 0xf) * 4,
        )
    };
    let t = emb_off + emb_hl;
    if payload.len() < t + 4 {
        return 0;
    }
    let emb_csum = match emb_proto {
        6 if payload.len() >= t + 18 => be16(payload, t + 16),
        17 if payload.len() >= t + 8 => be16(payload, t + 6),
        6 | 17 => 0,
        _ => return 0,
    };
    let mut csum: u64 = not16(emb_csum) + emb_csum;
    let (inner_len, inner_proto) = if v6 {
        for o in (8..40).step_by(2) {
            csum += not16(be16(payload, o));
        }
        (be16(payload, 4), u64::from(payload[6]))
    } else {
        for o in [12, 14, 16, 18] {
            csum += not16(be16(payload, o));
        }
        (
            (be16(payload, 2).wrapping_sub(ihl as u64)) & 0xffff,
            u64::from(payload[9]),
        )
    };
    // htonl(len), htonl(proto): high words 0.
    csum += not16(0) + not16(inner_len) + not16(0) + not16(inner_proto);
    csum = sum16(&payload[..ihl], csum);
    let mut u = udp[..8].to_vec();
    u[6] = 0;
    u[7] = 0;
    csum = sum16(&u, csum);
    let outer_len = (8 + payload.len()) as u64 & 0xffff;
    match outer {
        Ip::V6(s, d) if v6 => {
            csum = sum16(&d.octets(), sum16(&s.octets(), csum));
            csum += outer_len + 17;
        }
        Ip::V4(s, d) => {
            csum = sum16(&d.octets(), sum16(&s.octets(), csum));
            // The V6 variant reads the outer IPv4 header's tot_len before it is set.
            csum += if v6 {
                u64::from(0u16.wrapping_sub(20))
            } else {
                outer_len
            } + 17;
        }
        // Inner IPv4 under an IPv6 (or no) outer header: outer addresses read as 0.
        _ => csum += outer_len + 17,
    }
    for _ in 0..4 {
        if csum >> 16 != 0 {
            csum = (csum & 0xffff) + (csum >> 16);
        }
    }
    !(csum as u16)
}

/// The IP header nearest before `idx`, for pseudo-header checksums.
enum Ip<'a> {
    V4(&'a Ipv4Addr, &'a Ipv4Addr),
    V6(&'a Ipv6Addr, &'a Ipv6Addr),
    None,
}

impl Builder {
    /// `PacketBuilder::newPacket()`.
    pub fn new() -> Builder {
        Builder::default()
    }

    fn ip_before(&self, idx: usize) -> Ip<'_> {
        for h in self.stack[..idx].iter().rev() {
            match h {
                Hdr::Ip4 { src, dst, .. } => return Ip::V4(src, dst),
                Hdr::Ip6 { src, dst, .. } => return Ip::V6(src, dst),
                _ => {}
            }
        }
        Ip::None
    }

    fn pseudo(ip: &Ip<'_>, proto: u8, len: usize) -> Option<Vec<u8>> {
        match ip {
            Ip::V4(s, d) => {
                let mut p = Vec::with_capacity(12);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, proto]);
                p.extend_from_slice(&(len as u16).to_be_bytes());
                Some(p)
            }
            Ip::V6(s, d) => {
                let mut p = Vec::with_capacity(40);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&(len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, proto]);
                Some(p)
            }
            Ip::None => None,
        }
    }

    /// The packet's bytes (`buildAsBytes`).
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        if self.quic.is_some() {
            return Err(BuildError("QUIC builder without .done()".into()));
        }
        if self.stack.is_empty() {
            return Err(BuildError("no headers".into()));
        }
        let mut stack = self.stack.clone();
        // updateForNextHeader
        for i in 0..stack.len().saturating_sub(1) {
            let next = stack[i + 1].kind();
            match &mut stack[i] {
                Hdr::Eth { proto, .. } => match next {
                    Kind::Ip4 => *proto = 0x0800,
                    Kind::Ip6 => *proto = 0x86dd,
                    Kind::Arp => *proto = 0x0806,
                    _ => {}
                },
                Hdr::Ip4 { proto, .. } => match next {
                    Kind::Udp => *proto = 17,
                    Kind::Tcp => *proto = 6,
                    Kind::Icmp => *proto = 1,
                    Kind::Ip6 => *proto = 41,
                    Kind::Ip4 => *proto = 4,
                    _ => {}
                },
                Hdr::Ip6 { nxt, .. } if *nxt == 0 => match next {
                    Kind::Udp => *nxt = 17,
                    Kind::Tcp => *nxt = 6,
                    Kind::Icmp6 => *nxt = 58,
                    Kind::Ip6 => *nxt = 41,
                    Kind::Ip4 => *nxt = 4,
                    _ => {}
                },
                _ => {}
            }
        }
        let b = Builder { stack, quic: None };
        let mut pkt: Vec<u8> = Vec::new();
        for i in (0..b.stack.len()).rev() {
            let mut hdr: Vec<u8> = Vec::new();
            match &b.stack[i] {
                Hdr::Eth { src, dst, proto } => {
                    hdr.extend_from_slice(dst);
                    hdr.extend_from_slice(src);
                    hdr.extend_from_slice(&proto.to_be_bytes());
                }
                Hdr::Ip4 {
                    src,
                    dst,
                    ttl,
                    tos,
                    id,
                    frag,
                    ihl,
                    proto,
                } => {
                    let hl = usize::from(*ihl) * 4;
                    hdr = vec![0u8; hl.max(20)];
                    hdr[0] = 0x40 | (ihl & 0xf);
                    hdr[1] = *tos;
                    hdr[2..4].copy_from_slice(&((hl + pkt.len()) as u16).to_be_bytes());
                    hdr[4..6].copy_from_slice(&id.to_be_bytes());
                    hdr[6..8].copy_from_slice(&frag.to_be_bytes());
                    hdr[8] = *ttl;
                    hdr[9] = *proto;
                    hdr[12..16].copy_from_slice(&src.octets());
                    hdr[16..20].copy_from_slice(&dst.octets());
                    hdr.truncate(hl);
                    let c = fold(sum16(&hdr, 0));
                    hdr[10..12].copy_from_slice(&c.to_be_bytes());
                }
                Hdr::Ip6 {
                    src,
                    dst,
                    hlim,
                    tc,
                    flow,
                    nxt,
                } => {
                    let v = (6u32 << 28) | (u32::from(*tc) << 20) | (flow & 0xfffff);
                    hdr.extend_from_slice(&v.to_be_bytes());
                    hdr.extend_from_slice(&(pkt.len() as u16).to_be_bytes());
                    hdr.push(*nxt);
                    hdr.push(*hlim);
                    hdr.extend_from_slice(&src.octets());
                    hdr.extend_from_slice(&dst.octets());
                }
                Hdr::Udp { sport, dport, zero } => {
                    let len = 8 + pkt.len();
                    hdr.extend_from_slice(&sport.to_be_bytes());
                    hdr.extend_from_slice(&dport.to_be_bytes());
                    hdr.extend_from_slice(&(len as u16).to_be_bytes());
                    hdr.extend_from_slice(&[0, 0]);
                    if !zero {
                        if *dport == 9886
                            && b.stack[i + 1..]
                                .iter()
                                .any(|h| matches!(h.kind(), Kind::Icmp | Kind::Icmp6))
                        {
                            let c = gue_icmp_csum(&hdr, &b.ip_before(i), &pkt);
                            hdr[6..8].copy_from_slice(&c.to_be_bytes());
                            hdr.extend_from_slice(&pkt);
                            pkt = hdr;
                            continue;
                        }
                        let ip = b.ip_before(i);
                        if let Some(p) = Self::pseudo(&ip, 17, len) {
                            let mut c = fold(sum16(&pkt, sum16(&hdr, sum16(&p, 0))));
                            if matches!(ip, Ip::V6(..)) && c == 0 {
                                c = 0xffff;
                            }
                            hdr[6..8].copy_from_slice(&c.to_be_bytes());
                        }
                    }
                }
                Hdr::Tcp {
                    sport,
                    dport,
                    seq,
                    ack,
                    win,
                    flags,
                    opts,
                } => {
                    let mut o = Vec::new();
                    for (kind, data) in opts {
                        o.push(*kind);
                        if *kind > 1 {
                            o.push((2 + data.len()) as u8);
                            o.extend_from_slice(data);
                        }
                    }
                    while o.len() % 4 != 0 {
                        o.push(0);
                    }
                    hdr.extend_from_slice(&sport.to_be_bytes());
                    hdr.extend_from_slice(&dport.to_be_bytes());
                    hdr.extend_from_slice(&seq.to_be_bytes());
                    hdr.extend_from_slice(&ack.to_be_bytes());
                    hdr.push((((20 + o.len()) / 4) as u8) << 4);
                    hdr.push(flags & 0x3f);
                    hdr.extend_from_slice(&win.to_be_bytes());
                    hdr.extend_from_slice(&[0, 0, 0, 0]);
                    hdr.extend_from_slice(&o);
                    let ip = b.ip_before(i);
                    if let Some(p) = Self::pseudo(&ip, 6, hdr.len() + pkt.len()) {
                        let c = fold(sum16(&pkt, sum16(&hdr, sum16(&p, 0))));
                        hdr[16..18].copy_from_slice(&c.to_be_bytes());
                    }
                }
                Hdr::Icmp {
                    ty,
                    code,
                    rest,
                    embedded,
                } => {
                    hdr.extend_from_slice(&[*ty, *code, 0, 0]);
                    hdr.extend_from_slice(rest);
                    let body: Vec<u8> = match embedded {
                        Some(e) => {
                            let n = if *ty == 3 && *code == 4 {
                                e.len().min(84)
                            } else {
                                e.len()
                            };
                            e[..n].to_vec()
                        }
                        None => pkt.clone(),
                    };
                    let c = fold(sum16(&body, sum16(&hdr, 0)));
                    hdr[2..4].copy_from_slice(&c.to_be_bytes());
                    if embedded.is_some() {
                        hdr.extend_from_slice(&body);
                    }
                }
                Hdr::Icmp6 {
                    ty,
                    code,
                    rest,
                    embedded,
                } => {
                    hdr.extend_from_slice(&[*ty, *code, 0, 0]);
                    hdr.extend_from_slice(rest);
                    let body: Vec<u8> = match embedded {
                        Some(e) => {
                            let n = if *ty == 2 { e.len().min(248) } else { e.len() };
                            e[..n].to_vec()
                        }
                        None => Vec::new(),
                    };
                    let mut data = hdr.clone();
                    data.extend_from_slice(&body);
                    let len = if *ty == 2 {
                        data.len().min(256)
                    } else {
                        data.len()
                    };
                    let (s, d) = match b.ip_before(i) {
                        Ip::V6(s, d) => (s.octets(), d.octets()),
                        _ => ([0u8; 16], [0u8; 16]),
                    };
                    let mut sum = sum16(&s, 0);
                    sum = sum16(&d, sum);
                    sum = sum16(&(len as u32).to_be_bytes(), sum);
                    sum = sum16(&58u32.to_be_bytes(), sum);
                    sum = sum16(&data[..len], sum);
                    let c = fold(sum);
                    hdr[2..4].copy_from_slice(&c.to_be_bytes());
                    hdr.extend_from_slice(&body);
                }
                Hdr::Arp(a) => hdr.extend_from_slice(a),
                Hdr::Payload(p) => {
                    pkt.extend_from_slice(p);
                    continue;
                }
            }
            hdr.extend_from_slice(&pkt);
            pkt = hdr;
        }
        Ok(pkt)
    }
}

fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse().map_err(|e| format!("bad IPv4 {s}: {e}"))
}

fn ipv6(s: &str) -> Result<Ipv6Addr, String> {
    s.parse().map_err(|e| format!("bad IPv6 {s}: {e}"))
}

/// Applies one builder method (`.Eth(…)`, `.TCP(…)`, `.QUICInitial()`, …) to `b`.
pub fn apply(ev: &Eval, mut b: Builder, m: &str, args: &[Expr]) -> Result<Builder, String> {
    let s = |i: usize| -> Result<String, String> {
        let v = ev.bytes(
            args.get(i)
                .ok_or_else(|| format!("{m}: missing argument {i}"))?,
        )?;
        Ok(String::from_utf8_lossy(&v).into_owned())
    };
    let n = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |e| ev.int(e))
    };
    // QUIC builder methods.
    if let Some(q) = b.quic.as_mut() {
        match m {
            "destConnId" => q.dcid = ev.bytes(&args[0])?,
            "srcConnId" => q.scid = ev.bytes(&args[0])?,
            "version" => q.version = n(0, 0)? as u32,
            "token" => q.token = ev.bytes(&args[0])?,
            "packetNumber" => {
                q.pn = n(0, 0)?;
                q.pn_len = n(1, 4)? as u8;
            }
            "cidVersion" => {}
            "data" => {
                let mut d = ev.bytes(&args[0])?;
                if matches!(args[0], Expr::Str(_)) && q.ty != QUIC_SHORT {
                    d.extend_from_slice(&[0, b'@']);
                }
                q.data = d;
            }
            "done" => {
                let q = b.quic.take().expect("quic");
                b.stack.push(Hdr::Payload(q.serialize()));
            }
            other => return Err(format!("QUICBuilder::{other} not supported")),
        }
        return Ok(b);
    }
    let quic = |ty: u8| Quic {
        ty,
        dcid: Vec::new(),
        scid: Vec::new(),
        version: 0xfaceb001,
        token: Vec::new(),
        pn: 0,
        pn_len: 0,
        data: Vec::new(),
    };
    let add_opt = |b: &mut Builder, kind: u8, data: Vec<u8>| -> Result<(), String> {
        match b.stack.last_mut() {
            Some(Hdr::Tcp { opts, .. }) => {
                opts.push((kind, data));
                Ok(())
            }
            _ => Err(format!("{m}() must follow TCP()")),
        }
    };
    let embedded =
        |e: &Expr| -> Result<Vec<u8>, String> { ev.builder(e)?.build().map_err(|e| e.0) };
    match m {
        "Eth" => {
            let src = if args.is_empty() {
                "0x1".to_string()
            } else {
                s(0)?
            };
            let dst = if args.len() < 2 {
                "0x2".to_string()
            } else {
                s(1)?
            };
            b.stack.push(Hdr::Eth {
                src: mac(&src),
                dst: mac(&dst),
                proto: 0,
            })
        }
        "IPv4" => b.stack.push(Hdr::Ip4 {
            src: ipv4(&s(0)?)?,
            dst: ipv4(&s(1)?)?,
            ttl: n(2, 64)? as u8,
            tos: n(3, 0)? as u8,
            id: n(4, 1)? as u16,
            frag: n(5, 0)? as u16,
            ihl: n(6, 5)? as u8,
            proto: 0,
        }),
        "IPv6" => b.stack.push(Hdr::Ip6 {
            src: ipv6(&s(0)?)?,
            dst: ipv6(&s(1)?)?,
            hlim: n(2, 64)? as u8,
            tc: n(3, 0)? as u8,
            flow: n(4, 0)? as u32 & 0xfffff,
            nxt: n(5, 0)? as u8,
        }),
        "UDP" | "UDPZeroChecksum" => b.stack.push(Hdr::Udp {
            sport: n(0, 0)? as u16,
            dport: n(1, 0)? as u16,
            zero: m == "UDPZeroChecksum",
        }),
        "TCP" => {
            if args.len() > 6 {
                return Err("TCP() with an options vector not supported".into());
            }
            b.stack.push(Hdr::Tcp {
                sport: n(0, 0)? as u16,
                dport: n(1, 0)? as u16,
                seq: n(2, 0)? as u32,
                ack: n(3, 0)? as u32,
                win: n(4, 8192)? as u16,
                flags: n(5, 0x18)? as u8,
                opts: Vec::new(),
            })
        }
        "withTPR" => add_opt(&mut b, 0xB7, (n(0, 0)? as u32).to_le_bytes().to_vec())?,
        "withMSS" => add_opt(&mut b, 2, (n(0, 0)? as u16).to_be_bytes().to_vec())?,
        "withWindowScale" => add_opt(&mut b, 3, vec![n(0, 0)? as u8])?,
        "withTimestamp" => {
            let mut d = (n(0, 0)? as u32).to_be_bytes().to_vec();
            d.extend_from_slice(&(n(1, 0)? as u32).to_be_bytes());
            add_opt(&mut b, 8, d)?
        }
        "withSACKPermitted" => add_opt(&mut b, 4, Vec::new())?,
        "withNOP" => {
            for _ in 0..n(0, 1)? {
                add_opt(&mut b, 1, Vec::new())?;
            }
        }
        "withCustomOption" => {
            let d = match args.get(1) {
                Some(e) => ev.bytes(e)?,
                None => Vec::new(),
            };
            add_opt(&mut b, n(0, 0)? as u8, d)?
        }
        "payload" => b.stack.push(Hdr::Payload(ev.bytes(&args[0])?)),
        "stableRoutingPayload" => {
            let cid = ev.bytes(&args[0])?;
            if cid.len() > 7 {
                return Err("stable routing connection id over 7 bytes".into());
            }
            let mut p = vec![0x52];
            p.extend((0..7).map(|i| cid.get(i).copied().unwrap_or(0)));
            p.extend(ev.bytes(&args[1])?);
            b.stack.push(Hdr::Payload(p));
        }
        "ICMP" | "ICMPv6" => {
            let v6 = m == "ICMPv6";
            let ty = n(0, if v6 { 128 } else { 8 })? as u8;
            let code = n(1, 0)? as u8;
            let mut rest = [0u8; 4];
            let mut emb = None;
            if let Some(e @ Expr::Method(..)) = args.get(3) {
                emb = Some(embedded(e)?);
                if v6 {
                    rest = (n(2, 0)? as u32).to_be_bytes();
                } else {
                    rest[2..4].copy_from_slice(&(n(2, 0)? as u16).to_be_bytes());
                }
            } else if !v6 && ty == 3 && code == 4 {
                rest[2..4].copy_from_slice(&(n(3, 0)? as u16).to_be_bytes());
            } else if v6 && ty == 2 {
                // The sequence argument is the MTU (16 bits in the constructor).
                rest = ((n(3, 0)? as u16) as u32).to_be_bytes();
            } else {
                rest[0..2].copy_from_slice(&(n(2, 0)? as u16).to_be_bytes());
                rest[2..4].copy_from_slice(&(n(3, 0)? as u16).to_be_bytes());
            }
            b.stack.push(if v6 {
                Hdr::Icmp6 {
                    ty,
                    code,
                    rest,
                    embedded: emb,
                }
            } else {
                Hdr::Icmp {
                    ty,
                    code,
                    rest,
                    embedded: emb,
                }
            });
        }
        "ICMPv6PacketTooBig" | "ICMPFragNeeded" => {
            let v6 = m == "ICMPv6PacketTooBig";
            let mtu = n(0, 0)?;
            let bytes = match &args[1] {
                Expr::Designated(f) => {
                    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                    let gs = |k: &str| -> Result<String, String> {
                        Ok(
                            String::from_utf8_lossy(&ev.bytes(get(k).ok_or(format!("no .{k}"))?)?)
                                .into_owned(),
                        )
                    };
                    let gi = |k: &str, d: u64| get(k).map_or(Ok(d), |e| ev.int(e));
                    let mut e = Builder::new();
                    if v6 {
                        e.stack.push(Hdr::Ip6 {
                            src: ipv6(&gs("srcIP")?)?,
                            dst: ipv6(&gs("dstIP")?)?,
                            hlim: 64,
                            tc: 0,
                            flow: 0,
                            nxt: 0,
                        });
                        e.stack.push(Hdr::Tcp {
                            sport: gi("srcPort", 0)? as u16,
                            dport: gi("dstPort", 0)? as u16,
                            seq: gi("seq", 0)? as u32,
                            ack: gi("ackSeq", 0)? as u32,
                            win: gi("window", 8192)? as u16,
                            flags: gi("flags", 0x10)? as u8,
                            opts: Vec::new(),
                        });
                    } else {
                        e.stack.push(Hdr::Ip4 {
                            src: ipv4(&gs("srcIP")?)?,
                            dst: ipv4(&gs("dstIP")?)?,
                            ttl: gi("ttl", 64)? as u8,
                            tos: gi("tos", 0)? as u8,
                            id: gi("id", 1)? as u16,
                            frag: 0,
                            ihl: 5,
                            proto: 0,
                        });
                        e.stack.push(Hdr::Udp {
                            sport: gi("srcPort", 0)? as u16,
                            dport: gi("dstPort", 0)? as u16,
                            zero: false,
                        });
                    }
                    e.stack.push(Hdr::Payload(match get("payload") {
                        Some(p) => ev.bytes(p)?,
                        None => Vec::new(),
                    }));
                    e.build().map_err(|e| e.0)?
                }
                other => embedded(other)?,
            };
            if v6 {
                b.stack.push(Hdr::Icmp6 {
                    ty: 2,
                    code: 0,
                    rest: (mtu as u32).to_be_bytes(),
                    embedded: Some(bytes),
                });
            } else {
                let mut rest = [0u8; 4];
                rest[2..4].copy_from_slice(&(mtu as u16).to_be_bytes());
                b.stack.push(Hdr::Icmp {
                    ty: 3,
                    code: 4,
                    rest,
                    embedded: Some(bytes),
                });
            }
        }
        "ARP" => {
            if !args.is_empty() {
                return Err("ARP() with arguments not supported".into());
            }
            let mut a = [0u8; 28];
            a[0..2].copy_from_slice(&1u16.to_be_bytes());
            a[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
            a[4] = 6;
            a[5] = 4;
            a[6..8].copy_from_slice(&1u16.to_be_bytes());
            b.stack.push(Hdr::Arp(a));
        }
        "QUICInitial" => b.quic = Some(quic(0x00)),
        "QUIC0RTT" => b.quic = Some(quic(0x10)),
        "QUICHandshake" => b.quic = Some(quic(0x20)),
        "QUICRetry" => b.quic = Some(quic(0x30)),
        "QUICShortHeader" => b.quic = Some(quic(QUIC_SHORT)),
        other => return Err(format!("PacketBuilder::{other} not supported")),
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones_complement_ok(data: &[u8], init: u64) -> bool {
        fold(sum16(data, init)) == 0
    }

    #[test]
    fn checksums_verify() {
        let ev = Eval::default();
        let s = |v: &str| Expr::Str(v.as_bytes().to_vec());
        let mut b = Builder::new();
        b = apply(&ev, b, "Eth", &[s("0x1"), s("0x2")]).unwrap();
        b = apply(&ev, b, "IPv4", &[s("192.168.1.1"), s("10.200.1.1")]).unwrap();
        b = apply(&ev, b, "UDP", &[Expr::Int(31337), Expr::Int(80)]).unwrap();
        b = apply(&ev, b, "payload", &[s("katran test pkt")]).unwrap();
        let p = b.build().unwrap();
        assert!(ones_complement_ok(&p[14..34], 0), "IPv4 header checksum");
        // UDP over the pseudo header.
        let mut pseudo = p[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&p[38..40]);
        assert!(
            ones_complement_ok(&p[34..], sum16(&pseudo, 0)),
            "UDP checksum"
        );
        // Katran's fixture 1 input, as its scapy comment has it (id 1, ttl 64).
        assert_eq!(&p[14..20], &[0x45, 0x00, 0x00, 0x2b, 0x00, 0x01]);
    }
}

//! Evaluation of fixture expressions ([`crate::cpp_expr::Expr`]) into numbers, bytes and
//! packet builders: the constants Katran's headers name, and builder chains applied through
//! [`super::apply`].

use std::collections::BTreeMap;

use super::Builder;
use crate::cpp_expr::Expr;

pub(crate) fn as_str(e: &Expr) -> Result<String, String> {
    match e {
        Expr::Str(s) => Ok(String::from_utf8_lossy(s).into_owned()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

/// The named constants the fixtures use.
fn constants() -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("TH_FIN", 0x01),
        ("TH_SYN", 0x02),
        ("TH_RST", 0x04),
        ("TH_PUSH", 0x08),
        ("TH_ACK", 0x10),
        ("TH_URG", 0x20),
        ("QUIC_V1_WIRE_FORMAT", 0xfaceb001),
        ("ICMPv4Header::ECHO_REPLY", 0),
        ("ICMPv4Header::ECHO_REQUEST", 8),
        ("ICMPv4Header::DEST_UNREACH", 3),
        ("ICMPv4Header::FRAG_NEEDED", 4),
        ("ICMPv4Header::NO_CODE", 0),
        ("ICMPv6Header::ECHO_REQUEST", 128),
        ("ICMPv6Header::ECHO_REPLY", 129),
        ("ICMPv6Header::PACKET_TOO_BIG", 2),
        ("QUICHeader::CID_V1", 1),
        ("QUICHeader::CID_V2", 2),
        ("PacketBuilder::IP_FLAG_MF", 0x20),
        ("PacketBuilder::IP_FLAG_DF", 0x40),
        ("PacketBuilder::IPV6_NH_FRAGMENT", 44),
        ("PacketBuilder::STABLE_UDP_TYPE", 0x52),
        ("IPPROTO_TCP", 6),
        ("IPPROTO_UDP", 17),
    ])
}

/// Evaluation of fixture expressions.
pub struct Eval {
    consts: BTreeMap<&'static str, u64>,
}

impl Default for Eval {
    fn default() -> Self {
        Eval {
            consts: constants(),
        }
    }
}

impl Eval {
    /// An integer argument (names resolved; `|` evaluated).
    pub fn int(&self, e: &Expr) -> Result<u64, String> {
        match e {
            Expr::Int(v) => Ok(*v),
            Expr::Bool(b) => Ok(u64::from(*b)),
            Expr::Name(n) => {
                // Qualified as written, else by its last two components, else its last.
                let parts: Vec<&str> = n.split("::").collect();
                let two = parts[parts.len().saturating_sub(2)..].join("::");
                self.consts
                    .get(n.as_str())
                    .or_else(|| self.consts.get(two.as_str()))
                    .or_else(|| self.consts.get(parts[parts.len() - 1]))
                    .copied()
                    .ok_or_else(|| format!("unknown constant {n}"))
            }
            Expr::Or(a, b) => Ok(self.int(a)? | self.int(b)?),
            other => Err(format!("expected an integer, got {other:?}")),
        }
    }

    /// A byte-string argument: string literal, `repeatString(s, n)`, or `{bytes}`.
    pub fn bytes(&self, e: &Expr) -> Result<Vec<u8>, String> {
        match e {
            // A std::string built from a C string literal stops at the first NUL.
            Expr::Str(s) => Ok(s.split(|&b| b == 0).next().unwrap_or(&[]).to_vec()),
            // std::string(literal, n): the first n bytes, NULs included.
            Expr::Call(f, a) if f == "string" && a.len() == 2 => match &a[0] {
                Expr::Str(s) => {
                    let n = self.int(&a[1])? as usize;
                    let mut v = s.clone();
                    v.resize(n, 0);
                    Ok(v)
                }
                other => Err(format!("std::string of {other:?}")),
            },
            Expr::Call(f, a) if f == "string" && a.len() == 1 => self.bytes(&a[0]),
            Expr::Call(f, a) if f == "repeatString" && a.len() == 2 => {
                let s = self.bytes(&a[0])?;
                let n = self.int(&a[1])? as usize;
                Ok(s.repeat(n))
            }
            Expr::List(items) => items.iter().map(|i| self.int(i).map(|v| v as u8)).collect(),
            other => Err(format!("expected bytes, got {other:?}")),
        }
    }

    /// A `PacketBuilder::newPacket()…` chain, evaluated.
    pub fn builder(&self, e: &Expr) -> Result<Builder, String> {
        match e {
            Expr::Call(f, a) if f == "newPacket" && a.is_empty() => Ok(Builder::new()),
            Expr::Method(recv, m, args) => {
                let b = self.builder(recv)?;
                crate::packet::apply(self, b, m, args)
            }
            other => Err(format!("not a packet builder expression: {other:?}")),
        }
    }
}

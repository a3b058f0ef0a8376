//! Byte encodings of the keys and values of the XDP datapath's maps, mirroring the C
//! structs of `bpf/maglev.bpf.c` (names, sizes and field order must stay in step).
//!
//! | map (pinned name) | type | key | value |
//! |---|---|---|---|
//! | `maglev_services` | HASH_OF_MAPS, 16384 | [`ServiceKey`] (8 B) | inner ARRAY, `BPF_F_INNER_MAP`, value 8 ([`crate::layout`]) |
//! | `maglev_backends` | ARRAY, 524288 | `u32` backend id | [`BackendValue`] (8 B) |
//! | `maglev_conntrack` | LRU_HASH, 262144 | [`CtKey`] (16 B) | [`CtValue`] (8 B) |
//! | `maglev_services6` | HASH_OF_MAPS, 4096 | [`ServiceKey6`] (20 B) | inner ARRAY as above (ids name `maglev_backends6`) |
//! | `maglev_backends6` | ARRAY, 16384 | `u32` backend id | [`BackendValue6`] (20 B) |
//! | `maglev_conntrack6` | LRU_HASH, 65536 | [`CtKey6`] (40 B) | [`CtValue`] (8 B) |
//! | `maglev_config` | ARRAY, 1 | `0u32` | [`Config`] (8 B) |
//! | `maglev_stats` | ARRAY, 5 | [`Stat`] as `u32` | `u64` counter |
//!
//! Addresses and ports are in network byte order on the wire and in these keys, exactly
//! as the program copies them out of the packet; other integers are native-endian.

pub use kbpf_uapi::net::{XDP_DROP, XDP_PASS, XDP_TX};

/// Key of `maglev_services`: `struct svc_key { __be32 vip; __be16 port; __u8 proto; __u8 pad; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// Virtual IPv4 address.
    pub vip: [u8; 4],
    /// Service port (host value; stored big-endian).
    pub port: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub protocol: u8,
}

impl ServiceKey {
    /// The 8 key bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.vip);
        b[4..6].copy_from_slice(&self.port.to_be_bytes());
        b[6] = self.protocol;
        b
    }
}

/// Value of `maglev_backends`: `struct backend { __be32 addr; __be16 port; __u16 flags; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendValue {
    /// Backend IPv4 address; `0.0.0.0` marks an unused id (the program drops, or
    /// re-selects for a conntrack entry pointing at it).
    pub addr: [u8; 4],
    /// Backend port, host value; 0 keeps the service port.
    pub port: u16,
}

impl BackendValue {
    /// The 8 value bytes (flags 0).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.addr);
        b[4..6].copy_from_slice(&self.port.to_be_bytes());
        b
    }

    /// Decodes a value.
    pub fn from_bytes(b: [u8; 8]) -> BackendValue {
        BackendValue {
            addr: [b[0], b[1], b[2], b[3]],
            port: u16::from_be_bytes([b[4], b[5]]),
        }
    }
}

/// Key of `maglev_conntrack`: the 5-tuple as the client sent it
/// (`struct ct_key { __be32 saddr, daddr; __be16 sport, dport; __u8 proto; __u8 pad[3]; }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtKey {
    /// Client address.
    pub saddr: [u8; 4],
    /// VIP.
    pub daddr: [u8; 4],
    /// Client port (host value).
    pub sport: u16,
    /// Service port (host value).
    pub dport: u16,
    /// IP protocol.
    pub protocol: u8,
}

impl CtKey {
    /// The 16 key bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.saddr);
        b[4..8].copy_from_slice(&self.daddr);
        b[8..10].copy_from_slice(&self.sport.to_be_bytes());
        b[10..12].copy_from_slice(&self.dport.to_be_bytes());
        b[12] = self.protocol;
        b
    }
}

/// Value of `maglev_conntrack`: `struct ct_value { __u32 backend_id; __u32 flow_hash; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtValue {
    /// The backend the flow sticks to.
    pub backend_id: u32,
    /// The Maglev flow hash the choice was made with ([`crate::hash::flow_hash_v4`]).
    pub flow_hash: u32,
}

impl CtValue {
    /// Decodes a value.
    pub fn from_bytes(b: [u8; 8]) -> CtValue {
        CtValue {
            backend_id: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            flow_hash: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The 8 value bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.backend_id.to_ne_bytes());
        b[4..8].copy_from_slice(&self.flow_hash.to_ne_bytes());
        b
    }
}

/// Key of `maglev_services6`: `struct svc6_key { __u8 vip[16]; __be16 port; __u8 proto; __u8 pad; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey6 {
    /// Virtual IPv6 address.
    pub vip: [u8; 16],
    /// Service port (host value; stored big-endian).
    pub port: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub protocol: u8,
}

impl ServiceKey6 {
    /// The 20 key bytes.
    pub fn to_bytes(self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..16].copy_from_slice(&self.vip);
        b[16..18].copy_from_slice(&self.port.to_be_bytes());
        b[18] = self.protocol;
        b
    }
}

/// Value of `maglev_backends6`: `struct backend6 { __u8 addr[16]; __be16 port; __u16 flags; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendValue6 {
    /// Backend IPv6 address; `::` marks an unused id.
    pub addr: [u8; 16],
    /// Backend port, host value; 0 keeps the service port.
    pub port: u16,
}

impl BackendValue6 {
    /// The 20 value bytes (flags 0).
    pub fn to_bytes(self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..16].copy_from_slice(&self.addr);
        b[16..18].copy_from_slice(&self.port.to_be_bytes());
        b
    }
}

/// Key of `maglev_conntrack6`:
/// `struct ct6_key { __u8 saddr[16], daddr[16]; __be16 sport, dport; __u8 proto; __u8 pad[3]; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtKey6 {
    /// Client address.
    pub saddr: [u8; 16],
    /// VIP.
    pub daddr: [u8; 16],
    /// Client port (host value).
    pub sport: u16,
    /// Service port (host value).
    pub dport: u16,
    /// IP protocol.
    pub protocol: u8,
}

impl CtKey6 {
    /// The 40 key bytes.
    pub fn to_bytes(self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..16].copy_from_slice(&self.saddr);
        b[16..32].copy_from_slice(&self.daddr);
        b[32..34].copy_from_slice(&self.sport.to_be_bytes());
        b[34..36].copy_from_slice(&self.dport.to_be_bytes());
        b[36] = self.protocol;
        b
    }
}

/// Value of `maglev_config[0]`: `struct config { __u32 hash_seed; __u32 reserved; }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Config {
    /// The `initval` of the flow hash; every load balancer of a service must agree.
    pub hash_seed: u32,
}

impl Config {
    /// The 8 value bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.hash_seed.to_ne_bytes());
        b
    }
}

/// Index of a `maglev_stats` counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Stat {
    /// Not for a service (or not parseable): `XDP_PASS`.
    Pass = 0,
    /// Rewritten and sent: `XDP_TX`.
    Tx = 1,
    /// A service without a usable backend: `XDP_DROP`.
    Drop = 2,
    /// Backend taken from conntrack.
    CtHit = 3,
    /// Backend chosen by Maglev (and written to conntrack).
    CtMiss = 4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let k = ServiceKey {
            vip: [10, 0, 0, 1],
            port: 80,
            protocol: 6,
        };
        assert_eq!(k.to_bytes(), [10, 0, 0, 1, 0, 80, 6, 0]);
        let b = BackendValue {
            addr: [192, 168, 1, 2],
            port: 8080,
        };
        assert_eq!(b.to_bytes(), [192, 168, 1, 2, 0x1f, 0x90, 0, 0]);
        assert_eq!(BackendValue::from_bytes(b.to_bytes()), b);
        let c = CtKey {
            saddr: [1, 2, 3, 4],
            daddr: [5, 6, 7, 8],
            sport: 0x1234,
            dport: 443,
            protocol: 17,
        };
        assert_eq!(
            c.to_bytes(),
            [1, 2, 3, 4, 5, 6, 7, 8, 0x12, 0x34, 0x01, 0xbb, 17, 0, 0, 0]
        );
        let v = CtValue {
            backend_id: 7,
            flow_hash: 0xdead_beef,
        };
        assert_eq!(CtValue::from_bytes(v.to_bytes()), v);
        assert_eq!(
            &Config { hash_seed: 5 }.to_bytes()[..4],
            &5u32.to_ne_bytes()
        );
    }
}

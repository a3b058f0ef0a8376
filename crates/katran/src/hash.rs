//! The hashes Katran's control plane builds its Maglev rings with, rewritten from their
//! definitions: folly's `IPAddress::hash()` (FNV-32 for IPv4, SpookyHash V2 for IPv6, folly's
//! `hash_combine`), Katran's two-word MurmurHash3 and its Maglev (V1) ring fill.

use std::net::IpAddr;

/// folly `hash_128_to_64` (CityHash's Hash128to64).
pub fn hash_128_to_64(upper: u64, lower: u64) -> u64 {
    const K_MUL: u64 = 0x9ddf_ea08_eb38_2d69;
    let mut a = (lower ^ upper).wrapping_mul(K_MUL);
    a ^= a >> 47;
    let mut b = (upper ^ a).wrapping_mul(K_MUL);
    b ^= b >> 47;
    b.wrapping_mul(K_MUL)
}

/// folly's `fnv32_buf` (the "BROKEN" variant it still uses: bytes XOR-ed sign-extended).
pub fn fnv32_buf(buf: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &c in buf {
        h = h
            .wrapping_add(h << 1)
            .wrapping_add(h << 4)
            .wrapping_add(h << 7)
            .wrapping_add(h << 8)
            .wrapping_add(h << 24);
        h ^= (c as i8) as i32 as u32;
    }
    h
}

const SC_CONST: u64 = 0xdead_beef_dead_beef;

fn short_mix(h: &mut [u64; 4]) {
    let rot = |x: u64, k: u32| x.rotate_left(k);
    let [mut h0, mut h1, mut h2, mut h3] = *h;
    h2 = rot(h2, 50);
    h2 = h2.wrapping_add(h3);
    h0 ^= h2;
    h3 = rot(h3, 52);
    h3 = h3.wrapping_add(h0);
    h1 ^= h3;
    h0 = rot(h0, 30);
    h0 = h0.wrapping_add(h1);
    h2 ^= h0;
    h1 = rot(h1, 41);
    h1 = h1.wrapping_add(h2);
    h3 ^= h1;
    h2 = rot(h2, 54);
    h2 = h2.wrapping_add(h3);
    h0 ^= h2;
    h3 = rot(h3, 48);
    h3 = h3.wrapping_add(h0);
    h1 ^= h3;
    h0 = rot(h0, 38);
    h0 = h0.wrapping_add(h1);
    h2 ^= h0;
    h1 = rot(h1, 37);
    h1 = h1.wrapping_add(h2);
    h3 ^= h1;
    h2 = rot(h2, 62);
    h2 = h2.wrapping_add(h3);
    h0 ^= h2;
    h3 = rot(h3, 34);
    h3 = h3.wrapping_add(h0);
    h1 ^= h3;
    h0 = rot(h0, 5);
    h0 = h0.wrapping_add(h1);
    h2 ^= h0;
    h1 = rot(h1, 36);
    h1 = h1.wrapping_add(h2);
    h3 ^= h1;
    *h = [h0, h1, h2, h3];
}

fn short_end(h: &mut [u64; 4]) {
    let rot = |x: u64, k: u32| x.rotate_left(k);
    let [mut h0, mut h1, mut h2, mut h3] = *h;
    h3 ^= h2;
    h2 = rot(h2, 15);
    h3 = h3.wrapping_add(h2);
    h0 ^= h3;
    h3 = rot(h3, 52);
    h0 = h0.wrapping_add(h3);
    h1 ^= h0;
    h0 = rot(h0, 26);
    h1 = h1.wrapping_add(h0);
    h2 ^= h1;
    h1 = rot(h1, 51);
    h2 = h2.wrapping_add(h1);
    h3 ^= h2;
    h2 = rot(h2, 28);
    h3 = h3.wrapping_add(h2);
    h0 ^= h3;
    h3 = rot(h3, 9);
    h0 = h0.wrapping_add(h3);
    h1 ^= h0;
    h0 = rot(h0, 47);
    h1 = h1.wrapping_add(h0);
    h2 ^= h1;
    h1 = rot(h1, 54);
    h2 = h2.wrapping_add(h1);
    h3 ^= h2;
    h2 = rot(h2, 32);
    h3 = h3.wrapping_add(h2);
    h0 ^= h3;
    h3 = rot(h3, 25);
    h0 = h0.wrapping_add(h3);
    h1 ^= h0;
    h0 = rot(h0, 63);
    h1 = h1.wrapping_add(h0);
    *h = [h0, h1, h2, h3];
}

/// SpookyHash V2 `Hash128` of exactly 16 bytes (its short path), seeds `(seed1, seed2)`.
pub fn spooky_v2_hash128_16(msg: &[u8; 16], seed1: u64, seed2: u64) -> (u64, u64) {
    let w0 = u64::from_le_bytes(msg[0..8].try_into().expect("8 bytes"));
    let w1 = u64::from_le_bytes(msg[8..16].try_into().expect("8 bytes"));
    let mut h = [seed1, seed2, SC_CONST, SC_CONST];
    // 16 bytes: no 32-byte block; one 16-byte step, then remainder 0.
    h[2] = h[2].wrapping_add(w0);
    h[3] = h[3].wrapping_add(w1);
    short_mix(&mut h);
    h[3] = h[3].wrapping_add(16u64 << 56);
    h[2] = h[2].wrapping_add(SC_CONST);
    h[3] = h[3].wrapping_add(SC_CONST);
    short_end(&mut h);
    (h[0], h[1])
}

const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;

/// folly `IPAddress::hash()` on x86-64 (std::hash of integers is the identity).
pub fn folly_ip_hash(addr: IpAddr) -> u64 {
    let v4 = match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    match v4 {
        Some(a) => hash_128_to_64(AF_INET, u64::from(fnv32_buf(&a.octets()))),
        None => {
            let IpAddr::V6(a) = addr else { unreachable!() };
            let (h1, h2) = spooky_v2_hash128_16(&a.octets(), 0, 0);
            hash_128_to_64(AF_INET6, hash_128_to_64(h1, h2))
        }
    }
}

/// Katran's `MurmurHash3_x64_64(A, B, seed)`.
pub fn murmur3_x64_64(a: u64, b: u64, seed: u32) -> u64 {
    let c1: u64 = 0x87c3_7b91_1142_53d5;
    let c2: u64 = 0x4cf5_ad43_2745_937f;
    let mut h1 = u64::from(seed);
    let mut h2 = u64::from(seed);
    let mut k1 = a.wrapping_mul(c1);
    k1 = k1.rotate_left(31).wrapping_mul(c2);
    h1 ^= k1;
    h1 = h1.rotate_left(27).wrapping_add(h2);
    h1 = h1.wrapping_mul(5).wrapping_add(0x52dc_e729);
    let mut k2 = b.wrapping_mul(c2);
    k2 = k2.rotate_left(33).wrapping_mul(c1);
    h2 ^= k2;
    h2 = h2.rotate_left(31).wrapping_add(h1);
    h2 = h2.wrapping_mul(5).wrapping_add(0x3849_5ab5);
    h1 ^= 16;
    h2 ^= 16;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let fmix = |mut k: u64| {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    };
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1.wrapping_add(h2)
}

/// One endpoint of a ring: real number, weight, address hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Index into `reals`.
    pub num: u32,
    /// Weight.
    pub weight: u32,
    /// `folly::IPAddress::hash()` of the real.
    pub hash: u64,
}

/// Katran's `MaglevHash::generateHashRing` (V1, the default `HashFunction::Maglev`);
/// endpoints in the order given (Katran sorts them by hash first). `-1`: unassigned.
pub fn maglev_ring(endpoints: &[Endpoint], ring_size: u32) -> Vec<i64> {
    let mut result = vec![-1i64; ring_size as usize];
    if endpoints.is_empty() {
        return result;
    }
    if endpoints.len() == 1 {
        result.fill(i64::from(endpoints[0].num));
        return result;
    }
    let mut weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
    let perm: Vec<(u64, u64)> = endpoints
        .iter()
        .map(|e| {
            let offset = murmur3_x64_64(e.hash, 42, 0) % u64::from(ring_size);
            let skip = murmur3_x64_64(e.hash, 2_718_281_828, 2307) % u64::from(ring_size - 1) + 1;
            // Katran keeps both in uint32_t.
            (offset as u32 as u64, skip as u32 as u64)
        })
        .collect();
    let mut next = vec![0u32; endpoints.len()];
    let mut runs = 0u32;
    loop {
        for i in 0..endpoints.len() {
            let (offset, skip) = perm[i];
            for _ in 0..weights[i] {
                // uint32_t arithmetic, as in Katran.
                let slot =
                    |n: u32| (offset as u32).wrapping_add(n.wrapping_mul(skip as u32)) % ring_size;
                let mut cur = slot(next[i]);
                while result[cur as usize] >= 0 {
                    next[i] += 1;
                    cur = slot(next[i]);
                }
                result[cur as usize] = i64::from(endpoints[i].num);
                next[i] += 1;
                runs += 1;
                if runs == ring_size {
                    return result;
                }
            }
            weights[i] = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv32_known_value() {
        // FNV-1 32 of "a" (ASCII < 0x80, so the sign extension does not matter).
        assert_eq!(fnv32_buf(b"a"), 0x050c_5d7e);
    }

    #[test]
    fn ring_is_full_and_balanced() {
        let eps: Vec<Endpoint> = (1..=3)
            .map(|n| Endpoint {
                num: n,
                weight: 1,
                hash: folly_ip_hash(format!("10.0.0.{n}").parse().unwrap()),
            })
            .collect();
        let ring = maglev_ring(&eps, 65537);
        assert!(ring.iter().all(|&r| (1..=3).contains(&r)));
        for n in 1..=3 {
            let c = ring.iter().filter(|&&r| r == n).count();
            assert!((21845..=21846).contains(&c), "{n}: {c}");
        }
    }
}

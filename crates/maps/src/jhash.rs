//! Bob Jenkins' lookup3 hash as the kernel's `include/linux/jhash.h` has it (`jhash`, `jhash2`),
//! and `htab_map_hash`, which picks between them. Ported so that a hash map created with
//! `BPF_F_ZERO_SEED` places keys in the same buckets — and iterates in the same order — as the
//! kernel's.

/// `JHASH_INITVAL`: an arbitrary start value.
pub const JHASH_INITVAL: u32 = 0xdead_beef;

#[inline(always)]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    // __jhash_mix
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline(always)]
fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    // __jhash_final
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn word(k: &[u8], at: usize) -> u32 {
    // __get_unaligned_cpu32 on a little-endian host.
    u32::from_le_bytes([k[at], k[at + 1], k[at + 2], k[at + 3]])
}

/// The kernel's `jhash_3words(a, b, c, initval)` (include/linux/jhash.h): the final mix over
/// three words, as flow hashes in BPF programs use it.
pub fn jhash_3words(a: u32, b: u32, c: u32, initval: u32) -> u32 {
    let init = initval.wrapping_add(JHASH_INITVAL).wrapping_add(3 << 2);
    let (mut a, mut b, mut c) = (
        a.wrapping_add(init),
        b.wrapping_add(init),
        c.wrapping_add(init),
    );
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `jhash(key, length, initval)` over arbitrary bytes.
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut length = key.len() as u32;
    let mut a = JHASH_INITVAL.wrapping_add(length).wrapping_add(initval);
    let mut b = a;
    let mut c = a;
    let mut k = key;
    while length > 12 {
        a = a.wrapping_add(word(k, 0));
        b = b.wrapping_add(word(k, 4));
        c = c.wrapping_add(word(k, 8));
        mix(&mut a, &mut b, &mut c);
        length -= 12;
        k = &k[12..];
    }
    if length == 0 {
        return c;
    }
    // The kernel's fall-through switch: add the 1..=12 remaining bytes, highest first.
    let byte = |i: usize| k[i] as u32;
    let l = length as usize;
    if l >= 12 {
        c = c.wrapping_add(byte(11) << 24);
    }
    if l >= 11 {
        c = c.wrapping_add(byte(10) << 16);
    }
    if l >= 10 {
        c = c.wrapping_add(byte(9) << 8);
    }
    if l >= 9 {
        c = c.wrapping_add(byte(8));
    }
    if l >= 8 {
        b = b.wrapping_add(byte(7) << 24);
    }
    if l >= 7 {
        b = b.wrapping_add(byte(6) << 16);
    }
    if l >= 6 {
        b = b.wrapping_add(byte(5) << 8);
    }
    if l >= 5 {
        b = b.wrapping_add(byte(4));
    }
    if l >= 4 {
        a = a.wrapping_add(byte(3) << 24);
    }
    if l >= 3 {
        a = a.wrapping_add(byte(2) << 16);
    }
    if l >= 2 {
        a = a.wrapping_add(byte(1) << 8);
    }
    a = a.wrapping_add(byte(0));
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `jhash2(k, length_in_words, initval)` over 32-bit words.
#[inline]
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    let mut length = k.len() as u32;
    let mut a = JHASH_INITVAL
        .wrapping_add(length << 2)
        .wrapping_add(initval);
    let mut b = a;
    let mut c = a;
    let mut k = k;
    while length > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        length -= 3;
        k = &k[3..];
    }
    if (1..=3).contains(&length) {
        if length == 3 {
            c = c.wrapping_add(k[2]);
        }
        if length >= 2 {
            b = b.wrapping_add(k[1]);
        }
        a = a.wrapping_add(k[0]);
        final_mix(&mut a, &mut b, &mut c);
    }
    c
}

/// `htab_map_hash`: `jhash2` over the key's 32-bit words when `key.len() % 4 == 0`,
/// byte-wise `jhash` otherwise.
pub fn htab_map_hash(key: &[u8], hashrnd: u32) -> u32 {
    if key.len().is_multiple_of(4) {
        // Keys are read as native-endian words, as the kernel casts `key` to `u32 *`.
        let mut words = [0u32; 16];
        let n = key.len() / 4;
        if n <= words.len() {
            for (i, w) in words[..n].iter_mut().enumerate() {
                *w = word(key, i * 4);
            }
            jhash2(&words[..n], hashrnd)
        } else {
            let v: Vec<u32> = (0..n).map(|i| word(key, i * 4)).collect();
            jhash2(&v, hashrnd)
        }
    } else {
        jhash(key, hashrnd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jhash_and_jhash2_agree_on_word_aligned_input() {
        // lookup3's hashword and hashlittle agree on little-endian hosts for whole words.
        for len in [1usize, 2, 3, 4, 5, 7] {
            let words: Vec<u32> = (0..len as u32)
                .map(|i| i.wrapping_mul(0x9e37_79b9) ^ 7)
                .collect();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            for seed in [0u32, 1, 0xdead_beef] {
                assert_eq!(
                    jhash(&bytes, seed),
                    jhash2(&words, seed),
                    "len {len} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn empty_input_returns_initial_state() {
        assert_eq!(jhash(&[], 0), JHASH_INITVAL);
        assert_eq!(jhash2(&[], 5), JHASH_INITVAL + 5);
    }

    #[test]
    fn lookup3_reference_values() {
        // Bob Jenkins' lookup3.c driver5: hashlittle("", 0, 0) = 0xdeadbeef,
        // hashlittle("Four score and seven years ago", 30, 0) = 0x17770551,
        // with initval 1: 0xcd628161.
        let s = b"Four score and seven years ago";
        assert_eq!(jhash(s, 0), 0x1777_0551);
        assert_eq!(jhash(s, 1), 0xcd62_8161);
    }
}

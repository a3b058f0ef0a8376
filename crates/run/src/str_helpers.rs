//! The string helpers: `bpf_strtoul` and `bpf_strtol` as `kernel/bpf/helpers.c` parses
//! (`__bpf_strtoull`: leading white space, a sign, the radix prefix, at most 63 characters).

use kbpf_uapi::errno;

/// `BPF_STRTOX_BASE_MASK`.
const BPF_STRTOX_BASE_MASK: u64 = 0x1f;
const EINVAL: i64 = -(errno::EINVAL as i64);
const ERANGE: i64 = -(errno::ERANGE as i64);

/// The kernel's `isspace` (lib/ctype.c: also 0xa0, Latin-1's no-break space).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// `__bpf_strtoull`: (characters consumed, value, negative), or a negative errno.
fn strtoull(buf: &[u8], flags: u64) -> Result<(i64, u64, bool), i64> {
    let mut base = (flags & BPF_STRTOX_BASE_MASK) as u32;
    if buf.is_empty() || !matches!(base, 0 | 8 | 10 | 16) || flags & !BPF_STRTOX_BASE_MASK != 0 {
        return Err(EINVAL);
    }
    let mut i = buf.iter().take_while(|&&c| is_space(c)).count();
    let negative = buf.get(i) == Some(&b'-');
    i += usize::from(negative);
    if i == buf.len() {
        return Err(EINVAL);
    }
    // The copy into `char str[64]`, NUL-terminated.
    let s = &buf[i..buf.len().min(i + 63)];
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    // _parse_integer_fixup_radix.
    if base == 0 {
        base = if at(0) == b'0' {
            if at(1).eq_ignore_ascii_case(&b'x') && at(2).is_ascii_hexdigit() {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    let mut p = 0;
    if base == 16 && at(0) == b'0' && at(1).eq_ignore_ascii_case(&b'x') {
        p = 2;
    }
    // _parse_integer: digits of the base; an overflow is remembered, not a stop.
    let (mut value, mut overflow, start) = (0u64, false, p);
    while let Some(d) = (at(p) as char).to_digit(16).filter(|&d| d < base) {
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        p += 1;
    }
    if overflow {
        return Err(ERANGE);
    }
    if p == start {
        return Err(EINVAL);
    }
    Ok(((i + p) as i64, value, negative))
}

/// `bpf_strtoul(buf, buf_len, flags, res)`: characters consumed, with the value in `*res`;
/// `-EINVAL` for a negative number or no digits, `-ERANGE` on overflow.
pub(crate) unsafe extern "C" fn bpf_strtoul(
    buf: u64,
    len: u64,
    flags: u64,
    res: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked `buf` as `len` readable bytes (ARG_PTR_TO_MEM |
    // MEM_RDONLY, ARG_CONST_SIZE) and `res` as 8 writable bytes of the stack.
    let buf: &[u8] = if len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(buf as *const u8, len as usize) }
    };
    match strtoull(buf, flags) {
        Ok((_, _, true)) => EINVAL as u64,
        Ok((n, v, false)) => {
            // SAFETY: as above.
            unsafe { (res as *mut u64).write_unaligned(v) };
            n as u64
        }
        Err(e) => e as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_the_kernel() {
        assert_eq!(strtoull(b"  123abc", 10), Ok((5, 123, false)));
        assert_eq!(strtoull(b"0x1f", 0), Ok((4, 31, false)));
        assert_eq!(strtoull(b"0x1f", 16), Ok((4, 31, false)));
        assert_eq!(strtoull(b"017", 0), Ok((3, 15, false)));
        assert_eq!(strtoull(b"-5", 0), Ok((2, 5, true)));
        assert_eq!(strtoull(b"0x", 0), Ok((1, 0, false)), "0 then x: octal 0");
        assert_eq!(strtoull(b"   ", 0), Err(EINVAL));
        assert_eq!(strtoull(b"z", 10), Err(EINVAL));
        assert_eq!(strtoull(b"1", 3), Err(EINVAL));
        assert_eq!(strtoull(b"99999999999999999999", 10), Err(ERANGE));
        assert_eq!(
            strtoull(b"12\x0012", 10),
            Ok((2, 12, false)),
            "the NUL ends it"
        );
    }
}

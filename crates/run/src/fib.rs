//! `bpf_fib_lookup` (helper 69): `bpf_xdp_fib_lookup`, and what both kernel functions share
//! (the argument checks, the copy of `struct bpf_fib_lookup` in and out of the program's
//! memory); `bpf_skb_fib_lookup`'s skb-side MTU check is with the other skb helpers
//! (`skb_helpers`), so that this module needs no context type. The routing
//! decision itself is the host's, made in the calling thread's network namespace
//! ([`kbpf_kernel::fib`]): a test run's thread, or the thread `kbpf net attach` runs in the
//! client's namespace — where the kernel would use the namespace of the device the packet
//! arrived on.

use kbpf_kernel::fib::{BPF_FIB_LOOKUP_MASK, BPF_FIB_LOOKUP_SIZE, FibParams, fib_lookup};

const EINVAL: i64 = -(kbpf_uapi::errno::EINVAL as i64);

/// The checks both variants start with: `plen` at least the struct's size, no unknown flag.
fn checked(plen: u64, flags: u64) -> Result<(), i64> {
    // `int plen` compared with a size_t: a negative length is huge, so it passes.
    if (plen as i32 as i64 as u64) < BPF_FIB_LOOKUP_SIZE as u64 {
        return Err(EINVAL);
    }
    if flags as u32 & !BPF_FIB_LOOKUP_MASK != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// After the argument checks ([`checked`]), runs `f` on a copy of the program's `struct
/// bpf_fib_lookup` at `params` and writes the copy back, as the kernel's in-place updates
/// leave it; the helper's return value.
///
/// # Safety
/// `params` must point to `plen` readable and writable bytes (ARG_PTR_TO_MEM with
/// ARG_CONST_SIZE: the verifier checked them).
pub(crate) unsafe fn with_params(
    params: u64,
    plen: u64,
    flags: u64,
    f: impl FnOnce(&mut FibParams) -> i64,
) -> u64 {
    if let Err(e) = checked(plen, flags) {
        return e as u64;
    }
    let p = params as *mut [u8; BPF_FIB_LOOKUP_SIZE];
    // SAFETY: the caller's contract, `plen` ≥ 64 after the checks; unaligned because a
    // program may pass any address.
    let mut copy = FibParams(unsafe { p.read_unaligned() });
    let rc = f(&mut copy);
    // SAFETY: as above.
    unsafe { p.write_unaligned(copy.0) };
    rc as u64
}

/// `bpf_xdp_fib_lookup(ctx, params, plen, flags)`: the MTU is always checked against
/// `tot_len`.
pub(crate) unsafe extern "C" fn bpf_xdp_fib_lookup(
    _ctx: u64,
    params: u64,
    plen: u64,
    flags: u64,
    _: u64,
) -> u64 {
    // SAFETY: `params` is the program's ARG_PTR_TO_MEM of `plen` bytes.
    unsafe { with_params(params, plen, flags, |p| fib_lookup(p, flags as u32, true)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb_helpers::bpf_skb_fib_lookup;

    /// The argument checks come before any lookup: a short `plen` or an unknown flag is
    /// `-EINVAL` and leaves the struct alone; an unknown family is `-EAFNOSUPPORT`. (A
    /// negative `plen` passes, being huge as a `size_t`; flags above bit 31 are dropped by
    /// the `u32` argument: [`checked`] accepts both.)
    #[test]
    fn plen_flags_and_family_errors() {
        let mut params = [0xa5u8; 64];
        params[0] = 2; // AF_INET
        let before = params;
        let mut skb = crate::ctx::SkBuff::new(&[0u8; 64], 14, 0, 0x0008, 0);
        let skb_ctx = skb.ctx_ptr();
        for (plen, flags) in [
            (63u64, 0u64),
            (0, 0),
            (64, 1 << 6),
            (64, 1 << 31),
            (u64::MAX, 1 << 7),
        ] {
            let addr = params.as_mut_ptr() as u64;
            // SAFETY: `addr` is 64 writable bytes; the checks fail before any access.
            unsafe {
                let xdp = bpf_xdp_fib_lookup(0, addr, plen, flags, 0);
                assert_eq!(xdp, EINVAL as u64, "xdp {plen} {flags:#x}");
                let skb = bpf_skb_fib_lookup(skb_ctx, addr, plen, flags, 0);
                assert_eq!(skb, EINVAL as u64, "skb {plen} {flags:#x}");
            }
            assert_eq!(params, before);
        }
        assert_eq!(checked(u64::MAX, 0), Ok(()));
        assert_eq!(checked(64, 1 << 40), Ok(()));
        assert_eq!(checked(64, u64::from(BPF_FIB_LOOKUP_MASK)), Ok(()));
        params[0] = 99;
        let addr = params.as_mut_ptr() as u64;
        // SAFETY: `addr` is 64 writable bytes.
        unsafe {
            assert_eq!(bpf_xdp_fib_lookup(0, addr, 64, 0, 0), (-97i64) as u64);
            assert_eq!(bpf_skb_fib_lookup(skb_ctx, addr, 64, 0, 0), (-97i64) as u64);
        }
    }
}

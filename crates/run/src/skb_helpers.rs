//! The `sk_buff` helpers of socket filters and tc programs (`bpf_skb_load_bytes`,
//! `bpf_skb_store_bytes`, `bpf_get_hash_recalc`, `bpf_csum_update`), on kbpf's run-time
//! `sk_buff` ([`crate::ctx::SkBuff`]): its packet is linear, so `skb->len` bytes from
//! `skb->data` are all there is (the kernel's `skb_header_pointer` over a linear skb).

use kbpf_rewrite::ctx::skb as off;

const EFAULT: u64 = (-14i64) as u64;
const EINVAL: u64 = (-22i64) as u64;
const ENOTSUPP: u64 = (-524i64) as u64;

/// `BPF_F_RECOMPUTE_CSUM` | `BPF_F_INVALIDATE_HASH`: the flags `bpf_skb_store_bytes` knows.
const STORE_FLAGS: u64 = (1 << 0) | (1 << 1);

/// The packet of the `sk_buff` at `skb`: its data pointer and length.
///
/// # Safety
/// `skb` must be the context pointer of a live [`crate::ctx::SkBuff`].
unsafe fn packet(skb: u64) -> (*mut u8, usize) {
    // SAFETY: the caller's contract; the fields sit at the kernel's offsets in the image.
    unsafe {
        let base = skb as *const u8;
        let data = (base.add(off::SKB_DATA as usize) as *const u64).read_unaligned();
        let len = (base.add(off::SKB_LEN as usize) as *const u32).read_unaligned();
        (data as *mut u8, len as usize)
    }
}

/// `bpf_skb_load_bytes(skb, offset, to, len)`: `len` bytes at `offset` of the packet, or
/// `-EFAULT` with `to` zeroed when they are not all there.
pub(crate) unsafe extern "C" fn bpf_skb_load_bytes(
    skb: u64,
    offset: u64,
    to: u64,
    len: u64,
    _: u64,
) -> u64 {
    let (offset, len) = (offset as u32, len as u32 as usize);
    // SAFETY: the verifier checked `skb` as the context and `to` as `len` writable bytes.
    unsafe {
        let (data, plen) = packet(skb);
        if offset > 0xffff || offset as usize + len > plen {
            std::ptr::write_bytes(to as *mut u8, 0, len);
            return EFAULT;
        }
        std::ptr::copy_nonoverlapping(data.add(offset as usize), to as *mut u8, len);
    }
    0
}

/// `bpf_skb_store_bytes(skb, offset, from, len, flags)`: writes `len` bytes at `offset`;
/// `-EINVAL` for unknown flags, `-EFAULT` past the packet. kbpf's skbs carry no checksum
/// state (`CHECKSUM_NONE`), so `BPF_F_RECOMPUTE_CSUM` has nothing to update.
pub(crate) unsafe extern "C" fn bpf_skb_store_bytes(
    skb: u64,
    offset: u64,
    from: u64,
    len: u64,
    flags: u64,
) -> u64 {
    if flags & !STORE_FLAGS != 0 {
        return EINVAL;
    }
    let (offset, len) = (offset as u32, len as u32 as usize);
    // SAFETY: the verifier checked `skb` as the context and `from` as `len` readable bytes.
    unsafe {
        let (data, plen) = packet(skb);
        if offset > 0xffff || offset as usize + len > plen {
            return EFAULT;
        }
        std::ptr::copy(from as *const u8, data.add(offset as usize), len);
        if flags & (1 << 1) != 0 {
            // BPF_F_INVALIDATE_HASH: skb_clear_hash.
            (((skb as *mut u8).add(off::SKB_HASH as usize)) as *mut u32).write_unaligned(0);
        }
    }
    0
}

/// `bpf_get_hash_recalc(skb)`: the skb's flow hash (kbpf keeps the one the skb has).
pub(crate) unsafe extern "C" fn bpf_get_hash_recalc(
    skb: u64,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked `skb` as the context.
    unsafe {
        ((skb as *const u8).add(off::SKB_HASH as usize) as *const u32).read_unaligned() as u64
    }
}

/// `bpf_csum_update(skb, csum)`: only a `CHECKSUM_COMPLETE` skb has a checksum to update;
/// kbpf's are `CHECKSUM_NONE`: `-ENOTSUPP`, as the kernel answers for them.
pub(crate) unsafe extern "C" fn bpf_csum_update(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    ENOTSUPP
}

//! The `sk_buff` helpers of socket filters and tc programs (`bpf_skb_load_bytes`,
//! `bpf_skb_store_bytes`, `bpf_get_hash_recalc`, `bpf_csum_update`, `bpf_skb_adjust_room`,
//! `bpf_skb_set_tunnel_key`, `bpf_skb_fib_lookup`'s skb side), on kbpf's run-time
//! `sk_buff` ([`crate::ctx::SkBuff`]): its packet is linear, so `skb->len` bytes from
//! `skb->data` are all there is (the kernel's `skb_header_pointer` over a linear skb).

use kbpf_rewrite::ctx::skb as off;
use kbpf_uapi::errno;

use crate::ctx::SkBuff;

const EFAULT: u64 = (-(errno::EFAULT as i64)) as u64;
const EINVAL: u64 = (-(errno::EINVAL as i64)) as u64;
const ENOTSUPP: u64 = (-(errno::ENOTSUPP as i64)) as u64;

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

const ENOTSUPP_I: i64 = -(errno::ENOTSUPP as i64);
const EINVAL_I: i64 = -(errno::EINVAL as i64);
const EFAULT_I: i64 = -(errno::EFAULT as i64);
const ENOMEM_I: i64 = -(errno::ENOMEM as i64);
const EALREADY_I: i64 = -(errno::EALREADY as i64);

/// `ETH_P_IP` / `ETH_P_IPV6` as `skb->protocol` holds them (network byte order).
const ETH_P_IP_BE: u16 = 0x0800u16.to_be();
const ETH_P_IPV6_BE: u16 = 0x86DDu16.to_be();
/// `sizeof(struct iphdr)`, `sizeof(struct ipv6hdr)`.
const IPV4_HLEN: u32 = 20;
const IPV6_HLEN: u32 = 40;

/// `bpf_skb_adjust_room`'s modes and flags (uapi `BPF_ADJ_ROOM_*`, `BPF_F_ADJ_ROOM_*`).
mod adj {
    pub const NET: u32 = 0;
    pub const MAC: u32 = 1;
    pub const FIXED_GSO: u64 = 1 << 0;
    pub const ENCAP_L3_IPV4: u64 = 1 << 1;
    pub const ENCAP_L3_IPV6: u64 = 1 << 2;
    pub const ENCAP_L4_GRE: u64 = 1 << 3;
    pub const ENCAP_L4_UDP: u64 = 1 << 4;
    pub const NO_CSUM_RESET: u64 = 1 << 5;
    pub const ENCAP_L2_ETH: u64 = 1 << 6;
    pub const DECAP_L3_IPV4: u64 = 1 << 7;
    pub const DECAP_L3_IPV6: u64 = 1 << 8;
    pub const ENCAP_L2_SHIFT: u32 = 56;
    pub const ENCAP_L2_MASK: u64 = 0xff << ENCAP_L2_SHIFT;
    pub const ENCAP_L3: u64 = ENCAP_L3_IPV4 | ENCAP_L3_IPV6;
    pub const DECAP_L3: u64 = DECAP_L3_IPV4 | DECAP_L3_IPV6;
    /// `BPF_F_ADJ_ROOM_MASK | BPF_F_ADJ_ROOM_NO_CSUM_RESET`.
    pub const ALL: u64 = FIXED_GSO
        | ENCAP_L3
        | ENCAP_L4_GRE
        | ENCAP_L4_UDP
        | ENCAP_L2_ETH
        | ENCAP_L2_MASK
        | DECAP_L3
        | NO_CSUM_RESET;
}

/// `bpf_skb_net_base_len`: the smallest network header of the skb's protocol.
fn net_base_len(protocol_be: u16) -> u32 {
    match protocol_be {
        ETH_P_IP_BE => IPV4_HLEN,
        ETH_P_IPV6_BE => IPV6_HLEN,
        _ => u32::MAX,
    }
}

/// `bpf_skb_adjust_room(skb, len_diff, mode, flags)` as Linux 6.12 does it on a linear skb
/// without GSO state (a test run's): grows (`bpf_skb_net_grow`: `len_diff` zeroed bytes
/// inserted at the MAC header's end, or after the base network header in
/// `BPF_ADJ_ROOM_NET` mode; with `BPF_F_ADJ_ROOM_ENCAP_L3_*` the skb becomes encapsulated and
/// its protocol the outer one) or shrinks (`bpf_skb_net_shrink`) the room, with the kernel's
/// errno for each refused case. A GSO skb (`gso_size` set through `__sk_buff`) has no
/// `SKB_GSO_UDP_L4` type in a test run, so it is refused with `-ENOTSUPP` as the kernel does.
pub(crate) unsafe extern "C" fn bpf_skb_adjust_room(
    skb: u64,
    len_diff: u64,
    mode: u64,
    flags: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked r1 as the program's context, a live `SkBuff` of kbpf's
    // test run; the program is suspended in this call.
    let skb = unsafe { SkBuff::from_ctx(skb) };
    adjust_room(skb, len_diff as i32, mode as u32, flags) as u64
}

/// The body of [`bpf_skb_adjust_room`].
pub(crate) fn adjust_room(skb: &mut SkBuff, len_diff: i32, mode: u32, flags: u64) -> i64 {
    let diff = len_diff.unsigned_abs();
    let shrink = len_diff < 0;
    let proto = skb.protocol_be();
    let mut len_min = net_base_len(proto);
    if flags & !adj::ALL != 0 {
        return EINVAL_I;
    }
    if diff > 0xfff {
        return EFAULT_I;
    }
    if proto != ETH_P_IP_BE && proto != ETH_P_IPV6_BE {
        return ENOTSUPP_I;
    }
    let off = match mode {
        adj::NET => skb.mac_len as u32 + net_base_len(proto),
        adj::MAC => skb.mac_len as u32,
        _ => return ENOTSUPP_I,
    };
    if flags & adj::DECAP_L3 != 0 {
        if !shrink {
            return EINVAL_I;
        }
        len_min = match flags & adj::DECAP_L3 {
            adj::DECAP_L3_IPV4 => IPV4_HLEN,
            adj::DECAP_L3_IPV6 => IPV6_HLEN,
            _ => return EINVAL_I,
        };
    }
    let len = skb.len() as u32;
    let len_cur = len.wrapping_sub(skb.network_off as u32);
    // BPF_SKB_MAX_LEN (SKB_MAX_ALLOC) is out of reach: packets and len_diff are smaller.
    if shrink && (diff >= len_cur || len_cur - diff < len_min) {
        return ENOTSUPP_I;
    }
    // skb_is_gso && !skb_is_gso_tcp, without SKB_GSO_UDP_L4: a test run sets no gso_type.
    let gso = skb.gso_size != 0;
    let (off, diff) = (off as usize, diff as usize);
    if shrink {
        if flags & !(adj::FIXED_GSO | adj::DECAP_L3 | adj::NO_CSUM_RESET) != 0 {
            return EINVAL_I;
        }
        if gso {
            return ENOTSUPP_I;
        }
        // bpf_skb_generic_pop: pskb_may_pull(off + len) on a linear skb.
        if off + diff > skb.len() {
            return ENOMEM_I;
        }
        skb.data_mut().copy_within(0..off, diff);
        skb.pull(diff);
        if proto == ETH_P_IP_BE && flags & adj::DECAP_L3_IPV6 != 0 {
            skb.set_protocol_be(ETH_P_IPV6_BE);
        } else if proto == ETH_P_IPV6_BE && flags & adj::DECAP_L3_IPV4 != 0 {
            skb.set_protocol_be(ETH_P_IP_BE);
        }
        return 0;
    }
    // bpf_skb_net_grow.
    if gso {
        return ENOTSUPP_I;
    }
    let inner_mac_len = (flags >> adj::ENCAP_L2_SHIFT) as usize;
    let encap = flags & adj::ENCAP_L3 != 0;
    if encap {
        if flags & adj::ENCAP_L3 == adj::ENCAP_L3 {
            return EINVAL_I;
        }
        if flags & (adj::ENCAP_L4_GRE | adj::ENCAP_L4_UDP) == adj::ENCAP_L4_GRE | adj::ENCAP_L4_UDP
        {
            return EINVAL_I;
        }
        if flags & adj::ENCAP_L2_ETH != 0 && inner_mac_len < crate::ctx::ETH_HLEN {
            return EINVAL_I;
        }
        if skb.encapsulation {
            return EALREADY_I;
        }
        if inner_mac_len > diff {
            return EINVAL_I;
        }
    }
    if off > skb.len() {
        // The kernel moves `off` bytes that a verified program's skb always has (the MAC
        // header, plus the base network header in NET mode); a shorter packet is refused
        // rather than read past.
        return EFAULT_I;
    }
    // bpf_skb_generic_push: push, move the first `off` bytes to the front, zero the gap.
    skb.push(diff);
    let data = skb.data_mut();
    data.copy_within(diff..diff + off, 0);
    data[off..off + diff].fill(0);
    if encap {
        skb.encapsulation = true;
        skb.network_off = skb.mac_len;
        if proto == ETH_P_IP_BE && flags & adj::ENCAP_L3_IPV6 != 0 {
            skb.set_protocol_be(ETH_P_IPV6_BE);
        } else if proto == ETH_P_IPV6_BE && flags & adj::ENCAP_L3_IPV4 != 0 {
            skb.set_protocol_be(ETH_P_IP_BE);
        }
    }
    0
}

/// `BPF_SKB_MAX_LEN` (`SKB_MAX_ALLOC`): four pages less `SKB_DATA_ALIGN(sizeof(struct
/// skb_shared_info))`, 320 bytes on the 6.18 builds kbpf has met.
const BPF_SKB_MAX_LEN: u32 = (4096 << 2) - 320;

/// `bpf_skb_change_head(skb, head_room, flags)` (`__bpf_skb_change_head`): `head_room`
/// zeroed bytes pushed in front of the packet, which become its new MAC header (an L3
/// packet given room for an L2 header before a redirect); the network header and the
/// protocol stay. `-EINVAL` for flags, and for a result above `BPF_SKB_MAX_LEN` or past
/// `u32` (a GSO skb may exceed the limit).
pub(crate) unsafe extern "C" fn bpf_skb_change_head(
    skb: u64,
    head_room: u64,
    flags: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked r1 as the program's context, a live `SkBuff` of kbpf's
    // test run; the program is suspended in this call.
    let skb = unsafe { SkBuff::from_ctx(skb) };
    change_head(skb, head_room as u32, flags) as u64
}

/// The body of [`bpf_skb_change_head`].
pub(crate) fn change_head(skb: &mut SkBuff, head_room: u32, flags: u64) -> i64 {
    let len = skb.len() as u32;
    let Some(new_len) = len.checked_add(head_room) else {
        return EINVAL_I;
    };
    if flags != 0 || (skb.gso_size == 0 && new_len > BPF_SKB_MAX_LEN) {
        return EINVAL_I;
    }
    let n = head_room as usize;
    skb.push(n);
    skb.data_mut()[..n].fill(0);
    // skb_reset_mac_header + skb_reset_mac_len: the MAC header starts at the new data and
    // ends where the (unmoved) network header starts.
    skb.network_off += n;
    skb.mac_len = skb.network_off;
    0
}

/// `bpf_skb_pull_data(skb, len)` (`bpf_try_make_writable` with `len ?: skb_headlen`): kbpf's
/// skbs are linear and never cloned, so every byte up to `len` is already writable;
/// `-ENOMEM` past the packet (`pskb_may_pull` fails), `-EINVAL` above `INT_MAX`. Also the
/// call of the tc prologue (`kbpf_rewrite::ctx::skb::unclone_prologue`).
pub(crate) unsafe extern "C" fn bpf_skb_pull_data(
    skb: u64,
    len: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: r1 is the program's context, a live `SkBuff` (verifier-checked).
    let skb = unsafe { SkBuff::from_ctx(skb) };
    let len = len as u32;
    let want = if len == 0 {
        skb.len() as u64
    } else {
        len as u64
    };
    let r = if want > i32::MAX as u64 {
        EINVAL_I
    } else if want as usize > skb.len() {
        ENOMEM_I
    } else {
        0
    };
    r as u64
}

/// `bpf_skb_set_tunnel_key` flags: `BPF_F_TUNINFO_IPV6`, `BPF_F_ZERO_CSUM_TX`,
/// `BPF_F_DONT_FRAGMENT`, `BPF_F_SEQ_NUMBER`, `BPF_F_NO_TUNNEL_KEY`.
const BPF_F_TUNINFO_IPV6: u64 = 1 << 0;
const TUNNEL_KEY_FLAGS: u64 = 0x1f;
/// `sizeof(struct bpf_tunnel_key)`.
const TUNNEL_KEY_SIZE: usize = 44;
/// The sizes of older `struct bpf_tunnel_key` layouts the kernel still takes (zero-extended):
/// up to `remote_ipv6[1]`, `tunnel_ext`, `tunnel_label`, `local_ipv6[0]`.
const TUNNEL_KEY_COMPAT_SIZES: [usize; 4] = [8, 22, 24, 28];

/// `bpf_skb_set_tunnel_key(skb, key, size, flags)`: checks as the kernel does (flags, the
/// accepted sizes, no `tunnel_label` without `BPF_F_TUNINFO_IPV6`, no `tunnel_ext`) and
/// attaches the metadata to the skb (replacing any earlier); no packet byte changes.
pub(crate) unsafe extern "C" fn bpf_skb_set_tunnel_key(
    skb: u64,
    from: u64,
    size: u64,
    flags: u64,
    _: u64,
) -> u64 {
    let size = size as u32 as usize;
    if size != TUNNEL_KEY_SIZE && !TUNNEL_KEY_COMPAT_SIZES.contains(&size) {
        return EINVAL;
    }
    let mut k = [0u8; TUNNEL_KEY_SIZE];
    // SAFETY: the verifier checked `from` as `size` readable bytes (ARG_PTR_TO_MEM with
    // ARG_CONST_SIZE); `size` is at most TUNNEL_KEY_SIZE here.
    unsafe { std::ptr::copy_nonoverlapping(from as *const u8, k.as_mut_ptr(), size) };
    // SAFETY: r1 is the program's context, a live `SkBuff` (verifier-checked).
    let skb = unsafe { SkBuff::from_ctx(skb) };
    set_tunnel_key(skb, &k, flags) as u64
}

/// The body of [`bpf_skb_set_tunnel_key`] on a zero-extended `struct bpf_tunnel_key`.
fn set_tunnel_key(skb: &mut SkBuff, k: &[u8; TUNNEL_KEY_SIZE], flags: u64) -> i64 {
    let word = |o: usize| u32::from_ne_bytes([k[o], k[o + 1], k[o + 2], k[o + 3]]);
    let ext = u16::from_ne_bytes([k[22], k[23]]);
    let label = word(24);
    if flags & !TUNNEL_KEY_FLAGS != 0 {
        return EINVAL_I;
    }
    let ipv6 = flags & BPF_F_TUNINFO_IPV6 != 0;
    if (!ipv6 && label != 0) || ext != 0 {
        return EINVAL_I;
    }
    let addr = |o: usize| {
        if ipv6 {
            [word(o), word(o + 4), word(o + 8), word(o + 12)]
        } else {
            [word(o), 0, 0, 0]
        }
    };
    skb.tunnel = Some(crate::redirect::TunnelKey {
        tunnel_id: word(0),
        remote: addr(4),
        local: addr(28),
        ipv6,
        tos: k[20],
        ttl: k[21],
        label: if ipv6 { label & 0x000f_ffff } else { 0 },
        flags,
    });
    0
}

/// `bpf_skb_event_output(skb, map, flags, meta, meta_size)` (`bpf_perf_event_output` of
/// skb programs): `meta` and then the first `(flags & BPF_F_CTXLEN_MASK) >> 32` packet
/// bytes as one sample; `-EINVAL` for other flags, `-EFAULT` for more packet bytes than the
/// skb has, then [`kbpf_maps::raw::perf_event_output`]'s errno.
pub(crate) unsafe extern "C" fn bpf_skb_event_output(
    skb: u64,
    map: u64,
    flags: u64,
    meta: u64,
    meta_size: u64,
) -> u64 {
    use kbpf_maps::perf_event::{BPF_F_CTXLEN_MASK, BPF_F_INDEX_MASK};
    use kbpf_maps::raw::perf_event_output as output;
    if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 {
        return EINVAL;
    }
    let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    // SAFETY: r1 is the program's context, a live `SkBuff`; `meta` is `meta_size` readable
    // bytes (ARG_PTR_TO_MEM with ARG_CONST_SIZE_OR_ZERO); `map` a PERF_EVENT_ARRAY (all
    // verifier-checked).
    unsafe {
        let skb = SkBuff::from_ctx(skb);
        if ctx_len > skb.len() {
            return EFAULT;
        }
        let meta = meta_bytes(meta, meta_size);
        output(
            map as *mut std::ffi::c_void,
            flags,
            &[meta, &skb.data()[..ctx_len]],
        ) as u64
    }
}

/// The helper's `meta` argument as bytes.
///
/// # Safety
/// `p` must be `n` readable bytes when `n > 0`.
pub(crate) unsafe fn meta_bytes<'a>(p: u64, n: u64) -> &'a [u8] {
    if n == 0 || p == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) }
}

/// `BPF_F_TUNINFO_FLAGS` of `bpf_skb_get_tunnel_key`: fill `tunnel_flags`.
const BPF_F_TUNINFO_FLAGS: u64 = 1 << 4;
const EPROTO_I: i64 = -(errno::EPROTO as i64);

/// `ip_tunnel_flags_to_be16` of the flags `bpf_skb_set_tunnel_key` sets: `IP_TUNNEL_CSUM`
/// (bit 0) unless `BPF_F_ZERO_CSUM_TX`, `KEY` (2) unless `BPF_F_NO_TUNNEL_KEY`, `SEQ` (3)
/// with `BPF_F_SEQ_NUMBER`, `DONT_FRAGMENT` (8) with `BPF_F_DONT_FRAGMENT`, `NOCACHE` (13)
/// always; as a big-endian u16.
fn tun_flags_be16(set_flags: u64) -> u16 {
    let mut bits = 1u16 << 13;
    if set_flags & (1 << 1) == 0 {
        bits |= 1 << 0;
    }
    if set_flags & (1 << 4) == 0 {
        bits |= 1 << 2;
    }
    if set_flags & (1 << 3) != 0 {
        bits |= 1 << 3;
    }
    if set_flags & (1 << 2) != 0 {
        bits |= 1 << 8;
    }
    bits.to_be()
}

/// `bpf_skb_get_tunnel_key(skb, to, size, flags)`: the skb's tunnel metadata as a receive
/// side sees it (remote = the tunnel's source, local = its destination, so what
/// `bpf_skb_set_tunnel_key` gave as local comes back as remote); `-EINVAL` without metadata
/// or with unknown flags, `-EPROTO` when the address family differs from the flags', with
/// `to` zeroed on every error.
pub(crate) unsafe extern "C" fn bpf_skb_get_tunnel_key(
    skb: u64,
    to: u64,
    size: u64,
    flags: u64,
    _: u64,
) -> u64 {
    let size = size as u32 as usize;
    // SAFETY: r1 is the program's context, a live `SkBuff` (verifier-checked).
    let skb = unsafe { SkBuff::from_ctx(skb) };
    let (r, key) = get_tunnel_key(skb, size, flags);
    let n = size.min(TUNNEL_KEY_SIZE);
    // SAFETY: the verifier checked `to` as `size` writable bytes (ARG_PTR_TO_UNINIT_MEM with
    // ARG_CONST_SIZE).
    unsafe {
        std::ptr::write_bytes(to as *mut u8, 0, size);
        std::ptr::copy_nonoverlapping(key.as_ptr(), to as *mut u8, n);
    }
    r as u64
}

/// The body of [`bpf_skb_get_tunnel_key`]: the result and the key bytes (zeros on error).
fn get_tunnel_key(skb: &SkBuff, size: usize, flags: u64) -> (i64, [u8; TUNNEL_KEY_SIZE]) {
    let mut k = [0u8; TUNNEL_KEY_SIZE];
    let Some(t) = skb.tunnel.as_ref() else {
        return (EINVAL_I, k);
    };
    if flags & !(BPF_F_TUNINFO_IPV6 | BPF_F_TUNINFO_FLAGS) != 0 {
        return (EINVAL_I, k);
    }
    let want_v6 = flags & BPF_F_TUNINFO_IPV6 != 0;
    if t.ipv6 != want_v6 {
        return (EPROTO_I, k);
    }
    if size != TUNNEL_KEY_SIZE
        && (!TUNNEL_KEY_COMPAT_SIZES.contains(&size) || (size == 8 && t.ipv6))
    {
        return (EINVAL_I, k);
    }
    let mut put = |o: usize, v: u32| k[o..o + 4].copy_from_slice(&v.to_ne_bytes());
    put(0, t.tunnel_id);
    for w in 0..4 {
        put(4 + 4 * w, t.local[w]);
        put(28 + 4 * w, t.remote[w]);
    }
    put(24, t.label);
    k[20] = t.tos;
    k[21] = t.ttl;
    if flags & BPF_F_TUNINFO_FLAGS != 0 {
        k[22..24].copy_from_slice(&tun_flags_be16(t.flags).to_ne_bytes());
    }
    (0, k)
}

/// `VLAN_HLEN`: a VLAN tag.
const VLAN_HLEN: usize = 4;

/// `bpf_skb_fib_lookup(skb, params, plen, flags)`: with a `tot_len` the MTU is checked
/// against it; without one a successful lookup checks the packet against the output
/// device instead (`is_skb_forwardable`) and reports that device's MTU.
pub(crate) unsafe extern "C" fn bpf_skb_fib_lookup(
    skb: u64,
    params: u64,
    plen: u64,
    flags: u64,
    _: u64,
) -> u64 {
    // SAFETY: r1 is the program's context, a live `SkBuff` (verifier-checked).
    let (len, gso) = unsafe {
        let skb = SkBuff::from_ctx(skb);
        (skb.len(), skb.gso_size != 0)
    };
    let rc = |p: &mut kbpf_kernel::fib::FibParams| {
        let check_mtu = p.tot_len() != 0;
        let mut rc = kbpf_kernel::fib::fib_lookup(p, flags as u32, check_mtu);
        if rc == kbpf_kernel::fib::BPF_FIB_LKUP_RET_SUCCESS && !check_mtu {
            match kbpf_kernel::fib::link(p.ifindex()) {
                Ok(Some(dev)) => {
                    // is_skb_forwardable: MTU + dev->hard_header_len (an Ethernet
                    // header where the device has a MAC) + a VLAN tag.
                    let hard_header = if dev.mac.len() == 6 {
                        crate::ctx::ETH_HLEN
                    } else {
                        0
                    };
                    let hard_header = hard_header + VLAN_HLEN;
                    let fits = len <= dev.mtu as usize + hard_header || gso;
                    if !dev.up || !fits {
                        rc = kbpf_kernel::fib::BPF_FIB_LKUP_RET_FRAG_NEEDED;
                    }
                    p.set_mtu_result(dev.mtu as u16);
                }
                // The device vanished between the two looks: as the kernel's check of a
                // missing device, the packet cannot be forwarded.
                Ok(None) => rc = kbpf_kernel::fib::BPF_FIB_LKUP_RET_FRAG_NEEDED,
                Err(e) => rc = -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
            }
        }
        rc
    };
    // SAFETY: `params` is the program's ARG_PTR_TO_MEM of `plen` bytes.
    unsafe { crate::fib::with_params(params, plen, flags, rc) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (20 bytes) + 8 payload bytes, on a tc skb.
    fn v4_skb() -> (Vec<u8>, SkBuff) {
        let mut p = vec![0u8; 42];
        p[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        p[12..14].copy_from_slice(&[0x08, 0x00]);
        p[14] = 0x45;
        for (i, b) in p[34..].iter_mut().enumerate() {
            *b = 0xa0 + i as u8;
        }
        let skb = SkBuff::new(&p, 0, 0, ETH_P_IP_BE, 3);
        (p, skb)
    }

    #[test]
    fn encap_inserts_zeros_after_the_mac_header_and_switches_protocol() {
        let (p, mut skb) = v4_skb();
        let f = adj::FIXED_GSO | adj::ENCAP_L3_IPV6;
        assert_eq!(adjust_room(&mut skb, 40, adj::MAC, f), 0);
        assert_eq!(skb.len(), 82);
        assert_eq!(&skb.data()[..14], &p[..14]);
        assert_eq!(&skb.data()[14..54], &[0u8; 40]);
        assert_eq!(&skb.data()[54..], &p[14..]);
        assert_eq!(skb.protocol_be(), ETH_P_IPV6_BE);
        // Encapsulated once: a second encap is -EALREADY (the kernel's repeat runs see it).
        assert_eq!(
            adjust_room(&mut skb, 20, adj::MAC, adj::ENCAP_L3_IPV4),
            EALREADY_I
        );
    }

    #[test]
    fn refusals_carry_the_kernels_errno() {
        let (_, mut skb) = v4_skb();
        assert_eq!(adjust_room(&mut skb, 20, adj::MAC, 1 << 9), EINVAL_I);
        assert_eq!(adjust_room(&mut skb, 0x1000, adj::MAC, 0), EFAULT_I);
        assert_eq!(adjust_room(&mut skb, 20, 2, 0), ENOTSUPP_I);
        assert_eq!(adjust_room(&mut skb, 20, adj::MAC, adj::ENCAP_L3), EINVAL_I);
        assert_eq!(
            adjust_room(&mut skb, 20, adj::MAC, adj::DECAP_L3_IPV4),
            EINVAL_I
        );
        // Shrinking below the base IPv4 header of what follows the network offset.
        assert_eq!(adjust_room(&mut skb, -9, adj::MAC, 0), ENOTSUPP_I);
        assert_eq!(skb.len(), 42, "refusals leave the packet alone");
        let mut other = SkBuff::new(&[0u8; 42], 0, 0, 0x0608u16, 3);
        assert_eq!(adjust_room(&mut other, 20, adj::MAC, 0), ENOTSUPP_I);
    }

    #[test]
    fn net_mode_grows_after_the_base_header_and_shrink_undoes_it() {
        let (p, mut skb) = v4_skb();
        assert_eq!(adjust_room(&mut skb, 8, adj::NET, 0), 0);
        assert_eq!(&skb.data()[..34], &p[..34]);
        assert_eq!(&skb.data()[34..42], &[0u8; 8]);
        assert_eq!(adjust_room(&mut skb, -8, adj::NET, 0), 0);
        assert_eq!(skb.data(), &p[..]);
    }

    #[test]
    fn tunnel_key_is_checked_and_kept_as_metadata() {
        let (p, mut skb) = v4_skb();
        let mut k = [0u8; TUNNEL_KEY_SIZE];
        k[4..8].copy_from_slice(&[10, 0, 0, 1]);
        k[21] = 64;
        assert_eq!(set_tunnel_key(&mut skb, &k, 1 << 5), EINVAL_I);
        k[24] = 1; // a label without BPF_F_TUNINFO_IPV6
        assert_eq!(set_tunnel_key(&mut skb, &k, 0), EINVAL_I);
        k[24] = 0;
        assert_eq!(set_tunnel_key(&mut skb, &k, 0), 0);
        let t = skb.tunnel_key().expect("attached");
        assert_eq!(t.remote[0], u32::from_ne_bytes([10, 0, 0, 1]));
        assert_eq!((t.ttl, t.ipv6), (64, false));
        assert_eq!(skb.data(), &p[..], "metadata only");
        // Read back from the receive side: remote and local swap roles.
        let (r, back) = get_tunnel_key(&skb, TUNNEL_KEY_SIZE, BPF_F_TUNINFO_FLAGS);
        assert_eq!(r, 0);
        assert_eq!(&back[28..32], &[10, 0, 0, 1]);
        assert_eq!(&back[4..8], &[0; 4]);
        assert_eq!(back[21], 64);
        // NOCACHE | KEY | CSUM, big-endian.
        assert_eq!(&back[22..24], &[0x20, 0x05]);
        assert_eq!(get_tunnel_key(&skb, TUNNEL_KEY_SIZE, 1).0, EPROTO_I);
        assert_eq!(get_tunnel_key(&skb, 30, 0).0, EINVAL_I);
        // SAFETY: a 44-byte key read with a size the kernel refuses.
        let r = unsafe { bpf_skb_set_tunnel_key(skb.ctx_ptr(), k.as_ptr() as u64, 30, 0, 0) };
        assert_eq!(r as i64, EINVAL_I);
    }
}

/// `bpf_skb_load_helper_N_no_cache(skb, offset)`: the `N` bytes of a legacy packet load, in
/// host order (`get_unaligned_beN`), or `-EFAULT`.
///
/// # Safety
/// `skb` must be the program's context, a live `SkBuff` (the verifier checked r6).
unsafe fn load_helper(skb: u64, offset: u64, n: usize) -> u64 {
    // SAFETY: the caller's contract.
    let skb = unsafe { SkBuff::from_ctx(skb) };
    match skb.load_abs(offset as i32, n) {
        Some(b) => b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)),
        None => EFAULT,
    }
}

macro_rules! load_helper_no_cache {
    ($name:ident, $n:literal) => {
        #[doc = concat!("`", stringify!($name), "(skb, offset)`.")]
        pub(crate) unsafe extern "C" fn $name(
            skb: u64,
            offset: u64,
            _: u64,
            _: u64,
            _: u64,
        ) -> u64 {
            // SAFETY: the rewrite calls it with the context in r1 (bpf_gen_ld_abs).
            unsafe { load_helper(skb, offset, $n) }
        }
    };
}

load_helper_no_cache!(bpf_skb_load_helper_8_no_cache, 1);
load_helper_no_cache!(bpf_skb_load_helper_16_no_cache, 2);
load_helper_no_cache!(bpf_skb_load_helper_32_no_cache, 4);

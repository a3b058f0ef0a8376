//! The socket helpers: the lookups (`bpf_sk_lookup_tcp`, `bpf_sk_lookup_udp`,
//! `bpf_skc_lookup_tcp`), `bpf_sk_release`, and the casts of a socket pointer
//! (`bpf_sk_fullsock`, `bpf_tcp_sock`, `bpf_get_listener_sock`). kbpf runs programs outside any network namespace's socket tables:
//! there is no socket a tuple could name, so every lookup finds none and returns NULL, as
//! the kernel's does for a tuple no socket matches (and for bad arguments: a tuple size,
//! flags or netns id it refuses). The verifier makes a program test the result for NULL
//! before it uses or releases it, so `bpf_sk_release` is never reached with a socket.
//!
//! The only socket a program can hold is the one a test run hangs on its skb
//! (`SkBuff::attach_test_sock`: a full, closed, non-TCP socket), so the casts judge it by
//! the fields the kernel's do.

use kbpf_rewrite::ctx::sock as sk;

/// `TCP_TIME_WAIT`.
const TCP_TIME_WAIT: u8 = 6;
/// `TCP_LISTEN`.
const TCP_LISTEN: u8 = 10;
/// `TCP_NEW_SYN_RECV`.
const TCP_NEW_SYN_RECV: u8 = 12;

/// `skc_state` of the socket at `sk`.
///
/// # Safety
/// `sk` must point to a socket image of at least [`sk::SOCK_SIZE`] bytes (verifier-checked
/// as a non-NULL socket pointer; kbpf's only socket is the test run's).
unsafe fn state(sk: u64) -> u8 {
    // SAFETY: the caller's contract.
    unsafe { *((sk as *const u8).add(sk::SKC_STATE as usize)) }
}

/// `bpf_sk_fullsock(sk)`: `sk` unless it is a request or time-wait socket (`sk_fullsock`).
pub(crate) unsafe extern "C" fn bpf_sk_fullsock(sk: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: `sk` is a socket pointer (ARG_PTR_TO_SOCK_COMMON).
    match unsafe { state(sk) } {
        TCP_TIME_WAIT | TCP_NEW_SYN_RECV => 0,
        _ => sk,
    }
}

/// `bpf_tcp_sock(sk)`: NULL. It returns the socket only for a full TCP stream socket, and
/// kbpf has none (its test run socket has protocol 0; a `struct tcp_sock` is not modelled).
pub(crate) unsafe extern "C" fn bpf_tcp_sock(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    no_socket(96)
}

/// `bpf_get_listener_sock(sk)`: the socket when it is a listener, else NULL.
pub(crate) unsafe extern "C" fn bpf_get_listener_sock(
    sk: u64,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: `sk` is a socket pointer (ARG_PTR_TO_SOCK_COMMON). A listener would also need
    // SOCK_RCU_FREE; kbpf's only socket is closed.
    match unsafe { state(sk) } {
        TCP_LISTEN => sk,
        _ => 0,
    }
}

/// `bpf_sk_lookup_tcp(ctx, tuple, len, netns, flags)`: NULL (no socket).
pub(crate) unsafe extern "C" fn bpf_sk_lookup_tcp(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    no_socket(84)
}

/// `bpf_sk_lookup_udp(ctx, tuple, len, netns, flags)`: NULL (no socket).
pub(crate) unsafe extern "C" fn bpf_sk_lookup_udp(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    no_socket(85)
}

/// `bpf_skc_lookup_tcp(ctx, tuple, len, netns, flags)`: NULL (no socket).
pub(crate) unsafe extern "C" fn bpf_skc_lookup_tcp(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    no_socket(99)
}

/// `bpf_sk_release(sk)`: 0 (no socket was ever handed out).
pub(crate) unsafe extern "C" fn bpf_sk_release(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    no_socket(86)
}

/// NULL. The helper's id goes through `black_box` so the helpers' bodies differ and the
/// compiler cannot fold them into one address (each kernel function has its own, which
/// names it in xlated dumps).
fn no_socket(helper_id: u64) -> u64 {
    std::hint::black_box(helper_id);
    0
}

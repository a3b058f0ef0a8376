//! The socket lookup helpers (`bpf_sk_lookup_tcp`, `bpf_sk_lookup_udp`, `bpf_skc_lookup_tcp`)
//! and `bpf_sk_release`. kbpf runs programs outside any network namespace's socket tables:
//! there is no socket a tuple could name, so every lookup finds none and returns NULL, as
//! the kernel's does for a tuple no socket matches (and for bad arguments: a tuple size,
//! flags or netns id it refuses). The verifier makes a program test the result for NULL
//! before it uses or releases it, so `bpf_sk_release` is never reached with a socket.

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

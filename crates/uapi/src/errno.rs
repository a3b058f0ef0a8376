//! The errno values kbpf returns or compares, as positive numbers (`-EINVAL` is
//! `-EINVAL`). `ENOTSUPP` (524) is kernel-internal: `bpf()` returns it for some map commands
//! although user space has no name for it.

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// No such file or directory / no such element.
pub const ENOENT: i32 = 2;
/// No such process (`bpf_fib_lookup`'s missing table).
pub const ESRCH: i32 = 3;
/// Argument list too long: a full map, an index out of range, the complexity limit.
pub const E2BIG: i32 = 7;
/// Bad file descriptor.
pub const EBADF: i32 = 9;
/// Try again.
pub const EAGAIN: i32 = 11;
/// Out of memory.
pub const ENOMEM: i32 = 12;
/// Permission denied: the verifier's usual answer.
pub const EACCES: i32 = 13;
/// Bad address.
pub const EFAULT: i32 = 14;
/// Device or resource busy.
pub const EBUSY: i32 = 16;
/// File exists.
pub const EEXIST: i32 = 17;
/// No such device.
pub const ENODEV: i32 = 19;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// No space left.
pub const ENOSPC: i32 = 28;
/// Result out of range.
pub const ERANGE: i32 = 34;
/// Protocol error (`bpf_skb_adjust_room` on a packet of another protocol).
pub const EPROTO: i32 = 71;
/// Value too large for the type (a cpumap `qsize` above its limit).
pub const EOVERFLOW: i32 = 75;
/// Operation already in progress (`bpf_skb_adjust_room` on a GSO packet it cannot adjust).
pub const EALREADY: i32 = 114;
/// Operation not supported (`EOPNOTSUPP` and `ENOTSUP` are one value on Linux).
pub const EOPNOTSUPP: i32 = 95;
/// See [`EOPNOTSUPP`].
pub const ENOTSUP: i32 = EOPNOTSUPP;
/// The kernel-internal "operation is not supported" (`include/linux/errno.h`).
pub const ENOTSUPP: i32 = 524;

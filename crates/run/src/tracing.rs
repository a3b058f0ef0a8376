//! The tracing helpers (`bpf_tracing_func_proto`, and the probe reads a `CAP_PERFMON` loader
//! gets in every program type) as a user-space runtime can honour them.
//!
//! - The probe reads copy from an arbitrary address of this process through
//!   `process_vm_readv` on itself, which fails with `EFAULT` on unmapped memory instead of
//!   faulting: exactly the kernel's `copy_from_kernel_nofault` contract (on failure the
//!   destination is zeroed and the helper returns `-EFAULT`). "Kernel" and "user" memory are
//!   the same address space here.
//! - `bpf_get_current_pid_tgid`/`uid_gid` describe the calling thread of this process.
//! - `bpf_get_current_task` has no `task_struct` to point at: it returns 0 (NULL), so probe
//!   reads through it fail with `-EFAULT` as they would on any unmapped address.
//! - `bpf_get_stack` has no kernel call chain to copy: `-EFAULT` with the buffer zeroed, the
//!   kernel's answer when no stack trace can be taken.

const EFAULT: u64 = (-(kbpf_uapi::errno::EFAULT as i64)) as u64;

/// Reads `len` bytes at `src` of this process into `dst`; false if any byte is unmapped.
///
/// # Safety
/// `dst` must be valid for `len` writable bytes.
unsafe fn read_nofault(dst: *mut u8, src: u64, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    let local = libc::iovec {
        iov_base: dst.cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: src as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `local` is valid writable memory (caller contract); the kernel validates
    // `remote` and reports EFAULT instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n == len as isize
}

/// Each helper is its own function so that programs' call targets name it (`bpf_prog_dump
/// xlated` prints the kernel function behind every call); the tag keeps the compiler from
/// merging the identical bodies.
macro_rules! probe_read_fns {
    ($($name:ident => $imp:ident, $tag:literal;)*) => {$(
        pub(crate) unsafe extern "C" fn $name(a: u64, b: u64, c: u64, _: u64, _: u64) -> u64 {
            std::hint::black_box($tag);
            // SAFETY: forwarded: the verifier checked the destination and its size.
            unsafe { $imp(a, b, c) }
        }
    )*};
}

probe_read_fns! {
    bpf_probe_read_compat => probe_read, 1u8;
    bpf_probe_read_user => probe_read, 2u8;
    bpf_probe_read_kernel => probe_read, 3u8;
    bpf_probe_read_user_str => probe_read_str, 4u8;
    bpf_probe_read_kernel_str => probe_read_str, 5u8;
}

/// `bpf_probe_read_kernel`/`_user` (and the legacy `bpf_probe_read`): `size` bytes from
/// `unsafe_ptr`, or `-EFAULT` with `dst` zeroed.
///
/// # Safety
/// `dst` must be valid for `size` writable bytes.
unsafe fn probe_read(dst: u64, size: u64, unsafe_ptr: u64) -> u64 {
    let (dst, size) = (dst as *mut u8, size as u32 as usize);
    // SAFETY: the verifier checked `dst` as `size` writable bytes (ARG_PTR_TO_UNINIT_MEM).
    unsafe {
        if read_nofault(dst, unsafe_ptr, size) {
            0
        } else {
            std::ptr::write_bytes(dst, 0, size);
            EFAULT
        }
    }
}

/// `bpf_probe_read_kernel_str`/`_user_str`: a NUL-terminated string of at most `size`
/// bytes (the NUL included, always written); its length with the NUL, or `-EFAULT` with
/// `dst` zeroed. A zero `size` copies nothing and returns 0.
///
/// # Safety
/// `dst` must be valid for `size` writable bytes.
unsafe fn probe_read_str(dst: u64, size: u64, unsafe_ptr: u64) -> u64 {
    let (dst, size) = (dst as *mut u8, size as u32 as usize);
    if size == 0 {
        return 0;
    }
    // SAFETY: the verifier checked `dst` as `size` writable bytes.
    unsafe {
        for i in 0..size - 1 {
            let mut b = 0u8;
            if !read_nofault(&mut b, unsafe_ptr.wrapping_add(i as u64), 1) {
                std::ptr::write_bytes(dst, 0, size);
                return EFAULT;
            }
            *dst.add(i) = b;
            if b == 0 {
                return (i + 1) as u64;
            }
        }
        *dst.add(size - 1) = 0;
    }
    size as u64
}

/// `bpf_get_current_comm(buf, size)`: the calling thread's name (`task->comm`, as
/// `prctl(PR_GET_NAME)` reads it), NUL-terminated and padded with NULs to `size`
/// (`strscpy_pad`); 0.
pub(crate) unsafe extern "C" fn bpf_get_current_comm(
    buf: u64,
    size: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    let mut comm = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (TASK_COMM_LEN) into `comm`.
    unsafe { libc::prctl(libc::PR_GET_NAME, comm.as_mut_ptr()) };
    let name = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())];
    let size = size as usize;
    // SAFETY: `buf` points at `size` writable bytes (ARG_PTR_TO_UNINIT_MEM with
    // ARG_CONST_SIZE, checked by the verifier; size > 0).
    let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, size) };
    let n = name.len().min(size - 1);
    out[..n].copy_from_slice(&name[..n]);
    out[n..].fill(0);
    0
}

/// `bpf_perf_event_output(ctx, map, flags, data, size)` of the tracing program types (the
/// kprobe, tracepoint and raw tracepoint variants behave alike here): a sample of `data` in
/// the PERF_EVENT_ARRAY slot `flags` names; flags beyond the index (`BPF_F_CTXLEN_MASK` is
/// the skb/XDP variants' only) are `-EINVAL`.
pub(crate) unsafe extern "C" fn bpf_perf_event_output(
    _ctx: u64,
    map: u64,
    flags: u64,
    data: u64,
    size: u64,
) -> u64 {
    use kbpf_maps::perf_event::BPF_F_INDEX_MASK;
    if flags & !BPF_F_INDEX_MASK != 0 {
        return (-(kbpf_uapi::errno::EINVAL as i64)) as u64;
    }
    // SAFETY: `data` is `size` readable bytes (ARG_PTR_TO_MEM | MEM_RDONLY with
    // ARG_CONST_SIZE_OR_ZERO) and `map` a PERF_EVENT_ARRAY (verifier-checked).
    unsafe {
        let data = crate::skb_helpers::meta_bytes(data, size);
        kbpf_maps::raw::perf_event_output(map as *mut std::ffi::c_void, flags, &[data]) as u64
    }
}

/// The tracepoint variant (`bpf_perf_event_output_tp`), a function of its own in the kernel.
pub(crate) unsafe extern "C" fn bpf_perf_event_output_tp(
    ctx: u64,
    map: u64,
    flags: u64,
    data: u64,
    size: u64,
) -> u64 {
    std::hint::black_box(1);
    // SAFETY: forwarded (the same arguments and checks).
    unsafe { bpf_perf_event_output(ctx, map, flags, data, size) }
}

/// The raw tracepoint variant (`bpf_perf_event_output_raw_tp`).
pub(crate) unsafe extern "C" fn bpf_perf_event_output_raw_tp(
    ctx: u64,
    map: u64,
    flags: u64,
    data: u64,
    size: u64,
) -> u64 {
    std::hint::black_box(2);
    // SAFETY: forwarded (the same arguments and checks).
    unsafe { bpf_perf_event_output(ctx, map, flags, data, size) }
}

/// `bpf_get_stackid(ctx, map, flags)`: `-EFAULT`, the kernel's answer when no stack can be
/// collected: a program kbpf runs is called from user space, where there is no kernel
/// stack to record (and the STACK_TRACE map stays empty, see `kbpf_maps::stack_trace`).
pub(crate) unsafe extern "C" fn bpf_get_stackid(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    (-(kbpf_uapi::errno::EFAULT as i64)) as u64
}

/// `bpf_get_current_pid_tgid`: `tgid << 32 | pid` of the calling thread (kernel names: the
/// process id is the thread group's).
pub(crate) unsafe extern "C" fn bpf_get_current_pid_tgid(
    _: u64,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: plain system calls without arguments.
    let (tgid, tid) = unsafe { (libc::getpid() as u64, libc::gettid() as u64) };
    tgid << 32 | tid
}

/// `bpf_get_current_uid_gid`: `gid << 32 | uid` of the calling thread.
pub(crate) unsafe extern "C" fn bpf_get_current_uid_gid(
    _: u64,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: plain system calls without arguments.
    let (gid, uid) = unsafe { (libc::getgid() as u64, libc::getuid() as u64) };
    gid << 32 | uid
}

/// `bpf_get_stack`: no kernel call chain exists here; `-EFAULT`, the buffer zeroed.
pub(crate) unsafe extern "C" fn bpf_get_stack(
    _ctx: u64,
    buf: u64,
    size: u64,
    _: u64,
    _: u64,
) -> u64 {
    // SAFETY: the verifier checked `buf` as `size` writable bytes.
    unsafe { std::ptr::write_bytes(buf as *mut u8, 0, size as u32 as usize) };
    EFAULT
}

/// `bpf_ktime_get_coarse_ns`: `CLOCK_MONOTONIC_COARSE`.
pub(crate) unsafe extern "C" fn bpf_ktime_get_coarse_ns(
    _: u64,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `bpf_get_current_task`: no kernel task in user space, so NULL (see the module doc).
pub(crate) unsafe extern "C" fn bpf_get_current_task(
    _: u64,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_copy_mapped_memory_and_fault_on_the_rest() {
        let src = *b"hello\0world";
        let mut dst = [0xffu8; 8];
        let r =
            unsafe { bpf_probe_read_kernel(dst.as_mut_ptr() as u64, 8, src.as_ptr() as u64, 0, 0) };
        assert_eq!(r, 0);
        assert_eq!(&dst, b"hello\0wo");
        let mut dst = [0xffu8; 8];
        let r = unsafe { bpf_probe_read_user(dst.as_mut_ptr() as u64, 8, 8, 0, 0) };
        assert_eq!(r, EFAULT);
        assert_eq!(dst, [0; 8], "zeroed on failure");
        let mut dst = [0xffu8; 16];
        let r = unsafe {
            bpf_probe_read_kernel_str(dst.as_mut_ptr() as u64, 16, src.as_ptr() as u64, 0, 0)
        };
        assert_eq!(r, 6, "length with the NUL");
        assert_eq!(&dst[..6], b"hello\0");
        let mut dst = [0xffu8; 4];
        let r = unsafe {
            bpf_probe_read_user_str(dst.as_mut_ptr() as u64, 4, src.as_ptr() as u64, 0, 0)
        };
        assert_eq!(r, 4);
        assert_eq!(&dst, b"hel\0", "truncated and terminated");
    }

    #[test]
    fn ids_and_clocks_describe_this_thread() {
        let pt = unsafe { bpf_get_current_pid_tgid(0, 0, 0, 0, 0) };
        assert_eq!(pt >> 32, std::process::id() as u64);
        let ug = unsafe { bpf_get_current_uid_gid(0, 0, 0, 0, 0) };
        assert_eq!(ug as u32, unsafe { libc::getuid() });
        let a = unsafe { bpf_ktime_get_coarse_ns(0, 0, 0, 0, 0) };
        let b = unsafe { bpf_ktime_get_coarse_ns(0, 0, 0, 0, 0) };
        assert!(a > 0 && b >= a);
        let mut buf = [0xffu8; 16];
        let r = unsafe { bpf_get_stack(0, buf.as_mut_ptr() as u64, 16, 0, 0) };
        assert_eq!((r, buf), (EFAULT, [0; 16]));
    }
}

//! Executable memory and the call into generated code — the crate's only `unsafe` code.
//!
//! W^X: the image is copied into fresh anonymous pages mapped read+write, the pages are then
//! switched to read+execute with `mprotect`, and they are never writable and executable at
//! the same time (the kernel's `bpf_jit_binary_pack_alloc()` keeps the same discipline with
//! its RO+X pack allocator). The mapping is unmapped when [`ExecMemory`] drops.

use std::io;
use std::ptr::NonNull;

use crate::compile::RunState;

/// Signature of the generated main function.
type Entry = unsafe extern "sysv64" fn(u64, u64, *mut RunState) -> u64;

/// Read+execute pages holding a JIT image.
#[derive(Debug)]
pub(crate) struct ExecMemory {
    ptr: NonNull<u8>,
    /// Mapped length (whole pages).
    len: usize,
}

// SAFETY: the mapping is immutable (read+execute) for its whole life after `new` returns, and
// it is owned by this value alone; sharing or sending a pointer to immutable memory is sound.
unsafe impl Send for ExecMemory {}
// SAFETY: as above; `&ExecMemory` only allows reading and executing the image.
unsafe impl Sync for ExecMemory {}

impl ExecMemory {
    /// Maps `code` read+execute (the tail of the last page is filled with `int3`).
    pub(crate) fn new(code: &[u8]) -> io::Result<Self> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page)
            .ok()
            .filter(|p| *p > 0)
            .unwrap_or(4096);
        let len = code.len().max(1).div_ceil(page) * page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases
        // no existing Rust object; the result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        let mem = ExecMemory { ptr, len };
        // SAFETY: `ptr` points to `len` writable bytes that nothing else references, and
        // `code.len() <= len`; the source is a distinct Rust slice, so the ranges don't overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), ptr.as_ptr(), code.len());
            std::ptr::write_bytes(ptr.as_ptr().add(code.len()), 0xcc, len - code.len());
        }
        // SAFETY: `ptr`/`len` describe exactly the mapping created above. After this call
        // the pages are no longer writable (W^X).
        let rc =
            unsafe { libc::mprotect(ptr.as_ptr().cast(), len, libc::PROT_READ | libc::PROT_EXEC) };
        if rc != 0 {
            // `mem` drops here and unmaps the pages.
            return Err(io::Error::last_os_error());
        }
        Ok(mem)
    }

    /// The function at `entry` (an offset into the image) of a main function that ignores its
    /// third argument (a leaf's), typed for callers outside the crate.
    pub(crate) fn entry_fn(&self, entry: usize) -> crate::LeafEntry {
        assert!(entry < self.len);
        // SAFETY: only forms a function pointer (calling it is the caller's business, under
        // `JitProgram::run`'s contract): `entry` is inside the executable mapping, and a main
        // function that never reports takes (rdi, rsi) and ignores rdx, so the `LeafEntry`
        // signature describes it.
        unsafe { std::mem::transmute::<*const u8, crate::LeafEntry>(self.ptr.as_ptr().add(entry)) }
    }

    /// Calls the generated main function at `entry` (an offset into the image) with BPF
    /// `r1`, `r2` and the run-state block.
    ///
    /// # Safety
    /// `entry` must be the offset of a main function produced by [`crate::compile`] for this
    /// image; `state` must be valid for writes for the call's duration, or null if the image
    /// never reports (a leaf main function: it never touches its third argument); the BPF
    /// program must be safe to run with these `r1`/`r2` — every load,
    /// store, atomic and helper argument it computes must be valid, which is what a verifier
    /// guarantees (the generated code checks nothing but the call depth and helper ids).
    #[inline]
    pub(crate) unsafe fn call(&self, entry: usize, r1: u64, r2: u64, state: *mut RunState) -> u64 {
        debug_assert!(entry < self.len);
        // SAFETY: `entry` lies inside the mapping (caller contract), which is readable and
        // executable and holds a function with exactly the `Entry` ABI: the prologue
        // generated for the main function takes (rdi, rsi, rdx) per SysV, preserves every
        // callee-saved register and `rsp`, keeps the direction flag clear and returns r0 in
        // rax. `state` is writable for the call's duration or never touched (caller contract).
        unsafe {
            let f: Entry = std::mem::transmute::<*const u8, Entry>(self.ptr.as_ptr().add(entry));
            f(r1, r2, state)
        }
    }
}

impl Drop for ExecMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`; no function pointer into it
        // outlives `self` (calls borrow `self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

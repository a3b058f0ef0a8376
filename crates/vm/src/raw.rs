//! Raw memory access, atomics and helper calls: the only `unsafe` code of the interpreter.
//!
//! # Safety argument
//! Every function here takes a program-computed address and touches host memory through it.
//! The functions are safe to *call* inside this crate because the interpreter only calls them
//! with an address that is either
//! - bounds-checked first ([`Mode::Checked`](crate::Mode::Checked)): the access lies inside a
//!   live stack frame of the current run (memory owned by the run, alive until it returns) or
//!   inside a [`MemoryRegion`](crate::MemoryRegion) the caller of `run` vouched for (and stores
//!   only to writable ones); or
//! - trusted ([`Mode::Unchecked`](crate::Mode::Unchecked)): the caller asserted that the program
//!   was accepted by a verifier that proves each access valid, which is the kernel's model (its
//!   interpreter and JIT dereference program pointers without checks). A program that was not
//!   verified must not be run unchecked.
//!
//! Plain loads and stores use unaligned accesses (eBPF allows unaligned access on x86 and the
//! kernel's verifier accepts it for privileged programs). Atomic operations go through
//! `Atomic*::from_ptr`, which needs natural alignment: the interpreter checks alignment before
//! calling them, in both modes. Concurrent access from other threads (shared maps) is the
//! program's business, as in the kernel; atomics are real atomics so `lock` ops are exact.

use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use kbpf_isa::insn::{BPF_ADD, BPF_AND, BPF_CMPXCHG, BPF_FETCH, BPF_OR, BPF_XCHG, BPF_XOR};

use crate::helpers::HelperFn;
use crate::program::Op;

/// The op at `pc`, without a bounds check (used by the unchecked loop only; the checked loop
/// indexes normally, as defence in depth).
#[inline(always)]
pub(crate) fn op_at(ops: &[Op], pc: usize) -> Op {
    debug_assert!(pc < ops.len());
    // SAFETY: `pc < ops.len()` always holds in the execution loop, because `ops` has one entry
    // per slot of a program that passed `kbpf_isa::decode::validate`, and pc only becomes
    // - 0 (the program is not empty);
    // - a jump or call target (validated to be an instruction inside the program);
    // - the next slot after a non-jump, or pc + 2 after an `ld_imm64` or a fused pair: the
    //   last instruction is an `exit` or `ja` (validated), so neither can be last;
    // - a call's return address pc + 1: a call is not last either.
    unsafe { *ops.get_unchecked(pc) }
}

macro_rules! load_store {
    ($load:ident, $store:ident, $t:ty) => {
        #[inline(always)]
        pub(crate) fn $load(addr: u64) -> $t {
            // SAFETY: see the module's safety argument (checked or verifier-trusted address).
            unsafe { std::ptr::read_unaligned(addr as usize as *const $t) }
        }
        #[inline(always)]
        pub(crate) fn $store(addr: u64, v: $t) {
            // SAFETY: see the module's safety argument (checked or verifier-trusted address).
            unsafe { std::ptr::write_unaligned(addr as usize as *mut $t, v) }
        }
    };
}

load_store!(load_u8, store_u8, u8);
load_store!(load_u16, store_u16, u16);
load_store!(load_u32, store_u32, u32);
load_store!(load_u64, store_u64, u64);

/// Zeroes `len` bytes at `addr` (a stack frame about to be used).
#[inline(always)]
pub(crate) fn zero(addr: u64, len: usize) {
    // SAFETY: only called on the run's own stack buffer, inside its bounds.
    unsafe { std::ptr::write_bytes(addr as usize as *mut u8, 0, len) }
}

/// Atomic read-modify-write of one width; the caller decides from `imm` which register receives
/// the returned old value (`src` for `BPF_FETCH`/xchg, `r0` for cmpxchg).
macro_rules! rmw {
    ($name:ident, $atomic:ty, $t:ty) => {
        /// Performs the `BPF_ATOMIC` operation `imm` at `addr` (naturally aligned) with operand
        /// `val` (and `expected` = `r0` for cmpxchg); returns the old value.
        #[inline]
        pub(crate) fn $name(addr: u64, imm: i32, val: $t, expected: $t) -> $t {
            // SAFETY: address checked or trusted as per the module docs, and aligned to the
            // access size (checked by the interpreter before the call); the pointee is only
            // accessed atomically here for the duration of the call.
            let a = unsafe { <$atomic>::from_ptr(addr as usize as *mut $t) };
            let o = Ordering::SeqCst;
            match imm {
                BPF_XCHG => a.swap(val, o),
                BPF_CMPXCHG => match a.compare_exchange(expected, val, o, o) {
                    Ok(old) | Err(old) => old,
                },
                _ => match (imm & !BPF_FETCH) as u8 {
                    BPF_ADD => a.fetch_add(val, o),
                    BPF_OR => a.fetch_or(val, o),
                    BPF_AND => a.fetch_and(val, o),
                    BPF_XOR => a.fetch_xor(val, o),
                    // decode admits no other read-modify-write encoding
                    _ => a.load(o),
                },
            }
        }
    };
}

rmw!(atomic_rmw32, AtomicU32, u32);
rmw!(atomic_rmw64, AtomicU64, u64);

/// `load_acquire` of `size` bytes (1, 2, 4, 8) at a naturally aligned `addr`, zero-extended.
#[inline]
pub(crate) fn load_acquire(addr: u64, size: u64) -> u64 {
    let p = addr as usize;
    let o = Ordering::Acquire;
    // SAFETY: address checked or trusted as per the module docs, aligned to `size`.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(p as *mut u8).load(o) as u64,
            2 => AtomicU16::from_ptr(p as *mut u16).load(o) as u64,
            4 => AtomicU32::from_ptr(p as *mut u32).load(o) as u64,
            _ => AtomicU64::from_ptr(p as *mut u64).load(o),
        }
    }
}

/// `store_release` of the low `size` bytes (1, 2, 4, 8) of `val` at a naturally aligned `addr`.
#[inline]
pub(crate) fn store_release(addr: u64, size: u64, val: u64) {
    let p = addr as usize;
    let o = Ordering::Release;
    // SAFETY: address checked or trusted as per the module docs, aligned to `size`.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(p as *mut u8).store(val as u8, o),
            2 => AtomicU16::from_ptr(p as *mut u16).store(val as u16, o),
            4 => AtomicU32::from_ptr(p as *mut u32).store(val as u32, o),
            _ => AtomicU64::from_ptr(p as *mut u64).store(val, o),
        }
    }
}

/// Calls a helper with `r1`..`r5`.
#[inline]
pub(crate) fn call_helper(f: HelperFn, r: &[u64; 16]) -> u64 {
    // SAFETY: a registered helper's contract (see `HelperFn`) is that it is sound to call with
    // the argument registers of a verified program; which values reach it is the verifier's
    // responsibility, as for the kernel's helpers.
    unsafe { f(r[1], r[2], r[3], r[4], r[5]) }
}

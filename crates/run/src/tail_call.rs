//! `bpf_tail_call`: the kernel's `JMP_TAIL_CALL`, on both engines.
//!
//! In the kernel a tail call is a jump: the JIT pops the calling *function's* frame and
//! jumps into the target program, which returns to whoever called that function. From the
//! main function that ends the program with the target's `r0`; from a subprogram, the
//! subprogram's caller goes on with it (the x86 JIT has allowed tail calls in subprograms
//! since 5.10). kbpf's helper runs the target itself (through the runner `program`
//! registers, [`RUN_TARGET`]), on the engine the run started on and the same context, and both engines then end the calling function with the target's `r0`
//! ([`kbpf_vm::Helper::frame_result`]). A failed tail call — an index past `max_entries`,
//! the run's 34th, an empty slot (which still counts) — falls through and leaves `r0` alone,
//! as the kernel's jump does.
//!
//! A run's count and engine are per thread: [`start_run`] resets them, and nested runs of
//! targets share them, so a chain stops at [`MAX_TAIL_CALL_CNT`] wherever its calls are.
//! An error inside a target (no kernel program can have one: the verifier accepted it) is
//! kept for the run's end ([`finish_run`]).

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::OnceLock;

use kbpf_maps::raw as m;
use kbpf_vm::{Helper, RunError};

/// `MAX_TAIL_CALL_CNT`: tail calls one run may make.
pub const MAX_TAIL_CALL_CNT: u32 = 33;

/// How a tail call's target runs: `(PROG_ARRAY slot pointer, on the JIT?, ctx) -> r0`.
///
/// # Safety
/// The pointer is a live slot value and `ctx` the context its program was verified for.
pub(crate) type RunTarget = unsafe fn(usize, bool, u64) -> Result<u64, RunError>;

/// Set once by `program`, which owns what slots point at (`Program`) and sits above this
/// module, when the first program loads: no slot can hold a program before that.
static RUN_TARGET: OnceLock<RunTarget> = OnceLock::new();

/// Tells this module how to run a slot's program (see [`RUN_TARGET`]).
pub(crate) fn set_target_runner(run: RunTarget) {
    let _ = RUN_TARGET.set(run);
}

thread_local! {
    /// This thread's run: tail calls made so far, whether it runs on the JIT, and the `r0`
    /// of the last target.
    static RUN: Cell<(u32, bool, u64)> = const { Cell::new((0, false, 0)) };
    /// The first error a target's run failed with.
    static ERROR: RefCell<Option<RunError>> = const { RefCell::new(None) };
}

/// Starts a run on the JIT (`jit`) or the interpreter: no tail calls made yet.
pub(crate) fn start_run(jit: bool) {
    RUN.with(|r| r.set((0, jit, 0)));
    ERROR.with(|e| e.borrow_mut().take());
}

/// Ends a run: the error a tail-called program failed with, if one did.
pub(crate) fn finish_run() -> Result<(), RunError> {
    match ERROR.with(|e| e.borrow_mut().take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The registry entry of helper 12.
pub(crate) fn helper() -> Helper {
    Helper {
        name: "bpf_tail_call",
        func: bpf_tail_call,
        // 0: the tail call happened, and the calling function ends with the target's r0.
        // Otherwise it failed, and has no result: the program goes on with its r0.
        unwind_on_zero: true,
        keep_r0_on_failure: true,
        frame_result: Some(target_r0),
        inline: None,
    }
}

/// The `r0` of the program the last successful tail call ran.
unsafe extern "C" fn target_r0() -> u64 {
    RUN.with(|r| r.get().2)
}

/// `bpf_tail_call(ctx, prog_array, index)`: 0 when the slot's program ran (see the module
/// docs), `-ENOENT` when the call failed. The `-ENOENT` never reaches the program: the
/// engines keep its `r0` (`keep_r0_on_failure`).
pub(crate) unsafe extern "C" fn bpf_tail_call(
    ctx: u64,
    map: u64,
    index: u64,
    _: u64,
    _: u64,
) -> u64 {
    const ENOENT: u64 = (-(kbpf_uapi::errno::ENOENT as i64)) as u64;
    // SAFETY: the verifier checked that `map` is a PROG_ARRAY.
    let max = unsafe { (*(map as *const kbpf_maps::layout::BpfMap)).max_entries };
    if index as u32 >= max {
        return ENOENT;
    }
    let (n, jit, _) = RUN.with(Cell::get);
    if n >= MAX_TAIL_CALL_CNT {
        return ENOENT;
    }
    RUN.with(|r| r.set((n + 1, jit, 0)));
    // SAFETY: as above; the index is in range.
    let p = unsafe { m::prog_array_get(map as *mut c_void, index as u32) } as usize;
    if p == 0 {
        return ENOENT;
    }
    let Some(run) = RUN_TARGET.get() else {
        return ENOENT; // no program was ever loaded, so no slot can hold one
    };
    // SAFETY: `p` is a live slot value (the run holds a pin; a replaced slot's reference is
    // dropped through the epoch collector). The PROG_ARRAY's owner type check made the
    // target a program of the same type, verified for the same context, which `ctx` is (the
    // helper's first argument is the caller's r1, the context, as the verifier requires).
    let r0 = match unsafe { run(p, jit, ctx) } {
        Ok(r0) => r0,
        Err(e) => {
            ERROR.with(|slot| {
                slot.borrow_mut().get_or_insert(e);
            });
            0
        }
    };
    RUN.with(|r| {
        let (n, jit, _) = r.get();
        r.set((n, jit, r0));
    });
    0
}

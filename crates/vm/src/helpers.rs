//! Helper functions as the interpreter calls them.
//!
//! A helper is a native function of five `u64` arguments (`r1`..`r5`) returning `r0`, with the
//! C calling convention so that a JIT can call the same function pointer directly — this is the
//! shape of the kernel's `BPF_CALL_5` helpers. A [`HelperRegistry`] maps helper ids (the `imm`
//! of `call imm`, or the value of the register in `callx reg`) to helpers.

use std::collections::HashMap;

/// A helper function: `r0 = f(r1, r2, r3, r4, r5)`.
///
/// It is `unsafe` because its arguments are whatever the program put in `r1`..`r5`, often raw
/// host addresses (a key on the stack, a map pointer); a helper may dereference them, and it is
/// the verifier's job (as in the kernel) to make sure they are valid for that helper. Helpers
/// are not bounds-checked even in [`Mode::Checked`](crate::Mode::Checked).
pub type HelperFn = unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64;

/// What a function ended by a [`Helper::frame_result`] helper returns.
pub type FrameResultFn = unsafe extern "C" fn() -> u64;

/// A registered helper.
#[derive(Clone, Copy, Debug)]
pub struct Helper {
    /// Name, for errors and disassembly (e.g. `bpf_map_lookup_elem`).
    pub name: &'static str,
    /// The function.
    pub func: HelperFn,
    /// If true and the helper returns 0, the program stops at once with `r0 = 0`. This models
    /// the bpf_conformance suite's helper 5 (an "unwind" helper); no kernel helper does this.
    /// With [`Helper::frame_result`], only the current function stops (see there).
    pub unwind_on_zero: bool,
    /// With `unwind_on_zero`: a zero return ends the current *function* instead, which
    /// returns `r0 = frame_result()` to its caller (the program's caller, for the main
    /// function). This is `bpf_tail_call`: the kernel's JIT replaces the calling function by
    /// the target — popping only its frame — so a tail call made in a subprogram comes back
    /// to the subprogram's caller with the target's `r0`. kbpf's helper runs the target
    /// itself and hands its `r0` over through this function.
    pub frame_result: Option<FrameResultFn>,
    /// If true, a non-zero return is no result: `r0` keeps the value it had before the call.
    /// With `unwind_on_zero` this is `bpf_tail_call`, a jump in the kernel, which leaves `r0`
    /// alone when the tail call fails.
    pub keep_r0_on_failure: bool,
    /// A body the JIT may emit inline instead of the call (the interpreter always calls).
    pub inline: Option<HelperInline>,
}

/// Helper bodies the JIT knows how to emit inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperInline {
    /// `array_map_lookup_elem` on an array whose bound is read at run time (the
    /// `BPF_F_INNER_MAP` direct call): `r0 = idx < max_entries ? map + value_off + idx *
    /// elem_size : NULL`, with `idx = *(u32 *)r2` and the three fields read from the map
    /// header at these byte offsets (each a `u32`).
    ArrayLookup {
        /// Offset of `max_entries`.
        max_entries: i32,
        /// Offset of `elem_size`.
        elem_size: i32,
        /// Offset of the value offset.
        value_off: i32,
    },
}

/// The registry id of the hook that gives `this_cpu_ptr(p)` for the per-CPU address move
/// (`BPF_MOV64_PERCPU_REG`) of translated programs; no helper id can be negative in a
/// program, so it cannot clash.
pub const THIS_CPU_PTR_ID: i32 = i32::MIN;

/// Helper ids to helpers. Lookups happen once per call site when the interpreter is built
/// (`call imm`) or at run time (`callx reg`).
#[derive(Clone, Debug, Default)]
pub struct HelperRegistry {
    helpers: HashMap<i32, Helper>,
}

impl HelperRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the helper with this id; returns the previous one, if any.
    pub fn register(&mut self, id: i32, helper: Helper) -> Option<Helper> {
        self.helpers.insert(id, helper)
    }

    /// The helper with this id.
    pub fn get(&self, id: i32) -> Option<&Helper> {
        self.helpers.get(&id)
    }

    /// Number of registered helpers.
    pub fn len(&self) -> usize {
        self.helpers.len()
    }

    /// True when no helper is registered.
    pub fn is_empty(&self) -> bool {
        self.helpers.is_empty()
    }

    /// Registered `(id, helper)` pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &Helper)> {
        let mut v: Vec<_> = self.helpers.iter().map(|(id, h)| (*id, h)).collect();
        v.sort_by_key(|(id, _)| *id);
        v.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn add_all(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
        a + b + c + d + e
    }

    #[test]
    fn register_and_get() {
        let mut reg = HelperRegistry::new();
        assert!(reg.is_empty());
        let h = Helper {
            name: "add_all",
            func: add_all,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        };
        assert!(reg.register(7, h).is_none());
        assert!(reg.register(7, h).is_some());
        assert_eq!(reg.len(), 1);
        assert_eq!(reg.get(7).map(|h| h.name), Some("add_all"));
        assert!(reg.get(8).is_none());
        // SAFETY: add_all dereferences nothing.
        let r = unsafe { (reg.get(7).expect("registered").func)(1, 2, 3, 4, 5) };
        assert_eq!(r, 15);
        assert_eq!(reg.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![7]);
    }
}

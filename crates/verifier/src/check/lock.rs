//! `bpf_spin_lock` (`process_spin_lock` and the rules around a held lock in
//! `kernel/bpf/verifier.c`), and the special fields of map values (`map->record`: a
//! `struct bpf_spin_lock` and a `struct bpf_timer` found in the map's BTF).
//!
//! - `bpf_spin_lock`/`bpf_spin_unlock` take a map value pointer at the constant offset of the
//!   value's lock; one lock at a time, released on the same map value (`id`) it was taken on.
//! - While a lock is held no helper but `bpf_spin_unlock` may be called (nor a global
//!   function), the main program may not exit and no legacy packet load may run.
//! - Loads and stores may not touch the lock or the timer field, directly or through a
//!   helper.
//! - Tracing programs may not use maps with a lock or a timer, socket filters none with a
//!   lock (`check_map_prog_compatibility`, for every map the program references).

use super::*;

impl Checker<'_> {
    /// `process_spin_lock` for `bpf_spin_lock` (`lock`) or `bpf_spin_unlock`, argument in
    /// `regno`.
    pub(super) fn process_spin_lock(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        lock: bool,
    ) -> R<()> {
        if reg.ty != RegType::PtrToMapValue || reg.maybe_null {
            return rej(format!(
                "R{regno} type={} expected=map_value, ptr_",
                reg.type_str()
            ));
        }
        if !reg.s.is_const() {
            return rej(format!(
                "R{regno} doesn't have constant offset. bpf_spin_lock has to be at the constant offset"
            ));
        }
        let desc = &self.maps[reg.map as usize].desc;
        let Some(lock_off) = desc.spin_lock_off else {
            return rej(format!("map '{}' has no valid bpf_spin_lock", desc.name));
        };
        let off = reg.s.var_off.value as i64 + reg.off as i64;
        if off != lock_off as i64 {
            return rej(format!(
                "off {off} doesn't point to 'struct bpf_spin_lock' that is at {lock_off}"
            ));
        }
        if lock {
            if st.lock.is_some() {
                return rej("Locking two bpf_spin_locks are not allowed");
            }
            st.lock = Some((reg.map, reg.id));
        } else {
            match st.lock {
                None => return rej("bpf_spin_unlock without taking a lock"),
                Some(held) if held != (reg.map, reg.id) => {
                    return rej("bpf_spin_unlock of different lock");
                }
                Some(_) => st.lock = None,
            }
        }
        Ok(())
    }

    /// A load, store or helper access of `[lo, hi)` bytes of a map value (`check_map_access`):
    /// it may not overlap the value's lock or timer.
    pub(super) fn check_special_fields(&self, reg: &RegState, off: i32, size: i32) -> R<()> {
        let desc = &self.maps[reg.map as usize].desc;
        let lo = reg.s.smin_value.saturating_add(off as i64);
        let hi = (reg.s.umax_value as i64).saturating_add(off as i64 + size as i64);
        for (field, at, len) in [
            ("bpf_spin_lock", desc.spin_lock_off, 4),
            ("bpf_timer", desc.timer_off, 16),
        ] {
            if let Some(p) = at
                && lo < p as i64 + len
                && (p as i64) < hi
            {
                return rej(format!("{field} cannot be accessed directly by load/store"));
            }
        }
        Ok(())
    }
}

/// `check_map_prog_compatibility` for a map the program references.
pub(super) fn check_map_prog_compatibility(prog: ProgType, desc: &MapDesc) -> R<()> {
    if desc.spin_lock_off.is_some() {
        if prog == ProgType::SocketFilter {
            return rej("socket filter progs cannot use bpf_spin_lock yet");
        }
        if prog.is_tracing() {
            return rej("tracing progs cannot use bpf_spin_lock yet");
        }
    }
    if desc.timer_off.is_some() && prog.is_tracing() {
        return rej("tracing progs cannot use bpf_timer yet");
    }
    Ok(())
}

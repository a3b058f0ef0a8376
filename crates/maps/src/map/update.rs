//! The write side of the element commands: `BPF_MAP_UPDATE_ELEM` for data, inner-map,
//! program and fd values, `BPF_MAP_UPDATE_BATCH`, and the PROG_ARRAY owner type those
//! updates settle — each with the kernel's checks in the kernel's order, so the same bad
//! update fails with the same errno.

use std::ffi::c_void;
use std::sync::atomic::Ordering;

use super::{FdObject, Map, ProgRef, drop_deferred, key_u32};
use crate::error::{Errno, MapError};
use crate::layout::{copy_percpu_in, release_inner_deferred, release_inner_now};
use crate::uapi::{BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapType};

impl Map {
    /// `BPF_MAP_UPDATE_ELEM` for maps holding data (not fd maps: use
    /// [`Map::update_inner_map`], [`Map::update_prog`] or [`Map::update_elem_fd`]).
    /// `value` must be [`Map::user_value_size`] bytes.
    pub fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_writable()?;
        let m = &self.0;
        if flags & BPF_F_LOCK != 0 {
            return Err(self.e(Errno::EINVAL, "BPF_F_LOCK on a map without bpf_spin_lock"));
        }
        if m.map_type.is_fd_array() || m.map_type == MapType::HashOfMaps {
            return Err(self.e(
                Errno::EINVAL,
                format!("{} values are object handles, not bytes", m.map_type),
            ));
        }
        self.check_key(key)?;
        if value.len() != self.user_value_size() {
            return Err(self.e(
                Errno::EINVAL,
                format!(
                    "value is {} bytes, expected {}",
                    value.len(),
                    self.user_value_size()
                ),
            ));
        }
        if let Some(r) = m.redirect_map() {
            return r
                .update(m, key_u32(key), value, flags)
                .map_err(|(e, w)| self.e(e, w));
        }
        match m.map_type {
            MapType::Queue | MapType::Stack => self.queue()?.push(&m.name, value, flags),
            MapType::Ringbuf => Err(self.ringbuf_unsupported("update")),
            MapType::LpmTrie => self.0.lpm_trie()?.update_user(m, key, value, flags),
            MapType::Array | MapType::PercpuArray => {
                let idx = self.array_index(key)?;
                self.array_update_check(idx, flags)?;
                if m.map_type == MapType::Array {
                    // SAFETY: idx < max_entries; the slot has elem_size >= value_size bytes.
                    // Concurrent program access to the same value may race, as in the kernel.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            value.as_ptr(),
                            self.array_slot(idx),
                            value.len(),
                        )
                    };
                } else {
                    let p = self.slot_ptr(idx).load(Ordering::Acquire);
                    copy_percpu_in(p, m.nr_cpus, m.value_size, value);
                }
                Ok(())
            }
            _ => self
                .htab()?
                .update(&self.0, key, crate::htab::ValueSrc::User(value), flags),
        }
    }

    /// `array_map_update_elem`'s checks: flags, bound, NOEXIST.
    fn array_update_check(&self, idx: u32, flags: u64) -> Result<(), MapError> {
        if flags & !BPF_F_LOCK > BPF_EXIST {
            return Err(self.e(Errno::EINVAL, format!("update flags {flags:#x}")));
        }
        if idx >= self.0.max_entries {
            return Err(self.e(
                Errno::E2BIG,
                format!("index {idx} >= max_entries {}", self.0.max_entries),
            ));
        }
        if flags & !BPF_F_LOCK == BPF_NOEXIST {
            return Err(self.e(Errno::EEXIST, "array elements always exist (BPF_NOEXIST)"));
        }
        Ok(())
    }

    /// The PROG_ARRAY's owner program type (`owner_prog_type` in fdinfo), once a program
    /// was stored in it or loaded using it.
    pub fn prog_array_owner(&self) -> Option<u32> {
        match self.0.prog_owner_type.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// `bpf_prog_map_compatible` for PROG_ARRAY: the first program type stored (or checked
    /// when a program using the map is loaded) becomes the owner type; later programs must
    /// match it, since a tail call continues with the caller's context. Always true for
    /// other map types.
    pub fn prog_array_compatible(&self, prog_type: u32) -> bool {
        if self.0.map_type != MapType::ProgArray {
            return true;
        }
        match self.0.prog_owner_type.compare_exchange(
            0,
            prog_type,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(owner) => owner == prog_type,
        }
    }

    /// `BPF_MAP_UPDATE_BATCH` (`bpf_map_do_batch` + `generic_map_update_batch`): updates
    /// `keys[i]` to `values[i]` in order, stopping at the first failure. Returns the kernel's
    /// `batch.count` out-value and the error that stopped it. Checks in the kernel's order:
    /// write access (a frozen map: EPERM), a type without batch update (ENOTSUPP), then
    /// `elem_flags` (only `BPF_F_LOCK` is known, and no map here has a spin lock: EINVAL).
    /// A failure before the loop leaves `count` as user space passed it (`keys.len()`); once
    /// the loop starts, it is the number of elements updated.
    /// Map-of-maps values are inner map fds, which need a descriptor table: see
    /// [`Map::update_batch_with`] (here every fd is EBADF).
    pub fn update_batch(
        &self,
        keys: &[&[u8]],
        values: &[&[u8]],
        elem_flags: u64,
    ) -> (usize, Result<(), MapError>) {
        self.update_batch_with(keys, values, elem_flags, |_| Err(Errno::EBADF))
    }

    /// [`Map::update_batch`] where a map-of-maps value (a 4-byte fd) is resolved by `resolve`
    /// when its element is reached, as the kernel's `bpf_map_update_value` does per element
    /// (ARRAY_OF_MAPS and HASH_OF_MAPS have the generic batch update; PROG_ARRAY and the
    /// other fd arrays have none: ENOTSUPP).
    pub fn update_batch_with(
        &self,
        keys: &[&[u8]],
        values: &[&[u8]],
        elem_flags: u64,
        resolve: impl Fn(u32) -> Result<FdObject, Errno>,
    ) -> (usize, Result<(), MapError>) {
        let t = self.0.map_type;
        let passed = keys.len();
        if let Err(e) = self.check_writable() {
            return (passed, Err(e));
        }
        let map_in_map = t.is_map_in_map();
        if (t.is_fd_array() && !map_in_map) || t.is_queue_stack() || t == MapType::Ringbuf {
            return (
                passed,
                Err(self.e(Errno::ENOTSUPP, format!("{t} has no batch update"))),
            );
        }
        if elem_flags != 0 {
            return (
                passed,
                Err(self.e(Errno::EINVAL, format!("batch elem_flags {elem_flags:#x}"))),
            );
        }
        if keys.len() != values.len() {
            return (
                passed,
                Err(self.e(
                    Errno::EINVAL,
                    format!("{} keys but {} values", keys.len(), values.len()),
                )),
            );
        }
        for (done, (k, v)) in keys.iter().zip(values).enumerate() {
            let r = if map_in_map {
                match <[u8; 4]>::try_from(*v) {
                    Ok(fd) => self.update_elem_fd(k, BPF_ANY, || resolve(u32::from_ne_bytes(fd))),
                    Err(_) => Err(self.e(
                        Errno::EINVAL,
                        format!("value is {} bytes, expected an fd (4)", v.len()),
                    )),
                }
            } else {
                self.update_elem(k, v, BPF_ANY)
            };
            if let Err(e) = r {
                return (done, Err(e));
            }
        }
        (keys.len(), Ok(()))
    }

    /// Inserts `inner` into a map-of-maps at `key` (user space writing an inner map fd).
    pub fn update_inner_map(&self, key: &[u8], inner: &Map, flags: u64) -> Result<(), MapError> {
        self.check_writable()?;
        let inner = inner.clone();
        self.update_elem_fd(key, flags, move || Ok(FdObject::Map(inner)))
    }

    /// Stores a program handle into a PROG_ARRAY slot.
    pub fn update_prog(&self, key: &[u8], prog: ProgRef, flags: u64) -> Result<(), MapError> {
        self.update_elem_fd(key, flags, move || Ok(FdObject::Prog(prog)))
    }

    /// `BPF_MAP_UPDATE_ELEM` on an fd map, the written fd resolved by `resolve` at the point
    /// the kernel resolves it (after the flag and index checks for arrays, before them for
    /// HASH_OF_MAPS).
    pub fn update_elem_fd(
        &self,
        key: &[u8],
        flags: u64,
        resolve: impl FnOnce() -> Result<FdObject, Errno>,
    ) -> Result<(), MapError> {
        self.check_writable()?;
        let m = &self.0;
        if flags & BPF_F_LOCK != 0 {
            return Err(self.e(Errno::EINVAL, "BPF_F_LOCK on a map without bpf_spin_lock"));
        }
        match m.map_type {
            MapType::ArrayOfMaps
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::CgroupArray => {
                let idx = self.array_index(key)?;
                // bpf_fd_array_map_update_elem
                if flags != BPF_ANY {
                    return Err(self.e(
                        Errno::EINVAL,
                        format!("{} only accepts BPF_ANY", m.map_type),
                    ));
                }
                if idx >= m.max_entries {
                    return Err(self.e(
                        Errno::E2BIG,
                        format!("index {idx} >= max_entries {}", m.max_entries),
                    ));
                }
                let obj = resolve().map_err(|e| self.e(e, "value is not an open fd"))?;
                match (m.map_type, obj) {
                    (MapType::ArrayOfMaps, FdObject::Map(inner)) => {
                        let p = self.get_inner_ptr(&inner)?;
                        let old = self.slot_ptr(idx).swap(p, Ordering::AcqRel);
                        release_inner_deferred(old);
                        Ok(())
                    }
                    (MapType::ProgArray, FdObject::Prog(prog)) => {
                        if prog.ptr == 0 {
                            return Err(self.e(Errno::EINVAL, "program handle with a null pointer"));
                        }
                        if !self.prog_array_compatible(prog.prog_type) {
                            return Err(self.e(
                                Errno::EINVAL,
                                format!(
                                    "program type {} differs from the array's owner type {}",
                                    prog.prog_type,
                                    self.0.prog_owner_type.load(Ordering::Acquire)
                                ),
                            ));
                        }
                        let Some(slots) = self.prog_slots() else {
                            return Err(self.e(Errno::EINVAL, "prog array without program table"));
                        };
                        let mut slots = slots.lock();
                        let ptr = prog.ptr as *mut c_void;
                        let old = slots[idx as usize].replace(prog);
                        self.slot_ptr(idx).store(ptr, Ordering::Release);
                        drop(slots);
                        drop_deferred(old);
                        Ok(())
                    }
                    (t, _) => {
                        Err(self.e(Errno::EINVAL, format!("fd is not an object {t} can hold")))
                    }
                }
            }
            MapType::HashOfMaps => {
                self.check_key(key)?;
                // bpf_fd_htab_map_update_elem resolves the fd first.
                let obj = resolve().map_err(|e| self.e(e, "value is not an open fd"))?;
                let FdObject::Map(inner) = obj else {
                    return Err(self.e(Errno::EINVAL, "fd is not a BPF map"));
                };
                let p = self.get_inner_ptr(&inner)?;
                let r = self
                    .htab()?
                    .update(&self.0, key, crate::htab::ValueSrc::Inner(p), flags);
                if r.is_err() {
                    // SAFETY: p carries the reference taken by get_inner_ptr, never published.
                    unsafe { release_inner_now(p) };
                }
                r
            }
            t => Err(self.e(Errno::EINVAL, format!("{t} values are bytes, not fds"))),
        }
    }

    /// `bpf_map_fd_get_ptr`: meta-equal check, then a strong reference for the slot.
    fn get_inner_ptr(&self, inner: &Map) -> Result<*mut c_void, MapError> {
        let Some(meta) = &self.0.meta else {
            return Err(self.e(Errno::EINVAL, "not a map-of-maps"));
        };
        meta.map_meta_equal(inner.name(), &inner.desc())
            .map_err(|mut e| {
                e.map = self.0.name.clone();
                e
            })?;
        // The new strong reference belongs to the slot; released by release_inner_*.
        std::mem::forget(inner.0.clone());
        Ok(inner.as_ptr())
    }
}

//! QUEUE and STACK maps (`kernel/bpf/queue_stack_maps.c`): no keys; user-space update pushes,
//! lookup peeks, `lookup_and_delete` pops; programs use the push/pop/peek helpers.
//!
//! Values are copied in and out under one lock (as the kernel's spinlock), so programs never
//! hold pointers into the storage and nothing needs deferred freeing. Capacity and the
//! `BPF_EXIST` "overwrite the oldest when full" rule are the kernel's.

use std::collections::VecDeque;

use crate::error::{Errno, MapError};
use crate::uapi::{BPF_EXIST, BPF_NOEXIST, MapType};

/// Rust-side state of a queue or stack.
pub(crate) struct QueueStack {
    elems: parking_lot::Mutex<VecDeque<Box<[u8]>>>,
    stack: bool,
    max_entries: u32,
    value_size: u32,
}

impl QueueStack {
    pub(crate) fn new(t: MapType, max_entries: u32, value_size: u32) -> QueueStack {
        QueueStack {
            elems: parking_lot::Mutex::new(VecDeque::new()),
            stack: t == MapType::Stack,
            max_entries,
            value_size,
        }
    }

    /// `queue_stack_map_push_elem`: E2BIG when full unless `BPF_EXIST`, which drops the
    /// oldest element to make room.
    pub(crate) fn push(&self, name: &str, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST {
            return Err(MapError::new(
                name,
                Errno::EINVAL,
                format!("push flags {flags:#x}"),
            ));
        }
        if value.len() != self.value_size as usize {
            return Err(MapError::new(
                name,
                Errno::EINVAL,
                format!(
                    "value is {} bytes, value size is {}",
                    value.len(),
                    self.value_size
                ),
            ));
        }
        let mut q = self.elems.lock();
        if q.len() >= self.max_entries as usize {
            if flags & BPF_EXIST == 0 {
                return Err(MapError::new(
                    name,
                    Errno::E2BIG,
                    format!("{} is full", if self.stack { "stack" } else { "queue" }),
                ));
            }
            // The oldest element is at the front for both kinds.
            q.pop_front();
        }
        q.push_back(value.into());
        Ok(())
    }

    /// `__queue_map_get` / `__stack_map_get`: the front (queue) or top (stack) element,
    /// removed when `delete`; ENOENT when empty.
    pub(crate) fn get(&self, name: &str, delete: bool) -> Result<Vec<u8>, MapError> {
        let mut q = self.elems.lock();
        let v = match (self.stack, delete) {
            (false, false) => q.front().map(|v| v.to_vec()),
            (true, false) => q.back().map(|v| v.to_vec()),
            (false, true) => q.pop_front().map(Vec::from),
            (true, true) => q.pop_back().map(Vec::from),
        };
        v.ok_or_else(|| MapError::new(name, Errno::ENOENT, "empty"))
    }

    /// Current number of elements.
    pub(crate) fn len(&self) -> usize {
        self.elems.lock().len()
    }
}

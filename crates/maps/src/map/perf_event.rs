//! A PERF_EVENT_ARRAY's events from user space: what `bpftool map event_pipe` installs and
//! removes ([`crate::perf_event`] holds the events and their sample buffers).

use std::sync::Arc;

use crate::attr::err;
use crate::error::{Errno, MapError};
use crate::map::{Map, MapInner};
use crate::perf_event::{PerfEvent, PerfSlots};

impl MapInner {
    pub(crate) fn perf_slots(&self) -> Option<&PerfSlots> {
        self.perf.as_ref()
    }
}

impl Map {
    /// Opens an event on `cpu` and installs it in slot `index` of this PERF_EVENT_ARRAY (what
    /// bpftool's `map event_pipe` does with `perf_event_open` and a map update), replacing
    /// the slot's event: E2BIG past `max_entries`, EINVAL on another map type or a CPU that
    /// is not possible.
    pub fn perf_event_open(&self, index: u32, cpu: u32) -> Result<Arc<PerfEvent>, MapError> {
        let m = &self.0;
        let Some(slots) = m.perf_slots() else {
            return Err(err(
                &m.name,
                Errno::EINVAL,
                format!("{} is not a perf_event_array", m.map_type),
            ));
        };
        if index >= m.max_entries {
            return Err(err(
                &m.name,
                Errno::E2BIG,
                format!("index {index} >= max_entries {}", m.max_entries),
            ));
        }
        if cpu >= crate::possible_cpus() {
            return Err(err(
                &m.name,
                Errno::EINVAL,
                format!("CPU {cpu} is not possible"),
            ));
        }
        let ev = PerfEvent::new(cpu);
        slots.0.lock()[index as usize] = Some(ev.clone());
        Ok(ev)
    }

    /// The event installed in slot `index`, if any.
    pub fn perf_event(&self, index: u32) -> Option<Arc<PerfEvent>> {
        let slots = self.0.perf_slots()?;
        slots.0.lock().get(index as usize).cloned().flatten()
    }

    /// Removes slot `index`'s event if it is `ev` (a reader closing its event, as closing the
    /// perf event fd releases the slot in the kernel).
    pub fn perf_event_close(&self, index: u32, ev: &Arc<PerfEvent>) {
        if let Some(slots) = self.0.perf_slots()
            && let Some(s) = slots.0.lock().get_mut(index as usize)
            && s.as_ref().is_some_and(|e| Arc::ptr_eq(e, ev))
        {
            *s = None;
        }
    }

    /// `BPF_MAP_DELETE_ELEM` on a PERF_EVENT_ARRAY: ENOENT for an empty slot.
    pub(crate) fn perf_event_delete(&self, index: u32) -> Result<(), MapError> {
        let m = &self.0;
        let slots = m
            .perf_slots()
            .ok_or_else(|| err(&m.name, Errno::EINVAL, "not a perf_event_array"))?;
        match slots
            .0
            .lock()
            .get_mut(index as usize)
            .and_then(Option::take)
        {
            Some(_) => Ok(()),
            None => Err(err(
                &m.name,
                Errno::ENOENT,
                format!("slot {index} is empty"),
            )),
        }
    }
}

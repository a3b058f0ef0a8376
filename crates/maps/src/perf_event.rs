//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY`'s events: what a reader opens and installs in a slot (the
//! kernel's `perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, cpu)` plus the
//! map update with its fd), and where `bpf_perf_event_output` puts samples
//! ([`crate::raw::perf_event_output`]), per CPU, in user space.
//!
//! An event belongs to one CPU; a program may only write to an event of the CPU it runs on
//! (`event->oncpu != cpu` is `-EOPNOTSUPP`), the slot being `flags & BPF_F_INDEX_MASK` or,
//! with `BPF_F_CURRENT_CPU`, the running CPU (kbpf's per-thread [`crate::current_cpu`]). A
//! sample is the raw record the kernel writes: the data padded with zeros so that its `u32`
//! size field and the data end on a `u64` boundary. An event's buffer holds
//! [`PerfEvent::CAPACITY`] bytes of samples; a sample that does not fit is lost (counted, and
//! the helper returns `-ENOSPC` as `perf_output_begin` does).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::Errno;
use crate::uapi::MapType;

/// `BPF_F_INDEX_MASK`: the slot in the helper's flags.
pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CURRENT_CPU`: the slot of the running CPU.
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
/// `BPF_F_CTXLEN_MASK`: how many packet bytes `bpf_perf_event_output` appends (skb, XDP).
pub const BPF_F_CTXLEN_MASK: u64 = 0xf_ffff << 32;

/// One sample (`PERF_RECORD_SAMPLE` with `PERF_SAMPLE_RAW | PERF_SAMPLE_TIME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When it was written (ns since kbpf's first sample).
    pub time_ns: u64,
    /// The raw data, zero-padded as the kernel pads it.
    pub data: Vec<u8>,
}

/// One open event: a CPU and its sample buffer.
#[derive(Debug)]
pub struct PerfEvent {
    cpu: u32,
    samples: Mutex<(VecDeque<Sample>, usize)>,
    lost: AtomicU64,
}

fn epoch() -> &'static Instant {
    static E: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    E.get_or_init(Instant::now)
}

/// The raw record's data size for `n` bytes (`perf_prepare_sample`): `u32` size field plus
/// data rounded up to 8.
fn padded(n: usize) -> usize {
    (n + 4).div_ceil(8) * 8 - 4
}

impl PerfEvent {
    /// Bytes of samples an event buffers (bpftool's default: 64 pages of ring).
    pub const CAPACITY: usize = 64 * 4096;

    /// An event on `cpu`.
    pub fn new(cpu: u32) -> Arc<PerfEvent> {
        Arc::new(PerfEvent {
            cpu,
            samples: Mutex::new((VecDeque::new(), 0)),
            lost: AtomicU64::new(0),
        })
    }

    /// The event's CPU.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// Takes the buffered samples, and the count of samples lost since the last call.
    pub fn drain(&self) -> (Vec<Sample>, u64) {
        let mut g = self.samples.lock();
        g.1 = 0;
        let v = g.0.drain(..).collect();
        (v, self.lost.swap(0, Ordering::Relaxed))
    }

    pub(crate) fn push(&self, parts: &[&[u8]]) -> i64 {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        let size = padded(n);
        let mut g = self.samples.lock();
        // A record: 8-byte header, 8-byte time, 4-byte size and the data.
        let rec = 8 + 8 + 4 + size;
        if g.1 + rec > Self::CAPACITY {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return -(Errno::ENOSPC.code() as i64);
        }
        let mut data = Vec::with_capacity(size);
        for p in parts {
            data.extend_from_slice(p);
        }
        data.resize(size, 0);
        g.1 += rec;
        g.0.push_back(Sample {
            time_ns: epoch().elapsed().as_nanos() as u64,
            data,
        });
        0
    }
}

/// A PERF_EVENT_ARRAY's slots.
pub(crate) struct PerfSlots(pub(crate) Mutex<Vec<Option<Arc<PerfEvent>>>>);

impl PerfSlots {
    pub(crate) fn new(max_entries: u32) -> PerfSlots {
        PerfSlots(Mutex::new(vec![None; max_entries as usize]))
    }
}

/// The slots of a perf event array, if `t` is one.
pub(crate) fn slots_for(t: MapType, max_entries: u32) -> Option<PerfSlots> {
    (t == MapType::PerfEventArray).then(|| PerfSlots::new(max_entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::perf_event_output as output;
    use crate::{Map, MapAttr};

    #[test]
    fn output_finds_the_slot_and_checks_its_cpu() {
        let m = Map::create(
            &MapAttr::new(MapType::PerfEventArray, 4, 4, 2).name("ev"),
            None,
        )
        .unwrap();
        crate::set_current_cpu(0);
        let p = m.as_ptr();
        // SAFETY: a live perf event array.
        unsafe {
            assert_eq!(output(p, BPF_F_CURRENT_CPU, &[b"abc"]), -2, "no event");
            assert_eq!(output(p, 2, &[b"abc"]), -7, "past max_entries");
        }
        let ev = m.perf_event_open(0, 0).unwrap();
        // SAFETY: as above.
        unsafe {
            assert_eq!(output(p, BPF_F_CURRENT_CPU, &[b"abc", b"de"]), 0);
        }
        let (s, lost) = ev.drain();
        assert_eq!(lost, 0);
        assert_eq!(s.len(), 1);
        // 5 bytes + the 4-byte size field round up to 16: 12 bytes of data.
        assert_eq!(s[0].data, b"abcde\0\0\0\0\0\0\0");
        if crate::possible_cpus() > 1 {
            m.perf_event_open(1, 1).unwrap();
            // SAFETY: as above.
            assert_eq!(unsafe { output(p, 1, &[b"x"]) }, -95, "another CPU's event");
        }
        m.perf_event_close(0, &ev);
        assert_eq!(
            m.delete_elem(&0u32.to_ne_bytes()).unwrap_err().errno,
            Errno::ENOENT
        );
        assert_eq!(m.perf_event_open(2, 0).unwrap_err().errno, Errno::E2BIG);
    }
}

//! [`KernelRingbuf`]: a user-space consumer of a kernel BPF_MAP_TYPE_RINGBUF, as libbpf's
//! `ring_buffer__consume`: the consumer page is mapped read-write at offset 0, the producer
//! page and the data (mapped twice by the kernel, so a wrapping record is contiguous) read-only
//! at offset `PAGE_SIZE`; records are read in order up to the first still BUSY one, discarded
//! ones skipped, and the consumer position stored after each.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kbpf_uapi::bpf::{BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ};

use crate::{Errno, Error, KernelMap};

/// The record header's size as an offset.
const HDR_SZ: usize = BPF_RINGBUF_HDR_SZ as usize;

/// A kernel ring buffer mapped for consumption; unmapped on drop.
pub struct KernelRingbuf {
    consumer: *mut u8,
    producer: *mut u8,
    page: usize,
    data_sz: usize,
}

impl KernelRingbuf {
    /// Maps `map` (a RINGBUF) as libbpf's `ring_buffer__add` does.
    pub fn new(map: &KernelMap) -> Result<KernelRingbuf, Error> {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_sz = map.info()?.max_entries as usize;
        let fd = map.as_raw_fd();
        let sys = |errno| Error::Sys {
            op: "mmap",
            object: map.name(),
            errno,
        };
        // SAFETY: fresh mappings of the map's fd at the offsets and sizes the kernel's
        // ringbuf_map_mmap accepts; nothing else aliases them.
        unsafe {
            let consumer = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if consumer == libc::MAP_FAILED {
                return Err(sys(Errno::last()));
            }
            let producer = libc::mmap(
                std::ptr::null_mut(),
                page + 2 * data_sz,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                page as libc::off_t,
            );
            if producer == libc::MAP_FAILED {
                let e = Errno::last();
                libc::munmap(consumer, page);
                return Err(sys(e));
            }
            Ok(KernelRingbuf {
                consumer: consumer.cast(),
                producer: producer.cast(),
                page,
                data_sz,
            })
        }
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the first word of the mapped consumer page, shared with the kernel, which
        // only reads it (the kernel's `consumer_pos`).
        unsafe { AtomicU64::from_ptr(self.consumer.cast()) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: the first word of the mapped producer page (read-only here).
        unsafe { AtomicU64::from_ptr(self.producer.cast()) }
    }

    /// Consumes every committed record, calling `f` with each payload; returns how many.
    pub fn consume(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        let mut n = 0;
        loop {
            let prod = self.producer_pos().load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            let off = (cons as usize) & (self.data_sz - 1);
            // SAFETY: the header lies in the mapped data (after the producer page); the data
            // is mapped twice, so the payload behind it is contiguous.
            let (len, payload) = unsafe {
                let hdr = self.producer.add(self.page + off);
                let len = (*AtomicU32::from_ptr(hdr.cast())).load(Ordering::Acquire);
                (len, hdr.add(HDR_SZ))
            };
            if len & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let size = (len & !BPF_RINGBUF_DISCARD_BIT) as usize;
            if len & BPF_RINGBUF_DISCARD_BIT == 0 {
                // SAFETY: a committed record of `size` bytes, inside the double mapping.
                f(unsafe { std::slice::from_raw_parts(payload, size) });
                n += 1;
            }
            cons += (size + HDR_SZ).next_multiple_of(8) as u64;
            self.consumer_pos().store(cons, Ordering::Release);
        }
        n
    }
}

impl Drop for KernelRingbuf {
    fn drop(&mut self) {
        // SAFETY: the mappings made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast(), self.page + 2 * self.data_sz);
        }
    }
}

//! BPF_MAP_TYPE_RINGBUF (`kernel/bpf/ringbuf.c`): a multi-producer, single-consumer byte ring
//! of `max_entries` bytes (a power of two, page-aligned) carrying variable-length records.
//!
//! What the kernel exposes and kbpf mirrors: the creation checks of `ringbuf_map_alloc` (in
//! [`crate::map`]), ENOTSUPP for all user-space element commands, use as an inner-map template
//! (generic `map_meta_equal`: `max_entries` may differ), `ringbuf_map_mem_usage`, and the record
//! format: an 8-byte header (`len` with the BUSY/DISCARD bits, `pg_off`), the payload, the
//! whole rounded up to 8 bytes, positions that only grow and are masked into the ring.
//!
//! Where kbpf differs in mechanism, not in result: the kernel maps the data pages twice so a
//! record wrapping the end is virtually contiguous; here records are only copied in
//! ([`Ringbuf::output`], `bpf_ringbuf_output`) and out ([`Ringbuf::consume`], what libbpf's
//! `ring_buffer__consume` does on the mmap-ed ring), so a wrapped record is copied in two
//! pieces. Both happen under one lock (the kernel's producer spinlock), so a record is never
//! observed half written and the BUSY bit is never seen set by the consumer.

use crate::error::Errno;
use crate::uapi::{
    BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT,
    BPF_RINGBUF_HDR_SZ, PAGE_SIZE, RINGBUF_MAX_RECORD_SZ, RINGBUF_NR_META_PAGES,
};

struct RingState {
    /// The data area, `max_entries` bytes (zeroed allocation: the OS commits pages lazily).
    data: Box<[u8]>,
    /// Bytes ever produced (the kernel's `producer_pos`).
    producer_pos: u64,
    /// Bytes ever consumed (the kernel's `consumer_pos`).
    consumer_pos: u64,
}

/// Rust-side state of a ring buffer map.
pub(crate) struct Ringbuf {
    state: parking_lot::Mutex<RingState>,
    mask: u64,
}

impl Ringbuf {
    /// `bpf_ringbuf_alloc`; `data_sz` was checked to be a page-aligned power of two.
    pub(crate) fn new(data_sz: u32) -> Ringbuf {
        Ringbuf {
            state: parking_lot::Mutex::new(RingState {
                data: vec![0u8; data_sz as usize].into_boxed_slice(),
                producer_pos: 0,
                consumer_pos: 0,
            }),
            mask: data_sz as u64 - 1,
        }
    }

    /// Size of the data area (`ringbuf_total_data_sz`).
    pub(crate) fn total_data_sz(&self) -> u64 {
        self.mask + 1
    }

    /// Bytes produced and not yet consumed (`ringbuf_avail_data_sz`).
    pub(crate) fn avail_data_sz(&self) -> u64 {
        let s = self.state.lock();
        s.producer_pos - s.consumer_pos
    }

    /// `bpf_ringbuf_output`: reserves a record for `data`, copies it and commits it. EINVAL for
    /// flags other than NO_WAKEUP/FORCE_WAKEUP; EAGAIN when the record can never fit or the
    /// ring has no room now (the kernel's reserve returning NULL).
    pub(crate) fn output(&self, data: &[u8], flags: u64) -> Result<(), Errno> {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Err(Errno::EINVAL);
        }
        let size = data.len() as u64;
        if size > RINGBUF_MAX_RECORD_SZ {
            return Err(Errno::EAGAIN);
        }
        let len = (size + BPF_RINGBUF_HDR_SZ).next_multiple_of(8);
        if len > self.total_data_sz() {
            return Err(Errno::EAGAIN);
        }
        let mut s = self.state.lock();
        let prod = s.producer_pos;
        // The producer may run at most ring size - 1 bytes ahead of the consumer.
        if prod + len - s.consumer_pos > self.mask {
            return Err(Errno::EAGAIN);
        }
        let off = prod & self.mask;
        // pg_off: page distance from the start of `struct bpf_ringbuf` (the meta pages come
        // first) to the header, which lets the kernel find the ring from a record pointer.
        let pg_off = (RINGBUF_NR_META_PAGES + off / PAGE_SIZE) as u32;
        let mut hdr = [0u8; BPF_RINGBUF_HDR_SZ as usize];
        // Committed length: BUSY cleared (the record is complete when the lock is released).
        hdr[..4].copy_from_slice(&(size as u32).to_ne_bytes());
        hdr[4..].copy_from_slice(&pg_off.to_ne_bytes());
        self.write_wrapped(&mut s.data, off, &hdr);
        self.write_wrapped(&mut s.data, (off + BPF_RINGBUF_HDR_SZ) & self.mask, data);
        s.producer_pos = prod + len;
        Ok(())
    }

    /// Consumes every committed record in order, calling `f` with each payload (discarded
    /// records are skipped); returns how many were delivered.
    pub(crate) fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        let mut s = self.state.lock();
        let mut n = 0;
        while s.consumer_pos < s.producer_pos {
            let off = s.consumer_pos & self.mask;
            let mut hdr = [0u8; BPF_RINGBUF_HDR_SZ as usize];
            self.read_wrapped(&s.data, off, &mut hdr);
            let raw_len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            if raw_len & BPF_RINGBUF_BUSY_BIT != 0 {
                // Not committed yet: a consumer stops here (cannot happen under the lock).
                break;
            }
            let size = raw_len & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
            if raw_len & BPF_RINGBUF_DISCARD_BIT == 0 {
                let mut rec = vec![0u8; size as usize];
                self.read_wrapped(&s.data, (off + BPF_RINGBUF_HDR_SZ) & self.mask, &mut rec);
                f(&rec);
                n += 1;
            }
            s.consumer_pos += (size as u64 + BPF_RINGBUF_HDR_SZ).next_multiple_of(8);
        }
        n
    }

    fn write_wrapped(&self, ring: &mut [u8], off: u64, src: &[u8]) {
        let off = off as usize;
        let first = src.len().min(ring.len() - off);
        ring[off..off + first].copy_from_slice(&src[..first]);
        ring[..src.len() - first].copy_from_slice(&src[first..]);
    }

    fn read_wrapped(&self, ring: &[u8], off: u64, dst: &mut [u8]) {
        let off = off as usize;
        let first = dst.len().min(ring.len() - off);
        dst[..first].copy_from_slice(&ring[off..off + first]);
        let rest = dst.len() - first;
        dst[first..].copy_from_slice(&ring[..rest]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_wrap() {
        let rb = Ringbuf::new(4096);
        assert_eq!(rb.total_data_sz(), 4096);
        // 1000-byte payloads take 1008 bytes each: 4 fit (4032 <= 4095), a fifth does not.
        for i in 0..4u8 {
            rb.output(&[i; 1000], 0).unwrap();
        }
        assert_eq!(rb.output(&[9; 1000], 0), Err(Errno::EAGAIN));
        assert_eq!(rb.avail_data_sz(), 4032);
        let mut got = Vec::new();
        assert_eq!(rb.consume(|r| got.push(r.to_vec())), 4);
        assert_eq!(got.len(), 4);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, r)| r == &vec![i as u8; 1000])
        );
        // The next record starts at offset 4032 and wraps around the end of the ring.
        let rec: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        rb.output(&rec, BPF_RB_NO_WAKEUP).unwrap();
        let mut back = Vec::new();
        assert_eq!(rb.consume(|r| back = r.to_vec()), 1);
        assert_eq!(back, rec);
        assert_eq!(rb.avail_data_sz(), 0);
    }

    #[test]
    fn output_rejects_bad_flags_and_oversized_records() {
        let rb = Ringbuf::new(4096);
        assert_eq!(rb.output(&[1], 4), Err(Errno::EINVAL));
        // A record of the whole ring (plus header) can never fit.
        assert_eq!(rb.output(&[0; 4096], 0), Err(Errno::EAGAIN));
        // The largest record: 4096 - 8 bytes would make the producer a full ring ahead.
        assert_eq!(rb.output(&[0; 4088], 0), Err(Errno::EAGAIN));
        rb.output(&[0; 4080], 0).unwrap();
        assert_eq!(rb.consume(|r| assert_eq!(r.len(), 4080)), 1);
    }

    #[test]
    fn header_carries_page_offset() {
        let rb = Ringbuf::new(8192);
        rb.output(&[7; 4000], 0).unwrap();
        rb.output(&[8; 16], 0).unwrap();
        let s = rb.state.lock();
        // First record at offset 0: data page 0 follows the 3 meta pages.
        assert_eq!(u32::from_ne_bytes(s.data[4..8].try_into().unwrap()), 3);
        assert_eq!(u32::from_ne_bytes(s.data[0..4].try_into().unwrap()), 4000);
        // Second at 4008 (still page 0); the payload spans into page 1.
        assert_eq!(
            u32::from_ne_bytes(s.data[4012..4016].try_into().unwrap()),
            3
        );
    }
}

//! BPF_MAP_TYPE_RINGBUF (`kernel/bpf/ringbuf.c`): a multi-producer, single-consumer byte ring
//! of `max_entries` bytes (a power of two, page-aligned) carrying variable-length records,
//! and the helpers programs use on it (`bpf_ringbuf_output`, `bpf_ringbuf_reserve`,
//! `bpf_ringbuf_submit`, `bpf_ringbuf_discard`, `bpf_ringbuf_query`: their program entry
//! points on map pointers are in [`crate::raw`], called by kbpf-run's helper shims).
//!
//! What the kernel exposes and kbpf mirrors: the creation checks of `ringbuf_map_alloc` (in
//! [`crate::map`]), ENOTSUPP for all user-space element commands, use as an inner-map template
//! (generic `map_meta_equal`: `max_entries` may differ), `ringbuf_map_mem_usage`, and the
//! memory layout of `struct bpf_ringbuf`: three meta pages (a header page, the consumer
//! position alone in the second, the producer and pending positions in the third), then the
//! data. Records are as the kernel writes them: an 8-byte header (`len` with the BUSY bit
//! while reserved and the DISCARD bit once discarded, `pg_off` the page distance from the
//! start of the ring to the header, from which submit/discard find the ring), the payload,
//! the whole rounded up to 8 bytes; positions only grow and are masked into the ring. A
//! reservation fails (NULL, or -EAGAIN for output) when the record is larger than
//! `RINGBUF_MAX_RECORD_SZ` or the ring, or when the producer would run a whole ring ahead of
//! the consumer or of the oldest record still reserved (the kernel's `pending_pos`).
//! Wake-ups are counted where the kernel queues its irq work: on FORCE_WAKEUP, or when the
//! committed record is the one the consumer waits at and NO_WAKEUP is not given.
//!
//! Where kbpf differs in mechanism, not in result: the kernel maps the data pages twice so a
//! record wrapping the end is virtually contiguous for the program writing it; here the data
//! area is allocated twice as large, a wrapping record is written linearly into the second
//! half and its tail is copied to the start of the ring when it is committed, before the BUSY
//! bit is cleared, so a consumer (which only reads committed records, from the first half)
//! sees what the kernel's would.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::Errno;
use crate::uapi::{
    BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE, BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ, PAGE_SIZE,
    RINGBUF_MAX_RECORD_SZ, RINGBUF_NR_META_PAGES,
};

/// Offsets in the ring's allocation, as in `struct bpf_ringbuf`: the header page holds the
/// mask and kbpf's wake-up count, the consumer and producer positions have pages of their own
/// (`__aligned(PAGE_SIZE)`, `pending_pos` beside the producer's), the data follows.
const MASK_OFF: usize = 0;
const WAKEUPS_OFF: usize = 8;
const CONSUMER_POS_OFF: usize = PAGE_SIZE as usize;
const PRODUCER_POS_OFF: usize = 2 * PAGE_SIZE as usize;
const PENDING_POS_OFF: usize = PRODUCER_POS_OFF + 8;
const DATA_OFF: usize = (RINGBUF_NR_META_PAGES * PAGE_SIZE) as usize;

/// A record's whole length in the ring: header and payload, rounded up to 8 bytes.
fn record_len(size: u64) -> u64 {
    (size + BPF_RINGBUF_HDR_SZ).next_multiple_of(8)
}

/// The 64-bit word at `off` in a ring allocation.
///
/// # Safety
/// `base` is a live ring allocation and `off` one of the word offsets above.
unsafe fn word<'a>(base: *mut u8, off: usize) -> &'a AtomicU64 {
    // SAFETY: the allocation is page-aligned, so the word is 8-aligned and in bounds; it is
    // only ever accessed atomically.
    unsafe { AtomicU64::from_ptr(base.add(off).cast()) }
}

/// The `len` word of the record header at `hdr`.
///
/// # Safety
/// `hdr` is a record header in a live ring's data area (8-aligned).
unsafe fn hdr_len<'a>(hdr: *mut u8) -> &'a AtomicU32 {
    // SAFETY: per the contract; headers are only accessed atomically once published.
    unsafe { AtomicU32::from_ptr(hdr.cast()) }
}

/// Rust-side state of a ring buffer map: its allocation (meta pages and data) and the locks.
pub(crate) struct Ringbuf {
    base: NonNull<u8>,
    layout: Layout,
    mask: u64,
    /// `rb->spinlock`: one producer reserves at a time.
    producer: parking_lot::Mutex<()>,
    /// One consumer at a time (the kernel leaves that to user space).
    consumer: parking_lot::Mutex<()>,
}

// SAFETY: the allocation is owned by the Ringbuf. Positions and record headers are only
// accessed atomically; a reserved payload belongs to the one program that reserved it until
// it commits (release on the header), and the consumer reads only committed payloads (acquire
// on the header), under its lock.
unsafe impl Send for Ringbuf {}
// SAFETY: as above.
unsafe impl Sync for Ringbuf {}

impl Drop for Ringbuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}

impl Ringbuf {
    /// `bpf_ringbuf_alloc`; `data_sz` was checked to be a page-aligned power of two. `None`
    /// when the memory cannot be had (the kernel's ENOMEM).
    pub(crate) fn new(data_sz: u32) -> Option<Ringbuf> {
        let layout =
            Layout::from_size_align(DATA_OFF + 2 * data_sz as usize, PAGE_SIZE as usize).ok()?;
        // SAFETY: the layout has a non-zero size. Zeroed pages are committed lazily.
        let base = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        let rb = Ringbuf {
            base,
            layout,
            mask: data_sz as u64 - 1,
            producer: parking_lot::Mutex::new(()),
            consumer: parking_lot::Mutex::new(()),
        };
        rb.word(MASK_OFF).store(rb.mask, Ordering::Relaxed);
        Some(rb)
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        // SAFETY: `base` is this ring's live allocation.
        unsafe { word(self.base.as_ptr(), off) }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: in bounds of the allocation.
        unsafe { self.base.as_ptr().add(DATA_OFF) }
    }

    /// Size of the data area (`ringbuf_total_data_sz`).
    pub(crate) fn total_data_sz(&self) -> u64 {
        self.mask + 1
    }

    /// Bytes produced and not yet consumed (`ringbuf_avail_data_sz`).
    pub(crate) fn avail_data_sz(&self) -> u64 {
        let cons = self.word(CONSUMER_POS_OFF).load(Ordering::Acquire);
        let prod = self.word(PRODUCER_POS_OFF).load(Ordering::Acquire);
        prod.wrapping_sub(cons)
    }

    /// How many times a commit would have woken the consumer (the kernel's irq work).
    #[cfg(test)]
    pub(crate) fn wakeups(&self) -> u64 {
        self.word(WAKEUPS_OFF).load(Ordering::Relaxed)
    }

    /// `bpf_ringbuf_query(map, flags)`: 0 for an unknown flag, as the kernel.
    pub(crate) fn query(&self, flags: u64) -> u64 {
        match flags {
            BPF_RB_AVAIL_DATA => self.avail_data_sz(),
            BPF_RB_RING_SIZE => self.total_data_sz(),
            BPF_RB_CONS_POS => self.word(CONSUMER_POS_OFF).load(Ordering::Acquire),
            BPF_RB_PROD_POS => self.word(PRODUCER_POS_OFF).load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// `__bpf_ringbuf_reserve`: a BUSY record of `size` bytes, or NULL when it cannot fit.
    /// The returned payload is `size` contiguous writable bytes until it is committed.
    pub(crate) fn reserve(&self, size: u64) -> *mut u8 {
        if size > RINGBUF_MAX_RECORD_SZ {
            return std::ptr::null_mut();
        }
        let len = record_len(size);
        if len > self.total_data_sz() {
            return std::ptr::null_mut();
        }
        let cons = self.word(CONSUMER_POS_OFF).load(Ordering::Acquire);
        let _guard = self.producer.lock();
        let mut pend = self.word(PENDING_POS_OFF).load(Ordering::Relaxed);
        let prod = self.word(PRODUCER_POS_OFF).load(Ordering::Relaxed);
        // Skip the records committed since: the oldest still reserved bounds the producer.
        while pend < prod {
            // SAFETY: `pend` is the position of a published header in the data area.
            let l = unsafe { hdr_len(self.data().add((pend & self.mask) as usize)) }
                .load(Ordering::Acquire);
            if l & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            pend += record_len((l & !BPF_RINGBUF_DISCARD_BIT) as u64);
        }
        self.word(PENDING_POS_OFF).store(pend, Ordering::Relaxed);
        let new_prod = prod + len;
        if new_prod - cons > self.mask || new_prod - pend > self.mask {
            return std::ptr::null_mut();
        }
        let off = prod & self.mask;
        // pg_off: page distance from the start of the ring (meta pages first) to the header.
        let pg_off = (RINGBUF_NR_META_PAGES + off / PAGE_SIZE) as u32;
        // SAFETY: an 8-aligned header inside the first copy of the data (records are 8-byte
        // multiples and the ring a page multiple, so a header never wraps); its bytes belong
        // to no live record (the checks above).
        unsafe {
            let hdr = self.data().add(off as usize);
            hdr_len(hdr).store(size as u32 | BPF_RINGBUF_BUSY_BIT, Ordering::Relaxed);
            AtomicU32::from_ptr(hdr.add(4).cast()).store(pg_off, Ordering::Relaxed);
            self.word(PRODUCER_POS_OFF)
                .store(new_prod, Ordering::Release);
            hdr.add(BPF_RINGBUF_HDR_SZ as usize)
        }
    }

    /// `bpf_ringbuf_output`: reserves a record for `data`, copies it and commits it. EINVAL for
    /// flags other than NO_WAKEUP/FORCE_WAKEUP; EAGAIN when the record can never fit or the
    /// ring has no room now (the kernel's reserve returning NULL).
    pub(crate) fn output(&self, data: &[u8], flags: u64) -> Result<(), Errno> {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Err(Errno::EINVAL);
        }
        let rec = self.reserve(data.len() as u64);
        if rec.is_null() {
            return Err(Errno::EAGAIN);
        }
        // SAFETY: `rec` is a fresh reservation of `data.len()` writable bytes, committed once.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), rec, data.len());
            commit(rec, flags, false);
        }
        Ok(())
    }

    /// Consumes every committed record in order, as libbpf's `ring_buffer__consume` does on
    /// the mmap-ed ring: stops at the first record still BUSY, skips discarded ones, moves the
    /// consumer position past each; calls `f` with each payload and returns how many.
    pub(crate) fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        let _guard = self.consumer.lock();
        let cons_pos = self.word(CONSUMER_POS_OFF);
        let mut cons = cons_pos.load(Ordering::Relaxed);
        let mut n = 0;
        loop {
            let prod = self.word(PRODUCER_POS_OFF).load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            let off = (cons & self.mask) as usize;
            // SAFETY: a published header in the data area.
            let l = unsafe { hdr_len(self.data().add(off)) }.load(Ordering::Acquire);
            if l & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let size = (l & !BPF_RINGBUF_DISCARD_BIT) as usize;
            if l & BPF_RINGBUF_DISCARD_BIT == 0 {
                let mut rec = vec![0u8; size];
                let start = (off + BPF_RINGBUF_HDR_SZ as usize) & self.mask as usize;
                let first = size.min(self.total_data_sz() as usize - start);
                // SAFETY: the committed payload, in the first copy of the data (a wrapped
                // tail was copied to the start before the commit released the header).
                unsafe {
                    std::ptr::copy_nonoverlapping(self.data().add(start), rec.as_mut_ptr(), first);
                    std::ptr::copy_nonoverlapping(
                        self.data(),
                        rec.as_mut_ptr().add(first),
                        size - first,
                    );
                }
                f(&rec);
                n += 1;
            }
            cons += record_len(size as u64);
            cons_pos.store(cons, Ordering::Release);
        }
        n
    }
}

/// `bpf_ringbuf_commit`: the ring is found from the header's `pg_off`; a wrapped tail is
/// copied to the start of the ring, then the header loses BUSY (and gains DISCARD for a
/// discard) with release order; wake-ups as the kernel's.
///
/// # Safety
/// `sample` was returned by [`Ringbuf::reserve`] of a live ring and is not committed yet.
pub(crate) unsafe fn commit(sample: *mut u8, flags: u64, discard: bool) {
    // SAFETY: per the contract, the header precedes the sample and names its ring.
    unsafe {
        let hdr = sample.sub(BPF_RINGBUF_HDR_SZ as usize);
        let pg_off = AtomicU32::from_ptr(hdr.add(4).cast()).load(Ordering::Relaxed) as usize;
        let base =
            ((hdr as usize & !(PAGE_SIZE as usize - 1)) - pg_off * PAGE_SIZE as usize) as *mut u8;
        let mask = word(base, MASK_OFF).load(Ordering::Relaxed);
        let data = base.add(DATA_OFF);
        let len = hdr_len(hdr);
        let l = len.load(Ordering::Relaxed);
        let rec_pos = hdr.offset_from(data) as u64;
        let end = rec_pos + record_len((l & !BPF_RINGBUF_BUSY_BIT) as u64);
        let total = mask + 1;
        if end > total {
            std::ptr::copy_nonoverlapping(data.add(total as usize), data, (end - total) as usize);
        }
        let mut new_len = l ^ BPF_RINGBUF_BUSY_BIT;
        if discard {
            new_len |= BPF_RINGBUF_DISCARD_BIT;
        }
        len.swap(new_len, Ordering::AcqRel);
        let cons = word(base, CONSUMER_POS_OFF).load(Ordering::Acquire) & mask;
        if flags & BPF_RB_FORCE_WAKEUP != 0 || (cons == rec_pos && flags & BPF_RB_NO_WAKEUP == 0) {
            word(base, WAKEUPS_OFF).fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rb: &Ringbuf, off: usize) -> (u32, u32) {
        // SAFETY: reading 8 bytes inside the data area of a live ring in a single-threaded test.
        unsafe {
            let p = rb.data().add(off);
            (
                std::ptr::read(p.cast::<u32>()),
                std::ptr::read(p.add(4).cast::<u32>()),
            )
        }
    }

    #[test]
    fn records_round_trip_and_wrap() {
        let rb = Ringbuf::new(4096).unwrap();
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
        assert_eq!(rb.query(BPF_RB_CONS_POS), 4032 + 208);
        assert_eq!(rb.query(BPF_RB_PROD_POS), 4032 + 208);
        assert_eq!(rb.query(BPF_RB_RING_SIZE), 4096);
        assert_eq!(rb.query(99), 0);
    }

    #[test]
    fn output_rejects_bad_flags_and_oversized_records() {
        let rb = Ringbuf::new(4096).unwrap();
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
        let rb = Ringbuf::new(8192).unwrap();
        rb.output(&[7; 4000], 0).unwrap();
        rb.output(&[8; 16], 0).unwrap();
        // First record at offset 0: data page 0 follows the 3 meta pages.
        assert_eq!(header(&rb, 0), (4000, 3));
        // Second at 4008 (still page 0); the payload spans into page 1.
        assert_eq!(header(&rb, 4008), (16, 3));
    }

    #[test]
    fn reserved_records_hold_back_the_consumer_and_the_producer() {
        let rb = Ringbuf::new(4096).unwrap();
        let a = rb.reserve(1000);
        let b = rb.reserve(8);
        assert!(!a.is_null() && !b.is_null());
        // BUSY while reserved: nothing to consume, though the producer moved on.
        assert_eq!(header(&rb, 0), (1000 | BPF_RINGBUF_BUSY_BIT, 3));
        assert_eq!(rb.avail_data_sz(), 1008 + 16);
        // SAFETY: fresh reservations, written within their sizes and committed once each.
        unsafe {
            std::ptr::write_bytes(b, 0xbb, 8);
            commit(b, 0, false);
            assert_eq!(rb.consume(|_| panic!("a is still busy")), 0);
            std::ptr::write_bytes(a, 0xaa, 1000);
            commit(a, 0, true);
        }
        // a was discarded: only b is delivered, and the consumer passes both.
        let mut got = Vec::new();
        assert_eq!(rb.consume(|r| got.push(r.to_vec())), 1);
        assert_eq!(got, vec![vec![0xbb; 8]]);
        assert_eq!(header(&rb, 0).0, 1000 | BPF_RINGBUF_DISCARD_BIT);
        assert_eq!(rb.avail_data_sz(), 0);
        // A reservation not committed holds the consumer, and so the producer, back.
        let c = rb.reserve(2000);
        assert!(!c.is_null());
        assert!(rb.reserve(2100).is_null(), "would run a ring ahead of c");
        // SAFETY: as above.
        unsafe { commit(c, 0, false) };
        assert_eq!(rb.consume(|r| assert_eq!(r.len(), 2000)), 1);
        assert!(!rb.reserve(2100).is_null());
    }

    #[test]
    fn a_wrapped_reservation_is_contiguous_for_the_writer() {
        let rb = Ringbuf::new(4096).unwrap();
        rb.output(&[0; 4000], 0).unwrap();
        rb.consume(|_| {});
        // Header at 4008, payload 4016..4096 then 0..120 of the ring: written linearly.
        let p = rb.reserve(200);
        assert!(!p.is_null());
        // SAFETY: 200 writable bytes of a fresh reservation, committed once.
        unsafe {
            for i in 0..200 {
                *p.add(i) = i as u8;
            }
            commit(p, 0, false);
        }
        let mut got = Vec::new();
        rb.consume(|r| got = r.to_vec());
        assert_eq!(got, (0..200).map(|i| i as u8).collect::<Vec<_>>());
    }

    #[test]
    fn wakeups_follow_the_flags() {
        let rb = Ringbuf::new(4096).unwrap();
        // The consumer waits at position 0: the first record wakes it.
        rb.output(b"a", 0).unwrap();
        assert_eq!(rb.wakeups(), 1);
        // Not the record the consumer waits at: no wake-up, unless forced.
        rb.output(b"b", 0).unwrap();
        assert_eq!(rb.wakeups(), 1);
        rb.output(b"c", BPF_RB_FORCE_WAKEUP).unwrap();
        assert_eq!(rb.wakeups(), 2);
        rb.consume(|_| {});
        rb.output(b"d", BPF_RB_NO_WAKEUP).unwrap();
        assert_eq!(rb.wakeups(), 2);
    }
}

//! The native limit: the benchmark computations compiled from `native/limits.c` for x86-64
//! at -O2, the packet and the array as plain memory. What no engine running the same
//! bytecode can beat by much; the side-by-side table puts it in its own column.

use std::hint::black_box;

use crate::progs;

unsafe extern "C" {
    fn kbpf_native_alu_loop(iterations: u64, r2: u64, mul: u64) -> u64;
    fn kbpf_native_fnv1a(
        data: *const u8,
        data_end: *const u8,
        len: u64,
        offset: u64,
        prime: u64,
    ) -> u64;
    fn kbpf_native_parse_hash(data: *const u8, data_end: *const u8, drop: u64, init: u32) -> u64;
    fn kbpf_native_lookup_loop(
        values: *const u64,
        max_entries: u32,
        lookups: u32,
        entries: u32,
        expect: u64,
    ) -> u32;
}

/// `progs::alu_loop()` natively.
pub fn alu_loop() -> u64 {
    // SAFETY: a pure function of its integer arguments.
    unsafe {
        kbpf_native_alu_loop(
            black_box(progs::ALU_ITERATIONS as u64),
            black_box(0x12345),
            black_box(0x9e3779b1u32 as i32 as i64 as u64),
        )
    }
}

/// `fnv1a_checked()` natively over `pkt`.
pub fn fnv1a(pkt: &[u8]) -> u64 {
    let r = pkt.as_ptr_range();
    // SAFETY: the C function reads only [data, data + len) after checking it lies within
    // [data, data_end), which is `pkt`.
    unsafe {
        kbpf_native_fnv1a(
            r.start,
            r.end,
            black_box(crate::FNV_LEN as u64),
            black_box(progs::FNV64_OFFSET),
            black_box(progs::FNV64_PRIME),
        )
    }
}

/// `progs::parse_hash()` natively over `pkt`.
pub fn parse_hash(pkt: &[u8]) -> u64 {
    let r = pkt.as_ptr_range();
    // SAFETY: every read is preceded by a check that it lies within [data, data_end), which
    // is `pkt`, as in the BPF program.
    unsafe {
        kbpf_native_parse_hash(
            r.start,
            r.end,
            black_box(progs::PARSE_DROP),
            black_box(0xdeadbeef),
        )
    }
}

/// Lookups per run of `lookup_*.bpf.c`, and the array's entries (`bpf/lookups.h`).
pub const LOOKUPS: u32 = 1000;
/// See [`LOOKUPS`].
pub const ENTRIES: u32 = 256;

/// `lookup_inline.bpf.c` natively over a zeroed 256-entry array: the XDP action.
pub fn lookup_loop(values: &[u64]) -> u32 {
    let n = ENTRIES as u64;
    let expect = LOOKUPS as u64 / n * (n * (n - 1) / 2)
        + (LOOKUPS as u64 % n) * (LOOKUPS as u64 % n).saturating_sub(1) / 2;
    assert!(values.len() >= ENTRIES as usize);
    // SAFETY: every index is below `entries` = 256 <= values.len(), checked above.
    unsafe {
        kbpf_native_lookup_loop(
            values.as_ptr(),
            black_box(values.len() as u32),
            black_box(LOOKUPS),
            black_box(ENTRIES),
            black_box(expect),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_limits_compute_what_the_programs_compute() {
        assert_eq!(alu_loop(), progs::alu_loop_native());
        let pkt = progs::packet();
        assert_eq!(parse_hash(&pkt), progs::parse_hash_native(&pkt));
        assert_eq!(parse_hash(&pkt[..20]), progs::PARSE_DROP);
        let big: Vec<u8> = (0..1600u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(fnv1a(&big), progs::fnv1a_native(&big[..1500]));
        assert_eq!(lookup_loop(&[0u64; 256]), 2, "XDP_PASS on a zeroed array");
        let mut v = [0u64; 256];
        v[3] = 1;
        assert_eq!(lookup_loop(&v), 1, "XDP_DROP when a value is off");
    }
}

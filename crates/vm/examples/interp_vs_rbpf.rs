//! Prints a table of kbpf (Unchecked and Checked mode) vs rbpf 0.3 interpreter times on the
//! three benchmark programs, for the README. Run in release:
//! `cargo run --release -p kbpf-vm --example interp_vs_rbpf`.
//! (The criterion benchmark `benches/interp.rs` measures the same programs more carefully.)

#[path = "../benches/common/progs.rs"]
mod progs;

use std::hint::black_box;
use std::time::{Duration, Instant};

use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_ALU64, BPF_EXIT, BPF_JMP, BPF_K, BPF_MOV};
use kbpf_vm::{HelperRegistry, Interpreter, MemoryRegion, Mode};

/// The best of 41 samples of the mean time per call, each sample running ~5 ms (the minimum is
/// the least disturbed by other load on the machine).
fn ns_per_run(mut f: impl FnMut() -> u64) -> f64 {
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        if t.elapsed() > Duration::from_millis(5) {
            break;
        }
        n *= 2;
    }
    let mut samples: Vec<f64> = (0..41)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[0]
}

fn row(name: &str, insns_per_run: u64, prog: &[Insn], pkt: &[u8], want: u64) {
    let ctx = progs::context(pkt);
    let reg = HelperRegistry::new();
    let kbpf = Interpreter::new(prog, &reg).expect("valid program");
    let bytes = progs::bytes(prog);
    let rbpf = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts the program");
    let args = [ctx.as_ptr() as u64, 0, 0, 0, 0];
    let regions = [
        MemoryRegion::from_slice(&ctx),
        MemoryRegion::from_slice(pkt),
    ];
    assert_eq!(kbpf.run(args, &[], Mode::Unchecked), Ok(want));
    assert_eq!(kbpf.run(args, &regions, Mode::Checked), Ok(want));
    assert_eq!(rbpf.execute_program(pkt, &ctx).ok(), Some(want));

    let k = ns_per_run(|| kbpf.run(black_box(args), &[], Mode::Unchecked).unwrap_or(0));
    let kc = ns_per_run(|| {
        kbpf.run(black_box(args), &regions, Mode::Checked)
            .unwrap_or(0)
    });
    let r = ns_per_run(|| rbpf.execute_program(black_box(pkt), &ctx).unwrap_or(0));
    println!(
        "| {name:<12} | {insns_per_run:>6} | {k:>10.1} | {kc:>10.1} | {r:>10.1} | {:>6.2}x | {:>8.2} |",
        r / k,
        k / insns_per_run as f64
    );
}

/// Counts executed instructions: the smallest instruction budget under which a checked run
/// completes (binary search).
fn executed(prog: &[Insn], pkt: &[u8]) -> u64 {
    let ctx = progs::context(pkt);
    let reg = HelperRegistry::new();
    let regions = [
        MemoryRegion::from_slice(&ctx),
        MemoryRegion::from_slice(pkt),
    ];
    let args = [ctx.as_ptr() as u64, 0, 0, 0, 0];
    let (mut lo, mut hi) = (1u64, 1 << 24);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let vm = Interpreter::new(prog, &reg)
            .expect("valid program")
            .with_instruction_limit(mid);
        if vm.run(args, &regions, Mode::Checked).is_ok() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn main() {
    let pkt = progs::packet();
    // `r0 = 0; exit`: the fixed cost of one run (setup, stack, dispatch of two instructions)
    let minimal = vec![
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    let progs_: [(&str, Vec<Insn>, u64); 4] = [
        ("minimal", minimal, 0),
        ("alu_loop", progs::alu_loop(), progs::alu_loop_native()),
        ("fnv1a_1500", progs::fnv1a(), progs::fnv1a_native(&pkt)),
        (
            "parse_hash",
            progs::parse_hash(),
            progs::parse_hash_native(&pkt),
        ),
    ];
    println!(
        "| program      | insns  | kbpf ns/run | kbpf checked | rbpf ns/run | speedup | kbpf ns/insn |"
    );
    println!(
        "|--------------|--------|------------|------------|------------|---------|----------|"
    );
    for (name, prog, want) in &progs_ {
        row(name, executed(prog, &pkt), prog, &pkt, *want);
    }
}

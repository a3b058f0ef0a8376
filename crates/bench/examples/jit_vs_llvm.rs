//! kbpf's JIT against bpftime's LLVM JIT (llvmbpf) on the bytecode programs, timed in
//! *interleaved* batches: one batch of kbpf runs, one of LLVM runs, and so on, so that a
//! loaded machine slows both alike. Reports the minimum, the 10th percentile and the median
//! of the batches (ns per run) and the kbpf / LLVM ratio of each; the first line is an empty
//! program (`r0 = 2; exit`), which shows what calling each engine costs by itself. Both
//! engines' compiled functions are called directly, through the same loop.
//!
//! `LLVMBPF_OUT=… cargo run --release -p kbpf-bench --example jit_vs_llvm [ROW] [BATCHES]`
//! (ROW: a substring of the program names, e.g. `parse`; BATCHES: per engine, default 400,
//! each of ~1 ms). The same engines and calls as `side_by_side`'s kbpf JIT and LLVM JIT
//! columns; it needs the llvmbpf shim (scripts/llvmbpf-build.sh).

use std::time::Instant;

use kbpf_bench::llvmbpf::LlvmBpf;
use kbpf_bench::{Engines, RawEntry, bytecode_programs, load_xdp_insns, progs, xdp_form};
use kbpf_isa::Insn;
use kbpf_isa::insn::{BPF_ALU64, BPF_EXIT, BPF_JMP, BPF_K, BPF_MOV};
use kbpf_run::ctx::XdpFrame;

/// Nanoseconds per call of `f(a, b, 0)` over `n` calls: one loop for both engines, so that
/// neither number depends on where the compiler placed a loop of its own.
///
/// # Safety
/// Calling `f(a, b, 0)` must be safe, repeatedly.
#[inline(never)]
unsafe fn batch(f: RawEntry, (a, b): (u64, u64), n: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: forwarded to the caller.
        std::hint::black_box(unsafe { f(std::hint::black_box(a), b, 0) });
    }
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// Calls per batch so that one batch takes about 1 ms.
///
/// # Safety
/// As [`batch`].
unsafe fn calls_per_ms(f: RawEntry, args: (u64, u64)) -> u64 {
    // SAFETY: forwarded to the caller.
    let ns = unsafe { batch(f, args, 1000) }.max(0.1);
    ((1e6 / ns) as u64).max(1)
}

fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q) as usize]
}

fn compare(name: &str, insns: &[Insn], lib: &LlvmBpf, batches: usize) {
    let pkt = progs::packet();
    let prog = match load_xdp_insns(name, &xdp_form(insns)) {
        Ok(p) => p,
        Err(e) => return eprintln!("{e}"),
    };
    let engines = match Engines::new(&prog) {
        Ok(e) => e,
        Err(e) => return eprintln!("{e}"),
    };
    let llvm = match lib.load(&progs::bytes(insns)) {
        Ok(p) => p,
        Err(e) => return eprintln!("{name}: llvmbpf: {e}"),
    };
    let mut frame = XdpFrame::new(&pkt, 1, 0).expect("packet fits an XDP frame");
    let ctx = frame.ctx_ptr();
    let _guard = kbpf_maps::pin();
    let mut llvm_ctx = progs::context(&pkt);
    let Some(kbpf_fn) = engines.jit.leaf_entry() else {
        return eprintln!("{name}: not a leaf image: not timed");
    };
    let llvm_fn = llvm.raw_entry();
    let kbpf_args = (ctx, 0);
    let llvm_args = (llvm_ctx.as_mut_ptr() as u64, llvm_ctx.len() as u64);
    // SAFETY (every call below): the program passed kbpf's verifier as XDP and `ctx` is a live
    // XdpFrame; the llvmbpf program reads only the context and the packet it describes; the
    // images, frame and context outlive the timing.
    let (a, b) = unsafe {
        (
            kbpf_fn(ctx, 0, 0) & 0xffff_ffff,
            llvm_fn(llvm_args.0, llvm_args.1, 0) & 0xffff_ffff,
        )
    };
    if a != b {
        return eprintln!("{name}: kbpf returned {a:#x}, llvmbpf {b:#x}: not timed");
    }
    let (nk, nl) = unsafe {
        (
            calls_per_ms(kbpf_fn, kbpf_args),
            calls_per_ms(llvm_fn, llvm_args),
        )
    };
    let (mut ks, mut ls) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        unsafe {
            ks.push(batch(kbpf_fn, kbpf_args, nk));
            ls.push(batch(llvm_fn, llvm_args, nl));
        }
    }
    ks.sort_by(f64::total_cmp);
    ls.sort_by(f64::total_cmp);
    let q = |q| (quantile(&ks, q), quantile(&ls, q));
    let ((k0, l0), (k1, l1), (k5, l5)) = (q(0.0), q(0.1), q(0.5));
    println!(
        "| {name} | {k0:.2} / {l0:.2} ({:.2}×) | {k1:.2} / {l1:.2} ({:.2}×) | {k5:.2} / {l5:.2} ({:.2}×) |",
        k0 / l0,
        k1 / l1,
        k5 / l5
    );
}

fn main() {
    let lib = match LlvmBpf::open() {
        Ok(l) => l,
        Err(e) => {
            println!("jit_vs_llvm needs llvmbpf: {e} (build it with scripts/llvmbpf-build.sh)");
            return;
        }
    };
    let only = std::env::args().nth(1).unwrap_or_default();
    let batches = std::env::args()
        .nth(2)
        .and_then(|b| b.parse().ok())
        .unwrap_or(400);
    println!("ns per run, kbpf JIT / LLVM JIT, {batches} interleaved batches of ~1 ms each");
    println!();
    println!("| program | min | 10th percentile | median |");
    println!("|---|---:|---:|---:|");
    let empty = [
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 2),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
    compare("empty program (r0 = 2)", &empty, &lib, batches);
    for (name, insns) in bytecode_programs() {
        if name.contains(only.as_str()) {
            compare(name, &insns, &lib, batches);
        }
    }
}

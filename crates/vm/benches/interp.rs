//! kbpf's interpreter (Unchecked mode) against rbpf 0.3's interpreter on the same bytecode:
//! (1) an ALU loop, (2) FNV-1a over a 1500-byte packet, (3) an Ethernet/IPv4/TCP parse with a
//! jhash-style 5-tuple hash. Each group runs both engines side by side.
//! Run: `cargo bench -p kbpf-vm --bench interp`.

#[path = "common/progs.rs"]
mod progs;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kbpf_isa::Insn;
use kbpf_vm::{HelperRegistry, Interpreter, Mode};

fn group(c: &mut Criterion, name: &str, prog: &[Insn], pkt: &[u8], want: u64) {
    let ctx = progs::context(pkt);
    let reg = HelperRegistry::new();
    let kbpf = Interpreter::new(prog, &reg).expect("valid program");
    let bytes = progs::bytes(prog);
    let rbpf = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts the program");
    let args = [ctx.as_ptr() as u64, 0, 0, 0, 0];
    assert_eq!(kbpf.run(args, &[], Mode::Unchecked), Ok(want));
    assert_eq!(rbpf.execute_program(pkt, &ctx).ok(), Some(want));

    let mut g = c.benchmark_group(name);
    g.bench_function("kbpf", |b| {
        b.iter(|| kbpf.run(black_box(args), &[], Mode::Unchecked))
    });
    g.bench_function("rbpf", |b| {
        b.iter(|| rbpf.execute_program(black_box(pkt), black_box(&ctx)))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let pkt = progs::packet();
    group(
        c,
        "alu_loop",
        &progs::alu_loop(),
        &pkt,
        progs::alu_loop_native(),
    );
    group(
        c,
        "fnv1a_1500",
        &progs::fnv1a(),
        &pkt,
        progs::fnv1a_native(&pkt),
    );
    group(
        c,
        "parse_hash",
        &progs::parse_hash(),
        &pkt,
        progs::parse_hash_native(&pkt),
    );
}

criterion_group!(interp, benches);
criterion_main!(interp);

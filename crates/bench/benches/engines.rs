//! Criterion side of the side-by-side benchmarks: kbpf's JIT and interpreter on the
//! translated programs, rbpf 0.3's JIT and interpreter on the map-free bytecode. The
//! kernel's JIT is measured by `examples/side_by_side.rs` (its `BPF_PROG_TEST_RUN` repeat
//! loop times itself; a criterion loop around the syscall would measure the syscall).
//! `cargo bench -p kbpf-bench -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kbpf_bench::{
    Engines, KbpfObject, bench_object, bytecode_programs, load_xdp_insns, maglev_kbpf,
    maglev_packet, progs, xdp_form,
};
use kbpf_run::Program;
use kbpf_run::ctx::XdpFrame;

fn kbpf(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    p: &Program,
    pkt: &[u8],
) {
    let e = Engines::new(p).expect("both engines build");
    let mut frame = XdpFrame::new(pkt, 1, 0).expect("fits");
    let ctx = frame.ctx_ptr();
    let _guard = kbpf_maps::pin();
    // SAFETY: verified XDP program, live frame.
    g.bench_function("kbpf_jit", |b| {
        b.iter(|| unsafe { e.run_jit(black_box(ctx)) })
    });
    g.bench_function("kbpf_interp", |b| b.iter(|| e.run_interp(black_box(ctx))));
}

fn benches(c: &mut Criterion) {
    let pkt = progs::packet();
    for (i, (_, insns)) in bytecode_programs().into_iter().enumerate() {
        let name = ["alu_loop", "fnv1a_1500", "parse_hash"][i];
        let mut g = c.benchmark_group(name);
        let p = load_xdp_insns(name, &xdp_form(&insns)).expect("kbpf verifies it");
        kbpf(&mut g, &p, &pkt);
        let bytes = progs::bytes(&insns);
        let ctx = progs::context(&pkt);
        let vm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts it");
        g.bench_function("rbpf_interp", |b| {
            b.iter(|| vm.execute_program(black_box(&pkt), black_box(&ctx)))
        });
        let mut jvm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts it");
        jvm.jit_compile().expect("rbpf JIT compiles it");
        let (mut p2, mut c2) = (pkt.clone(), progs::context(&pkt));
        // rbpf reads the packet through the context, which must describe p2.
        c2.copy_from_slice(&progs::context(&p2));
        g.bench_function("rbpf_jit", |b| {
            // SAFETY: the context describes `p2`, alive for every run.
            b.iter(|| unsafe { jvm.execute_program_jit(&mut p2, &mut c2) })
        });
        g.finish();
    }
    let obj = maglev_kbpf().expect("maglev loads");
    let mut g = c.benchmark_group("maglev");
    kbpf(
        &mut g,
        obj.program("maglev_xdp").expect("maglev_xdp"),
        &maglev_packet(),
    );
    g.finish();
    for stem in ["lookup_inline", "lookup_direct", "lookup_helper"] {
        let obj = KbpfObject::load(&bench_object(stem)).expect("loads");
        let mut g = c.benchmark_group(format!("{stem}_x1000"));
        kbpf(&mut g, &obj.programs[0], &pkt);
        g.finish();
    }
}

criterion_group!(engines, benches);
criterion_main!(engines);

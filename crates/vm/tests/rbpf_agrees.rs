//! kbpf and rbpf return the same r0 on the three benchmark programs, and both match a native
//! Rust implementation of what each program computes.

#[path = "../benches/common/progs.rs"]
mod progs;

use kbpf_vm::{HelperRegistry, Interpreter, MemoryRegion, Mode};

fn kbpf_run(prog: &[kbpf_isa::Insn], ctx: &[u8], pkt: &[u8], mode: Mode) -> u64 {
    let reg = HelperRegistry::new();
    let vm = Interpreter::new(prog, &reg).expect("valid program");
    let regions = [MemoryRegion::from_slice(ctx), MemoryRegion::from_slice(pkt)];
    vm.run([ctx.as_ptr() as u64, 0, 0, 0, 0], &regions, mode)
        .expect("program runs")
}

fn rbpf_run(prog: &[kbpf_isa::Insn], ctx: &[u8], pkt: &[u8]) -> u64 {
    let bytes = progs::bytes(prog);
    let vm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts the program");
    vm.execute_program(pkt, ctx).expect("rbpf runs the program")
}

#[test]
fn alu_loop_agrees() {
    let prog = progs::alu_loop();
    let want = progs::alu_loop_native();
    let pkt = progs::packet();
    let ctx = progs::context(&pkt);
    assert_eq!(kbpf_run(&prog, &ctx, &pkt, Mode::Checked), want);
    assert_eq!(kbpf_run(&prog, &ctx, &pkt, Mode::Unchecked), want);
    assert_eq!(rbpf_run(&prog, &ctx, &pkt), want);
}

#[test]
fn fnv1a_agrees() {
    let prog = progs::fnv1a();
    let pkt = progs::packet();
    let ctx = progs::context(&pkt);
    let want = progs::fnv1a_native(&pkt);
    assert_eq!(kbpf_run(&prog, &ctx, &pkt, Mode::Checked), want);
    assert_eq!(kbpf_run(&prog, &ctx, &pkt, Mode::Unchecked), want);
    assert_eq!(rbpf_run(&prog, &ctx, &pkt), want);
}

#[test]
fn parse_hash_agrees() {
    let prog = progs::parse_hash();
    let pkt = progs::packet();
    let ctx = progs::context(&pkt);
    let want = progs::parse_hash_native(&pkt);
    assert_ne!(want, progs::PARSE_DROP);
    assert_eq!(kbpf_run(&prog, &ctx, &pkt, Mode::Checked), want);
    assert_eq!(kbpf_run(&prog, &ctx, &pkt, Mode::Unchecked), want);
    assert_eq!(rbpf_run(&prog, &ctx, &pkt), want);
    // malformed packets take the drop path in both engines
    for cut in [0usize, 13, 33, 40, 53] {
        let short = &pkt[..cut];
        let ctx = progs::context(short);
        assert_eq!(progs::parse_hash_native(short), progs::PARSE_DROP);
        assert_eq!(
            kbpf_run(&prog, &ctx, short, Mode::Checked),
            progs::PARSE_DROP
        );
        assert_eq!(rbpf_run(&prog, &ctx, short), progs::PARSE_DROP, "cut {cut}");
    }
    let mut udp = pkt.clone();
    udp[23] = 17;
    let ctx = progs::context(&udp);
    assert_eq!(
        kbpf_run(&prog, &ctx, &udp, Mode::Checked),
        progs::PARSE_DROP
    );
    assert_eq!(rbpf_run(&prog, &ctx, &udp), progs::PARSE_DROP);
}

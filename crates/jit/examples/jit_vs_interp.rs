//! Rough timing of the JIT against the interpreter (`Mode::Unchecked`) on a few loops.
//! `cargo run --release -p kbpf-jit --example jit_vs_interp`. Criterion benchmarks come later.

use std::hint::black_box;
use std::time::Instant;

use kbpf_isa::asm::assemble;
use kbpf_jit::JitProgram;
use kbpf_vm::{HelperRegistry, Interpreter, Mode};

const PROGRAMS: [(&str, &str); 3] = [
    (
        // trial division of the prime 1_000_003: ~1M loop iterations with a div each
        "prime 1000003",
        "mov %r1, 1000003\nmov %r0, 1\nmov %r2, 2\njgt %r1, 2, l3\nja exit\nl2:\nadd %r2, 1\n\
         mov %r0, 1\njge %r2, %r1, exit\nl3:\nmov %r3, %r1\ndiv %r3, %r2\nmul %r3, %r2\n\
         mov %r4, %r1\nsub %r4, %r3\nmov %r0, 0\njne %r4, 0, l2\nexit",
    ),
    (
        // 1M iterations of ALU work
        "alu loop 1M",
        "mov %r0, 0\nmov %r1, 1000000\nl:\nadd %r0, %r1\nxor %r0, 0x55\nlsh %r0, 1\n\
         rsh %r0, 1\nsub %r1, 1\njne %r1, 0, l\nexit",
    ),
    (
        // 1M iterations of stack stores and loads
        "stack loop 1M",
        "mov %r0, 0\nmov %r1, 1000000\nl:\nstxdw [%r10-8], %r1\nldxdw %r2, [%r10-8]\n\
         add %r0, %r2\nstxw [%r10-16], %r0\nldxw %r3, [%r10-16]\nadd %r0, %r3\nsub %r1, 1\n\
         jne %r1, 0, l\nexit",
    ),
];

fn time(mut f: impl FnMut() -> u64) -> (u64, f64) {
    let mut r = f(); // warm up
    let start = Instant::now();
    let runs = 5;
    for _ in 0..runs {
        r = black_box(f());
    }
    (r, start.elapsed().as_secs_f64() * 1e3 / runs as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let helpers = HelperRegistry::new();
    println!(
        "{:<16} {:>12} {:>12} {:>8}",
        "program", "interp ms", "jit ms", "speedup"
    );
    for (name, src) in PROGRAMS {
        let prog = assemble(src)?;
        let vm = Interpreter::new(&prog, &helpers)?;
        let jit = JitProgram::compile(&prog, &helpers)?;
        let (a, ti) = time(|| vm.run_mem(&mut [], Mode::Unchecked).unwrap_or(u64::MAX));
        let (b, tj) = time(|| jit.run_mem(&mut []).unwrap_or(u64::MAX));
        assert_eq!(a, b, "{name}: engines disagree");
        println!("{name:<16} {ti:>12.3} {tj:>12.3} {:>7.1}x", ti / tj);
    }
    Ok(())
}

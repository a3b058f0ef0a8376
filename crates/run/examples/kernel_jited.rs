//! Disassembles the live kernel's JIT image of a program pinned at PATH (bpftool here has no
//! libbfd): `cargo run -p kbpf-run --example kernel_jited -- /sys/fs/bpf/PROG`.
use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter};

fn main() {
    let path = std::env::args().nth(1).expect("PATH of a pinned program");
    let prog = kbpf_kernel::KernelProg::from_pinned(&path).expect("pinned program");
    let code = prog.jited().expect("jited image");
    let mut dec = Decoder::with_ip(64, &code, 0, DecoderOptions::NONE);
    let mut fmt = GasFormatter::new();
    let mut s = String::new();
    while dec.can_decode() {
        let i = dec.decode();
        s.clear();
        fmt.format(&i, &mut s);
        println!("{:4x}:\t{s}", i.ip());
    }
}

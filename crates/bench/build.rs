//! Compiles `native/limits.c`: the benchmarks' native limit (x86-64, -O2).
fn main() {
    println!("cargo:rerun-if-changed=native/limits.c");
    cc::Build::new()
        .file("native/limits.c")
        .opt_level(2)
        .warnings(true)
        .compile("kbpf_native_limits");
}

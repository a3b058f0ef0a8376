//! The `kbpf` command line.
fn main() {
    println!("kbpf");
}

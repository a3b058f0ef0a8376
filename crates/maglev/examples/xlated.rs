//! Prints kbpf's `prog dump xlated` of the Maglev datapath (what `kbpf prog dump xlated`
//! shows for it): `cargo run -p kbpf-maglev --example xlated`.
fn main() {
    let (loaded, _lb) = kbpf_maglev::kbpf_datapath::load(
        std::path::Path::new(kbpf_maglev::OBJECT_PATH),
        Default::default(),
    )
    .expect("load");
    print!("{}", loaded.program.dump_xlated(&Default::default()));
}

//! `kbpf maglev demo --small --json` on the default kbpf backend (JIT) and on the
//! interpreter: one JSON object with the documented numeric keys, every packet to a live
//! backend of its service, stickiness through table swaps, and the memory advantage of
//! per-service `BPF_F_INNER_MAP` tables.
use std::process::Command;

fn demo(extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .args(["maglev", "demo", "--small", "--json"])
        .args(extra)
        .output()
        .expect("run kbpf");
    assert!(
        out.status.success(),
        "kbpf maglev demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn check(v: &serde_json::Value, datapath: &str) {
    assert_eq!(v["datapath"], datapath);
    for k in [
        "services",
        "packets",
        "memory_bytes_dynamic",
        "memory_bytes_flat_65537",
        "memory_bytes_global_16381",
        "max_over_mean_entries",
        "disruption_pct",
        "sticky_pct",
        "build_ms_n1000_m65537",
        "mpps",
    ] {
        assert!(v[k].is_number(), "{k} missing or not a number: {}", v[k]);
    }
    assert_eq!(v["misrouted"], 0);
    assert_eq!(v["first_packet_mismatches"], 0);
    assert_eq!(v["sticky_pct"], 100.0);
    let ratio = v["memory_bytes_flat_65537"].as_f64().unwrap()
        / v["memory_bytes_dynamic"].as_f64().unwrap();
    assert!(ratio > 18.0, "flat/dynamic memory only {ratio:.1}x");
}

#[test]
fn demo_on_the_kbpf_jit() {
    check(&demo(&[]), "kbpf-jit");
}

#[test]
fn demo_on_the_kbpf_interpreter() {
    check(&demo(&["--engine", "interp"]), "kbpf-interp");
}

//! `kbpf maglev live --small`: the datapath in the daemon, the control plane in another
//! process swapping inner maps under the traffic; every packet must reach a backend of its
//! own service.

mod common;

#[test]
fn maglev_live_swaps_inner_maps_under_traffic_without_misrouting() {
    let dir = common::scratch_dir("maglev-live");
    let (st, out, err) = common::kbpf(&dir, &["maglev", "live", "--small", "--json"]);
    let _ = common::kbpf(&dir, &["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(st, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON report");
    let t = &r["traffic"];
    let c = &r["control"];
    assert_eq!(t["packets"], 40_000);
    assert_eq!(t["misrouted"], 0, "{r}");
    assert_eq!(t["passed"], 0, "{r}");
    assert_eq!(
        t["forwarded"].as_u64().unwrap() + t["dropped"].as_u64().unwrap(),
        40_000
    );
    assert!(t["forwarded"].as_u64().unwrap() >= 39_000, "{r}");
    assert_eq!(c["changes"], 200);
    // 16 installs plus one swap per change.
    assert_eq!(c["table_swaps"], 216, "{r}");
    assert!(c["p50_us"].as_f64().unwrap() > 0.0);
}

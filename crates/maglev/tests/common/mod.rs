//! What every small demo run must show, whichever datapath ran it.
use kbpf_maglev::control::{LoadBalancer, MapOps};
use kbpf_maglev::demo::{DemoConfig, DemoReport, backend_counts};
use kbpf_maglev::layout::{cilium_blob_memory, u32_per_element_memory};

/// Asserts the properties of a [`DemoConfig::small`] report `r` produced with `lb`.
pub fn check_small_report<O: MapOps>(
    cfg: &DemoConfig,
    r: &DemoReport,
    lb: &LoadBalancer<O>,
    phases: &[&str],
) {
    println!("{r}");
    assert!(phases.contains(&"build tables") && phases.contains(&"replay packets"));

    // Every packet to a live backend of its service, as the Rust tables say.
    assert_eq!(r.packets, cfg.packets);
    assert_eq!((r.misrouted, r.not_tx), (0, 0));
    assert_eq!(r.first_packet_mismatches, 0);
    assert_eq!(r.reselect_mismatches, 0);
    assert_eq!(r.sticky_pct, 100.0);
    assert_eq!(r.reselected_pct, 100.0);

    // Memory numbers consistent with the layout and with the kernel's memlock.
    assert_eq!(r.services, cfg.services);
    let counts = backend_counts(cfg.alpha, cfg.max_backends, cfg.services, cfg.seed);
    assert_eq!(r.backends, counts.iter().sum::<usize>());
    assert_eq!(
        r.memory_bytes_dynamic,
        kbpf_maglev::compare_memory(&counts, &cfg.lb.policy).per_service_packed
    );
    // After the changes the load balancer's own sum still matches its tables.
    let sum: u64 = lb.services().map(|s| s.packed.memory_bytes()).sum();
    assert_eq!(lb.memory_bytes(), sum);
    assert_eq!(
        r.memory_bytes_flat_65537,
        cfg.services as u64 * u32_per_element_memory(65_537)
    );
    assert_eq!(
        r.memory_bytes_global_16381,
        cfg.services as u64 * cilium_blob_memory(16_381)
    );
    assert_eq!(
        r.memlock_checked_maps,
        cfg.services as u64 + r.swaps_under_traffic
    );
    assert!(r.memory_ratio_flat > 18.0, "{}", r.memory_ratio_flat);

    // Balance and disruption in Maglev's regime.
    assert!(r.max_over_mean_entries >= 1.0 && r.max_over_mean_entries < 1.05);
    assert!(
        r.disruption_pct >= r.disruption_ideal_pct * 0.5
            && r.disruption_pct < r.disruption_ideal_pct * 5.0
    );
    assert!(r.build_ms_n1000_m65537 > 0.0 && r.mpps > 0.0);
    assert!(!r.disruption_by_table_size.is_empty());

    // JSON: one object with the documented numeric keys.
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
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

    // Plots.
    let dir = std::env::temp_dir().join(format!("kbpf_maglev_plots_{}", std::process::id()));
    let files = kbpf_maglev::plot::write_plots(r, &dir).unwrap();
    assert_eq!(files.len(), 3);
    for f in &files {
        let s = std::fs::read_to_string(f).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

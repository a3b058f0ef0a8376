//! Hand-written SVG pictures of a [`DemoReport`] (no dependency): load per backend,
//! memory by design, disruption by table size. [`write_plots`] writes all three.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::demo::DemoReport;

const W: f64 = 760.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{}</text>
"#,
        W / 2.0,
        esc(title)
    );
    s
}

fn axes(s: &mut String, x_label: &str, y_label: &str, y_max: f64, y_fmt: &dyn Fn(f64) -> String) {
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>"#
    );
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let y = y0 - (y0 - y1) * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            y + 4.0,
            esc(&y_fmt(v))
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 15.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(y_label)
    );
}

/// Packets (bars) and table entries (line, right scale normalised to the same mean)
/// per backend of the focus service.
pub fn load_per_backend_svg(r: &DemoReport) -> String {
    let mut s = header(&format!(
        "Load per backend: focus service, N={}, M={} ({} datapath)",
        r.focus_backends, r.focus_table_size, r.datapath
    ));
    let pk = &r.focus_packets_per_backend;
    let n = pk.len().max(1);
    let mean_p = pk.iter().sum::<u64>() as f64 / n as f64;
    let mean_e = r
        .focus_entries_per_backend
        .iter()
        .map(|&c| f64::from(c))
        .sum::<f64>()
        / r.focus_entries_per_backend.len().max(1) as f64;
    // Both as a share of the mean (1.0 = perfectly even).
    let p_rel: Vec<f64> = pk.iter().map(|&p| p as f64 / mean_p.max(1e-9)).collect();
    let e_rel: Vec<f64> = r
        .focus_entries_per_backend
        .iter()
        .map(|&c| f64::from(c) / mean_e.max(1e-9))
        .collect();
    let y_max = p_rel
        .iter()
        .chain(&e_rel)
        .fold(1.5f64, |a, &b| a.max(b))
        .ceil();
    axes(
        &mut s,
        "backend (index in the service)",
        "load / mean load",
        y_max,
        &|v| format!("{v:.1}"),
    );
    let (x0, y0) = (LEFT, H - BOTTOM);
    let pw = (W - LEFT - RIGHT) / n as f64;
    let sy = (H - BOTTOM - TOP) / y_max;
    for (i, &v) in p_rel.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="#4a7fc1"/>"##,
            x0 + i as f64 * pw + pw * 0.1,
            y0 - v * sy,
            (pw * 0.8).max(0.5),
            v * sy
        );
    }
    let pts: Vec<String> = e_rel
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.2},{:.2}", x0 + (i as f64 + 0.5) * pw, y0 - v * sy))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#d9534f" stroke-width="2"/>"##,
        pts.join(" ")
    );
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="36" width="12" height="10" fill="#4a7fc1"/><text x="{}" y="45">observed packets (max/mean {:.3})</text>
<line x1="{}" y1="41" x2="{}" y2="41" stroke="#d9534f" stroke-width="2"/><text x="{}" y="45">table entries (max/mean {:.4})</text>"##,
        LEFT + 10.0,
        LEFT + 26.0,
        r.max_over_mean_packets_focus,
        LEFT + 330.0,
        LEFT + 350.0,
        LEFT + 356.0,
        r.max_over_mean_entries_focus
    );
    s.push_str("</svg>\n");
    s
}

/// Memory of the three designs for the demo's services (bars, MiB).
pub fn memory_by_design_svg(r: &DemoReport) -> String {
    let mut s = header(&format!(
        "Memory of {} services' Maglev tables (kernel accounting)",
        r.services
    ));
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let bars = [
        (
            "per-service sizes\n(BPF_F_INNER_MAP)",
            mib(r.memory_bytes_dynamic),
            "#5cb85c",
        ),
        (
            "global 16,381\n(Cilium blob)",
            mib(r.memory_bytes_global_16381),
            "#f0ad4e",
        ),
        (
            "flat 65,537 per service\n(u32 per element)",
            mib(r.memory_bytes_flat_65537),
            "#d9534f",
        ),
    ];
    let y_max = bars.iter().fold(1.0f64, |a, b| a.max(b.1)) * 1.1;
    axes(&mut s, "design", "MiB", y_max, &|v| format!("{v:.0}"));
    let (x0, y0) = (LEFT, H - BOTTOM);
    let slot = (W - LEFT - RIGHT) / bars.len() as f64;
    let sy = (H - BOTTOM - TOP) / y_max;
    for (i, (label, v, color)) in bars.iter().enumerate() {
        let x = x0 + i as f64 * slot + slot * 0.2;
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
            y0 - v * sy,
            slot * 0.6,
            v * sy
        );
        let ratio = v / mib(r.memory_bytes_dynamic).max(1e-9);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{v:.1} MiB ({ratio:.1}x)</text>"#,
            x + slot * 0.3,
            y0 - v * sy - 6.0
        );
        for (j, line) in label.split('\n').enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + slot * 0.3,
                y0 + 15.0 + 13.0 * j as f64,
                esc(line)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// % of slots that moved when one backend was removed, by table size, vs the ideal.
pub fn disruption_by_table_size_svg(r: &DemoReport) -> String {
    let n = r.focus_backends;
    let mut s = header(&format!(
        "Disruption when 1 of {n} backends is removed, by table size"
    ));
    let pts = &r.disruption_by_table_size;
    let y_max = pts
        .iter()
        .fold(0.0f64, |a, p| a.max(p.changed_pct).max(p.ideal_pct))
        .max(0.1)
        * 1.2;
    axes(&mut s, "table size M", "% of slots moved", y_max, &|v| {
        format!("{v:.1}%")
    });
    let (x0, y0) = (LEFT, H - BOTTOM);
    let k = pts.len().max(1);
    let step = (W - LEFT - RIGHT) / k as f64;
    let sy = (H - BOTTOM - TOP) / y_max;
    let mut line = Vec::new();
    for (i, p) in pts.iter().enumerate() {
        let x = x0 + (i as f64 + 0.5) * step;
        let y = y0 - p.changed_pct * sy;
        line.push(format!("{x:.1},{y:.1}"));
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#4a7fc1"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{:.2}%</text><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y - 8.0,
            p.changed_pct,
            y0 + 15.0,
            p.table_size
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#4a7fc1" stroke-width="2"/>"##,
        line.join(" ")
    );
    if let Some(p) = pts.first() {
        let y = y0 - p.ideal_pct * sy;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#d9534f" stroke-dasharray="6 4" stroke-width="2"/><text x="{}" y="{:.1}" text-anchor="end" fill="#d9534f">ideal 1/N = {:.2}%</text>"##,
            W - RIGHT,
            W - RIGHT - 4.0,
            y - 6.0,
            p.ideal_pct
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Writes `load_per_backend.svg`, `memory_by_design.svg` and
/// `disruption_by_table_size.svg` into `dir` (created if missing); returns their paths.
pub fn write_plots(r: &DemoReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("load_per_backend.svg", load_per_backend_svg(r)),
        ("memory_by_design.svg", memory_by_design_svg(r)),
        (
            "disruption_by_table_size.svg",
            disruption_by_table_size_svg(r),
        ),
    ];
    let mut out = Vec::new();
    for (name, svg) in files {
        let p = dir.join(name);
        std::fs::write(&p, svg)?;
        out.push(p);
    }
    Ok(out)
}

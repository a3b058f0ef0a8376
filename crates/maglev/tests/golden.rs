//! Golden tables: fixed (backends, seed, M) → committed tables/digests under
//! `tests/golden/`. Any process on any platform must rebuild them byte for byte; a change
//! here means every deployed load balancer would move flows, so it must be deliberate.
//! Regenerate (after a deliberate change only) with `MAGLEV_BLESS=1 cargo test -p
//! kbpf-maglev --test golden`.
//!
//! File format (text, one item per line):
//! ```text
//! # comment
//! seed <32 hex digits: the 16 seed bytes>
//! size <M>
//! backend <name> <weight>          (repeated; table entries index these in file order)
//! generate <count> <prefix>        (alternative: backends <prefix><i>, weight 1)
//! digest <16 hex digits>           (MaglevTable::digest)
//! counts <c0> <c1> …               (slots per backend)
//! table <i>x<run> …                (optional: the full table, run-length encoded)
//! ```
use std::fmt::Write as _;
use std::path::PathBuf;

use kbpf_maglev::{Backend, HashSeed, MaglevTable, build};

struct Case {
    file: &'static str,
    seed: [u8; 16],
    size: u32,
    backends: Vec<Backend>,
    generated: Option<(usize, &'static str)>,
    full_table: bool,
}

fn cases() -> Vec<Case> {
    let named = |names: &[(&str, u32)]| {
        names
            .iter()
            .map(|&(n, w)| Backend::new(n, w))
            .collect::<Vec<_>>()
    };
    let generated = |count: usize, prefix: &str| {
        (0..count)
            .map(|i| Backend::unweighted(format!("{prefix}{i}")))
            .collect::<Vec<_>>()
    };
    vec![
        Case {
            file: "small_251.txt",
            seed: *b"kbpf-maglev-seed",
            size: 251,
            backends: named(&[
                ("10.0.0.1:80", 1),
                ("10.0.0.2:80", 1),
                ("10.0.0.3:80", 1),
                ("10.0.0.4:80", 1),
                ("10.0.0.5:80", 1),
            ]),
            generated: None,
            full_table: true,
        },
        Case {
            file: "weighted_1021.txt",
            seed: [0u8; 16],
            size: 1021,
            backends: named(&[
                ("alpha", 2),
                ("bravo", 13),
                ("charlie", 111),
                ("delta", 10),
                ("echo", 0),
            ]),
            generated: None,
            full_table: true,
        },
        Case {
            file: "policy_4093.txt",
            seed: *b"0123456789abcdef",
            size: 4093,
            backends: generated(10, "backend-"),
            generated: Some((10, "backend-")),
            full_table: false,
        },
        Case {
            file: "paper_n1000_65537.txt",
            seed: *b"kbpf-maglev-seed",
            size: 65537,
            backends: generated(1000, "10.1.0."),
            generated: Some((1000, "10.1.0.")),
            full_table: false,
        },
    ]
}

fn rle(t: &MaglevTable) -> String {
    let mut out = String::new();
    let e = t.entries();
    let mut i = 0;
    while i < e.len() {
        let mut j = i;
        while j < e.len() && e[j] == e[i] {
            j += 1;
        }
        let _ = write!(out, " {}x{}", e[i], j - i);
        i = j;
    }
    out
}

fn render(case: &Case, t: &MaglevTable) -> String {
    let mut s = String::from("# kbpf-maglev golden table (see tests/golden.rs)\n");
    let hex: String = case.seed.iter().map(|b| format!("{b:02x}")).collect();
    let _ = writeln!(s, "seed {hex}");
    let _ = writeln!(s, "size {}", case.size);
    match case.generated {
        Some((count, prefix)) => {
            let _ = writeln!(s, "generate {count} {prefix}");
        }
        None => {
            for b in &case.backends {
                let _ = writeln!(s, "backend {} {}", b.name, b.weight);
            }
        }
    }
    let _ = writeln!(s, "digest {:016x}", t.digest());
    let counts: Vec<String> = t
        .counts(case.backends.len())
        .iter()
        .map(u32::to_string)
        .collect();
    let _ = writeln!(s, "counts {}", counts.join(" "));
    if case.full_table {
        let _ = writeln!(s, "table{}", rle(t));
    }
    s
}

/// Parses a golden file back into (seed, size, backends) and the recorded lines, so
/// the inputs come from the file, not only from this test's code.
fn parse(text: &str) -> (HashSeed, u32, Vec<Backend>) {
    let mut seed = None;
    let mut size = None;
    let mut backends = Vec::new();
    for line in text.lines() {
        let mut w = line.split(' ');
        match w.next() {
            Some("seed") => {
                let hex = w.next().expect("seed value");
                let mut b = [0u8; 16];
                for (i, byte) in b.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("seed hex");
                }
                seed = Some(HashSeed::from_bytes(b));
            }
            Some("size") => size = Some(w.next().expect("size").parse().expect("size number")),
            Some("backend") => {
                let name = w.next().expect("name");
                let weight = w.next().expect("weight").parse().expect("weight number");
                backends.push(Backend::new(name, weight));
            }
            Some("generate") => {
                let count: usize = w.next().expect("count").parse().expect("count number");
                let prefix = w.next().expect("prefix");
                backends.extend((0..count).map(|i| Backend::unweighted(format!("{prefix}{i}"))));
            }
            _ => {}
        }
    }
    (seed.expect("seed line"), size.expect("size line"), backends)
}

#[test]
fn golden_tables() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("MAGLEV_BLESS").is_some();
    for case in cases() {
        let path = dir.join(case.file);
        let t = build(&case.backends, case.size, HashSeed::from_bytes(case.seed)).expect("build");
        let rendered = render(&case, &t);
        if bless {
            std::fs::write(&path, &rendered).expect("write golden file");
            continue;
        }
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (seed, size, backends) = parse(&committed);
        assert_eq!(seed, HashSeed::from_bytes(case.seed), "{}", case.file);
        let from_file = build(&backends, size, seed).expect("build from golden inputs");
        assert_eq!(
            from_file, t,
            "{}: inputs in the file give the same table",
            case.file
        );
        assert_eq!(
            rendered, committed,
            "{}: regenerated table differs from the committed one",
            case.file
        );
    }
}

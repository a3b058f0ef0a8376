//! Live shared state, measured: kbpf's daemon against bpftool on the live kernel, in one run.
//!
//! ```sh
//! cargo build --release -p kbpf && cargo run --release -p kbpf-bench --example live_state
//! ```
//!
//! Rows (each a median of repeated process runs, process start included):
//! 1. a batch file of 10,000 `map create` (16,381-entry `BPF_F_INNER_MAP` arrays, the Maglev
//!    inner-table size) plus 10,000 outer-map updates;
//! 2. with those 10,000 maps pinned: one `map update` and one `map lookup` of an inner map,
//!    and one outer-map update;
//! 3. the daemon's restart with the 10,000 maps (stop, then the first command);
//! 4. with Katran's `balancer.bpf.o` maps pinned (`scripts/katran-build.sh`): one
//!    `map lookup` of `ch_rings` (33,554,944 entries), and the daemon's resident memory.
//!
//! bpftool's side needs root and bpftool; it is skipped with a message otherwise. Pins go
//! under `/sys/fs/bpf/kbpf-live-PID` and are removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MAPS: usize = 10_000;
const ENTRIES: u32 = 16_381;
const RUNS: usize = 30;

fn kbpf_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/release/examples/live_state -> target/release/kbpf
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("kbpf"))
        .expect("target dir");
    assert!(
        p.exists(),
        "{} is missing: cargo build --release -p kbpf first",
        p.display()
    );
    p
}

fn run(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let o = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    ms
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn batch_file(path: &Path, root: &str) {
    let mut t = String::new();
    t.push_str(&format!(
        "map create {root}/tmpl type array key 4 value 4 entries {ENTRIES} name tmpl flags 0x1000\n"
    ));
    t.push_str(&format!(
        "map create {root}/outer type hash_of_maps key 4 value 4 entries {MAPS} name outer inner_map pinned {root}/tmpl\n"
    ));
    for i in 0..MAPS {
        t.push_str(&format!(
            "map create {root}/s{i} type array key 4 value 4 entries {ENTRIES} name s{i} flags 0x1000\n"
        ));
    }
    for i in 0..MAPS {
        t.push_str(&format!(
            "map update pinned {root}/outer key {} {} 0 0 value pinned {root}/s{i}\n",
            i % 256,
            i / 256
        ));
    }
    std::fs::write(path, t).expect("batch file");
}

struct Side {
    name: &'static str,
    tool: Vec<String>,
    root: String,
}

impl Side {
    fn cmd(&self, words: &str) -> Command {
        let mut c = Command::new(&self.tool[0]);
        c.args(&self.tool[1..]);
        c.args(words.replace("@", &self.root).split_whitespace());
        c
    }

    fn median(&self, words: &str) -> f64 {
        median((0..RUNS).map(|_| run(&mut self.cmd(words))).collect())
    }
}

fn rss_kb(kbpf: &Path, dir: &Path) -> u64 {
    let o = Command::new(kbpf)
        .arg("--bpffs")
        .arg(dir)
        .args(["-j", "daemon", "status"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["rss_kb"].as_u64().unwrap_or(0)
}

fn main() {
    let kbpf = kbpf_binary();
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("kbpf-live-bench-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let batch_kbpf = dir.join("kbpf.batch");
    batch_file(&batch_kbpf, "/sys/fs/bpf");
    let mut sides = vec![Side {
        name: "kbpf (daemon)",
        tool: vec![
            kbpf.display().to_string(),
            "--bpffs".into(),
            dir.display().to_string(),
        ],
        root: "/sys/fs/bpf".into(),
    }];
    let kroot = format!("/sys/fs/bpf/kbpf-live-{pid}");
    let bpftool_ok = Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
        // SAFETY: geteuid has no preconditions.
        && unsafe { libc::geteuid() } == 0
        && std::fs::create_dir_all(&kroot).is_ok();
    if bpftool_ok {
        sides.push(Side {
            name: "bpftool (kernel)",
            tool: vec!["bpftool".into()],
            root: kroot.clone(),
        });
    } else {
        eprintln!("bpftool side skipped: needs root, bpftool and /sys/fs/bpf");
    }
    let batch_kernel = dir.join("kernel.batch");
    batch_file(&batch_kernel, &kroot);

    println!(
        "| operation | {} |",
        sides.iter().map(|s| s.name).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|{}", "---:|".repeat(sides.len()));
    let row = |what: &str, vals: Vec<String>| println!("| {what} | {} |", vals.join(" | "));

    // 1. The batch.
    let mut v = Vec::new();
    for s in &sides {
        let f = if s.name.starts_with("kbpf") {
            &batch_kbpf
        } else {
            &batch_kernel
        };
        let ms = run(s.cmd("batch file").arg(f));
        v.push(format!("{:.2} s", ms / 1e3));
    }
    row(
        &format!("batch: {MAPS} `map create` ({ENTRIES}-entry arrays) + {MAPS} outer updates"),
        v,
    );
    // 2. Single commands with the 10,000 maps pinned.
    for (what, words) in [
        (
            "`map update` of an inner map",
            "map update pinned @/s5000 key 1 0 0 0 value 1 2 3 4",
        ),
        (
            "`map lookup` of an inner map",
            "map lookup pinned @/s5000 key 1 0 0 0",
        ),
        (
            "`map update` of the outer map (swap an inner map)",
            "map update pinned @/outer key 1 0 0 0 value pinned @/s7",
        ),
    ] {
        let v = sides
            .iter()
            .map(|s| format!("{:.2} ms", s.median(words)))
            .collect();
        row(&format!("{what}, {MAPS} maps pinned"), v);
    }
    let rss_10k = rss_kb(&kbpf, &dir);
    // 3. Restart.
    let restart = median(
        (0..5)
            .map(|_| {
                run(&mut sides[0].cmd("daemon stop"));
                run(&mut sides[0].cmd("map lookup pinned @/s5000 key 1 0 0 0"))
            })
            .collect(),
    );
    let mut v = vec![format!("{restart:.0} ms")];
    if sides.len() > 1 {
        v.push("n/a".into());
    }
    row(
        &format!("daemon restart with {MAPS} maps (stop, then the first command)"),
        v,
    );
    println!();
    println!(
        "kbpf daemon resident memory with the {MAPS} maps ({:.0} MB of arrays): {:.1} MB",
        MAPS as f64 * ENTRIES as f64 * 4.0 / 1e6,
        rss_10k as f64 / 1024.0
    );

    // Clean up the first part.
    run(&mut sides[0].cmd("daemon stop"));
    if bpftool_ok {
        let _ = std::fs::remove_dir_all(&kroot);
    }

    // 4. Katran's maps.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = Command::new("bash")
        .arg(repo.join("scripts/katran-build.sh"))
        .stderr(Stdio::null())
        .output();
    match built {
        Ok(o) if o.status.success() => {
            let out = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            let obj = out.join("balancer.bpf.o");
            let kdir = dir.join("katran");
            std::fs::create_dir_all(kdir.join("k")).unwrap();
            let k = |words: &str| {
                let mut c = Command::new(&kbpf);
                c.arg("--bpffs").arg(&kdir).args(words.split_whitespace());
                c
            };
            let load = run(&mut k(&format!(
                "prog loadall {} /sys/fs/bpf/k/prog pinmaps /sys/fs/bpf/k",
                obj.display()
            )));
            let lookup = median(
                (0..RUNS)
                    .map(|_| {
                        run(&mut k(
                            "map lookup pinned /sys/fs/bpf/k/ch_rings key 1 0 0 0",
                        ))
                    })
                    .collect(),
            );
            let update = median(
                (0..RUNS)
                    .map(|_| {
                        run(&mut k(
                            "map update pinned /sys/fs/bpf/k/ch_rings key 9 0 0 0 value 1 0 0 0",
                        ))
                    })
                    .collect(),
            );
            let rss = rss_kb(&kbpf, &kdir);
            run(&mut k("daemon stop"));
            let restart = run(&mut k(
                "map lookup pinned /sys/fs/bpf/k/ch_rings key 1 0 0 0",
            ));
            let rss_after = rss_kb(&kbpf, &kdir);
            run(&mut k("daemon stop"));
            println!();
            println!(
                "Katran's balancer.bpf.o maps pinned (ch_rings: 33,554,944 entries, memlock 268 MB):"
            );
            println!(
                "- `prog loadall`: {load:.0} ms; `map lookup` of ch_rings: {lookup:.2} ms; `map update`: {update:.2} ms (medians of {RUNS})"
            );
            println!(
                "- daemon resident memory: {:.1} MB after the load; {:.1} MB after a restart and one lookup ({restart:.0} ms)",
                rss as f64 / 1024.0,
                rss_after as f64 / 1024.0
            );
        }
        _ => println!(
            "\nKatran rows skipped: scripts/katran-build.sh could not build balancer.bpf.o"
        ),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! `kbpf prog` against `bpftool prog` on the live kernel: the same clang-built XDP objects are
//! `prog loadall`-ed into both (kbpf into a private `--bpffs` directory, the kernel into unique
//! pin directories under /sys/fs/bpf removed on drop), then the same script of steps runs on
//! both — `prog run` on the committed inputs in `tests/prog/` (return value, `data_out`,
//! `ctx_out`), `batch file` map updates between runs, and map dumps — and every result must be
//! equal. Each kbpf command is a separate process, so every run also exercises rebuilding the
//! pinned program from the state file. Also: `prog dump xlated` (text and `visual`) of pinned
//! programs equals bpftool's after normalising map ids and call immediates.
//! Skips with a `SKIP:` line where bpftool or bpf() are unavailable.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use kbpf_kernel::bpftool::{Pins, hex_bytes, loadall, unavailable};
use kbpf_rewrite::xlated::normalize;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn input(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/prog")
        .join(name)
}

fn skip() -> bool {
    if let Some(why) = unavailable(&root().join("tests/objects/bounded_loop.bpf.o")) {
        println!("SKIP: prog_kernel: {why}");
        return true;
    }
    false
}

/// A private kbpf bpffs directory, removed on drop.
struct Bpffs(PathBuf);

impl Bpffs {
    fn new(tag: &str) -> Bpffs {
        let d = std::env::temp_dir().join(format!(
            "kbpf-progk-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Bpffs(d)
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

fn kbpf(fs: &Bpffs, args: &[&str]) -> Out {
    // Under the live kernel's profile (tags, verifier messages, layouts).
    let o = Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .args(["--kernel", "host", "--bpffs"])
        .arg(&fs.0)
        .args(args)
        .output()
        .unwrap();
    Out {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn bpftool(args: &[&str]) -> Out {
    let o = Command::new("bpftool").args(args).output().unwrap();
    Out {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// One step of a scenario. `@M@` is the map pin directory, `@P@` the program directory.
enum Step {
    /// `prog run PROG data_in INPUT [ctx_in CTX]`.
    Run(&'static str, &'static str, Option<&'static str>),
    /// A batch file (map updates).
    Batch(&'static str),
    /// `map dump` of a data map: keys and values compared.
    Dump(&'static str),
    /// `prog run PROG data_in INPUT` of a program type without a test run: both refuse it
    /// with the same status and message.
    Refused(&'static str, &'static str),
}

/// Both sides of a scenario: the kernel's pins and kbpf's directory.
struct Sides {
    pins: Pins,
    fs: Bpffs,
}

impl Sides {
    fn kernel(&self, t: &str) -> String {
        t.replace("@M@", &self.pins.maps.display().to_string())
            .replace("@P@", &self.pins.progs.display().to_string())
    }
    fn kbpf(&self, t: &str) -> String {
        t.replace("@M@", "/sys/fs/bpf/maps")
            .replace("@P@", "/sys/fs/bpf/progs")
    }
}

fn load_both(obj: &Path, tag: &str) -> Sides {
    let s = Sides {
        pins: Pins::new("kbpfprogk", tag),
        fs: Bpffs::new(tag),
    };
    loadall(obj, &s.pins).unwrap_or_else(|e| panic!("bpftool loadall {}: {e}", obj.display()));
    let o = kbpf(
        &s.fs,
        &[
            "prog",
            "loadall",
            obj.to_str().unwrap(),
            "/sys/fs/bpf/progs",
            "pinmaps",
            "/sys/fs/bpf/maps",
        ],
    );
    assert_eq!(o.status, 0, "kbpf loadall {}: {}", obj.display(), o.stderr);
    s
}

/// `prog run` with `-j`, data_out and ctx_out to files: (retval, data_out, ctx_out).
fn run_json(out: &Out, data_out: &Path, ctx_out: &Path) -> Result<(u64, Vec<u8>, Vec<u8>), String> {
    if out.status != 0 {
        return Err(format!(
            "status {}: {}{}",
            out.status, out.stdout, out.stderr
        ));
    }
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))?;
    let r = v["retval"].as_u64().ok_or("no retval")?;
    let d = std::fs::read(data_out).map_err(|e| e.to_string())?;
    let c = std::fs::read(ctx_out).unwrap_or_default();
    Ok((r, d, c))
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn dump_pairs(text: &str) -> Result<Pairs, String> {
    let v: Value = serde_json::from_str(&kbpf_kernel::bpftool::normalize_bpftool_json(text))
        .map_err(|e| format!("{e}: {text}"))?;
    Ok(v.as_array()
        .ok_or("not an array")?
        .iter()
        .map(|e| (hex_bytes(&e["key"]), hex_bytes(&e["value"])))
        .collect())
}

/// Runs `steps` on both sides; returns the number of compared results.
fn compare(obj: &str, tag: &str, steps: &[Step]) -> usize {
    let s = load_both(&root().join(obj), tag);
    let tmp = Bpffs::new(&format!("{tag}-out"));
    let mut compared = 0;
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Run(prog, data, ctx) => {
                let (kd, kc) = (tmp.0.join(format!("k{n}.d")), tmp.0.join(format!("k{n}.c")));
                let (bd, bc) = (tmp.0.join(format!("b{n}.d")), tmp.0.join(format!("b{n}.c")));
                let data = input(data);
                let mut kargs: Vec<String> = vec![
                    "-j".into(),
                    "prog".into(),
                    "run".into(),
                    "pinned".into(),
                    format!("{}/{prog}", s.pins.progs.display()),
                    "data_in".into(),
                    data.display().to_string(),
                    "data_out".into(),
                    kd.display().to_string(),
                ];
                let mut bargs: Vec<String> = vec![
                    "-j".into(),
                    "prog".into(),
                    "run".into(),
                    "pinned".into(),
                    format!("/sys/fs/bpf/progs/{prog}"),
                    "data_in".into(),
                    data.display().to_string(),
                    "data_out".into(),
                    bd.display().to_string(),
                ];
                if let Some(c) = ctx {
                    for (a, out) in [(&mut kargs, &kc), (&mut bargs, &bc)] {
                        a.extend([
                            "ctx_in".into(),
                            input(c).display().to_string(),
                            "ctx_out".into(),
                            out.display().to_string(),
                        ]);
                    }
                }
                let kr = bpftool(&kargs.iter().map(String::as_str).collect::<Vec<_>>());
                let br = kbpf(&s.fs, &bargs.iter().map(String::as_str).collect::<Vec<_>>());
                let k = run_json(&kr, &kd, &kc)
                    .unwrap_or_else(|e| panic!("{obj} step {n}: bpftool: {e}"));
                let b =
                    run_json(&br, &bd, &bc).unwrap_or_else(|e| panic!("{obj} step {n}: kbpf: {e}"));
                assert_eq!(
                    b, k,
                    "{obj} step {n}: prog run {prog} {data:?}: kbpf (left) vs kernel"
                );
                compared += 1;
            }
            Step::Batch(text) => {
                let kf = tmp.0.join(format!("k{n}.batch"));
                let bf = tmp.0.join(format!("b{n}.batch"));
                std::fs::write(&kf, s.kernel(text)).unwrap();
                std::fs::write(&bf, s.kbpf(text)).unwrap();
                let kr = bpftool(&["batch", "file", kf.to_str().unwrap()]);
                let br = kbpf(&s.fs, &["batch", "file", bf.to_str().unwrap()]);
                assert_eq!(kr.status, 0, "{obj} step {n}: bpftool batch: {}", kr.stderr);
                assert_eq!(br.status, 0, "{obj} step {n}: kbpf batch: {}", br.stderr);
                assert_eq!(br.stdout, kr.stdout, "{obj} step {n}: batch output");
            }
            Step::Refused(prog, data) => {
                let data = input(data);
                let data = data.to_str().unwrap();
                let kp = format!("{}/{prog}", s.pins.progs.display());
                let kr = bpftool(&["prog", "run", "pinned", &kp, "data_in", data]);
                let bp = format!("/sys/fs/bpf/progs/{prog}");
                let br = kbpf(&s.fs, &["prog", "run", "pinned", &bp, "data_in", data]);
                assert_ne!(kr.status, 0, "{obj} step {n}: the kernel ran {prog}");
                assert_eq!(
                    (br.status, &br.stderr),
                    (kr.status, &kr.stderr),
                    "{obj} step {n}: prog run {prog}: kbpf (left) vs kernel"
                );
                compared += 1;
            }
            Step::Dump(map) => {
                let kr = bpftool(&["-j", "map", "dump", "pinned", &s.kernel(map)]);
                let br = kbpf(&s.fs, &["-j", "map", "dump", "pinned", &s.kbpf(map)]);
                let k = dump_pairs(&kr.stdout)
                    .unwrap_or_else(|e| panic!("{obj} step {n}: bpftool dump: {e}"));
                let b = dump_pairs(&br.stdout)
                    .unwrap_or_else(|e| panic!("{obj} step {n}: kbpf dump: {e}"));
                assert_eq!(
                    b, k,
                    "{obj} step {n}: map dump {map}: kbpf (left) vs kernel"
                );
                compared += 1;
            }
        }
    }
    println!("{obj}: {compared} results equal to the kernel's");
    compared
}

#[test]
fn aom_inner_map_runs_like_the_kernel() {
    if skip() {
        return;
    }
    use Step::*;
    let p = "xdp_two_level";
    let n = compare(
        "tests/objects/aom_inner_map.bpf.o",
        "aom_inner",
        &[
            Run(p, "rand64.bin", None),
            Run(p, "eth14.bin", None),
            Run(p, "rand64.bin", Some("ctx_lo_64.bin")),
            // outer[0] = inner_a, whose [1] decides PASS (0) or TX.
            Batch("map update pinned @M@/inner_a key 1 0 0 0 value 7 0 0 0\n"),
            Run(p, "rand64.bin", None),
            Dump("@M@/inner_a"),
            Batch("map update pinned @M@/outer key 0 0 0 0 value pinned @M@/inner_b\n"),
            Run(p, "ones21.bin", None),
            Batch("map update pinned @M@/inner_b key 1 0 0 0 value 1 0 0 0\n"),
            Run(p, "ones21.bin", None),
            Batch("map delete pinned @M@/outer key 0 0 0 0\n"),
            Run(p, "rand64.bin", None),
            // A new, larger inner map (BPF_F_INNER_MAP lets its size differ).
            Batch(
                "map create @M@/inner_c type array key 4 value 4 entries 9 name inner_c flags 0x1000\n\
                 map update pinned @M@/inner_c key 1 0 0 0 value 0 0 0 0\n\
                 map update pinned @M@/outer key 0 0 0 0 value pinned @M@/inner_c\n",
            ),
            Run(p, "seq16.bin", None),
        ],
    );
    assert_eq!(n, 9);
}

#[test]
fn bounded_loop_runs_like_the_kernel() {
    if skip() {
        return;
    }
    use Step::*;
    let p = "xdp_loop";
    let n = compare(
        "tests/objects/bounded_loop.bpf.o",
        "bounded_loop",
        &[
            Run(p, "seq16.bin", None),
            Dump("@M@/checksum"),
            Run(p, "seq40.bin", None),
            Dump("@M@/checksum"),
            Run(p, "eth14.bin", None),
            Dump("@M@/checksum"),
            Batch("map update pinned @M@/checksum key 0 0 0 0 value 1 2 3 4\n"),
            Run(p, "rand64.bin", Some("ctx_lo_64.bin")),
            Dump("@M@/checksum"),
        ],
    );
    assert_eq!(n, 8);
}

#[test]
fn aom_plain_runs_like_the_kernel() {
    if skip() {
        return;
    }
    use Step::*;
    let p = "xdp_count";
    let n = compare(
        "tests/objects/aom_plain.bpf.o",
        "aom_plain",
        &[
            // No inner map yet: XDP_PASS without counting.
            Run(p, "rand64.bin", None),
            Batch(
                "map create @M@/in32 type array key 4 value 16 entries 32 name in32\n\
                 map update pinned @M@/stats_outer key 0 0 0 0 value pinned @M@/in32\n",
            ),
            Run(p, "rand64.bin", None),
            Run(p, "seq40.bin", None),
            Dump("@M@/in32"),
            Dump("@M@/aom_plai_bss"),
        ],
    );
    assert_eq!(n, 5);
}

/// Every program of multi_prog.bpf.o: the XDP, tc, socket filter and cgroup_skb programs run
/// as the kernel's test run does (cgroup_skb like a socket filter: from the network header);
/// kprobe and tracepoint programs have no test run on the kernel either (ENOTSUPP, 524).
#[test]
fn multi_prog_runs_like_the_kernel() {
    if skip() {
        return;
    }
    use Step::*;
    let mut steps = Vec::new();
    for data in ["tcp_nosvc.bin", "rand64.bin", "eth14.bin"] {
        for p in [
            "xdp_first",
            "xdp_second",
            "tc_prog",
            "sock_filter",
            "cg_ingress",
        ] {
            steps.push(Run(p, data, None));
        }
    }
    steps.push(Refused("kprobe_open", "rand64.bin"));
    steps.push(Refused("tp_write", "rand64.bin"));
    let n = compare("tests/objects/multi_prog.bpf.o", "multi_prog", &steps);
    assert_eq!(n, 17);
}

/// `__kconfig` externs: the values the program reads (kernel version, host config options,
/// __weak ones the config lacks) are the ones libbpf gives the kernel's copy.
#[test]
fn kconfig_values_like_the_kernel() {
    if skip() {
        return;
    }
    use Step::*;
    let steps = [Run("kconfig_values", "rand64.bin", None), Dump("@M@/seen")];
    assert_eq!(compare("tests/objects/kconfig.bpf.o", "kconfig", &steps), 2);
}

#[test]
fn maglev_passes_foreign_traffic_like_the_kernel() {
    if skip() {
        return;
    }
    use Step::*;
    let p = "maglev_xdp";
    let n = compare(
        "crates/maglev/bpf/maglev.bpf.o",
        "maglev",
        &[
            Run(p, "udp_nosvc.bin", None),
            Run(p, "tcp_nosvc.bin", None),
            Run(p, "arp.bin", None),
            Run(p, "eth14.bin", None),
            Run(p, "rand64.bin", None),
        ],
    );
    assert_eq!(n, 5);
}

#[test]
fn pinned_programs_dump_the_kernels_xlated() {
    if skip() {
        return;
    }
    let mut compared = 0;
    for (obj, tag) in [
        ("tests/objects/aom_inner_map.bpf.o", "xl_aom"),
        ("crates/maglev/bpf/maglev.bpf.o", "xl_maglev"),
        ("tests/objects/bounded_loop.bpf.o", "xl_loop"),
    ] {
        let s = load_both(&root().join(obj), tag);
        for entry in std::fs::read_dir(&s.pins.progs).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            for extra in [&[][..], &["opcodes"][..], &["linum"][..], &["visual"][..]] {
                let kp = format!("{}/{name}", s.pins.progs.display());
                let bp = format!("/sys/fs/bpf/progs/{name}");
                let mut ka = vec!["prog", "dump", "xlated", "pinned", kp.as_str()];
                let mut ba = vec!["prog", "dump", "xlated", "pinned", bp.as_str()];
                ka.extend(extra);
                ba.extend(extra);
                let k = bpftool(&ka);
                let b = kbpf(&s.fs, &ba);
                assert_eq!(k.status, 0, "bpftool {ka:?}: {}", k.stderr);
                assert_eq!(b.status, 0, "kbpf {ba:?}: {}", b.stderr);
                let (kn, bn) = if extra == ["opcodes"] {
                    // Map ids also sit in the raw bytes: compare the text lines only.
                    let strip = |t: &str| {
                        normalize(
                            &t.lines()
                                .filter(|l| !l.starts_with("       "))
                                .collect::<Vec<_>>()
                                .join("\n"),
                        )
                    };
                    (strip(&k.stdout), strip(&b.stdout))
                } else {
                    (normalize(&k.stdout), normalize(&b.stdout))
                };
                assert!(
                    bn == kn,
                    "{obj} {name} {extra:?}: kbpf vs kernel\n{}",
                    diff(&bn, &kn)
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 12);
}

/// The first differing lines (kbpf, kernel).
fn diff(kbpf: &str, kernel: &str) -> String {
    let (b, k): (Vec<_>, Vec<_>) = (kbpf.lines().collect(), kernel.lines().collect());
    let mut out = String::new();
    for i in 0..b.len().max(k.len()) {
        let (x, y) = (
            b.get(i).copied().unwrap_or(""),
            k.get(i).copied().unwrap_or(""),
        );
        if x != y {
            out.push_str(&format!("line {i}:\n  kbpf:   {x}\n  kernel: {y}\n"));
            if out.len() > 2000 {
                break;
            }
        }
    }
    out
}

/// `SEC("?xdp")`: libbpf leaves the program unloaded, so bpftool's `prog loadall` fails to pin
/// it; kbpf prints the same lines and status.
#[test]
fn optional_autoload_program_cannot_be_pinned_like_bpftool() {
    if skip() {
        return;
    }
    let obj = root().join("tests/objects/optional_autoload.bpf.o");
    let obj = obj.to_str().unwrap();
    let fs = Bpffs::new("optional");
    let ours = kbpf(&fs, &["prog", "loadall", obj, "/sys/fs/bpf/oa"]);
    let pin = format!("/sys/fs/bpf/kbpf_progk_oa_{}", std::process::id());
    let theirs = bpftool(&["prog", "loadall", obj, &pin]);
    let _ = std::fs::remove_dir_all(&pin);
    assert_ne!(theirs.status, 0);
    assert_eq!(ours.status, theirs.status);
    assert_eq!(ours.stderr, theirs.stderr);
    assert!(
        ours.stderr
            .contains("prog 'xdp_optional': can't pin program that wasn't loaded"),
        "{}",
        ours.stderr
    );
}

/// Katran's objects (`scripts/katran-build.sh`): `prog dump xlated` of every program (the
/// XDP balancer, root and packet counter, the tc healthcheckers), plain and with line info,
/// equal to the kernel's.
#[test]
fn katran_programs_dump_the_kernels_xlated() {
    if skip() {
        return;
    }
    let Some(out) = common::katran_objects() else {
        return;
    };
    let mut compared = 0;
    for name in [
        "balancer",
        "xdp_root",
        "xdp_pktcntr",
        "healthchecking",
        "healthchecking_ipip",
    ] {
        let s = load_both(&out.join(format!("{name}.bpf.o")), &format!("xl_k_{name}"));
        for entry in std::fs::read_dir(&s.pins.progs).unwrap() {
            let prog = entry.unwrap().file_name().to_string_lossy().into_owned();
            for extra in [&[][..], &["linum"][..]] {
                let kp = format!("{}/{prog}", s.pins.progs.display());
                let bp = format!("/sys/fs/bpf/progs/{prog}");
                let mut ka = vec!["prog", "dump", "xlated", "pinned", kp.as_str()];
                let mut ba = vec!["prog", "dump", "xlated", "pinned", bp.as_str()];
                ka.extend(extra);
                ba.extend(extra);
                let k = bpftool(&ka);
                let b = kbpf(&s.fs, &ba);
                assert_eq!(k.status, 0, "bpftool {ka:?}: {}", k.stderr);
                assert_eq!(b.status, 0, "kbpf {ba:?}: {}", b.stderr);
                let (kn, bn) = (normalize(&k.stdout), normalize(&b.stdout));
                assert!(
                    bn == kn,
                    "{name} {prog} {extra:?}: kbpf vs kernel\n{}",
                    diff(&bn, &kn)
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 10, "only {compared} dumps compared");
}

/// `prog run PROG pcap_in FILE pcap_out FILE` against the kernel run packet by packet: the
/// counts per return value, and the written packets (XDP_PASS/TX/REDIRECT) byte for byte, on
/// a program that rewrites (`xdp_rewrite`: bpf_xdp_adjust_head, bpf_csum_diff) and one whose
/// answers depend on the packets before (`xdp_plain_lru`: a map and an LRU hash), on both
/// engines, through the daemon and in the process.
#[test]
fn pcap_runs_match_the_kernel_packet_by_packet() {
    use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
    if skip() {
        return;
    }
    let obj = root().join("crates/run/tests/progs/mim_run.bpf.o");
    // 700 packets: sizes 1..=300, seeded bytes.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let packets: Vec<Vec<u8>> = (0..700)
        .map(|i| {
            (0..1 + (i * 37) % 300)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect()
        })
        .collect();
    for (prog, engine, daemon) in [
        ("xdp_rewrite", "jit", true),
        ("xdp_rewrite", "interp", false),
        ("xdp_plain_lru", "jit", true),
        ("xdp_plain_lru", "interp", true),
    ] {
        let s = load_both(&obj, &format!("pcap_{prog}_{engine}"));
        let inp = s.fs.0.join("in.pcap");
        let out = s.fs.0.join("out.pcap");
        let mut w = PcapWriter::new(std::fs::File::create(&inp).unwrap()).unwrap();
        for (i, p) in packets.iter().enumerate() {
            w.write_packet(&PcapPacket::new(
                std::time::Duration::from_millis(i as u64),
                p.len() as u32,
                p,
            ))
            .unwrap();
        }
        drop(w);
        let mut c = Command::new(env!("CARGO_BIN_EXE_kbpf"));
        if !daemon {
            // The directory's daemon (which loaded the object) lets go of it first.
            assert_eq!(kbpf(&s.fs, &["daemon", "stop"]).status, 0);
            c.env("KBPF_DAEMON", "off");
        }
        let o = c
            .args(["--kernel", "host", "-j", "--bpffs"])
            .arg(&s.fs.0)
            .args([
                "prog",
                "run",
                "pinned",
                &format!("/sys/fs/bpf/progs/{prog}"),
            ])
            .arg("pcap_in")
            .arg(&inp)
            .arg("pcap_out")
            .arg(&out)
            .args(["--engine", engine])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{prog}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // The kernel, one test run per packet, in order.
        let kp = kbpf_kernel::KernelProg::from_pinned(s.pins.progs.join(prog)).unwrap();
        let mut want: std::collections::BTreeMap<u64, u64> = Default::default();
        let mut written = Vec::new();
        let mut refused = 0;
        for p in &packets {
            // The kernel refuses packets shorter than an Ethernet header: so does kbpf.
            let Ok(r) = kp.test_run(p, p.len() + 512, None, 1) else {
                assert!(p.len() < 14, "the kernel refused a {}-byte packet", p.len());
                refused += 1;
                continue;
            };
            *want.entry(r.retval as u64).or_default() += 1;
            if (2..=4).contains(&r.retval) {
                written.push(r.data_out);
            }
        }
        let got: std::collections::BTreeMap<u64, u64> = j["retvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["retval"].as_u64().unwrap(),
                    r["packets"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(j["packets"], 700);
        assert_eq!(j["refused"], refused);
        assert_eq!(got, want, "{prog} on {engine}: counts per return value");
        let mut r = PcapReader::new(std::fs::File::open(&out).unwrap()).unwrap();
        let mut kbpf_written = Vec::new();
        while let Some(p) = r.next_packet() {
            kbpf_written.push(p.unwrap().data.into_owned());
        }
        assert_eq!(
            kbpf_written.len(),
            written.len(),
            "{prog} on {engine}: written"
        );
        assert!(
            kbpf_written == written,
            "{prog} on {engine}: written packets differ"
        );
        println!(
            "{prog} on {engine} ({}): 700 packets, {} return values, {} written, equal to the kernel",
            if daemon { "daemon" } else { "in process" },
            want.len(),
            written.len()
        );
    }
}

/// `prog run` of an XDP program redirecting through a devmap (`crates/run/tests/progs/
/// redirect_map.bpf.o`, entries written with `map update` on both sides): bpftool's
/// `Return value` line, then kbpf's `Redirect:` line naming the target; `-j` carries it as
/// `"redirect": {"kind": "devmap", "map_id", "key", "ifindex", "flags"}`. A miss prints no
/// redirect.
#[test]
fn prog_run_shows_the_redirect_target() {
    if skip() {
        return;
    }
    let obj = root().join("crates/run/tests/progs/redirect_map.bpf.o");
    let s = load_both(&obj, "rdm");
    for side in ["kernel", "kbpf"] {
        let m = if side == "kernel" {
            s.kernel("@M@/devs")
        } else {
            s.kbpf("@M@/devs")
        };
        let args = [
            "map", "update", "pinned", &m, "key", "2", "0", "0", "0", "value", "1", "0", "0", "0",
            "0", "0", "0", "0",
        ];
        let o = if side == "kernel" {
            bpftool(&args)
        } else {
            kbpf(&s.fs, &args)
        };
        assert_eq!(o.status, 0, "{side} map update: {}", o.stderr);
    }
    let dir = std::env::temp_dir().join(format!("kbpf-rdm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hit = dir.join("hit");
    let miss = dir.join("miss");
    let mut pkt = vec![0u8; 64];
    pkt[1] = 2;
    std::fs::write(&hit, &pkt).unwrap();
    pkt[1] = 3;
    pkt[2] = 2; // XDP_PASS on a miss
    std::fs::write(&miss, &pkt).unwrap();
    let kp = s.kernel("@P@/xdp_redirect_map");
    let bp = s.kbpf("@P@/xdp_redirect_map");
    for (input, want_ret, redirected) in [(&hit, 4, true), (&miss, 2, false)] {
        let input = input.to_str().unwrap();
        let k = bpftool(&["prog", "run", "pinned", &kp, "data_in", input]);
        let b = kbpf(&s.fs, &["prog", "run", "pinned", &bp, "data_in", input]);
        assert_eq!((k.status, b.status), (0, 0), "{} / {}", k.stderr, b.stderr);
        let first = |t: &str| {
            t.lines()
                .next()
                .unwrap_or("")
                .split(',')
                .next()
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(first(&b.stdout), first(&k.stdout));
        assert_eq!(first(&b.stdout), format!("Return value: {want_ret}"));
        let line = b.stdout.lines().find(|l| l.starts_with("Redirect: "));
        if redirected {
            let id = kbpf(&s.fs, &["map", "show", "pinned", &s.kbpf("@M@/devs"), "-j"]);
            let v: serde_json::Value = serde_json::from_str(&id.stdout).unwrap();
            let map_id = v["id"].as_u64().unwrap();
            assert_eq!(
                line,
                Some(format!("Redirect: devmap id {map_id} key 2 (ifindex 1)").as_str())
            );
            let j = kbpf(
                &s.fs,
                &["prog", "run", "pinned", &bp, "data_in", input, "-j"],
            );
            let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
            assert_eq!(v["retval"], 4);
            assert_eq!(
                v["redirect"],
                serde_json::json!({"kind": "devmap", "map_id": map_id, "key": 2, "ifindex": 1, "flags": 0})
            );
        } else {
            assert_eq!(line, None, "{}", b.stdout);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `map event_pipe MAP cpu 0 index 0` against bpftool's on the kernel's map, while the
/// same packets run through `bpf_perf_event_output` (XDP and tc, on CPU 0): the same
/// samples in the same order, printed the same way (the `== @TIME` stamps differ). Under
/// `-j`, kbpf's events are bpftool's objects.
#[test]
fn event_pipe_prints_what_bpftool_prints() {
    if skip() {
        return;
    }
    let obj = root().join("crates/run/tests/progs/perf_out.bpf.o");
    let s = load_both(&obj, "evp");
    let dir = std::env::temp_dir().join(format!("kbpf-evp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Slot 4 = BPF_F_CURRENT_CPU, 8 packet bytes, meta 8 bytes ending in 7; then slot 0
    // explicitly, 0 packet bytes.
    let mut pkts = Vec::new();
    for (i, head) in [[4u8, 8, 0, 7, 8], [0, 0, 0, 9, 8], [4, 20, 0, 1, 0]]
        .iter()
        .enumerate()
    {
        let mut p: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(11)).collect();
        p[..5].copy_from_slice(head);
        let f = dir.join(format!("p{i}"));
        std::fs::write(&f, &p).unwrap();
        pkts.push(f);
    }
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| {
                if l.starts_with("== @") {
                    l.split_once(" CPU")
                        .map_or(l.to_string(), |(_, r)| format!("== CPU{r}"))
                } else {
                    l.to_string()
                }
            })
            .filter(|l| !l.is_empty())
            .collect()
    };
    // The kernel: bpftool reading, bpftool prog run pinned to CPU 0, SIGINT.
    let km = s.kernel("@M@/events");
    let reader = Command::new("bpftool")
        .args(["map", "event_pipe", "pinned", &km, "cpu", "0", "index", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    for prog in ["xdp_perf_out", "tc_perf_out"] {
        for p in &pkts {
            let o = Command::new("taskset")
                .args(["-c", "0", "bpftool", "prog", "run", "pinned"])
                .arg(s.kernel(&format!("@P@/{prog}")))
                .arg("data_in")
                .arg(p)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(reader.id() as i32, libc::SIGINT) };
    let k = reader.wait_with_output().unwrap();
    let kernel = strip(&String::from_utf8_lossy(&k.stdout));
    // kbpf: the same, through its daemon; `count 6` ends the reader.
    let bin = env!("CARGO_BIN_EXE_kbpf");
    // `map event_pipe` of the events map's slot 0 (CPU 0) until `count` samples, `-j` or not.
    let event_pipe = |json: bool, count: &str| {
        let mut c = Command::new(bin);
        c.args(["--kernel", "host"]);
        if json {
            c.arg("-j");
        }
        c.arg("--bpffs")
            .arg(&s.fs.0)
            .args([
                "map",
                "event_pipe",
                "pinned",
                "/sys/fs/bpf/maps/events",
                "cpu",
                "0",
                "index",
                "0",
                "count",
                count,
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let reader = event_pipe(false, "6");
    std::thread::sleep(std::time::Duration::from_millis(500));
    for prog in ["xdp_perf_out", "tc_perf_out"] {
        for p in &pkts {
            let o = kbpf(
                &s.fs,
                &[
                    "prog",
                    "run",
                    "pinned",
                    &format!("/sys/fs/bpf/progs/{prog}"),
                    "data_in",
                    p.to_str().unwrap(),
                ],
            );
            assert_eq!(o.status, 0, "{}", o.stderr);
        }
    }
    let b = reader.wait_with_output().unwrap();
    let ours = strip(&String::from_utf8_lossy(&b.stdout));
    assert_eq!(
        ours.iter().filter(|l| l.starts_with("== CPU")).count(),
        6,
        "{ours:?}"
    );
    assert_eq!(ours, kernel);
    // -j: one object per sample, bpftool's fields.
    let reader = event_pipe(true, "1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let o = kbpf(
        &s.fs,
        &[
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/progs/xdp_perf_out",
            "data_in",
            pkts[1].to_str().unwrap(),
        ],
    );
    assert_eq!(o.status, 0, "{}", o.stderr);
    let b = reader.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    let e = &v[0];
    assert_eq!(
        (e["type"].as_u64(), e["cpu"].as_u64(), e["index"].as_u64()),
        (Some(9), Some(0), Some(0))
    );
    assert_eq!(e["data"].as_array().map(Vec::len), Some(12));
    let _ = kbpf(&s.fs, &["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
}

//! The Maglev load balancer serving real TCP connections: `scripts/maglev-netns.sh up`
//! builds client, router, load-balancer and backend namespaces; the datapath runs in the
//! kbpf daemon, attached to the load balancer's device with `kbpf net attach`; the control
//! plane is another process (`kbpf maglev ctl`). Asserted:
//! - every connection completes, before and during backend churn (inner-map swaps);
//! - each new connection lands on the backend the Maglev table gives its flow;
//! - established connections keep their backend while the table changes (conntrack);
//! - garbage, oversized frames and a flood on the wire are counted, never crash the
//!   daemon, and the service works afterwards.
//!
//! Needs root, `ip`, `nft`, `ethtool` and `bpf()`; skips with a message elsewhere (a
//! failure under `CI=true`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbpf_net::NetNs;
use kbpf_net::packet_socket::{PacketSocket, VNET_HDR_LEN};

const VIP: &str = "10.200.100.1";
const BACKENDS: usize = 4;

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("maglev_netns: {why} under CI=true");
    }
    eprintln!("SKIP: maglev_netns: {why}");
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/maglev-netns.sh")
}

/// The namespaces, removed on drop (also after a failed assertion).
struct Topology {
    prefix: String,
}

impl Topology {
    fn up(tag: &str, mtu: &str) -> Result<Topology, String> {
        let prefix = format!("kml{tag}{}", std::process::id() % 100_000);
        let t = Topology { prefix };
        let o = Command::new("bash")
            .arg(script())
            .arg("up")
            .env("KBPF_NETNS_PREFIX", &t.prefix)
            // One host more than the service starts with: the churn adds and removes it.
            .env("BACKENDS", (BACKENDS + 1).to_string())
            .env("LB_MTU", mtu)
            // AF_PACKET completes partial checksums: leave the client's offload on there
            // to exercise it (AF_XDP, like the kernel's own XDP, forwards them as they are).
            .env("CLIENT_TX_CSUM", if mtu == "9000" { "on" } else { "off" })
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        Ok(t)
    }

    fn ns(&self, name: &str) -> NetNs {
        NetNs::named(&format!("{}-{name}", self.prefix)).expect("namespace")
    }

    fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .env("KBPF_NETNS_PREFIX", &self.prefix)
            .output();
    }
}

/// Runs `f` on a new thread inside `ns`.
fn spawn_in<T: Send + 'static>(
    ns: NetNs,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        ns.enter().expect("setns");
        f()
    })
}

/// A backend server: answers each line with its name.
fn serve(
    ns: NetNs,
    name: String,
    stop: Arc<AtomicBool>,
    listening: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<()> {
    spawn_in(ns, move || {
        let l = TcpListener::bind("0.0.0.0:80").expect("bind :80");
        let _ = listening.send(());
        l.set_nonblocking(true).unwrap();
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    let name = name.clone();
                    std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let mut w = s.try_clone().unwrap();
                        for line in BufReader::new(s).lines() {
                            if line.is_err() || writeln!(w, "{name}").is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    })
}

/// One request on a connection: the backend's name.
fn ask(c: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    c.get_mut().write_all(b"x\n")?;
    let mut line = String::new();
    c.read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::other("closed"));
    }
    Ok(line.trim().to_string())
}

fn connect() -> std::io::Result<BufReader<TcpStream>> {
    let addr: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    Ok(BufReader::new(s))
}

/// A short connection: connect, one request, close. (source port, backend, latency).
fn short() -> Result<(u16, String, Duration), String> {
    let t = Instant::now();
    let mut c = connect().map_err(|e| format!("connect: {e}"))?;
    let port = c.get_ref().local_addr().map_err(|e| e.to_string())?.port();
    let b = ask(&mut c).map_err(|e| format!("request from port {port}: {e}"))?;
    Ok((port, b, t.elapsed()))
}

struct Ctl {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Ctl {
    fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        let answer = answer.trim().to_string();
        assert!(answer.starts_with("ok"), "ctl `{line}`: {answer}");
        answer
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

/// Runs `kbpf --bpffs DIR ARGS…` inside the load balancer's namespace.
fn kbpf_in_lb(dir: &Path, topo: &Topology, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &topo.name("lb"),
            env!("CARGO_BIN_EXE_kbpf"),
        ])
        .arg("--bpffs")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn counters(dir: &Path, topo: &Topology) -> serde_json::Value {
    let o = kbpf_in_lb(dir, topo, &["-j", "net", "show", "dev", "lb0"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("net show -j");
    v[0]["xdp"][0].clone()
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

/// AF_XDP (the default where veth's driver runs XDP: MTU 1500), then AF_PACKET (MTU 9000,
/// so frames too long for an XDP frame reach the load balancer), one after the other.
#[test]
fn maglev_serves_real_connections_through_kbpf_net_attach() {
    deployment("af_xdp", "1500");
    deployment("af_packet", "9000");
}

fn deployment(capture: &str, mtu: &str) {
    eprintln!("== capture {capture}, load balancer MTU {mtu}");
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root");
    }
    for t in ["ip", "nft", "ethtool"] {
        if !have(t) {
            return skip(&format!("needs {t}"));
        }
    }
    if !kbpf_kernel::bpf_available_or_skip("maglev_netns") {
        return;
    }
    let topo = match Topology::up(&capture[3..4], mtu) {
        Ok(t) => t,
        Err(e) => return skip(&format!("cannot build the namespaces: {e}")),
    };
    let dir = common::scratch_dir(&format!("maglev-netns-{capture}"));
    std::fs::create_dir_all(dir.join("ml")).unwrap();
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../maglev/bpf/maglev.bpf.o");
    let (st, out, err) = common::kbpf(
        &dir,
        &[
            "prog",
            "loadall",
            obj.to_str().unwrap(),
            "/sys/fs/bpf/ml/prog",
            "pinmaps",
            "/sys/fs/bpf/ml/maps",
        ],
    );
    assert_eq!(st, 0, "{out}{err}");
    let o = kbpf_in_lb(
        &dir,
        &topo,
        &[
            "net",
            "attach",
            "xdp",
            "pinned",
            "/sys/fs/bpf/ml/prog/maglev_xdp",
            "dev",
            "lb0",
            "capture",
            capture,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The control plane, in its own process.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbpf"))
        .arg("--bpffs")
        .arg(&dir)
        .args(["maglev", "ctl", "--maps", "/sys/fs/bpf/ml/maps"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ctl = Ctl {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    let svc = format!("{VIP}:80/tcp");
    let backends: Vec<String> = (1..=BACKENDS)
        .map(|i| format!("10.200.0.{}", 10 + i))
        .collect();
    ctl.cmd(&format!("service {svc} {}", backends.join(" ")));

    let stop = Arc::new(AtomicBool::new(false));
    let mut servers = Vec::new();
    let (listening, up) = std::sync::mpsc::channel();
    for i in 1..=BACKENDS + 1 {
        servers.push(serve(
            topo.ns(&format!("b{i}")),
            format!("10.200.0.{}", 10 + i),
            stop.clone(),
            listening.clone(),
        ));
    }
    for _ in 0..=BACKENDS {
        up.recv_timeout(Duration::from_secs(10))
            .expect("every backend listens");
    }

    // Phase 1: 2,000 connections; each must land where the Maglev table says.
    let results: Vec<Result<(u16, String, Duration), String>> = {
        let mut handles = Vec::new();
        for _ in 0..4 {
            handles.push(spawn_in(topo.ns("client"), || {
                (0..500).map(|_| short()).collect::<Vec<_>>()
            }));
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    };
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 2000 connections failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let mut per_backend = std::collections::BTreeMap::<String, u32>::new();
    let mut mismatched = 0;
    let mut lat: Vec<Duration> = Vec::new();
    for (port, b, d) in results.iter().flatten() {
        *per_backend.entry(b.clone()).or_default() += 1;
        lat.push(*d);
        let want = ctl.cmd(&format!("pick {svc} 10.200.1.2 {port}"));
        if want.strip_prefix("ok ") != Some(b.as_str()) {
            mismatched += 1;
        }
    }
    assert_eq!(
        mismatched, 0,
        "connections off the Maglev table: {mismatched} ({per_backend:?})"
    );
    assert_eq!(per_backend.len(), BACKENDS, "{per_backend:?}");
    for (b, n) in &per_backend {
        assert!(
            *n > 2000 / BACKENDS as u32 / 2,
            "backend {b} got {n} of 2000: {per_backend:?}"
        );
    }
    let p50 = percentile(&mut lat, 0.5);
    let p99 = percentile(&mut lat, 0.99);
    eprintln!("phase 1: 2000 connections, spread {per_backend:?}, latency p50 {p50:?} p99 {p99:?}");

    // Phase 2: churn. Long-lived connections first (on b1..b4), then short ones from four
    // threads while the control plane adds, drains and removes a fifth backend.
    let long_stop = Arc::new(AtomicBool::new(false));
    let long_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let long_rounds = Arc::new(AtomicU64::new(0));
    let long = {
        let (stop, errors, rounds) = (long_stop.clone(), long_errors.clone(), long_rounds.clone());
        spawn_in(topo.ns("client"), move || {
            let mut conns: Vec<(BufReader<TcpStream>, String)> = (0..48)
                .map(|_| {
                    let mut c = connect().expect("long-lived connect");
                    let b = ask(&mut c).expect("first request");
                    (c, b)
                })
                .collect();
            while !stop.load(Ordering::Relaxed) {
                for (c, first) in conns.iter_mut() {
                    match ask(c) {
                        Ok(b) if b == *first => {}
                        Ok(b) => errors.lock().unwrap().push(format!("moved {first} -> {b}")),
                        Err(e) => errors.lock().unwrap().push(format!("{first}: {e}")),
                    }
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
            conns.len()
        })
    };
    while long_rounds.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let short_stop = Arc::new(AtomicBool::new(false));
    let shorts: Vec<_> = (0..4)
        .map(|_| {
            let stop = short_stop.clone();
            spawn_in(topo.ns("client"), move || {
                let mut r = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    r.push(short());
                }
                r
            })
        })
        .collect();
    let b5 = format!("10.200.0.{}", 11 + BACKENDS);
    let churn_start = Instant::now();
    for _ in 0..5 {
        ctl.cmd(&format!("add {svc} {b5}"));
        std::thread::sleep(Duration::from_millis(400));
        ctl.cmd(&format!("drain {svc} {b5}"));
        std::thread::sleep(Duration::from_millis(400));
        ctl.cmd(&format!("remove {svc} {b5}"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let churn = churn_start.elapsed();
    short_stop.store(true, Ordering::Relaxed);
    let during: Vec<_> = shorts.into_iter().flat_map(|h| h.join().unwrap()).collect();
    long_stop.store(true, Ordering::Relaxed);
    assert_eq!(long.join().unwrap(), 48);
    let long_errors = long_errors.lock().unwrap().clone();
    assert!(
        long_errors.is_empty(),
        "established connections disturbed: {long_errors:?}"
    );
    assert!(long_rounds.load(Ordering::Relaxed) >= 10);
    let failed: Vec<&String> = during.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} connections failed during churn: {:?}",
        failed.len(),
        during.len(),
        &failed[..failed.len().min(5)]
    );
    let on_b5 = during.iter().flatten().filter(|(_, b, _)| *b == b5).count();
    assert!(on_b5 > 0, "no new connection reached the added backend");
    let mut lat: Vec<Duration> = during.iter().flatten().map(|r| r.2).collect();
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    let show: serde_json::Value =
        serde_json::from_str(ctl.cmd("show").strip_prefix("ok ").unwrap()).unwrap();
    assert_eq!(show["swaps"].as_u64().unwrap(), 1 + 15, "{show}");
    eprintln!(
        "phase 2: {} connections in {churn:?} under 15 inner-map swaps, all completed ({on_b5} on the added backend); \
         latency p50 {p50:?} p99 {p99:?}; 48 established connections kept their backend over {} rounds",
        during.len(),
        long_rounds.load(Ordering::Relaxed)
    );

    // Phase 3: bad input on the wire, sent straight at lb0 from the router's side.
    let lb_mac = {
        let o = Command::new("ip")
            .args(["-n", &topo.name("lb"), "-j", "link", "show", "lb0"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let s = v[0]["address"].as_str().unwrap().to_string();
        let b: Vec<u8> = s
            .split(':')
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        b
    };
    let before = counters(&dir, &topo);
    assert_eq!(before["capture"], capture, "{before}");
    // Frames longer than an XDP frame can reach the program only over a link whose MTU
    // allows them (AF_PACKET's case here; native XDP keeps the MTU at a page).
    let oversized_n = if mtu == "9000" { 200 } else { 0 };
    let sent = spawn_in(topo.ns("router"), move || {
        let idx = kbpf_net::ifindex("rlb").unwrap();
        let s = PacketSocket::open(idx, 0xffff_ffff, Duration::from_millis(10)).unwrap();
        let frame = |len: usize, ethertype: u16, fill: &dyn Fn(usize) -> u8| {
            let mut f = vec![0u8; VNET_HDR_LEN + len];
            let e = &mut f[VNET_HDR_LEN..];
            e[0..6].copy_from_slice(&lb_mac);
            e[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0x0b, 0xad]);
            e[12..14].copy_from_slice(&ethertype.to_be_bytes());
            for (i, b) in e[14..].iter_mut().enumerate() {
                *b = fill(i);
            }
            f
        };
        let mut x = 0x1234_5678u32;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut garbage = Vec::new();
        for i in 0..2000 {
            let len = 14 + (rnd() as usize % 1500);
            let seed = rnd();
            let fill = move |j: usize| (seed.wrapping_mul(j as u32 + 1) >> 7) as u8;
            // IPv4 with random headers: wrong versions, short IHLs, truncated L4.
            let mut f = frame(len, if i % 3 == 0 { 0x86dd } else { 0x0800 }, &fill);
            if len > 15 && i % 2 == 0 {
                f[VNET_HDR_LEN + 14] = 0x45; // a plausible IPv4 start
                if len > 24 {
                    f[VNET_HDR_LEN + 23] = 6; // TCP
                }
            }
            garbage.push(f);
        }
        let oversized: Vec<Vec<u8>> = (0..oversized_n)
            .map(|_| frame(5000, 0x0800, &|_| 0x45))
            .collect();
        let mut n = 0;
        for f in garbage.iter().chain(&oversized) {
            n += s.send_batch(&[f]).unwrap_or(0);
        }
        std::thread::sleep(Duration::from_millis(300));
        // A flood: 50,000 SYNs of one flow to the VIP.
        let mut syn = frame(54, 0x0800, &|_| 0);
        {
            let ip = &mut syn[VNET_HDR_LEN + 14..];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&40u16.to_be_bytes());
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&[10, 200, 1, 99]);
            ip[16..20].copy_from_slice(&[10, 200, 100, 1]);
            let c = kbpf_maglev::packet::internet_checksum(0, &ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ip[20..22].copy_from_slice(&4242u16.to_be_bytes());
            ip[22..24].copy_from_slice(&80u16.to_be_bytes());
            ip[32] = 0x50;
            ip[33] = 0x02;
        }
        let batch: Vec<&[u8]> = (0..64).map(|_| syn.as_slice()).collect();
        let mut flood = 0;
        while flood < 50_000 {
            flood += s.send_batch(&batch).unwrap_or(0);
        }
        (n, flood)
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let after = counters(&dir, &topo);
    let c = |v: &serde_json::Value, k: &str| v["counters"][k].as_u64().unwrap();
    assert_eq!(sent.0, 2000 + oversized_n, "garbage frames sent");
    assert!(
        after.get("stopped").is_none(),
        "the attachment stopped: {after}"
    );
    assert!(
        c(&after, "oversized") - c(&before, "oversized") >= oversized_n as u64,
        "{after}"
    );
    assert_eq!(c(&after, "run_errors"), 0, "{after}");
    assert!(c(&after, "rx") - c(&before, "rx") >= 2000, "{after}");
    eprintln!(
        "phase 3: 2000 garbage + {oversized_n} oversized frames and a {}-frame flood: counters {}",
        sent.1, after["counters"]
    );
    // Still serving.
    let h = spawn_in(topo.ns("client"), || {
        (0..50).map(|_| short()).collect::<Vec<_>>()
    });
    let last = h.join().unwrap();
    assert!(
        last.iter().all(|r| r.is_ok()),
        "after the bad input: {last:?}"
    );
    let (st, out, err) = common::kbpf(&dir, &["daemon", "status"]);
    assert_eq!(st, 0, "the daemon is alive: {out}{err}");

    // Detach: the device is the stack's again.
    drop(ctl);
    let o = kbpf_in_lb(&dir, &topo, &["net", "detach", "xdp", "dev", "lb0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stop.store(true, Ordering::Relaxed);
    let _ = common::kbpf(&dir, &["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
    drop(topo);
}

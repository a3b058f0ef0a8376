//! Packets per second through the Maglev datapath attached to a real device: kbpf's
//! `net attach` (the program in user space; frames through AF_XDP, then AF_PACKET) against
//! the same object attached by the kernel as generic XDP (`bpftool net attach xdpgeneric`)
//! and in veth's driver (`xdpdrv`), on the same veth pair, in one run.
//!
//! ```sh
//! cargo run --release -p kbpf-bench --example net_pps [-- SECONDS [ROUNDS]]
//! ```
//! Two namespaces joined by a veth pair: a generator sends 64-byte UDP frames of 1,024
//! flows to a Maglev service at the highest rate it can (`sendmmsg` on AF_PACKET); the
//! load balancer's side runs the datapath, which rewrites each frame to a backend and
//! sends it back (`XDP_TX`). Forwarded = the datapath's own `STAT_TX` counter
//! (`maglev_stats`), read before and after each window. Medians over ROUNDS (default 3)
//! windows of SECONDS (default 3). Needs root, `ip` and `bpf()`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kbpf_maglev::control::{BackendSpec, LbConfig, ServiceAddr};
use kbpf_net::packet_socket::{PacketSocket, VNET_HDR_LEN};
use kbpf_net::{AttachOptions, Attachments, CaptureMode, NetNs};

const STAT_TX: u32 = 1;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

struct Pair {
    gen_ns: String,
    lb_ns: String,
}

impl Drop for Pair {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.gen_ns]);
        ip(&["netns", "del", &self.lb_ns]);
    }
}

fn mac(ns: &str, dev: &str) -> [u8; 6] {
    let o = Command::new("ip")
        .args(["-n", ns, "link", "show", dev])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&o.stdout);
    let addr = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("link/ether");
    let mut m = [0u8; 6];
    for (d, h) in m.iter_mut().zip(addr.split(':')) {
        *d = u8::from_str_radix(h, 16).expect("hex");
    }
    m
}

/// 1,024 UDP frames (64 bytes on the wire, before the FCS) to the VIP, with a virtio-net
/// header each: the Maglev crate's client frames, addressed to the pair's MACs.
fn frames(dst: [u8; 6], src: [u8; 6]) -> Vec<Vec<u8>> {
    use kbpf_maglev::packet::{Flow, IPPROTO_UDP};
    (0..1024u32)
        .map(|i| {
            let flow = Flow {
                saddr: [10, 201, 1 + (i >> 8) as u8, i as u8],
                daddr: [10, 201, 100, 1],
                sport: 10_000 + i as u16,
                dport: 80,
                protocol: IPPROTO_UDP,
            };
            let mut f = vec![0u8; VNET_HDR_LEN];
            f.extend_from_slice(&flow.frame(&[0u8; 18]));
            f[VNET_HDR_LEN..VNET_HDR_LEN + 6].copy_from_slice(&dst);
            f[VNET_HDR_LEN + 6..VNET_HDR_LEN + 12].copy_from_slice(&src);
            f
        })
        .collect()
}

/// Sends `frames` round-robin from `ns`'s g0 for `secs`; returns frames sent.
fn generate(ns: NetNs, frames: Arc<Vec<Vec<u8>>>, secs: f64, stop: Arc<AtomicBool>) -> u64 {
    std::thread::spawn(move || {
        ns.enter().unwrap();
        let s = PacketSocket::open(
            kbpf_net::ifindex("g0").unwrap(),
            0xffff_ffff,
            Duration::from_millis(10),
        )
        .unwrap();
        let batch: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut sent = 0u64;
        let mut i = 0;
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            sent += s.send_batch(&batch[i..i + 64]).unwrap_or(0) as u64;
            i = (i + 64) % batch.len();
        }
        sent
    })
    .join()
    .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn service() -> (ServiceAddr, Vec<BackendSpec>) {
    let addr = ServiceAddr {
        vip: [10, 201, 100, 1].into(),
        port: 80,
        protocol: 17,
    };
    let backends = (11..19u8)
        .map(|i| BackendSpec::new(std::net::Ipv4Addr::new(10, 201, 0, i), 0))
        .collect();
    (addr, backends)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP: net_pps needs root");
        return;
    }
    if let Err(e) = kbpf_kernel::bpf_available() {
        println!("SKIP: net_pps: bpf() unavailable: {e}");
        return;
    }
    let id = std::process::id();
    let pair = Pair {
        gen_ns: format!("kbpfpps-g-{id}"),
        lb_ns: format!("kbpfpps-l-{id}"),
    };
    assert!(
        ip(&["netns", "add", &pair.gen_ns])
            && ip(&["netns", "add", &pair.lb_ns])
            && ip(&[
                "link",
                "add",
                "g0",
                "netns",
                &pair.gen_ns,
                "type",
                "veth",
                "peer",
                "name",
                "lb0",
                "netns",
                &pair.lb_ns
            ])
            && ip(&["-n", &pair.gen_ns, "link", "set", "g0", "up"])
            && ip(&["-n", &pair.lb_ns, "link", "set", "lb0", "up"]),
        "cannot build the veth pair"
    );
    let frames = Arc::new(frames(mac(&pair.lb_ns, "lb0"), mac(&pair.gen_ns, "g0")));
    let gen_ns = || NetNs::named(&pair.gen_ns).unwrap();
    let lb_ns = || NetNs::named(&pair.lb_ns).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, backends) = service();
    let obj = std::path::Path::new(kbpf_maglev::OBJECT_PATH);

    println!(
        "Maglev datapath on a veth pair, 64-byte UDP frames of 1,024 flows, {rounds} windows of {secs} s (medians)\n"
    );
    println!("| datapath | offered (frames/s) | forwarded (XDP_TX/s) | forwarded ÷ offered |");
    println!("|---|---:|---:|---:|");

    // Nothing attached: what the generator offers when the frames cost the receiver least.
    let mut offered = Vec::new();
    for _ in 0..rounds {
        offered.push(generate(gen_ns(), frames.clone(), secs, stop.clone()) as f64 / secs);
    }
    println!(
        "| none (the stack drops them) | {:.0} | — | — |",
        median(offered)
    );

    let window = |tx: &dyn Fn() -> u64| {
        let (mut off, mut fwd) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t0 = tx();
            let sent = generate(gen_ns(), frames.clone(), secs, stop.clone());
            std::thread::sleep(Duration::from_millis(200));
            off.push(sent as f64 / secs);
            fwd.push((tx() - t0) as f64 / secs);
        }
        (median(off), median(fwd))
    };

    // kbpf: the program in user space, attached in the LB namespace, on each capture.
    for (capture, label) in [
        (CaptureMode::AfXdp, "kbpf `net attach`, AF_XDP (JIT)"),
        (CaptureMode::AfPacket, "kbpf `net attach`, AF_PACKET (JIT)"),
    ] {
        let (load, mut lb) = kbpf_maglev::kbpf_datapath::load(obj, LbConfig::default())
            .expect("load maglev.bpf.o into kbpf");
        lb.add_service(addr, &backends).expect("service");
        let kbpf_maglev::kbpf_datapath::KbpfLoad { program, object } = load;
        let net = Attachments::default();
        let opts = AttachOptions {
            capture,
            ..AttachOptions::default()
        };
        if let Err(e) = net.attach(Arc::new(program), 1, "lb0", lb_ns(), opts, false) {
            println!("| {label} | skipped: {e} | | |");
            continue;
        }
        let tx = || {
            let v = lb.maps().stats.lookup_elem(&STAT_TX.to_ne_bytes()).unwrap();
            u64::from_ne_bytes(v[..8].try_into().unwrap())
        };
        let (o, f) = window(&tx);
        let info = &net.list(lb_ns().inode())[0];
        let missed = info
            .counters
            .iter()
            .find(|c| c.0 == "rx_missed")
            .map_or(0, |c| c.1);
        println!("| {label} | {o:.0} | {f:.0} | {:.2} |", f / o);
        eprintln!("{label}: rx_missed {missed} over the run");
        net.clear();
        drop(object);
    }

    // The kernel: the same object as generic XDP (`xdpgeneric`), then in veth's driver
    // (`xdpdrv`), on the same device.
    for (generic, label) in [
        (true, "kernel `xdpgeneric` (kernel JIT)"),
        (false, "kernel `xdpdrv` (kernel JIT)"),
    ] {
        let (kload, mut klb) = match kbpf_maglev::control::kernel::load(obj, LbConfig::default()) {
            Ok(k) => k,
            Err(e) => {
                println!("| {label} | skipped: {e} | | |");
                continue;
            }
        };
        klb.add_service(addr, &backends).expect("service");
        let link = std::thread::scope(|s| {
            s.spawn(|| {
                lb_ns().enter().unwrap();
                let idx = kbpf_net::ifindex("lb0").unwrap();
                kbpf_kernel::KernelLink::xdp(&kload.prog, idx, generic)
            })
            .join()
            .unwrap()
        });
        let link = match link {
            Ok(l) => l,
            Err(e) => {
                println!("| {label} | skipped: {e} | | |");
                continue;
            }
        };
        let tx = || {
            let v = klb.maps().stats.lookup(&STAT_TX.to_ne_bytes()).unwrap();
            u64::from_ne_bytes(v[..8].try_into().unwrap())
        };
        let (o, f) = window(&tx);
        println!("| {label} | {o:.0} | {f:.0} | {:.2} |", f / o);
        drop(link);
    }
    drop(pair);
}

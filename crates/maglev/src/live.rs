//! The live deployment: `maglev.bpf.o` runs in a kbpf daemon on a stream of packets while a
//! control plane in **another process** swaps the services' inner maps under it — the
//! deployment `BPF_F_INNER_MAP` exists for (an agent replacing per-service Maglev tables
//! under live traffic).
//!
//! Two roles, each for its own process (`kbpf maglev live` runs the first and starts the
//! second as `kbpf maglev control`):
//! - [`drive_traffic`]: sends batches of packets to the daemon, which runs the program on
//!   them outside its request lock ([`kbpf_client::Request::ProgRunPackets`]), and checks
//!   every packet that comes back: an `XDP_TX` packet must be rewritten to a backend of its
//!   own service, one of the two backend sets that service alternates between
//!   (misrouted otherwise);
//! - [`control_plane`]: installs the services ([`LoadBalancer`] over [`DaemonOps`]), then
//!   adds and removes one backend per service in turn, each change building a new table in a
//!   new inner array and swapping it in with one outer-map update; it times every change.
//!
//! Services, backends and flows are derived from the configuration alone, so both processes
//! agree on them without talking to each other.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use kbpf_client::{Client, ClientError};
use serde::{Deserialize, Serialize};

use crate::abi::{XDP_DROP, XDP_PASS, XDP_TX};
use crate::control::{BackendSpec, ControlError, DaemonOps, LbConfig, LoadBalancer, ServiceAddr};
use crate::packet::{Flow, IPPROTO_TCP};

/// The scenario's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveConfig {
    /// Services.
    pub services: u32,
    /// Backends per service (set A; set B adds one more).
    pub backends: u32,
    /// Backend changes the control plane makes (each one swaps an inner map).
    pub swaps: u32,
    /// Packets through the datapath.
    pub packets: u64,
    /// Distinct client flows.
    pub flows: u32,
    /// Packets per request to the daemon.
    pub batch: u32,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            services: 64,
            backends: 8,
            swaps: 1000,
            packets: 1_000_000,
            flows: 20_000,
            batch: 4096,
        }
    }
}

impl LiveConfig {
    /// A configuration for tests: seconds in a debug build.
    pub fn small() -> LiveConfig {
        LiveConfig {
            services: 16,
            backends: 4,
            swaps: 200,
            packets: 40_000,
            flows: 2_000,
            batch: 1024,
        }
    }
}

/// Service `i`'s address: `172.16.x.y:80/tcp`.
pub fn service_addr(i: u32) -> ServiceAddr {
    ServiceAddr {
        vip: IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + i)),
        port: 80,
        protocol: IPPROTO_TCP,
    }
}

fn backend(i: u32, host: u32) -> BackendSpec {
    BackendSpec::new(
        Ipv4Addr::new(10, (i >> 8) as u8, (i & 0xff) as u8, host as u8),
        8080,
    )
}

/// Service `i`'s backends as installed (set A).
pub fn backend_set(i: u32, cfg: &LiveConfig) -> Vec<BackendSpec> {
    (1..=cfg.backends).map(|h| backend(i, h)).collect()
}

/// The backend the control plane adds to and removes from service `i` in turn.
pub fn extra_backend(i: u32) -> BackendSpec {
    backend(i, 200)
}

/// What the control plane reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SwapReport {
    /// Backend changes made.
    pub changes: u32,
    /// Inner maps swapped into the outer map (installs included).
    pub table_swaps: u64,
    /// Time per change (new table, new inner array, fill, swap, close), µs: median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Worst.
    pub max_us: f64,
    /// Seconds to install the services.
    pub install_s: f64,
    /// When the changes started and ended (Unix ms), to line them up with the traffic.
    pub changes_from_ms: u64,
    /// See `changes_from_ms`.
    pub changes_to_ms: u64,
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The control plane role: installs the services on the maps pinned under `map_dir`,
/// calls `ready`, then makes `cfg.swaps` backend changes.
pub fn control_plane(
    client: Client,
    map_dir: &str,
    cfg: &LiveConfig,
    ready: impl FnOnce(),
) -> Result<SwapReport, ControlError> {
    let ops = DaemonOps::new(client);
    let maps = ops.open_pinned(map_dir)?;
    let mut lb = LoadBalancer::new(ops, maps, LbConfig::default())?;
    let t = Instant::now();
    let specs = (0..cfg.services)
        .map(|i| (service_addr(i), backend_set(i, cfg)))
        .collect();
    let ids = lb.add_services(specs, 1, &mut |_| {})?;
    let install_s = t.elapsed().as_secs_f64();
    ready();
    let changes_from_ms = unix_ms();
    let mut with_extra = vec![false; ids.len()];
    let mut times = Vec::with_capacity(cfg.swaps as usize);
    for k in 0..cfg.swaps {
        let i = (k % cfg.services) as usize;
        let extra = extra_backend(i as u32);
        let t = Instant::now();
        if with_extra[i] {
            lb.remove_backend(ids[i], extra.addr, extra.port)?;
        } else {
            lb.add_backend(ids[i], extra)?;
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
        with_extra[i] = !with_extra[i];
    }
    let changes_to_ms = unix_ms();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(SwapReport {
        changes: cfg.swaps,
        table_swaps: lb.swaps(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        max_us: pct(1.0),
        install_s,
        changes_from_ms,
        changes_to_ms,
    })
}

/// What the datapath driver reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficReport {
    /// Packets run.
    pub packets: u64,
    /// `XDP_TX` to a backend of the packet's service.
    pub forwarded: u64,
    /// `XDP_TX` to anything else: must be 0.
    pub misrouted: u64,
    /// `XDP_DROP` (a flow that met a backend in the instant of its removal).
    pub dropped: u64,
    /// `XDP_PASS` (not for a service): must be 0, every packet is for one.
    pub passed: u64,
    /// Wall time of the traffic.
    pub elapsed_s: f64,
    /// Packets per second, round trips to the daemon included.
    pub pps: f64,
    /// When the traffic started and ended (Unix ms).
    pub from_ms: u64,
    /// See `from_ms`.
    pub to_ms: u64,
}

/// Flow `f`: a client of service `f % services`.
fn flow(f: u32, cfg: &LiveConfig) -> Flow {
    let svc = service_addr(f % cfg.services);
    let IpAddr::V4(vip) = svc.vip else {
        unreachable!("IPv4 services")
    };
    Flow {
        saddr: Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + f / 64).octets(),
        daddr: vip.octets(),
        sport: 10_000 + (f % 64) as u16 * 7,
        dport: svc.port,
        protocol: IPPROTO_TCP,
    }
}

/// The datapath driver role: `cfg.packets` packets over `cfg.flows` flows through program
/// `prog_id` in the daemon, every result checked. Runs while `also` (e.g. the control
/// plane's changes) goes on; reports what came back.
pub fn drive_traffic(
    client: &mut Client,
    prog_id: u32,
    cfg: &LiveConfig,
    mut progress: impl FnMut(u64),
) -> Result<TrafficReport, ClientError> {
    let frames: Vec<Vec<u8>> = (0..cfg.flows)
        .map(|f| flow(f, cfg).frame(b"kbpf maglev live"))
        .collect();
    let allowed: Vec<HashSet<([u8; 4], u16)>> = (0..cfg.services)
        .map(|i| {
            backend_set(i, cfg)
                .into_iter()
                .chain([extra_backend(i)])
                .filter_map(|b| match b.addr {
                    IpAddr::V4(a) => Some((a.octets(), b.port)),
                    IpAddr::V6(_) => None,
                })
                .collect()
        })
        .collect();
    let mut r = TrafficReport {
        from_ms: unix_ms(),
        ..TrafficReport::default()
    };
    let t = Instant::now();
    let mut next_flow = 0u32;
    while r.packets < cfg.packets {
        let n = (cfg.batch as u64).min(cfg.packets - r.packets) as u32;
        let idx: Vec<u32> = (0..n).map(|k| (next_flow + k) % cfg.flows).collect();
        next_flow = (next_flow + n) % cfg.flows;
        let batch: Vec<Vec<u8>> = idx.iter().map(|&f| frames[f as usize].clone()).collect();
        let (retvals, outs) = client.prog_run_packets(prog_id, &batch, true)?;
        for ((f, rv), out) in idx.iter().zip(&retvals).zip(&outs) {
            match *rv {
                XDP_TX => {
                    // Ethernet (14) + IPv4 daddr at 16, TCP dport at 20 + 2.
                    let dst = out.get(30..34).and_then(|d| <[u8; 4]>::try_from(d).ok());
                    let port = out.get(36..38).map(|p| u16::from_be_bytes([p[0], p[1]]));
                    match (dst, port) {
                        (Some(d), Some(p))
                            if allowed[(f % cfg.services) as usize].contains(&(d, p)) =>
                        {
                            r.forwarded += 1
                        }
                        _ => r.misrouted += 1,
                    }
                }
                XDP_DROP => r.dropped += 1,
                XDP_PASS => r.passed += 1,
                _ => r.misrouted += 1,
            }
        }
        r.packets += retvals.len() as u64;
        progress(r.packets);
    }
    r.elapsed_s = t.elapsed().as_secs_f64();
    r.to_ms = unix_ms();
    r.pps = r.packets as f64 / r.elapsed_s.max(1e-9);
    Ok(r)
}

//! The demo engine behind `kbpf maglev demo`: 10,000 services with a skewed, seeded
//! backend-count distribution, all tables built and loaded through the control plane,
//! a million synthetic packets through a [`Datapath`], backends removed and added under
//! traffic, and a [`DemoReport`] of memory, balance, disruption, stickiness, build time
//! and packet rate.
//!
//! # The default population ([`DemoConfig::default`])
//! Backend counts follow a truncated discrete power law `P(N = n) ∝ n^-1.6`,
//! `1 ≤ n ≤ 5000`, sampled with splitmix64 from seed 7 (maglev.md §5: α = 1.6 gives a
//! mean near the Alibaba 2022 trace's 28 instances per microservice). For 10,000
//! services: mean ≈ 32 backends, median 2, a few dozen services above 1,000 and a
//! maximum near 5,000, about 320,000 backends in all. VIPs are `172.16.0.0 + i`, TCP
//! port 80; backend `k` (over all services) is `10.0.0.0 + k`, port 8080.
//!
//! # Traffic
//! `flows` client flows (`100.64.0.0 + f`, TCP SYNs): a share `focus_share` go to the
//! *focus* service (the one whose backend count is closest to `focus_backends`, so
//! per-backend packet shares can be measured), the others to services drawn uniformly.
//! Packets are sent round-robin over the flows (so after the first round every packet
//! is a conntrack hit). After 60% of the packets, one backend is removed from the focus
//! service and from `changes` other services, and one is added to `changes` more; the
//! remaining 40% measure stickiness.
//!
//! # What is checked while it runs (counted in the report, all 0 on a correct datapath)
//! `misrouted`: packets whose rewritten destination is not a live backend of their
//! service; `first_packet_mismatches`: flows whose first packet went elsewhere than the
//! Rust table says; `reselect_mismatches`: flows whose backend was removed and that did
//! not move to the new table's choice.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use serde::Serialize;

use crate::abi::XDP_TX;
use crate::control::{
    BackendSpec, LbConfig, LoadBalancer, MapOps, Progress, ServiceAddr, ServiceId,
};
use crate::hash::flow_hash_v4;
use crate::layout::{PackedTable, cilium_blob_memory, packed_memory, u32_per_element_memory};
use crate::packet::{Flow, IPPROTO_TCP};
use crate::table::{Backend, build};
use crate::{ALLOWED_TABLE_SIZES, HashSeed};

/// Errors of a [`Datapath`] (any error type of the implementation).
pub type DatapathError = Box<dyn std::error::Error + Send + Sync>;

/// Something that runs the XDP program `maglev_xdp` of `maglev.bpf.o` on a frame,
/// over the maps the [`LoadBalancer`] drives.
pub trait Datapath {
    /// A short name for reports (`"kernel"`, `"kbpf-interp"`, …).
    fn name(&self) -> &str;
    /// Runs the program on `frame` (Ethernet first) and leaves the frame as the program
    /// left it (rewritten for `XDP_TX`); returns the XDP action.
    fn run(&mut self, frame: &mut Vec<u8>) -> Result<u32, DatapathError>;
    /// Runs every frame in order, `actions[i]` for `frames[i]`. The default calls
    /// [`run`](Self::run) per frame.
    fn run_batch(
        &mut self,
        frames: &mut [Vec<u8>],
        actions: &mut [u32],
    ) -> Result<(), DatapathError> {
        for (f, a) in frames.iter_mut().zip(actions.iter_mut()) {
            *a = self.run(f)?;
        }
        Ok(())
    }
    /// Total time spent inside the program so far, in ns, if the datapath measures it
    /// (the kernel reports each test run's duration); `None` otherwise.
    fn program_ns(&self) -> Option<u64> {
        None
    }
}

/// The kernel datapath: one `BPF_PROG_TEST_RUN` (repeat 1) per packet.
#[cfg(feature = "kernel")]
pub struct KernelDatapath<'a> {
    prog: &'a kbpf_kernel::KernelProg,
    program_ns: u64,
}

#[cfg(feature = "kernel")]
impl<'a> KernelDatapath<'a> {
    /// Runs `prog` (the `maglev_xdp` of a [`crate::control::kernel::KernelLoad`]).
    pub fn new(prog: &'a kbpf_kernel::KernelProg) -> KernelDatapath<'a> {
        KernelDatapath {
            prog,
            program_ns: 0,
        }
    }
}

#[cfg(feature = "kernel")]
impl Datapath for KernelDatapath<'_> {
    fn name(&self) -> &str {
        "kernel"
    }

    fn run(&mut self, frame: &mut Vec<u8>) -> Result<u32, DatapathError> {
        // Repeat 1: a repeated XDP test run re-runs on the already rewritten frame.
        let r = self.prog.test_run(frame, frame.len() + 256, None, 1)?;
        self.program_ns += u64::from(r.duration_ns);
        *frame = r.data_out;
        Ok(r.retval)
    }

    fn program_ns(&self) -> Option<u64> {
        Some(self.program_ns)
    }
}

/// What the demo does; [`Default`] is the embedded configuration of `kbpf maglev demo`.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Number of services.
    pub services: usize,
    /// Power-law exponent of the backend counts.
    pub alpha: f64,
    /// Largest backend count.
    pub max_backends: usize,
    /// Seed of the population and of the traffic.
    pub seed: u64,
    /// Packets to replay.
    pub packets: u64,
    /// Distinct client flows.
    pub flows: usize,
    /// The focus service is the one whose backend count is closest to this.
    pub focus_backends: usize,
    /// Share of the flows that go to the focus service.
    pub focus_share: f64,
    /// Services that lose a backend (and as many that gain one) under traffic, besides
    /// the focus service.
    pub changes: usize,
    /// Threads for table building.
    pub threads: usize,
    /// Runs of the N=1000, M=65,537 build benchmark (best is reported).
    pub build_bench_runs: u32,
    /// Control-plane configuration.
    pub lb: LbConfig,
}

impl Default for DemoConfig {
    fn default() -> DemoConfig {
        DemoConfig {
            services: 10_000,
            alpha: 1.6,
            max_backends: 5000,
            seed: 7,
            packets: 1_000_000,
            flows: 100_000,
            focus_backends: 100,
            focus_share: 0.2,
            changes: 100,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            build_bench_runs: 30,
            lb: LbConfig::default(),
        }
    }
}

impl DemoConfig {
    /// A small configuration for tests: 200 services, 20,000 packets.
    pub fn small() -> DemoConfig {
        DemoConfig {
            services: 200,
            max_backends: 300,
            packets: 20_000,
            flows: 4_000,
            focus_backends: 20,
            changes: 10,
            build_bench_runs: 3,
            ..DemoConfig::default()
        }
    }
}

/// One point of the disruption-by-table-size curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DisruptionPoint {
    /// Table size M.
    pub table_size: u32,
    /// % of slots whose backend changed when one of `backends` was removed.
    pub changed_pct: f64,
    /// The ideal: 100 / backends.
    pub ideal_pct: f64,
}

/// The demo's results. Serialises to one JSON object (`--json`); `Display` is the text
/// report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DemoReport {
    /// The datapath's name.
    pub datapath: String,
    /// Services loaded.
    pub services: usize,
    /// Backends over all services.
    pub backends: usize,
    /// Mean backends per service.
    pub mean_backends: f64,
    /// Median backends per service.
    pub median_backends: usize,
    /// Largest service.
    pub max_backends: usize,
    /// Packets replayed.
    pub packets: u64,
    /// Distinct flows.
    pub flows: usize,
    /// Kernel memory of the per-service inner arrays (packed layout, policy sizes).
    pub memory_bytes_dynamic: u64,
    /// One flat 65,537-slot table per service, a `u32` id per element (Katran's ring).
    pub memory_bytes_flat_65537: u64,
    /// One global size 16,381 per service, Cilium's one-element blob.
    pub memory_bytes_global_16381: u64,
    /// One global size 16,381, this crate's packed layout.
    pub memory_bytes_global_16381_packed: u64,
    /// `flat / dynamic`.
    pub memory_ratio_flat: f64,
    /// `global / dynamic`.
    pub memory_ratio_global: f64,
    /// Inner maps whose backend-reported `memlock` equalled the layout's figure.
    pub memlock_checked_maps: u64,
    /// Worst max/mean table entries per backend over all services with ≥ 2 backends.
    pub max_over_mean_entries: f64,
    /// Max/mean table entries per backend of the focus service.
    pub max_over_mean_entries_focus: f64,
    /// Max/mean packets per backend of the focus service (first 60% of the traffic).
    pub max_over_mean_packets_focus: f64,
    /// Backends of the focus service.
    pub focus_backends: usize,
    /// Table size of the focus service.
    pub focus_table_size: u32,
    /// Packets per backend of the focus service (for the load plot).
    pub focus_packets_per_backend: Vec<u64>,
    /// Table entries per backend of the focus service.
    pub focus_entries_per_backend: Vec<u32>,
    /// % of the focus service's flows whose Maglev choice changed when one of its
    /// backends was removed (what a fleet without conntrack would see).
    pub disruption_pct: f64,
    /// The ideal for that removal: 100 / N.
    pub disruption_ideal_pct: f64,
    /// Same over the flows of every service that lost a backend.
    pub disruption_all_pct: f64,
    /// Its ideal (flow-weighted mean of 100 / N).
    pub disruption_all_ideal_pct: f64,
    /// % of established flows whose backend stayed live that kept it after the changes.
    pub sticky_pct: f64,
    /// % of flows on a removed backend that moved to the new table's choice.
    pub reselected_pct: f64,
    /// Packets sent to something else than a live backend of their service.
    pub misrouted: u64,
    /// Flows whose first packet disagreed with the Rust table.
    pub first_packet_mismatches: u64,
    /// Flows of removed backends that did not move to the new table's choice.
    pub reselect_mismatches: u64,
    /// Packets that did not come back `XDP_TX`.
    pub not_tx: u64,
    /// Best build time of N=1000, M=65,537 (ms).
    pub build_ms_n1000_m65537: f64,
    /// Time to build and load every table (s).
    pub build_load_s: f64,
    /// Inner-map swaps under traffic.
    pub swaps_under_traffic: u64,
    /// Packets per second through [`Datapath::run`], in millions (calls only).
    pub mpps: f64,
    /// Packets per second of program time, if the datapath measures it.
    pub mpps_in_program: Option<f64>,
    /// Disruption by table size (N = the focus service's count, one removal).
    pub disruption_by_table_size: Vec<DisruptionPoint>,
    /// Whole demo (s).
    pub total_s: f64,
}

impl DemoReport {
    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("DemoReport serialises")
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Maglev demo on the {} datapath", self.datapath)?;
        writeln!(
            f,
            "  services {}  backends {} (mean {:.1}, median {}, max {})",
            self.services,
            self.backends,
            self.mean_backends,
            self.median_backends,
            self.max_backends
        )?;
        writeln!(f, "memory (kernel array-map accounting)")?;
        writeln!(
            f,
            "  per-service tables (BPF_F_INNER_MAP) {:>10.1} MiB",
            mib(self.memory_bytes_dynamic)
        )?;
        writeln!(
            f,
            "  flat 65,537 slots per service        {:>10.1} MiB  ({:.1}x more)",
            mib(self.memory_bytes_flat_65537),
            self.memory_ratio_flat
        )?;
        writeln!(
            f,
            "  global 16,381 (Cilium blob)          {:>10.1} MiB  ({:.1}x more)",
            mib(self.memory_bytes_global_16381),
            self.memory_ratio_global
        )?;
        writeln!(f, "balance")?;
        writeln!(
            f,
            "  max/mean table entries: worst service {:.4}, focus service (N={}, M={}) {:.4}",
            self.max_over_mean_entries,
            self.focus_backends,
            self.focus_table_size,
            self.max_over_mean_entries_focus
        )?;
        writeln!(
            f,
            "  max/mean observed packets per backend (focus) {:.3}",
            self.max_over_mean_packets_focus
        )?;
        writeln!(
            f,
            "changes under traffic ({} swaps)",
            self.swaps_under_traffic
        )?;
        writeln!(
            f,
            "  disruption: focus {:.2}% of flows moved (ideal {:.2}%), all changed services {:.2}% (ideal {:.2}%)",
            self.disruption_pct,
            self.disruption_ideal_pct,
            self.disruption_all_pct,
            self.disruption_all_ideal_pct
        )?;
        writeln!(
            f,
            "  conntrack: {:.2}% of established flows kept their backend; {:.2}% of flows on removed backends re-selected",
            self.sticky_pct, self.reselected_pct
        )?;
        writeln!(
            f,
            "  checks: misrouted {}, first-packet mismatches {}, re-select mismatches {}, not XDP_TX {}",
            self.misrouted, self.first_packet_mismatches, self.reselect_mismatches, self.not_tx
        )?;
        writeln!(f, "speed")?;
        writeln!(
            f,
            "  table build N=1000, M=65,537: {:.3} ms (best of runs)",
            self.build_ms_n1000_m65537
        )?;
        writeln!(
            f,
            "  build + load of all tables:   {:.2} s",
            self.build_load_s
        )?;
        write!(
            f,
            "  {} packets: {:.3} Mpps through the datapath calls",
            self.packets, self.mpps
        )?;
        if let Some(p) = self.mpps_in_program {
            write!(f, ", {p:.2} Mpps of program time")?;
        }
        writeln!(f)?;
        write!(f, "  total {:.1} s", self.total_s)
    }
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The control plane failed.
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// The datapath failed.
    #[error("datapath: {0}")]
    Datapath(DatapathError),
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Backend counts of `count` services, `P(N = n) ∝ n^-alpha` on `1..=max` (the
/// distribution of `examples/memory.rs`).
pub fn backend_counts(alpha: f64, max: usize, count: usize, seed: u64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=max).map(|n| (n as f64).powf(-alpha)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(max);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut state = seed;
    (0..count)
        .map(|_| {
            let u = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|&c| c < u).min(max - 1) + 1
        })
        .collect()
}

fn v4_of(base: u32, k: u32) -> Ipv4Addr {
    Ipv4Addr::from(base.wrapping_add(k))
}

/// Entries per backend of a packed table, max/mean (1.0 for fewer than 2 backends).
fn entries_per_backend(p: &PackedTable) -> Vec<u32> {
    let Ok((h, _, slots)) = PackedTable::unpack(p.elements()) else {
        return Vec::new();
    };
    let mut c = vec![0u32; usize::from(h.backend_count)];
    for s in slots {
        c[usize::from(s)] += 1;
    }
    c
}

fn max_over_mean(c: &[u64]) -> f64 {
    if c.is_empty() {
        return 1.0;
    }
    let mean = c.iter().sum::<u64>() as f64 / c.len() as f64;
    if mean == 0.0 {
        return 1.0;
    }
    *c.iter().max().expect("non-empty") as f64 / mean
}

/// Best time of `runs` builds of an unweighted N=1000, M=65,537 table (ms).
pub fn bench_build_n1000(runs: u32, seed: HashSeed) -> f64 {
    let backends: Vec<Backend> = (0..1000)
        .map(|i| Backend::unweighted(format!("10.{}.{}.1:80", i / 256, i % 256)))
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let table = build(&backends, 65_537, seed).expect("build");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        std::hint::black_box(&table);
        best = best.min(ms);
    }
    best
}

/// % of slots that change when one of `n` backends is removed, for each allowed size
/// ≥ `n` (the disruption-by-table-size curve).
pub fn disruption_by_table_size(n: usize, seed: HashSeed) -> Vec<DisruptionPoint> {
    let n = n.max(2);
    let all: Vec<Backend> = (0..n)
        .map(|i| Backend::unweighted(format!("b{i}")))
        .collect();
    let mut fewer = all.clone();
    // Remove the middle one; indices of the others shift by one past it.
    let gone = n / 2;
    fewer.remove(gone);
    ALLOWED_TABLE_SIZES
        .iter()
        .filter(|&&m| m as usize >= n)
        .map(|&m| {
            let a = build(&all, m, seed).expect("build");
            let b = build(&fewer, m, seed).expect("build");
            let changed = a
                .entries()
                .iter()
                .zip(b.entries())
                .filter(|&(&x, &y)| {
                    let y = if y as usize >= gone { y + 1 } else { y };
                    x != y
                })
                .count();
            DisruptionPoint {
                table_size: m,
                changed_pct: 100.0 * changed as f64 / f64::from(m),
                ideal_pct: 100.0 / n as f64,
            }
        })
        .collect()
}

struct FlowState {
    flow: Flow,
    service: ServiceId,
    hash: u32,
    /// Backend id of the last packet (u32::MAX before the first).
    backend: u32,
}

/// Runs the demo: loads the population through `lb` (whose maps `dp` runs over),
/// replays the traffic through `dp`, changes backends under traffic and reports.
/// `progress` receives phases `"build tables"`, `"load tables"` and `"replay packets"`.
/// The load balancer must start empty; its services are left in place.
pub fn run_demo<O: MapOps>(
    cfg: &DemoConfig,
    lb: &mut LoadBalancer<O>,
    dp: &mut dyn Datapath,
    progress: &mut dyn FnMut(Progress),
) -> Result<DemoReport, DemoError> {
    let t_total = Instant::now();
    let counts = backend_counts(cfg.alpha, cfg.max_backends, cfg.services, cfg.seed);
    let vip_base = u32::from(Ipv4Addr::new(172, 16, 0, 0));
    let be_base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let mut next_backend = 1u32;
    let mut specs = Vec::with_capacity(counts.len());
    for (i, &n) in counts.iter().enumerate() {
        let addr = ServiceAddr {
            vip: IpAddr::V4(v4_of(vip_base, i as u32)),
            port: 80,
            protocol: IPPROTO_TCP,
        };
        let bs: Vec<BackendSpec> = (0..n)
            .map(|_| {
                next_backend += 1;
                BackendSpec::new(v4_of(be_base, next_backend - 1), 8080)
            })
            .collect();
        specs.push((addr, bs));
    }
    let total_backends: usize = counts.iter().sum();

    // Build and load every table.
    let t_build = Instant::now();
    let ids = lb.add_services(specs, cfg.threads, progress)?;
    let build_load_s = t_build.elapsed().as_secs_f64();

    // Memory.
    let memory_dynamic = lb.memory_bytes();
    let s = counts.len() as u64;
    let memory_flat = s * u32_per_element_memory(65_537);
    let memory_global = s * cilium_blob_memory(16_381);
    let memory_global_packed: u64 = counts
        .iter()
        .map(|&n| packed_memory(n.min(16_381), 16_381))
        .sum();

    // Balance over every service.
    let mut worst_entries = 1.0f64;
    for svc in lb.services() {
        if svc.backends.len() >= 2 {
            let c: Vec<u64> = entries_per_backend(&svc.packed)
                .into_iter()
                .map(u64::from)
                .collect();
            worst_entries = worst_entries.max(max_over_mean(&c));
        }
    }

    // The focus service.
    let focus_index = counts
        .iter()
        .enumerate()
        .min_by_key(|&(i, &n)| (n.abs_diff(cfg.focus_backends), i))
        .map_or(0, |(i, _)| i);
    let focus = ids[focus_index];
    let focus_svc = lb.service(focus).expect("focus service").clone();
    let focus_entries = entries_per_backend(&focus_svc.packed);

    // Flows.
    let client_base = u32::from(Ipv4Addr::new(100, 64, 0, 0));
    let mut rng = cfg.seed ^ 0xf10f_5eed;
    let mut flows: Vec<FlowState> = (0..cfg.flows)
        .map(|f| {
            let u = (splitmix(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
            let si = if u < cfg.focus_share {
                focus_index
            } else {
                (splitmix(&mut rng) % ids.len() as u64) as usize
            };
            let sport = 1024 + (splitmix(&mut rng) % 60_000) as u16;
            let flow = Flow {
                saddr: v4_of(client_base, f as u32).octets(),
                daddr: v4_of(vip_base, si as u32).octets(),
                sport,
                dport: 80,
                protocol: IPPROTO_TCP,
            };
            FlowState {
                hash: flow_hash_v4(
                    flow.saddr,
                    flow.sport,
                    flow.dport,
                    flow.protocol,
                    lb.config().flow_seed,
                ),
                flow,
                service: ids[si],
                backend: u32::MAX,
            }
        })
        .collect();
    let frames: Vec<Vec<u8>> = flows.iter().map(|f| f.flow.frame(&[])).collect();

    // backend address → (service, backend id) of every backend ever configured.
    let mut owner: HashMap<[u8; 4], (ServiceId, u32)> =
        HashMap::with_capacity(total_backends + 2 * cfg.changes);
    let index_backends =
        |lb: &LoadBalancer<O>, owner: &mut HashMap<[u8; 4], (ServiceId, u32)>, sid: ServiceId| {
            if let Some(svc) = lb.service(sid) {
                for b in &svc.backends {
                    if let IpAddr::V4(a) = b.spec.addr {
                        owner.insert(a.octets(), (sid, b.id));
                    }
                }
            }
        };
    for svc in lb.services() {
        for b in &svc.backends {
            if let IpAddr::V4(a) = b.spec.addr {
                owner.insert(a.octets(), (svc.id, b.id));
            }
        }
    }

    let mut misrouted = 0u64;
    let mut not_tx = 0u64;
    let mut first_mismatch = 0u64;
    let mut focus_packets: HashMap<u32, u64> = HashMap::new();
    let mut run_ns = 0u128;
    let program_ns_start = dp.program_ns();
    let phase_a = cfg.packets * 6 / 10;
    let total_packets = cfg.packets;
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(256);
    let progress_step = (total_packets / 100).max(1);

    // One packet of flow `fi`; returns the backend id it went to (u32::MAX if none).
    macro_rules! send {
        ($fi:expr) => {{
            let fi = $fi;
            buf.clear();
            buf.extend_from_slice(&frames[fi]);
            let t = Instant::now();
            let action = dp.run(&mut buf).map_err(DemoError::Datapath)?;
            run_ns += t.elapsed().as_nanos();
            sent += 1;
            if sent % progress_step == 0 {
                progress(Progress {
                    phase: "replay packets",
                    done: sent,
                    total: total_packets,
                });
            }
            let fs = &flows[fi];
            if action != XDP_TX || buf.len() < 38 {
                not_tx += 1;
                misrouted += 1;
                u32::MAX
            } else {
                let daddr = [buf[30], buf[31], buf[32], buf[33]];
                match owner.get(&daddr) {
                    Some(&(sid, bid))
                        if sid == fs.service
                            && lb
                                .service(sid)
                                .is_some_and(|s| s.backends.iter().any(|b| b.id == bid)) =>
                    {
                        bid
                    }
                    _ => {
                        misrouted += 1;
                        u32::MAX
                    }
                }
            }
        }};
    }

    // Phase A: warm-up and balance.
    let nflows = flows.len().max(1);
    for k in 0..phase_a {
        let fi = (k as usize) % nflows;
        let bid = send!(fi);
        let fs = &mut flows[fi];
        if fs.backend == u32::MAX {
            let want = lb
                .service(fs.service)
                .and_then(|s| s.pick(fs.hash))
                .map(|b| b.id);
            if want != Some(bid) {
                first_mismatch += 1;
            }
        }
        fs.backend = bid;
        if fs.service == focus {
            *focus_packets.entry(bid).or_default() += 1;
        }
    }

    // Changes under traffic: remove one backend from the focus service and from
    // `changes` others, add one to `changes` more.
    let swaps_before = lb.swaps();
    let mut removed: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut old_tables: HashMap<ServiceId, PackedTable> = HashMap::new();
    let mut victims = vec![focus];
    let mut growers = Vec::new();
    let mut pick_rng = cfg.seed ^ 0x0c4a_96e5;
    let mut guard = 0;
    while (victims.len() < cfg.changes + 1 || growers.len() < cfg.changes)
        && guard < 100 * ids.len()
    {
        guard += 1;
        let sid = ids[(splitmix(&mut pick_rng) % ids.len() as u64) as usize];
        if victims.contains(&sid) || growers.contains(&sid) {
            continue;
        }
        let n = lb.service(sid).map_or(0, |s| s.backends.len());
        if victims.len() < cfg.changes + 1 && n >= 2 {
            victims.push(sid);
        } else if growers.len() < cfg.changes {
            growers.push(sid);
        }
    }
    for &sid in &victims {
        let svc = lb.service(sid).expect("service");
        old_tables.insert(sid, svc.packed.clone());
        let b = &svc.backends[(splitmix(&mut pick_rng) % svc.backends.len() as u64) as usize];
        let (addr, port, bid) = (b.spec.addr, b.spec.port, b.id);
        lb.remove_backend(sid, addr, port)?;
        removed.insert(bid);
    }
    for &sid in &growers {
        next_backend += 1;
        let spec = BackendSpec::new(v4_of(be_base, next_backend - 1), 8080);
        lb.add_backend(sid, spec)?;
        index_backends(lb, &mut owner, sid);
    }
    let swaps_under_traffic = lb.swaps() - swaps_before;

    // Disruption, from the tables (what a fleet without conntrack would see).
    let (mut focus_moved, mut focus_n) = (0u64, 0u64);
    let (mut all_moved, mut all_n, mut all_ideal) = (0u64, 0u64, 0.0f64);
    for fs in &flows {
        if let Some(old) = old_tables.get(&fs.service) {
            let new = &lb.service(fs.service).expect("service").packed;
            let moved = old.backend_for_hash(fs.hash) != new.backend_for_hash(fs.hash);
            all_n += 1;
            all_moved += u64::from(moved);
            all_ideal += 100.0 / f64::from(old.header().backend_count.max(1));
            if fs.service == focus {
                focus_n += 1;
                focus_moved += u64::from(moved);
            }
        }
    }

    // Phase B: stickiness and re-selection.
    let established: Vec<u32> = flows.iter().map(|f| f.backend).collect();
    let mut seen_b = vec![false; flows.len()];
    let (mut kept, mut keep_n, mut reselected, mut reselect_n, mut reselect_mismatch) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for k in phase_a..total_packets {
        let fi = (k as usize) % nflows;
        let bid = send!(fi);
        if !seen_b[fi] {
            seen_b[fi] = true;
            let before = established[fi];
            if before == u32::MAX {
                // First seen in phase B: no established backend.
            } else if removed.contains(&before) {
                reselect_n += 1;
                let want = lb
                    .service(flows[fi].service)
                    .and_then(|s| s.pick(flows[fi].hash))
                    .map(|b| b.id);
                if want == Some(bid) {
                    reselected += 1;
                } else {
                    reselect_mismatch += 1;
                }
            } else {
                keep_n += 1;
                kept += u64::from(bid == before);
            }
        }
        flows[fi].backend = bid;
    }
    progress(Progress {
        phase: "replay packets",
        done: sent,
        total: total_packets,
    });

    let mpps = if run_ns == 0 {
        0.0
    } else {
        sent as f64 / (run_ns as f64 / 1e9) / 1e6
    };
    let mpps_in_program = match (program_ns_start, dp.program_ns()) {
        (Some(a), Some(b)) if b > a => Some(sent as f64 / ((b - a) as f64 / 1e9) / 1e6),
        _ => None,
    };

    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let focus_packets_per_backend: Vec<u64> = focus_svc
        .backends
        .iter()
        .map(|b| focus_packets.get(&b.id).copied().unwrap_or(0))
        .collect();
    let pct = |a: u64, n: u64| {
        if n == 0 {
            100.0
        } else {
            100.0 * a as f64 / n as f64
        }
    };
    Ok(DemoReport {
        datapath: dp.name().to_string(),
        services: counts.len(),
        backends: total_backends,
        mean_backends: total_backends as f64 / counts.len().max(1) as f64,
        median_backends: sorted.get(sorted.len() / 2).copied().unwrap_or(0),
        max_backends: sorted.last().copied().unwrap_or(0),
        packets: sent,
        flows: flows.len(),
        memory_bytes_dynamic: memory_dynamic,
        memory_bytes_flat_65537: memory_flat,
        memory_bytes_global_16381: memory_global,
        memory_bytes_global_16381_packed: memory_global_packed,
        memory_ratio_flat: memory_flat as f64 / memory_dynamic.max(1) as f64,
        memory_ratio_global: memory_global as f64 / memory_dynamic.max(1) as f64,
        memlock_checked_maps: lb.memlock_checked(),
        max_over_mean_entries: worst_entries,
        max_over_mean_entries_focus: max_over_mean(
            &focus_entries
                .iter()
                .map(|&c| u64::from(c))
                .collect::<Vec<_>>(),
        ),
        max_over_mean_packets_focus: max_over_mean(&focus_packets_per_backend),
        focus_backends: focus_svc.backends.len(),
        focus_table_size: focus_svc.packed.header().table_size,
        focus_packets_per_backend,
        focus_entries_per_backend: focus_entries,
        disruption_pct: pct(focus_moved, focus_n),
        disruption_ideal_pct: 100.0 / focus_svc.backends.len().max(1) as f64,
        disruption_all_pct: pct(all_moved, all_n),
        disruption_all_ideal_pct: if all_n == 0 {
            0.0
        } else {
            all_ideal / all_n as f64
        },
        sticky_pct: pct(kept, keep_n),
        reselected_pct: pct(reselected, reselect_n),
        misrouted,
        first_packet_mismatches: first_mismatch,
        reselect_mismatches: reselect_mismatch,
        not_tx,
        build_ms_n1000_m65537: bench_build_n1000(cfg.build_bench_runs, lb.config().seed),
        build_load_s,
        swaps_under_traffic,
        mpps,
        mpps_in_program,
        disruption_by_table_size: disruption_by_table_size(
            focus_svc.backends.len(),
            lb.config().seed,
        ),
        total_s: t_total.elapsed().as_secs_f64(),
    })
}

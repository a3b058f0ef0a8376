//! The control plane: a [`LoadBalancer`] that owns services and their backends and keeps
//! the maps of a loaded `maglev.bpf.o` in step with them.
//!
//! On every change to a service it builds the service's new Maglev table
//! ([`crate::build_service`]: [`SizePolicy`] size, packed layout), creates a **new**
//! inner array of exactly `packed.max_entries()` elements (`BPF_F_INNER_MAP`, value
//! [`INNER_VALUE_SIZE`], as the object's `maglev_inner` template), fills it, and swaps it
//! into the outer `HASH_OF_MAPS` with **one** update: a reader sees the old table or the
//! new one, never a mix, and the header (M) travels with its table. The control plane
//! then closes its handle on the new map (the outer map holds it) and drops nothing else:
//! the old inner map loses its last reference with the swap and is freed after readers
//! are done (the kernel: after an RCU grace period; kbpf-maps: after the epoch).
//!
//! Maps are driven through [`MapOps`], implemented for kbpf's maps in this process
//! ([`KbpfOps`], handles `kbpf_maps::Map`), for the maps a kbpf daemon owns
//! ([`DaemonOps`], handles map ids: the control plane in another process than the
//! datapath) and, with the default `kernel` feature, for the live kernel
//! ([`kernel::KernelOps`], handles `kbpf_kernel::KernelMap`). The handles are the maps of
//! a loaded object, found by name ([`DatapathMaps::from_named`]).
//!
//! # What the datapath reads, and so what is written
//! - `maglev_config[0]`: the flow-hash seed ([`LbConfig::flow_seed`]), written once.
//! - `maglev_backends[id]` / `maglev_backends6[id]`: one id per (service, backend),
//!   written **before** the id can appear in a table; zeroed after a removal swap.
//! - `maglev_services[svc]` / `maglev_services6[svc]`: the service's inner array.
//!
//! # Draining, removal and conntrack (as `maglev.bpf.c` behaves)
//! - **drain** (or weight 0): the backend leaves the table, so new flows never pick it,
//!   but its `maglev_backends` entry stays: conntrack entries naming it keep it until
//!   they are evicted (LRU) or the backend is removed.
//! - **remove**: first the table without it is swapped in, then its `maglev_backends`
//!   entry is zeroed: the datapath then treats a conntrack hit on it as gone and
//!   re-selects through the (new) table. The id is released to a FIFO free list and
//!   reused only when the id space is exhausted, so a stale conntrack entry of a removed
//!   backend is very unlikely to meet a new owner of its id ([`LoadBalancer::purge_conntrack`]
//!   removes such entries for certain).
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::abi::{BackendValue, BackendValue6, Config, ServiceKey, ServiceKey6};
use crate::layout::{INNER_VALUE_SIZE, PackedTable};
use crate::table::Backend;
use crate::{HashSeed, ServiceError, SizePolicy, build_service};

mod daemon;
mod kbpf;
#[cfg(feature = "kernel")]
pub mod kernel;
pub mod lines;

pub use daemon::DaemonOps;
pub use kbpf::KbpfOps;

/// Why a control-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A map operation failed (the backend's message names map, operation and errno).
    #[error("{op} on {map}: {msg}")]
    Map {
        /// The operation (`create`, `update`, …).
        op: &'static str,
        /// Which map.
        map: String,
        /// The backend's error text.
        msg: String,
    },
    /// The loaded object has no map of that name.
    #[error("the loaded object has no map named {0:?}")]
    MissingMap(&'static str),
    /// The service address is already configured.
    #[error("service {0} already exists")]
    ServiceExists(ServiceAddr),
    /// No service with that id.
    #[error("no service with id {0}")]
    NoSuchService(ServiceId),
    /// The backend is already in the service.
    #[error("backend {addr}:{port} already in service {service}")]
    BackendExists {
        /// Service id.
        service: ServiceId,
        /// Backend address.
        addr: IpAddr,
        /// Backend port.
        port: u16,
    },
    /// The backend is not in the service.
    #[error("backend {addr}:{port} not in service {service}")]
    NoSuchBackend {
        /// Service id.
        service: ServiceId,
        /// Backend address.
        addr: IpAddr,
        /// Backend port.
        port: u16,
    },
    /// IPv4 services need IPv4 backends and IPv6 services IPv6 ones (the datapath's
    /// DNAT keeps the family).
    #[error("backend {0} has another address family than its service")]
    FamilyMismatch(IpAddr),
    /// The unspecified address marks an unused backend id in the datapath.
    #[error("backend address {0} is reserved (it marks an unused id)")]
    ReservedAddress(IpAddr),
    /// All backend ids of the family's backends map are in use.
    #[error("no free backend id (the {0} backends map is full)")]
    OutOfBackendIds(&'static str),
    /// The table could not be built.
    #[error(transparent)]
    Table(#[from] ServiceError),
}

/// One operation on one map: what the control plane needs from a map backend.
///
/// Implementations take `&self` (kbpf's maps and the kernel's are internally
/// synchronised) so a datapath may run concurrently.
pub trait MapOps {
    /// A map handle (`kbpf_maps::Map`, `kbpf_kernel::KernelMap`).
    type Map;

    /// Creates an inner array for a service: `BPF_MAP_TYPE_ARRAY`, key 4, value
    /// `value_size`, `max_entries`, flags `BPF_F_INNER_MAP`.
    fn create_inner(
        &self,
        name: &str,
        value_size: u32,
        max_entries: u32,
    ) -> Result<Self::Map, ControlError>;
    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`.
    fn update(&self, map: &Self::Map, key: &[u8], value: &[u8]) -> Result<(), ControlError>;
    /// Writes `values[i]` at key `i` of an array (a batch where the backend has one).
    fn fill_array(&self, map: &Self::Map, values: &[[u8; 8]]) -> Result<(), ControlError> {
        for (i, v) in values.iter().enumerate() {
            self.update(map, &(i as u32).to_ne_bytes(), v)?;
        }
        Ok(())
    }
    /// `BPF_MAP_LOOKUP_ELEM`; `None` for ENOENT.
    fn lookup(&self, map: &Self::Map, key: &[u8]) -> Result<Option<Vec<u8>>, ControlError>;
    /// `BPF_MAP_DELETE_ELEM`; `false` for ENOENT.
    fn delete(&self, map: &Self::Map, key: &[u8]) -> Result<bool, ControlError>;
    /// Every key of a map (`BPF_MAP_GET_NEXT_KEY` walk).
    fn keys(&self, map: &Self::Map) -> Result<Vec<Vec<u8>>, ControlError>;
    /// Stores `inner` in the map-of-maps `outer` at `key` (one update: atomic for readers).
    fn set_inner(
        &self,
        outer: &Self::Map,
        key: &[u8],
        inner: &Self::Map,
    ) -> Result<(), ControlError>;
    /// [`set_inner`](Self::set_inner) for many keys (distinct services): the order
    /// between them does not matter. The default updates one after the other.
    fn set_inner_many(
        &self,
        outer: &Self::Map,
        items: &[(&[u8], &Self::Map)],
    ) -> Result<(), ControlError> {
        for (k, m) in items {
            self.set_inner(outer, k, m)?;
        }
        Ok(())
    }
    /// Releases the control plane's handle (fd) on a map.
    fn close(&self, map: Self::Map) {
        drop(map);
    }
    /// The memory the backend charges for the map (`memlock`), if it can tell.
    fn memlock(&self, map: &Self::Map) -> Option<u64>;
}

/// The maps of a loaded `maglev.bpf.o`, by their names in the object.
#[derive(Debug)]
pub struct DatapathMaps<M> {
    /// `maglev_services` (HASH_OF_MAPS, IPv4 services).
    pub services: M,
    /// `maglev_backends` (ARRAY of [`BackendValue`]).
    pub backends: M,
    /// `maglev_conntrack` (LRU_HASH).
    pub conntrack: M,
    /// `maglev_services6`.
    pub services6: M,
    /// `maglev_backends6`.
    pub backends6: M,
    /// `maglev_conntrack6`.
    pub conntrack6: M,
    /// `maglev_config`.
    pub config: M,
    /// `maglev_stats`.
    pub stats: M,
}

/// The names [`DatapathMaps::from_named`] looks for.
pub const MAP_NAMES: [&str; 8] = [
    "maglev_services",
    "maglev_backends",
    "maglev_conntrack",
    "maglev_services6",
    "maglev_backends6",
    "maglev_conntrack6",
    "maglev_config",
    "maglev_stats",
];

impl<M> DatapathMaps<M> {
    /// Picks the datapath's maps out of a loader's `(name, handle)` list, e.g. for kbpf
    /// `loaded.maps.iter().map(|m| (m.name.clone(), m.map.clone()))` of
    /// `kbpf_loader::load_object`; other maps (the inner template) are ignored.
    pub fn from_named(
        maps: impl IntoIterator<Item = (String, M)>,
    ) -> Result<DatapathMaps<M>, ControlError> {
        let mut by_name: HashMap<String, M> = maps.into_iter().collect();
        let mut take = |n: &'static str| by_name.remove(n).ok_or(ControlError::MissingMap(n));
        Ok(DatapathMaps {
            services: take(MAP_NAMES[0])?,
            backends: take(MAP_NAMES[1])?,
            conntrack: take(MAP_NAMES[2])?,
            services6: take(MAP_NAMES[3])?,
            backends6: take(MAP_NAMES[4])?,
            conntrack6: take(MAP_NAMES[5])?,
            config: take(MAP_NAMES[6])?,
            stats: take(MAP_NAMES[7])?,
        })
    }
}

/// A service as clients address it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAddr {
    /// Virtual IP (v4 → `maglev_services`, v6 → `maglev_services6`).
    pub vip: IpAddr,
    /// Service port.
    pub port: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub protocol: u8,
}

impl std::fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            6 => "tcp",
            17 => "udp",
            _ => "proto",
        };
        match self.vip {
            IpAddr::V4(a) => write!(f, "{proto}://{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "{proto}://[{a}]:{}", self.port),
        }
    }
}

impl ServiceAddr {
    /// The outer-map key bytes.
    pub fn key_bytes(&self) -> Vec<u8> {
        match self.vip {
            IpAddr::V4(a) => ServiceKey {
                vip: a.octets(),
                port: self.port,
                protocol: self.protocol,
            }
            .to_bytes()
            .to_vec(),
            IpAddr::V6(a) => ServiceKey6 {
                vip: a.octets(),
                port: self.port,
                protocol: self.protocol,
            }
            .to_bytes()
            .to_vec(),
        }
    }
}

/// The control plane's name for a service.
pub type ServiceId = u32;

/// A backend to add: address, port (0 keeps the service port) and weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendSpec {
    /// Backend address (same family as the service).
    pub addr: IpAddr,
    /// Backend port; 0 keeps the service port.
    pub port: u16,
    /// Relative weight; 0 = drained from the start.
    pub weight: u32,
}

impl BackendSpec {
    /// Weight 1.
    pub fn new(addr: impl Into<IpAddr>, port: u16) -> BackendSpec {
        BackendSpec {
            addr: addr.into(),
            port,
            weight: 1,
        }
    }

    /// The Maglev name the table hashes (`addr:port`, `[v6]:port`): the same set of
    /// backends gives the same table on every machine.
    pub fn maglev_name(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }
}

/// A backend of a service as the control plane tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// Address, port and configured weight.
    pub spec: BackendSpec,
    /// Key in `maglev_backends` (or `maglev_backends6`).
    pub id: u32,
    /// Drained: out of the table, conntrack entries keep it.
    pub drained: bool,
}

impl BackendInfo {
    /// The weight the table is built with (0 when drained).
    pub fn effective_weight(&self) -> u32 {
        if self.drained { 0 } else { self.spec.weight }
    }
}

/// Table sizing and hashing of a [`LoadBalancer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbConfig {
    /// Per-service table sizes.
    pub policy: SizePolicy,
    /// Seed of the backend-name hashes (the permutations).
    pub seed: HashSeed,
    /// Seed of the datapath's flow hash, written to `maglev_config`.
    pub flow_seed: u32,
}

impl Default for LbConfig {
    fn default() -> LbConfig {
        LbConfig {
            policy: SizePolicy::default(),
            seed: HashSeed::default(),
            flow_seed: 0x5eed_1234,
        }
    }
}

/// A service's state: address, backends and the table now in the datapath.
#[derive(Clone, Debug)]
pub struct Service {
    /// The id.
    pub id: ServiceId,
    /// The address.
    pub addr: ServiceAddr,
    /// Backends, in the order they were added.
    pub backends: Vec<BackendInfo>,
    /// The packed table in the service's current inner array.
    pub packed: PackedTable,
    /// Number of tables swapped in so far (1 after creation).
    pub generation: u64,
}

impl Service {
    /// The backend the datapath picks for a new flow with Maglev hash `hash`.
    pub fn pick(&self, hash: u32) -> Option<&BackendInfo> {
        let id = self.packed.backend_for_hash(hash)?;
        self.backends.iter().find(|b| b.id == id)
    }

    /// Kernel memory of the service's inner array.
    pub fn memory_bytes(&self) -> u64 {
        self.packed.memory_bytes()
    }
}

/// Backend ids of one family: fresh ids first, then released ones oldest first.
#[derive(Debug)]
struct IdAllocator {
    next: u32,
    cap: u32,
    free: VecDeque<u32>,
    family: &'static str,
}

impl IdAllocator {
    fn alloc(&mut self) -> Result<u32, ControlError> {
        if self.next < self.cap {
            self.next += 1;
            return Ok(self.next - 1);
        }
        self.free
            .pop_front()
            .ok_or(ControlError::OutOfBackendIds(self.family))
    }
}

/// Sizes of the backends maps in `maglev.bpf.c`.
pub const BACKENDS_MAX_ENTRIES: u32 = 524_288;
/// `maglev_backends6` size.
pub const BACKENDS6_MAX_ENTRIES: u32 = 16_384;

/// A table built off-line for [`LoadBalancer::add_services`].
struct Prepared {
    packed: PackedTable,
}

/// Progress of a long control-plane operation, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done (`"build tables"`, `"replay packets"`, …).
    pub phase: &'static str,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// The Maglev load balancer's control plane over the maps of one loaded datapath.
pub struct LoadBalancer<O: MapOps> {
    ops: O,
    maps: DatapathMaps<O::Map>,
    config: LbConfig,
    services: HashMap<ServiceId, Service>,
    by_addr: HashMap<ServiceAddr, ServiceId>,
    next_service: ServiceId,
    ids4: IdAllocator,
    ids6: IdAllocator,
    swaps: u64,
    memlock_checked: u64,
}

impl<O: MapOps> LoadBalancer<O> {
    /// Takes over the (empty) maps of a loaded datapath and writes its config.
    pub fn new(
        ops: O,
        maps: DatapathMaps<O::Map>,
        config: LbConfig,
    ) -> Result<LoadBalancer<O>, ControlError> {
        ops.update(
            &maps.config,
            &0u32.to_ne_bytes(),
            &Config {
                hash_seed: config.flow_seed,
            }
            .to_bytes(),
        )?;
        Ok(LoadBalancer {
            ops,
            maps,
            config,
            services: HashMap::new(),
            by_addr: HashMap::new(),
            next_service: 1,
            // Id 0 stays unused: an all-zero entry is never a backend.
            ids4: IdAllocator {
                next: 1,
                cap: BACKENDS_MAX_ENTRIES,
                free: VecDeque::new(),
                family: "IPv4",
            },
            ids6: IdAllocator {
                next: 1,
                cap: BACKENDS6_MAX_ENTRIES,
                free: VecDeque::new(),
                family: "IPv6",
            },
            swaps: 0,
            memlock_checked: 0,
        })
    }

    /// The map backend.
    pub fn ops(&self) -> &O {
        &self.ops
    }

    /// The datapath's maps.
    pub fn maps(&self) -> &DatapathMaps<O::Map> {
        &self.maps
    }

    /// The configuration.
    pub fn config(&self) -> &LbConfig {
        &self.config
    }

    /// A service.
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(&id)
    }

    /// The id of the service at `addr`.
    pub fn service_id(&self, addr: &ServiceAddr) -> Option<ServiceId> {
        self.by_addr.get(addr).copied()
    }

    /// Every service (no particular order).
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// Number of services.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Inner-map swaps done so far (creations included).
    pub fn swaps(&self) -> u64 {
        self.swaps
    }

    /// Sum of the kernel memory of every service's inner array ([`PackedTable::memory_bytes`]).
    pub fn memory_bytes(&self) -> u64 {
        self.services.values().map(Service::memory_bytes).sum()
    }

    /// How many inner maps had their backend-reported `memlock` checked equal to the
    /// layout's figure (every created map whose backend reports one).
    pub fn memlock_checked(&self) -> u64 {
        self.memlock_checked
    }

    fn family_ok(vip: IpAddr, b: &BackendSpec) -> Result<(), ControlError> {
        if vip.is_ipv4() != b.addr.is_ipv4() {
            return Err(ControlError::FamilyMismatch(b.addr));
        }
        if b.addr.is_unspecified() {
            return Err(ControlError::ReservedAddress(b.addr));
        }
        Ok(())
    }

    fn backends_map(&self, v4: bool) -> &O::Map {
        if v4 {
            &self.maps.backends
        } else {
            &self.maps.backends6
        }
    }

    fn write_backend(&self, b: &BackendSpec, id: u32) -> Result<(), ControlError> {
        let key = id.to_ne_bytes();
        match b.addr {
            IpAddr::V4(a) => self.ops.update(
                &self.maps.backends,
                &key,
                &BackendValue {
                    addr: a.octets(),
                    port: b.port,
                }
                .to_bytes(),
            ),
            IpAddr::V6(a) => self.ops.update(
                &self.maps.backends6,
                &key,
                &BackendValue6 {
                    addr: a.octets(),
                    port: b.port,
                }
                .to_bytes(),
            ),
        }
    }

    /// Zeroes a backend's entry (the datapath's "gone") and releases its id.
    fn clear_backend(&mut self, v4: bool, id: u32) -> Result<(), ControlError> {
        let len = if v4 { 8 } else { 20 };
        self.ops
            .update(self.backends_map(v4), &id.to_ne_bytes(), &vec![0u8; len])?;
        if v4 {
            self.ids4.free.push_back(id);
        } else {
            self.ids6.free.push_back(id);
        }
        Ok(())
    }

    fn alloc_id(&mut self, v4: bool) -> Result<u32, ControlError> {
        if v4 {
            self.ids4.alloc()
        } else {
            self.ids6.alloc()
        }
    }

    fn prepare(config: &LbConfig, backends: &[BackendInfo]) -> Result<Prepared, ControlError> {
        let table_backends: Vec<Backend> = backends
            .iter()
            .map(|b| Backend::new(b.spec.maglev_name(), b.effective_weight()))
            .collect();
        let ids: Vec<u32> = backends.iter().map(|b| b.id).collect();
        if table_backends.is_empty() {
            // No backend: an empty table (header only; the datapath drops).
            let t = crate::build(&[Backend::new("", 0)], 251, config.seed)
                .map_err(ServiceError::from)?;
            let packed = PackedTable::pack(&t, &[0]).map_err(ServiceError::from)?;
            return Ok(Prepared { packed });
        }
        let st = build_service(&table_backends, &ids, &config.policy, config.seed)?;
        Ok(Prepared { packed: st.packed })
    }

    /// Creates and fills a new inner array for `prepared`.
    fn create_filled(&mut self, prepared: &Prepared) -> Result<O::Map, ControlError> {
        let p = &prepared.packed;
        let inner = self
            .ops
            .create_inner("maglev_tbl", INNER_VALUE_SIZE, p.max_entries())?;
        if let Err(e) = self.ops.fill_array(&inner, p.elements()) {
            self.ops.close(inner);
            return Err(e);
        }
        if let Some(m) = self.ops.memlock(&inner) {
            debug_assert_eq!(m, p.memory_bytes(), "memlock of a new inner array");
            if m == p.memory_bytes() {
                self.memlock_checked += 1;
            }
        }
        Ok(inner)
    }

    /// Creates, fills and swaps in the inner array of `prepared` for service `addr`.
    fn install(&mut self, addr: &ServiceAddr, prepared: &Prepared) -> Result<(), ControlError> {
        let inner = self.create_filled(prepared)?;
        let outer = if addr.vip.is_ipv4() {
            &self.maps.services
        } else {
            &self.maps.services6
        };
        let r = self.ops.set_inner(outer, &addr.key_bytes(), &inner);
        // The outer map holds the new inner map now; the old one lost its last reference
        // with the update and is freed once readers are done.
        self.ops.close(inner);
        r?;
        self.swaps += 1;
        Ok(())
    }

    /// Adds a service with its backends; returns its id.
    pub fn add_service(
        &mut self,
        addr: ServiceAddr,
        backends: &[BackendSpec],
    ) -> Result<ServiceId, ControlError> {
        let ids = self.add_services(vec![(addr, backends.to_vec())], 1, &mut |_| {})?;
        Ok(ids[0])
    }

    /// Adds many services at once, building their tables on `threads` threads and
    /// reporting progress (phase `"build tables"`, one unit per backend slot of the
    /// tables; then `"load tables"`, one unit per service). On error the services
    /// installed so far stay.
    pub fn add_services(
        &mut self,
        specs: Vec<(ServiceAddr, Vec<BackendSpec>)>,
        threads: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<ServiceId>, ControlError> {
        // Validate and give ids first (sequential), then build (parallel), then load.
        let mut seen = std::collections::HashSet::new();
        for (addr, bs) in &specs {
            if self.by_addr.contains_key(addr) || !seen.insert(*addr) {
                return Err(ControlError::ServiceExists(*addr));
            }
            let mut names = std::collections::HashSet::new();
            for b in bs {
                Self::family_ok(addr.vip, b)?;
                if !names.insert((b.addr, b.port)) {
                    return Err(ControlError::BackendExists {
                        service: 0,
                        addr: b.addr,
                        port: b.port,
                    });
                }
            }
        }
        let mut staged: Vec<(ServiceAddr, Vec<BackendInfo>)> = Vec::with_capacity(specs.len());
        for (addr, bs) in specs {
            let mut infos = Vec::with_capacity(bs.len());
            for b in bs {
                let id = self.alloc_id(addr.vip.is_ipv4())?;
                self.write_backend(&b, id)?;
                infos.push(BackendInfo {
                    spec: b,
                    id,
                    drained: b.weight == 0,
                });
            }
            staged.push((addr, infos));
        }
        let policy = self.config.policy;
        let total_slots: u64 = staged
            .iter()
            .map(|(_, b)| u64::from(policy.table_size(b.len())))
            .sum();
        let mut done_slots = 0u64;
        progress(Progress {
            phase: "build tables",
            done: 0,
            total: total_slots,
        });
        let config = self.config;
        let threads = threads.max(1);
        let mut out = Vec::with_capacity(staged.len());
        // Chunks bound the memory of built-but-not-loaded tables and pace the progress.
        let chunk = 64 * threads;
        let total_services = staged.len() as u64;
        for group in staged.chunks(chunk) {
            let built: Vec<Result<Prepared, ControlError>> = if threads == 1 {
                group
                    .iter()
                    .map(|(_, b)| Self::prepare(&config, b))
                    .collect()
            } else {
                let mut results: Vec<Option<Result<Prepared, ControlError>>> =
                    (0..group.len()).map(|_| None).collect();
                std::thread::scope(|s| {
                    let per = group.len().div_ceil(threads);
                    for (gs, rs) in group.chunks(per).zip(results.chunks_mut(per)) {
                        s.spawn(move || {
                            for ((_, b), r) in gs.iter().zip(rs.iter_mut()) {
                                *r = Some(Self::prepare(&config, b));
                            }
                        });
                    }
                });
                results.into_iter().map(|r| r.expect("built")).collect()
            };
            let mut inners = Vec::with_capacity(group.len());
            let mut packed = Vec::with_capacity(group.len());
            for ((_, infos), prepared) in group.iter().zip(built) {
                let prepared = prepared?;
                done_slots += u64::from(policy.table_size(infos.len()));
                inners.push(self.create_filled(&prepared)?);
                packed.push(prepared.packed);
            }
            // One outer update per service; the kernel backend issues them from several
            // threads (each map-in-map update waits for an RCU grace period).
            let keys: Vec<Vec<u8>> = group.iter().map(|(a, _)| a.key_bytes()).collect();
            for v4 in [true, false] {
                let items: Vec<(&[u8], &O::Map)> = group
                    .iter()
                    .zip(&keys)
                    .zip(&inners)
                    .filter(|&(((a, _), _), _)| a.vip.is_ipv4() == v4)
                    .map(|((_, k), m)| (k.as_slice(), m))
                    .collect();
                if !items.is_empty() {
                    let outer = if v4 {
                        &self.maps.services
                    } else {
                        &self.maps.services6
                    };
                    self.ops.set_inner_many(outer, &items)?;
                    self.swaps += items.len() as u64;
                }
            }
            for m in inners {
                self.ops.close(m);
            }
            for ((addr, infos), packed) in group.iter().zip(packed) {
                let id = self.next_service;
                self.next_service += 1;
                self.by_addr.insert(*addr, id);
                self.services.insert(
                    id,
                    Service {
                        id,
                        addr: *addr,
                        backends: infos.clone(),
                        packed,
                        generation: 1,
                    },
                );
                out.push(id);
            }
            progress(Progress {
                phase: "build tables",
                done: done_slots,
                total: total_slots,
            });
            progress(Progress {
                phase: "load tables",
                done: out.len() as u64,
                total: total_services,
            });
        }
        Ok(out)
    }

    /// Removes a service: its outer entry (the datapath passes its traffic on), its inner
    /// array (freed after readers) and its backends' entries.
    pub fn remove_service(&mut self, id: ServiceId) -> Result<(), ControlError> {
        let svc = self
            .services
            .remove(&id)
            .ok_or(ControlError::NoSuchService(id))?;
        self.by_addr.remove(&svc.addr);
        let outer = if svc.addr.vip.is_ipv4() {
            &self.maps.services
        } else {
            &self.maps.services6
        };
        self.ops.delete(outer, &svc.addr.key_bytes())?;
        for b in &svc.backends {
            self.clear_backend(svc.addr.vip.is_ipv4(), b.id)?;
        }
        Ok(())
    }

    fn rebuild(&mut self, id: ServiceId) -> Result<(), ControlError> {
        let svc = self
            .services
            .get(&id)
            .ok_or(ControlError::NoSuchService(id))?;
        let prepared = Self::prepare(&self.config, &svc.backends)?;
        let addr = svc.addr;
        self.install(&addr, &prepared)?;
        let svc = self.services.get_mut(&id).expect("service");
        svc.packed = prepared.packed;
        svc.generation += 1;
        Ok(())
    }

    fn backend_index(&self, id: ServiceId, addr: IpAddr, port: u16) -> Result<usize, ControlError> {
        let svc = self
            .services
            .get(&id)
            .ok_or(ControlError::NoSuchService(id))?;
        svc.backends
            .iter()
            .position(|b| b.spec.addr == addr && b.spec.port == port)
            .ok_or(ControlError::NoSuchBackend {
                service: id,
                addr,
                port,
            })
    }

    /// Adds a backend to a service and swaps in the new table; returns its backend id.
    pub fn add_backend(&mut self, id: ServiceId, spec: BackendSpec) -> Result<u32, ControlError> {
        let svc = self
            .services
            .get(&id)
            .ok_or(ControlError::NoSuchService(id))?;
        Self::family_ok(svc.addr.vip, &spec)?;
        if svc
            .backends
            .iter()
            .any(|b| b.spec.addr == spec.addr && b.spec.port == spec.port)
        {
            return Err(ControlError::BackendExists {
                service: id,
                addr: spec.addr,
                port: spec.port,
            });
        }
        let v4 = svc.addr.vip.is_ipv4();
        let bid = self.alloc_id(v4)?;
        // The entry exists before any table can name the id.
        self.write_backend(&spec, bid)?;
        self.services
            .get_mut(&id)
            .expect("service")
            .backends
            .push(BackendInfo {
                spec,
                id: bid,
                drained: spec.weight == 0,
            });
        if let Err(e) = self.rebuild(id) {
            self.services.get_mut(&id).expect("service").backends.pop();
            self.clear_backend(v4, bid)?;
            return Err(e);
        }
        Ok(bid)
    }

    /// Removes a backend: the table without it is swapped in first, then its entry is
    /// zeroed, so its conntrack flows re-select (see the module docs).
    pub fn remove_backend(
        &mut self,
        id: ServiceId,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), ControlError> {
        let i = self.backend_index(id, addr, port)?;
        let svc = self.services.get_mut(&id).expect("service");
        let removed = svc.backends.remove(i);
        let v4 = svc.addr.vip.is_ipv4();
        if let Err(e) = self.rebuild(id) {
            self.services
                .get_mut(&id)
                .expect("service")
                .backends
                .insert(i, removed);
            return Err(e);
        }
        self.clear_backend(v4, removed.id)
    }

    /// Drains a backend: out of the table (no new flows), conntrack keeps its flows.
    pub fn drain_backend(
        &mut self,
        id: ServiceId,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), ControlError> {
        self.set_drained(id, addr, port, true)
    }

    /// Puts a drained backend back into the table.
    pub fn undrain_backend(
        &mut self,
        id: ServiceId,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), ControlError> {
        self.set_drained(id, addr, port, false)
    }

    fn set_drained(
        &mut self,
        id: ServiceId,
        addr: IpAddr,
        port: u16,
        drained: bool,
    ) -> Result<(), ControlError> {
        let i = self.backend_index(id, addr, port)?;
        let b = &mut self.services.get_mut(&id).expect("service").backends[i];
        let old = b.drained;
        b.drained = drained;
        if let Err(e) = self.rebuild(id) {
            self.services.get_mut(&id).expect("service").backends[i].drained = old;
            return Err(e);
        }
        Ok(())
    }

    /// Changes a backend's weight (0 behaves as drained) and swaps in the new table.
    pub fn set_backend_weight(
        &mut self,
        id: ServiceId,
        addr: IpAddr,
        port: u16,
        weight: u32,
    ) -> Result<(), ControlError> {
        let i = self.backend_index(id, addr, port)?;
        let b = &mut self.services.get_mut(&id).expect("service").backends[i];
        let old = b.spec.weight;
        b.spec.weight = weight;
        if let Err(e) = self.rebuild(id) {
            self.services.get_mut(&id).expect("service").backends[i]
                .spec
                .weight = old;
            return Err(e);
        }
        Ok(())
    }

    /// Deletes the IPv4 conntrack entries whose backend id is no longer used by any
    /// service (removed backends); returns how many. One `get_next_key` walk plus a
    /// lookup per entry: for maintenance, not the fast path.
    pub fn purge_conntrack(&mut self) -> Result<usize, ControlError> {
        let live: std::collections::HashSet<u32> = self
            .services
            .values()
            .filter(|s| s.addr.vip.is_ipv4())
            .flat_map(|s| s.backends.iter().map(|b| b.id))
            .collect();
        let mut n = 0;
        for k in self.ops.keys(&self.maps.conntrack)? {
            if let Some(v) = self.ops.lookup(&self.maps.conntrack, &k)?
                && v.len() >= 4
            {
                let id = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                if !live.contains(&id) && self.ops.delete(&self.maps.conntrack, &k)? {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Removes every service (inner arrays released, backend entries zeroed).
    pub fn clear(&mut self) -> Result<(), ControlError> {
        let ids: Vec<ServiceId> = self.services.keys().copied().collect();
        for id in ids {
            self.remove_service(id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

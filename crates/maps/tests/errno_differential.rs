//! The errno scenario table of `kbpf-kernel` (kernel-semantics §5/§11 as data) replayed on
//! kbpf's maps — always — and on the live kernel where `bpf()` works; both must meet every
//! expectation, so both answer with identical errnos — except for the documented deviations
//! in [`KBPF_DEVIATIONS`], which must fail on kbpf (so the list cannot go stale).

use kbpf_kernel::scenario::{self, Backend, FdArg, KernelBackend, MapSpec, ValueArg};
use kbpf_kernel::{Errno as KErrno, bpf_available_or_skip};
use kbpf_maps::{Errno, FdObject, Map, MapAttr, MapError, MapType};

/// kbpf's maps as a scenario backend. Handles are owning [`Map`]s; an fd argument that is
/// "not a map" is an open non-BPF file, a "closed" one fails with EBADF, and `None` is
/// `inner_map_fd = 0`, i.e. stdin — open and not a map.
struct KbpfBackend;

fn kerrno(e: MapError) -> KErrno {
    KErrno(e.errno.code())
}

fn resolve(arg: Option<&FdArg<'_, Map>>) -> Result<FdObject, Errno> {
    match arg {
        Some(FdArg::Map(m)) => Ok(FdObject::Map((*m).clone())),
        Some(FdArg::NotAMap) | None => Ok(FdObject::Other),
        Some(FdArg::Closed) => Err(Errno::EBADF),
    }
}

fn is_fd_map(m: &Map) -> bool {
    m.map_type().is_fd_array() || m.map_type() == MapType::HashOfMaps
}

impl Backend for KbpfBackend {
    type Map = Map;

    fn describe(&self) -> String {
        "kbpf".into()
    }

    fn create(
        &mut self,
        name: &str,
        spec: &MapSpec,
        inner: Option<FdArg<'_, Map>>,
    ) -> Result<Map, KErrno> {
        let attr = MapAttr {
            map_type: spec.map_type,
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            map_flags: spec.map_flags,
            name: name.to_string(),
            numa_node: 0,
            nr_cpus: 0,
            bypass_spec_v1: true,
            profile: kbpf_maps::MapsProfile::BUILTIN,
            btf: None,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
        };
        Map::create_with(&attr, || resolve(inner.as_ref())).map_err(kerrno)
    }

    fn lookup(&mut self, map: &Map, key: &[u8]) -> Result<Vec<u8>, KErrno> {
        map.lookup_elem(key).map_err(kerrno)
    }

    fn update(
        &mut self,
        map: &Map,
        key: &[u8],
        value: ValueArg<'_, Map>,
        flags: u64,
    ) -> Result<(), KErrno> {
        match value {
            ValueArg::Fd(arg) if is_fd_map(map) => map
                .update_elem_fd(key, flags, || resolve(Some(&arg)))
                .map_err(kerrno),
            // Bytes written into an fd map name a descriptor no backend has open.
            ValueArg::Bytes(_) if is_fd_map(map) => map
                .update_elem_fd(key, flags, || Err(Errno::EBADF))
                .map_err(kerrno),
            ValueArg::Bytes(b) => map.update_elem(key, b, flags).map_err(kerrno),
            // A map fd written into a data map is just 4 bytes of fd number.
            ValueArg::Fd(_) => map
                .update_elem(key, &1000u32.to_ne_bytes(), flags)
                .map_err(kerrno),
        }
    }

    fn delete(&mut self, map: &Map, key: &[u8]) -> Result<(), KErrno> {
        map.delete_elem(key).map_err(kerrno)
    }

    fn get_next_key(&mut self, map: &Map, key: Option<&[u8]>) -> Result<Vec<u8>, KErrno> {
        map.get_next_key(key).map_err(kerrno)
    }

    fn map_id(&mut self, map: &Map) -> Result<u32, KErrno> {
        Ok(map.id())
    }

    fn close(&mut self, map: Map) {
        drop(map);
    }
}

/// Scenarios where kbpf deliberately differs from Linux 6.18, and why. Empty since the
/// kernel started refusing PERCPU_ARRAY inners whose max_entries differ from the template's
/// (6.18.44 later builds), which kbpf always did.
const KBPF_DEVIATIONS: &[(&str, &str)] = &[];

fn replay<B: Backend>(backend: &mut B) -> (usize, Vec<(String, String)>) {
    let table = scenario::errno_table();
    let failures = table
        .iter()
        .filter_map(|sc| {
            scenario::run(backend, sc)
                .err()
                .map(|f| (sc.name.clone(), f.to_string()))
        })
        .collect();
    (table.len(), failures)
}

#[test]
fn errno_table_on_kbpf() {
    let (n, failures) = replay(&mut KbpfBackend);
    println!(
        "kbpf: {n} scenarios, {} match the kernel, {} documented deviations",
        n - failures.len(),
        failures.len()
    );
    let unexpected: Vec<&str> = failures
        .iter()
        .filter(|(name, _)| !KBPF_DEVIATIONS.iter().any(|(d, _)| d == name))
        .map(|(_, f)| f.as_str())
        .collect();
    assert!(
        unexpected.is_empty(),
        "mismatches:\n{}",
        unexpected.join("\n")
    );
    for (name, why) in KBPF_DEVIATIONS {
        assert!(
            failures.iter().any(|(f, _)| f == name),
            "documented deviation {name} ({why}) no longer deviates: update KBPF_DEVIATIONS"
        );
    }
}

#[test]
fn errno_table_on_kernel() {
    if !bpf_available_or_skip("errno_differential") {
        return;
    }
    let mut k = KernelBackend::new().expect("open /dev/null");
    let (n, failures) = replay(&mut k);
    println!(
        "{}: {n} scenarios, {} mismatches",
        k.describe(),
        failures.len()
    );
    let text: Vec<&str> = failures.iter().map(|(_, f)| f.as_str()).collect();
    assert!(failures.is_empty(), "mismatches:\n{}", text.join("\n"));
}

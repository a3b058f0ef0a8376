//! Map-operation scenarios as data, replayable against any backend.
//!
//! A [`Scenario`] is a list of [`Step`]s (create a map, update, lookup, delete,
//! get_next_key, close), each with the [`Expect`]ed outcome: success, a value, the id of
//! another map of the scenario, or an [`Errno`]. [`run`] replays it against a
//! [`Backend`] and reports the first step whose outcome differs.
//!
//! The [`Backend`] trait is deliberately small and byte-oriented so that both engines can
//! implement it:
//! - [`KernelBackend`] (here) performs each step with `bpf()`;
//! - kbpf's map subsystem implements it over its own maps.
//!
//! Map handles are opaque per-backend values (`Backend::Map`). Where the kernel takes a
//! map *fd as an argument* — `inner_map_fd` at creation, the value written into a
//! map-of-maps — a scenario names another map of the scenario, or one of two deliberately
//! bad arguments ([`FdArg::NotAMap`]: an open fd that is not a map, e.g. `/dev/null`;
//! [`FdArg::Closed`]: a number that is not an open fd). Reading a map-of-maps yields the
//! inner map's id; the scenario states which map it expects ([`Expect::IdOf`]) and the
//! runner compares with the id the backend reported for that map right after creating it.
//!
//! [`errno_table`] is the errno table of `shared/design/kernel-semantics.md` (§5 and §11)
//! written in this form; each scenario's `row` names the table row it expresses.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};

use crate::consts::*;
use crate::{Errno, Error, KernelMap, MapCreateAttr};

/// A map definition without any fd: what every backend needs to create a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
}

impl MapSpec {
    /// A map with no flags.
    pub const fn new(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapSpec {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
        }
    }

    /// The same map with `map_flags` set.
    pub const fn flags(mut self, map_flags: u32) -> Self {
        self.map_flags = map_flags;
        self
    }
}

impl fmt::Display for MapSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} k{} v{} n{}",
            map_type_name(self.map_type).unwrap_or("unknown"),
            self.key_size,
            self.value_size,
            self.max_entries
        )?;
        if self.map_flags != 0 {
            write!(f, " flags {:#x}", self.map_flags)?;
        }
        Ok(())
    }
}

/// A map given where the kernel takes a map fd as an argument.
#[derive(Debug)]
pub enum FdArg<'a, M> {
    /// A live map of this backend.
    Map(&'a M),
    /// An open fd that is not a BPF map (the kernel answers `EINVAL`).
    NotAMap,
    /// A number that is not an open fd (the kernel answers `EBADF`).
    Closed,
}

/// A value to write: plain bytes, or (for map-of-maps) a map.
#[derive(Debug)]
pub enum ValueArg<'a, M> {
    /// The value bytes (exactly the map's user-space value size).
    Bytes(&'a [u8]),
    /// A map-of-maps value: the map to insert.
    Fd(FdArg<'a, M>),
}

/// One engine that can perform map operations: the kernel, or kbpf's maps.
///
/// Every method returns the kernel's errno on failure (`Errno::ENOTSUPP` for 524 too).
/// Keys and values are the bytes user space exchanges with `bpf()`.
pub trait Backend {
    /// The backend's handle for one map (owning; dropped or passed to [`Backend::close`]).
    type Map;

    /// A short description for failure reports (e.g. `"kernel 6.18"`, `"kbpf"`).
    fn describe(&self) -> String;

    /// `BPF_MAP_CREATE`. `name` is the map's name (≤ 15 bytes of `[A-Za-z0-9_]`);
    /// `inner` is `inner_map_fd` (`None` = field 0, as C callers leave it).
    fn create(
        &mut self,
        name: &str,
        spec: &MapSpec,
        inner: Option<FdArg<'_, Self::Map>>,
    ) -> Result<Self::Map, Errno>;

    /// `BPF_MAP_LOOKUP_ELEM`; map-of-maps return the inner map's id (4 bytes, native endian).
    fn lookup(&mut self, map: &Self::Map, key: &[u8]) -> Result<Vec<u8>, Errno>;

    /// `BPF_MAP_UPDATE_ELEM` with `flags` passed through unchecked.
    fn update(
        &mut self,
        map: &Self::Map,
        key: &[u8],
        value: ValueArg<'_, Self::Map>,
        flags: u64,
    ) -> Result<(), Errno>;

    /// `BPF_MAP_DELETE_ELEM`.
    fn delete(&mut self, map: &Self::Map, key: &[u8]) -> Result<(), Errno>;

    /// `BPF_MAP_DELETE_ELEM` with a value in the attribute's unused `value` member. The
    /// kernel's `CHECK_ATTR` answers `EINVAL` for any non-zero value before looking at the
    /// map; the default implementation models exactly that.
    fn delete_with_value_field(
        &mut self,
        map: &Self::Map,
        key: &[u8],
        value_field: u64,
    ) -> Result<(), Errno> {
        if value_field != 0 {
            Err(Errno::EINVAL)
        } else {
            self.delete(map, key)
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`; `None` asks for the first key.
    fn get_next_key(&mut self, map: &Self::Map, key: Option<&[u8]>) -> Result<Vec<u8>, Errno>;

    /// The map's id, as `BPF_OBJ_GET_INFO_BY_FD` reports it.
    fn map_id(&mut self, map: &Self::Map) -> Result<u32, Errno>;

    /// Closes the handle (the map lives on while an outer map holds it).
    fn close(&mut self, map: Self::Map);
}

/// Where a scenario puts an fd argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdRef {
    /// The map created under this name earlier in the scenario.
    Map(String),
    /// An open fd that is not a map.
    NotAMap,
    /// A number that is not an open fd.
    Closed,
}

/// A value a scenario writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Plain bytes.
    Bytes(Vec<u8>),
    /// A map-of-maps value.
    Fd(FdRef),
}

/// The outcome a step expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Success (for lookups/get_next_key: success with any bytes).
    Ok,
    /// Success returning exactly these bytes.
    Bytes(Vec<u8>),
    /// Success returning the id (u32, native endian) of the named map.
    IdOf(String),
    /// Failure with this errno.
    Err(Errno),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Ok => f.write_str("OK"),
            Expect::Bytes(b) => write!(f, "bytes {b:02x?}"),
            Expect::IdOf(m) => write!(f, "id of {m}"),
            Expect::Err(e) => f.write_str(&e.name()),
        }
    }
}

/// One operation of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create map `name` (unbound if creation fails).
    Create {
        /// Name within the scenario (also used as the map's name).
        name: String,
        /// The map.
        spec: MapSpec,
        /// `inner_map_fd`.
        inner: Option<FdRef>,
        /// Expected outcome.
        expect: Expect,
    },
    /// Update an element.
    Update {
        /// Map name.
        map: String,
        /// Key bytes.
        key: Vec<u8>,
        /// Value.
        value: Value,
        /// `BPF_ANY`, `BPF_NOEXIST`, … (any value).
        flags: u64,
        /// Expected outcome.
        expect: Expect,
    },
    /// Look an element up.
    Lookup {
        /// Map name.
        map: String,
        /// Key bytes.
        key: Vec<u8>,
        /// Expected outcome.
        expect: Expect,
    },
    /// Delete an element.
    Delete {
        /// Map name.
        map: String,
        /// Key bytes.
        key: Vec<u8>,
        /// Expected outcome.
        expect: Expect,
    },
    /// Delete with a non-zero `value` member in the attribute.
    DeleteWithValueField {
        /// Map name.
        map: String,
        /// Key bytes.
        key: Vec<u8>,
        /// The `value` member.
        value_field: u64,
        /// Expected outcome.
        expect: Expect,
    },
    /// Ask for the key after `key` (`None`: the first key).
    GetNextKey {
        /// Map name.
        map: String,
        /// Current key.
        key: Option<Vec<u8>>,
        /// Expected outcome.
        expect: Expect,
    },
    /// Close the handle of map `map`.
    Close {
        /// Map name.
        map: String,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Create {
                name, spec, inner, ..
            } => {
                write!(f, "create {name} ({spec})")?;
                if let Some(i) = inner {
                    write!(f, " inner {i:?}")?;
                }
                Ok(())
            }
            Step::Update {
                map,
                key,
                value,
                flags,
                ..
            } => write!(
                f,
                "update {map} key {key:02x?} value {value:?} flags {flags}"
            ),
            Step::Lookup { map, key, .. } => write!(f, "lookup {map} key {key:02x?}"),
            Step::Delete { map, key, .. } => write!(f, "delete {map} key {key:02x?}"),
            Step::DeleteWithValueField {
                map,
                key,
                value_field,
                ..
            } => write!(
                f,
                "delete {map} key {key:02x?} with value field {value_field:#x}"
            ),
            Step::GetNextKey { map, key, .. } => write!(f, "get_next_key {map} after {key:02x?}"),
            Step::Close { map } => write!(f, "close {map}"),
        }
    }
}

/// A named sequence of steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Unique name.
    pub name: String,
    /// The row of the spec's errno table this scenario expresses.
    pub row: String,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Why a scenario did not replay as expected.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A step's outcome differed from the expectation.
    #[error(
        "{backend}: scenario {scenario} ({row}), step {index} `{step}`: expected {expected}, got {got}"
    )]
    Mismatch {
        /// Backend description.
        backend: String,
        /// Scenario name.
        scenario: String,
        /// Spec row.
        row: String,
        /// Step index.
        index: usize,
        /// The step, rendered.
        step: String,
        /// Expected outcome.
        expected: Expect,
        /// What happened, rendered.
        got: String,
    },
    /// The scenario itself is malformed (names a map that does not exist).
    #[error("scenario {scenario}, step {index}: {message}")]
    Malformed {
        /// Scenario name.
        scenario: String,
        /// Step index.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

fn render<T: fmt::Debug>(r: &Result<T, Errno>) -> String {
    match r {
        Ok(v) => format!("OK {v:02x?}"),
        Err(e) => e.name().into_owned(),
    }
}

/// Replays `scenario` against `backend`. Every map still open at the end is closed.
pub fn run<B: Backend>(backend: &mut B, scenario: &Scenario) -> Result<(), Box<Failure>> {
    let mut maps: HashMap<String, B::Map> = HashMap::new();
    let result = run_steps(backend, scenario, &mut maps);
    for (_, m) in maps.drain() {
        backend.close(m);
    }
    result
}

fn run_steps<B: Backend>(
    backend: &mut B,
    sc: &Scenario,
    maps: &mut HashMap<String, B::Map>,
) -> Result<(), Box<Failure>> {
    let desc = backend.describe();
    // Ids are recorded at creation so that IdOf still works after a Close.
    let mut ids: HashMap<String, u32> = HashMap::new();
    for (index, step) in sc.steps.iter().enumerate() {
        let malformed = |message: String| {
            Box::new(Failure::Malformed {
                scenario: sc.name.clone(),
                index,
                message,
            })
        };
        let mismatch = |expected: &Expect, got: String| {
            Box::new(Failure::Mismatch {
                backend: desc.clone(),
                scenario: sc.name.clone(),
                row: sc.row.clone(),
                index,
                step: step.to_string(),
                expected: expected.clone(),
                got,
            })
        };
        let get = |name: &str| {
            maps.get(name)
                .ok_or_else(|| malformed(format!("no open map named {name:?}")))
        };
        let fd_arg = |r: &FdRef| -> Result<FdArg<'_, B::Map>, Box<Failure>> {
            Ok(match r {
                FdRef::Map(n) => FdArg::Map(get(n)?),
                FdRef::NotAMap => FdArg::NotAMap,
                FdRef::Closed => FdArg::Closed,
            })
        };
        // Compares a byte-returning outcome with the expectation.
        let check_bytes = |expect: &Expect, got: Result<Vec<u8>, Errno>| -> Result<(), String> {
            let ok = match (expect, &got) {
                (Expect::Ok, Ok(_)) => true,
                (Expect::Bytes(want), Ok(b)) => want == b,
                (Expect::IdOf(name), Ok(b)) => match ids.get(name) {
                    Some(id) => b.as_slice() == id.to_ne_bytes(),
                    None => return Err(format!("no map named {name:?} was created")),
                },
                (Expect::Err(want), Err(e)) => want == e,
                _ => false,
            };
            if ok { Ok(()) } else { Err(render(&got)) }
        };
        let unit = |r: Result<(), Errno>| r.map(|()| Vec::new());

        let outcome: Result<(), (Expect, String)> = match step {
            Step::Create {
                name,
                spec,
                inner,
                expect,
            } => {
                let inner_arg = match inner {
                    Some(r) => Some(fd_arg(r)?),
                    None => None,
                };
                let created = backend.create(name, spec, inner_arg);
                match created {
                    Ok(m) => {
                        let id = backend.map_id(&m);
                        match id {
                            Ok(id) => {
                                ids.insert(name.clone(), id);
                            }
                            Err(e) => {
                                backend.close(m);
                                return Err(mismatch(
                                    expect,
                                    format!("map_id failed: {}", e.name()),
                                ));
                            }
                        }
                        if let Some(old) = maps.insert(name.clone(), m) {
                            backend.close(old);
                        }
                        if matches!(expect, Expect::Err(_)) {
                            Err((expect.clone(), "OK".into()))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => match expect {
                        Expect::Err(want) if *want == e => Ok(()),
                        _ => Err((expect.clone(), e.name().into_owned())),
                    },
                }
            }
            Step::Update {
                map,
                key,
                value,
                flags,
                expect,
            } => {
                let m = get(map)?;
                let v = match value {
                    Value::Bytes(b) => ValueArg::Bytes(b.as_slice()),
                    Value::Fd(r) => ValueArg::Fd(fd_arg(r)?),
                };
                let r = backend.update(m, key, v, *flags);
                check_bytes(expect, unit(r)).map_err(|g| (expect.clone(), g))
            }
            Step::Lookup { map, key, expect } => {
                let m = get(map)?;
                let r = backend.lookup(m, key);
                check_bytes(expect, r).map_err(|g| (expect.clone(), g))
            }
            Step::Delete { map, key, expect } => {
                let m = get(map)?;
                let r = backend.delete(m, key);
                check_bytes(expect, unit(r)).map_err(|g| (expect.clone(), g))
            }
            Step::DeleteWithValueField {
                map,
                key,
                value_field,
                expect,
            } => {
                let m = get(map)?;
                let r = backend.delete_with_value_field(m, key, *value_field);
                check_bytes(expect, unit(r)).map_err(|g| (expect.clone(), g))
            }
            Step::GetNextKey { map, key, expect } => {
                let m = get(map)?;
                let r = backend.get_next_key(m, key.as_deref());
                check_bytes(expect, r).map_err(|g| (expect.clone(), g))
            }
            Step::Close { map } => {
                let m = maps
                    .remove(map)
                    .ok_or_else(|| malformed(format!("no open map named {map:?}")))?;
                backend.close(m);
                Ok(())
            }
        };
        if let Err((expected, got)) = outcome {
            return Err(mismatch(&expected, got));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The kernel backend.

/// A number that is never an open fd: above any `RLIMIT_NOFILE`, so `fdget()` fails with
/// `EBADF` deterministically (a freshly closed fd could be reused by another test thread).
pub const CLOSED_FD: RawFd = i32::MAX;

/// Runs scenarios against the live kernel through `bpf()`.
#[derive(Debug)]
pub struct KernelBackend {
    /// An open fd that is not a map, for [`FdArg::NotAMap`].
    not_a_map: File,
}

impl KernelBackend {
    /// Opens `/dev/null` as the not-a-map fd. Does not check that `bpf()` works; see
    /// [`crate::bpf_available`].
    pub fn new() -> std::io::Result<KernelBackend> {
        Ok(KernelBackend {
            not_a_map: File::open("/dev/null")?,
        })
    }

    fn raw_fd(&self, arg: &FdArg<'_, KernelMap>) -> RawFd {
        match arg {
            FdArg::Map(m) => m.as_raw_fd(),
            FdArg::NotAMap => self.not_a_map.as_raw_fd(),
            FdArg::Closed => CLOSED_FD,
        }
    }
}

/// Maps a crate error to the errno the backend trait speaks. Size errors cannot reach the
/// kernel (the syscall always moves the map's sizes); they are reported as `EINVAL`, the
/// answer for malformed arguments.
fn errno_of(e: Error) -> Errno {
    e.errno().unwrap_or(Errno::EINVAL)
}

impl Backend for KernelBackend {
    type Map = KernelMap;

    fn describe(&self) -> String {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        format!("kernel {release}")
    }

    fn create(
        &mut self,
        name: &str,
        spec: &MapSpec,
        inner: Option<FdArg<'_, KernelMap>>,
    ) -> Result<KernelMap, Errno> {
        let mut attr = MapCreateAttr::new(
            spec.map_type,
            spec.key_size,
            spec.value_size,
            spec.max_entries,
        )
        .flags(spec.map_flags)
        // Names longer than the kernel's 15 bytes are cut rather than refused: the name is
        // only a label for bpftool, never part of the semantics under test.
        .name(name.chars().take(BPF_OBJ_NAME_LEN - 1).collect::<String>());
        if let Some(i) = &inner {
            attr.inner_map_fd = Some(self.raw_fd(i));
        }
        KernelMap::create(&attr).map_err(errno_of)
    }

    fn lookup(&mut self, map: &KernelMap, key: &[u8]) -> Result<Vec<u8>, Errno> {
        map.lookup(key).map_err(errno_of)
    }

    fn update(
        &mut self,
        map: &KernelMap,
        key: &[u8],
        value: ValueArg<'_, KernelMap>,
        flags: u64,
    ) -> Result<(), Errno> {
        match value {
            ValueArg::Bytes(b) => map.update(key, b, flags),
            ValueArg::Fd(arg) => map.update(key, &(self.raw_fd(&arg) as u32).to_ne_bytes(), flags),
        }
        .map_err(errno_of)
    }

    fn delete(&mut self, map: &KernelMap, key: &[u8]) -> Result<(), Errno> {
        map.delete(key).map_err(errno_of)
    }

    fn delete_with_value_field(
        &mut self,
        map: &KernelMap,
        key: &[u8],
        value_field: u64,
    ) -> Result<(), Errno> {
        map.delete_with_fields(key, value_field, 0)
            .map_err(errno_of)
    }

    fn get_next_key(&mut self, map: &KernelMap, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        map.get_next_key(key).map_err(errno_of)
    }

    fn map_id(&mut self, map: &KernelMap) -> Result<u32, Errno> {
        Ok(map.id())
    }

    fn close(&mut self, map: KernelMap) {
        drop(map);
    }
}

mod table;
pub use table::errno_table;

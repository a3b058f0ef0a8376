//! Pinned state: what kbpf keeps in its bpffs directory between invocations.
//!
//! The directory given by `--bpffs DIR` (default [`default_bpffs`]) plays `/sys/fs/bpf`. It
//! holds:
//! - one placeholder file per pin, at the pin's path (so `ls` shows the pins and `rm` unpins,
//!   as on bpffs); its content names the object (`kbpf map 3`) but is never trusted;
//! - [`STATE_FILE`], a versioned JSON document ([`State`]) with every persisted map: its
//!   attributes, its id, its pins, its contents, and for map-of-maps the inner template's
//!   attributes and the slots (as map ids of other records — an inner map persists while a
//!   persisted outer holds it, pinned or not). `progs` is reserved for pinned programs and kept
//!   verbatim by this version; the one rule already fixed is that a program record's
//!   `map_ids` array (kbpf map ids) keeps those maps alive and persisted
//!   ([`crate::session::prog_map_ids`]), as a loaded program's `used_maps` do in the kernel;
//! - BTF objects ([`BtfRecord`]: id, blob, the pinned programs loaded with it) held by
//!   persisted maps (`btf_id`, `btf_key_type_id`, `btf_value_type_id`) or pinned programs;
//! - [`LOCK_FILE`], locked with `flock` for the whole invocation: shared by read-only
//!   commands, exclusive by anything that may write, so concurrent kbpf processes serialise;
//! - writes go to a temporary file that is fsync-ed and renamed over [`STATE_FILE`] (then the
//!   directory is fsync-ed), so a crash leaves either the old or the new state, never a mix.
//!
//! A pin whose placeholder file was removed is dropped when the state is loaded.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state document's file name inside the bpffs directory.
pub const STATE_FILE: &str = ".kbpf-state.json";
/// The lock file's name inside the bpffs directory.
pub const LOCK_FILE: &str = ".kbpf-state.lock";
/// Prefix of temporary state files (`.kbpf-state.json.tmp.PID`).
pub const TMP_PREFIX: &str = ".kbpf-state.json.tmp.";
/// The state format this kbpf writes.
pub const FORMAT_VERSION: u32 = 1;
/// Test hook: milliseconds to sleep after the temporary state file is written and synced,
/// before it is renamed into place (the crash test kills kbpf in that window).
pub const PAUSE_ENV: &str = "KBPF_DEBUG_PAUSE_BEFORE_RENAME_MS";

/// The state document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The next map id to hand out (ids of persisted maps stay stable across invocations).
    pub next_map_id: u32,
    /// Persisted maps, by increasing id.
    pub maps: Vec<MapRecord>,
    /// Reserved for pinned programs (`prog load/loadall`); kept verbatim by this version.
    #[serde(default)]
    pub progs: Vec<serde_json::Value>,
    /// The next BTF object id (0 in states written before BTF objects existed: start at 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_btf_id: u32,
    /// BTF objects persisted maps and pinned programs hold, by increasing id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub btfs: Vec<BtfRecord>,
    /// The daemon's journal records up to this sequence number are included in this state
    /// (a checkpoint); replay starts after it (see `crate::session::journal`).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub journal_seq: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One persisted BTF object: the blob as loaded (so `btf dump id N` and typed map dumps do
/// not depend on the object file staying as it was) and the pinned programs that carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtfRecord {
    /// kbpf BTF id.
    pub id: u32,
    /// The blob (header, types, strings), hex.
    pub data: String,
    /// Pinned programs (record ids) loaded with this BTF.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prog_ids: Vec<u32>,
}

/// One persisted map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MapRecord {
    /// kbpf map id.
    pub id: u32,
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// Name.
    pub name: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Permanent map flags.
    pub map_flags: u32,
    /// Pin paths relative to the bpffs directory (`dir/outer` for `/sys/fs/bpf/dir/outer`).
    #[serde(default)]
    pub pins: Vec<String>,
    /// Map-of-maps: the attributes of the inner template the map was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_template: Option<TemplateRecord>,
    /// Data maps: the elements (as user space reads them; all-zero array slots omitted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<Element>,
    /// Map-of-maps: the occupied slots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inner_maps: Vec<Slot>,
    /// PROG_ARRAY: the occupied slots, by pinned program id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prog_slots: Vec<ProgSlot>,
    /// The BTF object's kbpf id (0: no BTF).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub btf_id: u32,
    /// `btf_key_type_id`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub btf_key_type_id: u32,
    /// `btf_value_type_id`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub btf_value_type_id: u32,
    /// `BPF_MAP_FREEZE` was done (libbpf freezes `.rodata*`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
}

/// One occupied PROG_ARRAY slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgSlot {
    /// Key bytes, hex.
    pub key: String,
    /// The program's kbpf id (a pinned program record's `id`).
    pub prog_id: u32,
}

/// The attributes of an inner-map template (what `inner_map_meta` copies).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRecord {
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Permanent map flags.
    pub map_flags: u32,
}

/// One element: key and value in lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// Key bytes, hex.
    pub key: String,
    /// Value bytes, hex (all CPUs' values for per-CPU maps).
    pub value: String,
}

/// One map-of-maps slot: key in hex, and the id of the inner map's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Key bytes, hex.
    pub key: String,
    /// The inner map's record id.
    pub map_id: u32,
}

/// Errors of the state layer.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O on the bpffs directory.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The state file does not parse.
    #[error("corrupt state file ({path}): {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        detail: String,
    },
    /// Written by a newer kbpf.
    #[error(
        "state file ({path}) has format version {found}, this kbpf reads up to {FORMAT_VERSION}"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The bpffs directory when `--bpffs` is not given: `$KBPF_BPFFS`, else
/// `$XDG_RUNTIME_DIR/kbpf/bpffs`, else `/tmp/kbpf-$UID/bpffs`.
pub fn default_bpffs() -> PathBuf {
    if let Some(d) = std::env::var_os("KBPF_BPFFS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("kbpf").join("bpffs");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/kbpf-{uid}/bpffs"))
}

/// An `flock` on [`LOCK_FILE`], released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    /// Whether the lock is exclusive.
    pub exclusive: bool,
}

/// Creates `dir` if needed and locks it (blocking until the lock is granted).
pub fn lock(dir: &Path, exclusive: bool) -> Result<Lock, StateError> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    flock_dir(dir, op).map(|l| l.expect("a blocking flock never would-block"))
}

/// Takes the lock without waiting: `None` when another process holds it in a conflicting mode.
pub fn try_lock(dir: &Path, exclusive: bool) -> Result<Option<Lock>, StateError> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    flock_dir(dir, op | libc::LOCK_NB)
}

/// Takes the exclusive lock without waiting: `None` when another process holds it (a daemon
/// owns the directory for its lifetime).
pub fn try_lock_exclusive(dir: &Path) -> Result<Option<Lock>, StateError> {
    flock_dir(dir, libc::LOCK_EX | libc::LOCK_NB)
}

/// `flock(op)` on [`LOCK_FILE`] of `dir` (created if needed); `None` when `op` has
/// `LOCK_NB` and the lock is held elsewhere.
fn flock_dir(dir: &Path, op: i32) -> Result<Option<Lock>, StateError> {
    fs::create_dir_all(dir).map_err(io_err("create bpffs directory", dir))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    loop {
        // SAFETY: a valid open descriptor; flock has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Some(Lock {
                _file: file,
                exclusive: op & libc::LOCK_EX != 0,
            }));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock if op & libc::LOCK_NB != 0 => return Ok(None),
            _ => return Err(io_err("lock", &path)(e)),
        }
    }
}

/// Reads the state (an empty state when there is no state file yet). Call with a [`Lock`] held.
pub fn load(dir: &Path) -> Result<State, StateError> {
    let path = dir.join(STATE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(State {
                version: FORMAT_VERSION,
                next_map_id: 1,
                ..State::default()
            });
        }
        Err(e) => return Err(io_err("read state file", &path)(e)),
    };
    let st: State = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if st.version > FORMAT_VERSION {
        return Err(StateError::TooNew {
            path,
            found: st.version,
        });
    }
    Ok(st)
}

/// Writes the state atomically: temporary file, fsync, rename over [`STATE_FILE`], fsync of
/// the directory. Call with an exclusive [`Lock`] held. Temporary files left by processes that
/// died mid-write are removed first.
pub fn save(dir: &Path, st: &State) -> Result<(), StateError> {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let tmp = dir.join(format!("{TMP_PREFIX}{}", std::process::id()));
    let mut text = serde_json::to_string_pretty(st).map_err(|e| StateError::Corrupt {
        path: tmp.clone(),
        detail: e.to_string(),
    })?;
    text.push('\n');
    {
        let mut f = File::create(&tmp).map_err(io_err("create temporary state file", &tmp))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err("write temporary state file", &tmp))?;
    }
    if let Some(ms) = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let path = dir.join(STATE_FILE);
    fs::rename(&tmp, &path).map_err(io_err("rename state file", &path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync bpffs directory", dir))?;
    Ok(())
}

/// Lowercase hex of `b`.
pub fn to_hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = String::with_capacity(b.len() * 2);
    for x in b {
        t.push(HEX[(x >> 4) as usize] as char);
        t.push(HEX[(x & 15) as usize] as char);
    }
    t
}

/// Bytes of a hex string (`None` when malformed).
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let d =
            std::env::temp_dir().join(format!("kbpf-pinned-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample() -> State {
        State {
            version: FORMAT_VERSION,
            next_map_id: 4,
            maps: vec![
                MapRecord {
                    id: 1,
                    map_type: 13,
                    name: "outer".into(),
                    key_size: 4,
                    value_size: 4,
                    max_entries: 8,
                    pins: vec!["t/outer".into()],
                    inner_template: Some(TemplateRecord {
                        map_type: 2,
                        key_size: 4,
                        value_size: 4,
                        max_entries: 3,
                        map_flags: 0x1000,
                    }),
                    inner_maps: vec![Slot {
                        key: "01000000".into(),
                        map_id: 3,
                    }],
                    ..MapRecord::default()
                },
                MapRecord {
                    id: 3,
                    map_type: 2,
                    name: "in5".into(),
                    key_size: 4,
                    value_size: 4,
                    max_entries: 5,
                    map_flags: 0x1000,
                    elements: vec![Element {
                        key: "01000000".into(),
                        value: "07000000".into(),
                    }],
                    ..MapRecord::default()
                },
            ],
            progs: vec![serde_json::json!({"id": 1, "future": true})],
            next_btf_id: 2,
            btfs: vec![BtfRecord {
                id: 1,
                data: "9feb0100".into(),
                prog_ids: vec![1],
            }],
            journal_seq: 7,
        }
    }

    #[test]
    fn empty_dir_is_empty_state() {
        let d = tmpdir("empty");
        let st = load(&d).unwrap();
        assert_eq!(st.version, FORMAT_VERSION);
        assert_eq!(st.next_map_id, 1);
        assert!(st.maps.is_empty() && st.progs.is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn round_trip_keeps_everything_including_progs() {
        let d = tmpdir("rt");
        let _l = lock(&d, true).unwrap();
        save(&d, &sample()).unwrap();
        assert_eq!(load(&d).unwrap(), sample());
        // No temporary file is left behind.
        let names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TMP_PREFIX)),
            "{names:?}"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stale_temp_files_do_not_count_and_are_cleaned() {
        let d = tmpdir("stale");
        save(&d, &sample()).unwrap();
        let stale = d.join(format!("{TMP_PREFIX}99999"));
        fs::write(&stale, "{ half a docu").unwrap();
        assert_eq!(load(&d).unwrap(), sample());
        save(&d, &sample()).unwrap();
        assert!(!stale.exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupt_and_future_files_are_refused() {
        let d = tmpdir("bad");
        fs::write(d.join(STATE_FILE), "{ not json").unwrap();
        assert!(matches!(load(&d), Err(StateError::Corrupt { .. })));
        let mut st = sample();
        st.version = FORMAT_VERSION + 1;
        save(&d, &st).unwrap();
        assert!(
            matches!(load(&d), Err(StateError::TooNew { found, .. }) if found == FORMAT_VERSION + 1)
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn exclusive_lock_excludes_other_processes_lock() {
        // flock locks belong to the open file description: a second open in the same process
        // conflicts just as another process would.
        let d = tmpdir("lock");
        let held = lock(&d, true).unwrap();
        let f = File::open(d.join(LOCK_FILE)).unwrap();
        // SAFETY: valid descriptor.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        assert_eq!(r, -1, "shared lock granted while exclusive is held");
        drop(held);
        // SAFETY: valid descriptor.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        assert_eq!(r, 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0, 0xab, 7]), "00ab07");
        assert_eq!(from_hex("00ab07"), Some(vec![0, 0xab, 7]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }
}

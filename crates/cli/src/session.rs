//! A [`Session`]: one kbpf process's view of a bpffs directory — its options, its live maps
//! under kbpf's own ids, its programs and BTF objects, and the pinned state
//! ([`crate::pinned`]), loaded on first use under a lock held until the session ends — and
//! a [`Reply`], what one command prints (stdout and stderr, the JSON form) and returns.
//! Commands are dispatched by [`crate::bpftool`].
//!
//! Every object's state is kept here, below the modules whose commands act on it, so that
//! the session (its garbage collection, pins and state writes need to see all of it) names
//! none of them. Its parts:
//! - `programs`: live programs ([`LiveProg`], [`Origin`]) and their state records;
//! - `btf_table`: the BTF objects ([`BtfTable`]) and how programs are tied to them;
//! - `net_context`: what a daemon lends a command for `net` and `prog run` ([`NetContext`]);
//! - [`journal`]: where commits go when a daemon owns the directory;
//! - `pins`: pin files, and user paths resolved inside the bpffs directory;
//! - `reply`: [`Reply`], what a command prints and returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use kbpf_maps::{Map, MapAttr, MapType};

use crate::pinned::{self, Element, Lock, MapRecord, Slot, State, TemplateRecord};

mod btf_table;
pub mod journal;
mod net_context;
mod pins;
mod programs;
mod reply;

pub use btf_table::{BtfEntry, BtfTable};
pub use net_context::NetContext;
pub(crate) use programs::origin_from_record;
pub use programs::{LiveProg, Origin};
pub use reply::{Reply, strerror};

/// The path bpftool batch files use for bpffs; it is resolved inside `--bpffs DIR`.
pub const SYS_BPFFS: &str = "/sys/fs/bpf";

/// Global options (`kbpf [--bpffs DIR] [-j] [-p] [-d]`).
#[derive(Clone, Debug)]
pub struct Options {
    /// The directory playing `/sys/fs/bpf`.
    pub bpffs: PathBuf,
    /// `-j`: JSON output.
    pub json: bool,
    /// `-p`: pretty JSON (implies `-j`).
    pub pretty: bool,
    /// `-d`: debug notes on stderr (state loads and saves).
    pub debug: bool,
    /// The kernel kbpf follows (`--kernel`, `--kernel-btf`): map layouts and `memlock`,
    /// verifier messages, the rewrite.
    pub profile: kbpf_profile::KernelProfile,
}

/// A live map of the session.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The map.
    pub map: Map,
    /// Pin paths relative to the bpffs directory.
    pub pins: Vec<String>,
    /// Map-of-maps: the template's attributes.
    pub template: Option<TemplateRecord>,
}

/// One kbpf process's view: options, maps, pinned state.
pub struct Session {
    /// Global options.
    pub opts: Options,
    lock: Option<Lock>,
    /// Maps by kbpf id.
    maps: BTreeMap<u32, Entry>,
    /// kbpf-maps' own id → kbpf id (outer maps read back inner maps by kbpf-maps id).
    by_kid: HashMap<u32, u32>,
    next_id: u32,
    progs: Vec<serde_json::Value>,
    dirty: bool,
    pub(crate) in_batch: bool,
    /// Live programs by kbpf id ([`crate::prog`]).
    pub(crate) live_progs: BTreeMap<u32, LiveProg>,
    /// The pinned programs' records were rebuilt into `live_progs`.
    pub(crate) progs_restored: bool,
    /// The next program id.
    pub(crate) next_prog_id: u32,
    /// PROG_ARRAY slots read from the state, by map id, written back once the programs
    /// they name are rebuilt ([`crate::prog::restore_all`]).
    pub(crate) pending_prog_slots: BTreeMap<u32, Vec<(Vec<u8>, u32)>>,
    /// BTF objects by kbpf id ([`crate::btf`]).
    pub(crate) btfs: BtfTable,
    /// What the command wrote for stderr besides its reply (debug notes, libbpf-style lines):
    /// printed before the reply, or sent back by the daemon.
    pub(crate) notes: String,
    /// The client's stdin, when the daemon runs a command that reads it (`-` as a file).
    pub(crate) stdin: Option<Vec<u8>>,
    /// Daemon: the device attachments and the client `net` commands act for.
    pub(crate) net: Option<NetContext>,
    /// Daemon mode: where committed changes go instead of a whole-state write.
    pub(crate) journal: Option<journal::Journal>,
    /// Element changes since the last commit (journal mode).
    pub(crate) changes: Vec<Change>,
    /// Something beyond element contents changed since the last commit: maps, pins,
    /// programs, BTF objects (the journal compares them then).
    meta_dirty: bool,
    /// Something may have become unreachable since the last commit (garbage collection).
    gc_needed: bool,
    /// Daemon: a map-of-maps slot changed, so an inner map may have lost its last holder.
    /// Collected within the daemon's next tick or before the next command that lists
    /// objects ([`Session::collect_pending_garbage`]), as the kernel frees a replaced inner
    /// map after a grace period, not inside the update.
    slot_gc_pending: bool,
    /// The directories holding pins (recomputed after object changes).
    pin_dir_set: Option<HashSet<PathBuf>>,
    /// Contents changed since the last checkpoint (journal mode: element changes the journal
    /// does not carry, such as a program's writes).
    pub(crate) contents_dirty: bool,
    /// Maps held by daemon connections (as fds hold them): id → holders.
    pub(crate) held: HashMap<u32, u32>,
    /// Directories holding pins, with their modification time when last checked
    /// ([`Session::refresh_pins`]).
    pin_dirs: HashMap<PathBuf, std::time::SystemTime>,
}

/// One element-level change a command made, for the journal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    /// The element at `key` of map `map` was written or deleted.
    Elem {
        /// Map id.
        map: u32,
        /// Key.
        key: Vec<u8>,
    },
    /// Any part of map `map`'s contents changed (queue push/pop).
    Contents {
        /// Map id.
        map: u32,
    },
}

impl Session {
    /// A session; the pinned state is loaded at the first command that needs it.
    pub fn new(opts: Options) -> Session {
        Session {
            opts,
            lock: None,
            maps: BTreeMap::new(),
            by_kid: HashMap::new(),
            next_id: 1,
            progs: Vec::new(),
            dirty: false,
            in_batch: false,
            live_progs: BTreeMap::new(),
            progs_restored: false,
            next_prog_id: 1,
            pending_prog_slots: BTreeMap::new(),
            btfs: BtfTable::default(),
            notes: String::new(),
            stdin: None,
            net: None,
            journal: None,
            changes: Vec::new(),
            meta_dirty: false,
            gc_needed: false,
            slot_gc_pending: false,
            pin_dir_set: None,
            contents_dirty: false,
            held: HashMap::new(),
            pin_dirs: HashMap::new(),
        }
    }

    /// Adds text for stderr (printed before the reply).
    pub fn note(&mut self, text: &str) {
        self.notes.push_str(text);
    }

    fn debug(&mut self, msg: &str) {
        if self.opts.debug {
            self.notes.push_str(&format!("kbpf: {msg}\n"));
        }
    }

    /// Takes the stderr notes gathered so far.
    pub fn take_notes(&mut self) -> String {
        std::mem::take(&mut self.notes)
    }

    /// The bytes of `-` as an input file: the client's stdin (daemon), else this process's.
    pub fn read_stdin(&mut self) -> std::io::Result<Vec<u8>> {
        if let Some(b) = self.stdin.take() {
            return Ok(b);
        }
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        Ok(v)
    }

    /// Locks and loads the pinned state (once). `exclusive` is needed to write it back; a
    /// session that loaded with a shared lock never writes.
    pub fn load(&mut self, exclusive: bool) -> Result<(), Reply> {
        if self.lock.is_some() {
            return Ok(());
        }
        let dir = self.opts.bpffs.clone();
        // A daemon holds the lock for its whole life: say so instead of waiting for it.
        let lock = match pinned::try_lock(&dir, exclusive) {
            Ok(Some(l)) => l,
            Ok(None) if kbpf_client::Client::connect(&dir).is_ok() => {
                return Err(Reply::err(
                    format!(
                        "{} is owned by its kbpf daemon: run without KBPF_DAEMON=off, or stop it first (kbpf daemon stop)",
                        dir.display()
                    ),
                    -16,
                ));
            }
            Ok(None) => pinned::lock(&dir, exclusive).map_err(|e| Reply::err(e.to_string(), -1))?,
            Err(e) => return Err(Reply::err(e.to_string(), -1)),
        };
        let st = pinned::load(&dir).map_err(|e| Reply::err(e.to_string(), -1))?;
        self.debug(&format!(
            "loaded {} map(s) from {} ({} lock)",
            st.maps.len(),
            dir.join(pinned::STATE_FILE).display(),
            if exclusive { "exclusive" } else { "shared" }
        ));
        self.restore(st)
            .map_err(|e| Reply::err(format!("restoring pinned state: {e}"), -1))?;
        self.collect_garbage();
        self.lock = Some(lock);
        Ok(())
    }

    /// The daemon's load: the state file (the last checkpoint) plus the journal written since,
    /// then the journal opened for this daemon's changes. The lock is held until the daemon
    /// exits.
    pub fn load_journaled(&mut self, lock: Lock) -> Result<(), String> {
        let dir = self.opts.bpffs.clone();
        let mut st = pinned::load(&dir).map_err(|e| e.to_string())?;
        let replayed = journal::replay(&dir, &mut st)?;
        self.debug(&format!(
            "loaded {} map(s) from {} and {replayed} journal record(s)",
            st.maps.len(),
            dir.join(pinned::STATE_FILE).display()
        ));
        let journal = journal::Journal::open(&dir, &st)?;
        self.restore(st)
            .map_err(|e| format!("restoring pinned state: {e}"))?;
        self.lock = Some(lock);
        self.journal = Some(journal);
        // Objects whose pins were removed while no daemon ran are dropped now, in the
        // journal too.
        self.mark_meta();
        self.commit().map_err(|r| r.stderr)?;
        Ok(())
    }

    fn restore(&mut self, st: State) -> Result<(), String> {
        self.next_id = st.next_map_id.max(1);
        // BTF objects first: maps are created with them.
        self.btfs.restore(st.next_btf_id, &st.btfs)?;
        // A pinned program whose pins were all removed (`rm`) is freed, as on bpffs.
        self.progs = Vec::new();
        for mut rec in st.progs {
            let id = rec.get("id").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
            self.next_prog_id = self.next_prog_id.max(id + 1);
            let pins: Vec<serde_json::Value> = rec
                .get("pins")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter(|p| {
                            p.as_str()
                                .is_some_and(|p| self.opts.bpffs.join(p).is_file())
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if rec.get("pins").and_then(|v| v.as_array()).map(Vec::len) != Some(pins.len()) {
                self.mark_meta();
            }
            if pins.is_empty() {
                continue;
            }
            rec["pins"] = serde_json::Value::Array(pins);
            self.progs.push(rec);
        }
        // Data maps first, then maps-of-maps (their slots point at data maps; only one
        // level of nesting exists).
        let (outers, datas): (Vec<&MapRecord>, Vec<&MapRecord>) = st
            .maps
            .iter()
            .partition(|r| MapType::from_raw(r.map_type).is_map_in_map());
        for r in datas.into_iter().chain(outers) {
            let t = MapType::from_raw(r.map_type);
            let mut attr = MapAttr::new(t, r.key_size, r.value_size, r.max_entries)
                .flags(r.map_flags)
                .name(&r.name)
                .profile(self.opts.profile.maps);
            if r.btf_id != 0 {
                let b = self
                    .btfs
                    .get(r.btf_id)
                    .ok_or(format!("map {}: BTF object {} missing", r.id, r.btf_id))?;
                attr = attr.btf(b.obj.clone(), r.btf_key_type_id, r.btf_value_type_id);
            }
            let template = match &r.inner_template {
                Some(tr) => Some(
                    Map::create(
                        &MapAttr::new(
                            MapType::from_raw(tr.map_type),
                            tr.key_size,
                            tr.value_size,
                            tr.max_entries,
                        )
                        .flags(tr.map_flags)
                        .profile(self.opts.profile.maps),
                        None,
                    )
                    .map_err(|e| e.to_string())?,
                ),
                None => None,
            };
            let map = Map::create(&attr, template.as_ref()).map_err(|e| e.to_string())?;
            for e in &r.elements {
                let (Some(k), Some(v)) = (pinned::from_hex(&e.key), pinned::from_hex(&e.value))
                else {
                    return Err(format!("map {}: bad hex element", r.id));
                };
                map.update_elem(&k, &v, 0).map_err(|e| e.to_string())?;
            }
            let slots: Vec<(Vec<u8>, u32)> = r
                .prog_slots
                .iter()
                .filter_map(|p| pinned::from_hex(&p.key).map(|k| (k, p.prog_id)))
                .collect();
            if !slots.is_empty() {
                self.pending_prog_slots.insert(r.id, slots);
            }
            for s in &r.inner_maps {
                let k = pinned::from_hex(&s.key).ok_or(format!("map {}: bad hex key", r.id))?;
                let inner = self
                    .maps
                    .get(&s.map_id)
                    .ok_or(format!("map {}: inner map {} missing", r.id, s.map_id))?;
                map.update_inner_map(&k, &inner.map, 0)
                    .map_err(|e| e.to_string())?;
            }
            if r.frozen {
                map.freeze().map_err(|e| e.to_string())?;
            }
            let before = r.pins.len();
            let pins: Vec<String> = r
                .pins
                .iter()
                .filter(|p| self.opts.bpffs.join(p).is_file())
                .cloned()
                .collect();
            if pins.len() != before {
                self.mark_meta();
            }
            self.by_kid.insert(map.id(), r.id);
            self.next_id = self.next_id.max(r.id + 1);
            self.maps.insert(
                r.id,
                Entry {
                    map,
                    pins,
                    template: r.inner_template.clone(),
                },
            );
        }
        Ok(())
    }

    /// Adds a newly created map under a new kbpf id.
    pub fn add_map(&mut self, map: Map, template: Option<TemplateRecord>) -> u32 {
        if let Some((b, _, _)) = map.btf() {
            self.btfs.register(b);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_kid.insert(map.id(), id);
        self.maps.insert(
            id,
            Entry {
                map,
                pins: Vec::new(),
                template,
            },
        );
        self.mark_meta();
        id
    }

    /// The map with kbpf id `id`.
    pub fn map(&self, id: u32) -> Option<&Entry> {
        self.maps.get(&id)
    }

    /// All maps by kbpf id.
    pub fn maps(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.maps.iter().map(|(k, v)| (*k, v))
    }

    /// The kbpf id of a map (translating kbpf-maps' id, e.g. read from an outer map slot).
    pub fn id_of_kid(&self, kid: u32) -> Option<u32> {
        self.by_kid.get(&kid).copied()
    }

    /// The kbpf id of a live map handle.
    pub fn id_of(&self, m: &Map) -> Option<u32> {
        self.id_of_kid(m.id())
    }

    /// Marks the state as changed (saved at the end of the command): objects, pins,
    /// programs, anything beyond one element.
    pub fn touch(&mut self) {
        self.mark_meta();
    }

    fn mark_meta(&mut self) {
        self.dirty = true;
        self.meta_dirty = true;
        self.gc_needed = true;
        self.pin_dir_set = None;
    }

    /// Daemon: frees what slot changes left unheld (see `slot_gc_pending`), and journals it.
    pub fn collect_pending_garbage(&mut self) -> Result<(), Reply> {
        if !self.slot_gc_pending {
            return Ok(());
        }
        self.slot_gc_pending = false;
        self.mark_meta();
        self.commit()
    }

    /// Records an element-level change (`map update`, `delete`, `push`, `pop`).
    pub fn record_change(&mut self, c: Change) {
        self.dirty = true;
        self.contents_dirty = true;
        let map = match &c {
            Change::Elem { map, .. } | Change::Contents { map } => *map,
        };
        // A slot of a map-of-maps may have been the last holder of an inner map.
        if self
            .maps
            .get(&map)
            .is_some_and(|e| e.map.map_type().is_map_in_map())
        {
            if self.journal.is_some() {
                self.slot_gc_pending = true;
            } else {
                self.gc_needed = true;
            }
        }
        if self.journal.is_some() {
            self.changes.push(c);
        }
    }

    /// Marks contents as changed in ways no element record describes (a program ran and may
    /// have written its maps): saved whole, or at the daemon's next checkpoint.
    pub fn touch_contents(&mut self) {
        self.dirty = true;
        self.contents_dirty = true;
    }

    /// Pinned programs' records (reserved for the prog commands), kept verbatim.
    pub fn prog_records(&mut self) -> &mut Vec<serde_json::Value> {
        &mut self.progs
    }

    /// The ids of the pinned programs' records.
    pub fn pinned_prog_ids(&self) -> HashSet<u32> {
        self.progs
            .iter()
            .filter_map(|r| r.get("id").and_then(|v| v.as_u64()))
            .filter_map(|id| u32::try_from(id).ok())
            .collect()
    }

    /// The maps reachable from pins (pinned maps and the inner maps their slots hold).
    fn reachable(&self) -> HashSet<u32> {
        let mut keep: HashSet<u32> = HashSet::new();
        let mut stack: Vec<u32> = self
            .maps
            .iter()
            .filter(|(_, e)| !e.pins.is_empty())
            .map(|(id, _)| *id)
            .collect();
        // Maps bound to pinned programs: each `progs` record lists them in `map_ids`.
        stack.extend(self.progs.iter().flat_map(prog_map_ids));
        // Maps a daemon connection holds, as an open fd holds a map.
        stack.extend(self.held.keys().copied());
        while let Some(id) = stack.pop() {
            if !keep.insert(id) {
                continue;
            }
            for (_, inner) in self.inner_slots(id) {
                stack.push(inner);
            }
        }
        keep
    }

    /// The occupied slots of a map-of-maps as (key, kbpf id of the inner map).
    pub fn inner_slots(&self, id: u32) -> Vec<(Vec<u8>, u32)> {
        let Some(e) = self.maps.get(&id) else {
            return Vec::new();
        };
        if !e.map.map_type().is_map_in_map() {
            return Vec::new();
        }
        e.map
            .keys()
            .into_iter()
            .filter_map(|k| {
                let v = e.map.lookup_elem(&k).ok()?;
                let kid = u32::from_ne_bytes(v.get(..4)?.try_into().ok()?);
                Some((k, self.id_of_kid(kid)?))
            })
            .collect()
    }

    /// End of a command: drop maps nothing holds any more (as the kernel frees a map when its
    /// last fd, pin and outer reference go) and write the changes: to the daemon's journal, or
    /// the whole state file when this process owns the directory alone. Inside a batch file
    /// this waits for the batch's end (the batch is one request: one write).
    pub fn commit(&mut self) -> Result<(), Reply> {
        if self.in_batch {
            return Ok(());
        }
        if self.gc_needed {
            self.collect_garbage();
            self.gc_needed = false;
            self.slot_gc_pending = false;
        }
        if let Some(mut j) = self.journal.take() {
            let r = j.commit(self);
            self.journal = Some(j);
            self.changes.clear();
            self.meta_dirty = false;
            self.dirty = false;
            return r.map_err(|e| Reply::err(format!("writing the journal: {e}"), -1));
        }
        self.changes.clear();
        self.meta_dirty = false;
        if !self.dirty {
            return Ok(());
        }
        let Some(lock) = &self.lock else {
            return Ok(());
        };
        if !lock.exclusive {
            return Ok(());
        }
        let st = self.snapshot();
        pinned::save(&self.opts.bpffs, &st).map_err(|e| Reply::err(e.to_string(), -1))?;
        self.debug(&format!("saved {} map(s)", st.maps.len()));
        self.dirty = false;
        Ok(())
    }

    /// Whether anything beyond element contents changed since the last commit.
    pub(crate) fn meta_dirty(&self) -> bool {
        self.meta_dirty
    }

    /// Drops the maps nothing holds and the BTF objects no map or program holds (tying new
    /// programs to their BTF first). Also right after the state is loaded, so that objects
    /// whose pins were removed are gone for read-only commands too.
    fn collect_garbage(&mut self) {
        let keep = self.reachable();
        let before = self.maps.len();
        self.maps.retain(|id, _| keep.contains(id));
        if self.maps.len() != before {
            let live: HashSet<u32> = self.maps.values().map(|e| e.map.id()).collect();
            self.by_kid.retain(|kid, _| live.contains(kid));
        }
        // BTF objects: tie new programs to theirs, then free what nothing holds.
        let mut btf_changed = self.btfs.link_programs(&self.live_progs);
        let map_kids: HashSet<u32> = self
            .maps
            .values()
            .filter_map(|e| e.map.btf().map(|(b, _, _)| b.id()))
            .collect();
        let mut alive = self.pinned_prog_ids();
        alive.extend(self.live_progs.keys().copied());
        btf_changed |= self.btfs.gc(&map_kids, &alive);
        if btf_changed {
            self.mark_meta();
        }
    }

    /// The state record of map `id`: attributes, pins, template, BTF, and its contents
    /// (elements, map-of-maps slots as map ids, PROG_ARRAY slots as program ids).
    pub fn map_record(&self, id: u32) -> Option<MapRecord> {
        let e = self.maps.get(&id)?;
        let m = &e.map;
        let t = m.map_type();
        let mut rec = MapRecord {
            id,
            map_type: t.raw(),
            name: m.name().to_string(),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            map_flags: m.map_flags(),
            pins: e.pins.clone(),
            inner_template: e.template.clone(),
            frozen: m.is_frozen(),
            ..MapRecord::default()
        };
        if let Some((b, key, value)) = m.btf()
            && let Some(btf_id) = self.btfs.id_of(b)
        {
            rec.btf_id = btf_id;
            rec.btf_key_type_id = key;
            rec.btf_value_type_id = value;
        }
        if t.is_map_in_map() {
            rec.inner_maps = self
                .inner_slots(id)
                .into_iter()
                .map(|(k, map_id)| Slot {
                    key: pinned::to_hex(&k),
                    map_id,
                })
                .collect();
        } else if t == MapType::ProgArray {
            // Slots not written back yet (their programs were not rebuilt this session)
            // stay as they were; live slots are read back as program ids.
            let slots: Vec<(Vec<u8>, u32)> = match self.pending_prog_slots.get(&id) {
                Some(p) => p.clone(),
                None => m
                    .keys()
                    .into_iter()
                    .filter_map(|k| {
                        let v = m.lookup_elem(&k).ok()?;
                        let pid = u32::from_ne_bytes(v.get(..4)?.try_into().ok()?);
                        Some((k, pid))
                    })
                    .collect(),
            };
            rec.prog_slots = slots
                .into_iter()
                .map(|(k, prog_id)| pinned::ProgSlot {
                    key: pinned::to_hex(&k),
                    prog_id,
                })
                .collect();
        } else if !t.is_fd_array() {
            m.for_each_elem(true, |k, v| {
                rec.elements.push(Element {
                    key: pinned::to_hex(k),
                    value: pinned::to_hex(v),
                })
            });
        }
        Some(rec)
    }

    /// The state document for the current maps.
    pub fn snapshot(&self) -> State {
        let maps = self
            .maps
            .keys()
            .filter_map(|&id| self.map_record(id))
            .collect();
        let (next_btf_id, btfs) = self.btfs.records(&self.pinned_prog_ids());
        State {
            version: pinned::FORMAT_VERSION,
            next_map_id: self.next_id,
            maps,
            progs: self.progs.clone(),
            next_btf_id,
            btfs,
            journal_seq: 0,
        }
    }

    /// The next map id.
    pub(crate) fn next_map_id(&self) -> u32 {
        self.next_id
    }

    /// The pinned programs' records.
    pub(crate) fn progs(&self) -> &[serde_json::Value] {
        &self.progs
    }

    /// Prints a reply the way bpftool does outside batch mode.
    pub fn print(&self, r: &Reply) {
        r.print(self.opts.json, self.opts.pretty);
    }
}

/// The map ids a pinned program's state record holds (its `map_ids` array): the maps stay
/// alive while the program is pinned, as the kernel's `used_maps` keep them.
pub fn prog_map_ids(rec: &serde_json::Value) -> Vec<u32> {
    rec.get("map_ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_live_while_pinned_held_or_bound_to_a_pinned_prog() {
        let dir = std::env::temp_dir().join(format!(
            "kbpf-gc-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let mut s = Session::new(Options {
            bpffs: dir.clone(),
            json: false,
            pretty: false,
            debug: false,
            profile: kbpf_profile::KernelProfile::builtin(),
        });
        s.load(true).unwrap();
        let mk = || Map::create(&MapAttr::new(MapType::Array, 4, 4, 1), None).unwrap();
        let pinned = s.add_map(mk(), None);
        let bound = s.add_map(mk(), None);
        let loose = s.add_map(mk(), None);
        s.pin_map(pinned, "/sys/fs/bpf/p").unwrap();
        s.prog_records()
            .push(serde_json::json!({"id": 1, "pins": ["prog"], "map_ids": [bound]}));
        s.commit().unwrap();
        assert!(s.map(pinned).is_some() && s.map(bound).is_some());
        assert!(s.map(loose).is_none(), "an unreferenced map survived");
        let st = pinned::load(&dir).unwrap();
        let ids: Vec<u32> = st.maps.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![pinned, bound]);
        assert_eq!(st.progs.len(), 1);
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

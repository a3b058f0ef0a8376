//! The daemon's journal: what makes acknowledged changes survive `kill -9` without rewriting
//! the whole state for every command. It is the session's: [`Session::commit`] writes
//! to it instead of the state file when a daemon owns the directory, and reads the
//! session's objects to find what changed; the daemon ([`crate::daemon`]) only opens it
//! and asks for checkpoints.
//!
//! The state file ([`crate::pinned::STATE_FILE`]) is the last *checkpoint*: every object and
//! every element, written atomically. Between checkpoints each committed request appends one
//! line to [`JOURNAL_FILE`]: `{"seq": N, "ops": [...]}`, written with one `write(2)` before
//! the reply is sent.
//! - Object-level operations (maps created pinned, [`Op::DelMap`], pins, programs, BTF
//!   objects) are `fdatasync`ed before the reply: an acknowledged create, pin or delete
//!   survives even a power loss. A map created unpinned (through the API) is not synced:
//!   until something pins it or an outer map holds it, a restart frees it anyway.
//! - Element operations from user space ([`Op::Set`], [`Op::Del`], slots) are written but not
//!   synced. A killed daemon loses nothing (the data is in the kernel's page cache); a power
//!   loss may lose them back to the last sync.
//! - Writes programs make to their maps are in no journal record: they are kept as of the
//!   last checkpoint (on clean stop, and every [`crate::daemon::CHECKPOINT_ENV`] seconds).
//!
//! At start, [`replay`] applies the lines after the checkpoint's `journal_seq` to the state
//! document, before it is turned into live objects. A line cut short by a kill (no newline,
//! or JSON that does not parse, at the end) was never acknowledged and is ignored. A checkpoint
//! writes the state with the last sequence number and then empties the journal; a kill
//! between the two leaves lines the replay skips by their numbers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kbpf_maps::MapType;
use serde::{Deserialize, Serialize};

use super::{Change, Session};
use crate::pinned::{self, BtfRecord, Element, MapRecord, ProgSlot, Slot, State};

/// The journal's file name inside the bpffs directory.
pub const JOURNAL_FILE: &str = ".kbpf-journal";

/// One journalled operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A map appeared: its whole record, contents included.
    PutMap {
        /// The record.
        rec: MapRecord,
    },
    /// A map was freed.
    DelMap {
        /// Map id.
        id: u32,
    },
    /// A map's pins changed.
    Pins {
        /// Map id.
        id: u32,
        /// Its pins now.
        pins: Vec<String>,
    },
    /// A map was frozen.
    Frozen {
        /// Map id.
        id: u32,
    },
    /// The pinned programs' records changed (the whole list: there are few).
    Progs {
        /// The records.
        records: Vec<serde_json::Value>,
    },
    /// A BTF object appeared or changed.
    PutBtf {
        /// The record.
        rec: BtfRecord,
    },
    /// A BTF object was freed.
    DelBtf {
        /// BTF id.
        id: u32,
    },
    /// The id counters.
    NextIds {
        /// Next map id.
        map: u32,
        /// Next BTF id.
        btf: u32,
    },
    /// An element of a data map now has this value.
    Set {
        /// Map id.
        map: u32,
        /// Key, hex.
        key: String,
        /// Value, hex.
        value: String,
    },
    /// An element of a data map is gone.
    Del {
        /// Map id.
        map: u32,
        /// Key, hex.
        key: String,
    },
    /// A map-of-maps slot now holds this inner map (or nothing).
    Slot {
        /// Outer map id.
        map: u32,
        /// Key, hex.
        key: String,
        /// Inner map id.
        inner: Option<u32>,
    },
    /// A PROG_ARRAY slot now holds this program (or nothing).
    ProgSlot {
        /// Map id.
        map: u32,
        /// Key, hex.
        key: String,
        /// Program id.
        prog: Option<u32>,
    },
    /// A map's whole contents (queues and stacks, whose elements have no keys).
    Contents {
        /// Map id.
        map: u32,
        /// Its elements.
        elements: Vec<Element>,
    },
}

/// One journal line: the changes of one request.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    seq: u64,
    ops: Vec<Op>,
}

/// The journal of a running daemon, and what it has recorded so far (to compare the
/// session against at each commit).
pub struct Journal {
    file: File,
    path: PathBuf,
    seq: u64,
    /// Journal lines and bytes since the last checkpoint.
    pub records: u64,
    /// See `records`.
    pub bytes: u64,
    /// When the last checkpoint was written.
    pub last_checkpoint: Instant,
    /// Maps as journalled: pins and whether frozen.
    maps: HashMap<u32, (Vec<String>, bool)>,
    progs: Vec<serde_json::Value>,
    btfs: BTreeMap<u32, BtfRecord>,
    next_ids: (u32, u32),
}

impl Journal {
    /// Opens (creates) the journal after `st`, the state as loaded and replayed.
    pub fn open(dir: &Path, st: &State) -> Result<Journal, String> {
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("open journal ({}): {e}", path.display()))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Journal {
            file,
            path,
            seq: st.journal_seq,
            records: 0,
            bytes,
            last_checkpoint: Instant::now(),
            maps: st
                .maps
                .iter()
                .map(|r| (r.id, (r.pins.clone(), r.frozen)))
                .collect(),
            progs: st.progs.clone(),
            btfs: st.btfs.iter().map(|b| (b.id, b.clone())).collect(),
            next_ids: (st.next_map_id, st.next_btf_id),
        })
    }

    /// Appends what the session changed since the last commit; syncs when objects changed.
    pub fn commit(&mut self, s: &Session) -> io::Result<()> {
        let mut ops = Vec::new();
        let mut new_maps = HashSet::new();
        if s.meta_dirty() {
            self.object_ops(s, &mut ops, &mut new_maps);
        }
        // What must survive a power loss: pins, deletes, programs, BTF objects, and maps
        // created pinned. A map created unpinned lives only while a connection or an outer
        // map holds it; until then a restart would free it anyway.
        let sync = ops.iter().any(|op| match op {
            Op::PutMap { rec } => !rec.pins.is_empty(),
            Op::NextIds { .. } => false,
            _ => true,
        });
        self.element_ops(s, &new_maps, &mut ops);
        if ops.is_empty() {
            return Ok(());
        }
        self.seq += 1;
        let mut text = serde_json::to_string(&Line { seq: self.seq, ops })
            .map_err(|e| io::Error::other(e.to_string()))?;
        text.push('\n');
        self.file.write_all(text.as_bytes())?;
        if sync {
            self.file.sync_data()?;
        }
        self.records += 1;
        self.bytes += text.len() as u64;
        Ok(())
    }

    fn object_ops(&mut self, s: &Session, ops: &mut Vec<Op>, new_maps: &mut HashSet<u32>) {
        let mut seen = HashSet::new();
        for (id, e) in s.maps() {
            seen.insert(id);
            let frozen = e.map.is_frozen();
            match self.maps.get_mut(&id) {
                None => {
                    if let Some(rec) = s.map_record(id) {
                        ops.push(Op::PutMap { rec });
                        new_maps.insert(id);
                    }
                    self.maps.insert(id, (e.pins.clone(), frozen));
                }
                Some((pins, was_frozen)) => {
                    if *pins != e.pins {
                        ops.push(Op::Pins {
                            id,
                            pins: e.pins.clone(),
                        });
                        *pins = e.pins.clone();
                    }
                    if frozen && !*was_frozen {
                        ops.push(Op::Frozen { id });
                        *was_frozen = true;
                    }
                }
            }
        }
        let gone: Vec<u32> = self
            .maps
            .keys()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect();
        for id in gone {
            self.maps.remove(&id);
            ops.push(Op::DelMap { id });
        }
        if s.progs() != self.progs.as_slice() {
            self.progs = s.progs().to_vec();
            ops.push(Op::Progs {
                records: self.progs.clone(),
            });
        }
        let (next_btf, btfs) = s.btfs.records(&s.pinned_prog_ids());
        let now: BTreeMap<u32, BtfRecord> = btfs.into_iter().map(|b| (b.id, b)).collect();
        for (id, b) in &now {
            if self.btfs.get(id) != Some(b) {
                ops.push(Op::PutBtf { rec: b.clone() });
            }
        }
        for id in self.btfs.keys() {
            if !now.contains_key(id) {
                ops.push(Op::DelBtf { id: *id });
            }
        }
        self.btfs = now;
        let ids = (s.next_map_id(), next_btf);
        if ids != self.next_ids {
            self.next_ids = ids;
            ops.push(Op::NextIds {
                map: ids.0,
                btf: ids.1,
            });
        }
    }

    fn element_ops(&self, s: &Session, new_maps: &HashSet<u32>, ops: &mut Vec<Op>) {
        let mut done: HashSet<&Change> = HashSet::new();
        for c in &s.changes {
            if !done.insert(c) {
                continue;
            }
            let map = match c {
                Change::Elem { map, .. } | Change::Contents { map } => *map,
            };
            // A map new in this commit went out whole; a freed one needs nothing.
            if new_maps.contains(&map) {
                continue;
            }
            let Some(e) = s.map(map) else { continue };
            let m = &e.map;
            let t = m.map_type();
            match c {
                Change::Contents { .. } => {
                    if let Some(rec) = s.map_record(map) {
                        ops.push(Op::Contents {
                            map,
                            elements: rec.elements,
                        });
                    }
                }
                Change::Elem { key, .. } => {
                    let hex = pinned::to_hex(key);
                    let value = m.lookup_elem(key).ok();
                    let id32 = |v: &[u8]| {
                        v.get(..4)
                            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
                    };
                    if t.is_map_in_map() {
                        let inner = value
                            .as_deref()
                            .and_then(id32)
                            .and_then(|kid| s.id_of_kid(kid));
                        ops.push(Op::Slot {
                            map,
                            key: hex,
                            inner,
                        });
                    } else if t == MapType::ProgArray {
                        let prog = value.as_deref().and_then(id32);
                        ops.push(Op::ProgSlot {
                            map,
                            key: hex,
                            prog,
                        });
                    } else {
                        match value {
                            Some(v) => ops.push(Op::Set {
                                map,
                                key: hex,
                                value: pinned::to_hex(&v),
                            }),
                            None => ops.push(Op::Del { map, key: hex }),
                        }
                    }
                }
            }
        }
    }

    /// Writes a checkpoint (the whole state, atomically) and empties the journal.
    pub fn checkpoint(&mut self, s: &Session, dir: &Path) -> Result<(), String> {
        let mut st = s.snapshot();
        st.journal_seq = self.seq;
        pinned::save(dir, &st).map_err(|e| e.to_string())?;
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("truncate journal ({}): {e}", self.path.display()))?;
        self.records = 0;
        self.bytes = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

/// A map record while the journal is applied: contents by key.
struct Work {
    rec: MapRecord,
    elements: BTreeMap<String, String>,
    slots: BTreeMap<String, u32>,
    prog_slots: BTreeMap<String, u32>,
}

impl Work {
    fn new(mut rec: MapRecord) -> Work {
        let elements = std::mem::take(&mut rec.elements)
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
        let slots = std::mem::take(&mut rec.inner_maps)
            .into_iter()
            .map(|s| (s.key, s.map_id))
            .collect();
        let prog_slots = std::mem::take(&mut rec.prog_slots)
            .into_iter()
            .map(|s| (s.key, s.prog_id))
            .collect();
        Work {
            rec,
            elements,
            slots,
            prog_slots,
        }
    }

    fn finish(self) -> MapRecord {
        let mut rec = self.rec;
        rec.elements = self
            .elements
            .into_iter()
            .map(|(key, value)| Element { key, value })
            .collect();
        rec.inner_maps = self
            .slots
            .into_iter()
            .map(|(key, map_id)| Slot { key, map_id })
            .collect();
        rec.prog_slots = self
            .prog_slots
            .into_iter()
            .map(|(key, prog_id)| ProgSlot { key, prog_id })
            .collect();
        rec
    }
}

/// Applies the journal's lines after `st.journal_seq` to `st`; returns how many lines were
/// applied. The last line may be cut short (a kill mid-write): it is ignored. A bad line
/// anywhere else means the journal is corrupt, and nothing is guessed.
pub fn replay(dir: &Path, st: &mut State) -> Result<u64, String> {
    let path = dir.join(JOURNAL_FILE);
    let mut text = String::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_string(&mut text)
                .map_err(|e| format!("read journal ({}): {e}", path.display()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("open journal ({}): {e}", path.display())),
    }
    let mut lines: Vec<Line> = Vec::new();
    let complete = text.ends_with('\n');
    let all: Vec<&str> = text.lines().collect();
    for (i, l) in all.iter().enumerate() {
        let last = i + 1 == all.len();
        match serde_json::from_str::<Line>(l) {
            Ok(line) if !last || complete => lines.push(line),
            Ok(_) => {}
            Err(_) if last => {}
            Err(e) => {
                return Err(format!(
                    "corrupt journal ({}) line {}: {e}",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    let mut maps: BTreeMap<u32, Work> = std::mem::take(&mut st.maps)
        .into_iter()
        .map(|r| (r.id, Work::new(r)))
        .collect();
    let mut btfs: BTreeMap<u32, BtfRecord> = std::mem::take(&mut st.btfs)
        .into_iter()
        .map(|b| (b.id, b))
        .collect();
    let mut applied = 0;
    for line in lines {
        if line.seq <= st.journal_seq {
            continue;
        }
        applied += 1;
        st.journal_seq = line.seq;
        for op in line.ops {
            apply(op, &mut maps, &mut btfs, st);
        }
    }
    st.maps = maps.into_values().map(Work::finish).collect();
    st.btfs = btfs.into_values().collect();
    Ok(applied)
}

fn apply(
    op: Op,
    maps: &mut BTreeMap<u32, Work>,
    btfs: &mut BTreeMap<u32, BtfRecord>,
    st: &mut State,
) {
    match op {
        Op::PutMap { rec } => {
            st.next_map_id = st.next_map_id.max(rec.id + 1);
            maps.insert(rec.id, Work::new(rec));
        }
        Op::DelMap { id } => {
            maps.remove(&id);
        }
        Op::Pins { id, pins } => {
            if let Some(w) = maps.get_mut(&id) {
                w.rec.pins = pins;
            }
        }
        Op::Frozen { id } => {
            if let Some(w) = maps.get_mut(&id) {
                w.rec.frozen = true;
            }
        }
        Op::Progs { records } => st.progs = records,
        Op::PutBtf { rec } => {
            btfs.insert(rec.id, rec);
        }
        Op::DelBtf { id } => {
            btfs.remove(&id);
        }
        Op::NextIds { map, btf } => {
            st.next_map_id = map;
            st.next_btf_id = btf;
        }
        Op::Set { map, key, value } => {
            if let Some(w) = maps.get_mut(&map) {
                w.elements.insert(key, value);
            }
        }
        Op::Del { map, key } => {
            if let Some(w) = maps.get_mut(&map) {
                w.elements.remove(&key);
            }
        }
        Op::Slot { map, key, inner } => {
            if let Some(w) = maps.get_mut(&map) {
                match inner {
                    Some(i) => w.slots.insert(key, i),
                    None => w.slots.remove(&key),
                };
            }
        }
        Op::ProgSlot { map, key, prog } => {
            if let Some(w) = maps.get_mut(&map) {
                match prog {
                    Some(p) => w.prog_slots.insert(key, p),
                    None => w.prog_slots.remove(&key),
                };
            }
        }
        Op::Contents { map, elements } => {
            if let Some(w) = maps.get_mut(&map) {
                w.elements = elements.into_iter().map(|e| (e.key, e.value)).collect();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kbpf-journal-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn rec(id: u32) -> MapRecord {
        MapRecord {
            id,
            map_type: 1,
            name: format!("m{id}"),
            key_size: 4,
            value_size: 4,
            max_entries: 8,
            ..MapRecord::default()
        }
    }

    fn write(d: &Path, lines: &[(u64, Vec<Op>)], tail: &str) {
        let mut t = String::new();
        for (seq, ops) in lines {
            t.push_str(
                &serde_json::to_string(&Line {
                    seq: *seq,
                    ops: ops.clone(),
                })
                .unwrap(),
            );
            t.push('\n');
        }
        t.push_str(tail);
        std::fs::write(d.join(JOURNAL_FILE), t).unwrap();
    }

    #[test]
    fn replay_applies_lines_after_the_checkpoint_and_ignores_a_torn_tail() {
        let d = dir("replay");
        let mut st = State {
            version: 1,
            next_map_id: 2,
            maps: vec![rec(1)],
            journal_seq: 1,
            ..State::default()
        };
        write(
            &d,
            &[
                // Already in the checkpoint: skipped.
                (1, vec![Op::DelMap { id: 1 }]),
                (
                    2,
                    vec![
                        Op::PutMap { rec: rec(5) },
                        Op::Set {
                            map: 5,
                            key: "01000000".into(),
                            value: "07000000".into(),
                        },
                        Op::Pins {
                            id: 1,
                            pins: vec!["a".into()],
                        },
                    ],
                ),
                (
                    3,
                    vec![
                        Op::Del {
                            map: 5,
                            key: "01000000".into(),
                        },
                        Op::Set {
                            map: 1,
                            key: "00000000".into(),
                            value: "09000000".into(),
                        },
                    ],
                ),
            ],
            "{\"seq\":4,\"ops\":[{\"op\":\"del_map\",\"id\":1}",
        );
        assert_eq!(replay(&d, &mut st).unwrap(), 2);
        assert_eq!(st.journal_seq, 3);
        assert_eq!(st.next_map_id, 6);
        let ids: Vec<u32> = st.maps.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![1, 5], "the torn DelMap must not apply");
        assert_eq!(st.maps[0].pins, vec!["a".to_string()]);
        assert_eq!(st.maps[0].elements.len(), 1);
        assert!(st.maps[1].elements.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bad_line_before_the_end_is_corruption() {
        let d = dir("corrupt");
        std::fs::write(
            d.join(JOURNAL_FILE),
            "{\"seq\":1,\"ops\":[]}\ngarbage\n{\"seq\":2,\"ops\":[]}\n",
        )
        .unwrap();
        let mut st = State::default();
        let e = replay(&d, &mut st).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

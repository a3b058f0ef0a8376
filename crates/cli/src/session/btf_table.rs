//! The session's BTF objects ([`BtfTable`]), as the kernel keeps them.
//!
//! The object's `.BTF` is loaded by kbpf-loader as the kernel's `BPF_BTF_LOAD` does it
//! (checked by `kbpf_btf::validate`) into a [`kbpf_maps::BtfObject`]: an opaque blob with a
//! process-local id, which every map created with BTF holds, as `map->btf` holds a reference
//! in the kernel. kbpf-maps never parses it. The *registry* of BTF objects — kbpf's own
//! persistent id space, which programs and maps use each one, parsing for `dump` and typed
//! map output — is this table, part of the [`Session`](super::Session) like the maps' and
//! programs' tables: ids are assigned and persisted where map and program ids are, a BTF
//! object lives while a map or a pinned program holds it (as the kernel frees it with its
//! last reference), and nothing below the CLI needs to know about kbpf ids. It sits below
//! the `btf` commands ([`crate::btf`]) because the session's garbage collection and state
//! writes need it.
//!
//! Programs are tied to their object's BTF when the command that loaded them ends: through
//! the BTF object of the maps they are bound to, or (no map with BTF) the BTF of their object
//! file loaded the same way. Persisted: the blob itself (not the object path), so `btf dump
//! id N` and typed map dumps keep working when the object file changes or is removed — the
//! kernel's BTF object does not change either.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use kbpf_maps::BtfObject;
use kbpf_object::btf::Btf;

use super::LiveProg;
use crate::pinned::{self, BtfRecord};

/// One BTF object of the session.
pub struct BtfEntry {
    /// The object maps hold.
    pub obj: BtfObject,
    /// Its types.
    pub btf: Arc<Btf>,
    /// Programs loaded with it (kbpf program ids).
    pub progs: BTreeSet<u32>,
}

/// The session's BTF objects by kbpf id.
pub struct BtfTable {
    entries: BTreeMap<u32, BtfEntry>,
    /// [`BtfObject::id`] → kbpf id.
    by_kid: HashMap<u32, u32>,
    next_id: u32,
    /// Programs whose object has no (loadable) BTF: not looked at again.
    no_btf: HashSet<u32>,
    /// Objects registered by the current command (a load's maps): its programs share them.
    fresh: Vec<u32>,
}

impl Default for BtfTable {
    fn default() -> BtfTable {
        BtfTable {
            entries: BTreeMap::new(),
            by_kid: HashMap::new(),
            next_id: 1,
            no_btf: HashSet::new(),
            fresh: Vec::new(),
        }
    }
}

impl BtfTable {
    /// The kbpf id of a loaded BTF object, registering it (new id) the first time.
    pub fn register(&mut self, obj: &BtfObject) -> Option<u32> {
        if let Some(id) = self.by_kid.get(&obj.id()) {
            return Some(*id);
        }
        let btf = Btf::parse(obj.data()).ok()?;
        let id = self.next_id;
        self.next_id += 1;
        self.fresh.push(id);
        self.by_kid.insert(obj.id(), id);
        self.entries.insert(
            id,
            BtfEntry {
                obj: obj.clone(),
                btf: Arc::new(btf),
                progs: BTreeSet::new(),
            },
        );
        Some(id)
    }

    /// The kbpf id of a loaded BTF object, if registered.
    pub fn id_of(&self, obj: &BtfObject) -> Option<u32> {
        self.by_kid.get(&obj.id()).copied()
    }

    /// The entry with kbpf id `id`.
    pub fn get(&self, id: u32) -> Option<&BtfEntry> {
        self.entries.get(&id)
    }

    /// The kbpf ids of every object, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.keys().copied()
    }

    /// The BTF object programs `prog` was loaded with.
    pub fn of_prog(&self, prog: u32) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, e)| e.progs.contains(&prog))
            .map(|(id, _)| *id)
    }

    /// Reads the persisted objects (before the maps that hold them are created again).
    pub fn restore(&mut self, next_id: u32, recs: &[BtfRecord]) -> Result<(), String> {
        self.next_id = next_id.max(1);
        for r in recs {
            let data = pinned::from_hex(&r.data).ok_or(format!("BTF {}: bad hex", r.id))?;
            let btf = Btf::parse(&data).map_err(|e| format!("BTF {}: {e}", r.id))?;
            let obj = BtfObject::new(data);
            self.by_kid.insert(obj.id(), r.id);
            self.next_id = self.next_id.max(r.id + 1);
            self.entries.insert(
                r.id,
                BtfEntry {
                    obj,
                    btf: Arc::new(btf),
                    progs: r.prog_ids.iter().copied().collect(),
                },
            );
        }
        Ok(())
    }

    /// Drops what nothing holds any more: program ids not alive, objects no map (by
    /// [`BtfObject::id`]) and no program holds. True if anything changed.
    pub fn gc(&mut self, map_kids: &HashSet<u32>, alive_progs: &HashSet<u32>) -> bool {
        let mut changed = false;
        self.no_btf.retain(|p| alive_progs.contains(p));
        for e in self.entries.values_mut() {
            let n = e.progs.len();
            e.progs.retain(|p| alive_progs.contains(p));
            changed |= e.progs.len() != n;
        }
        let before = self.entries.len();
        self.entries
            .retain(|_, e| map_kids.contains(&e.obj.id()) || !e.progs.is_empty());
        if self.entries.len() != before {
            let live: HashSet<u32> = self.entries.values().map(|e| e.obj.id()).collect();
            self.by_kid.retain(|kid, _| live.contains(kid));
            changed = true;
        }
        changed
    }

    /// The persisted form: every object, with the pinned programs among its programs.
    pub fn records(&self, pinned_progs: &HashSet<u32>) -> (u32, Vec<BtfRecord>) {
        let recs = self
            .entries
            .iter()
            .map(|(id, e)| BtfRecord {
                id: *id,
                data: pinned::to_hex(e.obj.data()),
                prog_ids: e
                    .progs
                    .iter()
                    .copied()
                    .filter(|p| pinned_progs.contains(p))
                    .collect(),
            })
            .collect();
        (self.next_id, recs)
    }

    /// Ties the session's programs that have no BTF object yet to theirs (see the module
    /// docs); true if anything changed.
    pub(crate) fn link_programs(&mut self, live_progs: &BTreeMap<u32, LiveProg>) -> bool {
        let mut groups: BTreeMap<(PathBuf, i64), Vec<u32>> = BTreeMap::new();
        for (id, p) in live_progs {
            if self.of_prog(*id).is_none() && !self.no_btf.contains(id) {
                groups
                    .entry((p.origin.object.clone(), p.loaded_at))
                    .or_default()
                    .push(*id);
            }
        }
        let mut changed = false;
        for ((object, _), progs) in groups {
            let from_maps = progs.iter().find_map(|id| {
                live_progs[id]
                    .program
                    .maps
                    .iter()
                    .find_map(|m| m.btf().map(|(b, _, _)| b.clone()))
            });
            // No bound map with BTF: the object's BTF as loaded by this command's maps (an
            // object whose programs use only maps without BTF), else loaded for the programs.
            let obj = from_maps.or_else(|| {
                let o = object_btf(&object)?;
                let same = self.fresh.iter().find_map(|id| {
                    let e = self.entries.get(id)?;
                    (e.obj.data() == o.data()).then(|| e.obj.clone())
                });
                Some(same.unwrap_or(o))
            });
            match obj.and_then(|o| self.register(&o)) {
                Some(btf_id) => {
                    if let Some(e) = self.entries.get_mut(&btf_id) {
                        e.progs.extend(progs);
                        changed = true;
                    }
                }
                None => self.no_btf.extend(progs),
            }
        }
        self.fresh.clear();
        changed
    }
}

/// An object file's BTF loaded as kbpf-loader loads it (`None` without `.BTF`, without func
/// info, or when the kernel would refuse it).
fn object_btf(path: &std::path::Path) -> Option<BtfObject> {
    let obj = kbpf_object::BpfObject::open(path).ok()?;
    obj.btf_ext.as_ref()?;
    let blob = obj.btf.as_ref()?.to_bytes();
    kbpf_object::btf::validate(&blob).ok()?;
    Some(BtfObject::new(blob))
}

//! `kbpf btf …`: BTF objects as the kernel keeps them, with bpftool's grammar and output.
//!
//! # Where BTF objects live
//!
//! The object's `.BTF` is loaded by kbpf-loader as the kernel's `BPF_BTF_LOAD` does it
//! (checked by `kbpf_btf::validate`) into a [`kbpf_maps::BtfObject`]: an opaque blob with a
//! process-local id, which every map created with BTF holds, as `map->btf` holds a reference
//! in the kernel. kbpf-maps never parses it. The *registry* of BTF objects — kbpf's own
//! persistent id space, which programs and maps use each one, parsing for `dump` and typed
//! map output — is this module's [`BtfTable`], part of the CLI [`Session`] like the maps'
//! and programs' tables: ids are assigned and persisted where map and program ids are, a
//! BTF object lives while a map or a pinned program holds it (as the kernel frees it with its
//! last reference), and nothing below the CLI needs to know about kbpf ids.
//!
//! Programs are tied to their object's BTF when the command that loaded them ends: through
//! the BTF object of the maps they are bound to, or (no map with BTF) the BTF of their object
//! file loaded the same way. Persisted: the blob itself (not the object path), so `btf dump
//! id N` and typed map dumps keep working when the object file changes or is removed — the
//! kernel's BTF object does not change either.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use kbpf_maps::{BtfObject, Map};
use kbpf_object::btf::Btf;

use crate::json::Json;
use crate::pinned::{self, BtfRecord};
use crate::session::{Reply, Session};
use crate::words::{Words, is_prefix, strtoul};

/// `kbpf btf help`.
pub const USAGE: &str = "\
Usage: kbpf btf { show | list } [id BTF_ID]
       kbpf btf dump BTF_SRC [format FORMAT]
       kbpf btf help

       BTF_SRC := { id BTF_ID | prog PROG | map MAP [{key | value | kv | all}] |
                    file FILE [base BASE] }
       FORMAT  := { raw | c }
       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       OPTIONS := { --bpffs DIR | {-j|--json} [{-p|--pretty}] | {-d|--debug} |
                    {-B|--base-btf} BASE }

       BTF ids are kbpf's own; `file` reads a raw BTF file or an ELF object's .BTF,
       as split BTF on top of BASE with -B BASE (kbpf also takes `base BASE` after
       the file) and on top of /sys/kernel/btf/vmlinux for a module's BTF.
";

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
}

/// A map's BTF as user space sees it: kbpf BTF id, types, key and value type ids.
pub struct MapBtf {
    /// kbpf BTF id.
    pub id: u32,
    /// The types.
    pub btf: Arc<Btf>,
    /// `btf_key_type_id`.
    pub key: u32,
    /// `btf_value_type_id`.
    pub value: u32,
}

/// The BTF of map `m`, if it was created with BTF.
pub fn map_btf(s: &Session, m: &Map) -> Option<MapBtf> {
    let (obj, key, value) = m.btf()?;
    let id = s.btfs.id_of(obj)?;
    let e = s.btfs.get(id)?;
    Some(MapBtf {
        id,
        btf: e.btf.clone(),
        key,
        value,
    })
}

/// The kbpf BTF id of program `prog` (`prog show`'s `btf_id`).
pub fn prog_btf_id(s: &Session, prog: u32) -> Option<u32> {
    s.btfs.of_prog(prog)
}

/// Ties the session's programs that have no BTF object yet to theirs (see the module docs);
/// true if anything changed.
pub(crate) fn link_programs(s: &mut Session) -> bool {
    let mut groups: BTreeMap<(PathBuf, i64), Vec<u32>> = BTreeMap::new();
    for (id, p) in &s.live_progs {
        if s.btfs.of_prog(*id).is_none() && !s.btfs.no_btf.contains(id) {
            groups
                .entry((p.origin.object.clone(), p.loaded_at))
                .or_default()
                .push(*id);
        }
    }
    let mut changed = false;
    for ((object, _), progs) in groups {
        let from_maps = progs.iter().find_map(|id| {
            s.live_progs[id]
                .program
                .maps
                .iter()
                .find_map(|m| m.btf().map(|(b, _, _)| b.clone()))
        });
        // No bound map with BTF: the object's BTF as loaded by this command's maps (an
        // object whose programs use only maps without BTF), else loaded for the programs.
        let obj = from_maps.or_else(|| {
            let o = object_btf(&object)?;
            let same = s.btfs.fresh.iter().find_map(|id| {
                let e = s.btfs.entries.get(id)?;
                (e.obj.data() == o.data()).then(|| e.obj.clone())
            });
            Some(same.unwrap_or(o))
        });
        match obj.and_then(|o| s.btfs.register(&o)) {
            Some(btf_id) => {
                if let Some(e) = s.btfs.entries.get_mut(&btf_id) {
                    e.progs.extend(progs);
                    changed = true;
                }
            }
            None => s.btfs.no_btf.extend(progs),
        }
    }
    s.btfs.fresh.clear();
    changed
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

type Cmd = fn(&mut Session, &mut Words<'_>) -> Reply;

/// The `btf` object: `show`/`list`, `help`, `dump` (no command is `show`).
pub fn command(s: &mut Session, args: &[String], _object: &str) -> Reply {
    const COMMANDS: &[(&str, Cmd)] = &[
        ("show", show),
        ("list", show),
        ("help", help),
        ("dump", dump),
    ];
    let (name, f, rest): (&str, Cmd, &[String]) = match args.first() {
        None => ("show", show, &[]),
        Some(w) => match COMMANDS.iter().find(|(n, _)| is_prefix(w, n)) {
            Some((_, f)) => (w.as_str(), *f, &args[1..]),
            None => return Reply::usage(if s.opts.json { "" } else { USAGE }),
        },
    };
    if !is_prefix(name, "help")
        && let Err(r) = s.load(false)
    {
        return r;
    }
    let mut w = Words::new(rest, name);
    f(s, &mut w)
}

fn help(s: &mut Session, _: &mut Words<'_>) -> Reply {
    if s.opts.json {
        return Reply::ok("", Json::Null);
    }
    Reply::ok(USAGE, Json::Null)
}

/// `id BTF_ID` (bpftool's `btf_parse_fd`).
fn parse_id(s: &Session, w: &mut Words<'_>) -> Result<u32, Reply> {
    let kw = w.next().unwrap_or_default();
    if !is_prefix(kw, "id") {
        return Err(Reply::err(format!("expected 'id', got: '{kw}'?"), -1));
    }
    let arg = w.next().unwrap_or_default();
    let Some(id) = strtoul(arg, 0).filter(|v| *v <= u64::from(u32::MAX)) else {
        return Err(Reply::err(format!("can't parse {arg} as ID"), -1));
    };
    let id = id as u32;
    if s.btfs.get(id).is_none() {
        return Err(Reply::err(
            format!("can't get BTF object by id ({id}): No such file or directory"),
            -1,
        ));
    }
    Ok(id)
}

/// Program ids that are alive: live in this session or pinned in the state.
fn alive_progs(s: &Session) -> HashSet<u32> {
    let mut ids: HashSet<u32> = s.live_progs.keys().copied().collect();
    ids.extend(s.pinned_prog_ids());
    ids
}

fn show(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let single = w.len() == 2;
    let ids: Vec<u32> = if single {
        match parse_id(s, w) {
            Ok(id) => vec![id],
            Err(r) => return r,
        }
    } else {
        s.btfs.entries.keys().copied().collect()
    };
    if let Some(word) = w.peek() {
        return Reply::err(format!("what is '{word}'?"), -1);
    }
    let alive = alive_progs(s);
    let mut text = String::new();
    let mut js = Vec::new();
    for id in &ids {
        let Some(e) = s.btfs.get(*id) else { continue };
        let progs: Vec<u32> = e
            .progs
            .iter()
            .copied()
            .filter(|p| alive.contains(p))
            .collect();
        let maps: Vec<u32> = s
            .maps()
            .filter(|(_, m)| m.map.btf().is_some_and(|(b, _, _)| b == &e.obj))
            .map(|(mid, _)| mid)
            .collect();
        let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        text.push_str(&format!("{id}: name <anon>  size {}B", e.obj.data().len()));
        if !progs.is_empty() {
            text.push_str(&format!("  prog_ids {}", list(&progs)));
        }
        if !maps.is_empty() {
            text.push_str(&format!("  map_ids {}", list(&maps)));
        }
        text.push('\n');
        let nums = |v: &[u32]| Json::A(v.iter().map(|x| Json::U(u64::from(*x))).collect());
        js.push(Json::obj([
            ("id", Json::U(u64::from(*id))),
            ("size", Json::U(e.obj.data().len() as u64)),
            ("prog_ids", nums(&progs)),
            ("map_ids", nums(&maps)),
            ("kernel", Json::B(false)),
        ]));
    }
    Reply::shown(text, js, single)
}

mod dump_cmd;
use dump_cmd::dump;
pub(crate) use dump_cmd::with_base_btf;

/// bpftool's `do_dump_btf`: one element as `{"key": …, "value": …}` (`"values": [{"cpu": N,
/// "value": …}]` for per-CPU maps; no key for keyless BTF), in plain-text tokens (`plain`) or
/// JSON ones. `value` is what a lookup returns (every CPU's value for per-CPU maps). A key
/// that cannot be printed ends the object there, as in bpftool.
pub fn formatted(b: &MapBtf, m: &Map, key: &[u8], value: &[u8], plain: bool) -> Json {
    let mut o = Vec::new();
    if b.key != 0 {
        let (n, ok) = b.btf.dump_data(b.key, key, plain);
        o.push(("key".to_string(), Json::from(&n)));
        if !ok {
            return Json::O(o);
        }
    }
    if !m.map_type().is_percpu() {
        let (n, _) = b.btf.dump_data(b.value, value, plain);
        o.push(("value".into(), Json::from(&n)));
        return Json::O(o);
    }
    let stride = (m.value_size() as usize).div_ceil(8) * 8;
    let mut cpus = Vec::new();
    for (cpu, chunk) in value.chunks(stride.max(1)).enumerate() {
        let (n, ok) = b.btf.dump_data(b.value, chunk, plain);
        cpus.push(Json::obj([
            ("cpu", Json::U(cpu as u64)),
            ("value", Json::from(&n)),
        ]));
        if !ok {
            break;
        }
    }
    o.push(("values".into(), Json::A(cpus)));
    Json::O(o)
}

/// `prog show`'s BTF part: `\tbtf_id N` after the memory line, `"btf_id"` before `"pinned"`.
pub fn prog_show(s: &Session, prog: u32, text: &mut String, json: &mut Json) {
    let Some(id) = prog_btf_id(s, prog) else {
        return;
    };
    text.push_str(&format!("\tbtf_id {id}\n"));
    if let Json::O(f) = json {
        let at = f.iter().position(|(k, _)| k == "pinned").unwrap_or(f.len());
        f.insert(at, ("btf_id".into(), Json::U(u64::from(id))));
    }
}

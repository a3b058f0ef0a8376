//! `kbpf btf …`: BTF objects as the kernel keeps them, with bpftool's grammar and output.
//!
//! The BTF objects themselves — kbpf's ids for them, which maps and programs hold each one,
//! their persistence — are the session's [`BtfTable`](crate::session::BtfTable); this
//! module reads them for the `btf` commands, and gives the other objects' commands a map's
//! BTF ([`map_btf`]) and typed element output ([`formatted`]).

use std::collections::HashSet;
use std::sync::Arc;

use kbpf_maps::Map;
use kbpf_object::btf::Btf;

use crate::json::Json;
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
        s.btfs.ids().collect()
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

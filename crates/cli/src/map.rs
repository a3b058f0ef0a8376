//! `kbpf map …`: bpftool's map commands over `kbpf-maps`, with bpftool 7.1's output, error
//! messages and return values (element operations return −errno, so `$?` is `256 − errno`;
//! argument errors −1, i.e. 255).

use kbpf_maps::uapi::{BPF_ANY, BPF_EXIST, BPF_NOEXIST};
use kbpf_maps::{Errno, FdObject, Map, MapAttr, MapError, MapType};

use crate::json::Json;
use crate::pinned::TemplateRecord;
use crate::session::{Change, Reply, Session};
use crate::words::{GrammarError, Words, hex_bytes, is_prefix, parse_data, strtoul};

/// `kbpf map help`.
pub const USAGE: &str = "\
Usage: kbpf map { show | list }   [MAP]
       kbpf map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \\
                               entries MAX_ENTRIES name NAME [flags FLAGS] \\
                               [inner_map MAP]
       kbpf map dump       MAP
       kbpf map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       kbpf map lookup     MAP [key DATA]
       kbpf map getnext    MAP [key DATA]
       kbpf map delete     MAP  key DATA
       kbpf map pin        MAP  FILE
       kbpf map event_pipe MAP [cpu N index M] [count N]
       kbpf map peek       MAP
       kbpf map push       MAP value VALUE
       kbpf map pop        MAP
       kbpf map enqueue    MAP value VALUE
       kbpf map dequeue    MAP
       kbpf map help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       DATA := { [hex] BYTES }
       VALUE := { DATA | MAP }
       UPDATE_FLAGS := { any | exist | noexist }
       TYPE := { hash | array | prog_array | perf_event_array | percpu_hash |
                 percpu_array | cgroup_array | lru_hash | lru_percpu_hash |
                 array_of_maps | hash_of_maps | queue | stack | ringbuf }
       OPTIONS := { --bpffs DIR | {-j|--json} [{-p|--pretty}] | {-d|--debug} }

       `count N` (kbpf's) ends event_pipe after N samples. On a ringbuf map
       (kbpf's) event_pipe prints the records the programs committed, in order.
       BYTES are numbers as C's strtoul reads them (10, 0x0a, 012); after `hex`
       each is read in base 16. FILE paths under /sys/fs/bpf/ resolve inside the
       --bpffs directory. Map ids are kbpf's own.
";

type Cmd = fn(&mut Session, &mut Words<'_>) -> Reply;

/// The commands, in bpftool's order (a prefix selects the first match: `l` is `list`).
const COMMANDS: &[(&str, Cmd, bool)] = &[
    ("show", show::show, false),
    ("list", show::show, false),
    ("help", help, false),
    ("dump", show::dump, false),
    ("update", update, true),
    ("lookup", lookup, false),
    ("getnext", getnext, false),
    ("delete", delete, true),
    ("pin", pin, true),
    ("event_pipe", event_pipe::event_pipe, false),
    ("create", create, true),
    ("peek", peek, false),
    ("push", push, true),
    ("enqueue", push, true),
    ("pop", pop, true),
    ("dequeue", pop, true),
    ("freeze", unsupported, true),
];

/// bpftool's map type names and numbers (`TYPE` of `map create`).
const TYPE_NAMES: &[(&str, u32)] = &[
    ("hash", 1),
    ("array", 2),
    ("prog_array", 3),
    ("perf_event_array", 4),
    ("percpu_hash", 5),
    ("percpu_array", 6),
    ("stack_trace", 7),
    ("cgroup_array", 8),
    ("lru_hash", 9),
    ("lru_percpu_hash", 10),
    ("lpm_trie", 11),
    ("array_of_maps", 12),
    ("hash_of_maps", 13),
    ("devmap", 14),
    ("sockmap", 15),
    ("cpumap", 16),
    ("xskmap", 17),
    ("sockhash", 18),
    ("cgroup_storage", 19),
    ("reuseport_sockarray", 20),
    ("percpu_cgroup_storage", 21),
    ("queue", 22),
    ("stack", 23),
    ("sk_storage", 24),
    ("devmap_hash", 25),
    ("struct_ops", 26),
    ("ringbuf", 27),
    ("inode_storage", 28),
    ("task_storage", 29),
    ("bloom_filter", 30),
    ("user_ringbuf", 31),
];

/// The `map` object: selects the command by prefix (no command is `show`).
pub fn command(s: &mut Session, args: &[String], _object: &str) -> Reply {
    let (name, f, writes, rest): (&str, Cmd, bool, &[String]) = match args.first() {
        None => ("show", show::show, false, &[]),
        Some(w) => match COMMANDS.iter().find(|(n, _, _)| is_prefix(w, n)) {
            Some((_, f, wr)) => (w.as_str(), *f, *wr, &args[1..]),
            None => {
                if s.opts.json {
                    return Reply::usage("");
                }
                return Reply::usage(USAGE);
            }
        },
    };
    if !is_prefix(name, "help")
        && let Err(r) = s.load(writes)
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

fn unsupported(_: &mut Session, _: &mut Words<'_>) -> Reply {
    Reply::err("this map command is not supported by kbpf", -1)
}

fn errno_status(e: &MapError) -> i32 {
    -e.errno.code()
}

/// bpftool's `Error: OP failed: <strerror>` with the element operation's exit status.
fn op_failed(op: &str, e: &MapError) -> Reply {
    Reply::err(
        format!("{op} failed: {}", e.errno.description()),
        errno_status(e),
    )
}

/// The reply of an element operation that changes the map: the change recorded on success.
fn changed(s: &mut Session, change: Change, op: &str, r: Result<(), MapError>) -> Reply {
    match r {
        Ok(()) => {
            s.record_change(change);
            Reply::ok("", Json::Null)
        }
        Err(e) => op_failed(op, &e),
    }
}

/// `MAP` ([`crate::handle::parse_maps`]); too few words print the map usage, as bpftool's
/// commands check `argc < 2` themselves.
fn parse_maps(s: &Session, w: &mut Words<'_>) -> Result<Vec<u32>, Reply> {
    if w.len() < 2 {
        return Err(usage(s));
    }
    crate::handle::parse_maps(s, w)
}

/// One map handle ([`crate::handle::parse_map`]), with the map usage for too few words.
fn parse_map(s: &Session, w: &mut Words<'_>) -> Result<u32, Reply> {
    if w.len() < 2 {
        return Err(usage(s));
    }
    crate::handle::parse_map(s, w)
}

fn usage(s: &Session) -> Reply {
    Reply::usage(if s.opts.json { "" } else { USAGE })
}

fn entry(s: &Session, id: u32) -> Map {
    s.map(id)
        .map(|e| e.map.clone())
        .unwrap_or_else(|| unreachable!("map {id} was resolved from the session's table"))
}

mod event_pipe;
mod show;

use show::{element, shown_value};

/// What `parse_elem` found.
#[derive(Default)]
struct Elem {
    key: Option<Vec<u8>>,
    value: Option<Value>,
    flags: Option<u64>,
}

enum Value {
    Data(Vec<u8>),
    Map(u32),
    Prog(u32),
}

/// bpftool's `parse_elem`: `key DATA`, `value VALUE` and update flags in any order.
fn parse_elem(s: &Session, w: &mut Words<'_>, m: &Map) -> Result<Elem, Reply> {
    let mut e = Elem::default();
    while let Some(word) = w.peek() {
        if is_prefix(word, "key") {
            if e.key.is_some() {
                return Err(Reply::err("key specified multiple times", -1));
            }
            w.next();
            e.key = Some(parse_data(w, m.key_size() as usize, "key")?);
        } else if is_prefix(word, "value") {
            if e.value.is_some() {
                return Err(Reply::err("value specified multiple times", -1));
            }
            w.next();
            let t = m.map_type();
            e.value = Some(if t.is_map_in_map() {
                Value::Map(parse_map(s, w)?)
            } else if t == MapType::ProgArray {
                Value::Prog(crate::prog::parse_prog(s, w)?)
            } else if t.is_fd_array() {
                return Err(Reply::err(
                    format!(
                        "{t} values (perf events, cgroups) are not supported by kbpf map update yet"
                    ),
                    -1,
                ));
            } else {
                Value::Data(parse_data(w, m.value_size() as usize, "value")?)
            });
        } else if let Some(f) = [
            ("any", BPF_ANY),
            ("exist", BPF_EXIST),
            ("noexist", BPF_NOEXIST),
        ]
        .iter()
        .find(|(n, _)| is_prefix(word, n))
        .map(|(_, f)| *f)
        {
            if e.flags.is_some() {
                return Err(Reply::err(
                    format!("flags specified multiple times: {word}"),
                    -1,
                ));
            }
            w.next();
            e.flags = Some(f);
        } else {
            return Err(Reply::err(
                format!("expected key or value, got: {word}"),
                -1,
            ));
        }
    }
    Ok(e)
}

fn need_key(e: &Elem) -> Result<Vec<u8>, Reply> {
    e.key
        .clone()
        .ok_or_else(|| Reply::err("did not find key", -1))
}

fn lookup(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let r = (|| {
        let id = parse_map(s, w)?;
        let m = entry(s, id);
        let e = parse_elem(s, w, &m)?;
        let key = need_key(&e)?;
        Ok::<_, Reply>((m, key))
    })();
    let (m, key) = match r {
        Ok(x) => x,
        Err(r) => return r,
    };
    match m.lookup_elem(&key) {
        Ok(v) => {
            let v = shown_value(s, &m, v);
            let (t, mut j) = element(&m, &key, &v);
            // get_map_kv_btf: formatted when the map has a BTF value type.
            match crate::btf::map_btf(s, &m).filter(|b| b.value != 0) {
                Some(b) if s.opts.json => {
                    if let Json::O(f) = &mut j {
                        f.push((
                            "formatted".into(),
                            crate::btf::formatted(&b, &m, &key, &v, false),
                        ));
                    }
                    Reply::ok(t, j)
                }
                Some(b) => Reply::ok(
                    crate::btf::formatted(&b, &m, &key, &v, true).to_document(true),
                    j,
                ),
                None => Reply::ok(t, j),
            }
        }
        Err(e) if e.errno == Errno::ENOENT => Reply {
            stdout: format!("key:\n{}\n\nNot found\n", hex_bytes(&key)),
            stderr: String::new(),
            json: Json::Null,
            status: -Errno::ENOENT.code(),
        },
        Err(e) => op_failed("lookup", &e),
    }
}

fn update(s: &mut Session, w: &mut Words<'_>) -> Reply {
    // A PROG_ARRAY value names a program: rebuild the pinned ones first.
    let mut ahead = w.clone();
    if let Ok(id) = parse_map(s, &mut ahead)
        && entry(s, id).map_type() == MapType::ProgArray
        && let Err(r) = crate::prog::restore_all(s)
    {
        return r;
    }
    let r = (|| {
        let id = parse_map(s, w)?;
        let m = entry(s, id);
        let e = parse_elem(s, w, &m)?;
        let key = need_key(&e)?;
        let Some(value) = e.value else {
            return Err(Reply::err("did not find value", -1));
        };
        Ok::<_, Reply>((id, m, key, value, e.flags.unwrap_or(BPF_ANY)))
    })();
    let (id, m, key, value, flags) = match r {
        Ok(x) => x,
        Err(r) => return r,
    };
    let res = match value {
        Value::Map(inner) => {
            let inner = entry(s, inner);
            m.update_inner_map(&key, &inner, flags)
        }
        Value::Prog(id) => match crate::prog::prog_ref(s, id) {
            Some(p) => m.update_prog(&key, p, flags),
            None => return Reply::err(format!("get by id ({id}): No such file or directory"), -1),
        },
        Value::Data(v) => {
            let v = if m.map_type().is_percpu() {
                // bpftool writes the one value given to every CPU.
                let stride = (m.value_size() as usize).div_ceil(8) * 8;
                let mut all = vec![0u8; m.user_value_size()];
                for chunk in all.chunks_mut(stride) {
                    chunk[..v.len()].copy_from_slice(&v);
                }
                all
            } else {
                v
            };
            m.update_elem(&key, &v, flags)
        }
    };
    changed(s, Change::Elem { map: id, key }, "update", res)
}

fn delete(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let r = (|| {
        let id = parse_map(s, w)?;
        let m = entry(s, id);
        let e = parse_elem(s, w, &m)?;
        Ok::<_, Reply>((id, m, need_key(&e)?))
    })();
    let (id, m, key) = match r {
        Ok(x) => x,
        Err(r) => return r,
    };
    let res = m.delete_elem(&key);
    changed(s, Change::Elem { map: id, key }, "delete", res)
}

fn getnext(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let r = (|| {
        let id = parse_map(s, w)?;
        let m = entry(s, id);
        let e = parse_elem(s, w, &m)?;
        Ok::<_, Reply>((m, e.key))
    })();
    let (m, key) = match r {
        Ok(x) => x,
        Err(r) => return r,
    };
    match m.get_next_key(key.as_deref()) {
        Ok(next) => {
            let text = match &key {
                Some(k) => format!("key:\n{}\nnext key:\n{}\n", hex_bytes(k), hex_bytes(&next)),
                None => format!("key: None\nnext key:\n{}\n", hex_bytes(&next)),
            };
            let jk = key.as_deref().map_or(Json::Null, Json::hex);
            Reply::ok(
                text,
                Json::obj([("key", jk), ("next_key", Json::hex(&next))]),
            )
        }
        Err(e) => Reply::err(
            format!("can't get next key: {}", e.errno.description()),
            errno_status(&e),
        ),
    }
}

fn pin(s: &mut Session, w: &mut Words<'_>) -> Reply {
    if let Err(e) = w.require(3) {
        return Reply::err(e.message, -Errno::EINVAL.code());
    }
    let id = match parse_map(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let path = w.next().unwrap_or_default().to_string();
    match s.pin_map(id, &path) {
        Ok(()) => Reply::ok("", Json::Null),
        Err(r) => r,
    }
}

fn peek(s: &mut Session, w: &mut Words<'_>) -> Reply {
    queue_read(s, w, false)
}

fn pop(s: &mut Session, w: &mut Words<'_>) -> Reply {
    queue_read(s, w, true)
}

fn queue_read(s: &mut Session, w: &mut Words<'_>, delete: bool) -> Reply {
    let id = match parse_map(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let m = entry(s, id);
    let res = if delete {
        m.lookup_and_delete_elem(&[], 0)
    } else {
        m.lookup_elem(&[])
    };
    match res {
        Ok(v) => {
            if delete {
                s.record_change(Change::Contents { map: id });
            }
            Reply::ok(
                format!("value: {}\n", hex_bytes(&v)),
                Json::obj([("value", Json::hex(&v))]),
            )
        }
        Err(e) if e.errno == Errno::ENOENT => Reply {
            stdout: "Error: empty map\n".into(),
            stderr: String::new(),
            json: Json::Null,
            status: -Errno::ENOENT.code(),
        },
        Err(e) => Reply::err(
            format!(
                "{} failed: {}",
                if delete { "pop" } else { "peek" },
                e.errno.description()
            ),
            errno_status(&e),
        ),
    }
}

fn push(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let id = match parse_map(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let m = entry(s, id);
    let e = match parse_elem(s, w, &m) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some(Value::Data(v)) = e.value else {
        return Reply::err("did not find value", -1);
    };
    let res = m.update_elem(&[], &v, e.flags.unwrap_or(BPF_ANY));
    changed(s, Change::Contents { map: id }, "update", res)
}

fn parse_num(w: &mut Words<'_>, what: &str) -> Result<u32, GrammarError> {
    let arg = w.next().unwrap_or_default();
    strtoul(arg, 0)
        .filter(|v| *v <= u32::MAX as u64)
        .map(|v| v as u32)
        .ok_or_else(|| GrammarError::new(format!("can't parse {arg} as {what}")))
}

fn create(s: &mut Session, w: &mut Words<'_>) -> Reply {
    if let Err(e) = w.require(7) {
        return e.into();
    }
    let path = w.next().unwrap_or_default().to_string();
    let mut map_type: Option<u32> = None;
    let (mut key, mut value, mut entries, mut flags): (
        Option<u32>,
        Option<u32>,
        Option<u32>,
        Option<u32>,
    ) = (None, None, None, None);
    let mut name: Option<String> = None;
    let mut inner: Option<u32> = None;
    let dup = |what: &str| Reply::err(format!("{what} already specified"), -1);
    while !w.is_empty() {
        if let Err(e) = w.require(2) {
            return e.into();
        }
        let kw = w.next().unwrap_or_default();
        let r: Result<(), Reply> = if is_prefix(kw, "type") {
            if map_type.is_some() {
                return dup("map type");
            }
            let t = w.next().unwrap_or_default();
            match TYPE_NAMES.iter().find(|(n, _)| *n == t) {
                Some((_, n)) => {
                    map_type = Some(*n);
                    Ok(())
                }
                None => Err(Reply::err(format!("unrecognized map type: {t}"), -1)),
            }
        } else if is_prefix(kw, "key") {
            if key.is_some() {
                return dup("key size");
            }
            parse_num(w, "key size")
                .map(|v| key = Some(v))
                .map_err(Reply::from)
        } else if is_prefix(kw, "value") {
            if value.is_some() {
                return dup("value size");
            }
            parse_num(w, "value size")
                .map(|v| value = Some(v))
                .map_err(Reply::from)
        } else if is_prefix(kw, "entries") {
            if entries.is_some() {
                return dup("max entries");
            }
            parse_num(w, "max entries")
                .map(|v| entries = Some(v))
                .map_err(Reply::from)
        } else if is_prefix(kw, "name") {
            name = Some(w.next().unwrap_or_default().chars().take(15).collect());
            Ok(())
        } else if is_prefix(kw, "flags") {
            parse_num(w, "flags")
                .map(|v| flags = Some(v))
                .map_err(Reply::from)
        } else if is_prefix(kw, "dev") {
            Err(Reply::err("offload (dev) is not supported by kbpf", -1))
        } else if is_prefix(kw, "inner_map") {
            if inner.is_some() {
                return dup("inner_map");
            }
            parse_map(s, w).map(|id| inner = Some(id))
        } else {
            Err(Reply::err(format!("unknown arg {kw}"), -1))
        };
        if let Err(r) = r {
            return r;
        }
    }
    let Some(name) = name else {
        return Reply::err("map name not specified", -1);
    };
    let Some(map_type) = map_type else {
        return Reply::err("map type not specified", -1);
    };
    let t = MapType::from_raw(map_type);
    let attr = MapAttr::new(
        t,
        key.unwrap_or(0),
        value.unwrap_or(0),
        entries.unwrap_or(0),
    )
    .flags(flags.unwrap_or(0))
    .name(&name)
    .profile(s.opts.profile.maps);
    let template = inner.map(|id| entry(s, id));
    // Without `inner_map`, bpftool leaves inner_map_fd at 0: an open file that is not a map.
    let resolved = match &template {
        Some(m) => FdObject::Map(m.clone()),
        None => FdObject::Other,
    };
    let map = match Map::create_with(&attr, || Ok(resolved)) {
        Ok(m) => m,
        Err(e) => {
            return Reply::err(format!("map create failed: {}", e.errno.description()), -1);
        }
    };
    let trec = if t.is_map_in_map() {
        template.as_ref().map(|tm| TemplateRecord {
            map_type: tm.map_type().raw(),
            key_size: tm.key_size(),
            value_size: tm.value_size(),
            max_entries: tm.max_entries(),
            map_flags: tm.map_flags(),
        })
    } else {
        None
    };
    let id = s.add_map(map, trec);
    match s.pin_map(id, &path) {
        Ok(()) => Reply::ok("", Json::Null),
        Err(r) => r,
    }
}

//! `kbpf prog …`: bpftool's program commands over kbpf's pipeline (`kbpf-object` →
//! `kbpf-loader` → `kbpf-run`: verifier, rewrite, interpreter), with bpftool 7.1's output,
//! messages and return values.
//!
//! Programs get kbpf's own ids. A program lives while it is pinned: `prog load`/`loadall`
//! pin at once (as bpftool does), and the pinned state records how to rebuild each program —
//! the object's absolute path, the program's name, the `type` override and the kbpf ids of
//! the maps it was bound to, by their names in the object. A later invocation rebuilds the
//! program (lazily, when a command needs programs) by loading the object again with those
//! maps *reused*, so it binds to the same maps with their current contents; the program's
//! tag is checked against the recorded one so a rebuilt object is not taken for the old.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_maps::{Map, Registry};
use kbpf_rewrite::xlated::{DumpOptions, insns_for_dump};
use kbpf_run::{Engine, Program, TestRunInput};
use serde_json::json;

use crate::bpftool::{Reply, SYS_BPFFS, Session, show_selection, strerror};
use crate::json::Json;
use crate::pinned::TemplateRecord;
use crate::words::{GrammarError, Words, is_prefix, strtoul};

/// `kbpf prog help`.
pub const USAGE: &str = "\
Usage: kbpf prog { show | list } [PROG]
       kbpf prog dump xlated PROG [{ file FILE | opcodes | visual | linum }]
       kbpf prog dump jited  PROG [opcodes]
       kbpf prog pin   PROG FILE
       kbpf prog { load | loadall } OBJ  PATH \\
                         [type TYPE] \\
                         [map { idx IDX | name NAME } MAP]\\
                         [pinmaps MAP_DIR]
       kbpf prog run PROG \\
                         data_in FILE \\
                         [data_out FILE [data_size_out L]] \\
                         [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] \\
                         [repeat N] [--engine {interp|jit}]
       kbpf prog help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       TYPE := { socket | classifier | action | xdp }   (what kbpf runs; bpftool's
                 other names are accepted and refused at load with EINVAL)
       OPTIONS := { --bpffs DIR | {-j|--json} [{-p|--pretty}] | {-d|--debug} }

       FILE paths under /sys/fs/bpf/ resolve inside the --bpffs directory; `-`
       as data_out/ctx_out prints a hex dump (or a JSON array). Programs run on
       kbpf's x86-64 JIT (the interpreter on other hosts, or with --engine
       interp). Program and map ids are kbpf's own; `prog show` reports the size of
       kbpf's JIT image and `dump jited` disassembles it (AT&T syntax).
";

const STRICT_WARNING: &str = "Warning: bpftool is now running in libbpf strict mode and has more stringent requirements about BPF programs.\nIf it used to work for this object file but now doesn't, see --legacy option for more details.\n\n";

/// bpftool's `prog_type_name` table (`enum bpf_prog_type`).
const PROG_TYPE_NAMES: &[&str] = &[
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// `type TYPE` of `prog load`: libbpf's section prefixes bpftool accepts (`TYPE/`).
const LOAD_TYPES: &[(&str, u32)] = &[
    ("socket", 1),
    ("kprobe", 2),
    ("kretprobe", 2),
    ("classifier", 3),
    ("tc", 3),
    ("action", 4),
    ("tracepoint", 5),
    ("tp", 5),
    ("raw_tracepoint", 17),
    ("raw_tp", 17),
    ("xdp", 6),
    ("perf_event", 7),
    ("cgroup/skb", 8),
    ("cgroup/sock", 9),
    ("lwt_in", 10),
    ("lwt_out", 11),
    ("lwt_xmit", 12),
    ("sockops", 13),
    ("sk_skb", 14),
    ("cgroup/dev", 15),
    ("sk_msg", 16),
    ("lwt_seg6local", 19),
    ("lirc_mode2", 20),
    ("sk_reuseport", 21),
    ("flow_dissector", 22),
    ("cgroup/sysctl", 23),
    ("cgroup/bind4", 18),
    ("cgroup/bind6", 18),
    ("cgroup/connect4", 18),
    ("cgroup/connect6", 18),
    ("cgroup/sendmsg4", 18),
    ("cgroup/sendmsg6", 18),
    ("cgroup/getsockopt", 25),
    ("cgroup/setsockopt", 25),
    ("sk_lookup", 30),
];

const LIBBPF_SECTIONS: &str = "socket sk_reuseport/migrate sk_reuseport kprobe+ uprobe+ uprobe.s+ kretprobe+ uretprobe+ uretprobe.s+ kprobe.multi+ kretprobe.multi+ ksyscall+ kretsyscall+ usdt+ tc classifier action tracepoint+ tp+ raw_tracepoint+ raw_tp+ raw_tracepoint.w+ raw_tp.w+ tp_btf+ fentry+ fmod_ret+ fexit+ fentry.s+ fmod_ret.s+ fexit.s+ freplace+ lsm+ lsm.s+ lsm_cgroup+ iter+ iter.s+ syscall xdp.frags/devmap xdp/devmap xdp.frags/cpumap xdp/cpumap xdp.frags xdp perf_event lwt_in lwt_out lwt_xmit lwt_seg6local sockops sk_skb/stream_parser sk_skb/stream_verdict sk_skb sk_msg lirc_mode2 flow_dissector cgroup_skb/ingress cgroup_skb/egress cgroup/skb cgroup/sock_create cgroup/sock_release cgroup/sock cgroup/post_bind4 cgroup/post_bind6 cgroup/bind4 cgroup/bind6 cgroup/connect4 cgroup/connect6 cgroup/sendmsg4 cgroup/sendmsg6 cgroup/recvmsg4 cgroup/recvmsg6 cgroup/getpeername4 cgroup/getpeername6 cgroup/getsockname4 cgroup/getsockname6 cgroup/sysctl cgroup/getsockopt cgroup/setsockopt cgroup/dev struct_ops+ sk_lookup";

/// The name bpftool shows for a program type number.
pub fn prog_type_name(t: u32) -> String {
    PROG_TYPE_NAMES
        .get(t as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("type {t}"))
}

/// A live program of the session.
pub struct LiveProg {
    /// The verified, translated program.
    pub program: Arc<Program>,
    /// Pin paths relative to the bpffs directory.
    pub pins: Vec<String>,
    /// The kbpf ids of the maps the program is bound to (`map_ids`), ascending.
    pub map_ids: Vec<u32>,
    /// `BPF_PROG_TYPE_*` as loaded.
    pub prog_type: u32,
    /// Unix time of the (first) load.
    pub loaded_at: i64,
    /// Loader's uid.
    pub uid: u32,
    /// GPL-compatible license.
    pub gpl: bool,
    /// What rebuilds the program in another process.
    pub origin: Origin,
    _registry: Arc<Registry>,
}

/// How a pinned program is rebuilt: the object and program, the `type` override, and the
/// object's maps the program is bound to (libbpf name → kbpf map id).
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// Absolute path of the object file.
    pub object: PathBuf,
    /// The program's (function) name in the object.
    pub prog: String,
    /// `type TYPE` given at load.
    pub type_override: Option<u32>,
    /// Bound maps by the object's map names.
    pub maps: BTreeMap<String, u32>,
    /// The tag when first loaded.
    pub tag: String,
}

impl LiveProg {
    fn record(&self, id: u32) -> serde_json::Value {
        json!({
            "id": id,
            "pins": self.pins,
            "map_ids": self.map_ids,
            "object": self.origin.object.display().to_string(),
            "prog": self.origin.prog,
            "type": self.origin.type_override,
            "maps": self.origin.maps,
            "tag": self.origin.tag,
            "prog_type": self.prog_type,
            "loaded_at": self.loaded_at,
            "uid": self.uid,
            "gpl": self.gpl,
        })
    }
}

fn origin_from_record(
    r: &serde_json::Value,
) -> Result<(u32, Origin, Vec<String>, i64, u32), String> {
    let id = r
        .get("id")
        .and_then(|v| v.as_u64())
        .ok_or("program record without id")? as u32;
    let object = r
        .get("object")
        .and_then(|v| v.as_str())
        .ok_or(format!("program {id}: no object path"))?;
    let prog = r
        .get("prog")
        .and_then(|v| v.as_str())
        .ok_or(format!("program {id}: no program name"))?;
    let type_override = r.get("type").and_then(|v| v.as_u64()).map(|t| t as u32);
    let maps = r
        .get("maps")
        .and_then(|v| v.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u32)))
                .collect()
        })
        .unwrap_or_default();
    let tag = r
        .get("tag")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let pins = r
        .get("pins")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let loaded_at = r.get("loaded_at").and_then(|v| v.as_i64()).unwrap_or(0);
    let uid = r.get("uid").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    Ok((
        id,
        Origin {
            object: PathBuf::from(object),
            prog: prog.to_string(),
            type_override,
            maps,
            tag,
        },
        pins,
        loaded_at,
        uid,
    ))
}

/// Rebuilds every pinned program of the state that is not live yet (once per session).
pub fn restore_all(s: &mut Session) -> Result<(), Reply> {
    if s.progs_restored {
        return Ok(());
    }
    s.progs_restored = true;
    let records = s.prog_records().clone();
    for r in &records {
        let (id, origin, pins, loaded_at, uid) = origin_from_record(r)
            .map_err(|e| Reply::err(format!("restoring pinned state: {e}"), -1))?;
        if s.live_progs.contains_key(&id) {
            continue;
        }
        let mut reuse = Vec::new();
        for (name, map_id) in &origin.maps {
            let Some(e) = s.map(*map_id) else {
                return Err(Reply::err(
                    format!("restoring pinned program {id}: its map {map_id} ({name}) is gone"),
                    -1,
                ));
            };
            reuse.push((name.clone(), e.map.clone()));
        }
        let built = build(&origin.object, origin.type_override, &reuse, &s.opts).map_err(|e| {
            Reply::err(
                format!(
                    "restoring pinned program {id} ({} from {}): {}",
                    origin.prog,
                    origin.object.display(),
                    e.message()
                ),
                -1,
            )
        })?;
        let Some(b) = built
            .progs
            .into_iter()
            .find(|p| p.program.name == origin.prog)
        else {
            return Err(Reply::err(
                format!(
                    "restoring pinned program {id}: {} has no program {}",
                    origin.object.display(),
                    origin.prog
                ),
                -1,
            ));
        };
        if !origin.tag.is_empty() && b.program.tag() != origin.tag {
            return Err(Reply::err(
                format!(
                    "restoring pinned program {id}: {} changed (tag {} instead of {})",
                    origin.object.display(),
                    b.program.tag(),
                    origin.tag
                ),
                -1,
            ));
        }
        let map_ids = bound_ids(s, &b.program);
        s.live_progs.insert(
            id,
            LiveProg {
                program: Arc::new(b.program),
                pins,
                map_ids,
                prog_type: b.prog_type,
                loaded_at,
                uid,
                gpl: built.gpl,
                origin,
                _registry: built.registry.clone(),
            },
        );
        s.next_prog_id = s.next_prog_id.max(id + 1);
    }
    // PROG_ARRAY slots of the state, now that their programs exist again.
    let pending = std::mem::take(&mut s.pending_prog_slots);
    for (map_id, slots) in pending {
        let Some(map) = s.map(map_id).map(|e| e.map.clone()) else {
            continue;
        };
        for (key, prog_id) in slots {
            if let Some(r) = prog_ref(s, prog_id) {
                map.update_prog(&key, r, 0).map_err(|e| {
                    Reply::err(format!("restoring prog_array {map_id} slot: {e}"), -1)
                })?;
            }
        }
    }
    Ok(())
}

/// Writes the live programs' records back into the session's state (pinned ones only).
fn sync_records(s: &mut Session) {
    let recs: Vec<serde_json::Value> = s
        .live_progs
        .iter()
        .filter(|(_, p)| !p.pins.is_empty())
        .map(|(id, p)| p.record(*id))
        .collect();
    *s.prog_records() = recs;
    s.touch();
}

fn bound_ids(s: &Session, p: &Program) -> Vec<u32> {
    let mut ids: Vec<u32> = p.maps.iter().filter_map(|m| s.id_of(m)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The `prog` object: selects the command by prefix (no command is `show`).
pub fn command(s: &mut Session, args: &[String], _object: &str) -> Reply {
    type Cmd = fn(&mut Session, &mut Words<'_>) -> Reply;
    const COMMANDS: &[(&str, Cmd, bool)] = &[
        ("show", show, false),
        ("list", show, false),
        ("help", help, false),
        ("dump", dump, false),
        ("pin", pin, true),
        ("load", load, true),
        ("loadall", loadall, true),
        ("attach", unsupported, true),
        ("detach", unsupported, true),
        // Programs write their maps: a run saves the pinned maps' new contents.
        ("run", run, true),
        ("profile", unsupported, false),
        ("tracelog", unsupported, false),
    ];
    let (name, f, writes, rest): (&str, Cmd, bool, &[String]) = match args.first() {
        None => ("show", show, false, &[]),
        Some(w) => match COMMANDS.iter().find(|(n, _, _)| is_prefix(w, n)) {
            Some((_, f, wr)) => (w.as_str(), *f, *wr, &args[1..]),
            None => return usage(s),
        },
    };
    if !is_prefix(name, "help") {
        if let Err(r) = s.load(writes) {
            return r;
        }
        if let Err(r) = restore_all(s) {
            return r;
        }
    }
    let mut w = Words::new(rest, name);
    f(s, &mut w)
}

fn usage(s: &Session) -> Reply {
    Reply::usage(if s.opts.json { "" } else { USAGE })
}

fn help(s: &mut Session, _: &mut Words<'_>) -> Reply {
    if s.opts.json {
        return Reply::ok("", Json::Null);
    }
    Reply::ok(USAGE, Json::Null)
}

fn unsupported(_: &mut Session, _: &mut Words<'_>) -> Reply {
    Reply::err("this prog command is not supported by kbpf", -1)
}

/// Parses `PROG := id ID | pinned FILE | tag TAG | name NAME` into the ids it names.
pub fn parse_progs(s: &Session, w: &mut Words<'_>) -> Result<Vec<u32>, Reply> {
    if w.len() < 2 {
        return Err(usage(s));
    }
    let kw = w.next().unwrap_or_default();
    let arg = w.next().unwrap_or_default();
    if is_prefix(kw, "id") {
        let Some(id) = strtoul(arg, 0).filter(|v| *v <= u32::MAX as u64) else {
            return Err(Reply::err(format!("can't parse {arg} as ID"), -1));
        };
        let id = id as u32;
        if !s.live_progs.contains_key(&id) {
            return Err(Reply::err(
                format!("get by id ({id}): No such file or directory"),
                -1,
            ));
        }
        Ok(vec![id])
    } else if is_prefix(kw, "pinned") {
        Ok(vec![pinned_prog(s, arg)?])
    } else if is_prefix(kw, "tag") {
        let Some(tag) = parse_tag(arg) else {
            return Err(Reply::err("can't parse tag", -1));
        };
        Ok(s.live_progs
            .iter()
            .filter(|(_, p)| p.program.tag() == tag)
            .map(|(id, _)| *id)
            .collect())
    } else if is_prefix(kw, "name") {
        let name: String = arg.chars().take(15).collect();
        Ok(s.live_progs
            .iter()
            .filter(|(_, p)| shown_name(&p.program.name) == name)
            .map(|(id, _)| *id)
            .collect())
    } else {
        Err(Reply::err(
            format!("expected 'id', 'tag', 'name' or 'pinned', got: '{kw}'?"),
            -1,
        ))
    }
}

/// One program handle (bpftool's `prog_parse_fd`).
pub fn parse_prog(s: &Session, w: &mut Words<'_>) -> Result<u32, Reply> {
    let ids = parse_progs(s, w)?;
    match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(Reply::err("no program found", -1)),
        _ => Err(Reply::err("several programs match this handle", -1)),
    }
}

/// The program's name as the kernel keeps it (`BPF_OBJ_NAME_LEN` − 1 characters).
fn shown_name(n: &str) -> String {
    n.chars().take(15).collect()
}

/// bpftool reads a tag as 8 `%hhx` bytes; kbpf accepts the same 16 hex digits (with or
/// without separators between bytes).
fn parse_tag(t: &str) -> Option<String> {
    let hex: String = t.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let ok_chars = t
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == ' ');
    (ok_chars && hex.len() == 16).then(|| hex.to_ascii_lowercase())
}

/// The program pinned at `path`.
pub fn pinned_prog(s: &Session, path: &str) -> Result<u32, Reply> {
    let not_found = || {
        Reply::err(
            format!("bpf obj get ({path}): No such file or directory"),
            -1,
        )
    };
    let rel = s.resolve(path).ok_or_else(not_found)?;
    if !s.opts.bpffs.join(&rel).is_file() {
        return Err(not_found());
    }
    if let Some((id, _)) = s.live_progs.iter().find(|(_, p)| p.pins.contains(&rel)) {
        return Ok(*id);
    }
    if s.maps().any(|(_, e)| e.pins.contains(&rel)) {
        return Err(Reply::err("incorrect object type: map", -1));
    }
    Err(Reply::err(
        format!("bpf obj get ({path}): Permission denied"),
        -1,
    ))
}

/// Pins program `id` at `path` (the same rules and errors as `map pin`).
pub fn pin_prog(s: &mut Session, id: u32, path: &str) -> Result<(), Reply> {
    let rel = s.write_pin("prog", id, path)?;
    if let Some(p) = s.live_progs.get_mut(&id) {
        p.pins.push(rel);
    }
    sync_records(s);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// show

fn gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// `sizeof(struct bpf_prog)` up to `insns[]` on x86-64 6.x, for the page count the kernel
/// charges (`memlock`).
const BPF_PROG_HEADER: usize = 72;

fn memlock(p: &Program) -> u64 {
    let bytes = BPF_PROG_HEADER + p.xlated.insns.len().max(p.insns.len()) * 8;
    bytes.div_ceil(4096) as u64 * 4096
}

fn local_time(t: i64) -> String {
    // SAFETY: localtime_r and strftime write only into the buffers given.
    unsafe {
        let tt = t as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&tt, &mut tm).is_null() {
            return t.to_string();
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%FT%T%z".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

fn show_one(id: u32, p: &LiveProg) -> (String, Json) {
    let prog = &p.program;
    let tag = prog.tag();
    let mut line1 = format!(
        "{id}: {}  name {}  tag {tag}",
        prog_type_name(p.prog_type),
        shown_name(&prog.name)
    );
    if p.gpl {
        line1.push_str("  gpl");
    }
    let xlated = prog.xlated.insns.len() * 8;
    let mem = memlock(prog);
    let jited = prog.jit().map(|j| j.image().len()).ok();
    let mut line3 = match jited {
        Some(n) => format!("\txlated {xlated}B  jited {n}B  memlock {mem}B"),
        None => format!("\txlated {xlated}B  not jited  memlock {mem}B"),
    };
    if !p.map_ids.is_empty() {
        let ids: Vec<String> = p.map_ids.iter().map(|i| i.to_string()).collect();
        line3.push_str(&format!("  map_ids {}", ids.join(",")));
    }
    let text = format!(
        "{line1}\n\tloaded_at {}  uid {}\n{line3}\n",
        local_time(p.loaded_at),
        p.uid
    );
    let mut fields = vec![
        ("id", Json::U(id as u64)),
        ("type", Json::s(prog_type_name(p.prog_type))),
        ("name", Json::s(shown_name(&prog.name))),
        ("tag", Json::s(tag)),
        ("gpl_compatible", Json::B(p.gpl)),
        ("loaded_at", Json::I(p.loaded_at)),
        ("uid", Json::U(p.uid as u64)),
        ("bytes_xlated", Json::U(xlated as u64)),
        ("jited", Json::B(jited.is_some())),
    ];
    if let Some(n) = jited {
        fields.push(("bytes_jited", Json::U(n as u64)));
    }
    fields.push(("bytes_memlock", Json::U(mem)));
    if !p.map_ids.is_empty() {
        fields.push((
            "map_ids",
            Json::A(p.map_ids.iter().map(|i| Json::U(*i as u64)).collect()),
        ));
    }
    if !p.pins.is_empty() {
        fields.push((
            "pinned",
            Json::A(
                p.pins
                    .iter()
                    .map(|r| Json::s(format!("{SYS_BPFFS}/{r}")))
                    .collect(),
            ),
        ));
    }
    (text, Json::obj(fields))
}

fn show(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let (ids, single) = match show_selection(
        s,
        w,
        |s| s.live_progs.keys().copied().collect(),
        parse_progs,
    ) {
        Ok(selection) => selection,
        Err(r) => return r,
    };
    let mut text = String::new();
    let mut js = Vec::new();
    for id in ids {
        let (mut t, mut j) = show_one(id, &s.live_progs[&id]);
        crate::btf::prog_show(s, id, &mut t, &mut j);
        text.push_str(&t);
        js.push(j);
    }
    Reply::shown(text, js, single)
}

// ---------------------------------------------------------------------------------------
// dump

fn dump(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let jited = match w.peek() {
        Some(x) if is_prefix(x, "jited") => true,
        Some(x) if is_prefix(x, "xlated") => false,
        Some(x) => return Reply::err(format!("expected 'xlated' or 'jited', got: {x}"), -1),
        None => return usage(s),
    };
    w.next();
    if w.len() < 2 {
        return usage(s);
    }
    let id = match parse_prog(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut opts = DumpOptions {
        dialect: kbpf_isa::disasm::Dialect::Bpftool71,
        ..Default::default()
    };
    let mut visual = false;
    let mut file = None;
    if let Some(x) = w.peek() {
        if is_prefix(x, "file") {
            w.next();
            match w.next() {
                Some(f) => file = Some(f.to_string()),
                None => {
                    return Reply::err("expected file path", -1);
                }
            }
        } else if is_prefix(x, "opcodes") {
            w.next();
            opts.opcodes = true;
        } else if is_prefix(x, "visual") {
            w.next();
            visual = true;
        } else if is_prefix(x, "linum") {
            w.next();
            opts.linum = true;
        }
    }
    if !w.is_empty() {
        return usage(s);
    }
    let prog = s.live_progs[&id].program.clone();
    if jited {
        return match prog.dump_jited(opts.opcodes) {
            Ok(text) => Reply::ok(text, Json::Null),
            // bpftool's answer for a program the kernel did not JIT.
            Err(_) => Reply::err("no instructions returned", -1),
        };
    }
    if let Some(f) = file {
        let bytes = insns_to_bytes(&dump_insns(s, &prog));
        return match std::fs::write(&f, bytes) {
            Ok(()) => Reply::ok("", Json::Null),
            Err(e) => Reply::err(format!("can't open file {f}: {}", strerror(&e)), -1),
        };
    }
    if visual {
        if s.opts.json {
            return Reply::ok("", Json::Null);
        }
        return Reply::ok(session_ids(s, &dot_graph(&prog)), Json::Null);
    }
    let text = session_ids(s, &prog.dump_xlated(&opts));
    let json = dump_json(s, &prog, &text, opts);
    Reply::ok(text, json)
}

/// The dump's instructions with map ids as the session shows them.
fn dump_insns(s: &Session, prog: &Program) -> Vec<Insn> {
    let mut insns = insns_for_dump(&prog.xlated);
    let mut i = 0;
    while i < insns.len() {
        if insns[i].is_ld_imm64() {
            let src = insns[i].src();
            if (src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE)
                && let Some(id) = s.id_of_kid(insns[i].imm as u32)
            {
                insns[i].imm = id as i32;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    insns
}

/// Rewrites kbpf-maps' map ids in dump text (`map[id:K]`, and the `imm` bytes of the
/// `opcodes` line after it) into the session's map ids, which `map show` uses.
fn session_ids(s: &Session, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut patch: Option<u32> = None;
    for line in text.lines() {
        let mut l = line.to_string();
        if let Some(id) = patch.take() {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            let mut bytes: Vec<String> = t.split(' ').map(String::from).collect();
            if bytes.len() >= 8 && bytes.iter().all(|b| b.len() == 2) {
                for (k, b) in id.to_le_bytes().iter().enumerate() {
                    bytes[4 + k] = format!("{b:02x}");
                }
                l = format!("{}{}", &line[..indent], bytes.join(" "));
            }
        }
        if let Some(p) = l.find("map[id:") {
            let start = p + "map[id:".len();
            if let Some(e) = l[start..].find(']')
                && let Some(id) = l[start..start + e]
                    .parse()
                    .ok()
                    .and_then(|k| s.id_of_kid(k))
            {
                l.replace_range(start..start + e, &id.to_string());
                patch = Some(id);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A numbered instruction line of the dump: `   N: (op) text`.
fn insn_line(l: &str) -> Option<(usize, &str)> {
    let t = l.trim_start();
    let colon = t.find(": (")?;
    let n = t[..colon].parse().ok()?;
    Some((n, &t[colon + 2..]))
}

fn hex_list(b: &[u8]) -> Json {
    Json::A(b.iter().map(|x| Json::s(format!("0x{x:02x}"))).collect())
}

/// `-j prog dump xlated`: one object per instruction with the prototype, source line
/// (and `linum` fields) that precede it, and with `opcodes` the instruction's fields.
fn dump_json(s: &Session, prog: &Program, text: &str, opts: DumpOptions) -> Json {
    let insns = dump_insns(s, prog);
    let mut out = Vec::new();
    let mut proto: Option<String> = None;
    let mut src: Option<String> = None;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("; ") {
            src = Some(rest.to_string());
            continue;
        }
        if let Some((n, dis)) = insn_line(l) {
            let mut f: Vec<(&str, Json)> = Vec::new();
            if let Some(p) = proto.take() {
                f.push(("proto", Json::s(p)));
            }
            if let Some(sline) = src.take() {
                match (opts.linum, sline.rfind(" [file:")) {
                    (true, Some(i)) => {
                        f.push(("src", Json::s(&sline[..i])));
                        let meta = sline[i + 7..].trim_end_matches(']');
                        let mut parts = meta.split(' ');
                        let file = parts.next().unwrap_or_default();
                        f.push(("file", Json::s(file)));
                        for p in parts {
                            if let Some((k, v)) = p.split_once(':') {
                                let key = if k == "line_num" {
                                    "line_num"
                                } else {
                                    "line_col"
                                };
                                f.push((key, Json::U(v.parse().unwrap_or(0))));
                            }
                        }
                    }
                    _ => f.push(("src", Json::s(sline))),
                }
            }
            f.push(("disasm", Json::s(dis)));
            if opts.opcodes
                && let Some(i) = insns.get(n)
            {
                let b = i.to_bytes();
                let mut imm = b[4..8].to_vec();
                if i.is_ld_imm64()
                    && let Some(next) = insns.get(n + 1)
                {
                    imm.extend_from_slice(&next.to_bytes());
                }
                f.push((
                    "opcodes",
                    Json::obj([
                        ("code", Json::s(format!("0x{:02x}", i.code))),
                        ("src_reg", Json::s(format!("0x{:x}", i.src()))),
                        ("dst_reg", Json::s(format!("0x{:x}", i.dst()))),
                        ("off", hex_list(&b[2..4])),
                        ("imm", hex_list(&imm)),
                    ]),
                ));
            }
            out.push(Json::obj(f));
            continue;
        }
        if let Some(p) = l.strip_suffix(':')
            && !l.starts_with(' ')
        {
            proto = Some(p.to_string());
        }
    }
    Json::A(out)
}

/// The control-flow graph as DOT, laid out as `bpftool prog dump xlated … visual`: one
/// dashed cluster per function, an ENTRY and EXIT node per function, one record node per
/// basic block listing its instructions, edges fall-through first then the jump target.
pub fn dot_graph(prog: &Program) -> String {
    let insns = insns_for_dump(&prog.xlated);
    let plain = prog.dump_xlated(&DumpOptions {
        dialect: kbpf_isa::disasm::Dialect::Bpftool71,
        ..Default::default()
    });
    let mut lines: BTreeMap<usize, String> = BTreeMap::new();
    for l in plain.lines() {
        if let Some((n, _)) = insn_line(l) {
            lines.insert(n, l.to_string());
        }
    }
    let mut starts: Vec<usize> = prog.xlated.subprog_starts.clone();
    if starts.is_empty() || starts[0] != 0 {
        starts.insert(0, 0);
    }
    starts.sort_unstable();
    starts.dedup();
    let mut out = String::from("digraph \"DOT graph for eBPF program\" {\n");
    for (fi, &fstart) in starts.iter().enumerate() {
        let fend = starts.get(fi + 1).copied().unwrap_or(insns.len());
        out.push_str(&func_graph(fi, fstart, fend, &insns, &lines));
    }
    out.push_str("}\n");
    out
}

/// Jump target of a jump at `i` (None for calls, exits and non-jumps).
fn jump_target(insn: &Insn, i: usize) -> Option<usize> {
    let class = insn.class();
    if class != BPF_JMP && class != BPF_JMP32 {
        return None;
    }
    let op = insn.code & 0xf0;
    if op == BPF_CALL || op == BPF_EXIT {
        return None;
    }
    let off = if class == BPF_JMP32 && op == BPF_JA {
        insn.imm as i64
    } else {
        insn.off as i64
    };
    let t = i as i64 + off + 1;
    (t >= 0).then_some(t as usize)
}

fn is_exit(insn: &Insn) -> bool {
    insn.class() == BPF_JMP && insn.code & 0xf0 == BPF_EXIT
}

fn is_goto(insn: &Insn) -> bool {
    (insn.class() == BPF_JMP || insn.class() == BPF_JMP32) && insn.code & 0xf0 == BPF_JA
}

fn dot_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '<' | '>' | '|' | '&' | '{' | '}' | '"' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

fn func_graph(
    fi: usize,
    start: usize,
    end: usize,
    insns: &[Insn],
    lines: &BTreeMap<usize, String>,
) -> String {
    // Instruction positions of the function (skipping the second half of ld_imm64).
    let mut pos = Vec::new();
    let mut i = start;
    while i < end {
        pos.push(i);
        i += if insns[i].is_ld_imm64() { 2 } else { 1 };
    }
    let mut leaders = std::collections::BTreeSet::new();
    leaders.insert(start);
    for &p in &pos {
        let insn = &insns[p];
        if let Some(t) = jump_target(insn, p) {
            if (start..end).contains(&t) {
                leaders.insert(t);
            }
            let next = p + 1;
            if next < end {
                leaders.insert(next);
            }
        } else if is_exit(insn) && p + 1 < end {
            leaders.insert(p + 1);
        }
    }
    let leaders: Vec<usize> = leaders.into_iter().collect();
    // Block k (0-based) gets node number k + 2; 0 is ENTRY and 1 is EXIT.
    let block_of = |insn: usize| -> usize {
        match leaders.binary_search(&insn) {
            Ok(k) => k + 2,
            Err(k) => k + 1,
        }
    };
    let mut o = format!(
        "subgraph \"cluster_{fi}\" {{\n\tstyle=\"dashed\";\n\tcolor=\"black\";\n\tlabel=\"func_{fi} ()\";\n\tfn_{fi}_bb_0 [shape=Mdiamond,style=filled,label=\"ENTRY\"];\n\n"
    );
    let mut edges = vec![(0usize, 2usize)];
    for (k, &b) in leaders.iter().enumerate() {
        let bend = leaders.get(k + 1).copied().unwrap_or(end);
        let members: Vec<usize> = pos
            .iter()
            .copied()
            .filter(|p| (b..bend).contains(p))
            .collect();
        o.push_str(&format!(
            "\tfn_{fi}_bb_{} [shape=record,style=filled,label=\"{{",
            k + 2
        ));
        for (j, p) in members.iter().enumerate() {
            let line = lines.get(p).cloned().unwrap_or_default();
            if j > 0 {
                o.push_str(" | ");
            }
            o.push_str(&dot_escape(&line));
            o.push_str("\\l\\\n");
        }
        o.push_str("}\"];\n\n");
        let Some(&last) = members.last() else {
            continue;
        };
        let li = &insns[last];
        let node = k + 2;
        // As bpftool draws it, an `exit` falls through to the next block like any other
        // instruction; only the last block links to EXIT.
        if let Some(t) = jump_target(li, last) {
            if !is_goto(li) && bend < end {
                edges.push((node, block_of(bend)));
            }
            if (start..end).contains(&t) {
                edges.push((node, block_of(t)));
            }
        } else if bend < end {
            edges.push((node, block_of(bend)));
        } else {
            edges.push((node, 1));
        }
    }
    o.push_str(&format!(
        "\tfn_{fi}_bb_1 [shape=Mdiamond,style=filled,label=\"EXIT\"];\n\n"
    ));
    for (a, b) in edges {
        o.push_str(&format!(
            "\tfn_{fi}_bb_{a}:s -> fn_{fi}_bb_{b}:n [style=\"solid,bold\", color=black, weight=10, constraint=true];\n"
        ));
    }
    o.push_str(&format!(
        "\tfn_{fi}_bb_0:s -> fn_{fi}_bb_1:n [style=\"invis\", constraint=true];\n}}\n"
    ));
    o
}

// ---------------------------------------------------------------------------------------
// pin

fn pin(s: &mut Session, w: &mut Words<'_>) -> Reply {
    if let Err(e) = w.require(3) {
        return e.into();
    }
    let id = match parse_prog(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(path) = w.next() else {
        return usage(s);
    };
    match pin_prog(s, id, path) {
        Ok(()) => Reply::ok("", Json::Null),
        Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------------
// load / loadall

/// What `build` gives back for each program of the object.
struct Built {
    program: Program,
    prog_type: u32,
}

struct BuiltObject {
    progs: Vec<Built>,
    /// Programs not loaded because their autoload is off (`SEC("?…")`), in object order.
    not_loaded: Vec<String>,
    /// Every map of the object: libbpf name, map, reused, template record.
    maps: Vec<(String, Map, bool, Option<TemplateRecord>)>,
    /// PROG_ARRAY initial slots (`.values = { [0] = &prog }`), written once the programs
    /// exist, as libbpf's `bpf_object__init_prog_arrays` does.
    prog_slots: Vec<kbpf_loader::ProgSlot>,
    gpl: bool,
    registry: Arc<Registry>,
    /// With `-d`: the verifier logs of the loaded programs (libbpf's lines, for stderr).
    debug_log: String,
}

/// Why `build` failed: the libbpf-style lines printed on stderr, then bpftool's error.
struct BuildError {
    libbpf: String,
    error: String,
    /// Whether bpftool adds its libbpf-strict-mode warning (failures after opening).
    warn: bool,
}

impl BuildError {
    fn message(&self) -> String {
        format!("{}{}", self.libbpf, self.error)
    }
}

fn errno_text(errno: i32) -> String {
    strerror(&std::io::Error::from_raw_os_error(errno))
}

/// Loads every program of `path` the way `bpf_object__load` does, reusing the maps given by
/// name, under the session's kernel profile; with `-d` the verifier log (level 2) is printed
/// also on success (bpftool's `-d`).
fn build(
    path: &Path,
    type_override: Option<u32>,
    reuse: &[(String, Map)],
    opts: &crate::bpftool::Options,
) -> Result<BuiltObject, BuildError> {
    build_with(path, type_override, reuse, &[], opts)
}

fn build_with(
    path: &Path,
    type_override: Option<u32>,
    reuse: &[(String, Map)],
    reuse_idx: &[(usize, Map)],
    opts: &crate::bpftool::Options,
) -> Result<BuiltObject, BuildError> {
    let debug = opts.debug;
    let mut debug_log = String::new();
    let shown = path.display().to_string();
    let obj = kbpf_object::BpfObject::open(path).map_err(|e| BuildError {
        libbpf: if path.exists() {
            format!("libbpf: failed to open {shown}: {e}\n")
        } else {
            format!("libbpf: elf: failed to open {shown}: No such file or directory\n")
        },
        error: "failed to open object file".into(),
        warn: false,
    })?;
    let registry = Arc::new(Registry::new());
    let core_target = crate::kernel::core_target(&opts.profile).map_err(|e| BuildError {
        libbpf: format!("libbpf: {e}\n"),
        error: "failed to load object file".into(),
        warn: true,
    })?;
    let mut lopts = kbpf_loader::LoadOptions {
        maps_profile: opts.profile.maps,
        core_target,
        ..Default::default()
    };
    for (n, m) in reuse {
        lopts = lopts.reuse_map(n, m.clone());
    }
    for (i, m) in reuse_idx {
        lopts = lopts.reuse_map_index(*i, m.clone());
    }
    let loaded = kbpf_loader::load_object(&obj, &registry, &lopts).map_err(|e| BuildError {
        libbpf: format!("libbpf: {e}\nlibbpf: failed to load object '{shown}'\n"),
        error: "failed to load object file".into(),
        warn: true,
    })?;
    let env = kbpf_run::maps_env(&loaded);
    let mut progs = Vec::new();
    // bpf_object__load skips programs whose autoload is off (`SEC("?…")`).
    for lp in loaded.programs.iter().filter(|p| p.autoload) {
        let btf = kbpf_run::funcs_btf(&obj, lp);
        let ropts = kbpf_run::LoadOptions {
            log_level: if debug { 2 } else { 1 },
            prog_type: type_override,
            profile: opts.profile.clone(),
            ..Default::default()
        };
        match Program::load(lp, &env, &ropts, &btf) {
            Ok(p) => {
                if debug {
                    debug_log.push_str(&format!(
                        "libbpf: prog '{}': -- BEGIN PROG LOAD LOG --\n{}{}-- END PROG LOAD LOG --\n",
                        lp.name,
                        p.verifier_log,
                        if p.verifier_log.ends_with('\n') || p.verifier_log.is_empty() {
                            ""
                        } else {
                            "\n"
                        }
                    ));
                }
                let t = p.prog_type.as_u32();
                progs.push(Built {
                    program: p,
                    prog_type: t,
                });
            }
            Err(e) => {
                let errno = e.errno();
                let mut l = format!(
                    "libbpf: prog '{}': BPF program load failed: {}\n",
                    lp.name,
                    errno_text(errno)
                );
                match e.log() {
                    Some(log) if !log.is_empty() => {
                        l.push_str(&format!(
                            "libbpf: prog '{}': -- BEGIN PROG LOAD LOG --\n{log}{}-- END PROG LOAD LOG --\n",
                            lp.name,
                            if log.ends_with('\n') { "" } else { "\n" }
                        ));
                    }
                    _ => l.push_str(&format!("libbpf: prog '{}': {e}\n", lp.name)),
                }
                l.push_str(&format!(
                    "libbpf: prog '{}': failed to load: -{errno}\nlibbpf: failed to load object '{shown}'\n",
                    lp.name
                ));
                return Err(BuildError {
                    libbpf: l,
                    error: "failed to load object file".into(),
                    warn: true,
                });
            }
        }
    }
    let maps = loaded
        .maps
        .iter()
        .map(|lm| {
            let t = lm.map.inner_map_meta().map(|meta| {
                let d = meta.desc();
                TemplateRecord {
                    map_type: d.map_type.raw(),
                    key_size: d.key_size,
                    value_size: d.value_size,
                    max_entries: d.max_entries,
                    map_flags: d.map_flags,
                }
            });
            (lm.name.clone(), lm.map.clone(), lm.reused, t)
        })
        .collect();
    Ok(BuiltObject {
        progs,
        not_loaded: loaded
            .programs
            .iter()
            .filter(|p| !p.autoload)
            .map(|p| p.name.clone())
            .collect(),
        maps,
        prog_slots: loaded.pending_prog_slots.clone(),
        gpl: gpl_compatible(&loaded.license),
        registry,
        debug_log,
    })
}

/// The parsed `prog load`/`loadall` arguments.
#[derive(Debug, Default, PartialEq)]
pub struct LoadArgs {
    /// The object file.
    pub object: String,
    /// Where to pin.
    pub path: String,
    /// `type TYPE` (the program type number).
    pub prog_type: Option<u32>,
    /// `map idx IDX MAP` / `map name NAME MAP`: the map's selector and the kbpf map id.
    pub maps: Vec<(MapSel, u32)>,
    /// `pinmaps DIR`.
    pub pinmaps: Option<String>,
}

/// `map { idx IDX | name NAME }`.
#[derive(Clone, Debug, PartialEq)]
pub enum MapSel {
    /// By position among the object's maps.
    Idx(usize),
    /// By name.
    Name(String),
}

/// Parses `OBJ PATH [type TYPE] [map {idx IDX | name NAME} MAP]... [pinmaps DIR]` as bpftool
/// does (keywords by prefix, in any order). `Err` carries stderr text printed before the
/// error (libbpf's lines for an unknown type) and the reply.
pub fn parse_load_args(s: &Session, w: &mut Words<'_>) -> Result<LoadArgs, (String, Reply)> {
    w.require(2).map_err(|e| (String::new(), Reply::from(e)))?;
    let mut a = LoadArgs {
        object: w.next().unwrap_or_default().to_string(),
        path: w.next().unwrap_or_default().to_string(),
        ..LoadArgs::default()
    };
    while let Some(word) = w.peek() {
        if is_prefix(word, "type") {
            w.next();
            let Some(t) = w.next() else {
                return Err((
                    String::new(),
                    GrammarError::new("'type' needs at least 1 arguments, 0 found").into(),
                ));
            };
            match LOAD_TYPES.iter().find(|(n, _)| *n == t) {
                Some((_, n)) => a.prog_type = Some(*n),
                None => {
                    return Err((
                        format!(
                            "libbpf: failed to guess program type from ELF section '{t}/'\nlibbpf: supported section(type) names are: {LIBBPF_SECTIONS}\n"
                        ),
                        Reply::silent(-1),
                    ));
                }
            }
        } else if is_prefix(word, "map") {
            w.next();
            if let Err(e) = w.require(4) {
                return Err((String::new(), e.into()));
            }
            let kind = w.next().unwrap_or_default();
            let val = w.next().unwrap_or_default();
            let sel = if is_prefix(kind, "idx") {
                match strtoul(val, 0) {
                    Some(i) => MapSel::Idx(i as usize),
                    None => {
                        return Err((
                            String::new(),
                            Reply::err(format!("can't parse map index {val}"), -1),
                        ));
                    }
                }
            } else if is_prefix(kind, "name") {
                MapSel::Name(val.to_string())
            } else {
                return Err((
                    String::new(),
                    Reply::err(format!("expected 'idx' or 'name', got: '{kind}'?"), -1),
                ));
            };
            let id = crate::map::parse_map_handle(s, w).map_err(|r| (String::new(), r))?;
            a.maps.push((sel, id));
        } else if is_prefix(word, "pinmaps") {
            w.next();
            let Some(d) = w.next() else {
                return Err((
                    String::new(),
                    GrammarError::new("'pinmaps' needs at least 1 arguments, 0 found").into(),
                ));
            };
            a.pinmaps = Some(d.to_string());
        } else {
            return Err((
                String::new(),
                Reply::err(
                    format!("expected no more arguments, 'type', 'map' or 'dev', got: '{word}'?"),
                    -1,
                ),
            ));
        }
    }
    Ok(a)
}

fn load(s: &mut Session, w: &mut Words<'_>) -> Reply {
    load_cmd(s, w, true)
}

fn loadall(s: &mut Session, w: &mut Words<'_>) -> Reply {
    load_cmd(s, w, false)
}

fn fail(s: &mut Session, libbpf: &str, r: Reply, warn: bool) -> Reply {
    // libbpf prints as it goes, before bpftool's own error (also under -j).
    s.note(libbpf);
    let mut r = r;
    if warn && !s.opts.json {
        r.stderr.push_str(STRICT_WARNING);
    }
    r
}

/// The message of an error reply (without `Error: `).
fn err_text(r: &Reply) -> String {
    r.stderr
        .trim_end()
        .strip_prefix("Error: ")
        .unwrap_or(r.stderr.trim_end())
        .to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `mkdir` of a pin directory as libbpf and bpftool do it (the parent must exist).
fn make_pin_dir(s: &Session, path: &str) -> Result<(), String> {
    let Some(rel) = s.resolve(path) else {
        return Err(format!(
            "can't mount BPF file system to pin the object ({path}): not under {SYS_BPFFS}"
        ));
    };
    let dir = s.opts.bpffs.join(rel);
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir(&dir).map_err(|e| {
        format!(
            "can't mount BPF file system to pin the object ({path}): mount --make-private {path} failed: {}",
            strerror(&e)
        )
    })
}

fn load_cmd(s: &mut Session, w: &mut Words<'_>, first_only: bool) -> Reply {
    let args = match parse_load_args(s, w) {
        Ok(a) => a,
        Err((pre, r)) => return fail(s, &pre, r, false),
    };
    let object = match std::fs::canonicalize(&args.object) {
        Ok(p) => p,
        Err(_) => PathBuf::from(&args.object),
    };
    let mut reuse = Vec::new();
    let mut reuse_idx = Vec::new();
    for (sel, id) in &args.maps {
        let Some(e) = s.map(*id) else {
            return Reply::err(
                format!("get map by id ({id}): No such file or directory"),
                -1,
            );
        };
        match sel {
            MapSel::Name(n) => reuse.push((n.clone(), e.map.clone())),
            MapSel::Idx(i) => reuse_idx.push((*i, e.map.clone())),
        }
    }
    // bpftool checks that named maps exist in the object before loading.
    if let Ok(obj) = kbpf_object::BpfObject::open(&object) {
        for (n, _) in &reuse {
            if !obj.maps.iter().any(|m| &m.name == n) {
                return Reply::err(
                    format!("unable to find map {n}: No such file or directory"),
                    -1,
                );
            }
        }
        for (i, _) in &reuse_idx {
            if *i >= obj.maps.len() {
                return Reply::err(
                    format!(
                        "map index {i} is too big, the object has only {} maps",
                        obj.maps.len()
                    ),
                    -1,
                );
            }
        }
    }
    let shown = Path::new(&args.object);
    let mut built = match build_with(shown, args.prog_type, &reuse, &reuse_idx, &s.opts) {
        Ok(b) => b,
        Err(e) => return fail(s, &e.libbpf, Reply::err(e.error, -1), e.warn),
    };
    let log = std::mem::take(&mut built.debug_log);
    s.note(&log);
    // The maps join the session (reused ones are there already).
    let mut names: BTreeMap<String, u32> = BTreeMap::new();
    let mut map_pins = Vec::new();
    for (name, map, _reused, tmpl) in &built.maps {
        let id = match s.id_of(map) {
            Some(id) => id,
            None => s.add_map(map.clone(), tmpl.clone()),
        };
        names.insert(name.clone(), id);
        map_pins.push((name.clone(), id));
    }
    if built.progs.is_empty() {
        return fail(
            s,
            &format!("libbpf: failed to load object '{}'\n", args.object),
            Reply::err("object file doesn't contain any bpf program", -1),
            true,
        );
    }
    // Pin the programs.
    if !first_only && let Err(m) = make_pin_dir(s, &args.path) {
        return fail(s, "", Reply::err(m, -1), true);
    }
    // bpf_object__pin_programs refuses a program that was not loaded (autoload off).
    if !first_only && let Some(name) = built.not_loaded.first() {
        return fail(
            s,
            &format!("libbpf: prog '{name}': can't pin program that wasn't loaded\n"),
            Reply::err("failed to pin all programs", -1),
            true,
        );
    }
    let registry = built.registry.clone();
    let gpl = built.gpl;
    let prog_slots = std::mem::take(&mut built.prog_slots);
    let slot_maps: Vec<(String, Map)> = built
        .maps
        .iter()
        .map(|(n, m, ..)| (n.clone(), m.clone()))
        .collect();
    let uid = unsafe { libc::getuid() };
    let loaded_at = now();
    let mut new_ids = Vec::new();
    for (k, b) in built.progs.into_iter().enumerate() {
        let program = b.program;
        let bound = bound_ids(s, &program);
        let maps: BTreeMap<String, u32> = names
            .iter()
            .filter(|(_, id)| bound.contains(id))
            .map(|(n, id)| (n.clone(), *id))
            .collect();
        let id = s.next_prog_id;
        s.next_prog_id += 1;
        let origin = Origin {
            object: object.clone(),
            prog: program.name.clone(),
            type_override: args.prog_type,
            maps,
            tag: program.tag(),
        };
        let pin_path = if first_only {
            if k > 0 {
                // Loaded (and verified) but not pinned: gone at the end of the command.
                continue;
            }
            args.path.clone()
        } else {
            format!("{}/{}", args.path.trim_end_matches('/'), program.name)
        };
        s.live_progs.insert(
            id,
            LiveProg {
                program: Arc::new(program),
                pins: Vec::new(),
                map_ids: bound,
                prog_type: b.prog_type,
                loaded_at,
                uid,
                gpl,
                origin,
                _registry: registry.clone(),
            },
        );
        new_ids.push(id);
        if let Err(r) = pin_prog(s, id, &pin_path) {
            let name = s.live_progs[&id].program.name.clone();
            for i in &new_ids {
                s.live_progs.remove(i);
            }
            sync_records(s);
            if first_only {
                return fail(s, "", r, true);
            }
            let why = err_text(&r);
            let errtext = why.rsplit(": ").next().unwrap_or("").to_string();
            return fail(
                s,
                &format!("libbpf: prog '{name}': failed to pin at '{pin_path}': {errtext}\n"),
                Reply::err("failed to pin all programs", -1),
                true,
            );
        }
    }
    // PROG_ARRAY initial slots, now that the programs have ids.
    for slot in &prog_slots {
        let map = slot_maps
            .iter()
            .find(|(n, _)| *n == slot.map)
            .map(|(_, m)| m);
        let pid = new_ids
            .iter()
            .copied()
            .find(|id| s.live_progs[id].program.name == slot.program);
        if let (Some(map), Some(pid)) = (map, pid)
            && let Some(r) = prog_ref(s, pid)
            && let Err(e) = map.update_prog(&slot.slot.to_ne_bytes(), r, 0)
        {
            return fail(
                s,
                &format!(
                    "libbpf: map '{}': failed to initialize slot [{}] to prog '{}': {e}
",
                    slot.map, slot.slot, slot.program
                ),
                Reply::err("failed to load object file", -1),
                true,
            );
        }
    }
    if let Some(dir) = &args.pinmaps {
        if let Err(m) = make_pin_dir(s, dir) {
            return fail(s, "", Reply::err(m, -1), true);
        }
        for (name, id) in map_pins {
            // libbpf's pin names: `.` (internal maps: `obj.bss`) becomes `_`.
            let p = format!("{}/{}", dir.trim_end_matches('/'), name.replace('.', "_"));
            if let Err(r) = s.pin_map(id, &p) {
                let why = err_text(&r);
                let errtext = why.rsplit(": ").next().unwrap_or("").to_string();
                return fail(
                    s,
                    &format!("libbpf: map '{name}': failed to pin at '{p}': {errtext}\n"),
                    Reply::err("failed to pin all maps", -1),
                    true,
                );
            }
        }
    }
    sync_records(s);
    Reply::ok("", Json::Null)
}

// ---------------------------------------------------------------------------------------
// run

/// The parsed `prog run` arguments after `PROG`.
#[derive(Debug, Default, PartialEq)]
pub struct RunArgs {
    /// `data_in FILE` (`-` is stdin).
    pub data_in: Option<String>,
    /// `data_out FILE` (`-` is stdout).
    pub data_out: Option<String>,
    /// `data_size_out L`.
    pub data_size_out: Option<u32>,
    /// `ctx_in FILE`.
    pub ctx_in: Option<String>,
    /// `ctx_out FILE`.
    pub ctx_out: Option<String>,
    /// `ctx_size_out M`.
    pub ctx_size_out: Option<u32>,
    /// `repeat N`.
    pub repeat: u32,
    /// `--engine interp|jit` (kbpf's).
    pub engine: Engine,
}

/// Parses the `prog run` words after `PROG` (bpftool's keywords, any order, and kbpf's
/// `--engine` / `engine` option).
pub fn parse_run_args(w: &mut Words<'_>) -> Result<RunArgs, Reply> {
    let mut a = RunArgs {
        // 0 = one run for every type the kernel repeats (it treats 0 as 1); unlike bpftool
        // 7.1, which always sends 1, this lets raw tracepoint programs run at all (their
        // test run refuses any repeat count).
        repeat: 0,
        // The JIT where there is one (x86-64); elsewhere the interpreter.
        engine: if cfg!(target_arch = "x86_64") {
            Engine::Jit
        } else {
            Engine::Interpreter
        },
        ..RunArgs::default()
    };
    while let Some(word) = w.peek() {
        let need = |w: &mut Words<'_>| -> Result<String, Reply> {
            w.next();
            w.require(1).map_err(Reply::from)?;
            Ok(w.next().unwrap_or_default().to_string())
        };
        if word == "--engine" || word == "engine" {
            let v = need(w)?;
            a.engine = match v.as_str() {
                "interp" | "interpreter" => Engine::Interpreter,
                "jit" => Engine::Jit,
                _ => {
                    return Err(Reply::err(
                        format!("unknown engine '{v}' (interp or jit)"),
                        -1,
                    ));
                }
            };
        } else if let Some(e) = word.strip_prefix("--engine=") {
            w.next();
            a.engine = match e {
                "interp" | "interpreter" => Engine::Interpreter,
                "jit" => Engine::Jit,
                _ => {
                    return Err(Reply::err(
                        format!("unknown engine '{e}' (interp or jit)"),
                        -1,
                    ));
                }
            };
        } else if is_prefix(word, "data_in") {
            a.data_in = Some(need(w)?);
        } else if is_prefix(word, "data_out") {
            a.data_out = Some(need(w)?);
        } else if is_prefix(word, "data_size_out") {
            let v = need(w)?;
            a.data_size_out = Some(parse_u32(&v, "output data size")?);
        } else if is_prefix(word, "ctx_in") {
            a.ctx_in = Some(need(w)?);
        } else if is_prefix(word, "ctx_out") {
            a.ctx_out = Some(need(w)?);
        } else if is_prefix(word, "ctx_size_out") {
            let v = need(w)?;
            a.ctx_size_out = Some(parse_u32(&v, "output context size")?);
        } else if is_prefix(word, "repeat") {
            let v = need(w)?;
            a.repeat = parse_u32(&v, "repeat number")?;
        } else {
            return Err(Reply::err(
                format!(
                    "expected no more arguments, 'data_in', 'data_out', 'data_size_out', 'ctx_in', 'ctx_out', 'ctx_size_out' or 'repeat', got: '{word}'?"
                ),
                -1,
            ));
        }
    }
    Ok(a)
}

fn parse_u32(v: &str, what: &str) -> Result<u32, Reply> {
    strtoul(v, 0)
        .filter(|n| *n <= u32::MAX as u64)
        .map(|n| n as u32)
        .ok_or_else(|| Reply::err(format!("can't parse {v} as {what}"), -1))
}

fn read_input(s: &mut Session, f: &str) -> Result<Vec<u8>, Reply> {
    if f == "-" {
        return s
            .read_stdin()
            .map_err(|e| Reply::err(format!("failed to read stdin: {}", strerror(&e)), -1));
    }
    std::fs::read(f).map_err(|e| Reply::err(format!("failed to open {f}: {}", strerror(&e)), -1))
}

/// bpftool's hex dump of `data_out -`: `%07x` offset, a tab, 16 bytes in pairs, ` | ` and
/// the printable characters with a blank after the eighth.
pub fn hex_dump(b: &[u8]) -> String {
    let mut o = String::new();
    for (n, chunk) in b.chunks(16).enumerate() {
        let mut hex = String::new();
        for (i, x) in chunk.iter().enumerate() {
            hex.push_str(&format!("{x:02x}"));
            if i % 2 == 1 {
                hex.push(' ');
            }
        }
        let mut asc = String::new();
        for (i, x) in chunk.iter().enumerate() {
            asc.push(if (0x20..0x7f).contains(x) {
                *x as char
            } else {
                '.'
            });
            if i == 7 {
                asc.push(' ');
            }
        }
        o.push_str(&format!("{:07x}\t{hex:<40}| {asc}\n", n * 16));
    }
    o
}

fn run(s: &mut Session, w: &mut Words<'_>) -> Reply {
    if let Err(e) = w.require(4) {
        return e.into();
    }
    let id = match parse_prog(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let a = match parse_run_args(w) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if a.data_in.is_none() && a.ctx_in.is_none() {
        return Reply::err("bpftool prog run needs data_in or ctx_in", -1);
    }
    let data = match &a.data_in {
        Some(f) => match read_input(s, f) {
            Ok(d) => d,
            Err(r) => return r,
        },
        None => Vec::new(),
    };
    let ctx = match &a.ctx_in {
        Some(f) => match read_input(s, f) {
            Ok(c) => Some(c),
            Err(r) => return r,
        },
        None => None,
    };
    if a.data_out.is_none() && a.data_size_out.is_some() {
        return Reply::err("data_size_out is set but data_out is not", -1);
    }
    if a.ctx_out.is_none() && a.ctx_size_out.is_some() {
        return Reply::err("ctx_size_out is set but ctx_out is not", -1);
    }
    let prog = s.live_progs[&id].program.clone();
    let out = match prog.test_run(&TestRunInput {
        data_in: &data,
        ctx_in: ctx.as_deref(),
        repeat: a.repeat,
        engine: a.engine,
    }) {
        Ok(o) => o,
        Err(e) => {
            let errno = e.errno();
            if s.opts.debug || matches!(e, kbpf_run::TestRunError::Engine(_)) {
                s.note(&format!("kbpf: {e}\n"));
            }
            return Reply::err(
                format!("failed to run program: {}", errno_text(errno)),
                -errno,
            );
        }
    };
    // The kernel copies at most data_size_out bytes (ENOSPC when the packet is longer).
    let cap = a
        .data_size_out
        .map(|n| n as usize)
        .unwrap_or(if a.data_out.is_some() {
            // bpftool's default output buffer.
            usize::MAX
        } else {
            0
        });
    if a.data_out.is_some() && out.data_out.len() > cap {
        return Reply::err("failed to run program: No space left on device", -28);
    }
    let ctx_cap = a.ctx_size_out.map(|n| n as usize).unwrap_or(usize::MAX);
    if let (Some(_), Some(c)) = (&a.ctx_out, &out.ctx_out)
        && c.len() > ctx_cap
    {
        return Reply::err("failed to run program: No space left on device", -28);
    }
    let mut text = String::new();
    let mut fields: Vec<(&str, Json)> = Vec::new();
    let bytes = |b: &[u8]| Json::A(b.iter().map(|x| Json::U(*x as u64)).collect());
    if let Some(f) = &a.data_out {
        if f == "-" {
            text.push_str(&hex_dump(&out.data_out));
            fields.push(("data_out", bytes(&out.data_out)));
        } else if let Err(e) = std::fs::write(f, &out.data_out) {
            return Reply::err(format!("failed to open {f}: {}", strerror(&e)), -1);
        }
    }
    if let (Some(f), Some(c)) = (&a.ctx_out, &out.ctx_out) {
        if f == "-" {
            text.push_str(&hex_dump(c));
            fields.push(("ctx_out", bytes(c)));
        } else if let Err(e) = std::fs::write(f, c) {
            return Reply::err(format!("failed to open {f}: {}", strerror(&e)), -1);
        }
    }
    text.push_str(&format!(
        "Return value: {}, duration{}: {}ns\n",
        out.retval,
        if a.repeat > 1 { " (average)" } else { "" },
        out.duration_ns
    ));
    s.touch_contents();
    fields.push(("retval", Json::U(out.retval as u64)));
    fields.push(("duration", Json::U(out.duration_ns)));
    Reply::ok(text, Json::obj(fields))
}

/// A PROG_ARRAY value: the program as a slot handle (its kbpf id, and the pointer
/// `bpf_tail_call` jumps to, kept alive by the slot).
pub fn prog_ref(s: &Session, id: u32) -> Option<kbpf_maps::ProgRef> {
    let p = s.live_progs.get(&id)?;
    let mut r = kbpf_run::prog_ref(&p.program, id);
    r.prog_type = p.prog_type;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpftool::Options;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn session() -> Session {
        Session::new(Options {
            bpffs: std::env::temp_dir().join("kbpf-prog-unit-none"),
            json: false,
            pretty: false,
            debug: false,
            profile: kbpf_profile::KernelProfile::builtin(),
        })
    }

    #[test]
    fn run_arguments_any_order_prefixes_and_engine() {
        let words =
            v("data_o - rep 10 data_i /tmp/p --engine jit ctx_i c ctx_o - data_size_out 0x20");
        let mut w = Words::new(&words, "run");
        let a = parse_run_args(&mut w).unwrap();
        assert_eq!(a.data_in.as_deref(), Some("/tmp/p"));
        assert_eq!(a.data_out.as_deref(), Some("-"));
        assert_eq!(a.ctx_in.as_deref(), Some("c"));
        assert_eq!(a.ctx_out.as_deref(), Some("-"));
        assert_eq!(a.repeat, 10);
        assert_eq!(a.data_size_out, Some(32));
        assert_eq!(a.engine, Engine::Jit);
        let words = v("data_in p foo");
        let r = parse_run_args(&mut Words::new(&words, "run")).unwrap_err();
        assert_eq!(
            r.stderr,
            "Error: expected no more arguments, 'data_in', 'data_out', 'data_size_out', 'ctx_in', 'ctx_out', 'ctx_size_out' or 'repeat', got: 'foo'?\n"
        );
        let words = v("data_in p repeat x");
        let r = parse_run_args(&mut Words::new(&words, "run")).unwrap_err();
        assert_eq!(r.stderr, "Error: can't parse x as repeat number\n");
        let words = v("data_in");
        let r = parse_run_args(&mut Words::new(&words, "run")).unwrap_err();
        assert_eq!(r.status, -1);
        let words = v("data_in p --engine=vm");
        assert!(parse_run_args(&mut Words::new(&words, "run")).is_err());
        let words = v("data_in p engine interp");
        let a = parse_run_args(&mut Words::new(&words, "run")).unwrap();
        assert_eq!(a.engine, Engine::Interpreter);
        // No repeat given: 0, one run (and the only count a raw tracepoint accepts).
        assert_eq!(a.repeat, 0);
    }

    #[test]
    fn load_arguments() {
        let s = session();
        let words = v("o.o /sys/fs/bpf/x ty xdp pinm /sys/fs/bpf/m");
        let a = parse_load_args(&s, &mut Words::new(&words, "load")).unwrap();
        assert_eq!(a.object, "o.o");
        assert_eq!(a.path, "/sys/fs/bpf/x");
        assert_eq!(a.prog_type, Some(6));
        assert_eq!(a.pinmaps.as_deref(), Some("/sys/fs/bpf/m"));
        let words = v("o.o");
        let (_, r) = parse_load_args(&s, &mut Words::new(&words, "load")).unwrap_err();
        assert_eq!(
            r.stderr,
            "Error: 'load' needs at least 2 arguments, 1 found\n"
        );
        let words = v("o.o p bogus");
        let (_, r) = parse_load_args(&s, &mut Words::new(&words, "load")).unwrap_err();
        assert_eq!(
            r.stderr,
            "Error: expected no more arguments, 'type', 'map' or 'dev', got: 'bogus'?\n"
        );
        let words = v("o.o p type foo");
        let (pre, r) = parse_load_args(&s, &mut Words::new(&words, "load")).unwrap_err();
        assert!(pre.starts_with("libbpf: failed to guess program type from ELF section 'foo/'\n"));
        assert_eq!((r.stderr.as_str(), r.status), ("", -1));
        let words = v("o.o p map name outer id 7");
        let (_, r) = parse_load_args(&s, &mut Words::new(&words, "load")).unwrap_err();
        assert_eq!(
            r.stderr,
            "Error: get map by id (7): No such file or directory\n"
        );
        let words = v("o.o p map nam outer");
        let (_, r) = parse_load_args(&s, &mut Words::new(&words, "load")).unwrap_err();
        assert_eq!(
            r.stderr,
            "Error: 'map' needs at least 4 arguments, 2 found\n"
        );
    }

    #[test]
    fn prog_handles() {
        let s = session();
        for (words, err) in [
            ("id 3", "Error: get by id (3): No such file or directory\n"),
            ("id x", "Error: can't parse x as ID\n"),
            ("tag zz", "Error: can't parse tag\n"),
            (
                "pinned /sys/fs/bpf/nope",
                "Error: bpf obj get (/sys/fs/bpf/nope): No such file or directory\n",
            ),
            (
                "foo 1",
                "Error: expected 'id', 'tag', 'name' or 'pinned', got: 'foo'?\n",
            ),
        ] {
            let w = v(words);
            let r = parse_progs(&s, &mut Words::new(&w, "show")).unwrap_err();
            assert_eq!(r.stderr, err, "{words}");
        }
        let w = v("tag f7a0cf19a6a5998c");
        assert!(
            parse_progs(&s, &mut Words::new(&w, "show"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            parse_tag("F7A0CF19A6A5998C").as_deref(),
            Some("f7a0cf19a6a5998c")
        );
        assert_eq!(parse_tag("f7a0cf19a6a599"), None);
    }

    #[test]
    fn hex_dump_layout_matches_bpftool() {
        let b: Vec<u8> = vec![
            0xa3, 0xb7, 0x41, 0xdf, 0x71, 0xf3, 0xe3, 0x73, 0x6d, 0xab, 0x5b, 0x44, 0x55, 0xea,
            0x1e, 0x28, 0x52, 0xdb, 0x83, 0xfb, 0xa8,
        ];
        assert_eq!(
            hex_dump(&b),
            "0000000\ta3b7 41df 71f3 e373 6dab 5b44 55ea 1e28 | ..A.q..s m.[DU..(\n\
             0000010\t52db 83fb a8                            | R....\n"
        );
        let ctx = [
            0u8, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            hex_dump(&ctx),
            "0000000\t0000 0000 1500 0000 0000 0000 0100 0000 | ........ ........\n\
             0000010\t0000 0000 0000 0000                     | ........ \n"
        );
    }

    #[test]
    fn type_names() {
        assert_eq!(prog_type_name(6), "xdp");
        assert_eq!(prog_type_name(3), "sched_cls");
        assert_eq!(prog_type_name(1), "socket_filter");
        assert_eq!(prog_type_name(99), "type 99");
        assert!(gpl_compatible("Dual BSD/GPL") && !gpl_compatible("MIT"));
    }

    #[test]
    fn dot_escapes() {
        assert_eq!(dot_escape("if r0 >= 0x8 goto"), "if r0 \\>= 0x8 goto");
        assert_eq!(dot_escape("w1 &= 7"), "w1 \\&= 7");
    }
}

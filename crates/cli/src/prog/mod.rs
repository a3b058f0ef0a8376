//! `kbpf prog …`: bpftool's program commands over kbpf's pipeline (`kbpf-object` →
//! `kbpf-loader` → `kbpf-run`: verifier, rewrite, interpreter), with bpftool 7.1's output,
//! messages and return values.
//!
//! Programs get kbpf's own ids. A program lives while it is pinned: `prog load`/`loadall`
//! pin at once (as bpftool does), and the pinned state records how to rebuild each program —
//! the object's absolute path, the program's name, the `type` override and the kbpf ids of
//! the maps it was bound to, by their names in the object. The daemon keeps loaded programs
//! live; after a restart (or in a `KBPF_DAEMON=off` process) the program is rebuilt lazily,
//! when a command needs programs, by loading the object again with those maps *reused*, so
//! it binds to the same maps with their current contents; the program's tag is checked
//! against the recorded one so a rebuilt object is not taken for the old.
//!
//! Submodules: `load` (`prog load|loadall`), `dump` (`prog dump xlated|jited`, the CFG),
//! `run` (`prog run`, also over a capture file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_maps::{Map, Registry};
use kbpf_rewrite::xlated::{DumpOptions, insns_for_dump};
use kbpf_run::{Engine, Program, TestRunInput};

use crate::handle::show_selection;
use crate::json::Json;
use crate::pinned::TemplateRecord;
use crate::session::{LiveProg, Origin, Reply, SYS_BPFFS, Session, origin_from_record, strerror};
use crate::words::{GrammarError, Words, is_prefix, strtoul};

mod dump;
mod load;
pub mod pcap;
mod run;

pub use dump::dot_graph;
use dump::dump;
pub use load::{LoadArgs, parse_load_args};
use load::{build, errno_text, load, loadall};
use run::run;
pub use run::{RunArgs, hex_dump, parse_run_args};

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
       kbpf prog run PROG pcap_in FILE [pcap_out FILE] [--engine {interp|jit}]
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
       pcap_in runs every packet of a classic pcap capture once, in order, counts
       them per return value and writes what the program passes on to pcap_out.
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

/// The program type number of a name bpftool shows (0, `unspec`, for an unknown one).
pub fn prog_type_number(name: &str) -> u32 {
    PROG_TYPE_NAMES
        .iter()
        .position(|n| *n == name)
        .map_or(0, |i| i as u32)
}

/// bpftool's name of program type `t` (`type N` when it has none).
pub fn prog_type_name(t: u32) -> String {
    PROG_TYPE_NAMES
        .get(t as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("type {t}"))
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
    let rel = s.pin_file(path)?;
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
        btf_show(s, id, &mut t, &mut j);
        text.push_str(&t);
        js.push(j);
    }
    Reply::shown(text, js, single)
}

/// `prog show`'s BTF part: `\tbtf_id N` after the memory line, `"btf_id"` before `"pinned"`.
fn btf_show(s: &Session, prog: u32, text: &mut String, json: &mut Json) {
    let Some(id) = s.btfs.of_prog(prog) else {
        return;
    };
    text.push_str(&format!("\tbtf_id {id}\n"));
    if let Json::O(f) = json {
        let at = f.iter().position(|(k, _)| k == "pinned").unwrap_or(f.len());
        f.insert(at, ("btf_id".into(), Json::U(u64::from(id))));
    }
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
    use crate::session::Options;

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
        assert!(
            kbpf_verifier::license_is_gpl_compatible("Dual BSD/GPL")
                && !kbpf_verifier::license_is_gpl_compatible("MIT")
        );
    }
}

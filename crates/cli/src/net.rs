//! `kbpf net`: bpftool's `net` object — programs attached to network devices, run by the
//! daemon on the frames the device receives ([`kbpf_net`] owns the datapath).
//!
//! ```text
//! kbpf net { show | list } [dev NAME]
//! kbpf net attach { xdp | xdpgeneric | xdpdrv | tcx_ingress } PROG dev NAME [overwrite]
//!                  [capture MODE]
//! kbpf net detach { xdp | xdpgeneric | xdpdrv | tcx_ingress } dev NAME
//! ```
//! Devices are named in the network namespace of the process that runs the command, as
//! bpftool's are. The three XDP attach types are one mode in kbpf (`kbpf`: the daemon runs
//! the program on frames it takes from the device); `tcx_ingress` runs a tc program on
//! them as skbs (AF_PACKET capture); `xdpoffload` and `tcx_egress` are refused.
//! `capture { auto | af_xdp | af_packet }` (a kbpf extension) picks how frames reach the
//! daemon; `auto` (the default, or `$KBPF_NET_CAPTURE` of the daemon) takes AF_XDP where
//! the device's driver runs XDP at its MTU, else AF_PACKET.

use kbpf_net::{AttachOptions, CaptureMode, Hook};

use crate::json::Json;
use crate::session::{NetContext, Reply, Session};
use crate::words::{Words, is_prefix};

const USAGE: &str = "\
Usage: kbpf net { show | list } [dev <devname>]
       kbpf net attach ATTACH_TYPE PROG dev <devname> [ overwrite ] [ capture CAPTURE ]
       kbpf net detach ATTACH_TYPE dev <devname>
       kbpf net help

       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       ATTACH_TYPE := { xdp | xdpgeneric | xdpdrv | tcx_ingress }
       CAPTURE := { auto | af_xdp | af_packet }
       The daemon runs the program on every frame the device receives (AF_PACKET capture,
       the stack bypassed by a tcx link); see docs/design/net.md.
";

/// Runs `kbpf net …`.
pub fn command(s: &mut Session, args: &[String], prev: &str) -> Reply {
    let mut w = Words::new(args, prev);
    let Some(cmd) = w.next() else {
        return show(s, &mut w);
    };
    if is_prefix(cmd, "show") || is_prefix(cmd, "list") {
        show(s, &mut w)
    } else if is_prefix(cmd, "attach") {
        attach(s, &mut w)
    } else if is_prefix(cmd, "detach") {
        detach(s, &mut w)
    } else if is_prefix(cmd, "help") {
        if s.opts.json {
            Reply::ok("", Json::Null)
        } else {
            Reply::ok(USAGE, Json::Null)
        }
    } else {
        Reply::usage(USAGE)
    }
}

/// bpftool's status for an errno: `-errno`.
fn refuse(message: impl Into<String>, errno: i32) -> Reply {
    Reply::err(message, -errno)
}

fn context(s: &Session, what: &str) -> Result<NetContext, Reply> {
    s.net.clone().ok_or_else(|| {
        refuse(
            format!(
                "net {what} needs the kbpf daemon, which runs attached programs (unset KBPF_DAEMON=off)"
            ),
            libc::EOPNOTSUPP,
        )
    })
}

/// `ATTACH_TYPE`: the XDP kinds are one mode here.
fn attach_type(w: &mut Words<'_>) -> Result<Hook, Reply> {
    let Some(t) = w.next() else {
        return Err(Reply::err("need ATTACH_TYPE", -1));
    };
    match t {
        "xdp" | "xdpgeneric" | "xdpdrv" => Ok(Hook::Xdp),
        "tcx_ingress" => Ok(Hook::TcIngress),
        "xdpoffload" | "tcx_egress" => Err(refuse(
            format!("attach type {t} is not supported by kbpf"),
            libc::EOPNOTSUPP,
        )),
        _ => Err(Reply::err(
            format!("invalid net attach/detach type: {t}"),
            -1,
        )),
    }
}

fn dev_name<'a>(w: &mut Words<'a>) -> Result<&'a str, Reply> {
    if !w.eat("dev") {
        return Err(Reply::err(
            format!("expected 'dev', got: '{}'", w.peek().unwrap_or("")),
            -1,
        ));
    }
    w.next()
        .ok_or_else(|| Reply::err("expected device name", -1))
}

/// bpftool's name of the hook in its error lines.
fn hook_word(h: Hook) -> &'static str {
    match h {
        Hook::Xdp => "xdp",
        Hook::TcIngress => "tcx_ingress",
    }
}

fn attach(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let hook = match attach_type(w) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if let Err(r) = crate::prog::restore_all(s) {
        return r;
    }
    let id = match crate::prog::parse_prog(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let dev = match dev_name(w) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let overwrite = w.eat("overwrite");
    let mut capture = CaptureMode::from_env();
    if w.eat("capture") {
        capture = match w.next() {
            Some("auto") => CaptureMode::Auto,
            Some("af_xdp") => CaptureMode::AfXdp,
            Some("af_packet") => CaptureMode::AfPacket,
            other => {
                return Reply::err(
                    format!(
                        "capture must be auto, af_xdp or af_packet, got: '{}'",
                        other.unwrap_or("")
                    ),
                    -1,
                );
            }
        };
    }
    if let Some(extra) = w.next() {
        return Reply::err(format!("unknown option: {extra}"), -1);
    }
    let ctx = match context(s, "attach") {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ns = match ctx.client_netns() {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(prog) = s.live_progs.get(&id).map(|p| p.program.clone()) else {
        return refuse(format!("no program with id {id}"), libc::ENOENT);
    };
    match ctx.attachments.attach(
        prog,
        id,
        dev,
        ns,
        AttachOptions {
            capture,
            hook,
            ..AttachOptions::default()
        },
        overwrite,
    ) {
        Ok(_) => Reply::ok("", Json::Null),
        Err(e) => refuse(
            format!("interface {} attach failed: {e}", hook_word(hook)),
            e.errno(),
        ),
    }
}

fn detach(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let hook = match attach_type(w) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let dev = match dev_name(w) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let ctx = match context(s, "detach") {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ns = match ctx.client_netns() {
        Ok(n) => n,
        Err(r) => return r,
    };
    match ctx.attachments.detach(dev, &ns, hook) {
        Ok(()) => Reply::ok("", Json::Null),
        Err(e) => refuse(
            format!("interface {} detach failed: {e}", hook_word(hook)),
            e.errno(),
        ),
    }
}

/// The counters `net show` prints on the attachment's line, then the error counters that
/// are not zero.
const MAIN_COUNTERS: &[&str] = &["rx", "pass", "tx", "drop", "aborted", "redirect"];

fn show(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let mut only_dev = None;
    if w.eat("dev") {
        match w.next() {
            Some(d) => only_dev = Some(d.to_string()),
            None => return Reply::err("expected device name", -1),
        }
    }
    if let Some(extra) = w.next() {
        return Reply::err(format!("unknown option: {extra}"), -1);
    }
    let list = match &s.net {
        Some(ctx) => match ctx.client_netns() {
            Ok(ns) => ctx.attachments.list(ns.inode()),
            Err(r) => return r,
        },
        None => Vec::new(),
    };
    let list: Vec<_> = list
        .into_iter()
        .filter(|a| only_dev.as_ref().is_none_or(|d| *d == a.ifname))
        .collect();
    let mut sections = [
        (Hook::Xdp, String::new(), Vec::new()),
        (Hook::TcIngress, String::new(), Vec::new()),
    ];
    for a in &list {
        let Some((_, text, xdp)) = sections.iter_mut().find(|s| s.0 == a.hook) else {
            continue;
        };
        let kind = match a.hook {
            Hook::Xdp => "",
            Hook::TcIngress => " tcx/ingress",
        };
        let engine = match a.engine {
            kbpf_run::Engine::Jit => "jit",
            kbpf_run::Engine::Interpreter => "interp",
        };
        text.push_str(&format!(
            "{}({}){kind} kbpf id {} capture {}\n\t",
            a.ifname, a.ifindex, a.prog_id, a.capture
        ));
        let shown: Vec<String> = a
            .counters
            .iter()
            .filter(|(n, v)| MAIN_COUNTERS.contains(n) || *v != 0)
            .filter(|(n, _)| *n != "rx_bytes")
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        text.push_str(&shown.join("  "));
        text.push('\n');
        if let Some(f) = &a.failure {
            text.push_str(&format!("\tstopped: {f}\n"));
        }
        let mut fields = vec![
            ("devname".to_string(), Json::s(a.ifname.clone())),
            ("ifindex".to_string(), Json::U(a.ifindex as u64)),
            ("mode".to_string(), Json::s("kbpf")),
            (
                "kind".to_string(),
                Json::s(if a.hook == Hook::Xdp {
                    "xdp"
                } else {
                    "tcx/ingress"
                }),
            ),
            ("id".to_string(), Json::U(a.prog_id as u64)),
            ("engine".to_string(), Json::s(engine)),
            ("capture".to_string(), Json::s(a.capture)),
            ("queues".to_string(), Json::U(a.queues as u64)),
            (
                "counters".to_string(),
                Json::obj(a.counters.iter().map(|(n, v)| (*n, Json::U(*v)))),
            ),
        ];
        if let Some(f) = &a.failure {
            fields.push(("stopped".to_string(), Json::s(f.clone())));
        }
        xdp.push(Json::O(fields));
    }
    let [(_, xdp_text, xdp), (_, tc_text, tc)] = sections;
    let text = format!("xdp:\n{xdp_text}\ntc:\n{tc_text}\nflow_dissector:\n\nnetfilter:\n\n");
    let json = Json::A(vec![Json::obj([
        ("xdp", Json::A(xdp)),
        ("tc", Json::A(tc)),
        ("flow_dissector", Json::A(Vec::new())),
        ("netfilter", Json::A(Vec::new())),
    ])]);
    Reply::ok(text, json)
}

//! `kbpf map event_pipe MAP [cpu N index M]`: bpftool's reader of a PERF_EVENT_ARRAY (and
//! kbpf's of a RINGBUF: its committed records in order, see [`ringbuf_records`]). It
//! opens an event per CPU (CPU i in slot i, for as many CPUs as the map has slots) or the
//! one named, and prints every sample `bpf_perf_event_output` writes:
//! `== @TIME CPU: C index: I =====` and the data as bpftool's `fprint_hex` prints it (under
//! `-j`: `{"type": 9, "cpu", "index", "timestamp", "data": [bytes]}`), `lost N events` for
//! samples that did not fit.
//!
//! The samples are written where the programs run (the daemon), so the command is split:
//! the daemon's side ([`event_pipe`]) installs the events if needed and hands back what they
//! hold (`poll`, a kbpf word), or removes them (`close`); the client's side
//! ([`crate::daemon`]'s `forward_event_pipe`) polls until interrupted (or, with kbpf's
//! `count N`, until N samples were printed) and then closes. Without `poll`/`close` (no
//! daemon), one poll.

use kbpf_maps::MapType;
use kbpf_maps::perf_event::PerfEvent;

use crate::json::Json;
use crate::session::{Reply, Session};
use crate::words::{Words, is_prefix, strtoul};

/// `PERF_RECORD_SAMPLE` and `PERF_RECORD_LOST`, the `type` of a JSON event.
const PERF_RECORD_SAMPLE: u64 = 9;
const PERF_RECORD_LOST: u64 = 2;

/// bpftool's `fprint_hex(stdout, data, n, " ")`: 16 bytes a line, two spaces between
/// groups of eight.
pub(crate) fn fprint_hex(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, b) in data.iter().enumerate() {
        if i > 0 {
            out.push_str(if i % 16 == 0 {
                "\n"
            } else if i % 8 == 0 {
                "  "
            } else {
                " "
            });
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What the daemon does with the reader's events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Poll,
    Close,
}

/// The daemon's side of `map event_pipe`.
pub(super) fn event_pipe(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let id = match super::parse_map(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let m = super::entry(s, id);
    let (mut cpu, mut index) = (None, None);
    let mut mode = Mode::Poll;
    while let Some(word) = w.next() {
        if word == "poll" {
            continue;
        }
        if word == "close" {
            mode = Mode::Close;
            continue;
        }
        if word == "count" {
            // kbpf's `count N` bounds the client's polling loop; without a daemon the one poll
            // prints what there is.
            w.next();
            continue;
        }
        let Some(arg) = w.next() else {
            return Reply::err(format!("'{word}' needs at least 2 arguments, 1 found"), -1);
        };
        if is_prefix(word, "cpu") {
            match strtoul(arg, 0).and_then(|v| u32::try_from(v).ok()) {
                Some(v) => cpu = Some(v),
                None => return Reply::err(format!("can't parse {arg} as CPU ID"), -1),
            }
        } else if is_prefix(word, "index") {
            match strtoul(arg, 0).and_then(|v| u32::try_from(v).ok()) {
                Some(v) => index = Some(v),
                None => return Reply::err(format!("can't parse {arg} as index"), -1),
            }
        } else {
            return Reply::err(format!("unknown arg {word}"), -1);
        }
    }
    if m.map_type() == MapType::Ringbuf {
        if cpu.is_some() || index.is_some() {
            return Reply::err("cpu and index apply to perf event arrays only", -1);
        }
        return if mode == Mode::Close {
            Reply::ok("", Json::A(Vec::new()))
        } else {
            ringbuf_records(&m)
        };
    }
    if m.map_type() != MapType::PerfEventArray {
        return Reply::err("map is not a perf event array or a ring buffer", -1);
    }
    let pairs: Vec<(u32, u32)> = match (cpu, index) {
        (Some(c), Some(i)) => vec![(c, i)],
        (None, None) => {
            let n = kbpf_maps::possible_cpus().min(m.max_entries());
            (0..n).map(|i| (i, i)).collect()
        }
        _ => return Reply::err("cpu and index must be specified together", -1),
    };
    let mut text = String::new();
    let mut events = Vec::new();
    for (cpu, index) in pairs {
        let installed = m.perf_event(index).filter(|e| e.cpu() == cpu);
        if mode == Mode::Close {
            if let Some(ev) = installed {
                m.perf_event_close(index, &ev);
            }
            continue;
        }
        let ev = match installed {
            Some(ev) => ev,
            None => match m.perf_event_open(index, cpu) {
                Ok(ev) => ev,
                Err(e) => {
                    return Reply::err(
                        format!("failed to open perf event: {}", e.errno.description()),
                        -1,
                    );
                }
            },
        };
        show_samples(&ev, cpu, index, &mut text, &mut events);
    }
    Reply::ok(text, Json::A(events))
}

/// kbpf's reader of a RINGBUF (bpftool has none): consumes the committed records in order,
/// as libbpf's `ring_buffer__consume`, and prints each as `== ringbuf record: N bytes =====`
/// and its bytes as bpftool prints perf samples (under `-j`: `{"size", "data": [bytes]}`).
fn ringbuf_records(m: &kbpf_maps::Map) -> Reply {
    let mut text = String::new();
    let mut records = Vec::new();
    let consumed = m.ringbuf_consume(|r| {
        text.push_str(&format!(
            "== ringbuf record: {} bytes =====\n{}\n",
            r.len(),
            fprint_hex(r)
        ));
        records.push(Json::obj([
            ("size", Json::U(r.len() as u64)),
            (
                "data",
                Json::A(r.iter().map(|b| Json::U((*b).into())).collect()),
            ),
        ]));
    });
    match consumed {
        Ok(_) => Reply::ok(text, Json::A(records)),
        Err(e) => Reply::err(e.to_string(), -e.errno.code()),
    }
}

/// The samples and lost count `ev` holds, as bpftool prints them.
fn show_samples(ev: &PerfEvent, cpu: u32, index: u32, text: &mut String, json: &mut Vec<Json>) {
    let (samples, lost) = ev.drain();
    for sm in samples {
        text.push_str(&format!(
            "== @{} CPU: {cpu} index: {index} =====\n{}\n",
            sm.time_ns,
            fprint_hex(&sm.data)
        ));
        json.push(Json::obj([
            ("type", Json::U(PERF_RECORD_SAMPLE)),
            ("cpu", Json::U(cpu.into())),
            ("index", Json::U(index.into())),
            ("timestamp", Json::U(sm.time_ns)),
            (
                "data",
                Json::A(sm.data.iter().map(|b| Json::U((*b).into())).collect()),
            ),
        ]));
    }
    if lost > 0 {
        text.push_str(&format!("lost {lost} events\n"));
        json.push(Json::obj([
            ("type", Json::U(PERF_RECORD_LOST)),
            ("cpu", Json::U(cpu.into())),
            ("index", Json::U(index.into())),
            (
                "lost",
                Json::obj([("id", Json::U(index.into())), ("count", Json::U(lost))]),
            ),
        ]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_bpftools() {
        let d: Vec<u8> = (0..18).collect();
        assert_eq!(
            fprint_hex(&d),
            "00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f\n10 11"
        );
    }
}

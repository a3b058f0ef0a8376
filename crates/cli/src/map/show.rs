//! `map show` and `map dump`, with bpftool's BTF-formatted output for maps with BTF: under
//! `-j` each element gains a `formatted` object, and in plain text a dump of maps that all
//! have a BTF object goes through bpftool's JSON writer (`[{"key": 0, "value": {…}}]`).

use kbpf_maps::{Map, MapType};

use super::{USAGE, entry, parse_maps};
use crate::handle::show_selection;
use crate::json::Json;
use crate::session::{Reply, Session};
use crate::words::{Words, hex_bytes};

fn info_text(s: &Session, id: u32, m: &Map) -> (String, String) {
    let i = m.info();
    let mut second = format!(
        "\tkey {}B  value {}B  max_entries {}  memlock {}B",
        i.key_size, i.value_size, i.max_entries, i.memlock
    );
    // bpftool: a PROG_ARRAY's owner (fdinfo's owner_prog_type/owner_jited) on its own line;
    // kbpf's programs are JIT-compiled, as the kernel's are with bpf_jit_enable.
    if let Some(t) = m.prog_array_owner() {
        second.push_str(&format!(
            "\n\towner_prog_type {}  owner jited",
            crate::prog::prog_type_name(t)
        ));
    }
    // bpftool: `btf_id N` and/or `frozen` on a third line.
    let btf = crate::btf::map_btf(s, m).map(|b| b.id);
    let frozen = m.is_frozen();
    if btf.is_some() || frozen {
        second.push_str("\n\t");
    }
    if let Some(b) = btf {
        second.push_str(&format!("btf_id {b}"));
    }
    if frozen {
        second.push_str(if btf.is_some() { "  frozen" } else { "frozen" });
    }
    (
        format!(
            "{id}: {}  name {}  flags {:#x}",
            i.map_type, i.name, i.map_flags
        ),
        second,
    )
}

fn info_json(s: &Session, id: u32, m: &Map) -> Json {
    let i = m.info();
    let mut fields = vec![
        ("id", Json::U(id as u64)),
        ("type", Json::s(i.map_type.to_string())),
        ("name", Json::s(i.name)),
        ("flags", Json::U(i.map_flags as u64)),
        ("bytes_key", Json::U(i.key_size as u64)),
        ("bytes_value", Json::U(i.value_size as u64)),
        ("max_entries", Json::U(i.max_entries as u64)),
        ("bytes_memlock", Json::U(i.memlock)),
    ];
    if let Some(t) = m.prog_array_owner() {
        fields.push(("owner_prog_type", Json::s(crate::prog::prog_type_name(t))));
        fields.push(("owner_jited", Json::B(true)));
    }
    fields.push(("frozen", Json::U(u64::from(m.is_frozen()))));
    if let Some(b) = crate::btf::map_btf(s, m) {
        fields.push(("btf_id", Json::U(u64::from(b.id))));
    }
    Json::obj(fields)
}

/// bpftool's `show_map_header_json` (the per-map header of a multi-map JSON dump).
fn header_json(id: u32, m: &Map) -> Vec<(&'static str, Json)> {
    let mut h = vec![
        ("id", Json::U(u64::from(id))),
        ("type", Json::s(m.map_type().to_string())),
    ];
    if !m.name().is_empty() {
        h.push(("name", Json::s(m.name())));
    }
    h.push(("flags", Json::I(i64::from(m.map_flags() as i32))));
    h
}

pub(super) fn show(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let (ids, single) =
        match show_selection(s, w, |s| s.maps().map(|(id, _)| id).collect(), parse_maps) {
            Ok(selection) => selection,
            Err(r) => return r,
        };
    let mut text = String::new();
    let mut js = Vec::new();
    for id in ids {
        let m = entry(s, id);
        let (a, b) = info_text(s, id, &m);
        text.push_str(&format!("{a}\n{b}\n"));
        js.push(info_json(s, id, &m));
    }
    Reply::shown(text, js, single)
}

/// The value bytes user space shows: inner maps and programs by kbpf id.
pub(super) fn shown_value(s: &Session, m: &Map, mut v: Vec<u8>) -> Vec<u8> {
    if m.map_type().is_map_in_map() && v.len() >= 4 {
        let kid = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
        if let Some(id) = s.id_of_kid(kid) {
            v[..4].copy_from_slice(&id.to_ne_bytes());
        }
    }
    v
}

/// One element as bpftool prints it (text, JSON).
pub(super) fn element(m: &Map, key: &[u8], value: &[u8]) -> (String, Json) {
    if m.map_type().is_percpu() {
        let stride = (m.value_size() as usize).div_ceil(8) * 8;
        let vs = m.value_size() as usize;
        let mut text = format!("key:\n{}\n", hex_bytes(key));
        let mut values = Vec::new();
        for (cpu, chunk) in value.chunks(stride.max(1)).enumerate() {
            let v = &chunk[..vs.min(chunk.len())];
            text.push_str(&format!("value (CPU {cpu:02}): {}\n", hex_bytes(v)));
            values.push(Json::obj([
                ("cpu", Json::U(cpu as u64)),
                ("value", Json::hex(v)),
            ]));
        }
        return (
            text,
            Json::obj([("key", Json::hex(key)), ("values", Json::A(values))]),
        );
    }
    let text = if key.len() > 16 || value.len() > 16 {
        format!("key:\n{}\nvalue:\n{}\n", hex_bytes(key), hex_bytes(value))
    } else {
        format!("key: {}  value: {}\n", hex_bytes(key), hex_bytes(value))
    };
    (
        text,
        Json::obj([("key", Json::hex(key)), ("value", Json::hex(value))]),
    )
}

pub(super) fn dump(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let ids = match parse_maps(s, w) {
        Ok(ids) if ids.is_empty() => return Reply::silent(-1),
        Ok(ids) => ids,
        Err(r) => return r,
    };
    if !w.is_empty() {
        return Reply::usage(if s.opts.json { "" } else { USAGE });
    }
    // PROG_ARRAY slots name programs: rebuild the pinned ones so the slots are filled.
    if ids
        .iter()
        .any(|id| entry(s, *id).map_type() == MapType::ProgArray)
        && let Err(r) = crate::prog::restore_all(s)
    {
        return r;
    }
    let several = ids.len() > 1;
    // bpftool prints through a JSON writer under -j, and in plain text too when every map has
    // a BTF object (then elements with a BTF value type are formatted by it).
    let btf_writer = !s.opts.json && ids.iter().all(|id| entry(s, *id).btf().is_some());
    let mut status = 0;
    if s.opts.json || btf_writer {
        let plain = btf_writer;
        let mut root = Vec::new();
        for id in ids {
            let m = entry(s, id);
            let typed = crate::btf::map_btf(s, &m).filter(|b| b.value != 0);
            let mut elems = Vec::new();
            for k in m.keys() {
                let Ok(v) = m.lookup_elem(&k) else { continue };
                let v = shown_value(s, &m, v);
                let (t, mut j) = element(&m, &k, &v);
                match (&typed, plain) {
                    (Some(b), true) => j = crate::btf::formatted(b, &m, &k, &v, true),
                    (None, true) => j = Json::Text(t),
                    (Some(b), false) => {
                        if let Json::O(f) = &mut j {
                            f.push((
                                "formatted".into(),
                                crate::btf::formatted(b, &m, &k, &v, false),
                            ));
                        }
                    }
                    (None, false) => {}
                }
                elems.push(j);
            }
            if several {
                let mut h = header_json(id, &m);
                h.push(("elements", Json::A(elems)));
                root.push(Json::obj(h));
            } else {
                root = elems;
            }
            status = walk_status(&m);
            if status != 0 {
                break;
            }
        }
        let doc = Json::A(root);
        let r = if plain {
            Reply::ok(doc.to_document(true), Json::Null)
        } else {
            Reply::ok("", doc)
        };
        return Reply { status, ..r };
    }
    let mut text = String::new();
    for (n, id) in ids.into_iter().enumerate() {
        let m = entry(s, id);
        if several {
            if n > 0 {
                text.push('\n');
            }
            text.push_str(&info_text(s, id, &m).0);
            text.push('\n');
        }
        let mut count = 0;
        for k in m.keys() {
            let Ok(v) = m.lookup_elem(&k) else { continue };
            let v = shown_value(s, &m, v);
            let (t, _) = element(&m, &k, &v);
            text.push_str(&t);
            count += 1;
        }
        text.push_str(&format!(
            "Found {count} element{}\n",
            if count == 1 { "" } else { "s" }
        ));
        status = walk_status(&m);
        if status != 0 {
            break;
        }
    }
    Reply {
        status,
        ..Reply::ok(text, Json::Null)
    }
}

/// bpftool's `map_dump` walks the keys with `BPF_MAP_GET_NEXT_KEY` and returns its error
/// unless it is ENOENT (the end of the walk): a ring buffer (ENOTSUPP) or a queue/stack
/// (EINVAL) dump prints its empty listing and fails with -errno, ending the dump there.
fn walk_status(m: &Map) -> i32 {
    match m.get_next_key(None) {
        Err(e) if e.errno != kbpf_maps::Errno::ENOENT => -e.errno.code(),
        _ => 0,
    }
}

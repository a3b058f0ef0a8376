//! Object handles that the commands of several objects take: `MAP` (bpftool's
//! `map_parse_fds`) — named by the `map` commands, by `prog load … map`, by `btf dump map` —
//! and the selection a `show` command makes from one handle (`map show`, `prog show`). They
//! sit below the object modules because `prog load` binds maps while `map update` stores
//! programs: with the map handles here, `map` may name `prog` without `prog` naming `map`.
//! `PROG` handles stay in [`crate::prog`], the lowest object module, which the others name.
//!
//! Too few words are the caller's to report: the map commands print their usage, and
//! `prog load` and `btf dump` check the count before they get here.

use crate::session::{Reply, Session};
use crate::words::{Words, is_prefix, strtoul};

/// Parses `MAP := id ID | pinned FILE | name NAME` into the kbpf ids it names (several for
/// `name`, none when no map has that name).
pub fn parse_maps(s: &Session, w: &mut Words<'_>) -> Result<Vec<u32>, Reply> {
    let kw = w.next().unwrap_or_default();
    let arg = w.next().unwrap_or_default();
    if is_prefix(kw, "id") {
        let Some(id) = strtoul(arg, 0).filter(|v| *v <= u32::MAX as u64) else {
            return Err(Reply::err(format!("can't parse {arg} as ID"), -1));
        };
        let id = id as u32;
        if s.map(id).is_none() {
            return Err(Reply::err(
                format!("get map by id ({id}): No such file or directory"),
                -1,
            ));
        }
        Ok(vec![id])
    } else if is_prefix(kw, "pinned") {
        Ok(vec![s.pinned_map(arg)?])
    } else if is_prefix(kw, "name") {
        let name: String = arg.chars().take(15).collect();
        Ok(s.maps()
            .filter(|(_, e)| e.map.name() == name)
            .map(|(id, _)| id)
            .collect())
    } else {
        Err(Reply::err(
            format!("expected 'id', 'name' or 'pinned', got: '{kw}'?"),
            -1,
        ))
    }
}

/// One map handle (bpftool's `map_parse_fd`).
pub fn parse_map(s: &Session, w: &mut Words<'_>) -> Result<u32, Reply> {
    let ids = parse_maps(s, w)?;
    match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(Reply::silent(-1)),
        _ => Err(Reply::err("several maps match this handle", -1)),
    }
}

/// The ids a `map show`/`prog show` lists and whether the user named a single object: all of
/// them without an argument, else the objects one handle (`id N`, `pinned P`, `name N`, …)
/// names; a handle naming nothing fails silently, as bpftool's does.
pub fn show_selection(
    s: &Session,
    w: &mut Words<'_>,
    all: impl FnOnce(&Session) -> Vec<u32>,
    parse: fn(&Session, &mut Words<'_>) -> Result<Vec<u32>, Reply>,
) -> Result<(Vec<u32>, bool), Reply> {
    if w.is_empty() {
        return Ok((all(s), false));
    }
    if w.len() != 2 {
        return Err(Reply::err(
            format!("what is '{}'?", w.peek().unwrap_or_default()),
            -1,
        ));
    }
    match parse(s, w)? {
        ids if ids.is_empty() => Err(Reply::silent(-1)),
        ids => {
            let one = ids.len() == 1;
            Ok((ids, one))
        }
    }
}

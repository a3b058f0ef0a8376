//! `kbpf btf dump BTF_SRC [format raw|c]`: bpftool's `do_dump`.

use std::sync::Arc;

use kbpf_object::btf::{BTF_MAGIC, Btf, CDump};

use super::{map_btf, prog_btf_id};
use crate::json::Json;
use crate::session::{Reply, Session, strerror};
use crate::words::{Words, is_prefix, strtoul};

/// bpftool's `vmlinux.h` guards around the C dump (7.1: no `__ksym`/`__weak` defines, no
/// kfunc prototypes).
const C_HEADER: &str = "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n\
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n\
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n\
#endif\n\n";
const C_FOOTER: &str = "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n\
#endif\n\n#endif /* __VMLINUX_H__ */\n";

use kbpf_uapi::errno::{EINVAL, ENOENT, ENOTSUP};
/// libbpf's `LIBBPF_ERRNO__FORMAT` ("Unknown error 4001").
const LIBBPF_ERRNO_FORMAT: i32 = 4001;

/// bpftool's `REQ_ARGS` failure: the error, then the usage (bpftool exits −1 there).
fn req_args(s: &Session, w: &Words<'_>, n: usize) -> Result<(), Reply> {
    w.require(n).map_err(|e| {
        let mut r = Reply::err(e.message, -1);
        if !s.opts.json {
            r.stderr.push_str(super::USAGE);
        }
        r
    })
}

/// No BTF object with this id (bpftool 7.1 prints two lines: its kernel-module probe, then
/// the load).
fn no_btf(id: u32) -> Reply {
    let mut r = Reply::err(
        format!("get btf by id ({id}): No such file or directory"),
        -ENOENT,
    );
    r.stderr = format!(
        "Error: can't get BTF object by id ({id}): No such file or directory\n{}",
        r.stderr
    );
    r
}

fn by_id(s: &Session, id: u32) -> Result<Arc<Btf>, Reply> {
    s.btfs
        .get(id)
        .map(|e| e.btf.clone())
        .ok_or_else(|| no_btf(id))
}

/// The vmlinux BTF bpftool takes as the base of a module's (`get_vmlinux_btf_from_sysfs`).
const SYSFS_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// `btf dump file FILE [base BASE]`: a raw BTF file (`/sys/kernel/btf/vmlinux`) or an ELF
/// object's `.BTF` section as it is in the file (libbpf's `btf__parse_split`: no DATASEC
/// fix-ups), as split BTF on top of `BASE` when one is given (bpftool's `-B BASE`, which kbpf
/// turns into the `base` word) or, for a module's `/sys/kernel/btf/<module>`, on top of
/// vmlinux's.
fn load_file(path: &str, base: Option<&str>) -> Result<Btf, Reply> {
    let base = match base {
        Some(b) => Some(load_base(b)?),
        None if path.starts_with("/sys/kernel/btf/") && path != SYSFS_VMLINUX => {
            Some(load_blob(SYSFS_VMLINUX, None)?)
        }
        None => None,
    };
    load_blob(path, base.as_ref())
}

/// bpftool's `-B BASE` (`btf__parse`): on failure its message and −1.
fn load_base(path: &str) -> Result<Btf, Reply> {
    load_blob(path, None).map_err(|r| {
        Reply::err(
            format!("failed to parse base BTF at '{path}': {}\n", r.status),
            -1,
        )
    })
}

fn load_blob(path: &str, base: Option<&Btf>) -> Result<Btf, Reply> {
    let fail = |why: &str, errno: i32| {
        Reply::err(format!("failed to load BTF from {path}: {why}"), -errno)
    };
    let data =
        std::fs::read(path).map_err(|e| fail(&strerror(&e), e.raw_os_error().unwrap_or(EINVAL)))?;
    let raw = if data.len() >= 2 && u16::from_le_bytes([data[0], data[1]]) == BTF_MAGIC {
        data
    } else if data.starts_with(b"\x7fELF") {
        use object::{Object, ObjectSection};
        let file = object::File::parse(&*data).map_err(|_| fail("Invalid argument", EINVAL))?;
        let sec = file
            .section_by_name(".BTF")
            .ok_or_else(|| fail("No such file or directory", ENOENT))?;
        sec.data()
            .map_err(|_| fail("Invalid argument", EINVAL))?
            .to_vec()
    } else {
        let mut r = fail(
            &format!("Unknown error {LIBBPF_ERRNO_FORMAT}"),
            LIBBPF_ERRNO_FORMAT,
        );
        r.stderr = format!("libbpf: failed to get EHDR from {path}\n{}", r.stderr);
        return Err(r);
    };
    match base {
        Some(b) => Btf::parse_split(&raw, b),
        None => Btf::parse(&raw),
    }
    .map_err(|e| {
        let mut r = fail("Invalid argument", EINVAL);
        r.stderr = format!("libbpf: {e}\n{}", r.stderr);
        r
    })
}

/// Where the types come from and which ones to print (none: all).
fn source(s: &mut Session, w: &mut Words<'_>) -> Result<(Arc<Btf>, Vec<u32>), Reply> {
    let src = w.next().unwrap_or_default();
    if is_prefix(src, "map") {
        req_args(s, w, 2)?;
        let id = crate::handle::parse_map(s, w)?;
        let m = s.map(id).map(|e| e.map.clone()).ok_or_else(|| {
            Reply::err(
                format!("get map by id ({id}): No such file or directory"),
                -1,
            )
        })?;
        let info = m.info();
        let (k, v) = (info.btf_key_type_id, info.btf_value_type_id);
        let roots = match w.peek() {
            Some(x) if is_prefix(x, "key") => vec![k],
            Some(x) if is_prefix(x, "value") => vec![v],
            Some(x) if is_prefix(x, "all") => vec![],
            Some(x) if is_prefix(x, "kv") => vec![k, v],
            _ => {
                let roots = vec![k, v];
                return Ok((map_source(s, &m)?, roots));
            }
        };
        w.next();
        Ok((map_source(s, &m)?, roots))
    } else if is_prefix(src, "prog") {
        req_args(s, w, 2)?;
        crate::prog::restore_all(s)?;
        let id = crate::prog::parse_prog(s, w)?;
        let btf_id = prog_btf_id(s, id).unwrap_or(0);
        Ok((by_id(s, btf_id)?, vec![]))
    } else if is_prefix(src, "id") {
        let arg = w.next().unwrap_or_default();
        let Some(id) = strtoul(arg, 0).filter(|v| *v <= u64::from(u32::MAX)) else {
            return Err(Reply::err(format!("can't parse {arg} as ID"), -1));
        };
        Ok((by_id(s, id as u32)?, vec![]))
    } else if is_prefix(src, "file") {
        let path = w.next().unwrap_or_default();
        // kbpf's `base BASE` (what `-B BASE` becomes, see `with_base_btf`).
        let base = if w.peek() == Some("base") {
            w.next();
            Some(w.next().unwrap_or_default())
        } else {
            None
        };
        Ok((Arc::new(load_file(path, base)?), vec![]))
    } else {
        Err(Reply::err(
            format!("unrecognized BTF source specifier: '{src}'"),
            -1,
        ))
    }
}

fn map_source(s: &Session, m: &kbpf_maps::Map) -> Result<Arc<Btf>, Reply> {
    match map_btf(s, m) {
        Some(b) => Ok(b.btf),
        None => Err(no_btf(0)),
    }
}

pub(super) fn dump(s: &mut Session, w: &mut Words<'_>) -> Reply {
    if let Err(r) = req_args(s, w, 2) {
        return r;
    }
    let (btf, roots) = match source(s, w) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut c = false;
    while let Some(word) = w.next() {
        if !is_prefix(word, "format") {
            return Reply::err(format!("unrecognized option: '{word}'"), -EINVAL);
        }
        match w.next() {
            None => return Reply::err("expecting value for 'format' option\n", -EINVAL),
            Some("c") => c = true,
            Some("raw") => c = false,
            Some(f) => {
                return Reply::err(
                    format!("unrecognized format specifier: '{f}', possible values: raw, c"),
                    -EINVAL,
                );
            }
        }
    }
    if !c {
        return Reply::ok(
            btf.dump_raw_text(&roots),
            Json::from(&btf.dump_raw_json(&roots)),
        );
    }
    if s.opts.json {
        return Reply::err("JSON output for C-syntax dump is not supported", -ENOTSUP);
    }
    let mut d = CDump::new(&btf);
    let ids: Vec<u32> = if roots.is_empty() {
        (1..btf.types().len() as u32).collect()
    } else {
        roots
    };
    for id in ids {
        if d.dump_type(id).is_err() {
            // bpftool stops there, without the closing guards or a message.
            let mut r = Reply::ok(format!("{C_HEADER}{}", d.output()), Json::Null);
            r.status = -EINVAL;
            return r;
        }
    }
    Reply::ok(format!("{C_HEADER}{}{C_FOOTER}", d.output()), Json::Null)
}

/// bpftool's global `-B BASE`/`--base-btf BASE` as kbpf's `base BASE` word after the file of
/// `btf dump file FILE` (the only command it changes in kbpf, which has no module BTF
/// objects); other commands are left as they are.
pub(crate) fn with_base_btf(mut words: Vec<String>, base: &str) -> Vec<String> {
    let dump_file = words.len() >= 4
        && is_prefix(&words[0], "btf")
        && is_prefix(&words[1], "dump")
        && is_prefix(&words[2], "file");
    if dump_file {
        words.splice(4..4, ["base".to_string(), base.to_string()]);
    }
    words
}

//! `batch file FILE`: bpftool's batch mode. Each line is one command of the bpftool grammar
//! (`#` comments, quotes, `\` continuations: [`crate::words`]), run in one session; the batch
//! stops at the first failing command with its status. The output is gathered into one
//! reply — plain text with `processed N commands` at the end, or one JSON array of
//! `{"command": [...], "output": ...}` objects — so that it reaches the client whole when the
//! daemon runs the batch. The batch's changes are committed once, at its end: a batch is one
//! request.

use crate::json::Json;
use crate::session::{Reply, Session, strerror};
use crate::words::{is_prefix, logical_lines, split_line};

/// `batch file FILE` (`-` reads the client's stdin).
pub fn command(s: &mut Session, args: &[String], _word: &str) -> Reply {
    if s.in_batch {
        return Reply::err("nested batch commands are not allowed", -1);
    }
    if args.len() < 2 {
        return Reply::err("too few parameters for batch", -1);
    }
    if !is_prefix(&args[0], "file") {
        return Reply::err(format!("expected 'file', got: {}", args[0]), -1);
    }
    if args.len() > 2 {
        return Reply::err(format!("too many arguments: {}", args[2]), -1);
    }
    let path = &args[1];
    let text = if path == "-" {
        match s.read_stdin() {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => return Reply::err(format!("reading batch file failed: {e}"), -1),
        }
    } else {
        match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                return Reply::err(format!("Can't open file ({path}): {}", strerror(&e)), -1);
            }
        }
    };
    // Batch files may write anything: hold the exclusive lock for the whole file.
    if let Err(r) = s.load(true) {
        return r;
    }
    s.in_batch = true;
    let r = run(s, &text);
    s.in_batch = false;
    r
}

fn run(s: &mut Session, text: &str) -> Reply {
    let json = s.opts.json;
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut items: Vec<Json> = Vec::new();
    let mut done = 0usize;
    let mut status = 0;
    for line in logical_lines(text) {
        let words = match split_line(&line, done) {
            Ok(w) => w,
            Err(e) => {
                let r = Reply::from(e);
                if json {
                    // bpftool reports a bad line outside the command objects.
                    items.push(r.json.clone());
                } else {
                    stderr.push_str(&r.stderr);
                }
                status = r.status;
                break;
            }
        };
        if words.is_empty() {
            continue;
        }
        let r = s.dispatch(&words);
        stderr.push_str(&s.take_notes());
        if json {
            items.push(Json::obj([
                (
                    "command",
                    Json::A(words.iter().map(|w| Json::s(w.clone())).collect()),
                ),
                ("output", r.json.clone()),
            ]));
        } else {
            stdout.push_str(&r.stdout);
            stderr.push_str(&r.stderr);
        }
        if r.status != 0 {
            status = r.status;
            break;
        }
        done += 1;
    }
    if !json && status == 0 {
        stdout.push_str(&format!("processed {done} commands\n"));
    }
    Reply {
        stdout,
        stderr,
        json: if json { Json::A(items) } else { Json::Null },
        status,
    }
}

//! The bpftool-grammar side of kbpf: `kbpf [OPTIONS] OBJECT COMMAND …` and `batch file`.
//!
//! [`Session::dispatch`] runs one command given as words (from the command line or a batch
//! line) on a [`Session`] and returns a [`Reply`]: what bpftool would print on stdout (text
//! and JSON forms), on stderr, and its return value. Objects are chosen by prefix in
//! [`OBJECTS`] order, as bpftool does; each object's commands are its own module's
//! `command(&mut Session, &[String], &str) -> Reply`.

use crate::cmdline::parse_command_line;
use crate::json::Json;
use crate::pinned;
use crate::session::{Options, Reply, Session};
use crate::words::is_prefix;

/// An object's entry point: the session, the words after the object, the object word typed.
pub type ObjectFn = fn(&mut Session, &[String], &str) -> Reply;

/// The objects, in bpftool's prefix-match order.
pub const OBJECTS: &[(&str, ObjectFn)] = &[
    ("batch", crate::batch::command),
    ("prog", crate::prog::command),
    ("map", crate::map::command),
    ("kernel", crate::kernel::command),
    ("btf", crate::btf::command),
    ("net", crate::net::command),
    ("help", help_command),
    ("version", version_command),
];

/// kbpf's top-level usage in bpftool's layout.
pub const USAGE: &str = "\
Usage: kbpf [OPTIONS] OBJECT { COMMAND | help }
       kbpf batch file FILE
       kbpf version
       kbpf run PROG.asm --data PKT.hex [--engine interp|jit] [--repeat N]
       kbpf conformance DIR [--engine interp|jit] [--verbose]
       kbpf conformance-plugin [HEX_MEMORY] [OPTIONS]
       kbpf maglev demo [--json] [--plot DIR] [--backend kbpf|kernel] [--engine jit|interp] [--small]
       kbpf veristat [-v] [-l LEVEL] [-o table|csv] [-e SPEC] [-s SPEC] [-f FILTER] [-n N] OBJ...
       kbpf veristat -C A.csv B.csv | -R RESULTS.csv

       OBJECT := { map | prog | btf | net | kernel }
       OPTIONS := { --bpffs DIR | {-j|--json} [{-p|--pretty}] | {-d|--debug} |
                    --kernel { builtin | host | FILE.json } | --kernel-btf FILE |
                    {-h|--help} | {-V|--version} }
       --bpffs DIR plays /sys/fs/bpf (default $KBPF_BPFFS, else
       $XDG_RUNTIME_DIR/kbpf/bpffs, else /tmp/kbpf-$UID/bpffs)
       --kernel/--kernel-btf: the kernel profile kbpf follows (default $KBPF_KERNEL,
       else builtin); see `kbpf kernel profile`
";

fn help_command(s: &mut Session, _: &[String], _: &str) -> Reply {
    if s.opts.json {
        return Reply::ok("", Json::Null);
    }
    Reply::ok(USAGE, Json::Null)
}

fn version_command(_: &mut Session, _: &[String], _: &str) -> Reply {
    let v = env!("CARGO_PKG_VERSION");
    Reply::ok(
        format!("kbpf v{v}\nusing kbpf-maps (kernel map semantics of Linux 6.18)\n"),
        Json::obj([("version", Json::s(v))]),
    )
}

impl Session {
    /// Runs one command (`OBJECT COMMAND …` as words) and commits the state afterwards.
    pub fn dispatch(&mut self, words: &[String]) -> Reply {
        let Some(first) = words.first() else {
            return Reply::usage(USAGE);
        };
        let Some((_, f)) = OBJECTS.iter().find(|(name, _)| is_prefix(first, name)) else {
            return Reply::usage(USAGE);
        };
        let mut r = f(self, &words[1..], first);
        if let Err(e) = self.commit()
            && r.status == 0
        {
            r = e;
        }
        r
    }
}

/// Runs a bpftool-style command line (`kbpf [OPTIONS] OBJECT COMMAND …`); returns the exit
/// status.
pub fn main(args: &[String]) -> u8 {
    let mut cl = match parse_command_line(args) {
        Ok(cl) => cl,
        Err(e) => {
            eprintln!("kbpf: {e}");
            eprint!("{USAGE}");
            return 255;
        }
    };
    let mut words = std::mem::take(&mut cl.words);
    if cl.version {
        words = vec!["version".into()];
    } else if cl.help {
        // `kbpf map -h` is `kbpf map help`.
        words.truncate(1);
        words.push("help".into());
        if words.len() == 1 || words[0] == "help" {
            words = vec!["help".into()];
        }
    }
    if words.first().is_some_and(|w| w == "daemon") {
        return crate::daemon::command(&cl, &words[1..], Session::dispatch);
    }
    // Help and version need no objects; everything else goes to the directory's owner.
    let local = words.is_empty()
        || matches!(words[0].as_str(), "help" | "version")
        || words.get(1).is_some_and(|w| w == "help");
    if let Some(b) = &cl.base_btf {
        words = crate::btf::with_base_btf(words, b);
    }
    if crate::client::enabled() && !local {
        return crate::client::forward(&cl, words);
    }
    let profile = match crate::kernel::resolve(cl.kernel.as_deref(), cl.kernel_btf.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kbpf: {e}");
            return 255;
        }
    };
    let opts = Options {
        bpffs: cl.bpffs.clone().unwrap_or_else(pinned::default_bpffs),
        json: cl.json,
        pretty: cl.pretty,
        debug: cl.debug,
        profile,
    };
    let mut s = Session::new(opts);
    let r = s.dispatch(&words);
    let notes = s.take_notes();
    eprint!("{notes}");
    s.print(&r);
    r.exit_code()
}

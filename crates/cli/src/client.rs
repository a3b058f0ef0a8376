//! The CLI's side of the daemon ([`crate::daemon`]): whether bpftool-grammar commands go to
//! it ([`enabled`]), connecting to it and starting it on demand ([`connect_or_start`]), and
//! [`forward`]: a parsed command line becomes one [`Request::Command`], whose reply is
//! printed as the command's own. `prog run … pcap_in` and `map event_pipe` are driven from
//! here, so that capture files, the progress bar and the samples stay with the user.
//!
//! It is apart from the server because `bpftool` calls it for every command, while the
//! server is started by `bpftool` and runs `bpftool`'s commands: the client needs neither,
//! and the server (`kbpf daemon start` and `stop` talk to it from here) may use the client.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kbpf_client::Client;
use kbpf_client::proto::{Bytes, CommandOptions, Payload, Request};

use crate::cmdline::CommandLine;
use crate::pinned;

/// `KBPF_DAEMON=off`: run bpftool-grammar commands in the calling process.
pub const MODE_ENV: &str = "KBPF_DAEMON";
/// Whether bpftool-grammar commands go to the daemon.
pub fn enabled() -> bool {
    std::env::var(MODE_ENV).map_or(true, |v| v != "off")
}

/// `prog run PROG pcap_in FILE …` through the daemon, driven from the client: the program is
/// found with `prog show PROG`, the packets go in batches (`prog_run_packets`), and the
/// capture files and the progress bar stay with the user.
fn forward_capture(cl: &CommandLine, dir: &Path, words: &[String]) -> u8 {
    let print = |r: &crate::session::Reply| {
        r.print(cl.json, cl.pretty);
        r.exit_code()
    };
    let rest = &words[4..];
    let a = match crate::prog::parse_run_args(&mut crate::words::Words::new(rest, &words[1])) {
        Ok(a) => a,
        Err(r) => return print(&r),
    };
    let mut client = match connect_or_start(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kbpf: {e}");
            return 255;
        }
    };
    let mut show = vec!["prog".to_string(), "show".to_string()];
    show.extend(words[2..4].iter().cloned());
    let shown = client.call(&Request::Command {
        words: show,
        options: CommandOptions {
            json: true,
            ..CommandOptions::default()
        },
        cwd: client_cwd(),
        stdin: None,
    });
    let info: serde_json::Value = match shown {
        Ok(Payload::Command {
            stdout, status: 0, ..
        }) => serde_json::from_str(&stdout).unwrap_or_default(),
        Ok(Payload::Command {
            stdout,
            stderr,
            status,
        }) => {
            print!("{stdout}");
            eprint!("{stderr}");
            return status;
        }
        other => {
            eprintln!("kbpf: unexpected reply from the daemon: {other:?}");
            return 255;
        }
    };
    let (Some(id), Some(kind)) = (info["id"].as_u64(), info["type"].as_str()) else {
        return print(&crate::session::Reply::err(
            "several programs match this handle",
            -1,
        ));
    };
    let prog_type = crate::prog::prog_type_number(kind);
    let interp = a.engine == kbpf_run::Engine::Interpreter;
    let r = crate::prog::pcap::run_capture(
        prog_type,
        Path::new(a.pcap_in.as_deref().unwrap_or_default()),
        a.pcap_out.as_deref().map(Path::new),
        |batch| {
            client
                .prog_run_packets_on(id as u32, batch, true, interp)
                .map(|(r, d)| r.into_iter().zip(d).collect())
                .map_err(|e| {
                    let errno = e.errno().unwrap_or(libc::EIO);
                    crate::session::Reply::err(format!("failed to run program: {e}"), -errno)
                })
        },
    );
    match r {
        Ok(s) => print(&crate::prog::pcap::reply(prog_type, &s)),
        Err(r) => print(&r),
    }
}

/// Set by SIGINT/SIGTERM while the client reads an event pipe.
static PIPE_STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_pipe_signal(_: libc::c_int) {
    PIPE_STOP.store(true, Ordering::SeqCst);
}

/// `map event_pipe MAP [cpu N index M] [count N]` through the daemon, driven from the
/// client (see [`crate::map`]'s `event_pipe`): the daemon is polled for samples every 50 ms
/// (each poll a short request, so other clients' programs keep running and writing them)
/// and they are printed as they come, until SIGINT/SIGTERM or `count` samples; then the
/// events are closed.
fn forward_event_pipe(cl: &CommandLine, dir: &Path, mut words: Vec<String>) -> u8 {
    let mut count: Option<u64> = None;
    if let Some(i) = words.iter().position(|w| w == "count") {
        match words.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(n) => count = Some(n),
            None => {
                eprintln!("Error: count needs a number");
                return 255;
            }
        }
        words.drain(i..i + 2);
    }
    let mut client = match connect_or_start(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kbpf: {e}");
            return 255;
        }
    };
    let request = |extra: &str| Request::Command {
        words: words.iter().cloned().chain([extra.to_string()]).collect(),
        options: CommandOptions {
            json: cl.json,
            ..CommandOptions::default()
        },
        cwd: client_cwd(),
        stdin: None,
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_pipe_signal as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_pipe_signal as *const () as libc::sighandler_t,
        );
    }
    use std::io::Write;
    let mut out = std::io::stdout();
    let mut printed = 0u64;
    let mut first = true;
    if cl.json {
        let _ = out.write_all(b"[");
    }
    let mut status = 0;
    while !PIPE_STOP.load(Ordering::SeqCst) && count.is_none_or(|n| printed < n) {
        match client.call(&request("poll")) {
            Ok(Payload::Command {
                stdout, status: 0, ..
            }) => {
                if cl.json {
                    // The objects as the daemon wrote them (in bpftool's key order); parsed
                    // only to count them.
                    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
                    let n = v.as_array().map_or(0, Vec::len);
                    let inner = stdout.trim().trim_start_matches('[').trim_end_matches(']');
                    if n > 0 {
                        let _ = write!(out, "{}{inner}", if first { "" } else { "," });
                        first = false;
                        printed += n as u64;
                    }
                } else {
                    // A perf sample's or a ring buffer record's header line.
                    printed += stdout.lines().filter(|l| l.starts_with("== ")).count() as u64;
                    let _ = out.write_all(stdout.as_bytes());
                }
                let _ = out.flush();
            }
            Ok(Payload::Command {
                stdout,
                stderr,
                status: st,
            }) => {
                print!("{stdout}");
                eprint!("{stderr}");
                status = st;
                break;
            }
            other => {
                eprintln!("kbpf: unexpected reply from the daemon: {other:?}");
                status = 255;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if cl.json {
        let _ = out.write_all(b"]\n");
    }
    let _ = client.call(&request("close"));
    status
}

/// The client's working directory, as a `command` request carries it.
fn client_cwd() -> String {
    std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/".into())
}

/// Connects to the daemon of `dir`, starting it (this very binary) when none answers.
pub fn connect_or_start(dir: &Path) -> io::Result<Client> {
    let exe = std::env::current_exe()?;
    Client::connect_or_start(dir, &exe)
}

/// The CLI's side: sends a parsed command line to the daemon and prints its reply.
pub fn forward(cl: &CommandLine, words: Vec<String>) -> u8 {
    let dir = cl.bpffs.clone().unwrap_or_else(pinned::default_bpffs);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    if words.len() > 4
        && crate::words::is_prefix(&words[0], "prog")
        && crate::words::is_prefix(&words[1], "run")
        && words.iter().any(|w| w == "pcap_in")
    {
        return forward_capture(cl, &dir, &words);
    }
    if words.len() >= 2
        && crate::words::is_prefix(&words[0], "map")
        && crate::words::is_prefix(&words[1], "event_pipe")
    {
        return forward_event_pipe(cl, &dir, words);
    }
    // `-` as an input file is the client's stdin: send it along.
    let reads_stdin = words.windows(2).any(|w| {
        w[1] == "-"
            && (crate::words::is_prefix(&w[0], "file") || w[0] == "data_in" || w[0] == "ctx_in")
    });
    let stdin = if reads_stdin {
        let mut v = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut v) {
            eprintln!("Error: failed to read stdin: {e}");
            return 255;
        }
        Some(Bytes(v))
    } else {
        None
    };
    let req = Request::Command {
        words,
        options: CommandOptions {
            json: cl.json,
            pretty: cl.pretty,
            debug: cl.debug,
            kernel: cl.kernel.clone(),
            kernel_btf: cl.kernel_btf.clone(),
            kernel_env: std::env::var("KBPF_KERNEL").ok(),
        },
        cwd: client_cwd(),
        stdin,
    };
    let reply = connect_or_start(&dir)
        .map_err(|e| e.to_string())
        .and_then(|mut c| c.call(&req).map_err(|e| e.to_string()));
    match reply {
        Ok(Payload::Command {
            stdout,
            stderr,
            status,
        }) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(stdout.as_bytes());
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().write_all(stderr.as_bytes());
            status
        }
        Ok(other) => {
            eprintln!("kbpf: unexpected reply from the daemon: {other:?}");
            255
        }
        Err(e) => {
            eprintln!("kbpf: {e} (KBPF_DAEMON=off runs commands without the daemon)");
            255
        }
    }
}

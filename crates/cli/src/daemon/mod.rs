//! The kbpf daemon: the one owner of a bpffs directory's live objects, as the kernel is of its
//! own. Every bpftool-grammar command and every `kbpf_client::Client` talks to it over the
//! directory's Unix socket, so processes share live maps and a command costs what it does,
//! not what everything pinned weighs. `docs/design/daemon.md` gives the reasons for the design.
//!
//! - [`serve`] (`kbpf daemon run`): takes the directory's lock for its lifetime, loads the
//!   last checkpoint plus the journal ([`crate::session::journal`]), and serves connections,
//!   one thread each. Requests run one at a time under the session's lock, so concurrent
//!   clients see some serial order; program runs over many packets
//!   ([`Request::ProgRunPackets`]) and test runs run outside it, so a datapath keeps going
//!   while another client swaps inner maps (maps are safe under concurrent use; an inner map
//!   swapped out stays alive until the runs that may see it end).
//! - Only the daemon's own user (or root) may connect: the socket is mode 0600 and each peer's
//!   credentials are checked (`SO_PEERCRED`).
//! - It checkpoints every [`CHECKPOINT_ENV`] seconds when contents changed, on
//!   `kbpf daemon stop`, on SIGTERM/SIGINT, and when idle for [`IDLE_ENV`] seconds (then it
//!   exits; the next command starts it again). It exits at once, without writing, when its
//!   directory or socket is removed.
//! - [`crate::client::forward`] is the CLI's side: a command line becomes one
//!   [`Request::Command`]. `KBPF_DAEMON=off` runs commands in the process instead (the
//!   directory lock then serialises processes, and each command writes the whole state).
//! - The commands themselves are `bpftool`'s: [`serve`] is handed its dispatch
//!   ([`RunCommand`]) rather than naming it, because `bpftool` starts the server
//!   (`kbpf daemon run`) and must sit above it.

pub mod ops;

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kbpf_client::proto::{
    self, Bytes, CommandOptions, DaemonStatus, Payload, ProtoError, Request, Response,
};
use kbpf_client::{Client, socket_path};
use kbpf_maps::Errno;
use kbpf_profile::KernelProfile;

use crate::client::connect_or_start;
use crate::cmdline::CommandLine;
use crate::pinned;
use crate::session::{Options, Reply, Session};

/// Seconds without requests after which the daemon checkpoints and exits (default 600).
pub const IDLE_ENV: &str = "KBPF_DAEMON_IDLE_SECS";
/// Seconds between checkpoints while contents change (default 30).
pub const CHECKPOINT_ENV: &str = "KBPF_DAEMON_CHECKPOINT_SECS";

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// How the daemon runs one bpftool-grammar command (`OBJECT COMMAND …` as words) on its
/// session: `bpftool` passes its `Session::dispatch`.
pub type RunCommand = fn(&mut Session, &[String]) -> Reply;

/// Kernel profiles by what named them: `--kernel`, `--kernel-btf`, `$KBPF_KERNEL`.
type ProfileCache = HashMap<(Option<String>, Option<String>, Option<String>), KernelProfile>;

/// The shared state of a running daemon.
struct Daemon {
    dir: PathBuf,
    socket: PathBuf,
    session: Mutex<Session>,
    profiles: Mutex<ProfileCache>,
    requests: AtomicU64,
    last_request: Mutex<Instant>,
    /// Set by SIGTERM/SIGINT.
    stop: &'static AtomicBool,
    /// Programs attached to devices (`net attach`); the daemon does not idle out while
    /// it has any.
    net: Arc<kbpf_net::Attachments>,
    /// Runs the commands clients send.
    run: RunCommand,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

impl Daemon {
    fn session(&self) -> MutexGuard<'_, Session> {
        // A panic while a request held the lock leaves the session as that request left
        // it; the objects themselves are consistent (each map operation is atomic).
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkpoint(&self, s: &mut Session) -> Result<(), String> {
        let dir = self.dir.clone();
        let Some(mut j) = s.journal.take() else {
            return Ok(());
        };
        let r = j.checkpoint(s, &dir);
        s.journal = Some(j);
        if r.is_ok() {
            s.contents_dirty = false;
        }
        r
    }

    /// Writes a checkpoint and ends the process.
    fn exit_clean(&self) -> ! {
        let mut s = self.session();
        if let Err(e) = self.checkpoint(&mut s) {
            eprintln!("kbpf daemon: final checkpoint failed: {e}");
        }
        let _ = std::fs::remove_file(&self.socket);
        std::process::exit(0)
    }

    fn profile(&self, o: &CommandOptions) -> Result<KernelProfile, String> {
        let key = (o.kernel.clone(), o.kernel_btf.clone(), o.kernel_env.clone());
        let mut cache = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let p = crate::kernel::resolve_with(
            o.kernel.as_deref(),
            o.kernel_btf.as_deref(),
            o.kernel_env.as_deref(),
        )?;
        cache.insert(key, p.clone());
        Ok(p)
    }

    fn handle(&self, req: Request, held: &mut Vec<u32>, peer_pid: u32) -> Response {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self.last_request.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        match req {
            Request::Command {
                words,
                options,
                cwd,
                stdin,
            } => self.command(words, options, cwd, stdin, peer_pid),
            Request::ProgTestRun {
                prog_id,
                data_in,
                repeat,
            } => self.test_run(prog_id, &data_in.0, repeat),
            Request::ProgRunPackets {
                prog_id,
                packets,
                want_data_out,
                interp,
            } => self.run_packets(prog_id, &packets, want_data_out, interp),
            Request::Status => Response::Ok(Payload::Status(self.status())),
            Request::Checkpoint => {
                let mut s = self.session();
                match self.checkpoint(&mut s) {
                    Ok(()) => Response::Ok(Payload::Done),
                    Err(e) => Response::Err {
                        errno: libc::EIO,
                        message: e,
                    },
                }
            }
            Request::Shutdown => Response::Ok(Payload::Done),
            other => {
                let mut s = self.session();
                s.refresh_pins();
                let r = map_request(&mut s, other, held);
                if let Err(e) = s.commit() {
                    return Response::Err {
                        errno: libc::EIO,
                        message: e.stderr,
                    };
                }
                r
            }
        }
    }

    fn command(
        &self,
        words: Vec<String>,
        o: CommandOptions,
        cwd: String,
        stdin: Option<Bytes>,
        peer_pid: u32,
    ) -> Response {
        let profile = match self.profile(&o) {
            Ok(p) => p,
            Err(e) => {
                return Response::Ok(Payload::Command {
                    stdout: String::new(),
                    stderr: format!("kbpf: {e}\n"),
                    status: 255,
                });
            }
        };
        let mut s = self.session();
        // Relative file names in the words are the client's: the process's working
        // directory is only ever changed here, under the session lock.
        if let Err(e) = std::env::set_current_dir(&cwd) {
            return Response::Ok(Payload::Command {
                stdout: String::new(),
                stderr: format!("kbpf: working directory {cwd}: {e}\n"),
                status: 255,
            });
        }
        s.opts.json = o.json || o.pretty;
        s.opts.pretty = o.pretty;
        s.opts.debug = o.debug;
        s.opts.profile = profile;
        s.stdin = stdin.map(|b| b.0);
        // `net` commands work in the client's network namespace, as bpftool does in its own.
        s.net = Some(crate::session::NetContext {
            attachments: self.net.clone(),
            client_pid: peer_pid,
        });
        s.refresh_pins();
        // Element operations leave pending collection to the next tick; anything that may
        // list or free objects sees them collected first.
        let element_op = words.len() > 1
            && crate::words::is_prefix(&words[0], "map")
            && [
                "update", "lookup", "delete", "getnext", "peek", "push", "pop", "enqueue",
                "dequeue",
            ]
            .iter()
            .any(|c| crate::words::is_prefix(&words[1], c));
        if !element_op && let Err(r) = s.collect_pending_garbage() {
            return Response::Ok(Payload::Command {
                stdout: String::new(),
                status: r.exit_code(),
                stderr: r.stderr,
            });
        }
        let r = (self.run)(&mut s, &words);
        s.stdin = None;
        let notes = s.take_notes();
        let (stdout, stderr) = if s.opts.json {
            (r.json.to_document(s.opts.pretty), notes)
        } else {
            (r.stdout.clone(), notes + &r.stderr)
        };
        Response::Ok(Payload::Command {
            stdout,
            stderr,
            status: r.exit_code(),
        })
    }

    fn program(&self, prog_id: u32) -> Result<Arc<kbpf_run::Program>, Response> {
        let mut s = self.session();
        if let Err(r) = crate::prog::restore_all(&mut s) {
            return Err(ops::refuse(Errno::EINVAL, r.stderr));
        }
        s.live_progs
            .get(&prog_id)
            .map(|p| p.program.clone())
            .ok_or_else(|| ops::refuse(Errno::ENOENT, format!("no program with id {prog_id}")))
    }

    fn test_run(&self, prog_id: u32, data: &[u8], repeat: u32) -> Response {
        let prog = match self.program(prog_id) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let out = prog.test_run(&kbpf_run::TestRunInput {
            data_in: data,
            ctx_in: None,
            repeat,
            engine: kbpf_run::Engine::Jit,
        });
        self.session().touch_contents();
        match out {
            Ok(o) => Response::Ok(Payload::TestRun {
                retval: o.retval,
                data_out: Bytes(o.data_out),
                duration_ns: o.duration_ns,
            }),
            Err(e) => Response::Err {
                errno: e.errno(),
                message: e.to_string(),
            },
        }
    }

    fn run_packets(
        &self,
        prog_id: u32,
        packets: &[Bytes],
        want_data_out: bool,
        interp: bool,
    ) -> Response {
        let prog = match self.program(prog_id) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let engine = if interp {
            kbpf_run::Engine::Interpreter
        } else {
            kbpf_run::Engine::Jit
        };
        let start = Instant::now();
        let (mut retvals, mut data_out) = (Vec::with_capacity(packets.len()), Vec::new());
        let r = kbpf_run::run_packets(
            &prog,
            engine,
            packets.iter().map(|p| p.0.as_slice()),
            want_data_out,
            |_, r| {
                retvals.push(r.retval);
                if want_data_out {
                    data_out.push(Bytes(r.data_out));
                }
            },
        );
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        self.session().touch_contents();
        match r {
            Ok(()) => Response::Ok(Payload::Retvals {
                retvals,
                data_out,
                elapsed_ns,
            }),
            Err(e) => Response::Err {
                errno: e.errno(),
                message: e.to_string(),
            },
        }
    }

    fn status(&self) -> DaemonStatus {
        let s = self.session();
        let (records, bytes, since) = s.journal.as_ref().map_or((0, 0, 0), |j| {
            (j.records, j.bytes, j.last_checkpoint.elapsed().as_secs())
        });
        DaemonStatus {
            protocol: proto::PROTOCOL_VERSION,
            pid: std::process::id(),
            bpffs: self.dir.display().to_string(),
            maps: s.maps().count() as u32,
            progs: s.live_progs.len() as u32,
            requests: self.requests.load(Ordering::Relaxed),
            journal_records: records,
            journal_bytes: bytes,
            since_checkpoint_s: since,
            rss_kb: rss_kb(),
        }
    }

    fn serve_connection(self: &Arc<Daemon>, mut stream: UnixStream, peer_pid: u32) {
        let mut held: Vec<u32> = Vec::new();
        loop {
            let body = match proto::read_frame(&mut stream) {
                Ok(b) => b,
                Err(ProtoError::Closed) => break,
                Err(e) => {
                    // A broken frame: say so if the peer still listens, then drop it.
                    let _ =
                        proto::write_frame(&mut stream, &ops::refuse(Errno::EINVAL, e.to_string()));
                    break;
                }
            };
            let (resp, shutdown) = match proto::decode_request(&body) {
                Ok(req) => {
                    let shutdown = req == Request::Shutdown;
                    (self.handle(req, &mut held, peer_pid), shutdown)
                }
                Err(e) => (ops::refuse(Errno::EINVAL, e.to_string()), false),
            };
            if shutdown {
                let mut s = self.session();
                ops::release(&mut s, &held);
                held.clear();
                let _ = s.commit();
                drop(s);
                let _ = proto::write_frame(&mut stream, &resp);
                self.exit_clean();
            }
            if proto::write_frame(&mut stream, &resp).is_err() {
                break;
            }
        }
        if !held.is_empty() {
            let mut s = self.session();
            ops::release(&mut s, &held);
            if let Err(e) = s.commit() {
                eprintln!("kbpf daemon: {}", e.stderr.trim());
            }
        }
    }

    /// Checkpoints on time, exits when idle, stopped, or when its directory disappears.
    fn watch(self: Arc<Daemon>, socket_ino: u64) {
        let idle = env_secs(IDLE_ENV, 600);
        let every = env_secs(CHECKPOINT_ENV, 30);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let ino =
                std::fs::metadata(&self.socket).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
            if ino.ok() != Some(socket_ino) {
                // The directory was removed (or another daemon replaced the socket): the
                // state has no home any more; nothing is written.
                eprintln!("kbpf daemon: {} is gone; exiting", self.socket.display());
                std::process::exit(0);
            }
            if self.stop.load(Ordering::SeqCst) {
                self.exit_clean();
            }
            let last = *self.last_request.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= idle && self.net.is_empty() {
                self.exit_clean();
            }
            let mut s = self.session();
            if let Err(e) = s.collect_pending_garbage() {
                eprintln!("kbpf daemon: {}", e.stderr.trim());
            }
            let due = s
                .journal
                .as_ref()
                .is_some_and(|j| j.last_checkpoint.elapsed() >= every);
            let pending = s.contents_dirty || s.journal.as_ref().is_some_and(|j| j.records > 0);
            if due
                && pending
                && let Err(e) = self.checkpoint(&mut s)
            {
                eprintln!("kbpf daemon: checkpoint failed: {e}");
            }
        }
    }
}

fn map_request(s: &mut Session, req: Request, held: &mut Vec<u32>) -> Response {
    match req {
        Request::MapCreate { attr, pin } => ops::map_create(s, &attr, pin.as_deref(), held),
        Request::MapLookup { map_id, key } => ops::lookup(s, map_id, &key.0),
        Request::MapUpdate {
            map_id,
            key,
            value,
            flags,
        } => ops::update(s, map_id, &key.0, &value.0, flags),
        Request::MapDelete { map_id, key } => ops::delete(s, map_id, &key.0),
        Request::MapGetNextKey { map_id, key } => {
            ops::get_next_key(s, map_id, key.as_ref().map(|k| k.0.as_slice()))
        }
        Request::MapLookupBatch {
            map_id,
            in_batch,
            count,
        } => ops::lookup_batch(s, map_id, in_batch.as_ref().map(|k| k.0.as_slice()), count),
        Request::MapUpdateBatch {
            map_id,
            keys,
            values,
            flags,
        } => ops::update_batch(s, map_id, &keys, &values, flags),
        Request::MapDeleteBatch { map_id, keys } => ops::delete_batch(s, map_id, &keys),
        Request::MapFreeze { map_id } => ops::freeze(s, map_id),
        Request::MapGetInfo { map_id } => ops::info(s, map_id),
        Request::ObjPin { kind, id, path } => ops::pin(s, kind, id, &path),
        Request::ObjGet { path } => ops::obj_get(s, &path),
        Request::Close { map_id } => {
            if let Some(i) = held.iter().position(|h| *h == map_id) {
                held.swap_remove(i);
                ops::release(s, &[map_id]);
                Response::Ok(Payload::Done)
            } else {
                ops::refuse(
                    Errno::EBADF,
                    format!("this connection holds no map {map_id}"),
                )
            }
        }
        _ => ops::refuse(Errno::EINVAL, "not a map request"),
    }
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The uid and pid of the peer of a Unix stream (`SO_PEERCRED`).
fn peer_cred(s: &UnixStream) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the descriptor is
    // an open socket for the duration of the call.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.uid, cred.pid as u32))
}

/// `kbpf daemon run`: serves the bpffs directory `dir` until stopped, running clients'
/// commands with `run`.
pub fn serve(dir: &Path, run: RunCommand) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // A daemon that was just stopped may still be exiting: give it a moment.
    let start = Instant::now();
    let lock = loop {
        if let Some(l) = pinned::try_lock_exclusive(&dir).map_err(|e| e.to_string())? {
            break l;
        }
        if start.elapsed() > Duration::from_secs(2) {
            return Err(format!(
                "{} is owned by another kbpf process (a daemon, or a command run with KBPF_DAEMON=off)",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut s = Session::new(Options {
        bpffs: dir.clone(),
        json: false,
        pretty: false,
        debug: false,
        profile: KernelProfile::builtin(),
    });
    s.load_journaled(lock)?;
    let socket = socket_path(&dir);
    let _ = std::fs::remove_file(&socket);
    let listener = {
        // SAFETY: umask only changes this process's file-creation mask; the socket is
        // created with no group/other bits, and the mask is restored at once.
        let old = unsafe { libc::umask(0o077) };
        let l = UnixListener::bind(&socket);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        l.map_err(|e| format!("bind {}: {e}", socket.display()))?
    };
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", socket.display()))?;
    let ino = std::fs::metadata(&socket)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .map_err(|e| e.to_string())?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let d = Arc::new(Daemon {
        dir: dir.clone(),
        socket: socket.clone(),
        session: Mutex::new(s),
        profiles: Mutex::new(HashMap::new()),
        requests: AtomicU64::new(0),
        last_request: Mutex::new(Instant::now()),
        stop: &STOP,
        net: Arc::new(kbpf_net::Attachments::default()),
        run,
    });
    eprintln!(
        "kbpf daemon {} serving {} on {}",
        std::process::id(),
        dir.display(),
        socket.display()
    );
    {
        let d = d.clone();
        std::thread::spawn(move || d.watch(ino));
    }
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let pid = match peer_cred(&stream) {
            Ok((uid, pid)) if uid == me || uid == 0 => pid,
            _ => continue,
        };
        let d = d.clone();
        std::thread::spawn(move || d.serve_connection(stream, pid));
    }
    Ok(())
}

const USAGE: &str = "\
Usage: kbpf [--bpffs DIR] daemon { start | stop | status | run }
       start   start the daemon of DIR if none runs (commands start it on demand too)
       stop    checkpoint and stop it
       status  its pid, objects, requests and journal (-j for JSON)
       run     serve DIR in the foreground (what `start` runs, detached)
";

/// `kbpf daemon …` (`run` serves with the given [`RunCommand`]).
pub fn command(cl: &CommandLine, args: &[String], run: RunCommand) -> u8 {
    let dir = cl.bpffs.clone().unwrap_or_else(pinned::default_bpffs);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let Some(sub) = args.first() else {
        eprint!("{USAGE}");
        return 255;
    };
    let is = |w: &str| crate::words::is_prefix(sub, w);
    if is("run") {
        return match serve(&dir, run) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("kbpf daemon: {e}");
                1
            }
        };
    }
    if is("start") {
        return match connect_or_start(&dir).and_then(|mut c| c.status().map_err(io::Error::other)) {
            Ok(st) => {
                println!("kbpf daemon {} serving {}", st.pid, st.bpffs);
                0
            }
            Err(e) => {
                eprintln!("Error: {e}");
                255
            }
        };
    }
    if is("stop") {
        return match Client::connect(&dir) {
            Ok(mut c) => match c
                .status()
                .and_then(|st| c.call(&Request::Shutdown).map(|_| st.pid))
            {
                Ok(pid) => {
                    // Wait until the process is gone (and so has let go of the directory).
                    let start = Instant::now();
                    while process_alive(pid) && start.elapsed() < Duration::from_secs(30) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    0
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    255
                }
            },
            Err(_) => {
                eprintln!("Error: no kbpf daemon serves {}", dir.display());
                255
            }
        };
    }
    if is("status") {
        return match Client::connect(&dir) {
            Ok(mut c) => match c.status() {
                Ok(st) => {
                    if cl.json {
                        println!("{}", serde_json::to_string(&st).unwrap_or_default());
                    } else {
                        println!(
                            "pid {}  bpffs {}\n\tmaps {}  progs {}  requests {}\n\tjournal {} records, {} bytes since the checkpoint {} s ago\n\trss {} kB",
                            st.pid,
                            st.bpffs,
                            st.maps,
                            st.progs,
                            st.requests,
                            st.journal_records,
                            st.journal_bytes,
                            st.since_checkpoint_s,
                            st.rss_kb
                        );
                    }
                    0
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    255
                }
            },
            Err(_) => {
                eprintln!("Error: no kbpf daemon serves {}", dir.display());
                254
            }
        };
    }
    eprint!("{USAGE}");
    255
}

/// Whether process `pid` still runs (a zombie does not).
fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as i32, 0) } == 0;
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

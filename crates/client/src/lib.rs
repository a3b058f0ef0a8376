//! The Rust API to kbpf's live objects: a client of the daemon that owns a bpffs directory.
//!
//! One daemon (`kbpf daemon run`) owns the maps, programs and pins of one bpffs directory, as
//! the kernel owns its objects; every `kbpf` command and every [`Client`] talks to it over a
//! Unix socket ([`socket_path`]), with the requests of [`proto`]. Two processes that name the
//! same bpffs directory therefore share live maps: a control plane updates the inner map a
//! datapath is reading.
//!
//! [`Client::connect_or_start`] starts the daemon when none answers (the `kbpf` binary runs it
//! detached, logging to [`LOG_FILE`]); [`Client::connect`] only connects.
#![deny(missing_docs)]

pub mod proto;

use std::io;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use proto::{
    Bytes, CommandOptions, DaemonStatus, MapCreateAttr, MapInfo, ObjKind, Payload, Request,
    Response,
};
use proto::{ProtoError, decode_response, read_frame, write_frame};

/// The daemon's socket inside the bpffs directory.
pub const SOCKET_FILE: &str = ".kbpf-daemon.sock";
/// The daemon's log (its stderr) inside the bpffs directory.
pub const LOG_FILE: &str = ".kbpf-daemon.log";
/// The lock clients take while starting a daemon, so that only one is started.
pub const START_LOCK_FILE: &str = ".kbpf-daemon.start";

/// Longest Unix socket path (`sun_path` is 108 bytes with its NUL).
const SUN_PATH_MAX: usize = 107;

/// The daemon's socket for a bpffs directory: `DIR/.kbpf-daemon.sock`, or, when that path is
/// too long for a Unix socket, a name under `/tmp` derived from the directory's absolute path
/// and the user id.
pub fn socket_path(bpffs: &Path) -> PathBuf {
    let p = bpffs.join(SOCKET_FILE);
    if p.as_os_str().len() <= SUN_PATH_MAX {
        return p;
    }
    let abs = std::fs::canonicalize(bpffs).unwrap_or_else(|_| bpffs.to_path_buf());
    // FNV-1a of the path: a stable, short name.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in abs.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/kbpf-{uid}-{h:016x}.sock"))
}

/// Client errors: the daemon's errno, or a transport problem.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon refused the request with a kernel errno.
    #[error("{message} (errno {errno})")]
    Errno {
        /// Positive errno.
        errno: i32,
        /// The daemon's message.
        message: String,
    },
    /// Talking to the daemon failed.
    #[error("kbpf daemon: {0}")]
    Proto(#[from] ProtoError),
    /// The reply does not fit the request.
    #[error("kbpf daemon: unexpected reply {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The errno of a refusal (None for transport errors).
    pub fn errno(&self) -> Option<i32> {
        match self {
            ClientError::Errno { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// A connection to the daemon of one bpffs directory.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to a running daemon.
    pub fn connect(bpffs: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(socket_path(bpffs))?;
        Ok(Client { stream })
    }

    /// Connects, starting the daemon (`KBPF daemon run --bpffs DIR`, detached) when none
    /// answers. `kbpf` is the binary to start; only one of many racing clients starts it.
    pub fn connect_or_start(bpffs: &Path, kbpf: &Path) -> io::Result<Client> {
        if let Ok(c) = Client::connect(bpffs) {
            return Ok(c);
        }
        std::fs::create_dir_all(bpffs)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(bpffs.join(START_LOCK_FILE))?;
        flock(&lock, libc::LOCK_EX)?;
        // Another client may have started it while this one waited for the lock.
        if let Ok(c) = Client::connect(bpffs) {
            return Ok(c);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(bpffs.join(LOG_FILE))?;
        let mut cmd = Command::new(kbpf);
        cmd.arg("daemon")
            .arg("run")
            .arg("--bpffs")
            .arg(bpffs)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid is async-signal-safe; it detaches the daemon from the client's
        // session and process group, so the client's terminal and signals do not reach it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let start = Instant::now();
        let timeout = Duration::from_secs(30);
        loop {
            if let Ok(c) = Client::connect(bpffs) {
                // The daemon runs on as its own session; reap it from a thread so that it
                // does not stay a zombie of a long-lived client.
                std::thread::spawn(move || child.wait());
                return Ok(c);
            }
            if let Some(st) = child.try_wait()? {
                let tail = std::fs::read_to_string(bpffs.join(LOG_FILE)).unwrap_or_default();
                let last: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(io::Error::other(format!(
                    "kbpf daemon exited at start ({st}): {}",
                    last.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
            if start.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "kbpf daemon did not answer within 30 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends a request and reads its response.
    pub fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        write_frame(&mut self.stream, req)?;
        let body = read_frame(&mut self.stream)?;
        Ok(decode_response(&body)?)
    }

    /// Sends a request; a refusal becomes [`ClientError::Errno`].
    pub fn call(&mut self, req: &Request) -> Result<Payload, ClientError> {
        match self.request(req)? {
            Response::Ok(p) => Ok(p),
            Response::Err { errno, message } => Err(ClientError::Errno { errno, message }),
        }
    }

    /// `BPF_MAP_CREATE`, pinned at `pin` in the same step when given.
    pub fn map_create(
        &mut self,
        attr: MapCreateAttr,
        pin: Option<&str>,
    ) -> Result<u32, ClientError> {
        match self.call(&Request::MapCreate {
            attr,
            pin: pin.map(String::from),
        })? {
            Payload::MapId { id } => Ok(id),
            p => Err(unexpected(p)),
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM`.
    pub fn map_lookup(&mut self, map_id: u32, key: &[u8]) -> Result<Vec<u8>, ClientError> {
        match self.call(&Request::MapLookup {
            map_id,
            key: key.into(),
        })? {
            Payload::Value { value } => Ok(value.0),
            p => Err(unexpected(p)),
        }
    }

    /// `BPF_MAP_UPDATE_ELEM`.
    pub fn map_update(
        &mut self,
        map_id: u32,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), ClientError> {
        self.done(&Request::MapUpdate {
            map_id,
            key: key.into(),
            value: value.into(),
            flags,
        })
    }

    /// Puts inner map `inner_id` into slot `key` of map-of-maps `map_id`.
    pub fn map_update_inner(
        &mut self,
        map_id: u32,
        key: &[u8],
        inner_id: u32,
        flags: u64,
    ) -> Result<(), ClientError> {
        self.map_update(map_id, key, &inner_id.to_ne_bytes(), flags)
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn map_delete(&mut self, map_id: u32, key: &[u8]) -> Result<(), ClientError> {
        self.done(&Request::MapDelete {
            map_id,
            key: key.into(),
        })
    }

    /// `BPF_MAP_GET_NEXT_KEY`.
    pub fn map_get_next_key(
        &mut self,
        map_id: u32,
        key: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        match self.call(&Request::MapGetNextKey {
            map_id,
            key: key.map(Bytes::from),
        })? {
            Payload::Key { key } => Ok(key.0),
            p => Err(unexpected(p)),
        }
    }

    /// `BPF_MAP_UPDATE_BATCH`; returns how many elements were written.
    pub fn map_update_batch(
        &mut self,
        map_id: u32,
        elems: &[(Vec<u8>, Vec<u8>)],
        flags: u64,
    ) -> Result<u32, ClientError> {
        let (keys, values) = elems
            .iter()
            .map(|(k, v)| (Bytes(k.clone()), Bytes(v.clone())))
            .unzip();
        match self.call(&Request::MapUpdateBatch {
            map_id,
            keys,
            values,
            flags,
        })? {
            Payload::Count { count } => Ok(count),
            p => Err(unexpected(p)),
        }
    }

    /// `BPF_MAP_FREEZE`.
    pub fn map_freeze(&mut self, map_id: u32) -> Result<(), ClientError> {
        self.done(&Request::MapFreeze { map_id })
    }

    /// `BPF_OBJ_GET_INFO_BY_FD` on a map.
    pub fn map_info(&mut self, map_id: u32) -> Result<MapInfo, ClientError> {
        match self.call(&Request::MapGetInfo { map_id })? {
            Payload::MapInfo(i) => Ok(i),
            p => Err(unexpected(p)),
        }
    }

    /// `BPF_OBJ_PIN`.
    pub fn obj_pin(&mut self, kind: ObjKind, id: u32, path: &str) -> Result<(), ClientError> {
        self.done(&Request::ObjPin {
            kind,
            id,
            path: path.into(),
        })
    }

    /// `BPF_OBJ_GET`: the kind and id a pin names.
    pub fn obj_get(&mut self, path: &str) -> Result<(ObjKind, u32), ClientError> {
        match self.call(&Request::ObjGet { path: path.into() })? {
            Payload::Obj { obj, id } => Ok((obj, id)),
            p => Err(unexpected(p)),
        }
    }

    /// `BPF_PROG_TEST_RUN`: (retval, data_out, ns per run).
    pub fn prog_test_run(
        &mut self,
        prog_id: u32,
        data_in: &[u8],
        repeat: u32,
    ) -> Result<(u32, Vec<u8>, u64), ClientError> {
        match self.call(&Request::ProgTestRun {
            prog_id,
            data_in: data_in.into(),
            repeat,
        })? {
            Payload::TestRun {
                retval,
                data_out,
                duration_ns,
            } => Ok((retval, data_out.0, duration_ns)),
            p => Err(unexpected(p)),
        }
    }

    /// Runs program `prog_id` over `packets` in the daemon (outside its request lock, so
    /// other clients update maps meanwhile): each packet's XDP action, and with
    /// `want_data_out` each packet as the program left it.
    pub fn prog_run_packets(
        &mut self,
        prog_id: u32,
        packets: &[Vec<u8>],
        want_data_out: bool,
    ) -> Result<(Vec<u32>, Vec<Vec<u8>>), ClientError> {
        self.prog_run_packets_on(prog_id, packets, want_data_out, false)
    }

    /// [`Client::prog_run_packets`] on the JIT or (`interp`) the interpreter.
    pub fn prog_run_packets_on(
        &mut self,
        prog_id: u32,
        packets: &[Vec<u8>],
        want_data_out: bool,
        interp: bool,
    ) -> Result<(Vec<u32>, Vec<Vec<u8>>), ClientError> {
        match self.call(&Request::ProgRunPackets {
            prog_id,
            packets: packets.iter().map(|p| Bytes(p.clone())).collect(),
            want_data_out,
            interp,
        })? {
            Payload::Retvals {
                retvals, data_out, ..
            } => Ok((retvals, data_out.into_iter().map(|b| b.0).collect())),
            p => Err(unexpected(p)),
        }
    }

    /// Drops this connection's hold on a map it created.
    pub fn close(&mut self, map_id: u32) -> Result<(), ClientError> {
        self.done(&Request::Close { map_id })
    }

    /// Runs one bpftool-grammar command in the daemon (as `kbpf WORDS…` would): stdout,
    /// stderr and the exit status.
    pub fn command(
        &mut self,
        words: &[&str],
        cwd: &Path,
    ) -> Result<(String, String, u8), ClientError> {
        match self.call(&Request::Command {
            words: words.iter().map(|w| w.to_string()).collect(),
            options: CommandOptions::default(),
            cwd: cwd.display().to_string(),
            stdin: None,
        })? {
            Payload::Command {
                stdout,
                stderr,
                status,
            } => Ok((stdout, stderr, status)),
            p => Err(unexpected(p)),
        }
    }

    /// The daemon's status.
    pub fn status(&mut self) -> Result<DaemonStatus, ClientError> {
        match self.call(&Request::Status)? {
            Payload::Status(s) => Ok(s),
            p => Err(unexpected(p)),
        }
    }

    fn done(&mut self, req: &Request) -> Result<(), ClientError> {
        match self.call(req)? {
            Payload::Done => Ok(()),
            p => Err(unexpected(p)),
        }
    }
}

fn unexpected(p: Payload) -> ClientError {
    ClientError::Unexpected(format!("{p:?}").chars().take(200).collect())
}

fn flock(f: &std::fs::File, op: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: a valid open descriptor; flock has no memory effects.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_directories_get_a_short_socket_name() {
        let short = socket_path(Path::new("/tmp/kb"));
        assert_eq!(short, Path::new("/tmp/kb/.kbpf-daemon.sock"));
        let long = PathBuf::from(format!("/tmp/{}", "d".repeat(150)));
        let s = socket_path(&long);
        assert!(s.as_os_str().len() <= SUN_PATH_MAX, "{}", s.display());
        assert_eq!(s, socket_path(&long), "the name must be stable");
        assert_ne!(s, socket_path(&long.join("x")));
    }
}

//! The wire protocol between kbpf clients and the daemon that owns a bpffs directory's objects.
//!
//! A connection carries frames: a 4-byte little-endian length, then that many bytes of JSON.
//! The client sends one [`Request`] frame and reads one [`Response`] frame, as many times as it
//! likes on one connection. The requests are shaped like the `bpf()` commands (objects are named
//! by kbpf ids instead of file descriptors), plus [`Request::Command`], which runs one bpftool
//! grammar command line in the daemon so that the CLI has exactly one implementation of it.
//!
//! Byte strings (keys, values, packets) travel as lowercase hex ([`Bytes`]). Every decoder
//! error is a [`ProtoError`]; nothing a peer sends can make the decoder panic or allocate more
//! than [`MAX_FRAME`] bytes (the `proto_decode` fuzz target checks that).

use std::io::{self, Read, Write};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest frame either side accepts (a `map update_batch` of a big array fits; a hostile
/// length prefix does not make the reader allocate more).
pub const MAX_FRAME: usize = 256 << 20;

/// The protocol version a daemon reports in [`DaemonStatus`]; a client refuses another.
pub const PROTOCOL_VERSION: u32 = 1;

/// Bytes, carried as lowercase hex in JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Bytes {
        Bytes(v.to_vec())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut t = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            t.push(HEX[(b >> 4) as usize] as char);
            t.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&t)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let t = std::borrow::Cow::<'de, str>::deserialize(d)?;
        from_hex(&t)
            .map(Bytes)
            .ok_or_else(|| serde::de::Error::custom("bytes: not an even-length hex string"))
    }
}

/// Decodes lowercase or uppercase hex; None on odd length or a non-hex digit.
pub fn from_hex(t: &str) -> Option<Vec<u8>> {
    let b = t.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Which kind of object an id or a pin names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjKind {
    /// A map.
    Map,
    /// A program.
    Prog,
}

/// The global options of a bpftool-grammar command line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOptions {
    /// `-j`.
    pub json: bool,
    /// `-p`.
    pub pretty: bool,
    /// `-d`.
    pub debug: bool,
    /// `--kernel WHICH` (or `$KBPF_KERNEL` as the client saw it).
    pub kernel: Option<String>,
    /// `--kernel-btf FILE`.
    pub kernel_btf: Option<String>,
    /// `$KBPF_KERNEL` in the client's environment (used when neither option is given).
    #[serde(default)]
    pub kernel_env: Option<String>,
}

/// `BPF_MAP_CREATE`'s attributes, with the inner template of a map-of-maps given by the id of
/// an existing map (as `inner_map_fd` names one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapCreateAttr {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Map flags.
    #[serde(default)]
    pub map_flags: u32,
    /// Name (at most 15 bytes, as the kernel's `BPF_OBJ_NAME_LEN`).
    #[serde(default)]
    pub name: String,
    /// Map-of-maps: the id of the map whose attributes are the inner template.
    #[serde(default)]
    pub inner_map_id: Option<u32>,
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Runs one bpftool-grammar command (`map update pinned … key … value …`) in the daemon.
    Command {
        /// The words, `OBJECT COMMAND …` (global options already taken out).
        words: Vec<String>,
        /// The global options.
        options: CommandOptions,
        /// The client's working directory: relative file names in the words resolve there.
        cwd: String,
        /// The client's stdin, when the command reads it (`batch file -`, `data_in -`).
        #[serde(default)]
        stdin: Option<Bytes>,
    },
    /// `BPF_MAP_CREATE`; the new map lives while it is pinned or held by another object, as
    /// in the kernel once its creator's fd is closed: pin it ([`Request::ObjPin`]) or put it
    /// into a map-of-maps before the connection ends, or it is freed.
    MapCreate {
        /// The attributes.
        attr: MapCreateAttr,
        /// Pin path (under `/sys/fs/bpf`) to pin the new map at in the same step.
        #[serde(default)]
        pin: Option<String>,
    },
    /// `BPF_MAP_LOOKUP_ELEM`.
    MapLookup {
        /// Map id.
        map_id: u32,
        /// Key.
        key: Bytes,
    },
    /// `BPF_MAP_UPDATE_ELEM`. For a map-of-maps or PROG_ARRAY the value is the inner map's
    /// (program's) id as a 4-byte native-endian number, where `bpf()` takes an fd.
    MapUpdate {
        /// Map id.
        map_id: u32,
        /// Key.
        key: Bytes,
        /// Value.
        value: Bytes,
        /// `BPF_ANY` (0), `BPF_NOEXIST` (1), `BPF_EXIST` (2), `BPF_F_LOCK` (4).
        #[serde(default)]
        flags: u64,
    },
    /// `BPF_MAP_DELETE_ELEM`.
    MapDelete {
        /// Map id.
        map_id: u32,
        /// Key.
        key: Bytes,
    },
    /// `BPF_MAP_GET_NEXT_KEY` (no key: the first key).
    MapGetNextKey {
        /// Map id.
        map_id: u32,
        /// The key to continue after.
        #[serde(default)]
        key: Option<Bytes>,
    },
    /// `BPF_MAP_LOOKUP_BATCH`: up to `count` elements after the position `in_batch` (none:
    /// from the start); the reply's `out_batch` continues the walk.
    MapLookupBatch {
        /// Map id.
        map_id: u32,
        /// Position to continue from (a key of the map, as the walk's cursor).
        #[serde(default)]
        in_batch: Option<Bytes>,
        /// Most elements to return.
        count: u32,
    },
    /// `BPF_MAP_UPDATE_BATCH`: stops at the first failing element; the reply says how many
    /// were done.
    MapUpdateBatch {
        /// Map id.
        map_id: u32,
        /// Keys.
        keys: Vec<Bytes>,
        /// Values, one per key.
        values: Vec<Bytes>,
        /// Element flags.
        #[serde(default)]
        flags: u64,
    },
    /// `BPF_MAP_DELETE_BATCH`: stops at the first failing element.
    MapDeleteBatch {
        /// Map id.
        map_id: u32,
        /// Keys.
        keys: Vec<Bytes>,
    },
    /// `BPF_MAP_FREEZE`.
    MapFreeze {
        /// Map id.
        map_id: u32,
    },
    /// `BPF_OBJ_GET_INFO_BY_FD` on a map.
    MapGetInfo {
        /// Map id.
        map_id: u32,
    },
    /// `BPF_OBJ_PIN`.
    ObjPin {
        /// What is pinned.
        kind: ObjKind,
        /// Its id.
        id: u32,
        /// Path under `/sys/fs/bpf` (or under the bpffs directory).
        path: String,
    },
    /// `BPF_OBJ_GET`: what a pin names.
    ObjGet {
        /// Path under `/sys/fs/bpf` (or under the bpffs directory).
        path: String,
    },
    /// `BPF_PROG_TEST_RUN` (XDP/TC/socket filter: packet in, packet out).
    ProgTestRun {
        /// Program id.
        prog_id: u32,
        /// The packet.
        data_in: Bytes,
        /// Repeat count (0 = 1).
        #[serde(default)]
        repeat: u32,
    },
    /// Runs a program over many packets in the daemon, outside the lock that serialises the
    /// other requests, so that other clients update maps while it runs (a datapath).
    ProgRunPackets {
        /// Program id.
        prog_id: u32,
        /// The packets.
        packets: Vec<Bytes>,
        /// Also return each packet as the program left it.
        #[serde(default)]
        want_data_out: bool,
        /// Run on the interpreter instead of the JIT.
        #[serde(default)]
        interp: bool,
    },
    /// Drops this connection's hold on a map it created (closing the fd, in `bpf()` terms):
    /// the map lives on only while pinned or held by another object.
    Close {
        /// Map id.
        map_id: u32,
    },
    /// The daemon's state: pid, object counts, journal.
    Status,
    /// Writes a checkpoint now.
    Checkpoint,
    /// Checkpoints and exits.
    Shutdown,
}

/// `BPF_OBJ_GET_INFO_BY_FD`'s map fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapInfo {
    /// Id.
    pub id: u32,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Flags.
    pub map_flags: u32,
    /// Name.
    pub name: String,
    /// Whether the map is frozen.
    pub frozen: bool,
}

/// What a daemon reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Process id.
    pub pid: u32,
    /// The bpffs directory it owns.
    pub bpffs: String,
    /// Live maps.
    pub maps: u32,
    /// Live programs.
    pub progs: u32,
    /// Requests served since start.
    pub requests: u64,
    /// Journal records since the last checkpoint.
    pub journal_records: u64,
    /// Journal bytes since the last checkpoint.
    pub journal_bytes: u64,
    /// Seconds since the last checkpoint.
    pub since_checkpoint_s: u64,
    /// Resident memory (kB, from /proc/self/status).
    pub rss_kb: u64,
}

/// One successful reply's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// Nothing to return.
    Done,
    /// A command's output, as bpftool would print it.
    Command {
        /// stdout (plain mode).
        stdout: String,
        /// stderr.
        stderr: String,
        /// The exit status (0..=255).
        status: u8,
    },
    /// A new map's id.
    MapId {
        /// Id.
        id: u32,
    },
    /// A value.
    Value {
        /// Value bytes.
        value: Bytes,
    },
    /// The next key.
    Key {
        /// Key bytes.
        key: Bytes,
    },
    /// A batch lookup's elements and the position to continue from (none: the walk is done).
    Batch {
        /// Keys.
        keys: Vec<Bytes>,
        /// Values.
        values: Vec<Bytes>,
        /// Cursor for the next call.
        out_batch: Option<Bytes>,
    },
    /// How many elements a batch update/delete did.
    Count {
        /// Elements done.
        count: u32,
    },
    /// Map info.
    MapInfo(MapInfo),
    /// What a pin names.
    Obj {
        /// Kind.
        obj: ObjKind,
        /// Id.
        id: u32,
    },
    /// A test run's result.
    TestRun {
        /// `r0`.
        retval: u32,
        /// The packet after the run.
        data_out: Bytes,
        /// Time per run.
        duration_ns: u64,
    },
    /// Per-packet return values of [`Request::ProgRunPackets`].
    Retvals {
        /// `r0` per packet.
        retvals: Vec<u32>,
        /// Each packet as the program left it (when asked for).
        #[serde(default)]
        data_out: Vec<Bytes>,
        /// Wall time of the whole run.
        elapsed_ns: u64,
    },
    /// Daemon status.
    Status(DaemonStatus),
}

/// A reply: a payload, or the kernel's errno with a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success.
    Ok(Payload),
    /// Failure: a positive errno (`EINVAL`, `ENOENT`, …) and what went wrong.
    Err {
        /// errno.
        errno: i32,
        /// Message.
        message: String,
    },
}

/// Framing and decoding errors.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The connection failed or closed mid-frame.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// A length prefix above [`MAX_FRAME`].
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The JSON does not decode as the expected message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Writes one frame holding `msg`.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(ProtoError::TooLarge(body.len()));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's body. A clean end of stream before a frame starts is
/// [`ProtoError::Closed`]; anywhere else it is an I/O error.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Vec<u8>, ProtoError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(ProtoError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(ProtoError::TooLarge(n));
    }
    // Read in bounded steps so that a lying length prefix costs at most what was sent.
    let mut body = Vec::with_capacity(n.min(1 << 20));
    r.take(n as u64).read_to_end(&mut body)?;
    if body.len() != n {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(body)
}

/// Decodes a request body.
pub fn decode_request(body: &[u8]) -> Result<Request, ProtoError> {
    serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Decodes a response body.
pub fn decode_response(body: &[u8]) -> Result<Response, ProtoError> {
    serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_round_trip_through_frames() {
        let reqs = vec![
            Request::MapUpdate {
                map_id: 7,
                key: Bytes(vec![1, 0, 0, 0]),
                value: Bytes(vec![0xde, 0xad]),
                flags: 1,
            },
            Request::Command {
                words: vec!["map".into(), "show".into()],
                options: CommandOptions {
                    json: true,
                    ..CommandOptions::default()
                },
                cwd: "/tmp".into(),
                stdin: Some(Bytes(b"map show\n".to_vec())),
            },
            Request::MapGetNextKey {
                map_id: 1,
                key: None,
            },
            Request::Shutdown,
        ];
        let mut buf = Vec::new();
        for r in &reqs {
            write_frame(&mut buf, r).unwrap();
        }
        let mut rd = &buf[..];
        for r in &reqs {
            let body = read_frame(&mut rd).unwrap();
            assert_eq!(&decode_request(&body).unwrap(), r);
        }
        assert!(matches!(read_frame(&mut rd), Err(ProtoError::Closed)));
    }

    #[test]
    fn bytes_are_hex_on_the_wire() {
        let t = serde_json::to_string(&Bytes(vec![0, 0xab, 0x10])).unwrap();
        assert_eq!(t, "\"00ab10\"");
        assert!(serde_json::from_str::<Bytes>("\"0g\"").is_err());
        assert!(serde_json::from_str::<Bytes>("\"abc\"").is_err());
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut big = Vec::new();
        big.extend_from_slice(&((MAX_FRAME as u32) + 1).to_le_bytes());
        assert!(matches!(
            read_frame(&mut &big[..]),
            Err(ProtoError::TooLarge(_))
        ));
        let mut short = Vec::new();
        short.extend_from_slice(&100u32.to_le_bytes());
        short.extend_from_slice(b"{\"op\":");
        assert!(matches!(
            read_frame(&mut &short[..]),
            Err(ProtoError::Io(_))
        ));
        assert!(matches!(
            read_frame(&mut &[1u8, 0][..]),
            Err(ProtoError::Io(_))
        ));
        assert!(matches!(
            decode_request(b"{\"op\":\"map_lookup\",\"map_id\":1}"),
            Err(ProtoError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut rd = &data[..];
            if let Ok(body) = read_frame(&mut rd) {
                let _ = decode_request(&body);
            }
            let _ = decode_request(&data);
            let _ = decode_response(&data);
        }
    }
}

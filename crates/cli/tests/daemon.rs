//! The daemon that owns a bpffs directory's objects: processes share live maps through it, its
//! requests keep the kernel's semantics under concurrency (16 parallel batch files give the
//! result of some serial order), acknowledged changes survive `kill -9` at any moment, and it
//! defends itself (socket mode, peer checks, pin paths, malformed messages).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{kbpf, scratch_dir};
use kbpf_client::{Client, MapCreateAttr, ObjKind, socket_path};

const KBPF: &str = env!("CARGO_BIN_EXE_kbpf");

/// A scratch bpffs directory whose daemon is stopped when the test ends.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(scratch_dir(&format!("daemon-{tag}")))
    }

    fn ok(&self, cmd: &str) -> String {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let (st, out, err) = kbpf(&self.0, &args);
        assert_eq!(st, 0, "kbpf {cmd}: {out}{err}");
        out
    }

    fn client(&self) -> Client {
        Client::connect_or_start(&self.0, Path::new(KBPF)).expect("daemon")
    }

    fn pid(&self) -> i32 {
        match self.client().status() {
            Ok(s) => s.pid as i32,
            Err(e) => panic!(
                "status: {e}; daemon log:\n{}",
                std::fs::read_to_string(self.0.join(".kbpf-daemon.log")).unwrap_or_default()
            ),
        }
    }

    /// `kill -9` of the daemon; waits until it is gone: its socket refuses connections
    /// (a killed multi-threaded process shows as a zombie while its other threads, and so
    /// its listening socket, are still going away).
    fn kill_daemon(&self) {
        self.kill_pid(self.pid());
    }

    /// `kill -9` of daemon `pid` (known beforehand: a status request would wait for a
    /// running batch to end).
    fn kill_pid(&self, pid: i32) {
        // SAFETY: sending a signal has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let start = Instant::now();
        while Client::connect(&self.0).is_ok() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "daemon survived kill -9"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = kbpf(&self.0, &["daemon", "stop"]);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn u32_at(v: &[u8]) -> u32 {
    u32::from_le_bytes(v[..4].try_into().unwrap())
}

fn array(name: &str, entries: u32) -> MapCreateAttr {
    MapCreateAttr {
        map_type: 2,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        name: name.into(),
        ..MapCreateAttr::default()
    }
}

#[test]
fn two_processes_share_live_maps_through_the_daemon() {
    let d = Dir::new("share");
    d.ok("map create /sys/fs/bpf/a type array key 4 value 4 entries 8 name a");
    let mut c = d.client();
    let (kind, id) = c.obj_get("/sys/fs/bpf/a").unwrap();
    assert_eq!(kind, ObjKind::Map);
    // The Rust client writes; the CLI, another process, reads the same live map.
    c.map_update(id, &3u32.to_le_bytes(), &77u32.to_le_bytes(), 0)
        .unwrap();
    assert_eq!(
        d.ok("map lookup pinned /sys/fs/bpf/a key 3 0 0 0"),
        "key: 03 00 00 00  value: 4d 00 00 00\n"
    );
    d.ok("map update pinned /sys/fs/bpf/a key 4 0 0 0 value 5 0 0 0");
    assert_eq!(u32_at(&c.map_lookup(id, &4u32.to_le_bytes()).unwrap()), 5);
    // The kernel's errno on the API: out of range, wrong key size, flags.
    let e = c
        .map_update(id, &9u32.to_le_bytes(), &[0; 4], 0)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::E2BIG));
    let e = c.map_lookup(id, &[0; 2]).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL));
    let e = c
        .map_update(id, &0u32.to_le_bytes(), &[0; 4], 1)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EEXIST), "BPF_NOEXIST on an array");
    // Map-of-maps through the API: inner maps by id, swapped whole.
    let mut tmpl = array("tmpl", 1);
    tmpl.map_flags = 1 << 12; // BPF_F_INNER_MAP: inner arrays may differ in size
    let tmpl = c.map_create(tmpl, None).unwrap();
    let outer = c
        .map_create(
            MapCreateAttr {
                map_type: 13,
                key_size: 4,
                value_size: 4,
                max_entries: 4,
                name: "outer".into(),
                inner_map_id: Some(tmpl),
                ..MapCreateAttr::default()
            },
            Some("/sys/fs/bpf/outer"),
        )
        .unwrap();
    let mut inner = array("in", 1);
    inner.map_flags = 1 << 12;
    inner.max_entries = 5;
    let i5 = c.map_create(inner, None).unwrap();
    c.map_update_inner(outer, &1u32.to_le_bytes(), i5, 0)
        .unwrap();
    assert_eq!(
        u32_at(&c.map_lookup(outer, &1u32.to_le_bytes()).unwrap()),
        i5
    );
    drop(c);
    // The connection that created the inner map is gone; the outer map still holds it.
    let shown = d.ok("map show pinned /sys/fs/bpf/outer");
    assert!(shown.contains("hash_of_maps  name outer"), "{shown}");
    let dump = d.ok("map dump pinned /sys/fs/bpf/outer");
    assert!(
        dump.contains(&format!("key: 01 00 00 00  value: {i5:02x} 00 00 00")),
        "{dump}"
    );
    // An unpinned map nothing holds is freed when its creator's connection ends.
    let mut c = d.client();
    let loose = c.map_create(array("loose", 1), None).unwrap();
    drop(c);
    let mut c = d.client();
    assert_eq!(c.map_info(loose).unwrap_err().errno(), Some(libc::ENOENT));
}

#[test]
fn acknowledged_changes_survive_kill_9_at_any_moment() {
    let d = Dir::new("kill");
    d.ok("map create /sys/fs/bpf/h type hash key 4 value 4 entries 4096 name h");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d ^ std::process::id() as u64;
    let mut acked: Vec<(u32, u32)> = Vec::new();
    let mut rounds: u32 = 0;
    // How long a batch of creates takes here, so that kills land before, inside and after.
    const N: usize = 200;
    let probe = d.0.join("probe.batch");
    let lines: String = (0..N)
        .map(|i| {
            format!("map create /sys/fs/bpf/p_{i} type array key 4 value 4 entries 64 name p\n")
        })
        .collect();
    std::fs::write(&probe, lines).unwrap();
    let t = Instant::now();
    let (st, _, err) = kbpf(&d.0, &["batch", "file", probe.to_str().unwrap()]);
    assert_eq!(st, 0, "{err}");
    let batch_us = t.elapsed().as_micros() as u64;
    while rounds < 8 {
        rounds += 1;
        // A writer updates keys as fast as it can; the daemon is killed under it.
        let dir = d.0.clone();
        let base = rounds * 1000;
        let writer = std::thread::spawn(move || {
            let mut done = Vec::new();
            // The daemon may be killed before this connects: then nothing was acknowledged.
            let Ok(mut c) = Client::connect_or_start(&dir, Path::new(KBPF)) else {
                return done;
            };
            let Ok((_, id)) = c.obj_get("/sys/fs/bpf/h") else {
                return done;
            };
            for k in base..base + 400 {
                match c.map_update(id, &k.to_le_bytes(), &(k * 3).to_le_bytes(), 0) {
                    Ok(()) => done.push((k, k * 3)),
                    Err(_) => break,
                }
            }
            done
        });
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros((seed >> 33) % 20_000));
        d.kill_daemon();
        let done = writer.join().unwrap();
        println!(
            "round {rounds}: {} of 400 updates acknowledged before the kill",
            done.len()
        );
        acked.extend(done);
        // Batches are one request each: killed mid-way, all or nothing of one is there.
        let batch = d.0.join(format!("b{rounds}.batch"));
        let lines: String = (0..N)
            .map(|i| {
                format!("map create /sys/fs/bpf/r{rounds}_{i} type array key 4 value 4 entries 64 name r\n")
            })
            .collect();
        std::fs::write(&batch, lines).unwrap();
        let pid = d.pid(); // a daemon is up before the batch starts
        let mut child = Command::new(KBPF)
            .arg("--bpffs")
            .arg(&d.0)
            .args(["batch", "file"])
            .arg(&batch)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros((seed >> 40) % (2 * batch_us)));
        d.kill_pid(pid);
        let finished = child.wait().unwrap().success();
        let mut c = d.client();
        let shown = (0..N)
            .filter(|i| c.obj_get(&format!("/sys/fs/bpf/r{rounds}_{i}")).is_ok())
            .count();
        println!(
            "round {rounds}: batch of {N} creates: {shown} there after the kill (acknowledged: {finished})"
        );
        if finished {
            assert_eq!(shown, N, "round {rounds}: an acknowledged batch lost maps");
        }
        assert!(
            shown == 0 || shown == N,
            "round {rounds}: {shown} of {N} maps of one batch"
        );
        // Every acknowledged element update is there after the restart.
        let mut c = d.client();
        let (_, id) = c.obj_get("/sys/fs/bpf/h").unwrap();
        for (k, v) in &acked {
            let got = c.map_lookup(id, &k.to_le_bytes());
            assert_eq!(
                got.map(|g| u32_at(&g)).ok(),
                Some(*v),
                "round {rounds}: acknowledged key {k} lost"
            );
        }
    }
    assert!(!acked.is_empty());
}

#[test]
fn a_checkpoint_killed_before_its_rename_loses_nothing() {
    let d = Dir::new("ckpt");
    // A daemon whose checkpoints pause between writing the new state file and renaming it.
    let status = Command::new(KBPF)
        .arg("--bpffs")
        .arg(&d.0)
        .args(["daemon", "start"])
        .env("KBPF_DEBUG_PAUSE_BEFORE_RENAME_MS", "30000")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    d.ok("map create /sys/fs/bpf/a type array key 4 value 4 entries 2 name a");
    d.ok("map update pinned /sys/fs/bpf/a key 1 0 0 0 value 42 0 0 0");
    let dir = d.0.clone();
    std::thread::spawn(move || {
        let _ = Client::connect(&dir).map(|mut c| c.call(&kbpf_client::Request::Checkpoint));
    });
    let start = Instant::now();
    while !std::fs::read_dir(&d.0).unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with(".kbpf-state.json.tmp.")
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no checkpoint started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The checkpoint holds the session lock (a status request would wait for it): the
    // daemon's pid is in its log.
    let log = std::fs::read_to_string(d.0.join(".kbpf-daemon.log")).unwrap();
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with("kbpf daemon "))
        .unwrap();
    let pid: i32 = last.split_whitespace().nth(2).unwrap().parse().unwrap();
    // SAFETY: sending a signal has no memory effects.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        d.ok("map lookup pinned /sys/fs/bpf/a key 1 0 0 0"),
        "key: 01 00 00 00  value: 2a 00 00 00\n"
    );
}

#[test]
fn sixteen_concurrent_batch_files_equal_a_serial_order() {
    let d = Dir::new("conc16");
    d.ok("map create /sys/fs/bpf/shared type hash key 4 value 4 entries 64 name shared");
    // Every batch writes its own number into the same 20 keys and creates its own map. Run
    // serially in any order, the 20 keys end with one batch's number; interleaved, mixed.
    let files: Vec<PathBuf> = (1..=16u32)
        .map(|b| {
            let mut t = format!(
                "map create /sys/fs/bpf/own{b} type array key 4 value 4 entries 4 name own{b}\n"
            );
            for k in 0..20u32 {
                t.push_str(&format!(
                    "map update pinned /sys/fs/bpf/shared key {k} 0 0 0 value {b} 0 0 0\n"
                ));
                t.push_str(&format!(
                    "map update pinned /sys/fs/bpf/own{b} key {} 0 0 0 value {b} {k} 0 0\n",
                    k % 4
                ));
            }
            let f = d.0.join(format!("c{b}.batch"));
            std::fs::write(&f, t).unwrap();
            f
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(KBPF)
                .arg("--bpffs")
                .arg(&d.0)
                .args(["batch", "file"])
                .arg(f)
                .output()
        })
        .collect();
    for c in children {
        let o = c.unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).ends_with("processed 41 commands\n"));
    }
    let dump = d.ok("-j map dump pinned /sys/fs/bpf/shared");
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let values: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(values.len(), 20);
    assert!(
        values.iter().all(|x| *x == values[0]),
        "interleaved batches: {values:?}"
    );
    for b in 1..=16 {
        let out = d.ok(&format!("map lookup pinned /sys/fs/bpf/own{b} key 3 0 0 0"));
        assert_eq!(out, format!("key: 03 00 00 00  value: {b:02x} 13 00 00\n"));
    }
}

#[test]
fn the_socket_is_its_owners_and_pins_stay_inside_the_directory() {
    let d = Dir::new("sec");
    d.ok("map create /sys/fs/bpf/a type array key 4 value 4 entries 1 name a");
    let mode = std::fs::metadata(socket_path(&d.0))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    // Pinning map `a` at `path` fails with a message containing `why`.
    let refused = |path: &str, why: &str| {
        let (st, _, err) = kbpf(&d.0, &["map", "pin", "pinned", "/sys/fs/bpf/a", path]);
        assert_ne!(st, 0, "pinned at {path}");
        assert!(err.contains(why), "{path}: {err}");
    };
    // `..` cannot leave the directory.
    refused("/sys/fs/bpf/../../escaped", "not under /sys/fs/bpf");
    // Nor can a symlink inside it, to a directory or as the pin's own name.
    let outside = scratch_dir("daemon-sec-outside");
    std::os::unix::fs::symlink(&outside, d.0.join("link")).unwrap();
    refused("/sys/fs/bpf/link/p", "leaves the bpffs directory");
    std::os::unix::fs::symlink(outside.join("target"), d.0.join("dangling")).unwrap();
    refused("/sys/fs/bpf/dangling", "File exists");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "a pin was written outside"
    );
    std::fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn malformed_messages_get_errors_and_leave_the_daemon_intact() {
    let d = Dir::new("fuzz");
    d.ok("map create /sys/fs/bpf/a type array key 4 value 4 entries 2 name a");
    d.ok("map update pinned /sys/fs/bpf/a key 1 0 0 0 value 9 0 0 0");
    let sock = socket_path(&d.0);
    let frame = |body: &[u8]| {
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    let garbage: Vec<Vec<u8>> = vec![
        frame(b"not json"),
        frame(b"{\"op\":\"map_update\",\"map_id\":1}"),
        frame(b"{\"op\":\"map_update\",\"map_id\":1,\"key\":\"0\",\"value\":\"zz\"}"),
        frame(b"{\"op\":\"map_lookup\",\"map_id\":4294967295,\"key\":\"00000000\"}"),
        frame(b"{\"op\":\"command\",\"words\":[],\"options\":{},\"cwd\":\"/nonexistent\"}"),
        frame(&[0xff; 64]),
        (u32::MAX).to_le_bytes().to_vec(),
        vec![7, 0, 0, 0, b'{'],
        vec![1, 2],
    ];
    for g in &garbage {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(g).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        if reply.len() >= 4 {
            let body = &reply[4..];
            let text = String::from_utf8_lossy(body);
            assert!(
                text.contains("\"err\"") || text.contains("command"),
                "{:?}: {text}",
                String::from_utf8_lossy(g)
            );
        }
    }
    // A seeded stream of random frames, too.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        let mut body = Vec::new();
        for _ in 0..(seed % 97) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            body.push(
                b"{}[]\":,0123456789abcdefopkeymap_id_lookupvalue"[(seed >> 33) as usize % 46],
            );
        }
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(&frame(&body)).unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
    }
    assert_eq!(
        d.ok("map lookup pinned /sys/fs/bpf/a key 1 0 0 0"),
        "key: 01 00 00 00  value: 09 00 00 00\n"
    );
}

#[test]
fn daemon_start_status_stop() {
    let d = Dir::new("ctl");
    let (st, _, err) = kbpf(&d.0, &["daemon", "status"]);
    assert_ne!(st, 0, "no daemon yet");
    assert!(err.contains("no kbpf daemon"), "{err}");
    assert!(d.ok("daemon start").starts_with("kbpf daemon "));
    let status: serde_json::Value = serde_json::from_str(&d.ok("-j daemon status")).unwrap();
    assert!(status["pid"].as_u64().unwrap() > 0);
    // A second daemon for the same directory refuses to start.
    let o = Command::new(KBPF)
        .arg("--bpffs")
        .arg(&d.0)
        .args(["daemon", "run"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("owned by another kbpf process"));
    // A command run in the process while the daemon owns the directory says so at once.
    let o = Command::new(KBPF)
        .env("KBPF_DAEMON", "off")
        .arg("--bpffs")
        .arg(&d.0)
        .args(["map", "show"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(240), "EBUSY");
    assert!(String::from_utf8_lossy(&o.stderr).contains("owned by its kbpf daemon"));
    d.ok("daemon stop");
    assert!(Client::connect(&d.0).is_err());
    // The next command starts it again, with the objects.
    d.ok("map create /sys/fs/bpf/x type hash key 4 value 4 entries 1 name x");
    d.ok("daemon stop");
    assert!(d.ok("map show pinned /sys/fs/bpf/x").contains("name x"));
}

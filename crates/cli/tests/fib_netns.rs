//! `kbpf prog run` of a program calling `bpf_fib_lookup`, from a client in another network
//! namespace: the daemon (started outside) runs it in the client's namespace, as bpftool's
//! test run happens in bpftool's own, so the answer equals bpftool's run there — and differs
//! from a run asked from the daemon's namespace. Needs root, `ip`, `nsenter`, bpftool and
//! `bpf()`;
//! skips with a message elsewhere (a failure under `CI=true`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_kernel::bpftool::{Pins, loadall, unavailable};

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("fib_netns: {why} under CI=true");
    }
    println!("SKIP: fib_netns: {why}");
}

fn object() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../run/tests/progs/fib.bpf.o")
}

/// A namespace with a gateway route and its neighbour; removed on drop.
struct Ns(String);

impl Ns {
    fn new() -> Result<Ns, String> {
        let ns = Ns(format!("kbpffibcli-{}", std::process::id()));
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        run(&["netns", "add", &ns.0])?;
        for cmd in [
            "link set lo up",
            "link add f0 type veth peer name f1",
            "link set f0 up",
            "link set f1 up",
            "addr add 10.71.0.1/24 dev f0",
            "neigh add 10.71.0.2 lladdr 02:00:00:00:00:02 dev f0 nud permanent",
            "route add 10.80.0.0/16 via 10.71.0.2 dev f0",
        ] {
            let full = format!("-n {} {cmd}", ns.0);
            run(&full.split_whitespace().collect::<Vec<_>>())?;
        }
        run(&[
            "netns",
            "exec",
            &ns.0,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding",
        ])?;
        Ok(ns)
    }

    /// `nsenter --net=/var/run/netns/NS PROGRAM ARGS…`: the namespace's network, this
    /// process's mounts (`ip netns exec` would remount /sys, hiding /sys/fs/bpf).
    fn exec(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.0))
            .arg(program)
            .args(args)
            .env_remove("KBPF_KERNEL")
            .output()
            .unwrap()
    }

    fn ifindex(&self, dev: &str) -> u32 {
        // `ip -o link show DEV`: "N: DEV@PEER: …".
        let o = self.exec("ip", &["-o", "link", "show", dev]);
        let text = String::from_utf8_lossy(&o.stdout);
        text.split(':').next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The test program's input: an Ethernet header, flags 0, plen 64, then `struct
/// bpf_fib_lookup` for 10.80.1.2 arriving on `ifindex`.
fn packet(ifindex: u32) -> Vec<u8> {
    let mut p = vec![0u8; 14 + 8 + 64];
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    let s = &mut p[22..];
    s[0] = libc::AF_INET as u8;
    s[8..12].copy_from_slice(&ifindex.to_ne_bytes());
    s[32..36].copy_from_slice(&[10, 80, 1, 2]);
    p
}

#[test]
fn prog_run_looks_up_routes_in_the_clients_namespace() {
    if let Some(why) = unavailable(&object()) {
        return skip(&why);
    }
    let ns = match Ns::new() {
        Ok(ns) => ns,
        Err(e) => return skip(&format!("cannot set up the network namespace: {e}")),
    };
    let dir = common::scratch_dir("fib-netns");
    let input = dir.join("in.bin");
    std::fs::write(&input, packet(ns.ifindex("f1"))).unwrap();
    let input = input.to_str().unwrap();
    // Loaded from here: the directory's daemon starts in this namespace.
    let (status, _, err) = common::kbpf(
        &dir,
        &[
            "prog",
            "loadall",
            object().to_str().unwrap(),
            "/sys/fs/bpf/fib",
        ],
    );
    assert_eq!(status, 0, "{err}");
    let pins = Pins::new("kbpffibcli", "fib");
    loadall(&object(), &pins).unwrap();

    let kernel_out = dir.join("kernel.bin");
    let kprog = pins.progs.join("xdp_fib");
    let o = ns.exec(
        "bpftool",
        &[
            "prog",
            "run",
            "pinned",
            kprog.to_str().unwrap(),
            "data_in",
            input,
            "data_out",
            kernel_out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kernel = std::fs::read(&kernel_out).unwrap();
    assert_eq!(
        i64::from_ne_bytes(kernel[14..22].try_into().unwrap()),
        0,
        "the kernel forwards in the namespace"
    );

    let kbpf_in = |inside: bool| -> Vec<u8> {
        let out = dir.join(format!("kbpf-{inside}.bin"));
        let args = [
            "--bpffs",
            dir.to_str().unwrap(),
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/fib/xdp_fib",
            "data_in",
            input,
            "data_out",
            out.to_str().unwrap(),
        ];
        let o = if inside {
            ns.exec(env!("CARGO_BIN_EXE_kbpf"), &args)
        } else {
            Command::new(env!("CARGO_BIN_EXE_kbpf"))
                .args(args)
                .env_remove("KBPF_KERNEL")
                .output()
                .unwrap()
        };
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(&out).unwrap()
    };
    assert_eq!(kbpf_in(true), kernel, "kbpf run from the namespace");
    assert_ne!(
        kbpf_in(false),
        kernel,
        "kbpf run from the daemon's namespace"
    );
    let _ = common::kbpf(&dir, &["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
}

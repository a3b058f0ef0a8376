//! `bpf_fib_lookup` on kbpf against the live kernel, in a network namespace of its own: veth
//! devices with addresses, gateway routes, blackhole/unreachable/prohibit routes, a second
//! table reached by `TBID` and by a fwmark rule, a prohibit rule, a route with a locked small
//! MTU, a device with a small MTU, a preferred-source route, permanent and missing
//! neighbours, forwarding on and off, a DSCP route, metrics, an `iif` rule, `throw`,
//! `suppress_prefixlen`, a link-down device, an LWT encapsulation, an IPv6 gateway — for IPv4 and IPv6. `tests/progs/fib.bpf.o` calls the
//! helper on a struct taken from the packet and writes the return code and the struct back;
//! each case runs through the kernel's `BPF_PROG_TEST_RUN` (XDP and tc) and kbpf's
//! interpreter and JIT on a thread inside the namespace, and the packets out must be equal.
//! Needs root, `ip`, bpftool and `bpf()`; skips with a message elsewhere (a failure under
//! `CI=true`).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

use kbpf_kernel::KernelProg;
use kbpf_kernel::bpftool::{Pins, loadall, unavailable};
use kbpf_kernel::fib::*;
use kbpf_run::{Engine, Program, TestRunInput};

mod common;

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("fib_kernel: {why} under CI=true");
    }
    println!("SKIP: fib_kernel: {why}");
}

fn object() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/fib.bpf.o")
}

/// A network namespace with the test's devices, addresses, routes and neighbours; removed
/// on drop.
struct Ns(String);

impl Ns {
    /// `ip -n NS ARGS…`.
    fn ip(&self, args: &str) -> Result<(), String> {
        let full = format!("-n {} {args}", self.0);
        let out = Command::new("ip")
            .args(full.split_whitespace())
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {full}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Writes `/proc/sys/net/PATH` inside the namespace.
    fn sysctl(&self, path: &str, v: &str) -> Result<(), String> {
        let script = format!("echo {v} > /proc/sys/net/{path}");
        let ok = Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", &script])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(format!("sysctl {path}"))
        }
    }

    fn new() -> Result<Ns, String> {
        let ns = Ns(format!("kbpffib-{}", std::process::id()));
        let ip = |args: &str| ns.ip(args);
        let out = Command::new("ip")
            .args(["netns", "add", &ns.0])
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip netns add: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let sysctl = |path: &str, v: &str| ns.sysctl(path, v);
        for cmd in [
            "link set lo up",
            "link add f0 type veth peer name f1",
            "link add g0 mtu 1400 type veth peer name g1",
            "link set f0 address 02:00:00:00:0f:00",
            "link set g0 address 02:00:00:00:0a:00",
            "link set f0 up",
            "link set f1 up",
            "link set g0 up",
            "link set g1 up",
            "link add h0 type veth peer name h1",
            "link set h0 up",
            "addr add 10.71.0.1/24 dev f0",
            "addr add 10.72.0.1/24 dev g0",
            "addr add 10.73.0.1/24 dev f1",
            "addr add 10.74.0.1/24 dev h0",
            "addr add 2001:db8:74::1/64 dev h0 nodad",
            "addr add 2001:db8:71::1/64 dev f0 nodad",
            "addr add 2001:db8:72::1/64 dev g0 nodad",
        ] {
            ip(cmd)?;
        }
        sysctl("ipv4/conf/all/forwarding", "1")?;
        sysctl("ipv6/conf/all/forwarding", "1")?;
        sysctl("ipv4/conf/g1/forwarding", "0")?;
        sysctl("ipv6/conf/g1/forwarding", "0")?;
        sysctl("ipv4/conf/h0/ignore_routes_with_linkdown", "1")?;
        for cmd in [
            "neigh add 10.71.0.2 lladdr 02:00:00:00:00:02 dev f0 nud permanent",
            "neigh add 10.72.0.2 lladdr 02:00:00:00:00:12 dev g0 nud permanent",
            "-6 neigh add 2001:db8:71::2 lladdr 02:00:00:00:00:22 dev f0 nud permanent",
            "route add 10.80.0.0/16 via 10.71.0.2 dev f0",
            "route add 10.81.0.0/16 via 10.71.0.3 dev f0",
            "route add blackhole 10.90.0.0/16",
            "route add unreachable 10.91.0.0/16",
            "route add prohibit 10.92.0.0/16",
            "route add 10.93.0.0/16 dev f0",
            "route add 10.93.0.0/16 via 10.72.0.2 dev g0 table 100",
            "route add 10.94.0.0/16 via 10.71.0.2 dev f0 mtu lock 1300",
            "route add 10.95.0.0/16 via 10.71.0.2 dev f0 src 10.72.0.1",
            "route add 10.96.0.0/16 via 10.72.0.2 dev g0 metric 7",
            "route add 10.80.5.0/24 via 10.72.0.2 dev g0",
            "rule add fwmark 7 lookup 100 pref 100",
            "rule add to 10.97.0.0/16 prohibit pref 200",
            "neigh add 10.74.0.2 lladdr 02:00:00:00:00:32 dev h0 nud permanent",
            "-6 neigh add 2001:db8:74::2 lladdr 02:00:00:00:00:42 dev h0 nud permanent",
            "route add 10.84.0.0/16 via 10.74.0.2 dev h0",
            "-6 route add 2001:db8:84::/48 via 2001:db8:74::2 dev h0",
            "route add 10.85.0.0/16 encap ip id 5 dst 10.0.0.1 via 10.71.0.2 dev f0",
            "route add 10.87.0.0/16 via inet6 2001:db8:71::2 dev f0",
            "route add 10.80.1.0/24 tos 0x10 via 10.72.0.2 dev g0",
            "route add 10.86.0.0/16 via 10.71.0.2 dev f0 metric 20",
            "route add 10.86.0.0/16 via 10.72.0.2 dev g0 metric 10",
            "route add 10.88.0.0/16 via 10.71.0.2 dev f0",
            "rule add iif f1 to 10.88.0.0/16 unreachable pref 70",
            "route add 10.98.0.0/16 via 10.71.0.2 dev f0",
            "route add throw 10.98.0.0/16 table 100",
            "rule add to 10.98.0.0/16 lookup 100 pref 150",
            "route add 10.99.0.0/16 via 10.72.0.2 dev g0 table 300",
            "route add 10.0.0.0/8 via 10.72.0.2 dev g0 table 300",
            "rule add lookup 300 suppress_prefixlen 8 pref 60",
            "-6 route add 2001:db8:97::/48 via 2001:db8:71::2 dev f0 metric 10",
            "-6 route add 2001:db8:97::/48 via 2001:db8:72::2 dev g0 metric 5",
            "-6 route add 2001:db8:80::/48 via 2001:db8:71::2 dev f0",
            "-6 route add 2001:db8:81::/48 via 2001:db8:71::3 dev f0",
            "-6 route add blackhole 2001:db8:90::/48",
            "-6 route add unreachable 2001:db8:91::/48",
            "-6 route add prohibit 2001:db8:92::/48",
            "-6 route add 2001:db8:93::/48 via 2001:db8:71::2 dev f0 table 100",
            "-6 route add 2001:db8:94::/48 via 2001:db8:71::2 dev f0 mtu lock 1300",
            "-6 route add 2001:db8:95::/48 via 2001:db8:71::2 dev f0 src 2001:db8:72::1",
            "-6 route add 2001:db8:96::/48 dev g0",
            "-6 rule add fwmark 7 lookup 100 pref 100",
        ] {
            ip(cmd)?;
        }
        Ok(ns)
    }

    /// Moves the calling thread into the namespace.
    fn enter(&self) {
        let f = std::fs::File::open(format!("/var/run/netns/{}", self.0)).unwrap();
        // SAFETY: setns on a valid namespace fd; it changes only this thread's namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name; the call reads it only.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(i, 0, "no device {name}");
    i
}

/// One call: the struct's inputs and the helper's flags.
#[derive(Clone, Debug, Default)]
struct Case {
    what: &'static str,
    v6: bool,
    src: &'static str,
    dst: &'static str,
    dev: &'static str,
    ifindex: Option<u32>,
    flags: u32,
    tot_len: u16,
    tos: u32,
    mark: u32,
    tbid: u32,
    short: bool,
    family: Option<u8>,
    /// Packet length (tc's MTU check without `tot_len` looks at it).
    len: usize,
}

impl Case {
    fn packet(&self) -> Vec<u8> {
        let mut p = vec![0u8; self.len.max(14 + 8 + 64)];
        p[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        p[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        p[12..14].copy_from_slice(if self.v6 {
            &[0x86, 0xdd]
        } else {
            &[0x08, 0x00]
        });
        p[14..18].copy_from_slice(&self.flags.to_ne_bytes());
        p[18..22].copy_from_slice(&u32::from(self.short).to_ne_bytes());
        let s = &mut p[22..86];
        s[0] = self.family.unwrap_or(if self.v6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        } as u8);
        s[1] = 17;
        s[2..4].copy_from_slice(&1234u16.to_be_bytes());
        s[4..6].copy_from_slice(&80u16.to_be_bytes());
        s[6..8].copy_from_slice(&self.tot_len.to_ne_bytes());
        let idx = self.ifindex.unwrap_or_else(|| ifindex(self.dev));
        s[8..12].copy_from_slice(&idx.to_ne_bytes());
        if self.v6 {
            s[12..16].copy_from_slice(&self.tos.to_be_bytes());
            let a = |t: &str| t.parse::<Ipv6Addr>().unwrap().octets();
            s[16..32].copy_from_slice(&a(self.src));
            s[32..48].copy_from_slice(&a(self.dst));
        } else {
            s[12] = self.tos as u8;
            let a = |t: &str| t.parse::<Ipv4Addr>().unwrap().octets();
            s[16..20].copy_from_slice(&a(self.src));
            s[32..36].copy_from_slice(&a(self.dst));
        }
        s[48..52].copy_from_slice(&self.tbid.to_ne_bytes());
        s[52..56].copy_from_slice(&self.mark.to_ne_bytes());
        p
    }
}

fn cases() -> Vec<Case> {
    let v4 = |what, dst, flags| Case {
        what,
        src: "10.73.0.9",
        dst,
        dev: "f1",
        flags,
        ..Case::default()
    };
    let v6 = |what, dst, flags| Case {
        what,
        v6: true,
        src: "2001:db8:73::9",
        dst,
        dev: "f1",
        flags,
        ..Case::default()
    };
    let (direct, output, skip, tbid, src, mark) = (
        BPF_FIB_LOOKUP_DIRECT,
        BPF_FIB_LOOKUP_OUTPUT,
        BPF_FIB_LOOKUP_SKIP_NEIGH,
        BPF_FIB_LOOKUP_TBID,
        BPF_FIB_LOOKUP_SRC,
        BPF_FIB_LOOKUP_MARK,
    );
    vec![
        v4("gateway", "10.80.1.2", 0),
        v4("longer prefix", "10.80.5.9", 0),
        v4("missing neighbour", "10.81.0.1", 0),
        v4("missing neighbour, skipped", "10.81.0.1", skip),
        v4("blackhole", "10.90.0.1", 0),
        v4("unreachable", "10.91.0.1", 0),
        v4("prohibit", "10.92.0.1", 0),
        v4("prohibit rule", "10.97.0.1", 0),
        v4("local", "10.71.0.1", 0),
        v4("connected, no neighbour", "10.71.0.77", 0),
        v4("connected, neighbour", "10.71.0.2", 0),
        v4("no route", "192.0.2.1", 0),
        v4("main table", "10.93.0.1", skip),
        v4("direct", "10.93.0.1", direct | skip),
        Case {
            tbid: 100,
            ..v4("tbid 100", "10.93.0.1", direct | tbid)
        },
        Case {
            tbid: 55,
            ..v4("tbid missing", "10.93.0.1", direct | tbid)
        },
        Case {
            mark: 7,
            ..v4("mark rule", "10.93.0.1", mark)
        },
        Case {
            mark: 7,
            ..v4("mark without flag", "10.93.0.1", skip)
        },
        v4("output", "10.80.1.2", output),
        Case {
            dev: "f0",
            ..v4("output on f0", "10.80.1.2", output)
        },
        Case {
            dev: "g0",
            ..v4("output on g0", "10.80.1.2", output)
        },
        v4("src", "10.80.1.2", src),
        v4("prefsrc", "10.95.0.1", src),
        Case {
            tot_len: 1300,
            ..v4("locked mtu, fits", "10.94.0.1", 0)
        },
        Case {
            tot_len: 1301,
            ..v4("locked mtu, too big", "10.94.0.1", 0)
        },
        Case {
            tot_len: 1400,
            ..v4("device mtu, fits", "10.96.0.1", 0)
        },
        Case {
            tot_len: 1401,
            ..v4("device mtu, too big", "10.96.0.1", 0)
        },
        Case {
            len: 1500,
            ..v4("long packet, small device", "10.96.0.1", 0)
        },
        Case {
            len: 1418,
            ..v4("packet at device mtu + 18", "10.96.0.1", 0)
        },
        Case {
            dev: "g1",
            ..v4("forwarding off", "10.80.1.2", 0)
        },
        Case {
            ifindex: Some(999),
            ..v4("no device", "10.80.1.2", 0)
        },
        Case {
            tos: 0x10,
            ..v4("tos route", "10.80.1.2", 0)
        },
        Case {
            tos: 0x11,
            ..v4("tos route, ecn bits", "10.80.1.2", 0)
        },
        Case {
            tos: 0x18,
            ..v4("other tos", "10.80.1.2", 0)
        },
        v4("lower metric first", "10.86.0.1", 0),
        v4("link down, ignored", "10.84.0.1", 0),
        v4("lwt encap", "10.85.0.1", 0),
        v4("ipv6 gateway", "10.87.0.1", 0),
        v4("ipv6 gateway, skip neigh", "10.87.0.1", skip),
        Case {
            dev: "f0",
            ..v4("metric, output on f0", "10.86.0.1", output)
        },
        v4("iif rule", "10.88.0.1", 0),
        Case {
            dev: "f0",
            ..v4("iif rule, other device", "10.88.0.1", 0)
        },
        v4("iif rule, output", "10.88.0.1", output),
        v4("throw to the next rule", "10.98.0.1", 0),
        Case {
            tbid: 100,
            ..v4("throw, direct", "10.98.0.1", direct | tbid)
        },
        v4("tbid 0 is main", "10.98.0.1", direct | tbid),
        v4("suppress_prefixlen, longer", "10.99.1.1", 0),
        v4("suppress_prefixlen, suppressed", "10.80.1.2", 0),
        v4("all flags", "10.80.1.2", BPF_FIB_LOOKUP_MASK),
        v4("unknown flag", "10.80.1.2", 1 << 6),
        Case {
            short: true,
            ..v4("short plen", "10.80.1.2", 0)
        },
        Case {
            family: Some(99),
            ..v4("unknown family", "10.80.1.2", 0)
        },
        v6("gateway", "2001:db8:80::5", 0),
        v6("missing neighbour", "2001:db8:81::5", 0),
        v6("missing neighbour, skipped", "2001:db8:81::5", skip),
        v6("blackhole", "2001:db8:90::1", 0),
        v6("unreachable", "2001:db8:91::1", 0),
        v6("prohibit", "2001:db8:92::1", 0),
        v6("local", "2001:db8:71::1", 0),
        v6("connected, neighbour", "2001:db8:71::2", 0),
        v6("no route", "2001:db8:ff::1", 0),
        v6("link-local", "fe80::1", 0),
        v6("multicast", "ff02::1", 0),
        Case {
            tbid: 100,
            ..v6("tbid 100", "2001:db8:93::1", direct | tbid)
        },
        Case {
            mark: 7,
            ..v6("mark rule", "2001:db8:93::1", mark)
        },
        v6("tbid 0 is main", "2001:db8:80::5", direct | tbid),
        Case {
            tbid: 55,
            ..v6("tbid missing", "2001:db8:80::5", direct | tbid)
        },
        v6("main table miss", "2001:db8:93::1", 0),
        v6("lowest metric", "2001:db8:97::1", skip),
        v6("link down, used", "2001:db8:84::1", 0),
        Case {
            dev: "f0",
            ..v6(
                "lowest metric, output on f0",
                "2001:db8:97::1",
                output | skip,
            )
        },
        v6("output", "2001:db8:80::5", output),
        Case {
            dev: "f0",
            ..v6("output on f0", "2001:db8:80::5", output)
        },
        v6("src", "2001:db8:80::5", src),
        v6("prefsrc", "2001:db8:95::1", src),
        Case {
            tot_len: 1300,
            ..v6("locked mtu, fits", "2001:db8:94::1", 0)
        },
        Case {
            tot_len: 1301,
            ..v6("locked mtu, too big", "2001:db8:94::1", 0)
        },
        Case {
            tot_len: 1401,
            ..v6("device mtu, too big", "2001:db8:96::1", skip)
        },
        Case {
            len: 1500,
            ..v6("long packet, small device", "2001:db8:96::1", skip)
        },
        Case {
            dev: "g1",
            ..v6("forwarding off", "2001:db8:80::5", 0)
        },
        Case {
            ifindex: Some(999),
            ..v6("no device", "2001:db8:80::5", 0)
        },
        Case {
            tos: 0x0123_4567,
            ..v6("flowinfo", "2001:db8:80::5", 0)
        },
    ]
}

#[test]
fn fib_lookup_matches_the_kernel() {
    if let Some(why) = unavailable(&object()) {
        return skip(&why);
    }
    let ns = match Ns::new() {
        Ok(ns) => ns,
        Err(e) => return skip(&format!("cannot set up the network namespace: {e}")),
    };
    let pins = Pins::new("kbpffib", "fib");
    loadall(&object(), &pins).unwrap();
    let kb = common::KbpfObject::open(&object());
    let load = |name: &str| kb.program(name);
    let progs: Vec<(&str, Program, KernelProg)> = ["xdp_fib", "tc_fib"]
        .into_iter()
        .map(|n| {
            (
                n,
                load(n),
                KernelProg::from_pinned(pins.progs.join(n)).unwrap(),
            )
        })
        .collect();
    // One case on the kernel and both engines: equal outcomes; the kernel's return codes and
    // structs out.
    let compare = |case: &Case, compared: &mut usize| -> Vec<(i64, Vec<u8>)> {
        let data = case.packet();
        let mut rcs = Vec::new();
        for (name, prog, kprog) in &progs {
            let k = kprog.test_run(&data, data.len(), None, 1).unwrap();
            let rc = i64::from_ne_bytes(k.data_out[14..22].try_into().unwrap());
            rcs.push((rc, k.data_out[22..86].to_vec()));
            for engine in [Engine::Interpreter, Engine::Jit] {
                let b = prog
                    .test_run(&TestRunInput {
                        data_in: &data,
                        ctx_in: None,
                        repeat: 1,
                        engine,
                    })
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", case.what));
                let what = format!("{name} {} {:?} ({case:?})", case.what, engine);
                assert_eq!(
                    i64::from_ne_bytes(b.data_out[14..22].try_into().unwrap()),
                    rc,
                    "{what}: return code"
                );
                assert_eq!(b.data_out[22..86], k.data_out[22..86], "{what}: struct out");
                assert_eq!(b.retval, k.retval, "{what}: retval");
                *compared += 1;
            }
        }
        rcs
    };
    let (compared, codes) = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let mut codes = BTreeSet::new();
            let mut compared = 0;
            for case in cases() {
                codes.extend(compare(&case, &mut compared).into_iter().map(|(rc, _)| rc));
            }
            // kbpf keeps the routing state between lookups: every change must be seen by
            // the next one (and each change does change the kernel's answer).
            let find = |what: &str, v6: bool| {
                cases()
                    .into_iter()
                    .find(|c| c.what == what && c.v6 == v6)
                    .unwrap()
            };
            for (change, case) in [
                (
                    "neigh add 10.71.0.3 lladdr 02:00:00:00:00:03 dev f0 nud permanent",
                    find("missing neighbour", false),
                ),
                ("route del 10.80.5.0/24", find("longer prefix", false)),
                ("link set g0 mtu 1300", find("device mtu, fits", false)),
                ("rule del fwmark 7 lookup 100", find("mark rule", false)),
                (
                    "-6 route del 2001:db8:97::/48 metric 5",
                    find("lowest metric", true),
                ),
                ("link set h1 up", find("link down, ignored", false)),
                ("sysctl ipv4/conf/f1/forwarding 0", find("gateway", false)),
                ("sysctl ipv6/conf/f1/forwarding 0", find("gateway", true)),
            ] {
                let before = compare(&case, &mut compared);
                match change.split_once(' ') {
                    Some(("sysctl", rest)) => {
                        let (path, v) = rest.split_once(' ').unwrap();
                        ns.sysctl(path, v).unwrap();
                    }
                    _ => ns.ip(change).unwrap(),
                }
                let after = compare(&case, &mut compared);
                assert_ne!(
                    before, after,
                    "{change}: the kernel's answer to {case:?} changed"
                );
            }
            (compared, codes)
        })
        .join()
        .unwrap()
    });
    assert_eq!(compared, (cases().len() + 2 * 8) * 2 * 2);
    // Every outcome the netns is built to give was given by the kernel.
    for rc in [
        BPF_FIB_LKUP_RET_SUCCESS,
        BPF_FIB_LKUP_RET_BLACKHOLE,
        BPF_FIB_LKUP_RET_UNREACHABLE,
        BPF_FIB_LKUP_RET_PROHIBIT,
        BPF_FIB_LKUP_RET_NOT_FWDED,
        BPF_FIB_LKUP_RET_FWD_DISABLED,
        BPF_FIB_LKUP_RET_UNSUPP_LWT,
        BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_FRAG_NEEDED,
        -i64::from(libc::ENODEV),
        -i64::from(libc::EINVAL),
        -i64::from(libc::EAFNOSUPPORT),
    ] {
        assert!(codes.contains(&rc), "no case returned {rc}: {codes:?}");
    }
}

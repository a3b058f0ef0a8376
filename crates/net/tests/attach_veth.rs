//! `kbpf-net` on a real veth pair between two network namespaces: every XDP action has its
//! effect on real traffic (ping through XDP_PASS, silence under XDP_DROP, frames bounced
//! by XDP_TX), program replacement takes effect without a gap, and detaching gives the
//! device back to the stack. Needs root, `ip` and `bpf()`; skips with a message elsewhere
//! (a failure under `CI=true`).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kbpf_isa::Insn;
use kbpf_net::packet_socket::{PacketSocket, VNET_HDR_LEN};
use kbpf_net::{AttachOptions, Attachments, CaptureMode, Hook, NetNs};
use kbpf_run::Program;

fn skip(why: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("attach_veth: {why} under CI=true");
    }
    eprintln!("SKIP: attach_veth: {why}");
    true
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Pair {
    a: String,
    b: String,
}

impl Pair {
    fn new(tag: &str, mtu: &str, queues: &str) -> Option<Pair> {
        let id = std::process::id();
        let p = Pair {
            a: format!("kbpfnt-{tag}a-{id}"),
            b: format!("kbpfnt-{tag}b-{id}"),
        };
        let ok = ip(&["netns", "add", &p.a])
            && ip(&["netns", "add", &p.b])
            && ip(&[
                "link",
                "add",
                "kv0",
                "netns",
                &p.a,
                "mtu",
                mtu,
                "numrxqueues",
                queues,
                "numtxqueues",
                queues,
                "type",
                "veth",
                "peer",
                "name",
                "kv1",
                "netns",
                &p.b,
                "mtu",
                mtu,
                "numrxqueues",
                queues,
                "numtxqueues",
                queues,
            ])
            && ip(&["-n", &p.a, "addr", "add", "10.99.0.1/24", "dev", "kv0"])
            && ip(&["-n", &p.b, "addr", "add", "10.99.0.2/24", "dev", "kv1"])
            && ip(&["-n", &p.a, "link", "set", "kv0", "up"])
            && ip(&["-n", &p.b, "link", "set", "kv1", "up"])
            && ip(&["-n", &p.a, "link", "set", "lo", "up"])
            && ip(&["-n", &p.b, "link", "set", "lo", "up"]);
        if ok { Some(p) } else { None }
    }

    fn ping(&self) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a,
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                "10.99.0.2",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}

fn xdp(name: &str, insns: &[Insn]) -> Arc<Program> {
    program(name, 6, insns)
}

/// A `BPF_PROG_TYPE_SCHED_CLS` program.
fn tc(name: &str, insns: &[Insn]) -> Arc<Program> {
    program(name, 3, insns)
}

fn program(name: &str, prog_type: u32, insns: &[Insn]) -> Arc<Program> {
    let loaded = kbpf_loader::LoadedProgram::from_insns(name, prog_type, insns.to_vec());
    Arc::new(
        Program::load(
            &loaded,
            &kbpf_rewrite::MapsEnv::new(),
            &kbpf_run::LoadOptions::default(),
            &[],
        )
        .expect("program loads"),
    )
}

fn ret(action: i32) -> Vec<Insn> {
    vec![
        Insn::new(0xb7, 0, 0, 0, action),
        Insn::new(0x95, 0, 0, 0, 0),
    ]
}

/// Swaps the Ethernet addresses and returns XDP_TX.
fn bounce() -> Vec<Insn> {
    vec![
        Insn::new(0x61, 2, 1, 0, 0),  // r2 = data
        Insn::new(0x61, 3, 1, 4, 0),  // r3 = data_end
        Insn::new(0xbf, 4, 2, 0, 0),  // r4 = data
        Insn::new(0x07, 4, 0, 0, 14), // r4 += 14
        Insn::new(0x2d, 4, 3, 10, 0), // if r4 > r3 goto pass
        Insn::new(0x61, 5, 2, 0, 0),  // r5 = dst[0..4]
        Insn::new(0x69, 6, 2, 4, 0),  // r6 = dst[4..6]
        Insn::new(0x61, 7, 2, 6, 0),  // r7 = src[0..4]
        Insn::new(0x69, 8, 2, 10, 0), // r8 = src[4..6]
        Insn::new(0x63, 2, 7, 0, 0),  // dst[0..4] = r7
        Insn::new(0x6b, 2, 8, 4, 0),  // dst[4..6] = r8
        Insn::new(0x63, 2, 5, 6, 0),  // src[0..4] = r5
        Insn::new(0x6b, 2, 6, 10, 0), // src[4..6] = r6
        Insn::new(0xb7, 0, 0, 0, 3),  // r0 = XDP_TX
        Insn::new(0x95, 0, 0, 0, 0),
        Insn::new(0xb7, 0, 0, 0, 2), // pass: r0 = XDP_PASS
        Insn::new(0x95, 0, 0, 0, 0),
    ]
}

fn counter(net: &Attachments, ns: &NetNs, name: &str) -> u64 {
    net.list(ns.inode())[0]
        .counters
        .iter()
        .find(|(n, _)| *n == name)
        .map(|c| c.1)
        .unwrap_or(0)
}

/// Runs `f` on a thread inside `ns`.
fn in_ns<T: Send>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter().unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// AF_PACKET, on a link with a 9000-byte MTU (so frames too long for XDP arrive).
#[test]
fn xdp_actions_on_a_veth_pair_af_packet() {
    xdp_actions(CaptureMode::AfPacket, "pk", "9000", "1");
}

/// AF_XDP with the redirect program in veth's driver (native XDP needs a page-sized MTU).
#[test]
fn xdp_actions_on_a_veth_pair_af_xdp() {
    xdp_actions(CaptureMode::AfXdp, "xs", "1500", "1");
}

/// AF_XDP on a device with four RX queues: a socket per queue.
#[test]
fn xdp_actions_on_a_veth_pair_af_xdp_four_queues() {
    xdp_actions(CaptureMode::AfXdp, "xq", "1500", "4");
}

fn xdp_actions(capture: CaptureMode, tag: &str, mtu: &str, queues: &str) {
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root");
        return;
    }
    if !kbpf_kernel::bpf_available_or_skip("attach_veth") {
        return;
    }
    let Some(pair) = Pair::new(tag, mtu, queues) else {
        skip("cannot create network namespaces and veth (ip netns add)");
        return;
    };
    assert!(pair.ping(), "the pair pings without kbpf");
    let ns_a = NetNs::named(&pair.a).unwrap();
    let ns_b = NetNs::named(&pair.b).unwrap();
    let net = Attachments::default();
    let opts = AttachOptions {
        capture,
        ..AttachOptions::default()
    };
    let attach_b = |prog, id, overwrite| {
        net.attach(
            prog,
            id,
            "kv1",
            NetNs::named(&pair.b).unwrap(),
            opts,
            overwrite,
        )
    };

    // XDP_PASS: the stack still answers, through the tap and back into kv1.
    attach_b(xdp("pass", &ret(2)), 1, false).unwrap();
    let want = if capture == CaptureMode::AfXdp {
        "af_xdp"
    } else {
        "af_packet"
    };
    assert_eq!(net.list(ns_b.inode())[0].capture, want);
    let want_queues = if capture == CaptureMode::AfXdp {
        queues.parse::<u32>().unwrap()
    } else {
        1
    };
    assert_eq!(net.list(ns_b.inode())[0].queues, want_queues);
    assert!(pair.ping(), "ping through XDP_PASS");
    // ARP and one echo request: a handful of frames. A frame passed back to the stack
    // must not be captured again (it would loop, and the ping would see duplicates).
    std::thread::sleep(Duration::from_millis(300));
    let passed = counter(&net, &ns_b, "pass");
    assert!(
        (1..=6).contains(&passed),
        "{passed} frames passed for one ping"
    );
    assert_eq!(counter(&net, &ns_b, "rx"), passed);
    assert_eq!(counter(&net, &ns_b, "drop"), 0);
    // A second attach without overwrite: EEXIST, as bpftool says.
    let e = attach_b(xdp("drop", &ret(1)), 2, false).unwrap_err();
    assert_eq!(e.errno(), libc::EEXIST);
    // No such device: ENODEV.
    let e = net
        .attach(
            xdp("pass", &ret(2)),
            3,
            "nodev0",
            NetNs::named(&pair.b).unwrap(),
            opts,
            false,
        )
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENODEV);

    // XDP_DROP replaces it in place: the stack sees nothing, the counter sees everything.
    attach_b(xdp("drop", &ret(1)), 2, true).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(net.list(ns_b.inode())[0].prog_id, 2);
    let before = counter(&net, &ns_b, "drop");
    assert!(!pair.ping(), "XDP_DROP must stop the ping");
    assert!(counter(&net, &ns_b, "drop") > before);

    // XDP_TX: the frame comes back to kv0 with its addresses swapped.
    attach_b(xdp("bounce", &bounce()), 4, true).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let got = send_and_catch(&ns_a, "kv0", "kv0");
    let got = got.expect("the XDP_TX frame came back to kv0");
    assert_eq!(&got[0..6], &[0x02, 0, 0, 0, 0, 0xa1]);
    assert_eq!(&got[6..12], &[0x02, 0, 0, 0, 0, 0xb2]);
    assert!(counter(&net, &ns_b, "tx") >= 1);

    // XDP_REDIRECT (bpf_redirect to another device): out of kv2, so it arrives on kv3.
    assert!(
        ip(&[
            "link", "add", "kv2", "netns", &pair.b, "type", "veth", "peer", "name", "kv3", "netns",
            &pair.a
        ]) && ip(&["-n", &pair.b, "link", "set", "kv2", "up"])
            && ip(&["-n", &pair.a, "link", "set", "kv3", "up"])
    );
    let kv2 = in_ns(&ns_b, || kbpf_net::ifindex("kv2").unwrap());
    let redirect = vec![
        Insn::new(0xb7, 1, 0, 0, kv2 as i32), // r1 = ifindex of kv2
        Insn::new(0xb7, 2, 0, 0, 0),          // r2 = 0
        Insn::new(0x85, 0, 0, 0, 23),         // call bpf_redirect
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    attach_b(xdp("redirect", &redirect), 5, true).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let got = send_and_catch(&ns_a, "kv0", "kv3").expect("the redirected frame arrived on kv3");
    assert_eq!(&got[0..6], &[0x02, 0, 0, 0, 0, 0xb2], "unchanged");
    assert!(counter(&net, &ns_b, "redirect") >= 1);
    assert_eq!(counter(&net, &ns_b, "redirect_errors"), 0);

    // An oversized frame (5000 bytes, more than an XDP frame holds) is counted, not run
    // (with native XDP the MTU keeps such frames off the link).
    if mtu == "9000" {
        in_ns(&ns_a, || {
            let idx = kbpf_net::ifindex("kv0").unwrap();
            let s = PacketSocket::open(idx, 0xffff_ffff, Duration::from_millis(100)).unwrap();
            let mut big = vec![0u8; VNET_HDR_LEN + 5000];
            big[VNET_HDR_LEN..VNET_HDR_LEN + 6].copy_from_slice(&[0xff; 6]);
            big[VNET_HDR_LEN + 12..VNET_HDR_LEN + 14].copy_from_slice(&0x88b5u16.to_be_bytes());
            s.send_batch(&[&big]).unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        while counter(&net, &ns_b, "oversized") == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(counter(&net, &ns_b, "oversized"), 1);
    }
    assert!(net.list(ns_b.inode())[0].failure.is_none());

    // Detach: the device is the stack's again.
    net.detach("kv1", &ns_b, Hook::Xdp).unwrap();
    assert!(net.is_empty());
    assert_eq!(
        net.detach("kv1", &ns_b, Hook::Xdp).unwrap_err().errno(),
        libc::ENOENT
    );
    assert!(pair.ping(), "ping after detach");
    let _ = Ordering::Relaxed;
}

/// Sends a marked frame out of `out_dev` in `ns` and returns it as caught on `in_dev`.
fn send_and_catch(ns: &NetNs, out_dev: &str, in_dev: &str) -> Option<Vec<u8>> {
    in_ns(ns, || {
        let out = PacketSocket::open(
            kbpf_net::ifindex(out_dev).unwrap(),
            0xffff_ffff,
            Duration::from_millis(200),
        )
        .unwrap();
        let rx = PacketSocket::open(
            kbpf_net::ifindex(in_dev).unwrap(),
            0xffff_ffff,
            Duration::from_millis(200),
        )
        .unwrap();
        let mut frame = vec![0u8; 100];
        frame[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xb2]);
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xa1]);
        frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental
        frame[14..18].copy_from_slice(b"kbpf");
        let mut msg = vec![0u8; VNET_HDR_LEN];
        msg.extend_from_slice(&frame);
        assert_eq!(out.send_batch(&[&msg]).unwrap(), 1);
        let mut bufs = vec![vec![0u8; kbpf_net::packet_socket::MAX_FRAME + VNET_HDR_LEN]; 8];
        let mut lens = [0usize; 8];
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let n = rx.recv_batch(&mut bufs, &mut lens).unwrap();
            for (b, &l) in bufs.iter().zip(&lens[..n]) {
                let f = &b[VNET_HDR_LEN..l];
                if f.len() >= 18 && &f[14..18] == b"kbpf" {
                    return Some(f.to_vec());
                }
            }
        }
        None
    })
}

/// Packets the nft rule counting `meta mark 42` on input has seen in `ns`.
fn marked_packets(ns: &str) -> Option<u64> {
    let o = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "list", "chain", "ip", "kbpf_t", "in",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    let after = text.split("counter packets ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// A tc program at tcx ingress: TC_ACT_OK reaches the stack, the mark a program sets
/// reaches the stack's filters, TC_ACT_SHOT drops, one program per device.
#[test]
fn tc_ingress_on_a_veth_pair() {
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root");
        return;
    }
    if !kbpf_kernel::bpf_available_or_skip("attach_veth") {
        return;
    }
    let Some(pair) = Pair::new("tc", "1500", "1") else {
        skip("cannot create network namespaces and veth (ip netns add)");
        return;
    };
    let ns_b = NetNs::named(&pair.b).unwrap();
    let net = Attachments::default();
    let opts = AttachOptions {
        hook: Hook::TcIngress,
        ..AttachOptions::default()
    };
    let b = || NetNs::named(&pair.b).unwrap();
    // TC_ACT_OK.
    net.attach(tc("ok", &ret(0)), 1, "kv1", b(), opts, false)
        .unwrap();
    assert_eq!(net.list(ns_b.inode())[0].capture, "af_packet");
    assert_eq!(net.list(ns_b.inode())[0].hook, Hook::TcIngress);
    assert!(pair.ping(), "ping through TC_ACT_OK");
    assert!(counter(&net, &ns_b, "pass") >= 1);
    // An XDP program on the same device: EBUSY (one kbpf program per device); an XDP
    // program at the tc hook: refused as the wrong type.
    let e = net
        .attach(
            xdp("pass", &ret(2)),
            2,
            "kv1",
            b(),
            AttachOptions::default(),
            true,
        )
        .unwrap_err();
    assert_eq!(e.errno(), libc::EBUSY);
    let e = net
        .attach(xdp("pass", &ret(2)), 2, "kv1", b(), opts, true)
        .unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
    // skb->mark = 42, TCX_NEXT: the stack's filters see the mark.
    let have_nft = Command::new("ip")
        .args(["netns", "exec", &pair.b, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(
                b"table ip kbpf_t { chain in { type filter hook input priority 0; meta mark 42 counter; }; }\n",
            )?;
            c.wait()
        })
        .is_ok_and(|s| s.success());
    let mark42 = vec![
        Insn::new(0xb7, 2, 0, 0, 42), // r2 = 42
        Insn::new(0x63, 1, 2, 8, 0),  // skb->mark = r2
        Insn::new(0xb7, 0, 0, 0, -1), // r0 = TCX_NEXT
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    net.attach(tc("mark", &mark42), 3, "kv1", b(), opts, true)
        .unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert!(pair.ping(), "ping through TCX_NEXT with a mark");
    if have_nft {
        assert!(
            marked_packets(&pair.b).unwrap_or(0) >= 1,
            "the mark the tc program set reached the stack"
        );
    } else {
        skip("nft missing: the mark check");
    }
    // TC_ACT_SHOT.
    net.attach(tc("shot", &ret(2)), 4, "kv1", b(), opts, true)
        .unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let before = counter(&net, &ns_b, "drop");
    assert!(!pair.ping(), "TC_ACT_SHOT must stop the ping");
    assert!(counter(&net, &ns_b, "drop") > before);
    // Detach at the wrong hook: ENOENT; at the right one: the stack's again.
    assert_eq!(
        net.detach("kv1", &ns_b, Hook::Xdp).unwrap_err().errno(),
        libc::ENOENT
    );
    net.detach("kv1", &ns_b, Hook::TcIngress).unwrap();
    assert!(pair.ping(), "ping after detach");
}

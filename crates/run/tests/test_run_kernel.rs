//! `BPF_PROG_TEST_RUN` on kbpf against the live kernel: the same clang-built object
//! (`tests/progs/mim_run.bpf.o`) is loaded by bpftool into the kernel and by kbpf's
//! loader → verifier → rewrite; the same maps contents are written on both sides (inner
//! arrays of different sizes under `BPF_F_INNER_MAP`, a hash-of-maps slot, a new inner map
//! inserted later); then the same packets run in the same order on the kernel, on kbpf's
//! interpreter and on kbpf's JIT, and return values, packets out and map contents must be
//! identical. Skips (with a `SKIP:` line) where bpftool or `bpf()` is unavailable.

use std::os::fd::AsFd;
use std::path::PathBuf;

use kbpf_kernel::bpftool::{Pins, loadall, unavailable};
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr};
use kbpf_maps::uapi::{BPF_ANY, BPF_F_INNER_MAP};
use kbpf_maps::{Map, MapAttr, MapType};
use kbpf_run::{Engine, Program, TestRunInput};

mod common;

fn object() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/mim_run.bpf.o")
}

struct Kbpf {
    progs: Vec<Program>,
    loaded: kbpf_loader::LoadedObject,
}

impl Kbpf {
    fn load() -> Kbpf {
        let (loaded, progs) = common::load_programs(&object());
        let progs = progs
            .into_iter()
            .map(|p| p.unwrap_or_else(|e| panic!("{e}\n{}", e.log().unwrap_or(""))))
            .collect();
        Kbpf { progs, loaded }
    }
    fn map(&self, name: &str) -> Map {
        self.loaded.map(name).unwrap().map.clone()
    }
    fn prog(&self, name: &str) -> &Program {
        self.progs.iter().find(|p| p.name == name).unwrap()
    }
}

fn u32s(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A 64-byte frame whose first two bytes are the keys.
fn frame(b0: u8, b1: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    f[0] = b0;
    f[1] = b1;
    f
}

#[test]
fn test_runs_match_the_kernel() {
    if let Some(why) = unavailable(&object()) {
        println!("SKIP: run test_run_kernel: {why}");
        return;
    }
    let pins = Pins::new("kbpfrun", "mim_run");
    loadall(&object(), &pins).unwrap();
    let kmap = |n: &str| KernelMap::from_pinned(pins.maps.join(n)).unwrap();
    let kprog = |n: &str| KernelProg::from_pinned(pins.progs.join(n)).unwrap();
    let kb = Kbpf::load();

    // The same contents on both sides.
    for (name, n, base) in [("inner_n3", 3u32, 100u32), ("inner_n5", 5, 200)] {
        for i in 0..n {
            kmap(name).update(&u32s(i), &u32s(base + i), 0).unwrap();
            kb.map(name)
                .update_elem(&u32s(i), &u32s(base + i), BPF_ANY)
                .unwrap();
        }
    }
    // hom[7] = inner_n5 on both sides.
    kmap("hom")
        .update_fd(&u32s(7), kmap("inner_n5").as_fd(), 0)
        .unwrap();
    kb.map("hom")
        .update_inner_map(&u32s(7), &kb.map("inner_n5"), BPF_ANY)
        .unwrap();

    let mut inputs: Vec<(&str, Vec<u8>)> = Vec::new();
    for (b0, b1) in [
        (0, 0),
        (0, 2),
        (0, 3),
        (1, 4),
        (1, 5),
        (2, 0),
        (3, 1),
        (255, 0),
    ] {
        inputs.push(("xdp_aom", frame(b0, b1)));
    }
    for (b0, b1) in [(7, 0), (7, 4), (7, 5), (8, 0)] {
        inputs.push(("xdp_hom", frame(b0, b1)));
    }
    for (b0, b1) in [(1, 9), (1, 9), (7, 3), (8, 1), (1, 200)] {
        inputs.push(("xdp_plain_lru", frame(b0, b1)));
    }
    inputs.push(("xdp_rewrite", frame(0x11, 0x22)));
    inputs.push(("xdp_rewrite", frame(0xff, 0x00)[..14].to_vec()));
    inputs.push(("xdp_aom", frame(0, 0)[..14].to_vec()));

    let mut failures = Vec::new();
    let mut compared = 0;
    let mut run_all = |inputs: &[(&str, Vec<u8>)], failures: &mut Vec<String>| {
        for (prog, data) in inputs {
            // Once per engine on each side, so stateful programs see the same history.
            for engine in [Engine::Interpreter, Engine::Jit] {
                let k = kprog(prog).test_run(data, data.len() + 256, None, 1);
                let b = kb.prog(prog).test_run(&TestRunInput {
                    data_in: data,
                    engine,
                    ..Default::default()
                });
                let same = match (&k, &b) {
                    (Ok(k), Ok(b)) => k.retval == b.retval && k.data_out == b.data_out,
                    (Err(_), Err(_)) => true,
                    _ => false,
                };
                if !same {
                    failures.push(format!(
                        "{prog} {:?} on {engine:?}: kernel {k:?} kbpf {b:?}",
                        &data[..2]
                    ));
                }
            }
            compared += 1;
        }
    };
    run_all(&inputs, &mut failures);

    // A new, larger inner map (7 entries) into the empty slot 2: BPF_F_INNER_MAP lets it in.
    let k7 = KernelMap::create(
        &MapCreateAttr::new(2, 4, 4, 7)
            .flags(BPF_F_INNER_MAP)
            .name("inner_n7"),
    )
    .unwrap();
    let b7 = Map::create(
        &MapAttr::new(MapType::Array, 4, 4, 7)
            .flags(BPF_F_INNER_MAP)
            .name("inner_n7"),
        None,
    )
    .unwrap();
    for i in 0..7 {
        k7.update(&u32s(i), &u32s(70 + i), 0).unwrap();
        b7.update_elem(&u32s(i), &u32s(70 + i), BPF_ANY).unwrap();
    }
    kmap("aom").update_fd(&u32s(2), k7.as_fd(), 0).unwrap();
    kb.map("aom")
        .update_inner_map(&u32s(2), &b7, BPF_ANY)
        .unwrap();
    let after: Vec<(&str, Vec<u8>)> = [(2, 6), (2, 7), (2, 0), (1, 4)]
        .iter()
        .map(|&(a, b)| ("xdp_aom", frame(a, b)))
        .collect();
    run_all(&after, &mut failures);

    // Map contents after the runs: the counters and the LRU entries the programs wrote.
    for i in 0..8 {
        let k = kmap("plain").lookup(&u32s(i)).unwrap();
        let b = kb.map("plain").lookup_elem(&u32s(i)).unwrap();
        assert_eq!(b, k, "plain[{i}]");
    }
    assert_ne!(
        kmap("plain").lookup(&u32s(1)).unwrap(),
        vec![0; 8],
        "the counter moved"
    );
    let mut klru: Vec<Vec<u8>> = kmap("lru").keys().unwrap();
    let mut blru = kb.map("lru").keys();
    klru.sort();
    blru.sort();
    assert_eq!(klru, blru, "LRU keys");
    for key in &klru {
        assert_eq!(
            kmap("lru").lookup(key).unwrap(),
            kb.map("lru").lookup_elem(key).unwrap(),
            "lru[{key:?}]"
        );
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 24, "{compared} inputs");
}

fn tail_object() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/tail.bpf.o")
}

/// Tail calls through a PROG_ARRAY on kbpf and on the kernel: a jump to a leaf that rewrites
/// the packet, a jump to an empty slot and one past `max_entries` (both fall through), and
/// a self-tail-calling chain that the 33-call limit stops (counted in a map).
#[test]
fn tail_calls_match_the_kernel() {
    if let Some(why) = unavailable(&tail_object()) {
        println!("SKIP: run test_run_kernel (tail calls): {why}");
        return;
    }
    let pins = Pins::new("kbpftail", "tail");
    loadall(&tail_object(), &pins).unwrap();
    let kmap = |n: &str| KernelMap::from_pinned(pins.maps.join(n)).unwrap();
    let kprog = |n: &str| KernelProg::from_pinned(pins.progs.join(n)).unwrap();
    let jump = kmap("jump");
    jump.update_fd(&u32s(0), kprog("xdp_leaf").as_fd(), 0)
        .unwrap();
    jump.update_fd(&u32s(1), kprog("xdp_chain").as_fd(), 0)
        .unwrap();

    let obj = kbpf_object::BpfObject::open(tail_object()).unwrap();
    let reg = kbpf_maps::Registry::new();
    let loaded =
        kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default()).unwrap();
    let env = kbpf_run::maps_env(&loaded);
    let progs: Vec<std::sync::Arc<Program>> = loaded
        .programs
        .iter()
        .map(|p| {
            let btf = kbpf_run::funcs_btf(&obj, p);
            std::sync::Arc::new(
                Program::load(p, &env, &kbpf_run::LoadOptions::default(), &btf).unwrap(),
            )
        })
        .collect();
    let by_name = |n: &str| progs.iter().find(|p| p.name == n).unwrap().clone();
    let bjump = loaded.map("jump").unwrap().map.clone();
    // Loading the programs made XDP the array's owner (the kernel's bpf_check_tail_call):
    // a program of another type that uses it is refused at load with EINVAL.
    assert_eq!(bjump.prog_array_owner(), Some(6));
    {
        // A fresh copy of the object whose array a sched_cls program claimed first.
        let reg = kbpf_maps::Registry::new();
        let other =
            kbpf_loader::load_object(&obj, &reg, &kbpf_loader::LoadOptions::default()).unwrap();
        assert!(other.map("jump").unwrap().map.prog_array_compatible(3));
        let env = kbpf_run::maps_env(&other);
        let entry = other
            .programs
            .iter()
            .find(|p| p.name == "xdp_entry")
            .unwrap();
        let btf = kbpf_run::funcs_btf(&obj, entry);
        match Program::load(entry, &env, &kbpf_run::LoadOptions::default(), &btf) {
            Err(e @ kbpf_run::ProgLoadError::ProgArrayOwner { .. }) => assert_eq!(e.errno(), 22),
            Err(e) => panic!("refused for another reason: {e}"),
            Ok(_) => panic!("an XDP program used a sched_cls program array"),
        }
    }
    bjump
        .update_prog(
            &u32s(0),
            kbpf_run::prog_ref(&by_name("xdp_leaf"), 100),
            BPF_ANY,
        )
        .unwrap();
    bjump
        .update_prog(
            &u32s(1),
            kbpf_run::prog_ref(&by_name("xdp_chain"), 101),
            BPF_ANY,
        )
        .unwrap();
    let bhops = loaded.map("hops").unwrap().map.clone();

    // From the main function and from a subprogram (where the target replaces only the
    // subprogram, and the caller goes on).
    for entry in ["xdp_entry", "xdp_sub_entry"] {
        for engine in [Engine::Interpreter, Engine::Jit] {
            for slot in [0u8, 1, 2, 7] {
                kmap("hops").update(&u32s(0), &[0; 8], 0).unwrap();
                bhops.update_elem(&u32s(0), &[0; 8], BPF_ANY).unwrap();
                let data = frame(slot, 0);
                let k = kprog(entry)
                    .test_run(&data, data.len() + 256, None, 1)
                    .unwrap();
                let b = by_name(entry)
                    .test_run(&TestRunInput {
                        data_in: &data,
                        engine,
                        ..Default::default()
                    })
                    .unwrap();
                let what = format!("{entry}, slot {slot} on {engine:?}");
                assert_eq!(b.retval, k.retval, "{what}");
                assert_eq!(b.data_out, k.data_out, "{what}");
                assert_eq!(
                    bhops.lookup_elem(&u32s(0)).unwrap(),
                    kmap("hops").lookup(&u32s(0)).unwrap(),
                    "hops after {what}"
                );
            }
        }
    }
    // The chain really ran into the limit: 33 runs of xdp_chain, 3000 + 33.
    let data = frame(1, 0);
    bhops.update_elem(&u32s(0), &[0; 8], BPF_ANY).unwrap();
    let b = by_name("xdp_entry")
        .test_run(&TestRunInput {
            data_in: &data,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(b.retval, 3033);
}

/// A raw tracepoint program: the arguments come from `ctx_in`; the kernel's rules for what
/// such a test run may not have (a packet, a repeat count, too short a context) give EINVAL
/// on both sides.
#[test]
fn raw_tracepoint_runs_match_the_kernel() {
    let object = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/raw_tp.bpf.o");
    if let Some(why) = unavailable(&object) {
        println!("SKIP: run test_run_kernel (raw_tp): {why}");
        return;
    }
    let pins = Pins::new("kbpfrtp", "raw_tp");
    loadall(&object, &pins).unwrap();
    let kprog = KernelProg::from_pinned(pins.progs.join("rtp_args")).unwrap();
    let ksum = KernelMap::from_pinned(pins.maps.join("sum")).unwrap();

    let kb = common::KbpfObject::open(&object);
    let loaded = &kb.loaded;
    let prog = kb.program("rtp_args");
    let bsum = loaded.map("sum").unwrap().map.clone();
    let args = |v: &[u64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_ne_bytes()).collect() };

    let cases: Vec<(Vec<u8>, Vec<u8>, u32)> = vec![
        (vec![], args(&[5, 7, 100]), 0),
        (vec![], args(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 0),
        (vec![], args(&[5, 7]), 0),  // shorter than the program reads
        (vec![], args(&[0; 13]), 0), // longer than MAX_BPF_FUNC_ARGS
        (vec![0; 14], args(&[5, 7, 1]), 0), // a packet
        (vec![], args(&[5, 7, 1]), 3), // a repeat count
    ];
    for engine in [Engine::Interpreter, Engine::Jit] {
        for (data, ctx, repeat) in &cases {
            let k = kprog.test_run_with(&kbpf_kernel::TestRunArgs {
                data_in: data,
                data_out_len: 0,
                ctx_in: Some(ctx),
                ctx_out_len: 0,
                repeat: *repeat,
                flags: 0,
                cpu: 0,
            });
            let b = prog.test_run(&TestRunInput {
                data_in: data,
                ctx_in: Some(ctx),
                repeat: *repeat,
                engine,
            });
            match (&k, &b) {
                (Ok(k), Ok(b)) => assert_eq!(k.retval, b.retval, "{ctx:?} on {engine:?}"),
                (Err(_), Err(e)) => assert_eq!(e.errno(), 22, "{ctx:?}: {e}"),
                _ => panic!("{ctx:?} {repeat} on {engine:?}: kernel {k:?}, kbpf {b:?}"),
            }
        }
    }
    assert_eq!(
        bsum.lookup_elem(&u32s(0)).unwrap(),
        ksum.lookup(&u32s(0)).unwrap(),
        "the map the program wrote"
    );
}

/// tc and socket-filter test runs: `__sk_buff` fields (len, protocol, mark, ifindex,
/// ingress_ifindex, pkt_type from the destination MAC, cb), the packet a tc program writes,
/// the socket filter's view from the network header, and `bpf_skb_load_bytes`/
/// `bpf_skb_store_bytes` in and past the packet, on kbpf and the kernel.
#[test]
fn skb_runs_match_the_kernel() {
    let object = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/skb.bpf.o");
    if let Some(why) = unavailable(&object) {
        println!("SKIP: run test_run_kernel (skb): {why}");
        return;
    }
    let pins = Pins::new("kbpfskb", "skb");
    loadall(&object, &pins).unwrap();
    let kb = common::KbpfObject::open(&object);
    let load = |name: &str| kb.program(name);
    let progs = [
        ("tc_fields", load("tc_fields")),
        ("sock_len", load("sock_len")),
        ("tc_bytes", load("tc_bytes")),
        ("sock_bytes", load("sock_bytes")),
    ];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for dest in [
        [0u8; 6],
        [0xff; 6],
        [0x01, 0, 0x5e, 0, 0, 1],
        [2, 4, 6, 8, 10, 12],
    ] {
        let mut f: Vec<u8> = (0..60u8).collect();
        f[..6].copy_from_slice(&dest);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        frames.push(f);
    }
    frames.push((0..15u8).collect()); // shorter than tc_fields' 16-byte check
    let mut ctx = vec![0u8; 192];
    ctx[8..12].copy_from_slice(&77u32.to_ne_bytes()); // mark
    ctx[48..52].copy_from_slice(&5u32.to_ne_bytes()); // cb[0]
    ctx[32..36].copy_from_slice(&3u32.to_ne_bytes()); // priority
    // `len` is not settable: EINVAL on both sides.
    let mut bad = ctx.clone();
    bad[0..4].copy_from_slice(&1u32.to_ne_bytes());
    let mut compared = 0;
    for (name, prog) in &progs {
        let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
        for data in &frames {
            for ctx_in in [None, Some(ctx.as_slice()), Some(bad.as_slice())] {
                for engine in [Engine::Interpreter, Engine::Jit] {
                    let k = kprog.test_run_with(&kbpf_kernel::TestRunArgs {
                        data_in: data,
                        data_out_len: data.len() + 256,
                        ctx_in,
                        ctx_out_len: ctx_in.map_or(0, <[u8]>::len),
                        repeat: 1,
                        flags: 0,
                        cpu: 0,
                    });
                    let b = prog.test_run(&TestRunInput {
                        data_in: data,
                        ctx_in,
                        repeat: 1,
                        engine,
                    });
                    match (&k, &b) {
                        (Ok(k), Ok(b)) => {
                            assert_eq!(
                                b.retval,
                                k.retval,
                                "{name} {:?} ctx {}",
                                &data[..6],
                                ctx_in.is_some()
                            );
                            assert_eq!(b.data_out, k.data_out, "{name} packet out");
                        }
                        (Err(_), Err(_)) => {}
                        _ => panic!("{name} {data:?}: kernel {k:?}, kbpf {b:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, progs.len() * 5 * 3 * 2);
}

/// Ethernet frames of `len` bytes: IPv4, IPv6 and ARP (which `bpf_skb_adjust_room` refuses).
fn net_frames() -> Vec<Vec<u8>> {
    [(0x0800u16, 60usize), (0x86dd, 90), (0x0806, 60)]
        .iter()
        .map(|&(proto, len)| {
            let mut f: Vec<u8> = (0..len).map(|i| (i * 13 + 7) as u8).collect();
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&proto.to_be_bytes());
            f
        })
        .collect()
}

/// A `struct __sk_buff` context with `cb[0..5]` (and `gso_size`) set.
fn cb_ctx(cb: [u32; 5], gso_size: u32) -> Vec<u8> {
    let mut ctx = vec![0u8; 192];
    for (i, v) in cb.iter().enumerate() {
        ctx[48 + 4 * i..52 + 4 * i].copy_from_slice(&v.to_ne_bytes());
    }
    ctx[176..180].copy_from_slice(&gso_size.to_ne_bytes());
    ctx
}

/// `bpf_skb_adjust_room` (every mode and flag class, the refusals and their errno, a second
/// encapsulation), `bpf_skb_set_tunnel_key` / `bpf_skb_get_tunnel_key` (sizes, flags, the
/// label and ext checks, the receive-side view written into the packet) and `bpf_redirect`
/// (tc and XDP, with good and bad flags), `bpf_skb_pull_data` under the tc prologue of a
/// program that writes the packet directly: return values and packets equal the kernel's on
/// both engines; kbpf's run result also names the redirect target and the tunnel key,
/// which the kernel's test run does not report.
#[test]
fn net_helpers_match_the_kernel() {
    let object = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/net_helpers.bpf.o");
    if let Some(why) = unavailable(&object) {
        println!("SKIP: run test_run_kernel (net helpers): {why}");
        return;
    }
    let pins = Pins::new("kbpfnet", "net");
    loadall(&object, &pins).unwrap();
    let kb = common::KbpfObject::open(&object);
    let load = |name: &str| kb.program(name);
    const MAC: u32 = 1;
    const NET: u32 = 0;
    let (fixed, e4, e6, gre, udp, csum, l2eth, d4, d6) = (1, 2, 4, 8, 16, 32, 64, 128, 256u32);
    let l2 = |n: u32| n << 24; // BPF_F_ADJ_ROOM_ENCAP_L2(n), in the high word
    let neg = |n: i32| n as u32;
    let adjust: Vec<([u32; 5], u32)> = vec![
        ([20, MAC, fixed | e4, 0, 0], 0),
        ([40, MAC, fixed | e6, 0, 0], 0),
        ([28, MAC, e4 | udp, 0, 0], 0),
        ([48, MAC, e6 | udp, 0, 0], 0),
        ([24, MAC, e4 | gre, 0, 0], 0),
        ([34, MAC, e4 | gre | l2eth, l2(14), 0], 0),
        ([34, MAC, e4 | gre | l2eth, l2(10), 0], 0),
        ([20, MAC, e4 | l2eth, l2(30), 0], 0),
        ([20, MAC, e4 | e6, 0, 0], 0),
        ([20, MAC, e4 | gre | udp, 0, 0], 0),
        ([20, MAC, e4, 0, 20], 0),
        ([8, NET, 0, 0, 0], 0),
        ([8, NET, csum, 0, neg(-8)], 0),
        ([neg(-8), NET, 0, 0, 0], 0),
        ([neg(-20), MAC, d4, 0, 0], 0),
        ([neg(-20), MAC, d6, 0, 0], 0),
        ([neg(-20), MAC, d4 | d6, 0, 0], 0),
        ([20, MAC, d4, 0, 0], 0),
        ([neg(-20), MAC, e4, 0, 0], 0),
        ([neg(-60), MAC, 0, 0, 0], 0),
        ([0x1000, MAC, 0, 0, 0], 0),
        ([20, 2, 0, 0, 0], 0),
        ([20, MAC, 1 << 9, 0, 0], 0),
        ([0, MAC, 0, 0, 0], 0),
        ([20, MAC, fixed | e4, 0, 0], 1400),
    ];
    let tunnel: Vec<([u32; 5], u32)> = vec![
        ([0, 0, 0, 0, 0], 0),
        ([0, 0, 0, 0, 16], 0),
        ([0, 1, 0x12345, 0, 1], 0),
        ([0, 1, 0x12345, 0, 17], 0),
        ([0, 1, 0, 0, 0], 0),
        ([0, 0, 7, 0, 0], 0),
        ([0, 0, 0, 3, 0], 0),
        ([0, 2 | 4 | 8 | 16, 0, 0, 16], 0),
        ([0, 1 << 5, 0, 0, 0], 0),
        ([0, 0, 0, 0, 1 << 5], 0),
        ([1, 0, 0, 0, 0], 0),
        ([1, 1, 0, 0, 1], 0),
        ([2, 0, 0, 0, 0], 0),
        ([3, 0, 0, 0, 0], 0),
    ];
    let redirect: Vec<([u32; 5], u32)> = vec![
        ([3, 0, 0, 0, 0], 0),
        ([3, 1, 0, 0, 0], 0),
        ([3, 2, 0, 0, 0], 0),
        ([9, 0x10, 0, 0, 0], 0),
    ];
    let pull: Vec<([u32; 5], u32)> = vec![
        ([0, 0, 0, 0, 0], 0),
        ([20, 0, 0, 0, 0], 0),
        ([1000, 0, 0, 0, 0], 0),
    ];
    let frames = net_frames();
    let mut compared = 0;
    let (mut redirects, mut tunnels) = (0, 0);
    for (name, cases) in [
        ("tc_adjust_room", &adjust),
        ("tc_tunnel_key", &tunnel),
        ("tc_redirect", &redirect),
        ("tc_pull_write", &pull),
    ] {
        let prog = load(name);
        let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
        for (cb, gso) in cases {
            let ctx = cb_ctx(*cb, *gso);
            for data in &frames {
                let k = kprog
                    .test_run_with(&kbpf_kernel::TestRunArgs {
                        data_in: data,
                        data_out_len: data.len() + 256,
                        ctx_in: Some(&ctx),
                        ctx_out_len: 192,
                        repeat: 1,
                        flags: 0,
                        cpu: 0,
                    })
                    .unwrap_or_else(|e| panic!("kernel {name} {cb:?}: {e}"));
                for engine in [Engine::Interpreter, Engine::Jit] {
                    let b = prog
                        .test_run(&TestRunInput {
                            data_in: data,
                            ctx_in: Some(&ctx),
                            repeat: 1,
                            engine,
                        })
                        .unwrap_or_else(|e| panic!("kbpf {name} {cb:?}: {e}"));
                    let what = format!(
                        "{name} cb {cb:?} gso {gso} proto {:02x?} {engine:?}",
                        &data[12..14]
                    );
                    assert_eq!(b.retval, k.retval, "{what}: retval");
                    assert_eq!(b.data_out, k.data_out, "{what}: packet out");
                    assert_eq!(
                        b.ctx_out.as_deref(),
                        Some(&k.ctx_out[..]),
                        "{what}: ctx out"
                    );
                    if name == "tc_redirect" && b.retval == 7 {
                        let r = b.redirect.expect("a TC_ACT_REDIRECT run names its target");
                        assert_eq!(
                            r.target,
                            kbpf_run::RedirectTarget::Ifindex { ifindex: cb[0] }
                        );
                        assert_eq!(r.flags, u64::from(cb[1]));
                        redirects += 1;
                    } else {
                        assert_eq!(b.redirect, None, "{what}");
                    }
                    if name == "tc_tunnel_key" && b.retval & 0xfff == 0 {
                        let t = b.tunnel_key.expect("a set tunnel key is reported");
                        assert_eq!(t.tunnel_id, 0x123456, "{what}");
                        // The 8-byte layout ends before tunnel_ttl.
                        assert_eq!(t.ttl, if cb[0] == 2 { 0 } else { 64 }, "{what}");
                        tunnels += 1;
                    }
                    compared += 1;
                }
            }
        }
    }
    // XDP's bpf_redirect (bpf_xdp_redirect): any flag aborts.
    let prog = load("xdp_redirect");
    let kprog = KernelProg::from_pinned(pins.progs.join("xdp_redirect")).unwrap();
    for (ifindex, flags) in [(3u8, 0u8), (7, 1), (0, 0)] {
        let mut data = frames[0].clone();
        data[0] = ifindex;
        data[1] = flags;
        let k = kprog.test_run(&data, data.len() + 256, None, 1).unwrap();
        for engine in [Engine::Interpreter, Engine::Jit] {
            let b = prog
                .test_run(&TestRunInput {
                    data_in: &data,
                    ctx_in: None,
                    repeat: 1,
                    engine,
                })
                .unwrap();
            assert_eq!(
                (b.retval, &b.data_out),
                (k.retval, &k.data_out),
                "xdp {ifindex} {flags}"
            );
            assert_eq!(
                b.redirect.map(|r| r.target),
                (flags == 0).then_some(kbpf_run::RedirectTarget::Ifindex {
                    ifindex: u32::from(ifindex)
                })
            );
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        (adjust.len() + tunnel.len() + redirect.len() + pull.len()) * 3 * 2 + 6
    );
    assert_eq!(
        redirects,
        2 * 3 * 2,
        "two good tc redirects per frame and engine"
    );
    assert!(tunnels > 0);
}

/// `bpf_redirect_map` on a DEVMAP, a DEVMAP_HASH, a CPUMAP and an XSKMAP without sockets
/// (hits, misses answered by the
/// flags' low bits, `BPF_F_BROADCAST` / `BPF_F_EXCLUDE_INGRESS` on devmaps, unknown flags
/// aborting) and a devmap lookup from the program: return values equal the kernel's on both
/// engines, and kbpf's run result names the target of every `XDP_REDIRECT`.
#[test]
fn redirect_map_matches_the_kernel() {
    use kbpf_run::RedirectTarget as T;
    let object = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/redirect_map.bpf.o");
    if let Some(why) = unavailable(&object) {
        println!("SKIP: run test_run_kernel (redirect_map): {why}");
        return;
    }
    let pins = Pins::new("kbpfrdm", "rdm");
    loadall(&object, &pins).unwrap();
    let kb = common::KbpfObject::open(&object);
    let loaded = &kb.loaded;
    let prog = kb.program("xdp_redirect_map");
    let kprog = KernelProg::from_pinned(pins.progs.join("xdp_redirect_map")).unwrap();
    // The same entries on both sides: lo (ifindex 1) in slots 1 and 3 of the devmap and
    // under key 5 of the hash, CPU 0 in the cpumap.
    let updates: [(&str, u32, Vec<u8>); 4] = [
        (
            "devs",
            1,
            [1u32, 0].iter().flat_map(|v| v.to_ne_bytes()).collect(),
        ),
        (
            "devs",
            3,
            [1u32, 0].iter().flat_map(|v| v.to_ne_bytes()).collect(),
        ),
        ("dev_hash", 5, 1u32.to_ne_bytes().to_vec()),
        (
            "cpus",
            0,
            [256u32, 0].iter().flat_map(|v| v.to_ne_bytes()).collect(),
        ),
    ];
    for (name, key, value) in &updates {
        let k = KernelMap::from_pinned(pins.maps.join(name)).unwrap();
        k.update(&key.to_ne_bytes(), value, BPF_ANY).unwrap();
        loaded
            .map(name)
            .unwrap()
            .map
            .update_elem(&key.to_ne_bytes(), value, BPF_ANY)
            .unwrap();
    }
    let dev_id = |name: &str| loaded.map(name).unwrap().map.id();
    let mut compared = 0;
    let mut redirects = 0;
    // map 5: an XSKMAP lookup (the inlined xsk_map_gen_lookup: no socket is bound, so it
    // finds none, for keys inside and past max_entries).
    for map in 0u8..6 {
        for key in [0u8, 1, 3, 5, 7, 200] {
            for (lo, hi) in [
                (0u8, 0u8),
                (1, 0),
                (2, 0),
                (3, 0),
                (4, 0),
                (8, 0),
                (8 | 16, 0),
                (16, 0),
                (32, 0),
                (0, 1),
            ] {
                let mut data = vec![0u8; 64];
                data[..4].copy_from_slice(&[map, key, lo, hi]);
                let k = kprog.test_run(&data, 512, None, 1).unwrap();
                for engine in [Engine::Interpreter, Engine::Jit] {
                    let b = prog
                        .test_run(&TestRunInput {
                            data_in: &data,
                            ctx_in: None,
                            repeat: 1,
                            engine,
                        })
                        .unwrap();
                    let what = format!("map {map} key {key} flags {lo:#x}/{hi:#x} {engine:?}");
                    assert_eq!(b.retval, k.retval, "{what}");
                    assert_eq!(b.data_out, k.data_out, "{what}");
                    if b.retval == 4 {
                        assert_ne!(map, 4, "{what}: the XSKMAP has no socket");
                        let r = b.redirect.expect("XDP_REDIRECT names its target");
                        let want = match map {
                            _ if lo & 8 != 0 => T::DevMapBroadcast {
                                map_id: dev_id(if map == 0 { "devs" } else { "dev_hash" }),
                            },
                            0 => T::DevMap {
                                map_id: dev_id("devs"),
                                key: key.into(),
                                ifindex: 1,
                            },
                            1 => T::DevMap {
                                map_id: dev_id("dev_hash"),
                                key: key.into(),
                                ifindex: 1,
                            },
                            _ => T::CpuMap {
                                map_id: dev_id("cpus"),
                                cpu: key.into(),
                            },
                        };
                        assert_eq!(r.target, want, "{what}");
                        redirects += 1;
                    } else {
                        assert_eq!(b.redirect, None, "{what}");
                    }
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 6 * 6 * 10 * 2);
    assert!(redirects > 20, "only {redirects} redirects");
    // One map per call site: the direct `map_redirect` calls.
    for (name, map) in [
        ("xdp_dev_only", Some("devs")),
        ("xdp_hash_only", Some("dev_hash")),
        ("xdp_cpu_only", Some("cpus")),
        ("xdp_xsk_only", None),
    ] {
        let prog = kb.program(name);
        let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
        for key in [0u8, 1, 3, 5] {
            for (lo, hi) in [(0u8, 0u8), (2, 0), (8, 0), (32, 0)] {
                let mut data = vec![0u8; 64];
                data[..4].copy_from_slice(&[0, key, lo, hi]);
                let k = kprog.test_run(&data, 512, None, 1).unwrap();
                for engine in [Engine::Interpreter, Engine::Jit] {
                    let b = prog
                        .test_run(&TestRunInput {
                            data_in: &data,
                            ctx_in: None,
                            repeat: 1,
                            engine,
                        })
                        .unwrap();
                    let what = format!("{name} key {key} flags {lo:#x} {engine:?}");
                    assert_eq!(b.retval, k.retval, "{what}");
                    assert_eq!(
                        b.redirect.is_some(),
                        b.retval == 4 && map.is_some(),
                        "{what}"
                    );
                }
            }
        }
    }
}

/// A kernel `PERF_COUNT_SW_BPF_OUTPUT` event on `cpu` with a mapped ring (what bpftool's
/// `map event_pipe` opens), whose raw samples can be read back.
struct KernelPerfEvent {
    fd: std::os::fd::OwnedFd,
    ring: *mut u8,
    len: usize,
    tail: u64,
}

impl KernelPerfEvent {
    const PAGES: usize = 8;

    fn open(cpu: i32) -> KernelPerfEvent {
        use std::os::fd::FromRawFd;
        // struct perf_event_attr: type, size, config, sample_period, sample_type, …,
        // wakeup_events.
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // PERF_TYPE_SOFTWARE
        attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
        attr[8..16].copy_from_slice(&10u64.to_ne_bytes()); // PERF_COUNT_SW_BPF_OUTPUT
        attr[16..24].copy_from_slice(&1u64.to_ne_bytes());
        attr[24..32].copy_from_slice(&(1u64 << 10).to_ne_bytes()); // PERF_SAMPLE_RAW
        attr[48..52].copy_from_slice(&1u32.to_ne_bytes());
        // SAFETY: a perf_event_attr of the size it declares; pid -1 with a CPU.
        let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), -1, cpu, -1, 8) };
        assert!(
            fd >= 0,
            "perf_event_open: {}",
            std::io::Error::last_os_error()
        );
        let len = (1 + Self::PAGES) * 4096;
        // SAFETY: mapping the event's ring as perf documents (metadata page + 2^n pages).
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd as i32,
                0,
            )
        };
        assert_ne!(ring, libc::MAP_FAILED);
        KernelPerfEvent {
            // SAFETY: a fresh fd we own.
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) },
            ring: ring as *mut u8,
            len,
            tail: 0,
        }
    }

    /// The raw data of each sample written since the last call.
    fn samples(&mut self) -> Vec<Vec<u8>> {
        let size = (Self::PAGES * 4096) as u64;
        // SAFETY: data_head sits at offset 1024 of the metadata page; the data pages follow.
        unsafe {
            let head = std::ptr::read_volatile(self.ring.add(1024) as *const u64);
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let data = self.ring.add(4096);
            let byte = |o: u64| *data.add((o % size) as usize);
            let read = |o: u64, n: usize| (0..n as u64).map(|i| byte(o + i)).collect::<Vec<u8>>();
            let mut out = Vec::new();
            while self.tail < head {
                let h = read(self.tail, 8);
                let (ty, sz) = (
                    u32::from_ne_bytes([h[0], h[1], h[2], h[3]]),
                    u16::from_ne_bytes([h[6], h[7]]) as u64,
                );
                if ty == 9 {
                    let n = read(self.tail + 8, 4);
                    let n = u32::from_ne_bytes([n[0], n[1], n[2], n[3]]) as usize;
                    out.push(read(self.tail + 12, n));
                }
                self.tail += sz;
            }
            std::ptr::write_volatile(self.ring.add(1032) as *mut u64, self.tail);
            out
        }
    }
}

impl Drop for KernelPerfEvent {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`.
        unsafe { libc::munmap(self.ring as *mut libc::c_void, self.len) };
    }
}

/// `bpf_perf_event_output` from XDP and tc: slots with an event of the running CPU, of
/// another CPU (`-EOPNOTSUPP`), none (`-ENOENT`), past `max_entries` (`-E2BIG`),
/// `BPF_F_CURRENT_CPU`, packet bytes appended (`BPF_F_CTXLEN_MASK`, `-EFAULT` past the
/// packet), unknown flags (`-EINVAL`), empty and short meta: return values equal the
/// kernel's on both engines, and every sample kbpf captured equals the one the kernel's
/// ring holds, byte for byte (padding included).
#[test]
fn perf_event_output_matches_the_kernel() {
    use std::os::fd::AsFd;
    let object = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/perf_out.bpf.o");
    if let Some(why) = unavailable(&object) {
        println!("SKIP: run test_run_kernel (perf_event_output): {why}");
        return;
    }
    // The test run runs where the thread runs: CPU 0 on both sides.
    // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
            0
        );
    }
    kbpf_maps::set_current_cpu(0);
    let two_cpus = kbpf_maps::possible_cpus() > 1;
    let pins = Pins::new("kbpfperf", "perf");
    loadall(&object, &pins).unwrap();
    let kb = common::KbpfObject::open(&object);
    let loaded = &kb.loaded;
    let kmap = KernelMap::from_pinned(pins.maps.join("events")).unwrap();
    let bmap = loaded.map("events").unwrap().map.clone();
    // Slot 0: CPU 0's event; slot 1: CPU 1's (when there is one); slots 2, 3: none.
    let mut k0 = KernelPerfEvent::open(0);
    kmap.update_fd(&0u32.to_ne_bytes(), k0.fd.as_fd(), BPF_ANY)
        .unwrap();
    let b0 = bmap.perf_event_open(0, 0).unwrap();
    let _k1 = two_cpus.then(|| {
        let k1 = KernelPerfEvent::open(1);
        kmap.update_fd(&1u32.to_ne_bytes(), k1.fd.as_fd(), BPF_ANY)
            .unwrap();
        bmap.perf_event_open(1, 1).unwrap();
        k1
    });
    let mut compared = 0;
    let mut samples = 0;
    for name in ["xdp_perf_out", "tc_perf_out"] {
        let prog = kb.program(name);
        let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
        for slot in [0u8, 1, 2, 4, 9] {
            for ctx_len in [0u8, 5, 60, 61] {
                for bad in [0u8, 33] {
                    for meta in [0u8, 4, 8] {
                        let mut data: Vec<u8> = (0..60u8).map(|i| i.wrapping_mul(7)).collect();
                        data[..5].copy_from_slice(&[slot, ctx_len, bad, 0xa5, meta]);
                        data[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
                        let what =
                            format!("{name} slot {slot} ctx_len {ctx_len} bad {bad} meta {meta}");
                        let k = kprog.test_run(&data, 512, None, 1).unwrap();
                        let ks = k0.samples();
                        for engine in [Engine::Interpreter, Engine::Jit] {
                            let b = prog
                                .test_run(&TestRunInput {
                                    data_in: &data,
                                    ctx_in: None,
                                    repeat: 1,
                                    engine,
                                })
                                .unwrap();
                            assert_eq!(b.retval as i32, k.retval as i32, "{what} {engine:?}");
                            let (bs, lost) = b0.drain();
                            assert_eq!(lost, 0);
                            let bs: Vec<Vec<u8>> = bs.into_iter().map(|s| s.data).collect();
                            assert_eq!(bs, ks, "{what} {engine:?}: samples");
                            samples += bs.len();
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    // The raw tracepoint variant (`bpf_perf_event_output_raw_tp`): the choices come in
    // ctx_in; only the index flags are allowed (a context length is EINVAL).
    let name = "rtp_perf_out";
    let prog = kb.program(name);
    let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
    for slot in [0u64, 1, 2, 4, 9] {
        for ctx_len in [0u64, 5] {
            for bad in [0u64, 33] {
                for meta in [0u64, 8] {
                    let args: Vec<u8> = [slot, ctx_len, bad, 0xa5, meta]
                        .iter()
                        .flat_map(|v| v.to_ne_bytes())
                        .collect();
                    let what =
                        format!("{name} slot {slot} ctx_len {ctx_len} bad {bad} meta {meta}");
                    let k = kprog
                        .test_run_with(&kbpf_kernel::TestRunArgs {
                            data_in: &[],
                            data_out_len: 0,
                            ctx_in: Some(&args),
                            ctx_out_len: 0,
                            repeat: 0,
                            flags: 0,
                            cpu: 0,
                        })
                        .unwrap();
                    let ks = k0.samples();
                    for engine in [Engine::Interpreter, Engine::Jit] {
                        let b = prog
                            .test_run(&TestRunInput {
                                data_in: &[],
                                ctx_in: Some(&args),
                                repeat: 0,
                                engine,
                            })
                            .unwrap();
                        assert_eq!(b.retval as i32, k.retval as i32, "{what} {engine:?}");
                        let (bs, lost) = b0.drain();
                        assert_eq!(lost, 0);
                        let bs: Vec<Vec<u8>> = bs.into_iter().map(|s| s.data).collect();
                        assert_eq!(bs, ks, "{what} {engine:?}: samples");
                        samples += bs.len();
                        compared += 1;
                    }
                }
            }
        }
    }
    assert_eq!(compared, 2 * 5 * 4 * 2 * 3 * 2 + 5 * 2 * 2 * 2 * 2);
    assert!(samples > 20, "only {samples} samples");
}

/// `tests/progs/FILE` loaded into the kernel (pinned under `pin`) and into kbpf, or `None`
/// (with a `SKIP:` line) where bpftool or `bpf()` is unavailable.
fn kernel_and_kbpf(file: &str, pin: &str) -> Option<(Pins, common::KbpfObject)> {
    let object = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/progs")
        .join(file);
    if let Some(why) = unavailable(&object) {
        println!("SKIP: run test_run_kernel ({file}): {why}");
        return None;
    }
    let pins = Pins::new(&format!("kbpf{pin}"), pin);
    loadall(&object, &pins).unwrap();
    Some((pins, common::KbpfObject::open(&object)))
}

/// One test run of `data` (`repeat` times) on the kernel and on both of kbpf's engines: the
/// same return value and packet out. Returns the number of kbpf runs compared.
fn same_runs(kprog: &KernelProg, prog: &Program, data: &[u8], repeat: u32, what: &str) -> usize {
    let k = kprog.test_run(data, 20_000, None, repeat).unwrap();
    for engine in [Engine::Interpreter, Engine::Jit] {
        let b = prog
            .test_run(&TestRunInput {
                data_in: data,
                ctx_in: None,
                repeat,
                engine,
            })
            .unwrap();
        assert_eq!(b.retval, k.retval, "{what}, repeat {repeat} on {engine:?}");
        assert_eq!(
            b.data_out, k.data_out,
            "{what}, repeat {repeat} on {engine:?}"
        );
    }
    2
}

/// Socket-local storage on the test run's socket (`sk_storage.bpf.o`): a counter created
/// from an initial value, read back across the runs of one repeat loop (one socket), deleted
/// at its third run (a second delete: `-ENOENT`), gone in the next test run; an IPv4 and a
/// non-IP packet. Return values equal the kernel's on both engines.
#[test]
fn sk_storage_matches_the_kernel() {
    let Some((pins, kb)) = kernel_and_kbpf("sk_storage.bpf.o", "sks") else {
        return;
    };
    let kprog = KernelProg::from_pinned(pins.progs.join("tc_sk_count")).unwrap();
    let prog = kb.program("tc_sk_count");
    let mut ipv4 = vec![0u8; 64];
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    ipv4[14] = 0x45;
    let mut other = vec![0u8; 64];
    other[12..14].copy_from_slice(&[0x88, 0xb5]);
    let mut compared = 0;
    for (what, data) in [("IPv4", &ipv4), ("not IP", &other)] {
        for repeat in [1u32, 2, 3, 4, 7] {
            compared += same_runs(&kprog, &prog, data, repeat, what);
        }
    }
    assert_eq!(compared, 20);
}

/// Cgroup storage in test runs (`cgroup_storage.bpf.o`): a shared and a per-CPU counter,
/// fresh for every test run and shared by the runs of its repeat loop; return values equal
/// the kernel's on both engines.
#[test]
fn cgroup_storage_matches_the_kernel() {
    let Some((pins, kb)) = kernel_and_kbpf("cgroup_storage.bpf.o", "cgs") else {
        return;
    };
    let mut data = vec![0u8; 64];
    data[12..14].copy_from_slice(&[0x08, 0x00]);
    data[14] = 0x45;
    let mut compared = 0;
    for name in ["count_shared", "count_per_cpu"] {
        let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
        let prog = kb.program(name);
        for repeat in [1u32, 2, 3, 4, 5, 1, 6] {
            compared += same_runs(&kprog, &prog, &data, repeat, name);
        }
    }
    assert_eq!(compared, 28);
}

/// `bpf_skb_change_head` (`change_head.bpf.o`) in tc and lwt_xmit test runs: rooms of 0,
/// 1, 14, 34, 200 bytes, one past `BPF_SKB_MAX_LEN`, one past `u32`, and bad flags; return
/// values and packets out equal the kernel's on both engines.
#[test]
fn skb_change_head_matches_the_kernel() {
    let Some((pins, kb)) = kernel_and_kbpf("change_head.bpf.o", "chh") else {
        return;
    };
    let mut compared = 0;
    for name in ["tc_change_head", "lwt_change_head"] {
        let kprog = KernelProg::from_pinned(pins.progs.join(name)).unwrap();
        let prog = kb.program(name);
        for sel in 0u8..8 {
            let mut data = vec![0u8; 80];
            data[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            data[12..14].copy_from_slice(&[0x08, 0x00]);
            data[14] = 0x40 | sel; // IPv4 version nibble; the low bits pick the case
            for (i, b) in data[15..].iter_mut().enumerate() {
                *b = i as u8;
            }
            compared += same_runs(&kprog, &prog, &data, 1, &format!("{name} case {sel}"));
        }
    }
    assert_eq!(compared, 32);
}

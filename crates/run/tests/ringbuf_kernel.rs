//! The ring buffer helpers at run time against the live kernel: `tests/progs/ringbuf.bpf.o`
//! (output with every flag, reserve/submit, reserve/discard, query, reservations too large
//! for the room left, reserve with flags) is loaded by bpftool into the kernel and by kbpf;
//! the same frames run in the same order on the kernel and on kbpf's interpreter and JIT, the
//! kernel's ring is read through its mmap-ed pages (`KernelRingbuf`, as libbpf) and kbpf's
//! through `Map::ringbuf_consume` at the same points, and the helpers' results, the records
//! (bytes, order, the positions `bpf_ringbuf_query` saw) must be identical, wrap-around of
//! the ring included. Skips with a `SKIP:` line where bpftool or `bpf()` is unavailable (a
//! failure under CI=true).

use std::path::PathBuf;

use kbpf_kernel::bpftool::{Pins, loadall, unavailable};
use kbpf_kernel::{KernelMap, KernelProg, KernelRingbuf};
use kbpf_run::{Engine, TestRunInput};

mod common;

fn object() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/ringbuf.bpf.o")
}

/// A 64-byte frame: operation, argument, flags, then a pattern.
fn frame(op: u8, arg: u8, flags: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(29).wrapping_add(op))
        .collect();
    f[..3].copy_from_slice(&[op, arg, flags]);
    f
}

/// One step of the scenario.
enum Step {
    Run(u8, u8, u8),
    Consume,
}

fn scenario() -> Vec<Step> {
    use Step::*;
    let mut s = vec![
        // output: sizes 1..64, every flag, and an unknown flag (-EINVAL).
        Run(0, 0, 0),
        Run(0, 6, 1),
        Run(0, 7, 2),
        Run(0, 62, 3),
        Run(0, 63, 4),
        // reserve + submit with each flag, reserve + discard, the ring's state.
        Run(1, 0, 0),
        Run(1, 0, 1),
        Run(1, 0, 2),
        Run(2, 9, 0),
        Run(2, 9, 2),
        Run(3, 0, 0),
        Consume,
        // 1500-byte reservations: two fit, the third does not.
        Run(4, 1, 0),
        Run(4, 2, 0),
        Run(3, 0, 0),
        Consume,
        // reserve with flags: NULL; without: a record.
        Run(5, 0, 1),
        Run(5, 0, 0),
    ];
    // Fill and drain until the positions are well past the end of the ring several times,
    // so records (and the 1500-byte ones) wrap around it.
    for round in 0..6u8 {
        for i in 0..5u8 {
            s.push(Run(0, round.wrapping_mul(11).wrapping_add(i * 13), 0));
            s.push(Run(1, 0, 0));
        }
        s.push(Run(4, round, 0));
        s.push(Run(3, 0, 0));
        s.push(Consume);
    }
    s
}

#[test]
fn ringbuf_records_match_the_kernel() {
    if let Some(why) = unavailable(&object()) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("ringbuf_kernel: kernel side unavailable under CI=true: {why}");
        }
        println!("SKIP: run ringbuf_kernel: {why}");
        return;
    }
    let pins = Pins::new("kbpfrb", "ringbuf");
    loadall(&object(), &pins).unwrap();
    let kprog = KernelProg::from_pinned(pins.progs.join("ringbuf_ops")).unwrap();
    let kresults = KernelMap::from_pinned(pins.maps.join("results")).unwrap();
    let mut kring =
        KernelRingbuf::new(&KernelMap::from_pinned(pins.maps.join("rb")).unwrap()).unwrap();

    let kb = common::KbpfObject::open(&object());
    let loaded = &kb.loaded;
    let prog = kb.program("ringbuf_ops");
    let bring = loaded.map("rb").unwrap().map.clone();
    let bresults = loaded.map("results").unwrap().map.clone();

    let mut failures = Vec::new();
    let (mut runs, mut records, mut failed_reserves) = (0, 0, 0);
    for (i, step) in scenario().iter().enumerate() {
        match *step {
            Step::Run(op, arg, flags) => {
                let data = frame(op, arg, flags);
                // Once per engine on each side, so both engines see the same ring history.
                for engine in [Engine::Interpreter, Engine::Jit] {
                    let k = kprog.test_run(&data, data.len() + 256, None, 1).unwrap();
                    let b = prog
                        .test_run(&TestRunInput {
                            data_in: &data,
                            engine,
                            ..Default::default()
                        })
                        .unwrap();
                    let kr = kresults.lookup(&0u32.to_ne_bytes()).unwrap();
                    let br = bresults.lookup_elem(&0u32.to_ne_bytes()).unwrap();
                    if k.retval != b.retval || kr != br {
                        failures.push(format!(
                            "step {i} op {op} arg {arg} flags {flags} on {engine:?}: kernel \
                             retval {} result {:?}, kbpf retval {} result {:?}",
                            k.retval,
                            i64::from_ne_bytes(kr[..8].try_into().unwrap()),
                            b.retval,
                            i64::from_ne_bytes(br[..8].try_into().unwrap()),
                        ));
                    }
                    if i64::from_ne_bytes(kr[..8].try_into().unwrap()) == -1 {
                        failed_reserves += 1;
                    }
                    runs += 1;
                }
            }
            Step::Consume => {
                let mut k = Vec::new();
                kring.consume(|r| k.push(r.to_vec()));
                let mut b = Vec::new();
                bring.ringbuf_consume(|r| b.push(r.to_vec())).unwrap();
                if k != b {
                    failures.push(format!(
                        "step {i}: records differ: kernel {} {:?}\nkbpf {} {:?}",
                        k.len(),
                        k.iter().map(|r| r.len()).collect::<Vec<_>>(),
                        b.len(),
                        b.iter().map(|r| r.len()).collect::<Vec<_>>()
                    ));
                    for (j, (kr, br)) in k.iter().zip(&b).enumerate() {
                        if kr != br {
                            failures.push(format!("  record {j}: kernel {kr:?}\n  kbpf {br:?}"));
                            break;
                        }
                    }
                }
                records += k.len();
            }
        }
    }
    println!("{runs} runs, {records} records, {failed_reserves} refused reservations");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The scenario did what it is meant to: many records, and some reservations refused.
    assert!(records > 100, "{records} records");
    assert!(
        failed_reserves >= 4,
        "{failed_reserves} refused reservations"
    );
    assert!(runs > 150, "{runs} runs");
}

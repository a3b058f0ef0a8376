//! Programs on the live kernel: load + verifier log, BPF_PROG_TEST_RUN, program info and
//! the xlated instructions. Skips where `bpf()` is unavailable.

use std::os::fd::AsRawFd;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_kernel::consts::*;
use kbpf_kernel::{
    Errno, KernelMap, KernelProg, MapCreateAttr, ProgLoadAttr, bpf_available_or_skip,
};

fn mov64_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

fn packet() -> Vec<u8> {
    (0..64u8).collect()
}

#[test]
fn xdp_return_two_runs_and_round_trips() {
    if !bpf_available_or_skip("xdp_return_two") {
        return;
    }
    let insns = [mov64_imm(0, 2), exit()];
    let (prog, log) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0).expect("load");
    assert_eq!(log, "", "no log was asked for");

    let pkt = packet();
    let run = prog.test_run(&pkt, pkt.len(), None, 1).expect("test_run");
    assert_eq!(run.retval, 2, "XDP_PASS");
    assert_eq!(run.data_out, pkt, "the program does not touch the packet");

    // Nothing to rewrite in `r0 = 2; exit`: the xlated program is the program.
    assert_eq!(prog.xlated().expect("xlated"), insns.to_vec());
    let info = prog.info().expect("info");
    assert_eq!(info.prog_type, BPF_PROG_TYPE_XDP);
    assert_eq!(info.id, prog.id());
    assert_eq!(info.xlated_prog_len, 16);
    assert!(info.map_ids.is_empty());
    assert!(info.gpl_compatible);
    assert_eq!(info.tag_hex().len(), 16);
    let jit_on = std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable")
        .map(|s| s.trim() != "0")
        .unwrap_or(false);
    if jit_on {
        assert!(info.jited_prog_len > 0);
        assert_eq!(
            prog.jited().expect("jited").len(),
            info.jited_prog_len as usize
        );
    }

    // Same program by id: same tag.
    let again = KernelProg::from_id(info.id).expect("from_id");
    assert_eq!(again.info().expect("info").tag, info.tag);
}

#[test]
fn repeat_and_named_load() {
    if !bpf_available_or_skip("repeat_and_named_load") {
        return;
    }
    let insns = [mov64_imm(0, 1), exit()];
    let mut attr = ProgLoadAttr::new(BPF_PROG_TYPE_XDP, &insns, "GPL");
    attr.name = "kt_drop";
    attr.log_level = BPF_LOG_LEVEL1;
    let (prog, log) = KernelProg::load_with(&attr).expect("load");
    assert!(log.contains("processed 2 insns"), "log: {log}");
    assert_eq!(prog.info().expect("info").name, "kt_drop");
    let run = prog.test_run(&packet(), 0, None, 100).expect("test_run");
    assert_eq!(run.retval, 1, "XDP_DROP");
    assert!(run.data_out.is_empty());
}

#[test]
fn map_lookup_program_xlated_has_map_id_and_inlined_lookup() {
    if !bpf_available_or_skip("map_lookup_program") {
        return;
    }
    let map =
        KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 4, 4).name("kt_prog_arr"))
            .expect("array");
    map.update(&0u32.to_ne_bytes(), &42u32.to_ne_bytes(), BPF_ANY)
        .expect("update");
    let fd = map.as_raw_fd();
    let insns = [
        Insn::new(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0), // *(u32 *)(r10 -4) = 0
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0), // r2 = r10
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4), // r2 += -4
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_MAP_FD, 0, fd), // r1 = map
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1), // call bpf_map_lookup_elem
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0), // if r0 == 0 goto +2
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 0, 0, 0, 0), // r0 = *(u32 *)(r0 +0)
        exit(),
        mov64_imm(0, 7),
        exit(),
    ];
    let (prog, _) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0).expect("load");
    let run = prog.test_run(&packet(), 0, None, 1).expect("test_run");
    assert_eq!(run.retval, 42);

    let info = prog.info().expect("info");
    assert_eq!(info.map_ids, vec![map.id()]);
    let x = prog.xlated().expect("xlated");
    // The dump shows the map as (src = BPF_PSEUDO_MAP_FD, imm = map id).
    assert!(x[3].is_ld_imm64());
    assert_eq!(x[3].src(), BPF_PSEUDO_MAP_FD);
    assert_eq!(x[3].imm as u32, map.id());
    // The array lookup is inlined (kernel-semantics.md §8): no helper call is left, and the
    // sequence starts by skipping the array header.
    assert!(x.len() > insns.len(), "xlated {x:?}");
    assert!(!x.iter().any(|i| i.code == BPF_JMP | BPF_CALL && i.imm == 1));
    assert_eq!(x[5].code, BPF_ALU64 | BPF_ADD | BPF_K);
    assert_eq!(x[5].dst(), 1);
}

#[test]
fn verifier_rejection_returns_the_log() {
    if !bpf_available_or_skip("verifier_rejection") {
        return;
    }
    // r0 = r2 reads r2, which an XDP program never has initialised.
    let insns = [Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 0, 2, 0, 0), exit()];
    for level in [0, BPF_LOG_LEVEL1] {
        let err = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", level).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EACCES), "{err}");
        assert!(
            err.log().contains("R2 !read_ok"),
            "level {level}: {}",
            err.log()
        );
    }
    // Falling off the end is EINVAL with its own message.
    let err = KernelProg::load(BPF_PROG_TYPE_XDP, &[mov64_imm(0, 0)], "GPL", 1).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EINVAL), "{err}");
    assert!(!err.log().is_empty());
}

#[test]
fn small_log_buffer_grows() {
    if !bpf_available_or_skip("small_log_buffer") {
        return;
    }
    // A log longer than 128 bytes with a 128-byte buffer: the kernel fails with ENOSPC and
    // the loader retries with a larger buffer.
    let mut insns: Vec<Insn> = (0..40).map(|i| mov64_imm(0, i)).collect();
    insns.push(exit());
    let mut attr = ProgLoadAttr::new(BPF_PROG_TYPE_XDP, &insns, "GPL");
    attr.log_level = BPF_LOG_LEVEL2;
    attr.log_size = 128;
    let (prog, log) = KernelProg::load_with(&attr).expect("load");
    assert!(log.len() > 128, "log: {log}");
    assert!(log.contains("processed 41 insns"), "log: {log}");
    assert_eq!(
        prog.test_run(&packet(), 0, None, 1).expect("run").retval,
        39
    );
}

#[test]
fn pin_program_and_reopen() {
    if !bpf_available_or_skip("pin_program") {
        return;
    }
    let dir = std::path::Path::new("/sys/fs/bpf");
    if !dir.is_dir() {
        println!("SKIP: no bpffs at /sys/fs/bpf");
        return;
    }
    let insns = [mov64_imm(0, 3), exit()];
    let (prog, _) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0).expect("load");
    let path = dir.join(format!("kbpf_kernel_prog_{}", std::process::id()));
    prog.pin(&path).expect("pin");
    let reopened = KernelProg::from_pinned(&path);
    let _ = std::fs::remove_file(&path);
    let reopened = reopened.expect("from_pinned");
    assert_eq!(reopened.id(), prog.id());
    assert_eq!(
        reopened
            .test_run(&packet(), 0, None, 1)
            .expect("run")
            .retval,
        3
    );
    // A map cannot be opened from a program's id space and vice versa.
    assert!(KernelMap::from_pinned(&path).is_err());
}

#[test]
fn rejection_with_small_log_buffer_gets_the_whole_log() {
    if !bpf_available_or_skip("rejection_small_log") {
        return;
    }
    // Many accepted instructions, then the uninitialised read: at level 2 the log is long.
    let mut insns: Vec<Insn> = (0..40).map(|i| mov64_imm(0, i)).collect();
    insns.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 0, 3, 0, 0));
    insns.push(exit());
    let mut attr = ProgLoadAttr::new(BPF_PROG_TYPE_XDP, &insns, "GPL");
    attr.log_level = BPF_LOG_LEVEL2;
    attr.log_size = 128;
    let err = KernelProg::load_with(&attr).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EACCES), "{err}");
    assert!(err.log().contains("R3 !read_ok"), "{}", err.log());
    // The head of the log (the first instruction) is there too, not only the rotated tail.
    assert!(err.log().contains("0: (b7) r0 = 0"), "{}", err.log());
}

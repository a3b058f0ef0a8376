//! Per-instruction facts for the rewrite and the level-2 log format.

use kbpf_isa::Insn;
use kbpf_isa::asm::assemble;
use kbpf_isa::insn::BPF_PSEUDO_MAP_FD;
use kbpf_verifier::{MapDesc, MapRef, MapUse, Options, ProgType, RegType, verify};

/// Assembles and turns `lddw %rN, 0x7fff00NN` into a map reference to fd NN.
fn prog(src: &str) -> Vec<Insn> {
    let mut insns = assemble(src).expect("assembles");
    let mut i = 0;
    while i + 1 < insns.len() {
        if insns[i].is_ld_imm64() {
            if insns[i + 1].imm == 0x7fff {
                let dst = insns[i].dst();
                let fd = insns[i].imm;
                insns[i] = Insn::new(insns[i].code, dst, BPF_PSEUDO_MAP_FD, 0, fd);
                insns[i + 1].imm = 0;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    insns
}

fn maps() -> Vec<MapDesc> {
    let arr = |name: &str, vs| MapDesc {
        id: 1,
        name: name.into(),
        map_type: 2,
        key_size: 4,
        value_size: vs,
        max_entries: 4,
        ..Default::default()
    };
    let mut inner = arr("", 4);
    inner.map_flags = 0x1000;
    let mut outer = arr("outer", 4);
    outer.map_type = 12;
    outer.inner_meta = Some(Box::new(inner));
    vec![arr("a", 8), arr("b", 8), outer]
}

#[test]
fn helper_call_records_the_map_or_poison() {
    // Two paths reach the lookup at insn 10 with different maps: poisoned.
    let p = prog(
        "call 7
         stxw [%r10-4], %r0
         lddw %r1, 0x7fff00000000
         jeq %r0, 0, +2
         lddw %r1, 0x7fff00000001
         mov %r2, %r10
         add %r2, -4
         call 1
         mov %r0, 0
         exit",
    );
    let v = verify(&p, &maps(), &Options::new(ProgType::Xdp));
    assert!(v.accepted(), "{}", v.log);
    assert_eq!(v.aux[9].map, MapUse::Poisoned);
    assert_eq!(v.aux[9].helper, Some(1));
    assert_eq!(v.aux[2].map, MapUse::Map(MapRef::Fd(0)));
    assert_eq!(v.aux[5].map, MapUse::Map(MapRef::Fd(1)));
}

#[test]
fn inner_lookup_records_the_meta() {
    let p = prog(
        "mov %r1, 0
         stxw [%r10-4], %r1
         mov %r2, %r10
         add %r2, -4
         lddw %r1, 0x7fff00000002
         call 1
         jeq %r0, 0, +5
         mov %r1, %r0
         mov %r2, %r10
         add %r2, -4
         call 1
         mov %r0, 0
         exit",
    );
    let v = verify(&p, &maps(), &Options::new(ProgType::Xdp).log_level(2));
    assert!(v.accepted(), "{}", v.log);
    assert_eq!(v.aux[6].map, MapUse::Map(MapRef::Fd(2)));
    assert_eq!(v.aux[11].map, MapUse::Map(MapRef::InnerOf(2)));
    let meta = v.map(MapRef::InnerOf(2)).expect("meta");
    assert_eq!((meta.map_flags, meta.name.as_str()), (0x1000, ""));
    // The inner map prints as the kernel's meta: no name.
    assert!(v.log.contains("R0=map_ptr(ks=4,vs=4)"), "{}", v.log);
    assert!(
        v.log
            .contains("R0=map_value_or_null(id=1,map=outer,ks=4,vs=4)"),
        "{}",
        v.log
    );
}

#[test]
fn ctx_access_is_recorded() {
    let p = prog(
        "ldxw %r2, [%r1+0]
         ldxw %r3, [%r1+4]
         ldxw %r0, [%r1+12]
         exit",
    );
    let v = verify(&p, &maps(), &Options::new(ProgType::Xdp));
    assert!(v.accepted());
    let a = v.aux[1].ctx.expect("ctx access");
    assert_eq!(
        (a.field.name, a.off, a.size, a.write),
        ("data_end", 4, 4, false)
    );
    assert_eq!(v.aux[2].ctx.map(|c| c.field.name), Some("ingress_ifindex"));
    assert_eq!(v.aux[0].ptr_type, Some(RegType::PtrToCtx));
}

#[test]
fn level2_lines_look_like_the_kernel() {
    let p = prog(
        "mov %r1, 0
         stxw [%r10-4], %r1
         mov %r2, %r10
         add %r2, -4
         mov %r0, 0
         exit",
    );
    let v = verify(&p, &maps(), &Options::new(ProgType::Xdp).log_level(2));
    let log = &v.log;
    // Lines as the 6.18 kernel prints them for the same instructions.
    for want in [
        "0: R1=ctx() R10=fp0\n",
        "0: (b7) r1 = 0                        ; R1=0\n",
        "2: (bf) r2 = r10                      ; R2=fp0 R10=fp0\n",
        "3: (07) r2 += -4                      ; R2=fp-4\n",
        "processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n",
    ] {
        assert!(log.contains(want), "missing {want:?} in\n{log}");
    }
}

#[test]
fn rejection_carries_message_and_hint() {
    let p = prog("ldxw %r0, [%r1+24]\nexit");
    let v = verify(&p, &maps(), &Options::new(ProgType::Xdp));
    let e = v.result.expect_err("rejected");
    assert_eq!(e.message, "invalid bpf_context access off=24 size=4");
    assert!(e.hint.is_some());
    assert!(v.log.contains("hint: "));
    assert!(v.log.ends_with("mark_read 0\n"));
}

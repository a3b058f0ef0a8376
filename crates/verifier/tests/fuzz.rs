//! Fuzz-style property test: random instruction sequences (valid opcodes with random
//! registers, offsets and immediates, plus raw random words) never panic the verifier, at
//! every log level, and an accepted verdict always comes with a statistics line.

use kbpf_isa::Insn;
use kbpf_verifier::{MapDesc, Options, ProgType, verify};
use proptest::prelude::*;

/// Opcodes the generator picks from (every class, common and odd forms).
const CODES: &[u8] = &[
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd4, 0xdc, 0xd7, 0x04, 0x0c, 0x14, 0x1c,
    0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0xa4, 0xb4, 0xbc, 0xc4, 0x61, 0x69, 0x71, 0x79, 0x81,
    0x89, 0x91, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x05, 0x15, 0x1d, 0x25,
    0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0xa5, 0xad, 0xb5, 0xbd, 0xc5,
    0xcd, 0xd5, 0xdd, 0x16, 0x1e, 0x26, 0x36, 0xa6, 0xb6, 0x85, 0x95, 0x18, 0x20, 0x28, 0x30, 0x40,
];

fn insn() -> impl Strategy<Value = Insn> {
    prop_oneof![
        8 => (0..CODES.len(), 0u8..11, 0u8..11, -12i16..12, prop_oneof![Just(0i32), Just(1), Just(-8), Just(4), Just(8), any::<i32>(), 0i32..3, Just(6)])
            .prop_map(|(c, d, s, off, imm)| {
                let code = CODES[c];
                // Helper calls: pick known helper ids; pseudo calls: small offsets.
                let (s, imm) = match code {
                    0x85 if s % 3 == 1 => (1, imm.rem_euclid(6) - 2),
                    0x85 => (0, [1, 2, 3, 5, 6, 7, 8, 12, 23, 28, 44, 51, 65][imm.rem_euclid(13) as usize]),
                    0x18 => (s % 3, imm.rem_euclid(3)),
                    0x61 | 0x69 | 0x71 | 0x79 | 0x62 | 0x6a | 0x72 | 0x7a | 0x63 | 0x6b | 0x73 | 0x7b => (s, imm),
                    _ => (s, imm),
                };
                Insn::new(code, d, s, if matches!(code, 0x63 | 0x6b | 0x73 | 0x7b | 0x7a | 0x72 | 0x6a | 0x62) { off.min(0) * 2 } else { off }, imm)
            }),
        1 => any::<u64>().prop_map(Insn::from_u64),
    ]
}

fn env() -> Vec<MapDesc> {
    let inner = MapDesc {
        map_type: 2,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        ..Default::default()
    };
    vec![
        MapDesc {
            id: 1,
            name: "arr".into(),
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
            ..Default::default()
        },
        MapDesc {
            id: 2,
            name: "hash".into(),
            map_type: 1,
            key_size: 4,
            value_size: 16,
            max_entries: 4,
            ..Default::default()
        },
        MapDesc {
            id: 3,
            name: "outer".into(),
            map_type: 12,
            key_size: 4,
            value_size: 4,
            max_entries: 4,
            inner_meta: Some(Box::new(inner)),
            frozen_value: None,
            ..Default::default()
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_programs_never_panic(mut prog in proptest::collection::vec(insn(), 1..40),
                                   level in 0u32..3, pt in 0usize..3, ctx_prefix in any::<bool>()) {
        if ctx_prefix {
            // Give many programs a realistic start: map lookup result and packet pointers.
            let mut pre = vec![
                Insn::new(0xbf, 6, 1, 0, 0),
                Insn::new(0x61, 7, 1, 0, 0),
                Insn::new(0x61, 8, 1, 4, 0),
            ];
            pre.append(&mut prog);
            prog = pre;
        }
        prog.push(Insn::new(0xb7, 0, 0, 0, 0));
        prog.push(Insn::new(0x95, 0, 0, 0, 0));
        let pt = [ProgType::Xdp, ProgType::SocketFilter, ProgType::SchedCls][pt];
        let mut opts = Options::new(pt).log_level(level);
        opts.complexity_limit = 20_000;
        let v = verify(&prog, &env(), &opts);
        if level > 0 {
            prop_assert!(v.log.contains("processed "), "{}", v.log);
        }
        prop_assert_eq!(v.aux.len(), prog.len());
    }
}

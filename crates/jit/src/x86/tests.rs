//! Encodings of the assembler's forms, byte for byte against GNU as / llvm-mc.

use super::*;

/// The bytes `f` assembles (also used by the tests of `word` and `ext`).
pub(crate) fn enc(f: impl FnOnce(&mut Asm)) -> Vec<u8> {
    let mut a = Asm::new();
    f(&mut a);
    a.into_bytes()
}

// Expected bytes checked with GNU as / llvm-mc.
#[test]
fn register_forms() {
    assert_eq!(enc(|a| a.mov_rr(true, RAX, RDI)), [0x48, 0x89, 0xf8]);
    assert_eq!(enc(|a| a.mov_rr(false, R13, R14)), [0x45, 0x89, 0xf5]);
    assert_eq!(
        enc(|a| a.alu_ri(true, Alu::Add, R13, 1)),
        [0x49, 0x83, 0xc5, 0x01]
    );
    assert_eq!(
        enc(|a| a.alu_ri(false, Alu::Sub, RBX, 0x1000)),
        [0x81, 0xeb, 0x00, 0x10, 0x00, 0x00]
    );
    assert_eq!(
        enc(|a| a.alu_rr(true, Alu::Cmp, RDI, RSI)),
        [0x48, 0x39, 0xf7]
    );
    assert_eq!(enc(|a| a.imul_rr(true, R8, RCX)), [0x4c, 0x0f, 0xaf, 0xc1]);
    assert_eq!(enc(|a| a.imul_rri(false, RAX, RAX, 3)), [0x6b, 0xc0, 0x03]);
    assert_eq!(enc(|a| a.neg(true, R15)), [0x49, 0xf7, 0xdf]);
    assert_eq!(
        enc(|a| a.shift_cl(true, Shift::Sar, RDX)),
        [0x48, 0xd3, 0xfa]
    );
    assert_eq!(
        enc(|a| a.shift_ri(false, Shift::Shl, RSI, 4)),
        [0xc1, 0xe6, 0x04]
    );
    assert_eq!(enc(|a| a.ror16_8(R8)), [0x66, 0x41, 0xc1, 0xc8, 0x08]);
    assert_eq!(enc(|a| a.bswap(true, R14)), [0x49, 0x0f, 0xce]);
    assert_eq!(enc(|a| a.bswap(false, RDX)), [0x0f, 0xca]);
    assert_eq!(enc(|a| a.movzx16_rr(RDI, RDI)), [0x0f, 0xb7, 0xff]);
    // movsx from sil needs a REX prefix (without it, 0xf6 would mean dh)
    assert_eq!(
        enc(|a| a.movsx_rr(false, RAX, RSI, 8)),
        [0x40, 0x0f, 0xbe, 0xc6]
    );
    assert_eq!(enc(|a| a.movsx_rr(true, RAX, RSI, 32)), [0x48, 0x63, 0xc6]);
    assert_eq!(enc(|a| a.mov_ri64(RAX, 0)), [0x31, 0xc0]);
    assert_eq!(enc(|a| a.mov_ri64(R9, 5)), [0x41, 0xb9, 5, 0, 0, 0]);
    assert_eq!(
        enc(|a| a.mov_ri64(RAX, u64::MAX)),
        [0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(
        enc(|a| a.mov_ri64(RCX, 0x1_0000_0000)),
        [0x48, 0xb9, 0, 0, 0, 0, 1, 0, 0, 0]
    );
    assert_eq!(enc(|a| a.div(true, true, R11)), [0x49, 0xf7, 0xfb]);
    assert_eq!(enc(|a| a.cqo(true)), [0x48, 0x99]);
    assert_eq!(enc(|a| a.call_r(RAX)), [0xff, 0xd0]);
    assert_eq!(enc(|a| a.push(R15)), [0x41, 0x57]);
    assert_eq!(enc(|a| a.pop(RBX)), [0x5b]);
    assert_eq!(
        enc(|a| a.test_ri(true, RDI, 1)),
        [0x48, 0xf7, 0xc7, 1, 0, 0, 0]
    );
}

#[test]
fn rotates() {
    // Checked with GNU as: rol $4,%ecx / rol $1,%r9d
    assert_eq!(
        enc(|a| a.shift_ri(false, Shift::Rol, RCX, 4)),
        [0xc1, 0xc1, 0x04]
    );
    assert_eq!(
        enc(|a| a.shift_ri(false, Shift::Rol, R9, 1)),
        [0x41, 0xd1, 0xc1]
    );
}

#[test]
fn scaled_lea() {
    // Checked with GNU as.
    assert_eq!(
        enc(|a| a.lea_scaled(RAX, RAX, RAX, 3)),
        [0x48, 0x8d, 0x04, 0xc0]
    );
    assert_eq!(
        enc(|a| a.lea_scaled(RBX, RBX, RBX, 1)),
        [0x48, 0x8d, 0x1c, 0x5b]
    );
    assert_eq!(
        enc(|a| a.lea_scaled(R13, R13, R13, 2)),
        [0x4f, 0x8d, 0x6c, 0xad, 0x00]
    );
    assert_eq!(
        enc(|a| a.lea_scaled(RBP, RBP, RBP, 3)),
        [0x48, 0x8d, 0x6c, 0xed, 0x00]
    );
    assert_eq!(
        enc(|a| a.lea_scaled(R12, R12, R12, 1)),
        [0x4f, 0x8d, 0x24, 0x64]
    );
}

#[test]
fn indexed_lea() {
    // Checked with llvm-mc-19 -show-encoding.
    assert_eq!(
        enc(|a| a.lea_indexed(RCX, RSI, R8, 14)),
        [0x4a, 0x8d, 0x4c, 0x06, 0x0e]
    );
    assert_eq!(
        enc(|a| a.lea_indexed(RDX, R13, RAX, 0)),
        [0x49, 0x8d, 0x54, 0x05, 0x00]
    );
    assert_eq!(
        enc(|a| a.lea_indexed(R15, R12, R12, 512)),
        [0x4f, 0x8d, 0xbc, 0x24, 0x00, 0x02, 0x00, 0x00]
    );
    assert_eq!(
        enc(|a| a.lea_indexed(RAX, RBP, RDI, -8)),
        [0x48, 0x8d, 0x44, 0x3d, 0xf8]
    );
}

#[test]
fn memory_forms() {
    // mov [rbp-8], rdi
    assert_eq!(
        enc(|a| a.store_r(Width::DW, RBP, -8, RDI)),
        [0x48, 0x89, 0x7d, 0xf8]
    );
    // mov byte [rbp-8], sil: REX needed for sil
    assert_eq!(
        enc(|a| a.store_r(Width::B, RBP, -8, RSI)),
        [0x40, 0x88, 0x75, 0xf8]
    );
    // movzx eax, byte [r13+0]: r13 base always takes a displacement
    assert_eq!(
        enc(|a| a.load(Width::B, false, RAX, R13, 0)),
        [0x41, 0x0f, 0xb6, 0x45, 0x00]
    );
    // mov rax, [r12]: SIB for r12
    assert_eq!(
        enc(|a| a.load(Width::DW, false, RAX, R12, 0)),
        [0x49, 0x8b, 0x04, 0x24]
    );
    // mov word [rdi+0x100], 7
    assert_eq!(
        enc(|a| a.store_i(Width::H, RDI, 0x100, 7)),
        [0x66, 0xc7, 0x87, 0x00, 0x01, 0x00, 0x00, 0x07, 0x00]
    );
    // movsxd rax, dword [rsi+4]
    assert_eq!(
        enc(|a| a.load(Width::W, true, RAX, RSI, 4)),
        [0x48, 0x63, 0x46, 0x04]
    );
    // lock xadd [rdi], rsi
    assert_eq!(
        enc(|a| a.lock_xadd(true, RDI, 0, RSI)),
        [0xf0, 0x48, 0x0f, 0xc1, 0x37]
    );
    // lock cmpxchg dword [r10], r11d
    assert_eq!(
        enc(|a| a.lock_cmpxchg(false, R10, 0, R11)),
        [0xf0, 0x45, 0x0f, 0xb1, 0x1a]
    );
    // lea rbp, [rsp+0x200]
    assert_eq!(
        enc(|a| a.lea(RBP, RSP, 0x200)),
        [0x48, 0x8d, 0xac, 0x24, 0x00, 0x02, 0x00, 0x00]
    );
    assert_eq!(
        enc(|a| a.lea_rip(RAX, 0x10)),
        [0x48, 0x8d, 0x05, 0x10, 0, 0, 0]
    );
}

#[test]
fn short_forward_jumps_bind() {
    let mut a = Asm::new();
    let j = a.jcc_short_fwd(Cond::E);
    a.mov_rr(true, RAX, RDI);
    assert!(a.bind_short(j));
    assert_eq!(a.bytes(), [0x74, 0x03, 0x48, 0x89, 0xf8]);
    let mut a = Asm::new();
    let j = a.jmp_short_fwd();
    for _ in 0..200 {
        a.ret();
    }
    assert!(!a.bind_short(j));
}

/// Every emitter, over every register (and a spread of displacements and immediates),
/// decoded back with iced-x86: mnemonic, registers, memory operand and immediate must be
/// what was asked for. This checks the REX/ModRM/SIB logic exhaustively.
mod iced_round_trip {
    use super::super::*;
    use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register as R};

    const Q: [R; 16] = [
        R::RAX,
        R::RCX,
        R::RDX,
        R::RBX,
        R::RSP,
        R::RBP,
        R::RSI,
        R::RDI,
        R::R8,
        R::R9,
        R::R10,
        R::R11,
        R::R12,
        R::R13,
        R::R14,
        R::R15,
    ];
    const D: [R; 16] = [
        R::EAX,
        R::ECX,
        R::EDX,
        R::EBX,
        R::ESP,
        R::EBP,
        R::ESI,
        R::EDI,
        R::R8D,
        R::R9D,
        R::R10D,
        R::R11D,
        R::R12D,
        R::R13D,
        R::R14D,
        R::R15D,
    ];
    const W16: [R; 16] = [
        R::AX,
        R::CX,
        R::DX,
        R::BX,
        R::SP,
        R::BP,
        R::SI,
        R::DI,
        R::R8W,
        R::R9W,
        R::R10W,
        R::R11W,
        R::R12W,
        R::R13W,
        R::R14W,
        R::R15W,
    ];
    const B8: [R; 16] = [
        R::AL,
        R::CL,
        R::DL,
        R::BL,
        R::SPL,
        R::BPL,
        R::SIL,
        R::DIL,
        R::R8L,
        R::R9L,
        R::R10L,
        R::R11L,
        R::R12L,
        R::R13L,
        R::R14L,
        R::R15L,
    ];
    const DISPS: [i32; 8] = [0, 1, -8, 127, 128, -128, -129, 0x1000];

    /// Decodes exactly one instruction that must span all of `bytes`.
    fn one(bytes: &[u8]) -> Instruction {
        let mut d = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE);
        let i = d.decode();
        assert!(!i.is_invalid(), "invalid encoding {bytes:02x?}");
        assert_eq!(
            i.len(),
            bytes.len(),
            "{bytes:02x?} decodes as {:?}",
            i.code()
        );
        i
    }

    fn regs(w: bool) -> &'static [R; 16] {
        if w { &Q } else { &D }
    }

    fn check_mem(i: &Instruction, op: u32, base: u8, disp: i32) {
        assert_eq!(i.op_kind(op), OpKind::Memory);
        assert_eq!(i.memory_base(), Q[base as usize]);
        assert_eq!(i.memory_index(), R::None);
        assert_eq!(i.memory_displacement64() as i64, disp as i64);
    }

    #[test]
    fn alu_and_moves() {
        let ops = [
            (Alu::Add, Mnemonic::Add),
            (Alu::Or, Mnemonic::Or),
            (Alu::And, Mnemonic::And),
            (Alu::Sub, Mnemonic::Sub),
            (Alu::Xor, Mnemonic::Xor),
            (Alu::Cmp, Mnemonic::Cmp),
        ];
        for w in [true, false] {
            let r = regs(w);
            for d in 0..16u8 {
                for s in 0..16u8 {
                    for (op, m) in ops {
                        let mut a = Asm::new();
                        a.alu_rr(w, op, d, s);
                        let i = one(a.bytes());
                        assert_eq!(i.mnemonic(), m);
                        assert_eq!(
                            (i.op0_register(), i.op1_register()),
                            (r[d as usize], r[s as usize])
                        );
                    }
                    let mut a = Asm::new();
                    a.mov_rr(w, d, s);
                    let i = one(a.bytes());
                    assert_eq!(
                        (i.mnemonic(), i.op0_register(), i.op1_register()),
                        (Mnemonic::Mov, r[d as usize], r[s as usize])
                    );
                    let mut a = Asm::new();
                    a.imul_rr(w, d, s);
                    let i = one(a.bytes());
                    assert_eq!(
                        (i.mnemonic(), i.op0_register(), i.op1_register()),
                        (Mnemonic::Imul, r[d as usize], r[s as usize])
                    );
                    let mut a = Asm::new();
                    a.test_rr(w, d, s);
                    let i = one(a.bytes());
                    assert_eq!(
                        (i.mnemonic(), i.op0_register(), i.op1_register()),
                        (Mnemonic::Test, r[d as usize], r[s as usize])
                    );
                    for bits in [8u8, 16, 32] {
                        if bits == 32 && !w {
                            continue;
                        }
                        let mut a = Asm::new();
                        a.movsx_rr(w, d, s, bits);
                        let i = one(a.bytes());
                        let src = match bits {
                            8 => B8[s as usize],
                            16 => W16[s as usize],
                            _ => D[s as usize],
                        };
                        let m = if bits == 32 {
                            Mnemonic::Movsxd
                        } else {
                            Mnemonic::Movsx
                        };
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.op1_register()),
                            (m, r[d as usize], src)
                        );
                    }
                }
                for imm in [0, 1, -1, 127, 128, -128, -129, i32::MIN, i32::MAX] {
                    for (op, m) in ops {
                        let mut a = Asm::new();
                        a.alu_ri(w, op, d, imm);
                        let i = one(a.bytes());
                        assert_eq!((i.mnemonic(), i.op0_register()), (m, r[d as usize]));
                        let want = if w {
                            imm as i64 as u64
                        } else {
                            imm as u32 as u64
                        };
                        let got = if w {
                            i.immediate(1)
                        } else {
                            i.immediate(1) as u32 as u64
                        };
                        assert_eq!(got, want, "{op:?} {imm}");
                    }
                    let mut a = Asm::new();
                    a.imul_rri(w, d, d, imm);
                    let i = one(a.bytes());
                    assert_eq!(
                        (i.mnemonic(), i.op0_register(), i.op1_register()),
                        (Mnemonic::Imul, r[d as usize], r[d as usize])
                    );
                }
                for (sh, m) in [
                    (Shift::Shl, Mnemonic::Shl),
                    (Shift::Shr, Mnemonic::Shr),
                    (Shift::Sar, Mnemonic::Sar),
                ] {
                    for n in [1u8, 5, 31] {
                        let mut a = Asm::new();
                        a.shift_ri(w, sh, d, n);
                        let i = one(a.bytes());
                        assert_eq!(
                            (i.mnemonic(), i.op0_register(), i.immediate(1)),
                            (m, r[d as usize], n as u64)
                        );
                    }
                    let mut a = Asm::new();
                    a.shift_cl(w, sh, d);
                    let i = one(a.bytes());
                    assert_eq!(
                        (i.mnemonic(), i.op0_register(), i.op1_register()),
                        (m, r[d as usize], R::CL)
                    );
                }
                let mut a = Asm::new();
                a.bswap(w, d);
                assert_eq!(one(a.bytes()).op0_register(), r[d as usize]);
                let mut a = Asm::new();
                a.neg(w, d);
                assert_eq!(one(a.bytes()).mnemonic(), Mnemonic::Neg);
                let mut a = Asm::new();
                a.div(w, true, d);
                let i = one(a.bytes());
                assert_eq!(
                    (i.mnemonic(), i.op0_register()),
                    (Mnemonic::Idiv, r[d as usize])
                );
            }
        }
        for d in 0..16u8 {
            let mut a = Asm::new();
            a.ror16_8(d);
            let i = one(a.bytes());
            assert_eq!(
                (i.mnemonic(), i.op0_register(), i.immediate(1)),
                (Mnemonic::Ror, W16[d as usize], 8)
            );
            let mut a = Asm::new();
            a.movzx16_rr(d, d);
            let i = one(a.bytes());
            assert_eq!(
                (i.op0_register(), i.op1_register()),
                (D[d as usize], W16[d as usize])
            );
            for v in [
                0u64,
                5,
                0xffff_ffff,
                0x1_0000_0000,
                u64::MAX,
                0x8000_0000_0000_0000,
            ] {
                let mut a = Asm::new();
                a.mov_ri64(d, v);
                let i = one(a.bytes());
                if v == 0 {
                    assert_eq!(i.mnemonic(), Mnemonic::Xor);
                } else {
                    assert_eq!(i.mnemonic(), Mnemonic::Mov);
                    let got = match i.op_kind(1) {
                        OpKind::Immediate32 => i.immediate(1) as u32 as u64,
                        _ => i.immediate(1),
                    };
                    assert_eq!(got, v);
                }
            }
            for (push, m) in [(true, Mnemonic::Push), (false, Mnemonic::Pop)] {
                let mut a = Asm::new();
                if push {
                    a.push(d)
                } else {
                    a.pop(d)
                }
                let i = one(a.bytes());
                assert_eq!((i.mnemonic(), i.op0_register()), (m, Q[d as usize]));
            }
        }
    }

    #[test]
    fn memory_operands() {
        let widths = [
            (Width::B, 0usize),
            (Width::H, 1),
            (Width::W, 2),
            (Width::DW, 3),
        ];
        for base in 0..16u8 {
            for reg in 0..16u8 {
                for disp in DISPS {
                    for (wd, k) in widths {
                        let mut a = Asm::new();
                        a.store_r(wd, base, disp, reg);
                        let i = one(a.bytes());
                        check_mem(&i, 0, base, disp);
                        let want = [B8, W16, D, Q][k][reg as usize];
                        assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Mov, want));
                        for signed in [false, true] {
                            let mut a = Asm::new();
                            a.load(wd, signed, reg, base, disp);
                            let i = one(a.bytes());
                            check_mem(&i, 1, base, disp);
                            let (m, dst) = match (k, signed) {
                                (0 | 1, false) => (Mnemonic::Movzx, D[reg as usize]),
                                (2, false) => (Mnemonic::Mov, D[reg as usize]),
                                (3, _) => (Mnemonic::Mov, Q[reg as usize]),
                                (2, true) => (Mnemonic::Movsxd, Q[reg as usize]),
                                _ => (Mnemonic::Movsx, Q[reg as usize]),
                            };
                            assert_eq!((i.mnemonic(), i.op0_register()), (m, dst));
                        }
                    }
                    for w in [true, false] {
                        let r = regs(w)[reg as usize];
                        let mut a = Asm::new();
                        a.lock_xadd(w, base, disp, reg);
                        let i = one(a.bytes());
                        check_mem(&i, 0, base, disp);
                        assert!(i.has_lock_prefix());
                        assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Xadd, r));
                        let mut a = Asm::new();
                        a.lock_cmpxchg(w, base, disp, reg);
                        let i = one(a.bytes());
                        check_mem(&i, 0, base, disp);
                        assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Cmpxchg, r));
                        let mut a = Asm::new();
                        a.xchg_mr(w, base, disp, reg);
                        let i = one(a.bytes());
                        check_mem(&i, 0, base, disp);
                        assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Xchg, r));
                        let mut a = Asm::new();
                        a.lock_alu_mr(w, Alu::Xor, base, disp, reg);
                        let i = one(a.bytes());
                        check_mem(&i, 0, base, disp);
                        assert!(i.has_lock_prefix());
                        assert_eq!((i.mnemonic(), i.op1_register()), (Mnemonic::Xor, r));
                    }
                }
            }
            for disp in DISPS {
                for (wd, _) in widths {
                    let mut a = Asm::new();
                    a.store_i(wd, base, disp, -2);
                    let i = one(a.bytes());
                    check_mem(&i, 0, base, disp);
                    assert_eq!(i.mnemonic(), Mnemonic::Mov);
                }
                let mut a = Asm::new();
                a.lea(R11, base, disp);
                let i = one(a.bytes());
                check_mem(&i, 1, base, disp);
                assert_eq!((i.mnemonic(), i.op0_register()), (Mnemonic::Lea, R::R11));
            }
        }
    }
}

//! The benchmark programs, shared by `benches/interp.rs`, `examples/interp_vs_rbpf.rs` and
//! `tests/rbpf_agrees.rs`: raw eBPF bytecode that both kbpf and rbpf 0.3 run, plus native Rust
//! reference implementations of what each program computes.
//!
//! rbpf 0.3 sign-extends the results of 32-bit `add`/`sub`/`mul` (the kernel zero-extends), so
//! these programs use 64-bit arithmetic and truncate to 32 bits with `w = w` (`mov32`), which
//! both engines implement like the kernel. Programs take a context in r1 laid out like a
//! minimal `xdp_md` with 64-bit pointers: `{ u64 data; u64 data_end; }`.
#![allow(dead_code)]

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

/// A tiny assembler with forward/backward labels.
#[derive(Default)]
pub struct Builder {
    insns: Vec<Insn>,
    labels: Vec<(&'static str, usize)>,
    fixups: Vec<(usize, &'static str)>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }
    fn push(&mut self, i: Insn) -> &mut Self {
        self.insns.push(i);
        self
    }
    pub fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.insns.len()));
        self
    }
    pub fn alu64_k(&mut self, op: u8, dst: u8, imm: i32) -> &mut Self {
        self.push(Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm))
    }
    pub fn alu64_x(&mut self, op: u8, dst: u8, src: u8) -> &mut Self {
        self.push(Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0))
    }
    /// `wD = wS`: truncate to 32 bits, zero-extended.
    pub fn mov32_x(&mut self, dst: u8, src: u8) -> &mut Self {
        self.push(Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0))
    }
    pub fn be16(&mut self, dst: u8) -> &mut Self {
        self.push(Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 16))
    }
    pub fn be32(&mut self, dst: u8) -> &mut Self {
        self.push(Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 32))
    }
    pub fn ld_imm64(&mut self, dst: u8, v: u64) -> &mut Self {
        self.push(Insn::new(
            BPF_LD | BPF_IMM | BPF_DW,
            dst,
            0,
            0,
            v as u32 as i32,
        ));
        self.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32))
    }
    pub fn ldx(&mut self, size: u8, dst: u8, src: u8, off: i16) -> &mut Self {
        self.push(Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0))
    }
    pub fn stx(&mut self, size: u8, dst: u8, src: u8, off: i16) -> &mut Self {
        self.push(Insn::new(BPF_STX | BPF_MEM | size, dst, src, off, 0))
    }
    pub fn jmp_k(&mut self, op: u8, dst: u8, imm: i32, to: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.push(Insn::new(BPF_JMP | op | BPF_K, dst, 0, 0, imm))
    }
    pub fn jmp_x(&mut self, op: u8, dst: u8, src: u8, to: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.push(Insn::new(BPF_JMP | op | BPF_X, dst, src, 0, 0))
    }
    pub fn ja(&mut self, to: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.push(Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0))
    }
    pub fn exit(&mut self) -> &mut Self {
        self.push(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0))
    }
    /// `dst = rol32(src, k)` for a zero-extended 32-bit `src`, clobbering `tmp`.
    pub fn rol32(&mut self, dst: u8, src: u8, k: i32, tmp: u8) -> &mut Self {
        self.alu64_x(BPF_MOV, dst, src)
            .alu64_k(BPF_LSH, dst, k)
            .alu64_x(BPF_MOV, tmp, src)
            .alu64_k(BPF_RSH, tmp, 32 - k)
            .alu64_x(BPF_OR, dst, tmp)
            .mov32_x(dst, dst)
    }
    pub fn finish(&mut self) -> Vec<Insn> {
        let mut out = self.insns.clone();
        for &(at, name) in &self.fixups {
            let target = self
                .labels
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t)
                .unwrap_or_else(|| panic!("undefined label {name}"));
            out[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        out
    }
}

/// Iterations of the ALU loop.
pub const ALU_ITERATIONS: i32 = 1000;

/// (1) An ALU loop: 1000 iterations of mixed add/mul/xor/shift on registers only.
pub fn alu_loop() -> Vec<Insn> {
    let mut b = Builder::new();
    b.alu64_k(BPF_MOV, 0, 0)
        .alu64_k(BPF_MOV, 1, 0)
        .alu64_k(BPF_MOV, 2, 0x12345)
        .label("loop")
        .alu64_x(BPF_MOV, 3, 1)
        .alu64_k(BPF_MUL, 3, 0x9e3779b1u32 as i32)
        .alu64_x(BPF_ADD, 0, 3)
        .alu64_x(BPF_XOR, 0, 2)
        .alu64_x(BPF_MOV, 4, 0)
        .alu64_k(BPF_RSH, 4, 7)
        .alu64_x(BPF_XOR, 0, 4)
        .alu64_x(BPF_MOV, 5, 0)
        .alu64_k(BPF_LSH, 5, 3)
        .alu64_x(BPF_ADD, 0, 5)
        .alu64_k(BPF_ADD, 2, 0x11)
        .alu64_k(BPF_ADD, 1, 1)
        .jmp_k(BPF_JLT, 1, ALU_ITERATIONS, "loop")
        .exit();
    b.finish()
}

/// What [`alu_loop`] returns.
pub fn alu_loop_native() -> u64 {
    let (mut r0, mut r2) = (0u64, 0x12345u64);
    for i in 0..ALU_ITERATIONS as u64 {
        let r3 = i.wrapping_mul(0x9e3779b1u32 as i32 as i64 as u64);
        r0 = r0.wrapping_add(r3);
        r0 ^= r2;
        r0 ^= r0 >> 7;
        r0 = r0.wrapping_add(r0 << 3);
        r2 += 0x11;
    }
    r0
}

pub const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// (2) FNV-1a (64-bit) over every byte of the packet `[data, data_end)`.
pub fn fnv1a() -> Vec<Insn> {
    let mut b = Builder::new();
    b.ldx(BPF_DW, 2, 1, 0) // data
        .ldx(BPF_DW, 3, 1, 8) // data_end
        .ld_imm64(0, FNV64_OFFSET)
        .ld_imm64(4, FNV64_PRIME)
        .jmp_x(BPF_JGE, 2, 3, "out")
        .label("loop")
        .ldx(BPF_B, 5, 2, 0)
        .alu64_x(BPF_XOR, 0, 5)
        .alu64_x(BPF_MUL, 0, 4)
        .alu64_k(BPF_ADD, 2, 1)
        .jmp_x(BPF_JLT, 2, 3, "loop")
        .label("out")
        .exit();
    b.finish()
}

pub fn fnv1a_native(data: &[u8]) -> u64 {
    data.iter().fold(FNV64_OFFSET, |h, &b| {
        (h ^ b as u64).wrapping_mul(FNV64_PRIME)
    })
}

/// Verdict of [`parse_hash`] for packets that are not Ethernet/IPv4/TCP or are truncated.
pub const PARSE_DROP: u64 = 0x1_0000_0000;

/// (3) Ethernet → IPv4 → TCP header parse with the bounds checks a verifier demands, then a
/// jhash-style mix (`__jhash_final` of the kernel's `jhash_3words`) of the 5-tuple.
pub fn parse_hash() -> Vec<Insn> {
    const JHASH_INITVAL: i32 = 0xdeadbeefu32 as i32;
    let mut b = Builder::new();
    b.ldx(BPF_DW, 2, 1, 0) // r2 = data
        .ldx(BPF_DW, 3, 1, 8) // r3 = data_end
        // Ethernet header (14 bytes), EtherType IPv4
        .alu64_x(BPF_MOV, 4, 2)
        .alu64_k(BPF_ADD, 4, 14)
        .jmp_x(BPF_JGT, 4, 3, "drop")
        .ldx(BPF_H, 5, 2, 12)
        .be16(5)
        .jmp_k(BPF_JNE, 5, 0x0800, "drop")
        // IPv4 header: fixed part in bounds, version 4, ihl >= 5, protocol TCP
        .alu64_x(BPF_MOV, 4, 2)
        .alu64_k(BPF_ADD, 4, 34)
        .jmp_x(BPF_JGT, 4, 3, "drop")
        .ldx(BPF_B, 5, 2, 14)
        .alu64_x(BPF_MOV, 6, 5)
        .alu64_k(BPF_RSH, 6, 4)
        .jmp_k(BPF_JNE, 6, 4, "drop")
        .alu64_k(BPF_AND, 5, 0xf)
        .alu64_k(BPF_LSH, 5, 2) // r5 = ihl * 4
        .jmp_k(BPF_JLT, 5, 20, "drop")
        .ldx(BPF_B, 7, 2, 23) // protocol
        .jmp_k(BPF_JNE, 7, 6, "drop")
        // fragment offset must be 0 (first fragment carries the TCP header)
        .ldx(BPF_H, 6, 2, 20)
        .be16(6)
        .alu64_k(BPF_AND, 6, 0x1fff)
        .jmp_k(BPF_JNE, 6, 0, "drop")
        .ldx(BPF_W, 8, 2, 26) // saddr
        .be32(8)
        .ldx(BPF_W, 9, 2, 30) // daddr
        .be32(9)
        // TCP header at data + 14 + ihl*4, 20 bytes in bounds
        .alu64_x(BPF_MOV, 4, 2)
        .alu64_k(BPF_ADD, 4, 14)
        .alu64_x(BPF_ADD, 4, 5)
        .alu64_x(BPF_MOV, 6, 4)
        .alu64_k(BPF_ADD, 6, 20)
        .jmp_x(BPF_JGT, 6, 3, "drop")
        .ldx(BPF_H, 5, 4, 0) // sport
        .be16(5)
        .ldx(BPF_H, 6, 4, 2) // dport
        .be16(6)
        // a = saddr + init, b = daddr + init, c = (sport << 16 | dport) ^ proto + init
        .alu64_k(BPF_LSH, 5, 16)
        .alu64_x(BPF_OR, 5, 6)
        .alu64_x(BPF_XOR, 5, 7)
        .alu64_k(BPF_ADD, 8, JHASH_INITVAL)
        .mov32_x(8, 8)
        .alu64_k(BPF_ADD, 9, JHASH_INITVAL)
        .mov32_x(9, 9)
        .alu64_k(BPF_ADD, 5, JHASH_INITVAL)
        .mov32_x(5, 5);
    // __jhash_final(a = r8, b = r9, c = r5), temporaries r0, r1
    let (a, bb, c) = (8u8, 9u8, 5u8);
    for &(x, y, z, k) in &[
        (c, bb, bb, 14),
        (a, c, c, 11),
        (bb, a, a, 25),
        (c, bb, bb, 16),
        (a, c, c, 4),
        (bb, a, a, 14),
        (c, bb, bb, 24),
    ] {
        // x ^= y; x -= rol32(z, k)
        b.alu64_x(BPF_XOR, x, y)
            .rol32(0, z, k, 1)
            .alu64_x(BPF_SUB, x, 0)
            .mov32_x(x, x);
    }
    b.alu64_x(BPF_MOV, 0, c)
        .exit()
        .label("drop")
        .ld_imm64(0, PARSE_DROP)
        .exit();
    b.finish()
}

/// What [`parse_hash`] returns for `pkt`.
pub fn parse_hash_native(pkt: &[u8]) -> u64 {
    const INIT: u32 = 0xdeadbeef;
    let be16 = |o: usize| u16::from_be_bytes([pkt[o], pkt[o + 1]]) as u32;
    let be32 = |o: usize| u32::from_be_bytes([pkt[o], pkt[o + 1], pkt[o + 2], pkt[o + 3]]);
    if pkt.len() < 34 || be16(12) != 0x0800 || pkt[14] >> 4 != 4 {
        return PARSE_DROP;
    }
    let ihl = (pkt[14] & 0xf) as usize * 4;
    if ihl < 20 || pkt[23] != 6 || be16(20) & 0x1fff != 0 || pkt.len() < 14 + ihl + 20 {
        return PARSE_DROP;
    }
    let t = 14 + ihl;
    let mut a = be32(26).wrapping_add(INIT);
    let mut b = be32(30).wrapping_add(INIT);
    let mut c = ((be16(t) << 16) | be16(t + 2)) ^ pkt[23] as u32;
    c = c.wrapping_add(INIT);
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(24));
    c as u64
}

/// A 1500-byte Ethernet/IPv4/TCP packet (10.0.0.1:43210 → 192.168.1.20:443, ACK with payload).
pub fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 1500];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // dst MAC
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // src MAC
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = 14;
    p[ip] = 0x45;
    p[ip + 2..ip + 4].copy_from_slice(&1486u16.to_be_bytes()); // total length
    p[ip + 4..ip + 6].copy_from_slice(&0x1c46u16.to_be_bytes()); // id
    p[ip + 6..ip + 8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    p[ip + 8] = 64; // ttl
    p[ip + 9] = 6; // TCP
    p[ip + 12..ip + 16].copy_from_slice(&[10, 0, 0, 1]);
    p[ip + 16..ip + 20].copy_from_slice(&[192, 168, 1, 20]);
    let tcp = ip + 20;
    p[tcp..tcp + 2].copy_from_slice(&43210u16.to_be_bytes());
    p[tcp + 2..tcp + 4].copy_from_slice(&443u16.to_be_bytes());
    p[tcp + 4..tcp + 8].copy_from_slice(&0x1234_5678u32.to_be_bytes()); // seq
    p[tcp + 12] = 0x50; // data offset 5
    p[tcp + 13] = 0x10; // ACK
    p[tcp + 14..tcp + 16].copy_from_slice(&64240u16.to_be_bytes()); // window
    for (i, b) in p[tcp + 20..].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    p
}

/// The `{ u64 data; u64 data_end; }` context for `pkt` (little-endian, as the host reads it).
pub fn context(pkt: &[u8]) -> [u8; 16] {
    let start = pkt.as_ptr() as u64;
    let end = start + pkt.len() as u64;
    let mut ctx = [0u8; 16];
    ctx[..8].copy_from_slice(&start.to_le_bytes());
    ctx[8..].copy_from_slice(&end.to_le_bytes());
    ctx
}

/// The program's bytes, as rbpf takes them.
pub fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns_to_bytes(insns)
}

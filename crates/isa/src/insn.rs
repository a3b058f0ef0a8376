//! The raw instruction (`struct bpf_insn`) and the opcode constants, named as in the
//! kernel's `include/uapi/linux/bpf.h` and `bpf_common.h`.
//!
//! An opcode byte is `class | size/op | mode/source`; the constants below are meant to be
//! or-ed together exactly like the kernel's macros (`BPF_ALU64 | BPF_ADD | BPF_X`).

/// One 8-byte eBPF instruction, laid out like the kernel's `struct bpf_insn`:
/// `code:8, dst_reg:4, src_reg:4, off:16, imm:32`, little-endian.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Insn {
    /// Opcode byte.
    pub code: u8,
    /// Low nibble: destination register; high nibble: source register.
    pub regs: u8,
    /// Signed offset (memory offset, jump offset, or an opcode modifier for v4 ops).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl std::fmt::Debug for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {} }}",
            self.code,
            self.dst(),
            self.src(),
            self.off,
            self.imm
        )
    }
}

impl Insn {
    /// Size of one instruction in bytes.
    pub const SIZE: usize = 8;

    /// Builds an instruction from its fields. Registers are masked to 4 bits.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            regs: (dst & 0xf) | ((src & 0xf) << 4),
            off,
            imm,
        }
    }

    /// Destination register number (0..=15; only 0..=10 are valid).
    pub const fn dst(&self) -> u8 {
        self.regs & 0xf
    }

    /// Source register number (0..=15; only 0..=10 are valid, or a pseudo source).
    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }

    /// Instruction class (`BPF_CLASS(code)`).
    pub const fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// Decodes one instruction from 8 little-endian bytes.
    pub const fn from_bytes(b: [u8; 8]) -> Self {
        Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the instruction as 8 little-endian bytes.
    pub const fn to_bytes(&self) -> [u8; 8] {
        let o = self.off.to_le_bytes();
        let i = self.imm.to_le_bytes();
        [self.code, self.regs, o[0], o[1], i[0], i[1], i[2], i[3]]
    }

    /// Encodes the instruction as one little-endian `u64` word (the `-- raw` form of the
    /// conformance suite).
    pub const fn to_u64(&self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    /// Decodes one instruction from a little-endian `u64` word.
    pub const fn from_u64(w: u64) -> Self {
        Self::from_bytes(w.to_le_bytes())
    }

    /// True for the first half of a 16-byte `ld_imm64` (`BPF_LD | BPF_IMM | BPF_DW`).
    pub const fn is_ld_imm64(&self) -> bool {
        self.code == BPF_LD | BPF_IMM | BPF_DW
    }
}

/// Parses a byte slice into instructions. The length must be a multiple of 8.
pub fn insns_from_bytes(bytes: &[u8]) -> Option<Vec<Insn>> {
    if !bytes.len().is_multiple_of(Insn::SIZE) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(Insn::SIZE)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunks_exact yields 8 bytes")))
            .collect(),
    )
}

/// Serialises instructions to bytes.
pub fn insns_to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

// ---- instruction classes ----
/// Class: non-standard loads (`ld_imm64`, legacy `ld_abs`/`ld_ind`).
pub const BPF_LD: u8 = 0x00;
/// Class: load from memory into a register.
pub const BPF_LDX: u8 = 0x01;
/// Class: store an immediate to memory.
pub const BPF_ST: u8 = 0x02;
/// Class: store a register to memory (and atomics).
pub const BPF_STX: u8 = 0x03;
/// Class: 32-bit arithmetic.
pub const BPF_ALU: u8 = 0x04;
/// Class: 64-bit jumps, calls, exit.
pub const BPF_JMP: u8 = 0x05;
/// Class: 32-bit compare-and-jump.
pub const BPF_JMP32: u8 = 0x06;
/// Class: 64-bit arithmetic.
pub const BPF_ALU64: u8 = 0x07;

// ---- load/store size ----
/// Size: 4 bytes.
pub const BPF_W: u8 = 0x00;
/// Size: 2 bytes.
pub const BPF_H: u8 = 0x08;
/// Size: 1 byte.
pub const BPF_B: u8 = 0x10;
/// Size: 8 bytes.
pub const BPF_DW: u8 = 0x18;

// ---- load/store mode ----
/// Mode: immediate (`ld_imm64`).
pub const BPF_IMM: u8 = 0x00;
/// Mode: legacy absolute packet load.
pub const BPF_ABS: u8 = 0x20;
/// Mode: legacy indirect packet load.
pub const BPF_IND: u8 = 0x40;
/// Mode: regular memory access.
pub const BPF_MEM: u8 = 0x60;
/// Mode: sign-extending load (v4).
pub const BPF_MEMSX: u8 = 0x80;
/// Mode: atomic operation.
pub const BPF_ATOMIC: u8 = 0xc0;

// ---- ALU / JMP source ----
/// Source operand is the 32-bit immediate.
pub const BPF_K: u8 = 0x00;
/// Source operand is `src_reg`.
pub const BPF_X: u8 = 0x08;
/// For `BPF_END` in class `BPF_ALU`: convert to little-endian (same bit as `BPF_K`).
pub const BPF_TO_LE: u8 = 0x00;
/// For `BPF_END` in class `BPF_ALU`: convert to big-endian (same bit as `BPF_X`).
pub const BPF_TO_BE: u8 = 0x08;

// ---- ALU operations ----
/// `dst += src`
pub const BPF_ADD: u8 = 0x00;
/// `dst -= src`
pub const BPF_SUB: u8 = 0x10;
/// `dst *= src`
pub const BPF_MUL: u8 = 0x20;
/// `dst /= src` (unsigned; signed when `off == 1`)
pub const BPF_DIV: u8 = 0x30;
/// `dst |= src`
pub const BPF_OR: u8 = 0x40;
/// `dst &= src`
pub const BPF_AND: u8 = 0x50;
/// `dst <<= src`
pub const BPF_LSH: u8 = 0x60;
/// `dst >>= src` (logical)
pub const BPF_RSH: u8 = 0x70;
/// `dst = -dst`
pub const BPF_NEG: u8 = 0x80;
/// `dst %= src` (unsigned; signed when `off == 1`)
pub const BPF_MOD: u8 = 0x90;
/// `dst ^= src`
pub const BPF_XOR: u8 = 0xa0;
/// `dst = src` (sign-extending when `off` is 8, 16 or 32)
pub const BPF_MOV: u8 = 0xb0;
/// `dst s>>= src` (arithmetic)
pub const BPF_ARSH: u8 = 0xc0;
/// Byte swap (`le`/`be` in `BPF_ALU`, unconditional `bswap` in `BPF_ALU64`).
pub const BPF_END: u8 = 0xd0;

// ---- JMP operations ----
/// `goto` (`gotol` with the offset in `imm` in class `BPF_JMP32`).
pub const BPF_JA: u8 = 0x00;
/// `==`
pub const BPF_JEQ: u8 = 0x10;
/// unsigned `>`
pub const BPF_JGT: u8 = 0x20;
/// unsigned `>=`
pub const BPF_JGE: u8 = 0x30;
/// `&` non-zero
pub const BPF_JSET: u8 = 0x40;
/// `!=`
pub const BPF_JNE: u8 = 0x50;
/// signed `>`
pub const BPF_JSGT: u8 = 0x60;
/// signed `>=`
pub const BPF_JSGE: u8 = 0x70;
/// function call
pub const BPF_CALL: u8 = 0x80;
/// return from function / program
pub const BPF_EXIT: u8 = 0x90;
/// unsigned `<`
pub const BPF_JLT: u8 = 0xa0;
/// unsigned `<=`
pub const BPF_JLE: u8 = 0xb0;
/// signed `<`
pub const BPF_JSLT: u8 = 0xc0;
/// signed `<=`
pub const BPF_JSLE: u8 = 0xd0;
/// Conditional pseudo jumps (`may_goto`); valid only in class `BPF_JMP`.
pub const BPF_JCOND: u8 = 0xe0;
/// `src_reg` of `BPF_JMP | BPF_JCOND` for `may_goto`.
pub const BPF_MAY_GOTO: u8 = 0;
/// The iterations a program's `may_goto`s may take together per function invocation
/// (`BPF_MAX_LOOPS`, the counter the kernel's rewrite puts on the stack).
pub const BPF_MAX_LOOPS: i32 = 8 * 1024 * 1024;

// ---- atomic operations (in `imm` of `BPF_STX | BPF_ATOMIC`) ----
/// Modifier: also return the old value in `src_reg` (`r0` for cmpxchg).
pub const BPF_FETCH: i32 = 0x01;
/// Atomic exchange (`BPF_XCHG = 0xe0 | BPF_FETCH`).
pub const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
/// Atomic compare-and-exchange (`BPF_CMPXCHG = 0xf0 | BPF_FETCH`).
pub const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;
/// Load-acquire (kernel 6.15+; `BPF_LOAD_ACQ = 0x100`).
pub const BPF_LOAD_ACQ: i32 = 0x100;
/// Store-release (kernel 6.15+; `BPF_STORE_REL = 0x110`).
pub const BPF_STORE_REL: i32 = 0x110;

// ---- pseudo sources ----
/// `ld_imm64` src: `imm` is a map fd.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `ld_imm64` src: `imm` is a map fd, second `imm` an offset into the map's value.
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
/// `ld_imm64` src: `imm` is a kernel BTF id of a variable.
pub const BPF_PSEUDO_BTF_ID: u8 = 3;
/// `ld_imm64` src: `imm` is a pc-relative offset to a bpf function.
pub const BPF_PSEUDO_FUNC: u8 = 4;
/// `ld_imm64` src: `imm` is an index into the program's fd array.
pub const BPF_PSEUDO_MAP_IDX: u8 = 5;
/// `ld_imm64` src: like `BPF_PSEUDO_MAP_IDX`, plus a value offset.
pub const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;
/// `call` src: `imm` is a pc-relative offset to a bpf function (bpf-to-bpf call).
pub const BPF_PSEUDO_CALL: u8 = 1;
/// `call` src: `imm` is a kernel function's BTF id (kfunc).
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

/// Number of registers `r0`..`r10`.
pub const MAX_BPF_REG: u8 = 11;
/// Frame pointer register.
pub const BPF_REG_FP: u8 = 10;
/// Stack size of one frame, as the kernel's `MAX_BPF_STACK`.
pub const MAX_BPF_STACK: usize = 512;
/// Maximum call depth, as the kernel's `MAX_CALL_FRAMES`.
pub const MAX_CALL_FRAMES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_layout_matches_kernel() {
        let i = Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 1, 2, -3, 0x1234_5678);
        assert_eq!(
            i.to_bytes(),
            [0xb7, 0x21, 0xfd, 0xff, 0x78, 0x56, 0x34, 0x12]
        );
        assert_eq!(Insn::from_bytes(i.to_bytes()), i);
        assert_eq!(i.dst(), 1);
        assert_eq!(i.src(), 2);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn bytes_round_trip() {
        assert!(insns_from_bytes(&[0; 7]).is_none());
        let v = vec![Insn::new(0x95, 0, 0, 0, 0), Insn::new(0xb7, 0, 0, 0, 7)];
        assert_eq!(insns_from_bytes(&insns_to_bytes(&v)).unwrap(), v);
    }
}

//! The pre-decoded form the interpreter runs.
//!
//! [`compile`] turns a validated program into one [`Op`] per instruction slot (so an op's index
//! is the kernel's instruction index, and errors can name it directly). Each op carries a flat
//! [`Kind`] that already fixes the class, width, operand source and operation, so the execution
//! loop is one `match` on a byte; immediates are pre-extended to the width the operation uses,
//! jump targets are absolute, and `call imm` is resolved to a slot in the helper table.
//! A peephole pass ([`fuse`]) then marks copy-then-modify pairs (`r4 = r0; r4 >>= 7`) so the
//! unchecked loop runs them as one op.

use kbpf_isa::decode::{
    AluOp, AtomicOp, CallTarget, Endian, Instruction, JmpCond, Size, Source, Width,
};

/// One flat operation kind. Names: `<op><width><K|X>`, `K` = immediate operand, `X` = register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    // ---- 64-bit ALU ----
    Add64K,
    Add64X,
    Sub64K,
    Sub64X,
    Mul64K,
    Mul64X,
    Div64K,
    Div64X,
    Sdiv64K,
    Sdiv64X,
    Mod64K,
    Mod64X,
    Smod64K,
    Smod64X,
    Or64K,
    Or64X,
    And64K,
    And64X,
    Xor64K,
    Xor64X,
    Lsh64K,
    Lsh64X,
    Rsh64K,
    Rsh64X,
    Arsh64K,
    Arsh64X,
    Mov64K,
    Mov64X,
    Neg64,
    Movsx64B,
    Movsx64H,
    Movsx64W,
    /// `dst = this_cpu_ptr(src)` (translated programs): op.imm = index of the registry's
    /// per-CPU hook in the helper table.
    MovPercpu,
    // ---- 32-bit ALU (results zero-extend) ----
    Add32K,
    Add32X,
    Sub32K,
    Sub32X,
    Mul32K,
    Mul32X,
    Div32K,
    Div32X,
    Sdiv32K,
    Sdiv32X,
    Mod32K,
    Mod32X,
    Smod32K,
    Smod32X,
    Or32K,
    Or32X,
    And32K,
    And32X,
    Xor32K,
    Xor32X,
    Lsh32K,
    Lsh32X,
    Rsh32K,
    Rsh32X,
    Arsh32K,
    Arsh32X,
    Mov32K,
    Mov32X,
    Neg32,
    Movsx32B,
    Movsx32H,
    // ---- byte order (le/be resolved against the host's endianness at compile time) ----
    /// `dst = (u16)dst`
    Zext16,
    /// `dst = (u32)dst`
    Zext32,
    Bswap16,
    Bswap32,
    Bswap64,
    /// `le64` on a little-endian host (or `be64` on a big-endian one).
    Nop,
    // ---- memory: op.src = base register for loads, op.dst for stores; op.off = offset ----
    LdxB,
    LdxH,
    LdxW,
    LdxDW,
    LdxSB,
    LdxSH,
    LdxSW,
    StB,
    StH,
    StW,
    StDW,
    StxB,
    StxH,
    StxW,
    StxDW,
    /// Atomic read-modify-write, 32-bit; op.imm = the `BPF_ATOMIC` imm encoding.
    Atomic32,
    /// Atomic read-modify-write, 64-bit.
    Atomic64,
    /// `dst = load_acquire(src + off)`; op.imm = size in bytes.
    LoadAcquire,
    /// `store_release(dst + off, src)`; op.imm = size in bytes.
    StoreRelease,
    /// `dst = imm64` (the op in the first slot; the second slot holds a `Ja` to the next insn).
    LdImm64,
    // ---- jumps: op.off = absolute target ----
    Ja,
    Jeq64K,
    Jeq64X,
    Jne64K,
    Jne64X,
    Jgt64K,
    Jgt64X,
    Jge64K,
    Jge64X,
    Jlt64K,
    Jlt64X,
    Jle64K,
    Jle64X,
    Jsgt64K,
    Jsgt64X,
    Jsge64K,
    Jsge64X,
    Jslt64K,
    Jslt64X,
    Jsle64K,
    Jsle64X,
    Jset64K,
    Jset64X,
    Jeq32K,
    Jeq32X,
    Jne32K,
    Jne32X,
    Jgt32K,
    Jgt32X,
    Jge32K,
    Jge32X,
    Jlt32K,
    Jlt32X,
    Jle32K,
    Jle32X,
    Jsgt32K,
    Jsgt32X,
    Jsge32K,
    Jsge32X,
    Jslt32K,
    Jslt32X,
    Jsle32K,
    Jsle32X,
    Jset32K,
    Jset32X,
    // ---- calls ----
    /// `call imm` to a registered helper; op.imm = index into the interpreter's helper table.
    CallHelper,
    /// `call imm` whose id had no helper when the interpreter was built; op.imm = the id.
    CallUnknown,
    /// `callx dst`: the helper id is in `dst`, looked up at run time.
    CallX,
    /// bpf-to-bpf call; op.off = absolute target.
    CallLocal,
    Exit,
    /// An instruction the interpreter refuses at run time; op.imm indexes [`UNSUPPORTED`].
    Unsupported,
    // ---- fused pairs (see [`fuse`]): `dst = src; dst <op>= imm`, covering two slots ----
    MovAdd64K,
    MovMul64K,
    MovAnd64K,
    MovLsh64K,
    MovRsh64K,
}

/// What an [`Kind::Unsupported`] op was.
pub(crate) const UNSUPPORTED: [&str; 4] = [
    "legacy ld_abs/ld_ind (needs an skb context)",
    "kfunc call",
    "per-CPU address move without a this_cpu_ptr hook",
    "may_goto outside a translated program (kbpf-rewrite turns it into a stack counter)",
];

/// One pre-decoded instruction slot: 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    pub kind: Kind,
    pub dst: u8,
    pub src: u8,
    /// Memory offset, or absolute jump/call target.
    pub off: i32,
    /// Immediate, already extended to the operation's width (sign-extended for 64-bit ops,
    /// zero-extended for 32-bit ones), or an op-specific value (see [`Kind`]).
    pub imm: u64,
}

const _: () = assert!(std::mem::size_of::<Op>() == 16);

impl Op {
    const fn new(kind: Kind, dst: u8, src: u8, off: i32, imm: u64) -> Op {
        Op {
            kind,
            dst,
            src,
            off,
            imm,
        }
    }
}

/// Resolves `call imm` helper ids: returns the index of the helper in the interpreter's table,
/// or `None` if there is no such helper.
pub(crate) trait HelperResolver {
    fn resolve(&mut self, id: i32) -> Option<u32>;
}

/// Compiles a validated program (the output of `kbpf_isa::decode::validate`) of `len` slots.
pub(crate) fn compile(
    decoded: &[(usize, Instruction)],
    len: usize,
    helpers: &mut dyn HelperResolver,
) -> Vec<Op> {
    // Slots not covered by an instruction are the second halves of ld_imm64; validation
    // guarantees no jump lands there, and execution skips them.
    let mut ops = vec![Op::new(Kind::Ja, 0, 0, 0, 0); len];
    for &(pc, ins) in decoded {
        ops[pc] = compile_one(pc, ins, helpers);
        if ins.slots() == 2 {
            ops[pc + 1] = Op::new(Kind::Ja, 0, 0, (pc + 2) as i32, 0);
        }
    }
    fuse(&mut ops);
    ops
}

/// Fuses `dst = src; dst <op>= imm` (`op` in add, mul, and, lsh, rsh; 64-bit) into one op in the
/// first slot. eBPF is two-operand, so clang emits this copy-then-modify pair constantly; fusing
/// it halves the dispatches for the pair. The second slot keeps its own op, so a jump to it still
/// works, and the checked loop executes only the `mov` half of a fused op and then falls
/// through to the second slot: Checked mode (and its instruction budget) sees the program
/// exactly as written.
fn fuse(ops: &mut [Op]) {
    for pc in 0..ops.len().saturating_sub(1) {
        let (first, second) = (ops[pc], ops[pc + 1]);
        if first.kind != Kind::Mov64X || second.dst != first.dst {
            continue;
        }
        let kind = match second.kind {
            Kind::Add64K => Kind::MovAdd64K,
            Kind::Mul64K => Kind::MovMul64K,
            Kind::And64K => Kind::MovAnd64K,
            Kind::Lsh64K => Kind::MovLsh64K,
            Kind::Rsh64K => Kind::MovRsh64K,
            _ => continue,
        };
        ops[pc] = Op::new(kind, first.dst, first.src, 0, second.imm);
    }
}

fn target(pc: usize, rel: i64) -> i32 {
    // In range: validate() checked every target lies inside the program.
    (pc as i64 + 1 + rel) as i32
}

fn compile_one(pc: usize, ins: Instruction, helpers: &mut dyn HelperResolver) -> Op {
    use Kind::*;
    match ins {
        Instruction::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let (x, sreg, imm) = match src {
                Source::Reg(r) => (true, r, 0),
                Source::Imm(i) => (
                    false,
                    0,
                    match width {
                        Width::W64 => i as i64 as u64,
                        Width::W32 => i as u32 as u64,
                    },
                ),
            };
            let pick = |k64: Kind, x64: Kind, k32: Kind, x32: Kind| match (width, x) {
                (Width::W64, false) => k64,
                (Width::W64, true) => x64,
                (Width::W32, false) => k32,
                (Width::W32, true) => x32,
            };
            let kind = match op {
                AluOp::Add => pick(Add64K, Add64X, Add32K, Add32X),
                AluOp::Sub => pick(Sub64K, Sub64X, Sub32K, Sub32X),
                AluOp::Mul => pick(Mul64K, Mul64X, Mul32K, Mul32X),
                AluOp::Div => pick(Div64K, Div64X, Div32K, Div32X),
                AluOp::Sdiv => pick(Sdiv64K, Sdiv64X, Sdiv32K, Sdiv32X),
                AluOp::Mod => pick(Mod64K, Mod64X, Mod32K, Mod32X),
                AluOp::Smod => pick(Smod64K, Smod64X, Smod32K, Smod32X),
                AluOp::Or => pick(Or64K, Or64X, Or32K, Or32X),
                AluOp::And => pick(And64K, And64X, And32K, And32X),
                AluOp::Xor => pick(Xor64K, Xor64X, Xor32K, Xor32X),
                AluOp::Lsh => pick(Lsh64K, Lsh64X, Lsh32K, Lsh32X),
                AluOp::Rsh => pick(Rsh64K, Rsh64X, Rsh32K, Rsh32X),
                AluOp::Arsh => pick(Arsh64K, Arsh64X, Arsh32K, Arsh32X),
                AluOp::Mov => pick(Mov64K, Mov64X, Mov32K, Mov32X),
                AluOp::Neg => pick(Neg64, Neg64, Neg32, Neg32),
                AluOp::MovPercpu => {
                    // Resolved like a helper: the embedder's `this_cpu_ptr`.
                    return match helpers.resolve(crate::helpers::THIS_CPU_PTR_ID) {
                        Some(idx) => Op::new(MovPercpu, dst, sreg, 0, idx as u64),
                        None => Op::new(Unsupported, 0, 0, 0, 2),
                    };
                }
                AluOp::Movsx(bits) => match (width, bits) {
                    (Width::W64, 8) => Movsx64B,
                    (Width::W64, 16) => Movsx64H,
                    (Width::W64, _) => Movsx64W,
                    (Width::W32, 8) => Movsx32B,
                    // decode only admits 8 and 16 for the 32-bit form
                    (Width::W32, _) => Movsx32H,
                },
            };
            Op::new(kind, dst, sreg, 0, imm)
        }
        Instruction::Endian { kind, bits, dst } => {
            let le_host = cfg!(target_endian = "little");
            // Converting to the host's own byte order only truncates (zero-extends) to the
            // width; converting to the other order swaps.
            let swap = match kind {
                Endian::Bswap => true,
                Endian::Le => !le_host,
                Endian::Be => le_host,
            };
            let k = match (bits, swap) {
                (16, false) => Zext16,
                (32, false) => Zext32,
                (_, false) => Nop,
                (16, true) => Bswap16,
                (32, true) => Bswap32,
                (_, true) => Bswap64,
            };
            Op::new(k, dst, 0, 0, 0)
        }
        Instruction::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            let k = match (size, signed) {
                (Size::B, false) => LdxB,
                (Size::H, false) => LdxH,
                (Size::W, false) => LdxW,
                (Size::DW, _) => LdxDW,
                (Size::B, true) => LdxSB,
                (Size::H, true) => LdxSH,
                (Size::W, true) => LdxSW,
            };
            Op::new(k, dst, src, off as i32, 0)
        }
        Instruction::Store {
            size,
            dst,
            off,
            src,
        } => match src {
            Source::Imm(imm) => {
                let k = match size {
                    Size::B => StB,
                    Size::H => StH,
                    Size::W => StW,
                    Size::DW => StDW,
                };
                // sign-extended: a DW store of imm stores the 64-bit sign extension
                Op::new(k, dst, 0, off as i32, imm as i64 as u64)
            }
            Source::Reg(r) => {
                let k = match size {
                    Size::B => StxB,
                    Size::H => StxH,
                    Size::W => StxW,
                    Size::DW => StxDW,
                };
                Op::new(k, dst, r, off as i32, 0)
            }
        },
        Instruction::Atomic {
            size,
            op,
            dst,
            src,
            off,
        } => match op {
            AtomicOp::LoadAcquire => {
                Op::new(LoadAcquire, dst, src, off as i32, size.bytes() as u64)
            }
            AtomicOp::StoreRelease => {
                Op::new(StoreRelease, dst, src, off as i32, size.bytes() as u64)
            }
            _ => {
                let k = if size == Size::DW { Atomic64 } else { Atomic32 };
                Op::new(k, dst, src, off as i32, op.imm() as u32 as u64)
            }
        },
        Instruction::LdImm64 {
            dst,
            src: _,
            imm,
            next_imm,
        } => {
            // For every pseudo source the value is the two imms combined: by the time a program
            // runs, the rewrite has replaced map fds/indices with addresses.
            let v = (imm as u32 as u64) | ((next_imm as u32 as u64) << 32);
            Op::new(LdImm64, dst, 0, 0, v)
        }
        Instruction::LdPacket { .. } => Op::new(Unsupported, 0, 0, 0, 0),
        Instruction::Ja { off, .. } => Op::new(Ja, 0, 0, target(pc, off as i64), 0),
        // The loop budget lives in a stack slot only the rewrite allocates.
        Instruction::MayGoto { .. } => Op::new(Unsupported, 0, 0, 0, 3),
        Instruction::Jmp {
            width,
            cond,
            dst,
            src,
            off,
        } => {
            let (x, sreg, imm) = match src {
                Source::Reg(r) => (true, r, 0),
                Source::Imm(i) => (
                    false,
                    0,
                    match width {
                        Width::W64 => i as i64 as u64,
                        Width::W32 => i as u32 as u64,
                    },
                ),
            };
            let pick = |k64: Kind, x64: Kind, k32: Kind, x32: Kind| match (width, x) {
                (Width::W64, false) => k64,
                (Width::W64, true) => x64,
                (Width::W32, false) => k32,
                (Width::W32, true) => x32,
            };
            let kind = match cond {
                JmpCond::Eq => pick(Jeq64K, Jeq64X, Jeq32K, Jeq32X),
                JmpCond::Ne => pick(Jne64K, Jne64X, Jne32K, Jne32X),
                JmpCond::Gt => pick(Jgt64K, Jgt64X, Jgt32K, Jgt32X),
                JmpCond::Ge => pick(Jge64K, Jge64X, Jge32K, Jge32X),
                JmpCond::Lt => pick(Jlt64K, Jlt64X, Jlt32K, Jlt32X),
                JmpCond::Le => pick(Jle64K, Jle64X, Jle32K, Jle32X),
                JmpCond::Sgt => pick(Jsgt64K, Jsgt64X, Jsgt32K, Jsgt32X),
                JmpCond::Sge => pick(Jsge64K, Jsge64X, Jsge32K, Jsge32X),
                JmpCond::Slt => pick(Jslt64K, Jslt64X, Jslt32K, Jslt32X),
                JmpCond::Sle => pick(Jsle64K, Jsle64X, Jsle32K, Jsle32X),
                JmpCond::Set => pick(Jset64K, Jset64X, Jset32K, Jset32X),
            };
            Op::new(kind, dst, sreg, target(pc, off as i64), imm)
        }
        Instruction::Call(t) => match t {
            CallTarget::Helper(id) => match helpers.resolve(id) {
                Some(idx) => Op::new(CallHelper, 0, 0, 0, idx as u64),
                None => Op::new(CallUnknown, 0, 0, 0, id as i64 as u64),
            },
            CallTarget::Local(rel) => Op::new(CallLocal, 0, 0, target(pc, rel as i64), 0),
            CallTarget::Reg(r) => Op::new(CallX, r, 0, 0, 0),
            CallTarget::Kfunc { .. } => Op::new(Unsupported, 0, 0, 0, 1),
        },
        Instruction::Exit => Op::new(Exit, 0, 0, 0, 0),
    }
}

//! The structured program generator of the kernel-differential fuzzer.
//!
//! Programs are built from self-contained snippets (scalar ALU blocks, forward branches,
//! stack spills and fills, packet bounds checks with packet accesses, map lookups with NULL
//! checks and value accesses at constant or computed offsets, map-in-map lookups, map
//! updates, atomics, helper calls, bounded loops, bpf-to-bpf calls) so that the kernel
//! accepts a good share, plus deliberate near-misses (off-by-one bounds, missing NULL
//! checks, uninitialised registers, misaligned stack accesses, bad shift amounts…) and a
//! few point mutations so that both verdicts occur.
//!
//! Register conventions inside a body: r6 holds the context, r7..r9 are scalar variables
//! that live across snippets, r0..r5 are scratch (clobbered by helper calls).

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

/// Deterministic xorshift64* generator.
pub struct Rng(u64);

impl Rng {
    /// A generator for program `index` of the run seeded with `seed` (splitmix64 mixing, so
    /// every program can be regenerated on its own).
    pub fn for_program(seed: u64, index: u64) -> Rng {
        let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(z | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One map of the fixed set every program may reference (`lddw rN, map:NAME`, imm = index).
#[derive(Clone, Copy, Debug)]
pub struct FuzzMap {
    pub name: &'static str,
    pub type_name: &'static str,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner: Option<usize>,
}

const fn m(
    name: &'static str,
    type_name: &'static str,
    map_type: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner: Option<usize>,
) -> FuzzMap {
    FuzzMap {
        name,
        type_name,
        map_type,
        key_size: 4,
        value_size,
        max_entries,
        map_flags,
        inner,
    }
}

pub const ARR: usize = 0;
pub const HASH: usize = 1;
pub const AOM: usize = 3;
pub const AOMF: usize = 5;
pub const HOM: usize = 6;
pub const INNER_VALUE: i32 = 8;
pub const VALUE: i32 = 16;

/// The maps, in creation order (templates before their outer maps).
pub const MAPS: [FuzzMap; 7] = [
    m("arr", "array", 2, 16, 4, 0, None),
    m("h", "hash", 1, 16, 8, 0, None),
    m("inner_t", "array", 2, 8, 4, 0, None),
    m("aom", "array_of_maps", 12, 4, 2, 0, Some(2)),
    m("inner_f", "array", 2, 8, 4, 0x1000, None),
    m("aomf", "array_of_maps", 12, 4, 2, 0, Some(4)),
    m("hom", "hash_of_maps", 13, 4, 2, 0, Some(2)),
];

/// A generated program: type (6 XDP, 3 sched_cls) and instructions.
#[derive(Clone, Debug)]
pub struct Prog {
    pub prog_type: u32,
    pub insns: Vec<Insn>,
}

const VARS: [u8; 3] = [7, 8, 9];
const INTERESTING: [i32; 24] = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    12,
    15,
    16,
    31,
    32,
    63,
    64,
    255,
    256,
    0xffff,
    -1,
    -2,
    -8,
    -16,
    i32::MIN,
    i32::MAX,
    0x7fff,
];

fn alu(class: u8, op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(class | op | BPF_K, dst, 0, 0, imm)
}
fn alu_x(class: u8, op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(class | op | BPF_X, dst, src, 0, 0)
}
fn mov(dst: u8, imm: i32) -> Insn {
    alu(BPF_ALU64, BPF_MOV, dst, imm)
}
fn mov_x(dst: u8, src: u8) -> Insn {
    alu_x(BPF_ALU64, BPF_MOV, dst, src)
}
fn add(dst: u8, imm: i32) -> Insn {
    alu(BPF_ALU64, BPF_ADD, dst, imm)
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0)
}
fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_STX | BPF_MEM | size, dst, src, off, 0)
}
fn st(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(BPF_ST | BPF_MEM | size, dst, 0, off, imm)
}
fn call(id: i32) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id)
}
fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}
fn size_bytes(size: u8) -> i32 {
    match size {
        BPF_B => 1,
        BPF_H => 2,
        BPF_W => 4,
        _ => 8,
    }
}

const SIZES: [u8; 4] = [BPF_B, BPF_H, BPF_W, BPF_DW];
const CONDS: [u8; 11] = [
    BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE, BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE,
    BPF_JSET,
];

struct Gen<'a> {
    rng: &'a mut Rng,
    xdp: bool,
    /// Bodies: 0 is the main program, then the subprograms.
    bodies: Vec<Vec<Insn>>,
    cur: usize,
    nsubs: usize,
    /// (body, index, callee body) of each `call local`.
    calls: Vec<(usize, usize, usize)>,
}

/// Generates one program.
pub fn generate(rng: &mut Rng) -> Prog {
    let xdp = rng.chance(2, 3);
    let nsubs = match rng.below(10) {
        0..=6 => 0,
        7 | 8 => 1,
        _ => 2,
    };
    let mut g = Gen {
        rng,
        xdp,
        bodies: vec![Vec::new(); nsubs + 1],
        cur: 0,
        nsubs,
        calls: Vec::new(),
    };
    g.main();
    for s in 1..=nsubs {
        g.cur = s;
        g.subprog();
    }
    let mut starts = Vec::new();
    let mut insns = Vec::new();
    for b in &g.bodies {
        starts.push(insns.len());
        insns.extend_from_slice(b);
    }
    for &(b, i, callee) in &g.calls {
        let at = starts[b] + i;
        insns[at].imm = starts[callee] as i32 - at as i32 - 1;
    }
    let mut p = Prog {
        prog_type: if xdp { 6 } else { 3 },
        insns,
    };
    // No mutations where a loop is: a nudged counter makes it run into the 1M-insn limit,
    // which costs the kernel seconds.
    let has_loop =
        (0..p.insns.len()).any(|i| rel_target(&p.insns, i).is_some_and(|t| t <= i as i64));
    if !has_loop && g.rng.chance(1, 4) {
        let n = 1 + g.rng.below(2);
        for _ in 0..n {
            mutate(g.rng, &mut p.insns);
        }
    }
    p
}

impl Gen<'_> {
    fn push(&mut self, i: Insn) {
        self.bodies[self.cur].push(i);
    }
    fn len(&self) -> usize {
        self.bodies[self.cur].len()
    }
    fn ld_map(&mut self, dst: u8, map: usize) {
        self.push(Insn::new(
            BPF_LD | BPF_IMM | BPF_DW,
            dst,
            BPF_PSEUDO_MAP_FD,
            0,
            map as i32,
        ));
        self.push(Insn::new(0, 0, 0, 0, 0));
    }
    /// A placeholder forward jump; `patch` points it past what was emitted since.
    fn jump_placeholder(&mut self, i: Insn) -> usize {
        self.push(i);
        self.len() - 1
    }
    fn patch(&mut self, at: usize) {
        let off = (self.len() - at - 1) as i16;
        self.bodies[self.cur][at].off = off;
    }
    fn var(&mut self) -> u8 {
        self.rng.pick(&VARS)
    }
    fn imm(&mut self) -> i32 {
        if self.rng.chance(1, 8) {
            self.rng.next() as i32
        } else {
            self.rng.pick(&INTERESTING)
        }
    }
    fn ctx_off(&self) -> (i16, i16) {
        if self.xdp { (0, 4) } else { (76, 80) }
    }
    fn ctx_scalar_field(&mut self) -> i16 {
        if self.xdp {
            self.rng.pick(&[12, 16])
        } else {
            self.rng.pick(&[0, 8, 16, 32, 40])
        }
    }

    fn init_var(&mut self, v: u8) {
        match self.rng.below(100) {
            0..=39 => {
                let i = self.imm();
                self.push(mov(v, i))
            }
            40..=69 => {
                let f = self.ctx_scalar_field();
                self.push(ldx(BPF_W, v, 6, f))
            }
            70..=84 => {
                let h = self.rng.pick(&[5, 7]);
                self.push(call(h));
                self.push(mov_x(v, 0));
            }
            85..=96 => self.push(mov(v, 0)),
            _ => {} // near-miss: left uninitialised
        }
    }

    fn main(&mut self) {
        self.push(mov_x(6, 1));
        for v in VARS {
            self.init_var(v);
        }
        let n = 1 + self.rng.below(7);
        for _ in 0..n {
            self.snippet(0);
        }
        // Every subprogram is called (an uncalled one is unreachable code).
        for s in 1..=self.nsubs {
            if !self.calls.iter().any(|c| c.2 == s) {
                self.call_to(s);
            }
        }
        if !self.rng.chance(1, 40) {
            let r = self.rng.below(4) as i32;
            self.push(mov(0, r));
        }
        self.push(exit());
    }

    fn subprog(&mut self) {
        // r1 = ctx, r2 = scalar, r3 = pointer to the caller's initialised stack slot.
        if !self.rng.chance(1, 30) {
            self.push(mov_x(6, 1));
        }
        if !self.rng.chance(1, 30) {
            self.push(mov_x(7, 2));
        }
        if !self.rng.chance(1, 30) {
            self.push(ldx(BPF_DW, 8, 3, 0));
        }
        self.push(mov(9, 1));
        let n = 1 + self.rng.below(4);
        for _ in 0..n {
            self.snippet(1);
        }
        if !self.rng.chance(1, 30) {
            let v = self.var();
            self.push(mov_x(0, v));
        }
        self.push(exit());
    }

    fn snippet(&mut self, depth: u32) {
        match self.rng.below(100) {
            0..=15 => self.alu_block(),
            16..=25 => self.branch_block(depth),
            26..=35 => self.stack_block(),
            36..=49 => self.packet_block(),
            50..=63 => self.map_block(),
            64..=69 => self.update_block(),
            70..=77 => self.mim_block(),
            78..=83 => self.atomic_stack(),
            84..=90 => self.helper_block(),
            91..=94 => self.loop_block(),
            _ => self.call_block(),
        }
    }

    fn alu_op(&mut self, dst: u8) {
        let is64 = self.rng.chance(3, 4);
        let class = if is64 { BPF_ALU64 } else { BPF_ALU };
        let bits = if is64 { 64 } else { 32 };
        let op = self.rng.pick(&[
            BPF_ADD, BPF_ADD, BPF_SUB, BPF_SUB, BPF_AND, BPF_AND, BPF_OR, BPF_LSH, BPF_RSH,
            BPF_RSH, BPF_ARSH, BPF_XOR, BPF_MUL, BPF_MOV, BPF_NEG, BPF_DIV, BPF_MOD,
        ]);
        if op == BPF_NEG {
            self.push(Insn::new(class | BPF_NEG, dst, 0, 0, 0));
            return;
        }
        if self.rng.chance(1, 3) {
            // Register source: another variable (rarely the context pointer: a near-miss).
            let src = if self.rng.chance(1, 40) {
                6
            } else {
                self.var()
            };
            self.push(alu_x(class, op, dst, src));
            return;
        }
        let imm = match op {
            BPF_LSH | BPF_RSH | BPF_ARSH => {
                if self.rng.chance(1, 25) {
                    bits
                } else {
                    self.rng.below(bits as u64) as i32
                }
            }
            BPF_DIV | BPF_MOD => {
                if self.rng.chance(1, 25) {
                    0
                } else {
                    self.rng.pick(&[1, 2, 3, 7, 8, 16, 255, -1])
                }
            }
            _ => self.imm(),
        };
        self.push(alu(class, op, dst, imm));
    }

    fn alu_block(&mut self) {
        let v = self.var();
        let n = 1 + self.rng.below(4);
        for _ in 0..n {
            self.alu_op(v);
        }
    }

    fn cond_jump(&mut self, v: u8) -> Insn {
        let cond = self.rng.pick(&CONDS);
        let class = if self.rng.chance(1, 4) {
            BPF_JMP32
        } else {
            BPF_JMP
        };
        if self.rng.chance(1, 4) {
            let s = self.var();
            Insn::new(class | cond | BPF_X, v, s, 0, 0)
        } else {
            let imm = self.imm();
            Insn::new(class | cond | BPF_K, v, 0, 0, imm)
        }
    }

    fn branch_block(&mut self, depth: u32) {
        let v = self.var();
        let j = self.cond_jump(v);
        let at = self.jump_placeholder(j);
        if depth < 2 && self.rng.chance(1, 2) {
            self.snippet(depth + 1);
        } else {
            let n = 1 + self.rng.below(3);
            for _ in 0..n {
                let d = self.var();
                self.alu_op(d);
            }
        }
        self.patch(at);
    }

    fn stack_slot(&mut self) -> i16 {
        -8 * (1 + self.rng.below(8) as i16)
    }

    fn stack_block(&mut self) {
        let slot = self.stack_slot();
        match self.rng.below(6) {
            0 | 1 => {
                let v = self.var();
                self.push(stx(BPF_DW, 10, v, slot));
                if self.rng.chance(1, 2) {
                    let d = self.var();
                    self.alu_op(d);
                }
                let d = self.var();
                self.push(ldx(BPF_DW, d, 10, slot));
            }
            2 => {
                let size = self.rng.pick(&SIZES);
                let n = size_bytes(size) as i16;
                let off = slot + self.rng.below((8 / n) as u64) as i16 * n;
                let imm = self.imm();
                self.push(st(size, 10, off, imm));
                let d = self.var();
                let lsize = self.rng.pick(&SIZES);
                let ln = size_bytes(lsize) as i16;
                self.push(ldx(lsize, d, 10, slot + (8 - ln).min(off - slot)));
            }
            3 => {
                // Spill and fill of the context pointer, then a field read through it.
                self.push(stx(BPF_DW, 10, 6, slot));
                let fill = if self.rng.chance(1, 15) {
                    BPF_W
                } else {
                    BPF_DW
                };
                self.push(ldx(fill, 1, 10, slot));
                let f = self.ctx_scalar_field();
                self.push(ldx(BPF_W, 0, 1, f));
                if self.rng.chance(1, 2) {
                    let d = self.var();
                    self.push(mov_x(d, 0));
                }
            }
            4 => {
                // Read of a slot that may never have been written (allowed for root).
                let d = self.var();
                self.push(ldx(BPF_DW, d, 10, slot));
            }
            _ => {
                // Near-misses: misaligned or outside the frame.
                let off = self.rng.pick(&[slot + 1, slot + 4, -516, -520, 0, 8]);
                let size = self.rng.pick(&SIZES);
                let v = self.var();
                if self.rng.chance(1, 2) {
                    self.push(stx(size, 10, v, off));
                } else {
                    self.push(ldx(size, v, 10, off));
                }
            }
        }
    }

    fn packet_block(&mut self) {
        let (doff, eoff) = self.ctx_off();
        self.push(ldx(BPF_W, 2, 6, doff));
        self.push(ldx(BPF_W, 3, 6, eoff));
        if self.rng.chance(1, 3) {
            let v = self.var();
            self.push(mov_x(5, v));
            if !self.rng.chance(1, 10) {
                let mask = self.rng.pick(&[1, 3, 7, 15, 63, 255, 0xfff]);
                self.push(alu(BPF_ALU64, BPF_AND, 5, mask));
            }
            self.push(alu_x(BPF_ALU64, BPF_ADD, 2, 5));
        }
        let n = 1 + self.rng.below(64) as i32;
        self.push(mov_x(4, 2));
        self.push(add(4, n));
        let missing = self.rng.chance(1, 15);
        let at = if missing {
            None
        } else {
            let j = match self.rng.below(4) {
                0 | 1 => Insn::new(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 0, 0),
                2 => Insn::new(BPF_JMP | BPF_JLT | BPF_X, 3, 4, 0, 0),
                _ => Insn::new(BPF_JMP | BPF_JGE | BPF_X, 4, 3, 0, 0),
            };
            Some(self.jump_placeholder(j))
        };
        let k = 1 + self.rng.below(3);
        for _ in 0..k {
            let mut size = self.rng.pick(&SIZES);
            while size_bytes(size) > n {
                size = BPF_B;
            }
            let s = size_bytes(size);
            let mut off = self.rng.below((n - s + 1) as u64) as i32;
            if self.rng.chance(1, 8) {
                off = n - s + 1;
            }
            let off = off as i16;
            match self.rng.below(4) {
                0 | 1 => {
                    let d = if self.rng.chance(1, 2) { 0 } else { self.var() };
                    self.push(ldx(size, d, 2, off));
                }
                2 => {
                    let imm = self.imm();
                    self.push(st(size, 2, off, imm));
                }
                _ => {
                    let v = self.var();
                    self.push(stx(size, 2, v, off));
                }
            }
        }
        if let Some(at) = at {
            self.patch(at);
        }
    }

    fn key(&mut self, slot: i16, max: i32) {
        match self.rng.below(10) {
            0..=5 => {
                let k = if self.rng.chance(1, 6) {
                    max
                } else {
                    self.rng.below(max as u64) as i32
                };
                self.push(st(BPF_W, 10, slot, k));
            }
            6..=8 => {
                let v = self.var();
                self.push(stx(BPF_W, 10, v, slot));
            }
            _ => {} // whatever the slot holds (uninitialised is allowed for root)
        }
    }

    /// Accesses through a map value pointer in `reg` of `vs` bytes.
    fn value_access(&mut self, reg: u8, vs: i32) {
        match self.rng.below(8) {
            0..=2 => {
                let size = self.rng.pick(&SIZES);
                let s = size_bytes(size);
                let mut off = self.rng.below((vs - s + 1) as u64) as i32;
                if self.rng.chance(1, 8) {
                    off = self.rng.pick(&[vs - s + 1, -1, vs]);
                }
                match self.rng.below(3) {
                    0 => {
                        let d = self.var();
                        self.push(ldx(size, d, reg, off as i16));
                    }
                    1 => {
                        let v = self.var();
                        self.push(stx(size, reg, v, off as i16));
                    }
                    _ => {
                        let imm = self.imm();
                        self.push(st(size, reg, off as i16, imm));
                    }
                }
            }
            3..=5 => {
                // Computed offset: r1 = var & mask (or var guarded by a branch).
                let v = self.var();
                self.push(mov_x(1, v));
                let size = self.rng.pick(&SIZES);
                let s = size_bytes(size);
                let room = vs - s; // largest offset allowed
                let guard = self.rng.chance(1, 3);
                let mut at = None;
                let bound;
                if guard {
                    let mut b = self.rng.below((room + 1) as u64) as i32;
                    if self.rng.chance(1, 6) {
                        b += 1;
                    }
                    bound = b;
                    let j = if self.rng.chance(1, 2) {
                        Insn::new(BPF_JMP | BPF_JGT | BPF_K, 1, 0, 0, b)
                    } else {
                        Insn::new(BPF_JMP | BPF_JGE | BPF_K, 1, 0, 0, b + 1)
                    };
                    at = Some(self.jump_placeholder(j));
                } else {
                    let mask = self.rng.pick(&[0, 1, 3, 7, 8, 15]);
                    bound = mask;
                    if !self.rng.chance(1, 12) {
                        let class = if self.rng.chance(1, 3) {
                            BPF_ALU
                        } else {
                            BPF_ALU64
                        };
                        self.push(alu(class, BPF_AND, 1, mask));
                    }
                }
                self.push(mov_x(3, reg));
                self.push(alu_x(BPF_ALU64, BPF_ADD, 3, 1));
                let mut off = if bound <= room {
                    self.rng.below((room - bound + 1) as u64) as i32
                } else {
                    0
                };
                if self.rng.chance(1, 10) {
                    off += 1;
                }
                if self.rng.chance(1, 2) {
                    self.push(ldx(size, 4, 3, off as i16));
                } else {
                    let v2 = self.var();
                    self.push(stx(size, 3, v2, off as i16));
                }
                if let Some(at) = at {
                    self.patch(at);
                }
            }
            6 => {
                // Atomic on the value.
                let w = self.rng.chance(1, 2);
                let s = if w { 4 } else { 8 };
                let mut off = s * self.rng.below((vs / s) as u64) as i32;
                if self.rng.chance(1, 8) {
                    off += 2;
                }
                let v = self.var();
                self.atomic(reg, off as i16, w, v);
            }
            _ => {
                // Spill and fill of the value pointer.
                let slot = self.stack_slot();
                self.push(stx(BPF_DW, 10, reg, slot));
                self.push(ldx(BPF_DW, 3, 10, slot));
                let d = self.var();
                self.push(ldx(BPF_W, d, 3, 0));
            }
        }
    }

    fn atomic(&mut self, dst: u8, off: i16, w: bool, src: u8) {
        let size = if w { BPF_W } else { BPF_DW };
        let op = self.rng.pick(&[
            BPF_ADD as i32,
            BPF_AND as i32,
            BPF_OR as i32,
            BPF_XOR as i32,
            BPF_XCHG,
            BPF_CMPXCHG,
        ]);
        let op = if op == BPF_XCHG || op == BPF_CMPXCHG || !self.rng.chance(1, 2) {
            op
        } else {
            op | BPF_FETCH
        };
        let mut dst = dst;
        if op == BPF_CMPXCHG {
            // cmpxchg compares with r0: move an r0 base elsewhere first (mostly).
            if dst == 0 && !self.rng.chance(1, 10) {
                self.push(mov_x(3, 0));
                dst = 3;
            }
            let v = self.var();
            self.push(mov_x(0, v));
        }
        self.push(Insn::new(BPF_STX | BPF_ATOMIC | size, dst, src, off, op));
    }

    fn lookup(&mut self, map: usize, key_slot: i16, max: i32) {
        self.key(key_slot, max);
        self.push(mov_x(2, 10));
        self.push(add(2, key_slot as i32));
        self.ld_map(1, map);
        self.push(call(1));
    }

    fn null_check(&mut self) -> Option<usize> {
        if self.rng.chance(1, 12) {
            None
        } else {
            Some(self.jump_placeholder(Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0)))
        }
    }

    fn map_block(&mut self) {
        let map = if self.rng.chance(1, 20) {
            self.rng.pick(&[AOM, HOM])
        } else {
            self.rng.pick(&[ARR, HASH])
        };
        self.lookup(map, -4, MAPS[map].max_entries as i32);
        let at = self.null_check();
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            self.value_access(0, VALUE);
        }
        if let Some(at) = at {
            self.patch(at);
        }
    }

    fn update_block(&mut self) {
        let map = self.rng.pick(&[ARR, HASH, ARR, HASH, 2, AOM]);
        self.key(-4, MAPS[map].max_entries as i32);
        if !self.rng.chance(1, 6) {
            let a = self.imm();
            let b = self.imm();
            self.push(st(BPF_DW, 10, -24, a));
            self.push(st(BPF_DW, 10, -16, b));
        }
        self.push(mov_x(2, 10));
        self.push(add(2, -4));
        let delete = self.rng.chance(1, 4);
        if !delete {
            self.push(mov_x(3, 10));
            self.push(add(3, -24));
            let flags = if self.rng.chance(1, 15) {
                7
            } else {
                self.rng.below(3) as i32
            };
            self.push(mov(4, flags));
        }
        self.ld_map(1, map);
        self.push(call(if delete { 3 } else { 2 }));
        if self.rng.chance(1, 3) {
            let v = self.var();
            self.push(mov_x(v, 0));
        }
    }

    fn mim_block(&mut self) {
        let outer = self.rng.pick(&[AOM, AOMF, HOM]);
        self.lookup(outer, -4, 2);
        let at = self.null_check();
        if self.rng.chance(1, 15) {
            // Near-miss: the outer value used as memory.
            self.push(ldx(BPF_W, 1, 0, 0));
        }
        self.push(mov_x(1, 0));
        self.key(-8, 4);
        self.push(mov_x(2, 10));
        self.push(add(2, -8));
        self.push(call(1));
        let at2 = self.null_check();
        let n = 1 + self.rng.below(2);
        for _ in 0..n {
            self.value_access(0, INNER_VALUE);
        }
        if let Some(at2) = at2 {
            self.patch(at2);
        }
        if let Some(at) = at {
            self.patch(at);
        }
    }

    fn atomic_stack(&mut self) {
        let slot = -16;
        if !self.rng.chance(1, 8) {
            let imm = self.imm();
            self.push(st(BPF_DW, 10, slot, imm));
        }
        let w = self.rng.chance(1, 2);
        let mut off = slot;
        if w && self.rng.chance(1, 2) {
            off += 4;
        }
        if self.rng.chance(1, 10) {
            off += 2;
        }
        let src = if self.rng.chance(1, 15) {
            6
        } else {
            self.var()
        };
        self.atomic(10, off, w, src);
        if self.rng.chance(1, 2) {
            let d = self.var();
            self.push(ldx(BPF_DW, d, 10, slot));
        }
    }

    fn helper_block(&mut self) {
        match self.rng.below(5) {
            0 | 1 => {
                let h = self.rng.pick(&[5, 7, 8]);
                self.push(call(h));
                let v = self.var();
                self.push(mov_x(v, 0));
            }
            _ => {
                // bpf_csum_diff(from, from_size, to, to_size, seed)
                if !self.rng.chance(1, 6) {
                    self.push(st(BPF_DW, 10, -40, 0));
                    self.push(st(BPF_DW, 10, -32, 0));
                }
                let from = self.rng.chance(3, 4);
                if from {
                    self.push(mov_x(1, 10));
                    self.push(add(1, -40));
                    if self.rng.chance(1, 4) {
                        let v = self.var();
                        self.push(mov_x(2, v));
                        if !self.rng.chance(1, 8) {
                            self.push(alu(BPF_ALU64, BPF_AND, 2, 15));
                        }
                    } else {
                        let sz = self.rng.pick(&[0, 4, 8, 12, 16, 16, 20, 44]);
                        self.push(mov(2, sz));
                    }
                } else {
                    self.push(mov(1, 0));
                    self.push(mov(2, 0));
                }
                if self.rng.chance(1, 2) {
                    self.push(mov_x(3, 10));
                    self.push(add(3, -32));
                    let sz = self.rng.pick(&[0, 4, 8, 16, 36]);
                    self.push(mov(4, sz));
                } else {
                    self.push(mov(3, 0));
                    self.push(mov(4, 0));
                }
                let v = self.var();
                self.push(mov_x(5, v));
                self.push(call(28));
                let d = self.var();
                self.push(mov_x(d, 0));
            }
        }
    }

    fn loop_block(&mut self) {
        let n = 1 + self.rng.below(12) as i32;
        let step = 1 + self.rng.below(2) as i32;
        self.push(mov(1, 0));
        let start = self.len();
        self.push(add(1, step));
        let k = 1 + self.rng.below(3);
        for _ in 0..k {
            let v = self.var();
            self.alu_op(v);
        }
        let back = start as i64 - self.len() as i64 - 1;
        self.push(Insn::new(BPF_JMP | BPF_JLT | BPF_K, 1, 0, back as i16, n));
    }

    fn call_block(&mut self) {
        let callee = self.cur + 1 + self.rng.below(3) as usize;
        if callee > self.nsubs {
            self.alu_block();
            return;
        }
        self.call_to(callee);
    }

    fn call_to(&mut self, callee: usize) {
        if !self.rng.chance(1, 20) {
            let imm = self.imm();
            self.push(st(BPF_DW, 10, -8, imm));
        }
        self.push(mov_x(1, 6));
        let v = self.var();
        self.push(mov_x(2, v));
        self.push(mov_x(3, 10));
        self.push(add(3, -8));
        self.push(Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0));
        self.calls.push((self.cur, self.len() - 1, callee));
        if self.rng.chance(1, 2) {
            let d = self.var();
            self.push(mov_x(d, 0));
        }
    }
}

/// Whether `i` is a jump or `call local` with a relative target, and its offset.
pub fn rel_target(insns: &[Insn], i: usize) -> Option<i64> {
    let x = insns[i];
    let class = x.class();
    if class != BPF_JMP && class != BPF_JMP32 {
        return None;
    }
    let op = x.code & 0xf0;
    if op == BPF_EXIT {
        return None;
    }
    if op == BPF_CALL {
        return (x.src() == BPF_PSEUDO_CALL).then_some(i as i64 + 1 + x.imm as i64);
    }
    Some(i as i64 + 1 + x.off as i64)
}

/// Removes the instruction at `i` (both slots of an `ld_imm64`), keeping every other jump
/// pointing at the same instruction (a jump to `i` then lands on what followed it).
pub fn remove(insns: &mut Vec<Insn>, i: usize) {
    let w = if insns[i].is_ld_imm64() { 2 } else { 1 };
    let targets: Vec<Option<i64>> = (0..insns.len()).map(|j| rel_target(insns, j)).collect();
    let new = |x: i64| {
        if x > i as i64 {
            (x - w as i64).max(i as i64)
        } else {
            x
        }
    };
    for (j, t) in targets.iter().enumerate() {
        if let Some(t) = *t
            && (j < i || j >= i + w)
        {
            let nj = new(j as i64);
            let rel = new(t) - nj - 1;
            if insns[j].code & 0xf0 == BPF_CALL {
                insns[j].imm = rel as i32;
            } else {
                insns[j].off = rel as i16;
            }
        }
    }
    insns.drain(i..(i + w).min(insns.len()));
}

/// Inserts `x` before `i`, keeping jumps on their instructions.
fn insert(insns: &mut Vec<Insn>, i: usize, x: Insn) {
    let targets: Vec<Option<i64>> = (0..insns.len()).map(|j| rel_target(insns, j)).collect();
    let new = |y: i64| if y >= i as i64 { y + 1 } else { y };
    for (j, t) in targets.iter().enumerate() {
        if let Some(t) = *t {
            let rel = new(t) - new(j as i64) - 1;
            if insns[j].code & 0xf0 == BPF_CALL {
                insns[j].imm = rel as i32;
            } else {
                insns[j].off = rel as i16;
            }
        }
    }
    insns.insert(i, x);
}

/// Indices of instructions that are not the second slot of an `ld_imm64`.
pub fn starts(insns: &[Insn]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < insns.len() {
        v.push(i);
        i += if insns[i].is_ld_imm64() { 2 } else { 1 };
    }
    v
}

/// One point mutation: an offset or immediate nudged, a register changed, an instruction
/// dropped or duplicated.
fn mutate(rng: &mut Rng, insns: &mut Vec<Insn>) {
    let st = starts(insns);
    let i = rng.pick(&st);
    let x = insns[i];
    if x.is_ld_imm64() {
        return;
    }
    let class = x.class();
    match rng.below(5) {
        0 if matches!(class, BPF_LDX | BPF_ST | BPF_STX) => {
            insns[i].off = x.off.wrapping_add(rng.pick(&[-1, 1, -4, 4, -8, 8]));
        }
        1 if matches!(class, BPF_ALU | BPF_ALU64 | BPF_ST)
            || (matches!(class, BPF_JMP | BPF_JMP32)
                && x.code & 0xf0 != BPF_CALL
                && x.code & 0x08 == 0) =>
        {
            insns[i].imm = x.imm.wrapping_add(rng.pick(&[-1, 1, 8, -8]));
        }
        2 if !(class == BPF_JMP && matches!(x.code & 0xf0, BPF_CALL | BPF_EXIT | BPF_JA)) => {
            let r = rng.below(10) as u8;
            insns[i] = Insn::new(x.code, r, x.src(), x.off, x.imm);
        }
        3 if insns.len() > 2 => remove(insns, i),
        4 => insert(insns, i, x),
        _ => {}
    }
}

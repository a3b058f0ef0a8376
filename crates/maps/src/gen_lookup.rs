//! `map_gen_lookup`: the instructions the rewrite inlines in place of `call
//! bpf_map_lookup_elem` for a given map (or inner-map meta), exactly as Linux 6.18 emits them
//! (`array_map_gen_lookup`, `array_of_map_gen_lookup`, `percpu_array_map_gen_lookup`,
//! `htab_map_gen_lookup`, `htab_lru_map_gen_lookup`, `htab_of_map_gen_lookup`,
//! `htab_percpu_map_gen_lookup`).
//!
//! Register contract: r1 = map pointer, r2 = key pointer on entry; r0 = value pointer or 0 on
//! exit. Calls inside the sequences are `BPF_EMIT_CALL`s whose `imm` is the callee's address
//! minus [`call_base`], the kernel's `__bpf_call_base` convention; [`call_target`] resolves an
//! `imm` back to an address and [`raw_function_name`] names it.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::error::CallImmError;
use crate::map::Map;
use crate::meta::{InnerMapMeta, MapDesc};
use crate::raw;
use crate::uapi::{BPF_F_INNER_MAP, HTAB_ELEM_KEY_OFF, HTAB_ELEM_LRU_REF_OFF, MapType, round_up8};

/// The answer of `map_gen_lookup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenLookup {
    /// Replace the call with these instructions.
    Inline(Vec<Insn>),
    /// `-EOPNOTSUPP`: patch the call into a direct call of the type's lookup function
    /// ([`lookup_fn`]); e.g. BPF_F_INNER_MAP arrays, whose bound is not a constant.
    NotSupported,
}

/// The anchor whose address is `__bpf_call_base`: call immediates are relative to it.
#[inline(never)]
extern "C" fn __bpf_call_base() -> u64 {
    0
}

/// Address of `__bpf_call_base`.
pub fn call_base() -> usize {
    __bpf_call_base as *const () as usize
}

/// `imm` of a call to `func`: `func - __bpf_call_base`, or an error when out of i32 range.
pub fn call_imm(func: usize) -> Result<i32, CallImmError> {
    let base = call_base();
    let d = (func as i128) - (base as i128);
    i32::try_from(d).map_err(|_| CallImmError { func, base })
}

/// The address a call `imm` (relative to [`call_base`]) designates.
pub fn call_target(imm: i32) -> usize {
    (call_base() as isize).wrapping_add(imm as isize) as usize
}

/// The kernel name of a raw map function at `addr` (`array_map_lookup_elem`, …), as bpftool
/// prints `call <name>#<imm>`.
pub fn raw_function_name(addr: usize) -> Option<&'static str> {
    raw::RAW_FUNCTIONS
        .iter()
        .find(|(_, a)| a() == addr)
        .map(|(n, _)| *n)
}

/// The address of the raw map function named `name` (`array_map_lookup_elem`, …), as this
/// crate's ops tables and inline sequences call it. Other crates must take call targets from
/// here rather than from `raw::name as usize`: Rust may instantiate a small function again
/// in another crate (cross-crate inlining), so a function pointer taken there can differ
/// from the one the ops tables hold.
pub fn raw_function_addr(name: &str) -> Option<usize> {
    raw::RAW_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a())
}

/// The direct-call target used when `gen_lookup` is not supported: the type's
/// `ops->map_lookup_elem`.
pub fn lookup_fn(map_type: MapType) -> usize {
    raw::ops_for(map_type).map_lookup_elem as usize
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;

fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
}
fn alu64_reg(op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
}
fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | size | BPF_MEM, dst, src, off, 0)
}
fn st_imm(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(BPF_ST | size | BPF_MEM, dst, 0, off, imm)
}
fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}
fn ja(off: i16) -> Insn {
    Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
}
/// `BPF_MOV64_PERCPU_REG`: MOV64_X with `off = BPF_ADDR_PERCPU (-1)`, i.e. `dst = this_cpu_ptr(src)`.
pub fn mov64_percpu_reg(dst: u8, src: u8) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, -1, 0)
}
/// `BPF_EMIT_CALL(func)`.
pub fn emit_call(func: usize) -> Result<Insn, CallImmError> {
    Ok(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, call_imm(func)?))
}

/// `r0 <<= log2(elem)` or `r0 *= elem`.
fn scale(elem_size: u32) -> Insn {
    if elem_size.is_power_of_two() {
        alu64_imm(BPF_LSH, R0, elem_size.trailing_zeros() as i32)
    } else {
        alu64_imm(BPF_MUL, R0, elem_size as i32)
    }
}

/// Bound check; with masking (`!bypass_spec_v1`) the jump skips one more instruction.
fn bound(d: &MapDesc, skip: i16, out: &mut Vec<Insn>) {
    if d.bypass_spec_v1 {
        out.push(jmp_imm(BPF_JGE, R0, d.max_entries as i32, skip));
    } else {
        out.push(jmp_imm(BPF_JGE, R0, d.max_entries as i32, skip + 1));
        out.push(alu32_imm(BPF_AND, R0, d.index_mask as i32));
    }
}

fn htab_value_off(d: &MapDesc) -> i32 {
    (HTAB_ELEM_KEY_OFF as u64 + round_up8(d.key_size)) as i32
}

/// `ops->map_gen_lookup(map, insn_buf)` for the map described by `d`.
pub fn gen_lookup(d: &MapDesc) -> GenLookup {
    let mut v = Vec::with_capacity(10);
    let array_like = matches!(
        d.map_type,
        MapType::Array | MapType::ArrayOfMaps | MapType::PercpuArray
    );
    // The bound is a sign-extended 32-bit immediate: a bound above i32::MAX cannot be
    // expressed, so such arrays use the out-of-line lookup (kernel arrays that large do not
    // occur in practice).
    if array_like && d.max_entries > i32::MAX as u32 {
        return GenLookup::NotSupported;
    }
    let htab_call = || emit_call(raw::__htab_map_lookup_elem as *const () as usize);
    match d.map_type {
        MapType::Array => {
            if d.map_flags & BPF_F_INNER_MAP != 0 {
                return GenLookup::NotSupported;
            }
            v.push(alu64_imm(BPF_ADD, R1, d.value_off as i32));
            v.push(ldx(BPF_W, R0, R2, 0));
            bound(d, 3, &mut v);
            v.push(scale(d.elem_size));
            v.push(alu64_reg(BPF_ADD, R0, R1));
            v.push(ja(1));
            v.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0));
        }
        MapType::ArrayOfMaps => {
            v.push(alu64_imm(BPF_ADD, R1, d.value_off as i32));
            v.push(ldx(BPF_W, R0, R2, 0));
            bound(d, 5, &mut v);
            v.push(scale(d.elem_size));
            v.push(alu64_reg(BPF_ADD, R0, R1));
            v.push(ldx(BPF_DW, R0, R0, 0));
            v.push(jmp_imm(BPF_JEQ, R0, 0, 1));
            v.push(ja(1));
            v.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0));
        }
        MapType::PercpuArray => {
            if d.map_flags & BPF_F_INNER_MAP != 0 {
                return GenLookup::NotSupported;
            }
            v.push(alu64_imm(BPF_ADD, R1, d.value_off as i32));
            v.push(ldx(BPF_W, R0, R2, 0));
            bound(d, 5, &mut v);
            v.push(alu64_imm(BPF_LSH, R0, 3));
            v.push(alu64_reg(BPF_ADD, R0, R1));
            v.push(ldx(BPF_DW, R0, R0, 0));
            v.push(mov64_percpu_reg(R0, R0));
            v.push(ja(1));
            v.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0));
        }
        MapType::Hash => {
            let Ok(call) = htab_call() else {
                return GenLookup::NotSupported;
            };
            v.push(call);
            v.push(jmp_imm(BPF_JEQ, R0, 0, 1));
            v.push(alu64_imm(BPF_ADD, R0, htab_value_off(d)));
        }
        MapType::LruHash => {
            let Ok(call) = htab_call() else {
                return GenLookup::NotSupported;
            };
            v.push(call);
            v.push(jmp_imm(BPF_JEQ, R0, 0, 4));
            v.push(ldx(BPF_B, R1, R0, HTAB_ELEM_LRU_REF_OFF as i16));
            v.push(jmp_imm(BPF_JNE, R1, 0, 1));
            v.push(st_imm(BPF_B, R0, HTAB_ELEM_LRU_REF_OFF as i16, 1));
            v.push(alu64_imm(BPF_ADD, R0, htab_value_off(d)));
        }
        MapType::HashOfMaps => {
            let Ok(call) = htab_call() else {
                return GenLookup::NotSupported;
            };
            v.push(call);
            v.push(jmp_imm(BPF_JEQ, R0, 0, 2));
            v.push(alu64_imm(BPF_ADD, R0, htab_value_off(d)));
            v.push(ldx(BPF_DW, R0, R0, 0));
        }
        MapType::PercpuHash => {
            let Ok(call) = htab_call() else {
                return GenLookup::NotSupported;
            };
            v.push(call);
            v.push(jmp_imm(BPF_JEQ, R0, 0, 3));
            v.push(alu64_imm(BPF_ADD, R0, htab_value_off(d)));
            v.push(ldx(BPF_DW, R0, R0, 0));
            v.push(mov64_percpu_reg(R0, R0));
        }
        // xsk_map_gen_lookup: the socket pointer in slot `idx` (NULL past max_entries); the
        // bound is a 32-bit compare.
        MapType::Other(crate::sock_maps::BPF_MAP_TYPE_XSKMAP) => {
            v.push(ldx(BPF_W, R0, R2, 0));
            v.push(Insn::new(
                BPF_JMP32 | BPF_JGE | BPF_K,
                R0,
                0,
                5,
                d.max_entries as i32,
            ));
            v.push(alu64_imm(BPF_LSH, R0, 3));
            v.push(alu64_imm(BPF_ADD, R1, d.value_off as i32));
            v.push(alu64_reg(BPF_ADD, R0, R1));
            v.push(ldx(BPF_DW, R0, R0, 0));
            v.push(ja(1));
            v.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0));
        }
        // LRU_PERCPU_HASH, fd arrays and the rest have no map_gen_lookup in the kernel.
        _ => return GenLookup::NotSupported,
    }
    GenLookup::Inline(v)
}

impl Map {
    /// The inline sequence for `bpf_map_lookup_elem` on this map (see [`gen_lookup`]).
    pub fn gen_lookup(&self) -> GenLookup {
        gen_lookup(&self.desc())
    }
}

impl InnerMapMeta {
    /// The inline sequence for an inner lookup through this meta.
    pub fn gen_lookup(&self) -> GenLookup {
        gen_lookup(self.desc())
    }
}

//! Legacy packet loads (`BPF_LD | BPF_ABS`, `BPF_LD | BPF_IND`) as `do_misc_fixups` rewrites
//! them with the program type's `gen_ld_abs` (`bpf_gen_ld_abs`, net/core/filter.c): the
//! offset into r2, the context (always r6 here, the verifier checked) into r1, a call of
//! `bpf_skb_load_helper_{8,16,32}_no_cache`, and an exit with 0 when it failed.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;

use crate::RewriteError;

/// The kernel function that loads a legacy packet load of `size` (`BPF_B`/`BPF_H`/`BPF_W`).
pub fn load_helper(size: u8) -> &'static str {
    match size {
        BPF_B => "bpf_skb_load_helper_8_no_cache",
        BPF_H => "bpf_skb_load_helper_16_no_cache",
        _ => "bpf_skb_load_helper_32_no_cache",
    }
}

/// `bpf_gen_ld_abs` for `orig`, calling `call` (the `call` instruction of [`load_helper`]).
pub fn gen_ld_abs(orig: &Insn, call: Insn) -> Result<Vec<Insn>, RewriteError> {
    let mut v = Vec::with_capacity(7);
    if orig.code & 0xe0 == BPF_IND {
        v.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 2, orig.src(), 0, 0));
        if orig.imm != 0 {
            v.push(Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, orig.imm));
        }
    } else {
        v.push(Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, orig.imm));
    }
    v.extend([
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
        call,
        Insn::new(BPF_JMP | BPF_JSGE | BPF_K, 0, 0, 2, 0),
        Insn::new(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bpf_gen_ld_abs's sequences for `r0 = *(u16 *)skb[12]` and `r0 = *(u8 *)skb[r7 + 3]`.
    #[test]
    fn generates_the_kernels_sequence() {
        let call = Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 99);
        let tail = [
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
            call,
            Insn::new(BPF_JMP | BPF_JSGE | BPF_K, 0, 0, 2, 0),
            Insn::new(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0, 0),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let abs = Insn::new(BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 12);
        let mut want = vec![Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 12)];
        want.extend(tail);
        assert_eq!(gen_ld_abs(&abs, call).unwrap(), want);
        assert_eq!(load_helper(BPF_H), "bpf_skb_load_helper_16_no_cache");
        let ind = Insn::new(BPF_LD | BPF_IND | BPF_B, 0, 7, 0, 3);
        let mut want = vec![
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 2, 7, 0, 0),
            Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, 3),
        ];
        want.extend(tail);
        assert_eq!(gen_ld_abs(&ind, call).unwrap(), want);
    }
}

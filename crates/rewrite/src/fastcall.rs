//! `remove_fastcall_spills_fills`: the spill/fill pairs around an inlined `bpf_fastcall` call
//! (counted by the verifier, [`kbpf_verifier::InsnAux::fastcall_spills`]) become no-ops,
//! which the dead-code pass then removes. The verifier already gave the function the smaller
//! stack depth, so a pair may go only if the call really is inlined into code that keeps
//! r1-r5: `bpf_get_smp_processor_id` when the per-CPU move is available, and the two kfunc
//! casts, which always become `r0 = r1`.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_uapi::bpf::BPF_FUNC_GET_SMP_PROCESSOR_ID;

use crate::patch::Prog;
use crate::{KernelFunctions, RewriteError};

/// Replaces each removable pair with `goto +0`. `kernel` tells whether the rewrite inlines
/// `bpf_get_smp_processor_id`; a pair counted around a call that stays a call is the
/// verifier's inconsistency, not something to keep quietly (its slots are no longer in the
/// function's stack depth).
pub fn remove_fastcall_spills_fills(
    prog: &mut Prog,
    kernel: &dyn KernelFunctions,
) -> Result<(), RewriteError> {
    let nop = Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0);
    for i in 0..prog.len() {
        let spills = prog.aux[i].fastcall_spills as usize;
        if spills == 0 {
            continue;
        }
        let call = prog.insns[i];
        let inlined = call.code == BPF_JMP | BPF_CALL
            && match call.src() {
                0 => call.imm == BPF_FUNC_GET_SMP_PROCESSOR_ID && kernel.cpu_number().is_some(),
                BPF_PSEUDO_KFUNC_CALL => matches!(
                    prog.aux[i].kfunc,
                    Some("bpf_cast_to_kern_ctx" | "bpf_rdonly_cast")
                ),
                _ => false,
            };
        if !inlined || i < spills || i + spills >= prog.len() {
            return Err(RewriteError::VerifierBug(format!(
                "{spills} bpf_fastcall spills around insn {i}, which is not inlined"
            )));
        }
        for j in 1..=spills {
            prog.insns[i - j] = nop;
            prog.insns[i + j] = nop;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbpf_verifier::{InsnAux, ProgType};

    struct Kernel(Option<u32>);
    impl KernelFunctions for Kernel {
        fn helper(&self, _: ProgType, _: i32) -> Option<usize> {
            None
        }
        fn name(&self, _: usize) -> Option<&'static str> {
            None
        }
        fn cpu_number(&self) -> Option<u32> {
            self.0
        }
    }

    /// r1 = 1; *(u64 *)(r10 -8) = r1; call bpf_get_smp_processor_id; r1 = *(u64 *)(r10 -8); exit
    fn prog() -> Prog {
        let insns = vec![
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 1),
            Insn::new(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -8, 0),
            Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_GET_SMP_PROCESSOR_ID),
            Insn::new(BPF_LDX | BPF_MEM | BPF_DW, 1, 10, -8, 0),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let mut aux = vec![InsnAux::default(); 5];
        aux[2].fastcall_spills = 1;
        Prog {
            insns,
            aux,
            orig: (0..5).map(Some).collect(),
            line_info: Vec::new(),
            func_info: Vec::new(),
            subprog_starts: vec![0],
        }
    }

    #[test]
    fn pairs_around_an_inlined_call_become_nops() {
        let mut p = prog();
        remove_fastcall_spills_fills(&mut p, &Kernel(Some(0x1000))).unwrap();
        let nop = Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0);
        assert_eq!(p.insns[1], nop);
        assert_eq!(p.insns[3], nop);
        assert_eq!(p.insns[2].imm, BPF_FUNC_GET_SMP_PROCESSOR_ID);
    }

    #[test]
    fn pairs_around_a_kept_call_are_a_verifier_bug() {
        let mut p = prog();
        let e = remove_fastcall_spills_fills(&mut p, &Kernel(None)).unwrap_err();
        assert!(matches!(e, RewriteError::VerifierBug(_)), "{e}");
    }
}

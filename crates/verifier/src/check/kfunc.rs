//! Kernel functions (`call` with `BPF_PSEUDO_KFUNC_CALL`, `check_kfunc_call`), by the name the
//! loader resolved the call's BTF id to ([`crate::Options::kfuncs`]). kbpf implements the
//! casts of the common kfunc set that need no kernel BTF beyond the context:
//! `bpf_cast_to_kern_ctx(ctx)` gives a trusted pointer to the kernel's view of the context
//! (`PTR_TO_BTF_ID | PTR_TRUSTED`, [`RegType::PtrToBtfId`]), which kbpf lets the program
//! hold, compare and store but not dereference or pass on (stricter than the kernel, which
//! reads its fields through BTF). `bpf_rdonly_cast(obj, btf_id)` (its `obj__ign` unchecked,
//! `btf_id__k` a constant naming a kernel STRUCT or UNION, [`crate::Options::kernel_structs`])
//! gives an untrusted pointer of that type, held the same way. Every other kfunc is refused.

use super::{Checker, R, global, rej};
use crate::state::VerifierState;
use crate::types::{RegState, RegType};

/// The kfuncs kbpf verifies.
const BPF_CAST_TO_KERN_CTX: &str = "bpf_cast_to_kern_ctx";
const BPF_RDONLY_CAST: &str = "bpf_rdonly_cast";

impl Checker<'_> {
    pub(super) fn check_kfunc_call(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        btf_id: i32,
        off: i16,
    ) -> R<()> {
        let name = if off == 0 {
            self.opts
                .kfuncs
                .iter()
                .find(|(id, _)| *id == btf_id)
                .map(|(_, n)| n.clone())
        } else {
            None // a module's kfunc
        };
        let name = match name.as_deref() {
            Some(BPF_CAST_TO_KERN_CTX) => BPF_CAST_TO_KERN_CTX,
            Some(BPF_RDONLY_CAST) => BPF_RDONLY_CAST,
            _ => return rej("calling kernel functions is not supported"),
        };
        if st.lock.is_some() {
            return rej("function calls are not allowed while holding a lock");
        }
        if name == BPF_RDONLY_CAST {
            return self.check_rdonly_cast(st, idx);
        }
        // KF_ARG_PTR_TO_CTX, unmodified.
        let r1 = self.read_reg(st, 1)?;
        if r1.ty != RegType::PtrToCtx {
            return rej(format!(
                "arg#0 expected pointer to ctx, but got {}",
                r1.type_str()
            ));
        }
        if let Err(m) = global::check_ptr_off_reg(&r1, 1, "ctx") {
            return rej(m);
        }
        for r in 1..=5 {
            self.set_reg(st, r, RegState::NOT_INIT);
        }
        self.set_reg(st, 0, RegState::pointer(RegType::PtrToBtfId));
        self.scratched_regs |= 0x3f;
        self.aux[idx].kfunc = Some(BPF_CAST_TO_KERN_CTX);
        Ok(())
    }

    /// `bpf_rdonly_cast(void *obj__ign, u32 btf_id__k)`: `obj` is not checked (the kernel
    /// skips `__ign` arguments); `btf_id` must be a known constant naming a kernel struct
    /// or union; r0 is `PTR_TO_BTF_ID | PTR_UNTRUSTED` (rewritten to `r0 = r1`).
    fn check_rdonly_cast(&mut self, st: &mut VerifierState, idx: usize) -> R<()> {
        let r2 = self.read_reg(st, 2)?;
        if r2.ty != RegType::Scalar || !r2.s.is_const() {
            return rej("R2 must be a known constant");
        }
        let id = r2.s.var_off.value;
        let is_struct =
            u32::try_from(id).is_ok_and(|id| self.opts.kernel_structs.binary_search(&id).is_ok());
        if !is_struct {
            return rej("kfunc bpf_rdonly_cast type ID argument must be of a struct");
        }
        for r in 1..=5 {
            self.set_reg(st, r, RegState::NOT_INIT);
        }
        self.set_reg(st, 0, RegState::pointer(RegType::PtrToBtfId));
        self.scratched_regs |= 0x3f;
        self.aux[idx].kfunc = Some(BPF_RDONLY_CAST);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kbpf_isa::Insn;
    use kbpf_isa::insn::*;

    use crate::{MapDesc, Options, ProgType, verify};

    const CAST_ID: i32 = 1234;

    fn run(insns: &[Insn], kfuncs: Vec<(i32, String)>) -> Result<(), String> {
        let env: Vec<MapDesc> = Vec::new();
        let opts = Options::new(ProgType::SchedCls).kfuncs(kfuncs);
        verify(insns, &env, &opts).result.map_err(|e| e.message)
    }
    fn known() -> Vec<(i32, String)> {
        vec![(CAST_ID, "bpf_cast_to_kern_ctx".into())]
    }
    fn call(id: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, id)
    }
    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn::new(code, dst, src, off, imm)
    }
    fn exit() -> Insn {
        i(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
    fn mov(dst: u8, imm: i32) -> Insn {
        i(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }

    #[test]
    fn cast_of_the_context_is_held_not_read() {
        run(&[call(CAST_ID), mov(0, 0), exit()], known()).expect("cast");
        // not a ctx
        let err = run(&[mov(1, 0), call(CAST_ID), mov(0, 0), exit()], known()).unwrap_err();
        assert_eq!(err, "arg#0 expected pointer to ctx, but got scalar");
        // kbpf does not read kernel structs through BTF
        let read = i(BPF_LDX | BPF_MEM | BPF_W, 0, 0, 0, 0);
        assert!(run(&[call(CAST_ID), read, exit()], known()).is_err());
        // an unknown kfunc, or one kbpf does not implement
        let err = run(&[call(99), mov(0, 0), exit()], known()).unwrap_err();
        assert_eq!(err, "calling kernel functions is not supported");
        let err = run(&[call(CAST_ID), mov(0, 0), exit()], Vec::new()).unwrap_err();
        assert_eq!(err, "calling kernel functions is not supported");
    }

    /// `bpf_rdonly_cast`: a constant id of a kernel struct; r1 is not checked.
    #[test]
    fn rdonly_cast_needs_a_constant_struct_id() {
        const RD: i32 = 77;
        let run_rd = |insns: &[Insn], structs: Vec<u32>| {
            let env: Vec<MapDesc> = Vec::new();
            let opts = Options::new(ProgType::SchedCls)
                .kfuncs(vec![(RD, "bpf_rdonly_cast".into())])
                .kernel_structs(structs);
            verify(insns, &env, &opts).result.map_err(|e| e.message)
        };
        run_rd(&[mov(2, 5), call(RD), mov(0, 0), exit()], vec![3, 5]).expect("struct 5");
        // r1 uninitialised is fine (`obj__ign`)
        run_rd(&[mov(2, 5), call(RD), mov(0, 0), exit()], vec![5]).expect("obj ignored");
        let err = run_rd(&[mov(2, 4), call(RD), mov(0, 0), exit()], vec![3, 5]).unwrap_err();
        assert_eq!(
            err,
            "kfunc bpf_rdonly_cast type ID argument must be of a struct"
        );
        let ld = i(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0); // r2 = skb->len: unknown
        let err = run_rd(&[ld, call(RD), mov(0, 0), exit()], vec![5]).unwrap_err();
        assert_eq!(err, "R2 must be a known constant");
        // the result is not read through
        let read = i(BPF_LDX | BPF_MEM | BPF_W, 0, 0, 0, 0);
        assert!(run_rd(&[mov(2, 5), call(RD), read, exit()], vec![5]).is_err());
    }

    /// r1-r5 are clobbered by the call.
    #[test]
    fn kfunc_call_clobbers_arguments() {
        let use_r2 = i(BPF_ALU64 | BPF_MOV | BPF_X, 0, 2, 0, 0);
        let err = run(&[mov(2, 1), call(CAST_ID), use_r2, exit()], known()).unwrap_err();
        assert_eq!(err, "R2 !read_ok");
    }
}

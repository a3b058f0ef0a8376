//! Legacy packet loads, `BPF_LD | BPF_ABS/BPF_IND` (`check_ld_abs`): `r0 = ntoh(*(size *)
//! (skb->data + [src +] imm))` through the context in r6, clobbering r1-r5.
//!
//! The load may fail at run time, and then `bpf_gen_ld_abs`'s hidden exit returns 0: from
//! the program in the main function, and from the function only in a subprogram, where the
//! caller goes on with r0 = 0. That path is explored too. A subprogram holding such a load
//! must return an int in its BTF prototype (`check_btf_func`), and callbacks may not use them.

use super::{Checker, Flow, Pending, R, rej, rej_errno, rej_hint};
use crate::bounds::Scalar;
use crate::ctx::ProgType;
use crate::state::VerifierState;
use crate::types::{RegState, RegType};

impl Checker<'_> {
    pub(super) fn check_ld_abs(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        indirect: bool,
        src: u8,
        pending: &mut Vec<Pending>,
    ) -> R<Flow> {
        // may_access_skb: socket filters and tc programs only.
        if !matches!(
            self.prog,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct
        ) {
            return rej_errno(
                "BPF_LD_[ABS|IND] instructions not allowed for this program type",
                crate::EINVAL,
            );
        }
        if st.frames.iter().skip(1).any(|f| f.in_callback_fn) {
            return rej_errno("cannot use BPF_LD_[ABS|IND] within callback", crate::EINVAL);
        }
        // A global function is verified alone: its hidden exit would return to callers
        // kbpf does not see from there. Refused, which is stricter than the kernel.
        if self.in_global.is_some() {
            return rej_hint(
                "BPF_LD_[ABS|IND] in a global function is not supported by kbpf",
                "make the function static, or use direct packet access",
            );
        }
        let ctx = self.read_reg(st, 6)?;
        // gen_ld_abs may end the program: no lock or reference may be held.
        self.check_reference_leak(st, "BPF_LD_[ABS|IND]")?;
        if st.lock.is_some() {
            return rej("BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region");
        }
        if ctx.ty != RegType::PtrToCtx {
            return rej("at least one arg reg is not ctx (BPF_LD_[ABS|IND] expects ctx in r6)");
        }
        if indirect {
            let r = self.read_reg(st, src)?;
            if r.ty != RegType::Scalar {
                return rej(format!("R{src} invalid mem access '{}'", r.type_str()));
            }
        }
        for r in 1..=5 {
            self.set_reg(st, r, RegState::NOT_INIT);
        }
        let mut v = RegState::unknown();
        v.s = Scalar::of_size(4);
        self.set_reg(st, 0, v);
        if st.frames.len() == 1 {
            return Ok(Flow::Next);
        }
        // In a subprogram: the load's success continues later; this path takes the hidden
        // exit with r0 = 0 back to the caller.
        self.push_branch(pending, st.clone(), idx + 1, idx)?;
        self.set_reg(st, 0, RegState::known(0));
        self.check_exit(st)
    }

    /// `check_btf_func`: a subprogram with a legacy packet load must return an int.
    pub(super) fn check_ld_abs_return_types(&self) -> R<()> {
        for (k, &start) in self.subprogs.iter().enumerate().skip(1) {
            let has_ld_abs = self.decoded[self.subprog_range(k)]
                .iter()
                .any(|i| matches!(i, Some(kbpf_isa::decode::Instruction::LdPacket { .. })));
            if has_ld_abs && self.opts.non_scalar_return.contains(&start) {
                return rej("LD_ABS is only allowed in functions that return 'int'.");
            }
        }
        Ok(())
    }
}

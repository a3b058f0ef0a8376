//! Socket pointers and acquired references: `check_sock_access`, `acquire_reference_state`,
//! `release_reference` and `check_reference_leak` of `kernel/bpf/verifier.c`.
//!
//! - `bpf_sk_lookup_tcp`/`_udp` and `bpf_skc_lookup_tcp` acquire a reference, held by the
//!   socket pointer they return (`ref_obj_id`) and listed in the state; the NULL branch of
//!   its check drops it again.
//! - `bpf_sk_fullsock` and `bpf_tcp_sock` return pointers holding their argument's
//!   reference; `bpf_get_listener_sock` one holding none.
//! - `bpf_sk_release` needs a referenced socket; every pointer holding the reference then
//!   becomes an unknown scalar.
//! - At the main program's exit, at a tail call and at a legacy packet load, no reference
//!   may be held (`... would lead to reference leak`, after one `Unreleased reference` line
//!   each).
//! - Socket fields are read-only and checked per pointer type (`bpf_sock_is_valid_access`,
//!   `bpf_sock_common_is_valid_access`, `bpf_tcp_sock_is_valid_access`).

use super::*;

/// Whether an access through a pointer of type `ty` is rewritten (`!reg_type_mismatch_ok`):
/// the context, the socket pointers and kernel objects (`PTR_TO_BTF_ID`). One instruction may not access such a pointer on one
/// path and another type on another (`same insn cannot be used with different pointers`).
pub(super) fn converted_access(ty: RegType) -> bool {
    matches!(
        ty,
        RegType::PtrToCtx
            | RegType::PtrToSocket
            | RegType::PtrToSockCommon
            | RegType::PtrToTcpSock
            | RegType::PtrToXdpSock
            | RegType::PtrToBtfId
    )
}

impl Checker<'_> {
    /// A new reference acquired at `insn` (`acquire_reference_state`): its id.
    pub(super) fn acquire_reference(&mut self, st: &mut VerifierState, insn: usize) -> u32 {
        let id = self.new_id();
        st.refs.push((id, insn));
        id
    }

    /// `release_reference`: the reference goes, with every pointer holding it.
    pub(super) fn release_reference(
        &mut self,
        st: &mut VerifierState,
        ref_obj_id: u32,
        func: &str,
        func_id: i32,
    ) -> R<()> {
        let Some(at) = st.refs.iter().position(|r| r.0 == ref_obj_id) else {
            return rej(format!(
                "func {func}#{func_id} reference has not been acquired before"
            ));
        };
        st.refs.remove(at);
        st.for_each_reg(|r| {
            if r.ref_obj_id == ref_obj_id {
                // mark_reg_invalid for a loader that may leak pointers.
                *r = RegState::unknown();
            }
        });
        Ok(())
    }

    /// `check_resource_leak`'s reference part: in the outermost frame no reference may be
    /// held at `prefix` (a main-program exit, a tail call, a legacy packet load).
    pub(super) fn check_reference_leak(&mut self, st: &VerifierState, prefix: &str) -> R<()> {
        if st.frames.len() > 1 || st.refs.is_empty() {
            return Ok(());
        }
        for (id, insn) in &st.refs {
            self.verbose(&format!("Unreleased reference id={id} alloc_insn={insn}\n"));
        }
        rej(format!("{prefix} would lead to reference leak"))
    }

    /// A load or store through a socket pointer (`check_sock_access`); `off` includes the
    /// pointer's fixed offset.
    pub(super) fn check_sock_access(
        &mut self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
        write: bool,
    ) -> R<Option<RegState>> {
        if write {
            return rej(format!("R{regno} cannot write into {}", reg.type_str()));
        }
        if reg.s.smin_value < 0 {
            return rej(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ));
        }
        let (o, sz) = (off as u32, size as u32);
        let valid = off >= 0
            && match reg.ty {
                RegType::PtrToSocket => crate::ctx::cgroup::bpf_sock_valid(o, sz).is_some(),
                // bpf_sock_common_is_valid_access: not type .. priority.
                RegType::PtrToSockCommon => {
                    !(8..24).contains(&o) && crate::ctx::cgroup::bpf_sock_valid(o, sz).is_some()
                }
                RegType::PtrToTcpSock => crate::ctx::cgroup::bpf_tcp_sock_valid(o, sz),
                // bpf_xdp_sock_is_valid_access: queue_id only.
                RegType::PtrToXdpSock => o < 4 && o.is_multiple_of(sz) && sz == 4,
                _ => false,
            };
        if !valid {
            return rej(format!(
                "R{regno} invalid {} access off={off} size={size}",
                reg.type_str()
            ));
        }
        Ok(Some(RegState::unknown()))
    }
}

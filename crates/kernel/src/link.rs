//! BPF links (`BPF_LINK_CREATE`): an attachment owned through an fd, gone when the fd is
//! closed — so an attachment made by a process cannot outlive it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::consts::{BPF_TCX_EGRESS, BPF_TCX_INGRESS};
use crate::{Error, KernelProg, sys};

/// An attached program, owned through the link's fd.
#[derive(Debug)]
pub struct KernelLink {
    fd: OwnedFd,
}

impl KernelLink {
    /// Attaches `prog` (a `BPF_PROG_TYPE_SCHED_CLS` program) to device `ifindex`'s tcx
    /// ingress (`ingress`) or egress hook: before the programs already there when
    /// `first`, else after them.
    pub fn tcx(
        prog: &KernelProg,
        ifindex: u32,
        ingress: bool,
        first: bool,
    ) -> Result<KernelLink, Error> {
        let attach_type = if ingress {
            BPF_TCX_INGRESS
        } else {
            BPF_TCX_EGRESS
        };
        let fd =
            sys::link_create_tcx(prog.as_fd(), ifindex, attach_type, first).map_err(|errno| {
                Error::Sys {
                    op: "BPF_LINK_CREATE",
                    object: format!("tcx ifindex {ifindex}"),
                    errno,
                }
            })?;
        Ok(KernelLink { fd })
    }
}

impl AsFd for KernelLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

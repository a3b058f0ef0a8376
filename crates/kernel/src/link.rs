//! BPF links (`BPF_LINK_CREATE`): an attachment owned through an fd, gone when the fd is
//! closed — so an attachment made by a process cannot outlive it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::consts::{
    BPF_F_BEFORE, BPF_TCX_EGRESS, BPF_TCX_INGRESS, BPF_XDP, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE,
};
use crate::{Error, KernelProg, sys};

/// An attached program, owned through the link's fd.
#[derive(Debug)]
pub struct KernelLink {
    fd: OwnedFd,
}

impl KernelLink {
    /// Attaches `prog` (a `BPF_PROG_TYPE_SCHED_CLS` program) to device `ifindex`'s tcx
    /// ingress (`ingress`) or egress hook: before the programs already there when
    /// `first`, else after them. The device is looked up in the calling thread's network
    /// namespace.
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
        let flags = if first { BPF_F_BEFORE } else { 0 };
        Self::create(prog, ifindex, attach_type, flags, "tcx")
    }

    /// Attaches `prog` (a `BPF_PROG_TYPE_XDP` program) to device `ifindex` in generic mode
    /// (`XDP_FLAGS_SKB_MODE`, what `bpftool net attach xdpgeneric` asks for) or native
    /// mode (`XDP_FLAGS_DRV_MODE`, `xdpdrv`).
    pub fn xdp(prog: &KernelProg, ifindex: u32, generic: bool) -> Result<KernelLink, Error> {
        let flags = if generic {
            XDP_FLAGS_SKB_MODE
        } else {
            XDP_FLAGS_DRV_MODE
        };
        Self::create(prog, ifindex, BPF_XDP, flags, "xdp")
    }

    fn create(
        prog: &KernelProg,
        ifindex: u32,
        attach_type: u32,
        flags: u32,
        what: &str,
    ) -> Result<KernelLink, Error> {
        let fd =
            sys::link_create_dev(prog.as_fd(), ifindex, attach_type, flags).map_err(|errno| {
                Error::Sys {
                    op: "BPF_LINK_CREATE",
                    object: format!("{what} ifindex {ifindex}"),
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

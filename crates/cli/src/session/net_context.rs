//! What a daemon lends its session for one client's command ([`NetContext`]): the programs
//! attached to network devices and the client whose network namespace the command works in.
//! The daemon fills it in and the `net` and `prog run` commands read it; it is the session's
//! so that neither has to know the other.

use std::sync::Arc;

use kbpf_net::{Attachments, NetNs};

use super::Reply;

/// What a daemon lends a session for `net` commands.
#[derive(Clone)]
pub struct NetContext {
    /// The daemon's attachments.
    pub attachments: Arc<Attachments>,
    /// The pid of the client the command runs for (its namespace is the command's).
    pub client_pid: u32,
}

impl NetContext {
    /// The client's network namespace (bpftool's status for a failure: `-errno`).
    pub(crate) fn client_netns(&self) -> Result<NetNs, Reply> {
        NetNs::of_pid(self.client_pid).map_err(|e| {
            Reply::err(
                format!("the client's network namespace: {e}"),
                -e.raw_os_error().unwrap_or(libc::EIO),
            )
        })
    }
}

//! The tap device through which `XDP_PASS` frames go back to the kernel's stack: a frame
//! written to its fd arrives on the tap's ingress, where [`crate::bypass`]'s program
//! redirects it into the attached device's ingress.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// `TUNSETIFF` (`_IOW('T', 202, int)`) and its flags (`include/uapi/linux/if_tun.h`).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// A tap device, removed when dropped (it is not persistent).
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Creates tap `name` in the calling thread's namespace and brings it up, with IPv6
    /// off so it stays silent.
    pub fn create(name: &str) -> io::Result<Tap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = crate::iface::ifreq_named(name)?;
        req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
        // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is; the fd is open.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // Best effort: a tap without IPv6 sends no router solicitations into its queue.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        crate::iface::set_up(name)?;
        Ok(Tap {
            file,
            name: name.to_string(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands one frame to the tap's ingress, with the `skb->mark` and `skb->priority` it
    /// is to reach the stack with, as an 8-byte trailer the bypass strips and restores
    /// ([`crate::bypass`]).
    pub fn inject(&self, frame: &[u8], mark: u32, priority: u32) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&mark.to_ne_bytes());
        trailer[4..].copy_from_slice(&priority.to_ne_bytes());
        let iov = [
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
            libc::iovec {
                iov_base: trailer.as_mut_ptr().cast(),
                iov_len: trailer.len(),
            },
        ];
        // SAFETY: both iovecs describe live buffers of the stated lengths, which the kernel
        // only reads; the fd is the open tap.
        let r = unsafe { libc::writev(self.file.as_raw_fd(), iov.as_ptr(), 2) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

//! Network namespaces and interface names, as the calling thread sees them.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

/// A network namespace, held open through its `nsfs` file.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    inode: u64,
}

impl NetNs {
    /// The namespace process `pid` is in (`/proc/PID/ns/net`).
    pub fn of_pid(pid: u32) -> io::Result<NetNs> {
        Self::open(&format!("/proc/{pid}/ns/net"))
    }

    /// The namespace `ip netns add NAME` made (`/var/run/netns/NAME`).
    pub fn named(name: &str) -> io::Result<NetNs> {
        Self::open(&format!("/var/run/netns/{name}"))
    }

    /// The calling thread's namespace.
    pub fn current() -> io::Result<NetNs> {
        Self::open("/proc/thread-self/ns/net")
    }

    fn open(path: &str) -> io::Result<NetNs> {
        let file = File::open(path)?;
        let inode = file.metadata()?.ino();
        Ok(NetNs { file, inode })
    }

    /// The namespace's inode number: equal for two handles of the same namespace.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Moves the calling thread (only it) into this namespace: sockets, devices and
    /// `bpf()` ifindexes it uses afterwards are this namespace's.
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: setns on an fd we own; CLONE_NEWNET affects the calling thread only.
        let r = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The index of device `name` in the calling thread's namespace (`ENODEV` if none).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::from_raw_os_error(libc::ENODEV))
    } else {
        Ok(i)
    }
}

/// The name of device `index` in the calling thread's namespace.
pub fn ifname(index: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname writes at most.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Ok(s.to_string_lossy().into_owned())
}

/// Sets `IFF_UP` on device `name` (`SIOCGIFFLAGS` + `SIOCSIFFLAGS`).
pub(crate) fn set_up(name: &str) -> io::Result<()> {
    let sock = crate::packet_socket::dgram_socket()?;
    let mut req = ifreq_named(name)?;
    // SAFETY: `req` is a valid ifreq for the two ioctls; the socket is open.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// An `ifreq` naming `name` (at most `IFNAMSIZ - 1` bytes).
pub(crate) fn ifreq_named(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_index_1_here_and_names_round_trip() {
        let i = ifindex("lo").unwrap();
        assert_eq!(ifname(i).unwrap(), "lo");
        assert_eq!(
            ifindex("no-such-dev0").unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
        assert!(ifreq_named("sixteen-bytes-xx").is_err());
        assert_eq!(
            NetNs::current().unwrap().inode(),
            NetNs::of_pid(std::process::id()).unwrap().inode()
        );
    }
}

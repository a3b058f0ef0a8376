//! The errno value a `bpf()` command fails with, as a typed value.
//!
//! The kernel's map and program code answers with negative errno values; user space sees
//! their absolute value in `errno`. One of them, `ENOTSUPP` (524), is kernel-internal (it
//! has no libc name and `strerror` calls it "Unknown error 524") but leaks to user space
//! anyway, e.g. when a map-of-maps is given a `PROG_ARRAY` template. [`Errno::name`]
//! therefore spells it `ENOTSUPP(524)` so that it is never mistaken for `EOPNOTSUPP` (95).

use std::borrow::Cow;
use std::fmt;

/// An errno value returned by the kernel (always positive).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted (1).
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// No such file or directory / no such element (2).
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// Argument list too long; the map is full or the index is out of range (7).
    pub const E2BIG: Errno = Errno(libc::E2BIG);
    /// Bad file descriptor (9).
    pub const EBADF: Errno = Errno(libc::EBADF);
    /// Try again (11).
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    /// Cannot allocate memory (12).
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    /// Permission denied (13).
    pub const EACCES: Errno = Errno(libc::EACCES);
    /// Bad address (14).
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    /// Device or resource busy (16).
    pub const EBUSY: Errno = Errno(libc::EBUSY);
    /// File exists; the element already exists (17).
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    /// Invalid argument (22).
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// No space left on device; an output buffer was too small (28).
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    /// Function not implemented; `bpf()` does not exist (38).
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    /// Operation not supported (95), the libc-visible cousin of [`Errno::ENOTSUPP`].
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    /// The kernel-internal "operation not supported" (524), leaked by `bpf()`.
    pub const ENOTSUPP: Errno = Errno(kbpf_uapi::errno::ENOTSUPP);

    /// The current thread's `errno`, as left by the last failing libc call.
    pub fn last() -> Errno {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        )
    }

    /// The symbolic name: `"EINVAL"`, `"ENOTSUPP(524)"`, or `"errno 1234"` for values
    /// without a name here.
    pub fn name(self) -> Cow<'static, str> {
        let known = match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::E2BIG => "E2BIG",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::EXDEV => "EXDEV",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::ENFILE => "ENFILE",
            libc::EMFILE => "EMFILE",
            libc::EFBIG => "EFBIG",
            libc::ENOSPC => "ENOSPC",
            libc::ERANGE => "ERANGE",
            libc::EDEADLK => "EDEADLK",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::ELOOP => "ELOOP",
            libc::EOVERFLOW => "EOVERFLOW",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::ETIMEDOUT => "ETIMEDOUT",
            524 => "ENOTSUPP(524)",
            _ => return Cow::Owned(format!("errno {}", self.0)),
        };
        Cow::Borrowed(known)
    }

    /// The C library's `strerror` text, e.g. `"Invalid argument"` or `"Unknown error 524"`
    /// — the text bpftool prints after a failed command.
    pub fn strerror(self) -> String {
        // std formats OS errors as "<strerror text> (os error N)"; keep only the libc text.
        let full = std::io::Error::from_raw_os_error(self.0).to_string();
        match full.rfind(" (os error ") {
            Some(cut) => full[..cut].to_string(),
            None => full,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.strerror())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts() {
        assert_eq!(Errno::EINVAL.name(), "EINVAL");
        assert_eq!(Errno::ENOTSUPP.name(), "ENOTSUPP(524)");
        assert_eq!(Errno(9999).name(), "errno 9999");
        assert_eq!(Errno::EINVAL.to_string(), "Invalid argument");
        assert_eq!(Errno::E2BIG.to_string(), "Argument list too long");
        assert_eq!(Errno::ENOTSUPP.to_string(), "Unknown error 524");
        assert_eq!(format!("{:?}", Errno::EBADF), "EBADF");
    }
}

//! Errors: the kernel's errno values, and [`MapError`] that names the map and says why.

use std::fmt;

use kbpf_uapi::errno;

/// An errno value as the kernel's map code returns it (negated in the kernel, positive here;
/// the numbers are [`kbpf_uapi::errno`]'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    /// `EPERM` (1).
    EPERM,
    /// `ENOENT` (2).
    ENOENT,
    /// `EBUSY` (16).
    EBUSY,
    /// `E2BIG` (7).
    E2BIG,
    /// `EBADF` (9).
    EBADF,
    /// `EAGAIN` (11): a ring buffer has no room for the record.
    EAGAIN,
    /// `ENOMEM` (12).
    ENOMEM,
    /// `EFAULT` (14).
    EFAULT,
    /// `EEXIST` (17).
    EEXIST,
    /// `EINVAL` (22).
    EINVAL,
    /// `ENODEV` (19): a cpumap key that is not a possible CPU.
    ENODEV,
    /// `ENOSPC` (28): an LPM trie is full.
    ENOSPC,
    /// `EOVERFLOW` (75): a cpumap `qsize` above its limit.
    EOVERFLOW,
    /// `EOPNOTSUPP` (95).
    EOPNOTSUPP,
    /// `ENOTSUPP` (524): kernel-internal, but it leaks to user space from map creation.
    ENOTSUPP,
}

impl Errno {
    /// The numeric errno.
    pub const fn code(self) -> i32 {
        match self {
            Errno::EPERM => errno::EPERM,
            Errno::ENOENT => errno::ENOENT,
            Errno::EBUSY => errno::EBUSY,
            Errno::E2BIG => errno::E2BIG,
            Errno::EBADF => errno::EBADF,
            Errno::EAGAIN => errno::EAGAIN,
            Errno::ENOMEM => errno::ENOMEM,
            Errno::EFAULT => errno::EFAULT,
            Errno::EEXIST => errno::EEXIST,
            Errno::EINVAL => errno::EINVAL,
            Errno::ENODEV => errno::ENODEV,
            Errno::ENOSPC => errno::ENOSPC,
            Errno::EOVERFLOW => errno::EOVERFLOW,
            Errno::EOPNOTSUPP => errno::EOPNOTSUPP,
            Errno::ENOTSUPP => errno::ENOTSUPP,
        }
    }

    /// The errno for a number, if it is one of ours.
    pub const fn from_code(code: i32) -> Option<Errno> {
        Some(match code {
            errno::EPERM => Errno::EPERM,
            errno::ENOENT => Errno::ENOENT,
            errno::EBUSY => Errno::EBUSY,
            errno::E2BIG => Errno::E2BIG,
            errno::EBADF => Errno::EBADF,
            errno::EAGAIN => Errno::EAGAIN,
            errno::ENOMEM => Errno::ENOMEM,
            errno::EFAULT => Errno::EFAULT,
            errno::EEXIST => Errno::EEXIST,
            errno::EINVAL => Errno::EINVAL,
            errno::ENODEV => Errno::ENODEV,
            errno::ENOSPC => Errno::ENOSPC,
            errno::EOVERFLOW => Errno::EOVERFLOW,
            errno::EOPNOTSUPP => Errno::EOPNOTSUPP,
            errno::ENOTSUPP => Errno::ENOTSUPP,
            _ => return None,
        })
    }

    /// The symbolic name (`EINVAL`).
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EBUSY => "EBUSY",
            Errno::E2BIG => "E2BIG",
            Errno::EBADF => "EBADF",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EFAULT => "EFAULT",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            Errno::ENODEV => "ENODEV",
            Errno::ENOSPC => "ENOSPC",
            Errno::EOVERFLOW => "EOVERFLOW",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::ENOTSUPP => "ENOTSUPP",
        }
    }

    /// The C library's description (`strerror`); ENOTSUPP has none in glibc.
    pub const fn description(self) -> &'static str {
        match self {
            Errno::EPERM => "Operation not permitted",
            Errno::ENOENT => "No such file or directory",
            Errno::EBUSY => "Device or resource busy",
            Errno::E2BIG => "Argument list too long",
            Errno::EBADF => "Bad file descriptor",
            Errno::EAGAIN => "Resource temporarily unavailable",
            Errno::ENOMEM => "Cannot allocate memory",
            Errno::EFAULT => "Bad address",
            Errno::EEXIST => "File exists",
            Errno::EINVAL => "Invalid argument",
            Errno::ENODEV => "No such device",
            Errno::ENOSPC => "No space left on device",
            Errno::EOVERFLOW => "Value too large for defined data type",
            Errno::EOPNOTSUPP => "Operation not supported",
            Errno::ENOTSUPP => "Unknown error 524",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A failed map operation: which map, why, and the errno the kernel returns for it.
///
/// Displays as `map 'inner_a': key size 8 != 4: Invalid argument`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("map '{map}': {detail}: {errno}")]
pub struct MapError {
    /// The map's name (may be empty, as kernel map names may be).
    pub map: String,
    /// The errno the kernel returns in this case.
    pub errno: Errno,
    /// What was wrong, in words.
    pub detail: String,
}

impl MapError {
    /// Builds an error for map `map`.
    pub fn new(map: &str, errno: Errno, detail: impl Into<String>) -> MapError {
        MapError {
            map: map.to_string(),
            errno,
            detail: detail.into(),
        }
    }
}

/// Error of [`crate::call_imm`]: a function is further than ±2 GiB from the call base.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("function at {func:#x} is out of i32 range of __bpf_call_base at {base:#x}")]
pub struct CallImmError {
    /// The function's address.
    pub func: usize,
    /// The call base's address.
    pub base: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_map() {
        let e = MapError::new("inner_a", Errno::EINVAL, "key size 8 != 4");
        assert_eq!(
            e.to_string(),
            "map 'inner_a': key size 8 != 4: Invalid argument"
        );
        assert_eq!(Errno::ENOTSUPP.code(), 524);
        for e in [
            Errno::EPERM,
            Errno::ENOENT,
            Errno::E2BIG,
            Errno::EBADF,
            Errno::EAGAIN,
            Errno::ENOMEM,
            Errno::EFAULT,
            Errno::EEXIST,
            Errno::EINVAL,
            Errno::ENOSPC,
            Errno::EOPNOTSUPP,
            Errno::ENOTSUPP,
        ] {
            assert_eq!(Errno::from_code(e.code()), Some(e));
        }
    }
}

//! Errors: the kernel's errno values, and [`MapError`] that names the map and says why.

use std::fmt;

/// An errno value as the kernel's map code returns it (negated in the kernel, positive here).
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
            Errno::EPERM => 1,
            Errno::ENOENT => 2,
            Errno::EBUSY => 16,
            Errno::E2BIG => 7,
            Errno::EBADF => 9,
            Errno::EAGAIN => 11,
            Errno::ENOMEM => 12,
            Errno::EFAULT => 14,
            Errno::EEXIST => 17,
            Errno::EINVAL => 22,
            Errno::ENODEV => 19,
            Errno::ENOSPC => 28,
            Errno::EOVERFLOW => 75,
            Errno::EOPNOTSUPP => 95,
            Errno::ENOTSUPP => 524,
        }
    }

    /// The errno for a number, if it is one of ours.
    pub const fn from_code(code: i32) -> Option<Errno> {
        Some(match code {
            1 => Errno::EPERM,
            2 => Errno::ENOENT,
            16 => Errno::EBUSY,
            7 => Errno::E2BIG,
            9 => Errno::EBADF,
            11 => Errno::EAGAIN,
            12 => Errno::ENOMEM,
            14 => Errno::EFAULT,
            17 => Errno::EEXIST,
            22 => Errno::EINVAL,
            19 => Errno::ENODEV,
            28 => Errno::ENOSPC,
            75 => Errno::EOVERFLOW,
            95 => Errno::EOPNOTSUPP,
            524 => Errno::ENOTSUPP,
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

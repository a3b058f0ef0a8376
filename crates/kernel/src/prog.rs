//! Kernel programs through `bpf()`: load (with the verifier log), `BPF_PROG_TEST_RUN`,
//! and `BPF_OBJ_GET_INFO_BY_FD` for the tag, ids and the xlated instructions — everything
//! a differential test needs to compare kbpf's verifier, rewrite and VM with the kernel's.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use kbpf_isa::Insn;

use crate::consts::{BPF_LOG_LEVEL1, BPF_PROG_GET_FD_BY_ID, BPF_TAG_SIZE};
use crate::map::{name_from_kernel, obj_name, path_cstring};
use crate::sys::{self, ProgLoadArgs, TestRunArgs};
use crate::{Errno, Error};

/// Everything `BPF_PROG_LOAD` takes that kbpf uses.
#[derive(Clone, Debug)]
pub struct ProgLoadAttr<'a> {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// The instructions (map references as `ld_imm64` with `BPF_PSEUDO_MAP_FD` and live fds).
    pub insns: &'a [Insn],
    /// License string, e.g. `"GPL"`.
    pub license: &'a str,
    /// Verifier log level (`BPF_LOG_LEVEL1`, `BPF_LOG_LEVEL2`, `BPF_LOG_STATS`, or 0).
    pub log_level: u32,
    /// Program name (≤ 15 bytes).
    pub name: &'a str,
    /// `expected_attach_type`.
    pub expected_attach_type: u32,
    /// `prog_flags` (`BPF_F_STRICT_ALIGNMENT`, …).
    pub prog_flags: u32,
    /// Initial log buffer size in bytes (grown on `ENOSPC`).
    pub log_size: usize,
}

impl<'a> ProgLoadAttr<'a> {
    /// A program of `prog_type` with the defaults: no name, log level 0, 1 MiB log buffer.
    pub fn new(prog_type: u32, insns: &'a [Insn], license: &'a str) -> Self {
        ProgLoadAttr {
            prog_type,
            insns,
            license,
            log_level: 0,
            name: "",
            expected_attach_type: 0,
            prog_flags: 0,
            log_size: 1 << 20,
        }
    }
}

/// A failed `BPF_PROG_LOAD`.
#[derive(Debug, thiserror::Error)]
pub enum ProgLoadError {
    /// The kernel refused the program; `log` is the verifier log (possibly empty).
    #[error("BPF_PROG_LOAD: {errno} ({name})\n{log}", name = errno.name())]
    Rejected {
        /// The errno (`EACCES` or `EINVAL` for verifier rejections).
        errno: Errno,
        /// The verifier log.
        log: String,
    },
    /// The arguments could not be expressed to the kernel (name too long, NUL in license).
    #[error("BPF_PROG_LOAD: {0}")]
    Arg(String),
}

impl ProgLoadError {
    /// The kernel's errno, if the kernel was asked.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ProgLoadError::Rejected { errno, .. } => Some(*errno),
            ProgLoadError::Arg(_) => None,
        }
    }

    /// The verifier log ("" for argument errors).
    pub fn log(&self) -> &str {
        match self {
            ProgLoadError::Rejected { log, .. } => log,
            ProgLoadError::Arg(_) => "",
        }
    }
}

/// `struct bpf_prog_info`, decoded (the parts kbpf compares).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Global program id.
    pub id: u32,
    /// Program tag (as bpftool prints it, hex of these 8 bytes).
    pub tag: [u8; BPF_TAG_SIZE],
    /// Bytes of xlated instructions.
    pub xlated_prog_len: u32,
    /// Bytes of JITed code (0 when the JIT is off).
    pub jited_prog_len: u32,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
    /// Program name.
    pub name: String,
    /// Whether the license is GPL-compatible.
    pub gpl_compatible: bool,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// BTF object id (0 without BTF).
    pub btf_id: u32,
}

impl ProgInfo {
    /// The tag as bpftool prints it (16 lowercase hex digits).
    pub fn tag_hex(&self) -> String {
        self.tag.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Results of one `BPF_PROG_TEST_RUN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value.
    pub retval: u32,
    /// Average duration per run in ns.
    pub duration_ns: u32,
    /// Output data (e.g. the packet after the program).
    pub data_out: Vec<u8>,
    /// Output context.
    pub ctx_out: Vec<u8>,
}

/// A loaded kernel program, owned through its fd.
#[derive(Debug)]
pub struct KernelProg {
    fd: OwnedFd,
    id: u32,
}

/// Largest verifier log buffer we grow to (the kernel's own limit is 1 GiB).
const MAX_LOG_SIZE: usize = 256 << 20;

fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl KernelProg {
    /// `BPF_PROG_LOAD` of `insns` as `prog_type`. On success returns the program and the
    /// verifier log (empty at `log_level` 0). On failure returns the errno and the log;
    /// if `log_level` was 0 the load is repeated at `BPF_LOG_LEVEL1` to obtain one (the
    /// errno reported is the first attempt's).
    pub fn load(
        prog_type: u32,
        insns: &[Insn],
        license: &str,
        log_level: u32,
    ) -> Result<(KernelProg, String), ProgLoadError> {
        let mut attr = ProgLoadAttr::new(prog_type, insns, license);
        attr.log_level = log_level;
        Self::load_with(&attr)
    }

    /// `BPF_PROG_LOAD` with every attribute of [`ProgLoadAttr`].
    pub fn load_with(attr: &ProgLoadAttr<'_>) -> Result<(KernelProg, String), ProgLoadError> {
        let license = CString::new(attr.license)
            .map_err(|_| ProgLoadError::Arg("license contains a NUL byte".into()))?;
        let prog_name = obj_name(attr.name).map_err(|e| ProgLoadError::Arg(e.to_string()))?;
        let mut args = ProgLoadArgs {
            prog_type: attr.prog_type,
            expected_attach_type: attr.expected_attach_type,
            prog_flags: attr.prog_flags,
            prog_name,
            log_level: attr.log_level,
        };
        match Self::load_logged(&args, attr, &license) {
            Ok(ok) => Ok(ok),
            Err((errno, log)) if attr.log_level == 0 => {
                // Ask again with a log so the caller learns why (as libbpf does).
                args.log_level = BPF_LOG_LEVEL1;
                let log = match Self::load_logged(&args, attr, &license) {
                    Err((_, log)) => log,
                    // Accepted on the retry: nothing more to learn than the first answer.
                    Ok(_) => log,
                };
                Err(ProgLoadError::Rejected { errno, log })
            }
            Err((errno, log)) => Err(ProgLoadError::Rejected { errno, log }),
        }
    }

    fn load_logged(
        args: &ProgLoadArgs,
        attr: &ProgLoadAttr<'_>,
        license: &CString,
    ) -> Result<(KernelProg, String), (Errno, String)> {
        let mut size = if args.log_level == 0 {
            0
        } else {
            attr.log_size.max(128)
        };
        loop {
            let mut log = vec![0u8; size];
            match sys::prog_load(args, attr.insns, license, &mut log) {
                Ok(fd) => {
                    let prog = Self::from_fd(fd)
                        .map_err(|e| (e.errno().unwrap_or(Errno::EINVAL), e.to_string()))?;
                    return Ok((prog, log_text(&log)));
                }
                // A truncated log fails the load with ENOSPC (even for a good program);
                // retry with the size the kernel says it needs, or a bigger guess.
                Err((Errno::ENOSPC, true_size)) if size > 0 && size < MAX_LOG_SIZE => {
                    let want = (true_size as usize).max(size * 4);
                    size = want.min(MAX_LOG_SIZE);
                }
                // A rejection whose log did not fit (the kernel keeps the tail of a
                // rotating log): reload once more with room for all of it.
                Err((_, true_size)) if size > 0 && true_size as usize > size => {
                    size = (true_size as usize).min(MAX_LOG_SIZE);
                    if size <= log.len() {
                        return Err((Errno::ENOSPC, log_text(&log)));
                    }
                }
                Err((errno, _)) => return Err((errno, log_text(&log))),
            }
        }
    }

    /// Adopts an fd that refers to a program (`EINVAL` if it does not).
    pub fn from_fd(fd: OwnedFd) -> Result<KernelProg, Error> {
        let out = sys::prog_info(fd.as_fd(), false, false, false).map_err(|errno| Error::Sys {
            op: "BPF_OBJ_GET_INFO_BY_FD",
            object: "adopted program fd".into(),
            errno,
        })?;
        Ok(KernelProg {
            fd,
            id: out.info.id,
        })
    }

    /// `BPF_OBJ_GET`: opens the program pinned at `path`.
    pub fn from_pinned(path: impl AsRef<Path>) -> Result<KernelProg, Error> {
        let path = path.as_ref();
        let c = path_cstring(path)?;
        let fd = sys::obj_get(&c, 0).map_err(|errno| Error::Sys {
            op: "BPF_OBJ_GET",
            object: path.display().to_string(),
            errno,
        })?;
        Self::from_fd(fd)
    }

    /// `BPF_PROG_GET_FD_BY_ID`.
    pub fn from_id(id: u32) -> Result<KernelProg, Error> {
        let fd = sys::get_fd_by_id(BPF_PROG_GET_FD_BY_ID, id).map_err(|errno| Error::Sys {
            op: "BPF_PROG_GET_FD_BY_ID",
            object: format!("prog id {id}"),
            errno,
        })?;
        Self::from_fd(fd)
    }

    /// `BPF_OBJ_PIN` at `path`.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let c = path_cstring(path.as_ref())?;
        sys::obj_pin(self.fd.as_fd(), &c).map_err(|errno| self.sys_err("BPF_OBJ_PIN", errno))
    }

    /// The program id.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn sys_err(&self, op: &'static str, errno: Errno) -> Error {
        Error::Sys {
            op,
            object: format!("prog id {}", self.id),
            errno,
        }
    }

    /// `BPF_PROG_TEST_RUN` with packet data `data_in`, room for `data_out_len` bytes of
    /// output data, an optional input context (e.g. `struct xdp_md`), and `repeat` runs.
    pub fn test_run(
        &self,
        data_in: &[u8],
        data_out_len: usize,
        ctx_in: Option<&[u8]>,
        repeat: u32,
    ) -> Result<TestRun, Error> {
        self.test_run_with(&TestRunArgs {
            data_in,
            data_out_len,
            ctx_in,
            ctx_out_len: ctx_in.map_or(0, <[u8]>::len),
            repeat,
            flags: 0,
            cpu: 0,
        })
    }

    /// `BPF_PROG_TEST_RUN` with every input of [`TestRunArgs`].
    pub fn test_run_with(&self, args: &TestRunArgs<'_>) -> Result<TestRun, Error> {
        let out = sys::prog_test_run(self.fd.as_fd(), args)
            .map_err(|errno| self.sys_err("BPF_PROG_TEST_RUN", errno))?;
        Ok(TestRun {
            retval: out.retval,
            duration_ns: out.duration_ns,
            data_out: out.data_out,
            ctx_out: out.ctx_out,
        })
    }

    /// `BPF_OBJ_GET_INFO_BY_FD`: tag, id, lengths, map ids, name.
    pub fn info(&self) -> Result<ProgInfo, Error> {
        let out = sys::prog_info(self.fd.as_fd(), false, false, true)
            .map_err(|errno| self.sys_err("BPF_OBJ_GET_INFO_BY_FD", errno))?;
        let i = &out.info;
        Ok(ProgInfo {
            prog_type: i.type_,
            id: i.id,
            tag: i.tag,
            xlated_prog_len: i.xlated_prog_len,
            jited_prog_len: i.jited_prog_len,
            map_ids: out.map_ids,
            name: name_from_kernel(&i.name),
            gpl_compatible: i.gpl_compatible & 1 != 0,
            verified_insns: i.verified_insns,
            btf_id: i.btf_id,
        })
    }

    /// The xlated program (after the verifier's fixups), as the kernel dumps it for
    /// `bpftool prog dump xlated`: map addresses replaced by `BPF_PSEUDO_MAP_FD` + map id,
    /// helper calls as offsets from `__bpf_call_base`.
    pub fn xlated(&self) -> Result<Vec<Insn>, Error> {
        let out = sys::prog_info(self.fd.as_fd(), true, false, false)
            .map_err(|errno| self.sys_err("BPF_OBJ_GET_INFO_BY_FD", errno))?;
        kbpf_isa::insn::insns_from_bytes(&out.xlated).ok_or_else(|| {
            Error::Arg(format!(
                "prog id {}: xlated length {} is not a multiple of 8",
                self.id,
                out.xlated.len()
            ))
        })
    }

    /// The JITed machine code (empty if the JIT is off).
    pub fn jited(&self) -> Result<Vec<u8>, Error> {
        sys::prog_info(self.fd.as_fd(), false, true, false)
            .map(|o| o.jited)
            .map_err(|errno| self.sys_err("BPF_OBJ_GET_INFO_BY_FD", errno))
    }
}

impl AsFd for KernelProg {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for KernelProg {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

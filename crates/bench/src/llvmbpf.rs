//! bpftime's LLVM JIT (`github.com/eunomia-bpf/llvmbpf`, LLVM's O3 pipeline), a peer column of
//! the side-by-side table (issue #17). Not built by Cargo and not needed by CI:
//! `scripts/llvmbpf-build.sh` builds llvmbpf and its C shim `libkbpf_llvmbpf.so` into
//! `$LLVMBPF_OUT` (default `target/llvmbpf`), and [`LlvmBpf::open`] loads the shim at run time
//! with `dlopen`. Where it is absent the column is skipped.
//!
//! `libc::dlopen`/`dlsym` rather than the `libloading` crate: `libc` is already a workspace
//! dependency, and five symbols looked up once from a library that is never unloaded need
//! nothing more. All the `unsafe` of this peer is in this module.
//!
//! llvmbpf runs the bytecode with `r1 = mem`, `r2 = mem_len`; the benchmarks give it rbpf's
//! `{ u64 data; u64 data_end; }` context ([`crate::progs::context`]). No helpers and no maps
//! are registered, so only the programs without maps run on it.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::PathBuf;

type LoadFn = unsafe extern "C" fn(*const c_void, usize) -> *mut c_void;
type RunFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, *mut u64) -> c_int;
type FunctionFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type ErrorFn = unsafe extern "C" fn() -> *const c_char;
type FreeFn = unsafe extern "C" fn(*mut c_void);
/// llvmbpf's compiled program: `uint64_t (*)(void *mem, size_t mem_len)`.
type Compiled = unsafe extern "C" fn(*mut c_void, usize) -> u64;

/// The shim's file name in `$LLVMBPF_OUT`.
pub const SHIM: &str = "libkbpf_llvmbpf.so";

/// Where [`LlvmBpf::open`] looks for the shim: `$LLVMBPF_OUT`, else `target/llvmbpf` under the
/// workspace root (the build script's default).
pub fn shim_path() -> PathBuf {
    std::env::var_os("LLVMBPF_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target/llvmbpf"))
        .join(SHIM)
}

/// The loaded shim. The library stays loaded for the rest of the process (LLVM does not
/// expect to be unloaded), so the struct can be dropped freely.
pub struct LlvmBpf {
    load: LoadFn,
    run: RunFn,
    function: FunctionFn,
    error: ErrorFn,
    free: FreeFn,
}

/// One program compiled by llvmbpf.
pub struct LlvmProgram<'a> {
    lib: &'a LlvmBpf,
    handle: *mut c_void,
    compiled: Compiled,
}

impl LlvmBpf {
    /// Loads the shim from [`shim_path`]; the error says why it cannot.
    pub fn open() -> Result<LlvmBpf, String> {
        let path = shim_path();
        if !path.exists() {
            return Err(format!("{} not found", path.display()));
        }
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: NUL in path", path.display()))?;
        // SAFETY: `c` is a NUL-terminated path. Loading runs the library's (and LLVM's)
        // static constructors, which is what the shim is for.
        let lib = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next
            // dl* call on this thread.
            let e = unsafe { libc::dlerror() };
            let msg = if e.is_null() {
                "dlopen failed".to_string()
            } else {
                // SAFETY: as above.
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            };
            return Err(format!("{}: {msg}", path.display()));
        }
        let sym = |name: &CStr| {
            // SAFETY: `lib` is a live handle from dlopen and `name` is NUL-terminated.
            let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
            if p.is_null() {
                Err(format!("{}: no symbol {name:?}", path.display()))
            } else {
                Ok(p)
            }
        };
        // SAFETY: each symbol is the shim's `extern "C"` function of exactly this signature
        // (scripts/llvmbpf-build.sh writes shim.cpp); function and data pointers have the
        // same size on the platforms dlsym exists on.
        unsafe {
            Ok(LlvmBpf {
                load: std::mem::transmute::<*mut c_void, LoadFn>(sym(c"llvmbpf_load")?),
                run: std::mem::transmute::<*mut c_void, RunFn>(sym(c"llvmbpf_run")?),
                function: std::mem::transmute::<*mut c_void, FunctionFn>(sym(c"llvmbpf_function")?),
                error: std::mem::transmute::<*mut c_void, ErrorFn>(sym(c"llvmbpf_error")?),
                free: std::mem::transmute::<*mut c_void, FreeFn>(sym(c"llvmbpf_free")?),
            })
        }
    }

    /// Loads and JIT-compiles `code` (raw 8-byte instructions).
    pub fn load(&self, code: &[u8]) -> Result<LlvmProgram<'_>, String> {
        // SAFETY: the shim copies `code.len()` bytes from `code` and returns an owned handle
        // or NULL.
        let handle = unsafe { (self.load)(code.as_ptr().cast(), code.len()) };
        if handle.is_null() {
            // SAFETY: llvmbpf_error returns a NUL-terminated string owned by the shim, valid
            // until the next load on this thread; it is copied at once.
            let e = unsafe { CStr::from_ptr((self.error)()) };
            return Err(e.to_string_lossy().into_owned());
        }
        // SAFETY: `handle` is a live handle whose program was compiled by llvmbpf_load;
        // llvmbpf_function returns its compiled function, of the `Compiled` signature.
        let compiled =
            unsafe { std::mem::transmute::<*mut c_void, Compiled>((self.function)(handle)) };
        Ok(LlvmProgram {
            lib: self,
            handle,
            compiled,
        })
    }
}

impl LlvmProgram<'_> {
    /// The compiled function as the benchmarks' common [`crate::RawEntry`]: `(mem, mem_len,
    /// _)` (the third argument is ignored). Calling it has [`LlvmProgram::run`]'s safety
    /// contract, and the pointer dangles once `self` is dropped.
    pub fn raw_entry(&self) -> crate::RawEntry {
        // SAFETY: only changes the type: on x86-64 SysV a `(*mut c_void, usize) -> u64`
        // function takes its arguments in rdi and rsi, as `(u64, u64, u64) -> u64` passes
        // them, and leaves rdx (the third) unread.
        unsafe { std::mem::transmute::<Compiled, crate::RawEntry>(self.compiled) }
    }

    /// One run through llvmbpf's `exec` (`r1 = mem`, `r2 = mem_len`).
    ///
    /// # Safety
    /// llvmbpf does not verify: the program must only access `mem` and what `mem`'s contents
    /// point to (for the benchmarks: the context and its packet), alive for the run.
    pub unsafe fn exec(&self, mem: &mut [u8]) -> Result<u64, String> {
        let mut ret = 0u64;
        // SAFETY: `handle` is live; the caller vouches for the program's accesses.
        let rc =
            unsafe { (self.lib.run)(self.handle, mem.as_mut_ptr().cast(), mem.len(), &mut ret) };
        if rc == 0 {
            Ok(ret)
        } else {
            Err(format!("llvmbpf exec: {rc}"))
        }
    }

    /// One run of the compiled function called directly, as bpftime calls it.
    ///
    /// # Safety
    /// As [`LlvmProgram::exec`].
    #[inline]
    pub unsafe fn run(&self, mem: &mut [u8]) -> u64 {
        // SAFETY: the compiled function of a live handle; the caller vouches for the rest.
        unsafe { (self.compiled)(mem.as_mut_ptr().cast(), mem.len()) }
    }
}

impl Drop for LlvmProgram<'_> {
    fn drop(&mut self) {
        // SAFETY: `handle` came from llvmbpf_load and is freed once.
        unsafe { (self.lib.free)(self.handle) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progs;

    /// Runs where the shim is built (scripts/llvmbpf-build.sh); passes with a note elsewhere.
    #[test]
    fn llvmbpf_computes_what_the_programs_compute() {
        let lib = match LlvmBpf::open() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("llvmbpf test skipped: {e}");
                return;
            }
        };
        let pkt = progs::packet();
        let big: Vec<u8> = (0..1600u32).map(|i| (i * 7) as u8).collect();
        for (name, insns) in crate::bytecode_programs() {
            let p = lib.load(&progs::bytes(&insns)).expect(name);
            let (data, want) = match name {
                n if n.starts_with("ALU") => (&pkt, progs::alu_loop_native()),
                n if n.starts_with("FNV") => (&big, progs::fnv1a_native(&big[..1500])),
                _ => (&pkt, progs::parse_hash_native(&pkt)),
            };
            let mut ctx = progs::context(data);
            // SAFETY: the programs read only the context and the packet it describes.
            let (a, b) = unsafe { (p.exec(&mut ctx).unwrap(), p.run(&mut ctx)) };
            assert_eq!(a, want, "{name}");
            assert_eq!(b, want, "{name}");
        }
    }
}

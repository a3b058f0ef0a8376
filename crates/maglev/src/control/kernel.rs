//! [`MapOps`] over the live kernel (raw `bpf()` through `kbpf-kernel`), and the kernel
//! side of the demo: loading `maglev.bpf.o` with bpftool and running it with
//! `BPF_PROG_TEST_RUN`.
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use kbpf_kernel::consts::{BPF_ANY, BPF_F_INNER_MAP, BPF_MAP_TYPE_ARRAY};
use kbpf_kernel::{KernelMap, KernelProg, MapCreateAttr};

use super::{ControlError, DatapathMaps, LbConfig, LoadBalancer, MAP_NAMES, MapOps};

/// The live kernel: handles are `kbpf_kernel::KernelMap` (an fd each). Closing the fd
/// of an inner map that is in an outer map keeps the map alive; once swapped out, the
/// kernel frees it after an RCU grace period.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOps;

use kbpf_uapi::errno::ENOENT;
/// Threads [`KernelOps`] uses for a batch of outer-map updates.
pub const UPDATE_THREADS: usize = 64;
/// `BPF_MAP_UPDATE_BATCH`.
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

fn err(op: &'static str, map: &KernelMap, e: kbpf_kernel::Error) -> ControlError {
    ControlError::Map {
        op,
        map: format!("kernel map id {}", map.id()),
        msg: e.to_string(),
    }
}

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

impl MapOps for KernelOps {
    type Map = KernelMap;

    fn create_inner(
        &self,
        name: &str,
        value_size: u32,
        max_entries: u32,
    ) -> Result<KernelMap, ControlError> {
        let attr = MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, value_size, max_entries)
            .flags(BPF_F_INNER_MAP)
            .name(name);
        KernelMap::create(&attr).map_err(|e| ControlError::Map {
            op: "BPF_MAP_CREATE",
            map: name.to_string(),
            msg: e.to_string(),
        })
    }

    fn update(&self, map: &KernelMap, key: &[u8], value: &[u8]) -> Result<(), ControlError> {
        map.update(key, value, BPF_ANY)
            .map_err(|e| err("BPF_MAP_UPDATE_ELEM", map, e))
    }

    /// One `BPF_MAP_UPDATE_BATCH` (`generic_map_update_batch`) for the whole array, falling
    /// back to element updates where the kernel has no batch ops.
    fn fill_array(&self, map: &KernelMap, values: &[[u8; 8]]) -> Result<(), ControlError> {
        if map.value_size() != 8 {
            for (i, v) in values.iter().enumerate() {
                self.update(map, &(i as u32).to_ne_bytes(), v)?;
            }
            return Ok(());
        }
        let keys: Vec<u32> = (0..values.len() as u32).collect();
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: values.len() as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is a valid bpf_attr prefix for BPF_MAP_UPDATE_BATCH; keys and
        // values point to `count` u32 keys and `count` 8-byte values that outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>() as u32,
            )
        };
        if r == 0 && attr.count as usize == values.len() {
            return Ok(());
        }
        let errno = std::io::Error::last_os_error();
        if matches!(
            errno.raw_os_error(),
            Some(libc::EINVAL) | Some(524) | Some(libc::ENOSYS)
        ) && r != 0
        {
            for (i, v) in values.iter().enumerate() {
                self.update(map, &(i as u32).to_ne_bytes(), v)?;
            }
            return Ok(());
        }
        Err(ControlError::Map {
            op: "BPF_MAP_UPDATE_BATCH",
            map: format!("kernel map id {}", map.id()),
            msg: format!(
                "{} of {} elements written: {errno}",
                attr.count,
                values.len()
            ),
        })
    }

    fn lookup(&self, map: &KernelMap, key: &[u8]) -> Result<Option<Vec<u8>>, ControlError> {
        match map.lookup(key) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.errno().map(|x| x.0) == Some(ENOENT) => Ok(None),
            Err(e) => Err(err("BPF_MAP_LOOKUP_ELEM", map, e)),
        }
    }

    fn delete(&self, map: &KernelMap, key: &[u8]) -> Result<bool, ControlError> {
        match map.delete(key) {
            Ok(()) => Ok(true),
            Err(e) if e.errno().map(|x| x.0) == Some(ENOENT) => Ok(false),
            Err(e) => Err(err("BPF_MAP_DELETE_ELEM", map, e)),
        }
    }

    fn keys(&self, map: &KernelMap) -> Result<Vec<Vec<u8>>, ControlError> {
        map.keys().map_err(|e| err("BPF_MAP_GET_NEXT_KEY", map, e))
    }

    fn set_inner(
        &self,
        outer: &KernelMap,
        key: &[u8],
        inner: &KernelMap,
    ) -> Result<(), ControlError> {
        outer
            .update_fd(key, inner.as_fd(), BPF_ANY)
            .map_err(|e| err("BPF_MAP_UPDATE_ELEM (inner map fd)", outer, e))
    }

    /// The updates from up to [`UPDATE_THREADS`] threads: the kernel makes every
    /// map-in-map update wait for an RCU grace period (`synchronize_rcu()`, several ms),
    /// and concurrent waiters share grace periods.
    fn set_inner_many(
        &self,
        outer: &KernelMap,
        items: &[(&[u8], &KernelMap)],
    ) -> Result<(), ControlError> {
        if items.len() <= 1 {
            for (k, m) in items {
                self.set_inner(outer, k, m)?;
            }
            return Ok(());
        }
        let per = items.len().div_ceil(UPDATE_THREADS);
        std::thread::scope(|s| {
            let handles: Vec<_> = items
                .chunks(per)
                .map(|chunk| {
                    s.spawn(move || {
                        for (k, m) in chunk {
                            self.set_inner(outer, k, m)?;
                        }
                        Ok::<(), ControlError>(())
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("outer-map update thread")?;
            }
            Ok(())
        })
    }

    /// `memlock:` of the map's fdinfo.
    fn memlock(&self, map: &KernelMap) -> Option<u64> {
        let text =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", map.as_raw_fd())).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl DatapathMaps<KernelMap> {
    /// Opens the maps pinned by `bpftool prog loadall maglev.bpf.o PROGS pinmaps DIR`.
    pub fn open_pinned(dir: &Path) -> Result<DatapathMaps<KernelMap>, ControlError> {
        let mut maps = Vec::new();
        for name in MAP_NAMES {
            let m = KernelMap::from_pinned(dir.join(name)).map_err(|e| ControlError::Map {
                op: "BPF_OBJ_GET",
                map: dir.join(name).display().to_string(),
                msg: e.to_string(),
            })?;
            maps.push((name.to_string(), m));
        }
        DatapathMaps::from_named(maps)
    }
}

/// `maglev.bpf.o` loaded into the live kernel by `bpftool prog loadall` under unique
/// pin directories in /sys/fs/bpf (removed on drop: the program and maps then go away
/// with the last fd).
#[derive(Debug)]
pub struct KernelLoad {
    /// The XDP program `maglev_xdp`.
    pub prog: KernelProg,
    progs_dir: PathBuf,
    maps_dir: PathBuf,
}

impl Drop for KernelLoad {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.progs_dir);
        let _ = std::fs::remove_dir_all(&self.maps_dir);
    }
}

/// Why the kernel datapath cannot be used here, if it cannot (no `bpf()`, no bpftool,
/// no bpffs, no object).
pub fn unavailable() -> Option<String> {
    if let Err(e) = kbpf_kernel::bpf_available() {
        return Some(format!("bpf() unavailable: {e}"));
    }
    if !Path::new(crate::OBJECT_PATH).is_file() {
        return Some(format!("{} missing", crate::OBJECT_PATH));
    }
    kbpf_kernel::bpftool::unavailable(Path::new(crate::OBJECT_PATH))
}

/// Loads `object` (normally [`crate::OBJECT_PATH`]) into the kernel, and returns the
/// load (program + pins) and a [`LoadBalancer`] over its pinned maps.
pub fn load(
    object: &Path,
    config: LbConfig,
) -> Result<(KernelLoad, LoadBalancer<KernelOps>), ControlError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static LOADS: AtomicU32 = AtomicU32::new(0);
    let unique = format!(
        "{}_{}",
        std::process::id(),
        LOADS.fetch_add(1, Ordering::Relaxed)
    );
    let progs_dir = PathBuf::from(format!("/sys/fs/bpf/kbpf_maglev_lb_{unique}"));
    let maps_dir = PathBuf::from(format!("/sys/fs/bpf/kbpf_maglev_lb_{unique}_maps"));
    let out = std::process::Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(object)
        .arg(&progs_dir)
        .arg("pinmaps")
        .arg(&maps_dir)
        .output()
        .map_err(|e| ControlError::Map {
            op: "bpftool prog loadall",
            map: object.display().to_string(),
            msg: e.to_string(),
        })?;
    let mut load = KernelLoad {
        prog: KernelProg::from_pinned(progs_dir.join("maglev_xdp")).map_err(|e| {
            ControlError::Map {
                op: "bpftool prog loadall",
                map: object.display().to_string(),
                msg: format!("{e}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            }
        })?,
        progs_dir,
        maps_dir,
    };
    let maps = DatapathMaps::open_pinned(&load.maps_dir)?;
    let lb = LoadBalancer::new(KernelOps, maps, config)?;
    // Unpin now: the fds we hold keep program and maps alive, and nothing leaks in
    // /sys/fs/bpf if the process dies.
    let _ = std::fs::remove_dir_all(&load.progs_dir);
    let _ = std::fs::remove_dir_all(&load.maps_dir);
    load.progs_dir = PathBuf::new();
    load.maps_dir = PathBuf::new();
    Ok((load, lb))
}

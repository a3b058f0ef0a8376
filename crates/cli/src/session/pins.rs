//! Pin files: resolving user paths inside the bpffs directory, writing a pin with bpftool's
//! errors, finding the map pinned at a path, and the daemon's view of `rm` (pins whose file
//! is gone are dropped). Methods of [`Session`], apart from its state and persistence
//! because they are about the directory's files, not the objects.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use super::{Reply, SYS_BPFFS, Session, strerror};

impl Session {
    /// The daemon's view of `rm`: pins whose placeholder file was removed since the last
    /// request are dropped (and what only they held is freed at the next commit). Only the
    /// directories whose modification time changed are looked at, so a request costs one
    /// `stat` per pin directory, not one per pin.
    pub fn refresh_pins(&mut self) {
        let root = self.opts.bpffs.clone();
        let parent = |rel: &str| -> PathBuf {
            let p = root.join(rel);
            p.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.clone())
        };
        if self.pin_dir_set.is_none() {
            let mut dirs: HashSet<PathBuf> = HashSet::new();
            for e in self.maps.values() {
                dirs.extend(e.pins.iter().map(|p| parent(p)));
            }
            for p in self.live_progs.values() {
                dirs.extend(p.pins.iter().map(|p| parent(p)));
            }
            for r in &self.progs {
                if let Some(a) = r.get("pins").and_then(|v| v.as_array()) {
                    dirs.extend(a.iter().filter_map(|p| p.as_str()).map(parent));
                }
            }
            self.pin_dir_set = Some(dirs);
        }
        let dirs = self.pin_dir_set.clone().unwrap_or_default();
        let mut changed: HashSet<PathBuf> = HashSet::new();
        for d in dirs {
            let now = std::fs::metadata(&d).and_then(|m| m.modified()).ok();
            let before = self.pin_dirs.get(&d).copied();
            if now.is_none() || now != before {
                match now {
                    Some(t) => self.pin_dirs.insert(d.clone(), t),
                    None => self.pin_dirs.remove(&d),
                };
                changed.insert(d);
            }
        }
        self.pin_dirs
            .retain(|d, _| changed.contains(d) || d.exists());
        if changed.is_empty() {
            return;
        }
        let gone = |rel: &String| changed.contains(&parent(rel)) && !root.join(rel).is_file();
        let mut any = false;
        for e in self.maps.values_mut() {
            let before = e.pins.len();
            e.pins.retain(|p| !gone(p));
            any |= e.pins.len() != before;
        }
        let mut unpinned_progs = Vec::new();
        for (id, p) in self.live_progs.iter_mut() {
            let before = p.pins.len();
            p.pins.retain(|p| !gone(p));
            if p.pins.len() != before {
                any = true;
                if p.pins.is_empty() {
                    unpinned_progs.push(*id);
                }
            }
        }
        for r in self.progs.iter_mut() {
            if let Some(a) = r.get_mut("pins").and_then(|v| v.as_array_mut()) {
                let before = a.len();
                a.retain(|p| p.as_str().is_none_or(|p| !gone(&p.to_string())));
                any |= a.len() != before;
            }
        }
        // A program whose last pin went is freed, as on bpffs once no fd holds it.
        self.progs.retain(|r| {
            r.get("pins")
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty())
        });
        for id in unpinned_progs {
            self.live_progs.remove(&id);
        }
        if any {
            // Freed before the command runs, as a fresh process would find them gone.
            self.mark_meta();
            self.collect_garbage();
        }
    }

    /// Resolves a user path to a path relative to the bpffs directory: `/sys/fs/bpf/…` and
    /// paths under the bpffs directory itself. `None` for any other path.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let p = Path::new(path);
        let rest = p
            .strip_prefix(SYS_BPFFS)
            .ok()
            .or_else(|| p.strip_prefix(&self.opts.bpffs).ok())?;
        let mut parts: Vec<String> = Vec::new();
        for c in rest.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                _ => return None,
            }
        }
        Some(parts.join("/"))
    }

    /// The pin at `path` relative to the bpffs directory, when its file exists (bpftool's
    /// `bpf obj get (PATH): No such file or directory` otherwise); the map or program
    /// pinned there is the caller's to find.
    pub(crate) fn pin_file(&self, path: &str) -> Result<String, Reply> {
        let not_found = || {
            Reply::err(
                format!("bpf obj get ({path}): No such file or directory"),
                -1,
            )
        };
        let rel = self.resolve(path).ok_or_else(not_found)?;
        if !self.opts.bpffs.join(&rel).is_file() {
            return Err(not_found());
        }
        Ok(rel)
    }

    /// The map pinned at `path` (`bpf obj get (PATH): …` errors as bpftool).
    pub fn pinned_map(&self, path: &str) -> Result<u32, Reply> {
        let rel = self.pin_file(path)?;
        self.maps
            .iter()
            .find(|(_, e)| e.pins.contains(&rel))
            .map(|(id, _)| *id)
            .ok_or_else(|| Reply::err(format!("bpf obj get ({path}): Permission denied"), -1))
    }

    /// Writes the pin file of object `kind id` (`kind`: `map` or `prog`) at `path`, with
    /// bpftool's `do_pin_fd` errors and statuses, and returns the path relative to the bpffs
    /// directory for the caller to record. A pin file no map or program owns (left by a
    /// process that died before saving its state) is replaced.
    pub(crate) fn write_pin(&self, kind: &str, id: u32, path: &str) -> Result<String, Reply> {
        let Some(rel) = self.resolve(path).filter(|r| !r.is_empty()) else {
            return Err(Reply::err(
                format!(
                    "can't pin the object ({path}): not under {SYS_BPFFS} or the bpffs directory ({})",
                    self.opts.bpffs.display()
                ),
                -1,
            ));
        };
        let file = self.opts.bpffs.join(&rel);
        let parent = file.parent().unwrap_or(&self.opts.bpffs);
        if !parent.is_dir() {
            let shown = Path::new(path)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return Err(Reply::err(
                format!(
                    "can't mount BPF file system to pin the object ({path}): mount --make-private {shown} failed: No such file or directory"
                ),
                -1,
            ));
        }
        // A symlink inside the directory must not carry a pin outside it.
        let inside = match (parent.canonicalize(), self.opts.bpffs.canonicalize()) {
            (Ok(p), Ok(root)) => p.starts_with(&root),
            _ => false,
        };
        if !inside {
            return Err(Reply::err(
                format!(
                    "can't pin the object ({path}): the path leaves the bpffs directory ({})",
                    self.opts.bpffs.display()
                ),
                -1,
            ));
        }
        let owned = self.maps.values().any(|e| e.pins.contains(&rel))
            || self.live_progs.values().any(|p| p.pins.contains(&rel))
            || self.progs.iter().any(|r| {
                r.get("pins")
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| a.iter().any(|p| p.as_str() == Some(rel.as_str())))
            });
        let stale_placeholder = !owned
            && std::fs::read_to_string(&file)
                .is_ok_and(|c| c.starts_with("kbpf map ") || c.starts_with("kbpf prog "));
        // symlink_metadata: a (dangling) symlink at the pin's name is never written through.
        if file.symlink_metadata().is_ok() && (!stale_placeholder || file.is_symlink()) {
            return Err(Reply::err(
                format!("can't pin the object ({path}): File exists"),
                -17,
            ));
        }
        std::fs::write(&file, format!("kbpf {kind} {id}\n")).map_err(|e| {
            Reply::err(
                format!("can't pin the object ({path}): {}", strerror(&e)),
                -e.raw_os_error().unwrap_or(1),
            )
        })?;
        Ok(rel)
    }

    /// Pins map `id` at `path` (bpftool's `do_pin_fd` errors and statuses).
    pub fn pin_map(&mut self, id: u32, path: &str) -> Result<(), Reply> {
        let rel = self.write_pin("map", id, path)?;
        if let Some(e) = self.maps.get_mut(&id) {
            e.pins.push(rel);
        }
        self.mark_meta();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Options;

    #[test]
    fn sys_fs_bpf_resolves_inside_the_directory() {
        let s = Session::new(Options {
            bpffs: PathBuf::from("/tmp/kb"),
            json: false,
            pretty: false,
            debug: false,
            profile: kbpf_profile::KernelProfile::builtin(),
        });
        assert_eq!(s.resolve("/sys/fs/bpf/a/b").as_deref(), Some("a/b"));
        assert_eq!(s.resolve("/sys/fs/bpf//a/./b/").as_deref(), Some("a/b"));
        assert_eq!(s.resolve("/tmp/kb/a").as_deref(), Some("a"));
        assert_eq!(s.resolve("/sys/fs/bpf/a/../c").as_deref(), Some("c"));
        assert_eq!(s.resolve("/sys/fs/bpf/../etc"), None);
        assert_eq!(s.resolve("/etc/passwd"), None);
        assert_eq!(s.resolve("/sys/fs/bpfx/a"), None);
    }
}

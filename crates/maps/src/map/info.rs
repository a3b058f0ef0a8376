//! What `bpftool map show` reports about a map: its summary ([`MapInfo`]) and its memory
//! usage, computed as the kernel's `map_mem_usage` ops do with the struct sizes of the map's
//! kernel profile.

use std::fmt;

use super::{Map, Storage};
use crate::uapi::{BPF_F_MMAPABLE, MapType, PAGE_SIZE, RINGBUF_NR_META_PAGES};

/// A summary of one map as `bpftool map show` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// Map id.
    pub id: u32,
    /// Map type.
    pub map_type: MapType,
    /// Name.
    pub name: String,
    /// Permanent flags.
    pub map_flags: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Memory usage as the kernel's `map_mem_usage` computes it.
    pub memlock: u64,
    /// The id of the map's BTF object (0: none).
    pub btf_id: u32,
    /// `btf_key_type_id`.
    pub btf_key_type_id: u32,
    /// `btf_value_type_id`.
    pub btf_value_type_id: u32,
}

impl fmt::Display for MapInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {}  name {}  flags {:#x}",
            self.id, self.map_type, self.name, self.map_flags
        )?;
        write!(
            f,
            "\tkey {}B  value {}B  max_entries {}  memlock {}B",
            self.key_size, self.value_size, self.max_entries, self.memlock
        )?;
        if self.btf_id != 0 {
            write!(f, "\n\tbtf_id {}", self.btf_id)?;
        }
        Ok(())
    }
}

impl Map {
    /// `bpftool map show` summary.
    pub fn info(&self) -> MapInfo {
        MapInfo {
            id: self.0.id,
            map_type: self.0.map_type,
            name: self.0.name.clone(),
            map_flags: self.0.map_flags,
            key_size: self.0.key_size,
            value_size: self.0.value_size,
            max_entries: self.0.max_entries,
            memlock: self.memlock(),
            btf_id: self.0.btf.as_ref().map_or(0, |(b, _, _)| b.id()),
            btf_key_type_id: self.0.btf.as_ref().map_or(0, |b| b.1),
            btf_value_type_id: self.0.btf.as_ref().map_or(0, |b| b.2),
        }
    }

    /// Memory usage as the kernel's `map_mem_usage` op reports it (bpftool's `memlock`), with
    /// the struct sizes of the map's kernel profile.
    pub fn memlock(&self) -> u64 {
        let m = &self.0;
        let cpus = m.nr_cpus as u64;
        match &m.storage {
            Storage::Array { slots, .. } => {
                // array_map_mem_usage
                let entries = *slots as u64;
                let elem = m.elem_size as u64;
                let mut usage = m.profile.bpf_array_value_off as u64;
                if m.map_type == MapType::PercpuArray {
                    usage += entries * 8;
                    usage += entries * elem * cpus;
                } else if m.map_flags & BPF_F_MMAPABLE != 0 {
                    usage = usage.next_multiple_of(PAGE_SIZE);
                    usage += (entries * elem).next_multiple_of(PAGE_SIZE);
                } else {
                    usage += entries * elem;
                }
                usage
            }
            Storage::Htab(h) => h.mem_usage(m),
            // queue_stack_map_mem_usage: sizeof(struct bpf_queue_stack) plus max_entries + 1
            // value slots.
            Storage::QueueStack(_) => {
                m.profile.sizeof_bpf_queue_stack as u64
                    + (m.max_entries as u64 + 1) * m.value_size as u64
            }
            // ringbuf_map_mem_usage: the map struct, every page (meta + data), and the page
            // pointer array, which lists the data pages twice (they are mapped twice).
            Storage::Ringbuf(_) => {
                let data_pages = m.max_entries as u64 / PAGE_SIZE;
                m.profile.sizeof_bpf_ringbuf_map as u64
                    + (RINGBUF_NR_META_PAGES + data_pages) * PAGE_SIZE
                    + (RINGBUF_NR_META_PAGES + 2 * data_pages) * 8
            }
            // trie_mem_usage: elements only.
            Storage::LpmTrie(t) => t.mem_usage(),
            Storage::Sockets { .. } if crate::stack_trace::is_stack_trace(m.map_type) => {
                crate::stack_trace::mem_usage(m)
            }
            Storage::Sockets { .. } => crate::sock_maps::mem_usage(m),
            Storage::Redirect(r) => crate::devmap::mem_usage(m, r),
        }
    }
}

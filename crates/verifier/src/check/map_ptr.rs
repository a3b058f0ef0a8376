//! Loads and stores through kernel-object pointers: a map pointer (`CONST_PTR_TO_MAP`,
//! `check_ptr_to_map_access`) and a trusted BTF pointer (`PTR_TO_BTF_ID`,
//! `check_ptr_to_btf_access`).
//! The kernel lets a privileged program read the fields of the map's kernel struct (`struct
//! bpf_array`, `struct bpf_htab`, …) through its BTF; kbpf checks what comes before that (the
//! capability, a negative offset, a write, each with the kernel's message naming the struct)
//! and refuses the field reads themselves: it does not lay out the kernel's map structs.

use kbpf_uapi::bpf::*;

use super::*;

/// The kernel struct behind a map type (`map->ops->map_btf_id`); `None` for a type without one.
fn map_struct(map_type: u32) -> Option<&'static str> {
    Some(match map_type {
        BPF_MAP_TYPE_ARRAY
        | BPF_MAP_TYPE_PERCPU_ARRAY
        | BPF_MAP_TYPE_PROG_ARRAY
        | BPF_MAP_TYPE_PERF_EVENT_ARRAY
        | BPF_MAP_TYPE_CGROUP_ARRAY
        | BPF_MAP_TYPE_ARRAY_OF_MAPS => "bpf_array",
        BPF_MAP_TYPE_HASH
        | BPF_MAP_TYPE_PERCPU_HASH
        | BPF_MAP_TYPE_LRU_HASH
        | BPF_MAP_TYPE_LRU_PERCPU_HASH
        | BPF_MAP_TYPE_HASH_OF_MAPS => "bpf_htab",
        BPF_MAP_TYPE_LPM_TRIE => "lpm_trie",
        BPF_MAP_TYPE_STACK_TRACE => "bpf_stack_map",
        BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH => "bpf_dtab",
        BPF_MAP_TYPE_SOCKMAP => "bpf_stab",
        BPF_MAP_TYPE_SOCKHASH => "bpf_shtab",
        BPF_MAP_TYPE_CPUMAP => "bpf_cpu_map",
        BPF_MAP_TYPE_XSKMAP => "xsk_map",
        BPF_MAP_TYPE_CGROUP_STORAGE | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE => {
            "bpf_cgroup_storage_map"
        }
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY => "reuseport_array",
        BPF_MAP_TYPE_QUEUE | BPF_MAP_TYPE_STACK => "bpf_queue_stack",
        BPF_MAP_TYPE_SK_STORAGE
        | BPF_MAP_TYPE_INODE_STORAGE
        | BPF_MAP_TYPE_TASK_STORAGE
        | BPF_MAP_TYPE_CGRP_STORAGE => "bpf_local_storage_map",
        BPF_MAP_TYPE_STRUCT_OPS => "bpf_struct_ops_map",
        BPF_MAP_TYPE_RINGBUF | BPF_MAP_TYPE_USER_RINGBUF => "bpf_ringbuf_map",
        BPF_MAP_TYPE_BLOOM_FILTER => "bpf_bloom_filter",
        BPF_MAP_TYPE_ARENA => "bpf_arena",
        _ => return None,
    })
}

impl Checker<'_> {
    /// `check_ptr_to_map_access` for an access at `off` through the map pointer in `regno`.
    pub(super) fn check_ptr_to_map_access(
        &mut self,
        regno: u8,
        reg: &RegState,
        off: i32,
        write: bool,
    ) -> R<Option<RegState>> {
        let map_type = self.maps[reg.map as usize].desc.map_type;
        let Some(tname) = map_struct(map_type) else {
            return rej(format!(
                "map_ptr access not supported for map type {map_type}"
            ));
        };
        if !self.opts.allow_ptr_leaks {
            return rej(format!(
                "'struct {tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"
            ));
        }
        if off < 0 {
            return rej(format!(
                "R{regno} is {tname} invalid negative access: off={off}"
            ));
        }
        if write {
            return rej(format!("only read from {tname} is supported"));
        }
        // btf_struct_access on the kernel's struct: not modelled.
        rej_hint(
            format!("R{regno} invalid mem access '{}'", reg.type_str()),
            "kbpf does not read the fields of the kernel's map structs",
        )
    }

    /// `check_ptr_to_btf_access` up to `btf_struct_access`: at a constant non-negative
    /// offset, reads only (no program type of kbpf's has `btf_struct_access`
    /// for writes). The field reads themselves are refused: kbpf does not lay out the
    /// kernel's structs.
    pub(super) fn check_ptr_to_btf_access(
        &mut self,
        regno: u8,
        reg: &RegState,
        off: i32,
        write: bool,
    ) -> R<Option<RegState>> {
        let t = reg.type_str();
        if off >= 0 && reg.s.is_const() && write {
            return rej("only read is supported");
        }
        rej_hint(
            format!("R{regno} invalid mem access '{t}'"),
            "kbpf does not read the fields of the kernel's structs",
        )
    }
}

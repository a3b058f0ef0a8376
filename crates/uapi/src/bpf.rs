//! uapi constants (`include/uapi/linux/bpf.h`) under their kernel names: map types, map
//! creation flags, element update flags, program types and `bpf()` commands.
//!
//! These are plain `u32`/`u64` values rather than enums on purpose: the oracle must be able
//! to hand the kernel values it does not know (an unknown map type, a reserved flag bit)
//! and observe the errno.

// ---- bpf() commands (enum bpf_cmd) ----
/// `BPF_MAP_CREATE`
pub const BPF_MAP_CREATE: u32 = 0;
/// `BPF_MAP_LOOKUP_ELEM`
pub const BPF_MAP_LOOKUP_ELEM: u32 = 1;
/// `BPF_MAP_UPDATE_ELEM`
pub const BPF_MAP_UPDATE_ELEM: u32 = 2;
/// `BPF_MAP_DELETE_ELEM`
pub const BPF_MAP_DELETE_ELEM: u32 = 3;
/// `BPF_MAP_GET_NEXT_KEY`
pub const BPF_MAP_GET_NEXT_KEY: u32 = 4;
/// `BPF_PROG_LOAD`
pub const BPF_PROG_LOAD: u32 = 5;
/// `BPF_OBJ_PIN`
pub const BPF_OBJ_PIN: u32 = 6;
/// `BPF_OBJ_GET`
pub const BPF_OBJ_GET: u32 = 7;
/// `BPF_PROG_TEST_RUN` (a.k.a. `BPF_PROG_RUN`)
pub const BPF_PROG_TEST_RUN: u32 = 10;
/// `BPF_PROG_GET_FD_BY_ID`
pub const BPF_PROG_GET_FD_BY_ID: u32 = 13;
/// `BPF_MAP_GET_FD_BY_ID`
pub const BPF_MAP_GET_FD_BY_ID: u32 = 14;
/// `BPF_OBJ_GET_INFO_BY_FD`
pub const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
/// `BPF_LINK_CREATE`
pub const BPF_LINK_CREATE: u32 = 28;

// ---- attach types (enum bpf_attach_type) ----
/// `BPF_XDP` (XDP links)
pub const BPF_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the stack's receive path.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `BPF_TCX_INGRESS`
pub const BPF_TCX_INGRESS: u32 = 46;
/// `BPF_TCX_EGRESS`
pub const BPF_TCX_EGRESS: u32 = 47;
/// `BPF_F_BEFORE`: attach before the anchor (before all programs when there is none).
pub const BPF_F_BEFORE: u32 = 1 << 3;

// ---- map types (enum bpf_map_type) ----
/// `BPF_MAP_TYPE_UNSPEC`
pub const BPF_MAP_TYPE_UNSPEC: u32 = 0;
/// `BPF_MAP_TYPE_HASH`
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PROG_ARRAY`
pub const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
pub const BPF_MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
/// `BPF_MAP_TYPE_PERCPU_HASH`
pub const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_STACK_TRACE`
pub const BPF_MAP_TYPE_STACK_TRACE: u32 = 7;
/// `BPF_MAP_TYPE_CGROUP_ARRAY`
pub const BPF_MAP_TYPE_CGROUP_ARRAY: u32 = 8;
/// `BPF_MAP_TYPE_LRU_HASH`
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
pub const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
/// `BPF_MAP_TYPE_LPM_TRIE`
pub const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`
pub const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
/// `BPF_MAP_TYPE_HASH_OF_MAPS`
pub const BPF_MAP_TYPE_HASH_OF_MAPS: u32 = 13;
/// `BPF_MAP_TYPE_DEVMAP`
pub const BPF_MAP_TYPE_DEVMAP: u32 = 14;
/// `BPF_MAP_TYPE_SOCKMAP`
pub const BPF_MAP_TYPE_SOCKMAP: u32 = 15;
/// `BPF_MAP_TYPE_CPUMAP`
pub const BPF_MAP_TYPE_CPUMAP: u32 = 16;
/// `BPF_MAP_TYPE_XSKMAP`
pub const BPF_MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_MAP_TYPE_SOCKHASH`
pub const BPF_MAP_TYPE_SOCKHASH: u32 = 18;
/// `BPF_MAP_TYPE_CGROUP_STORAGE`
pub const BPF_MAP_TYPE_CGROUP_STORAGE: u32 = 19;
/// `BPF_MAP_TYPE_REUSEPORT_SOCKARRAY`
pub const BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: u32 = 20;
/// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`
pub const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: u32 = 21;
/// `BPF_MAP_TYPE_QUEUE`
pub const BPF_MAP_TYPE_QUEUE: u32 = 22;
/// `BPF_MAP_TYPE_STACK`
pub const BPF_MAP_TYPE_STACK: u32 = 23;
/// `BPF_MAP_TYPE_SK_STORAGE`
pub const BPF_MAP_TYPE_SK_STORAGE: u32 = 24;
/// `BPF_MAP_TYPE_DEVMAP_HASH`
pub const BPF_MAP_TYPE_DEVMAP_HASH: u32 = 25;
/// `BPF_MAP_TYPE_STRUCT_OPS`
pub const BPF_MAP_TYPE_STRUCT_OPS: u32 = 26;
/// `BPF_MAP_TYPE_RINGBUF`
pub const BPF_MAP_TYPE_RINGBUF: u32 = 27;
/// `BPF_MAP_TYPE_INODE_STORAGE`
pub const BPF_MAP_TYPE_INODE_STORAGE: u32 = 28;
/// `BPF_MAP_TYPE_TASK_STORAGE`
pub const BPF_MAP_TYPE_TASK_STORAGE: u32 = 29;
/// `BPF_MAP_TYPE_BLOOM_FILTER`
pub const BPF_MAP_TYPE_BLOOM_FILTER: u32 = 30;
/// `BPF_MAP_TYPE_USER_RINGBUF`
pub const BPF_MAP_TYPE_USER_RINGBUF: u32 = 31;
/// `BPF_MAP_TYPE_CGRP_STORAGE`
pub const BPF_MAP_TYPE_CGRP_STORAGE: u32 = 32;
/// `BPF_MAP_TYPE_ARENA`
pub const BPF_MAP_TYPE_ARENA: u32 = 33;

/// bpftool's name for a map type (`"array_of_maps"`), as printed by `bpftool map show`.
pub fn map_type_name(map_type: u32) -> Option<&'static str> {
    Some(match map_type {
        BPF_MAP_TYPE_UNSPEC => "unspec",
        BPF_MAP_TYPE_HASH => "hash",
        BPF_MAP_TYPE_ARRAY => "array",
        BPF_MAP_TYPE_PROG_ARRAY => "prog_array",
        BPF_MAP_TYPE_PERF_EVENT_ARRAY => "perf_event_array",
        BPF_MAP_TYPE_PERCPU_HASH => "percpu_hash",
        BPF_MAP_TYPE_PERCPU_ARRAY => "percpu_array",
        BPF_MAP_TYPE_STACK_TRACE => "stack_trace",
        BPF_MAP_TYPE_CGROUP_ARRAY => "cgroup_array",
        BPF_MAP_TYPE_LRU_HASH => "lru_hash",
        BPF_MAP_TYPE_LRU_PERCPU_HASH => "lru_percpu_hash",
        BPF_MAP_TYPE_LPM_TRIE => "lpm_trie",
        BPF_MAP_TYPE_ARRAY_OF_MAPS => "array_of_maps",
        BPF_MAP_TYPE_HASH_OF_MAPS => "hash_of_maps",
        BPF_MAP_TYPE_DEVMAP => "devmap",
        BPF_MAP_TYPE_SOCKMAP => "sockmap",
        BPF_MAP_TYPE_CPUMAP => "cpumap",
        BPF_MAP_TYPE_XSKMAP => "xskmap",
        BPF_MAP_TYPE_SOCKHASH => "sockhash",
        BPF_MAP_TYPE_CGROUP_STORAGE => "cgroup_storage",
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY => "reuseport_sockarray",
        BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE => "percpu_cgroup_storage",
        BPF_MAP_TYPE_QUEUE => "queue",
        BPF_MAP_TYPE_STACK => "stack",
        BPF_MAP_TYPE_SK_STORAGE => "sk_storage",
        BPF_MAP_TYPE_DEVMAP_HASH => "devmap_hash",
        BPF_MAP_TYPE_STRUCT_OPS => "struct_ops",
        BPF_MAP_TYPE_RINGBUF => "ringbuf",
        BPF_MAP_TYPE_INODE_STORAGE => "inode_storage",
        BPF_MAP_TYPE_TASK_STORAGE => "task_storage",
        BPF_MAP_TYPE_BLOOM_FILTER => "bloom_filter",
        BPF_MAP_TYPE_USER_RINGBUF => "user_ringbuf",
        BPF_MAP_TYPE_CGRP_STORAGE => "cgrp_storage",
        BPF_MAP_TYPE_ARENA => "arena",
        _ => return None,
    })
}

/// True for the map types whose user-space values hold one slot per possible CPU
/// (`bpf_map_value_size()` in `kernel/bpf/syscall.c`).
pub fn is_percpu_map_type(map_type: u32) -> bool {
    matches!(
        map_type,
        BPF_MAP_TYPE_PERCPU_HASH
            | BPF_MAP_TYPE_LRU_PERCPU_HASH
            | BPF_MAP_TYPE_PERCPU_ARRAY
            | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
    )
}

/// True for the map types whose user-space values are fds on write and ids on read
/// (4 bytes regardless of what the map stores internally).
pub fn is_fd_map_type(map_type: u32) -> bool {
    matches!(
        map_type,
        BPF_MAP_TYPE_PROG_ARRAY
            | BPF_MAP_TYPE_PERF_EVENT_ARRAY
            | BPF_MAP_TYPE_CGROUP_ARRAY
            | BPF_MAP_TYPE_ARRAY_OF_MAPS
            | BPF_MAP_TYPE_HASH_OF_MAPS
    )
}

// ---- map creation flags ----
/// `BPF_F_NO_PREALLOC`
pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
/// `BPF_F_NO_COMMON_LRU`
pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
/// `BPF_F_NUMA_NODE`
pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
/// `BPF_F_RDONLY` (describes the returned fd; stripped from the map's stored flags)
pub const BPF_F_RDONLY: u32 = 1 << 3;
/// `BPF_F_WRONLY` (describes the returned fd; stripped from the map's stored flags)
pub const BPF_F_WRONLY: u32 = 1 << 4;
/// `BPF_F_STACK_BUILD_ID`
pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
/// `BPF_F_ZERO_SEED` (deterministic hash order, useful when comparing with kbpf)
pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
/// `BPF_F_RDONLY_PROG`
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// `BPF_F_CLONE`
pub const BPF_F_CLONE: u32 = 1 << 9;
/// `BPF_F_MMAPABLE`
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// `BPF_F_PRESERVE_ELEMS`
pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
/// `BPF_F_INNER_MAP`: an array template whose `max_entries` may differ between inner maps.
pub const BPF_F_INNER_MAP: u32 = 1 << 12;

// ---- element update flags ----
/// `BPF_ANY`: create or replace.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create only.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: replace only.
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK`: take the value's `bpf_spin_lock`.
pub const BPF_F_LOCK: u64 = 4;

// ---- program types (enum bpf_prog_type) ----
/// `BPF_PROG_TYPE_UNSPEC`
pub const BPF_PROG_TYPE_UNSPEC: u32 = 0;
/// `BPF_PROG_TYPE_SOCKET_FILTER`
pub const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_KPROBE`
pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
/// `BPF_PROG_TYPE_SCHED_CLS`
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// `BPF_PROG_TYPE_SCHED_ACT`
pub const BPF_PROG_TYPE_SCHED_ACT: u32 = 4;
/// `BPF_PROG_TYPE_TRACEPOINT`
pub const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
/// `BPF_PROG_TYPE_XDP`
pub const BPF_PROG_TYPE_XDP: u32 = 6;
/// `BPF_PROG_TYPE_PERF_EVENT`
pub const BPF_PROG_TYPE_PERF_EVENT: u32 = 7;
/// `BPF_PROG_TYPE_CGROUP_SKB`
pub const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
/// `BPF_PROG_TYPE_CGROUP_SOCK`
pub const BPF_PROG_TYPE_CGROUP_SOCK: u32 = 9;
/// `BPF_PROG_TYPE_LWT_IN`
pub const BPF_PROG_TYPE_LWT_IN: u32 = 10;
/// `BPF_PROG_TYPE_LWT_OUT`
pub const BPF_PROG_TYPE_LWT_OUT: u32 = 11;
/// `BPF_PROG_TYPE_LWT_XMIT`
pub const BPF_PROG_TYPE_LWT_XMIT: u32 = 12;
/// `BPF_PROG_TYPE_SOCK_OPS`
pub const BPF_PROG_TYPE_SOCK_OPS: u32 = 13;
/// `BPF_PROG_TYPE_SK_SKB`
pub const BPF_PROG_TYPE_SK_SKB: u32 = 14;
/// `BPF_PROG_TYPE_CGROUP_DEVICE`
pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_PROG_TYPE_SK_MSG`
pub const BPF_PROG_TYPE_SK_MSG: u32 = 16;
/// `BPF_PROG_TYPE_RAW_TRACEPOINT`
pub const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
/// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`
pub const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
/// `BPF_PROG_TYPE_LWT_SEG6LOCAL`
pub const BPF_PROG_TYPE_LWT_SEG6LOCAL: u32 = 19;
/// `BPF_PROG_TYPE_LIRC_MODE2`
pub const BPF_PROG_TYPE_LIRC_MODE2: u32 = 20;
/// `BPF_PROG_TYPE_SK_REUSEPORT`
pub const BPF_PROG_TYPE_SK_REUSEPORT: u32 = 21;
/// `BPF_PROG_TYPE_FLOW_DISSECTOR`
pub const BPF_PROG_TYPE_FLOW_DISSECTOR: u32 = 22;
/// `BPF_PROG_TYPE_CGROUP_SYSCTL`
pub const BPF_PROG_TYPE_CGROUP_SYSCTL: u32 = 23;
/// `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE`
pub const BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE: u32 = 24;
/// `BPF_PROG_TYPE_CGROUP_SOCKOPT`
pub const BPF_PROG_TYPE_CGROUP_SOCKOPT: u32 = 25;
/// `BPF_PROG_TYPE_TRACING`
pub const BPF_PROG_TYPE_TRACING: u32 = 26;
/// `BPF_PROG_TYPE_STRUCT_OPS`
pub const BPF_PROG_TYPE_STRUCT_OPS: u32 = 27;
/// `BPF_PROG_TYPE_EXT`
pub const BPF_PROG_TYPE_EXT: u32 = 28;
/// `BPF_PROG_TYPE_LSM`
pub const BPF_PROG_TYPE_LSM: u32 = 29;
/// `BPF_PROG_TYPE_SK_LOOKUP`
pub const BPF_PROG_TYPE_SK_LOOKUP: u32 = 30;
/// `BPF_PROG_TYPE_SYSCALL`
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;
/// `BPF_PROG_TYPE_NETFILTER`
pub const BPF_PROG_TYPE_NETFILTER: u32 = 32;

/// bpftool's name for a program type (`"xdp"`, `"sched_cls"`), as printed by
/// `bpftool prog show`.
pub fn prog_type_name(prog_type: u32) -> Option<&'static str> {
    Some(match prog_type {
        BPF_PROG_TYPE_UNSPEC => "unspec",
        BPF_PROG_TYPE_SOCKET_FILTER => "socket_filter",
        BPF_PROG_TYPE_KPROBE => "kprobe",
        BPF_PROG_TYPE_SCHED_CLS => "sched_cls",
        BPF_PROG_TYPE_SCHED_ACT => "sched_act",
        BPF_PROG_TYPE_TRACEPOINT => "tracepoint",
        BPF_PROG_TYPE_XDP => "xdp",
        BPF_PROG_TYPE_PERF_EVENT => "perf_event",
        BPF_PROG_TYPE_CGROUP_SKB => "cgroup_skb",
        BPF_PROG_TYPE_CGROUP_SOCK => "cgroup_sock",
        BPF_PROG_TYPE_LWT_IN => "lwt_in",
        BPF_PROG_TYPE_LWT_OUT => "lwt_out",
        BPF_PROG_TYPE_LWT_XMIT => "lwt_xmit",
        BPF_PROG_TYPE_SOCK_OPS => "sock_ops",
        BPF_PROG_TYPE_SK_SKB => "sk_skb",
        BPF_PROG_TYPE_CGROUP_DEVICE => "cgroup_device",
        BPF_PROG_TYPE_SK_MSG => "sk_msg",
        BPF_PROG_TYPE_RAW_TRACEPOINT => "raw_tracepoint",
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR => "cgroup_sock_addr",
        BPF_PROG_TYPE_LWT_SEG6LOCAL => "lwt_seg6local",
        BPF_PROG_TYPE_LIRC_MODE2 => "lirc_mode2",
        BPF_PROG_TYPE_SK_REUSEPORT => "sk_reuseport",
        BPF_PROG_TYPE_FLOW_DISSECTOR => "flow_dissector",
        BPF_PROG_TYPE_CGROUP_SYSCTL => "cgroup_sysctl",
        BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE => "raw_tracepoint_writable",
        BPF_PROG_TYPE_CGROUP_SOCKOPT => "cgroup_sockopt",
        BPF_PROG_TYPE_TRACING => "tracing",
        BPF_PROG_TYPE_STRUCT_OPS => "struct_ops",
        BPF_PROG_TYPE_EXT => "ext",
        BPF_PROG_TYPE_LSM => "lsm",
        BPF_PROG_TYPE_SK_LOOKUP => "sk_lookup",
        BPF_PROG_TYPE_SYSCALL => "syscall",
        BPF_PROG_TYPE_NETFILTER => "netfilter",
        _ => return None,
    })
}

// ---- verifier log levels ----
/// `BPF_LOG_LEVEL1`: the verifier's instruction-by-instruction log of the explored paths.
pub const BPF_LOG_LEVEL1: u32 = 1;
/// `BPF_LOG_LEVEL2`: every state, including pruned ones.
pub const BPF_LOG_LEVEL2: u32 = 2;
/// `BPF_LOG_STATS`: the closing statistics line only.
pub const BPF_LOG_STATS: u32 = 4;

/// `BPF_OBJ_NAME_LEN`: map and program names hold at most 15 bytes plus a NUL.
pub const BPF_OBJ_NAME_LEN: usize = 16;
/// `BPF_TAG_SIZE`: length of a program tag.
pub const BPF_TAG_SIZE: usize = 8;

// ---- ring buffers ----
/// `BPF_RINGBUF_BUSY_BIT`: record reserved but not committed yet.
pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: record discarded; consumers skip it.
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: the 8-byte record header (`len`, `pg_off`).
pub const BPF_RINGBUF_HDR_SZ: u64 = 8;
/// `BPF_RB_NO_WAKEUP`: output flag, do not notify the consumer.
pub const BPF_RB_NO_WAKEUP: u64 = 1 << 0;
/// `BPF_RB_FORCE_WAKEUP`: output flag, always notify the consumer.
pub const BPF_RB_FORCE_WAKEUP: u64 = 1 << 1;
/// `BPF_RB_AVAIL_DATA`: `bpf_ringbuf_query` of the bytes not yet consumed.
pub const BPF_RB_AVAIL_DATA: u64 = 0;
/// `BPF_RB_RING_SIZE`: `bpf_ringbuf_query` of the data area's size.
pub const BPF_RB_RING_SIZE: u64 = 1;
/// `BPF_RB_CONS_POS`: `bpf_ringbuf_query` of the consumer position.
pub const BPF_RB_CONS_POS: u64 = 2;
/// `BPF_RB_PROD_POS`: `bpf_ringbuf_query` of the producer position.
pub const BPF_RB_PROD_POS: u64 = 3;

// ---- helper ids (enum bpf_func_id) that kbpf's code names ----
/// `BPF_FUNC_map_lookup_elem`
pub const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
/// `BPF_FUNC_map_update_elem`
pub const BPF_FUNC_MAP_UPDATE_ELEM: i32 = 2;
/// `BPF_FUNC_map_delete_elem`
pub const BPF_FUNC_MAP_DELETE_ELEM: i32 = 3;
/// `BPF_FUNC_get_smp_processor_id`
pub const BPF_FUNC_GET_SMP_PROCESSOR_ID: i32 = 8;
/// `BPF_FUNC_tail_call`
pub const BPF_FUNC_TAIL_CALL: i32 = 12;
/// `BPF_FUNC_redirect`
pub const BPF_FUNC_REDIRECT: i32 = 23;
/// `BPF_FUNC_skb_load_bytes`
pub const BPF_FUNC_SKB_LOAD_BYTES: i32 = 26;
/// `BPF_FUNC_skb_change_tail`
pub const BPF_FUNC_SKB_CHANGE_TAIL: i32 = 38;
/// `BPF_FUNC_skb_pull_data`
pub const BPF_FUNC_SKB_PULL_DATA: i32 = 39;
/// `BPF_FUNC_redirect_map`
pub const BPF_FUNC_REDIRECT_MAP: i32 = 51;
/// `BPF_FUNC_fib_lookup`
pub const BPF_FUNC_FIB_LOOKUP: i32 = 69;
/// `BPF_FUNC_map_push_elem`
pub const BPF_FUNC_MAP_PUSH_ELEM: i32 = 87;
/// `BPF_FUNC_map_pop_elem`
pub const BPF_FUNC_MAP_POP_ELEM: i32 = 88;
/// `BPF_FUNC_map_peek_elem`
pub const BPF_FUNC_MAP_PEEK_ELEM: i32 = 89;
/// `BPF_FUNC_sk_storage_get`
pub const BPF_FUNC_SK_STORAGE_GET: i32 = 107;
/// `BPF_FUNC_sk_storage_delete`
pub const BPF_FUNC_SK_STORAGE_DELETE: i32 = 108;
/// `BPF_FUNC_inode_storage_get`
pub const BPF_FUNC_INODE_STORAGE_GET: i32 = 145;
/// `BPF_FUNC_task_storage_get`
pub const BPF_FUNC_TASK_STORAGE_GET: i32 = 156;
/// `BPF_FUNC_loop`
pub const BPF_FUNC_LOOP: i32 = 181;
/// `BPF_FUNC_cgrp_storage_get`
pub const BPF_FUNC_CGRP_STORAGE_GET: i32 = 210;

//! Helper function prototypes (`struct bpf_func_proto`) for the helpers kbpf verifies, and
//! which program types may call them (the `get_func_proto` callbacks).

use crate::ctx::ProgType;

/// An argument constraint (`enum bpf_arg_type`, the subset used here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// Not used by the helper.
    DontCare,
    /// `ARG_CONST_MAP_PTR`.
    ConstMapPtr,
    /// `ARG_PTR_TO_MAP_KEY`: `key_size` readable bytes (stack, map value, packet).
    PtrToMapKey,
    /// `ARG_PTR_TO_MAP_VALUE`: `value_size` readable bytes.
    PtrToMapValue,
    /// `ARG_PTR_TO_MEM | MEM_RDONLY`: readable memory sized by the next argument.
    PtrToMemReadonly,
    /// `ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY`.
    PtrToMemReadonlyOrNull,
    /// `ARG_PTR_TO_UNINIT_MEM` (`ARG_PTR_TO_MEM | MEM_UNINIT | MEM_WRITE`): memory the helper
    /// writes, sized by the next argument; it need not be initialised, and is afterwards.
    PtrToUninitMem,
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED` of 8 bytes (the
    /// `long *res` of `bpf_strtol`): memory the helper writes, aligned to 8.
    PtrToLongUninit,
    /// `ARG_CONST_SIZE`.
    ConstSize,
    /// `ARG_CONST_SIZE_OR_ZERO`.
    ConstSizeOrZero,
    /// `ARG_PTR_TO_CTX`.
    PtrToCtx,
    /// `ARG_PTR_TO_CTX_OR_NULL`: the context, or a NULL constant.
    PtrToCtxOrNull,
    /// `ARG_ANYTHING`: any initialised value.
    Anything,
    /// `ARG_PTR_TO_SOCK_COMMON`: a (non-NULL) socket pointer of any kind.
    PtrToSockCommon,
    /// `ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE`: a referenced socket, released by the
    /// call.
    SockRelease,
    /// `ARG_PTR_TO_BTF_ID_SOCK_COMMON`: a (non-NULL) socket pointer of any kind.
    BtfIdSockCommon,
    /// `ARG_PTR_TO_MAP_VALUE_OR_NULL`: `value_size` readable bytes, or NULL.
    PtrToMapValueOrNull,
    /// `ARG_PTR_TO_SPIN_LOCK`: a map value's `struct bpf_spin_lock`.
    SpinLock,
    /// `ARG_CONST_ALLOC_SIZE_OR_ZERO`: a known constant size.
    ConstAllocSizeOrZero,
    /// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`: a reserved ring buffer record, released.
    RingbufMemRelease,
    /// `ARG_PTR_TO_MEM` (with `MEM_WRITE` in newer kernels): initialised memory sized by the
    /// next argument that the helper reads and also writes (`bpf_fib_lookup`'s params).
    PtrToMemReadWrite,
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED` of 4 bytes (`bpf_check_mtu`'s
    /// `u32 *mtu_len`): initialised memory the helper reads and writes, aligned to 4.
    PtrToU32ReadWrite,
    /// `ARG_PTR_TO_FUNC`: a static subprogram (`BPF_PSEUDO_FUNC`), the callback.
    PtrToFunc,
    /// `ARG_PTR_TO_STACK_OR_NULL`: a stack pointer, or a NULL constant (a callback's context).
    PtrToStackOrNull,
}

/// What a helper returns (`enum bpf_return_type`, subset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetType {
    /// `RET_INTEGER`.
    Integer,
    /// `RET_VOID`.
    Void,
    /// `RET_PTR_TO_MAP_VALUE_OR_NULL`.
    PtrToMapValueOrNull,
    /// `RET_PTR_TO_MAP_VALUE`: a value of the map argument, never NULL.
    PtrToMapValue,
    /// `RET_PTR_TO_RINGBUF_MEM_OR_NULL`: a record of the size asked for, or NULL.
    RingbufMemOrNull,
    /// `RET_PTR_TO_SOCKET_OR_NULL`.
    PtrToSocketOrNull,
    /// `RET_PTR_TO_SOCK_COMMON_OR_NULL`.
    PtrToSockCommonOrNull,
    /// `RET_PTR_TO_TCP_SOCK_OR_NULL`.
    PtrToTcpSockOrNull,
    /// `RET_PTR_TO_BTF_ID_OR_NULL`: a kernel object of the helper's `ret_btf_id`, or NULL
    /// (kbpf keeps no BTF type with it and reads none of its fields).
    PtrToBtfIdOrNull,
    /// `RET_INTEGER` bounded by `do_refine_retval_range`: a negative errno or at most the
    /// size argument's maximum (`bpf_get_stack`, the `*_str` probe reads).
    IntegerUpToSize,
}

/// One helper's prototype.
#[derive(Clone, Copy, Debug)]
pub struct FuncProto {
    /// Helper id (`BPF_FUNC_*`).
    pub id: i32,
    /// Kernel name (`bpf_map_lookup_elem`).
    pub name: &'static str,
    /// Arguments r1..r5.
    pub args: [ArgType; 5],
    /// Return.
    pub ret: RetType,
    /// Whether the helper may change packet data (`bpf_helper_changes_pkt_data`): every
    /// packet pointer is invalidated after the call.
    pub changes_pkt_data: bool,
    /// `.pkt_access`: packet pointers may be passed as its memory arguments (in program
    /// types with direct packet access).
    pub pkt_access: bool,
}

use ArgType::*;

const fn proto(id: i32, name: &'static str, args: [ArgType; 5], ret: RetType) -> FuncProto {
    FuncProto {
        id,
        name,
        args,
        ret,
        changes_pkt_data: false,
        pkt_access: matches!(id, 1 | 2 | 3 | 28 | 87),
    }
}

/// `BPF_FUNC_for_each_map_elem`.
pub const BPF_FUNC_FOR_EACH_MAP_ELEM: i32 = 164;

pub use kbpf_uapi::bpf::{
    BPF_FUNC_FIB_LOOKUP, BPF_FUNC_LOOP, BPF_FUNC_MAP_DELETE_ELEM, BPF_FUNC_MAP_LOOKUP_ELEM,
    BPF_FUNC_MAP_UPDATE_ELEM, BPF_FUNC_REDIRECT_MAP, BPF_FUNC_TAIL_CALL,
};

const PROTOS: &[FuncProto] = &[
    proto(
        1,
        "bpf_map_lookup_elem",
        [ConstMapPtr, PtrToMapKey, DontCare, DontCare, DontCare],
        RetType::PtrToMapValueOrNull,
    ),
    proto(
        2,
        "bpf_map_update_elem",
        [ConstMapPtr, PtrToMapKey, PtrToMapValue, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        3,
        "bpf_map_delete_elem",
        [ConstMapPtr, PtrToMapKey, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(5, "bpf_ktime_get_ns", [DontCare; 5], RetType::Integer),
    proto(
        6,
        "bpf_trace_printk",
        [PtrToMemReadonly, ConstSize, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(7, "bpf_get_prandom_u32", [DontCare; 5], RetType::Integer),
    proto(118, "bpf_jiffies64", [DontCare; 5], RetType::Integer),
    FuncProto {
        changes_pkt_data: true,
        ..proto(
            43,
            "bpf_skb_change_head",
            [PtrToCtx, Anything, Anything, DontCare, DontCare],
            RetType::Integer,
        )
    },
    proto(
        163,
        "bpf_check_mtu",
        [PtrToCtx, Anything, PtrToU32ReadWrite, Anything, Anything],
        RetType::Integer,
    ),
    proto(
        69,
        "bpf_fib_lookup",
        [PtrToCtx, PtrToMemReadWrite, ConstSize, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        BPF_FUNC_LOOP,
        "bpf_loop",
        [Anything, PtrToFunc, PtrToStackOrNull, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        BPF_FUNC_FOR_EACH_MAP_ELEM,
        "bpf_for_each_map_elem",
        [ConstMapPtr, PtrToFunc, PtrToStackOrNull, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        8,
        "bpf_get_smp_processor_id",
        [DontCare; 5],
        RetType::Integer,
    ),
    proto(
        12,
        "bpf_tail_call",
        [PtrToCtx, ConstMapPtr, Anything, DontCare, DontCare],
        RetType::Void,
    ),
    proto(
        23,
        "bpf_redirect",
        [Anything, Anything, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(
        28,
        "bpf_csum_diff",
        [
            PtrToMemReadonlyOrNull,
            ConstSizeOrZero,
            PtrToMemReadonlyOrNull,
            ConstSizeOrZero,
            Anything,
        ],
        RetType::Integer,
    ),
    FuncProto {
        changes_pkt_data: true,
        ..proto(
            44,
            "bpf_xdp_adjust_head",
            [PtrToCtx, Anything, DontCare, DontCare, DontCare],
            RetType::Integer,
        )
    },
    FuncProto {
        changes_pkt_data: true,
        ..proto(
            50,
            "bpf_skb_adjust_room",
            [PtrToCtx, Anything, Anything, Anything, DontCare],
            RetType::Integer,
        )
    },
    FuncProto {
        changes_pkt_data: true,
        ..proto(
            39,
            "bpf_skb_pull_data",
            [PtrToCtx, Anything, DontCare, DontCare, DontCare],
            RetType::Integer,
        )
    },
    // bpf_skb_event_output_proto / bpf_xdp_event_output_proto / the tracing variants.
    proto(
        25,
        "bpf_perf_event_output",
        [
            PtrToCtx,
            ConstMapPtr,
            Anything,
            PtrToMemReadonly,
            ConstSizeOrZero,
        ],
        RetType::Integer,
    ),
    proto(
        20,
        "bpf_skb_get_tunnel_key",
        [PtrToCtx, PtrToUninitMem, ConstSize, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        21,
        "bpf_skb_set_tunnel_key",
        [PtrToCtx, PtrToMemReadonly, ConstSize, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        51,
        "bpf_redirect_map",
        [ConstMapPtr, Anything, Anything, DontCare, DontCare],
        RetType::Integer,
    ),
    FuncProto {
        changes_pkt_data: true,
        ..proto(
            9,
            "bpf_skb_store_bytes",
            [PtrToCtx, Anything, PtrToMemReadonly, ConstSize, Anything],
            RetType::Integer,
        )
    },
    proto(
        26,
        "bpf_skb_load_bytes",
        [PtrToCtx, Anything, PtrToUninitMem, ConstSize, DontCare],
        RetType::Integer,
    ),
    proto(
        34,
        "bpf_get_hash_recalc",
        [PtrToCtx, DontCare, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(
        40,
        "bpf_csum_update",
        [PtrToCtx, Anything, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(
        4,
        "bpf_probe_read",
        [
            PtrToUninitMem,
            ConstSizeOrZero,
            Anything,
            DontCare,
            DontCare,
        ],
        RetType::Integer,
    ),
    proto(35, "bpf_get_current_task", [DontCare; 5], RetType::Integer),
    proto(
        14,
        "bpf_get_current_pid_tgid",
        [DontCare; 5],
        RetType::Integer,
    ),
    proto(
        15,
        "bpf_get_current_uid_gid",
        [DontCare; 5],
        RetType::Integer,
    ),
    proto(
        16,
        "bpf_get_current_comm",
        [PtrToUninitMem, ConstSize, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(
        27,
        "bpf_get_stackid",
        [PtrToCtx, ConstMapPtr, Anything, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(
        67,
        "bpf_get_stack",
        [
            PtrToCtx,
            PtrToUninitMem,
            ConstSizeOrZero,
            Anything,
            DontCare,
        ],
        RetType::IntegerUpToSize,
    ),
    proto(
        112,
        "bpf_probe_read_user",
        [
            PtrToUninitMem,
            ConstSizeOrZero,
            Anything,
            DontCare,
            DontCare,
        ],
        RetType::Integer,
    ),
    proto(
        113,
        "bpf_probe_read_kernel",
        [
            PtrToUninitMem,
            ConstSizeOrZero,
            Anything,
            DontCare,
            DontCare,
        ],
        RetType::Integer,
    ),
    proto(
        114,
        "bpf_probe_read_user_str",
        [
            PtrToUninitMem,
            ConstSizeOrZero,
            Anything,
            DontCare,
            DontCare,
        ],
        RetType::IntegerUpToSize,
    ),
    proto(
        115,
        "bpf_probe_read_kernel_str",
        [
            PtrToUninitMem,
            ConstSizeOrZero,
            Anything,
            DontCare,
            DontCare,
        ],
        RetType::IntegerUpToSize,
    ),
    proto(
        125,
        "bpf_ktime_get_boot_ns",
        [DontCare; 5],
        RetType::Integer,
    ),
    proto(
        160,
        "bpf_ktime_get_coarse_ns",
        [DontCare; 5],
        RetType::Integer,
    ),
    proto(
        105,
        "bpf_strtol",
        [
            PtrToMemReadonly,
            ConstSize,
            Anything,
            PtrToLongUninit,
            DontCare,
        ],
        RetType::Integer,
    ),
    proto(
        106,
        "bpf_strtoul",
        [
            PtrToMemReadonly,
            ConstSize,
            Anything,
            PtrToLongUninit,
            DontCare,
        ],
        RetType::Integer,
    ),
    proto(
        130,
        "bpf_ringbuf_output",
        [
            ConstMapPtr,
            PtrToMemReadonly,
            ConstSizeOrZero,
            Anything,
            DontCare,
        ],
        RetType::Integer,
    ),
    proto(
        131,
        "bpf_ringbuf_reserve",
        [
            ConstMapPtr,
            ConstAllocSizeOrZero,
            Anything,
            DontCare,
            DontCare,
        ],
        RetType::RingbufMemOrNull,
    ),
    proto(
        132,
        "bpf_ringbuf_submit",
        [RingbufMemRelease, Anything, DontCare, DontCare, DontCare],
        RetType::Void,
    ),
    proto(
        133,
        "bpf_ringbuf_discard",
        [RingbufMemRelease, Anything, DontCare, DontCare, DontCare],
        RetType::Void,
    ),
    proto(
        134,
        "bpf_ringbuf_query",
        [ConstMapPtr, Anything, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    // The socket lookups (bpf_tc_sk_lookup_tcp_proto and its xdp/sk_skb/sock_addr
    // variants): acquire a reference.
    FuncProto {
        pkt_access: true,
        ..proto(
            84,
            "bpf_sk_lookup_tcp",
            [
                PtrToCtx,
                PtrToMemReadonly,
                ConstSizeOrZero,
                Anything,
                Anything,
            ],
            RetType::PtrToSocketOrNull,
        )
    },
    FuncProto {
        pkt_access: true,
        ..proto(
            85,
            "bpf_sk_lookup_udp",
            [
                PtrToCtx,
                PtrToMemReadonly,
                ConstSizeOrZero,
                Anything,
                Anything,
            ],
            RetType::PtrToSocketOrNull,
        )
    },
    FuncProto {
        pkt_access: true,
        ..proto(
            99,
            "bpf_skc_lookup_tcp",
            [
                PtrToCtx,
                PtrToMemReadonly,
                ConstSizeOrZero,
                Anything,
                Anything,
            ],
            RetType::PtrToSockCommonOrNull,
        )
    },
    proto(
        86,
        "bpf_sk_release",
        [SockRelease, DontCare, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    proto(
        93,
        "bpf_spin_lock",
        [SpinLock, DontCare, DontCare, DontCare, DontCare],
        RetType::Void,
    ),
    proto(
        94,
        "bpf_spin_unlock",
        [SpinLock, DontCare, DontCare, DontCare, DontCare],
        RetType::Void,
    ),
    // bpf_sock_ops_setsockopt/getsockopt_proto.
    proto(
        49,
        "bpf_setsockopt",
        [PtrToCtx, Anything, Anything, PtrToMemReadonly, ConstSize],
        RetType::Integer,
    ),
    proto(
        57,
        "bpf_getsockopt",
        [PtrToCtx, Anything, Anything, PtrToUninitMem, ConstSize],
        RetType::Integer,
    ),
    // bpf_sock_map_update / bpf_sock_hash_update (sock_ops): the context's socket.
    proto(
        53,
        "bpf_sock_map_update",
        [PtrToCtx, ConstMapPtr, PtrToMapKey, Anything, DontCare],
        RetType::Integer,
    ),
    proto(
        70,
        "bpf_sock_hash_update",
        [PtrToCtx, ConstMapPtr, PtrToMapKey, Anything, DontCare],
        RetType::Integer,
    ),
    // sk_select_reuseport_proto.
    proto(
        82,
        "bpf_sk_select_reuseport",
        [PtrToCtx, ConstMapPtr, PtrToMapKey, Anything, DontCare],
        RetType::Integer,
    ),
    // The cgroup's storage (bpf_get_local_storage_proto).
    proto(
        81,
        "bpf_get_local_storage",
        [ConstMapPtr, Anything, DontCare, DontCare, DontCare],
        RetType::PtrToMapValue,
    ),
    // Socket-local storage.
    proto(
        107,
        "bpf_sk_storage_get",
        [
            ConstMapPtr,
            BtfIdSockCommon,
            PtrToMapValueOrNull,
            Anything,
            DontCare,
        ],
        RetType::PtrToMapValueOrNull,
    ),
    proto(
        108,
        "bpf_sk_storage_delete",
        [ConstMapPtr, BtfIdSockCommon, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    // Casts: the result holds the argument's reference.
    proto(
        95,
        "bpf_sk_fullsock",
        [PtrToSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToSocketOrNull,
    ),
    proto(
        96,
        "bpf_tcp_sock",
        [PtrToSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToTcpSockOrNull,
    ),
    proto(
        98,
        "bpf_get_listener_sock",
        [PtrToSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToSocketOrNull,
    ),
    // The bpf_skc_to_* casts: the socket as a BTF-typed kernel object, or NULL if it is not
    // of that kind; the result holds the argument's reference.
    proto(
        136,
        "bpf_skc_to_tcp6_sock",
        [BtfIdSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToBtfIdOrNull,
    ),
    proto(
        137,
        "bpf_skc_to_tcp_sock",
        [BtfIdSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToBtfIdOrNull,
    ),
    proto(
        138,
        "bpf_skc_to_tcp_timewait_sock",
        [BtfIdSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToBtfIdOrNull,
    ),
    proto(
        139,
        "bpf_skc_to_tcp_request_sock",
        [BtfIdSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToBtfIdOrNull,
    ),
    proto(
        140,
        "bpf_skc_to_udp6_sock",
        [BtfIdSockCommon, DontCare, DontCare, DontCare, DontCare],
        RetType::PtrToBtfIdOrNull,
    ),
    // bpf_get_socket_cookie_proto and its sock/sock_addr variants: the context.
    proto(
        46,
        "bpf_get_socket_cookie",
        [PtrToCtx, DontCare, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    // bpf_get_netns_cookie_sock_addr_proto (and the cgroup/sock variants' shape).
    proto(
        122,
        "bpf_get_netns_cookie",
        [PtrToCtxOrNull, DontCare, DontCare, DontCare, DontCare],
        RetType::Integer,
    ),
    FuncProto {
        changes_pkt_data: true,
        ..proto(
            65,
            "bpf_xdp_adjust_tail",
            [PtrToCtx, Anything, DontCare, DontCare, DontCare],
            RetType::Integer,
        )
    },
];

/// The prototype of helper `id` if `prog` may call it (the program type's
/// `get_func_proto`); `None` is the kernel's `unknown func %s#%d`.
pub fn func_proto(prog: ProgType, id: i32) -> Option<&'static FuncProto> {
    let prog = prog.rules();
    let p = PROTOS.iter().find(|p| p.id == id)?;
    // The base helpers (bpf_sk_base_func_proto for a CAP_BPF + CAP_PERFMON loader) kbpf
    // knows.
    let base = matches!(
        id,
        1 | 2 | 3 | 5 | 6 | 7 | 8 | 12 | 14 | 35 | 93 | 94 | 105 | 106 | 112
            ..=115 | 118 | 125 | 130..=134 | 160 | 164 | 181
    );
    let lookups = matches!(id, 84 | 85 | 86 | 99);
    let sk_storage = matches!(id, 107 | 108);
    let casts = matches!(id, 95 | 96 | 98);
    let ok_new = match prog {
        // bpf_nf_func_proto: the base helpers.
        ProgType::Netfilter => base,
        // flow_dissector_func_proto (its skb_load_bytes variant kbpf does not have).
        ProgType::FlowDissector => base,
        // sock_ops_func_proto.
        ProgType::SockOps => {
            base || matches!(id, 46 | 49 | 53 | 57 | 70 | 81 | 96 | 107 | 108 | 122)
        }
        // sk_reuseport_func_proto (its skb_load_bytes variants kbpf does not have).
        ProgType::SkReuseport => base || id == 82,
        // sock_addr_func_proto: bpf_sk_base_func_proto, the cgroup ones, its own.
        ProgType::CgroupSockAddr => {
            base || lookups || sk_storage || matches!(id, 15 | 46 | 81 | 122)
        }
        // cg_skb_func_proto: the cgroup ones, sk_filter_func_proto's.
        ProgType::CgroupSkb => {
            base || lookups || casts || sk_storage || matches!(id, 15 | 26 | 46 | 81)
        }
        // sock_filter_func_proto.
        ProgType::CgroupSock => base || matches!(id, 15 | 46 | 81 | 122),
        // lwt_out_func_proto (and lwt_in's additions kbpf does not know).
        ProgType::LwtIn | ProgType::LwtOut => base || matches!(id, 26 | 28 | 34),
        // lwt_xmit_func_proto.
        ProgType::LwtXmit => base || matches!(id, 9 | 26 | 28 | 34 | 40 | 43),
        // sk_skb_func_proto.
        ProgType::SkSkb => base || lookups || matches!(id, 9 | 26 | 46),
        // sk_msg_func_proto.
        ProgType::SkMsg => base || sk_storage || matches!(id, 15 | 122),
        // sysctl_func_proto: its own helpers kbpf knows (strtol/strtoul are in `base`), the
        // cgroup ones.
        ProgType::CgroupSysctl => base || matches!(id, 80 | 81),
        // cg_sockopt_func_proto: the base helpers (its socket, storage and retval ones kbpf
        // does not offer there).
        ProgType::CgroupSockopt => base,
        // sk_lookup_func_proto: bpf_sk_release (its perf_event_output and sk_assign variants
        // kbpf does not have).
        ProgType::SkLookup => base || id == 86,
        // raw_tp_prog_func_proto serves both.
        ProgType::RawTracepointWritable => {
            return func_proto_old(ProgType::RawTracepoint, id, p);
        }
        // syscall_prog_func_proto, then tracing_prog_func_proto: the tracing helpers but the
        // perf-event/stack ones kbpf is not sure of there.
        ProgType::Syscall => {
            return (!matches!(id, 25 | 27 | 67))
                .then(|| func_proto_old(ProgType::RawTracepoint, id, p))
                .flatten();
        }
        _ => return func_proto_old(prog, id, p),
    };
    ok_new.then_some(p)
}

/// `func_proto` for the program types kbpf verified first.
fn func_proto_old(prog: ProgType, id: i32, p: &'static FuncProto) -> Option<&'static FuncProto> {
    let ok = match id {
        84 | 85 | 86 | 99 => matches!(prog, ProgType::SchedCls | ProgType::Xdp),
        95 | 96 | 98 | 107 | 108 => prog == ProgType::SchedCls,
        // bpf_sk_base_func_proto (a CAP_PERFMON loader), which the tracing types do not use.
        136..=140 => matches!(
            prog,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::Xdp
        ),
        81 => false,
        122 => false,
        46 => matches!(prog, ProgType::SocketFilter | ProgType::SchedCls),
        44 | 65 => prog == ProgType::Xdp,
        23 => matches!(prog, ProgType::Xdp | ProgType::SchedCls),
        28 => matches!(prog, ProgType::Xdp | ProgType::SchedCls),
        51 => prog == ProgType::Xdp,
        // tc_cls_act_func_proto / xdp_func_proto.
        69 => matches!(
            prog,
            ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct
        ),
        // tc_cls_act_func_proto (and lwt_xmit_func_proto, checked above; sk_skb has its
        // own variant).
        43 => prog == ProgType::SchedCls,
        // bpf_tracing_func_proto only (the `*_kernel`/`*_user` probe reads and the clocks are
        // in bpf_base_func_proto for a CAP_PERFMON loader, i.e. every program type here).
        4 | 14 | 15 | 16 | 27 | 67 => prog.is_tracing(),
        // sk_filter_func_proto / tc_cls_act_func_proto.
        26 => matches!(prog, ProgType::SocketFilter | ProgType::SchedCls),
        9 | 34 | 40 => prog == ProgType::SchedCls,
        // tc_cls_act_func_proto (the tunnel keys also in lwt_xmit's, a type kbpf
        // checks through the branch above).
        20 | 21 | 39 | 50 => prog == ProgType::SchedCls,
        // The skb and XDP variants, and the tracing ones (bpf_perf_event_output_proto,
        // `_tp`, `_raw_tp`: the same arguments, a context pointer first).
        25 => {
            matches!(
                prog,
                ProgType::SchedCls | ProgType::Xdp | ProgType::SocketFilter
            ) || prog.is_tracing()
        }
        // The coarse clock is not NMI-safe: tracing programs may not read it.
        160 => !prog.is_tracing(),
        _ => true,
    };
    ok.then_some(p)
}

/// Whether helper `id`'s `bpf_func_proto` is `gpl_only` (the same for every program type's
/// variant of the helpers kbpf knows: the probe reads, `bpf_trace_printk`, the perf event
/// outputs and reads, the stack collectors, `bpf_fib_lookup`, `bpf_check_mtu`, the
/// syncookie helpers, the timers, `bpf_snprintf`, ...).
pub fn gpl_only(id: i32) -> bool {
    matches!(
        id,
        4 | 6 | 22 | 25 | 27 | 35 | 36 | 45 | 55 | 56 | 58 | 67 | 69 | 100 | 110 | 112..=115
            | 119 | 126 | 127 | 150 | 158 | 163 | 165 | 169..=173 | 175..=177 | 191 | 204..=207
    )
}

/// Whether kbpf knows helper `id` at all (for the kernel's two messages: unknown helper vs
/// helper not allowed for the program type).
pub fn func_exists(id: i32) -> bool {
    PROTOS.iter().any(|p| p.id == id)
}

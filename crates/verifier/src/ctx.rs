//! Program types and their context structures: which `ctx` fields a program may load or
//! store, with which sizes, and what type the loaded value has (the `is_valid_access`
//! callbacks of `struct bpf_verifier_ops`, e.g. `xdp_is_valid_access` and
//! `sk_filter_is_valid_access` / `tc_cls_act_is_valid_access` in `net/core/filter.c`).
//! The socket, sk_msg, reuseport and sock_ops contexts are in `skb`, the cgroup ones (and
//! every type's return-value range) in [`cgroup`].

use crate::types::RegType;

pub mod cgroup;
mod skb;

/// The program types kbpf verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER` (1): `struct __sk_buff`, no direct packet access.
    SocketFilter,
    /// `BPF_PROG_TYPE_SCHED_CLS` (3): `struct __sk_buff` with direct packet access.
    SchedCls,
    /// `BPF_PROG_TYPE_SCHED_ACT` (4): verified as `SchedCls` (the kernel's tc_cls_act ops
    /// serve both).
    SchedAct,
    /// `BPF_PROG_TYPE_XDP` (6): `struct xdp_md`.
    Xdp,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT` (17): the tracepoint's arguments, `u64 args[]`
    /// (read-only, no rewrite; test runs feed them from `ctx_in`).
    RawTracepoint,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE` (24): a raw tracepoint whose first argument
    /// is the tracepoint's writable buffer (`PTR_TO_TP_BUFFER`, read as a whole u64); the
    /// other arguments as [`ProgType::RawTracepoint`]'s. The kernel checks the buffer's size
    /// when the program is attached (`max_tp_access`), which kbpf does not do.
    RawTracepointWritable,
    /// `BPF_PROG_TYPE_KPROBE` (2): `struct pt_regs` (read-only, no rewrite; the kernel has no
    /// test run for it either).
    Kprobe,
    /// `BPF_PROG_TYPE_TRACEPOINT` (5): the tracepoint's record after its 8-byte common
    /// header (read-only, no rewrite, no test run).
    Tracepoint,
    /// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR` (18): `struct bpf_sock_addr`, fields by expected
    /// attach type ([`cgroup`]; no rewrite, no test run).
    CgroupSockAddr,
    /// `BPF_PROG_TYPE_CGROUP_SKB` (8): the whole `struct __sk_buff` (`skb_ctx`),
    /// read-only packet (no rewrite, no test run).
    CgroupSkb,
    /// `BPF_PROG_TYPE_CGROUP_SOCK` (9): `struct bpf_sock` by expected attach type
    /// ([`cgroup`]; no rewrite, no test run).
    CgroupSock,
    /// `BPF_PROG_TYPE_LWT_IN` (10): `struct __sk_buff`, read-only packet.
    LwtIn,
    /// `BPF_PROG_TYPE_LWT_OUT` (11): `struct __sk_buff`, read-only packet.
    LwtOut,
    /// `BPF_PROG_TYPE_LWT_XMIT` (12): `struct __sk_buff`, writable packet.
    LwtXmit,
    /// `BPF_PROG_TYPE_SK_SKB` (14): `struct __sk_buff`, writable packet.
    SkSkb,
    /// `BPF_PROG_TYPE_SK_MSG` (16): `struct sk_msg_md`, writable packet.
    SkMsg,
    /// `BPF_PROG_TYPE_FLOW_DISSECTOR` (22): `struct __sk_buff` reduced to its packet pointers
    /// and its `flow_keys` pointer (no rewrite, no test run).
    FlowDissector,
    /// `BPF_PROG_TYPE_SOCK_OPS` (13): `struct bpf_sock_ops`, read-only packet.
    SockOps,
    /// `BPF_PROG_TYPE_PERF_EVENT` (7): `struct bpf_perf_event_data` (read-only; the tracing
    /// helpers; no rewrite, no test run).
    PerfEvent,
    /// `BPF_PROG_TYPE_SK_REUSEPORT` (21): `struct sk_reuseport_md`, read-only packet.
    SkReuseport,
    /// `BPF_PROG_TYPE_NETFILTER` (32): `struct bpf_nf_ctx`, whose two fields are pointers to
    /// kernel structs kbpf does not model (their loads are refused); returns `NF_DROP` or
    /// `NF_ACCEPT`.
    Netfilter,
    /// `BPF_PROG_TYPE_SK_LOOKUP` (30): `struct bpf_sk_lookup`, read-only, its `sk` a socket
    /// or NULL; returns `SK_DROP` or `SK_PASS` (no rewrite, no test run).
    SkLookup,
    /// `BPF_PROG_TYPE_CGROUP_SYSCTL` (23): `struct bpf_sysctl` (`write`, `file_pos`; no
    /// rewrite, no test run), returns 0 or 1.
    CgroupSysctl,
    /// `BPF_PROG_TYPE_CGROUP_SOCKOPT` (25): `struct bpf_sockopt`, its option buffer a
    /// writable packet (`optval` .. `optval_end`), returns 0 or 1 (no rewrite, no test run).
    CgroupSockopt,
    /// `BPF_PROG_TYPE_SYSCALL` (31): a context that is the caller's buffer, read and written
    /// at any aligned offset below `U16_MAX` (`syscall_prog_is_valid_access`; no rewrite, no
    /// test run).
    Syscall,
}

impl ProgType {
    /// From the uapi number.
    pub fn from_u32(t: u32) -> Option<ProgType> {
        Some(match t {
            1 => ProgType::SocketFilter,
            3 => ProgType::SchedCls,
            4 => ProgType::SchedAct,
            6 => ProgType::Xdp,
            17 => ProgType::RawTracepoint,
            24 => ProgType::RawTracepointWritable,
            2 => ProgType::Kprobe,
            5 => ProgType::Tracepoint,
            18 => ProgType::CgroupSockAddr,
            8 => ProgType::CgroupSkb,
            9 => ProgType::CgroupSock,
            10 => ProgType::LwtIn,
            11 => ProgType::LwtOut,
            12 => ProgType::LwtXmit,
            14 => ProgType::SkSkb,
            16 => ProgType::SkMsg,
            32 => ProgType::Netfilter,
            21 => ProgType::SkReuseport,
            7 => ProgType::PerfEvent,
            13 => ProgType::SockOps,
            22 => ProgType::FlowDissector,
            23 => ProgType::CgroupSysctl,
            25 => ProgType::CgroupSockopt,
            30 => ProgType::SkLookup,
            31 => ProgType::Syscall,
            _ => return None,
        })
    }

    /// The uapi number.
    pub fn as_u32(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::SchedCls => 3,
            ProgType::SchedAct => 4,
            ProgType::Xdp => 6,
            ProgType::RawTracepoint => 17,
            ProgType::RawTracepointWritable => 24,
            ProgType::Kprobe => 2,
            ProgType::Tracepoint => 5,
            ProgType::CgroupSockAddr => 18,
            ProgType::CgroupSkb => 8,
            ProgType::CgroupSock => 9,
            ProgType::LwtIn => 10,
            ProgType::LwtOut => 11,
            ProgType::LwtXmit => 12,
            ProgType::SkSkb => 14,
            ProgType::SkMsg => 16,
            ProgType::Netfilter => 32,
            ProgType::SkReuseport => 21,
            ProgType::PerfEvent => 7,
            ProgType::SockOps => 13,
            ProgType::FlowDissector => 22,
            ProgType::CgroupSysctl => 23,
            ProgType::CgroupSockopt => 25,
            ProgType::SkLookup => 30,
            ProgType::Syscall => 31,
        }
    }

    /// The program type whose rules this one shares (`SchedAct` is checked as `SchedCls`).
    pub fn rules(self) -> ProgType {
        match self {
            ProgType::SchedAct => ProgType::SchedCls,
            t => t,
        }
    }

    /// Direct packet access (`may_access_direct_pkt_data`): `None` without packet
    /// pointers, `Some(writable)` otherwise.
    pub fn direct_packet_access(self) -> Option<bool> {
        match self {
            ProgType::Xdp
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::LwtXmit
            | ProgType::SkSkb
            | ProgType::SkMsg
            | ProgType::CgroupSockopt => Some(true),
            ProgType::CgroupSkb
            | ProgType::LwtIn
            | ProgType::LwtOut
            | ProgType::SkReuseport
            | ProgType::SockOps
            | ProgType::FlowDissector => Some(false),
            _ => None,
        }
    }

    /// Tracing programs: a read-only context without `convert_ctx_access`, the tracing
    /// helpers (`bpf_tracing_func_proto`), no packet.
    pub fn is_tracing(self) -> bool {
        matches!(
            self,
            ProgType::RawTracepoint
                | ProgType::RawTracepointWritable
                | ProgType::Kprobe
                | ProgType::Tracepoint
                | ProgType::PerfEvent
        )
    }
}

/// `sysctl_is_valid_access` on `struct bpf_sysctl { __u32 write; __u32 file_pos; }`:
/// `write` read-only (narrow reads allowed), `file_pos` readable (narrow too) and writable
/// as a whole `u32`.
fn sysctl_access(off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    if size == 0 || off + size > 8 || !off.is_multiple_of(size) {
        return None;
    }
    let field = if off < 4 {
        CtxField {
            name: "write",
            off: 0,
            size: 4,
        }
    } else {
        CtxField {
            name: "file_pos",
            off: 4,
            size: 4,
        }
    };
    let narrow_ok = size <= 4 && size.is_power_of_two();
    let ok = match (field.name, write) {
        ("write", false) | ("file_pos", false) => narrow_ok,
        ("file_pos", true) => size == 4,
        _ => false,
    };
    ok.then_some(CtxLoad {
        field,
        reg_type: RegType::Scalar,
    })
}

/// `sk_lookup_is_valid_access` on `struct bpf_sk_lookup` (72 bytes): reads only; `sk` (the
/// union with `cookie` at 0) as a whole `u64` gives a socket or NULL; the `u32` fields
/// narrow; `remote_port` a `u16` (or the whole `u32` with its zero padding); the padding
/// narrow as a `u16`.
fn sk_lookup_access(off: u32, size: u32, write: bool) -> Option<CtxLoad> {
    if write || size == 0 || off >= 72 || !off.is_multiple_of(size) {
        return None;
    }
    let narrow = |field: u32| size <= field && size.is_power_of_two();
    let (name, foff, fsize, ok, reg_type) = match off {
        0 => ("sk", 0, 8, size == 8, RegType::PtrToSocket),
        8..=11 => ("family", 8, 4, narrow(4), RegType::Scalar),
        12..=15 => ("protocol", 12, 4, narrow(4), RegType::Scalar),
        16..=19 => ("remote_ip4", 16, 4, narrow(4), RegType::Scalar),
        20..=35 => ("remote_ip6", 20, 16, narrow(4), RegType::Scalar),
        36..=37 => (
            "remote_port",
            36,
            2,
            size == 4 || narrow(2),
            RegType::Scalar,
        ),
        38..=39 => ("pad", 38, 2, narrow(2), RegType::Scalar),
        40..=43 => ("local_ip4", 40, 4, narrow(4), RegType::Scalar),
        44..=59 => ("local_ip6", 44, 16, narrow(4), RegType::Scalar),
        60..=63 => ("local_port", 60, 4, narrow(4), RegType::Scalar),
        64..=67 => ("ingress_ifindex", 64, 4, narrow(4), RegType::Scalar),
        _ => return None,
    };
    ok.then_some(CtxLoad {
        field: CtxField {
            name,
            off: foff,
            size: fsize,
        },
        reg_type,
    })
}

/// `sizeof(struct pt_regs)` on x86-64.
const SIZEOF_PT_REGS: u32 = 168;
/// `PERF_MAX_TRACE_SIZE`: the largest tracepoint record.
const PERF_MAX_TRACE_SIZE: u32 = 8192;

/// One context field as the rewrite needs it (`convert_ctx_access` works per field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxField {
    /// Field name in the uapi struct, e.g. `"data_end"` or `"cb[2]"`.
    pub name: &'static str,
    /// Offset of the field in the uapi struct.
    pub off: u32,
    /// Size of the field in bytes.
    pub size: u32,
}

/// What a context access touched, recorded per instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxAccess {
    /// The field.
    pub field: CtxField,
    /// Offset of the access inside the uapi struct (may be inside the field for narrow loads).
    pub off: u32,
    /// Access size in bytes.
    pub size: u32,
    /// Store (true) or load (false).
    pub write: bool,
}

/// What a valid load from the context yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxLoad {
    /// The field accessed.
    pub field: CtxField,
    /// The register type the load produces (scalar, or a packet pointer).
    pub reg_type: RegType,
}

const XDP_FIELDS: &[CtxField] = &[
    CtxField {
        name: "data",
        off: 0,
        size: 4,
    },
    CtxField {
        name: "data_end",
        off: 4,
        size: 4,
    },
    CtxField {
        name: "data_meta",
        off: 8,
        size: 4,
    },
    CtxField {
        name: "ingress_ifindex",
        off: 12,
        size: 4,
    },
    CtxField {
        name: "rx_queue_index",
        off: 16,
        size: 4,
    },
    CtxField {
        name: "egress_ifindex",
        off: 20,
        size: 4,
    },
];

/// `MAX_BPF_FUNC_ARGS`: a raw tracepoint's context is this many `u64` arguments.
pub const MAX_BPF_FUNC_ARGS: u32 = 12;

const RAW_TP_FIELDS: &[CtxField] = &[
    CtxField {
        name: "args[0]",
        off: 0,
        size: 8,
    },
    CtxField {
        name: "args[1]",
        off: 8,
        size: 8,
    },
    CtxField {
        name: "args[2]",
        off: 16,
        size: 8,
    },
    CtxField {
        name: "args[3]",
        off: 24,
        size: 8,
    },
    CtxField {
        name: "args[4]",
        off: 32,
        size: 8,
    },
    CtxField {
        name: "args[5]",
        off: 40,
        size: 8,
    },
    CtxField {
        name: "args[6]",
        off: 48,
        size: 8,
    },
    CtxField {
        name: "args[7]",
        off: 56,
        size: 8,
    },
    CtxField {
        name: "args[8]",
        off: 64,
        size: 8,
    },
    CtxField {
        name: "args[9]",
        off: 72,
        size: 8,
    },
    CtxField {
        name: "args[10]",
        off: 80,
        size: 8,
    },
    CtxField {
        name: "args[11]",
        off: 88,
        size: 8,
    },
];

const SKB_FIELDS: &[CtxField] = &[
    CtxField {
        name: "len",
        off: 0,
        size: 4,
    },
    CtxField {
        name: "pkt_type",
        off: 4,
        size: 4,
    },
    CtxField {
        name: "mark",
        off: 8,
        size: 4,
    },
    CtxField {
        name: "queue_mapping",
        off: 12,
        size: 4,
    },
    CtxField {
        name: "protocol",
        off: 16,
        size: 4,
    },
    CtxField {
        name: "vlan_present",
        off: 20,
        size: 4,
    },
    CtxField {
        name: "vlan_tci",
        off: 24,
        size: 4,
    },
    CtxField {
        name: "vlan_proto",
        off: 28,
        size: 4,
    },
    CtxField {
        name: "priority",
        off: 32,
        size: 4,
    },
    CtxField {
        name: "ingress_ifindex",
        off: 36,
        size: 4,
    },
    CtxField {
        name: "ifindex",
        off: 40,
        size: 4,
    },
    CtxField {
        name: "tc_index",
        off: 44,
        size: 4,
    },
    CtxField {
        name: "cb[0]",
        off: 48,
        size: 4,
    },
    CtxField {
        name: "cb[1]",
        off: 52,
        size: 4,
    },
    CtxField {
        name: "cb[2]",
        off: 56,
        size: 4,
    },
    CtxField {
        name: "cb[3]",
        off: 60,
        size: 4,
    },
    CtxField {
        name: "cb[4]",
        off: 64,
        size: 4,
    },
    CtxField {
        name: "hash",
        off: 68,
        size: 4,
    },
    CtxField {
        name: "tc_classid",
        off: 72,
        size: 4,
    },
    CtxField {
        name: "data",
        off: 76,
        size: 4,
    },
    CtxField {
        name: "data_end",
        off: 80,
        size: 4,
    },
    CtxField {
        name: "napi_id",
        off: 84,
        size: 4,
    },
    CtxField {
        name: "data_meta",
        off: 140,
        size: 4,
    },
];

/// Checks a context access of `size` bytes at `off` (`check_ctx_access`) for a program
/// loaded without an expected attach type. `None` means the kernel's
/// `invalid bpf_context access off=%d size=%d`.
pub fn check_ctx_access(prog: ProgType, off: i32, size: u32, write: bool) -> Option<CtxLoad> {
    check_ctx_access_for(prog, 0, off, size, write)
}

/// [`check_ctx_access`] for a program with `expected_attach_type` `attach` (some program
/// types' fields depend on it).
pub fn check_ctx_access_for(
    prog: ProgType,
    attach: u32,
    off: i32,
    size: u32,
    write: bool,
) -> Option<CtxLoad> {
    if off < 0 {
        return None;
    }
    let off = off as u32;
    let prog = prog.rules();
    match prog {
        ProgType::SchedAct => None,
        ProgType::CgroupSockAddr => cgroup::sock_addr_access(attach, off, size, write),
        ProgType::CgroupSock => cgroup::sock_access(attach, off, size, write),
        ProgType::CgroupSkb
        | ProgType::LwtIn
        | ProgType::LwtOut
        | ProgType::LwtXmit
        | ProgType::SkSkb => skb::skb_access(prog, off, size, write),
        ProgType::SkMsg => skb::sk_msg_access(off, size, write),
        // nf_is_valid_access: `state` and `skb`, read whole, are trusted kernel pointers
        // (PTR_TO_BTF_ID: kbpf checks accesses through them up to the struct's fields).
        ProgType::Netfilter => {
            let name = match (off, size, write) {
                (0, 8, false) => "state",
                (8, 8, false) => "skb",
                _ => return None,
            };
            Some(CtxLoad {
                field: CtxField { name, off, size: 8 },
                reg_type: RegType::PtrToBtfId,
            })
        }
        ProgType::SkReuseport => skb::sk_reuseport_access(off, size, write),
        ProgType::SockOps => skb::sock_ops_access(off, size, write),
        ProgType::CgroupSysctl => sysctl_access(off, size, write),
        ProgType::CgroupSockopt => cgroup::sockopt_access(attach, off, size, write),
        ProgType::SkLookup => sk_lookup_access(off, size, write),
        // raw_tp_writable_prog_is_valid_access: offset 0 is the buffer.
        ProgType::RawTracepointWritable if off == 0 => (size == 8 && !write).then_some(CtxLoad {
            field: CtxField {
                name: "buffer",
                off: 0,
                size: 8,
            },
            reg_type: RegType::PtrToTpBuffer,
        }),
        ProgType::RawTracepointWritable => {
            check_ctx_access_for(ProgType::RawTracepoint, attach, off as i32, size, write)
        }
        ProgType::Syscall => {
            // syscall_prog_is_valid_access: below U16_MAX, aligned to the size.
            if off >= u16::MAX as u32 || size == 0 || !off.is_multiple_of(size) {
                return None;
            }
            Some(CtxLoad {
                field: CtxField {
                    name: "syscall",
                    off,
                    size,
                },
                reg_type: RegType::Scalar,
            })
        }
        // flow_dissector_is_valid_access: 4-byte reads of data and data_end, 8-byte reads of
        // flow_keys.
        ProgType::FlowDissector => {
            let field = *skb::FIELDS.iter().find(|f| f.off == off)?;
            let (reg_type, fsize) = match field.name {
                "data" => (RegType::PtrToPacket, 4),
                "data_end" => (RegType::PtrToPacketEnd, 4),
                "flow_keys" => (RegType::PtrToFlowKeys, 8),
                _ => return None,
            };
            (!write && size == fsize).then_some(CtxLoad { field, reg_type })
        }
        ProgType::PerfEvent => {
            // pe_prog_is_valid_access: reads; pt_regs words, then sample_period and addr
            // (u64, narrow reads allowed).
            if write || off >= SIZEOF_PT_REGS + 16 || !off.is_multiple_of(size) {
                return None;
            }
            let (name, fsize, ok) = if off < SIZEOF_PT_REGS {
                ("regs", 8, size == 8)
            } else if off < SIZEOF_PT_REGS + 8 {
                ("sample_period", 8, size <= 8 && size.is_power_of_two())
            } else {
                ("addr", 8, size <= 8 && size.is_power_of_two())
            };
            ok.then_some(CtxLoad {
                field: CtxField {
                    name,
                    off: off - off % fsize,
                    size: fsize,
                },
                reg_type: RegType::Scalar,
            })
        }
        ProgType::Xdp => {
            // xdp_is_valid_access: read-only, whole u32 fields only.
            if write || size != 4 || !off.is_multiple_of(4) {
                return None;
            }
            let field = *XDP_FIELDS.iter().find(|f| f.off == off)?;
            // `egress_ifindex` exists only for programs attached to a devmap
            // (`expected_attach_type == BPF_XDP_DEVMAP`), which kbpf does not load: for any
            // other XDP program the kernel refuses it (its test runs have no txq to read).
            if field.name == "egress_ifindex" {
                return None;
            }
            let reg_type = match field.name {
                "data" => RegType::PtrToPacket,
                "data_end" => RegType::PtrToPacketEnd,
                "data_meta" => RegType::PtrToPacketMeta,
                _ => RegType::Scalar,
            };
            Some(CtxLoad { field, reg_type })
        }
        ProgType::Kprobe => {
            // kprobe_prog_is_valid_access: reads inside struct pt_regs, naturally aligned.
            if write
                || off >= SIZEOF_PT_REGS
                || !off.is_multiple_of(size)
                || off + size > SIZEOF_PT_REGS
            {
                return None;
            }
            Some(CtxLoad {
                field: CtxField {
                    name: "pt_regs",
                    off,
                    size,
                },
                reg_type: RegType::Scalar,
            })
        }
        ProgType::Tracepoint => {
            // tp_prog_is_valid_access: reads past the common header, inside the record.
            if write || !(8..PERF_MAX_TRACE_SIZE).contains(&off) || !off.is_multiple_of(size) {
                return None;
            }
            Some(CtxLoad {
                field: CtxField {
                    name: "tracepoint",
                    off,
                    size,
                },
                reg_type: RegType::Scalar,
            })
        }
        ProgType::RawTracepoint => {
            // bpf_tracing_ctx_access: reads inside the argument array, naturally aligned.
            if write || off >= 8 * MAX_BPF_FUNC_ARGS || !off.is_multiple_of(size) {
                return None;
            }
            let field = *RAW_TP_FIELDS
                .iter()
                .find(|f| f.off <= off && off < f.off + 8)?;
            Some(CtxLoad {
                field,
                reg_type: RegType::Scalar,
            })
        }
        ProgType::SocketFilter | ProgType::SchedCls => {
            let Some(&field) = SKB_FIELDS
                .iter()
                .find(|f| f.off <= off && off < f.off + f.size)
            else {
                // The fields past this table (and the socket fields in between).
                return skb::skb_access(prog, off, size, write);
            };
            if !off.is_multiple_of(size) {
                return None;
            }
            let tc = prog == ProgType::SchedCls;
            let pkt = match field.name {
                "data" => Some(RegType::PtrToPacket),
                "data_end" => Some(RegType::PtrToPacketEnd),
                "data_meta" => Some(RegType::PtrToPacketMeta),
                _ => None,
            };
            if let Some(t) = pkt {
                // Direct packet access: TC only, whole-field loads only.
                if !tc || write || size != 4 || off != field.off {
                    return None;
                }
                return Some(CtxLoad { field, reg_type: t });
            }
            if field.name == "tc_classid" && !tc {
                return None;
            }
            if field.name.starts_with("cb[") {
                // bpf_skb_is_valid_access: cb[] is scratch space, any (aligned) size inside
                // it, loads and stores alike.
                return (off + size <= 68).then_some(CtxLoad {
                    field,
                    reg_type: RegType::Scalar,
                });
            }
            if write {
                // Socket filters may only write cb[]; TC also mark, priority, tc_index,
                // queue_mapping and tc_classid. Stores are whole fields.
                let writable = field.name.starts_with("cb[")
                    || (tc
                        && matches!(
                            field.name,
                            "mark" | "priority" | "tc_index" | "queue_mapping" | "tc_classid"
                        ));
                if !writable || size != 4 || off != field.off {
                    return None;
                }
            } else if !matches!(size, 1 | 2 | 4) {
                return None;
            }
            Some(CtxLoad {
                field,
                reg_type: RegType::Scalar,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_fields() {
        let ok = |off, size, write| check_ctx_access(ProgType::CgroupSysctl, off, size, write);
        assert!(ok(0, 4, false).is_some());
        assert!(ok(0, 1, false).is_some(), "narrow read of write");
        assert!(ok(0, 4, true).is_none(), "write is read-only");
        assert!(ok(4, 4, true).is_some(), "file_pos is writable");
        assert!(ok(4, 2, true).is_none(), "only as a whole u32");
        assert!(ok(6, 2, false).is_some());
        assert!(ok(0, 8, false).is_none(), "two fields at once");
        assert!(ok(8, 4, false).is_none(), "past the struct");
        assert!(ok(2, 4, false).is_none(), "misaligned");
        assert_eq!(ProgType::from_u32(23), Some(ProgType::CgroupSysctl));
        assert_eq!(ProgType::CgroupSysctl.as_u32(), 23);
    }

    #[test]
    fn raw_tp_writable_reads_its_buffer_whole() {
        let ok = |off, size| check_ctx_access(ProgType::RawTracepointWritable, off, size, false);
        assert_eq!(ok(0, 8).map(|l| l.reg_type), Some(RegType::PtrToTpBuffer));
        assert!(ok(0, 4).is_none(), "the buffer pointer is read whole");
        assert!(check_ctx_access(ProgType::RawTracepointWritable, 0, 8, true).is_none());
        assert!(ok(8, 8).is_some());
        assert!(check_ctx_access(ProgType::RawTracepointWritable, 8, 8, true).is_none());
        assert_eq!(
            ProgType::from_u32(24),
            Some(ProgType::RawTracepointWritable)
        );
        assert!(ProgType::RawTracepointWritable.is_tracing());
    }

    #[test]
    fn sk_lookup_fields() {
        let ok = |off, size| check_ctx_access(ProgType::SkLookup, off, size, false);
        assert_eq!(ok(0, 8).map(|l| l.reg_type), Some(RegType::PtrToSocket));
        assert!(ok(0, 4).is_none(), "sk as a whole pointer");
        assert!(
            check_ctx_access(ProgType::SkLookup, 8, 4, true).is_none(),
            "read-only"
        );
        assert!(ok(9, 1).is_some());
        assert!(ok(36, 4).is_some(), "remote_port with its padding");
        assert!(ok(36, 2).is_some());
        assert!(ok(38, 2).is_some());
        assert!(ok(64, 4).is_some());
        assert!(ok(68, 4).is_none());
        assert!(ok(8, 8).is_none(), "two u32 fields at once");
        assert_eq!(ProgType::from_u32(30), Some(ProgType::SkLookup));
    }

    #[test]
    fn syscall_ctx_is_a_buffer() {
        let ok = |off, size, write| check_ctx_access(ProgType::Syscall, off, size, write);
        assert!(ok(0, 8, true).is_some());
        assert!(ok(1000, 8, false).is_some());
        assert!(ok(1004, 8, false).is_none(), "misaligned");
        assert!(ok(65535, 1, false).is_none(), "U16_MAX and beyond");
        assert!(ok(-8, 8, false).is_none());
        assert_eq!(ProgType::from_u32(31), Some(ProgType::Syscall));
        assert!(crate::helpers::func_proto(ProgType::Syscall, 67).is_none());
        assert!(crate::helpers::func_proto(ProgType::Syscall, 1).is_some());
    }

    #[test]
    fn xdp_fields() {
        let l = check_ctx_access(ProgType::Xdp, 4, 4, false).map(|l| l.reg_type);
        assert_eq!(l, Some(RegType::PtrToPacketEnd));
        assert!(check_ctx_access(ProgType::Xdp, 24, 4, false).is_none());
        assert!(check_ctx_access(ProgType::Xdp, 0, 8, false).is_none());
        assert!(check_ctx_access(ProgType::Xdp, 12, 4, true).is_none());
    }

    #[test]
    fn skb_fields() {
        assert!(check_ctx_access(ProgType::SocketFilter, 76, 4, false).is_none());
        let l = check_ctx_access(ProgType::SchedCls, 76, 4, false).map(|l| l.reg_type);
        assert_eq!(l, Some(RegType::PtrToPacket));
        assert!(check_ctx_access(ProgType::SocketFilter, 48, 4, true).is_some());
        assert!(check_ctx_access(ProgType::SocketFilter, 8, 4, true).is_none());
        assert!(check_ctx_access(ProgType::SchedCls, 8, 4, true).is_some());
        assert!(check_ctx_access(ProgType::SocketFilter, 17, 1, false).is_some());
        // cb[]: any aligned size inside it, not past cb[4].
        assert!(check_ctx_access(ProgType::SocketFilter, 48, 1, true).is_some());
        assert!(check_ctx_access(ProgType::SocketFilter, 56, 8, false).is_some());
        assert!(check_ctx_access(ProgType::SocketFilter, 64, 8, false).is_none());
        assert!(check_ctx_access(ProgType::SchedCls, 50, 2, true).is_some());
    }
}

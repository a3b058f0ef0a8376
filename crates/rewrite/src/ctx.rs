//! Context access conversion (`convert_ctx_accesses` with each program type's
//! `convert_ctx_access`): a program reads the uapi context (`struct xdp_md`,
//! `struct __sk_buff`), but runs on the kernel-internal one (`struct xdp_buff`,
//! `struct sk_buff`). Each access is rewritten into loads from the internal structure —
//! kbpf's run-time contexts mirror the kernel's field offsets (the constants below, the
//! built-in kernel profile's `CtxLayout`), so the translated program reads exactly like the
//! kernel's. A profile whose context layout differs is reported by
//! `KernelProfile::unsupported`, not followed: the run-time structs are fixed `repr(C)` types.

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_profile::CtxLayout;
use kbpf_verifier::{CtxAccess, ProgType, RegType};

use crate::RewriteError;
use crate::patch::Prog;

pub mod skb;
pub mod sock;

/// `offsetof(struct xdp_buff, data)`.
pub const XDP_BUFF_DATA: i16 = CtxLayout::BUILTIN.xdp_buff_data as i16;
/// `offsetof(struct xdp_buff, data_end)`.
pub const XDP_BUFF_DATA_END: i16 = CtxLayout::BUILTIN.xdp_buff_data_end as i16;
/// `offsetof(struct xdp_buff, data_meta)`.
pub const XDP_BUFF_DATA_META: i16 = CtxLayout::BUILTIN.xdp_buff_data_meta as i16;
/// `offsetof(struct xdp_buff, data_hard_start)`.
pub const XDP_BUFF_DATA_HARD_START: i16 = CtxLayout::BUILTIN.xdp_buff_data_hard_start as i16;
/// `offsetof(struct xdp_buff, rxq)`.
pub const XDP_BUFF_RXQ: i16 = CtxLayout::BUILTIN.xdp_buff_rxq as i16;
/// `offsetof(struct xdp_buff, txq)`.
pub const XDP_BUFF_TXQ: i16 = CtxLayout::BUILTIN.xdp_buff_txq as i16;
/// `offsetof(struct xdp_buff, frame_sz)`.
pub const XDP_BUFF_FRAME_SZ: i16 = CtxLayout::BUILTIN.xdp_buff_frame_sz as i16;
/// `offsetof(struct xdp_rxq_info, dev)` (also `struct xdp_txq_info`'s).
pub const XDP_RXQ_DEV: i16 = CtxLayout::BUILTIN.xdp_rxq_info_dev as i16;
/// `offsetof(struct xdp_rxq_info, queue_index)`.
pub const XDP_RXQ_QUEUE_INDEX: i16 = CtxLayout::BUILTIN.xdp_rxq_info_queue_index as i16;
/// `offsetof(struct net_device, ifindex)`.
pub const NET_DEVICE_IFINDEX: i16 = CtxLayout::BUILTIN.net_device_ifindex as i16;

fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | size | BPF_MEM, dst, src, off, 0)
}

/// `bpf_size_to_bytes` inverse.
fn size_code(bytes: u32) -> u8 {
    match bytes {
        1 => BPF_B,
        2 => BPF_H,
        4 => BPF_W,
        _ => BPF_DW,
    }
}

/// `xdp_convert_ctx_access`.
fn xdp(insn: &Insn, field: &str, at: usize) -> Result<Vec<Insn>, RewriteError> {
    let (d, s) = (insn.dst(), insn.src());
    Ok(match field {
        "data" => vec![ldx(BPF_DW, d, s, XDP_BUFF_DATA)],
        "data_meta" => vec![ldx(BPF_DW, d, s, XDP_BUFF_DATA_META)],
        "data_end" => vec![ldx(BPF_DW, d, s, XDP_BUFF_DATA_END)],
        "ingress_ifindex" => vec![
            ldx(BPF_DW, d, s, XDP_BUFF_RXQ),
            ldx(BPF_DW, d, d, XDP_RXQ_DEV),
            ldx(BPF_W, d, d, NET_DEVICE_IFINDEX),
        ],
        "rx_queue_index" => vec![
            ldx(BPF_DW, d, s, XDP_BUFF_RXQ),
            ldx(BPF_W, d, d, XDP_RXQ_QUEUE_INDEX),
        ],
        "egress_ifindex" => vec![
            ldx(BPF_DW, d, s, XDP_BUFF_TXQ),
            ldx(BPF_DW, d, d, XDP_RXQ_DEV),
            ldx(BPF_W, d, d, NET_DEVICE_IFINDEX),
        ],
        other => {
            return Err(RewriteError::Unsupported {
                insn: at,
                what: format!("xdp_md field {other}"),
            });
        }
    })
}

/// Converts every context access of `prog` (`convert_ctx_accesses`), after the program
/// type's `gen_prologue` (tc and lwt_xmit programs that write packet data directly,
/// `seen_direct_write`, begin with [`skb::unclone_prologue`]).
pub fn convert_ctx_accesses(
    prog: &mut Prog,
    prog_type: ProgType,
    seen_direct_write: bool,
) -> Result<(), RewriteError> {
    // A raw tracepoint's context is its argument array itself: no `convert_ctx_access`.
    if (prog_type.is_tracing() && prog_type != ProgType::PerfEvent)
        || prog_type == ProgType::Syscall
    {
        return Ok(());
    }
    if seen_direct_write
        && matches!(
            prog_type,
            ProgType::SchedCls | ProgType::SchedAct | ProgType::LwtXmit
        )
        && !prog.is_empty()
    {
        let seq = skb::unclone_prologue(prog.insns[0]);
        prog.patch(0, &seq)?;
        prog.adjust_jmp_off(0, seq.len() - 1)?;
    }
    let mut i = 0;
    while i < prog.len() {
        let aux = prog.aux[i];
        let insn = prog.insns[i];
        let at = prog.orig[i].unwrap_or(i);
        let load = insn.class() == BPF_LDX;
        let seq = match (aux.ptr_type, aux.ctx) {
            (Some(RegType::PtrToCtx), Some(access)) => convert_one(&insn, &access, prog_type, at)?,
            (Some(RegType::PtrToSocket | RegType::PtrToSockCommon), _) if load => {
                convert_sock(&insn, at)?
            }
            (Some(RegType::PtrToTcpSock), _) if load => sock::convert_tcp(&insn, at)?,
            _ => {
                i += 1;
                continue;
            }
        };
        let cnt = seq.len();
        prog.patch(i, &seq)?;
        i += cnt;
    }
    Ok(())
}

/// A load through a `struct bpf_sock` pointer: the field the verifier allowed
/// (`bpf_sock_is_valid_access`, its `ctx_field_size`), widened, converted, then shifted and
/// masked to a narrow load's bytes as `convert_ctx_accesses` does.
fn convert_sock(insn: &Insn, at: usize) -> Result<Vec<Insn>, RewriteError> {
    let size = match insn.code & 0x18 {
        BPF_B => 1,
        BPF_H => 2,
        BPF_W => 4,
        _ => 8,
    };
    let off = insn.off as u32;
    let field = kbpf_verifier::ctx::cgroup::bpf_sock_valid(off, size).ok_or_else(|| {
        RewriteError::Unsupported {
            insn: at,
            what: format!("bpf_sock access off={off} size={size}"),
        }
    })?;
    // A narrow dst_port is a 2-byte field, a full one the 4-byte word with its padding.
    let field_size = match field.name {
        "dst_port" if size == 4 => 4,
        _ => field.size,
    };
    let mut wide = *insn;
    wide.code = BPF_LDX | BPF_MEM | size_code(field_size);
    wide.off = (off & !(field_size - 1)) as i16;
    let (mut seq, target_size) = sock::convert(&wide, field.name, at)?;
    if size < field_size {
        let d = insn.dst();
        let shift = (off & (field_size - 1)) * 8;
        if shift != 0 {
            seq.push(Insn::new(BPF_ALU | BPF_RSH | BPF_K, d, 0, 0, shift as i32));
        }
        if size < target_size {
            let mask = ((1u64 << (size * 8)) - 1) as i32;
            seq.push(Insn::new(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, mask));
        }
    }
    Ok(seq)
}

fn convert_one(
    insn: &Insn,
    access: &CtxAccess,
    prog_type: ProgType,
    at: usize,
) -> Result<Vec<Insn>, RewriteError> {
    let field = access.field;
    let size = access.size;
    // `cb[]` is byte-addressable scratch: any access size is converted as it is.
    let narrow = !access.write && size < field.size && !field.name.starts_with("cb[");
    // A sign-extending load (`BPF_MEMSX`) is converted as a plain one, then sign-extended
    // from its size with `movsx` (convert_ctx_accesses).
    let ldsx = insn.code & 0xe0 == BPF_MEMSX;
    let mut insn = *insn;
    if narrow {
        // Read the whole field, then shift and mask (the kernel's narrow-load handling).
        insn.code = BPF_LDX | BPF_MEM | size_code(field.size);
        insn.off = (field.off as i16) & !((field.size as i16) - 1);
    }
    let mut seq = match prog_type {
        ProgType::Xdp => xdp(&insn, field.name, at)?,
        ProgType::SocketFilter
        | ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::CgroupSkb
        | ProgType::LwtIn
        | ProgType::LwtOut
        | ProgType::LwtXmit => crate::ctx::skb::convert(&insn, field.name, access.write, at)?,
        ProgType::RawTracepoint
        | ProgType::RawTracepointWritable
        | ProgType::Kprobe
        | ProgType::Tracepoint
        | ProgType::Syscall => {
            vec![insn]
        }
        ProgType::CgroupSockAddr
        | ProgType::CgroupSock
        | ProgType::SkSkb
        | ProgType::SkMsg
        | ProgType::Netfilter
        | ProgType::SkReuseport
        | ProgType::PerfEvent
        | ProgType::SockOps
        | ProgType::FlowDissector
        | ProgType::CgroupSysctl
        | ProgType::CgroupSockopt
        | ProgType::SkLookup => {
            return Err(RewriteError::Unsupported {
                insn: at,
                what: format!(
                    "context field '{}' of program type {}",
                    field.name,
                    prog_type.as_u32()
                ),
            });
        }
    };
    if narrow {
        let shift = ((access.off - field.off) & (field.size - 1)) * 8;
        let d = insn.dst();
        let mask = ((1u64 << (size * 8)) - 1) as i32;
        if field.size <= 4 {
            if shift != 0 {
                seq.push(Insn::new(BPF_ALU | BPF_RSH | BPF_K, d, 0, 0, shift as i32));
            }
        } else if shift != 0 {
            seq.push(Insn::new(
                BPF_ALU64 | BPF_RSH | BPF_K,
                d,
                0,
                0,
                shift as i32,
            ));
        }
        seq.push(Insn::new(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, mask));
    }
    if ldsx {
        let d = insn.dst();
        seq.push(Insn::new(
            BPF_ALU64 | BPF_MOV | BPF_X,
            d,
            d,
            (size * 8) as i16,
            0,
        ));
    }
    Ok(seq)
}

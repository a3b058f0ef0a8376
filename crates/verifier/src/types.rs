//! What the verifier knows about one register or stack slot: the register types of the
//! kernel's `enum bpf_reg_type` (the subset kbpf supports), [`RegState`] (the kernel's
//! `struct bpf_reg_state`), the caller's map descriptions ([`MapDesc`]) and how all of them
//! print in the verifier log (`print_reg_state()` of `kernel/bpf/log.c`).

use std::fmt::Write as _;

use crate::bounds::Scalar;
pub use kbpf_uapi::bpf::{
    BPF_F_INNER_MAP, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG, BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_CPUMAP, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH,
    BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_XSKMAP,
};

/// A map as the verifier needs to know it; the caller (map subsystem or test) provides it.
/// For a map-of-maps, `inner_meta` describes the inner-map template (the kernel's
/// `inner_map_meta`: type, sizes, flags and max_entries copied from the template; no name).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MapDesc {
    /// Map id (as `bpftool map` shows it); 0 for an inner-map meta.
    pub id: u32,
    /// Map name ("" for an inner-map meta, which the log prints without `map=`).
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// Creation flags.
    pub map_flags: u32,
    /// The inner-map template of a map-of-maps.
    pub inner_meta: Option<Box<MapDesc>>,
    /// The contents of a frozen `BPF_F_RDONLY_PROG` single-element array (libbpf's
    /// `.rodata`): loads at constant offsets are known scalars, as the kernel's
    /// `bpf_map_direct_read` makes them, so branches on `const volatile` configuration are
    /// decided at load time.
    pub frozen_value: Option<Vec<u8>>,
    /// Offset of the value's `struct bpf_spin_lock` (from the map's BTF: `map->record`).
    pub spin_lock_off: Option<u32>,
    /// Offset of the value's `struct bpf_timer`.
    pub timer_off: Option<u32>,
}

impl MapDesc {
    /// Whether this is an `ARRAY_OF_MAPS` or `HASH_OF_MAPS`.
    pub fn is_map_of_maps(&self) -> bool {
        matches!(
            self.map_type,
            BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS
        )
    }
}

/// The maps a program may reference, looked up the way `ld_imm64` names them.
pub trait MapEnv {
    /// The map behind `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE` fd `fd`.
    fn map_by_fd(&self, fd: i32) -> Option<&MapDesc>;
    /// The map at `idx` of the fd array (`BPF_PSEUDO_MAP_IDX` / `_IDX_VALUE`).
    fn map_by_idx(&self, idx: u32) -> Option<&MapDesc> {
        self.map_by_fd(idx as i32)
    }
}

/// A slice of maps is an environment where the "fd" is the index.
impl MapEnv for [MapDesc] {
    fn map_by_fd(&self, fd: i32) -> Option<&MapDesc> {
        usize::try_from(fd).ok().and_then(|i| self.get(i))
    }
}

impl MapEnv for Vec<MapDesc> {
    fn map_by_fd(&self, fd: i32) -> Option<&MapDesc> {
        self.as_slice().map_by_fd(fd)
    }
}

/// Which map a register or a call site refers to, as the rewrite needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapRef {
    /// A map referenced by an `ld_imm64` (its fd, or fd-array index for `MAP_IDX`).
    Fd(i32),
    /// The inner-map meta of the map-of-maps referenced by fd `outer`.
    InnerOf(i32),
}

/// Register types (`enum bpf_reg_type`, the subset kbpf tracks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written (`NOT_INIT`).
    NotInit,
    /// A number (`SCALAR_VALUE`).
    Scalar,
    /// The program context (`PTR_TO_CTX`).
    PtrToCtx,
    /// A map (`CONST_PTR_TO_MAP`).
    ConstPtrToMap,
    /// A map value (`PTR_TO_MAP_VALUE`, `_OR_NULL` with [`RegState::maybe_null`]).
    PtrToMapValue,
    /// A map key (`PTR_TO_MAP_KEY`).
    PtrToMapKey,
    /// The stack of frame [`RegState::frameno`] (`PTR_TO_STACK`).
    PtrToStack,
    /// Packet data (`PTR_TO_PACKET`).
    PtrToPacket,
    /// Packet metadata (`PTR_TO_PACKET_META`).
    PtrToPacketMeta,
    /// End of packet data (`PTR_TO_PACKET_END`).
    PtrToPacketEnd,
    /// Memory of [`RegState::mem_size`] bytes (`PTR_TO_MEM`): a global function's pointer
    /// argument.
    PtrToMem,
    /// A full socket (`PTR_TO_SOCKET`, `struct bpf_sock`).
    PtrToSocket,
    /// A socket's common part (`PTR_TO_SOCK_COMMON`).
    PtrToSockCommon,
    /// A TCP socket (`PTR_TO_TCP_SOCK`, `struct bpf_tcp_sock`).
    PtrToTcpSock,
    /// An AF_XDP socket from an XSKMAP (`PTR_TO_XDP_SOCK`, `struct bpf_xdp_sock`).
    PtrToXdpSock,
    /// A ring buffer record of [`RegState::mem_size`] bytes (`PTR_TO_MEM | MEM_RINGBUF`),
    /// reserved by `bpf_ringbuf_reserve` and held by reference until submitted or discarded.
    PtrToRingbufMem,
    /// A static subprogram, from `ld_imm64` of `BPF_PSEUDO_FUNC` (`PTR_TO_FUNC`), passed as
    /// a callback; [`RegState::mem_size`] holds its subprogram number (`subprogno`).
    PtrToFunc,
    /// A trusted pointer to a kernel object described by BTF (`PTR_TO_BTF_ID |
    /// PTR_TRUSTED`), as `bpf_cast_to_kern_ctx` returns; kbpf does not dereference it.
    PtrToBtfId,
    /// A flow dissector's `struct bpf_flow_keys` (`PTR_TO_FLOW_KEYS`), from
    /// `__sk_buff->flow_keys`: movable by constants only.
    PtrToFlowKeys,
    /// A writable raw tracepoint's buffer (`PTR_TO_TP_BUFFER`), its context's first word:
    /// accessed at constant, non-negative offsets only.
    PtrToTpBuffer,
}

impl RegType {
    /// `reg_type_str` without the `_or_null` suffix.
    pub fn name(self) -> &'static str {
        match self {
            RegType::NotInit => "?",
            RegType::Scalar => "scalar",
            RegType::PtrToCtx => "ctx",
            RegType::ConstPtrToMap => "map_ptr",
            RegType::PtrToMapValue => "map_value",
            RegType::PtrToMapKey => "map_key",
            RegType::PtrToStack => "fp",
            RegType::PtrToPacket => "pkt",
            RegType::PtrToPacketMeta => "pkt_meta",
            RegType::PtrToPacketEnd => "pkt_end",
            RegType::PtrToMem => "mem",
            RegType::PtrToSocket => "sock",
            RegType::PtrToSockCommon => "sock_common",
            RegType::PtrToTcpSock => "tcp_sock",
            RegType::PtrToXdpSock => "xdp_sock",
            RegType::PtrToFlowKeys => "flow_keys",
            RegType::PtrToTpBuffer => "tp_buffer",
            RegType::PtrToRingbufMem => "ringbuf_mem",
            RegType::PtrToFunc => "func",
            RegType::PtrToBtfId => "trusted_ptr_",
        }
    }

    /// Packet data or metadata pointer (`type_is_pkt_pointer`).
    pub fn is_pkt_pointer(self) -> bool {
        matches!(self, RegType::PtrToPacket | RegType::PtrToPacketMeta)
    }

    /// Memory of a known size (`PTR_TO_MEM`, plain or a ring buffer record).
    pub fn is_mem(self) -> bool {
        matches!(self, RegType::PtrToMem | RegType::PtrToRingbufMem)
    }

    /// A socket pointer (`type_is_sk_pointer`).
    pub fn is_sk_pointer(self) -> bool {
        matches!(
            self,
            RegType::PtrToSocket
                | RegType::PtrToSockCommon
                | RegType::PtrToTcpSock
                | RegType::PtrToXdpSock
        )
    }
}

/// Sentinel for "no map" in [`RegState::map`].
pub const NO_MAP: u32 = u32::MAX;

/// Flag in a scalar's id: the register is its id's value plus the constant in
/// [`RegState::off`] (`BPF_ADD_CONST`; see the verifier's `check/linked.rs`).
pub const BPF_ADD_CONST: u32 = 1 << 31;

/// One register's abstract value (`struct bpf_reg_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegState {
    /// Type.
    pub ty: RegType,
    /// `PTR_MAYBE_NULL`: the pointer may be NULL until checked.
    pub maybe_null: bool,
    /// Fixed offset of a pointer.
    pub off: i32,
    /// Variable part (the value for scalars, the variable offset for pointers).
    pub s: Scalar,
    /// Identity shared by copies: null checks and packet range checks apply to every
    /// register with the same id; scalars with the same id are known equal.
    pub id: u32,
    /// Index into the verifier's map table ([`NO_MAP`] if none).
    pub map: u32,
    /// For packet pointers: bytes known accessible after `off`.
    pub range: i32,
    /// For `PtrToStack`: which frame's stack.
    pub frameno: u8,
    /// For `PtrToMem`: the memory's size; for `PtrToFunc`: the subprogram number.
    pub mem_size: u32,
    /// The acquired reference this pointer holds (`ref_obj_id`; 0: none).
    pub ref_obj_id: u32,
}

impl RegState {
    /// `NOT_INIT`.
    pub const NOT_INIT: RegState = RegState {
        ty: RegType::NotInit,
        maybe_null: false,
        off: 0,
        s: Scalar::unknown(),
        id: 0,
        map: NO_MAP,
        range: 0,
        frameno: 0,
        mem_size: 0,
        ref_obj_id: 0,
    };

    /// An unknown scalar (`mark_reg_unknown`).
    pub const fn unknown() -> RegState {
        RegState {
            ty: RegType::Scalar,
            ..RegState::NOT_INIT
        }
    }

    /// A scalar with the given ranges.
    pub const fn scalar(s: Scalar) -> RegState {
        RegState {
            ty: RegType::Scalar,
            s,
            ..RegState::NOT_INIT
        }
    }

    /// A known scalar (`__mark_reg_known`).
    pub const fn known(v: u64) -> RegState {
        RegState::scalar(Scalar::constant(v))
    }

    /// A pointer of type `ty` with a zero offset.
    pub const fn pointer(ty: RegType) -> RegState {
        RegState {
            ty,
            s: Scalar::constant(0),
            ..RegState::NOT_INIT
        }
    }

    /// Whether this is a pointer (any type but scalar / not-init).
    pub fn is_pointer(&self) -> bool {
        !matches!(self.ty, RegType::Scalar | RegType::NotInit)
    }

    /// `reg_type_str`: `map_value_or_null`, `scalar`, `trusted_ptr_or_null_`, ...
    pub fn type_str(&self) -> String {
        if self.maybe_null && self.ty == RegType::PtrToBtfId {
            // A BTF pointer's name ends in `_`: the kernel's postfix is `or_null_` there.
            format!("{}or_null_", self.ty.name())
        } else if self.maybe_null {
            format!("{}_or_null", self.ty.name())
        } else {
            self.ty.name().to_owned()
        }
    }
}

/// Formats a signed number like the kernel's `verbose_snum`: decimal when small, hex otherwise.
pub fn snum(v: i64) -> String {
    if (-0x8000..=0x7fff).contains(&v) {
        v.to_string()
    } else {
        format!("{:#x}", v as u64)
    }
}

/// Formats an unsigned number like `verbose_unum`.
pub fn unum(v: u64) -> String {
    if v <= 0xffff {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// `print_scalar_ranges`: the range attributes that are not implied, equal values merged.
fn scalar_ranges(s: &Scalar, out: &mut Vec<String>) {
    struct M {
        name: &'static str,
        val: u64,
        signed: bool,
        omit: bool,
    }
    let mut m = [
        M {
            name: "smin",
            val: s.smin_value as u64,
            signed: true,
            omit: s.smin_value == i64::MIN,
        },
        M {
            name: "smax",
            val: s.smax_value as u64,
            signed: true,
            omit: s.smax_value == i64::MAX,
        },
        M {
            name: "umin",
            val: s.umin_value,
            signed: false,
            omit: s.umin_value == 0,
        },
        M {
            name: "umax",
            val: s.umax_value,
            signed: false,
            omit: s.umax_value == u64::MAX,
        },
        M {
            name: "smin32",
            val: s.s32_min_value as i64 as u64,
            signed: true,
            omit: s.s32_min_value == i32::MIN,
        },
        M {
            name: "smax32",
            val: s.s32_max_value as i64 as u64,
            signed: true,
            omit: s.s32_max_value == i32::MAX,
        },
        M {
            name: "umin32",
            val: s.u32_min_value as u64,
            signed: false,
            omit: s.u32_min_value == 0,
        },
        M {
            name: "umax32",
            val: s.u32_max_value as u64,
            signed: false,
            omit: s.u32_max_value == u32::MAX,
        },
    ];
    for i in 0..m.len() {
        if m[i].omit {
            continue;
        }
        let neg1 = m[i].signed && (m[i].val as i64) < 0;
        let mut text = format!("{}=", m[i].name);
        let mut j = i + 2;
        while j < m.len() {
            let neg2 = m[j].signed && (m[j].val as i64) < 0;
            if !m[j].omit && m[j].val == m[i].val && neg1 == neg2 {
                m[j].omit = true;
                let _ = write!(text, "{}=", m[j].name);
            }
            j += 2;
        }
        text.push_str(&if m[i].signed {
            snum(m[i].val as i64)
        } else {
            unum(m[i].val)
        });
        out.push(text);
    }
}

/// Formats a register as the kernel's log does (`print_reg_state`). `map_name` gives
/// `(name, key_size, value_size)` for the register's map.
pub fn fmt_reg(reg: &RegState, map: Option<(&str, u32, u32)>) -> String {
    let t = reg.ty;
    if (t == RegType::Scalar || t == RegType::PtrToStack) && reg.s.is_const() {
        let v = reg.s.var_off.value.wrapping_add(reg.off as i64 as u64) as i64;
        return if t == RegType::Scalar {
            snum(v)
        } else {
            format!("fp{}", snum(v))
        };
    }
    let mut parts = Vec::new();
    if reg.id != 0 {
        parts.push(format!("id={}", reg.id));
    }
    if reg.ref_obj_id != 0 {
        parts.push(format!("ref_obj_id={}", reg.ref_obj_id));
    }
    if t != RegType::Scalar && reg.off != 0 {
        parts.push(format!("off={}", reg.off));
    }
    if t.is_pkt_pointer() {
        parts.push(format!("r={}", reg.range));
    } else if matches!(t, RegType::PtrToMem | RegType::PtrToRingbufMem) {
        parts.push(format!("sz={}", reg.mem_size));
    } else if let (
        RegType::ConstPtrToMap | RegType::PtrToMapKey | RegType::PtrToMapValue,
        Some((name, ks, vs)),
    ) = (t, map)
    {
        if !name.is_empty() {
            parts.push(format!("map={name}"));
        }
        parts.push(format!("ks={ks},vs={vs}"));
    }
    if reg.s.is_const() {
        if reg.s.var_off.value != 0 {
            parts.push(format!("imm={:x}", reg.s.var_off.value));
        }
    } else {
        scalar_ranges(&reg.s, &mut parts);
        if !reg.s.var_off.is_unknown() {
            parts.push(format!("var_off={}", reg.s.var_off));
        }
    }
    format!("{}({})", reg.type_str(), parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_kernel() {
        assert_eq!(fmt_reg(&RegState::known(0), None), "0");
        assert_eq!(
            fmt_reg(&RegState::pointer(RegType::PtrToCtx), None),
            "ctx()"
        );
        let mut fp = RegState::pointer(RegType::PtrToStack);
        fp.off = -4;
        assert_eq!(fmt_reg(&fp, None), "fp-4");
        let mut r = RegState::unknown();
        r.s = Scalar::of_size(4);
        assert_eq!(
            fmt_reg(&r, None),
            "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"
        );
        r.s = Scalar::unsigned_range(0, 10);
        assert_eq!(
            fmt_reg(&r, None),
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))"
        );
        let mut m = RegState::pointer(RegType::PtrToMapValue);
        m.maybe_null = true;
        m.id = 1;
        assert_eq!(
            fmt_reg(&m, Some(("outer", 4, 4))),
            "map_value_or_null(id=1,map=outer,ks=4,vs=4)"
        );
        assert_eq!(fmt_reg(&RegState::unknown(), None), "scalar()");
    }
}

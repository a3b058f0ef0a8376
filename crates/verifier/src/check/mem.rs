//! Loads, stores and atomics (`check_mem_access`): the context, packets, map values, the
//! stack (spills, fills, uninitialised reads), memory regions, alignment.

use super::*;

/// `sizeof(struct bpf_flow_keys)`.
const SIZEOF_BPF_FLOW_KEYS: u32 = 56;

impl Checker<'_> {
    // ---------------------------------------------------------------- memory

    /// `check_mem_access`. For loads returns the loaded value (None → unknown scalar).
    /// `value` for stores: the stored register and whether it came from a register.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_mem_access(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        regno: u8,
        reg: RegState,
        insn_off: i32,
        size: Size,
        write: bool,
        value: Option<(RegState, bool)>,
        ldsx: bool,
    ) -> R<Option<RegState>> {
        // save_aux_ptr_type, after a successful access: one instruction may not access the
        // context on one path and another pointer type on another (the context access is
        // rewritten, the other would then read the wrong memory).
        let prev = self.aux[idx].ptr_type;
        let ty = reg.ty;
        let v =
            self.check_mem_access_at(st, idx, regno, reg, insn_off, size, write, value, ldsx)?;
        if let Some(p) = prev
            && p != ty
            && (sock::converted_access(p) || sock::converted_access(ty))
        {
            return rej("same insn cannot be used with different pointers");
        }
        Ok(v)
    }

    /// The access itself (`check_mem_access` without the instruction-wide type check).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_mem_access_at(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        regno: u8,
        reg: RegState,
        insn_off: i32,
        size: Size,
        write: bool,
        value: Option<(RegState, bool)>,
        ldsx: bool,
    ) -> R<Option<RegState>> {
        let sz = size.bytes() as i32;
        if reg.maybe_null {
            return rej_hint(
                format!("R{regno} invalid mem access '{}'", reg.type_str()),
                "add a NULL check on the value returned by bpf_map_lookup_elem before dereferencing it",
            );
        }
        if self.opts.strict_alignment {
            // check_ptr_alignment with env->strict_alignment (the stack is always strict).
            match reg.ty {
                RegType::PtrToPacket | RegType::PtrToPacketMeta => {
                    check_strict_alignment_at("packet ", "2+", 2, &reg, insn_off, sz)?
                }
                RegType::PtrToMapValue => check_strict_alignment("value ", &reg, insn_off, sz)?,
                RegType::PtrToMapKey => check_strict_alignment("key ", &reg, insn_off, sz)?,
                RegType::PtrToCtx => check_strict_alignment("context ", &reg, insn_off, sz)?,
                _ => {}
            }
        }
        let off = insn_off + reg.off;
        self.aux[idx].ptr_type = Some(reg.ty);
        match reg.ty {
            RegType::PtrToMapValue | RegType::PtrToMapKey => {
                let d = &self.maps[reg.map as usize].desc;
                let (mem, key) = if reg.ty == RegType::PtrToMapKey {
                    (d.key_size, true)
                } else {
                    (d.value_size, false)
                };
                let frozen = if write || key {
                    None
                } else {
                    d.frozen_value.clone()
                };
                if !key {
                    check_map_access_type(d, off, sz, write)?;
                }
                self.check_mem_region(regno, &reg, off, sz, mem, key)?;
                if !key {
                    self.check_special_fields(&reg, off, sz)?;
                }
                if reg.s.is_const()
                    && let Some(bytes) = &frozen
                {
                    let at = off as i64 + reg.s.var_off.value as i64;
                    if let Ok(at) = usize::try_from(at)
                        && let Some(b) = bytes.get(at..at + sz as usize)
                    {
                        let mut v = [0u8; 8];
                        v[..b.len()].copy_from_slice(b);
                        return Ok(Some(RegState::known(u64::from_le_bytes(v))));
                    }
                }
                Ok(None)
            }
            RegType::PtrToCtx => {
                if reg.off != 0 || !reg.s.is_const() || reg.s.var_off.value != 0 {
                    if !reg.s.is_const() {
                        return rej(format!(
                            "variable ctx access var_off={} disallowed",
                            reg.s.var_off
                        ));
                    }
                    // __check_ptr_off_reg: a negative offset is named as such first.
                    let off = reg.off as i64 + reg.s.var_off.value as i64;
                    let what = if off < 0 {
                        "negative offset"
                    } else {
                        "dereference of modified"
                    };
                    return rej(format!("{what} ctx ptr R{regno} off={off} disallowed"));
                }
                // A sign-extending load of a field that is a pointer (data, data_end,
                // data_meta) is no valid access (`info->is_ldsx` in the is_valid_access ops).
                let attach = self.opts.expected_attach_type;
                let valid = check_ctx_access_for(self.prog, attach, insn_off, sz as u32, write)
                    .filter(|l| !ldsx || l.reg_type == RegType::Scalar);
                match valid {
                    Some(load) => {
                        self.aux[idx].ctx = Some(CtxAccess {
                            field: load.field,
                            off: insn_off as u32,
                            size: sz as u32,
                            write,
                        });
                        if write {
                            if let Some((v, _)) = value
                                && v.is_pointer()
                                && !self.opts.allow_ptr_leaks
                            {
                                return rej(format!("R{regno} leaks addr into ctx"));
                            }
                            return Ok(None);
                        }
                        Ok(Some(match load.reg_type {
                            RegType::Scalar => RegState::unknown(),
                            // A socket: never NULL (sk_reuseport_md->sk), or maybe NULL
                            // (bpf_sock_ops->sk, PTR_TO_SOCKET_OR_NULL).
                            RegType::PtrToSocket => {
                                let mut v = RegState::pointer(RegType::PtrToSocket);
                                if matches!(self.prog, ProgType::SockOps | ProgType::SkLookup) {
                                    v.maybe_null = true;
                                    v.id = self.new_id();
                                }
                                v
                            }
                            // __sk_buff->sk: a socket, or NULL (with an id for the check).
                            RegType::PtrToSockCommon => {
                                let mut v = RegState::pointer(RegType::PtrToSockCommon);
                                v.maybe_null = true;
                                v.id = self.new_id();
                                v
                            }
                            t => RegState::pointer(t),
                        }))
                    }
                    None => rej_hint(
                        format!("invalid bpf_context access off={insn_off} size={sz}"),
                        "this context field does not exist or cannot be accessed this way for the program type (XDP allows 4-byte loads of struct xdp_md fields only)",
                    ),
                }
            }
            RegType::PtrToStack => self.check_stack_access(st, regno, &reg, off, sz, write, value),
            t if t.is_sk_pointer() => self.check_sock_access(regno, &reg, off, sz, write),
            RegType::ConstPtrToMap => self.check_ptr_to_map_access(regno, &reg, off, write),
            RegType::PtrToBtfId => self.check_ptr_to_btf_access(regno, &reg, off, write),
            RegType::PtrToFlowKeys => {
                // check_flow_keys_access: inside struct bpf_flow_keys; a store of a pointer
                // leaks it.
                if write
                    && let Some((v, true)) = value
                    && v.is_pointer()
                    && !self.opts.allow_ptr_leaks
                {
                    let src = self.insns[idx].src();
                    return rej(format!("R{src} leaks addr into flow keys"));
                }
                if off < 0 || off as u32 + sz as u32 > SIZEOF_BPF_FLOW_KEYS {
                    return rej(format!("invalid access to flow keys off={off} size={sz}"));
                }
                Ok(if write {
                    None
                } else {
                    Some(RegState::unknown())
                })
            }
            RegType::PtrToTpBuffer => {
                // check_tp_buffer_access: any size at a constant offset from the buffer's
                // start (the kernel checks the largest against the tracepoint on attach).
                if off < 0 {
                    return rej(format!(
                        "R{regno} invalid tracepoint buffer access: off={off}, size={sz}"
                    ));
                }
                if !reg.s.is_const() || reg.s.var_off.value != 0 {
                    return rej(format!(
                        "R{regno} invalid variable buffer offset: off={off}, var_off={}",
                        reg.s.var_off
                    ));
                }
                Ok(if write {
                    None
                } else {
                    Some(RegState::unknown())
                })
            }
            RegType::PtrToMem | RegType::PtrToRingbufMem => {
                self.check_mem_region(regno, &reg, off, sz, reg.mem_size, false)?;
                Ok(if write {
                    None
                } else {
                    Some(RegState::unknown())
                })
            }
            RegType::PtrToPacket | RegType::PtrToPacketMeta => {
                if self.prog == ProgType::SocketFilter {
                    return rej(format!("R{regno} invalid mem access '{}'", reg.type_str()));
                }
                if write && self.prog.direct_packet_access() == Some(false) {
                    return rej("cannot write into packet");
                }
                // may_access_direct_pkt_data(env, NULL, BPF_WRITE).
                self.seen_direct_write |= write;
                if write
                    && let Some((v, _)) = value
                    && v.is_pointer()
                    && !self.opts.allow_ptr_leaks
                {
                    return rej(format!("R{regno} leaks addr into packet"));
                }
                self.check_packet_access(regno, &reg, off, sz)?;
                Ok(None)
            }
            _ => rej_hint(
                format!("R{regno} invalid mem access '{}'", reg.type_str()),
                "only pointers to the stack, the context, map values or the packet can be dereferenced",
            ),
        }
    }

    /// `__check_mem_access` message for a failed access.
    pub(super) fn mem_access_msg(
        &self,
        regno: u8,
        reg: &RegState,
        off: i64,
        size: i32,
        mem: u32,
    ) -> String {
        match reg.ty {
            RegType::PtrToMapKey => {
                format!("invalid access to map key, key_size={mem} off={off} size={size}")
            }
            RegType::PtrToMapValue => {
                format!("invalid access to map value, value_size={mem} off={off} size={size}")
            }
            RegType::PtrToPacket | RegType::PtrToPacketMeta | RegType::PtrToPacketEnd => format!(
                "invalid access to packet, off={off} size={size}, R{regno}(id={},off={off},r={mem})",
                reg.id
            ),
            _ => format!("invalid access to memory, mem_size={mem} off={off} size={size}"),
        }
    }

    pub(super) fn mem_ok(off: i64, size: i32, mem: u32) -> bool {
        off >= 0 && size > 0 && off + size as i64 <= mem as i64
    }

    /// `check_mem_region_access` for map values and keys.
    pub(super) fn check_mem_region(
        &mut self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
        mem: u32,
        _key: bool,
    ) -> R<()> {
        let smin = reg.s.smin_value;
        if smin < 0
            && (smin == i64::MIN
                || (off as i64 + smin) != (off as i64 + smin) as i32 as i64
                || smin + (off as i64) < 0)
        {
            return rej_hint(
                format!(
                    "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                ),
                "the index may be negative; use an unsigned type or check index >= 0",
            );
        }
        let lo = smin + off as i64;
        if !Self::mem_ok(lo, size, mem) {
            let m = self.mem_access_msg(regno, reg, lo, size, mem);
            self.verbose(&format!("{m}\n"));
            return rej_hint(
                format!("R{regno} min value is outside of the allowed memory range"),
                "the access is outside the map value; check the offset and size against the value type",
            );
        }
        if reg.s.umax_value >= BPF_MAX_VAR_OFF {
            return rej_hint(
                format!(
                    "R{regno} unbounded memory access, make sure to bounds check any such access"
                ),
                "bound the index with a comparison (if (i < N)) before using it as an offset",
            );
        }
        let hi = reg.s.umax_value as i64 + off as i64;
        if !Self::mem_ok(hi, size, mem) {
            let m = self.mem_access_msg(regno, reg, hi, size, mem);
            self.verbose(&format!("{m}\n"));
            return rej_hint(
                format!("R{regno} max value is outside of the allowed memory range"),
                "the largest possible index reaches past the end of the map value; tighten the bounds check",
            );
        }
        Ok(())
    }

    /// `check_packet_access`.
    pub(super) fn check_packet_access(
        &mut self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
    ) -> R<()> {
        if reg.s.smin_value < 0 {
            return rej(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ));
        }
        if reg.range < 0 || !Self::mem_ok(off as i64, size, reg.range as u32) {
            let m = self.mem_access_msg(regno, reg, off as i64, size, reg.range.max(0) as u32);
            self.verbose(&format!("{m}\n"));
            return rej_hint(
                format!("R{regno} offset is outside of the packet"),
                "compare data + offset + size against data_end before the access (if (data + N > data_end) return XDP_DROP;)",
            );
        }
        Ok(())
    }

    /// Stack loads and stores at a constant offset (`check_stack_{read,write}_fixed_off`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_stack_access(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: i32,
        write: bool,
        value: Option<(RegState, bool)>,
    ) -> R<Option<RegState>> {
        if !reg.s.is_const() {
            return self.check_stack_access_var(st, regno, reg, off, size, write, value);
        }
        let off = off as i64 + reg.s.var_off.value as i64;
        // Stack accesses must be naturally aligned (check_ptr_alignment, strict for stack).
        if off.rem_euclid(size as i64) != 0 {
            let var = if reg.s.is_const() {
                (reg.s.var_off.value as i64).to_string()
            } else {
                reg.s.var_off.to_string()
            };
            return rej(format!(
                "misaligned stack access off {}+{}+{} size {}",
                var,
                reg.off,
                off - reg.off as i64,
                size
            ));
        }
        if off < -(MAX_BPF_STACK as i64) || off + size as i64 > 0 {
            return rej_hint(
                format!(
                    "invalid {} stack R{regno} off={off} size={size}",
                    if write { "write to" } else { "read from" }
                ),
                "the access is outside the 512-byte stack frame",
            );
        }
        let off = off as i32;
        let frameno = reg.frameno as usize;
        if write
            && let Some((v, _)) = value
            && v.ty == RegType::PtrToStack
            && (v.frameno as usize) > frameno
        {
            return rej("cannot spill pointers to stack into stack frame of the caller");
        }
        let Some(frame) = st.frames.get_mut(frameno) else {
            return rej(format!(
                "R{regno} points to the stack of a returned function"
            ));
        };
        let spi = frame.grow_to(off);
        self.fastcall_stack_contract(frame.subprog, off as i64);
        if spi < 64 {
            self.scratched_stack |= 1 << spi;
        }
        if !write {
            // A read grows the frame's stack depth too (grow_stack_state in
            // check_stack_access_within_bounds): the JIT zeroes that much, so a privileged
            // read of an uninitialised slot sees 0 on every engine.
            let s = &mut self.subprog_stack[frame.subprog];
            *s = (*s).max(frame.stack_depth());
        }
        let first = ((-off - 1) as usize) % BPF_REG_SIZE; // types[] index of the lowest byte
        if write {
            let (v, from_reg) = value.unwrap_or((RegState::unknown(), false));
            let slot = &mut frame.stack[spi];
            let aligned = off % BPF_REG_SIZE as i32 == 0;
            if aligned && v.ty == RegType::Scalar {
                // Spill a scalar (any size), keeping its value.
                save_register_state(slot, v, size as usize);
                if !from_reg && size as usize != BPF_REG_SIZE {
                    // `*(u32 *)(r10 -8) = imm`: as the kernel, a spill of a known constant.
                }
            } else if v.is_pointer() {
                if size as usize != BPF_REG_SIZE {
                    return rej("invalid size of register spill");
                }
                save_register_state(slot, v, BPF_REG_SIZE);
            } else {
                // Plain data: destroys a spill in this slot.
                if slot.is_spill() {
                    for t in slot.types.iter_mut() {
                        if *t == SlotType::Spill {
                            *t = SlotType::Misc;
                        }
                    }
                    slot.spilled = RegState::NOT_INIT;
                }
                let zero = v.ty == RegType::Scalar && v.s.is_const() && v.s.var_off.value == 0;
                let t = if zero { SlotType::Zero } else { SlotType::Misc };
                for i in 0..size as usize {
                    slot.types[first - i] = t;
                }
            }
            let _ = from_reg;
            return self.check_stack_depth(st).map(|_| None);
        }
        // Read.
        let slot = frame.stack[spi];
        if slot.is_spill() {
            let spill_size = slot.spill_size();
            let sp = slot.spilled;
            if size as usize != BPF_REG_SIZE || spill_size != BPF_REG_SIZE {
                if sp.ty != RegType::Scalar {
                    return rej("invalid size of register fill");
                }
                if size as usize <= spill_size && off % BPF_REG_SIZE as i32 == 0 {
                    let mut v = sp;
                    if sp.s.umax_value > (u64::MAX >> (64 - 8 * size as u32).min(63)) {
                        v.id = 0;
                    }
                    return Ok(Some(v));
                }
                let mut spill_cnt = 0;
                let mut zero_cnt = 0;
                for i in 0..size as usize {
                    match slot.types[first - i] {
                        SlotType::Spill => spill_cnt += 1,
                        SlotType::Zero => zero_cnt += 1,
                        SlotType::Misc => {}
                        SlotType::Invalid => self.uninit_read(off, i, size)?,
                    }
                }
                if (spill_cnt == size && sp.s.is_const() && sp.s.var_off.value == 0)
                    || zero_cnt == size
                {
                    return Ok(Some(RegState::known(0)));
                }
                return Ok(None);
            }
            return Ok(Some(sp));
        }
        let mut zero = true;
        for i in 0..size as usize {
            match slot.types[first - i] {
                SlotType::Zero => {}
                SlotType::Misc | SlotType::Spill => zero = false,
                SlotType::Invalid => {
                    self.uninit_read(off, i, size)?;
                    zero = false;
                }
            }
        }
        Ok(Some(if zero {
            RegState::known(0)
        } else {
            RegState::unknown()
        }))
    }

    /// A scalar spilled to an 8-byte-aligned stack slot is linked to its source register
    /// (check_stack_write_fixed_off: `assign_scalar_id_before_mov` when the value fits the
    /// spill, so a fill and a later bound on either refine both); a narrowing spill breaks
    /// the relation (the spilled copy loses its id).
    pub(super) fn link_spilled_scalar(
        &mut self,
        st: &mut VerifierState,
        src: u8,
        v: &mut RegState,
        dst: u8,
        off: i16,
        size: Size,
    ) -> R<()> {
        let base = self.read_reg(st, dst)?;
        if v.ty != RegType::Scalar || base.ty != RegType::PtrToStack || !base.s.is_const() {
            return Ok(());
        }
        let at = off as i64 + base.off as i64 + base.s.var_off.value as i64;
        if at.rem_euclid(BPF_REG_SIZE as i64) != 0 {
            return Ok(());
        }
        // get_reg_width: the bits the value needs.
        let width = 64 - v.s.umax_value.leading_zeros();
        if width <= 8 * size.bytes() as u32 {
            *v = self.assign_scalar_id_before_mov(st, src);
        } else {
            v.id = 0;
            v.off = 0;
        }
        Ok(())
    }

    pub(super) fn uninit_read(&self, off: i32, i: usize, size: i32) -> R<()> {
        if self.opts.allow_uninit_stack {
            return Ok(());
        }
        rej_hint(
            format!("invalid read from stack off {off}+{i} size {size}"),
            "the stack slot is read before it is written; initialise the variable",
        )
    }

    /// Atomic read-modify-write (`check_atomic`): only on the stack and map values.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_atomic(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        size: Size,
        op: AtomicOp,
        dst: u8,
        src: u8,
        off: i16,
    ) -> R<()> {
        if matches!(op, AtomicOp::LoadAcquire) {
            let base = self.read_reg(st, src)?;
            self.check_dst(dst)?;
            let v =
                self.check_mem_access(st, idx, src, base, off as i32, size, false, None, false)?;
            let mut v = v.unwrap_or_else(RegState::unknown);
            if v.ty == RegType::Scalar {
                v.s.coerce_to_size(size.bytes() as u8);
            }
            self.set_reg(st, dst, v);
            return Ok(());
        }
        let val = self.read_reg(st, src)?;
        let base = self.read_reg(st, dst)?;
        if matches!(op, AtomicOp::StoreRelease) {
            self.check_mem_access(
                st,
                idx,
                dst,
                base,
                off as i32,
                size,
                true,
                Some((val, true)),
                false,
            )?;
            return Ok(());
        }
        if op == AtomicOp::Cmpxchg {
            self.read_reg(st, 0)?;
        }
        if val.is_pointer() && !self.opts.allow_ptr_leaks {
            return rej(format!("R{src} leaks addr into mem"));
        }
        // check_atomic_rmw refuses these up front; anything else goes through the two
        // memory checks, which refuse it there (a scalar, a map_value_or_null, ...).
        if matches!(
            base.ty,
            RegType::PtrToCtx
                | RegType::PtrToPacket
                | RegType::PtrToPacketMeta
                | RegType::PtrToPacketEnd
                | RegType::PtrToFlowKeys
        ) {
            return rej(format!(
                "BPF_ATOMIC stores into R{dst} {} is not allowed",
                base.type_str()
            ));
        }
        let fetch = match op {
            AtomicOp::Add { fetch }
            | AtomicOp::Or { fetch }
            | AtomicOp::And { fetch }
            | AtomicOp::Xor { fetch } => fetch,
            _ => true,
        };
        let sz = size.bytes() as i32;
        // Read the location (strictly aligned: strict_alignment_once); a fetch puts the old
        // value in its register right away, so when that register is also the base (r0 of a
        // cmpxchg), the write below goes through the loaded value, as in the kernel.
        atomic_alignment(&base, off as i32, sz)?;
        let old =
            self.check_mem_access(st, idx, dst, base, off as i32, size, false, None, false)?;
        if fetch {
            let r = if op == AtomicOp::Cmpxchg { 0 } else { src };
            self.check_dst(r)?;
            // The kernel knows a fetched constant (a spilled one on the stack); any other
            // fetched scalar is a full 64-bit unknown there, whatever the access size (seen
            // on the live kernel: a 32-bit cmpxchg leaves r0 as (0x0; 0xffffffffffffffff)).
            let mut v = old.unwrap_or_else(RegState::unknown);
            if v.ty == RegType::Scalar {
                if v.s.is_const() {
                    if sz < 8 {
                        v.s.coerce_to_size(sz as u8);
                    }
                } else {
                    v = RegState::unknown();
                }
            }
            self.set_reg(st, r, v);
        }
        let base = self.read_reg(st, dst)?;
        atomic_alignment(&base, off as i32, sz)?;
        self.check_mem_access(
            st,
            idx,
            dst,
            base,
            off as i32,
            size,
            true,
            Some((RegState::unknown(), true)),
            false,
        )?;
        Ok(())
    }
}

/// `save_register_state`: spill `v` into the top `size` bytes of the slot.
pub(super) fn save_register_state(slot: &mut StackSlot, v: RegState, size: usize) {
    slot.spilled = v;
    for i in (BPF_REG_SIZE - size..BPF_REG_SIZE).rev() {
        slot.types[i] = SlotType::Spill;
    }
    for i in 0..BPF_REG_SIZE - size {
        if slot.types[i] == SlotType::Spill {
            slot.types[i] = SlotType::Misc;
        }
    }
}

/// `check_map_access_type`: a `BPF_F_RDONLY_PROG` map's values may not be written by the
/// program, a `BPF_F_WRONLY_PROG` map's not read (`bpf_map_flags_to_cap`).
pub(super) fn check_map_access_type(d: &MapDesc, off: i32, size: i32, write: bool) -> R<()> {
    let (what, forbidden) = if write {
        ("write into", d.map_flags & BPF_F_RDONLY_PROG != 0)
    } else {
        ("read from", d.map_flags & BPF_F_WRONLY_PROG != 0)
    };
    if forbidden {
        return rej(format!(
            "{what} map forbidden, value_size={} off={off} size={size}",
            d.value_size
        ));
    }
    Ok(())
}

/// `check_generic_ptr_alignment` with `strict`: `reg + off` must be aligned to `size` for every
/// value the variable offset can take.
pub(super) fn check_strict_alignment(desc: &str, reg: &RegState, off: i32, size: i32) -> R<()> {
    check_strict_alignment_at(desc, "", 0, reg, off, size)
}

/// [`check_strict_alignment`] with a bias added first (`check_pkt_ptr_alignment`'s
/// `ip_align` of 2, printed as `prefix`).
pub(super) fn check_strict_alignment_at(
    desc: &str,
    prefix: &str,
    bias: i64,
    reg: &RegState,
    off: i32,
    size: i32,
) -> R<()> {
    if size == 1 {
        return Ok(());
    }
    let at = reg.s.var_off.add(crate::tnum::Tnum::constant(
        (bias + reg.off as i64 + off as i64) as u64,
    ));
    if at.is_aligned(size as u64) {
        return Ok(());
    }
    let var = if reg.s.is_const() {
        (reg.s.var_off.value as i64).to_string()
    } else {
        reg.s.var_off.to_string()
    };
    rej(format!(
        "misaligned {desc}access off {prefix}{var}+{}+{off} size {size}",
        reg.off
    ))
}

/// After a helper wrote `size` bytes of stack at `reg` (`ARG_PTR_TO_UNINIT_MEM`): the bytes
/// hold unknown data (`STACK_MISC`), and a spill they touch is gone, as after the kernel's
/// byte-wise `BPF_WRITE`s of check_helper_call.
pub(super) fn mark_stack_written(st: &mut VerifierState, reg: &RegState, size: u64) {
    let Some(frame) = st.frames.get_mut(reg.frameno as usize) else {
        return;
    };
    let off = reg.off as i64 + reg.s.var_off.value as i64;
    for b in 0..size as i64 {
        let a = off + b;
        if a >= 0 {
            break;
        }
        let spi = ((-a - 1) / BPF_REG_SIZE as i64) as usize;
        let ti = ((-a - 1) % BPF_REG_SIZE as i64) as usize;
        frame.grow_to(a as i32);
        let slot = &mut frame.stack[spi];
        if slot.is_spill() {
            for t in slot.types.iter_mut() {
                if *t == SlotType::Spill {
                    *t = SlotType::Misc;
                }
            }
            slot.spilled = RegState::NOT_INIT;
        }
        slot.types[ti] = SlotType::Misc;
    }
}

/// `check_ptr_alignment` of an atomic access (always strict). The stack's own access check
/// aligns it already.
pub(super) fn atomic_alignment(base: &RegState, off: i32, size: i32) -> R<()> {
    let desc = match base.ty {
        RegType::PtrToStack => return Ok(()),
        RegType::PtrToMapValue => "value ",
        RegType::PtrToMapKey => "key ",
        RegType::PtrToCtx => "context ",
        _ => "",
    };
    check_strict_alignment(desc, base, off, size)
}

//! Helper calls (`check_helper_call`): each argument against the prototype, the map and
//! memory arguments, the return value's type, and what the call clobbers.

use super::*;

impl Checker<'_> {
    // ---------------------------------------------------------------- helpers

    pub(super) fn check_helper_call(
        &mut self,
        st: &mut VerifierState,
        idx: usize,
        id: i32,
    ) -> R<()> {
        if st.lock.is_some() && id != 94 {
            return rej("function calls are not allowed while holding a lock");
        }
        // Helper ids past this kernel's `__BPF_FUNC_MAX_ID` do not exist there.
        let known_here = id >= 0 && (id as u32) < self.opts.kernel.helper_count;
        let proto = if known_here {
            func_proto(self.prog, id)
        } else {
            None
        };
        let Some(proto) = proto else {
            return rej_hint(
                if known_here && helpers::func_exists(id) {
                    format!(
                        "program of this type cannot use helper {}#{id}",
                        helper_str(id)
                    )
                } else {
                    format!("invalid func unknown#{id}")
                },
                "this helper is not available to the program type (or not supported by kbpf yet)",
            );
        };
        if !self.opts.gpl_compatible && helpers::gpl_only(id) {
            return super::rej_errno(
                "cannot call GPL-restricted function from non-GPL compatible program",
                crate::EINVAL,
            );
        }
        let mut map: Option<u32> = None;
        let mut const_key: Option<u64> = None;
        // ARG_PTR_TO_UNINIT_MEM: the size argument's maximum, and the stack it fills.
        let mut size_max: Option<u64> = None;
        let mut raw_stack: Option<(RegState, u64)> = None;
        // The reference an argument holds (`meta.ref_obj_id`) and the one to release.
        let mut meta_ref: u32 = 0;
        let mut release: Option<u32> = None;
        let args = proto.args;
        for (i, &arg) in args.iter().enumerate() {
            let regno = (i + 1) as u8;
            if arg == ArgType::DontCare {
                continue;
            }
            let reg = self.read_reg(st, regno)?;
            // may_access_direct_pkt_data with the helper's `.pkt_access`.
            if arg != ArgType::Anything
                && reg.ty.is_pkt_pointer()
                && !(proto.pkt_access && self.prog.direct_packet_access().is_some())
            {
                return rej("helper access to the packet is not allowed");
            }
            if reg.ref_obj_id != 0 {
                meta_ref = reg.ref_obj_id;
            }
            match arg {
                ArgType::DontCare | ArgType::Anything => {}
                ArgType::PtrToSockCommon | ArgType::SockRelease | ArgType::BtfIdSockCommon => {
                    if reg.maybe_null || !reg.ty.is_sk_pointer() {
                        return rej(format!(
                            "R{regno} type={} expected=sock_common, sock, tcp_sock, xdp_sock{}",
                            reg.type_str(),
                            if arg == ArgType::PtrToSockCommon {
                                ""
                            } else {
                                ", ptr_, trusted_ptr_"
                            }
                        ));
                    }
                    if arg == ArgType::SockRelease {
                        if reg.ref_obj_id == 0 {
                            return rej(format!(
                                "R{regno} must be referenced when passed to release function"
                            ));
                        }
                        release = Some(reg.ref_obj_id);
                    }
                }
                ArgType::ConstMapPtr => {
                    if reg.ty != RegType::ConstPtrToMap || reg.maybe_null {
                        return rej_hint(
                            format!("R{regno} type={} expected=map_ptr", reg.type_str()),
                            "pass the map itself (&my_map) or, for map-in-map, the inner map pointer after its NULL check",
                        );
                    }
                    map = Some(reg.map);
                }
                ArgType::PtrToCtx | ArgType::PtrToCtxOrNull => {
                    let null =
                        reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                    if arg == ArgType::PtrToCtxOrNull && null {
                        continue;
                    }
                    if reg.ty != RegType::PtrToCtx {
                        return rej(format!("R{regno} type={} expected=ctx", reg.type_str()));
                    }
                    if let Err(m) = global::check_ptr_off_reg(&reg, regno, "ctx") {
                        return rej(m);
                    }
                }
                ArgType::SpinLock => self.process_spin_lock(st, regno, &reg, id == 93)?,
                ArgType::ConstAllocSizeOrZero => {
                    if reg.ty != RegType::Scalar || !reg.s.is_const() {
                        return rej(format!("R{regno} is not a known constant'"));
                    }
                    size_max = Some(reg.s.var_off.value);
                }
                ArgType::PtrToFunc => {
                    if reg.ty != RegType::PtrToFunc {
                        return rej(format!("R{regno} type={} expected=func", reg.type_str()));
                    }
                }
                ArgType::PtrToStackOrNull => {
                    let null =
                        reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                    if !null && reg.ty != RegType::PtrToStack {
                        return rej(format!("R{regno} type={} expected=fp", reg.type_str()));
                    }
                }
                ArgType::RingbufMemRelease => {
                    if reg.ty != RegType::PtrToRingbufMem || reg.maybe_null {
                        return rej(format!(
                            "R{regno} type={} expected=ringbuf_mem",
                            reg.type_str()
                        ));
                    }
                    if reg.off != 0 || !reg.s.is_const() || reg.s.var_off.value != 0 {
                        return rej(format!(
                            "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                        ));
                    }
                    if reg.ref_obj_id == 0 {
                        return rej(format!(
                            "R{regno} must be referenced when passed to release function"
                        ));
                    }
                    release = Some(reg.ref_obj_id);
                }
                ArgType::PtrToMapValueOrNull
                    if reg.ty == RegType::Scalar
                        && reg.s.is_const()
                        && reg.s.var_off.value == 0 => {}
                // resolve_map_arg_type: a socket map's value is a socket.
                ArgType::PtrToMapValue
                    if map.is_some_and(|m| {
                        matches!(self.maps[m as usize].desc.map_type, SOCKMAP | SOCKHASH)
                    }) =>
                {
                    if reg.maybe_null || !reg.ty.is_sk_pointer() {
                        return rej(format!(
                            "R{regno} type={} expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_",
                            reg.type_str()
                        ));
                    }
                }
                ArgType::PtrToMapKey | ArgType::PtrToMapValue | ArgType::PtrToMapValueOrNull => {
                    let Some(m) = map else {
                        return rej(if arg == ArgType::PtrToMapKey {
                            "invalid map_ptr to access map->key"
                        } else {
                            "invalid map_ptr to access map->value"
                        });
                    };
                    let d = &self.maps[m as usize].desc;
                    let size = if arg == ArgType::PtrToMapKey {
                        d.key_size
                    } else {
                        d.value_size
                    };
                    self.check_helper_mem(st, regno, &reg, size as i32, false)?;
                    if arg == ArgType::PtrToMapKey && reg.ty == RegType::PtrToStack {
                        const_key = constant_map_key(st, &reg, size);
                    }
                }
                ArgType::PtrToMemReadonly | ArgType::PtrToMemReadonlyOrNull => {
                    let next = args.get(i + 1).copied();
                    let size_reg = self.read_reg(st, regno + 1)?;
                    let zero_ok = next == Some(ArgType::ConstSizeOrZero);
                    let null =
                        reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                    // A NULL skips the type check only: its size must still be able to be 0,
                    // and only a zero-byte read of NULL is allowed (check_helper_mem_access).
                    let null_ok = arg == ArgType::PtrToMemReadonlyOrNull && null;
                    if !null_ok {
                        check_mem_arg_type(regno, &reg)?;
                    }
                    self.check_mem_size(st, regno, &reg, &size_reg, zero_ok, null_ok, false)?;
                }
                ArgType::PtrToMemReadWrite => {
                    // Read as initialised memory, then written: checked both ways, and what
                    // the stack held there is unknown afterwards.
                    check_mem_arg_type(regno, &reg)?;
                    let size_reg = self.read_reg(st, regno + 1)?;
                    self.check_mem_size(st, regno, &reg, &size_reg, false, false, false)?;
                    self.check_mem_size(st, regno, &reg, &size_reg, false, false, true)?;
                    if reg.ty == RegType::PtrToStack {
                        if !reg.s.is_const() {
                            return rej(format!(
                                "R{regno} variable-offset stack memory written by a helper is not supported by kbpf"
                            ));
                        }
                        raw_stack = Some((reg, size_reg.s.umax_value));
                    }
                }
                ArgType::PtrToUninitMem => {
                    check_mem_arg_type(regno, &reg)?;
                    let next = args.get(i + 1).copied();
                    let size_reg = self.read_reg(st, regno + 1)?;
                    let zero_ok = next == Some(ArgType::ConstSizeOrZero);
                    self.check_mem_size(st, regno, &reg, &size_reg, zero_ok, false, true)?;
                    size_max = Some(size_reg.s.umax_value);
                    if reg.ty == RegType::PtrToStack {
                        // Marked written after the arguments (the kernel's byte stores for
                        // raw_mode in check_helper_call).
                        raw_stack = Some((reg, size_reg.s.umax_value));
                    }
                }
                ArgType::PtrToLongUninit => {
                    // check_func_arg: the helper's fixed-size write, then MEM_ALIGNED.
                    check_mem_arg_type(regno, &reg)?;
                    self.check_helper_mem(st, regno, &reg, 8, true)?;
                    check_fixed_mem_arg_alignment(&reg, 8)?;
                    if reg.ty == RegType::PtrToStack {
                        raw_stack = Some((reg, 8));
                    }
                }
                ArgType::PtrToU32ReadWrite => {
                    // check_func_arg: the fixed-size write (a read-only map is refused), the
                    // value read first (initialised), then MEM_ALIGNED.
                    check_mem_arg_type(regno, &reg)?;
                    self.check_helper_mem(st, regno, &reg, 4, true)?;
                    self.check_helper_mem(st, regno, &reg, 4, false)?;
                    check_fixed_mem_arg_alignment(&reg, 4)?;
                    if reg.ty == RegType::PtrToStack {
                        if !reg.s.is_const() {
                            return rej(format!(
                                "R{regno} variable-offset stack memory written by a helper is not supported by kbpf"
                            ));
                        }
                        raw_stack = Some((reg, 4));
                    }
                }
                ArgType::ConstSize | ArgType::ConstSizeOrZero => {
                    if reg.ty != RegType::Scalar {
                        return rej(format!("R{regno} type={} expected=scalar", reg.type_str()));
                    }
                }
            }
        }
        // check_map_func_compatibility.
        if let Some(m) = map {
            let mt = self.maps[m as usize].desc.map_type;
            let ok_map = match mt {
                _ if !map_func_compatible(mt, id) => false,
                SOCKMAP | SOCKHASH if id == 3 && self.prog == ProgType::SockOps => true,
                SOCKMAP | SOCKHASH if matches!(id, 2 | 3) => {
                    // may_update_sockmap.
                    let ok = matches!(
                        self.prog,
                        ProgType::SocketFilter
                            | ProgType::SchedCls
                            | ProgType::SchedAct
                            | ProgType::Xdp
                            | ProgType::SkReuseport
                            | ProgType::FlowDissector
                            | ProgType::SkLookup
                    );
                    if !ok {
                        self.verbose("cannot update sockmap in this context\n");
                    }
                    ok
                }
                BPF_MAP_TYPE_PROG_ARRAY => id == helpers::BPF_FUNC_TAIL_CALL,
                BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS => {
                    id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM
                }
                BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH => {
                    id == helpers::BPF_FUNC_REDIRECT_MAP || id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM
                }
                // Ring buffers: only the ring buffer helpers.
                27 => matches!(id, 130 | 131 | 134 | 198..=200),
                BPF_MAP_TYPE_CPUMAP | BPF_MAP_TYPE_XSKMAP => {
                    id == helpers::BPF_FUNC_REDIRECT_MAP
                        || (mt == BPF_MAP_TYPE_XSKMAP && id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM)
                }
                _ => true,
            };
            let ok_func = match id {
                107 | 108 => mt == SK_STORAGE,
                81 => matches!(mt, 19 | 21),
                82 => matches!(mt, REUSEPORT_SOCKARRAY | SOCKMAP | SOCKHASH),
                53 => mt == SOCKMAP,
                70 => mt == SOCKHASH,
                helpers::BPF_FUNC_TAIL_CALL => mt == BPF_MAP_TYPE_PROG_ARRAY,
                // perf_event_read, perf_event_output, perf_event_read_value, skb_output,
                // xdp_output: a PERF_EVENT_ARRAY.
                22 | 25 | 55 | 111 | 121 => mt == 4,
                130 | 131 | 134 | 198..=200 => mt == 27,
                helpers::BPF_FUNC_REDIRECT_MAP => matches!(
                    mt,
                    BPF_MAP_TYPE_DEVMAP
                        | BPF_MAP_TYPE_DEVMAP_HASH
                        | BPF_MAP_TYPE_CPUMAP
                        | BPF_MAP_TYPE_XSKMAP
                ),
                _ => true,
            };
            if id == helpers::BPF_FUNC_TAIL_CALL && !ok_func {
                return rej_hint(
                    "expected prog array map for tail call",
                    "bpf_tail_call needs a BPF_MAP_TYPE_PROG_ARRAY map",
                );
            }
            if !ok_map || !ok_func {
                return rej_hint(
                    format!("cannot pass map_type {mt} into func {}#{id}", proto.name),
                    "this helper does not work on this map type (map-in-map outers only support bpf_map_lookup_elem; update them from user space)",
                );
            }
            // Record which map reached this call site (poisoned if several did).
            let r = self.maps[m as usize].r;
            self.aux[idx].map = merge_map_use(self.aux[idx].map, MapUse::Map(r));
        }
        // record_func_map, after every argument: a read-only map may not be changed through
        // helpers either.
        if let Some(m) = map
            && self.maps[m as usize].desc.map_flags & BPF_F_RDONLY_PROG != 0
            && matches!(id, 2 | 3 | 87 | 88)
        {
            return rej("write into map forbidden");
        }
        if let Some((reg, size)) = raw_stack
            && reg.s.is_const()
        {
            mark_stack_written(st, &reg, size);
        }
        if id == helpers::BPF_FUNC_TAIL_CALL {
            self.check_reference_leak(st, "tail_call")?;
        }
        if id == 81 {
            // get_local_storage() cannot fail, so it has no flags.
            let flags = st.cur().regs[2];
            if !(flags.ty == RegType::Scalar && flags.s.is_const() && flags.s.var_off.value == 0) {
                return rej("get_local_storage() doesn't support non-zero flags");
            }
        }
        if let Some(r) = release {
            self.release_reference(st, r, proto.name, id)?;
        }
        self.aux[idx].helper = Some(id);
        // Clobber caller-saved registers and set r0.
        for r in 1..=5 {
            self.scratched_regs |= 1 << r;
            self.set_reg(st, r, RegState::NOT_INIT);
        }
        self.scratched_regs |= 1;
        let r0 = match proto.ret {
            // do_refine_retval_range: the CPU number is below nr_cpu_ids.
            RetType::Integer if id == 8 && self.opts.nr_cpu_ids.is_some_and(|n| n > 0) => {
                let max = self.opts.nr_cpu_ids.unwrap_or(1) as i64 - 1;
                let mut v = RegState::unknown();
                v.s.umin_value = 0;
                v.s.u32_min_value = 0;
                v.s.smin_value = 0;
                v.s.s32_min_value = 0;
                v.s.umax_value = max as u64;
                v.s.u32_max_value = max as u32;
                v.s.smax_value = max;
                v.s.s32_max_value = max as i32;
                v.s.sync();
                v
            }
            RetType::Integer => RegState::unknown(),
            RetType::IntegerUpToSize => {
                // do_refine_retval_range: a negative errno, or at most the size asked for.
                let mut v = RegState::unknown();
                let max = size_max.unwrap_or(0).min(i32::MAX as u64) as i64;
                v.s.smax_value = max;
                v.s.s32_max_value = max as i32;
                v.s.smin_value = -MAX_ERRNO;
                v.s.s32_min_value = -MAX_ERRNO as i32;
                v.s.sync();
                v
            }
            RetType::Void => RegState::NOT_INIT,
            RetType::RingbufMemOrNull => {
                let mut v = RegState::pointer(RegType::PtrToRingbufMem);
                v.mem_size = size_max.unwrap_or(0).min(u32::MAX as u64) as u32;
                v.maybe_null = true;
                let r = self.acquire_reference(st, idx);
                v.id = r;
                v.ref_obj_id = r;
                v
            }
            RetType::PtrToSocketOrNull
            | RetType::PtrToSockCommonOrNull
            | RetType::PtrToTcpSockOrNull => {
                let mut v = RegState::pointer(match proto.ret {
                    RetType::PtrToSocketOrNull => RegType::PtrToSocket,
                    RetType::PtrToSockCommonOrNull => RegType::PtrToSockCommon,
                    _ => RegType::PtrToTcpSock,
                });
                v.maybe_null = true;
                v.id = self.new_id();
                if matches!(id, 95 | 96) {
                    // is_ptr_cast_function: the result holds the argument's reference.
                    v.ref_obj_id = meta_ref;
                } else if matches!(id, 84 | 85 | 99) {
                    // is_acquire_function.
                    let r = self.acquire_reference(st, idx);
                    v.id = r;
                    v.ref_obj_id = r;
                }
                v
            }
            RetType::PtrToBtfIdOrNull => {
                // The bpf_skc_to_* casts (is_ptr_cast_function): the argument's reference.
                let mut v = RegState::pointer(RegType::PtrToBtfId);
                v.maybe_null = true;
                v.id = self.new_id();
                v.ref_obj_id = meta_ref;
                v
            }
            RetType::PtrToMapValue => {
                let mut v = RegState::pointer(RegType::PtrToMapValue);
                v.map = map.unwrap_or(NO_MAP);
                v
            }
            RetType::PtrToMapValueOrNull => {
                let m = map.unwrap_or(NO_MAP);
                let d = &self.maps[m as usize].desc;
                let elide = matches!(d.map_type, BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY)
                    && d.map_flags & BPF_F_INNER_MAP == 0
                    && const_key.is_some_and(|k| k < d.max_entries as u64);
                let inner = self.maps.get(m as usize).and_then(|s| s.inner);
                let mut v = match inner {
                    // Newer verifiers type an outer map-in-map lookup as the inner map
                    // pointer straight away (`map_ptr_or_null`); older ones as a map value
                    // that becomes `map_ptr` at the NULL check (mark_ptr_or_null_reg).
                    Some(inner) if self.opts.kernel.inner_map_lookup == InnerMapLookup::MapPtr => {
                        let mut v = RegState::pointer(RegType::ConstPtrToMap);
                        v.map = inner;
                        v
                    }
                    _ => {
                        let mut v = RegState::pointer(RegType::PtrToMapValue);
                        v.map = m;
                        v
                    }
                };
                if !elide {
                    v.maybe_null = true;
                    v.id = self.new_id();
                } else if d.spin_lock_off.is_some() {
                    v.id = self.new_id();
                }
                // A lookup in a socket map gives a socket straight away (the kernel this
                // follows types it `sock_or_null`/`xdp_sock_or_null`, not a map value).
                let mt = self.maps[m as usize].desc.map_type;
                if id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM
                    && matches!(mt, SOCKMAP | SOCKHASH | XSKMAP)
                {
                    v.ty = if mt == XSKMAP {
                        RegType::PtrToXdpSock
                    } else {
                        RegType::PtrToSocket
                    };
                }
                // A socket from a sockmap/sockhash lookup is referenced (is_acquire_function).
                if id == helpers::BPF_FUNC_MAP_LOOKUP_ELEM && matches!(mt, SOCKMAP | SOCKHASH) {
                    let r = self.acquire_reference(st, idx);
                    v.id = r;
                    v.ref_obj_id = r;
                }
                v
            }
        };
        self.set_reg(st, 0, r0);
        if proto.changes_pkt_data {
            // `clear_all_pkt_pointers`.
            st.for_each_reg(|r| {
                if matches!(
                    r.ty,
                    RegType::PtrToPacket | RegType::PtrToPacketMeta | RegType::PtrToPacketEnd
                ) {
                    *r = RegState::unknown();
                }
            });
        }
        Ok(())
    }

    /// `check_mem_size_reg` + `check_helper_mem_access` for a (pointer, size) pair.
    #[allow(clippy::too_many_arguments)] // the kernel's argument list: (pointer, size) and how they were reached
    pub(super) fn check_mem_size(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        size: &RegState,
        zero_ok: bool,
        null_ok: bool,
        write: bool,
    ) -> R<()> {
        let sno = regno + 1;
        if size.ty != RegType::Scalar {
            return rej(format!("R{sno} type={} expected=scalar", size.type_str()));
        }
        if size.s.smin_value < 0 {
            return rej(format!(
                "R{sno} min value is negative, either use unsigned or 'var &= const'"
            ));
        }
        if size.s.umin_value == 0 && !zero_ok {
            return rej(format!(
                "R{sno} invalid zero-sized read: u64=[{},{}]",
                size.s.umin_value as i64, size.s.umax_value as i64
            ));
        }
        if size.s.umax_value >= BPF_MAX_VAR_OFF {
            return rej(format!(
                "R{sno} unbounded memory access, use 'var &= const' or 'if (var < const)'"
            ));
        }
        if size.s.umax_value == 0 {
            // A zero-sized access still needs a pointer inside its object: kbpf has no
            // variable-offset stack accesses, so such a pointer is refused here as for any
            // other size (the kernel checks its whole range).
            if reg.ty == RegType::PtrToStack {
                if !reg.s.is_const() {
                    return self.check_helper_stack_var(st, regno, reg, 0, write);
                }
                // check_stack_slot_within_bounds: even a zero-sized access must start inside
                // the frame (fp-512 .. fp-1).
                let off = reg.off as i64 + reg.s.var_off.value as i64;
                if off >= 0 || off < -(MAX_BPF_STACK as i64) {
                    return rej(format!(
                        "invalid {} stack R{regno} off={off} size=0",
                        if write { "write to" } else { "read from" }
                    ));
                }
            }
            return Ok(());
        }
        if null_ok {
            return rej(format!("R{regno} type={} expected=fp", reg.type_str()));
        }
        self.check_helper_mem(st, regno, reg, size.s.umax_value as i32, write)
    }

    /// `check_helper_mem_access`: `size` bytes readable at the pointer in `regno`.
    pub(super) fn check_helper_mem(
        &mut self,
        st: &mut VerifierState,
        regno: u8,
        reg: &RegState,
        size: i32,
        write: bool,
    ) -> R<()> {
        match reg.ty {
            RegType::PtrToStack if !reg.maybe_null => {
                if !reg.s.is_const() {
                    if size == 0 {
                        return rej("invalid zero-sized read");
                    }
                    return self.check_helper_stack_var(st, regno, reg, size, write);
                }
                // check_stack_range_initialized: a zero-sized access first.
                if size == 0 {
                    return rej("invalid zero-sized read");
                }
                let off = reg.off as i64 + reg.s.var_off.value as i64;
                if off < -(MAX_BPF_STACK as i64) || off + size as i64 > 0 || size <= 0 {
                    return rej(format!(
                        "invalid {} stack R{regno} off={off} size={size}",
                        if write { "write to" } else { "read from" }
                    ));
                }
                let Some(frame) = st.frames.get_mut(reg.frameno as usize) else {
                    return rej(format!(
                        "R{regno} points to the stack of a returned function"
                    ));
                };
                frame.grow_to(off as i32);
                // Stricter than the kernel, which leaves helpers' reads out of the contract.
                self.fastcall_stack_contract(frame.subprog, off);
                // Memory the helper writes need not be initialised (raw_mode).
                for b in 0..if write { 0 } else { size as i64 } {
                    let a = off + b;
                    let spi = ((-a - 1) / BPF_REG_SIZE as i64) as usize;
                    let ti = ((-a - 1) % BPF_REG_SIZE as i64) as usize;
                    let slot = frame.stack.get(spi).copied().unwrap_or(StackSlot::INVALID);
                    if slot.types[ti] == SlotType::Invalid && !self.opts.allow_uninit_stack {
                        return rej_hint(
                            format!("invalid read from stack R{regno} off {off}+{b} size {size}"),
                            "the key/value buffer on the stack is not fully initialised; zero it first (e.g. __builtin_memset or = {})",
                        );
                    }
                }
                self.check_stack_depth(st)
            }
            RegType::PtrToPacket | RegType::PtrToPacketMeta if !reg.maybe_null => {
                self.check_packet_access(regno, reg, reg.off, size)
            }
            RegType::PtrToMem | RegType::PtrToRingbufMem if !reg.maybe_null => {
                self.check_mem_region(regno, reg, reg.off, size, reg.mem_size, false)
            }
            RegType::PtrToMapValue | RegType::PtrToMapKey if !reg.maybe_null => {
                let d = &self.maps[reg.map as usize].desc;
                let mem = if reg.ty == RegType::PtrToMapKey {
                    if write {
                        return rej(format!("R{regno} cannot write into map_key"));
                    }
                    d.key_size
                } else {
                    check_map_access_type(d, reg.off, size, write)?;
                    d.value_size
                };
                self.check_mem_region(regno, reg, reg.off, size, mem, false)?;
                if reg.ty == RegType::PtrToMapValue {
                    self.check_special_fields(reg, reg.off, size)?;
                }
                Ok(())
            }
            // A context the program type does not rewrite (no convert_ctx_access) is checked
            // as a one-byte access at its last byte. The kernel accepts what passes and sizes
            // a test run's context by it (max_ctx_offset); kbpf does not track that for
            // helpers, so it goes on refusing the context as memory after the kernel's check.
            RegType::PtrToCtx if size > 0 && ctx_without_rewrite(self.prog) => {
                if let Err(m) = global::check_ptr_off_reg(reg, regno, "ctx") {
                    return rej(m);
                }
                let off = size - 1;
                let attach = self.opts.expected_attach_type;
                if check_ctx_access_for(self.prog, attach, off, 1, write).is_none() {
                    return rej(format!("invalid bpf_context access off={off} size=1"));
                }
                rej(format!(
                    "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
                    reg.type_str()
                ))
            }
            _ => rej_hint(
                format!(
                    "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
                    reg.type_str()
                ),
                "pass a pointer to memory (e.g. a stack variable's address), not a number",
            ),
        }
    }
}

/// `get_constant_map_key`: the key's value if the stack holds a known constant there.
pub(super) fn constant_map_key(st: &VerifierState, key: &RegState, key_size: u32) -> Option<u64> {
    if !key.s.is_const() {
        return None;
    }
    let off = key.off as i64 + key.s.var_off.value as i64;
    if off >= 0 || off < -(MAX_BPF_STACK as i64) {
        return None;
    }
    let frame = st.frames.get(key.frameno as usize)?;
    let spi = ((-off - 1) / BPF_REG_SIZE as i64) as usize;
    let slot = frame.stack.get(spi)?;
    let first = ((-off - 1) % BPF_REG_SIZE as i64) as usize;
    // Zero bytes from the key's start.
    let mut zero = 0;
    let mut i = first as i64;
    while i >= 0 && slot.types[i as usize] == SlotType::Zero {
        zero += 1;
        i -= 1;
    }
    if zero >= key_size {
        return Some(0);
    }
    if !slot.is_spill() || slot.spilled.ty != RegType::Scalar {
        return None;
    }
    if slot.spill_size() != key_size as usize || off % BPF_REG_SIZE as i64 != 0 {
        return None;
    }
    slot.spilled
        .s
        .is_const()
        .then_some(slot.spilled.s.var_off.value)
}

/// Combines what reached a call site: one map, or poisoned.
pub(super) fn merge_map_use(old: MapUse, new: MapUse) -> MapUse {
    match (old, new) {
        (MapUse::None, n) => n,
        (MapUse::Map(a), MapUse::Map(b)) if a == b => old,
        _ => MapUse::Poisoned,
    }
}

/// `check_map_func_compatibility`, from the map's side, for the map types whose helpers
/// are a closed set (the rest are checked where the helper is).
pub(super) fn map_func_compatible(map_type: u32, id: i32) -> bool {
    match map_type {
        // perf_event_read, perf_event_output, perf_event_read_value, skb_output, xdp_output
        4 => matches!(id, 22 | 25 | 55 | 111 | 121),
        // get_stackid
        7 => id == 27,
        // skb_under_cgroup, current_task_under_cgroup
        8 => matches!(id, 33 | 37),
        // sk_redirect_map, sock_map_update, msg_redirect_map, sk_select_reuseport, lookup,
        // and (may_update_sockmap) update/delete
        SOCKMAP => matches!(id, 52 | 53 | 60 | 82 | 1 | 2 | 3),
        // sk_redirect_hash, sock_hash_update, msg_redirect_hash, sk_select_reuseport, ...
        SOCKHASH => matches!(id, 72 | 70 | 71 | 82 | 1 | 2 | 3),
        REUSEPORT_SOCKARRAY => id == 82,
        // sk_storage_get/delete, kptr_xchg
        SK_STORAGE => matches!(id, 107 | 108 | 194),
        // get_local_storage
        19 | 21 => id == 81,
        // push, pop, peek
        22 | 23 => matches!(id, 87..=89),
        // user_ringbuf_drain
        31 => id == 209,
        _ => true,
    }
}

/// `check_reg_type` for `ARG_PTR_TO_MEM` arguments: the register must be one of the memory
/// pointer types (a NULL only where the argument allows it, checked by the caller).
pub(super) fn check_mem_arg_type(regno: u8, reg: &RegState) -> R<()> {
    let ok = !reg.maybe_null
        && matches!(
            reg.ty,
            RegType::PtrToStack
                | RegType::PtrToPacket
                | RegType::PtrToPacketMeta
                | RegType::PtrToMapKey
                | RegType::PtrToMapValue
                | RegType::PtrToMem
                | RegType::PtrToRingbufMem
        );
    if ok {
        return Ok(());
    }
    rej_hint(
        format!(
            "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
            reg.type_str()
        ),
        "pass a pointer to memory (e.g. a stack variable's address), not a number",
    )
}

/// `MEM_ALIGNED` of a fixed-size helper memory argument (`ARG_PTR_TO_LONG`, `ARG_PTR_TO_INT`):
/// `check_ptr_alignment` with the message each pointer type prints (packets count the
/// `NET_IP_ALIGN` bias).
fn check_fixed_mem_arg_alignment(reg: &RegState, size: i32) -> R<()> {
    let (desc, prefix, bias) = match reg.ty {
        RegType::PtrToStack => ("stack ", "", 0),
        RegType::PtrToMapValue => ("value ", "", 0),
        RegType::PtrToMapKey => ("key ", "", 0),
        RegType::PtrToPacket | RegType::PtrToPacketMeta => ("packet ", "2+", 2),
        _ => return Ok(()),
    };
    check_strict_alignment_at(desc, prefix, bias, reg, 0, size)
}

/// Program types whose context the kernel does not rewrite (`!env->ops->convert_ctx_access`):
/// the tracing ones, whose context is memory the program reads as it is.
fn ctx_without_rewrite(prog: ProgType) -> bool {
    matches!(
        prog,
        ProgType::Kprobe
            | ProgType::Tracepoint
            | ProgType::RawTracepoint
            | ProgType::RawTracepointWritable
            | ProgType::Syscall
    )
}

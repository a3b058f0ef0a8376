//! Global functions (`BTF_FUNC_GLOBAL`): the callers' side of `check_func_call`
//! (`btf_check_subprog_call`: the arguments against the prototype, then `R0` an unknown
//! scalar and the call not entered) and `do_check_subprogs` (each called global function
//! verified once, on its own, with the most general arguments its prototype allows).
//!
//! - A scalar argument must be a scalar; a context argument the unmodified context; a
//!   memory argument NULL or `size` bytes readable and writable (the callee may write them,
//!   so the caller's stack bytes become unknown data), and not maybe-NULL unless the
//!   prototype allows NULL.
//! - A failed check is logged with the kernel's line and refused with `Caller passes
//!   invalid args into func#N ('name')`.
//! - A global function that may change packet data (a helper that does, or a tail call,
//!   in it or in what it calls) invalidates the caller's packet pointers.
//! - The function itself starts from `R1..R5` as its prototype declares them (memory as
//!   `PTR_TO_MEM` of the pointee's size, maybe NULL), and must return a scalar.

use super::*;
use crate::{GlobalArg, GlobalFunc};

impl Checker<'_> {
    /// The global function starting at `start`, if it is one.
    pub(super) fn global_func(&self, start: usize) -> Option<&GlobalFunc> {
        self.opts.global_funcs.iter().find(|g| g.start == start)
    }

    /// A call of the global function at `target`: the arguments are checked, the callee is
    /// not entered.
    pub(super) fn call_global(&mut self, st: &mut VerifierState, target: usize) -> R<()> {
        let subprog = self.subprog_of(target);
        let Some(g) = self.global_func(target).cloned() else {
            return rej("verifier bug: not a global function");
        };
        if st.lock.is_some() {
            self.verbose("global function calls are not allowed while holding a lock,\n");
            return rej("use static function instead");
        }
        let invalid = format!(
            "Caller passes invalid args into func#{subprog} ('{}')",
            g.name
        );
        let args = match &g.args {
            Ok(a) => a.clone(),
            Err(m) if m.starts_with("kbpf:") => return rej(m.clone()),
            Err(m) => {
                self.verbose(&format!("{m}\n"));
                return rej(invalid);
            }
        };
        for (i, arg) in args.iter().enumerate() {
            let regno = (i + 1) as u8;
            if let Err(line) = self.check_global_arg(st, i, regno, *arg) {
                self.verbose(&format!("{line}\n"));
                return rej(invalid);
            }
        }
        if self.level() >= 1 {
            self.verbose(&format!(
                "Func#{subprog} ('{}') is global and assumed valid.\n",
                g.name
            ));
        }
        if self.subprog_changes_pkt_data(subprog) {
            st.for_each_reg(|r| {
                if matches!(
                    r.ty,
                    RegType::PtrToPacket | RegType::PtrToPacketMeta | RegType::PtrToPacketEnd
                ) {
                    *r = RegState::unknown();
                }
            });
        }
        self.globals_called.insert(subprog);
        for r in 1..=5 {
            self.scratched_regs |= 1 << r;
            self.set_reg(st, r, RegState::NOT_INIT);
        }
        self.scratched_regs |= 1;
        self.set_reg(st, 0, RegState::unknown());
        Ok(())
    }

    /// `btf_check_func_arg_match` for argument `i` in `regno`; `Err` is the log line.
    fn check_global_arg(
        &mut self,
        st: &mut VerifierState,
        i: usize,
        regno: u8,
        arg: GlobalArg,
    ) -> Result<(), String> {
        let reg = st.cur().regs[regno as usize];
        match arg {
            GlobalArg::Scalar => {
                if reg.ty != RegType::Scalar {
                    return Err(format!("R{regno} is not a scalar"));
                }
            }
            GlobalArg::Ctx => {
                check_arg_reg_off(&reg, regno)?;
                if reg.ty != RegType::PtrToCtx {
                    return Err(format!("arg#{i} expects pointer to ctx"));
                }
            }
            GlobalArg::Mem { size, nullable } => {
                check_arg_reg_off(&reg, regno)?;
                // check_mem_reg: NULL passes; otherwise `size` bytes read, then written.
                let null =
                    reg.ty == RegType::Scalar && reg.s.is_const() && reg.s.var_off.value == 0;
                if null {
                    return Ok(());
                }
                let mut r = reg;
                r.maybe_null = false;
                let size = size as i32;
                self.check_helper_mem(st, regno, &r, size, false)
                    .and_then(|()| self.check_helper_mem(st, regno, &r, size, true))
                    .map_err(|e| e.msg)?;
                if r.ty == RegType::PtrToStack {
                    mark_stack_written(st, &r, size as u64);
                }
                if !nullable && reg.maybe_null {
                    return Err(format!("arg#{i} is expected to be non-NULL"));
                }
            }
        }
        Ok(())
    }

    /// Whether subprogram `subprog`, or anything it calls, may change packet data.
    fn subprog_changes_pkt_data(&self, subprog: usize) -> bool {
        let mut seen = vec![false; self.subprogs.len()];
        let mut todo = vec![subprog];
        while let Some(s) = todo.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            for idx in self.subprog_range(s) {
                match self.decoded[idx] {
                    Some(Instruction::Call(CallTarget::Helper(id))) => {
                        let changes =
                            helpers::func_proto(self.prog, id).is_some_and(|p| p.changes_pkt_data);
                        if changes || id == helpers::BPF_FUNC_TAIL_CALL {
                            return true;
                        }
                    }
                    Some(Instruction::Call(CallTarget::Local(imm))) => {
                        let t = (idx as i64 + 1 + imm as i64) as usize;
                        todo.push(self.subprog_of(t));
                    }
                    _ => {}
                }
            }
        }
        false
    }

    /// `do_check_subprogs`: every called global function, verified on its own, until no
    /// new one is called.
    pub fn run_globals(&mut self) -> R<()> {
        loop {
            let next = self
                .globals_called
                .iter()
                .copied()
                .find(|s| !self.globals_verified.contains(s));
            let Some(subprog) = next else {
                return Ok(());
            };
            self.globals_verified.insert(subprog);
            let start = self.subprogs[subprog];
            let Some(g) = self.global_func(start).cloned() else {
                continue;
            };
            let Ok(args) = g.args.clone() else {
                continue;
            };
            if self.level() >= 1 {
                self.verbose(&format!("Validating {}() func#{subprog}...\n", g.name));
            }
            let mut f = FuncState::new(0, 0, subprog);
            for (i, a) in args.iter().enumerate() {
                f.regs[i + 1] = match *a {
                    GlobalArg::Scalar => RegState::unknown(),
                    GlobalArg::Ctx => RegState::pointer(RegType::PtrToCtx),
                    GlobalArg::Mem { size, nullable } => {
                        let mut r = RegState::pointer(RegType::PtrToMem);
                        r.mem_size = size;
                        r.maybe_null = nullable;
                        r.id = self.new_id();
                        r
                    }
                };
            }
            // free_states: nothing explored for one entry prunes another.
            self.explored.clear();
            self.arena.clear();
            self.explored_size = 0;
            self.free_list_size = 0;
            self.cur_parent = None;
            self.in_global = Some(subprog);
            self.run_from(
                start,
                VerifierState {
                    frames: vec![f],
                    refs: Vec::new(),
                    lock: None,
                    may_goto_depth: 0,
                    callback_unroll_depth: 0,
                },
            )?;
            self.in_global = None;
            if self.level() >= 1 {
                self.verbose(&format!(
                    "Func#{subprog} ('{}') is safe for any args that match its prototype\n",
                    g.name
                ));
            }
        }
    }
}

/// `check_func_arg_reg_off` with `ARG_DONTCARE`: pointers to memory may carry offsets, any
/// other pointer must be unmodified (`__check_ptr_off_reg`).
fn check_arg_reg_off(reg: &RegState, regno: u8) -> Result<(), String> {
    if matches!(
        reg.ty,
        RegType::PtrToStack
            | RegType::PtrToPacket
            | RegType::PtrToPacketMeta
            | RegType::PtrToMapKey
            | RegType::PtrToMapValue
            | RegType::PtrToMem
            | RegType::PtrToRingbufMem
            | RegType::Scalar
    ) {
        return Ok(());
    }
    check_ptr_off_reg(reg, regno, &reg.type_str())
}

/// `__check_ptr_off_reg` for a pointer that must be unmodified: a negative offset, a fixed
/// one, a variable one, each with the kernel's message naming the pointer as `t`.
pub(super) fn check_ptr_off_reg(reg: &RegState, regno: u8, t: &str) -> Result<(), String> {
    if reg.off < 0 {
        return Err(format!(
            "negative offset {t} ptr R{regno} off={} disallowed",
            reg.off
        ));
    }
    if reg.off != 0 {
        return Err(format!(
            "dereference of modified {t} ptr R{regno} off={} disallowed",
            reg.off
        ));
    }
    if !reg.s.is_const() || reg.s.var_off.value != 0 {
        return Err(format!(
            "variable {t} access var_off={} disallowed",
            reg.s.var_off
        ));
    }
    Ok(())
}

//! The kernel/bpftool text form of instructions.
//!
//! This module owns how one instruction is printed, exactly as the kernel's
//! `print_bpf_insn()` (`kernel/bpf/disasm.c`) prints it in the verifier log, and how a whole
//! translated program is laid out by `bpftool prog dump xlated` (`dump_xlated_plain()` in
//! `tools/bpf/bpftool/xlated_dumper.c`, with its `print_imm()` for `ld_imm64` operands):
//!
//! ```text
//!    0: (61) r0 = *(u32 *)(r2 +0)
//!    1: (35) if r0 >= 0x3 goto pc+5
//!    2: (18) r1 = map[id:63]
//!    4: (85) call array_map_lookup_elem#350240
//! ```
//!
//! It works on raw [`Insn`]s, not on decoded [`crate::Instruction`]s, because the kernel prints
//! whatever bytes it is given: translated programs contain encodings that are not valid program
//! input (`nospec`, the per-CPU address move, helper calls whose `imm` is an address offset), and
//! the kernel's text for malformed encodings (`BUG_ldx_99`, `(null)` operators) is part of what
//! a faithful dump reproduces. The only errors are structural: an index outside the program, or
//! an `ld_imm64` whose second slot is missing.
//!
//! Two [`Dialect`]s are supported: the current kernel (6.18, the default) and the disassembler
//! compiled into bpftool v7.1.0 (Linux 6.1's `disasm.c`), which predates ISA v4 and prints
//! several v4 instructions in their pre-v4 form. The golden tests compare the latter byte for
//! byte with real bpftool output.
//!
//! Names that need outside knowledge come from callbacks: a call resolver (kernel symbol names
//! for helper addresses, JIT symbol names for bpf-to-bpf calls, kfunc names) and an `ld_imm64`
//! formatter. Per-instruction prefix lines (bpftool's `; source` lines and function prototypes,
//! which need BTF) are added through the annotation hook of [`Disasm::dump_xlated_annotated`].

use std::fmt::Write as _;

use crate::insn::*;

/// Which disassembler's text to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The current kernel's `kernel/bpf/disasm.c` (Linux 6.18): ISA v4 (`s/=`, `(s8)` moves,
    /// `*(s16 *)` loads, `bswap`, `gotol`), `may_goto`, `addr_space_cast`, the per-CPU address
    /// move, and `load_acquire`/`store_release`. (Indirect jumps, `gotox`, came after 6.18 and
    /// print here as the kernel 6.18 prints encoding 0x0d: `if r0 jmp r0 goto pc+0`.)
    #[default]
    Linux618,
    /// The `disasm.c` inside bpftool v7.1.0 (Linux 6.1). It predates ISA v4, so it prints
    /// signed division and modulo as `/=` and `%=`, sign-extending moves and the per-CPU move as
    /// plain moves (`r1 = r2`), sign-extending loads as `BUG_ldx_<code>`, `bswap` as
    /// `BUG_alu64_d7`, `gotol` as `if w0 jmp 0x<imm> goto pc+0`, `may_goto` as
    /// `if r0 (null) 0x0 goto pc<off>`, and load-acquire/store-release as `BUG_<code>`.
    Bpftool71,
}

/// What a `call` instruction's `src_reg` says it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `src_reg == 0`: a helper; `imm` is the helper id, or in a translated program the helper's
    /// address relative to `__bpf_call_base`.
    Helper,
    /// `src_reg == BPF_PSEUDO_CALL`: a bpf-to-bpf call. Before loading `imm` is the pc-relative
    /// offset of the callee; in a translated, JIT-ed program `off` holds that offset and `imm`
    /// the subprogram index.
    BpfToBpf,
    /// `src_reg == BPF_PSEUDO_KFUNC_CALL`: a kernel function by BTF id (an address offset in
    /// translated programs).
    Kfunc,
    /// Any other `src_reg`, printed like a helper call.
    Other(u8),
}

impl CallKind {
    fn of(insn: &Insn) -> CallKind {
        match insn.src() {
            0 => CallKind::Helper,
            BPF_PSEUDO_CALL => CallKind::BpfToBpf,
            BPF_PSEUDO_KFUNC_CALL => CallKind::Kfunc,
            other => CallKind::Other(other),
        }
    }
}

/// A call instruction handed to a [`CallResolver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite {
    /// Index of the call in the program.
    pub index: usize,
    /// The raw instruction (`imm`, `off` and `src_reg` as in the program).
    pub insn: Insn,
    /// What `src_reg` says is called.
    pub kind: CallKind,
}

/// Names a call's target, like the kernel's `cb_call` callback: the returned string replaces
/// the name in `call <name>#<imm>` (helpers, kfuncs) or follows `pc` in `call pc<name>`
/// (bpf-to-bpf calls, where bpftool returns e.g. `+67#bpf_prog_e7713d82463fc1bc_checksum`).
/// Returning `None` keeps the kernel's default (`unknown`, `kernel-function`, or the signed
/// `imm` for bpf-to-bpf calls). Helper ids found in the built-in table ([`helper_name`]) are
/// named from the table before the resolver is asked, as the kernel does.
pub type CallResolver<'a> = dyn Fn(&CallSite) -> Option<String> + 'a;

/// Formats the operand of an `ld_imm64` (given both slots), like the kernel's `cb_imm`
/// callback; `None` falls back to the [`Imm64Style`].
pub type Imm64Formatter<'a> = dyn Fn(&Insn, &Insn) -> Option<String> + 'a;

/// How the operand of an `ld_imm64` is printed when no [`Imm64Formatter`] claims it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Imm64Style {
    /// bpftool's `print_imm()` for translated programs, where the kernel has replaced map
    /// addresses by map ids: `map[id:63]` (`BPF_PSEUDO_MAP_FD`), `map[id:63][0]+8`
    /// (`BPF_PSEUDO_MAP_VALUE`), `map[idx:1]+8` (`BPF_PSEUDO_MAP_IDX_VALUE`), `subprog[+78]`
    /// (`BPF_PSEUDO_FUNC`), otherwise the 64-bit value in hex.
    Bpftool,
    /// The kernel's own text without a callback (the verifier log): the 64-bit value in hex,
    /// printed as 0 for map pointers unless `allow_ptr_leaks`.
    Kernel {
        /// Whether map addresses may be shown (`bpf_allow_ptr_leaks()` in the kernel).
        allow_ptr_leaks: bool,
    },
}

/// Why an instruction could not be printed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DisasmError {
    /// The index is past the end of the program.
    #[error("insn {index} out of range (program has {len} insns)")]
    IndexOutOfRange {
        /// Requested index.
        index: usize,
        /// Program length in instructions.
        len: usize,
    },
    /// An `ld_imm64` (opcode 0x18) in the last slot, without its second half.
    #[error("insn {index}: ld_imm64 is missing its second slot")]
    TruncatedLdImm64 {
        /// Index of the first slot.
        index: usize,
    },
}

/// The helper names of the kernel's `__BPF_FUNC_MAPPER` (`func_id_str[]` in `disasm.c`),
/// indexed by helper id; id 0 is `bpf_unspec`.
pub const BPF_FUNC_NAMES: [&str; 212] = [
    "bpf_unspec",
    "bpf_map_lookup_elem",
    "bpf_map_update_elem",
    "bpf_map_delete_elem",
    "bpf_probe_read",
    "bpf_ktime_get_ns",
    "bpf_trace_printk",
    "bpf_get_prandom_u32",
    "bpf_get_smp_processor_id",
    "bpf_skb_store_bytes",
    "bpf_l3_csum_replace",
    "bpf_l4_csum_replace",
    "bpf_tail_call",
    "bpf_clone_redirect",
    "bpf_get_current_pid_tgid",
    "bpf_get_current_uid_gid",
    "bpf_get_current_comm",
    "bpf_get_cgroup_classid",
    "bpf_skb_vlan_push",
    "bpf_skb_vlan_pop",
    "bpf_skb_get_tunnel_key",
    "bpf_skb_set_tunnel_key",
    "bpf_perf_event_read",
    "bpf_redirect",
    "bpf_get_route_realm",
    "bpf_perf_event_output",
    "bpf_skb_load_bytes",
    "bpf_get_stackid",
    "bpf_csum_diff",
    "bpf_skb_get_tunnel_opt",
    "bpf_skb_set_tunnel_opt",
    "bpf_skb_change_proto",
    "bpf_skb_change_type",
    "bpf_skb_under_cgroup",
    "bpf_get_hash_recalc",
    "bpf_get_current_task",
    "bpf_probe_write_user",
    "bpf_current_task_under_cgroup",
    "bpf_skb_change_tail",
    "bpf_skb_pull_data",
    "bpf_csum_update",
    "bpf_set_hash_invalid",
    "bpf_get_numa_node_id",
    "bpf_skb_change_head",
    "bpf_xdp_adjust_head",
    "bpf_probe_read_str",
    "bpf_get_socket_cookie",
    "bpf_get_socket_uid",
    "bpf_set_hash",
    "bpf_setsockopt",
    "bpf_skb_adjust_room",
    "bpf_redirect_map",
    "bpf_sk_redirect_map",
    "bpf_sock_map_update",
    "bpf_xdp_adjust_meta",
    "bpf_perf_event_read_value",
    "bpf_perf_prog_read_value",
    "bpf_getsockopt",
    "bpf_override_return",
    "bpf_sock_ops_cb_flags_set",
    "bpf_msg_redirect_map",
    "bpf_msg_apply_bytes",
    "bpf_msg_cork_bytes",
    "bpf_msg_pull_data",
    "bpf_bind",
    "bpf_xdp_adjust_tail",
    "bpf_skb_get_xfrm_state",
    "bpf_get_stack",
    "bpf_skb_load_bytes_relative",
    "bpf_fib_lookup",
    "bpf_sock_hash_update",
    "bpf_msg_redirect_hash",
    "bpf_sk_redirect_hash",
    "bpf_lwt_push_encap",
    "bpf_lwt_seg6_store_bytes",
    "bpf_lwt_seg6_adjust_srh",
    "bpf_lwt_seg6_action",
    "bpf_rc_repeat",
    "bpf_rc_keydown",
    "bpf_skb_cgroup_id",
    "bpf_get_current_cgroup_id",
    "bpf_get_local_storage",
    "bpf_sk_select_reuseport",
    "bpf_skb_ancestor_cgroup_id",
    "bpf_sk_lookup_tcp",
    "bpf_sk_lookup_udp",
    "bpf_sk_release",
    "bpf_map_push_elem",
    "bpf_map_pop_elem",
    "bpf_map_peek_elem",
    "bpf_msg_push_data",
    "bpf_msg_pop_data",
    "bpf_rc_pointer_rel",
    "bpf_spin_lock",
    "bpf_spin_unlock",
    "bpf_sk_fullsock",
    "bpf_tcp_sock",
    "bpf_skb_ecn_set_ce",
    "bpf_get_listener_sock",
    "bpf_skc_lookup_tcp",
    "bpf_tcp_check_syncookie",
    "bpf_sysctl_get_name",
    "bpf_sysctl_get_current_value",
    "bpf_sysctl_get_new_value",
    "bpf_sysctl_set_new_value",
    "bpf_strtol",
    "bpf_strtoul",
    "bpf_sk_storage_get",
    "bpf_sk_storage_delete",
    "bpf_send_signal",
    "bpf_tcp_gen_syncookie",
    "bpf_skb_output",
    "bpf_probe_read_user",
    "bpf_probe_read_kernel",
    "bpf_probe_read_user_str",
    "bpf_probe_read_kernel_str",
    "bpf_tcp_send_ack",
    "bpf_send_signal_thread",
    "bpf_jiffies64",
    "bpf_read_branch_records",
    "bpf_get_ns_current_pid_tgid",
    "bpf_xdp_output",
    "bpf_get_netns_cookie",
    "bpf_get_current_ancestor_cgroup_id",
    "bpf_sk_assign",
    "bpf_ktime_get_boot_ns",
    "bpf_seq_printf",
    "bpf_seq_write",
    "bpf_sk_cgroup_id",
    "bpf_sk_ancestor_cgroup_id",
    "bpf_ringbuf_output",
    "bpf_ringbuf_reserve",
    "bpf_ringbuf_submit",
    "bpf_ringbuf_discard",
    "bpf_ringbuf_query",
    "bpf_csum_level",
    "bpf_skc_to_tcp6_sock",
    "bpf_skc_to_tcp_sock",
    "bpf_skc_to_tcp_timewait_sock",
    "bpf_skc_to_tcp_request_sock",
    "bpf_skc_to_udp6_sock",
    "bpf_get_task_stack",
    "bpf_load_hdr_opt",
    "bpf_store_hdr_opt",
    "bpf_reserve_hdr_opt",
    "bpf_inode_storage_get",
    "bpf_inode_storage_delete",
    "bpf_d_path",
    "bpf_copy_from_user",
    "bpf_snprintf_btf",
    "bpf_seq_printf_btf",
    "bpf_skb_cgroup_classid",
    "bpf_redirect_neigh",
    "bpf_per_cpu_ptr",
    "bpf_this_cpu_ptr",
    "bpf_redirect_peer",
    "bpf_task_storage_get",
    "bpf_task_storage_delete",
    "bpf_get_current_task_btf",
    "bpf_bprm_opts_set",
    "bpf_ktime_get_coarse_ns",
    "bpf_ima_inode_hash",
    "bpf_sock_from_file",
    "bpf_check_mtu",
    "bpf_for_each_map_elem",
    "bpf_snprintf",
    "bpf_sys_bpf",
    "bpf_btf_find_by_name_kind",
    "bpf_sys_close",
    "bpf_timer_init",
    "bpf_timer_set_callback",
    "bpf_timer_start",
    "bpf_timer_cancel",
    "bpf_get_func_ip",
    "bpf_get_attach_cookie",
    "bpf_task_pt_regs",
    "bpf_get_branch_snapshot",
    "bpf_trace_vprintk",
    "bpf_skc_to_unix_sock",
    "bpf_kallsyms_lookup_name",
    "bpf_find_vma",
    "bpf_loop",
    "bpf_strncmp",
    "bpf_get_func_arg",
    "bpf_get_func_ret",
    "bpf_get_func_arg_cnt",
    "bpf_get_retval",
    "bpf_set_retval",
    "bpf_xdp_get_buff_len",
    "bpf_xdp_load_bytes",
    "bpf_xdp_store_bytes",
    "bpf_copy_from_user_task",
    "bpf_skb_set_tstamp",
    "bpf_ima_file_hash",
    "bpf_kptr_xchg",
    "bpf_map_lookup_percpu_elem",
    "bpf_skc_to_mptcp_sock",
    "bpf_dynptr_from_mem",
    "bpf_ringbuf_reserve_dynptr",
    "bpf_ringbuf_submit_dynptr",
    "bpf_ringbuf_discard_dynptr",
    "bpf_dynptr_read",
    "bpf_dynptr_write",
    "bpf_dynptr_data",
    "bpf_tcp_raw_gen_syncookie_ipv4",
    "bpf_tcp_raw_gen_syncookie_ipv6",
    "bpf_tcp_raw_check_syncookie_ipv4",
    "bpf_tcp_raw_check_syncookie_ipv6",
    "bpf_ktime_get_tai_ns",
    "bpf_user_ringbuf_drain",
    "bpf_cgrp_storage_get",
    "bpf_cgrp_storage_delete",
];

/// The name of helper `id` as the kernel prints it (`bpf_map_lookup_elem` for 1), if known.
pub fn helper_name(id: i32) -> Option<&'static str> {
    usize::try_from(id)
        .ok()
        .and_then(|i| BPF_FUNC_NAMES.get(i).copied())
}

const ALU_OPS: [Option<&str>; 16] = [
    Some("+="),
    Some("-="),
    Some("*="),
    Some("/="),
    Some("|="),
    Some("&="),
    Some("<<="),
    Some(">>="),
    Some("neg"),
    Some("%="),
    Some("^="),
    Some("="),
    Some("s>>="),
    Some("endian"),
    None,
    None,
];

const JMP_OPS: [Option<&str>; 16] = [
    Some("jmp"),
    Some("=="),
    Some(">"),
    Some(">="),
    Some("&"),
    Some("!="),
    Some("s>"),
    Some("s>="),
    Some("call"),
    Some("exit"),
    Some("<"),
    Some("<="),
    Some("s<"),
    Some("s<="),
    None,
    None,
];

const ATOMIC_OPS: [Option<&str>; 16] = {
    let mut t = [None; 16];
    t[(BPF_ADD >> 4) as usize] = Some("add");
    t[(BPF_AND >> 4) as usize] = Some("and");
    t[(BPF_OR >> 4) as usize] = Some("or");
    t[(BPF_XOR >> 4) as usize] = Some("xor");
    t
};

/// `off` of `BPF_ALU64 | BPF_MOV | BPF_X` marking an arena address-space cast (`BPF_ADDR_SPACE_CAST`).
const BPF_ADDR_SPACE_CAST: i16 = 1;
/// `off` of `BPF_ALU64 | BPF_MOV | BPF_X` marking the verifier's per-CPU address move
/// (`BPF_ADDR_PERCPU`, internal to the kernel).
const BPF_ADDR_PERCPU: i16 = -1;
/// `BPF_ST` mode of the verifier's speculation barrier (`BPF_NOSPEC`, not in the UAPI).
const BPF_NOSPEC: u8 = 0xc0;

/// What C's `printf("%s", NULL)` prints with glibc (and the kernel's `vsnprintf`): the kernel's
/// tables have holes for unused opcodes, and its text for those encodings contains this.
const NULL_STR: &str = "(null)";

fn ldst_size(code: u8) -> &'static str {
    ["u32", "u16", "u8", "u64"][((code & 0x18) >> 3) as usize]
}

fn ldsx_size(code: u8) -> &'static str {
    // The kernel's bpf_ldsx_string[] has no BPF_DW entry; 6.18 reads past the array there
    // (undefined), and the verifier rejects that encoding, so print it as a hole.
    ["s32", "s16", "s8", NULL_STR][((code & 0x18) >> 3) as usize]
}

fn op_str(table: &[Option<&'static str>; 16], code_or_imm: u8) -> &'static str {
    table[(code_or_imm >> 4) as usize].unwrap_or(NULL_STR)
}

fn reg_prefix(wide: bool) -> char {
    if wide { 'r' } else { 'w' }
}

/// Formats an instruction index the way bpftool's `printf("% 4d: ", i)` does: a space for the
/// sign, then padded to at least four characters (so `   5` but ` 1234` and ` 12345`).
fn index_prefix(index: usize) -> String {
    format!("{:>4}: ", format!(" {index}"))
}

/// A configured disassembler. Build one with [`Disasm::new`] and the builder methods; it is
/// cheap and holds only references to the callbacks.
///
/// ```
/// use kbpf_isa::Insn;
/// use kbpf_isa::disasm::{CallKind, CallSite, Dialect, Disasm};
///
/// let prog = [
///     Insn::new(0xbf, 1, 2, 8, 0),   // r1 = (s8)r2
///     Insn::new(0x85, 0, 0, 0, 1),   // call helper 1
///     Insn::new(0x85, 0, 1, 0, -3),  // bpf-to-bpf call
///     Insn::new(0x95, 0, 0, 0, 0),
/// ];
/// let modern = Disasm::new();
/// assert_eq!(
///     modern.dump_xlated(&prog, false).unwrap(),
///     "   0: (bf) r1 = (s8)r2\n   1: (85) call bpf_map_lookup_elem#1\n   2: (85) call pc-3\n   3: (95) exit\n"
/// );
/// // bpftool 7.1 predates ISA v4; a resolver names what the bytes cannot.
/// let names = |site: &CallSite| (site.kind == CallKind::BpfToBpf).then(|| "-3#bpf_prog_f".to_owned());
/// let old = Disasm::new().dialect(Dialect::Bpftool71).call_resolver(&names);
/// assert_eq!(old.insn_text(&prog, 0).unwrap(), "(bf) r1 = r2");
/// assert_eq!(old.insn_text(&prog, 2).unwrap(), "(85) call pc-3#bpf_prog_f");
/// ```
pub struct Disasm<'a> {
    dialect: Dialect,
    imm64_style: Imm64Style,
    call_resolver: Option<&'a CallResolver<'a>>,
    imm64_formatter: Option<&'a Imm64Formatter<'a>>,
}

impl Default for Disasm<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Disasm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disasm")
            .field("dialect", &self.dialect)
            .field("imm64_style", &self.imm64_style)
            .field("call_resolver", &self.call_resolver.is_some())
            .field("imm64_formatter", &self.imm64_formatter.is_some())
            .finish()
    }
}

impl<'a> Disasm<'a> {
    /// The current kernel's text ([`Dialect::Linux618`]), `ld_imm64` operands in bpftool's
    /// translated-program form ([`Imm64Style::Bpftool`]), no call resolver.
    pub const fn new() -> Self {
        Disasm {
            dialect: Dialect::Linux618,
            imm64_style: Imm64Style::Bpftool,
            call_resolver: None,
            imm64_formatter: None,
        }
    }

    /// Selects the dialect.
    pub const fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Selects how `ld_imm64` operands are printed when no formatter claims them.
    pub const fn imm64_style(mut self, style: Imm64Style) -> Self {
        self.imm64_style = style;
        self
    }

    /// Installs a call-name resolver (see [`CallResolver`]).
    pub fn call_resolver(mut self, resolver: &'a CallResolver<'a>) -> Self {
        self.call_resolver = Some(resolver);
        self
    }

    /// Installs an `ld_imm64` operand formatter (see [`Imm64Formatter`]).
    pub fn imm64_formatter(mut self, formatter: &'a Imm64Formatter<'a>) -> Self {
        self.imm64_formatter = Some(formatter);
        self
    }

    /// The text of `insns[index]` as `print_bpf_insn()` prints it, without the index and
    /// without a trailing newline: `(61) r0 = *(u32 *)(r2 +0)`, or `BUG_ldx_99` for encodings
    /// the kernel has no text for. An `ld_imm64` reads its second slot from `insns[index + 1]`.
    pub fn insn_text(&self, insns: &[Insn], index: usize) -> Result<String, DisasmError> {
        let insn = *insns.get(index).ok_or(DisasmError::IndexOutOfRange {
            index,
            len: insns.len(),
        })?;
        let mut out = String::with_capacity(48);
        match insn.class() {
            BPF_ALU | BPF_ALU64 => self.alu(&insn, &mut out),
            BPF_STX => self.stx(&insn, &mut out),
            BPF_ST => st(&insn, &mut out),
            BPF_LDX => self.ldx(&insn, &mut out),
            BPF_LD => self.ld(insns, index, &mut out)?,
            // BPF_JMP and BPF_JMP32: the class is three bits and the other six are above.
            _ => self.jmp(&insn, index, &mut out),
        }
        Ok(out)
    }

    /// The whole program as `bpftool prog dump xlated` prints it (`opcodes` adds the raw-bytes
    /// line after each instruction), without BTF-derived lines. An `ld_imm64` prints once and
    /// the next printed index skips its second slot.
    pub fn dump_xlated(&self, insns: &[Insn], opcodes: bool) -> Result<String, DisasmError> {
        self.dump_xlated_annotated(insns, opcodes, &mut |_, _| {})
    }

    /// Like [`Disasm::dump_xlated`], calling `annotate(index, out)` before each printed
    /// instruction so that the caller can append whole lines (each ending in `'\n'`), as bpftool
    /// prints a function prototype (`int func(struct xdp_md * ctx):`) and then a `; source` line
    /// before the instruction they belong to. `annotate` is not called for the second slot of
    /// an `ld_imm64`, which bpftool never annotates either.
    pub fn dump_xlated_annotated(
        &self,
        insns: &[Insn],
        opcodes: bool,
        annotate: &mut dyn FnMut(usize, &mut String),
    ) -> Result<String, DisasmError> {
        let mut out = String::with_capacity(insns.len() * if opcodes { 80 } else { 40 });
        let mut index = 0;
        while index < insns.len() {
            annotate(index, &mut out);
            let insn = insns[index];
            let double = insn.is_ld_imm64();
            out.push_str(&index_prefix(index));
            out.push_str(&self.insn_text(insns, index)?);
            out.push('\n');
            if opcodes {
                out.push_str("       ");
                push_hex(&mut out, &insn.to_bytes());
                if double {
                    // insn_text already checked that the second slot exists.
                    out.push(' ');
                    push_hex(&mut out, &insns[index + 1].to_bytes());
                }
                out.push('\n');
            }
            index += if double { 2 } else { 1 };
        }
        Ok(out)
    }

    /// `(index, text)` for every printed instruction, skipping `ld_imm64` second slots.
    pub fn lines(&self, insns: &[Insn]) -> Result<Vec<(usize, String)>, DisasmError> {
        let mut v = Vec::with_capacity(insns.len());
        let mut index = 0;
        while index < insns.len() {
            v.push((index, self.insn_text(insns, index)?));
            index += if insns[index].is_ld_imm64() { 2 } else { 1 };
        }
        Ok(v)
    }

    fn modern(&self) -> bool {
        self.dialect == Dialect::Linux618
    }

    fn alu(&self, insn: &Insn, out: &mut String) {
        let code = insn.code;
        let wide = insn.class() == BPF_ALU64;
        let r = reg_prefix(wide);
        let op = code & 0xf0;
        let (dst, src) = (insn.dst(), insn.src());
        let x = code & BPF_X != 0;
        if op == BPF_END {
            if wide {
                if self.modern() {
                    let _ = write!(out, "({code:02x}) r{dst} = bswap{} r{dst}", insn.imm);
                } else {
                    let _ = write!(out, "BUG_alu64_{code:02x}");
                }
            } else {
                let kind = if x { "be" } else { "le" };
                let _ = write!(out, "({code:02x}) r{dst} = {kind}{} r{dst}", insn.imm);
            }
            return;
        }
        if op == BPF_NEG {
            let _ = write!(out, "({code:02x}) {r}{dst} = -{r}{dst}");
            return;
        }
        let mov64x = code == BPF_ALU64 | BPF_MOV | BPF_X;
        if self.modern() && mov64x && insn.off == BPF_ADDR_SPACE_CAST {
            let imm = insn.imm as u32;
            let _ = write!(
                out,
                "({code:02x}) r{dst} = addr_space_cast(r{src}, {}, {})",
                imm >> 16,
                imm & 0xffff
            );
            return;
        }
        if self.modern() && mov64x && insn.off == BPF_ADDR_PERCPU {
            let _ = write!(out, "({code:02x}) r{dst} = &(void __percpu *)(r{src})");
            return;
        }
        let signed = self.modern() && (op == BPF_DIV || op == BPF_MOD) && insn.off == 1;
        let op_text = match (signed, op) {
            (true, BPF_DIV) => "s/=",
            (true, _) => "s%=",
            (false, _) => op_str(&ALU_OPS, op),
        };
        if x {
            let cast = match (self.modern() && op == BPF_MOV, insn.off) {
                (true, 8) => "(s8)",
                (true, 16) => "(s16)",
                (true, 32) => "(s32)",
                _ => "",
            };
            let _ = write!(out, "({code:02x}) {r}{dst} {op_text} {cast}{r}{src}");
        } else {
            let _ = write!(out, "({code:02x}) {r}{dst} {op_text} {}", insn.imm);
        }
    }

    fn stx(&self, insn: &Insn, out: &mut String) {
        let code = insn.code;
        let (dst, src, off) = (insn.dst(), insn.src(), insn.off);
        let size = ldst_size(code);
        let dw = if code & 0x18 == BPF_DW { "64" } else { "" };
        let imm = insn.imm;
        let mode = code & 0xe0;
        if mode == BPF_MEM {
            let _ = write!(out, "({code:02x}) *({size} *)(r{dst} {off:+}) = r{src}");
            return;
        }
        if mode != BPF_ATOMIC {
            let _ = write!(out, "BUG_{code:02x}");
            return;
        }
        let alu = [BPF_ADD, BPF_AND, BPF_OR, BPF_XOR].map(i32::from);
        if alu.contains(&imm) {
            let op = op_str(&ALU_OPS, imm as u8);
            let _ = write!(
                out,
                "({code:02x}) lock *({size} *)(r{dst} {off:+}) {op} r{src}"
            );
        } else if alu.map(|a| a | BPF_FETCH).contains(&imm) {
            let op = op_str(&ATOMIC_OPS, imm as u8);
            let _ = write!(
                out,
                "({code:02x}) r{src} = atomic{dw}_fetch_{op}(({size} *)(r{dst} {off:+}), r{src})"
            );
        } else if imm == BPF_CMPXCHG {
            let _ = write!(
                out,
                "({code:02x}) r0 = atomic{dw}_cmpxchg(({size} *)(r{dst} {off:+}), r0, r{src})"
            );
        } else if imm == BPF_XCHG {
            let _ = write!(
                out,
                "({code:02x}) r{src} = atomic{dw}_xchg(({size} *)(r{dst} {off:+}), r{src})"
            );
        } else if self.modern() && imm == BPF_LOAD_ACQ {
            let _ = write!(
                out,
                "({code:02x}) r{dst} = load_acquire(({size} *)(r{src} {off:+}))"
            );
        } else if self.modern() && imm == BPF_STORE_REL {
            let _ = write!(
                out,
                "({code:02x}) store_release(({size} *)(r{dst} {off:+}), r{src})"
            );
        } else {
            let _ = write!(out, "BUG_{code:02x}");
        }
    }

    fn ldx(&self, insn: &Insn, out: &mut String) {
        let code = insn.code;
        let size = match code & 0xe0 {
            BPF_MEM => ldst_size(code),
            BPF_MEMSX if self.modern() => ldsx_size(code),
            _ => {
                let _ = write!(out, "BUG_ldx_{code:02x}");
                return;
            }
        };
        let _ = write!(
            out,
            "({code:02x}) r{} = *({size} *)(r{} {:+})",
            insn.dst(),
            insn.src(),
            insn.off
        );
    }

    fn ld(&self, insns: &[Insn], index: usize, out: &mut String) -> Result<(), DisasmError> {
        let insn = &insns[index];
        let code = insn.code;
        let size = ldst_size(code);
        match code & 0xe0 {
            BPF_ABS => {
                let _ = write!(out, "({code:02x}) r0 = *({size} *)skb[{}]", insn.imm);
            }
            BPF_IND => {
                let _ = write!(
                    out,
                    "({code:02x}) r0 = *({size} *)skb[r{} + {}]",
                    insn.src(),
                    insn.imm
                );
            }
            BPF_IMM if code & 0x18 == BPF_DW => {
                let next = insns
                    .get(index + 1)
                    .ok_or(DisasmError::TruncatedLdImm64 { index })?;
                let operand = self.imm64_text(insn, next);
                let _ = write!(out, "({code:02x}) r{} = {operand}", insn.dst());
            }
            _ => {
                let _ = write!(out, "BUG_ld_{code:02x}");
            }
        }
        Ok(())
    }

    fn imm64_text(&self, insn: &Insn, next: &Insn) -> String {
        if let Some(text) = self.imm64_formatter.and_then(|f| f(insn, next)) {
            return text;
        }
        let full = (u64::from(next.imm as u32) << 32) | u64::from(insn.imm as u32);
        let src = insn.src();
        match self.imm64_style {
            Imm64Style::Bpftool => match src {
                BPF_PSEUDO_MAP_FD => format!("map[id:{}]", insn.imm as u32),
                BPF_PSEUDO_MAP_VALUE => {
                    format!("map[id:{}][0]+{}", insn.imm as u32, next.imm as u32)
                }
                BPF_PSEUDO_MAP_IDX_VALUE => {
                    format!("map[idx:{}]+{}", insn.imm as u32, next.imm as u32)
                }
                BPF_PSEUDO_FUNC => format!("subprog[{:+}]", insn.imm),
                _ => format!("0x{full:x}"),
            },
            Imm64Style::Kernel { allow_ptr_leaks } => {
                let is_ptr = src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE;
                let shown = if is_ptr && !allow_ptr_leaks { 0 } else { full };
                format!("0x{shown:x}")
            }
        }
    }

    fn jmp(&self, insn: &Insn, index: usize, out: &mut String) {
        let code = insn.code;
        let op = code & 0xf0;
        let wide = insn.class() == BPF_JMP;
        if op == BPF_CALL {
            self.call(insn, index, out);
            return;
        }
        if code == BPF_JMP | BPF_JA {
            let _ = write!(out, "({code:02x}) goto pc{:+}", insn.off);
            return;
        }
        if self.modern() && code == BPF_JMP | BPF_JCOND && insn.src() == BPF_MAY_GOTO {
            let _ = write!(out, "({code:02x}) may_goto pc{:+}", insn.off);
            return;
        }
        if self.modern() && code == BPF_JMP32 | BPF_JA {
            let _ = write!(out, "({code:02x}) gotol pc{:+}", insn.imm);
            return;
        }
        if code == BPF_JMP | BPF_EXIT {
            let _ = write!(out, "({code:02x}) exit");
            return;
        }
        let r = if wide { 'r' } else { 'w' };
        let cond = op_str(&JMP_OPS, op);
        let dst = insn.dst();
        if code & BPF_X != 0 {
            let _ = write!(
                out,
                "({code:02x}) if {r}{dst} {cond} {r}{} goto pc{:+}",
                insn.src(),
                insn.off
            );
        } else {
            let _ = write!(
                out,
                "({code:02x}) if {r}{dst} {cond} 0x{:x} goto pc{:+}",
                insn.imm as u32, insn.off
            );
        }
    }

    /// `__func_get_name()` and the call branch of `print_bpf_insn()`.
    fn call(&self, insn: &Insn, index: usize, out: &mut String) {
        let code = insn.code;
        let kind = CallKind::of(insn);
        let table = if kind == CallKind::Helper {
            helper_name(insn.imm).map(str::to_owned)
        } else {
            None
        };
        let site = CallSite {
            index,
            insn: *insn,
            kind,
        };
        let name = table.or_else(|| self.call_resolver.and_then(|r| r(&site)));
        if kind == CallKind::BpfToBpf {
            let name = name.unwrap_or_else(|| format!("{:+}", insn.imm));
            let _ = write!(out, "({code:02x}) call pc{name}");
        } else {
            let name = name.unwrap_or_else(|| {
                if kind == CallKind::Kfunc {
                    "kernel-function".to_owned()
                } else {
                    "unknown".to_owned()
                }
            });
            let _ = write!(out, "({code:02x}) call {name}#{}", insn.imm);
        }
    }
}

fn st(insn: &Insn, out: &mut String) {
    let code = insn.code;
    match code & 0xe0 {
        BPF_MEM => {
            let _ = write!(
                out,
                "({code:02x}) *({} *)(r{} {:+}) = {}",
                ldst_size(code),
                insn.dst(),
                insn.off,
                insn.imm
            );
        }
        BPF_NOSPEC => {
            let _ = write!(out, "({code:02x}) nospec");
        }
        _ => {
            let _ = write!(out, "BUG_st_{code:02x}");
        }
    }
}

/// bpftool's `fprint_hex(f, data, n, " ")`: two lowercase hex digits per byte, space-separated.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Instruction;
    use proptest::prelude::*;

    fn text(insns: &[Insn]) -> String {
        Disasm::new().insn_text(insns, 0).unwrap()
    }
    fn text71(insns: &[Insn]) -> String {
        Disasm::new()
            .dialect(Dialect::Bpftool71)
            .insn_text(insns, 0)
            .unwrap()
    }
    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn::new(code, dst, src, off, imm)
    }

    #[test]
    fn classic_forms() {
        let cases: &[(Insn, &str)] = &[
            (i(0x61, 0, 2, 0, 0), "(61) r0 = *(u32 *)(r2 +0)"),
            (i(0x35, 0, 0, 5, 3), "(35) if r0 >= 0x3 goto pc+5"),
            (i(0xb7, 0, 0, 0, 1000), "(b7) r0 = 1000"),
            (i(0xb7, 1, 0, 0, -9), "(b7) r1 = -9"),
            (i(0xbf, 1, 6, 0, 0), "(bf) r1 = r6"),
            (i(0x07, 1, 0, 0, 312), "(07) r1 += 312"),
            (i(0x0c, 0, 1, 0, 0), "(0c) w0 += w1"),
            (i(0x26, 1, 0, 2, 3), "(26) if w1 > 0x3 goto pc+2"),
            (i(0xc6, 7, 0, 3, -999), "(c6) if w7 s< 0xfffffc19 goto pc+3"),
            (
                i(0x56, 6, 0, -12, -8),
                "(56) if w6 != 0xfffffff8 goto pc-12",
            ),
            (i(0x2d, 3, 2, 71, 0), "(2d) if r3 > r2 goto pc+71"),
            (i(0x87, 3, 0, 0, 0), "(87) r3 = -r3"),
            (i(0x84, 2, 0, 0, 0), "(84) w2 = -w2"),
            (i(0xdc, 0, 0, 0, 16), "(dc) r0 = be16 r0"),
            (i(0xd4, 5, 0, 0, 64), "(d4) r5 = le64 r5"),
            (i(0x7b, 10, 1, -24, 0), "(7b) *(u64 *)(r10 -24) = r1"),
            (i(0x62, 10, 0, -4, 0), "(62) *(u32 *)(r10 -4) = 0"),
            (i(0x72, 1, 0, 3, -1), "(72) *(u8 *)(r1 +3) = -1"),
            (i(0xdb, 1, 2, 0, 0), "(db) lock *(u64 *)(r1 +0) += r2"),
            (i(0xc3, 0, 1, 16, 0x40), "(c3) lock *(u32 *)(r0 +16) |= r1"),
            (
                i(0xdb, 1, 2, 0, 0x01),
                "(db) r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)",
            ),
            (
                i(0xc3, 0, 1, 16, 0x41),
                "(c3) r1 = atomic_fetch_or((u32 *)(r0 +16), r1)",
            ),
            (
                i(0xc3, 0, 1, 20, 0xe1),
                "(c3) r1 = atomic_xchg((u32 *)(r0 +20), r1)",
            ),
            (
                i(0xdb, 1, 7, 0, 0xf1),
                "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r7)",
            ),
            (i(0x30, 0, 0, 0, 12), "(30) r0 = *(u8 *)skb[12]"),
            (i(0x48, 0, 3, 0, -2), "(48) r0 = *(u16 *)skb[r3 + -2]"),
            (i(0x05, 0, 0, -6, 0), "(05) goto pc-6"),
            (i(0x95, 0, 0, 0, 0), "(95) exit"),
            (i(0x85, 0, 0, 0, 1), "(85) call bpf_map_lookup_elem#1"),
            (i(0x85, 0, 0, 0, 12), "(85) call bpf_tail_call#12"),
            (i(0x85, 0, 0, 0, 350240), "(85) call unknown#350240"),
            (i(0x85, 0, 0, 0, -125920), "(85) call unknown#-125920"),
            (i(0x85, 0, 1, 0, 3), "(85) call pc+3"),
            (i(0x85, 0, 1, 0, -20), "(85) call pc-20"),
            (i(0x85, 0, 2, 0, 1234), "(85) call kernel-function#1234"),
            (i(0xc2, 0, 0, 0, 0), "(c2) nospec"),
            (i(0x99, 0, 0, 0, 0), "(99) r0 = *((null) *)(r0 +0)"),
            (i(0x79, 0, 0, 0, 0), "(79) r0 = *(u64 *)(r0 +0)"),
            (i(0xe4, 0, 0, 0, 0), "(e4) w0 (null) 0"),
            (i(0xf5, 1, 0, 1, 2), "(f5) if r1 (null) 0x2 goto pc+1"),
            (i(0x96, 0, 0, 0, 0), "(96) if w0 exit 0x0 goto pc+0"),
            (i(0x0d, 1, 0, 0, 0), "(0d) if r1 jmp r0 goto pc+0"),
            (i(0x1e, 1, 2, -1, 0), "(1e) if w1 == w2 goto pc-1"),
            (i(0xb4, 1, 0, 8, 5), "(b4) w1 = 5"),
            (i(0x28, 0, 0, 0, 0), "(28) r0 = *(u16 *)skb[0]"),
            (i(0x08, 0, 0, 0, 0), "BUG_ld_08"),
            (i(0x60, 0, 0, 0, 0), "BUG_ld_60"),
            (i(0x00, 0, 0, 0, 0), "BUG_ld_00"),
            (i(0xa2, 0, 0, 0, 0), "BUG_st_a2"),
            (i(0xe3, 0, 0, 0, 0), "BUG_e3"),
            (i(0xdb, 0, 0, 0, 0x20), "BUG_db"),
        ];
        for (insn, want) in cases {
            assert_eq!(&text(&[*insn]), want, "{insn:?}");
        }
    }

    #[test]
    fn v4_forms_in_the_current_kernel_dialect() {
        let cases: &[(Insn, &str)] = &[
            (i(0x3f, 1, 2, 1, 0), "(3f) r1 s/= r2"),
            (i(0x37, 1, 0, 1, -7), "(37) r1 s/= -7"),
            (i(0x34, 1, 0, 1, 3), "(34) w1 s/= 3"),
            (i(0x9c, 1, 2, 1, 0), "(9c) w1 s%= w2"),
            (i(0x97, 2, 0, 1, 13), "(97) r2 s%= 13"),
            (i(0xbf, 1, 2, 8, 0), "(bf) r1 = (s8)r2"),
            (i(0xbf, 1, 2, 16, 0), "(bf) r1 = (s16)r2"),
            (i(0xbf, 5, 2, 32, 0), "(bf) r5 = (s32)r2"),
            (i(0xbc, 1, 1, 8, 0), "(bc) w1 = (s8)w1"),
            (i(0xbc, 1, 1, 16, 0), "(bc) w1 = (s16)w1"),
            (i(0x91, 2, 1, 0, 0), "(91) r2 = *(s8 *)(r1 +0)"),
            (i(0x89, 0, 1, 2, 0), "(89) r0 = *(s16 *)(r1 +2)"),
            (i(0x81, 3, 2, -4, 0), "(81) r3 = *(s32 *)(r2 -4)"),
            (i(0xd7, 0, 0, 0, 16), "(d7) r0 = bswap16 r0"),
            (i(0xd7, 3, 0, 0, 32), "(d7) r3 = bswap32 r3"),
            (i(0xd7, 7, 0, 0, 64), "(d7) r7 = bswap64 r7"),
            (i(0x06, 0, 0, 0, 70000), "(06) gotol pc+70000"),
            (i(0x06, 0, 0, 0, -3), "(06) gotol pc-3"),
            (i(0xbf, 0, 0, -1, 0), "(bf) r0 = &(void __percpu *)(r0)"),
            (i(0xbf, 1, 2, 1, 1), "(bf) r1 = addr_space_cast(r2, 0, 1)"),
            (
                i(0xbf, 1, 2, 1, 0x10000),
                "(bf) r1 = addr_space_cast(r2, 1, 0)",
            ),
            (i(0xe5, 0, 0, 3, 0), "(e5) may_goto pc+3"),
            (
                i(0xc3, 3, 2, 0, 0x100),
                "(c3) r3 = load_acquire((u32 *)(r2 +0))",
            ),
            (
                i(0xdb, 2, 3, 8, 0x110),
                "(db) store_release((u64 *)(r2 +8), r3)",
            ),
        ];
        for (insn, want) in cases {
            assert_eq!(&text(&[*insn]), want, "{insn:?}");
        }
    }

    #[test]
    fn v4_forms_in_the_bpftool_7_1_dialect() {
        let cases: &[(Insn, &str)] = &[
            (i(0x3f, 1, 2, 1, 0), "(3f) r1 /= r2"),
            (i(0x94, 1, 0, 1, -3), "(94) w1 %= -3"),
            (i(0xbf, 1, 2, 8, 0), "(bf) r1 = r2"),
            (i(0xbc, 1, 1, 16, 0), "(bc) w1 = w1"),
            (i(0x91, 2, 1, 0, 0), "BUG_ldx_91"),
            (i(0x89, 0, 1, 2, 0), "BUG_ldx_89"),
            (i(0xd7, 0, 0, 0, 16), "BUG_alu64_d7"),
            (i(0x06, 0, 0, 0, 1), "(06) if w0 jmp 0x1 goto pc+0"),
            (i(0xbf, 0, 0, -1, 0), "(bf) r0 = r0"),
            (i(0xbf, 1, 2, 1, 1), "(bf) r1 = r2"),
            (i(0xe5, 0, 0, 3, 0), "(e5) if r0 (null) 0x0 goto pc+3"),
            (i(0xc3, 3, 2, 0, 0x100), "BUG_c3"),
            (i(0xdb, 2, 3, 0, 0x110), "BUG_db"),
            // Unchanged by the dialect.
            (i(0xdc, 0, 0, 0, 16), "(dc) r0 = be16 r0"),
            (i(0x85, 0, 0, 0, 1), "(85) call bpf_map_lookup_elem#1"),
        ];
        for (insn, want) in cases {
            assert_eq!(&text71(&[*insn]), want, "{insn:?}");
        }
    }

    #[test]
    fn ld_imm64_operands() {
        let map = [i(0x18, 1, 1, 0, 63), i(0, 0, 0, 0, 0)];
        assert_eq!(text(&map), "(18) r1 = map[id:63]");
        let value = [i(0x18, 2, 2, 0, 97), i(0, 0, 0, 0, 8)];
        assert_eq!(text(&value), "(18) r2 = map[id:97][0]+8");
        let idx_value = [i(0x18, 2, 6, 0, 1), i(0, 0, 0, 0, 4)];
        assert_eq!(text(&idx_value), "(18) r2 = map[idx:1]+4");
        let func = [i(0x18, 2, 4, 0, 78), i(0, 0, 0, 0, 3)];
        assert_eq!(text(&func), "(18) r2 = subprog[+78]");
        let plain = [i(0x18, 0, 0, 0, -1), i(0, 0, 0, 0, 0x1234)];
        assert_eq!(text(&plain), "(18) r0 = 0x1234ffffffff");
        let kernel = Disasm::new().imm64_style(Imm64Style::Kernel {
            allow_ptr_leaks: false,
        });
        assert_eq!(kernel.insn_text(&map, 0).unwrap(), "(18) r1 = 0x0");
        assert_eq!(
            kernel.insn_text(&plain, 0).unwrap(),
            "(18) r0 = 0x1234ffffffff"
        );
        let leaky = Disasm::new().imm64_style(Imm64Style::Kernel {
            allow_ptr_leaks: true,
        });
        assert_eq!(leaky.insn_text(&map, 0).unwrap(), "(18) r1 = 0x3f");
        let custom = |a: &Insn, _: &Insn| (a.src() == 1).then(|| format!("map[name:m{}]", a.imm));
        let d = Disasm::new().imm64_formatter(&custom);
        assert_eq!(d.insn_text(&map, 0).unwrap(), "(18) r1 = map[name:m63]");
        assert_eq!(d.insn_text(&plain, 0).unwrap(), "(18) r0 = 0x1234ffffffff");
        assert_eq!(
            Disasm::new().insn_text(&map[..1], 0),
            Err(DisasmError::TruncatedLdImm64 { index: 0 })
        );
        assert_eq!(
            Disasm::new().insn_text(&map, 2),
            Err(DisasmError::IndexOutOfRange { index: 2, len: 2 })
        );
    }

    #[test]
    fn call_resolver_is_asked_after_the_helper_table() {
        let resolve = |site: &CallSite| match site.kind {
            CallKind::Helper => Some(format!("helper_at_{}", site.index)),
            CallKind::BpfToBpf => Some(format!("{:+}#bpf_prog_x_f", site.insn.off)),
            CallKind::Kfunc => Some("bpf_dynptr_from_xdp".to_owned()),
            CallKind::Other(_) => None,
        };
        let d = Disasm::new().call_resolver(&resolve);
        let prog = [
            i(0x85, 0, 0, 0, 1),
            i(0x85, 0, 0, 0, 350240),
            i(0x85, 0, 1, 67, 1),
            i(0x85, 0, 2, 0, 999),
            i(0x85, 0, 5, 0, 7),
        ];
        let lines: Vec<String> = (0..prog.len())
            .map(|n| d.insn_text(&prog, n).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "(85) call bpf_map_lookup_elem#1",
                "(85) call helper_at_1#350240",
                "(85) call pc+67#bpf_prog_x_f",
                "(85) call bpf_dynptr_from_xdp#999",
                "(85) call unknown#7",
            ]
        );
    }

    #[test]
    fn helper_table_matches_the_uapi_ids() {
        assert_eq!(helper_name(0), Some("bpf_unspec"));
        assert_eq!(helper_name(1), Some("bpf_map_lookup_elem"));
        assert_eq!(helper_name(5), Some("bpf_ktime_get_ns"));
        assert_eq!(helper_name(8), Some("bpf_get_smp_processor_id"));
        assert_eq!(helper_name(12), Some("bpf_tail_call"));
        assert_eq!(helper_name(26), Some("bpf_skb_load_bytes"));
        assert_eq!(helper_name(51), Some("bpf_redirect_map"));
        assert_eq!(helper_name(80), Some("bpf_get_current_cgroup_id"));
        assert_eq!(helper_name(130), Some("bpf_ringbuf_output"));
        assert_eq!(helper_name(181), Some("bpf_loop"));
        assert_eq!(helper_name(211), Some("bpf_cgrp_storage_delete"));
        assert_eq!(helper_name(212), None);
        assert_eq!(helper_name(-1), None);
    }

    #[test]
    fn dump_layout_matches_bpftool() {
        let prog = [
            i(0xb7, 0, 0, 0, 0),
            i(0x18, 1, 1, 0, 91),
            i(0, 0, 0, 0, 0),
            i(0x95, 0, 0, 0, 0),
        ];
        let d = Disasm::new();
        assert_eq!(
            d.dump_xlated(&prog, false).unwrap(),
            "   0: (b7) r0 = 0\n   1: (18) r1 = map[id:91]\n   3: (95) exit\n"
        );
        assert_eq!(
            d.dump_xlated(&prog, true).unwrap(),
            "   0: (b7) r0 = 0\n       b7 00 00 00 00 00 00 00\n\
             \x20  1: (18) r1 = map[id:91]\n       18 11 00 00 5b 00 00 00 00 00 00 00 00 00 00 00\n\
             \x20  3: (95) exit\n       95 00 00 00 00 00 00 00\n"
        );
        let mut seen = Vec::new();
        let annotated = d
            .dump_xlated_annotated(&prog, false, &mut |index, out| {
                seen.push(index);
                if index == 0 {
                    out.push_str("int prog(struct xdp_md * ctx):\n");
                }
                out.push_str(&format!("; line {index}\n"));
            })
            .unwrap();
        assert_eq!(seen, [0, 1, 3]);
        assert!(annotated.starts_with("int prog(struct xdp_md * ctx):\n; line 0\n   0: (b7)"));
        assert_eq!(index_prefix(7), "   7: ");
        assert_eq!(index_prefix(999), " 999: ");
        assert_eq!(index_prefix(1234), " 1234: ");
        assert_eq!(index_prefix(12345), " 12345: ");
        assert_eq!(
            d.lines(&prog)
                .unwrap()
                .iter()
                .map(|l| l.0)
                .collect::<Vec<_>>(),
            [0, 1, 3]
        );
    }

    proptest! {
        #[test]
        fn any_instruction_prints_without_panicking(words in proptest::collection::vec(any::<u64>(), 1..6)) {
            let insns: Vec<Insn> = words.iter().map(|w| Insn::from_u64(*w)).collect();
            for dialect in [Dialect::Linux618, Dialect::Bpftool71] {
                let d = Disasm::new().dialect(dialect);
                for index in 0..insns.len() {
                    match d.insn_text(&insns, index) {
                        Ok(t) => {
                            prop_assert!(!t.contains('\n'));
                            prop_assert!(t.starts_with('(') || t.starts_with("BUG_"), "{}", t);
                        }
                        Err(e) => prop_assert_eq!(e, DisasmError::TruncatedLdImm64 { index }),
                    }
                }
            }
        }

        #[test]
        fn decodable_instructions_print_with_their_opcode(code in any::<u8>(), regs in 0u8..=0xaa, off in prop_oneof![Just(0i16), Just(1), Just(8), Just(16), Just(32), any::<i16>()], imm in prop_oneof![Just(0i32), Just(1), Just(16), Just(32), Just(64), Just(0x100), Just(0x110), any::<i32>()]) {
            let insns = [Insn { code, regs, off, imm }, Insn::new(0, 0, 0, 0, 7)];
            if Instruction::decode(&insns, 0).is_ok() {
                let t = Disasm::new().insn_text(&insns, 0).unwrap();
                let prefix = format!("({code:02x}) ");
                prop_assert!(t.starts_with(&prefix), "{}", t);
                prop_assert!(!t.contains("(null)"), "{}", t);
            }
        }
    }
}

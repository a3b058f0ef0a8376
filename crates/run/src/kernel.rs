//! The kernel functions a translated program calls: kbpf's helper implementations (what
//! the kernel's `bpf_func_proto.func` points at), the map operations the rewrite calls
//! directly (`array_map_lookup_elem`, `__htab_map_lookup_elem`, …, from `kbpf-maps`), and
//! the per-CPU address hook.
//!
//! A translated `call imm` designates `__bpf_call_base + imm`, as in the kernel. Each entry
//! of [`KERNEL_FUNCTIONS`] pairs that target address with a *shim* of the interpreter's
//! helper signature (five `u64` in, one out), so an engine can call any target through one
//! calling convention without transmuting function pointers of other signatures.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kbpf_maps::raw as m;
use kbpf_rewrite::KernelFunctions;
use kbpf_verifier::ProgType;
use kbpf_vm::{Helper, HelperFn, HelperRegistry};

use crate::ctx::XdpBuff;
use crate::redirect as r;
use crate::ringbuf as rb;
use crate::skb_helpers as s;
use crate::sock_helpers as sk;
use crate::tracing as t;

/// `-EINVAL` as a helper's return register.
const EINVAL: u64 = (-(kbpf_uapi::errno::EINVAL as i64)) as u64;

/// One kernel function: its kallsyms name, the address translated programs call, and the
/// shim engines call it through.
#[derive(Clone, Copy)]
pub struct KernelFn {
    /// Helper id, for the helpers (`None` for map operations).
    pub helper_id: Option<i32>,
    /// Kernel name (`bpf_ktime_get_ns`, `array_map_lookup_elem`).
    pub name: &'static str,
    /// The call target.
    pub addr: fn() -> usize,
    /// The same function with the helper calling convention.
    pub shim: HelperFn,
}

impl std::fmt::Debug for KernelFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

macro_rules! map_op {
    ($name:ident / 2) => {{
        /// Shim of the map operation.
        unsafe extern "C" fn shim(a: u64, b: u64, _: u64, _: u64, _: u64) -> u64 {
            // SAFETY: the verifier checked the arguments of this call site as the kernel does
            // (a live map of the right type, a key/value of the map's size).
            unsafe { m::$name(a as *mut c_void, b as _) as u64 }
        }
        KernelFn {
            helper_id: None,
            name: stringify!($name),
            // The address kbpf-maps' ops tables and inline sequences use (see
            // `kbpf_maps::raw_function_addr` for why not `m::$name as usize`).
            addr: || kbpf_maps::raw_function_addr(stringify!($name)).unwrap_or(0),
            shim,
        }
    }};
    ($name:ident / 4) => {{
        /// Shim of the map operation.
        unsafe extern "C" fn shim(a: u64, b: u64, c: u64, d: u64, _: u64) -> u64 {
            // SAFETY: as above.
            unsafe { m::$name(a as *mut c_void, b as _, c as _, d) as u64 }
        }
        KernelFn {
            helper_id: None,
            name: stringify!($name),
            // The address kbpf-maps' ops tables and inline sequences use (see
            // `kbpf_maps::raw_function_addr` for why not `m::$name as usize`).
            addr: || kbpf_maps::raw_function_addr(stringify!($name)).unwrap_or(0),
            shim,
        }
    }};
    ($name:ident / 3) => {{
        /// Shim of the map operation.
        unsafe extern "C" fn shim(a: u64, b: u64, c: u64, _: u64, _: u64) -> u64 {
            // SAFETY: as above.
            unsafe { m::$name(a as *mut c_void, b as _, c) as u64 }
        }
        KernelFn {
            helper_id: None,
            name: stringify!($name),
            // The address kbpf-maps' ops tables and inline sequences use (see
            // `kbpf_maps::raw_function_addr` for why not `m::$name as usize`).
            addr: || kbpf_maps::raw_function_addr(stringify!($name)).unwrap_or(0),
            shim,
        }
    }};
    (helper $id:literal $name:ident / $n:tt) => {{
        let mut f = map_op!($name / $n);
        f.helper_id = Some($id);
        f
    }};
}

macro_rules! helper {
    ($id:literal, $name:literal, $f:path) => {
        KernelFn {
            helper_id: Some($id),
            name: $name,
            addr: || $f as *const () as usize,
            shim: $f,
        }
    };
}

/// Every kernel function kbpf provides to translated programs.
pub static KERNEL_FUNCTIONS: &[KernelFn] = &[
    // The generic map helpers: what a call site reached by several maps keeps.
    map_op!(helper 1 bpf_map_lookup_elem / 2),
    map_op!(helper 2 bpf_map_update_elem / 4),
    map_op!(helper 3 bpf_map_delete_elem / 2),
    map_op!(helper 87 bpf_map_push_elem / 3),
    map_op!(helper 88 bpf_map_pop_elem / 2),
    map_op!(helper 89 bpf_map_peek_elem / 2),
    // Per-type operations: direct calls and the calls inside inline sequences.
    map_op!(array_map_lookup_elem / 2),
    map_op!(percpu_array_map_lookup_elem / 2),
    map_op!(array_of_map_lookup_elem / 2),
    map_op!(fd_array_map_lookup_elem / 2),
    map_op!(__htab_map_lookup_elem / 2),
    map_op!(htab_map_lookup_elem / 2),
    map_op!(htab_lru_map_lookup_elem / 2),
    map_op!(htab_percpu_map_lookup_elem / 2),
    map_op!(htab_lru_percpu_map_lookup_elem / 2),
    map_op!(htab_of_map_lookup_elem / 2),
    map_op!(queue_stack_map_lookup_elem / 2),
    map_op!(ringbuf_map_lookup_elem / 2),
    map_op!(array_map_update_elem / 4),
    map_op!(percpu_array_map_update_elem / 4),
    map_op!(htab_map_update_elem / 4),
    map_op!(htab_lru_map_update_elem / 4),
    map_op!(htab_percpu_map_update_elem / 4),
    map_op!(htab_lru_percpu_map_update_elem / 4),
    map_op!(map_update_elem_unsupported / 4),
    map_op!(queue_stack_map_update_elem / 4),
    map_op!(ringbuf_map_update_elem / 4),
    map_op!(array_map_delete_elem / 2),
    map_op!(htab_map_delete_elem / 2),
    map_op!(htab_lru_map_delete_elem / 2),
    map_op!(map_delete_elem_unsupported / 2),
    map_op!(queue_stack_map_delete_elem / 2),
    map_op!(ringbuf_map_delete_elem / 2),
    map_op!(queue_stack_map_push_elem / 3),
    map_op!(map_push_elem_unsupported / 3),
    map_op!(queue_stack_map_pop_elem / 2),
    map_op!(queue_stack_map_peek_elem / 2),
    map_op!(map_pop_elem_unsupported / 2),
    // LPM tries: no map_gen_lookup, direct calls of the trie's own operations.
    map_op!(trie_lookup_elem / 2),
    map_op!(trie_update_elem / 4),
    map_op!(trie_delete_elem / 2),
    // Devmaps: direct calls of their lookups.
    map_op!(dev_map_lookup_elem / 2),
    map_op!(dev_map_hash_lookup_elem / 2),
    helper!(5, "bpf_ktime_get_ns", bpf_ktime_get_ns),
    helper!(6, "bpf_trace_printk", bpf_trace_printk),
    helper!(7, "bpf_user_rnd_u32", bpf_user_rnd_u32),
    helper!(8, "bpf_get_smp_processor_id", bpf_get_smp_processor_id),
    helper!(12, "bpf_tail_call", crate::tail_call::bpf_tail_call),
    helper!(28, "bpf_csum_diff", bpf_csum_diff),
    helper!(44, "bpf_xdp_adjust_head", bpf_xdp_adjust_head),
    helper!(54, "bpf_xdp_adjust_meta", bpf_xdp_adjust_meta),
    helper!(65, "bpf_xdp_adjust_tail", bpf_xdp_adjust_tail),
    helper!(118, "bpf_jiffies64", bpf_jiffies64),
    helper!(93, "bpf_spin_lock", bpf_spin_lock),
    helper!(106, "bpf_strtoul", crate::str_helpers::bpf_strtoul),
    helper!(94, "bpf_spin_unlock", bpf_spin_unlock),
    helper!(125, "bpf_ktime_get_boot_ns", bpf_ktime_get_ns),
    helper!(4, "bpf_probe_read_compat", t::bpf_probe_read_compat),
    helper!(14, "bpf_get_current_pid_tgid", t::bpf_get_current_pid_tgid),
    helper!(16, "bpf_get_current_comm", t::bpf_get_current_comm),
    helper!(27, "bpf_get_stackid", t::bpf_get_stackid),
    helper!(35, "bpf_get_current_task", t::bpf_get_current_task),
    helper!(15, "bpf_get_current_uid_gid", t::bpf_get_current_uid_gid),
    helper!(67, "bpf_get_stack_tp", t::bpf_get_stack),
    helper!(112, "bpf_probe_read_user", t::bpf_probe_read_user),
    helper!(113, "bpf_probe_read_kernel", t::bpf_probe_read_kernel),
    helper!(114, "bpf_probe_read_user_str", t::bpf_probe_read_user_str),
    helper!(
        115,
        "bpf_probe_read_kernel_str",
        t::bpf_probe_read_kernel_str
    ),
    helper!(160, "bpf_ktime_get_coarse_ns", t::bpf_ktime_get_coarse_ns),
    helper!(130, "bpf_ringbuf_output", rb::bpf_ringbuf_output),
    helper!(131, "bpf_ringbuf_reserve", rb::bpf_ringbuf_reserve),
    helper!(132, "bpf_ringbuf_submit", rb::bpf_ringbuf_submit),
    helper!(133, "bpf_ringbuf_discard", rb::bpf_ringbuf_discard),
    helper!(134, "bpf_ringbuf_query", rb::bpf_ringbuf_query),
    helper!(9, "bpf_skb_store_bytes", s::bpf_skb_store_bytes),
    helper!(26, "bpf_skb_load_bytes", s::bpf_skb_load_bytes),
    helper!(34, "bpf_get_hash_recalc", s::bpf_get_hash_recalc),
    helper!(40, "bpf_csum_update", s::bpf_csum_update),
    helper!(50, "bpf_skb_adjust_room", s::bpf_skb_adjust_room),
    helper!(43, "bpf_skb_change_head", s::bpf_skb_change_head),
    helper!(39, "bpf_skb_pull_data", s::bpf_skb_pull_data),
    helper!(21, "bpf_skb_set_tunnel_key", s::bpf_skb_set_tunnel_key),
    helper!(20, "bpf_skb_get_tunnel_key", s::bpf_skb_get_tunnel_key),
    helper!(23, "bpf_redirect", r::bpf_redirect),
    helper!(51, "bpf_xdp_redirect_map", r::bpf_xdp_redirect_map),
    helper!(25, "bpf_skb_event_output", s::bpf_skb_event_output),
    helper!(69, "bpf_skb_fib_lookup", s::bpf_skb_fib_lookup),
    // XDP's bpf_fib_lookup (see PER_TYPE).
    KernelFn {
        helper_id: None,
        ..helper!(69, "bpf_xdp_fib_lookup", crate::fib::bpf_xdp_fib_lookup)
    },
    helper!(84, "bpf_sk_lookup_tcp", sk::bpf_sk_lookup_tcp),
    helper!(85, "bpf_sk_lookup_udp", sk::bpf_sk_lookup_udp),
    helper!(86, "bpf_sk_release", sk::bpf_sk_release),
    helper!(
        81,
        "bpf_get_local_storage",
        crate::cgroup_storage::bpf_get_local_storage
    ),
    helper!(
        107,
        "bpf_sk_storage_get",
        crate::sk_storage::bpf_sk_storage_get
    ),
    helper!(
        108,
        "bpf_sk_storage_delete",
        crate::sk_storage::bpf_sk_storage_delete
    ),
    helper!(99, "bpf_skc_lookup_tcp", sk::bpf_skc_lookup_tcp),
    helper!(95, "bpf_sk_fullsock", sk::bpf_sk_fullsock),
    helper!(96, "bpf_tcp_sock", sk::bpf_tcp_sock),
    helper!(98, "bpf_get_listener_sock", sk::bpf_get_listener_sock),
    // The legacy packet loads' functions (bpf_gen_ld_abs calls them directly).
    KernelFn {
        helper_id: None,
        ..helper!(
            0,
            "bpf_skb_load_helper_8_no_cache",
            s::bpf_skb_load_helper_8_no_cache
        )
    },
    KernelFn {
        helper_id: None,
        ..helper!(
            0,
            "bpf_skb_load_helper_16_no_cache",
            s::bpf_skb_load_helper_16_no_cache
        )
    },
    KernelFn {
        helper_id: None,
        ..helper!(
            0,
            "bpf_skb_load_helper_32_no_cache",
            s::bpf_skb_load_helper_32_no_cache
        )
    },
    // XDP's and the tracing types' bpf_perf_event_output (see PER_TYPE).
    KernelFn {
        helper_id: None,
        ..helper!(25, "bpf_xdp_event_output", bpf_xdp_event_output)
    },
    KernelFn {
        helper_id: None,
        ..helper!(25, "bpf_perf_event_output", t::bpf_perf_event_output)
    },
    KernelFn {
        helper_id: None,
        ..helper!(25, "bpf_perf_event_output_tp", t::bpf_perf_event_output_tp)
    },
    KernelFn {
        helper_id: None,
        ..helper!(
            25,
            "bpf_perf_event_output_raw_tp",
            t::bpf_perf_event_output_raw_tp
        )
    },
    // The maps' `map_redirect`, which the rewrite calls directly for a known map.
    KernelFn {
        helper_id: None,
        ..helper!(51, "dev_map_redirect", r::dev_map_redirect)
    },
    KernelFn {
        helper_id: None,
        ..helper!(51, "dev_hash_map_redirect", r::dev_hash_map_redirect)
    },
    KernelFn {
        helper_id: None,
        ..helper!(51, "cpu_map_redirect", r::cpu_map_redirect)
    },
    KernelFn {
        helper_id: None,
        ..helper!(51, "xsk_map_redirect", r::xsk_map_redirect)
    },
    // XDP's bpf_redirect (see PER_TYPE).
    KernelFn {
        helper_id: None,
        ..helper!(23, "bpf_xdp_redirect", r::bpf_xdp_redirect)
    },
];

/// Helpers whose kernel function depends on the program type (the type's `get_func_proto`
/// returns another `bpf_func_proto`): program type, helper id, kernel function.
const PER_TYPE: &[(ProgType, i32, &str)] = &[
    (ProgType::Xdp, 23, "bpf_xdp_redirect"),
    (ProgType::Xdp, 25, "bpf_xdp_event_output"),
    (ProgType::Kprobe, 25, "bpf_perf_event_output"),
    (ProgType::Tracepoint, 25, "bpf_perf_event_output_tp"),
    (ProgType::PerfEvent, 25, "bpf_perf_event_output_tp"),
    (ProgType::RawTracepoint, 25, "bpf_perf_event_output_raw_tp"),
    (ProgType::Xdp, 69, "bpf_xdp_fib_lookup"),
];

/// kbpf's [`KernelFunctions`] for the rewrite.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kbpf;

impl KernelFunctions for Kbpf {
    fn helper(&self, prog_type: ProgType, id: i32) -> Option<usize> {
        if let Some(&(_, _, name)) = PER_TYPE
            .iter()
            .find(|&&(t, i, _)| t == prog_type.rules() && i == id)
        {
            return KERNEL_FUNCTIONS
                .iter()
                .find(|f| f.name == name)
                .map(|f| (f.addr)());
        }
        KERNEL_FUNCTIONS
            .iter()
            .find(|f| f.helper_id == Some(id))
            .map(|f| (f.addr)())
    }

    fn name(&self, addr: usize) -> Option<&'static str> {
        KERNEL_FUNCTIONS
            .iter()
            .find(|f| (f.addr)() == addr)
            .map(|f| f.name)
    }

    fn cpu_number(&self) -> Option<u32> {
        kbpf_maps::cpu_number_addr()
    }

    fn function(&self, name: &str) -> Option<usize> {
        KERNEL_FUNCTIONS
            .iter()
            .find(|f| f.name == name)
            .map(|f| (f.addr)())
    }
}

/// What the JIT may emit instead of calling `name`: `array_map_lookup_elem`, the direct call
/// the rewrite makes for `BPF_F_INNER_MAP` arrays (whose bound is not a constant), becomes
/// a bound check and an address computation reading the bound, element size and value
/// offset from the array's header, as the function itself does.
fn inline_body(name: &str) -> Option<kbpf_vm::HelperInline> {
    use kbpf_maps::layout::{BpfArray, BpfMap};
    use std::mem::offset_of;
    (name == "array_map_lookup_elem").then(|| kbpf_vm::HelperInline::ArrayLookup {
        max_entries: (offset_of!(BpfArray, map) + offset_of!(BpfMap, max_entries)) as i32,
        elem_size: offset_of!(BpfArray, elem_size) as i32,
        value_off: offset_of!(BpfArray, value_off) as i32,
    })
}

/// The engine-side wiring of a translated program: every call target as a helper under its
/// call immediate, plus the per-CPU hook and `bpf_tail_call` by its helper id.
pub fn registry_for(call_imms: impl IntoIterator<Item = i32>) -> HelperRegistry {
    let mut reg = HelperRegistry::new();
    for imm in call_imms {
        let addr = kbpf_maps::call_target(imm);
        if let Some(f) = KERNEL_FUNCTIONS.iter().find(|f| (f.addr)() == addr) {
            reg.register(
                imm,
                Helper {
                    name: f.name,
                    func: f.shim,
                    unwind_on_zero: false,
                    keep_r0_on_failure: false,
                    frame_result: None,
                    inline: inline_body(f.name),
                },
            );
        }
    }
    reg.register(12, crate::tail_call::helper());
    reg.register(
        kbpf_vm::helpers::THIS_CPU_PTR_ID,
        Helper {
            name: "this_cpu_ptr",
            func: this_cpu_ptr,
            unwind_on_zero: false,
            keep_r0_on_failure: false,
            frame_result: None,
            inline: None,
        },
    );
    reg
}

/// `this_cpu_ptr(p)` for the per-CPU address move.
unsafe extern "C" fn this_cpu_ptr(p: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: the move only appears in kbpf-maps' per-CPU inline sequences, applied to a
    // per-CPU value pointer those maps handed out (or NULL).
    unsafe { kbpf_maps::bpf_this_cpu_ptr(p as *mut c_void) as u64 }
}

fn boot() -> &'static Instant {
    static BOOT: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BOOT.get_or_init(Instant::now)
}

/// `bpf_ktime_get_ns`: monotonic nanoseconds (since kbpf's first use).
unsafe extern "C" fn bpf_ktime_get_ns(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    boot().elapsed().as_nanos() as u64
}

/// `HZ` of the jiffies kbpf counts (the usual x86-64 distribution kernel's `CONFIG_HZ`).
const HZ: u64 = 250;

/// `bpf_jiffies64`: ticks of `HZ` since kbpf's first use (the kernel's `get_jiffies_64`).
unsafe extern "C" fn bpf_jiffies64(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    (boot().elapsed().as_nanos() as u64) / (1_000_000_000 / HZ)
}

/// `bpf_spin_lock(lock)`: takes the `struct bpf_spin_lock` (a `u32`) in a map value, spinning
/// while another program holds it (the kernel's `arch_spin_lock` with IRQs off; the verifier
/// makes the program release it before any call or exit).
unsafe extern "C" fn bpf_spin_lock(lock: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    use std::sync::atomic::AtomicU32;
    // SAFETY: the verifier checked `lock` as the 4-byte aligned `bpf_spin_lock` field of a
    // live map value (ARG_PTR_TO_SPIN_LOCK); map values are shared, hence atomic access.
    let l = unsafe { AtomicU32::from_ptr(lock as *mut u32) };
    while l
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    0
}

/// `bpf_spin_unlock(lock)`: releases it.
unsafe extern "C" fn bpf_spin_unlock(lock: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    use std::sync::atomic::AtomicU32;
    // SAFETY: as in `bpf_spin_lock`; the verifier checked the program holds this lock.
    let l = unsafe { AtomicU32::from_ptr(lock as *mut u32) };
    l.store(0, Ordering::Release);
    0
}

/// `bpf_get_smp_processor_id`: the thread's CPU number for per-CPU maps.
unsafe extern "C" fn bpf_get_smp_processor_id(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    kbpf_maps::current_cpu() as u64
}

/// `bpf_user_rnd_u32` (`bpf_get_prandom_u32`): a per-thread xorshift generator.
unsafe extern "C" fn bpf_user_rnd_u32(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            0x9e37_79b9_7f4a_7c15 ^ (boot().elapsed().as_nanos() as u64),
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 32) as u32 as u64
    })
}

/// What `bpf_trace_printk` wrote, as `/sys/kernel/tracing/trace_pipe` would show the
/// messages (one per call).
static TRACE: Mutex<Vec<String>> = Mutex::new(Vec::new());
static TRACE_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Takes the messages `bpf_trace_printk` produced so far.
pub fn take_trace() -> Vec<String> {
    std::mem::take(&mut *TRACE.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `bpf_trace_printk(fmt, fmt_size, a1, a2, a3)`: `%d %i %u %x %ld %lu %lx %lld %llu %llx
/// %p %%`; returns the number of bytes written.
unsafe extern "C" fn bpf_trace_printk(fmt: u64, size: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    if fmt == 0 || size == 0 {
        return EINVAL;
    }
    // SAFETY: the verifier checked that [fmt, fmt + size) is readable memory
    // (ARG_PTR_TO_MEM | MEM_RDONLY with ARG_CONST_SIZE).
    let bytes = unsafe { std::slice::from_raw_parts(fmt as *const u8, size as usize) };
    let Some(end) = bytes.iter().position(|&b| b == 0) else {
        return EINVAL;
    };
    let f = String::from_utf8_lossy(&bytes[..end]);
    let args = [a1, a2, a3];
    let mut next = 0;
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut longs = 0;
        while chars.peek() == Some(&'l') {
            chars.next();
            longs += 1;
        }
        let Some(conv) = chars.next() else { break };
        if conv == '%' {
            out.push('%');
            continue;
        }
        let Some(&v) = args.get(next) else {
            return EINVAL;
        };
        next += 1;
        let v32 = longs == 0;
        match conv {
            'd' | 'i' => {
                if v32 {
                    out.push_str(&(v as i32).to_string())
                } else {
                    out.push_str(&(v as i64).to_string())
                }
            }
            'u' => {
                if v32 {
                    out.push_str(&(v as u32).to_string())
                } else {
                    out.push_str(&v.to_string())
                }
            }
            'x' => {
                if v32 {
                    out.push_str(&format!("{:x}", v as u32))
                } else {
                    out.push_str(&format!("{v:x}"))
                }
            }
            'p' => out.push_str(&format!("{v:#x}")),
            _ => return EINVAL,
        }
    }
    let n = out.len() as u64;
    let mut t = TRACE.lock().unwrap_or_else(|e| e.into_inner());
    if t.len() < 65_536 {
        t.push(out);
    } else {
        TRACE_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    n
}

/// The kernel's `csum_partial` folding as `bpf_csum_diff` uses it: the 32-bit one's
/// complement sum of `data` added to `seed`.
fn csum_partial(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed as u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        sum += u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 4];
        b[..rest.len()].copy_from_slice(rest);
        sum += u32::from_ne_bytes(b) as u64;
    }
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

/// One's complement 32-bit add (`csum_add`).
fn csum_add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s.wrapping_add(carry as u32)
}

/// `csum_from32to16`: folds a 32-bit partial sum to 16 bits.
fn csum_from32to16(sum: u32) -> u32 {
    sum.wrapping_add(sum.rotate_right(16)) >> 16
}

/// `bpf_csum_diff(from, from_size, to, to_size, seed)` as Linux 6.18 computes it: the
/// one's complement sum of `to` (plus `seed`) minus that of `from`, folded to 16 bits. Sizes
/// are multiples of 4, at most 512 bytes together.
unsafe extern "C" fn bpf_csum_diff(
    from: u64,
    from_size: u64,
    to: u64,
    to_size: u64,
    seed: u64,
) -> u64 {
    let (fs, ts) = (from_size as usize, to_size as usize);
    if (fs | ts) % 4 != 0 || fs + ts > 512 || (fs > 0 && from == 0) || (ts > 0 && to == 0) {
        return EINVAL;
    }
    let seed = seed as u32;
    let bytes = |p: u64, n: usize| -> &[u8] {
        if n == 0 {
            return &[];
        }
        // SAFETY: the verifier checked each non-empty (pointer, size) pair as readable
        // memory, and the pointer is non-NULL (checked above).
        unsafe { std::slice::from_raw_parts(p as *const u8, n) }
    };
    let (f, t) = (bytes(from, fs), bytes(to, ts));
    let r = match (fs > 0, ts > 0) {
        (true, true) => csum_from32to16(csum_add(csum_partial(t, seed), !csum_partial(f, 0))),
        (false, true) => csum_from32to16(csum_partial(t, seed)),
        (true, false) => csum_from32to16(!csum_partial(f, !seed)),
        (false, false) => seed,
    };
    r as u64
}

/// `bpf_xdp_adjust_head(ctx, delta)`.
unsafe extern "C" fn bpf_xdp_adjust_head(ctx: u64, delta: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: the verifier checked that r1 is the program's context, an `XdpBuff` of kbpf's.
    let xdp = unsafe { &mut *(ctx as *mut XdpBuff) };
    xdp.adjust_head(delta as i32) as u64
}

/// `bpf_xdp_event_output(xdp, map, flags, meta, meta_size)` (`bpf_perf_event_output` of XDP
/// programs): `meta` and the first `(flags & BPF_F_CTXLEN_MASK) >> 32` packet bytes;
/// `-EINVAL` for other flags, `-EFAULT` past the packet, then the event's errno
/// ([`kbpf_maps::raw::perf_event_output`]).
unsafe extern "C" fn bpf_xdp_event_output(
    ctx: u64,
    map: u64,
    flags: u64,
    meta: u64,
    meta_size: u64,
) -> u64 {
    use kbpf_maps::perf_event::{BPF_F_CTXLEN_MASK, BPF_F_INDEX_MASK};
    use kbpf_maps::raw::perf_event_output as output;
    if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 {
        return EINVAL;
    }
    let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    // SAFETY: r1 is the program's `XdpBuff`, `meta` `meta_size` readable bytes, `map` a
    // PERF_EVENT_ARRAY (verifier-checked); the packet is [data, data_end).
    unsafe {
        let xdp = &*(ctx as *const XdpBuff);
        let len = xdp.data_end as usize - xdp.data as usize;
        if ctx_len > len {
            return (-14i64) as u64;
        }
        let pkt = std::slice::from_raw_parts(xdp.data as *const u8, ctx_len);
        output(
            map as *mut c_void,
            flags,
            &[s::meta_bytes(meta, meta_size), pkt],
        ) as u64
    }
}

/// `bpf_xdp_adjust_meta(ctx, delta)`.
unsafe extern "C" fn bpf_xdp_adjust_meta(ctx: u64, delta: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: as above.
    let xdp = unsafe { &mut *(ctx as *mut XdpBuff) };
    xdp.adjust_meta(delta as i32) as u64
}

/// `bpf_xdp_adjust_tail(ctx, delta)`.
unsafe extern "C" fn bpf_xdp_adjust_tail(ctx: u64, delta: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: as above.
    let xdp = unsafe { &mut *(ctx as *mut XdpBuff) };
    xdp.adjust_tail(delta as i32) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_map_operation_is_known_to_kbpf_maps() {
        for f in KERNEL_FUNCTIONS.iter().filter(|f| f.name.contains("map")) {
            assert_ne!(
                (f.addr)(),
                0,
                "{} missing from kbpf_maps' raw functions",
                f.name
            );
        }
    }

    #[test]
    fn every_kernel_function_has_a_distinct_address_and_name() {
        let mut addrs: Vec<usize> = KERNEL_FUNCTIONS.iter().map(|f| (f.addr)()).collect();
        addrs.sort_unstable();
        let n = addrs.len();
        addrs.dedup();
        if addrs.len() != n - 1 {
            let mut by: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
            for f in KERNEL_FUNCTIONS {
                by.entry((f.addr)()).or_default().push(f.name);
            }
            let shared: Vec<_> = by.values().filter(|v| v.len() > 1).collect();
            panic!("functions sharing an address: {shared:?}");
        }
        // bpf_ktime_get_boot_ns shares bpf_ktime_get_ns's implementation.
        assert_eq!(addrs.len(), n - 1);
        assert_eq!(
            Kbpf.name(Kbpf.helper(ProgType::Xdp, 5).unwrap()),
            Some("bpf_ktime_get_ns")
        );
        assert_eq!(
            Kbpf.name(kbpf_maps::lookup_fn(kbpf_maps::MapType::Array)),
            Some("array_map_lookup_elem")
        );
    }

    /// `bpf_jiffies64` is a base helper every program type may call, and it never goes back.
    #[test]
    fn jiffies64_is_known_and_monotonic() {
        assert!(kbpf_verifier::helpers::func_proto(ProgType::SocketFilter, 118).is_some());
        assert!(Kbpf.helper(ProgType::SocketFilter, 118).is_some());
        // SAFETY: the helper reads no arguments.
        let a = unsafe { bpf_jiffies64(0, 0, 0, 0, 0) };
        std::thread::sleep(std::time::Duration::from_millis(2 * 1000 / HZ));
        // SAFETY: as above.
        let b = unsafe { bpf_jiffies64(0, 0, 0, 0, 0) };
        assert!(b > a, "{a} then {b}");
    }

    #[test]
    fn csum_diff_is_the_folded_difference() {
        let old = 0x0a00_0001u32.to_be_bytes();
        let new = 0x0a00_0002u32.to_be_bytes();
        // SAFETY: valid 4-byte buffers.
        let d = unsafe { bpf_csum_diff(old.as_ptr() as u64, 4, new.as_ptr() as u64, 4, 0) };
        // Native words: new = 0x0200000a, !old = 0xfefffff5; their sum 0x1_00ffffff wraps
        // to 0x01000000, which folds to 0x0100: the RFC 1624 delta of 0x0001 in the last
        // byte, in native order.
        assert_eq!(d, 0x0100);
        // SAFETY: as above.
        let only_to = unsafe { bpf_csum_diff(0, 0, new.as_ptr() as u64, 4, 0) };
        assert_eq!(only_to, csum_from32to16(0x0200_000a) as u64);
        // Sizes must be multiples of 4.
        // SAFETY: as above.
        let e = unsafe { bpf_csum_diff(old.as_ptr() as u64, 3, new.as_ptr() as u64, 4, 0) };
        assert_eq!(e as i64, -22);
    }

    #[test]
    fn trace_printk_formats_like_the_kernel() {
        let fmt = b"v=%d u=%u x=%llx\0";
        // SAFETY: a NUL-terminated buffer of the given size.
        let n = unsafe {
            bpf_trace_printk(
                fmt.as_ptr() as u64,
                fmt.len() as u64,
                (-5i64) as u64,
                7,
                0xabc,
            )
        };
        let t = take_trace();
        assert_eq!(t.last().map(String::as_str), Some("v=-5 u=7 x=abc"));
        assert_eq!(n, "v=-5 u=7 x=abc".len() as u64);
    }
}

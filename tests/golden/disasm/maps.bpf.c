// SPDX-License-Identifier: MIT OR Apache-2.0
// Golden disassembly corpus: array/hash/percpu maps, global data (map values),
// atomics (add/or/and/xor with and without fetch, xchg, cmpxchg), helper calls,
// a tail call, and bpf_get_smp_processor_id (inlined by 6.x kernels).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct stats {
	__u64 packets;
	__u64 bytes;
	__u32 flags;
	__u32 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct stats);
} stats_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jump_table SEC(".maps");

__u64 global_counter = 0;
__u32 global_flags = 0;
volatile const __u32 config_shift = 3;

SEC("xdp")
int maps_prog(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 key = len & 15;
	__u64 flow = ((__u64)ctx->ingress_ifindex << 32) | ctx->rx_queue_index;
	struct stats *s, fresh = {};
	__u64 *pc;
	__u32 cpu, zero = 0;

	s = bpf_map_lookup_elem(&stats_array, &key);
	if (!s)
		return XDP_ABORTED;
	__sync_fetch_and_add(&s->packets, 1);
	__sync_fetch_and_add(&s->bytes, len);
	__sync_fetch_and_or(&s->flags, 4);
	__sync_fetch_and_and(&s->flags, ~1u);
	__sync_fetch_and_xor(&s->flags, 2);
	s->last = __sync_fetch_and_add(&s->flags, 0) >> config_shift;
	__atomic_fetch_or(&s->bytes, 8, __ATOMIC_SEQ_CST);
	__atomic_fetch_and(&s->bytes, ~8ULL, __ATOMIC_SEQ_CST);
	__atomic_fetch_xor(&s->packets, 16, __ATOMIC_SEQ_CST);
	__atomic_exchange_n(&s->last, len, __ATOMIC_SEQ_CST);
	__sync_val_compare_and_swap(&s->packets, 0, 1);
	__sync_val_compare_and_swap(&s->flags, 7, len);

	struct stats *f = bpf_map_lookup_elem(&flows, &flow);
	if (!f) {
		fresh.packets = 1;
		fresh.bytes = len;
		bpf_map_update_elem(&flows, &flow, &fresh, BPF_NOEXIST);
	} else {
		f->packets += 1;
		if (f->packets > 1000)
			bpf_map_delete_elem(&flows, &flow);
	}

	cpu = bpf_get_smp_processor_id();
	pc = bpf_map_lookup_elem(&percpu_counts, &zero);
	if (pc)
		*pc += cpu + 1;
	__sync_fetch_and_add(&global_counter, bpf_ktime_get_ns() & 0xff);
	global_flags |= 1 << (cpu & 7);

	if (len > 1500)
		bpf_tail_call(ctx, &jump_table, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

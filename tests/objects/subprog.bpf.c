// Non-inlined static subprograms in .text called from two programs, a
// subprogram calling another, and a callback passed to bpf_loop (a function
// pointer: ld_imm64 with src = BPF_PSEUDO_FUNC).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} acc SEC(".maps");

static __noinline __u64 square(__u64 x)
{
	return x * x;
}

static __noinline __u64 sum_squares(__u64 a, __u64 b)
{
	return square(a) + square(b);
}

static __noinline int add_to_acc(__u64 v)
{
	__u32 k = 0;
	__u64 *p = bpf_map_lookup_elem(&acc, &k);
	if (!p)
		return 0;
	*p += v;
	return 1;
}

static long loop_cb(__u64 index, void *ctx)
{
	__u64 *total = ctx;
	*total += index;
	return 0;
}

SEC("xdp")
int xdp_subprogs(struct xdp_md *ctx)
{
	__u64 s = sum_squares(ctx->rx_queue_index, 3);
	return add_to_acc(s) ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int tc_subprogs(struct __sk_buff *skb)
{
	__u64 total = 0;
	bpf_loop(10, loop_cb, &total, 0);
	add_to_acc(square(skb->len) + total);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

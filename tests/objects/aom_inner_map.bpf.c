// ARRAY_OF_MAPS whose inner template is an ARRAY with BPF_F_INNER_MAP (inner
// arrays may have any max_entries), initial slots [0] and [2], and an XDP
// program doing the two-level lookup outer -> inner.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner_map inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = (void *)&inner_b },
};

SEC("xdp")
int xdp_two_level(struct xdp_md *ctx)
{
	__u32 okey = ctx->rx_queue_index & 7;
	__u32 ikey = 1;
	void *inner = bpf_map_lookup_elem(&outer, &okey);
	if (!inner)
		return XDP_PASS;
	__u32 *val = bpf_map_lookup_elem(inner, &ikey);
	if (!val)
		return XDP_DROP;
	return *val == 0 ? XDP_PASS : XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";

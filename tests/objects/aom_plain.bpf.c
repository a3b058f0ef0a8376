// ARRAY_OF_MAPS whose inner template is a plain ARRAY (no BPF_F_INNER_MAP):
// every inner map must have exactly 32 entries, and the kernel inlines the
// inner lookup with that bound. No initial slots.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 32);
		__type(key, __u32);
		__type(value, struct val);
	});
} stats_outer SEC(".maps");

/* Keeps struct val complete in BTF (otherwise clang emits only a FWD and
 * the inner value size is unknown), and gives the object a .bss map. */
struct val last_seen;

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 okey = 0;
	__u32 ikey = ctx->ingress_ifindex & 31;
	void *inner = bpf_map_lookup_elem(&stats_outer, &okey);
	if (!inner)
		return XDP_PASS;
	struct val *v = bpf_map_lookup_elem(inner, &ikey);
	if (!v)
		return XDP_PASS;
	v->packets++;
	v->bytes += ctx->data_end - ctx->data;
	last_seen = *v;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

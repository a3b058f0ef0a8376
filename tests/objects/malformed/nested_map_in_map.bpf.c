// Invalid on purpose: the inner template of a map-of-maps is itself a map-of-maps
// (the kernel allows a single nesting level).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
		__uint(max_entries, 2);
		__type(key, __u32);
		__type(value, __u32);
	});
} nested SEC(".maps");

SEC("xdp")
int xdp_nested(struct xdp_md *ctx)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&nested, &k) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

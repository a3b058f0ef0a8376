// HASH_OF_MAPS with HASH inner maps and initial slots [0] = &backend_a,
// [3] = &backend_b, plus a tc program doing the two-level lookup.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct backend_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
};

struct backend_map backend_a SEC(".maps");
struct backend_map backend_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct backend_map);
} services SEC(".maps") = {
	.values = { [0] = &backend_a, [3] = &backend_b },
};

SEC("tc")
int tc_lookup(struct __sk_buff *skb)
{
	__u32 svc = skb->mark & 15;
	__u32 key = skb->hash;
	void *backends = bpf_map_lookup_elem(&services, &svc);
	if (!backends)
		return TC_ACT_OK;
	__u64 *v = bpf_map_lookup_elem(backends, &key);
	if (!v)
		return TC_ACT_SHOT;
	skb->priority = (__u32)*v;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";

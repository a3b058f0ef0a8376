// Assorted map types and attributes: flags, numa_node, key/value given as
// sizes rather than types, a struct value, a ring buffer, an LRU hash.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	char tag[6];
	__u32 hist[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__uint(key_size, 8);
	__uint(value_size, 12);
} lru_sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NUMA_NODE);
	__uint(numa_node, 0);
	__type(key, int);
	__type(value, long);
} numa_arr SEC(".maps");

SEC("xdp")
int xdp_flows(struct xdp_md *ctx)
{
	struct flow_key k = { .proto = 6 };
	struct flow_stats *s = bpf_map_lookup_elem(&flows, &k);
	if (s)
		s->packets++;
	__u64 lk = 1;
	if (bpf_map_lookup_elem(&lru_sized, &lk))
		return XDP_DROP;
	int i = 0;
	long *n = bpf_map_lookup_elem(&numa_arr, &i);
	if (n)
		__sync_fetch_and_add(n, 1);
	__u32 *e = bpf_ringbuf_reserve(&events, 4, 0);
	if (e) {
		*e = 1;
		bpf_ringbuf_submit(e, 0);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

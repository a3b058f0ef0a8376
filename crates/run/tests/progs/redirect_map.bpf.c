// SPDX-License-Identifier: MIT OR Apache-2.0
// bpf_redirect_map on each redirect map (DEVMAP, DEVMAP_HASH, CPUMAP, and an XSKMAP with
// no socket) and a devmap lookup, for kbpf-run's kernel differential test. The packet's
// first bytes choose: p[0] the map (3: the lookup), p[1] the key, p[2]/p[3] the flags' low
// byte / second byte (BPF_F_BROADCAST is 1 << 3, BPF_F_EXCLUDE_INGRESS 1 << 4; unknown
// bits abort).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(max_entries, 8);
} devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 8);
} dev_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
	__uint(max_entries, 2);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4);
} xsks SEC(".maps");

SEC("xdp")
int xdp_redirect_map(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	__u64 flags;

	if (p + 4 > (unsigned char *)(long)ctx->data_end)
		return XDP_DROP;
	flags = p[2] | ((__u64)p[3] << 8);
	switch (p[0]) {
	case 0:
		return bpf_redirect_map(&devs, p[1], flags);
	case 1:
		return bpf_redirect_map(&dev_hash, p[1], flags);
	case 2:
		return bpf_redirect_map(&cpus, p[1], flags);
	case 4:
		return bpf_redirect_map(&xsks, p[1], flags);
	case 5: {
		/* AF_XDP's usual test before redirecting: is a socket bound to this queue? */
		__u32 key = p[1];

		return bpf_map_lookup_elem(&xsks, &key) ? 200 : 201;
	}
	default: {
		__u32 key = p[1];
		struct bpf_devmap_val *v = bpf_map_lookup_elem(&devs, &key);

		return v ? 100 + v->ifindex : 99;
	}
	}
}

/* One map per call site: the kernel's rewrite calls that map type's `map_redirect`
 * directly (a call site several maps reach keeps bpf_xdp_redirect_map, as above). */
#define ONE_MAP(name, map)							\
SEC("xdp")									\
int name(struct xdp_md *ctx)							\
{										\
	unsigned char *p = (void *)(long)ctx->data;				\
										\
	if (p + 4 > (unsigned char *)(long)ctx->data_end)			\
		return XDP_DROP;						\
	return bpf_redirect_map(&map, p[1], p[2] | ((__u64)p[3] << 8));	\
}

ONE_MAP(xdp_dev_only, devs)
ONE_MAP(xdp_hash_only, dev_hash)
ONE_MAP(xdp_cpu_only, cpus)
ONE_MAP(xdp_xsk_only, xsks)

char _license[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Flavour 2: the lookups go to an inner ARRAY of an ARRAY_OF_MAPS whose template has
 * BPF_F_INNER_MAP: inner arrays may have any max_entries, so the kernel cannot inline the
 * lookup and calls array_map_lookup_elem directly (no bpf_map_lookup_elem dispatch). */
#include "lookups.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner inner_values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_values },
};

SEC("xdp")
int lookup_direct(struct xdp_md *ctx)
{
	__u32 zero = 0;
	void *m = bpf_map_lookup_elem(&outer, &zero);
	if (!m)
		return XDP_ABORTED;
	__u64 sum = 0;
	for (__u32 i = 0; i < LOOKUPS; i++) {
		__u32 key = i & (ENTRIES - 1);
		__u64 *v = bpf_map_lookup_elem(m, &key);
		if (!v)
			return XDP_ABORTED;
		sum += *v + key;
	}
	return sum == (__u64)LOOKUPS / ENTRIES * (ENTRIES * (ENTRIES - 1) / 2) +
			      (LOOKUPS % ENTRIES) * (LOOKUPS % ENTRIES - 1) / 2
		       ? XDP_PASS
		       : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

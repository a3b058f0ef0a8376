// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Flavour 1: one plain ARRAY map at the call site -> the verifier's fixups inline
 * array_map_gen_lookup() (no call at all). Also the "loop of array lookups" program. */
#include "lookups.h"

struct value_array values SEC(".maps");

SEC("xdp")
int lookup_inline(struct xdp_md *ctx)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < LOOKUPS; i++) {
		__u32 key = i & (ENTRIES - 1);
		__u64 *v = bpf_map_lookup_elem(&values, &key);
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

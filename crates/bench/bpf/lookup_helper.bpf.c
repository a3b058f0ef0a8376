// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Flavour 3: one call site reached by two different maps (values_a on even keys,
 * values_b on odd ones): the verifier poisons the site's map pointer, so the fixups
 * keep the generic helper call bpf_map_lookup_elem (which dispatches through
 * map->ops->map_lookup_elem). */
#include "lookups.h"

struct value_array values_a SEC(".maps");
struct value_array values_b SEC(".maps");

SEC("xdp")
int lookup_helper(struct xdp_md *ctx)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < LOOKUPS; i++) {
		__u32 key = i & (ENTRIES - 1);
		void *m = &values_a;
		/* An empty asm keeps clang from duplicating the call for each map. */
		if (key & 1)
			m = &values_b;
		asm volatile("" : "+r"(m));
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

/* Shared by the lookup benchmarks: N array lookups in a bounded loop, summing the values
 * (the maps start zeroed, so the sum checks that every lookup found its element). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LOOKUPS 1000
#define ENTRIES 256

struct value_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
};

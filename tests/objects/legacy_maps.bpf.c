// Legacy map definitions in the "maps" section (struct bpf_map_def). libbpf
// 1.0+ refuses these, so the kernel-differential test skips this object.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_hash = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 128,
	.map_flags = BPF_F_NO_PREALLOC,
};

struct bpf_map_def SEC("maps") legacy_array = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = 4,
	.value_size = 16,
	.max_entries = 2,
};

SEC("socket")
int legacy_prog(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&legacy_hash, &k);
	if (v)
		return *v;
	return bpf_map_lookup_elem(&legacy_array, &k) ? 1 : 0;
}

char _license[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0x060000;

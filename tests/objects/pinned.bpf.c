// A map pinned by name (LIBBPF_PIN_BY_NAME) and a perf_event program. The
// kernel-differential test skips this object: bpftool would pin the map
// globally under /sys/fs/bpf.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kbpf_pinned SEC(".maps");

SEC("perf_event")
int on_sample(void *ctx)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&kbpf_pinned, &k) != 0;
}

char LICENSE[] SEC("license") = "GPL";

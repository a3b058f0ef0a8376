// A bounded loop over the first bytes of the packet.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} checksum SEC(".maps");

SEC("xdp")
int xdp_loop(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;
	__u32 k = 0;

	for (int i = 0; i < 32; i++) {
		if (data + i + 1 > end)
			break;
		sum += data[i];
	}
	__u32 *v = bpf_map_lookup_elem(&checksum, &k);
	if (v)
		*v = sum;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

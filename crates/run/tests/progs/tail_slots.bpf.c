// SPDX-License-Identifier: MIT OR Apache-2.0
// A PROG_ARRAY whose slots the object itself fills (libbpf's `.values` initial slots):
// slot 0 = xdp_leaf, slot 2 = xdp_other; the loader writes them once the programs exist.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int xdp_leaf(struct xdp_md *ctx);
int xdp_other(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&xdp_leaf, [2] = (void *)&xdp_other },
};

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return 1000;
	bpf_tail_call(ctx, &jump, data[0]);
	return 2000 + data[0];
}

SEC("xdp")
int xdp_leaf(struct xdp_md *ctx)
{
	return 42;
}

SEC("xdp")
int xdp_other(struct xdp_md *ctx)
{
	return 43;
}

char LICENSE[] SEC("license") = "GPL";

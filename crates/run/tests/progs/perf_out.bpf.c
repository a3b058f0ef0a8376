// SPDX-License-Identifier: MIT OR Apache-2.0
// bpf_perf_event_output from XDP, tc and a raw tracepoint for kbpf-run's kernel differential
// test. The
// packet's first bytes choose: p[0] the slot (4: BPF_F_CURRENT_CPU), p[1] how many packet
// bytes follow the 8-byte meta (BPF_F_CTXLEN_MASK), p[2] a flag bit outside the helper's
// (0: none), p[3] the meta's last byte, p[4] the meta's size (0..8). Returns the result.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 4);
} events SEC(".maps");

static __always_inline __u64 flags_of(unsigned char *p)
{
	__u64 f = p[0] == 4 ? BPF_F_CURRENT_CPU : p[0];

	f |= (__u64)p[1] << 32;
	if (p[2])
		f |= 1ULL << (p[2] & 63);
	return f;
}

SEC("xdp")
int xdp_perf_out(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	__u32 meta[2] = { 0xdeadbeef, 0 };

	if (p + 5 > (unsigned char *)(long)ctx->data_end)
		return -1;
	meta[1] = p[3];
	switch (p[4]) {
	case 0:
		return (int)bpf_perf_event_output(ctx, &events, flags_of(p), meta, 0);
	case 4:
		return (int)bpf_perf_event_output(ctx, &events, flags_of(p), meta, 4);
	default:
		return (int)bpf_perf_event_output(ctx, &events, flags_of(p), meta, 8);
	}
}

SEC("tc")
int tc_perf_out(struct __sk_buff *skb)
{
	unsigned char p[5];
	__u32 meta[2] = { 0xfeedf00d, 0 };

	if (bpf_skb_load_bytes(skb, 0, p, 5))
		return -1;
	meta[1] = p[3];
	if (p[4] == 0)
		return (int)bpf_perf_event_output(skb, &events, flags_of(p), meta, 0);
	return (int)bpf_perf_event_output(skb, &events, flags_of(p), meta, 8);
}

/* The raw tracepoint variant: the same choices from args[0..4] of a test run's ctx_in. */
SEC("raw_tp")
int rtp_perf_out(struct bpf_raw_tracepoint_args *ctx)
{
	unsigned char p[5];
	__u32 meta[2] = { 0xcafe0001, 0 };

	for (int i = 0; i < 5; i++)
		p[i] = ctx->args[i];
	meta[1] = p[3];
	if (p[4] == 0)
		return (int)bpf_perf_event_output(ctx, &events, flags_of(p), meta, 0);
	return (int)bpf_perf_event_output(ctx, &events, flags_of(p), meta, 8);
}

char _license[] SEC("license") = "GPL";

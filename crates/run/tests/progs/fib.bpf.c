// SPDX-License-Identifier: MIT OR Apache-2.0
// bpf_fib_lookup in XDP (bpf_xdp_fib_lookup) and tc (bpf_skb_fib_lookup), for kbpf-run's
// kernel differential test (tests/fib_kernel.rs). After the 14-byte Ethernet header the
// packet holds the call's arguments: __u32 flags, __u32 short (non-zero: plen 60, which the
// kernel refuses), then a struct bpf_fib_lookup. The program calls the helper on a stack
// copy of the struct and writes the return value (as __s64) over flags/short and the struct
// as the helper left it back into the packet.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define ARGS 14
#define PARAMS (ARGS + 8)

static __always_inline void lookup(void *ctx, void *data, void *data_end)
{
	struct bpf_fib_lookup p;
	__u32 flags, small;
	long rc;

	if (data + PARAMS + sizeof(p) > data_end)
		return;
	__builtin_memcpy(&flags, data + ARGS, 4);
	__builtin_memcpy(&small, data + ARGS + 4, 4);
	__builtin_memcpy(&p, data + PARAMS, sizeof(p));
	if (small)
		rc = bpf_fib_lookup(ctx, &p, 60, flags);
	else
		rc = bpf_fib_lookup(ctx, &p, sizeof(p), flags);
	__builtin_memcpy(data + ARGS, &rc, 8);
	__builtin_memcpy(data + PARAMS, &p, sizeof(p));
}

SEC("xdp")
int xdp_fib(struct xdp_md *ctx)
{
	lookup(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end);
	return XDP_PASS;
}

SEC("tc")
int tc_fib(struct __sk_buff *skb)
{
	lookup(skb, (void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";

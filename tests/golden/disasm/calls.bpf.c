// SPDX-License-Identifier: MIT OR Apache-2.0
// Golden disassembly corpus: a socket filter with bpf-to-bpf calls, bounded loops,
// bpf_loop with a callback (a pseudo-func ld_imm64), __sk_buff context rewrites,
// skb load helpers and JMP32 compares.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct loop_ctx {
	__u32 sum;
	__u32 seed;
};

static __noinline __u32 fold(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0x01000193;
	return h;
}

static __noinline int checksum(struct __sk_buff *skb, int n)
{
	__u8 buf[16] = {};
	__u32 h = 0x811c9dc5;
	int i;

	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)) < 0)
		return -1;
	for (i = 0; i < 16 && i < n; i++)
		h = fold(h, buf[i]);
	return h & 0x7fffffff;
}

static int loop_cb(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index * c->seed;
	if (c->sum > 100000)
		return 1;
	return 0;
}

SEC("socket")
int calls_prog(struct __sk_buff *skb)
{
	struct loop_ctx c = { .sum = 0, .seed = skb->len };
	int h, i;
	__u32 acc = 0;

	h = checksum(skb, skb->len);
	if (h < 0)
		return 0;
#pragma clang loop unroll(disable)
	for (i = 0; i < 8; i++) {
		if ((__u32)(h >> i) & 1)
			acc += fold(acc, i);
		else
			acc -= i;
	}
	bpf_loop(16, loop_cb, &c, 0);
	if (skb->protocol == bpf_htons(0x0800) && skb->pkt_type == 0)
		acc += skb->mark + skb->priority;
	if ((__s32)acc <= -1000 || (acc & 0xff) == 0x7f)
		return skb->len;
	return (acc + c.sum) & 0xffff;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT OR Apache-2.0
// Golden disassembly corpus: every conditional jump (11 conditions, immediate and register,
// JMP and JMP32), stores of every width, ALU32 register forms, and a kfunc call.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_dynptr_from_xdp(struct xdp_md *x, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;

#define JMPS(R, A, B)                                   \
	"if " #R "1 == " #B " goto +0;"                 \
	"if " #R "1 != " #B " goto +0;"                 \
	"if " #R "1 > " #B " goto +0;"                  \
	"if " #R "1 >= " #B " goto +0;"                 \
	"if " #R "1 < " #B " goto +0;"                  \
	"if " #R "1 <= " #B " goto +0;"                 \
	"if " #R "1 s> " #B " goto +0;"                 \
	"if " #R "1 s>= " #B " goto +0;"                \
	"if " #R "1 s< " #B " goto +0;"                 \
	"if " #R "1 s<= " #B " goto +0;"                \
	"if " #R "1 & " #B " goto +0;"

SEC("xdp")
int branches_prog(struct xdp_md *ctx)
{
	struct bpf_dynptr ptr;
	__u64 a = ctx->rx_queue_index, b = ctx->ingress_ifindex;
	__u32 size = 0;

	asm volatile(
		"r1 = %[a];"
		"r2 = %[b];"
		JMPS(r, 1, -5)
		JMPS(r, 1, r2)
		JMPS(w, 1, 0x7fffffff)
		JMPS(w, 1, w2)
		"w1 += w2; w1 -= w2; w1 *= w2; w1 /= w2; w1 %%= w2;"
		"w1 |= w2; w1 &= w2; w1 ^= w2; w1 <<= w2; w1 >>= w2; w1 s>>= w2;"
		"w1 <<= 3; w1 >>= 3; w1 s>>= 3; w1 = -w1;"
		"r1 = be16 r1; r1 = be32 r1; r1 = be64 r1;"
		"r1 = le16 r1; r1 = le32 r1; r1 = le64 r1;"
		"*(u8 *)(r10 - 1) = r1; *(u16 *)(r10 - 4) = r1;"
		"*(u32 *)(r10 - 8) = r1; *(u64 *)(r10 - 16) = r1;"
		"*(u8 *)(r10 - 17) = -1; *(u16 *)(r10 - 20) = -300;"
		"*(u32 *)(r10 - 24) = 70000; *(u64 *)(r10 - 32) = -2;"
		"r1 = *(u8 *)(r10 - 17); r1 = *(u16 *)(r10 - 20);"
		"r1 = *(u32 *)(r10 - 24); r1 = *(u64 *)(r10 - 32);"
		:
		: [a] "r"(a), [b] "r"(b)
		: "r1", "r2");
	if (bpf_dynptr_from_xdp(ctx, 0, &ptr) == 0)
		size = bpf_dynptr_size(&ptr);
	return size > 64 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

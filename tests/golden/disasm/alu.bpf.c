// SPDX-License-Identifier: MIT OR Apache-2.0
// Golden disassembly corpus: 32/64-bit ALU (mul/div/mod/shifts/neg/arsh), endian
// conversions, packet loads of every width, stack stores, JMP32 compares.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline __u64 mix64(__u64 a, __u64 b)
{
	__u64 x = a * 0x9e3779b97f4a7c15ULL;
	x ^= x >> 29;
	x += b << 7;
	x |= b & 0xff00;
	x -= a / (b | 1);
	x += a % (b | 3);
	x ^= (__u64)(-(__s64)a);
	x += (__u64)((__s64)b >> 5);
	return x;
}

static __always_inline __u32 mix32(__u32 a, __u32 b)
{
	__u32 x = a * 2654435761u;
	x ^= x >> 13;
	x += b << 3;
	x &= ~b | 0x0f0f;
	x -= a / (b | 1);
	x += a % (b | 7);
	x = -x;
	x ^= (__u32)((__s32)b >> 9);
	return x;
}

SEC("xdp")
int alu_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	volatile __u64 scratch[4];
	__u64 acc;
	__u32 acc32;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return XDP_ABORTED;

	acc = mix64(bpf_ntohl(ip->saddr), bpf_ntohl(ip->daddr));
	acc32 = mix32(bpf_ntohs(udp->source), bpf_ntohs(udp->dest));
	barrier_var(acc32);
	scratch[0] = acc;
	scratch[1] = acc32;
	scratch[2] = __builtin_bswap64(acc);
	scratch[3] = ip->ttl;
	*(volatile __u8 *)&scratch[3] = (__u8)ip->tos;
	*((volatile __u16 *)&scratch[3] + 1) = (__u16)ip->id;
	*((volatile __u32 *)&scratch[3] + 1) = 0x12345678;
	acc += scratch[0] + scratch[1] + scratch[2] + scratch[3];
	if ((__u32)acc > 0x7fffffffu)
		ip->check = bpf_htons((__u16)acc);
	if ((__s32)acc32 < -5)
		udp->check = 0;
	if ((acc32 & 0x10) && ((__s32)acc32 >= 100))
		return XDP_TX;
	ip->ttl -= 1;
	return (acc & 1) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

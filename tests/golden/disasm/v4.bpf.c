// SPDX-License-Identifier: MIT OR Apache-2.0
// Golden disassembly corpus for cpu v4 (build with -mcpu=v4): signed division and
// modulo, sign-extending loads and moves, unconditional byte swaps, gotol, and
// (as raw words) load-acquire/store-release, which clang 19 cannot emit yet.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} vals SEC(".maps");

static __noinline __s64 sdivs(__s64 a, __s64 b, __s32 c, __s32 d)
{
	__s64 r = 0;

	if (b != 0)
		r += a / b + a % b;
	if (d != 0)
		r += (__s64)(c / d) + (__s64)(c % d);
	r += a / -7 + a % 13;
	r += (__s64)(c / 5) + (__s64)(c % -3);
	return r;
}

SEC("xdp")
int v4_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__s8 *p8 = data;
	__s64 acc;
	__u32 zero = 0;
	__s64 *v;

	if (data + 16 > data_end)
		return XDP_PASS;
	/* sign-extending loads */
	acc = p8[0];
	acc += *(__s16 *)(data + 2);
	acc += *(__s32 *)(data + 4);
	/* sign-extending moves */
	acc += (__s64)(__s8)acc + (__s64)(__s16)(acc >> 8) + (__s64)(__s32)(acc >> 16);
	acc += (__s32)(__s8)(__u32)acc;
	/* signed div/mod, 64 and 32 bit, register and immediate */
	acc += sdivs(acc, p8[8], (__s32)acc, p8[9]);
	/* unconditional byte swaps */
	acc ^= __builtin_bswap16((__u16)acc);
	acc ^= __builtin_bswap32((__u32)acc);
	acc ^= __builtin_bswap64(acc);
	v = bpf_map_lookup_elem(&vals, &zero);
	if (v) {
		__s64 out;
		*v = acc;
		/* long jump, and explicit forms clang only emits rarely */
		asm volatile(
			"r2 = %[v];"
			"r1 = *(u32 *)(r2 + 0);"
			"if r1 == 0 goto +1;"
			"gotol +1;"
			"r0 = 0;"
			"w1 = (s8)w1;"
			"w1 = (s16)w1;"
			"r1 = (s32)r1;"
			"w1 s/= 3;"
			"w1 s%%= -3;"
			"r1 s/= -7;"
			"r1 s%%= 5;"
			"r3 = *(s32 *)(r2 + 0);"
			"r3 = *(s16 *)(r2 + 2);"
			"r3 = *(s8 *)(r2 + 7);"
			"r3 = bswap16 r3;"
			"r3 = bswap32 r3;"
			"r3 = bswap64 r3;"
			/* w3 = load_acquire((u32 *)(r2 +0)) */
			".8byte 0x00000100000023c3;"
			/* store_release((u64 *)(r2 +0), r3) */
			".8byte 0x00000110000032db;"
			"%[out] = r3;"
			: [out] "=r"(out)
			: [v] "r"(v)
			: "r0", "r1", "r2", "r3");
		acc += out;
	}
	return acc & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

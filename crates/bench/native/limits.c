/* The native limit of the side-by-side benchmarks: the same computations as the benchmark
 * programs, in C, compiled for x86-64 at -O2 with the packet and the map as plain memory
 * (no verifier, no bounds the program did not write itself, no helper calls). Every
 * constant the BPF programs carry as an immediate arrives here as an argument, so the
 * compiler cannot fold the work away. Built by build.rs (the `cc` crate). */
#include <stdint.h>

/* progs::alu_loop(): r0 += i * 0x9e3779b1 (sign-extended); r0 ^= r2; r0 ^= r0 >> 7;
 * r0 += r0 << 3; r2 += 0x11. */
uint64_t kbpf_native_alu_loop(uint64_t iterations, uint64_t r2, uint64_t mul)
{
	uint64_t r0 = 0;
	for (uint64_t i = 0; i < iterations; i++) {
		r0 += i * mul;
		r0 ^= r2;
		r0 ^= r0 >> 7;
		r0 += r0 << 3;
		r2 += 0x11;
	}
	return r0;
}

/* fnv1a_checked(): FNV-1a over the first `len` bytes, 0 would-be bounds failure. */
uint64_t kbpf_native_fnv1a(const uint8_t *data, const uint8_t *data_end, uint64_t len,
			   uint64_t offset, uint64_t prime)
{
	uint64_t h = offset;
	if (data + len > data_end)
		return h;
	for (uint64_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= prime;
	}
	return h;
}

static inline uint32_t rol32(uint32_t x, unsigned k)
{
	return (x << k) | (x >> (32 - k));
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* progs::parse_hash(): Ethernet/IPv4/TCP with the same checks, then jhash's final mix of
 * (saddr, daddr, ports ^ protocol) + 0xdeadbeef. */
uint64_t kbpf_native_parse_hash(const uint8_t *data, const uint8_t *data_end, uint64_t drop,
				uint32_t init)
{
	if (data + 14 > data_end || be16(data + 12) != 0x0800)
		return drop;
	if (data + 34 > data_end || data[14] >> 4 != 4)
		return drop;
	uint32_t ihl = (data[14] & 0xf) * 4;
	if (ihl < 20 || data[23] != 6 || (be16(data + 20) & 0x1fff) != 0)
		return drop;
	const uint8_t *tcp = data + 14 + ihl;
	if (tcp + 20 > data_end)
		return drop;
	uint32_t a = be32(data + 26) + init;
	uint32_t b = be32(data + 30) + init;
	uint32_t c = (((uint32_t)be16(tcp) << 16 | be16(tcp + 2)) ^ data[23]) + init;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* lookup_inline.bpf.c: `lookups` array lookups key = i & (entries - 1), each checked against
 * max_entries as the inlined lookup does, summing value + key; XDP_PASS (2) when the sum is
 * the expected one, XDP_DROP (1) otherwise, XDP_ABORTED (0) on a failed lookup. */
uint32_t kbpf_native_lookup_loop(const uint64_t *values, uint32_t max_entries, uint32_t lookups,
				 uint32_t entries, uint64_t expect)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < lookups; i++) {
		uint32_t key = i & (entries - 1);
		if (key >= max_entries)
			return 0;
		sum += values[key] + key;
	}
	return sum == expect ? 2 : 1;
}

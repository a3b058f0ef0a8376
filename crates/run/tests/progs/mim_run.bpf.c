// SPDX-License-Identifier: MIT OR Apache-2.0
// Test-run programs for kbpf-run's kernel differential test: map-in-map lookups keyed by
// packet bytes (byte 0 = outer key, byte 1 = inner key), so one program answers many
// questions; and a packet rewrite (adjust_head, stores, checksum helper) so data_out is
// compared too. Return codes: the value found, 1000 when the outer lookup misses, 2000 when
// the inner lookup misses.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_n3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u32);
} inner_n5 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} aom SEC(".maps") = {
	.values = { [0] = &inner_n3, [1] = (void *)&inner_n5 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct inner);
} hom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} plain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} lru SEC(".maps");

static __always_inline int two_level(void *outer, __u32 okey, __u32 ikey)
{
	void *in = bpf_map_lookup_elem(outer, &okey);
	if (!in)
		return 1000;
	__u32 *v = bpf_map_lookup_elem(in, &ikey);
	if (!v)
		return 2000;
	return *v;
}

SEC("xdp")
int xdp_aom(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 2 > end)
		return 3000;
	return two_level(&aom, data[0], data[1]);
}

SEC("xdp")
int xdp_hom(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 2 > end)
		return 3000;
	return two_level(&hom, data[0], data[1]);
}

SEC("xdp")
int xdp_plain_lru(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 2 > end)
		return 3000;
	__u32 k = data[0];
	__u64 *p = bpf_map_lookup_elem(&plain, &k);
	if (!p)
		return 1000;
	__sync_fetch_and_add(p, data[1]);
	__u32 lk = data[1], one = 1;
	__u32 *c = bpf_map_lookup_elem(&lru, &lk);
	if (c)
		*c += 1;
	else
		bpf_map_update_elem(&lru, &lk, &one, BPF_NOEXIST);
	return (int)(*p & 0xffff);
}

SEC("xdp")
int xdp_rewrite(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_head(ctx, -4))
		return 3000;
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 18 > end)
		return 3001;
	// A 4-byte tag in front, then swap the two MAC addresses of the original frame.
	data[0] = 0xde;
	data[1] = 0xad;
	data[2] = data[4] ^ data[10];
	data[3] = (unsigned char)(end - data);
	for (int i = 0; i < 6; i++) {
		unsigned char t = data[4 + i];
		data[4 + i] = data[10 + i];
		data[10 + i] = t;
	}
	__be32 from = 0x01020304, to = *(__be32 *)(data + 4);
	__s64 csum = bpf_csum_diff(&from, 4, &to, 4, 0);
	return (int)(csum & 0xff) + 2;
}

char LICENSE[] SEC("license") = "GPL";

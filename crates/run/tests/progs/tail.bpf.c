// SPDX-License-Identifier: MIT OR Apache-2.0
// Tail calls through a PROG_ARRAY, for kbpf-run's kernel differential test: byte 0 of the
// packet picks the slot; slot 0 is `xdp_leaf`, slot 1 is `xdp_chain` (which tail-calls
// itself, counting in `hops`, until the kernel's limit of 33 stops it), slot 2 stays empty.
// `xdp_sub_entry` makes the same tail calls from a subprogram.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jump SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hops SEC(".maps");

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return 1000;
	bpf_tail_call(ctx, &jump, data[0]);
	return 2000 + data[0];	// the slot was empty or out of range
}

SEC("xdp")
int xdp_leaf(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 2 > end)
		return 1001;
	data[1] = 0x42;
	return 42;
}

SEC("xdp")
int xdp_chain(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *n = bpf_map_lookup_elem(&hops, &k);
	if (!n)
		return 1002;
	*n += 1;
	bpf_tail_call(ctx, &jump, 1);
	return 3000 + (int)*n;	// reached when the tail-call limit is hit
}

/* A tail call from a subprogram: the target replaces the subprogram only, so its return
 * value comes back to the caller, which goes on (the kernel's JIT pops the subprogram's
 * frame and jumps). */
static __attribute__((noinline)) int tail_from_sub(struct xdp_md *ctx, __u32 slot)
{
	int fell_through = 500;	// the slot was empty or out of range

	bpf_tail_call(ctx, &jump, slot);
	/* Opaque to clang, so that the caller reads r0 instead of folding 500 in. */
	asm volatile("" : "+r"(fell_through));
	return fell_through;
}

SEC("xdp")
int xdp_sub_entry(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return 1000;
	return tail_from_sub(ctx, data[0]) + 100;
}

char LICENSE[] SEC("license") = "GPL";

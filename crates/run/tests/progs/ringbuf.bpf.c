// Ring buffer helpers at run time, for the kernel-differential test (tests/ringbuf_kernel.rs).
// The frame's first byte picks the action, the second a size or flags; each run writes the
// helper's result into `results[0]` and returns XDP_PASS.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} results SEC(".maps");

struct query_rec {
	__u64 avail;
	__u64 size;
	__u64 cons;
	__u64 prod;
	__u64 bad;
};

static __always_inline void result(__s64 v)
{
	__u32 k = 0;
	__s64 *r = bpf_map_lookup_elem(&results, &k);

	if (r)
		*r = v;
}

SEC("xdp")
int ringbuf_ops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if (data + 64 > end)
		return XDP_ABORTED;
	__u8 op = p[0], arg = p[1];
	__u64 flags = p[2];

	switch (op) {
	case 0: {
		/* output of the frame's first 1..64 bytes (from the stack: ringbuf_output
		 * has no packet access), flags from the frame */
		__u8 buf[64];
		__u32 n = (arg & 63) + 1;

		__builtin_memcpy(buf, p, 64);
		result(bpf_ringbuf_output(&rb, buf, n, flags));
		break;
	}
	case 1: {
		/* reserve 48 bytes, fill, submit */
		__u8 *e = bpf_ringbuf_reserve(&rb, 48, 0);
		if (!e) {
			result(-1);
			break;
		}
		__builtin_memcpy(e, p, 48);
		bpf_ringbuf_submit(e, flags);
		result(1);
		break;
	}
	case 2: {
		/* reserve then discard */
		__u64 *e = bpf_ringbuf_reserve(&rb, 16, 0);
		if (!e) {
			result(-1);
			break;
		}
		e[0] = 0xdead;
		e[1] = arg;
		bpf_ringbuf_discard(e, flags);
		result(2);
		break;
	}
	case 3: {
		/* the ring's state as bpf_ringbuf_query sees it, as a record */
		struct query_rec q = {
			.avail = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA),
			.size = bpf_ringbuf_query(&rb, BPF_RB_RING_SIZE),
			.cons = bpf_ringbuf_query(&rb, BPF_RB_CONS_POS),
			.prod = bpf_ringbuf_query(&rb, BPF_RB_PROD_POS),
			.bad = bpf_ringbuf_query(&rb, 77),
		};
		result(bpf_ringbuf_output(&rb, &q, sizeof(q), 0));
		break;
	}
	case 4: {
		/* a large reservation: fails once the ring is too full */
		__u8 *e = bpf_ringbuf_reserve(&rb, 1500, 0);
		if (!e) {
			result(-1);
			break;
		}
		e[0] = arg;
		e[1499] = arg;
		bpf_ringbuf_submit(e, 0);
		result(4);
		break;
	}
	case 5: {
		/* reserve with flags the kernel refuses: NULL */
		__u8 *e = bpf_ringbuf_reserve(&rb, 8, flags);
		if (!e) {
			result(-1);
			break;
		}
		e[0] = 5;
		bpf_ringbuf_submit(e, 0);
		result(5);
		break;
	}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

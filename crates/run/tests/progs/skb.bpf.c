// SPDX-License-Identifier: MIT OR Apache-2.0
// tc and socket-filter programs for kbpf-run's kernel differential test: they read the
// __sk_buff fields kbpf's sk_buff mirrors and (tc) write the packet, so return values and
// packets out are compared for both program types' test-run conventions.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_fields(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	unsigned char *p = data;
	if (p + 16 > (unsigned char *)end)
		return skb->len;
	p[15] = (unsigned char)(skb->len + skb->protocol);
	return (int)(skb->len * 7 + skb->protocol + skb->mark + skb->ifindex * 1000 +
		     skb->ingress_ifindex * 100000 + skb->pkt_type * 10 + p[0]);
}

SEC("socket")
int sock_len(struct __sk_buff *skb)
{
	return (int)(skb->len + (skb->protocol << 8) + skb->cb[0]);
}

/* bpf_skb_load_bytes at offsets in and past the packet, bpf_skb_store_bytes (with an unknown
 * flag too): their results and the packet they leave. */
SEC("tc")
int tc_bytes(struct __sk_buff *skb)
{
	unsigned char buf[8] = {};
	long r1 = bpf_skb_load_bytes(skb, 4, buf, 8);
	long r2 = bpf_skb_load_bytes(skb, skb->len - 4, buf + 4, 4);
	long r3 = bpf_skb_load_bytes(skb, skb->len - 3, buf, 4);
	long r4 = bpf_skb_store_bytes(skb, 1, buf, 4, 0);
	long r5 = bpf_skb_store_bytes(skb, 0, buf, 4, 1 << 5);
	long r6 = bpf_skb_store_bytes(skb, skb->len - 2, buf, 4, 0);
	return (int)(buf[0] + buf[5] * 3 + (r1 + r2 * 2 + r3 * 4 + r4 * 8 + r5 * 16 + r6 * 32));
}

SEC("socket")
int sock_bytes(struct __sk_buff *skb)
{
	unsigned char buf[4] = {};
	long r1 = bpf_skb_load_bytes(skb, 0, buf, 4);
	long r2 = bpf_skb_load_bytes(skb, 40, buf, 4);
	return (int)(buf[0] + buf[3] * 7 + r1 * 100 + r2 * 1000);
}

char LICENSE[] SEC("license") = "GPL";

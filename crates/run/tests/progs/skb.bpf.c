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

char LICENSE[] SEC("license") = "GPL";

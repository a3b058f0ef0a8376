// SPDX-License-Identifier: MIT OR Apache-2.0
// bpf_skb_change_head in tc and lwt_xmit test runs, for kbpf-run's kernel differential
// test: byte 0 of the packet (after the MAC header: the first payload byte for tc) picks
// the room and flags; the program returns the helper's result, and the packet out shows
// the zeroed bytes in front.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __always_inline int change(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 room;
	__u64 flags = 0;

	if (p + 15 > end)
		return 1000;
	switch (p[14] & 7) {
	case 0: room = 0; break;
	case 1: room = 14; break;
	case 2: room = 34; break;
	case 3: room = 200; break;
	case 4: room = 16000; break;
	case 5: room = 0xfffffff0; break;
	case 6: room = 14; flags = 1; break;
	default: room = 1; break;
	}
	return bpf_skb_change_head(skb, room, flags) + 100;
}

SEC("tc")
int tc_change_head(struct __sk_buff *skb)
{
	return change(skb);
}

SEC("lwt_xmit")
int lwt_change_head(struct __sk_buff *skb)
{
	/* Twice, as verifier_lwt's make_headroom_for_lwt_xmit. */
	int r = change(skb);

	return r * 1000 + bpf_skb_change_head(skb, 42, 0);
}

char LICENSE[] SEC("license") = "GPL";

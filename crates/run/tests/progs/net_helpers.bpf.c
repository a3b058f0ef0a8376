// SPDX-License-Identifier: MIT OR Apache-2.0
// The tc/XDP helpers kbpf-run's kernel differential test compares: bpf_skb_adjust_room
// (grow, shrink, encapsulate, each refusal), the tunnel key helpers (set, then read back as
// a receive side sees it, written into the packet), bpf_redirect in tc and in XDP.
// Parameters come from __sk_buff.cb (settable through ctx_in) or the packet's first bytes;
// results are in the return value and the packet.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* cb[0] len_diff, cb[1] mode, cb[2]/cb[3] flags (low/high word), cb[4] a second len_diff
 * (0: no second call). Returns both results' low 12 bits and skb->protocol's low byte. */
SEC("tc")
int tc_adjust_room(struct __sk_buff *skb)
{
	__u64 flags = ((__u64)skb->cb[3] << 32) | skb->cb[2];
	long r = bpf_skb_adjust_room(skb, (__s32)skb->cb[0], skb->cb[1], flags);
	long r2 = 0;

	if (skb->cb[4])
		r2 = bpf_skb_adjust_room(skb, (__s32)skb->cb[4], skb->cb[1], flags);
	return (int)((r & 0xfff) | ((r2 & 0xfff) << 12) | ((skb->protocol & 0xff) << 24));
}

/* cb[0] selects the size given to bpf_skb_set_tunnel_key (the uapi size, the older layouts'
 * sizes, or one the kernel refuses), cb[1] its flags, cb[2] tunnel_label, cb[3] tunnel_ext;
 * cb[4] the flags of bpf_skb_get_tunnel_key, whose key is written at offset 14. */
SEC("tc")
int tc_tunnel_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key k = {}, out = {};
	__u64 flags = skb->cb[1];
	long r, g;

	k.tunnel_id = 0x123456;
	k.remote_ipv6[0] = 0x0a000001;
	k.remote_ipv6[1] = 0x11;
	k.remote_ipv6[2] = 0x22;
	k.remote_ipv6[3] = 0x33;
	k.local_ipv6[0] = 0x0a000002;
	k.local_ipv6[3] = 0x44;
	k.tunnel_tos = 5;
	k.tunnel_ttl = 64;
	k.tunnel_label = skb->cb[2];
	k.tunnel_ext = skb->cb[3];
	switch (skb->cb[0]) {
	case 0:
		r = bpf_skb_set_tunnel_key(skb, &k, sizeof(k), flags);
		break;
	case 1:
		r = bpf_skb_set_tunnel_key(skb, &k, 28, flags);
		break;
	case 2:
		r = bpf_skb_set_tunnel_key(skb, &k, 8, flags);
		break;
	default:
		r = bpf_skb_set_tunnel_key(skb, &k, 30, flags);
		break;
	}
	g = bpf_skb_get_tunnel_key(skb, &out, sizeof(out), skb->cb[4]);
	bpf_skb_store_bytes(skb, 14, &out, sizeof(out), 0);
	return (int)((r & 0xfff) | ((g & 0xfff) << 12));
}

/* bpf_redirect(cb[0], cb[1]). */
SEC("tc")
int tc_redirect(struct __sk_buff *skb)
{
	return (int)bpf_redirect(skb->cb[0], skb->cb[1]);
}

/* bpf_redirect(first byte, second byte) in XDP (bpf_xdp_redirect). */
SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;

	if (p + 2 > (unsigned char *)(long)ctx->data_end)
		return XDP_DROP;
	return (int)bpf_redirect(p[0], p[1]);
}



/* bpf_skb_pull_data(cb[0]) and a direct write (so the kernel prepends its unclone prologue). */
SEC("tc")
int tc_pull_write(struct __sk_buff *skb)
{
	long r = bpf_skb_pull_data(skb, skb->cb[0]);
	unsigned char *p = (void *)(long)skb->data;

	if (p + 15 > (unsigned char *)(long)skb->data_end)
		return (int)(r & 0xfff);
	p[14] = (unsigned char)r;
	return (int)(r & 0xfff);
}
char _license[] SEC("license") = "GPL";

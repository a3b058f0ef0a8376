// libbpf's SEC("?...") convention: the program is known to libbpf as SEC("xdp") but starts
// with autoload off, so a whole-object load (bpftool prog loadall) skips it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("?xdp")
int xdp_optional(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_always(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

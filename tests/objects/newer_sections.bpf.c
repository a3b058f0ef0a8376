// Section names newer than the libbpf inside the installed bpftool (1.1): tcx and
// netkit attach points. kbpf's table follows current libbpf; the
// kernel-differential test skips this object because bpftool cannot load it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tcx/ingress")
int tcx_in(struct __sk_buff *skb)
{
	return -1; /* TCX_NEXT (not in the installed uapi headers) */
}

SEC("tcx/egress")
int tcx_out(struct __sk_buff *skb)
{
	return -1;
}

SEC("netkit/primary")
int nk_primary(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

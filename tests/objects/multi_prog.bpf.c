// Several programs in one object, two of them in the same section, across
// several program types.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &idx);
	if (v)
		(*v)++;
}

SEC("xdp")
int xdp_first(struct xdp_md *ctx)
{
	bump(0);
	return XDP_PASS;
}

SEC("xdp")
int xdp_second(struct xdp_md *ctx)
{
	bump(1);
	return ctx->rx_queue_index ? XDP_DROP : XDP_PASS;
}

SEC("xdp.frags")
int xdp_frags_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	bump(2);
	return TC_ACT_OK;
}

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	bump(3);
	return skb->len;
}

SEC("kprobe/do_sys_openat2")
int kprobe_open(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_write(void *ctx)
{
	return 0;
}

SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";

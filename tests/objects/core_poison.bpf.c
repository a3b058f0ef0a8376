// CO-RE against a type the kernel does not have: libbpf poisons the relocated instruction
// (a call of helper 0xbad2310), which the verifier refuses once it is reached.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct kbpf_no_such_struct {
	int a;
	int b;
} __attribute__((preserve_access_index));

SEC("xdp")
int core_missing_reached(struct xdp_md *ctx)
{
	struct kbpf_no_such_struct *p = 0;
	return bpf_core_field_size(p->b);
}

char LICENSE[] SEC("license") = "GPL";

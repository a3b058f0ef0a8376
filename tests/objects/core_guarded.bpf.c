// CO-RE guarded by bpf_core_type_exists: the type is missing, the existence check resolves
// to 0, and the poisoned instruction behind it is dead code the verifier never reaches.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct kbpf_no_such_struct {
	int a;
	int b;
} __attribute__((preserve_access_index));

SEC("xdp")
int core_missing_guarded(struct xdp_md *ctx)
{
	struct kbpf_no_such_struct *p = 0;

	if (bpf_core_type_exists(struct kbpf_no_such_struct))
		return bpf_core_field_size(p->b);
	/* a field the kernel does have: struct xdp_md's data_end, relocated */
	return bpf_core_field_exists(((struct xdp_md *)0)->data_end) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

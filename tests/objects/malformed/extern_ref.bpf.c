// Invalid for kbpf on purpose: refers to an extern variable that no section defines,
// so its relocation names an undefined symbol.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int not_defined_anywhere;

SEC("xdp")
int xdp_extern(struct xdp_md *ctx)
{
	return not_defined_anywhere;
}

char LICENSE[] SEC("license") = "GPL";

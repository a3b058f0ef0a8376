// SPDX-License-Identifier: MIT OR Apache-2.0
// CO-RE through anonymous structs and unions, as libbpf-tools reads `struct sock` (its
// `__sk_common` keeps ports and addresses in anonymous members): the local types below
// mirror that shape; the relocations must resolve against the kernel's BTF to the kernel's
// offsets (compared through `prog dump xlated` with bpftool's).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct sock_common___kbpf {
	union {
		__u64 skc_addrpair;
		struct {
			__u32 skc_daddr;
			__u32 skc_rcv_saddr;
		};
	};
	union {
		unsigned int skc_hash;
		__u16 skc_u16hashes[2];
	};
	union {
		__u32 skc_portpair;
		struct {
			__u16 skc_dport;
			__u16 skc_num;
		};
	};
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock___kbpf {
	struct sock_common___kbpf __sk_common;
} __attribute__((preserve_access_index));

SEC("raw_tp")
int core_anon(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock___kbpf *sk = (void *)ctx->args[0];
	__u16 num = 0, dport = 0, family = 0;
	__u32 daddr = 0;

	bpf_probe_read_kernel(&num, sizeof(num), &sk->__sk_common.skc_num);
	bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
	bpf_probe_read_kernel(&daddr, sizeof(daddr), &sk->__sk_common.skc_daddr);
	bpf_probe_read_kernel(&family, sizeof(family), &sk->__sk_common.skc_family);
	return num + dport + daddr + family;
}

char LICENSE[] SEC("license") = "GPL";

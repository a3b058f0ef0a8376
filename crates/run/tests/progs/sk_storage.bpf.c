// SPDX-License-Identifier: MIT OR Apache-2.0
// Socket-local storage on the socket a tc test run hangs on its skb, for kbpf-run's kernel
// differential test: a counter in the storage survives the runs of one repeat loop (one
// socket), a delete frees it, and a fresh test run starts without it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, long);
} counters SEC(".maps");

SEC("tc")
int tc_sk_count(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	long init = 40, before, *v;

	if (!sk)
		return 1000;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1001;
	v = bpf_sk_storage_get(&counters, sk, 0, 0);
	before = v ? *v : -1;
	/* Created from `init` when missing. */
	v = bpf_sk_storage_get(&counters, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
	if (!v)
		return 1002;
	*v += 1;
	if (*v == 43)
		return 2000 + bpf_sk_storage_delete(&counters, sk) * 10 +
		       bpf_sk_storage_delete(&counters, sk);
	return before * 100 + *v;
}

char LICENSE[] SEC("license") = "GPL";

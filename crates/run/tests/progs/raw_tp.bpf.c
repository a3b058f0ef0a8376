// SPDX-License-Identifier: MIT OR Apache-2.0
// A raw tracepoint program for kbpf-run's kernel differential test: its context is the
// tracepoint's u64 arguments, fed by the test run's ctx_in.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sum SEC(".maps");

SEC("raw_tp/sys_enter")
int rtp_args(__u64 *ctx)
{
	__u32 k = 0;
	__u64 *s = bpf_map_lookup_elem(&sum, &k);
	if (s)
		*s += ctx[2];
	return (int)(ctx[0] + ctx[1] * 3);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT OR Apache-2.0
// Cgroup storage in test runs, for kbpf-run's kernel differential test: each
// BPF_PROG_TEST_RUN gets fresh, zeroed storage that the runs of its repeat loop share, so
// the counter's parity in the last run tells the repeat count apart.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, __u64);
} shared SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, __u64);
} per_cpu SEC(".maps");

SEC("cgroup_skb/egress")
int count_shared(struct __sk_buff *skb)
{
	__u64 *c = bpf_get_local_storage(&shared, 0);

	*c += skb->len;
	return (*c / skb->len) & 1;
}

SEC("cgroup_skb/ingress")
int count_per_cpu(struct __sk_buff *skb)
{
	__u64 *c = bpf_get_local_storage(&per_cpu, 0);

	*c += 1;
	return *c % 3 == 2;
}

char LICENSE[] SEC("license") = "GPL";

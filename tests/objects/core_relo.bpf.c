// CO-RE field relocations against the running kernel's task_struct.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

SEC("kprobe/do_nanosleep")
int kprobe_core(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	int pid = BPF_CORE_READ(t, pid);
	int has_tgid = bpf_core_field_exists(t->tgid);
	int sz = bpf_core_field_size(t->tgid);
	return pid + has_tgid + sz;
}

char LICENSE[] SEC("license") = "GPL";

// libbpf's __kconfig externs: values from the host's kernel config (/boot/config-$(uname -r)
// or /proc/config.gz) and LINUX_KERNEL_VERSION, laid out in a `.kconfig` map; __weak
// externs the config lacks read 0. The program copies them into a map so runs can show them.
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern enum libbpf_tristate CONFIG_NET_CLS_BPF __kconfig __weak;
extern unsigned long long CONFIG_NR_CPUS __kconfig __weak;
extern char CONFIG_LOCALVERSION[8] __kconfig __weak;
extern bool CONFIG_KBPF_NO_SUCH_OPTION __kconfig __weak;
extern unsigned short CONFIG_LOG_BUF_SHIFT __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void put(__u32 k, __u64 v)
{
	bpf_map_update_elem(&seen, &k, &v, BPF_ANY);
}

SEC("xdp")
int kconfig_values(struct xdp_md *ctx)
{
	put(0, LINUX_KERNEL_VERSION);
	put(1, CONFIG_BPF_SYSCALL);
	put(2, CONFIG_HZ);
	put(3, CONFIG_NET_CLS_BPF);
	put(4, CONFIG_NR_CPUS);
	put(5, CONFIG_LOCALVERSION[1]);
	put(6, CONFIG_KBPF_NO_SUCH_OPTION);
	put(7, CONFIG_LOG_BUF_SHIFT);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

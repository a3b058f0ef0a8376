// Global variables: .data, .bss, .rodata and custom .data.* / .rodata.*
// sections, each of which libbpf turns into a one-entry ARRAY map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int counter = 7;                          /* .data */
__u64 hits;                               /* .bss */
const volatile __u32 threshold = 100;     /* .rodata */
const volatile char greeting[8] = "hello";/* .rodata */
int tuned SEC(".data.tuning") = 42;       /* .data.tuning */
const volatile __u16 port SEC(".rodata.cfg") = 8080; /* .rodata.cfg */

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	hits++;
	counter += tuned;
	/* String literals land in .rodata.str1.1, referenced through the section
	 * symbol with the offset in the instruction's immediate. */
	bpf_printk("hits %llu", hits);
	bpf_printk("counter %d", counter);
	if (ctx->rx_queue_index > threshold)
		return XDP_DROP;
	if (greeting[0] == 'h' && port == 8080)
		return XDP_PASS;
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";

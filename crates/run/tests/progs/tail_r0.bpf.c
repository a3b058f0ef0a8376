// SPDX-License-Identifier: MIT OR Apache-2.0
// What r0 holds after a bpf_tail_call that does not jump, for kbpf-run's tail-call test:
// the program sets r0 = 77, tail-calls slot data[0] of `jump_r0` and returns r0 unchanged.
// Written in assembly because C cannot read r0 after the call. Slot 0 holds `xdp_r0_leaf`;
// slot 1 stays empty; 4 and up are past max_entries.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jump_r0 SEC(".maps");

SEC("xdp")
__attribute__((naked)) int xdp_r0_entry(void)
{
	asm volatile(
		"r2 = *(u32 *)(r1 + 0);"
		"r3 = *(u32 *)(r1 + 4);"
		"r4 = r2;"
		"r4 += 1;"
		"if r4 > r3 goto l0_%=;"
		"r3 = *(u8 *)(r2 + 0);"
		"r0 = 77;"
		"r2 = %[jump_r0] ll;"
		"call %[bpf_tail_call];"
		"exit;"
	"l0_%=:"
		"r0 = 1000;"
		"exit;"
		:
		: [jump_r0] "i"(&jump_r0), [bpf_tail_call] "i"(BPF_FUNC_tail_call)
		: "memory");
}

SEC("xdp")
int xdp_r0_leaf(struct xdp_md *ctx)
{
	return 42;
}

char LICENSE[] SEC("license") = "GPL";

// Map values for BTF-formatted dumps and C/raw BTF dumps (crates/cli/tests/btf_kernel.rs):
// every printing path of bpftool's BTF dumper in one object — signed and unsigned integers
// of every width, bool, a printable and a non-printable char array, bitfields across byte
// boundaries, anonymous struct/union members (printed under an empty name), nested structs,
// enums (matched, unmatched, negative, 64-bit), pointers and a function pointer, 2-D arrays,
// a 128-bit integer, per-CPU values, a struct key, global data sections, a map of maps (no
// BTF) and a PROG_ARRAY (key type only) — and C-dump paths: a forward declaration through a
// pointer cycle, typedefs of function pointers, const/volatile, explicit padding.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED = 1, GREEN = 2, BLUE = -3 };
enum wide : unsigned long long { W_SMALL = 7, W_BIG = 0x123456789ULL };

struct node;
typedef int (*visit_fn)(struct node *n, void *ctx);

struct node {
	struct node *next;
	visit_fn visit;
	const volatile int weight;
};

struct inner {
	__u16 port;
	__s8 delta;
};

struct value {
	__s8 s8;
	__u8 u8;
	__s16 s16;
	__u16 u16;
	__s32 s32;
	__u32 u32;
	__s64 s64;
	__u64 u64;
	_Bool flag;
	char name[6];
	char raw[3];
	unsigned int lo : 3, mid : 10, hi : 19;
	union {
		__u32 word;
		__u8 bytes[4];
	};
	struct {
		__u16 a;
		__u16 b;
	};
	struct inner in;
	enum color c1;
	enum color c2;
	enum wide w;
	struct node *ptr;
	visit_fn fn;
	__u8 grid[2][2];
	unsigned __int128 big;
};

struct flow {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct padded {
	char a;
	long b __attribute__((aligned(16)));
	char c;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct value);
} values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct flow);
	__type(value, struct inner);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inner);
} per_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u64);
	__type(value, __s32);
} per_cpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct padded);
} pads SEC(".maps");

struct leaf {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} leaf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct leaf);
} outer SEC(".maps") = {
	.values = { [1] = &leaf },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jumps SEC(".maps");

int counter = 3;
__u64 hits;
const volatile char banner[8] = "kbpf";
const volatile enum color mode = GREEN;

SEC("xdp")
int xdp_btf(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct value *v = bpf_map_lookup_elem(&values, &k);
	struct flow f = { .proto = 6 };
	struct inner *in = bpf_map_lookup_elem(&flows, &f);
	struct padded *p = bpf_map_lookup_elem(&pads, &k);
	struct node n = {};

	hits++;
	if (v && in && p)
		return v->lo + in->port + p->c + counter + banner[0] + n.weight;
	if (bpf_map_lookup_elem(&per_cpu, &k) || bpf_map_lookup_elem(&outer, &k))
		return XDP_DROP;
	return mode == GREEN ? XDP_PASS : XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";

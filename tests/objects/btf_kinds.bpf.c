// BTF kinds beyond the basics in one map value: FLOAT (double, behind a pointer), ENUM64, a signed
// enum, a bitfield, a union, TYPE_TAG on a pointer, DECL_TAG on a member, a
// typedef/const chain and a nested array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum big_flags : unsigned long long {
	BIG_ONE = 1,
	BIG_HIGH = 0x100000000ULL,
};

enum sign_e {
	NEG = -2,
	POS = 3,
};

typedef const unsigned short cu16;

struct kinds {
	double *ratio; /* FLOAT behind a pointer: bpftool 7.1 cannot print a FLOAT value */
	enum big_flags big;
	enum sign_e sign;
	unsigned int lo : 3;
	unsigned int hi : 5;
	union {
		__u32 as_u32;
		__u8 as_bytes[4];
	} u;
	int __attribute__((btf_type_tag("user"))) *uptr;
	__u32 tagged __attribute__((btf_decl_tag("kbpf_tag")));
	cu16 small;
	__u8 grid[2][3];
	_Bool flag;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct kinds);
} kinds_map SEC(".maps");

SEC("xdp")
int xdp_kinds(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct kinds *v = bpf_map_lookup_elem(&kinds_map, &k);
	if (!v)
		return XDP_PASS;
	v->tagged++;
	return v->lo ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

typedef unsigned int __u32;

typedef unsigned long long __u64;

struct leaf {
	int (*type)[2];
	int (*max_entries)[2];
	__u32 *key;
	__u64 *value;
};

typedef signed char __s8;

typedef unsigned char __u8;

typedef short __s16;

typedef unsigned short __u16;

typedef int __s32;

typedef long long __s64;

struct inner {
	__u16 port;
	__s8 delta;
};

enum color {
	RED = 1,
	GREEN = 2,
	BLUE = -3,
};

enum wide {
	W_SMALL = 7ULL,
	W_BIG = 4886718345ULL,
};

struct node;

typedef int (*visit_fn)(struct node *, void *);

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
	unsigned int lo: 3;
	unsigned int mid: 10;
	int: 3;
	unsigned int hi: 19;
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
	long: 64;
	unsigned __int128 big;
};

struct node {
	struct node *next;
	visit_fn visit;
	volatile const int weight;
};

struct flow {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct padded {
	char a;
	long: 64;
	long b;
	char c;
};

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */

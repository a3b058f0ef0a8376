// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * kbpf-maglev XDP datapath: Maglev consistent hashing over per-service lookup
 * tables of individual sizes (BPF_MAP_TYPE_HASH_OF_MAPS whose inner template is
 * an ARRAY with BPF_F_INNER_MAP, so every service's inner array may have its own
 * max_entries).
 *
 * Per packet (IPv4 unfragmented, or IPv6 without extension headers; TCP or UDP):
 *   1. service = maglev_services[(daddr, dport, proto)] (maglev_services6 for
 *      IPv6); unknown -> XDP_PASS
 *   2. conntrack: maglev_conntrack[5-tuple] -> backend id (the paper's
 *      "connection tracking first"); reused while the backend still exists
 *   3. otherwise Maglev: hash = jhash_3words(saddr, ports, proto, seed)
 *      (IPv6: jhash_3words(s3, ports, proto, jhash_3words(s0, s1, s2, seed))),
 *      slot = hash % M, local = table[slot] (u16), id = backend_list[local]
 *      (u32), and the choice is written to conntrack
 *   4. DNAT daddr (and dport when the backend has a port) with incremental
 *      IPv4 and L4 checksum updates (RFC 1624), swap the Ethernet addresses,
 *      XDP_TX. IPv6 services use IPv6 backends (maglev_backends6).
 *
 * Inner array layout (value_size 8; must match kbpf_maglev::layout):
 *   element 0                 struct maglev_header
 *   elements 1..table_base    backend list: two u32 global backend ids each
 *   elements table_base..     the table: four u16 local backend indices each
 * The header travels inside the inner map so that the table and its size are
 * swapped together by one outer-map update: a reader never combines a new M
 * with an old table.
 *
 * Build: crates/maglev/bpf/build.sh (clang-19 -O2 -g -target bpf -mcpu=v3).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Same constant and mixing as the kernel's include/linux/jhash.h. */
#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

struct svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct maglev_header {
	__u32 table_size;    /* M: number of slots (prime), 0 = no backends */
	__u16 backend_count; /* entries in the backend list */
	__u16 table_base;    /* element index of the first table element */
};

struct backend {
	__be32 addr;  /* 0 = no backend at this id */
	__be16 port;  /* 0 = keep the service port */
	__u16 flags;
};

struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct ct_value {
	__u32 backend_id;
	__u32 flow_hash; /* the Maglev hash the choice was made with */
};

struct svc6_key {
	__u8 vip[16];
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct backend6 {
	__u8 addr[16]; /* :: = no backend at this id */
	__be16 port;   /* 0 = keep the service port */
	__u16 flags;
};

struct ct6_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct config {
	__u32 hash_seed;
	__u32 reserved;
};

enum stat_index {
	STAT_PASS = 0,
	STAT_TX = 1,
	STAT_DROP = 2,
	STAT_CT_HIT = 3,
	STAT_CT_MISS = 4,
	STAT_MAX = 5,
};

struct maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1); /* template only; each service has its own size */
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16384); /* the demo's 10,000 services fit */
	__type(key, struct svc_key);
	__array(values, struct maglev_inner);
} maglev_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 524288); /* one id per (service, backend): 10,000 skewed services use ~320k */
	__type(key, __u32);
	__type(value, struct backend);
} maglev_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
} maglev_conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4096);
	__type(key, struct svc6_key);
	__array(values, struct maglev_inner);
} maglev_services6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct backend6);
} maglev_backends6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct6_key);
	__type(value, struct ct_value);
} maglev_conntrack6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} maglev_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} maglev_stats SEC(".maps");

static __always_inline int count(__u32 idx, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&maglev_stats, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
	return verdict;
}

/* One's-complement fold of a 32-bit accumulator to 16 bits. */
static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/*
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 32-bit field as two 16-bit
 * words. Works on the raw (network-order) memory images: the one's-complement
 * sum is byte-order independent as long as every word is taken the same way.
 */
static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~(from & 0xffff);
	sum += (__u16)~(from >> 16);
	sum += to & 0xffff;
	sum += to >> 16;
	return (__u16)~csum_fold32(sum);
}

static __always_inline __u16 csum_replace2(__u16 check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~from;
	sum += to;
	return (__u16)~csum_fold32(sum);
}

/* Maglev lookup in one service's inner array; returns 0 and the id, or -1. */
static __always_inline int maglev_pick(void *inner, __u32 hash, __u32 *backend_id)
{
	struct maglev_header *hdr;
	__u32 key = 0, slot, local;
	__u16 *lanes;
	__u32 *ids;

	hdr = bpf_map_lookup_elem(inner, &key);
	if (!hdr || hdr->table_size == 0 || hdr->backend_count == 0)
		return -1;
	slot = hash % hdr->table_size;
	/* The inner array's size is not known to the verifier (BPF_F_INNER_MAP):
	 * the helper bounds-checks the index and may return NULL. */
	key = (__u32)hdr->table_base + slot / 4;
	lanes = bpf_map_lookup_elem(inner, &key);
	if (!lanes)
		return -1;
	local = lanes[slot & 3];
	if (local >= hdr->backend_count)
		return -1;
	key = 1 + local / 2;
	ids = bpf_map_lookup_elem(inner, &key);
	if (!ids)
		return -1;
	*backend_id = ids[local & 1];
	return 0;
}

static __always_inline __u32 hash_seed(void)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&maglev_config, &zero);

	return cfg ? cfg->hash_seed : 0;
}

/* Send the frame back out of the interface it came in on, towards the next hop. */
static __always_inline int send_back(struct ethhdr *eth)
{
	unsigned char mac[ETH_ALEN];

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	return count(STAT_TX, XDP_TX);
}

static __always_inline int addr6_is_zero(const __u8 *a)
{
	__u64 w[2];

	__builtin_memcpy(w, a, 16);
	return (w[0] | w[1]) == 0;
}

static __always_inline int handle_ipv4(struct ethhdr *eth, void *data_end)
{
	struct ct_value ct_new, *ct;
	struct svc_key svc = {};
	struct ct_key flow = {};
	struct backend *be = NULL;
	__be16 *l4_check;
	__be16 *l4_ports;
	__u32 backend_id = 0, seed, ports, hash;
	struct iphdr *ip;
	void *inner;
	__u32 ihl;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return count(STAT_PASS, XDP_PASS);
	if (ip->version != 4 || ip->ihl < 5)
		return count(STAT_PASS, XDP_PASS);
	/* Fragments carry no (or only the first) L4 header: leave them to the stack. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return count(STAT_PASS, XDP_PASS);
	ihl = ip->ihl * 4;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ip + ihl;

		if ((void *)(tcp + 1) > data_end)
			return count(STAT_PASS, XDP_PASS);
		l4_ports = &tcp->source;
		l4_check = &tcp->check;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)ip + ihl;

		if ((void *)(udp + 1) > data_end)
			return count(STAT_PASS, XDP_PASS);
		l4_ports = &udp->source;
		l4_check = &udp->check;
	} else {
		return count(STAT_PASS, XDP_PASS);
	}

	svc.vip = ip->daddr;
	svc.port = l4_ports[1];
	svc.proto = ip->protocol;
	inner = bpf_map_lookup_elem(&maglev_services, &svc);
	if (!inner)
		return count(STAT_PASS, XDP_PASS);

	flow.saddr = ip->saddr;
	flow.daddr = ip->daddr;
	flow.sport = l4_ports[0];
	flow.dport = l4_ports[1];
	flow.proto = ip->protocol;

	ct = bpf_map_lookup_elem(&maglev_conntrack, &flow);
	if (ct) {
		backend_id = ct->backend_id;
		be = bpf_map_lookup_elem(&maglev_backends, &backend_id);
		if (be && be->addr)
			count(STAT_CT_HIT, 0);
		else
			be = NULL; /* the backend is gone: choose again */
	}
	if (!be) {
		seed = hash_seed();
		/* The two port fields as one native-endian word of their wire bytes;
		 * the destination address is left out (as Cilium does) so the same
		 * client lands on the same backend through any VIP of the service. */
		ports = (__u32)l4_ports[0] | ((__u32)l4_ports[1] << 16);
		hash = jhash_3words(ip->saddr, ports, ip->protocol, seed);
		if (maglev_pick(inner, hash, &backend_id))
			return count(STAT_DROP, XDP_DROP);
		be = bpf_map_lookup_elem(&maglev_backends, &backend_id);
		if (!be || !be->addr)
			return count(STAT_DROP, XDP_DROP);
		ct_new.backend_id = backend_id;
		ct_new.flow_hash = hash;
		bpf_map_update_elem(&maglev_conntrack, &flow, &ct_new, BPF_ANY);
		count(STAT_CT_MISS, 0);
	}

	/* DNAT: daddr and, when the backend names one, dport. */
	{
		__be32 old_daddr = ip->daddr, new_daddr = be->addr;
		__be16 old_dport = l4_ports[1], new_dport = be->port ? be->port : old_dport;
		__u16 check;

		ip->daddr = new_daddr;
		ip->check = csum_replace4(ip->check, old_daddr, new_daddr);
		check = *l4_check;
		/* UDP over IPv4 may carry no checksum (0): keep it that way. */
		if (ip->protocol == IPPROTO_TCP || check != 0) {
			check = csum_replace4(check, old_daddr, new_daddr);
			check = csum_replace2(check, old_dport, new_dport);
			if (ip->protocol == IPPROTO_UDP && check == 0)
				check = 0xffff;
			*l4_check = check;
		}
		l4_ports[1] = new_dport;
	}

	return send_back(eth);
}


static __always_inline int handle_ipv6(struct ethhdr *eth, void *data_end)
{
	struct ct_value ct_new, *ct;
	struct svc6_key svc = {};
	struct ct6_key flow = {};
	struct backend6 *be = NULL;
	__u32 backend_id = 0, ports, hash, s[4], old_w[4], new_w[4];
	__be16 *l4_ports, *l4_check;
	struct ipv6hdr *ip6;
	void *inner;
	int i;

	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return count(STAT_PASS, XDP_PASS);
	if (ip6->version != 6)
		return count(STAT_PASS, XDP_PASS);
	/* Extension headers (and so fragments) are left to the stack. */
	if (ip6->nexthdr == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip6 + 1);

		if ((void *)(tcp + 1) > data_end)
			return count(STAT_PASS, XDP_PASS);
		l4_ports = &tcp->source;
		l4_check = &tcp->check;
	} else if (ip6->nexthdr == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip6 + 1);

		if ((void *)(udp + 1) > data_end)
			return count(STAT_PASS, XDP_PASS);
		l4_ports = &udp->source;
		l4_check = &udp->check;
	} else {
		return count(STAT_PASS, XDP_PASS);
	}

	__builtin_memcpy(svc.vip, &ip6->daddr, 16);
	svc.port = l4_ports[1];
	svc.proto = ip6->nexthdr;
	inner = bpf_map_lookup_elem(&maglev_services6, &svc);
	if (!inner)
		return count(STAT_PASS, XDP_PASS);

	__builtin_memcpy(flow.saddr, &ip6->saddr, 16);
	__builtin_memcpy(flow.daddr, &ip6->daddr, 16);
	flow.sport = l4_ports[0];
	flow.dport = l4_ports[1];
	flow.proto = ip6->nexthdr;

	ct = bpf_map_lookup_elem(&maglev_conntrack6, &flow);
	if (ct) {
		backend_id = ct->backend_id;
		be = bpf_map_lookup_elem(&maglev_backends6, &backend_id);
		if (be && !addr6_is_zero(be->addr))
			count(STAT_CT_HIT, 0);
		else
			be = NULL;
	}
	if (!be) {
		__builtin_memcpy(s, &ip6->saddr, 16);
		ports = (__u32)l4_ports[0] | ((__u32)l4_ports[1] << 16);
		hash = jhash_3words(s[0], s[1], s[2], hash_seed());
		hash = jhash_3words(s[3], ports, ip6->nexthdr, hash);
		if (maglev_pick(inner, hash, &backend_id))
			return count(STAT_DROP, XDP_DROP);
		be = bpf_map_lookup_elem(&maglev_backends6, &backend_id);
		if (!be || addr6_is_zero(be->addr))
			return count(STAT_DROP, XDP_DROP);
		ct_new.backend_id = backend_id;
		ct_new.flow_hash = hash;
		bpf_map_update_elem(&maglev_conntrack6, &flow, &ct_new, BPF_ANY);
		count(STAT_CT_MISS, 0);
	}

	/* DNAT: IPv6 has no header checksum; the L4 checksum (mandatory for UDP
	 * too) covers the destination address through the pseudo-header. */
	{
		__be16 old_dport = l4_ports[1], new_dport = be->port ? be->port : old_dport;
		__u16 check = *l4_check;

		__builtin_memcpy(old_w, &ip6->daddr, 16);
		__builtin_memcpy(new_w, be->addr, 16);
		for (i = 0; i < 4; i++)
			check = csum_replace4(check, old_w[i], new_w[i]);
		check = csum_replace2(check, old_dport, new_dport);
		if (ip6->nexthdr == IPPROTO_UDP && check == 0)
			check = 0xffff;
		*l4_check = check;
		__builtin_memcpy(&ip6->daddr, new_w, 16);
		l4_ports[1] = new_dport;
	}
	return send_back(eth);
}

SEC("xdp")
int maglev_xdp(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return count(STAT_PASS, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return handle_ipv4(eth, data_end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return handle_ipv6(eth, data_end);
	return count(STAT_PASS, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";

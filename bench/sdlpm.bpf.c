// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A systemd-style IPAddressAllow= filter for bench/compare: one
 * cgroup_skb/egress program that looks every IPv4 packet's destination up in
 * one LPM trie and drops it when no prefix matches (systemd's
 * bpf-firewall.c does the same, with a second trie for IPAddressDeny= and an
 * accounting map, both left out here).  Packets that are not IPv4 pass: the
 * benchmark's allowlists are IPv4.  Loaded, filled and attached by
 * bench/sdlpm.c.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct key4 {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct key4);
	__type(value, __u8);
	__uint(max_entries, 1); /* set by the loader */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allow4 SEC(".maps");

SEC("cgroup_skb/egress")
int sdlpm_egress(struct __sk_buff *skb)
{
	struct key4 k = { .prefixlen = 32 };

	if (skb->protocol != bpf_htons(0x0800 /* ETH_P_IP */))
		return 1;
	if (bpf_skb_load_bytes(skb, 16 /* offsetof(struct iphdr, daddr) */, &k.addr, 4))
		return 0;
	return bpf_map_lookup_elem(&allow4, &k) ? 1 : 0;
}

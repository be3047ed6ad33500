// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgfence boundary: the fence's allowlist applied where the workload's traffic
 * leaves its network namespace, on the ingress of the host end of its veth.
 *
 * The cgroup hooks judge what sockets of the cgroup send.  A process holding
 * CAP_NET_RAW or CAP_NET_ADMIN over its own network namespace can put frames
 * on the wire no socket hook sees (AF_PACKET), or change a packet after the
 * hook judged it (an nft netdev egress rule, a tunnel, a TUN device with
 * forwarding).  Whatever it does inside its namespace, every frame has to
 * cross this veth to go anywhere, and here it is judged again from its own
 * headers against the same maps (the loader hands this object the fence's map
 * fds), counted as CGF_HOOK_BOUNDARY in the fence's stats.
 *
 * First, for every IPv4/IPv6 packet: its source must route back out of this
 * interface (source_routes_back, anti-spoofing); then its destination must be
 * allowed.  Passed: IPv4/IPv6 from such a source whose destination the
 * allowlist allows (TCP/UDP, port ranges, expiry: the same code as the egress
 * hook, bpf/judge.h), ARP, the IPv6 neighbour discovery a host on the link
 * needs (solicitations and advertisements, hop limit 255, to a link-local or
 * link-scope multicast address), and replies of connections opened from
 * outside toward the workload (published ports), recognised by conntrack in
 * this namespace where the kernel offers the bpf_skb_ct_lookup kfunc, from a
 * source that routes back here too.  Dropped: everything else, forged
 * sources, router advertisements and redirects, VLAN tags, other ethertypes,
 * IP options, fragments, extension headers.
 *
 * What ARP and neighbour discovery can do, never routed beyond the link: a
 * workload can claim another address of the link (a neighbour container's)
 * in the host's neighbour table and so receive what the host sends to it; it
 * cannot make the host route anything else toward itself (neighbour entries
 * are not routes, and router advertisements and redirects are dropped here,
 * so the routes the source check reads stay the host's own).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "compat.h"
#include "cgfence.h"
#include "judge.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* tcx verdicts: NEXT lets programs after this one (and classic tc) see the packet. */
#define TCX_NEXT (-1)
#define TCX_DROP 2
#define ETH_HLEN 14
#define ETH_P_ARP 0x0806
#define ICMPV6_ROUTER_SOLICIT 133
#define ICMPV6_NEIGHBOUR_SOLICIT 135
#define ICMPV6_NEIGHBOUR_ADVERT 136
#define BPF_F_CURRENT_NETNS (-1)
#define IPPROTO_ICMPV6 58

/*
 * The bridge the boundary's interface is a port of (podman's rootful veths
 * are), 0 for none: written by the loader before load (rtnetlink IFLA_MASTER).
 * Replies toward the workload's addresses are routed to the bridge, not to
 * the port.
 */
const volatile __u32 cgf_boundary_master;

struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
				  __u32 tuple_len, struct bpf_ct_opts *opts,
				  __u32 opts_len) __ksym __weak;
void bpf_ct_release(struct nf_conn *ct) __ksym __weak;

/*
 * The route this namespace takes toward one of the packet's addresses (its
 * source when to_source, else its destination), looked up as the kernel's
 * rp_filter looks the way back up (destination that address, source the
 * other one), as if arriving by this interface.  Returns the bpf_fib_lookup
 * answer; *ifindex is the route's device.  Needs forwarding on the interface
 * (the kernel's check): where it is off the answer is "forwarding disabled".
 */
static __always_inline long route_toward(struct __sk_buff *skb, bool to_source, __u32 *ifindex)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.ifindex = skb->ifindex;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		fib.family = AF_INET;
		fib.ipv4_dst = to_source ? ip.saddr : ip.daddr;
		fib.ipv4_src = to_source ? ip.daddr : ip.saddr;
	} else {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, to_source ? &ip6.saddr : &ip6.daddr, 16);
		__builtin_memcpy(fib.ipv6_src, to_source ? &ip6.daddr : &ip6.saddr, 16);
	}
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	*ifindex = fib.ifindex;
	return rc;
}

/* Does that route lead back to the workload's side: this interface or its bridge? */
static __always_inline bool on_this_side(struct __sk_buff *skb, long rc, __u32 ifindex)
{
	/*
	 * FRAG_NEEDED: the route was found and ifindex is its device; with tot_len 0
	 * the kernel only compares the skb with that device after the lookup.
	 */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return false;
	return ifindex == skb->ifindex || (cgf_boundary_master && ifindex == cgf_boundary_master);
}

/*
 * Anti-spoofing: does the packet's source address route back out of this
 * interface (strict reverse path)?  The route the boundary's namespace would
 * take to the source, looked up as the kernel's rp_filter does (destination
 * the packet's source, source its destination), must leave by this interface
 * or by the bridge it is a port of.  Whatever the workload writes in its
 * headers, it can then only speak for addresses whose replies come back to
 * its side: without this check a forged packet from a denied host X to an
 * allowed A:pa creates a conntrack entry whose reply direction, A:pa -> X,
 * the workload could then send through the inbound-reply exception below.
 * Refused: addresses of the host itself (the lookup ends in a local route),
 * addresses routed elsewhere, no route, 0.0.0.0 (DHCP: podman's workloads
 * get their addresses from the host), IPv6 link-local sources (the kernel's
 * lookup never resolves them; neighbour discovery is passed before this).
 * Where forwarding is off on the interface the lookup answers nothing and the
 * packet is refused too: fail closed.
 */
static __always_inline bool source_routes_back(struct __sk_buff *skb)
{
	__u32 ifindex = 0;
	long rc = route_toward(skb, true, &ifindex);

	return on_this_side(skb, rc, ifindex);
}

/*
 * Neighbour discovery (RFC 4861: router solicitation 133, neighbour
 * solicitation 135 and advertisement 136, no extension header) with hop
 * limit 255, which no receiver accepts once a router has forwarded it, sent to
 * a link-local unicast or link-scope multicast address, or to a global
 * address the host does not forward beyond the link: what address resolution,
 * neighbour unreachability detection and router discovery on the link need.
 * Unicast to a global address beyond (a gateway known by such an address) is
 * not passed: a forwarded copy would still carry data past the policy; the
 * neighbour falls back to multicast resolution.  Router
 * advertisements (134) and redirects (137) are not passed: a workload is
 * never its host's router, and a route it planted in the host (an accepted
 * advertisement's default route or route information) would make any source
 * "route back" to it and undo the source check.
 */
static __always_inline bool is_neighbour_discovery(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	__u32 ifindex = 0;
	__u8 type;
	long rc;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip6), &type, 1))
		return false;
	if (ip6.version != 6 || ip6.nexthdr != IPPROTO_ICMPV6 || ip6.hop_limit != 255 ||
	    (type != ICMPV6_ROUTER_SOLICIT && type != ICMPV6_NEIGHBOUR_SOLICIT &&
	     type != ICMPV6_NEIGHBOUR_ADVERT))
		return false;
	if (ip6.daddr.in6_u.u6_addr8[0] == 0xff)
		/* link-scope multicast: solicited-node, all-routers; no other scope */
		return (ip6.daddr.in6_u.u6_addr8[1] & 0x0f) == 0x02;
	/* link-local unicast */
	if (ip6.daddr.in6_u.u6_addr8[0] == 0xfe && (ip6.daddr.in6_u.u6_addr8[1] & 0xc0) == 0x80)
		return true;
	/*
	 * Unicast to a global address: the host's probes of the workload and the
	 * advertisements that answer its solicitations go to the host's global
	 * address.  Passed where the host keeps them on the link: an address of
	 * its own, or no route ("not forwarded": delivered or dropped here; also
	 * the answer for a link-local source, which the kernel never forwards),
	 * or an address on the workload's side of the link.
	 */
	rc = route_toward(skb, false, &ifindex);
	return rc == BPF_FIB_LKUP_RET_NOT_FWDED || on_this_side(skb, rc, ifindex);
}

/*
 * Is this packet a reply of a connection opened from outside toward the
 * workload (a published port)?  Conntrack in this namespace saw the peer's
 * first packet go in; the workload's packets of that connection are its reply
 * direction.  Only confirmed entries count.  Asked only once the source has
 * passed source_routes_back: an entry the workload opened itself has an
 * original source that routes back to its side, so the reply direction of such
 * an entry goes back to its side too, never beyond.  What the check cannot
 * tell apart are addresses on the same side: on a bridge, a workload can
 * answer in the name of a neighbour container's published port (see README,
 * boundary limitations).
 */
static __always_inline bool is_inbound_reply(struct __sk_buff *skb, const struct cgf_dest *d)
{
	struct bpf_ct_opts opts = { .netns_id = BPF_F_CURRENT_NETNS, .l4proto = d->proto };
	struct bpf_sock_tuple tuple = {};
	struct nf_conn *ct;
	__u32 tuple_len;
	bool reply;

	/* weak: NULL when the kernel has no conntrack kfuncs (libbpf 1.1 lacks bpf_ksym_exists) */
	if (!bpf_skb_ct_lookup || !bpf_ct_release)
		return false;
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return false;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		/* parse_packet has checked: no options, so the ports follow the header */
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip), &tuple.ipv4.sport, 4))
			return false;
		tuple.ipv4.saddr = ip.saddr;
		tuple.ipv4.daddr = ip.daddr;
		tuple_len = sizeof(tuple.ipv4);
	} else {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip6), &tuple.ipv6.sport, 4))
			return false;
		__builtin_memcpy(tuple.ipv6.saddr, &ip6.saddr, 16);
		__builtin_memcpy(tuple.ipv6.daddr, &ip6.daddr, 16);
		tuple_len = sizeof(tuple.ipv6);
	}
	ct = bpf_skb_ct_lookup(skb, &tuple, tuple_len, &opts, sizeof(opts));
	if (!ct)
		return false;
	reply = opts.dir == IP_CT_DIR_REPLY && (ct->status & IPS_CONFIRMED);
	bpf_ct_release(ct);
	return reply;
}

SEC("tc")
int cgf_boundary(struct __sk_buff *skb)
{
	struct cgf_dest d = {};

	/* A VLAN tag would carry the frame past the host's view of its ethertype. */
	if (skb->vlan_present)
		return refuse(CGF_HOOK_BOUNDARY, &d, CGF_REASON_HEADER) ? TCX_NEXT : TCX_DROP;
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return TCX_NEXT; /* never routed beyond the link */
	if (skb->protocol == bpf_htons(ETH_P_IPV6) && is_neighbour_discovery(skb))
		return TCX_NEXT;
	if (!parse_packet(skb, ETH_HLEN, &d, NULL))
		return refuse(CGF_HOOK_BOUNDARY, &d, CGF_REASON_HEADER) ? TCX_NEXT : TCX_DROP;
	/* A loopback destination on a link is always a rerouting trick. */
	if (is_loopback(d.addr))
		return refuse(CGF_HOOK_BOUNDARY, &d, CGF_REASON_LOOPBACK_OFF_LO) ? TCX_NEXT : TCX_DROP;
	if (!source_routes_back(skb))
		return refuse(CGF_HOOK_BOUNDARY, &d, CGF_REASON_FORGED_SOURCE) ? TCX_NEXT : TCX_DROP;
	return decide(CGF_HOOK_BOUNDARY, &d,
		      allowlist_allows(&d) || is_inbound_reply(skb, &d)) ? TCX_NEXT : TCX_DROP;
}

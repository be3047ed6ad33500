// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgfence: the egress allowlist of one fenced cgroup.
 *
 * One instance of this object is loaded per fenced cgroup, so every map below
 * belongs to exactly one fence, and cgroups that are not fenced run none of it.
 *
 * Where a destination is judged:
 *   connect4/6   TCP connect (and TCP Fast Open), connected UDP: EPERM on deny
 *   sendmsg4/6   unconnected UDP (sendto, sendmsg, sendmmsg): EPERM on deny
 *   egress       every IPv4/IPv6 packet a socket of the cgroup sends, judged
 *                from the packet's own header: the backstop for raw and ping
 *                sockets, for addresses changed after connect (OUTPUT DNAT)
 *                and for whatever the socket hooks miss
 *
 * A destination allowed at connect() stays allowed for the life of the
 * connection, also once its allowlist entry expires, the way a stateful
 * firewall keeps established flows.  The socket itself remembers the
 * destination it was allowed for: a TCP or UDP socket gets a destination only
 * through connect(), which connect4/6 judged (accepted TCP connections get the
 * peer that connected in), so a packet whose destination is its socket's own
 * costs egress no map lookup at all.  Packets to any other destination
 * (unconnected UDP, a connected socket's sendto elsewhere, an address changed
 * by OUTPUT DNAT, raw and ping sockets) are judged afresh against the
 * allowlist.  Keeping a verdict in socket storage instead cost ~480 ns per
 * connect() on this machine, most of cgfence's cost (bench/results.md).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "compat.h"
#include "cgfence.h"
#include "judge.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* TCP for stream sockets (MPTCP included), UDP for datagram sockets, else 0. */
static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == SOCK_STREAM)
		return IPPROTO_TCP;
	if (ctx->type == SOCK_DGRAM && ctx->protocol == IPPROTO_UDP)
		return IPPROTO_UDP;
	return 0;
}

static __always_inline void dest_from_ctx4(struct bpf_sock_addr *ctx, struct cgf_dest *d)
{
	set_v4(d, ctx->user_ip4);
	d->port = bpf_ntohs((__u16)ctx->user_port);
	d->proto = sock_proto(ctx);
}

static __always_inline void dest_from_ctx6(struct bpf_sock_addr *ctx, struct cgf_dest *d)
{
	__u32 w;

	w = ctx->user_ip6[0];
	__builtin_memcpy(d->addr, &w, 4);
	w = ctx->user_ip6[1];
	__builtin_memcpy(d->addr + 4, &w, 4);
	w = ctx->user_ip6[2];
	__builtin_memcpy(d->addr + 8, &w, 4);
	w = ctx->user_ip6[3];
	__builtin_memcpy(d->addr + 12, &w, 4);
	d->port = bpf_ntohs((__u16)ctx->user_port);
	d->proto = sock_proto(ctx);
}

SEC("cgroup/connect4")
int cgf_connect4(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx4(ctx, &d);
	return decide(CGF_HOOK_CONNECT4, &d, allowlist_allows(&d));
}

SEC("cgroup/connect6")
int cgf_connect6(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx6(ctx, &d);
	return decide(CGF_HOOK_CONNECT6, &d, allowlist_allows(&d));
}

SEC("cgroup/sendmsg4")
int cgf_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx4(ctx, &d);
	return decide(CGF_HOOK_SENDMSG4, &d, allowlist_allows(&d));
}

SEC("cgroup/sendmsg6")
int cgf_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx6(ctx, &d);
	return decide(CGF_HOOK_SENDMSG6, &d, allowlist_allows(&d));
}

/*
 * Is the packet's destination its own socket's, given at a judged connect()
 * (or, for an accepted connection, the peer's)?  Only TCP and UDP sockets
 * count: a raw socket's connect() passes no hook, so its destination proves
 * nothing.
 */
static __always_inline bool socket_allows(struct __sk_buff *skb, const struct cgf_dest *d)
{
	struct bpf_sock *sk = skb->sk, *full;
	__u32 w[4];

	if (!sk || (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP))
		return false;
	/* A listener's SYN-ACK (with syncookies) goes to whoever connected in. */
	if (sk->state == BPF_TCP_LISTEN)
		return d->proto == IPPROTO_TCP;
	if (sk->state == BPF_TCP_NEW_SYN_RECV) {
		/* a request socket: TCP by nature, no type or protocol to read */
		if (d->proto != IPPROTO_TCP)
			return false;
	} else {
		full = bpf_sk_fullsock(sk);
		if (!full)
			return false;
		if (d->proto == IPPROTO_TCP &&
		    (full->type != SOCK_STREAM || full->protocol != IPPROTO_TCP))
			return false;
		if (d->proto == IPPROTO_UDP &&
		    (full->type != SOCK_DGRAM || full->protocol != IPPROTO_UDP))
			return false;
	}
	/* The destination is read through the common part, whatever the socket. */
	if (bpf_ntohs(sk->dst_port) != d->port)
		return false;
	__builtin_memcpy(w, d->addr, 16);
	if (is_v4_mapped(d->addr))
		return sk->dst_ip4 == w[3];
	return sk->dst_ip6[0] == w[0] && sk->dst_ip6[1] == w[1] && sk->dst_ip6[2] == w[2] &&
	       sk->dst_ip6[3] == w[3];
}

SEC("cgroup_skb/egress")
int cgf_egress(struct __sk_buff *skb)
{
	struct cgf_dest d = {};
	bool allowed;

	if (!parse_packet(skb, 0, &d))
		allowed = false;
	else
		allowed = socket_allows(skb, &d) || allowlist_allows(&d);
	/* 1 passes the packet, 0 drops it (and the sender gets EPERM). */
	return decide(CGF_HOOK_EGRESS, &d, allowed);
}

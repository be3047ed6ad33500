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
 *                It also drops the IPv6 TCP and UDP of a socket that may
 *                send from an address that is not the host's (freebind,
 *                transparent, net.ipv6.ip_nonlocal_bind: sock_nonlocal6),
 *                and checks an IPv6 source the process chose against its
 *                namespace's addresses (source_foreign6)
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
 *
 * DNS proxy mode (CGF_CONFIG_DNS_PROXY in the config): connect4/6 and
 * sendmsg4/6 rewrite every TCP or UDP destination with port 53, whatever its
 * address, to the fence's proxy (cgfenced listening on loopback inside the
 * fence's network namespace) without judging it: the proxy judges the names.
 * The destination the client gave is kept in the socket's local storage, so
 * that recvmsg4/6 give a reply the source address the client sent to and
 * getpeername4/6 the peer it connected to.  Egress lets packets to the
 * proxy endpoint of this fence through; another fence's proxy ports are
 * judged by the allowlist like anything else.  Traffic to other ports pays
 * one compare for all this.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "compat.h"
#include "cgfence.h"
#include "judge.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Where a socket's DNS was steered (proxy mode), created at the first
 * rewrite.  One destination per socket, the last one sent to: a client that
 * sends the same query to several resolvers from one socket (musl) sees
 * every reply come from the last of them, which it accepts as well.
 */
struct cgf_dns_orig {
	__u8 orig[16];    /* what the client gave; IPv4 as ::ffff:a.b.c.d */
	__u8 proxy[16];   /* what it was rewritten to, same form */
	__u16 orig_port;  /* network order */
	__u16 proxy_port; /* network order */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgf_dns_orig);
} cgf_dns_orig SEC(".maps");

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

static __always_inline struct cgf_config *fence_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cgf_config, &zero);
}

static __always_inline bool addr_eq(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/* The proxy endpoint (IPv4 as mapped) for a destination's family; false when there is none. */
static __always_inline bool proxy_for(const struct cgf_config *cfg, const struct cgf_dest *d,
				      __u8 addr[16], __u16 *port)
{
	if (is_v4_mapped(d->addr)) {
		__u32 a4;

		if (cfg->proxy4.family != AF_INET || !cfg->proxy4.port)
			return false;
		__builtin_memcpy(&a4, cfg->proxy4.addr, 4);
		mapped4(addr, a4);
		*port = cfg->proxy4.port;
		return true;
	}
	if (cfg->proxy6.family != AF_INET6 || !cfg->proxy6.port)
		return false;
	__builtin_memcpy(addr, cfg->proxy6.addr, 16);
	*port = cfg->proxy6.port;
	return true;
}

/*
 * A TCP or UDP destination with port 53 (d, as the client gave it): in
 * proxy mode rewritten to the proxy and allowed, its original kept in the
 * socket; otherwise judged as any other destination.  v6 says which of
 * user_ip4 and user_ip6 the context carries.
 */
static __always_inline int dns_steer(struct bpf_sock_addr *ctx, enum cgf_hook hook,
				     const struct cgf_dest *d, bool v6)
{
	struct cgf_config *cfg = fence_config();
	struct cgf_dns_orig *o;
	struct cgf_stats *s;
	struct bpf_sock *sk;
	__u8 proxy[16];
	__u16 port;
	__u32 w[4];

	if (!cfg || !(cfg->flags & CGF_CONFIG_DNS_PROXY) || !d->proto)
		return decide(hook, d, allowlist_allows(d));
	/* No proxy for this family (yet, or any more): DNS is denied, never let past. */
	sk = ctx->sk;
	if (!sk || !proxy_for(cfg, d, proxy, &port))
		return refuse(hook, d, CGF_REASON_NO_DNS_PROXY);
	o = bpf_sk_storage_get(&cgf_dns_orig, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return refuse(hook, d, CGF_REASON_NO_DNS_PROXY);
	__builtin_memcpy(o->orig, d->addr, 16);
	__builtin_memcpy(o->proxy, proxy, 16);
	o->orig_port = bpf_htons(d->port);
	o->proxy_port = bpf_htons(port);
	__builtin_memcpy(w, proxy, 16);
	if (v6) {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	} else {
		ctx->user_ip4 = w[3];
	}
	ctx->user_port = bpf_htons(port);
	s = stats();
	if (s)
		s->dns_steered++;
	return 1;
}

SEC("cgroup/connect4")
int cgf_connect4(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx4(ctx, &d);
	if (ctx->user_port == bpf_htons(53))
		return dns_steer(ctx, CGF_HOOK_CONNECT4, &d, false);
	return decide(CGF_HOOK_CONNECT4, &d, allowlist_allows(&d));
}

SEC("cgroup/connect6")
int cgf_connect6(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx6(ctx, &d);
	if (ctx->user_port == bpf_htons(53))
		return dns_steer(ctx, CGF_HOOK_CONNECT6, &d, true);
	return decide(CGF_HOOK_CONNECT6, &d, allowlist_allows(&d));
}

SEC("cgroup/sendmsg4")
int cgf_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx4(ctx, &d);
	if (ctx->user_port == bpf_htons(53))
		return dns_steer(ctx, CGF_HOOK_SENDMSG4, &d, false);
	return decide(CGF_HOOK_SENDMSG4, &d, allowlist_allows(&d));
}

SEC("cgroup/sendmsg6")
int cgf_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx6(ctx, &d);
	if (ctx->user_port == bpf_htons(53))
		return dns_steer(ctx, CGF_HOOK_SENDMSG6, &d, true);
	return decide(CGF_HOOK_SENDMSG6, &d, allowlist_allows(&d));
}

/*
 * A reply's source (recvmsg) or a connected socket's peer (getpeername) that
 * is the proxy the socket's DNS was steered to becomes the address the client
 * gave.  Sockets that never sent to port 53 have no storage: one lookup.
 * These hooks must return 1.
 */
static __always_inline void restore4(struct bpf_sock_addr *ctx)
{
	struct cgf_dns_orig *o;
	struct cgf_dest d;
	__u32 w;

	if (!ctx->sk)
		return;
	o = bpf_sk_storage_get(&cgf_dns_orig, ctx->sk, 0, 0);
	if (!o || ctx->user_port != o->proxy_port)
		return;
	set_v4(&d, ctx->user_ip4);
	if (!addr_eq(d.addr, o->proxy) || !is_v4_mapped(o->orig))
		return;
	__builtin_memcpy(&w, o->orig + 12, 4);
	ctx->user_ip4 = w;
	ctx->user_port = o->orig_port;
}

static __always_inline void restore6(struct bpf_sock_addr *ctx)
{
	struct cgf_dns_orig *o;
	struct cgf_dest d;
	__u32 w[4];

	if (!ctx->sk)
		return;
	o = bpf_sk_storage_get(&cgf_dns_orig, ctx->sk, 0, 0);
	if (!o || ctx->user_port != o->proxy_port)
		return;
	dest_from_ctx6(ctx, &d);
	if (!addr_eq(d.addr, o->proxy))
		return;
	__builtin_memcpy(w, o->orig, 16);
	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	ctx->user_port = o->orig_port;
}

SEC("cgroup/recvmsg4")
int cgf_recvmsg4(struct bpf_sock_addr *ctx)
{
	restore4(ctx);
	return 1;
}

SEC("cgroup/recvmsg6")
int cgf_recvmsg6(struct bpf_sock_addr *ctx)
{
	restore6(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int cgf_getpeername4(struct bpf_sock_addr *ctx)
{
	restore4(ctx);
	return 1;
}

SEC("cgroup/getpeername6")
int cgf_getpeername6(struct bpf_sock_addr *ctx)
{
	restore6(ctx);
	return 1;
}

/*
 * struct inet_sock's flags before Linux 6.6, bitfields (CO-RE finds them by
 * name); since then bits of inet_flags, where INET_FLAGS_FREEBIND is 11 and
 * INET_FLAGS_TRANSPARENT 15 (include/net/inet_sock.h, an enum without a name
 * that CO-RE could relocate).
 */
struct inet_sock___bits {
	__u8 freebind : 1;
	__u8 transparent : 1;
} __attribute__((preserve_access_index));

#define CGF_INET_FLAGS_NONLOCAL ((1UL << 11) | (1UL << 15))

/*
 * May the socket that sent an IPv6 TCP or UDP packet use a source that is
 * not the host's: IPV6_FREEBIND, IP_FREEBIND or a transparent flag on, or
 * net.ipv6.ip_nonlocal_bind set in its network namespace (the check of
 * ipv6_can_nonlocal_bind())?  The freebind options need no capability, and
 * IPv6 sends from any address such a socket binds (or names in
 * IPV6_PKTINFO), while every hook judges destinations only.  A forged
 * source turns what the fence allows into a way out: an allowed host that
 * answers (an echo, an error) answers the forged address, a router on the
 * way sends it an ICMP error that quotes the datagram, and a connect() from
 * a forged source to a listener of the fence's own makes the listener send
 * its SYN-ACK there.  So all of such a socket's IPv6 TCP and UDP is dropped.
 *
 * Judged here, per packet, rather than by refusing the options in a
 * cgroup/setsockopt program: the kernel runs no setsockopt program for a
 * 32-bit (compat) caller, the sysctl may have been set before the fence,
 * and such a program costs every setsockopt() of the fence (lock_sock and
 * a copy of the value, about 1 % of the connections a second of
 * bench/compare's client, which sets one option per connection).  The
 * flags are read as they are when the packet leaves, and the kernel reads
 * them only when a source is taken: a socket that turns one on, binds a
 * foreign address and turns it off again is caught by source_foreign6,
 * which checks the source itself.  Only TCP and UDP packets can be allowed
 * at all, so only their sockets are looked at.  IPv4 needs no such check:
 * it routes from a foreign source only for transparent sockets, which take
 * CAP_NET_RAW or CAP_NET_ADMIN (then a raw socket forges any source too:
 * the boundary's case); a freebind socket's send fails with ENETUNREACH.
 */
static __always_inline struct inet_sock *inet6_sock_of(struct bpf_sock *sk, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		struct tcp6_sock *t = bpf_skc_to_tcp6_sock(sk);

		if (t)
			return &t->tcp.inet_conn.icsk_inet;
	} else if (proto == IPPROTO_UDP) {
		struct udp6_sock *u = bpf_skc_to_udp6_sock(sk);

		if (u)
			return &u->udp.inet;
	}
	return NULL; /* a raw socket, or no full socket: the allowlist judges it */
}

static __always_inline bool sock_nonlocal6(struct inet_sock *inet)
{
	struct net *net = inet->sk.__sk_common.skc_net.net;

	if (net && net->ipv6.sysctl.ip_nonlocal_bind)
		return true;
	if (bpf_core_field_exists(inet->inet_flags))
		return inet->inet_flags & CGF_INET_FLAGS_NONLOCAL;
	return BPF_CORE_READ_BITFIELD_PROBED((struct inet_sock___bits *)inet, freebind) ||
	       BPF_CORE_READ_BITFIELD_PROBED((struct inet_sock___bits *)inet, transparent);
}

/*
 * The source an IPv6 socket last sent from, and the device it left by, that
 * were found to be an address of its network namespace on that device, and
 * the namespace's address generation when they were
 * (source_foreign6); created at its first check.
 */
struct cgf_src_ok {
	/*
	 * UDP sends of one socket run on several CPUs at once, without the
	 * socket lock: an entry written by two of them word by word could mix
	 * two good sources into one no check found.
	 */
	struct bpf_spin_lock lock;
	__u32 addr[4];
	__u32 ifindex;
	__u32 addr_gen;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgf_src_ok);
} cgf_src_ok SEC(".maps");

/*
 * Bounds of the walk over a namespace's addresses (beyond them an address
 * is not found: refused); see README, "What is judged".
 */
#define CGF_NETNS_DEVS_MAX 1024
#define CGF_DEV_ADDRS_MAX 256

/* inet6_ifaddr flags and scopes (include/uapi/linux/if_addr.h, net/addrconf.h) */
#define CGF_IFA_F_OPTIMISTIC 0x04
#define CGF_IFA_F_DADFAILED 0x08
#define CGF_IFA_F_TENTATIVE 0x40
#define CGF_IFA_HOST 0x10
#define CGF_IFA_LINK 0x20

struct addr_walk {
	__u32 want[4];     /* the address looked for */
	__u32 ifindex;     /* the device the packet leaves by */
	bool on_dev;       /* the device being walked is that one */
	void *head, *pos;  /* the list being walked, and where the walk is */
	bool found, ended; /* found it; reached the list's head again */
};

/*
 * One address of a device: usable as a source the way the kernel's
 * ipv6_chk_addr_and_flags() lets bind() use it: not tentative (unless
 * optimistic), not failed duplicate detection, and of link or host scope
 * only on the device the packet leaves by.
 */
static long addr_step(__u32 i, struct addr_walk *w)
{
	struct inet6_ifaddr *ifa;
	__u32 a[4], flags;
	__u16 scope;

	if (w->pos == w->head) {
		w->ended = true;
		return 1;
	}
	ifa = (void *)w->pos - bpf_core_field_offset(struct inet6_ifaddr, if_list);
	if (bpf_core_read(a, sizeof(a), &ifa->addr))
		return 1;
	w->pos = BPF_CORE_READ(ifa, if_list.next);
	if (!addr_eq((const __u8 *)a, (const __u8 *)w->want))
		return 0;
	flags = BPF_CORE_READ(ifa, flags);
	scope = BPF_CORE_READ(ifa, scope);
	if (flags & CGF_IFA_F_DADFAILED)
		return 0;
	if ((flags & CGF_IFA_F_TENTATIVE) && !(flags & CGF_IFA_F_OPTIMISTIC))
		return 0;
	if ((scope & (CGF_IFA_HOST | CGF_IFA_LINK)) && !w->on_dev)
		return 0;
	w->found = true;
	return 1;
}

static long dev_step(__u32 i, struct addr_walk *devs)
{
	struct addr_walk addrs = {};
	struct net_device *dev;
	struct inet6_dev *idev;

	if (devs->pos == devs->head) {
		devs->ended = true;
		return 1;
	}
	dev = (void *)devs->pos - bpf_core_field_offset(struct net_device, dev_list);
	devs->pos = BPF_CORE_READ(dev, dev_list.next);
	idev = BPF_CORE_READ(dev, ip6_ptr);
	if (!idev)
		return 0;
	__builtin_memcpy(addrs.want, devs->want, sizeof(addrs.want));
	addrs.on_dev = BPF_CORE_READ(dev, ifindex) == devs->ifindex;
	addrs.head = (void *)idev + bpf_core_field_offset(struct inet6_dev, addr_list);
	addrs.pos = BPF_CORE_READ(idev, addr_list.next);
	bpf_loop(CGF_DEV_ADDRS_MAX, addr_step, &addrs, 0);
	if (addrs.found) {
		devs->found = true;
		return 1;
	}
	return 0; /* on to the next device, also past a device with more addresses */
}

/*
 * May want be the source of a packet of net that leaves by device ifindex:
 * is it an address of one of net's devices (the lists the kernel's own
 * ipv6_chk_addr() consults)?  The lists are RCU lists and the program runs
 * under the RCU read lock, as the kernel's readers do; they are read by
 * probe reads, so an entry that goes away under the walk reads as no match.
 */
static __noinline bool addr_in_netns(struct net *net, const __u32 *want, __u32 ifindex)
{
	struct addr_walk devs = {};

	if (!net)
		return false;
	__builtin_memcpy(devs.want, want, sizeof(devs.want));
	devs.ifindex = ifindex;
	devs.head = (void *)net + bpf_core_field_offset(struct net, dev_base_head);
	devs.pos = BPF_CORE_READ(net, dev_base_head.next);
	bpf_loop(CGF_NETNS_DEVS_MAX, dev_step, &devs, 0);
	return devs.found;
}

/*
 * Is the source of an IPv6 packet of this TCP or UDP socket not an address
 * of the socket's network namespace, usable on the device it leaves by?
 * The kernel checks a source when it takes it (bind(), IPV6_PKTINFO, the
 * route at connect()), and then only against the socket's options and the
 * namespace's addresses as they are that moment: a socket may turn
 * IPV6_FREEBIND on, bind a foreign address, turn it off and send from it (a
 * 32-bit process's setsockopt() runs no BPF hook at all), and a socket goes
 * on sending from an address that has left the namespace since, which a
 * uid-0 process with no capability can make happen by writing its
 * namespace's disable_ipv6.  So the source of every packet is checked.  The
 * verdict for a source is kept in the socket with the namespace's address
 * generation (net->ipv6.dev_addr_genid, bumped on every address added,
 * removed or failing duplicate detection): one lookup per packet, one walk
 * of the addresses per source and change.  Not seen: a link taken down with
 * keep_addr_on_down, whose addresses turn tentative with no address event
 * (taking it down needs CAP_NET_ADMIN; the addresses stay the namespace's).
 */
static __always_inline bool source_foreign6(struct __sk_buff *skb, struct bpf_sock *sk,
					    struct inet_sock *inet, const __u32 *src)
{
	struct cgf_src_ok *ok;
	struct bpf_sock *full;
	struct net *net;
	__u32 addr_gen, ifindex;
	bool hit;

	full = bpf_sk_fullsock(sk);
	net = inet->sk.__sk_common.skc_net.net;
	if (!full || !net)
		return true;
	/* read before the walk: a change during it makes the next packet walk again */
	addr_gen = net->ipv6.dev_addr_genid.counter;
	ifindex = skb->ifindex;
	ok = bpf_sk_storage_get(&cgf_src_ok, full, 0, 0);
	if (ok) {
		bpf_spin_lock(&ok->lock);
		hit = addr_eq((const __u8 *)ok->addr, (const __u8 *)src) &&
		      ok->ifindex == ifindex && ok->addr_gen == addr_gen;
		bpf_spin_unlock(&ok->lock);
		if (hit)
			return false;
	}
	if (!addr_in_netns(net, src, ifindex))
		return true;
	ok = bpf_sk_storage_get(&cgf_src_ok, full, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (ok) {
		bpf_spin_lock(&ok->lock);
		__builtin_memcpy(ok->addr, src, sizeof(ok->addr));
		ok->ifindex = ifindex;
		ok->addr_gen = addr_gen;
		bpf_spin_unlock(&ok->lock);
	}
	return false;
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

/* Is the packet for this fence's DNS proxy (unconnected UDP steered by sendmsg)? */
static __always_inline bool proxy_allows(const struct cgf_dest *d)
{
	struct cgf_config *cfg = fence_config();
	__u8 proxy[16];
	__u16 port;

	if (!cfg || !(cfg->flags & CGF_CONFIG_DNS_PROXY) ||
	    (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP))
		return false;
	return proxy_for(cfg, d, proxy, &port) && port == d->port && addr_eq(proxy, d->addr);
}

SEC("cgroup_skb/egress")
int cgf_egress(struct __sk_buff *skb)
{
	struct inet_sock *inet;
	struct bpf_sock *sk;
	struct cgf_dest d = {};
	__u32 src[4];

	/* 1 passes the packet, 0 drops it (and the sender gets EPERM). */
	if (!parse_packet(skb, 0, &d, src))
		return refuse(CGF_HOOK_EGRESS, &d, CGF_REASON_HEADER);
	/*
	 * Loopback leaves only through the loopback device.  A destination:
	 * with route_localnet and a route of its own, CAP_NET_ADMIN in the
	 * fence's network namespace could otherwise send one that is allowed
	 * (the DNS proxy's, a local service's) out of a real link.  An IPv4
	 * source: uid 0 with no capability can set its namespace's
	 * route_localnet (a net sysctl its uid owns), bind 127.0.0.1 and send
	 * from it out of a link, and an allowed peer that answers, or a
	 * router's ICMP error, goes to the receiver's own loopback.  IPv4 takes
	 * no other address that is not the host's without CAP_NET_RAW or
	 * CAP_NET_ADMIN (the boundary's case); an IPv6 ::1 is host scope, which
	 * source_foreign6 takes only on lo.
	 */
	if (skb->ifindex != LOOPBACK_IFINDEX) {
		if (is_loopback(d.addr))
			return refuse(CGF_HOOK_EGRESS, &d, CGF_REASON_LOOPBACK_OFF_LO);
		/* d.addr is mapped for IPv4 alone (parse_packet refuses IPv6 to one) */
		if (is_v4_mapped(d.addr) && is_loopback((const __u8 *)src))
			return refuse(CGF_HOOK_EGRESS, &d, CGF_REASON_FOREIGN_SOURCE);
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6) && (sk = skb->sk) &&
	    (inet = inet6_sock_of(sk, d.proto))) {
		/* its source may be anyone's (sock_nonlocal6) */
		if (sock_nonlocal6(inet))
			return refuse(CGF_HOOK_EGRESS, &d, CGF_REASON_ANY_SOURCE);
		if (source_foreign6(skb, sk, inet, src))
			return refuse(CGF_HOOK_EGRESS, &d, CGF_REASON_FOREIGN_SOURCE);
	}
	return decide(CGF_HOOK_EGRESS, &d,
		      socket_allows(skb, &d) || allowlist_allows(&d) || proxy_allows(&d));
}

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
 * firewall keeps established flows: the verdict and the destination it was
 * given for are kept in socket storage, and a packet to that same destination
 * costs egress one storage lookup.  Packets to any other destination are judged
 * afresh.  TCP connections accepted from outside (the fence holds a server)
 * are marked by the sockops program when they are established and pass, as do
 * the SYN-ACKs of a listener.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "compat.h"
#include "cgfence.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Allowlist tries: longest match holds the union of every covering rule. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CGF_MAX_ENTRIES);
	__type(key, struct cgf_key4);
	__type(value, struct cgf_allow);
} cgf_allow4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CGF_MAX_ENTRIES);
	__type(key, struct cgf_key6);
	__type(value, struct cgf_allow);
} cgf_allow6 SEC(".maps");

/* Fence-wide settings; written by the loader before the first attach. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgf_config);
} cgf_config SEC(".maps");

/* Counters per hook, per CPU; userspace adds the CPUs up. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgf_stats);
} cgf_stats SEC(".maps");

/* Deny events (struct cgf_event) for cgfence to print and log. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} cgf_events SEC(".maps");

/* A destination as judged: IPv4 as ::ffff:a.b.c.d so both families compare alike. */
struct cgf_dest {
	__u8 addr[16];
	__u16 port;  /* host order */
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP; 0 = slot unused */
	__u8 pad;
};

/* What the socket hooks decided for one socket. */
struct cgf_sk_verdict {
	struct cgf_dest connected; /* allowed at connect(): for the socket's life */
	struct cgf_dest last_send; /* allowed at the last unconnected send */
	__u32 passive;             /* accepted TCP connection: replies pass */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgf_sk_verdict);
} cgf_sk_verdict SEC(".maps");

static __always_inline struct cgf_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cgf_stats, &zero);
}

static __always_inline bool audit_mode(void)
{
	__u32 zero = 0;
	struct cgf_config *cfg = bpf_map_lookup_elem(&cgf_config, &zero);

	/* No config (cannot happen once loaded) means enforce: fail closed. */
	return cfg && (cfg->flags & CGF_CONFIG_AUDIT);
}

static __always_inline __u8 proto_bit(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return CGF_PROTO_TCP;
	if (proto == IPPROTO_UDP)
		return CGF_PROTO_UDP;
	return 0; /* nothing else is ever allowed */
}

static __always_inline bool ranges_allow(const struct cgf_allow *allow, __u8 bit, __u16 port)
{
	__u64 now = 0;

	if (!bit)
		return false;
	for (int i = 0; i < CGF_MAX_RANGES; i++) {
		const struct cgf_range *r = &allow->ranges[i];

		if (i >= allow->n_ranges)
			break;
		if (!(r->protos & bit) || port < r->port_lo || port > r->port_hi)
			continue;
		if (!r->expires_ns)
			return true;
		if (!now)
			now = bpf_ktime_get_boot_ns();
		if (now < r->expires_ns)
			return true;
	}
	return false;
}

static __always_inline bool is_v4_mapped(const __u8 *a)
{
	__u32 w0, w1, w2;

	__builtin_memcpy(&w0, a, 4);
	__builtin_memcpy(&w1, a + 4, 4);
	__builtin_memcpy(&w2, a + 8, 4);
	return w0 == 0 && w1 == 0 && w2 == bpf_htonl(0xffff);
}

/* Is the destination allowed?  IPv4-mapped IPv6 is judged as the IPv4 it is. */
static __always_inline bool allowlist_allows(const struct cgf_dest *d)
{
	struct cgf_allow *allow;

	if (is_v4_mapped(d->addr)) {
		struct cgf_key4 k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, d->addr + 12, 4);
		allow = bpf_map_lookup_elem(&cgf_allow4, &k4);
	} else {
		struct cgf_key6 k6 = { .prefixlen = 128 };

		__builtin_memcpy(k6.addr, d->addr, 16);
		allow = bpf_map_lookup_elem(&cgf_allow6, &k6);
	}
	return allow && ranges_allow(allow, proto_bit(d->proto), d->port);
}

static __always_inline void set_v4(struct cgf_dest *d, __u32 ip4_be)
{
	__u32 ffff = bpf_htonl(0xffff);

	__builtin_memset(d->addr, 0, 8);
	__builtin_memcpy(d->addr + 8, &ffff, 4);
	__builtin_memcpy(d->addr + 12, &ip4_be, 4);
}

static __always_inline void report(enum cgf_hook hook, const struct cgf_dest *d, __u8 action)
{
	struct cgf_event *e;

	e = bpf_ringbuf_reserve(&cgf_events, sizeof(*e), 0);
	if (!e) {
		struct cgf_stats *s = stats();

		if (s)
			s->events_lost++;
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = bpf_ktime_get_boot_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->hook = hook;
	e->protocol = d->proto;
	e->action = action;
	e->dport = d->port;
	if (is_v4_mapped(d->addr)) {
		e->family = AF_INET;
		__builtin_memcpy(e->daddr, d->addr + 12, 4);
	} else {
		e->family = AF_INET6;
		__builtin_memcpy(e->daddr, d->addr, 16);
	}
	{
		__u32 zero = 0;
		struct cgf_config *cfg = bpf_map_lookup_elem(&cgf_config, &zero);

		if (cfg)
			e->cgroup_id = cfg->cgroup_id;
	}
	bpf_ringbuf_submit(e, 0);
}

/*
 * The verdict, counted and reported: 1 lets the attempt through, 0 refuses it.
 * In audit mode a would-be denial is reported and let through.
 */
static __always_inline int decide(enum cgf_hook hook, const struct cgf_dest *d, bool allowed)
{
	struct cgf_stats *s = stats();

	if (allowed) {
		if (s)
			s->allowed[hook]++;
		return 1;
	}
	if (audit_mode()) {
		if (s)
			s->audited[hook]++;
		report(hook, d, CGF_EVENT_AUDIT);
		return 1;
	}
	if (s)
		s->denied[hook]++;
	report(hook, d, CGF_EVENT_DENIED);
	return 0;
}

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

/* connect(): judge, and remember the verdict for the connection's life. */
static __always_inline int judge_connect(struct bpf_sock_addr *ctx, enum cgf_hook hook,
					 const struct cgf_dest *d)
{
	struct cgf_sk_verdict *v;
	int verdict = decide(hook, d, allowlist_allows(d));

	/* A (re)connect ends whatever the socket was allowed before. */
	v = bpf_sk_storage_get(&cgf_sk_verdict, ctx->sk, 0,
			       verdict ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (v) {
		v->passive = 0;
		if (verdict)
			v->connected = *d;
		else
			__builtin_memset(&v->connected, 0, sizeof(v->connected));
	}
	/*
	 * Without storage (no memory) egress judges each packet against the
	 * allowlist instead: slower, never looser.
	 */
	return verdict;
}

/* An unconnected send: judge, and let egress pass the datagram it becomes. */
static __always_inline int judge_send(struct bpf_sock_addr *ctx, enum cgf_hook hook,
				      const struct cgf_dest *d)
{
	struct cgf_sk_verdict *v;
	int verdict = decide(hook, d, allowlist_allows(d));

	v = bpf_sk_storage_get(&cgf_sk_verdict, ctx->sk, 0,
			       verdict ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (v) {
		if (verdict)
			v->last_send = *d;
		else
			__builtin_memset(&v->last_send, 0, sizeof(v->last_send));
	}
	return verdict;
}

SEC("cgroup/connect4")
int cgf_connect4(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx4(ctx, &d);
	return judge_connect(ctx, CGF_HOOK_CONNECT4, &d);
}

SEC("cgroup/connect6")
int cgf_connect6(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx6(ctx, &d);
	return judge_connect(ctx, CGF_HOOK_CONNECT6, &d);
}

SEC("cgroup/sendmsg4")
int cgf_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx4(ctx, &d);
	return judge_send(ctx, CGF_HOOK_SENDMSG4, &d);
}

SEC("cgroup/sendmsg6")
int cgf_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct cgf_dest d = {};

	dest_from_ctx6(ctx, &d);
	return judge_send(ctx, CGF_HOOK_SENDMSG6, &d);
}

/*
 * Reads the destination from the packet's own header.  Returns false for what
 * cannot be judged safely: IPv4 with options or fragmented by hand (the
 * ports would be somewhere else), IPv6 with extension headers or to an
 * IPv4-mapped address.  Those are
 * denied: locally generated TCP and UDP never carry them unless a program asks
 * for source routing, which is exactly what must not pass.
 */
static __always_inline bool parse_packet(struct __sk_buff *skb, struct cgf_dest *d)
{
	__u16 ports[2];
	__u32 l4_off;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return false;
		set_v4(d, ip.daddr);
		d->proto = ip.protocol;
		if (ip.ihl != 5 || (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return false;
		l4_off = sizeof(ip);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return false;
		__builtin_memcpy(d->addr, &ip6.daddr, 16);
		d->proto = ip6.nexthdr;
		/*
		 * Mapped addresses never belong on the wire (RFC 4291 2.5.5.2):
		 * the socket hooks judge them as IPv4, a raw IPv6 packet to one
		 * is not judged as the IPv4 host it names.
		 */
		if (is_v4_mapped(d->addr))
			return false;
		l4_off = sizeof(ip6);
	} else {
		return false;
	}
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return true; /* judged without a port: never allowed */
	if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
		return false;
	d->port = bpf_ntohs(ports[1]);
	return true;
}

static __always_inline bool dest_eq(const struct cgf_dest *a, const struct cgf_dest *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a->addr, 8);
	__builtin_memcpy(&a1, a->addr + 8, 8);
	__builtin_memcpy(&b0, b->addr, 8);
	__builtin_memcpy(&b1, b->addr + 8, 8);
	return a->proto && a->proto == b->proto && a->port == b->port && a0 == b0 && a1 == b1;
}

/* Was this packet's destination already judged for its socket? */
static __always_inline bool socket_allows(struct __sk_buff *skb, const struct cgf_dest *d)
{
	struct bpf_sock *sk = skb->sk;
	struct cgf_sk_verdict *v;

	if (!sk)
		return false;
	/*
	 * A listener's handshake answers (SYN-ACK from the listener or its
	 * request socket) go to whoever connected in: a server at work.
	 */
	if (d->proto == IPPROTO_TCP &&
	    (sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_NEW_SYN_RECV))
		return true;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return false;
	v = bpf_sk_storage_get(&cgf_sk_verdict, sk, 0, 0);
	if (!v)
		return false;
	if (v->passive && d->proto == IPPROTO_TCP)
		return true;
	return dest_eq(&v->connected, d) || dest_eq(&v->last_send, d);
}

SEC("cgroup_skb/egress")
int cgf_egress(struct __sk_buff *skb)
{
	struct cgf_dest d = {};
	bool allowed;

	if (!parse_packet(skb, &d))
		allowed = false;
	else
		allowed = socket_allows(skb, &d) || allowlist_allows(&d);
	/* 1 passes the packet, 0 drops it (and the sender gets EPERM). */
	return decide(CGF_HOOK_EGRESS, &d, allowed);
}

/* Marks TCP connections accepted from outside, so that their replies pass. */
SEC("sockops")
int cgf_sockops(struct bpf_sock_ops *ops)
{
	struct cgf_sk_verdict *v;
	struct bpf_sock *sk;

	if (ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	sk = ops->sk;
	if (!sk)
		return 1;
	v = bpf_sk_storage_get(&cgf_sk_verdict, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (v)
		v->passive = 1;
	return 1;
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The judging shared by every cgfence BPF object: the fence's maps, the
 * allowlist lookup, the packet parser, counting and deny events.  Included
 * once per object (cgfence.bpf.c, boundary.bpf.c): each object declares the
 * same maps, and the loader makes the boundary object use the fence's own
 * (bpf_map__reuse_fd), so both judge against one allowlist, one config and
 * count into one stats map.
 */
#ifndef CGF_BPF_JUDGE_H
#define CGF_BPF_JUDGE_H

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

/*
 * Exact addresses (/32, /128: everything learned from DNS) live in hash maps,
 * a lookup that costs the same at any size; the tries hold the shorter
 * prefixes.  An exact entry's value already holds the ranges of every prefix
 * that covers it, so a hit needs no trie lookup.  max_entries here is only
 * the default: the loader sizes each fence's hash maps from its allowlist
 * (a hash map allocates buckets for its whole capacity), and a full-length
 * key that finds one full goes to the trie, where it is its own longest match.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CGF_MAX_ENTRIES);
	__type(key, struct cgf_key4);
	__type(value, struct cgf_allow);
} cgf_exact4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CGF_MAX_ENTRIES);
	__type(key, struct cgf_key6);
	__type(value, struct cgf_allow);
} cgf_exact6 SEC(".maps");

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
	__u8 proto;  /* IPPROTO_* */
	__u8 pad;
};

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

/* 127.0.0.0/8 (as mapped) or ::1. */
static __always_inline bool is_loopback(const __u8 *a)
{
	__u32 w0, w1, w2, w3;

	if (is_v4_mapped(a))
		return a[12] == 127;
	__builtin_memcpy(&w0, a, 4);
	__builtin_memcpy(&w1, a + 4, 4);
	__builtin_memcpy(&w2, a + 8, 4);
	__builtin_memcpy(&w3, a + 12, 4);
	return !w0 && !w1 && !w2 && w3 == bpf_htonl(1);
}

/* Is the destination allowed?  IPv4-mapped IPv6 is judged as the IPv4 it is. */
static __always_inline bool allowlist_allows(const struct cgf_dest *d)
{
	struct cgf_allow *allow;

	if (is_v4_mapped(d->addr)) {
		struct cgf_key4 k4 = { .prefixlen = 32 };

		__builtin_memcpy(k4.addr, d->addr + 12, 4);
		allow = bpf_map_lookup_elem(&cgf_exact4, &k4);
		if (!allow)
			allow = bpf_map_lookup_elem(&cgf_allow4, &k4);
	} else {
		struct cgf_key6 k6 = { .prefixlen = 128 };

		__builtin_memcpy(k6.addr, d->addr, 16);
		allow = bpf_map_lookup_elem(&cgf_exact6, &k6);
		if (!allow)
			allow = bpf_map_lookup_elem(&cgf_allow6, &k6);
	}
	return allow && ranges_allow(allow, proto_bit(d->proto), d->port);
}

/* An IPv4 address (network order) as ::ffff:a.b.c.d. */
static __always_inline void mapped4(__u8 *addr, __u32 ip4_be)
{
	__u32 ffff = bpf_htonl(0xffff);

	__builtin_memset(addr, 0, 8);
	__builtin_memcpy(addr + 8, &ffff, 4);
	__builtin_memcpy(addr + 12, &ip4_be, 4);
}

static __always_inline void set_v4(struct cgf_dest *d, __u32 ip4_be)
{
	mapped4(d->addr, ip4_be);
}

static __always_inline void report(enum cgf_hook hook, const struct cgf_dest *d, __u8 action,
				   __u8 reason)
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
	/* A packet met at the boundary has no sending process to name. */
	if (hook != CGF_HOOK_BOUNDARY) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	e->hook = hook;
	e->protocol = d->proto;
	e->action = action;
	e->reason = reason;
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
 * A refusal, counted and reported with its reason (CGF_REASON_*; in audit
 * mode let through): 1 lets the attempt through, 0 refuses it.  A function
 * of its own, never inlined, so that the allowed path of every program stays
 * a few instructions long.
 */
static __noinline int refuse(enum cgf_hook hook, const struct cgf_dest *d, __u8 reason)
{
	struct cgf_stats *s = stats();

	if (audit_mode()) {
		if (s)
			s->audited[hook]++;
		report(hook, d, CGF_EVENT_AUDIT, reason);
		return 1;
	}
	if (s)
		s->denied[hook]++;
	report(hook, d, CGF_EVENT_DENIED, reason);
	return 0;
}

/*
 * The verdict, counted and reported: 1 lets the attempt through, 0 refuses it.
 * In audit mode a would-be denial is reported and let through.
 */
static __always_inline int decide(enum cgf_hook hook, const struct cgf_dest *d, bool allowed)
{
	struct cgf_stats *s;

	if (!allowed)
		return refuse(hook, d, CGF_REASON_NOT_ALLOWED);
	s = stats();
	if (s)
		s->allowed[hook]++;
	return 1;
}

/*
 * The n bytes at off of the packet: where they lie in its linear part (the
 * headers of what a local socket sends always do), a pointer to them there,
 * read in place; else copied into buf by bpf_skb_load_bytes.  NULL when the
 * packet is shorter.  In place the fields are word loads: copying the header
 * out with memcpy took a load, a shift and an or per byte (the packet's
 * alignment is unknown), some 60 instructions for an IPv4 header and 120
 * for IPv6 on every packet.  Loads that are not aligned are no matter on
 * the CPUs the verifier lets them through on (efficient unaligned access).
 */
static __always_inline const void *header_at(struct __sk_buff *skb, __u32 off, __u32 n, void *buf)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;

	if (data + off + n <= end)
		return data + off;
	return bpf_skb_load_bytes(skb, off, buf, n) ? NULL : buf;
}

/*
 * Copies the IPv6 address a, a field of a header header_at() gave, into the
 * __u32[4] out: four word loads (a memcpy from the packet, whose alignment is
 * unknown, is a load per byte).  A macro, not a function: the field's
 * address would be a CO-RE relocation of its own, and the loads would take
 * three more instructions.
 */
#define read_addr6(out, a)                        \
	do {                                      \
		(out)[0] = (a).in6_u.u6_addr32[0]; \
		(out)[1] = (a).in6_u.u6_addr32[1]; \
		(out)[2] = (a).in6_u.u6_addr32[2]; \
		(out)[3] = (a).in6_u.u6_addr32[3]; \
	} while (0)

/*
 * Reads the destination from the packet's own header, the IP header starting
 * at l3_off (0 in cgroup_skb, past the Ethernet header in tc), and the source
 * into src (4 words, IPv4 as mapped; NULL: not wanted).  Returns false for what
 * cannot be judged safely: IPv4 with options or fragmented by hand (the
 * ports would be somewhere else), IPv6 to an IPv4-mapped address.  Those are
 * denied: locally generated TCP and UDP never carry them unless a program asks
 * for source routing, which is exactly what must not pass.  An IPv6 packet
 * with an extension header is judged as the protocol its next header names
 * (hop-by-hop, routing, ...), which no rule allows.
 */
static __always_inline bool parse_packet(struct __sk_buff *skb, __u32 l3_off, struct cgf_dest *d,
					 __u32 *src)
{
	const __u16 *ports;
	__u16 ports_buf[2];
	__u32 l4_off;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr buf;
		const struct iphdr *ip = header_at(skb, l3_off, sizeof(buf), &buf);

		if (!ip)
			return false;
		set_v4(d, ip->daddr);
		if (src)
			mapped4((__u8 *)src, ip->saddr);
		d->proto = ip->protocol;
		if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return false;
		l4_off = l3_off + sizeof(buf);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr buf;
		const struct ipv6hdr *ip6 = header_at(skb, l3_off, sizeof(buf), &buf);
		__u32 w[4];

		if (!ip6)
			return false;
		read_addr6(w, ip6->daddr);
		__builtin_memcpy(d->addr, w, 16);
		if (src)
			read_addr6(src, ip6->saddr);
		d->proto = ip6->nexthdr;
		if (ip6->version != 6)
			return false;
		/*
		 * Mapped addresses never belong on the wire (RFC 4291 2.5.5.2):
		 * the socket hooks judge them as IPv4, a raw IPv6 packet to one
		 * is not judged as the IPv4 host it names.
		 */
		if (is_v4_mapped(d->addr))
			return false;
		l4_off = l3_off + sizeof(buf);
	} else {
		return false;
	}
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return true; /* judged without a port: never allowed */
	ports = header_at(skb, l4_off, sizeof(ports_buf), ports_buf);
	if (!ports)
		return false;
	d->port = bpf_ntohs(ports[1]);
	return true;
}

#endif /* CGF_BPF_JUDGE_H */

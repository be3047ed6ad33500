// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The egress program judged through BPF_PROG_TEST_RUN: a table of packets
 * with the verdict each must get, against an allowlist written into the maps
 * the way cgfence writes it.  The boundary program (tc) is loaded over the
 * same maps, as cgfence loads it, and judges the same table (ARP aside, which
 * it passes) plus the neighbour discovery it must let through.  The socket
 * hooks have no test-run support; they are tested with real sockets in
 * tests/integration.
 *
 * Needs root (BPF).  Outside CI it skips without; with CI=true it fails.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "cgfence.h"
#include "cgfence.skel.h"
#include "boundary.skel.h"
#include "fence.h"
#include "policy.h"

struct packet_case {
	const char *name;
	int family;           /* AF_INET, AF_INET6, or 0 for a non-IP frame */
	const char *dst;
	uint8_t proto;
	uint16_t dport;
	uint8_t ihl;          /* IPv4 header length in words; 0 = 5 */
	uint16_t frag_off;    /* IPv4 fragment field, host order */
	uint8_t ext_header;   /* IPv6: put a hop-by-hop header first */
	size_t truncate;      /* cut the frame to this many bytes; 0 = whole */
	int verdict;          /* 1 pass, 0 drop */
	uint8_t reason;       /* a drop's CGF_REASON_*; 0: CGF_REASON_NOT_ALLOWED */
};

/*
 * The allowlist of the tests, as rules:
 *   198.18.0.2:80/tcp, 198.18.0.0/24:53/udp, 198.18.0.3 (any port, tcp+udp),
 *   [2001:db8::2]:443/tcp, 198.18.1.0/24:22 and 198.18.1.7:443 (union),
 *   198.18.0.9:8080 that expired a second ago.
 */
static const struct packet_case cases[] = {
	{ "tcp to allowed port", AF_INET, "198.18.0.2", IPPROTO_TCP, 80, .verdict = 1 },
	{ "tcp to other port", AF_INET, "198.18.0.2", IPPROTO_TCP, 81, .verdict = 0 },
	{ "udp to a tcp-only rule", AF_INET, "198.18.0.2", IPPROTO_UDP, 80, .verdict = 0 },
	{ "udp by cidr rule", AF_INET, "198.18.0.77", IPPROTO_UDP, 53, .verdict = 1 },
	{ "tcp by a udp-only cidr rule", AF_INET, "198.18.0.77", IPPROTO_TCP, 53, .verdict = 0 },
	{ "outside every prefix", AF_INET, "198.19.0.1", IPPROTO_TCP, 80, .verdict = 0 },
	{ "any port rule, high port", AF_INET, "198.18.0.3", IPPROTO_TCP, 65535, .verdict = 1 },
	{ "any port rule, port 0", AF_INET, "198.18.0.3", IPPROTO_UDP, 0, .verdict = 1 },
	{ "icmp to an allowed host", AF_INET, "198.18.0.3", IPPROTO_ICMP, 0, .verdict = 0 },
	{ "sctp to an allowed host", AF_INET, "198.18.0.3", IPPROTO_SCTP, 80, .verdict = 0 },
	{ "union: the /32's own port", AF_INET, "198.18.1.7", IPPROTO_TCP, 443, .verdict = 1 },
	{ "union: the /24's port at the /32", AF_INET, "198.18.1.7", IPPROTO_TCP, 22, .verdict = 1 },
	{ "union: the /32's port elsewhere in the /24", AF_INET, "198.18.1.8", IPPROTO_TCP, 443,
	  .verdict = 0 },
	{ "expired entry", AF_INET, "198.18.0.9", IPPROTO_TCP, 8080, .verdict = 0 },
	{ "ipv4 options", AF_INET, "198.18.0.2", IPPROTO_TCP, 80, .ihl = 6, .verdict = 0,
	  .reason = CGF_REASON_HEADER },
	{ "ipv4 first fragment", AF_INET, "198.18.0.2", IPPROTO_TCP, 80, .frag_off = 0x2000,
	  .verdict = 0, .reason = CGF_REASON_HEADER },
	{ "ipv4 later fragment", AF_INET, "198.18.0.2", IPPROTO_TCP, 80, .frag_off = 0x0010,
	  .verdict = 0, .reason = CGF_REASON_HEADER },
	{ "ipv4 without ports", AF_INET, "198.18.0.2", IPPROTO_TCP, 80,
	  .truncate = ETH_HLEN + 20 + 2, .verdict = 0, .reason = CGF_REASON_HEADER },
	{ "ipv6 tcp allowed", AF_INET6, "2001:db8::2", IPPROTO_TCP, 443, .verdict = 1 },
	{ "ipv6 udp to tcp rule", AF_INET6, "2001:db8::2", IPPROTO_UDP, 443, .verdict = 0 },
	{ "ipv6 other host", AF_INET6, "2001:db8::3", IPPROTO_TCP, 443, .verdict = 0 },
	/* judged as its next header says (hop-by-hop): a protocol never allowed */
	{ "ipv6 extension header", AF_INET6, "2001:db8::2", IPPROTO_TCP, 443, .ext_header = 1,
	  .verdict = 0 },
	{ "ipv6 icmp", AF_INET6, "2001:db8::2", IPPROTO_ICMPV6, 0, .verdict = 0 },
	{ "ipv4-mapped in ipv6 header", AF_INET6, "::ffff:198.18.0.2", IPPROTO_TCP, 80,
	  .verdict = 0, .reason = CGF_REASON_HEADER },
	{ "arp frame", 0, NULL, 0, 0, .verdict = 0, .reason = CGF_REASON_HEADER },
};

static const char *const rules[] = {
	"198.18.0.2:80/tcp", "198.18.0.0/24:53/udp", "198.18.0.3", "[2001:db8::2]:443/tcp",
	"198.18.1.0/24:22",  "198.18.1.7:443",
};

struct fixture {
	struct cgfence_bpf *skel;
	struct boundary_bpf *boundary; /* over skel's maps */
};

#define TCX_NEXT (-1) /* the boundary's pass: on to what follows */
#define TCX_DROP 2

static size_t build_frame_aligned(const struct packet_case *c, uint8_t *buf, size_t len)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	uint8_t *l3 = buf + ETH_HLEN, *l4;
	size_t n;

	memset(buf, 0, len);
	memset(eth->h_dest, 0x02, ETH_ALEN);
	memset(eth->h_source, 0x04, ETH_ALEN);
	if (c->family == AF_INET) {
		struct iphdr *ip = (struct iphdr *)l3;
		uint8_t ihl = c->ihl ? c->ihl : 5;

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = ihl;
		ip->ttl = 64;
		ip->protocol = c->proto;
		ip->frag_off = htons(c->frag_off);
		ip->saddr = htonl(0xc6120001); /* 198.18.0.1 */
		assert_int_equal(inet_pton(AF_INET, c->dst, &ip->daddr), 1);
		l4 = l3 + ihl * 4;
		if (ihl > 5)
			memset(l3 + 20, 1, (size_t)(ihl - 5) * 4); /* NOP options */
		n = (size_t)(l4 - buf) + 20;
		ip->tot_len = htons((uint16_t)(n - ETH_HLEN));
	} else if (c->family == AF_INET6) {
		struct ip6_hdr *ip6 = (struct ip6_hdr *)l3;

		eth->h_proto = htons(ETH_P_IPV6);
		ip6->ip6_vfc = 0x60;
		ip6->ip6_hlim = 64;
		inet_pton(AF_INET6, "2001:db8::1", &ip6->ip6_src);
		assert_int_equal(inet_pton(AF_INET6, c->dst, &ip6->ip6_dst), 1);
		l4 = l3 + sizeof(*ip6);
		if (c->ext_header) {
			ip6->ip6_nxt = 0; /* hop-by-hop, then the real protocol */
			l4[0] = c->proto;
			l4[1] = 0;
			l4 += 8;
		} else {
			ip6->ip6_nxt = c->proto;
		}
		n = (size_t)(l4 - buf) + 20;
		ip6->ip6_plen = htons((uint16_t)(n - ETH_HLEN - sizeof(*ip6)));
	} else {
		eth->h_proto = htons(ETH_P_ARP);
		return 60;
	}
	/* source port 40000, then the destination port */
	l4[0] = 40000 >> 8;
	l4[1] = 40000 & 0xff;
	l4[2] = (uint8_t)(c->dport >> 8);
	l4[3] = (uint8_t)(c->dport & 0xff);
	return c->truncate ? c->truncate : n;
}

/*
 * The frame of case c in buf (up to len bytes, any alignment): built where
 * the IP header after the 14-byte Ethernet one is 4-aligned, as struct iphdr
 * and ip6_hdr need, then copied.
 */
static size_t build_frame(const struct packet_case *c, uint8_t *buf, size_t len)
{
	_Alignas(8) uint8_t storage[2 + 256];
	size_t n;

	assert_true(len <= sizeof(storage) - 2);
	n = build_frame_aligned(c, storage + 2, len);
	memcpy(buf, storage + 2, len);
	return n;
}

/*
 * Writes one entry as cgfence does on fresh maps: a prefix to the trie, a
 * full-length key to the exact map, or to the trie when that is full.
 * Returns 1 when a full-length key overflowed into the trie.
 */
static int put_entry(int exact_fd, int trie_fd, const void *key, bool full,
		     const struct cgf_allow *value)
{
	if (full && !bpf_map_update_elem(exact_fd, key, value, BPF_NOEXIST))
		return 0;
	if (full)
		assert_int_equal(errno, E2BIG);
	assert_int_equal(bpf_map_update_elem(trie_fd, key, value, BPF_NOEXIST), 0);
	return full;
}

static int setup(void **state)
{
	struct fixture *fx;
	struct cgf_policy policy = { 0 };
	struct cgf_allowlist list = { 0 };
	struct cgf_grant *grants;
	struct cgf_error err;
	struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION, .cgroup_id = 1 };
	uint32_t zero = 0;
	int overflowed = 0;
	size_t i;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->skel = cgfence_bpf__open();
	assert_non_null(fx->skel);
	/*
	 * Exact maps of one slot, as cgfence sizes them per fence (here too
	 * small): the other full-length keys overflow into the tries, which
	 * must judge them alike; and the boundary reuses maps of another size
	 * than its own object declares.
	 */
	assert_int_equal(bpf_map__set_max_entries(fx->skel->maps.cgf_exact4, 1), 0);
	assert_int_equal(bpf_map__set_max_entries(fx->skel->maps.cgf_exact6, 1), 0);
	assert_int_equal(cgfence_bpf__load(fx->skel), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx->skel->maps.cgf_config), &zero, &cfg,
					     BPF_ANY), 0);
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		assert_int_equal(cgf_policy_add_rule(&policy, rules[i], &err), 0);
	grants = calloc(policy.n_rules + 1, sizeof(*grants));
	assert_non_null(grants);
	for (i = 0; i < policy.n_rules; i++)
		cgf_rule_to_grant(&policy.rules[i], &grants[i]);
	/* 198.18.0.9:8080, expired one second ago */
	grants[i] = (struct cgf_grant){ .family = AF_INET, .prefixlen = 32, .port_lo = 8080,
					.port_hi = 8080, .protos = CGF_PROTO_ANY,
					.expires_ns = cgf_boottime_ns() - 1000000000ull };
	inet_pton(AF_INET, "198.18.0.9", grants[i].addr);
	assert_int_equal(cgf_allowlist_build(grants, policy.n_rules + 1, &list, &err), 0);
	/*
	 * as cgfence writes them: prefixes to the tries, full-length keys to the
	 * hash maps while they have room, then to the tries
	 */
	for (i = 0; i < list.n_v4; i++)
		overflowed += put_entry(bpf_map__fd(fx->skel->maps.cgf_exact4),
					bpf_map__fd(fx->skel->maps.cgf_allow4), &list.v4[i].key,
					list.v4[i].key.prefixlen == 32, &list.v4[i].value);
	for (i = 0; i < list.n_v6; i++)
		put_entry(bpf_map__fd(fx->skel->maps.cgf_exact6),
			  bpf_map__fd(fx->skel->maps.cgf_allow6), &list.v6[i].key,
			  list.v6[i].key.prefixlen == 128, &list.v6[i].value);
	/* 198.18.0.2, .3, .9 and 198.18.1.7: three of them in the trie */
	assert_int_equal(overflowed, 3);
	cgf_allowlist_free(&list);
	free(grants);
	cgf_policy_free(&policy);
	/* the boundary, as cgfence loads it: the fence's maps, reused */
	fx->boundary = boundary_bpf__open();
	assert_non_null(fx->boundary);
	{
		struct bpf_map *mine[] = {
			fx->boundary->maps.cgf_allow4, fx->boundary->maps.cgf_allow6,
			fx->boundary->maps.cgf_exact4, fx->boundary->maps.cgf_exact6,
			fx->boundary->maps.cgf_config, fx->boundary->maps.cgf_stats,
			fx->boundary->maps.cgf_events,
		};
		struct bpf_map *theirs[] = {
			fx->skel->maps.cgf_allow4, fx->skel->maps.cgf_allow6,
			fx->skel->maps.cgf_exact4, fx->skel->maps.cgf_exact6,
			fx->skel->maps.cgf_config, fx->skel->maps.cgf_stats,
			fx->skel->maps.cgf_events,
		};

		for (i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
			assert_int_equal(bpf_map__reuse_fd(mine[i], bpf_map__fd(theirs[i])), 0);
	}
	assert_int_equal(boundary_bpf__load(fx->boundary), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx) {
		boundary_bpf__destroy(fx->boundary);
		cgfence_bpf__destroy(fx->skel);
		free(fx);
	}
	return 0;
}

static int run_egress(struct fixture *fx, const struct packet_case *c)
{
	uint8_t frame[256];
	size_t len = build_frame(c, frame, sizeof(frame));
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
		    .repeat = 1);
	int ret = bpf_prog_test_run_opts(bpf_program__fd(fx->skel->progs.cgf_egress), &opts);

	if (ret)
		fail_msg("test run of '%s' failed: %s", c->name, strerror(errno));
	return (int)opts.retval;
}

static int run_frame(int prog_fd, const uint8_t *frame, size_t len, const char *name)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		fail_msg("test run of '%s' failed: %s", name, strerror(errno));
	return (int)opts.retval;
}

static int run_boundary(struct fixture *fx, const struct packet_case *c)
{
	uint8_t frame[256];
	size_t len = build_frame(c, frame, sizeof(frame));

	return run_frame(bpf_program__fd(fx->boundary->progs.cgf_boundary), frame, len, c->name);
}

static void sum_stats(struct fixture *fx, struct cgf_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct cgf_stats *per_cpu = calloc((size_t)ncpu, sizeof(*per_cpu));
	uint32_t zero = 0;

	assert_non_null(per_cpu);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(fx->skel->maps.cgf_stats), &zero, per_cpu),
			 0);
	memset(sum, 0, sizeof(*sum));
	for (int cpu = 0; cpu < ncpu; cpu++) {
		for (int h = 0; h < CGF_HOOK_MAX; h++) {
			sum->allowed[h] += per_cpu[cpu].allowed[h];
			sum->denied[h] += per_cpu[cpu].denied[h];
			sum->audited[h] += per_cpu[cpu].audited[h];
		}
	}
	free(per_cpu);
}

static void test_verdicts(void **state)
{
	struct fixture *fx = *state;
	struct cgf_stats before, after;
	unsigned expect_allowed = 0, expect_denied = 0, wrong = 0;

	sum_stats(fx, &before);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = run_egress(fx, &cases[i]);

		if (got != cases[i].verdict) {
			print_error("case '%s': verdict %d, expected %d\n", cases[i].name, got,
				    cases[i].verdict);
			wrong++;
		}
		if (cases[i].verdict)
			expect_allowed++;
		else
			expect_denied++;
	}
	assert_int_equal(wrong, 0);
	sum_stats(fx, &after);
	assert_int_equal(after.allowed[CGF_HOOK_EGRESS] - before.allowed[CGF_HOOK_EGRESS],
			 expect_allowed);
	assert_int_equal(after.denied[CGF_HOOK_EGRESS] - before.denied[CGF_HOOK_EGRESS],
			 expect_denied);
}

static int count_event(void *ctx, void *data, size_t size)
{
	const struct cgf_event *e = data;
	unsigned *n = ctx;

	if (size >= sizeof(*e) && e->hook == CGF_HOOK_EGRESS && e->dport == 81 &&
	    e->protocol == IPPROTO_TCP && e->family == AF_INET && e->cgroup_id == 1)
		(*n)++;
	return 0;
}

/* A drop is reported in the ring buffer with the packet's destination. */
static void test_deny_event(void **state)
{
	struct fixture *fx = *state;
	unsigned n = 0;
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(fx->skel->maps.cgf_events),
						  count_event, &n, NULL);

	assert_non_null(rb);
	ring_buffer__consume(rb); /* what earlier tests left */
	n = 0;
	assert_int_equal(run_egress(fx, &cases[1]), 0);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	assert_int_equal(n, 1);
}

struct seen {
	int reason; /* of the one event; -1 none, -2 more than one */
	int action;
};

static int note_reason(void *ctx, void *data, size_t size)
{
	const struct cgf_event *e = data;
	struct seen *seen = ctx;

	if (size < sizeof(*e))
		return 0;
	seen->reason = seen->reason == -1 ? e->reason : -2;
	seen->action = e->action;
	return 0;
}

/*
 * Runs frame through prog_fd, which must give verdict; the reason of the one
 * event that run wrote, -1 for none, -2 for several (and its action in
 * *action, when asked).
 */
static int event_reason(struct fixture *fx, int prog_fd, const uint8_t *frame, size_t len,
			const char *name, int verdict, int *action)
{
	struct seen seen = { -1, -1 };
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(fx->skel->maps.cgf_events),
						  note_reason, &seen, NULL);
	int got;

	assert_non_null(rb);
	ring_buffer__consume(rb); /* what earlier tests left */
	seen.reason = -1;
	got = run_frame(prog_fd, frame, len, name);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	if (got != verdict)
		fail_msg("'%s': verdict %d, expected %d", name, got, verdict);
	if (action)
		*action = seen.action;
	return seen.reason;
}

/*
 * Each drop's event says why: the allowlist, or a header neither program
 * judges; at the boundary also a loopback destination and a forged source.
 */
static void test_deny_reasons(void **state)
{
	struct fixture *fx = *state;
	int egress = bpf_program__fd(fx->skel->progs.cgf_egress);
	int boundary = bpf_program__fd(fx->boundary->progs.cgf_boundary);
	uint8_t frame[256];
	unsigned wrong = 0, checked = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct packet_case *c = &cases[i];
		size_t len = build_frame(c, frame, sizeof(frame));
		int got;

		int want = c->reason ? c->reason : CGF_REASON_NOT_ALLOWED;

		if (c->verdict)
			continue;
		got = event_reason(fx, egress, frame, len, c->name, 0, NULL);
		if (got != want) {
			print_error("egress, case '%s': reason %d, expected %d\n", c->name, got, want);
			wrong++;
		}
		checked++;
		if (!c->family)
			continue; /* the boundary passes ARP */
		got = event_reason(fx, boundary, frame, len, c->name, TCX_DROP, NULL);
		if (got != want) {
			print_error("boundary, case '%s': reason %d, expected %d\n", c->name, got,
				    want);
			wrong++;
		}
	}
	assert_int_equal(wrong, 0);
	assert_true(checked >= 10);

	/* At the boundary, a loopback destination and a source of the host's own. */
	{
		static const struct packet_case lo = { "to loopback", AF_INET, "127.0.0.1",
						       IPPROTO_TCP, 80, .verdict = 0 };
		size_t len = build_frame(&lo, frame, sizeof(frame));

		assert_int_equal(event_reason(fx, boundary, frame, len, lo.name, TCX_DROP, NULL),
				 CGF_REASON_LOOPBACK_OFF_LO);
		len = build_frame(&cases[0], frame, sizeof(frame)); /* allowed */
		assert_int_equal(inet_pton(AF_INET, "127.0.0.1", frame + ETH_HLEN + 12), 1);
		assert_int_equal(event_reason(fx, boundary, frame, len, "from loopback", TCX_DROP,
					      NULL),
				 CGF_REASON_FORGED_SOURCE);
	}

	/* Audit mode passes it, and says why it would not have. */
	{
		struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION, .cgroup_id = 1,
					  .flags = CGF_CONFIG_AUDIT };
		int cfg_fd = bpf_map__fd(fx->skel->maps.cgf_config), action = -1;
		uint32_t zero = 0;
		size_t len = build_frame(&cases[14], frame, sizeof(frame)); /* ipv4 options */

		assert_int_equal(cases[14].reason, CGF_REASON_HEADER);
		assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
		assert_int_equal(event_reason(fx, egress, frame, len, cases[14].name, 1, &action),
				 CGF_REASON_HEADER);
		assert_int_equal(action, CGF_EVENT_AUDIT);
		cfg.flags = 0;
		assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	}
}

/* Audit mode passes what it would drop and counts it as audited. */
static void test_audit_mode(void **state)
{
	struct fixture *fx = *state;
	struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION, .cgroup_id = 1,
				  .flags = CGF_CONFIG_AUDIT };
	int cfg_fd = bpf_map__fd(fx->skel->maps.cgf_config);
	struct cgf_stats before, after;
	uint32_t zero = 0;

	sum_stats(fx, &before);
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	assert_int_equal(run_egress(fx, &cases[1]), 1);
	cfg.flags = 0;
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	assert_int_equal(run_egress(fx, &cases[1]), 0);
	sum_stats(fx, &after);
	assert_int_equal(after.audited[CGF_HOOK_EGRESS] - before.audited[CGF_HOOK_EGRESS], 1);
	assert_int_equal(after.denied[CGF_HOOK_EGRESS] - before.denied[CGF_HOOK_EGRESS], 1);
}

/*
 * The boundary judges the same table from the same maps, and passes ARP (the
 * link needs it); it counts into the fence's stats as its own hook.
 */
static void test_boundary_verdicts(void **state)
{
	struct fixture *fx = *state;
	struct cgf_stats before, after;
	unsigned expect_allowed = 0, expect_denied = 0, wrong = 0;

	sum_stats(fx, &before);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool arp = cases[i].family == 0;
		int want = arp || cases[i].verdict ? TCX_NEXT : TCX_DROP;
		int got = run_boundary(fx, &cases[i]);

		if (got != want) {
			print_error("boundary, case '%s': verdict %d, expected %d\n", cases[i].name,
				    got, want);
			wrong++;
		}
		if (!arp && cases[i].verdict)
			expect_allowed++;
		else if (!arp)
			expect_denied++;
	}
	assert_int_equal(wrong, 0);
	sum_stats(fx, &after);
	assert_int_equal(after.allowed[CGF_HOOK_BOUNDARY] - before.allowed[CGF_HOOK_BOUNDARY],
			 expect_allowed);
	assert_int_equal(after.denied[CGF_HOOK_BOUNDARY] - before.denied[CGF_HOOK_BOUNDARY],
			 expect_denied);
	assert_int_equal(after.denied[CGF_HOOK_EGRESS] - before.denied[CGF_HOOK_EGRESS], 0);
}

struct nd_case {
	const char *name;
	const char *dst;
	uint8_t type;      /* ICMPv6 type */
	uint8_t hop_limit;
	uint16_t ethertype; /* 0: IPv6 */
	int verdict;        /* TCX_NEXT or TCX_DROP */
	const char *src;    /* NULL: fe80::1 */
};

static const struct nd_case nd_cases[] = {
	{ "neighbour solicitation, solicited-node", "ff02::1:ff00:2", 135, 255, 0, TCX_NEXT, NULL },
	{ "neighbour advertisement, link-local", "fe80::2", 136, 255, 0, TCX_NEXT, NULL },
	{ "router solicitation, all-routers", "ff02::2", 133, 255, 0, TCX_NEXT, NULL },
	{ "solicitation with hop limit 64", "ff02::1:ff00:2", 135, 64, 0, TCX_DROP, NULL },
	/* a workload is not its host's router: no routes planted by it */
	{ "router advertisement, all-nodes", "ff02::1", 134, 255, 0, TCX_DROP, NULL },
	{ "redirect, link-local", "fe80::2", 137, 255, 0, TCX_DROP, NULL },
	{ "echo request to all-nodes", "ff02::1", 128, 255, 0, TCX_DROP, NULL },
	{ "solicitation to a site-scope group", "ff05::1:ff00:2", 135, 255, 0, TCX_DROP, NULL },
	/* unicast to a global address: passed only where the host keeps it on the link */
	{ "solicitation to a global address beyond", "2001:db8:5::9", 135, 255, 0, TCX_DROP,
	  "2001:db8::1" },
	{ "advertisement to a global address beyond", "2001:db8:5::9", 136, 255, 0, TCX_DROP,
	  "2001:db8::1" },
	{ "solicitation to a global address on the link", "2001:db8::9", 135, 255, 0, TCX_NEXT,
	  "2001:db8::1" },
	{ "advertisement to a global address on the link", "2001:db8::9", 136, 255, 0,
	  TCX_NEXT, "2001:db8::1" },
	/* a link-local source is never forwarded off the link */
	{ "link-local advertisement to a global address", "2001:db8:5::9", 136, 255, 0,
	  TCX_NEXT, NULL },
	{ "other ethertype (802.1Q)", "ff02::1", 135, 255, 0x8100, TCX_DROP, NULL },
	{ "other ethertype (IPX)", "ff02::1", 135, 255, 0x8137, TCX_DROP, NULL },
};

/* What the link needs of ICMPv6 passes the boundary; nothing else does. */
static void test_boundary_link_traffic(void **state)
{
	struct fixture *fx = *state;
	unsigned wrong = 0;

	for (size_t i = 0; i < sizeof(nd_cases) / sizeof(nd_cases[0]); i++) {
		const struct nd_case *c = &nd_cases[i];
		/* 2 bytes in: the IPv6 header after the Ethernet one is 4-aligned */
		_Alignas(8) uint8_t storage[2 + ETH_HLEN + sizeof(struct ip6_hdr) + 24] = { 0 };
		uint8_t *frame = storage + 2;
		struct ethhdr *eth = (struct ethhdr *)frame;
		struct ip6_hdr *ip6 = (struct ip6_hdr *)(frame + ETH_HLEN);
		uint8_t *icmp = frame + ETH_HLEN + sizeof(*ip6);
		int got;

		memset(eth->h_dest, 0x33, ETH_ALEN);
		memset(eth->h_source, 0x04, ETH_ALEN);
		eth->h_proto = htons(c->ethertype ? c->ethertype : ETH_P_IPV6);
		ip6->ip6_vfc = 0x60;
		ip6->ip6_hlim = c->hop_limit;
		ip6->ip6_nxt = IPPROTO_ICMPV6;
		ip6->ip6_plen = htons(24);
		assert_int_equal(inet_pton(AF_INET6, c->src ? c->src : "fe80::1", &ip6->ip6_src),
				 1);
		assert_int_equal(inet_pton(AF_INET6, c->dst, &ip6->ip6_dst), 1);
		icmp[0] = c->type;
		got = run_frame(bpf_program__fd(fx->boundary->progs.cgf_boundary), frame,
				sizeof(storage) - 2, c->name);
		if (got != c->verdict) {
			print_error("boundary, case '%s': verdict %d, expected %d\n", c->name, got,
				    c->verdict);
			wrong++;
		}
	}
	assert_int_equal(wrong, 0);
}

/*
 * Sources that do not route back out of the interface (here loopback) are
 * refused even toward an allowed destination: a host beyond (no route), an
 * address of the host itself (a local route), the unspecified address, and
 * IPv6 link-local (never resolved by the lookup).
 */
static void test_boundary_forged_source(void **state)
{
	static const struct {
		int family;
		const char *src;
	} forged[] = {
		{ AF_INET, "198.18.1.1" }, { AF_INET, "127.0.0.1" }, { AF_INET, "0.0.0.0" },
		{ AF_INET6, "2001:db8:1::1" }, { AF_INET6, "::1" }, { AF_INET6, "fe80::1" },
	};
	struct fixture *fx = *state;
	uint8_t frame[256];

	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		/* the first allowed case of the family, from the forged source */
		const struct packet_case *c = NULL;
		size_t len;

		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]) && !c; k++)
			if (cases[k].family == forged[i].family && cases[k].verdict)
				c = &cases[k];
		assert_non_null(c);
		len = build_frame(c, frame, sizeof(frame));
		assert_int_equal(run_frame(bpf_program__fd(fx->boundary->progs.cgf_boundary),
					   frame, len, c->name), TCX_NEXT);
		if (forged[i].family == AF_INET)
			assert_int_equal(inet_pton(AF_INET, forged[i].src, frame + ETH_HLEN + 12),
					 1);
		else
			assert_int_equal(inet_pton(AF_INET6, forged[i].src, frame + ETH_HLEN + 8),
					 1);
		if (run_frame(bpf_program__fd(fx->boundary->progs.cgf_boundary), frame, len,
			      c->name) != TCX_DROP)
			fail_msg("boundary, '%s' from %s: passed", c->name, forged[i].src);
	}
}

/* A boundary drop is reported like the hooks' own, without a process. */
static int count_boundary_event(void *ctx, void *data, size_t size)
{
	const struct cgf_event *e = data;
	unsigned *n = ctx;

	if (size >= sizeof(*e) && e->hook == CGF_HOOK_BOUNDARY && e->dport == 81 &&
	    e->pid == 0 && e->comm[0] == '\0' && e->cgroup_id == 1)
		(*n)++;
	return 0;
}

static void test_boundary_event(void **state)
{
	struct fixture *fx = *state;
	unsigned n = 0;
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(fx->skel->maps.cgf_events),
						  count_boundary_event, &n, NULL);

	assert_non_null(rb);
	ring_buffer__consume(rb);
	n = 0;
	assert_int_equal(run_boundary(fx, &cases[1]), TCX_DROP);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	assert_int_equal(n, 1);
}

/* The boundary reads the fence's audit flag from the shared config too. */
static void test_boundary_audit(void **state)
{
	struct fixture *fx = *state;
	struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION, .cgroup_id = 1,
				  .flags = CGF_CONFIG_AUDIT };
	int cfg_fd = bpf_map__fd(fx->skel->maps.cgf_config);
	struct cgf_stats before, after;
	uint32_t zero = 0;

	sum_stats(fx, &before);
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	assert_int_equal(run_boundary(fx, &cases[1]), TCX_NEXT);
	cfg.flags = 0;
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	assert_int_equal(run_boundary(fx, &cases[1]), TCX_DROP);
	sum_stats(fx, &after);
	assert_int_equal(after.audited[CGF_HOOK_BOUNDARY] - before.audited[CGF_HOOK_BOUNDARY], 1);
	assert_int_equal(after.denied[CGF_HOOK_BOUNDARY] - before.denied[CGF_HOOK_BOUNDARY], 1);
}

/* An empty allowlist (a fence before its first sync) drops everything. */
static void test_empty_denies(void **state)
{
	struct cgfence_bpf *skel;
	struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION };
	uint32_t zero = 0;
	struct fixture empty;

	(void)state;
	skel = cgfence_bpf__open_and_load();
	assert_non_null(skel);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.cgf_config), &zero, &cfg,
					     BPF_ANY), 0);
	empty.skel = skel;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(run_egress(&empty, &cases[i]), 0);
	cgfence_bpf__destroy(skel);
}

/*
 * The boundary checks that a packet's source routes back out of the
 * interface it came in by (bpf_fib_lookup, which needs forwarding on it).  A
 * test run comes in by loopback: in a network namespace of its own, the
 * frames' sources (198.18.0.1, 2001:db8::1) are routed there.  Any other
 * source has no route and is refused, which a case of its own shows.
 */
static int private_network(void)
{
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bpf_egress: cannot unshare the network namespace: %s\n",
			strerror(errno));
		return -1;
	}
	/* and 2001:db8:5::/48 elsewhere (a veth): beyond the link */
	if (system("ip link set lo up && ip route add 198.18.0.0/24 dev lo && "
		   "ip -6 route add 2001:db8::/64 dev lo && ip link add cgfbeyond type veth peer name cgfpeer && "
		   "ip link set cgfbeyond up && ip link set cgfpeer up && ip -6 route add 2001:db8:5::/48 dev cgfbeyond && "
		   "sysctl -qw net.ipv4.conf.lo.forwarding=1 net.ipv6.conf.lo.forwarding=1")) {
		fprintf(stderr, "bpf_egress: cannot route the test sources to loopback "
				"(ip, sysctl)\n");
		return -1;
	}
	return 0;
}

/*
 * DNS proxy mode: packets to this fence's proxy endpoints (127.0.0.1:P and
 * [::1]:P, TCP and UDP) pass; another port on loopback, another fence's
 * proxy, port 53 itself and everything once the mode is off do not.
 */
static void test_proxy_endpoint(void **state)
{
	struct fixture *fx = *state;
	struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION, .cgroup_id = 1,
				  .flags = CGF_CONFIG_DNS_PROXY };
	static const struct packet_case proxy_cases[] = {
		{ "udp to the proxy", AF_INET, "127.0.0.1", IPPROTO_UDP, 40053, .verdict = 1 },
		{ "tcp to the proxy", AF_INET, "127.0.0.1", IPPROTO_TCP, 40053, .verdict = 1 },
		{ "udp to the proxy, IPv6", AF_INET6, "::1", IPPROTO_UDP, 40053, .verdict = 1 },
		{ "tcp to the proxy, IPv6", AF_INET6, "::1", IPPROTO_TCP, 40053, .verdict = 1 },
		{ "another loopback port", AF_INET, "127.0.0.1", IPPROTO_UDP, 40054, .verdict = 0 },
		{ "another fence's proxy", AF_INET, "127.0.0.2", IPPROTO_UDP, 40053, .verdict = 0 },
		{ "port 53 of a resolver", AF_INET, "198.19.0.9", IPPROTO_UDP, 53, .verdict = 0 },
		{ "port 53 on loopback", AF_INET, "127.0.0.1", IPPROTO_UDP, 53, .verdict = 0 },
		{ "icmp to the proxy address", AF_INET, "127.0.0.1", IPPROTO_ICMP, 0, .verdict = 0 },
	};
	int cfg_fd = bpf_map__fd(fx->skel->maps.cgf_config);
	uint32_t zero = 0, lo = htonl(INADDR_LOOPBACK);
	size_t i;

	cfg.proxy4 = (struct cgf_endpoint){ .family = AF_INET, .port = 40053 };
	memcpy(cfg.proxy4.addr, &lo, 4);
	cfg.proxy6 = (struct cgf_endpoint){ .family = AF_INET6, .port = 40053 };
	memcpy(cfg.proxy6.addr, &in6addr_loopback, 16);
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	for (i = 0; i < sizeof(proxy_cases) / sizeof(proxy_cases[0]); i++) {
		int got = run_egress(fx, &proxy_cases[i]);

		if (got != proxy_cases[i].verdict)
			fail_msg("case '%s': verdict %d, expected %d", proxy_cases[i].name, got,
				 proxy_cases[i].verdict);
	}
	/* the flag off, or an endpoint gone: the same packets are judged by the allowlist */
	cfg.flags = 0;
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	assert_int_equal(run_egress(fx, &proxy_cases[0]), 0);
	cfg.flags = CGF_CONFIG_DNS_PROXY;
	memset(&cfg.proxy6, 0, sizeof(cfg.proxy6));
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
	assert_int_equal(run_egress(fx, &proxy_cases[2]), 0);
	assert_int_equal(run_egress(fx, &proxy_cases[0]), 1);
	/* back to the other tests' config */
	memset(&cfg, 0, sizeof(cfg));
	cfg.abi_version = CGF_ABI_VERSION;
	cfg.cgroup_id = 1;
	assert_int_equal(bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_deny_event),
		cmocka_unit_test(test_deny_reasons),
		cmocka_unit_test(test_audit_mode),
		cmocka_unit_test(test_empty_denies),
		cmocka_unit_test(test_boundary_verdicts),
		cmocka_unit_test(test_boundary_link_traffic),
		cmocka_unit_test(test_boundary_forged_source),
		cmocka_unit_test(test_boundary_event),
		cmocka_unit_test(test_boundary_audit),
		cmocka_unit_test(test_proxy_endpoint),
	};

	if (geteuid() != 0) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true")) {
			fprintf(stderr, "bpf_egress: needs root to load BPF programs, and CI must "
					"run it\n");
			return 1;
		}
		printf("1..1\nok 1 - bpf_egress # SKIP needs root to load BPF programs\n");
		return 0;
	}
	if (private_network())
		return 1;
	libbpf_set_print(NULL);
	return cmocka_run_group_tests_name("bpf_egress", tests, setup, teardown);
}

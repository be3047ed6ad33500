// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where a fence keeps its allowlist entries: the capacity of the exact-address
 * maps (cgf_exact_capacity, a table), and, on a real fence whose exact maps
 * hold two keys (CGFENCE_EXACT_CAPACITY=2), that every write path (attach,
 * grant, sync) keeps each full-length key in one map only, the exact map
 * while it has room and else the trie, with the value it must have, and that
 * the read path (dump) lists each key once.  The verdicts themselves are
 * tested with packets (test_bpf_egress) and connections
 * (tests/integration/test_daemon.sh test_exact_map_overflow).
 *
 * The fence test needs root (BPF, a cgroup, bpffs).  Outside CI it skips
 * without; with CI=true it fails.
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
#include <time.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "cgfence.h"
#include "fence.h"
#include "policy.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void test_exact_capacity(void **unused)
{
	static const struct {
		size_t n_full;
		uint32_t forced, want;
	} cases[] = {
		{ 0, 0, CGF_EXACT_MIN_ENTRIES },
		{ 10, 0, CGF_EXACT_MIN_ENTRIES },
		{ 8192, 0, 16384 },   /* twice: 16384 */
		{ 8193, 0, 32768 },   /* twice: 16386 */
		{ 400000, 0, 1u << 20 },
		{ 524288, 0, 1u << 20 }, /* twice: 1048576 */
		{ 524289, 0, CGF_MAX_ENTRIES },
		{ CGF_MAX_ENTRIES, 0, CGF_MAX_ENTRIES },
		{ (size_t)CGF_MAX_ENTRIES * 4, 0, CGF_MAX_ENTRIES },
		{ 1000, 4, 4 },
		{ 0, 1, 1 },
		{ 0, CGF_MAX_ENTRIES * 2u, CGF_MAX_ENTRIES },
	};

	(void)unused;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t got = cgf_exact_capacity(cases[i].n_full, cases[i].forced);

		if (got != cases[i].want)
			fail_msg("cgf_exact_capacity(%zu, %u) = %u, want %u", cases[i].n_full,
				 cases[i].forced, got, cases[i].want);
	}
}

/* ---- a real fence ------------------------------------------------------ */

struct fx {
	char cgroup[512];
	char pin_root[64];
	char dir[128];
	uint64_t id;
	struct cgf_fence *fence;
	int exact4, trie4, exact6, trie6;
};

static int open_map(const struct fx *fx, const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	return fd;
}

/* The allowlist of rules (an expired or absent one is left out). */
static void build(const char *const *rules, size_t n, struct cgf_allowlist *list)
{
	struct cgf_policy policy = { 0 };
	struct cgf_grant *grants = calloc(n + 1, sizeof(*grants));
	struct cgf_error err;

	assert_non_null(grants);
	for (size_t i = 0; i < n; i++) {
		if (cgf_policy_add_rule(&policy, rules[i], &err))
			fail_msg("rule '%s' refused", rules[i]);
		cgf_rule_to_grant(&policy.rules[i], &grants[i]);
	}
	assert_int_equal(cgf_allowlist_build(grants, n, list, &err), 0);
	free(grants);
	cgf_policy_free(&policy);
}

/* Syncs the fence to the allowlist of rules. */
static void sync_rules(const struct fx *fx, const char *const *rules, size_t n)
{
	struct cgf_allowlist list;
	char err[CGF_ERR_LEN];

	build(rules, n, &list);
	if (cgf_fence_sync(fx->fence, &list, err))
		fail_msg("sync: %s", err);
	cgf_allowlist_free(&list);
}

static struct cgf_key4 key4(const char *addr, unsigned prefixlen)
{
	struct cgf_key4 k = { .prefixlen = prefixlen };

	assert_int_equal(inet_pton(AF_INET, addr, k.addr), 1);
	return k;
}

/* Is key (exactly this prefix) in the trie?  Its lookup alone would say "covered". */
static bool in_trie(int fd, const void *key, size_t key_size)
{
	char cur[sizeof(struct cgf_key6)], next[sizeof(struct cgf_key6)];
	const void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (!memcmp(next, key, key_size))
			return true;
		memcpy(cur, next, key_size);
		prev = cur;
	}
	return false;
}

static size_t count_keys(int fd, size_t key_size, unsigned only_prefixlen)
{
	char cur[sizeof(struct cgf_key6)], next[sizeof(struct cgf_key6)];
	const void *prev = NULL;
	size_t n = 0;
	__u32 plen;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(&plen, next, sizeof(plen));
		n += !only_prefixlen || plen == only_prefixlen;
		memcpy(cur, next, key_size);
		prev = cur;
	}
	return n;
}

/* 1: in the exact map only, 2: in the trie only; fails if in both. */
static int where4(const struct fx *fx, const struct cgf_key4 *k)
{
	struct cgf_allow v;
	bool e = !bpf_map_lookup_elem(fx->exact4, k, &v), t = in_trie(fx->trie4, k, sizeof(*k));

	if (e && t)
		fail_msg("%u.%u.%u.%u/32 is in both maps", k->addr[0], k->addr[1], k->addr[2],
			 k->addr[3]);
	return e ? 1 : t ? 2 : 0;
}

static void value4(const struct fx *fx, const struct cgf_key4 *k, struct cgf_allow *v)
{
	int w = where4(fx, k);

	assert_int_not_equal(w, 0);
	assert_int_equal(bpf_map_lookup_elem(w == 1 ? fx->exact4 : fx->trie4, k, v), 0);
}

/* Does v allow TCP to port? */
static bool allows(const struct cgf_allow *v, uint16_t port)
{
	for (unsigned r = 0; r < v->n_ranges && r < CGF_MAX_RANGES; r++)
		if ((v->ranges[r].protos & CGF_PROTO_TCP) && v->ranges[r].port_lo <= port &&
		    port <= v->ranges[r].port_hi)
			return true;
	return false;
}

/* The fence's dump lists every key once, n_v4 and n_v6 of them. */
static void dump_once(const struct fx *fx, size_t n_v4, size_t n_v6)
{
	struct cgf_allowlist d;
	size_t t4, t6, c4, c6;

	assert_int_equal(cgf_fence_dump(fx->fence, 0, &d, &t4, &t6), 0);
	assert_int_equal(d.n_v4, n_v4);
	assert_int_equal(d.n_v6, n_v6);
	assert_int_equal(t4, n_v4);
	assert_int_equal(t6, n_v6);
	for (size_t i = 1; i < d.n_v4; i++)
		assert_true(memcmp(&d.v4[i - 1].key, &d.v4[i].key, sizeof(d.v4[i].key)) < 0);
	for (size_t i = 1; i < d.n_v6; i++)
		assert_true(memcmp(&d.v6[i - 1].key, &d.v6[i].key, sizeof(d.v6[i].key)) < 0);
	assert_int_equal(cgf_fence_count(fx->fence, &c4, &c6), 0);
	assert_int_equal(c4, n_v4);
	assert_int_equal(c6, n_v6);
	cgf_allowlist_free(&d);
}

static const char *const rules_v1[] = {
	"198.18.0.2:80/tcp", "198.18.0.3:80/tcp",     "198.18.0.4:80/tcp",
	"198.18.0.5:80/tcp", "198.18.1.0/24:443/tcp", "198.18.1.7:80/tcp",
	"[2001:db8::2]:80/tcp", "[2001:db8::3]:80/tcp", "[2001:db8::4]:80/tcp",
};

/* Is rule ("ADDR:PORTS/PROTO") one for the address of key k? */
static bool rule_for(const char *rule, const struct cgf_key4 *k)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, k->addr, a, sizeof(a));
	return !strncmp(rule, a, strlen(a)) && rule[strlen(a)] == ':';
}

static int fence_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char root[256], err[CGF_ERR_LEN];
	struct cgf_attach_opts opts = { 0 };
	struct cgf_allowlist list;

	assert_non_null(fx);
	*state = fx;
	assert_int_equal(cgf_cgroup2_root(root, sizeof(root), err), 0);
	snprintf(fx->cgroup, sizeof(fx->cgroup), "%s/cgfu-maps-%d", root, (int)getpid());
	snprintf(fx->pin_root, sizeof(fx->pin_root), "/sys/fs/bpf/cgfu-maps-%d", (int)getpid());
	if (mkdir(fx->cgroup, 0755))
		fail_msg("cannot create cgroup %s: %s", fx->cgroup, strerror(errno));
	assert_int_equal(cgf_cgroup_id(fx->cgroup, &fx->id), 0);
	snprintf(fx->dir, sizeof(fx->dir), "%s/%llu", fx->pin_root, (unsigned long long)fx->id);
	build(rules_v1, ARRAY_SIZE(rules_v1), &list);
	opts.pin_root = fx->pin_root;
	setenv("CGFENCE_EXACT_CAPACITY", "2", 1);
	if (cgf_fence_attach(fx->cgroup, &list, &opts, &fx->fence, err))
		fail_msg("attach: %s", err);
	unsetenv("CGFENCE_EXACT_CAPACITY");
	cgf_allowlist_free(&list);
	fx->exact4 = open_map(fx, CGF_PIN_EXACT4);
	fx->trie4 = open_map(fx, CGF_PIN_ALLOW4);
	fx->exact6 = open_map(fx, CGF_PIN_EXACT6);
	fx->trie6 = open_map(fx, CGF_PIN_ALLOW6);
	return 0;
}

static int fence_teardown(void **state)
{
	struct fx *fx = *state;
	char err[CGF_ERR_LEN];

	if (!fx)
		return 0;
	cgf_fence_close(fx->fence);
	for (int *fd = &fx->exact4; fd <= &fx->trie6; fd++)
		if (*fd > 0)
			close(*fd);
	if (fx->id)
		cgf_fence_remove(fx->pin_root, fx->id, err);
	rmdir(fx->pin_root);
	rmdir(fx->cgroup);
	free(fx);
	return 0;
}

/* Each key in one map; the first two full-length keys of a family in the exact map. */
static void test_attach_overflows_to_trie(void **state)
{
	struct fx *fx = *state;
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct cgf_allow v;
	const char *addrs[] = { "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5",
				"198.18.1.7" };
	int n_exact = 0, n_trie = 0;

	assert_int_equal(bpf_obj_get_info_by_fd(fx->exact4, &info, &len), 0);
	assert_int_equal(info.max_entries, 2);
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++) {
		struct cgf_key4 k = key4(addrs[i], 32);
		int w = where4(fx, &k);

		n_exact += w == 1;
		n_trie += w == 2;
		value4(fx, &k, &v);
		assert_true(allows(&v, 80));
		/* 198.18.1.7 carries its /24's port too, wherever it is */
		assert_int_equal(allows(&v, 443), !strcmp(addrs[i], "198.18.1.7"));
	}
	assert_int_equal(n_exact, 2);
	assert_int_equal(n_trie, 3);
	assert_int_equal(count_keys(fx->exact6, sizeof(struct cgf_key6), 0), 2);
	assert_int_equal(count_keys(fx->trie6, sizeof(struct cgf_key6), 128), 1);
	dump_once(fx, 6, 3);
}

/* A grant updates a key where it lives, and sends a new one to the trie when full. */
static void test_grant_where_it_lives(void **state)
{
	struct fx *fx = *state;
	char err[CGF_ERR_LEN];
	struct cgf_grant g = { .family = AF_INET, .prefixlen = 32, .port_lo = 8080,
			       .port_hi = 8080, .protos = CGF_PROTO_TCP };
	struct cgf_key4 k = key4("198.18.1.9", 32), over;
	struct cgf_allow v;
	const char *addrs[] = { "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5" };
	size_t i;

	/* new, under 198.18.1.0/24, the exact map full: to the trie, with the /24's port */
	memcpy(g.addr, k.addr, 4);
	if (cgf_fence_grant(fx->fence, &g, 1, err))
		fail_msg("grant: %s", err);
	assert_int_equal(where4(fx, &k), 2);
	value4(fx, &k, &v);
	assert_true(allows(&v, 8080));
	assert_true(allows(&v, 443));
	/* one already in the trie: updated there */
	for (i = 0; i < ARRAY_SIZE(addrs); i++) {
		over = key4(addrs[i], 32);
		if (where4(fx, &over) == 2)
			break;
	}
	assert_true(i < ARRAY_SIZE(addrs));
	memcpy(g.addr, over.addr, 4);
	g.port_lo = g.port_hi = 81;
	if (cgf_fence_grant(fx->fence, &g, 1, err))
		fail_msg("grant: %s", err);
	assert_int_equal(where4(fx, &over), 2);
	value4(fx, &over, &v);
	assert_true(allows(&v, 80));
	assert_true(allows(&v, 81));
	assert_int_equal(count_keys(fx->exact4, sizeof(struct cgf_key4), 0), 2);
	dump_once(fx, 7, 3);
}

/*
 * A sync updates keys where they live, deletes from both maps, and sends a
 * new key to the exact map once a delete made room there; a key found in both
 * maps (as an older writer could leave) is listed once, with the exact map's
 * value, the one in force, and a sync that drops it deletes both.
 */
static void test_sync_where_it_lives(void **state)
{
	struct fx *fx = *state;
	char err[CGF_ERR_LEN], rule[64];
	const char *addrs[] = { "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5",
				"198.18.1.7" };
	const char *rules[ARRAY_SIZE(rules_v1) + 1];
	struct cgf_key4 in_exact = { 0 }, in_trie_k = { 0 }, k, k9;
	struct cgf_allowlist list;
	struct cgf_allow v, odd = { .n_ranges = 1,
				    .ranges[0] = { .port_lo = 9, .port_hi = 9,
						   .protos = CGF_PROTO_TCP } };
	size_t i, n = 0;

	for (i = 0; i < ARRAY_SIZE(addrs); i++) {
		k = key4(addrs[i], 32);
		if (where4(fx, &k) == 1 && !in_exact.prefixlen)
			in_exact = k;
		if (where4(fx, &k) == 2 && !in_trie_k.prefixlen && strcmp(addrs[i], "198.18.1.7"))
			in_trie_k = k;
	}
	assert_int_equal(in_exact.prefixlen, 32);
	assert_int_equal(in_trie_k.prefixlen, 32);
	/*
	 * v2: without one exact key (room made), the trie key on port 82,
	 * 198.18.0.9 new; the grants of the previous test are gone.
	 */
	for (i = 0; i < ARRAY_SIZE(rules_v1); i++) {
		if (rule_for(rules_v1[i], &in_exact))
			continue;
		if (rule_for(rules_v1[i], &in_trie_k)) {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, in_trie_k.addr, a, sizeof(a));
			snprintf(rule, sizeof(rule), "%s:82/tcp", a);
			rules[n++] = rule;
			continue;
		}
		rules[n++] = rules_v1[i];
	}
	rules[n++] = "198.18.0.9:80/tcp";
	sync_rules(fx, rules, n);
	assert_int_equal(where4(fx, &in_exact), 0);
	/* updated where it lived */
	assert_int_equal(where4(fx, &in_trie_k), 2);
	value4(fx, &in_trie_k, &v);
	assert_true(allows(&v, 82));
	assert_false(allows(&v, 80));
	k9 = key4("198.18.0.9", 32);
	/*
	 * The sync writes before it deletes: the exact map was still full, so
	 * the new key went to the trie, and then into the one room the deletes
	 * made (the writes go from the last key back: it was the first to wait).
	 */
	assert_int_equal(where4(fx, &k9), 1);
	k = key4("198.18.1.9", 32);
	assert_int_equal(where4(fx, &k), 0);
	assert_int_equal(count_keys(fx->exact4, sizeof(struct cgf_key4), 0), 2);
	dump_once(fx, 6, 3);

	/* the exact map's key also in the trie, with another value */
	assert_int_equal(bpf_map_update_elem(fx->trie4, &k9, &odd, BPF_NOEXIST), 0);
	{
		struct cgf_allowlist d;

		assert_int_equal(cgf_fence_dump(fx->fence, 0, &d, NULL, NULL), 0);
		assert_int_equal(d.n_v4, 6);
		for (i = 0; i < d.n_v4; i++) {
			if (memcmp(&d.v4[i].key, &k9, sizeof(k9)))
				continue;
			assert_true(allows(&d.v4[i].value, 80)); /* the exact map's, in force */
			assert_false(allows(&d.v4[i].value, 9));
		}
		cgf_allowlist_free(&d);
	}
	/* v3: that key dropped: gone from both maps */
	n = 0;
	for (i = 0; i < ARRAY_SIZE(rules_v1); i++) {
		if (rule_for(rules_v1[i], &in_exact))
			continue;
		rules[n++] = rule_for(rules_v1[i], &in_trie_k) ? rule : rules_v1[i];
	}
	build(rules, n, &list);
	/* the fence learns the maps again: they changed behind its back */
	cgf_fence_close(fx->fence);
	if (cgf_fence_open(fx->pin_root, fx->id, &fx->fence, err))
		fail_msg("open: %s", err);
	if (cgf_fence_sync(fx->fence, &list, err))
		fail_msg("sync: %s", err);
	cgf_allowlist_free(&list);
	assert_int_equal(where4(fx, &k9), 0);
	assert_int_equal(count_keys(fx->exact4, sizeof(struct cgf_key4), 0), 1);
	dump_once(fx, 5, 3);
	/* v4: a new key goes to the room the deletes made in the exact map */
	rules[n++] = "198.18.0.8:80/tcp";
	sync_rules(fx, rules, n);
	k = key4("198.18.0.8", 32);
	assert_int_equal(where4(fx, &k), 1);
	dump_once(fx, 6, 3);
}

/*
 * A key the fence does not know the maps hold (written behind its back) and
 * a new list that adds it: the sync's insert of what it takes to be absent
 * finds it, and updates it where it lives instead of failing.
 */
static void test_sync_new_key_found_after_all(void **state)
{
	struct fx *fx = *state;
	const char *rules[ARRAY_SIZE(rules_v1) + 2];
	struct cgf_key4 k = key4("198.18.0.20", 32);
	struct cgf_allow v, odd = { .n_ranges = 1,
				    .ranges[0] = { .port_lo = 9, .port_hi = 9,
						   .protos = CGF_PROTO_TCP } };
	size_t i, n = 0;

	/* the exact map (capacity 2) is full: the key lives in the trie */
	assert_int_equal(count_keys(fx->exact4, sizeof(struct cgf_key4), 0), 2);
	assert_int_equal(bpf_map_update_elem(fx->trie4, &k, &odd, BPF_NOEXIST), 0);
	for (i = 0; i < ARRAY_SIZE(rules_v1); i++)
		rules[n++] = rules_v1[i];
	rules[n++] = "198.18.0.20:80/tcp";
	sync_rules(fx, rules, n);
	value4(fx, &k, &v); /* in one map (where4 fails on both), with the list's value */
	assert_true(allows(&v, 80));
	assert_false(allows(&v, 9));
}

/*
 * Every full-length key of a fresh fence (exact capacity 2) replaced: the new
 * keys find the exact map full of the old ones and go to the trie; once the
 * old ones are deleted they move to the exact map, where lookups stay cheap.
 */
static void test_sync_rehomes_after_replace(void **state)
{
	struct fx *fx = *state;
	const char *rules[] = {
		"198.18.1.0/24:443/tcp", "198.18.0.12:80/tcp", "198.18.0.13:80/tcp",
		"[2001:db8::2]:80/tcp",  "[2001:db8::3]:80/tcp", "[2001:db8::4]:80/tcp",
	};
	struct cgf_key4 k12 = key4("198.18.0.12", 32), k13 = key4("198.18.0.13", 32);
	struct cgf_allow v;

	assert_int_equal(count_keys(fx->exact4, sizeof(struct cgf_key4), 0), 2);
	sync_rules(fx, rules, ARRAY_SIZE(rules));
	assert_int_equal(where4(fx, &k12), 1);
	assert_int_equal(where4(fx, &k13), 1);
	value4(fx, &k13, &v);
	assert_true(allows(&v, 80));
	assert_int_equal(count_keys(fx->trie4, sizeof(struct cgf_key4), 32), 0);
	dump_once(fx, 3, 3);
}

/* The value of a full-length IPv6 key, from whichever map holds it. */
static void value6(const struct fx *fx, const char *addr, struct cgf_allow *v)
{
	struct cgf_key6 k = { .prefixlen = 128 };

	assert_int_equal(inet_pton(AF_INET6, addr, k.addr), 1);
	if (!bpf_map_lookup_elem(fx->exact6, &k, v))
		return;
	assert_true(in_trie(fx->trie6, &k, sizeof(k)));
	assert_int_equal(bpf_map_lookup_elem(fx->trie6, &k, v), 0);
}

/*
 * IPv6 entries a sync writes: a struct cgf_entry6's value starts 4 bytes past
 * its 20-byte key (alignment), so a value read from just past the key would
 * hold no ranges and deny the address on every port.
 */
static void test_sync_ipv6_values(void **state)
{
	struct fx *fx = *state;
	const char *rules[] = {
		"198.18.1.0/24:443/tcp", "198.18.0.12:80/tcp", "198.18.0.13:80/tcp",
		"[2001:db8::2]:81/tcp",  "[2001:db8::3]:80/tcp", "[2001:db8::4]:80/tcp",
		"[2001:db8::9]:80/tcp",  "[2001:db8:1::/64]:443/tcp",
	};
	struct cgf_allow v;

	sync_rules(fx, rules, ARRAY_SIZE(rules));
	value6(fx, "2001:db8::2", &v); /* changed */
	assert_int_equal(v.n_ranges, 1);
	assert_true(allows(&v, 81));
	assert_false(allows(&v, 80));
	value6(fx, "2001:db8::9", &v); /* new */
	assert_int_equal(v.n_ranges, 1);
	assert_true(allows(&v, 80));
	{
		struct cgf_key6 k = { .prefixlen = 64 };

		assert_int_equal(inet_pton(AF_INET6, "2001:db8:1::", k.addr), 1);
		assert_int_equal(bpf_map_lookup_elem(fx->trie6, &k, &v), 0);
		assert_int_equal(v.n_ranges, 1);
		assert_true(allows(&v, 443));
	}
	dump_once(fx, 3, 5);
}

/*
 * The verdict the programs would reach for TCP to addr:port from the maps as
 * they are: the exact map, else the trie's longest match.
 */
static bool maps_allow4(int exact_fd, int trie_fd, const struct cgf_key4 *k, uint16_t port)
{
	struct cgf_allow v;

	if (bpf_map_lookup_elem(exact_fd, k, &v) && bpf_map_lookup_elem(trie_fd, k, &v))
		return false;
	return allows(&v, port);
}

/*
 * In a child: judges k:port from the maps again and again until told to stop
 * (a byte on stop_fd, or 20 s), after saying on ready_fd that it has begun;
 * exits with the number of denials seen (at most 255).
 */
static void observe(const struct fx *fx, const struct cgf_key4 *k, uint16_t port, int ready_fd,
		    int stop_fd)
{
	int exact = open_map(fx, CGF_PIN_EXACT4), trie = open_map(fx, CGF_PIN_ALLOW4);
	struct pollfd p = { .fd = stop_fd, .events = POLLIN };
	unsigned denied = 0;
	time_t end = time(NULL) + 20;

	for (long n = 0; time(NULL) < end; n++) {
		denied += !maps_allow4(exact, trie, k, port);
		if (n == 0 && write(ready_fd, "r", 1) != 1)
			_exit(255);
		if (poll(&p, 1, 0) > 0)
			break;
	}
	_exit(denied > 255 ? 255 : (int)denied);
}

/*
 * What a sync promises while it runs: a destination allowed before and after
 * is never denied in between.  198.18.1.5:443 is allowed by 198.18.0.0/16
 * before and by a /32 of its own after, while 198.18.1.0/24 (ports 22, and
 * 443 through the /16 before) loses 443.  Written /24 first, the address
 * would be denied until its /32 is in; 8,192 /30s sort between them, so that
 * such a gap would last thousands of writes.  A child judges the address
 * from the maps all through the sync.
 */
static void test_sync_never_denies_in_between(void **state)
{
	struct fx *fx = *state;
	enum { FILLERS = 8192 };
	static char filler[FILLERS][32];
	static const char *rules[FILLERS + 2];
	const char *before[] = { "198.18.0.0/16:443/tcp", "198.18.1.0/24:22/tcp" };
	struct cgf_key4 k = key4("198.18.1.5", 32);
	struct cgf_allowlist list;
	char err[CGF_ERR_LEN], c;
	int ready[2], stop[2], status;
	size_t n = 0;
	pid_t pid;

	sync_rules(fx, before, ARRAY_SIZE(before));
	assert_true(maps_allow4(fx->exact4, fx->trie4, &k, 443));

	rules[n++] = "198.18.1.0/24:22/tcp";
	rules[n++] = "198.18.1.5:443/tcp";
	for (int i = 0; i < FILLERS; i++) {
		snprintf(filler[i], sizeof(filler[i]), "198.19.%d.%d/30:80/tcp", i / 64, i % 64 * 4);
		rules[n++] = filler[i];
	}
	build(rules, n, &list);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(stop), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		observe(fx, &k, 443, ready[1], stop[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	if (cgf_fence_sync(fx->fence, &list, err))
		fail_msg("sync: %s", err);
	cgf_allowlist_free(&list);
	assert_int_equal(write(stop[1], "s", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (int *fd = ready; fd < ready + 2; fd++)
		close(*fd);
	close(stop[0]);
	close(stop[1]);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status))
		fail_msg("198.18.1.5:443 denied %d times during the sync", WEXITSTATUS(status));
	assert_true(maps_allow4(fx->exact4, fx->trie4, &k, 443));
	k = key4("198.18.1.6", 32);
	assert_false(maps_allow4(fx->exact4, fx->trie4, &k, 443)); /* the /16 is gone */
}

/*
 * A grant for a key the trie holds, once the exact map has room: the key
 * moves to the exact map with its new value and leaves the trie.  (On this
 * kernel the test cannot show that no trie write relies on BPF_EXIST or
 * BPF_NOEXIST, which LPM tries ignored before Linux 6.13: fam_put says why
 * none does.)
 */
static void test_grant_moves_key_from_trie(void **state)
{
	struct fx *fx = *state;
	const char *addrs[] = { "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5",
				"198.18.1.7" };
	const char *rules[ARRAY_SIZE(rules_v1)];
	struct cgf_grant g = { .family = AF_INET, .prefixlen = 32, .port_lo = 81,
			       .port_hi = 81, .protos = CGF_PROTO_TCP };
	struct cgf_key4 gone = { 0 }, moved = { 0 }, k;
	char err[CGF_ERR_LEN];
	struct cgf_allow v;
	size_t i, n = 0;

	for (i = 0; i < ARRAY_SIZE(addrs); i++) {
		k = key4(addrs[i], 32);
		if (where4(fx, &k) == 1 && !gone.prefixlen)
			gone = k;
		else if (where4(fx, &k) == 2 && !moved.prefixlen)
			moved = k;
	}
	assert_int_equal(gone.prefixlen, 32);
	assert_int_equal(moved.prefixlen, 32);
	/* a sync without one exact-map key makes room there; the trie keeps its three */
	for (i = 0; i < ARRAY_SIZE(rules_v1); i++)
		if (!rule_for(rules_v1[i], &gone))
			rules[n++] = rules_v1[i];
	sync_rules(fx, rules, n);
	assert_int_equal(count_keys(fx->exact4, sizeof(struct cgf_key4), 0), 1);
	assert_int_equal(count_keys(fx->trie4, sizeof(struct cgf_key4), 32), 3);

	memcpy(g.addr, moved.addr, 4);
	if (cgf_fence_grant(fx->fence, &g, 1, err))
		fail_msg("grant: %s", err);
	assert_int_equal(where4(fx, &moved), 1);
	value4(fx, &moved, &v);
	assert_true(allows(&v, 80));
	assert_true(allows(&v, 81));
	assert_int_equal(count_keys(fx->trie4, sizeof(struct cgf_key4), 32), 2);
	dump_once(fx, 5, 3);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_exact_capacity),
	};
	const struct CMUnitTest fence[] = {
		cmocka_unit_test(test_attach_overflows_to_trie),
		cmocka_unit_test(test_grant_where_it_lives),
		cmocka_unit_test(test_sync_where_it_lives),
		cmocka_unit_test(test_sync_new_key_found_after_all),
	};
	const struct CMUnitTest fresh_fence[] = {
		cmocka_unit_test(test_sync_rehomes_after_replace),
		cmocka_unit_test(test_sync_ipv6_values),
		cmocka_unit_test(test_sync_never_denies_in_between),
	};
	const struct CMUnitTest grant_fence[] = {
		cmocka_unit_test(test_grant_moves_key_from_trie),
	};
	int ret = cmocka_run_group_tests_name("fence_maps", pure, NULL, NULL);

	if (geteuid() != 0) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true")) {
			fprintf(stderr, "fence_maps: needs root for a fence, and CI must run it\n");
			return 1;
		}
		printf("1..1\nok 1 - fence_maps_bpf # SKIP needs root for a fence\n");
		return ret;
	}
	libbpf_set_print(NULL);
	ret |= cmocka_run_group_tests_name("fence_maps_bpf", fence, fence_setup, fence_teardown);
	ret |= cmocka_run_group_tests_name("fence_maps_bpf_fresh", fresh_fence, fence_setup,
					   fence_teardown);
	return ret | cmocka_run_group_tests_name("fence_maps_bpf_grant", grant_fence, fence_setup,
						 fence_teardown);
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The filtering DNS proxy of proxy-mode fences.  One engine serves many
 * fences; each fence is a "client" with its own listening sockets (opened by
 * the caller inside the fence's network namespace), its own allowed names and
 * its own callback that opens the fence for an answered address.
 *
 * For a query from a client the engine:
 *  - answers FORMERR (or drops, if no header can be read) a malformed message;
 *    never forwards it; an opcode other than QUERY gets NOTIMP (counted as
 *    refused); a query of a class other than IN gets REFUSED;
 *  - answers REFUSED when the question's name is not allowed by the client's
 *    names (exact names; "*.d" allows names strictly under d) or its type is
 *    not one of A, AAAA, CNAME, HTTPS, SVCB (plus the client's extra types);
 *    such a query is never sent upstream;
 *  - otherwise answers from its cache, or forwards to the upstream resolvers
 *    (UDP, retried over TCP when the answer has TC set; EDNS0 passed through);
 *  - before releasing an answer to the client, calls allow() for every A/AAAA
 *    record whose owner name is the question name or is reached from it
 *    through a CNAME chain inside the answer section, with the record's TTL
 *    (the smallest TTL along the chain) and the QUESTION name (the allowed
 *    name whose rule grants the address; CNAME targets need not be in the
 *    policy); if any allow() call fails the client gets SERVFAIL instead
 *    (fail closed);
 *  - upstream timeout or error: SERVFAIL, allow() not called.
 *
 * Upstream queries leave from a pool of UDP sockets bound to kernel-chosen
 * random ports, each with a random id (getrandom); a reply counts only when it
 * comes from the address and port it was sent to, with that id and the same
 * question (case-insensitive).  A timeout, or SERVFAIL/REFUSED/FORMERR/NOTIMP
 * from upstream, moves on to the next upstream (at least two tries within
 * timeout_ms).  Over UDP a client gets at most its EDNS0 payload size (512
 * without OPT): a larger answer goes out as header and question with TC set,
 * after allow(), and the client asks again over TCP (from the cache).
 * Bounds: queries in flight per client (inflight_per_client) and overall
 * (4096), cache entries (cache_max_entries) and bytes (32 MiB), TCP
 * connections per client, their write queues (256 KiB) and idle time.
 *
 * Not thread-safe: one thread drives an engine (cgf_dnsproxy_process) and
 * calls every other function of it; allow() and refused() run inside
 * process() and must not call cgf_dnsproxy_client_remove or cgf_dnsproxy_free.
 */
#ifndef CGF_DNSPROXY_H
#define CGF_DNSPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "policy.h"

struct cgf_dnsproxy;
struct cgf_dnsproxy_client;
struct cgf_dnsproxy_names;

struct cgf_dnsproxy_opts {
	const struct sockaddr_storage *upstreams; /* resolvers to forward to (copied) */
	size_t n_upstreams;                       /* 1..8 */
	uint32_t timeout_ms;        /* per upstream query, all tries; 0 = 2000 */
	size_t cache_max_entries;   /* answers cached; 0 = 4096; oldest evicted */
	uint32_t min_ttl, max_ttl;  /* TTLs passed to allow() are clamped to these */
	unsigned inflight_per_client; /* queries forwarded and unanswered, per client;
					 beyond it: SERVFAIL at once; 0 = 64 */
	unsigned tcp_conns_per_client; /* open TCP connections per client; 0 = 16; more
					  wait in the listen backlog until one closes */
	uint32_t tcp_idle_ms;       /* a client TCP connection with nothing in flight and
				       nothing received that long is closed; 0 = 10000 */
};

/* The names a policy lets a client resolve: its domain and wildcard rules. */
int cgf_dnsproxy_names_new(const struct cgf_policy *policy, struct cgf_dnsproxy_names **out);
void cgf_dnsproxy_names_free(struct cgf_dnsproxy_names *n);
/* name: presentation form, any case, trailing dot optional. */
bool cgf_dnsproxy_name_allowed(const struct cgf_dnsproxy_names *n, const char *name);

/*
 * Opens the fence for one answered address, before the answer is released.
 * family AF_INET (addr[0..3]) or AF_INET6; ttl already clamped; name is the
 * question name that the client asked for: lower case, no trailing dot, bytes
 * other than [a-z0-9_-] as \DDD.  Returns 0, or a negative errno (the client
 * then gets SERVFAIL).
 */
typedef int (*cgf_dnsproxy_allow_fn)(void *ctx, int family, const uint8_t addr[16],
				     uint32_t ttl, const char *name);

/* A refused query, for the log (the engine rate-limits: at most 10/s per client). */
typedef void (*cgf_dnsproxy_refused_fn)(void *ctx, const char *name, uint16_t qtype,
					const char *reason);

struct cgf_dnsproxy_client_opts {
	int udp_fd;        /* bound UDP socket, or -1; the engine takes ownership,
			      also when client_add fails */
	int tcp_fd;        /* bound, listening TCP socket, or -1; ownership taken */
	const struct cgf_dnsproxy_names *names; /* borrowed; must outlive the client
						   or be replaced with set_names */
	const uint16_t *extra_qtypes; /* more allowed query types (TXT=16...), copied;
					 at most 32; 0, OPT and 249-252 (TKEY, TSIG,
					 IXFR, AXFR) are refused even when listed */
	size_t n_extra_qtypes;
	cgf_dnsproxy_allow_fn allow;
	cgf_dnsproxy_refused_fn refused; /* may be NULL */
	void *ctx;
};

struct cgf_dnsproxy_stats {
	uint64_t queries;   /* messages received */
	uint64_t answered;  /* forwarded or cached answers released (any rcode from upstream) */
	uint64_t refused;   /* REFUSED by policy (name or type) */
	uint64_t malformed; /* FORMERR or dropped */
	uint64_t servfail;  /* upstream failure, allow() failure, over the in-flight cap */
	uint64_t cache_hits;
	uint64_t addresses_allowed; /* allow() calls that succeeded */
};

int cgf_dnsproxy_new(const struct cgf_dnsproxy_opts *opts, struct cgf_dnsproxy **out);
/* Closes every socket of every client; in-flight queries are dropped. */
void cgf_dnsproxy_free(struct cgf_dnsproxy *p);

int cgf_dnsproxy_client_add(struct cgf_dnsproxy *p, const struct cgf_dnsproxy_client_opts *o,
			    struct cgf_dnsproxy_client **out);
/* Closes the client's sockets; its pending answers are discarded, allow() is
   not called for it again. */
void cgf_dnsproxy_client_remove(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *c);
/* Policy reload: new names apply to queries received from now on. */
void cgf_dnsproxy_client_set_names(struct cgf_dnsproxy_client *c,
				   const struct cgf_dnsproxy_names *names);
void cgf_dnsproxy_client_stats(const struct cgf_dnsproxy_client *c, struct cgf_dnsproxy_stats *s);

/* One fd (epoll) that becomes readable when the engine has work; poll it. */
int cgf_dnsproxy_fd(const struct cgf_dnsproxy *p);
/* Milliseconds until the engine needs process() for a timer; -1 = none. */
int cgf_dnsproxy_timeout_ms(const struct cgf_dnsproxy *p);
/* Does all ready work without blocking; returns 0 or a negative errno on an
   engine-wide failure (per-query failures are answered, not returned). */
int cgf_dnsproxy_process(struct cgf_dnsproxy *p);

/*
 * Messages are parsed by ldns (ldns_wire2pkt) before anything else looks at
 * them; the engine's own code only walks and patches messages ldns accepted
 * (section offsets, TTLs, the id) and is fuzzed (tests/fuzz/fuzz_dnsproxy.c).
 * Refusals are REFUSED, not NXDOMAIN: NXDOMAIN would be cached by the client
 * as "the name does not exist", which is a lie, and hides a policy problem.
 * A query with a QR bit set, or shorter than a header, is dropped (answering
 * it could loop between two DNS speakers).
 */

/*
 * The pure judgement of one query message, for tests and the fuzz target:
 * writes into resp (up to resp_cap bytes) the REFUSED/FORMERR answer when the
 * query must not go upstream and returns its length; returns 0 when the query
 * is to be forwarded; -1 when the message is to be dropped silently.
 */
int cgf_dnsproxy_judge(const uint8_t *msg, size_t len, const struct cgf_dnsproxy_names *names,
		       const uint16_t *extra_qtypes, size_t n_extra_qtypes, uint8_t *resp,
		       size_t resp_cap);

/* One address of an answer (see cgf_dnsproxy_answer_addrs). */
struct cgf_dnsproxy_addr {
	int family;         /* AF_INET (addr[0..3]) or AF_INET6 */
	uint8_t addr[16];
	uint32_t ttl;       /* smallest TTL along the CNAME chain, not clamped */
};

/* Addresses taken from one answer at most; more are ignored (not allowed). */
#define CGF_DNSPROXY_MAX_ADDRS 64

/*
 * The A/AAAA records of a response reached from its question name through
 * CNAME chains in the answer section (at most 16 links; loops end there);
 * records of other owners are ignored.  Writes up to cap addresses into out
 * and returns how many, or -1 when ldns rejects the message or the engine
 * would ignore it as a reply: not exactly one question, a compressed question
 * name, an opcode other than QUERY, sections that do not add up, TSIG or more
 * than one OPT.  For tests and the fuzz target; the engine uses the same walk.
 */
int cgf_dnsproxy_answer_addrs(const uint8_t *msg, size_t len, struct cgf_dnsproxy_addr *out,
			      size_t cap);

#endif /* CGF_DNSPROXY_H */

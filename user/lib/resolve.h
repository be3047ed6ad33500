/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * DNS resolution with TTLs, through c-ares, for domain rules.
 */
#ifndef CGF_RESOLVE_H
#define CGF_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

struct cgf_resolver;

/* A resolver server; addr in network order, IPv4 in addr[0..3]. */
struct cgf_server {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port; /* host order */
};

/*
 * Parses "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT" (default port 53).
 * Returns 0 or -EINVAL, with a reason in err.
 */
int cgf_server_parse(const char *text, struct cgf_server *server, char *err, size_t errlen);

/*
 * Creates a resolver that asks the given servers, or the nameservers of
 * /etc/resolv.conf when n_servers is 0.  Returns 0 or a negative errno, with
 * a reason in err.
 */
int cgf_resolver_new(struct cgf_resolver **out, const struct cgf_server *servers,
		     size_t n_servers, char *err, size_t errlen);

/*
 * Like cgf_resolver_new with no servers, but reads the nameservers of the
 * resolv.conf at path (port 53 each).  -ENOENT when it names none.
 */
int cgf_resolver_new_conf(struct cgf_resolver **out, const char *resolv_conf, char *err,
			  size_t errlen);

/* The servers the resolver asks (those given, or those of resolv.conf). */
size_t cgf_resolver_servers(const struct cgf_resolver *res, const struct cgf_server **servers);

void cgf_resolver_free(struct cgf_resolver *res);

struct cgf_answer {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint32_t ttl; /* seconds, as the answer gave it */
};

/*
 * Resolves name (A and AAAA, in parallel) and waits at most timeout_ms.
 * On success *answers holds every address of both answers (free() it),
 * possibly none when the name exists without addresses.  A name that does not
 * exist, a server failure or a timeout is an error: -ENOENT (NXDOMAIN),
 * -ETIMEDOUT, -EIO (SERVFAIL, refused, malformed), with a reason in err.
 */
int cgf_resolve(struct cgf_resolver *res, const char *name, int timeout_ms,
		struct cgf_answer **answers, size_t *n_answers, char *err, size_t errlen);

/*
 * Room for a message of cgf_resolve_batch: "cannot resolve '" + a name of 254
 * bytes + the longest reason fits; a longer (invalid) name is cut short.
 */
#define CGF_QUERY_ERR_MAX 384

/* One name of a batch. */
struct cgf_query {
	const char *name;           /* in */
	int status;                 /* out: 0 or a negative errno, as cgf_resolve returns */
	char err[CGF_QUERY_ERR_MAX]; /* out: message naming the domain when status != 0 */
	struct cgf_answer *answers; /* out: malloc'ed, free() it; NULL when none */
	size_t n_answers;
};

/*
 * Resolves every query (A and AAAA each) on the resolver's channel, at most
 * max_inflight names at once (sent in the order given), each name bounded by
 * timeout_ms from when it was sent; the call returns when all are done.  Each
 * name gets exactly what cgf_resolve would give it: status 0 (answers, possibly
 * none), -ENOENT (NXDOMAIN), -ETIMEDOUT, -EIO (SERVFAIL, refused, malformed),
 * -EINVAL (not a domain name) or -ENOMEM, with the message in err.
 *
 * Returns 0, or a negative errno for a failure of the batch itself (bad
 * arguments: -EINVAL; -ENOMEM; poll() failing): then the names not done by
 * then carry that error as their status, with a message, and no answers.  The
 * outputs of every query are always set, also on failure.
 */
int cgf_resolve_batch(struct cgf_resolver *res, struct cgf_query *queries, size_t n,
		      int timeout_ms, size_t max_inflight);

#endif /* CGF_RESOLVE_H */

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

#endif /* CGF_RESOLVE_H */

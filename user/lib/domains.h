/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The addresses learned for a policy's domain rules, each with its own expiry,
 * and the grants a policy amounts to once its names are resolved.
 *
 * Expiry of an address = time of the answer + its TTL clamped to
 * [min_ttl, max_ttl] + grace.  A name is asked again when three quarters of
 * its shortest clamped TTL have passed, so a refresh normally lands long before
 * anything expires; grace only covers a refresh that is late (a slow or failing
 * upstream).  A failed refresh removes nothing: addresses live to their expiry
 * and then deny, and the name is retried with backoff.  Addresses seen in
 * earlier answers stay until they expire (round-robin and CDN answers rotate),
 * at most max_addrs per name, the ones expiring first dropped first.
 */
#ifndef CGF_DOMAINS_H
#define CGF_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "policy.h"
#include "resolve.h"

struct cgf_ttl_limits {
	uint32_t min_ttl;   /* seconds */
	uint32_t max_ttl;   /* seconds */
	uint32_t grace;     /* seconds */
	uint32_t max_addrs; /* per name */
};

#define CGF_TTL_LIMITS_DEFAULT { .min_ttl = 10, .max_ttl = 86400, .grace = 5, .max_addrs = 64 }

struct cgf_domains;

/* Collects the distinct names of the policy's domain rules. */
int cgf_domains_new(const struct cgf_policy *policy, const struct cgf_ttl_limits *limits,
		    struct cgf_domains **out);
void cgf_domains_free(struct cgf_domains *d);

size_t cgf_domains_count(const struct cgf_domains *d);

/* Called for each failed resolution, with a message naming the domain. */
typedef void (*cgf_domains_log_fn)(const char *msg, void *ctx);

/*
 * Resolves every name that is due at now (all of them when force), at most
 * timeout_ms each.  Returns the number of names whose set of addresses or
 * expiries changed (0 when nothing did), never an error: failures are reported
 * through log and retried later.
 */
int cgf_domains_refresh(struct cgf_domains *d, struct cgf_resolver *res, uint64_t now, bool force,
			int timeout_ms, cgf_domains_log_fn log, void *ctx);

/*
 * For callers that resolve elsewhere (the daemon's resolver thread): lists up
 * to max names due at now (all when force) and marks them in flight, so that
 * they are not listed again until their result is applied.  The strings stay
 * valid until the object is freed.
 */
size_t cgf_domains_due(struct cgf_domains *d, uint64_t now, bool force, const char **names,
		       size_t max);

/*
 * Applies the result of resolving name (status 0 with answers, or a negative
 * errno with err) as cgf_domains_refresh would.  Returns 1 when the name's
 * addresses or expiries changed, 0 when not, -ENOENT for a name d does not have.
 */
int cgf_domains_apply(struct cgf_domains *d, const char *name, int status, const char *err,
		      const struct cgf_answer *answers, size_t n_answers, uint64_t now,
		      cgf_domains_log_fn log, void *ctx);

/*
 * Carries over what old learned for the names both have (addresses, expiries,
 * schedule), so that a reloaded policy allows at once what it allowed before.
 */
void cgf_domains_inherit(struct cgf_domains *d, const struct cgf_domains *old);

/* CLOCK_BOOTTIME ns at which the next name is due; UINT64_MAX when none. */
uint64_t cgf_domains_next_due(const struct cgf_domains *d);

/*
 * The grants of a policy: each prefix rule as is (never expires), each domain
 * rule once per address its name has that has not expired at now, with the
 * rule's ports and protocols.  Wildcard rules grant nothing here.
 * *grants is malloc'ed.
 */
int cgf_policy_grants(const struct cgf_policy *policy, const struct cgf_domains *d, uint64_t now,
		      struct cgf_grant **grants, size_t *n);

#endif /* CGF_DOMAINS_H */

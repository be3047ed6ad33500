// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Resolution state of domain rules; see domains.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "domains.h"
#include "fence.h"

#define NS_PER_SEC 1000000000ull
#define RETRY_MIN_NS (1 * NS_PER_SEC)
#define RETRY_MAX_NS (60 * NS_PER_SEC)
/*
 * Names resolved at once by a refresh, each an A and an AAAA query.  More
 * overflows the receive buffer of a local resolver with default settings
 * (dnsmasq: 128 names, 256 queries, lose a few; each loss costs a 1 s retry)
 * and dnsmasq's dns-forward-max (150); 64 resolve 10,000 names from a local
 * dnsmasq in about 0.2 s.  With an upstream that does not answer, a refresh
 * takes timeout_ms per 64 due names.
 */
#define REFRESH_INFLIGHT 64

struct learned {
	int family;
	uint8_t addr[16];
	uint64_t expires_ns;
};

struct name {
	char domain[CGF_DOMAIN_MAX + 1];
	struct learned *addrs;
	size_t n_addrs;
	uint64_t due_ns;   /* when to ask again; 0 = now */
	uint64_t retry_ns; /* backoff after failures; 0 = not failing */
};

struct cgf_domains {
	struct cgf_ttl_limits limits;
	struct name *names;
	size_t n_names;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name *)a)->domain, ((const struct name *)b)->domain);
}

/* Names are kept sorted: a policy of 10,000 names must not cost 10,000^2. */
static struct name *find(const struct cgf_domains *d, const char *domain)
{
	struct name key;

	if (strlen(domain) >= sizeof(key.domain))
		return NULL;
	strcpy(key.domain, domain);
	/* an empty set's names may be NULL, which bsearch may not be given */
	return d->n_names ? bsearch(&key, d->names, d->n_names, sizeof(*d->names), name_cmp) : NULL;
}

int cgf_domains_new(const struct cgf_policy *policy, const struct cgf_ttl_limits *limits,
		    struct cgf_domains **out)
{
	struct cgf_domains *d = calloc(1, sizeof(*d));
	size_t i, n;

	if (!d)
		return -ENOMEM;
	d->limits = *limits;
	if (!d->limits.max_addrs)
		d->limits.max_addrs = 1;
	d->names = calloc(policy->n_rules ? policy->n_rules : 1, sizeof(*d->names));
	if (!d->names) {
		free(d);
		return -ENOMEM;
	}
	for (i = 0; i < policy->n_rules; i++) {
		const struct cgf_rule *r = &policy->rules[i];

		if (r->kind != CGF_TARGET_DOMAIN)
			continue;
		snprintf(d->names[d->n_names++].domain, sizeof(d->names[0].domain), "%s", r->domain);
	}
	/* sorted, then each name once */
	qsort(d->names, d->n_names, sizeof(*d->names), name_cmp);
	for (i = 1, n = d->n_names ? 1 : 0; i < d->n_names; i++)
		if (strcmp(d->names[i].domain, d->names[n - 1].domain))
			d->names[n++] = d->names[i];
	d->n_names = n;
	*out = d;
	return 0;
}

void cgf_domains_free(struct cgf_domains *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_names; i++)
		free(d->names[i].addrs);
	free(d->names);
	free(d);
}

size_t cgf_domains_count(const struct cgf_domains *d)
{
	return d->n_names;
}

static uint32_t clamp_ttl(const struct cgf_ttl_limits *l, uint32_t ttl)
{
	if (ttl < l->min_ttl)
		return l->min_ttl;
	if (ttl > l->max_ttl)
		return l->max_ttl;
	return ttl;
}

static int by_expiry_desc(const void *a, const void *b)
{
	const struct learned *x = a, *y = b;

	return x->expires_ns < y->expires_ns ? 1 : x->expires_ns > y->expires_ns ? -1 : 0;
}

/* Merges an answer into what the name has; returns whether anything changed. */
static int merge(struct name *nm, const struct cgf_ttl_limits *l, const struct cgf_answer *ans,
		 size_t n_ans, uint64_t now)
{
	size_t cap = nm->n_addrs + n_ans, i, j, kept;
	struct learned *all = calloc(cap ? cap : 1, sizeof(*all));
	uint64_t shortest = UINT64_MAX;
	bool changed = false;

	if (!all)
		return -ENOMEM;
	/* What has expired goes; what is still valid stays. */
	for (i = 0, kept = 0; i < nm->n_addrs; i++) {
		if (nm->addrs[i].expires_ns > now)
			all[kept++] = nm->addrs[i];
		else
			changed = true;
	}
	for (i = 0; i < n_ans; i++) {
		uint64_t ttl_ns = (uint64_t)clamp_ttl(l, ans[i].ttl) * NS_PER_SEC;
		uint64_t expires = now + ttl_ns + (uint64_t)l->grace * NS_PER_SEC;

		if (ttl_ns < shortest)
			shortest = ttl_ns;
		for (j = 0; j < kept; j++)
			if (all[j].family == ans[i].family &&
			    !memcmp(all[j].addr, ans[i].addr, sizeof(all[j].addr)))
				break;
		if (j == kept) {
			all[kept].family = ans[i].family;
			memcpy(all[kept].addr, ans[i].addr, sizeof(all[kept].addr));
			all[kept++].expires_ns = expires;
			changed = true;
		} else if (all[j].expires_ns != expires) {
			if (expires > all[j].expires_ns)
				all[j].expires_ns = expires;
			changed = true;
		}
	}
	if (kept > l->max_addrs) {
		qsort(all, kept, sizeof(*all), by_expiry_desc);
		kept = l->max_addrs;
		changed = true;
	}
	free(nm->addrs);
	nm->addrs = all;
	nm->n_addrs = kept;
	if (shortest == UINT64_MAX) /* no addresses: ask again after min_ttl */
		shortest = (uint64_t)l->min_ttl * NS_PER_SEC;
	nm->due_ns = now + shortest / 4 * 3;
	nm->retry_ns = 0;
	return changed;
}

/* A failed resolution: backoff, and the message to log; addresses stay. */
static void refresh_failed(struct name *nm, uint64_t now, const char *err,
			   cgf_domains_log_fn log, void *ctx)
{
	nm->retry_ns = nm->retry_ns ? nm->retry_ns * 2 : RETRY_MIN_NS;
	if (nm->retry_ns > RETRY_MAX_NS)
		nm->retry_ns = RETRY_MAX_NS;
	nm->due_ns = now + nm->retry_ns;
	if (log) {
		char msg[CGF_QUERY_ERR_MAX + 96];

		snprintf(msg, sizeof(msg), "%s (addresses kept until they expire; "
			 "retry in %llu s)", err, (unsigned long long)(nm->retry_ns / NS_PER_SEC));
		log(msg, ctx);
	}
}

int cgf_domains_refresh(struct cgf_domains *d, struct cgf_resolver *res, uint64_t now, bool force,
			int timeout_ms, cgf_domains_log_fn log, void *ctx)
{
	struct cgf_query *qs;
	size_t *due, n_due = 0, i;
	int changed = 0, ret;

	for (i = 0; i < d->n_names; i++)
		if (force || d->names[i].due_ns <= now)
			n_due++;
	if (!n_due)
		return 0;
	qs = calloc(n_due, sizeof(*qs));
	due = calloc(n_due, sizeof(*due));
	if (!qs || !due) {
		char err[CGF_QUERY_ERR_MAX];

		for (i = 0; i < d->n_names; i++) {
			if (!force && d->names[i].due_ns > now)
				continue;
			snprintf(err, sizeof(err), "cannot resolve '%s': %s", d->names[i].domain,
				 strerror(ENOMEM));
			refresh_failed(&d->names[i], now, err, log, ctx);
		}
		goto out;
	}
	for (i = 0, n_due = 0; i < d->n_names; i++) {
		if (!force && d->names[i].due_ns > now)
			continue;
		due[n_due] = i;
		qs[n_due++].name = d->names[i].domain;
	}

	/* A failure of the batch itself leaves its error on each name not done. */
	cgf_resolve_batch(res, qs, n_due, timeout_ms, REFRESH_INFLIGHT);

	for (i = 0; i < n_due; i++) {
		struct name *nm = &d->names[due[i]];

		if (qs[i].status) {
			refresh_failed(nm, now, qs[i].err, log, ctx);
			continue;
		}
		ret = merge(nm, &d->limits, qs[i].answers, qs[i].n_answers, now);
		if (ret > 0)
			changed++;
	}
	for (i = 0; i < n_due; i++)
		free(qs[i].answers);
out:
	free(qs);
	free(due);
	return changed;
}

uint64_t cgf_domains_next_due(const struct cgf_domains *d)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < d->n_names; i++)
		if (d->names[i].due_ns < next)
			next = d->names[i].due_ns;
	return next;
}

int cgf_policy_grants(const struct cgf_policy *policy, const struct cgf_domains *d, uint64_t now,
		      struct cgf_grant **grants, size_t *n)
{
	size_t cap = 0, count = 0, i, j;
	struct cgf_grant *out;

	for (i = 0; i < policy->n_rules; i++) {
		const struct cgf_rule *r = &policy->rules[i];
		const struct name *nm;

		if (r->kind == CGF_TARGET_PREFIX)
			cap++;
		else if (r->kind == CGF_TARGET_DOMAIN && d && (nm = find(d, r->domain)))
			cap += nm->n_addrs;
	}
	out = calloc(cap ? cap : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (i = 0; i < policy->n_rules; i++) {
		const struct cgf_rule *r = &policy->rules[i];
		const struct name *nm;

		if (r->kind == CGF_TARGET_PREFIX) {
			cgf_rule_to_grant(r, &out[count++]);
			continue;
		}
		if (r->kind != CGF_TARGET_DOMAIN || !d || !(nm = find(d, r->domain)))
			continue;
		for (j = 0; j < nm->n_addrs; j++) {
			struct cgf_grant *g = &out[count];

			if (nm->addrs[j].expires_ns <= now)
				continue;
			memset(g, 0, sizeof(*g));
			g->family = nm->addrs[j].family;
			memcpy(g->addr, nm->addrs[j].addr, sizeof(g->addr));
			g->prefixlen = g->family == AF_INET ? 32 : 128;
			g->port_lo = r->port_lo;
			g->port_hi = r->port_hi;
			g->protos = r->protos;
			g->expires_ns = nm->addrs[j].expires_ns;
			count++;
		}
	}
	*grants = out;
	*n = count;
	return 0;
}

/* An in-flight name is not due again until its result is applied. */
#define IN_FLIGHT UINT64_MAX

size_t cgf_domains_due(struct cgf_domains *d, uint64_t now, bool force, const char **names,
		       size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_names && n < max; i++) {
		struct name *nm = &d->names[i];

		if (nm->due_ns == IN_FLIGHT || (!force && nm->due_ns > now))
			continue;
		nm->due_ns = IN_FLIGHT;
		names[n++] = nm->domain;
	}
	return n;
}

int cgf_domains_apply(struct cgf_domains *d, const char *domain, int status, const char *err,
		      const struct cgf_answer *answers, size_t n_answers, uint64_t now,
		      cgf_domains_log_fn log, void *ctx)
{
	struct name *nm = find(d, domain);
	size_t before;
	int ret;

	if (!nm)
		return -ENOENT;
	if (status) {
		before = nm->n_addrs;
		refresh_failed(nm, now, err ? err : "resolution failed", log, ctx);
		/* Expired addresses leave the map even while the name cannot be asked. */
		for (size_t i = 0; i < nm->n_addrs;) {
			if (nm->addrs[i].expires_ns <= now)
				nm->addrs[i] = nm->addrs[--nm->n_addrs];
			else
				i++;
		}
		return nm->n_addrs != before;
	}
	ret = merge(nm, &d->limits, answers, n_answers, now);
	return ret < 0 ? ret : ret > 0;
}

void cgf_domains_inherit(struct cgf_domains *d, const struct cgf_domains *old)
{
	if (!old)
		return;
	for (size_t i = 0; i < d->n_names; i++) {
		struct name *nm = &d->names[i];
		const struct name *was = find(old, nm->domain);
		struct learned *copy;

		if (!was)
			continue;
		copy = calloc(was->n_addrs ? was->n_addrs : 1, sizeof(*copy));
		if (!copy)
			continue; /* resolved afresh instead */
		if (was->n_addrs) /* addrs may be NULL then, which memcpy may not be given */
			memcpy(copy, was->addrs, was->n_addrs * sizeof(*copy));
		free(nm->addrs);
		nm->addrs = copy;
		nm->n_addrs = was->n_addrs;
		/* an answer in flight for the old object lands here: ask again */
		nm->due_ns = was->due_ns == IN_FLIGHT ? 0 : was->due_ns;
		nm->retry_ns = was->retry_ns;
	}
}

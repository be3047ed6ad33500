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

static struct name *find(const struct cgf_domains *d, const char *domain)
{
	for (size_t i = 0; i < d->n_names; i++)
		if (!strcmp(d->names[i].domain, domain))
			return &d->names[i];
	return NULL;
}

int cgf_domains_new(const struct cgf_policy *policy, const struct cgf_ttl_limits *limits,
		    struct cgf_domains **out)
{
	struct cgf_domains *d = calloc(1, sizeof(*d));
	size_t i;

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

		if (r->kind != CGF_TARGET_DOMAIN || find(d, r->domain))
			continue;
		snprintf(d->names[d->n_names++].domain, sizeof(d->names[0].domain), "%s", r->domain);
	}
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

int cgf_domains_refresh(struct cgf_domains *d, struct cgf_resolver *res, uint64_t now, bool force,
			int timeout_ms, cgf_domains_log_fn log, void *ctx)
{
	int changed = 0;

	for (size_t i = 0; i < d->n_names; i++) {
		struct name *nm = &d->names[i];
		struct cgf_answer *ans = NULL;
		size_t n_ans = 0;
		char err[256];
		int ret;

		if (!force && nm->due_ns > now)
			continue;
		ret = cgf_resolve(res, nm->domain, timeout_ms, &ans, &n_ans, err, sizeof(err));
		if (ret) {
			nm->retry_ns = nm->retry_ns ? nm->retry_ns * 2 : RETRY_MIN_NS;
			if (nm->retry_ns > RETRY_MAX_NS)
				nm->retry_ns = RETRY_MAX_NS;
			nm->due_ns = now + nm->retry_ns;
			if (log) {
				char msg[400];

				snprintf(msg, sizeof(msg), "%s (addresses kept until they expire; "
					 "retry in %llu s)", err,
					 (unsigned long long)(nm->retry_ns / NS_PER_SEC));
				log(msg, ctx);
			}
			continue;
		}
		ret = merge(nm, &d->limits, ans, n_ans, now);
		free(ans);
		if (ret > 0)
			changed++;
	}
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

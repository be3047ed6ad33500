// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgfenced: keeps the DNS-based allowlists of many fenced cgroups current,
 * attaches named policies on request, reports what is denied, and adopts its
 * pinned fences after a restart.
 *
 * One thread runs the event loop (control socket, signals, deny events,
 * cgroup checks, the DNS proxy of proxy-mode fences); a second one only
 * resolves names, so a slow upstream never stalls a request.  All fence state
 * lives in the pins: the daemon can be killed at any moment and enforcement
 * goes on (a proxy-mode fence's DNS is then denied until a daemon listens
 * for it again).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "conf.h"
#include "control.h"
#include "dnsproxy.h"
#include "domains.h"
#include "fence.h"
#include "log.h"
#include "policy.h"
#include "proxysock.h"
#include "report.h"
#include "resolve.h"

#define MAX_CLIENTS 64
#define MAX_REQUEST 65536           /* bytes in one request line */
#define MAX_OUTPUT (4u << 20)       /* bytes queued for one client */
#define OUTPUT_HIGH (64u << 10)     /* a client's next request waits until it reads */
#define REQUESTS_PER_TURN 8         /* requests of one client per event-loop turn */
#define CLIENT_IDLE_SEC 30          /* a silent client is dropped */
#define CHECK_INTERVAL_MS 1000      /* cgroup existence checks */
#define EVENT_BACKLOG 1024          /* recent deny events kept for `cgfence log` */
#define RESOLVE_TIMEOUT_MS 2000
#define RESOLVE_INFLIGHT 64  /* see REFRESH_INFLIGHT in domains.c */
#define STATUS_ENTRIES_MAX 1000     /* allowlist entries per fence in a status reply */
#define NS_PER_SEC 1000000000ull
#define PROXY_PRUNE_MS 5000         /* expired proxy-learned addresses leave the maps */
#define LEARNED_MAX 65536           /* addresses one fence keeps from proxy answers */

struct options {
	const char *config;
	const char *policy_dir;
	const char *socket;
	const char *pin_root;
	struct cgf_server servers[8];
	size_t n_servers;
	struct cgf_ttl_limits limits;
	bool foreground;
	bool json_log;
	bool debug;
};

struct dpolicy {
	char name[CGF_POLICY_NAME_MAX];
	struct cgf_policy rules;
	struct cgf_domains *domains; /* resolved on TTLs only in resolve mode */
	struct cgf_dnsproxy_names *names; /* what the proxy answers, in proxy mode */
	bool dirty; /* its fences need a sync */
};

/* An address a fence's proxy answered for a name, with the answer's expiry. */
struct learned_addr {
	int family;
	uint8_t addr[16];
	uint64_t expires_ns;
};

struct learned_name {
	char *name;
	struct learned_addr *addrs;
	size_t n;
};

/*
 * The DNS proxy of one fence: its engine clients (one for the IPv4 sockets,
 * one for the IPv6 ones; both open only this fence) and what their answers
 * opened, which every sync of the fence keeps until it expires.
 */
struct dproxy {
	struct cgf_dnsproxy_client *c4, *c6;
	struct cgf_endpoint ep4, ep6;
	struct learned_name *names; /* sorted by name */
	size_t n_names, cap_names, n_addrs;
};

struct dfence {
	uint64_t id;
	char path[PATH_MAX];
	struct cgf_fence *f;
	bool made_cgroup; /* a dedicated cgroup the daemon created: removed when empty */
	/*
	 * An adopted fence's expiring entries as the previous daemon left them:
	 * kept in every sync until they expire, since this daemon has not seen
	 * the answers they came from (a restart must not deny them early).
	 */
	struct cgf_grant *carried;
	size_t n_carried;
	/* DNS proxy mode */
	bool proxy;
	struct dproxy *px;       /* NULL while it has no proxy (adopted, no process yet) */
	bool sync_due;           /* proxy-learned addresses changed beyond a direct write */
	/* a `cgfence run --dns-proxy` fence: its own rules; its pins are cgfence run's */
	struct cgf_policy *own;
	struct cgf_dnsproxy_names *own_names;
	bool run_owned;
};

struct client {
	int fd;
	struct ucred cred;
	char cgroup[PATH_MAX];
	char in[MAX_REQUEST + 1];
	size_t in_len;
	char *out;
	size_t out_len, out_cap;
	bool follow;        /* streams deny events */
	bool close_after;   /* close once the output is written */
	uint64_t events_dropped;
	time_t last_active;
};

/* One batch of names for the resolver thread. */
struct resolve_job {
	struct cgf_query *queries;
	char **names;                        /* owned copies: a reload may free the originals */
	char (*policy)[CGF_POLICY_NAME_MAX]; /* policy of each query */
	size_t n;
};

static struct {
	struct options opt;
	char cg2[PATH_MAX];
	struct dpolicy *policies;
	size_t n_policies;
	struct dfence *fences;
	size_t n_fences;
	struct client *clients[MAX_CLIENTS];
	struct ring_buffer *rb;
	bool rb_stale;
	json_t *backlog[EVENT_BACKLOG];
	size_t backlog_next;
	int listen_fd;
	bool stop;
	/* resolver thread */
	struct cgf_resolver *res;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct resolve_job *job;   /* handed to the thread */
	struct resolve_job *done;  /* handed back */
	bool job_running;
	bool thread_exit;
	int done_fd;
	/* the DNS proxy engine of every proxy-mode fence */
	struct cgf_dnsproxy *px;
	char px_error[256];                  /* why there is none */
	struct cgf_dnsproxy_names *no_names; /* answers nothing: a fence whose policy is gone */
	uint64_t px_pruned_at;
} d = {
	.listen_fd = -1,
	.done_fd = -1,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

/* ---- policies ------------------------------------------------------------ */

static struct dpolicy *find_policy(const char *name)
{
	for (size_t i = 0; i < d.n_policies; i++)
		if (!strcmp(d.policies[i].name, name))
			return &d.policies[i];
	return NULL;
}

static void policy_free(struct dpolicy *p)
{
	cgf_policy_free(&p->rules);
	cgf_domains_free(p->domains);
	cgf_dnsproxy_names_free(p->names);
	memset(p, 0, sizeof(*p));
}

/* Proxy-mode policies are not resolved on a timer: their proxy learns the addresses. */
static bool policy_resolves(const struct dpolicy *p)
{
	return p->rules.dns_mode == CGF_DNS_RESOLVE;
}

static size_t fences_using(const char *policy)
{
	size_t n = 0;

	for (size_t i = 0; i < d.n_fences; i++)
		n += !d.fences[i].own && !strcmp(cgf_fence_policy(d.fences[i].f), policy);
	return n;
}

static void proxy_rebind_names(void);

static bool policy_has_wildcard(const struct cgf_policy *p, const char **which)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		if (p->rules[i].kind == CGF_TARGET_WILDCARD) {
			*which = p->rules[i].domain;
			return true;
		}
	}
	return false;
}

/*
 * Reads every NAME.policy of the policy directory.  A file with an error is
 * rejected whole and its previous version, if any, stays in force; the errors
 * are logged and returned (one line each) in *errors.  Learned addresses are
 * carried over for names both versions have, so nothing allowed before and
 * after is denied in between.
 */
static int load_policies(json_t *errors)
{
	struct dpolicy *next = NULL;
	size_t n_next = 0, cap = 0, i;
	struct dirent *de;
	DIR *dir = opendir(d.opt.policy_dir);
	int failures = 0;

	if (!dir) {
		char msg[PATH_MAX + 64];

		snprintf(msg, sizeof(msg), "cannot read policy directory '%s': %s", d.opt.policy_dir,
			 strerror(errno));
		log_err("%s", msg);
		json_array_append_new(errors, json_string(msg));
		return -1;
	}
	while ((de = readdir(dir))) {
		size_t len = strlen(de->d_name);
		char path[PATH_MAX + 256], name[CGF_POLICY_NAME_MAX];
		struct cgf_error err = { 0 };
		struct dpolicy *p, *old;
		const char *wild = "?";

		if (len <= 7 || strcmp(de->d_name + len - 7, ".policy") || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", d.opt.policy_dir, de->d_name);
		if (len - 7 >= sizeof(name) || !cgf_policy_name_valid_n(de->d_name, len - 7)) {
			char msg[PATH_MAX + 400];

			snprintf(msg, sizeof(msg), "%s: policy name must be 1-63 letters, digits, '.', "
				 "'_' or '-'", path);
			log_err("%s", msg);
			json_array_append_new(errors, json_string(msg));
			failures++;
			continue;
		}
		memcpy(name, de->d_name, len - 7);
		name[len - 7] = '\0';
		if (n_next == cap) {
			struct dpolicy *grown = realloc(next, (cap ? cap * 2 : 8) * sizeof(*next));

			if (!grown)
				break;
			next = grown;
			cap = cap ? cap * 2 : 8;
		}
		p = &next[n_next];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", name);
		old = find_policy(name);
		if (cgf_policy_load_file(&p->rules, path, &err) == 0 &&
		    (p->rules.dns_mode == CGF_DNS_PROXY || !policy_has_wildcard(&p->rules, &wild)) &&
		    !(old && old->rules.dns_mode != p->rules.dns_mode && fences_using(name)) &&
		    (p->rules.dns_mode != CGF_DNS_PROXY ||
		     cgf_dnsproxy_names_new(&p->rules, &p->names) == 0) &&
		    cgf_domains_new(&p->rules, &d.opt.limits, &p->domains) == 0) {
			if (old)
				cgf_domains_inherit(p->domains, old->domains);
			p->dirty = true;
			n_next++;
			continue;
		}
		{
			char msg[2 * PATH_MAX + 1200], reason[PATH_MAX + 600];

			if (err.reason[0])
				cgf_error_format(&err, reason, sizeof(reason));
			else if (p->rules.dns_mode == CGF_DNS_RESOLVE && policy_has_wildcard(&p->rules,
											       &wild))
				snprintf(reason, sizeof(reason), "%s: rule '*.%s': wildcard rules need "
					 "the DNS proxy: add the line 'dns proxy'", path, wild);
			else if (old && old->rules.dns_mode != p->rules.dns_mode)
				snprintf(reason, sizeof(reason), "%s: its DNS mode changed to '%s' while "
					 "%zu fences use it in '%s' mode; detach them first", path,
					 p->rules.dns_mode == CGF_DNS_PROXY ? "proxy" : "resolve",
					 fences_using(name),
					 old->rules.dns_mode == CGF_DNS_PROXY ? "proxy" : "resolve");
			else
				snprintf(reason, sizeof(reason), "%s: out of memory", path);
			snprintf(msg, sizeof(msg), "policy '%s' rejected%s: %s", name,
				 old ? ", previous version stays in force" : "", reason);
			log_err("%s", msg);
			json_array_append_new(errors, json_string(msg));
			failures++;
		}
		policy_free(p);
		if (old) { /* keep the previous version */
			next[n_next] = *old;
			memset(old, 0, sizeof(*old));
			n_next++;
		}
	}
	closedir(dir);
	for (i = 0; i < d.n_policies; i++)
		policy_free(&d.policies[i]);
	free(d.policies);
	d.policies = next;
	d.n_policies = n_next;
	/* the proxies answered from the names just freed: give them the new ones now */
	proxy_rebind_names();
	log_info("%zu policies loaded from '%s'%s", n_next, d.opt.policy_dir,
		 failures ? " (with errors)" : "");
	return failures ? -1 : 0;
}

static void log_resolve_failure(const char *msg, void *ctx)
{
	log_warn("policy '%s': %s", (const char *)ctx, msg);
}

/*
 * Entries a fence carried over from before a restart (addresses learned from
 * DNS by the previous daemon) stay in its allowlist until they expire, so the
 * restart opens no gap while names are resolved again.  Drops those that have
 * expired; returns how many are left.
 */
static size_t carried_prune(struct dfence *df)
{
	uint64_t now = cgf_boottime_ns();
	size_t i, kept = 0;

	for (i = 0; i < df->n_carried; i++)
		if (df->carried[i].expires_ns > now)
			df->carried[kept++] = df->carried[i];
	df->n_carried = kept;
	if (!kept) {
		free(df->carried);
		df->carried = NULL;
	}
	return kept;
}

/* ---- what a fence's DNS proxy learned ------------------------------------- */

/* The rules a fence answers and opens by: its policy's, or its own (cgfence run). */
static const struct cgf_policy *fence_rules(const struct dfence *df)
{
	const struct dpolicy *p;

	if (df->own)
		return df->own;
	p = find_policy(cgf_fence_policy(df->f));
	return p ? &p->rules : NULL;
}

/* Does a domain or wildcard rule name this (lower-case, no trailing dot) name? */
static bool rule_names(const struct cgf_rule *r, const char *name)
{
	size_t ln = strlen(name), ld;

	if (r->kind == CGF_TARGET_DOMAIN)
		return !strcmp(r->domain, name);
	if (r->kind != CGF_TARGET_WILDCARD)
		return false;
	ld = strlen(r->domain);
	return ln > ld + 1 && name[ln - ld - 1] == '.' && !strcmp(name + ln - ld, r->domain);
}

/*
 * Appends to out (room for one grant per rule) a grant for the address per
 * rule naming name, with that rule's ports and protocols; returns how many.
 */
static size_t name_grants(const struct cgf_policy *rules, const char *name,
			  const struct learned_addr *a, struct cgf_grant *out)
{
	size_t n = 0;

	for (size_t i = 0; rules && i < rules->n_rules; i++) {
		const struct cgf_rule *r = &rules->rules[i];
		struct cgf_grant *g = &out[n];

		if (!rule_names(r, name))
			continue;
		memset(g, 0, sizeof(*g));
		g->family = a->family;
		memcpy(g->addr, a->addr, sizeof(g->addr));
		g->prefixlen = a->family == AF_INET ? 32 : 128;
		g->port_lo = r->port_lo;
		g->port_hi = r->port_hi;
		g->protos = r->protos;
		g->expires_ns = a->expires_ns;
		n++;
	}
	return n;
}

static int learned_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct learned_name *)elem)->name);
}

static void learned_free(struct dproxy *px)
{
	for (size_t i = 0; i < px->n_names; i++) {
		free(px->names[i].name);
		free(px->names[i].addrs);
	}
	free(px->names);
	px->names = NULL;
	px->n_names = px->cap_names = px->n_addrs = 0;
}

/* Drops learned addresses expired at now; returns how many went. */
static size_t learned_prune(struct dproxy *px, uint64_t now)
{
	size_t gone = 0, kept_names = 0;

	for (size_t i = 0; i < px->n_names; i++) {
		struct learned_name *ln = &px->names[i];
		size_t kept = 0;

		for (size_t j = 0; j < ln->n; j++)
			if (ln->addrs[j].expires_ns > now)
				ln->addrs[kept++] = ln->addrs[j];
		gone += ln->n - kept;
		ln->n = kept;
		if (!kept) {
			free(ln->name);
			free(ln->addrs);
			continue;
		}
		px->names[kept_names++] = *ln;
	}
	px->n_names = kept_names;
	px->n_addrs -= gone;
	return gone;
}

/* Removes the address expiring first of all names (the fence is full). */
static void learned_evict_one(struct dproxy *px)
{
	size_t bi = SIZE_MAX, bj = 0;

	for (size_t i = 0; i < px->n_names; i++)
		for (size_t j = 0; j < px->names[i].n; j++)
			if (bi == SIZE_MAX ||
			    px->names[i].addrs[j].expires_ns < px->names[bi].addrs[bj].expires_ns) {
				bi = i;
				bj = j;
			}
	if (bi == SIZE_MAX)
		return;
	px->names[bi].addrs[bj] = px->names[bi].addrs[--px->names[bi].n];
	px->n_addrs--;
}

/*
 * Records that name answered addr until expires.  At most max_addrs per name:
 * beyond that the one expiring first goes; *evicted says whether anything
 * went (the maps then need a sync).  Returns 0 or -ENOMEM.
 */
static int learned_add(struct dproxy *px, const char *name, int family, const uint8_t *addr,
		       uint64_t expires, bool *evicted)
{
	/* no names yet: names is NULL, which bsearch may not be given even for 0 */
	struct learned_name *ln = px->n_names ? bsearch(name, px->names, px->n_names,
							sizeof(*px->names), learned_cmp) : NULL;
	struct learned_addr *a;
	size_t j;

	*evicted = false;
	if (!ln) {
		size_t lo = 0, hi = px->n_names, at;

		if (px->n_names == px->cap_names) {
			size_t cap = px->cap_names ? 2 * px->cap_names : 16;
			struct learned_name *grown = realloc(px->names, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			px->names = grown;
			px->cap_names = cap;
		}
		while (lo < hi) { /* where name goes in the sorted array */
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(px->names[mid].name, name) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		at = lo;
		memmove(&px->names[at + 1], &px->names[at], (px->n_names - at) * sizeof(*px->names));
		ln = &px->names[at];
		memset(ln, 0, sizeof(*ln));
		ln->name = strdup(name);
		px->n_names++;
		if (!ln->name) {
			memmove(ln, ln + 1, (px->n_names - at - 1) * sizeof(*ln));
			px->n_names--;
			return -ENOMEM;
		}
	}
	for (j = 0; j < ln->n; j++) {
		a = &ln->addrs[j];
		if (a->family == family && !memcmp(a->addr, addr, family == AF_INET ? 4 : 16)) {
			if (expires > a->expires_ns)
				a->expires_ns = expires;
			return 0;
		}
	}
	if (ln->n >= d.opt.limits.max_addrs) {
		size_t oldest = 0;

		for (j = 1; j < ln->n; j++)
			if (ln->addrs[j].expires_ns < ln->addrs[oldest].expires_ns)
				oldest = j;
		ln->addrs[oldest] = ln->addrs[--ln->n];
		px->n_addrs--;
		*evicted = true;
	} else if (px->n_addrs >= LEARNED_MAX) {
		learned_evict_one(px);
		*evicted = true;
	}
	a = realloc(ln->addrs, (ln->n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	ln->addrs = a;
	a = &ln->addrs[ln->n++];
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(a->addr, addr, family == AF_INET ? 4 : 16);
	a->expires_ns = expires;
	px->n_addrs++;
	return 0;
}

/*
 * The grants of what a fence's proxy learned, under the fence's current
 * rules (a name a reload removed opens nothing any more).  *out is malloc'ed.
 */
static int learned_grants(const struct dfence *df, uint64_t now, struct cgf_grant **out,
			  size_t *n_out)
{
	const struct cgf_policy *rules = fence_rules(df);
	const struct dproxy *px = df->px;
	size_t n_rules = rules ? rules->n_rules : 0, n = 0;
	struct cgf_grant *g;

	*out = NULL;
	*n_out = 0;
	if (!px || !px->n_addrs || !n_rules)
		return 0;
	g = calloc(px->n_addrs * n_rules, sizeof(*g));
	if (!g)
		return -ENOMEM;
	for (size_t i = 0; i < px->n_names; i++)
		for (size_t j = 0; j < px->names[i].n; j++)
			if (px->names[i].addrs[j].expires_ns > now)
				n += name_grants(rules, px->names[i].name, &px->names[i].addrs[j],
						 g + n);
	*out = g;
	*n_out = n;
	return 0;
}

/*
 * The allowlist of a fence: its policy's grants at now, what it carried over
 * from before a restart, what its DNS proxy learned, and (resolve mode only:
 * in proxy mode DNS goes to the proxy, never to them) its own resolvers (a
 * container's DNS servers) on their port.
 */
static int fence_allowlist(const struct cgf_grant *grants, size_t n, const struct dfence *df,
			   const struct cgf_endpoint *dns, size_t n_dns, struct cgf_allowlist *list,
			   char *msg, size_t len)
{
	size_t n_carried = df ? df->n_carried : 0, n_learned = 0;
	struct cgf_grant *all, *learned = NULL;
	struct cgf_error err = { 0 };
	int ret;

	if (df && df->proxy)
		n_dns = 0;
	if (df && learned_grants(df, cgf_boottime_ns(), &learned, &n_learned)) {
		snprintf(msg, len, "out of memory");
		return -ENOMEM;
	}
	all = calloc(n + n_carried + n_learned + n_dns + 1, sizeof(*all));
	if (!all) {
		free(learned);
		snprintf(msg, len, "out of memory");
		return -ENOMEM;
	}
	if (n)
		memcpy(all, grants, n * sizeof(*all));
	if (n_carried)
		memcpy(all + n, df->carried, n_carried * sizeof(*all));
	if (n_learned)
		memcpy(all + n + n_carried, learned, n_learned * sizeof(*all));
	cgf_endpoints_to_grants(dns, n_dns, all + n + n_carried + n_learned);
	ret = cgf_allowlist_build(all, n + n_carried + n_learned + n_dns, list, &err);
	if (ret)
		cgf_error_format(&err, msg, len);
	free(learned);
	free(all);
	return ret;
}

/* Writes one fence's allowlist, given its policy's grants. */
static void sync_fence(struct dfence *df, const struct cgf_grant *grants, size_t n)
{
	struct cgf_allowlist list = { 0 };
	const struct cgf_endpoint *dns;
	size_t n_dns = cgf_fence_dns(df->f, &dns);
	char e[CGF_ERR_LEN], msg[600];

	df->sync_due = false;
	carried_prune(df);
	/* Built per fence: fences of one policy differ by resolvers, carried and learned entries. */
	if (fence_allowlist(grants, n, df, dns, n_dns, &list, msg, sizeof(msg))) {
		log_err("fence %s, policy '%s': %s (the fence keeps its entries)", df->path,
			cgf_fence_policy(df->f), msg);
		return;
	}
	if (cgf_fence_sync(df->f, &list, e))
		log_err("fence %s: %s", df->path, e);
	cgf_allowlist_free(&list);
}

/* The grants of a policy at now: in proxy mode its prefix rules only. */
static int policy_grants(const struct cgf_policy *rules, const struct cgf_domains *domains,
			 struct cgf_grant **grants, size_t *n)
{
	return cgf_policy_grants(rules, rules->dns_mode == CGF_DNS_PROXY ? NULL : domains,
				 cgf_boottime_ns(), grants, n);
}

/* Syncs one fence on its own (its proxy learned or forgot something). */
static void sync_one(struct dfence *df)
{
	const struct dpolicy *p = df->own ? NULL : find_policy(cgf_fence_policy(df->f));
	const struct cgf_policy *rules = fence_rules(df);
	struct cgf_grant *grants = NULL;
	size_t n = 0;

	if (!rules) {
		df->sync_due = false;
		return; /* policy gone: the fence keeps its entries until they expire */
	}
	if (policy_grants(rules, p ? p->domains : NULL, &grants, &n)) {
		log_err("fence %s: out of memory computing grants", df->path);
		return;
	}
	sync_fence(df, grants, n);
	free(grants);
}

/* Writes a policy's current allowlist into every fence that carries it. */
static void sync_policy(struct dpolicy *p)
{
	uint64_t t0 = cgf_boottime_ns();
	struct cgf_grant *grants = NULL;
	size_t n = 0, i, synced = 0;

	p->dirty = false;
	if (policy_grants(&p->rules, p->domains, &grants, &n)) {
		log_err("policy '%s': out of memory computing grants", p->name);
		return;
	}
	for (i = 0; i < d.n_fences; i++) {
		struct dfence *df = &d.fences[i];

		if (df->own || strcmp(cgf_fence_policy(df->f), p->name))
			continue;
		sync_fence(df, grants, n);
		synced++;
	}
	free(grants);
	log_debug("policy '%s': %zu grants synced into %zu fences in %" PRIu64 " ms", p->name, n,
		  synced, (cgf_boottime_ns() - t0) / 1000000);
}

static void sync_dirty(void)
{
	bool synced = false;

	for (size_t i = 0; i < d.n_policies; i++) {
		if (d.policies[i].dirty) {
			sync_policy(&d.policies[i]);
			synced = true;
		}
	}
	/* A sync builds lists of every entry; give that memory back at once. */
	if (synced)
		malloc_trim(0);
}

/* ---- the resolver thread ------------------------------------------------- */

static void *resolver_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&d.lock);
	for (;;) {
		struct resolve_job *job;
		uint64_t one = 1;

		while (!d.job && !d.thread_exit)
			pthread_cond_wait(&d.cond, &d.lock);
		if (d.thread_exit)
			break;
		job = d.job;
		d.job = NULL;
		pthread_mutex_unlock(&d.lock);
		cgf_resolve_batch(d.res, job->queries, job->n, RESOLVE_TIMEOUT_MS, RESOLVE_INFLIGHT);
		pthread_mutex_lock(&d.lock);
		d.done = job;
		if (write(d.done_fd, &one, sizeof(one)) < 0)
			log_err("cannot wake the event loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&d.lock);
	return NULL;
}

static void job_free(struct resolve_job *job)
{
	if (!job)
		return;
	for (size_t i = 0; i < job->n; i++) {
		free(job->queries[i].answers);
		free(job->names[i]);
	}
	free(job->names);
	free(job->queries);
	free(job->policy);
	free(job);
}

/* Hands every due name to the resolver thread, unless a batch is running. */
static void schedule_resolution(bool force)
{
	uint64_t now = cgf_boottime_ns();
	struct resolve_job *job;
	size_t total = 0, i;

	if (!d.res || d.job_running)
		return;
	/* Called at every turn of the loop: allocate only when a name is due. */
	for (i = 0; i < d.n_policies; i++) {
		uint64_t due;

		if (!policy_resolves(&d.policies[i]))
			continue;
		due = cgf_domains_next_due(d.policies[i].domains);
		if (force || due <= now)
			total += cgf_domains_count(d.policies[i].domains);
	}
	if (!total)
		return;
	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->queries = calloc(total, sizeof(*job->queries));
	job->policy = calloc(total, sizeof(*job->policy));
	job->names = calloc(total, sizeof(*job->names));
	if (!job->queries || !job->policy || !job->names) {
		job_free(job);
		return;
	}
	for (i = 0; i < d.n_policies; i++) {
		const char **names = (const char **)calloc(total, sizeof(*names));
		size_t n, j;

		if (!names)
			break;
		if (!policy_resolves(&d.policies[i])) {
			free(names);
			continue;
		}
		n = cgf_domains_due(d.policies[i].domains, now, force, names, total - job->n);
		for (j = 0; j < n; j++) {
			job->names[job->n] = strdup(names[j]);
			if (!job->names[job->n])
				break;
			job->queries[job->n].name = job->names[job->n];
			snprintf(job->policy[job->n], sizeof(job->policy[0]), "%s", d.policies[i].name);
			job->n++;
		}
		free(names);
	}
	if (!job->n) {
		job_free(job);
		return;
	}
	log_debug("resolving %zu names", job->n);
	pthread_mutex_lock(&d.lock);
	d.job = job;
	d.job_running = true;
	pthread_cond_signal(&d.cond);
	pthread_mutex_unlock(&d.lock);
}

/*
 * Takes a finished batch back.  The name strings belong to the domains objects
 * of the policies as they were when the batch started; the policies may have
 * been reloaded since, so results are applied by policy and name.
 */
static void collect_resolution(void)
{
	struct resolve_job *job;
	uint64_t now = cgf_boottime_ns(), val;

	if (read(d.done_fd, &val, sizeof(val)) < 0 && errno != EAGAIN)
		log_err("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&d.lock);
	job = d.done;
	d.done = NULL;
	d.job_running = false;
	pthread_mutex_unlock(&d.lock);
	if (!job)
		return;
	log_debug("resolved %zu names", job->n);
	for (size_t i = 0; i < job->n; i++) {
		struct cgf_query *q = &job->queries[i];
		struct dpolicy *p = find_policy(job->policy[i]);

		if (!p)
			continue;
		if (cgf_domains_apply(p->domains, q->name, q->status, q->err, q->answers,
				      q->n_answers, now, log_resolve_failure, p->name) > 0)
			p->dirty = true;
	}
	job_free(job);
	sync_dirty();
}

/* ---- fences -------------------------------------------------------------- */

static void proxy_stop(struct dfence *df);
static void proxy_ensure(struct dfence *df);
static int proxy_start(struct dfence *df, struct cgf_proxy_socks *socks, char *err);

static struct dfence *find_fence(uint64_t id)
{
	for (size_t i = 0; i < d.n_fences; i++)
		if (d.fences[i].id == id)
			return &d.fences[i];
	return NULL;
}

static int add_fence(uint64_t id, const char *path, struct cgf_fence *f, bool made_cgroup)
{
	struct dfence *grown = realloc(d.fences, (d.n_fences + 1) * sizeof(*d.fences));

	if (!grown)
		return -ENOMEM;
	d.fences = grown;
	memset(&d.fences[d.n_fences], 0, sizeof(d.fences[0]));
	d.fences[d.n_fences].id = id;
	snprintf(d.fences[d.n_fences].path, sizeof(d.fences[0].path), "%s", path);
	d.fences[d.n_fences].f = f;
	d.fences[d.n_fences].made_cgroup = made_cgroup;
	d.n_fences++;
	d.rb_stale = true;
	return 0;
}

/* Removes a fence: pins first, then (for a cgroup of our own) the cgroup. */
/* Frees what the daemon holds for df (its proxy, its open fence); the pins stay. */
static void fence_free(struct dfence *df)
{
	proxy_stop(df);
	cgf_fence_close(df->f);
	free(df->carried);
	if (df->own) {
		cgf_policy_free(df->own);
		free(df->own);
		cgf_dnsproxy_names_free(df->own_names);
	}
}

static void drop_fence(struct dfence *df, const char *why)
{
	char err[CGF_ERR_LEN];
	size_t i = (size_t)(df - d.fences);

	log_info("fence %s (cgroup id %" PRIu64 ", policy %s) removed: %s", df->path, df->id,
		 df->own ? "of cgfence run" : cgf_fence_policy(df->f), why);
	fence_free(df);
	/* a `cgfence run` fence's pins are its own to remove */
	if (!df->run_owned && cgf_fence_remove(d.opt.pin_root, df->id, err) && err[0])
		log_warn("%s", err);
	if (df->made_cgroup && rmdir(df->path) && errno != ENOENT)
		log_warn("cannot remove cgroup '%s': %s", df->path, strerror(errno));
	memmove(&d.fences[i], &d.fences[i + 1], (d.n_fences - i - 1) * sizeof(d.fences[0]));
	d.n_fences--;
	d.rb_stale = true;
}

static bool cgroup_populated(const char *path)
{
	char file[PATH_MAX + 32], line[64];
	bool populated = true;
	FILE *f;

	snprintf(file, sizeof(file), "%s/cgroup.events", path);
	f = fopen(file, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "populated ", 10))
			populated = line[10] == '1';
	fclose(f);
	return populated;
}

/* A fenced cgroup that is gone (container ended) goes from pins too. */
static void check_cgroups(void)
{
	for (size_t i = 0; i < d.n_fences;) {
		struct dfence *df = &d.fences[i];
		uint64_t id;

		if (cgf_cgroup_id(df->path, &id) || id != df->id) {
			drop_fence(df, "its cgroup is gone");
			continue;
		}
		if (df->made_cgroup && !cgroup_populated(df->path)) {
			drop_fence(df, "no process left in it");
			continue;
		}
		i++;
	}
}

/* Takes an adopted fence's expiring entries as grants to carry (see struct dfence). */
static void carry_entries(struct dfence *df)
{
	const struct cgf_allowlist *entries = cgf_fence_entries(df->f);
	uint64_t now = cgf_boottime_ns();
	struct cgf_allowlist list;
	size_t i, n = 0, cap;
	unsigned r;

	if (!entries)
		return;
	list = *entries;
	/* exactly as many grants as there are expiring ranges */
	for (i = 0, cap = 0; i < list.n_v4 + list.n_v6; i++) {
		const struct cgf_allow *v = i < list.n_v4 ? &list.v4[i].value :
							    &list.v6[i - list.n_v4].value;

		for (r = 0; r < v->n_ranges && r < CGF_MAX_RANGES; r++)
			cap += v->ranges[r].expires_ns > now;
	}
	df->carried = cap ? calloc(cap, sizeof(*df->carried)) : NULL;
	for (i = 0; df->carried && i < list.n_v4 + list.n_v6; i++) {
		bool v4 = i < list.n_v4;
		const struct cgf_allow *v = v4 ? &list.v4[i].value : &list.v6[i - list.n_v4].value;

		for (r = 0; r < v->n_ranges && r < CGF_MAX_RANGES; r++) {
			const struct cgf_range *rg = &v->ranges[r];
			struct cgf_grant *g = &df->carried[n];

			if (!rg->expires_ns || rg->expires_ns <= now)
				continue; /* the policy's fixed rules, or gone already */
			g->family = v4 ? AF_INET : AF_INET6;
			if (v4) {
				memcpy(g->addr, list.v4[i].key.addr, 4);
				g->prefixlen = (uint8_t)list.v4[i].key.prefixlen;
			} else {
				memcpy(g->addr, list.v6[i - list.n_v4].key.addr, 16);
				g->prefixlen = (uint8_t)list.v6[i - list.n_v4].key.prefixlen;
			}
			g->port_lo = rg->port_lo;
			g->port_hi = rg->port_hi;
			g->protos = rg->protos;
			g->expires_ns = rg->expires_ns;
			n++;
		}
	}
	df->n_carried = n;
	if (!n) {
		free(df->carried);
		df->carried = NULL;
	}
}

/* Adopts the fences cgfenced made before a restart, from their pins. */
static void adopt_fences(void)
{
	uint64_t *ids = NULL;
	size_t n = 0, i;

	if (cgf_fence_list(d.opt.pin_root, &ids, &n))
		return;
	for (i = 0; i < n; i++) {
		struct cgf_fence *f = NULL;
		char err[CGF_ERR_LEN], path[PATH_MAX];
		struct dpolicy *p;
		bool made;

		if (cgf_fence_open(d.opt.pin_root, ids[i], &f, err)) {
			log_warn("cannot adopt fence %" PRIu64 ": %s", ids[i], err);
			continue;
		}
		if (!cgf_fence_policy(f)[0]) { /* `cgfence run` or `attach --allow`: not ours */
			cgf_fence_close(f);
			continue;
		}
		if (cgf_cgroup_path_of(ids[i], path, sizeof(path))) {
			log_info("fence %" PRIu64 " (policy %s): cgroup gone, removing its pins", ids[i],
				 cgf_fence_policy(f));
			cgf_fence_close(f);
			if (cgf_fence_remove(d.opt.pin_root, ids[i], err))
				log_warn("%s", err);
			continue;
		}
		made = strncmp(path, d.cg2, strlen(d.cg2)) == 0 &&
		       !strncmp(path + strlen(d.cg2), "/cgfence/pid-", 13);
		p = find_policy(cgf_fence_policy(f));
		if (!p)
			log_warn("fence %s: policy '%s' no longer exists; its entries stay until they "
				 "expire", path, cgf_fence_policy(f));
		else
			p->dirty = true;
		if (add_fence(ids[i], path, f, made)) {
			cgf_fence_close(f);
			continue;
		}
		carry_entries(&d.fences[d.n_fences - 1]);
		log_info("adopted fence %s (policy %s%s%s)", path, cgf_fence_policy(f),
			 cgf_fence_label(f)[0] ? ", " : "", cgf_fence_label(f));
		if (cgf_fence_dns_proxy(f, NULL, NULL)) {
			struct dfence *df = &d.fences[d.n_fences - 1];

			/*
			 * The old proxy's sockets died with the old daemon: DNS is
			 * denied (no endpoint) until this one listens again.
			 */
			df->proxy = true;
			if (cgf_fence_set_proxy(f, NULL, NULL, err))
				log_err("fence %s: %s", path, err);
			proxy_ensure(df);
		}
	}
	free(ids);
}

/* ---- DNS proxy ----------------------------------------------------------- */

/* What a fence's proxy answers: its rules' names; nothing once its policy is gone. */
static const struct cgf_dnsproxy_names *fence_names(const struct dfence *df)
{
	const struct dpolicy *p;

	if (df->own)
		return df->own_names;
	p = find_policy(cgf_fence_policy(df->f));
	return p && p->names ? p->names : d.no_names;
}

/*
 * allow(): opens this fence (ctx is its cgroup id) for an address its proxy
 * is about to answer for name, with the ports of the rules naming it, until
 * now + ttl (already clamped) + grace.  Written into the maps at once; kept
 * in the fence's learned set so that every later sync keeps it.
 */
static int proxy_allow(void *ctx, int family, const uint8_t addr[16], uint32_t ttl,
		       const char *name)
{
	struct dfence *df = find_fence((uint64_t)(uintptr_t)ctx);
	const struct cgf_policy *rules;
	struct cgf_grant *grants;
	struct learned_addr a = { .family = family };
	char err[CGF_ERR_LEN];
	bool evicted;
	size_t n;
	int ret;

	if (!df || !df->px)
		return -ENOENT;
	rules = fence_rules(df);
	if (!rules || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	memcpy(a.addr, addr, family == AF_INET ? 4 : 16);
	a.expires_ns = cgf_boottime_ns() + ((uint64_t)ttl + d.opt.limits.grace) * NS_PER_SEC;
	grants = calloc(rules->n_rules + 1, sizeof(*grants));
	if (!grants)
		return -ENOMEM;
	n = name_grants(rules, name, &a, grants);
	if (!n) {
		/* the engine judged by names a reload has since replaced */
		free(grants);
		return -EPERM;
	}
	ret = learned_add(df->px, name, family, a.addr, a.expires_ns, &evicted);
	if (!ret)
		ret = cgf_fence_grant(df->f, grants, n, err);
	else
		snprintf(err, sizeof(err), "out of memory");
	free(grants);
	if (ret) {
		log_err("fence %s: cannot open it for %s: %s", df->path, name, err);
		return ret;
	}
	if (evicted)
		df->sync_due = true;
	return 0;
}

static void proxy_refused(void *ctx, const char *name, uint16_t qtype, const char *reason)
{
	struct dfence *df = find_fence((uint64_t)(uintptr_t)ctx);
	char tbuf[16], safe[CGF_DOMAIN_MAX + 2];
	size_t i;

	/* the name comes from inside the fence: nothing unprintable reaches the log */
	for (i = 0; name && name[i] && i < sizeof(safe) - 1; i++)
		safe[i] = name[i] > 0x20 && name[i] < 0x7f ? name[i] : '?';
	safe[i] = '\0';
	log_info("dns refused: fence %s%s%s: %s %s (%s)", df ? df->path : "?",
		 df && cgf_fence_label(df->f)[0] ? ", " : "", df ? cgf_fence_label(df->f) : "",
		 safe, cgf_dns_type_name(qtype, tbuf, sizeof(tbuf)), reason ? reason : "refused");
}

/* Hands a fence's proxy sockets to the engine; they are the engine's from here on. */
static int proxy_start(struct dfence *df, struct cgf_proxy_socks *socks, char *err)
{
	const struct cgf_policy *rules = fence_rules(df);
	struct cgf_dnsproxy_client_opts o = {
		.names = fence_names(df),
		.extra_qtypes = rules ? rules->dns_types : NULL,
		.n_extra_qtypes = rules ? rules->n_dns_types : 0,
		.allow = proxy_allow,
		.refused = proxy_refused,
		.ctx = (void *)(uintptr_t)df->id,
	};
	struct dproxy *px;
	int ret;

	if (!d.px) {
		cgf_proxy_socks_close(socks);
		snprintf(err, CGF_ERR_LEN, "the DNS proxy is not available: %s", d.px_error);
		return -ENOTSUP;
	}
	px = calloc(1, sizeof(*px));
	if (!px) {
		cgf_proxy_socks_close(socks);
		snprintf(err, CGF_ERR_LEN, "out of memory");
		return -ENOMEM;
	}
	cgf_proxy_socks_endpoints(socks, &px->ep4, &px->ep6);
	o.udp_fd = socks->udp4;
	o.tcp_fd = socks->tcp4;
	socks->udp4 = socks->tcp4 = -1;
	ret = cgf_dnsproxy_client_add(d.px, &o, &px->c4);
	if (!ret && socks->udp6 >= 0) {
		o.udp_fd = socks->udp6;
		o.tcp_fd = socks->tcp6;
		socks->udp6 = socks->tcp6 = -1;
		ret = cgf_dnsproxy_client_add(d.px, &o, &px->c6);
	}
	cgf_proxy_socks_close(socks);
	if (ret) {
		if (px->c4)
			cgf_dnsproxy_client_remove(d.px, px->c4);
		free(px);
		snprintf(err, CGF_ERR_LEN, "cannot start the fence's DNS proxy: %s", strerror(-ret));
		return ret;
	}
	df->px = px;
	return 0;
}

static void proxy_stop(struct dfence *df)
{
	if (!df->px)
		return;
	if (df->px->c4)
		cgf_dnsproxy_client_remove(d.px, df->px->c4);
	if (df->px->c6)
		cgf_dnsproxy_client_remove(d.px, df->px->c6);
	learned_free(df->px);
	free(df->px);
	df->px = NULL;
}

static void proxy_rebind_names(void)
{
	for (size_t i = 0; i < d.n_fences; i++) {
		struct dfence *df = &d.fences[i];

		if (!df->px)
			continue;
		if (df->px->c4)
			cgf_dnsproxy_client_set_names(df->px->c4, fence_names(df));
		if (df->px->c6)
			cgf_dnsproxy_client_set_names(df->px->c6, fence_names(df));
		df->sync_due = true; /* names a reload removed open nothing any more */
	}
}

/* The first process of a cgroup, whose network namespace the proxy listens in; 0 if none. */
static pid_t cgroup_first_pid(const char *path)
{
	char file[PATH_MAX + 16];
	long pid = 0;
	FILE *f;

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	f = fopen(file, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > INT_MAX)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/*
 * A proxy-mode fence without a proxy (adopted after a restart, or its cgroup
 * had no process yet) gets one in the namespace of a process of its cgroup;
 * until then its DNS is denied (the config names no endpoint).
 */
static void proxy_ensure(struct dfence *df)
{
	struct cgf_proxy_socks socks;
	struct cgf_endpoint ep4, ep6;
	char err[CGF_ERR_LEN];
	pid_t pid;

	if (!df->proxy || df->px || !d.px)
		return;
	pid = cgroup_first_pid(df->path);
	if (!pid)
		return;
	if (cgf_proxy_socks_open(pid, &socks, err)) {
		log_warn("fence %s: no DNS proxy yet: %s", df->path, err);
		return;
	}
	cgf_proxy_socks_endpoints(&socks, &ep4, &ep6);
	if (proxy_start(df, &socks, err) ||
	    cgf_fence_set_proxy(df->f, &ep4, ep6.family ? &ep6 : NULL, err)) {
		log_err("fence %s: no DNS proxy: %s", df->path, err);
		proxy_stop(df);
		return;
	}
	log_info("fence %s: DNS proxy listens on 127.0.0.1:%u%s in the namespace of pid %d",
		 df->path, ep4.port, ep6.family ? " and [::1]" : "", (int)pid);
}

/* Drops what proxies learned that has expired, and syncs the fences it changed. */
static void proxy_prune(void)
{
	uint64_t now = cgf_boottime_ns();
	bool pruned_now = now - d.px_pruned_at >= PROXY_PRUNE_MS * 1000000ull;

	if (pruned_now)
		d.px_pruned_at = now;
	for (size_t i = 0; i < d.n_fences; i++) {
		struct dfence *df = &d.fences[i];

		if (!df->proxy)
			continue;
		if (pruned_now) {
			proxy_ensure(df);
			if (df->px && learned_prune(df->px, now))
				df->sync_due = true;
		}
		if (df->sync_due)
			sync_one(df);
	}
}

static int proxy_engine_start(void)
{
	const struct cgf_server *servers;
	struct sockaddr_storage up[8];
	struct cgf_policy empty = { 0 };
	size_t n = cgf_resolver_servers(d.res, &servers), i;
	struct cgf_dnsproxy_opts o = {
		.upstreams = up,
		.min_ttl = d.opt.limits.min_ttl,
		.max_ttl = d.opt.limits.max_ttl,
	};
	int ret;

	if (cgf_dnsproxy_names_new(&empty, &d.no_names)) {
		snprintf(d.px_error, sizeof(d.px_error), "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < n && i < 8; i++) {
		memset(&up[i], 0, sizeof(up[i]));
		if (servers[i].family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&up[i];

			sin->sin_family = AF_INET;
			sin->sin_port = htons(servers[i].port);
			memcpy(&sin->sin_addr, servers[i].addr, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&up[i];

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(servers[i].port);
			memcpy(&sin6->sin6_addr, servers[i].addr, 16);
		}
	}
	o.n_upstreams = i;
	ret = cgf_dnsproxy_new(&o, &d.px);
	if (ret)
		snprintf(d.px_error, sizeof(d.px_error), "cannot start the DNS proxy engine: %s",
			 strerror(-ret));
	return ret;
}

/* The proxy's counters of a fence, both families added up, as JSON (NULL: no proxy). */
static json_t *proxy_json(const struct dfence *df)
{
	struct cgf_dnsproxy_stats a = { 0 }, b = { 0 };
	char l4[32] = "", l6[48] = "";
	json_t *j;

	if (!df->proxy)
		return NULL;
	if (!df->px)
		return json_pack("{s:b,s:s}", "listening", 0, "note",
				 "no proxy yet: DNS is denied until one listens");
	if (df->px->c4)
		cgf_dnsproxy_client_stats(df->px->c4, &a);
	if (df->px->c6)
		cgf_dnsproxy_client_stats(df->px->c6, &b);
	if (df->px->ep4.family)
		snprintf(l4, sizeof(l4), "127.0.0.1:%u", df->px->ep4.port);
	if (df->px->ep6.family)
		snprintf(l6, sizeof(l6), "[::1]:%u", df->px->ep6.port);
	j = json_pack("{s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "listening", 1,
		      "listen4", l4, "listen6", l6,
		      "queries", (json_int_t)(a.queries + b.queries),
		      "answered", (json_int_t)(a.answered + b.answered),
		      "refused", (json_int_t)(a.refused + b.refused),
		      "malformed", (json_int_t)(a.malformed + b.malformed),
		      "servfail", (json_int_t)(a.servfail + b.servfail),
		      "cache_hits", (json_int_t)(a.cache_hits + b.cache_hits),
		      "addresses_allowed", (json_int_t)(a.addresses_allowed + b.addresses_allowed),
		      "names_learned", (json_int_t)df->px->n_names,
		      "addresses_learned", (json_int_t)df->px->n_addrs);
	return j;
}

/* ---- deny events --------------------------------------------------------- */

static void client_write(struct client *c, const char *data, size_t len);

static int on_event(void *ctx, void *data, size_t size)
{
	uint64_t id = (uint64_t)(uintptr_t)ctx;
	const struct cgf_event *e = data;
	struct dfence *df = find_fence(id);
	json_t *ev;
	char *line;

	if (size < sizeof(*e))
		return 0;
	ev = cgf_event_json(e, df ? df->path : NULL, df ? cgf_fence_policy(df->f) : NULL,
			    df ? cgf_fence_label(df->f) : NULL);
	if (!ev)
		return 0;
	line = json_dumps(ev, JSON_COMPACT);
	if (line) {
		/* The log names what was denied; rate-limiting is the ring buffer's size. */
		log_info("deny: %s", line);
		for (size_t i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = d.clients[i];

			if (c && c->follow) {
				client_write(c, line, strlen(line));
				client_write(c, "\n", 1);
			}
		}
	}
	free(line);
	json_decref(d.backlog[d.backlog_next]);
	d.backlog[d.backlog_next] = ev;
	d.backlog_next = (d.backlog_next + 1) % EVENT_BACKLOG;
	return 0;
}

/* The ring buffer set is rebuilt whenever fences come or go. */
static void rebuild_ring_buffers(void)
{
	ring_buffer__free(d.rb);
	d.rb = NULL;
	d.rb_stale = false;
	for (size_t i = 0; i < d.n_fences; i++) {
		void *ctx = (void *)(uintptr_t)d.fences[i].id;
		int fd = cgf_fence_events_fd(d.fences[i].f);

		if (!d.rb) {
			d.rb = ring_buffer__new(fd, on_event, ctx, NULL);
			if (!d.rb)
				log_err("cannot read deny events: %s", strerror(errno));
		} else if (ring_buffer__add(d.rb, fd, on_event, ctx)) {
			log_err("cannot read deny events of %s: %s", d.fences[i].path, strerror(errno));
		}
	}
}

/* ---- clients ------------------------------------------------------------- */

static void client_close(struct client *c)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (d.clients[i] == c)
			d.clients[i] = NULL;
	close(c->fd);
	free(c->out);
	free(c);
}

static void client_write(struct client *c, const char *data, size_t len)
{
	if (c->out_len + len > MAX_OUTPUT) {
		/* A reader too slow for its stream loses events, never the daemon. */
		c->events_dropped++;
		return;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *grown;

		while (cap < c->out_len + len)
			cap *= 2;
		grown = realloc(c->out, cap);
		if (!grown) {
			c->events_dropped++;
			return;
		}
		c->out = grown;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

static void reply(struct client *c, json_t *r)
{
	char *line = json_dumps(r, JSON_COMPACT);

	if (line) {
		client_write(c, line, strlen(line));
		client_write(c, "\n", 1);
	}
	free(line);
	json_decref(r);
}

static void reply_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply_error(struct client *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("request from pid %d uid %u cgroup %s refused: %s", (int)c->cred.pid,
		 (unsigned)c->cred.uid, c->cgroup[0] ? c->cgroup : "?", msg);
	reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

/* Is a cgroup path (relative to the cgroup2 root) at or below a fence? */
static const struct dfence *fence_covering(const char *abs_path)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	const struct dfence *hit = NULL;

	for (size_t i = 0; i < d.n_fences && !hit; i++) {
		size_t len = strlen(d.fences[i].path);

		if (!strncmp(abs_path, d.fences[i].path, len) &&
		    (abs_path[len] == '\0' || abs_path[len] == '/'))
			hit = &d.fences[i];
	}
	if (hit)
		return hit;
	/* Fences the daemon does not manage (`cgfence run`) count as well. */
	if (cgf_fence_list(d.opt.pin_root, &ids, &n) == 0) {
		char path[PATH_MAX];

		for (size_t i = 0; i < n && !hit; i++) {
			size_t len;

			if (cgf_cgroup_path_of(ids[i], path, sizeof(path)))
				continue;
			len = strlen(path);
			if (!strncmp(abs_path, path, len) &&
			    (abs_path[len] == '\0' || abs_path[len] == '/')) {
				static struct dfence unmanaged;

				unmanaged.id = ids[i];
				snprintf(unmanaged.path, sizeof(unmanaged.path), "%s", path);
				hit = &unmanaged;
			}
		}
		free(ids);
	}
	return hit;
}

static void handle_attach(struct client *c, const struct cgf_request *req)
{
	const char *policy = req->policy;
	const char *cgroup = req->cgroup[0] ? req->cgroup : NULL;
	const char *label = req->has_label ? req->label : NULL;
	bool audit = req->audit;
	const struct cgf_endpoint *dns = req->dns;
	struct cgf_attach_opts aopts = { .pin_root = d.opt.pin_root, .audit = audit };
	const char *boundary = req->boundary[0] ? req->boundary : NULL;
	const char *boundary_netns = req->boundary_netns[0] ? req->boundary_netns : NULL;
	const char *boundary_missing = req->boundary_missing[0] ? req->boundary_missing : NULL;
	uint32_t open_risk;
	size_t n_dns = req->n_dns;
	char path[PATH_MAX], err[CGF_ERR_LEN];
	struct cgf_allowlist list = { 0 };
	struct cgf_grant *grants = NULL;
	struct cgf_fence *f = NULL;
	struct cgf_proxy_socks socks = { -1, -1, -1, -1, 0 };
	struct cgf_endpoint ep4, ep6;
	bool made_cgroup = false, proxy;
	struct dpolicy *p;
	size_t n = 0;
	uint64_t id;
	int ret;

	p = find_policy(policy);
	if (!p)
		return reply_error(c, "attach: no policy '%s' in '%s'", policy, d.opt.policy_dir);
	/* a boundary drops traffic on an interface: not for anyone to put anywhere */
	if (boundary && c->cred.uid != 0)
		return reply_error(c, "attach: only root may attach a boundary program to an "
				   "interface");
	proxy = p->rules.dns_mode == CGF_DNS_PROXY;
	if (proxy && audit)
		return reply_error(c, "attach: policy '%s' is in DNS proxy mode, which audit mode "
				   "cannot have (the proxy refuses names; audit must deny nothing)",
				   policy);
	if (proxy && !d.px)
		return reply_error(c, "attach: policy '%s' is in DNS proxy mode, but %s", policy,
				   d.px_error);
	/* refused below, once the workload is known to exist */
	open_risk = boundary ? 0 : req->net_caps & ~p->rules.accept_risk;
	aopts.boundary_ifname = boundary;
	aopts.boundary_netns = boundary_netns;
	aopts.caps_known = req->has_net_caps;
	aopts.caps_held = req->net_caps;
	aopts.risk_accepted = p->rules.accept_risk;
	if (cgroup) {
		if (c->cred.uid != 0)
			return reply_error(c, "attach: only root may fence a cgroup by path (give "
					   "'pid' of a process you own)");
		ret = cgf_control_cgroup_path(cgroup, path, sizeof(path), &id, err);
	} else {
		/* The host's init or the daemon itself in a fence is a mistake, never a wish. */
		if (req->pid == 1 || req->pid == getpid())
			return reply_error(c, "attach: refusing to fence process %d (%s)", req->pid,
					   req->pid == 1 ? "the host's init" : "cgfenced itself");
		/*
		 * A process in a fence stays there: moving it to a cgroup of
		 * its own (what a shared cgroup gets) would take it out of
		 * the fence, under whatever policy the asker names.  Whoever
		 * wants another policy detaches first (root only).
		 */
		cgf_control_pid_cgroup_path((pid_t)req->pid, path, sizeof(path));
		if (path[0] && fence_covering(path))
			return reply_error(c, "attach: process %d is already fenced (cgroup '%s')",
					   req->pid, path);
		ret = cgf_control_pid_cgroup((pid_t)req->pid, c->cred.uid, path, sizeof(path), &id,
					     &made_cgroup, err);
	}
	if (ret)
		return reply_error(c, "attach: %s", err);
	/*
	 * A workload that can put frames on the wire past the cgroup hooks
	 * runs only behind a boundary, or with its policy's consent.
	 */
	if (open_risk) {
		bool raw = open_risk & CGF_RISK_NET_RAW, admin = open_risk & CGF_RISK_NET_ADMIN;

		if (made_cgroup)
			rmdir(path);
		return reply_error(c, "attach: the workload holds %s%s%s and no boundary program "
				   "can judge what leaves its network namespace (%s): drop it "
				   "(podman --cap-drop %s) or add 'accept-risk %s' to policy '%s'",
				   raw ? "CAP_NET_RAW" : "", raw && admin ? " and " : "",
				   admin ? "CAP_NET_ADMIN" : "",
				   boundary_missing ? boundary_missing : "none was given",
				   raw && admin ? "NET_RAW,NET_ADMIN" : raw ? "NET_RAW" : "NET_ADMIN",
				   raw && admin ? "net_raw net_admin" : raw ? "net_raw" : "net_admin",
				   policy);
	}
	if (fence_covering(path)) {
		if (made_cgroup)
			rmdir(path);
		return reply_error(c, "attach: '%s' is already fenced", path);
	}
	aopts.policy = policy;
	aopts.label = label;
	aopts.dns = dns;
	aopts.n_dns = n_dns;
	if (proxy) {
		/*
		 * The proxy listens in the namespace of the process to fence (or,
		 * for a cgroup, of the netns_pid given or the cgroup's first
		 * process) before the fence exists: its config names the
		 * proxy from the first packet on.
		 */
		pid_t npid = req->pid ? (pid_t)req->pid :
			     req->netns_pid ? (pid_t)req->netns_pid : cgroup_first_pid(path);

		if (!npid) {
			if (made_cgroup)
				rmdir(path);
			return reply_error(c, "attach: policy '%s' is in DNS proxy mode and cgroup "
					   "'%s' has no process to find its network namespace by "
					   "(give 'netns_pid', or fence by 'pid')", policy, path);
		}
		if (cgf_proxy_socks_open(npid, &socks, err)) {
			if (made_cgroup)
				rmdir(path);
			return reply_error(c, "attach: DNS proxy: %s", err);
		}
		cgf_proxy_socks_endpoints(&socks, &ep4, &ep6);
		aopts.dns_proxy = true;
		aopts.proxy4 = &ep4;
		aopts.proxy6 = &ep6;
	}
	/* in proxy mode DNS goes to the proxy: the container's resolvers are not allowed */
	if (policy_grants(&p->rules, p->domains, &grants, &n) ||
	    fence_allowlist(grants, n, NULL, dns, proxy ? 0 : n_dns, &list, err, sizeof(err))) {
		free(grants);
		cgf_proxy_socks_close(&socks);
		if (made_cgroup)
			rmdir(path);
		return reply_error(c, "attach: policy '%s': %s", policy, err);
	}
	free(grants);
	ret = cgf_fence_attach(path, &list, &aopts, &f, err);
	cgf_allowlist_free(&list);
	if (ret) {
		cgf_proxy_socks_close(&socks);
		if (made_cgroup)
			rmdir(path);
		return reply_error(c, "attach: %s", err);
	}
	if (made_cgroup && req->pid && cgf_control_move_pid((pid_t)req->pid, path, err)) {
		char e2[CGF_ERR_LEN];

		cgf_proxy_socks_close(&socks);
		cgf_fence_close(f);
		cgf_fence_remove(d.opt.pin_root, id, e2);
		rmdir(path);
		return reply_error(c, "attach: %s", err);
	}
	if (add_fence(id, path, f, made_cgroup)) {
		char e2[CGF_ERR_LEN];

		/* no daemon behind its proxy: the fence goes (its process stays, unfenced
		   only if it was not moved; a dedicated cgroup keeps it contained) */
		cgf_proxy_socks_close(&socks);
		cgf_fence_close(f);
		if (!made_cgroup)
			cgf_fence_remove(d.opt.pin_root, id, e2);
		return reply_error(c, "attach: out of memory");
	}
	if (proxy) {
		struct dfence *df = &d.fences[d.n_fences - 1];

		df->proxy = true;
		if (proxy_start(df, &socks, err)) {
			char e2[CGF_ERR_LEN];

			/* DNS stays denied: the config names no endpoint */
			if (cgf_fence_set_proxy(df->f, NULL, NULL, e2))
				log_err("fence %s: %s", path, e2);
			log_err("fence %s: %s", path, err);
			return reply_error(c, "attach: fenced, but without DNS: %s", err);
		}
	}
	log_info("fenced %s with policy %s%s (cgroup id %" PRIu64 ")%s%s%s%s, asked by pid %d "
		 "uid %u", path, policy, audit ? " in audit mode" : "", id, label ? " for " : "",
		 label ? label : "", boundary ? ", boundary on " : "", boundary ? boundary : "",
		 (int)c->cred.pid, (unsigned)c->cred.uid);
	reply(c, json_pack("{s:b,s:s,s:I,s:s,s:s,s:s}", "ok", 1, "cgroup", path, "cgroup_id",
			   (json_int_t)id, "policy", policy, "mode", audit ? "audit" : "enforce",
			   "dns", proxy ? "proxy" : "resolve"));
}

/*
 * `cgfence run --dns-proxy`: cgfence run attached the fence itself (proxy
 * mode, no endpoint yet) and asks for a proxy with its rules, listening in
 * its own network namespace (the command's).  The fence stays cgfence run's:
 * the daemon never removes its pins, and forgets it when its cgroup goes.
 *   {"op":"proxy","cgroup_id":N,"bpffs":DIR?,"rules":[{"source":S,"text":T,"file":bool}]}
 */
static void handle_proxy(struct client *c, const struct cgf_request *req)
{
	const char *bpffs = req->bpffs[0] ? req->bpffs : NULL;
	struct cgf_proxy_socks socks;
	struct cgf_endpoint ep4, ep6;
	struct cgf_policy *own = NULL;
	struct cgf_dnsproxy_names *names = NULL;
	struct cgf_fence *f = NULL;
	char err[CGF_ERR_LEN], path[PATH_MAX];
	struct dfence *df;
	uint64_t id = req->cgroup_id;

	/* only root gets here (handle_request) */
	if (!d.px)
		return reply_error(c, "proxy: %s", d.px_error);
	if (find_fence(id))
		return reply_error(c, "proxy: fence %" PRIu64 " is already the daemon's", id);
	own = calloc(1, sizeof(*own));
	if (!own)
		return reply_error(c, "proxy: out of memory");
	for (size_t k = 0; k < req->n_rules; k++) {
		const struct cgf_request_rule *rule = &req->rules[k];
		struct cgf_error e = { 0 };
		int ret;

		if (rule->file)
			ret = cgf_policy_parse_buffer(own, rule->source, rule->text,
						      strlen(rule->text), &e);
		else
			ret = cgf_policy_add_rule(own, rule->text, &e);
		if (ret) {
			cgf_error_format(&e, err, sizeof(err));
			goto fail;
		}
	}
	if (cgf_dnsproxy_names_new(own, &names)) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (cgf_fence_open(bpffs ? bpffs : d.opt.pin_root, id, &f, err))
		goto fail;
	if (!cgf_fence_dns_proxy(f, NULL, NULL)) {
		snprintf(err, sizeof(err), "fence %" PRIu64 " is not in DNS proxy mode", id);
		goto fail;
	}
	if (cgf_cgroup_path_of(id, path, sizeof(path))) {
		snprintf(err, sizeof(err), "no cgroup with id %" PRIu64, id);
		goto fail;
	}
	if (cgf_proxy_socks_open(c->cred.pid, &socks, err))
		goto fail;
	cgf_proxy_socks_endpoints(&socks, &ep4, &ep6);
	if (add_fence(id, path, f, false)) {
		cgf_proxy_socks_close(&socks);
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	f = NULL;
	df = &d.fences[d.n_fences - 1];
	df->own = own;
	df->own_names = names;
	df->run_owned = true;
	df->proxy = true;
	if (proxy_start(df, &socks, err) ||
	    cgf_fence_set_proxy(df->f, &ep4, ep6.family ? &ep6 : NULL, err)) {
		drop_fence(df, "its DNS proxy did not start");
		return reply_error(c, "proxy: %s", err);
	}
	log_info("DNS proxy for %s (cgroup id %" PRIu64 ", cgfence run of pid %d) on 127.0.0.1:%u",
		 path, id, (int)c->cred.pid, ep4.port);
	reply(c, json_pack("{s:b,s:I,s:I}", "ok", 1, "cgroup_id", (json_int_t)id, "port",
			   (json_int_t)ep4.port));
	return;
fail:
	cgf_fence_close(f);
	cgf_dnsproxy_names_free(names);
	cgf_policy_free(own);
	free(own);
	reply_error(c, "proxy: %s", err);
}

static void handle_detach(struct client *c, const struct cgf_request *req)
{
	char path[PATH_MAX], err[CGF_ERR_LEN];
	struct dfence *df;
	uint64_t id;

	if (cgf_control_cgroup_path(req->cgroup, path, sizeof(path), &id, err))
		return reply_error(c, "detach: %s", err);
	df = find_fence(id);
	if (df) {
		drop_fence(df, "detached on request");
	} else if (cgf_fence_remove(d.opt.pin_root, id, err)) {
		return reply_error(c, "detach: %s", err);
	}
	log_info("unfenced %s, asked by pid %d uid %u", path, (int)c->cred.pid,
		 (unsigned)c->cred.uid);
	reply(c, json_pack("{s:b,s:s}", "ok", 1, "cgroup", path));
}

static void handle_status(struct client *c)
{
	json_t *fences, *policies;
	uint64_t *ids = NULL;
	size_t n = 0, i;

	fences = json_array();
	policies = json_array();
	if (cgf_fence_list(d.opt.pin_root, &ids, &n) == 0) {
		for (i = 0; i < n; i++) {
			struct dfence *df = find_fence(ids[i]);
			struct cgf_fence *f = df ? df->f : NULL;
			char path[PATH_MAX], err[CGF_ERR_LEN];
			json_t *jf;
			bool have_path;

			if (!f && cgf_fence_open(d.opt.pin_root, ids[i], &f, err))
				continue;
			have_path = df ? true : cgf_cgroup_path_of(ids[i], path, sizeof(path)) == 0;
			jf = cgf_fence_json(f, df ? df->path : have_path ? path : NULL,
					    STATUS_ENTRIES_MAX);
			if (!df)
				cgf_fence_close(f);
			if (!jf)
				continue;
			json_object_set_new(jf, "managed", json_boolean(df != NULL));
			if (df && df->proxy)
				json_object_set_new(jf, "dns_proxy", proxy_json(df));
			json_array_append_new(fences, jf);
		}
		free(ids);
	}
	for (i = 0; i < d.n_policies; i++)
		json_array_append_new(policies,
				      json_pack("{s:s,s:I,s:I,s:s}", "name", d.policies[i].name, "rules",
						(json_int_t)d.policies[i].rules.n_rules, "names",
						(json_int_t)cgf_domains_count(d.policies[i].domains),
						"dns", policy_resolves(&d.policies[i]) ? "resolve" :
											 "proxy"));
	reply(c, json_pack("{s:b,s:o,s:o}", "ok", 1, "fences", fences, "policies", policies));
	malloc_trim(0);
}

static void handle_reload(struct client *c)
{
	json_t *errors = json_array();
	int ret;

	ret = load_policies(errors);
	sync_dirty();
	schedule_resolution(false);
	(void)ret; /* the errors say what was rejected; the reload itself happened */
	reply(c, json_pack("{s:b,s:I,s:o}", "ok", 1, "policies", (json_int_t)d.n_policies,
			   "errors", errors));
}

static void handle_events(struct client *c, const struct cgf_request *req)
{
	size_t i;

	reply(c, json_pack("{s:b}", "ok", 1));
	for (i = 0; i < EVENT_BACKLOG; i++) {
		json_t *ev = d.backlog[(d.backlog_next + i) % EVENT_BACKLOG];
		char *line;

		if (!ev)
			continue;
		line = json_dumps(ev, JSON_COMPACT);
		if (line) {
			client_write(c, line, strlen(line));
			client_write(c, "\n", 1);
		}
		free(line);
	}
	if (req->follow)
		c->follow = true;
	else
		c->close_after = true;
}

/*
 * Drops, now rather than at the next check, the fences whose cgroup is gone
 * or (for cgroups the daemon made) empty.  Harmless for anyone to ask: only
 * fences with nothing left to fence go.  The OCI hook asks at poststop.
 */
static void handle_release(struct client *c)
{
	size_t before = d.n_fences;

	check_cgroups();
	reply(c, json_pack("{s:b,s:I}", "ok", 1, "removed", (json_int_t)(before - d.n_fences)));
}

static void handle_request(struct client *c, const char *line)
{
	/* what only root may ask, and what the others are told */
	static const char *const root_only[] = {
		[CGF_REQ_DETACH] = "detach: only root may remove a fence",
		[CGF_REQ_STATUS] = "status: only root may see every fence",
		[CGF_REQ_RELOAD] = "reload: only root may reload policies",
		[CGF_REQ_EVENTS] = "events: only root may read deny events",
		[CGF_REQ_RELEASE] = NULL,
		[CGF_REQ_PROXY] = "proxy: only root may ask for a fence's DNS proxy",
	};
	struct cgf_request req;
	char err[CGF_ERR_LEN];
	int ret = cgf_request_parse(line, &req, err, sizeof(err));

	if (req.op_name[0])
		log_info("request '%s' from pid %d uid %u cgroup %s", req.op_name, (int)c->cred.pid,
			 (unsigned)c->cred.uid, c->cgroup);
	/* who may ask comes before what is wrong with the request */
	if (req.op != CGF_REQ_NONE && root_only[req.op] && c->cred.uid != 0)
		reply_error(c, "%s", root_only[req.op]);
	else if (ret)
		reply_error(c, "%s", err);
	else if (req.op == CGF_REQ_ATTACH)
		handle_attach(c, &req);
	else if (req.op == CGF_REQ_DETACH)
		handle_detach(c, &req);
	else if (req.op == CGF_REQ_STATUS)
		handle_status(c);
	else if (req.op == CGF_REQ_RELOAD)
		handle_reload(c);
	else if (req.op == CGF_REQ_EVENTS)
		handle_events(c, &req);
	else if (req.op == CGF_REQ_RELEASE)
		handle_release(c);
	else if (req.op == CGF_REQ_PROXY)
		handle_proxy(c, &req);
	cgf_request_free(&req);
}

static void refuse_busy(int fd, const char *why)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"daemon busy: %s\"}\n", why);

	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("cannot tell a client the daemon is busy");
	close(fd);
	log_warn("refused a client: %s", why);
}

/*
 * Slots: MAX_CLIENTS in all, the last ROOT_RESERVED only for root, and at
 * most PER_UID_CLIENTS for any other uid, so that a local user holding
 * connections open can neither lock root out nor crowd other users out.
 */
#define ROOT_RESERVED 8
#define PER_UID_CLIENTS 8

static void accept_client(void)
{
	socklen_t len = sizeof(struct ucred);
	struct ucred cred;
	struct client *c;
	int fd = accept4(d.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	size_t i, used = 0, same_uid = 0, slot = MAX_CLIENTS;

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		log_err("SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return;
	}
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (!d.clients[i]) {
			if (slot == MAX_CLIENTS)
				slot = i;
			continue;
		}
		used++;
		if (d.clients[i]->cred.uid == cred.uid)
			same_uid++;
	}
	if (slot == MAX_CLIENTS)
		return refuse_busy(fd, "too many clients");
	if (cred.uid != 0 && used >= MAX_CLIENTS - ROOT_RESERVED)
		return refuse_busy(fd, "too many clients");
	if (cred.uid != 0 && same_uid >= PER_UID_CLIENTS)
		return refuse_busy(fd, "too many clients of this user");
	c = calloc(1, sizeof(*c));
	if (!c)
		return refuse_busy(fd, "out of memory");
	i = slot;
	c->fd = fd;
	c->cred = cred;
	c->last_active = time(NULL);
	cgf_control_pid_cgroup_path(c->cred.pid, c->cgroup, sizeof(c->cgroup));
	d.clients[i] = c;
	/* Nothing from inside a fence is taken, whatever its uid. */
	if (c->cgroup[0] && fence_covering(c->cgroup)) {
		reply_error(c, "requests from inside a fenced cgroup are refused");
		c->close_after = true;
	} else if (!c->cgroup[0]) {
		reply_error(c, "cannot tell which cgroup the client is in");
		c->close_after = true;
	}
}

/*
 * Whether a client has a request to handle now: a complete line, and room
 * for the reply.  A client that sends requests without reading the replies
 * is served REQUESTS_PER_TURN at a time and waits once OUTPUT_HIGH bytes are
 * queued for it, so it can neither stall the others nor grow its queue.
 */
static bool client_ready(const struct client *c)
{
	return !c->close_after && c->out_len < OUTPUT_HIGH && memchr(c->in, '\n', c->in_len);
}

/* Handles the requests a client has sent, up to REQUESTS_PER_TURN. */
static void client_process(struct client *c)
{
	char *nl;

	for (int i = 0; i < REQUESTS_PER_TURN && client_ready(c); i++) {
		nl = memchr(c->in, '\n', c->in_len);
		*nl = '\0';
		handle_request(c, c->in);
		c->in_len -= (size_t)(nl + 1 - c->in);
		memmove(c->in, nl + 1, c->in_len);
		c->in[c->in_len] = '\0';
	}
	if (c->in_len == MAX_REQUEST && !memchr(c->in, '\n', c->in_len)) {
		reply_error(c, "request longer than %d bytes", MAX_REQUEST);
		c->close_after = true;
		c->in_len = 0;
	}
}

/* Whether to read from a client: only while it can be served. */
static bool client_wants_input(const struct client *c)
{
	return !c->close_after && c->out_len < OUTPUT_HIGH && c->in_len < MAX_REQUEST;
}

static void client_input(struct client *c)
{
	ssize_t n;

	if (!client_wants_input(c))
		return;
	n = read(c->fd, c->in + c->in_len, MAX_REQUEST - c->in_len);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			client_close(c);
		return;
	}
	c->last_active = time(NULL);
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	client_process(c);
}

static void client_output(struct client *c)
{
	ssize_t n;

	if (!c->out_len)
		return;
	n = write(c->fd, c->out, c->out_len);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(c);
		return;
	}
	memmove(c->out, c->out + n, c->out_len - (size_t)n);
	c->out_len -= (size_t)n;
}

/* ---- setup --------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cgfenced [--config FILE] [--policy-dir DIR] [--socket PATH]\n"
		"                [--resolver IP[:PORT]]... [--bpffs DIR] [--min-ttl SECONDS]\n"
		"                [--max-ttl SECONDS] [--grace SECONDS] [--max-addrs N]\n"
		"                [--foreground] [--log-format text|json] [--debug]\n"
		"\n"
		"Keeps the allowlists of fenced cgroups current from DNS.  Options may also be\n"
		"given in the config file (default " CGF_CONFIG_DEFAULT ") as\n"
		"'key = value' lines whose keys are the long option names; the command line\n"
		"wins.  Defaults: policies from " CGF_POLICY_DIR_DEFAULT "/*.policy, socket\n"
		CGF_SOCKET_DEFAULT ", resolvers from /etc/resolv.conf, min-ttl 10,\n"
		"max-ttl 86400, grace 5, max-addrs 64.\n"
		"\n"
		"A policy with the line 'dns proxy' is not resolved on a timer: each of its\n"
		"fences gets a filtering DNS proxy of its own, listening on loopback of the\n"
		"fence's network namespace, that answers only the policy's names (through the\n"
		"resolvers above) and opens the fence for what it answered.\n");
}

static int parse_seconds(const char *key, const char *val, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (errno || end == val || *end || val[0] == '-' || v > 365ul * 86400) {
		fprintf(stderr, "cgfenced: %s '%s': not a number of seconds (0-31536000)\n", key, val);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* One option, from the command line or the config file. */
static int set_option(struct options *o, const char *key, const char *val)
{
	char err[256];

	if (!strcmp(key, "policy-dir"))
		o->policy_dir = strdup(val);
	else if (!strcmp(key, "socket"))
		o->socket = strdup(val);
	else if (!strcmp(key, "bpffs"))
		o->pin_root = strdup(val);
	else if (!strcmp(key, "resolver")) {
		if (o->n_servers == sizeof(o->servers) / sizeof(o->servers[0])) {
			fprintf(stderr, "cgfenced: too many resolvers (at most 8)\n");
			return -1;
		}
		if (cgf_server_parse(val, &o->servers[o->n_servers], err, sizeof(err))) {
			fprintf(stderr, "cgfenced: resolver '%s': %s\n", val, err);
			return -1;
		}
		o->n_servers++;
	} else if (!strcmp(key, "min-ttl"))
		return parse_seconds(key, val, &o->limits.min_ttl);
	else if (!strcmp(key, "max-ttl"))
		return parse_seconds(key, val, &o->limits.max_ttl);
	else if (!strcmp(key, "grace"))
		return parse_seconds(key, val, &o->limits.grace);
	else if (!strcmp(key, "max-addrs")) {
		if (parse_seconds(key, val, &o->limits.max_addrs) || !o->limits.max_addrs ||
		    o->limits.max_addrs > 4096) {
			fprintf(stderr, "cgfenced: max-addrs '%s': a number from 1 to 4096\n", val);
			return -1;
		}
	} else if (!strcmp(key, "foreground"))
		o->foreground = !strcmp(val, "yes") || !strcmp(val, "true") || !strcmp(val, "1");
	else if (!strcmp(key, "debug"))
		o->debug = !strcmp(val, "yes") || !strcmp(val, "true") || !strcmp(val, "1");
	else if (!strcmp(key, "log-format")) {
		if (strcmp(val, "text") && strcmp(val, "json")) {
			fprintf(stderr, "cgfenced: log-format '%s': text or json\n", val);
			return -1;
		}
		o->json_log = !strcmp(val, "json");
	} else {
		fprintf(stderr, "cgfenced: unknown option '%s'\n", key);
		return -1;
	}
	return 0;
}

static int read_config(struct options *o, const char *path, bool must_exist,
		       const bool *given, const char *const *keys)
{
	char *line = NULL, *key, *val;
	unsigned lineno = 0;
	size_t cap = 0;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		fprintf(stderr, "cgfenced: cannot read config '%s': %s\n", path, strerror(errno));
		return -1;
	}
	/* whole lines, however long: a long comment's tail is no option */
	while (!ret && getline(&line, &cap, f) > 0) {
		size_t k;
		int n;

		lineno++;
		n = cgf_conf_split(line, &key, &val);
		if (n == 0)
			continue;
		if (n < 0) {
			fprintf(stderr, "cgfenced: %s:%u: expected 'key = value'\n", path, lineno);
			ret = -1;
			break;
		}
		/* the command line wins over the file */
		for (k = 0; keys[k]; k++)
			if (!strcmp(keys[k], key) && given[k])
				break;
		if (keys[k])
			continue;
		if (set_option(o, key, val)) {
			fprintf(stderr, "cgfenced: (in %s:%u)\n", path, lineno);
			ret = -1;
		}
	}
	free(line);
	fclose(f);
	return ret;
}

static int open_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[PATH_MAX], *slash;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("socket path '%s' too long", path);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST) {
			log_err("cannot create '%s': %s", dir, strerror(errno));
			return -1;
		}
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A socket someone answers on belongs to a running daemon: leave it alone. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
		log_err("another cgfenced answers on '%s'", path);
		close(fd);
		return -1;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0666) ||
	    listen(fd, 64)) {
		log_err("cannot listen on '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void notify_ready(void)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!sock || (sock[0] != '/' && sock[0] != '@') || strlen(sock) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, sock);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sock));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa, len) < 0)
		log_warn("cannot notify systemd: %s", strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	static const char *const keys[] = { "policy-dir", "socket", "resolver", "bpffs",
					     "min-ttl", "max-ttl", "grace", "max-addrs",
					     "foreground", "log-format", "debug", NULL };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "policy-dir", required_argument, NULL, 0 },
		{ "socket", required_argument, NULL, 1 },
		{ "resolver", required_argument, NULL, 2 },
		{ "bpffs", required_argument, NULL, 3 },
		{ "min-ttl", required_argument, NULL, 4 },
		{ "max-ttl", required_argument, NULL, 5 },
		{ "grace", required_argument, NULL, 6 },
		{ "max-addrs", required_argument, NULL, 7 },
		{ "foreground", no_argument, NULL, 8 },
		{ "log-format", required_argument, NULL, 9 },
		{ "debug", no_argument, NULL, 10 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool given[sizeof(keys) / sizeof(keys[0])] = { 0 };
	struct options *o = &d.opt;
	char err[CGF_ERR_LEN], msg[512];
	json_t *errors;
	sigset_t mask;
	int opt, sfd, lock_fd, ret = 1;

	o->limits = (struct cgf_ttl_limits)CGF_TTL_LIMITS_DEFAULT;
	o->config = CGF_CONFIG_DEFAULT;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'c') {
			o->config = optarg;
			given[sizeof(keys) / sizeof(keys[0]) - 1] = true;
			continue;
		}
		if (opt < 0 || opt > 10) {
			usage(stderr);
			return 1;
		}
		given[opt] = true;
		if (set_option(o, keys[opt], opt == 8 || opt == 10 ? "yes" : optarg))
			return 1;
	}
	if (optind != argc) {
		fprintf(stderr, "cgfenced: unexpected '%s'\n", argv[optind]);
		return 1;
	}
	/* An explicit --config must exist; the default one may be absent. */
	if (read_config(o, o->config, given[sizeof(keys) / sizeof(keys[0]) - 1], given, keys))
		return 1;
	if (!o->policy_dir)
		o->policy_dir = CGF_POLICY_DIR_DEFAULT;
	if (!o->socket)
		o->socket = CGF_SOCKET_DEFAULT;
	if (o->limits.min_ttl > o->limits.max_ttl) {
		fprintf(stderr, "cgfenced: min-ttl %u is more than max-ttl %u\n", o->limits.min_ttl,
			o->limits.max_ttl);
		return 1;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "cgfenced: must run as root\n");
		return 1;
	}
	if (!o->foreground && daemon(0, 0)) {
		fprintf(stderr, "cgfenced: cannot go to the background: %s\n", strerror(errno));
		return 1;
	}
	cgf_log_open("cgfenced", o->foreground, o->json_log, o->debug);
	cgf_libbpf_quiet(o->debug);
	if (cgf_cgroup2_root(d.cg2, sizeof(d.cg2), err)) {
		log_err("%s", err);
		return 1;
	}
	if (cgf_pin_root_prepare(o->pin_root ? o->pin_root : CGF_PIN_ROOT_DEFAULT, err)) {
		log_err("%s", err);
		return 1;
	}
	if (cgf_resolver_new(&d.res, o->servers, o->n_servers, msg, sizeof(msg))) {
		log_err("%s", msg);
		return 1;
	}
	{
		char lock_path[PATH_MAX + 8];

		snprintf(lock_path, sizeof(lock_path), "%s.lock", o->socket);
		d.listen_fd = open_socket(o->socket);
		if (d.listen_fd < 0)
			return 1;
		lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB)) {
			log_err("another cgfenced holds '%s'", lock_path);
			return 1;
		}
	}
	if (proxy_engine_start())
		log_warn("%s: policies in DNS proxy mode cannot be attached", d.px_error);
	errors = json_array();
	load_policies(errors);
	json_decref(errors);
	adopt_fences();
	sync_dirty();

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sfd < 0 || d.done_fd < 0 || pthread_create(&d.thread, NULL, resolver_main, NULL)) {
		log_err("cannot set up the event loop: %s", strerror(errno));
		return 1;
	}
	schedule_resolution(true);
	rebuild_ring_buffers();
	log_info("ready: socket %s, %zu policies, %zu fences", o->socket, d.n_policies,
		 d.n_fences);
	notify_ready();

	while (!d.stop) {
		struct pollfd pfd[5 + MAX_CLIENTS];
		struct client *polled[MAX_CLIENTS];
		size_t np = 0, nc = 0, i;
		uint64_t now, due = UINT64_MAX;
		int timeout = CHECK_INTERVAL_MS;

		if (d.rb_stale)
			rebuild_ring_buffers();
		pfd[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = d.listen_fd, .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = d.done_fd, .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = d.rb ? ring_buffer__epoll_fd(d.rb) : -1,
					     .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = d.px ? cgf_dnsproxy_fd(d.px) : -1,
					     .events = POLLIN };
		for (i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = d.clients[i];

			if (!c)
				continue;
			polled[nc++] = c;
			pfd[np++] = (struct pollfd){ .fd = c->fd,
						     .events = (short)((client_wants_input(c) ? POLLIN : 0) |
								       (c->out_len ? POLLOUT : 0)) };
			if (client_ready(c))
				timeout = 0; /* requests left from the last turn */
		}
		now = cgf_boottime_ns();
		for (i = 0; i < d.n_policies; i++) {
			uint64_t t;

			if (!policy_resolves(&d.policies[i]))
				continue;
			t = cgf_domains_next_due(d.policies[i].domains);
			if (t < due)
				due = t;
		}
		if (!d.job_running && due != UINT64_MAX) {
			uint64_t ms = due <= now ? 0 : (due - now) / 1000000 + 1;

			if (ms < (uint64_t)timeout)
				timeout = (int)ms;
		}
		if (d.px) {
			int t = cgf_dnsproxy_timeout_ms(d.px);

			if (t >= 0 && t < timeout)
				timeout = t;
		}
		if (poll(pfd, np, timeout) < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					errors = json_array();
					log_info("SIGHUP: reloading policies");
					load_policies(errors);
					json_decref(errors);
					sync_dirty();
				} else if (si.ssi_signo != SIGPIPE) {
					log_info("signal %u: stopping (fences stay in force)",
						 si.ssi_signo);
					d.stop = true;
				}
			}
		}
		if (pfd[1].revents)
			accept_client();
		if (pfd[2].revents)
			collect_resolution();
		if (d.rb)
			ring_buffer__consume(d.rb);
		/* every turn: answers wait on nothing but this, and timers are due */
		if (d.px) {
			int r = cgf_dnsproxy_process(d.px);

			if (r)
				log_err("DNS proxy: %s", strerror(-r));
		}
		for (i = 0; i < nc; i++) {
			struct client *c = polled[i];
			short rev = pfd[5 + i].revents;

			if (rev & (POLLIN | POLLHUP | POLLERR))
				client_input(c);
		}
		/* clients may have been closed above: walk the table again */
		for (i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = d.clients[i];

			if (!c)
				continue;
			client_output(c);
			c = d.clients[i];
			if (!c)
				continue;
			client_process(c); /* what is left once its replies are read */
			if (c->close_after && !c->out_len)
				client_close(c);
			else if (!c->follow && time(NULL) - c->last_active > CLIENT_IDLE_SEC)
				client_close(c);
		}
		check_cgroups();
		proxy_prune();
		schedule_resolution(false);
	}
	ret = 0;
	pthread_mutex_lock(&d.lock);
	d.thread_exit = true;
	pthread_cond_signal(&d.cond);
	pthread_mutex_unlock(&d.lock);
	/* A batch in flight ends within its timeout. */
	pthread_join(d.thread, NULL);
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (d.clients[i])
			client_close(d.clients[i]);
	close(d.listen_fd);
	unlink(o->socket);
	ring_buffer__free(d.rb);
	for (size_t i = 0; i < d.n_fences; i++) {
		struct dfence *df = &d.fences[i];

		/* the proxies stop with the daemon: their fences' DNS is denied from now */
		if (df->px && cgf_fence_set_proxy(df->f, NULL, NULL, err))
			log_warn("fence %s: %s", df->path, err);
		fence_free(df);
	}
	free(d.fences);
	cgf_dnsproxy_free(d.px);
	cgf_dnsproxy_names_free(d.no_names);
	for (size_t i = 0; i < d.n_policies; i++)
		policy_free(&d.policies[i]);
	free(d.policies);
	for (size_t i = 0; i < EVENT_BACKLOG; i++)
		json_decref(d.backlog[i]);
	cgf_resolver_free(d.res);
	return ret;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * DNS resolution with TTLs, through c-ares.
 *
 * Every lookup is an A and an AAAA query sent with ares_query() (never
 * ares_search(): the names of a policy are absolute, no search domain is ever
 * appended, and /etc/hosts is never read).  A batch keeps up to max_inflight
 * lookups on the resolver's one channel and runs a poll() loop until each has
 * an answer or has reached its own deadline (its send time + the timeout);
 * cgf_resolve() is a batch of one.  The answers are parsed with
 * ares_parse_a_reply() and ares_parse_aaaa_reply(), which give each address the
 * TTL of its record (or of a CNAME on the way to it, when that is shorter).
 *
 * c-ares 1.18 cannot cancel one query: a lookup judged at its deadline leaves
 * its queries in the channel, and their callbacks, when they come, are
 * ignored.  The batch ends with ares_cancel(), which runs every callback still
 * due (ARES_ECANCELLED) while the batch's memory is alive, so no callback can
 * come after the batch returns.
 *
 * A resolver is not thread-safe: one cgf_resolve() or cgf_resolve_batch() at a
 * time per resolver (each cancels every query of the channel when it ends),
 * and resolvers made or freed in one thread only (c-ares 1.18 counts its
 * library initialisations without a lock).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>

#include "resolve.h"

#define DNS_PORT 53
#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 253

/*
 * Per-try timeout and tries given to c-ares.  c-ares doubles the per-try
 * timeout after each round over all servers (1 s, 2 s, 4 s), so a lost packet
 * is sent again after a second and a dead server is left for the next one
 * after a second; the caller's deadline ends the lookup in any case.
 */
#define TRY_TIMEOUT_MS 1000
#define TRIES 3

struct cgf_resolver {
	ares_channel channel;
	struct cgf_server *servers;
	size_t n_servers;
};

/*
 * Names sent at most per turn of the poll loop before the replies that came are
 * read: a burst of hundreds of queries at once could overflow a socket buffer,
 * the server's or ours, and a lost packet costs a whole per-try timeout.
 */
#define SEND_BURST 32

struct lookup;

/* One query of a lookup (A or AAAA) and what came back. */
struct part {
	struct lookup *lk;
	const char *type; /* "A" or "AAAA" */
	int family;
	bool done;
	int status; /* ARES_*; ARES_ECANCELLED when our deadline ended it */
	struct cgf_answer *answers;
	size_t n_answers;
};

enum lookup_state {
	L_WAITING, /* not sent yet */
	L_SENT,    /* its queries are in the channel */
	L_DONE,    /* judged: its cgf_query is final; later callbacks are ignored */
};

/* One name of a batch. */
struct lookup {
	struct batch *b;
	struct cgf_query *q;
	struct part parts[2];
	int64_t sent_ms, deadline_ms;
	enum lookup_state state;
};

/*
 * The lookups are sent in their order, all with the same timeout, so their
 * deadlines never decrease: the first L_SENT one has the earliest.
 */
struct batch {
	struct cgf_resolver *res;
	struct lookup *lks;
	size_t n;
	size_t next;     /* the next lookup to send */
	size_t oldest;   /* none before it is L_SENT */
	size_t inflight; /* lookups L_SENT */
	size_t done;     /* lookups L_DONE */
	int timeout_ms;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "192.0.2.1:53" or "[2001:db8::1]:53". */
static void format_server(const struct cgf_server *s, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(s->family, s->addr, ip, sizeof(ip));
	if (s->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, (unsigned int)s->port);
	else
		snprintf(buf, len, "%s:%u", ip, (unsigned int)s->port);
}

/* A decimal port 1..65535, digits only. */
static int parse_port(const char *text, uint16_t *port)
{
	unsigned long v = 0;
	const char *p;

	if (!*text)
		return -EINVAL;
	for (p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int cgf_server_parse(const char *text, struct cgf_server *server, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct cgf_server s = { .port = DNS_PORT };
	const char *port = NULL, *end;
	size_t len;

	if (!text || !server) {
		set_err(err, errlen, "bad resolver address: none given");
		return -EINVAL;
	}
	if (!*text) {
		set_err(err, errlen, "bad resolver address '': empty");
		return -EINVAL;
	}

	if (text[0] == '[') {
		/* "[IPv6]" or "[IPv6]:PORT" */
		end = strchr(text, ']');
		if (!end) {
			set_err(err, errlen, "bad resolver address '%s': no closing ']'", text);
			return -EINVAL;
		}
		if (end[1] == ':')
			port = end + 2;
		else if (end[1]) {
			set_err(err, errlen, "bad resolver address '%s': expected ':PORT' after ']'",
				text);
			return -EINVAL;
		}
		len = (size_t)(end - text - 1);
		if (len >= sizeof(buf)) {
			set_err(err, errlen, "bad resolver address '%s': not an IPv6 address", text);
			return -EINVAL;
		}
		memcpy(buf, text + 1, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET6, buf, s.addr) != 1) {
			set_err(err, errlen, "bad resolver address '%s': '%s' is not an IPv6 address",
				text, buf);
			return -EINVAL;
		}
		s.family = AF_INET6;
	} else if (inet_pton(AF_INET6, text, s.addr) == 1) {
		/* A bare IPv6 address has no port: "::1:53" is an address. */
		s.family = AF_INET6;
	} else {
		/* "IPv4" or "IPv4:PORT" */
		end = strchr(text, ':');
		len = end ? (size_t)(end - text) : strlen(text);
		if (end)
			port = end + 1;
		if (len >= sizeof(buf)) {
			set_err(err, errlen, "bad resolver address '%s': not an IP address", text);
			return -EINVAL;
		}
		memcpy(buf, text, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET, buf, s.addr) != 1) {
			set_err(err, errlen, "bad resolver address '%s': not an IP address", text);
			return -EINVAL;
		}
		s.family = AF_INET;
	}

	if (port && parse_port(port, &s.port)) {
		set_err(err, errlen, "bad resolver address '%s': port '%s' is not 1 to 65535", text,
			port);
		return -EINVAL;
	}
	*server = s;
	return 0;
}

static int ares_to_errno(int status)
{
	switch (status) {
	case ARES_SUCCESS:
	case ARES_ENODATA:
		return 0;
	case ARES_ENOTFOUND:
		return -ENOENT;
	case ARES_ETIMEOUT:
	case ARES_ECANCELLED:
		return -ETIMEDOUT;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_EBADNAME:
	case ARES_EBADQUERY:
	case ARES_EBADFAMILY:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/*
 * Makes the c-ares channel, for the servers of resolv_conf or (resolv_conf
 * NULL) for servers the caller sets next.  With a single server
 * ARES_FLAG_NOCHECKRESP makes c-ares report SERVFAIL, REFUSED and NOTIMP as
 * they are; without it c-ares skips a server that gives them and, once none is
 * left, reports only "connection refused".  With several servers that skipping
 * is worth more than the precise reason, so it stays on.
 */
static int channel_new(ares_channel *channel, size_t n_servers, const char *resolv_conf,
		       char *err, size_t errlen)
{
	struct ares_options opts;
	char lookups[] = "b";
	int mask, status;

	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	if (n_servers == 1)
		opts.flags |= ARES_FLAG_NOCHECKRESP;
	opts.timeout = TRY_TIMEOUT_MS;
	opts.tries = TRIES;
	opts.lookups = lookups; /* DNS only, never /etc/hosts */
	mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
	if (resolv_conf) {
		opts.resolvconf_path = (char *)resolv_conf;
		mask |= ARES_OPT_RESOLVCONF;
	} else {
		/*
		 * The caller's servers, set afterwards, asked in their order;
		 * with servers, domains, ndots and sortlist all given, c-ares
		 * does not read /etc/resolv.conf at all.
		 */
		opts.nservers = 0;
		opts.ndomains = 0;
		opts.ndots = 1;
		opts.nsort = 0;
		mask |= ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_NDOTS | ARES_OPT_SORTLIST |
			ARES_OPT_NOROTATE;
	}

	status = ares_init_options(channel, &opts, mask);
	if (status != ARES_SUCCESS) {
		*channel = NULL;
		if (resolv_conf)
			set_err(err, errlen, "cannot set up a resolver from '%s': %s", resolv_conf,
				ares_strerror(status));
		else
			set_err(err, errlen, "cannot set up a resolver: %s", ares_strerror(status));
		return status == ARES_ENOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

static int resolver_alloc(struct cgf_resolver **out, char *err, size_t errlen)
{
	int status = ares_library_init(ARES_LIB_INIT_ALL);

	if (status != ARES_SUCCESS) {
		set_err(err, errlen, "cannot initialize c-ares: %s", ares_strerror(status));
		return -EIO;
	}
	*out = calloc(1, sizeof(**out));
	if (!*out) {
		ares_library_cleanup();
		set_err(err, errlen, "cannot set up a resolver: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

static int resolver_new_servers(struct cgf_resolver **out, const struct cgf_server *servers,
				size_t n_servers, char *err, size_t errlen)
{
	struct ares_addr_port_node *nodes = NULL;
	struct cgf_resolver *res = NULL;
	char name[INET6_ADDRSTRLEN + 8];
	int ret, status;
	size_t i;

	if (n_servers > INT_MAX / 2) {
		set_err(err, errlen, "cannot set up a resolver: too many servers");
		return -EINVAL;
	}
	for (i = 0; i < n_servers; i++) {
		const struct cgf_server *s = &servers[i];

		if (s->family != AF_INET && s->family != AF_INET6) {
			set_err(err, errlen, "bad resolver address: unknown family %d", s->family);
			return -EINVAL;
		}
		if (s->port == 0) {
			format_server(s, name, sizeof(name));
			set_err(err, errlen, "bad resolver address '%s': port 0", name);
			return -EINVAL;
		}
	}

	ret = resolver_alloc(&res, err, errlen);
	if (ret)
		return ret;
	res->servers = calloc(n_servers, sizeof(*res->servers));
	nodes = calloc(n_servers, sizeof(*nodes));
	if (!res->servers || !nodes) {
		set_err(err, errlen, "cannot set up a resolver: %s", strerror(ENOMEM));
		ret = -ENOMEM;
		goto out;
	}
	memcpy(res->servers, servers, n_servers * sizeof(*servers));
	res->n_servers = n_servers;

	ret = channel_new(&res->channel, n_servers, NULL, err, errlen);
	if (ret)
		goto out;

	for (i = 0; i < n_servers; i++) {
		nodes[i].next = i + 1 < n_servers ? &nodes[i + 1] : NULL;
		nodes[i].family = servers[i].family;
		if (servers[i].family == AF_INET)
			memcpy(&nodes[i].addr.addr4, servers[i].addr, 4);
		else
			memcpy(&nodes[i].addr.addr6, servers[i].addr, 16);
		nodes[i].udp_port = servers[i].port;
		nodes[i].tcp_port = servers[i].port;
	}
	status = ares_set_servers_ports(res->channel, nodes);
	if (status != ARES_SUCCESS) {
		set_err(err, errlen, "cannot set the resolver's servers: %s", ares_strerror(status));
		ret = status == ARES_ENOMEM ? -ENOMEM : -EINVAL;
		goto out;
	}
	ret = 0;
out:
	free(nodes);
	if (ret) {
		cgf_resolver_free(res);
		res = NULL;
	}
	*out = res;
	return ret;
}

/*
 * The addresses of the nameserver lines of a resolv.conf, as c-ares reads them
 * ("nameserver ADDR[ ,ADDR...]", '#' and ';' start comments).  c-ares itself
 * falls back to 127.0.0.1 when it finds none; this list is what tells that
 * fallback apart from a real "nameserver 127.0.0.1".
 */
static int read_conf_nameservers(const char *path, struct cgf_server **out, size_t *n_out,
				 char *err, size_t errlen)
{
	struct cgf_server *list = NULL, *grown, s;
	size_t n = 0, cap = 0, linecap = 0;
	char *line = NULL, *p, *tok, *save;
	int ret = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		set_err(err, errlen, "cannot read '%s': %s", path, strerror(-ret));
		return ret;
	}
	while (getline(&line, &linecap, f) > 0) {
		line[strcspn(line, "#;\n")] = '\0';
		p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "nameserver", 10) || !isspace((unsigned char)p[10]))
			continue;
		for (tok = strtok_r(p + 10, " \t\r\f\v,", &save); tok;
		     tok = strtok_r(NULL, " \t\r\f\v,", &save)) {
			memset(&s, 0, sizeof(s));
			s.port = DNS_PORT;
			if (inet_pton(AF_INET, tok, s.addr) == 1)
				s.family = AF_INET;
			else if (inet_pton(AF_INET6, tok, s.addr) == 1)
				s.family = AF_INET6;
			else
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 4;
				grown = reallocarray(list, cap, sizeof(*list));
				if (!grown) {
					ret = -ENOMEM;
					goto out;
				}
				list = grown;
			}
			list[n++] = s;
		}
	}
	if (ferror(f)) {
		ret = -EIO;
		set_err(err, errlen, "cannot read '%s': %s", path, strerror(EIO));
	}
out:
	if (ret == -ENOMEM)
		set_err(err, errlen, "cannot read '%s': %s", path, strerror(ENOMEM));
	free(line);
	fclose(f);
	if (ret) {
		free(list);
		return ret;
	}
	*out = list;
	*n_out = n;
	return 0;
}

static bool server_listed(const struct cgf_server *s, const struct cgf_server *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (list[i].family == s->family &&
		    !memcmp(list[i].addr, s->addr, s->family == AF_INET ? 4 : 16))
			return true;
	return false;
}

int cgf_resolver_new_conf(struct cgf_resolver **out, const char *resolv_conf, char *err,
			  size_t errlen)
{
	struct ares_addr_port_node *nodes = NULL, *node;
	struct cgf_server *listed = NULL, s;
	struct cgf_resolver *res = NULL;
	size_t n_listed = 0, n = 0, cap = 0;
	int ret, status;

	if (!out || !resolv_conf) {
		set_err(err, errlen, "cannot set up a resolver: bad arguments");
		return -EINVAL;
	}
	*out = NULL;
	ret = read_conf_nameservers(resolv_conf, &listed, &n_listed, err, errlen);
	if (ret)
		return ret;
	if (!n_listed) {
		set_err(err, errlen, "no nameserver in '%s'", resolv_conf);
		ret = -ENOENT;
		goto out;
	}

	ret = resolver_alloc(&res, err, errlen);
	if (ret)
		goto out;
	ret = channel_new(&res->channel, n_listed, resolv_conf, err, errlen);
	if (ret)
		goto out;
	status = ares_get_servers_ports(res->channel, &nodes);
	if (status != ARES_SUCCESS) {
		set_err(err, errlen, "cannot read the servers of '%s': %s", resolv_conf,
			ares_strerror(status));
		ret = status == ARES_ENOMEM ? -ENOMEM : -EIO;
		goto out;
	}
	for (node = nodes; node; node = node->next)
		cap++;
	res->servers = calloc(cap ? cap : 1, sizeof(*res->servers));
	if (!res->servers) {
		set_err(err, errlen, "cannot set up a resolver: %s", strerror(ENOMEM));
		ret = -ENOMEM;
		goto out;
	}
	for (node = nodes; node; node = node->next) {
		memset(&s, 0, sizeof(s));
		s.family = node->family;
		if (node->family == AF_INET)
			memcpy(s.addr, &node->addr.addr4, 4);
		else if (node->family == AF_INET6)
			memcpy(s.addr, &node->addr.addr6, 16);
		else
			continue;
		/* resolv.conf has no ports: 0 stands for the channel's, 53. */
		s.port = node->udp_port > 0 && node->udp_port <= 65535 ? (uint16_t)node->udp_port
								       : DNS_PORT;
		if (server_listed(&s, listed, n_listed))
			res->servers[n++] = s;
	}
	res->n_servers = n;
	if (!n) {
		set_err(err, errlen, "no usable nameserver in '%s'", resolv_conf);
		ret = -ENOENT;
		goto out;
	}
	ret = 0;
out:
	ares_free_data(nodes);
	free(listed);
	if (ret) {
		cgf_resolver_free(res);
		res = NULL;
	}
	*out = res;
	return ret;
}

int cgf_resolver_new(struct cgf_resolver **out, const struct cgf_server *servers,
		     size_t n_servers, char *err, size_t errlen)
{
	if (!out || (n_servers && !servers)) {
		set_err(err, errlen, "cannot set up a resolver: bad arguments");
		return -EINVAL;
	}
	*out = NULL;
	if (!n_servers)
		return cgf_resolver_new_conf(out, "/etc/resolv.conf", err, errlen);
	return resolver_new_servers(out, servers, n_servers, err, errlen);
}

size_t cgf_resolver_servers(const struct cgf_resolver *res, const struct cgf_server **servers)
{
	*servers = res->servers;
	return res->n_servers;
}

void cgf_resolver_free(struct cgf_resolver *res)
{
	if (!res)
		return;
	if (res->channel)
		ares_destroy(res->channel);
	free(res->servers);
	free(res);
	ares_library_cleanup();
}

/* The number of answer records a reply claims: an upper bound on addresses. */
static int reply_ancount(const unsigned char *abuf, int alen)
{
	if (!abuf || alen < DNS_HEADER_LEN)
		return 0;
	return (abuf[6] << 8) | abuf[7];
}

static uint32_t clamp_ttl(int ttl)
{
	return ttl < 0 ? 0 : (uint32_t)ttl; /* RFC 2181: a TTL with the top bit set is 0 */
}

static int parse_reply(struct part *q, const unsigned char *abuf, int alen)
{
	struct ares_addr6ttl *a6 = NULL;
	struct ares_addrttl *a4 = NULL;
	int cap = reply_ancount(abuf, alen), n, status, i;

	if (cap == 0)
		return ARES_ENODATA;
	/* An address record takes 15 bytes at least: no huge arrays for a lie. */
	if (cap > alen / 15)
		cap = alen / 15 > 0 ? alen / 15 : 1;
	n = cap;
	if (q->family == AF_INET) {
		a4 = calloc((size_t)cap, sizeof(*a4));
		if (!a4)
			return ARES_ENOMEM;
		status = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
	} else {
		a6 = calloc((size_t)cap, sizeof(*a6));
		if (!a6)
			return ARES_ENOMEM;
		status = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	}
	if (status == ARES_SUCCESS && n > 0) {
		q->answers = calloc((size_t)n, sizeof(*q->answers));
		if (!q->answers) {
			status = ARES_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			struct cgf_answer *ans = &q->answers[i];

			ans->family = q->family;
			if (a4) {
				memcpy(ans->addr, &a4[i].ipaddr, 4);
				ans->ttl = clamp_ttl(a4[i].ttl);
			} else {
				memcpy(ans->addr, &a6[i].ip6addr, 16);
				ans->ttl = clamp_ttl(a6[i].ttl);
			}
		}
		q->n_answers = (size_t)n;
	}
out:
	free(a4);
	free(a6);
	return status;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Why a query failed, for the message. */
static const char *status_reason(int status, size_t n_servers)
{
	switch (status) {
	case ARES_ENOTFOUND:
		return "no such domain (NXDOMAIN)";
	case ARES_ESERVFAIL:
		return "server failure (SERVFAIL)";
	case ARES_EREFUSED:
		return "query refused (REFUSED)";
	case ARES_ENOTIMP:
		return "query not implemented by the server (NOTIMP)";
	case ARES_EFORMERR:
		return "server could not read the query (FORMERR)";
	case ARES_EBADRESP:
		return "malformed answer";
	case ARES_EOF:
		return "server closed the connection";
	case ARES_ECONNREFUSED:
		/* See channel_new(): with several servers this hides the rcode. */
		return n_servers == 1 ? "connection refused"
				      : "no server answered (connection refused, SERVFAIL or REFUSED)";
	case ARES_EBADNAME:
		return "bad name";
	case ARES_ENOMEM:
		return strerror(ENOMEM);
	default:
		return ares_strerror(status);
	}
}

/* Which failure to report when both queries failed: the most telling one. */
static int failure_rank(int status)
{
	switch (status) {
	case ARES_SUCCESS:
	case ARES_ENODATA:
		return 0;
	case ARES_ETIMEOUT:
	case ARES_ECANCELLED:
		return 1;
	case ARES_ENOTFOUND:
		return 3;
	default:
		return 2;
	}
}

/* Sets a query's message: "cannot resolve 'NAME': REASON". */
static void query_fail(struct cgf_query *q, int status, const char *reason)
{
	q->status = status;
	if (q->name)
		set_err(q->err, sizeof(q->err), "cannot resolve '%s': %s", q->name, reason);
	else
		set_err(q->err, sizeof(q->err), "cannot resolve: %s", reason);
}

/* What is refused before anything is sent: -EINVAL with the message in err. */
static int check_name(const char *name, char *err, size_t errlen)
{
	size_t len;

	if (!name) {
		set_err(err, errlen, "cannot resolve: no name given");
		return -EINVAL;
	}
	len = strlen(name);
	if (len == 0 || len > DNS_NAME_MAX + (name[len - 1] == '.')) {
		set_err(err, errlen, "cannot resolve '%s': not a domain name", name);
		return -EINVAL;
	}
	return 0;
}

static void lookup_free_parts(struct lookup *lk)
{
	for (int i = 0; i < 2; i++) {
		free(lk->parts[i].answers);
		lk->parts[i].answers = NULL;
		lk->parts[i].n_answers = 0;
	}
}

/* Marks a lookup done, with its query's outputs set. */
static void lookup_end(struct lookup *lk)
{
	lookup_free_parts(lk);
	if (lk->state == L_SENT)
		lk->b->inflight--;
	lk->state = L_DONE;
	lk->b->done++;
}

/*
 * Judges a lookup whose two queries are done, at now.  Both queries are judged
 * together:
 *  - addresses from either query make the lookup a success, even when the other
 *    query failed (SERVFAIL, timeout): what is known is returned, and a later
 *    refresh fills in the other family.  Dropping the addresses that did come
 *    would cut connections for a resolver's hiccup on the other family;
 *  - NOERROR without addresses (NODATA) for both: success with no answers;
 *  - otherwise the failure: NXDOMAIN (from either query: it is about the name,
 *    not the type) before a server failure before a timeout.
 */
static void lookup_judge(struct lookup *lk, int64_t now)
{
	const struct part *qs = lk->parts, *bad;
	struct cgf_query *q = lk->q;
	size_t n = qs[0].n_answers + qs[1].n_answers, i;
	size_t n_servers = lk->b->res->n_servers;
	int timeout_ms = lk->b->timeout_ms;
	struct cgf_answer *all;
	int ret;

	if (n) {
		all = calloc(n, sizeof(*all));
		if (!all) {
			query_fail(q, -ENOMEM, strerror(ENOMEM));
			goto out;
		}
		for (i = 0; i < qs[0].n_answers; i++)
			all[i] = qs[0].answers[i];
		for (i = 0; i < qs[1].n_answers; i++)
			all[qs[0].n_answers + i] = qs[1].answers[i];
		q->answers = all;
		q->n_answers = n;
		q->status = 0;
		goto out;
	}

	bad = failure_rank(qs[1].status) > failure_rank(qs[0].status) ? &qs[1] : &qs[0];
	ret = ares_to_errno(bad->status);
	q->status = ret;
	if (!ret)
		goto out; /* NODATA for both */
	if (ret == -ETIMEDOUT)
		set_err(q->err, sizeof(q->err), "cannot resolve '%s': timed out after %lld ms",
			q->name,
			(long long)(bad->status == ARES_ECANCELLED ? timeout_ms : now - lk->sent_ms));
	else if (failure_rank(qs[0].status) != failure_rank(qs[1].status) &&
		 (failure_rank(qs[0].status) == 0 || failure_rank(qs[1].status) == 0))
		set_err(q->err, sizeof(q->err), "cannot resolve '%s': %s (%s query)", q->name,
			status_reason(bad->status, n_servers), bad->type);
	else
		set_err(q->err, sizeof(q->err), "cannot resolve '%s': %s", q->name,
			status_reason(bad->status, n_servers));
out:
	lookup_end(lk);
}

/*
 * The callback of every query.  A lookup judged already (at its deadline, or
 * when the batch failed) ignores it: its queries stayed in the channel until
 * they end or until ares_cancel() at the end of the batch.
 */
static void query_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct part *p = arg;
	struct lookup *lk = p->lk;

	(void)timeouts;
	if (lk->state != L_SENT || p->done)
		return;
	if (status == ARES_SUCCESS)
		status = parse_reply(p, abuf, alen);
	p->status = status;
	p->done = true;
	if (lk->parts[0].done && lk->parts[1].done)
		lookup_judge(lk, now_ms());
}

/* Sends both queries of a lookup; either may end at once (a bad name). */
static void lookup_send(struct batch *b, struct lookup *lk, int64_t now)
{
	lk->state = L_SENT;
	lk->sent_ms = now;
	lk->deadline_ms = now + b->timeout_ms;
	b->inflight++;
	ares_query(b->res->channel, lk->q->name, ns_c_in, ns_t_a, query_done, &lk->parts[0]);
	if (lk->state == L_SENT)
		ares_query(b->res->channel, lk->q->name, ns_c_in, ns_t_aaaa, query_done,
			   &lk->parts[1]);
}

/*
 * Judges the lookups whose deadline has passed, what did not come counting as
 * cancelled (a timeout), and moves b->oldest to the first lookup still sent.
 */
static void lookups_expire(struct batch *b, int64_t now)
{
	while (b->oldest < b->next) {
		struct lookup *lk = &b->lks[b->oldest];

		if (lk->state == L_SENT) {
			if (lk->deadline_ms > now)
				break;
			for (int i = 0; i < 2; i++) {
				if (!lk->parts[i].done) {
					lk->parts[i].status = ARES_ECANCELLED;
					lk->parts[i].done = true;
				}
			}
			lookup_judge(lk, now);
		}
		b->oldest++;
	}
}

/*
 * Runs c-ares until every lookup is done, sending new ones as others end.
 * Returns 0 or a negative errno when poll() itself fails.
 */
static int batch_run(struct batch *b, size_t max_inflight)
{
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct timeval maxtv, tv, *tvp;
	int64_t now, left, wait;
	int bits, nfds, i, r;
	size_t sent;
	bool more;

	for (;;) {
		now = now_ms();
		lookups_expire(b, now);
		for (sent = 0; sent < SEND_BURST && b->inflight < max_inflight && b->next < b->n;) {
			struct lookup *lk = &b->lks[b->next++];

			if (lk->state != L_WAITING)
				continue; /* refused before sending */
			lookup_send(b, lk, now_ms());
			sent++;
		}
		lookups_expire(b, now); /* moves past lookups that ended at once */
		if (b->done == b->n)
			return 0;

		bits = ares_getsock(b->res->channel, socks, ARES_GETSOCK_MAXNUM);
		nfds = 0;
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short events = 0;

			/*
			 * c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit for
			 * the last socket (undefined): the same bits, tested unsigned.
			 */
			if (((unsigned int)bits >> i) & 1)
				events |= POLLIN;
			if (((unsigned int)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1)
				events |= POLLOUT;
			if (!events)
				continue;
			pfd[nfds].fd = socks[i];
			pfd[nfds].events = events;
			pfd[nfds].revents = 0;
			nfds++;
		}

		/* More to send: only read what has come, then send again. */
		more = b->inflight < max_inflight && b->next < b->n;
		if (more || b->oldest >= b->next) {
			wait = 0;
		} else {
			left = b->lks[b->oldest].deadline_ms - now_ms();
			if (left < 0)
				left = 0;
			maxtv.tv_sec = left / 1000;
			maxtv.tv_usec = (left % 1000) * 1000;
			tvp = ares_timeout(b->res->channel, &maxtv, &tv);
			wait = (int64_t)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000;
			if (wait > left)
				wait = left;
		}

		r = poll(pfd, (nfds_t)nfds, (int)wait);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			/* Nothing to read: let c-ares handle its own timeouts. */
			ares_process_fd(b->res->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < nfds; i++) {
			ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				rfd = pfd[i].fd;
			if (pfd[i].revents & POLLOUT)
				wfd = pfd[i].fd;
			if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
				ares_process_fd(b->res->channel, rfd, wfd);
		}
	}
}

int cgf_resolve_batch(struct cgf_resolver *res, struct cgf_query *queries, size_t n,
		      int timeout_ms, size_t max_inflight)
{
	struct batch b = { .res = res, .n = n, .timeout_ms = timeout_ms };
	char reason[64];
	size_t i;
	int ret;

	if (n && !queries)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		queries[i].status = 0;
		queries[i].err[0] = '\0';
		queries[i].answers = NULL;
		queries[i].n_answers = 0;
	}
	if (!res || timeout_ms <= 0 || !max_inflight) {
		if (!res || !max_inflight)
			snprintf(reason, sizeof(reason), "bad arguments");
		else
			snprintf(reason, sizeof(reason), "timeout of %d ms", timeout_ms);
		for (i = 0; i < n; i++)
			query_fail(&queries[i], -EINVAL, reason);
		return -EINVAL;
	}
	if (!n)
		return 0;

	b.lks = calloc(n, sizeof(*b.lks));
	if (!b.lks) {
		for (i = 0; i < n; i++)
			query_fail(&queries[i], -ENOMEM, strerror(ENOMEM));
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct lookup *lk = &b.lks[i];

		lk->b = &b;
		lk->q = &queries[i];
		lk->parts[0] = (struct part){ .lk = lk, .type = "A", .family = AF_INET };
		lk->parts[1] = (struct part){ .lk = lk, .type = "AAAA", .family = AF_INET6 };
		lk->state = L_WAITING;
		queries[i].status = check_name(queries[i].name, queries[i].err,
					       sizeof(queries[i].err));
		if (queries[i].status)
			lookup_end(lk);
	}

	ret = batch_run(&b, max_inflight);
	if (ret) {
		snprintf(reason, sizeof(reason), "poll: %s", strerror(-ret));
		for (i = 0; i < n; i++) {
			if (b.lks[i].state == L_DONE)
				continue;
			query_fail(&queries[i], ret, reason);
			lookup_end(&b.lks[i]);
		}
	}
	/*
	 * Every lookup is done; the queries left in the channel (those of lookups
	 * judged at their deadline) end here, their callbacks ignored, while
	 * b.lks is still alive.
	 */
	ares_cancel(res->channel);
	for (i = 0; i < n; i++)
		lookup_free_parts(&b.lks[i]);
	free(b.lks);
	return ret;
}

/*
 * A batch of one; see cgf_resolve_batch() for how the answers are judged.
 * Bad arguments are refused here, with the caller's buffer for the message.
 */
int cgf_resolve(struct cgf_resolver *res, const char *name, int timeout_ms,
		struct cgf_answer **answers, size_t *n_answers, char *err, size_t errlen)
{
	struct cgf_query q = { .name = name };
	int ret;

	if (!res || !name || !answers || !n_answers) {
		set_err(err, errlen, "cannot resolve: bad arguments");
		return -EINVAL;
	}
	*answers = NULL;
	*n_answers = 0;
	ret = check_name(name, err, errlen);
	if (ret)
		return ret;
	if (timeout_ms <= 0) {
		set_err(err, errlen, "cannot resolve '%s': timeout of %d ms", name, timeout_ms);
		return -EINVAL;
	}

	cgf_resolve_batch(res, &q, 1, timeout_ms, 1);
	if (q.status) {
		set_err(err, errlen, "%s", q.err);
		free(q.answers);
		return q.status;
	}
	*answers = q.answers;
	*n_answers = q.n_answers;
	return 0;
}

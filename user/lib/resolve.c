// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * DNS resolution with TTLs, through c-ares.
 *
 * Every lookup is an A and an AAAA query sent with ares_query() (never
 * ares_search(): the names of a policy are absolute, no search domain is ever
 * appended, and /etc/hosts is never read), then a poll() loop that stops at the
 * caller's deadline.  The answers are parsed with ares_parse_a_reply() and
 * ares_parse_aaaa_reply(), which give each address the TTL of its record (or of
 * a CNAME on the way to it, when that is shorter).
 *
 * A resolver is not thread-safe: one cgf_resolve() at a time per resolver, and
 * resolvers made or freed in one thread only (c-ares 1.18 counts its library
 * initialisations without a lock).
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

/* One query of a lookup (A or AAAA) and what came back. */
struct query {
	const char *type; /* "A" or "AAAA" */
	int family;
	bool done;
	int status; /* ARES_*; ARES_ECANCELLED when our deadline ended it */
	struct cgf_answer *answers;
	size_t n_answers;
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

static int parse_reply(struct query *q, const unsigned char *abuf, int alen)
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

static void query_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		status = parse_reply(q, abuf, alen);
	q->status = status;
	q->done = true;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Runs c-ares until both queries are done or the deadline passes; then cancels
 * what is left (its callback sees ARES_ECANCELLED).  Returns 0 or a negative
 * errno when poll() itself fails.
 */
static int run_queries(struct cgf_resolver *res, struct query *qs, size_t n, int64_t deadline)
{
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct timeval maxtv, tv, *tvp;
	int64_t left, wait;
	int bits, nfds, i, r, ret = 0;
	size_t k;

	for (;;) {
		for (k = 0; k < n && qs[k].done; k++)
			;
		if (k == n)
			break;
		left = deadline - now_ms();
		if (left <= 0)
			break;

		bits = ares_getsock(res->channel, socks, ARES_GETSOCK_MAXNUM);
		nfds = 0;
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short events = 0;

			if (ARES_GETSOCK_READABLE(bits, i))
				events |= POLLIN;
			if (ARES_GETSOCK_WRITABLE(bits, i))
				events |= POLLOUT;
			if (!events)
				continue;
			pfd[nfds].fd = socks[i];
			pfd[nfds].events = events;
			pfd[nfds].revents = 0;
			nfds++;
		}

		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(res->channel, &maxtv, &tv);
		wait = (int64_t)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000;
		if (wait > left)
			wait = left;

		r = poll(pfd, (nfds_t)nfds, (int)wait);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (r == 0) {
			/* Nothing to read: let c-ares handle its own timeouts. */
			ares_process_fd(res->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < nfds; i++) {
			ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				rfd = pfd[i].fd;
			if (pfd[i].revents & POLLOUT)
				wfd = pfd[i].fd;
			if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
				ares_process_fd(res->channel, rfd, wfd);
		}
	}
	/* Cancels every query still pending; both of them are ours. */
	ares_cancel(res->channel);
	return ret;
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

/*
 * Both queries are judged together:
 *  - addresses from either query make the lookup a success, even when the other
 *    query failed (SERVFAIL, timeout): what is known is returned, and a later
 *    refresh fills in the other family.  Dropping the addresses that did come
 *    would cut connections for a resolver's hiccup on the other family;
 *  - NOERROR without addresses (NODATA) for both: success with no answers;
 *  - otherwise the failure: NXDOMAIN (from either query: it is about the name,
 *    not the type) before a server failure before a timeout.
 */
int cgf_resolve(struct cgf_resolver *res, const char *name, int timeout_ms,
		struct cgf_answer **answers, size_t *n_answers, char *err, size_t errlen)
{
	struct query qs[2] = {
		{ .type = "A", .family = AF_INET },
		{ .type = "AAAA", .family = AF_INET6 },
	};
	struct cgf_answer *all = NULL;
	size_t len, n, i;
	int64_t start, elapsed;
	const struct query *bad;
	int ret;

	if (!res || !name || !answers || !n_answers) {
		set_err(err, errlen, "cannot resolve: bad arguments");
		return -EINVAL;
	}
	*answers = NULL;
	*n_answers = 0;
	len = strlen(name);
	if (len == 0 || len > DNS_NAME_MAX + (name[len - 1] == '.')) {
		set_err(err, errlen, "cannot resolve '%s': not a domain name", name);
		return -EINVAL;
	}
	if (timeout_ms <= 0) {
		set_err(err, errlen, "cannot resolve '%s': timeout of %d ms", name, timeout_ms);
		return -EINVAL;
	}

	start = now_ms();
	ares_query(res->channel, name, ns_c_in, ns_t_a, query_done, &qs[0]);
	ares_query(res->channel, name, ns_c_in, ns_t_aaaa, query_done, &qs[1]);
	ret = run_queries(res, qs, 2, start + timeout_ms);
	elapsed = now_ms() - start;
	if (ret) {
		set_err(err, errlen, "cannot resolve '%s': poll: %s", name, strerror(-ret));
		goto out;
	}

	n = qs[0].n_answers + qs[1].n_answers;
	if (n) {
		all = calloc(n, sizeof(*all));
		if (!all) {
			set_err(err, errlen, "cannot resolve '%s': %s", name, strerror(ENOMEM));
			ret = -ENOMEM;
			goto out;
		}
		for (i = 0; i < qs[0].n_answers; i++)
			all[i] = qs[0].answers[i];
		for (i = 0; i < qs[1].n_answers; i++)
			all[qs[0].n_answers + i] = qs[1].answers[i];
		*answers = all;
		*n_answers = n;
		ret = 0;
		goto out;
	}

	bad = failure_rank(qs[1].status) > failure_rank(qs[0].status) ? &qs[1] : &qs[0];
	ret = ares_to_errno(bad->status);
	if (!ret)
		goto out; /* NODATA for both */
	if (ret == -ETIMEDOUT)
		set_err(err, errlen, "cannot resolve '%s': timed out after %lld ms", name,
			(long long)(bad->status == ARES_ECANCELLED ? timeout_ms : elapsed));
	else if (failure_rank(qs[0].status) != failure_rank(qs[1].status) &&
		 (failure_rank(qs[0].status) == 0 || failure_rank(qs[1].status) == 0))
		set_err(err, errlen, "cannot resolve '%s': %s (%s query)", name,
			status_reason(bad->status, res->n_servers), bad->type);
	else
		set_err(err, errlen, "cannot resolve '%s': %s", name,
			status_reason(bad->status, res->n_servers));
out:
	free(qs[0].answers);
	free(qs[1].answers);
	return ret;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the filtering DNS proxy engine (user/lib/dnsproxy.c).
 *
 * The engine runs with real sockets on 127.0.0.1 (ports picked by the kernel)
 * against a fake upstream in this process: a UDP socket and a TCP listener
 * whose answers each test controls (CNAME chains, TC, silence, SERVFAIL,
 * delays) and which counts every query that reaches it.  One thread drives
 * the engine and the fake in turn (pump()).  The client side is plain sockets.
 *
 * allow() checks, when it is called, that no answer is waiting at the client
 * socket yet: the fence must be open before the client can read the answer.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* before ldns: without it, ldns/common.h defines _Bool as signed char */
#include <stdbool.h>
#include <ldns/ldns.h>

#include "helpers.h"

#include "dnsproxy.h"
#include "policy.h"

#define MAX_CONNS 8
#define MAX_DELAYED 128

/* ---- the fake upstream ---- */

enum up_mode { UP_ANSWER, UP_SILENT, UP_SERVFAIL, UP_GARBAGE };

struct delayed {
	int64_t at;
	struct sockaddr_storage to;
	socklen_t tolen;
	uint8_t *msg;
	size_t len;
};

struct fake_up {
	int udp, listen, conns[MAX_CONNS];
	struct sockaddr_storage addr;
	enum up_mode mode;
	int delay_ms;
	unsigned n_udp, n_tcp;      /* queries received */
	bool last_edns, last_do;    /* of the last query received */
	bool spoof;                 /* forged answers before the real one (see fake_serve) */
	uint16_t ports[64];         /* distinct source ports queries came from */
	size_t n_ports;
	uint16_t last_edns_size;
	struct delayed delayed[MAX_DELAYED];
	size_t n_delayed;
};

/* The zone the fake serves (owner, then RRs); ANSWERS for big.test. are made up. */
static const char *const zone[] = {
	"ok.test. 300 IN A 198.18.0.10",
	"ok.test. 300 IN AAAA 2001:db8::10",
	"www.test. 600 IN CNAME cdn.other.",
	"cdn.other. 120 IN CNAME edge.other.",
	"edge.other. 300 IN A 198.18.1.1",
	"edge.other. 300 IN AAAA 2001:db8::11",
	"unrelated.other. 300 IN A 198.18.6.6",
	"a.wild.test. 300 IN A 198.18.2.1",
	"wild.test. 300 IN A 198.18.2.2",
	"b.a.wild.test. 300 IN A 198.18.2.3",
	"tc.test. 300 IN A 198.18.3.1",
	"txt.test. 300 IN TXT \"hello\"",
	"loop1.test. 300 IN CNAME loop2.test.",
	"loop2.test. 300 IN CNAME loop1.test.",
	"slow.test. 300 IN A 198.18.4.1",
	"ttl.test. 5 IN A 198.18.5.1",
	NULL,
};

static struct fake_up up1, up2;

static uint8_t *make_query(const char *name, uint16_t type, uint16_t id, int edns_size,
			   bool do_bit, size_t *len);
static struct cgf_dnsproxy *proxy;

/* A socket on 127.0.0.1 or ::1, port chosen by the kernel. */
static int bind_lo_family(int family, int type, struct sockaddr_storage *out)
{
	struct sockaddr_storage a = { .ss_family = family };
	socklen_t l = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (family == AF_INET)
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, l), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	if (out)
		*out = a;
	return fd;
}

static int bind_lo(int type, struct sockaddr_storage *out)
{
	return bind_lo_family(AF_INET, type, out);
}

static void fake_start_family(struct fake_up *u, int family)
{
	memset(u, 0, sizeof(*u));
	u->udp = bind_lo_family(family, SOCK_DGRAM, &u->addr);
	/* the TCP listener on the same port as the UDP socket */
	u->listen = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(u->listen >= 0);
	setsockopt(u->listen, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	assert_int_equal(bind(u->listen, (struct sockaddr *)&u->addr,
			      family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6)), 0);
	assert_int_equal(listen(u->listen, 16), 0);
	for (int i = 0; i < MAX_CONNS; i++)
		u->conns[i] = -1;
}

static void fake_start(struct fake_up *u)
{
	fake_start_family(u, AF_INET);
}

static void fake_stop(struct fake_up *u)
{
	close(u->udp);
	close(u->listen);
	for (int i = 0; i < MAX_CONNS; i++)
		if (u->conns[i] >= 0)
			close(u->conns[i]);
	for (size_t i = 0; i < u->n_delayed; i++)
		free(u->delayed[i].msg);
	u->n_delayed = 0;
}

/* The fake's answer to a query, or NULL for none. */
static uint8_t *fake_answer(struct fake_up *u, const uint8_t *q, size_t qlen, bool tcp,
			    size_t *len)
{
	ldns_pkt *qp = NULL, *r;
	const ldns_rr *qrr;
	uint8_t *wire = NULL;
	char *name;

	if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK)
		return NULL;
	u->last_edns = ldns_pkt_edns(qp);
	u->last_do = ldns_pkt_edns_do(qp);
	u->last_edns_size = ldns_pkt_edns_udp_size(qp);
	if (u->mode == UP_SILENT) {
		ldns_pkt_free(qp);
		return NULL;
	}
	qrr = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
	name = ldns_rdf2str(ldns_rr_owner(qrr));
	for (char *c = name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	r = ldns_pkt_new();
	ldns_pkt_set_id(r, ldns_pkt_id(qp));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_rd(r, ldns_pkt_rd(qp));
	ldns_pkt_set_ra(r, true);
	ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(qrr));
	if (u->last_edns) {
		ldns_pkt_set_edns_udp_size(r, 1232);
		ldns_pkt_set_edns_do(r, u->last_do);
	}
	if (u->mode == UP_SERVFAIL) {
		ldns_pkt_set_rcode(r, LDNS_RCODE_SERVFAIL);
	} else if (!strcmp(name, "tc.test.") && !tcp) {
		/* TC, and its record cut short (below): only the question can be read */
		ldns_rr *x = NULL;

		ldns_rr_new_frm_str(&x, "tc.test. 300 IN A 198.18.3.99", 0, NULL, NULL);
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, x);
		ldns_pkt_set_tc(r, true);
	} else if (!strcmp(name, "big.test.") || !strcmp(name, "huge.test.")) {
		int n = name[0] == 'b' ? 100 : 600;

		for (int i = 0; i < n; i++) {
			char rr[128];
			ldns_rr *x = NULL;

			snprintf(rr, sizeof(rr), "%s 300 IN A 198.18.%d.%d", name, 10 + i / 200,
				 i % 200 + 1);
			assert_int_equal(ldns_rr_new_frm_str(&x, rr, 0, NULL, NULL), LDNS_STATUS_OK);
			ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, x);
		}
	} else {
		/* the RRs of the name and, after a CNAME, of its target (what a resolver does) */
		char cur[256];
		bool found = false;

		snprintf(cur, sizeof(cur), "%s", name);
		for (int hop = 0; hop < 4; hop++) {
			char next[256] = "";

			for (int i = 0; zone[i]; i++) {
				size_t l = strlen(cur);
				ldns_rr *x = NULL;

				if (strncmp(zone[i], cur, l) || zone[i][l] != ' ')
					continue;
				assert_int_equal(ldns_rr_new_frm_str(&x, zone[i], 0, NULL, NULL),
						 LDNS_STATUS_OK);
				if (ldns_rr_get_type(x) == LDNS_RR_TYPE_CNAME) {
					char *t = ldns_rdf2str(ldns_rr_rdf(x, 0));

					snprintf(next, sizeof(next), "%s", t);
					free(t);
				} else if (ldns_rr_get_type(x) != ldns_rr_get_type(qrr) &&
					   !(ldns_rr_get_type(qrr) == LDNS_RR_TYPE_A &&
					     !strcmp(cur, "edge.other."))) {
					ldns_rr_free(x);
					continue;
				}
				found = true;
				ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, x);
			}
			if (!next[0])
				break;
			snprintf(cur, sizeof(cur), "%s", next);
		}
		if (!strcmp(name, "www.test.")) {
			/* an address the chain does not reach: must not be allowed */
			ldns_rr *x = NULL;

			ldns_rr_new_frm_str(&x, zone[6], 0, NULL, NULL);
			ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, x);
		}
		if (!found)
			ldns_pkt_set_rcode(r, LDNS_RCODE_NXDOMAIN);
	}
	assert_int_equal(ldns_pkt2wire(&wire, r, len), LDNS_STATUS_OK);
	if (ldns_pkt_tc(r))
		*len -= 2;
	if (u->mode == UP_GARBAGE)
		wire[7] += 5; /* ANCOUNT beyond the message: ldns rejects it */
	free(name);
	ldns_pkt_free(r);
	ldns_pkt_free(qp);
	return wire;
}

/*
 * Before the real answer a to query q: the same answer with another address
 * from another port (an off-path forger who guessed id and port), and an
 * answer with the right id from the right port for another question.
 */
static void send_forgeries(struct fake_up *u, const uint8_t *q, size_t qlen, const uint8_t *a,
			   size_t alen, const struct sockaddr_storage *to, socklen_t tolen)
{
	uint8_t forged[4096];
	int other = bind_lo(SOCK_DGRAM, NULL);
	size_t len;
	uint8_t *wq = make_query("a.wild.test", LDNS_RR_TYPE_A, (uint16_t)(q[0] << 8 | q[1]), 0,
				 false, &len);
	uint8_t *wa;
	size_t walen;
	unsigned n_udp = u->n_udp;

	assert_true(alen <= sizeof(forged) && alen > 4);
	memcpy(forged, a, alen);
	memcpy(forged + alen - 4, "\xc6\x12\x42\x06", 4); /* 198.18.66.6 */
	sendto(other, forged, alen, 0, (const struct sockaddr *)to, tolen);
	close(other);
	wa = fake_answer(u, wq, len, false, &walen);
	assert_non_null(wa);
	sendto(u->udp, wa, walen, 0, (const struct sockaddr *)to, tolen);
	u->n_udp = n_udp;
	free(wa);
	free(wq);
	(void)qlen;
}

static void fake_serve(struct fake_up *u)
{
	uint8_t buf[4096];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;
	int64_t now = now_ms();

	for (;;) {
		uint8_t *a;
		size_t alen;

		fl = sizeof(from);
		n = recvfrom(u->udp, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		u->n_udp++;
		{
			uint16_t port = ntohs(((struct sockaddr_in *)&from)->sin_port);
			size_t i;

			for (i = 0; i < u->n_ports && u->ports[i] != port; i++)
				;
			if (i == u->n_ports && u->n_ports < 64)
				u->ports[u->n_ports++] = port;
		}
		a = fake_answer(u, buf, (size_t)n, false, &alen);
		if (!a)
			continue;
		if (u->delay_ms && u->n_delayed < MAX_DELAYED) {
			struct delayed *d = &u->delayed[u->n_delayed++];

			d->at = now + u->delay_ms;
			d->to = from;
			d->tolen = fl;
			d->msg = a;
			d->len = alen;
			continue;
		}
		if (u->spoof)
			send_forgeries(u, buf, (size_t)n, a, alen, &from, fl);
		sendto(u->udp, a, alen, 0, (struct sockaddr *)&from, fl);
		free(a);
	}
	for (size_t i = 0; i < u->n_delayed;) {
		struct delayed *d = &u->delayed[i];

		if (d->at > now) {
			i++;
			continue;
		}
		sendto(u->udp, d->msg, d->len, 0, (struct sockaddr *)&d->to, d->tolen);
		free(d->msg);
		*d = u->delayed[--u->n_delayed];
	}
	for (;;) {
		int fd = accept4(u->listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int i;

		if (fd < 0)
			break;
		for (i = 0; i < MAX_CONNS && u->conns[i] >= 0; i++)
			;
		if (i == MAX_CONNS) {
			close(fd);
			continue;
		}
		u->conns[i] = fd;
	}
	for (int i = 0; i < MAX_CONNS; i++) {
		uint8_t *a;
		size_t alen;
		uint16_t l;

		if (u->conns[i] < 0)
			continue;
		n = recv(u->conns[i], buf, 2, MSG_DONTWAIT | MSG_PEEK);
		if (n == 0) {
			close(u->conns[i]);
			u->conns[i] = -1;
			continue;
		}
		if (n < 2)
			continue;
		l = (uint16_t)(buf[0] << 8 | buf[1]);
		n = recv(u->conns[i], buf, 2 + l, MSG_DONTWAIT | MSG_PEEK);
		if (n < 2 + l)
			continue;
		recv(u->conns[i], buf, 2 + l, MSG_DONTWAIT);
		u->n_tcp++;
		a = fake_answer(u, buf + 2, l, true, &alen);
		if (a) {
			uint8_t *out = malloc(alen + 2);

			out[0] = (uint8_t)(alen >> 8);
			out[1] = (uint8_t)alen;
			memcpy(out + 2, a, alen);
			send(u->conns[i], out, alen + 2, MSG_NOSIGNAL);
			free(out);
			free(a);
		}
	}
}

/* Runs the engine and the fakes until fd is readable or ms have passed. */
static bool pump(int fd, int ms)
{
	int64_t end = now_ms() + ms;

	for (;;) {
		struct pollfd pfd[2 + 2 * (2 + MAX_CONNS)];
		int n = 0, t = (int)(end - now_ms()), et;
		struct fake_up *ups[2] = { &up1, &up2 };

		if (fd >= 0) {
			struct pollfd one = { .fd = fd, .events = POLLIN };

			if (poll(&one, 1, 0) == 1)
				return true;
		}
		if (t <= 0)
			return false;
		et = cgf_dnsproxy_timeout_ms(proxy);
		if (et >= 0 && et < t)
			t = et;
		if (t > 5)
			t = 5; /* the fakes' delayed answers */
		pfd[n++] = (struct pollfd){ .fd = cgf_dnsproxy_fd(proxy), .events = POLLIN };
		if (fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		for (int u = 0; u < 2; u++) {
			if (ups[u]->udp <= 0)
				continue;
			pfd[n++] = (struct pollfd){ .fd = ups[u]->udp, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = ups[u]->listen, .events = POLLIN };
			for (int i = 0; i < MAX_CONNS; i++)
				if (ups[u]->conns[i] >= 0)
					pfd[n++] = (struct pollfd){ .fd = ups[u]->conns[i],
								    .events = POLLIN };
		}
		poll(pfd, (nfds_t)n, t);
		assert_int_equal(cgf_dnsproxy_process(proxy), 0);
		for (int u = 0; u < 2; u++)
			if (ups[u]->udp > 0)
				fake_serve(ups[u]);
		assert_int_equal(cgf_dnsproxy_process(proxy), 0);
	}
}

/* ---- the client side ---- */

struct allowed {
	int family;
	uint8_t addr[16];
	uint32_t ttl;
	char name[256];
	bool answer_waiting; /* the client could already read an answer: a failure */
};

struct client {
	struct cgf_dnsproxy_client *c;
	struct cgf_dnsproxy_names *names;
	struct sockaddr_storage udp_addr, tcp_addr;
	int sock;           /* the test's UDP socket towards the proxy */
	int watch_fd;       /* the socket allow() checks for an early answer */
	struct allowed allowed[256];
	size_t n_allowed;
	int allow_ret;
	unsigned n_refused_log;
};

static struct client cl1, cl2;

static int allow_cb(void *ctx, int family, const uint8_t addr[16], uint32_t ttl,
		    const char *name)
{
	struct client *c = ctx;
	struct allowed *a;
	struct pollfd pfd = { .fd = c->watch_fd, .events = POLLIN };

	if (c->n_allowed >= 256)
		return -ENOSPC;
	a = &c->allowed[c->n_allowed++];
	a->family = family;
	memcpy(a->addr, addr, 16);
	a->ttl = ttl;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->answer_waiting = poll(&pfd, 1, 0) == 1;
	return c->allow_ret;
}

static void refused_cb(void *ctx, const char *name, uint16_t qtype, const char *reason)
{
	((struct client *)ctx)->n_refused_log++;
}

static void client_start(struct client *c, const char *const *rules, const uint16_t *extra,
			 size_t n_extra)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	struct cgf_dnsproxy_client_opts o = { 0 };

	memset(c, 0, sizeof(*c));
	for (int i = 0; rules[i]; i++)
		assert_int_equal(cgf_policy_add_rule(&pol, rules[i], &err), 0);
	assert_int_equal(cgf_dnsproxy_names_new(&pol, &c->names), 0);
	cgf_policy_free(&pol);
	o.udp_fd = bind_lo(SOCK_DGRAM, &c->udp_addr);
	o.tcp_fd = bind_lo(SOCK_STREAM, &c->tcp_addr);
	o.names = c->names;
	o.extra_qtypes = extra;
	o.n_extra_qtypes = n_extra;
	o.allow = allow_cb;
	o.refused = refused_cb;
	o.ctx = c;
	assert_int_equal(cgf_dnsproxy_client_add(proxy, &o, &c->c), 0);
	c->sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(c->sock >= 0);
	assert_int_equal(connect(c->sock, (struct sockaddr *)&c->udp_addr,
				 sizeof(struct sockaddr_in)), 0);
	c->watch_fd = c->sock;
}

static void client_stop(struct client *c)
{
	if (c->c)
		cgf_dnsproxy_client_remove(proxy, c->c);
	c->c = NULL;
	close(c->sock);
	cgf_dnsproxy_names_free(c->names);
}

/* A query in wire form (caller frees). */
static uint8_t *make_query(const char *name, uint16_t type, uint16_t id, int edns_size,
			   bool do_bit, size_t *len)
{
	ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN,
					 LDNS_RD);
	uint8_t *wire = NULL;

	assert_non_null(q);
	ldns_pkt_set_id(q, id);
	if (edns_size) {
		ldns_pkt_set_edns_udp_size(q, (uint16_t)edns_size);
		ldns_pkt_set_edns_do(q, do_bit);
	}
	assert_int_equal(ldns_pkt2wire(&wire, q, len), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	return wire;
}

/* Sends a query from the client's UDP socket; returns the parsed answer or NULL. */
static ldns_pkt *ask_raw(struct client *c, const uint8_t *q, size_t len, int ms, size_t *alen)
{
	uint8_t buf[65536];
	ldns_pkt *a = NULL;
	ssize_t n;

	assert_int_equal(send(c->sock, q, len, 0), (ssize_t)len);
	if (!pump(c->sock, ms))
		return NULL;
	n = recv(c->sock, buf, sizeof(buf), 0);
	assert_true(n >= 12);
	if (alen)
		*alen = (size_t)n;
	assert_int_equal(ldns_wire2pkt(&a, buf, (size_t)n), LDNS_STATUS_OK);
	return a;
}

static ldns_pkt *ask(struct client *c, const char *name, uint16_t type)
{
	size_t len;
	uint8_t *q = make_query(name, type, 0x1234, 0, false, &len);
	ldns_pkt *a = ask_raw(c, q, len, 3000, NULL);

	free(q);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_id(a), 0x1234);
	return a;
}

static int rcode_of(struct client *c, const char *name, uint16_t type)
{
	ldns_pkt *a = ask(c, name, type);
	int rc = ldns_pkt_get_rcode(a);

	ldns_pkt_free(a);
	return rc;
}

static bool was_allowed(const struct client *c, const char *addr)
{
	uint8_t b[16] = { 0 };
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;

	inet_pton(fam, addr, b);
	for (size_t i = 0; i < c->n_allowed; i++)
		if (c->allowed[i].family == fam &&
		    !memcmp(c->allowed[i].addr, b, fam == AF_INET ? 4 : 16))
			return true;
	return false;
}

/* ---- fixtures ---- */

static const char *const rules1[] = { "ok.test", "www.test", "*.wild.test", "tc.test",
				      "big.test", "huge.test", "txt.test", "slow.test", "loop1.test",
				      "ttl.test", "Mixed.Test", NULL };

/* A new engine with these options, and cl1 on it again. */
static void engine_restart(const struct cgf_dnsproxy_opts *o)
{
	client_stop(&cl1);
	cgf_dnsproxy_free(proxy);
	assert_int_equal(cgf_dnsproxy_new(o, &proxy), 0);
	client_start(&cl1, rules1, NULL, 0);
}

static int setup(void **state)
{
	struct sockaddr_storage ups[1];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 1, .timeout_ms = 400 };

	fake_start(&up1);
	ups[0] = up1.addr;
	up2.udp = 0;
	assert_int_equal(cgf_dnsproxy_new(&o, &proxy), 0);
	client_start(&cl1, rules1, NULL, 0);
	return 0;
}

static int teardown(void **state)
{
	client_stop(&cl1);
	cgf_dnsproxy_free(proxy);
	proxy = NULL;
	fake_stop(&up1);
	if (up2.udp > 0)
		fake_stop(&up2);
	up2.udp = 0;
	return 0;
}

/* ---- tests: pure functions ---- */

static void test_names(void **state)
{
	static const struct {
		const char *name;
		bool allowed;
	} cases[] = {
		{ "ok.test", true },         { "OK.TEST.", true },      { "ok.test.", true },
		{ "x.ok.test", false },      { "test", false },         { "a.wild.test", true },
		{ "b.a.wild.test", true },   { "wild.test", false },    { "xwild.test", false },
		{ "a.xwild.test", false },   { "mixed.test", true },    { "", false },
		{ "A.Wild.Test.", true },    { "wild.test.", false },   { ".", false },
		/* an escaped dot makes one label: the name "a.wild" in test, not under wild.test */
		{ "a\\.wild.test", false },  { "ok\\.test", false },
	};
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	struct cgf_dnsproxy_names *n;

	for (int i = 0; rules1[i]; i++)
		assert_int_equal(cgf_policy_add_rule(&pol, rules1[i], &err), 0);
	assert_int_equal(cgf_dnsproxy_names_new(&pol, &n), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool want = cases[i].allowed;

		if (cgf_dnsproxy_name_allowed(n, cases[i].name) != want)
			fail_msg("'%s': expected %s", cases[i].name, want ? "allowed" : "refused");
	}
	cgf_dnsproxy_names_free(n);
	cgf_policy_free(&pol);
}

/* A message by hand: header, then raw bytes. */
static size_t hand(uint8_t *out, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar,
		   const void *body, size_t blen)
{
	uint8_t h[12] = { 0xab, 0xcd, 0x01, 0x00, qd >> 8, qd & 0xff, an >> 8, an & 0xff,
			  ns >> 8, ns & 0xff, ar >> 8, ar & 0xff };

	memcpy(out, h, 12);
	memcpy(out + 12, body, blen);
	return 12 + blen;
}

#define EXPECT_FORWARD 0
#define EXPECT_DROP -1

static void test_judge(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	struct cgf_dnsproxy_names *n;
	uint8_t m[2048], resp[512], longname[330];
	size_t len, i;
	int r;
	static const uint16_t txt[] = { 16 };

	for (i = 0; rules1[i]; i++)
		assert_int_equal(cgf_policy_add_rule(&pol, rules1[i], &err), 0);
	assert_int_equal(cgf_dnsproxy_names_new(&pol, &n), 0);

	/* well-formed: forwarded; and refused ones are REFUSED with id and question */
	{
		static const struct {
			const char *name;
			uint16_t type;
			int rcode; /* -1: forwarded */
		} cases[] = {
			{ "ok.test", LDNS_RR_TYPE_A, -1 },
			{ "OK.test", LDNS_RR_TYPE_AAAA, -1 },
			{ "www.test", LDNS_RR_TYPE_CNAME, -1 },
			{ "ok.test", LDNS_RR_TYPE_HTTPS, -1 },
			{ "ok.test", LDNS_RR_TYPE_SVCB, -1 },
			{ "evil.test", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED },
			{ "wild.test", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED },
			{ "a.wild.test", LDNS_RR_TYPE_A, -1 },
			{ "ok.test", LDNS_RR_TYPE_TXT, LDNS_RCODE_REFUSED },
			{ "ok.test", LDNS_RR_TYPE_NULL, LDNS_RCODE_REFUSED },
			{ "ok.test", LDNS_RR_TYPE_ANY, LDNS_RCODE_REFUSED },
			{ "ok.test", LDNS_RR_TYPE_AXFR, LDNS_RCODE_REFUSED },
			{ "ok.test", LDNS_RR_TYPE_MX, LDNS_RCODE_REFUSED },
		};

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			uint8_t *q = make_query(cases[i].name, cases[i].type, 7, 0, false, &len);
			ldns_pkt *a = NULL;

			r = cgf_dnsproxy_judge(q, len, n, NULL, 0, resp, sizeof(resp));
			free(q);
			if (cases[i].rcode < 0) {
				if (r != 0)
					fail_msg("%s type %u: not forwarded (%d)", cases[i].name,
						 cases[i].type, r);
				continue;
			}
			if (r <= 0)
				fail_msg("%s type %u: forwarded", cases[i].name, cases[i].type);
			assert_int_equal(ldns_wire2pkt(&a, resp, (size_t)r), LDNS_STATUS_OK);
			assert_int_equal(ldns_pkt_get_rcode(a), cases[i].rcode);
			assert_int_equal(ldns_pkt_id(a), 7);
			assert_true(ldns_pkt_qr(a));
			assert_int_equal(ldns_pkt_qdcount(a), 1);
			ldns_pkt_free(a);
		}
	}
	/* extra types; never zone transfers or OPT */
	{
		static const uint16_t many[] = { 16, 255, LDNS_RR_TYPE_AXFR, LDNS_RR_TYPE_IXFR,
						 LDNS_RR_TYPE_OPT, LDNS_RR_TYPE_TSIG };
		uint8_t *q = make_query("ok.test", LDNS_RR_TYPE_TXT, 7, 0, false, &len);

		assert_int_equal(cgf_dnsproxy_judge(q, len, n, txt, 1, resp, sizeof(resp)), 0);
		free(q);
		for (i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
			q = make_query("ok.test", many[i], 7, 0, false, &len);
			r = cgf_dnsproxy_judge(q, len, n, many, 6, resp, sizeof(resp));
			free(q);
			if ((i < 2) != (r == 0))
				fail_msg("type %u with it as extra: %d", many[i], r);
		}
	}
	/* malformed: never forwarded */
	{
		static const uint8_t trunc_name[] = { 2, 'o', 'k', 4, 't', 'e' };
		static const uint8_t self_ptr[] = { 0xc0, 12, 0, 1, 0, 1 };
		static const uint8_t fwd_ptr[] = { 0xc0, 14, 0xc0, 12, 0, 1, 0, 1 };
		static const uint8_t ok_q[] = { 2, 'o', 'k', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
		static const uint8_t bad_label[] = { 0x80, 'o', 0, 0, 1, 0, 1 };
		/* ok.test A, then two TSIG and one empty RR in additional (ldns leaks on it) */
		static const uint8_t tsig[] = { 2, 'o', 'k', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
						0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0,
						0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
						0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0 };
		uint8_t two_q[sizeof(ok_q) * 2];
		uint8_t garbage[sizeof(ok_q) + 3];
		static const struct {
			const char *what;
			int qd, an, ns, ar;
			const uint8_t *body;
			size_t blen;
		} cases[] = {
			{ "truncated name", 1, 0, 0, 0, trunc_name, sizeof(trunc_name) },
			{ "question cut short", 1, 0, 0, 0, ok_q, sizeof(ok_q) - 2 },
			{ "pointer to itself", 1, 0, 0, 0, self_ptr, sizeof(self_ptr) },
			{ "pointer loop", 1, 0, 0, 0, fwd_ptr, sizeof(fwd_ptr) },
			{ "label type 0x80", 1, 0, 0, 0, bad_label, sizeof(bad_label) },
			{ "qdcount beyond the message", 3, 0, 0, 0, ok_q, sizeof(ok_q) },
			{ "ancount beyond the message", 1, 2, 0, 0, ok_q, sizeof(ok_q) },
			{ "arcount beyond the message", 1, 0, 0, 9, ok_q, sizeof(ok_q) },
			{ "no question", 0, 0, 0, 0, ok_q, 0 },
			{ "TSIG records", 1, 0, 0, 3, tsig, sizeof(tsig) },
		};

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			len = hand(m, (uint16_t)cases[i].qd, (uint16_t)cases[i].an,
				   (uint16_t)cases[i].ns, (uint16_t)cases[i].ar, cases[i].body,
				   cases[i].blen);
			r = cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp));
			if (r == 0)
				fail_msg("%s: forwarded", cases[i].what);
			if (r > 0 && (resp[3] & 0x0f) != LDNS_RCODE_FORMERR)
				fail_msg("%s: rcode %d, not FORMERR", cases[i].what, resp[3] & 0x0f);
		}
		memcpy(two_q, ok_q, sizeof(ok_q));
		memcpy(two_q + sizeof(ok_q), ok_q, sizeof(ok_q));
		len = hand(m, 2, 0, 0, 0, two_q, sizeof(two_q));
		r = cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp));
		assert_true(r > 0);
		assert_int_equal(resp[3] & 0x0f, LDNS_RCODE_FORMERR);
		/* trailing bytes after the question could carry data upstream */
		memcpy(garbage, ok_q, sizeof(ok_q));
		memcpy(garbage + sizeof(ok_q), "abc", 3);
		len = hand(m, 1, 0, 0, 0, garbage, sizeof(garbage));
		assert_true(cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp)) > 0);
		assert_int_equal(resp[3] & 0x0f, LDNS_RCODE_FORMERR);
		/* a name longer than 255 bytes: 5 labels of 63 */
		for (i = 0; i < 5; i++) {
			longname[i * 64] = 63;
			memset(longname + i * 64 + 1, 'a', 63);
		}
		{
			uint8_t body[330];

			memcpy(body, longname, 5 * 64);
			body[5 * 64] = 0;
			memcpy(body + 5 * 64 + 1, "\0\1\0\1", 4);
			len = hand(m, 1, 0, 0, 0, body, 5 * 64 + 5);
			r = cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp));
			assert_true(r != 0);
			if (r > 0)
				assert_int_equal(resp[3] & 0x0f, LDNS_RCODE_FORMERR);
		}
		/* an allowed query with an answer record: smuggling, FORMERR */
		{
			uint8_t body[sizeof(ok_q) + 16];

			memcpy(body, ok_q, sizeof(ok_q));
			memcpy(body + sizeof(ok_q),
			       "\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x10\x00\x04\x01\x02\x03\x04", 16);
			len = hand(m, 1, 1, 0, 0, body, sizeof(ok_q) + 16);
			r = cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp));
			assert_true(r > 0);
			assert_int_equal(resp[3] & 0x0f, LDNS_RCODE_FORMERR);
		}
		/* class CH, opcode STATUS: refused / not implemented, never forwarded */
		len = hand(m, 1, 0, 0, 0, ok_q, sizeof(ok_q));
		m[12 + sizeof(ok_q) - 1] = 3;
		r = cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp));
		assert_true(r > 0);
		assert_int_equal(resp[3] & 0x0f, LDNS_RCODE_REFUSED);
		len = hand(m, 1, 0, 0, 0, ok_q, sizeof(ok_q));
		m[2] = 2 << 3;
		r = cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp));
		assert_true(r > 0);
		assert_int_not_equal(resp[3] & 0x0f, 0);
		/* a response (QR) and a runt: dropped */
		len = hand(m, 1, 0, 0, 0, ok_q, sizeof(ok_q));
		m[2] |= 0x80;
		assert_int_equal(cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp)),
				 EXPECT_DROP);
		assert_int_equal(cgf_dnsproxy_judge(m, 11, n, NULL, 0, resp, sizeof(resp)),
				 EXPECT_DROP);
		len = hand(m, 1, 0, 0, 0, ok_q, sizeof(ok_q));
		assert_int_equal(cgf_dnsproxy_judge(m, len, n, NULL, 0, resp, sizeof(resp)),
				 EXPECT_FORWARD);
	}
	cgf_dnsproxy_names_free(n);
	cgf_policy_free(&pol);
}

static void test_answer_addrs(void **state)
{
	struct cgf_dnsproxy_addr a[8];
	ldns_pkt *r = ldns_pkt_new();
	uint8_t *wire;
	size_t len;
	static const char *const rrs[] = {
		"www.test. 600 IN CNAME cdn.other.", "cdn.other. 120 IN CNAME edge.other.",
		"edge.other. 300 IN A 198.18.1.1",   "edge.other. 30 IN AAAA 2001:db8::11",
		"unrelated.other. 300 IN A 198.18.6.6", "loop.other. 1 IN CNAME www.test.",
		"EDGE.other. 300 IN A 198.18.1.2",
	};
	ldns_rr *q = NULL;

	ldns_pkt_set_qr(r, true);
	ldns_rr_new_question_frm_str(&q, "WWW.test. IN A", NULL, NULL);
	ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, q);
	for (size_t i = 0; i < sizeof(rrs) / sizeof(rrs[0]); i++) {
		ldns_rr *x = NULL;

		assert_int_equal(ldns_rr_new_frm_str(&x, rrs[i], 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, x);
	}
	assert_int_equal(ldns_pkt2wire(&wire, r, &len), LDNS_STATUS_OK);
	assert_int_equal(cgf_dnsproxy_answer_addrs(wire, len, a, 8), 3);
	assert_int_equal(a[0].family, AF_INET);
	assert_memory_equal(a[0].addr, "\xc6\x12\x01\x01", 4);
	assert_int_equal(a[0].ttl, 120); /* smallest along the chain */
	assert_int_equal(a[1].family, AF_INET6);
	assert_int_equal(a[1].ttl, 30);
	assert_memory_equal(a[2].addr, "\xc6\x12\x01\x02", 4); /* owner case ignored */
	/* cap */
	assert_int_equal(cgf_dnsproxy_answer_addrs(wire, len, a, 1), 1);
	/* truncated message */
	assert_int_equal(cgf_dnsproxy_answer_addrs(wire, len - 3, a, 8), -1);
	free(wire);
	ldns_pkt_free(r);
}

/* ---- tests: the engine ---- */

static void test_resolve_allow_before_answer(void **state)
{
	ldns_pkt *a = ask(&cl1, "www.test", LDNS_RR_TYPE_A);
	struct cgf_dnsproxy_stats st;

	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 1);
	assert_true(was_allowed(&cl1, "198.18.1.1"));
	assert_true(was_allowed(&cl1, "2001:db8::11"));
	assert_false(was_allowed(&cl1, "198.18.6.6")); /* not reached from the question */
	assert_int_equal(cl1.n_allowed, 2);
	for (size_t i = 0; i < cl1.n_allowed; i++) {
		assert_false(cl1.allowed[i].answer_waiting);
		assert_string_equal(cl1.allowed[i].name, "www.test");
		assert_int_equal(cl1.allowed[i].ttl, 120);
	}
	ldns_pkt_free(a);
	cgf_dnsproxy_client_stats(cl1.c, &st);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.answered, 1);
	assert_int_equal(st.addresses_allowed, 2);
	/* the client's spelling of the question comes back (0x20 randomisation) */
	a = ask(&cl1, "Ok.TeSt", LDNS_RR_TYPE_A);
	{
		char *s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(a), 0)));

		assert_string_equal(s, "Ok.TeSt.");
		free(s);
	}
	assert_true(was_allowed(&cl1, "198.18.0.10"));
	ldns_pkt_free(a);
}

static void test_refused_never_upstream(void **state)
{
	static const struct {
		const char *name;
		uint16_t type;
		int rcode;
	} cases[] = {
		{ "evil.test", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED },
		{ "wild.test", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED },  /* the apex of *.wild.test */
		{ "xwild.test", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED }, /* a sibling */
		{ "ok.test.evil", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED },
		{ "ok.test", LDNS_RR_TYPE_TXT, LDNS_RCODE_REFUSED },
		{ "ok.test", LDNS_RR_TYPE_NULL, LDNS_RCODE_REFUSED },
		{ "ok.test", LDNS_RR_TYPE_ANY, LDNS_RCODE_REFUSED },
		{ "ok.test", LDNS_RR_TYPE_MX, LDNS_RCODE_REFUSED },
	};
	struct cgf_dnsproxy_stats st;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(rcode_of(&cl1, cases[i].name, cases[i].type), cases[i].rcode);
	pump(-1, 50);
	assert_int_equal(up1.n_udp + up1.n_tcp, 0);
	assert_int_equal(cl1.n_allowed, 0);
	cgf_dnsproxy_client_stats(cl1.c, &st);
	assert_int_equal(st.refused, sizeof(cases) / sizeof(cases[0]));
	/* a name under the wildcard goes through */
	assert_int_equal(rcode_of(&cl1, "a.wild.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 1);
	assert_true(was_allowed(&cl1, "198.18.2.1"));
}

static void test_extra_types(void **state)
{
	static const uint16_t extra[] = { LDNS_RR_TYPE_TXT };
	static const char *const rules[] = { "txt.test", NULL };
	ldns_pkt *a;

	client_start(&cl2, rules, extra, 1);
	a = ask(&cl2, "txt.test", LDNS_RR_TYPE_TXT);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(a), 1);
	ldns_pkt_free(a);
	assert_int_equal(up1.n_udp, 1);
	/* the other client did not get TXT */
	assert_int_equal(rcode_of(&cl1, "txt.test", LDNS_RR_TYPE_TXT), LDNS_RCODE_REFUSED);
	/* and NULL is still refused for cl2 */
	assert_int_equal(rcode_of(&cl2, "txt.test", LDNS_RR_TYPE_NULL), LDNS_RCODE_REFUSED);
	assert_int_equal(up1.n_udp, 1);
	client_stop(&cl2);
}

static void test_malformed_over_the_wire(void **state)
{
	static const uint8_t loop[] = { 0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
					0xc0, 12, 0, 1, 0, 1 };
	static const uint8_t counts[] = { 0xab, 0xcd, 1, 0, 0, 1, 0, 5, 0, 0, 0, 0,
					  2, 'o', 'k', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
	static const uint8_t runt[] = { 1, 2, 3 };
	size_t alen;
	ldns_pkt *a;
	struct cgf_dnsproxy_stats st;

	a = ask_raw(&cl1, loop, sizeof(loop), 500, &alen);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_FORMERR);
	assert_int_equal(ldns_pkt_id(a), 0xabcd);
	ldns_pkt_free(a);
	a = ask_raw(&cl1, counts, sizeof(counts), 500, &alen);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_FORMERR);
	ldns_pkt_free(a);
	assert_null(ask_raw(&cl1, runt, sizeof(runt), 200, &alen)); /* dropped */
	/* larger than any query (1232 bytes): FORMERR, whatever follows the header */
	{
		uint8_t big[1500] = { 0xab, 0xce, 1, 0, 0, 1 };

		memcpy(big + 12, counts + 12, sizeof(counts) - 12);
		a = ask_raw(&cl1, big, sizeof(big), 500, &alen);
		assert_non_null(a);
		assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_FORMERR);
		assert_int_equal(ldns_pkt_id(a), 0xabce);
		ldns_pkt_free(a);
	}
	assert_int_equal(up1.n_udp + up1.n_tcp, 0);
	cgf_dnsproxy_client_stats(cl1.c, &st);
	assert_int_equal(st.malformed, 4);
	/* the engine still works */
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
}

static int tcp_connect(const struct sockaddr_storage *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)a, sizeof(struct sockaddr_in)), 0);
	return fd;
}

/* One length-prefixed answer from a TCP connection, pumping the engine meanwhile. */
static ldns_pkt *tcp_read(int fd)
{
	uint8_t buf[65537];
	size_t have = 0, want = 2;
	int64_t end = now_ms() + 3000;
	ldns_pkt *a = NULL;

	while (have < want && now_ms() < end) {
		ssize_t n;

		pump(fd, 50);
		n = recv(fd, buf + have, want - have, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0)
			continue;
		have += (size_t)n;
		if (have == 2 && want == 2)
			want = 2 + (size_t)(buf[0] << 8 | buf[1]);
	}
	if (have < want || want == 2)
		return NULL;
	assert_int_equal(ldns_wire2pkt(&a, buf + 2, want - 2), LDNS_STATUS_OK);
	return a;
}

static void tcp_send_query(int fd, const char *name, uint16_t type, uint16_t id)
{
	size_t len;
	uint8_t *q = make_query(name, type, id, 0, false, &len);
	uint8_t out[2048];

	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	memcpy(out + 2, q, len);
	assert_int_equal(send(fd, out, len + 2, 0), (ssize_t)len + 2);
	free(q);
}

static void test_tcp_queries(void **state)
{
	int fd = tcp_connect(&cl1.tcp_addr);
	ldns_pkt *a, *b, *c;

	/* one query: the fence opens before the answer is on the connection */
	cl1.watch_fd = fd;
	tcp_send_query(fd, "ok.test", LDNS_RR_TYPE_A, 1);
	a = tcp_read(fd);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_true(was_allowed(&cl1, "198.18.0.10"));
	for (size_t i = 0; i < cl1.n_allowed; i++)
		assert_false(cl1.allowed[i].answer_waiting);
	ldns_pkt_free(a);
	cl1.watch_fd = cl1.sock;
	/* then three on the same connection, sent together; answers in any order */
	tcp_send_query(fd, "ok.test", LDNS_RR_TYPE_A, 2);
	tcp_send_query(fd, "evil.test", LDNS_RR_TYPE_A, 3);
	tcp_send_query(fd, "a.wild.test", LDNS_RR_TYPE_A, 4);
	a = tcp_read(fd);
	b = tcp_read(fd);
	c = tcp_read(fd);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	for (ldns_pkt *x = a; x; x = x == a ? b : x == b ? c : NULL) {
		if (ldns_pkt_id(x) == 3)
			assert_int_equal(ldns_pkt_get_rcode(x), LDNS_RCODE_REFUSED);
		else
			assert_int_equal(ldns_pkt_get_rcode(x), LDNS_RCODE_NOERROR);
	}
	assert_true(was_allowed(&cl1, "198.18.2.1"));
	assert_int_equal(up1.n_udp, 2); /* ok.test the second time from the cache */
	ldns_pkt_free(a);
	ldns_pkt_free(b);
	ldns_pkt_free(c);
	close(fd);
}

static void test_upstream_tc_retried_over_tcp(void **state)
{
	ldns_pkt *a = ask(&cl1, "tc.test", LDNS_RR_TYPE_A);

	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_false(ldns_pkt_tc(a));
	assert_int_equal(ldns_pkt_ancount(a), 1);
	assert_int_equal(up1.n_udp, 1);
	assert_int_equal(up1.n_tcp, 1);
	assert_true(was_allowed(&cl1, "198.18.3.1"));
	assert_false(was_allowed(&cl1, "198.18.3.99")); /* from the truncated answer */
	ldns_pkt_free(a);
}

static void test_big_answer_truncated_then_tcp(void **state)
{
	ldns_pkt *a = ask(&cl1, "big.test", LDNS_RR_TYPE_A);
	int fd;

	/* 100 A records do not fit 512 bytes: TC, and every address was allowed */
	assert_true(ldns_pkt_tc(a));
	assert_int_equal(ldns_pkt_ancount(a), 0);
	ldns_pkt_free(a);
	assert_int_equal(cl1.n_allowed, CGF_DNSPROXY_MAX_ADDRS);
	fd = tcp_connect(&cl1.tcp_addr);
	tcp_send_query(fd, "big.test", LDNS_RR_TYPE_A, 9);
	a = tcp_read(fd);
	assert_non_null(a);
	assert_false(ldns_pkt_tc(a));
	assert_int_equal(ldns_pkt_ancount(a), 100);
	ldns_pkt_free(a);
	close(fd);
}

static void test_edns_passed_through(void **state)
{
	size_t len, alen;
	uint8_t *q = make_query("ok.test", LDNS_RR_TYPE_A, 5, 1400, true, &len);
	ldns_pkt *a = ask_raw(&cl1, q, len, 3000, &alen);

	free(q);
	assert_non_null(a);
	assert_true(up1.last_edns);
	assert_true(up1.last_do);
	assert_int_equal(up1.last_edns_size, 1400);
	assert_true(ldns_pkt_edns(a));
	assert_true(ldns_pkt_edns_do(a));
	ldns_pkt_free(a);
	/* without OPT from the client: none upstream, none back */
	a = ask(&cl1, "a.wild.test", LDNS_RR_TYPE_A);
	assert_false(up1.last_edns);
	assert_false(ldns_pkt_edns(a));
	ldns_pkt_free(a);
}

static void test_cache_hit_allows_again(void **state)
{
	struct cgf_dnsproxy_stats st;
	ldns_pkt *a;
	uint32_t ttl0;

	assert_int_equal(rcode_of(&cl1, "ttl.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 1);
	assert_int_equal(cl1.n_allowed, 1);
	ttl0 = cl1.allowed[0].ttl;
	assert_int_equal(ttl0, 5);
	usleep(1100 * 1000);
	a = ask(&cl1, "TTL.test", LDNS_RR_TYPE_A);
	assert_int_equal(up1.n_udp, 1); /* not upstream */
	assert_int_equal(cl1.n_allowed, 2);
	assert_false(cl1.allowed[1].answer_waiting);
	assert_true(cl1.allowed[1].ttl < ttl0);
	assert_int_equal(ldns_pkt_id(a), 0x1234);
	assert_true(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(a), 0)) < 5);
	ldns_pkt_free(a);
	cgf_dnsproxy_client_stats(cl1.c, &st);
	assert_int_equal(st.cache_hits, 1);
	/* shared across clients, but names are still checked per client */
	{
		static const char *const rules[] = { "ok.test", NULL };

		client_start(&cl2, rules, NULL, 0);
		assert_int_equal(rcode_of(&cl2, "ttl.test", LDNS_RR_TYPE_A), LDNS_RCODE_REFUSED);
		assert_int_equal(cl2.n_allowed, 0);
		assert_int_equal(rcode_of(&cl2, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
		assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
		assert_int_equal(up1.n_udp, 2);
		assert_true(was_allowed(&cl2, "198.18.0.10"));
		assert_true(was_allowed(&cl1, "198.18.0.10"));
		client_stop(&cl2);
	}
	/* the entry expires with the TTL */
	usleep(4000 * 1000);
	assert_int_equal(rcode_of(&cl1, "ttl.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 3);
}

static void test_upstream_down_servfail(void **state)
{
	int64_t t0;

	up1.mode = UP_SILENT;
	t0 = now_ms();
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_SERVFAIL);
	assert_true(now_ms() - t0 >= 300); /* after the timeout, 400 ms */
	assert_int_equal(cl1.n_allowed, 0);
	assert_int_equal(up1.n_udp, 2); /* tried twice */
	up1.mode = UP_SERVFAIL;
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_SERVFAIL);
	assert_int_equal(cl1.n_allowed, 0);
}

/* A reply to the question that does not parse: the next try at once, not a timeout. */
static void test_upstream_garbage_servfail(void **state)
{
	struct sockaddr_storage ups[1];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 1, .timeout_ms = 3000 };
	int64_t t0;

	ups[0] = up1.addr;
	engine_restart(&o);
	up1.mode = UP_GARBAGE;
	t0 = now_ms();
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_SERVFAIL);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(up1.n_udp, 2);
	assert_int_equal(cl1.n_allowed, 0);
}

static void test_allow_failure_servfail(void **state)
{
	struct cgf_dnsproxy_stats st;

	/* from upstream */
	cl1.allow_ret = -ENOSPC;
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_SERVFAIL);
	assert_int_equal(up1.n_udp, 1);
	/* not cached: asked again, answered, cached */
	cl1.allow_ret = 0;
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 2);
	/* from the cache */
	cl1.allow_ret = -ENOSPC;
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_SERVFAIL);
	assert_int_equal(up1.n_udp, 2);
	cl1.allow_ret = 0;
	cgf_dnsproxy_client_stats(cl1.c, &st);
	assert_int_equal(st.servfail, 2);
}

static void test_second_upstream(void **state)
{
	struct sockaddr_storage ups[2];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 2, .timeout_ms = 1000 };

	fake_start(&up2);
	ups[0] = up1.addr;
	ups[1] = up2.addr;
	engine_restart(&o);
	up1.mode = UP_SILENT;
	/*
	 * Each query starts at a random upstream: ask until two have met the silent
	 * one first (each then answered by up2 after a retry); 40 queries all
	 * missing it has probability 2^-40.
	 */
	for (int i = 0; i < 40 && up1.n_udp < 2; i++) {
		char name[64];

		snprintf(name, sizeof(name), "n%d.wild.test", i);
		assert_int_equal(rcode_of(&cl1, name, LDNS_RR_TYPE_A), LDNS_RCODE_NXDOMAIN);
		assert_int_equal(up2.n_udp, (unsigned)i + 1);
	}
	assert_int_equal(up1.n_udp, 2);
}

static void test_inflight_cap(void **state)
{
	struct sockaddr_storage ups[1];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 1, .timeout_ms = 2000,
				       .inflight_per_client = 4 };
	static const char *const rules[] = { "ok.test", NULL };
	size_t len;
	ldns_pkt *a;

	ups[0] = up1.addr;
	engine_restart(&o);
	client_start(&cl2, rules, NULL, 0);
	up1.mode = UP_SILENT;
	for (int i = 0; i < 4; i++) {
		uint8_t *q = make_query("slow.test", LDNS_RR_TYPE_A, (uint16_t)(100 + i), 0, false,
					&len);

		send(cl1.sock, q, len, 0);
		free(q);
	}
	for (int i = 0; i < 100 && up1.n_udp < 4; i++)
		pump(-1, 10);
	assert_int_equal(up1.n_udp, 4);
	/* the fifth: SERVFAIL at once */
	a = ask(&cl1, "ok.test", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_SERVFAIL);
	ldns_pkt_free(a);
	assert_int_equal(up1.n_udp, 4);
	/* another client is not starved */
	up1.mode = UP_ANSWER;
	assert_int_equal(rcode_of(&cl2, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	client_stop(&cl2);
}

static void test_client_remove_mid_query(void **state)
{
	size_t len;
	uint8_t *q = make_query("slow.test", LDNS_RR_TYPE_A, 77, 0, false, &len);
	static const char *const rules[] = { "ok.test", NULL };

	up1.delay_ms = 150;
	send(cl1.sock, q, len, 0);
	free(q);
	for (int i = 0; i < 100 && up1.n_udp < 1; i++)
		pump(-1, 5);
	assert_int_equal(up1.n_udp, 1);
	cgf_dnsproxy_client_remove(proxy, cl1.c);
	cl1.c = NULL;
	pump(-1, 400); /* the answer arrives for nobody */
	assert_int_equal(cl1.n_allowed, 0);
	/* the engine goes on for others */
	up1.delay_ms = 0;
	client_start(&cl2, rules, NULL, 0);
	assert_int_equal(rcode_of(&cl2, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	client_stop(&cl2);
}

static void test_refused_log_rate_limited(void **state)
{
	int64_t s0 = now_ms() / 1000, s1;

	for (int i = 0; i < 40; i++)
		assert_int_equal(rcode_of(&cl1, "evil.test", LDNS_RR_TYPE_A), LDNS_RCODE_REFUSED);
	s1 = now_ms() / 1000;
	/* at most 10 in each second the loop touched (the engine counts by the same clock) */
	assert_true(cl1.n_refused_log >= 10);
	assert_true(cl1.n_refused_log <= 10 * (unsigned)(s1 - s0 + 1));
	if (s1 == s0)
		assert_int_equal(cl1.n_refused_log, 10);
}

static void test_cname_loop(void **state)
{
	/* loop1 -> loop2 -> loop1 ...: answered, nothing allowed, no hang */
	assert_int_equal(rcode_of(&cl1, "loop1.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(cl1.n_allowed, 0);
}

static void test_forged_answers_ignored(void **state)
{
	ldns_pkt *a;

	up1.spoof = true;
	a = ask(&cl1, "ok.test", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(a), 1);
	ldns_pkt_free(a);
	assert_true(was_allowed(&cl1, "198.18.0.10"));
	assert_false(was_allowed(&cl1, "198.18.66.6")); /* from another port */
	assert_false(was_allowed(&cl1, "198.18.2.1"));  /* for another question */
	assert_int_equal(cl1.n_allowed, 1);
}

static void test_set_names(void **state)
{
	static const char *const rules[] = { "evil.test", NULL };
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	struct cgf_dnsproxy_names *n;

	assert_int_equal(rcode_of(&cl1, "evil.test", LDNS_RR_TYPE_A), LDNS_RCODE_REFUSED);
	assert_int_equal(cgf_policy_add_rule(&pol, rules[0], &err), 0);
	assert_int_equal(cgf_dnsproxy_names_new(&pol, &n), 0);
	cgf_policy_free(&pol);
	cgf_dnsproxy_client_set_names(cl1.c, n);
	assert_int_equal(rcode_of(&cl1, "evil.test", LDNS_RR_TYPE_A), LDNS_RCODE_NXDOMAIN);
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_REFUSED);
	cgf_dnsproxy_client_set_names(cl1.c, cl1.names);
	cgf_dnsproxy_names_free(n);
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
}

/* Connections over the cap wait until one closes; idle ones close after tcp_idle_ms. */
static void test_tcp_limits(void **state)
{
	struct sockaddr_storage ups[1];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 1, .timeout_ms = 400,
				       .tcp_conns_per_client = 2, .tcp_idle_ms = 400 };
	int fds[3];
	uint8_t b;
	ldns_pkt *a;

	ups[0] = up1.addr;
	engine_restart(&o);
	for (int i = 0; i < 3; i++) {
		fds[i] = tcp_connect(&cl1.tcp_addr);
		pump(-1, 30);
	}
	/* the third waits in the backlog: no answer while two are open */
	tcp_send_query(fds[2], "ok.test", LDNS_RR_TYPE_A, 3);
	assert_false(pump(fds[2], 200));
	/* the first works */
	tcp_send_query(fds[0], "ok.test", LDNS_RR_TYPE_A, 1);
	a = tcp_read(fds[0]);
	assert_non_null(a);
	ldns_pkt_free(a);
	/* once it closes, the third is taken and answered */
	close(fds[0]);
	a = tcp_read(fds[2]);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_id(a), 3);
	ldns_pkt_free(a);
	/* the idle one closes */
	assert_true(pump(fds[1], 1500));
	assert_int_equal(recv(fds[1], &b, 1, MSG_DONTWAIT), 0);
	close(fds[1]);
	close(fds[2]);
	pump(-1, 50);
	/* a message that cannot be a query (over 1232 bytes): FORMERR, connection closed */
	{
		int fd = tcp_connect(&cl1.tcp_addr);
		uint8_t big[2 + 2000] = { 2000 >> 8, 2000 & 0xff, 0xab, 0xcd, 1, 0, 0, 1 };

		assert_int_equal(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
		a = tcp_read(fd);
		assert_non_null(a);
		assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_FORMERR);
		ldns_pkt_free(a);
		assert_true(pump(fd, 500));
		/* EOF, or a reset: the engine closed with the rest of the message unread */
		{
			ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);

			assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
		}
		close(fd);
	}
	assert_int_equal(up1.n_tcp, 0);
	assert_int_equal(up1.n_udp, 1);
}

/* A UDP answer larger than the engine's buffer (8 KiB) is asked again over TCP. */
static void test_huge_udp_answer_over_tcp(void **state)
{
	int fd = tcp_connect(&cl1.tcp_addr);
	ldns_pkt *a;

	tcp_send_query(fd, "huge.test", LDNS_RR_TYPE_A, 3);
	a = tcp_read(fd);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(a), 600);
	assert_int_equal(up1.n_udp, 1);
	assert_int_equal(up1.n_tcp, 1);
	assert_int_equal(cl1.n_allowed, CGF_DNSPROXY_MAX_ADDRS);
	ldns_pkt_free(a);
	close(fd);
}

/* The cache holds cache_max_entries answers; the oldest goes first. */
static void test_cache_eviction(void **state)
{
	struct sockaddr_storage ups[1];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 1, .timeout_ms = 400,
				       .cache_max_entries = 2 };

	ups[0] = up1.addr;
	engine_restart(&o);
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(rcode_of(&cl1, "a.wild.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 2); /* both cached */
	assert_int_equal(rcode_of(&cl1, "www.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 3); /* evicts ok.test, the oldest */
	assert_int_equal(rcode_of(&cl1, "a.wild.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 3);
	assert_int_equal(rcode_of(&cl1, "ok.test", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
	assert_int_equal(up1.n_udp, 4);
}

/* Upstreams of both families: each is used from a socket of its own family. */
static void test_mixed_family_upstreams(void **state)
{
	struct sockaddr_storage ups[2];
	struct cgf_dnsproxy_opts o = { .upstreams = ups, .n_upstreams = 2, .timeout_ms = 600 };

	fake_start_family(&up2, AF_INET6);
	ups[0] = up2.addr;
	ups[1] = up1.addr;
	engine_restart(&o);
	up1.mode = UP_SILENT;
	for (int i = 0; i < 4; i++) {
		char name[64];

		snprintf(name, sizeof(name), "v6-%d.wild.test", i);
		assert_int_equal(rcode_of(&cl1, name, LDNS_RR_TYPE_A), LDNS_RCODE_NXDOMAIN);
	}
	assert_int_equal(up2.n_udp, 4);
	up1.mode = UP_ANSWER;
	up2.mode = UP_SILENT;
	for (int i = 0; i < 4; i++) {
		char name[64];

		snprintf(name, sizeof(name), "v4-%d.wild.test", i);
		assert_int_equal(rcode_of(&cl1, name, LDNS_RR_TYPE_A), LDNS_RCODE_NXDOMAIN);
	}
	assert_true(up1.n_udp >= 4);
}

/* Source ports change: a socket that sent enough queries is replaced. */
static void test_source_ports_rotate(void **state)
{
	uint8_t buf[512];
	unsigned got = 0;

	for (int i = 0; i < 5000; i += 50) {
		for (int j = i; j < i + 50; j++) {
			char name[64];
			size_t len;
			uint8_t *q;

			snprintf(name, sizeof(name), "r%d.wild.test", j);
			q = make_query(name, LDNS_RR_TYPE_A, (uint16_t)j, 0, false, &len);
			send(cl1.sock, q, len, 0);
			free(q);
		}
		while (got < (unsigned)i + 50 && pump(cl1.sock, 2000))
			while (recv(cl1.sock, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				got++;
	}
	assert_int_equal(got, 5000);
	assert_int_equal(up1.n_udp, 5000);
	/* 8 sockets of 512 queries each at most: at least one new port */
	if (up1.n_ports <= 8)
		fail_msg("queries came from %zu ports only", up1.n_ports);
}

/* A client listening on ::1 (the daemon gives each fence one per family). */
static void test_ipv6_client(void **state)
{
	struct cgf_dnsproxy_client_opts o = { 0 };
	struct sockaddr_storage ua, ta;
	struct cgf_dnsproxy_client *c;
	uint8_t buf[512];
	size_t len;
	uint8_t *q = make_query("ok.test", LDNS_RR_TYPE_AAAA, 0x6666, 0, false, &len);
	int s6, t6;
	ssize_t n;
	ldns_pkt *a = NULL;

	o.udp_fd = bind_lo_family(AF_INET6, SOCK_DGRAM, &ua);
	o.tcp_fd = bind_lo_family(AF_INET6, SOCK_STREAM, &ta);
	o.names = cl1.names;
	o.allow = allow_cb;
	o.ctx = &cl1;
	assert_int_equal(cgf_dnsproxy_client_add(proxy, &o, &c), 0);
	s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(s6, (struct sockaddr *)&ua, sizeof(struct sockaddr_in6)), 0);
	cl1.watch_fd = s6;
	assert_int_equal(send(s6, q, len, 0), (ssize_t)len);
	free(q);
	assert_true(pump(s6, 3000));
	n = recv(s6, buf, sizeof(buf), 0);
	assert_true(n > 12);
	assert_int_equal(ldns_wire2pkt(&a, buf, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(a), 0x6666);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	ldns_pkt_free(a);
	assert_true(was_allowed(&cl1, "2001:db8::10"));
	assert_false(cl1.allowed[0].answer_waiting);
	/* and over TCP */
	t6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(t6, (struct sockaddr *)&ta, sizeof(struct sockaddr_in6)), 0);
	tcp_send_query(t6, "ok.test", LDNS_RR_TYPE_AAAA, 7);
	a = tcp_read(t6);
	assert_non_null(a);
	assert_int_equal(ldns_pkt_id(a), 7);
	ldns_pkt_free(a);
	close(t6);
	close(s6);
	cl1.watch_fd = cl1.sock;
	cgf_dnsproxy_client_remove(proxy, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_answer_addrs),
		cmocka_unit_test_setup_teardown(test_resolve_allow_before_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_never_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extra_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_over_the_wire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_tc_retried_over_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_answer_truncated_then_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edns_passed_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_hit_allows_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_down_servfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allow_failure_servfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_garbage_servfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_remove_mid_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_log_rate_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cname_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_answers_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_udp_answer_over_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mixed_family_upstreams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_ports_rotate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_client, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The filtering DNS proxy of proxy-mode fences (see dnsproxy.h).
 *
 * One thread, one epoll set.  A query goes:
 *   client socket -> judge (ldns parses; names, types, class, opcode)
 *     -> REFUSED / FORMERR at once, never upstream
 *     -> cache hit: allow() for the cached addresses, answer
 *     -> else a pending query: sent from one of a pool of UDP sockets bound to
 *        random ports, with a random id; the reply must come from the upstream
 *        it was sent to, carry that id and the same question; TC -> the same
 *        query over TCP; timeout or an error rcode -> the next upstream;
 *        the answer's addresses -> allow(); only then the answer is sent.
 * Objects the epoll set points to are freed at the end of process() (the
 * graveyard), so an event later in the same batch never touches freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>

/* before ldns: without it, ldns/common.h defines _Bool as signed char */
#include <stdbool.h>
#include <ldns/ldns.h>

#include "dnsproxy.h"

#define HDR 12
#define QUERY_MAX 1232       /* a larger query is FORMERR (over TCP: the connection closes) */
#define MSG_MAX 65535
#define N_UP_SOCKS 8         /* UDP sockets towards the upstreams, each on its own random port */
#define ROTATE_USES 512      /* a socket that sent this many queries gets a new port once idle */
#define MAX_EXTRA_QTYPES 32
#define CHAIN_MAX 16         /* CNAME links followed in an answer */
#define TCP_WBUF_MAX (256 * 1024)
#define CACHE_BYTES_MAX (32u * 1024 * 1024)
#define CACHE_TTL_MAX 86400u
#define REFUSED_LOG_PER_S 10
#define BATCH 32             /* client datagrams read per recvmmsg */
#define UP_BATCH 16          /* upstream datagrams read per recvmmsg */
#define UP_BUF 8192          /* a larger UDP answer is asked again over TCP */
#define OUT_BATCH 32         /* UDP answers sent per sendmmsg */
#define OUT_BUF 1232         /* larger UDP answers are sent at once, on their own */
#define EDNS_SIZE 1232       /* the payload size we announce in our own OPT records */
#define PENDING_MAX 4096     /* queries in flight, all clients: bounds their memory */

enum { RC_NOERROR = 0, RC_FORMERR = 1, RC_SERVFAIL = 2, RC_NXDOMAIN = 3, RC_NOTIMP = 4,
       RC_REFUSED = 5 };
enum { T_A = 1, T_CNAME = 5, T_AAAA = 28, T_OPT = 41, T_SVCB = 64, T_HTTPS = 65, T_TSIG = 250 };

/* ---------------------------------------------------------------------------
 * Wire helpers: only ever run on messages ldns accepted, and fuzzed anyway.
 */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* Offset after the name at off, or 0 when it runs past len or is malformed. */
static size_t skip_name(const uint8_t *m, size_t len, size_t off)
{
	for (unsigned n = 0; n < 128 && off < len; n++) {
		uint8_t l = m[off];

		if (l == 0)
			return off + 1;
		if ((l & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : 0;
		if (l & 0xc0)
			return 0;
		off += 1 + (size_t)l;
	}
	return 0;
}

/* Offset after the uncompressed name at off; 0 when compressed or past len. */
static size_t plain_name_end(const uint8_t *m, size_t len, size_t off)
{
	for (unsigned n = 0; n < 128 && off < len; n++) {
		uint8_t l = m[off];

		if (l == 0)
			return off + 1;
		if (l & 0xc0)
			return 0;
		off += 1 + (size_t)l;
	}
	return 0;
}

static inline uint8_t lc(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/*
 * The layout of a message: where the question ends, where each RR's TTL is
 * (OPT excepted), the OPT record, where the message ends.
 */
struct layout {
	size_t qname_end, qend, end;
	size_t opt_off;              /* offset of the OPT RR's owner, 0 if none */
	unsigned n_ar_other;         /* additional RRs that are not OPT */
	unsigned n_opt;              /* OPT RRs in the additional section */
	unsigned n_opt_all, n_tsig;  /* OPT and TSIG RRs in any section */
	uint16_t *ttl_off;           /* may be NULL: not collected */
	unsigned n_ttl, cap_ttl;     /* n_ttl may exceed cap_ttl: then not all kept */
};

static int walk(const uint8_t *m, size_t len, struct layout *lo)
{
	unsigned qd, an, ns, ar, i;
	size_t off;

	if (len < HDR)
		return -1;
	qd = rd16(m + 4);
	an = rd16(m + 6);
	ns = rd16(m + 8);
	ar = rd16(m + 10);
	lo->opt_off = 0;
	lo->n_ar_other = lo->n_opt = lo->n_ttl = lo->n_opt_all = lo->n_tsig = 0;
	off = HDR;
	lo->qname_end = lo->qend = HDR;
	for (i = 0; i < qd; i++) {
		off = skip_name(m, len, off);
		if (!off || off + 4 > len)
			return -1;
		if (i == 0)
			lo->qname_end = off;
		off += 4;
	}
	lo->qend = off;
	for (i = 0; i < an + ns + ar; i++) {
		size_t owner = off;
		uint16_t type, rdlen;

		off = skip_name(m, len, off);
		if (!off || off + 10 > len)
			return -1;
		type = rd16(m + off);
		rdlen = rd16(m + off + 8);
		lo->n_opt_all += type == T_OPT;
		lo->n_tsig += type == T_TSIG;
		if (i >= an + ns) {
			if (type == T_OPT) {
				lo->n_opt++;
				lo->opt_off = owner;
			} else {
				lo->n_ar_other++;
			}
		}
		if (type != T_OPT) {
			if (lo->ttl_off && lo->n_ttl < lo->cap_ttl && off + 4 <= 0xffff)
				lo->ttl_off[lo->n_ttl] = (uint16_t)(off + 4);
			lo->n_ttl++;
		}
		off += 10;
		if (off + rdlen > len)
			return -1;
		off += rdlen;
	}
	lo->end = off;
	return 0;
}

/*
 * A wire name (uncompressed) into presentation form, lower case, without the
 * trailing dot ("" for the root); bytes other than letters, digits, '-' and '_'
 * as \DDD.  out has room for 4 * 255 + 1.
 */
static void name_to_str(const uint8_t *w, char *out)
{
	char *o = out;

	for (unsigned l; (l = *w) != 0 && !(l & 0xc0); w += l + 1) {
		if (o != out)
			*o++ = '.';
		for (unsigned i = 1; i <= l; i++) {
			uint8_t c = lc(w[i]);
			bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				     c == '-' || c == '_';

			if (plain) {
				*o++ = (char)c;
			} else {
				*o++ = '\\';
				*o++ = (char)('0' + c / 100);
				*o++ = (char)('0' + c / 10 % 10);
				*o++ = (char)('0' + c % 10);
			}
		}
	}
	*o = '\0';
}

/* ---------------------------------------------------------------------------
 * Names a client may resolve: lower-case wire names, sorted, searched.
 */

struct wname {
	uint8_t len;
	uint8_t w[255];
};

struct cgf_dnsproxy_names {
	struct wname *exact, *wild;
	size_t n_exact, n_wild;
};

static int wname_cmp(const void *a, const void *b)
{
	const struct wname *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->w, y->w, x->len);
}

/* "a.example.com" (lower case, LDH, no trailing dot) into wire form. */
static int str_to_wname(const char *s, struct wname *out)
{
	size_t n = 0;

	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);

		if (l == 0 || l > 63 || n + 1 + l + 1 > 255)
			return -EINVAL;
		out->w[n++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++)
			out->w[n++] = lc((uint8_t)s[i]);
		s += l;
		if (*s == '.')
			s++;
	}
	out->w[n++] = 0;
	out->len = (uint8_t)n;
	return 0;
}

int cgf_dnsproxy_names_new(const struct cgf_policy *policy, struct cgf_dnsproxy_names **out)
{
	struct cgf_dnsproxy_names *n = calloc(1, sizeof(*n));
	size_t i, cap = 0;

	if (!n)
		return -ENOMEM;
	for (i = 0; i < policy->n_rules; i++)
		if (policy->rules[i].kind != CGF_TARGET_PREFIX)
			cap++;
	n->exact = calloc(cap ? cap : 1, sizeof(*n->exact));
	n->wild = calloc(cap ? cap : 1, sizeof(*n->wild));
	if (!n->exact || !n->wild) {
		cgf_dnsproxy_names_free(n);
		return -ENOMEM;
	}
	for (i = 0; i < policy->n_rules; i++) {
		const struct cgf_rule *r = &policy->rules[i];
		struct wname *w;

		if (r->kind == CGF_TARGET_PREFIX)
			continue;
		w = r->kind == CGF_TARGET_WILDCARD ? &n->wild[n->n_wild] : &n->exact[n->n_exact];
		if (str_to_wname(r->domain, w) < 0)
			continue; /* the policy parser never lets one through */
		if (r->kind == CGF_TARGET_WILDCARD)
			n->n_wild++;
		else
			n->n_exact++;
	}
	qsort(n->exact, n->n_exact, sizeof(*n->exact), wname_cmp);
	qsort(n->wild, n->n_wild, sizeof(*n->wild), wname_cmp);
	*out = n;
	return 0;
}

void cgf_dnsproxy_names_free(struct cgf_dnsproxy_names *n)
{
	if (!n)
		return;
	free(n->exact);
	free(n->wild);
	free(n);
}

/* w: lower-case uncompressed wire name of wlen bytes. */
static bool wname_allowed(const struct cgf_dnsproxy_names *n, const uint8_t *w, size_t wlen)
{
	struct wname key;
	size_t off;

	if (!n || wlen == 0 || wlen > 255)
		return false;
	key.len = (uint8_t)wlen;
	memcpy(key.w, w, wlen);
	if (n->n_exact && bsearch(&key, n->exact, n->n_exact, sizeof(key), wname_cmp))
		return true;
	if (!n->n_wild)
		return false;
	/* every proper suffix but the root: names strictly under a wildcard's domain */
	for (off = (size_t)w[0] + 1; off < wlen && w[off] != 0; off += (size_t)w[off] + 1) {
		key.len = (uint8_t)(wlen - off);
		memcpy(key.w, w + off, wlen - off);
		if (bsearch(&key, n->wild, n->n_wild, sizeof(key), wname_cmp))
			return true;
	}
	return false;
}

bool cgf_dnsproxy_name_allowed(const struct cgf_dnsproxy_names *n, const char *name)
{
	ldns_rdf *rdf = NULL;
	uint8_t w[255];
	size_t len, i;
	bool ok;

	if (!name || !*name || ldns_str2rdf_dname(&rdf, name) != LDNS_STATUS_OK)
		return false;
	len = ldns_rdf_size(rdf);
	if (len > sizeof(w)) {
		ldns_rdf_deep_free(rdf);
		return false;
	}
	memcpy(w, ldns_rdf_data(rdf), len);
	ldns_rdf_deep_free(rdf);
	/* lower-case the label bytes, not the length bytes */
	for (i = 0; i < len && w[i]; i += (size_t)w[i] + 1)
		for (size_t j = 1; j <= w[i] && i + j < len; j++)
			w[i + j] = lc(w[i + j]);
	ok = wname_allowed(n, w, len);
	return ok;
}

/* ---------------------------------------------------------------------------
 * Judging a query.
 */

struct qinfo {
	uint16_t id, qtype, qclass;
	uint8_t rd, cd;
	bool edns, do_bit;
	uint16_t payload;            /* UDP answer size the client accepts */
	size_t qname_len, qend, len; /* len: the message without trailing bytes */
	uint8_t qname[255];          /* lower case */
	const char *reason;
};

/* Header plus, when qend > HDR, the query's question; OPT when the query had one. */
static size_t build_error(const uint8_t *q, size_t qend, bool edns, int rcode, uint8_t *out,
			  size_t cap)
{
	size_t n = qend > HDR ? qend : HDR;

	if (cap < n + 11)
		return 0;
	memcpy(out, q, n);
	out[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, opcode and RD kept; AA, TC cleared */
	out[3] = (uint8_t)(0x80 | rcode);         /* RA */
	wr16(out + 4, qend > HDR ? 1 : 0);
	wr16(out + 6, 0);
	wr16(out + 8, 0);
	wr16(out + 10, 0);
	if (edns) {
		uint8_t *o = out + n;

		o[0] = 0;
		wr16(o + 1, T_OPT);
		wr16(o + 3, EDNS_SIZE);
		wr32(o + 5, 0);
		wr16(o + 9, 0);
		wr16(out + 10, 1);
		n += 11;
	}
	return n;
}

static bool qtype_allowed(uint16_t t, const uint16_t *extra, size_t n_extra)
{
	if (t == T_A || t == T_AAAA || t == T_CNAME || t == T_HTTPS || t == T_SVCB)
		return true;
	/* never a lookup, whatever the extra types say: OPT, TKEY, TSIG, IXFR, AXFR */
	if (t == 0 || t == T_OPT || (t >= 249 && t <= 252))
		return false;
	for (size_t i = 0; i < n_extra; i++)
		if (extra[i] == t)
			return true;
	return false;
}

/*
 * Returns 0 (forward; qi filled), > 0 (resp holds that many bytes of answer;
 * qi->reason says why), -1 (drop).  rc_out: the rcode of the answer.
 */
static int judge(const uint8_t *m, size_t len, const struct cgf_dnsproxy_names *names,
		 const uint16_t *extra, size_t n_extra, struct qinfo *qi, uint8_t *resp,
		 size_t cap, int *rc_out)
{
	struct layout lo = { 0 };
	ldns_pkt *pkt = NULL;
	int rc;

	qi->reason = NULL;
	if (len < HDR || (m[2] & 0x80))
		return -1;
	qi->id = rd16(m);
	qi->rd = m[2] & 0x01;
	qi->cd = m[3] & 0x10;
	if ((m[2] >> 3 & 0x0f) != LDNS_PACKET_QUERY) {
		qi->reason = "opcode not QUERY";
		rc = RC_NOTIMP;
		goto hdr_only;
	}
	/*
	 * Exactly one question, no answer or authority, in additional only one OPT,
	 * nothing after: checked before ldns sees the message, which leaks memory
	 * on some messages with TSIG records (found by the fuzz target).
	 */
	if (len > QUERY_MAX || walk(m, len, &lo) < 0 || rd16(m + 4) != 1 || rd16(m + 6) ||
	    rd16(m + 8) || lo.n_ar_other || lo.n_opt > 1 || lo.end != len) {
		qi->reason = "malformed";
		rc = RC_FORMERR;
		goto hdr_only;
	}
	if (ldns_wire2pkt(&pkt, m, len) != LDNS_STATUS_OK) {
		qi->reason = "malformed";
		rc = RC_FORMERR;
		goto hdr_only;
	}
	ldns_pkt_free(pkt);
	qi->qname_len = lo.qname_end - HDR;
	/* a compressed question name could only point into the header: nonsense */
	if (plain_name_end(m, len, HDR) != lo.qname_end || qi->qname_len > 255) {
		qi->reason = "malformed";
		rc = RC_FORMERR;
		goto hdr_only;
	}
	for (size_t i = 0; i < qi->qname_len;) {
		uint8_t l = m[HDR + i];

		qi->qname[i] = l;
		for (size_t j = 1; j <= l; j++)
			qi->qname[i + j] = lc(m[HDR + i + j]);
		i += (size_t)l + 1;
	}
	qi->qtype = rd16(m + lo.qname_end);
	qi->qclass = rd16(m + lo.qname_end + 2);
	qi->qend = lo.qend;
	qi->len = len;
	qi->edns = lo.n_opt == 1;
	qi->payload = 512;
	qi->do_bit = false;
	if (qi->edns) {
		size_t o = lo.opt_off + 1; /* the OPT owner is the root, ldns checked it */

		if (m[lo.opt_off] != 0) {
			qi->reason = "malformed";
			rc = RC_FORMERR;
			goto hdr_only;
		}
		if (rd16(m + o + 2) > 512)
			qi->payload = rd16(m + o + 2);
		qi->do_bit = m[o + 6] & 0x80;
	}
	if (qi->qclass != LDNS_RR_CLASS_IN) {
		qi->reason = "class not IN";
		rc = RC_REFUSED;
	} else if (!qtype_allowed(qi->qtype, extra, n_extra)) {
		qi->reason = "type not allowed";
		rc = RC_REFUSED;
	} else if (!wname_allowed(names, qi->qname, qi->qname_len)) {
		qi->reason = "name not allowed";
		rc = RC_REFUSED;
	} else {
		return 0;
	}
	*rc_out = rc;
	return (int)build_error(m, qi->qend, qi->edns, rc, resp, cap) ?: -1;
hdr_only:
	*rc_out = rc;
	qi->qname_len = 0;
	return (int)build_error(m, HDR, false, rc, resp, cap) ?: -1;
}

int cgf_dnsproxy_judge(const uint8_t *msg, size_t len, const struct cgf_dnsproxy_names *names,
		       const uint16_t *extra_qtypes, size_t n_extra_qtypes, uint8_t *resp,
		       size_t resp_cap)
{
	struct qinfo qi;
	int rc;

	return judge(msg, len, names, extra_qtypes, n_extra_qtypes, &qi, resp, resp_cap, &rc);
}

/* ---------------------------------------------------------------------------
 * Answers: the addresses reached from the question through CNAMEs.
 */

static int addrs_from_pkt(const ldns_pkt *pkt, struct cgf_dnsproxy_addr *out, size_t cap)
{
	const ldns_rr_list *qs = ldns_pkt_question(pkt), *an = ldns_pkt_answer(pkt);
	const ldns_rdf *cur;
	uint32_t chain_ttl = UINT32_MAX;
	size_t n = 0, i, count;

	if (!qs || ldns_rr_list_rr_count(qs) != 1)
		return -1;
	cur = ldns_rr_owner(ldns_rr_list_rr(qs, 0));
	if (!cur)
		return -1;
	count = an ? ldns_rr_list_rr_count(an) : 0;
	for (unsigned hop = 0; hop <= CHAIN_MAX; hop++) {
		const ldns_rdf *next = NULL;
		uint32_t next_ttl = 0;

		for (i = 0; i < count; i++) {
			const ldns_rr *rr = ldns_rr_list_rr(an, i);
			ldns_rr_type t = ldns_rr_get_type(rr);
			const ldns_rdf *rd;

			if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
			    ldns_dname_compare(ldns_rr_owner(rr), cur) != 0)
				continue;
			rd = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : NULL;
			if (!rd)
				continue;
			if (t == LDNS_RR_TYPE_CNAME && !next &&
			    ldns_rdf_get_type(rd) == LDNS_RDF_TYPE_DNAME) {
				next = rd;
				next_ttl = ldns_rr_ttl(rr);
			} else if ((t == LDNS_RR_TYPE_A && ldns_rdf_size(rd) == 4) ||
				   (t == LDNS_RR_TYPE_AAAA && ldns_rdf_size(rd) == 16)) {
				uint32_t ttl = ldns_rr_ttl(rr);

				if (n >= cap)
					continue;
				memset(&out[n], 0, sizeof(out[n]));
				out[n].family = t == LDNS_RR_TYPE_A ? AF_INET : AF_INET6;
				memcpy(out[n].addr, ldns_rdf_data(rd), ldns_rdf_size(rd));
				out[n].ttl = ttl < chain_ttl ? ttl : chain_ttl;
				n++;
			}
		}
		if (!next)
			break;
		if (next_ttl < chain_ttl)
			chain_ttl = next_ttl;
		cur = next;
	}
	return (int)n;
}

/*
 * What the engine's own code needs of an answer ldns accepted: its sections
 * walk (the cache ages TTLs at the offsets the walk finds) and the question
 * name is not compressed (the client's spelling is copied over it).
 */
static bool answer_layout_ok(const uint8_t *m, size_t len, size_t qname_len)
{
	uint16_t offs[256];
	struct layout lo = { .ttl_off = offs, .cap_ttl = 256 };

	/* no TSIG (never in a reply to an unsigned query; ldns leaks on some), one OPT */
	if (walk(m, len, &lo) < 0 || rd16(m + 4) != 1 || lo.qname_end - HDR != qname_len ||
	    plain_name_end(m, len, HDR) != lo.qname_end || lo.n_tsig || lo.n_opt_all > 1)
		return false;
	for (unsigned i = 0; i < lo.n_ttl && i < lo.cap_ttl; i++)
		if ((size_t)offs[i] + 4 > lo.end)
			return false;
	return true;
}

static bool question_matches(const uint8_t *m, size_t len, const struct qinfo *qi);

int cgf_dnsproxy_answer_addrs(const uint8_t *msg, size_t len, struct cgf_dnsproxy_addr *out,
			      size_t cap)
{
	ldns_pkt *pkt = NULL;
	char name[4 * 255 + 1];
	struct qinfo qi = { 0 };
	size_t end = len >= HDR ? plain_name_end(msg, len, HDR) : 0;
	int n;

	/*
	 * The question as the engine checks a reply's against the one it asked
	 * (also for a TC reply that ldns cannot parse), here against itself.
	 */
	if (!end || end - HDR > sizeof(qi.qname) || end + 4 > len)
		return -1;
	qi.qname_len = end - HDR;
	for (size_t i = 0; i < qi.qname_len; i++)
		qi.qname[i] = lc(msg[HDR + i]);
	qi.qtype = rd16(msg + end);
	qi.qclass = rd16(msg + end + 2);
	if (!question_matches(msg, len, &qi) || !answer_layout_ok(msg, len, qi.qname_len))
		return -1;
	if (ldns_wire2pkt(&pkt, msg, len) != LDNS_STATUS_OK)
		return -1;
	n = addrs_from_pkt(pkt, out, cap);
	if (n >= 0)
		name_to_str(msg + HDR, name); /* as allow() would get it */
	ldns_pkt_free(pkt);
	return n;
}

/* ---------------------------------------------------------------------------
 * The engine.
 */

enum ev_kind { EV_CLIENT_UDP, EV_CLIENT_LISTEN, EV_CLIENT_CONN, EV_UP_UDP, EV_UP_TCP };

struct ev {
	enum ev_kind kind;
	int fd;
};

struct list {
	struct list *next, *prev;
};

static void list_init(struct list *l)
{
	l->next = l->prev = l;
}

static bool list_empty(const struct list *l)
{
	return l->next == l;
}

static void list_del(struct list *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = e->prev = e;
}

static void list_add_tail(struct list *head, struct list *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct conn;

enum pstate { P_FREE, P_UDP, P_TCP_CONNECT, P_TCP_WRITE, P_TCP_READ };

struct pending {
	struct list link;     /* engine's active list (ordered by deadline) or free list */
	struct list clink;    /* the client's pendings */
	enum pstate state;
	struct cgf_dnsproxy_client *client;
	struct conn *conn;    /* NULL: answer over UDP to peer */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct qinfo qi;
	uint16_t up_id;
	int sock;             /* index of the UDP socket it was sent from */
	unsigned upstream, tries;
	uint64_t deadline, final_deadline;
	struct ev tcp;        /* upstream TCP connection, fd -1 when none */
	uint8_t tlenbuf[2];   /* TCP: the reply's length, then */
	uint8_t *tbuf;        /* the reply as it arrives (tlen bytes) */
	size_t tlen, thave;   /* thave counts the length's 2 bytes too */
	size_t qlen;
	uint8_t query[QUERY_MAX]; /* as sent upstream: the client's, with up_id */
};

struct conn {
	struct ev ev;
	struct list clink;    /* client's connections */
	struct list tlink;    /* engine's idle-ordered list */
	struct cgf_dnsproxy_client *client;
	uint64_t idle_deadline;
	unsigned pending;
	bool dead, want_out;
	size_t rlen;
	uint8_t rbuf[2 + QUERY_MAX];
	uint8_t *wbuf;
	size_t wlen, woff, wcap;
	struct conn *gnext;   /* graveyard */
};

struct cgf_dnsproxy_client {
	struct list link;
	struct ev udp, listen;
	const struct cgf_dnsproxy_names *names;
	uint16_t extra[MAX_EXTRA_QTYPES];
	size_t n_extra;
	cgf_dnsproxy_allow_fn allow;
	cgf_dnsproxy_refused_fn refused;
	void *ctx;
	struct cgf_dnsproxy_stats st;
	unsigned inflight, n_conns;
	bool accept_paused;   /* at the TCP connection cap: listener out of the epoll set */
	struct list pendings, conns;
	uint64_t rl_second;
	unsigned rl_count;
	bool dead;
	struct cgf_dnsproxy_client *gnext;
};

struct centry {
	struct centry *hnext;
	struct list age;
	uint32_t hash;
	uint64_t inserted_ms, expires_ms;
	uint16_t keylen, qname_len;
	uint16_t n_ttl, n_addrs;
	uint16_t *ttl_off;
	struct cgf_dnsproxy_addr *addrs;
	uint8_t *wire;
	size_t len, bytes;
	uint8_t key[255 + 5];
};

struct cgf_dnsproxy {
	int epfd;
	struct sockaddr_storage up[8];
	socklen_t uplen[8];
	size_t n_up;
	uint32_t try_ms, timeout_ms;
	unsigned tries;
	uint32_t min_ttl, max_ttl;
	unsigned inflight_cap, conns_cap;
	uint32_t tcp_idle_ms;
	struct ev usock[N_UP_SOCKS];
	int usock_family[N_UP_SOCKS];
	unsigned usock_uses[N_UP_SOCKS];     /* queries sent since it was opened */
	unsigned usock_inflight[N_UP_SOCKS]; /* queries waiting for a reply on it */
	size_t n_pending;         /* allocated, at most PENDING_MAX */
	struct pending *by_id[65536]; /* UDP stage pendings by upstream id */
	struct list active, free_p, dead_p, conns, clients;
	struct conn *grave_conns;
	struct cgf_dnsproxy_client *grave_clients;
	/* cache */
	struct centry **buckets;
	size_t n_buckets, n_entries, max_entries, bytes;
	struct list ages;
	/* randomness for ids and socket choice */
	uint8_t rnd[512];
	size_t rnd_off;
	uint8_t buf[MSG_MAX + 2]; /* scratch for answers */
	uint8_t rbufs[BATCH][QUERY_MAX + 1];
	uint8_t (*abufs)[UP_BUF]; /* upstream UDP answers, UP_BATCH of them */
	struct out_msg {
		int fd;
		socklen_t peerlen;
		struct sockaddr_storage peer;
		size_t len;
		uint8_t buf[OUT_BUF];
	} out[OUT_BATCH];         /* UDP answers not sent yet (out_flush) */
	size_t n_out;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint16_t rnd16(struct cgf_dnsproxy *p)
{
	uint16_t v;

	if (p->rnd_off + 2 > sizeof(p->rnd)) {
		ssize_t n = getrandom(p->rnd, sizeof(p->rnd), 0);

		if (n != (ssize_t)sizeof(p->rnd)) {
			/* getrandom on a booted system does not fail; never reuse bytes */
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			for (size_t i = 0; i < sizeof(p->rnd); i++)
				p->rnd[i] ^= (uint8_t)(ts.tv_nsec >> (i % 4 * 8)) + (uint8_t)i;
		}
		p->rnd_off = 0;
	}
	memcpy(&v, p->rnd + p->rnd_off, 2);
	p->rnd_off += 2;
	return v;
}

static int ep_add(struct cgf_dnsproxy *p, struct ev *ev, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, ev->fd, &e) < 0 ? -errno : 0;
}

static void ep_mod(struct cgf_dnsproxy *p, struct ev *ev, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	epoll_ctl(p->epfd, EPOLL_CTL_MOD, ev->fd, &e);
}

static void close_ev(struct cgf_dnsproxy *p, struct ev *ev)
{
	if (ev->fd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
		close(ev->fd);
		ev->fd = -1;
	}
}

static uint32_t clamp_ttl(const struct cgf_dnsproxy *p, uint32_t ttl)
{
	if (ttl < p->min_ttl)
		ttl = p->min_ttl;
	if (p->max_ttl && ttl > p->max_ttl)
		ttl = p->max_ttl;
	return ttl;
}

/* ---- cache ---- */

static uint32_t hash_key(const uint8_t *k, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static size_t make_key(const struct qinfo *qi, uint8_t *key)
{
	memcpy(key, qi->qname, qi->qname_len);
	wr16(key + qi->qname_len, qi->qtype);
	wr16(key + qi->qname_len + 2, qi->qclass);
	/* the answer depends on these: OPT present or not, DNSSEC records, checking */
	key[qi->qname_len + 4] = (uint8_t)(qi->edns | qi->do_bit << 1 | (qi->cd ? 4 : 0));
	return qi->qname_len + 5;
}

static void cache_unlink(struct cgf_dnsproxy *p, struct centry *e)
{
	struct centry **pp = &p->buckets[e->hash & (p->n_buckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	list_del(&e->age);
	p->n_entries--;
	p->bytes -= e->bytes;
	free(e);
}

static struct centry *cache_find(struct cgf_dnsproxy *p, const uint8_t *key, size_t keylen,
				 uint32_t h, uint64_t now)
{
	struct centry *e;

	for (e = p->buckets[h & (p->n_buckets - 1)]; e; e = e->hnext) {
		if (e->hash != h || e->keylen != keylen || memcmp(e->key, key, keylen))
			continue;
		if (now >= e->expires_ms) {
			cache_unlink(p, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Caches a released answer (already checked by ldns; addrs from the walk). */
static void cache_put(struct cgf_dnsproxy *p, const struct qinfo *qi, const uint8_t *m,
		      size_t len, const struct cgf_dnsproxy_addr *addrs, size_t n_addrs,
		      uint64_t now)
{
	uint16_t offs[256];
	struct layout lo = { .ttl_off = offs, .cap_ttl = 256 };
	uint8_t key[sizeof(((struct centry *)0)->key)];
	uint32_t min_ttl = UINT32_MAX, h;
	size_t keylen, bytes, i;
	struct centry *e, *old;
	int rcode = m[3] & 0x0f;

	if (!p->max_entries || (m[2] & 0x02) || (rcode != RC_NOERROR && rcode != RC_NXDOMAIN))
		return;
	if (walk(m, len, &lo) < 0 || lo.n_ttl == 0 || lo.n_ttl > lo.cap_ttl ||
	    lo.qname_end - HDR != qi->qname_len)
		return;
	for (i = 0; i < lo.n_ttl; i++) {
		uint32_t t = rd32(m + offs[i]);

		if (t < min_ttl)
			min_ttl = t;
	}
	if (min_ttl == 0)
		return;
	if (min_ttl > CACHE_TTL_MAX)
		min_ttl = CACHE_TTL_MAX;
	bytes = sizeof(*e) + len + lo.n_ttl * sizeof(uint16_t) + n_addrs * sizeof(*addrs) + 8;
	if (bytes > CACHE_BYTES_MAX / 16)
		return;
	keylen = make_key(qi, key);
	h = hash_key(key, keylen);
	old = cache_find(p, key, keylen, h, now);
	if (old)
		cache_unlink(p, old);
	while (p->n_entries && (p->n_entries >= p->max_entries ||
				p->bytes + bytes > CACHE_BYTES_MAX))
		cache_unlink(p, container_of(p->ages.next, struct centry, age));
	e = malloc(bytes);
	if (!e)
		return;
	e->hash = h;
	e->keylen = (uint16_t)keylen;
	memcpy(e->key, key, keylen);
	e->qname_len = (uint16_t)qi->qname_len;
	e->inserted_ms = now;
	e->expires_ms = now + (uint64_t)min_ttl * 1000;
	e->addrs = (struct cgf_dnsproxy_addr *)(e + 1);
	memcpy(e->addrs, addrs, n_addrs * sizeof(*addrs));
	e->n_addrs = (uint16_t)n_addrs;
	e->ttl_off = (uint16_t *)(e->addrs + n_addrs);
	memcpy(e->ttl_off, offs, lo.n_ttl * sizeof(uint16_t));
	e->n_ttl = (uint16_t)lo.n_ttl;
	e->wire = (uint8_t *)(e->ttl_off + lo.n_ttl);
	memcpy(e->wire, m, len);
	e->len = len;
	e->bytes = bytes;
	e->hnext = p->buckets[h & (p->n_buckets - 1)];
	p->buckets[h & (p->n_buckets - 1)] = e;
	list_add_tail(&p->ages, &e->age);
	p->n_entries++;
	p->bytes += bytes;
}

/* ---- answering clients ---- */

static void conn_close(struct cgf_dnsproxy *p, struct conn *c);

static void conn_flush(struct cgf_dnsproxy *p, struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->ev.fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			conn_close(p, c);
			return;
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if ((c->woff < c->wlen) != c->want_out) {
		c->want_out = c->woff < c->wlen;
		ep_mod(p, &c->ev, EPOLLIN | (c->want_out ? EPOLLOUT : 0));
	}
}

static void conn_send(struct cgf_dnsproxy *p, struct conn *c, const uint8_t *m, size_t len)
{
	if (c->dead)
		return;
	if (c->wlen + 2 + len > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 1024;
		uint8_t *b;

		if (c->woff) { /* compact first */
			memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
			c->wlen -= c->woff;
			c->woff = 0;
		}
		while (cap < c->wlen + 2 + len)
			cap *= 2;
		if (cap > TCP_WBUF_MAX || !(b = realloc(c->wbuf, cap))) {
			conn_close(p, c); /* a client that does not read its answers */
			return;
		}
		c->wbuf = b;
		c->wcap = cap;
	}
	wr16(c->wbuf + c->wlen, (uint16_t)len);
	memcpy(c->wbuf + c->wlen + 2, m, len);
	c->wlen += 2 + len;
	conn_flush(p, c);
}

/*
 * UDP answers wait in a queue sent with one sendmmsg at the end of each event
 * (after their allow() calls, like any answer): one system call for a batch.
 */
static void out_flush(struct cgf_dnsproxy *p)
{
	struct mmsghdr msgs[OUT_BATCH];
	struct iovec iov[OUT_BATCH];
	size_t i = 0;

	while (i < p->n_out) {
		size_t n = 0;
		int fd = p->out[i].fd, r;

		/* a run of answers from the same socket */
		while (i + n < p->n_out && p->out[i + n].fd == fd) {
			struct out_msg *o = &p->out[i + n];

			iov[n].iov_base = o->buf;
			iov[n].iov_len = o->len;
			memset(&msgs[n].msg_hdr, 0, sizeof(msgs[n].msg_hdr));
			msgs[n].msg_hdr.msg_name = &o->peer;
			msgs[n].msg_hdr.msg_namelen = o->peerlen;
			msgs[n].msg_hdr.msg_iov = &iov[n];
			msgs[n].msg_hdr.msg_iovlen = 1;
			n++;
		}
		/* a datagram that cannot go (full buffer) is dropped: the client asks again */
		for (size_t done = 0, tries = 0; done < n && tries < 2 * n + 2; tries++) {
			r = sendmmsg(fd, msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
			if (r > 0)
				done += (size_t)r;
			else if (r == 0 || errno != EINTR)
				done++;
		}
		i += n;
	}
	p->n_out = 0;
}

static void out_queue(struct cgf_dnsproxy *p, int fd, const struct sockaddr_storage *peer,
		      socklen_t peerlen, const uint8_t *m, size_t len)
{
	struct out_msg *o;

	if (len > OUT_BUF) {
		sendto(fd, m, len, MSG_DONTWAIT, (const struct sockaddr *)peer, peerlen);
		return;
	}
	if (p->n_out == OUT_BATCH)
		out_flush(p);
	o = &p->out[p->n_out++];
	o->fd = fd;
	memcpy(&o->peer, peer, peerlen);
	o->peerlen = peerlen;
	memcpy(o->buf, m, len);
	o->len = len;
}

/* Sends m to the client; over UDP cut to a TC answer when too large for it. */
static void reply(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl, struct conn *conn,
		  const struct sockaddr_storage *peer, socklen_t peerlen, const struct qinfo *qi,
		  const uint8_t *m, size_t len)
{
	uint8_t tc[HDR + 255 + 4 + 11];

	if (conn) {
		conn_send(p, conn, m, len);
		return;
	}
	if (len > qi->payload) {
		/* header and question with TC: the client asks again over TCP */
		size_t n = HDR + qi->qname_len + 4;

		memcpy(tc, m, HDR);
		memcpy(tc + HDR, m + HDR, qi->qname_len + 4);
		tc[2] |= 0x02;
		wr16(tc + 6, 0);
		wr16(tc + 8, 0);
		wr16(tc + 10, 0);
		if (qi->edns) {
			tc[n] = 0;
			wr16(tc + n + 1, T_OPT);
			wr16(tc + n + 3, EDNS_SIZE);
			wr32(tc + n + 5, qi->do_bit ? 0x8000 : 0);
			wr16(tc + n + 9, 0);
			wr16(tc + 10, 1);
			n += 11;
		}
		m = tc;
		len = n;
	}
	out_queue(p, cl->udp.fd, peer, peerlen, m, len);
}

static void refused_log(struct cgf_dnsproxy_client *cl, const struct qinfo *qi)
{
	uint64_t sec = now_ms() / 1000;
	char name[4 * 255 + 1];

	if (!cl->refused)
		return;
	if (sec != cl->rl_second) {
		cl->rl_second = sec;
		cl->rl_count = 0;
	}
	if (cl->rl_count >= REFUSED_LOG_PER_S)
		return;
	cl->rl_count++;
	if (qi->qname_len)
		name_to_str(qi->qname, name);
	else
		strcpy(name, "");
	cl->refused(cl->ctx, name, qi->qname_len ? qi->qtype : 0, qi->reason ? qi->reason : "");
}

/* allow() for each address; false when one failed (the client gets SERVFAIL). */
static bool allow_all(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl,
		      const struct qinfo *qi, const struct cgf_dnsproxy_addr *a, size_t n,
		      uint32_t elapsed_s)
{
	char name[4 * 255 + 1];

	if (!n)
		return true;
	name_to_str(qi->qname, name);
	for (size_t i = 0; i < n; i++) {
		uint32_t ttl = a[i].ttl > elapsed_s ? a[i].ttl - elapsed_s : 0;

		if (cl->allow(cl->ctx, a[i].family, a[i].addr, clamp_ttl(p, ttl), name) < 0)
			return false;
		cl->st.addresses_allowed++;
	}
	return true;
}

static void reply_error(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl,
			struct conn *conn, const struct sockaddr_storage *peer, socklen_t peerlen,
			const struct qinfo *qi, const uint8_t *query, int rcode)
{
	uint8_t out[HDR + 255 + 4 + 11];
	size_t n = build_error(query, qi->qend, qi->edns, rcode, out, sizeof(out));

	if (n)
		reply(p, cl, conn, peer, peerlen, qi, out, n);
}

/* A cached answer for the client, TTLs aged, its id and question spelling. */
static bool answer_from_cache(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl,
			      struct conn *conn, const struct sockaddr_storage *peer,
			      socklen_t peerlen, const struct qinfo *qi, const uint8_t *query,
			      uint64_t now)
{
	uint8_t key[sizeof(((struct centry *)0)->key)];
	size_t keylen = make_key(qi, key);
	struct centry *e = cache_find(p, key, keylen, hash_key(key, keylen), now);
	uint32_t elapsed;
	uint8_t *m = p->buf;

	if (!e)
		return false;
	cl->st.cache_hits++;
	elapsed = (uint32_t)((now - e->inserted_ms) / 1000);
	if (!allow_all(p, cl, qi, e->addrs, e->n_addrs, elapsed)) {
		cl->st.servfail++;
		reply_error(p, cl, conn, peer, peerlen, qi, query, RC_SERVFAIL);
		return true;
	}
	memcpy(m, e->wire, e->len);
	wr16(m, qi->id);
	m[2] = (uint8_t)((m[2] & ~0x01) | qi->rd);
	memcpy(m + HDR, query + HDR, e->qname_len); /* the client's own spelling (0x20) */
	for (unsigned i = 0; i < e->n_ttl; i++) {
		uint32_t t = rd32(m + e->ttl_off[i]);

		wr32(m + e->ttl_off[i], t > elapsed ? t - elapsed : 0);
	}
	cl->st.answered++;
	reply(p, cl, conn, peer, peerlen, qi, m, e->len);
	return true;
}

/* ---- upstream sockets ---- */

/* A UDP socket bound to a port the kernel picks at random, in the epoll set. */
static int usock_open(struct cgf_dnsproxy *p, int i)
{
	int fam = p->usock_family[i];
	struct sockaddr_storage any = { .ss_family = fam };
	int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&any,
		 fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	p->usock[i].kind = EV_UP_UDP;
	p->usock[i].fd = fd;
	err = ep_add(p, &p->usock[i], EPOLLIN);
	if (err < 0) {
		close(fd);
		p->usock[i].fd = -1;
		return err;
	}
	p->usock_uses[i] = 0;
	return 0;
}

/*
 * A socket that has sent ROTATE_USES queries gets no new ones; once nothing
 * waits on it any more it is replaced by one on a fresh random port, so the
 * ports a forger must guess keep changing.
 */
static void usock_maybe_rotate(struct cgf_dnsproxy *p, int i)
{
	struct ev old = p->usock[i];

	if (p->usock_uses[i] < ROTATE_USES || p->usock_inflight[i])
		return;
	if (usock_open(p, i) < 0) {
		p->usock[i] = old; /* keep the old one: no port is better than none */
		p->usock_uses[i] = 0;
		return;
	}
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, old.fd, NULL);
	close(old.fd);
}

/* q leaves the UDP stage: its id and its socket are free again. */
static void udp_detach(struct cgf_dnsproxy *p, struct pending *q)
{
	if (q->state != P_UDP)
		return;
	if (p->by_id[q->up_id] == q)
		p->by_id[q->up_id] = NULL;
	p->usock_inflight[q->sock]--;
	q->state = P_FREE;
	usock_maybe_rotate(p, q->sock);
}

/* A socket of the family for a new query, one not retiring when there is one. */
static int usock_pick(struct cgf_dnsproxy *p, int family)
{
	int i = rnd16(p) % N_UP_SOCKS;

	for (int n = 0; n < N_UP_SOCKS; n++, i = (i + 1) % N_UP_SOCKS)
		if (p->usock_family[i] == family && p->usock_uses[i] < ROTATE_USES)
			return i;
	for (int n = 0; n < N_UP_SOCKS; n++, i = (i + 1) % N_UP_SOCKS)
		if (p->usock_family[i] == family)
			return i;
	return 0; /* not reached: every upstream's family has sockets */
}

/* ---- pending queries ---- */

static void pending_release(struct cgf_dnsproxy *p, struct pending *q)
{
	udp_detach(p, q);
	if (q->tcp.fd >= 0)
		close_ev(p, &q->tcp);
	free(q->tbuf);
	q->tbuf = NULL;
	q->state = P_FREE;
	list_del(&q->link);
	list_del(&q->clink);
	if (q->client)
		q->client->inflight--;
	if (q->conn)
		q->conn->pending--;
	q->client = NULL;
	q->conn = NULL;
	list_add_tail(&p->dead_p, &q->link);
}

/*
 * Every try gets try_ms, so the active list stays in deadline order with each
 * (re)armed pending at its tail (retry() ends a query past final_deadline).
 */
static void arm(struct cgf_dnsproxy *p, struct pending *q, uint64_t now)
{
	q->deadline = now + p->try_ms;
	list_del(&q->link);
	list_add_tail(&p->active, &q->link);
}

static int send_udp(struct cgf_dnsproxy *p, struct pending *q, uint64_t now)
{
	unsigned u = q->upstream % p->n_up;
	uint16_t id;

	udp_detach(p, q);
	if (q->tcp.fd >= 0)
		close_ev(p, &q->tcp);
	for (int i = 0; i < 8; i++) { /* a free id; the table is 65536 wide */
		id = rnd16(p);
		if (!p->by_id[id])
			break;
	}
	if (p->by_id[id])
		return -EBUSY;
	q->up_id = id;
	wr16(q->query, id);
	q->sock = usock_pick(p, p->up[u].ss_family);
	p->usock_uses[q->sock]++;
	p->usock_inflight[q->sock]++;
	q->state = P_UDP;
	p->by_id[id] = q;
	q->tries++;
	arm(p, q, now);
	sendto(p->usock[q->sock].fd, q->query, q->qlen, MSG_DONTWAIT,
	       (const struct sockaddr *)&p->up[u], p->uplen[u]);
	return 0;
}

static void finish_error(struct cgf_dnsproxy *p, struct pending *q)
{
	struct cgf_dnsproxy_client *cl = q->client;

	cl->st.servfail++;
	wr16(q->query, q->qi.id);
	reply_error(p, cl, q->conn, &q->peer, q->peerlen, &q->qi, q->query, RC_SERVFAIL);
	pending_release(p, q);
}

/* Next upstream, or SERVFAIL when the tries or the time are spent. */
static void retry(struct cgf_dnsproxy *p, struct pending *q, uint64_t now)
{
	if (q->tries >= p->tries || now >= q->final_deadline) {
		finish_error(p, q);
		return;
	}
	q->upstream++;
	if (send_udp(p, q, now) < 0)
		finish_error(p, q);
}

static int start_tcp(struct cgf_dnsproxy *p, struct pending *q, uint64_t now)
{
	unsigned u = q->upstream % p->n_up;
	int fd, one = 1;

	udp_detach(p, q);
	fd = socket(p->up[u].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&p->up[u], p->uplen[u]) < 0 &&
	    errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	q->tcp.kind = EV_UP_TCP;
	q->tcp.fd = fd;
	if (ep_add(p, &q->tcp, EPOLLOUT) < 0) {
		close(fd);
		q->tcp.fd = -1;
		return -EIO;
	}
	q->state = P_TCP_CONNECT;
	free(q->tbuf);
	q->tbuf = NULL;
	q->thave = 0;
	arm(p, q, now);
	return 0;
}

/* One question, uncompressed, the one asked (name case-insensitively), opcode QUERY. */
static bool question_matches(const uint8_t *m, size_t len, const struct qinfo *qi)
{
	size_t end = HDR + qi->qname_len;

	if (len < end + 4 || rd16(m + 4) != 1 || (m[2] >> 3 & 0x0f) != LDNS_PACKET_QUERY ||
	    plain_name_end(m, len, HDR) != end || rd16(m + end) != qi->qtype ||
	    rd16(m + end + 2) != qi->qclass)
		return false;
	for (size_t i = 0; i < qi->qname_len; i++)
		if (lc(m[HDR + i]) != qi->qname[i])
			return false;
	return true;
}

/*
 * An answer for q: ldns parses it, it must match the question; then allow()
 * and the release.  Returns false when it did not match (keep waiting).
 */
static bool handle_answer(struct cgf_dnsproxy *p, struct pending *q, uint8_t *m, size_t len,
			  bool tcp, uint64_t now)
{
	struct cgf_dnsproxy_addr addrs[CGF_DNSPROXY_MAX_ADDRS];
	struct cgf_dnsproxy_client *cl = q->client;
	ldns_pkt *pkt = NULL;
	int n, rcode;

	/* a reply to what was asked: id, QR, the question (else keep waiting) */
	if (len < HDR || !(m[2] & 0x80) || rd16(m) != q->up_id ||
	    !question_matches(m, len, &q->qi))
		return false;
	if (!tcp && (m[2] & 0x02)) {
		/* truncated: its records may be cut anywhere, only the question counts */
		if (start_tcp(p, q, now) < 0)
			retry(p, q, now);
		return true;
	}
	/* a reply the engine's walk or ldns rejects is an upstream failure */
	if (!answer_layout_ok(m, len, q->qi.qname_len) ||
	    ldns_wire2pkt(&pkt, m, len) != LDNS_STATUS_OK) {
		retry(p, q, now);
		return true;
	}
	rcode = ldns_pkt_get_rcode(pkt);
	if (rcode == RC_SERVFAIL || rcode == RC_REFUSED || rcode == RC_NOTIMP ||
	    rcode == RC_FORMERR) {
		ldns_pkt_free(pkt);
		retry(p, q, now);
		return true;
	}
	n = addrs_from_pkt(pkt, addrs, CGF_DNSPROXY_MAX_ADDRS);
	ldns_pkt_free(pkt);
	if (n < 0 || !allow_all(p, cl, &q->qi, addrs, (size_t)n, 0)) {
		finish_error(p, q);
		return true;
	}
	cache_put(p, &q->qi, m, len, addrs, (size_t)n, now);
	wr16(m, q->qi.id);
	memcpy(m + HDR, q->query + HDR, q->qi.qname_len); /* the client's spelling */
	cl->st.answered++;
	reply(p, cl, q->conn, &q->peer, q->peerlen, &q->qi, m, len);
	pending_release(p, q);
	return true;
}

/* From the upstream q was sent to: address and port. */
static bool from_upstream(const struct cgf_dnsproxy *p, const struct pending *q,
			  const struct sockaddr_storage *from)
{
	const struct sockaddr_storage *up = &p->up[q->upstream % p->n_up];

	if (from->ss_family != up->ss_family)
		return false;
	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)from, *b = (const void *)up;

		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *a = (const void *)from, *b = (const void *)up;

		return a->sin6_port == b->sin6_port && !memcmp(&a->sin6_addr, &b->sin6_addr, 16);
	}
}

static void up_udp_readable(struct cgf_dnsproxy *p, int sidx, uint64_t now)
{
	struct mmsghdr msgs[UP_BATCH];
	struct iovec iov[UP_BATCH];
	struct sockaddr_storage from[UP_BATCH];

	for (int round = 0; round < 8; round++) {
		int n;

		for (int i = 0; i < UP_BATCH; i++) {
			iov[i].iov_base = p->abufs[i];
			iov[i].iov_len = UP_BUF;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(p->usock[sidx].fd, msgs, UP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			uint8_t *m = p->abufs[i];
			size_t len = msgs[i].msg_len;
			struct pending *q;

			if (len < HDR)
				continue;
			q = p->by_id[rd16(m)];
			if (!q || q->state != P_UDP || q->sock != sidx ||
			    !from_upstream(p, q, &from[i]))
				continue;
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				/* larger than our buffer: ask over TCP, as for TC */
				if (start_tcp(p, q, now) < 0)
					retry(p, q, now);
				continue;
			}
			handle_answer(p, q, m, len, false, now);
		}
		if (n < UP_BATCH)
			return;
	}
}

static void up_tcp_event(struct cgf_dnsproxy *p, struct pending *q, uint32_t events, uint64_t now)
{
	if (events & (EPOLLERR | EPOLLHUP) && q->state != P_TCP_READ) {
		retry(p, q, now);
		return;
	}
	if (q->state == P_TCP_CONNECT || q->state == P_TCP_WRITE) {
		uint8_t out[2 + QUERY_MAX];
		ssize_t n;

		wr16(out, (uint16_t)q->qlen);
		memcpy(out + 2, q->query, q->qlen);
		/* a query is small: one send fills an empty socket buffer */
		n = send(q->tcp.fd, out, q->qlen + 2, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n != (ssize_t)(q->qlen + 2)) {
			retry(p, q, now);
			return;
		}
		q->state = P_TCP_READ;
		ep_mod(p, &q->tcp, EPOLLIN);
		return;
	}
	for (;;) {
		ssize_t n;

		if (q->thave < 2) /* the length first: the buffer is as large as the answer */
			n = recv(q->tcp.fd, q->tlenbuf + q->thave, 2 - q->thave, MSG_DONTWAIT);
		else
			n = recv(q->tcp.fd, q->tbuf + q->thave - 2, q->tlen + 2 - q->thave,
				 MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			retry(p, q, now);
			return;
		}
		if (n < 0)
			return;
		q->thave += (size_t)n;
		if (q->thave == 2 && !q->tbuf) {
			q->tlen = rd16(q->tlenbuf);
			if (q->tlen < HDR) {
				retry(p, q, now);
				return;
			}
			q->tbuf = malloc(q->tlen);
			if (!q->tbuf) {
				finish_error(p, q);
				return;
			}
		}
		if (q->thave == 2 + q->tlen) {
			if (!handle_answer(p, q, q->tbuf, q->tlen, true, now))
				retry(p, q, now);
			return;
		}
	}
}

/* ---- queries from clients ---- */

static void query(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl, struct conn *conn,
		  const struct sockaddr_storage *peer, socklen_t peerlen, const uint8_t *m,
		  size_t len, uint64_t now)
{
	uint8_t resp[HDR + 255 + 4 + 11];
	struct pending *q;
	struct qinfo qi;
	int r, rc = 0;

	cl->st.queries++;
	r = judge(m, len, cl->names, cl->extra, cl->n_extra, &qi, resp, sizeof(resp), &rc);
	if (r != 0) {
		if (rc == RC_REFUSED || rc == RC_NOTIMP) {
			cl->st.refused++;
			refused_log(cl, &qi);
		} else {
			cl->st.malformed++;
		}
		if (r > 0) {
			qi.payload = 512;
			qi.qname_len = 0;
			reply(p, cl, conn, peer, peerlen, &qi, resp, (size_t)r);
		}
		return;
	}
	if (answer_from_cache(p, cl, conn, peer, peerlen, &qi, m, now))
		return;
	if (list_empty(&p->free_p) && p->n_pending < PENDING_MAX) {
		/* pendings are kept for reuse: no allocation per query once warm */
		q = calloc(1, sizeof(*q));
		if (q) {
			q->tcp.fd = -1;
			list_init(&q->clink);
			list_add_tail(&p->free_p, &q->link);
			p->n_pending++;
		}
	}
	if (cl->inflight >= p->inflight_cap || list_empty(&p->free_p)) {
		cl->st.servfail++;
		reply_error(p, cl, conn, peer, peerlen, &qi, m, RC_SERVFAIL);
		return;
	}
	q = container_of(p->free_p.next, struct pending, link);
	list_del(&q->link);
	q->client = cl;
	q->conn = conn;
	if (conn)
		conn->pending++;
	if (peer)
		memcpy(&q->peer, peer, peerlen);
	q->peerlen = peerlen;
	q->qi = qi;
	q->qlen = qi.len;
	memcpy(q->query, m, qi.len);
	q->tries = 0;
	q->upstream = rnd16(p); /* spread load; retries walk the list from there */
	q->final_deadline = now + p->timeout_ms;
	q->tcp.fd = -1;
	q->tbuf = NULL;
	q->thave = 0;
	list_add_tail(&cl->pendings, &q->clink);
	cl->inflight++;
	list_add_tail(&p->active, &q->link);
	if (send_udp(p, q, now) < 0)
		finish_error(p, q);
}

static void client_udp_readable(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl,
				uint64_t now)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage peers[BATCH];

	for (int round = 0; round < 8 && !cl->dead; round++) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = p->rbufs[i];
			iov[i].iov_len = sizeof(p->rbufs[i]);
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &peers[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		}
		n = recvmmsg(cl->udp.fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n && !cl->dead; i++) {
			size_t len = msgs[i].msg_len;

			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				len = QUERY_MAX + 1; /* judged malformed */
			query(p, cl, NULL, &peers[i], msgs[i].msg_hdr.msg_namelen, p->rbufs[i],
			      len, now);
		}
		if (n < BATCH)
			return;
	}
}

static void conn_arm(struct cgf_dnsproxy *p, struct conn *c, uint64_t now)
{
	c->idle_deadline = now + p->tcp_idle_ms;
	list_del(&c->tlink);
	list_add_tail(&p->conns, &c->tlink);
}

static void conn_close(struct cgf_dnsproxy *p, struct conn *c)
{
	struct cgf_dnsproxy_client *cl = c->client;
	struct list *l, *n;

	if (c->dead)
		return;
	c->dead = true;
	/* its queries in flight are dropped: nobody to answer */
	for (l = cl->pendings.next; l != &cl->pendings; l = n) {
		struct pending *q = container_of(l, struct pending, clink);

		n = l->next;
		if (q->conn == c)
			pending_release(p, q);
	}
	close_ev(p, &c->ev);
	list_del(&c->tlink);
	list_del(&c->clink);
	cl->n_conns--;
	if (cl->accept_paused && cl->listen.fd >= 0) {
		cl->accept_paused = false;
		ep_mod(p, &cl->listen, EPOLLIN);
	}
	c->gnext = p->grave_conns;
	p->grave_conns = c;
}

static void conn_readable(struct cgf_dnsproxy *p, struct conn *c, uint64_t now)
{
	for (int round = 0; round < 64 && !c->dead; round++) {
		ssize_t n = recv(c->ev.fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen,
				 MSG_DONTWAIT);
		size_t off = 0;

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(p, c);
			return;
		}
		if (n < 0)
			return;
		c->rlen += (size_t)n;
		conn_arm(p, c, now);
		while (!c->dead && c->rlen - off >= 2) {
			size_t mlen = rd16(c->rbuf + off);

			if (mlen > QUERY_MAX || mlen < HDR) {
				/* cannot be a query we take: answer what we can, then close */
				if (mlen >= HDR && c->rlen - off >= 2 + HDR) {
					uint8_t out[HDR + 11];
					struct qinfo qi = { .payload = 512 };

					if (build_error(c->rbuf + off + 2, HDR, false, RC_FORMERR,
							out, sizeof(out))) {
						c->client->st.queries++;
						c->client->st.malformed++;
						reply(p, c->client, c, NULL, 0, &qi, out, HDR);
					}
				}
				conn_flush(p, c);
				conn_close(p, c);
				return;
			}
			if (c->rlen - off < 2 + mlen)
				break;
			query(p, c->client, c, NULL, 0, c->rbuf + off + 2, mlen, now);
			off += 2 + mlen;
		}
		if (c->dead)
			return;
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

static void client_accept(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *cl, uint64_t now)
{
	for (int round = 0; round < 16; round++) {
		struct conn *c;
		int fd;

		if (cl->n_conns >= p->conns_cap) {
			/*
			 * At the cap: leave new connections in the listen backlog until
			 * one closes (the client waits instead of failing), and stop
			 * the level-triggered listener from waking us meanwhile.
			 */
			cl->accept_paused = true;
			ep_mod(p, &cl->listen, 0);
			return;
		}
		fd = accept4(cl->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ev.kind = EV_CLIENT_CONN;
		c->ev.fd = fd;
		c->client = cl;
		list_init(&c->tlink);
		if (ep_add(p, &c->ev, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		list_add_tail(&cl->conns, &c->clink);
		cl->n_conns++;
		conn_arm(p, c, now);
	}
}

/* ---------------------------------------------------------------------------
 * Public API.
 */

int cgf_dnsproxy_new(const struct cgf_dnsproxy_opts *opts, struct cgf_dnsproxy **out)
{
	struct cgf_dnsproxy *p;
	bool mixed = false;
	size_t i;
	int err;

	if (!opts || opts->n_upstreams < 1 || opts->n_upstreams > 8 || !opts->upstreams)
		return -EINVAL;
	for (i = 0; i < opts->n_upstreams; i++) {
		int f = opts->upstreams[i].ss_family;

		if (f != AF_INET && f != AF_INET6)
			return -EAFNOSUPPORT;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->epfd = -1;
	for (i = 0; i < N_UP_SOCKS; i++)
		p->usock[i].fd = -1;
	list_init(&p->active);
	list_init(&p->free_p);
	list_init(&p->dead_p);
	list_init(&p->conns);
	list_init(&p->clients);
	list_init(&p->ages);
	p->n_up = opts->n_upstreams;
	for (i = 0; i < p->n_up; i++) {
		p->up[i] = opts->upstreams[i];
		p->uplen[i] = p->up[i].ss_family == AF_INET ? sizeof(struct sockaddr_in)
							    : sizeof(struct sockaddr_in6);
	}
	p->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 2000;
	p->tries = p->n_up < 2 ? 2 : (unsigned)p->n_up;
	p->try_ms = p->timeout_ms / p->tries;
	if (!p->try_ms)
		p->try_ms = 1;
	p->min_ttl = opts->min_ttl;
	p->max_ttl = opts->max_ttl;
	p->inflight_cap = opts->inflight_per_client ? opts->inflight_per_client : 64;
	p->conns_cap = opts->tcp_conns_per_client ? opts->tcp_conns_per_client : 16;
	p->tcp_idle_ms = opts->tcp_idle_ms ? opts->tcp_idle_ms : 10000;
	p->max_entries = opts->cache_max_entries ? opts->cache_max_entries : 4096;
	for (p->n_buckets = 64; p->n_buckets < p->max_entries; p->n_buckets *= 2)
		;
	p->buckets = calloc(p->n_buckets, sizeof(*p->buckets));
	p->abufs = malloc(UP_BATCH * sizeof(*p->abufs));
	p->rnd_off = sizeof(p->rnd);
	if (!p->buckets || !p->abufs)
		goto fail;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		goto fail_errno;
	for (i = 1; i < p->n_up; i++)
		if (p->up[i].ss_family != p->up[0].ss_family)
			mixed = true;
	for (i = 0; i < N_UP_SOCKS; i++) {
		/* mixed families: even sockets IPv4, odd IPv6 */
		p->usock_family[i] = mixed ? (i % 2 ? AF_INET6 : AF_INET) : p->up[0].ss_family;
		err = usock_open(p, (int)i);
		if (err < 0) {
			cgf_dnsproxy_free(p);
			return err;
		}
	}
	*out = p;
	return 0;
fail_errno:
	err = errno ? -errno : -EIO;
	cgf_dnsproxy_free(p);
	return err;
fail:
	cgf_dnsproxy_free(p);
	return -ENOMEM;
}

static void free_pending_list(struct list *l)
{
	while (!list_empty(l)) {
		struct pending *q = container_of(l->next, struct pending, link);

		list_del(&q->link);
		if (q->tcp.fd >= 0)
			close(q->tcp.fd);
		free(q->tbuf);
		free(q);
	}
}

static void flush_graveyard(struct cgf_dnsproxy *p)
{
	while (p->grave_conns) {
		struct conn *c = p->grave_conns;

		p->grave_conns = c->gnext;
		free(c->wbuf);
		free(c);
	}
	while (p->grave_clients) {
		struct cgf_dnsproxy_client *c = p->grave_clients;

		p->grave_clients = c->gnext;
		free(c);
	}
	while (!list_empty(&p->dead_p)) {
		struct list *l = p->dead_p.next;

		list_del(l);
		list_add_tail(&p->free_p, l);
	}
}

void cgf_dnsproxy_free(struct cgf_dnsproxy *p)
{
	if (!p)
		return;
	while (!list_empty(&p->clients))
		cgf_dnsproxy_client_remove(p, container_of(p->clients.next,
							   struct cgf_dnsproxy_client, link));
	flush_graveyard(p);
	free_pending_list(&p->active);
	free_pending_list(&p->free_p);
	for (int i = 0; i < N_UP_SOCKS; i++)
		if (p->usock[i].fd >= 0)
			close(p->usock[i].fd);
	if (p->buckets)
		while (!list_empty(&p->ages))
			cache_unlink(p, container_of(p->ages.next, struct centry, age));
	free(p->buckets);
	free(p->abufs);
	if (p->epfd >= 0)
		close(p->epfd);
	free(p);
}

int cgf_dnsproxy_client_add(struct cgf_dnsproxy *p, const struct cgf_dnsproxy_client_opts *o,
			    struct cgf_dnsproxy_client **out)
{
	struct cgf_dnsproxy_client *c;
	int err;

	if (!o)
		return -EINVAL;
	err = !o->allow || (o->udp_fd < 0 && o->tcp_fd < 0) ||
	      o->n_extra_qtypes > MAX_EXTRA_QTYPES || (o->n_extra_qtypes && !o->extra_qtypes)
		? -EINVAL : 0;
	c = err ? NULL : calloc(1, sizeof(*c));
	if (!c) {
		/* ownership is taken in every case: no socket is left behind */
		if (o->udp_fd >= 0)
			close(o->udp_fd);
		if (o->tcp_fd >= 0)
			close(o->tcp_fd);
		return err ? err : -ENOMEM;
	}
	c->udp.kind = EV_CLIENT_UDP;
	c->udp.fd = -1;
	c->listen.kind = EV_CLIENT_LISTEN;
	c->listen.fd = -1;
	c->names = o->names;
	if (o->n_extra_qtypes)
		memcpy(c->extra, o->extra_qtypes, o->n_extra_qtypes * sizeof(uint16_t));
	c->n_extra = o->n_extra_qtypes;
	c->allow = o->allow;
	c->refused = o->refused;
	c->ctx = o->ctx;
	list_init(&c->pendings);
	list_init(&c->conns);
	/* the sockets are ours from here on: on failure both are closed */
	c->udp.fd = o->udp_fd;
	c->listen.fd = o->tcp_fd;
	err = 0;
	if (c->udp.fd >= 0) {
		fcntl(c->udp.fd, F_SETFL, fcntl(c->udp.fd, F_GETFL) | O_NONBLOCK);
		err = ep_add(p, &c->udp, EPOLLIN);
	}
	if (!err && c->listen.fd >= 0) {
		fcntl(c->listen.fd, F_SETFL, fcntl(c->listen.fd, F_GETFL) | O_NONBLOCK);
		err = ep_add(p, &c->listen, EPOLLIN);
	}
	if (err < 0) {
		close_ev(p, &c->udp); /* EPOLL_CTL_DEL of an fd never added is harmless */
		close_ev(p, &c->listen);
		free(c);
		return err;
	}
	list_add_tail(&p->clients, &c->link);
	*out = c;
	return 0;
}

void cgf_dnsproxy_client_remove(struct cgf_dnsproxy *p, struct cgf_dnsproxy_client *c)
{
	if (!c || c->dead)
		return;
	out_flush(p); /* what is queued goes out before a socket closes */
	while (!list_empty(&c->conns))
		conn_close(p, container_of(c->conns.next, struct conn, clink));
	while (!list_empty(&c->pendings))
		pending_release(p, container_of(c->pendings.next, struct pending, clink));
	close_ev(p, &c->udp);
	close_ev(p, &c->listen);
	c->dead = true;
	list_del(&c->link);
	c->gnext = p->grave_clients;
	p->grave_clients = c;
}

void cgf_dnsproxy_client_set_names(struct cgf_dnsproxy_client *c,
				   const struct cgf_dnsproxy_names *names)
{
	c->names = names;
}

void cgf_dnsproxy_client_stats(const struct cgf_dnsproxy_client *c, struct cgf_dnsproxy_stats *s)
{
	*s = c->st;
}

int cgf_dnsproxy_fd(const struct cgf_dnsproxy *p)
{
	return p->epfd;
}

int cgf_dnsproxy_timeout_ms(const struct cgf_dnsproxy *p)
{
	uint64_t now = now_ms(), next = UINT64_MAX;

	if (!list_empty(&p->active))
		next = container_of(p->active.next, struct pending, link)->deadline;
	if (!list_empty(&p->conns)) {
		uint64_t d = container_of(p->conns.next, struct conn, tlink)->idle_deadline;

		if (d < next)
			next = d;
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now < INT32_MAX ? next - now : INT32_MAX);
}

static void expire(struct cgf_dnsproxy *p, uint64_t now)
{
	/* both lists are in deadline order: every arm puts its entry at the tail */
	for (int n = 0; n < 4096 && !list_empty(&p->active); n++) {
		struct pending *q = container_of(p->active.next, struct pending, link);

		if (q->deadline > now)
			break;
		retry(p, q, now);
	}
	for (int n = 0; n < 1024 && !list_empty(&p->conns); n++) {
		struct conn *c = container_of(p->conns.next, struct conn, tlink);

		if (c->idle_deadline > now)
			break;
		if (c->pending || c->woff < c->wlen)
			conn_arm(p, c, now);
		else
			conn_close(p, c);
	}
}

int cgf_dnsproxy_process(struct cgf_dnsproxy *p)
{
	struct epoll_event evs[64];
	uint64_t now = now_ms();
	int n;

	n = epoll_wait(p->epfd, evs, 64, 0);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct ev *ev = evs[i].data.ptr;

		if (ev->fd < 0)
			continue; /* closed earlier in this batch */
		switch (ev->kind) {
		case EV_CLIENT_UDP:
			client_udp_readable(p, container_of(ev, struct cgf_dnsproxy_client, udp),
					    now);
			break;
		case EV_CLIENT_LISTEN:
			client_accept(p, container_of(ev, struct cgf_dnsproxy_client, listen), now);
			break;
		case EV_CLIENT_CONN: {
			struct conn *c = container_of(ev, struct conn, ev);

			if (evs[i].events & EPOLLOUT)
				conn_flush(p, c);
			if (!c->dead && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_readable(p, c, now);
			break;
		}
		case EV_UP_UDP:
			up_udp_readable(p, (int)(ev - p->usock), now);
			break;
		case EV_UP_TCP:
			up_tcp_event(p, container_of(ev, struct pending, tcp), evs[i].events, now);
			break;
		}
		out_flush(p);
	}
	expire(p, now_ms());
	out_flush(p);
	flush_graveyard(p);
	return 0;
}

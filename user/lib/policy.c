// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Rules and policies: parsing with precise errors, and the union of rules
 * turned into allowlist entries.  See policy.h for the API.
 *
 * Choices made here, beyond what policy.h says:
 *
 * - Classification of a target.  Text in brackets is an IPv6 address or
 *   prefix.  Unbracketed text with two or more colons whose first group is
 *   empty or hex (like "2001:db8::1" or "::1") is an IPv6 address, and never
 *   has a port: "2001:db8::1:80" is the address 2001:db8::1:80.  Text made of
 *   digits and dots only is an IPv4 address; when it is not a valid one it is
 *   reported as a bad IPv4 address, never taken for a domain.  Anything else
 *   is a domain name.
 * - '/' after a target starts a prefix length unless a letter follows, in
 *   which case it starts the protocol: "10.0.0.0/8/tcp", "10.0.0.1/tcp".
 * - A prefix with host bits set ("198.18.0.1/15") is rejected: it is usually
 *   a typo, and silently widening or narrowing it would hide the mistake.
 * - Domain names: letters, digits and hyphens in labels of 1-63 characters
 *   that neither start nor end with a hyphen, separated by dots, at most 253
 *   characters, one trailing dot allowed (and removed), lower-cased.
 *   Single-label names such as "localhost" or "db" are allowed: they are
 *   valid for resolvers with search domains and in container networks.  A
 *   top-level label made only of digits is rejected (no such TLD exists, and
 *   "1.2.3.4x"-like typos deserve a message).  Underscores and non-ASCII bytes
 *   are rejected (write international names in their xn-- form).
 * - Wildcards: "*." only as the very beginning, "*.example.com" (stored as
 *   "example.com" with kind CGF_TARGET_WILDCARD).  "*.com" is allowed.
 * - Protocol names are matched without regard to case.  A URL ("https://...")
 *   is refused with a hint rather than a puzzling port error.
 * - Policy text: '#' anywhere starts a comment; CRLF line ends and a UTF-8
 *   byte order mark at the start are tolerated; lines longer than
 *   CGF_LINE_MAX characters, NUL bytes and policies without any rule are
 *   errors.  Columns count bytes, 1-based, from the start of the line.
 * - cgf_error_format() writes "source:line:column: reason"; when line is 0
 *   but column is not (an --allow argument) it writes "source: column N:
 *   reason", so that the column is not mistaken for a line number.
 *
 * Allowlist building: see the comment above cgf_allowlist_build().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "policy.h"

#define CGF_LINE_MAX 1024                     /* longest policy line, in bytes */
#define CGF_POLICY_FILE_MAX (16u * 1024 * 1024) /* largest policy file */
#define DNS_LABEL_MAX 63

/* Ranges counted exactly in a "too many port ranges" message. */
#define CGF_RANGES_COUNT_MAX 64

/* ---- small helpers ---------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_xdigit(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static const char *find_char(const char *s, const char *e, char c)
{
	for (; s < e; s++)
		if (*s == c)
			return s;
	return NULL;
}

static bool digits_and_dots(const char *a, const char *b)
{
	for (; a < b; a++)
		if (!is_digit(*a) && *a != '.')
			return false;
	return true;
}

/* Text of a quoted input: printable ASCII as is, other bytes as \xNN, long input cut. */
struct qbuf {
	char s[80];
};

static const char *quote(struct qbuf *q, const char *s, size_t len)
{
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= sizeof(q->s)) {
			memcpy(q->s + o, "...", 4);
			return q->s;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			q->s[o++] = (char)c;
		} else {
			static const char hex[] = "0123456789abcdef";

			q->s[o++] = '\\';
			q->s[o++] = 'x';
			q->s[o++] = hex[c >> 4];
			q->s[o++] = hex[c & 15];
		}
	}
	q->s[o] = '\0';
	return q->s;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size) {
		/* Keep the end of a long path: it names the file. */
		src += n - (size - 4);
		memcpy(dst, "...", 3);
		memcpy(dst + 3, src, size - 4);
		dst[size - 1] = '\0';
		return;
	}
	memcpy(dst, src, n + 1);
}

__attribute__((format(printf, 2, 3)))
static void set_reason(struct cgf_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
}

/* Sets err->column to the position of at in text and the reason; returns -EINVAL. */
__attribute__((format(printf, 4, 5)))
static int fail_at(struct cgf_error *err, const char *text, const char *at, const char *fmt, ...)
{
	va_list ap;

	err->column = at ? (unsigned)(at - text) + 1 : 0;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- rule parsing ----------------------------------------------------- */

/* The rule being parsed: text as given (for columns) and the rule's bounds. */
struct rp {
	const char *text;
	const char *start, *end;
	struct cgf_error *err;
};

/*
 * Parses the IPv4 address in [a, b), which holds only digits and dots.
 * Checks what inet_pton would refuse and says why.
 */
static int parse_ipv4(struct rp *p, const char *a, const char *b, uint8_t out[4])
{
	struct qbuf qa, qo;
	const char *s = a;
	char copy[INET_ADDRSTRLEN];
	int n = 0;

	if (*a == '.')
		return fail_at(p->err, p->text, a, "bad IPv4 address '%s': leading dot",
			       quote(&qa, a, b - a));
	for (;;) {
		const char *o = s;
		unsigned long v = 0;

		while (s < b && is_digit(*s)) {
			if (v <= 999)
				v = v * 10 + (unsigned long)(*s - '0');
			s++;
		}
		if (s == o)
			return fail_at(p->err, p->text, s, "bad IPv4 address '%s': empty octet",
				       quote(&qa, a, b - a));
		if (++n > 4)
			return fail_at(p->err, p->text, o, "bad IPv4 address '%s': more than 4 octets",
				       quote(&qa, a, b - a));
		if (v > 255)
			return fail_at(p->err, p->text, o,
				       "bad IPv4 address '%s': octet %s out of range",
				       quote(&qa, a, b - a), quote(&qo, o, s - o));
		if (s - o > 1 && *o == '0')
			return fail_at(p->err, p->text, o,
				       "bad IPv4 address '%s': octet '%s' has a leading zero",
				       quote(&qa, a, b - a), quote(&qo, o, s - o));
		if (s == b)
			break;
		s++; /* the dot */
		if (s == b)
			return fail_at(p->err, p->text, s - 1, "bad IPv4 address '%s': trailing dot",
				       quote(&qa, a, b - a));
	}
	if (n < 4)
		return fail_at(p->err, p->text, a, "bad IPv4 address '%s': %d octet%s, expected 4",
			       quote(&qa, a, b - a), n, n == 1 ? "" : "s");
	memcpy(copy, a, b - a); /* at most 15 bytes once the checks above passed */
	copy[b - a] = '\0';
	if (inet_pton(AF_INET, copy, out) != 1)
		return fail_at(p->err, p->text, a, "bad IPv4 address '%s'", quote(&qa, a, b - a));
	return 0;
}

/* Parses the IPv6 address in [a, b), with precise messages for common mistakes. */
static int parse_ipv6(struct rp *p, const char *a, const char *b, uint8_t out[16])
{
	struct qbuf qa, qc;
	const char *s, *dbl = NULL, *g;
	char copy[64];
	int groups = 0;

	if (a == b)
		return fail_at(p->err, p->text, a, "missing IPv6 address");
	for (s = a; s < b; s++) {
		if (*s == '%')
			return fail_at(p->err, p->text, s,
				       "bad IPv6 address '%s': zone index ('%s') not supported",
				       quote(&qa, a, b - a), quote(&qc, s, b - s));
		if (!is_xdigit(*s) && *s != ':' && *s != '.')
			return fail_at(p->err, p->text, s,
				       "bad IPv6 address '%s': unexpected character '%s'",
				       quote(&qa, a, b - a), quote(&qc, s, 1));
	}
	if (!find_char(a, b, ':'))
		return fail_at(p->err, p->text, a, "'%s' is not an IPv6 address%s",
			       quote(&qa, a, b - a),
			       find_char(a, b, '.') ? " (brackets are for IPv6 only)" : "");
	for (s = a; s + 1 < b; s++) {
		if (s[0] != ':' || s[1] != ':')
			continue;
		if (s + 2 < b && s[2] == ':')
			return fail_at(p->err, p->text, s, "bad IPv6 address '%s': ':::'",
				       quote(&qa, a, b - a));
		if (dbl)
			return fail_at(p->err, p->text, s,
				       "bad IPv6 address '%s': '::' used more than once",
				       quote(&qa, a, b - a));
		dbl = s++;
	}
	if (a[0] == ':' && dbl != a)
		return fail_at(p->err, p->text, a, "bad IPv6 address '%s': leading ':'",
			       quote(&qa, a, b - a));
	if (b[-1] == ':' && (!dbl || dbl + 2 != b))
		return fail_at(p->err, p->text, b - 1, "bad IPv6 address '%s': trailing ':'",
			       quote(&qa, a, b - a));
	for (g = a; g < b;) {
		const char *e = find_char(g, b, ':');

		if (!e)
			e = b;
		if (e > g) {
			if (find_char(g, e, '.')) {
				uint8_t v4[4];
				int ret;

				if (e != b)
					return fail_at(p->err, p->text, g,
						       "bad IPv6 address '%s': IPv4 part must come last",
						       quote(&qa, a, b - a));
				if (!digits_and_dots(g, e))
					return fail_at(p->err, p->text, g,
						       "bad IPv6 address '%s': bad IPv4 part '%s'",
						       quote(&qa, a, b - a), quote(&qc, g, e - g));
				ret = parse_ipv4(p, g, e, v4);
				if (ret)
					return ret;
				groups += 2;
			} else if (e - g > 4) {
				return fail_at(p->err, p->text, g,
					       "bad IPv6 address '%s': group '%s' has more than 4 hex digits",
					       quote(&qa, a, b - a), quote(&qc, g, e - g));
			} else {
				groups++;
			}
		}
		if (e == b)
			break;
		g = e + 1;
	}
	if (!dbl && groups != 8)
		return fail_at(p->err, p->text, a,
			       "bad IPv6 address '%s': %d groups, expected 8 (or '::')",
			       quote(&qa, a, b - a), groups);
	if (dbl && groups > 7)
		return fail_at(p->err, p->text, a, "bad IPv6 address '%s': too many groups",
			       quote(&qa, a, b - a));
	if ((size_t)(b - a) >= sizeof(copy))
		return fail_at(p->err, p->text, a, "bad IPv6 address '%s'", quote(&qa, a, b - a));
	memcpy(copy, a, b - a);
	copy[b - a] = '\0';
	if (inet_pton(AF_INET6, copy, out) != 1)
		return fail_at(p->err, p->text, a, "bad IPv6 address '%s'", quote(&qa, a, b - a));
	return 0;
}

/* Parses the prefix length in [a, b) (a is just after the '/'). */
static int parse_prefixlen(struct rp *p, const char *a, const char *b, int family, uint8_t *out)
{
	struct qbuf q;
	const char *s;
	unsigned max = family == AF_INET ? 32 : 128;
	const char *fam = family == AF_INET ? "IPv4" : "IPv6";
	unsigned long v = 0;

	if (a == b)
		return fail_at(p->err, p->text, a - 1, "missing prefix length after '/'");
	s = a;
	if (*s == '-' && s + 1 < b) {
		for (s++; s < b && is_digit(*s); s++)
			;
		if (s == b)
			return fail_at(p->err, p->text, a, "prefix length %s out of range for %s (0-%u)",
				       quote(&q, a, b - a), fam, max);
	}
	for (s = a; s < b; s++) {
		if (!is_digit(*s))
			return fail_at(p->err, p->text, a, "bad prefix length '%s'",
				       quote(&q, a, b - a));
		if (v <= 9999)
			v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > max)
		return fail_at(p->err, p->text, a, "prefix length %s out of range for %s (0-%u)",
			       quote(&q, a, b - a), fam, max);
	*out = (uint8_t)v;
	return 0;
}

static bool host_bits_set(const uint8_t *addr, unsigned prefixlen, unsigned bits)
{
	unsigned i;

	for (i = prefixlen; i < bits; i++)
		if (addr[i / 8] & (0x80u >> (i % 8)))
			return true;
	return false;
}

static void mask_addr(uint8_t *addr, unsigned prefixlen, unsigned bits)
{
	unsigned i;

	for (i = prefixlen; i < bits; i++)
		addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

/*
 * Parses the domain name in [a, b) into rule, as described at the top of
 * this file.
 */
static int parse_domain(struct rp *p, const char *a, const char *b, struct cgf_rule *rule)
{
	struct qbuf qn, qc;
	const char *s = a, *e = b, *label, *q;
	bool wildcard = false, digits_only = true;
	size_t i;

	if (*s == '*') {
		if (b - s < 2 || s[1] != '.')
			return fail_at(p->err, p->text, s,
				       "'*' must be followed by '.', as in '*.example.com'");
		wildcard = true;
		s += 2;
		if (s == b)
			return fail_at(p->err, p->text, s - 1, "missing domain name after '*.'");
	}
	if (e > s && e[-1] == '.' && e - s > 1 && e[-2] != '.')
		e--; /* one trailing dot: the root */
	if (e - s > CGF_DOMAIN_MAX)
		return fail_at(p->err, p->text, s, "domain name longer than %d characters",
			       CGF_DOMAIN_MAX);
	label = s;
	for (q = s; q <= e; q++) {
		if (q < e && *q != '.') {
			char c = *q;

			if (is_alpha(c) || c == '-') {
				digits_only = false;
				continue;
			}
			if (is_digit(c))
				continue;
			if (c == '*')
				return fail_at(p->err, p->text, q,
					       "'*' allowed only as the first label, as in '*.example.com'");
			if ((unsigned char)c >= 0x80)
				return fail_at(p->err, p->text, q,
					       "non-ASCII character in domain name '%s' (write it in its xn-- form)",
					       quote(&qn, a, b - a));
			return fail_at(p->err, p->text, q, "bad character '%s' in domain name '%s'",
				       quote(&qc, q, 1), quote(&qn, a, b - a));
		}
		/* end of a label */
		if (q == label)
			return fail_at(p->err, p->text, q < b ? q : q - 1,
				       "empty label in domain name '%s'", quote(&qn, a, b - a));
		if (q - label > DNS_LABEL_MAX)
			return fail_at(p->err, p->text, label, "label longer than %d characters",
				       DNS_LABEL_MAX);
		if (*label == '-')
			return fail_at(p->err, p->text, label, "label '%s' starts with a hyphen",
				       quote(&qc, label, q - label));
		if (q[-1] == '-')
			return fail_at(p->err, p->text, q - 1, "label '%s' ends with a hyphen",
				       quote(&qc, label, q - label));
		if (q == e && digits_only)
			return fail_at(p->err, p->text, label,
				       "bad domain name '%s': top-level label '%s' is all digits",
				       quote(&qn, a, b - a), quote(&qc, label, q - label));
		label = q + 1;
		digits_only = true;
	}
	rule->kind = wildcard ? CGF_TARGET_WILDCARD : CGF_TARGET_DOMAIN;
	for (i = 0; i < (size_t)(e - s); i++)
		rule->domain[i] = to_lower(s[i]);
	rule->domain[i] = '\0';
	return 0;
}

static int parse_port(struct rp *p, const char *a, const char *b, uint16_t *out)
{
	struct qbuf q;
	const char *s;
	unsigned long v = 0;

	for (s = a; s < b; s++) {
		if (!is_digit(*s))
			return fail_at(p->err, p->text, a, "bad port '%s'", quote(&q, a, b - a));
		if (v <= 99999)
			v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 65535)
		return fail_at(p->err, p->text, a, "port %s out of range (0-65535)",
			       quote(&q, a, b - a));
	*out = (uint16_t)v;
	return 0;
}

/* Parses PORTS in [a, b) (a is just after the ':'). */
static int parse_ports(struct rp *p, const char *a, const char *b, struct cgf_rule *rule)
{
	struct qbuf q;
	const char *dash = find_char(a, b, '-');
	int ret;

	if (a == b)
		return fail_at(p->err, p->text, a - 1, "missing port after ':'");
	if (!dash) {
		ret = parse_port(p, a, b, &rule->port_lo);
		rule->port_hi = rule->port_lo;
		return ret;
	}
	if (dash == a)
		return fail_at(p->err, p->text, a, "bad port range '%s': missing first port",
			       quote(&q, a, b - a));
	if (dash + 1 == b)
		return fail_at(p->err, p->text, dash, "bad port range '%s': missing last port",
			       quote(&q, a, b - a));
	ret = parse_port(p, a, dash, &rule->port_lo);
	if (!ret)
		ret = parse_port(p, dash + 1, b, &rule->port_hi);
	if (ret)
		return ret;
	if (rule->port_lo > rule->port_hi)
		return fail_at(p->err, p->text, a, "port range %u-%u is reversed",
			       rule->port_lo, rule->port_hi);
	return 0;
}

/* Parses PROTO in [a, b) (a is just after the '/'). */
static int parse_proto(struct rp *p, const char *a, const char *b, struct cgf_rule *rule)
{
	struct qbuf q;

	if (a == b)
		return fail_at(p->err, p->text, a - 1, "missing protocol after '/'");
	if (b - a == 3 && !strncasecmp(a, "tcp", 3))
		rule->protos = CGF_PROTO_TCP;
	else if (b - a == 3 && !strncasecmp(a, "udp", 3))
		rule->protos = CGF_PROTO_UDP;
	else
		return fail_at(p->err, p->text, a, "unknown protocol '%s' (tcp or udp)",
			       quote(&q, a, b - a));
	return 0;
}

/* Whether [a, b) reads as an unbracketed IPv6 address (see the top of this file). */
static bool looks_like_ipv6(const char *a, const char *b)
{
	const char *c1 = find_char(a, b, ':'), *s;

	if (!c1 || !find_char(c1 + 1, b, ':'))
		return false;
	for (s = a; s < c1; s++)
		if (!is_xdigit(*s))
			return false;
	return true;
}

/* After a prefix target: the host bits check, prefixlen defaulting. */
static int finish_prefix(struct rp *p, struct cgf_rule *rule, const char *a, const char *b,
			 bool have_len)
{
	unsigned bits = rule->family == AF_INET ? 32 : 128;
	char net[INET6_ADDRSTRLEN];
	uint8_t masked[16];
	struct qbuf q;

	if (!have_len) {
		rule->prefixlen = (uint8_t)bits;
		return 0;
	}
	if (!host_bits_set(rule->addr, rule->prefixlen, bits))
		return 0;
	memcpy(masked, rule->addr, sizeof(masked));
	mask_addr(masked, rule->prefixlen, bits);
	inet_ntop(rule->family, masked, net, sizeof(net));
	return fail_at(p->err, p->text, a, "host bits set in '%s' (the network is %s/%u)",
		       quote(&q, a, b - a), net, rule->prefixlen);
}

static int parse_target_tail(struct rp *p, const char *s, struct cgf_rule *rule)
{
	const char *e = p->end, *slash;
	struct qbuf q;
	int ret;

	if (s < e && *s == ':') {
		slash = find_char(s + 1, e, '/');
		if (!slash)
			slash = e;
		ret = parse_ports(p, s + 1, slash, rule);
		if (ret)
			return ret;
		s = slash;
	}
	if (s < e && *s == '/') {
		ret = parse_proto(p, s + 1, e, rule);
		if (ret)
			return ret;
		s = e;
	}
	if (s < e)
		return fail_at(p->err, p->text, s, "unexpected '%s' in rule", quote(&q, s, e - s));
	return 0;
}

static int parse_bracketed(struct rp *p, struct cgf_rule *rule, const char **next)
{
	const char *a = p->start + 1, *e = p->end;
	const char *close = find_char(a, e, ']'), *slash, *s;
	struct qbuf q;
	int ret;

	if (!close)
		return fail_at(p->err, p->text, p->start, "unclosed bracket in '%s'",
			       quote(&q, p->start, e - p->start));
	if (close == a)
		return fail_at(p->err, p->text, p->start, "empty brackets: missing IPv6 address");
	slash = find_char(a, close, '/');
	rule->family = AF_INET6;
	ret = parse_ipv6(p, a, slash ? slash : close, rule->addr);
	if (!ret && slash)
		ret = parse_prefixlen(p, slash + 1, close, AF_INET6, &rule->prefixlen);
	if (!ret)
		ret = finish_prefix(p, rule, a, close, slash != NULL);
	if (ret)
		return ret;
	s = close + 1;
	if (s < e && *s == '/' && s + 1 < e && is_digit(s[1]))
		return fail_at(p->err, p->text, s,
			       "prefix length goes inside the brackets, as in '[2001:db8::/32]:443'");
	if (s < e && *s != ':' && *s != '/')
		return fail_at(p->err, p->text, s, "unexpected '%s' after ']'", quote(&q, s, 1));
	*next = s;
	return 0;
}

static int parse_unbracketed_ipv6(struct rp *p, struct cgf_rule *rule, const char **next)
{
	const char *a = p->start, *e = p->end;
	const char *slash = find_char(a, e, '/'), *s = slash ? slash : e, *le;
	bool have_len = false;
	int ret;

	rule->family = AF_INET6;
	ret = parse_ipv6(p, a, s, rule->addr);
	if (ret)
		return ret;
	if (s < e && (s + 1 == e || !is_alpha(s[1]))) {
		le = find_char(s + 1, e, '/');
		if (!le)
			le = e;
		if (find_char(s + 1, le, ':'))
			return fail_at(p->err, p->text, a,
				       "a port after an IPv6 prefix needs brackets, as in '[2001:db8::/32]:443'");
		ret = parse_prefixlen(p, s + 1, le, AF_INET6, &rule->prefixlen);
		if (ret)
			return ret;
		have_len = true;
		s = le;
	}
	ret = finish_prefix(p, rule, a, s, have_len);
	if (ret)
		return ret;
	*next = s;
	return 0;
}

static int parse_plain(struct rp *p, struct cgf_rule *rule, const char **next)
{
	const char *a = p->start, *e = p->end, *s, *le;
	struct qbuf q;
	bool have_len = false;
	int ret;

	for (s = a; s < e && *s != ':' && *s != '/'; s++)
		;
	if (s == a)
		return fail_at(p->err, p->text, a, "missing address or domain name before '%c'", *a);
	if (!digits_and_dots(a, s)) {
		ret = parse_domain(p, a, s, rule);
		if (ret)
			return ret;
		if (s < e && *s == '/' && s + 1 < e && !is_alpha(s[1]))
			return fail_at(p->err, p->text, s + 1,
				       "prefix length after domain name '%s'", quote(&q, a, s - a));
		*next = s;
		return 0;
	}
	rule->family = AF_INET;
	ret = parse_ipv4(p, a, s, rule->addr);
	if (ret)
		return ret;
	if (s < e && *s == '/' && (s + 1 == e || !is_alpha(s[1]))) {
		for (le = s + 1; le < e && *le != ':' && *le != '/'; le++)
			;
		ret = parse_prefixlen(p, s + 1, le, AF_INET, &rule->prefixlen);
		if (ret)
			return ret;
		have_len = true;
		s = le;
	}
	ret = finish_prefix(p, rule, a, s, have_len);
	if (ret)
		return ret;
	*next = s;
	return 0;
}

int cgf_rule_parse(const char *text, struct cgf_rule *rule, struct cgf_error *err)
{
	struct cgf_error dummy;
	struct cgf_rule r;
	struct rp p;
	struct qbuf q;
	const char *s, *t, *slash, *next = NULL;
	int ret;

	if (!err)
		err = &dummy;
	if (!text || !rule) {
		err->column = 0;
		set_reason(err, "no rule given");
		return -EINVAL;
	}
	memset(&r, 0, sizeof(r));
	r.kind = CGF_TARGET_PREFIX;
	r.port_lo = 0;
	r.port_hi = 65535;
	r.protos = CGF_PROTO_ANY;

	for (s = text; is_blank(*s); s++)
		;
	for (t = s; *t && !is_blank(*t); t++)
		;
	p.text = text;
	p.start = s;
	p.end = t;
	p.err = err;
	if (s == t)
		return fail_at(err, text, s, "empty rule");
	while (is_blank(*t))
		t++;
	if (*t) {
		const char *te = t;

		while (*te && !is_blank(*te))
			te++;
		return fail_at(err, text, t, "unexpected '%s' after the rule (one rule per line)",
			       quote(&q, t, te - t));
	}

	for (t = s; t + 2 < p.end; t++)
		if (!memcmp(t, "://", 3))
			return fail_at(err, text, s,
				       "'%s' is a URL, not a rule: write the host and port, as in 'example.com:443'",
				       quote(&q, s, p.end - s));
	slash = find_char(s, p.end, '/');
	if (*s == '[')
		ret = parse_bracketed(&p, &r, &next);
	else if (looks_like_ipv6(s, slash ? slash : p.end))
		ret = parse_unbracketed_ipv6(&p, &r, &next);
	else
		ret = parse_plain(&p, &r, &next);
	if (!ret)
		ret = parse_target_tail(&p, next, &r);
	if (ret)
		return ret;
	*rule = r;
	return 0;
}

/* ---- policies --------------------------------------------------------- */

/* Makes room for n more rules without changing the rules already there. */
static int reserve_rules(struct cgf_policy *policy, size_t n)
{
	size_t want, cap;
	struct cgf_rule *rules;

	if (n > SIZE_MAX / sizeof(*rules) - policy->n_rules)
		return -ENOMEM;
	want = policy->n_rules + n;
	if (want <= policy->cap_rules)
		return 0;
	cap = policy->cap_rules ? policy->cap_rules : 16;
	while (cap < want)
		cap = cap > SIZE_MAX / sizeof(*rules) / 2 ? want : cap * 2;
	rules = realloc(policy->rules, cap * sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	policy->rules = rules;
	policy->cap_rules = cap;
	return 0;
}

int cgf_policy_add_rule(struct cgf_policy *policy, const char *text, struct cgf_error *err)
{
	struct cgf_error dummy;
	struct cgf_rule rule;
	int ret;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	copy_str(err->source, sizeof(err->source), "--allow");
	if (!policy)
		return -EINVAL;
	ret = cgf_rule_parse(text, &rule, err);
	if (ret)
		return ret;
	rule.line = 0;
	ret = reserve_rules(policy, 1);
	if (ret) {
		set_reason(err, "out of memory");
		return ret;
	}
	policy->rules[policy->n_rules++] = rule;
	return 0;
}

/* ---- directives: accept-risk ------------------------------------------ */

#define ACCEPT_RISK "accept-risk"

/*
 * "accept-risk NAME..." (NAME: net_raw, net_admin): the policy lets a
 * workload that holds that capability run where no boundary program judges
 * what leaves its network namespace.  Returns 1 when line is not this
 * directive, 0 with the bits in *risk, or -EINVAL with err's column and reason.
 */
static int parse_accept_risk(const char *line, const char *s, uint32_t *risk,
			     struct cgf_error *err)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
		{ "net_raw", CGF_RISK_NET_RAW },
		{ "net_admin", CGF_RISK_NET_ADMIN },
	};
	size_t klen = sizeof(ACCEPT_RISK) - 1;
	unsigned n = 0;

	if (strncmp(s, ACCEPT_RISK, klen) || (s[klen] && !is_blank(s[klen])))
		return 1;
	s += klen;
	for (;;) {
		const char *w, *e;
		struct qbuf q;
		size_t i;

		for (w = s; is_blank(*w); w++)
			;
		s = w;
		if (!*w)
			break;
		for (e = w; *e && !is_blank(*e); e++)
			;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if ((size_t)(e - w) == strlen(names[i].name) &&
			    !strncmp(w, names[i].name, (size_t)(e - w)))
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return fail_at(err, line, w,
				       "accept-risk: unknown risk '%s' (net_raw: AF_PACKET; net_admin: "
				       "tunnels, TUN devices, netdev rules)",
				       quote(&q, w, (size_t)(e - w)));
		*risk |= names[i].bit;
		n++;
		s = e;
	}
	if (!n)
		return fail_at(err, line, s,
			       "accept-risk: which risk? name net_raw and/or net_admin");
	return 0;
}

/* ---- "dns" directives -------------------------------------------------- */

static const struct {
	const char *name;
	uint16_t type;
} dns_types[] = {
	{ "A", 1 },	     { "NS", 2 },	{ "CNAME", 5 },	  { "SOA", 6 },
	{ "NULL", 10 },	     { "PTR", 12 },	{ "HINFO", 13 },  { "MX", 15 },
	{ "TXT", 16 },	     { "RP", 17 },	{ "AFSDB", 18 },  { "AAAA", 28 },
	{ "LOC", 29 },	     { "SRV", 33 },	{ "NAPTR", 35 },  { "CERT", 37 },
	{ "DNAME", 39 },     { "DS", 43 },	{ "SSHFP", 44 },  { "RRSIG", 46 },
	{ "NSEC", 47 },	     { "DNSKEY", 48 },	{ "NSEC3", 50 },  { "TLSA", 52 },
	{ "SMIMEA", 53 },    { "CDS", 59 },	{ "CDNSKEY", 60 }, { "OPENPGPKEY", 61 },
	{ "SVCB", 64 },	     { "HTTPS", 65 },	{ "URI", 256 },	  { "CAA", 257 },
};

/* OPT and the query/meta range (RFC 6895: 128-255): never data a name can have. */
static bool dns_type_meta(unsigned long t)
{
	return t == 41 || (t >= 128 && t <= 255);
}

/* The types the proxy answers whatever the policy says. */
static bool dns_type_default(uint16_t t)
{
	return t == 1 || t == 28 || t == 5 || t == 64 || t == 65;
}

uint16_t cgf_dns_type_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (!strcasecmp(name, dns_types[i].name))
			return dns_types[i].type;
	if (!strncasecmp(name, "TYPE", 4) && is_digit(name[4])) {
		char *end;
		unsigned long t;

		errno = 0;
		t = strtoul(name + 4, &end, 10);
		if (!errno && !*end && name[4] != '0' && t >= 1 && t <= 65535 && !dns_type_meta(t))
			return (uint16_t)t;
	}
	return 0;
}

const char *cgf_dns_type_name(uint16_t type, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].type == type)
			return dns_types[i].name;
	snprintf(buf, len, "TYPE%u", type);
	return buf;
}

/* The "dns" directives of one buffer, applied to the policy only once it all parsed. */
struct dns_directives {
	int mode; /* -1: no mode line yet */
	char mode_source[64];
	uint16_t types[CGF_DNS_TYPES_MAX];
	size_t n_types;
};

static const char *mode_name(int mode)
{
	return mode == CGF_DNS_PROXY ? "proxy" : "resolve";
}

/* The next blank-separated word of s: [*a, *b); false at the end. */
static bool next_word(const char **s, const char **a, const char **b)
{
	const char *p = *s;

	while (is_blank(*p))
		p++;
	if (!*p)
		return false;
	*a = p;
	while (*p && !is_blank(*p))
		p++;
	*b = p;
	*s = p;
	return true;
}

/*
 * Is line (comment removed) a "dns" directive?  Then it is parsed into dd
 * (policy holds what earlier buffers said) and *handled is set.
 */
static int parse_directive(const struct cgf_policy *policy, const char *source, unsigned lineno,
			   const char *line, struct dns_directives *dd, bool *handled,
			   struct cgf_error *err)
{
	const char *s = line, *a, *b, *va, *vb;
	struct qbuf q;
	char word[64];

	*handled = false;
	if (!next_word(&s, &a, &b) || b - a != 3 || strncasecmp(a, "dns", 3))
		return 0;
	if (!next_word(&s, &va, &vb))
		return 0; /* a lone "dns": the single-label domain name */
	*handled = true;
	if ((vb - va == 7 && !strncasecmp(va, "resolve", 7)) ||
	    (vb - va == 5 && !strncasecmp(va, "proxy", 5))) {
		int mode = vb - va == 5 ? CGF_DNS_PROXY : CGF_DNS_RESOLVE;

		if (next_word(&s, &a, &b))
			return fail_at(err, line, a, "unexpected '%s' after 'dns %s'",
				       quote(&q, a, (size_t)(b - a)), mode_name(mode));
		if (dd->mode >= 0 && dd->mode != mode)
			return fail_at(err, line, va, "'dns %s' contradicts 'dns %s' at %s",
				       mode_name(mode), mode_name(dd->mode), dd->mode_source);
		if (dd->mode < 0 && policy->dns_mode_source[0] && (int)policy->dns_mode != mode)
			return fail_at(err, line, va, "'dns %s' contradicts 'dns %s' at %s",
				       mode_name(mode), mode_name((int)policy->dns_mode),
				       policy->dns_mode_source);
		if (dd->mode < 0) {
			dd->mode = mode;
			/* keep the end of a long file name: it names the file */
			copy_str(word, sizeof(word), source ? source : "");
			snprintf(dd->mode_source, sizeof(dd->mode_source), "%.50s:%u", word,
				 lineno);
		}
		return 0;
	}
	if (vb - va == 10 && !strncasecmp(va, "allow-type", 10)) {
		bool any = false;

		while (next_word(&s, &a, &b)) {
			uint16_t t;
			size_t i;

			any = true;
			if ((size_t)(b - a) >= sizeof(word))
				return fail_at(err, line, a, "unknown DNS type '%s'",
					       quote(&q, a, (size_t)(b - a)));
			memcpy(word, a, (size_t)(b - a));
			word[b - a] = '\0';
			t = cgf_dns_type_parse(word);
			if (!t)
				return fail_at(err, line, a, "unknown DNS type '%s' (a name such as "
					       "TXT, MX, SRV, or TYPE1-TYPE65535 except OPT and the "
					       "meta types 128-255)", quote(&q, a, (size_t)(b - a)));
			if (dns_type_default(t))
				return fail_at(err, line, a, "'%s' is always answered: list only "
					       "other types", quote(&q, a, (size_t)(b - a)));
			for (i = 0; i < dd->n_types && dd->types[i] != t; i++)
				;
			if (i < dd->n_types)
				continue; /* named twice: no harm */
			if (dd->n_types == CGF_DNS_TYPES_MAX)
				return fail_at(err, line, a, "too many DNS types allowed (at most %d)",
					       CGF_DNS_TYPES_MAX);
			/* sorted insert */
			for (i = dd->n_types; i > 0 && dd->types[i - 1] > t; i--)
				dd->types[i] = dd->types[i - 1];
			dd->types[i] = t;
			dd->n_types++;
		}
		if (!any)
			return fail_at(err, line, vb, "'dns allow-type' needs at least one type");
		return 0;
	}
	return fail_at(err, line, va, "unknown dns directive '%s' (dns resolve, dns proxy, "
		       "dns allow-type TYPE...)", quote(&q, va, (size_t)(vb - va)));
}

/*
 * Rules are parsed into the spare capacity after policy->n_rules, which is only
 * raised once the whole buffer parsed: the rules already there never change.
 */
int cgf_policy_parse_buffer(struct cgf_policy *policy, const char *source,
			    const char *buf, size_t len, struct cgf_error *err)
{
	struct cgf_error dummy;
	char line[CGF_LINE_MAX + 1];
	struct dns_directives dd = { .mode = -1 };
	size_t off = 0, n = 0;
	unsigned lineno = 0;
	uint32_t risk = 0;
	const char *nul;
	bool directive;
	int ret;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	copy_str(err->source, sizeof(err->source), source ? source : "");
	if (!policy || (!buf && len))
		return -EINVAL;
	memcpy(dd.types, policy->dns_types, sizeof(dd.types));
	dd.n_types = policy->n_dns_types;

	nul = len ? memchr(buf, '\0', len) : NULL;
	if (nul) {
		const char *ls = buf, *s;

		err->line = 1;
		for (s = buf; s < nul; s++) {
			if (*s == '\n') {
				err->line++;
				ls = s + 1;
			}
		}
		err->column = (unsigned)(nul - ls) + 1;
		set_reason(err, "binary data (NUL byte) at line %u", err->line);
		return -EINVAL;
	}
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		off = 3; /* UTF-8 byte order mark */

	while (off < len) {
		const char *ls = buf + off, *nl = memchr(ls, '\n', len - off), *hash, *s;
		size_t ll = nl ? (size_t)(nl - ls) : len - off;

		off += ll + (nl ? 1 : 0);
		lineno++;
		if (ll && ls[ll - 1] == '\r')
			ll--;
		if (ll > CGF_LINE_MAX) {
			err->line = lineno;
			err->column = CGF_LINE_MAX + 1;
			set_reason(err, "line longer than %d characters", CGF_LINE_MAX);
			return -EINVAL;
		}
		hash = memchr(ls, '#', ll);
		if (hash)
			ll = (size_t)(hash - ls);
		memcpy(line, ls, ll);
		line[ll] = '\0';
		for (s = line; is_blank(*s); s++)
			;
		if (!*s)
			continue;
		ret = parse_accept_risk(line, s, &risk, err);
		if (ret <= 0) {
			if (ret) {
				err->line = lineno;
				return ret;
			}
			continue;
		}
		ret = parse_directive(policy, source, lineno, line, &dd, &directive, err);
		if (ret) {
			err->line = lineno;
			return ret;
		}
		if (directive)
			continue;
		ret = reserve_rules(policy, n + 1);
		if (ret) {
			err->line = lineno;
			set_reason(err, "out of memory");
			return ret;
		}
		ret = cgf_rule_parse(line, &policy->rules[policy->n_rules + n], err);
		if (ret) {
			err->line = lineno;
			return ret;
		}
		policy->rules[policy->n_rules + n].line = lineno;
		n++;
	}
	if (!n) {
		set_reason(err, "empty policy: no rules");
		return -EINVAL;
	}
	policy->n_rules += n;
	policy->accept_risk |= risk;
	if (dd.mode >= 0 && !policy->dns_mode_source[0]) {
		policy->dns_mode = (enum cgf_dns_mode)dd.mode;
		memcpy(policy->dns_mode_source, dd.mode_source, sizeof(dd.mode_source));
	}
	memcpy(policy->dns_types, dd.types, sizeof(dd.types));
	policy->n_dns_types = dd.n_types;
	return 0;
}

int cgf_policy_load_file(struct cgf_policy *policy, const char *path, struct cgf_error *err)
{
	struct cgf_error dummy;
	struct stat st;
	size_t cap, len = 0;
	char *buf = NULL;
	int fd, ret;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	if (!policy || !path)
		return -EINVAL;
	copy_str(err->source, sizeof(err->source), path);

	/* O_NONBLOCK: opening a FIFO must not hang; regular files ignore it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		set_reason(err, "cannot open policy file: %s", strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		set_reason(err, "cannot stat policy file: %s", strerror(-ret));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		set_reason(err, "is a directory, not a policy file");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		set_reason(err, "not a regular file");
		goto out;
	}
	if (st.st_size > (off_t)CGF_POLICY_FILE_MAX) {
		ret = -EFBIG;
		set_reason(err, "policy file too large (%lld bytes, at most %u MiB)",
			   (long long)st.st_size, CGF_POLICY_FILE_MAX >> 20);
		goto out;
	}
	/* One byte more than the size, to see a file that grew meanwhile. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		set_reason(err, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *nbuf;

			if (cap > CGF_POLICY_FILE_MAX) {
				ret = -EFBIG;
				set_reason(err, "policy file too large (more than %u MiB)",
					   CGF_POLICY_FILE_MAX >> 20);
				goto out;
			}
			cap = cap * 2 > CGF_POLICY_FILE_MAX + 1 ? CGF_POLICY_FILE_MAX + 1 : cap * 2;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				ret = -ENOMEM;
				set_reason(err, "out of memory");
				goto out;
			}
			buf = nbuf;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			set_reason(err, "cannot read policy file: %s", strerror(-ret));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	ret = cgf_policy_parse_buffer(policy, path, buf, len, err);
out:
	free(buf);
	close(fd);
	return ret;
}

void cgf_policy_free(struct cgf_policy *policy)
{
	if (!policy)
		return;
	free(policy->rules);
	memset(policy, 0, sizeof(*policy));
}

void cgf_error_format(const struct cgf_error *err, char *buf, size_t len)
{
	char where[sizeof(err->source) + 48];
	size_t o = 0;

	if (!buf || !len)
		return;
	if (!err) {
		buf[0] = '\0';
		return;
	}
	where[0] = '\0';
	if (err->source[0])
		o += (size_t)snprintf(where + o, sizeof(where) - o, "%.*s", (int)sizeof(err->source),
				      err->source);
	if (err->line) {
		o += (size_t)snprintf(where + o, sizeof(where) - o, "%s%u", o ? ":" : "", err->line);
		if (err->column)
			o += (size_t)snprintf(where + o, sizeof(where) - o, ":%u", err->column);
	} else if (err->column) {
		o += (size_t)snprintf(where + o, sizeof(where) - o, "%scolumn %u", o ? ": " : "",
				      err->column);
	}
	snprintf(buf, len, "%s%s%.*s", where, o ? ": " : "", (int)sizeof(err->reason), err->reason);
}

void cgf_rule_to_grant(const struct cgf_rule *rule, struct cgf_grant *grant)
{
	memset(grant, 0, sizeof(*grant));
	if (rule->kind != CGF_TARGET_PREFIX)
		return; /* family 0: not a grant */
	grant->family = rule->family;
	memcpy(grant->addr, rule->addr, sizeof(grant->addr));
	grant->prefixlen = rule->prefixlen;
	grant->port_lo = rule->port_lo;
	grant->port_hi = rule->port_hi;
	grant->protos = rule->protos;
	grant->expires_ns = 0;
}

/* ---- allowlist -------------------------------------------------------- */

/*
 * How cgf_allowlist_build() works, per family:
 *
 * 1. Each grant becomes an item (address masked to its prefix length, prefix
 *    length, grant index); items are sorted by (address, prefix length,
 *    index).  In that order a prefix comes before every prefix it contains,
 *    and the prefixes it contains follow it without a gap (a pre-order walk
 *    of the prefix tree).
 * 2. Walking the distinct prefixes in that order with a stack of the
 *    enclosing prefixes (at most bits + 1 deep: each is longer than the one
 *    below it), the value of a prefix is the normalized union of the value of
 *    its nearest enclosing prefix, which already holds everything above it,
 *    and its own grants.  Cost: the sort, O(n log n), plus a small sort per
 *    prefix.
 * 3. Normalizing a set of ranges: ranges with the same protocols and expiry
 *    that overlap or touch merge into one; then every range that another
 *    range covers entirely (ports within, protocols a subset, expiry no
 *    later, 0 being never) is dropped.  This keeps the rule of identical
 *    ranges (the later expiry wins) and never changes what is allowed at any
 *    time.  More than CGF_MAX_RANGES ranges left is -E2BIG.
 * 4. Entries are written sorted by key in memcmp order, which for these keys
 *    (prefixlen first, always < 256) is prefix length, then address: all /0
 *    first, then /1, and so on.  Each prefix length's entries are already in
 *    address order after step 1, so each goes to the next free slot of its
 *    length's block.
 */

struct wrange {
	uint64_t expires_ns;
	uint16_t lo, hi;
	uint8_t protos;
};

struct item {
	uint8_t addr[16];
	size_t grant;
	uint8_t prefixlen;
};

struct frame {
	const struct item *item; /* the prefix */
	size_t slot;             /* its entry in the output */
};

static int cmp_item(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	int c = memcmp(a->addr, b->addr, sizeof(a->addr));

	if (c)
		return c;
	if (a->prefixlen != b->prefixlen)
		return a->prefixlen < b->prefixlen ? -1 : 1;
	return a->grant < b->grant ? -1 : a->grant > b->grant;
}

/* Whether the expiry a lasts at least as long as b (0 = never expires). */
static bool expiry_ge(uint64_t a, uint64_t b)
{
	return a == 0 || (b != 0 && a >= b);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Groups ranges by (protocols, expiry), then port order. */
static int cmp_class(const void *pa, const void *pb)
{
	const struct wrange *a = pa, *b = pb;

	if (a->protos != b->protos)
		return a->protos < b->protos ? -1 : 1;
	if (a->expires_ns != b->expires_ns)
		return cmp_u64(a->expires_ns, b->expires_ns);
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->hi < b->hi ? -1 : a->hi > b->hi;
}

/* Strongest first: a range that covers another always sorts before it. */
static int cmp_strength(const void *pa, const void *pb)
{
	const struct wrange *a = pa, *b = pb;
	unsigned wa = (unsigned)a->hi - a->lo, wb = (unsigned)b->hi - b->lo;
	int pa_bits = __builtin_popcount(a->protos), pb_bits = __builtin_popcount(b->protos);

	if (wa != wb)
		return wa > wb ? -1 : 1;
	if (pa_bits != pb_bits)
		return pa_bits > pb_bits ? -1 : 1;
	if (a->expires_ns != b->expires_ns) {
		if (a->expires_ns == 0)
			return -1;
		if (b->expires_ns == 0)
			return 1;
		return -cmp_u64(a->expires_ns, b->expires_ns);
	}
	return cmp_class(pa, pb);
}

/* Output order of an entry's ranges. */
static int cmp_ports(const void *pa, const void *pb)
{
	const struct wrange *a = pa, *b = pb;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->protos != b->protos)
		return a->protos < b->protos ? -1 : 1;
	return cmp_u64(a->expires_ns, b->expires_ns);
}

static bool covers(const struct wrange *s, const struct wrange *r)
{
	return s->lo <= r->lo && r->hi <= s->hi && !(r->protos & ~s->protos) &&
	       expiry_ge(s->expires_ns, r->expires_ns);
}

/*
 * Normalizes w[0..n) in place (see step 3 above).  Returns how many ranges
 * are left, in port order; a result above CGF_RANGES_COUNT_MAX means "more".
 */
static size_t normalize(struct wrange *w, size_t n)
{
	size_t i, m = 0, k = 0, j;

	if (n <= 1)
		return n;
	qsort(w, n, sizeof(*w), cmp_class);
	for (i = 0; i < n; i++) {
		struct wrange *last = m ? &w[m - 1] : NULL;

		if (last && last->protos == w[i].protos && last->expires_ns == w[i].expires_ns &&
		    (unsigned)w[i].lo <= (unsigned)last->hi + 1) {
			if (w[i].hi > last->hi)
				last->hi = w[i].hi;
		} else {
			w[m++] = w[i];
		}
	}
	qsort(w, m, sizeof(*w), cmp_strength);
	for (i = 0; i < m; i++) {
		for (j = 0; j < k && !covers(&w[j], &w[i]); j++)
			;
		if (j < k)
			continue;
		if (k == CGF_RANGES_COUNT_MAX)
			return k + 1;
		w[k++] = w[i];
	}
	qsort(w, k, sizeof(*w), cmp_ports);
	return k;
}

static bool prefix_contains(const struct item *outer, const struct item *inner)
{
	unsigned full = outer->prefixlen / 8, rest = outer->prefixlen % 8;

	if (outer->prefixlen > inner->prefixlen || memcmp(outer->addr, inner->addr, full))
		return false;
	return !rest || !((outer->addr[full] ^ inner->addr[full]) & (0xffu << (8 - rest)));
}

static struct cgf_allow *entry_value(struct cgf_allowlist *out, int family, size_t slot)
{
	return family == AF_INET ? &out->v4[slot].value : &out->v6[slot].value;
}

static int build_family(const struct cgf_grant *grants, size_t n_grants, int family,
			struct cgf_allowlist *out, struct cgf_error *err)
{
	unsigned bits = family == AF_INET ? 32 : 128;
	size_t next_slot[129] = { 0 }, count[129] = { 0 };
	struct frame stack[129];
	struct item *items = NULL;
	struct wrange *work = NULL;
	size_t n = 0, n_distinct = 0, work_cap = 0, depth = 0, i, j, g, l;
	void *entries = NULL;
	int ret = 0;

	for (i = 0; i < n_grants; i++)
		n += grants[i].family == family;
	if (!n)
		return 0;
	items = calloc(n, sizeof(*items));
	if (!items)
		goto nomem;
	for (i = 0, j = 0; i < n_grants; i++) {
		if (grants[i].family != family)
			continue;
		memcpy(items[j].addr, grants[i].addr, bits / 8);
		mask_addr(items[j].addr, grants[i].prefixlen, bits);
		items[j].prefixlen = grants[i].prefixlen;
		items[j].grant = i;
		j++;
	}
	qsort(items, n, sizeof(*items), cmp_item);

	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && items[j].prefixlen == items[i].prefixlen &&
				!memcmp(items[j].addr, items[i].addr, sizeof(items[i].addr)); j++)
			;
		count[items[i].prefixlen]++;
		n_distinct++;
	}
	if (n_distinct > CGF_MAX_ENTRIES) {
		ret = -E2BIG;
		set_reason(err, "too many %s prefixes (%zu, at most %u)",
			   family == AF_INET ? "IPv4" : "IPv6", n_distinct, CGF_MAX_ENTRIES);
		goto out;
	}
	for (l = 1; l <= bits; l++)
		next_slot[l] = next_slot[l - 1] + count[l - 1];

	entries = calloc(n_distinct, family == AF_INET ? sizeof(struct cgf_entry4)
						       : sizeof(struct cgf_entry6));
	if (!entries)
		goto nomem;
	if (family == AF_INET) {
		out->v4 = entries;
		out->n_v4 = n_distinct;
	} else {
		out->v6 = entries;
		out->n_v6 = n_distinct;
	}

	for (i = 0; i < n; i = j) {
		const struct item *it = &items[i];
		const struct cgf_allow *parent = NULL;
		struct cgf_allow *value;
		size_t own, k, slot = next_slot[it->prefixlen]++;
		size_t m = 0;

		for (j = i + 1; j < n && items[j].prefixlen == it->prefixlen &&
				!memcmp(items[j].addr, it->addr, sizeof(it->addr)); j++)
			;
		own = j - i;
		while (depth && !prefix_contains(stack[depth - 1].item, it))
			depth--;
		if (depth)
			parent = entry_value(out, family, stack[depth - 1].slot);

		if (own + CGF_MAX_RANGES > work_cap) {
			size_t cap = own + CGF_MAX_RANGES;
			struct wrange *nw = realloc(work, cap * sizeof(*work));

			if (!nw)
				goto nomem;
			work = nw;
			work_cap = cap;
		}
		for (k = 0; parent && k < parent->n_ranges; k++, m++) {
			work[m].lo = parent->ranges[k].port_lo;
			work[m].hi = parent->ranges[k].port_hi;
			work[m].protos = parent->ranges[k].protos;
			work[m].expires_ns = parent->ranges[k].expires_ns;
		}
		for (g = i; g < j; g++, m++) {
			const struct cgf_grant *gr = &grants[items[g].grant];

			work[m].lo = gr->port_lo;
			work[m].hi = gr->port_hi;
			work[m].protos = gr->protos;
			work[m].expires_ns = gr->expires_ns;
		}
		m = normalize(work, m);
		if (m > CGF_MAX_RANGES) {
			char addr[INET6_ADDRSTRLEN], num[32];

			inet_ntop(family, it->addr, addr, sizeof(addr));
			if (m > CGF_RANGES_COUNT_MAX)
				snprintf(num, sizeof(num), "more than %d", CGF_RANGES_COUNT_MAX);
			else
				snprintf(num, sizeof(num), "%zu", m);
			set_reason(err, "too many port ranges cover %s/%u (%s, at most %d)", addr,
				   it->prefixlen, num, CGF_MAX_RANGES);
			ret = -E2BIG;
			goto out;
		}

		if (family == AF_INET) {
			out->v4[slot].key.prefixlen = it->prefixlen;
			memcpy(out->v4[slot].key.addr, it->addr, 4);
		} else {
			out->v6[slot].key.prefixlen = it->prefixlen;
			memcpy(out->v6[slot].key.addr, it->addr, 16);
		}
		value = entry_value(out, family, slot);
		value->n_ranges = (uint32_t)m;
		for (k = 0; k < m; k++) {
			value->ranges[k].expires_ns = work[k].expires_ns;
			value->ranges[k].port_lo = work[k].lo;
			value->ranges[k].port_hi = work[k].hi;
			value->ranges[k].protos = work[k].protos;
		}
		stack[depth].item = it;
		stack[depth].slot = slot;
		depth++;
	}
	goto out;
nomem:
	ret = -ENOMEM;
	set_reason(err, "out of memory");
out:
	free(work);
	free(items);
	return ret;
}

static int check_grant(const struct cgf_grant *g, size_t i, struct cgf_error *err)
{
	if (g->family != AF_INET && g->family != AF_INET6) {
		set_reason(err, "grant %zu: unknown address family %d", i, g->family);
		return -EINVAL;
	}
	if (g->prefixlen > (g->family == AF_INET ? 32 : 128)) {
		set_reason(err, "grant %zu: prefix length %u out of range for %s (0-%u)", i,
			   g->prefixlen, g->family == AF_INET ? "IPv4" : "IPv6",
			   g->family == AF_INET ? 32u : 128u);
		return -EINVAL;
	}
	if (g->port_lo > g->port_hi) {
		set_reason(err, "grant %zu: port range %u-%u is reversed", i, g->port_lo,
			   g->port_hi);
		return -EINVAL;
	}
	if (!g->protos || (g->protos & ~CGF_PROTO_ANY)) {
		set_reason(err, "grant %zu: bad protocol bits 0x%x", i, g->protos);
		return -EINVAL;
	}
	return 0;
}

int cgf_allowlist_build(const struct cgf_grant *grants, size_t n_grants,
			struct cgf_allowlist *out, struct cgf_error *err)
{
	struct cgf_error dummy;
	size_t i;
	int ret;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	if (!out || (!grants && n_grants)) {
		set_reason(err, "no grants or no output");
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	for (i = 0; i < n_grants; i++) {
		ret = check_grant(&grants[i], i, err);
		if (ret)
			return ret;
	}
	ret = build_family(grants, n_grants, AF_INET, out, err);
	if (!ret)
		ret = build_family(grants, n_grants, AF_INET6, out, err);
	if (ret)
		cgf_allowlist_free(out);
	return ret;
}

void cgf_allowlist_free(struct cgf_allowlist *list)
{
	if (!list)
		return;
	free(list->v4);
	free(list->v6);
	memset(list, 0, sizeof(*list));
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of the policy module: rule and policy parsing (tables of valid
 * and malformed inputs with the expected message and column), policy files,
 * and the allowlist build (hand-made cases and a randomized property test of
 * the LPM union with a fixed seed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "policy.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CHECK(cond, ...)                          \
	do {                                      \
		if (!(cond))                      \
			fail_msg(__VA_ARGS__);    \
	} while (0)

#define TCP CGF_PROTO_TCP
#define UDP CGF_PROTO_UDP
#define ANY CGF_PROTO_ANY

/* xorshift64*: a small generator with a fixed seed, the same on every run. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng() % n);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- "dns" directives --------------------------------------------------- */

static void test_dns_directives(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	const char *text = "# proxy mode\ndns proxy\n*.example.com:443/tcp\n"
			   "DNS allow-type txt MX TYPE99 mx\nexample.org\ndns\n";

	(void)state;
	assert_int_equal(cgf_policy_parse_buffer(&pol, "p.policy", text, strlen(text), &err), 0);
	/* directives are no rules; a lone "dns" is the domain name dns */
	assert_int_equal(pol.n_rules, 3);
	assert_int_equal(pol.rules[2].kind, CGF_TARGET_DOMAIN);
	assert_string_equal(pol.rules[2].domain, "dns");
	assert_int_equal(pol.dns_mode, CGF_DNS_PROXY);
	assert_string_equal(pol.dns_mode_source, "p.policy:2");
	assert_int_equal(pol.n_dns_types, 3);
	assert_int_equal(pol.dns_types[0], 15);
	assert_int_equal(pol.dns_types[1], 16);
	assert_int_equal(pol.dns_types[2], 99);
	/* a second file that agrees, and more types, merge */
	assert_int_equal(cgf_policy_parse_buffer(&pol, "q", "dns proxy\ndns allow-type SRV\n1.2.3.4\n",
						 36, &err), 0);
	assert_int_equal(pol.n_dns_types, 4);
	assert_string_equal(pol.dns_mode_source, "p.policy:2");
	cgf_policy_free(&pol);

	/* the default is resolve */
	assert_int_equal(cgf_policy_parse_buffer(&pol, "r", "example.com\n", 12, &err), 0);
	assert_int_equal(pol.dns_mode, CGF_DNS_RESOLVE);
	assert_string_equal(pol.dns_mode_source, "");
	cgf_policy_free(&pol);
}

struct dns_bad_case {
	const char *text;
	unsigned line, column;
	const char *reason;
};

static void test_dns_directive_errors(void **state)
{
	static const struct dns_bad_case cases[] = {
		{ "dns proxi\n1.2.3.4\n", 1, 5, "unknown dns directive 'proxi'" },
		{ "dns proxy now\n1.2.3.4\n", 1, 11, "unexpected 'now' after 'dns proxy'" },
		{ "1.2.3.4\ndns proxy\ndns resolve\n", 3, 5,
		  "'dns resolve' contradicts 'dns proxy' at s:2" },
		{ "dns allow-type\n1.2.3.4\n", 1, 15, "'dns allow-type' needs at least one type" },
		{ "dns allow-type TXT BOGUS\n1.2.3.4\n", 1, 20, "unknown DNS type 'BOGUS'" },
		{ "dns allow-type ANY\n1.2.3.4\n", 1, 16, "unknown DNS type 'ANY'" },
		{ "dns allow-type TYPE41\n1.2.3.4\n", 1, 16, "unknown DNS type 'TYPE41'" },
		{ "dns allow-type TYPE0\n1.2.3.4\n", 1, 16, "unknown DNS type 'TYPE0'" },
		{ "dns allow-type TYPE65536\n1.2.3.4\n", 1, 16, "unknown DNS type 'TYPE65536'" },
		{ "dns allow-type AAAA\n1.2.3.4\n", 1, 16, "'AAAA' is always answered" },
		{ "dns proxy\n", 0, 0, "empty policy: no rules" },
		{ "  dns   proxy # c\n  dns resolve\n1.2.3.4\n", 2, 7, "contradicts 'dns proxy' at s:1" },
	};
	char many[512];
	size_t i, o = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cgf_policy pol = { 0 };
		struct cgf_error err;
		int ret = cgf_policy_parse_buffer(&pol, "s", cases[i].text, strlen(cases[i].text),
						  &err);

		CHECK(ret == -EINVAL, "'%s': expected -EINVAL, got %d", cases[i].text, ret);
		CHECK(err.line == cases[i].line && err.column == cases[i].column,
		      "'%s': expected %u:%u, got %u:%u (%s)", cases[i].text, cases[i].line,
		      cases[i].column, err.line, err.column, err.reason);
		CHECK(strstr(err.reason, cases[i].reason), "'%s': reason '%s' lacks '%s'",
		      cases[i].text, err.reason, cases[i].reason);
		/* nothing half-applied */
		assert_int_equal(pol.n_rules, 0);
		assert_int_equal(pol.n_dns_types, 0);
		assert_string_equal(pol.dns_mode_source, "");
		cgf_policy_free(&pol);
	}

	/* too many types */
	o += (size_t)sprintf(many + o, "dns allow-type");
	for (i = 0; i <= CGF_DNS_TYPES_MAX; i++)
		o += (size_t)sprintf(many + o, " TYPE%zu", 1000 + i);
	o += (size_t)sprintf(many + o, "\n1.2.3.4\n");
	{
		struct cgf_policy pol = { 0 };
		struct cgf_error err;

		assert_int_equal(cgf_policy_parse_buffer(&pol, "s", many, o, &err), -EINVAL);
		assert_non_null(strstr(err.reason, "too many DNS types allowed (at most 16)"));
		cgf_policy_free(&pol);
	}

	/* a second file may not contradict the first, and then adds nothing */
	{
		struct cgf_policy pol = { 0 };
		struct cgf_error err;
		char msg[600];

		assert_int_equal(cgf_policy_parse_buffer(&pol, "a.policy", "dns resolve\n1.2.3.4\n",
							 20, &err), 0);
		assert_int_equal(cgf_policy_parse_buffer(&pol, "b.policy",
							 "dns allow-type TXT\n5.6.7.8\ndns proxy\n",
							 37, &err), -EINVAL);
		cgf_error_format(&err, msg, sizeof(msg));
		assert_string_equal(msg, "b.policy:3:5: 'dns proxy' contradicts 'dns resolve' at "
				    "a.policy:1");
		assert_int_equal(pol.n_rules, 1);
		assert_int_equal(pol.n_dns_types, 0);
		assert_int_equal(pol.dns_mode, CGF_DNS_RESOLVE);
		cgf_policy_free(&pol);
	}
}

static void test_dns_type_names(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(cgf_dns_type_parse("TXT"), 16);
	assert_int_equal(cgf_dns_type_parse("caa"), 257);
	assert_int_equal(cgf_dns_type_parse("NULL"), 10);
	assert_int_equal(cgf_dns_type_parse("TYPE65535"), 65535);
	assert_int_equal(cgf_dns_type_parse("TYPE255"), 0);
	assert_int_equal(cgf_dns_type_parse("TYPE007"), 0);
	assert_int_equal(cgf_dns_type_parse("OPT"), 0);
	assert_string_equal(cgf_dns_type_name(16, buf, sizeof(buf)), "TXT");
	assert_string_equal(cgf_dns_type_name(4242, buf, sizeof(buf)), "TYPE4242");
}

/* ---- valid rules ------------------------------------------------------- */

struct valid_case {
	const char *text;
	enum cgf_target_kind kind;
	int family;
	const char *addr; /* for CGF_TARGET_PREFIX */
	unsigned prefixlen;
	const char *domain; /* for domains and wildcards */
	unsigned port_lo, port_hi;
	unsigned protos;
};

#define P4(t, a, l, lo, hi, pr) { t, CGF_TARGET_PREFIX, AF_INET, a, l, NULL, lo, hi, pr }
#define P6(t, a, l, lo, hi, pr) { t, CGF_TARGET_PREFIX, AF_INET6, a, l, NULL, lo, hi, pr }
#define DN(t, d, lo, hi, pr) { t, CGF_TARGET_DOMAIN, 0, NULL, 0, d, lo, hi, pr }
#define WC(t, d, lo, hi, pr) { t, CGF_TARGET_WILDCARD, 0, NULL, 0, d, lo, hi, pr }

static const struct valid_case valid_cases[] = {
	P4("198.18.0.1", "198.18.0.1", 32, 0, 65535, ANY),
	P4("198.18.0.0/15", "198.18.0.0", 15, 0, 65535, ANY),
	P4("  198.18.0.0/15\t", "198.18.0.0", 15, 0, 65535, ANY),
	P4("198.18.0.0/15:443/tcp", "198.18.0.0", 15, 443, 443, TCP),
	P4("10.0.0.1/tcp", "10.0.0.1", 32, 0, 65535, TCP),
	P4("10.0.0.0/8/udp", "10.0.0.0", 8, 0, 65535, UDP),
	P4("10.0.0.0/8:22", "10.0.0.0", 8, 22, 22, ANY),
	P4("0.0.0.0/0", "0.0.0.0", 0, 0, 65535, ANY),
	P4("255.255.255.255", "255.255.255.255", 32, 0, 65535, ANY),
	P4("1.2.3.4:0", "1.2.3.4", 32, 0, 0, ANY),
	P4("1.2.3.4:65535", "1.2.3.4", 32, 65535, 65535, ANY),
	P4("1.2.3.4:0-65535", "1.2.3.4", 32, 0, 65535, ANY),
	P4("1.2.3.4:80-89/UDP", "1.2.3.4", 32, 80, 89, UDP),
	P4("1.2.3.4:80-80/Tcp", "1.2.3.4", 32, 80, 80, TCP),
	P4("1.2.3.4\r", "1.2.3.4", 32, 0, 65535, ANY),
	P6("2001:db8::1", "2001:db8::1", 128, 0, 65535, ANY),
	/* Unbracketed IPv6 never has a port: this is an address. */
	P6("2001:db8::1:80", "2001:db8::1:80", 128, 0, 65535, ANY),
	P6("2001:db8::/32", "2001:db8::", 32, 0, 65535, ANY),
	P6("2001:db8::/32/tcp", "2001:db8::", 32, 0, 65535, TCP),
	P6("2001:DB8::1/udp", "2001:db8::1", 128, 0, 65535, UDP),
	P6("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", 128, 0, 65535, ANY),
	P6("::1", "::1", 128, 0, 65535, ANY),
	P6("::", "::", 128, 0, 65535, ANY),
	P6("::/0", "::", 0, 0, 65535, ANY),
	P6("::ffff:1.2.3.4", "::ffff:1.2.3.4", 128, 0, 65535, ANY),
	P6("[2001:db8::1]", "2001:db8::1", 128, 0, 65535, ANY),
	P6("[2001:db8::1]:443", "2001:db8::1", 128, 443, 443, ANY),
	P6("[2001:db8::/32]:443/tcp", "2001:db8::", 32, 443, 443, TCP),
	P6("[::1]/udp", "::1", 128, 0, 65535, UDP),
	P6("[fe80::]:1000-2000", "fe80::", 128, 1000, 2000, ANY),
	DN("example.com", "example.com", 0, 65535, ANY),
	DN("Example.COM.:443/tcp", "example.com", 443, 443, TCP),
	DN("localhost", "localhost", 0, 65535, ANY),
	DN("db:5432", "db", 5432, 5432, ANY),
	DN("deadbeef", "deadbeef", 0, 65535, ANY),
	DN("xn--bcher-kva.example", "xn--bcher-kva.example", 0, 65535, ANY),
	DN("a-b.c-d.e1/udp", "a-b.c-d.e1", 0, 65535, UDP),
	DN("1.2.3.example", "1.2.3.example", 0, 65535, ANY),
	WC("*.example.com:80-89/udp", "example.com", 80, 89, UDP),
	WC("*.Example.com.", "example.com", 0, 65535, ANY),
	WC("*.internal", "internal", 0, 65535, ANY),
};

static void test_rule_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];
		struct cgf_error err;
		struct cgf_rule r;
		uint8_t addr[16] = { 0 };
		int ret;

		memset(&err, 0, sizeof(err));
		memset(&r, 0xaa, sizeof(r));
		ret = cgf_rule_parse(c->text, &r, &err);
		CHECK(ret == 0, "'%s': %d %s (column %u)", c->text, ret, err.reason, err.column);
		CHECK(r.kind == c->kind, "'%s': kind %d", c->text, r.kind);
		CHECK(r.port_lo == c->port_lo && r.port_hi == c->port_hi, "'%s': ports %u-%u",
		      c->text, r.port_lo, r.port_hi);
		CHECK(r.protos == c->protos, "'%s': protos %u", c->text, r.protos);
		CHECK(r.line == 0, "'%s': line %u", c->text, r.line);
		if (c->kind == CGF_TARGET_PREFIX) {
			assert_int_equal(inet_pton(c->family, c->addr, addr), 1);
			CHECK(r.family == c->family, "'%s': family %d", c->text, r.family);
			CHECK(!memcmp(r.addr, addr, sizeof(addr)), "'%s': address", c->text);
			CHECK(r.prefixlen == c->prefixlen, "'%s': prefixlen %u", c->text,
			      r.prefixlen);
			CHECK(r.domain[0] == '\0', "'%s': domain set", c->text);
		} else {
			CHECK(!strcmp(r.domain, c->domain), "'%s': domain '%s'", c->text, r.domain);
		}
	}
}

static void test_rule_valid_long_names(void **state)
{
	struct cgf_error err;
	struct cgf_rule r;
	char name[300];
	char *label = repeat('a', 63);

	(void)state;
	/* A 63-character label is fine. */
	snprintf(name, sizeof(name), "%s.com", label);
	assert_int_equal(cgf_rule_parse(name, &r, &err), 0);
	assert_string_equal(r.domain, name);

	/* 253 characters: 3 labels of 63, one of 61, dots between. */
	snprintf(name, sizeof(name), "%s.%s.%s.%.61s", label, label, label, label);
	assert_int_equal(strlen(name), 253);
	assert_int_equal(cgf_rule_parse(name, &r, &err), 0);
	assert_string_equal(r.domain, name);
	/* ... with the trailing dot too. */
	strcat(name, ".");
	assert_int_equal(cgf_rule_parse(name, &r, &err), 0);
	assert_int_equal(strlen(r.domain), 253);
	free(label);
}

/* ---- malformed rules --------------------------------------------------- */

struct invalid_case {
	const char *text;
	const char *reason; /* expected substring */
	unsigned column;
};

static const struct invalid_case invalid_cases[] = {
	/* IPv4 */
	{ "300.1.1.1", "bad IPv4 address '300.1.1.1': octet 300 out of range", 1 },
	{ "1.2.300.1", "octet 300 out of range", 5 },
	{ "1.2.3.256:80", "octet 256 out of range", 7 },
	{ "99999999999999999999.1.1.1", "octet 99999999999999999999 out of range", 1 },
	{ ".1.2.3", "bad IPv4 address '.1.2.3': leading dot", 1 },
	{ "1.2.3.4.", "bad IPv4 address '1.2.3.4.': trailing dot", 8 },
	{ "1..2.3", "empty octet", 3 },
	{ "1.2.3", "bad IPv4 address '1.2.3': 3 octets, expected 4", 1 },
	{ "10", "1 octet, expected 4", 1 },
	{ "10:80", "1 octet, expected 4", 1 },
	{ "1.2.3.4.5", "more than 4 octets", 9 },
	{ "01.2.3.4", "octet '01' has a leading zero", 1 },
	{ "1.2.3.4/33", "prefix length 33 out of range for IPv4 (0-32)", 9 },
	{ "1.2.3.4/999999999999", "prefix length 999999999999 out of range for IPv4", 9 },
	{ "1.2.3.4/-1", "prefix length -1 out of range for IPv4 (0-32)", 9 },
	{ "1.2.3.4/2x", "bad prefix length '2x'", 9 },
	{ "1.2.3.4/-", "bad prefix length '-'", 9 },
	{ "1.2.3.4/", "missing prefix length after '/'", 8 },
	{ "1.2.3.4/:80", "missing prefix length after '/'", 8 },
	{ "1.2.3.4/abc", "unknown protocol 'abc' (tcp or udp)", 9 },
	{ "198.18.0.1/15", "host bits set in '198.18.0.1/15' (the network is 198.18.0.0/15)", 1 },
	{ "10.0.0.1/0", "host bits set in '10.0.0.1/0'", 1 },
	/* IPv6 */
	{ "2001:db8::/129", "prefix length 129 out of range for IPv6 (0-128)", 12 },
	{ "[2001:db8::/200]:80", "prefix length 200 out of range for IPv6 (0-128)", 13 },
	{ "2001:db8::/-3", "prefix length -3 out of range for IPv6", 12 },
	{ "2001:db8::/x1", "unknown protocol 'x1'", 12 },
	{ "[2001:db8::/]", "missing prefix length after '/'", 12 },
	{ "[2001:db8::1/32]", "host bits set in '2001:db8::1/32' (the network is 2001:db8::/32)", 2 },
	{ "2001:db8:::1", "bad IPv6 address '2001:db8:::1': ':::'", 9 },
	{ "2001::db8::1", "'::' used more than once", 10 },
	{ "2001:db8::g", "unexpected character 'g'", 11 },
	{ "fe80::1%eth0", "zone index ('%eth0') not supported", 8 },
	{ "12345::1", "group '12345' has more than 4 hex digits", 1 },
	{ "1:2:3:4:5:6:7", "7 groups, expected 8", 1 },
	{ "1:2:3:4:5:6:7:8:9", "9 groups, expected 8", 1 },
	{ "1::2:3:4:5:6:7:8", "too many groups", 1 },
	{ ":1:2:3:4:5:6:7", "leading ':'", 1 },
	{ "1:2:3:4:5:6:7:", "trailing ':'", 14 },
	{ "::1.2.3.4:5", "IPv4 part must come last", 3 },
	{ "::ffff:1.2.3.999", "bad IPv4 address '1.2.3.999': octet 999 out of range", 14 },
	{ "::ffff:1.2.3.a", "bad IPv4 part '1.2.3.a'", 8 },
	{ "https://example.com/", "'https://example.com/' is a URL, not a rule", 1 },
	{ "[2001:db8::1", "unclosed bracket in '[2001:db8::1'", 1 },
	{ "[2001:db8::1:443", "unclosed bracket", 1 },
	{ "[]", "empty brackets", 1 },
	{ "[]:80", "empty brackets", 1 },
	{ "[1.2.3.4]:80", "'1.2.3.4' is not an IPv6 address (brackets are for IPv6 only)", 2 },
	{ "[example.com]", "unexpected character 'x'", 3 },
	{ "[2001:db8::1]x", "unexpected 'x' after ']'", 14 },
	{ "[2001:db8::1]]", "unexpected ']' after ']'", 14 },
	{ "[2001:db8::]/32", "prefix length goes inside the brackets", 13 },
	{ "2001:db8::/32:443", "a port after an IPv6 prefix needs brackets", 1 },
	{ "[::1]:", "missing port after ':'", 6 },
	/* ports */
	{ "1.2.3.4:70000", "port 70000 out of range (0-65535)", 9 },
	{ "1.2.3.4:99999999999999999999", "port 99999999999999999999 out of range (0-65535)", 9 },
	{ "1.2.3.4:-1", "bad port range '-1': missing first port", 9 },
	{ "1.2.3.4:", "missing port after ':'", 8 },
	{ "1.2.3.4::80", "bad port ':80'", 9 },
	{ "example.com:", "missing port after ':'", 12 },
	{ "example.com:/tcp", "missing port after ':'", 12 },
	{ "example.com:http", "bad port 'http'", 13 },
	{ "example.com:8o", "bad port '8o'", 13 },
	{ "example.com:+80", "bad port '+80'", 13 },
	{ "example.com:90-80", "port range 90-80 is reversed", 13 },
	{ "example.com:80-", "bad port range '80-': missing last port", 15 },
	{ "example.com:80-70000", "port 70000 out of range (0-65535)", 16 },
	{ "example.com:80-90-100", "bad port '90-100'", 16 },
	{ "example.com:80:90", "bad port '80:90'", 13 },
	/* protocols */
	{ "example.com:80/icmp", "unknown protocol 'icmp' (tcp or udp)", 16 },
	{ "example.com/", "missing protocol after '/'", 12 },
	{ "example.com:80/", "missing protocol after '/'", 15 },
	{ "1.2.3.4:80/tcp/udp", "unknown protocol 'tcp/udp' (tcp or udp)", 12 },
	{ "example.com/tcp:80", "unknown protocol 'tcp:80'", 13 },
	/* domains */
	{ "example.com/24", "prefix length after domain name 'example.com'", 13 },
	{ "-a.com", "label '-a' starts with a hyphen", 1 },
	{ "a-.com", "label 'a-' ends with a hyphen", 2 },
	{ "www.a-", "label 'a-' ends with a hyphen", 6 },
	{ "exa_mple.com", "bad character '_' in domain name 'exa_mple.com'", 4 },
	{ "exa mple.com", "unexpected 'mple.com' after the rule (one rule per line)", 5 },
	{ "a..com", "empty label in domain name 'a..com'", 3 },
	{ "example.com..", "empty label", 13 },
	{ ".example.com", "empty label", 1 },
	{ "foo.*.com", "'*' allowed only as the first label", 5 },
	{ "*.*.com", "'*' allowed only as the first label", 3 },
	{ "*example.com", "'*' must be followed by '.'", 1 },
	{ "*", "'*' must be followed by '.'", 1 },
	{ "*.", "missing domain name after '*.'", 2 },
	{ "*..", "empty label", 3 },
	{ "example.123", "top-level label '123' is all digits", 9 },
	{ "1.2.3.4x.5", "top-level label '5' is all digits", 10 },
	{ "b\xc3\xbc" "cher.de", "non-ASCII character in domain name 'b\\xc3\\xbccher.de' (write it in its xn-- form)", 2 },
	{ "example.com\x01", "bad character '\\x01'", 12 },
	{ "example.com]:80", "bad character ']'", 12 },
	/* shape */
	{ "", "empty rule", 1 },
	{ "   ", "empty rule", 4 },
	{ "1.2.3.4 tcp", "unexpected 'tcp' after the rule (one rule per line)", 9 },
	{ " 1.2.3.4\t\t1.2.3.5 ", "unexpected '1.2.3.5' after the rule", 11 },
	{ ":80", "missing address or domain name before ':'", 1 },
	{ "/tcp", "missing address or domain name before '/'", 1 },
};

static void check_invalid(const char *text, const char *reason, unsigned column)
{
	struct cgf_error err;
	struct cgf_rule r, before;
	int ret;

	memset(&err, 0, sizeof(err));
	memset(&r, 0x5a, sizeof(r));
	before = r;
	ret = cgf_rule_parse(text, &r, &err);
	CHECK(ret == -EINVAL, "'%s': returned %d, expected -EINVAL", text, ret);
	CHECK(strstr(err.reason, reason), "'%s': reason '%s', expected '%s'", text, err.reason,
	      reason);
	CHECK(err.column == column, "'%s': column %u, expected %u (%s)", text, err.column, column,
	      err.reason);
	CHECK(!memcmp(&r, &before, sizeof(r)), "'%s': rule changed on error", text);
	CHECK((err.reason[0] >= 'a' && err.reason[0] <= 'z') || err.reason[0] == '\'',
	      "'%s': reason not lowercase: '%s'", text, err.reason);
	CHECK(err.reason[strlen(err.reason) - 1] != '.', "'%s': trailing period", text);
}

static void test_rule_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(invalid_cases); i++)
		check_invalid(invalid_cases[i].text, invalid_cases[i].reason,
			      invalid_cases[i].column);
}

static void test_rule_invalid_long_names(void **state)
{
	char *label = repeat('a', 64), *l63 = repeat('b', 63);
	char name[600];

	(void)state;
	snprintf(name, sizeof(name), "%s.com", label);
	check_invalid(name, "label longer than 63 characters", 1);
	snprintf(name, sizeof(name), "www.%s.com:443", label);
	check_invalid(name, "label longer than 63 characters", 5);
	/* 254 characters. */
	snprintf(name, sizeof(name), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	assert_int_equal(strlen(name), 254);
	check_invalid(name, "domain name longer than 253 characters", 1);
	snprintf(name, sizeof(name), "*.%s.%s.%s.%.62s:80", l63, l63, l63, l63);
	check_invalid(name, "domain name longer than 253 characters", 3);
	/* A long quoted input is cut, the message stays within its buffer. */
	snprintf(name, sizeof(name), "%s_%s", l63, l63);
	check_invalid(name, "in domain name 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb_bbbbbbbb...'", 64);
	free(label);
	free(l63);
}

static void test_rule_null_err(void **state)
{
	struct cgf_rule r;

	(void)state;
	assert_int_equal(cgf_rule_parse("1.2.3.4", &r, NULL), 0);
	assert_int_equal(cgf_rule_parse("1.2.3.400", &r, NULL), -EINVAL);
}

/* ---- policies ---------------------------------------------------------- */

struct buffer_case {
	const char *name;
	const char *data;
	size_t len; /* 0: strlen(data) */
	int ret;
	const char *reason; /* substring, when ret != 0 */
	unsigned line, column;
	size_t n_rules;
	unsigned lines[4]; /* of the rules, when ret == 0 */
};

static const struct buffer_case buffer_cases[] = {
	{ "empty", "", 0, -EINVAL, "empty policy: no rules", 0, 0, 0, { 0 } },
	{ "only comments", "# only\n   # comments\n\n\t\n", 0, -EINVAL, "empty policy: no rules", 0, 0, 0, { 0 } },
	{ "one rule, no newline", "example.com", 0, 0, NULL, 0, 0, 1, { 1 } },
	{ "crlf", "1.2.3.4\r\nexample.com:443/tcp\r\n", 0, 0, NULL, 0, 0, 2, { 1, 2 } },
	{ "comments and blanks", "a.com\n\n# c\nb.com # trailing comment\n  c.com:80  \n#x\n",
	  0, 0, NULL, 0, 0, 3, { 1, 4, 5 } },
	{ "comment without space", "1.2.3.4:80#web\n", 0, 0, NULL, 0, 0, 1, { 1 } },
	{ "byte order mark", "\xef\xbb\xbf" "a.com\n", 0, 0, NULL, 0, 0, 1, { 1 } },
	{ "error on line 3", "a.com\nb.com\n1.2.3.4:70000\n", 0, -EINVAL,
	  "port 70000 out of range (0-65535)", 3, 9, 0, { 0 } },
	{ "error after comments", "# x\n\n  bad_name.com # y\n", 0, -EINVAL,
	  "bad character '_'", 3, 6, 0, { 0 } },
	{ "error with crlf", "a.com\r\n1.2.3.4/33\r\n", 0, -EINVAL,
	  "prefix length 33 out of range for IPv4 (0-32)", 2, 9, 0, { 0 } },
	{ "two rules on a line", "a.com b.com\n", 0, -EINVAL,
	  "unexpected 'b.com' after the rule (one rule per line)", 1, 7, 0, { 0 } },
	{ "lone carriage return", "a.com\rb.com\n", 0, -EINVAL, "unexpected 'b.com'", 1, 7, 0, { 0 } },
	{ "nul byte", "a.com\nb.com\nc.c\0m\n", 18, -EINVAL, "binary data (NUL byte) at line 3", 3, 4, 0, { 0 } },
	{ "nul byte in comment", "a.com # \0\n", 10, -EINVAL, "binary data (NUL byte)", 1, 9, 0, { 0 } },
	{ "high bytes", "\xff\xfe\x01garbage\n", 0, -EINVAL, "non-ASCII character in domain name '\\xff\\xfe\\x01garbage'", 1, 1, 0, { 0 } },
};

static void test_buffer_cases(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(buffer_cases); i++) {
		const struct buffer_case *c = &buffer_cases[i];
		struct cgf_policy pol = { 0 };
		struct cgf_error err;
		size_t len = c->len ? c->len : strlen(c->data);
		int ret = cgf_policy_parse_buffer(&pol, "t.policy", c->data, len, &err);

		CHECK(ret == c->ret, "%s: returned %d (%s)", c->name, ret, err.reason);
		CHECK(!strcmp(err.source, "t.policy"), "%s: source '%s'", c->name, err.source);
		if (ret) {
			CHECK(strstr(err.reason, c->reason), "%s: reason '%s'", c->name, err.reason);
			CHECK(err.line == c->line && err.column == c->column,
			      "%s: at %u:%u, expected %u:%u", c->name, err.line, err.column, c->line,
			      c->column);
			CHECK(pol.n_rules == 0, "%s: rules added on error", c->name);
		} else {
			CHECK(pol.n_rules == c->n_rules, "%s: %zu rules", c->name, pol.n_rules);
			for (k = 0; k < pol.n_rules; k++)
				CHECK(pol.rules[k].line == c->lines[k], "%s: rule %zu on line %u",
				      c->name, k, pol.rules[k].line);
		}
		cgf_policy_free(&pol);
	}
}

/* ---- accept-risk ------------------------------------------------------- */

struct risk_case {
	const char *name;
	const char *data;
	int ret;
	uint32_t risk;      /* when ret == 0 */
	size_t n_rules;     /* when ret == 0 */
	const char *reason; /* substring, when ret != 0 */
	unsigned line, column;
};

static const struct risk_case risk_cases[] = {
	{ "net_raw", "a.com\naccept-risk net_raw\n", 0, CGF_RISK_NET_RAW, 1, NULL, 0, 0 },
	{ "net_admin", "accept-risk net_admin\na.com\n", 0, CGF_RISK_NET_ADMIN, 1, NULL, 0, 0 },
	{ "both on one line", "accept-risk net_raw net_admin # both\na.com\n", 0,
	  CGF_RISK_NET_RAW | CGF_RISK_NET_ADMIN, 1, NULL, 0, 0 },
	{ "two lines, tabs, repeats", "\taccept-risk\tnet_raw\naccept-risk net_raw  net_admin\n"
	  "1.2.3.4\n", 0, CGF_RISK_NET_RAW | CGF_RISK_NET_ADMIN, 1, NULL, 0, 0 },
	{ "none", "a.com\n", 0, 0, 1, NULL, 0, 0 },
	{ "no name", "a.com\naccept-risk\n", -EINVAL, 0, 0,
	  "accept-risk: which risk? name net_raw and/or net_admin", 2, 12 },
	{ "no name, blanks", "accept-risk   # nothing\n", -EINVAL, 0, 0, "which risk?", 1, 15 },
	{ "unknown name", "a.com\naccept-risk net_raw sys_admin\n", -EINVAL, 0, 0,
	  "accept-risk: unknown risk 'sys_admin' (net_raw: AF_PACKET", 2, 21 },
	{ "upper case", "accept-risk NET_RAW\na.com\n", -EINVAL, 0, 0,
	  "unknown risk 'NET_RAW'", 1, 13 },
	{ "capability name", "accept-risk cap_net_raw\n", -EINVAL, 0, 0,
	  "unknown risk 'cap_net_raw'", 1, 13 },
	{ "glued", "accept-risknet_raw\n", -EINVAL, 0, 0, "", 1, 0 },
	{ "only directives", "accept-risk net_raw\n", -EINVAL, 0, 0, "empty policy: no rules", 0,
	  0 },
};

static void test_accept_risk(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(risk_cases); i++) {
		const struct risk_case *c = &risk_cases[i];
		struct cgf_policy pol = { 0 };
		struct cgf_error err;
		int ret = cgf_policy_parse_buffer(&pol, "r.policy", c->data, strlen(c->data), &err);

		CHECK(ret == c->ret, "%s: returned %d (%s)", c->name, ret, err.reason);
		if (ret) {
			CHECK(strstr(err.reason, c->reason), "%s: reason '%s'", c->name,
			      err.reason);
			/* column 0: an error of the rule parser, whose column is its own */
			CHECK(err.line == c->line && (!c->column || err.column == c->column),
			      "%s: at %u:%u, expected %u:%u", c->name, err.line, err.column, c->line,
			      c->column);
			CHECK(pol.accept_risk == 0 && pol.n_rules == 0, "%s: applied on error",
			      c->name);
		} else {
			CHECK(pol.accept_risk == c->risk, "%s: risk %#x, expected %#x", c->name,
			      pol.accept_risk, c->risk);
			CHECK(pol.n_rules == c->n_rules, "%s: %zu rules", c->name, pol.n_rules);
		}
		cgf_policy_free(&pol);
	}
}

/* Files add up: what one accepts stays accepted when the next is loaded. */
static void test_accept_risk_accumulates(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	const char *a = "accept-risk net_raw\na.com\n", *b = "b.com\n",
		   *bad = "accept-risk net_admin\nbad_name.com\n";

	(void)state;
	assert_int_equal(cgf_policy_parse_buffer(&pol, "a", a, strlen(a), &err), 0);
	assert_int_equal(cgf_policy_parse_buffer(&pol, "b", b, strlen(b), &err), 0);
	assert_int_equal(pol.accept_risk, CGF_RISK_NET_RAW);
	/* a file that fails adds nothing, its accept-risk included */
	assert_int_equal(cgf_policy_parse_buffer(&pol, "bad", bad, strlen(bad), &err), -EINVAL);
	assert_int_equal(pol.accept_risk, CGF_RISK_NET_RAW);
	assert_int_equal(pol.n_rules, 2);
	cgf_policy_free(&pol);
}

static void test_buffer_long_lines(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	char buf[2100];

	(void)state;
	/* 1024 characters (a rule and a long comment) are fine. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "a.com #", 7);
	buf[1024] = '\n';
	memcpy(buf + 1025, "b.com\n", 7);
	assert_int_equal(cgf_policy_parse_buffer(&pol, "t", buf, strlen(buf), &err), 0);
	assert_int_equal(pol.n_rules, 2);
	assert_int_equal(pol.rules[1].line, 2);
	cgf_policy_free(&pol);

	/* 1025 are not, on line 2. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "b.com\na.com #", 13);
	buf[6 + 1025] = '\0';
	assert_int_equal(cgf_policy_parse_buffer(&pol, "t", buf, strlen(buf), &err), -EINVAL);
	assert_string_equal(err.reason, "line longer than 1024 characters");
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 1025);
	assert_int_equal(pol.n_rules, 0);
	cgf_policy_free(&pol);
}

static void test_buffer_line_numbers(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	char buf[64 * 40];
	size_t o = 0;
	unsigned i;

	(void)state;
	/* Rules on odd lines, comments on even ones; the error on line 77. */
	for (i = 1; i <= 80; i++) {
		if (i == 77)
			o += (size_t)sprintf(buf + o, "  10.0.%u.1/33\n", i);
		else if (i % 2)
			o += (size_t)sprintf(buf + o, "10.0.%u.1\n", i);
		else
			o += (size_t)sprintf(buf + o, "# %u\n", i);
	}
	assert_int_equal(cgf_policy_parse_buffer(&pol, "n", buf, o, &err), -EINVAL);
	assert_int_equal(err.line, 77);
	assert_int_equal(err.column, 13);
	assert_int_equal(pol.n_rules, 0);

	/* Without the error, each rule knows its line. */
	buf[0] = '\0';
	o = 0;
	for (i = 1; i <= 80; i++)
		o += (size_t)(i % 2 ? sprintf(buf + o, "10.0.%u.1\n", i) : sprintf(buf + o, "\n"));
	assert_int_equal(cgf_policy_parse_buffer(&pol, "n", buf, o, &err), 0);
	assert_int_equal(pol.n_rules, 40);
	for (i = 0; i < 40; i++) {
		assert_int_equal(pol.rules[i].line, 2 * i + 1);
		assert_int_equal(pol.rules[i].addr[2], 2 * i + 1);
	}
	cgf_policy_free(&pol);
}

static void test_buffer_all_or_nothing(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	struct cgf_rule *saved;
	char *big;
	size_t o = 0, n;
	unsigned i;

	(void)state;
	assert_int_equal(cgf_policy_parse_buffer(&pol, "a", "1.2.3.4\nexample.com:443\n", 24, &err), 0);
	assert_int_equal(cgf_policy_add_rule(&pol, "*.example.org", &err), 0);
	n = pol.n_rules;
	assert_int_equal(n, 3);
	saved = malloc(n * sizeof(*saved));
	assert_non_null(saved);
	memcpy(saved, pol.rules, n * sizeof(*saved));

	/* Many good rules (enough to grow the array), then a bad one. */
	big = malloc(5000 * 20);
	assert_non_null(big);
	for (i = 0; i < 5000; i++)
		o += (size_t)sprintf(big + o, "10.%u.%u.1:80\n", i / 250, i % 250);
	o += (size_t)sprintf(big + o, "10.0.0.1:80-70\n");
	assert_int_equal(cgf_policy_parse_buffer(&pol, "b", big, o, &err), -EINVAL);
	assert_int_equal(err.line, 5001);
	assert_non_null(strstr(err.reason, "port range 80-70 is reversed"));
	assert_int_equal(pol.n_rules, n);
	assert_memory_equal(pol.rules, saved, n * sizeof(*saved));

	/* A failing --allow leaves it alone too. */
	assert_int_equal(cgf_policy_add_rule(&pol, "1.2.3.4:", &err), -EINVAL);
	assert_int_equal(pol.n_rules, n);
	assert_memory_equal(pol.rules, saved, n * sizeof(*saved));

	/* And a good buffer appends after what was there, in order. */
	assert_int_equal(cgf_policy_parse_buffer(&pol, "c", big, o - 15, &err), 0);
	assert_int_equal(pol.n_rules, n + 5000);
	assert_memory_equal(pol.rules, saved, n * sizeof(*saved));
	assert_int_equal(pol.rules[n + 4999].line, 5000);
	free(big);
	free(saved);
	cgf_policy_free(&pol);
	assert_null(pol.rules);
	assert_int_equal(pol.n_rules, 0);
}

static void test_buffer_binary_garbage(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	unsigned char buf[4096];
	unsigned iter;

	(void)state;
	assert_int_equal(cgf_policy_add_rule(&pol, "1.2.3.4", &err), 0);
	rng_seed(0xc0ffee);
	for (iter = 0; iter < 300; iter++) {
		size_t len = 1 + rng_below(sizeof(buf)), i;
		int ret;

		for (i = 0; i < len; i++)
			buf[i] = (unsigned char)rng();
		if (iter % 2) {
			/* No NUL: fails on some other byte, somewhere sane. */
			for (i = 0; i < len; i++)
				if (!buf[i])
					buf[i] = 0xff;
			buf[rng_below((unsigned)len)] = 0xff;
		} else {
			buf[rng_below((unsigned)len)] = 0;
		}
		ret = cgf_policy_parse_buffer(&pol, "junk", (const char *)buf, len, &err);
		CHECK(ret == -EINVAL, "iteration %u: returned %d", iter, ret);
		CHECK((err.line >= 1 && err.column >= 1) || !strcmp(err.reason, "empty policy: no rules"),
		      "iteration %u: at %u:%u: %s", iter, err.line, err.column, err.reason);
		if (iter % 2 == 0)
			CHECK(strstr(err.reason, "binary data (NUL byte)"), "iteration %u: '%s'",
			      iter, err.reason);
		CHECK(strlen(err.reason) < sizeof(err.reason), "iteration %u", iter);
		CHECK(pol.n_rules == 1, "iteration %u: %zu rules", iter, pol.n_rules);
	}
	cgf_policy_free(&pol);
}

static void test_add_rule(void **state)
{
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	char msg[600];

	(void)state;
	assert_int_equal(cgf_policy_add_rule(&pol, "example.com:443/tcp", &err), 0);
	assert_int_equal(pol.n_rules, 1);
	assert_int_equal(pol.rules[0].line, 0);
	assert_string_equal(pol.rules[0].domain, "example.com");
	assert_int_equal(cgf_policy_add_rule(&pol, "example.com:443/icmp", &err), -EINVAL);
	assert_string_equal(err.source, "--allow");
	assert_int_equal(err.line, 0);
	assert_int_equal(err.column, 17);
	cgf_error_format(&err, msg, sizeof(msg));
	assert_string_equal(msg, "--allow: column 17: unknown protocol 'icmp' (tcp or udp)");
	assert_int_equal(pol.n_rules, 1);
	cgf_policy_free(&pol);
}

static void test_error_format(void **state)
{
	static const struct {
		const char *source;
		unsigned line, column;
		const char *reason;
		const char *want;
	} cases[] = {
		{ "a.policy", 3, 5, "bad", "a.policy:3:5: bad" },
		{ "a.policy", 3, 0, "bad", "a.policy:3: bad" },
		{ "a.policy", 0, 0, "empty policy: no rules", "a.policy: empty policy: no rules" },
		{ "--allow", 0, 7, "x", "--allow: column 7: x" },
		{ "", 0, 0, "just this", "just this" },
		{ "", 2, 3, "r", "2:3: r" },
		{ "", 0, 4, "r", "column 4: r" },
	};
	struct cgf_error err;
	char buf[600];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&err, 0, sizeof(err));
		strcpy(err.source, cases[i].source);
		err.line = cases[i].line;
		err.column = cases[i].column;
		strcpy(err.reason, cases[i].reason);
		cgf_error_format(&err, buf, sizeof(buf));
		CHECK(!strcmp(buf, cases[i].want), "row %zu: '%s', expected '%s'", i, buf,
		      cases[i].want);
	}
	/* Cut to the buffer, always terminated. */
	memset(&err, 0, sizeof(err));
	strcpy(err.source, "a.policy");
	err.line = 12;
	strcpy(err.reason, "bad");
	memset(buf, 'z', sizeof(buf));
	cgf_error_format(&err, buf, 6);
	assert_string_equal(buf, "a.pol");
	/* Full-size source and reason fit a big buffer whole. */
	memset(err.source, 's', sizeof(err.source) - 1);
	err.source[sizeof(err.source) - 1] = '\0';
	memset(err.reason, 'r', sizeof(err.reason) - 1);
	err.reason[sizeof(err.reason) - 1] = '\0';
	err.column = 4000000000u;
	err.line = 4000000000u;
	cgf_error_format(&err, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 255 + 1 + 10 + 1 + 10 + 2 + 255);
}

/* ---- files ------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/cgf-test-XXXXXX", path[128], msg[600];
	struct cgf_policy pol = { 0 };
	struct cgf_error err;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));

	snprintf(path, sizeof(path), "%s/web.policy", dir);
	write_file(path, "# web\nexample.com:443/tcp\r\n[2001:db8::/32]:80\n", 46);
	assert_int_equal(cgf_policy_load_file(&pol, path, &err), 0);
	assert_int_equal(pol.n_rules, 2);
	assert_int_equal(pol.rules[1].line, 3);
	assert_int_equal(pol.rules[1].family, AF_INET6);

	/* An error names the file and the place. */
	write_file(path, "example.com\n\n1.2.3.4/40\n", 24);
	assert_int_equal(cgf_policy_load_file(&pol, path, &err), -EINVAL);
	cgf_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, "/web.policy:3:9: prefix length 40 out of range for IPv4 (0-32)"));
	assert_int_equal(pol.n_rules, 2);

	/* An empty file. */
	write_file(path, "", 0);
	assert_int_equal(cgf_policy_load_file(&pol, path, &err), -EINVAL);
	assert_string_equal(err.reason, "empty policy: no rules");

	/* Missing. */
	snprintf(path, sizeof(path), "%s/missing.policy", dir);
	assert_int_equal(cgf_policy_load_file(&pol, path, &err), -ENOENT);
	assert_string_equal(err.source, path);
	assert_string_equal(err.reason, "cannot open policy file: No such file or directory");

	/* A directory, a FIFO (must not block), a device. */
	assert_int_equal(cgf_policy_load_file(&pol, dir, &err), -EISDIR);
	assert_non_null(strstr(err.reason, "directory"));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(cgf_policy_load_file(&pol, path, &err), -EINVAL);
	assert_string_equal(err.reason, "not a regular file");
	unlink(path);
	assert_int_equal(cgf_policy_load_file(&pol, "/dev/null", &err), -EINVAL);
	assert_string_equal(err.reason, "not a regular file");

	/* Too large (sparse, so the test stays cheap). */
	snprintf(path, sizeof(path), "%s/big.policy", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * 1024 * 1024 + 1), 0);
	close(fd);
	assert_int_equal(cgf_policy_load_file(&pol, path, &err), -EFBIG);
	assert_non_null(strstr(err.reason, "policy file too large (16777217 bytes, at most 16 MiB)"));
	unlink(path);

	snprintf(path, sizeof(path), "%s/web.policy", dir);
	unlink(path);
	rmdir(dir);
	assert_int_equal(pol.n_rules, 2);
	cgf_policy_free(&pol);
}

static void test_rule_to_grant(void **state)
{
	struct cgf_error err;
	struct cgf_rule r;
	struct cgf_grant g;

	(void)state;
	assert_int_equal(cgf_rule_parse("[2001:db8::/32]:80-90/udp", &r, &err), 0);
	memset(&g, 0x77, sizeof(g));
	cgf_rule_to_grant(&r, &g);
	assert_int_equal(g.family, AF_INET6);
	assert_memory_equal(g.addr, r.addr, 16);
	assert_int_equal(g.prefixlen, 32);
	assert_int_equal(g.port_lo, 80);
	assert_int_equal(g.port_hi, 90);
	assert_int_equal(g.protos, UDP);
	assert_int_equal(g.expires_ns, 0);
}

/* ---- allowlist build --------------------------------------------------- */

static struct cgf_grant grant(const char *addr, unsigned len, unsigned lo, unsigned hi,
			      unsigned protos, uint64_t expires)
{
	struct cgf_grant g;

	memset(&g, 0, sizeof(g));
	g.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(g.family, addr, g.addr), 1);
	g.prefixlen = (uint8_t)len;
	g.port_lo = (uint16_t)lo;
	g.port_hi = (uint16_t)hi;
	g.protos = (uint8_t)protos;
	g.expires_ns = expires;
	return g;
}

static const struct cgf_allow *find(const struct cgf_allowlist *l, const char *addr, unsigned len)
{
	uint8_t a[16] = { 0 };
	size_t i;

	if (strchr(addr, ':')) {
		assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
		for (i = 0; i < l->n_v6; i++)
			if (l->v6[i].key.prefixlen == len && !memcmp(l->v6[i].key.addr, a, 16))
				return &l->v6[i].value;
	} else {
		assert_int_equal(inet_pton(AF_INET, addr, a), 1);
		for (i = 0; i < l->n_v4; i++)
			if (l->v4[i].key.prefixlen == len && !memcmp(l->v4[i].key.addr, a, 4))
				return &l->v4[i].value;
	}
	fail_msg("no entry %s/%u", addr, len);
	return NULL;
}

static void expect_range(const struct cgf_allow *v, unsigned i, unsigned lo, unsigned hi,
			 unsigned protos, uint64_t expires)
{
	assert_true(i < v->n_ranges);
	CHECK(v->ranges[i].port_lo == lo && v->ranges[i].port_hi == hi &&
		      v->ranges[i].protos == protos && v->ranges[i].expires_ns == expires,
	      "range %u is %u-%u/%u exp %llu, expected %u-%u/%u exp %llu", i,
	      v->ranges[i].port_lo, v->ranges[i].port_hi, v->ranges[i].protos,
	      (unsigned long long)v->ranges[i].expires_ns, lo, hi, protos,
	      (unsigned long long)expires);
}

/* Layout checks every built list passes: order, host bits, zeroed spare bytes. */
static void check_list_shape(const struct cgf_allowlist *l)
{
	static const struct cgf_range zero;
	size_t i, k;

	for (i = 0; i < l->n_v4 + l->n_v6; i++) {
		bool v4 = i < l->n_v4;
		const void *key = v4 ? (const void *)&l->v4[i].key : (const void *)&l->v6[i - l->n_v4].key;
		const struct cgf_allow *v = v4 ? &l->v4[i].value : &l->v6[i - l->n_v4].value;
		size_t ks = v4 ? sizeof(struct cgf_key4) : sizeof(struct cgf_key6);
		const uint8_t *addr = v4 ? l->v4[i].key.addr : l->v6[i - l->n_v4].key.addr;
		unsigned plen = v4 ? l->v4[i].key.prefixlen : l->v6[i - l->n_v4].key.prefixlen;
		unsigned bits = v4 ? 32 : 128, b;

		/* Strictly increasing in memcmp order: prefix length, then address. */
		if (i && i != l->n_v4)
			CHECK(memcmp((const char *)key - (v4 ? sizeof(l->v4[0]) : sizeof(l->v6[0])),
				     key, ks) < 0,
			      "entry %zu out of order", i);
		CHECK(plen <= bits, "entry %zu: prefixlen %u", i, plen);
		for (b = plen; b < bits; b++)
			CHECK(!(addr[b / 8] & (0x80 >> (b % 8))), "entry %zu: host bit %u set", i, b);
		CHECK(v->n_ranges >= 1 && v->n_ranges <= CGF_MAX_RANGES, "entry %zu: %u ranges", i,
		      v->n_ranges);
		CHECK(v->pad == 0, "entry %zu: pad", i);
		for (k = 0; k < CGF_MAX_RANGES; k++) {
			const struct cgf_range *r = &v->ranges[k];

			if (k >= v->n_ranges)
				CHECK(!memcmp(r, &zero, sizeof(zero)), "entry %zu: spare range %zu", i, k);
			else
				CHECK(!r->pad[0] && !r->pad[1] && !r->pad[2] && r->port_lo <= r->port_hi &&
					      r->protos && !(r->protos & ~CGF_PROTO_ANY),
				      "entry %zu: range %zu", i, k);
		}
	}
}

static void build_ok(const struct cgf_grant *g, size_t n, struct cgf_allowlist *l)
{
	struct cgf_error err;
	int ret = cgf_allowlist_build(g, n, l, &err);

	CHECK(ret == 0, "build: %d %s", ret, err.reason);
	check_list_shape(l);
}

static void test_build_nested(void **state)
{
	struct cgf_grant g[] = {
		grant("198.18.0.1", 32, 443, 443, TCP, 0),
		grant("198.0.0.0", 8, 22, 22, ANY, 0),
	};
	struct cgf_allowlist l;
	const struct cgf_allow *v;

	(void)state;
	build_ok(g, ARRAY_SIZE(g), &l);
	assert_int_equal(l.n_v4, 2);
	assert_int_equal(l.n_v6, 0);
	/* Sorted by prefix length first. */
	assert_int_equal(l.v4[0].key.prefixlen, 8);
	assert_int_equal(l.v4[1].key.prefixlen, 32);
	v = find(&l, "198.18.0.1", 32);
	assert_int_equal(v->n_ranges, 2);
	expect_range(v, 0, 22, 22, ANY, 0);
	expect_range(v, 1, 443, 443, TCP, 0);
	v = find(&l, "198.0.0.0", 8);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 22, 22, ANY, 0);
	cgf_allowlist_free(&l);
	assert_null(l.v4);
}

static void test_build_disjoint_and_families(void **state)
{
	struct cgf_grant g[] = {
		grant("10.0.0.0", 8, 22, 22, TCP, 0),
		grant("192.168.0.0", 16, 443, 443, TCP, 0),
		grant("2001:db8::1", 128, 53, 53, UDP, 0),
		grant("::ffff:10.0.0.1", 128, 80, 80, TCP, 0), /* IPv6, not 10.0.0.1 */
		grant("2001:db8::", 32, 8080, 8080, ANY, 0),
		grant("11.0.0.0", 8, 25, 25, TCP, 0), /* next to 10/8, not over it */
	};
	struct cgf_allowlist l;
	const struct cgf_allow *v;

	(void)state;
	build_ok(g, ARRAY_SIZE(g), &l);
	assert_int_equal(l.n_v4, 3);
	assert_int_equal(l.n_v6, 3);
	v = find(&l, "10.0.0.0", 8);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 22, 22, TCP, 0);
	v = find(&l, "11.0.0.0", 8);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 25, 25, TCP, 0);
	v = find(&l, "192.168.0.0", 16);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 443, 443, TCP, 0);
	v = find(&l, "::ffff:10.0.0.1", 128);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 80, 80, TCP, 0);
	v = find(&l, "2001:db8::1", 128);
	assert_int_equal(v->n_ranges, 2);
	expect_range(v, 0, 53, 53, UDP, 0);
	expect_range(v, 1, 8080, 8080, ANY, 0);
	v = find(&l, "2001:db8::", 32);
	assert_int_equal(v->n_ranges, 1);
	cgf_allowlist_free(&l);
}

static void test_build_any(void **state)
{
	struct cgf_grant g[] = {
		grant("1.2.3.4", 32, 443, 443, TCP, 0),
		grant("0.0.0.0", 0, 0, 65535, ANY, 0),
		grant("1.2.0.0", 16, 53, 53, UDP, 500),
	};
	struct cgf_allowlist l;
	const struct cgf_allow *v;

	(void)state;
	build_ok(g, ARRAY_SIZE(g), &l);
	assert_int_equal(l.n_v4, 3);
	assert_int_equal(l.n_v6, 0); /* 0.0.0.0/0 says nothing of IPv6 */
	assert_int_equal(l.v4[0].key.prefixlen, 0);
	/* Everything is covered by 0-65535 of both protocols, never expiring. */
	v = find(&l, "0.0.0.0", 0);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 0, 65535, ANY, 0);
	v = find(&l, "1.2.0.0", 16);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 0, 65535, ANY, 0);
	v = find(&l, "1.2.3.4", 32);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 0, 65535, ANY, 0);
	cgf_allowlist_free(&l);
}

static void test_build_merge(void **state)
{
	static const struct {
		const char *name;
		struct { unsigned lo, hi, protos; uint64_t exp; } in[4], want[4];
		unsigned n_in, n_want;
	} cases[] = {
		{ "identical, later expiry wins", { { 443, 443, TCP, 100 }, { 443, 443, TCP, 200 } },
		  { { 443, 443, TCP, 200 } }, 2, 1 },
		{ "identical, later expiry wins (other order)", { { 443, 443, TCP, 200 }, { 443, 443, TCP, 100 } },
		  { { 443, 443, TCP, 200 } }, 2, 1 },
		{ "never beats any expiry", { { 443, 443, TCP, 200 }, { 443, 443, TCP, 0 }, { 443, 443, TCP, UINT64_MAX } },
		  { { 443, 443, TCP, 0 } }, 3, 1 },
		{ "adjacent merge", { { 80, 89, TCP, 0 }, { 90, 99, TCP, 0 } },
		  { { 80, 99, TCP, 0 } }, 2, 1 },
		{ "overlapping merge", { { 90, 120, UDP, 7 }, { 80, 95, UDP, 7 }, { 121, 121, UDP, 7 } },
		  { { 80, 121, UDP, 7 } }, 3, 1 },
		{ "top port", { { 65535, 65535, TCP, 0 }, { 0, 65534, TCP, 0 } },
		  { { 0, 65535, TCP, 0 } }, 2, 1 },
		{ "different protocols stay apart", { { 80, 89, TCP, 0 }, { 90, 99, UDP, 0 } },
		  { { 80, 89, TCP, 0 }, { 90, 99, UDP, 0 } }, 2, 2 },
		{ "different expiry stays apart", { { 80, 89, TCP, 5 }, { 90, 99, TCP, 6 } },
		  { { 80, 89, TCP, 5 }, { 90, 99, TCP, 6 } }, 2, 2 },
		{ "gap stays", { { 80, 88, TCP, 0 }, { 90, 99, TCP, 0 } },
		  { { 80, 88, TCP, 0 }, { 90, 99, TCP, 0 } }, 2, 2 },
		{ "covered range dropped", { { 443, 443, TCP, 5 }, { 400, 500, ANY, 9 } },
		  { { 400, 500, ANY, 9 } }, 2, 1 },
		{ "longer-lived narrow range kept", { { 443, 443, TCP, 0 }, { 400, 500, ANY, 9 } },
		  { { 400, 500, ANY, 9 }, { 443, 443, TCP, 0 } }, 2, 2 },
		{ "tcp and udp stay two", { { 53, 53, TCP, 0 }, { 53, 53, UDP, 0 } },
		  { { 53, 53, TCP, 0 }, { 53, 53, UDP, 0 } }, 2, 2 },
	};
	size_t i, k;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cgf_grant g[4];
		struct cgf_allowlist l;
		const struct cgf_allow *v;

		for (k = 0; k < cases[i].n_in; k++)
			g[k] = grant("203.0.113.7", 32, cases[i].in[k].lo, cases[i].in[k].hi,
				     cases[i].in[k].protos, cases[i].in[k].exp);
		build_ok(g, cases[i].n_in, &l);
		assert_int_equal(l.n_v4, 1);
		v = &l.v4[0].value;
		CHECK(v->n_ranges == cases[i].n_want, "%s: %u ranges", cases[i].name, v->n_ranges);
		for (k = 0; k < cases[i].n_want; k++)
			expect_range(v, (unsigned)k, cases[i].want[k].lo, cases[i].want[k].hi,
				     cases[i].want[k].protos, cases[i].want[k].exp);
		cgf_allowlist_free(&l);
	}
}

static void test_build_nested_expiry(void **state)
{
	struct cgf_grant g[] = {
		grant("10.0.0.0", 8, 22, 22, TCP, 100),
		grant("10.1.2.3", 32, 22, 22, TCP, 0),
		grant("10.1.2.4", 32, 22, 22, TCP, 50),
	};
	struct cgf_allowlist l;
	const struct cgf_allow *v;

	(void)state;
	build_ok(g, ARRAY_SIZE(g), &l);
	v = find(&l, "10.1.2.3", 32);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 22, 22, TCP, 0);
	v = find(&l, "10.1.2.4", 32);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 22, 22, TCP, 100);
	cgf_allowlist_free(&l);
}

static void test_build_host_bits_and_duplicates(void **state)
{
	struct cgf_grant *g = calloc(10001, sizeof(*g));
	struct cgf_allowlist l;
	const struct cgf_allow *v;
	size_t i;

	(void)state;
	assert_non_null(g);
	for (i = 0; i < 10000; i++)
		g[i] = grant("10.9.8.7", 8, 443, 443, TCP, 1000 + i % 7);
	g[10000] = grant("2001:db8::1", 32, 1, 1, UDP, 0);
	build_ok(g, 10001, &l);
	assert_int_equal(l.n_v4, 1);
	v = find(&l, "10.0.0.0", 8);
	assert_int_equal(v->n_ranges, 1);
	expect_range(v, 0, 443, 443, TCP, 1006);
	assert_int_equal(l.n_v6, 1);
	find(&l, "2001:db8::", 32);
	cgf_allowlist_free(&l);
	free(g);
}

static void test_build_too_many(void **state)
{
	struct cgf_grant g[16];
	struct cgf_allowlist l;
	struct cgf_error err;
	unsigned i;

	(void)state;
	/* Eight distinct ranges fit. */
	for (i = 0; i < 8; i++)
		g[i] = grant("198.18.0.0", 15, 1000 + 10 * i, 1000 + 10 * i, TCP, 0);
	build_ok(g, 8, &l);
	assert_int_equal(l.v4[0].value.n_ranges, 8);
	cgf_allowlist_free(&l);

	/* Nine do not. */
	g[8] = grant("198.18.0.0", 15, 5000, 5000, UDP, 0);
	memset(&l, 0x55, sizeof(l));
	assert_int_equal(cgf_allowlist_build(g, 9, &l, &err), -E2BIG);
	assert_string_equal(err.reason, "too many port ranges cover 198.18.0.0/15 (9, at most 8)");
	assert_null(l.v4);
	assert_null(l.v6);
	assert_int_equal(l.n_v4, 0);

	/* Nine that merge to fewer fit. */
	g[8] = grant("198.18.0.0", 15, 1001, 1009, TCP, 0);
	build_ok(g, 9, &l);
	assert_int_equal(l.v4[0].value.n_ranges, 7);
	cgf_allowlist_free(&l);

	/* The union, not either prefix alone, overflows: the error names the /32. */
	for (i = 0; i < 5; i++)
		g[i] = grant("10.0.0.0", 8, 100 + 2 * i, 100 + 2 * i, ANY, 0);
	for (i = 5; i < 9; i++)
		g[i] = grant("10.1.2.3", 32, 200 + 2 * i, 200 + 2 * i, ANY, 0);
	assert_int_equal(cgf_allowlist_build(g, 9, &l, &err), -E2BIG);
	assert_string_equal(err.reason, "too many port ranges cover 10.1.2.3/32 (9, at most 8)");

	/* IPv6 says so too. */
	for (i = 0; i < 9; i++)
		g[i] = grant("2001:db8::", 32, 1000 + 10 * i, 1000 + 10 * i, TCP, 0);
	assert_int_equal(cgf_allowlist_build(g, 9, &l, &err), -E2BIG);
	assert_string_equal(err.reason, "too many port ranges cover 2001:db8::/32 (9, at most 8)");
}

static void test_build_too_many_large(void **state)
{
	struct cgf_grant *g = calloc(1000, sizeof(*g));
	struct cgf_allowlist l;
	struct cgf_error err;
	unsigned i;

	(void)state;
	assert_non_null(g);
	for (i = 0; i < 1000; i++)
		g[i] = grant("192.0.2.1", 32, 2 * i, 2 * i, TCP, 0);
	assert_int_equal(cgf_allowlist_build(g, 1000, &l, &err), -E2BIG);
	assert_string_equal(err.reason,
			    "too many port ranges cover 192.0.2.1/32 (more than 64, at most 8)");
	/* ... unless one range covers them all. */
	g[999] = grant("192.0.0.0", 16, 0, 65535, ANY, 0);
	build_ok(g, 1000, &l);
	assert_int_equal(find(&l, "192.0.2.1", 32)->n_ranges, 1);
	cgf_allowlist_free(&l);
	free(g);
}

static void test_build_invalid(void **state)
{
	static const struct {
		int family;
		unsigned len, lo, hi, protos;
		const char *reason;
	} cases[] = {
		{ 0, 32, 1, 1, TCP, "grant 1: unknown address family 0" },
		{ AF_INET, 33, 1, 1, TCP, "grant 1: prefix length 33 out of range for IPv4 (0-32)" },
		{ AF_INET6, 129, 1, 1, TCP, "grant 1: prefix length 129 out of range for IPv6 (0-128)" },
		{ AF_INET, 32, 9, 1, TCP, "grant 1: port range 9-1 is reversed" },
		{ AF_INET, 32, 1, 1, 0, "grant 1: bad protocol bits 0x0" },
		{ AF_INET, 32, 1, 1, 4, "grant 1: bad protocol bits 0x4" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cgf_grant g[2] = { grant("1.1.1.1", 32, 1, 1, TCP, 0) };
		struct cgf_allowlist l;
		struct cgf_error err;

		g[1].family = cases[i].family;
		g[1].prefixlen = (uint8_t)cases[i].len;
		g[1].port_lo = (uint16_t)cases[i].lo;
		g[1].port_hi = (uint16_t)cases[i].hi;
		g[1].protos = (uint8_t)cases[i].protos;
		assert_int_equal(cgf_allowlist_build(g, 2, &l, &err), -EINVAL);
		CHECK(!strcmp(err.reason, cases[i].reason), "row %zu: '%s'", i, err.reason);
		assert_null(l.v4);
	}
}

static void test_build_empty(void **state)
{
	struct cgf_allowlist l;
	struct cgf_error err;

	(void)state;
	assert_int_equal(cgf_allowlist_build(NULL, 0, &l, &err), 0);
	assert_int_equal(l.n_v4, 0);
	assert_int_equal(l.n_v6, 0);
	cgf_allowlist_free(&l);
}

static void test_build_from_policy(void **state)
{
	static const char text[] = "198.18.0.1:443/tcp\n198.0.0.0/8:22\nexample.com\n"
				   "[2001:db8::/32]:80\n";
	struct cgf_policy pol = { 0 };
	struct cgf_grant g[4];
	struct cgf_allowlist l;
	struct cgf_error err;
	size_t i, n = 0;

	(void)state;
	assert_int_equal(cgf_policy_parse_buffer(&pol, "p", text, sizeof(text) - 1, &err), 0);
	for (i = 0; i < pol.n_rules; i++)
		if (pol.rules[i].kind == CGF_TARGET_PREFIX)
			cgf_rule_to_grant(&pol.rules[i], &g[n++]);
	assert_int_equal(n, 3);
	build_ok(g, n, &l);
	assert_int_equal(find(&l, "198.18.0.1", 32)->n_ranges, 2);
	assert_int_equal(find(&l, "2001:db8::", 32)->n_ranges, 1);
	cgf_allowlist_free(&l);
	cgf_policy_free(&pol);
}

/* ---- the property: LPM of the output gives the union of covering grants ---- */

static bool covers_addr(const uint8_t *prefix, unsigned len, const uint8_t *addr)
{
	unsigned full = len / 8, rest = len % 8;

	if (memcmp(prefix, addr, full))
		return false;
	return !rest || !((prefix[full] ^ addr[full]) & (0xff << (8 - rest)));
}

static bool expiry_ge(uint64_t a, uint64_t b)
{
	return a == 0 || (b != 0 && a >= b);
}

static void random_grant(struct cgf_grant *g, bool v6)
{
	static const unsigned len4[] = { 12, 16, 16, 20, 20, 24, 24, 24, 28, 28,
					 32, 32, 32, 32, 32, 32, 32, 32, 32, 32 };
	static const unsigned len6[] = { 32, 40, 48, 56, 64, 64, 128, 128, 128, 128 };
	static const unsigned ports[][2] = { { 443, 443 }, { 22, 23 } };
	static const uint64_t expiry[] = { 0, 1000 };
	const unsigned *p = ports[rng_below(2)];
	uint64_t r = rng();

	memset(g, 0, sizeof(*g));
	if (v6) {
		g->family = AF_INET6;
		g->addr[0] = 0x20;
		g->addr[1] = 0x01;
		g->addr[2] = 0x0d;
		g->addr[3] = 0xb8;
		g->addr[4] = (uint8_t)(r & 0x3);
		g->addr[5] = (uint8_t)(r >> 8);
		g->addr[6] = (uint8_t)(r >> 16 & 0x3);
		g->addr[15] = (uint8_t)(r >> 24 & 0x7);
		g->prefixlen = (uint8_t)len6[rng_below(ARRAY_SIZE(len6))];
	} else {
		/* Within 10.0.0.0/12; host bits left set, the build masks them. */
		g->family = AF_INET;
		g->addr[0] = 10;
		g->addr[1] = (uint8_t)(r & 0x0f);
		g->addr[2] = (uint8_t)(r >> 8);
		g->addr[3] = (uint8_t)(r >> 16);
		g->prefixlen = (uint8_t)len4[rng_below(ARRAY_SIZE(len4))];
	}
	g->port_lo = (uint16_t)p[0];
	g->port_hi = (uint16_t)p[1];
	g->protos = (uint8_t)(1 + rng_below(3));
	g->expires_ns = expiry[rng_below(2)];
}

static void test_build_property(void **state)
{
	enum { N = 200000, PROBES = 400 };
	struct cgf_grant *g = calloc(N, sizeof(*g));
	struct cgf_allowlist l;
	unsigned probe, found = 0;
	size_t i, k;

	(void)state;
	assert_non_null(g);
	rng_seed(20240611);
	for (i = 0; i < N; i++)
		random_grant(&g[i], i % 10 == 0);
	build_ok(g, N, &l);
	assert_true(l.n_v4 > 1000);
	assert_true(l.n_v6 > 1000);

	for (probe = 0; probe < PROBES; probe++) {
		bool v6 = probe % 4 == 0;
		unsigned bits = v6 ? 128 : 32, max_len = 0, b;
		int family = v6 ? AF_INET6 : AF_INET;
		const struct cgf_allow *best = NULL;
		unsigned best_len = 0;
		uint8_t addr[16] = { 0 };
		bool any = false;

		if (probe % 3) {
			/* An address inside a random grant of the family. */
			const struct cgf_grant *s;

			do
				s = &g[rng_below(N)];
			while (s->family != family);
			memcpy(addr, s->addr, 16);
			for (b = s->prefixlen; b < bits; b++)
				if (rng() & 1)
					addr[b / 8] ^= (uint8_t)(0x80 >> (b % 8));
		} else {
			struct cgf_grant t;

			random_grant(&t, v6); /* random bits in the same region */
			memcpy(addr, t.addr, 16);
		}

		/* Longest match, by brute force over the output. */
		for (i = 0; i < (v6 ? l.n_v6 : l.n_v4); i++) {
			const uint8_t *ka = v6 ? l.v6[i].key.addr : l.v4[i].key.addr;
			unsigned kl = v6 ? l.v6[i].key.prefixlen : l.v4[i].key.prefixlen;

			if (covers_addr(ka, kl, addr) && (!best || kl > best_len)) {
				best = v6 ? &l.v6[i].value : &l.v4[i].value;
				best_len = kl;
			}
		}
		/* Every covering grant is allowed by that entry. */
		for (i = 0; i < N; i++) {
			const struct cgf_grant *c = &g[i];
			bool ok = false;

			if (c->family != family || !covers_addr(c->addr, c->prefixlen, addr))
				continue;
			any = true;
			if (c->prefixlen > max_len)
				max_len = c->prefixlen;
			CHECK(best, "probe %u: grant %zu covers it, no entry does", probe, i);
			for (k = 0; k < best->n_ranges && !ok; k++) {
				const struct cgf_range *r = &best->ranges[k];

				ok = r->port_lo <= c->port_lo && c->port_hi <= r->port_hi &&
				     !(c->protos & ~r->protos) && expiry_ge(r->expires_ns, c->expires_ns);
			}
			CHECK(ok, "probe %u: grant %zu (%u-%u/%u exp %llu) not allowed by /%u entry",
			      probe, i, c->port_lo, c->port_hi, c->protos,
			      (unsigned long long)c->expires_ns, best_len);
		}
		CHECK(any == (best != NULL), "probe %u: entry without a covering grant", probe);
		if (!best)
			continue;
		found++;
		CHECK(best_len == max_len, "probe %u: longest entry /%u, longest grant /%u", probe,
		      best_len, max_len);
		/* And the entry allows nothing more: each range's ends and middle, each
		 * protocol, come from a covering grant with that very expiry. */
		for (k = 0; k < best->n_ranges; k++) {
			const struct cgf_range *r = &best->ranges[k];
			unsigned pts[3] = { r->port_lo, r->port_hi, (r->port_lo + r->port_hi) / 2 };
			unsigned pi, bit;

			for (pi = 0; pi < 3; pi++) {
				for (bit = 1; bit <= 2; bit <<= 1) {
					bool ok = false;

					if (!(r->protos & bit))
						continue;
					for (i = 0; i < N && !ok; i++) {
						const struct cgf_grant *c = &g[i];

						ok = c->family == family &&
						     covers_addr(c->addr, c->prefixlen, addr) &&
						     c->port_lo <= pts[pi] && pts[pi] <= c->port_hi &&
						     (c->protos & bit) && c->expires_ns == r->expires_ns;
					}
					CHECK(ok, "probe %u: range %zu allows port %u proto %u unasked",
					      probe, k, pts[pi], bit);
				}
			}
		}
	}
	/* Most probes land inside some grant. */
	assert_true(found > PROBES / 2);
	cgf_allowlist_free(&l);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_valid),
		cmocka_unit_test(test_rule_valid_long_names),
		cmocka_unit_test(test_rule_invalid),
		cmocka_unit_test(test_rule_invalid_long_names),
		cmocka_unit_test(test_rule_null_err),
		cmocka_unit_test(test_buffer_cases),
		cmocka_unit_test(test_accept_risk),
		cmocka_unit_test(test_accept_risk_accumulates),
		cmocka_unit_test(test_buffer_long_lines),
		cmocka_unit_test(test_buffer_line_numbers),
		cmocka_unit_test(test_buffer_all_or_nothing),
		cmocka_unit_test(test_buffer_binary_garbage),
		cmocka_unit_test(test_add_rule),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_rule_to_grant),
		cmocka_unit_test(test_build_nested),
		cmocka_unit_test(test_build_disjoint_and_families),
		cmocka_unit_test(test_build_any),
		cmocka_unit_test(test_build_merge),
		cmocka_unit_test(test_build_nested_expiry),
		cmocka_unit_test(test_build_host_bits_and_duplicates),
		cmocka_unit_test(test_build_too_many),
		cmocka_unit_test(test_build_too_many_large),
		cmocka_unit_test(test_build_invalid),
		cmocka_unit_test(test_build_empty),
		cmocka_unit_test(test_build_from_policy),
		cmocka_unit_test(test_build_property),
		cmocka_unit_test(test_dns_directives),
		cmocka_unit_test(test_dns_directive_errors),
		cmocka_unit_test(test_dns_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

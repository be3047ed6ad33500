/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Rules and policies: parsing with precise errors, and the union of rules
 * turned into allowlist entries (one per distinct prefix) for the BPF maps.
 *
 * A rule is TARGET[:PORTS][/PROTO] (see DESIGN.md):
 *   198.18.0.1  198.18.0.0/15  2001:db8::1  [2001:db8::/32]:443  example.com:443/tcp
 *   *.example.com:80-89/udp
 * IPv6 targets must be in brackets when a port follows.  PORTS is N or N-M
 * (0..65535, N <= M); PROTO is tcp or udp; both protocols when absent.
 * A policy file holds one rule per line; '#' starts a comment; blank lines are
 * ignored.  Besides rules, a policy file may hold these directives:
 *   dns resolve             (the default) cgfenced resolves the domain rules'
 *                           names itself when their TTLs run out; wildcard
 *                           rules are refused
 *   dns proxy               the fence's DNS goes through cgfenced's filtering
 *                           proxy: only the policy's names are answered, and
 *                           their answers open the fence (wildcards work)
 *   dns allow-type TYPE...  query types the proxy answers besides A, AAAA,
 *                           CNAME, HTTPS and SVCB: TXT, MX, SRV, ... or TYPEnnn
 * A line whose first word is "dns" followed by more words is a directive (a
 * rule is one word: a lone "dns" is the domain name dns).
 */
#ifndef CGF_POLICY_H
#define CGF_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "cgfence.h"

#define CGF_DOMAIN_MAX 253 /* longest domain name, without the trailing dot */

enum cgf_target_kind {
	CGF_TARGET_PREFIX,   /* an IPv4/IPv6 address or prefix */
	CGF_TARGET_DOMAIN,   /* example.com: the name itself */
	CGF_TARGET_WILDCARD, /* *.example.com: names under example.com */
};

struct cgf_rule {
	enum cgf_target_kind kind;
	int family;         /* AF_INET or AF_INET6, for CGF_TARGET_PREFIX */
	uint8_t addr[16];   /* network order, IPv4 in addr[0..3]; host bits zero */
	uint8_t prefixlen;  /* 0..32 or 0..128 */
	char domain[CGF_DOMAIN_MAX + 1]; /* lower case, no trailing dot, no "*." */
	uint16_t port_lo;   /* 0 when no port was given */
	uint16_t port_hi;   /* 65535 when no port was given */
	uint8_t protos;     /* CGF_PROTO_* bits */
	/* where it came from, for messages */
	unsigned line;      /* 1-based; 0 for a rule from the command line */
};

/* Why a rule or file was rejected.  column is 1-based, 0 when unknown. */
struct cgf_error {
	char source[256]; /* file name, or "--allow" */
	unsigned line;
	unsigned column;
	char reason[256];
};

/* Formats "source:line:column: reason" (parts that are 0 or empty left out). */
void cgf_error_format(const struct cgf_error *err, char *buf, size_t len);

enum cgf_dns_mode {
	CGF_DNS_RESOLVE = 0, /* cgfenced resolves the names on their TTLs (default) */
	CGF_DNS_PROXY = 1,   /* the fence's DNS goes through cgfenced's proxy */
};

#define CGF_DNS_TYPES_MAX 16 /* extra query types one policy may allow */

/* A policy: the rules of one or more files and --allow options, in order. */
struct cgf_policy {
	struct cgf_rule *rules;
	size_t n_rules;
	size_t cap_rules;
	/*
	 * CGF_RISK_* a policy file accepts with "accept-risk net_raw|net_admin":
	 * a workload holding that capability may run with no boundary program.
	 */
	uint32_t accept_risk;
	/* "dns" directives; a policy made of several files may not disagree */
	enum cgf_dns_mode dns_mode;
	char dns_mode_source[64]; /* "file:line" of the "dns" mode line, "" when none */
	uint16_t dns_types[CGF_DNS_TYPES_MAX]; /* "dns allow-type", sorted, distinct */
	size_t n_dns_types;
};

/*
 * The number of a query type name ("TXT", "mx", "TYPE99"), 0 when unknown.
 * Meta types (OPT, ANY, AXFR, IXFR, ...) are unknown on purpose: never allowed.
 */
uint16_t cgf_dns_type_parse(const char *name);

/* The name of a query type ("TXT"), or "TYPEnnn" written into buf. */
const char *cgf_dns_type_name(uint16_t type, char *buf, size_t len);

/*
 * Parses one rule.  text is the rule alone (no comment, surrounding blanks
 * allowed).  Returns 0, or -EINVAL with err->column and err->reason set
 * (err->source and err->line are left to the caller).
 */
int cgf_rule_parse(const char *text, struct cgf_rule *rule, struct cgf_error *err);

/*
 * Appends the rule in text (an --allow argument) to policy.  On error nothing is
 * added, err names "--allow" and the column.  Returns 0 or a negative errno.
 */
int cgf_policy_add_rule(struct cgf_policy *policy, const char *text, struct cgf_error *err);

/*
 * Parses a policy from a buffer (len bytes, need not be NUL-terminated).
 * All or nothing: on any error the policy is left as it was, err names
 * source, line, column and reason.  An empty buffer, or one with a NUL byte or
 * invalid text, is an error: a policy file that allows nothing is almost
 * certainly a mistake.  Returns 0 or a negative errno.
 */
int cgf_policy_parse_buffer(struct cgf_policy *policy, const char *source,
			    const char *buf, size_t len, struct cgf_error *err);

/* Reads and parses a policy file (see cgf_policy_parse_buffer). */
int cgf_policy_load_file(struct cgf_policy *policy, const char *path, struct cgf_error *err);

void cgf_policy_free(struct cgf_policy *policy);

/*
 * A grant: one prefix with one port range, what a rule means once its target is
 * an address (a prefix rule as is; a domain rule once per resolved address, with
 * the answer's expiry).
 */
struct cgf_grant {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network order, IPv4 in addr[0..3] */
	uint8_t prefixlen;
	uint16_t port_lo, port_hi;
	uint8_t protos;
	uint64_t expires_ns; /* CLOCK_BOOTTIME deadline, 0 = never */
};

/* Appends the grant of a CGF_TARGET_PREFIX rule. */
void cgf_rule_to_grant(const struct cgf_rule *rule, struct cgf_grant *grant);

/* One allowlist map entry, ready to write. */
struct cgf_entry4 {
	struct cgf_key4 key;
	struct cgf_allow value;
};
struct cgf_entry6 {
	struct cgf_key6 key;
	struct cgf_allow value;
};

struct cgf_allowlist {
	struct cgf_entry4 *v4;
	size_t n_v4;
	struct cgf_entry6 *v6;
	size_t n_v6;
};

/*
 * Computes the map entries for a set of grants so that the longest-prefix match
 * gives the union of every grant covering an address: the value of each
 * distinct prefix holds its own ranges and those of every shorter prefix that
 * contains it.  Identical ranges merge (the later expiry wins, 0 = never beats
 * all); ranges with the same protocols and expiry that overlap or touch merge.
 * More than CGF_MAX_RANGES distinct ranges for one prefix is an error
 * (-E2BIG, err->reason names the prefix).  Entries come out sorted by key.
 * Runs in O(n log n) per distinct prefix length, so 1,000,000 grants take
 * seconds, not hours.  Returns 0 or a negative errno.
 */
int cgf_allowlist_build(const struct cgf_grant *grants, size_t n_grants,
			struct cgf_allowlist *out, struct cgf_error *err);

void cgf_allowlist_free(struct cgf_allowlist *list);

#endif /* CGF_POLICY_H */

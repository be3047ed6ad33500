// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of deny events as the user sees them: the line `cgfence run`
 * prints (cgf_event_format), the JSON the daemon logs and streams
 * (cgf_event_json), and the line `cgfence log` prints from that JSON
 * (cgf_event_print); each says why when the reason is not the allowlist.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "report.h"

static struct cgf_event event(unsigned hook, int family, const char *addr, unsigned proto,
			      unsigned port, unsigned reason)
{
	struct cgf_event e = { .cgroup_id = 7, .pid = 42, .hook = (uint8_t)hook,
			       .family = (uint8_t)family, .protocol = (uint8_t)proto,
			       .dport = (uint16_t)port, .reason = (uint8_t)reason };

	memcpy(e.comm, "probe", 6);
	assert_int_equal(inet_pton(family, addr, e.daddr), 1);
	return e;
}

/* The line cgfence log prints from the event's JSON. */
static char *printed(const json_t *j)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	cgf_event_print(f, j);
	fclose(f);
	return buf;
}

/* reason: the JSON's, NULL for null */
static void expect(const struct cgf_event *e, const char *line, const char *reason)
{
	char buf[256];
	json_t *j = cgf_event_json(e, "/sys/fs/cgroup/box", NULL, NULL);
	json_t *r;
	char *log;

	cgf_event_format(e, buf, sizeof(buf));
	assert_string_equal(buf, line);
	assert_non_null(j);
	r = json_object_get(j, "reason");
	assert_non_null(r);
	if (reason)
		assert_string_equal(json_string_value(r), reason);
	else
		assert_true(json_is_null(r));
	log = printed(j);
	/* "TIME denied " + the same line + " cgroup /sys/fs/cgroup/box\n" */
	assert_non_null(strstr(log, line));
	assert_non_null(strstr(log, " cgroup /sys/fs/cgroup/box\n"));
	free(log);
	json_decref(j);
}

static void test_plain_denial_names_no_reason(void **unused)
{
	struct cgf_event e = event(CGF_HOOK_CONNECT4, AF_INET, "198.18.0.3", IPPROTO_TCP, 80,
				   CGF_REASON_NOT_ALLOWED);

	(void)unused;
	expect(&e, "tcp 198.18.0.3:80 (connect4) pid 42 (probe)", "not-allowed");
	/* an older program's event, which says no reason */
	e.reason = CGF_REASON_UNSAID;
	expect(&e, "tcp 198.18.0.3:80 (connect4) pid 42 (probe)", NULL);
}

/* A cgfence of layout 7 refused socket options; its logs name the option. */
static void test_json_of_a_refused_option(void **unused)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:s,s:s,s:i,s:s}", "time", "T", "action",
			      "denied", "hook", "setsockopt", "protocol", json_null(), "dport",
			      json_null(), "daddr", json_null(), "option", "IPV6_FREEBIND",
			      "reason", "not-allowed", "pid", 5, "comm", "probe");
	char *log;

	(void)unused;
	assert_non_null(j);
	log = printed(j);
	assert_string_equal(log, "T denied IPV6_FREEBIND (setsockopt) pid 5 (probe)\n");
	free(log);
	json_decref(j);
}

static void test_reasons_named(void **unused)
{
	struct cgf_event e;

	(void)unused;
	e = event(CGF_HOOK_EGRESS, AF_INET6, "2001:db8::2", IPPROTO_UDP, 5000,
		  CGF_REASON_ANY_SOURCE);
	expect(&e, "udp [2001:db8::2]:5000 (egress: its socket may send from any address) pid 42 "
		   "(probe)", "any-source");
	e = event(CGF_HOOK_EGRESS, AF_INET6, "2001:db8::2", IPPROTO_TCP, 5001,
		  CGF_REASON_FOREIGN_SOURCE);
	expect(&e, "tcp [2001:db8::2]:5001 (egress: source not an address of this host) pid 42 "
		   "(probe)", "foreign-source");
	e = event(CGF_HOOK_EGRESS, AF_INET, "127.0.0.1", IPPROTO_UDP, 53,
		  CGF_REASON_LOOPBACK_OFF_LO);
	expect(&e, "udp 127.0.0.1:53 (egress: loopback address off lo) pid 42 (probe)",
	       "loopback-off-lo");
	e = event(CGF_HOOK_EGRESS, AF_INET, "198.18.0.2", IPPROTO_TCP, 80, CGF_REASON_HEADER);
	expect(&e, "tcp 198.18.0.2:80 (egress: a header not judged) pid 42 (probe)", "header");
	/* the boundary has no process to name */
	e = event(CGF_HOOK_BOUNDARY, AF_INET, "198.18.0.2", IPPROTO_TCP, 80,
		  CGF_REASON_FORGED_SOURCE);
	expect(&e, "tcp 198.18.0.2:80 (boundary: source not routed back to the link)",
	       "forged-source");
	e = event(CGF_HOOK_SENDMSG4, AF_INET, "198.18.0.53", IPPROTO_UDP, 53,
		  CGF_REASON_NO_DNS_PROXY);
	expect(&e, "udp 198.18.0.53:53 (sendmsg4: no DNS proxy for it) pid 42 (probe)",
	       "no-dns-proxy");
}

/* In audit mode the same reasons, for what would have been denied. */
static void test_audit_event(void **unused)
{
	struct cgf_event e = event(CGF_HOOK_EGRESS, AF_INET, "198.18.0.2", IPPROTO_TCP, 80,
				   CGF_REASON_HEADER);
	json_t *j;
	char *log;

	(void)unused;
	e.action = CGF_EVENT_AUDIT;
	j = cgf_event_json(&e, NULL, NULL, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "action")), "audit");
	log = printed(j);
	assert_non_null(strstr(log, " audit: would deny tcp 198.18.0.2:80 (egress: a header not "
				    "judged) pid 42 (probe)\n"));
	free(log);
	json_decref(j);
}

/* An older cgfenced's JSON has no "reason": cgfence log prints none. */
static void test_json_without_reason(void **unused)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:i,s:s}", "time", "T", "action", "denied",
			      "hook", "egress", "protocol", "udp", "dport", 53, "daddr",
			      "198.18.0.9", "pid", 5, "comm", "dig");
	char *log;

	(void)unused;
	assert_non_null(j);
	log = printed(j);
	assert_string_equal(log, "T denied udp 198.18.0.9:53 (egress) pid 5 (dig)\n");
	free(log);
	json_decref(j);
}

/* A reason this build does not know (a newer program's) is shown by its number, not hidden. */
static void test_unknown_reason(void **unused)
{
	struct cgf_event e = event(CGF_HOOK_EGRESS, AF_INET, "198.18.0.2", IPPROTO_TCP, 80,
				   CGF_REASON_MAX);
	char name[32];

	(void)unused;
	snprintf(name, sizeof(name), "reason-%u", CGF_REASON_MAX);
	{
		char line[128];

		snprintf(line, sizeof(line), "tcp 198.18.0.2:80 (egress: %s) pid 42 (probe)", name);
		expect(&e, line, name);
	}
	/* and a name a newer cgfenced wrote is printed as it is */
	assert_string_equal(cgf_reason_text_of("some-new-reason"), "some-new-reason");
	assert_null(cgf_reason_text_of("not-allowed"));
	assert_null(cgf_reason_text_of(""));
	assert_null(cgf_reason_text_of(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_denial_names_no_reason),
		cmocka_unit_test(test_reasons_named),
		cmocka_unit_test(test_json_of_a_refused_option),
		cmocka_unit_test(test_audit_event),
		cmocka_unit_test(test_json_without_reason),
		cmocka_unit_test(test_unknown_reason),
	};

	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}

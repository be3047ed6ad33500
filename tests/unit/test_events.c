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

static void expect(const struct cgf_event *e, const char *line, const char *reason)
{
	char buf[256];
	json_t *j = cgf_event_json(e, "/sys/fs/cgroup/box", NULL, NULL);
	char *log;

	cgf_event_format(e, buf, sizeof(buf));
	assert_string_equal(buf, line);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "reason")), reason);
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
}

static void test_reasons_named(void **unused)
{
	struct cgf_event e;

	(void)unused;
	e = event(CGF_HOOK_EGRESS, AF_INET6, "2001:db8::2", IPPROTO_UDP, 5000,
		  CGF_REASON_ANY_SOURCE);
	expect(&e, "udp [2001:db8::2]:5000 (egress: its socket may send from any address) pid 42 "
		   "(probe)", "any-source");
	e = event(CGF_HOOK_EGRESS, AF_INET, "127.0.0.1", IPPROTO_UDP, 53,
		  CGF_REASON_LOOPBACK_OFF_LO);
	expect(&e, "udp 127.0.0.1:53 (egress: loopback address off lo) pid 42 (probe)",
	       "loopback-off-lo");
	e = event(CGF_HOOK_EGRESS, AF_INET, "198.18.0.2", IPPROTO_TCP, 80, CGF_REASON_HEADER);
	expect(&e, "tcp 198.18.0.2:80 (egress: a header not judged) pid 42 (probe)", "header");
	/* the boundary has no process to name */
	e = event(CGF_HOOK_BOUNDARY, AF_INET, "198.18.0.2", IPPROTO_TCP, 80,
		  CGF_REASON_FORGED_SOURCE);
	expect(&e, "tcp 198.18.0.2:80 (boundary: forged source)", "forged-source");
}

/* A reason this build does not know (a newer program's) is said to be unknown, not hidden. */
static void test_unknown_reason(void **unused)
{
	struct cgf_event e = event(CGF_HOOK_EGRESS, AF_INET, "198.18.0.2", IPPROTO_TCP, 80,
				   CGF_REASON_MAX);

	(void)unused;
	expect(&e, "tcp 198.18.0.2:80 (egress: unknown reason) pid 42 (probe)", "unknown");
	assert_null(cgf_reason_text_of("not-allowed"));
	assert_null(cgf_reason_text_of(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_denial_names_no_reason),
		cmocka_unit_test(test_reasons_named),
		cmocka_unit_test(test_unknown_reason),
	};

	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of the daemon's request parsing (cgf_request_parse): the
 * requests cgfence and the OCI hook send, field by field, then a table of
 * refused lines with the exact message the client gets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "control.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct cgf_request req;

static void parse_ok(const char *line)
{
	char err[512] = "";

	if (cgf_request_parse(line, &req, err, sizeof(err)))
		fail_msg("'%s': %s", line, err);
}

/* What the OCI hook sends. */
static void test_attach_pid(void **unused)
{
	uint8_t a4[16] = { 0 }, a6[16];

	parse_ok("{\"op\":\"attach\",\"policy\":\"web\",\"pid\":4242,\"audit\":true,"
		 "\"label\":\"container 3ba72957c49e fz\",\"dns\":[\"198.18.0.4\","
		 "\"[2001:db8::53]:5353\"],\"unknown\":{\"fields\":\"are ignored\"}}");
	assert_int_equal(req.op, CGF_REQ_ATTACH);
	assert_string_equal(req.op_name, "attach");
	assert_string_equal(req.policy, "web");
	assert_string_equal(req.cgroup, "");
	assert_int_equal(req.pid, 4242);
	assert_true(req.audit);
	assert_true(req.has_label);
	assert_string_equal(req.label, "container 3ba72957c49e fz");
	assert_int_equal(req.n_dns, 2);
	inet_pton(AF_INET, "198.18.0.4", a4);
	assert_int_equal(req.dns[0].family, AF_INET);
	assert_int_equal(req.dns[0].port, 53);
	assert_memory_equal(req.dns[0].addr, a4, 16);
	inet_pton(AF_INET6, "2001:db8::53", a6);
	assert_int_equal(req.dns[1].family, AF_INET6);
	assert_int_equal(req.dns[1].port, 5353);
	assert_memory_equal(req.dns[1].addr, a6, 16);
}

/* What cgfence attach sends; null is absent. */
static void test_attach_cgroup(void **unused)
{
	parse_ok("{\"op\":\"attach\",\"policy\":\"a.b_c-9\",\"audit\":false,"
		 "\"cgroup\":\"/sys/fs/cgroup/x\",\"pid\":null,\"label\":null,\"dns\":null}");
	assert_int_equal(req.op, CGF_REQ_ATTACH);
	assert_string_equal(req.policy, "a.b_c-9");
	assert_string_equal(req.cgroup, "/sys/fs/cgroup/x");
	assert_int_equal(req.pid, 0);
	assert_false(req.audit);
	assert_false(req.has_label);
	assert_int_equal(req.n_dns, 0);
	parse_ok("{\"op\":\"attach\",\"policy\":\"p\",\"pid\":2147483647,\"dns\":[]}");
	assert_int_equal(req.pid, 2147483647);
	assert_false(req.audit);
}

/* The boundary fields: what the hook sends with and without a veth to the host. */
static void test_attach_boundary(void **unused)
{
	parse_ok("{\"op\":\"attach\",\"policy\":\"web\",\"pid\":7,\"boundary\":\"veth1a2b\","
		 "\"boundary_netns\":\"/run/netns/box\",\"net_caps\":[\"CAP_NET_RAW\","
		 "\"CAP_NET_ADMIN\"]}");
	assert_string_equal(req.boundary, "veth1a2b");
	assert_string_equal(req.boundary_netns, "/run/netns/box");
	assert_true(req.has_net_caps);
	assert_int_equal(req.net_caps, CGF_RISK_NET_RAW | CGF_RISK_NET_ADMIN);
	parse_ok("{\"op\":\"attach\",\"policy\":\"web\",\"pid\":7,\"net_caps\":[],"
		 "\"boundary_missing\":\"no veth to the host\"}");
	assert_string_equal(req.boundary, "");
	assert_string_equal(req.boundary_missing, "no veth to the host");
	assert_true(req.has_net_caps);
	assert_int_equal(req.net_caps, 0);
	/* cgfence attach sends no capabilities: they stay unknown */
	parse_ok("{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"/x\",\"boundary\":\"v\"}");
	assert_false(req.has_net_caps);
	assert_string_equal(req.boundary_netns, "");
}

/* DNS proxy mode: where a cgroup's proxy listens. */
static void test_attach_netns_pid(void **unused)
{
	parse_ok("{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"/x\",\"netns_pid\":4243}");
	assert_int_equal(req.netns_pid, 4243);
	assert_int_equal(req.pid, 0);
	parse_ok("{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"/x\",\"netns_pid\":null}");
	assert_int_equal(req.netns_pid, 0);
}

/* What cgfence run --dns-proxy sends: its rules, as given, for the daemon to parse. */
static void test_proxy(void **unused)
{
	parse_ok("{\"op\":\"proxy\",\"cgroup_id\":9007199254740993,\"bpffs\":\"/sys/fs/bpf/t\","
		 "\"rules\":[{\"source\":\"--allow\",\"text\":\"example.com:443\"},"
		 "{\"source\":\"a.policy\",\"text\":\"dns proxy\\n*.example.org\\n\",\"file\":true}]}");
	assert_int_equal(req.op, CGF_REQ_PROXY);
	assert_true(req.cgroup_id == 9007199254740993ULL);
	assert_string_equal(req.bpffs, "/sys/fs/bpf/t");
	assert_int_equal(req.n_rules, 2);
	assert_string_equal(req.rules[0].source, "--allow");
	assert_string_equal(req.rules[0].text, "example.com:443");
	assert_false(req.rules[0].file);
	assert_string_equal(req.rules[1].source, "a.policy");
	assert_string_equal(req.rules[1].text, "dns proxy\n*.example.org\n");
	assert_true(req.rules[1].file);
	cgf_request_free(&req);
	assert_null(req.rules);
	assert_int_equal(req.n_rules, 0);
	parse_ok("{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":[]}");
	assert_int_equal(req.n_rules, 0);
	assert_string_equal(req.bpffs, "");
	cgf_request_free(&req);
}

static void test_other_ops(void **unused)
{
	parse_ok("{\"op\":\"detach\",\"cgroup\":\"demo\"}");
	assert_int_equal(req.op, CGF_REQ_DETACH);
	assert_string_equal(req.cgroup, "demo");
	parse_ok("{\"op\":\"status\"}");
	assert_int_equal(req.op, CGF_REQ_STATUS);
	parse_ok("{\"op\":\"reload\",\"cgroup\":17}"); /* fields an op does not read: ignored */
	assert_int_equal(req.op, CGF_REQ_RELOAD);
	parse_ok("{\"op\":\"events\",\"follow\":true}");
	assert_int_equal(req.op, CGF_REQ_EVENTS);
	assert_true(req.follow);
	parse_ok("{\"op\":\"events\"}");
	assert_false(req.follow);
	parse_ok("{\"op\":\"release\"}");
	assert_int_equal(req.op, CGF_REQ_RELEASE);
}

static const struct {
	const char *line;
	enum cgf_request_op op; /* still set for a field error, so that who may ask is checked */
	const char *op_name;
	const char *err;        /* the whole message, or its start when it ends with '*' */
} bad[] = {
	{ "", CGF_REQ_NONE, "", "malformed request: *" },
	{ "{\"op\":\"status\"", CGF_REQ_NONE, "", "malformed request: *" },
	{ "[1,2]", CGF_REQ_NONE, "", "malformed request: not a JSON object" },
	{ "\"status\"", CGF_REQ_NONE, "", "malformed request: *" },
	{ "null", CGF_REQ_NONE, "", "malformed request: *" },
	{ "{\"op\":\"status\",\"op\":\"reload\"}", CGF_REQ_NONE, "",
	  "malformed request: duplicate object key*" },
	{ "{\"op\":\"st\\u0000atus\"}", CGF_REQ_NONE, "", "malformed request: *" },
	{ "{}", CGF_REQ_NONE, "?", "request without 'op'" },
	{ "{\"op\":17}", CGF_REQ_NONE, "?", "request without 'op'" },
	{ "{\"op\":\"frobnicate\"}", CGF_REQ_NONE, "frobnicate",
	  "unknown request 'frobnicate' (attach, detach, status, reload, events, release, "
	  "proxy)" },
	{ "{\"op\":\"Status\"}", CGF_REQ_NONE, "Status", "unknown request 'Status'*" },
	{ "{\"op\":\"attach\"}", CGF_REQ_ATTACH, "attach",
	  "attach: 'policy' must be a policy name (letters, digits, '.', '_', '-')" },
	{ "{\"op\":\"attach\",\"policy\":\"../pol/web\",\"pid\":5}", CGF_REQ_ATTACH, "attach",
	  "attach: 'policy' must be a policy name*" },
	{ "{\"op\":\"attach\",\"policy\":\"\",\"pid\":5}", CGF_REQ_ATTACH, "attach",
	  "attach: 'policy' must be a policy name*" },
	{ "{\"op\":\"attach\",\"policy\":\".hidden\",\"pid\":5}", CGF_REQ_ATTACH, "attach",
	  "attach: 'policy' must be a policy name*" },
	{ "{\"op\":\"attach\",\"policy\":"
	  "\"0123456789012345678901234567890123456789012345678901234567890123\",\"pid\":5}",
	  CGF_REQ_ATTACH, "attach", "attach: 'policy' must be a policy name*" },
	{ "{\"op\":\"attach\",\"policy\":[\"web\"],\"pid\":5}", CGF_REQ_ATTACH, "attach",
	  "attach: 'policy' must be a policy name*" },
	{ "{\"op\":\"attach\",\"policy\":\"web\"}", CGF_REQ_ATTACH, "attach",
	  "attach: give exactly one of 'cgroup' and 'pid'" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"cgroup\":\"/x\"}", CGF_REQ_ATTACH,
	  "attach", "attach: give exactly one of 'cgroup' and 'pid'" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":5}", CGF_REQ_ATTACH, "attach",
	  "attach: 'cgroup' must be a path (a string)" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"\"}", CGF_REQ_ATTACH, "attach",
	  "attach: 'cgroup' is empty" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":-1}", CGF_REQ_ATTACH, "attach",
	  "attach: 'pid' must be a positive integer" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":0}", CGF_REQ_ATTACH, "attach",
	  "attach: 'pid' must be a positive integer" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":4294967297}", CGF_REQ_ATTACH, "attach",
	  "attach: 'pid' must be a positive integer" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":\"1\"}", CGF_REQ_ATTACH, "attach",
	  "attach: 'pid' must be a positive integer" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5.0}", CGF_REQ_ATTACH, "attach",
	  "attach: 'pid' must be a positive integer" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"label\":5}", CGF_REQ_ATTACH, "attach",
	  "attach: 'label' must be a string" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"dns\":\"198.18.0.4\"}", CGF_REQ_ATTACH,
	  "attach", "attach: 'dns' must be a list of at most 4 resolvers" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"dns\":[\"198.18.0.1\",\"198.18.0.2\","
	  "\"198.18.0.3\",\"198.18.0.4\",\"198.18.0.5\"]}", CGF_REQ_ATTACH, "attach",
	  "attach: 'dns' must be a list of at most 4 resolvers" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"dns\":[\"198.18.0.4\",53]}",
	  CGF_REQ_ATTACH, "attach", "attach: 'dns' entry 1: not a string" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"dns\":[\"resolver.example\"]}",
	  CGF_REQ_ATTACH, "attach", "attach: 'dns' entry 0: *" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"audit\":\"true\"}", CGF_REQ_ATTACH,
	  "attach", "attach: 'audit' must be true or false" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary\":5}", CGF_REQ_ATTACH,
	  "attach", "attach: 'boundary' must be a string" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary\":\"\"}", CGF_REQ_ATTACH,
	  "attach", "attach: 'boundary' must be 1 to 15 bytes, without NUL" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary\":\"0123456789abcdef\"}",
	  CGF_REQ_ATTACH, "attach", "attach: 'boundary' must be 1 to 15 bytes, without NUL" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary\":\"../x\"}",
	  CGF_REQ_ATTACH, "attach", "attach: 'boundary' must be an interface name" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary\":\"v\","
	  "\"boundary_netns\":\"run/netns/x\"}", CGF_REQ_ATTACH, "attach",
	  "attach: 'boundary_netns' must be an absolute path" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary_netns\":\"/x\"}",
	  CGF_REQ_ATTACH, "attach", "attach: 'boundary_netns' without 'boundary'" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"net_caps\":\"CAP_NET_RAW\"}",
	  CGF_REQ_ATTACH, "attach", "attach: 'net_caps' must be a list of capability names" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"net_caps\":[\"CAP_SYS_ADMIN\"]}",
	  CGF_REQ_ATTACH, "attach", "attach: 'net_caps' entry 0: not CAP_NET_RAW or CAP_NET_ADMIN" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"boundary_missing\":1}",
	  CGF_REQ_ATTACH, "attach", "attach: 'boundary_missing' must be a string" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"pid\":5,\"netns_pid\":6}", CGF_REQ_ATTACH,
	  "attach", "attach: 'netns_pid' must be a positive integer, with 'cgroup'" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"/x\",\"netns_pid\":0}",
	  CGF_REQ_ATTACH, "attach", "attach: 'netns_pid' must be a positive integer, with 'cgroup'" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"/x\",\"netns_pid\":\"6\"}",
	  CGF_REQ_ATTACH, "attach", "attach: 'netns_pid' must be a positive integer, with 'cgroup'" },
	{ "{\"op\":\"attach\",\"policy\":\"web\",\"cgroup\":\"/x\",\"netns_pid\":2147483648}",
	  CGF_REQ_ATTACH, "attach", "attach: 'netns_pid' must be a positive integer, with 'cgroup'" },
	{ "{\"op\":\"proxy\"}", CGF_REQ_PROXY, "proxy",
	  "proxy: needs 'cgroup_id' (a positive integer) and 'rules' (a list)" },
	{ "{\"op\":\"proxy\",\"cgroup_id\":0,\"rules\":[]}", CGF_REQ_PROXY, "proxy",
	  "proxy: needs 'cgroup_id' (a positive integer) and 'rules' (a list)" },
	{ "{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":{}}", CGF_REQ_PROXY, "proxy",
	  "proxy: needs 'cgroup_id' (a positive integer) and 'rules' (a list)" },
	{ "{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":[],\"bpffs\":\"\"}", CGF_REQ_PROXY,
	  "proxy", "proxy: 'bpffs' must be a path of 1 to 4095 bytes" },
	{ "{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":[\"example.com\"]}", CGF_REQ_PROXY,
	  "proxy", "proxy: rule 0: not an object" },
	{ "{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":[{\"source\":\"s\",\"text\":\"a\"},"
	  "{\"source\":\"s\"}]}", CGF_REQ_PROXY, "proxy",
	  "proxy: rule 1: 'text' must be a string without NUL" },
	{ "{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":[{\"source\":\"s\",\"text\":\"a\\u0000b\"}]}",
	  CGF_REQ_NONE, "", "malformed request: *" }, /* jansson refuses a NUL itself */
	{ "{\"op\":\"proxy\",\"cgroup_id\":1,\"rules\":[{\"source\":\"s\",\"text\":\"a\","
	  "\"file\":1}]}", CGF_REQ_PROXY, "proxy", "proxy: 'file' must be true or false" },
	{ "{\"op\":\"detach\"}", CGF_REQ_DETACH, "detach", "detach: 'cgroup' is required" },
	{ "{\"op\":\"detach\",\"cgroup\":null}", CGF_REQ_DETACH, "detach",
	  "detach: 'cgroup' is required" },
	{ "{\"op\":\"detach\",\"cgroup\":[]}", CGF_REQ_DETACH, "detach",
	  "detach: 'cgroup' must be a path (a string)" },
	{ "{\"op\":\"events\",\"follow\":1}", CGF_REQ_EVENTS, "events",
	  "events: 'follow' must be true or false" },
};

static void test_refused(void **unused)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char err[512] = "";
		int ret = cgf_request_parse(bad[i].line, &req, err, sizeof(err));
		size_t n = strlen(bad[i].err);
		int match = bad[i].err[n - 1] == '*' ? !strncmp(err, bad[i].err, n - 1) :
						       !strcmp(err, bad[i].err);

		if (ret != -EINVAL || !match)
			fail_msg("'%s': got %d '%s', want '%s'", bad[i].line, ret, err, bad[i].err);
		if (req.op != bad[i].op || strcmp(req.op_name, bad[i].op_name))
			fail_msg("'%s': op %d '%s', want %d '%s'", bad[i].line, req.op, req.op_name,
				 bad[i].op, bad[i].op_name);
		/* a refused request owns nothing */
		if (req.rules || req.n_rules)
			fail_msg("'%s': refused, but holds %zu rules", bad[i].line, req.n_rules);
	}
}

/* Long values: cut for the log, refused where they would not fit. */
static void test_lengths(void **unused)
{
	char line[8192], err[512];
	char op[101], label[129], cgroup[4097];

	memset(op, 'o', sizeof(op) - 1);
	op[sizeof(op) - 1] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"%s\"}", op);
	assert_int_equal(cgf_request_parse(line, &req, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(req.op_name), 64);
	assert_int_equal(strlen(err), strlen("unknown request '' (attach, detach, status, reload, "
					     "events, release, proxy)") + 64);

	memset(label, 'l', sizeof(label) - 1);
	label[127] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"attach\",\"policy\":\"p\",\"pid\":5,\"label\":\"%s\"}",
		 label);
	assert_int_equal(cgf_request_parse(line, &req, err, sizeof(err)), 0);
	assert_string_equal(req.label, label);
	label[127] = 'l';
	label[128] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"attach\",\"policy\":\"p\",\"pid\":5,\"label\":\"%s\"}",
		 label);
	assert_int_equal(cgf_request_parse(line, &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "attach: 'label' longer than 127 bytes");

	memset(cgroup, 'c', sizeof(cgroup) - 1);
	cgroup[4095] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"detach\",\"cgroup\":\"%s\"}", cgroup);
	assert_int_equal(cgf_request_parse(line, &req, err, sizeof(err)), 0);
	assert_int_equal(strlen(req.cgroup), 4095);
	cgroup[4095] = 'c';
	cgroup[4096] = '\0';
	snprintf(line, sizeof(line), "{\"op\":\"detach\",\"cgroup\":\"%s\"}", cgroup);
	assert_int_equal(cgf_request_parse(line, &req, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "detach: 'cgroup' longer than 4095 bytes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_pid),
		cmocka_unit_test(test_attach_cgroup),
		cmocka_unit_test(test_attach_boundary),
		cmocka_unit_test(test_attach_netns_pid),
		cmocka_unit_test(test_proxy),
		cmocka_unit_test(test_other_ops),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of the OCI hook's parsing: the state and config.json podman 4.3
 * wrote for real containers (tests/fuzz/corpus_oci, run from the repo root,
 * as make check does), then tables of malformed inputs with the expected
 * message, and resolv.conf nameserver lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>

#include "oci.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(c) (1ull << (c))
#define SAMPLES "tests/fuzz/corpus_oci/"

/* The capabilities podman 4.3 gives a container by default. */
static const uint64_t podman_default = BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) |
	BIT(CAP_FOWNER) | BIT(CAP_FSETID) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE) |
	BIT(CAP_SETFCAP) | BIT(CAP_SETGID) | BIT(CAP_SETPCAP) | BIT(CAP_SETUID) |
	BIT(CAP_SYS_CHROOT);

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open '%s' (run from the repo root): %m", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf; /* not NUL-terminated, on purpose: the parsers take a length */
}

static void parse_state_file(const char *name, struct cgf_oci_state *st)
{
	char err[CGF_OCI_ERR_LEN] = "", path[256];
	size_t len;
	char *buf;

	snprintf(path, sizeof(path), SAMPLES "%s", name);
	buf = slurp(path, &len);
	if (cgf_oci_state_parse(buf, len, st, err, sizeof(err)))
		fail_msg("%s: %s", name, err);
	free(buf);
}

static void parse_config_file(const char *name, struct cgf_oci_config *cfg)
{
	char err[CGF_OCI_ERR_LEN] = "", path[256];
	size_t len;
	char *buf;

	snprintf(path, sizeof(path), SAMPLES "%s", name);
	buf = slurp(path, &len);
	if (cgf_oci_config_parse(buf, len, cfg, err, sizeof(err)))
		fail_msg("%s: %s", name, err);
	free(buf);
}

static void test_podman_states(void **unused)
{
	struct cgf_oci_state st;

	parse_state_file("podman-state-1.json", &st);
	assert_string_equal(st.policy, "web");
	assert_false(st.audit);
	assert_string_equal(st.id,
			    "3ba72957c49e3b4cc6d0d6267a2198a7863f81e20618d8ceacefe6c689ada7af");
	assert_string_equal(st.bundle, "/var/lib/containers/storage/overlay-containers/"
			    "3ba72957c49e3b4cc6d0d6267a2198a7863f81e20618d8ceacefe6c689ada7af/userdata");
	assert_int_equal(st.pid, 18672);
	assert_string_equal(st.name, "fz");
	cgf_oci_state_free(&st);

	parse_state_file("podman-state-2.json", &st);
	assert_string_equal(st.policy, "web");
	assert_true(st.audit);
	assert_int_equal(st.pid, 18718);
	assert_null(st.name);
	cgf_oci_state_free(&st);
}

/* podman --network ns:PATH --dns ...: joins a namespace, resolv.conf mounted */
static void test_podman_config_netns_path(void **unused)
{
	struct cgf_oci_config cfg;

	parse_config_file("podman-config-netns-path.json", &cfg);
	assert_true(cfg.caps_given);
	assert_int_equal(cfg.caps.bounding, podman_default);
	assert_int_equal(cfg.caps.effective, podman_default);
	assert_int_equal(cfg.caps.permitted, podman_default);
	assert_int_equal(cfg.caps.ambient, 0);
	assert_int_equal(cfg.caps.inheritable, 0);
	assert_true(cfg.own_netns);
	assert_string_equal(cfg.netns_path, "/run/netns/fuzzoci15450-n");
	assert_string_equal(cfg.resolv_source, "/run/containers/storage/overlay-containers/"
			    "3ba72957c49e3b4cc6d0d6267a2198a7863f81e20618d8ceacefe6c689ada7af/"
			    "userdata/resolv.conf");
	cgf_oci_config_free(&cfg);
}

/* podman --network none --cap-add NET_ADMIN,NET_RAW --cap-drop CHOWN */
static void test_podman_config_netns_new(void **unused)
{
	uint64_t want = (podman_default & ~BIT(CAP_CHOWN)) | BIT(CAP_NET_ADMIN) | BIT(CAP_NET_RAW);
	struct cgf_oci_config cfg;

	parse_config_file("podman-config-netns-new.json", &cfg);
	assert_int_equal(cfg.caps.bounding, want);
	assert_int_equal(cfg.caps.effective, want);
	assert_int_equal(cfg.caps.permitted, want);
	assert_int_equal(cfg.caps.ambient, 0);
	assert_true(cfg.own_netns);
	assert_null(cfg.netns_path);
	assert_null(cfg.resolv_source); /* --network none: no resolv.conf mount */
	cgf_oci_config_free(&cfg);
}

/* podman --network host --privileged: the host's namespace, every capability but one */
static void test_podman_config_host_privileged(void **unused)
{
	struct cgf_oci_config cfg;

	parse_config_file("podman-config-host-privileged.json", &cfg);
	/* podman 4.3 leaves CAP_SYS_RESOURCE out even of --privileged */
	assert_int_equal(cfg.caps.bounding, cgf_oci_caps_all() & ~BIT(CAP_SYS_RESOURCE));
	assert_int_equal(cfg.caps.effective, cfg.caps.bounding);
	assert_false(cfg.own_netns);
	assert_null(cfg.netns_path);
	assert_non_null(cfg.resolv_source);
	cgf_oci_config_free(&cfg);
}

static void test_state_not_opted_in(void **unused)
{
	static const char *const cases[] = {
		"{}",
		"{\"annotations\":{}}",
		"{\"annotations\":{\"cgfence.policy\":\"\"}}",
		/* nothing else is checked for a container that is not ours */
		"{\"id\":5,\"annotations\":{\"other\":[1]}}",
	};
	char err[CGF_OCI_ERR_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cgf_oci_state st;

		if (cgf_oci_state_parse(cases[i], strlen(cases[i]), &st, err, sizeof(err)))
			fail_msg("'%s': %s", cases[i], err);
		assert_null(st.policy);
		assert_null(st.id);
		cgf_oci_state_free(&st);
	}
}

/* err is the whole message, or its start when it ends with '*' (jansson's own words) */
struct bad_case {
	const char *text;
	const char *err;
};

static bool err_matches(const char *err, const char *want)
{
	size_t n = strlen(want);

	if (n && want[n - 1] == '*')
		return !strncmp(err, want, n - 1);
	return !strcmp(err, want);
}

#define OPTED(rest) "{\"annotations\":{\"cgfence.policy\":\"web\"}" rest "}"

static const struct bad_case bad_states[] = {
	{ "", "invalid JSON: *" },
	{ "[1]", "not a JSON object" },
	{ "{\"a\":1,\"a\":2}", "invalid JSON: duplicate object key*" },
	{ "{\"annotations\":[]}", "'annotations': not an object" },
	{ "{\"annotations\":{\"cgfence.policy\":1}}", "'annotations.cgfence.policy': not a string" },
	{ OPTED(",\"id\":\"x\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{}"),
	  "invalid JSON: duplicate object key*" },
	{ OPTED(""), "'id': missing" },
	{ OPTED(",\"id\":\"\""), "'id': empty" },
	{ OPTED(",\"id\":7"), "'id': not a string" },
	{ OPTED(",\"id\":\"x\""), "'bundle': missing" },
	{ OPTED(",\"id\":\"x\",\"bundle\":\"b\""), "'bundle': not an absolute path" },
	{ OPTED(",\"id\":\"x\",\"bundle\":null"), "'bundle': not a string" },
	{ OPTED(",\"id\":\"x\",\"bundle\":\"/b\""), "'pid': missing" },
	{ OPTED(",\"id\":\"x\",\"bundle\":\"/b\",\"pid\":0"),
	  "'pid': not a positive integer (1 to 2147483647)" },
	{ OPTED(",\"id\":\"x\",\"bundle\":\"/b\",\"pid\":2147483648"),
	  "'pid': not a positive integer (1 to 2147483647)" },
	{ OPTED(",\"id\":\"x\",\"bundle\":\"/b\",\"pid\":\"5\""),
	  "'pid': not a positive integer (1 to 2147483647)" },
	{ "{\"annotations\":{\"cgfence.policy\":\"w\",\"cgfence.audit\":true}}",
	  "'annotations.cgfence.audit': not a string" },
	{ "{\"annotations\":{\"cgfence.policy\":\"w\",\"cgfence.name\":{}}}",
	  "'annotations.cgfence.name': not a string" },
};

static void test_state_malformed(void **unused)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_states); i++) {
		const struct bad_case *c = &bad_states[i];
		struct cgf_oci_state st;
		char err[CGF_OCI_ERR_LEN] = "";
		int ret = cgf_oci_state_parse(c->text, strlen(c->text), &st, err, sizeof(err));

		if (ret != -EINVAL || !err_matches(err, c->err))
			fail_msg("'%s': got %d '%s', want '%s'", c->text, ret, err, c->err);
		assert_null(st.policy);
		assert_null(st.id);
		assert_null(st.bundle);
	}
}

static void test_state_fields(void **unused)
{
	static const char text[] =
		"{\"id\":\"c1\",\"pid\":2147483647,\"bundle\":\"/b\",\"annotations\":{"
		"\"cgfence.policy\":\"p\",\"cgfence.audit\":\"yes\",\"cgfence.name\":\"\","
		"\"io.kubernetes.cri-o.ContainerName\":\"k8s-name\"}}trailing";
	struct cgf_oci_state st;
	char err[CGF_OCI_ERR_LEN];

	/* the length, not a NUL, ends the input */
	if (cgf_oci_state_parse(text, strlen(text) - strlen("trailing"), &st, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(st.policy, "p");
	assert_false(st.audit); /* only "true" is true */
	assert_int_equal(st.pid, 2147483647);
	assert_string_equal(st.name, "k8s-name"); /* an empty cgfence.name is no name */
	cgf_oci_state_free(&st);
}

static void test_config_caps(void **unused)
{
	static const char absent[] = "{\"process\":{\"args\":[\"sh\"]}}";
	static const char sets[] =
		"{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_NET_ADMIN\",\"cap_net_raw\"],"
		"\"ambient\":[\"CAP_BPF\"],\"inheritable\":null}}}";
	struct cgf_oci_config cfg;
	char err[CGF_OCI_ERR_LEN];
	uint64_t all = cgf_oci_caps_all();

	/* no capabilities at all: the runtime drops nothing, so assume everything */
	if (cgf_oci_config_parse(absent, strlen(absent), &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_false(cfg.caps_given);
	assert_int_equal(cfg.caps.bounding, all);
	assert_int_equal(cfg.caps.effective, all);
	assert_int_equal(cfg.caps.permitted, all);
	assert_int_equal(cfg.caps.ambient, all);
	assert_int_equal(cfg.caps.inheritable, all);
	assert_false(cfg.own_netns);
	cgf_oci_config_free(&cfg);
	if (cgf_oci_config_parse("{}", 2, &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_false(cfg.caps_given);
	assert_int_equal(cfg.caps.bounding, all);
	cgf_oci_config_free(&cfg);

	/* given: absent sets are empty, names in any case */
	if (cgf_oci_config_parse(sets, strlen(sets), &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(cfg.caps_given);
	assert_int_equal(cfg.caps.bounding, BIT(CAP_NET_ADMIN) | BIT(CAP_NET_RAW));
	assert_int_equal(cfg.caps.effective, 0);
	assert_int_equal(cfg.caps.permitted, 0);
	assert_int_equal(cfg.caps.ambient, BIT(CAP_BPF));
	assert_int_equal(cfg.caps.inheritable, 0);
	cgf_oci_config_free(&cfg);

	assert_int_equal(all, (CAP_LAST_CAP == 63 ? ~0ull : BIT(CAP_LAST_CAP + 1) - 1));
	for (int n = 0; n <= CAP_LAST_CAP; n++)
		assert_int_equal(cgf_oci_cap_from_name(cgf_oci_cap_name(n)), n);
	assert_null(cgf_oci_cap_name(-1));
	assert_null(cgf_oci_cap_name(CAP_LAST_CAP + 1));
	assert_int_equal(cgf_oci_cap_from_name("NET_ADMIN"), -1); /* the prefix is required */
	assert_int_equal(cgf_oci_cap_from_name("CAP_"), -1);
	assert_string_equal(cgf_oci_cap_name(CAP_NET_ADMIN), "CAP_NET_ADMIN");
}

static void test_config_namespaces_mounts(void **unused)
{
	static const char text[] =
		"{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"\"}]},"
		"\"mounts\":[{\"destination\":\"/etc/resolv.conf\",\"source\":\"/first\"},"
		"{\"destination\":\"/proc\",\"type\":\"proc\"},"
		"{\"destination\":\"/etc/resolv.conf\",\"source\":\"rel/resolv.conf\"}]}";
	struct cgf_oci_config cfg;
	char err[CGF_OCI_ERR_LEN], path[32];

	if (cgf_oci_config_parse(text, strlen(text), &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_true(cfg.own_netns);
	assert_null(cfg.netns_path); /* an empty path is a new namespace */
	assert_string_equal(cfg.resolv_source, "rel/resolv.conf"); /* the last mount wins */
	cgf_oci_config_free(&cfg);

	assert_int_equal(cgf_oci_bundle_path("/b", "rel/r", path, sizeof(path)), 0);
	assert_string_equal(path, "/b/rel/r");
	assert_int_equal(cgf_oci_bundle_path("/b", "/abs/r", path, sizeof(path)), 0);
	assert_string_equal(path, "/abs/r");
	assert_int_equal(cgf_oci_bundle_path("/b", "0123456789012345678901234567890", path,
					     sizeof(path)), -ENAMETOOLONG);
}

static const struct bad_case bad_configs[] = {
	{ "{", "invalid JSON: *" },
	{ "\"x\"", "invalid JSON: *" },
	{ "[]", "not a JSON object" },
	{ "{\"process\":[]}", "'process': not an object" },
	{ "{\"process\":{\"capabilities\":[]}}", "'process.capabilities': not an object" },
	{ "{\"process\":{\"capabilities\":{\"effective\":\"CAP_KILL\"}}}",
	  "'process.capabilities.effective': not a list" },
	{ "{\"process\":{\"capabilities\":{\"permitted\":[\"CAP_KILL\",5]}}}",
	  "'process.capabilities.permitted[1]': not a string" },
	{ "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_NO_SUCH\"]}}}",
	  "'process.capabilities.bounding[1]': unknown capability 'CAP_NO_SUCH'" },
	{ "{\"process\":{\"capabilities\":{\"ambient\":[\"NET_ADMIN\"]}}}",
	  "'process.capabilities.ambient[0]': unknown capability 'NET_ADMIN'" },
	{ "{\"process\":{\"capabilities\":{\"inheritable\":[\"CAP_\\u0000KILL\"]}}}",
	  "invalid JSON: *" },
	{ "{\"linux\":1}", "'linux': not an object" },
	{ "{\"linux\":{\"namespaces\":{}}}", "'linux.namespaces': not a list" },
	{ "{\"linux\":{\"namespaces\":[\"network\"]}}", "'linux.namespaces[0]': not an object" },
	{ "{\"linux\":{\"namespaces\":[{\"path\":\"/x\"}]}}", "'linux.namespaces[0].type': missing" },
	{ "{\"linux\":{\"namespaces\":[{\"type\":1}]}}",
	  "'linux.namespaces[0].type': not a string" },
	{ "{\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":false}]}}",
	  "'linux.namespaces[0].path': not a string" },
	{ "{\"linux\":{\"namespaces\":[{\"type\":\"network\"},{\"type\":\"network\",\"path\":\"/n\"}]}}",
	  "'linux.namespaces[1]': a second 'network' namespace" },
	{ "{\"mounts\":{}}", "'mounts': not a list" },
	{ "{\"mounts\":[null]}", "'mounts[0]': not an object" },
	{ "{\"mounts\":[{\"source\":\"/x\"}]}", "'mounts[0].destination': missing" },
	{ "{\"mounts\":[{\"destination\":[]}]}", "'mounts[0].destination': not a string" },
	{ "{\"mounts\":[{\"destination\":\"/etc/resolv.conf\"}]}", "'mounts[0].source': missing" },
	{ "{\"mounts\":[{\"destination\":\"/etc/resolv.conf\",\"source\":\"\"}]}",
	  "'mounts[0].source': empty" },
	{ "{\"mounts\":[{\"destination\":\"/etc/resolv.conf\",\"source\":1}]}",
	  "'mounts[0].source': not a string" },
};

static void test_config_malformed(void **unused)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_configs); i++) {
		const struct bad_case *c = &bad_configs[i];
		struct cgf_oci_config cfg;
		char err[CGF_OCI_ERR_LEN] = "";
		int ret = cgf_oci_config_parse(c->text, strlen(c->text), &cfg, err, sizeof(err));

		if (ret != -EINVAL || !err_matches(err, c->err))
			fail_msg("'%s': got %d '%s', want '%s'", c->text, ret, err, c->err);
		assert_null(cfg.netns_path);
		assert_null(cfg.resolv_source);
	}
}

/* All or nothing: an error after the network namespace was read leaves nothing to free. */
static void test_config_error_after_fields(void **unused)
{
	static const char text[] =
		"{\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"/run/netns/x\"}]},"
		"\"mounts\":[{\"destination\":\"/etc/resolv.conf\",\"source\":\"/r\"},{}]}";
	struct cgf_oci_config cfg;
	char err[CGF_OCI_ERR_LEN];

	assert_int_equal(cgf_oci_config_parse(text, strlen(text), &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'mounts[1].destination': missing");
	assert_false(cfg.own_netns);
	assert_null(cfg.netns_path);
	assert_null(cfg.resolv_source);
}

static void test_resolv(void **unused)
{
	static const struct {
		const char *text;
		size_t n;
		const char *want[4];
	} cases[] = {
		{ "nameserver 198.18.0.4\n", 1, { "198.18.0.4" } },
		{ "# podman\nsearch dns.podman\n\tnameserver\t2001:db8::53 # c\r\n"
		  "nameserver fe80::1%eth0\nnameserver 198.18.0.5;x", 3,
		  { "2001:db8::53", "fe80::1", "198.18.0.5" } },
		/* not addresses, not nameserver lines: skipped */
		{ "nameserver\nnameserver \nnameserver example.com\nnameservers 198.18.0.1\n"
		  "nameserver198.18.0.2\n#nameserver 198.18.0.3\nnameserver 198.18.0.4", 1,
		  { "198.18.0.4" } },
		/* at most 4 */
		{ "nameserver 198.18.0.1\nnameserver 198.18.0.2\nnameserver 198.18.0.3\n"
		  "nameserver 198.18.0.4\nnameserver 198.18.0.5\n", 4,
		  { "198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4" } },
		{ "nameserver 0000:0000:0000:0000:0000:ffff:198.18.000.001\n", 0, { NULL } },
		{ "nameserver 0000:0000:0000:0000:0000:0000:0000:0001\n", 1,
		  { "0000:0000:0000:0000:0000:0000:0000:0001" } },
		{ "", 0, { NULL } },
	};
	char out[4][CGF_OCI_ADDR_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t n = cgf_oci_resolv_nameservers(cases[i].text, strlen(cases[i].text), out, 4);

		if (n != cases[i].n)
			fail_msg("case %zu: %zu nameservers, want %zu", i, n, cases[i].n);
		for (size_t k = 0; k < n; k++)
			assert_string_equal(out[k], cases[i].want[k]);
	}
	/* the length ends the text: a nameserver past it is not read */
	assert_int_equal(cgf_oci_resolv_nameservers("nameserver 198.18.0.1", 15, out, 4), 0);
	/* a NUL ends a value, not the text */
	assert_int_equal(cgf_oci_resolv_nameservers("nameserver 198.18.0.1\0x\nnameserver 198.18.0.2",
						     45, out, 4), 2);
	assert_string_equal(out[0], "198.18.0.1");
	assert_string_equal(out[1], "198.18.0.2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_podman_states),
		cmocka_unit_test(test_podman_config_netns_path),
		cmocka_unit_test(test_podman_config_netns_new),
		cmocka_unit_test(test_podman_config_host_privileged),
		cmocka_unit_test(test_state_not_opted_in),
		cmocka_unit_test(test_state_malformed),
		cmocka_unit_test(test_state_fields),
		cmocka_unit_test(test_config_caps),
		cmocka_unit_test(test_config_namespaces_mounts),
		cmocka_unit_test(test_config_malformed),
		cmocka_unit_test(test_config_error_after_fields),
		cmocka_unit_test(test_resolv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

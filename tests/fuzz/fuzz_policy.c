// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: policy files, single rules and resolver addresses, then
 * the union of whatever parsed.  Checks, beyond "no crash, no sanitizer
 * report", that a parse is all or nothing and that every entry the union
 * builds is well formed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"
#include "resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entries(const struct cgf_allowlist *list)
{
	for (size_t i = 0; i < list->n_v4; i++)
		if (list->v4[i].key.prefixlen > 32 || list->v4[i].value.n_ranges == 0 ||
		    list->v4[i].value.n_ranges > CGF_MAX_RANGES)
			abort();
	for (size_t i = 0; i < list->n_v6; i++)
		if (list->v6[i].key.prefixlen > 128 || list->v6[i].value.n_ranges == 0 ||
		    list->v6[i].value.n_ranges > CGF_MAX_RANGES)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cgf_policy policy = { 0 };
	struct cgf_error err;
	struct cgf_rule rule;
	struct cgf_server srv;
	char text[512], msg[256];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	int ret;

	/* one rule, and one resolver address, from the first bytes */
	memcpy(text, data, n);
	text[n] = '\0';
	memset(&err, 0, sizeof(err));
	cgf_rule_parse(text, &rule, &err);
	cgf_server_parse(text, &srv, msg, sizeof(msg));

	/* a whole file: all or nothing */
	ret = cgf_policy_parse_buffer(&policy, "fuzz", (const char *)data, size, &err);
	if (ret && policy.n_rules != 0)
		abort();
	if (!ret) {
		struct cgf_grant *grants = calloc(policy.n_rules + 1, sizeof(*grants));
		struct cgf_allowlist list = { 0 };
		size_t k = 0;

		if (!grants)
			abort();
		for (size_t i = 0; i < policy.n_rules; i++)
			if (policy.rules[i].kind == CGF_TARGET_PREFIX)
				cgf_rule_to_grant(&policy.rules[i], &grants[k++]);
		if (cgf_allowlist_build(grants, k, &list, &err) == 0)
			check_entries(&list);
		cgf_allowlist_free(&list);
		free(grants);
	}
	cgf_policy_free(&policy);
	return 0;
}

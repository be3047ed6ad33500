// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of the cgfenced.conf line split (cgf_conf_split): a table of lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void test_split(void **unused)
{
	static const struct {
		const char *line;
		int ret;
		const char *key, *val;
	} cases[] = {
		{ "socket = /run/x.sock\n", 1, "socket", "/run/x.sock" },
		{ "\t min-ttl=10 \r\n", 1, "min-ttl", "10" },
		{ "resolver = 198.18.0.4:53 # the test's\n", 1, "resolver", "198.18.0.4:53" },
		{ "log-format =\n", 1, "log-format", "" },
		{ "a = b = c\n", 1, "a", "b = c" },
		{ "key with blanks = v", 1, "key with blanks", "v" },
		{ "\n", 0, NULL, NULL },
		{ "", 0, NULL, NULL },
		{ "   \t\r\n", 0, NULL, NULL },
		{ "# socket = /x\n", 0, NULL, NULL },
		{ "  #\n", 0, NULL, NULL },
		{ "socket\n", -EINVAL, NULL, NULL },
		{ "= value\n", -EINVAL, NULL, NULL },
		{ " \t= value\n", -EINVAL, NULL, NULL },
		{ "socket # = /x\n", -EINVAL, NULL, NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char line[256], *key = NULL, *val = NULL;
		int ret;

		snprintf(line, sizeof(line), "%s", cases[i].line);
		ret = cgf_conf_split(line, &key, &val);
		if (ret != cases[i].ret)
			fail_msg("'%s': %d, want %d", cases[i].line, ret, cases[i].ret);
		if (ret != 1)
			continue;
		assert_string_equal(key, cases[i].key);
		assert_string_equal(val, cases[i].val);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: cgfenced.conf, line by line as the daemon reads it
 * (cgf_conf_split).  Checks that a split key and value lie inside the line,
 * hold no comment, and carry no blanks at their ends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void check_line(const char *text, size_t len)
{
	char *line = malloc(len + 1), *key = NULL, *val = NULL;
	int ret;

	if (!line)
		abort();
	memcpy(line, text, len);
	line[len] = '\0';
	ret = cgf_conf_split(line, &key, &val);
	if (ret != 0 && ret != 1 && ret != -22)
		abort();
	if (ret == 1) {
		size_t kl = strlen(key), vl = strlen(val);

		if (key < line || key + kl > line + len || val < line || val + vl > line + len)
			abort();
		if (!kl || strchr(key, '=') || strchr(key, '#') || strchr(val, '#') ||
		    blank(key[0]) || blank(key[kl - 1]) || (vl && (blank(val[0]) ||
								  blank(val[vl - 1]))))
			abort();
	}
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	/* lines as getline returns them: each with its '\n' */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		check_line(p, len);
		p += len;
	}
	return 0;
}

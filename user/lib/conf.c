// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cgfenced.conf lines (see conf.h). */
#include <errno.h>
#include <string.h>

#include "conf.h"

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int cgf_conf_split(char *line, char **key, char **val)
{
	char *k = line, *v, *eq, *end;

	line[strcspn(line, "#")] = '\0';
	while (blank(*k))
		k++;
	end = k + strlen(k);
	while (end > k && blank(end[-1]))
		*--end = '\0';
	if (!*k)
		return 0;
	eq = strchr(k, '=');
	if (!eq || eq == k)
		return -EINVAL;
	v = eq + 1;
	while (eq > k && blank(eq[-1]))
		eq--;
	*eq = '\0';
	if (!*k)
		return -EINVAL;
	while (blank(*v))
		v++;
	*key = k;
	*val = v;
	return 1;
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * How the library reports a failure: the function writes why into the
 * caller's buffer (lowercase, naming the input and the reason) and returns
 * an error value, in one statement: return cgf_fail(err, len, -EINVAL, ...).
 */
#ifndef CGF_ERRMSG_H
#define CGF_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int cgf_fail(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline int cgf_fail(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return ret;
}

#endif /* CGF_ERRMSG_H */

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The daemon's log; see log.h. */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <jansson.h>

#include "log.h"

static bool log_stderr = true, log_json, log_debug_on;

void cgf_log_open(const char *ident, bool to_stderr, bool json, bool debug)
{
	log_stderr = to_stderr;
	log_json = json;
	log_debug_on = debug;
	if (!to_stderr)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void cgf_log(enum cgf_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048];
	va_list ap;

	if (level == CGF_LOG_DEBUG && !log_debug_on)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_json) {
		char when[64];
		struct timespec ts;
		struct tm tm;
		json_t *o;
		char *line;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000);
		o = json_pack("{s:s,s:s,s:s}", "time", when, "level", names[level], "msg", msg);
		line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line) {
			if (log_stderr)
				fprintf(stderr, "%s\n", line);
			else
				syslog(prio[level], "%s", line);
		}
		free(line);
		json_decref(o);
		return;
	}
	if (log_stderr)
		fprintf(stderr, "cgfenced: %s%s%s\n", level <= CGF_LOG_WARN ? names[level] : "",
			level <= CGF_LOG_WARN ? ": " : "", msg);
	else
		syslog(prio[level], "%s", msg);
}

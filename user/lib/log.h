/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The daemon's log: to stderr in the foreground, to syslog (the journal under
 * systemd) otherwise; as text lines or one JSON object a line.
 */
#ifndef CGF_LOG_H
#define CGF_LOG_H

#include <stdbool.h>

enum cgf_log_level { CGF_LOG_ERR, CGF_LOG_WARN, CGF_LOG_INFO, CGF_LOG_DEBUG };

void cgf_log_open(const char *ident, bool to_stderr, bool json, bool debug);

void cgf_log(enum cgf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) cgf_log(CGF_LOG_ERR, __VA_ARGS__)
#define log_warn(...) cgf_log(CGF_LOG_WARN, __VA_ARGS__)
#define log_info(...) cgf_log(CGF_LOG_INFO, __VA_ARGS__)
#define log_debug(...) cgf_log(CGF_LOG_DEBUG, __VA_ARGS__)

#endif /* CGF_LOG_H */

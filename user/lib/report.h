/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fences and deny events as JSON, the one representation that `cgfence status
 * --json`, `cgfence log --json` and the daemon's socket share; and their text
 * form, printed from that JSON so that every front end says the same.
 */
#ifndef CGF_REPORT_H
#define CGF_REPORT_H

#include <stdio.h>
#include <jansson.h>
#include "fence.h"

/*
 * A fence: cgroup, id, policy, label, mode, allowlist (at most max_entries,
 * 0 = all, with "allowlist_truncated" when cut), counters.  NULL on error.
 */
json_t *cgf_fence_json(const struct cgf_fence *fence, const char *cgroup_path,
		       size_t max_entries);

/* A deny event, with what is known of its fence (any may be NULL). */
json_t *cgf_event_json(const struct cgf_event *e, const char *cgroup_path, const char *policy,
		       const char *label);

/* Prints a fence object (as cgf_fence_json makes it) as text. */
void cgf_fence_print(FILE *out, const json_t *fence);

/* Prints an event object as one line. */
void cgf_event_print(FILE *out, const json_t *event);

#endif /* CGF_REPORT_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cgfenced.conf: "key = value" lines whose keys are the daemon's long option
 * names.  The split of a line is here (pure, fuzzed); what a key means is
 * the daemon's.
 */
#ifndef CGF_CONF_H
#define CGF_CONF_H

/*
 * Splits one line in place: '#' starts a comment, blanks (spaces, tabs) and
 * the line end (\n, \r) around key and value are dropped.  Returns 1 with
 * *key (not empty, no '=') and *val (may be empty) pointing into line, 0 for
 * a line with nothing on it, -EINVAL for anything else ("expected 'key =
 * value'").
 */
int cgf_conf_split(char *line, char **key, char **val);

#endif /* CGF_CONF_H */

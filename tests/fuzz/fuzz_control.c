// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the daemon's request lines (cgf_request_parse).  Checks,
 * beyond "no crash, no sanitizer report", that every request it accepts
 * holds what control.h promises, and that every refusal says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct cgf_request *r)
{
	if (!memchr(r->op_name, '\0', sizeof(r->op_name)) ||
	    !memchr(r->cgroup, '\0', sizeof(r->cgroup)) ||
	    !memchr(r->label, '\0', sizeof(r->label)))
		abort();
	switch (r->op) {
	case CGF_REQ_NONE:
		abort(); /* accepted, but no request */
	case CGF_REQ_ATTACH:
		if (!cgf_policy_name_valid_n(r->policy, strlen(r->policy)) ||
		    !r->cgroup[0] == !r->pid || r->pid < 0 || r->n_dns > CGF_FENCE_DNS_MAX)
			abort();
		for (size_t i = 0; i < r->n_dns; i++)
			if (r->dns[i].family != AF_INET && r->dns[i].family != AF_INET6)
				abort();
		break;
	case CGF_REQ_DETACH:
		if (!r->cgroup[0])
			abort();
		break;
	case CGF_REQ_PROXY:
		if (!r->cgroup_id || !memchr(r->bpffs, '\0', sizeof(r->bpffs)) ||
		    (r->n_rules && !r->rules))
			abort();
		for (size_t i = 0; i < r->n_rules; i++)
			if (!r->rules[i].source || !r->rules[i].text)
				abort();
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a line as the daemon hands it over: NUL-terminated, exactly sized for ASan */
	char *line = malloc(size + 1);
	struct cgf_request *r = malloc(sizeof(*r));
	char err[512];

	if (!line || !r)
		abort();
	memcpy(line, data, size);
	line[size] = '\0';
	err[0] = '\0';
	if (cgf_request_parse(line, r, err, sizeof(err))) {
		/* and a refused request owns nothing */
		if (!err[0] || !memchr(r->op_name, '\0', sizeof(r->op_name)) || r->rules ||
		    r->n_rules)
			abort();
	} else {
		check(r);
		cgf_request_free(r);
	}
	free(r);
	free(line);
	return 0;
}

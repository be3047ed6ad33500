// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The daemon's requests, parsed and checked field by field (see control.h).
 * Pure: no system access, so that the fuzzer links this file alone.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "errmsg.h"
#include "control.h"
#include "resolve.h"

static const struct {
	const char *name;
	enum cgf_request_op op;
} ops[] = {
	{ "attach", CGF_REQ_ATTACH }, { "detach", CGF_REQ_DETACH },
	{ "status", CGF_REQ_STATUS }, { "reload", CGF_REQ_RELOAD },
	{ "events", CGF_REQ_EVENTS }, { "release", CGF_REQ_RELEASE },
	{ "proxy", CGF_REQ_PROXY },
};

bool cgf_policy_name_valid_n(const char *name, size_t len)
{
	if (len == 0 || len >= 64 || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' && name[i] != '_' &&
		    name[i] != '-')
			return false;
	return true;
}

/* every refusal of a request is -EINVAL */
#define fail(err, len, ...) cgf_fail(err, len, -EINVAL, __VA_ARGS__)

/* A field: NULL when absent or null (the same thing to every request). */
static json_t *field(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);

	return json_is_null(v) ? NULL : v;
}

static int get_bool(json_t *req, const char *op, const char *key, bool *out, char *err,
		    size_t errlen)
{
	json_t *v = field(req, key);

	*out = false;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail(err, errlen, "%s: '%s' must be true or false", op, key);
	*out = json_is_true(v);
	return 0;
}

static int get_cgroup(json_t *req, const char *op, struct cgf_request *r, char *err,
		      size_t errlen)
{
	json_t *v = field(req, "cgroup");

	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, "%s: 'cgroup' must be a path (a string)", op);
	if (json_string_length(v) >= sizeof(r->cgroup))
		return fail(err, errlen, "%s: 'cgroup' longer than %zu bytes", op,
			    sizeof(r->cgroup) - 1);
	if (json_string_length(v) == 0)
		return fail(err, errlen, "%s: 'cgroup' is empty", op);
	memcpy(r->cgroup, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* An optional string field into buf; refuses other types, NULs, what does not fit. */
static int get_string(json_t *req, const char *key, char *buf, size_t size, char *err,
		      size_t errlen)
{
	json_t *v = field(req, key);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, "attach: '%s' must be a string", key);
	if (json_string_length(v) == 0 || json_string_length(v) >= size ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(err, errlen, "attach: '%s' must be 1 to %zu bytes, without NUL", key,
			    size - 1);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/*
 * The boundary fields of an attach: the interface (a name, no '/'), its
 * namespace (an absolute path), why there is none, and the capabilities that
 * reach around the cgroup hooks which the workload holds.
 */
static int parse_boundary(json_t *req, struct cgf_request *r, char *err, size_t errlen)
{
	json_t *caps = field(req, "net_caps"), *c;
	size_t k;

	if (get_string(req, "boundary", r->boundary, sizeof(r->boundary), err, errlen) ||
	    get_string(req, "boundary_netns", r->boundary_netns, sizeof(r->boundary_netns), err,
		       errlen))
		return -EINVAL;
	if (strchr(r->boundary, '/') || !strcmp(r->boundary, ".") || !strcmp(r->boundary, ".."))
		return fail(err, errlen, "attach: 'boundary' must be an interface name");
	if (r->boundary_netns[0] && r->boundary_netns[0] != '/')
		return fail(err, errlen, "attach: 'boundary_netns' must be an absolute path");
	if (r->boundary_netns[0] && !r->boundary[0])
		return fail(err, errlen, "attach: 'boundary_netns' without 'boundary'");
	/* only quoted back: cut to what fits */
	if (field(req, "boundary_missing")) {
		if (!json_is_string(field(req, "boundary_missing")))
			return fail(err, errlen, "attach: 'boundary_missing' must be a string");
		snprintf(r->boundary_missing, sizeof(r->boundary_missing), "%s",
			 json_string_value(field(req, "boundary_missing")));
	}
	if (!caps)
		return 0;
	if (!json_is_array(caps))
		return fail(err, errlen, "attach: 'net_caps' must be a list of capability names");
	r->has_net_caps = true;
	json_array_foreach(caps, k, c) {
		const char *name = json_string_value(c);

		if (name && !strcmp(name, "CAP_NET_RAW"))
			r->net_caps |= CGF_RISK_NET_RAW;
		else if (name && !strcmp(name, "CAP_NET_ADMIN"))
			r->net_caps |= CGF_RISK_NET_ADMIN;
		else
			return fail(err, errlen,
				    "attach: 'net_caps' entry %zu: not CAP_NET_RAW or CAP_NET_ADMIN",
				    k);
	}
	return 0;
}

static int parse_attach(json_t *req, struct cgf_request *r, char *err, size_t errlen)
{
	json_t *policy = field(req, "policy"), *pid = field(req, "pid");
	json_t *netns_pid = field(req, "netns_pid");
	json_t *label = field(req, "label"), *dns = field(req, "dns"), *d;
	size_t k;

	if (!json_is_string(policy) || json_string_length(policy) >= sizeof(r->policy) ||
	    !cgf_policy_name_valid_n(json_string_value(policy), json_string_length(policy)))
		return fail(err, errlen, "attach: 'policy' must be a policy name (letters, digits, "
			    "'.', '_', '-')");
	memcpy(r->policy, json_string_value(policy), json_string_length(policy) + 1);
	if (get_cgroup(req, "attach", r, err, errlen))
		return -EINVAL;
	if (!r->cgroup[0] == !pid)
		return fail(err, errlen, "attach: give exactly one of 'cgroup' and 'pid'");
	if (label) {
		if (!json_is_string(label))
			return fail(err, errlen, "attach: 'label' must be a string");
		if (json_string_length(label) >= CGF_LABEL_MAX)
			return fail(err, errlen, "attach: 'label' longer than %d bytes",
				    CGF_LABEL_MAX - 1);
		/* a label with a NUL in it is cut there, as the log and status show it */
		snprintf(r->label, sizeof(r->label), "%s", json_string_value(label));
		r->has_label = true;
	}
	if (dns && (!json_is_array(dns) || json_array_size(dns) > CGF_FENCE_DNS_MAX))
		return fail(err, errlen, "attach: 'dns' must be a list of at most %d resolvers",
			    CGF_FENCE_DNS_MAX);
	json_array_foreach(dns, k, d) {
		struct cgf_server srv;
		char e[256];

		if (!json_is_string(d))
			return fail(err, errlen, "attach: 'dns' entry %zu: not a string", k);
		if (cgf_server_parse(json_string_value(d), &srv, e, sizeof(e)))
			return fail(err, errlen, "attach: 'dns' entry %zu: %s", k, e);
		r->dns[r->n_dns].family = (uint8_t)srv.family;
		r->dns[r->n_dns].port = srv.port;
		memcpy(r->dns[r->n_dns].addr, srv.addr, sizeof(r->dns[r->n_dns].addr));
		r->n_dns++;
	}
	if (pid) {
		if (!json_is_integer(pid) || json_integer_value(pid) <= 0 ||
		    json_integer_value(pid) > INT_MAX)
			return fail(err, errlen, "attach: 'pid' must be a positive integer");
		r->pid = (int)json_integer_value(pid);
	}
	if (netns_pid) {
		/* with pid, the proxy listens in that process's own namespace */
		if (!r->cgroup[0] || !json_is_integer(netns_pid) ||
		    json_integer_value(netns_pid) <= 0 || json_integer_value(netns_pid) > INT_MAX)
			return fail(err, errlen, "attach: 'netns_pid' must be a positive integer, "
				    "with 'cgroup'");
		r->netns_pid = (int)json_integer_value(netns_pid);
	}
	if (parse_boundary(req, r, err, errlen))
		return -EINVAL;
	return get_bool(req, "attach", "audit", &r->audit, err, errlen);
}

void cgf_request_free(struct cgf_request *r)
{
	for (size_t i = 0; i < r->n_rules; i++) {
		free(r->rules[i].source);
		free(r->rules[i].text);
	}
	free(r->rules);
	r->rules = NULL;
	r->n_rules = 0;
}

/* A string member of a rule entry, copied; refuses other types and NULs inside. */
static int rule_string(json_t *jr, size_t k, const char *key, char **out, char *err, size_t errlen)
{
	json_t *v = field(jr, key);

	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return fail(err, errlen, "proxy: rule %zu: '%s' must be a string without NUL", k,
			    key);
	*out = strdup(json_string_value(v));
	if (!*out)
		return fail(err, errlen, "proxy: out of memory");
	return 0;
}

/*
 * cgfence run --dns-proxy: {"op":"proxy","cgroup_id":N,"bpffs":DIR?,
 * "rules":[{"source":S,"text":T,"file":bool?}]}; the rules are parsed as
 * policy by the daemon.
 */
static int parse_proxy(json_t *req, struct cgf_request *r, char *err, size_t errlen)
{
	json_t *id = field(req, "cgroup_id"), *rules = field(req, "rules"), *jr;
	size_t k;

	if (!json_is_integer(id) || json_integer_value(id) <= 0 || !json_is_array(rules))
		return fail(err, errlen, "proxy: needs 'cgroup_id' (a positive integer) and "
			    "'rules' (a list)");
	r->cgroup_id = (uint64_t)json_integer_value(id);
	if (field(req, "bpffs")) {
		json_t *b = field(req, "bpffs");

		if (!json_is_string(b) || json_string_length(b) == 0 ||
		    json_string_length(b) >= sizeof(r->bpffs) ||
		    strlen(json_string_value(b)) != json_string_length(b))
			return fail(err, errlen, "proxy: 'bpffs' must be a path of 1 to %zu bytes",
				    sizeof(r->bpffs) - 1);
		memcpy(r->bpffs, json_string_value(b), json_string_length(b) + 1);
	}
	if (!json_array_size(rules))
		return 0;
	r->rules = calloc(json_array_size(rules), sizeof(*r->rules));
	if (!r->rules)
		return fail(err, errlen, "proxy: out of memory");
	json_array_foreach(rules, k, jr) {
		struct cgf_request_rule *rule = &r->rules[r->n_rules];

		if (!json_is_object(jr))
			return fail(err, errlen, "proxy: rule %zu: not an object", k);
		r->n_rules++;
		if (rule_string(jr, k, "source", &rule->source, err, errlen) ||
		    rule_string(jr, k, "text", &rule->text, err, errlen) ||
		    get_bool(jr, "proxy", "file", &rule->file, err, errlen))
			return -EINVAL;
	}
	return 0;
}

int cgf_request_parse(const char *line, struct cgf_request *r, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr), *jop;
	const char *op;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(req)) {
		ret = fail(err, errlen, "malformed request: %s",
			   req ? "not a JSON object" : jerr.text);
		json_decref(req);
		return ret;
	}
	jop = json_object_get(req, "op");
	op = json_string_value(jop);
	snprintf(r->op_name, sizeof(r->op_name), "%s", op ? op : "?");
	if (!op) {
		ret = fail(err, errlen, "request without 'op'");
		goto out;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		/* the length too: an op with a NUL in it is no op */
		if (json_string_length(jop) == strlen(ops[i].name) && !strcmp(op, ops[i].name))
			r->op = ops[i].op;
	switch (r->op) {
	case CGF_REQ_NONE:
		ret = fail(err, errlen, "unknown request '%.64s' (attach, detach, status, reload, "
			   "events, release, proxy)", op);
		break;
	case CGF_REQ_ATTACH:
		ret = parse_attach(req, r, err, errlen);
		break;
	case CGF_REQ_DETACH:
		ret = get_cgroup(req, "detach", r, err, errlen);
		if (!ret && !r->cgroup[0])
			ret = fail(err, errlen, "detach: 'cgroup' is required");
		break;
	case CGF_REQ_EVENTS:
		ret = get_bool(req, "events", "follow", &r->follow, err, errlen);
		break;
	case CGF_REQ_PROXY:
		ret = parse_proxy(req, r, err, errlen);
		if (ret)
			cgf_request_free(r); /* nothing of a refused request is used */
		break;
	default:
		break;
	}
out:
	json_decref(req);
	return ret;
}

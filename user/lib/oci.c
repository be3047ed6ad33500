// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OCI hook's parsing: container state, config.json and resolv.conf, from
 * buffers (see oci.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <jansson.h>

#include "errmsg.h"
#include "oci.h"

_Static_assert(CAP_LAST_CAP < 64, "capability sets are 64-bit masks");

/* Annotations that may carry a container's name, first match wins. */
static const char *const name_keys[] = {
	"cgfence.name",                      /* given by the user: podman passes no name */
	"io.kubernetes.cri-o.ContainerName", /* CRI-O */
	"io.kubernetes.container.name",      /* CRI-O, Kubernetes' own name */
	NULL,
};

#define CAP(x) [CAP_##x] = "CAP_" #x
static const char *const cap_names[CAP_LAST_CAP + 1] = {
	CAP(CHOWN), CAP(DAC_OVERRIDE), CAP(DAC_READ_SEARCH), CAP(FOWNER), CAP(FSETID),
	CAP(KILL), CAP(SETGID), CAP(SETUID), CAP(SETPCAP), CAP(LINUX_IMMUTABLE),
	CAP(NET_BIND_SERVICE), CAP(NET_BROADCAST), CAP(NET_ADMIN), CAP(NET_RAW),
	CAP(IPC_LOCK), CAP(IPC_OWNER), CAP(SYS_MODULE), CAP(SYS_RAWIO), CAP(SYS_CHROOT),
	CAP(SYS_PTRACE), CAP(SYS_PACCT), CAP(SYS_ADMIN), CAP(SYS_BOOT), CAP(SYS_NICE),
	CAP(SYS_RESOURCE), CAP(SYS_TIME), CAP(SYS_TTY_CONFIG), CAP(MKNOD), CAP(LEASE),
	CAP(AUDIT_WRITE), CAP(AUDIT_CONTROL), CAP(SETFCAP), CAP(MAC_OVERRIDE), CAP(MAC_ADMIN),
	CAP(SYSLOG), CAP(WAKE_ALARM), CAP(BLOCK_SUSPEND), CAP(AUDIT_READ),
#ifdef CAP_PERFMON
	CAP(PERFMON),
#endif
#ifdef CAP_BPF
	CAP(BPF),
#endif
#ifdef CAP_CHECKPOINT_RESTORE
	CAP(CHECKPOINT_RESTORE),
#endif
};
#undef CAP

#define fail cgf_fail

/* Loads a JSON object; the message says what is wrong with the text. */
static json_t *load_object(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);

	if (json_is_object(root))
		return root;
	if (root)
		fail(err, errlen, 0, "not a JSON object");
	else
		fail(err, errlen, 0, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
		     jerr.column);
	json_decref(root);
	return NULL;
}

uint64_t cgf_oci_caps_all(void)
{
	uint64_t all = 0;

	for (int i = 0; i <= CAP_LAST_CAP; i++)
		if (cap_names[i])
			all |= 1ull << i;
	return all;
}

int cgf_oci_cap_from_name(const char *name)
{
	for (int i = 0; i <= CAP_LAST_CAP; i++)
		if (cap_names[i] && !strcasecmp(name, cap_names[i]))
			return i;
	return -1;
}

const char *cgf_oci_cap_name(int n)
{
	return n >= 0 && n <= CAP_LAST_CAP ? cap_names[n] : NULL;
}

/* ---- state --------------------------------------------------------------- */

void cgf_oci_state_free(struct cgf_oci_state *st)
{
	free(st->policy);
	free(st->id);
	free(st->bundle);
	free(st->name);
	memset(st, 0, sizeof(*st));
}

/* annotations[key] as a string: NULL when absent, -EINVAL when not a string. */
static int annotation(json_t *annotations, const char *key, const char **out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(annotations, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, -EINVAL, "'annotations.%s': not a string", key);
	*out = json_string_value(v);
	return 0;
}

int cgf_oci_state_parse(const char *buf, size_t len, struct cgf_oci_state *st, char *err,
			size_t errlen)
{
	const char *policy, *audit, *name = NULL, *id, *bundle;
	json_t *root, *annotations, *jid, *jbundle, *jpid;
	struct cgf_oci_state s = { 0 };
	int ret = -EINVAL;

	memset(st, 0, sizeof(*st));
	root = load_object(buf, len, err, errlen);
	if (!root)
		return -EINVAL;
	annotations = json_object_get(root, "annotations");
	if (annotations && !json_is_object(annotations)) {
		fail(err, errlen, -EINVAL, "'annotations': not an object");
		goto out;
	}
	if (annotation(annotations, "cgfence.policy", &policy, err, errlen) ||
	    annotation(annotations, "cgfence.audit", &audit, err, errlen))
		goto out;
	for (size_t i = 0; name_keys[i] && !name; i++) {
		if (annotation(annotations, name_keys[i], &name, err, errlen))
			goto out;
		if (name && !*name)
			name = NULL;
	}
	if (!policy || !*policy) {
		/* not opted in (the hooks file filters on this already) */
		ret = 0;
		goto out;
	}
	jid = json_object_get(root, "id");
	jbundle = json_object_get(root, "bundle");
	jpid = json_object_get(root, "pid");
	id = json_string_value(jid);
	bundle = json_string_value(jbundle);
	if (!id || !*id) {
		fail(err, errlen, -EINVAL, "'id': %s",
		     !jid ? "missing" : id ? "empty" : "not a string");
		goto out;
	}
	if (!bundle || bundle[0] != '/') {
		fail(err, errlen, -EINVAL, "'bundle': %s",
		     !jbundle ? "missing" : bundle ? "not an absolute path" : "not a string");
		goto out;
	}
	if (!json_is_integer(jpid) || json_integer_value(jpid) <= 0 ||
	    json_integer_value(jpid) > INT_MAX) {
		fail(err, errlen, -EINVAL, "'pid': %s",
		     !jpid ? "missing" : "not a positive integer (1 to 2147483647)");
		goto out;
	}
	s.audit = audit && !strcmp(audit, "true");
	s.pid = (int)json_integer_value(jpid);
	s.policy = strdup(policy);
	s.id = strdup(id);
	s.bundle = strdup(bundle);
	s.name = name ? strdup(name) : NULL;
	if (!s.policy || !s.id || !s.bundle || (name && !s.name)) {
		cgf_oci_state_free(&s);
		ret = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	*st = s;
	ret = 0;
out:
	json_decref(root);
	return ret;
}

/* ---- config.json --------------------------------------------------------- */

void cgf_oci_config_free(struct cgf_oci_config *cfg)
{
	free(cfg->netns_path);
	free(cfg->resolv_source);
	memset(cfg, 0, sizeof(*cfg));
}

static int cap_set(json_t *caps, const char *set, uint64_t *mask, char *err, size_t errlen)
{
	json_t *list = json_object_get(caps, set), *v;
	size_t i;

	*mask = 0;
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return fail(err, errlen, -EINVAL, "'process.capabilities.%s': not a list", set);
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(v);
		int n;

		if (!name)
			return fail(err, errlen, -EINVAL,
				    "'process.capabilities.%s[%zu]': not a string", set, i);
		n = cgf_oci_cap_from_name(name);
		if (n < 0)
			return fail(err, errlen, -EINVAL,
				    "'process.capabilities.%s[%zu]': unknown capability '%.64s'",
				    set, i, name);
		*mask |= 1ull << n;
	}
	return 0;
}

static int parse_caps(json_t *root, struct cgf_oci_config *c, char *err, size_t errlen)
{
	json_t *process = json_object_get(root, "process"), *caps;

	if (process && !json_is_object(process))
		return fail(err, errlen, -EINVAL, "'process': not an object");
	caps = json_object_get(process, "capabilities");
	if (!caps || json_is_null(caps)) {
		uint64_t all = cgf_oci_caps_all();

		/* the runtime drops nothing: whatever the runtime holds, the container gets */
		c->caps = (struct cgf_oci_caps){ all, all, all, all, all };
		c->caps_given = false;
		return 0;
	}
	if (!json_is_object(caps))
		return fail(err, errlen, -EINVAL, "'process.capabilities': not an object");
	c->caps_given = true;
	if (cap_set(caps, "bounding", &c->caps.bounding, err, errlen) ||
	    cap_set(caps, "effective", &c->caps.effective, err, errlen) ||
	    cap_set(caps, "permitted", &c->caps.permitted, err, errlen) ||
	    cap_set(caps, "ambient", &c->caps.ambient, err, errlen) ||
	    cap_set(caps, "inheritable", &c->caps.inheritable, err, errlen))
		return -EINVAL;
	return 0;
}

static int parse_namespaces(json_t *root, struct cgf_oci_config *c, char *err, size_t errlen)
{
	json_t *linux_ = json_object_get(root, "linux"), *nss, *ns;
	size_t i;

	if (linux_ && !json_is_object(linux_))
		return fail(err, errlen, -EINVAL, "'linux': not an object");
	nss = json_object_get(linux_, "namespaces");
	if (!nss || json_is_null(nss))
		return 0;
	if (!json_is_array(nss))
		return fail(err, errlen, -EINVAL, "'linux.namespaces': not a list");
	json_array_foreach(nss, i, ns) {
		const char *type = json_string_value(json_object_get(ns, "type"));
		json_t *jpath = json_object_get(ns, "path");

		if (!json_is_object(ns))
			return fail(err, errlen, -EINVAL, "'linux.namespaces[%zu]': not an object", i);
		if (!type)
			return fail(err, errlen, -EINVAL, "'linux.namespaces[%zu].type': %s", i,
				    json_object_get(ns, "type") ? "not a string" : "missing");
		if (jpath && !json_is_string(jpath))
			return fail(err, errlen, -EINVAL, "'linux.namespaces[%zu].path': not a string",
				    i);
		if (strcmp(type, "network"))
			continue;
		if (c->own_netns)
			return fail(err, errlen, -EINVAL,
				    "'linux.namespaces[%zu]': a second 'network' namespace", i);
		c->own_netns = true;
		/* an empty path is no path (runc: a new namespace) */
		if (jpath && *json_string_value(jpath)) {
			c->netns_path = strdup(json_string_value(jpath));
			if (!c->netns_path)
				return fail(err, errlen, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

static int parse_mounts(json_t *root, struct cgf_oci_config *c, char *err, size_t errlen)
{
	json_t *mounts = json_object_get(root, "mounts"), *m;
	const char *source = NULL;
	size_t i;

	if (!mounts || json_is_null(mounts))
		return 0;
	if (!json_is_array(mounts))
		return fail(err, errlen, -EINVAL, "'mounts': not a list");
	json_array_foreach(mounts, i, m) {
		const char *dest = json_string_value(json_object_get(m, "destination"));
		json_t *jsrc;

		if (!json_is_object(m))
			return fail(err, errlen, -EINVAL, "'mounts[%zu]': not an object", i);
		if (!dest)
			return fail(err, errlen, -EINVAL, "'mounts[%zu].destination': %s", i,
				    json_object_get(m, "destination") ? "not a string" : "missing");
		if (strcmp(dest, "/etc/resolv.conf"))
			continue;
		jsrc = json_object_get(m, "source");
		if (!json_is_string(jsrc) || !*json_string_value(jsrc))
			return fail(err, errlen, -EINVAL, "'mounts[%zu].source': %s", i,
				    !jsrc ? "missing" : json_is_string(jsrc) ? "empty" :
				    "not a string");
		source = json_string_value(jsrc);
	}
	if (source) {
		c->resolv_source = strdup(source);
		if (!c->resolv_source)
			return fail(err, errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

int cgf_oci_config_parse(const char *buf, size_t len, struct cgf_oci_config *cfg, char *err,
			 size_t errlen)
{
	struct cgf_oci_config c = { 0 };
	json_t *root;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	root = load_object(buf, len, err, errlen);
	if (!root)
		return -EINVAL;
	ret = parse_caps(root, &c, err, errlen);
	if (!ret)
		ret = parse_namespaces(root, &c, err, errlen);
	if (!ret)
		ret = parse_mounts(root, &c, err, errlen);
	json_decref(root);
	if (ret) {
		cgf_oci_config_free(&c);
		return ret;
	}
	*cfg = c;
	return 0;
}

/* ---- resolv.conf --------------------------------------------------------- */

size_t cgf_oci_resolv_nameservers(const char *buf, size_t len, char (*out)[CGF_OCI_ADDR_LEN],
				  size_t max)
{
	size_t n = 0, pos = 0;

	while (pos < len && n < max) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos, i = 0, vlen = 0;
		unsigned char addr[16];
		char val[CGF_OCI_ADDR_LEN];

		pos += llen + 1;
		while (i < llen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (llen - i < 11 || memcmp(line + i, "nameserver", 10) ||
		    (line[i + 10] != ' ' && line[i + 10] != '\t'))
			continue;
		i += 10;
		while (i < llen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		/* the value ends at a blank, a comment or a link-local zone ("fe80::1%eth0") */
		while (i + vlen < llen && !strchr(" \t\r#;%", line[i + vlen]) && line[i + vlen])
			vlen++;
		if (vlen == 0 || vlen >= sizeof(val))
			continue;
		memcpy(val, line + i, vlen);
		val[vlen] = '\0';
		if (inet_pton(AF_INET, val, addr) != 1 && inet_pton(AF_INET6, val, addr) != 1)
			continue; /* not an address: nothing to allow */
		memcpy(out[n++], val, vlen + 1);
	}
	return n;
}

int cgf_oci_bundle_path(const char *bundle, const char *source, char *path, size_t len)
{
	int n;

	if (source[0] == '/')
		n = snprintf(path, len, "%s", source);
	else
		n = snprintf(path, len, "%s/%s", bundle, source);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the OCI hook reads, parsed by pure functions over a buffer (no file or
 * process access, so that they can be unit tested and fuzzed): the container
 * state a runtime passes on a hook's stdin, the bundle's config.json, and the
 * container's resolv.conf.
 *
 * Errors fill err with one line that names the field and the reason, e.g.
 * "'process.capabilities.bounding[3]': unknown capability 'CAP_FOO'".  Every
 * function is all or nothing: on error the output holds nothing to free.
 */
#ifndef CGF_OCI_H
#define CGF_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGF_OCI_STATE_MAX (1u << 20)  /* bytes of state a hook reads from stdin */
#define CGF_OCI_CONFIG_MAX (8u << 20) /* bytes of a bundle's config.json */
#define CGF_OCI_RESOLV_MAX (64u << 10) /* bytes of a container's resolv.conf */
#define CGF_OCI_ERR_LEN 512

/* The container state (OCI runtime spec, "State"), as far as the hook needs it. */
struct cgf_oci_state {
	char *policy;   /* annotation cgfence.policy; NULL: the container is not opted in */
	bool audit;     /* annotation cgfence.audit is "true" */
	char *id;       /* container id, not empty */
	char *bundle;   /* absolute path of the bundle */
	int pid;        /* the container's init, > 0 */
	char *name;     /* cgfence.name, else CRI-O's container name; NULL when none */
};

/*
 * Parses a state (len bytes, need not be NUL-terminated).  A JSON object is
 * required; "annotations", when present, must be an object, and the ones read
 * (cgfence.policy, cgfence.audit, the name keys) strings.  When
 * cgfence.policy is absent or empty, returns 0 with policy NULL and nothing
 * else checked (the container is none of the hook's business).  Otherwise
 * "id" (a non-empty string), "bundle" (an absolute path) and "pid" (an
 * integer 1..INT_MAX) are required.  Returns 0 or -EINVAL/-ENOMEM with err.
 */
int cgf_oci_state_parse(const char *buf, size_t len, struct cgf_oci_state *st, char *err,
			size_t errlen);
void cgf_oci_state_free(struct cgf_oci_state *st);

/* One capability set as a bitmask: bit n is capability n of <linux/capability.h>. */
struct cgf_oci_caps {
	uint64_t bounding;
	uint64_t effective;
	uint64_t permitted;
	uint64_t ambient;
	uint64_t inheritable;
};

/* The bundle's config.json (OCI runtime spec, "Configuration"), what the hook needs. */
struct cgf_oci_config {
	/*
	 * process.capabilities.  When "process" or its "capabilities" is absent
	 * the runtime drops nothing, so every set is every capability this build
	 * knows (cgf_oci_caps_all()) and caps_given is false; a set absent from a
	 * given "capabilities" is empty (runc and crun then clear it).  A name this
	 * build does not know is an error (fail closed: the hook cannot tell what
	 * it would grant).  Names are matched without regard to case, "CAP_" prefix
	 * required.
	 */
	struct cgf_oci_caps caps;
	bool caps_given;
	/*
	 * linux.namespaces has an entry of type "network": the container does not
	 * share the runtime's network namespace.  netns_path is that entry's
	 * "path" (a namespace it joins, e.g. podman --network ns:PATH), NULL when
	 * the runtime makes a new one.  A path may name any namespace, the host's
	 * included: whoever needs "not the host's" compares it (stat st_dev and
	 * st_ino against /proc/1/ns/net).  No entry (podman --network host): the
	 * container shares the runtime's, own_netns is false.
	 */
	bool own_netns;
	char *netns_path;
	/*
	 * "source" of the (last) mount whose destination is /etc/resolv.conf, as
	 * written: relative sources are relative to the bundle.  NULL when none.
	 */
	char *resolv_source;
};

/*
 * Parses a config.json (len bytes, need not be NUL-terminated).  Checks the
 * types of what it reads: "mounts" a list of objects with a string
 * "destination", "linux.namespaces" a list of objects with a string "type"
 * (at most one "network"), capability sets lists of strings.  Returns 0 or
 * -EINVAL/-ENOMEM with err.
 */
int cgf_oci_config_parse(const char *buf, size_t len, struct cgf_oci_config *cfg, char *err,
			 size_t errlen);
void cgf_oci_config_free(struct cgf_oci_config *cfg);

/* Every capability this build knows (0..CAP_LAST_CAP of <linux/capability.h>). */
uint64_t cgf_oci_caps_all(void);

/* A capability's number from its name ("CAP_NET_ADMIN", any case); -1 when unknown. */
int cgf_oci_cap_from_name(const char *name);

/* The name of capability n ("CAP_NET_ADMIN"), NULL when unknown. */
const char *cgf_oci_cap_name(int n);

/*
 * The resolvers of a resolv.conf (len bytes): the addresses of its nameserver
 * lines in order, at most max, each written to out[i] as text (IPv4 or IPv6,
 * a link-local zone "%eth0" cut off).  Lines that are not nameserver lines or
 * whose value is not an address are skipped (they allow nothing).  Returns
 * the number written.
 */
#define CGF_OCI_ADDR_LEN 46 /* INET6_ADDRSTRLEN */
size_t cgf_oci_resolv_nameservers(const char *buf, size_t len, char (*out)[CGF_OCI_ADDR_LEN],
				  size_t max);

/*
 * path of a file named by a bundle's config.json: source itself when
 * absolute, else bundle/source (OCI: relative to the bundle).  Returns 0, or
 * -ENAMETOOLONG.
 */
int cgf_oci_bundle_path(const char *bundle, const char *source, char *path, size_t len);

#endif /* CGF_OCI_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the daemon and its clients share: default paths, the checks on names
 * and targets a request may carry, and the client side of the control socket
 * (one JSON object a line, each way).
 */
#ifndef CGF_CONTROL_H
#define CGF_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <limits.h>
#include <linux/types.h>
#include <jansson.h>
#include "cgfence.h"

#define CGF_CONFIG_DEFAULT "/etc/cgfence/cgfenced.conf"
#define CGF_POLICY_DIR_DEFAULT "/etc/cgfence/policy.d"
#define CGF_SOCKET_DEFAULT "/run/cgfence/cgfenced.sock"

/* 1-63 of [A-Za-z0-9._-], not starting with '.'; no '/' ever. */
bool cgf_policy_name_valid_n(const char *name, size_t len);

/*
 * A request to the daemon, one JSON object a line, checked field by field
 * (request.c: no system access, so that it can be fuzzed).  What needs the
 * daemon's state (is there such a policy, may this peer ask, does the
 * process or cgroup exist) is the daemon's to check.
 */
enum cgf_request_op {
	CGF_REQ_NONE,    /* no request: malformed, no "op", or an unknown one */
	CGF_REQ_ATTACH,  /* policy, exactly one of cgroup and pid; audit, label, dns;
			  * netns_pid (with cgroup); boundary, boundary_netns,
			  * boundary_missing, net_caps */
	CGF_REQ_DETACH,  /* cgroup */
	CGF_REQ_STATUS,
	CGF_REQ_RELOAD,
	CGF_REQ_EVENTS,  /* follow */
	CGF_REQ_RELEASE,
	CGF_REQ_PROXY,   /* cgroup_id, rules; bpffs (cgfence run --dns-proxy) */
};

/* One entry of a proxy request's "rules": a rule, or a policy file's whole text. */
struct cgf_request_rule {
	char *source; /* where it came from: "--allow", or the file's name */
	char *text;   /* NUL-terminated, no NUL inside */
	bool file;    /* text is a policy file, else one rule */
};

struct cgf_request {
	enum cgf_request_op op;
	/*
	 * "op" as given (cut to 64 bytes), for the log: "?" when the request has
	 * none or it is not a string, "" when the line is not a JSON object.
	 */
	char op_name[65];
	char policy[CGF_POLICY_NAME_MAX];   /* attach: a valid policy name */
	char cgroup[PATH_MAX];              /* attach, detach: as given; "" when absent */
	int pid;                            /* attach: 1..INT_MAX; 0 when absent */
	/*
	 * attach, with cgroup: the process in whose network namespace a DNS
	 * proxy-mode policy's proxy listens (1..INT_MAX; 0 when absent: the
	 * cgroup's first process)
	 */
	int netns_pid;
	bool audit;                         /* attach */
	bool has_label;
	char label[CGF_LABEL_MAX];          /* attach */
	struct cgf_endpoint dns[CGF_FENCE_DNS_MAX]; /* attach: resolvers besides the policy */
	size_t n_dns;
	/*
	 * attach, boundary: the host end of the workload's veth ("" = none), its
	 * namespace's path ("" = the daemon's), why there is none (from the hook,
	 * quoted when refusing), the CGF_RISK_* capabilities the workload holds.
	 */
	char boundary[CGF_IFNAME_MAX];
	char boundary_netns[PATH_MAX];
	char boundary_missing[256];
	bool has_net_caps;                  /* net_caps was given: the holdings are known */
	uint32_t net_caps;
	bool follow;                        /* events */
	uint64_t cgroup_id;                 /* proxy: > 0 */
	char bpffs[PATH_MAX];               /* proxy: the fence's pin root, "" = the daemon's */
	struct cgf_request_rule *rules;     /* proxy: owned, cgf_request_free() */
	size_t n_rules;
};

/*
 * Parses and checks one request line (NUL-terminated, without the newline).
 * Returns 0, or -EINVAL with err the whole message the client gets, e.g.
 * "attach: 'pid' must be a positive integer".  On an error in a field of a
 * known op, req->op is still set (the daemon checks who may ask first) and
 * the fields are not to be used.  JSON null is the same as an absent field;
 * unknown fields are ignored.
 */
int cgf_request_parse(const char *line, struct cgf_request *req, char *err, size_t errlen);

/* Frees what a parsed request owns (a proxy request's rules); any parsed request may be given. */
void cgf_request_free(struct cgf_request *req);

/*
 * A cgroup named in a request: refuses '..' components and anything outside
 * the cgroup2 mount or its root; fills the absolute path and id.
 */
int cgf_control_cgroup_path(const char *given, char *path, size_t len, uint64_t *id, char *err);

/*
 * The cgroup to fence for a process: checks that the process exists and, for
 * a peer that is not root, that peer_uid owns it (real uid).  When the
 * process's cgroup is the root cgroup or holds other processes (or, for a
 * peer that is not root, has cgroups below it), names a
 * dedicated cgroup <cgroup2>/cgfence/pid-PID (created, empty) and sets *made:
 * the caller fences it, then moves the process in with cgf_control_move_pid.
 */
int cgf_control_pid_cgroup(pid_t pid, uid_t peer_uid, char *path, size_t len, uint64_t *id,
			   bool *made, char *err);

/* Moves a process into a cgroup. */
int cgf_control_move_pid(pid_t pid, const char *cgroup_path, char *err);

/* The absolute cgroup2 path of a process ("" when unknown). */
void cgf_control_pid_cgroup_path(pid_t pid, char *path, size_t len);

/* The socket a client uses: given, else $CGFENCE_SOCKET, else the default. */
const char *cgf_control_socket(const char *given);

/*
 * Sends one request and reads one reply line (bounded by timeout_ms).
 * Returns 0 with *reply set (check its "ok"), or a negative errno with err:
 * -ENOENT/-ECONNREFUSED when no daemon listens.  If fd_out is not NULL the
 * connection stays open there for more lines (events).
 */
int cgf_control_call(const char *socket_path, json_t *request, int timeout_ms, json_t **reply,
		     int *fd_out, char *err, size_t errlen);

/* Reads one line from fd (blocking, up to timeout_ms, -1 = forever). */
int cgf_control_read_line(int fd, int timeout_ms, json_t **line, char *err, size_t errlen);

#endif /* CGF_CONTROL_H */

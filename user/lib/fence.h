/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fence: the cgfence programs attached to one cgroup v2 through bpf links,
 * with links and maps pinned under <pin root>/<cgroup id>/ so that enforcement
 * outlives the process that attached it.  Every function returns 0 or a
 * negative errno and, on error, leaves a message in err (lowercase, names the
 * object and the reason).
 */
#ifndef CGF_FENCE_H
#define CGF_FENCE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "cgfence.h"
#include "policy.h"

#define CGF_ERR_LEN 512

/* Mounts of one filesystem type, from /proc/self/mountinfo. */
struct cgf_mount {
	char path[PATH_MAX]; /* the mount point */
	char opts[256];      /* its super options ("rw,nsdelegate") */
};

/* Lists up to max mounts of fstype in mount order; returns how many, or -errno. */
int cgf_list_mounts(const char *fstype, struct cgf_mount *out, int max);

/* The first mount point of fstype; -ENOENT when there is none. */
int cgf_find_mount(const char *fstype, char *path, size_t len);

/* The cgroup v2 mount point, or -ENOENT with a message. */
int cgf_cgroup2_root(char *path, size_t len, char *err);

/*
 * Makes sure pin_root is a usable directory on a bpf filesystem: mounts bpffs
 * on its parent when that is the default location and no bpffs is mounted
 * there, creates pin_root (mode 0700).
 */
int cgf_pin_root_prepare(const char *pin_root, char *err);

/*
 * Resolves a cgroup given by the user: an absolute path on the cgroup2 mount,
 * or a path relative to the cgroup2 root ("/libpod_parent/x" or "x").
 * Fills the absolute path and the cgroup id.  Refuses the root cgroup.
 */
int cgf_cgroup_resolve(const char *given, char *path, size_t len, uint64_t *id, char *err);

/* The cgroup id of a cgroup directory. */
int cgf_cgroup_id(const char *path, uint64_t *id);

/* Finds the path of cgroup id below the cgroup2 root; -ENOENT if gone. */
int cgf_cgroup_path_of(uint64_t id, char *path, size_t len);

struct cgf_fence;

struct cgf_attach_opts {
	const char *pin_root;  /* NULL: CGF_PIN_ROOT_DEFAULT */
	bool audit;            /* log would-be denials, deny nothing */
	const char *policy;    /* policy name kept with the fence, or NULL */
	const char *label;     /* who the fence is for, or NULL */
	const struct cgf_endpoint *dns; /* resolvers allowed besides the policy */
	size_t n_dns;                   /* at most CGF_FENCE_DNS_MAX */
	/*
	 * Boundary: the fence's allowlist also judged at tc ingress of this
	 * interface (the host end of the workload's veth), found in the network
	 * namespace at boundary_netns (NULL: the caller's).  NULL: none.
	 */
	const char *boundary_ifname;
	const char *boundary_netns;
	/* Kept for status: what the workload may do beyond the cgroup hooks. */
	bool caps_known;         /* caps_held says what the workload was given */
	uint32_t caps_held;      /* CGF_RISK_* capabilities it holds */
	uint32_t risk_accepted;  /* CGF_RISK_* its policy accepts without a boundary */
	/*
	 * DNS proxy mode: port 53 steered to proxy4/proxy6 (either may be NULL:
	 * DNS of that family is then denied until cgf_fence_set_proxy).
	 */
	bool dns_proxy;
	const struct cgf_endpoint *proxy4, *proxy6;
};

/*
 * Loads a fresh instance of the programs, fills the allowlist, attaches every
 * program to the cgroup with bpf links and pins it all, in that order: the
 * filter is complete before the first packet meets it; the boundary program,
 * when asked for, is attached last, before the fence is published.  All or nothing: on any
 * failure nothing stays attached or pinned.  -EEXIST if already fenced.
 */
int cgf_fence_attach(const char *cgroup_path, const struct cgf_allowlist *list,
		     const struct cgf_attach_opts *opts, struct cgf_fence **out, char *err);

/*
 * The capacity of a new fence's exact-address map, for a family whose
 * allowlist holds n_full full-length (/32, /128) keys: room for twice as
 * many (a sync writes the new entries before it deletes the old, so a list
 * replaced whole holds both for a while), at least CGF_EXACT_MIN_ENTRIES,
 * rounded up to a power of two (the kernel rounds the bucket array so: the
 * slots up to it cost nothing), at most CGF_MAX_ENTRIES.  An empty slot costs
 * 16 bytes of bucket array; a full-length key finding the map full goes to
 * the trie.  forced (> 0) replaces the computation, cut to CGF_MAX_ENTRIES:
 * cgf_fence_attach takes it from the environment variable
 * CGFENCE_EXACT_CAPACITY, a knob for tests that need the overflow.
 */
uint32_t cgf_exact_capacity(size_t n_full, uint32_t forced);

/* Opens the pinned fence of a cgroup id; -ENOENT when there is none. */
int cgf_fence_open(const char *pin_root, uint64_t cgroup_id, struct cgf_fence **out, char *err);

/*
 * Replaces the allowlist: writes every new entry (in place where the prefix
 * exists, so a destination allowed before and after is never denied in
 * between), then deletes entries no longer listed.
 */
int cgf_fence_sync(struct cgf_fence *fence, const struct cgf_allowlist *list, char *err);

/*
 * Adds grants for one address (all of the same family, full-length prefix:
 * what a DNS answer opens) to its exact entry at once, keeping what the entry
 * or, when there is none, the prefixes covering the address already allow;
 * ranges with the same ports and protocols keep the later expiry, expired
 * ranges go.  For the DNS proxy, which must open the fence before it
 * releases an answer; the next cgf_fence_sync reads the maps again.
 */
int cgf_fence_grant(struct cgf_fence *fence, const struct cgf_grant *grants, size_t n,
		    char *err);

/*
 * Removes the fence: unpins links and maps; the kernel detaches the programs
 * when the last reference goes.  Works from the pins alone, also for a fence
 * whose cgroup is gone.
 */
int cgf_fence_remove(const char *pin_root, uint64_t cgroup_id, char *err);

void cgf_fence_close(struct cgf_fence *fence);

uint64_t cgf_fence_cgroup_id(const struct cgf_fence *fence);
bool cgf_fence_audit(const struct cgf_fence *fence);
const char *cgf_fence_policy(const struct cgf_fence *fence); /* "" when ad-hoc */
const char *cgf_fence_label(const struct cgf_fence *fence);  /* "" when none */
/* The fence's pinned config: protections, boundary interface. */
const struct cgf_config *cgf_fence_config(const struct cgf_fence *fence);

/*
 * The interface index the pinned boundary link is attached to, 0 when that
 * interface is gone (the link is defunct), -ENOENT when there is no boundary.
 */
int cgf_fence_boundary_ifindex(const struct cgf_fence *fence);

/* The resolvers the fence allows besides its policy; returns how many. */
size_t cgf_fence_dns(const struct cgf_fence *fence, const struct cgf_endpoint **dns);

/*
 * Whether the fence is in DNS proxy mode; its proxy endpoints (family 0 when
 * none) go to proxy4/proxy6 when not NULL.
 */
bool cgf_fence_dns_proxy(const struct cgf_fence *fence, struct cgf_endpoint *proxy4,
			 struct cgf_endpoint *proxy6);

/*
 * Points a proxy-mode fence's DNS at new endpoints (NULL: none, DNS of that
 * family denied): after a daemon restart, or once the proxy listens.
 */
int cgf_fence_set_proxy(struct cgf_fence *fence, const struct cgf_endpoint *proxy4,
			const struct cgf_endpoint *proxy6, char *err);

/* Appends one grant per endpoint (its address and port, TCP and UDP). */
void cgf_endpoints_to_grants(const struct cgf_endpoint *eps, size_t n, struct cgf_grant *out);

/*
 * The allowlist as the maps hold it, sorted: read once, then kept current by
 * cgf_fence_sync, which writes only what changes.  NULL with errno on error.
 */
const struct cgf_allowlist *cgf_fence_entries(struct cgf_fence *fence);

/* Sums the per-CPU counters. */
int cgf_fence_stats(const struct cgf_fence *fence, struct cgf_stats *sum);

/* Counts allowlist entries per family. */
int cgf_fence_count(const struct cgf_fence *fence, size_t *n_v4, size_t *n_v6);

/*
 * Reads the allowlist back, sorted: at most max entries (0 = all), IPv4 first;
 * the totals per family go to total_v4/total_v6 when not NULL.
 */
int cgf_fence_dump(const struct cgf_fence *fence, size_t max, struct cgf_allowlist *out,
		   size_t *total_v4, size_t *total_v6);

/* The ring buffer map fd of deny events. */
int cgf_fence_events_fd(const struct cgf_fence *fence);

/* Lists the cgroup ids fenced under pin_root; *ids is malloc'ed. */
int cgf_fence_list(const char *pin_root, uint64_t **ids, size_t *n);

#define CGF_COMM_LEN 17 /* an event's comm, printable, with the NUL */

/* An event's comm with anything unprintable replaced by '?'. */
void cgf_event_comm(const struct cgf_event *e, char comm[CGF_COMM_LEN]);

/*
 * What a deny line says after its verb, built alike from an event (here) and
 * from its JSON (cgfence log): "udp [2001:db8::2]:5000 (egress: why) pid 42
 * (probe)".  cgf_dest_words gives the destination ("udp [2001:db8::2]:5000",
 * "icmp 198.18.0.3": a port for TCP and UDP only); cgf_deny_words adds
 * "(hook)", or "(hook: why)" where the reason is not the allowlist (why
 * non-NULL), and the process unless comm is NULL (the boundary's packets have
 * none).
 */
void cgf_dest_words(char *buf, size_t len, const char *proto, const char *addr, unsigned long port);
void cgf_deny_words(char *buf, size_t len, const char *what, const char *hook, const char *why,
		    unsigned long pid, const char *comm);
void cgf_event_format(const struct cgf_event *e, char *buf, size_t len);

const char *cgf_hook_name(unsigned hook);

/*
 * An event's reason (CGF_REASON_*): its name in JSON ("not-allowed",
 * "any-source", ...), and in words for a deny line; both NULL where an older
 * program said none (CGF_REASON_UNSAID), the words NULL for the plain
 * CGF_REASON_NOT_ALLOWED, "reason-N" (in buf) for one this build does not
 * know.  cgf_reason_text_of() takes the name; NULL for none, an unknown name
 * itself.
 */
const char *cgf_reason_name(unsigned reason, char *buf, size_t len);
const char *cgf_reason_text(unsigned reason, char *buf, size_t len);
const char *cgf_reason_text_of(const char *name);

/* "tcp", "udp", "icmp", ..., "proto-N" (in buf) for an IPPROTO_* number. */
const char *cgf_proto_name(unsigned proto, char *buf, size_t len);

/*
 * Runs fn(arg, err) in the network namespace at netns_path (NULL or "": the
 * caller's own), on this thread only, and comes back; fn's result, or
 * -errno with err set when the namespace cannot be entered.  A thread that
 * cannot come back aborts rather than carry on in the wrong namespace.
 */
int cgf_in_netns(const char *netns_path, int (*fn)(void *arg, char *err), void *arg, char *err);

/* Current CLOCK_BOOTTIME in ns, the clock the programs compare expiries with. */
uint64_t cgf_boottime_ns(void);

/* Routes libbpf's messages: shown only when verbose. */
void cgf_libbpf_quiet(bool verbose);

#endif /* CGF_FENCE_H */

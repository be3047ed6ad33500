/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Putting the calling process into a fenced cgroup so that nothing it runs can
 * get at the fence: used by `cgfence run` in the child, before exec.
 */
#ifndef CGF_CONFINE_H
#define CGF_CONFINE_H

/*
 * Turns on nsdelegate on the host's cgroup2 hierarchy when it is off, so that a
 * process in a cgroup namespace cannot move itself out of that namespace's
 * root through any view of the tree (another process's /proc/PID/root
 * included).  Returns 0, 1 when it changed the mount, or a negative errno.
 */
int cgf_cgroup2_nsdelegate(char *err);

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Capabilities the confined process keeps although they are on the drop list. */
struct cgf_keep {
	uint64_t caps; /* bit N: capability N */
};

/*
 * Adds capability name ("net_raw", "NET_RAW", "CAP_NET_RAW") to keep.  Refused
 * for CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON (they would let the process detach
 * its own fence), for names that are not capabilities and for capabilities the
 * fence does not drop.  Returns 0 or -EINVAL with err set ("'x': reason").
 */
int cgf_keep_cap(struct cgf_keep *keep, const char *name, char *err);

/* The CGF_RISK_* bits of what keep gives back (CAP_NET_RAW, CAP_NET_ADMIN). */
uint32_t cgf_keep_risks(const struct cgf_keep *keep);

/* Warns on stderr, per kept capability, which way around the fence it reopens. */
void cgf_keep_warn(const struct cgf_keep *keep, bool boundary);

/* Who the confined process runs as (--user); set false: whoever started it. */
struct cgf_identity {
	bool set;
	uid_t uid;
	gid_t gid;
	int n_groups;   /* supplementary groups */
	gid_t *groups;  /* malloc'd: cgf_identity_free */
};

/*
 * Parses "USER[:GROUP]", each a name or a number.  A user of the password
 * database gets its primary group (or GROUP) and its supplementary groups; a
 * number that is no user there needs GROUP, and gets no other.  Returns 0,
 * -EINVAL for what names no user or group, or another negative errno when
 * the databases cannot be read, with err set ("'x': reason").
 */
int cgf_identity_parse(const char *spec, struct cgf_identity *id, char *err);
void cgf_identity_free(struct cgf_identity *id);

/*
 * In the calling process: joins the cgroup at cgroup_path, enters new cgroup
 * and mount namespaces, unmounts every bpf filesystem (the fence's pins
 * become unreachable), replaces every cgroup2 mount by one rooted at the
 * fence, and drops the capabilities that could undo or get around the fence
 * (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_RAW,
 * CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_DAC_READ_SEARCH, CAP_SYS_RAWIO,
 * CAP_MKNOD, CAP_SYS_BOOT, CAP_MAC_ADMIN, CAP_MAC_OVERRIDE) from every set,
 * the bounding set included, except those in keep (NULL: none).  Before
 * that it enters a Landlock domain of its own, so that it cannot ptrace()
 * (nor pidfd_getfd(), nor write the memory of) any process outside the
 * fence (without Landlock that is refused with an identity, a warning
 * without), and a seccomp filter refuses it ioctl(TIOCSTI) and
 * ioctl(TIOCLINUX), which push input into a terminal.  With an identity
 * (NULL or not set: none), it then takes that user's groups, group and
 * user, with the capabilities of keep as ambient ones (so they survive
 * exec), and sets no_new_privs: no setuid or file-capability program gives
 * it more than that.  Returns 0 or a negative errno with err set.
 */
int cgf_confine_self(const char *cgroup_path, const struct cgf_keep *keep,
		     const struct cgf_identity *id, char *err);

#endif /* CGF_CONFINE_H */

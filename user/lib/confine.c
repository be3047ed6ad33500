// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Confining a process inside its fence; see confine.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "errmsg.h"
#include "confine.h"
#include "fence.h"

#define fail(err, ret, ...) cgf_fail(err, CGF_ERR_LEN, ret, __VA_ARGS__)

#define MAX_MOUNTS 32

/* The mounts of one filesystem type. */
struct mount_list {
	struct cgf_mount m[MAX_MOUNTS];
	int n;
};

static int list_mounts(const char *fstype, struct mount_list *out)
{
	int n = cgf_list_mounts(fstype, out->m, MAX_MOUNTS);

	out->n = n < 0 ? 0 : n;
	return n < 0 ? n : 0;
}

int cgf_cgroup2_nsdelegate(char *err)
{
	struct mount_list *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return fail(err, -ENOMEM, "out of memory");
	ret = list_mounts("cgroup2", m);
	if (ret) {
		fail(err, ret, "cannot read /proc/self/mountinfo: %s", strerror(-ret));
		goto out;
	}
	if (m->n == 0) {
		ret = fail(err, -ENOENT, "no cgroup2 filesystem is mounted");
		goto out;
	}
	if (strstr(m->m[0].opts, "nsdelegate")) {
		ret = 0;
		goto out;
	}
	/* The flag is per hierarchy: remounting one mount sets it for all. */
	if (mount(NULL, m->m[0].path, NULL, MS_REMOUNT, "nsdelegate")) {
		ret = fail(err, -errno, "cannot turn on nsdelegate on '%s': %s", m->m[0].path,
			   strerror(errno));
		goto out;
	}
	ret = 1;
out:
	free(m);
	return ret;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	close(fd);
	return 0;
}

/* Unmounts every mount of fstype, including those a removal uncovers. */
static int unmount_all(const char *fstype, struct mount_list *seen, char *err)
{
	struct mount_list *m = calloc(1, sizeof(*m));
	int round, i, ret = 0;

	if (!m)
		return fail(err, -ENOMEM, "out of memory");
	for (round = 0; round < 16; round++) {
		ret = list_mounts(fstype, m);
		if (ret) {
			fail(err, ret, "cannot read /proc/self/mountinfo: %s", strerror(-ret));
			goto out;
		}
		if (m->n == 0)
			goto out;
		for (i = m->n - 1; i >= 0; i--) {
			int j;

			if (seen) {
				for (j = 0; j < seen->n; j++)
					if (!strcmp(seen->m[j].path, m->m[i].path))
						break;
				if (j == seen->n && seen->n < MAX_MOUNTS)
					seen->m[seen->n++] = m->m[i];
			}
			if (umount2(m->m[i].path, MNT_DETACH) && errno != EINVAL && errno != ENOENT) {
				ret = fail(err, -errno, "cannot unmount %s at '%s': %s", fstype,
					   m->m[i].path, strerror(errno));
				goto out;
			}
		}
	}
	ret = fail(err, -ELOOP, "%s mounts keep appearing after 16 rounds of unmounting", fstype);
out:
	free(m);
	return ret;
}

/*
 * What each dropped capability would let a fenced process do, as --keep-cap
 * warns.  NET_RAW and NET_ADMIN reach around the cgroup hooks (frames no
 * socket sends, packets changed after the hook); the others reach the fence
 * itself or the kernel under it.
 */
static const struct {
	int cap;
	const char *name;
	const char *vector; /* NULL: never kept (would detach the fence) */
} dropped[] = {
	{ CAP_SYS_ADMIN, "sys_admin", NULL },
	{ CAP_BPF, "bpf", NULL },
	{ CAP_PERFMON, "perfmon", NULL },
	{ CAP_NET_RAW, "net_raw", "AF_PACKET frames that no cgroup hook sees" },
	{ CAP_NET_ADMIN, "net_admin",
	  "tunnels, TUN devices and nft netdev rules that change packets after the cgroup hooks" },
	{ CAP_SYS_PTRACE, "sys_ptrace",
	  "ptrace of processes outside the fence where the kernel has no Landlock" },
	{ CAP_SYS_MODULE, "sys_module", "kernel modules: anything at all" },
	{ CAP_DAC_READ_SEARCH, "dac_read_search",
	  "open_by_handle_at: files outside its mount namespace" },
	{ CAP_SYS_RAWIO, "sys_rawio", "raw I/O to memory and devices" },
	{ CAP_MKNOD, "mknod", "device nodes for disks and memory" },
	{ CAP_SYS_BOOT, "sys_boot", "kexec: another kernel" },
	{ CAP_MAC_ADMIN, "mac_admin", "the LSM policy" },
	{ CAP_MAC_OVERRIDE, "mac_override", "the LSM policy" },
};

#define N_DROPPED (sizeof(dropped) / sizeof(dropped[0]))

int cgf_keep_cap(struct cgf_keep *keep, const char *name, char *err)
{
	const char *n = name;

	if (!strncasecmp(n, "cap_", 4))
		n += 4;
	for (size_t i = 0; i < N_DROPPED; i++) {
		if (strcasecmp(n, dropped[i].name))
			continue;
		if (!dropped[i].vector)
			return fail(err, -EINVAL,
				    "'%s': never kept, it would let the command detach its own fence",
				    name);
		keep->caps |= 1ull << dropped[i].cap;
		return 0;
	}
	return fail(err, -EINVAL,
		    "'%s': not a capability the fence drops (net_raw, net_admin, sys_ptrace, "
		    "sys_module, dac_read_search, sys_rawio, mknod, sys_boot, mac_admin, "
		    "mac_override)",
		    name);
}

uint32_t cgf_keep_risks(const struct cgf_keep *keep)
{
	return ((keep->caps >> CAP_NET_RAW) & 1 ? CGF_RISK_NET_RAW : 0) |
	       ((keep->caps >> CAP_NET_ADMIN) & 1 ? CGF_RISK_NET_ADMIN : 0);
}

void cgf_keep_warn(const struct cgf_keep *keep, bool boundary)
{
	for (size_t i = 0; i < N_DROPPED; i++) {
		bool net = dropped[i].cap == CAP_NET_RAW || dropped[i].cap == CAP_NET_ADMIN;

		if (!(keep->caps >> dropped[i].cap & 1))
			continue;
		fprintf(stderr, "cgfence: warning: --keep-cap %s lets COMMAND use %s%s\n",
			dropped[i].name, dropped[i].vector,
			!net	   ? ""
			: boundary ? " (the boundary still judges what leaves its network namespace)"
				   : "; no boundary program stops them (add --boundary IFNAME)");
	}
}

static bool kept(const struct cgf_keep *keep, int cap)
{
	return keep && (keep->caps >> cap & 1);
}

static int drop_caps(const struct cgf_keep *keep, char *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	size_t i;

	for (i = 0; i < N_DROPPED; i++)
		if (!kept(keep, dropped[i].cap) && prctl(PR_CAPBSET_DROP, dropped[i].cap, 0, 0, 0) &&
		    errno != EINVAL)
			return fail(err, -errno, "cannot drop CAP_%s from the bounding set: %s",
				    dropped[i].name, strerror(errno));
	if (syscall(SYS_capget, &hdr, data))
		return fail(err, -errno, "cannot read capabilities: %s", strerror(errno));
	for (i = 0; i < N_DROPPED; i++) {
		int cap = dropped[i].cap;
		__u32 bit = 1u << (cap % 32);

		if (kept(keep, cap))
			continue;
		data[cap / 32].effective &= ~bit;
		data[cap / 32].permitted &= ~bit;
		data[cap / 32].inheritable &= ~bit;
	}
	if (syscall(SYS_capset, &hdr, data))
		return fail(err, -errno, "cannot drop capabilities: %s", strerror(errno));
	/* Ambient capabilities are a subset of permitted and inheritable: gone too. */
	return 0;
}

/* A decimal id, below (uid_t)-1 (which means "unchanged" to setresuid). */
static int parse_id(const char *text, unsigned long *out)
{
	char *end;

	if (*text < '0' || *text > '9')
		return -EINVAL; /* a name */
	errno = 0;
	*out = strtoul(text, &end, 10);
	if (*end)
		return -EINVAL;
	return errno || *out >= (unsigned long)(uid_t)-1 ? -ERANGE : 0;
}

/* Errors getpwnam_r(3) and getgrnam_r(3) allow to mean "no such entry". */
static bool not_found(int ret)
{
	return ret == ENOENT || ret == ESRCH || ret == EBADF || ret == EPERM;
}

/* One lookup of the password or group database, into buf. */
struct db_query {
	const char *name; /* NULL: by uid */
	uid_t uid;
	struct passwd pw, *pwp;
	struct group gr, *grp;
};

static int query_user(struct db_query *q, char *buf, size_t len)
{
	return q->name ? getpwnam_r(q->name, &q->pw, buf, len, &q->pwp) :
			 getpwuid_r(q->uid, &q->pw, buf, len, &q->pwp);
}

static int query_group(struct db_query *q, char *buf, size_t len)
{
	return getgrnam_r(q->name, &q->gr, buf, len, &q->grp);
}

/*
 * Runs a query with a buffer grown while it is too small (ERANGE).  0 (the
 * entry, or NULL for none, in q), or a positive errno.
 */
static int lookup(int (*query)(struct db_query *, char *, size_t), struct db_query *q, char **buf)
{
	size_t len = 4096;
	int ret;

	do {
		char *grown = realloc(*buf, len);

		if (!grown)
			return ENOMEM;
		*buf = grown;
		ret = query(q, *buf, len);
		len *= 2;
	} while (ret == ERANGE && len <= (1u << 24));
	return not_found(ret) ? 0 : ret;
}

int cgf_identity_parse(const char *spec, struct cgf_identity *id, char *err)
{
	const char *colon = strchr(spec, ':');
	char *user, *ubuf = NULL, *gbuf = NULL;
	const char *group = colon ? colon + 1 : NULL;
	struct db_query uq = { 0 }, gq = { 0 };
	struct passwd *pwp;
	unsigned long n;
	int ret, count = 1;

	memset(id, 0, sizeof(*id));
	user = strndup(spec, colon ? (size_t)(colon - spec) : strlen(spec));
	if (!user)
		return fail(err, -ENOMEM, "out of memory");
	if (!*user || (group && !*group)) {
		ret = fail(err, -EINVAL, "'%s': expected USER[:GROUP], each a name or a number",
			   spec);
		goto out;
	}
	ret = parse_id(user, &n);
	if (ret == -ERANGE) {
		ret = fail(err, -EINVAL, "'%s': not a user id (0 to %u)", user,
			   (unsigned)(uid_t)-2);
		goto out;
	}
	if (ret)
		uq.name = user;
	else
		uq.uid = (uid_t)n;
	ret = lookup(query_user, &uq, &ubuf);
	pwp = uq.pwp;
	if (ret) {
		ret = fail(err, -ret, "'%s': cannot read the password database: %s", user,
			   strerror(ret));
		goto out;
	}
	if (!pwp && uq.name) {
		ret = fail(err, -EINVAL, "'%s': no such user", user);
		goto out;
	}
	id->uid = pwp ? pwp->pw_uid : (uid_t)n;
	if (group) {
		ret = parse_id(group, &n);
		if (ret == -ERANGE) {
			ret = fail(err, -EINVAL, "'%s': not a group id (0 to %u)", group,
				   (unsigned)(gid_t)-2);
			goto out;
		}
		if (ret) {
			gq.name = group;
			ret = lookup(query_group, &gq, &gbuf);
			if (ret) {
				ret = fail(err, -ret, "'%s': cannot read the group database: %s",
					   group, strerror(ret));
				goto out;
			}
			if (!gq.grp) {
				ret = fail(err, -EINVAL, "'%s': no such group", group);
				goto out;
			}
			n = gq.grp->gr_gid;
		}
		id->gid = (gid_t)n;
	} else if (pwp) {
		id->gid = pwp->pw_gid;
	} else {
		ret = fail(err, -EINVAL,
			   "'%s': no user of that number in the password database; give its group "
			   "too (%s:GROUP)",
			   user, user);
		goto out;
	}
	/*
	 * A user's groups: the first call, given room for none, counts them
	 * (-1, count set); the second fills them in.  A number's: its group.
	 */
	if (pwp) {
		count = 0;
		getgrouplist(pwp->pw_name, id->gid, NULL, &count);
	}
	id->groups = calloc((size_t)count, sizeof(gid_t));
	if (!id->groups) {
		ret = fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	id->groups[0] = id->gid;
	id->n_groups = count;
	if (pwp && getgrouplist(pwp->pw_name, id->gid, id->groups, &id->n_groups) < 0) {
		ret = fail(err, -EAGAIN, "'%s': its groups changed while being read", pwp->pw_name);
		goto out;
	}
	id->set = true;
	ret = 0;
out:
	if (ret)
		cgf_identity_free(id);
	free(user);
	free(ubuf);
	free(gbuf);
	return ret;
}

void cgf_identity_free(struct cgf_identity *id)
{
	free(id->groups);
	memset(id, 0, sizeof(*id));
}

/*
 * Becomes id, keeping the capabilities of keep that drop_caps left (as
 * ambient ones, the only kind a non-root process keeps over exec), and sets
 * no_new_privs, so that neither a setuid program (sudo, su) nor a file
 * capability gives it back what was dropped.
 */
static int become(const struct cgf_identity *id, const struct cgf_keep *keep, char *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	/* uid 0 keeps what drop_caps left, with or without --keep-cap */
	uint64_t caps = keep && id->uid != 0 ? keep->caps : 0;

	if (caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		return fail(err, -errno, "cannot keep capabilities over a change of user: %s",
			    strerror(errno));
	if (setgroups((size_t)id->n_groups, id->groups))
		return fail(err, -errno, "cannot set the groups of uid %u: %s", (unsigned)id->uid,
			    strerror(errno));
	if (setresgid(id->gid, id->gid, id->gid))
		return fail(err, -errno, "cannot become group %u: %s", (unsigned)id->gid,
			    strerror(errno));
	if (setresuid(id->uid, id->uid, id->uid))
		return fail(err, -errno, "cannot become user %u: %s", (unsigned)id->uid,
			    strerror(errno));
	if (caps) {
		if (syscall(SYS_capget, &hdr, data))
			return fail(err, -errno, "cannot read capabilities: %s", strerror(errno));
		for (int i = 0; i < 2; i++) {
			__u32 want = (__u32)(caps >> (32 * i));

			data[i].permitted &= want;
			data[i].effective = data[i].inheritable = data[i].permitted;
		}
		if (syscall(SYS_capset, &hdr, data))
			return fail(err, -errno, "cannot set capabilities: %s", strerror(errno));
		for (size_t i = 0; i < N_DROPPED; i++)
			if (kept(keep, dropped[i].cap) &&
			    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, dropped[i].cap, 0, 0))
				return fail(err, -errno, "cannot keep CAP_%s over exec: %s",
					    dropped[i].name, strerror(errno));
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return fail(err, -errno, "cannot set no_new_privs: %s", strerror(errno));
	return 0;
}

/* struct landlock_ruleset_attr as of Landlock ABI 6 (Linux 6.12); older headers lack fields */
struct cgf_landlock_attr {
	__u64 handled_access_fs;
	__u64 handled_access_net;
	__u64 scoped;
};

#define CGF_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#define CGF_LANDLOCK_ACCESS_FS_REFER (1ULL << 13) /* ABI 2 */

/*
 * Puts the process in a Landlock domain of its own: Landlock lets a process
 * in a domain ptrace() only processes of the same domain or one nested in
 * it, and so also pidfd_getfd(), /proc/PID/mem, /proc/PID/fd and
 * process_vm_writev().  Without it a fenced process could take a socket from
 * a process outside the fence that runs as the same user with no more
 * capabilities (its user's shell, another fence), and a socket is judged by
 * the cgroup it was made in, not by the fence.  A domain must restrict
 * something, and what it restricts must not get in COMMAND's way:
 *   ABI 6 and later: signals to processes outside the domain, nothing else;
 *   ABI 2-5: making block devices (which needs CAP_MKNOD anyway), with the
 *     renames and links across directories that any domain handling a file
 *     right refuses given back by a rule on /; mounts stay refused there,
 *     even in a user namespace of COMMAND's own;
 *   ABI 1: the same, but renames and links across directories get EXDEV.
 * Needs CAP_SYS_ADMIN or no_new_privs: it runs before the capabilities go.
 * 0, or a negative errno with err set.
 */
static int enter_landlock(char *err)
{
	struct cgf_landlock_attr attr = { 0 };
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
			       LANDLOCK_CREATE_RULESET_VERSION);
	int fd, ret = 0;

	if (abi < 0)
		return fail(err, -errno, "Landlock is not available (%s)", strerror(errno));
	if (abi >= 6)
		attr.scoped = CGF_LANDLOCK_SCOPE_SIGNAL;
	else
		attr.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_BLOCK |
					 (abi >= 2 ? CGF_LANDLOCK_ACCESS_FS_REFER : 0);
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return fail(err, -errno, "cannot create a Landlock ruleset (ABI %d): %s", abi,
			    strerror(errno));
	if (abi >= 2 && abi < 6) {
		struct landlock_path_beneath_attr below = {
			.allowed_access = CGF_LANDLOCK_ACCESS_FS_REFER,
			.parent_fd = open("/", O_PATH | O_CLOEXEC),
		};

		if (below.parent_fd < 0 ||
		    syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &below, 0))
			ret = fail(err, -errno, "cannot add a Landlock rule for '/': %s",
				   strerror(errno));
		if (below.parent_fd >= 0)
			close(below.parent_fd);
	}
	if (!ret && syscall(SYS_landlock_restrict_self, fd, 0))
		ret = fail(err, -errno, "cannot enter a Landlock domain: %s", strerror(errno));
	close(fd);
	return ret;
}

/*
 * Refuses ioctl(TIOCSTI) and ioctl(TIOCLINUX) with EPERM, for every system
 * call table of the machine (a 32-bit call passes a filter made for the
 * native one only): with either, a process pushes input into a terminal it
 * shares with cgfence, for the shell that reads it once the fence is gone.
 * The command is compared in its low 32 bits, the kernel's unsigned int.
 * no_new_privs is not forced (root runs keep what they have).  0, or a
 * negative errno with err set.
 */
static int refuse_terminal_input(char *err)
{
	static const unsigned long cmds[] = { TIOCSTI, TIOCLINUX };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret = ctx ? 0 : -ENOMEM;

	if (!ret)
		ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
#if defined(__x86_64__)
	if (!ret)
		ret = seccomp_arch_add(ctx, SCMP_ARCH_X86);
	if (!ret)
		ret = seccomp_arch_add(ctx, SCMP_ARCH_X32);
#elif defined(__aarch64__)
	if (!ret)
		ret = seccomp_arch_add(ctx, SCMP_ARCH_ARM);
#endif
	for (size_t i = 0; !ret && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, cmds[i]));
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret ? fail(err, ret, "cannot refuse TIOCSTI with a seccomp filter: %s",
			  strerror(-ret))
		   : 0;
}

int cgf_confine_self(const char *cgroup_path, const struct cgf_keep *keep,
		     const struct cgf_identity *id, char *err)
{
	char procs[PATH_MAX + 32];
	struct mount_list *cg2 = NULL;
	int ret, i;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup_path);
	ret = write_file(procs, "0\n");
	if (ret)
		return fail(err, ret, "cannot move into cgroup '%s': %s", cgroup_path,
			    strerror(-ret));
	if (unshare(CLONE_NEWCGROUP | CLONE_NEWNS))
		return fail(err, -errno, "cannot create cgroup and mount namespaces: %s",
			    strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return fail(err, -errno, "cannot make mounts private: %s", strerror(errno));
	ret = unmount_all("bpf", NULL, err);
	if (ret)
		return ret;
	cg2 = calloc(1, sizeof(*cg2));
	if (!cg2)
		return fail(err, -ENOMEM, "out of memory");
	ret = unmount_all("cgroup2", cg2, err);
	if (ret)
		goto out;
	/* In the new cgroup namespace a fresh mount's root is the fence. */
	for (i = 0; i < cg2->n; i++) {
		if (mount("cgroup2", cg2->m[i].path, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) &&
		    errno != ENOENT) {
			ret = fail(err, -errno, "cannot mount cgroup2 at '%s': %s", cg2->m[i].path,
				   strerror(errno));
			goto out;
		}
	}
	ret = enter_landlock(err);
	if (ret && id && id->set) {
		char why[CGF_ERR_LEN];

		snprintf(why, sizeof(why), "%s", err);
		ret = fail(err, ret,
			   "--user needs Landlock, or COMMAND could ptrace processes of uid %u "
			   "outside the fence and use their sockets: %s",
			   (unsigned)id->uid, why);
		goto out;
	}
	if (ret)
		fprintf(stderr,
			"cgfence: warning: %s: COMMAND can ptrace processes outside the fence "
			"that hold no more capabilities than it does, and use their sockets\n",
			err);
	ret = refuse_terminal_input(err);
	if (!ret)
		ret = drop_caps(keep, err);
	if (!ret && id && id->set)
		ret = become(id, keep, err);
out:
	free(cg2);
	return ret;
}

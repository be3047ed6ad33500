// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Confining a process inside its fence; see confine.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "confine.h"
#include "fence.h"

static int fail(char *err, int ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, CGF_ERR_LEN, fmt, ap);
	va_end(ap);
	return ret;
}

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

static const int dropped_caps[] = {
	CAP_SYS_ADMIN, CAP_BPF,	 CAP_PERFMON, CAP_SYS_PTRACE,  CAP_SYS_MODULE, CAP_DAC_READ_SEARCH,
	CAP_SYS_RAWIO, CAP_MKNOD, CAP_SYS_BOOT, CAP_MAC_ADMIN, CAP_MAC_OVERRIDE,
};

static int drop_caps(char *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	size_t i;

	for (i = 0; i < sizeof(dropped_caps) / sizeof(dropped_caps[0]); i++)
		if (prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) && errno != EINVAL)
			return fail(err, -errno, "cannot drop capability %d from the bounding set: %s",
				    dropped_caps[i], strerror(errno));
	if (syscall(SYS_capget, &hdr, data))
		return fail(err, -errno, "cannot read capabilities: %s", strerror(errno));
	for (i = 0; i < sizeof(dropped_caps) / sizeof(dropped_caps[0]); i++) {
		int cap = dropped_caps[i];
		__u32 bit = 1u << (cap % 32);

		data[cap / 32].effective &= ~bit;
		data[cap / 32].permitted &= ~bit;
		data[cap / 32].inheritable &= ~bit;
	}
	if (syscall(SYS_capset, &hdr, data))
		return fail(err, -errno, "cannot drop capabilities: %s", strerror(errno));
	/* Ambient capabilities are a subset of permitted and inheritable: gone too. */
	return 0;
}

int cgf_confine_self(const char *cgroup_path, char *err)
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
	ret = drop_caps(err);
out:
	free(cg2);
	return ret;
}

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

/* The mounts of one filesystem type: mount point and super options. */
struct mount_list {
	char paths[32][PATH_MAX];
	char opts[32][256];
	int n;
};

static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static int list_mounts(const char *fstype, struct mount_list *out)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	out->n = 0;
	while (fgets(line, sizeof(line), f) && out->n < 32) {
		char *sep = strstr(line, " - "), *save = NULL, *tok, *mp = NULL, *type, *opts;
		int i;

		if (!sep)
			continue;
		*sep = '\0';
		for (i = 0, tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++)
			if (i == 4)
				mp = tok;
		save = NULL;
		type = strtok_r(sep + 3, " ", &save);
		strtok_r(NULL, " ", &save); /* source */
		opts = strtok_r(NULL, " \n", &save);
		if (!mp || !type || strcmp(type, fstype))
			continue;
		unescape(mp);
		snprintf(out->paths[out->n], PATH_MAX, "%s", mp);
		snprintf(out->opts[out->n], sizeof(out->opts[0]), "%s", opts ? opts : "");
		out->n++;
	}
	fclose(f);
	return 0;
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
	if (strstr(m->opts[0], "nsdelegate")) {
		ret = 0;
		goto out;
	}
	/* The flag is per hierarchy: remounting one mount sets it for all. */
	if (mount(NULL, m->paths[0], NULL, MS_REMOUNT, "nsdelegate")) {
		ret = fail(err, -errno, "cannot turn on nsdelegate on '%s': %s", m->paths[0],
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
					if (!strcmp(seen->paths[j], m->paths[i]))
						break;
				if (j == seen->n && seen->n < 32)
					snprintf(seen->paths[seen->n++], PATH_MAX, "%s", m->paths[i]);
			}
			if (umount2(m->paths[i], MNT_DETACH) && errno != EINVAL && errno != ENOENT) {
				ret = fail(err, -errno, "cannot unmount %s at '%s': %s", fstype,
					   m->paths[i], strerror(errno));
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
		if (mount("cgroup2", cg2->paths[i], "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) &&
		    errno != ENOENT) {
			ret = fail(err, -errno, "cannot mount cgroup2 at '%s': %s", cg2->paths[i],
				   strerror(errno));
			goto out;
		}
	}
	ret = drop_caps(err);
out:
	free(cg2);
	return ret;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Control-socket helpers shared by cgfenced and cgfence; see control.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "errmsg.h"
#include "control.h"
#include "fence.h"

#define fail cgf_fail

int cgf_control_cgroup_path(const char *given, char *path, size_t len, uint64_t *id, char *err)
{
	const char *p = given;

	/* '..' anywhere would let a name point outside what it seems to name. */
	while ((p = strstr(p, ".."))) {
		if ((p == given || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return fail(err, CGF_ERR_LEN, -EINVAL,
				    "cgroup '%s': '..' is not allowed in a cgroup path", given);
		p += 2;
	}
	return cgf_cgroup_resolve(given, path, len, id, err);
}

void cgf_control_pid_cgroup_path(pid_t pid, char *path, size_t len)
{
	char file[64], line[PATH_MAX], root[PATH_MAX];
	FILE *f;

	path[0] = '\0';
	if (cgf_find_mount("cgroup2", root, sizeof(root)))
		return;
	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
	f = fopen(file, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* "0::/" is the root cgroup */
		snprintf(path, len, "%s%s", root, strcmp(line + 3, "/") ? line + 3 : "");
		break;
	}
	fclose(f);
}

static int pid_real_uid(pid_t pid, uid_t *uid)
{
	char file[64], line[256];
	int ret = -ESRCH;
	FILE *f;

	snprintf(file, sizeof(file), "/proc/%d/status", (int)pid);
	f = fopen(file, "re");
	if (!f)
		return -ESRCH;
	while (fgets(line, sizeof(line), f)) {
		unsigned u;

		if (sscanf(line, "Uid: %u", &u) == 1) {
			*uid = (uid_t)u;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* Does the cgroup hold any process but pid? */
static bool cgroup_shared(const char *path, pid_t pid)
{
	char file[PATH_MAX + 32];
	bool shared = false;
	FILE *f;
	int other;

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	f = fopen(file, "re");
	if (!f)
		return true;
	while (fscanf(f, "%d", &other) == 1)
		if (other != (int)pid)
			shared = true;
	fclose(f);
	return shared;
}

/* Does the cgroup have cgroups below it? */
static bool cgroup_has_descendants(const char *path)
{
	char file[PATH_MAX + 32], line[64];
	bool has = true; /* when in doubt, shared */
	FILE *f;
	unsigned long n;

	snprintf(file, sizeof(file), "%s/cgroup.stat", path);
	f = fopen(file, "re");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nr_descendants %lu", &n) == 1)
			has = n > 0;
	fclose(f);
	return has;
}

int cgf_control_pid_cgroup(pid_t pid, uid_t peer_uid, char *path, size_t len, uint64_t *id,
			   bool *made, char *err)
{
	char cg[PATH_MAX], root[PATH_MAX], dir[PATH_MAX + 64];
	uint64_t root_id = 0;
	uid_t owner;
	int ret;

	*made = false;
	if (pid_real_uid(pid, &owner))
		return fail(err, CGF_ERR_LEN, -ESRCH, "no process %d", (int)pid);
	if (peer_uid != 0 && owner != peer_uid)
		return fail(err, CGF_ERR_LEN, -EPERM, "process %d belongs to uid %u, not to uid %u",
			    (int)pid, (unsigned)owner, (unsigned)peer_uid);
	cgf_control_pid_cgroup_path(pid, cg, sizeof(cg));
	if (!cg[0])
		return fail(err, CGF_ERR_LEN, -ESRCH,
			    "cannot read the cgroup of process %d (gone, or no cgroup2)", (int)pid);
	ret = cgf_cgroup2_root(root, sizeof(root), err);
	if (ret)
		return ret;
	cgf_cgroup_id(root, &root_id);
	if (cgf_cgroup_id(cg, id))
		return fail(err, CGF_ERR_LEN, -ESRCH, "cgroup '%s' of process %d is gone", cg,
			    (int)pid);
	/*
	 * A fence covers the cgroups below too: for a peer that is not root, a
	 * cgroup with any below it is shared (they may hold other uids' processes).
	 */
	if (*id != root_id && !cgroup_shared(cg, pid) &&
	    (peer_uid == 0 || !cgroup_has_descendants(cg))) {
		if (strlen(cg) >= len)
			return fail(err, CGF_ERR_LEN, -ENAMETOOLONG, "cgroup path too long");
		strcpy(path, cg);
		return 0;
	}
	/* Never fence a shared cgroup: the process gets one of its own. */
	snprintf(dir, sizeof(dir), "%s/cgfence", root);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return fail(err, CGF_ERR_LEN, -errno, "cannot create cgroup '%s': %s", dir,
			    strerror(errno));
	if ((size_t)snprintf(path, len, "%s/pid-%d", dir, (int)pid) >= len)
		return fail(err, CGF_ERR_LEN, -ENAMETOOLONG, "cgroup path too long");
	if (mkdir(path, 0755))
		return fail(err, CGF_ERR_LEN, -errno, "cannot create cgroup '%s': %s", path,
			    strerror(errno));
	if (cgf_cgroup_id(path, id)) {
		rmdir(path);
		return fail(err, CGF_ERR_LEN, -EIO, "cannot read the id of cgroup '%s'", path);
	}
	*made = true;
	return 0;
}

int cgf_control_move_pid(pid_t pid, const char *cgroup_path, char *err)
{
	char file[PATH_MAX + 32], buf[32];
	int fd, n;

	snprintf(file, sizeof(file), "%s/cgroup.procs", cgroup_path);
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, CGF_ERR_LEN, -errno, "cannot open '%s': %s", file, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, (size_t)n) != n) {
		int ret = -errno;

		close(fd);
		return fail(err, CGF_ERR_LEN, ret, "cannot move process %d into '%s': %s",
			    (int)pid, cgroup_path, strerror(-ret));
	}
	close(fd);
	return 0;
}

const char *cgf_control_socket(const char *given)
{
	const char *env = getenv("CGFENCE_SOCKET");

	if (given)
		return given;
	return env && *env ? env : CGF_SOCKET_DEFAULT;
}

/* A small line reader: the client has one connection at a time. */
static char rbuf[1 << 16];
static size_t rlen;
static int rfd = -1;

int cgf_control_read_line(int fd, int timeout_ms, json_t **out, char *err, size_t errlen)
{
	char *line = NULL, *nl;
	size_t len = 0;
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (fd != rfd) {
		rfd = fd;
		rlen = 0;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = timeout_ms;
		ssize_t n;

		nl = memchr(rbuf, '\n', rlen);
		if (nl || rlen == sizeof(rbuf)) {
			size_t take = nl ? (size_t)(nl - rbuf) : rlen;
			char *grown = realloc(line, len + take + 1);

			if (!grown) {
				free(line);
				return fail(err, errlen, -ENOMEM, "out of memory");
			}
			line = grown;
			memcpy(line + len, rbuf, take);
			len += take;
			line[len] = '\0';
			take += nl ? 1 : 0;
			memmove(rbuf, rbuf + take, rlen - take);
			rlen -= take;
			if (nl)
				break;
			continue;
		}
		if (timeout_ms >= 0) {
			struct timespec now;
			long spent;

			clock_gettime(CLOCK_MONOTONIC, &now);
			spent = (now.tv_sec - start.tv_sec) * 1000 +
				(now.tv_nsec - start.tv_nsec) / 1000000;
			wait = spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
		}
		n = poll(&pfd, 1, wait);
		if (n == 0) {
			free(line);
			return fail(err, errlen, -ETIMEDOUT, "no answer from cgfenced within %d ms",
				    timeout_ms);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(line);
			return fail(err, errlen, -errno, "poll: %s", strerror(errno));
		}
		n = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);
		if (n <= 0) {
			free(line);
			if (n == 0)
				return fail(err, errlen, -ECONNRESET, "cgfenced closed the connection");
			return fail(err, errlen, -errno, "cannot read from cgfenced: %s",
				    strerror(errno));
		}
		rlen += (size_t)n;
	}
	{
		json_error_t jerr;

		*out = json_loads(line, 0, &jerr);
		free(line);
		if (!*out)
			return fail(err, errlen, -EPROTO, "malformed answer from cgfenced: %s",
				    jerr.text);
	}
	return 0;
}

int cgf_control_call(const char *socket_path, json_t *request, int timeout_ms, json_t **reply,
		     int *fd_out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *line;
	size_t len, off = 0;
	int fd, ret;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return fail(err, errlen, -ENAMETOOLONG, "socket path '%s' too long", socket_path);
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(fd);
		return fail(err, errlen, ret, "cannot reach cgfenced at '%s': %s", socket_path,
			    strerror(-ret));
	}
	line = json_dumps(request, JSON_COMPACT);
	if (!line) {
		close(fd);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	len = strlen(line);
	line[len++] = '\n'; /* json_dumps leaves room: the NUL */
	while (off < len) {
		/* no SIGPIPE: a daemon that refused us (busy) closed after saying why */
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			free(line);
			if ((ret == -EPIPE || ret == -ECONNRESET) &&
			    cgf_control_read_line(fd, 1000, reply, err, errlen) == 0) {
				close(fd); /* its reply: the reason (nothing more comes) */
				return 0;
			}
			close(fd);
			return fail(err, errlen, ret, "cannot write to cgfenced: %s", strerror(-ret));
		}
		off += (size_t)n;
	}
	free(line);
	ret = cgf_control_read_line(fd, timeout_ms, reply, err, errlen);
	if (ret || !fd_out)
		close(fd);
	else
		*fd_out = fd;
	return ret;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tamper: from inside a fence, try every bpf() command that could detach,
 * replace or change the fence, and report each attempt:
 *
 *	ATTEMPT<TAB>TARGET<TAB>RESULT
 *
 * RESULT is "refused ENAME", "SUCCEEDED" (a breach) or "SUCCEEDED (harmless:
 * REASON)" for attempts whose success does not weaken the fence (a query
 * that reveals ids but no fds, the attacker's own program added with
 * BPF_F_ALLOW_MULTI or as a link, which is ANDed with ours, a read-only map
 * fd).  The last line is "tamper: N attempts, M breaches".  Exit status: 0 when
 * no breach-class attempt succeeded, 1 otherwise, 2 on usage errors.
 *
 * Usage: tamper --cgroup PATH [--prog-id N]... [--map-id N]... [--link-id N]...
 *               [--pin PATH]... [--scan-bpffs]
 *
 * Every fd obtained (by id, by pin, by scanning each bpffs in
 * /proc/self/mountinfo) is then used as an attacker would: links are updated
 * with every prog fd at hand and detached, maps get an all-allowing entry at
 * key 0 and lose their first key, progs are detached and attached with
 * flags 0, with BPF_F_ALLOW_MULTI and as a BPF_F_REPLACE target.  These are
 * real attempts: run it only against a fence built for the test, and give
 * --scan-bpffs only in a mount namespace whose bpffs holds nothing else (a
 * caller that can open pins there really detaches them).  What succeeds is
 * not undone, except that the tool's own attachments are removed again (own
 * links closed) right after the attempt that made them.
 *
 * Raw bpf(2) only; the constants come from <linux/bpf.h>.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cgfence.h"

#define EXIT_OK 0
#define EXIT_BREACH 1
#define EXIT_USAGE 2

#define MAX_IDS 64	      /* per kind, given plus discovered */
#define MAX_PINS 64
#define MAX_OBJS 256	      /* fds obtained by any means */
#define MAX_QUERY_IDS 64
#define MAX_SCAN_FILES 512    /* bpffs files tried, over all mounts */
#define MAX_SCAN_DEPTH 8
#define MAX_BPFFS 16	      /* distinct bpffs superblocks scanned */
#define MAX_ELEM_BYTES (4u << 20)
#define TARGET_LEN (PATH_MAX + 128)

/* ---- errno names ------------------------------------------------------ */

#define ENOTSUPP_KERNEL 524 /* kernel-internal, returned by some bpf paths */

static const struct {
	int num;
	const char *name;
} errno_names[] = {
#define E(x) { x, #x }
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(EBADF), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY),
	E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL),
	E(ENFILE), E(EMFILE), E(ENOSPC), E(EROFS), E(ERANGE), E(ENAMETOOLONG),
	E(ENOSYS), E(ELOOP), E(ENOLINK), E(EPROTO), E(EOVERFLOW),
	E(EBADFD), E(EOPNOTSUPP), E(ECANCELED), E(ETIMEDOUT),
#undef E
	{ ENOTSUPP_KERNEL, "ENOTSUPP" },
};

static const char *errno_name(int err)
{
	static char buf[16];
	size_t i;

	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].num == err)
			return errno_names[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* ---- bpf(2) ----------------------------------------------------------- */

/* Run one bpf() command: the result (>= 0) or -errno. */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long rc = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return rc < 0 ? -errno : (int)rc;
}

static __u64 ptr_to_u64(const void *p)
{
	return (__u64)(uintptr_t)p;
}

/* ---- reporting -------------------------------------------------------- */

/* Whether success of an attempt weakens the fence. */
enum severity {
	BREACH,	  /* must be refused */
	HARMLESS, /* may succeed; printed with the reason */
};

static unsigned n_attempts, n_breaches;

/*
 * Print one attempt.  RC is the bpf() result (>= 0 success, -errno refused).
 * REASON says why a success is harmless; SEV_IF_OK decides.
 */
static void report(const char *attempt, const char *target, int rc, enum severity sev_if_ok,
		   const char *reason)
{
	n_attempts++;
	if (rc < 0)
		printf("%s\t%s\trefused %s\n", attempt, target, errno_name(-rc));
	else if (sev_if_ok == HARMLESS)
		printf("%s\t%s\tSUCCEEDED (harmless: %s)\n", attempt, target, reason);
	else {
		n_breaches++;
		printf("%s\t%s\tSUCCEEDED\n", attempt, target);
	}
	fflush(stdout);
}

static void target_fmt(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void target_fmt(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, TARGET_LEN, fmt, ap);
	va_end(ap);
}

/* ---- the cgroup --------------------------------------------------------- */

/* The cgroup attach types a fence uses (and sock_ops, which it does not). */
static const struct cg_type {
	enum bpf_attach_type type;
	const char *name;
	enum bpf_prog_type prog_type;
} cg_types[] = {
	{ BPF_CGROUP_INET4_CONNECT, "inet4_connect", BPF_PROG_TYPE_CGROUP_SOCK_ADDR },
	{ BPF_CGROUP_INET6_CONNECT, "inet6_connect", BPF_PROG_TYPE_CGROUP_SOCK_ADDR },
	{ BPF_CGROUP_UDP4_SENDMSG, "udp4_sendmsg", BPF_PROG_TYPE_CGROUP_SOCK_ADDR },
	{ BPF_CGROUP_UDP6_SENDMSG, "udp6_sendmsg", BPF_PROG_TYPE_CGROUP_SOCK_ADDR },
	{ BPF_CGROUP_INET_EGRESS, "inet_egress", BPF_PROG_TYPE_CGROUP_SKB },
	{ BPF_CGROUP_SOCK_OPS, "sock_ops", BPF_PROG_TYPE_SOCK_OPS },
};

#define N_CG_TYPES (sizeof(cg_types) / sizeof(cg_types[0]))

/* The cgroup, opened both ways an attacker can open it. */
static struct {
	const char *path;
	int rdonly; /* O_RDONLY|O_DIRECTORY, or -1 */
	int opath;  /* O_PATH, or -1 (enough for attach/detach: fdget_raw) */
} cg = { .rdonly = -1, .opath = -1 };

/* The fd to attach and query through: whichever could be opened. */
static int cg_fd(void)
{
	return cg.rdonly >= 0 ? cg.rdonly : cg.opath;
}

static void open_cgroup(void)
{
	char target[TARGET_LEN];

	cg.rdonly = open(cg.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	target_fmt(target, "%s O_RDONLY|O_DIRECTORY", cg.path);
	report("OPEN_CGROUP", target, cg.rdonly < 0 ? -errno : 0, HARMLESS,
	       "a cgroup fd alone cannot detach link or multi attachments");
	cg.opath = open(cg.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	target_fmt(target, "%s O_PATH", cg.path);
	report("OPEN_CGROUP", target, cg.opath < 0 ? -errno : 0, HARMLESS,
	       "a cgroup fd alone cannot detach link or multi attachments");
}

static int prog_detach(int cgfd, int prog_fd, enum bpf_attach_type type)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (__u32)cgfd;
	attr.attach_bpf_fd = (__u32)prog_fd;
	attr.attach_type = type;
	return sys_bpf(BPF_PROG_DETACH, &attr);
}

static int prog_attach(int cgfd, int prog_fd, enum bpf_attach_type type, __u32 flags,
		       int replace_fd)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (__u32)cgfd;
	attr.attach_bpf_fd = (__u32)prog_fd;
	attr.attach_type = type;
	attr.attach_flags = flags;
	attr.replace_bpf_fd = (__u32)replace_fd;
	return sys_bpf(BPF_PROG_ATTACH, &attr);
}

/*
 * BPF_PROG_DETACH without a program: on a legacy (flags 0 / OVERRIDE)
 * attachment this removes it, whoever asks (security.md §0.1).
 */
static void try_detach_without_prog(void)
{
	static const struct {
		const char *how;
		int *fd;
	} fds[] = { { "O_PATH", &cg.opath }, { "O_RDONLY", &cg.rdonly } };
	static const int prog_fds[] = { -1, 0 };
	char target[TARGET_LEN];
	size_t f, t, p;

	for (f = 0; f < sizeof(fds) / sizeof(fds[0]); f++) {
		if (*fds[f].fd < 0)
			continue;
		for (t = 0; t < N_CG_TYPES; t++)
			for (p = 0; p < sizeof(prog_fds) / sizeof(prog_fds[0]); p++) {
				target_fmt(target, "cgroup(%s) type=%s attach_bpf_fd=%d",
					   fds[f].how, cg_types[t].name, prog_fds[p]);
				report("PROG_DETACH", target,
				       prog_detach(*fds[f].fd, prog_fds[p], cg_types[t].type),
				       BREACH, NULL);
			}
	}
}

/* ---- ids ---------------------------------------------------------------- */

struct id_list {
	__u32 ids[MAX_IDS];
	unsigned n;
};

static struct id_list prog_ids, map_ids, link_ids;

static void id_add(struct id_list *l, __u32 id)
{
	unsigned i;

	for (i = 0; i < l->n; i++)
		if (l->ids[i] == id)
			return;
	if (l->n < MAX_IDS)
		l->ids[l->n++] = id;
}

/*
 * BPF_PROG_QUERY, plain and effective: informational, it reveals ids but no
 * fds.  The ids found are added to the ones tried with GET_FD_BY_ID.
 */
static void try_query(void)
{
	static const struct {
		__u32 flags;
		const char *name;
	} modes[] = { { 0, "attached" }, { BPF_F_QUERY_EFFECTIVE, "effective" } };
	char target[TARGET_LEN], reason[256];
	__u32 ids[MAX_QUERY_IDS];
	union bpf_attr attr;
	size_t t, m;
	unsigned i;
	int rc, len;

	if (cg_fd() < 0)
		return;
	for (t = 0; t < N_CG_TYPES; t++)
		for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			memset(&attr, 0, sizeof(attr));
			attr.query.target_fd = (__u32)cg_fd();
			attr.query.attach_type = cg_types[t].type;
			attr.query.query_flags = modes[m].flags;
			attr.query.prog_ids = ptr_to_u64(ids);
			attr.query.prog_cnt = MAX_QUERY_IDS;
			rc = sys_bpf(BPF_PROG_QUERY, &attr);
			len = snprintf(reason, sizeof(reason), "reveals ids, not fds: flags=0x%x ids=",
				       attr.query.attach_flags);
			for (i = 0; rc >= 0 && i < attr.query.prog_cnt && i < MAX_QUERY_IDS; i++) {
				id_add(&prog_ids, ids[i]);
				if (len > 0 && (size_t)len < sizeof(reason))
					len += snprintf(reason + len, sizeof(reason) - (size_t)len,
							"%s%u", i ? "," : "", ids[i]);
			}
			if (rc >= 0 && attr.query.prog_cnt == 0)
				snprintf(reason, sizeof(reason), "reveals ids, not fds: none attached");
			target_fmt(target, "cgroup type=%s %s", cg_types[t].name, modes[m].name);
			report("PROG_QUERY", target, rc, HARMLESS, reason);
		}
}

/* ---- objects obtained ------------------------------------------------------ */

enum obj_kind { KIND_UNKNOWN, KIND_PROG, KIND_MAP, KIND_LINK };

static const char *const kind_names[] = {
	[KIND_UNKNOWN] = "object", [KIND_PROG] = "prog", [KIND_MAP] = "map", [KIND_LINK] = "link",
};

struct obj {
	int fd;
	enum obj_kind kind;
	char name[TARGET_LEN]; /* how it was obtained */
};

static struct obj objs[MAX_OBJS];
static unsigned n_objs;

/* The kind of a bpf fd, from the anon inode name /proc/self/fd shows. */
static enum obj_kind fd_kind(int fd)
{
	char path[64], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return KIND_UNKNOWN;
	link[n] = '\0';
	if (strstr(link, "bpf-prog"))
		return KIND_PROG;
	if (strstr(link, "bpf-map"))
		return KIND_MAP;
	if (strstr(link, "bpf_link") || strstr(link, "bpf-link"))
		return KIND_LINK;
	return KIND_UNKNOWN;
}

static void obj_add(int fd, enum obj_kind kind, const char *name)
{
	if (n_objs == MAX_OBJS) {
		fprintf(stderr, "tamper: more than %d fds obtained, not using %s\n", MAX_OBJS,
			name);
		close(fd);
		return;
	}
	objs[n_objs].fd = fd;
	objs[n_objs].kind = kind == KIND_UNKNOWN ? fd_kind(fd) : kind;
	snprintf(objs[n_objs].name, sizeof(objs[n_objs].name), "%s", name);
	n_objs++;
}

/* BPF_{PROG,MAP,LINK}_GET_FD_BY_ID for every id, and *_GET_NEXT_ID from 0. */
static void try_ids(void)
{
	static const struct {
		const char *get_fd, *next_id;
		int get_fd_cmd, next_id_cmd;
		enum obj_kind kind;
		struct id_list *ids;
	} kinds[] = {
		{ "PROG_GET_FD_BY_ID", "PROG_GET_NEXT_ID", BPF_PROG_GET_FD_BY_ID,
		  BPF_PROG_GET_NEXT_ID, KIND_PROG, &prog_ids },
		{ "MAP_GET_FD_BY_ID", "MAP_GET_NEXT_ID", BPF_MAP_GET_FD_BY_ID,
		  BPF_MAP_GET_NEXT_ID, KIND_MAP, &map_ids },
		{ "LINK_GET_FD_BY_ID", "LINK_GET_NEXT_ID", BPF_LINK_GET_FD_BY_ID,
		  BPF_LINK_GET_NEXT_ID, KIND_LINK, &link_ids },
	};
	char target[TARGET_LEN];
	union bpf_attr attr;
	size_t k;
	unsigned i;
	int rc;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (i = 0; i < kinds[k].ids->n; i++) {
			memset(&attr, 0, sizeof(attr));
			attr.prog_id = kinds[k].ids->ids[i]; /* same field for all three */
			rc = sys_bpf(kinds[k].get_fd_cmd, &attr);
			target_fmt(target, "%s id %u", kind_names[kinds[k].kind],
				   kinds[k].ids->ids[i]);
			report(kinds[k].get_fd, target, rc, BREACH, NULL);
			if (rc >= 0)
				obj_add(rc, kinds[k].kind, target);
		}
		/* Enumeration needs CAP_SYS_ADMIN: reveals no fd, never opened here. */
		memset(&attr, 0, sizeof(attr));
		attr.start_id = 0;
		rc = sys_bpf(kinds[k].next_id_cmd, &attr);
		if (rc >= 0)
			target_fmt(target, "start_id=0 (next_id=%u)", attr.next_id);
		else
			target_fmt(target, "start_id=0");
		report(kinds[k].next_id, target, rc, BREACH, NULL);
	}
}

/* ---- pins ------------------------------------------------------------------ */

/*
 * BPF_OBJ_GET read-write (a breach) and read-only.  A read-only fd is only
 * possible for maps (the kernel refuses it for progs and links) and only
 * reveals the allowlist.
 */
static void try_obj_get(const char *path)
{
	char target[TARGET_LEN];
	union bpf_attr attr;
	enum obj_kind kind;
	int rc;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = ptr_to_u64(path);
	rc = sys_bpf(BPF_OBJ_GET, &attr);
	target_fmt(target, "pin %s", path);
	report("OBJ_GET", target, rc, BREACH, NULL);
	if (rc >= 0)
		obj_add(rc, KIND_UNKNOWN, target);

	memset(&attr, 0, sizeof(attr));
	attr.pathname = ptr_to_u64(path);
	attr.file_flags = BPF_F_RDONLY;
	rc = sys_bpf(BPF_OBJ_GET, &attr);
	kind = rc >= 0 ? fd_kind(rc) : KIND_UNKNOWN;
	target_fmt(target, "pin %s", path);
	report("OBJ_GET_RDONLY", target, rc, kind == KIND_MAP ? HARMLESS : BREACH,
	       "read-only map fd: reads the allowlist, cannot change it");
	if (rc >= 0) {
		target_fmt(target, "pin %s (read-only fd)", path);
		obj_add(rc, kind, target);
	}
}

static unsigned scanned_files;

static void scan_dir(const char *dir, int depth)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (depth > MAX_SCAN_DEPTH)
		return;
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "tamper: cannot list %s: %s\n", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) && scanned_files < MAX_SCAN_FILES) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			scan_dir(path, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			scanned_files++;
			try_obj_get(path);
		}
	}
	if (scanned_files >= MAX_SCAN_FILES)
		fprintf(stderr, "tamper: stopped after %d bpffs files\n", MAX_SCAN_FILES);
	closedir(d);
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* OBJ_GET every file of every bpffs mount (each superblock once). */
static void scan_bpffs(void)
{
	char line[4096], devs[MAX_BPFFS][32], mnt[PATH_MAX];
	unsigned n_devs = 0, i;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		fprintf(stderr, "tamper: cannot read /proc/self/mountinfo: %s\n",
			strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char *fields[5], *sep, *save = NULL, *tok;
		int nf = 0;

		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPER" */
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "bpf ", 4) != 0)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok && nf < 5; tok = strtok_r(NULL, " ", &save))
			fields[nf++] = tok;
		if (nf < 5)
			continue;
		for (i = 0; i < n_devs; i++)
			if (!strcmp(devs[i], fields[2]))
				break;
		if (i < n_devs || n_devs == MAX_BPFFS)
			continue;
		snprintf(devs[n_devs++], sizeof(devs[0]), "%s", fields[2]);
		snprintf(mnt, sizeof(mnt), "%s", fields[4]);
		unescape_mountinfo(mnt);
		fprintf(stderr, "tamper: scanning bpffs at %s\n", mnt);
		scan_dir(mnt, 0);
	}
	fclose(f);
	if (n_devs == 0)
		fprintf(stderr, "tamper: no bpffs mounted in this mount namespace\n");
}

/* ---- the attacker's own programs ---------------------------------------------- */

/* r0 = 1; exit: allow everything. */
static const struct bpf_insn allow_all[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
	{ .code = BPF_JMP | BPF_EXIT },
};

static const struct own_prog {
	const char *name;
	enum bpf_prog_type type;
	enum bpf_attach_type attach;
} own_progs[] = {
	{ "cgroup_skb/egress allow-all", BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS },
	{ "cgroup/connect4 allow-all", BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
	  BPF_CGROUP_INET4_CONNECT },
};

#define N_OWN (sizeof(own_progs) / sizeof(own_progs[0]))

static int own_fds[N_OWN]; /* fd, or -errno when the load was refused */

static void load_own_progs(void)
{
	union bpf_attr attr;
	size_t i;
	int rc;

	for (i = 0; i < N_OWN; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.prog_type = own_progs[i].type;
		attr.expected_attach_type = own_progs[i].attach;
		attr.insns = ptr_to_u64(allow_all);
		attr.insn_cnt = sizeof(allow_all) / sizeof(allow_all[0]);
		attr.license = ptr_to_u64("GPL");
		rc = sys_bpf(BPF_PROG_LOAD, &attr);
		report("PROG_LOAD", own_progs[i].name, rc, HARMLESS,
		       "own program, not attached by loading");
		own_fds[i] = rc;
	}
}

/* Remove an attachment of the tool's own program again. */
static void undo_attach(int prog_fd, enum bpf_attach_type type, const char *what)
{
	int rc = prog_detach(cg_fd(), prog_fd, type);

	if (rc < 0)
		fprintf(stderr, "tamper: could not detach own %s again: %s\n", what,
			errno_name(-rc));
}

/*
 * Attach the own programs: with BPF_F_ALLOW_MULTI and as a link they are
 * only added (programs run ANDed), with flags 0 an attach would have to
 * replace the fence's program.
 */
static void attach_own_progs(void)
{
	char target[TARGET_LEN];
	union bpf_attr attr;
	size_t i;
	int rc;

	if (cg_fd() < 0)
		return;
	for (i = 0; i < N_OWN; i++) {
		if (own_fds[i] < 0)
			continue;
		target_fmt(target, "cgroup %s, own %s", cg.path, own_progs[i].name);

		rc = prog_attach(cg_fd(), own_fds[i], own_progs[i].attach, BPF_F_ALLOW_MULTI, 0);
		report("PROG_ATTACH_MULTI", target, rc, HARMLESS,
		       "own program added, ANDed with the fence's");
		if (rc >= 0)
			undo_attach(own_fds[i], own_progs[i].attach, own_progs[i].name);

		rc = prog_attach(cg_fd(), own_fds[i], own_progs[i].attach, 0, 0);
		report("PROG_ATTACH_FLAGS0", target, rc, BREACH, NULL);
		if (rc >= 0)
			undo_attach(own_fds[i], own_progs[i].attach, own_progs[i].name);

		memset(&attr, 0, sizeof(attr));
		attr.link_create.prog_fd = (__u32)own_fds[i];
		attr.link_create.target_fd = (__u32)cg_fd();
		attr.link_create.attach_type = own_progs[i].attach;
		rc = sys_bpf(BPF_LINK_CREATE, &attr);
		report("LINK_CREATE", target, rc, HARMLESS,
		       "own link added, multi-attached and ANDed with the fence's");
		if (rc >= 0)
			close(rc); /* unpinned: closing the only fd detaches it */
	}
}

/* ---- using what was obtained ---------------------------------------------------- */

/* LINK_UPDATE with every prog fd at hand, then LINK_DETACH. */
static void abuse_link(const struct obj *o)
{
	char target[TARGET_LEN];
	union bpf_attr attr;
	unsigned i;
	size_t k;
	int rc;

	for (k = 0; k < N_OWN; k++) {
		if (own_fds[k] < 0)
			continue;
		memset(&attr, 0, sizeof(attr));
		attr.link_update.link_fd = (__u32)o->fd;
		attr.link_update.new_prog_fd = (__u32)own_fds[k];
		rc = sys_bpf(BPF_LINK_UPDATE, &attr);
		target_fmt(target, "%s -> own %s", o->name, own_progs[k].name);
		report("LINK_UPDATE", target, rc, BREACH, NULL);
	}
	for (i = 0; i < n_objs; i++) {
		if (objs[i].kind != KIND_PROG)
			continue;
		memset(&attr, 0, sizeof(attr));
		attr.link_update.link_fd = (__u32)o->fd;
		attr.link_update.new_prog_fd = (__u32)objs[i].fd;
		rc = sys_bpf(BPF_LINK_UPDATE, &attr);
		target_fmt(target, "%s -> %s", o->name, objs[i].name);
		report("LINK_UPDATE", target, rc, BREACH, NULL);
	}

	memset(&attr, 0, sizeof(attr));
	attr.link_detach.link_fd = (__u32)o->fd;
	report("LINK_DETACH", o->name, sys_bpf(BPF_LINK_DETACH, &attr), BREACH, NULL);
}

static bool is_percpu_map(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

/* Possible CPUs, as the kernel sizes per-CPU values ("0-3,5" format). */
static unsigned possible_cpus(void)
{
	unsigned n = 0, lo, hi;
	char buf[256], *p = buf;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	bool ok = f && fgets(buf, sizeof(buf), f);
	long conf;

	if (f)
		fclose(f);
	if (!ok) {
		conf = sysconf(_SC_NPROCESSORS_CONF);
		return conf > 0 ? (unsigned)conf : 1;
	}
	while (*p) {
		int used = 0;

		if (sscanf(p, "%u-%u%n", &lo, &hi, &used) == 2 && used > 0)
			n += hi - lo + 1;
		else if (sscanf(p, "%u%n", &lo, &used) == 1 && used > 0)
			n++;
		else
			break;
		p += used;
		if (*p != ',')
			break;
		p++;
	}
	return n ? n : 1;
}

/*
 * Delete the map's first key, then write an all-allowing value at the zero
 * key ({prefixlen 0, addr 0} for the allowlist tries).
 */
static void abuse_map(const struct obj *o)
{
	struct bpf_map_info info;
	char target[TARGET_LEN];
	union bpf_attr attr;
	size_t vsize;
	void *key, *next, *value;
	int rc;

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (__u32)o->fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = ptr_to_u64(&info);
	rc = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
	if (rc < 0) {
		fprintf(stderr, "tamper: no map info for %s: %s\n", o->name, errno_name(-rc));
		return;
	}
	vsize = info.value_size;
	if (is_percpu_map(info.type))
		vsize = ((vsize + 7) & ~(size_t)7) * possible_cpus();
	if (info.key_size > MAX_ELEM_BYTES || vsize > MAX_ELEM_BYTES) {
		fprintf(stderr, "tamper: %s has oversized elements, skipped\n", o->name);
		return;
	}
	key = calloc(1, info.key_size + 1);
	next = calloc(1, info.key_size + 1);
	value = calloc(1, vsize + 1);
	if (!key || !next || !value) {
		fprintf(stderr, "tamper: out of memory\n");
		goto out;
	}
	if (info.value_size == sizeof(struct cgf_allow) && !is_percpu_map(info.type)) {
		struct cgf_allow *allow = value;

		allow->n_ranges = 1;
		allow->ranges[0].port_lo = 0;
		allow->ranges[0].port_hi = 65535;
		allow->ranges[0].protos = CGF_PROTO_ANY;
	}

	/* The first key, if the map lets us read one; else the zero key. */
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)o->fd;
	attr.key = 0;
	attr.next_key = ptr_to_u64(next);
	rc = sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr);
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)o->fd;
	attr.key = ptr_to_u64(rc >= 0 ? next : key);
	target_fmt(target, "%s %s key", o->name, rc >= 0 ? "first" : "zero");
	report("MAP_DELETE_ELEM", target, sys_bpf(BPF_MAP_DELETE_ELEM, &attr), BREACH, NULL);

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)o->fd;
	attr.key = ptr_to_u64(key);
	attr.value = ptr_to_u64(value);
	attr.flags = BPF_ANY;
	target_fmt(target, "%s zero key, %s value", o->name,
		   info.value_size == sizeof(struct cgf_allow) ? "allow-all" : "zeroed");
	report("MAP_UPDATE_ELEM", target, sys_bpf(BPF_MAP_UPDATE_ELEM, &attr), BREACH, NULL);
out:
	free(key);
	free(next);
	free(value);
}

/*
 * A prog fd of the fence: detach it by fd, attach it (flags 0 would replace
 * what is there; ALLOW_MULTI only adds a copy), and replace it with the own
 * allow-all program (BPF_F_REPLACE).
 */
static void abuse_prog(const struct obj *o)
{
	char target[TARGET_LEN];
	struct bpf_prog_info info;
	union bpf_attr attr;
	size_t t, k;
	int rc;

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (__u32)o->fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = ptr_to_u64(&info);
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0 || cg_fd() < 0)
		return;
	for (t = 0; t < N_CG_TYPES; t++) {
		if (cg_types[t].prog_type != info.type)
			continue;
		target_fmt(target, "cgroup type=%s, %s", cg_types[t].name, o->name);
		report("PROG_DETACH", target, prog_detach(cg_fd(), o->fd, cg_types[t].type),
		       BREACH, NULL);

		rc = prog_attach(cg_fd(), o->fd, cg_types[t].type, BPF_F_ALLOW_MULTI, 0);
		report("PROG_ATTACH_MULTI", target, rc, HARMLESS,
		       "only adds a program, ANDed with the fence's");
		if (rc >= 0)
			undo_attach(o->fd, cg_types[t].type, o->name);

		/* Not undone: detaching the fence's program would be worse. */
		rc = prog_attach(cg_fd(), o->fd, cg_types[t].type, 0, 0);
		report("PROG_ATTACH_FLAGS0", target, rc, BREACH, NULL);

		for (k = 0; k < N_OWN; k++) {
			if (own_fds[k] < 0 || own_progs[k].attach != cg_types[t].type)
				continue;
			rc = prog_attach(cg_fd(), own_fds[k], cg_types[t].type,
					 BPF_F_ALLOW_MULTI | BPF_F_REPLACE, o->fd);
			target_fmt(target, "cgroup type=%s, %s replaced by own %s",
				   cg_types[t].name, o->name, own_progs[k].name);
			report("PROG_ATTACH_REPLACE", target, rc, BREACH, NULL);
		}
	}
}

/*
 * Programs first, links last: a link detached early would let later attach
 * attempts succeed on an emptied cgroup and hide what they would do to the
 * intact fence.
 */
static void abuse_objects(void)
{
	static const enum obj_kind order[] = { KIND_PROG, KIND_MAP, KIND_UNKNOWN, KIND_LINK };
	unsigned i;
	size_t k;

	for (k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		for (i = 0; i < n_objs; i++) {
			if (objs[i].kind != order[k])
				continue;
			switch (objs[i].kind) {
			case KIND_PROG:
				abuse_prog(&objs[i]);
				break;
			case KIND_MAP:
				abuse_map(&objs[i]);
				break;
			case KIND_LINK:
				abuse_link(&objs[i]);
				break;
			case KIND_UNKNOWN:
				fprintf(stderr, "tamper: cannot tell what %s is; trying all\n",
					objs[i].name);
				abuse_prog(&objs[i]);
				abuse_map(&objs[i]);
				abuse_link(&objs[i]);
				break;
			}
		}
}

/* ---- main --------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: tamper --cgroup PATH [--prog-id N]... [--map-id N]... "
		   "[--link-id N]... [--pin PATH]... [--scan-bpffs]\n"
		   "prints ATTEMPT<TAB>TARGET<TAB>RESULT per attempt and a summary; "
		   "exit 0: no breach, 1: breach, 2: usage\n");
}

static bool parse_id(const char *s, __u32 *id)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v == 0 || v > UINT32_MAX)
		return false;
	*id = (__u32)v;
	return true;
}

/* Make sure fds 0-2 are open, so no bpf object can land on fd 0. */
static void fill_std_fds(void)
{
	int fd;

	do {
		fd = open("/dev/null", O_RDWR);
	} while (fd >= 0 && fd <= 2);
	if (fd > 2)
		close(fd);
}

int main(int argc, char **argv)
{
	const char *pins[MAX_PINS];
	unsigned n_pins = 0, i;
	bool scan = false;
	struct id_list *list;
	__u32 id;
	int a;

	for (a = 1; a < argc; a++) {
		const char *opt = argv[a];

		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			usage(stdout);
			return EXIT_OK;
		}
		if (!strcmp(opt, "--scan-bpffs")) {
			scan = true;
			continue;
		}
		if (a + 1 >= argc) {
			fprintf(stderr, "tamper: unknown option or missing value: %s\n", opt);
			usage(stderr);
			return EXIT_USAGE;
		}
		list = !strcmp(opt, "--prog-id") ? &prog_ids :
		       !strcmp(opt, "--map-id")	 ? &map_ids :
		       !strcmp(opt, "--link-id") ? &link_ids :
						   NULL;
		if (list) {
			if (!parse_id(argv[++a], &id)) {
				fprintf(stderr, "tamper: bad id '%s'\n", argv[a]);
				return EXIT_USAGE;
			}
			id_add(list, id);
		} else if (!strcmp(opt, "--cgroup")) {
			cg.path = argv[++a];
		} else if (!strcmp(opt, "--pin")) {
			if (n_pins == MAX_PINS) {
				fprintf(stderr, "tamper: at most %d --pin\n", MAX_PINS);
				return EXIT_USAGE;
			}
			pins[n_pins++] = argv[++a];
		} else {
			fprintf(stderr, "tamper: unknown option %s\n", opt);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!cg.path) {
		fprintf(stderr, "tamper: --cgroup is required\n");
		usage(stderr);
		return EXIT_USAGE;
	}

	fill_std_fds();
	open_cgroup();
	try_detach_without_prog();
	try_query();
	try_ids();
	for (i = 0; i < n_pins; i++)
		try_obj_get(pins[i]);
	if (scan)
		scan_bpffs();
	load_own_progs();
	attach_own_progs(); /* while the fence is still intact */
	abuse_objects();

	for (i = 0; i < n_objs; i++)
		close(objs[i].fd);
	for (i = 0; i < N_OWN; i++)
		if (own_fds[i] >= 0)
			close(own_fds[i]);
	if (cg.rdonly >= 0)
		close(cg.rdonly);
	if (cg.opath >= 0)
		close(cg.opath);

	printf("tamper: %u attempts, %u breaches\n", n_attempts, n_breaches);
	return n_breaches ? EXIT_BREACH : EXIT_OK;
}

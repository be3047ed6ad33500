// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Loading, attaching, pinning and syncing a fence; see fence.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "errmsg.h"
#include "fence.h"
#include "veth.h"
#include "cgfence.skel.h"
#include "boundary.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
/* tcx (6.6) postdates the uapi headers of Debian 12; the values are ABI. */
#ifndef BPF_F_BEFORE
#define BPF_F_BEFORE (1U << 3)
#endif
#define CGF_BPF_TCX_INGRESS 46
#define CGF_BPF_LINK_TYPE_TCX 11

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define fail(err, ret, ...) cgf_fail(err, CGF_ERR_LEN, ret, __VA_ARGS__)

/* ---- mounts ---------------------------------------------------------- */

/* Undoes the octal escapes (\040 for a space) of a mountinfo field. */
static void mountinfo_unescape(char *s)
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

int cgf_list_mounts(const char *fstype, struct cgf_mount *out, int max)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int n_out = 0;

	if (!f)
		return -errno;
	while (n_out < max && fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint opts [optional...] - fstype source superopts */
		char *sep = strstr(line, " - ");
		char *fields[5], *type, *opts;
		char *save = NULL, *tok;
		int n = 0;

		if (!sep)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok && n < 5; tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		if (n < 5)
			continue;
		save = NULL;
		type = strtok_r(sep + 3, " ", &save);
		strtok_r(NULL, " ", &save); /* source */
		opts = strtok_r(NULL, " \n", &save);
		if (!type || strcmp(type, fstype))
			continue;
		mountinfo_unescape(fields[4]);
		if (strlen(fields[4]) >= sizeof(out->path))
			continue;
		strcpy(out[n_out].path, fields[4]);
		snprintf(out[n_out].opts, sizeof(out->opts), "%s", opts ? opts : "");
		n_out++;
	}
	fclose(f);
	return n_out;
}

int cgf_find_mount(const char *fstype, char *path, size_t len)
{
	struct cgf_mount *m = malloc(sizeof(*m));
	int n;

	if (!m)
		return -ENOMEM;
	n = cgf_list_mounts(fstype, m, 1);
	if (n == 1 && strlen(m->path) >= len)
		n = -ENAMETOOLONG;
	else if (n == 1)
		strcpy(path, m->path);
	free(m);
	return n == 1 ? 0 : n < 0 ? n : -ENOENT;
}

int cgf_cgroup2_root(char *path, size_t len, char *err)
{
	int ret = cgf_find_mount("cgroup2", path, len);

	if (ret)
		return fail(err, ret, "no cgroup2 filesystem is mounted (checked /proc/self/mountinfo)");
	return 0;
}

static bool on_fs(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == magic;
}

int cgf_pin_root_prepare(const char *pin_root, char *err)
{
	char parent[PATH_MAX];
	char *slash;

	if (snprintf(parent, sizeof(parent), "%s", pin_root) >= (int)sizeof(parent))
		return fail(err, -ENAMETOOLONG, "pin directory '%s': path too long", pin_root);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return fail(err, -EINVAL, "pin directory '%s' must be a directory below a bpffs mount",
			    pin_root);
	*slash = '\0';
	if (!on_fs(parent, BPF_FS_MAGIC)) {
		/* Mount bpffs only where it belongs by convention; elsewhere say so. */
		if (strcmp(parent, "/sys/fs/bpf"))
			return fail(err, -ENOTDIR, "'%s' is not on a bpf filesystem", parent);
		if (mkdir(parent, 0700) && errno != EEXIST)
			return fail(err, -errno, "cannot create '%s': %s", parent, strerror(errno));
		if (mount("bpf", parent, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
			return fail(err, -errno, "cannot mount bpffs on '%s': %s", parent,
				    strerror(errno));
	}
	if (mkdir(pin_root, 0700) && errno != EEXIST)
		return fail(err, -errno, "cannot create '%s': %s", pin_root, strerror(errno));
	if (!on_fs(pin_root, BPF_FS_MAGIC))
		return fail(err, -ENOTDIR, "'%s' is not on a bpf filesystem", pin_root);
	return 0;
}

/* ---- cgroups --------------------------------------------------------- */

int cgf_cgroup_id(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return -errno;
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EPROTO;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

int cgf_cgroup_resolve(const char *given, char *path, size_t len, uint64_t *id, char *err)
{
	char root[PATH_MAX], buf[PATH_MAX], *real;
	uint64_t root_id;
	int ret;

	if (!given || !*given)
		return fail(err, -EINVAL, "empty cgroup path");
	ret = cgf_cgroup2_root(root, sizeof(root), err);
	if (ret)
		return ret;
	if (given[0] == '/' && on_fs(given, CGROUP2_SUPER_MAGIC))
		snprintf(buf, sizeof(buf), "%s", given);
	else if (snprintf(buf, sizeof(buf), "%s/%s", root, given) >= (int)sizeof(buf))
		return fail(err, -ENAMETOOLONG, "cgroup '%s': path too long", given);
	real = realpath(buf, NULL);
	if (!real)
		return fail(err, -errno, "cgroup '%s': %s", given, strerror(errno));
	if (!on_fs(real, CGROUP2_SUPER_MAGIC)) {
		ret = fail(err, -EINVAL, "cgroup '%s': '%s' is not on the cgroup2 filesystem", given,
			   real);
		goto out;
	}
	ret = cgf_cgroup_id(real, id);
	if (ret) {
		fail(err, ret, "cgroup '%s': cannot read its id: %s", given, strerror(-ret));
		goto out;
	}
	if (cgf_cgroup_id(root, &root_id) == 0 && root_id == *id) {
		ret = fail(err, -EINVAL,
			   "cgroup '%s' is the root cgroup: fencing it would fence the whole host",
			   given);
		goto out;
	}
	if (strlen(real) >= len) {
		ret = fail(err, -ENAMETOOLONG, "cgroup '%s': path too long", given);
		goto out;
	}
	strcpy(path, real);
out:
	free(real);
	return ret;
}

static uint64_t search_id;
static char *search_out;
static size_t search_len;

static int search_visit(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	uint64_t id;

	if (type != FTW_D)
		return 0;
	if (cgf_cgroup_id(fpath, &id) == 0 && id == search_id) {
		snprintf(search_out, search_len, "%s", fpath);
		return 1;
	}
	return 0;
}

int cgf_cgroup_path_of(uint64_t id, char *path, size_t len)
{
	char root[PATH_MAX];
	int ret = cgf_find_mount("cgroup2", root, sizeof(root));

	if (ret)
		return ret;
	search_id = id;
	search_out = path;
	search_len = len;
	ret = nftw(root, search_visit, 32, FTW_PHYS | FTW_MOUNT);
	return ret == 1 ? 0 : -ENOENT;
}

/* ---- the fence ------------------------------------------------------- */

/*
 * One family's allowlist: a trie for prefixes, a hash map for full-length
 * keys while it has room.  The hash map is sized per fence (its bucket array
 * costs memory for its whole capacity); a full-length key that finds it full
 * goes to the trie, where it is its own longest match: the same verdict.
 */
struct family_maps {
	int trie_fd;
	int exact_fd;
	size_t key_size; /* struct cgf_key4 or cgf_key6 */
	__u32 full;      /* 32 or 128: keys of this length live in the hash map */
	bool exact_full; /* the hash map said E2BIG during this batch of writes */
};

static bool fam_is_full(const struct family_maps *m, const void *key)
{
	__u32 prefixlen;

	memcpy(&prefixlen, key, sizeof(prefixlen));
	return prefixlen == m->full;
}

#define IN_TRIE 1 /* fam_put: a full-length key went to the trie */

/* What a writer knows of a key it is about to write. */
enum put_where {
	PUT_FRESH,  /* the maps were just created: they hold no entry at all (attach) */
	PUT_ABSENT, /* the maps hold no entry with this key, as far as the writer knows */
	PUT_ANY,    /* the key may live in either map */
};

/*
 * Writes one entry where it belongs; every write of an allowlist entry goes
 * through here.  A full-length key is in one map only: the exact map shadows
 * the trie, so a stale exact value would be a wrong verdict.  It is updated
 * in the exact map when it lives there, else inserted there, else, when that
 * is full, written to the trie.  A key that PUT_ANY moves from the trie to
 * the exact map is deleted from the trie once the exact map holds its new
 * value, so its verdict is the new one from the insert on.  Unless where is
 * PUT_ANY the look for where it lives is skipped (each look is a syscall
 * that fails, as dear as the write): a million entries are written with one
 * syscall each.  PUT_ABSENT trusts what the writer knows of the maps (its
 * written list) but inserts into the exact map with BPF_NOEXIST, so a key
 * found there after all takes the PUT_ANY way; one the trie holds unknown to
 * the writer while the exact map has room would be in both, the exact value
 * in force (the dump lists it once).
 *
 * Trie writes are BPF_ANY, and nothing here asks the trie whether it holds a
 * key: LPM tries ignored BPF_EXIST and BPF_NOEXIST (inserting, or
 * overwriting, either way) before Linux 6.13 and the stable kernels that took
 * its fix in December 2024, and a lookup answers with the longest match,
 * not the key.  Only the hash maps' flags are relied on.
 *
 * The steps are not one atomic operation: a fence has one writer at a time
 * (the attaching process, then cgfenced's event loop, which makes both its
 * syncs and the DNS proxy's grants).  Returns a negative errno, IN_TRIE when
 * a full-length key was written to the trie (the exact map was full), else 0.
 */
static int fam_put(struct family_maps *m, const void *key, const void *value,
		   enum put_where where)
{
	if (!fam_is_full(m, key))
		return bpf_map_update_elem(m->trie_fd, key, value, BPF_ANY) ? -errno : 0;
	/* where the exact map may hold the key: updated there */
	if (where == PUT_ANY || (where == PUT_ABSENT && m->exact_full)) {
		if (!bpf_map_update_elem(m->exact_fd, key, value, BPF_EXIST))
			return 0;
		if (errno != ENOENT)
			return -errno;
	}
	if (!m->exact_full) {
		if (!bpf_map_update_elem(m->exact_fd, key, value,
					 where == PUT_FRESH ? BPF_ANY : BPF_NOEXIST)) {
			/* shadowed now: a failed delete leaves it in both, the exact value in force */
			if (where == PUT_ANY)
				bpf_map_delete_elem(m->trie_fd, key);
			return 0;
		}
		if (errno == EEXIST && where == PUT_ABSENT)
			return fam_put(m, key, value, PUT_ANY);
		if (errno != E2BIG)
			return -errno;
		/* A delete elsewhere may make room again; the next batch tries again. */
		m->exact_full = true;
	}
	return bpf_map_update_elem(m->trie_fd, key, value, BPF_ANY) ? -errno : IN_TRIE;
}

/* Deletes one entry; a full-length key from both maps.  Absent is not an error. */
static int fam_del(const struct family_maps *m, const void *key)
{
	if (fam_is_full(m, key) && bpf_map_delete_elem(m->exact_fd, key) && errno != ENOENT)
		return -errno;
	if (bpf_map_delete_elem(m->trie_fd, key) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Reads the value of a key the maps hold (a full-length key from either map). */
static int fam_get(const struct family_maps *m, const void *key, void *value)
{
	if (fam_is_full(m, key) && !bpf_map_lookup_elem(m->exact_fd, key, value))
		return 0;
	return bpf_map_lookup_elem(m->trie_fd, key, value) ? -errno : 0;
}

static void fam_init(struct family_maps *m, int trie_fd, int exact_fd, int family)
{
	m->trie_fd = trie_fd;
	m->exact_fd = exact_fd;
	m->key_size = family == AF_INET ? sizeof(struct cgf_key4) : sizeof(struct cgf_key6);
	m->full = family == AF_INET ? 32 : 128;
	m->exact_full = false;
}

struct cgf_fence {
	uint64_t cgroup_id;
	bool audit;
	char policy[CGF_POLICY_NAME_MAX];
	char label[CGF_LABEL_MAX];
	struct cgf_endpoint dns[CGF_FENCE_DNS_MAX];
	size_t n_dns;
	bool dns_proxy;
	struct cgf_endpoint proxy4, proxy6;
	struct family_maps v4;
	struct family_maps v6;
	int config_fd;
	int stats_fd;
	int events_fd;
	struct cgf_config cfg; /* as pinned: protections, boundary */
	char dir[PATH_MAX];    /* its pins */
	/*
	 * What the maps hold, as this process last wrote or read them, sorted by
	 * key: a sync writes only the difference.
	 */
	struct cgf_allowlist written;
	bool have_written;
};

/*
 * Hooks, with the name of their pinned link ("link_connect4").  The last
 * ones only give DNS replies steered to the proxy their original address
 * back: attached to proxy-mode fences only, so that other fences pay nothing
 * on recvmsg and getpeername.
 */
#define CGF_PROGS(X)             \
	X(connect4, cgf_connect4) \
	X(connect6, cgf_connect6) \
	X(sendmsg4, cgf_sendmsg4) \
	X(sendmsg6, cgf_sendmsg6) \
	X(egress, cgf_egress) \
	X(recvmsg4, cgf_recvmsg4) \
	X(recvmsg6, cgf_recvmsg6) \
	X(getpeername4, cgf_getpeername4) \
	X(getpeername6, cgf_getpeername6)
#define CGF_PROGS_PROXY_FIRST 5 /* index of recvmsg4 above */

static const char *const map_pins[] = {
	CGF_PIN_ALLOW4, CGF_PIN_ALLOW6, CGF_PIN_EXACT4, CGF_PIN_EXACT6,
	CGF_PIN_CONFIG, CGF_PIN_STATS, CGF_PIN_EVENTS,
};

static const char *const link_pins[] = {
#define X(name, prog) CGF_PIN_LINK_PREFIX #name,
	CGF_PROGS(X)
#undef X
};

static const char *pin_root_or_default(const char *pin_root)
{
	return pin_root ? pin_root : CGF_PIN_ROOT_DEFAULT;
}

static int fence_dir(char *buf, size_t len, const char *pin_root, uint64_t id, const char *suffix)
{
	int n = snprintf(buf, len, "%s/%" PRIu64 "%s", pin_root_or_default(pin_root), id, suffix);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Detaches the link pinned at path, then removes the pin.  The pin alone
 * holds the link, but its removal releases the link only once bpffs frees
 * the inode, after an RCU grace period and a work item: a detach that only
 * unpinned would return with the programs still attached for a while.
 */
static int unpin_link(const char *path)
{
	int fd = bpf_obj_get(path);

	if (fd >= 0) {
		bpf_link_detach(fd); /* the unlink below still releases it, later */
		close(fd);
	}
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

/* Removes every pin a fence may have in dir (its links detached first), then dir itself. */
static int unpin_dir(const char *dir)
{
	char path[PATH_MAX + 64];
	int ret = 0, r;
	size_t i;

	for (i = 0; i < sizeof(link_pins) / sizeof(link_pins[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, link_pins[i]);
		if ((r = unpin_link(path)))
			ret = r;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CGF_PIN_BOUNDARY);
	if ((r = unpin_link(path)))
		ret = r;
	for (i = 0; i < sizeof(map_pins) / sizeof(map_pins[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_pins[i]);
		if (unlink(path) && errno != ENOENT)
			ret = -errno;
	}
	if (rmdir(dir) && errno != ENOENT)
		ret = -errno;
	return ret;
}

/* Serializes attach and remove across processes: a lock on the pin root. */
static int lock_pin_root(const char *pin_root, char *err)
{
	int fd = open(pin_root_or_default(pin_root), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, -errno, "cannot open '%s': %s", pin_root_or_default(pin_root),
			    strerror(errno));
	if (flock(fd, LOCK_EX)) {
		int ret = -errno;

		close(fd);
		return fail(err, ret, "cannot lock '%s': %s", pin_root_or_default(pin_root),
			    strerror(-ret));
	}
	return fd;
}

/* Fills the fresh maps of a new fence (nothing is attached to them yet). */
static int write_allowlist(struct family_maps *m4, struct family_maps *m6,
			   const struct cgf_allowlist *list, char *err)
{
	char addr[INET6_ADDRSTRLEN];
	size_t i;
	int ret;

	m4->exact_full = m6->exact_full = false;
	for (i = 0; i < list->n_v4; i++) {
		ret = fam_put(m4, &list->v4[i].key, &list->v4[i].value, PUT_FRESH);
		if (ret < 0) {
			inet_ntop(AF_INET, list->v4[i].key.addr, addr, sizeof(addr));
			return fail(err, ret, "cannot write allowlist entry %s/%u: %s", addr,
				    list->v4[i].key.prefixlen, strerror(-ret));
		}
	}
	for (i = 0; i < list->n_v6; i++) {
		ret = fam_put(m6, &list->v6[i].key, &list->v6[i].value, PUT_FRESH);
		if (ret < 0) {
			inet_ntop(AF_INET6, list->v6[i].key.addr, addr, sizeof(addr));
			return fail(err, ret, "cannot write allowlist entry %s/%u: %s", addr,
				    list->v6[i].key.prefixlen, strerror(-ret));
		}
	}
	return 0;
}

uint32_t cgf_exact_capacity(size_t n_full, uint32_t forced)
{
	size_t want = 2 * n_full, cap = CGF_EXACT_MIN_ENTRIES;

	if (forced)
		return forced < CGF_MAX_ENTRIES ? forced : CGF_MAX_ENTRIES;
	while (cap < want && cap < CGF_MAX_ENTRIES)
		cap *= 2;
	return cap < CGF_MAX_ENTRIES ? (uint32_t)cap : CGF_MAX_ENTRIES;
}

#define EXACT_CAPACITY_ENV "CGFENCE_EXACT_CAPACITY"

/*
 * Sizes the exact maps of a fence about to be loaded from its allowlist, or
 * from CGFENCE_EXACT_CAPACITY (a test knob: set, it must be a number from 1
 * to CGF_MAX_ENTRIES).
 */
static int size_exact_maps(struct cgfence_bpf *skel, const struct cgf_allowlist *list, char *err)
{
	const char *env = getenv(EXACT_CAPACITY_ENV);
	size_t full4 = 0, full6 = 0, i;
	uint32_t forced = 0;
	int ret;

	if (env && *env) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(env, &end, 10);
		if (errno || *end || env[0] == '-' || v < 1 || v > CGF_MAX_ENTRIES)
			return fail(err, -EINVAL, "%s='%s': not a number from 1 to %u",
				    EXACT_CAPACITY_ENV, env, CGF_MAX_ENTRIES);
		forced = (uint32_t)v;
	}
	for (i = 0; i < list->n_v4; i++)
		full4 += list->v4[i].key.prefixlen == 32;
	for (i = 0; i < list->n_v6; i++)
		full6 += list->v6[i].key.prefixlen == 128;
	ret = bpf_map__set_max_entries(skel->maps.cgf_exact4, cgf_exact_capacity(full4, forced));
	if (!ret)
		ret = bpf_map__set_max_entries(skel->maps.cgf_exact6,
					       cgf_exact_capacity(full6, forced));
	if (ret)
		return fail(err, ret, "cannot size the exact-address maps: %s", strerror(-ret));
	return 0;
}

static int key_cmp4(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct cgf_key4));
}

static int key_cmp6(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct cgf_key6));
}

/* A sorted copy of an allowlist (memcmp order of the keys, as the maps use). */
static int allowlist_sorted_copy(const struct cgf_allowlist *in, struct cgf_allowlist *out)
{
	memset(out, 0, sizeof(*out));
	out->v4 = malloc((in->n_v4 ? in->n_v4 : 1) * sizeof(*out->v4));
	out->v6 = malloc((in->n_v6 ? in->n_v6 : 1) * sizeof(*out->v6));
	if (!out->v4 || !out->v6) {
		cgf_allowlist_free(out);
		return -ENOMEM;
	}
	/* an empty family's array may be NULL, which memcpy must not get even for 0 bytes */
	if (in->n_v4)
		memcpy(out->v4, in->v4, in->n_v4 * sizeof(*out->v4));
	if (in->n_v6)
		memcpy(out->v6, in->v6, in->n_v6 * sizeof(*out->v6));
	out->n_v4 = in->n_v4;
	out->n_v6 = in->n_v6;
	/* entries start with their key */
	qsort(out->v4, out->n_v4, sizeof(*out->v4), key_cmp4);
	qsort(out->v6, out->n_v6, sizeof(*out->v6), key_cmp6);
	return 0;
}

static struct cgf_fence *fence_new(void)
{
	struct cgf_fence *f = calloc(1, sizeof(*f));

	if (f)
		f->v4.trie_fd = f->v4.exact_fd = f->v6.trie_fd = f->v6.exact_fd = f->config_fd =
			f->stats_fd = f->events_fd = -1;
	return f;
}

void cgf_fence_close(struct cgf_fence *f)
{
	if (!f)
		return;
	if (f->v4.trie_fd >= 0)
		close(f->v4.trie_fd);
	if (f->v4.exact_fd >= 0)
		close(f->v4.exact_fd);
	if (f->v6.trie_fd >= 0)
		close(f->v6.trie_fd);
	if (f->v6.exact_fd >= 0)
		close(f->v6.exact_fd);
	if (f->config_fd >= 0)
		close(f->config_fd);
	if (f->stats_fd >= 0)
		close(f->stats_fd);
	if (f->events_fd >= 0)
		close(f->events_fd);
	cgf_allowlist_free(&f->written);
	free(f);
}

uint64_t cgf_fence_cgroup_id(const struct cgf_fence *f)
{
	return f->cgroup_id;
}

bool cgf_fence_audit(const struct cgf_fence *f)
{
	return f->audit;
}

const char *cgf_fence_policy(const struct cgf_fence *f)
{
	return f->policy;
}

const char *cgf_fence_label(const struct cgf_fence *f)
{
	return f->label;
}

static int boundary_link_ifindex(const char *dir);

const struct cgf_config *cgf_fence_config(const struct cgf_fence *f)
{
	return &f->cfg;
}

int cgf_fence_boundary_ifindex(const struct cgf_fence *f)
{
	return boundary_link_ifindex(f->dir);
}

size_t cgf_fence_dns(const struct cgf_fence *f, const struct cgf_endpoint **dns)
{
	*dns = f->dns;
	return f->n_dns;
}

void cgf_endpoints_to_grants(const struct cgf_endpoint *eps, size_t n, struct cgf_grant *out)
{
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].family = eps[i].family;
		memcpy(out[i].addr, eps[i].addr, sizeof(out[i].addr));
		out[i].prefixlen = eps[i].family == AF_INET ? 32 : 128;
		out[i].port_lo = out[i].port_hi = eps[i].port;
		out[i].protos = CGF_PROTO_ANY;
	}
}

/* Keeps the used endpoints of a config, for a fence's view of itself. */
static void fence_take_dns(struct cgf_fence *f, const struct cgf_config *cfg)
{
	f->dns_proxy = cfg->flags & CGF_CONFIG_DNS_PROXY;
	f->proxy4 = cfg->proxy4;
	f->proxy6 = cfg->proxy6;
	f->n_dns = 0;
	for (size_t i = 0; i < CGF_FENCE_DNS_MAX; i++)
		if (cfg->dns[i].family == AF_INET || cfg->dns[i].family == AF_INET6)
			f->dns[f->n_dns++] = cfg->dns[i];
}

bool cgf_fence_dns_proxy(const struct cgf_fence *f, struct cgf_endpoint *proxy4,
			 struct cgf_endpoint *proxy6)
{
	if (proxy4)
		*proxy4 = f->proxy4;
	if (proxy6)
		*proxy6 = f->proxy6;
	return f->dns_proxy;
}

int cgf_fence_set_proxy(struct cgf_fence *f, const struct cgf_endpoint *proxy4,
			const struct cgf_endpoint *proxy6, char *err)
{
	struct cgf_config cfg;
	uint32_t zero = 0;

	if (!f->dns_proxy)
		return fail(err, -EINVAL, "fence of cgroup id %" PRIu64 " is not in DNS proxy mode",
			    f->cgroup_id);
	if (bpf_map_lookup_elem(f->config_fd, &zero, &cfg))
		return fail(err, -errno, "cannot read the fence config: %s", strerror(errno));
	memset(&cfg.proxy4, 0, sizeof(cfg.proxy4));
	memset(&cfg.proxy6, 0, sizeof(cfg.proxy6));
	if (proxy4)
		cfg.proxy4 = *proxy4;
	if (proxy6)
		cfg.proxy6 = *proxy6;
	if (bpf_map_update_elem(f->config_fd, &zero, &cfg, BPF_EXIST))
		return fail(err, -errno, "cannot write the fence config: %s", strerror(errno));
	f->proxy4 = cfg.proxy4;
	f->proxy6 = cfg.proxy6;
	return 0;
}

int cgf_fence_events_fd(const struct cgf_fence *f)
{
	return f->events_fd;
}

static int dup_cloexec(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* ---- network namespaces -------------------------------------------- */

/* The boundary's and the DNS proxy's way into a namespace (fence.h). */
int cgf_in_netns(const char *netns_path, int (*fn)(void *arg, char *err), void *arg, char *err)
{
	int self = -1, target = -1, ret;

	if (!netns_path || !*netns_path)
		return fn(arg, err);
	target = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return fail(err, -errno, "network namespace '%s': %s", netns_path, strerror(errno));
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		ret = fail(err, -errno, "cannot open this thread's network namespace: %s",
			   strerror(errno));
		goto out;
	}
	if (setns(target, CLONE_NEWNET)) {
		ret = fail(err, -errno, "cannot enter network namespace '%s': %s", netns_path,
			   strerror(errno));
		goto out;
	}
	ret = fn(arg, err);
	if (setns(self, CLONE_NEWNET)) {
		fprintf(stderr, "cgfence: cannot return from network namespace '%s': %s\n",
			netns_path, strerror(errno));
		abort();
	}
out:
	if (self >= 0)
		close(self);
	close(target);
	return ret;
}

/* ---- the boundary ---------------------------------------------------- */

struct boundary_req {
	const char *ifname;
	const char *netns; /* for messages */
	struct cgf_config *cfg; /* gets ifindex, netns inode, names */
	int prog_fd;            /* attach: the program; resolve: -1 */
	int link_fd;            /* attach: the new link */
	int master;             /* attach: the bridge the interface is a port of, 0 = none */
};

/*
 * In the interface's namespace: does it forward IPv4?  The boundary checks
 * each packet's source with the kernel's forwarding lookup (bpf_fib_lookup),
 * which answers nothing on an interface that does not forward: every packet
 * would be dropped.  Podman's bridges forward (netavark sets ip_forward).
 * IPv6 is not required: where it is off, the workload's IPv6 is dropped.
 */
static int boundary_forwards(struct boundary_req *r, char *err)
{
	char path[96], v = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", r->ifname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, -errno, "boundary interface '%s': cannot read %s: %s", r->ifname,
			    path, strerror(errno));
	if (read(fd, &v, 1) != 1)
		v = 0;
	close(fd);
	if (v != '1')
		return fail(err, -EINVAL,
			    "boundary interface '%s' does not forward IPv4 in network namespace "
			    "'%s' (%s is not 1): the boundary checks each packet's source with the "
			    "kernel's forwarding lookup, which needs it",
			    r->ifname, r->netns, path);
	return 0;
}

/* In the interface's namespace: its index and the namespace's inode. */
static int boundary_resolve_here(void *arg, char *err)
{
	struct boundary_req *r = arg;
	struct stat st;
	unsigned idx = if_nametoindex(r->ifname);

	if (!idx)
		return fail(err, errno == ENODEV || errno == ENXIO ? -ENODEV : -errno,
			    "boundary interface '%s' not found in network namespace '%s': %s",
			    r->ifname, r->netns, strerror(errno));
	if (stat("/proc/thread-self/ns/net", &st))
		return fail(err, -errno, "cannot read the network namespace's inode: %s",
			    strerror(errno));
	r->cfg->boundary_ifindex = idx;
	r->cfg->boundary_netns_ino = st.st_ino;
	return boundary_forwards(r, err);
}

/*
 * In the interface's namespace: the bridge it is a port of, whose routes the
 * boundary's source check accepts as the way back to the workload.
 */
static int boundary_master_here(void *arg, char *err)
{
	struct boundary_req *r = arg;

	r->master = cgf_link_master((int)r->cfg->boundary_ifindex);
	if (r->master < 0)
		return fail(err, r->master, "cannot read the master of boundary interface '%s': %s",
			    r->ifname, strerror(-r->master));
	return 0;
}

/* In the interface's namespace: a tcx ingress link at the head of the chain. */
static int boundary_link_here(void *arg, char *err)
{
	struct boundary_req *r = arg;
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = BPF_F_BEFORE);
	struct stat st;

	/* the namespace must still be the one resolved, the index still the name's */
	if (stat("/proc/thread-self/ns/net", &st) || st.st_ino != r->cfg->boundary_netns_ino ||
	    if_nametoindex(r->ifname) != r->cfg->boundary_ifindex)
		return fail(err, -ESTALE, "boundary interface '%s' changed while attaching",
			    r->ifname);
	r->link_fd = bpf_link_create(r->prog_fd, (int)r->cfg->boundary_ifindex,
				     (enum bpf_attach_type)CGF_BPF_TCX_INGRESS, &lo);
	if (r->link_fd < 0)
		return fail(err, r->link_fd,
			    "cannot attach the boundary to the ingress of '%s' (tcx, kernel 6.6+): %s",
			    r->ifname, strerror(-r->link_fd));
	return 0;
}

/* Checks the boundary options and fills the config's boundary fields. */
static int boundary_resolve(const struct cgf_attach_opts *opts, struct cgf_config *cfg,
			    char *err)
{
	struct boundary_req r = { .ifname = opts->boundary_ifname, .cfg = cfg, .prog_fd = -1 };

	r.netns = opts->boundary_netns ? opts->boundary_netns : "(cgfence's own)";
	if (!*r.ifname || strlen(r.ifname) >= CGF_IFNAME_MAX || strchr(r.ifname, '/'))
		return fail(err, -EINVAL, "boundary interface '%s': not an interface name",
			    r.ifname);
	snprintf(cfg->boundary_ifname, sizeof(cfg->boundary_ifname), "%s", r.ifname);
	/* only shown: a long path is cut */
	snprintf(cfg->boundary_netns, sizeof(cfg->boundary_netns), "%s",
		 opts->boundary_netns ? opts->boundary_netns : "");
	return cgf_in_netns(opts->boundary_netns, boundary_resolve_here, &r, err);
}

/*
 * Loads the boundary program over the fence's own maps (one allowlist, one
 * config, one set of counters and events), attaches it to the ingress of the
 * interface and pins the link in dir.  Returns 0 or a negative errno.
 */
static int boundary_attach(struct cgfence_bpf *fence_skel, const struct cgf_attach_opts *opts,
			   struct cgf_config *cfg, const char *dir, char *err)
{
	struct boundary_req r = { .ifname = opts->boundary_ifname, .cfg = cfg, .link_fd = -1 };
	struct boundary_bpf *skel = boundary_bpf__open();
	char path[PATH_MAX + 64];
	int ret;

	r.netns = opts->boundary_netns ? opts->boundary_netns : "(cgfence's own)";
	if (!skel)
		return fail(err, -errno, "cannot open the boundary BPF object: %s",
			    strerror(errno));
	struct {
		struct bpf_map *mine, *fence;
	} maps[] = {
		{ skel->maps.cgf_allow4, fence_skel->maps.cgf_allow4 },
		{ skel->maps.cgf_allow6, fence_skel->maps.cgf_allow6 },
		{ skel->maps.cgf_exact4, fence_skel->maps.cgf_exact4 },
		{ skel->maps.cgf_exact6, fence_skel->maps.cgf_exact6 },
		{ skel->maps.cgf_config, fence_skel->maps.cgf_config },
		{ skel->maps.cgf_stats, fence_skel->maps.cgf_stats },
		{ skel->maps.cgf_events, fence_skel->maps.cgf_events },
	};
	/* reuse_fd takes each map's definition from the kernel: exact maps sized as the fence's */
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		ret = bpf_map__reuse_fd(maps[i].mine, bpf_map__fd(maps[i].fence));
		if (ret) {
			fail(err, ret, "cannot give the boundary the fence's map '%s': %s",
			     bpf_map__name(maps[i].mine), strerror(-ret));
			goto out;
		}
	}
	ret = cgf_in_netns(opts->boundary_netns, boundary_master_here, &r, err);
	if (ret)
		goto out;
	skel->rodata->cgf_boundary_master = (__u32)r.master;
	ret = boundary_bpf__load(skel);
	if (ret) {
		fail(err, ret, "cannot load the boundary program: %s", strerror(-ret));
		goto out;
	}
	r.prog_fd = bpf_program__fd(skel->progs.cgf_boundary);
	ret = cgf_in_netns(opts->boundary_netns, boundary_link_here, &r, err);
	if (ret)
		goto out;
	snprintf(path, sizeof(path), "%s/%s", dir, CGF_PIN_BOUNDARY);
	if (bpf_obj_pin(r.link_fd, path)) {
		ret = fail(err, -errno, "cannot pin link '%s': %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	/* pinned, the link stays; unpinned, closing its fd detaches it */
	if (r.link_fd >= 0)
		close(r.link_fd);
	boundary_bpf__destroy(skel);
	return ret;
}

/*
 * Whether the pinned boundary link is still attached: its interface index,
 * 0 when the interface is gone (the link outlives it, defunct), -errno when
 * there is no link.
 */
static int boundary_link_ifindex(const char *dir)
{
	char path[PATH_MAX + 64];
	/* struct bpf_link_info with the tcx member (ifindex, attach_type) at 16 */
	union {
		struct bpf_link_info info;
		__u32 words[32];
	} u;
	__u32 len = sizeof(u);
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, CGF_PIN_BOUNDARY);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(&u, 0, sizeof(u));
	ret = bpf_obj_get_info_by_fd(fd, &u, &len) ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	if (u.info.type != CGF_BPF_LINK_TYPE_TCX)
		return -EPROTO;
	return (int)u.words[4];
}

int cgf_fence_attach(const char *cgroup_path, const struct cgf_allowlist *list,
		     const struct cgf_attach_opts *opts, struct cgf_fence **out, char *err)
{
	const char *pin_root = pin_root_or_default(opts ? opts->pin_root : NULL);
	struct bpf_link *links[sizeof(link_pins) / sizeof(link_pins[0])] = {};
	struct bpf_program *progs[sizeof(link_pins) / sizeof(link_pins[0])];
	char dir[PATH_MAX], tmpdir[PATH_MAX], path[PATH_MAX + 64];
	struct cgf_config cfg = { .abi_version = CGF_ABI_VERSION };
	struct cgfence_bpf *skel = NULL;
	struct cgf_fence *fence = NULL;
	struct family_maps m4, m6;
	struct bpf_map *maps[7];
	int lock_fd = -1, cg_fd = -1, ret;
	bool pinned = false;
	uint32_t zero = 0;
	uint64_t id;
	size_t i;

	ret = cgf_pin_root_prepare(pin_root, err);
	if (ret)
		return ret;
	cg_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return fail(err, -errno, "cannot open cgroup '%s': %s", cgroup_path,
			    strerror(errno));
	ret = cgf_cgroup_id(cgroup_path, &id);
	if (ret) {
		fail(err, ret, "cannot read the id of cgroup '%s': %s", cgroup_path, strerror(-ret));
		goto out;
	}
	if (fence_dir(dir, sizeof(dir), pin_root, id, "") ||
	    fence_dir(tmpdir, sizeof(tmpdir), pin_root, id, "_new")) {
		ret = fail(err, -ENAMETOOLONG, "pin directory '%s': path too long", pin_root);
		goto out;
	}
	if (access(dir, F_OK) == 0) {
		ret = fail(err, -EEXIST, "cgroup '%s' is already fenced (pins in '%s')",
			   cgroup_path, dir);
		goto out;
	}

	/* Loading and filling the maps (seconds for a million entries) needs no lock. */
	skel = cgfence_bpf__open();
	if (!skel) {
		ret = fail(err, -errno, "cannot open the BPF object: %s", strerror(errno));
		goto out;
	}
	ret = size_exact_maps(skel, list, err);
	if (ret)
		goto out;
	ret = cgfence_bpf__load(skel);
	if (ret) {
		fail(err, ret, "cannot load the BPF programs: %s", strerror(-ret));
		goto out;
	}
	cfg.cgroup_id = id;
	cfg.flags = opts && opts->audit ? CGF_CONFIG_AUDIT : 0;
	if (opts && opts->policy && strlen(opts->policy) >= sizeof(cfg.policy)) {
		ret = fail(err, -ENAMETOOLONG, "policy name '%s' too long (at most %zu characters)",
			   opts->policy, sizeof(cfg.policy) - 1);
		goto out;
	}
	snprintf(cfg.policy, sizeof(cfg.policy), "%s", opts && opts->policy ? opts->policy : "");
	/* A label is only shown: cut it where it would not fit. */
	snprintf(cfg.label, sizeof(cfg.label), "%s", opts && opts->label ? opts->label : "");
	if (opts && opts->n_dns > CGF_FENCE_DNS_MAX) {
		ret = fail(err, -E2BIG, "too many resolvers for one fence (%zu, at most %d)",
			   opts->n_dns, CGF_FENCE_DNS_MAX);
		goto out;
	}
	for (size_t k = 0; opts && k < opts->n_dns; k++)
		cfg.dns[k] = opts->dns[k];
	if (opts) {
		cfg.caps_known = opts->caps_known;
		cfg.caps_held = opts->caps_held;
		cfg.risk_accepted = opts->risk_accepted;
	}
	if (opts && opts->boundary_ifname) {
		ret = boundary_resolve(opts, &cfg, err);
		if (ret)
			goto out;
	} else if (opts && opts->boundary_netns) {
		ret = fail(err, -EINVAL, "a boundary network namespace ('%s') without an interface",
			   opts->boundary_netns);
		goto out;
	}
	if (opts && opts->dns_proxy) {
		/* Audit lets everything through, the proxy refuses names: they do not mix. */
		if (opts->audit) {
			ret = fail(err, -EINVAL, "audit mode and DNS proxy mode do not go together "
				   "(the proxy refuses names; audit mode must deny nothing)");
			goto out;
		}
		cfg.flags |= CGF_CONFIG_DNS_PROXY;
		if (opts->proxy4)
			cfg.proxy4 = *opts->proxy4;
		if (opts->proxy6)
			cfg.proxy6 = *opts->proxy6;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.cgf_config), &zero, &cfg, BPF_ANY)) {
		ret = fail(err, -errno, "cannot write the fence config: %s", strerror(errno));
		goto out;
	}
	/* The allowlist is complete before any program sees a packet. */
	fam_init(&m4, bpf_map__fd(skel->maps.cgf_allow4), bpf_map__fd(skel->maps.cgf_exact4),
		 AF_INET);
	fam_init(&m6, bpf_map__fd(skel->maps.cgf_allow6), bpf_map__fd(skel->maps.cgf_exact6),
		 AF_INET6);
	ret = write_allowlist(&m4, &m6, list, err);
	if (ret)
		goto out;

	/* Attaching and publishing is done under the lock, and takes milliseconds. */
	lock_fd = lock_pin_root(pin_root, err);
	if (lock_fd < 0) {
		ret = lock_fd;
		goto out;
	}
	if (access(dir, F_OK) == 0) {
		ret = fail(err, -EEXIST, "cgroup '%s' is already fenced (pins in '%s')",
			   cgroup_path, dir);
		goto out;
	}
	/* Leftover of an attach that died half-way: never published, safe to drop. */
	unpin_dir(tmpdir);
	if (mkdir(tmpdir, 0700)) {
		ret = fail(err, -errno, "cannot create '%s': %s", tmpdir, strerror(errno));
		goto out;
	}
	pinned = true;
	maps[0] = skel->maps.cgf_allow4;
	maps[1] = skel->maps.cgf_allow6;
	maps[2] = skel->maps.cgf_exact4;
	maps[3] = skel->maps.cgf_exact6;
	maps[4] = skel->maps.cgf_config;
	maps[5] = skel->maps.cgf_stats;
	maps[6] = skel->maps.cgf_events;
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, map_pins[i]);
		ret = bpf_map__pin(maps[i], path);
		if (ret) {
			fail(err, ret, "cannot pin map '%s': %s", path, strerror(-ret));
			goto out;
		}
	}
	i = 0;
#define X(name, prog) progs[i++] = skel->progs.prog;
	CGF_PROGS(X)
#undef X
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (i >= CGF_PROGS_PROXY_FIRST && !(cfg.flags & CGF_CONFIG_DNS_PROXY))
			continue;
		links[i] = bpf_program__attach_cgroup(progs[i], cg_fd);
		if (!links[i]) {
			ret = -errno;
			links[i] = NULL;
			fail(err, ret, "cannot attach '%s' to cgroup '%s': %s",
			     bpf_program__name(progs[i]), cgroup_path, strerror(-ret));
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", tmpdir, link_pins[i]);
		ret = bpf_link__pin(links[i], path);
		if (ret) {
			fail(err, ret, "cannot pin link '%s': %s", path, strerror(-ret));
			goto out;
		}
	}
	if (cfg.boundary_ifindex) {
		ret = boundary_attach(skel, opts, &cfg, tmpdir, err);
		if (ret)
			goto out;
	}
	/* Publish: the fence exists under its final name only when complete. */
	if (rename(tmpdir, dir)) {
		ret = fail(err, -errno, "cannot rename '%s' to '%s': %s", tmpdir, dir,
			   strerror(errno));
		goto out;
	}
	pinned = false;

	if (out) {
		fence = fence_new();
		if (!fence) {
			ret = fail(err, -ENOMEM, "out of memory");
			goto out_published;
		}
		fence->cgroup_id = id;
		fence->cfg = cfg;
		snprintf(fence->dir, sizeof(fence->dir), "%s", dir);
		fence->audit = cfg.flags & CGF_CONFIG_AUDIT;
		memcpy(fence->policy, cfg.policy, sizeof(fence->policy));
		memcpy(fence->label, cfg.label, sizeof(fence->label));
		fence_take_dns(fence, &cfg);
		if (allowlist_sorted_copy(list, &fence->written) == 0)
			fence->have_written = true;
		fam_init(&fence->v4, dup_cloexec(bpf_map__fd(skel->maps.cgf_allow4)),
			 dup_cloexec(bpf_map__fd(skel->maps.cgf_exact4)), AF_INET);
		fam_init(&fence->v6, dup_cloexec(bpf_map__fd(skel->maps.cgf_allow6)),
			 dup_cloexec(bpf_map__fd(skel->maps.cgf_exact6)), AF_INET6);
		fence->config_fd = dup_cloexec(bpf_map__fd(skel->maps.cgf_config));
		fence->stats_fd = dup_cloexec(bpf_map__fd(skel->maps.cgf_stats));
		fence->events_fd = dup_cloexec(bpf_map__fd(skel->maps.cgf_events));
		if (fence->v4.trie_fd < 0 || fence->v4.exact_fd < 0 || fence->v6.trie_fd < 0 ||
		    fence->v6.exact_fd < 0 || fence->config_fd < 0 ||
		    fence->stats_fd < 0 || fence->events_fd < 0) {
			ret = fail(err, -errno, "cannot duplicate map fds: %s", strerror(errno));
			goto out_published;
		}
		*out = fence;
		fence = NULL;
	}
	ret = 0;
	goto out;

out_published:
	cgf_fence_close(fence);
	fence = NULL;
	unpin_dir(dir);
out:
	if (pinned)
		unpin_dir(tmpdir);
	/* Pinned links stay attached; unpinned ones detach as they are destroyed here. */
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		bpf_link__destroy(links[i]);
	cgfence_bpf__destroy(skel);
	if (lock_fd >= 0)
		close(lock_fd);
	if (cg_fd >= 0)
		close(cg_fd);
	return ret;
}

static int open_pin(const char *dir, const char *name, char *err)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return fail(err, -errno, "cannot open pinned '%s': %s", path, strerror(errno));
	if (fcntl(fd, F_SETFD, FD_CLOEXEC)) {
		close(fd);
		return fail(err, -errno, "cannot set close-on-exec on '%s': %s", path,
			    strerror(errno));
	}
	return fd;
}

/*
 * Does a pinned map have the key and value sizes this cgfence reads and
 * writes?  Checked besides the layout version: reading a per-CPU value of
 * another size into this process's buffer would overrun it.
 */
static int check_map(int fd, const char *dir, const char *name, __u32 key_size,
		     __u32 value_size, char *err)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return fail(err, -errno, "cannot read what '%s/%s' is: %s", dir, name,
			    strerror(errno));
	if (info.key_size != key_size || info.value_size != value_size)
		return fail(err, -EPROTO, "fence in '%s' was made by another cgfence (map '%s' "
			    "holds %u/%u-byte keys/values, this one reads %u/%u)", dir, name,
			    info.key_size, info.value_size, key_size, value_size);
	return 0;
}

int cgf_fence_open(const char *pin_root, uint64_t id, struct cgf_fence **out, char *err)
{
	struct cgf_fence *f;
	struct cgf_config cfg;
	char dir[PATH_MAX];
	uint32_t zero = 0;
	int ret;

	if (fence_dir(dir, sizeof(dir), pin_root, id, ""))
		return fail(err, -ENAMETOOLONG, "pin directory path too long");
	if (access(dir, F_OK))
		return fail(err, -ENOENT, "no fence for cgroup id %" PRIu64 " (no pins in '%s')",
			    id, dir);
	f = fence_new();
	if (!f)
		return fail(err, -ENOMEM, "out of memory");
	f->cgroup_id = id;
	if ((f->config_fd = open_pin(dir, CGF_PIN_CONFIG, err)) < 0 ||
	    (f->v4.trie_fd = open_pin(dir, CGF_PIN_ALLOW4, err)) < 0 ||
	    (f->v4.exact_fd = open_pin(dir, CGF_PIN_EXACT4, err)) < 0 ||
	    (f->v6.trie_fd = open_pin(dir, CGF_PIN_ALLOW6, err)) < 0 ||
	    (f->v6.exact_fd = open_pin(dir, CGF_PIN_EXACT6, err)) < 0 ||
	    (f->stats_fd = open_pin(dir, CGF_PIN_STATS, err)) < 0 ||
	    (f->events_fd = open_pin(dir, CGF_PIN_EVENTS, err)) < 0) {
		ret = -EIO;
		goto fail;
	}
	fam_init(&f->v4, f->v4.trie_fd, f->v4.exact_fd, AF_INET);
	fam_init(&f->v6, f->v6.trie_fd, f->v6.exact_fd, AF_INET6);
	if ((ret = check_map(f->config_fd, dir, CGF_PIN_CONFIG, 4, sizeof(cfg), err)) ||
	    (ret = check_map(f->stats_fd, dir, CGF_PIN_STATS, 4, sizeof(struct cgf_stats), err)) ||
	    (ret = check_map(f->v4.exact_fd, dir, CGF_PIN_EXACT4, sizeof(struct cgf_key4),
			     sizeof(struct cgf_allow), err)) ||
	    (ret = check_map(f->v4.trie_fd, dir, CGF_PIN_ALLOW4, sizeof(struct cgf_key4),
			     sizeof(struct cgf_allow), err)) ||
	    (ret = check_map(f->v6.exact_fd, dir, CGF_PIN_EXACT6, sizeof(struct cgf_key6),
			     sizeof(struct cgf_allow), err)) ||
	    (ret = check_map(f->v6.trie_fd, dir, CGF_PIN_ALLOW6, sizeof(struct cgf_key6),
			     sizeof(struct cgf_allow), err)))
		goto fail;
	if (bpf_map_lookup_elem(f->config_fd, &zero, &cfg)) {
		ret = fail(err, -errno, "cannot read the config of '%s': %s", dir, strerror(errno));
		goto fail;
	}
	if (cfg.abi_version != CGF_ABI_VERSION) {
		ret = fail(err, -EPROTO,
			   "fence in '%s' was made by another cgfence (layout %u, this one reads %u)",
			   dir, cfg.abi_version, CGF_ABI_VERSION);
		goto fail;
	}
	f->audit = cfg.flags & CGF_CONFIG_AUDIT;
	cfg.policy[sizeof(cfg.policy) - 1] = '\0';
	cfg.label[sizeof(cfg.label) - 1] = '\0';
	cfg.boundary_ifname[sizeof(cfg.boundary_ifname) - 1] = '\0';
	cfg.boundary_netns[sizeof(cfg.boundary_netns) - 1] = '\0';
	f->cfg = cfg;
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	memcpy(f->policy, cfg.policy, sizeof(f->policy));
	memcpy(f->label, cfg.label, sizeof(f->label));
	fence_take_dns(f, &cfg);
	*out = f;
	return 0;
fail:
	cgf_fence_close(f);
	return ret;
}

/* Collects every key of a map; *keys is malloc'ed. */
static int map_keys(int fd, size_t key_size, void **keys, size_t *n)
{
	size_t cap = 1024, count = 0;
	char *buf = malloc(cap * key_size), *prev = NULL;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (count == cap) {
			char *grown = realloc(buf, 2 * cap * key_size);

			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap *= 2;
		}
		prev = count ? buf + (count - 1) * key_size : NULL;
		if (bpf_map_get_next_key(fd, prev, buf + count * key_size)) {
			if (errno == ENOENT)
				break;
			free(buf);
			return -errno;
		}
		count++;
	}
	*keys = buf;
	*n = count;
	return 0;
}


/*
 * The entries a sync walks: struct cgf_entry4 or cgf_entry6 ({key, value}),
 * size bytes each, the value at value_off (past the key and its padding: a
 * cgf_entry6's value starts 4 bytes after its 20-byte key).
 */
struct entries {
	const char *at;
	size_t n, size, value_off;
};

#define ENTRIES(list, fam)                                                                  \
	((struct entries){ (const char *)(list)->v##fam, (list)->n_v##fam,                  \
			   sizeof(struct cgf_entry##fam), offsetof(struct cgf_entry##fam, value) })

static const char *entry(const struct entries *e, size_t i)
{
	return e->at + i * e->size;
}

static bool same_value(const struct entries *a, size_t i, const struct entries *b, size_t j)
{
	return !memcmp(entry(a, i) + a->value_off, entry(b, j) + b->value_off,
		       sizeof(struct cgf_allow));
}

/*
 * Full-length keys of cur (at the indices over) that went to the trie while
 * the exact map was full: moved to the exact map as long as it has room.
 * Each is written there first, with the same value, and then taken from the
 * trie, so its verdict never changes on the way.  Only a matter of speed:
 * a key that cannot move stays where it is in force (a failed delete leaves
 * it in both maps with one value, which the dump lists once).
 */
static void rehome(struct family_maps *m, const struct entries *cur, const size_t *over,
		   size_t n_over)
{
	for (size_t k = 0; k < n_over; k++) {
		const char *e = entry(cur, over[k]);

		if (bpf_map_update_elem(m->exact_fd, e, e + cur->value_off, BPF_NOEXIST))
			return;
		bpf_map_delete_elem(m->trie_fd, e);
	}
}

/* Appends i to the growing array *a (*n used of *cap); 0 or -ENOMEM. */
static int note_index(size_t **a, size_t *n, size_t *cap, size_t i)
{
	if (*n == *cap) {
		size_t new_cap = *cap ? 2 * *cap : 1024, *grown = realloc(*a, new_cap * sizeof(**a));

		if (!grown)
			return -ENOMEM;
		*a = grown;
		*cap = new_cap;
	}
	(*a)[(*n)++] = i;
	return 0;
}

/*
 * Walks the old and the new entries of one family, both sorted by key, so by
 * prefix length first (a length is below 256: comparing the u32's bytes
 * orders it, in either byte order): writes what is new or changed from the
 * longest prefix to the shortest, then deletes what is gone from the
 * shortest to the longest.  Every value is the union of the rules covering
 * its prefix, and in both walks an entry is the longest match of an address
 * only while the address's old or new longest match is: a destination
 * allowed before and after is never denied in between, nor one denied before
 * and after allowed.  Last, the full-length keys that found the exact map
 * full while the old entries were in it move there.
 */
static int sync_family(struct family_maps *m, const struct entries *old,
		       const struct entries *cur, size_t *writes, size_t *deletes)
{
	size_t i, j, *over = NULL, n_over = 0, cap_over = 0;
	int c, ret = 0;

	m->exact_full = false;
	/* writes, longest prefix first: the walk runs from the end */
	for (i = old->n, j = cur->n; j > 0;) {
		c = i == 0 ? -1 : memcmp(entry(old, i - 1), entry(cur, j - 1), m->key_size);
		if (c > 0) { /* gone: pass 2 */
			i--;
			continue;
		}
		if (c == 0 && same_value(old, i - 1, cur, j - 1)) {
			i--;
			j--;
			continue;
		}
		/* new, or changed; what the old entries lack, the maps hold nowhere */
		ret = fam_put(m, entry(cur, j - 1), entry(cur, j - 1) + cur->value_off,
			      c < 0 ? PUT_ABSENT : PUT_ANY);
		if (ret < 0)
			goto out;
		if (ret == IN_TRIE && (ret = note_index(&over, &n_over, &cap_over, j - 1)))
			goto out;
		(*writes)++;
		i -= c == 0;
		j--;
	}
	/* deletes, shortest prefix first */
	for (i = 0, j = 0; i < old->n;) {
		c = j == cur->n ? -1 : memcmp(entry(old, i), entry(cur, j), m->key_size);
		if (c < 0) {
			ret = fam_del(m, entry(old, i));
			if (ret)
				goto out;
			(*deletes)++;
			i++;
		} else {
			i += c == 0;
			j++;
		}
	}
	ret = 0;
	rehome(m, cur, over, n_over);
out:
	free(over);
	return ret;
}

const struct cgf_allowlist *cgf_fence_entries(struct cgf_fence *f)
{
	int ret;

	if (!f->have_written) {
		ret = cgf_fence_dump(f, 0, &f->written, NULL, NULL);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		f->have_written = true;
	}
	return &f->written;
}

int cgf_fence_sync(struct cgf_fence *f, const struct cgf_allowlist *list, char *err)
{
	struct cgf_allowlist next;
	size_t writes = 0, deletes = 0;
	int ret;

	/* the first sync of an opened fence learns what its maps hold */
	if (!cgf_fence_entries(f))
		return fail(err, -EIO, "cannot read the allowlist: %s", strerror(errno));
	ret = allowlist_sorted_copy(list, &next);
	if (ret)
		return fail(err, ret, "out of memory");
	ret = sync_family(&f->v4, &ENTRIES(&f->written, 4), &ENTRIES(&next, 4), &writes, &deletes);
	if (!ret)
		ret = sync_family(&f->v6, &ENTRIES(&f->written, 6), &ENTRIES(&next, 6), &writes,
				  &deletes);
	if (ret) {
		cgf_allowlist_free(&next);
		/* what the maps hold is no longer known: read it again next time */
		cgf_allowlist_free(&f->written);
		f->have_written = false;
		return fail(err, ret, "cannot update the allowlist: %s", strerror(-ret));
	}
	cgf_allowlist_free(&f->written);
	f->written = next;
	return 0;
}

int cgf_fence_grant(struct cgf_fence *f, const struct cgf_grant *grants, size_t n, char *err)
{
	struct family_maps *m;
	struct cgf_key6 key = { 0 }; /* large enough for both families */
	struct cgf_allow v = { 0 }, kept = { 0 };
	uint64_t now = cgf_boottime_ns();
	char addr[INET6_ADDRSTRLEN] = "?";
	size_t i;
	unsigned r;
	int ret;

	if (!n)
		return 0;
	m = grants[0].family == AF_INET ? &f->v4 : &f->v6;
	inet_ntop(grants[0].family, grants[0].addr, addr, sizeof(addr));
	for (i = 0; i < n; i++)
		if (grants[i].family != grants[0].family || grants[i].prefixlen != m->full ||
		    memcmp(grants[i].addr, grants[0].addr, m->full / 8))
			return fail(err, -EINVAL, "grant %zu is not for the address %s", i, addr);
	key.prefixlen = m->full;
	memcpy(key.addr, grants[0].addr, m->full / 8);
	/*
	 * Start from the entry of the address (in the exact map, or in the trie
	 * when it overflowed there), or else from what the trie gives the address
	 * (the union of the prefixes covering it): an exact entry shadows the
	 * trie, so it must carry those ranges too.
	 */
	if (fam_get(m, &key, &v))
		memset(&v, 0, sizeof(v));
	for (r = 0; r < v.n_ranges && r < CGF_MAX_RANGES; r++)
		if (!v.ranges[r].expires_ns || v.ranges[r].expires_ns > now)
			kept.ranges[kept.n_ranges++] = v.ranges[r];
	for (i = 0; i < n; i++) {
		const struct cgf_grant *g = &grants[i];

		for (r = 0; r < kept.n_ranges; r++) {
			struct cgf_range *rg = &kept.ranges[r];

			if (rg->port_lo != g->port_lo || rg->port_hi != g->port_hi ||
			    rg->protos != g->protos)
				continue;
			/* 0 (never) beats any deadline */
			if (rg->expires_ns && (!g->expires_ns || g->expires_ns > rg->expires_ns))
				rg->expires_ns = g->expires_ns;
			break;
		}
		if (r < kept.n_ranges)
			continue;
		if (kept.n_ranges == CGF_MAX_RANGES)
			return fail(err, -E2BIG, "%s: more than %d port ranges", addr,
				    CGF_MAX_RANGES);
		kept.ranges[kept.n_ranges].port_lo = g->port_lo;
		kept.ranges[kept.n_ranges].port_hi = g->port_hi;
		kept.ranges[kept.n_ranges].protos = g->protos;
		kept.ranges[kept.n_ranges].expires_ns = g->expires_ns;
		kept.n_ranges++;
	}
	m->exact_full = false;
	ret = fam_put(m, &key, &kept, PUT_ANY);
	if (ret < 0)
		return fail(err, ret, "cannot write %s: %s", addr, strerror(-ret));
	/* the maps now hold more than this process wrote: the next sync reads them again */
	cgf_allowlist_free(&f->written);
	f->have_written = false;
	return 0;
}

int cgf_fence_remove(const char *pin_root, uint64_t id, char *err)
{
	char dir[PATH_MAX];
	int lock_fd, ret;

	if (fence_dir(dir, sizeof(dir), pin_root, id, ""))
		return fail(err, -ENAMETOOLONG, "pin directory path too long");
	lock_fd = lock_pin_root(pin_root, err);
	if (lock_fd < 0)
		return lock_fd;
	if (access(dir, F_OK)) {
		ret = fail(err, -ENOENT, "no fence for cgroup id %" PRIu64 " (no pins in '%s')", id,
			   dir);
	} else {
		ret = unpin_dir(dir);
		if (ret)
			fail(err, ret, "cannot remove the pins in '%s': %s", dir, strerror(-ret));
	}
	close(lock_fd);
	return ret;
}

int cgf_fence_stats(const struct cgf_fence *f, struct cgf_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct cgf_stats *per_cpu;
	uint32_t zero = 0;
	int cpu, h;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per_cpu = calloc((size_t)ncpu, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(f->stats_fd, &zero, per_cpu)) {
		int ret = -errno;

		free(per_cpu);
		return ret;
	}
	memset(sum, 0, sizeof(*sum));
	for (cpu = 0; cpu < ncpu; cpu++) {
		for (h = 0; h < CGF_HOOK_MAX; h++) {
			sum->allowed[h] += per_cpu[cpu].allowed[h];
			sum->denied[h] += per_cpu[cpu].denied[h];
			sum->audited[h] += per_cpu[cpu].audited[h];
		}
		sum->events_lost += per_cpu[cpu].events_lost;
		sum->dns_steered += per_cpu[cpu].dns_steered;
	}
	free(per_cpu);
	return 0;
}

/*
 * The keys of a family, each once: the trie's, then the hash map's; *keys is
 * malloc'ed.  A full-length key is in one map only (fam_put); one found in
 * both anyway is listed once, as the exact map's, the one in force.
 */
static int fam_keys(const struct family_maps *m, void **keys, size_t *n)
{
	void *trie_keys = NULL, *exact_keys = NULL;
	size_t n_trie = 0, n_exact = 0, i, kept = 0;
	struct cgf_allow scratch;
	char *all;
	int ret = map_keys(m->trie_fd, m->key_size, &trie_keys, &n_trie);

	if (ret)
		return ret;
	ret = map_keys(m->exact_fd, m->key_size, &exact_keys, &n_exact);
	if (ret) {
		free(trie_keys);
		return ret;
	}
	all = trie_keys;
	for (i = 0; i < n_trie; i++) {
		char *k = all + i * m->key_size;

		if (fam_is_full(m, k) && !bpf_map_lookup_elem(m->exact_fd, k, &scratch))
			continue;
		if (kept != i)
			memcpy(all + kept * m->key_size, k, m->key_size);
		kept++;
	}
	all = realloc(trie_keys, (kept + n_exact + 1) * m->key_size);
	if (!all) {
		free(trie_keys);
		free(exact_keys);
		return -ENOMEM;
	}
	memcpy(all + kept * m->key_size, exact_keys, n_exact * m->key_size);
	free(exact_keys);
	*keys = all;
	*n = kept + n_exact;
	return 0;
}

int cgf_fence_count(const struct cgf_fence *f, size_t *n_v4, size_t *n_v6)
{
	void *keys;
	int ret = fam_keys(&f->v4, &keys, n_v4);

	if (ret)
		return ret;
	free(keys);
	ret = fam_keys(&f->v6, &keys, n_v6);
	if (ret)
		return ret;
	free(keys);
	return 0;
}

int cgf_fence_dump(const struct cgf_fence *f, size_t max, struct cgf_allowlist *out,
		   size_t *total_v4, size_t *total_v6)
{
	struct cgf_key4 *k4 = NULL;
	struct cgf_key6 *k6 = NULL;
	size_t n4 = 0, n6 = 0, i;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = fam_keys(&f->v4, (void **)&k4, &n4);
	if (ret)
		return ret;
	ret = fam_keys(&f->v6, (void **)&k6, &n6);
	if (ret)
		goto out;
	qsort(k4, n4, sizeof(*k4), key_cmp4);
	qsort(k6, n6, sizeof(*k6), key_cmp6);
	if (total_v4)
		*total_v4 = n4;
	if (total_v6)
		*total_v6 = n6;
	/* Values only for the first max entries, IPv4 first: keys are cheap, values not. */
	if (max && n4 > max)
		n4 = max;
	if (max && n6 > max - n4)
		n6 = max - n4;
	out->v4 = calloc(n4 ? n4 : 1, sizeof(*out->v4));
	out->v6 = calloc(n6 ? n6 : 1, sizeof(*out->v6));
	if (!out->v4 || !out->v6) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n4; i++) {
		out->v4[out->n_v4].key = k4[i];
		if (fam_get(&f->v4, &k4[i], &out->v4[out->n_v4].value) == 0)
			out->n_v4++;
	}
	for (i = 0; i < n6; i++) {
		out->v6[out->n_v6].key = k6[i];
		if (fam_get(&f->v6, &k6[i], &out->v6[out->n_v6].value) == 0)
			out->n_v6++;
	}
out:
	free(k4);
	free(k6);
	if (ret) {
		free(out->v4);
		free(out->v6);
		memset(out, 0, sizeof(*out));
	}
	return ret;
}

int cgf_fence_list(const char *pin_root, uint64_t **ids, size_t *n)
{
	size_t count = 0, cap = 16;
	uint64_t *buf;
	struct dirent *de;
	DIR *d;

	*ids = NULL;
	*n = 0;
	d = opendir(pin_root_or_default(pin_root));
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	buf = malloc(cap * sizeof(*buf));
	if (!buf) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		char *end;
		unsigned long long id;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		errno = 0;
		id = strtoull(de->d_name, &end, 10);
		if (errno || *end)
			continue; /* "<id>_new": an attach in progress */
		if (count == cap) {
			uint64_t *grown = realloc(buf, 2 * cap * sizeof(*buf));

			if (!grown) {
				free(buf);
				closedir(d);
				return -ENOMEM;
			}
			buf = grown;
			cap *= 2;
		}
		buf[count++] = id;
	}
	closedir(d);
	*ids = buf;
	*n = count;
	return 0;
}

/* ---- events ---------------------------------------------------------- */

const char *cgf_hook_name(unsigned hook)
{
	static const char *const names[CGF_HOOK_MAX] = {
		[CGF_HOOK_CONNECT4] = "connect4", [CGF_HOOK_CONNECT6] = "connect6",
		[CGF_HOOK_SENDMSG4] = "sendmsg4", [CGF_HOOK_SENDMSG6] = "sendmsg6",
		[CGF_HOOK_EGRESS] = "egress",	  [CGF_HOOK_BOUNDARY] = "boundary",
	};

	return hook < CGF_HOOK_MAX ? names[hook] : "unknown";
}

/* Names for JSON; texts for deny lines, where the plain reasons say nothing. */
static const struct {
	const char *name, *text;
} reasons[CGF_REASON_MAX] = {
	[CGF_REASON_UNSAID] = { NULL, NULL },
	[CGF_REASON_NOT_ALLOWED] = { "not-allowed", NULL },
	[CGF_REASON_ANY_SOURCE] = { "any-source", "its socket may send from any address" },
	[CGF_REASON_LOOPBACK_OFF_LO] = { "loopback-off-lo", "loopback address off lo" },
	[CGF_REASON_HEADER] = { "header", "a header not judged" },
	[CGF_REASON_FORGED_SOURCE] = { "forged-source", "source not routed back to the link" },
	[CGF_REASON_NO_DNS_PROXY] = { "no-dns-proxy", "no DNS proxy for it" },
	[CGF_REASON_FOREIGN_SOURCE] = { "foreign-source", "source not an address of this host" },
};

const char *cgf_reason_name(unsigned reason, char *buf, size_t len)
{
	if (reason < CGF_REASON_MAX)
		return reasons[reason].name;
	snprintf(buf, len, "reason-%u", reason);
	return buf;
}

const char *cgf_reason_text(unsigned reason, char *buf, size_t len)
{
	if (reason < CGF_REASON_MAX)
		return reasons[reason].text;
	snprintf(buf, len, "reason-%u", reason);
	return buf;
}

const char *cgf_reason_text_of(const char *name)
{
	if (!name || !*name)
		return NULL;
	for (unsigned i = 0; i < CGF_REASON_MAX; i++)
		if (reasons[i].name && !strcmp(name, reasons[i].name))
			return reasons[i].text;
	return name; /* a newer cgfenced's: its own name says most */
}

const char *cgf_proto_name(unsigned proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case 0:
		return "ip";
	default:
		snprintf(buf, len, "proto-%u", proto);
		return buf;
	}
}

void cgf_event_comm(const struct cgf_event *e, char comm[CGF_COMM_LEN])
{
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	/* a process names itself: nothing it chose reaches a terminal raw */
	for (size_t i = 0; comm[i]; i++)
		if (comm[i] < 0x20 || comm[i] > 0x7e)
			comm[i] = '?';
}

void cgf_dest_words(char *buf, size_t len, const char *proto, const char *addr, unsigned long port)
{
	bool v6 = strchr(addr, ':') != NULL;

	if (!strcmp(proto, "tcp") || !strcmp(proto, "udp"))
		snprintf(buf, len, "%s %s%s%s:%lu", proto, v6 ? "[" : "", addr, v6 ? "]" : "", port);
	else
		snprintf(buf, len, "%s %s", proto, addr);
}

void cgf_deny_words(char *buf, size_t len, const char *what, const char *hook, const char *why,
		    unsigned long pid, const char *comm)
{
	char who[48] = "";

	if (comm)
		snprintf(who, sizeof(who), " pid %lu (%s)", pid, comm);
	snprintf(buf, len, "%s (%s%s%s)%s", what, hook, why ? ": " : "", why ? why : "", who);
}

void cgf_event_format(const struct cgf_event *e, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?", pbuf[16], comm[CGF_COMM_LEN], rbuf[16], what[96];

	inet_ntop(e->family == AF_INET ? AF_INET : AF_INET6, e->daddr, addr, sizeof(addr));
	cgf_dest_words(what, sizeof(what), cgf_proto_name(e->protocol, pbuf, sizeof(pbuf)), addr,
		       e->dport);
	cgf_event_comm(e, comm);
	/* the boundary meets packets on the wire: no process to name */
	cgf_deny_words(buf, len, what, cgf_hook_name(e->hook),
		       cgf_reason_text(e->reason, rbuf, sizeof(rbuf)), e->pid,
		       e->hook == CGF_HOOK_BOUNDARY ? NULL : comm);
}

uint64_t cgf_boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool libbpf_verbose;

/* printf-like for -Wformat=2 with clang (the sanitizer build): libbpf's format, passed on */
__attribute__((format(printf, 2, 0)))
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!libbpf_verbose && level != LIBBPF_WARN)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void cgf_libbpf_quiet(bool verbose)
{
	libbpf_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

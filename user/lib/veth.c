// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Finding the host end of a namespace's veth; see veth.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "errmsg.h"
#include "veth.h"

#define CGF_MAX_LINKS 64
#define NL_BUF 32768

/*
 * NLMSG_OK with the signedness spelled out (the macro compares the u32
 * nlmsg_len with an int, which clang warns about): left stays an int so that
 * NLMSG_NEXT can never wrap it around.
 */
static bool nl_ok(const struct nlmsghdr *h, int left)
{
	return left >= (int)sizeof(*h) && h->nlmsg_len >= sizeof(*h) &&
	       h->nlmsg_len <= (unsigned int)left;
}

#define fail cgf_fail

struct link {
	int index;
	char name[IF_NAMESIZE];
	char kind[16];
	int peer_index;  /* IFLA_LINK, 0 when absent */
	int peer_nsid;   /* IFLA_LINK_NETNSID, -1 when absent (peer in the same namespace) */
	bool loopback;
};

struct socket_req {
	const char *path;
	int fd; /* the socket, or -errno */
};

/* On a thread of its own, which ends in the namespace it entered. */
static void *socket_thread(void *arg)
{
	struct socket_req *r = arg;
	int target = open(r->path, O_RDONLY | O_CLOEXEC);

	if (target < 0) {
		r->fd = -errno;
		return NULL;
	}
	if (setns(target, CLONE_NEWNET))
		r->fd = -errno;
	else if ((r->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0)
		r->fd = -errno;
	close(target);
	return NULL;
}

/*
 * A netlink socket of the namespace at path: made there, used from here.  A
 * thread enters the namespace, makes the socket and ends: entering may be
 * allowed where coming back is not (a hook in a rootless user namespace may
 * join the container's namespace, never again the host's).
 */
static int socket_in(const char *path)
{
	struct socket_req r = { .path = path, .fd = -EIO };
	pthread_t t;
	int ret = pthread_create(&t, NULL, socket_thread, &r);

	if (ret)
		return -ret;
	pthread_join(t, NULL);
	return r.fd;
}

static int nl_send(int fd, struct nlmsghdr *h)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	return sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

static void parse_linkinfo(struct rtattr *a, struct link *l)
{
	int len = RTA_PAYLOAD(a);

	for (a = RTA_DATA(a); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_INFO_KIND)
			snprintf(l->kind, sizeof(l->kind), "%.*s", (int)RTA_PAYLOAD(a),
				 (char *)RTA_DATA(a));
}

/* Every link of the socket's namespace; returns how many, or -errno. */
static int dump_links(int fd, struct link *links, int max)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.i = { .ifi_family = AF_UNSPEC },
	};
	char *buf = malloc(NL_BUF);
	int n = 0, ret;

	if (!buf)
		return -ENOMEM;
	ret = nl_send(fd, &req.h);
	while (!ret) {
		ssize_t got = recv(fd, buf, NL_BUF, 0);
		struct nlmsghdr *h;
		int left;

		if (got < 0) {
			ret = -errno;
			break;
		}
		left = (int)got;
		for (h = (struct nlmsghdr *)buf; nl_ok(h, left); h = NLMSG_NEXT(h, left)) {
			struct ifinfomsg *ifi;
			struct rtattr *a;
			struct link *l;
			int alen;

			if (h->nlmsg_type == NLMSG_DONE)
				goto done;
			if (h->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				goto done;
			}
			if (h->nlmsg_type != RTM_NEWLINK)
				continue;
			if (n == max) {
				ret = -E2BIG;
				goto done;
			}
			ifi = NLMSG_DATA(h);
			l = &links[n++];
			memset(l, 0, sizeof(*l));
			l->index = ifi->ifi_index;
			l->peer_nsid = -1;
			l->loopback = ifi->ifi_flags & IFF_LOOPBACK;
			alen = IFLA_PAYLOAD(h);
			for (a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type == IFLA_IFNAME)
					snprintf(l->name, sizeof(l->name), "%.*s",
						 (int)RTA_PAYLOAD(a), (char *)RTA_DATA(a));
				else if (a->rta_type == IFLA_LINK)
					memcpy(&l->peer_index, RTA_DATA(a), sizeof(int));
				else if (a->rta_type == IFLA_LINK_NETNSID)
					memcpy(&l->peer_nsid, RTA_DATA(a), sizeof(int));
				else if (a->rta_type == IFLA_LINKINFO)
					parse_linkinfo(a, l);
			}
		}
	}
done:
	free(buf);
	return ret ? ret : n;
}

/* The id the socket's namespace gives the namespace open at ns_fd; -1 when none. */
static int nsid_of(int fd, int ns_fd)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
		char pad[3];
		struct rtattr a;
		int fd;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETNSID,
		       .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 2 },
		.g = { .rtgen_family = AF_UNSPEC },
		.a = { .rta_len = RTA_LENGTH(sizeof(int)), .rta_type = NETNSA_FD },
		.fd = ns_fd,
	};
	char buf[1024];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t got;

	if (nl_send(fd, &req.h))
		return -1;
	got = recv(fd, buf, sizeof(buf), 0);
	if (got < 0 || !nl_ok(h, (int)got) || h->nlmsg_type != RTM_NEWNSID)
		return -1;
	{
		struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) +
						     NLMSG_ALIGN(sizeof(struct rtgenmsg)));
		int alen = (int)h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct rtgenmsg)));

		for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == NETNSA_NSID) {
				int id;

				memcpy(&id, RTA_DATA(a), sizeof(id));
				return id;
			}
		}
	}
	return -1;
}

/* The peer's name in the namespace open at ns_fd, by its index there. */
static int name_in(int ns_fd, const char *ns_path, int index, char *name)
{
	struct link links[CGF_MAX_LINKS];
	int fd, n, i;
	char path[64];

	if (ns_path)
		snprintf(path, sizeof(path), "%s", ns_path);
	else
		snprintf(path, sizeof(path), "/proc/self/fd/%d", ns_fd);
	fd = socket_in(path);
	if (fd < 0)
		return fd;
	n = dump_links(fd, links, CGF_MAX_LINKS);
	close(fd);
	for (i = 0; i < n; i++) {
		if (links[i].index == index && !strcmp(links[i].kind, "veth")) {
			memcpy(name, links[i].name, IF_NAMESIZE);
			return 0;
		}
	}
	return n < 0 ? n : -ENOENT;
}

int cgf_veth_find_peer(const char *netns_path, struct cgf_veth_peer *out, char *err,
		       size_t errlen)
{
	struct link links[CGF_MAX_LINKS];
	const struct link *veth = NULL;
	int fd, n, i, self, ret;
	DIR *d;
	struct dirent *de;

	memset(out, 0, sizeof(*out));
	fd = socket_in(netns_path);
	if (fd < 0)
		return fail(err, errlen, fd, "network namespace '%s': %s", netns_path,
			    strerror(-fd));
	n = dump_links(fd, links, CGF_MAX_LINKS);
	if (n < 0) {
		close(fd);
		return fail(err, errlen, n, "cannot list the interfaces of '%s': %s", netns_path,
			    strerror(-n));
	}
	for (i = 0; i < n; i++) {
		if (links[i].loopback)
			continue;
		/* both ends here: a pair inside the namespace leads nowhere */
		if (!strcmp(links[i].kind, "veth") && links[i].peer_nsid < 0)
			continue;
		if (strcmp(links[i].kind, "veth") || links[i].peer_nsid < 0) {
			close(fd);
			return fail(err, errlen, -ENOENT,
				    "interface %s (%s) leaves the namespace by another way than a "
				    "veth to another namespace",
				    links[i].name, *links[i].kind ? links[i].kind : "device");
		}
		if (veth) {
			close(fd);
			return fail(err, errlen, -ENOENT,
				    "several veths (%s, %s): one boundary covers one", veth->name,
				    links[i].name);
		}
		veth = &links[i];
	}
	if (!veth) {
		close(fd);
		return fail(err, errlen, -ENOENT, "no interface but loopback");
	}
	/* the caller's own namespace first, then the named ones */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self >= 0 && nsid_of(fd, self) == veth->peer_nsid) {
		ret = name_in(self, NULL, veth->peer_index, out->ifname);
		close(self);
		close(fd);
		if (ret)
			return fail(err, errlen, -ENOENT, "the peer of %s is not a veth here",
				    veth->name);
		snprintf(out->inside, sizeof(out->inside), "%s", veth->name);
		return 0;
	}
	if (self >= 0)
		close(self);
	ret = -ENOENT;
	d = opendir("/run/netns");
	while (d && (de = readdir(d))) {
		char path[64];
		int ns;

		if (de->d_name[0] == '.' ||
		    snprintf(path, sizeof(path), "/run/netns/%s", de->d_name) >= (int)sizeof(path))
			continue;
		ns = open(path, O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			continue;
		if (nsid_of(fd, ns) == veth->peer_nsid &&
		    name_in(ns, path, veth->peer_index, out->ifname) == 0) {
			snprintf(out->netns, sizeof(out->netns), "%s", path);
			snprintf(out->inside, sizeof(out->inside), "%s", veth->name);
			ret = 0;
		}
		close(ns);
		if (!ret)
			break;
	}
	if (d)
		closedir(d);
	close(fd);
	if (ret)
		return fail(err, errlen, ret,
			    "the peer of %s is neither in this network namespace nor in one under "
			    "/run/netns", veth->name);
	return 0;
}

int cgf_link_master(int ifindex)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 },
		.i = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};
	char *buf = malloc(NL_BUF);
	struct nlmsghdr *h;
	ssize_t got;
	int fd, ret, left;

	if (!buf)
		return -ENOMEM;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = nl_send(fd, &req.h);
	if (ret)
		goto out;
	got = recv(fd, buf, NL_BUF, 0);
	if (got < 0) {
		ret = -errno;
		goto out;
	}
	ret = -EPROTO;
	left = (int)got;
	for (h = (struct nlmsghdr *)buf; nl_ok(h, left); h = NLMSG_NEXT(h, left)) {
		struct ifinfomsg *ifi = NLMSG_DATA(h);
		struct rtattr *a;
		int alen;

		if (h->nlmsg_type == NLMSG_ERROR) {
			ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			break;
		}
		if (h->nlmsg_type != RTM_NEWLINK || ifi->ifi_index != ifindex)
			continue;
		ret = 0; /* no IFLA_MASTER: no master */
		alen = IFLA_PAYLOAD(h);
		for (a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
			if (a->rta_type == IFLA_MASTER && RTA_PAYLOAD(a) >= sizeof(int))
				memcpy(&ret, RTA_DATA(a), sizeof(int));
		break;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The DNS proxy's sockets inside a fence's network namespace; see proxysock.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fence.h"
#include "proxysock.h"

#define BIND_TRIES 16 /* for one port free for all four sockets */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void cgf_proxy_socks_close(struct cgf_proxy_socks *s)
{
	close_fd(&s->udp4);
	close_fd(&s->tcp4);
	close_fd(&s->udp6);
	close_fd(&s->tcp6);
}

/* A socket bound to loopback at port (0: any); -errno on failure. */
static int bound(int family, int type, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		/* ::1 only: a mapped IPv4 client is the IPv4 socket's */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(fd, 128))) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len))
		return 0;
	return ntohs(sin.sin_port);
}

/* In the target namespace: all four sockets on one port, or the IPv4 pair alone. */
static int open_here(void *arg, char *err)
{
	struct cgf_proxy_socks *s = arg;
	int ret = -EADDRINUSE;

	for (int i = 0; i < BIND_TRIES; i++) {
		cgf_proxy_socks_close(s);
		s->udp4 = bound(AF_INET, SOCK_DGRAM, 0);
		if (s->udp4 < 0) {
			ret = s->udp4;
			snprintf(err, CGF_ERR_LEN, "cannot bind a UDP socket to 127.0.0.1: %s",
				 strerror(-ret));
			return ret;
		}
		s->port = local_port(s->udp4);
		s->tcp4 = bound(AF_INET, SOCK_STREAM, s->port);
		if (s->tcp4 == -EADDRINUSE)
			continue;
		if (s->tcp4 < 0) {
			ret = s->tcp4;
			snprintf(err, CGF_ERR_LEN, "cannot listen on TCP 127.0.0.1:%u: %s", s->port,
				 strerror(-ret));
			return ret;
		}
		s->udp6 = bound(AF_INET6, SOCK_DGRAM, s->port);
		if (s->udp6 == -EADDRINUSE)
			continue;
		if (s->udp6 < 0)
			return 0; /* no ::1 here (IPv6 off): IPv6 DNS stays denied */
		s->tcp6 = bound(AF_INET6, SOCK_STREAM, s->port);
		if (s->tcp6 == -EADDRINUSE)
			continue;
		if (s->tcp6 < 0) {
			close_fd(&s->udp6);
			return 0;
		}
		return 0;
	}
	snprintf(err, CGF_ERR_LEN, "no port free for UDP and TCP on loopback after %d tries",
		 BIND_TRIES);
	return ret;
}

int cgf_proxy_socks_open(pid_t pid, struct cgf_proxy_socks *out, char *err)
{
	struct cgf_proxy_socks s = { -1, -1, -1, -1, 0 };
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	ret = cgf_in_netns(path, open_here, &s, err);
	if (ret) {
		char msg[CGF_ERR_LEN];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, CGF_ERR_LEN, "network namespace of pid %d: %.400s", (int)pid, msg);
		cgf_proxy_socks_close(&s);
		return ret;
	}
	*out = s;
	return 0;
}

void cgf_proxy_socks_endpoints(const struct cgf_proxy_socks *s, struct cgf_endpoint *proxy4,
			       struct cgf_endpoint *proxy6)
{
	uint32_t lo = htonl(INADDR_LOOPBACK);

	memset(proxy4, 0, sizeof(*proxy4));
	memset(proxy6, 0, sizeof(*proxy6));
	if (s->udp4 >= 0 && s->tcp4 >= 0) {
		proxy4->family = AF_INET;
		proxy4->port = s->port;
		memcpy(proxy4->addr, &lo, 4);
	}
	if (s->udp6 >= 0 && s->tcp6 >= 0) {
		proxy6->family = AF_INET6;
		proxy6->port = s->port;
		memcpy(proxy6->addr, &in6addr_loopback, 16);
	}
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The listening sockets of a fence's DNS proxy, opened inside the fence's
 * network namespace.
 *
 * Where the proxy listens: on loopback of the namespace the fenced processes
 * live in, 127.0.0.1:P and [::1]:P, UDP and TCP on the same port P that the
 * kernel picks.  The sockets belong to cgfenced (made by one of its threads
 * after setns(2) into the namespace, which then goes back), so nothing in the
 * fence can close them, and being on loopback no other host or namespace can
 * query them.  The fence's BPF programs steer port 53 to them (cgfence.h,
 * struct cgf_config).  A namespace without IPv6 (no ::1) gets no IPv6 socket:
 * IPv6 DNS is then denied.  IPv4-mapped destinations go to the IPv4 socket.
 */
#ifndef CGF_PROXYSOCK_H
#define CGF_PROXYSOCK_H

#include <stdint.h>
#include <sys/types.h>
#include "cgfence.h"

struct cgf_proxy_socks {
	int udp4, tcp4; /* 127.0.0.1:port */
	int udp6, tcp6; /* [::1]:port, -1 when the namespace has no IPv6 */
	uint16_t port;  /* host order */
};

/*
 * Opens the sockets in the network namespace of process pid (non-blocking,
 * close-on-exec, TCP ones listening).  Returns 0, or a negative errno with a
 * message in err (CGF_ERR_LEN bytes) and nothing left open.
 */
int cgf_proxy_socks_open(pid_t pid, struct cgf_proxy_socks *out, char *err);

/* Closes what is still open (fields set to -1 by whoever took a socket are skipped). */
void cgf_proxy_socks_close(struct cgf_proxy_socks *s);

/* The endpoints for the fence config; family 0 for a missing one. */
void cgf_proxy_socks_endpoints(const struct cgf_proxy_socks *s, struct cgf_endpoint *proxy4,
			       struct cgf_endpoint *proxy6);

#endif /* CGF_PROXYSOCK_H */

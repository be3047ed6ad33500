/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Finding where a network namespace's traffic leaves it: the host end of its
 * veth, where a boundary program can judge every frame (see bpf/boundary.bpf.c).
 */
#ifndef CGF_VETH_H
#define CGF_VETH_H

#include <stddef.h>
#include <net/if.h>

/* The outside end of a namespace's only way out. */
struct cgf_veth_peer {
	char ifname[IF_NAMESIZE]; /* the peer, named as in its own namespace */
	char netns[64];           /* that namespace: "" = the caller's, else /run/netns/NAME */
	char inside[IF_NAMESIZE]; /* the end inside the namespace */
};

/*
 * Looks at the interfaces of the network namespace at netns_path (e.g.
 * /proc/PID/ns/net) through rtnetlink.  Succeeds when every interface but
 * loopback is a veth and there is exactly one, whose peer lives in the
 * caller's network namespace or in one named under /run/netns: then every
 * frame that leaves the namespace enters that peer.  Returns 0 with *out
 * filled, -ENOENT with a reason in err when there is no such single way out
 * (no interface, several, one that is not a veth, a peer nowhere to be
 * found), or another negative errno with err.
 */
int cgf_veth_find_peer(const char *netns_path, struct cgf_veth_peer *out, char *err,
		       size_t errlen);

/*
 * The interface index of the master (the bridge) of interface ifindex in the
 * calling thread's network namespace: 0 when it has none, a negative errno
 * when rtnetlink cannot tell (-ENODEV: no such interface).
 */
int cgf_link_master(int ifindex);

#endif /* CGF_VETH_H */

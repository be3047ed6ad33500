/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Constants that uapi headers define as macros and vmlinux.h therefore lacks. */
#ifndef CGF_BPF_COMPAT_H
#define CGF_BPF_COMPAT_H

#define AF_INET 2
#define AF_INET6 10

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* lo is interface 1 in every network namespace (include/net/flow.h) */
#define LOOPBACK_IFINDEX 1

#endif /* CGF_BPF_COMPAT_H */

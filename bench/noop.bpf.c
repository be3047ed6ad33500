// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * No-op programs for `make bench`, one per cgroup hook cgfence may use.
 * bench/run attaches those of the hooks the fence uses to a cgroup of their
 * own: that cgroup's connect rate is what any cgroup program costs, and their
 * bpf_stats run time per call is the floor (hook dispatch plus the clock reads
 * of bpf_stats itself, large in a VM) that the fence's figures are net of.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect4")
int noop_connect4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/connect6")
int noop_connect6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg4")
int noop_sendmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg6")
int noop_sendmsg6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/recvmsg4")
int noop_recvmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/recvmsg6")
int noop_recvmsg6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/bind4")
int noop_bind4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/bind6")
int noop_bind6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sock_create")
int noop_sock_create(struct bpf_sock *sk) { return 1; }

SEC("cgroup_skb/egress")
int noop_egress(struct __sk_buff *skb) { return 1; }

SEC("cgroup_skb/ingress")
int noop_ingress(struct __sk_buff *skb) { return 1; }

SEC("sockops")
int noop_sock_ops(struct bpf_sock_ops *ops) { return 1; }

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs and userspace: map keys and values, event
 * records, pin names, constants.  One definition, included by both sides, so
 * the two cannot drift.  Every struct uses fixed-width types, has explicit
 * padding (always written as zero) and a size assertion; byte order is noted
 * per field.
 *
 * BPF code includes this after vmlinux.h; userspace after <linux/types.h>.
 */
#ifndef CGFENCE_H
#define CGFENCE_H

/*
 * Bumped whenever a map layout below changes.  Stored in the pinned config
 * map, so a newer cgfence never misreads pins left by an older one.
 */
/*
 * 3: boundary and protections in cgf_config; 4: DNS proxy mode; 5: both;
 * 6: exact maps sized per fence, full-length keys that overflow them in the
 * tries (an older cgfence would never delete those from there); 7: the
 * setsockopt hook, counted in cgf_stats; 8: no setsockopt hook (egress
 * drops what such an option would forge).  Not bumped for cgf_event.reason,
 * taken from padding the programs always zeroed: an older program's events
 * read as CGF_REASON_UNSAID, and an older reader ignores the byte.
 */
#define CGF_ABI_VERSION 8

/* Default bpffs directory that holds one subdirectory of pins per fence. */
#define CGF_PIN_ROOT_DEFAULT "/sys/fs/bpf/cgfence"

/* Pin names inside a fence's directory (/sys/fs/bpf/cgfence/<cgroup id>/). */
#define CGF_PIN_ALLOW4 "allow4"
#define CGF_PIN_ALLOW6 "allow6"
#define CGF_PIN_EXACT4 "exact4"
#define CGF_PIN_EXACT6 "exact6"
#define CGF_PIN_CONFIG "config"
#define CGF_PIN_STATS "stats"
#define CGF_PIN_EVENTS "events"
#define CGF_PIN_LINK_PREFIX "link_"
#define CGF_PIN_BOUNDARY "link_boundary" /* tcx link of the boundary program */

/* Protocol bits of a port range. */
#define CGF_PROTO_TCP 0x1
#define CGF_PROTO_UDP 0x2
#define CGF_PROTO_ANY (CGF_PROTO_TCP | CGF_PROTO_UDP)

/*
 * How many port ranges one allowlist entry can hold.  An entry carries the
 * union of every rule whose prefix covers it (LPM returns only the longest
 * match), so this bounds how many distinct port/protocol rules may overlap one
 * address.  Kept small because it sets the size of every map value.
 */
#define CGF_MAX_RANGES 8

/* Largest allowlist a fence's maps can hold, per family. */
#define CGF_MAX_ENTRIES (1u << 21)

/*
 * Smallest capacity of a fence's exact-address maps, per family.  A hash map
 * allocates a bucket array for its capacity when it is created (16 bytes a
 * slot, prealloc or not: 32 MiB at CGF_MAX_ENTRIES), so each fence sizes its
 * own from its allowlist at attach.  Addresses learned from DNS arrive later
 * (cgfenced's syncs and the DNS proxy's grants): the floor keeps them in the
 * hash map rather than overflowing at once into the trie, for 256 KiB a map.
 */
#define CGF_EXACT_MIN_ENTRIES 16384u

/*
 * One allowed port range.  A range with expires_ns == 0 never expires;
 * otherwise it allows nothing once bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME)
 * has passed expires_ns.
 */
struct cgf_range {
	__u64 expires_ns; /* CLOCK_BOOTTIME deadline, 0 = never */
	__u16 port_lo;    /* host order, inclusive */
	__u16 port_hi;    /* host order, inclusive */
	__u8 protos;      /* CGF_PROTO_* bits */
	__u8 pad[3];
};
_Static_assert(sizeof(struct cgf_range) == 16, "cgf_range layout");

/* Value of both allowlist tries: the ranges allowed for the prefix. */
struct cgf_allow {
	__u32 n_ranges; /* ranges[0..n_ranges) are in use */
	__u32 pad;
	struct cgf_range ranges[CGF_MAX_RANGES];
};
_Static_assert(sizeof(struct cgf_allow) == 8 + 16 * CGF_MAX_RANGES, "cgf_allow layout");

/*
 * Allowlist keys; prefixlen in host order, addr in network order.  Keys of a
 * full length (32, 128) go to the exact-address hash maps, the others to the
 * LPM tries; the layout is the same so one list can feed both.  A full-length
 * key that finds its exact map full goes to the trie instead (same verdict:
 * it is its own longest match); each key is in one map only.
 */
struct cgf_key4 {
	__u32 prefixlen;
	__u8 addr[4];
};
_Static_assert(sizeof(struct cgf_key4) == 8, "cgf_key4 layout");

struct cgf_key6 {
	__u32 prefixlen;
	__u8 addr[16];
};
_Static_assert(sizeof(struct cgf_key6) == 20, "cgf_key6 layout");

/* The hooks, as counted and reported in events. */
enum cgf_hook {
	CGF_HOOK_CONNECT4 = 0,
	CGF_HOOK_CONNECT6 = 1,
	CGF_HOOK_SENDMSG4 = 2,
	CGF_HOOK_SENDMSG6 = 3,
	CGF_HOOK_EGRESS = 4,
	CGF_HOOK_BOUNDARY = 5, /* tc ingress on the host end of the workload's veth */
	CGF_HOOK_MAX = 6,
};

/* Fence-wide settings, the single element of the config map. */
#define CGF_CONFIG_AUDIT 0x1 /* log what would be denied, deny nothing */
#define CGF_CONFIG_DNS_PROXY 0x2 /* steer port 53 to the fence's proxy (below) */

#define CGF_POLICY_NAME_MAX 64 /* with the NUL */
#define CGF_LABEL_MAX 128      /* with the NUL */
#define CGF_FENCE_DNS_MAX 4    /* resolvers allowed to one fence beyond its policy */

/* A resolver a fence may reach on its port (a container's own DNS servers). */
struct cgf_endpoint {
	__u8 family;   /* AF_INET or AF_INET6; 0 = unused */
	__u8 pad;
	__u16 port;    /* host order */
	__u8 addr[16]; /* network order, IPv4 in addr[0..3] */
};
_Static_assert(sizeof(struct cgf_endpoint) == 20, "cgf_endpoint layout");

/*
 * Capabilities that let a workload send what the cgroup hooks never see
 * (AF_PACKET, tunnels, netdev rewrites): bits of cgf_config.caps_held and
 * .risk_accepted.
 */
#define CGF_RISK_NET_RAW 0x1
#define CGF_RISK_NET_ADMIN 0x2

#define CGF_IFNAME_MAX 16 /* IFNAMSIZ */
#define CGF_NETNS_PATH_MAX 64 /* with the NUL; longer paths are cut (only shown) */

struct cgf_config {
	__u32 abi_version; /* CGF_ABI_VERSION of the writer */
	__u32 flags;       /* CGF_CONFIG_* */
	__u64 cgroup_id;   /* the cgroup the fence is attached to */
	/* Read only by userspace: what cgfenced needs to adopt a fence. */
	char policy[CGF_POLICY_NAME_MAX]; /* policy name, "" for ad-hoc rules */
	char label[CGF_LABEL_MAX];        /* who asked: "container <id> <name>", ... */
	struct cgf_endpoint dns[CGF_FENCE_DNS_MAX]; /* allowed besides the policy */
	/* What status says about protections, kept with the pins. */
	__u32 caps_known;    /* 1: caps_held is what the workload was given */
	__u32 caps_held;     /* CGF_RISK_* the workload holds over its netns */
	__u32 risk_accepted; /* CGF_RISK_* its policy accepts without a boundary */
	__u32 boundary_ifindex;   /* host end of the veth, 0 = no boundary */
	__u64 boundary_netns_ino; /* inode of that interface's network namespace */
	char boundary_ifname[CGF_IFNAME_MAX];
	char boundary_netns[CGF_NETNS_PATH_MAX]; /* as given, "" = cgfence's own */
	/*
	 * DNS proxy mode (CGF_CONFIG_DNS_PROXY): TCP and UDP to port 53, whatever
	 * the address, go to the proxy cgfenced listens on inside the fence's
	 * network namespace, on the same port for TCP and UDP: IPv4 (and
	 * IPv4-mapped) destinations to proxy4, IPv6 ones to proxy6.  An
	 * endpoint with family 0 (none yet, or the daemon is gone) means DNS of
	 * that family is denied, never let through.
	 */
	struct cgf_endpoint proxy4; /* AF_INET, 127.0.0.1 */
	struct cgf_endpoint proxy6; /* AF_INET6, ::1 */
};
_Static_assert(sizeof(struct cgf_config) == 16 + CGF_POLICY_NAME_MAX + CGF_LABEL_MAX +
						    20 * CGF_FENCE_DNS_MAX + 24 +
						    CGF_IFNAME_MAX + CGF_NETNS_PATH_MAX + 2 * 20,
	       "cgf_config layout");

/* Counters, the single element of the per-CPU stats map. */
struct cgf_stats {
	__u64 allowed[CGF_HOOK_MAX];
	__u64 denied[CGF_HOOK_MAX];
	__u64 audited[CGF_HOOK_MAX]; /* would have been denied, audit mode */
	__u64 events_lost;           /* deny events the ring buffer had no room for */
	__u64 dns_steered;           /* port-53 destinations sent to the DNS proxy */
};
_Static_assert(sizeof(struct cgf_stats) == 8 * (3 * CGF_HOOK_MAX + 2), "cgf_stats layout");

/* What happened to a denied (or, in audit mode, would-be denied) attempt. */
#define CGF_EVENT_DENIED 0
#define CGF_EVENT_AUDIT 1

/*
 * Why an attempt was refused (cgf_event.reason).  Some are refused whatever
 * the allowlist says; without a reason such a denial of an allowed
 * destination would look like a bug.
 */
#define CGF_REASON_UNSAID 0          /* an event of a program older than reasons */
#define CGF_REASON_NOT_ALLOWED 1     /* not on the allowlist */
#define CGF_REASON_ANY_SOURCE 2      /* egress: IPv6 of a socket that may send from any address */
#define CGF_REASON_LOOPBACK_OFF_LO 3 /* egress: a loopback destination on a device other than
				      * lo; boundary: one on the link */
#define CGF_REASON_HEADER 4          /* what is not judged: not IP, IPv4 options or fragments,
				      * a header cut short, IPv6 to a mapped address, a VLAN tag */
#define CGF_REASON_FORGED_SOURCE 5   /* boundary: a source that does not route back to the link */
#define CGF_REASON_NO_DNS_PROXY 6    /* DNS proxy mode: DNS with no proxy to steer it to */
#define CGF_REASON_FOREIGN_SOURCE 7  /* egress: an IPv6 source that is not an address of the
				      * socket's network namespace, an IPv4 loopback source
				      * off lo */
#define CGF_REASON_MAX 8

/* A deny event, as written to the ring buffer. */
struct cgf_event {
	__u64 time_ns;   /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id; /* the fenced cgroup */
	__u32 pid;       /* tgid of current; 0 when not in process context */
	__u8 hook;       /* enum cgf_hook */
	__u8 family;     /* AF_INET or AF_INET6 of the destination as judged */
	__u8 protocol;   /* IPPROTO_* of the attempt */
	__u8 action;     /* CGF_EVENT_* */
	__u8 daddr[16];  /* network order; IPv4 in the first four bytes */
	__u16 dport;     /* host order; 0 for protocols without ports */
	__u8 reason;     /* CGF_REASON_* */
	__u8 pad[5];
	char comm[16];   /* of current */
};
_Static_assert(sizeof(struct cgf_event) == 64, "cgf_event layout");

#endif /* CGFENCE_H */

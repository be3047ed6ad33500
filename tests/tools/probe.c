// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * probe: one network action per invocation, for the integration and security
 * tests.  It prints exactly one result line on stdout:
 *
 *	ok [DETAILS]		exit 0
 *	error ENAME		exit 1 (ENAME is the errno name, e.g. EPERM)
 *
 * and exits 2 on a usage error (message on stderr, nothing on stdout).
 *
 * Every blocking step is bounded by --timeout-ms (default 2000), counted from
 * the start of the run: sockets are non-blocking where a wait is needed and
 * waited on with poll(); SO_SNDTIMEO/SO_RCVTIMEO are set as a backstop.  A wait
 * that runs out reports ETIMEDOUT.  Listeners run for --max-seconds (default
 * 30) or until SIGTERM/SIGINT, then print their counts.
 *
 * ADDR is IPv4 or IPv6; an IPv4-mapped IPv6 address (::ffff:198.18.0.3) is
 * used as written, on an AF_INET6 socket.
 *
 * Notes for the tests that drive it:
 *  - tcp-fastopen needs the client bit (1) of net.ipv4.tcp_fastopen; without
 *    it the kernel answers EOPNOTSUPP.  Without a cached cookie the SYN carries
 *    no data and the text follows once the connection is up.
 *  - ping needs the caller's gid inside net.ipv4.ping_group_range (socket()
 *    fails with EACCES otherwise).
 *  - raw-udp --sport and raw6-udp --from/--sport forge a datagram's source
 *    (IP_HDRINCL; IPV6_FREEBIND lets a raw IPv6 socket bind any address);
 *    udp-forged and tcp-forged do on a UDP or TCP socket, with no capability
 *    for their freebind ways (ip-transparent and ipv6-transparent need
 *    CAP_NET_RAW).
 *  - raw-icmp, raw-udp, raw6-udp, raw6-hdrincl, packet, packet-dgram and
 *    listen-raw-icmp need CAP_NET_RAW.  packet and packet-dgram send an IPv4
 *    UDP datagram from an AF_PACKET socket (SOCK_RAW: Ethernet header built
 *    by hand) to DSTMAC on IFNAME, past every cgroup hook.
 *  - listen-raw PROTO counts IP packets of that protocol to ADDR as they are
 *    delivered (a raw socket gets a copy whether or not the protocol exists
 *    here); listen-udp on an IPv4 multicast group joins it (--via IFADDR4).
 *  - fd-give hands an unconnected UDP socket it made to whoever connects to
 *    UNIXPATH (SCM_RIGHTS); fd-take takes it and sends on it; fd-send sends
 *    on an inherited fd: sockets made outside the process, or before it
 *    entered its cgroup.
 *  - ptrace PID tries every way into PID (ptrace, process_vm_*, /proc/PID/mem
 *    and fd/N, pidfd_getfd): "ok NAMES" lists what was allowed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_ERR 1
#define EXIT_USAGE 2

#define USAGE_ERR (-1)	     /* handler return value: bad arguments */
#define DEFAULT_TIMEOUT_MS 2000
#define MAX_TIMEOUT_MS 600000
#define DEFAULT_MAX_SECONDS 30
#define MAX_MAX_SECONDS 3600
#define DEFAULT_TEXT "cgfence-probe"
#define RAW_SPORT 40000	     /* source port of hand-built UDP headers */
#define MAX_TEXT 8192
#define RECV_BUF 65536
#define MAX_CLIENTS 64	     /* listen-tcp: connections served at once */
#define ECHO_ID_SEQ 1
#define MAX_ARGS 5	     /* positional arguments of a command */
#define MAX_FD_TRIES 256     /* ptrace: /proc/PID/fd entries tried */

/* ---- errno names ------------------------------------------------------ */

#define ENOTSUPP_KERNEL 524 /* kernel-internal, leaks out of some paths */

static const struct {
	int num;
	const char *name;
} errno_names[] = {
#define E(x) { x, #x }
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(EBADF), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY),
	E(EEXIST), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE),
	E(EMFILE), E(ENOSPC), E(EROFS), E(EPIPE), E(ERANGE), E(ENAMETOOLONG),
	E(ENOSYS), E(ELOOP), E(ENODATA), E(EPROTO), E(EBADMSG), E(EOVERFLOW),
	E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP),
	E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL),
	E(ENETDOWN), E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED),
	E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ETIMEDOUT),
	E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY),
	E(EINPROGRESS), E(ECANCELED),
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

/* ---- options ---------------------------------------------------------- */

enum {
	OPT_SEND = 1u << 0,
	OPT_REPLY = 1u << 1,
	OPT_COUNT_FILE = 1u << 2,
	OPT_MAX_SECONDS = 1u << 3,
	OPT_ECHO = 1u << 4,
	OPT_VIA = 1u << 5,
	OPT_SPORT = 1u << 6,
	OPT_FROM = 1u << 7,
};

struct opts {
	unsigned given; /* OPT_* bits seen on the command line */
	int timeout_ms;
	const char *text; /* --send, or DEFAULT_TEXT */
	size_t text_len;
	const char *count_file;
	int max_seconds;
	const char *via;
	int sport; /* source port of hand-built UDP headers (--sport) */
	const char *from; /* raw6-udp: source address, need not be local (--from) */
};

/* What a successful action reports after "ok". */
struct result {
	char detail[128];
};

static void add_detail(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_detail(struct result *r, const char *fmt, ...)
{
	size_t used = strlen(r->detail);
	va_list ap;

	if (used >= sizeof(r->detail) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(r->detail + used, sizeof(r->detail) - used, fmt, ap);
	va_end(ap);
}

/* ---- time ------------------------------------------------------------- */

static struct timespec deadline;

static void set_deadline_ms(long ms)
{
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
}

/* Milliseconds left before the deadline, never negative. */
static int remaining_ms(void)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline.tv_sec - now.tv_sec) * 1000 +
	     (deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms < 0)
		return 0;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Wait for EVENTS on FD until the deadline: 0, ETIMEDOUT or an errno. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&p, 1, remaining_ms());
		if (rc > 0)
			return 0; /* errors show up in the following call */
		if (rc == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

/* ---- addresses -------------------------------------------------------- */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

static bool parse_int(const char *s, int lo, int hi, int *out);

static bool parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 65535 || s[0] == '-')
		return false;
	*port = (uint16_t)v;
	return true;
}

/*
 * Parse ADDR (IPv4, IPv6 or IPv4-mapped IPv6; IPv6 may end in %IFNAME, its
 * scope) and an optional port.
 */
static bool parse_addr(const char *s, const char *port_s, struct addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	const char *scope = strchr(s, '%');
	char addr6[INET6_ADDRSTRLEN];
	uint16_t port = 0;

	memset(a, 0, sizeof(*a));
	if (port_s && !parse_port(port_s, &port)) {
		fprintf(stderr, "probe: bad port '%s'\n", port_s);
		return false;
	}
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		a->len = sizeof(*sin);
	} else if (snprintf(addr6, sizeof(addr6), "%.*s", scope ? (int)(scope - s) : (int)strlen(s),
			    s) < (int)sizeof(addr6) &&
		   inet_pton(AF_INET6, addr6, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (scope && !(sin6->sin6_scope_id = if_nametoindex(scope + 1))) {
			fprintf(stderr, "probe: no interface '%s'\n", scope + 1);
			return false;
		}
		a->len = sizeof(*sin6);
	} else {
		fprintf(stderr, "probe: bad address '%s'\n", s);
		return false;
	}
	a->family = a->ss.ss_family;
	return true;
}

static bool parse_addr4(const char *s, const char *port_s, struct addr *a)
{
	if (!parse_addr(s, port_s, a))
		return false;
	if (a->family != AF_INET) {
		fprintf(stderr, "probe: '%s' is not an IPv4 address\n", s);
		return false;
	}
	return true;
}

static void set_port(struct addr *a, uint16_t port)
{
	if (a->family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

/* ---- sockets ---------------------------------------------------------- */

/*
 * A socket with SO_SNDTIMEO/SO_RCVTIMEO set to the time left, as a backstop
 * for calls that would block.  Returns the fd, or -1 with errno set.
 */
static int new_socket(int family, int type, int proto)
{
	int ms = remaining_ms();
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int fd, saved;

	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1000; /* zero would mean "block forever" */
	fd = socket(family, type | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int set_int_opt(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? errno : 0;
}

/* Non-blocking connect, waited for until the deadline. */
static int connect_bounded(int fd, const struct addr *a)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	int err;

	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	err = wait_fd(fd, POLLOUT);
	if (err)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return errno;
	return soerr;
}

/* Send all of BUF on a (possibly non-blocking) connected socket. */
static int send_all(int fd, const char *buf, size_t len, size_t *sent)
{
	ssize_t n;
	int err;

	*sent = 0;
	while (*sent < len) {
		n = send(fd, buf + *sent, len - *sent, MSG_NOSIGNAL);
		if (n >= 0) {
			*sent += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;
		err = wait_fd(fd, POLLOUT);
		if (err)
			return err;
	}
	return 0;
}

/* What a send call that returned N did: 0 with " sent=N" noted, or its errno. */
static int note_sent(ssize_t n, struct result *r)
{
	if (n < 0)
		return errno;
	add_detail(r, " sent=%zd", n);
	return 0;
}

/* sendto() A with FLAGS, noted by note_sent(). */
static int send_to(int fd, const void *buf, size_t len, int flags, const struct addr *a,
		   struct result *r)
{
	return note_sent(sendto(fd, buf, len, flags, (const struct sockaddr *)&a->ss, a->len), r);
}

/*
 * Wait for reply bytes until the deadline.  End of stream before any byte is
 * reported as ENODATA.
 */
static int await_reply(int fd, struct result *r)
{
	char buf[RECV_BUF];
	ssize_t n;
	int err;

	for (;;) {
		err = wait_fd(fd, POLLIN);
		if (err)
			return err;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			add_detail(r, " reply=%zd", n);
			return 0;
		}
		if (n == 0)
			return ENODATA;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return errno;
	}
}

/* ---- checksums and packets ---------------------------------------------- */

static uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

/* Internet checksum, in network byte order. */
static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* ICMP or ICMPv6 echo request with TEXT as payload; returns its length. */
static size_t build_echo(int family, uint16_t id, const struct opts *o, uint8_t *buf,
			 size_t size)
{
	size_t len = 8 + o->text_len;

	if (len > size)
		return 0;
	memset(buf, 0, 8);
	if (family == AF_INET) {
		struct icmphdr *h = (struct icmphdr *)buf;

		h->type = ICMP_ECHO;
		h->un.echo.id = htons(id);
		h->un.echo.sequence = htons(ECHO_ID_SEQ);
	} else {
		struct icmp6_hdr *h = (struct icmp6_hdr *)buf;

		h->icmp6_type = ICMP6_ECHO_REQUEST;
		h->icmp6_id = htons(id);
		h->icmp6_seq = htons(ECHO_ID_SEQ);
	}
	memcpy(buf + 8, o->text, o->text_len);
	/* ICMPv6 checksums cover a pseudo header: the kernel fills them in. */
	if (family == AF_INET)
		((struct icmphdr *)buf)->checksum = csum_fold(sum16(buf, len, 0));
	return len;
}

/*
 * Wait for an echo reply.  RAW: the socket is a raw socket (IPv4 ones see the
 * IP header, and every ICMP message, so the id is checked); otherwise a ping
 * socket, which only sees replies to itself.
 */
static int await_echo_reply(int fd, int family, bool raw, uint16_t id, struct result *r)
{
	uint8_t buf[RECV_BUF];
	ssize_t n;
	size_t off;
	int err;

	for (;;) {
		err = wait_fd(fd, POLLIN);
		if (err)
			return err;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			return errno;
		}
		off = 0;
		if (raw && family == AF_INET) {
			if ((size_t)n < sizeof(struct iphdr))
				continue;
			off = (size_t)(buf[0] & 0x0f) * 4;
		}
		if ((size_t)n < off + 8)
			continue;
		if (family == AF_INET) {
			const struct icmphdr *h = (const struct icmphdr *)(buf + off);

			if (h->type != ICMP_ECHOREPLY || (raw && ntohs(h->un.echo.id) != id))
				continue;
		} else {
			const struct icmp6_hdr *h = (const struct icmp6_hdr *)(buf + off);

			if (h->icmp6_type != ICMP6_ECHO_REPLY || (raw && ntohs(h->icmp6_id) != id))
				continue;
		}
		add_detail(r, " reply=%zu", (size_t)n - off);
		return 0;
	}
}

/* ---- client actions ----------------------------------------------------- */

/* A stream connection of protocol PROTO (TCP, or MPTCP) to ADDR PORT. */
static int stream_connect(char **args, const struct opts *o, struct result *r, int proto)
{
	struct addr a;
	size_t sent;
	int fd, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	fd = new_socket(a.family, SOCK_STREAM | SOCK_NONBLOCK, proto);
	if (fd < 0)
		return errno;
	err = connect_bounded(fd, &a);
	if (!err && (o->given & OPT_SEND)) {
		err = send_all(fd, o->text, o->text_len, &sent);
		if (!err)
			add_detail(r, " sent=%zu", sent);
	}
	if (!err && (o->given & OPT_REPLY))
		err = await_reply(fd, r);
	close(fd);
	return err;
}

static int do_tcp(char **args, const struct opts *o, struct result *r)
{
	return stream_connect(args, o, r, 0);
}

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* MPTCP: its subflows are TCP sockets made by the kernel for this one. */
static int do_mptcp(char **args, const struct opts *o, struct result *r)
{
	return stream_connect(args, o, r, IPPROTO_MPTCP);
}

static int do_tcp_fastopen(char **args, const struct opts *o, struct result *r)
{
	struct addr a;
	size_t sent = 0, more;
	ssize_t n;
	int fd, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	fd = new_socket(a.family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno;
	n = sendto(fd, o->text, o->text_len, MSG_FASTOPEN | MSG_NOSIGNAL,
		   (const struct sockaddr *)&a.ss, a.len);
	if (n >= 0) {
		sent = (size_t)n; /* the data went out in the SYN (cookie known) */
		err = 0;
	} else {
		err = errno == EINPROGRESS ? 0 : errno;
	}
	if (!err) {
		/* Wait for the handshake, then send what the SYN did not carry. */
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		err = wait_fd(fd, POLLOUT);
		if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			err = errno;
		if (!err)
			err = soerr;
	}
	if (!err && sent < o->text_len) {
		err = send_all(fd, o->text + sent, o->text_len - sent, &more);
		sent += more;
	}
	if (!err)
		add_detail(r, " sent=%zu", sent);
	if (!err && (o->given & OPT_REPLY))
		err = await_reply(fd, r);
	close(fd);
	return err;
}

/* How the UDP probes hand the datagram to the kernel. */
enum udp_mode { UDP_SENDTO, UDP_CONNECT, UDP_SENDMSG };

static int udp_send(const struct addr *a, int sock_family, enum udp_mode mode,
		    const struct opts *o, struct result *r)
{
	struct iovec iov = { .iov_base = (void *)o->text, .iov_len = o->text_len };
	struct msghdr msg = {
		.msg_name = (void *)&a->ss,
		.msg_namelen = a->len,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n = -1;
	int fd, err;

	fd = new_socket(sock_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return errno;
	switch (mode) {
	case UDP_SENDTO:
		n = sendto(fd, o->text, o->text_len, 0, (const struct sockaddr *)&a->ss, a->len);
		break;
	case UDP_CONNECT:
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
			n = send(fd, o->text, o->text_len, 0);
		break;
	case UDP_SENDMSG:
		n = sendmsg(fd, &msg, 0);
		break;
	}
	err = note_sent(n, r);
	if (!err && (o->given & OPT_REPLY))
		err = await_reply(fd, r);
	close(fd);
	return err;
}

static int do_udp_mode(char **args, const struct opts *o, struct result *r, enum udp_mode mode)
{
	struct addr a;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	return udp_send(&a, a.family, mode, o, r);
}

static int do_udp_sendto(char **args, const struct opts *o, struct result *r)
{
	return do_udp_mode(args, o, r, UDP_SENDTO);
}

static int do_udp_connect(char **args, const struct opts *o, struct result *r)
{
	return do_udp_mode(args, o, r, UDP_CONNECT);
}

static int do_udp_sendmsg(char **args, const struct opts *o, struct result *r)
{
	return do_udp_mode(args, o, r, UDP_SENDMSG);
}

/* An AF_INET sockaddr handed to an AF_INET6 socket. */
static int do_udp6_af4(char **args, const struct opts *o, struct result *r)
{
	struct addr a;

	if (!parse_addr4(args[0], args[1], &a))
		return USAGE_ERR;
	return udp_send(&a, AF_INET6, UDP_SENDTO, o, r);
}

/* Two datagrams in one sendmmsg(); "sent" is the number of messages sent. */
static int do_udp_sendmmsg(char **args, const struct opts *o, struct result *r)
{
	struct addr a[2];
	struct iovec iov = { .iov_base = (void *)o->text, .iov_len = o->text_len };
	struct mmsghdr msgs[2];
	int family, fd, i, err;

	if (!parse_addr(args[0], args[1], &a[0]) || !parse_addr(args[2], args[3], &a[1]))
		return USAGE_ERR;
	/* An AF_INET6 socket also takes AF_INET destinations. */
	family = (a[0].family == AF_INET6 || a[1].family == AF_INET6) ? AF_INET6 : AF_INET;
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < 2; i++) {
		msgs[i].msg_hdr.msg_name = &a[i].ss;
		msgs[i].msg_hdr.msg_namelen = a[i].len;
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	fd = new_socket(family, SOCK_DGRAM, 0);
	if (fd < 0)
		return errno;
	err = note_sent(sendmmsg(fd, msgs, 2, 0), r);
	close(fd);
	return err;
}

static int do_udp_multicast(char **args, const struct opts *o, struct result *r)
{
	struct addr a;
	int fd, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	if ((a.family == AF_INET &&
	     !IN_MULTICAST(ntohl(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr))) ||
	    (a.family == AF_INET6 &&
	     !IN6_IS_ADDR_MULTICAST(&((struct sockaddr_in6 *)&a.ss)->sin6_addr))) {
		fprintf(stderr, "probe: '%s' is not a multicast group\n", args[0]);
		return USAGE_ERR;
	}
	fd = new_socket(a.family, SOCK_DGRAM, 0);
	if (fd < 0)
		return errno;
	/* Never beyond the local link; loop back so a local listener sees it. */
	if (a.family == AF_INET)
		err = set_int_opt(fd, IPPROTO_IP, IP_MULTICAST_TTL, 1) ?:
		      set_int_opt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
	else
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1) ?:
		      set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1);
	if (!err && (o->given & OPT_VIA)) {
		struct addr via;

		if (a.family != AF_INET || !parse_addr4(o->via, NULL, &via)) {
			fprintf(stderr, "probe: --via takes an IPv4 interface address, for an "
					"IPv4 group\n");
			close(fd);
			return USAGE_ERR;
		}
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF,
			       &((struct sockaddr_in *)&via.ss)->sin_addr, sizeof(struct in_addr)) < 0)
			err = errno;
	}
	if (!err)
		err = send_to(fd, o->text, o->text_len, 0, &a, r);
	close(fd);
	return err;
}

static int do_udp_broadcast(char **args, const struct opts *o, struct result *r)
{
	struct addr a;
	int fd, err;

	if (!parse_addr4(args[0], args[1], &a))
		return USAGE_ERR;
	fd = new_socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return errno;
	err = set_int_opt(fd, SOL_SOCKET, SO_BROADCAST, 1);
	if (!err)
		err = send_to(fd, o->text, o->text_len, 0, &a, r);
	close(fd);
	return err;
}

/* Echo request on a raw socket (RAW) or on a ping socket. */
static int icmp_echo(const char *addr_s, bool raw, const struct opts *o, struct result *r)
{
	_Alignas(8) uint8_t pkt[8 + MAX_TEXT];
	uint16_t id = (uint16_t)getpid();
	struct addr a;
	size_t len;
	int fd, err = 0;

	if (!parse_addr(addr_s, NULL, &a))
		return USAGE_ERR;
	fd = new_socket(a.family, raw ? SOCK_RAW : SOCK_DGRAM,
			a.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (fd < 0)
		return errno;
	len = build_echo(a.family, id, o, pkt, sizeof(pkt));
	err = send_to(fd, pkt, len, 0, &a, r);
	if (!err && (o->given & OPT_REPLY))
		err = await_echo_reply(fd, a.family, raw, id, r);
	close(fd);
	return err;
}

static int do_raw_icmp(char **args, const struct opts *o, struct result *r)
{
	return icmp_echo(args[0], true, o, r);
}

static int do_ping(char **args, const struct opts *o, struct result *r)
{
	return icmp_echo(args[0], false, o, r);
}

/*
 * IPv4 + UDP built by hand on an IPPROTO_RAW (IP_HDRINCL) socket.  The header
 * says SRC -> DST:PORT; the packet is handed to the kernel with sockaddr DST,
 * or --via ADDR to route it somewhere other than what the header says.
 */
/* An IPv4 + UDP packet with the text as payload, sums filled in; returns its length. */
/*
 * IPv4 + UDP from src to dst, built by hand into pkt, which must be 4-aligned
 * (the headers are written through struct iphdr and udphdr).
 */
static size_t build_ipv4_udp(uint8_t *pkt, const struct addr *src, const struct addr *dst,
			     const struct opts *o)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *udp = (struct udphdr *)(pkt + sizeof(*ip));
	size_t udp_len = sizeof(*udp) + o->text_len, len = sizeof(*ip) + udp_len;
	uint32_t sum;

	memset(pkt, 0, sizeof(*ip) + sizeof(*udp));
	ip->version = 4;
	ip->ihl = sizeof(*ip) / 4;
	ip->tot_len = htons((uint16_t)len);
	ip->id = htons((uint16_t)getpid());
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = ((const struct sockaddr_in *)&src->ss)->sin_addr.s_addr;
	ip->daddr = ((const struct sockaddr_in *)&dst->ss)->sin_addr.s_addr;
	ip->check = csum_fold(sum16(ip, sizeof(*ip), 0));

	udp->source = htons((uint16_t)o->sport);
	udp->dest = ((const struct sockaddr_in *)&dst->ss)->sin_port;
	udp->len = htons((uint16_t)udp_len);
	memcpy(pkt + sizeof(*ip) + sizeof(*udp), o->text, o->text_len);
	/* Pseudo header: saddr, daddr, zero + protocol, UDP length. */
	sum = sum16(&ip->saddr, 8, 0);
	sum += IPPROTO_UDP + (uint32_t)udp_len;
	sum = sum16(udp, udp_len, sum);
	udp->check = csum_fold(sum);
	if (udp->check == 0)
		udp->check = 0xffff; /* zero means "no checksum" */
	return len;
}

static int do_raw_udp(char **args, const struct opts *o, struct result *r)
{
	_Alignas(8) uint8_t pkt[sizeof(struct iphdr) + sizeof(struct udphdr) + MAX_TEXT];
	struct addr src, dst, to;
	size_t len;
	int fd, err;

	if (!parse_addr4(args[0], NULL, &src) || !parse_addr4(args[1], args[2], &dst))
		return USAGE_ERR;
	if ((o->given & OPT_VIA) ? !parse_addr4(o->via, NULL, &to) : !parse_addr4(args[1], NULL, &to))
		return USAGE_ERR;
	len = build_ipv4_udp(pkt, &src, &dst, o);

	fd = new_socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		return errno;
	err = set_int_opt(fd, IPPROTO_IP, IP_HDRINCL, 1);
	if (!err)
		err = send_to(fd, pkt, len, 0, &to, r);
	close(fd);
	return err;
}

static bool parse_mac(const char *s, uint8_t mac[ETH_ALEN])
{
	unsigned v[ETH_ALEN];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &end) != ETH_ALEN)
		return false;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (uint8_t)v[i];
	return true;
}

/*
 * An IPv4 UDP datagram put on the link by an AF_PACKET socket: SOCK_RAW with
 * a hand-built Ethernet header, SOCK_DGRAM with the kernel's.  No socket of
 * the IP stack is involved, so no cgroup hook sees it.
 */
static int packet_send(char **args, const struct opts *o, struct result *r, int type)
{
	uint8_t frame[ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr) + MAX_TEXT];
	struct ethhdr *eth = (struct ethhdr *)frame;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				   .sll_halen = ETH_ALEN };
	uint8_t mac[ETH_ALEN];
	struct addr src, dst;
	size_t len, off = type == SOCK_RAW ? ETH_HLEN : 0;
	unsigned ifindex = if_nametoindex(args[0]);
	int fd, err = 0;

	if (!ifindex) {
		fprintf(stderr, "probe: no interface '%s'\n", args[0]);
		return USAGE_ERR;
	}
	if (!parse_mac(args[1], mac) || !parse_addr4(args[2], NULL, &src) ||
	    !parse_addr4(args[3], args[4], &dst))
		return USAGE_ERR;
	{
		/* built aligned, then put after the 14-byte Ethernet header */
		_Alignas(4) uint8_t ip[sizeof(struct iphdr) + sizeof(struct udphdr) + MAX_TEXT];

		len = build_ipv4_udp(ip, &src, &dst, o);
		memcpy(frame + off, ip, len);
		len += off;
	}
	sll.sll_ifindex = (int)ifindex;
	memcpy(sll.sll_addr, mac, ETH_ALEN);
	fd = new_socket(AF_PACKET, type, 0);
	if (fd < 0)
		return errno;
	if (type == SOCK_RAW) {
		struct ifreq ifr = { 0 };

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", args[0]);
		if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
			err = errno;
			goto out;
		}
		memcpy(eth->h_dest, mac, ETH_ALEN);
		memcpy(eth->h_source, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
		eth->h_proto = htons(ETH_P_IP);
	}
	err = note_sent(sendto(fd, frame, len, 0, (const struct sockaddr *)&sll, sizeof(sll)), r);
out:
	close(fd);
	return err;
}

/*
 * An IPv4 UDP datagram written into TUN device IFNAME (which must exist, e.g.
 * `ip tuntap add mode tun`): the kernel receives it as if from that device and,
 * with forwarding on, routes it on.  No socket sends it.
 */
static int do_tun_send(char **args, const struct opts *o, struct result *r)
{
	_Alignas(8) uint8_t pkt[sizeof(struct iphdr) + sizeof(struct udphdr) + MAX_TEXT];
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	struct addr src, dst;
	size_t len;
	int fd, err = 0;

	if (strlen(args[0]) >= sizeof(ifr.ifr_name) || !parse_addr4(args[1], NULL, &src) ||
	    !parse_addr4(args[2], args[3], &dst))
		return USAGE_ERR;
	len = build_ipv4_udp(pkt, &src, &dst, o);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	memcpy(ifr.ifr_name, args[0], strlen(args[0]) + 1);
	err = ioctl(fd, TUNSETIFF, &ifr) ? errno : note_sent(write(fd, pkt, len), r);
	close(fd);
	return err;
}

static int do_packet(char **args, const struct opts *o, struct result *r)
{
	return packet_send(args, o, r, SOCK_RAW);
}

static int do_packet_dgram(char **args, const struct opts *o, struct result *r)
{
	return packet_send(args, o, r, SOCK_DGRAM);
}

/*
 * IPv6 + UDP built by hand (IPPROTO_RAW: the header is the caller's) from SRC
 * to DST:PORT; the sockaddr names DST.
 */
static int do_raw6_hdrincl(char **args, const struct opts *o, struct result *r)
{
	_Alignas(8) uint8_t pkt[sizeof(struct ip6_hdr) + sizeof(struct udphdr) + MAX_TEXT];
	struct ip6_hdr *ip6 = (struct ip6_hdr *)pkt;
	struct udphdr *udp = (struct udphdr *)(pkt + sizeof(*ip6));
	size_t udp_len = sizeof(*udp) + o->text_len, len = sizeof(*ip6) + udp_len;
	struct addr src, dst;
	uint32_t sum;
	int fd, err = 0;

	if (!parse_addr(args[0], NULL, &src) || !parse_addr(args[1], args[2], &dst))
		return USAGE_ERR;
	if (src.family != AF_INET6 || dst.family != AF_INET6) {
		fprintf(stderr, "probe: raw6-hdrincl takes IPv6 addresses\n");
		return USAGE_ERR;
	}
	memset(pkt, 0, sizeof(*ip6) + sizeof(*udp));
	ip6->ip6_flow = htonl(6u << 28);
	ip6->ip6_plen = htons((uint16_t)udp_len);
	ip6->ip6_nxt = IPPROTO_UDP;
	ip6->ip6_hlim = 64;
	ip6->ip6_src = ((struct sockaddr_in6 *)&src.ss)->sin6_addr;
	ip6->ip6_dst = ((struct sockaddr_in6 *)&dst.ss)->sin6_addr;
	udp->source = htons((uint16_t)o->sport);
	udp->dest = ((struct sockaddr_in6 *)&dst.ss)->sin6_port;
	udp->len = htons((uint16_t)udp_len);
	memcpy(pkt + sizeof(*ip6) + sizeof(*udp), o->text, o->text_len);
	/* Pseudo header: both addresses, the UDP length, the next header. */
	sum = sum16(&ip6->ip6_src, 32, 0);
	sum += (uint32_t)udp_len + IPPROTO_UDP;
	sum = sum16(udp, udp_len, sum);
	udp->check = csum_fold(sum);
	if (udp->check == 0)
		udp->check = 0xffff;

	set_port(&dst, 0); /* raw IPv6: 0 or the socket's protocol */
	fd = new_socket(AF_INET6, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		return errno;
	err = send_to(fd, pkt, len, 0, &dst, r);
	close(fd);
	return err;
}

/*
 * UDP header built by hand on an IPv6 raw socket; the kernel sums it.  --from
 * ADDR binds the socket to that source with IPV6_FREEBIND, so it need not be
 * an address of this host (a forged source).
 */
static int do_raw6_udp(char **args, const struct opts *o, struct result *r)
{
	_Alignas(8) uint8_t pkt[sizeof(struct udphdr) + MAX_TEXT];
	struct udphdr *udp = (struct udphdr *)pkt;
	size_t len = sizeof(*udp) + o->text_len;
	struct addr a, from;
	uint16_t port;
	int fd, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	if (a.family != AF_INET6) {
		fprintf(stderr, "probe: '%s' is not an IPv6 address\n", args[0]);
		return USAGE_ERR;
	}
	if ((o->given & OPT_FROM) && (!parse_addr(o->from, NULL, &from) ||
				      from.family != AF_INET6)) {
		fprintf(stderr, "probe: --from '%s' is not an IPv6 address\n", o->from);
		return USAGE_ERR;
	}
	port = ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
	set_port(&a, 0); /* raw IPv6: 0 or the socket's protocol */

	memset(udp, 0, sizeof(*udp));
	udp->source = htons((uint16_t)o->sport);
	udp->dest = htons(port);
	udp->len = htons((uint16_t)len);
	memcpy(pkt + sizeof(*udp), o->text, o->text_len);

	fd = new_socket(AF_INET6, SOCK_RAW, IPPROTO_UDP);
	if (fd < 0)
		return errno;
	err = set_int_opt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, offsetof(struct udphdr, check));
	if (!err && (o->given & OPT_FROM)) {
		set_port(&from, 0);
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1);
		if (!err && bind(fd, (const struct sockaddr *)&from.ss, from.len))
			err = errno;
	}
	if (!err)
		err = send_to(fd, pkt, len, 0, &a, r);
	close(fd);
	return err;
}

/*
 * setsockopt() through the 32-bit system call table (int 0x80, as a 32-bit
 * process calls it): the kernel runs no cgroup setsockopt program for such
 * a call.  The value must lie below 4 GiB.  0, or an errno (ENOSYS where the
 * kernel has no IA-32 emulation).
 */
static int setsockopt_ia32(int fd, int level, int name, int value)
{
#ifdef __x86_64__
	int *v = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
		      -1, 0);
	register long ebx __asm__("rbx") = fd;
	long ret;

	if (v == MAP_FAILED)
		return errno;
	*v = value;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(366L /* setsockopt, i386 */), "r"(ebx), "c"((long)level),
			   "d"((long)name), "S"((long)(uintptr_t)v), "D"((long)sizeof(*v))
			 : "memory");
	munmap(v, 4096);
	return ret < 0 ? (int)-ret : 0;
#else
	(void)fd, (void)level, (void)name, (void)value;
	return ENOSYS;
#endif
}

/*
 * A socket of TYPE (SOCK_DGRAM, SOCK_STREAM) whose source is SRC, an address
 * that need not be this host's: it turns on HOW (ip-freebind: IP_FREEBIND,
 * which an AF_INET6 socket takes too; ipv6-freebind; ip-transparent;
 * ipv6-transparent; ipv6-freebind-ia32: IPV6_FREEBIND by a 32-bit call;
 * none: no option, for net.ipv6.ip_nonlocal_bind), then binds SRC.  A HOW
 * ending in -toggle turns the option off again once bound, the same way.
 * The fd, or -1 with *err set (errno, or USAGE_ERR).
 */
static int forged_socket(char **args, int type, struct addr *to, int *err)
{
	static const struct {
		const char *name;
		int level, optname;
		bool ia32, toggle;
	} hows[] = {
		{ "ip-freebind", IPPROTO_IP, IP_FREEBIND, false, false },
		{ "ipv6-freebind", IPPROTO_IPV6, IPV6_FREEBIND, false, false },
		{ "ip-transparent", IPPROTO_IP, IP_TRANSPARENT, false, false },
		{ "ipv6-transparent", IPPROTO_IPV6, IPV6_TRANSPARENT, false, false },
		{ "ipv6-freebind-ia32", IPPROTO_IPV6, IPV6_FREEBIND, true, false },
		{ "ipv6-freebind-toggle", IPPROTO_IPV6, IPV6_FREEBIND, false, true },
		{ "ipv6-freebind-ia32-toggle", IPPROTO_IPV6, IPV6_FREEBIND, true, true },
		{ "none", 0, 0, false, false },
	};
	struct addr from;
	size_t i;
	int fd;

	*err = USAGE_ERR;
	for (i = 0; i < sizeof(hows) / sizeof(hows[0]); i++)
		if (!strcmp(args[0], hows[i].name))
			break;
	if (i == sizeof(hows) / sizeof(hows[0])) {
		fprintf(stderr, "probe: unknown way '%s' to a foreign source\n", args[0]);
		return -1;
	}
	if (!parse_addr(args[1], NULL, &from) || !parse_addr(args[2], args[3], to))
		return -1;
	if (from.family != to->family) {
		fprintf(stderr, "probe: '%s' and '%s' are not of one family\n", args[1], args[2]);
		return -1;
	}
	set_port(&from, 0);
	fd = new_socket(to->family, type, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (!hows[i].optname)
		*err = 0;
	else if (hows[i].ia32)
		*err = setsockopt_ia32(fd, hows[i].level, hows[i].optname, 1);
	else
		*err = set_int_opt(fd, hows[i].level, hows[i].optname, 1);
	if (!*err && bind(fd, (const struct sockaddr *)&from.ss, from.len))
		*err = errno;
	if (!*err && hows[i].toggle)
		*err = hows[i].ia32 ? setsockopt_ia32(fd, hows[i].level, hows[i].optname, 0) :
				      set_int_opt(fd, hows[i].level, hows[i].optname, 0);
	if (*err) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A UDP datagram from SRC to DST (forged_socket). */
static int do_udp_forged(char **args, const struct opts *o, struct result *r)
{
	struct addr to;
	int fd, err;

	fd = forged_socket(args, SOCK_DGRAM, &to, &err);
	if (fd < 0)
		return err;
	err = send_to(fd, o->text, o->text_len, 0, &to, r);
	close(fd);
	return err;
}

/*
 * A TCP connect() from SRC to DST (forged_socket): DST's SYN-ACK goes to
 * SRC, whoever that is.
 */
static int do_tcp_forged(char **args, const struct opts *o, struct result *r)
{
	struct addr to;
	int fd, err;

	(void)o, (void)r;
	fd = forged_socket(args, SOCK_STREAM | SOCK_NONBLOCK, &to, &err);
	if (fd < 0)
		return err;
	err = connect_bounded(fd, &to);
	close(fd);
	return err;
}

/* An SCTP message on a one-to-many socket: sendto() starts an association (INIT). */
static int do_sctp(char **args, const struct opts *o, struct result *r)
{
	struct addr a;
	int fd, err = 0;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	fd = new_socket(a.family, SOCK_SEQPACKET, IPPROTO_SCTP);
	if (fd < 0)
		return errno;
	err = send_to(fd, o->text, o->text_len, 0, &a, r);
	close(fd);
	return err;
}

/* ---- sockets made elsewhere ------------------------------------------------- */

static bool parse_fd(const char *s, int *fd)
{
	return parse_int(s, 0, INT_MAX, fd);
}

/* sendto(ADDR:PORT) on the fd FD this process was given (inherited). */
static int do_fd_send(char **args, const struct opts *o, struct result *r)
{
	struct addr a;
	int fd;

	if (!parse_fd(args[0], &fd)) {
		fprintf(stderr, "probe: bad fd '%s'\n", args[0]);
		return USAGE_ERR;
	}
	if (!parse_addr(args[1], args[2], &a))
		return USAGE_ERR;
	return send_to(fd, o->text, o->text_len, MSG_DONTWAIT | MSG_NOSIGNAL, &a, r);
}

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		fprintf(stderr, "probe: unix socket path '%s' too long\n", path);
		return USAGE_ERR;
	}
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/*
 * Makes an unconnected UDP socket of FAMILY (4 or 6) and hands it, with
 * SCM_RIGHTS, to the first process that connects to the unix socket PATH;
 * waits (bounded) for that one.
 */
static int do_fd_give(char **args, const struct opts *o, struct result *r)
{
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct sockaddr_un sun, tmp;
	struct cmsghdr *cm;
	int lfd, cfd = -1, ufd, err = 0;

	if (unix_addr(args[0], &sun))
		return USAGE_ERR;
	if (strlen(args[0]) + 4 >= sizeof(sun.sun_path)) {
		fprintf(stderr, "probe: unix socket path '%s' too long\n", args[0]);
		return USAGE_ERR;
	}
	tmp = sun;
	if (strcmp(args[1], "4") && strcmp(args[1], "6")) {
		fprintf(stderr, "probe: family must be 4 or 6, not '%s'\n", args[1]);
		return USAGE_ERR;
	}
	ufd = new_socket(args[1][0] == '4' ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
	if (ufd < 0)
		return errno;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0) {
		err = errno;
		close(ufd);
		return err;
	}
	/*
	 * Bound and listening under PATH.tmp first, then renamed: whoever sees
	 * PATH can connect at once.
	 */
	snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.tmp", args[0]);
	unlink(tmp.sun_path);
	if (bind(lfd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 || listen(lfd, 1) < 0 ||
	    rename(tmp.sun_path, args[0]) < 0)
		err = errno;
	if (!err)
		err = wait_fd(lfd, POLLIN);
	if (!err) {
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			err = errno;
	}
	if (!err) {
		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.space;
		msg.msg_controllen = sizeof(ctrl.space);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &ufd, sizeof(int));
		if (sendmsg(cfd, &msg, MSG_NOSIGNAL) < 0)
			err = errno;
	}
	if (cfd >= 0)
		close(cfd);
	close(lfd);
	close(ufd);
	unlink(tmp.sun_path);
	unlink(args[0]);
	if (!err)
		add_detail(r, " given");
	return err;
}

/* Takes a socket from the unix socket PATH (SCM_RIGHTS) and sendto(ADDR:PORT) on it. */
static int do_fd_take(char **args, const struct opts *o, struct result *r)
{
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct sockaddr_un sun;
	struct cmsghdr *cm;
	struct addr a;
	ssize_t n;
	int fd, ufd = -1, err = 0;

	if (unix_addr(args[0], &sun) || !parse_addr(args[1], args[2], &a))
		return USAGE_ERR;
	fd = new_socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		err = errno;
	if (!err) {
		msg.msg_control = ctrl.space;
		msg.msg_controllen = sizeof(ctrl.space);
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0)
			err = errno;
		cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
		if (!err && (!cm || cm->cmsg_type != SCM_RIGHTS))
			err = EBADMSG;
		if (!err)
			memcpy(&ufd, CMSG_DATA(cm), sizeof(int));
	}
	if (!err)
		err = send_to(ufd, o->text, o->text_len, MSG_DONTWAIT, &a, r);
	if (ufd >= 0)
		close(ufd);
	close(fd);
	return err;
}

/*
 * clone3(CLONE_INTO_CGROUP) into the cgroup directory DIR: the child exits at
 * once; "ok cloned" means a process of ours was started in DIR.
 */
static int do_clone_into(char **args, const struct opts *o, struct result *r)
{
	struct clone_args ca;
	int cgfd, status, err = 0;
	long pid;

	cgfd = open(args[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return errno;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_INTO_CGROUP;
	ca.exit_signal = SIGCHLD;
	ca.cgroup = (__u64)cgfd;
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		err = errno;
	else if (waitpid((pid_t)pid, &status, 0) >= 0)
		add_detail(r, " cloned");
	close(cgfd);
	return err;
}

/* ---- reaching into another process ------------------------------------------ */

/* Remember the first refusal; note a success in the details. */
static void reach_note(struct result *r, const char *what, bool allowed, int err, int *first)
{
	if (allowed)
		add_detail(r, " %s", what);
	else if (!*first)
		*first = err;
	fprintf(stderr, "probe: %s: %s\n", what, allowed ? "ALLOWED" : errno_name(err));
}

/*
 * Every way to reach into process PID: ptrace (PTRACE_SEIZE, PTRACE_ATTACH),
 * process_vm_readv/writev, /proc/PID/mem, opening /proc/PID/fd/N,
 * pidfd_getfd.  An
 * address of 1 makes the vm calls fail with EFAULT when they are allowed,
 * and nothing is written.  "ok NAMES" lists what was allowed (a breach);
 * "error ENAME" (the first refusal's errno) when everything was refused.
 */
static int do_ptrace(char **args, const struct opts *o, struct result *r)
{
	char path[64], byte = 0;
	struct iovec local = { .iov_base = &byte, .iov_len = 1 };
	struct iovec remote = { .iov_base = (void *)1, .iov_len = 1 };
	int pid, first = 0, fd, pidfd, status, i;
	bool allowed;
	ssize_t n;
	DIR *d;

	if (!parse_int(args[0], 1, INT_MAX, &pid)) {
		fprintf(stderr, "probe: bad pid '%s'\n", args[0]);
		return USAGE_ERR;
	}
	/* A seized tracee is not stopped; it is let go when this process exits. */
	allowed = ptrace(PTRACE_SEIZE, pid, NULL, NULL) == 0;
	reach_note(r, "ptrace-seize", allowed, errno, &first);
	if (!allowed) {
		allowed = ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0;
		reach_note(r, "ptrace-attach", allowed, errno, &first);
		if (allowed) {
			for (i = 0; i < 100 && waitpid(pid, &status, __WALL | WNOHANG) == 0; i++)
				usleep(10000);
			ptrace(PTRACE_DETACH, pid, NULL, NULL);
			kill(pid, SIGCONT);
		}
	}
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	allowed = n >= 0 || errno == EFAULT;
	reach_note(r, "process_vm_readv", allowed, errno, &first);
	n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	allowed = n >= 0 || errno == EFAULT;
	reach_note(r, "process_vm_writev", allowed, errno, &first);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	reach_note(r, "proc-mem", fd >= 0, errno, &first);
	if (fd >= 0)
		close(fd);
	/*
	 * Listing /proc/PID/fd is plain DAC (a uid-0 caller may) and shows only
	 * numbers; opening an entry would hand over the file itself (a bpf
	 * link, say), and needs ptrace access.
	 */
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		reach_note(r, "proc-fd-open", false, errno, &first);
	} else {
		struct dirent *de;
		int tried = 0, opened = 0, err = 0;

		while ((de = readdir(d)) && tried < MAX_FD_TRIES) {
			char entry[sizeof(path) + sizeof(de->d_name)];

			if (de->d_name[0] == '.')
				continue;
			snprintf(entry, sizeof(entry), "%s/%s", path, de->d_name);
			tried++;
			fd = open(entry, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd >= 0) {
				opened++;
				close(fd);
			} else if (!err) {
				err = errno;
			}
		}
		closedir(d);
		reach_note(r, "proc-fd-open", opened > 0, err ? err : ENOENT, &first);
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		reach_note(r, "pidfd_open", false, errno, &first);
	} else {
		/* EBADF would mean: allowed, but no fd 0 there. */
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, 0, 0);
		reach_note(r, "pidfd_getfd", fd >= 0 || errno == EBADF, errno, &first);
		if (fd >= 0)
			close(fd);
		close(pidfd);
	}
	if (r->detail[0])
		return 0;
	return first ? first : EPERM;
}

/* ---- io_uring ------------------------------------------------------------- */

#define URING_OP 1
#define URING_TIMEOUT 2

/*
 * Submit the operation already prepared in the ring (user_data URING_OP,
 * IOSQE_IO_LINK set) with a linked timeout for the time left, and wait for
 * its completion.  Returns 0 and the operation's result in *res, or an errno.
 */
static int uring_finish(struct io_uring *ring, int *res)
{
	struct __kernel_timespec ts, backstop;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ms = remaining_ms(), rc, seen;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	sqe = io_uring_get_sqe(ring);
	if (!sqe)
		return EBUSY;
	io_uring_prep_link_timeout(sqe, &ts, 0);
	io_uring_sqe_set_data64(sqe, URING_TIMEOUT);
	rc = io_uring_submit(ring);
	if (rc < 0)
		return -rc;

	/* Both requests complete; the backstop only guards a kernel bug. */
	backstop.tv_sec = ms / 1000 + 1;
	backstop.tv_nsec = 0;
	for (seen = 0; seen < 2; seen++) {
		rc = io_uring_wait_cqe_timeout(ring, &cqe, &backstop);
		if (rc == -ETIME)
			return ETIMEDOUT;
		if (rc < 0)
			return -rc;
		if (io_uring_cqe_get_data64(cqe) == URING_OP) {
			/* The linked timeout fired: the operation was cancelled. */
			*res = cqe->res == -ECANCELED ? -ETIMEDOUT : cqe->res;
			io_uring_cqe_seen(ring, cqe);
			return 0;
		}
		io_uring_cqe_seen(ring, cqe);
	}
	return ETIMEDOUT;
}

static int do_uring_connect(char **args, const struct opts *o, struct result *r)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct addr a;
	int fd, rc, res = 0, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	rc = io_uring_queue_init(4, &ring, 0);
	if (rc < 0)
		return -rc;
	/* Blocking socket: io_uring waits for the handshake itself. */
	fd = new_socket(a.family, SOCK_STREAM, 0);
	if (fd < 0) {
		err = errno;
		io_uring_queue_exit(&ring);
		return err;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&a.ss, a.len);
	io_uring_sqe_set_data64(sqe, URING_OP);
	sqe->flags |= IOSQE_IO_LINK;
	err = uring_finish(&ring, &res);
	if (!err && res < 0)
		err = -res;
	io_uring_queue_exit(&ring);
	close(fd);
	return err;
}

static int do_uring_sendmsg(char **args, const struct opts *o, struct result *r)
{
	struct iovec iov = { .iov_base = (void *)o->text, .iov_len = o->text_len };
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct msghdr msg;
	struct addr a;
	int fd, rc, res = 0, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &a.ss;
	msg.msg_namelen = a.len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	rc = io_uring_queue_init(4, &ring, 0);
	if (rc < 0)
		return -rc;
	fd = new_socket(a.family, SOCK_DGRAM, 0);
	if (fd < 0) {
		err = errno;
		io_uring_queue_exit(&ring);
		return err;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_sendmsg(sqe, fd, &msg, 0);
	io_uring_sqe_set_data64(sqe, URING_OP);
	sqe->flags |= IOSQE_IO_LINK;
	err = uring_finish(&ring, &res);
	if (!err && res < 0)
		err = -res;
	if (!err)
		add_detail(r, " sent=%d", res);
	io_uring_queue_exit(&ring);
	close(fd);
	return err;
}

/* ---- listeners ------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	stop_requested = 1;
}

/* SIGTERM/SIGINT end a listener early; no SA_RESTART, so poll() returns. */
static void catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Replace FILE atomically with TEXT (write FILE.tmp, rename). */
static int write_count_file(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text), done = 0;
	ssize_t n;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	while (done < len) {
		n = write(fd, text + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err && rename(tmp, path) < 0)
		err = errno;
	if (err)
		unlink(tmp);
	return err;
}

/* Counters of a listener, as written to --count-file and printed at the end. */
struct counts {
	const char *unit; /* "connections", "datagrams" or "packets" */
	unsigned long long units;
	unsigned long long bytes;
	bool with_bytes;
};

static void format_counts(const struct counts *c, char *buf, size_t size)
{
	if (c->with_bytes)
		snprintf(buf, size, "%s=%llu bytes=%llu", c->unit, c->units, c->bytes);
	else
		snprintf(buf, size, "%s=%llu", c->unit, c->units);
}

static int publish_counts(const struct opts *o, const struct counts *c)
{
	char line[128];
	int err;

	format_counts(c, line, sizeof(line));
	strcat(line, "\n");
	err = write_count_file(o->count_file, line);
	if (err)
		fprintf(stderr, "probe: cannot write %s: %s\n", o->count_file, strerror(err));
	return err;
}

/* A bound socket for a listener; IPv6 ones are v6-only.  fd or -errno. */
static int listen_socket(const struct addr *a, int type, int proto)
{
	int fd, err;

	fd = socket(a->family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
	if (fd < 0)
		return -errno;
	err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err && a->family == AF_INET6)
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (!err && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		err = errno;
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

/* poll() until the listener's deadline or a stop signal; 0 = time is up. */
static int listener_poll(struct pollfd *fds, nfds_t n)
{
	int rc;

	for (;;) {
		if (stop_requested)
			return 0;
		rc = poll(fds, n, remaining_ms());
		if (rc >= 0)
			return rc;
		if (errno != EINTR)
			return -1;
	}
}

static void listener_done(const struct counts *c, struct result *r)
{
	char line[96];

	format_counts(c, line, sizeof(line));
	add_detail(r, " %s", line);
}

static int do_listen_tcp(char **args, const struct opts *o, struct result *r)
{
	struct pollfd fds[1 + MAX_CLIENTS];
	struct counts c = { .unit = "connections", .with_bytes = true };
	char buf[RECV_BUF];
	struct addr a;
	nfds_t n = 1, i;
	ssize_t got;
	int lfd, cfd, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	lfd = listen_socket(&a, SOCK_STREAM, 0);
	if (lfd < 0)
		return -lfd;
	err = listen(lfd, 64) < 0 ? errno : publish_counts(o, &c);
	if (err) {
		close(lfd);
		return err;
	}
	fds[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (listener_poll(fds, n) > 0) {
		if (fds[0].revents & POLLIN) {
			cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (cfd >= 0) {
				c.units++;
				publish_counts(o, &c);
				if (n < 1 + MAX_CLIENTS)
					fds[n++] = (struct pollfd){ .fd = cfd, .events = POLLIN };
				else
					close(cfd); /* counted, not served */
			}
		}
		for (i = 1; i < n; i++) {
			if (!fds[i].revents)
				continue;
			got = recv(fds[i].fd, buf, sizeof(buf), 0);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got > 0) {
				c.bytes += (unsigned long long)got;
				publish_counts(o, &c);
				if (o->given & OPT_ECHO)
					(void)send(fds[i].fd, buf, (size_t)got,
						   MSG_DONTWAIT | MSG_NOSIGNAL);
				continue;
			}
			/* End of stream or error: drop the client. */
			close(fds[i].fd);
			fds[i--] = fds[--n];
		}
	}
	for (i = 0; i < n; i++)
		close(fds[i].fd);
	listener_done(&c, r);
	return 0;
}

/*
 * A listener bound to an IPv4 multicast group joins it (on the interface of
 * --via IFADDR4, else the kernel's choice): without membership the group's
 * datagrams are not delivered at all, and nothing arriving would prove nothing.
 */
static int join_group(int fd, const struct addr *a, const struct opts *o)
{
	struct ip_mreqn mreq;
	struct addr via;

	if (a->family != AF_INET ||
	    !IN_MULTICAST(ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr)))
		return 0;
	memset(&mreq, 0, sizeof(mreq));
	mreq.imr_multiaddr = ((const struct sockaddr_in *)&a->ss)->sin_addr;
	if (o->given & OPT_VIA) {
		if (!parse_addr4(o->via, NULL, &via))
			return EINVAL;
		mreq.imr_address = ((struct sockaddr_in *)&via.ss)->sin_addr;
	}
	return setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0 ? errno : 0;
}

static int do_listen_udp(char **args, const struct opts *o, struct result *r)
{
	struct counts c = { .unit = "datagrams", .with_bytes = true };
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char buf[RECV_BUF];
	struct pollfd p;
	struct addr a;
	ssize_t got;
	int fd, err;

	if (!parse_addr(args[0], args[1], &a))
		return USAGE_ERR;
	fd = listen_socket(&a, SOCK_DGRAM, 0);
	if (fd < 0)
		return -fd;
	err = join_group(fd, &a, o);
	if (!err)
		err = publish_counts(o, &c);
	if (err) {
		close(fd);
		return err;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (listener_poll(&p, 1) > 0) {
		peer_len = sizeof(peer);
		got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &peer_len);
		if (got < 0)
			continue; /* EAGAIN, or an ICMP error queued on the socket */
		c.units++;
		c.bytes += (unsigned long long)got;
		publish_counts(o, &c);
		if (o->given & OPT_ECHO)
			(void)sendto(fd, buf, (size_t)got, MSG_DONTWAIT, (struct sockaddr *)&peer,
				     peer_len);
	}
	close(fd);
	listener_done(&c, r);
	return 0;
}

/*
 * Count packets of IP protocol PROTO addressed to ADDR (for ICMP and ICMPv6:
 * echo requests only).  A raw socket gets a copy of every packet of its
 * protocol delivered in this network namespace, whether or not a socket of
 * that protocol (or the protocol itself) exists; IPv4 ones carry the IP
 * header, IPv6 ones tell the destination through IPV6_PKTINFO.
 */
static bool is_packet_to(const struct addr *a, int proto, const uint8_t *buf, size_t len,
			 const struct msghdr *msg)
{
	if (a->family == AF_INET) {
		const struct iphdr *ip = (const struct iphdr *)buf;
		size_t off;

		if (len < sizeof(*ip))
			return false;
		off = (size_t)ip->ihl * 4;
		if (ip->protocol != proto ||
		    ip->daddr != ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr)
			return false;
		return proto != IPPROTO_ICMP || (len >= off + 8 && buf[off] == ICMP_ECHO);
	}
	if (proto == IPPROTO_ICMPV6 && (len < 8 || buf[0] != ICMP6_ECHO_REQUEST))
		return false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		const struct in6_pktinfo *pi = (const struct in6_pktinfo *)CMSG_DATA(cm);

		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
			return IN6_ARE_ADDR_EQUAL(&pi->ipi6_addr,
						  &((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	}
	return false;
}

static int listen_raw(const char *addr_s, int proto, const struct opts *o, struct result *r)
{
	struct counts c = { .unit = "packets" };
	uint8_t buf[RECV_BUF];
	union {
		char space[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg;
	struct pollfd p;
	struct addr a;
	ssize_t got;
	int fd, err = 0;

	if (!parse_addr(addr_s, NULL, &a))
		return USAGE_ERR;
	fd = socket(a.family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
	if (fd < 0)
		return errno;
	if (a.family == AF_INET6 && proto == IPPROTO_ICMPV6) {
		struct icmp6_filter filter;

		ICMP6_FILTER_SETBLOCKALL(&filter);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REQUEST, &filter);
		if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) < 0)
			err = errno;
	}
	if (!err && a.family == AF_INET6)
		err = set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
	if (!err)
		err = publish_counts(o, &c);
	if (err) {
		close(fd);
		return err;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (listener_poll(&p, 1) > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctrl.space;
		msg.msg_controllen = sizeof(ctrl.space);
		got = recvmsg(fd, &msg, 0);
		if (got < 0 || !is_packet_to(&a, proto, buf, (size_t)got, &msg))
			continue;
		c.units++;
		publish_counts(o, &c);
	}
	close(fd);
	listener_done(&c, r);
	return 0;
}

static int do_listen_raw_icmp(char **args, const struct opts *o, struct result *r)
{
	struct addr a;

	if (!parse_addr(args[0], NULL, &a))
		return USAGE_ERR;
	return listen_raw(args[0], a.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6, o, r);
}

static int do_listen_raw(char **args, const struct opts *o, struct result *r)
{
	int proto;

	if (!parse_int(args[0], 1, 255, &proto)) {
		fprintf(stderr, "probe: bad IP protocol number '%s'\n", args[0]);
		return USAGE_ERR;
	}
	return listen_raw(args[1], proto, o, r);
}

/* ---- command table -------------------------------------------------------- */

struct command {
	const char *name;
	const char *args;  /* synopsis of the positional arguments */
	int nargs;
	unsigned allowed;  /* OPT_* it accepts (--timeout-ms always) */
	bool listener;     /* runs for --max-seconds, needs --count-file */
	int (*run)(char **args, const struct opts *o, struct result *r);
};

#define LISTEN_OPTS (OPT_COUNT_FILE | OPT_MAX_SECONDS | OPT_ECHO)

static const struct command commands[] = {
	{ "tcp", "ADDR PORT [--send TEXT] [--expect-reply]", 2, OPT_SEND | OPT_REPLY,
	  false, do_tcp },
	{ "mptcp", "ADDR PORT [--send TEXT] [--expect-reply]", 2, OPT_SEND | OPT_REPLY, false,
	  do_mptcp },
	{ "tcp-fastopen", "ADDR PORT --send TEXT [--expect-reply]", 2,
	  OPT_SEND | OPT_REPLY, false, do_tcp_fastopen },
	{ "udp-sendto", "ADDR PORT --send TEXT [--expect-reply]", 2, OPT_SEND | OPT_REPLY,
	  false, do_udp_sendto },
	{ "udp-connect", "ADDR PORT --send TEXT [--expect-reply]", 2,
	  OPT_SEND | OPT_REPLY, false, do_udp_connect },
	{ "udp-sendmsg", "ADDR PORT --send TEXT [--expect-reply]", 2,
	  OPT_SEND | OPT_REPLY, false, do_udp_sendmsg },
	{ "udp-sendmmsg", "ADDR PORT ADDR2 PORT2 --send TEXT", 4, OPT_SEND, false,
	  do_udp_sendmmsg },
	{ "udp6-af4", "IPV4 PORT --send TEXT [--expect-reply]", 2, OPT_SEND | OPT_REPLY,
	  false, do_udp6_af4 },
	{ "raw-icmp", "ADDR [--send TEXT] [--expect-reply]", 1, OPT_SEND | OPT_REPLY,
	  false, do_raw_icmp },
	{ "ping", "ADDR [--send TEXT] [--expect-reply]", 1, OPT_SEND | OPT_REPLY, false,
	  do_ping },
	{ "raw-udp", "SRC DST PORT --send TEXT [--via ADDR] [--sport N]", 3,
	  OPT_SEND | OPT_VIA | OPT_SPORT, false, do_raw_udp },
	{ "raw6-udp", "ADDR PORT [--send TEXT] [--from SRC] [--sport N]", 2,
	  OPT_SEND | OPT_FROM | OPT_SPORT, false, do_raw6_udp },
	{ "raw6-hdrincl", "SRC DST PORT [--send TEXT] [--sport N]", 3, OPT_SEND | OPT_SPORT, false,
	  do_raw6_hdrincl },
	{ "udp-forged", "HOW SRC DST PORT [--send TEXT]", 4, OPT_SEND, false, do_udp_forged },
	{ "tcp-forged", "HOW SRC DST PORT", 4, 0, false, do_tcp_forged },
	{ "tun-send", "IFNAME SRC DST PORT [--send TEXT]", 4, OPT_SEND, false, do_tun_send },
	{ "packet", "IFNAME DSTMAC SRC DST PORT [--send TEXT]", 5, OPT_SEND, false, do_packet },
	{ "packet-dgram", "IFNAME DSTMAC SRC DST PORT [--send TEXT]", 5, OPT_SEND, false,
	  do_packet_dgram },
	{ "uring-connect", "ADDR PORT", 2, 0, false, do_uring_connect },
	{ "uring-sendmsg", "ADDR PORT --send TEXT", 2, OPT_SEND, false, do_uring_sendmsg },
	{ "udp-multicast", "GROUP PORT --send TEXT [--via IFADDR4]", 2,
	  OPT_SEND | OPT_VIA, false, do_udp_multicast },
	{ "udp-broadcast", "ADDR PORT --send TEXT", 2, OPT_SEND, false,
	  do_udp_broadcast },
	{ "listen-tcp", "ADDR PORT --count-file FILE [--max-seconds N] [--echo]", 2,
	  LISTEN_OPTS, true, do_listen_tcp },
	{ "listen-udp", "ADDR PORT --count-file FILE [--max-seconds N] [--echo] [--via IFADDR4]",
	  2, LISTEN_OPTS | OPT_VIA, true, do_listen_udp },
	{ "listen-raw-icmp", "ADDR --count-file FILE [--max-seconds N]", 1,
	  OPT_COUNT_FILE | OPT_MAX_SECONDS, true, do_listen_raw_icmp },
	{ "listen-raw", "PROTO ADDR --count-file FILE [--max-seconds N]", 2,
	  OPT_COUNT_FILE | OPT_MAX_SECONDS, true, do_listen_raw },
	{ "sctp", "ADDR PORT [--send TEXT]", 2, OPT_SEND, false, do_sctp },
	{ "fd-send", "FD ADDR PORT [--send TEXT]", 3, OPT_SEND, false, do_fd_send },
	{ "fd-give", "UNIXPATH 4|6", 2, 0, false, do_fd_give },
	{ "fd-take", "UNIXPATH ADDR PORT [--send TEXT]", 3, OPT_SEND, false, do_fd_take },
	{ "clone-into", "CGROUPDIR", 1, 0, false, do_clone_into },
	{ "ptrace", "PID", 1, 0, false, do_ptrace },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: probe COMMAND ARGS... [--timeout-ms N]\n");
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  probe %s %s\n", commands[i].name, commands[i].args);
	fprintf(f, "prints one line: 'ok [DETAILS]' (exit 0) or 'error ENAME' (exit 1); "
		   "exit 2 on usage errors\n"
		   "--send defaults to '" DEFAULT_TEXT "' where a payload is needed; "
		   "--timeout-ms defaults to %d, --max-seconds to %d\n",
		DEFAULT_TIMEOUT_MS, DEFAULT_MAX_SECONDS);
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static const struct {
	const char *name;
	unsigned bit;
	bool has_value;
} option_names[] = {
	{ "--send", OPT_SEND, true },
	{ "--expect-reply", OPT_REPLY, false },
	{ "--count-file", OPT_COUNT_FILE, true },
	{ "--max-seconds", OPT_MAX_SECONDS, true },
	{ "--echo", OPT_ECHO, false },
	{ "--via", OPT_VIA, true },
	{ "--sport", OPT_SPORT, true },
	{ "--from", OPT_FROM, true },
	{ "--timeout-ms", 0, true },
};

/*
 * Split ARGV (after the command name) into positional arguments and options;
 * options may come anywhere.  Returns the number of positionals, or -1.
 */
static int parse_args(int argc, char **argv, const struct command *cmd, char **pos,
		      struct opts *o)
{
	int npos = 0, i;
	size_t k;

	for (i = 0; i < argc; i++) {
		const char *arg = argv[i], *val = "";

		if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
			if (npos >= cmd->nargs) {
				fprintf(stderr, "probe %s: too many arguments\n", cmd->name);
				return -1;
			}
			pos[npos++] = argv[i];
			continue;
		}
		for (k = 0; k < sizeof(option_names) / sizeof(option_names[0]); k++)
			if (strcmp(arg, option_names[k].name) == 0)
				break;
		if (k == sizeof(option_names) / sizeof(option_names[0]) ||
		    (option_names[k].bit && !(cmd->allowed & option_names[k].bit))) {
			fprintf(stderr, "probe %s: unknown option %s\n", cmd->name, arg);
			return -1;
		}
		if (option_names[k].has_value) {
			if (i + 1 >= argc) {
				fprintf(stderr, "probe %s: %s needs a value\n", cmd->name, arg);
				return -1;
			}
			val = argv[++i];
		}
		o->given |= option_names[k].bit;
		switch (option_names[k].bit) {
		case 0: /* --timeout-ms */
			if (!parse_int(val, 1, MAX_TIMEOUT_MS, &o->timeout_ms)) {
				fprintf(stderr, "probe: bad --timeout-ms '%s'\n", val);
				return -1;
			}
			break;
		case OPT_SEND:
			o->text = val;
			o->text_len = strlen(val);
			if (o->text_len > MAX_TEXT) {
				fprintf(stderr, "probe: --send text longer than %d bytes\n",
					MAX_TEXT);
				return -1;
			}
			break;
		case OPT_COUNT_FILE:
			o->count_file = val;
			break;
		case OPT_MAX_SECONDS:
			if (!parse_int(val, 1, MAX_MAX_SECONDS, &o->max_seconds)) {
				fprintf(stderr, "probe: bad --max-seconds '%s'\n", val);
				return -1;
			}
			break;
		case OPT_VIA:
			o->via = val;
			break;
		case OPT_FROM:
			o->from = val;
			break;
		case OPT_SPORT:
			if (!parse_int(val, 1, 65535, &o->sport)) {
				fprintf(stderr, "probe: bad --sport '%s'\n", val);
				return -1;
			}
			break;
		default:
			break;
		}
	}
	return npos;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.timeout_ms = DEFAULT_TIMEOUT_MS,
		.text = DEFAULT_TEXT,
		.text_len = sizeof(DEFAULT_TEXT) - 1,
		.max_seconds = DEFAULT_MAX_SECONDS,
		.sport = RAW_SPORT,
	};
	const struct command *cmd = NULL;
	struct result r = { .detail = "" };
	char *pos[MAX_ARGS];
	size_t i;
	int npos, err;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "probe: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	npos = parse_args(argc - 2, argv + 2, cmd, pos, &o);
	if (npos < 0)
		return EXIT_USAGE;
	if (npos != cmd->nargs) {
		fprintf(stderr, "usage: probe %s %s\n", cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	if (cmd->listener && !o.count_file) {
		fprintf(stderr, "probe %s: --count-file is required\n", cmd->name);
		return EXIT_USAGE;
	}

	signal(SIGPIPE, SIG_IGN);
	if (cmd->listener) {
		catch_stop_signals();
		set_deadline_ms((long)o.max_seconds * 1000);
	} else {
		set_deadline_ms(o.timeout_ms);
	}
	err = cmd->run(pos, &o, &r);
	if (err == USAGE_ERR)
		return EXIT_USAGE;
	if (err) {
		printf("error %s\n", errno_name(err));
		return EXIT_ERR;
	}
	printf("ok%s\n", r.detail);
	return EXIT_OK;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connect_rate: the load generator of `make bench` for the socket hooks.
 *
 *   connect_rate [-c CPU] server ADDR PORT SECONDS   TCP listener that accepts
 *                                                    and closes, plus a UDP sink
 *   connect_rate [-c CPU] tcp    ADDR PORT SECONDS   socket/connect/close loop
 *   connect_rate [-c CPU] udp    ADDR PORT SECONDS   unconnected 1-byte sendto loop
 *   connect_rate [-c CPU] ab ADDR PORT SECONDS PAIRS CGROUP_A CGROUP_B
 *                                  TCP loop in interleaved windows of SECONDS,
 *                                  alternately in two cgroups (see ab() below)
 *                                  (CGROUP_A/B: a cgroup directory, or DIR@NETNS_FILE to
 *                                  alternate network namespaces too: see enter_cgroup())
 *
 * ADDR is an IPv4 or IPv6 literal.  Every loop is bounded by SECONDS (and the
 * server also by SECONDS, so that a forgotten one goes away by itself).  The
 * TCP client closes with SO_LINGER 0 (RST): no TIME_WAIT, so the ephemeral
 * ports never run out however long it runs.  Each client prints one line:
 *
 *   tcp ops=N seconds=S rate=R cpu_ns=C max_us=M slow=K
 *
 * rate is operations per second, cpu_ns the CPU time of the process per
 * operation (system time includes the loopback's softirq work done on its
 * behalf, unless the kernel accounts IRQ time apart), max_us the slowest single operation and slow
 * how many took longer than 100 ms (a SYN retransmit would show there).  Any
 * failed operation ends the run with exit status 1: a fence that denies the
 * benchmark's own destination must not pass as a fast one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static socklen_t parse_addr(const char *a, const char *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	int port = atoi(p);

	memset(ss, 0, sizeof(*ss));
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "connect_rate: bad port %s\n", p);
		exit(2);
	}
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		return sizeof(*s6);
	}
	fprintf(stderr, "connect_rate: bad address %s\n", a);
	exit(2);
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int server(struct sockaddr_storage *ss, socklen_t len, double secs)
{
	int one = 1, l, u;
	double end = now_s() + secs;
	char buf[2048];

	l = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	u = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l < 0 || u < 0)
		die("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)ss, len) || bind(u, (struct sockaddr *)ss, len))
		die("bind");
	/* Deep, so that a server kept off its CPU for a while drops no SYN (the
	 * queue is min(this, net.core.somaxconn): bench/run raises the latter). */
	if (listen(l, 65535))
		die("listen");
	printf("listening\n");
	fflush(stdout);
	while (now_s() < end) {
		struct pollfd pfd[2] = { { .fd = l, .events = POLLIN }, { .fd = u, .events = POLLIN } };

		if (poll(pfd, 2, 200) < 0 && errno != EINTR)
			die("poll");
		if (pfd[0].revents) {
			for (int i = 0; i < 256; i++) {
				int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);

				if (c < 0)
					break;
				close(c);
			}
		}
		if (pfd[1].revents) {
			for (int i = 0; i < 1024; i++)
				if (recv(u, buf, sizeof(buf), MSG_DONTWAIT) < 0)
					break;
		}
	}
	return 0;
}

struct burst {
	unsigned long ops, slow;
	double seconds, max, cpu;
};

/* Connects (or sends) for secs; slow counts operations over slow_s. */
static void burst(int tcp, int u, struct sockaddr_storage *ss, socklen_t len, double secs,
		  double slow_s, struct burst *b)
{
	double start = now_s(), end = start + secs, t0 = start, t1;
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	struct timespec cpu0, cpu1;

	memset(b, 0, sizeof(*b));
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
	for (;;) {
		if (tcp) {
			int s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

			if (s < 0)
				die("socket");
			if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)))
				die("SO_LINGER");
			if (connect(s, (struct sockaddr *)ss, len))
				die("connect");
			close(s);
		} else {
			if (sendto(u, "x", 1, 0, (struct sockaddr *)ss, len) != 1)
				die("sendto");
		}
		b->ops++;
		t1 = now_s();
		if (t1 - t0 > b->max)
			b->max = t1 - t0;
		if (t1 - t0 > slow_s)
			b->slow++;
		t0 = t1;
		if (t1 >= end)
			break;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
	b->seconds = t0 - start;
	b->cpu = (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
}

static int client(int tcp, struct sockaddr_storage *ss, socklen_t len, double secs)
{
	struct burst b;
	int u = -1;

	if (!tcp) {
		u = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (u < 0)
			die("socket");
	}
	burst(tcp, u, ss, len, secs, 0.1, &b);
	printf("%s ops=%lu seconds=%.3f rate=%.1f cpu_ns=%.0f max_us=%.0f slow=%lu\n",
	       tcp ? "tcp" : "udp", b.ops, b.seconds, (double)b.ops / b.seconds,
	       b.cpu * 1e9 / (double)b.ops, b.max * 1e6, b.slow);
	return 0;
}

/*
 * Moves this process into a side of an interleaved series: SPEC is a cgroup
 * directory, optionally followed by @ and a network namespace file (such as
 * /run/netns/NAME) that the process then enters with setns(): a socket
 * belongs to the cgroup and to the network namespace its creator was in, so
 * two sides can differ by cgroup (BPF filters) or by namespace (netfilter).
 */
static void enter_cgroup(const char *spec)
{
	char dir[4096], path[4200], pid[32];
	const char *at = strchr(spec, '@');
	FILE *f;

	snprintf(dir, sizeof(dir), "%.*s", at ? (int)(at - spec) : (int)strlen(spec), spec);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	f = fopen(path, "w");
	if (!f || fputs(pid, f) < 0 || fclose(f)) {
		fprintf(stderr, "connect_rate: cannot enter %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	if (at) {
		int fd = open(at + 1, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, "connect_rate: cannot enter network namespace %s: %s\n", at + 1,
				strerror(errno));
			exit(1);
		}
		close(fd);
	}
}

/*
 * Interleaved pairs inside one process: for each pair, a window of secs in
 * cgroup A and one in cgroup B (order A B, then B A, ...), the process moving
 * itself between them; a socket belongs to the cgroup its creator was in.
 * Windows this short cancel the drift of a shared machine better than a
 * process per run.  A pair where an operation took over 50 ms (a SYN
 * retransmit, a long preemption) is run again, at most twice.  Prints
 * "pair I A_RATE B_RATE SLOW" per pair.
 */
static int ab(struct sockaddr_storage *ss, socklen_t len, double secs, int pairs, const char *cg_a,
	      const char *cg_b)
{
	for (int i = 1; i <= pairs; i++) {
		struct burst ba, bb;

		for (int try = 0; try < 3; try++) {
			for (int k = 0; k < 2; k++) {
				int a_first = i % 2, first = k == 0;

				if (first == a_first) {
					enter_cgroup(cg_a);
					burst(1, -1, ss, len, secs, 0.05, &ba);
				} else {
					enter_cgroup(cg_b);
					burst(1, -1, ss, len, secs, 0.05, &bb);
				}
			}
			if (!ba.slow && !bb.slow)
				break;
		}
		printf("pair %d %.1f %.1f %lu\n", i, (double)ba.ops / ba.seconds, (double)bb.ops / bb.seconds,
		       ba.slow + bb.slow);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	double secs;

	if (argc > 2 && !strcmp(argv[1], "-c")) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(atoi(argv[2]), &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("sched_setaffinity");
		argc -= 2;
		argv += 2;
	}
	if (argc == 8 && !strcmp(argv[1], "ab")) {
		int pairs = atoi(argv[5]);

		len = parse_addr(argv[2], argv[3], &ss);
		secs = atof(argv[4]);
		if (secs <= 0 || secs > 60 || pairs <= 0 || pairs > 10000) {
			fprintf(stderr, "connect_rate: bad SECONDS or PAIRS\n");
			return 2;
		}
		return ab(&ss, len, secs, pairs, argv[6], argv[7]);
	}
	if (argc != 5) {
		fprintf(stderr, "usage: connect_rate [-c CPU] server|tcp|udp ADDR PORT SECONDS\n"
				"       connect_rate [-c CPU] ab ADDR PORT SECONDS PAIRS CGROUP_A CGROUP_B\n");
		return 2;
	}
	len = parse_addr(argv[2], argv[3], &ss);
	secs = atof(argv[4]);
	if (secs <= 0 || secs > 3600) {
		fprintf(stderr, "connect_rate: SECONDS must be in (0, 3600]\n");
		return 2;
	}
	if (!strcmp(argv[1], "server"))
		return server(&ss, len, secs);
	if (!strcmp(argv[1], "tcp"))
		return client(1, &ss, len, secs);
	if (!strcmp(argv[1], "udp"))
		return client(0, &ss, len, secs);
	fprintf(stderr, "connect_rate: unknown mode %s\n", argv[1]);
	return 2;
}

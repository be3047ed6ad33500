// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rr: TCP request/response rate and bulk throughput for `make bench`.
 *
 *   rr [-c CPU] server ADDR PORT SECONDS   echo every byte back (many connections)
 *   rr [-c CPU] sink   ADDR PORT SECONDS   read and discard (many connections)
 *   rr [-c CPU] client ADDR PORT SECONDS   1-byte ping-pong against a server;
 *                                          prints "rr transactions=N seconds=S rate=R"
 *   rr [-c CPU] ab     ADDR PORT SECONDS PAIRS CGROUP_A CGROUP_B
 *   rr [-c CPU] streamab ADDR PORT SECONDS PAIRS CGROUP_A CGROUP_B
 *   (CGROUP_A/B: a cgroup directory, or DIR@NETNS_FILE: the side also enters that
 *   network namespace with setns() before it connects; see enter_cgroup())
 *
 * ab and streamab open one connection from each cgroup (the process moves
 * itself into CGROUP_A, connects, into CGROUP_B, connects: a socket belongs to
 * the cgroup its creator was in), then alternate windows of SECONDS on the
 * two connections, PAIRS times, in the order A B, B A, A B, ...: ab does
 * 1-byte ping-pong (against `server`), streamab sends 64 KiB writes (against
 * `sink`) and counts what left the send queue, waiting for the queue to
 * drain before the other connection's window.  Each prints
 * "pair I A_RATE B_RATE" per pair: transactions/s, or bits/s.
 *
 * TCP_NODELAY everywhere.  Every loop is bounded by SECONDS (servers too);
 * a failed connect, send or receive ends the client with exit status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define CHUNK (64 * 1024)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static socklen_t parse_addr(const char *a, const char *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	int port = atoi(p);

	memset(ss, 0, sizeof(*ss));
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "rr: bad port %s\n", p);
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
	fprintf(stderr, "rr: bad address %s\n", a);
	exit(2);
}

/* Echoes (echo) or discards everything on up to MAX_CONNS connections. */
static int server(struct sockaddr_storage *ss, socklen_t len, double secs, int echo)
{
	struct pollfd pfd[1 + MAX_CONNS];
	int one = 1, n = 1;
	double end = now_s() + secs;
	static char buf[CHUNK];

	pfd[0].fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pfd[0].events = POLLIN;
	if (pfd[0].fd < 0)
		die("socket");
	setsockopt(pfd[0].fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(pfd[0].fd, (struct sockaddr *)ss, len))
		die("bind");
	if (listen(pfd[0].fd, 64))
		die("listen");
	while (now_s() < end) {
		if (poll(pfd, (nfds_t)n, 200) <= 0)
			continue;
		if (pfd[0].revents) {
			int c = accept4(pfd[0].fd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0 && n < 1 + MAX_CONNS) {
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				pfd[n].fd = c;
				pfd[n].events = POLLIN;
				pfd[n].revents = 0;
				n++;
			} else if (c >= 0) {
				close(c);
			}
		}
		for (int i = 1; i < n; i++) {
			ssize_t r;

			if (!pfd[i].revents)
				continue;
			r = recv(pfd[i].fd, buf, echo ? 64 : sizeof(buf), MSG_DONTWAIT);
			/* A sink reads on while there is data, a bounded while. */
			for (int k = 0; !echo && r > 0 && k < 64; k++) {
				ssize_t r2 = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);

				if (r2 <= 0)
					break;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			/* Echo replies are tiny: a blocking send never waits long. */
			if (r <= 0 || (echo && send(pfd[i].fd, buf, (size_t)r, MSG_NOSIGNAL) != r)) {
				close(pfd[i].fd);
				pfd[i--] = pfd[--n];
			}
		}
	}
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
		fprintf(stderr, "rr: cannot enter %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	if (at) {
		int fd = open(at + 1, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, "rr: cannot enter network namespace %s: %s\n", at + 1,
				strerror(errno));
			exit(1);
		}
		close(fd);
	}
}

static int connect_to(struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1, s;
	struct timeval tv = { .tv_sec = 5 };

	s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die("socket");
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)ss, len))
		die("connect");
	return s;
}

/* 1-byte ping-pong on s for secs; returns transactions per second. */
static double pingpong(int s, double secs)
{
	unsigned long n = 0;
	double start = now_s(), end = start + secs, t = start;

	for (;;) {
		char b = 'x';

		if (send(s, &b, 1, MSG_NOSIGNAL) != 1)
			die("send");
		if (recv(s, &b, 1, 0) != 1)
			die("recv");
		n++;
		/* A clock read per 16 transactions: ~1 us of a ~30 us round trip otherwise. */
		if (!(n & 15)) {
			t = now_s();
			if (t >= end)
				break;
		}
	}
	return (double)n / (t - start);
}

static int outq(int s)
{
	int q = 0;

	if (ioctl(s, SIOCOUTQ, &q))
		die("SIOCOUTQ");
	return q;
}

/* Bulk writes on s for secs, then waits for its queue to drain; returns bits/s delivered. */
static double stream(int s, double secs)
{
	static char buf[CHUNK];
	double start = now_s(), end = start + secs, t;
	unsigned long long sent = 0;
	int q0 = outq(s), q1;

	do {
		ssize_t r = send(s, buf, sizeof(buf), MSG_NOSIGNAL);

		if (r <= 0)
			die("send");
		sent += (unsigned long long)r;
		t = now_s();
	} while (t < end);
	q1 = outq(s);
	/* Drain (bounded): the other connection's window must not share the link. */
	for (double d = now_s() + 1; outq(s) && now_s() < d;)
		usleep(200);
	return (double)(sent + (unsigned long long)q0 - (unsigned long long)q1) * 8 / (t - start);
}

static int ab(int bulk, struct sockaddr_storage *ss, socklen_t len, double secs, int pairs,
	      const char *cg_a, const char *cg_b)
{
	int sa, sb;

	enter_cgroup(cg_a);
	sa = connect_to(ss, len);
	enter_cgroup(cg_b);
	sb = connect_to(ss, len);
	/* Warm both up. */
	if (bulk) {
		stream(sa, secs);
		stream(sb, secs);
	} else {
		pingpong(sa, secs);
		pingpong(sb, secs);
	}
	for (int i = 1; i <= pairs; i++) {
		double ra, rb;

		if (i % 2) {
			ra = bulk ? stream(sa, secs) : pingpong(sa, secs);
			rb = bulk ? stream(sb, secs) : pingpong(sb, secs);
		} else {
			rb = bulk ? stream(sb, secs) : pingpong(sb, secs);
			ra = bulk ? stream(sa, secs) : pingpong(sa, secs);
		}
		printf("pair %d %.1f %.1f\n", i, ra, rb);
		fflush(stdout);
	}
	close(sa);
	close(sb);
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
	if (argc == 8 && (!strcmp(argv[1], "ab") || !strcmp(argv[1], "streamab"))) {
		int pairs = atoi(argv[5]);

		len = parse_addr(argv[2], argv[3], &ss);
		secs = atof(argv[4]);
		if (secs <= 0 || secs > 60 || pairs <= 0 || pairs > 10000) {
			fprintf(stderr, "rr: bad SECONDS or PAIRS\n");
			return 2;
		}
		return ab(!strcmp(argv[1], "streamab"), &ss, len, secs, pairs, argv[6], argv[7]);
	}
	if (argc != 5) {
		fprintf(stderr, "usage: rr [-c CPU] server|sink|client ADDR PORT SECONDS\n"
				"       rr [-c CPU] ab|streamab ADDR PORT SECONDS PAIRS CGROUP_A CGROUP_B\n");
		return 2;
	}
	len = parse_addr(argv[2], argv[3], &ss);
	secs = atof(argv[4]);
	if (secs <= 0 || secs > 3600) {
		fprintf(stderr, "rr: SECONDS must be in (0, 3600]\n");
		return 2;
	}
	if (!strcmp(argv[1], "server") || !strcmp(argv[1], "sink"))
		return server(&ss, len, secs, !strcmp(argv[1], "server"));
	if (!strcmp(argv[1], "client")) {
		int s = connect_to(&ss, len);
		double start = now_s(), rate = pingpong(s, secs);

		close(s);
		printf("rr seconds=%.3f rate=%.1f\n", now_s() - start, rate);
		return 0;
	}
	fprintf(stderr, "rr: unknown mode %s\n", argv[1]);
	return 2;
}

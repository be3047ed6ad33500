// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connect_rate: the load generator of `make bench` for the socket hooks.
 *
 *   connect_rate [-c CPU] server ADDR PORT SECONDS   TCP listener that accepts
 *                                                    and closes, plus a UDP sink
 *   connect_rate [-c CPU] tcp    ADDR PORT SECONDS   socket/connect/close loop
 *   connect_rate [-c CPU] udp    ADDR PORT SECONDS   unconnected 1-byte sendto loop
 *   connect_rate [-c CPU] rounds ADDR PORT SECONDS ROUNDS SIDE SIDE...
 *                                  TCP loop in interleaved windows of SECONDS,
 *                                  in turn on each side (bench/side.h), ROUNDS
 *                                  times (see rounds() below)
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
#define TOOL "connect_rate"
#include "side.h"

#include <netinet/tcp.h>
#include <poll.h>

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
 * Interleaved windows inside one process: each round runs a window of secs
 * on every side, in the order round_order() gives, the process moving itself
 * between them.  Windows this short cancel the drift of a shared machine
 * better than a process per run.  A round where an operation took over
 * 50 ms (a SYN retransmit, a long preemption) is run again, at most twice.
 * Prints "round I RATE... SLOW" per round, the rates in the sides' order.
 */
static int rounds(struct sockaddr_storage *ss, socklen_t len, double secs, int n_rounds,
		  int n_sides, char **sides)
{
	for (int i = 0; i < n_rounds; i++) {
		struct burst b[MAX_SIDES];
		double rate[MAX_SIDES];
		int order[MAX_SIDES];
		unsigned long slow = 0;

		round_order(i, n_sides, order);
		for (int try = 0; try < 3; try++) {
			slow = 0;
			for (int k = 0; k < n_sides; k++) {
				enter_side(sides[order[k]]);
				burst(1, -1, ss, len, secs, 0.05, &b[order[k]]);
				slow += b[order[k]].slow;
			}
			if (!slow)
				break;
		}
		for (int k = 0; k < n_sides; k++)
			rate[k] = (double)b[k].ops / b[k].seconds;
		print_round(i, n_sides, rate, slow);
	}
	return 0;
}

static bool is_rounds(const char *mode)
{
	return !strcmp(mode, "rounds");
}

int main(int argc, char **argv)
{
	struct run_args a;

	pin_cpu_arg(&argc, &argv);
	parse_args(argc, argv, is_rounds,
		   "usage: connect_rate [-c CPU] server|tcp|udp ADDR PORT SECONDS\n"
		   "       connect_rate [-c CPU] rounds ADDR PORT SECONDS ROUNDS SIDE SIDE...\n", &a);
	if (is_rounds(a.mode))
		return rounds(&a.ss, a.len, a.secs, a.rounds, a.n_sides, a.sides);
	if (!strcmp(a.mode, "server"))
		return server(&a.ss, a.len, a.secs);
	if (!strcmp(a.mode, "tcp"))
		return client(1, &a.ss, a.len, a.secs);
	if (!strcmp(a.mode, "udp"))
		return client(0, &a.ss, a.len, a.secs);
	fprintf(stderr, "connect_rate: unknown mode %s\n", a.mode);
	return 2;
}

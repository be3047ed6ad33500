// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rr: TCP request/response rate and bulk throughput for `make bench`.
 *
 *   rr [-c CPU] server ADDR PORT SECONDS   echo every byte back (many connections)
 *   rr [-c CPU] sink   ADDR PORT SECONDS   read and discard (many connections)
 *   rr [-c CPU] client ADDR PORT SECONDS   1-byte ping-pong against a server;
 *                                          prints "rr transactions=N seconds=S rate=R"
 *   rr [-c CPU] rounds ADDR PORT SECONDS ROUNDS SIDE SIDE...
 *   rr [-c CPU] streamrounds ADDR PORT SECONDS ROUNDS SIDE SIDE...
 *
 * rounds and streamrounds run, ROUNDS times, a window of SECONDS on every
 * side in turn, in the order round_order() gives (bench/side.h): the process
 * moves itself into the side, connects (a socket belongs to the cgroup and
 * network namespace its creator was in), warms the connection up for a fifth
 * of SECONDS, then counts: rounds does 1-byte ping-pong (against `server`),
 * streamrounds sends 64 KiB writes (against `sink`) and counts what left the
 * send queue, waiting for the queue to drain before the next window.  Each
 * prints "round I RATE... 0" per round, the rates (transactions/s, or bits/s)
 * in the sides' order.
 *
 * TCP_NODELAY everywhere.  Every loop is bounded by SECONDS (servers too);
 * a failed connect, send or receive ends the client with exit status 1.
 */
#define TOOL "rr"
#include "side.h"

#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>

#define MAX_CONNS 64
#define CHUNK (64 * 1024)

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

static double window(int bulk, int s, double secs)
{
	return bulk ? stream(s, secs) : pingpong(s, secs);
}

/*
 * Every window runs on a connection of its own, opened from inside its side
 * and warmed up for warm seconds before the window counts: a long-lived
 * connection per side would carry whatever made it fast or slow (its port's
 * hash, its buffers' autotuning) into every round, a fixed difference that
 * no number of rounds averages out.
 */
static int rounds(int bulk, struct sockaddr_storage *ss, socklen_t len, double secs, int n_rounds,
		  int n_sides, char **sides)
{
	double warm = secs / 5;

	for (int i = 0; i < n_rounds; i++) {
		double rate[MAX_SIDES];
		int order[MAX_SIDES];

		round_order(i, n_sides, order);
		for (int k = 0; k < n_sides; k++) {
			int s;

			enter_side(sides[order[k]]);
			s = connect_to(ss, len);
			window(bulk, s, warm);
			rate[order[k]] = window(bulk, s, secs);
			close(s);
		}
		print_round(i, n_sides, rate, 0);
	}
	return 0;
}

static bool is_rounds(const char *mode)
{
	return !strcmp(mode, "rounds") || !strcmp(mode, "streamrounds");
}

int main(int argc, char **argv)
{
	struct run_args a;

	pin_cpu_arg(&argc, &argv);
	parse_args(argc, argv, is_rounds,
		   "usage: rr [-c CPU] server|sink|client ADDR PORT SECONDS\n"
		   "       rr [-c CPU] rounds|streamrounds ADDR PORT SECONDS ROUNDS SIDE SIDE...\n", &a);
	if (is_rounds(a.mode))
		return rounds(!strcmp(a.mode, "streamrounds"), &a.ss, a.len, a.secs, a.rounds,
			      a.n_sides, a.sides);
	if (!strcmp(a.mode, "server") || !strcmp(a.mode, "sink"))
		return server(&a.ss, a.len, a.secs, !strcmp(a.mode, "server"));
	if (!strcmp(a.mode, "client")) {
		int s = connect_to(&a.ss, a.len);
		double start = now_s(), rate = pingpong(s, a.secs);

		close(s);
		printf("rr seconds=%.3f rate=%.1f\n", now_s() - start, rate);
		return 0;
	}
	fprintf(stderr, "rr: unknown mode %s\n", a.mode);
	return 2;
}

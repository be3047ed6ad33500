/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the benchmark's load generators (connect_rate.c, rr.c) share: the
 * clock, argument parsing, and the "sides" of an interleaved series.
 *
 * A side is where the load generator runs for one window: a cgroup directory
 * (BPF filters attach there), optionally followed by @ and a network
 * namespace file such as /run/netns/NAME (netfilter rules live there).  A
 * socket belongs to the cgroup and to the network namespace its creator was
 * in, so one process can measure several filters by moving itself between
 * sides, window after window, and the drift of a shared machine falls on all
 * of them alike.
 *
 * Each tool defines TOOL (its name, for messages) before including this.
 */
#ifndef BENCH_SIDE_H
#define BENCH_SIDE_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIDES 8
#define MAX_ROUNDS 10000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, TOOL ": %s: %s\n", what, strerror(errno));
	exit(1);
}

static socklen_t parse_addr(const char *a, const char *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	int port = atoi(p);

	memset(ss, 0, sizeof(*ss));
	if (port <= 0 || port > 65535) {
		fprintf(stderr, TOOL ": bad port %s\n", p);
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
	fprintf(stderr, TOOL ": bad address %s\n", a);
	exit(2);
}

/* "-c CPU" in front of the mode pins the process; shifts the arguments past it. */
static void pin_cpu_arg(int *argc, char ***argv)
{
	cpu_set_t set;

	if (*argc <= 2 || strcmp((*argv)[1], "-c"))
		return;
	CPU_ZERO(&set);
	CPU_SET(atoi((*argv)[2]), &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
	*argc -= 2;
	*argv += 2;
}

/* Moves this process into a side (see the top of this file). */
static void enter_side(const char *spec)
{
	char dir[4096], path[4200], pid[32];
	const char *at = strchr(spec, '@');
	FILE *f;

	snprintf(dir, sizeof(dir), "%.*s", at ? (int)(at - spec) : (int)strlen(spec), spec);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	f = fopen(path, "w");
	if (!f || fputs(pid, f) < 0 || fclose(f)) {
		fprintf(stderr, TOOL ": cannot enter %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	if (at) {
		int fd = open(at + 1, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, TOOL ": cannot enter network namespace %s: %s\n", at + 1,
				strerror(errno));
			exit(1);
		}
		close(fd);
	}
}

/*
 * The order of the sides in round i (from 0): rotated by i, and reversed in
 * every other cycle of n rounds, so that over 2n rounds each side runs in
 * each position, and after each other side, equally often (two sides: A B,
 * B A, B A, A B, ...).
 */
static void round_order(int i, int n, int order[MAX_SIDES])
{
	int rev = (i / n) % 2;

	for (int k = 0; k < n; k++) {
		int v = (i + k) % n;

		order[rev ? n - 1 - k : k] = v;
	}
}

/* One round's line: "round I RATE... SLOW", the rates in the sides' order. */
static void print_round(int i, int n_sides, const double *rate, unsigned long slow)
{
	printf("round %d", i + 1);
	for (int k = 0; k < n_sides; k++)
		printf(" %.1f", rate[k]);
	printf(" %lu\n", slow);
	fflush(stdout);
}

/* A command line after "-c CPU": MODE ADDR PORT SECONDS [ROUNDS SIDE SIDE...] */
struct run_args {
	const char *mode;
	struct sockaddr_storage ss;
	socklen_t len;
	double secs;
	int rounds, n_sides; /* interleaved modes only */
	char **sides;
};

/*
 * Parses the command line; an interleaved mode (is_rounds) takes ROUNDS and
 * 2 to MAX_SIDES sides after SECONDS, any other nothing more.  Wrong
 * arguments print usage and exit with status 2.
 */
static void parse_args(int argc, char **argv, bool (*is_rounds)(const char *mode),
		       const char *usage, struct run_args *a)
{
	bool r = argc > 1 && is_rounds(argv[1]);

	memset(a, 0, sizeof(*a));
	if (argc < 5 || (!r && argc != 5) || (r && argc < 8)) {
		fputs(usage, stderr);
		exit(2);
	}
	a->mode = argv[1];
	a->len = parse_addr(argv[2], argv[3], &a->ss);
	a->secs = atof(argv[4]);
	if (a->secs <= 0 || a->secs > (r ? 60 : 3600)) {
		fprintf(stderr, TOOL ": SECONDS must be in (0, %d]\n", r ? 60 : 3600);
		exit(2);
	}
	if (!r)
		return;
	a->rounds = atoi(argv[5]);
	a->n_sides = argc - 6;
	a->sides = argv + 6;
	if (a->rounds <= 0 || a->rounds > MAX_ROUNDS || a->n_sides > MAX_SIDES) {
		fprintf(stderr, TOOL ": ROUNDS must be in [1, %d], and 2 to %d sides given\n",
			MAX_ROUNDS, MAX_SIDES);
		exit(2);
	}
}

#endif /* BENCH_SIDE_H */

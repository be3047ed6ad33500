// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tools of bench/dns.sh.
 *
 *   dnsproxy_bench serve PORT UPSTREAM_PORT RULE...
 *       The DNS proxy engine (user/lib/dnsproxy.c) on 127.0.0.1:PORT (UDP and
 *       TCP), forwarding to 127.0.0.1:UPSTREAM_PORT, names allowed by RULEs;
 *       allow() writes each address into a BPF hash map shaped like the
 *       fence's exact4/exact6 maps (as the daemon will), so the cost of the
 *       map update is in the figures.  Runs until SIGTERM/SIGINT, then prints
 *       its counters on stderr.
 *   dnsproxy_bench lat PORT NAMES_FILE SECONDS
 *       One query at a time (closed loop) over UDP to 127.0.0.1:PORT, names
 *       from NAMES_FILE ("name type" lines, dnsperf's format) in turn; prints
 *       "p50_us p90_us p99_us qps answered timeouts".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
/* before ldns: without it, ldns/common.h defines _Bool as signed char */
#include <stdbool.h>
#include <ldns/ldns.h>

#include "cgfence.h"
#include "dnsproxy.h"
#include "policy.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct maps {
	int v4, v6;
	unsigned long long fails;
};

static uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int allow_map(void *ctx, int family, const uint8_t addr[16], uint32_t ttl,
		     const char *name)
{
	struct maps *m = ctx;
	struct cgf_allow v = { .n_ranges = 1 };

	(void)name;
	v.ranges[0].expires_ns = boottime_ns() + (uint64_t)ttl * 1000000000ull;
	v.ranges[0].port_lo = 0;
	v.ranges[0].port_hi = 65535;
	v.ranges[0].protos = CGF_PROTO_TCP | CGF_PROTO_UDP;
	if (family == AF_INET) {
		struct cgf_key4 k = { .prefixlen = 32 };

		memcpy(k.addr, addr, 4);
		if (bpf_map_update_elem(m->v4, &k, &v, BPF_ANY) < 0)
			goto fail;
	} else {
		struct cgf_key6 k = { .prefixlen = 128 };

		memcpy(k.addr, addr, 16);
		if (bpf_map_update_elem(m->v6, &k, &v, BPF_ANY) < 0)
			goto fail;
	}
	return 0;
fail:
	m->fails++;
	return -errno;
}

static int bind_lo(int type, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), one = 1, big = 4 << 20;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int serve(int argc, char **argv)
{
	struct sockaddr_storage up = { 0 };
	struct sockaddr_in *up4 = (struct sockaddr_in *)&up;
	struct cgf_dnsproxy_opts o = { .upstreams = &up, .n_upstreams = 1, .min_ttl = 5,
				       .max_ttl = 86400, .cache_max_entries = 65536,
				       .inflight_per_client = 1024 };
	struct cgf_dnsproxy_client_opts co = { 0 };
	struct cgf_policy pol = { 0 };
	struct cgf_dnsproxy_names *names;
	struct cgf_dnsproxy *p;
	struct cgf_dnsproxy_client *c;
	struct cgf_dnsproxy_stats st;
	struct cgf_error err;
	struct maps m = { 0 };
	int ret;

	if (argc < 5)
		return 2;
	up4->sin_family = AF_INET;
	up4->sin_port = htons((uint16_t)atoi(argv[3]));
	up4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 4; i < argc; i++)
		if (cgf_policy_add_rule(&pol, argv[i], &err)) {
			fprintf(stderr, "bad rule '%s': %s\n", argv[i], err.reason);
			return 1;
		}
	m.v4 = bpf_map_create(BPF_MAP_TYPE_HASH, "cgfb_exact4", sizeof(struct cgf_key4),
			      sizeof(struct cgf_allow), 65536, NULL);
	m.v6 = bpf_map_create(BPF_MAP_TYPE_HASH, "cgfb_exact6", sizeof(struct cgf_key6),
			      sizeof(struct cgf_allow), 65536, NULL);
	if (m.v4 < 0 || m.v6 < 0) {
		fprintf(stderr, "cannot create the BPF maps: %s\n", strerror(errno));
		return 1;
	}
	if (cgf_dnsproxy_names_new(&pol, &names) || (ret = cgf_dnsproxy_new(&o, &p)) < 0) {
		fprintf(stderr, "cannot start the engine\n");
		return 1;
	}
	co.udp_fd = bind_lo(SOCK_DGRAM, atoi(argv[2]));
	co.tcp_fd = bind_lo(SOCK_STREAM, atoi(argv[2]));
	co.names = names;
	co.allow = allow_map;
	co.ctx = &m;
	if (co.udp_fd < 0 || co.tcp_fd < 0 || cgf_dnsproxy_client_add(p, &co, &c) < 0) {
		fprintf(stderr, "cannot listen on port %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop) {
		struct pollfd pfd = { .fd = cgf_dnsproxy_fd(p), .events = POLLIN };
		int t = cgf_dnsproxy_timeout_ms(p);

		poll(&pfd, 1, t < 0 || t > 200 ? 200 : t);
		if (cgf_dnsproxy_process(p) < 0)
			break;
	}
	cgf_dnsproxy_client_stats(c, &st);
	fprintf(stderr,
		"proxy: queries %llu answered %llu refused %llu malformed %llu servfail %llu "
		"cache_hits %llu allowed %llu map_failures %llu\n",
		(unsigned long long)st.queries, (unsigned long long)st.answered,
		(unsigned long long)st.refused, (unsigned long long)st.malformed,
		(unsigned long long)st.servfail, (unsigned long long)st.cache_hits,
		(unsigned long long)st.addresses_allowed, m.fails);
	cgf_dnsproxy_free(p);
	cgf_dnsproxy_names_free(names);
	cgf_policy_free(&pol);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int lat(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t **qs = NULL, buf[4096];
	size_t *qlen = NULL, nq = 0, capq = 0, n = 0, capl = 1 << 16;
	uint64_t *l = malloc(capl * sizeof(*l)), t_end, t0;
	unsigned long timeouts = 0;
	char line[512];
	FILE *f;
	int fd;

	if (argc < 5 || !l)
		return 2;
	a.sin_port = htons((uint16_t)atoi(argv[2]));
	f = fopen(argv[3], "r");
	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f)) {
		char name[256], type[16];
		ldns_pkt *q;
		ldns_rr_type t;

		if (sscanf(line, "%255s %15s", name, type) != 2)
			continue;
		t = ldns_get_rr_type_by_name(type);
		q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), t, LDNS_RR_CLASS_IN, LDNS_RD);
		if (nq == capq) {
			capq = capq ? capq * 2 : 256;
			qs = realloc(qs, capq * sizeof(*qs));
			qlen = realloc(qlen, capq * sizeof(*qlen));
		}
		ldns_pkt_set_id(q, (uint16_t)nq);
		ldns_pkt2wire(&qs[nq], q, &qlen[nq]);
		ldns_pkt_free(q);
		nq++;
	}
	fclose(f);
	if (!nq)
		return 1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 1;
	t0 = mono_ns();
	t_end = t0 + (uint64_t)(atof(argv[4]) * 1e9);
	for (size_t i = 0; mono_ns() < t_end; i++) {
		const uint8_t *q = qs[i % nq];
		uint16_t id = (uint16_t)i;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t s;
		ssize_t r;

		memcpy(buf, q, qlen[i % nq]);
		buf[0] = (uint8_t)(id >> 8);
		buf[1] = (uint8_t)id;
		s = mono_ns();
		if (send(fd, buf, qlen[i % nq], 0) < 0)
			return 1;
		for (;;) {
			if (poll(&pfd, 1, 1000) != 1) {
				timeouts++;
				break;
			}
			r = recv(fd, buf, sizeof(buf), 0);
			if (r >= 12 && buf[0] == (uint8_t)(id >> 8) && buf[1] == (uint8_t)id) {
				if (n == capl) {
					capl *= 2;
					l = realloc(l, capl * sizeof(*l));
				}
				l[n++] = mono_ns() - s;
				break;
			}
		}
	}
	if (!n) {
		printf("0 0 0 0 0 %lu\n", timeouts);
		return 0;
	}
	qsort(l, n, sizeof(*l), cmp_u64);
	printf("%.1f %.1f %.1f %.0f %zu %lu\n", l[n / 2] / 1e3, l[n * 9 / 10] / 1e3,
	       l[n * 99 / 100] / 1e3, n / ((mono_ns() - t0) / 1e9), n, timeouts);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "serve"))
		return serve(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "lat"))
		return lat(argc, argv);
	fprintf(stderr, "usage: dnsproxy_bench serve PORT UPSTREAM_PORT RULE... | "
			"lat PORT NAMES_FILE SECONDS\n");
	return 2;
}

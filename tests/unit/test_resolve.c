// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for user/lib/resolve.c.
 *
 * Every query goes to loopback, to servers this test starts itself:
 *  - dnsmasq (Debian's dnsmasq-base) on 127.0.53.1 and ::1, a high port, answering
 *    only its own --host-record names under cgf.test (NXDOMAIN for the rest of
 *    cgf.test, REFUSED for anything else: it has no upstream);
 *  - a scripted server (a child of this test) on 127.0.0.1 for answers dnsmasq
 *    cannot give: SERVFAIL for one family only, a dropped AAAA, malformed replies;
 *  - a socket bound and never read (timeouts) and a port nobody listens on.
 * The resolv.conf tests read temporary files and send nothing.  The resolver of
 * /etc/resolv.conf is never used.
 *
 * Without dnsmasq the dnsmasq tests are skipped, unless CI=true: then they fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "resolve.h"

#define DNSMASQ_ADDR "127.0.53.1"
#define FAKE_ADDR "127.0.0.1"
#define TIMEOUT_MS 3000
#define MANY 20
#define LOTS 64 /* 64 A records do not fit 512 bytes: the answer comes over TCP */

static const char *dnsmasq_path = "/usr/sbin/dnsmasq";
static bool have_dnsmasq;
static bool have_ipv6;
static uint16_t dnsmasq_port;
static pid_t dnsmasq_pid = -1;
static char dnsmasq_log[] = "/tmp/cgf-test-dnsmasq-XXXXXX";
static pid_t fake_pid = -1;
static uint16_t fake_port;
static int silent_fd = -1;
static uint16_t silent_port;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- raw DNS, for the probe and the scripted server ---- */

static size_t put_name(uint8_t *p, const char *name)
{
	size_t n = 0;

	while (*name) {
		size_t len = strcspn(name, ".");

		p[n++] = (uint8_t)len;
		memcpy(p + n, name, len);
		n += len;
		name += len;
		if (*name == '.')
			name++;
	}
	p[n++] = 0;
	return n;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static size_t build_query(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype)
{
	size_t n;

	memset(buf, 0, 12);
	put16(buf, id);
	put16(buf + 2, 0x0100); /* RD */
	put16(buf + 4, 1);
	n = 12 + put_name(buf + 12, name);
	put16(buf + n, qtype);
	put16(buf + n + 2, 1);
	return n + 4;
}

static int bind_udp(int family, const char *addr, uint16_t port, uint16_t *bound, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -1;
	}
	if (bound) {
		len = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &len);
		*bound = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

/* Sends one A query for name to addr:port over UDP; true when any answer comes. */
static bool probe(const char *addr, uint16_t port, const char *name, int wait_ms)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint8_t q[512], r[512];
	struct pollfd pfd;
	bool ok = false;
	size_t len;
	ssize_t n;
	int fd;

	inet_pton(AF_INET, addr, &sin.sin_addr);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	len = build_query(q, 0x5eed, name, 1);
	if (sendto(fd, q, len, 0, (struct sockaddr *)&sin, sizeof(sin)) == (ssize_t)len) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, wait_ms) == 1) {
			n = recv(fd, r, sizeof(r), 0);
			ok = n >= 12 && r[0] == 0x5e && r[1] == 0xed;
		}
	}
	close(fd);
	return ok;
}

/* ---- the scripted server ---- */

enum fake_reply { F_ADDR, F_RCODE, F_DROP, F_GARBAGE, F_CNAME };

struct fake_rule {
	const char *name;
	uint16_t qtype;
	enum fake_reply reply;
	int rcode;
	const char *addr;
	uint32_t ttl;
};

static const struct fake_rule fake_rules[] = {
	{ "partial.fake.test", 1, F_ADDR, 0, "198.18.0.7", 60 },
	{ "partial.fake.test", 28, F_RCODE, 2 /* SERVFAIL */, NULL, 0 },
	{ "halfslow.fake.test", 1, F_ADDR, 0, "198.18.0.8", 61 },
	{ "halfslow.fake.test", 28, F_DROP, 0, NULL, 0 },
	{ "servfail.fake.test", 1, F_RCODE, 2, NULL, 0 },
	{ "servfail.fake.test", 28, F_RCODE, 2, NULL, 0 },
	{ "refused.fake.test", 1, F_RCODE, 5, NULL, 0 },
	{ "refused.fake.test", 28, F_RCODE, 5, NULL, 0 },
	{ "nxa.fake.test", 1, F_RCODE, 3, NULL, 0 },
	{ "nxa.fake.test", 28, F_DROP, 0, NULL, 0 },
	{ "garbage.fake.test", 1, F_GARBAGE, 0, NULL, 0 },
	{ "garbage.fake.test", 28, F_GARBAGE, 0, NULL, 0 },
	{ "nodata.fake.test", 1, F_RCODE, 0, NULL, 0 },
	{ "nodata.fake.test", 28, F_RCODE, 0, NULL, 0 },
	/* CNAME (TTL 30) to target.fake.test, whose A has TTL 300 */
	{ "cname.fake.test", 1, F_CNAME, 0, "198.18.0.9", 300 },
	{ "cname.fake.test", 28, F_CNAME, 0, NULL, 0 },
};

static size_t fake_answer(const uint8_t *q, size_t qlen, uint8_t *r)
{
	char name[256];
	size_t pos = 12, n = 0, qend, k;
	const struct fake_rule *rule = NULL;
	uint16_t qtype;

	if (qlen < 17)
		return 0;
	while (pos < qlen && q[pos]) {
		size_t len = q[pos++];

		if (len > 63 || pos + len >= qlen || n + len + 1 >= sizeof(name))
			return 0;
		if (n)
			name[n++] = '.';
		for (k = 0; k < len; k++)
			name[n++] = (char)(q[pos + k] | 0x20);
		pos += len;
	}
	name[n] = '\0';
	qend = pos + 5;
	if (qend > qlen)
		return 0;
	qtype = (uint16_t)(q[pos + 1] << 8 | q[pos + 2]);
	for (k = 0; k < sizeof(fake_rules) / sizeof(fake_rules[0]); k++)
		if (!strcmp(fake_rules[k].name, name) && fake_rules[k].qtype == qtype)
			rule = &fake_rules[k];

	memcpy(r, q, qend);
	r[2] = 0x80 | 0x04 | (q[2] & 0x01); /* QR, AA, RD as asked */
	r[3] = 0x80; /* RA */
	memset(r + 6, 0, 6);
	if (!rule) {
		r[3] |= 5;
		return qend;
	}
	switch (rule->reply) {
	case F_DROP:
		return 0;
	case F_RCODE:
		r[3] |= (uint8_t)rule->rcode;
		return qend;
	case F_GARBAGE:
		put16(r + 6, 1);
		memcpy(r + qend, "\xc0\x0c\x00", 3); /* a record cut short */
		return qend + 3;
	case F_ADDR:
		put16(r + 6, 1);
		pos = qend;
		memcpy(r + pos, "\xc0\x0c", 2);
		put16(r + pos + 2, qtype);
		put16(r + pos + 4, 1);
		put32(r + pos + 6, rule->ttl);
		put16(r + pos + 10, 4);
		inet_pton(AF_INET, rule->addr, r + pos + 12);
		return pos + 16;
	case F_CNAME:
		pos = qend;
		memcpy(r + pos, "\xc0\x0c", 2);
		put16(r + pos + 2, 5);
		put16(r + pos + 4, 1);
		put32(r + pos + 6, 30);
		n = put_name(r + pos + 12, "target.fake.test");
		put16(r + pos + 10, (uint16_t)n);
		pos += 12 + n;
		put16(r + 6, 1);
		if (!rule->addr)
			return pos; /* the target has no AAAA */
		pos += put_name(r + pos, "target.fake.test");
		put16(r + pos, 1);
		put16(r + pos + 2, 1);
		put32(r + pos + 4, rule->ttl);
		put16(r + pos + 8, 4);
		inet_pton(AF_INET, rule->addr, r + pos + 10);
		put16(r + 6, 2);
		return pos + 14;
	}
	return 0;
}

/* The child's loop: answers by fake_rules, ends with its parent or after 5 minutes. */
static void fake_serve(int fd)
{
	int64_t end = now_ms() + 300000;
	struct sockaddr_storage from;
	uint8_t q[512], r[1024];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	socklen_t fromlen;
	ssize_t n;
	size_t len;

	while (now_ms() < end && getppid() != 1) {
		if (poll(&pfd, 1, 200) != 1)
			continue;
		fromlen = sizeof(from);
		n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
		if (n <= 0)
			continue;
		len = fake_answer(q, (size_t)n, r);
		if (len)
			sendto(fd, r, len, 0, (struct sockaddr *)&from, fromlen);
	}
}

static int fake_start(void)
{
	int fd = bind_udp(AF_INET, FAKE_ADDR, 0, &fake_port, SOCK_DGRAM);

	if (fd < 0)
		return -1;
	fake_pid = fork();
	if (fake_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fake_serve(fd);
		_exit(0);
	}
	close(fd);
	return fake_pid < 0 ? -1 : 0;
}

/* ---- dnsmasq ---- */

static void stop_child(pid_t *pid)
{
	int i;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (i = 0; i < 100; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = -1;
			return;
		}
		usleep(20000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = -1;
}

/* A port free for UDP and TCP on DNSMASQ_ADDR (and ::1 when there is IPv6). */
static uint16_t pick_port(void)
{
	uint16_t port = 0;
	int fds[4] = { -1, -1, -1, -1 }, i;

	fds[0] = bind_udp(AF_INET, DNSMASQ_ADDR, 0, &port, SOCK_DGRAM);
	if (fds[0] < 0)
		return 0;
	fds[1] = bind_udp(AF_INET, DNSMASQ_ADDR, port, NULL, SOCK_STREAM);
	if (have_ipv6) {
		fds[2] = bind_udp(AF_INET6, "::1", port, NULL, SOCK_DGRAM);
		fds[3] = bind_udp(AF_INET6, "::1", port, NULL, SOCK_STREAM);
	}
	if (fds[1] < 0 || (have_ipv6 && (fds[2] < 0 || fds[3] < 0)))
		port = 0;
	for (i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return port;
}

static pid_t dnsmasq_spawn(uint16_t port, int logfd)
{
	static char records[MANY + LOTS][64];
	char *argv[32 + MANY + LOTS];
	char portarg[32], userarg[64] = "", grouparg[64] = "";
	struct passwd *pw = getpwuid(geteuid());
	struct group *gr = getgrgid(getegid());
	int argc = 0, i;
	pid_t pid;

	snprintf(portarg, sizeof(portarg), "--port=%u", (unsigned int)port);
	/* Keep our own user: no privilege change, so PR_SET_PDEATHSIG holds. */
	if (pw)
		snprintf(userarg, sizeof(userarg), "--user=%s", pw->pw_name);
	if (gr)
		snprintf(grouparg, sizeof(grouparg), "--group=%s", gr->gr_name);

	argv[argc++] = (char *)dnsmasq_path;
	argv[argc++] = "--keep-in-foreground";
	argv[argc++] = "--log-facility=-";
	argv[argc++] = "--conf-file=/dev/null";
	argv[argc++] = "--no-resolv";
	argv[argc++] = "--no-hosts";
	argv[argc++] = "--no-poll";
	argv[argc++] = "--pid-file=";
	argv[argc++] = "--bind-interfaces";
	argv[argc++] = "--listen-address=" DNSMASQ_ADDR;
	if (have_ipv6)
		argv[argc++] = "--listen-address=::1";
	argv[argc++] = portarg;
	if (*userarg)
		argv[argc++] = userarg;
	if (*grouparg)
		argv[argc++] = grouparg;
	argv[argc++] = "--local=/cgf.test/";
	argv[argc++] = "--host-record=v4.cgf.test,198.18.0.4,300";
	argv[argc++] = "--host-record=v6.cgf.test,2001:db8::6,600";
	argv[argc++] = "--host-record=both.cgf.test,198.18.0.1,2001:db8::1,1234";
	for (i = 0; i < MANY; i++) {
		snprintf(records[i], sizeof(records[i]), "--host-record=many.cgf.test,198.18.1.%d,77",
			 i + 1);
		argv[argc++] = records[i];
	}
	for (i = 0; i < LOTS; i++) {
		snprintf(records[MANY + i], sizeof(records[i]),
			 "--host-record=lots.cgf.test,198.18.2.%d,88", i + 1);
		argv[argc++] = records[MANY + i];
	}
	argv[argc] = NULL;

	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		execv(dnsmasq_path, argv);
		_exit(127);
	}
	return pid;
}

static void dump_log(void)
{
	char buf[4096];
	ssize_t n;
	int fd = open(dnsmasq_log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		print_message("%s", buf);
	}
	close(fd);
}

/* Starts dnsmasq and waits (5 s at most per try) until it answers. */
static int dnsmasq_start(void)
{
	int attempt, i, logfd, status;

	logfd = mkstemp(dnsmasq_log);
	if (logfd < 0) {
		print_error("cannot create '%s': %s\n", dnsmasq_log, strerror(errno));
		return -1;
	}
	for (attempt = 0; attempt < 3; attempt++) {
		dnsmasq_port = pick_port();
		if (!dnsmasq_port)
			continue;
		if (ftruncate(logfd, 0) == 0)
			lseek(logfd, 0, SEEK_SET);
		dnsmasq_pid = dnsmasq_spawn(dnsmasq_port, logfd);
		if (dnsmasq_pid < 0)
			break;
		for (i = 0; i < 50; i++) {
			if (probe(DNSMASQ_ADDR, dnsmasq_port, "v4.cgf.test", 100)) {
				close(logfd);
				return 0;
			}
			if (waitpid(dnsmasq_pid, &status, WNOHANG) == dnsmasq_pid) {
				dnsmasq_pid = -1;
				break;
			}
		}
		stop_child(&dnsmasq_pid);
	}
	close(logfd);
	print_error("dnsmasq did not start; its output:\n");
	dump_log();
	return -1;
}

static int dns_teardown(void **state);

static int dns_setup(void **state)
{
	const char *ci = getenv("CI");
	int fd;

	fd = bind_udp(AF_INET6, "::1", 0, NULL, SOCK_DGRAM);
	have_ipv6 = fd >= 0;
	if (fd >= 0)
		close(fd);

	if (fake_start()) {
		print_error("cannot start the scripted DNS server: %s\n", strerror(errno));
		goto fail;
	}
	silent_fd = bind_udp(AF_INET, "127.0.0.1", 0, &silent_port, SOCK_DGRAM);
	if (silent_fd < 0) {
		print_error("cannot bind a silent socket: %s\n", strerror(errno));
		goto fail;
	}

	if (getenv("DNSMASQ"))
		dnsmasq_path = getenv("DNSMASQ");
	if (access(dnsmasq_path, X_OK)) {
		if (ci && !strcmp(ci, "true")) {
			print_error("%s not found and CI=true: install dnsmasq-base\n",
				    dnsmasq_path);
			goto fail;
		}
		print_message("[  SKIP    ] %s not found (install dnsmasq-base): "
			      "skipping the tests that need it\n",
			      dnsmasq_path);
		return 0;
	}
	if (dnsmasq_start())
		goto fail;
	have_dnsmasq = true;
	return 0;
fail:
	dns_teardown(state); /* cmocka skips the group teardown after a failed setup */
	return -1;
}

static int dns_teardown(void **state)
{
	stop_child(&dnsmasq_pid);
	stop_child(&fake_pid);
	if (silent_fd >= 0)
		close(silent_fd);
	silent_fd = -1;
	if (strcmp(dnsmasq_log + strlen(dnsmasq_log) - 6, "XXXXXX"))
		unlink(dnsmasq_log);
	return 0;
}

/* ---- helpers ---- */

#define NEED_DNSMASQ()               \
	do {                         \
		if (!have_dnsmasq)   \
			skip();      \
	} while (0)

static struct cgf_server server4(const char *addr, uint16_t port)
{
	struct cgf_server s = { .family = AF_INET, .port = port };

	assert_int_equal(inet_pton(AF_INET, addr, s.addr), 1);
	return s;
}

static struct cgf_resolver *resolver_for(const struct cgf_server *servers, size_t n)
{
	struct cgf_resolver *res = NULL;
	char err[256] = "";
	int ret = cgf_resolver_new(&res, servers, n, err, sizeof(err));

	if (ret)
		fail_msg("cgf_resolver_new: %d: %s", ret, err);
	return res;
}

static struct cgf_resolver *dnsmasq_resolver(void)
{
	struct cgf_server s = server4(DNSMASQ_ADDR, dnsmasq_port);

	return resolver_for(&s, 1);
}

static struct cgf_resolver *fake_resolver(void)
{
	struct cgf_server s = server4(FAKE_ADDR, fake_port);

	return resolver_for(&s, 1);
}

/* How many answers have this family, address and TTL. */
static size_t count_answer(const struct cgf_answer *a, size_t n, const char *addr, uint32_t ttl)
{
	struct cgf_answer want = { 0 };
	size_t i, hits = 0;

	want.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(want.family, addr, want.addr), 1);
	for (i = 0; i < n; i++)
		if (a[i].family == want.family && !memcmp(a[i].addr, want.addr, 16) &&
		    a[i].ttl == ttl)
			hits++;
	return hits;
}

struct resolve_case {
	const char *name;
	int timeout_ms;
	int ret;
	size_t n;
	const char *addrs[2]; /* expected answers, with ttl */
	uint32_t ttl;
	const char *err; /* expected message, or NULL */
};

static void check_case(struct cgf_resolver *res, const struct resolve_case *c)
{
	struct cgf_answer *a = NULL;
	size_t n = 0, i;
	char err[256] = "";
	int ret;

	ret = cgf_resolve(res, c->name, c->timeout_ms ? c->timeout_ms : TIMEOUT_MS, &a, &n, err,
			  sizeof(err));
	if (ret != c->ret || n != c->n)
		fail_msg("'%s': got %d (%s) with %zu answers, want %d with %zu", c->name, ret,
			 err, n, c->ret, c->n);
	for (i = 0; i < 2 && c->addrs[i]; i++)
		if (count_answer(a, n, c->addrs[i], c->ttl) != 1)
			fail_msg("'%s': no answer %s with ttl %u", c->name, c->addrs[i],
				 (unsigned int)c->ttl);
	if (c->err)
		assert_string_equal(err, c->err);
	if (!n)
		assert_null(a);
	free(a);
}

/* ---- server parsing and resolv.conf (no queries) ---- */

static void test_server_parse_valid(void **state)
{
	static const struct {
		const char *text;
		int family;
		const char *addr;
		uint16_t port;
	} cases[] = {
		{ "127.0.0.1", AF_INET, "127.0.0.1", 53 },
		{ "127.0.0.1:5353", AF_INET, "127.0.0.1", 5353 },
		{ "198.18.0.1:65535", AF_INET, "198.18.0.1", 65535 },
		{ "198.18.0.1:1", AF_INET, "198.18.0.1", 1 },
		{ "::1", AF_INET6, "::1", 53 },
		{ "2001:db8::53", AF_INET6, "2001:db8::53", 53 },
		{ "::1:53", AF_INET6, "::1:53", 53 }, /* bare IPv6: no port */
		{ "::ffff:198.18.0.1", AF_INET6, "::ffff:198.18.0.1", 53 },
		{ "[::1]", AF_INET6, "::1", 53 },
		{ "[::1]:5353", AF_INET6, "::1", 5353 },
		{ "[2001:db8::1]:53", AF_INET6, "2001:db8::1", 53 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cgf_server s, want = { .family = cases[i].family, .port = cases[i].port };
		char err[128] = "";
		int ret;

		memset(&s, 0xaa, sizeof(s));
		inet_pton(want.family, cases[i].addr, want.addr);
		ret = cgf_server_parse(cases[i].text, &s, err, sizeof(err));
		if (ret)
			fail_msg("'%s': %d: %s", cases[i].text, ret, err);
		if (s.family != want.family || s.port != want.port ||
		    memcmp(s.addr, want.addr, want.family == AF_INET ? 4 : 16))
			fail_msg("'%s': wrong server (family %d port %u)", cases[i].text,
				 s.family, (unsigned int)s.port);
	}
}

static void test_server_parse_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"localhost",
		"dns.example",
		"1.2.3",
		"256.1.1.1",
		"1.2.3.4:",
		"1.2.3.4:0",
		"1.2.3.4:65536",
		"1.2.3.4:99999999999999999999",
		"1.2.3.4:53x",
		"1.2.3.4:+53",
		"1.2.3.4:-1",
		"1.2.3.4: 53",
		" 1.2.3.4",
		"1.2.3.4 ",
		"1.2.3.4:53:53",
		"[::1",
		"[::1]x",
		"[::1]:",
		"[::1]:0",
		"[::1]:65536",
		"[::1]53",
		"[1.2.3.4]",
		"[1.2.3.4]:53",
		"[]",
		"[]:53",
		"::1::2",
		"fe80::1%lo",
		"[fe80::1%lo]:53",
		"[[::1]]",
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cgf_server s;
		char err[128] = "", want[128];
		int ret = cgf_server_parse(cases[i], &s, err, sizeof(err));

		if (ret != -EINVAL)
			fail_msg("'%s': got %d, want -EINVAL", cases[i], ret);
		snprintf(want, sizeof(want), "bad resolver address '%s': ", cases[i]);
		if (strncmp(err, want, strlen(want)) && strcmp(err, "bad resolver address '': empty"))
			fail_msg("'%s': message '%s'", cases[i], err);
	}
	assert_int_equal(cgf_server_parse(NULL, NULL, NULL, 0), -EINVAL);
}

static char *write_conf(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/cgf-test-resolv-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_resolv_conf_servers(void **state)
{
	const char *conf = "# a comment\n"
			   "search example.com\n"
			   "; nameserver 198.18.9.9\n"
			   "nameserver 127.0.53.1 # trailing comment\n"
			   "  nameserver\t::1\n"
			   "nameserver not-an-address\n"
			   "nameserver 127.0.53.2,127.0.53.3\n"
			   "options timeout:30 attempts:5\n";
	static const char *const want[] = { "127.0.53.1", "::1", "127.0.53.2", "127.0.53.3" };
	const struct cgf_server *servers;
	struct cgf_resolver *res = NULL;
	char *path = write_conf(conf), err[256] = "";
	size_t n, i;
	int ret;

	ret = cgf_resolver_new_conf(&res, path, err, sizeof(err));
	unlink(path);
	if (ret)
		fail_msg("%d: %s", ret, err);
	n = cgf_resolver_servers(res, &servers);
	assert_int_equal(n, 4);
	for (i = 0; i < n; i++) {
		struct cgf_server s;

		assert_int_equal(cgf_server_parse(want[i], &s, err, sizeof(err)), 0);
		assert_int_equal(servers[i].family, s.family);
		assert_int_equal(servers[i].port, 53);
		assert_memory_equal(servers[i].addr, s.addr, 16);
	}
	cgf_resolver_free(res);
}

static void test_resolv_conf_none(void **state)
{
	static const struct {
		const char *text; /* NULL: a file that does not exist */
		const char *before, *after; /* the message, around the path */
	} cases[] = {
		{ "", "no nameserver in '", "'" },
		{ "# nameserver 127.0.53.1\nsearch example.com\n", "no nameserver in '", "'" },
		{ "nameserver dns.example\n", "no nameserver in '", "'" },
		/* c-ares drops site-local IPv6 servers and would ask 127.0.0.1 instead */
		{ "nameserver fec0:0:0:ffff::1\n", "no usable nameserver in '", "'" },
		{ NULL, "cannot read '", "': No such file or directory" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cgf_resolver *res = (struct cgf_resolver *)&res;
		char *path, err[256] = "", want[256];
		int ret;

		if (cases[i].text) {
			path = write_conf(cases[i].text);
		} else {
			path = write_conf("");
			unlink(path);
		}
		ret = cgf_resolver_new_conf(&res, path, err, sizeof(err));
		unlink(path);
		if (ret != -ENOENT)
			fail_msg("case %zu: got %d (%s), want -ENOENT", i, ret, err);
		assert_null(res);
		snprintf(want, sizeof(want), "%s%s%s", cases[i].before, path, cases[i].after);
		assert_string_equal(err, want);
	}
}

static void test_resolver_new_invalid(void **state)
{
	struct cgf_server s = server4("127.0.0.1", 0);
	struct cgf_resolver *res = NULL;
	char err[128] = "";

	assert_int_equal(cgf_resolver_new(&res, &s, 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bad resolver address '127.0.0.1:0': port 0");
	assert_null(res);
	s.port = 53;
	s.family = AF_UNIX;
	assert_int_equal(cgf_resolver_new(&res, &s, 1, err, sizeof(err)), -EINVAL);
	assert_null(res);
	assert_int_equal(cgf_resolver_new(&res, NULL, 1, err, sizeof(err)), -EINVAL);
}

/* Bad arguments are refused before anything is sent. */
static void test_resolve_invalid(void **state)
{
	struct cgf_server s = server4("127.0.0.1", 9); /* never asked */
	struct cgf_resolver *res = resolver_for(&s, 1);
	struct cgf_answer *a = (struct cgf_answer *)&a;
	char name[300], err[512] = "";
	size_t n = 7;

	assert_int_equal(cgf_resolve(res, "", 100, &a, &n, err, sizeof(err)), -EINVAL);
	assert_null(a);
	assert_int_equal(n, 0);
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(cgf_resolve(res, name, 100, &a, &n, err, sizeof(err)), -EINVAL);
	name[64] = '\0'; /* one label of 64 bytes: c-ares refuses it */
	assert_int_equal(cgf_resolve(res, name, 100, &a, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "': bad name"));
	assert_int_equal(cgf_resolve(res, "v4.cgf.test", 0, &a, &n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cannot resolve 'v4.cgf.test': timeout of 0 ms");
	cgf_resolver_free(res);
}

/* ---- answers from dnsmasq ---- */

static void test_dnsmasq_answers(void **state)
{
	static const struct resolve_case cases[] = {
		{ .name = "v4.cgf.test", .n = 1, .addrs = { "198.18.0.4" }, .ttl = 300 },
		{ .name = "v6.cgf.test", .n = 1, .addrs = { "2001:db8::6" }, .ttl = 600 },
		{ .name = "both.cgf.test",
		  .n = 2,
		  .addrs = { "198.18.0.1", "2001:db8::1" },
		  .ttl = 1234 },
		{ .name = "both.cgf.test.", /* absolute form */
		  .n = 2,
		  .addrs = { "198.18.0.1", "2001:db8::1" },
		  .ttl = 1234 },
		{ .name = "nx.cgf.test",
		  .ret = -ENOENT,
		  .err = "cannot resolve 'nx.cgf.test': no such domain (NXDOMAIN)" },
		/* outside its zone dnsmasq, with no upstream, refuses */
		{ .name = "elsewhere.example",
		  .ret = -EIO,
		  .err = "cannot resolve 'elsewhere.example': query refused (REFUSED)" },
	};
	struct cgf_resolver *res;
	size_t i;

	NEED_DNSMASQ();
	res = dnsmasq_resolver();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(res, &cases[i]);
	cgf_resolver_free(res);
}

static void check_range(const char *name, size_t count, int third, uint32_t ttl)
{
	struct cgf_resolver *res = dnsmasq_resolver();
	struct cgf_answer *a = NULL;
	char addr[32], err[256] = "";
	size_t n = 0, i;
	int ret;

	ret = cgf_resolve(res, name, TIMEOUT_MS, &a, &n, err, sizeof(err));
	if (ret)
		fail_msg("'%s': %d: %s", name, ret, err);
	assert_int_equal(n, count);
	for (i = 0; i < count; i++) {
		snprintf(addr, sizeof(addr), "198.18.%d.%zu", third, i + 1);
		if (count_answer(a, n, addr, ttl) != 1)
			fail_msg("'%s': %s with ttl %u missing", name, addr, (unsigned int)ttl);
	}
	free(a);
	cgf_resolver_free(res);
}

static void test_dnsmasq_many(void **state)
{
	NEED_DNSMASQ();
	check_range("many.cgf.test", MANY, 1, 77);
}

/* More than 512 bytes: truncated over UDP, asked again over TCP. */
static void test_dnsmasq_lots_over_tcp(void **state)
{
	NEED_DNSMASQ();
	check_range("lots.cgf.test", LOTS, 2, 88);
}

static void test_dnsmasq_ipv6_server(void **state)
{
	static const struct resolve_case c = { .name = "both.cgf.test",
					       .n = 2,
					       .addrs = { "198.18.0.1", "2001:db8::1" },
					       .ttl = 1234 };
	struct cgf_resolver *res;
	struct cgf_server s;
	char text[64], err[128];

	NEED_DNSMASQ();
	if (!have_ipv6)
		skip();
	snprintf(text, sizeof(text), "[::1]:%u", (unsigned int)dnsmasq_port);
	assert_int_equal(cgf_server_parse(text, &s, err, sizeof(err)), 0);
	res = resolver_for(&s, 1);
	check_case(res, &c);
	cgf_resolver_free(res);
}

/* One resolver, many lookups: nothing of one lookup leaks into the next. */
static void test_dnsmasq_reuse(void **state)
{
	static const struct resolve_case v4 = { .name = "v4.cgf.test",
						.n = 1,
						.addrs = { "198.18.0.4" },
						.ttl = 300 };
	static const struct resolve_case nx = { .name = "nx.cgf.test", .ret = -ENOENT };
	struct cgf_resolver *res;
	int i;

	NEED_DNSMASQ();
	res = dnsmasq_resolver();
	for (i = 0; i < 20; i++)
		check_case(res, i % 2 ? &nx : &v4);
	cgf_resolver_free(res);
}

/* ---- failures ---- */

/* A server that never answers: -ETIMEDOUT once the deadline passes, not later. */
static void test_timeout(void **state)
{
	struct cgf_server s = server4("127.0.0.1", silent_port);
	struct cgf_resolver *res = resolver_for(&s, 1);
	struct cgf_answer *a = NULL;
	char err[256] = "";
	int64_t start, elapsed;
	size_t n = 0;
	int ret;

	start = now_ms();
	ret = cgf_resolve(res, "v4.cgf.test", 500, &a, &n, err, sizeof(err));
	elapsed = now_ms() - start;
	assert_int_equal(ret, -ETIMEDOUT);
	assert_string_equal(err, "cannot resolve 'v4.cgf.test': timed out after 500 ms");
	if (elapsed < 490 || elapsed > 500 + 500)
		fail_msg("took %lld ms for a 500 ms timeout", (long long)elapsed);
	assert_null(a);
	assert_int_equal(n, 0);
	cgf_resolver_free(res);
}

/*
 * A port nobody listens on.  c-ares 1.18 mostly reports "connection refused"
 * (-EIO) but can also miss the ICMP error: the A and AAAA queries share one
 * connected socket, and the send of one can consume the error meant for the
 * other, which then waits for its timeout.  Either way the lookup fails within
 * the deadline.
 */
static void test_connection_refused(void **state)
{
	struct cgf_server s;
	struct cgf_resolver *res;
	struct cgf_answer *a = NULL;
	char err[256] = "";
	int64_t start, elapsed;
	uint16_t port;
	size_t n = 0;
	int fd, ret;

	fd = bind_udp(AF_INET, "127.0.0.1", 0, &port, SOCK_DGRAM);
	assert_true(fd >= 0);
	close(fd);
	s = server4("127.0.0.1", port);
	res = resolver_for(&s, 1);
	start = now_ms();
	ret = cgf_resolve(res, "v4.cgf.test", 1500, &a, &n, err, sizeof(err));
	elapsed = now_ms() - start;
	if (ret == -EIO)
		assert_string_equal(err, "cannot resolve 'v4.cgf.test': connection refused");
	else if (ret != -ETIMEDOUT)
		fail_msg("got %d (%s), want -EIO or -ETIMEDOUT", ret, err);
	if (elapsed > 1500 + 500)
		fail_msg("took %lld ms for a 1500 ms timeout", (long long)elapsed);
	assert_null(a);
	cgf_resolver_free(res);
}

/* A dead server first, then a working one: the working one answers. */
static void test_failover(void **state)
{
	static const struct resolve_case c = { .name = "v4.cgf.test",
					       .n = 1,
					       .addrs = { "198.18.0.4" },
					       .ttl = 300 };
	struct cgf_server s[2];
	struct cgf_resolver *res;
	uint16_t port;
	int fd;

	NEED_DNSMASQ();
	fd = bind_udp(AF_INET, "127.0.0.1", 0, &port, SOCK_DGRAM);
	assert_true(fd >= 0);
	close(fd);
	s[0] = server4("127.0.0.1", port); /* refuses */
	s[1] = server4(DNSMASQ_ADDR, dnsmasq_port);
	res = resolver_for(s, 2);
	check_case(res, &c);
	cgf_resolver_free(res);

	s[0] = server4("127.0.0.1", silent_port); /* never answers: 1 s per try */
	res = resolver_for(s, 2);
	check_case(res, &c);
	cgf_resolver_free(res);
}

/* Replies dnsmasq cannot give, from the scripted server. */
static void test_scripted_answers(void **state)
{
	static const struct resolve_case cases[] = {
		/* A answers, AAAA fails: the A addresses are the answer */
		{ .name = "partial.fake.test", .n = 1, .addrs = { "198.18.0.7" }, .ttl = 60 },
		/* A answers, AAAA never does: the A addresses at the deadline */
		{ .name = "halfslow.fake.test",
		  .timeout_ms = 700,
		  .n = 1,
		  .addrs = { "198.18.0.8" },
		  .ttl = 61 },
		{ .name = "servfail.fake.test",
		  .ret = -EIO,
		  .err = "cannot resolve 'servfail.fake.test': server failure (SERVFAIL)" },
		{ .name = "refused.fake.test",
		  .ret = -EIO,
		  .err = "cannot resolve 'refused.fake.test': query refused (REFUSED)" },
		/* NXDOMAIN for A, no answer for AAAA: the name does not exist */
		{ .name = "nxa.fake.test",
		  .timeout_ms = 500,
		  .ret = -ENOENT,
		  .err = "cannot resolve 'nxa.fake.test': no such domain (NXDOMAIN)" },
		{ .name = "garbage.fake.test",
		  .ret = -EIO,
		  .err = "cannot resolve 'garbage.fake.test': malformed answer" },
		/* the name exists without addresses */
		{ .name = "nodata.fake.test", .n = 0 },
		/* through a CNAME: the shorter TTL of the chain */
		{ .name = "cname.fake.test", .n = 1, .addrs = { "198.18.0.9" }, .ttl = 30 },
	};
	struct cgf_resolver *res = fake_resolver();
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(res, &cases[i]);
	cgf_resolver_free(res);
}

int main(void)
{
	const struct CMUnitTest offline[] = {
		cmocka_unit_test(test_server_parse_valid),
		cmocka_unit_test(test_server_parse_invalid),
		cmocka_unit_test(test_resolv_conf_servers),
		cmocka_unit_test(test_resolv_conf_none),
		cmocka_unit_test(test_resolver_new_invalid),
		cmocka_unit_test(test_resolve_invalid),
	};
	const struct CMUnitTest dns[] = {
		cmocka_unit_test(test_dnsmasq_answers),
		cmocka_unit_test(test_dnsmasq_many),
		cmocka_unit_test(test_dnsmasq_lots_over_tcp),
		cmocka_unit_test(test_dnsmasq_ipv6_server),
		cmocka_unit_test(test_dnsmasq_reuse),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_scripted_answers),
	};
	int failed;

	failed = cmocka_run_group_tests_name("resolve, offline", offline, NULL, NULL);
	failed += cmocka_run_group_tests_name("resolve, loopback dns", dns, dns_setup,
					      dns_teardown);
	return failed ? 1 : 0;
}

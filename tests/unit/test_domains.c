// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for cgf_domains_refresh() (user/lib/domains.c): expiry and
 * schedule from TTLs, backoff, addresses kept across answers, the max_addrs
 * cap, and one concurrent batch per refresh.
 *
 * Answers come from dnsmasq (Debian's dnsmasq-base) on 127.0.53.2, a high port:
 *  - --host-record names under dom.test with fixed TTLs (from the command line,
 *    so they survive a SIGHUP);
 *  - an --addn-hosts file each test rewrites, then SIGHUPs dnsmasq, which reads
 *    it again (a --host-record in a --conf-file is not read again on SIGHUP);
 *    its names have the --local-ttl, HOSTS_TTL.  The file always names
 *    gen.dom.test with an address that counts the rewrites: once dnsmasq gives
 *    the new one, it has read the file;
 *  - anything else under dom.test is NXDOMAIN (--local=/dom.test/).
 * Plus a UDP socket bound and never read, for a server that never answers.
 * Time is passed to cgf_domains_refresh() explicitly: expiry is tested without
 * sleeping.  The resolver of /etc/resolv.conf is never used.
 *
 * Without dnsmasq the tests are skipped, unless CI=true: then they fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
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

#include "helpers.h"

#include "domains.h"
#include "policy.h"
#include "resolve.h"

#define DNSMASQ_ADDR "127.0.53.2"
#define HOSTS_TTL 60
#define TIMEOUT_MS 3000
#define NS 1000000000ull
#define MS 1000000ull
#define T0 (1000 * NS) /* "now" of the first refresh of each test */
#define MANY_NAMES 600 /* more than a refresh has in flight at once */

#define STR_(x) #x
#define STR(x) STR_(x)

static const char *dnsmasq_path = "/usr/sbin/dnsmasq";
static bool have_dnsmasq;
static uint16_t dnsmasq_port;
static pid_t dnsmasq_pid = -1;
static char dnsmasq_log[] = "/tmp/cgf-test-domains-log-XXXXXX";
static char hosts_path[] = "/tmp/cgf-test-domains-hosts-XXXXXX";
static unsigned int hosts_gen;
static struct cgf_resolver *res;
static int silent_fd = -1;
static uint16_t silent_port;

static int bind_addr(const char *addr, uint16_t port, uint16_t *bound, int type)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(sin);
	int fd;

	inet_pton(AF_INET, addr, &sin.sin_addr);
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -1;
	}
	if (bound) {
		getsockname(fd, (struct sockaddr *)&sin, &len);
		*bound = ntohs(sin.sin_port);
	}
	return fd;
}

/* A port free for UDP and TCP on DNSMASQ_ADDR. */
static uint16_t pick_port(void)
{
	uint16_t port = 0;
	int u, t;

	u = bind_addr(DNSMASQ_ADDR, 0, &port, SOCK_DGRAM);
	if (u < 0)
		return 0;
	t = bind_addr(DNSMASQ_ADDR, port, NULL, SOCK_STREAM);
	if (t < 0)
		port = 0;
	else
		close(t);
	close(u);
	return port;
}

static pid_t dnsmasq_spawn(uint16_t port, int logfd)
{
	char portarg[32], userarg[64] = "", grouparg[64] = "", hostsarg[64];
	struct passwd *pw = getpwuid(geteuid());
	struct group *gr = getgrgid(getegid());
	char *argv[40];
	int argc = 0;
	pid_t pid;

	snprintf(portarg, sizeof(portarg), "--port=%u", (unsigned int)port);
	snprintf(hostsarg, sizeof(hostsarg), "--addn-hosts=%s", hosts_path);
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
	argv[argc++] = portarg;
	if (*userarg)
		argv[argc++] = userarg;
	if (*grouparg)
		argv[argc++] = grouparg;
	argv[argc++] = "--local=/dom.test/";
	argv[argc++] = "--local-ttl=" STR(HOSTS_TTL);
	argv[argc++] = hostsarg;
	argv[argc++] = "--host-record=ttl5.dom.test,198.18.10.5,5";
	argv[argc++] = "--host-record=ttl300.dom.test,198.18.10.30,300";
	argv[argc++] = "--host-record=ttlbig.dom.test,198.18.10.99,100000";
	argv[argc++] = "--host-record=both.dom.test,198.18.10.2,2001:db8:10::2,1234";
	argv[argc++] = "--host-record=mixed.dom.test,198.18.10.1,100";
	argv[argc++] = "--host-record=mixed.dom.test,2001:db8:10::1,400";
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

/* The address of gen.dom.test in the hosts file of generation gen. */
static void gen_addr(unsigned int gen, char *buf, size_t len)
{
	snprintf(buf, len, "198.18.%u.%u", 250 + gen / 250 % 5, gen % 250 + 1);
}

/* Whether dnsmasq gives gen.dom.test the address of generation gen. */
static bool dnsmasq_has_gen(unsigned int gen, int timeout_ms)
{
	struct cgf_answer *a = NULL, want = { .family = AF_INET };
	char addr[32], err[256];
	size_t n = 0;
	bool ok;

	gen_addr(gen, addr, sizeof(addr));
	inet_pton(AF_INET, addr, want.addr);
	if (cgf_resolve(res, "gen.dom.test", timeout_ms, &a, &n, err, sizeof(err)))
		return false;
	ok = n == 1 && !memcmp(a[0].addr, want.addr, 4);
	free(a);
	return ok;
}

/*
 * Makes the hosts file text (lines "ADDR NAME") plus the marker of a new
 * generation, and, once dnsmasq runs, has it read the file and waits until it
 * answers from it.
 */
static void set_hosts(const char *text)
{
	char tmp[sizeof(hosts_path) + 8], addr[32];
	int64_t end;
	FILE *f;

	hosts_gen++;
	gen_addr(hosts_gen, addr, sizeof(addr));
	snprintf(tmp, sizeof(tmp), "%s.new", hosts_path);
	f = fopen(tmp, "we");
	assert_non_null(f);
	fprintf(f, "%s gen.dom.test\n%s", addr, text);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, hosts_path), 0);
	if (dnsmasq_pid <= 0)
		return;
	assert_int_equal(kill(dnsmasq_pid, SIGHUP), 0);
	for (end = now_ms() + 5000; now_ms() < end;)
		if (dnsmasq_has_gen(hosts_gen, 200))
			return;
	fail_msg("dnsmasq did not read the hosts file again");
}

static int teardown(void **state);

static int setup(void **state)
{
	const char *ci = getenv("CI");
	struct cgf_server s = { .family = AF_INET };
	char err[256];
	int attempt, i, logfd, fd;

	silent_fd = bind_addr("127.0.0.1", 0, &silent_port, SOCK_DGRAM);
	if (silent_fd < 0) {
		print_error("cannot bind a silent socket: %s\n", strerror(errno));
		return -1;
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
	fd = mkstemp(hosts_path);
	if (fd < 0) {
		print_error("cannot create '%s': %s\n", hosts_path, strerror(errno));
		goto fail;
	}
	close(fd);
	set_hosts("");
	logfd = mkstemp(dnsmasq_log);
	if (logfd < 0) {
		print_error("cannot create '%s': %s\n", dnsmasq_log, strerror(errno));
		goto fail;
	}
	for (attempt = 0; attempt < 3 && !have_dnsmasq; attempt++) {
		dnsmasq_port = pick_port();
		if (!dnsmasq_port)
			continue;
		if (ftruncate(logfd, 0) == 0)
			lseek(logfd, 0, SEEK_SET);
		dnsmasq_pid = dnsmasq_spawn(dnsmasq_port, logfd);
		if (dnsmasq_pid < 0)
			break;
		inet_pton(AF_INET, DNSMASQ_ADDR, s.addr);
		s.port = dnsmasq_port;
		if (cgf_resolver_new(&res, &s, 1, err, sizeof(err))) {
			print_error("cgf_resolver_new: %s\n", err);
			break;
		}
		for (i = 0; i < 50 && !have_dnsmasq; i++) {
			if (dnsmasq_has_gen(hosts_gen, 100))
				have_dnsmasq = true;
			else if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid)
				dnsmasq_pid = -1;
			if (dnsmasq_pid < 0)
				break;
		}
		if (!have_dnsmasq) {
			stop_child(&dnsmasq_pid);
			cgf_resolver_free(res);
			res = NULL;
		}
	}
	close(logfd);
	if (have_dnsmasq)
		return 0;
	print_error("dnsmasq did not start; its output:\n");
	dump_log_file(dnsmasq_log);
fail:
	teardown(state); /* cmocka skips the group teardown after a failed setup */
	return -1;
}

static int teardown(void **state)
{
	stop_child(&dnsmasq_pid);
	cgf_resolver_free(res);
	res = NULL;
	if (silent_fd >= 0)
		close(silent_fd);
	silent_fd = -1;
	if (strcmp(dnsmasq_log + strlen(dnsmasq_log) - 6, "XXXXXX"))
		unlink(dnsmasq_log);
	if (strcmp(hosts_path + strlen(hosts_path) - 6, "XXXXXX"))
		unlink(hosts_path);
	return 0;
}

/* ---- helpers ---- */

#define NEED_DNSMASQ()             \
	do {                       \
		if (!have_dnsmasq) \
			skip();    \
	} while (0)

static const struct cgf_ttl_limits default_limits = CGF_TTL_LIMITS_DEFAULT;

struct logs {
	size_t n;
	char msgs[1024][CGF_QUERY_ERR_MAX + 96];
};

static struct logs logs;

static void log_collect(const char *msg, void *ctx)
{
	struct logs *l = ctx;

	if (l->n < sizeof(l->msgs) / sizeof(l->msgs[0]))
		snprintf(l->msgs[l->n], sizeof(l->msgs[0]), "%s", msg);
	l->n++;
}

static void policy_of(struct cgf_policy *p, const char *const *names, size_t n)
{
	struct cgf_error err;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < n; i++)
		if (cgf_policy_add_rule(p, names[i], &err))
			fail_msg("rule '%s': %s", names[i], err.reason);
}

static struct cgf_domains *domains_of(const struct cgf_policy *p, const struct cgf_ttl_limits *l)
{
	struct cgf_domains *d = NULL;

	assert_int_equal(cgf_domains_new(p, l, &d), 0);
	return d;
}

static int refresh(struct cgf_domains *d, uint64_t now, bool force)
{
	logs.n = 0;
	return cgf_domains_refresh(d, res, now, force, TIMEOUT_MS, log_collect, &logs);
}

struct addr_exp {
	const char *addr; /* NULL ends a list */
	uint64_t expires_ns;
};

/* The grants of policy at now are exactly want (addresses and expiries). */
static void expect_grants(const struct cgf_policy *p, const struct cgf_domains *d, uint64_t now,
			  const struct addr_exp *want, size_t n_want, const char *what)
{
	struct cgf_grant *g = NULL;
	size_t n = 0, i, j;

	assert_int_equal(cgf_policy_grants(p, d, now, &g, &n), 0);
	if (n != n_want)
		fail_msg("%s: %zu grants, want %zu", what, n, n_want);
	for (i = 0; i < n_want; i++) {
		uint8_t addr[16] = { 0 };
		int family = strchr(want[i].addr, ':') ? AF_INET6 : AF_INET;

		assert_int_equal(inet_pton(family, want[i].addr, addr), 1);
		for (j = 0; j < n; j++)
			if (g[j].family == family && !memcmp(g[j].addr, addr, 16))
				break;
		if (j == n)
			fail_msg("%s: no grant for %s", what, want[i].addr);
		if (g[j].expires_ns != want[i].expires_ns)
			fail_msg("%s: %s expires at %llu ns, want %llu", what, want[i].addr,
				 (unsigned long long)g[j].expires_ns,
				 (unsigned long long)want[i].expires_ns);
		assert_int_equal(g[j].prefixlen, family == AF_INET ? 32 : 128);
	}
	free(g);
}

static size_t count_grants(const struct cgf_policy *p, const struct cgf_domains *d, uint64_t now)
{
	struct cgf_grant *g = NULL;
	size_t n = 0;

	assert_int_equal(cgf_policy_grants(p, d, now, &g, &n), 0);
	free(g);
	return n;
}

/* ---- tests ---- */

/*
 * Expiry = time of the answer + TTL clamped to [min_ttl, max_ttl] + grace, per
 * address; the name is due again after 3/4 of its shortest clamped TTL.
 */
static void test_refresh_ttl(void **state)
{
	static const struct {
		const char *name;
		struct cgf_ttl_limits limits;
		const char *addrs[2];
		uint32_t ttls[2]; /* clamped, seconds */
		uint64_t due_ms;  /* after T0 */
	} cases[] = {
		{ "ttl300.dom.test", CGF_TTL_LIMITS_DEFAULT, { "198.18.10.30" }, { 300 }, 225000 },
		/* below min_ttl, above max_ttl */
		{ "ttl5.dom.test", CGF_TTL_LIMITS_DEFAULT, { "198.18.10.5" }, { 10 }, 7500 },
		{ "ttlbig.dom.test", CGF_TTL_LIMITS_DEFAULT, { "198.18.10.99" }, { 86400 },
		  64800000 },
		{ "ttl300.dom.test", { .min_ttl = 600, .max_ttl = 86400, .grace = 5, .max_addrs = 8 },
		  { "198.18.10.30" }, { 600 }, 450000 },
		{ "ttl300.dom.test", { .min_ttl = 10, .max_ttl = 100, .grace = 5, .max_addrs = 8 },
		  { "198.18.10.30" }, { 100 }, 75000 },
		{ "ttl5.dom.test", { .min_ttl = 0, .max_ttl = 100, .grace = 0, .max_addrs = 8 },
		  { "198.18.10.5" }, { 5 }, 3750 },
		/* grace only moves the expiry, not the schedule */
		{ "ttl300.dom.test", { .min_ttl = 10, .max_ttl = 86400, .grace = 0, .max_addrs = 8 },
		  { "198.18.10.30" }, { 300 }, 225000 },
		{ "ttl300.dom.test", { .min_ttl = 10, .max_ttl = 86400, .grace = 30, .max_addrs = 8 },
		  { "198.18.10.30" }, { 300 }, 225000 },
		{ "both.dom.test", CGF_TTL_LIMITS_DEFAULT, { "198.18.10.2", "2001:db8:10::2" },
		  { 1234, 1234 }, 925500 },
		/* each address its own TTL; due after the shortest */
		{ "mixed.dom.test", CGF_TTL_LIMITS_DEFAULT, { "198.18.10.1", "2001:db8:10::1" },
		  { 100, 400 }, 75000 },
		{ "hosts.dom.test", CGF_TTL_LIMITS_DEFAULT, { "198.18.20.1" }, { HOSTS_TTL }, 45000 },
	};
	size_t i, k;

	NEED_DNSMASQ();
	set_hosts("198.18.20.1 hosts.dom.test\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct addr_exp want[2];
		size_t n_want = cases[i].addrs[1] ? 2 : 1;
		uint64_t grace = (uint64_t)cases[i].limits.grace * NS, first = UINT64_MAX;
		struct cgf_policy p;
		struct cgf_domains *d;
		char what[64];
		size_t later;

		snprintf(what, sizeof(what), "case %zu (%s)", i, cases[i].name);
		policy_of(&p, &cases[i].name, 1);
		d = domains_of(&p, &cases[i].limits);
		assert_int_equal(cgf_domains_next_due(d), 0);
		if (refresh(d, T0, false) != 1 || logs.n)
			fail_msg("%s: refresh failed: %s", what, logs.n ? logs.msgs[0] : "");
		for (k = 0; k < n_want; k++) {
			want[k].addr = cases[i].addrs[k];
			want[k].expires_ns = T0 + cases[i].ttls[k] * NS + grace;
			if (want[k].expires_ns < first)
				first = want[k].expires_ns;
		}
		expect_grants(&p, d, T0, want, n_want, what);
		if (cgf_domains_next_due(d) != T0 + cases[i].due_ms * MS)
			fail_msg("%s: due at T0 + %lld ms, want %llu", what,
				 (long long)(cgf_domains_next_due(d) - T0) / (long long)MS,
				 (unsigned long long)cases[i].due_ms);
		/* an address denies from its expiry on */
		expect_grants(&p, d, first - 1, want, n_want, what);
		for (k = 0, later = 0; k < n_want; k++)
			later += want[k].expires_ns > first;
		assert_int_equal(count_grants(&p, d, first), later);

		/* the same answer at the same time changes nothing; a second later it does */
		assert_int_equal(refresh(d, T0, true), 0);
		assert_int_equal(refresh(d, T0 + NS, true), 1);
		for (k = 0; k < n_want; k++)
			want[k].expires_ns += NS;
		expect_grants(&p, d, T0 + NS, want, n_want, what);
		cgf_domains_free(d);
		cgf_policy_free(&p);
	}
}

/*
 * A name is asked again only once due; addresses of earlier answers stay until
 * they expire, and one seen again lives on.
 */
static void test_refresh_keeps_earlier(void **state)
{
	static const char *const names[] = { "keep.dom.test" };
	struct cgf_policy p;
	struct cgf_domains *d;

	NEED_DNSMASQ();
	set_hosts("198.18.21.1 keep.dom.test\n");
	policy_of(&p, names, 1);
	d = domains_of(&p, &default_limits);
	assert_int_equal(refresh(d, T0, false), 1);
	assert_int_equal(cgf_domains_next_due(d), T0 + 45 * NS);

	set_hosts("198.18.21.2 keep.dom.test\n");
	/* not due yet: not asked */
	assert_int_equal(refresh(d, T0 + 45 * NS - 1, false), 0);
	expect_grants(&p, d, T0 + 45 * NS - 1,
		      (const struct addr_exp[]){ { "198.18.21.1", T0 + 65 * NS } }, 1, "not due");
	assert_int_equal(cgf_domains_next_due(d), T0 + 45 * NS);

	/* due: the new address joins the old one, which keeps its expiry */
	assert_int_equal(refresh(d, T0 + 45 * NS, false), 1);
	expect_grants(&p, d, T0 + 45 * NS,
		      (const struct addr_exp[]){ { "198.18.21.1", T0 + 65 * NS },
						 { "198.18.21.2", T0 + 110 * NS } },
		      2, "rotated");
	expect_grants(&p, d, T0 + 65 * NS,
		      (const struct addr_exp[]){ { "198.18.21.2", T0 + 110 * NS } }, 1,
		      "old expired");
	assert_int_equal(cgf_domains_next_due(d), T0 + 90 * NS);

	/* both again: the old address comes back with a new expiry */
	set_hosts("198.18.21.1 keep.dom.test\n198.18.21.2 keep.dom.test\n");
	assert_int_equal(refresh(d, T0 + 90 * NS, false), 1);
	expect_grants(&p, d, T0 + 90 * NS,
		      (const struct addr_exp[]){ { "198.18.21.1", T0 + 155 * NS },
						 { "198.18.21.2", T0 + 155 * NS } },
		      2, "both again");
	cgf_domains_free(d);
	cgf_policy_free(&p);
}

/*
 * A failing name keeps its addresses until they expire and is asked again
 * after 1, 2, 4 ... 60 s; a success ends the backoff.
 */
static void test_refresh_backoff(void **state)
{
	static const char *const names[] = { "flaky.dom.test" };
	static const uint32_t retries[] = { 1, 2, 4, 8, 16, 32, 60, 60 };
	const struct addr_exp first = { "198.18.22.1", T0 + 65 * NS };
	uint64_t now = T0 + 45 * NS;
	struct cgf_policy p;
	struct cgf_domains *d;
	char want[256];
	size_t i;

	NEED_DNSMASQ();
	set_hosts("198.18.22.1 flaky.dom.test\n");
	policy_of(&p, names, 1);
	d = domains_of(&p, &default_limits);
	assert_int_equal(refresh(d, T0, false), 1);

	set_hosts(""); /* NXDOMAIN from now on */
	for (i = 0; i < sizeof(retries) / sizeof(retries[0]); i++) {
		assert_int_equal(cgf_domains_next_due(d), now);
		assert_int_equal(refresh(d, now, false), 0);
		assert_int_equal(logs.n, 1);
		snprintf(want, sizeof(want),
			 "cannot resolve 'flaky.dom.test': no such domain (NXDOMAIN) "
			 "(addresses kept until they expire; retry in %u s)",
			 retries[i]);
		assert_string_equal(logs.msgs[0], want);
		if (now < first.expires_ns)
			expect_grants(&p, d, now, &first, 1, "failing, not expired");
		else
			assert_int_equal(count_grants(&p, d, now), 0);
		now += retries[i] * NS;
	}
	assert_int_equal(cgf_domains_next_due(d), now);

	/* answers again: learned, back on the TTL schedule */
	set_hosts("198.18.22.2 flaky.dom.test\n");
	assert_int_equal(refresh(d, now, false), 1);
	assert_int_equal(logs.n, 0);
	expect_grants(&p, d, now, (const struct addr_exp[]){ { "198.18.22.2", now + 65 * NS } }, 1,
		      "recovered");
	assert_int_equal(cgf_domains_next_due(d), now + 45 * NS);

	/* fails again: the backoff starts over */
	set_hosts("");
	now += 45 * NS;
	assert_int_equal(refresh(d, now, false), 0);
	assert_int_equal(logs.n, 1);
	assert_non_null(strstr(logs.msgs[0], "retry in 1 s)"));
	assert_int_equal(cgf_domains_next_due(d), now + NS);
	cgf_domains_free(d);
	cgf_policy_free(&p);
}

/* At most max_addrs per name: those expiring first are dropped first. */
static void test_refresh_max_addrs(void **state)
{
	static const struct cgf_ttl_limits limits = {
		.min_ttl = 10, .max_ttl = 86400, .grace = 5, .max_addrs = 3
	};
	static const struct {
		uint32_t at; /* seconds after T0 */
		const char *hosts;
		struct addr_exp want[4]; /* expiries in seconds after T0 */
	} steps[] = {
		{ 0, "198.18.23.1 cap.dom.test\n", { { "198.18.23.1", 65 } } },
		{ 10, "198.18.23.2 cap.dom.test\n", { { "198.18.23.1", 65 }, { "198.18.23.2", 75 } } },
		{ 20,
		  "198.18.23.3 cap.dom.test\n",
		  { { "198.18.23.1", 65 }, { "198.18.23.2", 75 }, { "198.18.23.3", 85 } } },
		/* a fourth: the one expiring first goes */
		{ 30,
		  "198.18.23.4 cap.dom.test\n",
		  { { "198.18.23.2", 75 }, { "198.18.23.3", 85 }, { "198.18.23.4", 95 } } },
		/* .2 seen again lives longest now; .3 is the next to go */
		{ 40,
		  "198.18.23.2 cap.dom.test\n",
		  { { "198.18.23.2", 105 }, { "198.18.23.3", 85 }, { "198.18.23.4", 95 } } },
		{ 50,
		  "198.18.23.5 cap.dom.test\n",
		  { { "198.18.23.2", 105 }, { "198.18.23.4", 95 }, { "198.18.23.5", 115 } } },
	};
	static const char *const names[] = { "cap.dom.test" };
	struct cgf_policy p;
	struct cgf_domains *d;
	struct cgf_grant *g = NULL;
	size_t i, k, n = 0;

	NEED_DNSMASQ();
	policy_of(&p, names, 1);
	d = domains_of(&p, &limits);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct addr_exp want[4];
		uint64_t now = T0 + steps[i].at * NS;
		char what[32];

		for (k = 0; steps[i].want[k].addr; k++) {
			want[k].addr = steps[i].want[k].addr;
			want[k].expires_ns = T0 + steps[i].want[k].expires_ns * NS;
		}
		set_hosts(steps[i].hosts);
		assert_int_equal(refresh(d, now, true), 1);
		snprintf(what, sizeof(what), "step %zu", i);
		expect_grants(&p, d, now, want, k, what);
	}

	/* one answer with more than max_addrs: max_addrs of them */
	set_hosts("198.18.24.1 cap.dom.test\n198.18.24.2 cap.dom.test\n198.18.24.3 cap.dom.test\n"
		  "198.18.24.4 cap.dom.test\n198.18.24.5 cap.dom.test\n");
	assert_int_equal(refresh(d, T0 + 60 * NS, true), 1);
	assert_int_equal(cgf_policy_grants(&p, d, T0 + 60 * NS, &g, &n), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		assert_int_equal(g[i].addr[2], 24);
		assert_int_equal(g[i].expires_ns, T0 + 125 * NS);
	}
	free(g);
	cgf_domains_free(d);
	cgf_policy_free(&p);
}

/*
 * One refresh resolves every due name, more than it has in flight at once,
 * failures among them; only the names due are asked.
 */
static void test_refresh_many(void **state)
{
	static char names[MANY_NAMES + 2][32];
	const char *list[MANY_NAMES + 2];
	char *text, line[64], want[128];
	size_t i, len = 0, cap = (MANY_NAMES + 1) * 64;
	struct cgf_policy p;
	struct cgf_domains *d;
	struct cgf_grant *g = NULL;
	size_t n = 0;

	NEED_DNSMASQ();
	text = calloc(1, cap);
	assert_non_null(text);
	for (i = 0; i < MANY_NAMES; i++) {
		snprintf(names[i], sizeof(names[i]), "m%03zu.dom.test", i);
		snprintf(line, sizeof(line), "198.18.%zu.%zu %s\n", 30 + i / 200, i % 200 + 1,
			 names[i]);
		len += (size_t)snprintf(text + len, cap - len, "%s", line);
		list[i] = names[i];
	}
	/* two that do not exist, in the middle of the order */
	snprintf(names[MANY_NAMES], sizeof(names[0]), "nx1.dom.test");
	snprintf(names[MANY_NAMES + 1], sizeof(names[0]), "nx2.dom.test");
	list[MANY_NAMES] = list[100];
	list[100] = names[MANY_NAMES];
	list[MANY_NAMES + 1] = names[MANY_NAMES + 1];
	set_hosts(text);
	free(text);

	policy_of(&p, list, MANY_NAMES + 2);
	d = domains_of(&p, &default_limits);
	assert_int_equal(cgf_domains_count(d), MANY_NAMES + 2);
	assert_int_equal(refresh(d, T0, false), MANY_NAMES);
	/* the failures are logged in the policy's order */
	assert_int_equal(logs.n, 2);
	snprintf(want, sizeof(want),
		 "cannot resolve 'nx1.dom.test': no such domain (NXDOMAIN) "
		 "(addresses kept until they expire; retry in 1 s)");
	assert_string_equal(logs.msgs[0], want);
	assert_non_null(strstr(logs.msgs[1], "'nx2.dom.test'"));
	assert_int_equal(cgf_domains_next_due(d), T0 + NS);

	assert_int_equal(cgf_policy_grants(&p, d, T0, &g, &n), 0);
	assert_int_equal(n, MANY_NAMES);
	for (i = 0; i < n; i++) {
		assert_int_equal(g[i].family, AF_INET);
		assert_int_equal(g[i].expires_ns, T0 + 65 * NS);
	}
	free(g);

	/* a second later only the two failing names are due */
	assert_int_equal(refresh(d, T0 + NS, false), 0);
	assert_int_equal(logs.n, 2);
	assert_non_null(strstr(logs.msgs[0], "retry in 2 s)"));
	/* nothing due: nothing asked, not even of a resolver */
	assert_int_equal(cgf_domains_refresh(d, NULL, T0 + 2 * NS, false, TIMEOUT_MS, log_collect,
					     &logs),
			 0);
	cgf_domains_free(d);
	cgf_policy_free(&p);
}

/*
 * A server that never answers: the names time out together, not one after
 * the other (300 names x 250 ms would be 75 s).
 */
static void test_refresh_unanswered(void **state)
{
	enum { N = 300, TIMEOUT = 250 };
	static char names[N][32];
	const char *list[N];
	struct cgf_server s = { .family = AF_INET, .port = silent_port };
	struct cgf_resolver *silent = NULL;
	struct cgf_policy p;
	struct cgf_domains *d;
	char err[256], want[320];
	int64_t start, elapsed;
	size_t i;
	int ret;

	inet_pton(AF_INET, "127.0.0.1", s.addr);
	if (cgf_resolver_new(&silent, &s, 1, err, sizeof(err)))
		fail_msg("cgf_resolver_new: %s", err);
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "u%03zu.dom.test", i);
		list[i] = names[i];
	}
	policy_of(&p, list, N);
	d = domains_of(&p, &default_limits);
	logs.n = 0;
	start = now_ms();
	ret = cgf_domains_refresh(d, silent, T0, false, TIMEOUT, log_collect, &logs);
	elapsed = now_ms() - start;
	print_message("[  TIME    ] %d names, none answered, %d ms timeout: %lld ms\n", N, TIMEOUT,
		      (long long)elapsed);
	assert_int_equal(ret, 0);
	if (elapsed > 3000)
		fail_msg("%d unanswered names took %lld ms", N, (long long)elapsed);
	assert_int_equal(logs.n, N);
	for (i = 0; i < N; i++) {
		snprintf(want, sizeof(want),
			 "cannot resolve '%.31s': timed out after %d ms "
			 "(addresses kept until they expire; retry in 1 s)",
			 names[i], TIMEOUT);
		assert_string_equal(logs.msgs[i], want);
	}
	assert_int_equal(cgf_domains_next_due(d), T0 + NS);
	cgf_domains_free(d);
	cgf_policy_free(&p);
	cgf_resolver_free(silent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_ttl),
		cmocka_unit_test(test_refresh_keeps_earlier),
		cmocka_unit_test(test_refresh_backoff),
		cmocka_unit_test(test_refresh_max_addrs),
		cmocka_unit_test(test_refresh_many),
		cmocka_unit_test(test_refresh_unanswered),
	};

	return cmocka_run_group_tests_name("domains refresh, loopback dns", tests, setup,
					   teardown)
		       ? 1
		       : 0;
}

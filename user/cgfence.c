// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgfence: fence a command or a cgroup with an egress allowlist enforced by
 * eBPF programs attached from the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "confine.h"
#include "control.h"
#include "domains.h"
#include "fence.h"
#include "policy.h"
#include "report.h"
#include "resolve.h"

/* Exit status of `cgfence run` when cgfence itself fails: nothing was run. */
#define EXIT_CGFENCE 125
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

#define RESOLVE_TIMEOUT_MS 2000
#define NS_PER_SEC 1000000000ull

static bool verbose;

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("cgfence: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- what every subcommand that sets a policy shares -------------------- */

struct policy_args {
	struct cgf_policy policy;
	struct cgf_server servers[8];
	size_t n_servers;
	struct cgf_ttl_limits limits;
	bool audit;
	const char *pin_root;
};

/* Parses one --allow, --policy-file or --resolver; false with a message on error. */
static bool policy_option(struct policy_args *pa, int opt, const char *arg)
{
	struct cgf_error err = { 0 };
	char msg[600];
	int ret;

	switch (opt) {
	case 'a':
		ret = cgf_policy_add_rule(&pa->policy, arg, &err);
		break;
	case 'p':
		ret = cgf_policy_load_file(&pa->policy, arg, &err);
		break;
	case 'r':
		if (pa->n_servers == sizeof(pa->servers) / sizeof(pa->servers[0])) {
			warnx("too many --resolver options (at most %zu)",
			      sizeof(pa->servers) / sizeof(pa->servers[0]));
			return false;
		}
		ret = cgf_server_parse(arg, &pa->servers[pa->n_servers], msg, sizeof(msg));
		if (ret) {
			warnx("--resolver '%s': %s", arg, msg);
			return false;
		}
		pa->n_servers++;
		return true;
	default:
		return false;
	}
	if (ret) {
		cgf_error_format(&err, msg, sizeof(msg));
		warnx("%s", msg);
		return false;
	}
	return true;
}

static bool parse_seconds(const char *opt, const char *arg, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || v > 365ul * 86400 || arg[0] == '-') {
		warnx("%s '%s': not a number of seconds (0-31536000)", opt, arg);
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

static bool has_wildcards(const struct cgf_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		if (p->rules[i].kind == CGF_TARGET_WILDCARD) {
			warnx("rule '*.%s'%s: wildcard rules need DNS proxy mode (--dns-proxy, or "
			      "the policy line 'dns proxy')", p->rules[i].domain,
			      p->rules[i].line ? " (policy file)" : "");
			return true;
		}
	}
	return false;
}

/* Allows the resolvers in use on their DNS port, both protocols. */
static bool allow_resolvers(struct policy_args *pa, const struct cgf_resolver *res)
{
	const struct cgf_server *servers;
	size_t n = cgf_resolver_servers(res, &servers);

	for (size_t i = 0; i < n; i++) {
		char addr[INET6_ADDRSTRLEN], rule[INET6_ADDRSTRLEN + 16];
		struct cgf_error err = { 0 };

		inet_ntop(servers[i].family, servers[i].addr, addr, sizeof(addr));
		snprintf(rule, sizeof(rule), servers[i].family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 addr, servers[i].port);
		if (cgf_policy_add_rule(&pa->policy, rule, &err)) {
			warnx("cannot allow resolver %s: %s", rule, err.reason);
			return false;
		}
	}
	return true;
}

static void log_resolve_failure(const char *msg, void *ctx)
{
	warnx("%s", msg);
}

/* Turns the policy and what its names resolved to into map entries. */
static int compile(const struct cgf_policy *policy, const struct cgf_domains *domains,
		   struct cgf_allowlist *list)
{
	struct cgf_grant *grants = NULL;
	struct cgf_error err = { 0 };
	size_t n = 0;
	char msg[600];
	int ret;

	ret = cgf_policy_grants(policy, domains, cgf_boottime_ns(), &grants, &n);
	if (ret) {
		warnx("cannot compute the allowlist: %s", strerror(-ret));
		return ret;
	}
	ret = cgf_allowlist_build(grants, n, list, &err);
	free(grants);
	if (ret) {
		cgf_error_format(&err, msg, sizeof(msg));
		warnx("%s", msg);
	}
	return ret;
}

/* ---- deny events --------------------------------------------------------- */

static int print_event(void *ctx, void *data, size_t size)
{
	const struct cgf_event *e = data;
	bool quiet = *(bool *)ctx;
	char line[256];

	if (quiet || size < sizeof(*e))
		return 0;
	cgf_event_format(e, line, sizeof(line));
	fprintf(stderr, "cgfence: %s %s\n", e->action == CGF_EVENT_AUDIT ? "audit: would deny" :
			"denied", line);
	return 0;
}

/* ---- run ----------------------------------------------------------------- */

static void usage_run(FILE *out)
{
	fprintf(out,
		"usage: cgfence run [OPTIONS] -- COMMAND [ARG]...\n"
		"\n"
		"Runs COMMAND in a new cgroup whose egress is limited to the allowlist.\n"
		"Its children stay fenced; when it ends, whatever it left running is\n"
		"killed and the cgroup and its pins are removed.  Exits with COMMAND's\n"
		"status (128+N when killed by signal N), 125 when cgfence fails (nothing\n"
		"was run), 126/127 when COMMAND cannot be run / is not found.\n"
		"\n"
		"  -a, --allow RULE         allow RULE: TARGET[:PORTS][/PROTO] (repeatable)\n"
		"  -p, --policy-file FILE   allow the rules of FILE (repeatable)\n"
		"      --audit              log what would be denied, deny nothing\n"
		"  -r, --resolver IP[:PORT] DNS server for domain rules (repeatable;\n"
		"                           default: the nameservers of /etc/resolv.conf);\n"
		"                           allowed to COMMAND on that port\n"
		"      --min-ttl SECONDS    shortest time a DNS answer is kept (default 10)\n"
		"      --max-ttl SECONDS    longest time a DNS answer is kept (default 86400)\n"
		"      --grace SECONDS      added to every DNS expiry (default 5)\n"
		"      --dns-proxy          DNS proxy mode (as the policy line 'dns proxy'):\n"
		"                           COMMAND's DNS, to any address, goes to cgfenced's\n"
		"                           filtering proxy, which answers only the rules'\n"
		"                           names (wildcards too) and opens what it answered;\n"
		"                           needs cgfenced running; --resolver, --min-ttl and\n"
		"                           --max-ttl are then cgfenced's\n"
		"      --socket PATH        cgfenced's socket, for --dns-proxy\n"
		"  -q, --quiet              do not print deny events\n"
		"      --bpffs DIR          pin directory (default " CGF_PIN_ROOT_DEFAULT ")\n"
		"      --boundary IFNAME    also judge every packet arriving from COMMAND's\n"
		"                           network namespace at the ingress of IFNAME, the\n"
		"                           host end of its veth (tc; holds against AF_PACKET,\n"
		"                           tunnels, netdev rewrites, forged sources); IFNAME\n"
		"                           must forward IPv4\n"
		"      --boundary-netns PATH  look IFNAME up in this network namespace\n"
		"                           (default: cgfence's own)\n"
		"      --keep-cap NAME      leave COMMAND capability NAME (net_raw, net_admin,\n"
		"                           ...; repeatable) that it would otherwise lose\n"
		"  -u, --user USER[:GROUP]  run COMMAND as USER (a name or a number) with its\n"
		"                           groups, or GROUP, and no_new_privs (no setuid or\n"
		"                           file-capability program raises it again)\n"
		"  -v, --verbose            show libbpf's messages\n"
		"  -h, --help               this text\n"
		"\n"
		"COMMAND runs without the capabilities that could undo or get around the\n"
		"fence (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_RAW,\n"
		"CAP_SYS_MODULE, CAP_SYS_PTRACE and more: not even in its bounding set), in\n"
		"private cgroup and mount namespaces where no bpffs and no cgroup above the\n"
		"fence is visible, in a Landlock domain that keeps it from ptrace() of any\n"
		"process outside, and without ioctl(TIOCSTI).  --keep-cap refuses\n"
		"sys_admin, bpf and perfmon.\n"
		"Without --user, COMMAND runs as root: the fence holds its network, not\n"
		"its files, which root outside the fence may later run (see README).\n");
}

/* Is gid among the n groups? */
static bool has_gid(const gid_t *groups, int n, gid_t gid)
{
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

struct runner {
	char cgroup[PATH_MAX + 64];
	bool cgroup_made;
	uint64_t cgroup_id;
	struct cgf_fence *fence;
	const char *pin_root;
	struct cgf_keep keep; /* capabilities --keep-cap leaves COMMAND */
	struct cgf_identity user; /* --user */
};

static int rmdir_visit(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_DP)
		rmdir(fpath);
	return 0;
}

/*
 * Kills what is left in the cgroup, waits for it to empty, removes it and
 * the sub-cgroups the command may have made in it, deepest first.
 */
static void remove_cgroup(const char *path)
{
	char file[PATH_MAX + 96], events[PATH_MAX + 96], buf[256];
	int i;

	snprintf(file, sizeof(file), "%s/cgroup.kill", path);
	for (i = 0; i < 50; i++) {
		FILE *f;
		bool populated = false;

		nftw(path, rmdir_visit, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		if (access(path, F_OK) && errno == ENOENT)
			return;
		/* cgroup.kill (5.14+) kills every process in it, descendants included. */
		f = fopen(file, "we");
		if (f) {
			fputs("1", f);
			fclose(f);
		}
		snprintf(events, sizeof(events), "%s/cgroup.events", path);
		f = fopen(events, "re");
		while (f && fgets(buf, sizeof(buf), f))
			if (!strncmp(buf, "populated 1", 11))
				populated = true;
		if (f)
			fclose(f);
		if (populated || i)
			usleep(100 * 1000);
	}
	warnx("cannot remove cgroup '%s': %s", path, strerror(errno));
}

/*
 * Tears the fence down in the one safe order: first no process is left in the
 * cgroup, then the filter goes.
 */
static void runner_cleanup(struct runner *r)
{
	char err[CGF_ERR_LEN];

	if (r->cgroup_made)
		remove_cgroup(r->cgroup);
	if (r->fence) {
		cgf_fence_close(r->fence);
		r->fence = NULL;
		if (cgf_fence_remove(r->pin_root, r->cgroup_id, err))
			warnx("%s", err);
	}
}

static int make_run_cgroup(struct runner *r)
{
	char root[PATH_MAX], parent[PATH_MAX + 16], err[CGF_ERR_LEN];
	int ret = cgf_cgroup2_root(root, sizeof(root), err);

	if (ret) {
		warnx("%s", err);
		return ret;
	}
	snprintf(parent, sizeof(parent), "%s/cgfence", root);
	if (mkdir(parent, 0755) && errno != EEXIST) {
		warnx("cannot create cgroup '%s': %s", parent, strerror(errno));
		return -errno;
	}
	/*
	 * The time in the name keeps a cgroup left by a killed cgfence (its fence
	 * stays in force until detached) from blocking a later run of the same pid.
	 */
	if (snprintf(r->cgroup, sizeof(r->cgroup), "%s/run-%d-%" PRIx64, parent, (int)getpid(),
		     cgf_boottime_ns() / 1000) >= (int)sizeof(r->cgroup))
		return -ENAMETOOLONG;
	if (mkdir(r->cgroup, 0755)) {
		ret = -errno;
		warnx("cannot create cgroup '%s': %s", r->cgroup, strerror(errno));
		return ret;
	}
	r->cgroup_made = true;
	ret = cgf_cgroup_id(r->cgroup, &r->cgroup_id);
	if (ret)
		warnx("cannot read the id of cgroup '%s': %s", r->cgroup, strerror(-ret));
	return ret;
}

/* What the child tells the parent when it could not exec: stage and errno. */
struct child_failure {
	int status; /* exit status the run should have */
	char msg[CGF_ERR_LEN];
};

static void child_fail(int fd, int status, const char *msg)
{
	struct child_failure cf = { .status = status };

	snprintf(cf.msg, sizeof(cf.msg), "%s", msg);
	if (write(fd, &cf, sizeof(cf)) < 0)
		_exit(status);
	_exit(status);
}

static void run_child(const struct runner *r, char **argv, int report_fd, const sigset_t *saved)
{
	char err[CGF_ERR_LEN], msg[CGF_ERR_LEN + 64];

	sigprocmask(SIG_SETMASK, saved, NULL);
	if (cgf_confine_self(r->cgroup, &r->keep, &r->user, err))
		child_fail(report_fd, EXIT_CGFENCE, err);
	execvp(argv[0], argv);
	snprintf(msg, sizeof(msg), "cannot run '%s': %s", argv[0], strerror(errno));
	child_fail(report_fd, errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN, msg);
}

static int exit_status_of(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return EXIT_CGFENCE;
}

static int daemon_error(const char *what, json_t *reply);

/* A policy file's text, for cgfenced to parse (NULL with a message on error). */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		warnx("cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (len + 4096 + 1 > cap) {
			char *grown = realloc(buf, cap = 2 * cap + 8192);

			if (!grown) {
				free(buf);
				fclose(f);
				warnx("out of memory");
				return NULL;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n == 4096 && len < (16u << 20));
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/*
 * --dns-proxy: asks cgfenced for a proxy for the (already attached, proxy
 * mode) fence, with the rules as given, listening in this process's network
 * namespace, which COMMAND shares.
 */
static bool ask_proxy(const char *socket, const struct runner *r, const char *pin_root,
		      json_t *rules)
{
	char err[CGF_ERR_LEN];
	json_t *req = json_pack("{s:s,s:I,s:O}", "op", "proxy", "cgroup_id",
				(json_int_t)r->cgroup_id, "rules", rules), *rep = NULL;
	bool ok = false;

	if (pin_root)
		json_object_set_new(req, "bpffs", json_string(pin_root));
	if (cgf_control_call(cgf_control_socket(socket), req, 30000, &rep, NULL, err,
			     sizeof(err)))
		warnx("run: --dns-proxy needs cgfenced: %s", err);
	else if (!json_is_true(json_object_get(rep, "ok")))
		daemon_error("run: --dns-proxy", rep);
	else
		ok = true;
	json_decref(req);
	json_decref(rep);
	return ok;
}

/* Re-resolves what is due and syncs the map when an answer changed. */
static void refresh(struct runner *r, struct cgf_domains *domains, struct cgf_resolver *res,
		    const struct cgf_policy *policy, bool force)
{
	struct cgf_allowlist list = { 0 };
	char err[CGF_ERR_LEN];
	uint64_t now = cgf_boottime_ns();
	int changed = cgf_domains_refresh(domains, res, now, force, RESOLVE_TIMEOUT_MS,
					  log_resolve_failure, NULL);

	/* Expired addresses must leave the map too: sync also when nothing changed. */
	(void)changed;
	if (compile(policy, domains, &list))
		return; /* the map keeps what it has; its entries expire on their own */
	if (cgf_fence_sync(r->fence, &list, err))
		warnx("%s", err);
	cgf_allowlist_free(&list);
}

/*
 * With net.ipv6.ip_nonlocal_bind on, every socket of the network namespace
 * (the command's: this one) may send from any IPv6 address, so the fence's
 * egress program drops all of its IPv6 TCP and UDP: say why before it does.
 */
static void warn_nonlocal_bind(void)
{
	FILE *f = fopen("/proc/sys/net/ipv6/ip_nonlocal_bind", "re");
	int on = 0;

	if (!f)
		return; /* no IPv6 here */
	if (fscanf(f, "%d", &on) != 1)
		on = 0;
	fclose(f);
	if (on)
		fprintf(stderr, "cgfence: warning: net.ipv6.ip_nonlocal_bind is 1 in this network "
				"namespace: any source could be forged, so COMMAND's IPv6 TCP and UDP "
				"are all denied\n");
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "policy-file", required_argument, NULL, 'p' },
		{ "audit", no_argument, NULL, 'A' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "min-ttl", required_argument, NULL, 'm' },
		{ "max-ttl", required_argument, NULL, 'M' },
		{ "grace", required_argument, NULL, 'g' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "boundary", required_argument, NULL, 'B' },
		{ "boundary-netns", required_argument, NULL, 'N' },
		{ "keep-cap", required_argument, NULL, 'K' },
		{ "user", required_argument, NULL, 'u' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "dns-proxy", no_argument, NULL, 'D' },
		{ "socket", required_argument, NULL, 'S' },
		{ 0 },
	};
	struct policy_args pa = { .limits = CGF_TTL_LIMITS_DEFAULT };
	struct cgf_attach_opts aopts = { 0 };
	json_t *rules = json_array();
	const char *socket = NULL;
	bool dns_proxy = false;
	struct cgf_resolver *res = NULL;
	struct cgf_domains *domains = NULL;
	struct cgf_allowlist list = { 0 };
	struct ring_buffer *rb = NULL;
	struct runner r = { 0 };
	char err[CGF_ERR_LEN], msg[CGF_ERR_LEN];
	int report[2] = { -1, -1 }, sfd = -1, status = EXIT_CGFENCE, wstatus, opt;
	sigset_t mask, saved;
	bool quiet = false, child_done = false;
	pid_t child = -1;
	uint64_t term_at = 0;

	while ((opt = getopt_long(argc, argv, "+a:p:r:qu:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
		case 'p':
		case 'r':
			if (!policy_option(&pa, opt, optarg))
				goto out;
			/* the rules as given, for cgfenced's proxy to parse the same */
			if (opt == 'a') {
				json_array_append_new(rules, json_pack("{s:s,s:s}", "source", "--allow",
								       "text", optarg));
			} else if (opt == 'p') {
				char *text = read_text(optarg);

				if (!text)
					goto out;
				json_array_append_new(rules, json_pack("{s:s,s:s,s:b}", "source", optarg,
								       "text", text, "file", 1));
				free(text);
			}
			break;
		case 'D':
			dns_proxy = true;
			break;
		case 'S':
			socket = optarg;
			break;
		case 'A':
			pa.audit = true;
			break;
		case 'm':
			if (!parse_seconds("--min-ttl", optarg, &pa.limits.min_ttl))
				goto out;
			break;
		case 'M':
			if (!parse_seconds("--max-ttl", optarg, &pa.limits.max_ttl))
				goto out;
			break;
		case 'g':
			if (!parse_seconds("--grace", optarg, &pa.limits.grace))
				goto out;
			break;
		case 'q':
			quiet = true;
			break;
		case 'b':
			pa.pin_root = optarg;
			break;
		case 'B':
			aopts.boundary_ifname = optarg;
			break;
		case 'N':
			aopts.boundary_netns = optarg;
			break;
		case 'K':
			if (cgf_keep_cap(&r.keep, optarg, err)) {
				warnx("--keep-cap %s", err);
				goto out;
			}
			break;
		case 'u':
			if (cgf_identity_parse(optarg, &r.user, err)) {
				warnx("--user %s", err);
				goto out;
			}
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage_run(stdout);
			status = 0;
			goto out;
		default:
			usage_run(stderr);
			goto out;
		}
	}
	if (optind >= argc) {
		warnx("run: no COMMAND given (cgfence run [OPTIONS] -- COMMAND [ARG]...)");
		goto out;
	}
	if (aopts.boundary_netns && !aopts.boundary_ifname) {
		warnx("run: --boundary-netns goes with --boundary IFNAME");
		goto out;
	}
	cgf_keep_warn(&r.keep, aopts.boundary_ifname != NULL);
	if (!r.user.set || r.user.uid == 0)
		fprintf(stderr, "cgfence: warning: COMMAND runs as root: the fence holds its network, "
				"not its files; it can write what root outside the fence runs "
				"(cron, profiles, this binary) and its network namespace's net "
				"sysctls (--user NAME runs it as NAME)\n");
	else if (has_gid(r.user.groups, r.user.n_groups, 0)) /* the group list holds gid too */
		fprintf(stderr, "cgfence: warning: COMMAND runs in group 0 (root): it can write the "
				"host's files that group may write\n");
	warn_nonlocal_bind();
	if (pa.limits.min_ttl > pa.limits.max_ttl) {
		warnx("--min-ttl %u is more than --max-ttl %u", pa.limits.min_ttl,
		      pa.limits.max_ttl);
		goto out;
	}
	if (dns_proxy && pa.policy.dns_mode_source[0] && pa.policy.dns_mode != CGF_DNS_PROXY) {
		warnx("run: --dns-proxy contradicts 'dns resolve' at %s", pa.policy.dns_mode_source);
		goto out;
	}
	dns_proxy = dns_proxy || pa.policy.dns_mode == CGF_DNS_PROXY;
	if (dns_proxy && (pa.n_servers || pa.audit)) {
		warnx("run: --dns-proxy goes with neither %s", pa.audit ? "--audit (the proxy "
		      "refuses names; audit mode must deny nothing)" : "--resolver (cgfenced's "
		      "resolvers answer the proxy)");
		goto out;
	}
	if (!dns_proxy && has_wildcards(&pa.policy))
		goto out;
	if (geteuid() != 0) {
		warnx("run: must be run as root (it loads BPF programs and creates cgroups)");
		goto out;
	}
	cgf_libbpf_quiet(verbose);

	if (dns_proxy) {
		/* cgfenced's proxy learns the addresses: nothing to resolve here */
		if (compile(&pa.policy, NULL, &list))
			goto out;
		goto resolved;
	}
	if (cgf_domains_new(&pa.policy, &pa.limits, &domains)) {
		warnx("out of memory");
		goto out;
	}
	if (cgf_resolver_new(&res, pa.servers, pa.n_servers, msg, sizeof(msg))) {
		/* No resolver and no names to resolve: DNS simply stays closed. */
		if (pa.n_servers || cgf_domains_count(domains)) {
			warnx("%s", msg);
			goto out;
		}
		if (verbose)
			warnx("%s: DNS stays closed", msg);
	} else if (!allow_resolvers(&pa, res)) {
		goto out;
	}
	if (res)
		cgf_domains_refresh(domains, res, cgf_boottime_ns(), true, RESOLVE_TIMEOUT_MS,
				    log_resolve_failure, NULL);
	if (compile(&pa.policy, domains, &list))
		goto out;
resolved:

	/* Signals are read from a signalfd; the child gets the old mask back. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, &saved);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		warnx("cannot create a signalfd: %s", strerror(errno));
		goto out;
	}

	if (cgf_cgroup2_nsdelegate(err) < 0)
		warnx("%s: a process in the fence might leave it through another view of the "
		      "cgroup tree", err);
	if (make_run_cgroup(&r))
		goto out;
	r.pin_root = pa.pin_root;
	aopts.pin_root = pa.pin_root;
	aopts.audit = pa.audit;
	/* COMMAND gets no CAP_NET_RAW/CAP_NET_ADMIN unless --keep-cap gives them back */
	aopts.caps_known = true;
	aopts.caps_held = cgf_keep_risks(&r.keep);
	/* DNS is denied from the start until cgfenced's proxy listens */
	aopts.dns_proxy = dns_proxy;
	if (cgf_fence_attach(r.cgroup, &list, &aopts, &r.fence, err)) {
		warnx("%s", err);
		goto out;
	}
	if (dns_proxy && !ask_proxy(socket, &r, pa.pin_root, rules))
		goto out;
	rb = ring_buffer__new(cgf_fence_events_fd(r.fence), print_event, &quiet, NULL);
	if (!rb) {
		warnx("cannot read deny events: %s", strerror(errno));
		goto out;
	}
	if (pipe2(report, O_CLOEXEC)) {
		warnx("cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		warnx("cannot fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		close(report[0]);
		run_child(&r, argv + optind, report[1], &saved);
	}
	close(report[1]);
	report[1] = -1;

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = ring_buffer__epoll_fd(rb), .events = POLLIN },
			{ .fd = report[0], .events = POLLIN },
		};
		uint64_t now = cgf_boottime_ns(),
			 due = domains ? cgf_domains_next_due(domains) : UINT64_MAX;
		int timeout = -1;

		if (due != UINT64_MAX && res)
			timeout = due <= now ? 0 : (int)((due - now) / 1000000 + 1);
		if (term_at) /* a child that ignores SIGTERM gets SIGKILL after 10 s */
			timeout = (timeout < 0 || timeout > 1000) ? 1000 : timeout;
		if (poll(pfd, report[0] >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR) {
			warnx("poll: %s", strerror(errno));
			break;
		}
		ring_buffer__consume(rb);
		if (pfd[2].revents) {
			struct child_failure cf;
			ssize_t n = read(report[0], &cf, sizeof(cf));

			if (n == (ssize_t)sizeof(cf)) {
				cf.msg[sizeof(cf.msg) - 1] = '\0';
				warnx("%s", cf.msg);
			}
			close(report[0]);
			report[0] = -1;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					continue;
				/*
				 * Passed on, COMMAND decides how to end; a terminal's
				 * signal (SI_KERNEL) already reached its process group.
				 * Only a request to end (a kill, or the terminal
				 * hanging up) starts the countdown to SIGKILL: a Ctrl-C
				 * that COMMAND handles (a shell, a debugger) is no such
				 * request.
				 */
				if (si.ssi_code != SI_KERNEL)
					kill(child, (int)si.ssi_signo);
				if (!term_at && (si.ssi_code != SI_KERNEL || si.ssi_signo == SIGHUP))
					term_at = now + 10 * NS_PER_SEC;
			}
		}
		if (waitpid(child, &wstatus, WNOHANG) == child) {
			child_done = true;
			status = exit_status_of(wstatus);
			break;
		}
		if (term_at && now >= term_at)
			kill(child, SIGKILL);
		if (res && cgf_domains_next_due(domains) <= cgf_boottime_ns())
			refresh(&r, domains, res, &pa.policy, false);
	}
	if (report[0] >= 0) {
		struct child_failure cf;

		if (read(report[0], &cf, sizeof(cf)) == (ssize_t)sizeof(cf)) {
			cf.msg[sizeof(cf.msg) - 1] = '\0';
			warnx("%s", cf.msg);
		}
	}
	ring_buffer__consume(rb);

out:
	if (child > 0 && !child_done) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	runner_cleanup(&r);
	ring_buffer__free(rb);
	if (report[0] >= 0)
		close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
	if (sfd >= 0)
		close(sfd);
	cgf_allowlist_free(&list);
	cgf_domains_free(domains);
	cgf_resolver_free(res);
	cgf_policy_free(&pa.policy);
	cgf_identity_free(&r.user);
	json_decref(rules);
	return status;
}

/* ---- attach / detach ----------------------------------------------------- */

static void usage_attach(FILE *out)
{
	fprintf(out,
		"usage: cgfence attach --cgroup PATH (--allow RULE | --policy-file FILE)...\n"
		"                      [--audit] [--resolver IP[:PORT]]...\n"
		"       cgfence attach --policy NAME (--cgroup PATH | --pid PID) [--audit]\n"
		"                      [--label TEXT] [--netns-pid PID] [--socket PATH]\n"
		"       (both: [--boundary IFNAME [--boundary-netns PATH]])\n"
		"\n"
		"With --policy, cgfenced fences the cgroup (or the process's cgroup; a\n"
		"process in a shared cgroup gets one of its own) with its policy NAME and\n"
		"keeps its domain rules current.  A user who is not root may fence only a\n"
		"process that user owns.\n"
		"\n"
		"Fences an existing cgroup (its processes and every descendant cgroup).\n"
		"PATH is a directory on the cgroup2 mount or a path relative to its root.\n"
		"The fence stays in force after cgfence exits, until `cgfence detach`.\n"
		"Domain rules are resolved once: without cgfenced to refresh them, their\n"
		"addresses deny again once their DNS TTL has passed.\n"
		"\n"
		"  -c, --cgroup PATH        the cgroup to fence\n"
		"  -P, --policy NAME        a policy of cgfenced\n"
		"      --pid PID            fence this process (with --policy)\n"
		"      --label TEXT         whom the fence is for, shown in status and log\n"
		"      --netns-pid PID      for a policy in DNS proxy mode fenced by --cgroup:\n"
		"                           its proxy listens in PID's network namespace\n"
		"                           (default: that of the cgroup's first process)\n"
		"      --socket PATH        cgfenced's socket (default $CGFENCE_SOCKET or\n"
		"                           " CGF_SOCKET_DEFAULT ")\n"
		"  -a, --allow RULE         allow RULE: TARGET[:PORTS][/PROTO] (repeatable)\n"
		"  -p, --policy-file FILE   allow the rules of FILE (repeatable)\n"
		"      --audit              log what would be denied, deny nothing\n"
		"  -r, --resolver IP[:PORT] DNS server for domain rules (repeatable)\n"
		"      --bpffs DIR          pin directory (default " CGF_PIN_ROOT_DEFAULT ")\n"
		"      --boundary IFNAME    also judge every packet arriving from the workload's\n"
		"                           network namespace at the ingress of IFNAME, the host\n"
		"                           end of its veth (tc; holds against AF_PACKET,\n"
		"                           tunnels, netdev rewrites, forged sources); IFNAME\n"
		"                           must forward IPv4; detach removes it\n"
		"      --boundary-netns PATH  look IFNAME up in this network namespace\n"
		"                           (/run/netns/NAME, /proc/PID/ns/net; default:\n"
		"                           cgfence's own)\n"
		"  -v, --verbose            show libbpf's messages\n"
		"  -h, --help               this text\n");
}

/* Prints a daemon's error reply; returns the exit status for it. */
static int daemon_error(const char *what, json_t *reply)
{
	const char *e = json_string_value(json_object_get(reply, "error"));

	warnx("%s: %s", what, e ? e : "cgfenced refused without saying why");
	return 1;
}

/* A --pid or --netns-pid argument as JSON, or NULL with a message. */
static json_t *pid_json(const char *opt, const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v <= 0 || v > INT32_MAX) {
		warnx("%s '%s': not a process id", opt, arg);
		return NULL;
	}
	return json_integer(v);
}

static int attach_via_daemon(const char *socket, const char *policy, const char *cgroup,
			     const char *pid, const char *netns_pid, bool audit, const char *label,
			     const char *boundary, const char *boundary_netns)
{
	char err[CGF_ERR_LEN];
	json_t *req = json_pack("{s:s,s:s,s:b}", "op", "attach", "policy", policy, "audit", audit);
	json_t *rep = NULL;
	int status = 1;

	if (cgroup) {
		char abs[PATH_MAX];

		/* the daemon resolves paths from its own working directory: send absolute */
		if (cgroup[0] != '/' && realpath(cgroup, abs))
			cgroup = abs;
		json_object_set_new(req, "cgroup", json_string(cgroup));
	}
	if (pid || netns_pid) {
		json_t *j = pid_json(pid ? "--pid" : "--netns-pid", pid ? pid : netns_pid);

		if (!j) {
			json_decref(req);
			return 1;
		}
		json_object_set_new(req, pid ? "pid" : "netns_pid", j);
	}
	if (label)
		json_object_set_new(req, "label", json_string(label));
	if (boundary)
		json_object_set_new(req, "boundary", json_string(boundary));
	if (boundary_netns) {
		char abs[PATH_MAX];

		if (boundary_netns[0] != '/' && realpath(boundary_netns, abs))
			boundary_netns = abs;
		json_object_set_new(req, "boundary_netns", json_string(boundary_netns));
	}
	if (cgf_control_call(cgf_control_socket(socket), req, 30000, &rep, NULL, err,
			     sizeof(err))) {
		warnx("%s", err);
	} else if (!json_is_true(json_object_get(rep, "ok"))) {
		status = daemon_error("attach", rep);
	} else {
		const char *dns = json_string_value(json_object_get(rep, "dns"));

		printf("fenced %s with policy %s (cgroup id %" JSON_INTEGER_FORMAT "%s%s)\n",
		       json_string_value(json_object_get(rep, "cgroup")), policy,
		       json_integer_value(json_object_get(rep, "cgroup_id")),
		       audit ? ", audit mode" : "", dns && !strcmp(dns, "proxy") ? ", DNS proxy" : "");
		status = 0;
	}
	json_decref(req);
	json_decref(rep);
	return status;
}

static int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'P' },
		{ "pid", required_argument, NULL, 'i' },
		{ "label", required_argument, NULL, 'l' },
		{ "netns-pid", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "allow", required_argument, NULL, 'a' },
		{ "policy-file", required_argument, NULL, 'p' },
		{ "audit", no_argument, NULL, 'A' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "boundary", required_argument, NULL, 'B' },
		{ "boundary-netns", required_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct policy_args pa = { .limits = CGF_TTL_LIMITS_DEFAULT };
	struct cgf_attach_opts aopts = { 0 };
	struct cgf_resolver *res = NULL;
	struct cgf_domains *domains = NULL;
	struct cgf_allowlist list = { 0 };
	char path[PATH_MAX], err[CGF_ERR_LEN];
	const char *cgroup = NULL, *policy = NULL, *pid = NULL, *label = NULL, *socket = NULL;
	const char *netns_pid = NULL;
	int opt, status = 1;
	uint64_t id;

	while ((opt = getopt_long(argc, argv, "c:a:p:r:vhP:", opts, NULL)) != -1) {
		switch (opt) {
		case 'P':
			policy = optarg;
			break;
		case 'n':
			netns_pid = optarg;
			break;
		case 'i':
			pid = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 's':
			socket = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'a':
		case 'p':
		case 'r':
			if (!policy_option(&pa, opt, optarg))
				goto out;
			break;
		case 'A':
			pa.audit = true;
			break;
		case 'b':
			pa.pin_root = optarg;
			break;
		case 'B':
			aopts.boundary_ifname = optarg;
			break;
		case 'N':
			aopts.boundary_netns = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage_attach(stdout);
			status = 0;
			goto out;
		default:
			usage_attach(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		warnx("attach: unexpected '%s'", argv[optind]);
		goto out;
	}
	if (aopts.boundary_netns && !aopts.boundary_ifname) {
		warnx("attach: --boundary-netns goes with --boundary IFNAME");
		goto out;
	}
	if (policy) {
		if (pa.policy.n_rules || pa.n_servers) {
			warnx("attach: --policy takes its rules from cgfenced; no --allow, "
			      "--policy-file or --resolver with it");
			goto out;
		}
		if (!cgroup == !pid) {
			warnx("attach: --policy needs exactly one of --cgroup PATH and --pid PID");
			goto out;
		}
		if (netns_pid && !cgroup) {
			warnx("attach: --netns-pid goes with --cgroup (with --pid, the proxy listens "
			      "in that process's network namespace)");
			goto out;
		}
		status = attach_via_daemon(socket, policy, cgroup, pid, netns_pid, pa.audit, label,
					   aopts.boundary_ifname, aopts.boundary_netns);
		goto out;
	}
	if (pid || label || socket || netns_pid) {
		warnx("attach: --pid, --label, --netns-pid and --socket go with --policy NAME");
		goto out;
	}
	if (!cgroup) {
		warnx("attach: --cgroup PATH is required");
		goto out;
	}
	if (pa.policy.n_rules == 0) {
		warnx("attach: no rules (give --allow RULE or --policy-file FILE)");
		goto out;
	}
	if (pa.policy.dns_mode == CGF_DNS_PROXY) {
		warnx("attach: 'dns proxy' at %s: DNS proxy mode needs cgfenced's proxy; put the "
		      "policy in its policy directory and attach it with --policy NAME",
		      pa.policy.dns_mode_source);
		goto out;
	}
	if (has_wildcards(&pa.policy))
		goto out;
	cgf_libbpf_quiet(verbose);
	if (cgf_cgroup_resolve(cgroup, path, sizeof(path), &id, err)) {
		warnx("%s", err);
		goto out;
	}
	if (cgf_domains_new(&pa.policy, &pa.limits, &domains)) {
		warnx("out of memory");
		goto out;
	}
	if (cgf_domains_count(domains)) {
		char msg[CGF_ERR_LEN];

		if (cgf_resolver_new(&res, pa.servers, pa.n_servers, msg, sizeof(msg))) {
			warnx("%s", msg);
			goto out;
		}
		cgf_domains_refresh(domains, res, cgf_boottime_ns(), true, RESOLVE_TIMEOUT_MS,
				    log_resolve_failure, NULL);
	}
	if (compile(&pa.policy, domains, &list))
		goto out;
	aopts.pin_root = pa.pin_root;
	aopts.audit = pa.audit;
	if (cgf_fence_attach(path, &list, &aopts, NULL, err)) {
		warnx("%s", err);
		goto out;
	}
	printf("fenced %s (cgroup id %" PRIu64 ", %zu IPv4 and %zu IPv6 entries%s%s%s)\n", path,
	       id, list.n_v4, list.n_v6, pa.audit ? ", audit mode" : "",
	       aopts.boundary_ifname ? ", boundary on " : "",
	       aopts.boundary_ifname ? aopts.boundary_ifname : "");
	status = 0;
out:
	cgf_allowlist_free(&list);
	cgf_domains_free(domains);
	cgf_resolver_free(res);
	cgf_policy_free(&pa.policy);
	return status;
}

static void usage_detach(FILE *out)
{
	fprintf(out,
		"usage: cgfence detach --cgroup PATH [--bpffs DIR] [--socket PATH]\n"
		"\n"
		"Removes the fence of a cgroup: its traffic is no longer filtered.  Goes\n"
		"through cgfenced when its socket exists, so that it stops managing it.\n"
		"\n"
		"  -c, --cgroup PATH   the fenced cgroup\n"
		"      --socket PATH   cgfenced's socket\n"
		"      --bpffs DIR     pin directory (default " CGF_PIN_ROOT_DEFAULT ")\n"
		"  -h, --help          this text\n");
}

/*
 * Whether to go through the daemon: when its socket exists.  A socket file
 * nobody answers on is said and then ignored.
 */
static bool daemon_present(const char *socket)
{
	struct stat st;

	return stat(cgf_control_socket(socket), &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Sends a request that needs only an ok; prints the error otherwise. */
static int simple_request(const char *socket, const char *what, json_t *req, json_t **rep_out)
{
	char err[CGF_ERR_LEN];
	json_t *rep = NULL;
	int status = 1;

	if (cgf_control_call(cgf_control_socket(socket), req, 30000, &rep, NULL, err,
			     sizeof(err)))
		warnx("%s", err);
	else if (!json_is_true(json_object_get(rep, "ok")))
		status = daemon_error(what, rep);
	else
		status = 0;
	json_decref(req);
	if (rep_out && !status)
		*rep_out = rep;
	else
		json_decref(rep);
	return status;
}

static int cmd_detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cgroup = NULL, *pin_root = NULL, *socket = NULL;
	char path[PATH_MAX], err[CGF_ERR_LEN];
	uint64_t id;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'b':
			pin_root = optarg;
			break;
		case 'h':
			usage_detach(stdout);
			return 0;
		default:
			usage_detach(stderr);
			return 1;
		}
	}
	if (!cgroup || optind != argc) {
		warnx(!cgroup ? "detach: --cgroup PATH is required" : "detach: unexpected '%s'",
		      argv[optind]);
		return 1;
	}
	if (cgf_cgroup_resolve(cgroup, path, sizeof(path), &id, err)) {
		warnx("%s", err);
		return 1;
	}
	if (daemon_present(socket)) {
		if (simple_request(socket, "detach",
				   json_pack("{s:s,s:s}", "op", "detach", "cgroup", path), NULL))
			return 1;
		printf("unfenced %s\n", path);
		return 0;
	}
	if (cgf_fence_remove(pin_root, id, err)) {
		warnx("%s", err);
		return 1;
	}
	printf("unfenced %s\n", path);
	return 0;
}

/* ---- status -------------------------------------------------------------- */

static void usage_status(FILE *out)
{
	fprintf(out,
		"usage: cgfence status [--json] [--bpffs DIR] [--socket PATH]\n"
		"\n"
		"Lists every fenced cgroup: mode, the protections in force (cgroup hooks,\n"
		"boundary, LSM) and the vectors left open and why, allowlist entries,\n"
		"counters per hook.\n"
		"\n"
		"      --json       one JSON document\n"
		"      --bpffs DIR  pin directory (default " CGF_PIN_ROOT_DEFAULT ")\n"
		"      --socket PATH  ask cgfenced there (default: when its socket exists)\n"
		"  -h, --help       this text\n");
}

static int status_via_daemon(const char *socket, bool json)
{
	json_t *rep = NULL, *fences, *f;
	size_t i;

	if (simple_request(socket, "status", json_pack("{s:s}", "op", "status"), &rep))
		return 1;
	fences = json_object_get(rep, "fences");
	if (json) {
		json_object_del(rep, "ok");
		json_dumpf(rep, stdout, JSON_INDENT(2));
		printf("\n");
	} else {
		const json_t *pols = json_object_get(rep, "policies"), *p;

		printf("cgfenced: %zu policies:", json_array_size(pols));
		json_array_foreach(pols, i, p)
			printf(" %s", json_string_value(json_object_get(p, "name")));
		printf("\n");
		if (!json_array_size(fences))
			printf("no fenced cgroups\n");
		json_array_foreach(fences, i, f)
			cgf_fence_print(stdout, f);
	}
	json_decref(rep);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_root = NULL, *socket = NULL;
	json_t *jfences = NULL;
	uint64_t *ids = NULL;
	bool json = false;
	size_t n = 0, i;
	int opt, ret, status = 0;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'b':
			pin_root = optarg;
			break;
		case 's':
			socket = optarg;
			break;
		case 'h':
			usage_status(stdout);
			return 0;
		default:
			usage_status(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		warnx("status: unexpected '%s'", argv[optind]);
		return 1;
	}
	if (daemon_present(socket) && !pin_root)
		return status_via_daemon(socket, json);
	cgf_libbpf_quiet(false);
	ret = cgf_fence_list(pin_root, &ids, &n);
	if (ret) {
		warnx("cannot list fences in '%s': %s", pin_root ? pin_root : CGF_PIN_ROOT_DEFAULT,
		      strerror(-ret));
		return 1;
	}
	if (json)
		jfences = json_array();
	else if (n == 0)
		printf("no fenced cgroups\n");
	for (i = 0; i < n; i++) {
		struct cgf_fence *f = NULL;
		char path[PATH_MAX] = "", err[CGF_ERR_LEN];
		bool have_path = cgf_cgroup_path_of(ids[i], path, sizeof(path)) == 0;
		json_t *jf;

		if (cgf_fence_open(pin_root, ids[i], &f, err)) {
			warnx("fence of cgroup id %" PRIu64 ": %s", ids[i], err);
			status = 1;
			continue;
		}
		/* text shows 50 entries a fence; --json lists them all */
		jf = cgf_fence_json(f, have_path ? path : NULL, json ? 0 : 51);
		cgf_fence_close(f);
		if (!jf) {
			warnx("fence of cgroup id %" PRIu64 ": cannot read its maps", ids[i]);
			status = 1;
			continue;
		}
		if (json) {
			json_array_append_new(jfences, jf);
		} else {
			cgf_fence_print(stdout, jf);
			json_decref(jf);
		}
	}
	if (json) {
		json_t *doc = json_pack("{s:o}", "fences", jfences);

		json_dumpf(doc, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(doc);
	}
	free(ids);
	return status;
}

/* ---- reload, log ---------------------------------------------------------- */

static int cmd_reload(int argc, char **argv)
{
	const char *socket = NULL;
	json_t *rep = NULL, *errs, *e;
	size_t i;
	int status;

	if (argc == 3 && !strcmp(argv[1], "--socket"))
		socket = argv[2];
	else if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: cgfence reload [--socket PATH]\n\nMakes cgfenced read its policy "
		       "directory again.  A policy file with an error is\nrejected whole and its "
		       "previous version stays in force.\n");
		return 0;
	} else if (argc != 1) {
		warnx("usage: cgfence reload [--socket PATH]");
		return 1;
	}
	status = simple_request(socket, "reload", json_pack("{s:s}", "op", "reload"), &rep);
	if (status)
		return status;
	errs = json_object_get(rep, "errors");
	json_array_foreach(errs, i, e)
		warnx("%s", json_string_value(e));
	printf("%" JSON_INTEGER_FORMAT " policies loaded%s\n",
	       json_integer_value(json_object_get(rep, "policies")),
	       json_array_size(errs) ? ", with errors" : "");
	status = json_array_size(errs) ? 1 : 0;
	json_decref(rep);
	return status;
}

static int cmd_log(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *socket = NULL;
	bool follow = false, json = false;
	char err[CGF_ERR_LEN];
	json_t *req, *rep = NULL, *ev;
	int opt, ret, fd = -1;

	while ((opt = getopt_long(argc, argv, "fjh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			follow = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			socket = optarg;
			break;
		case 'h':
			printf("usage: cgfence log [--follow] [--json] [--socket PATH]\n\n"
			       "Prints the deny events cgfenced saw (the last 1024), with time,\n"
			       "cgroup, policy, pid, comm, destination, port, protocol and hook;\n"
			       "--follow keeps printing new ones.\n");
			return 0;
		default:
			warnx("usage: cgfence log [--follow] [--json] [--socket PATH]");
			return 1;
		}
	}
	/* the call does not take the request: it is ours to free */
	req = json_pack("{s:s,s:b}", "op", "events", "follow", follow);
	ret = cgf_control_call(cgf_control_socket(socket), req, 30000, &rep, &fd, err, sizeof(err));
	json_decref(req);
	if (ret) {
		warnx("%s", err);
		return 1;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		daemon_error("log", rep);
		json_decref(rep);
		close(fd);
		return 1;
	}
	json_decref(rep);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (cgf_control_read_line(fd, follow ? -1 : 5000, &ev, err, sizeof(err)) == 0) {
		if (json) {
			json_dumpf(ev, stdout, JSON_COMPACT);
			printf("\n");
		} else {
			cgf_event_print(stdout, ev);
		}
		json_decref(ev);
	}
	close(fd);
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cgfence COMMAND [OPTIONS]\n"
		"\n"
		"Keeps a cgroup on an egress allowlist enforced by eBPF from the host.\n"
		"\n"
		"  run      run a command fenced:  cgfence run --allow 198.18.0.2:443 -- curl ...\n"
		"  attach   fence an existing cgroup\n"
		"  detach   remove the fence of a cgroup\n"
		"  status   list fenced cgroups, their allowlists and counters\n"
		"  reload   make cgfenced read its policies again\n"
		"  log      deny events seen by cgfenced\n"
		"\n"
		"A rule is TARGET[:PORTS][/PROTO]: TARGET an IPv4/IPv6 address or prefix\n"
		"([IPv6] in brackets when a port follows) or a domain; PORTS N or N-M;\n"
		"PROTO tcp or udp (both when absent).  `cgfence COMMAND --help` for more.\n");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "run", cmd_run },
		{ "attach", cmd_attach },
		{ "detach", cmd_detach },
		{ "status", cmd_status },
		{ "reload", cmd_reload },
		{ "log", cmd_log },
	};

	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	warnx("unknown command '%s' (run, attach, detach, status, reload, log)", argv[1]);
	return 1;
}

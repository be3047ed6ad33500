// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgfence-hook: the OCI hook that podman (or CRI-O) runs for a container
 * annotated cgfence.policy=NAME.
 *
 *   cgfence-hook create   [--socket PATH] [--timeout-ms N]   (createRuntime)
 *   cgfence-hook poststop [--socket PATH] [--timeout-ms N]   (poststop)
 *
 * Both read the container's OCI state (JSON) from standard input.  `create`
 * runs once the container's init exists and before its workload starts: it
 * asks cgfenced to fence the init's cgroup with the policy and waits for the
 * answer.  Anything short of a fence in force exits 1 with one line on stderr,
 * "cgfence-hook: REASON", and the runtime then refuses to start the container
 * (fail closed).  `poststop` asks the daemon to drop the fences whose cgroup
 * is gone or empty; its failures are reported but never fatal (exit 0).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <linux/capability.h>
#include <sys/stat.h>

#include "control.h"
#include "fence.h"
#include "veth.h"
#include "oci.h"

#define DNS_MAX 4                   /* resolvers passed on (CGF_FENCE_DNS_MAX) */
#define LABEL_MAX 127               /* bytes of the fence's label (CGF_LABEL_MAX - 1) */
#define TIMEOUT_MS_DEFAULT 10000

/* One line on stderr, "cgfence-hook: ...": the reason podman shows. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	char *nl;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one line, whatever a daemon error or a path holds */
	while ((nl = strpbrk(msg, "\r\n")))
		*nl = ' ';
	fprintf(stderr, "cgfence-hook: %s\n", msg);
}

/* What the whole-run timeout exits with: poststop never fails. */
static volatile sig_atomic_t alarm_status = 1;

static void on_alarm(int sig)
{
	static const char msg[] = "cgfence-hook: timed out (no answer from cgfenced in time)\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(alarm_status);
	_exit(alarm_status);
}

/* Reads all of fd up to max bytes; -EFBIG past that.  *out is NUL-terminated. */
static int read_all(FILE *f, size_t max, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *grown;

			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				int e = errno ? -errno : -EIO;

				free(buf);
				return e;
			}
			break;
		}
	}
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	int ret;

	if (!f)
		return -errno;
	ret = read_all(f, max, out, len);
	fclose(f);
	return ret;
}

/* The bundle's config.json, parsed; 0 or -1 (said). */
static int bundle_config(const char *bundle, struct cgf_oci_config *cfg)
{
	char path[PATH_MAX], err[CGF_OCI_ERR_LEN], *text = NULL;
	size_t len;
	int ret;

	if (cgf_oci_bundle_path(bundle, "config.json", path, sizeof(path))) {
		say("bundle path too long");
		return -1;
	}
	ret = read_file(path, CGF_OCI_CONFIG_MAX, &text, &len);
	if (ret) {
		say("cannot read '%s': %s", path, ret == -EFBIG ? "too large" : strerror(-ret));
		return -1;
	}
	ret = cgf_oci_config_parse(text, len, cfg, err, sizeof(err));
	free(text);
	if (ret) {
		say("malformed '%s': %s", path, err);
		return -1;
	}
	return 0;
}

/*
 * The resolvers the container uses: the nameserver lines of the file that
 * the bundle's config.json mounts on /etc/resolv.conf (podman writes it from
 * --dns or the host's).  No such mount, no resolvers: that is not an error.
 */
static int container_dns(const char *bundle, const struct cgf_oci_config *cfg, json_t *dns)
{
	char path[PATH_MAX], *text = NULL;
	char addrs[DNS_MAX][CGF_OCI_ADDR_LEN];
	size_t len, n;
	int ret;

	if (!cfg->resolv_source)
		return 0;
	if (cgf_oci_bundle_path(bundle, cfg->resolv_source, path, sizeof(path))) {
		say("resolv.conf path too long");
		return -1;
	}
	ret = read_file(path, CGF_OCI_RESOLV_MAX, &text, &len);
	if (ret) {
		say("cannot read the container's resolv.conf '%s': %s", path,
		    ret == -EFBIG ? "too large" : strerror(-ret));
		return -1;
	}
	n = cgf_oci_resolv_nameservers(text, len, addrs, DNS_MAX);
	free(text);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(dns, json_string(addrs[i]));
	return 0;
}

/*
 * The capabilities that reach around the cgroup hooks (AF_PACKET, tunnels,
 * netdev rules) which the container's process may hold: in any of its
 * bounding, effective or permitted sets (a capability only in the bounding
 * set comes back with a setuid or file-capability binary), as the names
 * cgfenced takes.
 */
static json_t *net_caps(const struct cgf_oci_config *cfg)
{
	uint64_t any = cfg->caps.bounding | cfg->caps.effective | cfg->caps.permitted;
	json_t *caps = json_array();

	if (any >> CAP_NET_RAW & 1)
		json_array_append_new(caps, json_string("CAP_NET_RAW"));
	if (any >> CAP_NET_ADMIN & 1)
		json_array_append_new(caps, json_string("CAP_NET_ADMIN"));
	return caps;
}

/* Whether the hook runs in the network namespace of pid 1 (where cgfenced runs). */
static bool same_netns_as_init(void)
{
	struct stat a, b;

	return stat("/proc/self/ns/net", &a) == 0 && stat("/proc/1/ns/net", &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/*
 * Where the boundary program goes: for a container with its own network
 * namespace, the host end of its only veth.  Adds "boundary" (and
 * "boundary_netns" when the peer is not in the hook's own namespace) to req,
 * or, when there is none, "boundary_missing": why, which cgfenced quotes if it
 * must refuse.
 */
static void find_boundary(const struct cgf_oci_config *cfg, int pid, json_t *req)
{
	struct cgf_veth_peer peer;
	char path[64], err[CGF_ERR_LEN];

	if (!cfg->own_netns) {
		json_object_set_new(req, "boundary_missing",
				    json_string("the container shares the host's network namespace"));
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (cgf_veth_find_peer(path, &peer, err, sizeof(err))) {
		char why[CGF_ERR_LEN + 64];

		snprintf(why, sizeof(why), "no veth to the host in its network namespace: %s", err);
		json_object_set_new(req, "boundary_missing", json_string(why));
		return;
	}
	json_object_set_new(req, "boundary", json_string(peer.ifname));
	if (*peer.netns)
		json_object_set_new(req, "boundary_netns", json_string(peer.netns));
	else if (!same_netns_as_init()) {
		/* cgfenced looks the name up in its own namespace: name the hook's */
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)getpid());
		json_object_set_new(req, "boundary_netns", json_string(path));
	}
}

static int hook_create(const char *socket, int timeout_ms)
{
	char label[LABEL_MAX + 1], err[CGF_ERR_LEN], *text = NULL;
	struct cgf_oci_state st;
	struct cgf_oci_config cfg;
	json_t *dns, *req, *rep = NULL;
	size_t len;
	int ret;

	ret = read_all(stdin, CGF_OCI_STATE_MAX, &text, &len);
	if (ret) {
		say("cannot read the container state on stdin: %s",
		    ret == -EFBIG ? "more than 1 MiB" : strerror(-ret));
		return 1;
	}
	ret = cgf_oci_state_parse(text, len, &st, err, sizeof(err));
	free(text);
	if (ret) {
		say("malformed container state: %s", err);
		return 1;
	}
	if (!st.policy) {
		/* not opted in (the hooks file filters on this already) */
		cgf_oci_state_free(&st);
		return 0;
	}
	if (bundle_config(st.bundle, &cfg)) {
		cgf_oci_state_free(&st);
		return 1;
	}
	dns = json_array();
	if (container_dns(st.bundle, &cfg, dns)) {
		json_decref(dns);
		cgf_oci_config_free(&cfg);
		cgf_oci_state_free(&st);
		return 1;
	}
	/* "container <id12> [<name>]", cut to what a fence's label holds */
	snprintf(label, sizeof(label), "container %.12s%s%s", st.id, st.name ? " " : "",
		 st.name ? st.name : "");
	req = json_pack("{s:s,s:s,s:i,s:b,s:s,s:o,s:o}", "op", "attach", "policy", st.policy,
			"pid", st.pid, "audit", st.audit, "label", label, "dns", dns, "net_caps",
			net_caps(&cfg));
	if (req)
		find_boundary(&cfg, st.pid, req);
	cgf_oci_config_free(&cfg);
	cgf_oci_state_free(&st);
	if (!req) {
		say("out of memory");
		return 1;
	}
	ret = cgf_control_call(socket, req, timeout_ms, &rep, NULL, err, sizeof(err));
	json_decref(req);
	if (ret == -ENOENT || ret == -ECONNREFUSED) {
		/* (podman takes "no such file" in a hook's error for a missing runtime) */
		say("cgfenced is not running (nothing listens on '%s'); not starting an unfenced "
		    "container", socket);
		return 1;
	}
	if (ret) {
		say("%s", err);
		return 1;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *e = json_string_value(json_object_get(rep, "error"));

		say("cgfenced refused: %s", e ? e : "no reason given");
		json_decref(rep);
		return 1;
	}
	json_decref(rep);
	return 0;
}

static int hook_poststop(const char *socket, int timeout_ms)
{
	char err[CGF_ERR_LEN], *text = NULL;
	json_t *req, *rep = NULL;
	size_t len;
	int ret;

	/* the state is not needed: the daemon drops every fence with nothing left in it */
	if (read_all(stdin, CGF_OCI_STATE_MAX, &text, &len) == 0)
		free(text);
	/* the call does not take the request: it is ours to free */
	req = json_pack("{s:s}", "op", "release");
	ret = cgf_control_call(socket, req, timeout_ms, &rep, NULL, err, sizeof(err));
	json_decref(req);
	if (ret) {
		say("release: %s (the daemon drops the fence within its next check)", err);
		return 0;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *e = json_string_value(json_object_get(rep, "error"));

		say("release: cgfenced refused: %s", e ? e : "no reason given");
	}
	json_decref(rep);
	return 0;
}

/*
 * cgfence-hook boundary < state: prints where the boundary of the container
 * would go ("IFNAME [NETNS]"), or why there is none; what create sends.
 */
static int show_boundary(void)
{
	struct cgf_oci_config cfg = { .own_netns = true };
	char err[CGF_OCI_ERR_LEN], *text = NULL;
	struct cgf_oci_state st;
	json_t *req = json_object();
	size_t len;
	int ret;

	ret = read_all(stdin, CGF_OCI_STATE_MAX, &text, &len);
	if (ret) {
		say("cannot read the container state on stdin: %s", strerror(-ret));
		return 1;
	}
	ret = cgf_oci_state_parse(text, len, &st, err, sizeof(err));
	free(text);
	if (ret || !st.policy) {
		say("malformed container state: %s", ret ? err : "no cgfence.policy annotation");
		return 1;
	}
	/* the bundle's config when there is one; else assume a namespace of its own */
	if (access(st.bundle, F_OK) == 0 && bundle_config(st.bundle, &cfg)) {
		cgf_oci_state_free(&st);
		return 1;
	}
	find_boundary(&cfg, st.pid, req);
	if (json_object_get(req, "boundary"))
		printf("%s %s\n", json_string_value(json_object_get(req, "boundary")),
		       json_object_get(req, "boundary_netns") ?
			       json_string_value(json_object_get(req, "boundary_netns")) : "-");
	else
		printf("none: %s\n", json_string_value(json_object_get(req, "boundary_missing")));
	json_decref(req);
	cgf_oci_config_free(&cfg);
	cgf_oci_state_free(&st);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cgfence-hook create|poststop [--socket PATH] [--timeout-ms N]\n"
		"\n"
		"The OCI hook for containers annotated cgfence.policy=NAME; reads the\n"
		"container state on stdin.  create: asks cgfenced to fence the container\n"
		"with policy NAME (cgfence.audit=true: audit mode) and fails, so that the\n"
		"container does not start, unless the fence is in force.  poststop: asks\n"
		"cgfenced to drop the fences of containers that are gone.  Socket: --socket,\n"
		"else $CGFENCE_SOCKET, else " CGF_SOCKET_DEFAULT "; timeout 10000 ms.\n"
		"\n"
		"create also tells cgfenced which of CAP_NET_RAW and CAP_NET_ADMIN the\n"
		"container holds and where its boundary program goes: the host end of the\n"
		"only veth of its network namespace.  Without one, cgfenced refuses a\n"
		"container holding either capability unless its policy says accept-risk.\n"
		"`cgfence-hook boundary` prints, for a state on stdin, where that is.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *socket = NULL, *stage;
	int timeout_ms = TIMEOUT_MS_DEFAULT, opt;
	struct sigaction sa = { .sa_handler = on_alarm };

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		long v;

		switch (opt) {
		case 's':
			socket = optarg;
			break;
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 600000) {
				say("--timeout-ms '%s': a number of milliseconds, 1 to 600000", optarg);
				return 1;
			}
			timeout_ms = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind + 1 != argc) {
		say("usage: cgfence-hook create|poststop [--socket PATH] [--timeout-ms N]");
		return 1;
	}
	stage = argv[optind];
	if (!strcmp(stage, "boundary"))
		return show_boundary();
	if (strcmp(stage, "create") && strcmp(stage, "poststop")) {
		say("unknown stage '%s' (create or poststop)", stage);
		return 1;
	}
	if (!strcmp(stage, "poststop"))
		alarm_status = 0;
	/*
	 * A bound on the whole run, whatever blocks (a stdin never closed, a
	 * connect to a full backlog): the read of the reply has its own.
	 */
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)((timeout_ms + 999) / 1000) + 1);
	socket = cgf_control_socket(socket);
	if (!strcmp(stage, "create"))
		return hook_create(socket, timeout_ms);
	return hook_poststop(socket, timeout_ms);
}

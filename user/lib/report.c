// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Fences and events as JSON and text; see report.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "report.h"

#define NS_PER_SEC 1000000000ull

static json_t *entry_json(int family, const uint8_t *addr, unsigned prefixlen,
			  const struct cgf_allow *v, uint64_t now)
{
	char a[INET6_ADDRSTRLEN], prefix[INET6_ADDRSTRLEN + 8];
	json_t *ranges = json_array();

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(prefix, sizeof(prefix), "%s/%u", a, prefixlen);
	for (unsigned i = 0; i < v->n_ranges && i < CGF_MAX_RANGES; i++) {
		const struct cgf_range *rg = &v->ranges[i];
		json_t *protos = json_array(), *expires;

		if (rg->protos & CGF_PROTO_TCP)
			json_array_append_new(protos, json_string("tcp"));
		if (rg->protos & CGF_PROTO_UDP)
			json_array_append_new(protos, json_string("udp"));
		if (!rg->expires_ns)
			expires = json_null();
		else
			expires = json_integer(rg->expires_ns > now ?
						       (json_int_t)((rg->expires_ns - now) / NS_PER_SEC) :
						       0);
		json_array_append_new(ranges, json_pack("{s:i,s:i,s:o,s:o}", "port_lo", rg->port_lo,
							"port_hi", rg->port_hi, "protocols", protos,
							"expires_in_s", expires));
	}
	return json_pack("{s:s,s:o}", "prefix", prefix, "allow", ranges);
}

/* Why no LSM program is in force: cgfence has none; what the kernel says about lockdown. */
static json_t *lsm_json(void)
{
	char buf[128] = "", reason[256], *open, *close;
	FILE *f = fopen("/sys/kernel/security/lockdown", "re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	open = strchr(buf, '[');
	close = open ? strchr(open, ']') : NULL;
	if (open && close && strncmp(open + 1, "none", 4)) {
		*close = '\0';
		snprintf(reason, sizeof(reason),
			 "cgfence loads no LSM programs: lockdown=%s refuses them (EPERM)", open + 1);
	} else {
		snprintf(reason, sizeof(reason),
			 "cgfence loads no LSM programs: they fail with EPERM under kernel lockdown "
			 "(integrity), so nothing may depend on them");
	}
	return json_pack("{s:b,s:s}", "loaded", 0, "reason", reason);
}

/*
 * What reaches around the cgroup hooks, per capability, and whether it is
 * closed (by the boundary, or because the workload lacks the capability) or
 * open, and why.
 */
static json_t *vectors_json(const struct cgf_config *cfg, int boundary_ifindex)
{
	static const struct {
		uint32_t bit;
		const char *cap, *vectors;
	} risks[] = {
		{ CGF_RISK_NET_RAW, "CAP_NET_RAW", "AF_PACKET" },
		{ CGF_RISK_NET_ADMIN, "CAP_NET_ADMIN", "tunnels, TUN forwarding, nft netdev rewrites" },
	};
	json_t *out = json_array();
	char why[256];

	for (size_t i = 0; i < sizeof(risks) / sizeof(risks[0]); i++) {
		bool held = cfg->caps_held & risks[i].bit, open = true;

		if (cfg->boundary_ifindex && boundary_ifindex > 0) {
			open = false;
			snprintf(why, sizeof(why), "judged by the boundary on %s", cfg->boundary_ifname);
		} else if (cfg->caps_known && !held) {
			open = false;
			snprintf(why, sizeof(why), "the workload does not hold %s", risks[i].cap);
		} else if (cfg->boundary_ifindex) {
			snprintf(why, sizeof(why), "the boundary interface %s is gone",
				 cfg->boundary_ifname);
		} else if (!cfg->caps_known) {
			snprintf(why, sizeof(why),
				 "no boundary program: open if the workload holds %s over its network "
				 "namespace (attach --boundary IFNAME closes it)", risks[i].cap);
		} else if (cfg->risk_accepted & risks[i].bit) {
			snprintf(why, sizeof(why),
				 "no boundary program and risk accepted by policy (the workload holds %s)",
				 risks[i].cap);
		} else {
			snprintf(why, sizeof(why), "no boundary program and the workload holds %s",
				 risks[i].cap);
		}
		json_array_append_new(out, json_pack("{s:s,s:s,s:b,s:s}", "vectors", risks[i].vectors,
						     "capability", risks[i].cap, "open", open,
						     "why", why));
	}
	return out;
}

/* Which protections are in force for a fence, and what stays open. */
static json_t *protections_json(const struct cgf_fence *f)
{
	const struct cgf_config *cfg = cgf_fence_config(f);
	int ifindex = cfg->boundary_ifindex ? cgf_fence_boundary_ifindex(f) : -ENOENT;
	json_t *boundary = json_null();

	if (cfg->boundary_ifindex)
		boundary = json_pack("{s:s,s:s,s:I,s:I,s:s}", "interface", cfg->boundary_ifname,
				     "netns", cfg->boundary_netns, "ifindex",
				     (json_int_t)cfg->boundary_ifindex, "netns_inode",
				     (json_int_t)cfg->boundary_netns_ino, "state",
				     ifindex > 0 ? "attached" : ifindex == 0 ? "interface gone" :
						 "link missing");
	return json_pack("{s:b,s:o,s:o,s:o}", "cgroup_hooks", 1, "boundary", boundary, "lsm",
			 lsm_json(), "vectors", vectors_json(cfg, ifindex));
}

json_t *cgf_fence_json(const struct cgf_fence *f, const char *cgroup_path, size_t max_entries)
{
	struct cgf_allowlist list = { 0 };
	json_t *entries, *counters, *out;
	uint64_t now = cgf_boottime_ns();
	size_t i, total4 = 0, total6 = 0;
	struct cgf_stats st;

	if (cgf_fence_stats(f, &st) || cgf_fence_dump(f, max_entries, &list, &total4, &total6))
		return NULL;
	entries = json_array();
	for (i = 0; i < list.n_v4; i++)
		json_array_append_new(entries, entry_json(AF_INET, list.v4[i].key.addr,
							  list.v4[i].key.prefixlen,
							  &list.v4[i].value, now));
	for (i = 0; i < list.n_v6; i++)
		json_array_append_new(entries, entry_json(AF_INET6, list.v6[i].key.addr,
							  list.v6[i].key.prefixlen,
							  &list.v6[i].value, now));
	counters = json_object();
	for (i = 0; i < CGF_HOOK_MAX; i++)
		json_object_set_new(counters, cgf_hook_name((unsigned)i),
				    json_pack("{s:I,s:I,s:I}", "allowed", (json_int_t)st.allowed[i],
					      "denied", (json_int_t)st.denied[i], "audited",
					      (json_int_t)st.audited[i]));
	out = json_pack("{s:I,s:o,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:I}", "cgroup_id",
			(json_int_t)cgf_fence_cgroup_id(f), "cgroup",
			cgroup_path ? json_string(cgroup_path) : json_null(), "policy",
			cgf_fence_policy(f), "label", cgf_fence_label(f), "mode",
			cgf_fence_audit(f) ? "audit" : "enforce", "ipv4_entries",
			(json_int_t)total4, "ipv6_entries", (json_int_t)total6, "allowlist",
			entries, "counters", counters, "events_lost", (json_int_t)st.events_lost);
	if (out && list.n_v4 + list.n_v6 < total4 + total6)
		json_object_set_new(out, "allowlist_truncated", json_true());
	if (out) {
		json_object_set_new(out, "protections", protections_json(f));
		json_object_set_new(out, "dns", json_string(cgf_fence_dns_proxy(f, NULL, NULL) ?
							    "proxy" : "resolve"));
		json_object_set_new(out, "dns_steered", json_integer((json_int_t)st.dns_steered));
	}
	cgf_allowlist_free(&list);
	return out;
}

json_t *cgf_event_json(const struct cgf_event *e, const char *cgroup_path, const char *policy,
		       const char *label)
{
	char addr[INET6_ADDRSTRLEN] = "?", when[64], pbuf[16], comm[CGF_COMM_LEN];
	uint64_t boot_now = cgf_boottime_ns(), ago = boot_now > e->time_ns ?
							      boot_now - e->time_ns : 0;
	struct timespec ts;
	struct tm tm;

	/* Boot time to wall time: now minus how long ago it happened. */
	clock_gettime(CLOCK_REALTIME, &ts);
	{
		uint64_t real = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec - ago;
		time_t sec = (time_t)(real / NS_PER_SEC);

		gmtime_r(&sec, &tm);
		snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (unsigned)(real % NS_PER_SEC / 1000000));
	}
	json_t *out;

	inet_ntop(e->family == AF_INET ? AF_INET : AF_INET6, e->daddr, addr, sizeof(addr));
	cgf_event_comm(e, comm);
	out = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:I,s:o,s:o,s:o,s:I,s:s}", "time", when,
			 "action", e->action == CGF_EVENT_AUDIT ? "audit" : "denied", "hook",
			 cgf_hook_name(e->hook), "protocol",
			 cgf_proto_name(e->protocol, pbuf, sizeof(pbuf)), "dport", e->dport, "daddr",
			 addr, "pid", (json_int_t)e->pid, "cgroup",
			 cgroup_path ? json_string(cgroup_path) : json_null(), "policy",
			 policy && *policy ? json_string(policy) : json_null(), "label",
			 label && *label ? json_string(label) : json_null(), "cgroup_id",
			 (json_int_t)e->cgroup_id, "comm", comm);
	if (out) {
		char rbuf[16];
		const char *reason = cgf_reason_name(e->reason, rbuf, sizeof(rbuf));

		/* null: a program older than reasons said none */
		json_object_set_new(out, "reason", reason ? json_string(reason) : json_null());
	}
	return out;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void print_protections(FILE *out, const json_t *p)
{
	const json_t *b = json_object_get(p, "boundary"), *v;
	size_t i;

	if (!p)
		return;
	fprintf(out, "  protections: cgroup hooks");
	if (json_is_object(b)) {
		fprintf(out, "; boundary on %s", str(b, "interface"));
		if (*str(b, "netns"))
			fprintf(out, " (netns %s)", str(b, "netns"));
		if (strcmp(str(b, "state"), "attached"))
			fprintf(out, " [%s]", str(b, "state"));
	} else {
		fprintf(out, "; no boundary");
	}
	fprintf(out, "\n  LSM: not loaded (%s)\n", str(json_object_get(p, "lsm"), "reason"));
	json_array_foreach(json_object_get(p, "vectors"), i, v)
		fprintf(out, "  %s: %s (%s): %s\n",
			json_is_true(json_object_get(v, "open")) ? "open" : "closed", str(v, "vectors"),
			str(v, "capability"), str(v, "why"));
}

void cgf_fence_print(FILE *out, const json_t *f)
{
	const json_t *entries = json_object_get(f, "allowlist"), *e, *counters;
	const char *policy = str(f, "policy"), *label = str(f, "label");
	size_t i, shown = 0;
	const char *hook;
	json_t *c;

	fprintf(out, "%s (cgroup id %" JSON_INTEGER_FORMAT "), %s", *str(f, "cgroup") ?
		str(f, "cgroup") : "(cgroup gone)", json_integer_value(json_object_get(f, "cgroup_id")),
		strcmp(str(f, "mode"), "audit") ? "enforcing" : "audit mode");
	if (*policy)
		fprintf(out, ", policy %s", policy);
	if (*label)
		fprintf(out, ", %s", label);
	fprintf(out, "\n");
	print_protections(out, json_object_get(f, "protections"));
	fprintf(out, "  allowlist: %" JSON_INTEGER_FORMAT " IPv4, %" JSON_INTEGER_FORMAT
		" IPv6 entries\n", json_integer_value(json_object_get(f, "ipv4_entries")),
		json_integer_value(json_object_get(f, "ipv6_entries")));
	json_array_foreach(entries, i, e) {
		const json_t *ranges = json_object_get(e, "allow"), *r;
		size_t j;

		if (shown++ == 50) {
			fprintf(out, "    ... (first 50 shown)\n");
			break;
		}
		fprintf(out, "    %s", str(e, "prefix"));
		json_array_foreach(ranges, j, r) {
			json_int_t lo = json_integer_value(json_object_get(r, "port_lo"));
			json_int_t hi = json_integer_value(json_object_get(r, "port_hi"));
			const json_t *protos = json_object_get(r, "protocols");
			const json_t *exp = json_object_get(r, "expires_in_s");
			const char *p = json_array_size(protos) == 2 ? "tcp+udp" :
					json_string_value(json_array_get(protos, 0));

			fprintf(out, "%s%s ", j ? "; " : "  ", p ? p : "?");
			if (lo == 0 && hi == 65535)
				fprintf(out, "any port");
			else if (lo == hi)
				fprintf(out, "%" JSON_INTEGER_FORMAT, lo);
			else
				fprintf(out, "%" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT, lo, hi);
			if (json_is_integer(exp))
				fprintf(out, json_integer_value(exp) ? " (expires in %" JSON_INTEGER_FORMAT
									" s)" : " (expired)",
					json_integer_value(exp));
		}
		fprintf(out, "\n");
	}
	counters = json_object_get(f, "counters");
	fprintf(out, "  %-10s %12s %12s %12s\n", "hook", "allowed", "denied", "audited");
	json_object_foreach((json_t *)counters, hook, c)
		fprintf(out, "  %-10s %12" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT
			" %12" JSON_INTEGER_FORMAT "\n", hook,
			json_integer_value(json_object_get(c, "allowed")),
			json_integer_value(json_object_get(c, "denied")),
			json_integer_value(json_object_get(c, "audited")));
	if (json_integer_value(json_object_get(f, "events_lost")))
		fprintf(out, "  deny events lost (ring buffer full): %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(f, "events_lost")));
	if (!strcmp(str(f, "dns"), "proxy")) {
		const json_t *px = json_object_get(f, "dns_proxy");

		fprintf(out, "  dns: proxy mode, %" JSON_INTEGER_FORMAT " port-53 destinations steered "
			"to the proxy\n", json_integer_value(json_object_get(f, "dns_steered")));
		if (json_is_true(json_object_get(px, "listening")))
			fprintf(out, "  dns proxy on %s%s%s: %" JSON_INTEGER_FORMAT " queries, %"
				JSON_INTEGER_FORMAT " answered, %" JSON_INTEGER_FORMAT " refused, %"
				JSON_INTEGER_FORMAT " malformed, %" JSON_INTEGER_FORMAT " servfail, %"
				JSON_INTEGER_FORMAT " addresses learned for %" JSON_INTEGER_FORMAT
				" names\n", str(px, "listen4"), *str(px, "listen6") ? " and " : "",
				str(px, "listen6"),
				json_integer_value(json_object_get(px, "queries")),
				json_integer_value(json_object_get(px, "answered")),
				json_integer_value(json_object_get(px, "refused")),
				json_integer_value(json_object_get(px, "malformed")),
				json_integer_value(json_object_get(px, "servfail")),
				json_integer_value(json_object_get(px, "addresses_learned")),
				json_integer_value(json_object_get(px, "names_learned")));
		else if (px)
			fprintf(out, "  dns proxy: %s\n", str(px, "note"));
	}
}

void cgf_event_print(FILE *out, const json_t *e)
{
	char what[96], line[256];

	/* a socket option refused by a cgfence of layout 7 (its logs): no destination */
	if (*str(e, "option"))
		snprintf(what, sizeof(what), "%s", str(e, "option"));
	else
		cgf_dest_words(what, sizeof(what), str(e, "protocol"), str(e, "daddr"),
			       (unsigned long)json_integer_value(json_object_get(e, "dport")));
	/* the boundary meets packets on the wire: no process to name */
	cgf_deny_words(line, sizeof(line), what, str(e, "hook"),
		       cgf_reason_text_of(str(e, "reason")),
		       (unsigned long)json_integer_value(json_object_get(e, "pid")),
		       strcmp(str(e, "hook"), "boundary") ? str(e, "comm") : NULL);
	fprintf(out, "%s %s %s", str(e, "time"),
		strcmp(str(e, "action"), "audit") ? "denied" : "audit: would deny", line);
	if (*str(e, "cgroup"))
		fprintf(out, " cgroup %s", str(e, "cgroup"));
	if (*str(e, "policy"))
		fprintf(out, " policy %s", str(e, "policy"));
	if (*str(e, "label"))
		fprintf(out, " %s", str(e, "label"));
	fprintf(out, "\n");
}

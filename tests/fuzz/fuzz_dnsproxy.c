// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the DNS proxy's judgement of a query and its walk of an
 * answer (user/lib/dnsproxy.c).  The first byte picks which; the rest is the
 * message.  Beyond "no crash, no sanitizer report" it checks what the proxy
 * promises: a query it forwards has one question whose name the policy
 * allows, of an allowed type; an answer it writes back carries the query's id
 * and QR and parses; the walk never returns more addresses than asked for.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* before ldns: without it, ldns/common.h defines _Bool as signed char */
#include <stdbool.h>
#include <ldns/ldns.h>

#include "dnsproxy.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cgf_dnsproxy_names *names;

static void init(void)
{
	static const char *const rules[] = { "example.com", "*.wild.example", "a.b.c.d", NULL };
	struct cgf_policy pol = { 0 };
	struct cgf_error err;

	for (int i = 0; rules[i]; i++)
		if (cgf_policy_add_rule(&pol, rules[i], &err))
			abort();
	if (cgf_dnsproxy_names_new(&pol, &names))
		abort();
	cgf_policy_free(&pol);
}

static void check_forwarded(const uint8_t *m, size_t len, const uint16_t *extra, size_t n_extra)
{
	ldns_pkt *pkt = NULL;
	const ldns_rr *q;
	char *name;
	ldns_rr_type t;
	bool type_ok;

	if (ldns_wire2pkt(&pkt, m, len) != LDNS_STATUS_OK || ldns_pkt_qdcount(pkt) != 1 ||
	    ldns_pkt_ancount(pkt) || ldns_pkt_nscount(pkt) || ldns_pkt_qr(pkt))
		abort();
	q = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
	t = ldns_rr_get_type(q);
	type_ok = t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA || t == LDNS_RR_TYPE_CNAME ||
		  t == LDNS_RR_TYPE_HTTPS || t == LDNS_RR_TYPE_SVCB;
	for (size_t i = 0; i < n_extra; i++)
		type_ok |= t == extra[i];
	if (!type_ok || ldns_rr_get_class(q) != LDNS_RR_CLASS_IN)
		abort();
	name = ldns_rdf2str(ldns_rr_owner(q));
	if (!name || !cgf_dnsproxy_name_allowed(names, name))
		abort();
	free(name);
	ldns_pkt_free(pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t extra[] = { 16 };
	uint8_t resp[1024];
	int r;

	if (!names)
		init();
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		struct cgf_dnsproxy_addr a[CGF_DNSPROXY_MAX_ADDRS];
		size_t cap = data[0] >> 1 & 0x3f;

		r = cgf_dnsproxy_answer_addrs(data + 1, size - 1, a, cap);
		if (r > (int)cap || r < -1)
			abort();
		for (int i = 0; i < r; i++)
			if (a[i].family != AF_INET && a[i].family != AF_INET6)
				abort();
		return 0;
	}
	r = cgf_dnsproxy_judge(data + 1, size - 1, names, extra, data[0] & 2 ? 1 : 0, resp,
			       sizeof(resp));
	if (r == 0) {
		check_forwarded(data + 1, size - 1, extra, data[0] & 2 ? 1 : 0);
	} else if (r > 0) {
		ldns_pkt *pkt = NULL;

		if ((size_t)r > sizeof(resp) ||
		    ldns_wire2pkt(&pkt, resp, (size_t)r) != LDNS_STATUS_OK ||
		    !ldns_pkt_qr(pkt) || ldns_pkt_id(pkt) != (data[1] << 8 | data[2]) ||
		    ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NOERROR)
			abort();
		ldns_pkt_free(pkt);
	} else if (r != -1) {
		abort();
	}
	return 0;
}

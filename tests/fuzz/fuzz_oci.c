// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: what the OCI hook parses, each from the same input: a
 * container state, a bundle's config.json and a resolv.conf.  Checks, beyond
 * "no crash, no sanitizer report", that a parse is all or nothing and that
 * what it returns keeps the promises of oci.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_state(const char *buf, size_t size)
{
	struct cgf_oci_state st;
	char err[CGF_OCI_ERR_LEN] = "";
	int ret = cgf_oci_state_parse(buf, size, &st, err, sizeof(err));

	if (ret) {
		if (!err[0] || st.policy || st.id || st.bundle || st.name)
			abort();
		return;
	}
	if (st.policy && (!*st.policy || !st.id || !*st.id || !st.bundle ||
			  st.bundle[0] != '/' || st.pid <= 0))
		abort();
	if (st.name && !*st.name)
		abort();
	cgf_oci_state_free(&st);
}

static void check_config(const char *buf, size_t size)
{
	struct cgf_oci_config cfg;
	char err[CGF_OCI_ERR_LEN] = "";
	uint64_t all = cgf_oci_caps_all();
	int ret = cgf_oci_config_parse(buf, size, &cfg, err, sizeof(err));

	if (ret) {
		if (!err[0] || cfg.netns_path || cfg.resolv_source || cfg.own_netns)
			abort();
		return;
	}
	if ((cfg.caps.bounding | cfg.caps.effective | cfg.caps.permitted | cfg.caps.ambient |
	     cfg.caps.inheritable) & ~all)
		abort();
	if (cfg.netns_path && (!cfg.own_netns || !*cfg.netns_path))
		abort();
	if (cfg.resolv_source && !*cfg.resolv_source)
		abort();
	cgf_oci_config_free(&cfg);
}

static void check_resolv(const char *buf, size_t size)
{
	char out[4][CGF_OCI_ADDR_LEN];
	size_t n = cgf_oci_resolv_nameservers(buf, size, out, 4);
	unsigned char addr[16];

	if (n > 4)
		abort();
	for (size_t i = 0; i < n; i++)
		if (inet_pton(AF_INET, out[i], addr) != 1 && inet_pton(AF_INET6, out[i], addr) != 1)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so that ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check_state(buf, size);
	check_config(buf, size);
	check_resolv(buf, size);
	free(buf);
	return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * genprefixes: N distinct random prefixes for the benchmark's allowlists.
 *
 *   genprefixes N SEED
 *
 * Prints N distinct prefixes, one per line, the same N for the same SEED:
 * nine in ten IPv4, one in ten IPv6 (at least one of each for N >= 2).
 *   IPv4: 75 % /32, 20 % /24, 5 % /9../31; one in twenty inside
 *         198.18.0.0/15, the others spread over public-looking space (never
 *         0/8, 10/8, 100/8, 127/8, 169/8, 172/8, 192/8 or 224/3).
 *   IPv6: 60 % /128, 30 % /64, 10 % /48, random in 2000::/3 (never inside
 *         2001:db8::/32, the benchmark's own documentation range).
 * No prefix is ever contacted: they only fill the tries.  Host bits are
 * zero, as cgfence requires.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t *set;
static uint64_t set_mask;

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

/* Inserts a key hash; returns 0 if it was already there. */
static int set_add(uint64_t h)
{
	uint64_t i;

	if (!h)
		h = 1;
	for (i = h & set_mask; set[i]; i = (i + 1) & set_mask)
		if (set[i] == h)
			return 0;
	set[i] = h;
	return 1;
}

static void gen4(void)
{
	for (;;) {
		uint32_t a = (uint32_t)rnd(), r = (uint32_t)(rnd() % 100), len, first;
		char buf[INET_ADDRSTRLEN];
		struct in_addr in;

		len = r < 75 ? 32 : r < 95 ? 24 : 9 + (uint32_t)(rnd() % 23);
		if (rnd() % 20 == 0) {
			a = 0xc6120000u | (a & 0x1ffffu); /* 198.18.0.0/15 */
			if (len < 15)
				len = 15;
		} else {
			first = a >> 24;
			if (first == 0 || first == 10 || first == 100 || first == 127 || first == 169 ||
			    first == 172 || first == 192 || first >= 224)
				continue;
		}
		a &= len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
		if (!set_add(mix(mix(4, a), len)))
			continue;
		in.s_addr = htonl(a);
		printf("%s/%u\n", inet_ntop(AF_INET, &in, buf, sizeof(buf)), len);
		return;
	}
}

static void gen6(void)
{
	for (;;) {
		uint8_t a[16];
		uint64_t hi = rnd(), lo = rnd(), h;
		uint32_t r = (uint32_t)(rnd() % 100), len;
		char buf[INET6_ADDRSTRLEN];

		len = r < 60 ? 128 : r < 90 ? 64 : 48;
		hi = (hi & ~(7ull << 61)) | (1ull << 61); /* 2000::/3 */
		if ((hi >> 32) == 0x20010db8u)
			continue;
		if (len <= 64) {
			lo = 0;
			if (len < 64)
				hi &= ~((1ull << (64 - len)) - 1);
		}
		h = mix(mix(mix(6, hi), lo), len);
		if (!set_add(h))
			continue;
		for (int i = 0; i < 8; i++) {
			a[i] = (uint8_t)(hi >> (56 - 8 * i));
			a[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
		}
		printf("[%s/%u]\n", inet_ntop(AF_INET6, a, buf, sizeof(buf)), len);
		return;
	}
}

int main(int argc, char **argv)
{
	unsigned long n, n6, size = 1024;

	if (argc != 3) {
		fprintf(stderr, "usage: genprefixes N SEED\n");
		return 2;
	}
	n = strtoul(argv[1], NULL, 10);
	rng_state = strtoull(argv[2], NULL, 10);
	if (n > 4000000) {
		fprintf(stderr, "genprefixes: N at most 4000000\n");
		return 2;
	}
	while (size < 2 * n)
		size <<= 1;
	set = calloc(size, sizeof(*set));
	if (!set)
		return 1;
	set_mask = size - 1;
	n6 = n / 10;
	if (n >= 2 && !n6)
		n6 = 1;
	for (unsigned long i = 0; i < n - n6; i++)
		gen4();
	for (unsigned long i = 0; i < n6; i++)
		gen6();
	return fflush(stdout) ? 1 : 0;
}

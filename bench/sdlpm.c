// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sdlpm: loads bench/sdlpm.bpf.o (a systemd-style cgroup_skb egress LPM
 * filter), fills its trie with the IPv4 prefixes read from stdin (one
 * A.B.C.D/LEN or A.B.C.D per line; others are skipped), attaches it to a
 * cgroup through a bpf link and pins the link, so the filter stays after
 * sdlpm exits (remove the pin and the link goes with it).
 *
 *   sdlpm OBJECT CGROUP LINK_PIN MAX_ENTRIES < prefixes
 *
 * Prints "sdlpm entries=N fill_s=S total_s=T map_id=M prog_id=P".
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	struct bpf_link *link;
	struct bpf_map_info mi = { 0 };
	struct bpf_prog_info pi = { 0 };
	__u32 mil = sizeof(mi), pil = sizeof(pi);
	char line[256];
	unsigned long n = 0;
	double t0 = now_s(), t1, t2;
	int cg, mfd;
	__u8 one = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: sdlpm OBJECT CGROUP LINK_PIN MAX_ENTRIES < prefixes\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "sdlpm: cannot open %s\n", argv[1]);
		return 1;
	}
	map = bpf_object__find_map_by_name(obj, "allow4");
	prog = bpf_object__find_program_by_name(obj, "sdlpm_egress");
	if (!map || !prog || bpf_map__set_max_entries(map, (__u32)strtoul(argv[4], NULL, 10)) ||
	    bpf_object__load(obj)) {
		fprintf(stderr, "sdlpm: cannot load %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	mfd = bpf_map__fd(map);
	t1 = now_s();
	while (fgets(line, sizeof(line), stdin)) {
		struct { __u32 len; struct in_addr a; } k;
		char *slash = strchr(line, '/');
		unsigned long len = 32;

		line[strcspn(line, "\r\n")] = 0;
		if (slash) {
			*slash = 0;
			len = strtoul(slash + 1, NULL, 10);
		}
		if (inet_pton(AF_INET, line, &k.a) != 1 || len > 32)
			continue;
		k.len = (__u32)len;
		if (bpf_map_update_elem(mfd, &k, &one, BPF_ANY)) {
			fprintf(stderr, "sdlpm: update %s/%lu: %s\n", line, len, strerror(errno));
			return 1;
		}
		n++;
	}
	t2 = now_s();
	cg = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		fprintf(stderr, "sdlpm: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	link = bpf_program__attach_cgroup(prog, cg);
	if (!link || bpf_link__pin(link, argv[3])) {
		fprintf(stderr, "sdlpm: cannot attach or pin: %s\n", strerror(errno));
		return 1;
	}
	bpf_obj_get_info_by_fd(mfd, &mi, &mil);
	bpf_obj_get_info_by_fd(bpf_program__fd(prog), &pi, &pil);
	printf("sdlpm entries=%lu fill_s=%.2f total_s=%.2f map_id=%u prog_id=%u\n", n, t2 - t1,
	       now_s() - t0, mi.id, pi.id);
	return 0;
}

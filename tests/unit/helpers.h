/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Small helpers the unit tests that run a dnsmasq share.  Included by a test
 * after <cmocka.h>; every function is static, each test is one binary.
 */
#ifndef CGF_TEST_HELPERS_H
#define CGF_TEST_HELPERS_H

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stops a child: SIGTERM, up to 2 s to go, then SIGKILL; *pid becomes -1. */
static inline void stop_child(pid_t *pid)
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

/* Prints a log file (dnsmasq's) into the test output, to explain a failure. */
static inline void dump_log_file(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		print_message("%s", buf);
	}
	close(fd);
}

#endif /* CGF_TEST_HELPERS_H */

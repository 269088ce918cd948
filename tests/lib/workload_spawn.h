/* SPDX-License-Identifier: MIT */
/*
 * workload_spawn.h - starts one of tests/workloads' programs with its stdin
 * and stdout on pipes, for tests that speak the workload protocol
 * (tests/workloads/workload.h) themselves.  Header-only: each user is a
 * single test program.
 */
#ifndef HF_TEST_WORKLOAD_SPAWN_H
#define HF_TEST_WORKLOAD_SPAWN_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct workload_proc {
	pid_t pid;
	FILE *out; /* the workload's stdout */
	int in;    /* the workload's stdin */
};

/*
 * Starts build_dir/tests/workloads/argv[0] with argv, under LD_PRELOAD=preload
 * unless preload is NULL.  Returns 0 or a negative errno.
 */
static inline int workload_spawn(struct workload_proc *w, const char *build_dir,
				 const char *preload, char *const argv[])
{
	char path[1200];
	int to[2], from[2];

	snprintf(path, sizeof(path), "%s/tests/workloads/%s", build_dir, argv[0]);
	if (pipe2(to, O_CLOEXEC))
		return -errno;
	if (pipe2(from, O_CLOEXEC)) {
		int err = -errno;

		close(to[0]);
		close(to[1]);
		return err;
	}
	w->pid = fork();
	if (w->pid < 0)
		return -errno;
	if (w->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		if (preload)
			setenv("LD_PRELOAD", preload, 1);
		execv(path, argv);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	w->in = to[1];
	w->out = fdopen(from[0], "r");
	return w->out ? 0 : -ENOMEM;
}

#endif /* HF_TEST_WORKLOAD_SPAWN_H */

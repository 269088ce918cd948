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
#include <string.h>
#include <sys/wait.h>
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

/*
 * Reads lines until "TRUTH {...}"; returns that line from its "{" on,
 * malloc'ed (the caller frees it), or NULL at EOF.
 */
static inline char *workload_truth(struct workload_proc *w)
{
	char *line = NULL;
	size_t cap = 0;

	while (getline(&line, &cap, w->out) > 0) {
		if (strncmp(line, "TRUTH {", 7) == 0) {
			memmove(line, line + 6, strlen(line + 6) + 1);
			return line;
		}
	}
	free(line);
	return NULL;
}

/*
 * Closes its stdin (the protocol's last line), reaps it and returns its exit
 * status, or 128 + the signal that ended it.
 */
static inline int workload_finish(struct workload_proc *w)
{
	int status = 0;

	close(w->in);
	waitpid(w->pid, &status, 0);
	fclose(w->out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif /* HF_TEST_WORKLOAD_SPAWN_H */

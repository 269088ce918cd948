/* SPDX-License-Identifier: MIT */
/*
 * workload_ctl.h - start a workload program with its stdin and stdout on
 * pipes and talk to it line by line (see arena_workload.c's protocol).
 */
#ifndef HF_TEST_WORKLOAD_CTL_H
#define HF_TEST_WORKLOAD_CTL_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct workload {
	pid_t pid;
	FILE *in;  /* the workload's stdin */
	FILE *out; /* the workload's stdout */
};

/* Starts argv[0] (a path) with extra environment entries env (NULL-terminated, may be NULL). */
static inline int workload_start(struct workload *w, char *const argv[], char *const env[])
{
	int to[2], from[2];

	if (pipe(to) || pipe(from))
		return -1;
	w->pid = fork();
	if (w->pid < 0)
		return -1;
	if (w->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		for (int i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	w->in = fdopen(to[1], "w");
	w->out = fdopen(from[0], "r");
	return w->in && w->out ? 0 : -1;
}

static inline int workload_send(struct workload *w, const char *word)
{
	if (fprintf(w->in, "%s\n", word) < 0 || fflush(w->in))
		return -1;
	return 0;
}

/* Reads lines until one starts with prefix; copies it to line. */
static inline int workload_expect(struct workload *w, const char *prefix, char *line, size_t len)
{
	while (fgets(line, (int)len, w->out)) {
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			return 0;
	}
	return -1;
}

/* Sends "exit" and reaps; returns the exit status, or -1. */
static inline int workload_finish(struct workload *w)
{
	int status = 0;

	workload_send(w, "exit");
	fclose(w->in);
	fclose(w->out);
	if (waitpid(w->pid, &status, 0) != w->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline void workload_kill(struct workload *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
	}
}

/* $HF_BUILD_DIR/tests/NAME, or ./NAME when run by hand from the tests folder. */
static inline void workload_path(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("HF_BUILD_DIR");

	if (dir)
		snprintf(buf, len, "%s/tests/%s", dir, name);
	else
		snprintf(buf, len, "./%s", name);
}

#endif /* HF_TEST_WORKLOAD_CTL_H */

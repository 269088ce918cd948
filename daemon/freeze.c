// SPDX-License-Identifier: MIT
/*
 * freeze.c - the process hold of freeze.h: seize and interrupt each thread,
 * listing /proc/PID/task again until no new thread appears.
 */
#include "freeze.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool held(const struct hf_freeze *f, pid_t tid)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->tids[i] == tid)
			return true;
	return false;
}

/* Waits for tid's interrupt stop; a signal it stopped for instead is kept for later. */
static int wait_stopped(struct hf_freeze *f, size_t i)
{
	double deadline = monotonic() + HF_FREEZE_TIMEOUT_MS / 1000.0;

	for (;;) {
		int status = 0;
		pid_t got = waitpid(f->tids[i], &status, WNOHANG | __WALL);

		if (got < 0)
			return errno == ECHILD ? -ESRCH : -errno;
		if (got == f->tids[i]) {
			if (WIFEXITED(status) || WIFSIGNALED(status))
				return -ESRCH;
			if (WIFSTOPPED(status)) {
				/* A signal-delivery stop: the signal goes back at detach. */
				if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP)
					f->sigs[i] = WSTOPSIG(status);
				return 0;
			}
		}
		if (monotonic() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
}

/* Seizes the threads of f->pid not yet held; *added says how many were new. */
static int seize_new(struct hf_freeze *f, size_t *added)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int err = 0;

	*added = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)f->pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(d))) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		size_t i;

		if (*end || tid <= 0 || held(f, (pid_t)tid))
			continue;
		if (f->n == HF_FREEZE_MAX_THREADS) {
			err = -E2BIG;
			break;
		}
		if (ptrace(PTRACE_SEIZE, (pid_t)tid, 0, 0) != 0) {
			if (errno == ESRCH)
				continue; /* it has just exited */
			err = -errno;
			break;
		}
		i = f->n++;
		f->tids[i] = (pid_t)tid;
		f->sigs[i] = 0;
		if (ptrace(PTRACE_INTERRUPT, (pid_t)tid, 0, 0) != 0 && errno != ESRCH) {
			err = -errno;
			break;
		}
		err = wait_stopped(f, i);
		if (err == -ESRCH) {
			f->tids[i] = -1; /* gone: nothing to detach */
			err = 0;
		}
		if (err == -ETIMEDOUT)
			f->sigs[i] = -1; /* its stop is still to come: hf_thaw waits for it */
		if (err)
			break;
		(*added)++;
	}
	closedir(d);
	return err;
}

int hf_freeze(pid_t pid, struct hf_freeze *f)
{
	struct hf_proc_stat st;
	size_t added = 0;
	int err;

	memset(f, 0, sizeof(*f));
	f->pid = pid;
	err = hf_proc_read_stat(pid, &st);
	if (err)
		return err == -ENOENT ? -ESRCH : err;
	if (st.ppid == getpid())
		return -ECHILD;
	f->tids = calloc(HF_FREEZE_MAX_THREADS, sizeof(*f->tids));
	f->sigs = calloc(HF_FREEZE_MAX_THREADS, sizeof(*f->sigs));
	if (!f->tids || !f->sigs) {
		hf_thaw(f);
		return -ENOMEM;
	}
	f->since = monotonic();
	/* A thread created while the others were being stopped shows in the next listing. */
	do {
		err = seize_new(f, &added);
	} while (!err && added);
	if (err) {
		hf_thaw(f);
		return err;
	}
	return 0;
}

/*
 * Held threads that cannot be detached were killed: SIGKILL is the one
 * thing that ends a ptrace stop.  Their deaths are reported to their
 * tracer first, and their parent cannot reap the process until the tracer
 * has reaped every one of them: left alone, it would stay a zombie for as
 * long as heapfragd runs, its parent (a shell, a service manager) never
 * learning that it ended.  They take a moment to finish dying (milliseconds,
 * unless stuck in the kernel), and a leader only becomes reapable after its
 * other threads, so all are polled together, for up to 2 s.
 */
static void reap_killed(pid_t *tids, size_t n)
{
	double deadline = monotonic() + 2.0;
	size_t left = n;

	while (left) {
		for (size_t i = 0; i < n; i++) {
			int status;
			pid_t got;

			if (tids[i] <= 0)
				continue;
			got = waitpid(tids[i], &status, WNOHANG | __WALL);
			if (got == tids[i] || (got < 0 && errno != EINTR)) {
				tids[i] = -1;
				left--;
			}
		}
		if (!left)
			return;
		if (monotonic() > deadline) {
			hf_log(HF_LOG_WARN,
			       "%zu threads were killed while held and did not die within 2 s; "
			       "their parent cannot reap them while heapfragd runs",
			       left);
			return;
		}
		usleep(100);
	}
}

double hf_thaw(struct hf_freeze *f)
{
	double held_for = f->since ? monotonic() - f->since : 0;
	size_t killed = 0; /* the first ones of f->tids[] now list the killed threads */

	for (size_t i = 0; f->tids && i < f->n; i++) {
		if (f->tids[i] <= 0)
			continue;
		/*
		 * A thread that was slow to stop (in an uninterruptible sleep) still
		 * has its interrupt coming; it can only be detached once stopped, and
		 * left attached it would stop for good at its next signal.
		 */
		if (f->sigs[i] < 0) {
			int status = 0;

			f->sigs[i] = 0;
			if (waitpid(f->tids[i], &status, __WALL) != f->tids[i] || !WIFSTOPPED(status))
				continue;
			if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP)
				f->sigs[i] = WSTOPSIG(status);
		}
		if (ptrace(PTRACE_DETACH, f->tids[i], 0, (void *)(long)f->sigs[i]) != 0 &&
		    errno == ESRCH)
			f->tids[killed++] = f->tids[i];
	}
	if (killed)
		reap_killed(f->tids, killed);
	free(f->tids);
	free(f->sigs);
	memset(f, 0, sizeof(*f));
	return held_for;
}

int hf_freeze_copy_begin(void *ctx)
{
	struct hf_freeze_copy *fc = ctx;
	int err;

	if (fc->refused)
		return -EPERM;
	err = hf_freeze(fc->pid, &fc->f);
	if (err && err != -ESRCH) {
		hf_log(HF_LOG_WARN,
		       "--census-stop cannot hold process %d (%s); its heap is read while it runs",
		       fc->pid, strerror(-err));
		fc->refused = true;
	}
	return err;
}

void hf_freeze_copy_end(void *ctx)
{
	struct hf_freeze_copy *fc = ctx;

	fc->stopped += hf_thaw(&fc->f);
}

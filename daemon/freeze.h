/* SPDX-License-Identifier: MIT */
/*
 * freeze.h - holds every thread of a process still for a moment
 * (--census-stop), without the process or its parent seeing a stop.
 *
 * Each thread is attached with PTRACE_SEIZE and stopped with
 * PTRACE_INTERRUPT, which unlike SIGSTOP is no job-control stop: the
 * parent's waitpid sees nothing and a shell keeps its foreground job.  A
 * signal that arrives meanwhile is handed back at detach.  If heapfragd dies
 * while a process is held, the kernel detaches it and it runs on.
 *
 * ptrace requests must come from the thread that attached, so hf_freeze and
 * hf_thaw are called on one thread (the census thread).  heapfragd's own
 * children are refused (-ECHILD): the main loop waits for its command, and
 * their ptrace stops would reach that wait.
 */
#ifndef HF_FREEZE_H
#define HF_FREEZE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Thread counts beyond this are refused (-E2BIG). */
#define HF_FREEZE_MAX_THREADS 4096
/* A thread that does not stop within this is given up on (-ETIMEDOUT). */
#define HF_FREEZE_TIMEOUT_MS 200

struct hf_freeze {
	pid_t pid;
	size_t n;
	pid_t *tids;
	int *sigs; /* a signal each thread stopped with, to hand back; 0 for none */
	double since;
};

/*
 * Stops every thread of pid.  0; -ESRCH: gone; -EPERM: not allowed or
 * already traced by someone else; -ECHILD: heapfragd's own child;
 * -ETIMEDOUT, -E2BIG.  On an error nothing stays attached.
 */
int hf_freeze(pid_t pid, struct hf_freeze *f);

/* Lets every thread go; returns how many seconds they were held. */
double hf_thaw(struct hf_freeze *f);

/*
 * The hold as a census walk's copy_begin / copy_end (heap_walk.h): held for
 * each copy, the seconds added up; a process that cannot be held is read
 * running from then on, with one warning.
 */
struct hf_freeze_copy {
	pid_t pid;
	struct hf_freeze f;
	double stopped;
	bool refused;
};

int hf_freeze_copy_begin(void *ctx);
void hf_freeze_copy_end(void *ctx);

#endif /* HF_FREEZE_H */

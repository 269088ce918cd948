/* SPDX-License-Identifier: MIT */
/*
 * harness.h - what the tracer's integration tests share: start the real
 * heapfragd on a free loopback port, start the real workloads of
 * tests/workloads (protocol in workload.h), read the daemon's documents over
 * HTTP, and keep every test bounded in time.
 */
#ifndef HF_TRACER_HARNESS_H
#define HF_TRACER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

struct th_daemon {
	pid_t pid;
	int port;
	char log_path[256];
};

struct th_workload {
	pid_t pid;  /* the PID the workload reported (READY pid=N) */
	pid_t proc; /* the process we started (the same unless wrapped) */
	int in_fd;  /* its stdin */
	FILE *out;  /* its stdout */
};

/*
 * Kills everything started and fails the test after seconds; also skips
 * unless running as root with BPF.
 */
void th_init(const char *test_name, unsigned int seconds);

/* Processes the test starts itself: killed if the test times out. */
void th_track(pid_t pid);
void th_untrack(pid_t pid);

/* Paths in the build tree: "$HF_BUILD_DIR/<rel>". */
const char *th_build_path(const char *rel);

/* Is libptm built?  Returns its path or NULL. */
const char *th_libptm(void);
/* Debian's jemalloc, or NULL when the package is missing. */
const char *th_libjemalloc(void);

/*
 * Starts heapfragd with args (NULL-terminated) plus -l 127.0.0.1:PORT on a
 * free port, and waits until /healthz answers.  Returns 0 or -1.
 */
int th_daemon_start(struct th_daemon *d, const char *const *args);
/* SIGTERM, wait; returns the exit status (or 128 + signal). */
int th_daemon_stop(struct th_daemon *d);
/* Prints the daemon's log to stderr (on failure, to see why). */
void th_daemon_dump_log(const struct th_daemon *d);

/*
 * Starts tests/workloads/<name> with args (NULL-terminated); preload, if not
 * NULL, is its LD_PRELOAD.  Waits for READY.  Returns 0 or -1.
 */
int th_workload_start(struct th_workload *w, const char *name, const char *const *args,
		      const char *preload);
/*
 * The usual start of a test: tests/workloads/<name> as th_workload_start(),
 * then heapfragd with dargs (NULL-terminated, at most 29) plus "-p PID" as
 * th_daemon_start().  Returns 0, or -1 with the workload killed and the
 * reason on stderr.
 */
int th_start_traced(struct th_workload *w, const char *name, const char *const *args,
		    const char *preload, struct th_daemon *d, const char *const *dargs);
/* Sends one line (the go of the protocol). */
int th_workload_go(struct th_workload *w);
/* Reads lines until "TRUTH {...}"; returns the parsed object or NULL. */
json_t *th_workload_truth(struct th_workload *w);
/* Lets it finish (a line, then EOF) and reaps it; returns its exit status. */
int th_workload_finish(struct th_workload *w);
/* SIGKILL and reap. */
void th_workload_kill(struct th_workload *w);

/*
 * GET http://127.0.0.1:PORT/path.  Returns the parsed body (NULL if not
 * JSON) and the status in *status.
 */
json_t *th_get(const struct th_daemon *d, const char *path, long *status);
/* GET, the body as text (malloc'd, NUL-terminated; NULL when none). */
char *th_get_text(const struct th_daemon *d, const char *path, long *status);
/* POST a JSON body; the status in *status. */
json_t *th_post(const struct th_daemon *d, const char *path, const char *body, long *status);

/* GET /api/v1/processes/PID until check(doc) holds or seconds pass; the last doc. */
typedef bool (*th_check_fn)(json_t *doc, void *arg);
json_t *th_wait_doc(const struct th_daemon *d, pid_t pid, th_check_fn check, void *arg,
		    double seconds);

/* Integer at a dotted path ("heap.mapped_bytes.brk"); UINT64_MAX when null or missing. */
uint64_t th_u64(json_t *obj, const char *path);

/*
 * strace -c of one phase: attaches strace -f to pid counting the heap
 * syscalls; th_strace_stop() detaches it and parses the summary.
 * Only for a process without return probes: strace 6.1 does not know the
 * uretprobe syscall (335, Linux 6.11) that every return probe's trampoline
 * makes, and its -c tally crashes on it (an empty summary); under -p every
 * such syscall also stops the tracee.  For a traced run, start the workload
 * with th_workload_start_straced() instead.
 */
struct th_strace {
	pid_t pid;
	char out_path[256];
};
int th_strace_start(struct th_strace *s, pid_t target);
struct th_syscalls {
	uint64_t brk, mmap, munmap, mremap, madvise;
};
int th_strace_stop(struct th_strace *s, struct th_syscalls *out);

/*
 * th_workload_start() under strace, for counting the heap syscalls of the
 * very run heapfragd traces: strace starts the workload (w->proc is strace,
 * w->pid the workload) with --seccomp-bpf, so only the heap syscalls and
 * read/write stop it - not the uretprobe syscall, which seccomp passes
 * through unseen.  After th_workload_finish(), th_strace_phase() counts the
 * heap syscalls of the measured phase: between the workload's read of the
 * go line's newline and its write of TRUTH, as strace -c would.
 */
int th_workload_start_straced(struct th_workload *w, const char *name, const char *const *args,
			      const char *preload, struct th_strace *s);
int th_strace_phase(struct th_strace *s, pid_t pid, struct th_syscalls *out);

#endif /* HF_TRACER_HARNESS_H */

/* SPDX-License-Identifier: MIT */
/*
 * contention.h - glibc arena-lock contention of traced processes, per arena.
 *
 * Debian's glibc has no SDT probes, but glibc 2.36 calls the exported
 * __lll_lock_wait_private(int *futex) only when a private lock was found
 * taken, and an arena's mutex is the first field of its malloc_state.  One
 * BPF object (bpf/contention.bpf.c) serves all processes: a uprobe on that
 * function in each process's libc, attached with the process's pid, counts
 * every contended acquisition per (process, lock address), and the futex
 * syscall tracepoints time how long the thread then sleeps in FUTEX_WAIT on
 * that lock.  There is deliberately no return probe: it would fire with the
 * lock already held and stretch every contended critical section by a trap.
 * The arena list (arena_map.h) turns addresses into arenas; waits on other
 * private locks (stdio, the dynamic linker, ...) are kept apart as "other"
 * and never counted as arena contention.  glibc has no count of uncontended
 * acquisitions, so lock.acquisitions stays HF_UNKNOWN.
 *
 * Definitions: contended = calls of __lll_lock_wait_private on the arena's
 * lock; wait_seconds = summed time blocked in FUTEX_WAIT on it; max = the
 * longest blocked time of one acquisition.
 *
 * Use (every call is thread-safe; one mutex inside):
 *
 *	hf_contention_open(&opts, &c);          once, before any process
 *	hf_contention_add(c, pid, libc, ...);   when a glibc process is traced
 *	hf_contention_arenas(c, pid, ...);      every interval, for the snapshot
 *	hf_contention_remove(c, pid);           when it exits or is detached
 *	hf_contention_close(c);                 at shutdown
 *
 * All calls return 0 or a negative errno.  This header shares its name with
 * bpf/contention.h (the BPF side's plain structs); hf_contention links the
 * BPF skeleton privately, so users of this library see only this one.
 */
#ifndef HF_CONTENTION_H
#define HF_CONTENTION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot.h"

/* Log2 wait-time slots; equal to CONTENTION_HIST_SLOTS of bpf/contention.h. */
#define HF_LOCK_HIST_SLOTS 32

/* Map sizes; 0 takes the defaults of bpf/contention.h. */
struct hf_contention_opts {
	uint32_t max_procs;       /* processes traced at once */
	uint32_t max_locks;       /* (process, lock) pairs with at least one wait */
	uint32_t max_waiters;     /* threads waiting at the same instant */
	unsigned int arena_flags; /* HF_ARENA_FORCE_HEURISTIC, see arena_map.h */
};

/* Contended waits on one lock of one process, since it was added. */
struct hf_lock_waits {
	uint64_t lock;     /* the lock word's address in the target */
	uint64_t count;    /* contended acquisitions */
	uint64_t total_ns; /* summed time blocked in FUTEX_WAIT on the lock */
	uint64_t max_ns;   /* longest blocked time of one acquisition */
	/* hist[i]: waits w with 2^(i-1) <= w < 2^i ns; the last slot also holds longer ones. */
	uint64_t hist[HF_LOCK_HIST_SLOTS];
};

struct hf_contention;

/*
 * Loads the BPF object and attaches the futex tracepoints (mounting tracefs
 * if needed); -EPERM and friends when BPF is not allowed.
 */
int hf_contention_open(const struct hf_contention_opts *opts, struct hf_contention **out);
/* Detaches everything and frees; NULL-safe. */
void hf_contention_close(struct hf_contention *c);

/*
 * Starts counting a glibc process's lock waits.  libc_path is the host path
 * of the libc the process uses or will load (e.g. hf_alloc_target.path for a
 * glibc target, which works before the process has mapped it, as for
 * `heapfragd -- COMMAND`); NULL finds it in /proc/PID/maps.  -EEXIST when
 * already added; -ENOENT (with why) when that object has no
 * __lll_lock_wait_private, i.e. is not glibc; -ESRCH when pid is gone.
 */
int hf_contention_add(struct hf_contention *c, pid_t pid, const char *libc_path, char *why,
		      size_t why_len);

/* Stops counting and forgets the process's numbers; -ENOENT if not added. */
int hf_contention_remove(struct hf_contention *c, pid_t pid);

/*
 * Every lock of the process that has been waited for, in a malloc'ed array
 * the caller frees; sorted by address.
 */
int hf_contention_locks(struct hf_contention *c, pid_t pid, struct hf_lock_waits **out, size_t *n);

/*
 * The arena list read from the target now, at most max entries in out (*n
 * of them; *truncated when there were more), each with its lock's numbers
 * as below.  This is what the tracer's loop calls without its own lock held,
 * copying the result into the snapshot under it afterwards.
 */
int hf_contention_arenas(struct hf_contention *c, pid_t pid, struct hf_arena *out, size_t max,
			 size_t *n, bool *truncated, struct hf_lock_waits *other);

/*
 * Fills snap->arenas, nr_arenas and arenas_truncated: the arena list read
 * from the target now, each with its lock's contended count, wait and
 * maximum wait (acquisitions HF_UNKNOWN).  main_arena is located on the
 * first call that finds it initialised and remembered.  When the arenas
 * cannot be read (the process has not called malloc yet, or it is gone),
 * nr_arenas is 0 and the error is returned.  Waits on locks that are not
 * arenas are added to *other (may be NULL).
 */
int hf_contention_fill(struct hf_contention *c, pid_t pid, struct hf_snapshot *snap,
		       struct hf_lock_waits *other);

/* Waits lost because a map was full, since open (for the daemon's drop counters). */
uint64_t hf_contention_dropped(struct hf_contention *c);

/* main_arena's address once found, 0 before; and how it was found. */
uint64_t hf_contention_main_arena(struct hf_contention *c, pid_t pid, const char **source);

#endif /* HF_CONTENTION_H */

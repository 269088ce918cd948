/* SPDX-License-Identifier: MIT */
/*
 * contention.h - shared between contention.bpf.c and daemon/contention.c:
 * contended-lock waits of glibc's private locks, per (process, lock address).
 *
 * glibc 2.36 calls __lll_lock_wait_private(int *futex) only when a private
 * lock (an arena's mutex, stdio's, ...) was found taken; its argument is the
 * lock word's address, which for an arena is the malloc_state's address.
 * Each call is one contended acquisition.  The wait is the time the thread
 * then spends blocked in FUTEX_WAIT on that word, measured by the futex
 * syscall tracepoints: a return probe would instead fire after the lock is
 * taken, lengthening every contended critical section by a trap and so
 * creating much of the contention it measures (20x more, on 4 threads).
 */
#ifndef HF_BPF_CONTENTION_H
#define HF_BPF_CONTENTION_H

/*
 * Wait-time histogram, one entry per contended acquisition: slot i counts
 * acquisitions whose blocked time w has 2^(i-1) <= w < 2^i ns (slot 0: no
 * sleep at all); the last slot also holds everything longer.  An acquisition
 * still waiting sits in the slot of its wait so far.
 */
#define CONTENTION_HIST_SLOTS 32

/* Default map sizes; the loader may change them between open and load. */
#define CONTENTION_MAX_PROCS   1024
#define CONTENTION_MAX_LOCKS   16384
#define CONTENTION_MAX_WAITERS 16384

struct contention_key {
	unsigned int tgid;
	unsigned int pad; /* always 0: keys are compared as bytes */
	unsigned long long lock;
};

/*
 * Per CPU; user space sums count, total_ns and hist, and takes the max of
 * max_ns.  A histogram entry moves between slots as its wait grows, possibly
 * on another CPU, so one CPU's slot may wrap below zero: only the sum over
 * CPUs (modulo 2^64) is meaningful.
 */
struct contention_stats {
	unsigned long long count;
	unsigned long long total_ns;
	unsigned long long max_ns;
	unsigned long long hist[CONTENTION_HIST_SLOTS];
};

/* The last contended acquisition of a thread, kept until its next one. */
struct contention_wait {
	unsigned long long lock;
	unsigned long long waited_ns;   /* blocked so far in this acquisition */
	unsigned long long sleep_start; /* FUTEX_WAIT in progress since, or 0 */
};

/* Indexes of the per-CPU drop counters. */
enum contention_drop {
	CONTENTION_DROP_LOCKS_FULL = 0,   /* a new (tgid, lock) did not fit in the stats map */
	CONTENTION_DROP_WAITERS_FULL = 1, /* a wait's start did not fit in the waiters map */
	CONTENTION_NR_DROPS = 2,
};

#endif /* HF_BPF_CONTENTION_H */

/* SPDX-License-Identifier: MIT */
/*
 * workload.h - programs that know their own ground truth.
 *
 * Every workload in this folder keeps its own books of the allocator calls it
 * makes, so that a tracer's account can be checked against them.  They link
 * against the system malloc normally (LD_PRELOAD of jemalloc or libptm swaps
 * it) and are built with -fno-builtin so that no call is elided.
 *
 * Protocol, on stdin/stdout (stdout is line-buffered):
 *   1. Set-up, then the program prints "READY pid=N" and waits for one line
 *      on stdin, so that a tracer can attach by PID before anything counted
 *      happens.
 *   2. The measured phase.  Every allocator call in it is one the program
 *      makes itself and counts: its books live in memory mapped with mmap,
 *      stdin is read with read(2) and stdout has a static buffer, so nothing
 *      else calls the allocator.  (Calls the allocator makes to itself, such
 *      as glibc's realloc(NULL, n) calling malloc, are the tracer's to fold.)
 *   3. The program prints one line "TRUTH {json}" (see below), then waits for
 *      another line on stdin, or EOF, before it frees what is live and exits.
 *      forker prints two TRUTH lines, the child's first.
 *
 * The TRUTH object:
 *   "workload", "pid", "seed", "phase_ns" (wall time of the measured phase)
 *   "allocator": {"name": glibc|libptm|jemalloc|tcmalloc|mimalloc|unknown,
 *                 "path": the object that provides malloc (dladdr)}
 *   "calls": {"malloc","calloc","realloc","free","memalign","failed"} - calls
 *     made in the phase, per entry point as a tracer counts them: realloc
 *     counts realloc(NULL, n) and realloc(p, 0) too; memalign counts
 *     posix_memalign, aligned_alloc, memalign and valloc, which are also
 *     given one by one in "by_function"; failed counts the allocation calls
 *     that returned NULL or an error (the failed call is also counted under
 *     its own name).
 *   "live_allocations", "requested_bytes": blocks the phase allocated and did
 *     not free, and the sizes asked for them (calloc: nmemb * size).
 *   "usable_bytes": sum of malloc_usable_size() over those blocks.
 *   "chunk_bytes": glibc and libptm only, else null: sum of the chunk sizes
 *     (the size word before each block, flag bits cleared) - what a tracer
 *     reports as allocated_bytes.
 *   "mallinfo2": {"arena","hblkhd","uordblks","fordblks"} when mallinfo2 is
 *     provided by the same object as malloc (glibc, libptm), else null.
 *   Workloads add their own fields (forker: "role", "own", "inherited").
 *
 * Options are --NAME VALUE pairs of unsigned numbers; each program lists its
 * own with --help.
 */
#ifndef HF_WORKLOAD_H
#define HF_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wl_calls {
	uint64_t malloc;
	uint64_t calloc;
	uint64_t realloc;
	uint64_t free;
	uint64_t posix_memalign;
	uint64_t aligned_alloc;
	uint64_t memalign;
	uint64_t valloc;
	uint64_t failed;
};

struct wl_block {
	void *p;
	size_t req;
};

/* One thread's books: its counts and its live blocks, in mmapped memory. */
struct wl_books {
	struct wl_calls calls;
	struct wl_block *live;
	size_t nr_live;
	size_t cap;
};

/* An option: its name without "--", its value, and a line for --help. */
struct wl_opt {
	const char *name;
	uint64_t *value;
	const char *help;
};

/* Parses argv against opts; prints usage and exits 2 on anything else. */
void wl_parse(int argc, char **argv, const char *about, const struct wl_opt *opts, size_t n);

/* Step 1 of the protocol: static stdout buffer, "READY pid=N", wait for a line. */
void wl_ready(void);
/* Reads one line from stdin with read(2); returns false at EOF. */
bool wl_wait_line(void);

/* Books that can hold cap live blocks without calling the allocator. */
void wl_books_init(struct wl_books *b, size_t cap);
void wl_books_destroy(struct wl_books *b);

/* The counted calls.  Each records its result in *b; index i names a live block. */
void *wl_malloc(struct wl_books *b, size_t n);
void *wl_calloc(struct wl_books *b, size_t nmemb, size_t size);
void *wl_realloc(struct wl_books *b, size_t i, size_t n);
void *wl_realloc_null(struct wl_books *b, size_t n);
void *wl_posix_memalign(struct wl_books *b, size_t align, size_t n);
void *wl_aligned_alloc(struct wl_books *b, size_t align, size_t n);
void *wl_memalign(struct wl_books *b, size_t align, size_t n);
void *wl_valloc(struct wl_books *b, size_t n);
void wl_free(struct wl_books *b, size_t i);
/* Frees every live block, counting nothing: for after the truth. */
void wl_free_all(struct wl_books *b);

/* A size no allocator can satisfy: the call fails without a crash. */
size_t wl_huge(void);

/* splitmix64: a seeded, portable pseudo-random sequence. */
uint64_t wl_rand(uint64_t *state);

/* Monotonic nanoseconds. */
uint64_t wl_now_ns(void);

/*
 * Prints "TRUTH {...}" for the blocks and calls of books[0..n) summed.
 * extra, when not NULL, is inserted verbatim after the standard fields (it
 * must begin with a comma).
 */
void wl_truth(const char *workload, uint64_t seed, uint64_t phase_ns, struct wl_books *books,
	      size_t n, const char *extra);

/* The live blocks' totals, for workloads that report subsets. */
void wl_live_totals(const struct wl_books *b, uint64_t *count, uint64_t *requested);

#endif /* HF_WORKLOAD_H */

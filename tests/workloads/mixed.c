// SPDX-License-Identifier: MIT
/*
 * mixed - THREADS threads each make OPS seeded random calls to every
 * allocation entry point: malloc, calloc, realloc (also realloc(NULL, n) and
 * realloc(p, 0)), posix_memalign, aligned_alloc, memalign, valloc and free,
 * with sizes from 1 byte to 1 MiB (with glibc, those above MMAP_THRESHOLD,
 * 128 KiB by default, are mmapped chunks) and, every FAIL_EVERY calls, a request no
 * allocator can meet, which returns NULL and is counted as failed.
 *
 * The threads are created before READY and wait at a barrier, so that
 * pthread_create's own allocations are not in the measured phase; they exit
 * only after the truth is printed.
 */
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#define MAX_LIVE 4096

struct worker {
	pthread_t thread;
	struct wl_books books;
	uint64_t seed;
	uint64_t ops;
	uint64_t fail_every;
};

static pthread_barrier_t start, done, finish;

/* Mostly small sizes, some medium, a few large (mmapped) ones. */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = wl_rand(s) % 100;

	if (r < 70)
		return 1 + wl_rand(s) % 512;
	if (r < 95)
		return 513 + wl_rand(s) % (64 << 10);
	return (128 << 10) + wl_rand(s) % (896 << 10);
}

static size_t pick_align(uint64_t *s)
{
	return (size_t)16 << (wl_rand(s) % 9); /* 16 .. 4096 */
}

static void fail_once(struct wl_books *b, uint64_t *s)
{
	switch (wl_rand(s) % 4) {
	case 0:
		wl_malloc(b, wl_huge());
		break;
	case 1:
		/* nmemb * size overflows: calloc must say no. */
		wl_calloc(b, wl_huge(), 16);
		break;
	case 2:
		if (b->nr_live)
			wl_realloc(b, (size_t)(wl_rand(s) % b->nr_live), wl_huge());
		else
			wl_malloc(b, wl_huge());
		break;
	default:
		wl_posix_memalign(b, 64, wl_huge());
		break;
	}
}

static void one_op(struct wl_books *b, uint64_t *s)
{
	uint64_t r = wl_rand(s) % 100;
	size_t align, n;
	char *p = NULL;

	/* Keep the live set bounded: past the cap, free instead. */
	if (b->nr_live >= MAX_LIVE - 1)
		r = 99;
	if (r >= 66 && b->nr_live == 0)
		r = 0;
	if (r < 30) {
		p = wl_malloc(b, n = pick_size(s));
	} else if (r < 40) {
		n = pick_size(s);
		p = wl_calloc(b, 1 + n / 64, 64);
		n = (1 + n / 64) * 64;
	} else if (r < 43) {
		p = wl_realloc_null(b, n = pick_size(s));
	} else if (r < 47) {
		align = pick_align(s);
		p = wl_posix_memalign(b, align, n = pick_size(s));
	} else if (r < 50) {
		align = pick_align(s);
		n = (pick_size(s) + align - 1) / align * align;
		p = wl_aligned_alloc(b, align, n);
	} else if (r < 53) {
		align = pick_align(s);
		p = wl_memalign(b, align, n = pick_size(s));
	} else if (r < 55) {
		p = wl_valloc(b, n = pick_size(s));
	} else if (r < 66) {
		/* Put something in the free list to reallocate. */
		p = wl_malloc(b, n = pick_size(s));
	} else if (r < 76) {
		size_t i = (size_t)(wl_rand(s) % b->nr_live);

		p = wl_realloc(b, i, n = pick_size(s));
	} else if (r < 78) {
		wl_realloc(b, (size_t)(wl_rand(s) % b->nr_live), 0);
		n = 0;
	} else {
		wl_free(b, (size_t)(wl_rand(s) % b->nr_live));
		n = 0;
	}
	/* Touch what was handed out, as a program would. */
	if (p && n)
		memset(p, 0x5a, n < 256 ? n : 256);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t s = w->seed;

	pthread_barrier_wait(&start);
	for (uint64_t i = 1; i <= w->ops; i++) {
		if (w->fail_every && i % w->fail_every == 0)
			fail_once(&w->books, &s);
		else
			one_op(&w->books, &s);
	}
	pthread_barrier_wait(&done);
	/* Hold the blocks until the truth has been read. */
	pthread_barrier_wait(&finish);
	wl_free_all(&w->books);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t threads = 2, ops = 20000, seed = 1, fail_every = 1000, threshold = 128 << 10;
	const struct wl_opt opts[] = {
		{"threads", &threads, "threads making calls"},
		{"ops", &ops, "calls per thread"},
		{"seed", &seed, "random choices"},
		{"fail-every", &fail_every, "one impossible request every N calls (0: none)"},
		{"mmap-threshold", &threshold, "glibc M_MMAP_THRESHOLD (0: glibc's dynamic one)"},
	};
	struct wl_books all[64];
	struct worker *w;
	char extra[64];
	uint64_t t0, t1;

	wl_parse(argc, argv, "Every allocation entry point, from several threads.", opts, 5);
	if (threads < 1 || threads > 64) {
		fprintf(stderr, "mixed: --threads must be 1..64\n");
		return 2;
	}
	/*
	 * glibc raises its mmap threshold to the size of each mmapped chunk freed,
	 * after which nothing below 32 MiB is mmapped; a fixed threshold keeps the
	 * large requests mmapped all through the phase.  Other allocators ignore it.
	 */
	if (threshold)
		mallopt(M_MMAP_THRESHOLD, (int)threshold);
	/* Set-up, before READY: these calls are not part of the truth. */
	w = calloc(threads, sizeof(*w));
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)threads + 1);
	pthread_barrier_init(&finish, NULL, (unsigned)threads + 1);
	for (uint64_t t = 0; t < threads; t++) {
		wl_books_init(&w[t].books, MAX_LIVE);
		w[t].seed = seed * 1000003 + t;
		w[t].ops = ops;
		w[t].fail_every = fail_every;
		if (pthread_create(&w[t].thread, NULL, worker_main, &w[t])) {
			fprintf(stderr, "mixed: cannot create thread %" PRIu64 "\n", t);
			return 1;
		}
	}
	wl_ready();

	t0 = wl_now_ns();
	pthread_barrier_wait(&start);
	pthread_barrier_wait(&done);
	t1 = wl_now_ns();

	for (uint64_t t = 0; t < threads; t++)
		all[t] = w[t].books;
	snprintf(extra, sizeof(extra), ",\"threads\":%" PRIu64, threads);
	wl_truth("mixed", seed, t1 - t0, all, threads, extra);
	wl_wait_line();

	pthread_barrier_wait(&finish);
	for (uint64_t t = 0; t < threads; t++) {
		pthread_join(w[t].thread, NULL);
		wl_books_destroy(&w[t].books);
	}
	free(w);
	return 0;
}

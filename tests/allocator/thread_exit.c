/* SPDX-License-Identifier: MIT */
/*
 * thread_exit.c - blocks outlive their threads, and their memory is reused.
 *
 * Each round starts four threads that allocate a few thousand blocks, free
 * half of them (into their own thread caches) and exit with the other half
 * still alive.  The main thread then verifies and frees the survivors.  Over
 * forty rounds the heap must stop growing: the exited threads' caches and
 * arenas have to come back into use, and frees from a foreign thread have to
 * reach the owning arena.  The bound is on the allocator's own view
 * (mallinfo2 arena + hblkhd) and on the resident set size; what mallinfo2
 * counts as in use once everything is freed must stay flat (an exited
 * thread's cache that is never returned shows up there); and most blocks of
 * the later rounds must lie in memory that earlier rounds used.
 */
#include "check.h"
#include "preload.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define BLOCKS  4000
#define ROUNDS  40
#define WARMUP  4

struct block {
	unsigned char *p;
	size_t size;
};

struct thread_ctx {
	int id;
	int round;
	struct block live[BLOCKS / 2];
	int failed;
};

static struct thread_ctx ctxs[THREADS];

static size_t block_size(unsigned i, unsigned seed)
{
	unsigned h = (i * 2654435761u) ^ (seed * 40503u);

	if (h % 100 == 0)
		return 65536 + h % 150000;
	return 16 + h % 2032;
}

static unsigned char pattern(int id, unsigned i)
{
	return (unsigned char)(id * 31 + i);
}

static void *thread_main(void *arg)
{
	struct thread_ctx *t = arg;
	static __thread struct block all[BLOCKS];
	unsigned i;

	for (i = 0; i < BLOCKS; i++) {
		all[i].size = block_size(i, (unsigned)(t->round * THREADS + t->id));
		all[i].p = malloc(all[i].size);
		if (!all[i].p) {
			t->failed = 1;
			return NULL;
		}
		memset(all[i].p, pattern(t->id, i), all[i].size);
	}
	/* Odd blocks die here, in this thread's cache; even ones outlive the thread. */
	for (i = 0; i < BLOCKS; i++) {
		if (i % 2)
			free(all[i].p);
		else
			t->live[i / 2] = all[i];
	}
	return NULL;
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * The 1 MiB regions blocks were handed out from, sorted: a block in a region
 * an earlier round used is memory that came back into use.
 */
#define MAX_REGIONS 65536
static uintptr_t regions[MAX_REGIONS];
static size_t n_regions;

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static int seen_region(uintptr_t region)
{
	return bsearch(&region, regions, n_regions, sizeof(regions[0]), cmp_uptr) != NULL;
}

static void add_regions(const uintptr_t *r, size_t n)
{
	size_t i;

	for (i = 0; i < n && n_regions < MAX_REGIONS; i++)
		if (!seen_region(r[i])) {
			regions[n_regions++] = r[i];
			qsort(regions, n_regions, sizeof(regions[0]), cmp_uptr);
		}
}

static int worker_main(void)
{
	static uintptr_t cur[THREADS * BLOCKS / 2];
	size_t n = THREADS * BLOCKS / 2;
	size_t peak_first = 0, peak_second = 0;
	long rss_first = 0, rss_second = 0;
	size_t reused_total = 0, later_total = 0;
	size_t in_use, base_in_use = 0, max_in_use = 0;
	int round, i, failures = 0;

	hf_preload_verify();
	for (round = 0; round < ROUNDS; round++) {
		pthread_t tids[THREADS];
		struct mallinfo2 mi;
		size_t k = 0, reused = 0, heap;
		long rss;

		for (i = 0; i < THREADS; i++) {
			ctxs[i].id = i;
			ctxs[i].round = round;
			ctxs[i].failed = 0;
			if (pthread_create(&tids[i], NULL, thread_main, &ctxs[i]) != 0) {
				fprintf(stderr, "failed to create thread %d\n", i);
				return 1;
			}
		}
		for (i = 0; i < THREADS; i++)
			pthread_join(tids[i], NULL);
		mi = mallinfo2();
		heap = mi.arena + mi.hblkhd;
		rss = rss_kib();
		for (i = 0; i < THREADS; i++) {
			unsigned j;

			if (ctxs[i].failed) {
				fprintf(stderr, "round %d: thread %d could not allocate\n", round,
					i);
				return 1;
			}
			for (j = 0; j < BLOCKS / 2; j++) {
				struct block *b = &ctxs[i].live[j];
				size_t x;

				for (x = 0; x < b->size; x++)
					if (b->p[x] != pattern(i, j * 2)) {
						fprintf(stderr,
							"round %d: block %u of exited thread %d "
							"corrupted at byte %zu\n",
							round, j * 2, i, x);
						return 1;
					}
				cur[k++] = (uintptr_t)b->p >> 20;
				free(b->p);
			}
		}
		if (round >= WARMUP) {
			for (k = 0; k < n; k++)
				reused += seen_region(cur[k]);
			reused_total += reused;
			later_total += n;
		}
		add_regions(cur, n);
		/*
		 * Everything is freed now: what the allocator still counts as
		 * in use (thread caches count, as in glibc) must not creep up,
		 * or exited threads' caches were never returned.
		 */
		mi = mallinfo2();
		in_use = mi.uordblks + mi.hblkhd;
		if (round == WARMUP)
			base_in_use = in_use;
		if (round >= WARMUP && in_use > max_in_use)
			max_in_use = in_use;
		if (round < ROUNDS / 2) {
			peak_first = heap > peak_first ? heap : peak_first;
			rss_first = rss > rss_first ? rss : rss_first;
		} else {
			peak_second = heap > peak_second ? heap : peak_second;
			rss_second = rss > rss_second ? rss : rss_second;
		}
		if (round % 10 == 0 || round == ROUNDS - 1)
			printf("round %d: heap %zu KiB, rss %ld KiB, %zu of %zu blocks in reused "
			       "memory\n",
			       round, heap >> 10, rss, reused, n);
	}
	/*
	 * Each round leaves about 20 MiB to the main thread and frees as much
	 * in the exiting threads; without reuse the heap would grow by that
	 * every round, doubling from the first half of the run to the second.
	 */
	if (peak_second > peak_first + peak_first / 4 + (16u << 20) || peak_second > (256u << 20)) {
		fprintf(stderr,
			"heap grew: peak %zu KiB in the first half, %zu KiB in the second\n",
			peak_first >> 10, peak_second >> 10);
		failures++;
	}
	if (rss_second > rss_first + rss_first / 4 + 16 * 1024) {
		fprintf(stderr, "rss grew: peak %ld KiB in the first half, %ld KiB in the second\n",
			rss_first, rss_second);
		failures++;
	}
	if (max_in_use > base_in_use + 64 * 1024) {
		fprintf(stderr,
			"after freeing everything, %zu bytes stayed in use (%zu after round %d)\n",
			max_in_use, base_in_use, WARMUP);
		failures++;
	}
	if (reused_total < later_total / 2) {
		fprintf(stderr, "only %zu of %zu blocks reused memory of earlier rounds\n",
			reused_total, later_total);
		failures++;
	}
	printf("peak heap %zu -> %zu KiB, peak rss %ld -> %ld KiB, in use when all is freed %zu -> "
	       "%zu bytes, %zu of %zu blocks in reused memory; %s\n",
	       peak_first >> 10, peak_second >> 10, rss_first, rss_second, base_in_use, max_in_use,
	       reused_total, later_total, failures ? "growing" : "bounded");
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	char why[96];
	int m;

	if (argc == 2 && strcmp(argv[1], "--worker") == 0)
		return worker_main();

	for (m = HF_PRELOAD_GLIBC; m <= HF_PRELOAD_PTM; m++) {
		char *args[] = {argv[0], "--worker", NULL};
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "  [%s] ", hf_preload_mode_name(m));
		CHECK_MSG(hf_preload_run_ok(m, args, 120, prefix, "; bounded\n", why, sizeof(why)),
			  "%s: %s", hf_preload_mode_name(m), why);
	}
	return hf_test_done();
}

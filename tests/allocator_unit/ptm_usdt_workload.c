// SPDX-License-Identifier: MIT
/*
 * ptm_usdt_workload: a program linked against libptm.so that makes every
 * USDT probe of ptm_usdt.h fire at least once, then prints libptm's own
 * books for the events it counts, so a tracer's counts can be checked
 * against them:  "release_calls N lock_contended N".
 *
 * Run with MALLOC_RELEASE_DELAY_=0 so a freed block releases at once.  It
 * turns the sampled profile on itself (16 KiB) for its last phase only, so
 * that the heap phases stay deterministic.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ptm.h"
#include "ptm_stats.h"

#define RING 256

static _Atomic(void *) ring[RING];
static atomic_int stop;

/* Where blocks escape to, so the compiler cannot drop a malloc/free pair. */
static void *volatile sink;

static void *touch_and_leave(void *arg)
{
	void *p = malloc(5000);

	(void)arg;
	memset(p, 1, 5000);
	sink = p;
	free(sink);
	return NULL;
}

/* Frees what the main thread allocates: both take the main arena's lock. */
static void *consumer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		for (int i = 0; i < RING; i++) {
			void *p = atomic_exchange(&ring[i], NULL);

			free(p);
		}
	}
	return NULL;
}

static uint64_t contended(void)
{
	static struct ptm_stats st;
	uint64_t n = 0;

	ptm_stats_get(&st);
	for (uint64_t i = 0; i < st.arenas_reported; i++)
		n += st.arenas[i].lock_contended;
	return n;
}

int main(void)
{
	enum { N = 60, BIG = 100000 };
	static void *blocks[N];
	static struct ptm_stats st;
	pthread_t t;
	char *g1, *big, *g2;
	struct timespec t0, t1;

	/*
	 * heap_grow, then heap_shrink when everything merges into a big top:
	 * blocks too big for the thread cache, so none stays behind in it.
	 */
	for (int i = 0; i < N; i++) {
		blocks[i] = malloc(BIG);
		memset(blocks[i], 2, BIG);
	}
	for (int i = N - 1; i >= 0; i--)
		free(blocks[i]);

	/* page_release: a 64 KiB hole between two live blocks. */
	g1 = malloc(100);
	big = malloc(64 * 1024);
	g2 = malloc(100);
	memset(big, 3, 64 * 1024);
	sink = big;
	free(sink);

	/* trim */
	malloc_trim(0);

	/* arena_create, then arena_reuse of the exited thread's arena. */
	pthread_create(&t, NULL, touch_and_leave, NULL);
	pthread_join(t, NULL);
	pthread_create(&t, NULL, touch_and_leave, NULL);
	pthread_join(t, NULL);

	/*
	 * lock_contended_begin/end: cross-thread frees against allocations;
	 * sample_alloc/free: some of those blocks are sampled.
	 */
	mallopt(PTM_M_SAMPLE_INTERVAL, 16384);
	pthread_create(&t, NULL, consumer, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < RING; i++) {
			void *p = malloc(2000), *old;

			old = atomic_exchange(&ring[i], p);
			free(old);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (contended() < 20 && t1.tv_sec - t0.tv_sec < 10);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	for (int i = 0; i < RING; i++)
		free(atomic_exchange(&ring[i], NULL));
	free(g1);
	free(g2);

	ptm_stats_get(&st);
	printf("release_calls %llu lock_contended %llu\n", (unsigned long long)st.release_calls,
	       (unsigned long long)contended());
	return 0;
}

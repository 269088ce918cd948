// SPDX-License-Identifier: MIT
/*
 * arena_workload: a glibc process whose arenas and arena-lock contention the
 * tests read from outside.  It talks to the test over stdin/stdout, one word
 * per line, so the test can look at it in each phase:
 *
 *   arena_workload shared THREADS OPS   THREADS threads swap blocks through a
 *       shared table, so each frees blocks the others allocated; sizes of
 *       1.5-3.5 KiB bypass tcache and fastbins, so every malloc and free takes
 *       the arena lock.  Run with MALLOC_ARENA_MAX=1: one arena for all.
 *   arena_workload single 0 OPS          the same loop on the main thread only.
 *   arena_workload arenas THREADS 0      each thread allocates and keeps 4 MiB
 *       in blocks: with the default MALLOC_ARENA_MAX each gets its own arena.
 *
 * Protocol: prints "ready" after its first malloc, reads "go", works, prints
 * "done OPS" (then malloc_info's XML, then "end") with its threads still
 * alive, reads "exit", and exits 0.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS      256
#define MIN_SIZE   1536
#define SIZE_RANGE 2048

static _Atomic(void *) slots[SLOTS];
static long ops_per_thread;
static pthread_barrier_t finished;
static pthread_barrier_t may_exit;
static int keep_blocks;

static void *swap_loop(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg * 2654435761u + 1;

	for (long i = 0; i < ops_per_thread; i++) {
		size_t size = MIN_SIZE + (size_t)(rand_r(&seed) % SIZE_RANGE);
		char *p = malloc(size);
		void *old;

		if (!p)
			abort();
		p[0] = (char)i;
		old = atomic_exchange(&slots[rand_r(&seed) % SLOTS], p);
		free(old);
	}
	return NULL;
}

static void *keep_loop(void *arg)
{
	/* 4 MiB in 4 KiB blocks, kept: the arena's heap must hold them. */
	for (int i = 0; i < 1024; i++) {
		char *p = malloc(4096);

		if (!p)
			abort();
		memset(p, 1, 4096);
	}
	return arg;
}

static void *worker(void *arg)
{
	if (keep_blocks)
		keep_loop(arg);
	else
		swap_loop(arg);
	pthread_barrier_wait(&finished);
	pthread_barrier_wait(&may_exit);
	return NULL;
}

static int expect(const char *word)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		return -1;
	line[strcspn(line, "\n")] = '\0';
	return strcmp(line, word) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	pthread_t tids[64];
	int nthreads;
	void *warm;

	if (argc != 4)
		return 2;
	nthreads = atoi(argv[2]);
	ops_per_thread = atol(argv[3]);
	keep_blocks = strcmp(argv[1], "arenas") == 0;
	if (nthreads < 0 || nthreads > 64)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The first malloc initialises main_arena. */
	warm = malloc(100);
	printf("ready\n");
	if (expect("go"))
		return 3;
	pthread_barrier_init(&finished, NULL, (unsigned int)nthreads + 1);
	pthread_barrier_init(&may_exit, NULL, (unsigned int)nthreads + 1);
	if (strcmp(argv[1], "single") == 0)
		swap_loop(NULL);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)(i + 1)))
			return 4;
	pthread_barrier_wait(&finished);
	printf("done %ld\n", ops_per_thread * (nthreads ? nthreads : 1));
	malloc_info(0, stdout);
	printf("end\n");
	fflush(stdout);
	if (expect("exit"))
		return 5;
	pthread_barrier_wait(&may_exit);
	for (int i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	free(warm);
	return 0;
}

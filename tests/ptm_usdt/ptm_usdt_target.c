// SPDX-License-Identifier: MIT
/*
 * ptm_usdt_target: the traced process of the ptm_usdt tests, run with
 * LD_PRELOAD=libptm.so (it finds ptm_stats_get() with dlsym, so that it
 * runs on whatever malloc the preload gives it).  Protocol, one line each:
 *
 *   target: "target MODE", "books ..."   libptm's books before any work
 *   test:   "go"                   (after attaching its probes)
 *   target: "books ...", then "live SIZE BYTES" lines and "done"
 *                                   after the work: the books, and the
 *                                   requested bytes it holds live, by size
 *   test:   "exit"                  (after reading its numbers)
 *
 * "heap": holds 64 MiB live in each of four sizes (64 B, 1000 B, 40000 B,
 * 4 MiB), after allocating twice that and freeing every other block, so that
 * samples are freed, holes released and the heap grown.  "contend": four
 * threads allocate and free 4000-byte blocks (past the thread cache, so each
 * call takes the arena lock) on one arena (MALLOC_ARENA_MAX_=1) until the
 * books count 300 contended waits, or 10 s.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ptm_stats.h"

#define CLASS_BYTES ((size_t)64 << 20)
#define THREADS     4
#define MIN_WAITS   300

static int (*stats_get)(struct ptm_stats *);
static struct ptm_stats st;
static atomic_int stop;

/* Where blocks escape to, so the compiler cannot drop a malloc/free pair. */
static void *volatile sink;

static void print_books(void)
{
	unsigned long long contended = 0, wait_ns = 0, max_wait_ns = 0;

	stats_get(&st);
	for (uint64_t i = 0; i < st.arenas_reported; i++) {
		contended += st.arenas[i].lock_contended;
		wait_ns += st.arenas[i].lock_wait_ns;
		if (st.arenas[i].lock_max_wait_ns > max_wait_ns)
			max_wait_ns = st.arenas[i].lock_max_wait_ns;
	}
	printf("books system_bytes %llu release_calls %llu release_bytes %llu contended %llu "
	       "wait_ns %llu max_wait_ns %llu narenas %llu\n",
	       (unsigned long long)st.system_bytes, (unsigned long long)st.release_calls,
	       (unsigned long long)st.release_total_bytes, contended, wait_ns, max_wait_ns,
	       (unsigned long long)st.narenas);
	fflush(stdout);
}

static int wait_for(const char *word)
{
	char line[64];

	if (fgets(line, sizeof(line), stdin) == NULL)
		return -1;
	return strncmp(line, word, strlen(word)) == 0 ? 0 : -1;
}

static const size_t sizes[] = {64, 1000, 40000, (size_t)4 << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
/* Live requested bytes: blocks of sizes[c], and the array of pointers to them. */
static unsigned long long live_blocks[NSIZES], live_array[NSIZES];

static int heap(void)
{

	for (size_t c = 0; c < NSIZES; c++) {
		size_t n = CLASS_BYTES / sizes[c] * 2;
		char **blocks = calloc(n, sizeof(*blocks));

		if (blocks == NULL)
			return -1;
		for (size_t i = 0; i < n; i++) {
			blocks[i] = malloc(sizes[c]);
			if (blocks[i] == NULL)
				return -1;
			blocks[i][0] = 1;
			blocks[i][sizes[c] - 1] = 1;
		}
		/* Every other block goes: the live half stays spread over the whole heap. */
		for (size_t i = 0; i < n; i += 2) {
			sink = blocks[i];
			free(sink);
		}
		/* The odd blocks stay live until exit; the array of pointers is kept too. */
		live_blocks[c] = (unsigned long long)(n / 2) * sizes[c];
		live_array[c] = (unsigned long long)n * sizeof(*blocks);
	}
	return 0;
}

static uint64_t contended(void)
{
	uint64_t n = 0;

	stats_get(&st);
	for (uint64_t i = 0; i < st.arenas_reported; i++)
		n += st.arenas[i].lock_contended;
	return n;
}

static void *churn(void *arg)
{
	void *ring[16] = {0};

	(void)arg;
	while (!atomic_load(&stop)) {
		for (int i = 0; i < 16; i++) {
			free(ring[i]);
			ring[i] = malloc(4000);
			((char *)ring[i])[0] = 1;
		}
	}
	for (int i = 0; i < 16; i++)
		free(ring[i]);
	return NULL;
}

static int contend(void)
{
	pthread_t t[THREADS];
	struct timespec t0, t1;

	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, churn, NULL) != 0)
			return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};

		nanosleep(&pause, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (contended() < MIN_WAITS && t1.tv_sec - t0.tv_sec < 10);
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}

int main(int argc, char **argv)
{
	bool heap_mode;

	stats_get = (int (*)(struct ptm_stats *))dlsym(RTLD_DEFAULT, "ptm_stats_get");
	if (stats_get == NULL || argc < 2) {
		fprintf(stderr, "usage: LD_PRELOAD=libptm.so %s heap|contend\n", argv[0]);
		return 2;
	}
	/*
	 * stdout's buffer is the process's first allocation: make it before the
	 * books are read, so that the heap they describe is the one traced.
	 */
	printf("target %s\n", argv[1]);
	print_books();
	if (wait_for("go") != 0)
		return 1;
	heap_mode = strcmp(argv[1], "heap") == 0;
	if ((heap_mode ? heap() : contend()) != 0)
		return 1;
	print_books();
	for (size_t c = 0; heap_mode && c < NSIZES; c++)
		printf("live %zu %llu\nlive %llu %llu\n", sizes[c], live_blocks[c], live_array[c],
		       live_array[c]);
	printf("done\n");
	fflush(stdout);
	return wait_for("exit") == 0 ? 0 : 1;
}

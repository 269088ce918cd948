// SPDX-License-Identifier: MIT
/*
 * ptm_books_target: a libptm process (run with LD_PRELOAD=libptm.so) that
 * builds a mixed heap in several threads, hence several arenas, and obeys
 * one-byte commands on stdin:
 *   p  print mallinfo2() and ptm_stats_get() as they are now, then "end"
 *   b  every thread allocates and frees busily ("busy")
 *   s  the threads stop and sit still ("idle")
 *   q  exit
 * While it waits for a command no thread calls the allocator, so numbers
 * printed at "p" are still true when the test reads the books from outside.
 * Output goes through snprintf and write(2): stdio's buffers would be
 * allocated, and that would move the books after they were printed.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptm_stats.h"

#define MAX_THREADS 8
#define SLOTS       256

static int (*stats_get)(struct ptm_stats *);
static struct ptm_stats st;
static volatile int busy, quit;
static int idle_threads;
static char out[1 << 16];
static size_t out_len;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_len += (size_t)vsnprintf(out + out_len, sizeof(out) - out_len, fmt, ap);
	va_end(ap);
}

static void flush(void)
{
	size_t done = 0;

	while (done < out_len) {
		ssize_t n = write(1, out + done, out_len - done);

		if (n <= 0)
			_exit(3);
		done += (size_t)n;
	}
	out_len = 0;
}

/* Sizes from tiny (fastbins) through large bins to mmapped chunks; every third freed. */
static void mixed_heap(void **slots, unsigned seed)
{
	for (int i = 0; i < SLOTS; i++)
		slots[i] = malloc((size_t)(i * 131 + seed * 17) % 6000 +
				  (i % 60 == 1 && seed == 0 ? 300000 : 0) + 1);
	for (int i = 0; i < SLOTS; i += 3) {
		free(slots[i]);
		slots[i] = NULL;
	}
	for (int i = 0; i < 20; i++)
		free(malloc(40));
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *slots[SLOTS];

	mixed_heap(slots, seed);
	__atomic_add_fetch(&idle_threads, 1, __ATOMIC_SEQ_CST);
	while (!quit) {
		if (!__atomic_load_n(&busy, __ATOMIC_ACQUIRE)) {
			usleep(1000);
			continue;
		}
		__atomic_sub_fetch(&idle_threads, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&busy, __ATOMIC_ACQUIRE)) {
			int i = rand_r(&seed) % SLOTS;

			free(slots[i]);
			slots[i] = malloc((size_t)rand_r(&seed) % 5000 + 1);
		}
		__atomic_add_fetch(&idle_threads, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void report(void)
{
	struct mallinfo2 m = mallinfo2();

	/* Last: its own lock acquisitions are in what it returns. */
	stats_get(&st);
	say("mallinfo2 %zu %zu %zu %zu %zu %zu %zu\n", m.arena, m.ordblks, m.smblks, m.hblks,
	    m.hblkhd, m.fordblks, m.keepcost);
	say("stats %lu %lu %lu %lu %lu %lu\n", (unsigned long)st.narenas,
	    (unsigned long)st.free_chunks, (unsigned long)st.largest_free,
	    (unsigned long)st.mmapped_chunks, (unsigned long)st.mmapped_bytes,
	    (unsigned long)st.released_bytes);
	for (uint64_t i = 0; i < st.arenas_reported; i++) {
		const struct ptm_arena_stats *a = &st.arenas[i];

		say("arena %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu\n", (unsigned long)a->index,
		    (unsigned long)a->system_bytes, (unsigned long)a->threads_attached,
		    (unsigned long)a->lock_acquisitions, (unsigned long)a->lock_contended,
		    (unsigned long)a->lock_wait_ns, (unsigned long)a->lock_max_wait_ns,
		    (unsigned long)(a->fast.chunks + a->unsorted.chunks + a->small.chunks +
				    a->large.chunks + a->top.chunks),
		    (unsigned long)a->largest_free, (unsigned long)a->heaps);
	}
	say("end\n");
	flush();
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 3;
	pthread_t t[MAX_THREADS];
	void *slots[SLOTS];
	char c;

	stats_get = (int (*)(struct ptm_stats *))dlsym(RTLD_DEFAULT, "ptm_stats_get");
	if (!stats_get) {
		say("no ptm_stats_get: not running on libptm\n");
		flush();
		return 2;
	}
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 3;
	mixed_heap(slots, 0);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	while (__atomic_load_n(&idle_threads, __ATOMIC_SEQ_CST) < nthreads)
		usleep(1000);
	say("ready\n");
	flush();
	while (read(0, &c, 1) == 1) {
		if (c == 'p') {
			report();
		} else if (c == 'b') {
			__atomic_store_n(&busy, 1, __ATOMIC_RELEASE);
			while (__atomic_load_n(&idle_threads, __ATOMIC_SEQ_CST) > 0)
				usleep(100);
			say("busy\n");
			flush();
		} else if (c == 's') {
			__atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
			while (__atomic_load_n(&idle_threads, __ATOMIC_SEQ_CST) < nthreads)
				usleep(1000);
			say("idle\n");
			flush();
		} else if (c == 'q') {
			break;
		}
	}
	quit = 1;
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	return 0;
}

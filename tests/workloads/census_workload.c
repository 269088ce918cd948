// SPDX-License-Identifier: MIT
/*
 * census_workload - heaps whose shape the heap census must read back, each
 * with glibc's own view from inside at the moment it pauses.
 *
 * After READY and a line, the program builds the heap of its --mode, then
 * prints "TRUTH {json}" (mallinfo2() and the mode's own numbers), glibc's
 * malloc_info() XML, and "END", and waits for commands, one per line:
 *   trim      malloc_trim(0); prints "TRIM rss_before=N rss_after=N"
 *             (VmRSS from /proc/self/statm around the call)
 *   scribble  (mode 3) overwrites a chunk header in the last thread's arena;
 *             prints "SCRIBBLED arena_chunk=0x..."
 *   stop      (mode 2) stops the churning threads, prints "STOPPED"
 * and exits at EOF.  Nothing in the pause calls the allocator: the output
 * goes through the static stdout buffer and commands are read with read(2).
 *
 * Modes:
 *   0  the seed's incident: COUNT blocks of SIZE bytes, written, then all
 *      but KEEP_PERCENT freed in a seeded random order (one arena).
 *   1  THREADS threads, each in its own arena, each leaving 7 + i chunks in
 *      its thread cache (7 of 64 bytes, i + 1 of 208) and i + 3 chunks of
 *      64 bytes in its arena's fastbin; "tcache" and "fastbins" in the truth
 *      list them per thread, in the order malloc_info lists the arenas.
 *   2  THREADS threads churning random sizes until "stop".
 *   3  like 1, for "scribble".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "workload.h"

#define MAX_THREADS 14
#define SMALL_REQ   48  /* chunk of 64: a fastbin size */
#define CACHED_REQ  200 /* chunk of 208: cached, never a fastbin size */

static uint64_t mode, count = 100000, size = 1000, keep = 10, threads = 4, seed = 1;
static pthread_barrier_t built;
static atomic_int churning = 1;
static atomic_int release_threads;
static void *volatile scribble_at;

static long rss_bytes(void)
{
	char buf[128];
	long pages = 0, resident = 0;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%ld %ld", &pages, &resident) != 2)
		return -1;
	return resident * sysconf(_SC_PAGESIZE);
}

/* Reads one command line with read(2); false at EOF. */
static bool read_command(char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t got = read(0, &c, 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return false;
		if (c == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = c;
	}
	buf[n] = '\0';
	return true;
}

/* Mode 1 and 3: thread i leaves 7 + (i + 1) cached chunks and i + 3 fastbin chunks. */
static void *cache_thread(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	void *small[7 + MAX_THREADS + 3], *cached[MAX_THREADS + 1], *keep_live[16];
	size_t nsmall = 7 + i + 3, ncached = i + 1;

	/* The first call sets up this thread's arena and cache; the blocks stay live. */
	for (size_t k = 0; k < 16; k++)
		keep_live[k] = malloc(512);
	for (size_t k = 0; k < nsmall; k++)
		small[k] = malloc(SMALL_REQ);
	for (size_t k = 0; k < ncached; k++)
		cached[k] = malloc(CACHED_REQ);
	/* A live block between them and top, so that nothing touches top. */
	scribble_at = malloc(1000);
	for (size_t k = 0; k < nsmall; k++)
		free(small[k]); /* 7 into the cache, the rest into the fastbin */
	for (size_t k = 0; k < ncached; k++)
		free(cached[k]);
	pthread_barrier_wait(&built);
	while (!atomic_load(&release_threads))
		usleep(1000);
	(void)keep_live;
	return NULL;
}

/* Mode 2: random sizes, most small, some large enough for the bins. */
static void *churn_thread(void *arg)
{
	uint64_t state = seed * 7919 + (uintptr_t)arg;
	void *live[512] = {0};

	pthread_barrier_wait(&built);
	while (atomic_load(&churning)) {
		size_t slot = (size_t)(wl_rand(&state) % 512);
		uint64_t r = wl_rand(&state) % 100;
		size_t n = r < 70 ? 16 + wl_rand(&state) % 256
			   : r < 95 ? 256 + wl_rand(&state) % 4096
				    : 4096 + wl_rand(&state) % 65536;

		free(live[slot]);
		live[slot] = malloc(n);
		if (live[slot])
			memset(live[slot], 1, n < 64 ? n : 64);
	}
	for (size_t k = 0; k < 512; k++)
		free(live[k]);
	return NULL;
}

static void print_view(const char *extra)
{
	struct mallinfo2 mi = mallinfo2();

	printf("TRUTH {\"workload\":\"census_workload\",\"mode\":%" PRIu64 ",\"pid\":%d,"
	       "\"mallinfo2\":{\"arena\":%zu,\"ordblks\":%zu,\"smblks\":%zu,\"hblks\":%zu,"
	       "\"hblkhd\":%zu,\"fsmblks\":%zu,\"uordblks\":%zu,\"fordblks\":%zu,"
	       "\"keepcost\":%zu}%s}\n",
	       mode, (int)getpid(), mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd,
	       mi.fsmblks, mi.uordblks, mi.fordblks, mi.keepcost, extra);
	malloc_info(0, stdout);
	printf("END\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const struct wl_opt opts[] = {
		{"mode", &mode, "0 seed incident, 1 caches, 2 churn, 3 scribble"},
		{"count", &count, "mode 0: blocks"},
		{"size", &size, "mode 0: bytes per block"},
		{"keep-percent", &keep, "mode 0: share kept live"},
		{"threads", &threads, "modes 1-3: threads, each in its own arena"},
		{"seed", &seed, "random order"},
	};
	pthread_t tids[MAX_THREADS];
	char extra[2048] = "", cmd[64];
	struct wl_books books;

	wl_parse(argc, argv, "Heaps of known shape for the heap census.", opts, 6);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	/* A thread's 208-byte cache bin holds at most 7. */
	if (mode != 2 && threads > 6)
		threads = 6;
	if (keep > 100)
		keep = 100;
	wl_books_init(&books, mode == 0 ? count : 1);
	wl_ready();

	if (mode == 0) {
		uint64_t state = seed, nfree = count - count * keep / 100;

		for (uint64_t i = 0; i < count; i++) {
			char *p = wl_malloc(&books, size);

			if (p)
				memset(p, (int)(i & 0xff), size);
		}
		for (uint64_t i = 0; i < nfree; i++)
			wl_free(&books, (size_t)(wl_rand(&state) % books.nr_live));
		snprintf(extra, sizeof(extra), ",\"live_allocations\":%zu", books.nr_live);
	} else {
		size_t off;

		pthread_barrier_init(&built, NULL, (unsigned int)threads + 1);
		for (uintptr_t i = 0; i < threads; i++) {
			/* One after the other, so that each takes a new arena of its own. */
			pthread_create(&tids[i], NULL, mode == 2 ? churn_thread : cache_thread,
				       (void *)i);
			if (mode != 2)
				usleep(20000);
		}
		pthread_barrier_wait(&built);
		if (mode != 2) {
			/*
			 * malloc_info lists main_arena, then the newest arena first:
			 * thread threads-1 first, thread 0 last.
			 */
			off = (size_t)snprintf(extra, sizeof(extra), ",\"tcache\":[0");
			for (uint64_t i = threads; i-- > 0;)
				off += (size_t)snprintf(extra + off, sizeof(extra) - off,
							",%" PRIu64, 7 + i + 1);
			off += (size_t)snprintf(extra + off, sizeof(extra) - off, "],\"fastbins\":[0");
			for (uint64_t i = threads; i-- > 0;)
				off += (size_t)snprintf(extra + off, sizeof(extra) - off,
							",%" PRIu64, i + 3);
			snprintf(extra + off, sizeof(extra) - off, "]");
		}
	}
	if (mode != 2)
		print_view(extra);
	else
		printf("CHURNING\n");

	while (read_command(cmd, sizeof(cmd))) {
		if (strcmp(cmd, "trim") == 0) {
			long before = rss_bytes(), after;

			malloc_trim(0);
			after = rss_bytes();
			printf("TRIM rss_before=%ld rss_after=%ld\n", before, after);
		} else if (strcmp(cmd, "scribble") == 0 && mode == 3 && scribble_at) {
			/* The size word of the last thread's live block: nothing may free it now. */
			uint64_t *hdr = (uint64_t *)scribble_at - 1;

			*hdr = 0x123450ull | 0x5;
			printf("SCRIBBLED arena_chunk=%p\n", (void *)(hdr - 1));
		} else if (strcmp(cmd, "stop") == 0 && mode == 2) {
			atomic_store(&churning, 0);
			for (uint64_t i = 0; i < threads; i++)
				pthread_join(tids[i], NULL);
			printf("STOPPED\n");
		} else if (strcmp(cmd, "view") == 0) {
			print_view(extra);
		}
		fflush(stdout);
	}
	if (mode == 1) {
		atomic_store(&release_threads, 1);
		for (uint64_t i = 0; i < threads; i++)
			pthread_join(tids[i], NULL);
	}
	/* Mode 3's scribbled arena must never be freed into again: leave without cleaning up. */
	_exit(0);
}

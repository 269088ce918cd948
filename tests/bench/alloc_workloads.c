// SPDX-License-Identifier: MIT
/*
 * alloc_workloads - the allocator benchmark's workloads, one per run.
 *
 * Usage: alloc_workloads NAME [DIVISOR]
 * Runs one workload on whatever malloc the process has (the benchmark
 * driver swaps it with LD_PRELOAD) and prints one line:
 *   seconds=S base_rss_kb=K peak_rss_kb=K rss_after_kb=K alloc_s=A free_s=F ops=N
 * DIVISOR (default 1) divides the number of operations of every workload
 * but swiss_cheese, whose point is its 100,000 messages: the benchmark runs
 * its callgrind counts on a tenth of the work.  ops is the number of calls
 * to malloc, free and realloc the workload makes (free(NULL) included).
 * Every such call goes through wl_malloc, wl_free or wl_realloc, which are
 * never inlined and never nest, so that `valgrind --tool=callgrind
 * --collect-atstart=no --toggle-collect=wl_*` counts the instructions of
 * the allocator's calls and nothing else (not the workloads' own loops, nor
 * producer_consumer's spinning, which depends on scheduling).
 * seconds covers the measured phase only; base_rss_kb is VmRSS before it,
 * peak_rss_kb VmHWM and rss_after_kb VmRSS when it ends (for swiss_cheese:
 * right after the frees, the surviving 10% still live).  alloc_s and free_s
 * time swiss_cheese's two loops apart (the shuffle between them in neither);
 * other workloads print -1 for both.  Under libptm (found by its
 * ptm_stats_get), release_runs and release_bytes are its page release's
 * books after the phase: the page runs handed to the kernel and the bytes
 * they gave back; -1 under any other allocator.
 * Every workload is deterministic: a fixed-seed xorshift drives it.
 *
 * `alloc_workloads release_replay RUNS BYTES` measures what the kernel
 * charges for such a page release on its own, with no allocator around it:
 * RUNS runs of whole pages, BYTES in all, each followed by a page kept (as a
 * live chunk keeps it), in a fresh mapping faulted in ahead, handed to the
 * kernel in a fixed-seed random order 64 runs per process_madvise(2) call,
 * as libptm does (one madvise per run where the kernel refuses that).  It
 * prints seconds (the release alone), runs, pages and released_kb, the drop
 * of VmRSS across it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ptm_stats.h"

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kb(const char *field)
{
	char line[256];
	size_t len = strlen(field);
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, len) == 0) {
			kb = strtol(line + len, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* A sink the compiler cannot see through, so no allocation is elided. */
static void *volatile sink;

/*
 * See the top: what callgrind counts, and the one place the calls are made.
 * The empty asm after each call keeps it from becoming a tail jump, which
 * callgrind would not see return through the wrapper.
 */
static __attribute__((noinline)) void *wl_malloc(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" ::: "memory");
	return p;
}

static __attribute__((noinline)) void wl_free(void *p)
{
	free(p);
	__asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void *wl_realloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	__asm__ volatile("" ::: "memory");
	return q;
}

static long divisor = 1; /* the command line's DIVISOR */
static long ops;         /* calls the workload made, counted as it sets its loops */

/* The seed's loop: one small block allocated and freed, over and over. */
static void seed_loop(void)
{
	const long n = 20000000 / divisor;

	for (long i = 0; i < n; i++) {
		void *p = wl_malloc(100);

		sink = p;
		wl_free(p);
	}
	ops = 2 * n;
}

/* Pareto-distributed sizes (alpha 1.2, 16 B to 64 KiB) over a working set. */
static size_t pareto_size(uint64_t *s)
{
	double u = (double)(rng_next(s) >> 11) / (double)(1ULL << 53);
	double x = 16.0 / __builtin_pow(1.0 - u, 1.0 / 1.2);

	return x > 65536.0 ? 65536 : (size_t)x;
}

static void pareto(void)
{
	enum { SLOTS = 50000 };
	const long n_ops = 6000000 / divisor;
	void **slot = calloc(SLOTS, sizeof(*slot));
	uint64_t s = 0x9e3779b97f4a7c15ULL;

	for (long i = 0; i < n_ops; i++) {
		size_t k = rng_next(&s) % SLOTS;
		size_t n = pareto_size(&s);

		wl_free(slot[k]);
		slot[k] = wl_malloc(n);
		memset(slot[k], (int)i, n < 64 ? n : 64);
	}
	for (size_t k = 0; k < SLOTS; k++)
		wl_free(slot[k]);
	free(slot);
	ops = 2 * n_ops + SLOTS;
}

/* Buffers that grow by realloc, as string builders and vectors do. */
static void realloc_growth(void)
{
	enum { BUFS = 64, STEPS = 400 };
	const long rounds = 60 / divisor > 0 ? 60 / divisor : 1;
	uint64_t s = 42;

	for (long r = 0; r < rounds; r++) {
		char *buf[BUFS] = {0};
		size_t len[BUFS] = {0};

		for (int step = 0; step < STEPS; step++) {
			for (int b = 0; b < BUFS; b++) {
				size_t grow = 16 + rng_next(&s) % 512;

				buf[b] = wl_realloc(buf[b], len[b] + grow);
				buf[b][len[b]] = (char)step;
				len[b] += grow;
			}
		}
		for (int b = 0; b < BUFS; b++)
			wl_free(buf[b]);
	}
	ops = rounds * BUFS * (STEPS + 1);
}

/*
 * Larson-style: threads replace random blocks of one shared array, so most
 * frees release a block another thread allocated.
 */
#define LARSON_SLOTS 16384
static _Atomic(void *) larson_slot[LARSON_SLOTS];

struct larson_arg {
	uint64_t seed;
	long ops;
};

static void *larson_thread(void *p)
{
	struct larson_arg *a = p;
	uint64_t s = a->seed;

	for (long i = 0; i < a->ops; i++) {
		size_t k = rng_next(&s) % LARSON_SLOTS;
		size_t n = 16 + rng_next(&s) % 496;
		void *blk = wl_malloc(n);

		memset(blk, 1, 16);
		wl_free(atomic_exchange(&larson_slot[k], blk));
	}
	return NULL;
}

static void larson(int threads)
{
	pthread_t tid[8];
	struct larson_arg arg[8];
	long total = 8000000 / divisor;

	for (int t = 0; t < threads; t++) {
		arg[t] = (struct larson_arg){.seed = 0x1234567ULL * (uint64_t)(t + 1),
					     .ops = total / threads};
		pthread_create(&tid[t], NULL, larson_thread, &arg[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	for (size_t k = 0; k < LARSON_SLOTS; k++)
		wl_free(atomic_exchange(&larson_slot[k], NULL));
	ops = 2 * (total / threads) * threads + LARSON_SLOTS;
}

/* A producer allocates messages, a consumer frees them: every free is remote. */
#define RING 4096
static _Atomic(void *) ring[RING];
static atomic_long produced, consumed;

static void *consumer(void *unused)
{
	long total = (long)(intptr_t)unused;

	for (long i = 0; i < total; i++) {
		void *m;

		while (!(m = atomic_exchange(&ring[i % RING], NULL)))
			;
		wl_free(m);
		atomic_fetch_add(&consumed, 1);
	}
	return NULL;
}

static void producer_consumer(void)
{
	const long total = 4000000 / divisor;
	pthread_t tid;
	uint64_t s = 7;

	pthread_create(&tid, NULL, consumer, (void *)(intptr_t)total);
	for (long i = 0; i < total; i++) {
		size_t n = 32 + rng_next(&s) % 480;
		void *m = wl_malloc(n);

		memset(m, 2, 32);
		while (atomic_load(&ring[i % RING]))
			;
		atomic_store(&ring[i % RING], m);
		atomic_fetch_add(&produced, 1);
	}
	pthread_join(tid, NULL);
	ops = 2 * total;
}

/* The seed's incident: 100,000 x 1000-byte messages, 90% freed at random. */
static void **cheese;
static double alloc_seconds = -1, free_seconds = -1;

static void swiss_cheese(void)
{
	enum { MSGS = 100000 };
	size_t *order = malloc(MSGS * sizeof(*order));
	uint64_t s = 2024;

	double t0 = now_seconds();

	cheese = malloc(MSGS * sizeof(*cheese));
	for (size_t i = 0; i < MSGS; i++) {
		cheese[i] = wl_malloc(1000);
		memset(cheese[i], 'm', 1000);
		order[i] = i;
	}
	alloc_seconds = now_seconds() - t0;
	for (size_t i = MSGS - 1; i > 0; i--) {
		size_t j = rng_next(&s) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	t0 = now_seconds();
	for (size_t i = 0; i < MSGS * 9 / 10; i++) {
		wl_free(cheese[order[i]]);
		cheese[order[i]] = NULL;
	}
	free_seconds = now_seconds() - t0;
	free(order);
	ops = MSGS + MSGS * 9 / 10;
}

/* libptm's release books, when libptm is the process's malloc; untouched elsewhere. */
static void ptm_release_books(long long *runs, long long *bytes)
{
	static struct ptm_stats st;
	int (*get)(struct ptm_stats *);

	*(void **)&get = dlsym(RTLD_DEFAULT, "ptm_stats_get");
	if (!get || get(&st) != 0 || st.version < 2)
		return;
	*runs = (long long)st.release_calls;
	*bytes = (long long)st.release_total_bytes;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#define REPLAY_BATCH     64
#define PIDFD_SELF_THREAD (-10000)

/* See the top: the kernel's cost of releasing runs page runs, bytes in all. */
static int release_replay(long runs, long long bytes)
{
	long psz = sysconf(_SC_PAGESIZE), pages = (long)(bytes / psz), span, done = 0;
	struct iovec *iov;
	uint64_t s = 7;
	char *m, *at;
	double t0, t1;
	long before, after;
	bool batched = true;

	if (runs < 1 || pages < runs || pages > (1L << 24)) {
		fprintf(stderr, "alloc_workloads: release_replay needs 1 to %ld pages, at least "
				"one per run\n",
			1L << 24);
		return 2;
	}
	span = (pages + runs) * psz;
	iov = calloc((size_t)runs, sizeof(*iov));
	m = mmap(NULL, (size_t)span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!iov || m == MAP_FAILED) {
		fprintf(stderr, "alloc_workloads: release_replay: no memory for %ld pages\n",
			pages + runs);
		return 1;
	}
	if (madvise(m, (size_t)span, MADV_POPULATE_WRITE) != 0)
		for (long off = 0; off < span; off += psz)
			m[off] = 1;
	at = m;
	for (long i = 0; i < runs; i++) {
		long n = pages / runs + (i < pages % runs);

		iov[i].iov_base = at;
		iov[i].iov_len = (size_t)(n * psz);
		at += (n + 1) * psz;
	}
	for (long i = runs - 1; i > 0; i--) {
		long j = (long)(rng_next(&s) % (uint64_t)(i + 1));
		struct iovec t = iov[i];

		iov[i] = iov[j];
		iov[j] = t;
	}
	before = status_kb("VmRSS:");
	t0 = now_seconds();
	while (done < runs) {
		long n = runs - done < REPLAY_BATCH ? runs - done : REPLAY_BATCH;
		size_t total = 0;

		for (long i = done; i < done + n; i++)
			total += iov[i].iov_len;
		if (batched && syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov + done, (size_t)n,
				       MADV_DONTNEED, 0U) == (long)total) {
			done += n;
			continue;
		}
		/* Refused, or a short count: from here on run by run, as libptm does. */
		batched = false;
		if (madvise(iov[done].iov_base, iov[done].iov_len, MADV_DONTNEED) != 0) {
			fprintf(stderr, "alloc_workloads: release_replay: madvise: %s\n",
				strerror(errno));
			return 1;
		}
		done++;
	}
	t1 = now_seconds();
	after = status_kb("VmRSS:");
	printf("seconds=%.6f runs=%ld pages=%ld released_kb=%ld\n", t1 - t0, runs, pages,
	       before - after);
	return 0;
}

static const struct {
	const char *name;
	void (*run)(void);
} workloads[] = {
	{"seed_loop", seed_loop},
	{"pareto", pareto},
	{"realloc_growth", realloc_growth},
	{"larson_2", NULL},
	{"larson_8", NULL},
	{"producer_consumer", producer_consumer},
	{"swiss_cheese", swiss_cheese},
};

int main(int argc, char **argv)
{
	double t0, t1;
	long long runs = -1, bytes = -1;
	long base;

	if (argc == 4 && strcmp(argv[1], "release_replay") == 0) {
		char *end1, *end2;
		long n = strtol(argv[2], &end1, 10);
		long long b = strtoll(argv[3], &end2, 10);

		if (*end1 || *end2 || end1 == argv[2] || end2 == argv[3]) {
			fprintf(stderr, "usage: alloc_workloads release_replay RUNS BYTES\n");
			return 2;
		}
		return release_replay(n, b);
	}
	if (argc == 3) {
		char *end;

		divisor = strtol(argv[2], &end, 10);
		if (*end || divisor < 1 || divisor > 1000) {
			fprintf(stderr, "alloc_workloads: DIVISOR takes 1 to 1000\n");
			return 2;
		}
	}
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: alloc_workloads NAME [DIVISOR] | release_replay RUNS BYTES\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		if (strcmp(argv[1], workloads[i].name) != 0)
			continue;
		base = status_kb("VmRSS:");
		t0 = now_seconds();
		if (workloads[i].run)
			workloads[i].run();
		else
			larson(argv[1][7] - '0');
		t1 = now_seconds();
		printf("seconds=%.6f base_rss_kb=%ld peak_rss_kb=%ld rss_after_kb=%ld alloc_s=%.6f "
		       "free_s=%.6f ops=%ld",
		       t1 - t0, base, status_kb("VmHWM:"), status_kb("VmRSS:"), alloc_seconds,
		       free_seconds, ops);
		ptm_release_books(&runs, &bytes);
		printf(" release_runs=%lld release_bytes=%lld\n", runs, bytes);
		return 0;
	}
	fprintf(stderr, "alloc_workloads: unknown workload '%s'\n", argv[1]);
	return 2;
}

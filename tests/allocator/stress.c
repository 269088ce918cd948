/* SPDX-License-Identifier: MIT */
/*
 * stress.c - libptm keeps every byte of every block under random load.
 *
 * A worker runs a random mix of malloc, calloc, realloc (single steps and
 * growing/shrinking chains), reallocarray and the five aligned allocators with
 * sizes from 0 bytes to 8 MiB (the large ones mmapped), single-threaded and on
 * four threads that also free each other's blocks through a shared queue.
 * Every block carries a pattern derived from its own tag; the pattern is
 * verified before every free and realloc, so an allocator that hands out
 * overlapping memory, loses a realloc prefix or frees too early is caught.
 * The driver runs the workers on glibc and then on libptm with the same seed
 * (printed; set HF_STRESS_SEED to replay one).
 */
#include "check.h"
#include "preload.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS     1024
#define QUEUE_LEN 4096
#define THREADS   4
#define GOLDEN    0x9e3779b97f4a7c15ull

struct block {
	unsigned char *p;
	size_t size;
	uint64_t tag;
};

struct worker {
	int id;
	uint64_t seed;
	uint64_t rng;
	double deadline;
	int shared; /* pass blocks to other threads through the queue */
	struct block slots[SLOTS];
	unsigned long ops, allocs, frees, reallocs, passed, received;
	unsigned long long bytes;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block queue[QUEUE_LEN];
static size_t queue_head, queue_count;
static long page_size;
/* Volatile, so the compiler cannot reject the impossible requests itself. */
static volatile size_t huge_count = PTRDIFF_MAX;

static uint64_t next_rand(struct worker *w)
{
	/* xorshift64*: tiny, and the same sequence on every allocator. */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noreturn, format(printf, 2, 3))) static void fail(struct worker *w, const char *fmt,
								 ...)
{
	va_list ap;

	fprintf(stderr, "FAIL thread %d, op %lu (seed %#llx): ", w->id, w->ops,
		(unsigned long long)w->seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(2);
}

static size_t pick_size(struct worker *w)
{
	uint64_t r = next_rand(w) % 1000;

	if (r < 550)
		return 1 + next_rand(w) % 128;
	if (r < 850)
		return 129 + next_rand(w) % (4096 - 128);
	if (r < 960)
		return 4097 + next_rand(w) % (128 * 1024 - 4096);
	if (r < 995)
		return 128 * 1024 + 1 + next_rand(w) % (1024 * 1024 - 128 * 1024);
	return 1024 * 1024 + next_rand(w) % (7 * 1024 * 1024);
}

static void fill(unsigned char *p, size_t n, uint64_t tag)
{
	uint64_t *words = (uint64_t *)p;
	size_t i, nw = n / 8;

	for (i = 0; i < nw; i++)
		words[i] = tag ^ (i * GOLDEN);
	for (i = nw * 8; i < n; i++)
		p[i] = (unsigned char)((tag ^ (nw * GOLDEN)) >> (8 * (i % 8)));
}

/* Returns the offset of the first byte that differs from the pattern, or n. */
static size_t verify(const unsigned char *p, size_t n, uint64_t tag)
{
	const uint64_t *words = (const uint64_t *)p;
	size_t i, nw = n / 8;

	for (i = 0; i < nw; i++)
		if (words[i] != (tag ^ (i * GOLDEN)))
			return i * 8;
	for (i = nw * 8; i < n; i++)
		if (p[i] != (unsigned char)((tag ^ (nw * GOLDEN)) >> (8 * (i % 8))))
			return i;
	return n;
}

static void check_block(struct worker *w, const struct block *b, const char *why)
{
	size_t off = verify(b->p, b->size, b->tag);

	if (off != b->size)
		fail(w, "%s: block %p of %zu bytes corrupted at offset %zu", why, (void *)b->p,
		     b->size, off);
}

/* Checks what every fresh block must satisfy, then writes its pattern. */
static void adopt(struct worker *w, struct block *b, void *p, size_t size, size_t align,
		  const char *how)
{
	if (!p)
		fail(w, "%s(%zu) returned NULL: %s", how, size, strerror(errno));
	if ((uintptr_t)p % align)
		fail(w, "%s(%zu) returned %p, not aligned to %zu", how, size, p, align);
	if (malloc_usable_size(p) < size)
		fail(w, "%s(%zu): malloc_usable_size %zu is smaller", how, size,
		     malloc_usable_size(p));
	/* Counts every block adopted; reallocs are subtracted when printing. */
	b->p = p;
	b->size = size;
	b->tag = next_rand(w);
	fill(b->p, size, b->tag);
	w->allocs++;
	w->bytes += size;
}

static void release(struct worker *w, struct block *b, const char *why)
{
	if (!b->p)
		return;
	check_block(w, b, why);
	free(b->p);
	b->p = NULL;
	w->frees++;
}

static void do_malloc(struct worker *w, struct block *b)
{
	size_t size = pick_size(w);

	adopt(w, b, malloc(size), size, 16, "malloc");
}

static void do_calloc(struct worker *w, struct block *b)
{
	size_t size = pick_size(w);
	size_t n = 1 + next_rand(w) % 8;
	size_t each = (size + n - 1) / n;
	unsigned char *p = calloc(n, each);
	size_t i;

	if (!p)
		fail(w, "calloc(%zu, %zu) returned NULL", n, each);
	for (i = 0; i < n * each; i++)
		if (p[i])
			fail(w, "calloc(%zu, %zu): byte %zu is %#x, not zero", n, each, i, p[i]);
	adopt(w, b, p, n * each, 16, "calloc");
}

static void do_aligned(struct worker *w, struct block *b)
{
	size_t size = pick_size(w);
	size_t align = (size_t)1 << (3 + next_rand(w) % 14); /* 8 B .. 64 KiB */
	void *p = NULL;
	int rc;

	switch (next_rand(w) % 5) {
	case 0:
		rc = posix_memalign(&p, align, size);
		if (rc)
			fail(w, "posix_memalign(%zu, %zu) failed: %s", align, size, strerror(rc));
		adopt(w, b, p, size, align, "posix_memalign");
		break;
	case 1:
		adopt(w, b, aligned_alloc(align, size), size, align, "aligned_alloc");
		break;
	case 2:
		adopt(w, b, memalign(align, size), size, align, "memalign");
		break;
	case 3:
		adopt(w, b, valloc(size), size, (size_t)page_size, "valloc");
		break;
	default:
		/* pvalloc rounds the request up to whole pages. */
		p = pvalloc(size);
		if (p && malloc_usable_size(p) < (size + page_size - 1) / page_size * page_size)
			fail(w, "pvalloc(%zu): usable size %zu is not whole pages", size,
			     malloc_usable_size(p));
		adopt(w, b, p, size, (size_t)page_size, "pvalloc");
		break;
	}
}

static void do_realloc(struct worker *w, struct block *b, size_t size)
{
	size_t keep = b->size < size ? b->size : size;
	uint64_t old_tag = b->tag;
	unsigned char *p;

	if (b->p)
		check_block(w, b, "before realloc");
	p = realloc(b->p, size);
	if (!p)
		fail(w, "realloc(%p, %zu) returned NULL", (void *)b->p, size);
	if (b->p && verify(p, keep, old_tag) != keep)
		fail(w, "realloc(%zu -> %zu) lost the prefix at offset %zu", b->size, size,
		     verify(p, keep, old_tag));
	w->reallocs++;
	adopt(w, b, p, size, 16, "realloc");
}

/* A chain of reallocs that doubles, halves or jumps, as a growing buffer does. */
static void do_realloc_chain(struct worker *w, struct block *b)
{
	int steps = 8 + (int)(next_rand(w) % 17);
	size_t size = b->p ? b->size : 1 + next_rand(w) % 64;

	while (steps--) {
		switch (next_rand(w) % 4) {
		case 0:
		case 1:
			size = size * 2 + next_rand(w) % 16;
			break;
		case 2:
			size = size / 2 + 1;
			break;
		default:
			size = pick_size(w);
			break;
		}
		if (size > 16 * 1024 * 1024)
			size = 1 + next_rand(w) % 4096;
		do_realloc(w, b, size);
	}
}

static void do_reallocarray(struct worker *w, struct block *b)
{
	size_t n = 1 + next_rand(w) % 16, each = 1 + pick_size(w) / n;
	size_t keep = b->size < n * each ? b->size : n * each;
	uint64_t old_tag = b->tag;
	unsigned char *p;

	if (b->p)
		check_block(w, b, "before reallocarray");
	/* An overflowing product must fail with ENOMEM and leave the block alone. */
	errno = 0;
	if (reallocarray(b->p, huge_count, 4) != NULL || errno != ENOMEM)
		fail(w, "reallocarray(p, PTRDIFF_MAX, 4) did not fail with ENOMEM");
	if (b->p)
		check_block(w, b, "after a failed reallocarray");
	p = reallocarray(b->p, n, each);
	if (!p)
		fail(w, "reallocarray(%p, %zu, %zu) returned NULL", (void *)b->p, n, each);
	if (b->p && verify(p, keep, old_tag) != keep)
		fail(w, "reallocarray(%zu -> %zu) lost the prefix", b->size, n * each);
	w->reallocs++;
	adopt(w, b, p, n * each, 16, "reallocarray");
}

/* malloc(0) gives a unique freeable pointer; realloc(p, 0) frees p and returns NULL. */
static void do_zero(struct worker *w, struct block *b)
{
	void *p;

	release(w, b, "before malloc(0)");
	p = malloc(0);
	if (!p)
		fail(w, "malloc(0) returned NULL");
	if ((uintptr_t)p % 16)
		fail(w, "malloc(0) returned %p, not 16-byte aligned", p);
	p = realloc(p, 0);
	if (p)
		fail(w, "realloc(p, 0) returned %p, not NULL", p);
}

static void queue_push(struct worker *w, struct block *b)
{
	int pushed = 0;

	pthread_mutex_lock(&queue_lock);
	if (queue_count < QUEUE_LEN) {
		queue[(queue_head + queue_count) % QUEUE_LEN] = *b;
		queue_count++;
		pushed = 1;
	}
	pthread_mutex_unlock(&queue_lock);
	if (pushed) {
		b->p = NULL;
		w->passed++;
	} else {
		release(w, b, "queue full");
	}
}

static int queue_pop(struct block *out)
{
	int popped = 0;

	pthread_mutex_lock(&queue_lock);
	if (queue_count) {
		*out = queue[queue_head];
		queue_head = (queue_head + 1) % QUEUE_LEN;
		queue_count--;
		popped = 1;
	}
	pthread_mutex_unlock(&queue_lock);
	return popped;
}

/* Frees blocks that other threads allocated and wrote. */
static void drain_queue(struct worker *w, int max)
{
	struct block b;

	while (max-- && queue_pop(&b)) {
		release(w, &b, "cross-thread free");
		w->received++;
	}
}

static void one_op(struct worker *w)
{
	struct block *b = &w->slots[next_rand(w) % SLOTS];
	uint64_t r = next_rand(w) % 100;

	w->ops++;
	if (r < 30) {
		release(w, b, "before reuse");
		do_malloc(w, b);
	} else if (r < 50) {
		release(w, b, "free");
	} else if (r < 62) {
		do_realloc(w, b, pick_size(w));
	} else if (r < 66) {
		do_realloc_chain(w, b);
	} else if (r < 74) {
		release(w, b, "before calloc");
		do_calloc(w, b);
	} else if (r < 86) {
		release(w, b, "before aligned");
		do_aligned(w, b);
	} else if (r < 90) {
		do_reallocarray(w, b);
	} else if (r < 92) {
		do_zero(w, b);
	} else if (w->shared && r < 96) {
		if (b->p)
			queue_push(w, b);
	} else if (w->shared) {
		drain_queue(w, 16);
	} else {
		release(w, b, "before malloc");
		do_malloc(w, b);
	}
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	int i;

	while (now_s() < w->deadline)
		for (i = 0; i < 256; i++)
			one_op(w);
	for (i = 0; i < SLOTS; i++)
		release(w, &w->slots[i], "final free");
	return NULL;
}

/* glibc's documented edge cases, which a drop-in must share. */
static void check_edges(struct worker *w)
{
	void *p = (void *)1;
	void *q;
	int rc;

	errno = 0;
	if (malloc(huge_count + 1) != NULL || errno != ENOMEM)
		fail(w, "malloc(PTRDIFF_MAX + 1) did not fail with ENOMEM");
	errno = 0;
	if (calloc(huge_count, 3) != NULL || errno != ENOMEM)
		fail(w, "calloc(huge_count, 3) did not fail with ENOMEM");
	rc = posix_memalign(&p, 24, 100);
	if (rc != EINVAL || p != (void *)1)
		fail(w, "posix_memalign(&p, 24, 100) returned %d and changed p", rc);
	q = malloc(100);
	if (!q)
		fail(w, "malloc(100) returned NULL");
	errno = 12345;
	free(q);
	if (errno != 12345)
		fail(w, "free changed errno to %d", errno);
	free(NULL);
}

static int worker_main(const char *kind, uint64_t seed, double seconds)
{
	static struct worker workers[THREADS];
	pthread_t tids[THREADS];
	int n = strcmp(kind, "multi") == 0 ? THREADS : 1;
	unsigned long ops = 0, allocs = 0, frees = 0, reallocs = 0, passed = 0, received = 0;
	unsigned long long bytes = 0;
	struct block b;
	int i;

	hf_preload_verify();
	page_size = sysconf(_SC_PAGESIZE);
	for (i = 0; i < n; i++) {
		workers[i].id = i;
		workers[i].seed = seed;
		workers[i].rng = (seed ^ ((uint64_t)(i + 1) * GOLDEN)) | 1;
		workers[i].deadline = now_s() + seconds;
		workers[i].shared = n > 1;
	}
	check_edges(&workers[0]);
	for (i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, run_worker, &workers[i]) != 0) {
			fprintf(stderr, "failed to create thread %d\n", i);
			return 1;
		}
	for (i = 0; i < n; i++) {
		pthread_join(tids[i], NULL);
		ops += workers[i].ops;
		allocs += workers[i].allocs;
		frees += workers[i].frees;
		reallocs += workers[i].reallocs;
		passed += workers[i].passed;
		received += workers[i].received;
		bytes += workers[i].bytes;
	}
	while (queue_pop(&b)) {
		release(&workers[0], &b, "final cross-thread free");
		frees++;
		received++;
	}
	if (passed != received) {
		fprintf(stderr, "FAIL: %lu blocks passed between threads, %lu received\n", passed,
			received);
		return 1;
	}
	printf("%s: %d thread(s), %lu ops: %lu allocations, %lu frees (%lu cross-thread), %lu "
	       "reallocs, %llu MiB written\n",
	       kind, n, ops, allocs - reallocs, frees, received, reallocs, bytes >> 20);
	printf("stress ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const char *kinds[] = {"single", "multi"};
	const char *env = getenv("HF_STRESS_SEED");
	char seed_arg[32], secs_arg[16], desc[64];
	uint64_t seed;
	int m, k;

	if (argc == 5 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argv[2], strtoull(argv[3], NULL, 0), atof(argv[4]));

	seed = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) * GOLDEN) ^ (uint64_t)getpid();
	printf("stress seed %#llx (replay with HF_STRESS_SEED=%#llx)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	snprintf(seed_arg, sizeof(seed_arg), "%#llx", (unsigned long long)seed);
	for (m = HF_PRELOAD_GLIBC; m <= HF_PRELOAD_PTM; m++) {
		for (k = 0; k < 2; k++) {
			char *args[] = {argv[0],  "--worker", (char *)kinds[k],
					seed_arg, secs_arg,   NULL};
			char prefix[32];

			snprintf(secs_arg, sizeof(secs_arg), "%d", k ? 6 : 4);
			snprintf(prefix, sizeof(prefix), "  [%s %s] ", hf_preload_mode_name(m),
				 kinds[k]);
			CHECK_MSG(hf_preload_run_ok(m, args, 90, prefix, "stress ok\n", desc,
						    sizeof(desc)),
				  "%s %s stress: %s", hf_preload_mode_name(m), kinds[k], desc);
		}
	}
	return hf_test_done();
}

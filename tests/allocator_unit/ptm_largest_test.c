// SPDX-License-Identifier: MIT
/*
 * ptm_largest_test: the version 3 books.  Each arena's published
 * largest_free_bytes equals the largest free chunk a full walk of the arena
 * finds (ptm_stats_get() walks every bin; ptm_check_heap() walks the heap
 * chunk by chunk and compares with what the last unlock published) after
 * every operation of random sequences, in the main arena and in thread
 * arenas; and heaps counts a thread arena's heaps and the main arena's
 * regions as they come and go.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "ptm_stats.h"
#include "ptm_stats_abi.h"
#include "ptm_test.h"

extern struct ptm_abi_block ptm_stats_block;

/* The published record of arena index, copied once its seqlock is even. */
static int record_of(uint64_t index, struct ptm_abi_arena *out)
{
	const struct ptm_abi_arena *a;

	for (a = (const struct ptm_abi_arena *)(uintptr_t)__atomic_load_n(
		     &ptm_stats_block.first_arena, __ATOMIC_ACQUIRE);
	     a != NULL; a = (const struct ptm_abi_arena *)(uintptr_t)a->next) {
		if (a->index != index)
			continue;
		for (int tries = 0; tries < 1000000; tries++) {
			uint64_t g1 = __atomic_load_n(&a->gen, __ATOMIC_ACQUIRE), g2;

			memcpy(out, (const void *)a, sizeof(*out));
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			g2 = __atomic_load_n(&a->gen, __ATOMIC_RELAXED);
			if ((g1 & 1) == 0 && g1 == g2 && out->gen == g1)
				return 0;
		}
		return -EAGAIN;
	}
	return -ENOENT;
}

/* Every arena's record against ptm_stats_get()'s walk; nothing else may run. */
static int records_match_the_walk(struct ptm_stats *st, const char *when)
{
	int ok = 1;

	CHECK(ptm_stats_get(st) == 0);
	for (uint64_t i = 0; i < st->arenas_reported; i++) {
		const struct ptm_arena_stats *w = &st->arenas[i];
		struct ptm_abi_arena r;

		CHECK(record_of(w->index, &r) == 0);
		if (r.largest_free_bytes != w->largest_free || r.heaps != w->heaps) {
			CHECK_MSG(0,
				  "%s: arena %lu publishes largest %lu, heaps %lu; "
				  "the walk finds %lu, %lu",
				  when, (unsigned long)w->index,
				  (unsigned long)r.largest_free_bytes, (unsigned long)r.heaps,
				  (unsigned long)w->largest_free, (unsigned long)w->heaps);
			ok = 0;
		}
	}
	return ok;
}

#define NSLOTS 600

/* A size from every range: fastbin, tcache, small, large, near and above mmap. */
static size_t random_size(unsigned *rs)
{
	switch (rand_r(rs) % 10) {
	case 0:
	case 1:
		return (size_t)rand_r(rs) % 120;
	case 2:
	case 3:
		return 120 + (size_t)rand_r(rs) % 900;
	case 4:
	case 5:
		return 1024 + (size_t)rand_r(rs) % 4000;
	case 6:
	case 7:
		return 4096 + (size_t)rand_r(rs) % 60000;
	case 8:
		return 64 * 1024 + (size_t)rand_r(rs) % (200 * 1024);
	default:
		return (size_t)(rand_r(rs) % 8 + 1) * 1000;
	}
}

/* One random step on slots: malloc, free, realloc, memalign or calloc. */
static void step(void **slots, size_t *sizes, unsigned *rs)
{
	int i = rand_r(rs) % NSLOTS, op = rand_r(rs) % 100;
	size_t n = random_size(rs);

	if (slots[i] != NULL && op < 45) {
		ptm_free(slots[i]);
		slots[i] = NULL;
	} else if (slots[i] != NULL && op < 60) {
		/* n > 0: realloc(p, 0) frees p. */
		void *q = ptm_realloc(slots[i], n + 1);

		if (q != NULL) {
			slots[i] = q;
			sizes[i] = n + 1;
		}
	} else if (slots[i] == NULL) {
		if (op < 5)
			slots[i] = ptm_memalign((size_t)64 << (rand_r(rs) % 6), n);
		else if (op < 10)
			slots[i] = ptm_calloc(1, n);
		else
			slots[i] = ptm_malloc(n);
		sizes[i] = n;
	}
	if (slots[i] != NULL && sizes[i] > 0)
		((unsigned char *)slots[i])[sizes[i] - 1] = (unsigned char)i;
}

static void free_all(void **slots)
{
	for (int i = 0; i < NSLOTS; i++) {
		ptm_free(slots[i]);
		slots[i] = NULL;
	}
}

/*
 * With a small top (no top pad, trimming early), the largest free chunk is
 * often a binned one, and allocations keep taking it: every path that
 * removes a largest chunk, and the recomputation behind it, gets exercised.
 */
static void largest_free_is_exact_after_every_random_operation(void)
{
	static void *slots[NSLOTS];
	static size_t sizes[NSLOTS];
	struct ptm_stats *st = malloc(sizeof(*st));
	unsigned rs = 12345;
	int steps_ok = 1, walks_ok = 1;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	for (int phase = 0; phase < 3; phase++) {
		/* Phase 0 as configured; 1: small top; 2: small top and bigger fastbins. */
		if (phase == 1) {
			CHECK(ptm_mallopt(M_TOP_PAD, 0) == 1);
			CHECK(ptm_mallopt(M_TRIM_THRESHOLD, 64 * 1024) == 1);
		}
		if (phase == 2)
			CHECK(ptm_mallopt(M_MXFAST, 160) == 1);
		for (int n = 0; n < 4000 && steps_ok && walks_ok; n++) {
			struct ptm_heap_census c;

			step(slots, sizes, &rs);
			if (ptm_check_heap(&c) != 0) {
				CHECK_MSG(0, "phase %d step %d: heap check failed", phase, n);
				steps_ok = 0;
			}
			if (n % 7 == 0)
				walks_ok = records_match_the_walk(st, "random step");
		}
		free_all(slots);
		CHECK(records_match_the_walk(st, "after freeing everything"));
		checked_census("after a random phase");
	}
	CHECK(ptm_mallopt(M_MXFAST, 128) == 1);
	free(st);
}

/*
 * The largest free chunk leaves while a long unsorted list waits: the
 * books find the next largest among them (sorting them into their bins).
 */
static void largest_leaving_a_long_unsorted_bin_is_replaced_exactly(void)
{
	struct ptm_stats *st = malloc(sizeof(*st));
	void *big, *guard, *small[200], *again;
	struct ptm_abi_arena r;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(ptm_mallopt(M_TOP_PAD, 0) == 1);
	/* Big (48 KiB), then 200 pairs: a chunk to free and a guard that keeps it apart. */
	big = ptm_malloc(48 * 1024);
	guard = ptm_malloc(100);
	for (int i = 0; i < 200; i++) {
		small[i] = ptm_malloc(1100 + (size_t)i * 16);
		CHECK(ptm_malloc(40) != NULL);
	}
	CHECK(big != NULL && guard != NULL);
	/* Use up top, so that it is smaller than the big chunk. */
	for (int n = 0; n < 100000; n++) {
		CHECK(record_of(0, &r) == 0);
		if (r.top_bytes < 8192)
			break;
		CHECK(ptm_malloc(4000) != NULL);
	}
	CHECK(r.top_bytes < 8192);
	ptm_free(big);
	for (int i = 0; i < 200; i++)
		ptm_free(small[i]);
	CHECK(record_of(0, &r) == 0);
	CHECK_EQ_U64(r.largest_free_bytes, chunk_size(big));
	CHECK(records_match_the_walk(st, "big and 200 unsorted chunks freed"));
	/* An exact fit: malloc takes the big chunk and leaves the rest unsorted. */
	again = ptm_malloc(48 * 1024);
	CHECK(again == big);
	CHECK(record_of(0, &r) == 0);
	CHECK(r.largest_free_bytes < chunk_size(big));
	CHECK(r.largest_free_bytes >= chunk_size(small[199]));
	CHECK(records_match_the_walk(st, "big taken back"));
	checked_census("after the long unsorted list");
	ptm_free(again);
	ptm_free(guard);
	free(st);
}

/* Thread arenas: one heap, a second once the first (64 MiB) is full, and back. */
static void *grow_two_heaps(void *arg)
{
	struct ptm_stats *st = arg;
	void *blocks[80];
	uint64_t index = UINT64_MAX;

	for (int i = 0; i < 80; i++)
		blocks[i] = ptm_malloc(1024 * 1024);
	CHECK(ptm_stats_get(st) == 0);
	for (uint64_t i = 0; i < st->arenas_reported; i++)
		if (st->arenas[i].index != 0 && st->arenas[i].heaps >= 2)
			index = st->arenas[i].index;
	CHECK_MSG(index != UINT64_MAX, "no thread arena grew a second heap");
	if (index != UINT64_MAX) {
		struct ptm_abi_arena r;

		CHECK(record_of(index, &r) == 0);
		CHECK_EQ_U64(r.heaps, 2);
		CHECK(r.system_bytes > 64ULL * 1024 * 1024);
		checked_census("two heaps");
		for (int i = 79; i >= 0; i--)
			ptm_free(blocks[i]);
		CHECK(record_of(index, &r) == 0);
		CHECK_EQ_U64(r.heaps, 1);
		CHECK(r.system_bytes <= 64ULL * 1024 * 1024);
	}
	checked_census("heap deleted");
	return NULL;
}

static void heaps_count_thread_heaps_and_main_regions(void)
{
	struct ptm_stats *st = malloc(sizeof(*st));
	struct ptm_abi_arena r0, r1;
	pthread_t t;
	void *p, *q;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	/* No mmapped chunks: 1 MiB blocks stay in the arenas. */
	CHECK(ptm_mallopt(M_MMAP_MAX, 0) == 1);
	CHECK(pthread_create(&t, NULL, grow_two_heaps, st) == 0);
	pthread_join(t, NULL);

	/* The main arena: a foreign sbrk makes its next growth a new region. */
	p = ptm_malloc(100);
	CHECK(record_of(0, &r0) == 0);
	CHECK(r0.heaps >= 1);
	CHECK(sbrk(4096) != (void *)-1);
	/* More than any free chunk: it must come from the system. */
	q = ptm_malloc(r0.largest_free_bytes + 1024 * 1024);
	CHECK(q != NULL);
	CHECK(record_of(0, &r1) == 0);
	CHECK_EQ_U64(r1.heaps, r0.heaps + 1);
	CHECK(records_match_the_walk(st, "main arena regions"));
	checked_census("after a foreign sbrk");
	ptm_free(q);
	ptm_free(p);
	CHECK(ptm_mallopt(M_MMAP_MAX, 65536) == 1);
	free(st);
}

struct walker {
	unsigned seed;
	int failed_at;
};

/* Random steps in a thread arena; the checker compares every arena's books under their locks. */
static void *random_walker(void *arg)
{
	struct walker *w = arg;
	void **slots = calloc(NSLOTS, sizeof(*slots));
	size_t *sizes = calloc(NSLOTS, sizeof(*sizes));

	w->failed_at = -1;
	if (slots == NULL || sizes == NULL) {
		w->failed_at = -2;
		goto out;
	}
	for (int n = 0; n < 2000; n++) {
		step(slots, sizes, &w->seed);
		if (ptm_check_heap(NULL) != 0) {
			w->failed_at = n;
			break;
		}
	}
	free_all(slots);
out:
	free(slots);
	free(sizes);
	return NULL;
}

static void threads_keep_every_arenas_largest_exact(void)
{
	struct walker w[2] = {{.seed = 7}, {.seed = 99}};
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, random_walker, &w[i]) == 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK_MSG(w[i].failed_at == -1, "thread %d: heap check failed at step %d", i,
			  w[i].failed_at);
	}
	checked_census("after the threads");
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	/* First, while the heap is fresh: the scenario needs chunks laid out in order. */
	largest_leaving_a_long_unsorted_bin_is_replaced_exactly();
	largest_free_is_exact_after_every_random_operation();
	threads_keep_every_arenas_largest_exact();
	heaps_count_thread_heaps_and_main_regions();
	return hf_test_done();
}

// SPDX-License-Identifier: MIT
/*
 * ptm_stats_test: libptm's exact statistics.  ptm_stats_get() agrees with
 * mallinfo2() and with the checker's walk of the heap; thread caches of
 * other live threads are merged in; lock contention is booked; the JSON
 * dump carries the same numbers; and the exported block, read the way
 * heapfragd reads it (process_vm_readv and the seqlock), gives exactly
 * mallinfo2()'s numbers, and consistent snapshots while threads allocate.
 */
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ptm_stats.h"
#include "ptm_stats_abi.h"
#include "ptm_test.h"

extern struct ptm_abi_block ptm_stats_block;

static void *keep[400];

static void make_a_mixed_heap(void)
{
	for (int i = 0; i < 400; i++)
		keep[i] = ptm_malloc((size_t)(i * 131) % 6000 + (i % 50 == 0 ? 400000 : 0));
	for (int i = 0; i < 400; i += 3)
		ptm_free(keep[i]);
	for (int i = 0; i < 40; i++)
		ptm_free(ptm_malloc(48));
	for (int i = 1; i < 400; i += 7)
		if (i % 3 != 0)
			keep[i] = ptm_realloc(keep[i], 3000);
}

static void stats_agree_with_mallinfo2_and_the_walk(void)
{
	struct ptm_stats *st = malloc(sizeof(*st));
	struct mallinfo2 m = ptm_mallinfo2();
	struct ptm_heap_census c = checked_census("for stats");
	uint64_t fast = 0, binned = 0, tops = 0, hist = 0;

	CHECK(ptm_stats_get(NULL) == -EINVAL);
	CHECK(ptm_stats_get(st) == 0);
	CHECK(st->version == PTM_STATS_VERSION && st->size == sizeof(*st));
	CHECK_EQ_U64(st->narenas, c.arenas);
	CHECK_EQ_U64(st->system_bytes, m.arena);
	CHECK_EQ_U64(st->free_bytes, m.fordblks);
	CHECK_EQ_U64(st->inuse_bytes, m.uordblks);
	CHECK_EQ_U64(st->inuse_chunks, c.inuse_chunks + c.tcache_chunks);
	CHECK_EQ_U64(st->largest_free, c.largest_free);
	CHECK_EQ_U64(st->mmapped_chunks, m.hblks);
	CHECK_EQ_U64(st->mmapped_bytes, m.hblkhd);
	for (uint64_t i = 0; i < st->arenas_reported; i++) {
		const struct ptm_arena_stats *a = &st->arenas[i];

		fast += a->fast.chunks;
		binned += a->unsorted.chunks + a->small.chunks + a->large.chunks;
		tops += a->top.chunks;
		for (int k = 0; k < PTM_STATS_HIST_BUCKETS; k++)
			hist += a->free_hist[k];
		CHECK(a->lock_acquisitions > 0);
		CHECK(a->heaps >= 1);
	}
	CHECK_EQ_U64(fast, m.smblks);
	CHECK_EQ_U64(binned + tops, m.ordblks);
	CHECK_EQ_U64(hist, st->free_chunks);
	CHECK_EQ_U64(st->arenas[0].top.bytes, m.keepcost);
	/* The caller's own cache is merged in. */
	CHECK(st->tcache.chunks >= c.tcache_chunks && st->tcache.bytes >= c.tcache_bytes);
	free(st);
}

static pthread_barrier_t barrier;

static void *cache_and_wait(void *arg)
{
	void *p[7];

	(void)arg;
	for (int i = 0; i < 7; i++)
		p[i] = ptm_malloc(700);
	for (int i = 0; i < 7; i++)
		ptm_free(p[i]);
	pthread_barrier_wait(&barrier);
	pthread_barrier_wait(&barrier);
	return NULL;
}

static void other_threads_caches_are_merged_on_read(void)
{
	struct ptm_stats *st = malloc(sizeof(*st));
	uint64_t chunks0, threads0;
	pthread_t t;

	ptm_stats_get(st);
	chunks0 = st->tcache.chunks;
	threads0 = st->tcache_threads;
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&t, NULL, cache_and_wait, NULL);
	pthread_barrier_wait(&barrier);
	ptm_stats_get(st);
	CHECK_EQ_U64(st->tcache_threads, threads0 + 1);
	CHECK_EQ_U64(st->tcache.chunks, chunks0 + 7);
	pthread_barrier_wait(&barrier);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&barrier);
	ptm_stats_get(st);
	CHECK_EQ_U64(st->tcache_threads, threads0);
	CHECK_EQ_U64(st->tcache.chunks, chunks0);
	free(st);
}

static volatile int checking;

static void *hammer(void *arg)
{
	(void)arg;
	while (!checking)
		sched_yield();
	for (int i = 0; i < 20000; i++)
		ptm_free(ptm_malloc(2000 + (size_t)(i % 7) * 16));
	return NULL;
}

static void *check_repeatedly(void *arg)
{
	(void)arg;
	/* The checker holds every arena lock while it walks a big heap. */
	checking = 1;
	for (int i = 0; i < 20; i++)
		ptm_check_heap(NULL);
	return NULL;
}

/* Threads sharing the main arena (M_ARENA_MAX 1) wait for its lock. */
static void contention_is_booked(void)
{
	struct ptm_stats *st = malloc(sizeof(*st));
	static void *many[100000];
	uint64_t acq0, cont0;
	pthread_t t[2];

	for (int i = 0; i < 100000; i++)
		many[i] = ptm_malloc(64);
	ptm_stats_get(st);
	acq0 = st->arenas[0].lock_acquisitions;
	cont0 = st->arenas[0].lock_contended;
	pthread_create(&t[0], NULL, hammer, NULL);
	pthread_create(&t[1], NULL, check_repeatedly, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ptm_stats_get(st);
	CHECK_EQ_U64(st->narenas, 1);
	CHECK(st->arenas[0].lock_acquisitions >= acq0 + 40000);
	CHECK_MSG(st->arenas[0].lock_contended > cont0, "no contention booked");
	CHECK(st->arenas[0].lock_wait_ns > 0);
	CHECK(st->arenas[0].lock_max_wait_ns <= st->arenas[0].lock_wait_ns);
	for (int i = 0; i < 100000; i++)
		ptm_free(many[i]);
	free(st);
}

static void json_dump_carries_the_same_numbers(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct ptm_stats *st = malloc(sizeof(*st));
	json_error_t jerr;
	json_t *doc, *arenas;
	char *g1 = ptm_malloc(100), *hole = ptm_malloc(64 * 1024), *g2 = ptm_malloc(100);

	/* A released hole, so that the release books are not all zero. */
	memset(hole, 1, 64 * 1024);
	ptm_free(hole);
	ptm_malloc_trim(0);
	CHECK(ptm_stats_json(f) == 0);
	fclose(f);
	ptm_stats_get(st);
	doc = json_loads(buf, 0, &jerr);
	CHECK_MSG(doc != NULL, "JSON does not parse: %s", jerr.text);
	if (doc != NULL) {
		arenas = json_object_get(doc, "arenas");
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "version")),
			     PTM_STATS_VERSION);
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "system_bytes")),
			     st->system_bytes);
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "free_chunks")),
			     st->free_chunks);
		CHECK_EQ_U64(json_array_size(arenas), st->arenas_reported);
		CHECK_EQ_U64(json_integer_value(json_object_get(
				     json_object_get(json_array_get(arenas, 0), "top"), "bytes")),
			     st->arenas[0].top.bytes);
		CHECK_EQ_U64(
			json_array_size(json_object_get(json_array_get(arenas, 0), "free_hist")),
			PTM_STATS_HIST_BUCKETS);
		CHECK(st->released_bytes >= 60 * 1024);
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "released_bytes")),
			     st->released_bytes);
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "release_total_bytes")),
			     st->release_total_bytes);
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "reuse_total_bytes")),
			     st->reuse_total_bytes);
		CHECK_EQ_U64(json_integer_value(json_object_get(doc, "release_calls")),
			     st->release_calls);
		CHECK_EQ_U64(json_integer_value(
				     json_object_get(json_array_get(arenas, 0), "released_bytes")),
			     st->arenas[0].released_bytes);
		json_decref(doc);
	}
	free(buf);
	free(st);
	ptm_free(g1);
	ptm_free(g2);
}

/* heapfragd's side: copy remote memory, retry until the seqlock says consistent. */
static int remote_read(uint64_t addr, void *out, size_t len)
{
	struct iovec local = {.iov_base = out, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int read_arena(uint64_t addr, struct ptm_abi_arena *a, unsigned *retries)
{
	for (int tries = 0; tries < 100000; tries++) {
		uint64_t gen2;

		if (remote_read(addr, a, sizeof(*a)) != 0)
			return -1;
		if (remote_read(addr, &gen2, sizeof(gen2)) != 0)
			return -1;
		if ((a->gen & 1) == 0 && a->gen == gen2)
			return 0;
		(*retries)++;
	}
	return -1;
}

static void exported_block_gives_mallinfo2_exactly(void)
{
	struct ptm_abi_block b;
	struct ptm_abi_arena a;
	struct mallinfo2 m = ptm_mallinfo2();
	uint64_t arena = 0, ordblks = 0, smblks = 0, fordblks = 0, n = 0, keepcost = 0;
	uint64_t released = 0;
	struct ptm_stats *st = malloc(sizeof(*st));
	unsigned retries = 0;

	CHECK(remote_read((uintptr_t)&ptm_stats_block, &b, sizeof(b)) == 0);
	CHECK(b.magic == PTM_ABI_MAGIC && memcmp(&b.magic, "PTMSTATS", 8) == 0);
	CHECK_EQ_U64(b.version, PTM_ABI_VERSION);
	CHECK_EQ_U64(b.size, sizeof(b));
	CHECK_EQ_U64(b.arena_record_size, sizeof(a));
	for (uint64_t addr = b.first_arena; addr != 0 && n < 1000; addr = a.next, n++) {
		if (read_arena(addr, &a, &retries) != 0) {
			CHECK_MSG(0, "arena record at %#lx unreadable", (unsigned long)addr);
			break;
		}
		if (a.index == 0)
			keepcost = a.top_bytes;
		arena += a.system_bytes;
		ordblks += a.binned_chunks + 1;
		smblks += a.fast_chunks;
		fordblks += a.top_bytes + a.binned_bytes + a.fast_bytes;
		released += a.released_bytes;
		CHECK_EQ_U64(a.released_bytes, a.release_total_bytes - a.reuse_total_bytes);
		/* Version 3: the largest free chunk and the heaps, as ptm_stats_get() walks them.
		 */
		if (st != NULL && ptm_stats_get(st) == 0) {
			for (uint64_t i = 0; i < st->arenas_reported; i++) {
				if (st->arenas[i].index != a.index)
					continue;
				CHECK_EQ_U64(a.largest_free_bytes, st->arenas[i].largest_free);
				CHECK_EQ_U64(a.heaps, st->arenas[i].heaps);
				CHECK(a.heaps >= 1);
			}
		}
	}
	CHECK_EQ_U64(n, b.narenas);
	CHECK_EQ_U64(arena, m.arena);
	CHECK_EQ_U64(ordblks, m.ordblks);
	CHECK_EQ_U64(smblks, m.smblks);
	CHECK_EQ_U64(fordblks, m.fordblks);
	CHECK_EQ_U64(keepcost, m.keepcost);
	CHECK_EQ_U64(b.mmapped_chunks, m.hblks);
	CHECK_EQ_U64(b.mmapped_bytes, m.hblkhd);
	/* Version 2's release books, read remotely, equal the in-process ones. */
	CHECK(st != NULL && ptm_stats_get(st) == 0);
	if (st != NULL)
		CHECK_EQ_U64(released, st->released_bytes);
	free(st);
}

static volatile int stop_writers;

static void *writer(void *arg)
{
	unsigned rs = (unsigned)(uintptr_t)arg;
	void *slots[64] = {0};

	while (!stop_writers) {
		int i = rand_r(&rs) % 64;

		ptm_free(slots[i]);
		slots[i] = ptm_malloc((size_t)rand_r(&rs) % 4000);
	}
	for (int i = 0; i < 64; i++)
		ptm_free(slots[i]);
	return NULL;
}

static void block_snapshots_stay_consistent_while_threads_allocate(void)
{
	pthread_t t[2];
	unsigned retries = 0, good = 0, bad = 0;
	struct ptm_abi_arena a;

	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)(i + 1));
	for (int n = 0; n < 20000; n++) {
		if (read_arena(ptm_stats_block.first_arena, &a, &retries) != 0) {
			bad++;
			continue;
		}
		/* A torn copy would break these. */
		if (a.binned_bytes >= 32 * a.binned_chunks && a.fast_bytes >= 32 * a.fast_chunks &&
		    a.fast_bytes <= 176 * a.fast_chunks && a.top_bytes <= a.system_bytes &&
		    a.binned_bytes + a.fast_bytes + a.top_bytes <= a.system_bytes &&
		    a.largest_free_bytes >= a.top_bytes &&
		    a.largest_free_bytes <= a.binned_bytes + a.fast_bytes + a.top_bytes &&
		    a.heaps >= 1)
			good++;
		else
			bad++;
	}
	stop_writers = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(good, 20000);
	printf("seqlock reads: 20000 consistent, %u retries\n", retries);
	checked_census("after concurrent reads");
}

int main(void)
{
	/* One arena for all threads, so that they meet on its lock. */
	CHECK(ptm_mallopt(M_ARENA_MAX, 1) == 1);
	make_a_mixed_heap();
	stats_agree_with_mallinfo2_and_the_walk();
	other_threads_caches_are_merged_on_read();
	contention_is_booked();
	json_dump_carries_the_same_numbers();
	exported_block_gives_mallinfo2_exactly();
	block_snapshots_stay_consistent_while_threads_allocate();
	exported_block_gives_mallinfo2_exactly();
	return hf_test_done();
}

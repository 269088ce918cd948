// SPDX-License-Identifier: MIT
/*
 * ptm_threads_test: threads get arenas of their own on 64 MiB-aligned
 * heaps, arenas of exited threads are reused, a thread's cache goes back to
 * the arenas when it exits, heaps chain when full and go away when empty,
 * and chunks freed by other threads return to their own arena.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>

#include "ptm_test.h"

#define NTHREADS 4

static pthread_barrier_t barrier;

struct worker {
	void *p[64];
	size_t n;
};

static void *allocate_together(void *arg)
{
	struct worker *w = arg;

	/* All threads allocate at once, so none can reuse another's arena. */
	pthread_barrier_wait(&barrier);
	for (size_t i = 0; i < 64; i++) {
		w->p[i] = ptm_malloc(100 + i * 50);
		fill(w->p[i], 100 + i * 50, (unsigned)i);
	}
	w->n = 64;
	pthread_barrier_wait(&barrier);
	return NULL;
}

static void threads_allocate_from_their_own_arenas(void)
{
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];
	struct ptm_heap_census c;
	int non_main = 0;

	memset(w, 0, sizeof(w));
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, allocate_together, &w[i]);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (int i = 0; i < NTHREADS; i++) {
		for (size_t j = 0; j < w[i].n; j++) {
			if (size_word(w[i].p[j]) & PTM_NON_MAIN_ARENA)
				non_main++;
			CHECK(verify(w[i].p[j], 100 + j * 50, (unsigned)j));
		}
	}
	/* Every chunk of the threads carries NON_MAIN_ARENA. */
	CHECK_EQ_U64(non_main, NTHREADS * 64);
	c = checked_census("threads' arenas");
	CHECK(c.arenas >= NTHREADS + 1);
	/* The main thread frees them: each goes back to the arena it came from. */
	for (int i = 0; i < NTHREADS; i++)
		for (size_t j = 0; j < w[i].n; j++)
			ptm_free(w[i].p[j]);
	checked_census("after cross-thread frees");
}

static void *allocate_alone(void *arg)
{
	void **out = arg;

	*out = ptm_malloc(1000);
	return NULL;
}

static void exited_threads_arenas_are_reused(void)
{
	size_t before = checked_census("before reuse").arenas;

	for (int i = 0; i < 10; i++) {
		pthread_t t;
		void *p = NULL;

		pthread_create(&t, NULL, allocate_alone, &p);
		pthread_join(t, NULL);
		CHECK(p != NULL && (size_word(p) & PTM_NON_MAIN_ARENA));
		ptm_free(p);
	}
	CHECK_EQ_U64(checked_census("after reuse").arenas, before);
}

static void *cache_then_exit(void *arg)
{
	void *p[7];

	(void)arg;
	for (int i = 0; i < 7; i++)
		p[i] = ptm_malloc(300);
	for (int i = 0; i < 7; i++)
		ptm_free(p[i]);
	return NULL;
}

static void thread_exit_returns_its_cache(void)
{
	struct ptm_heap_census c0 = checked_census("before cache thread"), c1;
	pthread_t t;

	pthread_create(&t, NULL, cache_then_exit, NULL);
	pthread_join(t, NULL);
	c1 = checked_census("after cache thread");
	/* Neither the 7 cached chunks nor the cache itself are still in use. */
	CHECK_EQ_U64(c1.inuse_chunks, c0.inuse_chunks);
	CHECK_EQ_U64(c1.inuse_bytes, c0.inuse_bytes);
}

static void *fill_heaps(void *arg)
{
	size_t *grown = arg;
	enum { N = 900 };
	static void *p[N];
	struct mallinfo2 m0 = ptm_mallinfo2(), m1, m2;

	/* 90 MB of 100 KB chunks: more than one 64 MiB heap can hold. */
	for (int i = 0; i < N; i++) {
		p[i] = ptm_malloc(100000);
		((char *)p[i])[0] = 1;
		((char *)p[i])[99999] = 2;
	}
	m1 = ptm_mallinfo2();
	checked_census("chained heaps");
	for (int i = 0; i < N; i++)
		CHECK(((uintptr_t)p[i] >> 26) != 0);
	for (int i = N - 1; i >= 0; i--)
		ptm_free(p[i]);
	m2 = ptm_mallinfo2();
	grown[0] = m1.arena - m0.arena;
	grown[1] = m1.arena - m2.arena;
	checked_census("heaps deleted");
	return NULL;
}

static void heaps_chain_when_full_and_go_when_empty(void)
{
	pthread_t t;
	size_t grown[2];

	pthread_create(&t, NULL, fill_heaps, grown);
	pthread_join(t, NULL);
	CHECK(grown[0] >= 85000000);
	/* All but about the trim threshold and pad went back to the system. */
	CHECK_MSG(grown[1] >= grown[0] - 2 * 1024 * 1024, "grown %zu released %zu", grown[0],
		  grown[1]);
}

struct pingpong {
	void *slots[256];
	int round;
};

static void *producer(void *arg)
{
	struct pingpong *pp = arg;

	for (int r = 0; r < 50; r++) {
		for (int i = 0; i < 256; i++) {
			size_t sz = 16 + (size_t)((i * 37 + r) % 2000);

			pp->slots[i] = ptm_malloc(sz);
			fill(pp->slots[i], sz, (unsigned)(i + r));
		}
		pthread_barrier_wait(&barrier);
		pthread_barrier_wait(&barrier);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct pingpong *pp = arg;
	int bad = 0;

	for (int r = 0; r < 50; r++) {
		pthread_barrier_wait(&barrier);
		for (int i = 0; i < 256; i++) {
			size_t sz = 16 + (size_t)((i * 37 + r) % 2000);

			if (!verify(pp->slots[i], sz, (unsigned)(i + r)))
				bad++;
			ptm_free(pp->slots[i]);
		}
		pthread_barrier_wait(&barrier);
	}
	return (void *)(intptr_t)bad;
}

static void frees_from_another_thread_return_to_the_owner(void)
{
	struct pingpong pp;
	pthread_t a, b;
	void *bad;

	memset(&pp, 0, sizeof(pp));
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&a, NULL, producer, &pp);
	pthread_create(&b, NULL, consumer, &pp);
	pthread_join(a, NULL);
	pthread_join(b, &bad);
	pthread_barrier_destroy(&barrier);
	CHECK((intptr_t)bad == 0);
	checked_census("after producer/consumer");
}

int main(void)
{
	ptm_free(ptm_malloc(1));
	threads_allocate_from_their_own_arenas();
	exited_threads_arenas_are_reused();
	thread_exit_returns_its_cache();
	heaps_chain_when_full_and_go_when_empty();
	frees_from_another_thread_return_to_the_owner();
	return hf_test_done();
}

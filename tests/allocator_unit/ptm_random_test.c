// SPDX-License-Identifier: MIT
/*
 * ptm_random_test: long random sequences of every allocation call, checked
 * against a shadow model: each live block keeps its pattern, no two live
 * blocks overlap, the checker's census counts exactly the model's blocks,
 * and the heap passes ptm_check_heap() throughout.  Then the same with
 * threads that hand blocks to each other.
 */
#include <pthread.h>
#include <stdlib.h>

#include "ptm_test.h"

#define SLOTS 2000

struct block {
	unsigned char *p;
	size_t size;
	unsigned seed;
};

static size_t random_size(unsigned *rs)
{
	unsigned r = (unsigned)rand_r(rs) % 1000;

	if (r < 500)
		return (size_t)rand_r(rs) % 160;
	if (r < 800)
		return (size_t)rand_r(rs) % 1100;
	if (r < 960)
		return (size_t)rand_r(rs) % 70000;
	if (r < 995)
		return 100000 + (size_t)rand_r(rs) % 400000;
	return (size_t)rand_r(rs) % (3u << 20);
}

static void put(struct block *b, unsigned char *p, size_t size, unsigned seed)
{
	b->p = p;
	b->size = size;
	b->seed = seed;
	fill(p, size, seed);
}

/* One random step on slot i of the model; returns 0 if a check failed. */
static int step(struct block *b, unsigned *rs, unsigned seed)
{
	unsigned op = (unsigned)rand_r(rs) % 10;
	size_t size = random_size(rs);
	int ok = 1;

	if (b->p != NULL) {
		ok = verify(b->p, b->size, b->seed);
		if (op < 3) {
			unsigned char *q = ptm_realloc(b->p, size + 1);

			if (q == NULL)
				return 0;
			ok &= verify(q, size + 1 < b->size ? size + 1 : b->size, b->seed);
			put(b, q, size + 1, seed);
		} else {
			ptm_free(b->p);
			b->p = NULL;
		}
		return ok;
	}
	if (op < 5) {
		put(b, ptm_malloc(size), size, seed);
	} else if (op < 7) {
		unsigned char *q = ptm_calloc(1, size);

		for (size_t k = 0; k < size; k = next_pos(k, size))
			ok &= q[k] == 0;
		put(b, q, size, seed);
	} else {
		size_t align = (size_t)16 << (rand_r(rs) % 10);
		void *q = NULL;

		if (op == 9)
			ok &= ptm_posix_memalign(&q, align, size) == 0;
		else
			q = ptm_memalign(align, size);
		ok &= q != NULL && ((uintptr_t)q % align) == 0;
		put(b, q, size, seed);
	}
	return ok && b->p != NULL;
}

static int cmp_block(const void *a, const void *b)
{
	const struct block *x = a, *y = b;

	return (x->p > y->p) - (x->p < y->p);
}

static void model_matches_heap(struct block *model, const char *when)
{
	static struct block sorted[SLOTS];
	size_t live = 0, mapped = 0;
	struct ptm_heap_census c = checked_census(when);

	for (int i = 0; i < SLOTS; i++) {
		if (model[i].p == NULL)
			continue;
		sorted[live++] = model[i];
		mapped += !!(size_word(model[i].p) & PTM_IS_MMAPPED);
	}
	qsort(sorted, live, sizeof(sorted[0]), cmp_block);
	for (size_t i = 1; i < live; i++)
		CHECK_MSG(sorted[i - 1].p + ptm_malloc_usable_size(sorted[i - 1].p) <= sorted[i].p,
			  "blocks %p and %p overlap", (void *)sorted[i - 1].p, (void *)sorted[i].p);
	/* The model's heap blocks plus the thread cache's own chunk. */
	CHECK_EQ_U64(c.inuse_chunks, live - mapped + 1);
	CHECK_EQ_U64(c.mmapped_chunks, mapped);
}

static void random_operations_match_the_model(void)
{
	static struct block model[SLOTS];
	unsigned rs = 4242;
	int bad = 0;

	for (unsigned n = 0; n < 60000; n++) {
		if (!step(&model[rand_r(&rs) % SLOTS], &rs, n))
			bad++;
		if (n % 5000 == 4999)
			model_matches_heap(model, "during random operations");
		if (n == 30000)
			ptm_malloc_trim(rand_r(&rs) % 100000);
	}
	CHECK_EQ_U64(bad, 0);
	for (int i = 0; i < SLOTS; i++) {
		if (model[i].p != NULL) {
			bad += !verify(model[i].p, model[i].size, model[i].seed);
			ptm_free(model[i].p);
			model[i].p = NULL;
		}
	}
	CHECK_EQ_U64(bad, 0);
	model_matches_heap(model, "after random operations");
}

#define NT       4
#define TSLOTS   400
#define HANDOFFS 64

static struct {
	pthread_mutex_t lock;
	struct block box[HANDOFFS];
} exchange = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *random_thread(void *arg)
{
	struct block model[TSLOTS];
	unsigned rs = (unsigned)(uintptr_t)arg;
	long bad = 0;

	memset(model, 0, sizeof(model));
	for (unsigned n = 0; n < 40000; n++) {
		struct block *b = &model[rand_r(&rs) % TSLOTS];

		if (rand_r(&rs) % 8 == 0 && b->p != NULL) {
			/* Swap a block with the exchange: others will free or keep it. */
			struct block *x = &exchange.box[rand_r(&rs) % HANDOFFS], tmp;

			pthread_mutex_lock(&exchange.lock);
			tmp = *x;
			*x = *b;
			*b = tmp;
			pthread_mutex_unlock(&exchange.lock);
			continue;
		}
		if (!step(b, &rs, n))
			bad++;
	}
	for (int i = 0; i < TSLOTS; i++) {
		if (model[i].p != NULL) {
			bad += !verify(model[i].p, model[i].size, model[i].seed);
			ptm_free(model[i].p);
		}
	}
	return (void *)bad;
}

static void threads_exchanging_blocks_keep_the_heap_sound(void)
{
	pthread_t t[NT];
	long bad = 0;
	void *r;

	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, random_thread, (void *)(uintptr_t)(i * 7919 + 1));
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], &r);
		bad += (long)r;
	}
	for (int i = 0; i < HANDOFFS; i++) {
		if (exchange.box[i].p != NULL) {
			bad += !verify(exchange.box[i].p, exchange.box[i].size,
				       exchange.box[i].seed);
			ptm_free(exchange.box[i].p);
		}
	}
	CHECK_EQ_U64(bad, 0);
	/* Every thread has exited: only the main thread's cache chunk is left. */
	CHECK_EQ_U64(checked_census("after threads").inuse_chunks, 1);
}

int main(void)
{
	random_operations_match_the_model();
	threads_exchanging_blocks_keep_the_heap_sound();
	return hf_test_done();
}

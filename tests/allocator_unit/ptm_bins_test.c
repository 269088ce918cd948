// SPDX-License-Identifier: MIT
/*
 * ptm_bins_test: each size class of libptm behaves as glibc 2.36's would on
 * x86_64, and the heap passes ptm_check_heap() after every step.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptm_test.h"

/* The chunk layout is glibc's: the size word at ptr-8, 16-byte alignment. */
static void chunk_layout_matches_glibc(void)
{
	static const size_t reqs[] = {0, 1, 8, 24, 25, 40, 100, 1000, 1032, 4000, 100000};

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		void *p = ptm_malloc(reqs[i]);

		CHECK(p != NULL);
		CHECK(((uintptr_t)p & 15) == 0);
		CHECK_EQ_U64(chunk_size(p), expected_chunk(reqs[i]));
		CHECK(size_word(p) & PTM_PREV_INUSE);
		CHECK((size_word(p) & PTM_IS_MMAPPED) == 0);
		CHECK((size_word(p) & PTM_NON_MAIN_ARENA) == 0);
		CHECK_EQ_U64(ptm_malloc_usable_size(p), expected_chunk(reqs[i]) - 8);
		ptm_free(p);
	}
	checked_census("after layout");
}

/* The thread cache is LIFO and holds 7 chunks per size. */
static void tcache_reuses_last_freed_first(void)
{
	void *p[9], *q;
	struct ptm_heap_census c0, c1;

	for (int i = 0; i < 9; i++)
		p[i] = ptm_malloc(200);
	c0 = checked_census("before tcache frees");
	for (int i = 0; i < 9; i++)
		ptm_free(p[i]);
	c1 = checked_census("after tcache frees");
	/* 7 went to the cache, the 2 others to the unsorted bin or merged. */
	CHECK_EQ_U64(c1.tcache_chunks - c0.tcache_chunks, 7);
	q = ptm_malloc(200);
	CHECK(q == p[6]);
	ptm_free(q);
	checked_census("after tcache reuse");
}

/* Fastbin chunks stay unmerged until consolidation; double frees at the top abort elsewhere. */
static void fastbins_hold_small_chunks_unmerged(void)
{
	void *p[20];
	struct ptm_heap_census c;
	void *guard;

	for (int i = 0; i < 20; i++)
		p[i] = ptm_malloc(40);
	guard = ptm_malloc(40);
	/* Fill the 48-byte cache bin, then the rest go to the fastbin. */
	for (int i = 0; i < 20; i++)
		ptm_free(p[i]);
	c = checked_census("after fastbin frees");
	CHECK(c.fast_chunks >= 13);
	CHECK(c.fast_bytes >= 13 * 48);
	/* A large request consolidates the fastbins into one free chunk. */
	void *big = ptm_malloc(3000);
	c = checked_census("after consolidation");
	CHECK_EQ_U64(c.fast_chunks, 0);
	ptm_free(big);
	ptm_free(guard);
	checked_census("after fastbin cleanup");
}

/* Freeing a chunk between two free ones makes one chunk of all three. */
static void free_coalesces_with_both_neighbours(void)
{
	void *a = ptm_malloc(2000), *b = ptm_malloc(2000), *c = ptm_malloc(2000);
	void *guard = ptm_malloc(2000);
	struct ptm_heap_census before, after;
	void *all;

	ptm_free(a);
	ptm_free(c);
	before = checked_census("a and c free");
	ptm_free(b);
	after = checked_census("a, b, c free");
	CHECK_EQ_U64(before.free_chunks - after.free_chunks, 1);
	/* The merged chunk serves a request of all three sizes in a's place. */
	all = ptm_malloc(3 * 2016 - 8);
	CHECK(all == a);
	ptm_free(all);
	ptm_free(guard);
	checked_census("after coalescing");
}

/* Large bins are best fit: the smallest chunk that fits, not the first. */
static void large_bins_serve_best_fit(void)
{
	void *blk[8], *guards[8], *q;
	static const size_t sizes[] = {5000, 3000, 4500, 3500, 6000, 4000, 3300, 5500};

	for (int i = 0; i < 8; i++) {
		blk[i] = ptm_malloc(sizes[i]);
		guards[i] = ptm_malloc(16);
	}
	for (int i = 0; i < 8; i++)
		ptm_free(blk[i]);
	/* Sort them into their bins: a request no free chunk satisfies exactly. */
	q = ptm_malloc(20000);
	checked_census("large chunks binned and sorted");
	ptm_free(q);
	/* 3400 fits in 3500 (best), 4000, 4500...; best fit picks the 3500 one. */
	q = ptm_malloc(3400);
	CHECK(q == blk[3]);
	ptm_free(q);
	q = ptm_malloc(4200);
	CHECK(q == blk[2]);
	ptm_free(q);
	for (int i = 0; i < 8; i++)
		ptm_free(guards[i]);
	checked_census("after best fit");
}

/* Consecutive small requests carve the last remainder, and sit side by side. */
static void small_requests_carve_last_remainder(void)
{
	void *big = ptm_malloc(8000), *guard = ptm_malloc(16);
	void *x, *y, *z;

	ptm_free(big);
	/* The first split of a free chunk makes its rest the last remainder. */
	x = ptm_malloc(600);
	y = ptm_malloc(600);
	z = ptm_malloc(600);
	CHECK((char *)y == (char *)x + expected_chunk(600));
	CHECK((char *)z == (char *)y + expected_chunk(600));
	checked_census("after last remainder");
	ptm_free(x);
	ptm_free(y);
	ptm_free(z);
	ptm_free(guard);
	checked_census("after last remainder cleanup");
}

/* The top grows with sbrk and shrinks once more than the trim threshold is free. */
static void top_grows_and_trims(void)
{
	struct mallinfo2 m0 = ptm_mallinfo2(), m1, m2;
	void *p[40];

	for (int i = 0; i < 40; i++)
		p[i] = ptm_malloc(100000);
	m1 = ptm_mallinfo2();
	/* Whatever was free before could not hold it all: the heap grew. */
	CHECK(m1.arena >= m0.arena + 40 * 100000 - m0.fordblks);
	checked_census("top grown");
	for (int i = 39; i >= 0; i--)
		ptm_free(p[i]);
	m2 = ptm_mallinfo2();
	/* Down to the trim threshold plus pad (128 KiB each by default). */
	CHECK(m2.arena < m1.arena - 30 * 100000);
	CHECK(m2.keepcost <= 128 * 1024 + 128 * 1024 + 4096 + 64);
	checked_census("top trimmed");
}

/* Someone else moving the break: a new region with fenceposts, like glibc. */
static void main_arena_survives_foreign_sbrk(void)
{
	void *p[30];
	char *foreign;

	for (int i = 0; i < 10; i++) {
		p[i] = ptm_malloc(50000);
		fill(p[i], 50000, (unsigned)i);
	}
	foreign = sbrk(12345);
	CHECK(foreign != (void *)-1);
	memset(foreign, 0xee, 12345);
	for (int i = 10; i < 30; i++) {
		p[i] = ptm_malloc(50000);
		fill(p[i], 50000, (unsigned)i);
		CHECK((char *)p[i] + 50000 <= foreign || (char *)p[i] >= foreign + 12345);
	}
	checked_census("after foreign sbrk");
	for (int i = 0; i < 30; i += 2)
		ptm_free(p[i]);
	checked_census("after frees across regions");
	for (int i = 1; i < 30; i += 2) {
		CHECK(verify(p[i], 50000, (unsigned)i));
		ptm_free(p[i]);
	}
	for (int i = 0; i < 12345; i++)
		if ((unsigned char)foreign[i] != 0xee) {
			CHECK_MSG(0, "foreign sbrk memory overwritten at %d", i);
			break;
		}
	checked_census("after foreign sbrk cleanup");
}

/*
 * When the break cannot move (here a mapping sits right above it), the main
 * arena continues in mapped regions of at least 1 MiB, non-contiguously.
 */
static int brk_blocked_child(void)
{
	char *brk0 = sbrk(0);
	uintptr_t above = ((uintptr_t)brk0 + 4095) & ~(uintptr_t)4095;
	void *wall = mmap((void *)above, 1 << 20, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	struct mallinfo2 m0 = ptm_mallinfo2(), m1;
	void *p[40];
	int ok = 1;

	if (wall == MAP_FAILED || sbrk(8192) != (void *)-1)
		return 3;
	for (int i = 0; i < 40; i++) {
		p[i] = ptm_malloc(100000);
		if (p[i] == NULL)
			return 4;
		fill(p[i], 100000, (unsigned)i);
	}
	m1 = ptm_mallinfo2();
	if (m1.arena < m0.arena + 3 * 1000000 || ptm_check_heap(NULL) != 0)
		return 5;
	for (int i = 0; i < 40; i += 2)
		ptm_free(p[i]);
	if (ptm_check_heap(NULL) != 0)
		return 6;
	for (int i = 1; i < 40; i += 2) {
		ok &= verify(p[i], 100000, (unsigned)i);
		ptm_free(p[i]);
	}
	return ok && ptm_check_heap(NULL) == 0 ? 0 : 7;
}

static void main_arena_falls_back_to_mmap_when_brk_fails(void)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0)
		_exit(brk_blocked_child());
	waitpid(pid, &status, 0);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

/*
 * Big requests that top cannot serve get their own mapping; freeing one
 * raises the threshold to its size.
 */
static void mmapped_chunks_and_dynamic_threshold(void)
{
	struct mallinfo2 m0 = ptm_mallinfo2(), m1;
	void *p = ptm_malloc(600 * 1024), *q;
	size_t sw = size_word(p);

	CHECK(sw & PTM_IS_MMAPPED);
	CHECK_EQ_U64(((size_t *)p)[-2], 0); /* prev_size holds the offset into the mapping */
	CHECK_EQ_U64(chunk_size(p) % 4096, 0);
	CHECK_EQ_U64(ptm_malloc_usable_size(p), chunk_size(p) - 16);
	m1 = ptm_mallinfo2();
	CHECK_EQ_U64(m1.hblks, m0.hblks + 1);
	CHECK_EQ_U64(m1.hblkhd, m0.hblkhd + chunk_size(p));
	memset(p, 1, 600 * 1024);
	ptm_free(p);
	/* The threshold is now above 600 KiB: the same request comes from the heap. */
	q = ptm_malloc(600 * 1024);
	CHECK((size_word(q) & PTM_IS_MMAPPED) == 0);
	ptm_free(q);
	/* Beyond 32 MiB the threshold no longer follows. */
	p = ptm_malloc(40u << 20);
	CHECK(size_word(p) & PTM_IS_MMAPPED);
	ptm_free(p);
	p = ptm_malloc(40u << 20);
	CHECK(size_word(p) & PTM_IS_MMAPPED);
	ptm_free(p);
	checked_census("after mmapped chunks");
}

static void aligned_allocations_are_aligned(void)
{
	static const size_t aligns[] = {16, 32, 64, 256, 4096, 65536, 1 << 20};
	void *p;

	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		for (size_t sz = 1; sz < 300000; sz = sz * 7 + 3) {
			p = ptm_memalign(aligns[i], sz);
			CHECK(p != NULL && ((uintptr_t)p % aligns[i]) == 0);
			CHECK(ptm_malloc_usable_size(p) >= sz);
			memset(p, 0x5a, sz);
			ptm_free(p);
			CHECK(ptm_posix_memalign(&p, aligns[i], sz) == 0);
			CHECK(((uintptr_t)p % aligns[i]) == 0);
			ptm_free(p);
		}
	}
	/* 48 is not a power of two: memalign rounds up to 64. */
	p = ptm_memalign(48, 100);
	CHECK(((uintptr_t)p % 64) == 0);
	ptm_free(p);
	p = ptm_valloc(10);
	CHECK(((uintptr_t)p % 4096) == 0);
	ptm_free(p);
	p = ptm_pvalloc(10);
	CHECK(((uintptr_t)p % 4096) == 0 && ptm_malloc_usable_size(p) >= 4096);
	ptm_free(p);
	p = ptm_aligned_alloc(128, 1000);
	CHECK(((uintptr_t)p % 128) == 0);
	ptm_free(p);
	checked_census("after aligned allocations");
}

/* errno, overflow and the edge cases glibc defines. */
static void glibc_semantics_at_the_edges(void)
{
	void *p = (void *)0x1234, *q;

	errno = 0;
	CHECK(ptm_malloc(SIZE_MAX - 100) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(ptm_malloc((size_t)PTRDIFF_MAX + 1) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(ptm_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(ptm_reallocarray(NULL, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
	CHECK(ptm_posix_memalign(&p, 24, 100) == EINVAL && p == (void *)0x1234);
	CHECK(ptm_posix_memalign(&p, 0, 100) == EINVAL && p == (void *)0x1234);
	CHECK(ptm_posix_memalign(&p, 64, SIZE_MAX - 10) == ENOMEM && p == (void *)0x1234);
	errno = 0;
	CHECK(ptm_memalign((size_t)1 << 63 | 1, 10) == NULL && errno == EINVAL);

	/* free preserves errno, also for mmapped chunks. */
	q = ptm_malloc(1 << 20);
	errno = 4242;
	ptm_free(q);
	CHECK(errno == 4242);
	q = ptm_malloc(100);
	errno = 4243;
	ptm_free(q);
	ptm_free(NULL);
	CHECK(errno == 4243);

	/* realloc(p, 0) frees and returns NULL; realloc(NULL, n) is malloc. */
	q = ptm_malloc(100);
	CHECK(ptm_realloc(q, 0) == NULL);
	q = ptm_realloc(NULL, 100);
	CHECK(q != NULL);
	errno = 0;
	CHECK(ptm_realloc(q, SIZE_MAX - 5) == NULL && errno == ENOMEM);
	ptm_free(q);
	CHECK(ptm_malloc_usable_size(NULL) == 0);
	checked_census("after edge cases");
}

static void calloc_returns_zeroed_memory(void)
{
	/* Dirty some memory first so that calloc must really clear. */
	for (size_t sz = 16; sz < 300000; sz = sz * 3 + 1) {
		unsigned char *d = ptm_malloc(sz), *z;
		int ok = 1;

		memset(d, 0xab, sz);
		ptm_free(d);
		z = ptm_calloc(1, sz);
		for (size_t i = 0; i < sz; i++)
			if (z[i] != 0)
				ok = 0;
		CHECK_MSG(ok, "calloc(%zu) not zeroed", sz);
		ptm_free(z);
	}
	checked_census("after calloc");
}

static void realloc_keeps_contents_while_growing_and_shrinking(void)
{
	size_t sz = 10;
	unsigned char *p = ptm_malloc(sz);

	fill(p, sz, 9);
	while (sz < 3000000) {
		size_t nsz = sz * 2 + 7;

		p = ptm_realloc(p, nsz);
		CHECK(p != NULL);
		CHECK(verify(p, sz, 9));
		fill(p, nsz, 9);
		sz = nsz;
	}
	while (sz > 10) {
		sz /= 3;
		p = ptm_realloc(p, sz);
		CHECK(verify(p, sz, 9));
	}
	ptm_free(p);
	checked_census("after realloc chain");
}

/*
 * Blocks that grow by small steps in turn (a server's per-connection
 * buffers) keep running into each other, and a block that cannot grow in
 * place is copied whole.  With an eighth of headroom given at each move, a
 * block moves again only once that is used up.  The same steps are run on
 * the process's own realloc (glibc) for comparison: libptm must copy at
 * most half as many bytes (measured: 8.6 MB against 27.4 MB), and keep
 * every block's contents through every move.
 */
struct growth {
	size_t moves, copied;
};

static struct growth grow_in_turn(void *(*re)(void *, size_t), void (*release)(void *))
{
	enum { BUFS = 16, MAX = 100000 };
	unsigned char *buf[BUFS] = {0};
	size_t len[BUFS] = {0};
	struct growth g = {0, 0};
	uint32_t seed = 42;
	int growing = 1;

	while (growing) {
		growing = 0;
		for (int b = 0; b < BUFS; b++) {
			unsigned char *q;
			size_t step;

			if (len[b] >= MAX)
				continue;
			growing = 1;
			seed = seed * 1103515245u + 12345u;
			step = 16 + seed % 512;
			q = re(buf[b], len[b] + step);
			CHECK(q != NULL);
			if (q != buf[b] && buf[b] != NULL) {
				g.moves++;
				g.copied += len[b];
				CHECK(verify(q, len[b], (unsigned)b));
			}
			buf[b] = q;
			len[b] += step;
			fill(q, len[b], (unsigned)b);
		}
	}
	for (int b = 0; b < BUFS; b++) {
		CHECK(verify(buf[b], len[b], (unsigned)b));
		release(buf[b]);
	}
	return g;
}

static void realloc_growing_by_small_steps_copies_less(void)
{
	struct growth ptm = grow_in_turn(ptm_realloc, ptm_free);
	struct growth libc = grow_in_turn(realloc, free);

	printf("small-step growth: libptm copied %zu bytes in %zu moves, glibc %zu in %zu\n",
	       ptm.copied, ptm.moves, libc.copied, libc.moves);
	CHECK_MSG(ptm.copied * 2 <= libc.copied,
		  "libptm copied %zu bytes in %zu moves, the process's realloc %zu in %zu",
		  ptm.copied, ptm.moves, libc.copied, libc.moves);
	checked_census("after small-step growth");
}

/*
 * realloc to at most an eighth less than a chunk of 4 KiB or more keeps the
 * chunk whole (the headroom of a growing block is not split off at each
 * step); a larger shrink, or any shrink of a smaller chunk, splits the rest
 * off as glibc does.
 */
static void realloc_keeps_an_eighth_of_headroom_and_splits_more(void)
{
	unsigned char *p = ptm_malloc(8000), *guard = ptm_malloc(16), *q;
	size_t usable = ptm_malloc_usable_size(p);

	fill(p, 8000, 5);
	q = ptm_realloc(p, usable - usable / 8 + 16);
	CHECK(q == p);
	CHECK_EQ_U64(ptm_malloc_usable_size(q), usable);
	q = ptm_realloc(p, 4000);
	CHECK(q == p);
	CHECK(verify(q, 4000, 5));
	CHECK_EQ_U64(ptm_malloc_usable_size(q), expected_chunk(4000) - 8);
	ptm_free(q);
	p = ptm_malloc(2000);
	q = ptm_realloc(p, 1900);
	CHECK(q == p);
	CHECK_EQ_U64(ptm_malloc_usable_size(q), expected_chunk(1900) - 8);
	ptm_free(q);
	ptm_free(guard);
	checked_census("after headroom shrinks");
}

int main(void)
{
	chunk_layout_matches_glibc();
	tcache_reuses_last_freed_first();
	fastbins_hold_small_chunks_unmerged();
	free_coalesces_with_both_neighbours();
	large_bins_serve_best_fit();
	small_requests_carve_last_remainder();
	top_grows_and_trims();
	main_arena_survives_foreign_sbrk();
	main_arena_falls_back_to_mmap_when_brk_fails();
	mmapped_chunks_and_dynamic_threshold();
	aligned_allocations_are_aligned();
	glibc_semantics_at_the_edges();
	calloc_returns_zeroed_memory();
	realloc_keeps_contents_while_growing_and_shrinking();
	realloc_growing_by_small_steps_copies_less();
	realloc_keeps_an_eighth_of_headroom_and_splits_more();
	return hf_test_done();
}

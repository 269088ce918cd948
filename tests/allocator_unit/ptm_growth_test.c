// SPDX-License-Identifier: MIT
/*
 * ptm_growth_test: once the main arena's heap has grown past 8 MiB by
 * carving small chunks off its top, each further extension of the break
 * for a small request is faulted in ahead with one MADV_POPULATE_WRITE
 * (mincore sees the whole new top resident before anything touched it);
 * a smaller heap, and a large request in a big heap, still fault page by
 * page (their untouched top stays out of memory).  Either way malloc leaves
 * errno alone and the heap checks clean.
 *
 * The test allocates with ptm_malloc only between its measurements: the
 * process's own malloc may share the break, and a foreign sbrk in between
 * would start a new region, which is never populated.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptm_test.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define BLOCK   1000
#define MAX_BLK 16384

static size_t pagesize;
static void *blocks[MAX_BLK];
static size_t nblocks;

/* Resident pages among the whole pages of [lo, hi). */
static size_t resident_pages(uintptr_t lo, uintptr_t hi, size_t *total)
{
	uintptr_t start = (lo + pagesize - 1) & ~(pagesize - 1), end = hi & ~(pagesize - 1);
	size_t n = end > start ? (end - start) / pagesize : 0, res = 0;
	unsigned char vec[1024];

	*total = n;
	CHECK(n <= sizeof(vec));
	if (n == 0 || n > sizeof(vec))
		return 0;
	CHECK(mincore((void *)start, end - start, vec) == 0);
	for (size_t i = 0; i < n; i++)
		res += vec[i] & 1;
	return res;
}

/*
 * Allocates size-byte blocks with ptm_malloc, writing only their first
 * byte, until the break moves once the blocks total at least min_bytes.
 * Returns the address right after the last block (where the top chunk's
 * memory starts) and leaves the old and new break in *from and *to.
 */
static uintptr_t grow_once(size_t size, size_t min_bytes, uintptr_t *from, uintptr_t *to)
{
	size_t bytes = 0;

	while (nblocks < MAX_BLK) {
		uintptr_t before = (uintptr_t)sbrk(0), after;
		int saved;
		char *p;

		errno = 4242;
		p = ptm_malloc(size);
		saved = errno;
		CHECK(p != NULL);
		if (p == NULL)
			return 0;
		CHECK_MSG(saved == 4242, "malloc changed errno to %d", saved);
		p[0] = 1;
		blocks[nblocks++] = p;
		bytes += size;
		after = (uintptr_t)sbrk(0);
		if (after != before && bytes >= min_bytes) {
			*from = before;
			*to = after;
			return (uintptr_t)p + chunk_size(p) - 8;
		}
	}
	CHECK_MSG(0, "the break never moved in %d blocks", MAX_BLK);
	return 0;
}

static int populate_supported(void)
{
	void *m = mmap(NULL, pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok;

	if (m == MAP_FAILED)
		return 0;
	ok = madvise(m, pagesize, MADV_POPULATE_WRITE) == 0;
	munmap(m, pagesize);
	return ok;
}

int main(void)
{
	uintptr_t top, from, to;
	size_t res, total;

	pagesize = (size_t)sysconf(_SC_PAGESIZE);
	/* stdout's buffer comes from the process's malloc: get it now, not mid-test. */
	printf("ptm_growth_test: page size %zu\n", pagesize);
	fflush(stdout);
	if (!populate_supported())
		HF_SKIP("the kernel has no MADV_POPULATE_WRITE (Linux 5.14)");

	/* A small heap: an extension below 8 MiB is left to fault on use. */
	top = grow_once(BLOCK, 2 << 20, &from, &to);
	res = resident_pages(top + 2 * pagesize, to, &total);
	printf("2 MiB heap: break %#lx -> %#lx, %zu of the top's %zu untouched pages resident\n",
	       (unsigned long)from, (unsigned long)to, res, total);
	CHECK(total >= 16);
	CHECK_MSG(res == 0, "a heap under 8 MiB had %zu of %zu pages faulted in ahead", res, total);

	/* Past 8 MiB, each extension for a small request is resident before it is used. */
	top = grow_once(BLOCK, 8 << 20, &from, &to);
	res = resident_pages(top + 2 * pagesize, to, &total);
	printf("10 MiB heap: break %#lx -> %#lx, %zu of the top's %zu untouched pages resident\n",
	       (unsigned long)from, (unsigned long)to, res, total);
	CHECK(total >= 16);
	CHECK_MSG(res == total, "only %zu of the new top's %zu pages were faulted in ahead", res,
		  total);

	/*
	 * A large request is left to fault on use even in a big heap: it may
	 * stay untouched.  Its block starts in the top populated before it; the
	 * break's new extension holds the block's rest and the new top, of
	 * which only the page with the new top's header has been written.
	 */
	top = grow_once(100 * 1024, 1, &from, &to);
	(void)top;
	res = resident_pages(from, to, &total);
	printf("100 KiB block: break %#lx -> %#lx, %zu of %zu untouched pages resident\n",
	       (unsigned long)from, (unsigned long)to, res, total);
	CHECK(total >= 16);
	CHECK_MSG(res <= 1, "a large request had %zu of %zu pages faulted in ahead", res, total);

	checked_census("after the growth");
	for (size_t i = 0; i < nblocks; i++)
		ptm_free(blocks[i]);
	checked_census("after the frees");
	return hf_test_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * ptm_test.h - helpers shared by libptm's unit tests: the chunk header as
 * heapfragd sees it, and a checked heap walk.
 */
#ifndef PTM_TEST_H
#define PTM_TEST_H

#include <stdint.h>
#include <string.h>

#include "check.h"
#include "ptm.h"

#define PTM_PREV_INUSE     0x1UL
#define PTM_IS_MMAPPED     0x2UL
#define PTM_NON_MAIN_ARENA 0x4UL

/* The size word at ptr-8, read the way heapfragd's uprobes read it. */
static inline size_t size_word(const void *p)
{
	return ((const size_t *)p)[-1];
}

static inline size_t chunk_size(const void *p)
{
	return size_word(p) & ~(size_t)7;
}

/* glibc's request-to-chunk-size rule on x86_64. */
static inline size_t expected_chunk(size_t req)
{
	size_t s = (req + 8 + 15) & ~(size_t)15;

	return s < 32 ? 32 : s;
}

static inline struct ptm_heap_census checked_census(const char *when)
{
	struct ptm_heap_census c;
	int err;

	memset(&c, 0, sizeof(c));
	err = ptm_check_heap(&c);
	CHECK_MSG(err == 0, "heap check failed %s", when);
	return c;
}

/*
 * Patterns cover the first 8 KiB of a block and every 509th byte after it:
 * the same positions whatever the block's size, so a realloc's kept prefix
 * can be verified, and sanitizer runs stay fast on multi-megabyte blocks.
 */
static inline size_t next_pos(size_t i, size_t n)
{
	(void)n;
	return i < 8191 ? i + 1 : (i / 509 + 1) * 509;
}

static inline void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i = next_pos(i, n))
		b[i] = (unsigned char)(seed * 131 + i * 7);
}

static inline int verify(const void *p, size_t n, unsigned seed)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i = next_pos(i, n))
		if (b[i] != (unsigned char)(seed * 131 + i * 7))
			return 0;
	return 1;
}

#endif /* PTM_TEST_H */
